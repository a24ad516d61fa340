package directory

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/internal/testtool/slapd"
)

// newLDAP returns an initialized LDAP against the package's slapd (LDAPS),
// with the test directory's role map; edit applies changes first.
func newLDAP(t *testing.T, edit func(*LDAP)) *LDAP {
	t.Helper()
	s := needSlapd(t)
	l := &LDAP{
		URL:               s.LDAPSURL,
		CAFile:            s.CA.CertFile,
		BindDN:            slapd.ServiceDN,
		BindPassword:      slapd.ServicePassword,
		UserBaseDN:        slapd.PeopleDN,
		UserFilter:        "(uid=%s)",
		UsernameAttribute: "uid",
		RoleMap: []RoleMapping{
			{Group: slapd.OperatorsDN, Roles: []string{"operator"}},
			{Group: slapd.SupervisorsDN, Roles: []string{"supervisor", "operator"}},
		},
		Timeout:  healthyTimeout,
		TokenTTL: time.Hour,
		Metrics:  NewMetrics(nil),
		Logger:   slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(l)
	}
	if err := l.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// healthyTimeout is the Timeout of requests whose duration is not under
// test: generous, so a machine loaded by other builds (a 2-core box at
// load 15 runs a TLS handshake under -race in hundreds of milliseconds)
// cannot turn an answer into "no answer". Tests of the deadline itself
// set a short Timeout only around the requests they time.
const healthyTimeout = 20 * time.Second

// schedSlack is how late past its deadline a request may return beyond
// what the machine itself made it late (see timeLate): the deadline's
// timer and the caller's goroutine must be scheduled. With the machine's
// own lateness added, it stays well below deadlineTimeout, so a request
// that ran a second full timeout anywhere (a step with a fresh timeout of
// its own, a wait behind a hung connection) fails the bound.
const schedSlack = 500 * time.Millisecond

// deadlineTimeout is the Timeout of the requests whose deadline is timed
// (twice schedSlack: a second timeout anywhere overshoots the bound).
const deadlineTimeout = time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLDAPSignInLDAPS(t *testing.T) {
	l := newLDAP(t, nil)
	before := time.Now()
	id, err := l.Authenticate(ctxT(t), "alice", slapd.Users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "alice" || id.Source != SourceLDAP || id.Subject != slapd.UserDN("alice") {
		t.Errorf("identity %+v", id)
	}
	if !slices.Equal(id.Roles, []string{"operator", "supervisor"}) {
		t.Errorf("roles %v", id.Roles)
	}
	if len(id.Groups) != 2 {
		t.Errorf("groups %v", id.Groups)
	}
	if id.Expires.Before(before.Add(time.Hour)) || id.Expires.After(time.Now().Add(time.Hour)) {
		t.Errorf("expires %v, want now+1h", id.Expires)
	}
	// the directory's spelling of the name wins
	id, err = l.Authenticate(ctxT(t), "ALICE", slapd.Users["alice"])
	if err != nil || id.Name != "alice" {
		t.Errorf("ALICE: %v %q", err, id.Name)
	}
	// bob: valid credentials, no mapped group: an identity without roles
	id, err = l.Authenticate(ctxT(t), "bob", slapd.Users["bob"])
	if err != nil || len(id.Roles) != 0 || len(id.Groups) != 0 {
		t.Errorf("bob: %v %+v", err, id)
	}
	if l.Health() != nil {
		t.Errorf("health: %v", l.Health())
	}
	if got := testutil.ToFloat64(l.Metrics.Requests.WithLabelValues("ldap", "ok")); got != 3 {
		t.Errorf("ok requests = %v", got)
	}
}

func TestLDAPStartTLS(t *testing.T) {
	s := needSlapd(t)
	l := newLDAP(t, func(l *LDAP) { l.URL = s.LDAPURL })
	id, err := l.Authenticate(ctxT(t), "alice", slapd.Users["alice"])
	if err != nil || len(id.Roles) != 2 {
		t.Fatalf("StartTLS sign-in: %v %+v", err, id)
	}
	c, err := l.search.get(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	st, ok := c.l.TLSConnectionState()
	l.search.put(c, true)
	if !ok || !st.HandshakeComplete {
		t.Error("pooled StartTLS connection is not encrypted")
	}
}

func TestLDAPRefusals(t *testing.T) {
	l := newLDAP(t, nil)
	cases := []struct{ name, user, pw string }{
		{"wrong password", "alice", "nope"},
		{"unknown user", "mallory", "whatever"},
		{"empty password", "alice", ""},
		{"empty name", "", "x"},
		{"disabled user", "carol", slapd.Users["carol"]},
		{"NUL in name", "alice\x00", slapd.Users["alice"]},
		{"name too long", strings.Repeat("a", MaxNameLen+1), "x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := l.Authenticate(ctxT(t), c.user, c.pw)
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("%q: err = %v, want ErrInvalidCredentials", c.user, err)
			}
		})
	}
	if l.Health() != nil {
		t.Errorf("refusals made the directory look down: %v", l.Health())
	}
	// an unknown name costs a bind too (to an entry that cannot exist), so
	// it answers in about the time of a wrong password
	if n := strings.Count(needSlapd(t).Log(), `BIND dn="cn=cordon-no-such-user-`); n < 1 {
		t.Errorf("unknown user: %d dummy binds in slapd's log", n)
	}
}

// Filter metacharacters in the name are matched literally: with alice's
// password, none of these may sign in as alice (unescaped, "al*" and
// friends would find her entry).
func TestLDAPFilterInjection(t *testing.T) {
	for _, mode := range []string{"memberOf", "group search"} {
		t.Run(mode, func(t *testing.T) {
			l := newLDAP(t, func(l *LDAP) {
				if mode == "group search" {
					l.GroupBaseDN = slapd.GroupsDN
					l.GroupFilter = "(&(objectClass=groupOfNames)(member=%s))"
				}
			})
			for _, name := range []string{"*", "al*", "*ice", "a*e", "*)(uid=*", "alice)(|(uid=*", "*)(|(objectClass=*))",
				`alic\65`, `\2a`, "alice)(uid=alice", "(uid=alice)"} {
				if _, err := l.Authenticate(ctxT(t), name, slapd.Users["alice"]); !errors.Is(err, ErrInvalidCredentials) {
					t.Errorf("name %q with alice's password: err = %v, want ErrInvalidCredentials", name, err)
				}
			}
			// a real user whose name holds metacharacters signs in, and
			// the group search with their (escaped) DN finds their group
			id, err := l.Authenticate(ctxT(t), slapd.OddName, slapd.Users[slapd.OddName])
			if err != nil {
				t.Fatalf("%q: %v", slapd.OddName, err)
			}
			if id.Name != slapd.OddName || !slices.Equal(id.Roles, []string{"operator"}) {
				t.Errorf("%q: %+v", slapd.OddName, id)
			}
		})
	}
}

func TestLDAPGroupSearchAndCaseInsensitiveMap(t *testing.T) {
	l := newLDAP(t, func(l *LDAP) {
		l.GroupBaseDN = slapd.GroupsDN
		l.GroupFilter = "(member=%s)"
		l.RoleMap = []RoleMapping{
			{Group: "CN=CCTV-Operators, OU=Groups,DC=FORCE,dc=local", Roles: []string{"operator"}},
			{Group: "cn=cctv-operators,ou=groups,dc=other,dc=local", Roles: []string{"wrong-domain"}},
		}
	})
	id, err := l.Authenticate(ctxT(t), "alice", slapd.Users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(id.Roles, []string{"operator"}) {
		t.Errorf("roles %v, want [operator]", id.Roles)
	}
	if len(id.Groups) != 2 {
		t.Errorf("groups %v: memberOf and the search each found both, duplicates dropped", id.Groups)
	}
}

// A user_filter that excludes locked accounts makes a re-check report the
// user gone; without it the bind itself is refused (ppolicy).
func TestLDAPLookupAndRecheck(t *testing.T) {
	s := needSlapd(t)
	l := newLDAP(t, func(l *LDAP) { l.UserFilter = "(&(uid=%s)(!(pwdAccountLockedTime=*)))" })
	if _, err := l.Lookup(ctxT(t), "carol"); !errors.Is(err, ErrGone) {
		t.Errorf("disabled carol: %v, want ErrGone", err)
	}
	if _, err := l.Lookup(ctxT(t), "nobody"); !errors.Is(err, ErrGone) {
		t.Errorf("unknown user: %v, want ErrGone", err)
	}
	alice, err := l.Authenticate(ctxT(t), "alice", slapd.Users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	bob, err := l.Authenticate(ctxT(t), "bob", slapd.Users["bob"])
	if err != nil {
		t.Fatal(err)
	}
	owner := &fakeOwner{ids: []Identity{alice, bob, alice}}
	r := &Rechecker{Directory: l, Owner: owner, Interval: time.Hour, Logger: l.Logger}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if res := r.Recheck(ctxT(t)); res != (RecheckResult{Checked: 2}) {
		t.Errorf("nothing changed: %+v", res)
	}
	modify(t, s, slapd.RemoveMember(slapd.SupervisorsDN, "alice"))
	t.Cleanup(func() { modify(t, s, slapd.AddMember(slapd.SupervisorsDN, "alice")) })
	res := r.Recheck(ctxT(t))
	if res.Changed != 1 || len(owner.changes) != 1 || !slices.Equal(owner.changes[0].now.Roles, []string{"operator"}) {
		t.Fatalf("group removal: %+v %+v", res, owner.changes)
	}
	modify(t, s, slapd.Disable("bob"))
	t.Cleanup(func() { modify(t, s, slapd.Enable("bob")) })
	owner.reset([]Identity{owner.changes[0].now, bob})
	if res := r.Recheck(ctxT(t)); res.Gone != 1 || len(owner.changes) != 1 || owner.changes[0].prev.Name != "bob" ||
		!errors.Is(owner.changes[0].err, ErrGone) {
		t.Fatalf("disabled bob: %+v %+v", res, owner.changes)
	}
	// the periodic loop runs the same pass when triggered
	owner.reset([]Identity{bob})
	r.Trigger()
	select {
	case <-owner.notified:
	case <-time.After(20 * time.Second):
		t.Fatal("triggered pass reported nothing")
	}
}

type change struct {
	prev, now Identity
	err       error
}

type fakeOwner struct {
	mu       sync.Mutex
	ids      []Identity
	changes  []change
	notified chan struct{}
}

func (o *fakeOwner) SignedIn() []Identity {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.ids)
}

func (o *fakeOwner) Rechecked(prev, now Identity, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.changes = append(o.changes, change{prev, now, err})
	if o.notified != nil {
		select {
		case o.notified <- struct{}{}:
		default:
		}
	}
}

func (o *fakeOwner) reset(ids []Identity) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ids, o.changes, o.notified = ids, nil, make(chan struct{}, 1)
}

func modify(t *testing.T, s *slapd.Server, ldif string) {
	t.Helper()
	if err := s.Modify(ldif, false); err != nil {
		t.Fatal(err)
	}
}

// acceptCount counts the connections slapd accepted so far.
func acceptCount(s *slapd.Server) int { return strings.Count(s.Log(), " ACCEPT from ") }

func TestLDAPPoolsConnections(t *testing.T) {
	s := needSlapd(t)
	l := newLDAP(t, func(l *LDAP) { l.PoolSize = 2 })
	before := acceptCount(s)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"alice", "bob"}[i%2]
			if _, err := l.Authenticate(context.Background(), name, slapd.Users[name]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := acceptCount(s) - before; n > 4 {
		t.Errorf("40 sign-ins opened %d connections, want at most 4 (2 pools of 2)", n)
	}
}

// The directory unreachable in each way the field sees: nothing listening,
// a host that accepts and never answers, an untrusted certificate and a
// wrong service password (a directory that hangs mid-way is
// TestLDAPHungDirectory). Each is ErrUnavailable naming its reason, and
// never falls back to anything weaker. Only the two that never answer are
// timed (the answer must come at the deadline); the others answer, and
// what is under test is that the reason names the answer, so they get a
// generous Timeout the machine's speed cannot matter to.
func TestLDAPUnavailable(t *testing.T) {
	s := needSlapd(t)
	closed := closedAddr(t)
	blackhole := blackholeAddr(t)
	cases := []struct {
		name    string
		edit    func(*LDAP)
		reason  string
		timeout time.Duration
	}{
		{"nothing listening", func(l *LDAP) { l.URL = "ldaps://" + closed }, "cannot connect", healthyTimeout},
		{"accepts, never answers (LDAPS)", func(l *LDAP) { l.URL = "ldaps://" + blackhole }, "no answer within", deadlineTimeout},
		{"accepts, never answers (StartTLS)", func(l *LDAP) { l.URL = "ldap://" + blackhole }, "no answer within", deadlineTimeout},
		{"untrusted certificate", func(l *LDAP) { l.CAFile = "" }, "TLS failed: x509: certificate signed by unknown authority", healthyTimeout},
		{"untrusted certificate (StartTLS)", func(l *LDAP) { l.URL = s.LDAPURL; l.CAFile = "" },
			"TLS failed: x509: certificate signed by unknown authority", healthyTimeout},
		{"wrong service password", func(l *LDAP) { l.BindPassword = "wrong" }, "service account", healthyTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLDAP(t, func(l *LDAP) { l.Timeout = c.timeout; c.edit(l) })
			var err error
			took, late := timeLate(func() { _, err = l.Authenticate(ctxT(t), "alice", slapd.Users["alice"]) })
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("err = %v, want ErrUnavailable naming %q", err, c.reason)
			}
			if c.timeout == deadlineTimeout {
				checkDeadline(t, "sign-in", took, late, c.timeout)
			}
			if h := l.Health(); h == nil || !strings.Contains(h.Error(), c.reason) {
				t.Errorf("health = %v", h)
			}
			if up := testutil.ToFloat64(l.Metrics.Up.WithLabelValues("ldap")); up != 0 {
				t.Errorf("cordon_directory_up = %v", up)
			}
			if strings.Contains(err.Error(), slapd.Users["alice"]) || strings.Contains(err.Error(), slapd.ServicePassword) {
				t.Errorf("error carries a password: %v", err)
			}
		})
	}
}

