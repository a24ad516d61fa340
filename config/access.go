package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Rights a role may grant (auth.roles[].rights).
var rightNames = []string{"view", "ptz", "playback", "export"}

// PTZ priority bounds (auth.roles[].ptz_priority; 0 = the default, 100).
const (
	MinPTZPriority = 1
	MaxPTZPriority = 1000
)

var argon2Re = regexp.MustCompile(`^\$argon2id\$v=19\$m=([0-9]{1,10}),t=([0-9]{1,10}),p=([0-9]{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)

// Lockout is the sign-in lockout policy (auth.lockout): after Threshold
// failures from one address (any names), or for one name from one
// address, each further failure locks that key for Base doubling up to
// Max; failures are forgotten after Decay without one. A name is never
// locked for every address.
type Lockout struct {
	Threshold int    `mapstructure:"threshold"`
	Base      string `mapstructure:"base"`
	Max       string `mapstructure:"max"`
	Decay     string `mapstructure:"decay"`
}

// DefaultLockout: 5 failures, 1 s doubling to 15 min, forgotten after 30 min.
func DefaultLockout() Lockout {
	return Lockout{Threshold: 5, Base: "1s", Max: "15m", Decay: "30m"}
}

// Durations returns Base, Max and Decay parsed (the defaults for values
// Validate rejects).
func (l *Lockout) Durations() (base, max, decay time.Duration) {
	parse := func(s string, def time.Duration) time.Duration {
		d, err := parseDuration(s)
		if err != nil || d <= 0 {
			return def
		}
		return d
	}
	return parse(l.Base, time.Second), parse(l.Max, 15*time.Minute), parse(l.Decay, 30*time.Minute)
}

func (v *validator) lockout(l *Lockout) {
	if l.Threshold < 1 || l.Threshold > 1000 {
		v.add("auth.lockout.threshold", "must be 1..1000 failures")
	}
	durs := map[string]time.Duration{}
	for _, f := range []struct{ k, s string }{{"base", l.Base}, {"max", l.Max}, {"decay", l.Decay}} {
		d, err := parseDuration(f.s)
		if err != nil || d <= 0 {
			v.add("auth.lockout."+f.k, `must be a duration such as "1s", "15m" or "1d"`)
			continue
		}
		durs[f.k] = d
	}
	if b, ok := durs["base"]; ok {
		if m, ok := durs["max"]; ok && m < b {
			v.add("auth.lockout.max", "must not be shorter than auth.lockout.base")
		}
	}
}

// roles checks auth.roles and returns the defined names.
func (v *validator) roles(roles []Role) map[string]bool {
	names := map[string]bool{}
	for i := range roles {
		r := &roles[i]
		f := fmt.Sprintf("auth.roles[%d]", i)
		switch {
		case r.Name == "":
			v.add(f+".name", "must not be empty")
		case !principalRe.MatchString(r.Name):
			v.add(f+".name", "must match [A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
		case names[r.Name]:
			v.add(f+".name", fmt.Sprintf("role %q is defined twice", r.Name))
		default:
			names[r.Name] = true
		}
		v.globs(f+".cameras", r.Cameras)
		if len(r.Rights) == 0 {
			v.add(f+".rights", "must list at least one of view, ptz, playback, export")
		}
		seen, ptz := map[string]bool{}, false
		for j, right := range r.Rights {
			switch {
			case !contains(rightNames, right):
				v.add(fmt.Sprintf("%s.rights[%d]", f, j), "unknown right (want view, ptz, playback or export)")
			case seen[right]:
				v.add(fmt.Sprintf("%s.rights[%d]", f, j), "listed twice")
			}
			seen[right], ptz = true, ptz || right == "ptz"
		}
		switch {
		case r.PTZPriority < 0 || r.PTZPriority > MaxPTZPriority:
			v.add(f+".ptz_priority", fmt.Sprintf("must be %d..%d (higher takes PTZ control from lower)", MinPTZPriority, MaxPTZPriority))
		case r.PTZPriority != 0 && !ptz:
			v.add(f+".ptz_priority", "set but the role has no ptz right")
		}
	}
	return names
}

// roleRefs checks that every role a principal names is defined.
func (v *validator) roleRefs(field string, refs []string, defined map[string]bool) {
	for j, r := range refs {
		if !defined[r] {
			v.add(fmt.Sprintf("%s[%d]", field, j), fmt.Sprintf("role %q is not defined in auth.roles", r))
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// auth checks the auth section. One function: it walks users and keys
// in the same way and the checks read best side by side.
func (v *validator) auth(a *Auth) {
	if _, err := ParseTTL(a.TokenTTL); err != nil {
		v.add("auth.token_ttl", err.Error())
	}
	v.lockout(&a.Lockout)
	roles := v.roles(a.Roles)
	if len(a.Users) == 0 && len(a.APIKeys) == 0 && a.OIDC.Issuer == "" && a.LDAP.URL == "" {
		v.add("auth.users", "no users, api_keys, oidc or ldap: nobody could use the gateway")
	}
	v.oidc(&a.OIDC)
	v.ldap(&a.LDAP)
	names := map[string]string{} // folded name -> field that owns it
	claim := func(field, name string) {
		if name == "" {
			v.add(field, "must not be empty")
			return
		}
		if !principalRe.MatchString(name) {
			v.add(field, "must match [A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
			return
		}
		k := strings.ToLower(name)
		if prev, ok := names[k]; ok {
			v.add(field, fmt.Sprintf("%q is already used by %s", name, prev))
			return
		}
		names[k] = strings.TrimSuffix(field, ".name")
	}
	for i := range a.Users {
		u := &a.Users[i]
		f := fmt.Sprintf("auth.users[%d]", i)
		claim(f+".name", u.Name)
		if u.PasswordHash == "" {
			v.add(f+".password_hash", "must be set (create one with `cordon hash-password`)")
		} else if err := checkArgon2id(u.PasswordHash); err != nil {
			v.add(f+".password_hash", err.Error())
		}
		v.ha1(f+".rtsp_digest_ha1", u.RTSPDigestHA1)
		v.globs(f+".cameras", u.Cameras)
		v.roleRefs(f+".roles", u.Roles, roles)
	}
	for i := range a.APIKeys {
		k := &a.APIKeys[i]
		f := fmt.Sprintf("auth.api_keys[%d]", i)
		claim(f+".name", k.Name)
		k.fileHash = ""
		switch {
		case k.KeyHash != "" && k.KeyFile != "":
			v.add(f+".key_file", "key_hash and key_file are exclusive; set one")
		case k.KeyHash != "":
			if err := checkArgon2id(k.KeyHash); err != nil {
				v.add(f+".key_hash", err.Error())
			}
		case k.KeyFile != "":
			h, err := readSecretFile(k.KeyFile)
			switch {
			case err != nil:
				v.add(f+".key_file", "cannot read "+k.KeyFile+": "+describeFileErr(err))
			case checkArgon2id(strings.TrimSpace(h)) != nil:
				v.add(f+".key_file", "content: "+checkArgon2id(strings.TrimSpace(h)).Error())
			default:
				k.fileHash = strings.TrimSpace(h)
			}
		default:
			v.add(f+".key_hash", "must be set, or key_file (create one with `cordon hash-password`)")
		}
		v.ha1(f+".rtsp_digest_ha1", k.RTSPDigestHA1)
		v.globs(f+".cameras", k.Cameras)
		v.roleRefs(f+".roles", k.Roles, roles)
	}
	for i, m := range a.OIDC.RoleMap {
		v.roleRefs(fmt.Sprintf("auth.oidc.role_map[%d].roles", i), m.Roles, roles)
	}
	for i, m := range a.LDAP.RoleMap {
		v.roleRefs(fmt.Sprintf("auth.ldap.role_map[%d].roles", i), m.Roles, roles)
	}
}

func (v *validator) ha1(field, h string) {
	if h == "" {
		return
	}
	if b, err := hex.DecodeString(h); err != nil || len(b) != 16 {
		v.add(field, "must be 32 hex digits (from `cordon hash-password --rtsp-digest NAME`)")
	}
}

// checkArgon2id checks that h has the PHC argon2id shape
// $argon2id$v=19$m=..,t=..,p=..$salt$hash with sane parameters.
func checkArgon2id(h string) error {
	bad := errors.New("must be an argon2id hash ($argon2id$v=19$m=..,t=..,p=..$salt$hash; see `cordon hash-password`)")
	m := argon2Re.FindStringSubmatch(h)
	if m == nil {
		return bad
	}
	mem, err1 := strconv.ParseUint(m[1], 10, 32)
	t, err2 := strconv.ParseUint(m[2], 10, 32)
	p, err3 := strconv.ParseUint(m[3], 10, 8)
	if err1 != nil || err2 != nil || err3 != nil || p < 1 || t < 1 || t > 64 || mem < 8*p || mem > 4<<20 {
		return errors.New("argon2id parameters out of range (t 1..64, p 1..255, m 8*p..4194304 KiB)")
	}
	salt, err := base64.RawStdEncoding.DecodeString(m[4])
	if err != nil || len(salt) < 8 {
		return errors.New("argon2id salt must be at least 8 bytes of unpadded base64")
	}
	sum, err := base64.RawStdEncoding.DecodeString(m[5])
	if err != nil || len(sum) < 16 {
		return errors.New("argon2id hash must be at least 16 bytes of unpadded base64")
	}
	return nil
}
