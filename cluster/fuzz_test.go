package cluster

import (
	"testing"
)

// FuzzDecodeValues: values read from etcd (written by other nodes, or by
// anyone holding etcd credentials) never panic the node, and what is
// accepted is within bounds.
func FuzzDecodeValues(f *testing.F) {
	f.Add("nodes/", "node-a", []byte(`{"id":"node-a","advertise":"10.0.0.11","http_port":8080,"rtsp_port":8554,"started":"2026-01-02T03:04:05Z"}`))
	f.Add("owners/", "gate", []byte(`{"node":"node-a","status":{"online":true,"video_codec":"H264"}}`))
	f.Add("revoked/", "0123456789abcdef0123456789abcdef", []byte("1767225600"))
	f.Add("lockout/", "node-a", []byte(`{"entries":[{"k":"addr:192.0.2.7","f":3,"e":"2026-01-02T03:04:05Z"}]}`))
	f.Add("report/sessions/", "node-a", []byte(`[{"user":"alice"}]`))
	f.Add("owners/", "gate", []byte(`{"node":"../x","status":{"reconnects":-1}}`))
	f.Fuzz(func(t *testing.T, dir, name string, value []byte) {
		n := &Node{}
		v := n.decode(liveDir+dir, name, value)
		switch x := v.(type) {
		case nil:
		case Member:
			if !nodeIDOK(x.ID) || x.ID != name || x.Advertise == "" {
				t.Fatalf("accepted member %+v", x)
			}
		case ownerValue:
			if !nodeIDOK(x.Node) || len(x.Status.LastError) > maxStringBytes || x.Status.Reconnects < 0 {
				t.Fatalf("accepted owner %+v", x)
			}
		case lockoutDoc:
			if len(x.Entries) > MaxSharedLockouts {
				t.Fatalf("accepted %d lockout entries", len(x.Entries))
			}
		case []byte:
			if len(x) > maxReportBytes {
				t.Fatal("accepted an oversized report")
			}
		}
		k := keys{prefix: DefaultPrefix}
		if d, nm, ok := k.split(DefaultPrefix + dir + name); ok && (nm == "" || d+nm != dir+name) {
			t.Fatalf("split(%q) = %q, %q", dir+name, d, nm)
		}
	})
}
