#!/usr/bin/env bash
# Reversible de-identification benchmark: what --encrypt-originals-to costs on top of a plain
# `medveil deid`, what `medveil reidentify` takes, and GDCM's gdcmanon -e / -d on a sample, all
# on the same input in one run. Keys are made here with the openssl CLI and thrown away.
#
# Usage: bash bench/reversible.sh [BUILD_DIR]      (default: build)
#
# Environment:
#   MV_CORPUS              input folder (default: ../shared/corpus/dev relative to the repo root;
#                          without it, BUILD_DIR/mksynth generates 300 files)
#   MV_REV_BENCH_RUNS      timed runs per command, after one warm-up (default 3); the best is shown
#   MV_REV_GDCM_SAMPLE     files in the gdcmanon sample (default 20; 0: skip gdcmanon)
#
# Exit status: 0 whatever the timings (a benchmark is not a test); 1 for a broken setup.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$REPO/$BUILD
RUNS=${MV_REV_BENCH_RUNS:-3}
SAMPLE=${MV_REV_GDCM_SAMPLE:-20}
MV=$BUILD/medveil
die() { printf 'bench-reversible: %s\n' "$*" >&2; exit 1; }
[[ -x $MV ]] || die "no medveil binary at $MV (build it first)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "MV_REV_BENCH_RUNS must be a positive integer"
[[ $SAMPLE =~ ^[0-9]+$ ]] || die "MV_REV_GDCM_SAMPLE must be a non-negative integer"
command -v openssl > /dev/null || die "the openssl CLI is needed to make the test keys"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MEDVEIL_HOME=$work/home
INPUT=${MV_CORPUS:-$REPO/../shared/corpus/dev}
if [[ ! -d $INPUT ]]; then
    [[ -x $BUILD/mksynth ]] || die "no corpus at $INPUT and no mksynth to make an input"
    "$BUILD/mksynth" "$work/synthetic" --count 300 --seed 1 > /dev/null
    INPUT=$work/synthetic
fi
openssl req -x509 -nodes -newkey rsa:2048 -keyout "$work/t.key" -out "$work/t.crt" -days 1 \
    -subj "/CN=bench trustee" 2> /dev/null
chmod 600 "$work/t.key"
"$MV" keygen -o "$work/project.key" > /dev/null
n_files=$(find "$INPUT" -type f | wc -l)
mb=$(du -sm "$INPUT" | cut -f1)
cat $(find "$INPUT" -type f) > /dev/null 2>&1 || true # page cache, as for every command

# best NAME OUT CMD...: one warm-up, RUNS timed runs (OUT removed before each), the best kept.
best_s=
best() {
    local out=$1; shift
    local t0 t1 s
    best_s=
    for ((i = 0; i <= RUNS; i++)); do
        rm -rf "$out" "$out-quarantine" "$work/home"
        t0=$(date +%s.%N)
        "$@" > /dev/null 2>&1 || true
        t1=$(date +%s.%N)
        ((i == 0)) && continue
        s=$(echo "$t1 - $t0" | bc -l)
        if [[ -z $best_s ]] || (($(echo "$s < $best_s" | bc -l))); then best_s=$s; fi
    done
}
row() { printf '%-50s %8.3f s %8.0f files/s %8.1f MB/s %6.2fx\n' "$1" "$2" "$(echo "$3 / $2" | bc -l)" \
    "$(echo "$mb / $2" | bc -l)" "$(echo "$2 / $4" | bc -l)"; }

printf 'input: %s (%d files, %d MB), %d runs each, best shown, -j 2, no sync\n\n' "$INPUT" "$n_files" "$mb" "$RUNS"
best "$work/plain" "$MV" deid --quiet --no-sync -j 2 --key "$work/project.key" "$INPUT" -o "$work/plain"
plain=$best_s
row "deid (no encryption)" "$plain" "$n_files" "$plain"
best "$work/cbc" "$MV" deid --quiet --no-sync -j 2 --key "$work/project.key" --encrypt-originals-to "$work/t.crt" \
    "$INPUT" -o "$work/cbc"
row "deid --encrypt-originals-to (CBC, OAEP)" "$best_s" "$n_files" "$plain"
best "$work/gcm" "$MV" deid --quiet --no-sync -j 2 --key "$work/project.key" --encrypt-originals-to "$work/t.crt" \
    --cms-auth-enveloped "$INPUT" -o "$work/gcm"
row "deid --encrypt-originals-to --cms-auth-enveloped" "$best_s" "$n_files" "$plain"
"$MV" deid --quiet --no-sync -j 2 --key "$work/project.key" --encrypt-originals-to "$work/t.crt" "$INPUT" \
    -o "$work/rel" > /dev/null 2>&1 || true
n_rel=$(find "$work/rel" -type f | wc -l)
best "$work/reid" "$MV" reidentify --quiet --private-key "$work/t.key" "$work/rel" -o "$work/reid"
row "reidentify ($n_rel files, audit log, one sync)" "$best_s" "$n_rel" "$plain"
# The Encrypted Attributes Sequence's bytes: each output with it against the same output without.
read -r n_pairs added < <(join -t $'\t' <(cd "$work/plain" && find . -type f -printf '%P\t%s\n' | sort -t $'\t' -k1,1) \
    <(cd "$work/rel" && find . -type f -printf '%P\t%s\n' | sort -t $'\t' -k1,1) |
    awk -F '\t' '{ n++; d += $3 - $2 } END { print n, d }')
printf '\nthe encrypted originals add %.1f KB per file on average (%d files)\n' \
    "$(echo "$added / $n_pairs / 1024" | bc -l)" "$n_pairs"

if ((SAMPLE > 0)) && command -v gdcmanon > /dev/null; then
    mapfile -t sample < <(cd "$work/rel" && find . -type f -name '*.dcm' | grep -v ' ' | sort | head -n "$SAMPLE")
    t0=$(date +%s.%N)
    for f in "${sample[@]}"; do
        mkdir -p "$work/gd/$(dirname "$f")"
        gdcmanon -d -k "$work/t.key" -i "$work/rel/$f" -o "$work/gd/$f" > /dev/null 2>&1 || true
    done
    t1=$(date +%s.%N)
    printf 'gdcmanon -d on %d of medveil'"'"'s outputs: %.1f files/s\n' "${#sample[@]}" \
        "$(echo "${#sample[@]} / ($t1 - $t0)" | bc -l)"
    t0=$(date +%s.%N)
    for f in "${sample[@]}"; do
        mkdir -p "$work/ge/$(dirname "$f")"
        gdcmanon -e -c "$work/t.crt" -i "$INPUT/${f#./*/}" -o "$work/ge/$f" > /dev/null 2>&1 || true
    done
    t1=$(date +%s.%N)
    printf 'gdcmanon -e on the same %d inputs: %.1f files/s\n' "${#sample[@]}" \
        "$(echo "${#sample[@]} / ($t1 - $t0)" | bc -l)"
fi
