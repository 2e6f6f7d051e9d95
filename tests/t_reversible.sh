#!/usr/bin/env bash
# Reversible de-identification (PS3.15 E.1.2): `medveil deid --encrypt-originals-to` and
# `medveil reidentify`, end to end, judged by independent tools:
#  - pydicom (tests/reversible_compare.py): after deid + reidentify, every attribute that
#    de-identification changed is back exactly as in the original, and so is the whole dataset;
#  - the openssl CLI: the Encrypted Content is CMS with the algorithms asked for, and decrypts
#    to a dataset holding one Modified Attributes Sequence item;
#  - GDCM's gdcmanon: it decrypts what medveil writes, and medveil decrypts what it writes;
#  - dcmtk reads every output, dciodvfy finds no error that the input did not have;
#  - wrong key, wrong passphrase, altered content: exit 3, nothing written; no sequence: exit 1.
# RSA keys and certificates are made here with the openssl CLI (never committed). The corpus
# round trip is tests/t_reversible_corpus.sh.
set -u
MEDVEIL=${MEDVEIL:?MEDVEIL must name the medveil binary}
MKSYNTH=${MKSYNTH:-}
PY=${MV_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
COMPARE="$HERE/reversible_compare.py"
if ! command -v openssl >/dev/null; then echo "SKIPPED: no openssl CLI to make test keys"; exit 77; fi
if [ -z "$MKSYNTH" ]; then echo "SKIPPED: mksynth not built"; exit 77; fi
if ! "$PY" -c 'import pydicom' 2>/dev/null; then echo "SKIPPED: no pydicom for the independent check"; exit 77; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MEDVEIL_HOME="$work/home"
unset MEDVEIL_PASSPHRASE
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
compare() { "$PY" -W ignore "$COMPARE" "$@" > "$work/cmp.txt" 2>&1; local rc=$?; tail -1 "$work/cmp.txt"; grep -m5 '^FAIL' "$work/cmp.txt"; return $rc; }
no_temps() { ! find "$1" -name '*.mvtmp*' 2>/dev/null | grep -q .; }

# ---- keys ---------------------------------------------------------------------------
cd "$work" || exit 1
umask 022 # so that the owner-only mode of re-identified files is medveil's doing
mkcert() { local name=$1; shift; openssl req -x509 -nodes -keyout "$name.key" -out "$name.crt" -days 2 \
    -subj "/CN=medveil test $name" "$@" 2>/dev/null; chmod 600 "$name.key"; }
mkcert a -newkey rsa:2048
mkcert c -newkey rsa:2048
mkcert small -newkey rsa:1024
mkcert ec -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
mkcert signonly -newkey rsa:2048 -addext "keyUsage=digitalSignature"
printf 'correct horse battery\n' > b.pass
printf 'wrong\n' > wrong.pass
chmod 600 b.pass wrong.pass
openssl req -x509 -newkey rsa:2048 -keyout b.key -passout file:b.pass -out b.crt -days 2 -subj "/CN=medveil test b" 2>/dev/null
chmod 600 b.key
check "test keys were made" test -s a.key -a -s b.key -a -s c.key -a -s ec.crt -a -s signonly.crt

# ---- usage and refused certificates ---------------------------------------------------
"$MKSYNTH" syn --count 2 --seed 11 >/dev/null
"$MEDVEIL" convert -q -b syn/ct-alice-001.dcm syn/ct-alice-bigendian.dcm 2>/dev/null
"$MEDVEIL" convert -q -z syn/ct-alice-002.dcm syn/ct-alice-deflated.dcm 2>/dev/null
printf 'not dicom\n' > notdicom.txt
"$MEDVEIL" reidentify syn -o x 2>/dev/null
check "reidentify without --private-key is a usage error (2)" test $? -eq 2
"$MEDVEIL" reidentify --private-key a.key syn 2>/dev/null
check "reidentify without -o is a usage error (2)" test $? -eq 2
"$MEDVEIL" deid --quiet --rsa-pkcs1v15 syn -o x 2>/dev/null
check "--rsa-pkcs1v15 without a certificate is a usage error (2)" test $? -eq 2
for bad_cert in small ec signonly; do
    "$MEDVEIL" deid --quiet --encrypt-originals-to "$bad_cert.crt" syn -o x 2>err.txt
    check "a $bad_cert certificate is refused (exit 2, the reason named)" \
        bash -c '[ $1 -eq 2 ] && grep -qE "2048|not RSA|Key Usage" err.txt' _ $?
done
"$MEDVEIL" deid --quiet --encrypt-originals-to a.key syn -o x 2>/dev/null
check "a file without a certificate is refused (exit 2)" test $? -eq 2
check "refused runs wrote nothing" test ! -e x

# ---- synthetic files: the round trip ------------------------------------------------
"$MEDVEIL" keygen -o project.key >/dev/null
"$MEDVEIL" deid --quiet --key project.key syn -o d0 2>/dev/null
"$MEDVEIL" deid --quiet --key project.key --encrypt-originals-to a.crt --encrypt-originals-to b.crt \
    --report d1.json syn -o d1 2>err.txt
check "deid with two recipients exits 1 (only the burned-in ultrasound quarantined)" \
    bash -c '[ $1 -eq 1 ] && [ "$(ls d1-quarantine/syn | grep -c "\.dcm$")" -eq 1 ]' _ $?
check "the report names both certificates by their SHA-256 fingerprint (as openssl computes it)" \
    "$PY" -c 'import json,sys,subprocess
r = json.load(open("d1.json"))["encrypted_originals_to"]
want = ["sha256:" + subprocess.run(["openssl", "x509", "-in", c, "-noout", "-fingerprint", "-sha256"], capture_output=True,
        text=True).stdout.split("=")[1].strip().replace(":", "").lower() for c in ("a.crt", "b.crt")]
assert r == want, (r, want)'
check "every output carries an Encrypted Attributes Sequence" \
    bash -c 'for f in d1/syn/*.dcm; do dcmdump +P 0400,0500 "$f" | grep -q EncryptedAttributesSequence || exit 1; done'
check "no fake identity in the clear in any output" \
    bash -c '! grep -rqaiE "DEMO\^ALICE|ALICE|TEST\^BOB|DEMO-0001|DEMO-0002|Example Street|555-0100|Example General|MÜLLER|MUELLER" d1'
check "no Original Attributes Sequence (0400,0561) is added" \
    bash -c '! for f in d1/syn/*.dcm; do dcmdump +P 0400,0561 "$f"; done | grep -q .'
check "the same key pseudonymizes alike with and without encryption" \
    test "$("$MEDVEIL" dump d0/syn/ct-alice-001.dcm | grep '(0008,0018)')" = "$("$MEDVEIL" dump d1/syn/ct-alice-001.dcm | grep '(0008,0018)')"

"$MEDVEIL" reidentify --quiet --private-key a.key --purpose "test" d1 -o r1 2>err.txt
check "reidentify with recipient A exits 0" test $? -eq 0
check "re-identified files are readable by their owner only" \
    bash -c '[ -z "$(find r1 -type f ! -perm 600)" ] && [ -n "$(find r1 -type f)" ]'
check "pydicom: every attribute changed by deid is restored, UIDs included (A)" compare "$work" d1 r1/d1
"$MEDVEIL" reidentify --quiet --private-key b.key --passin-file b.pass d1 -o r2 2>err.txt
check "recipient B with an encrypted key and --passin-file (0)" test $? -eq 0
check "pydicom: restored for recipient B too" compare "$work" d1 r2/d1
MEDVEIL_PASSPHRASE='correct horse battery' "$MEDVEIL" reidentify --quiet --private-key b.key \
    d1/syn/ct-alice-001.dcm -o r3 2>/dev/null
check "the passphrase from \$MEDVEIL_PASSPHRASE (0)" test $? -eq 0
"$MEDVEIL" reidentify --quiet --private-key a.key --certificate a.crt --keep-encrypted d1 -o r4 2>/dev/null
check "--certificate and --keep-encrypted (0)" test $? -eq 0
check "pydicom: --keep-encrypted keeps the sequence, restores the rest" compare "$work" d1 r4/d1 --keep-encrypted
"$MEDVEIL" reidentify --quiet --private-key a.key --certificate b.crt d1 -o r5 2>err.txt
check "a certificate that does not match the key is a usage error (2)" test $? -eq 2

# The audit log of the home folder: one reidentify event naming the de-identified SOP Instance
# UIDs (never an original one), the actor and the purpose; the log verifies.
"$MEDVEIL" reidentify --quiet --home audhome --as trustee --purpose "IRB 2024-17" --private-key a.key d1 -o ra 2>/dev/null
check "reidentify with --home/--as/--purpose (0)" test $? -eq 0
"$MEDVEIL" audit log --home audhome --json > audit.json 2>/dev/null
check "the audit log holds one reidentify event with the de-identified UIDs, actor and purpose" \
    "$PY" - audit.json d1 syn <<'PY'
import glob, json, sys
import pydicom
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ev = [e for e in events if e["action"] == "reidentify"]
assert len(ev) == 1, events
ev = ev[0]
deid = sorted(pydicom.dcmread(f).SOPInstanceUID for f in glob.glob(sys.argv[2] + "/syn/*.dcm"))
orig = {pydicom.dcmread(f).SOPInstanceUID for f in glob.glob(sys.argv[3] + "/*.dcm")}
assert sorted(ev["objects"]) == deid, (ev["objects"], deid)
assert not orig & set(ev["objects"])
assert ev["outcome"] == "success" and ev["actor"] == "trustee" and ev["purpose"] == "IRB 2024-17", ev
PY
"$MEDVEIL" audit verify --home audhome >/dev/null 2>&1
check "the audit log verifies" test $? -eq 0
"$MEDVEIL" reidentify --quiet --home audhome --private-key c.key d1/syn/ct-alice-001.dcm -o rd 2>/dev/null
"$MEDVEIL" audit log --home audhome --json 2>/dev/null | grep -q '"outcome":"denied"'
check "a wrong key is recorded as a denied reidentify event" test $? -eq 0
printf 'a file, not a folder\n' > nothome
"$MEDVEIL" reidentify --quiet --home nothome/h --private-key a.key d1 -o rno 2>err.txt
check "an audit log that cannot be written: exit 3, no output, no temporary file" \
    bash -c '[ $1 -eq 3 ] && [ -z "$(find rno -type f 2>/dev/null)" ] && grep -q "no output was written" err.txt' _ $?

# Refusals: nothing written, exit statuses of DESIGN.md.
"$MEDVEIL" reidentify --quiet --private-key c.key d1 -o rw 2>err.txt
check "a key that is no recipient: exit 3" test $? -eq 3
check "... with a clear message" grep -q "not encrypted to this key" err.txt
check "... and no output, no temporary file" bash -c '[ -z "$(find rw -type f 2>/dev/null)" ]'
"$MEDVEIL" reidentify --quiet --private-key b.key --passin-file wrong.pass d1 -o rw 2>err.txt </dev/null
check "a wrong passphrase: exit 3" test $? -eq 3
"$MEDVEIL" reidentify --quiet --private-key b.key d1 -o rw 2>err.txt </dev/null
check "an encrypted key and no passphrase (no terminal): exit 2, naming the ways to give one" \
    bash -c '[ $1 -eq 2 ] && grep -q -- "--passin-file" err.txt' _ $?
cp a.key open.key && chmod 644 open.key
"$MEDVEIL" reidentify --quiet --private-key open.key d1 -o rw 2>/dev/null
check "a private key readable by others: exit 3" test $? -eq 3
chmod 644 wrong.pass
"$MEDVEIL" reidentify --quiet --private-key b.key --passin-file wrong.pass d1 -o rw 2>/dev/null
check "a passphrase file readable by others: exit 3" test $? -eq 3
"$MEDVEIL" reidentify --quiet --private-key a.key syn/ct-alice-001.dcm notdicom.txt -o rn 2>err.txt
check "a file without the sequence and a non-DICOM file: exit 1" test $? -eq 1
check "... named as failed" bash -c 'grep -q "ct-alice-001.dcm: failed: no Encrypted Attributes Sequence" err.txt && grep -q "notdicom.txt: failed" err.txt'
mkdir -p dup1 dup2 && cp d1/syn/ct-alice-001.dcm dup1/x.dcm && cp d1/syn/ct-alice-002.dcm dup2/x.dcm
"$MEDVEIL" reidentify --quiet --private-key a.key dup1/x.dcm dup2/x.dcm -o rdup 2>err.txt
check "two inputs for one output: the second fails (1), the first is written" \
    bash -c '[ $1 -eq 1 ] && [ -f rdup/x.dcm ] && grep -q "dup2/x.dcm: failed: another input" err.txt' _ $?
"$MEDVEIL" reidentify --quiet --private-key a.key d1 -o r1 2>/dev/null
check "existing outputs are not replaced (1)" test $? -eq 1
"$MEDVEIL" reidentify --quiet --force --private-key a.key d1 -o r1 2>/dev/null
check "... unless --force (0)" test $? -eq 0
check "no temporary file is left anywhere" no_temps "$work"

# The CMS structures, as the openssl CLI sees them.
content() { "$PY" -c 'import pydicom,sys; sys.stdout.buffer.write(pydicom.dcmread(sys.argv[1]).EncryptedAttributesSequence[int(sys.argv[2])].EncryptedContent)' "$@"; }
content d1/syn/ct-alice-001.dcm 0 > cbc.der
openssl cms -cmsout -print -inform DER -in cbc.der > cbc.txt 2>&1
check "default: EnvelopedData, AES-256-CBC, RSA-OAEP with SHA-256, two recipients" \
    bash -c 'grep -q "pkcs7-envelopedData" cbc.txt && grep -q "aes-256-cbc" cbc.txt && [ "$(grep -c rsaesOaep cbc.txt)" -eq 2 ] && grep -q sha256 cbc.txt'
openssl cms -decrypt -inform DER -in cbc.der -inkey a.key -out plain.bin 2>/dev/null
check "openssl decrypts it to a dataset that starts with the (0400,0550) SQ" \
    test "$(head -c 6 plain.bin | od -An -tx1 | tr -d " \n")" = "000450055351"
"$MEDVEIL" deid --quiet --key project.key --encrypt-originals-to a.crt --rsa-pkcs1v15 syn -o dp 2>/dev/null
content dp/syn/ct-alice-001.dcm 0 | openssl cms -cmsout -print -inform DER > p1.txt 2>&1
check "--rsa-pkcs1v15: rsaEncryption key transport" bash -c 'grep -q "algorithm: rsaEncryption" p1.txt && ! grep -q rsaesOaep p1.txt'
"$MEDVEIL" deid --quiet --key project.key --encrypt-originals-to a.crt --cms-auth-enveloped syn -o dg 2>/dev/null
content dg/syn/ct-alice-001.dcm 0 | openssl cms -cmsout -print -inform DER > g1.txt 2>&1
check "--cms-auth-enveloped: AuthEnvelopedData with AES-256-GCM" bash -c 'grep -qi "authEnvelopedData" g1.txt && grep -q "aes-256-gcm" g1.txt'
"$MEDVEIL" reidentify --quiet --private-key a.key dg -o rg 2>/dev/null
check "pydicom: AuthEnvelopedData round trip" compare "$work" dg rg/dg
"$MEDVEIL" reidentify --quiet --private-key a.key dp -o rp 2>/dev/null
check "pydicom: PKCS#1 v1.5 round trip" compare "$work" dp rp/dp

# Altered Encrypted Content: exit 3 and nothing written.
tamper() { "$PY" - "$@" <<'PY'
import sys, pydicom
src, dst, where = sys.argv[1], sys.argv[2], sys.argv[3]
d = pydicom.dcmread(src)
item = d.EncryptedAttributesSequence[0]
c = bytearray(item.EncryptedContent)
# The DER length from its header, so that the pad byte of an odd length is not counted.
n = {0x81: 3 + c[2], 0x82: 4 + int.from_bytes(c[2:4], "big"), 0x83: 5 + int.from_bytes(c[2:5], "big")}[c[1]]
if where == "truncate":
    c = c[:n - 40]
else:
    # "end" is the last byte of the next-to-last block: under CBC it flips the padding byte of
    # the last plaintext block, which always breaks the padding; under GCM it is in the tag.
    pos = {"key": 200, "middle": n // 2 + 100, "end": n - 17}[where]
    c[pos] ^= 0x01
item.EncryptedContent = bytes(c)
d.save_as(dst)
PY
}
mkdir -p t
for case in "dg middle" "dg end" "dg key" "dg truncate" "d1 end" "d1 key" "d1 truncate"; do
    set -- $case
    rm -rf t/* rt
    tamper "$1/syn/ct-alice-001.dcm" t/x.dcm "$2"
    "$MEDVEIL" reidentify --quiet --private-key a.key t -o rt 2>err.txt
    check "altered content ($1, $2): exit 3, nothing written" \
        bash -c '[ $1 -eq 3 ] && [ -z "$(find rt -type f 2>/dev/null)" ] && grep -q "security failure" err.txt' _ $?
done

# dcmtk reads everything; dciodvfy finds no new error.
check "dcmtk reads every output" bash -c 'for f in d1/syn/*.dcm r1/d1/syn/*.dcm dg/syn/*.dcm; do dcmdump -q "$f" >/dev/null || exit 1; done'
if command -v dciodvfy >/dev/null; then
    errs() { dciodvfy "$1" 2>&1 | grep -aE '^Error' | sed -E 's/[0-9]+([.][0-9]+){2,}/UID/g' | sort -u; }
    n_new=0
    for f in d1/syn/*.dcm; do
        rel=${f#d1/}
        case $rel in *deflated*) continue ;; esac  # dciodvfy does not read the deflated syntax
        added=$(comm -13 <(errs "d0/$rel") <(errs "$f"))
        [ -z "$added" ] || { bad "dciodvfy: the Encrypted Attributes Sequence adds errors to $rel: $added"; n_new=$((n_new + 1)); }
        added=$(comm -13 <(errs "$rel") <(errs "r1/d1/$rel"))
        [ -z "$added" ] || { bad "dciodvfy: re-identification adds errors to $rel: $added"; n_new=$((n_new + 1)); }
    done
    check "dciodvfy: no new error from encryption or re-identification" test $n_new -eq 0
else
    echo "SKIPPED: dciodvfy not installed"
fi

# ---- GDCM interoperability, both ways ------------------------------------------------
if command -v gdcmanon >/dev/null; then
    mkdir -p gd/syn ge/syn
    n_fail=0
    for f in d1/syn/*.dcm; do
        case $f in *deflated*|*bigendian*) continue ;; esac
        gdcmanon -d -k a.key -i "$f" -o "gd/syn/$(basename "$f")" >/dev/null 2>&1 || n_fail=$((n_fail + 1))
    done
    check "gdcmanon -d decrypts every medveil output (RSA-OAEP, AES-256-CBC)" test $n_fail -eq 0
    # gdcmanon removes only the markers it knows; medveil's own two stay behind.
    check "pydicom: gdcmanon restores the originals medveil encrypted" \
        compare "$work" d1 gd --extra "(0012,0064)" --extra "(0028,0303)"
    gdcmanon -d -k a.key -i dg/syn/ct-alice-001.dcm -o gd-gcm.dcm >/dev/null 2>&1
    check "gdcmanon -d also reads AuthEnvelopedData (AES-256-GCM)" test $? -eq 0
    gdcmanon -d --crypto=openssl-p7 -k a.key -i dp/syn/ct-alice-001.dcm -o gd-p7.dcm >/dev/null 2>&1
    check "gdcmanon's old PKCS#7 backend reads --rsa-pkcs1v15 output" test $? -eq 0
    n_fail=0
    for f in syn/*.dcm; do
        case $f in *deflated*|*bigendian*|*us-bob*) continue ;; esac
        gdcmanon -e -c a.crt -i "$f" -o "ge/$f" >/dev/null 2>&1 || n_fail=$((n_fail + 1))
    done
    check "gdcmanon -e encrypts the synthetic files" test $n_fail -eq 0
    "$MEDVEIL" reidentify --quiet --private-key a.key ge -o gr 2>err.txt
    check "medveil reidentify decrypts gdcmanon's output (0)" test $? -eq 0
    check "pydicom: medveil restores the originals gdcmanon encrypted" compare "$work" ge gr/ge
    "$MEDVEIL" reidentify --quiet --private-key c.key ge -o grw 2>/dev/null
    check "gdcmanon output with a key that is no recipient: exit 3" test $? -eq 3
else
    echo "SKIPPED: gdcmanon (libgdcm-tools) not installed; GDCM interoperability not checked"
fi

check "no temporary file is left anywhere" no_temps "$work"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
