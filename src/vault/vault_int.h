/* Private parts of the vault shared by the files of src/vault: the chunked AEAD blob format
 * (aead.c), small-secret sealing and blind indexes (aead.c), and the vault handle itself. */
#ifndef MV_VAULT_INT_H
#define MV_VAULT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "core/core_int.h"
#include "medveil/keys.h"
#include "medveil/vault.h"

/* ---- Blob format (docs/vault.md "Objects") ------------------------------------------
 * A blob is a 64-byte header, then chunks. Chunk i holds bytes [i*C, (i+1)*C) of the
 * plaintext, encrypted with AES-256-GCM under the object's data key, followed by its 16-byte
 * tag. Every chunk but the last holds exactly C bytes; the last holds 0 to C-1 bytes, so an
 * object of L bytes has L/C + 1 chunks and a full-size chunk is never the last one.
 *   nonce(i) = nonce prefix (4 random bytes of the header) || i as 64-bit big endian
 *   AAD(i)   = the 64 header bytes || i as 64-bit big endian || 1 if last else 0
 * The header holds the object id, so chunks cannot move between objects, positions or
 * lengths, and the object cannot be cut short. Header layout (big endian):
 *   0 magic "MVVAULT\0"   8 format version (1)   10 header length (64)   12 chunk size C
 *   16 plaintext length (all ones: not known in advance, a streamed archive)
 *   24 object id (16 bytes)   40 nonce prefix (4 bytes)   44 zero (20 bytes) */
#define MV__BLOB_MAGIC "MVVAULT"
#define MV__BLOB_VERSION 1u
#define MV__BLOB_HEADER 64u
#define MV__TAG_BYTES 16u
#define MV__ID_BYTES 16u
#define MV__CHUNK_DEFAULT (1u << 20)
#define MV__CHUNK_MAX (1u << 26)
#define MV__STREAMED UINT64_MAX
/* One data key per object, and a 64-bit chunk counter: the GCM limits of one key (2^32
 * invocations with random nonces, 2^39 - 256 bits per invocation) are far away. Objects are
 * still capped so that a damaged length cannot ask for absurd work. */
#define MV__OBJECT_MAX (1ull << 40)

typedef struct MvBlobHeader {
    uint8_t raw[MV__BLOB_HEADER];
    uint32_t chunk_size;
    uint64_t length;
    uint8_t id[MV__ID_BYTES];
} MvBlobHeader;

/* Fills h for a new blob with a random nonce prefix. length may be MV__STREAMED. */
MvStatus mv__blob_header_make(MvBlobHeader *h, const uint8_t id[MV__ID_BYTES], uint32_t chunk_size, uint64_t length,
                              MvError *err);
/* Parses and checks 64 header bytes. expected_id may be NULL. MV_ERR_INTEGRITY on mismatch. */
MvStatus mv__blob_header_parse(MvBlobHeader *h, const uint8_t *raw, const uint8_t *expected_id, MvError *err);
/* Chunks and total blob size of a header whose length is known. */
uint64_t mv__blob_chunks(const MvBlobHeader *h);
uint64_t mv__blob_size(const MvBlobHeader *h);

/* Seals or opens chunk `index` (len plaintext bytes; out and in hold len + 16 bytes with the tag
 * last). ctx is a reusable cipher context. Opening fails with MV_ERR_INTEGRITY. */
MvStatus mv__chunk_seal(EVP_CIPHER_CTX *ctx, const uint8_t key[32], const MvBlobHeader *h, uint64_t index, int last,
                        const uint8_t *in, size_t len, uint8_t *out, MvError *err);
MvStatus mv__chunk_open(EVP_CIPHER_CTX *ctx, const uint8_t key[32], const MvBlobHeader *h, uint64_t index, int last,
                        const uint8_t *in, size_t len, uint8_t *out, MvError *err);

/* Streaming encryption to a file descriptor: the header first, then chunks as data comes. */
typedef struct MvSealer {
    EVP_CIPHER_CTX *ctx;
    uint8_t key[32];
    MvBlobHeader h;
    int fd;
    uint8_t *buf; /* plaintext waiting: buf_cap bytes (a chunk, or less for a small object) */
    size_t used, buf_cap, buf_high;
    uint8_t *out; /* chunk_size + 16 */
    uint64_t index, total;
} MvSealer;
MvStatus mv__sealer_start(MvSealer *s, const uint8_t key[32], const MvBlobHeader *h, int fd, MvError *err);
MvStatus mv__sealer_write(MvSealer *s, const void *data, size_t len, MvError *err);
/* Seals the last chunk; checks the total against a known length. */
MvStatus mv__sealer_finish(MvSealer *s, MvError *err);
void mv__sealer_free(MvSealer *s);

/* Sequential decryption from a descriptor: every chunk authenticated before fn sees it; the
 * end of the stream is checked (last chunk present, nothing after it, known length matched).
 * fn returns 0 to go on. expected_id may be NULL. The header is returned in *h (may be NULL). */
typedef int (*MvChunkFn)(const uint8_t *data, size_t len, void *ctx);
MvStatus mv__blob_decrypt_fd(int fd, const uint8_t key[32], const uint8_t *expected_id, MvBlobHeader *h,
                             MvChunkFn fn, void *fn_ctx, MvError *err);
