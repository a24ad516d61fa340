package soap

import (
	"crypto/rand"
	"crypto/sha1" // #nosec: WS-Security UsernameToken digest is SHA-1 by definition
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Password types of a UsernameToken.
const (
	PasswordDigestType = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	PasswordTextType   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
	nonceEncoding      = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// CreatedLayout is the layout of wsu:Created this package writes (UTC,
// milliseconds).
const CreatedLayout = "2006-01-02T15:04:05.000Z"

// PasswordDigest returns Base64(SHA1(nonce + created + password)).
func PasswordDigest(nonce []byte, created, password string) string {
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(password))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// UsernameToken is a WS-Security UsernameToken.
type UsernameToken struct {
	Username string
	// Password is the digest (Digest true) or the clear password.
	Password string
	Digest   bool
	Nonce    []byte
	// Created is wsu:Created as sent (the digest covers these exact bytes).
	Created string
}

// NewUsernameToken returns a PasswordDigest token for a request made at
// now (the peer's clock: callers correct for a known offset), with a fresh
// 16-byte nonce.
func NewUsernameToken(username, password string, now time.Time) (UsernameToken, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return UsernameToken{}, err
	}
	created := now.UTC().Format(CreatedLayout)
	return UsernameToken{
		Username: username,
		Password: PasswordDigest(nonce, created, password),
		Digest:   true,
		Nonce:    nonce,
		Created:  created,
	}, nil
}

// Node returns the wsse:Security header element carrying the token.
func (t UsernameToken) Node() Node {
	typ := PasswordTextType
	if t.Digest {
		typ = PasswordDigestType
	}
	tok := El("wsse:UsernameToken",
		Text("wsse:Username", t.Username),
		Text("wsse:Password", t.Password).With("Type", typ))
	if len(t.Nonce) > 0 {
		tok = tok.Add(Text("wsse:Nonce", base64.StdEncoding.EncodeToString(t.Nonce)).With("EncodingType", nonceEncoding))
	}
	if t.Created != "" {
		tok = tok.Add(Text("wsu:Created", t.Created))
	}
	return El("wsse:Security", tok).
		With("s:mustUnderstand", "1").
		With("xmlns:wsse", NsWSSE).
		With("xmlns:wsu", NsWSU)
}

// Bounds on a received token's fields.
const (
	maxUsernameLen = 256
	maxPasswordLen = 1024
	maxNonceLen    = 64 // decoded bytes
	maxCreatedLen  = 64
)

// ErrNoToken is returned by ParseUsernameToken when the header carries none.
var ErrNoToken = errors.New("soap: no WS-Security UsernameToken")

// ParseUsernameToken reads the UsernameToken of a request's Header.
func ParseUsernameToken(header *Element) (UsernameToken, error) {
	var t UsernameToken
	sec := header.Child(NsWSSE, "Security")
	tok := sec.Child(NsWSSE, "UsernameToken")
	if tok == nil {
		return t, ErrNoToken
	}
	t.Username = tok.TextOf("Username")
	pw := tok.Child(NsWSSE, "Password")
	if t.Username == "" || pw == nil {
		return t, errors.New("soap: UsernameToken without Username or Password")
	}
	if len(t.Username) > maxUsernameLen || len(pw.Text) > maxPasswordLen {
		return t, errors.New("soap: UsernameToken field too long")
	}
	t.Password = pw.Text
	switch typ, _ := pw.Attr("Type"); typ {
	case PasswordDigestType:
		t.Digest = true
	case PasswordTextType, "":
	default:
		return t, fmt.Errorf("soap: unknown password type %q", clip(typ, 120))
	}
	if n := tok.Child(NsWSSE, "Nonce"); n != nil {
		if enc, ok := n.Attr("EncodingType"); ok && enc != nonceEncoding {
			return t, errors.New("soap: Nonce is not Base64Binary")
		}
		if len(n.Text) > base64.StdEncoding.EncodedLen(maxNonceLen) {
			return t, errors.New("soap: Nonce too long")
		}
		b, err := base64.StdEncoding.DecodeString(n.Text)
		if err != nil {
			return t, errors.New("soap: Nonce is not base64")
		}
		t.Nonce = b
	}
	t.Created = tok.TextOf("Created")
	if len(t.Created) > maxCreatedLen {
		return t, errors.New("soap: Created too long")
	}
	return t, nil
}

// Verifier checks received PasswordDigest tokens: the digest in constant
// time, Created within Window of now, and each nonce used once within the
// window. Safe for concurrent use. Construct with NewVerifier.
type Verifier struct {
	// Window is how far Created may be from now, either way.
	Window time.Duration
	// Now is the clock.
	Now func() time.Time
	// MaxNonces bounds the replay cache; when it is full of live nonces,
	// Verify refuses (fail closed) rather than forget one.
	MaxNonces int

	mu   sync.Mutex
	seen map[string]time.Time // username + "\x00" + nonce -> forget after
}

// NewVerifier returns a Verifier with a 5-minute window, the wall clock
// and room for 65,536 nonces.
func NewVerifier() *Verifier {
	return &Verifier{Window: 5 * time.Minute, Now: time.Now, MaxNonces: 65536}
}

// Verification errors. None of them says which part was wrong beyond what
// the caller may log: the client gets ter:NotAuthorized for all.
var (
	ErrBadDigest   = errors.New("soap: UsernameToken digest does not match")
	ErrStale       = errors.New("soap: UsernameToken Created outside the allowed window")
	ErrReplay      = errors.New("soap: UsernameToken nonce replayed")
	ErrReplayFull  = errors.New("soap: nonce replay cache full")
	ErrNotDigest   = errors.New("soap: UsernameToken is not a PasswordDigest")
	ErrTokenFields = errors.New("soap: PasswordDigest without Nonce or Created")
)

// VerifyDigest checks t against the secret. The nonce is remembered only
// when the digest matches, so unauthenticated senders cannot fill the
// cache.
func (v *Verifier) VerifyDigest(t UsernameToken, secret string) error {
	if !t.Digest {
		return ErrNotDigest
	}
	if len(t.Nonce) == 0 || t.Created == "" {
		return ErrTokenFields
	}
	created, err := time.Parse(time.RFC3339Nano, t.Created)
	if err != nil {
		return ErrStale
	}
	now := v.Now()
	if d := now.Sub(created); d > v.Window || d < -v.Window {
		return ErrStale
	}
	want := PasswordDigest(t.Nonce, t.Created, secret)
	if subtle.ConstantTimeCompare([]byte(want), []byte(t.Password)) != 1 {
		return ErrBadDigest
	}
	return v.remember(t.Username+"\x00"+string(t.Nonce), created.Add(v.Window+time.Second), now)
}

// CheckCreated checks only the Created window of a token (for
// PasswordText tokens that carry one); a token without Created passes.
func (v *Verifier) CheckCreated(t UsernameToken) error {
	if t.Created == "" {
		return nil
	}
	created, err := time.Parse(time.RFC3339Nano, t.Created)
	if err != nil {
		return ErrStale
	}
	if d := v.Now().Sub(created); d > v.Window || d < -v.Window {
		return ErrStale
	}
	return nil
}

func (v *Verifier) remember(key string, until, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = make(map[string]time.Time)
	}
	if exp, ok := v.seen[key]; ok && now.Before(exp) {
		return ErrReplay
	}
	if len(v.seen) >= v.MaxNonces {
		for k, exp := range v.seen {
			if !now.Before(exp) {
				delete(v.seen, k)
			}
		}
		if len(v.seen) >= v.MaxNonces {
			return ErrReplayFull
		}
	}
	v.seen[key] = until
	return nil
}
