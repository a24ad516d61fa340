package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// EnvPrefix is the prefix of every environment override.
const EnvPrefix = "CORDON"

// Config is the whole configuration file.
type Config struct {
	HTTP          HTTP          `mapstructure:"http"`
	RTSP          RTSP          `mapstructure:"rtsp"`
	WebRTC        WebRTC        `mapstructure:"webrtc"`
	Metrics       Metrics       `mapstructure:"metrics"`
	CameraNetwork CameraNetwork `mapstructure:"camera_network"`
	StateDir      string        `mapstructure:"state_dir"`
	Audit         Audit         `mapstructure:"audit"`
	Auth          Auth          `mapstructure:"auth"`
	Limits        Limits        `mapstructure:"limits"`
	Cluster       Cluster       `mapstructure:"cluster"`
	Sanitize      Sanitize      `mapstructure:"sanitize"`
	Recording     Recording     `mapstructure:"recording"`
	ONVIF         ONVIF         `mapstructure:"onvif"` // config/onvif.go
	Cameras       []Camera      `mapstructure:"cameras"`
}

// HTTP is the viewer page, login, API and WHEP listener.
type HTTP struct {
	Listen      string   `mapstructure:"listen"`
	TLSCert     string   `mapstructure:"tls_cert"`
	TLSKey      string   `mapstructure:"tls_key"`
	CORSOrigins []string `mapstructure:"cors_origins"`
}

// RTSP is the authenticated RTSP re-serve. Listen "" = off.
// AllowBasicWithoutTLS permits RTSP Basic auth (the password in clear text)
// on a non-loopback listener without TLS; default false (Digest only).
// UDPRTPListen and UDPRTCPListen are the UDP unicast ports (RTP even,
// RTCP = RTP+1); both "" = TCP interleaved only.
type RTSP struct {
	Listen               string `mapstructure:"listen"`
	AllowBasicWithoutTLS bool   `mapstructure:"allow_basic_without_tls"`
	UDPRTPListen         string `mapstructure:"udp_rtp_listen"`
	UDPRTCPListen        string `mapstructure:"udp_rtcp_listen"`
}

// WebRTC is the ICE/media side of WHEP.
type WebRTC struct {
	UDPListen  string      `mapstructure:"udp_listen"`
	TCPListen  string      `mapstructure:"tcp_listen"`
	HostIPs    []string    `mapstructure:"host_ips"`
	ICEServers []ICEServer `mapstructure:"ice_servers"`
	// ViewerNetworks (CIDRs): remote ICE candidates must be in one; empty
	// = any address except loopback, link-local, multicast and the camera
	// network (see internal/icepolicy).
	ViewerNetworks []string `mapstructure:"viewer_networks"`
	// MaxRemoteCandidates bounds the remote candidates of one session.
	MaxRemoteCandidates int `mapstructure:"max_remote_candidates"`
	// Media sending (config/webrtcsend.go).
	UDPGSO           string `mapstructure:"udp_gso"`
	SendBurstPackets int    `mapstructure:"send_burst_packets"`
	SendRatePackets  int    `mapstructure:"send_rate_packets"`
}

// ICEServer is a STUN/TURN server advertised to clients. In YAML an entry is
// either a URL string or a mapping.
type ICEServer struct {
	URLs       []string `mapstructure:"urls"`
	Username   string   `mapstructure:"username"`
	Credential string   `mapstructure:"credential"`
}

// Metrics is the Prometheus endpoint. Listen "" = off.
type Metrics struct {
	Listen string `mapstructure:"listen"`
	// PProf serves Go's profiler (/debug/pprof/) on the metrics listener,
	// for profiling in the field. Off by default; needs Listen.
	PProf bool `mapstructure:"pprof"`
}

// CameraNetwork holds the services on the isolated camera side. "" = off.
type CameraNetwork struct {
	DNSListen string `mapstructure:"dns_listen"`
	NTPListen string `mapstructure:"ntp_listen"`
	// HardenInterval is how often serve re-checks the cameras' outbound
	// settings (camnet/harden): a duration such as "6h" or "1d".
	HardenInterval string `mapstructure:"harden_interval"`
}

