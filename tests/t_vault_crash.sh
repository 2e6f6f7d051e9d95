#!/usr/bin/env bash
# Crash safety of `medveil vault put` (issue 5): put runs on a few hundred files in small
# batches and is killed with SIGKILL at random moments, 24 times (each run resumes: what is
# stored already is skipped). Then:
#  - `vault fsck` finds no damage (it first rolls back what the kills left unfinished, and says so);
#  - every object put acknowledged (its "stored" line, printed after the commit) reads back
#    byte for byte with `vault get`;
#  - no temporary file is left in HOME/vault/tmp, no file under HOME is a DICOM file, and no
#    patient name or ID of the inputs appears anywhere under HOME.
# Inputs: synthetic files from mksynth (fake people), so the test runs without the corpus.
# MV_VAULT_KILLS sets the number of runs to kill (default 24).
set -u
MEDVEIL=${MEDVEIL:?MEDVEIL must name the medveil binary}
MKSYNTH=${MKSYNTH:-}
PY=${MV_PYTHON:-/usr/bin/python3}
KILLS=${MV_VAULT_KILLS:-24}
if [ -z "$MKSYNTH" ] || [ ! -x "$MKSYNTH" ]; then
    echo "SKIP: mksynth is not built; the crash test needs its synthetic files"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

H="$work/home"
printf 'crash test passphrase\n' > "$work/pass"
chmod 600 "$work/pass"
V() { "$MEDVEIL" vault "$@" --home "$H" --passphrase-file "$work/pass"; }

# Each run gets a new set of synthetic files (24 CT slices and 5 others, other UIDs per seed)
# and the previous set again, so every run has work left when the kill comes. Runs go on until
# KILLS of them were really killed (a run that ends before its kill does not count), at most
# 3 * KILLS runs.
make_set() { "$MKSYNTH" "$work/in/set$1" --count 24 --seed $((100 + $1)) >/dev/null || { echo "mksynth failed"; exit 1; }; }
make_set 0
V init --argon2-t 1 --argon2-m 1024 >/dev/null || { echo "vault init failed"; exit 1; }

# How long an uninterrupted run takes, in a scratch home, to aim the kills.
"$MEDVEIL" vault init --home "$work/scratch" --passphrase-file "$work/pass" --argon2-t 1 --argon2-m 1024 >/dev/null
start=$(date +%s%N)
"$MEDVEIL" vault put --batch 4 --home "$work/scratch" --passphrase-file "$work/pass" "$work/in/set0" >/dev/null 2>&1
full_ms=$((($(date +%s%N) - start) / 1000000))
[ "$full_ms" -lt 20 ] && full_ms=20
echo "an uninterrupted put of one set takes ${full_ms} ms; kills land at random within that"

: > "$work/acked"
killed=0 runs=0
while [ "$killed" -lt "$KILLS" ] && [ "$runs" -lt $((3 * KILLS)) ]; do
    runs=$((runs + 1))
    i=$runs
    make_set "$i"
    # The binary itself in the background (a shell function would put a subshell between).
    "$MEDVEIL" vault put --batch 4 --home "$H" --passphrase-file "$work/pass" \
        "$work/in/set$((i - 1))" "$work/in/set$i" >"$work/out.$i" 2>"$work/err.$i" &
    pid=$!
    delay_ms=$(( (RANDOM * 32768 + RANDOM) % full_ms ))
    sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # 128 + 9: the signal ended it (a run that had already exited reports its own status).
    [ $? -eq 137 ] && killed=$((killed + 1))
    # Only whole lines count: a line cut by the kill (its path cut short) is not an acknowledgement.
    grep -E '^stored [0-9a-f]{32} [0-9.]+ .+$' "$work/out.$i" | while read -r w oid uid path; do
        [ -f "$path" ] && printf '%s %s %s %s\n' "$w" "$oid" "$uid" "$path"
    done >> "$work/acked"
done
n_files=$(find "$work/in" -type f | wc -l)
echo "$killed of $runs runs killed with SIGKILL"
check "put was killed while running $KILLS times ($killed in $runs runs)" test "$killed" -ge "$KILLS"
# Each run starts by finishing what the previous kill interrupted, and says so.
n_recovered=$(cat "$work"/err.* | grep -c "recovered from an interrupted run")
echo "later runs rolled back unfinished work of a killed one $n_recovered times"
check "kills landed in the middle of batches: later runs rolled unfinished work back ($n_recovered times)" \
    test "$n_recovered" -gt 0
n_acked=$(sort -u "$work/acked" | wc -l)
echo "$n_acked objects acknowledged across $runs runs"

V fsck >"$work/fsck.out" 2>"$work/fsck.err"
rc=$?
check "fsck after the kills finds no damage (exit $rc)" test $rc -eq 0
[ $rc -ne 0 ] && sed 's/^/    /' "$work/fsck.err" | head -10
cat "$work/fsck.out"
check "no temporary file is left" test -z "$(ls -A "$H/vault/tmp")"

# Every acknowledged object reads back exactly.
V get --all -o "$work/got" >/dev/null 2>"$work/get.err"
check "get --all after the kills succeeds" test $? -eq 0
check "every acknowledged object reads back byte for byte" bash -c '
    n=0
    while read -r _ oid uid path; do
        n=$((n + 1))
        cmp -s "$path" "$1/$uid.dcm" || { echo "    $uid ($path) differs or is missing"; exit 1; }
    done < <(sort -u "$2")
    [ "$n" -gt 0 ]' _ "$work/got" "$work/acked"

# A last run finishes the job: everything stored, nothing twice.
V put "$work/in" >"$work/final.out" 2>"$work/final.err"
check "a final uninterrupted put succeeds" test $? -eq 0
V ls --json >"$work/ls.json" 2>/dev/null
check "in the end every input is stored exactly once" "$PY" -c '
import json,sys; d=json.load(open(sys.argv[1]))
uids=[i["sop_instance_uid"] for p in d["patients"] for s in p["studies"] for se in s["series"] for i in se["instances"]]
assert len(uids)==len(set(uids))==int(sys.argv[2]), (len(uids), len(set(uids)), sys.argv[2])' "$work/ls.json" "$n_files"
V fsck >/dev/null 2>&1
check "fsck after the final put is clean" test $? -eq 0

# No plaintext anywhere in the home.
check "no file under HOME is a DICOM file" bash -c '
    ! find "$1" -type f -exec sh -c "head -c 132 \"\$1\" | tail -c 4 | grep -q DICM && echo \$1" _ {} \; | grep -q .' _ "$H"
check "no patient name or ID of the inputs under HOME" bash -c '! grep -rqaiE "DEMO\^ALICE|DEMO-0001|TEST\^BOB|DEMO-0002|MUELLER|M.LLER" "$1"' _ "$H"

echo "vault crash: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
