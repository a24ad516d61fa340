package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Event is one audit record. Callers fill Event, Actor, Camera, Remote,
// Protocol, Detail, Source (login_ok and login_failed: "local", "ldap",
// "oidc"; "" = "local") and, for view_end, DurationS and Bytes. Seq,
// Time, Node and Prev are assigned by Append (values set by the caller
// are ignored).
type Event struct {
	Seq       uint64
	Time      time.Time
	Node      string
	Event     string
	Actor     string
	Camera    string
	Remote    string
	Protocol  string
	Source    string // login_ok / login_failed only
	Detail    string
	Prev      string
	DurationS float64 // view_end only
	Bytes     int64   // view_end only
}

// record is the on-disk shape; field order is the line's key order.
// Lines written before cordon signed its log (legacy) have no node,
// source, key, next_key or sig.
type record struct {
	Seq      uint64  `json:"seq"`
	Time     string  `json:"time"`
	Node     *string `json:"node,omitempty"`
	Event    string  `json:"event"`
	Actor    string  `json:"actor"`
	Camera   string  `json:"camera"`
	Remote   string  `json:"remote"`
	Protocol string  `json:"protocol"`
	Source   *string `json:"source,omitempty"`
	Detail   string  `json:"detail"`
	// Pointers so that they are present exactly on view_end lines.
	DurationS *float64 `json:"duration_s,omitempty"`
	Bytes     *int64   `json:"bytes,omitempty"`
	Prev      string   `json:"prev"`
	// Key introduces the signing key of this line (the first signed line
	// of a chain); NextKey announces the key that signs the following
	// lines. Both are base64url Ed25519 public keys.
	Key     string `json:"key,omitempty"`
	NextKey string `json:"next_key,omitempty"`
	// Sig is the base64url Ed25519 signature of the line without its
	// sig field; always the last field.
	Sig string `json:"sig,omitempty"`
}

// Field length limits applied by Append (bytes; longer values are cut at
// a rune boundary and suffixed with "…").
const (
	maxFieldLen  = 256
	maxDetailLen = 2048
	maxSourceLen = 16
	// maxLineLen bounds what Verify and Initialize will read as one line.
	maxLineLen = 64 * 1024
)

// TimeFormat is the layout of the "time" field: RFC 3339, UTC, microseconds.
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

var b64 = base64.RawURLEncoding

const sigField = `,"sig":"`

// encode returns the line's bytes without newline (and without sig: see
// withSig).
func (r *record) encode() ([]byte, error) {
	r.Sig = ""
	return json.Marshal(r)
}

// withSig appends the sig field to an encoded line.
func withSig(line []byte, sig []byte) []byte {
	out := make([]byte, 0, len(line)+len(sigField)+90)
	out = append(out, line[:len(line)-1]...)
	out = append(out, sigField...)
	out = append(out, b64.EncodeToString(sig)...)
	return append(out, '"', '}')
}

// signedPart returns the bytes a line's signature covers: the line with
// its trailing sig field removed. ok is false when sig is not the last
// field exactly as written.
func signedPart(line []byte, sig string) ([]byte, bool) {
	suffix := sigField + sig + `"}`
	if !bytes.HasSuffix(line, []byte(suffix)) {
		return nil, false
	}
	msg := append([]byte{}, line[:len(line)-len(suffix)]...)
	return append(msg, '}'), true
}

func hashLine(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// clip bounds s to n bytes at a rune boundary and replaces invalid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// lineFields reads one line strictly into a map: a JSON object of string
// and number values, no duplicate keys, nothing after it.
func lineFields(line []byte) (map[string]any, error) {
	if len(line) == 0 {
		return nil, errors.New("empty line")
	}
	if len(line) > maxLineLen {
		return nil, fmt.Errorf("line longer than %d bytes", maxLineLen)
	}
	if !utf8.Valid(line) {
		return nil, errors.New("line is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("line is not a JSON object")
	}
	vals := make(map[string]any, 16)
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, errors.New("malformed JSON")
		}
		key, ok := kt.(string)
		if !ok {
			return nil, errors.New("malformed JSON")
		}
		vt, err := dec.Token()
		if err != nil {
			return nil, errors.New("malformed JSON")
		}
		if _, isDelim := vt.(json.Delim); isDelim || vt == nil {
			return nil, fmt.Errorf("field %q must be a string or a number", clip(key, 64))
		}
		if _, dup := vals[key]; dup {
			return nil, fmt.Errorf("duplicate field %q", clip(key, 64))
		}
		vals[key] = vt
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("malformed JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON object")
	}
	return vals, nil
}

