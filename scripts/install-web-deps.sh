#!/usr/bin/env bash
# The JavaScript the tests run in a browser: Phaser, to prove our sprite sheets load in a real game engine.
# Idempotent; needs npm (Debian's nodejs + npm, or any Node >= 18).
set -euo pipefail
cd "$(dirname "$0")/../tests/engine"
if [ -f node_modules/phaser/dist/phaser.min.js ]; then exit 0; fi
command -v npm >/dev/null || { echo "install-web-deps: npm is missing (apt-get install nodejs npm)" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
