#!/usr/bin/env bash
# Benchmark of issue 9: `pkcs11-tool --sign` through libukey_pkcs11.so (the agent in front of
# SoftHSM) against the same key through SoftHSM directly, whole-process wall time, interleaved in
# one run. Goal: the module's median ≤ 1.5 × the direct median per signature.
#
#   cargo build --release -p ukey -p ukey-pkcs11-module && benches/p11module-sign.sh   # N=30
#   N=100 UKEY=target/debug/ukey MODULE=target/debug/libukey_pkcs11.so benches/p11module-sign.sh
#
# Needs softhsm2, opensc (pkcs11-tool) and openssl. A real `ukey agent` serves the SoftHSM token
# (drivers = ["pkcs11"], only SoftHSM, no p11-kit); each module run loads the module, finds the
# agent's slot, logs in with the PIN given on the command line (forwarded to the agent, which
# checks it on SoftHSM), finds the key, signs through the agent's gate and writes the signature.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-30}
UKEY=${UKEY:-target/release/ukey}
MODULE=${MODULE:-target/release/libukey_pkcs11.so}
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
PIN=123456

for tool in softhsm2-util pkcs11-tool openssl; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install softhsm2 opensc openssl" >&2; exit 1; }
done
[ -x "$UKEY" ] || { echo "no ukey binary at $UKEY: cargo build --release -p ukey" >&2; exit 1; }
[ -f "$MODULE" ] || { echo "no module at $MODULE: cargo build --release -p ukey-pkcs11-module" >&2; exit 1; }
MODULE=$(realpath "$MODULE")

tmp=$(mktemp -d)
agent_pid=
cleanup() { [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/tokens" "$tmp/run"
chmod 700 "$tmp/run"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$tmp/tokens" >"$tmp/softhsm2.conf"
export SOFTHSM2_CONF=$tmp/softhsm2.conf
export HOME=$tmp XDG_CONFIG_HOME=$tmp/config XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state XDG_RUNTIME_DIR=$tmp/run
export UKEY_PKCS11_DEBUG=0
softhsm2-util --init-token --free --label Bench --so-pin 12345678 --pin "$PIN" >/dev/null
pkcs11-tool --module "$SOFTHSM" --token-label Bench --login --pin "$PIN" \
    --keypairgen --key-type EC:prime256v1 --id 01 --label bench >/dev/null 2>&1
cat >"$tmp/config.toml" <<TOML
drivers = ["pkcs11"]

[soft]
enabled = false

[pkcs11]
p11kit = false

[[pkcs11.modules]]
path = "$SOFTHSM"
TOML
"$UKEY" --config "$tmp/config.toml" agent --port 0 >"$tmp/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 200); do [ -S "$tmp/run/ukey/agent.sock" ] && break; sleep 0.05; done
[ -S "$tmp/run/ukey/agent.sock" ] || { echo "the agent did not start:"; cat "$tmp/agent.log"; exit 1; }
head -c 32 /dev/urandom >"$tmp/dgst"

run_module() {
    pkcs11-tool --module "$MODULE" --token-label Bench --login --pin "$PIN" --sign -m ECDSA --id 01 \
        --signature-format openssl -i "$tmp/dgst" -o "$tmp/sig.mod" >/dev/null 2>&1
}
run_direct() {
    pkcs11-tool --module "$SOFTHSM" --token-label Bench --login --pin "$PIN" --sign -m ECDSA --id 01 \
        --signature-format openssl -i "$tmp/dgst" -o "$tmp/sig.direct" >/dev/null 2>&1
}

# Both must work and produce signatures that verify, or the timing means nothing.
ok=
for _ in $(seq 100); do run_module && { ok=1; break; }; sleep 0.1; done   # the agent lists SoftHSM shortly after start
[ -n "$ok" ] || { echo "signing through the module failed:"; pkcs11-tool --module "$MODULE" -L; cat "$tmp/agent.log"; exit 1; }
run_direct
pkcs11-tool --module "$SOFTHSM" --token-label Bench --read-object --type pubkey --id 01 -o "$tmp/pub.der" >/dev/null 2>&1
openssl pkey -pubin -inform DER -in "$tmp/pub.der" -out "$tmp/pub.pem"
for sig in sig.mod sig.direct; do
    openssl pkeyutl -verify -pubin -inkey "$tmp/pub.pem" -in "$tmp/dgst" -sigfile "$tmp/$sig" >/dev/null
done

. benches/lib/interleave.sh   # (the script runs from the repository root)
interleave_compare "$N" 1.5 "libukey_pkcs11 (agent)" run_module "SoftHSM directly" run_direct
