package whep

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"cordon/internal/testtool"
	"cordon/internal/whepclient"
	"cordon/relay/session"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// checkSPSPPSIDR asserts the first AU a viewer decodes is a full keyframe.
func checkSPSPPSIDR(t *testing.T, au whepclient.AU) uint32 {
	t.Helper()
	types := naluTypes(au.NALUs)
	if !slices.Equal(types, []int{7, 8, 5}) {
		t.Fatalf("first access unit has NAL types %v, want [7 8 5] (SPS, PPS, IDR)", types)
	}
	return frameNo(au.NALUs[2])
}

func TestPlayUDP(t *testing.T) {
	e := newEnv(t, nil)
	cam := startCamera(t, e.hub, "cam1")

	c, resp := newClient(t, e, "cam1", clientOpts{})
	if c == nil {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.HasPrefix(c.location, "/whep/cam1/") || len(strings.TrimPrefix(c.location, "/whep/cam1/")) != 32 {
		t.Errorf("Location %q", c.location)
	}
	checkCandidates(t, c.answer, "127.0.0.1", e.srv)

	first := checkSPSPPSIDR(t, c.nextAU(t, 10*time.Second))
	// then every frame, in decode order, without gaps
	next := first + 1
	for range 2 * testFPS {
		au := c.nextAU(t, 2*time.Second)
		if n := frameNo(au.NALUs[len(au.NALUs)-1]); n != next {
			t.Fatalf("got frame %d, want %d (types %v, %x)", n, next, naluTypes(au.NALUs), au.NALUs[len(au.NALUs)-1][:8])
		}
		next++
	}
	if c.audioPackets() == 0 {
		t.Error("no audio packets")
	}
	if pt := c.videoPT(); pt == 0 {
		t.Error("no video payload type")
	}
	ss := e.srv.Sessions.List()
	if len(ss) != 1 || ss[0].Camera != "cam1" || ss[0].User != "alice" || ss[0].Protocol != "webrtc" || ss[0].Bytes == 0 {
		t.Fatalf("Sessions() = %+v", ss)
	}
	_ = cam

	// DELETE by another user: not found; by the owner: 200 and media stops.
	if r := do(t, e, http.MethodDelete, c.location, "carol", "", ""); r.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE by another user: %d", r.StatusCode)
	}
	if r := do(t, e, http.MethodDelete, c.location, "", "", ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("DELETE without token: %d", r.StatusCode)
	}
	t0 := time.Now()
	if r := do(t, e, http.MethodDelete, c.location, "alice", "", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", r.StatusCode)
	}
	t.Logf("DELETE took %v", time.Since(t0))
	if n := e.srv.Sessions.Count(""); n != 0 {
		t.Fatalf("%d sessions after DELETE", n)
	}
	if s, en := e.events.counts(); s != 1 || en != 1 || e.events.bytes[0] == 0 {
		t.Fatalf("events: %d starts, %d ends, bytes %v", s, en, e.events.bytes)
	}
	// media stops: once what was in flight has arrived (nothing for 300
	// ms), nothing more comes for 500 ms. There is no signal for "nothing
	// more will arrive", so this negative check has to wait.
	for quiet := false; !quiet; {
		select {
		case <-c.aus:
		case <-time.After(300 * time.Millisecond):
			quiet = true
		}
	}
	select {
	case <-c.aus:
		t.Fatal("media still flowing after DELETE")
	case <-time.After(500 * time.Millisecond):
	}
	if r := do(t, e, http.MethodDelete, c.location, "alice", "", ""); r.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %d", r.StatusCode)
	}
}

