package rtspserve

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// Digest is a Digest answer (RFC 2617/7616, MD5) and the method of the
// request it came with. The server has checked its nonce, realm, qop and
// uri before Access.CheckDigest sees it.
type Digest struct {
	Username  string
	Realm     string
	Nonce     string
	URI       string
	Response  string
	Algorithm string // "" or "MD5"
	QOP       string // "" or "auth"
	NC        string // with QOP
	CNonce    string // with QOP
	Method    string // DESCRIBE, SETUP, PLAY...
}

const (
	schemeBasic  = "basic"
	schemeDigest = "digest"
	// maxAuthorization bounds the header the parser looks at.
	maxAuthorization = 4096
)

var errNoCredentials = errors.New("no credentials")

// credentials is a parsed Authorization header.
type credentials struct {
	scheme     string
	user, pass string // Basic (user also of Digest, for lockout keys)
	digest     Digest
}

// parseAuthorization parses the request's Authorization header (exactly
// one). On error, user is what could be read of the name (for the
// lockout key), possibly "".
func parseAuthorization(v base.HeaderValue) (credentials, error) {
	switch {
	case len(v) == 0:
		return credentials{}, errNoCredentials
	case len(v) > 1:
		return credentials{}, errors.New("more than one Authorization header")
	case len(v[0]) > maxAuthorization:
		return credentials{}, errors.New("the Authorization header is too long")
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v[0]), " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case schemeBasic:
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return credentials{}, errors.New("the Basic credentials are not base64")
		}
		user, pass, ok := strings.Cut(string(raw), ":") // names never hold ':'
		if !ok || user == "" {
			return credentials{user: user}, errors.New("the Basic credentials lack a name or password")
		}
		return credentials{scheme: schemeBasic, user: user, pass: pass}, nil
	case schemeDigest:
		d, err := parseDigest(rest)
		c := credentials{scheme: schemeDigest, user: d.Username, digest: d}
		return c, err
	}
	return credentials{}, errors.New("unsupported Authorization scheme")
}

// parseDigest parses the comma-separated key=value list of a Digest
// answer; values may be quoted (with backslash escapes).
func parseDigest(s string) (Digest, error) {
	var d Digest
	seen := map[string]bool{}
	for s = strings.TrimSpace(s); s != ""; {
		key, after, ok := strings.Cut(s, "=")
		if !ok {
			return d, errors.New("Digest parameter without a value")
		}
		key = strings.ToLower(strings.TrimSpace(key))
		val, rest, err := digestValue(strings.TrimLeft(after, " \t"))
		if err != nil {
			return d, err
		}
		if seen[key] {
			return d, errors.New("Digest parameter " + key + " given twice")
		}
		seen[key] = true
		switch key {
		case "username":
			d.Username = val
		case "realm":
			d.Realm = val
		case "nonce":
			d.Nonce = val
		case "uri":
			d.URI = val
		case "response":
			d.Response = val
		case "algorithm":
			d.Algorithm = val
		case "qop":
			d.QOP = val
		case "nc":
			d.NC = val
		case "cnonce":
			d.CNonce = val
		}
		rest = strings.TrimLeft(rest, " \t")
		if rest != "" {
			if rest[0] != ',' {
				return d, errors.New("Digest parameters not separated by commas")
			}
			rest = strings.TrimLeft(rest[1:], " \t")
		}
		s = rest
	}
	for k, v := range map[string]string{"username": d.Username, "realm": d.Realm, "nonce": d.Nonce, "uri": d.URI, "response": d.Response} {
		if v == "" {
			return d, errors.New("Digest answer lacks " + k)
		}
	}
	if d.QOP != "" && (d.NC == "" || d.CNonce == "") {
		return d, errors.New("Digest answer with qop lacks nc or cnonce")
	}
	return d, nil
}

// digestValue reads one value (quoted or a token) and returns the rest.
func digestValue(s string) (val, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		i := strings.IndexAny(s, ", \t")
		if i < 0 {
			return s, "", nil
		}
		return s[:i], s[i:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return "", "", errors.New("unterminated quoted Digest value")
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("unterminated quoted Digest value")
}
