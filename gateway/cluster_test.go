package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"cordon/cluster/clustertest"
	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// Two gateways in one process on a real etcd, under the race detector:
// the camera is pulled once, the other node relays it to an RTSP reader,
// a logout on one node is refused on the other, and when the owner leaves
// the relaying node takes the camera over while its reader stays. (The
// three-process test with kill -9 and etcd failures is e2e's
// TestClusterThreeNodes.)
func TestClusterTwoGateways(t *testing.T) {
	testtool.Require(t, "etcd")
	e, err := clustertest.Start(filepath.Join(t.TempDir(), "etcd"), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cam := &democam.Camera{ID: "cam", Listen: "127.0.0.121:0", Path: "live", Username: "cam", Password: "cam-pw-1", DisableUDP: true}
	if err := cam.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	dome := &democam.PTZCamera{ID: "dome", Listen: "127.0.0.122:0", Path: "ptz", SubPath: "ptz/sub", Username: "onvif-admin", Password: "dome-pw-1"}
	if err := dome.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dome.Close)
	bcam := &democam.Camera{ID: "bcam", Listen: "127.0.0.123:0", Path: "live", Username: "cam", Password: "cam-pw-b", DisableUDP: true,
		Quirks: democam.Quirks{BFrames: true}}
	if err := bcam.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bcam.Close)
	keyFile := filepath.Join(t.TempDir(), "peer.key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef-peer"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(id string) *e2eutil.Gateway {
		cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "alice", Password: "alice-pw-1", Cameras: []string{"*"}, Admin: true}},
			[]config.Camera{{ID: "cam", Name: "cam", URL: cam.URL(), Username: cam.Username, Password: cam.Password, Transport: "tcp", Record: true},
				{ID: "dome", Name: "dome", URL: dome.URL(), SubURL: dome.SubURL(), ONVIF: dome.ONVIFURL(), Username: dome.Username, Password: dome.Password, Transport: "tcp"},
				{ID: "bcam", Name: "bcam", URL: bcam.URL(), Username: bcam.Username, Password: bcam.Password, Transport: "tcp"}})
		cfg.Auth.Roles = []config.Role{{Name: "operator", Cameras: []string{"*"}, Rights: []string{"view", "ptz"}, PTZPriority: 100}}
		cfg.Auth.Users[0].Roles = []string{"operator"}
		// one RTSP connection per address: the other node, relaying both
		// cameras from this one when it owns both, passes as a node (and
		// so do this test's readers, from the advertised 127.0.0.1)
		cfg.Limits.RTSP = config.ConnLimit{PerAddress: 1, Total: 64}
		cfg.Recording.Path = t.TempDir() // each node its own disk
		cfg.Cluster = config.Cluster{EtcdEndpoints: []string{"https://" + e.Endpoints()[0]},
			EtcdTLS: config.EtcdTLS{CA: e.CAFile, Cert: e.ClientCertFile, Key: e.ClientKeyFile},
			NodeID:  id, Advertise: "127.0.0.1", PeerKeyFile: keyFile, LeaseTTL: "2s"}
		return e2eutil.Start(t, cfg)
	}
	a, b := start("node-a"), start("node-b")
	nodes := map[string]*e2eutil.Gateway{"node-a": a, "node-b": b}
	token := e2eutil.Login(t, a.Base, "alice", "alice-pw-1")
	ownerOf := func(g *e2eutil.Gateway, camera string) string {
		code, _, body := e2eutil.Do(t, http.MethodGet, g.Base+"/api/v1/admin/cluster", token, "", "")
		var st struct {
			Cameras []struct{ Camera, Owner string }
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || len(st.Cameras) != 3 {
			t.Fatalf("cluster status: %d %s", code, body)
		}
		for _, c := range st.Cameras {
			if c.Camera == camera {
				return c.Owner
			}
		}
		t.Fatalf("cluster status without %s: %s", camera, body)
		return ""
	}
	owner := func(g *e2eutil.Gateway) string { return ownerOf(g, "cam") }
	otherThan := func(id string) string {
		if id == "node-a" {
			return "node-b"
		}
		return "node-a"
	}
	var own string
	testtool.WaitFor(t, 20*time.Second, "the camera owned", func() bool { own = owner(b); return own != "" })
	other := otherThan(own)
	testtool.WaitFor(t, 10*time.Second, "cam recorded by its owner only", func() bool {
		return recordsCam(t, nodes[own], token) && !recordsCam(t, nodes[other], token)
	})
	var domeOwner string
	testtool.WaitFor(t, 20*time.Second, "the dome owned", func() bool { domeOwner = ownerOf(b, "dome"); return domeOwner != "" })
	clusterPTZ(t, nodes[otherThan(domeOwner)], nodes[domeOwner], token, dome)

	// an RTSP reader on the node that relays the camera, and one of the
	// dome's sub stream on the node that relays the dome
	frames := readRTSP(t, fmt.Sprintf("rtsp://alice:alice-pw-1@%s/cam", nodes[other].RTSPAddr()))
	subFrames := readRTSP(t, fmt.Sprintf("rtsp://alice:alice-pw-1@%s/dome/sub", nodes[otherThan(domeOwner)].RTSPAddr()))
	testtool.WaitFor(t, 20*time.Second, "the dome's sub stream relayed", func() bool { return subFrames.Load() > 10 })
	// a camera with B-frames, relayed over RTSP to the node that does not own it
	var bOwner string
	testtool.WaitFor(t, 20*time.Second, "bcam owned", func() bool { bOwner = ownerOf(b, "bcam"); return bOwner != "" })
	// the camera list is the owner's view on every node: B-frames known
	// where no relay has run yet, the sub stream's viewer counted
	testtool.WaitFor(t, 10*time.Second, "bcam listed with B-frames on the node that does not own it", func() bool {
		return listed(t, nodes[otherThan(bOwner)], token, "bcam").BFrames
	})
	testtool.WaitFor(t, 10*time.Second, "the dome's sub-stream viewer counted on its owner", func() bool {
		return listed(t, nodes[domeOwner], token, "dome").Viewers == 1
	})
	bFrames := readRTSP(t, fmt.Sprintf("rtsp://alice:alice-pw-1@%s/bcam", nodes[otherThan(bOwner)].RTSPAddr()))
	testtool.WaitFor(t, 20*time.Second, "bcam's frames relayed", func() bool { return bFrames.Load() > 10 })
	if bcam.Sessions() != 1 {
		t.Fatalf("bcam: %d sessions at the camera, want one", bcam.Sessions())
	}
	testtool.WaitFor(t, 20*time.Second, "relayed frames", func() bool { return frames.Load() > 10 })
	if cam.Sessions() != 1 {
		t.Fatalf("%d sessions at the camera, want one", cam.Sessions())
	}

	// a token of node-a, logged out on node-a, is refused on node-b
	tok := e2eutil.Login(t, a.Base, "alice", "alice-pw-1")
	if code, _, _ := e2eutil.Do(t, http.MethodPost, a.Base+"/api/v1/logout", tok, "", ""); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	testtool.WaitFor(t, time.Second, "node-b to refuse the logged-out token", func() bool {
		code, _, _ := e2eutil.Do(t, http.MethodGet, b.Base+"/api/v1/cameras", tok, "", "")
		return code == http.StatusUnauthorized
	})

	// the owner leaves: the relaying node pulls the camera itself, and its
	// reader keeps its session
	nodes[own].Stop()
	testtool.WaitFor(t, 10*time.Second, "the other node to own the camera", func() bool { return owner(nodes[other]) == other })
	n := frames.Load()
	testtool.WaitFor(t, 10*time.Second, "frames after the takeover", func() bool { return frames.Load() > n+10 })
	testtool.WaitFor(t, 5*time.Second, "one session at the camera", func() bool { return cam.Sessions() == 1 })
	if cam.MaxSessions() != 1 {
		t.Fatalf("the camera served %d sessions at once", cam.MaxSessions())
	}
	testtool.WaitFor(t, 10*time.Second, "the survivor to record cam", func() bool { return recordsCam(t, nodes[other], token) })
	// PTZ on the surviving node, which now owns both cameras
	testtool.WaitFor(t, 10*time.Second, "the survivor to own the dome", func() bool { return ownerOf(nodes[other], "dome") == other })
	if code, _, body := e2eutil.Do(t, http.MethodPost, nodes[other].Base+"/api/v1/cameras/dome/ptz", token, "application/json", `{"stop":true}`); code != http.StatusNoContent {
		t.Fatalf("PTZ on the survivor: %d %s", code, body)
	}
}

