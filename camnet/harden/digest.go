package harden

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// challenge is one parsed WWW-Authenticate challenge.
type challenge struct {
	scheme    string // "digest" or "basic"
	realm     string
	nonce     string
	opaque    string
	algorithm string // upper case; "" = MD5
	qop       []string
	stale     bool
}

// Bounds on what a camera may put into WWW-Authenticate.
const (
	maxChallengeLen    = 4096
	maxChallengeParams = 16
	maxChallengeValue  = 1024
)

var (
	errBadChallenge = errors.New("malformed WWW-Authenticate header")
	// errNoUsableAuth: the camera asks for authentication cordon will not
	// or cannot give; nothing else on that camera can work.
	errNoUsableAuth = errors.New("no usable authentication")
)

// parseChallenges parses the WWW-Authenticate header values of an answer
// into challenges (a camera may send Digest and Basic, in one header or
// several). Unknown schemes are skipped.
func parseChallenges(values []string) ([]challenge, error) {
	var out []challenge
	total := 0
	for _, v := range values {
		total += len(v)
		if total > maxChallengeLen {
			return nil, errors.New("WWW-Authenticate header too long")
		}
		cs, err := parseChallengeLine(v)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// parseChallengeLine parses one header value: `Scheme k=v, k="v", Scheme2 ...`.
func parseChallengeLine(s string) ([]challenge, error) {
	var out []challenge
	var cur *challenge
	params := 0
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		tok := token(s)
		if tok == "" {
			return nil, errBadChallenge
		}
		rest := strings.TrimLeft(s[len(tok):], " \t")
		if !strings.HasPrefix(rest, "=") {
			// a new scheme
			out = append(out, challenge{scheme: strings.ToLower(tok)})
			cur = &out[len(out)-1]
			s = rest
			continue
		}
		if cur == nil {
			return nil, errBadChallenge
		}
		if params++; params > maxChallengeParams {
			return nil, errors.New("too many WWW-Authenticate parameters")
		}
		val, after, err := paramValue(strings.TrimLeft(rest[1:], " \t"))
		if err != nil {
			return nil, err
		}
		cur.set(strings.ToLower(tok), val)
		s = after
	}
	return out, nil
}

func (c *challenge) set(key, val string) {
	switch key {
	case "realm":
		c.realm = val
	case "nonce":
		c.nonce = val
	case "opaque":
		c.opaque = val
	case "algorithm":
		c.algorithm = strings.ToUpper(val)
	case "stale":
		c.stale = strings.EqualFold(val, "true")
	case "qop":
		c.qop = c.qop[:0]
		for _, q := range strings.Split(val, ",") {
			if q = strings.ToLower(strings.TrimSpace(q)); q != "" && len(c.qop) < 4 {
				c.qop = append(c.qop, q)
			}
		}
	}
}

// token returns the RFC 7230 token at the start of s.
func token(s string) string {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, b) >= 0 {
			return s[:i]
		}
	}
	return s
}

// paramValue reads a token or quoted-string value and returns the rest.
func paramValue(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		t := token(s)
		return t, s[len(t):], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return b.String(), s[i+1:], nil
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c < ' ' && c != '\t':
			return "", "", errBadChallenge
		default:
			b.WriteByte(c)
		}
		if b.Len() > maxChallengeValue {
			return "", "", errors.New("WWW-Authenticate value too long")
		}
	}
	return "", "", errBadChallenge
}

// pickChallenge chooses the strongest usable challenge: Digest with an
// algorithm cordon knows; Basic only when allowBasic (HTTPS).
func pickChallenge(cs []challenge, allowBasic bool) (challenge, error) {
	var digest, basic *challenge
	for i := range cs {
		c := &cs[i]
		switch c.scheme {
		case "digest":
			if _, ok := digestHash(c.algorithm); ok && c.nonce != "" && (digest == nil || rankAlg(c.algorithm) > rankAlg(digest.algorithm)) {
				digest = c
			}
		case "basic":
			basic = c
		}
	}
	switch {
	case digest != nil:
		if len(digest.qop) > 0 && !hasQop(digest.qop, "auth") && !hasQop(digest.qop, "auth-int") {
			return challenge{}, fmt.Errorf("%w: camera offers Digest only with an unknown qop", errNoUsableAuth)
		}
		return *digest, nil
	case basic != nil && allowBasic:
		return *basic, nil
	case basic != nil:
		return challenge{}, fmt.Errorf("%w: camera offers only Basic authentication over plain HTTP; cordon sends camera passwords with Digest only (or Basic over https)", errNoUsableAuth)
	}
	return challenge{}, fmt.Errorf("%w: camera asks for authentication cordon does not speak (no Digest MD5/SHA-256)", errNoUsableAuth)
}

func rankAlg(a string) int {
	if strings.HasPrefix(a, "SHA-256") {
		return 1
	}
	return 0
}

func hasQop(qs []string, q string) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

// digestHash returns the hash of a Digest algorithm ("" = MD5).
func digestHash(alg string) (func() hash.Hash, bool) {
	switch alg {
	case "", "MD5", "MD5-SESS":
		return md5.New, true
	case "SHA-256", "SHA-256-SESS":
		return sha256.New, true
	}
	return nil, false
}

func hexOf(h func() hash.Hash, s string) string {
	x := h()
	x.Write([]byte(s))
	return hex.EncodeToString(x.Sum(nil))
}

// authorization builds the Authorization header value for one request.
// uri is the request-target exactly as sent; body is hashed for auth-int;
// cnonce is fresh randomness (randomHex).
func (c challenge) authorization(method, uri, user, pass string, nc uint32, cnonce string, body []byte) (string, error) {
	if c.scheme == "basic" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)), nil
	}
	if strings.ContainsAny(user, "\"\\\r\n") {
		return "", errors.New("camera username contains a quote, backslash or line break")
	}
	h, _ := digestHash(c.algorithm)
	ha1 := hexOf(h, user+":"+c.realm+":"+pass)
	if strings.HasSuffix(c.algorithm, "-SESS") {
		ha1 = hexOf(h, ha1+":"+c.nonce+":"+cnonce)
	}
	qop := ""
	switch {
	case hasQop(c.qop, "auth"):
		qop = "auth"
	case hasQop(c.qop, "auth-int"):
		qop = "auth-int"
	}
	a2 := method + ":" + uri
	if qop == "auth-int" {
		a2 += ":" + hexOf(h, string(body))
	}
	ha2 := hexOf(h, a2)
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username="%s", realm="%s", nonce="%s", uri="%s"`, user, quote(c.realm), quote(c.nonce), quote(uri))
	if qop == "" {
		fmt.Fprintf(&b, `, response="%s"`, hexOf(h, ha1+":"+c.nonce+":"+ha2))
	} else {
		ncs := fmt.Sprintf("%08x", nc)
		fmt.Fprintf(&b, `, response="%s", qop=%s, nc=%s, cnonce="%s"`,
			hexOf(h, ha1+":"+c.nonce+":"+ncs+":"+cnonce+":"+qop+":"+ha2), qop, ncs, cnonce)
	}
	if c.algorithm != "" {
		fmt.Fprintf(&b, ", algorithm=%s", c.algorithm)
	}
	if c.opaque != "" {
		fmt.Fprintf(&b, `, opaque="%s"`, quote(c.opaque))
	}
	return b.String(), nil
}

// quote escapes a value for a quoted-string.
func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "").Replace(s)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
