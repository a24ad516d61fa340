package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"cordon/config"
	"cordon/internal/connlimit"
)

func newCheckCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a config file: exit 0 when valid, else one line per problem naming the field",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadAndValidate(path)
			if err != nil {
				if fes := config.AsFieldErrors(err); len(fes) > 0 {
					for _, fe := range fes {
						fmt.Fprintln(cmd.OutOrStdout(), fe.Error())
					}
				} else {
					fmt.Fprintln(cmd.OutOrStdout(), err.Error())
				}
				return exitError{1}
			}
			for _, w := range cfg.Warnings() {
				fmt.Fprintln(cmd.OutOrStdout(), "warning: "+w.Error())
			}
			// The descriptor budget depends on where cordon runs (systemd's
			// LimitNOFILE); `serve` refuses to start over it, check warns.
			if limit, err := connlimit.OpenFileLimit(); err == nil {
				b := connlimit.Budget{Totals: cfg.DescriptorTotals(), Cameras: len(cfg.Cameras)}
				if err := connlimit.CheckBudget(b, limit); err != nil {
					fmt.Fprintln(cmd.OutOrStdout(), "warning (this process's limit): "+err.Error())
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d cameras, %d users, %d API keys)\n",
				path, len(cfg.Cameras), len(cfg.Auth.Users), len(cfg.Auth.APIKeys))
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
