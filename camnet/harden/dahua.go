package harden

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// dahua speaks Dahua's configManager through the HTTP CGI
// (/cgi-bin/configManager.cgi?action=getConfig&name=X answering
// "table.X.Key=value" lines, action=setConfig&X.Key=value answering "OK";
// HTTP Digest) or, when the CGI is off, the JSON-RPC at /RPC2
// (configManager.getConfig/setConfig, which may answer NeedReboot). Names
// and keys are the public ones of FIELD-NOTES and open-source scripts
// (T2UServer.Enable, VSP_PaaS.Enable, UPnP.Enable, DDNS[0].Enable,
// Email.Enable, NAS[0].Enable, Bonjour.Enable, NTP.Address/Port/Enable,
// Network.eth0.DnsServers[0], Network.eth0.DefaultGateway).
type dahua struct {
	c   *Client
	api dahuaAPI
}

// dahuaAPI is one way of reaching configManager. Config values are flat:
// "NTP.Address" -> "10.20.0.1", "DDNS[0].Enable" -> "false".
type dahuaAPI interface {
	getConfig(ctx context.Context, name string) (map[string]string, error)
	setConfig(ctx context.Context, name string, changes map[string]string) (Outcome, error)
	reboot(ctx context.Context) error
	probe(ctx context.Context) error
	close(ctx context.Context)
}

func (d *dahua) Name() string { return "dahua" }

func (d *dahua) Settings(w Wanted) []Setting {
	return []Setting{
		d.flag(SettingEasy4IP, "T2UServer", false),
		d.flag(SettingPaaS, "VSP_PaaS", true),
		d.flag(SettingUPnP, "UPnP", false),
		d.flag(SettingDDNS, "DDNS", true),
		d.flag(SettingEmail, "Email", true),
		d.flag(SettingFTP, "NAS", true),
		d.flag(SettingBonjour, "Bonjour", true),
		d.ntp(w),
		d.dns(w),
		d.gateway(w),
	}
}

func (d *dahua) Reboot(ctx context.Context) error { return d.api.reboot(ctx) }
func (d *dahua) Probe(ctx context.Context) error  { return d.api.probe(ctx) }
func (d *dahua) Close(ctx context.Context)        { d.api.close(ctx) }

// flag is NAME.Enable, or NAME[i].Enable for every entry of a list.
func (d *dahua) flag(setting, name string, optional bool) Setting {
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `(\[[0-9]{1,3}\])?\.Enable$`)
	switches := func(ctx context.Context) (map[string]string, error) {
		cfg, err := d.api.getConfig(ctx, name)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for k, v := range cfg {
			if re.MatchString(k) {
				out[k] = v
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("getConfig %s: the answer has no %s.Enable", name, name)
		}
		return out, nil
	}
	return Setting{
		Name: setting, Want: "off", Optional: optional,
		Read: func(ctx context.Context) (Reading, error) {
			sw, err := switches(ctx)
			if err != nil {
				return Reading{}, err
			}
			on := 0
			for _, v := range sw {
				if !strings.EqualFold(v, "false") {
					on++
				}
			}
			return Reading{Have: onOff(on, len(sw)), OK: on == 0}, nil
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			sw, err := switches(ctx)
			if err != nil {
				return Outcome{}, err
			}
			changes := map[string]string{}
			for k, v := range sw {
				if !strings.EqualFold(v, "false") {
					changes[k] = "false"
				}
			}
			return d.api.setConfig(ctx, name, changes)
		},
	}
}

func (d *dahua) ntp(w Wanted) Setting {
	read := func(ctx context.Context) (bool, string, int, error) {
		cfg, err := d.api.getConfig(ctx, "NTP")
		if err != nil {
			return false, "", 0, err
		}
		enable, ok := cfg["NTP.Enable"]
		if !ok {
			return false, "", 0, errors.New("getConfig NTP: the answer has no NTP.Enable")
		}
		port, _ := strconv.Atoi(cfg["NTP.Port"])
		return strings.EqualFold(enable, "true"), cfg["NTP.Address"], port, nil
	}
	return Setting{
		Name: SettingNTP, Want: w.ntpWant(),
		Read: func(ctx context.Context) (Reading, error) {
			on, server, port, err := read(ctx)
			if err != nil {
				return Reading{}, err
			}
			return Reading{Have: ntpHave(on, server, port), OK: w.ntpOK(on, server, port)}, nil
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			changes := map[string]string{"NTP.Enable": "false"}
			if w.NTP.IsValid() {
				changes = map[string]string{"NTP.Enable": "true", "NTP.Address": w.NTP.Addr().String(),
					"NTP.Port": strconv.Itoa(int(w.NTP.Port()))}
			}
			return d.api.setConfig(ctx, "NTP", changes)
		},
	}
}

