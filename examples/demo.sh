#!/usr/bin/env bash
# The `make demo` walk-through: generates synthetic DICOM files with mksynth, shows the codec
# (dump as text and JSON, lossless conversion, a clear error for a broken file), then
# de-identifies the files under a project key, compares a file before and after, shows the
# burned-in ultrasound going to quarantine, checks the run with `medveil verify`, reruns it
# to show that nothing changes, cleans the ultrasound's pixels with OCR and releases it,
# keeps the originals in an encrypted vault (examples/demo-vault.sh), and verifies the audit
# log that recorded every run (and catches a changed byte in a copy of it).
#
# Usage: bash examples/demo.sh [BUILD_DIR]     BUILD_DIR holds medveil and mksynth (default: build)
#
# Works from any folder: BUILD_DIR is taken relative to the current folder, else to the
# repository root. Everything goes to examples/synthetic/ (gitignored, emptied on every run):
# the files, demo.key, in/ (a copy of the files to release), deid/ (the outputs),
# deid-quarantine/, deid-report.json, deid-pixels/ (the run that cleans pixels), review.html,
# us-before.png, us-after.png, checkpoint.txt and home/ (the demo's MEDVEIL_HOME).
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
# The home folder (audit log, keyring) of this demo: every deid run below is recorded in it.
export MEDVEIL_HOME=$OUT/home
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
     "pixels, and without --option clean-pixel-data (step 9) it goes to quarantine."
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

heading "9. Burned-in text: clean the pixels"
note "With --option clean-pixel-data, region rules and OCR (Tesseract) read every frame of the" \
     "files that may carry burned-in text, mask the words that match an identifier of the file" \
     "(name parts, IDs, dates in the usual spellings), read the masked frames again, and only" \
     "then set Burned In Annotation to NO. What OCR finds in the original ultrasound (red:" \
     "identifiers to mask; blue: a rule's region):"
echo
step "medveil preview --boxes $IN/us-bob-rgb.dcm -o $OUT/us-before.png 2>&1 | first 8"
expect 0 "medveil deid --quiet --key $KEY --option clean-pixel-data --layout hierarchy --review $OUT/review.html --report $OUT/pixel-report.json $IN -o $OUT/deid-pixels"
us_out=$(grep -A1 "\"input\": \"$IN/us-bob-rgb.dcm\"" "$OUT/pixel-report.json" | sed -n 's/.*"output": "\(.*\)",*$/\1/p')
[ -f "$us_out" ] || fail "the ultrasound was not released by the clean-pixel-data run"
note "The released ultrasound, read again: the name and the date are gone, the rest is as it was:"
echo
step "medveil preview --boxes $us_out -o $OUT/us-after.png 2>&1 | first 8"
step "medveil dump $us_out | grep -E '^\((0028,0301|0012,0063)\)'"
note "Before/after pictures: $OUT/us-before.png, $OUT/us-after.png; the reviewer's page with" \
     "every changed image, its boxes and the OCR text: $OUT/review.html (mode 0600: it holds" \
     "identifiers)."

heading "10. Reversible de-identification"
note "A trustee's certificate (made here with openssl) receives the original values, encrypted" \
     "as CMS inside each output's Encrypted Attributes Sequence (PS3.15 E.1.2). Whoever holds" \
     "the private key, and only they, can restore them; GDCM's gdcmanon reads the same format."
echo
step "openssl req -x509 -newkey rsa:2048 -nodes -keyout $work/trustee.key -out $OUT/trustee.crt -days 30 -subj /CN=demo-trustee 2>/dev/null"
expect 0 "medveil deid --quiet --key $KEY --option clean-pixel-data --layout hierarchy --encrypt-originals-to $OUT/trustee.crt $IN -o $OUT/deid-reversible"
rev_ct=
for f in $(find "$OUT/deid-reversible" -name '*.dcm' | sort); do
    if medveil dump "$f" | grep -q '^(0008,0060) CS \[CT\]'; then rev_ct=$f; break; fi
done
[ -n "$rev_ct" ] || fail "no CT output in $OUT/deid-reversible"
step "medveil dump $rev_ct | grep -E '^ *\((0400,05[0-2]0|0010,0010)\)' | cut -c 1-100"
step "medveil reidentify --quiet --private-key $work/trustee.key $OUT/deid-reversible -o $OUT/reidentified"
reid_ct=$(grep -rl -a "ALICE" "$OUT/reidentified" | head -n 1)
[ -n "$reid_ct" ] || fail "reidentify did not restore the CT's patient name"
step "medveil dump $reid_ct | grep -E '^\((0010,0010|0010,0020|0020,000D)\)'"

heading "11. The encrypted vault"
note "The identified originals are not left in the clear: examples/demo-vault.sh keeps them in" \
     "an encrypted vault in the demo's home folder ($MEDVEIL_HOME)."
MEDVEIL_DEMO_HOME="$root/$MEDVEIL_HOME" bash "$here/demo-vault.sh" "$build" || fail "examples/demo-vault.sh"

heading "12. The audit log"
note "Every run above was recorded, before it reported success, in the audit log of the home" \
     "folder ($MEDVEIL_HOME): each deid run as one event per study released (named by its new" \
     "UID, never by a name) and a summary, reidentify, every vault command. Each event is a" \
     "leaf of a Merkle tree whose head is signed:"
echo
step "medveil audit log | first 4"
note "The vault's commands, each recorded with the objects it touched (opaque ids, never names):"
echo
step "medveil audit log --action vault. | cut -c 1-110 | first 6"
step "medveil audit verify"
step "medveil audit checkpoint > $OUT/checkpoint.txt && cat $OUT/checkpoint.txt"
note "Change one byte of an event in a copy of the log, and verification names the event:"
echo
step "cp -r $MEDVEIL_HOME $work/tampered && sed -i '1s/\"deid\"/\"DEID\"/' $work/tampered/audit/events.jsonl"
expect 3 "medveil audit verify --home $work/tampered"

heading "What's next"
note "The codec, de-identification (header and pixels, reversible too), the keyring, the vault" \
     "and the audit log are done; docs/ has a guide for each. The next stages (README.md has" \
     "the status of each capability):" \
     "" \
     "  - access control: users, roles, Argon2id passwords, TOTP, tokens, lockout" \
     "  - secure transport: DICOMweb over HTTPS and the DICOM network, de-identifying on the way out" \
     "  - sharing, privacy-preserving statistics, retention and destruction with proof" \
     "" \
     "Files: $OUT/   Try: medveil help deid, medveil help vault, medveil help audit, man ./docs/medveil.1"
echo
