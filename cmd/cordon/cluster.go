package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"cordon/cluster"
	"cordon/config"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect a cordon cluster (nodes sharing one config through etcd)",
	}
	cmd.AddCommand(newClusterStatusCmd(), newClusterForgetCmd())
	return cmd
}

// clusterClient loads the config and connects to its etcd; it prints the
// problem and returns exitError{1} on failure.
func clusterClient(cmd *cobra.Command, path string, timeout time.Duration) (*config.Config, *clientv3.Client, error) {
	errw := cmd.ErrOrStderr()
	cfg, err := config.Load(path)
	if err != nil {
		for _, fe := range config.AsFieldErrors(err) {
			fmt.Fprintln(errw, fe.Error())
		}
		if len(config.AsFieldErrors(err)) == 0 {
			fmt.Fprintln(errw, err)
		}
		return nil, nil, exitError{1}
	}
	bad := false
	for _, fe := range cfg.Validate() {
		// these commands read the cluster, they are no node of it: the
		// per-node settings (set for the service, not the shell) may be unset
		if fe.Field == "cluster.advertise" {
			continue
		}
		fmt.Fprintln(errw, fe.Error())
		bad = true
	}
	if bad {
		return nil, nil, exitError{1}
	}
	if !cfg.Cluster.Enabled() {
		fmt.Fprintln(errw, "cluster.etcd_endpoints is empty: this configuration runs a single node")
		return nil, nil, exitError{1}
	}
	tlsCfg, err := cfg.Cluster.TLSConfig()
	if err != nil {
		fmt.Fprintln(errw, err.Error())
		return nil, nil, exitError{1}
	}
	cli, err := cluster.Dial(cfg.Cluster.Endpoints(), tlsCfg, timeout)
	if err != nil {
		fmt.Fprintln(errw, err.Error())
		return nil, nil, exitError{1}
	}
	return cfg, cli, nil
}

func newClusterForgetCmd() *cobra.Command {
	var (
		path    string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "forget --config FILE NODE",
		Short: "Remove a decommissioned node from `cluster status` (refused while it is alive)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, cli, err := clusterClient(cmd, path, timeout)
			if err != nil {
				return err
			}
			defer func() { _ = cli.Close() }()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := cluster.Forget(ctx, cli, cluster.DefaultPrefix, args[0]); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "node %s: %v (etcd %v)\n", args[0], err, cfg.Cluster.EtcdEndpoints)
				return exitError{1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s forgotten\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for etcd")
	_ = cmd.MarkFlagRequired("config")
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
			cfg, cli, err := clusterClient(cmd, path, timeout)
			if err != nil {
				return err
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