// A directory that hangs mid-way (slapd stopped with SIGSTOP while
// connections are pooled: the kernel still accepts, nothing answers): a
// sign-in and a re-check each end at their one deadline, then the same
// LDAP recovers when the directory does.
func TestLDAPHungDirectory(t *testing.T) {
	s := needSlapd(t)
	l := newLDAP(t, nil)
	if _, err := l.Authenticate(ctxT(t), "alice", slapd.Users["alice"]); err != nil {
		t.Fatal(err) // fills both pools
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = s.Resume()
		}
	}()
	// Timeout is read once per request; the test changes it between
	// requests, never during one
	l.Timeout = deadlineTimeout
	for _, op := range []string{"sign-in", "re-check"} {
		var err error
		took, late := timeLate(func() {
			if op == "sign-in" {
				_, err = l.Authenticate(ctxT(t), "alice", slapd.Users["alice"])
			} else {
				_, err = l.Lookup(ctxT(t), "alice")
			}
		})
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no answer within "+deadlineTimeout.String()) {
			t.Errorf("%s against a hung slapd: %v", op, err)
		}
		checkDeadline(t, op+" against a hung slapd", took, late, deadlineTimeout)
	}
	if l.Health() == nil {
		t.Error("health still ok")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	// recovery is under test here, not speed: a resumed slapd first works
	// off what queued up while it was stopped
	l.Timeout = healthyTimeout
	if _, err := l.Authenticate(ctxT(t), "alice", slapd.Users["alice"]); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	if h := l.Health(); h != nil {
		t.Errorf("health after recovery: %v", h)
	}
	if up := testutil.ToFloat64(l.Metrics.Up.WithLabelValues("ldap")); up != 1 {
		t.Errorf("cordon_directory_up = %v after recovery", up)
	}
}

