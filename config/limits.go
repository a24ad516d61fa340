package config

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Limits bound what operator-side clients may hold (limits.*), so that one
// host cannot starve logins, cameras or other viewers.
type Limits struct {
	HTTP   ConnLimit `mapstructure:"http"`
	RTSP   ConnLimit `mapstructure:"rtsp"`
	ICETCP ConnLimit `mapstructure:"ice_tcp"`
	// HeaderTimeout: a client must send its request head (HTTP) or first
	// bytes (RTSP, ICE-TCP) within it. IdleTimeout: a connection with no
	// traffic for this long is closed (above RTSP's 60 s session timeout).
	HeaderTimeout string `mapstructure:"header_timeout"`
	IdleTimeout   string `mapstructure:"idle_timeout"`
	// Argon2Concurrent bounds password hashing running at once (0 = half
	// the CPUs); Argon2Queue bounds sign-ins waiting for it, beyond which
	// the answer is 503 + Retry-After. Each address has at most one.
	Argon2Concurrent int `mapstructure:"argon2_concurrent"`
	Argon2Queue      int `mapstructure:"argon2_queue"`
}

// ConnLimit caps one door's TCP connections.
type ConnLimit struct {
	PerAddress int `mapstructure:"per_address"` // from one IP (IPv6: one /64)
	Total      int `mapstructure:"total"`
}

// DefaultLimits: generous enough for a control room behind one NAT
// address, small enough to keep descriptors for the cameras.
func DefaultLimits() Limits {
	return Limits{
		HTTP:          ConnLimit{PerAddress: 256, Total: 2048},
		RTSP:          ConnLimit{PerAddress: 128, Total: 1024},
		ICETCP:        ConnLimit{PerAddress: 256, Total: 1024},
		HeaderTimeout: "10s",
		IdleTimeout:   "2m",
		Argon2Queue:   8,
	}
}

func (v *validator) limits(l *Limits) {
	for _, c := range []struct {
		field string
		lim   ConnLimit
	}{{"limits.http", l.HTTP}, {"limits.rtsp", l.RTSP}, {"limits.ice_tcp", l.ICETCP}} {
		switch {
		case c.lim.Total < 1:
			v.add(c.field+".total", "must be at least 1 (descriptors are budgeted from it)")
		case c.lim.PerAddress < 1:
			v.add(c.field+".per_address", "must be at least 1")
		case c.lim.PerAddress > c.lim.Total:
			v.add(c.field+".per_address", "must not exceed "+c.field+".total")
		}
	}
	for _, d := range []struct{ field, s string }{{"limits.header_timeout", l.HeaderTimeout}, {"limits.idle_timeout", l.IdleTimeout}} {
		if t, err := parseDuration(d.s); err != nil || t < time.Second || t > 24*time.Hour {
			v.add(d.field, `must be a duration between 1s and 24h ("10s", "2m")`)
		}
	}
	if l.Argon2Concurrent < 0 || l.Argon2Concurrent > 64 {
		v.add("limits.argon2_concurrent", "must be 0 (half the CPUs) to 64")
	}
	if l.Argon2Queue < 1 || l.Argon2Queue > 1024 {
		v.add("limits.argon2_queue", "must be 1..1024")
	}
}

// Timeouts returns the parsed header and idle timeouts (defaults for
// values Validate rejects).
func (l *Limits) Timeouts() (header, idle time.Duration) {
	header, idle = 10*time.Second, 2*time.Minute
	if d, err := parseDuration(l.HeaderTimeout); err == nil && d > 0 {
		header = d
	}
	if d, err := parseDuration(l.IdleTimeout); err == nil && d > 0 {
		idle = d
	}
	return header, idle
}

// DescriptorTotals names the total caps of the listeners that are on, for
// the descriptor budget (internal/connlimit.CheckBudget).
func (c *Config) DescriptorTotals() map[string]int {
	out := map[string]int{"limits.http.total": c.Limits.HTTP.Total}
	if c.RTSP.Listen != "" {
		out["limits.rtsp.total"] = c.Limits.RTSP.Total
	}
	if c.WebRTC.TCPListen != "" {
		out["limits.ice_tcp.total"] = c.Limits.ICETCP.Total
	}
	return out
}

func (v *validator) iceHygiene(w *WebRTC) {
	for i, s := range w.ViewerNetworks {
		if _, err := netip.ParsePrefix(s); err != nil {
			v.add(fmt.Sprintf("webrtc.viewer_networks[%d]", i), "must be a CIDR such as 10.50.0.0/16 or 2001:db8::/48")
		}
	}
	if w.MaxRemoteCandidates < 1 || w.MaxRemoteCandidates > 64 {
		v.add("webrtc.max_remote_candidates", "must be 1..64")
	}
}

// ViewerPrefixes returns webrtc.viewer_networks parsed (invalid entries,
// which Validate reports, skipped).
func (w *WebRTC) ViewerPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(w.ViewerNetworks))
	for _, s := range w.ViewerNetworks {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// CameraNetworkAddrs returns the addresses known to be on the camera
// network: camera hosts given as IP literals and the camera-side service
// addresses (dns_listen, ntp_listen). Host names in camera URLs are
// resolved by the gateway, which adds their addresses.
func (c *Config) CameraNetworkAddrs() []netip.Addr {
	var out []netip.Addr
	add := func(host string) {
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
			out = append(out, a.Unmap())
		}
	}
	for i := range c.Cameras {
		add(c.Cameras[i].Host())
	}
	for _, l := range []string{c.CameraNetwork.DNSListen, c.CameraNetwork.NTPListen} {
		if h, _, err := net.SplitHostPort(l); err == nil {
			add(h)
		}
	}
	return out
}
