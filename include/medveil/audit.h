/* Tamper-evident audit log: every action is one leaf of an RFC 6962 Merkle tree kept in the
 * home folder, tree heads are signed with Ed25519 as C2SP tlog-checkpoint notes, and inclusion
 * and consistency proofs let anyone holding the public key check the log offline.
 *
 * ON-DISK CONTRACT (other modules and external tools rely on it; see docs/audit.md):
 *   HOME/audit/events.jsonl   one event per line, '\n'-terminated, append-only. Leaf i of the
 *                             Merkle tree is exactly the bytes of line i (0-based) without its '\n'.
 *   Each line is canonical JSON: jansson json_dumps(JSON_COMPACT | JSON_SORT_KEYS |
 *   JSON_ENSURE_ASCII): no spaces, keys sorted by byte value, every non-ASCII character as a
 *   \uXXXX escape, so a line is pure ASCII and re-encoding a parsed line gives the same bytes.
 *   Keys:
 *     "action"   string, e.g. "vault.put", "vault.get", "vault.ls", "vault.rm",
 *                "vault.forget-patient", "vault.rotate", "vault.backup", "vault.restore",
 *                "vault.init", "deid", "reidentify", "auth.unlock", "audit.alert", "audit.export"
 *                (any [a-z0-9.-]+ is accepted, so new writers need no change here)
 *     "actor"    the OS user name, or the identity given with --as
 *     "objects"  array of strings: opaque vault ids or UIDs, never names or patient IDs
 *     "outcome"  "success" | "failure" | "denied"
 *     "purpose"  string; the key is omitted when there is none
 *     "detail"   short text without patient data; omitted when there is none
 *     "time"     RFC 3339 UTC with microseconds, "2026-11-27T07:30:00.123456Z"
 *     "seq"      the leaf index (integer, equal to the 0-based line number)
 *     "host"     the host name of the machine that appended the event
 *   Hashing (RFC 6962 section 2.1): leaf hash SHA-256(0x00 || line), interior node
 *   SHA-256(0x01 || left || right), MTH of the empty tree SHA-256("").
 *   HOME/audit/checkpoints.log  every signed checkpoint, appended in order (C2SP tlog-checkpoint
 *                             notes, each self-delimited by its signature lines).
 *   HOME/audit/leaves.bin, nodes.bin, offsets.bin: derived caches (leaf hashes, 256-leaf subtree
 *                             hashes, line end offsets); rebuilt from events.jsonl when short.
 *   HOME/audit/signing.key (PKCS#8 PEM, mode 0600), signing.pub (PEM), signing.vkey (C2SP
 *                             verifier key line "NAME+KEYID+BASE64(0x01||pub)").
 */
#ifndef MEDVEIL_AUDIT_H
#define MEDVEIL_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MV_AUDIT_HASH_BYTES 32

/* ---------------------------------------------------------------------------------------------
 * RFC 6962 / RFC 9162 Merkle hashing and proof verification. Pure functions, no state.
 * ------------------------------------------------------------------------------------------- */

/* out = SHA-256(0x00 || data[0..len)). */
void mv_merkle_leaf_hash(const void *data, size_t len, uint8_t out[MV_AUDIT_HASH_BYTES]);
/* out = SHA-256(0x01 || left || right); out may alias left or right. */
void mv_merkle_node_hash(const uint8_t left[MV_AUDIT_HASH_BYTES], const uint8_t right[MV_AUDIT_HASH_BYTES],
                         uint8_t out[MV_AUDIT_HASH_BYTES]);
/* out = MTH of the n leaf hashes in leaf_hashes (n * 32 bytes; NULL allowed when n is 0). */
void mv_merkle_root(const uint8_t *leaf_hashes, uint64_t n, uint8_t out[MV_AUDIT_HASH_BYTES]);

/* Decodes n base64 strings (standard alphabet, padded) into *out (malloc'd, 32 bytes per hash;
 * NULL when n is 0), the flat form the two verifiers take. Every element must decode to exactly
 * 32 bytes: an empty, short or long element makes the proof malformed (MV_ERR_PARSE). */
MvStatus mv_merkle_proof_decode(const char *const *b64, size_t n, uint8_t **out, MvError *err);

/* Verifies an inclusion proof (RFC 9162 section 2.1.3.2): that the leaf with hash leaf_hash
 * is leaf number index of the tree of size tree_size whose root is root. proof is the audit
 * path, proof_len bytes (a multiple of 32). Lengths are explicit because proofs come from
 * untrusted files: a hash of the wrong length is a failed proof, not a crash.
 * Returns MV_OK when the proof holds, MV_ERR_INTEGRITY (with a reason in err) otherwise. */
MvStatus mv_merkle_verify_inclusion(uint64_t index, uint64_t tree_size, const uint8_t *leaf_hash,
                                    size_t leaf_hash_len, const uint8_t *proof, size_t proof_len,
                                    const uint8_t *root, size_t root_len, MvError *err);

