package ingest

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// streamGuard is the camera's TCP connection as gortsplib reads it. It
// follows the byte stream the way gortsplib's reader will split it (RTSP
// messages and interleaved frames) and enforces what gortsplib does not:
//
//   - header bytes per message (gortsplib allows 255 headers of 2 KiB, about
//     650 kB) and body bytes (gortsplib: 128 KiB) beyond Limits;
//   - junk between messages (gortsplib skips it byte by byte, unbounded);
//   - interleaved frames on channels never set up (gortsplib drops them
//     silently, unbounded);
//   - a message or frame that takes longer than half the read timeout to
//     arrive ("one byte a second");
//   - the bitrate bound, on every byte.
//
// It never changes the bytes: on a violation the connection is closed and
// gortsplib's read fails.
//
// It also reads ahead: gortsplib reads through a 4 KiB bufio.Reader, so a
// 1080p camera at 4 Mbit/s cost about ten read system calls per frame.
// The guard reads up to readAhead bytes per call instead (everything the
// socket holds, usually a whole frame) and checks them as they arrive;
// gortsplib is then served from memory. Measured on the 50-reader RTSP
// benchmark: the process's read calls fell from about 170 to about 80 a
// second.
//
// c is what gortsplib reads and writes: the TCP connection for rtsp://, the
// TLS connection over it for rtsps:// (the guard must see plaintext). raw
// is the TCP connection: closing it never waits on the camera (a TLS
// close_notify is a write a camera could hold up).
type streamGuard struct {
	net.Conn
	raw net.Conn
	s   *session
	err error // sticky; only the reader goroutine calls Read
	tok tokenizer

	// read-ahead: buf[r:w] has been read and checked, not yet handed to
	// gortsplib; rerr is the error that came with the last bytes read,
	// returned once they are consumed
	buf  []byte
	r, w int
	rerr error
}

// readAhead is the most the guard reads from the camera in one call.
const readAhead = 64 << 10

func newStreamGuard(c, raw net.Conn, s *session) *streamGuard {
	// half the read timeout: the slow message is named before gortsplib's
	// request timer fires with a vaguer error
	slow := max(s.c.ReadTimeout/2, time.Second)
	return &streamGuard{Conn: c, raw: raw, s: s, tok: tokenizer{lim: &s.c.Limits, slow: slow, channels: &s.channels}}
}

// Close closes the TCP connection.
func (g *streamGuard) Close() error { return g.raw.Close() }

func (g *streamGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.r == g.w {
		if g.rerr != nil {
			return 0, g.rerr
		}
		if len(p) >= readAhead {
			n, err := g.Conn.Read(p)
			if v := g.check(p[:n]); v != nil {
				return 0, v
			}
			return n, err
		}
		if g.buf == nil {
			g.buf = make([]byte, readAhead)
		}
		n, err := g.Conn.Read(g.buf)
		if v := g.check(g.buf[:n]); v != nil {
			return 0, v
		}
		g.r, g.w = 0, n
		if n == 0 {
			return 0, err
		}
		g.rerr = err
	}
	n := copy(p, g.buf[g.r:g.w])
	g.r += n
	return n, nil
}

// check applies the bitrate bound and the tokenizer to bytes just read
// from the camera; on a violation it reports it and closes the connection.
func (g *streamGuard) check(b []byte) *Violation {
	if len(b) == 0 {
		return nil
	}
	now := time.Now()
	v := g.s.rate.take(len(b), now)
	if v == nil {
		v = g.tok.feed(b, now)
	}
	if v != nil {
		g.s.violate(v)
		g.err = v
		_ = g.raw.Close()
	}
	return v
}

// channelSet is the set of interleaved channels set up on a connection.
type channelSet [4]atomic.Uint64

func (c *channelSet) add(ch int) {
	if ch >= 0 && ch < 256 {
		c[ch/64].Or(1 << (ch % 64))
	}
}

func (c *channelSet) has(ch int) bool {
	return c[ch/64].Load()&(1<<(ch%64)) != 0
}

type tokState uint8

const (
	tIdle      tokState = iota // between messages
	tIdle2                     // one byte seen, classifying
	tFrameHdr                  // after '$': channel and length
	tFrameBody                 // interleaved payload
	tLine                      // start line, until '\r'
	tLineLF                    // '\n' after the start line
	tHdrStart                  // first byte of a header line
	tHdrKey                    // header name, until ':'
	tHdrSpace                  // spaces after ':'
	tHdrVal                    // header value, until '\r'
	tHdrValLF                  // '\n' after a header line
	tHdrEndLF                  // '\n' of the empty line
	tBody                      // message body
)

// tokenizer splits the camera's byte stream exactly where gortsplib's
// reader (pkg/conn, pkg/base) does: '$' starts an interleaved frame, "RT"
// a response, a known method prefix a request, anything else is skipped a
// byte at a time; a message's start line and header lines end at "\r\n",
// header names at ':', and exactly one Content-Length header gives the
// body length. Input gortsplib rejects makes its reader fail and close the
// connection, so the tokenizer need not agree on it.
type tokenizer struct {
	lim      *Limits
	slow     time.Duration
	channels *channelSet

	st       tokState
	first    byte
	fh       [3]byte
	fhN      int
	remain   int
	hdrBytes int
	start    time.Time // when the current message or frame began
	junk     int
	stray    int
	key      []byte
	keyLen   int
	isCL     bool
	val      []byte // value of the current header, kept for Content-Length only
	clVal    []byte // the last Content-Length value
	clCount  int
}

