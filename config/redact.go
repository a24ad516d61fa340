package config

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
)

// Mask replaces every secret.
const Mask = "***"

// Redactor replaces every known secret with Mask. It holds the camera
// passwords (inline, from password_file, and from URL userinfo) together with
// their URL-escaped forms, "user:password" pairs and their base64 (an HTTP
// or RTSP Basic Authorization value), the values of credential-like query
// parameters in camera URLs (see SafeURL), TURN credentials and the RTSP Digest
// HA1 values of users and API keys (password-equivalent for Digest). Bare usernames
// are not redacted (a name like "admin" is not a secret and would mangle
// ordinary words); a "user:password" pair is. Independently of the known
// secrets, Redact removes the userinfo of any URL in the text.
//
// Every secret is masked whatever its length: a weak camera password such
// as "1234" will mask that text everywhere, which errs on the safe side.
//
// A Redactor is safe for concurrent use; Update swaps the secret set
// atomically on reload. The zero value redacts URL userinfo only.
type Redactor struct {
	state atomic.Pointer[redactState]
}

type redactState struct {
	replacer *strings.Replacer // nil when there are no secrets
}

// NewRedactor builds a Redactor from cfg (nil: no secrets). Call it after
// cfg.Validate(), which reads the secret files.
func NewRedactor(cfg *Config) *Redactor {
	r := &Redactor{}
	r.Update(cfg)
	return r
}

// Update replaces the secret set with cfg's (after a reload). extra secrets
// (the demo's credentials, for example) may be added.
func (r *Redactor) Update(cfg *Config, extra ...string) {
	set := secretSet{}
	if cfg != nil {
		set.addConfig(cfg)
	}
	for _, s := range extra {
		set.add(s)
	}
	secrets := make([]string, 0, len(set))
	for s := range set {
		secrets = append(secrets, s)
	}
	// Longest first so that a pair wins over the password it contains.
	slices.SortFunc(secrets, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	st := &redactState{}
	if len(secrets) > 0 {
		args := make([]string, 0, 2*len(secrets))
		for _, s := range secrets {
			args = append(args, s, Mask)
		}
		st.replacer = strings.NewReplacer(args...)
	}
	r.state.Store(st)
}

// secretSet collects the strings a Redactor masks.
type secretSet map[string]struct{}

// add adds a secret with its URL-escaped forms.
func (set secretSet) add(s string) {
	if s == "" {
		return
	}
	set[s] = struct{}{}
	if e := url.QueryEscape(s); e != s {
		set[e] = struct{}{}
	}
	if e := url.PathEscape(s); e != s {
		set[e] = struct{}{}
	}
}

// addPair adds a password and, with a user, the "user:password" pair in
// clear, URL-escaped and base64 (a Basic Authorization value).
func (set secretSet) addPair(user, pass string) {
	if pass == "" {
		return
	}
	set.add(pass)
	if user != "" {
		set[user+":"+pass] = struct{}{}
		set[url.UserPassword(user, pass).String()] = struct{}{}
		set[base64.StdEncoding.EncodeToString([]byte(user+":"+pass))] = struct{}{}
	}
}

// addConfig adds every secret of cfg: camera passwords (inline, from
// password_file, from URL userinfo, credential-like query parameters), the
// directory bind password and OIDC client secret, ONVIF-only passwords, the
// RTSP Digest HA1 values, TURN credentials and the cluster's peer key.
func (set secretSet) addConfig(cfg *Config) {
	for i := range cfg.Cameras {
		c := &cfg.Cameras[i]
		if c.Password != "" {
			set.addPair(c.Username, c.Password)
		} else if c.filePassword != "" {
			set.addPair(c.Username, c.filePassword)
		}
		u, err := url.Parse(c.URL)
		if err != nil {
			continue
		}
		if u.User != nil {
			p, _ := u.User.Password()
			set.addPair(u.User.Username(), p)
		}
		// rtsp://host/videoMain?usr=admin&pwd=x: credential-like query
		// parameters are secrets too (SafeURL drops them).
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			for k, vs := range q {
				if credentialParam(k) {
					for _, v := range vs {
						set.add(v)
					}
				}
			}
		}
	}
	set.add(cfg.Auth.LDAP.bindPassword)
	set.add(cfg.Auth.OIDC.clientSecret)
	for i := range cfg.Auth.Users {
		set.add(cfg.Auth.Users[i].onvifPassword)
		set.add(cfg.Auth.Users[i].RTSPDigestHA1)
		set.add(strings.ToLower(cfg.Auth.Users[i].RTSPDigestHA1))
	}
	for i := range cfg.Auth.APIKeys {
		set.add(cfg.Auth.APIKeys[i].onvifPassword)
		set.add(cfg.Auth.APIKeys[i].RTSPDigestHA1)
		set.add(strings.ToLower(cfg.Auth.APIKeys[i].RTSPDigestHA1))
	}
	for _, s := range cfg.WebRTC.ICEServers {
		set.addPair(s.Username, s.Credential)
	}
	set.add(string(cfg.Cluster.peerKey)) // the cluster's shared secret
}

// userinfoRe matches the userinfo of a URL: scheme://userinfo@
var userinfoRe = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@"'<>]+@`)

