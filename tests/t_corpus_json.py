#!/usr/bin/python3
"""Differential test of `medveil dump --json` (PS3.18 F.2) against pydicom, over the corpus.

Every file under $MV_CORPUS (default ../shared/corpus/dev next to the repository) is dumped
by $MEDVEIL. medveil must never crash (exit >= 128 or a signal) or hang (30 s); it either
exits 1 with one line on stderr that names the file, or exits 0 with valid UTF-8 JSON.
Where pydicom (the Debian python3-pydicom of /usr/bin/python3) reads the file too, the two
datasets are compared recursively: the same tags (Group Length and group 0002 left out, as
F.2.2 says), the same VR, the same values. The oracle is pydicom's decoded element values,
not its to_json_dict, which raises on an invalid IS/DS and departs from F.2 where medveil
follows it ("" for empty values, "Value": [] for a sequence without items, "Alphabetic": ""
for a name with an empty first group). Text is compared with pydicom's decoding, numbers
numerically (FL to a relative 1e-6, since medveil writes the shortest float32 text),
binary values byte for byte from base64; binary values above the bulk threshold are
checked in a second run with --bulk. Where the two disagree for a reason that is not a
bug, the TOLERATED table below says which case and why, and the case is counted.

Where pydicom cannot read a file, dcmtk's dcm2json (if installed) is the oracle instead, on
medveil's --bulk output, with a plainer comparison (tags, VR, values; dcm2json rewrites
Specific Character Set to ISO_IR 192 and prints FL with 9 digits, so FL is compared to 1e-6).

Exit status: 0 when every file agrees (or differs only as TOLERATED says), 1 otherwise,
77 when MEDVEIL is not set or the corpus is absent. The last line reads
"N passed, M failed, K skipped"; skipped files are those neither oracle could read and
that medveil handled cleanly. Values are pseudo-PHI test data; mismatches print them, briefly.
"""
import base64
import json
import math
import os
import re
import struct
import subprocess
import sys
import warnings

TIMEOUT = 30
BULK_THRESHOLD = 1024
MAX_PER_FILE = 5
MAX_LINES = int(os.environ.get('MV_JSON_MAX_LINES', '50'))

# Cases where medveil and pydicom may differ, each with the reason it is not a bug. The
# comparison names the case it relies on; the summary counts how often each was used.
TOLERATED = {
    "un-vs-known-vr": "pydicom replaces UN by a VR it knows (config.replace_un_with_known_vr, and its "
                      "private dictionary for implicit VR private tags), dcmtk likewise with its own "
                      "dictionary; medveil writes UN, the VR the file gives or PS3.5 6.2.2 prescribes for "
                      "an element whose VR it does not know. Compared as raw bytes (pydicom) or skipped (dcmtk).",
    "ob-ow": "OB and OW hold the same bytes; which one an 'OB or OW' element has is the writer's choice "
             "in explicit VR (PS3.5 A.2). Compared as bytes.",
    "us-ss-unresolved": "pydicom leaves an ambiguous 'US or SS' / 'US or SS or OW' VR unresolved when the "
                        "dataset lacks Pixel Representation; medveil picks US (or OW for LUT Data) as "
                        "PS3.5 A.1 implies. Compared numerically / as bytes.",
    "lut-descriptor-first": "pydicom adds 65536 to a negative first value of an SS LUT Descriptor "
                            "(PS3.3 C.11.1.1.1: the entry count is unsigned); medveil writes the SS value "
                            "as encoded.",
    "value-padding": "pydicom keeps spaces around each value of a multi-valued string and '' for an empty "
                     "value; PS3.5 6.2 makes them padding and PS3.18 F.2.5 writes an empty value as null. "
                     "Compared after trimming.",
    "bad-number": "pydicom cannot convert an IS/DS value that is not a number; medveil writes it as a "
                  "JSON string (F.2.3 allows strings for IS/DS). Checked against the raw text.",
    "encapsulated-delimiter": "pydicom's value of encapsulated pixel data stops before the Sequence "
                              "Delimitation Item; medveil's InlineBinary is the whole PS3.5 A.4 stream, "
                              "delimiter included.",
    "non-ascii-default-repertoire": "bytes outside the default repertoire in a VR that Specific Character "
                                    "Set does not apply to (PS3.5 6.1.2.3; invalid either way): pydicom "
                                    "decodes them as ISO 8859-1, medveil with the dataset's character set. "
                                    "Checked against pydicom's decode_bytes under the dataset's encodings.",
    "pydicom-iso2022-escapes": "pydicom 2.x leaves ISO 2022 escape sequences (e.g. ESC $ ) A of ISO 2022 IR 58) "
                               "in the decoded text; medveil consumes them (PS3.5 6.1.2.5.3). Compared with "
                               "the escape sequences removed.",
    "malformed-refused": "medveil refuses the file with a one-line error and dcmtk's dcmdump refuses it too "
                         "(an element runs past the end of the file, an Item outside a sequence ...); "
                         "pydicom reads on and keeps whatever bytes it finds.",
    "unterminated-encapsulated": "encapsulated Pixel Data runs to the end of the file without its Sequence "
                                 "Delimitation Item: pydicom drops the element, medveil keeps the complete "
                                 "fragments it read.",
    "delimiter-as-element": "pydicom lists a stray delimiter (FFFE,E0DD) found between elements as an element; "
                            "delimiters are not attributes (PS3.5 7.5) and have no place in the JSON model.",
    "false-dicm": "the file is a bare dataset whose bytes 128-131 happen to read 'DICM' (no group 0002 "
                  "follows); pydicom takes them for the Part 10 marker and misreads the file. The oracle "
                  "is pydicom's read_dataset from offset 0 instead.",
    "pydicom-structure": "pydicom splits the file into elements differently (e.g. it reads an element with "
                         "blank VR bytes as implicit VR, swallowing the elements that follow); dcmtk's dcm2json "
                         "finds the same tags as medveil at this level.",
    "pydicom-undecodable": "pydicom raises while converting this element (a value its VR cannot hold); "
                           "medveil's output is checked against the raw bytes instead.",
}

TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
SINGLE_VALUED = {"LT", "ST", "UT", "UR"}
CHARSET_VRS = {"SH", "LO", "ST", "LT", "UC", "UT", "PN"}
ISO2022_ESCAPE = re.compile(r"\x1b(?:\$[()*+\-./]?[@-~]|[()*+\-./][@-~])")
SEQ_DELIM = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
INT_VRS = {"US", "SS", "UL", "SL", "SV", "UV"}
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
UNIT = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8, "US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4,
        "FD": 8, "SV": 8, "UV": 8, "AT": 4}


def skip(message):
    print(f"SKIPPED: {message}")
    sys.exit(77)


class Checker:
    """Compares one file's medveil JSON with its pydicom dataset."""

    def __init__(self, used, path):
        self.problems = []
        self.used = used  # tolerance name -> count, over the whole run
        self.path = path
        self.dcmtk = None  # dcm2json's output for the file, loaded on demand

    def tolerate(self, name):
        tolerate(self.used, name)

    def problem(self, path, kind, detail=""):
        self.problems.append(f"{path}: {kind}" + (f" ({detail})" if detail else ""))

    def dcmtk_node(self, steps):
        """The dataset at steps [(key, item index), ...] in dcm2json's output, or None."""
        if self.dcmtk is None:
            self.dcmtk = {}
            try:
                proc = subprocess.run(["dcm2json", self.path], capture_output=True, timeout=TIMEOUT)
                if proc.returncode == 0:
                    self.dcmtk = json.loads(proc.stdout.decode("utf-8", "replace"))
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        node = self.dcmtk
        for key, index in steps:
            try:
                node = node[key]["Value"][index]
            except (KeyError, IndexError, TypeError):
                return None
        return node if node else None

    # ---- datasets ----

    def dataset(self, mv, pyds, path, bulk_node, little_endian, steps=()):
        from pydicom.dataelem import RawDataElement

        py_tags = []
        for tag in pyds._dict.keys():
            if (tag & 0xFFFF) == 0 or (tag >> 16) == 0x0002:
                continue
            if (tag >> 16) == 0xFFFE:
                self.tolerate("delimiter-as-element")
                continue
            py_tags.append(tag)
        mv_keys = set(mv.keys())
        py_keys = {f"{t:08X}" for t in py_tags}
        if not steps and mv_keys - py_keys == {"7FE00010"} and mv["7FE00010"].get("vr") == "OB" \
                and not self.file_ends_with_delimiter():
            self.tolerate("unterminated-encapsulated")
            mv_keys.discard("7FE00010")
        if mv_keys != py_keys:
            dcmtk = self.dcmtk_node(steps)
            if dcmtk is not None and attribute_keys(dcmtk) == mv_keys:
                self.tolerate("pydicom-structure")
                self.dcmtk_dataset(mv, dcmtk, path)
                return
        for key in sorted(py_keys - mv_keys):
            self.problem(f"{path}{key}", "missing in medveil")
        for key in sorted(mv_keys - py_keys):
            self.problem(f"{path}{key}", "only in medveil")
        for tag in sorted(py_tags):
            key = f"{tag:08X}"
            if key not in mv_keys:
                continue
            raw = pyds._dict[tag]
            raw_bytes, raw_le = None, little_endian
            if isinstance(raw, RawDataElement):
                raw_bytes = raw.value if raw.value is not None else b""
                raw_le = raw.is_little_endian
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    elem = pyds[tag]
            except Exception:  # pydicom could not convert the value
                elem = None
            bulk_el = bulk_node.get(key) if isinstance(bulk_node, dict) else None
            self.element(mv[key], elem, raw_bytes, raw_le, f"{path}{key}", bulk_el, pyds, steps)

    def file_ends_with_delimiter(self):
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8))
            return f.read() == SEQ_DELIM

    def dcmtk_dataset(self, mv, dcmtk, path):
        """Tag sets and values of medveil's output against dcm2json's."""
        mv_keys, dk_keys = attribute_keys(mv), attribute_keys(dcmtk)
        for key in sorted(dk_keys - mv_keys):
            self.problem(f"{path}{key}", "missing in medveil (dcm2json has it)")
        for key in sorted(mv_keys - dk_keys):
            self.problem(f"{path}{key}", "only in medveil (not in dcm2json)")
        self.compare_dcmtk(mv, {k: dcmtk[k] for k in dk_keys & mv_keys}, path)

    def compare_dcmtk(self, mv, dcmtk, path):
        """A plain comparison with dcm2json's output, where pydicom's structure differs."""
        for key in sorted(attribute_keys(dcmtk)):
            a, b = mv[key], dcmtk[key]
            if key == "00080005":
                continue  # dcm2json rewrites Specific Character Set to ISO_IR 192, the JSON's own
            if a.get("vr") != b.get("vr") and "UN" not in (a.get("vr"), b.get("vr")):
                self.problem(f"{path}{key}", "VR", f"medveil {a.get('vr')}, dcmtk {b.get('vr')}")
            elif a.get("vr") != b.get("vr"):
                self.tolerate("un-vs-known-vr")
            elif a.get("vr") == "SQ":
                items_a, items_b = a.get("Value", []), b.get("Value", [])
                if len(items_a) != len(items_b):
                    self.problem(f"{path}{key}", "item count", f"medveil {len(items_a)}, dcmtk {len(items_b)}")
                for i, (x, y) in enumerate(zip(items_a, items_b)):
                    self.dcmtk_dataset(x, y, f"{path}{key}[{i}].")
            elif "InlineBinary" in a and "InlineBinary" in b:
                if a["InlineBinary"] != b["InlineBinary"]:
                    self.problem(f"{path}{key}", "binary", "differs from dcmtk's")
            elif "Value" in a or "Value" in b:
                va, vb = a.get("Value", []), b.get("Value", [])
                if len(va) != len(vb) or not all(
                        x == y or (x is None and y in ("", None)) or
                        (not isinstance(x, (str, dict)) and same_number(x, y, 1e-6)) for x, y in zip(va, vb)):
                    self.problem(f"{path}{key}", f"{a.get('vr')} value", f"medveil {short(va)}, dcmtk {short(vb)}")

    # ---- elements ----

    def element(self, mv_el, elem, raw_bytes, little_endian, path, bulk_el, pyds, steps):
        mv_vr = mv_el.get("vr")
        mv_values = mv_el.get("Value", [])
        if elem is None:
            # pydicom raised: compare against the raw bytes where the VR allows it.
            self.tolerate("pydicom-undecodable")
            if raw_bytes is not None and mv_vr in ("IS", "DS"):
                self.tolerate("bad-number")
                self.raw_numbers(mv_values, raw_bytes, path)
            elif raw_bytes is not None and mv_vr in BINARY_VRS:
                self.binary(mv_el, raw_bytes, mv_vr, little_endian, path, bulk_el, None)
            return
        py_vr = vr_name(elem.VR)
        if mv_vr != py_vr:
            if not self.vr_difference(mv_el, elem, raw_bytes, little_endian, path, bulk_el, pyds):
                self.problem(path, "VR", f"medveil {mv_vr}, pydicom {py_vr}")
            return
        vr = mv_vr
        if vr == "SQ":
            items = list(elem.value) if elem.value is not None else []
            if len(mv_values) != len(items):
                self.problem(path, "item count", f"medveil {len(mv_values)}, pydicom {len(items)}")
                return
            bulk_items = bulk_el.get("Value", []) if isinstance(bulk_el, dict) else []
            for i, (mv_item, py_item) in enumerate(zip(mv_values, items)):
                bulk_item = bulk_items[i] if i < len(bulk_items) else None
                self.dataset(mv_item, py_item, f"{path}[{i}].", bulk_item, little_endian,
                             steps + ((path[-8:], i),))
            return
        if vr in BINARY_VRS:
            self.binary(mv_el, None, vr, little_endian, path, bulk_el, elem)
            return
        py_values = self.py_values(elem)
        if vr == "PN":
            self.person_names(mv_values, py_values, path)
        elif vr in TEXT_VRS:
            if vr not in CHARSET_VRS and raw_bytes is not None and any(b >= 0x80 for b in raw_bytes):
                self.tolerate("non-ascii-default-repertoire")
                py_values = self.decode_raw(raw_bytes, pyds, vr)
            self.strings(mv_values, py_values, vr, path)
        elif vr in ("IS", "DS"):
            self.numbers(mv_values, py_values, path, 0.0)
        elif vr in INT_VRS:
            if elem.tag in (0x00281101, 0x00281102, 0x00281103, 0x00283002) and vr == "SS" and py_values:
                if mv_values and isinstance(mv_values[0], int) and mv_values[0] < 0 \
                        and py_values[0] == mv_values[0] + 65536:
                    self.tolerate("lut-descriptor-first")
                    py_values = [mv_values[0]] + list(py_values[1:])
            self.numbers(mv_values, py_values, path, 0.0)
        elif vr == "FL":
            self.numbers(mv_values, py_values, path, 1e-6)
        elif vr == "FD":
            self.numbers(mv_values, py_values, path, 0.0)
        elif vr == "AT":
            expected = [f"{int(v):08X}" for v in py_values]
            if mv_values != expected:
                self.problem(path, "AT value", f"medveil {mv_values[:4]}, pydicom {expected[:4]}")
        else:
            self.problem(path, "unexpected VR", vr)

    @staticmethod
    def decode_raw(raw_bytes, pyds, vr):
        from pydicom.charset import decode_bytes

        text = decode_bytes(raw_bytes.rstrip(b" \0"), pyds._character_set, {0x5C})
        return [text] if vr in SINGLE_VALUED else text.split("\\")

    def unescape(self, text):
        if "\x1b" not in text:
            return text
        self.tolerate("pydicom-iso2022-escapes")
        return ISO2022_ESCAPE.sub("", text)

    @staticmethod
    def py_values(elem):
        from pydicom.multival import MultiValue

        value = elem.value
        if value is None or (isinstance(value, (str, bytes)) and len(value) == 0):
            return []
        if isinstance(value, (list, tuple, MultiValue)):
            return list(value)
        return [value]

    def vr_difference(self, mv_el, elem, raw_bytes, little_endian, path, bulk_el, pyds):
        """Returns True when a VR difference is a TOLERATED case whose values agree."""
        mv_vr, py_vr = mv_el["vr"], vr_name(elem.VR)
        if mv_vr == "UN" and raw_bytes is not None:
            self.tolerate("un-vs-known-vr")
            self.binary(mv_el, raw_bytes, "UN", True, path, bulk_el, None)
            return True
        if {mv_vr, py_vr} == {"OB", "OW"} or (mv_vr in ("OB", "OW") and py_vr == "OB or OW"):
            self.tolerate("ob-ow")
            self.binary(mv_el, raw_bytes, mv_vr, little_endian, path, bulk_el, elem if raw_bytes is None else None)
            return True
        if py_vr in ("US or SS", "US or SS or OW", "US or OW") and mv_vr in ("US", "SS", "OW"):
            self.tolerate("us-ss-unresolved")
            if mv_vr == "OW":
                self.binary(mv_el, raw_bytes, "OW", little_endian, path, bulk_el, None)
            elif raw_bytes is not None:
                count = len(raw_bytes) // 2
                fmt = ("<" if little_endian else ">") + ("H" if mv_vr == "US" else "h") * count
                expected = list(struct.unpack(fmt, raw_bytes[:count * 2]))
                self.numbers(mv_el.get("Value", []), expected, path, 0.0)
            return True
        return False

    # ---- values ----

    def strings(self, mv_values, py_values, vr, path):
        expected = []
        padded = False
        for v in py_values:
            s = self.unescape(str(v))
            t = s.rstrip(" \0")
            if vr not in ("LT", "ST", "UT"):
                t = t.lstrip(" ")
            if t != s or (s == "" and len(py_values) > 1):
                padded = True
            expected.append(t if t != "" else None)
        if len(expected) == 1 and expected[0] is None:
            expected = []
        if padded:
            self.tolerate("value-padding")
        if mv_values != expected:
            self.problem(path, f"{vr} value", f"medveil {short(mv_values)}, pydicom {short(expected)}")

    def person_names(self, mv_values, py_values, path):
        names = ("Alphabetic", "Ideographic", "Phonetic")
        expected = []
        for v in py_values:
            s = self.unescape(str(v)).strip(" \0")
            if s == "":
                expected.append(None)
                continue
            groups = s.split("=")
            obj = {names[i]: g for i, g in enumerate(groups[:3]) if g != ""}
            expected.append(obj)
        if len(expected) == 1 and expected[0] is None:
            expected = []
        if mv_values != expected:
            self.problem(path, "PN value", f"medveil {short(mv_values)}, pydicom {short(expected)}")

    def numbers(self, mv_values, py_values, path, rel):
        if len(mv_values) != len(py_values):
            self.problem(path, "value count", f"medveil {len(mv_values)}, pydicom {len(py_values)}")
            return
        for i, (a, b) in enumerate(zip(mv_values, py_values)):
            if not same_number(a, b, rel):
                self.problem(path, f"number [{i}]", f"medveil {a!r}, pydicom {b!r}")
                return

    def raw_numbers(self, mv_values, raw_bytes, path):
        text = raw_bytes.decode("latin-1").rstrip(" \0")
        expected = [] if text.strip() == "" else [t.strip(" \0") for t in text.split("\\")]
        if len(mv_values) != len(expected):
            self.problem(path, "value count", f"medveil {len(mv_values)}, raw {len(expected)}")
            return
        for a, t in zip(mv_values, expected):
            if t == "":
                ok = a is None
            elif isinstance(a, str):
                ok = a == t
                try:
                    float(t)
                    ok = False  # a number written as a string
                except ValueError:
                    pass
            else:
                try:
                    ok = float(t) == float(a)
                except ValueError:
                    ok = False
            if not ok:
                self.problem(path, "IS/DS raw value", f"medveil {a!r}, raw {t!r}")
                return

    def binary(self, mv_el, raw_bytes, vr, little_endian, path, bulk_el, elem):
        """Compares InlineBinary (from the run without or with --bulk) with the bytes."""
        if raw_bytes is None and elem is not None:
            raw_bytes = elem.value if isinstance(elem.value, bytes) else None
            if elem.is_undefined_length and raw_bytes is not None:
                self.tolerate("encapsulated-delimiter")
                raw_bytes = raw_bytes + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
        if raw_bytes is None:
            raw_bytes = b""
        expected = raw_bytes
        unit = UNIT.get(vr, 1)
        if not little_endian and unit > 1:
            whole = len(expected) - len(expected) % unit
            expected = b"".join(expected[i:i + unit][::-1] for i in range(0, whole, unit)) + expected[whole:]
        inline = mv_el.get("InlineBinary")
        if inline is None and len(expected) > 0 and isinstance(bulk_el, dict):
            inline = bulk_el.get("InlineBinary")
        if len(expected) == 0:
            if inline not in (None, ""):
                self.problem(path, "binary", "medveil has a value, pydicom none")
            return
        if len(expected) <= BULK_THRESHOLD and mv_el.get("InlineBinary") is None and not (
                elem is not None and elem.is_undefined_length):
            self.problem(path, "binary", f"value of {len(expected)} bytes left out below the threshold")
            return
        if inline is None:
            self.problem(path, "binary", "no InlineBinary even with --bulk")
            return
        try:
            got = base64.b64decode(inline, validate=True)
        except Exception:
            self.problem(path, "binary", "InlineBinary is not base64")
            return
        if got != expected:
            self.problem(path, "binary", f"{len(got)} bytes differ from pydicom's {len(expected)}")


