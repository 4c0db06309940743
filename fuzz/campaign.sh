#!/usr/bin/env bash
# A long fuzzing campaign on demand: runs the already built targets ONE AT A TIME under
# `nice -n 19` (so it only takes idle CPU), each towards UKEY_FUZZ_RUNS executions (default 10
# million) or UKEY_FUZZ_SECONDS (default 1800) per target, whichever comes first, sharing the time
# left until UKEY_FUZZ_UNTIL (a `date -d` time, e.g. "03:10 UTC"). New inputs are
# kept in corpus/<target> (not committed); findings land in artifacts/<target>/.
#
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build --release --debug-assertions
#   UKEY_FUZZ_UNTIL="03:10 UTC" ./campaign.sh [TARGET...] > campaign.log 2>&1 &
#
# The binaries are copied first, so rebuilding the targets during a campaign does not disturb it.
# One line per target goes to stdout: runs, exec/s, coverage (cov/ft) and the outcome; the same
# line is appended to logs/ledger.tsv, so runs add up across campaigns (`./campaign.sh --totals`).
#
# UKEY_FUZZ_BUILT names another build to run, e.g. targets built without AddressSanitizer, which
# run 2-3x faster and still catch every panic, failed assertion, overflow, hang and OOM (safe Rust
# needs ASan only for bugs in unsafe code, and the CI suite runs the ASan build on every change):
#   RUSTC_BOOTSTRAP=1 cargo fuzz build --release --debug-assertions -s none --target-dir target-nosan
#   UKEY_FUZZ_BUILT=target-nosan/x86_64-unknown-linux-gnu/release ./campaign.sh
set -uo pipefail
cd "$(dirname "$0")"

runs=${UKEY_FUZZ_RUNS:-10000000}
seconds=${UKEY_FUZZ_SECONDS:-1800}
until_epoch=$(date -d "${UKEY_FUZZ_UNTIL:-tomorrow}" +%s)
built=${UKEY_FUZZ_BUILT:-target/x86_64-unknown-linux-gnu/release}
mkdir -p logs
ledger=logs/ledger.tsv

if [ "${1:-}" = "--totals" ]; then
    # Executions per target over every campaign recorded here, and the targets short of the goal.
    awk -F'\t' -v goal="$runs" '{ n[$2] += $3; f[$2] += ($6 != "ok") }
        END { for (t in n) printf "%-18s %12d runs%s%s\n", t, n[t], (n[t] >= goal ? "" : "  (short of goal)"), (f[t] ? "  FINDINGS: " f[t] : "") }' \
        "$ledger" | sort
    exit 0
fi

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^ukey-fuzz$'); fi
bin=$(mktemp -d)
# Targets that write scratch files (audit_log) write them to tmpfs, as the CI suite does: a sync
# there costs no disk time, so the runs exercise ukey's code rather than the disk.
scratch=$(mktemp -d -p /dev/shm ukey-fuzz-scratch.XXXXXX)
export TMPDIR=$scratch
trap 'rm -rf "$bin" "$scratch"' EXIT
for t in "${targets[@]}"; do
    [ -x "$built/$t" ] || { echo "$t: not built ($built/$t); build first" >&2; exit 1; }
    cp "$built/$t" "$bin/$t"
done
remaining=${#targets[@]}
for t in "${targets[@]}"; do
    left=$((until_epoch - $(date +%s)))
    share=$((left / remaining))
    remaining=$((remaining - 1))
    if [ "$share" -le 10 ]; then
        echo "$t: skipped (campaign deadline reached)"
        continue
    fi
    done_runs=$(awk -F'\t' -v t="$t" '$2 == t { n += $3 } END { print n + 0 }' "$ledger" 2>/dev/null || echo 0)
    todo=$((runs - done_runs))
    if [ "$todo" -le 0 ]; then
        echo "$t: ${done_runs} runs recorded, goal of ${runs} reached"
        continue
    fi
    # The time left is shared evenly by the targets still to run.
    budget=$((share < seconds ? share : seconds))
    mkdir -p "corpus/$t" "artifacts/$t"
    log="logs/$t.log"
    status=0
    nice -n 19 "$bin/$t" "corpus/$t" "seeds/$t" -runs="$todo" -max_total_time="$budget" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
        >"$log" 2>&1 || status=$?
    executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    outcome=ok
    [ "$status" = 0 ] || outcome="FINDING (exit $status; see fuzz/$log and fuzz/artifacts/$t/)"
    echo "$t: ${executed:-?} runs, ${rate:-?} exec/s, ${cov:-cov ?}, ${budget}s budget: $outcome"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "${executed:-0}" "${rate:-0}" "$built" \
        "$([ "$status" = 0 ] && echo ok || echo "finding:$status")" >>"$ledger"
done
