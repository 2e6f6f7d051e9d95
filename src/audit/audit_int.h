/* Private declarations of the audit module: the subtree-hash provider that proof generation
 * uses, base64 helpers, and the storage layout of HOME/audit. */
#ifndef MV_AUDIT_INT_H
#define MV_AUDIT_INT_H

#include <stdint.h>

#include "medveil/audit.h"

/* Leaves per cached subtree in nodes.bin (a power of two). */
#define MV__AUDIT_CHUNK 256u

/* Computes MTH of leaves [lo, hi) (hi > lo) into out; returns MV_OK or an error. */
typedef MvStatus (*MvSubtreeFn)(void *ctx, uint64_t lo, uint64_t hi, uint8_t out[MV_AUDIT_HASH_BYTES],
                                MvError *err);

/* A reusable SHA-256 context for bulk hashing (one per thread at a time). */
typedef struct MvHasher {
    void *ctx; /* EVP_MD_CTX */
} MvHasher;
MvStatus mv__hasher_init(MvHasher *h, MvError *err);
void mv__hasher_free(MvHasher *h);
void mv__hash_leaf(MvHasher *h, const void *data, size_t len, uint8_t out[MV_AUDIT_HASH_BYTES]);
void mv__hash_node(MvHasher *h, const uint8_t *left, const uint8_t *right, uint8_t out[MV_AUDIT_HASH_BYTES]);
/* MTH of n in-memory leaf hashes (n >= 1). */
void mv__merkle_root_mem(MvHasher *h, const uint8_t *leaves, uint64_t n, uint8_t out[MV_AUDIT_HASH_BYTES]);

/* The largest power of two strictly smaller than n (n >= 2). */
uint64_t mv__merkle_split(uint64_t n);
/* RFC 6962 2.1.1 PATH(index, D[lo:hi]) appended to out (room for 64 hashes), *n_out updated. */
MvStatus mv__merkle_path(MvSubtreeFn fn, void *ctx, uint64_t index, uint64_t lo, uint64_t hi, uint8_t *out,
                         size_t *n_out, MvError *err);
/* RFC 6962 2.1.2 PROOF(m, D[0:n]) into out (room for 128 hashes), *n_out set. 1 <= m <= n. */
MvStatus mv__merkle_proof(MvSubtreeFn fn, void *ctx, uint64_t m, uint64_t n, uint8_t *out, size_t *n_out,
                          MvError *err);

/* Standard base64 (with padding). Encode: out needs 4 * ((len + 2) / 3) + 1 bytes, NUL-ended.
 * Decode: strict (padding required, no spaces); returns the length or -1. out needs len*3/4. */
void mv__b64_encode(const uint8_t *in, size_t len, char *out);
long mv__b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* A growable byte buffer. */
typedef struct MvBuf {
    char *data;
    size_t len, cap;
} MvBuf;
MvStatus mv__buf_reserve(MvBuf *b, size_t more, MvError *err);

/* Appends the canonical line of ev (no newline) to b; on failure b is as before. actor
 * replaces ev->actor. MV_ERR_ARG when a text is not valid UTF-8. (event.c) */
MvStatus mv__event_encode(MvBuf *b, const MvAuditEvent *ev, const char *actor, uint64_t seq, const char *time_s,
                          const char *host, MvError *err);
/* 1 when the NUL-terminated s is valid UTF-8 (RFC 3629), as jansson requires of strings. */
int mv__utf8_valid(const char *s);
/* 1 when line is exactly the canonical encoding of an event with this seq (the contract's keys,
 * in order, canonical strings, outcome one of three); else 0 with a reason in why. */
int mv__event_check(const char *line, size_t len, uint64_t seq, char *why, size_t why_len);

/* Ed25519 verifier keys and signed-note checks (checkpoint.c). */
typedef struct MvNoteKey {
    char name[256];
    uint8_t key_id[4];
    uint8_t pub[32];
} MvNoteKey;
/* Parses a "NAME+KEYID+BASE64(0x01||pub)" line or a PEM public key (name then ""). */
MvStatus mv__note_key_parse(const char *text, MvNoteKey *key, MvError *err);
/* key id = SHA-256(name || 0x0A || 0x01 || pub)[0:4] (C2SP signed-note, Ed25519). */
void mv__note_key_id(const char *name, const uint8_t pub[32], uint8_t id[4]);
/* The length of the first complete note at text[0..len) (body, blank line, signature lines),
 * or 0 if there is none. */
size_t mv__note_length(const char *text, size_t len);

#endif
