#!/usr/bin/env python3
"""Independent check of a reversible de-identification round trip, with pydicom (not medveil).

usage: reversible_compare.py ORIG_ROOT DEID_ROOT REID_ROOT [--extra TAG]... [--keep-encrypted]
                             [--plain PLAIN_ROOT]

For every file under REID_ROOT, the file at the same relative path under ORIG_ROOT is the
original and the one under DEID_ROOT the de-identified file. Every attribute that
de-identification changed, removed or added (at the top level, whole sequences compared item by
item) is listed; each must be back in the re-identified file exactly as in the original. Then
the whole top-level datasets of original and re-identified file must be equal, but for the
attributes given with --extra (allowed to be present in the re-identified file only, such as the
markers another tool leaves) and, with --keep-encrypted, the Encrypted Attributes Sequence.
Values are compared as raw bytes with their padding removed, so implicit and explicit VR
encodings of one value compare equal. With --plain, files whose plain rewrite by medveil
(PLAIN_ROOT, same relative paths) pydicom already reads differently from the original are left
out, named: they are malformed inputs that two readers understand differently. Group lengths (gggg,0000) are not compared: medveil, like
GDCM, drops them from every dataset it edits, and they hold nothing but a byte count. Messages name files and tags, never values.
Exit status 0 when every file passes, 1 otherwise."""
import os
import sys

import pydicom
from pydicom.tag import Tag

ENCRYPTED_ATTRIBUTES = Tag(0x0400, 0x0500)
# PS3.3 F.3.2.2: directory record offsets count bytes from the start of the file, so they change
# whenever anything before them changes length. pydicom checks them instead: it follows every
# offset when it opens a DICOMDIR and fails on one that leads nowhere.
DIRECTORY_OFFSETS = {Tag(0x0004, 0x1200), Tag(0x0004, 0x1202), Tag(0x0004, 0x1400), Tag(0x0004, 0x1420)}


def raw_value(ds, tag):
    """The element's value bytes without trailing padding, or a list for a sequence."""
    elem = ds[tag]
    if elem.VR == "SQ":
        return [item for item in elem.value]
    raw = ds.get_item(tag)
    value = raw.value if hasattr(raw, "value") else elem.value
    if value is None:
        return b""
    if isinstance(value, str):
        value = value.encode("latin-1", "replace")
    if not isinstance(value, (bytes, bytearray)):
        # A value pydicom has already converted (a converted raw element): compare its
        # canonical string form.
        return str(value).encode()
    return bytes(value).rstrip(b"\x00 ")


def same(a, b, tag):
    try:
        va, vb = raw_value(a, tag), raw_value(b, tag)
    except Exception as exc:  # an element pydicom cannot convert
        return False, f"unreadable: {type(exc).__name__}"
    if isinstance(va, list) or isinstance(vb, list):
        if not (isinstance(va, list) and isinstance(vb, list)):
            return False, "sequence in one file only"
        if len(va) != len(vb):
            return False, f"{len(va)} items against {len(vb)}"
        for i, (ia, ib) in enumerate(zip(va, vb)):
            ok, why = same_dataset(ia, ib)
            if not ok:
                return False, f"item {i + 1}: {why}"
        return True, ""
    return (va == vb), "value differs"


def same_dataset(a, b, extra=(), skip=()):
    ta = {t for t in a.keys() if t.group != 2 and t.element != 0 and t not in skip and t not in DIRECTORY_OFFSETS}
    tb = {t for t in b.keys() if t.group != 2 and t.element != 0 and t not in skip and t not in DIRECTORY_OFFSETS}
    only_a = ta - tb
    only_b = tb - ta - set(extra)
    if only_a:
        return False, "missing " + " ".join(f"({t.group:04X},{t.element:04X})" for t in sorted(only_a))
    if only_b:
        return False, "not in the original: " + " ".join(f"({t.group:04X},{t.element:04X})" for t in sorted(only_b))
    for t in sorted(ta):
        ok, why = same(a, b, t)
        if not ok:
            return False, f"({t.group:04X},{t.element:04X}) {why}"
    return True, ""


