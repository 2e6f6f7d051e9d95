#!/usr/bin/env bash
# Reversible de-identification on ../shared/corpus/dev (206 files written by others): deid
# --encrypt-originals-to, then reidentify, judged by pydicom (tests/reversible_compare.py: every
# attribute de-identification changed is back, and the whole dataset), dcmtk, dciodvfy (no new
# error from encryption or re-identification), medveil verify (a reversible run leaks nothing)
# and gdcmanon -d (GDCM restores the same originals). Says SKIPPED loudly without the corpus.
# The synthetic cases, GDCM in both directions and the refusals are tests/t_reversible.sh.
set -u
MEDVEIL=${MEDVEIL:?MEDVEIL must name the medveil binary}
CORPUS=${MV_CORPUS:-}
PY=${MV_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
COMPARE="$HERE/reversible_compare.py"
if [ -z "$CORPUS" ] || [ ! -d "$CORPUS" ]; then
    echo "SKIPPED: corpus not found at '${CORPUS}'; corpus round trip not run"
    exit 77
fi
if ! command -v openssl >/dev/null; then echo "SKIPPED: no openssl CLI to make test keys"; exit 77; fi
if ! "$PY" -c 'import pydicom' 2>/dev/null; then echo "SKIPPED: no pydicom for the independent check"; exit 77; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MEDVEIL_HOME="$work/home"
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
compare() { "$PY" -W ignore "$COMPARE" "$@" > "$work/cmp.txt" 2>&1; local rc=$?; tail -1 "$work/cmp.txt"; grep -m5 '^FAIL' "$work/cmp.txt"; return $rc; }
no_temps() { ! find "$1" -name '*.mvtmp*' 2>/dev/null | grep -q .; }

cd "$work" || exit 1
openssl req -x509 -nodes -newkey rsa:2048 -keyout a.key -out a.crt -days 2 -subj "/CN=medveil test a" 2>/dev/null
chmod 600 a.key
"$MEDVEIL" keygen -o project.key >/dev/null
check "test key made" test -s a.key -a -s a.crt

root=$(cd "$CORPUS/.." && pwd)
"$MEDVEIL" deid --quiet --key project.key --encrypt-originals-to a.crt --report c1.json "$CORPUS" -o c1 2>/dev/null
check "corpus: quarantined are the malformed files, the burned-in one, and GH133 (encapsulated icon)" \
    "$PY" - c1.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
q = sorted(f["input"].rsplit("/", 1)[1] for f in r["files"] if f["status"] == "quarantined")
want = ["3gb-bulk-data-truncated", "FreezePattern.dcm", "GH133.dcm", "GH1728.dcm", "GH179B.dcm", "GH364.dcm", "GH626.dcm"]
assert q == want, q
PY
"$MEDVEIL" reidentify --quiet --private-key a.key c1 -o cr 2>err.txt
check "corpus: every output re-identified (0)" test $? -eq 0
"$MEDVEIL" convert -q -n -o plain "$CORPUS" 2>/dev/null
compare "$root" c1 cr/c1 --plain plain
check "pydicom: corpus round trip restores every changed attribute" test $? -eq 0
check "pydicom: ... in at least 190 files" test "$(tail -1 cmp.txt | cut -d" " -f1)" -ge 190
grep '^note' cmp.txt | sed 's/^/  /'
# dcmtk: one run over all outputs; file by file only if that one fails.
check "corpus: dcmtk reads every re-identified file whose original it reads" bash -c '
    find cr/c1 -type f -print0 | xargs -0 dcmdump -q >/dev/null 2>&1 && exit 0
    while IFS= read -r -d "" f; do
        rel=${f#cr/c1/}
        dcmdump -q "$1/$rel" >/dev/null 2>&1 || continue
        dcmdump -q "$f" >/dev/null 2>&1 || { echo "dcmtk cannot read $f"; exit 1; }
    done < <(find cr/c1 -type f -print0)' _ "$root"
# medveil verify judges a reversible run like any other: the encrypted originals must leak
# nothing it can see (it pairs files through the report of a hierarchy run).
"$MEDVEIL" deid --quiet --key project.key --encrypt-originals-to a.crt --layout hierarchy --report ch.json \
    "$CORPUS" -o ch 2>/dev/null
"$MEDVEIL" verify "$CORPUS" ch --report ch.json > verify.txt 2>&1
check "medveil verify: a reversible run passes every check ($(tail -1 verify.txt))" test $? -eq 0
if command -v dciodvfy >/dev/null; then
    # Every fourth output: the Encrypted Attributes Sequence adds no error to the same run
    # without it, and re-identification none that a plain rewrite of the original lacks.
    "$MEDVEIL" deid --quiet --key project.key "$CORPUS" -o c0 2>/dev/null
    # The Media Storage SOP Instance UID follows the restored SOP Instance UID (PS3.10 7.1),
    # so an error about the one (an input whose meta and dataset disagree) is the other's.
    errs() { dciodvfy "$1" 2>&1 | grep -aE '^Error' | sed -E 's/[0-9]+([.][0-9]+){2,}/UID/g' |
        sed -e 's/(0x0002,0x0003)/(0x0008,0x0018)/' -e 's/Media Storage SOP Instance UID/SOP Instance UID/' | sort -u; }
    n_new=0 n_seen=0
    while IFS= read -r rel; do
        case $rel in *DICOMDIR*|*deflate*|*Deflate*) continue ;; esac
        n_seen=$((n_seen + 1))
        added=$(comm -13 <(errs "c0/$rel") <(errs "c1/$rel"))
        [ -z "$added" ] || { bad "dciodvfy: encryption adds to $rel: $(head -1 <<<"$added")"; n_new=$((n_new + 1)); }
        added=$(comm -13 <(errs "plain/$rel") <(errs "cr/c1/$rel"))
        [ -z "$added" ] || { bad "dciodvfy: re-identification adds to $rel: $(head -1 <<<"$added")"; n_new=$((n_new + 1)); }
    done < <(cd c1 && find . -type f | sed 's|^./||' | sort | awk 'NR % 4 == 1')
    check "dciodvfy: no new error in $n_seen corpus files (encryption, re-identification)" test $n_new -eq 0
fi
if command -v gdcmanon >/dev/null; then
    n_fail=0
    for f in $(cd c1 && find . -type f -name '*.dcm' | sed 's|^./||' | grep -v ' ' | sort | head -8); do
        mkdir -p "cg/$(dirname "$f")"
        gdcmanon -d -k a.key -i "c1/$f" -o "cg/$f" >/dev/null 2>&1 || { echo "gdcmanon -d fails on $f"; n_fail=$((n_fail + 1)); }
    done
    check "gdcmanon -d decrypts corpus outputs (8 files)" test $n_fail -eq 0
    check "pydicom: ... and restores their originals" compare "$root" c1 cg --extra "(0012,0064)" --extra "(0028,0303)" --plain plain
fi

check "no temporary file is left anywhere" no_temps "$work"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
