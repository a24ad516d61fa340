package slapd

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Directory returns the LDIF of the test directory: the service account,
// the users of Users, two groups and a password policy under which carol is
// locked (pwdAccountLockedTime), as Active Directory disables an account.
func Directory() string {
	var b strings.Builder
	b.WriteString(`dn: ` + Suffix + `
objectClass: dcObject
objectClass: organization
o: force
dc: force

dn: ou=people,` + Suffix + `
objectClass: organizationalUnit
ou: people

dn: ou=groups,` + Suffix + `
objectClass: organizationalUnit
ou: groups

dn: ou=services,` + Suffix + `
objectClass: organizationalUnit
ou: services

dn: ou=policies,` + Suffix + `
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,` + Suffix + `
objectClass: pwdPolicy
objectClass: device
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE

dn: ` + ServiceDN + `
objectClass: inetOrgPerson
cn: cordon-svc
sn: service
userPassword: ` + ServicePassword + `
`)
	for _, name := range []string{"alice", "bob", "carol", OddName} {
		b.WriteString(`
dn: ` + UserDN(name) + `
objectClass: inetOrgPerson
uid: ` + name + `
cn: ` + name + `
sn: ` + name + `
userPassword: ` + Users[name] + `
`)
	}
	b.WriteString(`
dn: ` + OperatorsDN + `
objectClass: groupOfNames
cn: cctv-operators
member: ` + UserDN("alice") + `
member: ` + UserDN("carol") + `
member: ` + UserDN(OddName) + `

dn: ` + SupervisorsDN + `
objectClass: groupOfNames
cn: cctv-supervisors
member: cn=placeholder,` + GroupsDN + `
member: ` + UserDN("alice") + `

`)
	return b.String() + Disable("carol")
}

// Disable returns the LDIF that locks a user (ppolicy), so binds as the
// user fail and a user_filter with (!(pwdAccountLockedTime=*)) no longer
// finds it.
func Disable(name string) string {
	return "dn: " + UserDN(name) + "\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n\n"
}

// Enable undoes Disable.
func Enable(name string) string {
	return "dn: " + UserDN(name) + "\nchangetype: modify\ndelete: pwdAccountLockedTime\n\n"
}

// AddMember returns the LDIF adding a user to a group (memberOf follows).
func AddMember(group, name string) string {
	return "dn: " + group + "\nchangetype: modify\nadd: member\nmember: " + UserDN(name) + "\n\n"
}

// RemoveMember returns the LDIF removing a user from a group.
func RemoveMember(group, name string) string {
	return "dn: " + group + "\nchangetype: modify\ndelete: member\nmember: " + UserDN(name) + "\n\n"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
