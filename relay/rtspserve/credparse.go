package rtspserve

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"cordon/internal/httpdigest"
)

// Digest is a Digest answer (RFC 2617/7616, MD5) and the method of the
// request it came with, as httpdigest.ParseResponse reads it (the one
// shape of a Digest answer; auth.DigestResponse is it too, so the owner
// converts with auth.DigestResponse(d)). The server has checked its nonce,
// realm, qop and uri before Access.CheckDigest sees it.
type Digest httpdigest.Response

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
		d, err := httpdigest.ParseResponse(rest)
		c := credentials{scheme: schemeDigest, user: d.Username, digest: Digest(d)}
		return c, err
	}
	return credentials{}, errors.New("unsupported Authorization scheme")
}
