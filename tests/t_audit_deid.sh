#!/usr/bin/env bash
# `medveil deid` records every run in the audit log of the home folder before it reports
# success: one event per output study whose only object is the new (pseudonymous) Study
# Instance UID, and a summary; --as and --purpose are recorded; `medveil audit verify`
# accepts the log, also after `medveil audit export` logged itself in it; no original UID,
# name or ID of the inputs (read with pydicom, an independent reader) reaches any file of
# the home folder; a log that cannot be written makes the run fail with exit 3.
set -u
MEDVEIL=${MEDVEIL:?MEDVEIL must name the medveil binary}
MKSYNTH=${MKSYNTH:?MKSYNTH must name the mksynth binary}
PY=${MV_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

"$MKSYNTH" "$work/in" >/dev/null || { echo "FAIL: mksynth"; exit 1; }
"$MEDVEIL" keygen -o "$work/k" >/dev/null 2>&1
"$MEDVEIL" deid --key "$work/k" --home "$work/h" --as alice --purpose "trial 42" --layout hierarchy --quiet \
    "$work/in" -o "$work/out" 2>"$work/deid.err"
rc=$?
[ "$rc" -le 1 ] && ok || bad "deid exit $rc: $(cat "$work/deid.err")"
ev="$work/h/audit/events.jsonl"
[ -s "$ev" ] && ok || bad "no audit log written"

# Independent reading of inputs, outputs and the log.
"$PY" - "$work/in" "$work/out" "$ev" <<'PYEOF' || failed=$((failed + 1))
import json, os, sys
import pydicom
src, out, evpath = sys.argv[1:]
def studies(root):
    found, values = set(), set()
    for d, _, files in os.walk(root):
        for f in files:
            ds = pydicom.dcmread(os.path.join(d, f), force=True)
            if "StudyInstanceUID" in ds:
                found.add(str(ds.StudyInstanceUID))
            for kw in ("PatientName", "PatientID", "StudyInstanceUID", "SOPInstanceUID", "AccessionNumber"):
                v = str(ds.get(kw, "") or "")
                if len(v) >= 4:
                    values.add(v)
                    if kw == "PatientName":
                        values.update(p for p in v.split("^") if len(p) >= 4)
    return found, values
_, original_values = studies(src)
out_studies, _ = studies(out)
events = [json.loads(l) for l in open(evpath, encoding="utf-8")]
errors = []
deid = [e for e in events if e["action"] == "deid"]
logged = {o[len("study:"):] for e in deid for o in e["objects"]}
if logged != out_studies:
    errors.append("logged studies %d differ from the outputs' %d" % (len(logged), len(out_studies)))
if not any(e["objects"] == [] and e["detail"].startswith("run:") for e in deid):
    errors.append("no summary event")
for e in deid:
    if e["actor"] != "alice" or e.get("purpose") != "trial 42":
        errors.append("actor/purpose not recorded: %r" % e)
        break
blob = b""
for d, _, files in os.walk(os.path.dirname(os.path.dirname(evpath))):
    for f in files:
        blob += open(os.path.join(d, f), "rb").read()
leaks = [v for v in original_values if v.encode() in blob]
if leaks:
    errors.append("%d original values found in the home folder" % len(leaks))
for e in errors:
    print("FAIL:", e)
print("checked %d events, %d output studies, %d original values" % (len(events), len(out_studies), len(original_values)))
sys.exit(1 if errors else 0)
PYEOF
[ $? -eq 0 ] && ok

"$MEDVEIL" audit verify --home "$work/h" >"$work/verify.out" 2>&1 && ok || bad "audit verify: $(cat "$work/verify.out")"

# A second run appends; the log still verifies and grew.
n1=$(wc -l <"$ev")
"$MEDVEIL" deid --key "$work/k" --home "$work/h" --layout hierarchy --quiet --force "$work/in" -o "$work/out" 2>/dev/null
n2=$(wc -l <"$ev")
[ "$n2" -gt "$n1" ] && ok || bad "second run did not append ($n1 -> $n2)"
"$MEDVEIL" audit verify --home "$work/h" >/dev/null 2>&1 && ok || bad "audit verify after the second run"

# The real `medveil audit export` (the script tests of export and alerts run its code with a
# stand-in hook, on generated logs) records itself in the real log, which still verifies.
n3=$(wc -l <"$ev")
"$MEDVEIL" audit export --format dicom --home "$work/h" -o "$work/export.xml" 2>"$work/export.err" && ok ||
    bad "audit export: $(cat "$work/export.err")"
[ "$(grep -c '<AuditMessage>' "$work/export.xml" 2>/dev/null)" -eq "$n3" ] && ok ||
    bad "audit export wrote $(grep -c '<AuditMessage>' "$work/export.xml" 2>/dev/null) messages for $n3 events"
tail -n 1 "$ev" | grep -q '"action":"audit.export"' && ok || bad "audit export was not logged: $(tail -n 1 "$ev")"
"$MEDVEIL" audit verify --home "$work/h" >/dev/null 2>&1 && ok || bad "audit verify after export"

# An audit log that cannot be written: the run fails with 3 and says why.
mkdir -p "$work/ro/audit" && chmod 0500 "$work/ro/audit"
if [ "$(id -u)" -eq 0 ]; then
    # root ignores permissions: make the events file a folder instead.
    chmod 0700 "$work/ro/audit"; mkdir -p "$work/ro/audit/events.jsonl"
fi
"$MEDVEIL" deid --key "$work/k" --home "$work/ro" --quiet "$work/in" -o "$work/out2" 2>"$work/ro.err"
rc=$?
[ "$rc" -eq 3 ] && ok || bad "unwritable audit log: exit $rc, want 3: $(cat "$work/ro.err")"
grep -q "cannot be recorded" "$work/ro.err" && ok || bad "no reason given: $(cat "$work/ro.err")"

echo "t_audit_deid: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
