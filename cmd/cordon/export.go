package main

import (
	"archive/zip"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"cordon/config"
	"cordon/record"
)

func newExportCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "export", Short: "Evidence export tools"}
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check an evidence export's hashes and signature offline; exit 1 naming what differs (without --pubkey the signing key is not pinned: compare its fingerprint)",
		Args:  cobra.ExactArgs(1),
		RunE:  runExportVerify,
	}
	verify.Flags().String("pubkey", "", "PEM public key (from `cordon export pubkey`) that must have signed the export")
	pubkey := &cobra.Command{
		Use:   "pubkey",
		Short: "Print the gateway's export public key (PEM) and its fingerprint; creates the key on first use",
		Args:  cobra.NoArgs,
		RunE:  runExportPubkey,
	}
	pubkey.Flags().String("config", "", "config file (the key lives in its state_dir)")
	_ = pubkey.MarkFlagRequired("config")
	cmd.AddCommand(verify, pubkey)
	return cmd
}

func runExportVerify(cmd *cobra.Command, args []string) error {
	out := cmd.OutOrStdout()
	var trusted ed25519.PublicKey
	if p, _ := cmd.Flags().GetString("pubkey"); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(out, "cannot read --pubkey: %v\n", err)
			return exitError{1}
		}
		if trusted, err = record.ParsePublicKeyPEM(data); err != nil {
			fmt.Fprintf(out, "--pubkey %s: %v\n", p, err)
			return exitError{1}
		}
	}
	zr, err := zip.OpenReader(args[0])
	if err != nil {
		fmt.Fprintf(out, "cannot verify %s: not a readable ZIP file: %v\n", args[0], err)
		return exitError{1}
	}
	defer zr.Close()
	rep, err := record.VerifyExport(&zr.Reader, trusted)
	if err != nil {
		fmt.Fprintf(out, "cannot verify %s: %v\n", args[0], err)
		return exitError{1}
	}
	printReport(out, rep, trusted != nil)
	if !rep.OK() {
		return exitError{1}
	}
	return nil
}

func printReport(out io.Writer, rep *record.VerifyReport, pinned bool) {
	if rep.Fingerprint != "" {
		how := "from the export's signer.pub: compare it with the gateway's (cordon export pubkey)"
		if pinned {
			how = "checked against --pubkey"
		}
		fmt.Fprintf(out, "signing key: %s (Ed25519, %s)\n", rep.Fingerprint, how)
	}
	if m := rep.Manifest; m != nil {
		fmt.Fprintf(out, "camera: %s %q\n", m.Camera.ID, m.Camera.Name)
		fmt.Fprintf(out, "span: %s to %s (UTC)\n", m.Start, m.End)
		fmt.Fprintf(out, "exported by: %s; reason: %q; node: %s; audit seq: %d; cordon %s\n",
			m.Principal, m.Reason, m.Node, m.AuditSeq, m.CordonVersion)
	}
	for _, f := range rep.Checked {
		fmt.Fprintf(out, "ok       %s sha256 %s\n", f.Name, f.SHA256)
	}
	if rep.SignatureOK {
		fmt.Fprintf(out, "ok       %s: Ed25519 signature over %s\n", record.SignatureName, record.ManifestName)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(out, "DIFFERS  %s\n", p)
	}
	switch {
	case !rep.OK():
		fmt.Fprintln(out, "NOT VERIFIED")
	case pinned:
		fmt.Fprintln(out, "VERIFIED: every file matches manifest.json and the signature is valid, by the key given with --pubkey")
	default:
		// Without --pubkey the export vouches for itself: anyone who alters
		// it can re-sign it with a key of their own and ship that key.
		fmt.Fprintln(out, "VERIFIED WITH AN UNPINNED KEY: every file matches manifest.json and the signature by the export's own")
		fmt.Fprintln(out, "signer.pub is valid, but anyone can re-sign an altered export with a key of their own. This proves")
		fmt.Fprintf(out, "nothing until the key fingerprint %s is compared with `cordon export pubkey`\n", rep.Fingerprint)
		fmt.Fprintln(out, "on the gateway (or run again with --pubkey FILE).")
	}
}

func runExportPubkey(cmd *cobra.Command, _ []string) error {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.LoadAndValidate(path)
	if err != nil {
		for _, fe := range config.AsFieldErrors(err) {
			fmt.Fprintln(cmd.ErrOrStderr(), fe.Error())
		}
		return exitError{1}
	}
	key, err := record.LoadOrCreateKey(cfg.StateDir)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return exitError{1}
	}
	pub := key.Public().(ed25519.PublicKey)
	cmd.OutOrStdout().Write(record.PublicKeyPEM(pub))
	fmt.Fprintf(cmd.ErrOrStderr(), "fingerprint: %s\n", record.Fingerprint(pub))
	return nil
}
