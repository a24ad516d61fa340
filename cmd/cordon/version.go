package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is stamped at release builds with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version and build info",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "cordon %s\n", version)
			fmt.Fprintf(w, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision", "vcs.time", "vcs.modified", "CGO_ENABLED":
						fmt.Fprintf(w, "%s: %s\n", s.Key, s.Value)
					}
				}
				for _, d := range bi.Deps {
					switch d.Path {
					case "github.com/bluenviron/gortsplib/v5", "github.com/pion/webrtc/v4":
						fmt.Fprintf(w, "%s: %s\n", d.Path, d.Version)
					}
				}
			}
			return nil
		},
	}
}
