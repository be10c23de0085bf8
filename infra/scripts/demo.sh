#!/usr/bin/env bash
# Installs dependencies and runs the demo on the embedded default:
# three relays and two authority nodes as separate processes on loopback
# (infra/demo/demo.ts). Options: --keep (keep the temporary folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/scripts/ensure-tools.sh
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
pnpm install --frozen-lockfile >/dev/null
exec pnpm exec tsx infra/demo/demo.ts "$@"