// checkCandidates: only the configured host IP, only the server's ports.
func checkCandidates(t *testing.T, answer, ip string, srv *Server) {
	t.Helper()
	udpPort := srv.UDPAddr().(*net.UDPAddr).Port
	tcpPort := 0
	if a := srv.TCPAddr(); a != nil {
		tcpPort = a.(*net.TCPAddr).Port
	}
	seen := map[string]bool{} // candidates repeat in every bundled m-section
	var udp, tcp int
	for line := range strings.SplitSeq(answer, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "a=candidate:") {
			continue
		}
		f := strings.Fields(line)
		// foundation component transport priority address port typ host ...
		if len(f) < 8 || f[7] != "host" {
			t.Errorf("non-host candidate: %s", line)
			continue
		}
		if f[4] != ip {
			t.Errorf("candidate advertises %s, want only %s: %s", f[4], ip, line)
		}
		port, _ := strconv.Atoi(f[5])
		if key := f[2] + " " + f[4] + " " + f[5]; seen[key] {
			continue
		} else {
			seen[key] = true
		}
		switch strings.ToLower(f[2]) {
		case "udp":
			udp++
			if port != udpPort {
				t.Errorf("UDP candidate port %d, want %d", port, udpPort)
			}
		case "tcp":
			tcp++
			if port != tcpPort {
				t.Errorf("TCP candidate port %d, want %d", port, tcpPort)
			}
		}
	}
	if udp != 1 {
		t.Errorf("%d UDP candidates, want 1", udp)
	}
	if tcpPort != 0 && tcp != 1 {
		t.Errorf("%d TCP candidates, want 1", tcp)
	}
}

func TestPlayICETCPOnly(t *testing.T) {
	e := newEnv(t, nil)
	startCamera(t, e.hub, "cam1")
	c, resp := newClient(t, e, "cam1", clientOpts{tcpOnly: true})
	if c == nil {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	first := checkSPSPPSIDR(t, c.nextAU(t, 10*time.Second))
	for i := range uint32(testFPS) {
		au := c.nextAU(t, 2*time.Second)
		if n := frameNo(au.NALUs[len(au.NALUs)-1]); n != first+1+i {
			t.Fatalf("got frame %d, want %d", n, first+1+i)
		}
	}
	// the selected pair really is TCP
	pair, err := c.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected pair: %v", err)
	}
	if pair.Remote.Protocol.String() != "tcp" {
		t.Fatalf("selected pair is %s, want tcp", pair.Remote.Protocol)
	}
}

