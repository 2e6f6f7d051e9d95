#!/usr/bin/env bash
# The audit log as a user and an attacker meet it: events appended (through the library, as
# every command's cli_audit does), verified, proved and checked offline; the roots, proofs,
# key id and signatures checked again by independent oracles (hashlib in tests/audit_oracle.py
# and the openssl CLI); then the log tampered with in every way the threat model names, where
# `audit verify` must exit 3 and name the first bad position.
set -u
MEDVEIL=${MEDVEIL:?MEDVEIL must name the medveil binary}
BUILD=${MV_BUILD_DIR:?}
SRC=${MV_SOURCE_DIR:?}
PY=${MV_PYTHON:-/usr/bin/python3}
APPEND="$BUILD/tests/test_audit"
ORACLE="$SRC/tests/audit_oracle.py"
if [ ! -x "$APPEND" ]; then
    echo "SKIP: $APPEND (the helper that appends events) is not built"
    exit 77
fi
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
# expect STATUS DESCRIPTION -- COMMAND...
expect() {
    local want=$1 what=$2
    shift 3
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    [ -n "${VERBOSE:-}" ] && echo "[$what] exit $rc: $(head -c 300 "$work/err")"
    if [ $rc -eq "$want" ]; then ok; else bad "$what: exit $rc, want $want; stderr: $(head -c 400 "$work/err")"; fi
}
contains() { if grep -q -- "$2" "$1"; then ok; else bad "$3: '$2' not in $(basename "$1"): $(head -c 400 "$1")"; fi; }
fresh() { rm -rf "$work/t"; cp -a "$work/h" "$work/t"; }

H=$work/h
E=$H/audit/events.jsonl

# --- usage ---
expect 2 "no log yet" -- "$MEDVEIL" audit verify --home "$H"
contains "$work/err" "no audit log" "no log message"
expect 2 "unknown subcommand" -- "$MEDVEIL" audit frobnicate
expect 0 "help" -- "$MEDVEIL" audit --help
contains "$work/out" "check-proof" "help lists check-proof"
expect 0 "subcommand help" -- "$MEDVEIL" audit verify --help
expect 2 "misplaced option" -- "$MEDVEIL" audit log --proof x --home "$H"

# --- a log of 12 events, a signed checkpoint after each ---
expect 0 "append 12" -- "$APPEND" append "$H" 12
expect 0 "verify" -- "$MEDVEIL" audit verify --home "$H"
contains "$work/out" "12 events, 12 signed checkpoints" "verify summary"
[ "$(stat -c %a "$H/audit/signing.key")" = 600 ] && ok || bad "signing.key is not mode 0600"
"$MEDVEIL" audit checkpoint --home "$H" >"$work/old.txt" || bad "checkpoint"
"$MEDVEIL" audit pubkey --home "$H" >"$work/vkey" || bad "pubkey"
"$MEDVEIL" audit pubkey --pem --home "$H" >"$work/pub.pem" || bad "pubkey --pem"
cp "$H/audit/signing.vkey" "$work/old-vkey"

# Independent checks: canonical lines, the root by hashlib, the key id, the Ed25519
# signature by the openssl CLI over the note body.
expect 0 "oracle: canonical JSON lines" -- "$PY" "$ORACLE" canonical "$E"
expect 0 "oracle: root of 12" -- "$PY" "$ORACLE" root "$E" "$work/old.txt"
expect 0 "oracle: key id and signature line" -- "$PY" "$ORACLE" keyid "$work/vkey" "$work/old.txt"
expect 0 "openssl: Ed25519 signature of the checkpoint" -- openssl pkeyutl -verify -pubin -inkey "$work/pub.pem" \
    -rawin -in "$work/old.txt.body" -sigfile "$work/old.txt.sig"
printf 'x' >>"$work/old.txt.body"
expect 1 "openssl: a changed body does not verify" -- openssl pkeyutl -verify -pubin -inkey "$work/pub.pem" \
    -rawin -in "$work/old.txt.body" -sigfile "$work/old.txt.sig"