def tolerate(used, name):
    """Counts one use of the TOLERATED case name."""
    assert name in TOLERATED, name
    used[name] = used.get(name, 0) + 1


def attribute_keys(node):
    """Keys of a JSON dataset other than Group Lengths and group 0002."""
    return {k for k in node if not k.endswith("0000") and not k.startswith("0002")}


def vr_name(vr):
    """pydicom 2.x VRs are str enums whose str() is 'VR.OW'; the value is the name."""
    return getattr(vr, "value", vr)


def short(values):
    text = json.dumps(values, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


def same_number(a, b, rel):
    if a is None or b is None:
        return a is None and (b is None or b == "")
    if isinstance(a, str) and isinstance(b, str) and a == b.strip(" \0"):
        return True  # not a number: medveil writes the text (pydicom in IGNORE mode keeps it)
    if isinstance(a, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if a not in special:
            return False
        a = special[a]
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return rel > 0 and abs(a - b) <= rel * max(abs(a), abs(b))


def run_medveil(medveil, path, extra):
    """(status, stdout, stderr); status is 'ok', 'refused', or the failure text."""
    try:
        proc = subprocess.run([medveil, "dump", "--json", *extra, path], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"hang (no exit after {TIMEOUT} s)", b"", b""
    rc = proc.returncode
    if rc < 0 or rc >= 128:
        return f"crash (exit {rc})", proc.stdout, proc.stderr
    if rc == 1:
        lines = proc.stderr.decode("utf-8", "replace").strip("\n").split("\n")
        if len(lines) != 1 or path not in lines[0]:
            return f"exit 1 without a one-line error naming the file ({len(lines)} lines)", proc.stdout, proc.stderr
        return "refused", proc.stdout, proc.stderr
    if rc != 0:
        return f"unexpected exit {rc}", proc.stdout, proc.stderr
    return "ok", proc.stdout, proc.stderr


def parse_json(data):
    text = data.decode("utf-8")  # strict: the output must be valid UTF-8

    def no_constants(name):
        raise ValueError(f"non-JSON constant {name}")

    obj = json.loads(text, parse_constant=no_constants)
    if not isinstance(obj, dict):
        raise ValueError("top level is not an object")
    return obj


def main():
    medveil = os.environ.get("MEDVEIL", "")
    if not medveil:
        skip("MEDVEIL is not set (path of the medveil binary)")
    if not os.access(medveil, os.X_OK):
        skip(f"MEDVEIL={medveil} is not an executable")
    here = os.path.dirname(os.path.abspath(__file__))
    default_corpus = os.path.normpath(os.path.join(here, "..", "..", "shared", "corpus", "dev"))
    corpus = os.environ.get("MV_CORPUS") or default_corpus
    if not os.path.isdir(corpus):
        skip(f"corpus not found at {corpus}")
    try:
        from pydicom import config as pyconfig
    except ImportError:
        skip("pydicom is not installed for /usr/bin/python3 (Debian package python3-pydicom)")
    pyconfig.settings.reading_validation_mode = pyconfig.IGNORE

    files = []
    for folder, dirs, names in os.walk(corpus):
        dirs.sort()
        files.extend(os.path.join(folder, n) for n in sorted(names))

    passed = failed = skipped = 0
    lines = []
    used = {}
    unreadable = []

    def report(text):
        if len(lines) < MAX_LINES:
            lines.append(text)
        elif len(lines) == MAX_LINES:
            lines.append("... (more output cut)")

    for path in files:
        rel = os.path.relpath(path, corpus)
        status, out, err = run_medveil(medveil, path, [])
        mv = None
        problems = []
        if status == "ok":
            try:
                mv = parse_json(out)
            except (UnicodeDecodeError, ValueError) as exc:
                problems.append(f"output is not valid JSON: {exc}")
        elif status != "refused":
            problems.append(f"medveil: {status}")

        pyds, py_error = read_with_pydicom(path, used)

        if pyds is None:
            oracle = "none"
            if mv is not None and not problems:
                # dcmtk's dcm2json as the second oracle, on medveil's --bulk output.
                checker = Checker(used, path)
                dcmtk = checker.dcmtk_node(())
                bstatus, bout, _ = run_medveil(medveil, path, ["--bulk"])
                if dcmtk is not None and bstatus == "ok":
                    oracle = "dcm2json"
                    checker.dcmtk_dataset(parse_json(bout), dcmtk, "")
                    problems = checker.problems
                    if not problems:
                        unreadable.append(f"{rel}: pydicom cannot read it ({py_error}); medveil agrees with "
                                          "dcm2json")
                        passed += 1
                        continue
            unreadable.append(f"{rel}: pydicom cannot read it ({py_error}); medveil {status}, "
                              f"second oracle: {oracle}")
            if problems:
                failed += 1
                report(f"FAIL {rel}")
                for p in problems[:MAX_PER_FILE]:
                    report(f"  {p}")
            else:
                skipped += 1
            continue

        if status == "refused" and not problems:
            if dcmtk_refuses(path):
                tolerate(used, "malformed-refused")
            else:
                problems.append("medveil refused a file pydicom and dcmtk read: "
                                + err.decode("utf-8", "replace").strip()[:200])
        if mv is not None and not problems:
            checker = Checker(used, path)
            bulk = {}
            need_bulk = any("InlineBinary" not in v and v.get("vr") in BINARY_VRS for v in walk_elements(mv))
            if need_bulk:
                bstatus, bout, _ = run_medveil(medveil, path, ["--bulk"])
                try:
                    bulk = parse_json(bout) if bstatus == "ok" else {}
                except (UnicodeDecodeError, ValueError) as exc:
                    problems.append(f"--bulk output is not valid JSON: {exc}")
                if bstatus != "ok":
                    problems.append(f"--bulk run: {bstatus}")
            try:
                checker.dataset(mv, pyds, "", bulk, pyds.is_little_endian is not False)
            except Exception as exc:  # a comparison that pydicom itself cannot finish
                problems.append(f"comparison stopped: {type(exc).__name__}: {exc}"[:200])
            problems = checker.problems + problems
        if problems:
            failed += 1
            report(f"FAIL {rel} ({len(problems)} mismatches)")
            for p in problems[:MAX_PER_FILE]:
                report(f"  {p}")
        else:
            passed += 1

    for text in lines:
        print(text)
    if unreadable:
        print(f"{len(unreadable)} file(s) pydicom cannot read:")
        for text in unreadable[:20]:
            print(f"  {text}")
    if used:
        print("tolerated differences (see TOLERATED in this script):")
        for name in sorted(used):
            print(f"  {name}: {used[name]}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 else 1


def read_with_pydicom(path, used):
    """(dataset, None) or (None, reason). A bare dataset whose bytes 128-131 read "DICM"
    without group 0002 after them is read from offset 0 (TOLERATED "false-dicm")."""
    import pydicom
    from pydicom.filereader import read_dataset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as f:
                head = f.read(140)
            if len(head) >= 140 and head[128:132] == b"DICM" and head[132:134] != b"\x02\x00" \
                    and head[0:2] in (b"\x08\x00", b"\x02\x00"):
                tolerate(used, "false-dicm")
                explicit = head[4:6].isalpha() and head[4:6].isupper()
                with open(path, "rb") as f:
                    ds = read_dataset(f, not explicit, True)
                ds.is_little_endian, ds.is_implicit_VR = True, not explicit
            else:
                ds = pydicom.dcmread(path, force=True)
        if len(ds._dict) == 0:
            raise ValueError("no elements")
        return ds, None
    except Exception as exc:
        return None, type(exc).__name__


def dcmtk_refuses(path):
    """True if dcmtk's dcmdump exits with an error on path (False if dcmtk is absent)."""
    try:
        proc = subprocess.run(["dcmdump", path], capture_output=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode != 0


def walk_elements(obj):
    for value in obj.values():
        if isinstance(value, dict):
            yield value
            if value.get("vr") == "SQ":
                for item in value.get("Value", []):
                    if isinstance(item, dict):
                        yield from walk_elements(item)


if __name__ == "__main__":
    sys.exit(main())