func TestSeveralViewersAndAStalledOne(t *testing.T) {
	e := newEnv(t, nil)
	cam := startCamera(t, e.hub, "cam1")

	// a viewer that never drains its tracks, and one that vanishes
	stalled, _ := newClient(t, e, "cam1", clientOpts{noRead: true})
	if stalled == nil {
		t.Fatal("stalled client: POST failed")
	}
	vanishing, _ := newClient(t, e, "cam1", clientOpts{})
	var good []*client
	for range 3 {
		c, resp := newClient(t, e, "cam1", clientOpts{})
		if c == nil {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
		good = append(good, c)
	}
	for _, c := range append(good, vanishing) {
		checkSPSPPSIDR(t, c.nextAU(t, 10*time.Second))
	}
	// the vanishing client goes away without DELETE
	vanishing.Close()
	testtool.WaitFor(t, 5*time.Second, "the vanished session to end", func() bool { return e.srv.Sessions.Count("") == 4 })

	// over 3 s the others get every frame at the camera's rate
	for _, c := range good {
		for len(c.aus) > 0 {
			<-c.aus
		}
	}
	start := cam.frames.Load()
	testtool.WaitFor(t, 10*time.Second, "3 s of camera frames", func() bool { return cam.frames.Load()-start >= 3*testFPS })
	produced := int(cam.frames.Load() - start)
	for i, c := range good {
		got := len(c.aus)
		if got < produced-3 {
			t.Errorf("viewer %d received %d frames while the camera produced %d", i, got, produced)
		}
		var prev uint32
		for k := range got {
			au := <-c.aus
			n := frameNo(au.NALUs[len(au.NALUs)-1])
			if k > 0 && n != prev+1 {
				t.Errorf("viewer %d: frame %d after %d", i, n, prev)
				break
			}
			prev = n
		}
	}
	t.Logf("camera produced %d frames in 3 s; good viewers kept up with a stalled and a vanished viewer present", produced)
}

func TestErrors(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.TCPListen = "" })
	offline := &cameraOffline{}
	offline.put(t, e)
	startCamera(t, e.hub, "cam1")

	offer := browserOffer(t, true)
	check := func(name string, resp *http.Response, status int) {
		t.Helper()
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, status)
			return
		}
		var body struct{ Error string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error == "" {
			t.Errorf("%s: body is not {\"error\": ...}: %v", name, err)
		}
		if status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", name, resp.Header.Get("WWW-Authenticate"))
		}
		if status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", name)
		}
	}
	check("no token", post(t, e, "cam1", "", "application/sdp", offer), 401)
	check("bad token", post(t, e, "cam1", "mallory", "application/sdp", offer), 401)
	check("not permitted", post(t, e, "cam1", "bob", "application/sdp", offer), 403)
	check("unknown camera", post(t, e, "nope", "alice", "application/sdp", offer), 404)
	check("known to access, not in hub", post(t, e, "ghost", "alice", "application/sdp", offer), 404)
	check("bad camera id", post(t, e, "../etc", "alice", "application/sdp", offer), 404)
	check("content type", post(t, e, "cam1", "alice", "text/plain", offer), 415)
	check("garbage", post(t, e, "cam1", "alice", "application/sdp", "hello"), 400)
	check("no video", post(t, e, "cam1", "alice", "application/sdp", browserOffer(t, false)), 400)
	vp8 := strings.NewReplacer("H264", "XXXX").Replace(offer)
	check("no common codec", post(t, e, "cam1", "alice", "application/sdp", vp8), 400)
	check("too large", post(t, e, "cam1", "alice", "application/sdp", offer+strings.Repeat("a=x\r\n", 20000)), 413)
	t0 := time.Now()
	check("camera offline", post(t, e, "offline", "alice", "application/sdp", offer), 503)
	if d := time.Since(t0); d < 400*time.Millisecond {
		t.Errorf("503 after %v: did not wait for the camera", d)
	}
	check("wrong method", do(t, e, http.MethodGet, "/whep/cam1", "alice", "", ""), 405)
	e.events.mu.Lock()
	e.events.notOK = fmt.Errorf("the audit log cannot be written")
	e.events.mu.Unlock()
	r := post(t, e, "cam1", "alice", "application/sdp", offer)
	check("audit broken", r, 503)
	e.events.mu.Lock()
	e.events.notOK = nil
	// Ready still passes but recording the start fails (the log broke on
	// this very write): the session must not start
	e.events.startErr = fmt.Errorf("audit append: disk full")
	e.events.mu.Unlock()
	r = post(t, e, "cam1", "alice", "application/sdp", offer)
	check("view_start cannot be recorded", r, 503)
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	e.events.mu.Lock()
	e.events.startErr = nil
	e.events.mu.Unlock()
	if n := e.srv.Sessions.Count(""); n != 0 {
		t.Errorf("%d sessions left", n)
	}
	if s, en := e.events.counts(); s != 0 || en != 0 {
		t.Errorf("events for refused requests: %d/%d", s, en)
	}
	testtool.WaitFor(t, 2*time.Second, "the offline camera's readers to go", func() bool {
		return len(offline.stream.Info().Readers) == 0 || offline.stream.Info().Readers["webrtc"] == 0
	})
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.TCPListen = ""; s.RateLimit = 1; s.RateBurst = 3 })
	var last *http.Response
	for range 5 {
		last = post(t, e, "cam1", "", "application/sdp", "x")
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("after a burst: %d Retry-After=%q", last.StatusCode, last.Header.Get("Retry-After"))
	}
}

