package directory

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// maxIDTokenLen bounds the ID token (compact JWS) cordon accepts.
const maxIDTokenLen = 64 << 10

// exchange trades the code (with the PKCE verifier) for tokens at the
// token endpoint, verifies the ID token and builds the Identity.
func (o *OIDC) exchange(ctx context.Context, code string, p *pending) (Identity, error) {
	d, err := o.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, o.client), o.Timeout)
	defer cancel()
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < http.StatusInternalServerError {
			// the provider refused the code (reused, expired, wrong verifier)
			return Identity{}, fmt.Errorf("%w: token endpoint refused the code (%s)", ErrInvalidCredentials, clip(re.ErrorCode, 64))
		}
		o.Logger.Warn("oidc: token endpoint failed", "err", err.Error())
		return Identity{}, o.unreachable(ctx, "token endpoint", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: no id_token in the token response", ErrInvalidCredentials)
	}
	idt, claims, err := o.verifyIDToken(ctx, d, raw, p.nonce)
	if err != nil {
		return Identity{}, err
	}
	return o.identity(ctx, d, tok, idt, claims)
}

// verifyIDToken checks the ID token: size, signature (asymmetric
// algorithms only, keys from the issuer's JWKS, refetched once for an
// unknown key id), issuer, audience (and azp when there are several),
// expiry, and the nonce of this sign-in.
func (o *OIDC) verifyIDToken(ctx context.Context, d *discovered, raw, nonce string) (*gooidc.IDToken, map[string]any, error) {
	if len(raw) > maxIDTokenLen {
		return nil, nil, fmt.Errorf("%w: ID token larger than %d bytes", ErrInvalidCredentials, maxIDTokenLen)
	}
	idt, err := d.verifier.Verify(gooidc.ClientContext(ctx, o.client), raw)
	if err != nil {
		if strings.Contains(err.Error(), "fetching keys") {
			o.Logger.Warn("oidc: JWKS fetch failed", "err", err.Error())
			return nil, nil, o.unreachable(ctx, "JWKS fetch", err)
		}
		return nil, nil, fmt.Errorf("%w: ID token: %s", ErrInvalidCredentials, clip(err.Error(), 200))
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, nil, fmt.Errorf("%w: ID token nonce does not match this sign-in", ErrInvalidCredentials)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, nil, fmt.Errorf("%w: ID token claims unreadable", ErrInvalidCredentials)
	}
	azp, _ := claims["azp"].(string)
	if (len(idt.Audience) > 1 || azp != "") && azp != o.ClientID {
		return nil, nil, fmt.Errorf("%w: ID token authorized party is not this client", ErrInvalidCredentials)
	}
	return idt, claims, nil
}

// identity builds the Identity: the name from UsernameClaim (or sub),
// groups from GroupsClaim in the ID token or else from userinfo.
func (o *OIDC) identity(ctx context.Context, d *discovered, tok *oauth2.Token, idt *gooidc.IDToken, claims map[string]any) (Identity, error) {
	name, _ := claims[o.UsernameClaim].(string)
	if name == "" {
		name = idt.Subject
	}
	if !validName(name) || !validName(idt.Subject) {
		return Identity{}, fmt.Errorf("%w: user name claim missing or not acceptable", ErrInvalidCredentials)
	}
	groups, found, err := groupsFrom(claims, o.GroupsClaim)
	if err == nil && !found && d.hasUserinfo {
		groups, found, err = o.userinfoGroups(ctx, d, tok, idt.Subject)
	}
	if err != nil {
		return Identity{}, err
	}
	if !found {
		if _, overage := claims["_claim_names"]; overage {
			o.Logger.Warn("oidc: the provider left the groups out (too many: Entra ID group overage); the user gets no roles",
				"user", name, "claim", o.GroupsClaim)
		}
	}
	if err := checkGroups(groups); err != nil {
		return Identity{}, fmt.Errorf("%w: groups claim: %s", ErrInvalidCredentials, err.Error())
	}
	id := Identity{
		Name:    name,
		Source:  SourceOIDC,
		Subject: idt.Subject,
		Groups:  groups,
		Roles:   mapRoles(groups, o.RoleMap, func(m, g string) bool { return m == g }),
		Expires: idt.Expiry,
	}
	if o.TokenTTL > 0 {
		if limit := o.Now().Add(o.TokenTTL); limit.Before(id.Expires) {
			id.Expires = limit
		}
	}
	return id, nil
}

// userinfoGroups asks the userinfo endpoint, which must speak of the same
// subject as the ID token.
func (o *OIDC) userinfoGroups(ctx context.Context, d *discovered, tok *oauth2.Token, sub string) ([]string, bool, error) {
	ui, err := d.provider.UserInfo(gooidc.ClientContext(ctx, o.client), oauth2.StaticTokenSource(tok))
	if err != nil {
		o.Logger.Warn("oidc: userinfo failed", "err", err.Error())
		if errors.Is(err, errTooLarge) {
			return nil, false, fmt.Errorf("%w: userinfo response too large", ErrInvalidCredentials)
		}
		return nil, false, o.unreachable(ctx, "userinfo endpoint", err)
	}
	if ui.Subject != sub {
		return nil, false, fmt.Errorf("%w: userinfo is about another subject", ErrInvalidCredentials)
	}
	claims := map[string]any{}
	if err := ui.Claims(&claims); err != nil {
		return nil, false, fmt.Errorf("%w: userinfo unreadable", ErrInvalidCredentials)
	}
	return groupsFrom(claims, o.GroupsClaim)
}

// groupsFrom reads the groups claim: a list of strings or one string. A
// claim name with dots that is not itself a key is a path into objects
// (Keycloak's "realm_access.roles"). found is false when the claim is
// absent.
func groupsFrom(claims map[string]any, claim string) (groups []string, found bool, err error) {
	v, ok := claims[claim]
	if !ok && strings.Contains(claim, ".") {
		var cur any = claims
		ok = true
		for _, part := range strings.Split(claim, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				ok = false
				break
			}
			if cur, ok = m[part]; !ok {
				break
			}
		}
		v = cur
	}
	if !ok || v == nil {
		return []string{}, false, nil
	}
	switch v := v.(type) {
	case string:
		return []string{v}, true, nil
	case []any:
		if len(v) > MaxGroups {
			return nil, true, fmt.Errorf("%w: more than %d groups", ErrInvalidCredentials, MaxGroups)
		}
		out := make([]string, 0, len(v))
		for _, g := range v {
			s, ok := g.(string)
			if !ok {
				return nil, true, fmt.Errorf("%w: groups claim holds a non-string", ErrInvalidCredentials)
			}
			out = append(out, s)
		}
		return out, true, nil
	}
	return nil, true, fmt.Errorf("%w: groups claim is neither a list nor a string", ErrInvalidCredentials)
}
