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

# Three commands alternately (A, B, C, A, B, C, ...); prints the stats of each and the ratios of
# the medians A/B and C/B against a goal (B is the reference both are compared with).
#
#   interleave_compare3 N GOAL "name A" run_a "name B" run_b "name C" run_c
interleave_compare3() {
    local n=$1 goal=$2 name_a=$3 run_a=$4 name_b=$5 run_b=$6 name_c=$7 run_c=$8
    local dir t0 t1 x m a lo hi
    dir=$(mktemp -d)
    : >"$dir/a"
    : >"$dir/b"
    : >"$dir/c"
    for _ in $(seq "$n"); do
        t0=$(date +%s%N); "$run_a"; t1=$(date +%s%N); echo $((t1 - t0)) >>"$dir/a"
        t0=$(date +%s%N); "$run_b"; t1=$(date +%s%N); echo $((t1 - t0)) >>"$dir/b"
        t0=$(date +%s%N); "$run_c"; t1=$(date +%s%N); echo $((t1 - t0)) >>"$dir/c"
    done
    printf '%-28s %10s %10s %10s %10s   (ms, %d runs each, interleaved)\n' "" median mean min max "$n"
    for x in a b c; do
        read -r m a lo hi < <(interleave_stats "$dir/$x")
        eval "median_$x=$m"
        case $x in a) name=$name_a ;; b) name=$name_b ;; c) name=$name_c ;; esac
        printf '%-28s %10s %10s %10s %10s\n' "$name" "$m" "$a" "$lo" "$hi"
    done
    rm -rf "$dir"
    for x in a c; do
        case $x in a) name=$name_a; m=$median_a ;; c) name=$name_c; m=$median_c ;; esac
        awk -v a="$m" -v b="$median_b" -v g="$goal" -v na="$name" -v nb="$name_b" \
            'BEGIN {r=a/b; printf "ratio %s / %s (medians): %.3f  (goal <= %s: %s)\n", na, nb, r, g, (r<=g?"met":"not met")}'
    done
}
