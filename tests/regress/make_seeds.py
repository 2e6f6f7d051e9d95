#!/usr/bin/python3
"""Writes the hand-made malformed inputs of tests/regress/ (the seed-* files): each one a
few dozen bytes that drives the reader down one error path. The reader must refuse each of
them cleanly or read it and write it back (tests/regress_runner.c checks which), and they
seed the fuzzer (make fuzz). Run from anywhere: python3 tests/regress/make_seeds.py
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

UNDEFINED = 0xFFFFFFFF
KNOWN_VRS = set(b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN "
                b"UR US UT UV".split())
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


def tag(group, element, be=False):
    return struct.pack(">HH" if be else "<HH", group, element)


def el(group, element, vr, value=b"", length=None, be=False):
    """An explicit VR element; length overrides the real value length (lies allowed). An
    unknown VR gets the 12-byte header, as the reader expects (PS3.5 7.1.2)."""
    n = len(value) if length is None else length
    order = ">" if be else "<"
    if vr in LONG_VRS or not vr.isalpha() or vr not in KNOWN_VRS:
        return tag(group, element, be) + vr + b"\0\0" + struct.pack(order + "I", n) + value
    return tag(group, element, be) + vr + struct.pack(order + "H", n) + value


def implicit(group, element, value=b"", length=None):
    n = len(value) if length is None else length
    return tag(group, element) + struct.pack("<I", n) + value


def item(body=b"", length=None):
    n = len(body) if length is None else length
    return tag(0xFFFE, 0xE000) + struct.pack("<I", n) + body


ITEM_DELIM = tag(0xFFFE, 0xE00D) + b"\0\0\0\0"
SEQ_DELIM = tag(0xFFFE, 0xE0DD) + b"\0\0\0\0"


def uid(text):
    raw = text.encode()
    return raw + b"\0" if len(raw) % 2 else raw


def part10(ts_uid, dataset, preamble=True):
    """128-byte preamble, DICM, a File Meta Information group naming ts_uid, dataset."""
    meta = el(0x0002, 0x0001, b"OB", b"\0\1") + el(0x0002, 0x0010, b"UI", uid(ts_uid))
    head = (b"\0" * 128 if preamble else b"") + b"DICM"
    return head + el(0x0002, 0x0000, b"UL", struct.pack("<I", len(meta))) + meta + dataset


EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG = "1.2.840.10008.1.2.4.50"

PATIENT_NAME = el(0x0010, 0x0010, b"PN", b"DOE^J ")


def nested(depth):
    """depth sequences of undefined length, each in an item of undefined length."""
    out = b""
    for _ in range(depth):
        out += el(0x0040, 0xA730, b"SQ", length=UNDEFINED) + item(length=UNDEFINED)
    out += el(0x0040, 0xA010, b"CS", b"HAS ")
    for _ in range(depth):
        out += ITEM_DELIM + SEQ_DELIM
    return out


SEEDS = {
    # The header of the first meta element stops after 5 of its 8 bytes.
    "seed-truncated-header": (b"\0" * 128 + b"DICM" + el(0x0002, 0x0000, b"UL", struct.pack("<I", 30)))[:137],
    # A bare dataset whose only element stops inside its 8-byte header.
    "seed-truncated-bare-dataset": tag(0x0008, 0x0005) + b"CS",
    # (0010,0010) declares 4096 bytes; 6 follow.
    "seed-length-past-end": part10(EXPLICIT_LE, el(0x0010, 0x0010, b"PN", b"DOE^J ", length=4096)),
    # A 32-bit length in an OB element near 4 GiB.
    "seed-length-4gib": part10(EXPLICIT_LE, el(0x0009, 0x1001, b"OB", b"\0" * 8, length=0xFFFFFFF0)),
    # An item declares more bytes than its sequence holds.
    "seed-item-longer-than-sequence": part10(
        EXPLICIT_LE, el(0x0008, 0x1115, b"SQ", item(PATIENT_NAME, length=64))),
    # 70 levels of sequences, past the cap of 64 (regress_runner and fuzz_read read with 64).
    "seed-deep-nesting": part10(EXPLICIT_LE, nested(70)),
    # The same in implicit VR: (0040,A730) is SQ in the dictionary.
    "seed-deep-nesting-implicit": part10(
        IMPLICIT_LE,
        b"".join(implicit(0x0040, 0xA730, length=UNDEFINED) + item(length=UNDEFINED) for _ in range(70))),
    # An item of undefined length that the data ends in, without its delimiter.
    "seed-undefined-item-no-delimiter": part10(
        EXPLICIT_LE, el(0x0008, 0x1115, b"SQ", length=UNDEFINED) + item(PATIENT_NAME, length=UNDEFINED)),
    # A sequence of undefined length with a closed item but no Sequence Delimitation Item.
    "seed-undefined-sequence-no-delimiter": part10(
        EXPLICIT_LE, el(0x0008, 0x1115, b"SQ", length=UNDEFINED) + item(PATIENT_NAME + ITEM_DELIM, length=UNDEFINED)),
    # Something other than an item inside a sequence.
    "seed-sequence-without-items": part10(EXPLICIT_LE, el(0x0008, 0x1115, b"SQ", PATIENT_NAME)),
    # Undefined length on a VR that cannot have it.
    "seed-undefined-length-on-ut": part10(EXPLICIT_LE, PATIENT_NAME + el(0x0010, 0x4000, b"UT", length=UNDEFINED)
                                          + SEQ_DELIM),
    # Encapsulated pixel data: a fragment runs past the end.
    "seed-fragment-past-end": part10(
        JPEG, el(0x7FE0, 0x0010, b"OB", length=UNDEFINED) + item() + item(b"\xFF\xD8", length=1000)),
    # Deflated transfer syntax with bytes that are not a deflate stream.
    "seed-bad-deflate": part10(DEFLATED, b"\xFF\xFE\xFD\xFC not deflate \x00\x01\x02\x03"),
    # A deflate stream cut short: what inflates ends inside an element.
    "seed-truncated-deflate": part10(DEFLATED, zlib.compress(PATIENT_NAME * 8)[2:-4][:20]),
    # A stray item tag at the top level.
    "seed-item-at-top-level": part10(EXPLICIT_LE, PATIENT_NAME + item(b"\0" * 8)),
    # Odd lengths and an unknown VR, which the reader takes with a warning and the writer
    # must re-encode.
    "seed-odd-length-unknown-vr": part10(
        EXPLICIT_LE, el(0x0008, 0x0020, b"DA", b"2024010") + el(0x0009, 0x1010, b"ZZ", b"\1\2\3\4")),
    # A meta group that claims big endian, then a dataset that is not.
    "seed-meta-big-endian-dataset-little": part10("1.2.840.10008.1.2.2", PATIENT_NAME),
    # Only the preamble and DICM.
    "seed-dicm-only": b"\0" * 128 + b"DICM",
    # An empty file.
    "seed-empty": b"",
}


def main():
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        print("%-40s %5d bytes" % (name, len(data)))


if __name__ == "__main__":
    main()
