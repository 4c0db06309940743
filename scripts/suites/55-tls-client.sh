#!/usr/bin/env bash
# TLS client authentication through libukey_pkcs11.so with a real browser: headless Chromium, with
# the module in its NSS database and the agent PIN mode (UKEY_PKCS11_PIN=agent), fetches a page
# from `openssl s_server -Verify 1`, presenting a CA-issued certificate whose key is on a soft
# token the agent serves. Headless Chromium never calls C_Login (it has no password dialog), so
# this is the mode browsers need: the agent asks for the PIN itself (here the scripted pinentry,
# real Assuan) when Chromium signs the handshake.
#
# Passes only when all of these hold:
# - Chromium's fetched page (s_server's -www status page) shows the client certificate s_server
#   received and verified against the test CA;
# - s_server's own log shows the chain verified to the client certificate's subject;
# - the agent's pinentry was asked once or more, naming Chromium;
# - the agent's audit log holds a successful sign record by Chromium's executable;
# - the PIN appears in no log;
# - when the holder refuses the PIN dialog, Chromium gets no client-authenticated page.
# Every wait is bounded and on a condition. A missing prerequisite is a failure saying what to
# install. Everything lives in a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
    echo "55-tls-client: FAILED: $*" >&2
    exit 1
}

chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail "Chromium is missing at $chromium: apt-get install chromium (scripts/apt-packages.txt lists it)"
for tool in openssl:openssl certutil:libnss3-tools modutil:libnss3-tools timeout:coreutils; do
    command -v "${tool%%:*}" >/dev/null || fail "${tool%%:*} is missing: apt-get install ${tool#*:}"
done

echo "-- building ukey, ukey-pinentry-script and libukey_pkcs11.so"
cargo build --locked --bin ukey --bin ukey-pinentry-script
cargo build --locked -p ukey-pkcs11-module
target=$(cd "${CARGO_TARGET_DIR:-target}/debug" && pwd)
ukey_bin=$target/ukey
pinentry=$target/ukey-pinentry-script
module=$target/libukey_pkcs11.so
for f in "$ukey_bin" "$pinentry" "$module"; do
    [ -e "$f" ] || fail "$f was not built"
done

