package harden

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"time"
)

// Setting names, in the order a table shows them. Every vendor reports
// the ones it has.
const (
	SettingHikConnect  = "cloud.hik-connect" // Hikvision Hik-Connect / EZVIZ
	SettingISUP        = "cloud.isup"        // Hikvision ISUP / EHome platform access
	SettingEasy4IP     = "cloud.easy4ip"     // Dahua T2UServer (Easy4IP / P2P)
	SettingPaaS        = "cloud.paas"        // Dahua VSP_PaaS
	SettingUPnP        = "upnp"
	SettingPortMapping = "upnp.port-mapping"
	SettingDDNS        = "ddns"
	SettingEmail       = "email"
	SettingFTP         = "ftp"
	SettingBonjour     = "bonjour"
	SettingDiscovery   = "discovery" // ONVIF WS-Discovery
	SettingNTP         = "ntp"
	SettingDNS         = "dns"
	SettingGateway     = "gateway"
)

// Status values of a SettingResult.
const (
	StatusOK          = "ok"           // as wanted when read
	StatusSet         = "set"          // was not, set and read back as wanted
	StatusAbsent      = "absent"       // the camera has no such feature (optional settings only)
	StatusDrift       = "drift"        // not as wanted (dry run, or apply not possible)
	StatusUnknown     = "unknown"      // could not be read
	StatusFailed      = "failed"       // the camera refused to set it
	StatusNotApplied  = "not applied"  // accepted, but reads back the old value
	StatusNeedsReboot = "needs reboot" // accepted; takes effect after a reboot (--reboot)
)

// Wanted is the state hardening wants on every camera.
type Wanted struct {
	// NTP is cordon's camera-side NTP server; invalid = NTP off.
	NTP netip.AddrPort
	// DNS is cordon's sinkhole address; invalid = no DNS server at all.
	DNS netip.Addr
	// Cordon lists cordon's camera-side addresses (hosts of dns_listen
	// and ntp_listen), for the default-gateway decision.
	Cordon []netip.Addr
}

// Reading is a setting's value as read from the camera.
type Reading struct {
	Have string // shown as is (sanitized by the table)
	OK   bool   // as wanted
	// Want, when set, replaces the setting's Want (a want that depends on
	// what the camera reports, such as the gateway's subnet decision).
	Want string
	// Keep means: not as wanted, but hardening must not change it.
	Keep bool
}

// Outcome is what a camera answered to a change.
type Outcome struct {
	// NeedsReboot: the camera said the change takes effect after a reboot.
	NeedsReboot bool
}

// Setting is one thing a vendor can read and set.
type Setting struct {
	Name string
	Want string
	// Optional settings the camera does not have (ErrAbsent) count as
	// wanted: a camera without e-mail cannot send e-mail. Required ones
	// (cloud, UPnP, NTP, DNS) count as unknown.
	Optional bool
	Read     func(ctx context.Context) (Reading, error)
	// Apply sets the wanted state; nil = read only.
	Apply func(ctx context.Context) (Outcome, error)
}

// Vendor speaks one camera family's management API. The ONVIF vendor is
// an adapter over camnet/onvif's client; Hikvision and Dahua speak their
// own HTTP APIs through Client.
type Vendor interface {
	// Name is the vendor's config name (hikvision, dahua, onvif).
	Name() string
	// Settings lists what the vendor checks for the wanted state.
	Settings(w Wanted) []Setting
	// Reboot asks the camera to restart (only with --reboot).
	Reboot(ctx context.Context) error
	// Probe answers without credentials while the camera is up; used to
	// wait for a reboot to finish.
	Probe(ctx context.Context) error
	// Close ends any session the vendor opened.
	Close(ctx context.Context)
}

// Target is one camera to harden.
type Target struct {
	Camera   string   // id
	Base     *url.URL // admin URL: scheme://host[:port]
	Username string
	Password string
	Vendor   string // auto | hikvision | dahua | onvif
	// ONVIF, when set, is the camera's ONVIF device service URL
	// (cameras[].onvif); the ONVIF vendor talks there instead of Base +
	// /onvif/device_service. It must be on the camera's host (config
	// checks it), as Base is.
	ONVIF *url.URL
	// RootCAs and CertSHA256 verify or pin the camera's https
	// certificate (see Client); Basic needs one of them.
	RootCAs    *x509.CertPool
	CertSHA256 []byte
	// Refused, when set, says why no request may go to Base (the camera
	// is reported with this error and never contacted).
	Refused error
}