// An empty password is refused before any packet is sent: against a
// directory that is down, the answer is still "invalid credentials" at once.
func TestLDAPEmptyPasswordNeverSent(t *testing.T) {
	l := newLDAP(t, func(l *LDAP) { l.URL = "ldaps://" + blackholeAddr(t); l.Timeout = 5 * time.Second })
	start := time.Now()
	_, err := l.Authenticate(ctxT(t), "alice", "")
	if !errors.Is(err, ErrInvalidCredentials) || time.Since(start) > time.Second {
		t.Errorf("empty password: %v after %v", err, time.Since(start))
	}
}

func TestLDAPConfigRefused(t *testing.T) {
	s := needSlapd(t)
	cases := map[string]func(*LDAP){
		"url: must be ldaps:// or ldap://": func(l *LDAP) { l.URL = "http://" + strings.TrimPrefix(s.LDAPSURL, "ldaps://") },
		"url: must be ldaps://host":        func(l *LDAP) { l.URL = "ldaps://user:pw@127.0.0.1" },
		"user_filter: must contain %s":     func(l *LDAP) { l.UserFilter = "(uid=alice)" },
		"user_filter: may contain %":       func(l *LDAP) { l.UserFilter = "(uid=%d)(%s)" },
		"user_filter: is not a valid":      func(l *LDAP) { l.UserFilter = "(uid=%s" },
		"group_filter: must contain %s":    func(l *LDAP) { l.GroupBaseDN = slapd.GroupsDN; l.GroupFilter = "" },
		"role_map[0].group: not a DN":      func(l *LDAP) { l.RoleMap = []RoleMapping{{Group: "cctv-operators", Roles: []string{"x"}}} },
		"service account is required":      func(l *LDAP) { l.BindPassword = "" },
		"ca_file":                          func(l *LDAP) { l.CAFile = "/nonexistent/ca.pem" },
	}
	for want, edit := range cases {
		l := &LDAP{URL: s.LDAPSURL, BindDN: slapd.ServiceDN, BindPassword: "x", UserBaseDN: slapd.PeopleDN, UserFilter: "(uid=%s)"}
		edit(l)
		if err := l.Initialize(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want error containing %q, got %v", want, err)
		}
	}
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// blackholeAddr accepts connections and never answers.
func blackholeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}
