package e2e

// Helpers of the cluster test (cluster_test.go): a real 3-member etcd and
// the cordon binary, both made once per package run; cordon serve
// processes on 127.0.0.11-13 sharing one config file (per-node values from
// CORDON_* variables); frame watchers that time pauses. Names carry a
// "cl" prefix. Camera hosts: 127.0.0.111-112.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/pion/rtp"

	"cordon/cluster"
	"cordon/cluster/clustertest"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
	"cordon/internal/whepclient"
)

// Package-wide fixtures, made on first use and stopped when every test
// of the package has run (TestMain runs packageRun).
var (
	pkgEndMu sync.Mutex
	pkgEnd   []func()
)

// atPackageEnd runs f after the package's tests.
func atPackageEnd(f func()) {
	pkgEndMu.Lock()
	defer pkgEndMu.Unlock()
	pkgEnd = append(pkgEnd, f)
}

// packageRun runs the tests, then the package-wide teardowns.
type packageRun struct{ m interface{ Run() int } }

func (p packageRun) Run() int {
	code := p.m.Run()
	pkgEndMu.Lock()
	defer pkgEndMu.Unlock()
	for i := len(pkgEnd) - 1; i >= 0; i-- {
		pkgEnd[i]()
	}
	return code
}

var clPkg struct {
	once sync.Once
	dir  string
	etcd *clustertest.Etcd
	bin  string
	err  error
}

// clFixture returns the package's etcd (3 members, TLS) and the cordon
// binary, starting and building them on first use.
func clFixture(t testing.TB) (*clustertest.Etcd, string) {
	t.Helper()
	testtool.Require(t, "etcd")
	clPkg.once.Do(func() {
		dir, err := os.MkdirTemp("", "cordon-cluster-e2e-")
		if err != nil {
			clPkg.err = err
			return
		}
		clPkg.dir = dir
		atPackageEnd(func() { _ = os.RemoveAll(dir) })
		// the binary is built without -race: three gateways under the race
		// detector would not fit the 2-core budget; the gateway's code runs
		// under -race in the in-process e2e tests and its own packages
		clPkg.bin = filepath.Join(dir, "cordon")
		build := exec.Command("go", "build", "-o", clPkg.bin, "cordon/cmd/cordon")
		if out, err := build.CombinedOutput(); err != nil {
			clPkg.err = fmt.Errorf("building cordon: %v\n%s", err, out)
			return
		}
		clPkg.etcd, clPkg.err = clustertest.Start(filepath.Join(dir, "etcd"), 3)
		if clPkg.err == nil {
			atPackageEnd(clPkg.etcd.Close)
		}
	})
	if clPkg.err != nil {
		t.Fatal(clPkg.err)
	}
	return clPkg.etcd, clPkg.bin
}

// clCluster is a cluster of cordon serve processes on one config file.
type clCluster struct {
	t       testing.TB
	bin     string
	dir     string
	config  string
	etcd    *clustertest.Etcd
	nodes   map[string]*clNode
	admin   string // alice's token (issued by any node)
	adminPW string
}

// clNode is one cordon serve process.
type clNode struct {
	ID, Host            string
	Base, RTSP, Metrics string // bound addresses, from its "cordon serving" log line
	AuditPath           string
	Logs                *testtool.SyncBuffer

	cmd    *exec.Cmd
	exited chan struct{}
}

const (
	clAdmin      = "alice"
	clAdminPW    = "alice-cluster-pw-1"
	clPeerSecret = "a-cluster-peer-key-of-at-least-32-bytes-for-tests"
)

