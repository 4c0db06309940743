#!/usr/bin/env bash
# Bounded fuzzing of every parser of untrusted bytes (fuzz/README.md lists them), as a CI suite:
# installs cargo-fuzz when it is missing, builds every cargo-fuzz target once (libFuzzer +
# AddressSanitizer, release with debug assertions), then runs each from its committed seeds into a
# throw-away corpus with a FIXED seed for the number of executions fuzz/ci-runs.txt gives it
# (about 20 s each; 22 targets take about 8 minutes, the build about 11 on 2 cores), capped at
# UKEY_FUZZ_SECONDS (default 90) per target. A fixed seed, the seeds read in one order (copied
# in name order into a tmpfs corpus, which lists files in the order they were made; an ext4
# checkout lists them in an order that differs per filesystem) and a fixed run count make every
# run START the same way. Runs still drift apart after a while (measured: two runs of 200,000
# on `tlv` ended with 98 and 106 corpus entries), because a target's comparisons include
# per-process values such as hash seeds, so CI may still draw an input no earlier run drew. The
# defence against that is fuzz/campaign.sh: every target has run 10 million random executions
# there (fuzz/README.md), far more than CI's budget. (Session 3's submission went red on a
# finding its own run had not drawn.)
# Fails on any crash, panic, failed assertion, timeout or out-of-memory, and prints the reproducer
# (path, bytes, and the command that replays it).
#
#   scripts/suites/60-fuzz.sh                                  # every target, CI budget
#   UKEY_FUZZ_SEED=7 UKEY_FUZZ_RUNS=5000000 UKEY_FUZZ_SECONDS=600 scripts/suites/60-fuzz.sh tlv
#
# libFuzzer and AddressSanitizer need unstable compiler flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain CI installs accept them (a nightly toolchain works too: UKEY_FUZZ_TOOLCHAIN=nightly).
# Needs only what scripts/apt-packages.txt already brings (build-essential: libFuzzer is C++).
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"

seconds=${UKEY_FUZZ_SECONDS:-90}
seed=${UKEY_FUZZ_SEED:-20261128}
toolchain=${UKEY_FUZZ_TOOLCHAIN:+"+$UKEY_FUZZ_TOOLCHAIN"}
started=$SECONDS

command -v c++ >/dev/null || { echo "a C++ compiler is missing (libFuzzer is C++): install build-essential" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: installing it (cargo install --locked cargo-fuzz)"
    cargo install --locked --version '^0.13' cargo-fuzz
fi
cargo fuzz --version

export RUSTC_BOOTSTRAP=1
# shellcheck disable=SC2086
cargo $toolchain fuzz build --release --debug-assertions
echo "built in $((SECONDS - started))s"
bin_dir=target/$(rustc -vV | sed -n 's/^host: //p')/release

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo $toolchain fuzz list); fi

# Scratch corpora, and TMPDIR for targets that write files (audit_log), on tmpfs when there is one.
base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
scratch=$(mktemp -d "$base/ukey-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/tmp"

failed=()
summary=()
for t in "${targets[@]}"; do
    [ -d "seeds/$t" ] || { echo "fuzz target $t has no seeds/$t: record seeds for it (fuzz/README.md)" >&2; failed+=("$t"); continue; }
    runs=${UKEY_FUZZ_RUNS:-$(awk -v t="$t" '$1 == t { print $2 }' ci-runs.txt)}
    [ -n "$runs" ] || { echo "fuzz target $t has no line in fuzz/ci-runs.txt: add one" >&2; failed+=("$t"); continue; }
    echo "== fuzz $t: $runs runs, seed $seed (at most ${seconds}s)"
    mkdir -p "$scratch/$t"
    while IFS= read -r f; do cp "seeds/$t/$f" "$scratch/$t/$f"; done < <(LC_ALL=C ls -A "seeds/$t" | LC_ALL=C sort)
    log="$scratch/$t.log"
    status=0
    # The binaries `cargo fuzz build` made are run directly: `cargo fuzz run` passes other
    # profile settings (line-tables-only debug info) and would rebuild the whole tree once more.
    mkdir -p "artifacts/$t"
    TMPDIR="$scratch/tmp" nice -n 5 "$bin_dir/$t" -artifact_prefix="artifacts/$t/" "$scratch/$t" \
        -seed="$seed" -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ "$status" != 0 ]; then
        tail -n 60 "$log"
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        if [ -n "$artifact" ] && [ -f "$artifact" ]; then
            echo "reproducer: fuzz/$artifact ($(stat -c %s "$artifact") bytes), first bytes:"
            od -An -tx1 -N 256 "$artifact"
            echo "replay: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --release --debug-assertions $t $artifact"
            echo "re-run the same inputs: UKEY_FUZZ_SEED=$seed scripts/suites/60-fuzz.sh $t"
        fi
        echo "FAILED: fuzz target $t (exit $status)" >&2
        failed+=("$t")
        summary+=("FAILED  $t")
    else
        summary+=("ok      $t  ${executed:-?} of $runs runs, ${rate:-?} exec/s")
    fi
done

printf '%s\n' "${summary[@]}"
echo "fuzz suite took $((SECONDS - started))s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets with findings: ${failed[*]}" >&2
    exit 1
fi
