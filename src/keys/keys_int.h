/* Private model of the keyring, shared by the files of src/keys only: locked memory for key
 * material, the in-memory keyring, the keyring file codec and the PKCS#11 token interface.
 * The public contract is include/medveil/keys.h; the file format is described in docs/keys.md. */
#ifndef MV_KEYS_INT_H
#define MV_KEYS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/keys.h"

#define MV_KEK_BYTES 32     /* AES-256 KEK */
#define MV_GCM_NONCE 12     /* 96-bit random nonces (NIST SP 800-38D 8.2.2) */
#define MV_GCM_TAG 16       /* 128-bit tags */
#define MV_SALT_BYTES 16    /* Argon2id and HKDF salts, one per KEK version */
#define MV_KEYRING_ID 16    /* random identity of a keyring, bound in every AAD */
#define MV_NAME_MAX 64      /* longest named-key name */
#define MV_LABEL_MAX 128    /* longest PKCS#11 label */
#define MV_KEYRING_MAX (1u << 20) /* a keyring file larger than 1 MiB is refused */
#define MV_SECRET_MAX 65536 /* passphrase, PIN or key file: at most 64 KiB */

/* Wrapped-blob layout (docs/keys.md): format byte, KEK version (u32 big endian), nonce,
 * ciphertext, tag. */
#define MV_WRAP_FORMAT 0x01
#define MV_WRAP_HEADER (1 + 4)
_Static_assert(MV_WRAP_OVERHEAD == MV_WRAP_HEADER + MV_GCM_NONCE + MV_GCM_TAG, "wrap overhead");
#define MV_WRAP_MAX_KEY 1024 /* largest key the keyring wraps */

/* ---- Locked memory (secret.c) ------------------------------------------------------ */

/* malloc + mlock (+ MADV_DONTDUMP); a failing mlock is tolerated (one warning per process on
 * stderr, no key material in it). Zero-filled. NULL on out of memory. */
void *mv__secure_alloc(size_t n);
/* OPENSSL_cleanse + munlock + free. NULL is accepted. */
void mv__secure_free(void *p, size_t n);
/* Reads a whole file into locked memory of exactly *out_len + 1 bytes (the last one zero; free
 * with mv__secure_free(*out, *out_len + 1)), at most `cap` bytes (MV_ERR_LIMIT beyond). When
 * private_only, a regular file readable or writable by group or others is MV_ERR_DENIED.
 * Missing file: MV_ERR_NOTFOUND. */
MvStatus mv__secret_file(const char *path, size_t cap, int private_only, uint8_t **out, size_t *out_len,
                         MvError *err);

/* ---- PKCS#11 token (pkcs11.c) ------------------------------------------------------ */

typedef struct MvP11 MvP11;

/* Loads `module` with dlopen, initialises it, finds the token labelled `token_label` (exactly
 * one), opens a read-write session and logs in as the user with `pin`. The PIN is not kept.
 * A wrong or locked PIN is MV_ERR_DENIED; no such token, two with that label, or a module that
 * cannot be loaded MV_ERR_ARG. *out is freed with mv__p11_close. Modules are shared by the
 * keyrings of a process (initialised once, finalised with the last one). */
MvStatus mv__p11_open(const char *module, const char *token_label, const uint8_t *pin, size_t pin_len,
                      MvP11 **out, MvError *err);
/* Logs out, closes the session, finalises and unloads the module. NULL is accepted. */
void mv__p11_close(MvP11 *p11);
/* Generates an AES-256 secret key object inside the token: CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, CKA_EXTRACTABLE false, CKA_ENCRYPT/CKA_DECRYPT, labelled `label`.
 * MV_ERR_ARG when an object with that label already exists. */
MvStatus mv__p11_generate(MvP11 *p11, const char *label, MvError *err);
/* Finds the secret key object labelled `label`: MV_OK, MV_ERR_NOTFOUND, or MV_ERR_INTEGRITY
 * when more than one exists. */
