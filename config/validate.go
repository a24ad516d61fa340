package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"cordon/internal/hostname"
)

// FieldError is one configuration problem, named by its field path
// ("cameras[2].url"). Error() is the line `cordon check` prints.
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// FieldErrors is a list of problems; as an error it prints one per line.
type FieldErrors []FieldError

func (e FieldErrors) Error() string {
	lines := make([]string, len(e))
	for i, fe := range e {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// AsFieldErrors returns the problems carried by err: the FieldErrors from
// Load or LoadAndValidate, or a single FieldError with the error's text for
// any other error. nil for nil.
func AsFieldErrors(err error) []FieldError {
	if err == nil {
		return nil
	}
	var fes FieldErrors
	if errors.As(err, &fes) {
		return fes
	}
	var fe FieldError
	if errors.As(err, &fe) {
		return []FieldError{fe}
	}
	return []FieldError{{Msg: err.Error()}}
}

// Bounds of auth.token_ttl.
const (
	MinTokenTTL = time.Minute
	MaxTokenTTL = 7 * 24 * time.Hour
)

var (
	cameraIDRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	principalRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
)

// Validate checks the whole configuration and returns every problem found
// (nil when valid). It also reads the secret files (password_file,
// key_file), so it must run before the configuration is used. It never
// panics, and its messages never contain secrets or camera URLs.
func (c *Config) Validate() []FieldError {
	if c == nil {
		return []FieldError{{Field: "config", Msg: "is missing"}}
	}
	v := &validator{}
	v.http(&c.HTTP)
	v.listen("rtsp.listen", c.RTSP.Listen, true)
	v.rtspUDP(&c.RTSP)
	v.webrtc(&c.WebRTC)
	v.listen("metrics.listen", c.Metrics.Listen, true)
	if c.Metrics.PProf && c.Metrics.Listen == "" {
		v.add("metrics.pprof", "needs metrics.listen: the profiler is served on the metrics listener")
	}
	v.listen("camera_network.dns_listen", c.CameraNetwork.DNSListen, true)
	v.listen("camera_network.ntp_listen", c.CameraNetwork.NTPListen, true)
	if _, err := ParseHardenInterval(c.CameraNetwork.HardenInterval); err != nil {
		v.add("camera_network.harden_interval", err.Error())
	}
	v.tcpCollisions(c)
	if strings.TrimSpace(c.StateDir) == "" {
		v.add("state_dir", "must not be empty")
	}
	v.audit(&c.Audit)
	v.auth(&c.Auth)
	v.limits(&c.Limits)
	v.cluster(&c.Cluster, c.RTSP.Listen)
	for i, s := range c.Sanitize.AllowSEIUUIDs {
		if _, err := ParseUUID(s); err != nil {
			v.add(fmt.Sprintf("sanitize.allow_sei_uuids[%d]", i), "must be a UUID (8-4-4-4-12 or 32 hex digits)")
		}
	}
	v.onvif(c)
	v.cameras(c.Cameras)
	v.recording(&c.Recording, c.Cameras)
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

type validator struct {
	errs []FieldError
}

func (v *validator) add(field, msg string) {
	v.errs = append(v.errs, FieldError{Field: field, Msg: msg})
}

func (v *validator) http(h *HTTP) {
	v.listen("http.listen", h.Listen, false)
	v.certKeyPair("http.tls_cert", "http.tls_key", h.TLSCert, h.TLSKey)
	for i, o := range h.CORSOrigins {
		f := fmt.Sprintf("http.cors_origins[%d]", i)
		if o == "*" {
			v.add(f, `"*" is not allowed; list each origin (https://host:port)`)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			v.add(f, "must be an origin like https://console.example:8443")
		}
	}
}

func (v *validator) webrtc(w *WebRTC) {
	v.listen("webrtc.udp_listen", w.UDPListen, false)
	v.listen("webrtc.tcp_listen", w.TCPListen, true)
	v.iceHygiene(w)
	v.webrtcSend(w)
	for i, ip := range w.HostIPs {
		if net.ParseIP(ip) == nil {
			v.add(fmt.Sprintf("webrtc.host_ips[%d]", i), "must be an IP address")
		}
	}
	for i, s := range w.ICEServers {
		f := fmt.Sprintf("webrtc.ice_servers[%d]", i)
		if len(s.URLs) == 0 {
			v.add(f+".urls", "must list at least one stun:/turn: URL")
		}
		for j, raw := range s.URLs {
			scheme, _, ok := strings.Cut(raw, ":")
			scheme = strings.ToLower(scheme)
			if !ok || (scheme != "stun" && scheme != "stuns" && scheme != "turn" && scheme != "turns") {
				v.add(fmt.Sprintf("%s.urls[%d]", f, j), "must be a stun:, stuns:, turn: or turns: URL")
			}
		}
	}
}

// listen checks a host:port listen address; "" is allowed when optional.
// rtspUDP checks the RTSP UDP pair: both or neither, RTP even, RTCP = RTP+1
// (both port 0: a free pair chosen at start-up).
func (v *validator) rtspUDP(r *RTSP) {
	if r.UDPRTPListen == "" && r.UDPRTCPListen == "" {
		return
	}
	if r.UDPRTPListen == "" || r.UDPRTCPListen == "" {
		v.add("rtsp.udp_rtp_listen", "udp_rtp_listen and udp_rtcp_listen go together (both empty = TCP only)")
		return
	}
	v.listen("rtsp.udp_rtp_listen", r.UDPRTPListen, false)
	v.listen("rtsp.udp_rtcp_listen", r.UDPRTCPListen, false)
	_, rtp, err1 := net.SplitHostPort(r.UDPRTPListen)
	_, rtcp, err2 := net.SplitHostPort(r.UDPRTCPListen)
	if err1 != nil || err2 != nil {
		return
	}
	a, _ := strconv.Atoi(rtp)
	b, _ := strconv.Atoi(rtcp)
	switch {
	case a == 0 && b == 0: // a free even/odd pair, chosen at start-up
	case a == 0 || a%2 != 0:
		v.add("rtsp.udp_rtp_listen", "port must be even and not 0 (both ports 0: a free pair)")
	case b != a+1:
		v.add("rtsp.udp_rtcp_listen", "port must be udp_rtp_listen's port + 1")
	}
}

func (v *validator) listen(field, addr string, optional bool) {
	if addr == "" {
		if !optional {
			v.add(field, "must not be empty")
		}
		return
	}
	if err := checkHostPort(addr); err != nil {
		v.add(field, err.Error())
	}
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New(`must be host:port (e.g. ":8080" or "127.0.0.1:8080")`)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	if host != "" && net.ParseIP(host) == nil && !hostname.Valid(host) {
		return errors.New("host must be an IP address or a host name")
	}
	return nil
}

// tcpCollisions reports TCP listeners configured on the same address.
func (v *validator) tcpCollisions(c *Config) {
	type l struct{ field, addr string }
	ls := []l{
		{"http.listen", c.HTTP.Listen},
		{"rtsp.listen", c.RTSP.Listen},
		{"webrtc.tcp_listen", c.WebRTC.TCPListen},
		{"metrics.listen", c.Metrics.Listen},
		{"onvif.listen", c.ONVIF.Listen},
	}
	seen := map[string]string{}
	for _, x := range ls {
		if x.addr == "" || checkHostPort(x.addr) != nil {
			continue
		}
		host, port, _ := net.SplitHostPort(x.addr)
		if port == "0" {
			continue // ephemeral: never collides
		}
		key := host + "|" + port
		if prev, ok := seen[key]; ok {
			v.add(x.field, "same TCP address as "+prev)
			continue
		}
		seen[key] = x.field
	}
}

// certKeyPair checks an optional certificate and key file pair (fields
// certField and keyField): both or neither, readable, and a matching PEM
// pair.
func (v *validator) certKeyPair(certField, keyField, cert, key string) {
	switch {
	case cert == "" && key == "":
	case cert == "":
		v.add(certField, "must be set when "+keyField+" is set")
	case key == "":
		v.add(keyField, "must be set when "+certField+" is set")
	default:
		okCert := v.readable(certField, cert)
		okKey := v.readable(keyField, key)
		if okCert && okKey {
			if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
				v.add(certField, "is not a PEM certificate matching "+keyField)
			}
		}
	}
}

func (v *validator) readable(field, p string) bool {
	if _, err := readSecretFile(p); err != nil {
		v.add(field, "cannot read "+p+": "+describeFileErr(err))
		return false
	}
	return true
}

func (v *validator) globs(field string, pats []string) {
	for j, p := range pats {
		f := fmt.Sprintf("%s[%d]", field, j)
		if p == "" {
			v.add(f, "must not be empty")
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			v.add(f, "is not a valid glob pattern (path.Match syntax)")
		}
	}
}

func (v *validator) cameras(cams []Camera) {
	ids := map[string]int{}
	for i := range cams {
		c := &cams[i]
		f := fmt.Sprintf("cameras[%d]", i)
		switch {
		case c.ID == "":
			v.add(f+".id", "must not be empty")
		case !cameraIDRe.MatchString(c.ID):
			v.add(f+".id", "must match [a-z0-9][a-z0-9_-]{0,63}")
		default:
			if prev, ok := ids[c.ID]; ok {
				v.add(f+".id", fmt.Sprintf("%q is already used by cameras[%d]", c.ID, prev))
			} else {
				ids[c.ID] = i
			}
		}
		urlHasUser := false
		if c.URL == "" {
			v.add(f+".url", "must be set")
		} else if u, err := url.Parse(c.URL); err != nil {
			v.add(f+".url", "is not a valid URL") // never echo: it may hold a password
		} else {
			if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
				v.add(f+".url", "must be rtsp:// or rtsps://")
			} else if u.Hostname() == "" {
				v.add(f+".url", "must name a host")
			} else if p := u.Port(); p != "" {
				if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
					v.add(f+".url", "port must be a number from 1 to 65535")
				}
			}
			urlHasUser = u.User != nil
			if urlHasUser {
				if p, ok := u.User.Password(); !ok || p == "" || u.User.Username() == "" {
					v.add(f+".url", "credentials in the URL need both a user name and a password")
				}
			}
		}
		switch c.Transport {
		case "", TransportAuto, TransportTCP, TransportUDP:
		default:
			v.add(f+".transport", "must be auto, tcp or udp")
		}
		v.cameraAdmin(f, c)
		v.cameraStreams(f, c)
		if c.MaxBitrateMbps < 0 || c.MaxBitrateMbps > 10000 {
			v.add(f+".max_bitrate_mbps", "must be from 1 to 10000 (Mbit/s), or 0 for the default of 64")
		}
		c.filePassword = ""
		if urlHasUser && (c.Username != "" || c.Password != "" || c.PasswordFile != "") {
			v.add(f+".url", "has credentials and username/password/password_file is also set; use one")
			continue
		}
		if c.Password != "" && c.PasswordFile != "" {
			v.add(f+".password_file", "password and password_file are exclusive; set one")
			continue
		}
		if c.PasswordFile != "" {
			s, err := readSecretFile(c.PasswordFile)
			switch {
			case err != nil:
				v.add(f+".password_file", "cannot read "+c.PasswordFile+": "+describeFileErr(err))
			case s == "":
				v.add(f+".password_file", "is empty")
			default:
				c.filePassword = s
			}
		}
		hasSecret := c.Password != "" || c.PasswordFile != ""
		if c.Username == "" && hasSecret {
			v.add(f+".username", "must be set when a password is set")
		}
		if c.Username != "" && !hasSecret {
			v.add(f+".password", "must be set (or password_file) when username is set")
		}
	}
}

