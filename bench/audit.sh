#!/usr/bin/env bash
# Audit log benchmark: durable append throughput (events/s and fsync rounds per event) for one
# appender, batches and concurrent threads sharing fsyncs (group commit); then the log grown to
# 10^3, 10^4, 10^5 and 10^6 events with, at each size, the time of a full verification, the
# size and time of inclusion and consistency proofs, and the same through the CLI
# (`medveil audit verify`, `medveil audit prove inclusion`) and the size of HOME/audit.
#
# Usage: bash bench/audit.sh [BUILD_DIR]            (default: build)
#
# Environment:
#   MV_AUDIT_BENCH_MAX   largest log size (default 1000000; CI=true: 100000)
#   MV_AUDIT_BENCH_DIR   where the logs are written (default: a temporary folder under BUILD_DIR,
#                        so on the disk the build is on; removed at exit)
#
# The driver bench/audit_bench.c is compiled here with cc against BUILD_DIR/libmedveil.a.
# Results are printed and written as JSON lines to BUILD_DIR/audit-bench-results.jsonl.
# Exit status: 0 whatever the timings (a benchmark is not a test); 1 only for a broken setup.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$REPO/$BUILD
MAX=${MV_AUDIT_BENCH_MAX:-$([ "${CI:-}" = true ] && echo 100000 || echo 1000000)}
MEDVEIL=$BUILD/medveil
LIB=$BUILD/libmedveil.a
if [ ! -x "$MEDVEIL" ] || [ ! -f "$LIB" ]; then
    echo "bench/audit.sh: build first (no $MEDVEIL or $LIB)" >&2
    exit 1
fi
DRIVER=$BUILD/audit_bench
# shellcheck disable=SC2046
if ! cc -O2 -std=c11 -D_GNU_SOURCE -I"$REPO/include" "$REPO/bench/audit_bench.c" "$LIB" \
    $(pkg-config --libs libcrypto jansson) -pthread -lm -o "$DRIVER"; then
    echo "bench/audit.sh: cannot compile bench/audit_bench.c" >&2
    exit 1
fi
work=$(mktemp -d "${MV_AUDIT_BENCH_DIR:-$BUILD}/audit-bench.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
RESULTS=$BUILD/audit-bench-results.jsonl
: >"$RESULTS"

field() { "${PY:-/usr/bin/python3}" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])' "$1" "$2"; }

echo "== durable appends (write + fdatasync before each append returns) on $(df -T "$work" | awk 'NR==2{print $2}')"
printf '%-44s %10s %12s %14s\n' "case" "events" "events/s" "fsyncs/event"
run_append() {
    local what=$1 n=$2 batch=$3 threads=$4 line
    rm -rf "$work/append"
    line=$("$DRIVER" append "$work/append" "$n" "$batch" "$threads") || { echo "  $what: failed"; return; }
    echo "{\"case\":\"$what\",\"result\":$line}" >>"$RESULTS"
    printf '%-44s %10s %12s %14s\n' "$what" "$(field "$line" events)" "$(field "$line" events_per_s)" \
        "$(field "$line" commits_per_event)"
}
run_append "1 appender, 1 event per append" 1000 1 1
run_append "1 appender, batches of 100" 20000 100 1
run_append "1 appender, batches of 1000" 200000 1000 1
run_append "8 threads, 1 event per append" 8000 1 8
run_append "64 threads, 1 event per append" 32000 1 64
run_append "256 threads, 1 event per append" 64000 1 256
run_append "4 threads, batches of 100" 200000 100 4
echo "(fsyncs/event counts commit rounds; each round is one fdatasync of events.jsonl and one"
echo " of leaves.bin, plus nodes.bin every 256 events)"

echo
echo "== growth: verify and proofs (a checkpoint per 1000 events)"
printf '%-9s %8s %10s %12s %9s %9s %9s %9s %10s %10s\n' "events" "ckpts" "verify s" "verify ev/s" \
    "incl max" "incl ms" "cons max" "cons ms" "cli verify" "cli prove"
H=$work/grow
for size in 1000 10000 100000 1000000; do
    [ "$size" -le "$MAX" ] || break
    "$DRIVER" grow "$H" "$size" || { echo "grow to $size failed"; break; }
    line=$("$DRIVER" measure "$H") || { echo "measure at $size failed"; break; }
    t0=$(date +%s.%N)
    "$MEDVEIL" audit verify --home "$H" >/dev/null 2>&1 || echo "  medveil audit verify failed at $size"
    t1=$(date +%s.%N)
    "$MEDVEIL" audit prove inclusion $((size / 3)) --home "$H" >"$work/proof" || echo "  prove failed"
    t2=$(date +%s.%N)
    cli_verify=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2fs", b-a}')
    cli_prove=$(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1fms", 1000*(b-a)}')
    disk=$(du -sk "$H/audit" | cut -f1)
    echo "{\"case\":\"growth\",\"result\":$line,\"cli_verify\":\"$cli_verify\",\"cli_prove\":\"$cli_prove\",\"audit_kb\":$disk,\"proof_text_bytes\":$(wc -c <"$work/proof")}" >>"$RESULTS"
    printf '%-9s %8s %10s %12s %9s %9s %9s %9s %10s %10s\n' "$size" "$(field "$line" checkpoints)" \
        "$(field "$line" verify_s)" "$(field "$line" verify_events_per_s)" \
        "$(field "$line" inclusion_hashes_max)" "$(field "$line" inclusion_ms)" \
        "$(field "$line" consistency_hashes_max)" "$(field "$line" consistency_ms)" "$cli_verify" "$cli_prove"
    echo "          HOME/audit: ${disk} KB; inclusion proof text: $(wc -c <"$work/proof") bytes"
done
echo
echo "results: $RESULTS"
exit 0
