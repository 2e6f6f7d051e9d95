#!/usr/bin/env python3
"""Independent reader of the vault blob format (docs/vault.md "Objects"), written from the
documentation with the Python `cryptography` package, not from src/vault/aead.c. Used by
tests/test_vault_aead.c as an oracle: it decrypts BLOB with the hex KEY and prints the
SHA-256 of the plaintext, or exits 1 naming what failed.

usage: blob_oracle.py KEY_HEX BLOB
"""
import hashlib
import struct
import sys

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.exceptions import InvalidTag
except ImportError:
    print("SKIP: python3-cryptography is missing")
    sys.exit(77)


def main():
    key = bytes.fromhex(sys.argv[1])
    data = open(sys.argv[2], "rb").read()
    header = data[:64]
    if header[:8] != b"MVVAULT\0":
        print("bad magic")
        return 1
    version, header_len, chunk = struct.unpack(">HHI", header[8:16])
    (length,) = struct.unpack(">Q", header[16:24])
    prefix = header[40:44]
    if version != 1 or header_len != 64 or header[44:64] != bytes(20):
        print("bad header")
        return 1
    n_chunks = length // chunk + 1
    if len(data) != 64 + n_chunks * 16 + length:
        print("bad size")
        return 1
    aes = AESGCM(key)
    out = bytearray()
    pos = 64
    for i in range(n_chunks):
        last = i == n_chunks - 1
        clen = (length - i * chunk) if last else chunk
        nonce = prefix + struct.pack(">Q", i)
        aad = header + struct.pack(">Q", i) + (b"\x01" if last else b"\x00")
        try:
            out += aes.decrypt(nonce, data[pos:pos + clen + 16], aad)
        except InvalidTag:
            print("chunk %d fails authentication" % i)
            return 1
        pos += clen + 16
    print(hashlib.sha256(out).hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
