// Package deploy holds cordon's deployment files: the nftables ruleset for
// a dual-homed host (nftables/cordon.nft), the hardened systemd unit
// (systemd/cordon.service), the container image (Dockerfile), the
// Kubernetes manifests of a cluster (kubernetes/) and the deployment guide
// (README.md). The Go code here is only the tests that check those files:
// the ruleset's syntax with nft; in network namespaces, that a camera can
// reach the gateway's DNS and NTP and nothing else; and that the
// Kubernetes manifests are complete and agree with the config they ship.
package deploy