// Options tune one run.
type Options struct {
	Apply  bool // set what is not as wanted, and read it back
	Reboot bool // reboot the camera when a change needs it, then read again
	// RequestTimeout bounds each HTTP request (0 = 10 s); MaxBody each
	// answer (0 = 256 KiB).
	RequestTimeout time.Duration
	MaxBody        int64
	// CameraTimeout bounds one camera's whole check, reboot excluded
	// (0 = 2 min).
	CameraTimeout time.Duration
	// RebootDown and RebootUp bound waiting for the camera to go away and
	// to answer again after a reboot (0 = 2 min, 5 min); PollEvery is the
	// probing interval (0 = 500 ms: a camera that restarts quickly must not
	// slip between two probes).
	RebootDown, RebootUp, PollEvery time.Duration
	// Now is the clock (nil = time.Now).
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// SettingResult is one line of the table and of GET /api/v1/admin/hardening.
type SettingResult struct {
	Name   string `json:"name"`
	Want   string `json:"want"`
	Have   string `json:"have"`
	OK     bool   `json:"ok"`
	Status string `json:"status"`
	// Detail explains an unknown, failed or pending status; it names the
	// camera and the setting and never holds a secret.
	Detail string `json:"detail,omitempty"`
}

// CameraResult is one camera's check. Its JSON always carries checked_at
// (CONTRACT: admin hardening report): RFC 3339 UTC, or null for a camera
// not checked yet.
type CameraResult struct {
	Camera    string          `json:"camera"`
	Vendor    string          `json:"vendor"`
	CheckedAt time.Time       `json:"-"` // JSON "checked_at": null until checked (MarshalJSON)
	Settings  []SettingResult `json:"settings"`
	// Error says why the camera could not be checked at all (unreachable,
	// unrecognised, refused credentials); "" otherwise.
	Error string `json:"error,omitempty"`
	// Rebooted: cordon rebooted the camera (--reboot) during this run.
	Rebooted bool `json:"rebooted,omitempty"`
	// AuthRefused: the camera refused the credentials. Retrying at every
	// camera connect could lock the account (and with it the RTSP pull),
	// so the watcher waits for the next periodic check or new credentials.
	AuthRefused bool `json:"-"`
}

// OK reports whether every setting is as wanted.
func (r *CameraResult) OK() bool {
	if r.Error != "" || len(r.Settings) == 0 {
		return false
	}
	for _, s := range r.Settings {
		if !s.OK {
			return false
		}
	}
	return true
}

// Changed reports whether this run changed anything on the camera.
func (r *CameraResult) Changed() bool {
	for _, s := range r.Settings {
		if s.Status == StatusSet {
			return true
		}
	}
	return false
}

// settingError names the camera and the setting; its text never holds a
// secret (requests carry none in their paths, answers are not quoted).
type settingError struct {
	camera, setting string
	err             error
}

func (e *settingError) Error() string {
	if e.setting == "" {
		return fmt.Sprintf("camera %s: %v", e.camera, e.err)
	}
	return fmt.Sprintf("camera %s: %s: %v", e.camera, e.setting, e.err)
}

func (e *settingError) Unwrap() error { return e.err }

// reqError names the request that failed (method and path, no query
// values beyond cordon's own constants).
func reqError(method, pathQuery string, err error) error {
	if len(pathQuery) > 120 {
		pathQuery = pathQuery[:120] + "…"
	}
	return fmt.Errorf("%s %s: %w", method, pathQuery, err)
}

// fatal reports whether an error means the camera cannot be talked to at
// all, so the remaining settings are not tried (bounding a hostile or dead
// camera to one timeout).
func fatal(err error) bool {
	if err == nil || errors.Is(err, ErrAbsent) || errors.Is(err, errTooLarge) {
		return false
	}
	var ue *unreachableError
	return errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrRedirect) || errors.Is(err, errNoUsableAuth) || errors.As(err, &ue)
}

// MarshalJSON writes the result with checked_at always present.
func (r CameraResult) MarshalJSON() ([]byte, error) {
	type plain CameraResult // no methods: no recursion
	var at *time.Time
	if !r.CheckedAt.IsZero() {
		t := r.CheckedAt.UTC()
		at = &t
	}
	return json.Marshal(struct {
		plain
		CheckedAt *time.Time `json:"checked_at"`
	}{plain(r), at})
}
