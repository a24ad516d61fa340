package harden

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// Hikvision time and network settings: /ISAPI/System/time (timeMode),
// /ISAPI/System/time/ntpServers/1 and
// /ISAPI/System/Network/interfaces/1/ipAddress (PrimaryDNS, SecondaryDNS,
// DefaultGateway), shapes from FIELD-NOTES.

// ntpRead returns (enabled, server, port) from the time documents.
func (h *hikvision) ntpRead(ctx context.Context) (bool, string, int, error) {
	t, err := h.get(ctx, isapiTime)
	if err != nil {
		return false, "", 0, err
	}
	mode := t.child("timeMode")
	if mode == nil {
		return false, "", 0, reqError("GET", isapiTime, errors.New("the answer has no timeMode"))
	}
	if !strings.EqualFold(mode.value(), "NTP") {
		return false, "", 0, nil
	}
	s, err := h.get(ctx, isapiNTPServer)
	if err != nil {
		return false, "", 0, err
	}
	server := s.child("ipAddress").value()
	if strings.EqualFold(s.child("addressingFormatType").value(), "hostname") || server == "" {
		server = s.child("hostName").value()
	}
	port, _ := strconv.Atoi(s.child("portNo").value())
	return true, server, port, nil
}

func (h *hikvision) ntp(w Wanted) Setting {
	return Setting{
		Name: SettingNTP, Want: w.ntpWant(),
		Read: func(ctx context.Context) (Reading, error) {
			on, server, port, err := h.ntpRead(ctx)
			if err != nil {
				return Reading{}, err
			}
			return Reading{Have: ntpHave(on, server, port), OK: w.ntpOK(on, server, port)}, nil
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			var out Outcome
			mode := "manual"
			if w.NTP.IsValid() {
				mode = "NTP"
				s, err := h.getForWrite(ctx, isapiNTPServer)
				if err != nil {
					return out, err
				}
				s.ensure("addressingFormatType").setValue("ipaddress")
				if n := s.child("hostName"); n != nil {
					n.setValue("")
				}
				s.ensure("ipAddress").setValue(w.NTP.Addr().String())
				s.ensure("portNo").setValue(strconv.Itoa(int(w.NTP.Port())))
				if out, err = h.put(ctx, isapiNTPServer, s); err != nil {
					return out, err
				}
			}
			t, err := h.getForWrite(ctx, isapiTime)
			if err != nil {
				return out, err
			}
			t.ensure("timeMode").setValue(mode)
			o2, err := h.put(ctx, isapiTime, t)
			out.NeedsReboot = out.NeedsReboot || o2.NeedsReboot
			return out, err
		},
	}
}

// dnsNodes returns the DNS server fields of the ipAddress document
// (created when missing, so that a write sets them).
func dnsNodes(doc *node) []*node {
	return []*node{doc.ensure("PrimaryDNS").ensure("ipAddress"), doc.ensure("SecondaryDNS").ensure("ipAddress")}
}

func (h *hikvision) dns(w Wanted) Setting {
	return Setting{
		Name: SettingDNS, Want: w.dnsWant(),
		Read: func(ctx context.Context) (Reading, error) {
			doc, err := h.get(ctx, isapiIPAddress)
			if err != nil {
				return Reading{}, err
			}
			if doc.path("PrimaryDNS", "ipAddress") == nil {
				return Reading{}, reqError("GET", isapiIPAddress, errors.New("the answer has no PrimaryDNS"))
			}
			var servers []string
			for _, n := range dnsNodes(doc) {
				servers = append(servers, n.value())
			}
			return Reading{Have: dnsHave(servers), OK: w.dnsOK(servers)}, nil
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			doc, err := h.getForWrite(ctx, isapiIPAddress)
			if err != nil {
				return Outcome{}, err
			}
			for _, n := range dnsNodes(doc) {
				n.setValue(w.dnsSet())
			}
			return h.put(ctx, isapiIPAddress, doc)
		},
	}
}

func (h *hikvision) gateway(w Wanted) Setting {
	read := func(ctx context.Context, forWrite bool) (Reading, *node, bool, error) {
		get := h.get
		if forWrite {
			get = h.getForWrite
		}
		doc, err := get(ctx, isapiIPAddress)
		if err != nil {
			return Reading{}, nil, false, err
		}
		want, none, err := w.gatewayDecision(doc.child("ipAddress").value(), doc.child("subnetMask").value())
		if err != nil {
			return Reading{}, nil, false, reqError("GET", isapiIPAddress, err)
		}
		gwNode := doc.path("DefaultGateway", "ipAddress")
		if gwNode == nil && none {
			return Reading{}, nil, false, reqError("GET", isapiIPAddress, errors.New("the answer has no DefaultGateway"))
		}
		gw := gwNode.value()
		have := gw
		if emptyAddr(gw) {
			have = "none"
		}
		return Reading{Have: have, Want: want, OK: !none || emptyAddr(gw)}, doc, none, nil
	}
	return gatewaySetting(read, func(ctx context.Context, doc *node) (Outcome, error) {
		doc.ensure("DefaultGateway").ensure("ipAddress").setValue("0.0.0.0")
		return h.put(ctx, isapiIPAddress, doc)
	})
}
