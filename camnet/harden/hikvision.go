package harden

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// hikvision speaks ISAPI (HTTP Digest, XML bodies). Endpoint shapes are the
// public ones listed in FIELD-NOTES ("Camera settings that make a camera
// reach out") and seen in open-source ISAPI configuration scripts (e.g.
// PUT /ISAPI/System/Network/EZVIZ with <EZVIZ><enabled>false</enabled>,
// /ISAPI/System/time/ntpServers/1 with addressingFormatType/ipAddress/
// portNo, ResponseStatus statusCode 1 = OK, 7 = Reboot Required). Every
// change is a read-modify-write of the camera's own document, so fields
// cordon does not know are sent back unchanged. A document written in this
// run is modified from what was written, not re-read: a camera that
// applies changes only after a reboot still reads back its old values,
// and a second change to the same document (DNS, then gateway) must not
// undo the first.
type hikvision struct {
	c       *Client
	written map[string][]byte // path -> body last PUT in this run
}

const (
	isapiDeviceInfo = "/ISAPI/System/deviceInfo"
	isapiIPAddress  = "/ISAPI/System/Network/interfaces/1/ipAddress"
	isapiTime       = "/ISAPI/System/time"
	isapiNTPServer  = "/ISAPI/System/time/ntpServers/1"
	isapiMailing    = "/ISAPI/System/Network/mailing"
	isapiReboot     = "/ISAPI/System/reboot"
)

func (h *hikvision) Name() string { return "hikvision" }

func (h *hikvision) Settings(w Wanted) []Setting {
	return []Setting{
		h.flag(SettingHikConnect, "/ISAPI/System/Network/EZVIZ", "", false),
		h.flag(SettingISUP, "/ISAPI/System/Network/Ehome", "", true),
		h.flag(SettingUPnP, "/ISAPI/System/Network/UPnP", "", false),
		h.flag(SettingPortMapping, "/ISAPI/System/Network/UPnP/ports", "", true),
		h.flag(SettingDDNS, "/ISAPI/System/Network/DDNS", "DDNS", true),
		h.email(),
		h.flag(SettingFTP, "/ISAPI/System/Network/ftp", "FTPNotification", true),
		h.flag(SettingBonjour, "/ISAPI/System/Network/Bonjour", "", true),
		h.ntp(w),
		h.dns(w),
		h.gateway(w),
	}
}

func (h *hikvision) Reboot(ctx context.Context) error {
	_, err := h.put(ctx, isapiReboot, nil)
	return err
}

func (h *hikvision) Probe(ctx context.Context) error {
	_, err := h.c.Anonymous(ctx, http.MethodGet, isapiDeviceInfo, "", nil)
	return err
}

func (h *hikvision) Close(context.Context) {}

// get reads an ISAPI document.
func (h *hikvision) get(ctx context.Context, path string) (*node, error) {
	r, err := h.c.Do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return nil, reqError("GET", path, err)
	}
	if r.Status != http.StatusOK {
		return nil, reqError("GET", path, isapiStatusError(r))
	}
	doc, err := parseXML(r.Body)
	if err != nil {
		return nil, reqError("GET", path, err)
	}
	if doc.local == "ResponseStatus" { // some firmware answers 200 with a status
		return nil, reqError("GET", path, isapiStatusError(&Response{Status: http.StatusForbidden, Body: r.Body}))
	}
	if roots, ok := isapiRoots[path]; ok && !slices.Contains(roots, doc.local) {
		return nil, reqError("GET", path, fmt.Errorf("unexpected <%s> document", clean(doc.local, 40)))
	}
	return doc, nil
}

// isapiRoots are the root elements each document may have: anything else
// is not an answer about that setting.
var isapiRoots = map[string][]string{
	"/ISAPI/System/Network/EZVIZ":      {"EZVIZ"},
	"/ISAPI/System/Network/Ehome":      {"Ehome"},
	"/ISAPI/System/Network/UPnP":       {"UPnP"},
	"/ISAPI/System/Network/UPnP/ports": {"ports"},
	"/ISAPI/System/Network/DDNS":       {"DDNSList", "DDNS"},
	"/ISAPI/System/Network/ftp":        {"FTPNotificationList", "FTPNotification"},
	"/ISAPI/System/Network/Bonjour":    {"Bonjour"},
	isapiMailing:                       {"mailingList", "mailing"},
	isapiTime:                          {"Time"},
	isapiNTPServer:                     {"NTPServer"},
	isapiIPAddress:                     {"IPAddress"},
	isapiDeviceInfo:                    {"DeviceInfo"},
}

// getForWrite returns the document to modify: the one written earlier in
// this run, or the camera's.
func (h *hikvision) getForWrite(ctx context.Context, path string) (*node, error) {
	if b, ok := h.written[path]; ok {
		return parseXML(b)
	}
	return h.get(ctx, path)
}

