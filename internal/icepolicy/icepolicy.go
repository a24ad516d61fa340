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
	"net"
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
//
// Two sets are excluded even inside webrtc.viewer_networks: the camera
// network (Cameras) and the gateway's own addresses (Own). A viewer
// network re-admits part of them only when it lies inside the excluded
// prefix itself, i.e. when the operator listed that part explicitly: with
// viewer_networks [10.0.0.0/8] and a camera interface on 10.20.0.0/24, no
// candidate in 10.20.0.0/24 is used; listing 10.20.0.128/25 admits that
// half, but never a camera's own address (a host prefix), unless it is
// listed as such (10.20.0.12/32). Likewise the gateway's addresses only
// as /32 or /128 entries (a viewer on the gateway host itself).
type Filter struct {
	// Viewers: webrtc.viewer_networks. When set, a candidate must be in
	// one of them; they are the only way to allow loopback, link-local,
	// camera-network or gateway addresses (see above).
	Viewers []netip.Prefix
	// Cameras: the camera network: camera hosts and the gateway's
	// camera-side addresses as host prefixes, and the networks of the
	// interfaces that hold them (CameraNetworks).
	Cameras []netip.Prefix
	// Own: the gateway's own addresses, as host prefixes (OwnAddresses).
	Own []netip.Prefix
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
		if !containsAny(f.Viewers, a) {
			return fmt.Errorf("%w: %s is outside webrtc.viewer_networks", ErrAddressRefused, a)
		}
	} else {
		switch {
		case a.IsLoopback():
			return fmt.Errorf("%w: %s is loopback (list it in webrtc.viewer_networks to allow it)", ErrAddressRefused, a)
		case a.IsLinkLocalUnicast():
			return fmt.Errorf("%w: %s is link-local", ErrAddressRefused, a)
		}
	}
	if p, ok := f.excluded(f.Own, a); ok {
		return fmt.Errorf("%w: %s is the gateway's own address (%s)", ErrAddressRefused, a, p)
	}
	if p, ok := f.excluded(f.Cameras, a); ok {
		return fmt.Errorf("%w: %s is on the camera network (%s)", ErrAddressRefused, a, p)
	}
	return nil
}

// excluded returns a prefix of set holding a that no viewer network lying
// inside it re-admits.
func (f *Filter) excluded(set []netip.Prefix, a netip.Addr) (netip.Prefix, bool) {
	for _, p := range set {
		if !p.Contains(a) {
			continue
		}
		explicit := false
		for _, v := range f.Viewers {
			if v.Contains(a) && v.Bits() >= p.Bits() && p.Contains(v.Addr()) {
				explicit = true
				break
			}
		}
		if !explicit {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func containsAny(set []netip.Prefix, a netip.Addr) bool {
	for _, p := range set {
		if p.Contains(a) {
			return true
		}
	}
	return false
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

// InterfacePrefixes returns the host's interface addresses with their
// networks (e.g. 10.20.0.1/24), read from the system.
func InterfacePrefixes() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("icepolicy: interface addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ones, _ := n.Mask.Size()
		ip = ip.Unmap()
		if ip.Is4() && ones > 32 {
			ones -= 96
		}
		if p := netip.PrefixFrom(ip, ones); p.IsValid() {
			out = append(out, p)
		}
	}
	return out, nil
}

// OwnAddresses turns interface prefixes into the gateway's own addresses,
// as host prefixes (Filter.Own).
func OwnAddresses(ifaces []netip.Prefix) []netip.Prefix {
	addrs := make([]netip.Addr, 0, len(ifaces))
	for _, p := range ifaces {
		addrs = append(addrs, p.Addr())
	}
	return HostPrefixes(addrs)
}

// CameraNetworks is Filter.Cameras: every camera-side address (camera
// hosts, the sinkhole's and SNTP's listen addresses) as a host prefix, and
// the network of every interface that holds one or whose network holds
// one (the camera subnet the gateway is attached to). A camera reached
// through a router adds its host prefix only.
func CameraNetworks(cameraAddrs []netip.Addr, ifaces []netip.Prefix) []netip.Prefix {
	out := HostPrefixes(cameraAddrs)
	seen := map[netip.Prefix]bool{}
	for _, ifp := range ifaces {
		subnet := ifp.Masked()
		if seen[subnet] {
			continue
		}
		for _, a := range cameraAddrs {
			if subnet.Contains(a.Unmap().WithZone("")) {
				seen[subnet] = true
				out = append(out, subnet)
				break
			}
		}
	}
	return out
}
