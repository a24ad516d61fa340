package harden

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"cordon/internal/httpdigest"
)

// Vendor detection talks only to the configured admin host and sends no
// credentials: it reads the answers to unauthenticated requests on each
// vendor's API path (ONVIF: GetSystemDateAndTime, which ONVIF answers
// without credentials, asked only when neither ISAPI nor Dahua answered). Fingerprints (FIELD-NOTES "Camera behaviour seen in
// the field"): Hikvision's web server calls itself Hikvision-Webs or
// DNVRS-Webs (App-webs on newer firmware) and uses Digest realms such as
// "hikvision", "DS-..." or "IP Camera(...)"; Dahua's Digest realm is
// "Login to <id>", also in its RPC2 login challenge.

// fingerprint is what one vendor probe saw.
type fingerprint struct {
	api  bool   // the vendor's API path answered like that API
	mark bool   // a vendor mark (Server header, realm) was seen
	rpc  bool   // Dahua: only the RPC2 API answered (CGI off)
	seen string // for errors: what the camera answered (sanitized)
}

// realmOf returns the realm of an answer's Digest challenge ("" if none).
func realmOf(r *Response) string {
	ch, err := httpdigest.FindChallenge(r.Header.Values("WWW-Authenticate"))
	if err != nil {
		return ""
	}
	return ch.Realm
}

func hikMark(r *Response) bool {
	srv := strings.ToLower(r.Header.Get("Server"))
	realm := strings.ToLower(realmOf(r))
	return strings.Contains(srv, "hikvision-webs") || strings.Contains(srv, "dnvrs-webs") ||
		strings.HasPrefix(srv, "app-webs") || realm == "hikvision" ||
		strings.HasPrefix(realm, "ds-") || strings.HasPrefix(realm, "ip camera(")
}

func dahuaMark(r *Response) bool { return strings.HasPrefix(realmOf(r), "Login to ") }

func describeAnswer(req string, r *Response) string {
	s := fmt.Sprintf("%s answered %d", req, r.Status)
	if realm := realmOf(r); realm != "" {
		s += fmt.Sprintf(" with realm %q", clean(realm, 40))
	}
	if srv := r.Header.Get("Server"); srv != "" {
		s += fmt.Sprintf(", Server %q", clean(srv, 40))
	}
	return s
}

// probeHikvision asks GET /ISAPI/System/deviceInfo without credentials.
func probeHikvision(ctx context.Context, c *Client) (fingerprint, error) {
	r, err := c.Anonymous(ctx, http.MethodGet, isapiDeviceInfo, "", nil)
	if err != nil {
		return fingerprint{}, reqError("GET", isapiDeviceInfo, err)
	}
	fp := fingerprint{seen: describeAnswer("GET "+isapiDeviceInfo, r)}
	switch r.Status {
	case http.StatusUnauthorized:
		fp.api, fp.mark = true, hikMark(r)
	case http.StatusOK:
		if doc, err := parseXML(r.Body); err == nil && doc.local == "DeviceInfo" {
			fp.api, fp.mark = true, true
		}
	}
	return fp, nil
}

// probeDahua asks the CGI, then the RPC2 login challenge, without
// credentials.
func probeDahua(ctx context.Context, c *Client) (fingerprint, error) {
	const cgi = dahuaMagicBox + "?action=getDeviceType"
	r, err := c.Anonymous(ctx, http.MethodGet, cgi, "", nil)
	if err != nil {
		return fingerprint{}, reqError("GET", cgi, err)
	}
	fp := fingerprint{seen: describeAnswer("GET "+cgi, r)}
	if r.Status == http.StatusUnauthorized {
		fp.api, fp.mark = true, dahuaMark(r)
		return fp, nil
	}
	r, err = c.Anonymous(ctx, http.MethodPost, rpcLoginPath, "application/json", rpcProbeBody)
	if err != nil {
		return fp, nil // the CGI answer stands; the RPC2 path is not required
	}
	fp.seen += "; " + describeAnswer("POST "+rpcLoginPath, r)
	if a, err := parseRPCAnswer(r.Body); r.Status == http.StatusOK && err == nil {
		var p struct{ Realm string }
		if json.Unmarshal(a.Params, &p) == nil && strings.HasPrefix(p.Realm, "Login to ") {
			fp.api, fp.mark, fp.rpc = true, true, true
		}
	}
	return fp, nil
}

func newHikvision(c *Client) Vendor { return &hikvision{c: c} }

func newDahua(c *Client, fp fingerprint) Vendor {
	if fp.rpc {
		return &dahua{c: c, api: &dahuaRPC{c: c}}
	}
	return &dahua{c: c, api: &dahuaCGI{c: c}}
}

// Resolve returns the Vendor of a camera. For a configured vendor it
// checks that the camera answers like one (and not like another); for
// "auto" it picks the vendor whose API the camera answers. Nothing here
// sends credentials.
func Resolve(ctx context.Context, c *Client, vendor string) (Vendor, error) {
	switch vendor {
	case "hikvision":
		fp, err := probeHikvision(ctx, c)
		if err != nil {
			return nil, err
		}
		if !fp.api {
			return nil, fmt.Errorf("does not answer like a Hikvision camera (%s)", fp.seen)
		}
		if !fp.mark && strings.Contains(fp.seen, `realm "Login to `) {
			return nil, fmt.Errorf("answers with a Dahua fingerprint, not Hikvision (%s): check the camera's vendor", fp.seen)
		}
		return newHikvision(c), nil
	case "dahua":
		fp, err := probeDahua(ctx, c)
		if err != nil {
			return nil, err
		}
		if !fp.api || !fp.mark {
			return nil, fmt.Errorf("does not answer like a Dahua camera (%s)", fp.seen)
		}
		return newDahua(c, fp), nil
	case "onvif":
		return resolveONVIF(ctx, c)
	case "", "auto":
		return detect(ctx, c)
	}
	return nil, fmt.Errorf("unknown vendor %q", clean(vendor, 20))
}

// detect is vendor auto-detection.
func detect(ctx context.Context, c *Client) (Vendor, error) {
	hik, err := probeHikvision(ctx, c)
	if err != nil {
		if c.ONVIF != nil { // nothing at admin_url; the configured ONVIF service may answer
			return detectONVIF(ctx, c, err.Error())
		}
		return nil, err
	}
	dah, err := probeDahua(ctx, c)
	if err != nil {
		return nil, err
	}
	switch {
	case hik.api && !dah.api:
		return newHikvision(c), nil
	case dah.api && !hik.api && dah.mark:
		return newDahua(c, dah), nil
	case hik.api && dah.api && hik.mark && !dah.mark:
		return newHikvision(c), nil
	case hik.api && dah.api && dah.mark && !hik.mark:
		return newDahua(c, dah), nil
	case hik.api || dah.api:
		return nil, fmt.Errorf("vendor is ambiguous (%s; %s): set the camera's vendor", hik.seen, dah.seen)
	}
	return detectONVIF(ctx, c, hik.seen+"; "+dah.seen)
}

// detectONVIF is the last step of detection: the ONVIF device service.
func detectONVIF(ctx context.Context, c *Client, seen string) (Vendor, error) {
	onv, err := probeONVIF(ctx, c, false)
	if err != nil {
		return nil, err
	}
	if onv.api {
		return newONVIF(c)
	}
	return nil, errors.New("vendor not recognised (" + seen + "; " + onv.seen + "): set the camera's vendor")
}
