// Package directory signs people and machines in with the organisation's
// directory: LDAP (Active Directory, OpenLDAP) for names and passwords,
// OpenID Connect (Keycloak, ADFS, Entra ID) for browser sign-in. It knows
// nothing of cordon's rights: it returns an Identity (name, source, groups,
// the session's latest end) and the cordon role names the groups map to;
// package auth turns that into a principal, and the doors decide.
//
// Wiring, in the owner (the gateway):
//
//	l := &directory.LDAP{URL: ..., BindDN: ..., BindPassword: ..., RoleMap: ..., Metrics: m}
//	err := l.Initialize()            // no network: the directory may be down at start
//	id, err := l.Authenticate(ctx, name, password)
//	//   errors.Is(err, directory.ErrInvalidCredentials) -> 401 (counts towards lockout)
//	//   errors.Is(err, directory.ErrUnavailable)        -> 503 (local users keep working)
//	r := &directory.Rechecker{Directory: l, Owner: owner, Interval: l.RecheckInterval}
//
//	o := &directory.OIDC{Issuer: ..., ClientID: ..., RedirectURL: ..., SignIn: owner.signIn,
//		RemoteAddr: authService.RemoteAddr} // the client address behind trusted proxies
//	err = o.Initialize()
//	mux.Handle("GET /api/v1/oidc/login", o.LoginHandler())
//	mux.Handle("GET /api/v1/oidc/callback", o.CallbackHandler())
//
// A session issued for an Identity must end no later than Identity.Expires.
package directory