// Redact returns s with every known secret, and every URL userinfo, replaced
// by Mask.
func (r *Redactor) Redact(s string) string {
	if s == "" {
		return s
	}
	if r != nil {
		if st := r.state.Load(); st != nil && st.replacer != nil {
			s = st.replacer.Replace(s)
		}
	}
	if strings.Contains(s, "@") {
		s = userinfoRe.ReplaceAllString(s, "${1}"+Mask+"@")
	}
	return s
}

// credentialParam reports whether a query parameter name looks like it
// carries a credential.
func credentialParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"pass", "pwd", "user", "usr", "token", "auth", "secret", "key", "login", "credential", "sig"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// SafeURL returns raw without userinfo, without query parameters named like
// credentials (password, pass, pwd, user, usr, token, auth, key, secret,
// login, credential, sig) and without fragment. An unparsable URL is cut to
// its scheme and host part with anything before '@' removed.
func SafeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || strings.Contains(u.Opaque, "@") {
		// Unparsable, or "user:pass@host" without "//" (parsed as scheme
		// "user" with an opaque part): cut by hand.
		s := raw
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			s = s[:i]
		}
		if i := strings.LastIndex(s, "@"); i >= 0 {
			if j := strings.Index(s, "://"); j >= 0 && j < i {
				s = s[:j+3] + s[i+1:]
			} else {
				s = s[i+1:]
			}
		}
		return s
	}
	u.User = nil
	u.Fragment = ""
	u.RawFragment = ""
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = ""
		} else {
			for k := range q {
				if credentialParam(k) {
					q.Del(k)
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// NewRedactingHandler wraps inner so that the message, every string attr,
// every error, Stringer and URL attr, in groups and nested values, is
// redacted with r before inner sees it. Attrs given to WithAttrs are
// redacted at Handle time, so a later r.Update applies to them too.
func NewRedactingHandler(inner slog.Handler, r *Redactor) slog.Handler {
	return &redactingHandler{inner: inner, r: r}
}

type redactingHandler struct {
	inner slog.Handler
	r     *Redactor
	ops   []handlerOp // WithAttrs / WithGroup calls, in order
}

type handlerOp struct {
	group string      // WithGroup when non-empty
	attrs []slog.Attr // WithAttrs otherwise
}

func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(handlerOp{attrs: slices.Clone(attrs)})
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(handlerOp{group: name})
}

func (h *redactingHandler) with(op handlerOp) *redactingHandler {
	ops := make([]handlerOp, len(h.ops), len(h.ops)+1)
	copy(ops, h.ops)
	return &redactingHandler{inner: h.inner, r: h.r, ops: append(ops, op)}
}

func (h *redactingHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.Redact(rec.Message), rec.PC)
	recAttrs := make([]slog.Attr, 0, rec.NumAttrs())
	rec.Attrs(func(a slog.Attr) bool {
		recAttrs = append(recAttrs, h.attr(a))
		return true
	})
	// Rebuild the WithAttrs/WithGroup chain around the record's attrs:
	// attrs of op i belong to the groups opened before it.
	tail := recAttrs
	for i := len(h.ops) - 1; i >= 0; i-- {
		op := h.ops[i]
		if op.group != "" {
			if len(tail) == 0 {
				continue // empty groups are omitted, as slog does
			}
			args := make([]any, len(tail))
			for j, a := range tail {
				args[j] = a
			}
			tail = []slog.Attr{slog.Group(op.group, args...)}
			continue
		}
		pre := make([]slog.Attr, 0, len(op.attrs)+len(tail))
		for _, a := range op.attrs {
			pre = append(pre, h.attr(a))
		}
		tail = append(pre, tail...)
	}
	out.AddAttrs(tail...)
	return h.inner.Handle(ctx, out)
}

func (h *redactingHandler) attr(a slog.Attr) slog.Attr {
	a.Value = h.value(a.Value, 0)
	return a
}

func (h *redactingHandler) value(v slog.Value, depth int) slog.Value {
	if depth > 16 {
		return slog.StringValue(Mask)
	}
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(h.r.Redact(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]slog.Attr, len(attrs))
		for i, a := range attrs {
			out[i] = slog.Attr{Key: a.Key, Value: h.value(a.Value, depth+1)}
		}
		return slog.GroupValue(out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case nil:
			return v
		case error:
			return slog.StringValue(h.r.Redact(x.Error()))
		case *url.URL:
			if x == nil {
				return v
			}
			return slog.StringValue(h.r.Redact(SafeURL(x.String())))
		case url.URL:
			return slog.StringValue(h.r.Redact(SafeURL(x.String())))
		case fmt.Stringer:
			return slog.StringValue(h.r.Redact(x.String()))
		case []byte:
			return slog.StringValue(h.r.Redact(string(x)))
		case []string:
			out := make([]string, len(x))
			for i, s := range x {
				out[i] = h.r.Redact(s)
			}
			return slog.AnyValue(out)
		default:
			// Arbitrary values (structs, maps): if their printed form holds
			// a secret, log the redacted printed form instead.
			s := fmt.Sprintf("%+v", x)
			if rs := h.r.Redact(s); rs != s {
				return slog.StringValue(rs)
			}
			return v
		}
	}
	return v
}
