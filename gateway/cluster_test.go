package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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
	keyFile := filepath.Join(t.TempDir(), "peer.key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef-peer"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(id string) *e2eutil.Gateway {
		cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "alice", Password: "alice-pw-1", Cameras: []string{"*"}, Admin: true}},
			[]config.Camera{{ID: "cam", Name: "cam", URL: cam.URL(), Username: cam.Username, Password: cam.Password, Transport: "tcp"}})
		cfg.Cluster = config.Cluster{EtcdEndpoints: []string{"https://" + e.Endpoints()[0]},
			EtcdTLS: config.EtcdTLS{CA: e.CAFile, Cert: e.ClientCertFile, Key: e.ClientKeyFile},
			NodeID:  id, Advertise: "127.0.0.1", PeerKeyFile: keyFile, LeaseTTL: "2s"}
		return e2eutil.Start(t, cfg)
	}
	a, b := start("node-a"), start("node-b")
	nodes := map[string]*e2eutil.Gateway{"node-a": a, "node-b": b}
	token := e2eutil.Login(t, a.Base, "alice", "alice-pw-1")
	owner := func(g *e2eutil.Gateway) string {
		code, _, body := e2eutil.Do(t, http.MethodGet, g.Base+"/api/v1/admin/cluster", token, "", "")
		var st struct{ Cameras []struct{ Owner string } }
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || len(st.Cameras) != 1 {
			t.Fatalf("cluster status: %d %s", code, body)
		}
		return st.Cameras[0].Owner
	}
	var own string
	testtool.WaitFor(t, 20*time.Second, "the camera owned", func() bool { own = owner(b); return own != "" })
	other := "node-a"
	if own == "node-a" {
		other = "node-b"
	}

	// an RTSP reader on the node that relays the camera
	u, err := base.ParseURL(fmt.Sprintf("rtsp://alice:alice-pw-1@%s/cam", nodes[other].RTSPAddr()))
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.ProtocolTCP
	rc := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp, ReadTimeout: 20 * time.Second}
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	desc, _, err := rc.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	var h264 *format.H264
	medi := desc.FindFormat(&h264)
	if _, err := rc.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		t.Fatal(err)
	}
	var frames atomic.Int64
	rc.OnPacketRTP(medi, h264, func(p *rtp.Packet) {
		if p.Marker {
			frames.Add(1)
		}
	})
	if _, err := rc.Play(nil); err != nil {
		t.Fatal(err)
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
}
