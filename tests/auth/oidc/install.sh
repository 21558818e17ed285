#!/usr/bin/env bash
# Installs the OpenID provider the external-issuer tests start (npm registry only).
# CI runs this once before pytest; the tests skip when node_modules is missing.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node and npm are required (apt-get install -y nodejs npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --omit=dev  # exact versions from package-lock.json
