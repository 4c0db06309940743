#!/usr/bin/env bash
# Bounded fuzzing of every parser of untrusted bytes (fuzz/README.md lists them): builds the
# cargo-fuzz targets once, then runs each for UKEY_FUZZ_SECONDS (default 25 s; 20 targets stay
# under 10 minutes on 2 cores) from its committed seeds, into a throw-away corpus. Fails on any
# crash, panic, assertion, timeout or out-of-memory, and prints the reproducer's path.
#
#   scripts/fuzz-bounded.sh                       # every target, CI budget
#   UKEY_FUZZ_SECONDS=600 scripts/fuzz-bounded.sh tlv piv_card   # longer, chosen targets
#
# libFuzzer and AddressSanitizer need unstable compiler flags; RUSTC_BOOTSTRAP=1 lets the
# installed stable toolchain accept them (a nightly toolchain works too: UKEY_FUZZ_TOOLCHAIN=nightly).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${UKEY_FUZZ_SECONDS:-25}
toolchain=${UKEY_FUZZ_TOOLCHAIN:+"+$UKEY_FUZZ_TOOLCHAIN"}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: installing it (cargo install --locked cargo-fuzz)"
    cargo install --locked cargo-fuzz
fi
cargo fuzz --version

export RUSTC_BOOTSTRAP=1
# shellcheck disable=SC2086
cargo $toolchain fuzz build --release --debug-assertions

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo $toolchain fuzz list); fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${seconds}s"
    mkdir -p "$scratch/$t"
    log="$scratch/$t.log"
    status=0
    # shellcheck disable=SC2086
    nice -n 5 cargo $toolchain fuzz run --release --debug-assertions "$t" "$scratch/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ "$status" != 0 ]; then
        tail -n 60 "$log"
        echo "FAILED: fuzz target $t (exit $status); reproducer above (fuzz/artifacts/$t/)" >&2
        failed+=("$t")
        summary+=("FAILED  $t")
    else
        summary+=("ok      $t  ${runs:-?} runs, ${secs:-?} exec/s")
    fi
done

printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets with findings: ${failed[*]}" >&2
    exit 1
fi
