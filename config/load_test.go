package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadFullRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pwFile := writeFile(t, dir, "cam.pw", camSecret+"\n")
	keyFile := writeFile(t, dir, "key.hash", testHash2+"\n")
	yaml := `
http:
  listen: "127.0.0.1:8443"
  tls_cert: ""
  tls_key: ""
  cors_origins: ["https://wall.example:8443"]
rtsp:
  listen: ""
  allow_basic_without_tls: true
webrtc:
  udp_listen: ":50000"
  tcp_listen: ":50001"
  host_ips: ["192.0.2.7"]
  ice_servers:
    - "stun:stun.example:3478"
    - urls: ["turn:turn.example:3478?transport=tcp"]
      username: "turnuser"
      credential: "turnpass"
  viewer_networks: ["10.50.0.0/16"]
metrics:
  listen: ""
camera_network:
  dns_listen: "10.20.0.1:53"
  ntp_listen: "10.20.0.1:123"
  harden_interval: "12h"
state_dir: "/var/lib/cordon"
audit:
  path: "/var/log/cordon/audit.log"
  max_size_mb: 128
  keep_files: 10
  forward: "tcp://127.0.0.1:514"
auth:
  token_ttl: "12h"
  lockout:
    threshold: 10
  roles:
    - name: "operator"
      cameras: ["gate-*"]
      rights: ["view", "ptz"]
      ptz_priority: 200
  users:
    - name: "alice"
      password_hash: "` + testHash + `"
      cameras: ["*"]
      roles: ["operator"]
      admin: true
      rtsp_digest_ha1: "0123456789abcdef0123456789ABCDEF"
  api_keys:
    - name: "vms-1"
      key_file: "` + keyFile + `"
      cameras: ["gate-*"]
limits:
  http: {per_address: 32, total: 512}
  idle_timeout: "5m"
sanitize:
  allow_sei_uuids: ["5369676e-6564-2056-6964-656f2e2e2e30"]
recording:
  path: "` + dir + `/rec"
  retain: "14d"
  max_disk_gb: 500
cameras:
  - id: "gate-north"
    name: "Gate north"
    url: "rtsp://10.20.0.12:554/Streaming/Channels/101"
    username: "viewer"
    password_file: "` + pwFile + `"
    transport: "tcp"
    on_demand: true
    record: true
    admin_url: "https://10.20.0.12:8443"
    vendor: "hikvision"
  - id: "gate-south"
    url: "rtsp://10.20.0.13/live"
`
	path := writeFile(t, dir, "cordon.yaml", yaml)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		HTTP: HTTP{Listen: "127.0.0.1:8443", CORSOrigins: []string{"https://wall.example:8443"}},
		RTSP: RTSP{Listen: "", AllowBasicWithoutTLS: true, UDPRTPListen: ":8000", UDPRTCPListen: ":8001"},
		WebRTC: WebRTC{UDPListen: ":50000", TCPListen: ":50001", HostIPs: []string{"192.0.2.7"}, ICEServers: []ICEServer{
			{URLs: []string{"stun:stun.example:3478"}},
			{URLs: []string{"turn:turn.example:3478?transport=tcp"}, Username: "turnuser", Credential: "turnpass"},
		}, ViewerNetworks: []string{"10.50.0.0/16"}, MaxRemoteCandidates: 16, UDPGSO: "auto", SendBurstPackets: 48, SendRatePackets: 2600},
		Metrics:       Metrics{Listen: ""},
		CameraNetwork: CameraNetwork{DNSListen: "10.20.0.1:53", NTPListen: "10.20.0.1:123", HardenInterval: "12h"},
		StateDir:      "/var/lib/cordon",
		Audit:         Audit{Path: "/var/log/cordon/audit.log", MaxSizeMB: 128, KeepFiles: 10, Forward: "tcp://127.0.0.1:514"},
		Auth: Auth{TokenTTL: "12h",
			Lockout: Lockout{Threshold: 10, Base: "1s", Max: "15m", Decay: "30m"},
			Roles:   []Role{{Name: "operator", Cameras: []string{"gate-*"}, Rights: []string{"view", "ptz"}, PTZPriority: 200}},
			Users:   []User{{Name: "alice", PasswordHash: testHash, Cameras: []string{"*"}, Roles: []string{"operator"}, Admin: true, RTSPDigestHA1: "0123456789abcdef0123456789ABCDEF"}},
			APIKeys: []APIKey{{Name: "vms-1", KeyFile: keyFile, Cameras: []string{"gate-*"}}},
			OIDC:    defaultOIDC(),
			LDAP:    defaultLDAP(),
		},
		Limits: Limits{HTTP: ConnLimit{PerAddress: 32, Total: 512}, RTSP: ConnLimit{PerAddress: 128, Total: 1024},
			ICETCP: ConnLimit{PerAddress: 256, Total: 1024}, HeaderTimeout: "10s", IdleTimeout: "5m", Argon2Queue: 8},
		Cluster:   Cluster{EtcdEndpoints: []string{}, LeaseTTL: "5s"},
		Sanitize:  Sanitize{AllowSEIUUIDs: []string{"5369676e-6564-2056-6964-656f2e2e2e30"}},
		Recording: Recording{Path: dir + "/rec", Retain: "14d", MaxDiskGB: 500},
		Cameras: []Camera{
			{ID: "gate-north", Name: "Gate north", URL: "rtsp://10.20.0.12:554/Streaming/Channels/101", Username: "viewer", PasswordFile: pwFile, Transport: "tcp", OnDemand: true, Record: true,
				AdminURL: "https://10.20.0.12:8443", Vendor: "hikvision"},
			{ID: "gate-south", Name: "gate-south", URL: "rtsp://10.20.0.13/live", Transport: "auto", Vendor: "auto"},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("loaded:\n%+v\nwant:\n%+v", cfg, want)
	}
	if errs := cfg.Validate(); errs != nil {
		t.Fatalf("validate: %v", FieldErrors(errs))
	}
	if s, _ := cfg.Cameras[0].Secret(); s != camSecret {
		t.Fatalf("password_file secret = %q", s)
	}
	if h, _ := cfg.Auth.APIKeys[0].Hash(); h != testHash2 {
		t.Fatalf("key_file hash = %q", h)
	}
	if cfg.Auth.TTL().Hours() != 12 {
		t.Fatalf("TTL = %v", cfg.Auth.TTL())
	}
	if cfg.Recording.RetainDuration() != 14*24*time.Hour || cfg.Recording.MaxDiskBytes() != 500_000_000_000 {
		t.Fatalf("recording %v %v", cfg.Recording.RetainDuration(), cfg.Recording.MaxDiskBytes())
	}
}

