package oidcop

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Claims decodes a JWT's payload without verifying it (to build a
// tampered copy of a real token).
func Claims(jwt string) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("oidcop: not a compact JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, json.Unmarshal(b, &m)
}

// Sign signs claims with the provider's current key (RS256, its kid): a
// token the relying party can verify, whatever the claims say.
func (p *Provider) Sign(claims map[string]any) (string, error) {
	p.store.mu.Lock()
	k := p.store.keys[len(p.store.keys)-1]
	p.store.mu.Unlock()
	return signRSA(k.priv, k.id, claims)
}

// SignUnpublished signs with a fresh key the provider never published,
// under a kid of its own.
func SignUnpublished(claims map[string]any) (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	return signRSA(priv, "k-unpublished", claims)
}

// SignHS256 signs with HMAC-SHA256 under secret (e.g. the client secret:
// the classic algorithm-confusion attack).
func SignHS256(claims map[string]any, secret string) (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, nil)
	if err != nil {
		return "", err
	}
	return sign(s, claims)
}

// SignNone returns an unsigned token with "alg":"none".
func SignNone(claims map[string]any) (string, error) {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return h + "." + base64.RawURLEncoding.EncodeToString(b) + ".", nil
}

func signRSA(priv *rsa.PrivateKey, kid string, claims map[string]any) (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return sign(s, claims)
}

func sign(s jose.Signer, claims map[string]any) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(b)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
