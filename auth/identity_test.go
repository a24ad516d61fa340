package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The seam for directory identities: LDAP/OIDC code hands over an
// Identity with the roles its groups map to; auth issues a token whose
// rights are those roles' CURRENT definitions, keeps the identity for the
// directory's periodic re-check, and ends it on removal.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestDirectoryIdentityLifecycle(t *testing.T) {
	f := rolesFixture(t)
	ctx := context.Background()
	id := Identity{Name: "frank", Source: SourceLDAP, Groups: []string{"cn=cctv-operators,ou=groups"}, Roles: []string{"operator"}}
	tok, p, err := f.svc.LoginIdentity(ctx, id, "192.0.2.20", "http")
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != SourceLDAP || p.Kind != KindUser || p.Admin || p.TokenID == "" || !p.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Fatalf("principal %+v", p)
	}
	got, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", tok))
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != SourceLDAP || got.Name != "frank" || got.PTZPriority("gate-north") != 100 {
		t.Fatalf("from token: %+v", got)
	}
	access := func(p *Principal, cam string) error {
		return f.svc.Authorize(ctx, Access{Principal: p, Right: RightView, Camera: cam, Remote: "192.0.2.20", Protocol: "http"})
	}
	if err := access(got, "yard-2"); err != nil {
		t.Fatal(err)
	}
	// A local user of the same name is another principal.
	if _, ok := f.svc.Lookup("frank", KindUser); ok {
		t.Fatal("directory identity leaked into the configured directory")
	}
	lines := f.auditEvents(t)
	last := lines[len(lines)-1]
	if last.Event != "login_ok" || last.Actor != "frank" || !strings.Contains(last.Detail, "cctv-operators") {
		t.Fatalf("login audit %+v", last)
	}
	b, _ := readFile(f.auditPath)
	if !strings.Contains(b, `"source":"ldap"`) {
		t.Fatal("login_ok does not carry the source")
	}
	if ids := f.svc.Identities(SourceLDAP); len(ids) != 1 || ids[0].Name != "frank" || ids[0].Roles[0] != "operator" {
		t.Fatalf("identities %+v", ids)
	}

	// The periodic re-check narrows the groups: rights follow at once.
	var changes []Change
	cancel := f.svc.Subscribe(func(c Change) { changes = append(changes, c) })
	defer cancel()
	f.svc.RefreshIdentity(Identity{Name: "frank", Source: SourceLDAP, Roles: []string{"investigator"}})
	if len(changes) != 1 || changes[0] != (Change{Kind: RightsChanged, Name: "frank", PrincipalKind: KindUser, Source: SourceLDAP}) || !changes[0].Affects(got) {
		t.Fatalf("changes %+v", changes)
	}
	if err := f.svc.Recheck(got, RightView, "yard-2"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("after narrowing: %v", err)
	}
	if err := f.svc.Recheck(got, RightExport, "yard-2"); err != nil {
		t.Fatalf("new role: %v", err)
	}
	f.svc.RefreshIdentity(Identity{Name: "frank", Source: SourceLDAP, Roles: []string{"investigator"}})
	if len(changes) != 1 {
		t.Fatal("an unchanged re-check published a change")
	}

	// The directory removes him: every token is revoked, live sessions
	// end, and stay refused after a restart.
	f.svc.RemoveIdentity(SourceLDAP, "frank", "account disabled")
	if len(changes) != 2 || changes[1].Kind != PrincipalRemoved || !changes[1].Affects(got) {
		t.Fatalf("changes %+v", changes)
	}
	// the live sessions' reason names the removal, not the token
	// revocation it caused (which would read as a logout)
	if err := f.svc.Recheck(got, RightExport, "yard-2"); !errors.Is(err, ErrPrincipalGone) {
		t.Fatalf("removed identity's re-check: %v (%s), want ErrPrincipalGone", err, EndReason(err))
	}
	if _, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", tok)); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("removed identity's token: %v", err)
	}
	if len(f.svc.Identities(SourceLDAP)) != 0 {
		t.Fatal("removed identity still listed for re-check")
	}
	svc2 := f.restart(t)
	if _, err := svc2.AuthenticateRequest(bearerRequest("GET", "/", tok)); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("after restart: %v", err)
	}
	// Signing in again works (a new token).
	if _, _, err := f.svc.LoginIdentity(ctx, Identity{Name: "frank", Source: SourceLDAP, Roles: []string{"operator"}}, "192.0.2.20", "http"); err != nil {
		t.Fatal(err)
	}
}

// A token issued to a directory identity is honoured by a process that
// did not sign it in (another cluster node, or after a restart), which
// then lists it for the directory re-check; its sign-in expiry bounds the
// token.
func TestDirectoryIdentityAcrossRestartAndExpiry(t *testing.T) {
	f := rolesFixture(t)
	exp := f.clock.Now().Add(10 * time.Minute)
	tok, p, err := f.svc.LoginIdentity(context.Background(), Identity{Name: "gina", Source: SourceOIDC, Roles: []string{"operator", "gone-role"}, Expires: exp}, "192.0.2.21", "http")
	if err != nil {
		t.Fatal(err)
	}
	if !p.ExpiresAt.Equal(exp) {
		t.Fatalf("token expiry %v, want the sign-in's %v", p.ExpiresAt, exp)
	}
	svc2 := f.restart(t)
	got, err := svc2.AuthenticateRequest(bearerRequest("GET", "/", tok))
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != SourceOIDC || !got.CanView("gate-north") || len(svc2.Identities(SourceOIDC)) != 1 {
		t.Fatalf("after restart: %+v", got)
	}
	if err := svc2.Recheck(got, RightView, "gate-north"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(11 * time.Minute)
	if _, err := svc2.AuthenticateRequest(bearerRequest("GET", "/", tok)); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired token: %v", err)
	}
	if err := f.svc.Recheck(p, RightView, "gate-north"); !errors.Is(err, ErrPrincipalGone) {
		t.Fatalf("expired sign-in, live session: %v", err)
	}
}

func TestIdentityValidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for name, id := range map[string]Identity{
		"local source": {Name: "x", Source: SourceLocal},
		"no source":    {Name: "x"},
		"bad name":     {Name: "a b", Source: SourceLDAP},
		"bad role":     {Name: "x", Source: SourceLDAP, Roles: []string{"a:b"}},
		"many roles":   {Name: "x", Source: SourceLDAP, Roles: make([]string, maxIdentityRoles+1)},
	} {
		if _, _, err := f.svc.LoginIdentity(ctx, id, "192.0.2.1", "http"); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, _, err := f.svc.LoginIdentity(ctx, Identity{Name: "x", Source: SourceOIDC, Expires: f.clock.Now().Add(-time.Second)}, "192.0.2.1", "http"); !errors.Is(err, ErrPrincipalGone) {
		t.Fatalf("already expired: %v", err)
	}
	// No mapped group: signed in, but no rights at all.
	_, p, err := f.svc.LoginIdentity(ctx, Identity{Name: "nogroups", Source: SourceOIDC}, "192.0.2.1", "http")
	if err != nil {
		t.Fatal(err)
	}
	if p.Rights("gate-1") != nil || p.CanView("gate-1") {
		t.Fatal("an identity without roles has rights")
	}
}