func TestPatchKillClose(t *testing.T) {
	e := newEnv(t, nil)
	startCamera(t, e.hub, "cam1")
	startCamera(t, e.hub, "cam2")
	a, _ := newClient(t, e, "cam1", clientOpts{})
	b, _ := newClient(t, e, "cam2", clientOpts{token: "bob"})
	c, _ := newClient(t, e, "cam2", clientOpts{})
	if a == nil || b == nil || c == nil {
		t.Fatal("POST failed")
	}
	checkSPSPPSIDR(t, a.nextAU(t, 10*time.Second))

	frag := "a=ice-ufrag:" + ufragOf(a.pc.LocalDescription().SDP) + "\r\na=ice-pwd:x\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n"
	if r := do(t, e, http.MethodPatch, a.location, "alice", "application/trickle-ice-sdpfrag", frag); r.StatusCode != http.StatusNoContent {
		t.Errorf("PATCH: %d", r.StatusCode)
	}
	if r := do(t, e, http.MethodPatch, a.location, "alice", "application/sdp", frag); r.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("PATCH wrong type: %d", r.StatusCode)
	}
	restart := strings.Replace(frag, "a=ice-ufrag:", "a=ice-ufrag:new", 1)
	if r := do(t, e, http.MethodPatch, a.location, "alice", "application/trickle-ice-sdpfrag", restart); r.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("ICE restart: %d", r.StatusCode)
	}
	// another principal's session: 404, its existence not revealed
	if r := do(t, e, http.MethodPatch, a.location, "bob", "application/trickle-ice-sdpfrag", frag); r.StatusCode != http.StatusNotFound {
		t.Errorf("PATCH by bob on cam1: %d", r.StatusCode)
	}
	// admin may end anyone's session
	if r := do(t, e, http.MethodDelete, c.location, "admin", "", ""); r.StatusCode != http.StatusOK {
		t.Errorf("admin DELETE: %d", r.StatusCode)
	}
	if n := len(e.srv.Sessions.KillWhere(func(s session.Info) bool { return s.User == "bob" }, "killed")); n != 1 {
		t.Errorf("KillWhere killed %d", n)
	}
	testtool.WaitFor(t, 3*time.Second, "one session left", func() bool { return e.srv.Sessions.Count("") == 1 })
	if _, ok := e.srv.Sessions.Kill("nope", "killed"); ok {
		t.Error("Kill of an unknown id")
	}
	e.srv.Close()
	if n := e.srv.Sessions.Count(""); n != 0 {
		t.Errorf("%d sessions after Close", n)
	}
	if s, en := e.events.counts(); s != 3 || en != 3 {
		t.Errorf("events: %d starts, %d ends", s, en)
	}
	// POST after Close
	if r := post(t, e, "cam1", "alice", "application/sdp", browserOffer(t, true)); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST after Close: %d", r.StatusCode)
	}
}

func TestInitializePortBusy(t *testing.T) {
	e := newEnv(t, nil)
	s2 := &Server{UDPListen: e.srv.UDPAddr().String(), Hub: e.hub, Access: e.srv.Access}
	if err := s2.Initialize(); err == nil {
		s2.Close()
		t.Fatal("Initialize on a busy UDP port succeeded")
	}
	s3 := &Server{UDPListen: "127.0.0.1:0", TCPListen: e.srv.TCPAddr().String(), Hub: e.hub, Access: e.srv.Access}
	if err := s3.Initialize(); err == nil {
		s3.Close()
		t.Fatal("Initialize on a busy TCP port succeeded")
	}
}

// playsWithCandidatesOn: a viewer of a new camera cam1 gets an answer
// whose host candidates are on ip only, and a first frame SPS, PPS, IDR.
func playsWithCandidatesOn(t *testing.T, e *env, ip string) {
	t.Helper()
	startCamera(t, e.hub, "cam1")
	c, resp := newClient(t, e, "cam1", clientOpts{})
	if c == nil {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	checkCandidates(t, c.answer, ip, e.srv)
	checkSPSPPSIDR(t, c.nextAU(t, 10*time.Second))
}

func TestHostIPs(t *testing.T) {
	// advertise an address that is not the socket's: a 1:1 NAT in front
	e := newEnv(t, func(s *Server) { s.UDPListen = "0.0.0.0:0"; s.TCPListen = ""; s.HostIPs = []string{"127.0.0.1"} })
	playsWithCandidatesOn(t, e, "127.0.0.1")
}

// With ICE-TCP listening on every interface and UDP on loopback, the TCP
// host candidates are on the UDP ones' address only (pion would offer one
// per interface address, each costing every session a reader and buffer).
func TestTCPCandidatesFollowUDPAddress(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.TCPListen = "0.0.0.0:0" })
	playsWithCandidatesOn(t, e, "127.0.0.1")
}

