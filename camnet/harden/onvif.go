package harden

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"cordon/camnet/onvif"
	"cordon/internal/soap"
)

// onvifVendor is the generic ONVIF vendor: an adapter over camnet/onvif's
// client (device service at the admin URL's /onvif/device_service). ONVIF
// has no form for vendor cloud, UPnP, DDNS or e-mail switches (FIELD-NOTES);
// what it has is WS-Discovery (SetDiscoveryMode), NTP (SetNTP), DNS
// (SetDNS) and the default gateway (SetNetworkDefaultGateway, with
// GetNetworkInterfaces for the subnet). Its network protocols (HTTP,
// HTTPS, RTSP) are services the camera offers, not connections it makes,
// and cordon needs them, so hardening leaves them alone.
type onvifVendor struct {
	camera string
	c      *onvif.Client
}

// onvifDevicePath is the ONVIF device service's standard path.
const onvifDevicePath = "/onvif/device_service"

// onvifEndpoint is the client that reaches the camera's ONVIF device
// service, and the service's path.
func onvifEndpoint(c *Client) (*Client, string) {
	if c.ONVIF != nil {
		c = c.ONVIF
	}
	if c.DevicePath != "" {
		return c, c.DevicePath
	}
	return c, onvifDevicePath
}

func newONVIF(c *Client) (Vendor, error) {
	c, path := onvifEndpoint(c)
	oc := &onvif.Client{CameraID: c.Camera, URL: c.Base.Scheme + "://" + c.Base.Host + path,
		Username: c.Username, Password: c.Password, Timeout: c.timeout(), MaxResponseBytes: c.maxBody(),
		// as Client: the pin or CA when configured, else any certificate
		// (WS-Security and HTTP Digest never send the password itself)
		TLSConfig: c.tlsConfig()}
	if err := oc.Initialize(); err != nil {
		return nil, onvifErr(err)
	}
	return &onvifVendor{camera: c.Camera, c: oc}, nil
}

// probeONVIF asks GetSystemDateAndTime without credentials (ONVIF allows
// it). strict: only a SOAP answer counts; otherwise a 401 or an
// authorization fault on the device service does too.
func probeONVIF(ctx context.Context, c *Client, strict bool) (fingerprint, error) {
	c, path := onvifEndpoint(c)
	msg := (&soap.Message{Version: soap.SOAP12, Body: []soap.Node{soap.El("tds:GetSystemDateAndTime")}}).Bytes()
	r, err := c.Anonymous(ctx, http.MethodPost, path, soap.SOAP12.ContentType(), msg)
	if err != nil {
		return fingerprint{}, reqError("POST", path, err)
	}
	fp := fingerprint{seen: describeAnswer("POST "+path, r)}
	env, err := soap.ParseEnvelopeBytes(r.Body, soap.Limits{MaxBytes: c.maxBody()})
	switch {
	case err == nil && env.Payload() != nil && env.Payload().Local == "GetSystemDateAndTimeResponse":
		fp.api, fp.mark = true, true
	case strict && r.Status == http.StatusUnauthorized:
		fp.api = true
	case strict && err == nil && soap.FaultOf(env) != nil && soap.FaultOf(env).Has("", "NotAuthorized"):
		fp.api = true
	}
	return fp, nil
}

func resolveONVIF(ctx context.Context, c *Client) (Vendor, error) {
	fp, err := probeONVIF(ctx, c, true)
	if err != nil {
		return nil, err
	}
	if !fp.api {
		return nil, fmt.Errorf("does not answer like an ONVIF camera (%s)", fp.seen)
	}
	return newONVIF(c)
}

func (o *onvifVendor) Name() string { return "onvif" }

func (o *onvifVendor) Settings(w Wanted) []Setting {
	return []Setting{o.discovery(), o.ntp(w), o.dns(w), o.gateway(w)}
}

func (o *onvifVendor) Reboot(context.Context) error {
	return errors.New("cordon does not reboot cameras over ONVIF: reboot this camera by hand, then run harden again")
}

func (o *onvifVendor) Probe(ctx context.Context) error {
	_, err := o.c.GetDeviceInformation(ctx)
	return onvifErr(err)
}

func (o *onvifVendor) Close(context.Context) { o.c.Close() }

// onvifErr maps camnet/onvif's errors onto this package's (absent,
// refused, redirect, too large, unreachable) and drops its camera prefix:
// the setting error names the camera.
func onvifErr(err error) error {
	if err == nil {
		return nil
	}
	var f *soap.Fault
	var oe *onvif.Error
	var ne *net.OpError
	op := "ONVIF"
	msg := err.Error()
	if errors.As(err, &oe) {
		op, msg = oe.Op, oe.Err.Error()
	}
	switch {
	case errors.As(err, &f) && f.Has("", "ActionNotSupported"):
		return fmt.Errorf("%s: %w", op, ErrAbsent)
	case errors.Is(err, onvif.ErrUnauthorized):
		return fmt.Errorf("%s: %w", op, ErrUnauthorized)
	case errors.Is(err, onvif.ErrRedirect):
		return fmt.Errorf("%s: %w", op, ErrRedirect)
	case errors.Is(err, onvif.ErrTooLarge):
		return fmt.Errorf("%s: %w", op, errTooLarge)
	case errors.As(err, &ne) || strings.Contains(msg, "no answer in time"):
		return fmt.Errorf("%s: %w", op, &unreachableError{"cannot reach the camera: " + clean(msg, 120)})
	}
	return fmt.Errorf("%s: %s", op, clean(msg, 200))
}

