#!/usr/bin/env bash
# The README's first command, end to end: the guided tour on a software token, then the agent on
# that token serving its demo page (fetched over HTTP), then the agent stopped. A debug build keeps
# CI from compiling everything a second time in release mode.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v curl >/dev/null || { echo "curl is missing: the test command installs it (scripts/apt-packages.txt)" >&2; exit 1; }
UKEY_DEMO_PROFILE=debug ./scripts/demo --check
