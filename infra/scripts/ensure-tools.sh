#!/usr/bin/env bash
# Installs what the workspace needs on a fresh machine with Node 20 and npm:
# pnpm, and (when asked) Debian's redis-server and promtool for the tests.
set -euo pipefail
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "12.4.2" ]; then
  npm install -g pnpm@12.4.2 >/dev/null
fi
if [ "${1:-}" = "--with-services" ]; then
  # redis-server (also run as sentinel) for the Redis backend tests and the fault
  # matrix; Debian's prometheus for promtool, which checks infra/monitoring's alert
  # rules, their unit tests and the node's metrics exposition.
  missing=""
  command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
  command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
  if [ -n "$missing" ]; then
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi
