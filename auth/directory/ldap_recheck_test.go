package directory

import (
	"errors"
	"slices"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"cordon/internal/testtool/slapd"
)

func setMail(name, mail string) string {
	return "dn: " + slapd.UserDN(name) + "\nchangetype: modify\nadd: mail\nmail: " + mail + "\n\n"
}

func dropMail(name string) string {
	return "dn: " + slapd.UserDN(name) + "\nchangetype: modify\ndelete: mail\n\n"
}

// Users sign in with their e-mail address (user_filter on mail) while
// their principal name is uid (username_attribute): the re-check reads
// each user by its entry (DN, base scope) with the filter's other
// conditions, so nobody is "gone" for having a name the filter does not
// search, and removed, disabled or regrouped users are still noticed.
func TestLDAPRecheckWithMailFilter(t *testing.T) {
	s := needSlapd(t)
	modify(t, s, setMail("alice", "alice@force.local")+setMail("bob", "bob@force.local"))
	t.Cleanup(func() { modify(t, s, dropMail("alice")+dropMail("bob")) })
	l := newLDAP(t, func(l *LDAP) {
		l.UserFilter = "(&(mail=%s)(!(pwdAccountLockedTime=*)))"
		l.UsernameAttribute = "uid"
	})
	alice, err := l.Authenticate(ctxT(t), "alice@force.local", slapd.Users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	bob, err := l.Authenticate(ctxT(t), "bob@force.local", slapd.Users["bob"])
	if err != nil {
		t.Fatal(err)
	}
	if alice.Name != "alice" || alice.Subject != slapd.UserDN("alice") {
		t.Fatalf("identity %+v", alice)
	}
	owner := &fakeOwner{ids: []Identity{alice, bob}}
	r := &Rechecker{Directory: l, Owner: owner, Interval: time.Hour, Logger: l.Logger}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if res := r.Recheck(ctxT(t)); res != (RecheckResult{Checked: 2}) || len(owner.changes) != 0 {
		t.Fatalf("nothing changed, yet: %+v %+v", res, owner.changes)
	}

	modify(t, s, slapd.RemoveMember(slapd.SupervisorsDN, "alice"))
	t.Cleanup(func() { modify(t, s, slapd.AddMember(slapd.SupervisorsDN, "alice")) })
	modify(t, s, slapd.Disable("bob"))
	t.Cleanup(func() { modify(t, s, slapd.Enable("bob")) })
	res := r.Recheck(ctxT(t))
	if res.Changed != 1 || res.Gone != 1 || len(owner.changes) != 2 {
		t.Fatalf("after alice left supervisors and bob was disabled: %+v %+v", res, owner.changes)
	}
	for _, c := range owner.changes {
		switch c.prev.Name {
		case "alice":
			if c.err != nil || !slices.Equal(c.now.Roles, []string{"operator"}) {
				t.Errorf("alice: %+v", c)
			}
		case "bob":
			if !errors.Is(c.err, ErrGone) {
				t.Errorf("bob: %+v", c)
			}
		}
	}

	// an entry that no longer exists, or one outside user_base_dn, is gone
	for _, subject := range []string{slapd.UserDN("ghost"), "uid=alice,ou=elsewhere,dc=force,dc=local", "not a DN"} {
		ghost := alice
		ghost.Subject = subject
		if _, err := l.Reread(ctxT(t), ghost); !errors.Is(err, ErrGone) {
			t.Errorf("subject %q: %v, want ErrGone", subject, err)
		}
	}
	// the entry's name changed: the principal of the old name is gone
	renamed := alice
	renamed.Name = "alice-old"
	if _, err := l.Reread(ctxT(t), renamed); !errors.Is(err, ErrGone) {
		t.Errorf("renamed: %v, want ErrGone", err)
	}
}

func TestRecheckFilter(t *testing.T) {
	for in, want := range map[string]string{
		"(uid=%s)": "(uid=*)",
		"(&(mail=%s)(!(pwdAccountLockedTime=*)))":      "(&(mail=*)(!(pwdAccountLockedTime=*)))",
		"(userPrincipalName=%s@force.local)":           "(userPrincipalName=*@force.local)",
		"(cn=%s*)":                                     "(cn=*)",
		"(uid:caseExactMatch:=%s)":                     "(uid=*)",
		"(|(sAMAccountName=%s)(userPrincipalName=%s))": "(|(sAMAccountName=*)(userPrincipalName=*))",
		"(&(objectClass=user)(sAMAccountName=%s)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))": "(&(objectClass=user)(sAMAccountName=*)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
	} {
		got, ok := recheckFilter(in)
		if !ok || got != want {
			t.Errorf("recheckFilter(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if got, ok := recheckFilter("(uid=%s"); ok || got != "(objectClass=*)" {
		t.Errorf("broken filter: %q %v", got, ok)
	}
}

// FuzzRecheckFilter: any user_filter gives a filter that compiles (or the
// (objectClass=*) fallback), never a panic, and no %s survives.
func FuzzRecheckFilter(f *testing.F) {
	for _, s := range []string{"(uid=%s)", "(&(mail=%s)(!(x=*)))", "(cn=a%sb%s)", "(uid:dn:=%s)", "((%s", "%s", "(a>=%s)", "(=%s)", "(%s=)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, userFilter string) {
		got, ok := recheckFilter(userFilter)
		if _, err := goldap.CompileFilter(got); err != nil {
			t.Fatalf("%q -> %q (ok %v) does not compile: %v", userFilter, got, ok, err)
		}
		if ok && CheckLDAPFilter(userFilter) == nil && containsVerb(got) {
			t.Fatalf("%q -> %q keeps %%s", userFilter, got)
		}
	})
}

func containsVerb(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '%' && s[i+1] == 's' {
			return true
		}
	}
	return false
}
