#!/usr/bin/env python3
"""Second, independent leak check of a de-identification run, with pydicom as the reader.

usage: deid_leaks.py ORIGINAL_ROOT REPORT.json

For every input the run's report lists as de-identified, the identifying values of the
original (read by pydicom, not by medveil) must be absent from the output's bytes, and
the output must be readable by pydicom with the markers PS3.15 asks for. Files of the TCIA
pseudo-PHI MR set must also keep no address, phone, physician name or private element.
Prints one line per failure (attribute and file, never the value) and
"N passed, M failed" at the end; exits 1 on any failure.
"""
import json
import os
import re
import sys

import pydicom

IDENTIFYING = [
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "PatientBirthDate", "PatientAddress", "PatientTelephoneNumbers",
    "AccessionNumber", "InstitutionName", "InstitutionAddress", "ReferringPhysicianName",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "OperatorsName", "RequestingPhysician", "PhysiciansOfRecord",
    "MedicalRecordLocator", "StudyID", "StationName", "InstitutionalDepartmentName",
]
GENERIC = {"anonymous", "anonymized", "unknown", "none", "n/a", "na", "test", "demo", "yes", "no",
           "19000101", "000000"}  # the last two are medveil's own dummies (D)
FREE_TEXT = re.compile(r"Description|Comment|Protocol|Text|History|Remark|Note|Label")


BENIGN_KEYWORDS = {"Manufacturer", "ManufacturerModelName", "SoftwareVersions", "SOPClassUID"}


def benign_words(ds):
    """Words of values that identify no one and that the profile keeps: coded strings
    (CS), short technical strings (SH, LO) other than names and free text, and the device's
    make. A phantom named "Perfusion^Stroke" shares words with its ImageType, a knee study
    named "Knee" with its coil; such words are not counted as leaks."""
    words = set()
    for elem in ds.iterall():
        try:
            technical = (elem.VR in ("SH", "LO") and not elem.tag.is_private and elem.keyword
                         and elem.keyword not in IDENTIFYING and not FREE_TEXT.search(elem.keyword))
            if elem.VR == "CS" or technical or elem.keyword in BENIGN_KEYWORDS:
                vals = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
                for v in vals:
                    text = str(v).lower()
                    words.add(text.strip())
                    words.update(w for w in re.split(r"[^a-z0-9]+", text) if w)
        except Exception:
            continue
    return words


def values_of(ds):
    """(keyword, text) for every identifying element anywhere in ds, and private text."""
    found = []
    benign = benign_words(ds)
    for elem in ds.iterall():
        kw = elem.keyword
        try:
            value = elem.value
        except Exception:
            continue
        if kw in IDENTIFYING:
            vals = value if isinstance(value, (list, pydicom.multival.MultiValue)) else [value]
            for v in vals:
                text = str(v).strip()
                if kw.endswith("Name") or kw in ("PatientName", "OtherPatientNames", "PatientBirthName",
                                                  "PatientMotherBirthName", "PerformingPhysicianName",
                                                  "NameOfPhysiciansReadingStudy", "OperatorsName",
                                                  "RequestingPhysician", "PhysiciansOfRecord",
                                                  "ReferringPhysicianName"):
                    for part in re.split(r"[\^= ,]+", text):
                        found.append((kw, part))
                else:
                    found.append((kw, text))
        elif elem.tag.is_private and elem.VR in ("LO", "SH", "LT", "ST", "UT", "PN") and isinstance(value, str):
            found.append(("private %s" % elem.tag, value.strip()))
    out = []
    for kw, text in found:
        if len(text) < 4 or text.lower() in GENERIC or text.lower() in benign or not re.search(r"[A-Za-z0-9]", text):
            continue
        # Short numbers (series numbers, years) and decimals are too common to mean much.
        if re.fullmatch(r"\d{4,5}", text) or re.fullmatch(r"[-+]?\d*\.\d+", text):
            continue
        out.append((kw, text))
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, report_path = sys.argv[1], sys.argv[2]
    with open(report_path, encoding="utf-8") as f:
        report = json.load(f)
    passed = failed = 0
    lines = 0

    def fail(msg):
        nonlocal failed, lines
        failed += 1
        if lines < 60:
            print("FAIL: " + msg)
            lines += 1

    for entry in report["files"]:
        if entry["status"] != "deidentified":
            continue
        src, dst = entry["input"], entry["output"]
        rel = os.path.relpath(src, root)
        try:
            orig = pydicom.dcmread(src, force=True)
            values = values_of(orig)
        except Exception:
            values = []
        try:
            out = pydicom.dcmread(dst)
            out.walk(lambda ds, elem: None)
        except Exception as e:
            try:
                pydicom.dcmread(src).walk(lambda ds, elem: None)
            except Exception:
                continue  # pydicom cannot read the input either (checked by dcmtk instead)
            fail("%s: pydicom cannot read the output (%s)" % (rel, type(e).__name__))
            continue
        with open(dst, "rb") as f:
            data = f.read().lower()
        ok = True
        for kw, text in values:
            for enc in ("utf-8", "latin-1"):
                try:
                    needle = text.lower().encode(enc)
                except UnicodeEncodeError:
                    continue
                # Whole words only: "MARY" in "PRIMARY" is no leak.
                if re.search(rb"(?<![a-z0-9])" + re.escape(needle) + rb"(?![a-z0-9])", data):
                    fail("%s: %s survives in the output" % (rel, kw))
                    ok = False
                    break
        if getattr(out, "PatientIdentityRemoved", None) != "YES":
            fail("%s: Patient Identity Removed is not YES" % rel)
            ok = False
        codes = [item.CodeValue for item in getattr(out, "DeidentificationMethodCodeSequence", [])]
        if "113100" not in codes:
            fail("%s: no 113100 in the De-identification Method Code Sequence" % rel)
            ok = False
        if "fwCustomDeidentification/exampleData/dicom/" in src:
            for kw in ("PatientAddress", "PatientTelephoneNumbers", "ReferringPhysicianName",
                       "PerformingPhysicianName", "NameOfPhysiciansReadingStudy", "OperatorsName"):
                value = getattr(out, kw, None)
                if value not in (None, "") and str(value).strip():
                    fail("%s: %s still has a value" % (rel, kw))
                    ok = False
            if any(e.tag.is_private for e in out.iterall()):
                fail("%s: a private element is still present" % rel)
                ok = False
        if ok:
            passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
