package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"cordon/auth/audit"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Audit log tools"}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify FILE",
		Short: "Verify the audit log's hash chain (with its rotated predecessors); exit 1 naming the first broken line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := audit.VerifyFile(args[0])
			if err != nil {
				var ve *audit.VerifyError
				if errors.As(err, &ve) {
					fmt.Fprintf(cmd.OutOrStdout(), "BROKEN %s line %d: %s\n", ve.File, ve.Line, ve.Reason)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "cannot verify %s: %v\n", args[0], err)
				}
				return exitError{1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK %d lines in %d file(s), seq %d..%d, last hash %s\n",
				res.Lines, len(res.Files), res.FirstSeq, res.LastSeq, res.LastHash)
			return nil
		},
	})
	return cmd
}