def changed_tags(orig, deid):
    """Top-level tags that de-identification changed, removed or added."""
    to = {t for t in orig.keys() if t.group != 2 and t.element != 0 and t not in DIRECTORY_OFFSETS}
    td = {t for t in deid.keys() if t.group != 2 and t.element != 0 and t not in DIRECTORY_OFFSETS}
    changed = (to ^ td) - {ENCRYPTED_ATTRIBUTES}
    for t in to & td:
        ok, _ = same(orig, deid, t)
        if not ok:
            changed.add(t)
    return changed


def main(argv):
    args = argv[1:]
    extra, keep, plain_root = [], False, None
    roots = []
    while args:
        a = args.pop(0)
        if a == "--extra":
            g, e = args.pop(0).strip("()").split(",")
            extra.append(Tag(int(g, 16), int(e, 16)))
        elif a == "--plain":
            plain_root = args.pop(0)
        elif a == "--keep-encrypted":
            keep = True
        else:
            roots.append(a)
    orig_root, deid_root, reid_root = roots
    n_files = n_bad = n_attrs = 0
    for dirpath, _, names in os.walk(reid_root):
        for name in sorted(names):
            reid_path = os.path.join(dirpath, name)
            rel = os.path.relpath(reid_path, reid_root)
            try:
                orig = pydicom.dcmread(os.path.join(orig_root, rel), force=True)
            except Exception as exc:
                print(f"note: {rel}: pydicom cannot read the original ({type(exc).__name__}); not compared")
                continue
            try:
                deid = pydicom.dcmread(os.path.join(deid_root, rel), force=True)
                reid = pydicom.dcmread(reid_path, force=True)
            except Exception as exc:
                n_bad += 1
                print(f"FAIL {rel}: pydicom reads the original but not the output ({type(exc).__name__})")
                n_files += 1
                continue
            if plain_root is not None:
                # A plain rewrite by medveil (no edit): if pydicom already sees it differ from the
                # original, pydicom and medveil read a malformed input differently, which the
                # codec's tests judge; such a file proves nothing here.
                try:
                    plain = pydicom.dcmread(os.path.join(plain_root, rel), force=True)
                    ok, why = same_dataset(orig, plain)
                except Exception as exc:
                    ok, why = False, type(exc).__name__
                if not ok:
                    print(f"note: {rel}: pydicom reads the original and a plain rewrite differently ({why}); "
                          "not compared")
                    continue
            n_files += 1
            problems = []
            if ENCRYPTED_ATTRIBUTES not in deid:
                problems.append("the de-identified file has no Encrypted Attributes Sequence")
            if keep != (ENCRYPTED_ATTRIBUTES in reid):
                problems.append("Encrypted Attributes Sequence " + ("removed" if keep else "left in place"))
            touched = changed_tags(orig, deid) - set(extra)
            if not touched:
                problems.append("de-identification changed nothing (the check would prove nothing)")
            for t in sorted(touched):
                if t not in orig:
                    continue  # added by de-identification: checked by same_dataset below
                if t not in reid:
                    problems.append(f"({t.group:04X},{t.element:04X}) changed by deid, missing after reidentify")
                    continue
                ok, why = same(orig, reid, t)
                if not ok:
                    problems.append(f"({t.group:04X},{t.element:04X}) changed by deid, not restored: {why}")
            n_attrs += len(touched)
            ok, why = same_dataset(orig, reid, extra=extra, skip={ENCRYPTED_ATTRIBUTES} if keep else ())
            if not ok:
                problems.append("whole dataset: " + why)
            if problems:
                n_bad += 1
                for p in problems[:5]:
                    print(f"FAIL {rel}: {p}")
    print(f"{n_files} files compared, {n_attrs} attributes changed by de-identification checked, "
          f"{n_bad} files differ")
    return 0 if n_files > 0 and n_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
