package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"cordon/internal/hostname"
)

// Cluster is the `cluster` section: several nodes sharing one config act as
// one gateway, coordinated through an existing etcd cluster. With no
// etcd_endpoints the node runs alone and the other keys are ignored (but
// still checked when set).
type Cluster struct {
	EtcdEndpoints []string `mapstructure:"etcd_endpoints"`
	EtcdTLS       EtcdTLS  `mapstructure:"etcd_tls"`
	// NodeID is unique per node; "" = the host name (resolved by Load).
	NodeID string `mapstructure:"node_id"`
	// Advertise is the host or IP other nodes reach this node at; its
	// HTTP and RTSP ports are this node's listen ports.
	Advertise string `mapstructure:"advertise"`
	// PeerKeyFile holds the shared secret (at least MinPeerKeyBytes) the
	// nodes authenticate each other with.
	PeerKeyFile string `mapstructure:"peer_key_file"`
	LeaseTTL    string `mapstructure:"lease_ttl"`

	peerKey []byte // PeerKeyFile's content, read by Validate
}

// EtcdTLS holds the PEM files for TLS to etcd: the CA that signed the etcd
// servers' certificates ("" = the system roots) and this node's client
// certificate and key (both or neither).
type EtcdTLS struct {
	CA   string `mapstructure:"ca"`
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

// Bounds of cluster settings.
const (
	// MinPeerKeyBytes is the least secret a peer_key_file must hold.
	MinPeerKeyBytes = 32
	// maxPeerKeyBytes bounds what is read from peer_key_file.
	maxPeerKeyBytes = 4096
	MinLeaseTTL     = 2 * time.Second
	MaxLeaseTTL     = 60 * time.Second
	DefaultLeaseTTL = 5 * time.Second
)

// nodeIDRe: node ids appear in etcd keys, logs, audit lines and RTSP peer
// user names ("peer/<id>"), so no '/', ':' or spaces.
var nodeIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Enabled reports whether this node is part of a cluster.
func (c *Cluster) Enabled() bool { return len(c.EtcdEndpoints) > 0 }

// TTL returns lease_ttl parsed (DefaultLeaseTTL if invalid, which Validate
// reports).
func (c *Cluster) TTL() time.Duration {
	d, err := parseLeaseTTL(c.LeaseTTL)
	if err != nil {
		return DefaultLeaseTTL
	}
	return d
}

// PeerKey returns the content of peer_key_file (read by Validate, or read
// now if Validate was not called). Never log it.
func (c *Cluster) PeerKey() ([]byte, error) {
	if c.peerKey != nil {
		return c.peerKey, nil
	}
	if c.PeerKeyFile == "" {
		return nil, errors.New("cluster.peer_key_file is not set")
	}
	return readPeerKey(c.PeerKeyFile)
}

// TLSConfig builds the client TLS configuration for etcd from etcd_tls; nil
// (plain connections) when no endpoint is https:// and no file is set.
func (c *Cluster) TLSConfig() (*tls.Config, error) {
	t := c.EtcdTLS
	https := false
	for _, e := range c.EtcdEndpoints {
		https = https || strings.HasPrefix(strings.ToLower(e), "https://")
	}
	if !https && t.CA == "" && t.Cert == "" && t.Key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("cluster.etcd_tls.ca: cannot read %s: %s", t.CA, describeFileErr(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster.etcd_tls.ca: %s holds no PEM certificate", t.CA)
		}
		cfg.RootCAs = pool
	}
	if t.Cert != "" || t.Key != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, errors.New("cluster.etcd_tls.cert: is not a PEM certificate matching cluster.etcd_tls.key")
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Endpoints returns etcd_endpoints as the etcd client wants them
// (host:port, scheme removed: TLS is decided by TLSConfig).
func (c *Cluster) Endpoints() []string {
	out := make([]string, 0, len(c.EtcdEndpoints))
	for _, e := range c.EtcdEndpoints {
		if u, err := url.Parse(e); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
			out = append(out, u.Host)
			continue
		}
		out = append(out, e)
	}
	return out
}

// normalize fills node_id from the host name when the cluster is on.
func (c *Cluster) normalize() {
	if c.NodeID == "" && c.Enabled() {
		if h, err := os.Hostname(); err == nil {
			c.NodeID = h
		}
	}
	nonNil(&c.EtcdEndpoints)
}

func (v *validator) cluster(c *Cluster, rtspListen string) {
	c.peerKey = nil
	if _, err := parseLeaseTTL(c.LeaseTTL); err != nil {
		v.add("cluster.lease_ttl", err.Error())
	}
	https, plain := 0, 0
	for i, e := range c.EtcdEndpoints {
		f := fmt.Sprintf("cluster.etcd_endpoints[%d]", i)
		scheme, err := checkEndpoint(e)
		if err != nil {
			v.add(f, err.Error())
			continue
		}
		if scheme == "https" {
			https++
		} else {
			plain++
		}
	}
	if https > 0 && plain > 0 {
		v.add("cluster.etcd_endpoints", "mixes https:// and plain endpoints; use one kind")
	}
	v.etcdTLS(&c.EtcdTLS, plain > 0 && https == 0)
	if c.NodeID != "" && !nodeIDRe.MatchString(c.NodeID) {
		msg := "must match [A-Za-z0-9][A-Za-z0-9._-]{0,62}"
		if c.Enabled() {
			msg += " (it defaults to the host name; set it or CORDON_CLUSTER_NODE_ID)"
		}
		v.add("cluster.node_id", msg)
	}
	if c.Enabled() && c.NodeID == "" {
		v.add("cluster.node_id", "must be set (the host name could not be read)")
	}
	if c.Advertise != "" {
		if err := checkAdvertise(c.Advertise); err != nil {
			v.add("cluster.advertise", err.Error())
		}
	} else if c.Enabled() {
		v.add("cluster.advertise", "must be set: the host or IP other nodes reach this node at (e.g. CORDON_CLUSTER_ADVERTISE=10.0.0.11)")
	}
	if c.Enabled() && rtspListen == "" {
		v.add("rtsp.listen", "must be set when the cluster is on: nodes relay cameras to each other over RTSP")
	}
	switch {
	case c.PeerKeyFile != "":
		k, err := readPeerKey(c.PeerKeyFile)
		if err != nil {
			v.add("cluster.peer_key_file", err.Error())
		} else {
			c.peerKey = k
		}
	case c.Enabled():
		v.add("cluster.peer_key_file", fmt.Sprintf("must be set: a file with at least %d bytes of secret (e.g. head -c 32 /dev/urandom | base64 > peer.key)", MinPeerKeyBytes))
	}
}

// warnings: a peer link or etcd traffic that crosses the network in clear.
func (c *Cluster) warnings(cfg *Config, add func(field, msg string)) {
	if !c.Enabled() {
		return
	}
	if cfg.HTTP.TLSCert == "" && !isLoopbackHost(c.Advertise) {
		add("cluster.advertise", "the peer link between nodes is plain RTSP (Digest-authenticated, not encrypted): set http.tls_cert/tls_key so nodes relay over RTSPS")
	}
	for i, e := range c.EtcdEndpoints {
		if !strings.HasPrefix(strings.ToLower(e), "https://") {
			host := strings.TrimPrefix(strings.ToLower(e), "http://")
			if h, _, err := net.SplitHostPort(host); err == nil && !isLoopbackHost(h) {
				add(fmt.Sprintf("cluster.etcd_endpoints[%d]", i), "plain http: revocations, lockouts and sessions cross the network unencrypted and unauthenticated (use https:// and etcd_tls)")
			}
		}
	}
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) etcdTLS(t *EtcdTLS, plainEndpoints bool) {
	if t.CA == "" && t.Cert == "" && t.Key == "" {
		return
	}
	if plainEndpoints {
		v.add("cluster.etcd_tls", "is set but cluster.etcd_endpoints are not https://")
	}
	if t.CA != "" && v.readable("cluster.etcd_tls.ca", t.CA) {
		pem, _ := os.ReadFile(t.CA)
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			v.add("cluster.etcd_tls.ca", "holds no PEM certificate")
		}
	}
	v.certKeyPair("cluster.etcd_tls.cert", "cluster.etcd_tls.key", t.Cert, t.Key)
}

