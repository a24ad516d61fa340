package gateway

import (
	"fmt"

	"cordon/auth"
	"cordon/config"
	"cordon/relay/session"
)

func principals(cfg *config.Config) ([]auth.User, []auth.APIKey, error) {
	users := make([]auth.User, 0, len(cfg.Auth.Users))
	for _, u := range cfg.Auth.Users {
		users = append(users, auth.User{Name: u.Name, PasswordHash: u.PasswordHash, Cameras: u.Cameras, Roles: u.Roles, Admin: u.Admin})
	}
	keys := make([]auth.APIKey, 0, len(cfg.Auth.APIKeys))
	for i := range cfg.Auth.APIKeys {
		k := &cfg.Auth.APIKeys[i]
		h, err := k.Hash()
		if err != nil {
			return nil, nil, fmt.Errorf("auth.api_keys[%d]: %w", i, err)
		}
		keys = append(keys, auth.APIKey{Name: k.Name, KeyHash: h, Cameras: k.Cameras, Roles: k.Roles})
	}
	return users, keys, nil
}

func (g *Gateway) initAuth() error {
	users, keys, err := principals(g.Config)
	if err != nil {
		return err
	}
	dir, err := auth.NewDirectoryConfig(auth.DirectoryConfig{Roles: roles(g.Config), Users: users, APIKeys: keys})
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

// updatePrincipals replaces users and API keys; requests see the new rights
// at once.
func (g *Gateway) updatePrincipals(cfg *config.Config) error {
	users, keys, err := principals(cfg)
	if err != nil {
		return err
	}
	return g.auth.Directory.Apply(auth.DirectoryConfig{Roles: roles(cfg), Users: users, APIKeys: keys})
}

// roles converts auth.roles (validated by config).
func roles(cfg *config.Config) []auth.Role {
	out := make([]auth.Role, 0, len(cfg.Auth.Roles))
	for _, r := range cfg.Auth.Roles {
		rights := make([]auth.Right, 0, len(r.Rights))
		for _, x := range r.Rights {
			rights = append(rights, auth.Right(x))
		}
		out = append(out, auth.Role{Name: r.Name, Cameras: r.Cameras, Rights: rights, PTZPriority: r.PTZPriority})
	}
	return out
}
