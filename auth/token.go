package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"cordon/internal/durable"
)

// MaxTokenLen bounds a presented Bearer credential (bytes).
const MaxTokenLen = 4096

const (
	tokenIssuer  = "cordon"
	tokenLeeway  = 5 * time.Second
	keyFileName  = "token-signing.key"
	jtiBytes     = 16 // 128-bit token ids
	jtiHexLength = 2 * jtiBytes
)

// tokenClaims is the session token's payload.
type tokenClaims struct {
	Kind       string `json:"knd"`
	Credential string `json:"crd"` // fingerprint of the password hash
	// Source and Roles are set for directory identities only: where the
	// identity was proven and the roles its groups mapped to at sign-in.
	Source string   `json:"src,omitempty"`
	Roles  []string `json:"rls,omitempty"`
	jwt.RegisteredClaims
}

// tokenSubject is what a session token is issued for.
type tokenSubject struct {
	name, kind, credential, source string
	roles                          []string
}

type tokenCodec struct {
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
	parser *jwt.Parser
}

func newTokenCodec(priv ed25519.PrivateKey, now func() time.Time) *tokenCodec {
	return &tokenCodec{
		priv: priv,
		pub:  priv.Public().(ed25519.PublicKey),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(tokenIssuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(tokenLeeway),
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
		),
	}
}

func newTokenID() (string, error) {
	b := make([]byte, jtiBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random token id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (c *tokenCodec) issue(sub tokenSubject, jti string, iat, exp time.Time) (string, error) {
	claims := tokenClaims{
		Kind:       sub.kind,
		Credential: sub.credential,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   sub.name,
			ID:        jti,
			IssuedAt:  jwt.NewNumericDate(iat),
			NotBefore: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	if sub.source != "" && sub.source != SourceLocal {
		claims.Source, claims.Roles = sub.source, sub.roles
	}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(c.priv)
}

// parse verifies a session token's signature, algorithm and times.
// Errors are ErrInvalidToken or ErrTokenExpired (wrapped); revocation and
// the subject's current existence are checked by the caller.
func (c *tokenCodec) parse(tok string) (*tokenClaims, error) {
	if len(tok) > MaxTokenLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenLen)
	}
	var claims tokenClaims
	_, err := c.parser.ParseWithClaims(tok, &claims, func(t *jwt.Token) (any, error) {
		// Belt and braces on top of WithValidMethods: only Ed25519.
		if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
			return nil, errors.New("unexpected signing method")
		}
		return c.pub, nil
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, ErrTokenExpired
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, jwtReason(err))
	}
	if claims.Subject == "" || claims.Kind != KindUser || !isHex(claims.ID, jtiHexLength) || claims.ExpiresAt == nil || claims.IssuedAt == nil ||
		(claims.Source != "" && claims.Source != SourceLDAP && claims.Source != SourceOIDC) || len(claims.Roles) > maxIdentityRoles {
		return nil, fmt.Errorf("%w: missing or malformed claims", ErrInvalidToken)
	}
	return &claims, nil
}

// jwtReason turns a jwt error into a short reason for logs (the token
// itself is never included).
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable (algorithm)"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "required claim missing"
	}
	return "invalid"
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// ensureStateDir creates dir with mode 0700 if missing and tightens a
// looser one it owns.
func ensureStateDir(dir string) (warning string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating state dir: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	if !st.IsDir() {
		return "", errors.New("state dir is not a directory")
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return "state dir is accessible to other users and could not be restricted to 0700", nil
		}
		return "state dir was accessible to other users; restricted it to 0700", nil
	}
	return "", nil
}

// loadOrCreateKey reads the Ed25519 signing key (PKCS#8 PEM) from dir, or
// creates it (mode 0600, written to a temporary file and linked into place
// so a crash never leaves a half-written key). A key file readable by
// group or others is refused: whoever reads it can mint admin tokens.
func loadOrCreateKey(dir string) (key ed25519.PrivateKey, created bool, err error) {
	p := filepath.Join(dir, keyFileName)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		key, err = createKey(dir, p)
		return key, err == nil, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading signing key: %w", err)
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("signing key %s is readable by other users (mode %v); chmod 600 it", p, st.Mode().Perm())
	}
	k, err := decodeKey(b)
	if err != nil {
		return nil, false, fmt.Errorf("signing key %s: %w", p, err)
	}
	return k, false, nil
}

func decodeKey(b []byte) (ed25519.PrivateKey, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("not a single PKCS#8 PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, errors.New("not a PKCS#8 private key")
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key")
	}
	return ek, nil
}

func createKey(dir, p string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding signing key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return nil, fmt.Errorf("creating signing key: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("creating signing key: %w", err)
	}
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("writing signing key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("writing signing key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing signing key: %w", err)
	}
	if err := os.Link(tmp.Name(), p); err != nil {
		if errors.Is(err, os.ErrExist) {
			// Another process won the race: use its key.
			k, _, err := loadOrCreateKey(dir)
			return k, err
		}
		return nil, fmt.Errorf("installing signing key: %w", err)
	}
	durable.SyncDir(dir)
	return priv, nil
}
