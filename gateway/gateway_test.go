package gateway_test

import (
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"cordon/config"
	"cordon/e2e/e2eutil"
	"cordon/gateway"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A port in use is a start-up error naming the config key and the port,
// never a panic, and what had started is stopped again.
func TestStartupPortInUse(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	busyTCP := tcp.Addr().String()
	busyUDP := udp.LocalAddr().String()
	up := udp.LocalAddr().(*net.UDPAddr).Port
	rtp := up - up%2 // the pair that contains the busy port
	for _, c := range []struct {
		key, port string
		set       func(*config.Config)
	}{
		{"http.listen", busyTCP, func(c *config.Config) { c.HTTP.Listen = busyTCP }},
		{"rtsp.listen", busyTCP, func(c *config.Config) { c.RTSP.Listen = busyTCP }},
		{"rtsp.udp_rt", strconv.Itoa(up), func(c *config.Config) {
			c.RTSP.UDPRTPListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(rtp))
			c.RTSP.UDPRTCPListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(rtp+1))
		}},
		{"webrtc.udp_listen", busyUDP, func(c *config.Config) { c.WebRTC.UDPListen = busyUDP }},
		{"webrtc.tcp_listen", busyTCP, func(c *config.Config) { c.WebRTC.TCPListen = busyTCP }},
		{"metrics.listen", busyTCP, func(c *config.Config) { c.Metrics.Listen = busyTCP }},
		{"onvif.listen", busyTCP, func(c *config.Config) { c.ONVIF.Listen = busyTCP }},
	} {
		t.Run(c.key, func(t *testing.T) {
			cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "alice", Password: "alice-pw-1", Cameras: []string{"*"}}}, nil)
			c.set(cfg)
			if errs := cfg.Validate(); len(errs) > 0 {
				t.Fatal(errs)
			}
			g := &gateway.Gateway{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := g.Initialize()
			if err == nil {
				g.Close()
				t.Fatal("started on a port in use")
			}
			if !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), c.port) {
				t.Fatalf("error %q does not name %s and %s", err, c.key, c.port)
			}
		})
	}
}
