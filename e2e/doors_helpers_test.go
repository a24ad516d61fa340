package e2e

// Helpers of the doors-wiring end-to-end tests (doors_*_test.go, issue
// 10's "Done when"). Names carry a "dw" prefix; the access-control
// helpers of helpers_doors_test.go ("dr") are reused.

import (
	"bufio"
	"context"
	"crypto/md5" //nolint:gosec // RTSP Digest is MD5
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"cordon/internal/whepclient"
)

// dwRTSP is one RTSP connection driven by hand from a chosen loopback
// address: it keeps the connection (and its Digest nonce) across
// requests.
type dwRTSP struct {
	t     *testing.T
	c     net.Conn
	br    *bufio.Reader
	addr  string
	cseq  int
	nonce string
}

func dwRTSPDial(t *testing.T, addr, src string) *dwRTSP {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &dwRTSP{t: t, c: c, br: bufio.NewReader(c), addr: addr}
}

// do sends one request; status 0 means the server closed the connection.
// A Digest challenge's nonce is remembered.
func (r *dwRTSP) do(method, path, authz string) (int, http.Header) {
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
	for _, v := range hdr.Values("WWW-Authenticate") {
		var a headers.Authenticate
		if strings.HasPrefix(v, "Digest") && a.Unmarshal(base.HeaderValue{v}) == nil {
			r.nonce = a.Nonce
		}
	}
	return code, hdr
}

// digest answers the connection's last challenge for method on path.
func (r *dwRTSP) digest(user, secret, method, path string) string {
	uri := "rtsp://" + r.addr + "/" + path
	md := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) } //nolint:gosec
	ha1 := md(user + ":cordon:" + secret)
	resp := md(ha1 + ":" + r.nonce + ":" + md(method+":"+uri))
	return fmt.Sprintf(`Digest username="%s", realm="cordon", nonce="%s", uri="%s", response="%s"`, user, r.nonce, uri, resp)
}

func dwBasic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// dwOfferNoCandidates is a browser-like WHEP offer whose own candidates
// are removed: the session never connects, and ICE checks go only where a
// later PATCH says.
func dwOfferNoCandidates(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sdp, err := whepclient.Offer(ctx, whepclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, l := range strings.SplitAfter(sdp, "\n") {
		if !strings.HasPrefix(l, "a=candidate:") {
			out.WriteString(l)
		}
	}
	return out.String()
}

func dwUfrag(sdp string) string {
	for _, l := range strings.Split(sdp, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(l), "a=ice-ufrag:"); ok {
			return u
		}
	}
	return ""
}

// dwSink counts datagrams reaching a set of UDP sockets on one address.
type dwSink struct {
	conns []net.PacketConn
	got   []atomic.Int64
	wg    sync.WaitGroup
}

func dwNewSink(t *testing.T, host string, n int) *dwSink {
	t.Helper()
	s := &dwSink{got: make([]atomic.Int64, n)}
	for i := range n {
		c, err := net.ListenPacket("udp4", host+":0")
		if err != nil {
			t.Fatal(err)
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := c.ReadFrom(buf); err != nil {
					return
				}
				s.got[i].Add(1)
			}
		}()
	}
	t.Cleanup(func() {
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.wg.Wait()
	})
	return s
}

func (s *dwSink) port(i int) int { return s.conns[i].LocalAddr().(*net.UDPAddr).Port }

func (s *dwSink) total() (n int64, ports int) {
	for i := range s.got {
		if v := s.got[i].Load(); v > 0 {
			n += v
			ports++
		}
	}
	return n, ports
}

// dwConnFrom opens a TCP connection to addr from src.
func dwConnFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dwClosedAtOnce reports whether the server closes c (after at most a
// short refusal it writes) rather than keeping it open: it reads until
// EOF or until within passes with the connection still open.
func dwClosedAtOnce(c net.Conn, within time.Duration) (closed bool, said string) {
	_ = c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(io.LimitReader(c, 4096))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false, string(b)
	}
	return true, string(b)
}
