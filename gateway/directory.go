package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sync"

	"cordon/api"
	"cordon/auth"
	"cordon/auth/directory"
	"cordon/config"
)

// directoryParts are the directory sign-ins (auth.ldap, auth.oidc): LDAP
// passwords in POST /api/v1/login and RTSP Basic (through
// auth.Service.DirectoryPasswords), its periodic re-check, and the OIDC
// routes with the token hand-off to the viewer. Changing auth.ldap or
// auth.oidc needs a restart (roles named by role_map are re-read on
// reload like any role).
type directoryParts struct {
	metrics   *directory.Metrics
	ldap      *directory.LDAP
	rechecker *directory.Rechecker
	known     knownIdentities
	oidc      *directory.OIDC
	signIn    *api.OIDCSignIn
}

// initDirectory builds what auth.ldap and auth.oidc configure. Neither
// contacts its server: cordon starts while the directory is down.
func (g *Gateway) initDirectory() error {
	a := &g.Config.Auth
	if a.LDAP.URL == "" && a.OIDC.Issuer == "" {
		return nil
	}
	d := &g.dir
	d.metrics = directory.NewMetrics(g.reg)
	if a.LDAP.URL != "" {
		if err := g.initLDAP(&a.LDAP); err != nil {
			return err
		}
	}
	if a.OIDC.Issuer != "" {
		if err := g.initOIDC(&a.OIDC); err != nil {
			return err
		}
	}
	return nil
}

func (g *Gateway) initLDAP(c *config.LDAP) error {
	pw, err := c.BindPassword()
	if err != nil {
		return fmt.Errorf("auth.ldap.bind_password_file: %w", err)
	}
	d := &g.dir
	d.ldap = &directory.LDAP{
		URL: c.URL, CAFile: c.CAFile, BindDN: c.BindDN, BindPassword: pw,
		UserBaseDN: c.UserBaseDN, UserFilter: c.UserFilter, UsernameAttribute: c.UsernameAttribute,
		GroupBaseDN: c.GroupBaseDN, GroupFilter: c.GroupFilter, RoleMap: config.DirectoryRoleMap(c.RoleMap),
		Timeout: c.TimeoutDuration(), RecheckInterval: c.RecheckDuration(), PoolSize: c.PoolSize,
		// TokenTTL stays 0: an LDAP identity does not expire by time (its
		// session tokens do, by token_ttl); the re-check ends it.
		Logger:  g.Logger.With("component", "ldap"),
		Metrics: d.metrics,
	}
	if err := d.ldap.Initialize(); err != nil {
		return fmt.Errorf("auth.%w", err)
	}
	d.known.m = map[string]directory.Identity{}
	g.auth.DirectoryPasswords = ldapPasswords{l: d.ldap, known: &d.known}
	d.rechecker = &directory.Rechecker{Directory: d.ldap, Owner: recheckOwner{g}, Interval: d.ldap.RecheckInterval,
		Logger: g.Logger.With("component", "ldap-recheck")}
	return d.rechecker.Initialize()
}

func (g *Gateway) initOIDC(c *config.OIDC) error {
	secret, err := c.ClientSecret()
	if err != nil {
		return fmt.Errorf("auth.oidc.client_secret_file: %w", err)
	}
	d := &g.dir
	redirect, _ := url.Parse(c.RedirectURL)
	d.signIn = &api.OIDCSignIn{Auth: g.auth, SecureCookie: redirect != nil && redirect.Scheme == "https",
		Logger: g.Logger.With("component", "oidc")}
	d.oidc = &directory.OIDC{
		Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: secret, RedirectURL: c.RedirectURL, CAFile: c.CAFile,
		GroupsClaim: c.GroupsClaim, UsernameClaim: c.UsernameClaim, Scopes: c.Scopes, RoleMap: config.DirectoryRoleMap(c.RoleMap),
		DisplayName: c.DisplayName, TokenTTL: g.auth.TokenTTL, Timeout: c.TimeoutDuration(),
		RemoteAddr: g.auth.RemoteAddr, SignIn: d.signIn.SignIn, ErrorPage: d.signIn.ErrorPage,
		Logger: g.Logger.With("component", "oidc"), Metrics: d.metrics,
	}
	if err := d.oidc.Initialize(); err != nil {
		return fmt.Errorf("auth.%w", err)
	}
	d.signIn.Provider = d.oidc.Name()
	return d.signIn.Initialize()
}

// mountDirectory adds the sign-in routes: the methods the viewer offers,
// who am I, and with OIDC its login, callback and hand-off exchange.
func (g *Gateway) mountDirectory(mux *http.ServeMux) {
	d := &g.dir
	m := api.SignInMethods{LDAP: d.ldap != nil}
	if d.oidc != nil {
		m.OIDC = d.oidc.Name()
		mux.Handle("GET "+api.OIDCLoginPath, d.oidc.LoginHandler())
		mux.Handle("GET /api/v1/oidc/callback", d.oidc.CallbackHandler())
		mux.Handle(api.ExchangePath, d.signIn.ExchangeHandler())
	}
	mux.Handle("GET /api/v1/auth/methods", m.Handler())
	mux.Handle("GET /api/v1/me", api.MeHandler(g.auth))
}

