package gateway

import (
	"fmt"

	"cordon/auth"
	"cordon/config"
	"cordon/relay/session"
)

// directoryConfig is the auth directory of a config: roles, users and
// API keys with their roles.
func directoryConfig(cfg *config.Config) (auth.DirectoryConfig, error) {
	var dc auth.DirectoryConfig
	for _, r := range cfg.Auth.Roles {
		rights := make([]auth.Right, 0, len(r.Rights))
		for _, x := range r.Rights {
			rights = append(rights, auth.Right(x))
		}
		dc.Roles = append(dc.Roles, auth.Role{Name: r.Name, Cameras: r.Cameras, Rights: rights, PTZPriority: r.PTZPriority})
	}
	for _, u := range cfg.Auth.Users {
		dc.Users = append(dc.Users, auth.User{Name: u.Name, PasswordHash: u.PasswordHash, Cameras: u.Cameras, Roles: u.Roles, Admin: u.Admin})
	}
	for i := range cfg.Auth.APIKeys {
		k := &cfg.Auth.APIKeys[i]
		h, err := k.Hash()
		if err != nil {
			return dc, fmt.Errorf("auth.api_keys[%d]: %w", i, err)
		}
		dc.APIKeys = append(dc.APIKeys, auth.APIKey{Name: k.Name, KeyHash: h, Cameras: k.Cameras, Roles: k.Roles})
	}
	return dc, nil
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
	g.auth = &auth.Service{
		StateDir:  g.Config.StateDir,
		TokenTTL:  g.Config.Auth.TTL(),
		Directory: dir,
		Audit:     g.audit,
		Hostile:   g.hostile,
		Logger:    g.Logger.With("component", "auth"),
		Metrics:   auth.NewMetrics(g.reg),
	}
	if err := g.auth.Initialize(); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	// a logout ends the live sessions that token opened
	g.unsubAuth = g.auth.Subscribe(func(c auth.Change) {
		if c.Kind != auth.TokenRevoked || c.TokenID == "" || g.sessions == nil || g.ctx.Err() != nil {
			return
		}
		g.wg.Add(1)
		go func() { // subscribers must not block; ending sessions may
			defer g.wg.Done()
			g.sessions.KillWhere(func(s session.Info) bool { return s.TokenID == c.TokenID }, "logged_out")
		}()
	})
	return nil
}

// updatePrincipals replaces roles, users and API keys; requests see the
// new rights at once.
func (g *Gateway) updatePrincipals(cfg *config.Config) error {
	dc, err := directoryConfig(cfg)
	if err != nil {
		return err
	}
	return g.auth.Directory.Apply(dc)
}
