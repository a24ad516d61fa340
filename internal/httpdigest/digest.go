// Package httpdigest is HTTP Digest access authentication (RFC 7616; MD5
// and SHA-256, qop=auth) for both sides of ONVIF: camnet/onvif answers a
// camera's challenge, democam's ONVIF camera and cordon's ONVIF device
// face issue and check them. Many ONVIF cameras want HTTP Digest instead of
// (or besides) WS-Security. It lives in internal/ because it is shared
// plumbing of those packages.
//
// Header parsing is bounded (MaxHeaderLen, at most 32 parameters) and
// never panics on hostile input.
package httpdigest

import (
	"crypto/hmac"
	"crypto/md5" // #nosec: RFC 7616 MD5 is what cameras speak
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"time"
)

// MaxHeaderLen bounds a WWW-Authenticate or Authorization value.
const MaxHeaderLen = 4096

const maxParams = 32

// Challenge is a server's Digest challenge.
type Challenge struct {
	Realm, Nonce, Opaque string
	// Algorithm: "MD5" (default) or "SHA-256".
	Algorithm string
	// QOP: offered qop values ("auth", "auth-int"); empty = RFC 2069.
	QOP []string
	// Stale: the previous request's nonce expired but its credentials were
	// right (RFC 7616 3.3): retry with this challenge, do not count a
	// refusal.
	Stale bool
}

// ErrNoDigest is returned when none of the challenges is Digest.
var ErrNoDigest = errors.New("httpdigest: no Digest challenge")

// FindChallenge returns the first supported Digest challenge among the
// WWW-Authenticate values of a response.
func FindChallenge(values []string) (*Challenge, error) {
	var lastErr error = ErrNoDigest
	for _, v := range values {
		c, err := ParseChallenge(v)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrNoDigest) {
			lastErr = err
		}
	}
	return nil, lastErr
}

// ParseChallenge parses one WWW-Authenticate value.
func ParseChallenge(v string) (*Challenge, error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return nil, ErrNoDigest
	}
	p, err := parseParams(rest)
	if err != nil {
		return nil, err
	}
	c := &Challenge{Realm: p["realm"], Nonce: p["nonce"], Opaque: p["opaque"], Algorithm: p["algorithm"],
		Stale: strings.EqualFold(p["stale"], "true")}
	if c.Nonce == "" {
		return nil, errors.New("httpdigest: challenge without nonce")
	}
	switch strings.ToUpper(c.Algorithm) {
	case "", "MD5":
		c.Algorithm = "MD5"
	case "SHA-256":
		c.Algorithm = "SHA-256"
	default:
		return nil, fmt.Errorf("httpdigest: unsupported algorithm %q", clip(c.Algorithm))
	}
	for _, q := range strings.Split(p["qop"], ",") {
		if q = strings.TrimSpace(q); q != "" {
			c.QOP = append(c.QOP, q)
		}
	}
	return c, nil
}

func clip(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// parseParams parses `k=v, k="quoted \" v"` lists.
func parseParams(s string) (map[string]string, error) {
	if len(s) > MaxHeaderLen {
		return nil, errors.New("httpdigest: header too long")
	}
	out := map[string]string{}
	for n := 0; ; n++ {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		if n >= maxParams {
			return nil, errors.New("httpdigest: too many parameters")
		}
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errors.New("httpdigest: malformed parameter")
		}
		k = strings.ToLower(strings.TrimSpace(k))
		rest = strings.TrimLeft(rest, " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				return nil, errors.New("httpdigest: unterminated quoted value")
			}
			val, s = b.String(), rest[i+1:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val, s = strings.TrimSpace(rest[:end]), rest[end:]
		}
		out[k] = val
	}
	return out, nil
}

func newHash(alg string) hash.Hash {
	if alg == "SHA-256" {
		return sha256.New()
	}
	return md5.New()
}

