#!/usr/bin/env python3
"""Independent reader of the keyring format (docs/keys.md), used by tests/test_keys.c.

It reopens a medveil keyring with Python's `cryptography` package only, never with medveil:
checks the SHA-256 line, derives each software KEK's wrapping key with Argon2id, opens the KEK
with AES-256-GCM and the documented associated data, checks the HMAC line under the MAC key,
opens the named key "blind-index" and a data key wrapped by medveil, and compares them with the
values medveil reported.

usage: keys_oracle.py KEYRING PASSFILE EXPECT
EXPECT holds four lines: the wrapped blob in hex, its context, the data key in hex and the
named key "blind-index" in hex. Exit 0 when everything matches, 1 when not, 77 when the
`cryptography` package or an Argon2id implementation is missing.
"""
import hashlib
import hmac
import json
import struct
import sys

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:
    print("SKIP: python3 cryptography is not installed")
    sys.exit(77)


def argon2id(password, salt, t, m_kib, p):
    """Argon2id raw hash of 32 bytes: from `cryptography` (44 and later), else from the
    reference implementation's shared library through ctypes (Debian's python3-cryptography
    38 has no Argon2)."""
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
        return Argon2id(salt=salt, length=32, iterations=t, lanes=p, memory_cost=m_kib).derive(password)
    except ImportError:
        pass
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("argon2") or "libargon2.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        print("SKIP: neither cryptography's Argon2id nor libargon2 is available")
        sys.exit(77)
    out = ctypes.create_string_buffer(32)
    rc = lib.argon2id_hash_raw(ctypes.c_uint32(t), ctypes.c_uint32(m_kib), ctypes.c_uint32(p),
                               password, ctypes.c_size_t(len(password)), salt, ctypes.c_size_t(len(salt)),
                               out, ctypes.c_size_t(32))
    if rc != 0:
        fail("argon2id_hash_raw returned %d" % rc)
    return out.raw

KINDS = {"passphrase": 1, "keyfile": 2, "pkcs11": 3}


def fail(msg):
    print("ORACLE FAIL: " + msg)
    sys.exit(1)


def main():
    keyring_path, pass_path, expect_path = sys.argv[1:4]
    data = open(keyring_path, "rb").read()
    passphrase = open(pass_path, "rb").read()
    blob_hex, context, dek_hex, named_hex = open(expect_path).read().split("\n")[:4]

    lines = data.split(b"\n")
    if len(lines) != 4 or lines[3] != b"":
        fail("the keyring is not three lines")
    body, mac_line, sum_line = lines[0] + b"\n", lines[1], lines[2]
    if sum_line != b"sha256 " + hashlib.sha256(body + mac_line + b"\n").hexdigest().encode():
        fail("checksum line")
    doc = json.loads(body)
    if doc["format"] != "medveil-keyring" or doc["format_version"] != 1:
        fail("format")
    keyring_id = bytes.fromhex(doc["id"])

    keks = {}
    for v in doc["versions"]:
        if v["state"] == "retired":
            continue
        if v["kind"] != "passphrase":
            fail("this oracle opens passphrase versions only")
        kdf = v["kdf"]
        wk = argon2id(passphrase, bytes.fromhex(v["salt"]), kdf["t"], kdf["m_kib"], kdf["p"])
        aad = b"medveil-kek\0" + keyring_id + struct.pack(">I", v["version"]) + bytes([KINDS[v["kind"]]])
        keks[v["version"]] = AESGCM(wk).decrypt(bytes.fromhex(v["nonce"]), bytes.fromhex(v["wrapped"]), aad)

    def unwrap(blob, domain, ctx):
        if blob[0] != 1:
            fail("blob format byte")
        version = struct.unpack(">I", blob[1:5])[0]
        aad = b"medveil-wrap\0" + bytes([domain]) + keyring_id + blob[:5] + ctx.encode()
        return AESGCM(keks[version]).decrypt(blob[5:17], blob[17:], aad)

    mac_key = unwrap(bytes.fromhex(doc["mac_key"]), 1, "keyring-mac")
    if mac_line != b"hmac-sha256 " + hmac.new(mac_key, body, hashlib.sha256).hexdigest().encode():
        fail("HMAC line")
    if unwrap(bytes.fromhex(doc["named"]["blind-index"]), 1, "named:blind-index").hex() != named_hex:
        fail("named key blind-index")
    if unwrap(bytes.fromhex(blob_hex), 0, context).hex() != dek_hex:
        fail("data key")
    print("oracle: %d KEK version(s), HMAC, named key and data key all open independently" % len(keks))


if __name__ == "__main__":
    main()
