package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	testHash  = "$argon2id$v=19$m=65536,t=3,p=2$Y29yZG9uLWV4YW1wbGUtcw$AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o"
	testHash2 = "$argon2id$v=19$m=65536,t=3,p=2$ZXhhbXBsZS1hcGktc2FsdA$//r18Ovm4dzX0s3Iw765tK+qpaCblpGMh4J9eHNuaWQ"
	// camSecret must never appear in any validation message.
	camSecret = "s3cret-Pa55"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// validConfig is a configuration that passes Validate; each table case
// breaks exactly one thing.
func validConfig(t *testing.T) *Config {
	t.Helper()
	dir := t.TempDir()
	c := Default()
	c.Auth.Users = []User{
		{Name: "alice", PasswordHash: testHash, Cameras: []string{"*"}, Admin: true},
		{Name: "bob", PasswordHash: testHash, Cameras: []string{"gate-*"}},
	}
	c.Auth.APIKeys = []APIKey{
		{Name: "vms-1", KeyHash: testHash2, Cameras: []string{"gate-*"}},
		{Name: "nvr-1", KeyFile: writeFile(t, dir, "nvr.hash", testHash2+"\n"), Cameras: []string{"platform-?"}},
	}
	c.Sanitize.AllowSEIUUIDs = []string{"5369676e-6564-2056-6964-656f2e2e2e30", "5369676E656420566964656F2E2E2E30"}
	c.Cameras = []Camera{
		{ID: "gate-north", Name: "Gate north", URL: "rtsp://10.20.0.12:554/Streaming/Channels/101", Username: "viewer", Password: camSecret, Transport: "auto"},
		{ID: "platform-1", URL: "rtsps://cam2.example/live", Username: "viewer", PasswordFile: writeFile(t, dir, "pw", camSecret+"\r\n"), Transport: "tcp"},
		{ID: "platform_2", URL: "rtsp://viewer:" + camSecret + "@10.20.0.14/x", Transport: "udp", OnDemand: true},
		{ID: "depot", URL: "rtsp://10.20.0.15/open", Record: true}, // no credentials at all
	}
	c.Recording = Recording{Path: filepath.Join(dir, "recordings"), Retain: "31d", MaxDiskGB: 100}
	return c
}

type tlsFiles struct{ cert, key, otherKey string }

func makeTLS(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cordon"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := func(k *ecdsa.PrivateKey) string {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b}))
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return tlsFiles{
		cert:     writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		key:      writeFile(t, dir, "key.pem", pemKey(key)),
		otherKey: writeFile(t, dir, "other.pem", pemKey(other)),
	}
}

func TestValidConfig(t *testing.T) {
	c := validConfig(t)
	if errs := c.Validate(); errs != nil {
		t.Fatalf("valid config rejected: %v", FieldErrors(errs))
	}
	// password_file read, trailing CRLF trimmed
	if s, err := c.Cameras[1].Secret(); err != nil || s != camSecret {
		t.Fatalf("password_file secret = %q, %v", s, err)
	}
	// key_file read, trailing newline trimmed
	if h, err := c.Auth.APIKeys[1].Hash(); err != nil || h != testHash2 {
		t.Fatalf("key_file hash = %q, %v", h, err)
	}
	if got := c.Auth.TTL(); got != 8*time.Hour {
		t.Fatalf("TTL = %v", got)
	}
	want := [16]byte{0x53, 0x69, 0x67, 0x6e, 0x65, 0x64, 0x20, 0x56, 0x69, 0x64, 0x65, 0x6f, 0x2e, 0x2e, 0x2e, 0x30}
	if got := c.Sanitize.SEIUUIDs(); len(got) != 2 || got[0] != want || got[1] != want {
		t.Fatalf("SEIUUIDs = %x", got)
	}
}

func TestValidTLS(t *testing.T) {
	c := validConfig(t)
	f := makeTLS(t)
	c.HTTP.TLSCert, c.HTTP.TLSKey = f.cert, f.key
	if errs := c.Validate(); errs != nil {
		t.Fatalf("valid TLS rejected: %v", FieldErrors(errs))
	}
}

