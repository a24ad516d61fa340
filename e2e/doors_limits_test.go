package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"cordon/config"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// Connection caps per address on every operator-side TCP door (HTTP,
// RTSP, ICE-TCP): the N+1th connection from one address is refused at
// once (HTTP and RTSP with a 503), another address is still served; and
// the WHEP candidate policy: the PATCH with 100 candidates makes
// the gateway check at most 16 of them, and send nothing to an address
// the policy refuses.
// (Function over 80 lines: cases in a table or subtests sharing one fixture.)
func TestDoorsConnectionCapsAndCandidates(t *testing.T) {
	const perAddress = 4
	cam := drCam(t, "c-a", "127.0.0.121")
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "bob", Password: "bob-pw-1", Cameras: []string{"c-a"}}}, []config.Camera{drCamCfg(cam)})
	lim := config.ConnLimit{PerAddress: perAddress, Total: 64}
	cfg.Limits.HTTP, cfg.Limits.RTSP, cfg.Limits.ICETCP = lim, lim, lim
	allowedHost, refusedHost := "127.0.0.123", "127.0.0.124"
	cfg.WebRTC.ViewerNetworks = []string{"127.0.0.1/32", "127.0.0.122/32", allowedHost + "/32"}
	g := drStart(t, cfg, "")
	base := g.Base
	drWaitAudit(t, cfg.Audit.Path, 0, drMatch{Event: "camera_online", Camera: "c-a"}, 15*time.Second)
	bob := e2eutil.Login(t, base, "bob", "bob-pw-1")

	// fill opens perAddress idle connections from src to addr and returns
	// what the server did with one more.
	fill := func(t *testing.T, src, addr string) (closed bool, said string) {
		t.Helper()
		for range perAddress {
			testtool.DialFrom(t, src, addr)
		}
		return dwClosedAtOnce(testtool.DialFrom(t, src, addr), 5*time.Second)
	}
	rejected := func(protocol string) float64 {
		n, _ := coreMetric(t, g.MetricsAddr(), "cordon_connections_rejected_total", `protocol="`+protocol+`"`, `reason="per_address"`)
		return n
	}

	t.Run("http", func(t *testing.T) {
		closed, said := fill(t, "127.0.0.125", g.HTTPAddr())
		if !closed || !strings.Contains(said, "503") || !strings.Contains(said, "Retry-After") {
			t.Errorf("HTTP connection %d from one address: closed %v, said %q; want a 503 with Retry-After", perAddress+1, closed, said)
		}
		if r := drDo(t, "127.0.0.126", http.MethodGet, base+"/healthz", nil, ""); r.Status != 200 {
			t.Errorf("another address: %s, want 200", r)
		}
		if r := drLogin(t, "127.0.0.126", base, "bob", "bob-pw-1"); r.Status != 200 {
			t.Errorf("login from another address: %s", r)
		}
		if rejected("http") < 1 {
			t.Error("no rejection counted for http")
		}
	})

	t.Run("rtsp", func(t *testing.T) {
		closed, said := fill(t, "127.0.0.125", g.RTSPAddr())
		if !closed || !strings.HasPrefix(said, "RTSP/1.0 503") {
			t.Errorf("RTSP connection %d from one address: closed %v, said %q; want RTSP/1.0 503", perAddress+1, closed, said)
		}
		c := dwRTSPDial(t, g.RTSPAddr(), "127.0.0.126")
		if st, _ := c.do("DESCRIBE", "c-a", dwBasic("bob", "bob-pw-1")); st != 200 {
			t.Errorf("another address: DESCRIBE %d, want 200", st)
		}
		if rejected("rtsp") < 1 {
			t.Error("no rejection counted for rtsp")
		}
	})

	t.Run("ice-tcp", func(t *testing.T) {
		addr := g.ICETCPAddr()
		if closed, _ := fill(t, "127.0.0.122", addr); !closed {
			t.Errorf("ICE-TCP connection %d from one address stayed open", perAddress+1)
		}
		// outside webrtc.viewer_networks: closed at once as well
		if closed, _ := dwClosedAtOnce(testtool.DialFrom(t, "127.0.0.127", addr), 5*time.Second); !closed {
			t.Error("an ICE-TCP connection from outside the viewer networks stayed open")
		}
		// another address plays over ICE-TCP
		v, st, body := e2eutil.Dial(t, base, "c-a", bob, e2eutil.ViewerOptions{TCPOnly: true})
		if v == nil {
			t.Fatalf("WHEP over ICE-TCP from another address: %d %s", st, body)
		}
		v.NextAU(t, 15*time.Second)
		if rejected("ice_tcp") < 1 {
			t.Error("no rejection counted for ice_tcp")
		}
		v.Delete(t)
	})

	t.Run("patch-with-100-candidates", func(t *testing.T) {
		allowed, refused := testtool.NewUDPSink(t, allowedHost, 50), testtool.NewUDPSink(t, refusedHost, 50)
		offer := dwOfferNoCandidates(t)
		r := drDo(t, "127.0.0.1", http.MethodPost, base+"/whep/c-a", map[string]string{"Authorization": bearer(bob), "Content-Type": "application/sdp"}, offer)
		if r.Status != http.StatusCreated || r.Header.Get("Location") == "" {
			t.Fatalf("POST: %s", r)
		}
		var frag strings.Builder
		fmt.Fprintf(&frag, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n", dwUfrag(offer), strings.Repeat("p", 24))
		for i := range 50 {
			fmt.Fprintf(&frag, "a=candidate:%d 1 udp 2130706431 %s %d typ host\r\n", 2*i, allowedHost, allowed.Port(i))
			fmt.Fprintf(&frag, "a=candidate:%d 1 udp 2130706431 %s %d typ host\r\n", 2*i+1, refusedHost, refused.Port(i))
		}
		frag.WriteString("a=end-of-candidates\r\n")
		p := drDo(t, "127.0.0.1", http.MethodPatch, base+r.Header.Get("Location"),
			map[string]string{"Authorization": bearer(bob), "Content-Type": "application/trickle-ice-sdpfrag"}, frag.String())
		if p.Status != http.StatusNoContent {
			t.Fatalf("PATCH: %s", p)
		}
		// the session never connects; it ends when ICE gives up, after
		// every check pion makes
		e2eutil.WaitFor(t, 60*time.Second, "the unconnected session to end", func() bool { return g.Sessions().Count("webrtc") == 0 })
		n, ports := allowed.Total()
		nRefused, portsRefused := refused.Total()
		t.Logf("one %d-byte PATCH with 100 candidates: %d STUN packets to %d ports (at most 16 candidates looked at, 8 of them allowed), %d packets to refused addresses; the issue measured 800 to 100 ports",
			frag.Len(), n, ports, nRefused)
		if nRefused != 0 || portsRefused != 0 {
			t.Errorf("%d packets reached %d ports of an address outside the viewer networks", nRefused, portsRefused)
		}
		if ports == 0 || ports > 8 || n > 16*8 {
			t.Errorf("%d packets to %d ports, want checks to at most 8 ports and at most %d packets", n, ports, 16*8)
		}
		for reason, want := range map[string]float64{"too_many": 84, "address": 8} {
			if got, _ := coreMetric(t, g.MetricsAddr(), "cordon_whep_candidates_refused_total", `reason="`+reason+`"`); got != want {
				t.Errorf("candidates refused for %s: %v, want %v", reason, got, want)
			}
		}
	})
}