# --- grow it; proofs made by medveil, checked by medveil offline and by the oracle ---
expect 0 "append 8 more in batches of 3" -- "$APPEND" append "$H" 8 3
"$MEDVEIL" audit checkpoint --home "$H" >"$work/new.txt"
expect 0 "oracle: root of 20" -- "$PY" "$ORACLE" root "$E" "$work/new.txt"
expect 0 "verify extends the old checkpoint" -- "$MEDVEIL" audit verify --checkpoint "$work/old.txt" --home "$H"
for i in 0 7 12 19; do
    "$MEDVEIL" audit prove inclusion $i --home "$H" >"$work/p$i" || bad "prove inclusion $i"
    sed -n "$((i + 1))p" "$E" >"$work/ev$i"
    expect 0 "check-proof inclusion $i" -- "$MEDVEIL" audit check-proof --key "$work/vkey" \
        --checkpoint "$work/new.txt" --proof "$work/p$i" --event "$work/ev$i"
    expect 0 "oracle: inclusion $i" -- "$PY" "$ORACLE" inclusion "$work/p$i" "$E" "$work/new.txt"
done
expect 3 "check-proof: another event" -- "$MEDVEIL" audit check-proof --key "$work/vkey" \
    --checkpoint "$work/new.txt" --proof "$work/p7" --event "$work/ev12"
expect 3 "check-proof: the old checkpoint's size" -- "$MEDVEIL" audit check-proof --key "$work/vkey" \
    --checkpoint "$work/old.txt" --proof "$work/p7"
sed 's/^hash \(.\)/hash A\1/; s/^hash A\(.*\).$/hash A\1/' "$work/p7" >"$work/p7bad"
"$PY" - "$work/p7" "$work/p7bad" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
i = next(n for n, l in enumerate(lines) if l.startswith("hash "))
h = lines[i][5:]
lines[i] = "hash " + ("B" if h[0] == "A" else "A") + h[1:]
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
expect 3 "check-proof: a changed hash" -- "$MEDVEIL" audit check-proof --key "$work/vkey" \
    --checkpoint "$work/new.txt" --proof "$work/p7bad" --event "$work/ev7"
"$MEDVEIL" audit prove inclusion 7 --json --home "$H" >"$work/p7.json"
expect 0 "check-proof reads the JSON form" -- "$MEDVEIL" audit check-proof --key "$work/pub.pem" \
    --checkpoint "$work/new.txt" --proof "$work/p7.json"
"$MEDVEIL" audit prove consistency 12 --home "$H" >"$work/c12"
expect 0 "check-proof consistency 12 -> 20" -- "$MEDVEIL" audit check-proof --key "$work/vkey" \
    --old-checkpoint "$work/old.txt" --checkpoint "$work/new.txt" --proof "$work/c12"
expect 0 "oracle: consistency 12 -> 20" -- "$PY" "$ORACLE" consistency "$work/c12" "$work/old.txt" "$work/new.txt"
"$MEDVEIL" audit checkpoint --size 5 --home "$H" >"$work/c5.txt" || bad "checkpoint --size 5"
"$MEDVEIL" audit prove consistency 5 --home "$H" >"$work/c5p"
expect 0 "check-proof consistency 5 -> 20 (stored checkpoint of size 5)" -- "$MEDVEIL" audit check-proof \
    --key "$work/vkey" --old-checkpoint "$work/c5.txt" --checkpoint "$work/new.txt" --proof "$work/c5p"
expect 0 "oracle: consistency 5 -> 20" -- "$PY" "$ORACLE" consistency "$work/c5p" "$work/c5.txt" "$work/new.txt"
expect 1 "checkpoint --size that was never signed" -- "$MEDVEIL" audit checkpoint --size 999 --home "$H"
expect 3 "check-proof consistency, checkpoints swapped" -- "$MEDVEIL" audit check-proof --key "$work/vkey" \
    --old-checkpoint "$work/new.txt" --checkpoint "$work/old.txt" --proof "$work/c12"

# --- audit log filters against a count made from the file itself ---
"$MEDVEIL" audit log --actor bob --action vault. --json --home "$H" >"$work/bob"
want=$("$PY" -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if (e:=json.loads(l))["actor"]=="bob" and e["action"].startswith("vault.")))' "$E")
[ "$(wc -l <"$work/bob")" -eq "$want" ] && [ "$want" -gt 0 ] && ok || bad "audit log --actor bob --action vault.: $(wc -l <"$work/bob") lines, want $want"
expect 0 "log --since the future" -- "$MEDVEIL" audit log --since 2999-01-01 --home "$H"
[ ! -s "$work/out" ] && ok || bad "log --since 2999 printed events"
expect 2 "log --since garbage" -- "$MEDVEIL" audit log --since yesterday --home "$H"

