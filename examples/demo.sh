#!/usr/bin/env bash
# The `make demo` walk-through: generates synthetic DICOM files with mksynth, shows the codec
# (dump as text and JSON, lossless conversion, a clear error for a broken file), then
# de-identifies the files under a project key, compares a file before and after, shows the
# burned-in ultrasound going to quarantine, checks the run with `medveil verify`, and
# reruns it to show that nothing changes.
#
# Usage: bash examples/demo.sh [BUILD_DIR]     BUILD_DIR holds medveil and mksynth (default: build)
#
# Works from any folder: BUILD_DIR is taken relative to the current folder, else to the
# repository root. Everything goes to examples/synthetic/ (gitignored, emptied on every run):
# the files, demo.key, in/ (a copy of the files to release), deid/ (the outputs),
# deid-quarantine/ and deid-report.json.
# Exit status: 0 every step behaved as expected; 1 a step failed; 2 usage or missing build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

usage() { sed -n '8,14s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    usage
    exit 0
fi
if [ "$#" -gt 1 ]; then
    usage >&2
    exit 2
fi
build=${1:-build}
if [ -d "$build" ]; then
    build=$(cd "$build" && pwd)
elif [ "${build#/}" = "$build" ] && [ -d "$root/$build" ]; then
    build=$(cd "$root/$build" && pwd)
else
    echo "demo: build folder '$build' not found; run 'make build' first" >&2
    exit 2
fi
for prog in medveil mksynth; do
    if [ ! -x "$build/$prog" ]; then
        echo "demo: $build/$prog is missing; run 'make build' first" >&2
        exit 2
    fi
done

# Everything below runs from the repository root, so paths on screen are short.
cd "$root"
readonly MEDVEIL="$build/medveil" MKSYNTH="$build/mksynth" OUT=examples/synthetic
readonly KEY=$OUT/demo.key IN=$OUT/in DEID=$OUT/deid QUAR=$OUT/deid-quarantine REPORT=$OUT/deid-report.json
work=$(mktemp -d "${TMPDIR:-/tmp}/medveil-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

medveil() { "$MEDVEIL" "$@"; }
mksynth() { "$MKSYNTH" "$@"; }

# first N: the first N lines of stdin and a note of how many were cut. It reads all of its
# input, so the command before it never dies of SIGPIPE (which pipefail would report).
first() { awk -v n="$1" 'NR <= n { print } END { if (NR > n) printf "    [... %d more lines]\n", NR - n }'; }

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
heading() { printf '\n%s== %s ==%s\n\n' "$bold" "$*" "$plain"; }
note() { printf '%s\n' "$@"; }
fail() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

# step 'COMMAND': shows COMMAND (with "first N" as the "head -n N" it stands for), runs it,
# and stops the demo if it fails.
step() {
    local shown=${1//first /head -n }
    printf '$ %s\n' "$shown"
    if ! eval "$1"; then
        fail "$shown"
    fi
    echo
}

# expect STATUS 'COMMAND': like step, for a command whose exit status is not 0 on purpose.
# Its standard error is shown after its standard output (and kept in $work/stderr); the
# demo stops if the exit status differs from STATUS.
expect() {
    local want=$1 shown=${2//first /head -n } status=0
    printf '$ %s\n' "$shown"
    eval "$2" 2> "$work/stderr" || status=$?
    cat "$work/stderr"
    printf '(exit status %d)\n\n' "$status"
    [ "$status" -eq "$want" ] || fail "$shown: exit status $status, expected $want"
}

# before_after ORIGINAL OUTPUT TAG...: one line per tag, its keyword and its value in the
# original and in the output, from the text dumps (top-level elements and meta only).
before_after() {
    local orig=$1 out=$2
    shift 2
    awk -v tags="$*" '
        function value(line, missing,   v) {
            if (line == "") return missing
            if (line ~ /\(no value available\)/) return "(empty)"
            v = line; sub(/^\([0-9A-F,]+\) [A-Z][A-Z] /, "", v); sub(/ +#.*$/, "", v)
            if (v ~ /^\[/) { sub(/^\[/, "", v); sub(/\]$/, "", v) }
            if (length(v) > 26) v = substr(v, 1, 23) "..."
            return v
        }
        function keyword(line,   k) { k = line; sub(/.*# +[0-9u\/l]+, [0-9]+ /, "", k); return substr(k, 1, 24) }
        FNR == 1 { file++ }
        /^\(/ { tag = substr($0, 1, 11); if (file == 1) a[tag] = $0; else b[tag] = $0 }
        END {
            n = split(tags, list, " ")
            printf "%-24s  %-26s  %s\n", "", "before", "after"
            for (i = 1; i <= n; i++) {
                t = list[i]
                if (!(t in a) && !(t in b)) continue
                printf "%-24s  %-26s  %s\n", keyword(t in a ? a[t] : b[t]), value(a[t], "-"), value(b[t], "(removed)")
            }
        }' <(medveil dump --full "$orig") <(medveil dump --full "$out")
}

heading "medveil demo"
note "medveil protects patients' privacy in medical images. It has its DICOM codec (read" \
     "every Part 10 file exactly, rewrite it without changing a byte it was not asked to" \
     "change, refuse a broken file with a reason) and de-identification (PS3.15 Annex E with" \
     "keyed pseudonyms, quarantine and an independent check). Everything shown here runs on" \
     "synthetic files with obviously fake people."
echo
step 'medveil version'

heading "1. Generate synthetic DICOM files"
note "mksynth (examples/mksynth.c) builds them with the public editing API only. The same" \
     "--seed always gives the same files, UIDs included. The folder is emptied first, which" \
     "also removes the key of an earlier run (keygen never overwrites a key)."
echo
rm -rf "$OUT"
step "mksynth $OUT --count 3 --seed 1"

heading "2. The codec in four steps"
note "A text dump, like dcmdump. Note the PHI a de-identifier must deal with: names, IDs," \
     "birth date, address, phone, institution, a name inside StudyDescription, a private block:"
echo
step "medveil dump --no-meta $OUT/ct-alice-001.dcm | grep -E '^\((0008,0080|0008,1030|0009,|0010,)' | first 12"
note "Nested sequences are indented, and text is decoded to UTF-8 whatever its character set" \
     "(the second file stores the name in ISO 8859-1):"
echo
step "medveil dump --no-meta $OUT/sc-alice-sequences.dcm | sed -n '/^(0040,0275)/,/^(7FE0/p' | first 8"
step "medveil dump --no-meta $OUT/sc-mueller-latin1.dcm | grep -E '^\((0008,0005|0010,0010)\)'"
note "DICOM JSON (PS3.18 Annex F):"
echo
step "medveil dump --json --pretty $OUT/ct-alice-001.dcm | first 12"
note "Implicit VR to Explicit VR and back gives the very same bytes:"
echo
step "medveil convert --explicit $OUT/mr-bob-implicit.dcm $work/mr-explicit.dcm"
step "medveil convert --implicit $work/mr-explicit.dcm $work/mr-roundtrip.dcm"
step "cmp $OUT/mr-bob-implicit.dcm $work/mr-roundtrip.dcm && echo 'files are byte-identical'"
note "A file cut short in its pixel data gets a one-line error naming the tag and the byte" \
     "offset, never a value (values are patient data), and exit status 1:"
echo
step "head -c 2000 $OUT/ct-alice-001.dcm > $work/truncated.dcm"
expect 1 "medveil dump $work/truncated.dcm > /dev/null"

heading "3. A project key and a folder to release"
note "Every pseudonym, replacement UID and date shift is derived from the project key with" \
     "HMAC-SHA256: the same input under the same key gives the same output on any machine," \
     "in any order. Keep the key secret (a key file others can read is refused) and backed up."
echo
step "medveil keygen -o $KEY"
step "stat -c '%A %n' $KEY"
note "The study to release goes in a folder of its own: the key, the report and the" \
     "quarantine must not be inside the folder that is de-identified and then verified."
echo
step "mkdir $IN && cp $OUT/*.dcm $IN/"

heading "4. De-identify"
note "The Basic Profile, plus two options a research release often wants: dates shifted by" \
     "a keyed per-patient offset instead of removed (retain-long-modified-dates), and" \
     "descriptions kept with the patient's identifiers cut out (clean-descriptors). The" \
     "hierarchy layout names folders and files by pseudonym and UID only (the default," \
     "'mirror', keeps input paths, and these file names hold the patients' names)." \
     "Exit status 1 is expected: the ultrasound has the patient's name burned into its" \
     "pixels, and this build cannot clean pixels yet, so it goes to quarantine."
echo
expect 1 "medveil deid --key $KEY --option retain-long-modified-dates --option clean-descriptors --layout hierarchy --report $REPORT $IN -o $DEID"
step "sed -n '/\"counts\"/,/}/p' $REPORT"
if ! grep -q '"deidentified": 7,' "$REPORT" || ! grep -q '"quarantined": 1,' "$REPORT"; then
    fail "the report should count 7 de-identified files and 1 quarantined"
fi
note "The report also has, for each input, its output and status, and the method, options," \
     "recipe hash and the key's fingerprint (never the key). The outputs:"
echo
step "(cd $DEID && find . -type f | sort | first 3)"
ct_out=$(grep -A1 "\"input\": \"$IN/ct-alice-001.dcm\"" "$REPORT" | sed -n 's/.*"output": "\(.*\)",*$/\1/p')
[ -f "$ct_out" ] || fail "the report names no output for $IN/ct-alice-001.dcm"

heading "5. Before and after: the CT slice"
note "Names and IDs become keyed pseudonyms (the same patient gets the same one in every" \
     "file), UIDs become 2.25 UIDs derived from the originals, dates move by the patient's" \
     "offset (times stay: the shift is whole days), the address, phone, age and private block" \
     "go, the description loses the name, and the markers say what was done:"
echo
printf '$ medveil dump %s; medveil dump %s    # selected elements, side by side\n' \
    "$IN/ct-alice-001.dcm" "$DEID/MV.../....dcm"
before_after "$IN/ct-alice-001.dcm" "$ct_out" \
    '(0008,0018)' '(0020,000D)' '(0008,0020)' '(0008,0030)' '(0008,0050)' '(0008,0080)' '(0008,0090)' \
    '(0008,1030)' '(0008,1070)' '(0009,0010)' '(0009,1001)' '(0010,0010)' '(0010,0020)' '(0010,0030)' \
    '(0010,1010)' '(0010,1040)' '(0010,2154)' '(0012,0062)' '(0012,0063)' '(0028,0303)'
echo
if grep -rqaiE 'alice|DEMO-0001|Example (Street|General)|555-0100|TEST\^BOB' "$DEID"; then
    fail "an output still holds one of the original identifiers"
fi

heading "6. Burned-in text goes to quarantine"
note "The original goes, untouched, to the quarantine folder (OUTDIR-quarantine unless -q" \
     "says otherwise; files of mode 0600) with a .reason file; nothing of it is in OUTDIR:"
echo
step "ls -l $QUAR/in | tail -n +2"
step "cat $QUAR/in/us-bob-rgb.dcm.reason"

heading "7. Check the run: medveil verify"
note "verify pairs each original with its output (here through the report) and checks them" \
     "with the codec alone and its own lists of identifying attributes: no identifying value" \
     "left anywhere in the bytes or the output paths, UIDs and pseudonyms consistent across" \
     "files, dates shifted consistently, markers present. It prints one line per failure" \
     "(never the value) and a score:"
echo
printf '$ medveil verify --report %s %s %s\n' "$REPORT" "$IN" "$DEID"
status=0
medveil verify --report "$REPORT" "$IN" "$DEID" > "$work/verify.txt" 2>&1 || status=$?
first 30 < "$work/verify.txt"
printf '(exit status %d)\n\n' "$status"
case $status in
0) ;;
1)  # Stop for a leak or an inconsistent pseudonym; other findings are shown and noted.
    awk '$1 == "leak" || $1 == "uid" || $1 == "patient" { if ($4 > 0) bad = 1 } END { exit bad }' "$work/verify.txt" ||
        fail "medveil verify found identifying data or inconsistent pseudonyms in the output"
    note "note: verify reported the findings above, none of them a leak; see docs/deid.md." ""
    ;;
*) fail "medveil verify: exit status $status" ;;
esac

heading "8. Rerun: resumable and deterministic"
note "The same command again finds every output in place and writes nothing (the quarantined" \
     "file is examined again, and quarantined again):"
echo
expect 1 "medveil deid --key $KEY --option retain-long-modified-dates --option clean-descriptors --layout hierarchy $IN -o $DEID"
grep -q ' 0 de-identified, 7 already done, 1 quarantined' "$work/stderr" ||
    fail "the rerun should find the 7 outputs already done"
note "A fresh run into another folder, with the same key, gives byte-identical files:"
echo
expect 1 "medveil deid --quiet --key $KEY --option retain-long-modified-dates --option clean-descriptors --layout hierarchy $IN -o $work/again"
step "diff -r $DEID $work/again && echo 'outputs are byte-identical'"

heading "What's next"
note "De-identification of headers is done; see docs/deid.md for every option, the report" \
     "and what is not done yet. The next stages, none of which exists yet (README.md has the" \
     "status of each capability):" \
     "" \
     "  - pixel privacy: find and mask the name and ID burned into us-bob-rgb.dcm, so that" \
     "    it can be released instead of quarantined (clean-pixel-data)" \
     "  - keys: a keyring with rotation, and reversible de-identification" \
     "  - an encrypted vault for the identified originals, one key per object" \
     "  - a tamper-evident audit log of every action" \
     "" \
     "Files: $OUT/   Try: medveil help deid, medveil help verify, man ./docs/medveil.1"
echo
