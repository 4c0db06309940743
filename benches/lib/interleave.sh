# Shared by the bench scripts: time two commands alternately (A, B, A, B, ...) so drift in machine
# load hits both alike, then print median/mean/min/max in ms and the ratio of the medians A/B
# against a goal.
#
#   interleave_compare N GOAL "name A" run_a "name B" run_b   # run_a/run_b: shell functions

# median mean min max (ms) of a file of nanosecond durations, one per line.
interleave_stats() {
    sort -n "$1" | awk '{v[NR]=$1; s+=$1} END {printf "%.2f %.2f %.2f %.2f\n", v[int((NR+1)/2)]/1e6, s/NR/1e6, v[1]/1e6, v[NR]/1e6}'
}

interleave_compare() {
    local n=$1 goal=$2 name_a=$3 run_a=$4 name_b=$5 run_b=$6
    local dir t0 t1 am aa an ax bm ba bn bx
    dir=$(mktemp -d)
    : >"$dir/a"
    : >"$dir/b"
    for _ in $(seq "$n"); do
        t0=$(date +%s%N); "$run_a"; t1=$(date +%s%N); echo $((t1 - t0)) >>"$dir/a"
        t0=$(date +%s%N); "$run_b"; t1=$(date +%s%N); echo $((t1 - t0)) >>"$dir/b"
    done
    read -r am aa an ax < <(interleave_stats "$dir/a")
    read -r bm ba bn bx < <(interleave_stats "$dir/b")
    rm -rf "$dir"
    printf '%-24s %10s %10s %10s %10s   (ms, %d runs each, interleaved)\n' "" median mean min max "$n"
    printf '%-24s %10s %10s %10s %10s\n' "$name_a" "$am" "$aa" "$an" "$ax"
    printf '%-24s %10s %10s %10s %10s\n' "$name_b" "$bm" "$ba" "$bn" "$bx"
    awk -v a="$am" -v b="$bm" -v g="$goal" -v na="$name_a" -v nb="$name_b" \
        'BEGIN {r=a/b; printf "ratio %s / %s (medians): %.3f  (goal <= %s: %s)\n", na, nb, r, g, (r<=g?"met":"not met")}'
}
