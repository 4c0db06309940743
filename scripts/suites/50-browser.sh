#!/usr/bin/env bash
# The agent in a real browser: Debian's Chromium, headless, driven by playwright-core from npm
# (tests/browser/agent.test.mjs). Builds ukey and the scripted pinentry, installs the npm
# packages from the committed package-lock.json (`npm ci`: CI starts clean), then runs the test.
# A missing prerequisite is a failure that says what to install.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
    echo "50-browser: $*" >&2
    exit 1
}

chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail "Chromium is missing at $chromium: apt-get install chromium (scripts/apt-packages.txt lists it)"
command -v node >/dev/null || fail "Node.js is missing: install Node.js 20 or newer with npm (e.g. NodeSource's nodejs)"
command -v npm >/dev/null || fail "npm is missing: install Node.js 20 or newer with npm (e.g. NodeSource's nodejs)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node.js $(node --version) is too old: playwright-core needs Node.js 20 or newer"
command -v openssl >/dev/null || fail "openssl is missing: apt-get install openssl"

echo "-- building ukey and ukey-pinentry-script"
cargo build --locked --bin ukey --bin ukey-pinentry-script
target=${CARGO_TARGET_DIR:-target}

echo "-- npm ci (tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

echo "-- running the browser test with $("$chromium" --version 2>/dev/null || echo "$chromium")"
UKEY_BIN="$target/debug/ukey" UKEY_PINENTRY="$target/debug/ukey-pinentry-script" CHROMIUM="$chromium" \
    node --test --test-concurrency=1 tests/browser/