// checkEndpoint accepts "https://host:port", "http://host:port" and
// "host:port"; it returns the scheme ("http" for the bare form).
func checkEndpoint(e string) (string, error) {
	bad := errors.New(`must be https://host:port, http://host:port or host:port (e.g. "https://10.0.0.5:2379")`)
	scheme, hostport := "http", e
	if strings.Contains(e, "://") {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", bad
		}
		scheme, hostport = u.Scheme, u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return "", bad
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", errors.New("port must be a number from 1 to 65535")
	}
	if net.ParseIP(host) == nil && !hostname.Valid(host) {
		return "", errors.New("host must be an IP address or a host name")
	}
	return scheme, nil
}

// checkAdvertise accepts a host name or an IP address that is not the
// unspecified address; no port (the ports are the node's listen ports).
func checkAdvertise(a string) error {
	if ip := net.ParseIP(a); ip != nil {
		if ip.IsUnspecified() || ip.IsMulticast() {
			return errors.New("must be an address other nodes can reach (not 0.0.0.0, :: or multicast)")
		}
		return nil
	}
	if strings.ContainsAny(a, ":/") {
		return errors.New("must be a host name or IP address without scheme or port (the ports are this node's http/rtsp listen ports)")
	}
	if !hostname.Valid(a) {
		return errors.New("must be a host name or IP address")
	}
	return nil
}

func parseLeaseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New(`must be a duration such as "5s"`)
	}
	if d < MinLeaseTTL || d > MaxLeaseTTL {
		return 0, errors.New("must be between 2s and 60s")
	}
	if d%time.Second != 0 {
		return 0, errors.New("must be whole seconds (etcd leases count in seconds)")
	}
	return d, nil
}

// readPeerKey reads the peer key: at least MinPeerKeyBytes after one
// trailing newline is trimmed. Its content never appears in errors.
func readPeerKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", path, describeFileErr(err))
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxPeerKeyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", path, describeFileErr(err))
	}
	if len(b) > maxPeerKeyBytes {
		return nil, fmt.Errorf("is larger than %d bytes", maxPeerKeyBytes)
	}
	if len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		}
	}
	if len(b) < MinPeerKeyBytes {
		return nil, fmt.Errorf("holds %d bytes; at least %d bytes of secret are needed", len(b), MinPeerKeyBytes)
	}
	return append([]byte(nil), b...), nil
}
