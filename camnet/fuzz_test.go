package camnet

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzSinkholeMessage feeds raw bytes to the sinkhole's message handler: it
// must never panic, never answer a response, and whatever it answers must
// parse and carry no records.
func FuzzSinkholeMessage(f *testing.F) {
	f.Add(packQuery(f, "litedev.hik-connect.com"))
	f.Add(packQuery(f, "p2p3.reolink.com."))
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00})
	h := newHarness(f, false, func(s *Sinkhole) { s.Rate = -1; s.MaxNotices = 16 })
	f.Fuzz(func(t *testing.T, raw []byte) {
		resp := h.s.handle(raw, netip.MustParseAddr("127.0.0.2"), "udp")
		if resp == nil {
			return
		}
		if len(raw) < 12 || raw[2]&0x80 != 0 {
			t.Fatalf("answered a short packet or a response: %x", raw)
		}
		m := new(dns.Msg)
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("response does not parse: %v (%x)", err, resp)
		}
		if !m.Response || m.Id != binaryID(raw) {
			t.Fatalf("bad response header: %v", m.MsgHdr)
		}
		if len(m.Answer) != 0 || len(m.Ns) != 0 {
			t.Fatalf("sinkhole gave records: %v", m)
		}
		switch m.Rcode {
		case dns.RcodeNameError, dns.RcodeFormatError, dns.RcodeNotImplemented, dns.RcodeBadVers, dns.RcodeServerFailure:
		default:
			t.Fatalf("unexpected rcode %d", m.Rcode)
		}
	})
}
