// Package cluster makes several cordon nodes act as one gateway, coordinated
// through an existing etcd cluster: membership (each node registered under
// its own lease), camera ownership (exactly one live node pulls each camera),
// shared state (logout revocations, lockout counts, per-node reports such as
// the live sessions and the egress report, camera status), degraded mode
// when etcd is unreachable, the cluster status behind `cordon cluster status`
// and GET /api/v1/admin/cluster, and the credentials of the node-to-node
// peer link.
//
// It is a top-level package because it belongs to none of the others: it is
// not media (relay, ingest), not authentication (auth), not the composition
// root (gateway, which wires it) and not the command line (cmd/cordon, which
// prints its status). It is the only package that imports etcd: auth, camnet
// and the session registry reach it through small interfaces and plain
// values (RevocationSink, Lockouts, Report), so none of them depends on etcd.
//
// # Using it
//
// The gateway builds one Node per process:
//
//	n := &cluster.Node{Endpoints: cfg.Cluster.Endpoints(), TLS: tlsCfg,
//		Self: cluster.Member{ID: id, Advertise: adv, HTTPPort: 8080, RTSPPort: 8554},
//		LeaseTTL: cfg.Cluster.TTL(), Cameras: ids, Handler: units, Logger: log}
//	err := n.Initialize()
//	defer n.Close() // after the cameras stopped pulling: releases ownership at once
//
// Handler.OwnerChanged tells, camera by camera, "you own it" (pull it from
// the camera), "node N at address A owns it" (relay it from N over the peer
// link) and "nobody owns it right now" (wait). docs/ARCHITECTURE.md
// ("Cluster") explains the ownership algorithm, its guarantees and the peer
// link.
package cluster