# --- tampering: each on a copy, verify must exit 3 and name the position ---
T=$work/t
TE=$T/audit/events.jsonl
# (a) one byte of a middle event (still valid JSON)
fresh
"$PY" - "$TE" 7 <<'PY'
import sys
p, i = sys.argv[1], int(sys.argv[2])
lines = open(p, "rb").read().split(b"\n")
lines[i] = lines[i].replace(b'"actor":"b', b'"actor":"c', 1).replace(b'"actor":"a', b'"actor":"b', 1)
open(p, "wb").write(b"\n".join(lines))
PY
expect 3 "one byte changed in event 7" -- "$MEDVEIL" audit verify --home "$T"
contains "$work/err" "position 7" "changed event: position named"
# (b) the same change, with leaves.bin patched to match: the signed checkpoints catch it
"$PY" - "$TE" "$T/audit/leaves.bin" 7 <<'PY'
import hashlib, sys
ev, lv, i = sys.argv[1], sys.argv[2], int(sys.argv[3])
line = open(ev, "rb").read().split(b"\n")[i]
data = bytearray(open(lv, "rb").read())
data[32 * i:32 * i + 32] = hashlib.sha256(b"\0" + line).digest()
open(lv, "wb").write(bytes(data))
PY
expect 3 "changed event 7 and leaves.bin" -- "$MEDVEIL" audit verify --home "$T"
contains "$work/err" "position 7" "changed event and cache: position named"
# (c) the last event deleted
fresh
sed -i '$d' "$TE"
expect 3 "last event deleted" -- "$MEDVEIL" audit verify --home "$T"
contains "$work/err" "position 19" "deleted event: position named"
# (d) truncated in the middle of the last line
fresh
truncate -s -25 "$TE"
expect 3 "truncated" -- "$MEDVEIL" audit verify --home "$T"
contains "$work/err" "position 19" "truncation: position named"
# (e) an event inserted in the middle (seq no longer matches its place)
fresh
sed -i '5p' "$TE"
expect 3 "event duplicated" -- "$MEDVEIL" audit verify --home "$T"
contains "$work/err" "position 5" "inserted event: position named"
# (f) history rewritten by someone holding the signing key: checkpoints and caches redone.
fresh
"$PY" - "$TE" 3 <<'PY'
import sys
p, i = sys.argv[1], int(sys.argv[2])
lines = open(p, "rb").read().split(b"\n")
lines[i] = lines[i].replace(b'"outcome":"success"', b'"outcome":"denied"', 1)
open(p, "wb").write(b"\n".join(lines))
PY
rm -f "$T"/audit/checkpoints.log "$T"/audit/leaves.bin "$T"/audit/nodes.bin "$T"/audit/offsets.bin
"$APPEND" append "$T" 0 && "$MEDVEIL" audit checkpoint --home "$T" >/dev/null || bad "re-signing the rewritten log"
expect 0 "a consistently re-signed log verifies on its own (why witnesses exist)" -- \
    "$MEDVEIL" audit verify --home "$T"
expect 3 "rewritten history, same key: caught by the saved checkpoint" -- \
    "$MEDVEIL" audit verify --checkpoint "$work/old.txt" --home "$T"
contains "$work/err" "rewritten" "rewritten history named"
# (g) history rewritten and re-signed with a fresh key
rm -f "$T"/audit/signing.* "$T"/audit/checkpoints.log
"$APPEND" append "$T" 0 && "$MEDVEIL" audit checkpoint --home "$T" >/dev/null || bad "re-signing with a fresh key"
expect 3 "fresh key: the saved checkpoint is not signed by it" -- \
    "$MEDVEIL" audit verify --checkpoint "$work/old.txt" --home "$T"
expect 3 "fresh key: checked with the key kept outside" -- \
    "$MEDVEIL" audit verify --key "$work/old-vkey" --home "$T"
contains "$work/err" "position" "fresh key: position named"
# (h) a log cut short, with its later checkpoints and caches removed: only the saved
#     checkpoint can tell
fresh
head -n 10 "$TE" >"$TE.new" && mv "$TE.new" "$TE"
"$PY" - "$T/audit/checkpoints.log" 10 <<'PY'
import sys
p, keep = sys.argv[1], int(sys.argv[2])
text = open(p, "rb").read().decode()
notes, cur = [], []
for line in text.splitlines(keepends=True):
    cur.append(line)
    if line.startswith("\u2014 "):
        notes.append("".join(cur)); cur = []