var ifaceRe = regexp.MustCompile(`^[A-Za-z0-9_]{1,16}$`)

// network reads the Network config and the default interface's prefix
// ("Network.eth0.").
func (d *dahua) network(ctx context.Context) (map[string]string, string, error) {
	cfg, err := d.api.getConfig(ctx, "Network")
	if err != nil {
		return nil, "", err
	}
	iface := cfg["Network.DefaultInterface"]
	if iface == "" {
		iface = "eth0"
	}
	if !ifaceRe.MatchString(iface) {
		return nil, "", errors.New("getConfig Network: the default interface name is not usable")
	}
	return cfg, "Network." + iface + ".", nil
}

func (d *dahua) dns(w Wanted) Setting {
	return Setting{
		Name: SettingDNS, Want: w.dnsWant(),
		Read: func(ctx context.Context) (Reading, error) {
			cfg, p, err := d.network(ctx)
			if err != nil {
				return Reading{}, err
			}
			if _, ok := cfg[p+"DnsServers[0]"]; !ok {
				return Reading{}, errors.New("getConfig Network: the answer has no DnsServers")
			}
			servers := []string{cfg[p+"DnsServers[0]"], cfg[p+"DnsServers[1]"]}
			return Reading{Have: dnsHave(servers), OK: w.dnsOK(servers)}, nil
		},
		Apply: func(ctx context.Context) (Outcome, error) {
			_, p, err := d.network(ctx)
			if err != nil {
				return Outcome{}, err
			}
			return d.api.setConfig(ctx, "Network", map[string]string{
				p + "DnsServers[0]": w.dnsSet(), p + "DnsServers[1]": w.dnsSet()})
		},
	}
}

