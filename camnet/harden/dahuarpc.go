package harden

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// dahuaRPC is configManager over Dahua's JSON-RPC (/RPC2_Login, /RPC2),
// for cameras whose CGI is off. Login is the public two-step handshake
// (seen in open-source Dahua clients): global.login with an empty password
// answers a realm and a random; the second global.login sends
// MD5(user:random:MD5(user:realm:password)) in upper-case hex
// ("Default" encryption), never the password. setConfig posts the whole
// table of a config name back with the changes applied, and its answer may
// carry "NeedReboot" in params.options (FIELD-NOTES).
type dahuaRPC struct {
	c *Client

	mu      sync.Mutex
	session string
	id      int
	// written holds the tables set in this run: a later change to the
	// same config name starts from them, not from the camera's running
	// values (which a camera needing a reboot still reports).
	written map[string][]byte
}

const (
	rpcLoginPath = "/RPC2_Login"
	rpcPath      = "/RPC2"
)

// rpcAnswer is the shape of every JSON-RPC answer.
type rpcAnswer struct {
	ID      int             `json:"id"`
	Result  json.RawMessage `json:"result"`
	Params  json.RawMessage `json:"params"`
	Session json.RawMessage `json:"session"`
	Error   *struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (a *rpcAnswer) ok() bool { return bytes.Equal(bytes.TrimSpace(a.Result), []byte("true")) }

// sessionString accepts a session as a JSON string or number.
func (a *rpcAnswer) sessionString() string {
	var s string
	if json.Unmarshal(a.Session, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(a.Session, &n) == nil {
		return n.String()
	}
	return ""
}

func (a *rpcAnswer) errText() string {
	if a.Error == nil {
		return "result false"
	}
	return fmt.Sprintf("error %d (%s)", a.Error.Code, clean(a.Error.Message, 60))
}

// post sends one JSON-RPC request and decodes the answer.
func (d *dahuaRPC) post(ctx context.Context, path string, req map[string]any) (*rpcAnswer, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	label := fmt.Sprintf("%s (%v)", path, req["method"])
	r, err := d.c.Do(ctx, http.MethodPost, path, "application/json", body)
	if err != nil {
		return nil, reqError("POST", label, err)
	}
	if r.Status != http.StatusOK {
		if err := checkStatus(r); err != nil {
			return nil, reqError("POST", label, err)
		}
		return nil, reqError("POST", label, fmt.Errorf("camera answered %d", r.Status))
	}
	a, err := parseRPCAnswer(r.Body)
	if err != nil {
		return nil, reqError("POST", label, err)
	}
	return a, nil
}

// parseRPCAnswer decodes a bounded JSON-RPC answer.
func parseRPCAnswer(body []byte) (*rpcAnswer, error) {
	var a rpcAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, errors.New("answer is not JSON-RPC")
	}
	return &a, nil
}

var rpcSafeRe = regexp.MustCompile(`^[A-Za-z0-9:_.\- ()]{0,128}$`)

// login runs the two-step global.login.
func (d *dahuaRPC) login(ctx context.Context) error {
	first, err := d.post(ctx, rpcLoginPath, map[string]any{"method": "global.login", "id": d.nextID(),
		"params": map[string]any{"userName": d.c.Username, "password": "", "clientType": "Web3.0", "loginType": "Direct"}})
	if err != nil {
		return err
	}
	var ch struct {
		Realm, Random, Encryption string
	}
	if err := json.Unmarshal(first.Params, &ch); err != nil || ch.Random == "" || !rpcSafeRe.MatchString(ch.Realm+ch.Random) {
		return errors.New("POST /RPC2_Login: the camera gave no usable login challenge")
	}
	if ch.Encryption != "" && ch.Encryption != "Default" {
		return fmt.Errorf("POST /RPC2_Login: the camera asks for login encryption %q, which cordon does not speak", clean(ch.Encryption, 20))
	}
	session := first.sessionString()
	if session == "" || !rpcSafeRe.MatchString(session) {
		return errors.New("POST /RPC2_Login: the camera gave no usable session")
	}
	hash := md5Upper(d.c.Username + ":" + ch.Random + ":" + md5Upper(d.c.Username+":"+ch.Realm+":"+d.c.Password))
	second, err := d.post(ctx, rpcLoginPath, map[string]any{"method": "global.login", "id": d.nextID(), "session": session,
		"params": map[string]any{"userName": d.c.Username, "password": hash, "clientType": "Web3.0",
			"loginType": "Direct", "authorityType": "Default"}})
	if err != nil {
		return err
	}
	if !second.ok() {
		return ErrUnauthorized
	}
	d.mu.Lock()
	d.session = session
	d.mu.Unlock()
	return nil
}

func md5Upper(s string) string {
	h := md5.Sum([]byte(s))
	return strings.ToUpper(hex.EncodeToString(h[:]))
}

func (d *dahuaRPC) nextID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.id++
	return d.id
}

