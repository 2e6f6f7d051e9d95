#!/usr/bin/env bash
# The `make demo` walk-through: generates synthetic DICOM files with mksynth, shows what
# medveil can do with them today (dump as text and JSON, convert between encodings without
# losing a byte, refuse a malformed file clearly) and what later stages will add.
#
# Usage: bash examples/demo.sh [BUILD_DIR]     BUILD_DIR holds medveil and mksynth (default: build)
#
# Works from any folder: BUILD_DIR is taken relative to the current folder, else to the
# repository root. The files go to examples/synthetic/ (gitignored, rewritten on every run).
# Exit status: 0 every step behaved as expected; 1 a step failed; 2 usage or missing build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

usage() { sed -n '6,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
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

# step 'COMMAND': shows COMMAND (with "first N" as the "head -n N" it stands for), runs it,
# and stops the demo if it fails.
step() {
    local shown=${1//first /head -n }
    printf '$ %s\n' "$shown"
    if ! eval "$1"; then
        printf '\ndemo: FAILED: %s\n' "$shown" >&2
        exit 1
    fi
    echo
}

heading "medveil demo"
note "medveil protects patients' privacy in medical images. Today it has its DICOM codec:" \
     "it reads every Part 10 file exactly, rewrites it without changing a byte it was not" \
     "asked to change, and refuses a broken file with a reason. Everything shown here runs" \
     "on synthetic files with obviously fake people."
echo
step 'medveil version'

heading "1. Generate synthetic DICOM files"
note "mksynth (examples/mksynth.c) builds them with the public editing API only." \
     "The same --seed always gives the same files, UIDs included."
echo
rm -rf "$OUT"
step "mksynth $OUT --count 3 --seed 1"

heading "2. Dump a file as text"
note "Every element: tag, VR, value, length, VM and keyword, like dcmdump. Note the PHI a" \
     "de-identifier must deal with: names, IDs, birth date, address, phone, institution."
echo
step "medveil dump $OUT/ct-alice-001.dcm | first 40"

note "Nested sequences are indented; this item holds a person's name and a sequence of its own:"
echo
step "medveil dump --no-meta $OUT/sc-alice-sequences.dcm | sed -n '/^(0040,0275)/,/^(7FE0/p'"

note "Text is shown in UTF-8 whatever its character set: the same name stored as ISO 8859-1" \
     "bytes (ISO_IR 100) and as UTF-8 (ISO_IR 192) reads the same:"
echo
step "medveil dump --no-meta $OUT/sc-mueller-latin1.dcm | grep -E '^\((0008,0005|0008,1030|0010,0010)\)'"
step "medveil dump --no-meta $OUT/sc-mueller-utf8.dcm | grep -E '^\((0008,0005|0008,1030|0010,0010)\)'"

heading "3. Dump as DICOM JSON (PS3.18 Annex F)"
step "medveil dump --json --pretty $OUT/ct-alice-001.dcm | first 24"

heading "4. Convert between transfer syntaxes, losslessly"
note "The MR slice is Implicit VR Little Endian. Convert it to Explicit VR and back:"
echo
step "medveil convert --explicit $OUT/mr-bob-implicit.dcm $work/mr-explicit.dcm"
step "medveil convert --implicit $work/mr-explicit.dcm $work/mr-roundtrip.dcm"
note "Only the encoding differs between the original and the explicit copy (the '# File' and" \
     "'# Dataset' header lines); every element is the same:"
echo
step "diff <(medveil dump --no-meta $OUT/mr-bob-implicit.dcm) <(medveil dump --no-meta $work/mr-explicit.dcm) || true"
note "And the round trip gives back the original dump, and in fact the very same bytes:"
echo
step "diff <(medveil dump $OUT/mr-bob-implicit.dcm | tail -n +2) <(medveil dump $work/mr-roundtrip.dcm | tail -n +2) && echo 'dumps match'"
step "cmp $OUT/mr-bob-implicit.dcm $work/mr-roundtrip.dcm && echo 'files are byte-identical'"

heading "5. A malformed file gets a clear error, never a crash"
note "Cut a CT slice short in the middle of its pixel data:"
echo
step "head -c 2000 $OUT/ct-alice-001.dcm > $work/truncated.dcm"
printf '$ medveil dump %s\n' "$work/truncated.dcm"
status=0
medveil dump "$work/truncated.dcm" >/dev/null 2>"$work/err" || status=$?
sed 's/^/    /' "$work/err"
printf 'exit status: %d\n\n' "$status"
if [ "$status" -ne 1 ] || [ ! -s "$work/err" ]; then
    echo "demo: FAILED: expected exit status 1 and an error message for a truncated file" >&2
    exit 1
fi
note "The message names the file, the tag and the byte offset, never a value (values are" \
     "patient data). 'convert' refuses it the same way and leaves nothing at the output:"
echo
printf '$ medveil convert %s %s\n' "$work/truncated.dcm" "$work/never.dcm"
status=0
medveil convert "$work/truncated.dcm" "$work/never.dcm" 2>"$work/err" || status=$?
sed 's/^/    /' "$work/err"
printf 'exit status: %d; output exists: %s\n' "$status" "$([ -e "$work/never.dcm" ] && echo yes || echo no)"
if [ "$status" -ne 1 ] || [ -e "$work/never.dcm" ]; then
    echo "demo: FAILED: convert of a truncated file must exit 1 and write nothing" >&2
    exit 1
fi

heading "What's next (not implemented yet)"
note "These files were made to exercise the stages that come after the codec. None of them" \
     "exists yet; see README.md for the status of each capability:" \
     "" \
     "  - de-identification (PS3.15 Annex E Basic Profile and its options): names, IDs," \
     "    address and phone removed or replaced; UIDs, IDs and date offsets as keyed" \
     "    pseudonyms (HMAC-SHA256 under a project key, so every file of a patient maps the" \
     "    same way); the 'MEDVEIL DEMO' private block dropped; the patient's name inside" \
     "    StudyDescription caught; a self-check score" \
     "  - pixel privacy: the name and ID burned into us-bob-rgb.dcm found and masked" \
     "  - an encrypted vault for the identified originals, one key per object" \
     "  - a tamper-evident audit log of every action" \
     "" \
     "Files: $OUT/   Try: medveil help dump, medveil help convert, man ./docs/medveil.1"
echo
