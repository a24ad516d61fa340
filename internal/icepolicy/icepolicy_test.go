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
