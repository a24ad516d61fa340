package directory

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// refuseStartTLS is an LDAP server that answers StartTLS with
// protocolError and records every later request it receives.
func refuseStartTLS(t *testing.T) (addr string, later func() []int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var tags []int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				for first := true; ; first = false {
					p, err := ber.ReadPacket(c)
					if err != nil || len(p.Children) < 2 {
						return
					}
					if !first {
						mu.Lock()
						tags = append(tags, int64(p.Children[1].Tag))
						mu.Unlock()
						continue
					}
					id, _ := p.Children[0].Value.(int64)
					resp := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
					resp.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
					ext := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationExtendedResponse, nil, "Extended Response")
					ext.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(goldap.LDAPResultProtocolError), "resultCode"))
					ext.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
					ext.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "no TLS here", "diagnosticMessage"))
					resp.AppendChild(ext)
					if _, err := c.Write(resp.Bytes()); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String(), func() []int64 {
		mu.Lock()
		defer mu.Unlock()
		return append([]int64(nil), tags...)
	}
}

// ldap:// always means StartTLS: a directory that refuses it gets no bind,
// no search and no password, only ErrUnavailable.
func TestLDAPStartTLSRefusedNoPlainText(t *testing.T) {
	addr, later := refuseStartTLS(t)
	l := newLDAP(t, func(l *LDAP) { l.URL = "ldap://" + addr })
	_, err := l.Authenticate(ctxT(t), "alice", "alice-pw-1")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "StartTLS refused") {
		t.Errorf("err = %v, want ErrUnavailable naming StartTLS", err)
	}
	l.Close()
	for _, tag := range later() {
		if tag == goldap.ApplicationBindRequest || tag == goldap.ApplicationSearchRequest {
			t.Errorf("request with application tag %d sent after StartTLS was refused", tag)
		}
	}
}
