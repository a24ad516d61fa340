package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"cordon/camnet/harden"
	"cordon/config"
)

// hardenWorkers bounds how many cameras are talked to at once.
const hardenWorkers = 4

func newHardenCmd() *cobra.Command {
	var path, camera string
	var apply, reboot bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "harden --config FILE [--camera ID] [--apply] [--reboot]",
		Short: "Show (with --apply: set and read back) each camera's outbound settings: vendor cloud/P2P, UPnP, DDNS, e-mail/FTP, NTP, DNS, gateway",
		Long: `harden reads, on every camera (or --camera ID), the settings that make a
camera reach out and compares them with the wanted state: vendor cloud and
P2P off, UPnP, DDNS, e-mail and FTP push off, NTP at camera_network.ntp_listen,
DNS at the host of camera_network.dns_listen, no default gateway when cordon
is on the camera's subnet. It prints one line per camera and setting.
With --apply it sets what is not as wanted and reads it back; with --reboot
it also reboots a camera whose changes need it (never otherwise). It never
changes credentials. Exit status 0 when every setting is as wanted after
the command, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reboot && !apply {
				return errors.New("--reboot needs --apply")
			}
			cfg, err := config.LoadAndValidate(path)
			if err != nil {
				printFieldErrors(cmd, err)
				return exitError{1}
			}
			wanted, err := harden.WantedFrom(cfg.CameraNetwork)
			if err != nil {
				printFieldErrors(cmd, err)
				return exitError{1}
			}
			targets, err := harden.TargetsFrom(cfg, camera)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o := harden.Options{Apply: apply, Reboot: reboot, RequestTimeout: timeout}
			results := runHarden(ctx, targets, wanted, o)
			if err := harden.PrintTable(cmd.OutOrStdout(), results); err != nil {
				return err
			}
			ok := 0
			for i := range results {
				if results[i].OK() {
					ok++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d of %d cameras as wanted\n", ok, len(results))
			if ok != len(results) {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML)")
	cmd.Flags().StringVar(&camera, "camera", "", "only this camera id")
	cmd.Flags().BoolVar(&apply, "apply", false, "set what is not as wanted, and read it back")
	cmd.Flags().BoolVar(&reboot, "reboot", false, "with --apply: reboot a camera whose changes need a reboot, then read again")
	cmd.Flags().DurationVar(&timeout, "timeout", harden.DefaultRequestTimeout, "bound on each request to a camera")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// runHarden checks the cameras, a few at a time; results keep their order.
func runHarden(ctx context.Context, targets []harden.Target, w harden.Wanted, o harden.Options) []harden.CameraResult {
	results := make([]harden.CameraResult, len(targets))
	sem := make(chan struct{}, hardenWorkers)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = harden.Run(ctx, t, w, o)
		}()
	}
	wg.Wait()
	return results
}

// printFieldErrors prints a config problem per line, naming the field.
func printFieldErrors(cmd *cobra.Command, err error) {
	for _, fe := range config.AsFieldErrors(err) {
		fmt.Fprintln(cmd.OutOrStdout(), fe.Error())
	}
}
