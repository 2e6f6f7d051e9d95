#!/usr/bin/env bash
# The vault part of `make demo`: stores the synthetic samples in an encrypted vault under a
# temporary home (passphrase from a file), lists them, gets one back and compares it with the
# original, and shows that no file of the vault holds a patient's name or ID.
#
# Usage: bash examples/demo-vault.sh [BUILD_DIR]   BUILD_DIR holds medveil and mksynth (default: build)
#
# Uses the files of examples/synthetic/ when examples/demo.sh made them, else makes its own with
# mksynth in the temporary folder. Everything else lives in a temporary folder removed at exit,
# the home folder (keyring, vault, audit log) too unless $MEDVEIL_DEMO_HOME names another one.
# Exit status: 0 every step behaved as expected; 1 a step failed; 2 usage or missing build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '6,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit 0
fi
build=${1:-build}
if [ -d "$build" ]; then
    build=$(cd "$build" && pwd)
elif [ "${build#/}" = "$build" ] && [ -d "$root/$build" ]; then
    build=$(cd "$root/$build" && pwd)
else
    echo "demo-vault: build folder '$build' not found; run 'make build' first" >&2
    exit 2
fi
for prog in medveil mksynth; do
    if [ ! -x "$build/$prog" ]; then
        echo "demo-vault: $build/$prog is missing; run 'make build' first" >&2
        exit 2
    fi
done

cd "$root"
work=$(mktemp -d "${TMPDIR:-/tmp}/medveil-vault-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
MEDVEIL="$build/medveil"
medveil() { "$MEDVEIL" "$@"; }
SAMPLES=$root/examples/synthetic
if ! ls "$SAMPLES"/*.dcm > /dev/null 2>&1; then
    SAMPLES=$work/synthetic
    "$build/mksynth" "$SAMPLES" --count 3 --seed 1 > /dev/null
fi
# From here on everything happens in the temporary folder, so paths on screen are short.
cd "$work"
[ "$SAMPLES" = "$work/synthetic" ] && SAMPLES=synthetic
# examples/demo.sh passes its own home folder, so that its audit log shows the vault's events.
HOME_DIR=${MEDVEIL_DEMO_HOME:-home}
PASS=passphrase.txt

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
heading() { printf '\n%s== %s ==%s\n\n' "$bold" "$*" "$plain"; }
note() { printf '%s\n' "$@"; }
fail() { printf '\ndemo-vault: FAILED: %s\n' "$*" >&2; exit 1; }
step() {
    printf '$ %s\n' "$1"
    if ! eval "$1"; then
        fail "$1"
    fi
    echo
}

heading "The encrypted vault"
note "Identified originals are kept encrypted in the home folder: each object under its own" \
     "random AES-256-GCM key, that key wrapped under the patient's key and the keyring's KEK." \
     "The index holds no name, ID or date in the clear: lookups go through keyed blind" \
     "indexes, display values are encrypted. The passphrase comes from a file (mode 0600)," \
     "\$MEDVEIL_PASSPHRASE or a prompt, never from the command line."
echo
printf 'a demo passphrase, not a good one\n' > "$PASS"
chmod 600 "$PASS"
step "medveil vault init --home $HOME_DIR --passphrase-file $PASS --argon2-m 8192"

heading "Store the synthetic samples"
step "medveil vault put --home $HOME_DIR --passphrase-file $PASS $SAMPLES/*.dcm | cut -c 1-110"

heading "List them (decrypted for display)"
step "medveil vault ls --home $HOME_DIR --passphrase-file $PASS"
note "A lookup by Patient ID goes through its blind index (HMAC-SHA256 under a keyring key):"
echo
step "medveil vault ls --home $HOME_DIR --passphrase-file $PASS --patient DEMO-0002 | head -n 3"

heading "Get one back: the exact original bytes"
uid=$(medveil dump "$SAMPLES/ct-alice-001.dcm" | sed -n 's/^(0008,0018) UI \[\([0-9.]*\)\].*/\1/p')
[ -n "$uid" ] || fail "no SOP Instance UID in $SAMPLES/ct-alice-001.dcm"
step "medveil vault get --home $HOME_DIR --passphrase-file $PASS $uid -o back.dcm"
step "cmp $SAMPLES/ct-alice-001.dcm back.dcm && echo 'byte-identical to the original'"
step "stat -c '%A %n' back.dcm"

heading "What is on disk"
step "find $HOME_DIR -maxdepth 3 | sort | head -n 12"
note "No patient name or ID in any file of the home folder (the index, its WAL, the blobs," \
     "the keyring), while the originals are full of them:"
echo
step "grep -c -a -E 'ALICE|DEMO-0001|TEST\\^BOB|DEMO-0002' $SAMPLES/ct-alice-001.dcm"
printf '$ grep -r -l -a -i -E %s %s\n' "'alice|DEMO-000[12]|test.bob|m.ller'" "$HOME_DIR"
if grep -r -l -a -i -E 'alice|DEMO-000[12]|test.bob|m.ller' "$HOME_DIR"; then
    fail "a patient name or ID is in the clear under $HOME_DIR"
fi
echo "(nothing found)"
echo
step "medveil vault fsck --home $HOME_DIR --passphrase-file $PASS"
note "More: medveil help vault, docs/vault.md (formats, crash safety, rotation," \
     "forget-patient, backups)."
