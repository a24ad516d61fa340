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
	var pubkey string
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Verify the audit log (chain, signatures, with its rotated predecessors); exit 1 naming the first broken line",
		Long: "Verifies FILE with its rotated predecessors (FILE.1, FILE.2, ...) and the anchor of files\n" +
			"retention deleted (FILE.anchor): every line's shape, seq continuity, the hash chain and the\n" +
			"Ed25519 signatures. With --pubkey (the key `cordon audit pubkey` printed at installation,\n" +
			"or @FILE holding it) the chain must also start with that key, so a log rewritten from the\n" +
			"start with another key, or stripped of its signatures, is refused.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			key, err := readKeyArg(pubkey)
			if err != nil {
				return err
			}
			res, err := audit.VerifyFileWith(args[0], audit.VerifyOptions{PublicKey: key})
			if err != nil {
				var ve *audit.VerifyError
				if errors.As(err, &ve) {
					fmt.Fprintf(out, "BROKEN %s line %d: %s\n", ve.File, ve.Line, ve.Reason)
				} else {
					fmt.Fprintf(out, "cannot verify %s: %v\n", args[0], err)
				}
				return exitError{1}
			}
			fmt.Fprintf(out, "OK %d lines in %d file(s), seq %d..%d, last hash %s\n",
				res.Lines, len(res.Files), res.FirstSeq, res.LastSeq, res.LastHash)
			switch {
			case res.Signed == 0:
				fmt.Fprintln(out, "not signed: hash chain only (lines can be rewritten by anyone who can edit the file)")
			case key == "":
				fmt.Fprintf(out, "signed: %d lines (%d unsigned before signing began), %d keys; genesis key fingerprint %s — compare it with the one recorded at installation, or pass --pubkey\n",
					res.Signed, res.Unsigned, res.KeysUsed, audit.KeyFingerprint(res.GenesisKey))
			default:
				fmt.Fprintf(out, "signed: %d lines (%d unsigned before signing began), %d keys, from the trusted key %s\n",
					res.Signed, res.Unsigned, res.KeysUsed, audit.KeyFingerprint(key))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pubkey, "pubkey", "", "the audit chain's public key (base64url), or @FILE holding it")
	return cmd
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
