package gateway

import (
	"fmt"
	"strings"

	"cordon/auth"
	"cordon/config"
)

// directoryConfig turns the config's roles, users and API keys into what
// auth's directory holds (rights come from cameras and roles; Digest from
// rtsp_digest_ha1, else the ONVIF password: gateway/onvif.go).
func directoryConfig(cfg *config.Config) (auth.DirectoryConfig, error) {
	var out auth.DirectoryConfig
	for _, r := range cfg.Auth.Roles {
		rights := make([]auth.Right, 0, len(r.Rights))
		for _, s := range r.Rights {
			rights = append(rights, auth.Right(s))
		}
		out.Roles = append(out.Roles, auth.Role{Name: r.Name, Cameras: r.Cameras, Rights: rights, PTZPriority: r.PTZPriority})
	}
	for _, u := range cfg.Auth.Users {
		out.Users = append(out.Users, auth.User{Name: u.Name, PasswordHash: u.PasswordHash, Cameras: u.Cameras, Roles: u.Roles,
			Admin: u.Admin, DigestHA1: userDigestHA1(u)})
	}
	for i := range cfg.Auth.APIKeys {
		k := &cfg.Auth.APIKeys[i]
		h, err := k.Hash()
		if err != nil {
			return auth.DirectoryConfig{}, fmt.Errorf("auth.api_keys[%d]: %w", i, err)
		}
		out.APIKeys = append(out.APIKeys, auth.APIKey{Name: k.Name, KeyHash: h, Cameras: k.Cameras, Roles: k.Roles,
			DigestHA1: keyDigestHA1(*k)})
	}
	return out, nil
}

func (g *Gateway) initAuth() error {
	dc, err := directoryConfig(g.Config)
	if err != nil {
		return err
	}
	dir, err := auth.NewDirectoryConfig(dc)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	base, maxLock, decay := g.Config.Auth.Lockout.Durations()
	g.auth = &auth.Service{
		StateDir:            g.Config.StateDir,
		TokenTTL:            g.Config.Auth.TTL(),
		Directory:           dir,
		Audit:               g.audit,
		Hostile:             g.hostile,
		Cameras:             cameraCatalog{g},
		Lockout:             auth.LockoutPolicy{Threshold: g.Config.Auth.Lockout.Threshold, Base: base, Max: maxLock, Decay: decay},
		MaxConcurrentHashes: g.Config.Limits.Argon2Concurrent,
		MaxHashQueue:        g.Config.Limits.Argon2Queue,
		Logger:              g.Logger.With("component", "auth"),
		Metrics:             auth.NewMetrics(g.reg),
	}
	if g.clustered() { // one token key, shared logouts and lockouts (cluster.go)
		g.auth.TokenKey = g.tokenKey()
		g.auth.Revocations, g.auth.SharedLockouts = clusterRevocations{g}, clusterLockouts{g}
	}
	if err := g.auth.Initialize(); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

// updatePrincipals replaces roles, users and API keys; requests see the
// new rights at once, and the live-session guard hears of every change.
func (g *Gateway) updatePrincipals(cfg *config.Config) error {
	dc, err := directoryConfig(cfg)
	if err != nil {
		return err
	}
	return g.auth.Directory.Apply(dc)
}

// cameraCatalog tells auth whether a camera (and stream) exists: asked
// only once the principal may see it (permission before existence).
type cameraCatalog struct{ g *Gateway }

func (c cameraCatalog) CameraExists(id, stream string) bool {
	if stream == "main" {
		stream = ""
	}
	if id == "" || strings.Contains(id, "/") || c.g.hub == nil {
		return false
	}
	return c.g.hub.Lookup(id, stream) != nil
}
