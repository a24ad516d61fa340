package democam

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Emulated Hikvision ISAPI. Endpoint and element names are the public ones
// (FIELD-NOTES "Camera settings that make a camera reach out"; open-source
// ISAPI scripts: PUT /ISAPI/System/Network/EZVIZ <EZVIZ><enabled>,
// /ISAPI/System/time/ntpServers/1 <NTPServer> with addressingFormatType,
// hostName, ipAddress, portNo; FTPNotificationList; mailingList/mailing/
// sender/smtp/hostName; ResponseStatus statusCode 1 OK, 4 notSupport,
// 7 Reboot Required). Bonjour is absent on this model (notSupport).

const isapiNS = "http://www.hikvision.com/ver20/XMLSchema"

func hikFactory(host string) map[string]string {
	return map[string]string{
		"EZVIZ.enabled": "true", "Ehome.enabled": "true", "UPnP.enabled": "true", "ports.enabled": "true",
		"DDNS.enabled": "true", "mailing.host": "smtp.example.com", "ftp.enabled": "true",
		"time.mode": "NTP", "ntp.format": "hostname", "ntp.host": "time.windows.com", "ntp.ip": "", "ntp.port": "123",
		"ip.address": host, "ip.mask": "255.0.0.0", "ip.gateway": "127.255.255.254",
		"ip.dns1": "8.8.8.8", "ip.dns2": "8.8.4.4",
	}
}

// isapiDoc is one emulated document: render builds it from the running
// settings; fields maps element paths of a PUT body to setting keys.
type isapiDoc struct {
	render func(get func(string) string) string
	fields map[string]string
}