// parseLine parses one line strictly: exactly the record's keys for its
// kind (legacy or current, view_end, login, signed), right types and
// ranges, sig last.
func parseLine(line []byte) (record, error) {
	var rec record
	vals, err := lineFields(line)
	if err != nil {
		return rec, err
	}
	p := fieldParser{vals: vals}
	seqN := p.num("seq")
	if p.err == nil {
		if rec.Seq, err = strconv.ParseUint(seqN.String(), 10, 64); err != nil || rec.Seq == 0 {
			return rec, errors.New("seq must be a positive integer")
		}
	}
	for _, f := range []struct {
		k string
		p *string
	}{
		{"time", &rec.Time}, {"event", &rec.Event}, {"actor", &rec.Actor},
		{"camera", &rec.Camera}, {"remote", &rec.Remote}, {"protocol", &rec.Protocol},
		{"detail", &rec.Detail}, {"prev", &rec.Prev},
	} {
		*f.p = p.str(f.k)
	}
	rec.Node, rec.Source = p.optStr("node"), p.optStr("source")
	rec.Key, rec.NextKey, rec.Sig = deref(p.optStr("key")), deref(p.optStr("next_key")), deref(p.optStr("sig"))
	if p.err != nil {
		return rec, p.err
	}
	if err := checkValues(&rec); err != nil {
		return rec, err
	}
	want := 9
	if rec.Event == ViewEnd {
		want += 2
		if rec.DurationS, rec.Bytes, err = viewEndFields(&p); err != nil {
			return rec, err
		}
	}
	for _, present := range []bool{rec.Node != nil, rec.Source != nil, rec.Key != "", rec.NextKey != "", rec.Sig != ""} {
		if present {
			want++
		}
	}
	if len(vals) != want {
		return rec, errors.New("unexpected fields for this event")
	}
	if rec.Sig != "" {
		if _, ok := signedPart(line, rec.Sig); !ok {
			return rec, errors.New("sig must be the last field")
		}
	}
	return rec, nil
}

// checkValues checks ranges and which optional fields go together.
func checkValues(rec *record) error {
	ts, err := time.Parse(time.RFC3339Nano, rec.Time)
	if err != nil || ts.Location() != time.UTC || rec.Time[len(rec.Time)-1] != 'Z' {
		return errors.New("time must be RFC 3339 in UTC")
	}
	if !knownEvent(rec.Event) {
		return fmt.Errorf("unknown event %q", clip(rec.Event, 64))
	}
	if rec.Prev != "" && !isLowerHex64(rec.Prev) {
		return errors.New("prev must be 64 lowercase hex digits or empty")
	}
	legacy := rec.Node == nil
	switch {
	case legacy && (rec.Source != nil || rec.Key != "" || rec.NextKey != "" || rec.Sig != ""):
		return errors.New("source, key, next_key and sig need a node field")
	case !legacy && !validNode(*rec.Node):
		return errors.New("node must be 1..255 printable characters without spaces")
	case !legacy && hasSource(rec.Event) && rec.Source == nil:
		return errors.New("missing field \"source\"")
	case rec.Source != nil && !hasSource(rec.Event):
		return errors.New("source is only on login_ok and login_failed")
	case rec.Source != nil && !validSource(*rec.Source):
		return errors.New("source must be a short lowercase word")
	case (rec.Key != "" || rec.NextKey != "") && rec.Sig == "":
		return errors.New("key and next_key need a sig")
	}
	for _, k := range []string{rec.Key, rec.NextKey} {
		if b, err := b64.DecodeString(k); k != "" && (err != nil || len(b) != 32) {
			return errors.New("key and next_key must be base64url Ed25519 public keys")
		}
	}
	if b, err := b64.DecodeString(rec.Sig); rec.Sig != "" && (err != nil || len(b) != 64) {
		return errors.New("sig must be a base64url Ed25519 signature")
	}
	return nil
}

func viewEndFields(p *fieldParser) (*float64, *int64, error) {
	dn, bn := p.num("duration_s"), p.num("bytes")
	if p.err != nil {
		return nil, nil, p.err
	}
	d, err := strconv.ParseFloat(dn.String(), 64)
	if err != nil || d < 0 || math.IsInf(d, 0) || math.IsNaN(d) {
		return nil, nil, errors.New("duration_s must be a non-negative number")
	}
	b, err := strconv.ParseInt(bn.String(), 10, 64)
	if err != nil || b < 0 {
		return nil, nil, errors.New("bytes must be a non-negative integer")
	}
	return &d, &b, nil
}

type fieldParser struct {
	vals map[string]any
	err  error
}

func (p *fieldParser) str(k string) string {
	v, ok := p.vals[k]
	if !ok {
		p.setErr(fmt.Errorf("missing field %q", k))
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.setErr(fmt.Errorf("field %q must be a string", k))
	}
	return s
}

func (p *fieldParser) optStr(k string) *string {
	if _, ok := p.vals[k]; !ok {
		return nil
	}
	s := p.str(k)
	return &s
}

func (p *fieldParser) num(k string) json.Number {
	v, ok := p.vals[k]
	if !ok {
		p.setErr(fmt.Errorf("missing field %q", k))
		return ""
	}
	n, ok := v.(json.Number)
	if !ok {
		p.setErr(fmt.Errorf("field %q must be a number", k))
	}
	return n
}

func (p *fieldParser) setErr(err error) {
	if p.err == nil {
		p.err = err
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func validNode(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if r > unicode.MaxASCII || r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func validSource(s string) bool {
	if s == "" || len(s) > maxSourceLen {
		return false
	}
	for _, r := range s {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

// cleanNode makes a host name fit for the node field and syslog HOSTNAME.
func cleanNode(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7f {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 255 {
			break
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

func isLowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
