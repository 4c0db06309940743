#!/usr/bin/env bash
# One-shot CLI benchmark: `ukey sign` of a P-256 digest on SoftHSM against
# `pkcs11-tool --sign -m ECDSA` on the same key, whole-process wall time, interleaved in one run.
# Goal (issue 3): ukey's median ≤ 0.8 × pkcs11-tool's.
#
# Two ukey rows, each against the same pkcs11-tool runs:
# - direct (`UKEY_NO_AGENT=1`): the CLI loads SoftHSM itself, behind its own custody gate;
# - through a running agent (the product's normal deployment): an agent started here with the
#   same config and a private XDG_RUNTIME_DIR holds the module; `ukey sign` finds its socket and
#   sends the PIN with the request. The agent is stopped on exit.
#
#   cargo build --release -p ukey && benches/pkcs11-sign.sh            # N=30 runs each
#   N=100 UKEY=target/release/ukey benches/pkcs11-sign.sh
#
# Needs softhsm2, opensc (pkcs11-tool) and openssl. Both tools do the same work: load and
# initialise SoftHSM, find the token, log in, find the key, C_Sign, write the signature. ukey's
# config loads only SoftHSM (no p11-kit modules; drivers = ["pkcs11"], so no PC/SC or soft-token
# driver starts), as a deployment that names its module would. Runs are interleaved (ukey,
# pkcs11-tool, ukey, ...) so drift in machine load hits both alike; medians are compared.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-30}
UKEY=${UKEY:-target/release/ukey}
MODULE=/usr/lib/softhsm/libsofthsm2.so
PIN=123456

for tool in softhsm2-util pkcs11-tool openssl; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install softhsm2 opensc openssl" >&2; exit 1; }
done
[ -x "$UKEY" ] || { echo "no ukey binary at $UKEY: run cargo build --release -p ukey" >&2; exit 1; }

