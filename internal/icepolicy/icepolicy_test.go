package icepolicy

import (
	"errors"
	"net/netip"
	"testing"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestDefaultPolicy(t *testing.T) {
	f := &Filter{Cameras: HostPrefixes([]netip.Addr{addr("10.20.0.12"), addr("10.20.0.13")})}
	for s, ok := range map[string]bool{
		"192.0.2.10": true, "2001:db8::5": true, "::ffff:192.0.2.10": true,
		"127.0.0.1": false, "::1": false, "0.0.0.0": false, "224.0.0.1": false, "ff02::1": false,
		"169.254.1.1": false, "fe80::1": false, "10.20.0.12": false, "::ffff:10.20.0.13": false, "10.20.0.14": true,
	} {
		err := f.Allowed(addr(s))
		if (err == nil) != ok {
			t.Errorf("%s: %v", s, err)
		}
		if err != nil && !errors.Is(err, ErrAddressRefused) {
			t.Errorf("%s: %v", s, err)
		}
	}
	if f.Allowed(netip.Addr{}) == nil {
		t.Error("invalid address allowed")
	}
}

func TestViewerNetworksAreTheOnlyWay(t *testing.T) {
	f := &Filter{
		Viewers: []netip.Prefix{netip.MustParsePrefix("10.50.0.0/16"), netip.MustParsePrefix("127.0.0.0/8")},
		Cameras: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/24")},
	}
	for s, ok := range map[string]bool{"10.50.3.4": true, "127.0.0.1": true, "192.0.2.10": false, "10.20.0.12": false, "224.0.0.1": false} {
		if err := f.Allowed(addr(s)); (err == nil) != ok {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestCandidateCount(t *testing.T) {
	f := &Filter{}
	for n := 1; n <= DefaultMaxRemoteCandidates; n++ {
		if err := f.Admit(n, addr("192.0.2.1")); err != nil {
			t.Fatal(n, err)
		}
	}
	if err := f.Admit(DefaultMaxRemoteCandidates+1, addr("192.0.2.1")); !errors.Is(err, ErrTooManyCandidates) {
		t.Fatal(err)
	}
	f.MaxRemote = 2
	if err := f.Admit(3, addr("192.0.2.1")); !errors.Is(err, ErrTooManyCandidates) {
		t.Fatal(err)
	}
}

// A broad viewer network does not re-admit the camera network: only a
// viewer network lying inside it does, and a camera's own address only
// when listed as such.
func TestCameraNetworkStaysExcluded(t *testing.T) {
	cams := CameraNetworks([]netip.Addr{addr("10.20.0.12"), addr("10.20.0.1")},
		[]netip.Prefix{netip.MustParsePrefix("10.20.0.1/24"), netip.MustParsePrefix("10.50.0.1/16")})
	broad := &Filter{Viewers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Cameras: cams}
	for s, ok := range map[string]bool{"10.50.3.4": true, "10.20.0.12": false, "10.20.0.77": false, "10.20.0.1": false, "10.21.0.5": true} {
		if err := broad.Allowed(addr(s)); (err == nil) != ok {
			t.Errorf("viewer_networks 10/8: %s: %v", s, err)
		}
	}
	inside := &Filter{Viewers: []netip.Prefix{netip.MustParsePrefix("10.50.0.0/16"), netip.MustParsePrefix("10.20.0.0/25"),
		netip.MustParsePrefix("10.20.0.1/32")}, Cameras: cams}
	for s, ok := range map[string]bool{"10.50.3.4": true, "10.20.0.77": true, "10.20.0.12": false, "10.20.0.1": true, "10.20.0.200": false} {
		if err := inside.Allowed(addr(s)); (err == nil) != ok {
			t.Errorf("viewer_networks inside the camera network: %s: %v", s, err)
		}
	}
	// without viewer networks the camera subnet is refused as a whole
	if err := (&Filter{Cameras: cams}).Allowed(addr("10.20.0.99")); !errors.Is(err, ErrAddressRefused) {
		t.Errorf("camera subnet: %v", err)
	}
}

// The gateway's own addresses are never a candidate (a viewer cannot make
// cordon check itself), unless one is listed as a host prefix.
func TestOwnAddressesExcluded(t *testing.T) {
	own := OwnAddresses([]netip.Prefix{netip.MustParsePrefix("10.50.0.1/16"), netip.MustParsePrefix("2001:db8::1/64")})
	f := &Filter{Viewers: []netip.Prefix{netip.MustParsePrefix("10.50.0.0/16"), netip.MustParsePrefix("2001:db8::/64")}, Own: own}
	for s, ok := range map[string]bool{"10.50.0.1": false, "10.50.0.2": true, "2001:db8::1": false, "2001:db8::2": true} {
		if err := f.Allowed(addr(s)); (err == nil) != ok {
			t.Errorf("%s: %v", s, err)
		}
	}
	if err := (&Filter{Own: own}).Allowed(addr("10.50.0.1")); !errors.Is(err, ErrAddressRefused) {
		t.Errorf("own address without viewer networks: %v", err)
	}
	f.Viewers = append(f.Viewers, netip.MustParsePrefix("10.50.0.1/32"))
	if err := f.Allowed(addr("10.50.0.1")); err != nil {
		t.Errorf("own address listed as a host prefix: %v", err)
	}
}

// The host's real interfaces: loopback is among them; a camera on it makes
// its network the camera network, and its address the gateway's own.
func TestInterfacePrefixes(t *testing.T) {
	ifs, err := InterfacePrefixes()
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParsePrefix("127.0.0.1/8")
	found := false
	for _, p := range ifs {
		if p == lo {
			found = true
		}
	}
	if !found {
		t.Fatalf("no %s among %v", lo, ifs)
	}
	cams := CameraNetworks([]netip.Addr{addr("127.0.0.9")}, ifs)
	f := &Filter{Viewers: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, Cameras: cams, Own: OwnAddresses(ifs)}
	for s, ok := range map[string]bool{"127.0.0.9": false, "127.0.0.50": false, "127.0.0.1": false, "192.0.2.10": true} {
		if err := f.Allowed(addr(s)); (err == nil) != ok {
			t.Errorf("%s: %v", s, err)
		}
	}
}
