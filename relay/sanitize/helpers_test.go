package sanitize

import (
	"bytes"
	"encoding/base64"
	"testing"

	"cordon/internal/epb"
)

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Real parameter sets (from gortsplib's format tests).
const (
	sps264B64 = "Z2QAH6zZQFAFuwFsgAAAAwCAAAAeB4wYyw=="
	pps264B64 = "aOvjyyLA"
	vps265B64 = "QAEMAf//AWAAAAMAkAAAAwAAAwB4mZgJ"
	sps265B64 = "QgEBAWAAAAMAkAAAAwAAAwB4oAPAgBDllmZpJMrgEAAAAwAQAAADAeCA"
	pps265B64 = "RAHBcrRiQA=="
)

var vendorUUID = [16]byte{0x1c, 0x4a, 0x00, 0x00, 0x01, 0x48, 0x49, 0x4b, 0x56, 0x49, 0x53, 0x49, 0x4f, 0x4e, 0x00, 0x00}

// seiMsg is one SEI message for the builders: payload type, payload.
type seiMsg struct {
	typ     int
	payload []byte
	size    int // when > 0, the payloadSize written (may lie)
}

func udu(uuid [16]byte, data ...byte) seiMsg {
	return seiMsg{typ: 5, payload: append(uuid[:len(uuid):len(uuid)], data...)}
}

func ffValue(b []byte, v int) []byte {
	for v >= 255 {
		b = append(b, 0xFF)
		v -= 255
	}
	return append(b, byte(v))
}

// seiRBSP builds the RBSP of an SEI (messages and trailing bits).
func seiRBSP(msgs ...seiMsg) []byte {
	var b []byte
	for _, m := range msgs {
		b = ffValue(b, m.typ)
		size := len(m.payload)
		if m.size > 0 {
			size = m.size
		}
		b = ffValue(b, size)
		b = append(b, m.payload...)
	}
	return append(b, 0x80)
}

func sei264(msgs ...seiMsg) []byte {
	return epb.Append([]byte{0x06}, seiRBSP(msgs...))
}

func sei265(suffix bool, msgs ...seiMsg) []byte {
	h := []byte{39 << 1, 1}
	if suffix {
		h[0] = 40 << 1
	}
	return epb.Append(h, seiRBSP(msgs...))
}

// slice264 returns an H.264 NAL of type typ with n payload bytes.
func slice264(typ byte, n int) []byte {
	b := make([]byte, n+1)
	b[0] = 0x60 | typ
	for i := 1; i < len(b); i++ {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func nal265(typ byte, n int) []byte {
	b := make([]byte, n+2)
	b[0] = typ << 1
	b[1] = 1
	for i := 2; i < len(b); i++ {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func cloneAU(au [][]byte) [][]byte {
	out := make([][]byte, len(au))
	for i, b := range au {
		out[i] = bytes.Clone(b)
	}
	return out
}

func sameAU(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// recorder collects OnDrop reasons.
type recorder struct{ reasons []string }

func (r *recorder) on(reason string) { r.reasons = append(r.reasons, reason) }

func (r *recorder) take() []string {
	out := r.reasons
	r.reasons = nil
	return out
}