// clusterPTZ: a PTZ command sent to the node that does not own the dome
// is carried to its owner, which holds the one lock (the holder shows on
// both nodes); a request claiming to be forwarded already is never
// handled by a node that does not own the camera.
func clusterPTZ(t *testing.T, relay, owner *e2eutil.Gateway, token string, dome *democam.PTZCamera) {
	t.Helper()
	// only the owner holds the camera's control (every door, the ONVIF
	// face included, finds none on the other node)
	if relay.PTZ("dome") != nil || owner.PTZ("dome") == nil {
		t.Fatalf("PTZ control on the relaying node %v, on the owner %v", relay.PTZ("dome") != nil, owner.PTZ("dome") != nil)
	}
	url := relay.Base + "/api/v1/cameras/dome/ptz"
	if code, _, body := e2eutil.Do(t, http.MethodPost, url, token, "application/json", `{"move":{"pan":0.5},"timeout_ms":3000}`); code != http.StatusNoContent {
		t.Fatalf("PTZ move through the relaying node: %d %s", code, body)
	}
	testtool.WaitFor(t, 5*time.Second, "the dome to be moved", func() bool {
		_, _, _, moving := dome.Position()
		return moving
	})
	for _, g := range []*e2eutil.Gateway{relay, owner} {
		code, _, body := e2eutil.Do(t, http.MethodGet, g.Base+"/api/v1/cameras/dome/ptz", token, "", "")
		var st struct{ Holder string }
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.Holder != "alice" {
			t.Fatalf("PTZ status on %s: %d %s", g.Base, code, body)
		}
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"stop":true}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Cordon-Forwarded-By", "node-x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an already-forwarded PTZ request on a node that does not own the camera: %d", resp.StatusCode)
	}
	if code, _, body := e2eutil.Do(t, http.MethodPost, url, token, "application/json", `{"stop":true}`); code != http.StatusNoContent {
		t.Fatalf("PTZ stop through the relaying node: %d %s", code, body)
	}
	// control taken through the relaying node ends on the owner when its
	// token is logged out on the relaying node
	tok := e2eutil.Login(t, relay.Base, "alice", "alice-pw-1")
	if code, _, body := e2eutil.Do(t, http.MethodPost, url, tok, "application/json", `{"move":{"pan":-0.5},"timeout_ms":20000}`); code != http.StatusNoContent {
		t.Fatalf("PTZ move with a second token: %d %s", code, body)
	}
	if code, _, _ := e2eutil.Do(t, http.MethodPost, relay.Base+"/api/v1/logout", tok, "", ""); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	testtool.WaitFor(t, 5*time.Second, "the owner to end the logged-out holder's control", func() bool {
		code, _, body := e2eutil.Do(t, http.MethodGet, owner.Base+"/api/v1/cameras/dome/ptz", token, "", "")
		var st struct{ Holder string }
		return code == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil && st.Holder == ""
	})
}

