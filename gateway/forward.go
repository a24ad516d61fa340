package gateway

import (
	"fmt"
	"path/filepath"

	"cordon/auth/audit"
)

// initForward starts shipping the audit log to the syslog collector of
// audit.forward (RFC 5424 lines, RFC 5425 framing over TCP/TLS), reading
// the audit files from a cursor in state_dir: lines written while the
// collector or cordon is down are sent later, in order; retention keeps
// every file until its lines were delivered.
func (g *Gateway) initForward() error {
	cfg := g.Config
	if cfg.Audit.Forward == "" {
		return nil
	}
	tc, err := cfg.Audit.ForwardTLS()
	if err != nil {
		return fmt.Errorf("audit.forward: %w", err)
	}
	g.forward = &audit.Forwarder{
		Log:        g.audit,
		URL:        cfg.Audit.Forward,
		TLSConfig:  tc,
		CursorPath: filepath.Join(cfg.StateDir, audit.CursorFileName),
		Logger:     g.Logger.With("component", "audit-forward"),
		Metrics:    audit.NewForwardMetrics(g.reg),
	}
	if err := g.forward.Initialize(); err != nil {
		g.forward = nil
		return fmt.Errorf("audit.forward: %w", err)
	}
	return nil
}