/* Random access: decrypts the chunks of [offset, offset+len) of the blob in fd (known length). */
MvStatus mv__blob_read_range(int fd, const uint8_t key[32], const uint8_t *expected_id, uint64_t offset,
                             uint8_t *buf, size_t len, size_t *n_read, MvError *err);

/* ---- Small secrets and blind indexes ---------------------------------------------------- */

#define MV__SEAL_OVERHEAD (12u + 16u) /* random nonce || ciphertext || tag */

/* AES-256-GCM with a random 96-bit nonce, AAD = label || 0 || aad. *out is malloc'd
 * (len + MV__SEAL_OVERHEAD bytes). Used for display values and the inner wrap of data keys;
 * each key seals a bounded number of small values (see docs/vault.md). */
MvStatus mv__seal(const uint8_t key[32], const char *label, const void *aad, size_t aad_len, const void *in,
                  size_t len, uint8_t **out, size_t *out_len, MvError *err);
/* Opens into malloc'd *out (NUL-terminated for convenience; *out_len excludes it), which the
 * caller wipes. MV_ERR_INTEGRITY on any mismatch. */
MvStatus mv__unseal(const uint8_t key[32], const char *label, const void *aad, size_t aad_len, const void *in,
                    size_t len, uint8_t **out, size_t *out_len, MvError *err);

/* HMAC-SHA256(key, label || 0 || data). */
void mv__blind(const uint8_t key[32], const char *label, const void *data, size_t len, uint8_t out[32]);
/* Normalised forms the blind indexes are computed over (malloc'd, NULL when out of memory):
 * IDs lose surrounding spaces; person names keep their first component group, uppercased
 * (ASCII), each component trimmed, trailing empty components dropped. */
char *mv__normalize_id(const char *id);
char *mv__normalize_name(const char *name);


/* ---- The vault handle (vault.c) ------------------------------------------------------ */

typedef struct MvPatientKey {
    int64_t row;
    uint8_t key[32];
} MvPatientKey;

struct MvVault {
    char *home, *dir, *objects, *tmp;
    MvKeyring *kr;
    sqlite3 *db;
    int lock_fd, writable;
    uint8_t bi_key[32], disp_key[32];
    EVP_CIPHER_CTX *ctx;
    uint32_t chunk_size; /* 0: MV__CHUNK_DEFAULT (tests set small ones) */
    int in_batch;
    MvVaultPut *pending;
    size_t n_pending, cap_pending;
    uint64_t pending_bytes;
    MvPatientKey *pkeys; /* unwrapped patient keys, wiped at close */
    size_t n_pkeys, cap_pkeys;
    unsigned n_rolled_back, n_temp_removed;
    MvVaultProgressFn progress;
    void *progress_ctx;
};

typedef struct MvInstanceRow {
    int64_t id, patient, series;
    char object_id[MV_VAULT_ID_CHARS + 1];
    uint64_t size;
    uint8_t *wrapped;
    size_t wrapped_len;
} MvInstanceRow;

char *mv__path(const char *a, const char *b);
char *mv__object_path(const MvVault *v, const char *oid);
char *mv__part_path(const MvVault *v, const char *oid);
MvStatus mv__db_error(MvVault *v, MvError *err, const char *what);
MvStatus mv__db_exec(MvVault *v, const char *sql, MvError *err);
MvStatus mv__db_prepare(MvVault *v, const char *sql, sqlite3_stmt **stmt, MvError *err);
int mv__object_in_index(MvVault *v, const char *oid); /* 1, 0, or -1 on a database error */
MvStatus mv__patient_key(MvVault *v, int64_t row, uint8_t key[32], MvError *err);
MvStatus mv__cache_patient_key(MvVault *v, int64_t row, const uint8_t key[32], MvError *err);
void mv__forget_keys(MvVault *v);
/* Object key hierarchy: seal_{patient key}("mv-vault-object-key", AAD = object id,
 * mv_keyring_wrap(data key, context "vault-object:ID")). */
MvStatus mv__wrap_object_key(MvVault *v, const uint8_t pkey[32], const char *oid, const uint8_t dek[32], uint8_t **out,
                             size_t *out_len, MvError *err);
MvStatus mv__unwrap_object_key(MvVault *v, const uint8_t pkey[32], const char *oid, const void *wrapped, size_t len,
                               uint8_t dek[32], uint32_t *kek_version, MvError *err);
MvStatus mv__find_instance(MvVault *v, const char *sop_uid, MvInstanceRow *row, MvError *err);
void mv__instance_row_clear(MvInstanceRow *row);
MvStatus mv__object_key(MvVault *v, const MvInstanceRow *row, uint8_t dek[32], MvError *err);
/* Display values: sealed JSON objects under the "display" key, AAD = the row's own key. */
struct json_t;
MvStatus mv__seal_display(MvVault *v, const char *label, const void *aad, size_t aad_len, struct json_t *obj,
                          uint8_t **out, size_t *out_len, MvError *err);
struct json_t *mv__open_display(MvVault *v, const char *label, const void *aad, size_t aad_len, const void *sealed,
                                size_t len, MvError *err);
/* Writes a synced tmp/intent-* file listing n ids found stride bytes apart. */
MvStatus mv__write_intent(MvVault *v, const char *ids, size_t n, size_t stride, char **path_out, MvError *err);
void mv__unlink_blobs(MvVault *v, const char *ids, size_t n, size_t stride);
void mv__checkpoint(MvVault *v);

#endif