// directoryDegraded names the directories that cannot be reached now (for
// /healthz; cordon_directory_up says the same).
func (g *Gateway) directoryDegraded() map[string]string {
	out := map[string]string{}
	if g.dir.ldap != nil {
		if err := g.dir.ldap.Health(); err != nil {
			out["ldap"] = err.Error() + "; directory users get 503, local users can sign in"
		}
	}
	if g.dir.oidc != nil {
		if err := g.dir.oidc.Health(); err != nil {
			out["oidc"] = err.Error() + "; single sign-on fails, local users can sign in"
		}
	}
	return out
}

// RecheckDirectory runs one LDAP re-check pass now (as every
// auth.ldap.recheck_interval does) and reports what it found; zero when
// LDAP is off.
func (g *Gateway) RecheckDirectory(ctx context.Context) directory.RecheckResult {
	if g.dir.rechecker == nil {
		return directory.RecheckResult{}
	}
	return g.dir.rechecker.Recheck(ctx)
}

func (g *Gateway) closeDirectory() {
	d := &g.dir
	if d.rechecker != nil {
		d.rechecker.Close()
	}
	if d.ldap != nil {
		d.ldap.Close()
	}
	if d.oidc != nil {
		d.oidc.Close()
	}
}

// ldapPasswords adapts directory.LDAP to auth.PasswordDirectory.
type ldapPasswords struct {
	l     *directory.LDAP
	known *knownIdentities
}

func (p ldapPasswords) Source() string { return auth.SourceLDAP }

func (p ldapPasswords) AuthenticatePassword(ctx context.Context, name, password string) (auth.Identity, error) {
	id, err := p.l.Authenticate(ctx, name, password)
	switch {
	case errors.Is(err, directory.ErrInvalidCredentials):
		return auth.Identity{}, auth.ErrBadCredentials
	case errors.Is(err, directory.ErrUnavailable):
		return auth.Identity{}, &auth.DirectoryUnavailableError{Source: auth.SourceLDAP}
	case err != nil:
		return auth.Identity{}, err
	}
	p.known.put(id)
	return authIdentity(id), nil
}

func authIdentity(id directory.Identity) auth.Identity {
	return auth.Identity{Name: id.Name, Source: id.Source, Groups: id.Groups, Roles: id.Roles, Expires: id.Expires}
}

// knownIdentities keeps each LDAP identity as the directory last described
// it (its entry's DN, its groups), which auth does not keep: the re-check
// re-reads a user by that entry.
type knownIdentities struct {
	mu sync.Mutex
	m  map[string]directory.Identity
}

func (k *knownIdentities) put(id directory.Identity) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[id.Name] = id
}

func (k *knownIdentities) get(name string) (directory.Identity, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, ok := k.m[name]
	return id, ok
}

func (k *knownIdentities) drop(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, name)
}

// recheckOwner gives the LDAP re-check the signed-in LDAP identities and
// applies what it finds through auth: RemoveIdentity (tokens revoked,
// sessions ended) or RefreshIdentity (sessions the new roles no longer
// allow ended), both announced to the doors' Guard as auth changes.
type recheckOwner struct{ g *Gateway }

func (o recheckOwner) SignedIn() []directory.Identity {
	d := &o.g.dir
	var out []directory.Identity
	for _, id := range o.g.auth.Identities(auth.SourceLDAP) {
		if k, ok := d.known.get(id.Name); ok {
			out = append(out, k)
			continue
		}
		// signed in on another node or before a restart: re-read by name
		out = append(out, directory.Identity{Name: id.Name, Source: directory.SourceLDAP, Roles: id.Roles})
	}
	return out
}

func (o recheckOwner) Rechecked(prev, now directory.Identity, err error) {
	d := &o.g.dir
	if err != nil {
		d.known.drop(prev.Name)
		o.g.auth.RemoveIdentity(auth.SourceLDAP, prev.Name, "removed or disabled in the directory")
		return
	}
	d.known.put(now)
	o.g.auth.RefreshIdentity(authIdentity(now))
}

// reloadDirectory: auth.ldap and auth.oidc changes need a restart (said in
// the log); a reload (SIGHUP) also runs an LDAP re-check now, so an
// operator who just removed someone from a group need not wait for
// recheck_interval.
func (g *Gateway) reloadDirectory(old, cur *config.Config) {
	if !reflect.DeepEqual(old.Auth.LDAP, cur.Auth.LDAP) || !reflect.DeepEqual(old.Auth.OIDC, cur.Auth.OIDC) {
		g.Logger.Warn("auth.ldap and auth.oidc changes need a restart; they are not applied")
	}
	if g.dir.rechecker != nil {
		g.dir.rechecker.Trigger()
	}
}
