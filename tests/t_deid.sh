#!/usr/bin/env bash
# medveil deid end to end (issue: de-identification engine). On synthetic files always;
# on ../shared/corpus/dev when present (skipped loudly otherwise):
#  - keyed and deterministic: two runs under one key are byte-identical; a rerun skips
#    finished outputs; another key gives other UIDs;
#  - nothing identifying survives: medveil verify and an independent pydicom check;
#  - outputs read by dcmtk and pydicom; dciodvfy finds no error the input did not have
#    (errors that plain reading and rewriting already causes are listed, not counted);
#  - quarantine with reasons (mode 0600), report JSON, exit statuses, options, Ctrl-C.
set -u
MEDVEIL=${MEDVEIL:?MEDVEIL must name the medveil binary}
MKSYNTH=${MKSYNTH:-}
CORPUS=${MV_CORPUS:-}
PY=${MV_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

"$MEDVEIL" keygen -o "$work/k1" >/dev/null || { echo "keygen failed"; exit 1; }
"$MEDVEIL" keygen -o "$work/k2" >/dev/null
check "key file is mode 0600" test "$(stat -c %a "$work/k1")" = 600
"$MEDVEIL" keygen -o "$work/k1" >/dev/null 2>&1
check "keygen refuses to overwrite a key (exit 1)" test $? -eq 1
cp "$work/k1" "$work/kopen" && chmod 644 "$work/kopen"
"$MEDVEIL" deid --quiet --key "$work/kopen" "$work/k1" -o "$work/x" 2>"$work/err"
check "a key readable by others is refused with exit 3" test $? -eq 3
echo "medveil-key-v1 nothex" > "$work/kbad" && chmod 600 "$work/kbad"
"$MEDVEIL" deid --quiet --key "$work/kbad" "$work/k1" -o "$work/x" 2>"$work/err"
check "a malformed key file is a usage error (exit 2)" test $? -eq 2
"$MEDVEIL" deid --mask-all-text "$work/k1" -o "$work/x" 2>"$work/err"
check "pixel settings without clean-pixel-data are a usage error (exit 2)" test $? -eq 2
check "that error names the option needed" grep -q "clean-pixel-data" "$work/err"
"$MEDVEIL" deid --option no-such-option "$work/k1" -o "$work/x" 2>/dev/null
check "unknown option name exits 2" test $? -eq 2
"$MEDVEIL" deid "$work/k1" 2>/dev/null
check "deid without -o exits 2" test $? -eq 2

# ---- synthetic files --------------------------------------------------------------
if [ -n "$MKSYNTH" ]; then
    "$MKSYNTH" "$work/syn" --count 3 --seed 7 >/dev/null
    printf 'not dicom\n' > "$work/syn/readme.txt"
    "$MEDVEIL" deid --quiet --key "$work/k1" --report "$work/syn.json" "$work/syn" -o "$work/syn-out"
    rc=$?
    check "synthetic run exits 1 (one non-DICOM file skipped, one burned-in US quarantined)" test $rc -eq 1
    check "the report says the text file was skipped" \
        "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert [f["status"] for f in r["files"] if f["input"].endswith("readme.txt")]==["skipped"]' "$work/syn.json"
    check "the burned-in ultrasound went to quarantine with a reason" \
        test -f "$work/syn-out-quarantine/syn/us-bob-rgb.dcm.reason"
    check "quarantined files are readable by their owner only" \
        test "$(stat -c %a "$work/syn-out-quarantine/syn/us-bob-rgb.dcm")" = 600
    check "no fake identity in any output" \
        bash -c '! grep -rqaiE "DEMO\^ALICE|ALICE|TEST\^BOB|DEMO-0001|DEMO-0002|Example Street|555-0100|Example General|MÜLLER|MUELLER" "$1"' _ "$work/syn-out"
    check "report has the key fingerprint and never the key" \
        "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); k=open(sys.argv[2]).read().split()[1]; s=open(sys.argv[1]).read(); assert r["key_fingerprint"].startswith("sha256:") and k not in s' "$work/syn.json" "$work/k1"
    # Same key, same output; other key, other UIDs.
    "$MEDVEIL" deid --quiet --key "$work/k1" "$work/syn" -o "$work/syn-out2" 2>/dev/null
    check "two runs under one key are byte-identical" diff -r "$work/syn-out" "$work/syn-out2"
    "$MEDVEIL" deid --quiet --key "$work/k2" "$work/syn" -o "$work/syn-out3" 2>/dev/null
    a=$("$MEDVEIL" dump "$work/syn-out/syn/ct-alice-001.dcm" | grep "(0020,000D)")
    b=$("$MEDVEIL" dump "$work/syn-out3/syn/ct-alice-001.dcm" | grep "(0020,000D)")
    check "another key gives another Study Instance UID" test -n "$a" -a "$a" != "$b"
    s1=$("$MEDVEIL" dump "$work/syn-out/syn/ct-alice-001.dcm" | grep "(0020,000D)")
    s2=$("$MEDVEIL" dump "$work/syn-out/syn/ct-alice-002.dcm" | grep "(0020,000D)")
    check "one study keeps one Study Instance UID across files" test "$s1" = "$s2"
    check "UIDs are 2.25 UIDs" grep -q "UI \[2\.25\." <<<"$a"
    # A rerun skips what is done.
    "$MEDVEIL" deid --key "$work/k1" "$work/syn" -o "$work/syn-out" 2>"$work/err"
    check "a rerun reports the outputs as already done" grep -q " 7 already done" "$work/err"
    # Options.
    "$MEDVEIL" deid --quiet --key "$work/k1" --option retain-long-modified-dates --option clean-descriptors \
        --option retain-patient-characteristics "$work/syn" -o "$work/syn-opt" 2>/dev/null
    d1=$("$MEDVEIL" dump "$work/syn-opt/syn/ct-alice-001.dcm" | grep -v '^# File:')
    check "modified dates: Study Date kept, shifted" bash -c 'grep -q "(0008,0020) DA \[[0-9]\{8\}\]" <<<"$1" && ! grep -q "(0008,0020) DA \[$2\]" <<<"$1"' _ "$d1" \
        "$("$MEDVEIL" dump "$work/syn/ct-alice-001.dcm" | sed -n 's/.*(0008,0020) DA \[\([0-9]*\)\].*/\1/p')"
    check "modified dates: (0028,0303) is MODIFIED" grep -q "(0028,0303) CS \[MODIFIED\]" <<<"$d1"
    check "clean descriptors: Study Description kept without the name" bash -c 'grep -q "(0008,1030) LO" <<<"$1" && ! grep -qi "alice" <<<"$1"' _ "$d1"
    check "the method code sequence lists the options" grep -q "113107" <<<"$d1"
    "$MEDVEIL" deid --quiet --key "$work/k1" --option retain-uids "$work/syn" -o "$work/syn-uids" 2>/dev/null
    o=$("$MEDVEIL" dump "$work/syn/ct-alice-001.dcm" | grep "(0008,0018)")
    n=$("$MEDVEIL" dump "$work/syn-uids/syn/ct-alice-001.dcm" | grep "(0008,0018)")
    check "retain-uids keeps the SOP Instance UID" test "$o" = "$n"
    # A recipe: a literal, a kept attribute, a subject-ID table, and quarantine rules.
    mkdir -p "$work/rcp"
    printf 'original,replacement\nDEMO-0001,SUBJ-A\nDEMO-0002,SUBJ-B\n' > "$work/rcp/ids.csv"
    cat > "$work/rcp/study.recipe" <<'RECIPE'
medveil-recipe 1
# a research release
replace InstitutionName "Research Site"
keep PatientSex
map PatientID ids.csv else quarantine
quarantine "mixed-modality test rule" if Modality == "MR" and PatientSex == "M"
RECIPE
    "$MEDVEIL" deid --quiet --key "$work/k1" --recipe "$work/rcp/study.recipe" --report "$work/rcp.json" \
        "$work/syn" -o "$work/syn-rcp" 2>/dev/null
    r=$("$MEDVEIL" dump "$work/syn-rcp/syn/ct-alice-001.dcm")
    check "recipe: map table gives the trial's subject ID" grep -q "(0010,0020) LO \[SUBJ-A\]" <<<"$r"
    check "recipe: literal replacement" grep -q "(0008,0080) LO \[Research Site\]" <<<"$r"
    check "recipe: kept attribute" grep -q "(0010,0040) CS \[F\]" <<<"$r"
    check "recipe: its hash is in the method and the report" \
        "$PY" -c 'import json,sys,hashlib; r=json.load(open(sys.argv[1])); h=hashlib.sha256(open(sys.argv[2],"rb").read()+open(sys.argv[3],"rb").read()).hexdigest(); assert r["recipe_sha256"]==h, (r["recipe_sha256"],h)' \
        "$work/rcp.json" "$work/rcp/study.recipe" "$work/rcp/ids.csv"
    check "recipe: a value missing from the map table quarantines the file, naming the recipe line" \
        grep -q "study.recipe:5" "$work/syn-rcp-quarantine/syn/sc-mueller-latin1.dcm.reason"
    check "recipe: a quarantine rule quarantines with its reason" \
        grep -q "mixed-modality test rule" "$work/syn-rcp-quarantine/syn/mr-bob-implicit.dcm.reason"
    printf 'medveil-recipe 1\nkepp PatientSex\n' > "$work/rcp/bad.recipe"
    "$MEDVEIL" deid --quiet --recipe "$work/rcp/bad.recipe" "$work/syn" -o "$work/syn-bad" 2>"$work/err"
    check "a bad recipe is a usage error (exit 2)" test $? -eq 2
    check "a bad recipe's error names file and line" grep -q "bad.recipe:2" "$work/err"
    # Hierarchy layout: no input path in the output path.
    "$MEDVEIL" deid --quiet --key "$work/k1" --layout hierarchy "$work/syn" -o "$work/syn-h" 2>/dev/null
    check "hierarchy layout writes PATIENT/STUDY/SERIES/SOP.dcm" \
        bash -c '[ "$(find "$1" -name "*.dcm" | wc -l)" -eq 7 ] && ! find "$1" | grep -qi alice' _ "$work/syn-h"
    if command -v dciodvfy >/dev/null; then
        for f in "$work"/syn-out/syn/*.dcm; do
            e=$(dciodvfy "$f" 2>&1 | grep -c '^Error')
            check "dciodvfy finds no error in $(basename "$f") (found $e)" test "$e" -eq 0
        done
    fi
else
    echo "SKIPPED: mksynth not built; synthetic de-identification cases not run"
fi

# ---- the corpus ---------------------------------------------------------------------
if [ -z "$CORPUS" ] || [ ! -d "$CORPUS" ]; then
    echo "SKIPPED: corpus not found at '${CORPUS}'; corpus de-identification checks not run"
else
    root=$(cd "$CORPUS/.." && pwd)
    "$MEDVEIL" deid --quiet --key "$work/k1" --report "$work/c1.json" "$CORPUS" -o "$work/c1" 2>/dev/null
    check "corpus run exits 1 (malformed files quarantined)" test $? -eq 1
    "$MEDVEIL" deid --quiet -j 1 --key "$work/k1" "$CORPUS" -o "$work/c2" 2>/dev/null
    check "corpus: two runs (2 threads, 1 thread) are byte-identical" diff -r -q "$work/c1" "$work/c2"
    check "corpus: every malformed file is quarantined with a reason, nothing else" \
        "$PY" - "$work/c1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
q = sorted(f["input"].rsplit("/", 1)[1] for f in r["files"] if f["status"] == "quarantined")
want = ["3gb-bulk-data-truncated", "FreezePattern.dcm", "GH1728.dcm", "GH179B.dcm", "GH364.dcm", "GH626.dcm"]
assert q == want, q
assert all(f.get("reason") for f in r["files"] if f["status"] == "quarantined")
assert r["counts"]["deidentified"] == len(r["files"]) - len(want), r["counts"]
PY
    # verify also checks output paths: the mirror layout keeps the corpus's file names
    # (some are original UIDs), so verify judges hierarchy runs, with and without options.
    "$MEDVEIL" deid --quiet --key "$work/k1" --layout hierarchy --report "$work/c4.json" "$CORPUS" -o "$work/c4" 2>/dev/null
    "$MEDVEIL" verify "$CORPUS" "$work/c4" --report "$work/c4.json" > "$work/verify.txt" 2>&1
    check "medveil verify: no failure in the Basic Profile run ($(tail -1 "$work/verify.txt"))" test $? -eq 0
    "$MEDVEIL" deid --quiet --key "$work/k1" --layout hierarchy --report "$work/c3.json" \
        --option retain-long-modified-dates --option clean-descriptors --option clean-structured-content \
        --option retain-safe-private --option retain-patient-characteristics "$CORPUS" -o "$work/c3" 2>/dev/null
    "$MEDVEIL" verify "$CORPUS" "$work/c3" --report "$work/c3.json" > "$work/verify3.txt" 2>&1
    check "medveil verify: no failure in a run with five options ($(tail -1 "$work/verify3.txt"))" test $? -eq 0
    check "the options' run keeps shifted dates (MODIFIED) in most files" \
        test "$(grep -rla 'MODIFIED' "$work/c3" | wc -l)" -gt 150
    "$PY" "$HERE/deid_leaks.py" "$root" "$work/c1.json" > "$work/leaks.txt" 2>&1
    rc=$?
    tail -3 "$work/leaks.txt"
    check "the pydicom leak check finds nothing" test $rc -eq 0
    n_bad=0
    while IFS= read -r -d '' f; do
        rel=${f#"$work/c1/"}
        dcmdump -q "$(dirname "$CORPUS")/$rel" >/dev/null 2>&1 || continue  # dcmtk cannot read the input either
        dcmdump -q "$f" >/dev/null 2>&1 || { bad "dcmtk cannot read $f"; n_bad=$((n_bad + 1)); }
    done < <(find "$work/c1" -type f -print0)
    check "dcmtk reads every output whose input it reads" test $n_bad -eq 0
    if command -v dciodvfy >/dev/null; then
        # Errors dciodvfy reports in the output but not in the input; those that a plain
        # rewrite (convert) already shows come from reading the input, and are listed.
        "$MEDVEIL" convert -q -n -o "$work/plain" "$CORPUS" 2>/dev/null
        errs() { dciodvfy "$1" 2>&1 | grep -aE '^Error' | sed -E 's/[0-9]+([.][0-9]+){2,}/UID/g' | sort -u; }
        new_errors=0
        while IFS= read -r -d '' out; do
            rel=${out#"$work/c1/"}
            orig="$(dirname "$CORPUS")/$rel"
            if "$MEDVEIL" dump --no-meta "$out" 2>/dev/null | grep -q '^# Dataset: Deflated'; then
                echo "note: $rel: deflated; dciodvfy cannot read that syntax, not checked"
                continue
            fi
            added=$(comm -13 <(errs "$orig") <(errs "$out"))
            [ -n "$added" ] || continue
            from_reading=$(comm -12 <(echo "$added") <(errs "$work/plain/$rel"))
            if [ "$added" = "$from_reading" ]; then
                echo "note: $rel: dciodvfy errors caused by reading, not de-identification: $(echo "$added" | head -1)"
            else
                bad "$rel: de-identification added dciodvfy errors: $(comm -23 <(echo "$added") <(echo "$from_reading") | head -2)"
                new_errors=$((new_errors + 1))
            fi
        done < <(find "$work/c1" -type f -name '*' -print0)
        check "dciodvfy: de-identification adds no error to any file" test $new_errors -eq 0
    fi
fi

# ---- Ctrl-C: a clean stop, and a rerun that finishes ------------------------------
if [ -n "$MKSYNTH" ]; then
    "$MKSYNTH" "$work/many" --count 1500 --seed 3 >/dev/null
    "$MEDVEIL" deid --quiet -j 2 --sync-each --key "$work/k1" "$work/many" -o "$work/many-out" 2>"$work/err" &
    pid=$!
    sleep 0.2
    kill -INT $pid 2>/dev/null
    wait $pid
    rc=$?
    if grep -q interrupted "$work/err"; then
        check "an interrupted run exits 1" test $rc -eq 1
    else
        echo "note: the run finished before Ctrl-C arrived (exit $rc)"
    fi
    check "no temporary files are left after Ctrl-C" bash -c '! find "$1" -name "*.mvtmp-*" | grep -q .' _ "$work/many-out"
    "$MEDVEIL" deid --quiet -j 2 --key "$work/k1" "$work/many" -o "$work/many-out" 2>/dev/null
    "$MEDVEIL" deid --quiet -j 2 --key "$work/k1" "$work/many" -o "$work/many-ref" 2>/dev/null
    check "after Ctrl-C a rerun completes the same output as an uninterrupted run" diff -r -q "$work/many-out" "$work/many-ref"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
