#!/usr/bin/env bash
# medveil vault end to end (issue 5), on ../shared/corpus/dev when present, else on synthetic
# files from mksynth (a loud SKIP line says so):
#  - init, a wrong passphrase (exit 3), usage errors (exit 2);
#  - put the files: every acknowledged object comes back from get byte for byte (cmp), mode
#    0600; non-DICOM files refused; the same file again is "already stored";
#  - ls and ls --json agree with what put acknowledged; --patient goes through the blind index;
#  - no PatientName or PatientID value of the stored files (read with pydicom, an independent
#    parser) appears in any file under HOME, -wal and -shm included;
#  - rm, forget-patient (its objects are gone, the rest still reads), rotate, rotate --retire,
#    rotate to a new passphrase (the old one is refused);
#  - fsck: clean is 0; one flipped byte in a blob, a display value changed in the index, a raw
#    byte flipped inside the index file, an orphan blob: each exit 3 naming the object;
#  - backup and restore into an empty home: identical ls (text and JSON) and objects; a
#    changed archive byte is refused with exit 3 and leaves the home empty.
set -u
MEDVEIL=${MEDVEIL:?MEDVEIL must name the medveil binary}
MKSYNTH=${MKSYNTH:-}
CORPUS=${MV_CORPUS:-}
PY=${MV_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
status_is() { local want=$1 what=$2; shift 2; "$@" >"$work/out" 2>"$work/err"; local rc=$?; if [ "$rc" -eq "$want" ]; then ok; else bad "$what: exit $rc, expected $want"; sed 's/^/    /' "$work/err" | head -5; fi; }

H="$work/home"
printf 'a passphrase for the test vault\n' > "$work/pass"
printf 'not the passphrase\n' > "$work/wrong"
chmod 600 "$work/pass" "$work/wrong"
V() { "$MEDVEIL" vault "$@" --home "$H" --passphrase-file "$work/pass"; }

# ---- inputs ---------------------------------------------------------------------------
in="$work/in"
if [ -n "$CORPUS" ] && [ -d "$CORPUS" ]; then
    in=$CORPUS
    echo "vault test on the corpus $CORPUS"
elif [ -n "$MKSYNTH" ]; then
    echo "SKIP: corpus not found at '${CORPUS}'; the vault test runs on synthetic files from mksynth instead"
    "$MKSYNTH" "$in" --count 12 --seed 5 >/dev/null || { echo "mksynth failed"; exit 1; }
    printf 'not dicom\n' > "$in/readme.txt"
else
    echo "SKIP: neither corpus nor mksynth; nothing to test"
    exit 77
fi

# ---- init and usage -----------------------------------------------------------------------
status_is 2 "ls before init is a configuration error" V ls
status_is 0 "init" "$MEDVEIL" vault init --home "$H" --passphrase-file "$work/pass" --argon2-t 1 --argon2-m 1024
status_is 2 "a second init is refused" V init
check "home folders are private" test "$(stat -c %a "$H/vault")" = 700
status_is 3 "a wrong passphrase is exit 3" "$MEDVEIL" vault ls --home "$H" --passphrase-file "$work/wrong"
status_is 2 "get without -o is a usage error" V get 1.2.3
status_is 2 "an unknown subcommand is a usage error" V frobnicate
status_is 2 "--retire belongs to rotate" V ls --retire
MEDVEIL_PASSPHRASE=$(cat "$work/pass") "$MEDVEIL" vault ls --home "$H" >/dev/null 2>&1
check "the passphrase can come from \$MEDVEIL_PASSPHRASE" test $? -eq 0
"$MEDVEIL" vault ls --home "$H" </dev/null >/dev/null 2>"$work/err"
check "no passphrase source at all is exit 2" test $? -eq 2

# ---- put, ls, get -----------------------------------------------------------------------
printf 'not dicom, just text\n' > "$work/readme.txt"
V put "$in" "$work/readme.txt" >"$work/put.out" 2>"$work/put.err"
rc=$?
check "put of inputs with non-DICOM files exits 1 (exit $rc)" test $rc -eq 1
n_acked=$(grep -c '^stored ' "$work/put.out")
check "put acknowledged objects ($n_acked)" test "$n_acked" -gt 0
check "non-DICOM files are refused with a clear error" grep -q "not a DICOM file" "$work/put.err"
first_path=$(awk '/^stored /{ $1=$2=$3=""; sub(/^ +/, ""); print; exit }' "$work/put.out")
status_is 0 "the same file again is not an error" V put "$first_path"
check "... and is reported as already stored" grep -q "already stored with the same bytes" "$work/err"

V ls --json >"$work/ls.json" 2>/dev/null
check "ls --json lists exactly the acknowledged objects" "$PY" - "$work/ls.json" "$work/put.out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
listed = {i["sop_instance_uid"] for p in doc["patients"] for s in p["studies"] for se in s["series"] for i in se["instances"]}
acked = {l.split()[2] for l in open(sys.argv[2]) if l.startswith("stored ")}
assert listed == acked, (len(listed), len(acked), list(listed ^ acked)[:3])
assert doc["objects"] == len(acked)
PY
V ls >"$work/ls.txt" 2>/dev/null
check "ls prints the totals" grep -q "^[0-9]* patients\?, .* $n_acked objects\?$" "$work/ls.txt"

status_is 0 "get --all" V get --all -o "$work/all"
check "every acknowledged object comes back byte for byte" bash -c '
    while read -r _ oid uid path; do cmp -s "$path" "$1/$uid.dcm" || { echo "differs: $uid"; exit 1; }; done < <(grep "^stored " "$2")' \
    _ "$work/all" "$work/put.out"
read -r _ oid1 uid1 path1 < <(grep '^stored ' "$work/put.out" | tail -n 1)
status_is 0 "get one object to a file" V get "$uid1" -o "$work/one.dcm"
check "get writes the exact bytes" cmp -s "$path1" "$work/one.dcm"
check "get writes mode 0600" test "$(stat -c %a "$work/one.dcm")" = 600
status_is 1 "get of an unknown UID exits 1" V get 1.2.3.4.5.6.7.404 -o "$work/none.dcm"
check "nothing is written for an unknown UID" test ! -e "$work/none.dcm"
pid=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(next(p["patient_id"] for p in d["patients"] if p["patient_id"].strip()))' "$work/ls.json")
V ls --patient "$pid" --json >"$work/lsp.json" 2>/dev/null
check "ls --patient finds the patient through the blind index" "$PY" -c '
import json,sys; d=json.load(open(sys.argv[1])); assert d["patients"] and all(p["patient_id"].strip()==sys.argv[2].strip() for p in d["patients"])' "$work/lsp.json" "$pid"

read -r pname study_uid < <("$PY" -c '
import json,sys; d=json.load(open(sys.argv[1]))
p=next(p for p in d["patients"] if len(p["name"].strip()) > 3 and " " not in p["name"].strip())
print(p["name"].strip(), p["studies"][0]["study_instance_uid"])' "$work/ls.json")
V ls --name "$(tr '[:upper:]' '[:lower:]' <<<"$pname")" --json >"$work/lsn.json" 2>/dev/null
check "ls --name matches names case-insensitively through the blind index" "$PY" -c '
import json,sys; d=json.load(open(sys.argv[1]))
assert d["patients"] and all(p["name"].split("=")[0].upper().strip("^ ")==sys.argv[2].split("=")[0].upper().strip("^ ") for p in d["patients"])' \
    "$work/lsn.json" "$pname"
V ls --study "$study_uid" --json >"$work/lss.json" 2>/dev/null
check "ls --study lists that study only" "$PY" -c '
import json,sys; d=json.load(open(sys.argv[1]))
st=[s["study_instance_uid"] for p in d["patients"] for s in p["studies"]]
assert st and set(st)=={sys.argv[2]}, st' "$work/lss.json" "$study_uid"
status_is 1 "ls --patient of an unknown ID exits 1" V ls --patient "no-such-patient-0000"

# ---- nothing identifying in the home ------------------------------------------------------
"$PY" - "$work/put.out" >"$work/phi.txt" <<'PY'
import sys
try:
    import pydicom
except ImportError:
    sys.exit(0)
values = set()
for line in open(sys.argv[1]):
    if not line.startswith("stored "):
        continue
    path = line.rstrip("\n").split(" ", 3)[3]
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:
        continue
    for kw in ("PatientName", "PatientID"):
        v = ds.get(kw)
        if v is None:
            continue
        for text in {str(v), str(v).strip()}:
            # Short values (like "1" or "ANON") would match random bytes of ciphertext.
            if len(text) >= 6:
                values.add(text)
for v in sorted(values):
    print(v)
PY
n_phi=$(wc -l < "$work/phi.txt")
check "pydicom extracted PatientName/PatientID values to look for ($n_phi)" test "$n_phi" -gt 0
# Keep a -wal around: a reader holding the database open while we grep.
"$PY" -c 'import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1]); c.execute("select count(*) from instance").fetchall(); time.sleep(3)' "$H/vault/index.sqlite" &
holder=$!
sleep 0.5
leaks=$(grep -rlaF -f "$work/phi.txt" "$H" 2>/dev/null)
check "no PatientName or PatientID value in any file under HOME ($(find "$H" -type f | wc -l) files, $(ls "$H/vault" | tr '\n' ' '))" test -z "$leaks"
[ -n "$leaks" ] && echo "    leaking files: $leaks"
check "the grep does find a value that is there (control)" bash -c 'grep -rlaq MVVAULT "$1"' _ "$H"
check "no file under HOME is a DICOM file" bash -c '! find "$1" -type f -exec sh -c "head -c 132 \"\$1\" | tail -c 4 | grep -q DICM && echo \$1" _ {} \; | grep -q .' _ "$H"
wait $holder 2>/dev/null

# ---- fsck and damage ----------------------------------------------------------------------
status_is 0 "fsck of a clean vault" V fsck
blob="$H/vault/objects/${oid1:0:2}/$oid1"
size=$(stat -c %s "$blob")
"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^1]))' "$blob" $((size / 2))
status_is 3 "fsck finds one flipped byte in a blob (exit 3)" V fsck
check "... and names the object" grep -q "$oid1" "$work/err"
status_is 3 "get of the damaged object is exit 3" V get "$uid1" -o "$work/damaged.dcm"
check "... and writes nothing" test ! -e "$work/damaged.dcm"
"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^1]))' "$blob" $((size / 2))
status_is 0 "fsck is clean again once the byte is back" V fsck
cp "$blob" "$H/vault/objects/${oid1:0:2}/0123456789abcdef0123456789abcdef"
status_is 3 "fsck finds an orphan blob" V fsck
check "... and names it" grep -q "0123456789abcdef0123456789abcdef" "$work/err"
rm -f "$H/vault/objects/${oid1:0:2}/0123456789abcdef0123456789abcdef"
cp "$H/vault/index.sqlite" "$work/index.bak"
"$PY" - "$H/vault/index.sqlite" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("update study set display = substr(display, 1, 30) || x'ff' || substr(display, 32) where id = (select min(id) from study)")
c.commit()
PY
status_is 3 "fsck finds a display value changed in the index (SQL)" V fsck
cp "$work/index.bak" "$H/vault/index.sqlite"
# A raw byte flip inside the index file, in a sealed display value (located from its bytes).
"$PY" - "$H/vault/index.sqlite" <<'PY'
import sqlite3, sys
path = sys.argv[1]
c = sqlite3.connect(path)
blob = c.execute("select display from instance order by id limit 1").fetchone()[0]
c.close()
data = bytearray(open(path, "rb").read())
at = data.find(blob)
assert at > 0, "display value not found in the file"
data[at + len(blob) // 2] ^= 0x04
open(path, "wb").write(data)
PY
status_is 3 "fsck finds a byte flipped in the index file" V fsck
cp "$work/index.bak" "$H/vault/index.sqlite"
status_is 0 "fsck is clean with the index restored" V fsck

# ---- backup and restore -------------------------------------------------------------------
status_is 0 "backup" V backup "$work/vault.mvb"
check "the archive is mode 0600" test "$(stat -c %a "$work/vault.mvb")" = 600
check "the archive holds no PatientName or PatientID value" bash -c '! grep -qaF -f "$1" "$2"' _ "$work/phi.txt" "$work/vault.mvb"
status_is 0 "restore --verify checks an archive without restoring it" \
    "$MEDVEIL" vault restore --verify "$work/vault.mvb" --home "$work/nohome" --passphrase-file "$work/pass"
check "... and writes no home" test ! -e "$work/nohome"
H2="$work/home2"
status_is 0 "restore into an empty home" "$MEDVEIL" vault restore "$work/vault.mvb" --home "$H2" --passphrase-file "$work/pass"
status_is 2 "restore into a home that has a vault is refused" "$MEDVEIL" vault restore "$work/vault.mvb" --home "$H2" --passphrase-file "$work/pass"
"$MEDVEIL" vault ls --home "$H2" --passphrase-file "$work/pass" >"$work/ls2.txt" 2>/dev/null
"$MEDVEIL" vault ls --json --home "$H2" --passphrase-file "$work/pass" >"$work/ls2.json" 2>/dev/null
V ls --json >"$work/ls1.json" 2>/dev/null
check "restored ls is identical (text)" cmp -s "$work/ls.txt" "$work/ls2.txt"
check "restored ls is identical (JSON)" cmp -s "$work/ls1.json" "$work/ls2.json"
status_is 0 "get --all from the restored home" "$MEDVEIL" vault get --all -o "$work/all2" --home "$H2" --passphrase-file "$work/pass"
check "restored objects are identical" diff -r -q "$work/all" "$work/all2"
status_is 0 "fsck of the restored home" "$MEDVEIL" vault fsck --home "$H2" --passphrase-file "$work/pass"
status_is 3 "restore with a wrong passphrase is exit 3" "$MEDVEIL" vault restore "$work/vault.mvb" --home "$work/home3" --passphrase-file "$work/wrong"
check "... and leaves the home without keyring or vault" test ! -e "$work/home3/keyring" -a ! -e "$work/home3/vault"
cp "$work/vault.mvb" "$work/bad.mvb"
asize=$(stat -c %s "$work/bad.mvb")
"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^0x10]))' "$work/bad.mvb" $((asize * 2 / 3))
status_is 3 "restore of an archive with one changed byte is exit 3" "$MEDVEIL" vault restore "$work/bad.mvb" --home "$work/home4" --passphrase-file "$work/pass"
check "... and leaves the home without keyring or vault" test ! -e "$work/home4/keyring" -a ! -e "$work/home4/vault"
status_is 3 "restore --verify of that archive is exit 3 too" \
    "$MEDVEIL" vault restore --verify "$work/bad.mvb" --passphrase-file "$work/pass"

# ---- rm, forget-patient, rotate -------------------------------------------------------------
read -r _ oid_rm uid_rm path_rm < <(grep '^stored ' "$work/put.out" | head -n 1)
status_is 0 "rm" V rm "$uid_rm"
check "rm says which object it destroyed" grep -q "removed object $oid_rm" "$work/out"
check "rm removed the blob" test ! -e "$H/vault/objects/${oid_rm:0:2}/$oid_rm"
status_is 1 "get after rm exits 1" V get "$uid_rm" -o "$work/rm.dcm"
status_is 1 "rm of an unknown UID exits 1" V rm "$uid_rm"

"$PY" - "$work/ls.json" "$pid" >"$work/forget.expect" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for p in d["patients"]:
    if p["patient_id"].strip() == sys.argv[2].strip():
        for s in p["studies"]:
            for se in s["series"]:
                for i in se["instances"]:
                    print(i["sop_instance_uid"], i["object"])
PY
status_is 0 "forget-patient" V forget-patient "$pid"
cp "$work/out" "$work/forget.out"
check "forget-patient says what it destroyed" grep -q "^destroyed [0-9]* patient keys\?, " "$work/forget.out"
check "forget-patient lists every object of the patient" bash -c '
    while read -r uid oid; do [ "$oid" = "'"$oid_rm"'" ] && continue; grep -q "^object $oid$" "$1" || exit 1; done < "$2"' _ "$work/forget.out" "$work/forget.expect"
read -r fuid foid < <(grep -v " $oid_rm\$" "$work/forget.expect" | head -n 1)
if [ -n "${fuid:-}" ]; then
    status_is 1 "an object of the forgotten patient is gone" V get "$fuid" -o "$work/f.dcm"
    check "its blob is gone" test ! -e "$H/vault/objects/${foid:0:2}/$foid"
fi
status_is 1 "forget-patient of an unknown ID exits 1" V forget-patient "no-such-patient-id"

status_is 0 "rotate" V rotate
check "rotate reports the new KEK version" grep -q "KEK version 1 -> 2" "$work/out"
status_is 0 "rotate --retire" V rotate --retire
check "rotate --retire destroyed the older versions" grep -q "retired and destroyed 2 older KEK versions" "$work/out"
V get --all -o "$work/all3" >/dev/null 2>&1
check "after rotation and retirement every remaining object reads back byte for byte" bash -c '
    n=0; while read -r _ oid uid path; do [ -e "$1/$uid.dcm" ] || continue; n=$((n+1)); cmp -s "$path" "$1/$uid.dcm" || exit 1; done < <(grep "^stored " "$2"); [ $n -gt 0 ]' \
    _ "$work/all3" "$work/put.out"
status_is 0 "fsck after rm, forget-patient and rotation" V fsck
printf 'the next passphrase of the test vault\n' > "$work/pass2"
chmod 600 "$work/pass2"
status_is 0 "rotate to a new passphrase" V rotate --new-passphrase-file "$work/pass2"
check "... says so" grep -q "opens with the new passphrase only" "$work/out"
status_is 3 "the old passphrase opens nothing any more" V ls
status_is 0 "the new one opens the vault" "$MEDVEIL" vault fsck --home "$H" --passphrase-file "$work/pass2"
read -r _ _ uid_last path_last < <(grep '^stored ' "$work/put.out" | tail -n 1)
status_is 0 "get with the new passphrase" "$MEDVEIL" vault get "$uid_last" -o "$work/last.dcm" --home "$H" --passphrase-file "$work/pass2"
check "... gives the original bytes" cmp -s "$path_last" "$work/last.dcm"

echo "vault: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