func (d *dahua) gateway(w Wanted) Setting {
	read := func(ctx context.Context, _ bool) (Reading, string, bool, error) {
		cfg, p, err := d.network(ctx)
		if err != nil {
			return Reading{}, "", false, err
		}
		want, none, err := w.gatewayDecision(cfg[p+"IPAddress"], cfg[p+"SubnetMask"])
		if err != nil {
			return Reading{}, "", false, fmt.Errorf("getConfig Network: %w", err)
		}
		gw, ok := cfg[p+"DefaultGateway"]
		if !ok && none {
			return Reading{}, "", false, errors.New("getConfig Network: the answer has no DefaultGateway")
		}
		have := gw
		if emptyAddr(gw) {
			have = "none"
		}
		return Reading{Have: have, Want: want, OK: !none || emptyAddr(gw)}, p, none, nil
	}
	return gatewaySetting(read, func(ctx context.Context, p string) (Outcome, error) {
		return d.api.setConfig(ctx, "Network", map[string]string{p + "DefaultGateway": "0.0.0.0"})
	})
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dahuaCGI is configManager over /cgi-bin (HTTP Digest).
type dahuaCGI struct{ c *Client }

const (
	dahuaConfigCGI = "/cgi-bin/configManager.cgi"
	dahuaMagicBox  = "/cgi-bin/magicBox.cgi"
)

var (
	dahuaNameRe = regexp.MustCompile(`^[A-Za-z0-9_]{1,40}$`)
	dahuaKeyRe  = regexp.MustCompile(`^[A-Za-z0-9_]+(\[[0-9]{1,3}\])?(\.[A-Za-z0-9_]+(\[[0-9]{1,3}\])?){0,8}$`)
)

func (d *dahuaCGI) getConfig(ctx context.Context, name string) (map[string]string, error) {
	if !dahuaNameRe.MatchString(name) {
		return nil, errors.New("bad config name")
	}
	pq := dahuaConfigCGI + "?action=getConfig&name=" + name
	r, err := d.c.Do(ctx, http.MethodGet, pq, "", nil)
	if err != nil {
		return nil, reqError("GET", pq, err)
	}
	if err := dahuaCGIStatus(r); err != nil {
		return nil, reqError("GET", pq, err)
	}
	cfg, err := parseDahuaTable(r.Body)
	if err != nil {
		return nil, reqError("GET", pq, err)
	}
	return cfg, nil
}

func (d *dahuaCGI) setConfig(ctx context.Context, name string, changes map[string]string) (Outcome, error) {
	if len(changes) == 0 {
		return Outcome{}, nil
	}
	var q strings.Builder
	q.WriteString(dahuaConfigCGI + "?action=setConfig")
	for _, k := range keys(changes) {
		if !dahuaKeyRe.MatchString(k) || !strings.HasPrefix(k, name) {
			return Outcome{}, fmt.Errorf("bad config key %q", k)
		}
		q.WriteString("&" + k + "=" + url.QueryEscape(changes[k]))
	}
	pq := q.String()
	label := dahuaConfigCGI + "?action=setConfig (" + name + ")"
	r, err := d.c.Do(ctx, http.MethodGet, pq, "", nil)
	if err != nil {
		return Outcome{}, reqError("GET", label, err)
	}
	if err := dahuaCGIStatus(r); err != nil {
		return Outcome{}, reqError("GET", label, err)
	}
	if !bytes.EqualFold(bytes.TrimSpace(r.Body), []byte("OK")) {
		return Outcome{}, reqError("GET", label, errors.New("camera did not answer OK"))
	}
	return Outcome{}, nil
}

func (d *dahuaCGI) reboot(ctx context.Context) error {
	pq := dahuaMagicBox + "?action=reboot"
	r, err := d.c.Do(ctx, http.MethodGet, pq, "", nil)
	if err == nil {
		err = dahuaCGIStatus(r)
	}
	if err != nil {
		return reqError("GET", pq, err)
	}
	return nil
}

func (d *dahuaCGI) probe(ctx context.Context) error {
	_, err := d.c.Anonymous(ctx, http.MethodGet, dahuaMagicBox+"?action=getDeviceType", "", nil)
	return err
}

func (d *dahuaCGI) close(context.Context) {}

// dahuaCGIStatus: 200 passes; 400 "Error / Bad Request!" is the CGI's
// answer for a config name it does not have (ErrAbsent); any other
// "Error" is an error (a camera without the right must never look like
// one without the feature); then the generic meanings.
func dahuaCGIStatus(r *Response) error {
	body := bytes.TrimSpace(r.Body)
	if bytes.HasPrefix(body, []byte("Error")) {
		if r.Status == http.StatusBadRequest && bytes.Contains(body, []byte("Bad Request")) && len(body) < 64 {
			return ErrAbsent
		}
		return fmt.Errorf("camera answered %d %q", r.Status, clean(strings.Join(strings.Fields(string(body)), " "), 60))
	}
	if r.Status == http.StatusOK {
		return nil
	}
	if err := checkStatus(r); err != nil {
		return err
	}
	return fmt.Errorf("camera answered %d", r.Status)
}

// Bounds of parseDahuaTable.
const (
	maxDahuaLines = 4096
	maxDahuaLine  = 4096
)

// parseDahuaTable parses a getConfig answer: "table.Key=value" lines
// (CRLF or LF). Keys must be Dahua-shaped; the "table." prefix is removed;
// a repeated key keeps its first value.
func parseDahuaTable(body []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 1024), maxDahuaLine)
	n := 0
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if n++; n > maxDahuaLines {
			return nil, errors.New("config answer has too many lines")
		}
		k, v, ok := strings.Cut(line, "=")
		k, ok2 := strings.CutPrefix(k, "table.")
		if !ok || !ok2 || !dahuaKeyRe.MatchString(k) {
			return nil, errors.New("config answer is not table.Key=value lines")
		}
		if _, dup := out[k]; !dup {
			out[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, errors.New("config answer has a line too long")
	}
	return out, nil
}
