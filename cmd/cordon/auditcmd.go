package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"cordon/auth/audit"
	"cordon/config"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Audit log tools"}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditPubkeyCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var pubkey, cfgPath, keyPath string
	var requireSigned bool
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Verify the audit log (chain, signatures, with its rotated predecessors); exit 1 naming the first broken line",
		Long: "Verifies FILE with its rotated predecessors (FILE.1, FILE.2, ...) and the anchor of files\n" +
			"retention deleted (FILE.anchor): every line's shape, seq continuity, the hash chain and the\n" +
			"Ed25519 signatures.\n\n" +
			"The chain must start with a trusted genesis key, and so be signed, when one is known: --pubkey\n" +
			"(the key `cordon audit pubkey` printed at installation, or @FILE holding it), --key FILE (the\n" +
			"gateway's signing key file), the key file in --config's state_dir, or, with none of these, the\n" +
			"key file in the default state_dir (CORDON_STATE_DIR, else ./cordon-state) when there is one.\n" +
			"A log rewritten from the start with another key, or stripped of its signatures and re-hashed,\n" +
			"is then refused. With no key known, an unsigned log is checked as a hash chain only\n" +
			"(--require-signed refuses it).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			key, from, err := trustedAuditKey(pubkey, cfgPath, keyPath)
			if err != nil {
				return err
			}
			res, err := audit.VerifyFileWith(args[0], audit.VerifyOptions{PublicKey: key, RequireSigned: requireSigned})
			if err != nil {
				var ve *audit.VerifyError
				switch {
				case errors.As(err, &ve) && res.Signed == 0 && ve.Reason == "no line is signed":
					why := "--require-signed"
					if key != "" {
						why = "the gateway signs with " + from
					}
					fmt.Fprintf(out, "BROKEN %s: no line is signed, but the log should be (%s): a log stripped of its signatures and re-hashed looks like this\n", args[0], why)
				case errors.As(err, &ve):
					fmt.Fprintf(out, "BROKEN %s line %d: %s\n", ve.File, ve.Line, ve.Reason)
				default:
					fmt.Fprintf(out, "cannot verify %s: %v\n", args[0], err)
				}
				return exitError{1}
			}
			fmt.Fprintf(out, "OK %d lines in %d file(s), seq %d..%d, last hash %s\n",
				res.Lines, len(res.Files), res.FirstSeq, res.LastSeq, res.LastHash)
			switch {
			case res.Signed == 0:
				fmt.Fprintln(out, "not signed: hash chain only (lines can be rewritten by anyone who can edit the file); no signing key known here: pass --config or --pubkey to check a log that should be signed")
			case key == "":
				fmt.Fprintf(out, "signed: %d lines (%d unsigned before signing began), %d keys; genesis key fingerprint %s — compare it with the one recorded at installation, or pass --pubkey or --config\n",
					res.Signed, res.Unsigned, res.KeysUsed, audit.KeyFingerprint(res.GenesisKey))
			default:
				fmt.Fprintf(out, "signed: %d lines (%d unsigned before signing began), %d keys, from the trusted key %s (%s)\n",
					res.Signed, res.Unsigned, res.KeysUsed, audit.KeyFingerprint(key), from)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pubkey, "pubkey", "", "the audit chain's public key (base64url), or @FILE holding it")
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file: trust the genesis key of state_dir/"+audit.KeyFileName)
	cmd.Flags().StringVar(&keyPath, "key", "", "the gateway's signing key file: trust its genesis key")
	cmd.Flags().BoolVar(&requireSigned, "require-signed", false, "refuse a log without signatures even when no key is known")
	return cmd
}

// trustedAuditKey returns the genesis key verify trusts and where it came
// from ("" = none known: the gateway never signed here, or its key is
// elsewhere).
func trustedAuditKey(pubkey, cfgPath, keyPath string) (key, from string, err error) {
	given := 0
	for _, s := range []string{pubkey, cfgPath, keyPath} {
		if s != "" {
			given++
		}
	}
	switch {
	case given > 1:
		return "", "", errors.New("give one of --pubkey, --config and --key")
	case pubkey != "":
		key, err = readKeyArg(pubkey)
		return key, "--pubkey", err
	case keyPath != "":
		key, err = audit.ReadPublicKey(keyPath)
		if err != nil {
			return "", "", fmt.Errorf("--key: %w", err)
		}
		return key, keyPath, nil
	}
	// --config, or the defaults and CORDON_* overrides: the key file in
	// state_dir, when the gateway made one
	cfg, err := config.Load(cfgPath)
	switch {
	case err != nil && cfgPath != "":
		return "", "", err
	case err != nil: // CORDON_* overrides that do not parse: no default key file
		return "", "", nil
	}
	keyPath = filepath.Join(cfg.StateDir, audit.KeyFileName)
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		return "", "", nil
	}
	key, err = audit.ReadPublicKey(keyPath)
	if err != nil {
		return "", "", fmt.Errorf("the signing key file: %w", err)
	}
	return key, keyPath, nil
}

func readKeyArg(s string) (string, error) {
	if p, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("--pubkey: %w", err)
		}
		s = string(b)
	}
	return strings.TrimSpace(s), nil
}

func newAuditPubkeyCmd() *cobra.Command {
	var cfgPath, keyPath string
	cmd := &cobra.Command{
		Use:   "pubkey (--config FILE | --key FILE)",
		Short: "Print the audit chain's public key (record it off the gateway for `cordon audit verify --pubkey`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case keyPath != "" && cfgPath != "":
				return errors.New("give --config or --key, not both")
			case cfgPath != "":
				cfg, err := config.Load(cfgPath)
				if err != nil {
					return err
				}
				keyPath = filepath.Join(cfg.StateDir, audit.KeyFileName)
			case keyPath == "":
				return errors.New("give --config FILE or --key FILE")
			}
			pk, err := audit.ReadPublicKey(keyPath)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), pk)
			fmt.Fprintf(cmd.ErrOrStderr(), "fingerprint %s (from %s)\n", audit.KeyFingerprint(pk), keyPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file (the key is state_dir/"+audit.KeyFileName+")")
	cmd.Flags().StringVar(&keyPath, "key", "", "the signing key file itself")
	return cmd
}
