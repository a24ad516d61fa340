package cluster

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // RTSP Digest (RFC 2069/2617) is MD5; the password itself is a 256-bit HMAC
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// MinPeerKeyBytes is the least secret a peer key may hold.
const MinPeerKeyBytes = 32

// PeerUserPrefix starts the RTSP user name of a peer node ("peer/node-a").
// '/' cannot appear in user or API key names, so a peer never collides
// with a configured principal.
const PeerUserPrefix = "peer/"

// Labels of the keys derived from the peer key. Each use has its own key,
// so a credential for one purpose is useless for another.
const (
	// LabelRTSPPeer derives the key of the peer link's RTSP credentials.
	LabelRTSPPeer = "cordon peer rtsp v1"
	// LabelTokenSigning derives the seed of the session-token signing key
	// (ed25519.NewKeyFromSeed), so that a token issued by any node works on
	// every node without copying a key file between them.
	LabelTokenSigning = "cordon token signing v1"
)

// PeerKey is the cluster's shared secret (cluster.peer_key_file). Nodes
// authenticate each other with credentials derived from it; the key itself
// never leaves the node.
type PeerKey struct {
	secret []byte
	rtsp   []byte
}

// NewPeerKey checks and keeps secret (at least MinPeerKeyBytes).
func NewPeerKey(secret []byte) (*PeerKey, error) {
	if len(secret) < MinPeerKeyBytes {
		return nil, fmt.Errorf("peer key holds %d bytes; at least %d are needed", len(secret), MinPeerKeyBytes)
	}
	k := &PeerKey{secret: append([]byte(nil), secret...)}
	k.rtsp = k.Derive(LabelRTSPPeer)
	return k, nil
}

// Derive returns 32 bytes derived from the peer key for one purpose
// (HKDF-SHA256 with label as info). Same key and label: same bytes on
// every node.
func (k *PeerKey) Derive(label string) []byte {
	out, err := hkdf.Key(sha256.New, k.secret, nil, label, 32)
	if err != nil { // only for lengths beyond 255*32
		panic("cluster: hkdf: " + err.Error())
	}
	return out
}

// Credential returns the RTSP user name and password node presents when it
// pulls a camera from its owner: "peer/<node>" and
// base64url(HMAC-SHA256(Derive(LabelRTSPPeer), node)).
func (k *PeerKey) Credential(node string) (user, password string) {
	return PeerUserPrefix + node, k.password(node)
}

func (k *PeerKey) password(node string) string {
	m := hmac.New(sha256.New, k.rtsp)
	m.Write([]byte(node))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// IsPeerUser reports whether an RTSP user name claims to be a peer node.
func IsPeerUser(user string) bool { return strings.HasPrefix(user, PeerUserPrefix) }

// Verify checks a peer's RTSP Basic credentials in constant time and
// returns the node id they belong to.
func (k *PeerKey) Verify(user, password string) (node string, ok bool) {
	node, isPeer := strings.CutPrefix(user, PeerUserPrefix)
	if !isPeer || !nodeIDOK(node) {
		return "", false
	}
	want := k.password(node)
	if subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 {
		return "", false
	}
	return node, true
}

// DigestHA1 returns hex MD5(user:realm:password) for a peer user name, so
// the RTSP server can check a peer's Digest response (Digest never sends
// the password); ok is false for user names that are not peers.
func (k *PeerKey) DigestHA1(user, realm string) (ha1 string, ok bool) {
	node, isPeer := strings.CutPrefix(user, PeerUserPrefix)
	if !isPeer || !nodeIDOK(node) {
		return "", false
	}
	sum := md5.Sum([]byte(user + ":" + realm + ":" + k.password(node))) //nolint:gosec // Digest
	return hex.EncodeToString(sum[:]), true
}

// nodeIDOK: [A-Za-z0-9][A-Za-z0-9._-]{0,62}, as config checks node_id.
func nodeIDOK(id string) bool {
	if id == "" || len(id) > 63 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

// RTSPURL is where a relaying node pulls camera from this member:
// rtsp(s)://advertise:rtsp_port/camera.
func (m Member) RTSPURL(camera string) string {
	scheme := "rtsp"
	if m.RTSPS {
		scheme = "rtsps"
	}
	return scheme + "://" + net.JoinHostPort(m.Advertise, strconv.Itoa(m.RTSPPort)) + "/" + camera
}

// PullURL is what node self pulls camera from owner with: owner's
// RTSPURL with self's peer credential as userinfo (for an RTSP client that
// answers Basic or Digest). It holds a secret: never log it.
func (k *PeerKey) PullURL(self string, owner Member, camera string) (*url.URL, error) {
	u, err := url.Parse(owner.RTSPURL(camera))
	if err != nil {
		return nil, fmt.Errorf("peer %s: bad address", owner.ID)
	}
	u.User = url.UserPassword(k.Credential(self))
	return u, nil
}

// TLSConfig is the client TLS configuration for pulling from this member
// over RTSPS: the server must present the certificate whose SHA-256
// fingerprint the member registered in etcd (CertSHA256), whoever signed
// it, so self-signed node certificates work and nothing else does. Nil when
// the member serves plain RTSP.
func (m Member) TLSConfig() *tls.Config {
	if !m.RTSPS {
		return nil
	}
	want := strings.ToLower(strings.ReplaceAll(m.CertSHA256, ":", ""))
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is not checked against a CA: the pin below is the check.
		InsecureSkipVerify: true, //nolint:gosec // verified by VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("peer presented no certificate")
			}
			sum := sha256.Sum256(raw[0])
			got := hex.EncodeToString(sum[:])
			if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				return fmt.Errorf("peer %s presented certificate %s, not the one it registered", m.ID, got)
			}
			return nil
		},
	}
}

// CertFingerprint returns the hex SHA-256 of a certificate's DER bytes, the
// form of Member.CertSHA256.
func CertFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
