package democam

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Emulated Dahua configManager. Shapes are the public ones (FIELD-NOTES;
// open-source scripts: GET /cgi-bin/configManager.cgi?action=getConfig&
// name=T2UServer answering "table.T2UServer.Enable=true" lines,
// action=setConfig&T2UServer.Enable=false answering "OK", "Error" with
// 400 for what the device does not have; magicBox.cgi?action=reboot;
// JSON-RPC at /RPC2_Login (global.login: first an empty password for a
// realm and random, then MD5(user:random:MD5(user:realm:password)) upper
// case) and /RPC2 (configManager.getConfig/setConfig with "table", which
// may answer "NeedReboot" in params.options, magicBox.reboot,
// global.logout)).

func dahuaFactory(host string) map[string]string {
	return map[string]string{
		"T2UServer.Enable": "true", "VSP_PaaS.Enable": "true", "UPnP.Enable": "true",
		"DDNS[0].Enable": "true", "DDNS[0].Protocol": "Dahua DDNS", "DDNS[0].HostName": "www.dahuaddns.com",
		"Email.Enable": "true", "Email.Address": "smtp.example.com", "Email.Port": "25",
		"NAS[0].Enable": "false", "NAS[0].Protocol": "FTP", "NAS[0].Address": "0.0.0.0",
		"Bonjour.Enable": "true", "Bonjour.ServerName": "democam",
		"NTP.Enable": "true", "NTP.Address": "clock.isc.org", "NTP.Port": "123", "NTP.TimeZone": "0",
		"Network.DefaultInterface": "eth0", "Network.eth0.IPAddress": host, "Network.eth0.SubnetMask": "255.0.0.0",
		"Network.eth0.DefaultGateway": "127.255.255.254", "Network.eth0.DhcpEnable": "false",
		"Network.eth0.DnsServers[0]": "8.8.8.8", "Network.eth0.DnsServers[1]": "114.114.114.114",
	}
}

func (v *VendorAPI) serveDahua(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/RPC2_Login" || r.URL.Path == "/RPC2":
		v.serveRPC(w, r)
	case v.CGIDisabled:
		http.NotFound(w, r)
	case r.URL.Path == "/cgi-bin/configManager.cgi" || r.URL.Path == "/cgi-bin/magicBox.cgi":
		if !v.authorized(w, r) {
			return
		}
		v.serveCGI(w, r)
	default:
		http.NotFound(w, r)
	}
}

func cgiError(w http.ResponseWriter) {
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte("Error\r\nBad Request!\r\n"))
}

// configOf returns the running keys of one config name.
func (v *VendorAPI) configOf(name string) map[string]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]string{}
	for k, val := range v.running {
		if strings.HasPrefix(k, name+".") || strings.HasPrefix(k, name+"[") {
			out[k] = val
		}
	}
	return out
}

func (v *VendorAPI) serveCGI(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch action := q.Get("action"); {
	case r.URL.Path == "/cgi-bin/magicBox.cgi" && action == "getDeviceType":
		_, _ = w.Write([]byte("type=IPC-HFW2431S\r\n"))
	case r.URL.Path == "/cgi-bin/magicBox.cgi" && action == "reboot":
		v.answerThenReboot(w, r, "text/plain", []byte("OK\r\n"))
	case action == "getConfig":
		cfg := v.configOf(q.Get("name"))
		if len(cfg) == 0 {
			cgiError(w)
			return
		}
		keys := make([]string, 0, len(cfg))
		for k := range cfg {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			_, _ = fmt.Fprintf(w, "table.%s=%s\r\n", k, cfg[k])
		}
	case action == "setConfig":
		changes := map[string]string{}
		for k, vals := range q {
			if k != "action" && len(vals) > 0 {
				changes[k] = vals[0]
			}
		}
		if !v.known(changes) {
			cgiError(w)
			return
		}
		v.write(changes)
		_, _ = w.Write([]byte("OK\r\n"))
	default:
		cgiError(w)
	}
}

// known reports whether every key exists (a camera refuses unknown keys).
func (v *VendorAPI) known(changes map[string]string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k := range changes {
		if _, ok := v.running[k]; !ok {
			return false
		}
	}
	return len(changes) > 0
}

type rpcRequest struct {
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      int             `json:"id"`
	Session string          `json:"session"`
}

func (v *VendorAPI) serveRPC(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	var req rpcRequest
	if err != nil || r.Method != http.MethodPost || json.Unmarshal(body, &req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	answer := func(a map[string]any) {
		a["id"] = req.ID
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a)
	}
	if r.URL.Path == "/RPC2_Login" {
		answer(v.rpcLogin(req))
		return
	}
	v.mu.Lock()
	ok := v.sessions[req.Session]
	v.mu.Unlock()
	if !ok {
		answer(map[string]any{"result": false, "session": req.Session,
			"error": map[string]any{"code": 287637505, "message": "Invalid session in request data!"}})
		return
	}
	v.mu.Lock()
	v.requests = append(v.requests, "RPC "+req.Method)
	v.mu.Unlock()
	a := v.rpcCall(req)
	if req.Method == "magicBox.reboot" && a["result"] == true {
		a["id"] = req.ID
		b, _ := json.Marshal(a)
		v.answerThenReboot(w, r, "application/json", b)
		return
	}
	answer(a)
}

