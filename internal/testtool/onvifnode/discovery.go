package onvifnode

import (
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"cordon/internal/soap"
)

// ProbeMessage is a WS-Discovery Probe (SOAP 1.2, WS-Addressing 2004/08)
// for types ("" = any device) carrying messageID.
func ProbeMessage(types, messageID string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"` +
		` xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"` +
		` xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header>` +
		`<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action><a:MessageID>` + messageID + `</a:MessageID>` +
		`<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>` +
		`<s:Body><d:Probe><d:Types>` + types + `</d:Types></d:Probe></s:Body></s:Envelope>`)
}

// Prober is a VMS looking for ONVIF devices: a UDP socket that multicasts
// WS-Discovery probes on one interface and reads the answers.
type Prober struct {
	c   net.PacketConn
	buf []byte
}

// NewProber opens the prober's socket on local (an IPv4 host:port)
// multicasting on the interface named ifname; it is closed when the test
// ends.
func NewProber(t testing.TB, local, ifname string) *Prober {
	t.Helper()
	c, err := net.ListenPacket("udp4", local)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	pc := ipv4.NewPacketConn(c)
	if err := errors.Join(pc.SetMulticastInterface(ifi), pc.SetMulticastLoopback(true)); err != nil {
		t.Fatal(err)
	}
	return &Prober{c: c, buf: make([]byte, 8192)}
}

// Send multicasts a Probe for types with messageID to group.
func (p *Prober) Send(t testing.TB, group *net.UDPAddr, types, messageID string) {
	t.Helper()
	if _, err := p.c.WriteTo(ProbeMessage(types, messageID), group); err != nil {
		t.Fatal(err)
	}
}

// Answer returns the next answer, parsed and as received; none within
// fails the test.
func (p *Prober) Answer(t testing.TB, within time.Duration) (*soap.Envelope, []byte) {
	t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(within))
	n, _, err := p.c.ReadFrom(p.buf)
	if err != nil {
		t.Fatalf("no ProbeMatch: %v", err)
	}
	raw := p.buf[:n]
	env, err := soap.ParseEnvelopeBytes(raw, soap.Limits{})
	if err != nil {
		t.Fatalf("ProbeMatch %s: %v", raw, err)
	}
	return env, raw
}

// NoAnswer fails the test (naming what) when an answer arrives within d.
func (p *Prober) NoAnswer(t testing.TB, d time.Duration, what string) {
	t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(d))
	if n, _, err := p.c.ReadFrom(p.buf); err == nil {
		t.Fatalf("%s: %s", what, p.buf[:n])
	}
}