// call runs a method in the session, logging in first and once more when
// the camera says the session is gone (after a reboot, or a timeout).
func (d *dahuaRPC) call(ctx context.Context, method string, params any) (*rpcAnswer, error) {
	for attempt := 0; attempt < 2; attempt++ {
		d.mu.Lock()
		session := d.session
		d.mu.Unlock()
		if session == "" {
			if err := d.login(ctx); err != nil {
				return nil, err
			}
			d.mu.Lock()
			session = d.session
			d.mu.Unlock()
		}
		a, err := d.post(ctx, rpcPath, map[string]any{"method": method, "params": params, "id": d.nextID(), "session": session})
		if err != nil {
			return nil, err
		}
		if !a.ok() && a.Error != nil && sessionGone(a.Error.Code) && attempt == 0 {
			d.mu.Lock()
			d.session = ""
			d.mu.Unlock()
			continue
		}
		return a, nil
	}
	return nil, errors.New("POST /RPC2: the camera keeps refusing the session")
}

// sessionGone: Dahua's "invalid session" / "not logged in" codes.
func sessionGone(code int64) bool { return code == 287637505 || code == 287637504 }

func (d *dahuaRPC) getConfig(ctx context.Context, name string) (map[string]string, error) {
	table, err := d.rawTable(ctx, name)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if err := flattenJSON(name, table, out, 0); err != nil {
		return nil, fmt.Errorf("configManager.getConfig %s: %w", name, err)
	}
	return out, nil
}

// rawTable returns params.table of configManager.getConfig.
func (d *dahuaRPC) rawTable(ctx context.Context, name string) (any, error) {
	if !dahuaNameRe.MatchString(name) {
		return nil, errors.New("bad config name")
	}
	a, err := d.call(ctx, "configManager.getConfig", map[string]any{"name": name})
	if err != nil {
		return nil, err
	}
	if !a.ok() {
		return nil, fmt.Errorf("configManager.getConfig %s: %s: %w", name, a.errText(), ErrAbsent)
	}
	var p struct {
		Table json.RawMessage `json:"table"`
	}
	if err := json.Unmarshal(a.Params, &p); err != nil || len(p.Table) == 0 {
		return nil, fmt.Errorf("configManager.getConfig %s: the answer has no table", name)
	}
	dec := json.NewDecoder(bytes.NewReader(p.Table))
	dec.UseNumber()
	var table any
	if err := dec.Decode(&table); err != nil {
		return nil, fmt.Errorf("configManager.getConfig %s: the table is not JSON", name)
	}
	return table, nil
}

func (d *dahuaRPC) setConfig(ctx context.Context, name string, changes map[string]string) (Outcome, error) {
	if len(changes) == 0 {
		return Outcome{}, nil
	}
	var table any
	var err error
	if b, ok := d.written[name]; ok {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		err = dec.Decode(&table)
	} else {
		table, err = d.rawTable(ctx, name)
	}
	if err != nil {
		return Outcome{}, err
	}
	for k, v := range changes {
		rest, ok := strings.CutPrefix(k, name)
		if !ok || !dahuaKeyRe.MatchString(k) {
			return Outcome{}, fmt.Errorf("bad config key %q", k)
		}
		if err := setJSONPath(table, rest, v); err != nil {
			return Outcome{}, fmt.Errorf("configManager.setConfig %s: %s: %w", name, k, err)
		}
	}
	a, err := d.call(ctx, "configManager.setConfig", map[string]any{"name": name, "table": table, "options": []string{}})
	if err != nil {
		return Outcome{}, err
	}
	if !a.ok() {
		return Outcome{}, fmt.Errorf("configManager.setConfig %s: %s", name, a.errText())
	}
	if b, err := json.Marshal(table); err == nil {
		if d.written == nil {
			d.written = map[string][]byte{}
		}
		d.written[name] = b
	}
	var p struct {
		Options []string `json:"options"`
	}
	_ = json.Unmarshal(a.Params, &p)
	for _, o := range p.Options {
		if o == "NeedReboot" {
			return Outcome{NeedsReboot: true}, nil
		}
	}
	return Outcome{}, nil
}

