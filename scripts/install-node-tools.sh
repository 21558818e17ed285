#!/usr/bin/env bash
# Node tools the conformance tests use, at the versions pinned in tools/*/package-lock.json:
# Spectral (OpenAPI lint of openapi.yaml against spectral:oas + .spectral.yaml).
# Needs node and npm (Debian: apt-get install -y nodejs npm). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: install nodejs and npm first" >&2
  exit 1
fi
npm ci --prefix tools/spectral --no-audit --no-fund --loglevel=error
tools/spectral/node_modules/.bin/spectral --version
