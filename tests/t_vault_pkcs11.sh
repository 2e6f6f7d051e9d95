#!/usr/bin/env bash
# medveil vault with the KEK in a PKCS#11 token (SoftHSM2 in a temporary SOFTHSM2_CONF), through
# the CLI: init, put, get (cmp), a wrong PIN (exit 3), rotate --retire (get still works), backup
# and restore into an empty home with the same token, fsck. Skips loudly without SoftHSM2.
set -u
MEDVEIL=${MEDVEIL:?MEDVEIL must name the medveil binary}
MKSYNTH=${MKSYNTH:-}
MODULE=/usr/lib/softhsm/libsofthsm2.so
if [ ! -r "$MODULE" ] || ! command -v softhsm2-util >/dev/null 2>&1; then
    echo "SKIP: SoftHSM2 is not installed ($MODULE, softhsm2-util); vault on PKCS#11 untested"
    exit 77
fi
if [ -z "$MKSYNTH" ] || [ ! -x "$MKSYNTH" ]; then
    echo "SKIP: mksynth is not built"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
status_is() { local want=$1 what=$2; shift 2; "$@" >"$work/out" 2>"$work/err"; local rc=$?; if [ "$rc" -eq "$want" ]; then ok; else bad "$what: exit $rc, expected $want"; sed 's/^/    /' "$work/err" | head -5; fi; }

mkdir -p "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" > "$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"
softhsm2-util --init-token --free --label medveil-vault-test --pin 246810 --so-pin 135791 >/dev/null ||
    { echo "softhsm2-util --init-token failed"; exit 1; }
printf '246810\n' > "$work/pin"
printf '000000\n' > "$work/wrong-pin"
chmod 600 "$work/pin" "$work/wrong-pin"
P11=(--pkcs11-module "$MODULE" --pkcs11-token medveil-vault-test)
V() { "$MEDVEIL" vault "$@" --home "$work/home" "${P11[@]}" --pin-file "$work/pin"; }

"$MKSYNTH" "$work/in" --count 3 --seed 21 >/dev/null
status_is 0 "init with the KEK in the token" V init
status_is 0 "put" V put "$work/in"
n=$(grep -c '^stored ' "$work/out")
check "put stored every synthetic file ($n)" test "$n" -eq "$(find "$work/in" -type f | wc -l)"
cp "$work/out" "$work/put.out"
status_is 0 "get --all" V get --all -o "$work/got"
check "every object reads back byte for byte" bash -c '
    while read -r _ _ uid path; do cmp -s "$path" "$1/$uid.dcm" || exit 1; done < "$2"' _ "$work/got" "$work/put.out"
status_is 3 "a wrong PIN is exit 3" "$MEDVEIL" vault ls --home "$work/home" "${P11[@]}" --pin-file "$work/wrong-pin"
status_is 0 "rotate --retire in the token" V rotate --retire
check "rotation reports the retirement" grep -q "retired and destroyed 1 older KEK version" "$work/out"
status_is 0 "get --all after rotation" V get --all -o "$work/got2"
check "objects unchanged after rotation" diff -r -q "$work/got" "$work/got2"
status_is 0 "backup" V backup "$work/vault.mvb"
status_is 0 "restore into an empty home with the same token" \
    "$MEDVEIL" vault restore "$work/vault.mvb" --home "$work/home2" "${P11[@]}" --pin-file "$work/pin"
status_is 0 "get --all from the restored home" \
    "$MEDVEIL" vault get --all -o "$work/got3" --home "$work/home2" "${P11[@]}" --pin-file "$work/pin"
check "restored objects identical" diff -r -q "$work/got" "$work/got3"
status_is 0 "fsck" V fsck

echo "vault pkcs11: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
