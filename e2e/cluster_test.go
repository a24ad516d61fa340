package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"cordon/cluster"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// failoverGoal is the contract's bound: video flowing again within 10 s
// of an owner's kill -9, with the default lease TTL (5 s).
const failoverGoal = 10 * time.Second

// clCams starts the cluster tests' two cameras.
func clCams(t *testing.T) []*democam.Camera {
	t.Helper()
	var cams []*democam.Camera
	for i, id := range []string{"cam-a", "cam-b"} {
		c := &democam.Camera{ID: id, Listen: []string{"127.0.0.111:0", "127.0.0.112:0"}[i], Path: "live", Username: "cam", Password: "cam-pw-" + id, DisableUDP: true}
		if err := c.Initialize(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		cams = append(cams, c)
	}
	return cams
}

// Three cordon serve processes on one etcd act as one gateway: each
// camera is pulled once, viewers on every node watch it, an owner's kill
// -9 moves its camera while viewers elsewhere keep their sessions, a
// logout on one node is refused on another within a second, and etcd
// failures leave the picture alone.
func TestClusterThreeNodes(t *testing.T) {
	e, bin := clFixture(t)
	cams := clCams(t)
	camA, camB := cams[0], cams[1]
	c := clStartCluster(t, e, bin, clDemoCams(cams), "node-a", "node-b", "node-c")
	a := c.nodes["node-a"]
	c.admin = clLogin(t, a.Base, clAdmin, clAdminPW)
	own := c.waitOwned(a, 30*time.Second, "cam-a", "cam-b")
	t.Logf("owners: %v", own)

	// viewers of cam-a on every node, an RTSP reader on a node that does
	// not own it; a viewer of cam-b where it is relayed
	var others []*clNode // cam-a's non-owners
	for _, id := range []string{"node-a", "node-b", "node-c"} {
		if id != own["cam-a"] {
			others = append(others, c.nodes[id])
		}
	}
	watchA := map[string]*clWatch{}
	viewersA := map[string]*e2eutil.Viewer{}
	for id, n := range c.nodes {
		v, code, body := clDial(t, n.Base, "cam-a", c.admin) // the token of node-a, on every node
		if v == nil {
			t.Fatalf("WHEP cam-a on %s: %d %s", id, code, body)
		}
		viewersA[id], watchA[id] = v, clWatchViewer(t, v)
	}
	rtspNode := others[0]
	reader := clDialRTSP(t, rtspNode.RTSP, "cam-a", clAdmin, clAdminPW)
	bNode := others[0] // survives the kill of cam-a's owner below, and relays cam-b
	if own["cam-b"] == bNode.ID {
		bNode = others[1]
	}
	vb, code, body := clDial(t, bNode.Base, "cam-b", c.admin)
	if vb == nil {
		t.Fatalf("WHEP cam-b on %s: %d %s", bNode.ID, code, body)
	}
	watchB := clWatchViewer(t, vb)
	for id, w := range watchA {
		w.waitFrames(t, "cam-a frames on "+id, 10, 20*time.Second)
	}
	reader.w.waitFrames(t, "cam-a frames over RTSP on "+rtspNode.ID, 10, 20*time.Second)
	watchB.waitFrames(t, "cam-b frames on "+bNode.ID, 10, 20*time.Second)
	for _, cam := range cams {
		if cam.Sessions() != 1 || cam.MaxSessions() != 1 {
			t.Fatalf("%s: %d RTSP sessions at the camera (at most %d at once), want exactly one", cam.ID, cam.Sessions(), cam.MaxSessions())
		}
	}

	t.Run("shared state", func(t *testing.T) { clSharedState(t, c, own) })
	t.Run("logout on one node is refused on another within 1 s", func(t *testing.T) { clLogoutLatency(t, c, 3) })

	t.Run("peer credentials", func(t *testing.T) {
		key, err := cluster.NewPeerKey([]byte(clPeerSecret))
		if err != nil {
			t.Fatal(err)
		}
		user, pass := key.Credential("node-x")
		owner := c.nodes[own["cam-a"]]
		if code := clDescribe(t, owner.RTSP, "cam-a", user, pass); code != http.StatusOK {
			t.Errorf("a peer's DESCRIBE of a camera its node owns: %d", code)
		}
		if code := clDescribe(t, owner.RTSP, "cam-a", user, pass+"x"); code != http.StatusUnauthorized {
			t.Errorf("a wrong peer password: %d, want 401", code)
		}
		if code := clDescribe(t, others[0].RTSP, "cam-a", user, pass); code == http.StatusOK {
			t.Errorf("a node relayed a camera it does not own to a peer (relays never chain)")
		}
		b, _ := json.Marshal(map[string]string{"username": user, "password": pass})
		if code, body := clDo(t, http.MethodPost, owner.Base+"/api/v1/login", "", string(b)); code != http.StatusUnauthorized {
			t.Errorf("a peer credential signed in over HTTP: %d %s", code, body)
		}
	})

	t.Run("one etcd member of three stops", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		leader, err := e.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.Members[leader].Kill()
		// two lease renewals later (a renewal every TTL/3), nothing changed
		watchA[rtspNode.ID].waitFrames(t, "frames with an etcd member down", 60, 30*time.Second)
		for id, n := range c.nodes {
			if code, st, why := n.health(t); code != http.StatusOK || st != "ok" {
				t.Errorf("%s health with one etcd member down: %d %s %s", id, code, st, why)
			}
		}
		if got := c.owners(a); got["cam-a"] != own["cam-a"] || got["cam-b"] != own["cam-b"] {
			t.Errorf("owners changed: %v, were %v", got, own)
		}
		if err := e.Restart(ctx, leader); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("kill -9 of an owner", func(t *testing.T) {
		victim := c.nodes[own["cam-a"]]
		seqBefore := map[string]int{}
		for _, n := range others {
			seqBefore[n.ID], _ = viewersA[n.ID].Continuity()
		}
		camA.ResetMaxSessions()
		t0 := time.Now()
		victim.kill(t)
		for _, n := range others {
			w := watchA[n.ID]
			testtool.WaitFor(t, 2*failoverGoal, "cam-a frames on "+n.ID+" after the kill", func() bool {
				_, ok := w.resumedAfter(t0, time.Second)
				return ok
			})
			d, _ := w.resumedAfter(t0, time.Second)
			t.Logf("cam-a on %s: frames again %.2f s after the kill", n.ID, d.Seconds())
			if d > failoverGoal {
				t.Errorf("cam-a on %s resumed %.1f s after the kill; the goal is %v", n.ID, d.Seconds(), failoverGoal)
			}
			if gaps, back := viewersA[n.ID].Continuity(); gaps != seqBefore[n.ID] || back != 0 {
				t.Errorf("viewer on %s: %d sequence gaps (%d before the kill), %d timestamps backwards", n.ID, gaps, seqBefore[n.ID], back)
			}
			if viewersA[n.ID].PC.ConnectionState().String() != "connected" {
				t.Errorf("viewer on %s: peer connection %s", n.ID, viewersA[n.ID].PC.ConnectionState())
			}
		}
		reader.w.waitFrames(t, "RTSP frames after the kill", 10, failoverGoal)
		if d, ok := reader.w.resumedAfter(t0, time.Second); !ok || d > failoverGoal {
			t.Errorf("RTSP reader resumed after %v (%v)", d, ok)
		}
		if g := reader.seqGaps(); g != 0 {
			t.Errorf("RTSP reader: %d sequence gaps across the failover", g)
		}
		survivor := others[0]
		now := c.waitOwned(survivor, 2*failoverGoal, "cam-a", "cam-b")
		if now["cam-a"] == victim.ID || now["cam-b"] == victim.ID {
			t.Fatalf("owners after the kill: %v", now)
		}
		testtool.WaitFor(t, 10*time.Second, "cam-a to serve one session", func() bool { return camA.Sessions() == 1 })
		if camA.MaxSessions() != 1 {
			t.Errorf("cam-a served %d sessions at once during the failover", camA.MaxSessions())
		}
		delete(c.nodes, victim.ID)
		own = now
	})

	t.Run("etcd down: degraded, still serving; back: recovers", func(t *testing.T) {
		for _, m := range e.Members {
			m.Kill()
		}
		for id, n := range c.nodes {
			testtool.WaitFor(t, 15*time.Second, id+" to say degraded", func() bool {
				code, st, why := n.health(t)
				return code == http.StatusOK && st == "degraded" && why != ""
			})
			if v, ok := coreMetric(t, n.Metrics, "cordon_cluster_degraded"); !ok || v != 1 {
				t.Errorf("%s: cordon_cluster_degraded %v (found %v)", id, v, ok)
			}
		}
		for _, n := range c.nodes {
			watchA[n.ID].waitFrames(t, "cam-a frames on "+n.ID+" while etcd is down", 30, 20*time.Second)
		}
		watchB.waitFrames(t, "cam-b frames while etcd is down", 30, 20*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := e.Restart(ctx, 0, 1, 2); err != nil {
			t.Fatal(err)
		}
		for id, n := range c.nodes {
			testtool.WaitFor(t, 30*time.Second, id+" to recover", func() bool {
				_, st, _ := n.health(t)
				return st == "ok"
			})
		}
		if got := c.owners(others[0]); got["cam-a"] != own["cam-a"] || got["cam-b"] != own["cam-b"] {
			t.Errorf("owners after etcd came back: %v, were %v", got, own)
		}
		for _, cam := range cams {
			if cam.Sessions() != 1 {
				t.Errorf("%s: %d sessions at the camera after the outage", cam.ID, cam.Sessions())
			}
		}
		if camB.MaxSessions() != 1 || camA.MaxSessions() != 1 {
			t.Errorf("double pulls: cam-a %d, cam-b %d sessions at once", camA.MaxSessions(), camB.MaxSessions())
		}
	})

	t.Run("cordon cluster status", func(t *testing.T) {
		out, err := exec.Command(bin, "cluster", "status", "--config", c.config).CombinedOutput()
		if err != nil {
			t.Fatalf("cordon cluster status: %v\n%s", err, out)
		}
		s := string(out)
		for _, want := range []string{"node-a", "node-b", "node-c", "cam-a", "cam-b", own["cam-a"], "NODE", "OWNER"} {
			if !strings.Contains(s, want) {
				t.Errorf("cluster status lacks %q:\n%s", want, s)
			}
		}
	})

	// from an address of its own: earlier subtests' failures from
	// 127.0.0.1 do not count, and the lock (a minute) does not hit them
	t.Run("lockout counts add up across nodes", func(t *testing.T) {
		var nodes []*clNode
		for _, n := range c.nodes {
			nodes = append(nodes, n)
		}
		n1, n2 := nodes[0], nodes[1]
		hc := testtool.HTTPClientFrom("127.0.0.201", clTLS, 15*time.Second)
		do := func(n *clNode, body []byte) (int, string) {
			return clDoWith(t, hc, http.MethodPost, n.Base+"/api/v1/login", "", string(body))
		}
		bad, _ := json.Marshal(map[string]string{"username": "mallory", "password": "guess"})
		good, _ := json.Marshal(map[string]string{"username": clAdmin, "password": clAdminPW})
		for range 4 { // one under the threshold (5) on this node alone
			if code, body := do(n1, bad); code != http.StatusUnauthorized {
				t.Fatalf("failure on %s: %d %s", n1.ID, code, body)
			}
		}
		testtool.WaitFor(t, 10*time.Second, n1.ID+" to share its 4 failures through etcd", func() bool {
			return clSharedFailures(t, e, n1.ID) >= 4
		})
		// n2 reads etcd through one ordered watch: once it has seen a
		// revocation made after the shared failures, it has seen them too
		tok := clLogin(t, n1.Base, clAdmin, clAdminPW)
		if code, body := clDo(t, http.MethodPost, n1.Base+"/api/v1/logout", tok, ""); code != http.StatusNoContent {
			t.Fatalf("logout on %s: %d %s", n1.ID, code, body)
		}
		testtool.WaitFor(t, 10*time.Second, n2.ID+" to catch up with etcd", func() bool {
			code, _ := clDo(t, http.MethodGet, n2.Base+"/api/v1/cameras", tok, "")
			return code == http.StatusUnauthorized
		})
		// the fifth failure in the cluster, on the other node, locks the address there
		if code, body := do(n2, bad); code != http.StatusUnauthorized {
			t.Fatalf("failure on %s: %d %s", n2.ID, code, body)
		}
		if code, body := do(n2, good); code != http.StatusTooManyRequests {
			t.Fatalf("%s after five failures in the cluster: %d %s, want 429", n2.ID, code, body)
		}
		// and, once shared, on every other node
		for _, n := range nodes {
			if n == n2 {
				continue
			}
			testtool.WaitFor(t, 20*time.Second, n.ID+" to refuse the address locked on "+n2.ID, func() bool {
				code, _ := do(n, good)
				return code == http.StatusTooManyRequests
			})
		}
		// the rest of the test, from 127.0.0.1, is not locked out
		clLogin(t, n1.Base, clAdmin, clAdminPW)
	})

	t.Run("every audit line names its node", func(t *testing.T) {
		for _, id := range []string{"node-a", "node-b", "node-c"} {
			clAuditNodes(t, c.dir+"/"+id+"/audit.log", id)
		}
	})
}

// clSharedState: the camera list is the same on every node (admins see
// the owner), the sessions list shows every node's sessions with their
// node, and a token of one node works on the others (the viewers above
// used node-a's token everywhere).
func clSharedState(t *testing.T, c *clCluster, own map[string]string) {
	type cam struct {
		ID         string `json:"id"`
		Online     bool   `json:"online"`
		VideoCodec string `json:"video_codec"`
		Viewers    int    `json:"viewers"`
		Owner      string `json:"owner"`
	}
	list := func(n *clNode) []cam {
		code, body := clDo(t, http.MethodGet, n.Base+"/api/v1/cameras", c.admin, "")
		if code != http.StatusOK {
			t.Fatalf("cameras on %s: %d %s", n.ID, code, body)
		}
		var out []cam
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var first []cam
	testtool.WaitFor(t, 15*time.Second, "the same camera list on every node", func() bool {
		first = list(c.nodes["node-a"])
		for _, n := range c.nodes {
			if !slices.Equal(first, list(n)) {
				return false
			}
		}
		return len(first) == 2 && first[0].Viewers == 4 && first[1].Viewers == 1 // cam-a: 3 WHEP + 1 RTSP
	})
	for _, x := range first {
		if !x.Online || x.VideoCodec != "H264" || x.Owner != own[x.ID] {
			t.Errorf("camera %+v, owner should be %s", x, own[x.ID])
		}
	}
	code, body := clDo(t, http.MethodGet, c.nodes["node-b"].Base+"/api/v1/admin/sessions", c.admin, "")
	if code != http.StatusOK {
		t.Fatalf("sessions: %d %s", code, body)
	}
	var sessions []struct{ User, Kind, Camera, Node string }
	if err := json.Unmarshal([]byte(body), &sessions); err != nil {
		t.Fatal(err)
	}
	nodes, peers := map[string]int{}, 0
	for _, s := range sessions {
		nodes[s.Node]++
		if s.Kind == "peer" {
			peers++
		}
	}
	if len(nodes) != 3 || peers < 2 || nodes[""] != 0 {
		t.Errorf("cluster-wide sessions: per node %v, %d peer relays: %s", nodes, peers, body)
	}
	if code, body := clDo(t, http.MethodGet, c.nodes["node-c"].Base+"/api/v1/egress", c.admin, ""); code != http.StatusOK || !strings.HasPrefix(body, "[") {
		t.Errorf("egress on node-c: %d %s", code, body)
	}

	// an administrator on node-a ends a session node-c holds
	extra, code, body := clDial(t, c.nodes["node-c"].Base, "cam-b", c.admin)
	if extra == nil {
		t.Fatalf("WHEP on node-c: %d %s", code, body)
	}
	id := path.Base(extra.Location)
	testtool.WaitFor(t, 10*time.Second, "node-a to end node-c's session", func() bool {
		code, _ := clDo(t, http.MethodDelete, c.nodes["node-a"].Base+"/api/v1/admin/sessions/"+id, c.admin, "")
		return code == http.StatusNoContent // 404 until node-c has published it
	})
	testtool.WaitFor(t, 10*time.Second, "the session killed from node-a to end on node-c", func() bool {
		_, body := clDo(t, http.MethodGet, c.nodes["node-c"].Base+"/api/v1/admin/sessions", c.admin, "")
		return !strings.Contains(body, id)
	})
}

// clLogoutLatency logs out on node-a n times and measures until node-c
// refuses the token.
func clLogoutLatency(t *testing.T, c *clCluster, n int) {
	a, cn := c.nodes["node-a"], c.nodes["node-c"]
	var lat []time.Duration
	for range n {
		tok := clLogin(t, a.Base, clAdmin, clAdminPW)
		if code, body := clDo(t, http.MethodGet, cn.Base+"/api/v1/cameras", tok, ""); code != http.StatusOK {
			t.Fatalf("node-a's token on node-c: %d %s", code, body)
		}
		t0 := time.Now()
		if code, body := clDo(t, http.MethodPost, a.Base+"/api/v1/logout", tok, ""); code != http.StatusNoContent {
			t.Fatalf("logout: %d %s", code, body)
		}
		testtool.WaitFor(t, 5*time.Second, "node-c to refuse the token", func() bool {
			code, _ := clDo(t, http.MethodGet, cn.Base+"/api/v1/cameras", tok, "")
			return code == http.StatusUnauthorized
		})
		lat = append(lat, time.Since(t0))
	}
	t.Logf("logout on node-a refused on node-c after: p50 %v, max %v (%v)", percentile(lat, 50).Round(time.Millisecond), slices.Max(lat).Round(time.Millisecond), lat)
	if m := slices.Max(lat); m > time.Second {
		t.Errorf("a logout took %v to reach another node; the contract says 1 s", m)
	}
}

// clAuditNodes checks every line of an audit log names node.
func clAuditNodes(t *testing.T, path, node string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	lines := 0
	for sc.Scan() {
		var l struct{ Node string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Node != node {
			t.Errorf("%s line %d: node %q, want %q", path, lines+1, l.Node, node)
			return
		}
		lines++
	}
	if lines == 0 {
		t.Errorf("%s is empty", path)
	}
}