/* Verifies a consistency proof (RFC 9162 section 2.1.4.2) that the tree of size size1 with
 * root root1 is a prefix of the tree of size size2 with root root2. size1 must be at least 1
 * (every tree extends the empty one; such a "proof" proves nothing and is refused). When
 * size1 == size2 the proof must be empty and the roots equal. Returns MV_OK or
 * MV_ERR_INTEGRITY. */
MvStatus mv_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t *proof, size_t proof_len,
                                      const uint8_t *root1, size_t root1_len, const uint8_t *root2,
                                      size_t root2_len, MvError *err);

/* ---------------------------------------------------------------------------------------------
 * Checkpoints (C2SP tlog-checkpoint + signed-note, Ed25519).
 * ------------------------------------------------------------------------------------------- */

typedef struct MvAuditCheckpoint {
    char origin[256];                   /* first line of the note */
    uint64_t size;                      /* tree size */
    uint8_t root[MV_AUDIT_HASH_BYTES];  /* root hash */
} MvAuditCheckpoint;

/* Parses a checkpoint note of len bytes and verifies that it carries a valid Ed25519 signature
 * by the key of vkey (a verifier key line "NAME+KEYID+BASE64", as written to signing.vkey, or
 * a PEM public key with the name taken from the note's origin). Signature lines of other keys
 * are ignored, as signed-note allows. Fills *out. Returns MV_OK, MV_ERR_PARSE (malformed
 * note or key) or MV_ERR_INTEGRITY (no valid signature by this key). */
MvStatus mv_audit_checkpoint_verify(const char *note, size_t len, const char *vkey, MvAuditCheckpoint *out,
                                    MvError *err);

/* ---------------------------------------------------------------------------------------------
 * The log in HOME/audit.
 * ------------------------------------------------------------------------------------------- */

typedef struct MvAuditLog MvAuditLog;

/* One event. To append, fill the first seven fields: strings are copied into the log line and
 * the struct is not kept. The last four are what the log assigns (time, seq, host); append
 * ignores them, and readers of the log (include/medveil/audit_export.h) fill them: this is the
 * one event type of both headers. */
typedef struct MvAuditEvent {
    const char *action;         /* required, [a-z0-9.-]+ */
    const char *actor;          /* NULL: the OS user of the effective uid */
    const char *const *objects; /* opaque ids or UIDs; may be NULL when n_objects is 0 */
    size_t n_objects;
    const char *outcome;        /* "success", "failure" or "denied" (NULL: "success") */
    const char *purpose;        /* may be NULL */
    const char *detail;         /* may be NULL; never patient data */
    const char *time;           /* read: RFC 3339 UTC as written; ignored by append */
    int64_t time_us;            /* read: microseconds since 1970-01-01T00:00:00Z; ignored by append */
    int64_t seq;                /* read: leaf index, -1 when absent; ignored by append */
    const char *host;           /* read: may be NULL; ignored by append */
} MvAuditEvent;

enum {
    MV_AUDIT_CREATE = 1u << 0,   /* create HOME/audit, the log and the signing key if missing */
    MV_AUDIT_READONLY = 1u << 1, /* never write (no recovery, no key creation): verify, log, prove */
    MV_AUDIT_NOSYNC = 1u << 2    /* skip fdatasync (tests and benchmarks only: NOT durable) */
};

/* Opens the log of home. Unless MV_AUDIT_READONLY, takes the lock, recovers from a crash (a
 * torn last line, never acknowledged, is cut off; the caches are truncated or re-derived to
 * match events.jsonl) and releases the lock. checkpoint_every: after an append batch, sign a
 * new checkpoint when at least this many events are not yet covered by one (0: only when
 * mv_audit_checkpoint_sign is called; 1: after every batch). On success *out owns the log;
 * free it with mv_audit_close. MV_ERR_NOTFOUND when the log does not exist and CREATE is not
 * given. */
MvStatus mv_audit_open(const char *home, unsigned flags, uint64_t checkpoint_every, MvAuditLog **out,
                       MvError *err);
/* Closes the log; NULL is accepted. Waits for nothing: every append has returned by then. */
void mv_audit_close(MvAuditLog *log);

/* Appends n events as one batch, durably (write, then fdatasync of events.jsonl and the caches,
 * under an exclusive flock of HOME/audit/lock so that processes serialize) before returning.
 * Thread-safe: concurrent callers on one MvAuditLog share one write and one fsync (group
 * commit: one thread leads, the others wait for its result). On MV_OK, *first_seq (may be
 * NULL) is the index of the first appended event and nothing acknowledged can be lost; on any
 * failure no event of the batch may be relied on (a later open cuts a torn tail). */