// clConfigYAML is the one config file of every node: per-node values
// (node id, advertise address, listen addresses, state_dir, audit path)
// come from CORDON_* variables, as the contract says.
func clConfigYAML(t testing.TB, dir string, e *clustertest.Etcd, cams []clCamera) string {
	t.Helper()
	key := filepath.Join(dir, "peer.key")
	if err := os.WriteFile(key, []byte(clPeerSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	var eps []string
	for _, ep := range e.Endpoints() {
		eps = append(eps, fmt.Sprintf("%q", "https://"+ep))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `http: {listen: "127.0.0.1:0"}
rtsp: {listen: "127.0.0.1:0", udp_rtp_listen: "", udp_rtcp_listen: ""}
webrtc: {udp_listen: "127.0.0.1:0", tcp_listen: "", host_ips: ["127.0.0.1"], viewer_networks: ["127.0.0.1/32"]}
metrics: {listen: "127.0.0.1:0"}
state_dir: %q
audit: {path: %q}
auth:
  lockout: {base: "1m"} # the first lock outlasts the time it takes to reach every node, however loaded the machine
  users:
    - {name: %s, password_hash: %q, cameras: ["*"], admin: true}
cluster:
  etcd_endpoints: [%s]
  etcd_tls: {ca: %q, cert: %q, key: %q}
  peer_key_file: %q
  lease_ttl: "5s"
cameras:
`, filepath.Join(dir, "unused-state"), filepath.Join(dir, "unused-audit.log"), clAdmin, e2eutil.Hash(t, clAdminPW),
		strings.Join(eps, ", "), e.CAFile, e.ClientCertFile, e.ClientKeyFile, key)
	for _, c := range cams {
		fmt.Fprintf(&b, "  - {id: %s, name: %s, url: %q, username: %q, password: %q, transport: tcp}\n", c.ID, c.ID, c.URL, c.User, c.Password)
	}
	path := filepath.Join(dir, "cordon.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clCamera is a camera of the cluster's config.
type clCamera struct{ ID, URL, User, Password string }

func clDemoCams(cams []*democam.Camera) []clCamera {
	var out []clCamera
	for _, c := range cams {
		out = append(out, clCamera{c.ID, c.URL(), c.Username, c.Password})
	}
	return out
}

// clStartCluster starts one node per id, on 127.0.0.11, .12, ...
func clStartCluster(t testing.TB, e *clustertest.Etcd, bin string, cams []clCamera, ids ...string) *clCluster {
	t.Helper()
	dir := t.TempDir()
	c := &clCluster{t: t, bin: bin, dir: dir, etcd: e, nodes: map[string]*clNode{}, adminPW: clAdminPW}
	c.config = clConfigYAML(t, dir, e, cams)
	for i, id := range ids {
		c.start(id, fmt.Sprintf("127.0.0.%d", 11+i))
	}
	return c
}

// start runs node id on host (again, after a kill: same state and audit).
func (c *clCluster) start(id, host string) *clNode {
	t := c.t
	t.Helper()
	n := &clNode{ID: id, Host: host, AuditPath: filepath.Join(c.dir, id, "audit.log"), Logs: &testtool.SyncBuffer{}, exited: make(chan struct{})}
	// --self-signed: HTTPS and RTSPS with each node's own certificate, so
	// the peer links are RTSPS pinned to the fingerprints in etcd
	n.cmd = exec.Command(c.bin, "serve", "--config", c.config, "--self-signed", "--log-format", "json", "--log-level", "info")
	n.cmd.Env = append(os.Environ(),
		"CORDON_CLUSTER_NODE_ID="+id, "CORDON_CLUSTER_ADVERTISE="+host,
		"CORDON_HTTP_LISTEN="+host+":0", "CORDON_RTSP_LISTEN="+host+":0", "CORDON_METRICS_LISTEN="+host+":0",
		"CORDON_WEBRTC_UDP_LISTEN="+host+":0", "CORDON_WEBRTC_HOST_IPS="+host,
		"CORDON_STATE_DIR="+filepath.Join(c.dir, id, "state"), "CORDON_AUDIT_PATH="+n.AuditPath)
	n.cmd.Stdout, n.cmd.Stderr = n.Logs, n.Logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() { n.stop(t) })
	testtool.WaitFor(t, 60*time.Second, "node "+id+" to serve", func() bool {
		select {
		case <-n.exited:
			t.Fatalf("node %s exited:\n%s", id, n.Logs.String())
		default:
		}
		return n.parseServing()
	})
	c.nodes[id] = n
	return n
}

// parseServing reads the bound addresses from the "cordon serving" line.
func (n *clNode) parseServing() bool {
	sc := bufio.NewScanner(strings.NewReader(n.Logs.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct{ Msg, HTTP, RTSP, Metrics string }
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "cordon serving" {
			n.Base, n.RTSP, n.Metrics = "https://"+l.HTTP, l.RTSP, l.Metrics
			return true
		}
	}
	return false
}

// kill stops the node as a crash would (SIGKILL) and waits for it.
func (n *clNode) kill(t testing.TB) {
	t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// stop ends the node cleanly (SIGTERM), or kills it after 20 s.
func (n *clNode) stop(t testing.TB) {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		t.Errorf("node %s did not stop within 20 s of SIGTERM; killed", n.ID)
		n.kill(t)
	}
}

// clStatus is GET /api/v1/admin/cluster.
type clStatus struct {
	Node     string `json:"node"`
	Degraded bool   `json:"degraded"`
	Reason   string `json:"reason"`
	Nodes    []struct {
		ID      string `json:"id"`
		Alive   bool   `json:"alive"`
		Cameras int    `json:"cameras"`
	} `json:"nodes"`
	Cameras []struct {
		Camera string `json:"camera"`
		Owner  string `json:"owner"`
		Online bool   `json:"online"`
	} `json:"cameras"`
}

func (c *clCluster) status(n *clNode) clStatus {
	c.t.Helper()
	code, body := clDo(c.t, http.MethodGet, n.Base+"/api/v1/admin/cluster", c.admin, "")
	if code != http.StatusOK {
		c.t.Fatalf("GET /api/v1/admin/cluster on %s: %d %s", n.ID, code, body)
	}
	var st clStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		c.t.Fatalf("cluster status %s: %v", body, err)
	}
	return st
}

// owners returns each camera's owner as node n sees it ("" = none).
func (c *clCluster) owners(n *clNode) map[string]string {
	out := map[string]string{}
	for _, cam := range c.status(n).Cameras {
		out[cam.Camera] = cam.Owner
	}
	return out
}

// waitOwned waits until node n sees every camera owned by a live node and
// online, and returns the owners.
func (c *clCluster) waitOwned(n *clNode, within time.Duration, cams ...string) map[string]string {
	c.t.Helper()
	var own map[string]string
	testtool.WaitFor(c.t, within, "every camera owned by a live node and online", func() bool {
		st := c.status(n)
		alive := map[string]bool{}
		for _, x := range st.Nodes {
			alive[x.ID] = x.Alive
		}
		own = map[string]string{}
		online := map[string]bool{}
		for _, cam := range st.Cameras {
			own[cam.Camera], online[cam.Camera] = cam.Owner, cam.Online
		}
		for _, cam := range cams {
			if !alive[own[cam]] || !online[cam] {
				return false
			}
		}
		return true
	})
	return own
}

// health returns a node's /healthz status word and reason.
func (n *clNode) health(t testing.TB) (int, string, string) {
	t.Helper()
	code, body := clDo(t, http.MethodGet, n.Base+"/healthz", "", "")
	var h struct{ Status, Reason string }
	_ = json.Unmarshal([]byte(body), &h)
	return code, h.Status, h.Reason
}

// clTLS is the test's TLS client configuration: it trusts the nodes'
// self-signed certificates (the nodes pin each other's; the test need not).
var clTLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test client of self-signed test nodes

// clHTTP is the test's HTTP client (no keep-alive: no idle connection
// outlives the test).
var clHTTP = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: clTLS, DisableKeepAlives: true}}

// clDo sends a request with an optional bearer token.
func clDo(t testing.TB, method, url, token, body string) (int, string) {
	t.Helper()
	return clDoWith(t, clHTTP, method, url, token, body)
}

// clDoWith is clDo with the given client (one that leaves from its own
// address, for lockout checks).
func clDoWith(t testing.TB, hc *http.Client, method, url, token, body string) (int, string) {
	t.Helper()
	ctype := ""
	if body != "" {
		ctype = "application/json"
	}
	st, _, b := e2eutil.DoWith(t, hc, method, url, token, ctype, body)
	return st, b
}

// clLogin signs in and returns the session token.
func clLogin(t testing.TB, base, user, password string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	code, body := clDo(t, http.MethodPost, base+"/api/v1/login", "", string(b))
	var out struct{ Token string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("login on %s: %d %s", base, code, body)
	}
	return out.Token
}

// clDial opens a WHEP session like a browser (nil if the POST was refused).
func clDial(t testing.TB, base, camera, token string) (*e2eutil.Viewer, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wc, err := whepclient.Dial(ctx, whepclient.Options{URL: base + "/whep/" + camera, Token: token, HTTP: clHTTP})
	var se *whepclient.StatusError
	if errors.As(err, &se) {
		return nil, se.Status, se.Body
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wc.Close)
	return &e2eutil.Viewer{Client: wc, AUs: wc.AUs()}, http.StatusCreated, wc.Answer
}

// clWatch records when each access unit of a WHEP viewer arrived.
type clWatch struct {
	mu sync.Mutex
	at []time.Time
}

func clWatchViewer(t testing.TB, v *e2eutil.Viewer) *clWatch {
	w := &clWatch{}
	drainAUs(t, v, w.add)
	return w
}

func (w *clWatch) add(at time.Time) {
	w.mu.Lock()
	w.at = append(w.at, at)
	w.mu.Unlock()
}

func (w *clWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.at)
}

