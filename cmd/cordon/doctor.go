package main

import (
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"cordon/camnet"
	"cordon/config"
)

func newDoctorCmd() *cobra.Command {
	var path, iface, subnet string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this host: IP forwarding off, camera-side routes, nftables loaded, audit log writable, clock synchronised",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := camnet.DoctorOptions{CameraInterface: iface}
			if subnet != "" {
				p, err := netip.ParsePrefix(subnet)
				if err != nil {
					return fmt.Errorf("--camera-subnet: %w", err)
				}
				opts.CameraSubnet = p
			}
			if path != "" {
				cfg, err := config.LoadAndValidate(path)
				if err != nil {
					return fmt.Errorf("--config: %w", err)
				}
				opts.AuditPath = cfg.Audit.Path
				opts.StateDir = cfg.StateDir
			}
			results, ok := camnet.RunDoctor(opts)
			if err := camnet.PrintTable(cmd.OutOrStdout(), results); err != nil {
				return err
			}
			if !ok {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (for the audit log path and state_dir)")
	cmd.Flags().StringVar(&iface, "camera-interface", "", "network interface facing the cameras (e.g. eth1)")
	cmd.Flags().StringVar(&subnet, "camera-subnet", "", "camera subnet (e.g. 10.20.0.0/24)")
	return cmd
}
