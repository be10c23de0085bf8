#!/usr/bin/env bash
# Installs what the workspace needs on a fresh machine with Node 20 and npm:
# pnpm, and (when asked) Debian's redis-server for the Redis backend tests.
set -euo pipefail
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "12.4.2" ]; then
  npm install -g pnpm@12.4.2 >/dev/null
fi
if [ "${1:-}" = "--with-services" ] && ! command -v redis-server >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server >/dev/null
fi