// readRTSP plays url's H.264 over TCP until the test ends and counts the
// frames (RTP packets with the marker bit).
func readRTSP(t *testing.T, url string) *atomic.Int64 {
	t.Helper()
	u, err := base.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.ProtocolTCP
	rc := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp, ReadTimeout: 20 * time.Second}
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	desc, _, err := rc.Describe(u)
	if err != nil {
		t.Fatalf("DESCRIBE %s: %v", u.Path, err)
	}
	var h264 *format.H264
	medi := desc.FindFormat(&h264)
	if medi == nil {
		t.Fatalf("%s: no H.264", u.Path)
	}
	if _, err := rc.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		t.Fatal(err)
	}
	frames := &atomic.Int64{}
	rc.OnPacketRTP(medi, h264, func(p *rtp.Packet) {
		if p.Marker {
			frames.Add(1)
		}
	})
	if _, err := rc.Play(nil); err != nil {
		t.Fatal(err)
	}
	return frames
}

// listedCamera is a camera of GET /api/v1/cameras.
type listedCamera struct {
	ID      string `json:"id"`
	Viewers int    `json:"viewers"`
	BFrames bool   `json:"b_frames"`
}

func listed(t *testing.T, g *e2eutil.Gateway, token, camera string) listedCamera {
	t.Helper()
	code, _, body := e2eutil.Do(t, http.MethodGet, g.Base+"/api/v1/cameras", token, "", "")
	var cams []listedCamera
	if code != http.StatusOK || json.Unmarshal([]byte(body), &cams) != nil {
		t.Fatalf("camera list: %d %s", code, body)
	}
	for _, c := range cams {
		if c.ID == camera {
			return c
		}
	}
	t.Fatalf("camera list without %s: %s", camera, body)
	return listedCamera{}
}

// recordsCam: GET /api/v1/admin/recording says g records "cam".
func recordsCam(t *testing.T, g *e2eutil.Gateway, token string) bool {
	t.Helper()
	code, _, body := e2eutil.Do(t, http.MethodGet, g.Base+"/api/v1/admin/recording", token, "", "")
	var info struct {
		Cameras []struct {
			ID        string `json:"id"`
			Recording bool   `json:"recording"`
		} `json:"cameras"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &info) != nil {
		t.Fatalf("admin recording: %d %s", code, body)
	}
	for _, c := range info.Cameras {
		if c.ID == "cam" {
			return c.Recording
		}
	}
	return false
}