// put writes an ISAPI document (nil = empty body) and interprets the
// ResponseStatus.
func (h *hikvision) put(ctx context.Context, path string, doc *node) (Outcome, error) {
	var body []byte
	if doc != nil {
		body = doc.marshal()
		if h.written == nil {
			h.written = map[string][]byte{}
		}
		h.written[path] = body
	}
	r, err := h.c.Do(ctx, http.MethodPut, path, "application/xml", body)
	if err != nil {
		return Outcome{}, reqError("PUT", path, err)
	}
	if r.Status != http.StatusOK {
		return Outcome{}, reqError("PUT", path, isapiStatusError(r))
	}
	st, err := parseXML(r.Body)
	if err != nil || st.local != "ResponseStatus" {
		return Outcome{}, reqError("PUT", path, errors.New("answer is not an ISAPI ResponseStatus"))
	}
	switch code := st.child("statusCode").value(); code {
	case "1":
		return Outcome{}, nil
	case "7":
		return Outcome{NeedsReboot: true}, nil
	default:
		return Outcome{}, reqError("PUT", path, fmt.Errorf("camera answered statusCode %s (%s)",
			clean(code, 8), clean(st.child("subStatusCode").value(), 40)))
	}
}

// isapiStatusError interprets a non-200 ISAPI answer: "notSupport" is
// ErrAbsent, then the generic HTTP meanings.
func isapiStatusError(r *Response) error {
	if st, err := parseXML(r.Body); err == nil && st.local == "ResponseStatus" {
		sub := st.child("subStatusCode").value()
		switch {
		case strings.EqualFold(sub, "notSupport"):
			return ErrAbsent
		case strings.EqualFold(sub, "lowPrivilege"):
			return ErrForbidden
		}
		if r.Status == http.StatusForbidden || r.Status == http.StatusBadRequest {
			return fmt.Errorf("camera answered %d, statusCode %s (%s)", r.Status,
				clean(st.child("statusCode").value(), 8), clean(sub, 40))
		}
	}
	if err := checkStatus(r); err != nil {
		return err
	}
	return fmt.Errorf("camera answered %d", r.Status)
}

// flag is an on/off switch: <enabled> in the root, or in every item of a
// list (item = the list entry's element name).
func (h *hikvision) flag(name, path, item string, optional bool) Setting {
	enabled := func(doc *node) ([]*node, error) {
		items := []*node{doc}
		if item != "" && doc.local != item {
			items = doc.all(item)
		}
		var out []*node
		for _, it := range items {
			if e := it.child("enabled"); e != nil {
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			if item != "" && len(items) == 0 {
				return nil, nil // an empty list: nothing configured
			}
			return nil, errors.New("the answer has no <enabled>")
		}
		return out, nil
	}
	return Setting{
		Name: name, Want: "off", Optional: optional,
		Read: func(ctx context.Context) (Reading, error) {
			doc, err := h.get(ctx, path)
			if err != nil {
				return Reading{}, err
			}
			es, err := enabled(doc)
			if err != nil {
				return Reading{}, reqError("GET", path, err)
			}
			on := 0
			for _, e := range es {
				if !strings.EqualFold(e.value(), "false") {
					on++
				}
			}
			return Reading{Have: onOff(on, len(es)), OK: on == 0}, nil
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			doc, err := h.getForWrite(ctx, path)
			if err != nil {
				return Outcome{}, err
			}
			es, err := enabled(doc)
			if err != nil {
				return Outcome{}, reqError("GET", path, err)
			}
			for _, e := range es {
				e.setValue("false")
			}
			return h.put(ctx, path, doc)
		},
	}
}

// onOff describes on switches out of n.
func onOff(on, n int) string {
	switch {
	case on == 0:
		return "off"
	case n == 1:
		return "on"
	}
	return fmt.Sprintf("on (%d of %d)", on, n)
}

// email is the SMTP server of the mailing list: off when none is set.
func (h *hikvision) email() Setting {
	smtps := func(doc *node) []*node {
		ms := []*node{doc}
		if doc.local != "mailing" {
			ms = doc.all("mailing")
		}
		var out []*node
		for _, m := range ms {
			if s := m.path("sender", "smtp"); s != nil {
				out = append(out, s)
			}
		}
		return out
	}
	server := func(s *node) string {
		if host := s.child("hostName").value(); host != "" {
			return host
		}
		if ip := s.child("ipAddress").value(); ip != "" && ip != "0.0.0.0" {
			return ip
		}
		return ""
	}
	return Setting{
		Name: SettingEmail, Want: "off (no SMTP server)", Optional: true,
		Read: func(ctx context.Context) (Reading, error) {
			doc, err := h.get(ctx, isapiMailing)
			if err != nil {
				return Reading{}, err
			}
			var servers []string
			for _, s := range smtps(doc) {
				if srv := server(s); srv != "" {
					servers = append(servers, srv)
				}
			}
			if len(servers) == 0 {
				return Reading{Have: "off", OK: true}, nil
			}
			return Reading{Have: "smtp " + strings.Join(servers, ", ")}, nil
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			doc, err := h.getForWrite(ctx, isapiMailing)
			if err != nil {
				return Outcome{}, err
			}
			for _, s := range smtps(doc) {
				if n := s.child("hostName"); n != nil {
					n.setValue("")
				}
				if n := s.child("ipAddress"); n != nil {
					n.setValue("0.0.0.0")
				}
			}
			return h.put(ctx, isapiMailing, doc)
		},
	}
}
