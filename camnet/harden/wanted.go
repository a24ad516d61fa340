package harden

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"cordon/config"
)

// WantedFrom builds the wanted state from camera_network: NTP at the host
// and port of ntp_listen, DNS at the host of dns_listen (cameras query
// port 53), and those hosts as cordon's camera-side addresses. An empty
// listen address means the service is off: NTP off, no DNS server. A
// listen address without a concrete IP (":123", "0.0.0.0:53") cannot be
// given to a camera and is an error naming the field.
func WantedFrom(cn config.CameraNetwork) (Wanted, error) {
	var w Wanted
	if cn.NTPListen != "" {
		ap, err := concrete(cn.NTPListen)
		if err != nil {
			return w, config.FieldError{Field: "camera_network.ntp_listen", Msg: err.Error()}
		}
		w.NTP = ap
		w.Cordon = append(w.Cordon, ap.Addr())
	}
	if cn.DNSListen != "" {
		ap, err := concrete(cn.DNSListen)
		if err != nil {
			return w, config.FieldError{Field: "camera_network.dns_listen", Msg: err.Error()}
		}
		w.DNS = ap.Addr()
		if len(w.Cordon) == 0 || w.Cordon[0] != ap.Addr() {
			w.Cordon = append(w.Cordon, ap.Addr())
		}
	}
	return w, nil
}

func concrete(listen string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return netip.AddrPort{}, errors.New("must be host:port")
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.IsUnspecified() || !a.Is4() {
		return netip.AddrPort{}, errors.New("hardening points cameras at this address, so it must be a concrete IPv4 address (not empty, a name or 0.0.0.0)")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, errors.New("port must be 1..65535")
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// ntpWant is the NTP setting's want.
func (w Wanted) ntpWant() string {
	if !w.NTP.IsValid() {
		return "off"
	}
	return w.NTP.String()
}

// dnsWant is the DNS setting's want.
func (w Wanted) dnsWant() string {
	if !w.DNS.IsValid() {
		return "none"
	}
	return w.DNS.String()
}

// emptyAddr reports an unset IPv4 address field.
func emptyAddr(s string) bool { return s == "" || s == "0.0.0.0" }

// dnsHave describes DNS servers as read; dnsOK compares them with the
// want: the first must be the sinkhole, the others the sinkhole or unset.
func dnsHave(servers []string) string {
	var set []string
	for _, s := range servers {
		if !emptyAddr(s) && !slices.Contains(set, s) {
			set = append(set, s)
		}
	}
	if len(set) == 0 {
		return "none"
	}
	return strings.Join(set, ", ")
}

func (w Wanted) dnsOK(servers []string) bool {
	if !w.DNS.IsValid() {
		for _, s := range servers {
			if !emptyAddr(s) {
				return false
			}
		}
		return true
	}
	if len(servers) == 0 || servers[0] != w.DNS.String() {
		return false
	}
	for _, s := range servers[1:] {
		if !emptyAddr(s) && s != w.DNS.String() {
			return false
		}
	}
	return true
}

// dnsSet is the value written into every DNS server field.
func (w Wanted) dnsSet() string {
	if !w.DNS.IsValid() {
		return "0.0.0.0"
	}
	return w.DNS.String()
}

// ntpOK compares an NTP reading (enabled, server, port; port 0 = 123).
func (w Wanted) ntpOK(enabled bool, server string, port int) bool {
	if !w.NTP.IsValid() {
		return !enabled
	}
	if port == 0 {
		port = 123
	}
	return enabled && server == w.NTP.Addr().String() && port == int(w.NTP.Port())
}

func ntpHave(enabled bool, server string, port int) string {
	if !enabled {
		return "off"
	}
	if port == 0 {
		port = 123
	}
	if server == "" {
		return fmt.Sprintf("on, no server (port %d)", port)
	}
	return net.JoinHostPort(server, strconv.Itoa(port))
}

// gatewayDecision: the default gateway is wanted unset ("none") when all
// of cordon's camera-side addresses are on the camera's own subnet: the
// camera then needs no route at all, and without one it has no way out
// even if a firewall fails (guidance: "no default route"). When cordon is
// on another subnet the camera needs its router to answer cordon, so the
// gateway is kept and counts as wanted. Pointing the gateway at cordon
// instead would only be possible on the same subnet, where "none" is
// strictly better. It returns the want and whether "none" is wanted.
func (w Wanted) gatewayDecision(ip, mask string) (string, bool, error) {
	if len(w.Cordon) == 0 {
		return "kept (no camera-side address)", false, nil
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return "", false, errors.New("the camera reports no usable IPv4 address")
	}
	m := net.ParseIP(mask).To4()
	if m == nil {
		return "", false, errors.New("the camera reports no usable subnet mask")
	}
	ones, bits := net.IPMask(m).Size()
	if bits == 0 {
		return "", false, errors.New("the camera reports a non-contiguous subnet mask")
	}
	pfx := netip.PrefixFrom(a, ones).Masked()
	for _, c := range w.Cordon {
		if !pfx.Contains(c) {
			return fmt.Sprintf("kept (cordon %s not in %s)", c, pfx), false, nil
		}
	}
	return "none", true, nil
}

// clean makes a camera-provided value safe to show: printable, one line,
// at most n runes.
func clean(s string, n int) string {
	var b strings.Builder
	i := 0
	for _, r := range s {
		if i >= n {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		i++
	}
	return b.String()
}

// gatewaySetting is a vendor's "no default gateway" setting. read returns
// the reading, the vendor's state to write back (a document, a key
// prefix, the IPv6 part) and whether "none" is wanted; forWrite asks for
// the state a write starts from. Apply clears the gateway only when
// "none" is wanted.
func gatewaySetting[S any](read func(ctx context.Context, forWrite bool) (Reading, S, bool, error), unset func(ctx context.Context, s S) (Outcome, error)) Setting {
	return Setting{
		Name: SettingGateway, Want: "none",
		Read: func(ctx context.Context) (Reading, error) {
			rd, _, _, err := read(ctx, false)
			return rd, err
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			_, s, none, err := read(ctx, true)
			if err != nil || !none {
				return Outcome{}, err
			}
			return unset(ctx, s)
		},
	}
}
