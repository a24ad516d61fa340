// Package config is cordon's configuration: the YAML schema of the product
// contract (../shared/CONTRACT.md, "Config file"), loading with viper,
// CORDON_* environment overrides, secrets from files, validation that names
// every problem by its field path, and the central secret redactor that every
// log line and error goes through.
//
// # Loading
//
// [Load] reads a YAML file (any extension) and applies environment overrides.
// [LoadAndValidate] does the same and then runs [Config.Validate]; it is what
// `cordon serve` and `cordon check` want. Both return a [FieldErrors] error
// (one [FieldError] per problem) for schema problems, so callers can print
// one line per problem:
//
//	cfg, err := config.LoadAndValidate(path)
//	for _, fe := range config.AsFieldErrors(err) { fmt.Println(fe.Error()) }
//
// Unknown keys are errors named by path (`cameras[1].urll: unknown key`);
// values of the wrong type are errors too (`cameras[0].on_demand: must be
// true or false`). Error messages never echo configuration values, so a
// password put in the wrong place does not leak through an error.
//
// # Environment overrides
//
// Every scalar key, and every list of scalars, can be overridden with
// CORDON_ + the key path upper-cased with "_" for "." (CORDON_HTTP_LISTEN=:9000,
// CORDON_AUTH_TOKEN_TTL=12h, CORDON_AUDIT_MAX_SIZE_MB=128). Lists of scalars
// take a comma-separated value (CORDON_WEBRTC_HOST_IPS=10.0.0.5,192.0.2.7;
// CORDON_WEBRTC_ICE_SERVERS=stun:stun.example:3478). A variable that is set
// but empty overrides too: CORDON_RTSP_LISTEN= turns the RTSP re-serve off.
// Lists of objects (cameras, auth.users, auth.api_keys) cannot be overridden
// from the environment; put them in the file and keep their secrets in files
// (password_file, key_file).
//
// # Additions to the contract's schema
//
//   - http.cors_origins (default []): origins allowed to call the API and
//     WHEP from a browser. Empty means CORS is off. Each entry must be an
//     exact origin (https://console.example:8443); "*" is refused.
//   - audit.max_size_mb (default 64): the audit log is rotated when it grows
//     beyond this size; 0 means never rotate.
//   - rtsp.udp_rtp_listen / rtsp.udp_rtcp_listen (default ":8000"/":8001"):
//     RTSP UDP unicast ports; both "" = TCP interleaved only.
//   - rtsp.allow_basic_without_tls (default false): RTSP Basic auth on a
//     non-loopback listener without TLS.
//   - auth.users[].rtsp_digest_ha1 and auth.api_keys[].rtsp_digest_ha1
//     (optional, 32 hex): MD5(name:cordon:digest-secret) for RTSP Digest
//     clients, where the digest secret is a random RTSP-only secret that
//     `cordon hash-password --rtsp-digest NAME` generates (never the login
//     password: MD5 is cracked quickly). Password-equivalent, so redacted.
//   - auth.lockout (threshold 5, base 1s, max 15m, decay 30m): lockout per
//     address and per (name, address); never per name alone.
//   - auth.roles[] and auth.users[].roles / auth.api_keys[].roles: the
//     CONTRACT's rights model. A referenced role must be defined; rights
//     are view, ptz, playback, export; ptz_priority 1..1000 (0 = 100) and
//     only with the ptz right.
//   - limits.{http,rtsp,ice_tcp}.{per_address,total}, limits.header_timeout,
//     limits.idle_timeout, limits.argon2_concurrent, limits.argon2_queue:
//     connection caps and timeouts, bounded password hashing. The totals
//     must leave descriptors for the cameras (Config.DescriptorTotals with
//     internal/connlimit.CheckBudget, at start).
//   - webrtc.viewer_networks (CIDRs) and webrtc.max_remote_candidates (16):
//     which remote ICE candidates a viewer may offer (internal/icepolicy).
//   - webrtc.udp_gso (auto | off), webrtc.send_burst_packets (8..512, 48)
//     and webrtc.send_rate_packets (500..100000 a second, 2600): how WHEP
//     media leaves (relay/whep cork.go, pace.go).
//   - audit.forward (+ forward_ca_file, forward_cert_file, forward_key_file)
//     and audit.keep_files / audit.keep_mb: forwarding to a syslog collector
//     and the retention of rotated audit files (never before forwarding).
//   - cameras[].sub_url: the camera's second stream, same host as url (the
//     camera's credentials are applied, so it holds none itself); follows
//     on_demand. cameras[].onvif: the ONVIF device service URL that enables
//     PTZ (http:// or https://, no credentials); its host must be url's
//     unless cameras[].onvif_other_host is true.
//   - webrtc.ice_servers entries are either a URL string ("stun:host:3478")
//     or a mapping {urls: [...], username: ..., credential: ...}.
//
// # Secrets
//
//   - Camera credentials: username + password, or username + password_file
//     (the file holds the password; one trailing newline is trimmed), or
//     userinfo in the URL (rtsp://user:pass@host/...). Userinfo in the URL and
//     username/password/password_file on the camera are mutually exclusive: a
//     camera with both is an error, so there is never a question of which
//     one wins. A username without a password (in the fields or in the URL)
//     is an error: the contract makes missing secrets start-up errors, so a
//     camera with an empty password cannot be configured.
//   - Secret file paths (password_file, key_file, tls_cert, tls_key) are
//     used as written; relative paths are relative to the working directory.
//   - API keys: key_hash, or key_file, a file holding the key's argon2id hash
//     (the plain key is never in the configuration). Exactly one of the two.
//   - Users: password_hash (argon2id). The contract names no file variant for
//     users, so there is none; a hash is not a usable secret by itself.
//
// Secret files are read by [Config.Validate]; call it (or [LoadAndValidate])
// before using the configuration. A reload is a new Load + Validate.
//
// # Validation decisions
//
//   - A gateway nobody can use is an error: at least one user or API key.
//   - Deny by default: a user or API key with no camera globs may view no
//     camera. Globs use path.Match syntax over camera ids.
//   - Camera ids match [a-z0-9][a-z0-9_-]{0,63}; user and API key names match
//     [A-Za-z0-9][A-Za-z0-9._@-]{0,63} and are unique across users and API
//     keys, compared case-insensitively (they share one Bearer/RTSP namespace).
//   - auth.token_ttl accepts Go durations plus a "d" (24h) unit: "8h", "7d",
//     "1d12h"; it must lie between 1m and 7d.
//   - sanitize.allow_sei_uuids accepts 8-4-4-4-12 and 32-hex forms; see
//     [Sanitize.SEIUUIDs].
//   - recording.retain accepts the same durations as auth.token_ttl
//     ("31d", "72h") between 1h and 3650d; recording.max_disk_gb is whole
//     GB (10^9 bytes), 0 = no quota; recording.path, when it exists, must
//     be a directory (it is created at start otherwise); a camera with
//     record: true needs recording.path (cameras[i].record names it).
//   - Listeners are host:port; rtsp.listen, webrtc.tcp_listen,
//     metrics.listen, camera_network.dns_listen and ntp_listen may be ""
//     (off); http.listen and webrtc.udp_listen may not. TCP listeners must not
//     collide. metrics.pprof needs metrics.listen.
//
// # Redaction
//
// [Redactor] holds every camera secret of the current configuration and
// replaces it with "***" wherever it appears; [NewRedactingHandler] wraps a
// slog.Handler so that nothing logged can carry one. [SafeURL] removes
// userinfo and credential-like query parameters from a URL. Camera URLs may be
// logged only through SafeURL; [Camera.PullURL] is the only place the
// credentials are put together, for ingest, and its result must never be
// logged.
package config