tmp=$(mktemp -d)
agent_pid=
cleanup() {
    if [ -n "$agent_pid" ]; then
        kill "$agent_pid" 2>/dev/null || true
        wait "$agent_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir "$tmp/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$tmp/tokens" >"$tmp/softhsm2.conf"
export SOFTHSM2_CONF=$tmp/softhsm2.conf
export HOME=$tmp XDG_CONFIG_HOME=$tmp/config XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state
export XDG_RUNTIME_DIR=$tmp/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
softhsm2-util --init-token --free --label Bench --so-pin 12345678 --pin "$PIN" >/dev/null
pkcs11-tool --module "$MODULE" --token-label Bench --login --pin "$PIN" \
    --keypairgen --key-type EC:prime256v1 --id 01 --label bench >/dev/null 2>&1
cat >"$tmp/config.toml" <<TOML
drivers = ["pkcs11"]

[soft]
enabled = false

[pkcs11]
p11kit = false

[[pkcs11.modules]]
path = "$MODULE"
TOML
head -c 32 /dev/urandom >"$tmp/dgst"

run_ukey() {
    UKEY_NO_AGENT=1 UKEY_PIN=$PIN "$UKEY" --config "$tmp/config.toml" sign --token Bench --key bench --alg ecdsa-sha256 \
        --prehashed --in "$tmp/dgst" --out "$tmp/sig.ukey" --format der >/dev/null 2>&1
}
run_p11() {
    pkcs11-tool --module "$MODULE" --token-label Bench --login --pin "$PIN" --sign -m ECDSA --id 01 \
        --signature-format openssl -i "$tmp/dgst" -o "$tmp/sig.p11" >/dev/null 2>&1
}

# Both must work and produce signatures that verify, or the timing means nothing.
run_ukey || { echo "ukey sign failed:"; UKEY_NO_AGENT=1 UKEY_PIN=$PIN "$UKEY" --config "$tmp/config.toml" sign --token Bench \
    --key bench --alg ecdsa-sha256 --prehashed --in "$tmp/dgst" --out "$tmp/sig.ukey"; exit 1; }
run_p11
UKEY_NO_AGENT=1 "$UKEY" --config "$tmp/config.toml" pubkey --token Bench --key bench >"$tmp/pub.pem"

# The agent, on the same config and token; the CLI uses it when its socket answers.
"$UKEY" --config "$tmp/config.toml" agent --port 0 >"$tmp/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 200); do
    "$UKEY" --config "$tmp/config.toml" agent status >/dev/null 2>&1 && break
    kill -0 "$agent_pid" 2>/dev/null || { echo "the agent exited:"; cat "$tmp/agent.log"; exit 1; }
    sleep 0.05
done
"$UKEY" --config "$tmp/config.toml" agent status >/dev/null || { echo "the agent did not start:"; cat "$tmp/agent.log"; exit 1; }
run_agent() {
    UKEY_PIN=$PIN "$UKEY" --config "$tmp/config.toml" sign --token Bench --key bench --alg ecdsa-sha256 \
        --prehashed --in "$tmp/dgst" --out "$tmp/sig.agent" --format der >/dev/null 2>&1
}
# The agent row must really go through the agent (the CLI falls back to the local drivers when
# the agent cannot list its carriers).
UKEY_PIN=$PIN "$UKEY" -vv --config "$tmp/config.toml" sign --token Bench --key bench --alg ecdsa-sha256 \
    --prehashed --in "$tmp/dgst" --out "$tmp/sig.agent" --format der >"$tmp/agent-sign.log" 2>&1 ||
    { echo "ukey sign through the agent failed:"; cat "$tmp/agent-sign.log"; exit 1; }
grep -q "using the carriers of the running ukey agent" "$tmp/agent-sign.log" ||
    { echo "ukey sign did not go through the agent:"; cat "$tmp/agent-sign.log"; exit 1; }
# The floor: a C program making only the 13 calls one signature needs (benches/lib/p11-floor.c),
# timed against the same pkcs11-tool to show how much of the time any client pays.
floor=
if command -v cc >/dev/null && [ -f /usr/include/p11-kit-1/p11-kit/pkcs11.h ]; then
    cc -O2 -I/usr/include/p11-kit-1 -o "$tmp/p11-floor" benches/lib/p11-floor.c -ldl
    run_floor() { "$tmp/p11-floor" Bench "$tmp/dgst" "$tmp/sig.floor" "$PIN"; }
    run_floor
    floor=sig.floor
fi
for sig in sig.ukey sig.p11 sig.agent $floor; do
    openssl pkeyutl -verify -pubin -inkey "$tmp/pub.pem" -in "$tmp/dgst" -sigfile "$tmp/$sig" >/dev/null
done

# PKCS#11 calls per signature, counted by the fault shim in front of SoftHSM with no fault
# planned (a figure machine load cannot blur); skipped when the shim is not built.
SHIM=$(ls target/release/libukey_p11_fault.so target/debug/libukey_p11_fault.so 2>/dev/null | head -1 || true)
if [ -n "$SHIM" ]; then
    sed "s#$MODULE#$PWD/$SHIM#" "$tmp/config.toml" >"$tmp/shim.toml"
    UKEY_NO_AGENT=1 UKEY_P11_FAULT_TRACE=$tmp/trace.ukey UKEY_PIN=$PIN "$UKEY" --config "$tmp/shim.toml" sign --token Bench \
        --key bench --alg ecdsa-sha256 --prehashed --in "$tmp/dgst" --out "$tmp/sig.shim" --format der >/dev/null 2>&1
    UKEY_P11_FAULT_TRACE=$tmp/trace.p11 pkcs11-tool --module "$SHIM" --token-label Bench --login --pin "$PIN" \
        --sign -m ECDSA --id 01 --signature-format openssl -i "$tmp/dgst" -o "$tmp/sig.shim" >/dev/null 2>&1
    echo "PKCS#11 calls per signature: ukey $(wc -l <"$tmp/trace.ukey"), pkcs11-tool $(wc -l <"$tmp/trace.p11")"
else
    echo "(PKCS#11 call counts skipped: build the shim with cargo build -p ukey-pkcs11-fault-module)"
fi

. benches/lib/interleave.sh   # (the script runs from the repository root)
echo "load before: $(uptime)"
interleave_compare3 "$N" 0.8 "ukey sign (direct)" run_ukey "pkcs11-tool" run_p11 "ukey sign (through agent)" run_agent
echo "load after: $(uptime)"
if [ -n "$floor" ]; then
    echo "The floor (C: the 13 PKCS#11 calls and nothing else) against the same pkcs11-tool:"
    interleave_compare "$N" 0.8 "C floor" run_floor "pkcs11-tool" run_p11
    echo "load after: $(uptime)"
else
    echo "(floor skipped: needs cc and p11-kit's pkcs11.h, apt-get install gcc libp11-kit-dev)"
fi