func hexHash(alg string, parts ...string) string {
	h := newHash(alg)
	h.Write([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(h.Sum(nil))
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Authorization returns the Authorization header value answering c for a
// request (method, request-target uri) as user; nc counts the requests
// made with this nonce (from 1).
func (c *Challenge) Authorization(method, uri, user, password string, nc uint32) (string, error) {
	var cb [12]byte
	if _, err := rand.Read(cb[:]); err != nil {
		return "", err
	}
	cnonce := hex.EncodeToString(cb[:])
	ha1 := hexHash(c.Algorithm, user, c.Realm, password)
	ha2 := hexHash(c.Algorithm, method, uri)
	qop := ""
	for _, q := range c.QOP {
		if q == "auth" {
			qop = "auth"
		}
	}
	if len(c.QOP) > 0 && qop == "" {
		return "", errors.New("httpdigest: server offers only qop=auth-int")
	}
	ncs := fmt.Sprintf("%08x", nc)
	var resp string
	if qop == "" {
		resp = hexHash(c.Algorithm, ha1, c.Nonce, ha2)
	} else {
		resp = hexHash(c.Algorithm, ha1, c.Nonce, ncs, cnonce, qop, ha2)
	}
	parts := []string{
		"username=" + quote(user), "realm=" + quote(c.Realm), "nonce=" + quote(c.Nonce),
		"uri=" + quote(uri), "response=" + quote(resp), "algorithm=" + c.Algorithm,
	}
	if qop != "" {
		parts = append(parts, "qop="+qop, "nc="+ncs, "cnonce="+quote(cnonce))
	}
	if c.Opaque != "" {
		parts = append(parts, "opaque="+quote(c.Opaque))
	}
	return "Digest " + strings.Join(parts, ", "), nil
}

// Server issues and checks Digest challenges with stateless nonces
// (timestamp + HMAC), valid for NonceTTL. Construct with NewServer.
type Server struct {
	Realm    string
	NonceTTL time.Duration
	Now      func() time.Time
	// Seen, when set, is asked after a response matched whether this
	// (nonce, cnonce, nc) was already used; true refuses the request as
	// a replay (ErrReplay). The server must remember answers for at least
	// NonceTTL. Without qop there is no cnonce or nc: Seen gets "" for
	// both and should refuse.
	Seen func(nonce, cnonce, nc string) bool
	key  [32]byte
}

// ErrReplay is returned by Verify when Seen reports a used (nonce,
// cnonce, nc).
var ErrReplay = errors.New("httpdigest: replayed authorization")

// NewServer returns a Server for realm with a random nonce key, MD5,
// nonces valid 5 minutes.
func NewServer(realm string) (*Server, error) {
	s := &Server{Realm: realm, NonceTTL: 5 * time.Minute, Now: time.Now}
	if _, err := rand.Read(s.key[:]); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) nonce(t time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	m := hmac.New(sha256.New, s.key[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) nonceOK(n string) bool {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return false
	}
	m := hmac.New(sha256.New, s.key[:])
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := s.Now().Sub(issued)
	return age >= -time.Second && age <= s.NonceTTL
}

// Challenge returns a WWW-Authenticate value.
func (s *Server) Challenge() string {
	return fmt.Sprintf(`Digest realm=%s, qop="auth", nonce=%s, algorithm=MD5`, quote(s.Realm), quote(s.nonce(s.Now())))
}

// Verify checks the request's Digest Authorization; password returns the
// secret of a user (ok false for an unknown user). It returns the user
// name when the response matches, compared in constant time.
func (s *Server) Verify(r *http.Request, password func(user string) (string, bool)) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return "", errors.New("httpdigest: no Digest authorization")
	}
	if len(rest) > MaxHeaderLen {
		return "", errors.New("httpdigest: header too long")
	}
	p, err := ParseResponse(rest)
	if err != nil {
		return "", fmt.Errorf("httpdigest: %w", err)
	}
	user := p.Username
	if p.Realm != s.Realm || !s.nonceOK(p.Nonce) {
		return "", errors.New("httpdigest: wrong realm or stale nonce")
	}
	if p.URI != r.URL.RequestURI() {
		return "", errors.New("httpdigest: uri does not match the request")
	}
	alg := p.Algorithm
	if alg == "" {
		alg = "MD5"
	}
	if alg != "MD5" && alg != "SHA-256" {
		return "", errors.New("httpdigest: unsupported algorithm")
	}
	secret, known := password(user)
	ha1 := hexHash(alg, user, s.Realm, secret)
	ha2 := hexHash(alg, r.Method, p.URI)
	var want string
	switch p.QOP {
	case "auth":
		want = hexHash(alg, ha1, p.Nonce, p.NC, p.CNonce, "auth", ha2)
	case "":
		want = hexHash(alg, ha1, p.Nonce, ha2)
	default:
		return "", errors.New("httpdigest: unsupported qop")
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(p.Response)) != 1 || !known {
		return "", errors.New("httpdigest: wrong credentials")
	}
	if s.Seen != nil && s.Seen(p.Nonce, p.CNonce, p.NC) {
		return "", ErrReplay
	}
	return user, nil
}
