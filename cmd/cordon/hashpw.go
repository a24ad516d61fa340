package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"cordon/auth"
	"cordon/relay/rtspserve"
)

// maxSecret bounds what hash-password reads.
const maxSecret = 4096

func newHashPasswordCmd() *cobra.Command {
	var digestName string
	cmd := &cobra.Command{
		Use:   "hash-password",
		Short: "Read a secret from stdin and print its argon2id hash (for users and API keys)",
		Long: "Reads one secret (the first line of stdin, without its line ending) and prints its\n" +
			"argon2id hash for password_hash or key_hash. With --rtsp-digest NAME it also prints the\n" +
			"RTSP Digest HA1 for that principal (rtsp_digest_ha1), for NVRs that only speak Digest.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := readSecret(cmd.InOrStdin())
			if err != nil {
				return err
			}
			h, err := auth.HashSecret([]byte(secret))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), h)
			if digestName != "" {
				fmt.Fprintln(cmd.OutOrStdout(), rtspserve.HA1(digestName, secret))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&digestName, "rtsp-digest", "", "also print the RTSP Digest HA1 for this user or API key name")
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