func TestChooseH264(t *testing.T) {
	offered := []offeredCodec{
		{pt: 102, name: "h264", clock: 90000, fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"},
		{pt: 103, name: "h264", clock: 90000, fmtp: "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"},
		{pt: 104, name: "h264", clock: 90000, fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		{pt: 106, name: "h264", clock: 90000, fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"},
		{pt: 112, name: "h264", clock: 90000, fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032"},
	}
	for _, tc := range []struct {
		plid string
		pt   uint8
	}{{"640028", 112}, {"4d0029", 106}, {"42e01e", 104}, {"42001e", 102}, {"42c01f", 102}, {"", 104}, {"f4001f", 104}} {
		c, ok := chooseH264(offered, tc.plid)
		if !ok || c.pt != tc.pt {
			t.Errorf("camera %q: chose %d, want %d", tc.plid, c.pt, tc.pt)
		}
	}
	if _, ok := chooseH264(offered[1:2], "42e01f"); ok {
		t.Error("packetization-mode=0 chosen")
	}
}

// TestTimeToFirstFrame measures POST -> first complete keyframe decoded at
// the client with the GOP cache populated.
func TestTimeToFirstFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	e := newEnv(t, nil)
	startCamera(t, e.hub, "cam1")
	d := measureTTFF(t, e, 40)
	t.Logf("all: %v", d)
	t.Logf("time to first frame over %d joins: p50 %v p95 %v max %v", len(d), pct(d, 50), pct(d, 95), d[len(d)-1])
}

func BenchmarkTimeToFirstFrame(b *testing.B) {
	e := newEnv(b, nil)
	startCamera(b, e.hub, "cam1")
	b.ResetTimer()
	d := measureTTFF(b, e, b.N)
	reportTTFF(b, d)
}

// BenchmarkJoinLostHandshake: time to first frame when the first DTLS
// datagram of each join never arrives (a full socket at a loaded viewer,
// a lossy access network). The gateway's DTLS retransmission timer alone
// decides how long the join waits.
func BenchmarkJoinLostHandshake(b *testing.B) {
	e := newEnv(b, nil)
	startCamera(b, e.hub, "cam1")
	b.ResetTimer()
	d := measureTTFFWith(b, e, b.N, clientOpts{dropDTLS: func(n int) bool { return n == 1 }})
	reportTTFF(b, d)
}

// reportTTFF reports a join benchmark's time to first frame as p50 and p95
// (ns/op, the whole loop, means nothing here).
func reportTTFF(b *testing.B, d []time.Duration) {
	b.ReportMetric(float64(pct(d, 50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(d, 95).Microseconds())/1000, "p95-ms")
	b.ReportMetric(0, "ns/op")
}

// TestJoinSurvivesLostHandshake: joins whose first DTLS datagrams are lost
// still start on a keyframe (the handshake is retransmitted).
func TestJoinSurvivesLostHandshake(t *testing.T) {
	e := newEnv(t, nil)
	startCamera(t, e.hub, "cam1")
	for _, lost := range []int{1, 2, 3} {
		var dropped atomic.Int32
		c, resp := newClient(t, e, "cam1", clientOpts{dropDTLS: func(n int) bool {
			if n <= lost {
				dropped.Add(1)
				return true
			}
			return false
		}})
		if c == nil {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
		checkSPSPPSIDR(t, c.nextAU(t, 20*time.Second))
		if got := dropped.Load(); got != int32(lost) {
			t.Fatalf("dropped %d DTLS datagrams, want %d", got, lost)
		}
		do(t, e, http.MethodDelete, c.location, "alice", "", "")
		c.Close()
	}
}

func measureTTFF(t testing.TB, e *env, n int) []time.Duration {
	return measureTTFFWith(t, e, n, clientOpts{})
}

func measureTTFFWith(t testing.TB, e *env, n int, o clientOpts) []time.Duration {
	var out []time.Duration
	for range n {
		t0 := time.Now()
		c, resp := newClientWithHook(t, e, "cam1", o, func() { t0 = time.Now() })
		if c == nil {
			t.Fatalf("POST: %d", resp.StatusCode)
			return nil
		}
		au := c.nextAU(t, 10*time.Second)
		if !slices.Contains(naluTypes(au.NALUs), 5) {
			t.Fatalf("first AU is not a keyframe: %v", naluTypes(au.NALUs))
		}
		out = append(out, au.At.Sub(t0))
		do(t, e, http.MethodDelete, c.location, "alice", "", "")
		c.Close()
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (len(d)*p + 99) / 100
	return d[min(max(i-1, 0), len(d)-1)]
}

// Sessions end by themselves: ICE never connects, the camera's stream
// closes, the camera stays away longer than IdleTimeout.
func TestSessionEnds(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.ICEConnectTimeout = 3 * time.Second; s.IdleTimeout = 1500 * time.Millisecond })
	cam1 := startCamera(t, e.hub, "cam1")
	cam2 := startCamera(t, e.hub, "cam2")

	// a client that POSTs but never applies the answer
	resp := post(t, e, "cam1", "alice", "application/sdp", browserOffer(t, true))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	a, _ := newClient(t, e, "cam1", clientOpts{})
	b, _ := newClient(t, e, "cam2", clientOpts{})
	checkSPSPPSIDR(t, a.nextAU(t, 10*time.Second))
	checkSPSPPSIDR(t, b.nextAU(t, 10*time.Second))
	testtool.WaitFor(t, 8*time.Second, "the unconnected session to time out", func() bool { return e.srv.Sessions.Count("") == 2 })
	if v := testutil.ToFloat64(e.srv.Metrics.errors.WithLabelValues("ice_timeout")); v != 1 {
		t.Errorf("ice_timeout errors: %v", v)
	}
	if v := testutil.ToFloat64(e.srv.Metrics.sessions.WithLabelValues("cam1")); v != 2 {
		t.Errorf("cam1 sessions: %v", v)
	}

	cam1.stop() // stream closed: the reader ends
	testtool.WaitFor(t, 3*time.Second, "the cam1 session to end", func() bool { return e.srv.Sessions.Count("") == 1 })

	cam2.cancel() // camera goes quiet, stream stays
	cam2.wg.Wait()
	cam2.stream.CameraDisconnected(fmt.Errorf("EOF"))
	testtool.WaitFor(t, 6*time.Second, "the idle session to end", func() bool { return e.srv.Sessions.Count("") == 0 })
	if s, en := e.events.counts(); s != 3 || en != 3 {
		t.Errorf("events: %d starts, %d ends", s, en)
	}
}

func TestCORS(t *testing.T) {
	for _, origins := range [][]string{nil, {"https://wall.example"}} {
		e := newEnv(t, func(s *Server) { s.TCPListen = ""; s.CORSOrigins = origins })
		req, _ := http.NewRequest(http.MethodOptions, e.http.URL+"/whep/cam1", nil)
		req.Header.Set("Origin", "https://wall.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := e.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		got := resp.Header.Get("Access-Control-Allow-Origin")
		if origins == nil && got != "" {
			t.Errorf("CORS off but Allow-Origin %q", got)
		}
		if origins != nil && (got != "https://wall.example" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")) {
			t.Errorf("CORS on: Allow-Origin %q, headers %q", got, resp.Header.Get("Access-Control-Allow-Headers"))
		}
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("OPTIONS: %d", resp.StatusCode)
		}
		// an origin not in the list gets nothing
		req.Header.Set("Origin", "https://evil.example")
		resp, err = e.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Error("foreign origin allowed")
		}
	}
}

// One principal cannot hold more than MaxPerPrincipal sessions (429),
// and the gateway as a whole not more than MaxPerProtocol (503).
func TestSessionLimits(t *testing.T) {
	e := newEnv(t, func(s *Server) {
		s.TCPListen = ""
		s.Sessions = &session.Registry{MaxPerProtocol: 2, MaxPerPrincipal: 1}
	})
	startCamera(t, e.hub, "cam1")
	if c, r := newClient(t, e, "cam1", clientOpts{token: "alice"}); c == nil {
		t.Fatalf("first session: %d", r.StatusCode)
	}
	_, r := newClient(t, e, "cam1", clientOpts{token: "alice"})
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("second session of one principal: %d, want 429 with Retry-After", r.StatusCode)
	}
	if c, r := newClient(t, e, "cam1", clientOpts{token: "carol"}); c == nil {
		t.Fatalf("another principal: %d", r.StatusCode)
	}
	_, r = newClient(t, e, "cam1", clientOpts{token: "admin"})
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("past the gateway's cap: %d, want 503", r.StatusCode)
	}
	if n := e.srv.Sessions.Count(""); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
}
