package onvifserve

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// replayCache remembers HTTP Digest (nonce, cnonce, nc) triples for a
// time, so a captured Authorization header cannot be sent again. When
// full of live entries it reports "seen" (fail closed: the client gets a
// fresh challenge).
type replayCache struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]time.Time
}

func newReplayCache(max int, ttl time.Duration, now func() time.Time) *replayCache {
	return &replayCache{max: max, ttl: ttl, now: now, m: make(map[string]time.Time)}
}

func (c *replayCache) seen(nonce, cnonce, nc string) bool {
	if cnonce == "" || nc == "" {
		return true // RFC 2069 digest: replay cannot be told apart
	}
	key := nonce + "\x00" + cnonce + "\x00" + nc
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.m[key]; ok && now.Before(exp) {
		return true
	}
	if len(c.m) >= c.max {
		for k, exp := range c.m {
			if !now.Before(exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			return true
		}
	}
	c.m[key] = now.Add(c.ttl)
	return false
}

// hostNameRe is what the face accepts as a Host header's name: a DNS
// name or an IPv4 address (IPv6 literals are parsed separately).
var hostNameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$`)

// hostOf returns the host and port the client connected to: the Host
// header when it is a well-formed name or address (what the client
// typed, also behind port forwarding), else the connection's local
// address. Nothing else from the request reaches a URI.
func (s *Server) hostOf(r *http.Request) (host, port string) {
	h, p, err := net.SplitHostPort(r.Host)
	if err != nil {
		h, p = r.Host, ""
	}
	if p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			h = ""
		}
	}
	if ip := net.ParseIP(trimBrackets(h)); ip != nil {
		return ip.String(), p
	}
	if len(h) <= 253 && hostNameRe.MatchString(h) {
		return h, p
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if lh, lp, err := net.SplitHostPort(la.String()); err == nil {
			return lh, lp
		}
	}
	return "127.0.0.1", ""
}

func trimBrackets(h string) string {
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// deviceUUID is a stable urn:uuid for this gateway (WS-Discovery endpoint
// reference), derived from the serial number (name-based, RFC 9562 v8).
func deviceUUID(serial string) string {
	sum := sha256.Sum256([]byte("cordon onvif device " + serial))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func osHostname() (string, error) { return os.Hostname() }