MvStatus mv_audit_append(MvAuditLog *log, const MvAuditEvent *events, size_t n, uint64_t *first_seq,
                         MvError *err);

/* Durable commits (rounds of fdatasync) made through this handle: with group commit, fewer
 * than the appends. For benchmarks and tests. */
uint64_t mv_audit_commit_count(const MvAuditLog *log);

/* The number of events (the tree size) as of the last open, append or refresh. */
uint64_t mv_audit_size(const MvAuditLog *log);
/* Re-reads the size of the log on disk (another process may have appended). */
MvStatus mv_audit_refresh(MvAuditLog *log, MvError *err);
/* The MTH of the first size leaves (size <= mv_audit_size). */
MvStatus mv_audit_root(MvAuditLog *log, uint64_t size, uint8_t root[MV_AUDIT_HASH_BYTES], MvError *err);
/* The hash of leaf index. */
MvStatus mv_audit_leaf_hash(MvAuditLog *log, uint64_t index, uint8_t out[MV_AUDIT_HASH_BYTES], MvError *err);

/* The inclusion proof (RFC 6962 section 2.1.1 PATH) of leaf index in the tree of size size.
 * *proof (malloc'd, 32 bytes per hash, *n_hashes hashes; NULL when 0) belongs to the caller. */
MvStatus mv_audit_prove_inclusion(MvAuditLog *log, uint64_t index, uint64_t size, uint8_t **proof,
                                  size_t *n_hashes, MvError *err);
/* The consistency proof (RFC 6962 section 2.1.2 PROOF) between sizes old_size (>= 1) and
 * new_size; ownership as above. */
MvStatus mv_audit_prove_consistency(MvAuditLog *log, uint64_t old_size, uint64_t new_size, uint8_t **proof,
                                    size_t *n_hashes, MvError *err);

/* Signs a checkpoint of the current size (if the newest stored one has another size), appends
 * it durably to checkpoints.log and returns the note text in *note (malloc'd, the caller frees
 * it). Needs a writable log. */
MvStatus mv_audit_checkpoint_sign(MvAuditLog *log, char **note, MvError *err);
/* The newest stored checkpoint note (malloc'd), or MV_ERR_NOTFOUND when none was signed yet. */
MvStatus mv_audit_checkpoint_latest(MvAuditLog *log, char **note, MvError *err);
/* The newest stored checkpoint of tree size size whose signature verifies with the log's key
 * (malloc'd), or MV_ERR_NOTFOUND: so that a consistency proof from an old size can be checked
 * against the checkpoint signed back then. */
MvStatus mv_audit_checkpoint_find(MvAuditLog *log, uint64_t size, char **note, MvError *err);
/* The verifier key line ("NAME+KEYID+BASE64") or, with pem set, the PEM public key; malloc'd. */
MvStatus mv_audit_public_key(MvAuditLog *log, int pem, char **text, MvError *err);

/* Calls fn for each event from index first on, in order, with the exact line bytes (no '\n').
 * fn returns 0 to go on, anything else to stop (returned as MV_OK). Reads a consistent prefix
 * even while another process appends. */
typedef int (*MvAuditEventFn)(uint64_t seq, const char *line, size_t len, void *ctx);
MvStatus mv_audit_foreach(MvAuditLog *log, uint64_t first, MvAuditEventFn fn, void *ctx, MvError *err);

/* Result of a full verification. */
typedef struct MvAuditVerifyReport {
    uint64_t size;                      /* events read */
    uint64_t n_checkpoints;             /* stored checkpoints checked */
    uint8_t root[MV_AUDIT_HASH_BYTES];  /* MTH of all events */
    uint64_t n_unsigned;                /* events after the newest checkpoint (not yet signed) */
    uint64_t bad_position;              /* first bad leaf index, UINT64_MAX if none */
    uint64_t bad_position_last;         /* the first change lies in [bad_position, this]; equal
                                           when it is known exactly */
    char reason[512];                   /* why it failed, empty on success */
} MvAuditVerifyReport;

/* Recomputes every leaf and the tree from events.jsonl alone (each line must be canonical
 * JSON with the contract's keys and seq equal to its index), compares with the caches, checks
 * the signature of every stored checkpoint with the log's public key (or with vkey when not
 * NULL: a key held outside HOME, as a witness would) and that its root is the MTH of the
 * events up to its size (so each is consistent with the next), and that the newest one
 * covers the whole log. With anchor (a checkpoint note kept elsewhere, may be NULL), checks
 * that the log still extends it. Returns MV_OK, MV_ERR_INTEGRITY with rep filled (the first
 * bad position), or another status when the log cannot be read. */
MvStatus mv_audit_verify(MvAuditLog *log, const char *vkey, const char *anchor, size_t anchor_len,
                         MvAuditVerifyReport *rep, MvError *err);

#ifdef __cplusplus
}
#endif
#endif
