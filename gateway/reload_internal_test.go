package gateway

import (
	"slices"
	"testing"

	"cordon/config"
)

// The WHEP send settings are read when the WHEP server starts: a reload
// that changes them must name them as needing a restart, and a reload that
// changes only live settings must name nothing.
func TestRestartOnlyNamesSendSettings(t *testing.T) {
	base := config.Default()
	if got := restartOnly(base, config.Default()); len(got) != 0 {
		t.Fatalf("unchanged config: %v", got)
	}
	live := config.Default()
	live.Cameras = append(live.Cameras, config.Camera{Name: "lobby"})
	live.WebRTC.MaxRemoteCandidates = 4
	if got := restartOnly(base, live); len(got) != 0 {
		t.Fatalf("live-only change named %v", got)
	}
	for name, change := range map[string]func(*config.Config){
		"webrtc.udp_gso":            func(c *config.Config) { c.WebRTC.UDPGSO = "off" },
		"webrtc.send_burst_packets": func(c *config.Config) { c.WebRTC.SendBurstPackets = 96 },
		"webrtc.send_rate_packets":  func(c *config.Config) { c.WebRTC.SendRatePackets = 5000 },
		"webrtc.udp_listen":         func(c *config.Config) { c.WebRTC.UDPListen = ":9000" },
	} {
		c := config.Default()
		change(c)
		if got := restartOnly(base, c); !slices.Equal(got, []string{name}) {
			t.Errorf("%s changed: restartOnly = %v", name, got)
		}
	}
}
