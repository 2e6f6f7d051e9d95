#!/usr/bin/env bash
# The command line as a user meets it: help texts, usage errors (exit 2), unreadable and
# malformed inputs (exit 1, one clear line naming file, tag and offset, never a signal),
# a folder of mixed files, and outputs that are complete or absent.
set -u
MEDVEIL=${MEDVEIL:?MEDVEIL must name the medveil binary}
CORPUS=${MV_CORPUS:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
# expect STATUS DESCRIPTION -- COMMAND...: runs COMMAND, checks its exit status.
expect() {
    local want=$1 what=$2
    shift 3
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [ $rc -eq "$want" ]; then ok; else bad "$what: exit $rc, want $want; stderr: $(head -c 300 "$work/err")"; fi
}
contains() { if grep -q -- "$2" "$1"; then ok; else bad "$3: '$2' not in $(basename "$1"): $(head -c 300 "$1")"; fi; }

# A small valid file, made with the tool itself from nothing but the editing API would be
# circular; write one by hand: preamble, DICM, meta, and a dataset (PS3.10 7.1).
python3=/usr/bin/python3
mk() {
    "$python3" - "$1" <<'PY'
import struct, sys
def el(tag, vr, val):
    g, e = tag
    if len(val) % 2: val += b"\0" if vr == b"UI" else b" "
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHI", g, e, vr, 0, len(val)) + val
    return struct.pack("<HH2sH", g, e, vr, len(val)) + val
meta = el((2,1), b"OB", b"\0\1") + el((2,2), b"UI", b"1.2.840.10008.5.1.4.1.1.7") + \
       el((2,3), b"UI", b"2.25.1") + el((2,0x10), b"UI", b"1.2.840.10008.1.2.1") + \
       el((2,0x12), b"UI", b"2.25.2")
meta = el((2,0), b"UL", struct.pack("<I", len(meta))) + meta
ds = el((8,0x16), b"UI", b"1.2.840.10008.5.1.4.1.1.7") + el((8,0x18), b"UI", b"2.25.1") + \
     el((0x10,0x10), b"PN", b"TEST^CLI") + el((0x10,0x20), b"LO", b"CLI-1")
open(sys.argv[1], "wb").write(b"\0" * 128 + b"DICM" + meta + ds)
PY
}
mk "$work/good.dcm"

expect 0 "--version" -- "$MEDVEIL" --version
contains "$work/out" "medveil " "--version prints the name and version"
expect 0 "--help" -- "$MEDVEIL" --help
contains "$work/out" "dump" "--help lists dump"
contains "$work/out" "convert" "--help lists convert"
expect 0 "help dump" -- "$MEDVEIL" help dump
contains "$work/out" "--json" "help dump documents --json"
expect 0 "dump --help" -- "$MEDVEIL" dump --help
expect 0 "help convert" -- "$MEDVEIL" help convert
expect 2 "no command" -- "$MEDVEIL"
expect 2 "unknown command" -- "$MEDVEIL" frobnicate
# Tesseract (and the fifty libraries it needs) is loaded only when OCR runs: linking it made
# every command start about four times slower.
if command -v ldd >/dev/null 2>&1; then
    if ldd "$MEDVEIL" | grep -q -E 'libtesseract|liblept'; then
        bad "medveil is linked with Tesseract or Leptonica: $(ldd "$MEDVEIL" | grep -E 'tesseract|lept')"
    else
        ok
    fi
fi
contains "$work/err" "not a command" "unknown command message"
expect 2 "help for unknown command" -- "$MEDVEIL" help frobnicate
expect 2 "unknown option" -- "$MEDVEIL" dump --bogus "$work/good.dcm"
contains "$work/err" "unknown option '--bogus'" "unknown option is named"
expect 2 "dump without files" -- "$MEDVEIL" dump
expect 2 "bad --width" -- "$MEDVEIL" dump --width x "$work/good.dcm"
expect 2 "convert with one argument" -- "$MEDVEIL" convert "$work/good.dcm"
expect 2 "convert bad deflate level" -- "$MEDVEIL" convert --deflate=12 "$work/good.dcm" "$work/x.dcm"

expect 0 "dump a good file" -- "$MEDVEIL" dump "$work/good.dcm"
contains "$work/out" "(0010,0010) PN \[TEST^CLI\]" "dump shows the patient name element"
contains "$work/out" "PatientName" "dump shows keywords"
expect 0 "dump --json" -- "$MEDVEIL" dump --json "$work/good.dcm"
if "$python3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["00100010"]["Value"][0]["Alphabetic"]=="TEST^CLI"' "$work/out"; then ok; else bad "dump --json is not the expected DICOM JSON"; fi

expect 1 "missing file" -- "$MEDVEIL" dump "$work/nope.dcm"
contains "$work/err" "nope.dcm" "missing file is named"
printf 'hello, not dicom at all\n' > "$work/text.txt"
expect 1 "a text file" -- "$MEDVEIL" dump "$work/text.txt"
contains "$work/err" "text.txt" "the text file is named"
: > "$work/empty.dcm"
expect 1 "an empty file" -- "$MEDVEIL" dump "$work/empty.dcm"
contains "$work/err" "empty" "empty file is called empty"
# Truncated in the middle of the patient's name: the error names the tag and the offset.
size=$(stat -c %s "$work/good.dcm")
head -c $((size - 18)) "$work/good.dcm" > "$work/cut.dcm"
expect 1 "a truncated file" -- "$MEDVEIL" dump "$work/cut.dcm"
contains "$work/err" "cut.dcm: tag (0010,0010) at offset" "truncation names file, tag and offset"
if grep -q "TEST" "$work/err"; then bad "an error message shows an element value"; else ok; fi

# A folder of mixed files: the good one is dumped, the bad ones named, exit 1.
mkdir -p "$work/mixed/sub"
cp "$work/good.dcm" "$work/mixed/sub/a.dcm"
cp "$work/text.txt" "$work/cut.dcm" "$work/mixed/"
expect 1 "a folder of mixed files" -- "$MEDVEIL" dump "$work/mixed"
contains "$work/out" "TEST^CLI" "the good file in the folder is dumped"
contains "$work/err" "text.txt" "the bad file in the folder is named"
expect 1 "json of a folder" -- "$MEDVEIL" dump --json "$work/mixed"
if "$python3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert isinstance(d,list) and len(d)==1' "$work/out"; then ok; else bad "dump --json of a folder is not a JSON array of the readable files"; fi

# convert: outputs are complete or absent; no temporary files are left.
expect 0 "convert" -- "$MEDVEIL" convert "$work/good.dcm" "$work/copy.dcm"
if cmp -s "$work/good.dcm" "$work/copy.dcm"; then ok; else bad "an unchanged canonical file is not copied byte for byte"; fi
expect 1 "convert of a truncated file" -- "$MEDVEIL" convert "$work/cut.dcm" "$work/cutcopy.dcm"
[ -e "$work/cutcopy.dcm" ] && bad "a failed convert left an output" || ok
expect 1 "convert into a missing folder" -- "$MEDVEIL" convert "$work/good.dcm" "$work/no/such/dir/x.dcm"
expect 0 "convert with edits" -- "$MEDVEIL" convert --set PatientName=EDITED^NAME --remove PatientID "$work/good.dcm" "$work/edited.dcm"
"$MEDVEIL" dump "$work/edited.dcm" > "$work/out"
contains "$work/out" "EDITED^NAME" "--set changed the name"
if grep -q "(0010,0020)" "$work/out"; then bad "--remove left the element"; else ok; fi
expect 1 "remove of an absent element" -- "$MEDVEIL" convert --remove 0010,1040 "$work/good.dcm" "$work/x.dcm"
expect 2 "a bad tag path" -- "$MEDVEIL" convert --set 'NoSuchKeyword=1' "$work/good.dcm" "$work/x.dcm"
expect 1 "convert a folder" -- "$MEDVEIL" convert -q -o "$work/outdir" "$work/mixed"
[ -f "$work/outdir/mixed/sub/a.dcm" ] && ok || bad "convert -o did not mirror the folder"
[ -e "$work/outdir/mixed/text.txt" ] && bad "convert -o wrote an unreadable input" || ok
if find "$work" -name '*.mvtmp-*' | grep -q .; then bad "temporary files left behind"; else ok; fi

# PS3.10 7.1: an edited SOP Instance UID is carried into the meta information.
expect 0 "convert --set SOPInstanceUID" -- "$MEDVEIL" convert --set SOPInstanceUID=2.25.99 "$work/good.dcm" "$work/uid.dcm"
"$MEDVEIL" dump "$work/uid.dcm" > "$work/out"
contains "$work/out" "(0002,0003) UI \[2.25.99\]" "the meta Media Storage SOP Instance UID follows the edit"
# An output folder inside the input folder is not read back as input.
mkdir -p "$work/nest"
cp "$work/good.dcm" "$work/nest/"
expect 0 "convert into a folder inside the input" -- "$MEDVEIL" convert -q -o "$work/nest/out" "$work/nest"
n=$(find "$work/nest/out" -type f | wc -l)
[ "$n" -eq 1 ] && ok || bad "convert -o inside its input wrote $n files, want 1"
expect 0 "convert -o creates missing parents" -- "$MEDVEIL" convert -q -o "$work/a/b/c" "$work/good.dcm"
[ -f "$work/a/b/c/good.dcm" ] && ok || bad "convert -o a/b/c did not create the folders"
expect 2 "--set without '='" -- "$MEDVEIL" convert --set DOE^JOHN "$work/good.dcm" "$work/x.dcm"
if grep -q "DOE" "$work/err"; then bad "a usage error echoed a value"; else ok; fi

# The 100 KB file that declares 3 GB: a clean error in well under a second, little memory.
if [ -n "$CORPUS" ] && [ -d "$CORPUS" ]; then
    f=$(find "$CORPUS" -name 3gb-bulk-data-truncated | head -1)
    if [ -n "$f" ]; then
        /usr/bin/time -f '%e %M' -o "$work/time" "$MEDVEIL" dump "$f" >/dev/null 2>"$work/err"
        rc=$?
        read -r secs kb < <(tail -1 "$work/time")
        [ $rc -eq 1 ] && ok || bad "3gb-bulk-data-truncated: exit $rc, want 1"
        contains "$work/err" "(7FE0,0010) at offset" "3 GB declaration names the pixel data tag and offset"
        awk -v s="$secs" 'BEGIN{exit !(s < 1.0)}' && ok || bad "3 GB declaration took $secs s"
        [ "$kb" -lt 65536 ] && ok || bad "3 GB declaration used $kb KB"
    fi
else
    echo "SKIPPED: corpus not found; the 3 GB declaration case was not run"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
