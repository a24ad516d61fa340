// Command cordon is the gateway's command line. It only parses flags and
// calls into the packages; everything it runs lives in gateway, config,
// auth, camnet, cluster, democam and record.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"cordon/config"
)

// exitError carries an exit status without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	root := newRoot(os.Stdin, os.Stdout, os.Stderr)
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "cordon:", err)
		os.Exit(1)
	}
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "cordon",
		Short:         "cordon: a vendor-neutral video gateway for untrusted cameras",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().String("log-format", "text", "log format: text or json")
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(
		newDemoCmd(),
		newServeCmd(),
		newCheckCmd(),
		newHashPasswordCmd(),
		newAuditCmd(),
		newExportCmd(),
		newDoctorCmd(),
		newHardenCmd(),
		newVersionCmd(),
		newClusterCmd(),
	)
	return root
}

// newLogger builds the process logger: slog with every configured secret
// redacted centrally.
func newLogger(cmd *cobra.Command, red *config.Redactor) (*slog.Logger, error) {
	format, _ := cmd.Flags().GetString("log-format")
	levelName, _ := cmd.Flags().GetString("log-level")
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(cmd.ErrOrStderr(), opts)
	case "json":
		h = slog.NewJSONHandler(cmd.ErrOrStderr(), opts)
	default:
		return nil, fmt.Errorf("--log-format: want text or json, got %q", format)
	}
	return slog.New(config.NewRedactingHandler(h, red)), nil
}
