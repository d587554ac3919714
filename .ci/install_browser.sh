#!/usr/bin/env bash
# Install the system Chromium that the Playwright end-to-end tests drive (tests/e2e/).
#
# Idempotent: does nothing when /usr/bin/chromium already exists, and refreshes the
# package lists only when it has to install. The pip `playwright` package (pinned in
# requirements.txt) is only the driver: never run `playwright install`, which downloads
# its own browser builds and fails on machines without outside network access.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    echo "chromium already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium

"$CHROMIUM" --version
