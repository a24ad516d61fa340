package config

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// This file holds the configuration of camera hardening (camnet/harden):
// cameras[].admin_url, cameras[].vendor and camera_network.harden_interval.

// Vendor values (cameras[].vendor).
const (
	VendorAuto      = "auto"
	VendorHikvision = "hikvision"
	VendorDahua     = "dahua"
	VendorONVIF     = "onvif"
)

// DefaultHardenInterval is camera_network.harden_interval's default.
const DefaultHardenInterval = "6h"

// AdminBase returns the camera's management base URL: AdminURL, or
// http://<url host>:80 when it is empty. It never carries credentials.
func (c *Camera) AdminBase() (*url.URL, error) {
	if c.AdminURL == "" {
		host := c.Host()
		if host == "" {
			return nil, fmt.Errorf("camera %s: url names no host for the default admin_url", c.ID)
		}
		return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, "80")}, nil
	}
	u, err := url.Parse(c.AdminURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
		return nil, fmt.Errorf("camera %s: invalid admin_url", c.ID)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// cameraAdmin checks the hardening fields admin_url and vendor.
func (v *validator) cameraAdmin(f string, c *Camera) {
	switch c.Vendor {
	case "", VendorAuto, VendorHikvision, VendorDahua, VendorONVIF:
	default:
		v.add(f+".vendor", "must be auto, hikvision, dahua or onvif")
	}
	v.cameraAdminTLS(f, c)
	if c.AdminURL == "" {
		if c.AdminOtherHost {
			v.add(f+".admin_other_host", "needs an admin_url")
		}
		return
	}
	u, err := url.Parse(c.AdminURL)
	switch {
	case err != nil:
		v.add(f+".admin_url", "is not a valid URL") // never echo: it may hold a password
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(f+".admin_url", "must be http:// or https://")
	case u.User != nil:
		v.add(f+".admin_url", "must not contain credentials (the camera's username and password are used)")
	case u.Hostname() == "":
		v.add(f+".admin_url", "must name a host")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		v.add(f+".admin_url", "must be scheme://host[:port] only, without a path or query")
	default:
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				v.add(f+".admin_url", "port must be a number from 1 to 65535")
			}
		}
	}
}

// cameraAdminTLS checks admin_cert_sha256 and admin_ca_file: they need an
// https admin_url, a pin is 32 bytes of hex, a CA file holds certificates.
func (v *validator) cameraAdminTLS(f string, c *Camera) {
	if c.AdminCertSHA256 == "" && c.AdminCAFile == "" {
		return
	}
	if u, err := url.Parse(c.AdminURL); c.AdminURL == "" || err != nil || u.Scheme != "https" {
		if c.AdminCertSHA256 != "" {
			v.add(f+".admin_cert_sha256", "needs an https:// admin_url")
		}
		if c.AdminCAFile != "" {
			v.add(f+".admin_ca_file", "needs an https:// admin_url")
		}
	}
	if c.AdminCertSHA256 != "" {
		if _, err := c.AdminCertPin(); err != nil {
			v.add(f+".admin_cert_sha256", err.Error())
		}
	}
	if c.AdminCAFile != "" && v.readable(f+".admin_ca_file", c.AdminCAFile) {
		if _, err := c.AdminRootCAs(); err != nil {
			v.add(f+".admin_ca_file", err.Error())
		}
	}
}

// AdminCertPin returns admin_cert_sha256 as 32 bytes (nil when unset).
// It accepts 64 hex digits, with or without colons between bytes (as
// `openssl x509 -fingerprint -sha256` prints them), in either case.
func (c *Camera) AdminCertPin() ([]byte, error) {
	if c.AdminCertSHA256 == "" {
		return nil, nil
	}
	s := strings.ReplaceAll(strings.TrimSpace(c.AdminCertSHA256), ":", "")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return nil, errors.New("must be the certificate's SHA-256: 64 hex digits (colons allowed)")
	}
	return b, nil
}

// AdminRootCAs reads admin_ca_file (nil when unset).
func (c *Camera) AdminRootCAs() (*x509.CertPool, error) {
	if c.AdminCAFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.AdminCAFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", c.AdminCAFile, describeFileErr(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("holds no PEM certificate")
	}
	return pool, nil
}

// AdminHostRefused reports whether hardening must not send the camera's
// credentials to admin_url: it names another host than url and
// admin_other_host is not set.
func (c *Camera) AdminHostRefused() bool {
	return c.adminHostDiffers() && !c.AdminOtherHost
}

// Bounds of camera_network.harden_interval.
const (
	MinHardenInterval = time.Minute
	MaxHardenInterval = 7 * 24 * time.Hour
)

// ParseHardenInterval parses camera_network.harden_interval: a Go duration,
// plus "d" for 24h ("6h", "1d"), between MinHardenInterval and
// MaxHardenInterval.
func ParseHardenInterval(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, errors.New(`must be a duration such as "6h", "30m" or "1d"`)
	}
	if d < MinHardenInterval || d > MaxHardenInterval {
		return 0, errors.New("must be between 1m and 7d")
	}
	return d, nil
}

// HardenEvery returns the parsed harden_interval (6h if it is invalid,
// which Validate reports).
func (n *CameraNetwork) HardenEvery() time.Duration {
	d, err := ParseHardenInterval(n.HardenInterval)
	if err != nil {
		return 6 * time.Hour
	}
	return d
}

// adminHostDiffers reports whether admin_url names another host than url
// (a likely typo that would send the camera's credentials elsewhere).
func (c *Camera) adminHostDiffers() bool {
	if c.AdminURL == "" {
		return false
	}
	u, err := url.Parse(c.AdminURL)
	if err != nil {
		return false
	}
	return !strings.EqualFold(u.Hostname(), c.Host())
}
