// Package harden turns off the camera settings that make a camera reach
// out, and watches that they stay off. It lives under camnet because it is
// about the isolated camera segment: it points each camera's DNS at the
// sinkhole and its NTP at cordon's SNTP server, both camnet services.
//
// Per camera it reads the vendor cloud / P2P switches (Hikvision
// Hik-Connect/EZVIZ and ISUP/EHome, Dahua Easy4IP/T2UServer and VSP_PaaS),
// UPnP and port mapping, DDNS, e-mail and FTP push, Bonjour, the NTP
// server, the DNS servers and the default gateway; compares them with the
// wanted state (Wanted, from camera_network); and, when asked, sets them
// and reads them back (Run). Hikvision is spoken over ISAPI, Dahua over
// its configManager CGI or, when the CGI is off, its JSON-RPC, and any
// other camera over ONVIF (WS-Discovery, NTP, DNS, gateway) through
// camnet/onvif: a Vendor is a list of Settings, so ONVIF is a small
// adapter.
//
// The camera is the attacker. Client connects only to the camera's
// configured admin host and port, never follows a redirect, never uses a
// proxy, bounds every answer's size and time, and sends credentials only
// as Digest after that host asked (Basic only over https). Vendor
// detection (Resolve) uses unauthenticated answers only. XML is parsed
// with bounds and without DOCTYPE or entities. Nothing here changes
// credentials, and a camera is rebooted only when Options.Reboot says so.
// Errors name the camera and the setting and never hold a secret.
//
// Watcher re-checks every camera periodically and on demand (at camera
// connect), keeps the last result per camera for GET
// /api/v1/admin/hardening, exports cordon_camera_hardening_ok{camera},
// and audits hardening_drift and camera_hardened.
package harden
