#!/usr/bin/env bash
# System packages the project needs; idempotent (installs only what is missing). Run as root or with sudo.
set -euo pipefail
# the emoji font for the world; opencv-doc's sample videos for curation; chromium for the web page tests (Playwright
# drives it; its own browser download does not work offline); the drama studio's voices (espeak-ng) and its subtitle
# font that covers Chinese (fonts-noto-cjk); PostgreSQL, which the many-machine serving test starts in a private folder
pkgs=(fonts-noto-color-emoji opencv-doc chromium espeak-ng fonts-noto-cjk postgresql)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null || missing+=(nodejs npm)  # for scripts/install-web-deps.sh (Phaser in the sprite tests)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
