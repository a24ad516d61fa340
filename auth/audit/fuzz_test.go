package audit

import (
	"encoding/json"
	"net"
	"testing"
)

// FuzzVerifyLine: parseLine never panics, and whatever it accepts
// re-encodes to a line it accepts again with the same content.
func FuzzVerifyLine(f *testing.F) {
	f.Add([]byte(`{"seq":1,"time":"2026-01-02T03:04:05.000000Z","event":"denied","actor":"","camera":"","remote":"","protocol":"","detail":"","prev":""}`))
	f.Add([]byte(`{"seq":7,"time":"2026-01-02T03:04:05Z","event":"view_end","actor":"a","camera":"c","remote":"r","protocol":"rtsp","detail":"d","prev":"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","duration_s":1e3,"bytes":5}`))
	f.Add([]byte(`{"seq":1,"seq":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := parseLine(line)
		if err != nil {
			return
		}
		again, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("accepted record does not re-encode: %v", err)
		}
		rec2, err := parseLine(again)
		if err != nil {
			t.Fatalf("re-encoded record rejected: %v\n%s", err, again)
		}
		if rec2.Seq != rec.Seq || rec2.Prev != rec.Prev || rec2.Event != rec.Event || rec2.Detail != rec.Detail {
			t.Fatalf("round trip changed the record: %+v vs %+v", rec, rec2)
		}
	})
}

// FuzzParseForwardURL: audit.forward never panics the parser, and what it
// accepts is a host:port of the three schemes.
func FuzzParseForwardURL(f *testing.F) {
	for _, s := range []string{"tcp+tls://syslog.example:6514", "tcp://10.0.0.5", "udp://[2001:db8::1]:1514", "tcp://u:p@h:1/x?y#z", "tls://h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseForwardURL(s)
		if err != nil {
			return
		}
		if tg.Scheme != SchemeTLS && tg.Scheme != SchemeTCP && tg.Scheme != SchemeUDP {
			t.Fatalf("scheme %q", tg.Scheme)
		}
		if _, _, err := net.SplitHostPort(tg.Addr); err != nil || tg.Host == "" {
			t.Fatalf("addr %q", tg.Addr)
		}
	})
}