// Bounds of recording.retain and recording.max_disk_gb.
const (
	MinRetain    = time.Hour
	MaxRetain    = 3650 * 24 * time.Hour
	MaxDiskGBMax = 1 << 20
)

func (v *validator) recording(r *Recording, cams []Camera) {
	if _, err := ParseRetain(r.Retain); err != nil {
		v.add("recording.retain", err.Error())
	}
	if r.MaxDiskGB < 0 || r.MaxDiskGB > MaxDiskGBMax {
		v.add("recording.max_disk_gb", "must be 0 (no quota) or a number of GB up to 1048576")
	}
	if p := strings.TrimSpace(r.Path); p != "" {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			v.add("recording.path", "is not a directory")
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			v.add("recording.path", "cannot be used: "+describeFileErr(err))
		}
	}
	for i, c := range cams {
		if c.Record && strings.TrimSpace(r.Path) == "" {
			v.add(fmt.Sprintf("cameras[%d].record", i), "needs recording.path (recording is off while it is empty)")
		}
	}
}

// ParseRetain parses recording.retain: a Go duration plus "d" for 24h
// ("31d", "72h"), between MinRetain and MaxRetain.
func ParseRetain(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, errors.New(`must be a duration such as "31d" or "72h"`)
	}
	if d < MinRetain || d > MaxRetain {
		return 0, errors.New("must be between 1h and 3650d")
	}
	return d, nil
}

