package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"cordon/auth"
)

// maxSecret bounds what hash-password reads.
const maxSecret = 4096

func newHashPasswordCmd() *cobra.Command {
	var digestName string
	cmd := &cobra.Command{
		Use:   "hash-password",
		Short: "Read a secret from stdin and print its argon2id hash (for users and API keys)",
		Long: "Reads one secret (the first line of stdin, without its line ending) and prints its\n" +
			"argon2id hash for password_hash or key_hash.\n\n" +
			"With --rtsp-digest NAME it reads nothing: it generates a random RTSP-only secret for\n" +
			"that user or API key, prints it ONCE (configure it as the password in the NVR or VMS\n" +
			"that only speaks RTSP Digest) and the rtsp_digest_ha1 to put in the config. The HA1 is\n" +
			"an MD5, so it is never made from the login password. Prefer RTSP Basic over TLS\n" +
			"(RTSPS) where the client supports it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if digestName != "" {
				if err := auth.ValidateName(digestName); err != nil {
					return fmt.Errorf("--rtsp-digest: %w", err)
				}
				secret, err := auth.NewDigestSecret()
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "# RTSP-only Digest secret for %s: the password to configure in the RTSP client.\n", digestName)
				fmt.Fprintln(out, "# It is shown only this once; cordon keeps only the HA1 below.")
				fmt.Fprintf(out, "secret: %s\n", secret)
				fmt.Fprintf(out, "rtsp_digest_ha1: %q\n", auth.DigestHA1(digestName, secret))
				return nil
			}
			secret, err := readSecret(cmd.InOrStdin())
			if err != nil {
				return err
			}
			h, err := auth.HashSecret([]byte(secret))
			if err != nil {
				return err
			}
			fmt.Fprintln(out, h)
			return nil
		},
	}
	cmd.Flags().StringVar(&digestName, "rtsp-digest", "", "generate an RTSP-only Digest secret and its HA1 for this user or API key name")
	return cmd
}

func readSecret(r io.Reader) (string, error) {
	br := bufio.NewReader(io.LimitReader(r, maxSecret+1))
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the secret from stdin: %w", err)
	}
	if len(line) > maxSecret {
		return "", fmt.Errorf("the secret is longer than %d bytes", maxSecret)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no secret on stdin (usage: echo -n 'secret' | cordon hash-password)")
	}
	return line, nil
}