func (o *onvifVendor) discovery() Setting {
	return Setting{
		Name: SettingDiscovery, Want: "off", Optional: true,
		Read: func(ctx context.Context) (Reading, error) {
			on, err := o.c.GetDiscoveryMode(ctx)
			if err != nil {
				return Reading{}, onvifErr(err)
			}
			return Reading{Have: map[bool]string{true: "on", false: "off"}[on], OK: !on}, nil
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			return Outcome{}, onvifErr(o.c.SetDiscoveryMode(ctx, false))
		},
	}
}

func hostList(hs []onvif.NetworkHost) string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Value)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func (o *onvifVendor) ntp(w Wanted) Setting {
	want := "off"
	if w.NTP.IsValid() {
		want = w.NTP.Addr().String() // ONVIF NTP has no port: 123
	}
	return Setting{
		Name: SettingNTP, Want: want,
		Read: func(ctx context.Context) (Reading, error) {
			if w.NTP.IsValid() && w.NTP.Port() != 123 {
				return Reading{}, errors.New("ONVIF cannot give a camera an NTP port: for this camera camera_network.ntp_listen must use port 123")
			}
			info, err := o.c.GetNTP(ctx)
			if err != nil {
				return Reading{}, onvifErr(err)
			}
			have := hostList(info.Manual)
			if info.FromDHCP {
				return Reading{Have: "from DHCP (" + hostList(info.FromDHCPServers) + ")"}, nil
			}
			ok := len(info.Manual) == 0
			if w.NTP.IsValid() {
				ok = len(info.Manual) == 1 && info.Manual[0].Value == w.NTP.Addr().String()
			}
			return Reading{Have: have, OK: ok}, nil
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			var hosts []onvif.NetworkHost
			if w.NTP.IsValid() {
				hosts = []onvif.NetworkHost{onvif.Host(w.NTP.Addr().String())}
			}
			return Outcome{}, onvifErr(o.c.SetNTP(ctx, false, hosts))
		},
	}
}

func (o *onvifVendor) dns(w Wanted) Setting {
	return Setting{
		Name: SettingDNS, Want: w.dnsWant(),
		Read: func(ctx context.Context) (Reading, error) {
			info, err := o.c.GetDNS(ctx)
			if err != nil {
				return Reading{}, onvifErr(err)
			}
			if info.FromDHCP {
				return Reading{Have: "from DHCP (" + dnsHave(info.FromDHCPServers) + ")"}, nil
			}
			return Reading{Have: dnsHave(info.Manual), OK: w.dnsOK(info.Manual)}, nil
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			info, err := o.c.GetDNS(ctx)
			if err != nil {
				return Outcome{}, onvifErr(err)
			}
			var servers []string
			if w.DNS.IsValid() {
				servers = []string{w.DNS.String()}
			}
			return Outcome{}, onvifErr(o.c.SetDNS(ctx, false, info.SearchDomain, servers))
		},
	}
}

// subnet returns the camera's first enabled IPv4 address and mask.
func (o *onvifVendor) subnet(ctx context.Context) (string, string, error) {
	ifs, err := o.c.GetNetworkInterfaces(ctx)
	if err != nil {
		return "", "", onvifErr(err)
	}
	for _, ni := range ifs {
		if !ni.Enabled || !ni.IPv4Enabled || len(ni.IPv4) == 0 {
			continue
		}
		ip, bits, _ := strings.Cut(ni.IPv4[0], "/")
		n, err := strconv.Atoi(bits)
		if err != nil {
			break
		}
		return ip, net.IP(net.CIDRMask(n, 32)).String(), nil
	}
	return "", "", errors.New("GetNetworkInterfaces: the camera reports no IPv4 address")
}

func (o *onvifVendor) gateway(w Wanted) Setting {
	read := func(ctx context.Context, _ bool) (Reading, onvif.Gateway, bool, error) {
		ip, mask, err := o.subnet(ctx)
		if err != nil {
			return Reading{}, onvif.Gateway{}, false, err
		}
		want, none, err := w.gatewayDecision(ip, mask)
		if err != nil {
			return Reading{}, onvif.Gateway{}, false, fmt.Errorf("GetNetworkInterfaces: %w", err)
		}
		gw, err := o.c.GetNetworkDefaultGateway(ctx)
		if err != nil {
			return Reading{}, gw, false, onvifErr(err)
		}
		set := 0
		for _, a := range gw.IPv4 {
			if !emptyAddr(a) {
				set++
			}
		}
		have := "none"
		if set > 0 {
			have = strings.Join(gw.IPv4, ", ")
		}
		return Reading{Have: have, Want: want, OK: !none || set == 0}, gw, none, nil
	}
	return gatewaySetting(read, func(ctx context.Context, gw onvif.Gateway) (Outcome, error) {
		return Outcome{}, onvifErr(o.c.SetNetworkDefaultGateway(ctx, onvif.Gateway{IPv6: gw.IPv6}))
	})
}