var isapiDocs = map[string]isapiDoc{
	"/ISAPI/System/deviceInfo": {render: func(func(string) string) string {
		return `<DeviceInfo><deviceName>democam</deviceName><model>DS-2CD2143G2-IS</model>` +
			`<serialNumber>DEMOCAM0001</serialNumber><firmwareVersion>V5.7.3</firmwareVersion></DeviceInfo>`
	}},
	"/ISAPI/System/Network/EZVIZ": {render: func(g func(string) string) string {
		return `<EZVIZ><enabled>` + g("EZVIZ.enabled") + `</enabled><registerStatus>false</registerStatus>` +
			`<redirect>true</redirect><serverAddress><addressingFormatType>hostname</addressingFormatType>` +
			`<hostName>litedev.hik-connect.com</hostName></serverAddress><verificationCode>DEMOCODE</verificationCode></EZVIZ>`
	}, fields: map[string]string{"EZVIZ/enabled": "EZVIZ.enabled"}},
	"/ISAPI/System/Network/Ehome": {render: func(g func(string) string) string {
		return `<Ehome><enabled>` + g("Ehome.enabled") + `</enabled><addressingFormatType>ipaddress</addressingFormatType>` +
			`<ipAddress>0.0.0.0</ipAddress><portNo>7660</portNo><deviceID></deviceID></Ehome>`
	}, fields: map[string]string{"Ehome/enabled": "Ehome.enabled"}},
	"/ISAPI/System/Network/UPnP": {render: func(g func(string) string) string {
		return `<UPnP><enabled>` + g("UPnP.enabled") + `</enabled><name>democam</name></UPnP>`
	}, fields: map[string]string{"UPnP/enabled": "UPnP.enabled"}},
	"/ISAPI/System/Network/UPnP/ports": {render: func(g func(string) string) string {
		return `<ports><enabled>` + g("ports.enabled") + `</enabled><mapmode>auto</mapmode><portList></portList></ports>`
	}, fields: map[string]string{"ports/enabled": "ports.enabled"}},
	"/ISAPI/System/Network/DDNS": {render: func(g func(string) string) string {
		return `<DDNSList><DDNS><id>1</id><enabled>` + g("DDNS.enabled") + `</enabled><provider>HiDDNS</provider>` +
			`<serverAddress><addressingFormatType>hostname</addressingFormatType><hostName>www.hik-online.com</hostName>` +
			`</serverAddress></DDNS></DDNSList>`
	}, fields: map[string]string{"DDNSList/DDNS/enabled": "DDNS.enabled"}},
	"/ISAPI/System/Network/mailing": {render: func(g func(string) string) string {
		return `<mailingList><mailing><id>1</id><sender><name>democam</name><emailAddress>cam@example.com</emailAddress>` +
			`<smtp><enableAuthorization>false</enableAuthorization><enableSSL>false</enableSSL>` +
			`<addressingFormatType>hostname</addressingFormatType><hostName>` + esc(g("mailing.host")) + `</hostName>` +
			`<portNo>25</portNo></smtp></sender><receiverList></receiverList></mailing></mailingList>`
	}, fields: map[string]string{"mailingList/mailing/sender/smtp/hostName": "mailing.host"}},
	"/ISAPI/System/Network/ftp": {render: func(g func(string) string) string {
		return `<FTPNotificationList><FTPNotification><id>1</id><enabled>` + g("ftp.enabled") + `</enabled>` +
			`<addressingFormatType>ipaddress</addressingFormatType><ipAddress>198.51.100.7</ipAddress><portNo>21</portNo>` +
			`<userName>cam</userName></FTPNotification></FTPNotificationList>`
	}, fields: map[string]string{"FTPNotificationList/FTPNotification/enabled": "ftp.enabled"}},
	"/ISAPI/System/time": {render: func(g func(string) string) string {
		return `<Time><timeMode>` + g("time.mode") + `</timeMode><localTime>` + time.Now().UTC().Format("2006-01-02T15:04:05") +
			`</localTime><timeZone>CST+0:00:00</timeZone></Time>`
	}, fields: map[string]string{"Time/timeMode": "time.mode"}},
	"/ISAPI/System/time/ntpServers/1": {render: func(g func(string) string) string {
		return `<NTPServer><id>1</id><addressingFormatType>` + g("ntp.format") + `</addressingFormatType><hostName>` +
			esc(g("ntp.host")) + `</hostName><ipAddress>` + esc(g("ntp.ip")) + `</ipAddress><portNo>` + g("ntp.port") +
			`</portNo><synchronizeInterval>1440</synchronizeInterval></NTPServer>`
	}, fields: map[string]string{"NTPServer/addressingFormatType": "ntp.format", "NTPServer/hostName": "ntp.host",
		"NTPServer/ipAddress": "ntp.ip", "NTPServer/portNo": "ntp.port"}},
	"/ISAPI/System/Network/interfaces/1/ipAddress": {render: func(g func(string) string) string {
		return `<IPAddress><ipVersion>v4</ipVersion><addressingType>static</addressingType><ipAddress>` + g("ip.address") +
			`</ipAddress><subnetMask>` + g("ip.mask") + `</subnetMask><DefaultGateway><ipAddress>` + g("ip.gateway") +
			`</ipAddress></DefaultGateway><PrimaryDNS><ipAddress>` + g("ip.dns1") + `</ipAddress></PrimaryDNS>` +
			`<SecondaryDNS><ipAddress>` + g("ip.dns2") + `</ipAddress></SecondaryDNS></IPAddress>`
	}, fields: map[string]string{"IPAddress/ipAddress": "ip.address", "IPAddress/subnetMask": "ip.mask",
		"IPAddress/DefaultGateway/ipAddress": "ip.gateway", "IPAddress/PrimaryDNS/ipAddress": "ip.dns1",
		"IPAddress/SecondaryDNS/ipAddress": "ip.dns2"}},
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// withNS puts the ISAPI namespace and version on a document's root.
func withNS(doc string) string {
	i := strings.IndexByte(doc, '>')
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + doc[:i] + ` version="2.0" xmlns="` + isapiNS + `"` + doc[i:]
}

func (v *VendorAPI) serveISAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "Hikvision-Webs")
	if !v.authorized(w, r) {
		return
	}
	path := r.URL.Path
	if path == "/ISAPI/System/reboot" && r.Method == http.MethodPut {
		v.answerThenReboot(w, r, "application/xml", []byte(isapiStatusDoc(path, "1", "OK", "ok")))
		return
	}
	doc, ok := isapiDocs[path]
	if !ok {
		isapiStatus(w, path, http.StatusForbidden, "4", "Invalid Operation", "notSupport")
		return
	}
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write([]byte(withNS(doc.render(v.read))))
	case http.MethodPut:
		if doc.fields == nil {
			isapiStatus(w, path, http.StatusForbidden, "4", "Invalid Operation", "methodNotAllowed")
			return
		}
		body, err := readBody(r)
		var vals map[string]string
		if err == nil {
			vals, err = leafValues(body)
		}
		if err != nil {
			isapiStatus(w, path, http.StatusBadRequest, "5", "Invalid XML Format", "badXmlFormat")
			return
		}
		changes := map[string]string{}
		for p, key := range doc.fields {
			if val, ok := vals[p]; ok {
				changes[key] = val
			}
		}
		if len(changes) == 0 {
			isapiStatus(w, path, http.StatusBadRequest, "6", "Invalid Content", "badParameters")
			return
		}
		if v.write(changes) {
			isapiStatus(w, path, http.StatusOK, "7", "Reboot Required", "rebootRequired")
			return
		}
		isapiStatus(w, path, http.StatusOK, "1", "OK", "ok")
	default:
		isapiStatus(w, path, http.StatusMethodNotAllowed, "4", "Invalid Operation", "methodNotAllowed")
	}
}

func isapiStatus(w http.ResponseWriter, path string, status int, code, text, sub string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, isapiStatusDoc(path, code, text, sub))
}

func isapiStatusDoc(path, code, text, sub string) string {
	return withNS(`<ResponseStatus><requestURL>` + esc(path) + `</requestURL><statusCode>` + code +
		`</statusCode><statusString>` + text + `</statusString><subStatusCode>` + sub + `</subStatusCode></ResponseStatus>`)
}

// leafValues maps the element paths of a PUT body ("EZVIZ/enabled") to
// their text; a repeated path keeps its first value. DOCTYPEs are refused.
func leafValues(body []byte) (map[string]string, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	out := map[string]string{}
	var stack []string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			if len(stack) == 0 && len(out) > 0 {
				return out, nil
			}
			return nil, errors.New("bad XML")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > 16 {
				return nil, errors.New("too deep")
			}
			stack = append(stack, t.Name.Local)
			text.Reset()
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			p := strings.Join(stack, "/")
			if _, dup := out[p]; !dup {
				out[p] = strings.TrimSpace(text.String())
			}
			text.Reset()
			stack = stack[:len(stack)-1]
		case xml.Directive:
			return nil, errors.New("directive")
		}
	}
}