// Audit is the signed, hash-chained audit log and its forwarding.
type Audit struct {
	Path      string `mapstructure:"path"`
	MaxSizeMB int    `mapstructure:"max_size_mb"`
	// KeepFiles and KeepMB: retention of rotated files (0 = keep all).
	// With Forward set, a file is never deleted before it was forwarded.
	KeepFiles int `mapstructure:"keep_files"`
	KeepMB    int `mapstructure:"keep_mb"`
	// Forward ships every line to a syslog collector: tcp+tls://host:6514,
	// tcp://host:514 or udp://host:514; "" = off.
	Forward string `mapstructure:"forward"`
	// ForwardCAFile verifies a tcp+tls collector ("" = system roots);
	// ForwardCertFile and ForwardKeyFile are a client certificate.
	ForwardCAFile   string `mapstructure:"forward_ca_file"`
	ForwardCertFile string `mapstructure:"forward_cert_file"`
	ForwardKeyFile  string `mapstructure:"forward_key_file"`
}

// Auth holds token lifetime, lockout, roles and the principals.
type Auth struct {
	TokenTTL string   `mapstructure:"token_ttl"`
	Lockout  Lockout  `mapstructure:"lockout"`
	Roles    []Role   `mapstructure:"roles"`
	Users    []User   `mapstructure:"users"`
	APIKeys  []APIKey `mapstructure:"api_keys"`
	OIDC     OIDC     `mapstructure:"oidc"` // directory sign-in: config/directory.go
	LDAP     LDAP     `mapstructure:"ldap"`
}

// Role is a named set of rights over camera globs.
type Role struct {
	Name        string   `mapstructure:"name"`
	Cameras     []string `mapstructure:"cameras"`
	Rights      []string `mapstructure:"rights"` // view | ptz | playback | export
	PTZPriority int      `mapstructure:"ptz_priority"`
}

// User is a person who signs in with a password.
type User struct {
	Name         string   `mapstructure:"name"`
	PasswordHash string   `mapstructure:"password_hash"`
	Cameras      []string `mapstructure:"cameras"` // the view right on these globs
	Roles        []string `mapstructure:"roles"`
	Admin        bool     `mapstructure:"admin"` // the admin API only
	// RTSPDigestHA1 is hex MD5(name:cordon:digest-secret), optional, for
	// RTSP clients that only speak Digest. The digest secret is a random
	// RTSP-only secret (`cordon hash-password --rtsp-digest NAME`), never
	// the login password. It is password-equivalent for RTSP Digest: the
	// Redactor masks it.
	RTSPDigestHA1 string `mapstructure:"rtsp_digest_ha1"`
	// ONVIFPasswordFile holds the user's ONVIF-only password (config/onvif.go).
	ONVIFPasswordFile string `mapstructure:"onvif_password_file"`

	onvifPassword string // ONVIFPasswordFile's content, read by Validate
}

// APIKey is a machine client (VMS, NVR, video wall).
type APIKey struct {
	Name    string   `mapstructure:"name"`
	KeyHash string   `mapstructure:"key_hash"`
	KeyFile string   `mapstructure:"key_file"`
	Cameras []string `mapstructure:"cameras"`
	Roles   []string `mapstructure:"roles"`
	// RTSPDigestHA1: as User.RTSPDigestHA1.
	RTSPDigestHA1 string `mapstructure:"rtsp_digest_ha1"`
	// ONVIFPasswordFile: as User.ONVIFPasswordFile, for a VMS signing in
	// with the key's name.
	ONVIFPasswordFile string `mapstructure:"onvif_password_file"`

	fileHash      string // KeyFile's content, read by Validate
	onvifPassword string // ONVIFPasswordFile's content, read by Validate
}

// Sanitize is the media allow-list configuration.
type Sanitize struct {
	AllowSEIUUIDs []string `mapstructure:"allow_sei_uuids"`
}

// Recording is where and how long cameras with `record: true` are
// recorded. Path "" = recording off.
type Recording struct {
	Path      string `mapstructure:"path"`
	Retain    string `mapstructure:"retain"`      // Go duration plus "d": "31d", "72h"
	MaxDiskGB int    `mapstructure:"max_disk_gb"` // 0 = no quota
}

