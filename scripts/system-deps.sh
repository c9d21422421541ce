#!/usr/bin/env bash
# System packages the toolkit's tests use: Debian chromium (browser tests), ffmpeg (peaks) and the
# PostgreSQL 15 server binaries (service tests start a throwaway cluster with initdb/pg_ctl).
# Installs them when missing and running as root; otherwise says what to install.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "missing system packages: ${missing[*]} (Debian/Ubuntu: sudo apt-get install -y ${missing[*]});" >&2
  echo "tests that need them will be skipped (under CI=true, and the PostgreSQL ones always, they fail)" >&2
fi
