package config

import (
	"crypto/tls"
	"strings"

	"cordon/auth/audit"
)

func (v *validator) audit(a *Audit) {
	if strings.TrimSpace(a.Path) == "" {
		v.add("audit.path", "must not be empty")
	}
	if a.MaxSizeMB < 0 {
		v.add("audit.max_size_mb", "must be 0 (never rotate) or more")
	}
	if a.KeepFiles < 0 {
		v.add("audit.keep_files", "must be 0 (keep all) or more")
	}
	if a.KeepMB < 0 {
		v.add("audit.keep_mb", "must be 0 (keep all) or more")
	}
	if (a.KeepFiles > 0 || a.KeepMB > 0) && a.MaxSizeMB == 0 {
		v.add("audit.keep_files", "retention needs rotation (audit.max_size_mb above 0)")
	}
	if a.Forward == "" {
		for _, f := range []struct{ k, s string }{{"forward_ca_file", a.ForwardCAFile}, {"forward_cert_file", a.ForwardCertFile}, {"forward_key_file", a.ForwardKeyFile}} {
			if f.s != "" {
				v.add("audit."+f.k, "set but audit.forward is empty")
			}
		}
		return
	}
	t, err := audit.ParseForwardURL(a.Forward)
	if err != nil {
		v.add("audit.forward", err.Error())
		return
	}
	if t.Scheme != audit.SchemeTLS {
		if a.ForwardCAFile != "" || a.ForwardCertFile != "" || a.ForwardKeyFile != "" {
			v.add("audit.forward", "forward_ca_file, forward_cert_file and forward_key_file need a tcp+tls:// collector")
		}
		return
	}
	okFiles := true
	for _, f := range []struct{ k, s string }{{"forward_ca_file", a.ForwardCAFile}, {"forward_cert_file", a.ForwardCertFile}, {"forward_key_file", a.ForwardKeyFile}} {
		if f.s != "" && !v.readable("audit."+f.k, f.s) {
			okFiles = false
		}
	}
	if okFiles {
		if _, err := a.ForwardTLS(); err != nil {
			v.add("audit.forward_cert_file", strings.TrimPrefix(err.Error(), "forward "))
		}
	}
}

// ForwardTLS returns the TLS configuration for a tcp+tls collector (nil
// for other schemes).
func (a *Audit) ForwardTLS() (*tls.Config, error) {
	t, err := audit.ParseForwardURL(a.Forward)
	if err != nil || t.Scheme != audit.SchemeTLS {
		return nil, err
	}
	return audit.ForwardTLSConfig(a.ForwardCAFile, a.ForwardCertFile, a.ForwardKeyFile, t.Host)
}