work=$(mktemp -d /tmp/ukey-tls-client.XXXXXX)
server_pid=
agent_started=
policy=
cleanup() {
    status=$?
    if [ -n "$policy" ]; then rm -f "$policy"; fi
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    if [ -n "$agent_started" ]; then "$ukey_bin" agent stop >/dev/null 2>&1 || true; fi
    if [ "$status" -ne 0 ]; then
        for log in agent.log run/ukey/agent.log s_server.log page.log page.html refused.log refused.html pinentry-log.jsonl; do
            if [ -s "$work/$log" ]; then
                echo "--- $log (last 40 lines, without Chromium's D-Bus complaints)" >&2
                grep -v 'dbus/' "$work/$log" | tail -n 40 >&2
            fi
        done
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

# The holder's environment: everything of ukey under $work, only the soft driver (the machine's
# PKCS#11 modules and readers belong to other tests).
mkdir -p "$work/run" "$work/data" "$work/config" "$work/state" "$work/home" "$work/soft" "$work/pki"
chmod 700 "$work/run"
export XDG_RUNTIME_DIR=$work/run XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config
export XDG_STATE_HOME=$work/state HOME=$work/home UKEY_SOFT_DIR=$work/soft UKEY_DRIVERS=soft
unset UKEY_AGENT_SOCKET UKEY_PIN UKEY_SO_PIN UKEY_NEW_PIN
umask 077
printf '%s' "tls-user-$$-1234" >"$work/user.pin"
printf '%s' "tls-so-$$-98765" >"$work/so.pin"
client_cn="ukey TLS client $$"

echo "-- soft token with a P-256 key, certified by a test CA made here"
"$ukey_bin" token init --soft --label "TLS Holder" --so-pin-file "$work/so.pin" --new-pin-file "$work/user.pin" >/dev/null
"$ukey_bin" --pin-file "$work/user.pin" keygen --alg p256 --label tls-client >/dev/null
"$ukey_bin" --pin-file "$work/user.pin" csr --key tls-client --subject "CN=$client_cn,O=ukey tests" \
    --out "$work/pki/client.csr" >/dev/null
pki=$work/pki
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" \
    -out "$pki/ca.pem" -subj "/CN=ukey TLS test CA $$" -days 2 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" \
    >"$pki/client.ext"
openssl x509 -req -in "$pki/client.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile "$pki/client.ext" -out "$pki/client.pem" 2>/dev/null
"$ukey_bin" --pin-file "$work/user.pin" cert import --label tls-client "$pki/client.pem" >/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$pki/server.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/server.key" \
    -out "$pki/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile "$pki/server.ext" -out "$pki/server.pem" 2>/dev/null

echo "-- the agent on the soft token, with the scripted pinentry"
# One PIN line per signature Chromium may make (a handshake signs once; a retry or a second
# connection may sign again); no PIN cache, so every signature asks.
for _ in 1 2 3 4 5 6; do printf 'pin %s\n' "$(cat "$work/user.pin")"; done >"$work/pinentry-script"
: >"$work/pinentry-log.jsonl"
"$ukey_bin" -vv agent --detach --port 0 --no-websocket --pinentry "$pinentry" \
    --pinentry-arg=--script --pinentry-arg="$work/pinentry-script" \
    --pinentry-arg=--log --pinentry-arg="$work/pinentry-log.jsonl" >"$work/agent.log" 2>&1 ||
    fail "the agent did not start"
agent_started=1
"$ukey_bin" agent status >/dev/null || fail "the agent does not answer after starting"

echo "-- NSS database with libukey_pkcs11.so, trusting the test CA"
nssdb=$HOME/.pki/nssdb
mkdir -p "$nssdb"
certutil -N -d "sql:$nssdb" --empty-password
certutil -A -d "sql:$nssdb" -n "ukey TLS test CA" -t "C,," -i "$pki/ca.pem"
UKEY_PKCS11_PIN=agent modutil -dbdir "sql:$nssdb" -add ukey -libfile "$module" -force >/dev/null
listed=$(UKEY_PKCS11_PIN=agent certutil -L -d "sql:$nssdb" -h all)
grep -q "tls-client" <<<"$listed" || fail "NSS does not list the carrier's certificate through the module: $listed"

echo "-- openssl s_server -Verify 1"
# Port 0: the kernel picks a free port, which s_server prints as "ACCEPT host:port".
openssl s_server -accept 127.0.0.1:0 -naccept 20 -www -Verify 1 -CAfile "$pki/ca.pem" \
    -cert "$pki/server.pem" -key "$pki/server.key" >"$work/s_server.log" 2>&1 &
server_pid=$!
port=
deadline=$((SECONDS + 30))
while [ -z "$port" ]; do
    port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$work/s_server.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || fail "s_server exited before listening"
    [ "$SECONDS" -lt "$deadline" ] || fail "s_server did not listen within 30 s"
    sleep 0.1 # polling a condition under a deadline
done
url="https://127.0.0.1:$port/"

echo "-- headless Chromium fetches $url with the carrier's certificate"
# The policy picks the client certificate without a dialog (headless has none): any certificate
# issued by the test CA, for this server.
policy_dir=/etc/chromium/policies/managed
policy=$policy_dir/ukey-tls-client-test-$$.json
mkdir -p "$policy_dir" 2>/dev/null && [ -w "$policy_dir" ] ||
    fail "cannot write Chromium's policy directory $policy_dir: run as root (CI runs the suites as root)"
printf '{"AutoSelectCertificateForUrls": ["{\\"pattern\\":\\"https://127.0.0.1:%s\\",\\"filter\\":{\\"ISSUER\\":{\\"CN\\":\\"ukey TLS test CA %s\\"}}}"]}\n' \
    "$port" "$$" >"$policy"
chmod 644 "$policy"
# Fetches the URL with a fresh profile: fetch NAME writes $work/NAME.html and $work/NAME.log.
fetch() {
    set +e
    UKEY_PKCS11_PIN=agent UKEY_PKCS11_DEBUG=1 timeout 120 "$chromium" --headless --no-sandbox --disable-gpu \
        --no-first-run --disable-extensions --user-data-dir="$work/profile-$1" --dump-dom "$url" \
        >"$work/$1.html" 2>"$work/$1.log"
    local status=$?
    set -e
    [ "$status" -eq 124 ] && fail "Chromium did not finish within 120 s (the handshake waited; see $1.log)"
    [ "$status" -eq 0 ] || fail "Chromium exited with $status (see $1.log)"
}
fetch page

echo "-- checking the handshake, the PIN dialog and the audit record"
grep -q "Client certificate" "$work/page.html" ||
    fail "the page Chromium fetched does not show a client certificate: the handshake was not client-authenticated"
grep -q "CN *= *$client_cn" "$work/page.html" || grep -q "CN=$client_cn" "$work/page.html" ||
    fail "the page shows a client certificate other than the carrier's ($client_cn)"
grep -q "depth=0 .*$client_cn" "$work/s_server.log" ||
    fail "s_server's log does not show the client certificate's chain verified to $client_cn"
grep -q "verify error" "$work/s_server.log" && fail "s_server reports a verification error"

dialogs=$(grep -c . "$work/pinentry-log.jsonl" || true)
[ "$dialogs" -ge 1 ] || fail "the agent never asked for the PIN"
grep -qi "chromium" "$work/pinentry-log.jsonl" || fail "the PIN dialog does not name Chromium"

pin=$(cat "$work/user.pin")
for log in run/ukey/agent.log agent.log page.log pinentry-log.jsonl s_server.log; do
    if [ -f "$work/$log" ] && grep -qF -- "$pin" "$work/$log"; then fail "the PIN appears in $log"; fi
done

# Only successful sign records are listed; one of them must name Chromium's executable.
audit=$("$ukey_bin" --json audit show --op sign --result done --limit 0)
by_chromium=$(grep -o '"[^"]*/chromium[^"]*"' <<<"$audit" | head -n 1 || true)
[ -n "$by_chromium" ] || fail "no successful sign record by Chromium's executable in the audit log: $audit"
echo "   the audit log records the signature by $by_chromium"
echo "-- the holder refuses the PIN dialog: Chromium gets no client-authenticated page"
printf 'cancel\n' >"$work/pinentry-script"
fetch refused
grep -q "Client certificate" "$work/refused.html" && fail "s_server served its page although the holder refused the PIN"
refused_dialogs=$(grep -c . "$work/pinentry-log.jsonl" || true)
[ "$refused_dialogs" -gt "$dialogs" ] || fail "the refused attempt never reached the agent's PIN dialog"
reason=$(grep -o 'ERR_SSL_[A-Z_]*' "$work/refused.log" | head -n 1 || true)
echo "   Chromium's page load failed: ${reason:-(no net error named in its log)}"
rm -f "$policy"
policy=

"$ukey_bin" audit verify >/dev/null || fail "the audit chain does not verify"
echo "55-tls-client: OK (Chromium authenticated with the carrier's key; $dialogs PIN dialog(s); audited)"