// waitFrames waits until n more frames arrived.
func (w *clWatch) waitFrames(t testing.TB, what string, n int, within time.Duration) {
	t.Helper()
	start := w.count()
	testtool.WaitFor(t, within, what, func() bool { return w.count() >= start+n })
}

// resumedAfter returns how long after t0 frames flowed again following a
// pause of at least gap (false while they have not).
func (w *clWatch) resumedAfter(t0 time.Time, gap time.Duration) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.at); i++ {
		if w.at[i].After(t0) && w.at[i].Sub(w.at[i-1]) >= gap {
			return w.at[i].Sub(t0), true
		}
	}
	return 0, false
}

// clRTSPReader reads a node's RTSP re-serve (TCP) and checks the video
// packets' sequence numbers stay continuous.
type clRTSPReader struct {
	c       *gortsplib.Client
	w       clWatch
	mu      sync.Mutex
	lastSeq uint16
	haveSeq bool
	gaps    int
}

func clDialRTSP(t testing.TB, addr, camera, user, pass string) *clRTSPReader {
	t.Helper()
	u, err := base.ParseURL(fmt.Sprintf("rtsps://%s:%s@%s/%s", user, pass, addr, camera))
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.ProtocolTCP
	r := &clRTSPReader{}
	// the picture pauses during a failover: no read timeout fires before it resumes
	r.c = &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp, ReadTimeout: 30 * time.Second, TLSConfig: clTLS}
	if err := r.c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.c.Close)
	desc, _, err := r.c.Describe(u)
	if err != nil {
		t.Fatalf("RTSP DESCRIBE %s on %s: %v", camera, addr, err)
	}
	var h264 *format.H264
	medi := desc.FindFormat(&h264)
	if medi == nil {
		t.Fatal("no H.264 in the re-serve's SDP")
	}
	if _, err := r.c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		t.Fatal(err)
	}
	r.c.OnPacketRTP(medi, h264, func(p *rtp.Packet) {
		r.mu.Lock()
		if r.haveSeq && p.SequenceNumber != r.lastSeq+1 {
			r.gaps++
		}
		r.lastSeq, r.haveSeq = p.SequenceNumber, true
		r.mu.Unlock()
		if p.Marker {
			r.w.add(time.Now())
		}
	})
	if _, err := r.c.Play(nil); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *clRTSPReader) seqGaps() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gaps
}

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, (len(s)*p)/100)]
}

