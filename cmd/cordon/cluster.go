package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"cordon/cluster"
	"cordon/config"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect a cordon cluster (nodes sharing one config through etcd)",
	}
	cmd.AddCommand(newClusterStatusCmd())
	return cmd
}

func newClusterStatusCmd() *cobra.Command {
	var (
		path    string
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status --config FILE",
		Short: "Nodes (id, address, alive, cameras owned) and each camera's owner, read from etcd; exit 1 when a camera has no live owner or etcd cannot be read",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			cfg, err := config.LoadAndValidate(path)
			if err != nil {
				for _, fe := range config.AsFieldErrors(err) {
					fmt.Fprintln(errw, fe.Error())
				}
				return exitError{1}
			}
			if !cfg.Cluster.Enabled() {
				fmt.Fprintln(errw, "cluster.etcd_endpoints is empty: this configuration runs a single node")
				return exitError{1}
			}
			tlsCfg, err := cfg.Cluster.TLSConfig()
			if err != nil {
				fmt.Fprintln(errw, err.Error())
				return exitError{1}
			}
			cli, err := cluster.Dial(cfg.Cluster.Endpoints(), tlsCfg, timeout)
			if err != nil {
				fmt.Fprintln(errw, err.Error())
				return exitError{1}
			}
			defer func() { _ = cli.Close() }()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			ids := make([]string, len(cfg.Cameras))
			for i := range cfg.Cameras {
				ids[i] = cfg.Cameras[i].ID
			}
			st, err := cluster.ReadStatus(ctx, cli, cluster.DefaultPrefix, ids)
			if err != nil {
				fmt.Fprintf(errw, "etcd %v cannot be read: %v\n", cfg.Cluster.EtcdEndpoints, err)
				return exitError{1}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(st); err != nil {
					return err
				}
			} else if err := cluster.WriteTable(out, st); err != nil {
				return err
			}
			if n := st.Unowned(); n > 0 {
				fmt.Fprintf(errw, "%d configured camera(s) have no live owner\n", n)
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the shape of GET /api/v1/admin/cluster)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for etcd")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
