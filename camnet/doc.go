// Package camnet holds cordon's camera-network services: the things that
// face the isolated camera segment and have no other home.
//
// Cameras in the field try to phone home (Hik-Connect, EZVIZ, Easy4IP,
// Reolink P2P, Tuya, public NTP pools...). Guidance for closed networks
// converges on: a separate segment, no default route, local DNS and NTP, one
// gateway as the only peer. cordon is that gateway, so it also has to give
// the cameras the two services they legitimately need, without ever giving
// them a way out:
//
//   - Sinkhole: a DNS server that answers every query with NXDOMAIN, never
//     forwards, and records which camera asked for which name and which
//     vendor cloud that name belongs to (Catalogue). Metric
//     cordon_camera_dns_queries_total{camera,vendor}; audit egress_attempt;
//     report for GET /api/v1/egress (Report, ReportHandler).
//   - NTPServer: an SNTP v4 server from the gateway's clock, so cameras keep
//     evidential time without the internet.
//   - Doctor: host checks for the dual-homed deployment (no forwarding, no
//     default route via the camera side, nftables loaded, clock synchronised,
//     writable audit log, private state dir), for `cordon doctor`.
//
// The firewall itself (nftables) and the hardened systemd unit are in
// deploy/; this package only checks that they are in place.
package camnet