out = [n for n in notes if int(n.split("\n")[1]) <= keep]
open(p, "wb").write("".join(out).encode())
PY
rm -f "$T"/audit/leaves.bin "$T"/audit/nodes.bin "$T"/audit/offsets.bin
expect 0 "cut-short log verifies on its own" -- "$MEDVEIL" audit verify --home "$T"
expect 3 "cut short: caught by --checkpoint" -- "$MEDVEIL" audit verify --checkpoint "$work/old.txt" --home "$T"
contains "$work/err" "position 10" "cut short: position named"
# (i) a stored checkpoint's signature broken
fresh
"$PY" - "$T/audit/checkpoints.log" <<'PY'
import sys
p = sys.argv[1]
t = open(p, "rb").read()
i = t.index(b"\xe2\x80\x94 ")
j = t.index(b"\n", i) - 5
t = t[:j] + (b"A" if t[j:j+1] != b"A" else b"B") + t[j+1:]
open(p, "wb").write(t)
PY
expect 3 "broken checkpoint signature" -- "$MEDVEIL" audit verify --home "$T"
# JSON report
expect 3 "verify --json on a tampered log" -- "$MEDVEIL" audit verify --json --home "$T"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["ok"] is False and "bad_position" in d else 1)' \
    "$work/out" && ok || bad "verify --json: $(cat "$work/out")"

# (j) signing.vkey deleted: the stored checkpoints cannot be checked; with --key they can
fresh
rm -f "$T/audit/signing.vkey"
expect 3 "signing.vkey deleted" -- "$MEDVEIL" audit verify --home "$T"
expect 0 "signing.vkey deleted, key given" -- "$MEDVEIL" audit verify --key "$work/vkey" --home "$T"
# (k) the whole log deleted: a saved checkpoint says there was one
fresh
rm -rf "$T/audit"
expect 3 "log deleted, checkpoint kept" -- "$MEDVEIL" audit verify --checkpoint "$work/old.txt" --home "$T"

# (l) an auditor's copy: only events.jsonl, checkpoints.log and the public key
rm -rf "$work/copy" && mkdir -p "$work/copy/audit"
cp "$E" "$H/audit/checkpoints.log" "$H/audit/signing.vkey" "$work/copy/audit/"
chmod -w "$work/copy/audit" "$work/copy/audit/"*
expect 0 "a read-only copy of the record alone verifies" -- "$MEDVEIL" audit verify --checkpoint "$work/old.txt" \
    --home "$work/copy"
contains "$work/out" "20 events" "the copy has every event"
chmod -R u+w "$work/copy"

# --- crash recovery through the CLI: a torn line is cut at the next writable open ---
fresh
printf '{"action":"vault.get","act' >>"$TE"
expect 3 "torn tail before recovery" -- "$MEDVEIL" audit verify --home "$T"
expect 0 "checkpoint recovers" -- "$MEDVEIL" audit checkpoint --home "$T"
expect 0 "verify after recovery" -- "$MEDVEIL" audit verify --home "$T"
contains "$work/out" "20 events" "nothing acknowledged lost"

# --- two processes appending at once serialize on the lock; nothing is lost or interleaved ---
rm -rf "$work/two"
"$APPEND" append "$work/two" 150 1 &
p1=$!
"$APPEND" append "$work/two" 150 7 &
p2=$!
wait $p1 && wait $p2 || bad "concurrent appenders failed"
expect 0 "two processes: verify" -- "$MEDVEIL" audit verify --home "$work/two"
contains "$work/out" "300 events" "two processes: every event kept"
expect 0 "two processes: oracle canonical" -- "$PY" "$ORACLE" canonical "$work/two/audit/events.jsonl"

# --- a process killed while appending: everything it was told is durable is there ---
rm -rf "$work/kill"
MV_AUDIT_PRINT_ACK=1 "$APPEND" append "$work/kill" 1000000 3 >"$work/acks" &
pk=$!
for _ in $(seq 50); do [ -s "$work/acks" ] && [ "$(wc -l <"$work/acks")" -gt 20 ] && break; sleep 0.1; done
kill -9 $pk 2>/dev/null
wait $pk 2>/dev/null
acked=$(tail -n 1 "$work/acks" | cut -d' ' -f2)
expect 0 "after kill -9: checkpoint (recovers)" -- "$MEDVEIL" audit checkpoint --home "$work/kill"
expect 0 "after kill -9: verify" -- "$MEDVEIL" audit verify --home "$work/kill"
have=$(sed -n 's/.*verified: \([0-9]*\) events.*/\1/p' "$work/out")
[ -n "$acked" ] && [ -n "$have" ] && [ "$have" -ge "$acked" ] && ok ||
    bad "after kill -9: $have events, but $acked were acknowledged"

echo "t_audit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
