package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// This file holds the camera fields of issue 14: cameras[].sub_url (the
// sub stream) and cameras[].onvif / onvif_other_host (PTZ through cordon).

// SubPullURL returns the sub stream's URL with the camera's credentials
// applied (those of url's userinfo, or username + password), nil when the
// camera has no sub_url. Never log it.
func (c *Camera) SubPullURL() (*url.URL, error) {
	if c.SubURL == "" {
		return nil, nil
	}
	u, err := url.Parse(c.SubURL)
	if err != nil {
		return nil, fmt.Errorf("camera %s: invalid sub_url", c.ID)
	}
	main, err := c.PullURL()
	if err != nil {
		return nil, err
	}
	u.User = main.User
	return u, nil
}

// SafeSubURL returns sub_url for logs and admins ("" when none).
func (c *Camera) SafeSubURL() string {
	if c.SubURL == "" {
		return ""
	}
	return SafeURL(c.SubURL)
}

// HasSub reports whether the camera has a sub stream.
func (c *Camera) HasSub() bool { return c.SubURL != "" }

// cameraStreams checks sub_url, onvif and onvif_other_host.
func (v *validator) cameraStreams(f string, c *Camera) {
	host := c.Host()
	if c.SubURL != "" {
		u, err := url.Parse(c.SubURL)
		switch {
		case err != nil:
			v.add(f+".sub_url", "is not a valid URL") // never echo: it may hold a password
		case u.Scheme != "rtsp" && u.Scheme != "rtsps":
			v.add(f+".sub_url", "must be rtsp:// or rtsps://")
		case u.User != nil:
			v.add(f+".sub_url", "must not contain credentials (the camera's are used)")
		case u.Hostname() == "":
			v.add(f+".sub_url", "must name a host")
		case !validPort(u.Port()):
			v.add(f+".sub_url", "port must be a number from 1 to 65535")
		case host != "" && !strings.EqualFold(u.Hostname(), host):
			v.add(f+".sub_url", "must be on the same host as url (the camera's credentials are sent there)")
		}
	}
	if c.ONVIF == "" {
		if c.ONVIFOtherHost {
			v.add(f+".onvif_other_host", "needs onvif")
		}
		return
	}
	u, err := url.Parse(c.ONVIF)
	switch {
	case err != nil:
		v.add(f+".onvif", "is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(f+".onvif", "must be http:// or https:// (the device service, e.g. http://10.20.0.12/onvif/device_service)")
	case u.User != nil:
		v.add(f+".onvif", "must not contain credentials (the camera's username and password are used)")
	case u.Hostname() == "":
		v.add(f+".onvif", "must name a host")
	case !validPort(u.Port()):
		v.add(f+".onvif", "port must be a number from 1 to 65535")
	case u.RawQuery != "" || u.Fragment != "":
		v.add(f+".onvif", "must not have a query or fragment")
	case host != "" && !strings.EqualFold(u.Hostname(), host) && !c.ONVIFOtherHost:
		v.add(f+".onvif", "names another host than url; the camera's credentials would go there (set onvif_other_host: true if that is intended)")
	}
}

// validPort accepts "" (the scheme's default) or 1..65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}
