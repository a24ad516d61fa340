package camnet

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func startNTP(t *testing.T, tweak func(*NTPServer)) *NTPServer {
	t.Helper()
	n := &NTPServer{Listen: "127.0.0.1:0", Metrics: NewMetrics(nil)}
	if tweak != nil {
		tweak(n)
	}
	if err := n.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// sntpExchange is a minimal SNTP client (RFC 4330 section 5): it sends a
// mode-3 request with a random transmit timestamp from local and returns the
// reply (nil on timeout) and the transmit timestamp sent.
func sntpExchange(t *testing.T, server netip.AddrPort, local netip.Addr, first byte, size int) ([]byte, []byte) {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: local.AsSlice()}, net.UDPAddrFromAddrPort(server))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := make([]byte, size)
	req[0] = first
	req[2] = 6 // poll 2^6
	xmt := make([]byte, 8)
	_, _ = rand.Read(xmt)
	if size >= 48 {
		copy(req[40:48], xmt)
	}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, xmt
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n], xmt
}

func TestNTPReply(t *testing.T) {
	n := startNTP(t, nil)
	for _, vn := range []byte{4, 3} {
		before := time.Now()
		resp, xmt := sntpExchange(t, n.Addr(), camNorth, 0<<6|vn<<3|3, 48)
		if resp == nil {
			t.Fatalf("v%d: no reply", vn)
		}
		if len(resp) != 48 {
			t.Fatalf("reply length %d", len(resp))
		}
		li, gotVN, mode := resp[0]>>6, (resp[0]>>3)&7, resp[0]&7
		if li != 0 || gotVN != vn || mode != 4 {
			t.Errorf("LI/VN/mode = %d/%d/%d, want 0/%d/4", li, gotVN, mode, vn)
		}
		if resp[1] != DefaultNTPStratum || resp[2] != 6 {
			t.Errorf("stratum %d poll %d", resp[1], resp[2])
		}
		if string(resp[12:16]) != "LOCL" {
			t.Errorf("refid %q", resp[12:16])
		}
		if string(resp[24:32]) != string(xmt) {
			t.Errorf("originate %x, want the client's transmit %x", resp[24:32], xmt)
		}
		rec, tx := ntpTime(resp[32:40]), ntpTime(resp[40:48])
		for name, ts := range map[string]time.Time{"receive": rec, "transmit": tx} {
			if d := ts.Sub(before); d < -time.Second || d > time.Second {
				t.Errorf("%s timestamp %v is %v from now", name, ts, d)
			}
		}
		if tx.Before(rec) {
			t.Errorf("transmit %v before receive %v", tx, rec)
		}
	}
	if got := testutil.ToFloat64(n.Metrics.ntpRequests); got != 2 {
		t.Errorf("requests = %v, want 2", got)
	}
}

func TestNTPIgnoresOthers(t *testing.T) {
	n := startNTP(t, func(n *NTPServer) { n.Rate = -1 })
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Send every packet that must be ignored, then one valid request with
	// extension bytes; the server handles them in order, so the first (and
	// only) reply must be the valid request's.
	for name, tc := range map[string]struct {
		first byte
		size  int
	}{
		"short":       {4<<3 | 3, 47},
		"server mode": {4<<3 | 4, 48},
		"symmetric":   {4<<3 | 1, 48},
		"broadcast":   {4<<3 | 5, 48},
		"control":     {2<<3 | 6, 48},
		"monlist":     {2<<3 | 7, 48},
		"version 0":   {0<<3 | 3, 48},
		"version 5":   {5<<3 | 3, 48},
	} {
		req := make([]byte, tc.size)
		req[0] = tc.first
		copy(req[tc.size-8:], "badbadba")
		if _, err := c.Write(req); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	good := make([]byte, 68)
	good[0] = 4<<3 | 3
	copy(good[40:48], "goodgood")
	if _, err := c.Write(good); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 512)
	sz, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no reply to the valid request: %v", err)
	}
	if string(buf[24:32]) != "goodgood" || sz != 48 {
		t.Fatalf("first reply answers %q (len %d): an invalid packet was answered", buf[24:32], sz)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(buf); err == nil {
		t.Fatalf("a second reply arrived: %x", buf[:48])
	}
	if got := testutil.ToFloat64(n.Metrics.ntpDropped.WithLabelValues("not_client")); got != 7 {
		t.Errorf("dropped{not_client} = %v, want 7", got)
	}
	if got := testutil.ToFloat64(n.Metrics.ntpDropped.WithLabelValues("malformed")); got != 1 {
		t.Errorf("dropped{malformed} = %v, want 1", got)
	}
}

func TestNTPRateLimitAndUnsynced(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	n := startNTP(t, func(n *NTPServer) {
		n.Now = clock.Now
		n.Rate, n.Burst = 1, 2
		n.Synchronised = func() bool { return false }
		n.Stratum = 4
		n.RefID = "GPS"
	})
	for i := 0; i < 2; i++ {
		resp, _ := sntpExchange(t, n.Addr(), camNorth, 4<<3|3, 48)
		if resp == nil {
			t.Fatalf("request %d within burst: no reply", i)
		}
		if resp[0]>>6 != 3 || resp[1] != 4 || string(resp[12:16]) != "GPS\x00" {
			t.Errorf("LI %d stratum %d refid %q, want 3, 4, GPS", resp[0]>>6, resp[1], resp[12:16])
		}
	}
	if resp, _ := sntpExchange(t, n.Addr(), camNorth, 4<<3|3, 48); resp != nil {
		t.Errorf("over the limit: got a reply")
	}
	if resp, _ := sntpExchange(t, n.Addr(), camSouth, 4<<3|3, 48); resp == nil {
		t.Errorf("other source starved")
	}
	if got := testutil.ToFloat64(n.Metrics.ntpDropped.WithLabelValues("rate_limit")); got != 1 {
		t.Errorf("dropped{rate_limit} = %v", got)
	}
}

func TestNTPTimestamps(t *testing.T) {
	for _, tt := range []time.Time{
		time.Date(2025, 3, 1, 12, 0, 0, 500_000_000, time.UTC),
		time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC), // era 1 begins
		time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		b := make([]byte, 8)
		putNTPTime(b, tt)
		if got := ntpTime(b); got.Sub(tt).Abs() > time.Microsecond {
			t.Errorf("round trip %v -> %v", tt, got)
		}
	}
	b := make([]byte, 8)
	putNTPTime(b, time.Unix(0, 0))
	if binary.BigEndian.Uint32(b) != ntpEpochOffset {
		t.Errorf("1970 = %d NTP seconds", binary.BigEndian.Uint32(b))
	}
}