// RetainDuration returns the parsed retention (31 days if Retain is
// invalid, which Validate reports).
func (r *Recording) RetainDuration() time.Duration {
	d, err := ParseRetain(r.Retain)
	if err != nil {
		return 31 * 24 * time.Hour
	}
	return d
}

// MaxDiskBytes returns the quota in bytes (0 = none); a GB is 10^9 bytes.
func (r *Recording) MaxDiskBytes() int64 {
	return int64(max(r.MaxDiskGB, 0)) * 1_000_000_000
}

// ParseTTL parses auth.token_ttl: a Go duration, plus "d" for 24h
// ("8h", "7d", "1d12h"), between MinTokenTTL and MaxTokenTTL.
func ParseTTL(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, errors.New(`must be a duration such as "8h", "30m" or "7d"`)
	}
	if d < MinTokenTTL || d > MaxTokenTTL {
		return 0, errors.New("must be between 1m and 7d")
	}
	return d, nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, err
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, errors.New("negative")
	}
	return days + d, nil
}

// TTL returns the parsed token lifetime (8h if TokenTTL is invalid, which
// Validate reports).
func (a *Auth) TTL() time.Duration {
	d, err := ParseTTL(a.TokenTTL)
	if err != nil {
		return 8 * time.Hour
	}
	return d
}

func sortStrings(s []string) { slices.Sort(s) }

func sortFieldErrors(e []FieldError) {
	slices.SortStableFunc(e, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
}
