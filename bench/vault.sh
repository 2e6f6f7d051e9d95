#!/usr/bin/env bash
# medveil vault benchmark (issue 5): `vault put` and `vault get` against `cp -r` and against
# `openssl enc -aes-256-ctr` piping the same bytes, in one run on one copy of the same files, in
# MB/s and as ratios to cp -r. The input is the corpus (or mksynth files), made unique copies of
# with `medveil deid` under different keys (the vault keys objects by SOP Instance UID, so plain
# copies would only be "already stored") until it reaches MV_VAULT_BENCH_MB.
#
# Usage: bash bench/vault.sh [BUILD_DIR]            (default: build)
#
# Environment:
#   MV_CORPUS            input folder (default ../shared/corpus/dev; else BUILD_DIR/mksynth files)
#   MV_VAULT_BENCH_MB    input size in MB (default 256)
#   MV_VAULT_BENCH_RUNS  timed runs per command, the best one counts (default 3)
#
# put is durable (its blobs and index are synced before it acknowledges); cp -r is not, so the
# table also has "cp -r + sync". The vault is unlocked with a key file: Argon2id would add a
# constant ~0.2 s per command that has nothing to do with throughput.
# Exit status: 0 whatever the timings; 1 for a broken setup (no medveil, no input).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$REPO/$BUILD
MV=$BUILD/medveil
TARGET_MB=${MV_VAULT_BENCH_MB:-256}
RUNS=${MV_VAULT_BENCH_RUNS:-3}
CORPUS=${MV_CORPUS:-$REPO/../shared/corpus/dev}
die() { printf 'bench-vault: %s\n' "$*" >&2; exit 1; }
note() { printf 'bench-vault: %s\n' "$*" >&2; }
[[ -x $MV ]] || die "no medveil binary at $MV (build first)"
[[ $TARGET_MB =~ ^[1-9][0-9]*$ ]] || die "MV_VAULT_BENCH_MB must be a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "MV_VAULT_BENCH_RUNS must be a positive integer"

work=$(mktemp -d "$BUILD/bench-vault.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/src
if [[ -d $CORPUS ]]; then
    src=$CORPUS
elif [[ -x $BUILD/mksynth ]]; then
    note "no corpus at $CORPUS: using mksynth files"
    "$BUILD/mksynth" "$src" --count 500 --seed 3 > /dev/null
else
    die "no corpus at $CORPUS and no mksynth"
fi

# ---- input: unique copies until TARGET_MB ---------------------------------------------------
in=$work/in
mkdir -p "$in"
bytes() { du -sb "$1" | cut -f1; }
copy=0
while (( $(bytes "$in") < TARGET_MB * 1000000 )); do
    copy=$((copy + 1))
    "$MV" keygen -o "$work/k$copy" > /dev/null
    # deid: new UIDs under each key; what it quarantines is left out.
    "$MV" deid --quiet --no-sync --key "$work/k$copy" --option retain-safe-private "$src" -o "$in/c$copy" \
        > /dev/null 2>&1 || true
    rm -rf "$in/c$copy-quarantine"
    (( copy < 64 )) || break
done
rm -rf "$in"/*-quarantine
# Keep only what the vault stores (it refuses files without a SOP Instance UID, damaged ones,
# and a UID it already holds with other bytes), so that every command handles the same bytes.
head -c 32 /dev/urandom > "$work/vault.key"
chmod 600 "$work/vault.key"
"$MV" vault init --home "$work/trial" --key-file "$work/vault.key" > /dev/null
{ "$MV" vault put --home "$work/trial" --key-file "$work/vault.key" "$in" 2>/dev/null || true; } |
    while read -r _ _ _ path; do printf '%s\n' "$path"; done | sort > "$work/kept"
find "$in" -type f | sort | comm -23 - "$work/kept" | while read -r path; do rm -f "$path"; done || true
rm -rf "$work/trial"
n_files=$(find "$in" -type f | wc -l)
total=$(bytes "$in")
mb=$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1e6 }')
note "input: $n_files files, $mb MB ($copy de-identified copies of $src)"
find "$in" -type f -exec cat {} + > /dev/null # warm the page cache

K=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
IV=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')

# best_of CMD...: runs RUNS times (a `prep` function runs untimed before each), prints the
# best wall time in seconds.
prep() { :; }
best_of() {
    local best="" t0 t1 s
    for _ in $(seq 1 "$RUNS"); do
        prep
        t0=$(date +%s%N)
        "$@" > /dev/null 2>&1
        t1=$(date +%s%N)
        s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
        if [[ -z $best ]] || awk -v s="$s" -v b="$best" 'BEGIN { exit !(s < b) }'; then best=$s; fi
    done
    echo "$best"
}

cp_r() { cp -r "$in" "$work/cp"; }
cp_sync() { cp -r "$in" "$work/cp" && sync -f "$work/cp"; }
ctr_enc() { find "$in" -type f -exec cat {} + | openssl enc -aes-256-ctr -K "$K" -iv "$IV" -out "$work/ctr.bin"; }
ctr_dec() { openssl enc -d -aes-256-ctr -K "$K" -iv "$IV" -in "$work/ctr.bin" -out "$work/ctr.out"; }
vput() { "$MV" vault put --quiet --home "$work/home" --key-file "$work/vault.key" "$in"; }
vget() { "$MV" vault get --quiet --all --home "$work/home" --key-file "$work/vault.key" -o "$work/got"; }
fresh_vault() {
    rm -rf "$work/home"
    "$MV" vault init --home "$work/home" --key-file "$work/vault.key" > /dev/null
}

prep() { rm -rf "$work/cp"; }
t_cp=$(best_of cp_r)
t_cp_sync=$(best_of cp_sync)
prep() { rm -f "$work/ctr.bin"; }
t_enc=$(best_of ctr_enc)
prep() { rm -f "$work/ctr.out"; }
t_dec=$(best_of ctr_dec)
prep() { fresh_vault; }
t_put=$(best_of vput)
# The last put's vault stays for get.
stored=$("$MV" vault ls --home "$work/home" --key-file "$work/vault.key" 2>/dev/null | tail -n 1)
prep() { rm -rf "$work/got"; }
t_get=$(best_of vget)
n_got=$(find "$work/got" -type f | wc -l)

row() { # NAME SECONDS
    awk -v n="$1" -v s="$2" -v b="$total" -v c="$t_cp" \
        'BEGIN { printf "  %-34s %8.3f s %9.1f MB/s %8.2f x cp -r\n", n, s, b / 1e6 / s, c / s }'
}
echo
echo "vault benchmark: $n_files files, $mb MB, best of $RUNS runs ($(nproc) cores; $(date -u +%FT%TZ))"
row "cp -r" "$t_cp"
row "cp -r + sync" "$t_cp_sync"
row "openssl enc -aes-256-ctr (encrypt)" "$t_enc"
row "openssl enc -d -aes-256-ctr" "$t_dec"
row "medveil vault put (synced)" "$t_put"
row "medveil vault get --all (synced)" "$t_get"
echo "  vault: $stored; get wrote $n_got files"
awk -v p="$t_put" -v g="$t_get" -v c="$t_cp" 'BEGIN {
    printf "  goal: put and get >= 50%% of cp -r: put %.0f%%, get %.0f%% -> %s\n", 100 * c / p, 100 * c / g,
        (c / p >= 0.5 && c / g >= 0.5) ? "met" : "NOT met" }'
