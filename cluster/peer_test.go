package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5" //nolint:gosec // checking an RTSP Digest HA1
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestPeerCredentials(t *testing.T) {
	if _, err := NewPeerKey(testKey[:31]); err == nil {
		t.Fatal("a 31-byte peer key was accepted")
	}
	k, err := NewPeerKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	user, pass := k.Credential("node-a")
	if user != "peer/node-a" || len(pass) != 43 || strings.Contains(pass, string(testKey)) {
		t.Fatalf("credential %q %q", user, pass)
	}
	if node, ok := k.Verify(user, pass); !ok || node != "node-a" {
		t.Fatalf("Verify(own credential) = %q, %v", node, ok)
	}
	// Same key on another node: same credential (nodes share the key).
	k2, _ := NewPeerKey(append([]byte(nil), testKey...))
	if _, p2 := k2.Credential("node-a"); p2 != pass {
		t.Fatal("derivation is not deterministic")
	}
	other, _ := NewPeerKey(bytes.Repeat([]byte("x"), 32))
	_, otherPass := other.Credential("node-a")
	_, bPass := k.Credential("node-b")
	for _, c := range []struct{ user, pass string }{
		{user, otherPass},             // another cluster's key
		{"peer/node-b", pass},         // a's password for b
		{user, bPass},                 // b's password for a
		{user, pass[:42]},             // truncated
		{"node-a", pass},              // not a peer name
		{"peer/", pass},               // empty node
		{"peer/a/b", pass},            // bad node id
		{user, strings.ToUpper(pass)}, // altered
	} {
		if _, ok := k.Verify(c.user, c.pass); ok {
			t.Errorf("Verify(%q, %q) accepted", c.user, c.pass)
		}
	}
	if !IsPeerUser(user) || IsPeerUser("alice") {
		t.Error("IsPeerUser")
	}
	// Digest: HA1 = MD5(user:realm:password).
	ha1, ok := k.DigestHA1(user, "cordon")
	sum := md5.Sum([]byte(user + ":cordon:" + pass)) //nolint:gosec // Digest
	if !ok || ha1 != hex.EncodeToString(sum[:]) {
		t.Fatalf("DigestHA1 = %q, %v", ha1, ok)
	}
	if _, ok := k.DigestHA1("alice", "cordon"); ok {
		t.Error("DigestHA1 for a non-peer user")
	}
	// The URL a relaying node pulls with.
	u, err := k.PullURL("node-b", Member{ID: "node-a", Advertise: "10.0.0.11", RTSPPort: 8322, RTSPS: true}, "gate")
	if err != nil || u.Scheme != "rtsps" || u.Host != "10.0.0.11:8322" || u.Path != "/gate" || u.User.Username() != "peer/node-b" {
		t.Fatalf("PullURL = %v, %v", u, err)
	}
	if p, _ := u.User.Password(); p != bPass {
		t.Fatal("PullURL carries another credential")
	}
	// Purposes do not share keys.
	if bytes.Equal(k.Derive(LabelTokenSigning), k.Derive(LabelRTSPPeer)) || len(k.Derive(LabelTokenSigning)) != 32 {
		t.Error("derived keys are not separated by label")
	}
}

// TestMemberTLSPinsCertificate: a relaying node accepts the owner's
// self-signed certificate it registered, and nothing else.
func TestMemberTLSPinsCertificate(t *testing.T) {
	good, goodDER := selfSigned(t)
	bad, _ := selfSigned(t)
	m := Member{ID: "owner", Advertise: "127.0.0.1", RTSPPort: 8322, RTSPS: true, CertSHA256: CertFingerprint(goodDER)}
	if got := m.RTSPURL("gate"); got != "rtsps://127.0.0.1:8322/gate" {
		t.Fatalf("RTSPURL = %s", got)
	}
	if err := handshake(t, good, m.TLSConfig()); err != nil {
		t.Fatalf("the registered certificate was refused: %v", err)
	}
	if err := handshake(t, bad, m.TLSConfig()); err == nil || !strings.Contains(err.Error(), "not the one it registered") {
		t.Fatalf("another certificate: %v", err)
	}
	m.CertSHA256 = ""
	if err := handshake(t, good, m.TLSConfig()); err == nil {
		t.Fatal("no registered fingerprint, yet the handshake passed")
	}
	if (Member{RTSPPort: 8554, Advertise: "::1"}).TLSConfig() != nil {
		t.Fatal("plain RTSP member has a TLS config")
	}
	if got := (Member{RTSPPort: 8554, Advertise: "::1"}).RTSPURL("x"); got != "rtsp://[::1]:8554/x" {
		t.Fatalf("RTSPURL = %s", got)
	}
}

func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der
}

// handshake runs a TLS handshake over a real loopback TCP connection.
func handshake(t *testing.T, cert tls.Certificate, client *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		_ = c.Close()
	}
	<-done
	return err
}
