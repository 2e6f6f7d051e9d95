#!/usr/bin/env python3
"""Independent oracle for the audit log, used by tests/t_audit.sh: written from RFC 6962,
RFC 9162 and the C2SP tlog-checkpoint / signed-note texts with hashlib only, sharing no code
with medveil. Subcommands (exit 0 when the check holds, 1 otherwise):

  canonical EVENTS            every line is sorted-key compact ASCII JSON with seq = line index
  root EVENTS CHECKPOINT      the MTH of all lines equals the checkpoint's root and size
  keyid VKEY CHECKPOINT       the vkey's key id is SHA-256(name \\n 0x01 pub)[:4], and the
                              checkpoint's signature line names that key id; writes body and
                              signature next to CHECKPOINT (.body, .sig) for openssl
  inclusion PROOF EVENTS CHECKPOINT   verify a text proof of `audit prove inclusion`
  consistency PROOF OLD NEW           verify a text proof of `audit prove consistency`
"""
import base64
import hashlib
import json
import sys


def leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):
    """RFC 6962 section 2.1, literally: split at the largest power of two below n."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def lines(path):
    data = open(path, "rb").read()
    assert data.endswith(b"\n"), "events.jsonl does not end with a newline"
    return data[:-1].split(b"\n") if data else []


def checkpoint(path):
    text = open(path, "rb").read()
    body, _, sigs = text.partition(b"\n\n")
    origin, size, root = body.split(b"\n")[:3]
    return text, body + b"\n", origin.decode(), int(size), base64.b64decode(root, validate=True), sigs


def cmd_canonical(events):
    for i, line in enumerate(lines(events)):
        obj = json.loads(line)
        again = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        if again != line:
            print(f"line {i} is not canonical")
            return 1
        if obj["seq"] != i or obj["outcome"] not in ("success", "failure", "denied"):
            print(f"line {i}: bad seq or outcome")
            return 1
        missing = {"action", "actor", "objects", "outcome", "time", "seq", "host"} - obj.keys()
        if missing:
            print(f"line {i}: missing {missing}")
            return 1
    return 0


def cmd_root(events, ckpt):
    _, _, _, size, root, _ = checkpoint(ckpt)
    hashes = [leaf(l) for l in lines(events)][:size]
    if len(hashes) != size or mth(hashes) != root:
        print(f"root mismatch: size {size}, {len(hashes)} events")
        return 1
    return 0


def cmd_keyid(vkey, ckpt):
    name, keyid_hex, b64 = open(vkey).read().strip().split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == 1 and len(raw) == 33, "not an Ed25519 verifier key"
    want = hashlib.sha256(name.encode() + b"\n" + b"\x01" + raw[1:]).digest()[:4]
    if want.hex() != keyid_hex:
        print("the key id of the vkey is wrong")
        return 1
    _, body, origin, _, _, sigs = checkpoint(ckpt)
    line = sigs.decode().splitlines()[0]
    dash, sig_name, sig_b64 = line.split(" ")
    blob = base64.b64decode(sig_b64)
    if dash != "\u2014" or sig_name != name or origin != name or blob[:4] != want or len(blob) != 68:
        print("the signature line does not name the key")
        return 1
    open(ckpt + ".body", "wb").write(body)
    open(ckpt + ".sig", "wb").write(blob[4:])
    return 0


def read_proof(path):
    fields, hashes = {}, []
    for ln in open(path).read().splitlines():
        k, v = ln.split(" ", 1)
        if k == "hash":
            hashes.append(base64.b64decode(v))
        else:
            fields[k] = v
    return fields, hashes


def verify_inclusion(index, size, leaf_hash, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1, size2, proof, root1, root2):
    """RFC 9162 section 2.1.4.2."""
    if size1 == 0 or size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if not proof:
        return False
    if size1 & (size1 - 1) == 0:
        proof = [root1] + proof
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


def cmd_inclusion(proof_path, events, ckpt):
    fields, hashes = read_proof(proof_path)
    _, _, _, size, root, _ = checkpoint(ckpt)
    index = int(fields["index"])
    ev = lines(events)[index]
    ok = int(fields["size"]) == size and base64.b64decode(fields["leaf-hash"]) == leaf(ev)
    ok = ok and verify_inclusion(index, size, leaf(ev), hashes, root)
    # A different event must not verify with the same path.
    other = lines(events)[(index + 1) % size]
    ok = ok and not verify_inclusion(index, size, leaf(other), hashes, root)
    return 0 if ok else 1


def cmd_consistency(proof_path, old, new):
    fields, hashes = read_proof(proof_path)
    _, _, _, s1, r1, _ = checkpoint(old)
    _, _, _, s2, r2, _ = checkpoint(new)
    ok = int(fields["old-size"]) == s1 and int(fields["new-size"]) == s2
    return 0 if ok and verify_consistency(s1, s2, hashes, r1, r2) else 1


def main(argv):
    cmds = {"canonical": cmd_canonical, "root": cmd_root, "keyid": cmd_keyid,
            "inclusion": cmd_inclusion, "consistency": cmd_consistency}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__)
        return 2
    return cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