// rpcLogin is the two-step global.login.
func (v *VendorAPI) rpcLogin(req rpcRequest) map[string]any {
	var p struct {
		UserName, Password string
	}
	_ = json.Unmarshal(req.Params, &p)
	v.mu.Lock()
	defer v.mu.Unlock()
	random := v.nonce
	if p.Password == "" || req.Session == "" {
		session := randomHexString(16)
		return map[string]any{"result": false, "session": session,
			"error":  map[string]any{"code": 268632079, "message": "Component error: login challenge!"},
			"params": map[string]any{"realm": v.realm, "random": random, "encryption": "Default"}}
	}
	want := md5Upper(v.Username + ":" + random + ":" + md5Upper(v.Username+":"+v.realm+":"+v.Password))
	if p.UserName != v.Username || p.Password != want {
		return map[string]any{"result": false, "session": req.Session,
			"error": map[string]any{"code": 268632085, "message": "Login failed"}}
	}
	v.sessions[req.Session] = true
	return map[string]any{"result": true, "session": req.Session, "params": nil}
}

func md5Upper(s string) string {
	h := md5.Sum([]byte(s))
	return strings.ToUpper(hex.EncodeToString(h[:]))
}

func (v *VendorAPI) rpcCall(req rpcRequest) map[string]any {
	var p struct {
		Name  string          `json:"name"`
		Table json.RawMessage `json:"table"`
	}
	_ = json.Unmarshal(req.Params, &p)
	fail := map[string]any{"result": false, "session": req.Session,
		"error": map[string]any{"code": 268959743, "message": "Unknown error! "}}
	switch req.Method {
	case "configManager.getConfig":
		cfg := v.configOf(p.Name)
		if len(cfg) == 0 {
			return fail
		}
		return map[string]any{"result": true, "session": req.Session, "params": map[string]any{"table": unflatten(p.Name, cfg)}}
	case "configManager.setConfig":
		var table any
		if json.Unmarshal(p.Table, &table) != nil {
			return fail
		}
		changes := map[string]string{}
		flattenInto(p.Name, table, changes, 0)
		if !v.known(changes) {
			return fail
		}
		options := []string{}
		if v.write(changes) {
			options = append(options, "NeedReboot")
		}
		return map[string]any{"result": true, "session": req.Session, "params": map[string]any{"options": options}}
	case "magicBox.reboot":
		return map[string]any{"result": true, "session": req.Session, "params": nil}
	case "global.logout":
		v.mu.Lock()
		delete(v.sessions, req.Session)
		v.mu.Unlock()
		return map[string]any{"result": true, "session": req.Session, "params": nil}
	}
	return fail
}

var segRe = regexp.MustCompile(`\.([A-Za-z0-9_]+)|\[([0-9]+)\]`)

// unflatten builds the JSON table of a config name from flat keys
// (Enable/Port/TimeZone-typed values become booleans and numbers).
func unflatten(name string, kv map[string]string) any {
	var root any
	for k, val := range kv {
		segs := segRe.FindAllStringSubmatch(strings.TrimPrefix(k, name), -1)
		root = place(root, segs, typed(k, val))
	}
	return root
}

func place(cur any, segs [][]string, val any) any {
	if len(segs) == 0 {
		return val
	}
	s := segs[0]
	if s[1] != "" {
		m, _ := cur.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		m[s[1]] = place(m[s[1]], segs[1:], val)
		return m
	}
	i, _ := strconv.Atoi(s[2])
	a, _ := cur.([]any)
	for len(a) <= i {
		a = append(a, nil)
	}
	a[i] = place(a[i], segs[1:], val)
	return a
}

func typed(key, val string) any {
	switch {
	case strings.HasSuffix(key, "Enable"):
		return val == "true"
	case strings.HasSuffix(key, ".Port") || strings.HasSuffix(key, ".TimeZone"):
		n, _ := strconv.Atoi(val)
		return n
	}
	return val
}

// flattenInto is unflatten's inverse, bounded.
func flattenInto(prefix string, v any, out map[string]string, depth int) {
	if depth > 12 || len(out) > 1024 {
		return
	}
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			flattenInto(prefix+"."+k, sub, out, depth+1)
		}
	case []any:
		for i, sub := range t {
			flattenInto(prefix+"["+strconv.Itoa(i)+"]", sub, out, depth+1)
		}
	case bool:
		out[prefix] = strconv.FormatBool(t)
	case float64:
		out[prefix] = strconv.FormatFloat(t, 'f', -1, 64)
	case string:
		out[prefix] = t
	}
}
