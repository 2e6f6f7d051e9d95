#!/usr/bin/env python3
"""`medveil audit export --format dicom`: every message validates against the PS3.15 A.5.1 schema
(tests/fixtures/audit/dicom-audit.rnc, transcribed from the standard) with jing, an independent
validator; the fields read back with Python's XML parser equal what the log says (actor, time in
UTC, outcome indicator, DCM event ID per action, objects), hostile strings are escaped (markup,
quotes, control characters, invalid UTF-8 never reach the XML as such), --since filters, -o writes
one message per line, malformed lines are named by number and give exit 1, and the export is logged
as an audit.export event. Runs the command's code through the test program build/tests/test_audit_cli, whose stand-in audit
hook records what would be logged (HOME/audit/logged.jsonl)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SRC = os.environ.get("MV_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("MV_BUILD_DIR", os.path.join(SRC, "build"))
SCHEMA = os.path.join(SRC, "tests", "fixtures", "audit", "dicom-audit.rnc")

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def command():
    """The test program that runs the export command's code with a stand-in audit hook (always
    built with the tests); `medveil audit` itself only when the program is missing."""
    prog = os.path.join(BUILD, "tests", "test_audit_cli")
    if os.path.exists(prog):
        return [prog]
    medveil = os.environ.get("MEDVEIL", "")
    if medveil and subprocess.run([medveil, "audit", "export", "--help"], capture_output=True).returncode == 0:
        return [medveil, "audit"]
    print("SKIP: neither", prog, "nor `medveil audit export` is available")
    sys.exit(77)


CMD = command()


def run(*args, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(CMD + list(args), capture_output=True, env=e)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def jing(paths):
    p = subprocess.run(["jing", "-c", SCHEMA] + paths, capture_output=True, text=True)
    errors = [l for l in (p.stdout + p.stderr).splitlines() if not l.startswith("[warning]")]
    return p.returncode, "\n".join(errors)


HOSTILE_ACTOR = "mallory<script>alert(\"x\")</script>&'\u0001\u202e"
EVENTS = [
    {"action": "vault.put", "actor": "alice", "host": "pacs-1.example.org", "objects": ["ab12cd34ef56", "1.2.840.10008.9.1"],
     "outcome": "success", "purpose": "clinical care", "seq": 0, "time": "2026-01-05T08:00:00.000001Z"},
    {"action": "vault.get", "actor": "alice", "host": "pacs-1.example.org", "objects": ["study:1.2.3.4.5", "sop:1.2.3.4.5.6"],
     "outcome": "success", "seq": 1, "time": "2026-01-05T09:15:30.250000Z"},
    {"action": "vault.rm", "actor": "bob", "host": "pacs-1.example.org", "objects": ["ab12cd34ef56"], "outcome": "denied",
     "seq": 2, "time": "2026-01-06T10:00:00.000000Z"},
    {"action": "vault.forget-patient", "actor": "bob", "host": "pacs-1.example.org", "objects": ["ffee00112233"],
     "outcome": "success", "seq": 3, "time": "2026-01-06T10:05:00.000000Z"},
    {"action": "auth.unlock", "actor": HOSTILE_ACTOR, "detail": "wrong passphrase ]]> <!-- & \u0007 \n second line",
     "host": "pacs-1.example.org", "objects": [], "outcome": "failure", "seq": 4, "time": "2026-01-07T11:00:00.5Z"},
    {"action": "audit.alert", "actor": "auditor", "detail": "rule=bulk actor=bob day=2026-01-07 observed=400 threshold=200.0",
     "host": "pacs-1.example.org", "objects": ["x\"y'z<&>"], "outcome": "success", "seq": 5,
     "time": "2026-01-08T00:00:00.000000Z"},
    {"action": "vault.backup", "actor": "ops", "host": "pacs-1.example.org", "objects": [], "outcome": "success", "seq": 6,
     "time": "2026-01-09T03:00:00.000000Z"},
    {"action": "deid", "actor": "carol", "host": "pacs-1.example.org", "objects": ["1.2.3.4.5"], "outcome": "success",
     "purpose": "research <IRB-42>", "seq": 7, "time": "2026-01-10T12:00:00.000000Z"},
    {"action": "reidentify", "actor": "carol", "host": "pacs-1.example.org", "objects": ["1.2.3.4.5"], "outcome": "success",
     "seq": 8, "time": "2026-01-10T13:00:00.000000Z"},
    {"action": "something.new", "actor": "dave", "host": "pacs-1.example.org", "objects": [], "outcome": "success", "seq": 9,
     "time": "2026-01-11T13:00:00.000000Z"},
]
EXPECTED_ID = {"vault.put": ("110107", "C"), "vault.get": ("110103", "R"), "vault.rm": ("110105", "D"),
               "vault.forget-patient": ("110105", "D"), "auth.unlock": ("110114", "E"),
               "audit.alert": ("110113", "E"), "vault.backup": ("110106", "R"), "deid": ("110103", "R"),
               "reidentify": ("110110", "R"), "something.new": ("110100", "E")}
OUTCOME = {"success": "0", "failure": "4", "denied": "8"}


def xml_safe(s):
    """What the exporter must make of s: characters XML 1.0 forbids become U+FFFD."""
    return "".join(c if (c in "\t\n\r" or ord(c) >= 0x20) else "\ufffd" for c in s)


def check_message(root, ev, where):
    check(root.tag == "AuditMessage", f"{where}: root is {root.tag}")
    ei = root.find("EventIdentification")
    eid = ei.find("EventID")
    want_id, want_action = EXPECTED_ID[ev["action"]]
    check(eid.get("csd-code") == want_id and eid.get("codeSystemName") == "DCM",
          f"{where}: EventID {eid.attrib}, want {want_id}")
    check(ei.get("EventActionCode") == want_action, f"{where}: EventActionCode {ei.get('EventActionCode')}")
    check(ei.get("EventOutcomeIndicator") == OUTCOME[ev["outcome"]], f"{where}: outcome {ei.get('EventOutcomeIndicator')}")
    check(ei.get("EventDateTime").endswith("Z") and ei.get("EventDateTime")[:19] == ev["time"][:19],
          f"{where}: EventDateTime {ei.get('EventDateTime')} for {ev['time']}")
    types = [t.get("csd-code") for t in ei.findall("EventTypeCode")]
    check(ev["action"] in types, f"{where}: the medveil action is not an EventTypeCode: {types}")
    if ev["action"] == "auth.unlock":
        check("110122" in types, f"{where}: User Authentication without 110122 Login")
    desc = ei.find("EventOutcomeDescription")
    if "detail" in ev:
        check(desc is not None and xml_safe(ev["detail"]) in desc.text, f"{where}: detail not carried exactly")
    if "purpose" in ev:
        check(desc is not None and xml_safe(ev["purpose"]) in desc.text, f"{where}: purpose not carried")
    parts = root.findall("ActiveParticipant")
    check(parts[0].get("UserID") == xml_safe(ev["actor"]) and parts[0].get("UserIsRequestor") == "true",
          f"{where}: requestor {parts[0].attrib!r}")
    src = root.find("AuditSourceIdentification")
    check(src.get("AuditSourceID") == ev["host"], f"{where}: AuditSourceID {src.get('AuditSourceID')}")
    objs = root.findall("ParticipantObjectIdentification")
    want_objs = [o.split(":", 1)[1] if o.split(":", 1)[0] in ("study", "sop", "series") else o for o in ev["objects"]]
    check([o.get("ParticipantObjectID") for o in objs] == want_objs, f"{where}: objects {[o.attrib for o in objs]}")
    for o, raw in zip(objs, ev["objects"]):
        code = o.find("ParticipantObjectIDTypeCode").get("csd-code")
        if raw.startswith("study:") or raw[0].isdigit():
            check(code == "110180", f"{where}: a study UID typed {code}")
            check(o.find("ParticipantObjectDescription/ParticipantObjectContainsStudy/StudyIDs") is not None,
                  f"{where}: study without ParticipantObjectContainsStudy")


def main():
    if shutil.which("jing") is None:
        print("SKIP: jing (Debian package jing) is not installed: the schema check needs it")
        return 77
    work = tempfile.mkdtemp(prefix="mv_audit_export_")
    try:
        home = os.path.join(work, "home")
        os.makedirs(os.path.join(home, "audit"))
        log = os.path.join(home, "audit", "events.jsonl")
        with open(log, "wb") as f:
            for ev in EVENTS:
                f.write(json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")

        # A folder of documents: each validates against the standard's schema.
        rc, out, err = run("export", "--format", "dicom", "--home", home, "--dir", os.path.join(work, "docs"),
                           "--site", "Example Hospital")
        check(rc == 0, f"export --dir: exit {rc}: {err}")
        files = sorted(os.listdir(os.path.join(work, "docs")))
        check(len(files) == len(EVENTS), f"export --dir wrote {len(files)} files for {len(EVENTS)} events")
        paths = [os.path.join(work, "docs", n) for n in files]
        jrc, jout = jing(paths)
        check(jrc == 0, f"jing rejects the messages: {jout}")
        for path, ev in zip(paths, EVENTS):
            root = ET.parse(path).getroot()
            check_message(root, ev, os.path.basename(path))
            check(root.find("AuditSourceIdentification").get("AuditEnterpriseSiteID") == "Example Hospital",
                  "--site not in AuditEnterpriseSiteID")
        # xmllint, a second parser, agrees that every document is well-formed.
        if shutil.which("xmllint"):
            p = subprocess.run(["xmllint", "--noout"] + paths, capture_output=True, text=True)
            check(p.returncode == 0, f"xmllint: {p.stderr[:500]}")
        else:
            print("note: xmllint not installed; well-formedness checked by jing and Python only")

        # The schema is not a rubber stamp: a broken message fails.
        with open(paths[0], encoding="utf-8") as f:
            broken = f.read().replace('EventOutcomeIndicator="0"', 'EventOutcomeIndicator="1"')
        bad = os.path.join(work, "broken.xml")
        with open(bad, "w", encoding="utf-8") as f:
            f.write(broken)
        check(jing([bad])[0] != 0, "jing accepted an outcome indicator of 1")

        # The hostile actor never appears raw: no markup injected.
        with open(paths[4], "rb") as f:
            raw = f.read()
        check(b"<script>" not in raw and b"]]>" not in raw and b"\x01" not in raw and b"\x07" not in raw,
              "hostile text reached the XML unescaped")

        # A stream: one message per line, each a document; --since drops earlier events.
        stream = os.path.join(work, "stream.xml")
        rc, out, err = run("export", "--home", home, "-o", stream, "--since", "2026-01-07")
        check(rc == 0, f"export -o: exit {rc}: {err}")
        with open(stream, "rb") as f:
            lines = f.read().splitlines()
        want = [ev for ev in EVENTS if ev["time"] >= "2026-01-07"]
        check(len(lines) == len(want), f"--since 2026-01-07 gave {len(lines)} messages, want {len(want)}")
        split = []
        for i, (line, ev) in enumerate(zip(lines, want)):
            path = os.path.join(work, f"line{i}.xml")
            with open(path, "wb") as f:
                f.write(line)
            split.append(path)
            check_message(ET.fromstring(line), ev, f"stream line {i + 1}")
        check(jing(split)[0] == 0, "a stream line does not validate")
        check(not [n for n in os.listdir(work) if ".tmp" in n], "a temporary file was left behind")

        # Standard output is the default destination.
        rc, out, err = run("export", "--home", home, "--since", "2026-01-11")
        check(rc == 0 and out.count(b"<AuditMessage>") == 1, f"stdout export: exit {rc}, {out[:200]!r}")

        # Each export was logged as an audit.export event (seen through the stand-in hook).
        if CMD[-1] == "audit":
            print("note: run through `medveil audit`; logging is checked by the audit command's own tests")
        else:
            with open(os.path.join(home, "audit", "logged.jsonl")) as f:
                logged = [json.loads(l) for l in f]
            check(len(logged) == 3 and all(e["action"] == "audit.export" for e in logged),
                  f"export events logged: {logged}")
            rc, out, err = run("export", "--home", home, "-o", os.path.join(work, "x.xml"),
                               env={"MV_TEST_AUDIT_FAIL": "1"})
            check(rc == 3, f"an export that cannot be logged exits {rc}, want 3")

        # Malformed lines are named by number, skipped, and make the exit status 1.
        with open(log, "ab") as f:
            f.write(b"{not json\n")
            f.write(b'{"action":"vault.get","actor":"x","objects":[],"outcome":"maybe","time":"2026-01-12T00:00:00Z"}\n')
            f.write(b'{"action":"vault.get","actor":"x","objects":[],"outcome":"success","time":"yesterday"}\n')
            f.write(b'\xff\xfe garbage\n')
        rc, out, err = run("export", "--home", home, "-o", os.path.join(work, "partial.xml"))
        check(rc == 1, f"malformed lines: exit {rc}, want 1")
        for n in (11, 12, 13, 14):
            check(f"line {n}" in err, f"line {n} not named: {err}")
        with open(os.path.join(work, "partial.xml"), "rb") as f:
            check(f.read().count(b"<AuditMessage>") == len(EVENTS), "good events lost next to bad lines")
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    print(f"t_audit_export: {'FAILED' if failures else 'ok'} ({failures} failure(s))")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