func TestLoadDefaults(t *testing.T) {
	path := writeFile(t, t.TempDir(), "c.yaml", "cameras: []\n")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("defaults:\n%+v\nwant\n%+v", cfg, Default())
	}
	noFile, err := Load("")
	if err != nil || !reflect.DeepEqual(noFile, Default()) {
		t.Fatalf("Load(\"\") = %+v, %v", noFile, err)
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	path := writeFile(t, t.TempDir(), "c.yaml", `
http:
  listen: ":8080"
  lissten: ":9"
bogus: 1
webrtc:
  ice_servers: ["stun:a:3478", {urls: ["turn:b"], extra: 1}]
auth:
  users:
    - name: alice
      password_hash: x
      admn: true
cameras:
  - id: a
    url: rtsp://h/
  - id: b
    urll: rtsp://h/
`)
	_, err := Load(path)
	var got []string
	for _, fe := range AsFieldErrors(err) {
		got = append(got, fe.Error())
	}
	want := []string{
		"auth.users[0].admn: unknown key",
		"bogus: unknown key",
		"cameras[1].urll: unknown key",
		"http.lissten: unknown key",
		"webrtc.ice_servers[1].extra: unknown key",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestLoadWrongTypesDoNotEchoValues(t *testing.T) {
	path := writeFile(t, t.TempDir(), "c.yaml", `
audit:
  max_size_mb: "`+camSecret+`"
cameras:
  - id: a
    url: rtsp://h/
    on_demand: "`+camSecret+`"
    password: [1, 2]
`)
	_, err := Load(path)
	if err == nil {
		t.Fatal("wrong types accepted")
	}
	if strings.Contains(err.Error(), camSecret) {
		t.Fatalf("error echoes a value: %v", err)
	}
	var got []string
	for _, fe := range AsFieldErrors(err) {
		got = append(got, fe.Error())
	}
	want := []string{
		"audit.max_size_mb: must be an integer",
		"cameras[0].on_demand: must be true or false",
		"cameras[0].password: must be a string",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir + "/missing.yaml"); err == nil || AsFieldErrors(err)[0].Field != dir+"/missing.yaml" {
		t.Fatalf("missing file: %v", err)
	}
	bad := writeFile(t, dir, "bad.yaml", "http:\n  listen: [\n")
	_, err := Load(bad)
	if err == nil || !strings.Contains(err.Error(), "invalid YAML at line ") {
		t.Fatalf("bad yaml: %v", err)
	}
	dup := writeFile(t, dir, "dup.yaml", "state_dir: a\nstate_dir: b\n")
	if _, err := Load(dup); err == nil || !strings.HasSuffix(err.Error(), "invalid YAML at line 2: a key is defined twice") {
		t.Fatalf("duplicate YAML key: %v", err)
	}
	// parser messages quote document content; none of it is passed on
	anchor := writeFile(t, dir, "anchor.yaml", "state_dir: *"+camSecret+"\n")
	if _, err := Load(anchor); err == nil || strings.Contains(err.Error(), camSecret) {
		t.Fatalf("yaml error echoes content: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	path := writeFile(t, t.TempDir(), "c.yaml", `
rtsp:
  listen: ":8554"
auth:
  token_ttl: "8h"
`)
	t.Setenv("CORDON_HTTP_LISTEN", ":9000")                   // key absent from the file
	t.Setenv("CORDON_RTSP_LISTEN", "")                        // set but empty: turns it off
	t.Setenv("CORDON_AUTH_TOKEN_TTL", "12h")                  // key present in the file
	t.Setenv("CORDON_AUDIT_MAX_SIZE_MB", "128")               // int
	t.Setenv("CORDON_WEBRTC_HOST_IPS", "10.0.0.5, 192.0.2.7") // list
	t.Setenv("CORDON_WEBRTC_ICE_SERVERS", "stun:a:3478,stun:b:3478")
	t.Setenv("CORDON_SANITIZE_ALLOW_SEI_UUIDS", "5369676e656420566964656f2e2e2e30")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != ":9000" || cfg.RTSP.Listen != "" || cfg.Auth.TokenTTL != "12h" || cfg.Audit.MaxSizeMB != 128 {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	if !slices.Equal(cfg.WebRTC.HostIPs, []string{"10.0.0.5", "192.0.2.7"}) {
		t.Fatalf("host_ips = %q", cfg.WebRTC.HostIPs)
	}
	if !reflect.DeepEqual(cfg.WebRTC.ICEServers, []ICEServer{{URLs: []string{"stun:a:3478"}}, {URLs: []string{"stun:b:3478"}}}) {
		t.Fatalf("ice_servers = %+v", cfg.WebRTC.ICEServers)
	}
	if len(cfg.Sanitize.SEIUUIDs()) != 1 {
		t.Fatalf("sei uuids = %q", cfg.Sanitize.AllowSEIUUIDs)
	}
}

func TestEnvOverrideBadType(t *testing.T) {
	t.Setenv("CORDON_AUDIT_MAX_SIZE_MB", "lots")
	_, err := Load("")
	if fes := AsFieldErrors(err); len(fes) != 1 || fes[0].Error() != "audit.max_size_mb: must be an integer" {
		t.Fatalf("got %v", err)
	}
}

// TestEveryKeyHasEnvOverride sets CORDON_<KEY> for every key of the schema
// and checks that each one reaches its field.
func TestEveryKeyHasEnvOverride(t *testing.T) {
	keys := Keys()
	want := []string{
		"http.listen", "http.tls_cert", "http.tls_key", "http.cors_origins", "rtsp.listen", "rtsp.allow_basic_without_tls",
		"rtsp.udp_rtp_listen", "rtsp.udp_rtcp_listen",
		"webrtc.udp_listen", "webrtc.tcp_listen", "webrtc.host_ips", "webrtc.ice_servers",
		"metrics.listen", "camera_network.dns_listen", "camera_network.ntp_listen", "camera_network.harden_interval", "state_dir",
		"audit.path", "audit.max_size_mb", "auth.token_ttl", "sanitize.allow_sei_uuids",
		"webrtc.viewer_networks", "webrtc.max_remote_candidates", "webrtc.udp_gso", "webrtc.send_burst_packets", "webrtc.send_rate_packets", "metrics.pprof",
		"audit.keep_files", "audit.keep_mb", "audit.forward", "audit.forward_ca_file", "audit.forward_cert_file", "audit.forward_key_file",
		"auth.lockout.threshold", "auth.lockout.base", "auth.lockout.max", "auth.lockout.decay",
		"limits.http.per_address", "limits.http.total", "limits.rtsp.per_address", "limits.rtsp.total",
		"limits.ice_tcp.per_address", "limits.ice_tcp.total", "limits.header_timeout", "limits.idle_timeout",
		"limits.argon2_concurrent", "limits.argon2_queue",
		"auth.oidc.issuer", "auth.oidc.client_id", "auth.oidc.client_secret_file", "auth.oidc.redirect_url",
		"auth.oidc.ca_file", "auth.oidc.groups_claim", "auth.oidc.username_claim", "auth.oidc.scopes",
		"auth.oidc.display_name", "auth.oidc.timeout",
		"auth.ldap.url", "auth.ldap.ca_file", "auth.ldap.bind_dn", "auth.ldap.bind_password_file",
		"auth.ldap.user_base_dn", "auth.ldap.user_filter", "auth.ldap.username_attribute", "auth.ldap.group_base_dn",
		"auth.ldap.group_filter", "auth.ldap.timeout", "auth.ldap.recheck_interval", "auth.ldap.pool_size",
		"onvif.listen", "onvif.discovery",
		"recording.path", "recording.retain", "recording.max_disk_gb",
		"cluster.etcd_endpoints", "cluster.etcd_tls.ca", "cluster.etcd_tls.cert", "cluster.etcd_tls.key",
		"cluster.node_id", "cluster.advertise", "cluster.peer_key_file", "cluster.lease_ttl",
	}
	for _, must := range want {
		if !slices.Contains(keys, must) {
			t.Errorf("key %s has no env override", must)
		}
	}
	if len(keys) != len(want) {
		t.Errorf("Keys() = %v: a new key? add it above", keys)
	}
	if EnvName("camera_network.dns_listen") != "CORDON_CAMERA_NETWORK_DNS_LISTEN" {
		t.Fatal(EnvName("camera_network.dns_listen"))
	}
	for _, key := range keys {
		f := fieldByKey(reflect.TypeFor[Config](), key)
		if f == nil {
			t.Fatalf("no field for %s", key)
		}
		switch f.Kind() {
		case reflect.String:
			t.Setenv(EnvName(key), "env-"+key)
		case reflect.Int:
			t.Setenv(EnvName(key), "4242")
		case reflect.Bool:
			t.Setenv(EnvName(key), "true")
		case reflect.Slice:
			t.Setenv(EnvName(key), "stun:env-"+key)
		default:
			t.Fatalf("%s: unhandled kind %s", key, f.Kind())
		}
	}
	cfg, err := Load(writeFile(t, t.TempDir(), "c.yaml", "http:\n  listen: ':1'\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		v := valueByKey(reflect.ValueOf(*cfg), key)
		var got string
		switch v.Kind() {
		case reflect.String:
			got = v.String()
			if got != "env-"+key {
				t.Errorf("%s = %q, env not applied", key, got)
			}
		case reflect.Bool:
			if !v.Bool() {
				t.Errorf("%s = false, env not applied", key)
			}
		case reflect.Int:
			if v.Int() != 4242 {
				t.Errorf("%s = %d, env not applied", key, v.Int())
			}
		case reflect.Slice:
			if v.Len() != 1 {
				t.Errorf("%s: len %d, env not applied", key, v.Len())
			}
		}
	}
}

func fieldByKey(t reflect.Type, key string) reflect.Type {
	for _, part := range strings.Split(key, ".") {
		found := false
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("mapstructure") == part {
				t, found = t.Field(i).Type, true
				break
			}
		}
		if !found {
			return nil
		}
	}
	return t
}

func valueByKey(v reflect.Value, key string) reflect.Value {
	for _, part := range strings.Split(key, ".") {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("mapstructure") == part {
				v = v.Field(i)
				break
			}
		}
	}
	return v
}

func TestLoadAndValidate(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "c.yaml", `
auth:
  users: [{name: alice, password_hash: "`+testHash+`", cameras: ["["]}]
cameras:
  - {id: a, url: "http://h/"}
`)
	cfg, err := LoadAndValidate(path)
	if cfg != nil {
		t.Fatal("invalid config returned")
	}
	var got []string
	for _, fe := range AsFieldErrors(err) {
		got = append(got, fe.Error())
	}
	want := []string{
		"auth.users[0].cameras[0]: is not a valid glob pattern (path.Match syntax)",
		"cameras[0].url: must be rtsp:// or rtsps://",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestExampleConfig(t *testing.T) {
	cfg, err := LoadAndValidate("cordon.example.yaml")
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if len(cfg.Cameras) == 0 || len(cfg.Auth.Users) == 0 || len(cfg.Auth.APIKeys) == 0 {
		t.Fatalf("example config is missing sections: %+v", cfg)
	}
	b, err := os.ReadFile("cordon.example.yaml")
	if err != nil || ExampleYAML() != string(b) {
		t.Fatal("ExampleYAML differs from cordon.example.yaml")
	}
	// Every key of the schema appears in the example.
	for _, key := range Keys() {
		last := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(ExampleYAML(), last+":") {
			t.Errorf("example config does not show %s", key)
		}
	}
	for _, k := range []string{"password_file", "key_file", "on_demand", "admin"} {
		if !strings.Contains(ExampleYAML(), k) {
			t.Errorf("example config does not mention %s", k)
		}
	}
}

func TestLoadNullSections(t *testing.T) {
	cfg, err := Load(writeFile(t, t.TempDir(), "c.yaml", "http:\nauth: null\ncameras:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != ":8080" || cfg.Auth.TokenTTL != "8h" || cfg.Cameras == nil {
		t.Fatalf("null sections lost defaults: %+v", cfg)
	}
}
