package directory

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// maxCAFile bounds a ca_file.
const maxCAFile = 1 << 20

// rootCAs reads a PEM bundle (ca_file). "" = the system's roots (nil).
func rootCAs(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", errors.Unwrap(err))
	}
	if st.Size() > maxCAFile {
		return nil, errors.New("ca_file: larger than 1 MiB")
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("ca_file: no PEM certificate in it")
	}
	return pool, nil
}

// clientTLS is the TLS configuration towards a directory: certificate
// verified against roots (nil = system) and serverName, TLS 1.2 or later.
func clientTLS(roots *x509.CertPool, serverName string) *tls.Config {
	return &tls.Config{
		RootCAs:    roots,
		ServerName: serverName,
		MinVersion: tls.VersionTLS12,
	}
}
