package onvifserve

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/ipv4"

	"cordon/internal/testtool"
	"cordon/internal/testtool/onvifnode"
)

// netnsEnv marks the test binary re-executed inside a private network
// namespace (where the discovery test may change interfaces).
const netnsEnv = "CORDON_ONVIF_NETNS"

// The WS-Discovery responder, in a private network namespace: a
// multicast Probe on the operator interface gets one ProbeMatch naming
// the device service; a Probe for other device types gets nothing; a
// Probe arriving on another interface (the camera network, where another
// program joined the group) is ignored.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestDiscovery(t *testing.T) {
	if !testtool.InNetns(t, netnsEnv) {
		return
	}
	testtool.IP(t,
		[]string{"link", "set", "lo", "up"}, []string{"link", "set", "lo", "multicast", "on"},
		[]string{"link", "add", "cam0", "type", "veth", "peer", "name", "cam1"},
		[]string{"addr", "add", "10.99.0.1/24", "dev", "cam0"}, []string{"addr", "add", "10.99.0.2/24", "dev", "cam1"},
		[]string{"link", "set", "cam0", "up"}, []string{"link", "set", "cam1", "up"})
	// both ends of the veth live in this namespace: let cam0 accept
	// packets from cam1's (local) address
	for _, f := range []string{"conf/cam0/accept_local", "conf/cam0/rp_filter", "conf/all/rp_filter"} {
		v := map[bool]string{true: "1", false: "0"}[strings.HasSuffix(f, "accept_local")]
		if err := os.WriteFile("/proc/sys/net/ipv4/"+f, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := NewMetrics(nil)
	d := &Discovery{IP: "127.0.0.1", PickPort: true, XAddr: "http://127.0.0.1:8000" + DevicePath,
		Endpoint: deviceUUID("node-1"), Scopes: []string{"onvif://www.onvif.org/name/cordon"}, Metrics: m}
	if err := d.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	group := &net.UDPAddr{IP: net.ParseIP(wsdGroup), Port: d.LocalPort()}

	// a prober on the operator side
	vms := onvifnode.NewProber(t, "127.0.0.1:0", "lo")
	vms.Send(t, group, "dn:NetworkVideoTransmitter", "uuid:probe-1")
	env, raw := vms.Answer(t, 5*time.Second)
	match := env.Payload().Path("ProbeMatch")
	if match.TextOf("XAddrs") != d.XAddr || match.TextOf("EndpointReference", "Address") != d.Endpoint ||
		env.Header.TextOf("RelatesTo") != "uuid:probe-1" || !strings.Contains(match.TextOf("Types"), "NetworkVideoTransmitter") {
		t.Fatalf("ProbeMatch %s", raw)
	}

	// the camera side: another program joined the group on cam0; a camera
	// behind cam1 probes
	other, err := net.ListenPacket("udp4", "0.0.0.0:"+strconv.Itoa(d.LocalPort()+1))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cam0, _ := net.InterfaceByName("cam0")
	if err := ipv4.NewPacketConn(other).JoinGroup(cam0, &net.UDPAddr{IP: group.IP}); err != nil {
		t.Fatal(err)
	}
	camc := onvifnode.NewProber(t, "10.99.0.2:0", "cam1")
	ignored := func() float64 { return testutil.ToFloat64(m.probes.WithLabelValues("ignored")) }
	before := ignored()
	camc.Send(t, group, "", "uuid:probe-1")
	// the counter has no event to wait on
	testtool.WaitFor(t, 5*time.Second, "the camera-side probe to reach the responder", func() bool { return ignored() != before })
	camc.NoAnswer(t, 300*time.Millisecond, "the camera side got an answer")

	// a probe for something cordon is not
	vms.Send(t, group, "dn:Printer", "uuid:probe-1")
	vms.NoAnswer(t, 300*time.Millisecond, "answered a probe for another type")
	if got := testutil.ToFloat64(m.probes.WithLabelValues("answered")); got != 1 {
		t.Fatalf("answered %v", got)
	}
}

func TestDiscoveryRefusesUnspecifiedAddress(t *testing.T) {
	for _, ip := range []string{"", "0.0.0.0", "::1", "192.0.2.77"} {
		d := &Discovery{IP: ip, XAddr: "http://x" + DevicePath, Endpoint: "urn:uuid:x"}
		if err := d.Initialize(); err == nil {
			d.Close()
			t.Fatalf("%q accepted", ip)
		}
	}
}