MvStatus mv__p11_find(MvP11 *p11, const char *label, unsigned long *handle, MvError *err);
/* AES-256-GCM in the token with a caller-chosen 96-bit nonce and a 128-bit tag. Encrypting,
 * out receives in_len + 16 bytes (ciphertext then tag); decrypting, in is ciphertext then tag
 * and out receives in_len - 16 bytes; a failed tag check is MV_ERR_INTEGRITY. */
MvStatus mv__p11_gcm(MvP11 *p11, unsigned long handle, int encrypt, const uint8_t nonce[MV_GCM_NONCE],
                     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out,
                     MvError *err);
/* Destroys the object labelled `label` (C_DestroyObject). MV_ERR_NOTFOUND when there is none. */
MvStatus mv__p11_destroy(MvP11 *p11, const char *label, MvError *err);

/* ---- The keyring (keyring.c, keyring_file.c) --------------------------------------- */

typedef enum MvKekState { MV_KEK_CURRENT = 1, MV_KEK_OLD, MV_KEK_RETIRED } MvKekState;

/* One KEK version and how it is protected. Software KEKs (passphrase, key file) are stored
 * wrapped (AES-256-GCM) under a key derived from the secret with a salt of their own; a token
 * KEK is only a label in the file, the key stays in the token. */
typedef struct MvKek {
    uint32_t version;
    MvKekState state;
    MvUnlockKind kind;
    MvKdfParams kdf;                  /* passphrase only */
    uint8_t salt[MV_SALT_BYTES];      /* passphrase and key file */
    uint8_t nonce[MV_GCM_NONCE];      /* passphrase and key file */
    uint8_t wrapped[MV_KEK_BYTES + MV_GCM_TAG]; /* passphrase and key file: ciphertext + tag */
    char label[MV_LABEL_MAX];         /* PKCS#11: object label, unique per keyring and version */
    /* In memory only. */
    uint8_t *key;                     /* software KEK once unlocked (locked memory), else NULL */
    unsigned long handle;             /* PKCS#11 object handle once found */
    int unlocked;                     /* usable for wrap/unwrap in this session */
} MvKek;

/* A named key, wrapped under the current KEK. */
typedef struct MvNamedKey {
    char name[MV_NAME_MAX + 1];
    uint8_t *wrapped;
    size_t wrapped_len;
} MvNamedKey;

/* The parsed keyring file (no secret in it). */
typedef struct MvKeyringFile {
    uint8_t id[MV_KEYRING_ID];
    uint32_t current;
    MvKek *keks;        /* ascending versions */
    size_t n_keks;
    MvNamedKey *named;  /* ascending names */
    size_t n_named;
    uint8_t *mac_key_wrapped; /* the HMAC key of the file, wrapped under the current KEK */
    size_t mac_key_wrapped_len;
    char p11_token[MV_LABEL_MAX]; /* PKCS#11 token label given at creation, "" if none (for messages) */
    /* What the bytes said; checked by the caller. */
    uint8_t mac[32];
    const uint8_t *body; /* the authenticated part inside the parsed buffer */
    size_t body_len;
} MvKeyringFile;

/* Parses keyring bytes (untrusted): the trailer's SHA-256 checksum, then the JSON body, every
 * field bounded and checked. Anything wrong is MV_ERR_INTEGRITY naming the field or line; the
 * HMAC is not checked here (it needs the KEK). kf->body points into buf. On failure kf is
 * emptied. Free with mv__keyring_file_clear. */
MvStatus mv__keyring_file_parse(const uint8_t *buf, size_t len, MvKeyringFile *kf, MvError *err);
/* Serialises kf: body, then the HMAC-SHA256 of the body under mac_key, then a SHA-256
 * checksum of both. *out is malloc'd. */
MvStatus mv__keyring_file_format(const MvKeyringFile *kf, const uint8_t mac_key[32], uint8_t **out,
                                 size_t *out_len, MvError *err);
/* Frees what kf holds (wiping unlocked keys) and zeroes it. */
void mv__keyring_file_clear(MvKeyringFile *kf);

const char *mv__kind_name(MvUnlockKind kind);
/* A named-key name: 1 to 64 of [a-z0-9._-]. */
int mv__keyring_name_valid(const char *name);

#endif