// clCPUSeconds returns a process's user+system CPU time from /proc.
func clCPUSeconds(pid int) (float64, error) {
	if runtime.GOOS != "linux" {
		return 0, fmt.Errorf("CPU time needs /proc")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var utime, stime float64
	fmt.Sscan(fields[11], &utime)
	fmt.Sscan(fields[12], &stime)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

// clDescribe sends an RTSPS DESCRIBE for camera as user and returns the
// status (0 when the connection failed).
func clDescribe(t testing.TB, addr, camera, user, pass string) int {
	t.Helper()
	u := &url.URL{Scheme: "rtsps", Host: addr, Path: "/" + camera, User: url.UserPassword(user, pass)}
	bu, err := base.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: bu.Scheme, Host: bu.Host, TLSConfig: clTLS, ReadTimeout: 10 * time.Second}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, res, err := c.Describe(bu)
	if res != nil {
		return int(res.StatusCode)
	}
	if err == nil {
		return http.StatusOK
	}
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		return int(bad.Code)
	}
	return 0
}

// clSharedFailures reads from etcd the most failures node shares for one
// lockout key (cluster's live/lockout/<node> document).
func clSharedFailures(t testing.TB, e *clustertest.Etcd, node string) int {
	t.Helper()
	cli, err := e.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, cluster.DefaultPrefix+"live/lockout/"+node)
	if err != nil || len(resp.Kvs) == 0 {
		return 0
	}
	var doc struct {
		Entries []struct {
			F int `json:"f"`
		} `json:"entries"`
	}
	_ = json.Unmarshal(resp.Kvs[0].Value, &doc)
	most := 0
	for _, x := range doc.Entries {
		most = max(most, x.F)
	}
	return most
}