func TestValidateTable(t *testing.T) {
	tf := makeTLS(t)
	missing := filepath.Join(t.TempDir(), "does-not-exist")
	cases := []struct {
		name  string
		mut   func(c *Config, dir string)
		field string
		msg   string // substring of the message
	}{
		// cameras
		{"camera id uppercase", func(c *Config, _ string) { c.Cameras[0].ID = "Gate" }, "cameras[0].id", "must match"},
		{"camera id leading dash", func(c *Config, _ string) { c.Cameras[1].ID = "-x" }, "cameras[1].id", "must match"},
		{"camera id too long", func(c *Config, _ string) { c.Cameras[0].ID = strings.Repeat("a", 65) }, "cameras[0].id", "must match"},
		{"camera id empty", func(c *Config, _ string) { c.Cameras[2].ID = "" }, "cameras[2].id", "must not be empty"},
		{"duplicate camera id", func(c *Config, _ string) { c.Cameras[3].ID = "gate-north" }, "cameras[3].id", "already used by cameras[0]"},
		{"url unparsable", func(c *Config, _ string) { c.Cameras[0].URL = "rtsp://10.0.0.1:port/" + camSecret }, "cameras[0].url", "not a valid URL"},
		{"url scheme http", func(c *Config, _ string) { c.Cameras[2].URL = "http://10.0.0.1/x" }, "cameras[2].url", "must be rtsp:// or rtsps://"},
		{"url no host", func(c *Config, _ string) { c.Cameras[3].URL = "rtsp:///stream" }, "cameras[3].url", "must name a host"},
		{"url missing", func(c *Config, _ string) { c.Cameras[3].URL = "" }, "cameras[3].url", "must be set"},
		{"url port zero", func(c *Config, _ string) { c.Cameras[3].URL = "rtsp://h:0/" }, "cameras[3].url", "port"},
		{"url userinfo and username", func(c *Config, _ string) { c.Cameras[2].Username = "viewer" }, "cameras[2].url", "use one"},
		{"url userinfo and password_file", func(c *Config, dir string) {
			c.Cameras[2].PasswordFile = writeFile(t, dir, "p", "x")
		}, "cameras[2].url", "use one"},
		{"url userinfo without password", func(c *Config, _ string) { c.Cameras[3].URL = "rtsp://admin@10.0.0.1/x" }, "cameras[3].url", "both a user name and a password"},
		{"transport", func(c *Config, _ string) { c.Cameras[0].Transport = "http" }, "cameras[0].transport", "auto, tcp or udp"},
		{"max bitrate", func(c *Config, _ string) { c.Cameras[0].MaxBitrateMbps = -1 }, "cameras[0].max_bitrate_mbps", "from 1 to 10000"},
		{"password and password_file", func(c *Config, dir string) {
			c.Cameras[0].PasswordFile = writeFile(t, dir, "p", "x")
		}, "cameras[0].password_file", "exclusive"},
		{"password_file unreadable", func(c *Config, _ string) { c.Cameras[1].PasswordFile = missing }, "cameras[1].password_file", "cannot read " + missing},
		{"password_file empty", func(c *Config, dir string) { c.Cameras[1].PasswordFile = writeFile(t, dir, "e", "\n") }, "cameras[1].password_file", "is empty"},
		{"username without password", func(c *Config, _ string) { c.Cameras[3].Username = "viewer" }, "cameras[3].password", "must be set"},
		{"password without username", func(c *Config, _ string) { c.Cameras[0].Username = "" }, "cameras[0].username", "must be set"},

		// recording
		{"record without recording.path", func(c *Config, _ string) { c.Recording.Path = "" }, "cameras[3].record", "needs recording.path"},
		{"retain not a duration", func(c *Config, _ string) { c.Recording.Retain = "a month" }, "recording.retain", "duration"},
		{"retain too short", func(c *Config, _ string) { c.Recording.Retain = "10m" }, "recording.retain", "between 1h and 3650d"},
		{"retain too long", func(c *Config, _ string) { c.Recording.Retain = "4000d" }, "recording.retain", "between 1h and 3650d"},
		{"negative quota", func(c *Config, _ string) { c.Recording.MaxDiskGB = -1 }, "recording.max_disk_gb", "must be 0"},
		{"recording path is a file", func(c *Config, dir string) { c.Recording.Path = writeFile(t, dir, "f", "x") }, "recording.path", "not a directory"},

		// users and api keys
		{"no principals", func(c *Config, _ string) { c.Auth.Users, c.Auth.APIKeys = nil, nil }, "auth.users", "nobody"},
		{"duplicate user", func(c *Config, _ string) { c.Auth.Users[1].Name = "alice" }, "auth.users[1].name", "already used by auth.users[0]"},
		{"duplicate user case-insensitive", func(c *Config, _ string) { c.Auth.Users[1].Name = "Alice" }, "auth.users[1].name", "already used by auth.users[0]"},
		{"duplicate api key", func(c *Config, _ string) { c.Auth.APIKeys[1].Name = "vms-1" }, "auth.api_keys[1].name", "already used by auth.api_keys[0]"},
		{"api key named like user", func(c *Config, _ string) { c.Auth.APIKeys[0].Name = "bob" }, "auth.api_keys[0].name", "already used by auth.users[1]"},
		{"user name empty", func(c *Config, _ string) { c.Auth.Users[0].Name = "" }, "auth.users[0].name", "must not be empty"},
		{"user name with colon", func(c *Config, _ string) { c.Auth.Users[0].Name = "a:b" }, "auth.users[0].name", "must match"},
		{"user bad glob", func(c *Config, _ string) { c.Auth.Users[1].Cameras = []string{"gate-*", "[gate"} }, "auth.users[1].cameras[1]", "glob"},
		{"user empty glob", func(c *Config, _ string) { c.Auth.Users[0].Cameras = []string{""} }, "auth.users[0].cameras[0]", "must not be empty"},
		{"api key bad glob", func(c *Config, _ string) { c.Auth.APIKeys[0].Cameras = []string{`gate\`} }, "auth.api_keys[0].cameras[0]", "glob"},
		{"password_hash missing", func(c *Config, _ string) { c.Auth.Users[0].PasswordHash = "" }, "auth.users[0].password_hash", "must be set"},
		{"password_hash plaintext", func(c *Config, _ string) { c.Auth.Users[0].PasswordHash = "hunter2" }, "auth.users[0].password_hash", "argon2id"},
		{"password_hash argon2i", func(c *Config, _ string) {
			c.Auth.Users[0].PasswordHash = strings.Replace(testHash, "argon2id", "argon2i", 1)
		}, "auth.users[0].password_hash", "argon2id"},
		{"password_hash wrong version", func(c *Config, _ string) {
			c.Auth.Users[0].PasswordHash = strings.Replace(testHash, "v=19", "v=16", 1)
		}, "auth.users[0].password_hash", "argon2id"},
		{"password_hash p=0", func(c *Config, _ string) {
			c.Auth.Users[1].PasswordHash = strings.Replace(testHash, "p=2", "p=0", 1)
		}, "auth.users[1].password_hash", "out of range"},
		{"password_hash short salt", func(c *Config, _ string) {
			c.Auth.Users[1].PasswordHash = strings.Replace(testHash, "Y29yZG9uLWV4YW1wbGUtcw", "YWJj", 1)
		}, "auth.users[1].password_hash", "salt"},
		{"password_hash short sum", func(c *Config, _ string) {
			c.Auth.Users[1].PasswordHash = "$argon2id$v=19$m=65536,t=3,p=2$Y29yZG9uLWV4YW1wbGUtcw$YWJj"
		}, "auth.users[1].password_hash", "hash must be"},
		{"key_hash malformed", func(c *Config, _ string) { c.Auth.APIKeys[0].KeyHash = "$argon2id$..." }, "auth.api_keys[0].key_hash", "argon2id"},
		{"key_hash and key_file", func(c *Config, _ string) { c.Auth.APIKeys[1].KeyHash = testHash2 }, "auth.api_keys[1].key_file", "exclusive"},
		{"key missing", func(c *Config, _ string) { c.Auth.APIKeys[0].KeyHash = "" }, "auth.api_keys[0].key_hash", "must be set"},
		{"key_file unreadable", func(c *Config, _ string) { c.Auth.APIKeys[1].KeyFile = missing }, "auth.api_keys[1].key_file", "cannot read"},
		{"key_file not a hash", func(c *Config, dir string) {
			c.Auth.APIKeys[1].KeyFile = writeFile(t, dir, "k", "plain-key\n")
		}, "auth.api_keys[1].key_file", "argon2id"},
		{"user rtsp_digest_ha1 not hex", func(c *Config, _ string) { c.Auth.Users[0].RTSPDigestHA1 = strings.Repeat("g", 32) }, "auth.users[0].rtsp_digest_ha1", "32 hex"},
		{"rtsp udp rtp without rtcp", func(c *Config, _ string) { c.RTSP.UDPRTCPListen = "" }, "rtsp.udp_rtp_listen", "go together"},
		{"rtsp udp rtp odd", func(c *Config, _ string) { c.RTSP.UDPRTPListen, c.RTSP.UDPRTCPListen = ":8001", ":8002" }, "rtsp.udp_rtp_listen", "even"},
		{"rtsp udp rtcp not rtp+1", func(c *Config, _ string) { c.RTSP.UDPRTCPListen = ":9001" }, "rtsp.udp_rtcp_listen", "+ 1"},
		{"rtsp udp rtp 0 alone", func(c *Config, _ string) { c.RTSP.UDPRTPListen, c.RTSP.UDPRTCPListen = ":0", ":1" }, "rtsp.udp_rtp_listen", "both ports 0"},
		{"rtsp udp bad address", func(c *Config, _ string) { c.RTSP.UDPRTPListen = "nope" }, "rtsp.udp_rtp_listen", "host:port"},
		{"api key rtsp_digest_ha1 short", func(c *Config, _ string) { c.Auth.APIKeys[1].RTSPDigestHA1 = "abcd" }, "auth.api_keys[1].rtsp_digest_ha1", "32 hex"},
		{"token_ttl garbage", func(c *Config, _ string) { c.Auth.TokenTTL = "eight hours" }, "auth.token_ttl", "duration"},
		{"token_ttl too short", func(c *Config, _ string) { c.Auth.TokenTTL = "30s" }, "auth.token_ttl", "between 1m and 7d"},
		{"token_ttl too long", func(c *Config, _ string) { c.Auth.TokenTTL = "7d1m" }, "auth.token_ttl", "between 1m and 7d"},
		{"token_ttl empty", func(c *Config, _ string) { c.Auth.TokenTTL = "" }, "auth.token_ttl", "duration"},

		// listeners
		{"http.listen no port", func(c *Config, _ string) { c.HTTP.Listen = "8080" }, "http.listen", "host:port"},
		{"http.listen empty", func(c *Config, _ string) { c.HTTP.Listen = "" }, "http.listen", "must not be empty"},
		{"rtsp.listen port range", func(c *Config, _ string) { c.RTSP.Listen = ":99999" }, "rtsp.listen", "port"},
		{"webrtc.udp_listen empty", func(c *Config, _ string) { c.WebRTC.UDPListen = "" }, "webrtc.udp_listen", "must not be empty"},
		{"webrtc.tcp_listen bad host", func(c *Config, _ string) { c.WebRTC.TCPListen = "bad host:8189" }, "webrtc.tcp_listen", "host"},
		{"metrics.listen bad", func(c *Config, _ string) { c.Metrics.Listen = "127.0.0.1" }, "metrics.listen", "host:port"},
		{"pprof without metrics", func(c *Config, _ string) { c.Metrics.Listen, c.Metrics.PProf = "", true }, "metrics.pprof", "needs metrics.listen"},
		{"udp_gso unknown", func(c *Config, _ string) { c.WebRTC.UDPGSO = "fast" }, "webrtc.udp_gso", `"auto" or "off"`},
		{"send burst too small", func(c *Config, _ string) { c.WebRTC.SendBurstPackets = 4 }, "webrtc.send_burst_packets", "8..512"},
		{"send rate too low", func(c *Config, _ string) { c.WebRTC.SendRatePackets = 100 }, "webrtc.send_rate_packets", "500..100000"},
		{"dns_listen bad", func(c *Config, _ string) { c.CameraNetwork.DNSListen = "10.20.0.1" }, "camera_network.dns_listen", "host:port"},
		{"ntp_listen bad", func(c *Config, _ string) { c.CameraNetwork.NTPListen = "10.20.0.1:ntp" }, "camera_network.ntp_listen", "port"},
		{"tcp collision", func(c *Config, _ string) { c.Metrics.Listen = ":8080" }, "metrics.listen", "same TCP address as http.listen"},

		// tls
		{"tls cert without key", func(c *Config, _ string) { c.HTTP.TLSCert = tf.cert }, "http.tls_key", "must be set"},
		{"tls key without cert", func(c *Config, _ string) { c.HTTP.TLSKey = tf.key }, "http.tls_cert", "must be set"},
		{"tls cert unreadable", func(c *Config, _ string) { c.HTTP.TLSCert, c.HTTP.TLSKey = missing, tf.key }, "http.tls_cert", "cannot read"},
		{"tls key unreadable", func(c *Config, _ string) { c.HTTP.TLSCert, c.HTTP.TLSKey = tf.cert, missing }, "http.tls_key", "cannot read"},
		{"tls key mismatch", func(c *Config, _ string) { c.HTTP.TLSCert, c.HTTP.TLSKey = tf.cert, tf.otherKey }, "http.tls_cert", "matching"},

		// cors, webrtc
		{"cors star", func(c *Config, _ string) { c.HTTP.CORSOrigins = []string{"*"} }, "http.cors_origins[0]", "not allowed"},
		{"cors path", func(c *Config, _ string) {
			c.HTTP.CORSOrigins = []string{"https://ok.example", "https://wall.example/x"}
		}, "http.cors_origins[1]", "origin"},
		{"host_ips", func(c *Config, _ string) { c.WebRTC.HostIPs = []string{"10.0.0.1", "ten"} }, "webrtc.host_ips[1]", "IP"},
		{"ice server url", func(c *Config, _ string) {
			c.WebRTC.ICEServers = []ICEServer{{URLs: []string{"stun:ok:3478", "http://x"}}}
		}, "webrtc.ice_servers[0].urls[1]", "stun:"},
		{"ice server no urls", func(c *Config, _ string) { c.WebRTC.ICEServers = []ICEServer{{}} }, "webrtc.ice_servers[0].urls", "at least one"},

		// the rest
		{"sei uuid bad", func(c *Config, _ string) { c.Sanitize.AllowSEIUUIDs = []string{"5369676e-6564-2056-6964"} }, "sanitize.allow_sei_uuids[0]", "UUID"},
		{"sei uuid non-hex", func(c *Config, _ string) {
			c.Sanitize.AllowSEIUUIDs = []string{"5369676e-6564-2056-6964-656f2e2e2e30", "zz69676e656420566964656f2e2e2e30"}
		}, "sanitize.allow_sei_uuids[1]", "UUID"},
		{"state_dir empty", func(c *Config, _ string) { c.StateDir = " " }, "state_dir", "must not be empty"},
		{"audit path empty", func(c *Config, _ string) { c.Audit.Path = "" }, "audit.path", "must not be empty"},
		{"audit max size negative", func(c *Config, _ string) { c.Audit.MaxSizeMB = -1 }, "audit.max_size_mb", "0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			tc.mut(c, t.TempDir())
			errs := c.Validate()
			if len(errs) != 1 {
				t.Fatalf("want exactly 1 error for %s, got %d: %v", tc.field, len(errs), FieldErrors(errs))
			}
			if errs[0].Field != tc.field {
				t.Errorf("field = %q, want %q (%v)", errs[0].Field, tc.field, errs[0])
			}
			if !strings.Contains(errs[0].Msg, tc.msg) {
				t.Errorf("msg = %q, want it to contain %q", errs[0].Msg, tc.msg)
			}
			if want := tc.field + ": " + errs[0].Msg; errs[0].Error() != want {
				t.Errorf("Error() = %q, want %q", errs[0].Error(), want)
			}
			if strings.Contains(errs[0].Error(), camSecret) {
				t.Errorf("error leaks the camera secret: %q", errs[0].Error())
			}
		})
	}
}

// Both RTSP UDP ports 0: a free even/odd pair chosen at start-up (tests,
// several gateways on one host).
func TestValidateEphemeralRTSPUDP(t *testing.T) {
	c := validConfig(t)
	c.RTSP.UDPRTPListen, c.RTSP.UDPRTCPListen = "127.0.0.1:0", "127.0.0.1:0"
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("ephemeral UDP pair: %v", errs)
	}
}

func TestValidateCollectsAll(t *testing.T) {
	c := validConfig(t)
	c.Cameras[0].ID = "BAD"
	c.Cameras[1].URL = "http://x/"
	c.Cameras[2].Transport = "quic"
	c.Auth.TokenTTL = "1s"
	c.StateDir = ""
	errs := c.Validate()
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	want := []string{"state_dir", "auth.token_ttl", "cameras[0].id", "cameras[1].url", "cameras[2].transport"}
	if !slices.Equal(fields, want) {
		t.Fatalf("fields = %v, want %v", fields, want)
	}
	if got := FieldErrors(errs).Error(); strings.Count(got, "\n") != len(want)-1 {
		t.Fatalf("FieldErrors.Error() is not one line per problem: %q", got)
	}
}

func TestValidateNeverPanics(t *testing.T) {
	var nilCfg *Config
	if errs := nilCfg.Validate(); len(errs) != 1 {
		t.Fatalf("nil config: %v", errs)
	}
	errs := (&Config{}).Validate()
	if len(errs) == 0 {
		t.Fatal("zero config accepted")
	}
	c := &Config{Cameras: make([]Camera, 3), Auth: Auth{Users: make([]User, 2), APIKeys: make([]APIKey, 2)}}
	if len(c.Validate()) == 0 {
		t.Fatal("empty entries accepted")
	}
}

func TestEmptyGlobListDeniesAll(t *testing.T) {
	c := validConfig(t)
	c.Auth.Users[1].Cameras = nil // valid: deny by default
	if errs := c.Validate(); errs != nil {
		t.Fatalf("empty camera list rejected: %v", FieldErrors(errs))
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1m": time.Minute, "8h": 8 * time.Hour, "7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, " 30m ": 30 * time.Minute,
	} {
		if got, err := ParseTTL(in); err != nil || got != want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "59s", "8d", "-1h", "d", "1x", "1d-1h"} {
		if _, err := ParseTTL(in); err == nil {
			t.Errorf("ParseTTL(%q) accepted", in)
		}
	}
}

func TestPullURL(t *testing.T) {
	c := validConfig(t)
	if errs := c.Validate(); errs != nil {
		t.Fatal(FieldErrors(errs))
	}
	for i, want := range []string{
		"rtsp://viewer:" + camSecret + "@10.20.0.12:554/Streaming/Channels/101",
		"rtsps://viewer:" + camSecret + "@cam2.example/live",
		"rtsp://viewer:" + camSecret + "@10.20.0.14/x",
		"rtsp://10.20.0.15/open",
	} {
		u, err := c.Cameras[i].PullURL()
		if err != nil {
			t.Fatalf("camera %d: %v", i, err)
		}
		if u.String() != want {
			t.Errorf("camera %d: PullURL = %q, want %q", i, u, want)
		}
		if s := c.Cameras[i].SafeURL(); strings.Contains(s, camSecret) || strings.Contains(s, "viewer") {
			t.Errorf("camera %d: SafeURL leaks credentials: %q", i, s)
		}
	}
	// A password with URL-special characters survives the round trip.
	cam := Camera{ID: "x", URL: "rtsp://h/s", Username: "u", Password: "p@ss:w/rd?"}
	u, err := cam.PullURL()
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := u.User.Password(); p != "p@ss:w/rd?" {
		t.Fatalf("password = %q", p)
	}
}

func TestCameraHost(t *testing.T) {
	for raw, want := range map[string]string{
		"rtsp://u:p@10.20.0.12:554/x": "10.20.0.12",
		"rtsp://[fd00::5]:554/x":      "fd00::5",
		"rtsps://cam.example/x":       "cam.example",
		"rtsp://h:port/":              "",
	} {
		c := Camera{URL: raw}
		if got := c.Host(); got != want {
			t.Errorf("Host(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestAsFieldErrors(t *testing.T) {
	if AsFieldErrors(nil) != nil {
		t.Fatal("nil error gives problems")
	}
	fe := FieldErrors{{Field: "a", Msg: "b"}, {Field: "c", Msg: "d"}}
	if got := AsFieldErrors(error(fe)); len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	if got := AsFieldErrors(os.ErrNotExist); len(got) != 1 || got[0].Error() != os.ErrNotExist.Error() {
		t.Fatalf("got %v", got)
	}
}

// ParseUUID is the one UUID parser (sanitize.allow_sei_uuids).
func TestParseUUID(t *testing.T) {
	axis := [16]byte{0x53, 0x69, 0x67, 0x6e, 0x65, 0x64, 0x20, 0x56, 0x69, 0x64, 0x65, 0x6f, 0x2e, 0x2e, 0x2e, 0x30}
	for _, ok := range []string{"5369676e-6564-2056-6964-656f2e2e2e30", "5369676E656420566964656F2E2E2E30"} {
		if u, err := ParseUUID(ok); err != nil || u != axis {
			t.Fatalf("%q: %x %v", ok, u, err)
		}
	}
	for _, bad := range []string{"", "xyz", " 5369676E65642056696465 6f2e2e2e30", "5369676e-6564-2056-6964-656f2e2e2e3",
		"5369676e-6564-2056-6964-656f2e2e2e3g", "5369676e6564-2056-6964-656f2e2e2e30-"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