func (d *dahuaRPC) reboot(ctx context.Context) error {
	a, err := d.call(ctx, "magicBox.reboot", nil)
	if err != nil {
		return err
	}
	if !a.ok() {
		return fmt.Errorf("magicBox.reboot: %s", a.errText())
	}
	d.mu.Lock()
	d.session = ""
	d.mu.Unlock()
	return nil
}

// probe sends the credential-free first step of the login.
func (d *dahuaRPC) probe(ctx context.Context) error {
	_, err := d.c.Anonymous(ctx, http.MethodPost, rpcLoginPath, "application/json", rpcProbeBody)
	return err
}

var rpcProbeBody = []byte(`{"method":"global.login","params":{"userName":"","password":"","clientType":"Web3.0"},"id":1}`)

func (d *dahuaRPC) close(ctx context.Context) {
	d.mu.Lock()
	session := d.session
	d.mu.Unlock()
	if session != "" {
		_, _ = d.post(ctx, rpcPath, map[string]any{"method": "global.logout", "params": nil, "id": d.nextID(), "session": session})
	}
}

// Bounds of flattenJSON.
const (
	maxFlatKeys  = 4096
	maxFlatDepth = 12
)

// flattenJSON turns a config table into the CGI's flat keys:
// {"Enable":true} under "NTP" -> "NTP.Enable"="true"; arrays as [i].
func flattenJSON(prefix string, v any, out map[string]string, depth int) error {
	if depth > maxFlatDepth {
		return errors.New("the table is nested too deeply")
	}
	if len(out) > maxFlatKeys {
		return errors.New("the table has too many fields")
	}
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			if !dahuaNameRe.MatchString(k) {
				continue // not a key cordon could ever ask for
			}
			if err := flattenJSON(prefix+"."+k, sub, out, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for i, sub := range t {
			if i >= 1000 {
				return errors.New("the table has too many entries")
			}
			if err := flattenJSON(prefix+"["+strconv.Itoa(i)+"]", sub, out, depth+1); err != nil {
				return err
			}
		}
	case bool:
		out[prefix] = strconv.FormatBool(t)
	case json.Number:
		out[prefix] = t.String()
	case string:
		out[prefix] = t
	case nil:
		out[prefix] = ""
	}
	return nil
}

var pathSegRe = regexp.MustCompile(`\.([A-Za-z0-9_]+)|\[([0-9]{1,3})\]`)

// setJSONPath sets the field at path (".eth0.DnsServers[0]", "[0].Enable")
// of a decoded table in place, keeping the field's JSON type (bool,
// number, string).
func setJSONPath(root any, path, value string) error {
	segs := pathSegRe.FindAllStringSubmatch(path, -1)
	joined := ""
	for _, s := range segs {
		joined += s[0]
	}
	if len(segs) == 0 || joined != path {
		return errors.New("bad field path")
	}
	cur := root
	for i, s := range segs {
		last := i == len(segs)-1
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[s[1]]
			if s[1] == "" || !ok {
				return errors.New("no such field")
			}
			if last {
				nv, err := typedValue(v, value)
				c[s[1]] = nv
				return err
			}
			cur = v
		case []any:
			n, err := strconv.Atoi(s[2])
			if s[2] == "" || err != nil || n >= len(c) {
				return errors.New("no such entry")
			}
			if last {
				nv, err := typedValue(c[n], value)
				c[n] = nv
				return err
			}
			cur = c[n]
		default:
			return errors.New("no such field")
		}
	}
	return nil
}

// typedValue converts value to the JSON type of old (unchanged on error).
func typedValue(old any, value string) (any, error) {
	switch old.(type) {
	case bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return old, errors.New("not a boolean")
		}
		return b, nil
	case json.Number:
		if _, err := strconv.ParseFloat(value, 64); err != nil {
			return old, errors.New("not a number")
		}
		return json.Number(value), nil
	case string, nil:
		return value, nil
	}
	return old, errors.New("not a value field")
}
