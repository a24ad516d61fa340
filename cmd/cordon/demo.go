package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"cordon/config"
	"cordon/demo"
)

func newDemoCmd() *cobra.Command {
	var opts demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole gateway on built-in synthetic cameras, on 127.0.0.1 (no files, no network)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			red := config.NewRedactor(config.Default())
			logger, err := newLogger(cmd, red)
			if err != nil {
				return err
			}
			opts.Logger, opts.Stdout = logger, cmd.OutOrStdout()
			d, err := demo.Start(opts)
			if err != nil {
				return err
			}
			defer d.Close()
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "\ncordon demo is running with %d synthetic cameras and a PTZ dome.\n\n", len(d.Cameras))
			fmt.Fprintf(w, "  viewer:    %s\n", d.URL)
			fmt.Fprintf(w, "  user:      %s\n", d.User)
			fmt.Fprintf(w, "  password:  %s\n", d.Password)
			if a := d.Gateway.RTSPAddr(); a != "" {
				fmt.Fprintf(w, "  RTSP:      ffplay -rtsp_transport tcp rtsp://%s:<password>@%s/lobby\n", d.User, a)
				fmt.Fprintf(w, "             (and /dome, /dome/sub: the dome's main and sub streams)\n")
			}
			if a := d.Gateway.MetricsAddr(); a != "" {
				fmt.Fprintf(w, "  metrics:   http://%s/metrics\n", a)
			}
			fmt.Fprintf(w, "  PTZ:       click the dome's tile, then hold the arrows (or the arrow keys, + and -)\n")
			fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n")
			return waitForSignals(cmd.Context(), nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.HTTPListen, "http-listen", "127.0.0.1:8080", "viewer, API and WHEP address")
	f.StringVar(&opts.RTSPListen, "rtsp-listen", "127.0.0.1:8554", "RTSP re-serve address")
	f.IntVar(&opts.RTSPUDPPort, "rtsp-udp-port", 8000, "RTSP over UDP: RTP port (RTCP is +1); -1 = TCP only")
	f.StringVar(&opts.WebRTCListen, "webrtc-listen", "127.0.0.1:8189", "WebRTC UDP and ICE-TCP address")
	f.StringVar(&opts.MetricsListen, "metrics-listen", "127.0.0.1:9464", "Prometheus metrics address")
	f.StringVar(&opts.Password, "password", "", "demo user's password (default: random, printed)")
	f.BoolVar(&opts.SelfSigned, "self-signed", false, "serve HTTPS with a self-signed certificate; prints its fingerprint")
	return cmd
}
