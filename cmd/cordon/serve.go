package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"cordon/config"
	"cordon/gateway"
)

func newServeCmd() *cobra.Command {
	var path string
	var selfSigned bool
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the gateway (SIGHUP or a change of the file reloads the config)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadAndValidate(path)
			if err != nil {
				for _, fe := range config.AsFieldErrors(err) {
					fmt.Fprintln(cmd.ErrOrStderr(), fe.Error())
				}
				if len(config.AsFieldErrors(err)) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
				}
				return exitError{1}
			}
			red := config.NewRedactor(cfg)
			logger, err := newLogger(cmd, red)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings() {
				logger.Warn("config: "+w.Msg, "field", w.Field)
			}
			gogc, floor := applyGC(os.Getenv)
			if floor != nil {
				defer floor.Close()
				logger.Info("garbage collector target", "gogc", gogc, "min_headroom_mib", serveGCHeadroom>>20, "gogc_now", floor.Current())
			} else {
				logger.Info("garbage collector target", "gogc", gogc, "from", "GOGC")
			}
			g := &gateway.Gateway{Config: cfg, ConfigPath: path, Logger: logger, Redactor: red,
				Stdout: cmd.OutOrStdout(), SelfSigned: selfSigned, Version: version}
			if err := g.Initialize(); err != nil {
				return err
			}
			defer g.Close()
			logger.Info("cordon serving", "http", g.HTTPAddr(), "tls", g.TLS(), "rtsp", g.RTSPAddr(), "metrics", g.MetricsAddr(), "cameras", len(cfg.Cameras))
			return waitForSignals(cmd.Context(), g.Reload)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML)")
	cmd.Flags().BoolVar(&selfSigned, "self-signed", false, "serve HTTPS (and RTSPS) with a certificate created in state_dir; prints its SHA-256 fingerprint")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// waitForSignals blocks until SIGINT/SIGTERM; SIGHUP calls reload.
func waitForSignals(ctx context.Context, reload func() error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-ch:
			if s == syscall.SIGHUP && reload != nil {
				_ = reload()
				continue
			}
			return nil
		}
	}
}