// Camera is one camera on the isolated network.
type Camera struct {
	ID           string `mapstructure:"id"`
	Name         string `mapstructure:"name"`
	URL          string `mapstructure:"url"`
	Username     string `mapstructure:"username"`
	Password     string `mapstructure:"password"`
	PasswordFile string `mapstructure:"password_file"`
	Transport    string `mapstructure:"transport"`
	OnDemand     bool   `mapstructure:"on_demand"`
	Record       bool   `mapstructure:"record"` // needs recording.path
	// AdminURL is the camera's HTTP management URL, for hardening
	// (http:// or https://, no credentials, no path). "" = http://<url
	// host>:80 (see AdminBase).
	AdminURL string `mapstructure:"admin_url"`
	// AdminCertSHA256 pins the SHA-256 (hex, colons allowed) of the
	// camera's https certificate for hardening; AdminCAFile is a PEM CA
	// that verifies it instead. Either is needed before hardening sends a
	// password as Basic (cameras that offer nothing else).
	AdminCertSHA256 string `mapstructure:"admin_cert_sha256"`
	AdminCAFile     string `mapstructure:"admin_ca_file"`
	// AdminOtherHost allows an admin_url whose host differs from url's:
	// hardening sends the camera's credentials there only with it set.
	AdminOtherHost bool `mapstructure:"admin_other_host"`
	// Vendor says how hardening talks to the camera: auto, hikvision,
	// dahua or onvif ("" = auto).
	Vendor string `mapstructure:"vendor"`
	// SubURL is the camera's second (low-resolution) stream, on the same
	// host as URL, pulled with the camera's credentials and following
	// OnDemand; "" = none (config/camstreams.go).
	SubURL string `mapstructure:"sub_url"`
	// ONVIF is the camera's ONVIF device service URL; set, it enables PTZ
	// through cordon. Its host must be URL's unless ONVIFOtherHost is set
	// (the camera's credentials go there).
	ONVIF          string `mapstructure:"onvif"`
	ONVIFOtherHost bool   `mapstructure:"onvif_other_host"`
	// MaxBitrateMbps bounds the camera's sustained bitrate (0 = 64 Mbit/s):
	// a camera that sends more is disconnected as hostile.
	MaxBitrateMbps int `mapstructure:"max_bitrate_mbps"`

	filePassword string // PasswordFile's content, read by Validate
}

// Transport values.
const (
	TransportAuto = "auto"
	TransportTCP  = "tcp"
	TransportUDP  = "udp"
)

// Default returns the configuration with every default of the contract and
// no cameras, users or API keys.
func Default() *Config {
	return &Config{
		HTTP: HTTP{Listen: ":8080", CORSOrigins: []string{}},
		RTSP: RTSP{Listen: ":8554", UDPRTPListen: ":8000", UDPRTCPListen: ":8001"},
		WebRTC: WebRTC{UDPListen: ":8189", TCPListen: ":8189", HostIPs: []string{}, ICEServers: []ICEServer{},
			ViewerNetworks: []string{}, MaxRemoteCandidates: 16, UDPGSO: "auto", SendBurstPackets: 48, SendRatePackets: 2600},
		Metrics:       Metrics{Listen: "127.0.0.1:9464"},
		CameraNetwork: CameraNetwork{HardenInterval: DefaultHardenInterval},
		StateDir:      "./cordon-state",
		Audit:         Audit{Path: "audit.log", MaxSizeMB: 64},
		Auth: Auth{TokenTTL: "8h", Lockout: DefaultLockout(), Roles: []Role{},
			Users: []User{}, APIKeys: []APIKey{}, OIDC: defaultOIDC(), LDAP: defaultLDAP()},
		Limits:    DefaultLimits(),
		Cluster:   Cluster{EtcdEndpoints: []string{}, LeaseTTL: "5s"},
		Sanitize:  Sanitize{AllowSEIUUIDs: []string{}},
		Recording: Recording{Retain: "31d"},
		Cameras:   []Camera{},
	}
}

// defaultValues flattens Default() into viper keys.
func defaultValues() map[string]any {
	out := map[string]any{}
	flatten(reflect.ValueOf(*Default()), "", out)
	return out
}

func flatten(v reflect.Value, prefix string, out map[string]any) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		key := prefix + tag
		fv := v.Field(i)
		switch {
		case f.Type.Kind() == reflect.Struct:
			flatten(fv, key+".", out)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct &&
			f.Type.Elem() != reflect.TypeFor[ICEServer]():
			// lists of objects: not overridable from the environment
		default:
			out[key] = fv.Interface()
		}
	}
}

// Keys returns every configuration key that can be overridden from the
// environment, in viper notation ("http.listen").
func Keys() []string {
	m := defaultValues()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

// EnvName returns the environment variable overriding key ("http.listen" ->
// "CORDON_HTTP_LISTEN").
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Load reads the YAML file at path ("" = no file: defaults only) and applies
// CORDON_* environment overrides. It does not validate: call Validate, or use
// LoadAndValidate. Schema errors (unknown keys, wrong types) are returned as
// FieldErrors.
func Load(path string) (*Config, error) {
	v := viper.NewWithOptions(viper.WithLogger(slog.New(slog.DiscardHandler)))
	v.SetConfigType("yaml")
	v.AllowEmptyEnv(true)
	for key, def := range defaultValues() {
		v.SetDefault(key, def)
		if err := v.BindEnv(key, EnvName(key)); err != nil {
			return nil, fmt.Errorf("config: bind %s: %w", key, err)
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, FieldErrors{{Field: path, Msg: "cannot read: " + describeFileErr(err)}}
		}
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return nil, FieldErrors{{Field: path, Msg: yamlMessage(err)}}
		}
	}
	cfg := &Config{}
	err := v.Unmarshal(cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			stringToICEServerHook,
			stringToSliceHook,
		)
	})
	if err != nil {
		return nil, decodeErrors(err)
	}
	cfg.normalize()
	return cfg, nil
}

