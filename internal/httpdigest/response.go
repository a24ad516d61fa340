package httpdigest

import (
	"errors"
	"strings"
)

// Response is a Digest answer from a client (the parameters of an
// "Authorization: Digest ..." header, RFC 2617/7616) and the method of the
// request it came with. It is the one shape of a Digest answer in cordon:
// the RTSP door parses it (rtspserve.Digest), auth checks it against a
// stored HA1 (auth.DigestResponse), the ONVIF face checks it in Verify.
type Response struct {
	Username  string
	Realm     string
	Nonce     string
	URI       string
	Response  string
	Algorithm string // "" or "MD5" ("SHA-256" where the server allows it)
	QOP       string // "" or "auth"
	NC        string // with QOP
	CNonce    string // with QOP
	Method    string // the request method (DESCRIBE, SETUP, GET, POST...)
}

// ParseResponse parses the comma-separated key=value list of a Digest
// answer (what follows "Digest "); values may be quoted with backslash
// escapes. It refuses a parameter given twice, parameters not separated by
// commas, an unterminated quoted value, and an answer lacking username,
// realm, nonce, uri or response (or nc and cnonce with a qop). Method is
// left empty for the caller. The caller bounds the header's length.
func ParseResponse(s string) (Response, error) {
	var d Response
	fields := d.fields()
	seen := map[string]bool{}
	for s = strings.TrimSpace(s); s != ""; {
		key, after, ok := strings.Cut(s, "=")
		if !ok {
			return d, errors.New("a Digest parameter without a value")
		}
		key = strings.ToLower(strings.TrimSpace(key))
		val, rest, err := responseValue(strings.TrimLeft(after, " \t"))
		if err != nil {
			return d, err
		}
		if seen[key] {
			return d, errors.New("the Digest parameter " + key + " given twice")
		}
		seen[key] = true
		if p, ok := fields[key]; ok { // unknown ones (opaque, userhash...) are ignored
			*p = val
		}
		rest = strings.TrimLeft(rest, " \t")
		if rest != "" {
			if rest[0] != ',' {
				return d, errors.New("the Digest parameters are not separated by commas")
			}
			rest = strings.TrimLeft(rest[1:], " \t")
		}
		s = rest
	}
	for _, k := range []string{"username", "realm", "nonce", "uri", "response"} {
		if *fields[k] == "" {
			return d, errors.New("the Digest answer lacks " + k)
		}
	}
	if d.QOP != "" && (d.NC == "" || d.CNonce == "") {
		return d, errors.New("the Digest answer with qop lacks nc or cnonce")
	}
	return d, nil
}

// fields maps the Digest parameters a Response keeps to its fields.
func (d *Response) fields() map[string]*string {
	return map[string]*string{
		"username": &d.Username, "realm": &d.Realm, "nonce": &d.Nonce, "uri": &d.URI, "response": &d.Response,
		"algorithm": &d.Algorithm, "qop": &d.QOP, "nc": &d.NC, "cnonce": &d.CNonce,
	}
}

// responseValue reads one value (quoted or a token) and returns the rest.
func responseValue(s string) (val, rest string, err error) {
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
