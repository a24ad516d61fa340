package harden

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// The camera is the attacker: every parser of camera answers is fuzzed.

func FuzzParseXML(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?><EZVIZ version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema"><enabled>true</enabled></EZVIZ>`))
	f.Add([]byte(`<ResponseStatus><statusCode>7</statusCode><subStatusCode>rebootRequired</subStatusCode></ResponseStatus>`))
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>`))
	f.Add([]byte(`<a:b xmlns:a="u" a:c="&lt;"><d>x<e/>y</d></a:b>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parseXML(data)
		if err != nil {
			return
		}
		// What cordon writes back must parse to the same leaf values.
		out := doc.marshal()
		again, err := parseXML(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled document: %v\n%s", err, out)
		}
		if again.local != doc.local || len(again.children) != len(doc.children) {
			t.Fatalf("round trip changed the document")
		}
		if len(doc.children) == 0 && again.value() != doc.value() {
			t.Fatalf("round trip changed the text: %q vs %q", doc.value(), again.value())
		}
	})
}

func FuzzDahuaTable(f *testing.F) {
	f.Add([]byte("table.T2UServer.Enable=true\r\ntable.DDNS[0].Enable=false\r\n"))
	f.Add([]byte("Error\r\nBad Request!\r\n"))
	f.Add([]byte("table.Network.eth0.DnsServers[1]=8.8.8.8\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseDahuaTable(data)
		if err != nil {
			return
		}
		if len(cfg) > maxDahuaLines {
			t.Fatalf("%d keys", len(cfg))
		}
		for k := range cfg {
			if !dahuaKeyRe.MatchString(k) {
				t.Fatalf("key %q passed", k)
			}
		}
	})
}

func FuzzDahuaRPC(f *testing.F) {
	f.Add([]byte(`{"id":3,"result":true,"params":{"table":{"Enable":true,"Port":123,"Address":"x"}},"session":"abc"}`))
	f.Add([]byte(`{"id":3,"result":true,"params":{"table":[{"Enable":false},{"Enable":true}]},"session":12}`))
	f.Add([]byte(`{"result":false,"error":{"code":287637505,"message":"Invalid session"},"params":{"realm":"Login to x","random":"1"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := parseRPCAnswer(data)
		if err != nil {
			return
		}
		_ = a.ok()
		_ = a.sessionString()
		_ = a.errText()
		var p struct {
			Table json.RawMessage `json:"table"`
		}
		if json.Unmarshal(a.Params, &p) != nil || len(p.Table) == 0 {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(p.Table))
		dec.UseNumber()
		var table any
		if dec.Decode(&table) != nil {
			return
		}
		flat := map[string]string{}
		if flattenJSON("X", table, flat, 0) != nil {
			return
		}
		for k := range flat {
			if err := setJSONPath(table, strings.TrimPrefix(k, "X"), "1"); err != nil && !strings.Contains(err.Error(), "not a") {
				t.Fatalf("a flattened key %q cannot be set: %v", k, err)
			}
		}
	})
}