// LoadAndValidate is Load followed by Validate. Any problem comes back as a
// FieldErrors error; the Config is returned only when it is valid.
func LoadAndValidate(path string) (*Config, error) {
	cfg, err := Load(path)
	if err != nil {
		return nil, err
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, FieldErrors(errs)
	}
	return cfg, nil
}

// normalize fills defaults inside list items, which viper cannot default.
func (c *Config) normalize() {
	for i := range c.Auth.Roles {
		nonNil(&c.Auth.Roles[i].Cameras)
		nonNil(&c.Auth.Roles[i].Rights)
	}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		if cam.Transport == "" {
			cam.Transport = TransportAuto
		}
		if cam.Name == "" {
			cam.Name = cam.ID
		}
		if cam.Vendor == "" {
			cam.Vendor = VendorAuto
		}
	}
	// Lists are never nil after Load, whether they came from the file, the
	// environment or the defaults.
	nonNil(&c.HTTP.CORSOrigins)
	nonNil(&c.WebRTC.HostIPs)
	nonNil(&c.WebRTC.ICEServers)
	nonNil(&c.WebRTC.ViewerNetworks)
	nonNil(&c.Auth.Roles)
	nonNil(&c.Auth.Users)
	nonNil(&c.Auth.APIKeys)
	nonNil(&c.Auth.OIDC.Scopes)
	nonNil(&c.Auth.OIDC.RoleMap)
	nonNil(&c.Auth.LDAP.RoleMap)
	nonNil(&c.Sanitize.AllowSEIUUIDs)
	nonNil(&c.Cameras)
	c.Cluster.normalize()
}

func nonNil[T any](s *[]T) {
	if *s == nil {
		*s = []T{}
	}
}

// Host returns the host name or IP of the camera URL, without port ("" when
// the URL does not parse). The DNS sinkhole matches source addresses by it.
func (c *Camera) Host() string {
	u, err := url.Parse(c.URL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// SafeURL returns the camera URL without credentials, for logs and admins.
func (c *Camera) SafeURL() string { return SafeURL(c.URL) }

// MaxBitrate is the camera's bitrate bound in bits per second (0 = the
// ingest default).
func (c *Camera) MaxBitrate() int64 { return int64(c.MaxBitrateMbps) * 1_000_000 }

// LogValue keeps a Camera logged with slog free of secrets.
func (c Camera) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", c.ID),
		slog.String("name", c.Name),
		slog.String("url", SafeURL(c.URL)),
		slog.String("transport", c.Transport),
		slog.Bool("on_demand", c.OnDemand),
		slog.Bool("record", c.Record),
	)
}

// Secret returns the camera password: Password, or the content of
// PasswordFile (read by Validate, or read now if Validate was not called).
func (c *Camera) Secret() (string, error) {
	if c.Password != "" {
		return c.Password, nil
	}
	if c.filePassword != "" {
		return c.filePassword, nil
	}
	if c.PasswordFile != "" {
		return readSecretFile(c.PasswordFile)
	}
	return "", nil
}

// PullURL returns the URL ingest connects to, with the credentials applied
// (userinfo from URL, or Username + password / password_file). Never log it;
// log c.SafeURL() instead.
func (c *Camera) PullURL() (*url.URL, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("camera %s: invalid url", c.ID)
	}
	if c.Username != "" {
		secret, err := c.Secret()
		if err != nil {
			return nil, fmt.Errorf("camera %s: password_file: %s", c.ID, describeFileErr(err))
		}
		u.User = url.UserPassword(c.Username, secret)
	}
	return u, nil
}

// Hash returns the API key's argon2id hash: KeyHash, or the content of
// KeyFile (read by Validate, or read now if Validate was not called).
func (k *APIKey) Hash() (string, error) {
	if k.KeyHash != "" {
		return k.KeyHash, nil
	}
	if k.fileHash != "" {
		return k.fileHash, nil
	}
	if k.KeyFile != "" {
		return readSecretFile(k.KeyFile)
	}
	return "", nil
}

// readSecretFile reads a secret file and trims one trailing newline (LF or
// CRLF), as written by `echo` or an editor.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, nil
}

// describeFileErr describes a file error without repeating the path.
func describeFileErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
