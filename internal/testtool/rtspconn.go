package testtool

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RTSPConn is one RTSP connection driven by hand from a chosen local
// address (127.0.0.N: lockout and connection caps are per address), for
// the door tests that need what an RTSP library hides: the exact request,
// the same connection across requests, the server closing it.
type RTSPConn struct {
	t    testing.TB
	c    net.Conn
	br   *bufio.Reader
	addr string
	cseq int
}

// DialFrom opens a TCP connection to addr from the local IP src (a
// loopback address: per-address caps and lockouts are under test); it is
// closed when the test ends.
func DialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// DialRTSP connects to addr from the local IP src; the connection is
// closed by Close or when the test ends.
func DialRTSP(t testing.TB, addr, src string) *RTSPConn {
	t.Helper()
	c := DialFrom(t, src, addr)
	return &RTSPConn{t: t, c: c, br: bufio.NewReader(c), addr: addr}
}

// Close closes the connection now.
func (r *RTSPConn) Close() { _ = r.c.Close() }

// Do sends one request for rtsp://<addr>/<path> with an optional
// Authorization value and returns the status and headers; status 0 means
// the server closed the connection. A body is read and discarded.
func (r *RTSPConn) Do(method, path, authz string) (int, http.Header) {
	r.t.Helper()
	r.cseq++
	_ = r.c.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s rtsp://%s/%s RTSP/1.0\r\nCSeq: %d\r\nAccept: application/sdp\r\n", method, r.addr, path, r.cseq)
	if authz != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", authz)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(r.c, b.String()); err != nil {
		return 0, nil
	}
	status, err := r.br.ReadString('\n')
	if err != nil {
		return 0, nil
	}
	f := strings.Fields(status)
	if len(f) < 2 || f[0] != "RTSP/1.0" {
		r.t.Fatalf("RTSP status line %q", status)
	}
	code, _ := strconv.Atoi(f[1])
	hdr := http.Header{}
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			return 0, nil
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if n, _ := strconv.Atoi(hdr.Get("Content-Length")); n > 0 {
		if _, err := io.CopyN(io.Discard, r.br, int64(n)); err != nil {
			return 0, nil
		}
	}
	return code, hdr
}
