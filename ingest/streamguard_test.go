package ingest

import (
	"bufio"
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/conn"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func openTokenizer() *tokenizer {
	var all channelSet
	for ch := range 256 {
		all.add(ch)
	}
	huge := 1 << 30
	return &tokenizer{lim: &Limits{MaxHeaderBytes: huge, MaxBodyBytes: huge, MaxJunkBytes: huge, MaxStrayFrames: huge}, slow: time.Hour, channels: &all}
}

// FuzzStreamTokenizer checks that the stream guard splits a camera's byte
// stream where gortsplib's reader does: after every message or frame
// gortsplib reads, the tokenizer, fed the same bytes, is between messages.
// (A disagreement would let a camera hide bytes from the bounds, or cut
// off an honest camera.)
func FuzzStreamTokenizer(f *testing.F) {
	f.Add(fuzzConversation())
	f.Add([]byte("RTSP/1.0 200 OK\r\nCSeq: 1\r\ncontent-length: 3\r\n\r\nabcRTSP/1.0 200 OK\r\n\r\n"))
	f.Add([]byte("junk\x00RT$\x01\x00\x02hiOPTIONS * RTSP/1.0\r\nCSeq: 9\r\n\r\n"))
	f.Add([]byte("RTSP/1.0 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nRTSP/1.0 200 OK\r\nA\r\n\r\nB: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		br := bufio.NewReaderSize(cr, 4096)
		c := conn.NewConn(br, io.Discard)
		var ends []int
		for {
			if _, err := c.Read(); err != nil {
				break
			}
			ends = append(ends, cr.n-br.Buffered())
		}
		tok := openTokenizer()
		prev := 0
		for _, e := range ends {
			if v := tok.feed(data[prev:e], time.Now()); v != nil {
				t.Fatalf("violation with open limits: %v", v)
			}
			if tok.st != tIdle {
				t.Fatalf("gortsplib read an item ending at %d; the tokenizer is in state %d (input %q)", e, tok.st, data[:e])
			}
			prev = e
		}
	})
}

// TestTokenizerBounds: each bound of the tokenizer on a handcrafted
// stream.
func TestTokenizerBounds(t *testing.T) {
	lim := &Limits{}
	lim.setDefaults(10 * time.Second)
	var ch channelSet
	ch.add(0)
	ch.add(1)
	newTok := func() *tokenizer { return &tokenizer{lim: lim, slow: time.Second, channels: &ch} }
	big := bytes.Repeat([]byte("x"), 20000)
	for _, tc := range []struct {
		name   string
		in     []byte
		reason string
	}{
		{"headers", append([]byte("RTSP/1.0 200 OK\r\nX: "), big...), ReasonHeaderSize},
		{"body", []byte("RTSP/1.0 200 OK\r\nContent-Length: 70000\r\n\r\n"), ReasonBodySize},
		{"junk", bytes.Repeat([]byte{0}, 70000), ReasonJunk},
		{"stray frames", bytes.Repeat([]byte("$\x07\x00\x01a"), 101), ReasonStrayFrames},
		{"fine", append([]byte("RTSP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"), bytes.Repeat([]byte("$\x00\x00\x01a$\x01\x00\x01b"), 500)...), ""},
	} {
		v := newTok().feed(tc.in, time.Now())
		if (v == nil) != (tc.reason == "") || (v != nil && v.Reason != tc.reason) {
			t.Errorf("%s: %v, want %q", tc.name, v, tc.reason)
		}
	}
	// slow: a message still incomplete after the limit
	tok := newTok()
	t0 := time.Now()
	if v := tok.feed([]byte("RTSP/1.0 2"), t0); v != nil {
		t.Fatal(v)
	}
	if v := tok.feed([]byte("0"), t0.Add(2*time.Second)); v == nil || v.Reason != ReasonSlow {
		t.Fatalf("slow message: %v", v)
	}
}