func isMessageStart(a, b byte) bool {
	switch string([]byte{a, b}) {
	case "RT", "AN", "DE", "GE", "OP", "PA", "PL", "RE", "SE", "TE":
		return true
	}
	return false
}

// feed consumes bytes the camera sent; it returns a Violation when a bound
// is exceeded.
func (t *tokenizer) feed(b []byte, now time.Time) *Violation {
	for len(b) > 0 {
		switch t.st {
		case tFrameBody, tBody:
			n := min(len(b), t.remain)
			t.remain -= n
			b = b[n:]
			if t.remain == 0 {
				t.st = tIdle
			}
			continue
		}
		if v := t.step(b[0], now); v != nil {
			return v
		}
		b = b[1:]
	}
	if t.st != tIdle && t.st != tIdle2 && now.Sub(t.start) > t.slow {
		what := "an RTSP message"
		if t.st == tFrameHdr || t.st == tFrameBody {
			what = "an interleaved frame"
		}
		return &Violation{Reason: ReasonSlow, Msg: fmt.Sprintf(
			"the camera took more than %s to send %s (a stalled or deliberately slow camera)", t.slow, what)}
	}
	return nil
}

// step consumes one byte outside bodies and frame payloads.
func (t *tokenizer) step(c byte, now time.Time) *Violation {
	switch t.st {
	case tIdle:
		t.begin(c, now)
	case tIdle2:
		if isMessageStart(t.first, c) {
			t.st, t.hdrBytes, t.junk = tLine, 2, 0
			return nil
		}
		t.junk++
		if t.junk > t.lim.MaxJunkBytes {
			return &Violation{Reason: ReasonJunk, Msg: fmt.Sprintf(
				"the camera sent more than %d bytes that are neither RTSP nor interleaved RTP", t.lim.MaxJunkBytes)}
		}
		t.begin(c, now)
	case tFrameHdr:
		t.fh[t.fhN] = c
		t.fhN++
		if t.fhN == 3 {
			return t.frame()
		}
	default:
		return t.header(c)
	}
	return nil
}

// begin classifies the first byte of a message or frame.
func (t *tokenizer) begin(c byte, now time.Time) {
	t.start = now
	if c == '$' {
		t.st, t.fhN, t.junk = tFrameHdr, 0, 0
		return
	}
	t.st, t.first = tIdle2, c
}

func (t *tokenizer) frame() *Violation {
	ch := int(t.fh[0])
	t.remain = int(t.fh[1])<<8 | int(t.fh[2])
	t.st = tFrameBody
	if t.remain == 0 {
		t.st = tIdle
	}
	if !t.channels.has(ch) {
		t.stray++
		if t.stray > t.lim.MaxStrayFrames {
			return &Violation{Reason: ReasonStrayFrames, Msg: fmt.Sprintf(
				"the camera sent more than %d interleaved frames on channels that were never set up (channel %d)", t.lim.MaxStrayFrames, ch)}
		}
	}
	return nil
}

// header consumes one byte of a start line or header section.
func (t *tokenizer) header(c byte) *Violation {
	t.hdrBytes++
	if t.hdrBytes > t.lim.MaxHeaderBytes {
		return &Violation{Reason: ReasonHeaderSize, Msg: fmt.Sprintf(
			"the camera sent an RTSP message whose headers exceed %d bytes", t.lim.MaxHeaderBytes)}
	}
	switch t.st {
	case tLine:
		if c == '\r' {
			t.st = tLineLF
		}
	case tLineLF, tHdrValLF:
		if t.st == tHdrValLF && t.isCL {
			t.clCount++
			t.clVal = append(t.clVal[:0], t.val...)
		}
		t.st = tHdrStart
	case tHdrStart:
		if c == '\r' {
			t.st = tHdrEndLF
			return nil
		}
		t.key, t.keyLen, t.isCL, t.val = append(t.key[:0], c), 1, false, t.val[:0]
		t.st = tHdrKey
	case tHdrKey:
		if c == ':' {
			t.isCL = t.keyLen == len("Content-Length") && http.CanonicalHeaderKey(string(t.key)) == "Content-Length"
			t.st = tHdrSpace
			return nil
		}
		t.keyLen++
		if len(t.key) < 16 {
			t.key = append(t.key, c)
		}
	case tHdrSpace:
		if c == ' ' {
			return nil
		}
		t.st = tHdrVal
		return t.value(c)
	case tHdrVal:
		return t.value(c)
	case tHdrEndLF:
		return t.endHeaders()
	}
	return nil
}

func (t *tokenizer) value(c byte) *Violation {
	if c == '\r' {
		t.st = tHdrValLF
		return nil
	}
	if t.isCL && len(t.val) < 24 {
		t.val = append(t.val, c)
	}
	return nil
}

// endHeaders starts the body, if any.
func (t *tokenizer) endHeaders() *Violation {
	t.st = tIdle
	if t.clCount != 1 {
		t.clCount = 0
		return nil
	}
	t.clCount = 0
	n, err := strconv.ParseUint(string(t.clVal), 10, 64)
	if err != nil || n == 0 {
		return nil // gortsplib rejects a bad length itself
	}
	if n > uint64(t.lim.MaxBodyBytes) {
		return &Violation{Reason: ReasonBodySize, Msg: fmt.Sprintf(
			"the camera sent an RTSP body (SDP) of %d bytes; the limit is %d", n, t.lim.MaxBodyBytes)}
	}
	t.remain, t.st = int(n), tBody
	return nil
}
