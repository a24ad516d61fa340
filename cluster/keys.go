package cluster

import (
	"strings"
)

// DefaultPrefix is where a cluster keeps its keys in etcd. Everything cordon
// writes is under it, so an etcd cluster can be shared with other users.
const DefaultPrefix = "/cordon/v1/"

// Key layout under the prefix. "live/" is mirrored by every node through
// one watch; "reports/" is read when asked; "known/" outlives leases.
//
//	live/nodes/<id>          Member JSON, under the node's lease
//	live/owners/<camera>     ownerValue JSON, under the owner's lease
//	live/revoked/<token id>  expiry (unix seconds), under a lease that ends with the token
//	live/lockout/<id>        lockoutDoc JSON, under the node's lease
//	live/report/<kind>/<id>  a live Report's document, under the node's lease
//	reports/<kind>/<id>      an on-demand Report's document, under the node's lease
//	known/<id>               Member JSON of every node that ever registered (no lease)
const (
	liveDir     = "live/"
	nodesDir    = liveDir + "nodes/"
	ownersDir   = liveDir + "owners/"
	revokedDir  = liveDir + "revoked/"
	lockoutDir  = liveDir + "lockout/"
	liveReports = liveDir + "report/"
	reportsDir  = "reports/"
	knownDir    = "known/"
)

// keys builds the etcd keys of one cluster prefix.
type keys struct{ prefix string }

func (k keys) live() string               { return k.prefix + liveDir }
func (k keys) node(id string) string      { return k.prefix + nodesDir + id }
func (k keys) owner(camera string) string { return k.prefix + ownersDir + camera }
func (k keys) revoked(id string) string   { return k.prefix + revokedDir + id }
func (k keys) lockout(node string) string { return k.prefix + lockoutDir + node }
func (k keys) known(id string) string     { return k.prefix + knownDir + id }
func (k keys) knownAll() string           { return k.prefix + knownDir }
func (k keys) report(kind string, live bool) string {
	if live {
		return k.prefix + liveReports + kind + "/"
	}
	return k.prefix + reportsDir + kind + "/"
}

// split returns the directory (e.g. "live/owners/") and the last part of a
// key under the prefix; ok is false for keys outside it.
func (k keys) split(key string) (dir, name string, ok bool) {
	rest, ok := strings.CutPrefix(key, k.prefix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i+1], rest[i+1:], true
}
