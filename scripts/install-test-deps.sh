#!/usr/bin/env bash
# Installs what cordon's tests need when it is missing: Debian packages
# (ffmpeg/ffprobe, chromium, nftables, iproute2, a font for the demo clip
# script, slapd and ldap-utils for the directory tests, rsyslog with its
# OpenSSL driver as the audit forwarding collector, etcd for the cluster
# tests), Node.js and the npm onvif client pinned by its lock file (ONVIF
# interop test), and staticcheck at a pinned version. Idempotent; quiet when
# all is there.
set -euo pipefail

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapmodify >/dev/null 2>&1 || need+=(ldap-utils)
command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ] || need+=(rsyslog)
compgen -G '/usr/lib/*/rsyslog/lmnsd_ossl.so' >/dev/null || need+=(rsyslog-openssl)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # the tests run their own slapd: the package must not configure and
  # start a system one on port 389
  echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

STATICCHECK_VERSION=v0.7.0
GOBIN="$(go env GOPATH)/bin"
if ! "$GOBIN/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
  echo "installing staticcheck ${STATICCHECK_VERSION}"
  go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi

# The ONVIF interop test drives cordon with the npm `onvif` client, pinned
# by relay/onvifserve/testdata/nodeclient/package-lock.json.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing Debian packages: nodejs npm"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
nodeclient="$(dirname "$0")/../relay/onvifserve/testdata/nodeclient"
# node_modules/.cordon-lock is the lock file it was installed from
if ! cmp -s "$nodeclient/package-lock.json" "$nodeclient/node_modules/.cordon-lock" 2>/dev/null; then
  echo "installing the npm onvif client (npm ci)"
  (cd "$nodeclient" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && cp package-lock.json node_modules/.cordon-lock)
fi
