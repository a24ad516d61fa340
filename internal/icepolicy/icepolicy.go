// Package icepolicy decides which remote ICE candidates a WHEP session
// may use, so that a viewer cannot make cordon send STUN checks (or
// media) to arbitrary addresses and ports — another host on the operator
// network, the gateway itself, or the isolated camera network. The WHEP
// door applies it to every remote candidate (in the offer and in trickle
// PATCHes) before handing it to the ICE agent. It lives in internal/
// because it is policy the config feeds and the WHEP door enforces, and
// belongs to neither.
package icepolicy

import (
	"errors"
	"fmt"
	"net/netip"
)

// DefaultMaxRemoteCandidates bounds the remote candidates of one session
// (webrtc.max_remote_candidates).
const DefaultMaxRemoteCandidates = 16

// Errors a refused candidate carries (for logs and metrics).
var (
	ErrTooManyCandidates = errors.New("too many remote candidates for this session")
	ErrAddressRefused    = errors.New("remote candidate address not allowed")
)

// Filter is the candidate policy. The zero value refuses loopback,
// unspecified, multicast and link-local addresses and allows any other,
// with the default count bound.
type Filter struct {
	// Viewers: webrtc.viewer_networks. When set, a candidate must be in
	// one of them; they are the only way to allow loopback, link-local or
	// camera-network addresses.
	Viewers []netip.Prefix
	// Cameras: the isolated side (camera hosts and the gateway's
	// camera-side addresses); never a candidate unless in Viewers.
	Cameras []netip.Prefix
	// MaxRemote bounds candidates per session (0 = DefaultMaxRemoteCandidates).
	MaxRemote int
}

// Allowed reports whether a remote candidate at addr may be used.
func (f *Filter) Allowed(addr netip.Addr) error {
	if !addr.IsValid() {
		return fmt.Errorf("%w: not an IP address", ErrAddressRefused)
	}
	a := addr.Unmap().WithZone("")
	if a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() || a.IsLinkLocalMulticast() {
		return fmt.Errorf("%w: %s is not a unicast address", ErrAddressRefused, a)
	}
	if len(f.Viewers) > 0 {
		for _, p := range f.Viewers {
			if p.Contains(a) {
				return nil
			}
		}
		return fmt.Errorf("%w: %s is outside webrtc.viewer_networks", ErrAddressRefused, a)
	}
	switch {
	case a.IsLoopback():
		return fmt.Errorf("%w: %s is loopback (list it in webrtc.viewer_networks to allow it)", ErrAddressRefused, a)
	case a.IsLinkLocalUnicast():
		return fmt.Errorf("%w: %s is link-local", ErrAddressRefused, a)
	}
	for _, p := range f.Cameras {
		if p.Contains(a) {
			return fmt.Errorf("%w: %s is on the camera network", ErrAddressRefused, a)
		}
	}
	return nil
}

// Admit checks the n-th remote candidate of a session (n counts from 1,
// refused ones included) at addr.
func (f *Filter) Admit(n int, addr netip.Addr) error {
	max := f.MaxRemote
	if max <= 0 {
		max = DefaultMaxRemoteCandidates
	}
	if n > max {
		return fmt.Errorf("%w (%d)", ErrTooManyCandidates, max)
	}
	return f.Allowed(addr)
}

// HostPrefixes turns addresses into single-address prefixes (camera
// hosts for Filter.Cameras).
func HostPrefixes(addrs []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if a.IsValid() {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}
