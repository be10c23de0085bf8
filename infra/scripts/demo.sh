#!/usr/bin/env bash
# Installs dependencies and runs the demo on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/scripts/ensure-tools.sh
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
pnpm install --frozen-lockfile >/dev/null
pnpm exec tsx packages/protocol/scripts/walkthrough.ts
