package audit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"

	"cordon/internal/hostname"
)

// Forward URL schemes.
const (
	SchemeTLS = "tcp+tls" // RFC 5425: syslog over TLS, octet-counted frames
	SchemeTCP = "tcp"     // RFC 6587 octet counting (as RFC 5425 frames it), no TLS
	SchemeUDP = "udp"     // RFC 5426: one message per datagram; lossy
)

// ForwardTarget is a parsed audit.forward URL.
type ForwardTarget struct {
	Scheme string // SchemeTLS, SchemeTCP or SchemeUDP
	Addr   string // host:port
	Host   string // for TLS server name checks
}

// ParseForwardURL parses tcp+tls://host:port, tcp://host:port or
// udp://host:port (default ports 6514 for TLS, 514 otherwise). Nothing
// else may be in the URL.
func ParseForwardURL(s string) (ForwardTarget, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ForwardTarget{}, errors.New("must be tcp+tls://host:6514, tcp://host:514 or udp://host:514")
	}
	t := ForwardTarget{Scheme: u.Scheme, Host: u.Hostname()}
	port := "514"
	switch u.Scheme {
	case SchemeTLS:
		port = "6514"
	case SchemeTCP, SchemeUDP:
	default:
		return ForwardTarget{}, errors.New("scheme must be tcp+tls, tcp or udp")
	}
	switch {
	case t.Host == "":
		return ForwardTarget{}, errors.New("must name a host")
	case net.ParseIP(t.Host) == nil && !hostname.Valid(t.Host):
		return ForwardTarget{}, errors.New("host must be an IP address or a host name")
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return ForwardTarget{}, errors.New("must be only scheme://host:port")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return ForwardTarget{}, errors.New("port must be a number from 1 to 65535")
		}
		port = p
	}
	t.Addr = net.JoinHostPort(t.Host, port)
	return t, nil
}

// ForwardTLSConfig builds the TLS configuration for a tcp+tls collector:
// caFile (PEM; "" = the system roots) verifies the collector, whose name
// must match serverName (the URL's host); certFile and keyFile (both or
// neither) are the client certificate for collectors that require one.
// TLS 1.2 at least.
func ForwardTLSConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("forward CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("forward CA: no PEM certificate in the file")
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, errors.New("forward client certificate: not a PEM certificate matching its key")
		}
		cfg.Certificates = []tls.Certificate{c}
	case certFile != "" || keyFile != "":
		return nil, errors.New("forward client certificate: the certificate and the key go together")
	}
	return cfg, nil
}

// RFC 5424 header values.
const (
	syslogFacility = 13 // "log audit"
	syslogApp      = "cordon"
	maxSequenceID  = 2147483647 // RFC 5424 meta sequenceId wraps here
)

// syslogMessage formats one audit line as an RFC 5424 message:
//
//	<PRI>1 TIMESTAMP NODE cordon - EVENT [meta sequenceId="SEQ"] LINE
//
// The MSG is the audit line byte for byte (signature included), so the
// collector's copy can be checked with `cordon audit verify`; seq
// de-duplicates lines delivered twice.
func syslogMessage(rec *record, line []byte) []byte {
	sev := 6 // informational
	switch rec.Event {
	case LoginFailed, Denied, Suppressed, HardeningDrift, EgressAttempt, SessionKilled:
		sev = 5 // notice
	}
	host := "-"
	if rec.Node != nil && validNode(*rec.Node) {
		host = *rec.Node
	}
	sid := (rec.Seq-1)%maxSequenceID + 1
	hdr := fmt.Sprintf("<%d>1 %s %s %s - %s [meta sequenceId=\"%d\"] ", syslogFacility*8+sev, rec.Time, host, syslogApp, rec.Event, sid)
	return append([]byte(hdr), line...)
}

// octetCounted frames a message for TCP and TLS (RFC 5425 §4.3).
func octetCounted(msg []byte) []byte {
	out := strconv.AppendInt(nil, int64(len(msg)), 10)
	out = append(out, ' ')
	return append(out, msg...)
}
