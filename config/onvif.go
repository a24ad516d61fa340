package config

import (
	"fmt"
	"net"
)

// This file holds the configuration of cordon's ONVIF device face
// (relay/onvifserve): onvif.listen, onvif.discovery, and the ONVIF-only
// passwords of users and API keys (onvif_password_file).

// ONVIF is cordon as an ONVIF device for a VMS. Listen "" = off.
// Discovery turns on the WS-Discovery responder on the operator-side
// address of Listen (which must then name a specific IPv4 address).
type ONVIF struct {
	Listen    string `mapstructure:"listen"`
	Discovery bool   `mapstructure:"discovery"`
}

// Bounds of an ONVIF password (onvif_password_file). ONVIF's digests are
// SHA-1 and MD5 over the password: it must be long and random, never a
// login password; clients send it as ASCII.
const (
	MinONVIFPasswordLen = 16
	MaxONVIFPasswordLen = 128
)

// ONVIFPassword returns the user's ONVIF-only password ("" when none),
// read by Validate (or now, if Validate was not called).
func (u *User) ONVIFPassword() (string, error) {
	return onvifPassword(u.onvifPassword, u.ONVIFPasswordFile)
}

// ONVIFPassword returns the API key's ONVIF-only password ("" when none).
func (k *APIKey) ONVIFPassword() (string, error) {
	return onvifPassword(k.onvifPassword, k.ONVIFPasswordFile)
}

func onvifPassword(read, file string) (string, error) {
	if read != "" || file == "" {
		return read, nil
	}
	return readSecretFile(file)
}

// onvif validates the onvif section and every onvif_password_file.
func (v *validator) onvif(c *Config) {
	o := &c.ONVIF
	v.listen("onvif.listen", o.Listen, true)
	if o.Listen != "" && c.RTSP.Listen == "" {
		v.add("onvif.listen", "needs rtsp.listen: the stream URIs a VMS gets point at cordon's RTSP re-serve")
	}
	if o.Discovery {
		host, _, err := net.SplitHostPort(o.Listen)
		ip := net.ParseIP(host).To4()
		switch {
		case o.Listen == "":
			v.add("onvif.discovery", "needs onvif.listen")
		case err != nil:
		case ip == nil || ip.IsUnspecified() || ip.IsLoopback():
			v.add("onvif.discovery", "needs onvif.listen on the operator-side IPv4 address (e.g. 10.1.0.5:8000), so that discovery answers on that interface only, never on the camera network")
		}
	}
	for i := range c.Auth.Users {
		u := &c.Auth.Users[i]
		u.onvifPassword = v.onvifPasswordFile(fmt.Sprintf("auth.users[%d].onvif_password_file", i), u.ONVIFPasswordFile)
	}
	for i := range c.Auth.APIKeys {
		k := &c.Auth.APIKeys[i]
		k.onvifPassword = v.onvifPasswordFile(fmt.Sprintf("auth.api_keys[%d].onvif_password_file", i), k.ONVIFPasswordFile)
	}
}

// onvifPasswordFile reads and checks one ONVIF password file ("" = none).
func (v *validator) onvifPasswordFile(field, path string) string {
	if path == "" || !v.readable(field, path) {
		return ""
	}
	pw, _ := readSecretFile(path)
	if len(pw) < MinONVIFPasswordLen || len(pw) > MaxONVIFPasswordLen {
		v.add(field, fmt.Sprintf("the password in %s must be %d to %d characters (make one with `openssl rand -base64 24`)", path, MinONVIFPasswordLen, MaxONVIFPasswordLen))
		return ""
	}
	for i := 0; i < len(pw); i++ {
		if pw[i] < 0x21 || pw[i] > 0x7e {
			v.add(field, "the password in "+path+" must be printable ASCII without spaces (ONVIF clients send it as ASCII)")
			return ""
		}
	}
	return pw
}
