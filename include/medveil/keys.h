/* Keyring: a versioned key-encryption key (KEK) kept in the home folder (DESIGN.md), unlocked
 * by a passphrase (Argon2id), a key file or a PKCS#11 token, and the operations other modules
 * need from it: wrapping and unwrapping data keys, and long-lived named keys (blind-index key,
 * audit signing key ...) that survive KEK rotation because they are stored wrapped, not derived.
 * Key material is wiped after use and compared in constant time; nothing here logs a key. */
#ifndef MEDVEIL_KEYS_H
#define MEDVEIL_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MV_DEK_BYTES 32 /* AES-256 data keys */

/* How to unlock (or protect, at creation) the KEK. Exactly one source is used:
 * MV_UNLOCK_PASSPHRASE: secret/secret_len is the passphrase (the caller read it from a file,
 *   a prompt without echo or $MEDVEIL_PASSPHRASE; never from argv).
 * MV_UNLOCK_KEYFILE: path names a file of at least 32 random bytes (mode 0600 checked).
 * MV_UNLOCK_PKCS11: path is the PKCS#11 module (.so), token_label the token, secret the user PIN;
 *   the KEK is an AES key generated inside the token and never leaves it. */
typedef enum MvUnlockKind { MV_UNLOCK_PASSPHRASE = 1, MV_UNLOCK_KEYFILE, MV_UNLOCK_PKCS11 } MvUnlockKind;

typedef struct MvUnlock {
    MvUnlockKind kind;
    const uint8_t *secret; /* passphrase or PIN; the caller's buffer is not kept (a passphrase
                              or key file is copied into locked memory until mv_keyring_close,
                              because rotation protects the new version with it; a PIN is not) */
    size_t secret_len;
    const char *path;        /* key file or PKCS#11 module */
    const char *token_label; /* PKCS#11 only */
} MvUnlock;

/* Argon2id parameters, stored with the keyring so that they can be tuned per installation. */
typedef struct MvKdfParams {
    uint32_t t_cost;      /* passes; default 3 */
    uint32_t m_cost_kib;  /* memory in KiB; default 65536 */
    uint32_t parallelism; /* lanes; default 1 */
} MvKdfParams;

#define MV_KDF_DEFAULT_T 3
#define MV_KDF_DEFAULT_M_KIB 65536
#define MV_KDF_DEFAULT_P 1
/* Accepted ranges: 1 <= t <= 64, 8*p <= m_kib <= 4 GiB, 1 <= p <= 16 (a keyring asking for
 * more is refused as damaged rather than exhausting memory or time). */
#define MV_KDF_MAX_T 64
#define MV_KDF_MAX_M_KIB 4194304
#define MV_KDF_MAX_P 16

/* Fills *kdf with the defaults above. */
void mv_kdf_params_default(MvKdfParams *kdf);

/* An open keyring. Its functions may be called from several threads: each takes the keyring's
 * mutex, so they run one at a time (a token session allows one operation at a time anyway);
 * mv_keyring_close must not race with anything. Several processes may share one keyring. */
typedef struct MvKeyring MvKeyring;

/* Reads a secret for the CLI: from file `path` when not NULL (trailing newline dropped), else
 * from the environment variable `env_name` when set, else from the terminal with echo off after
 * printing `prompt` to stderr. *out is malloc'd (mlock'd where possible); free with mv_secret_free.
 * MV_ERR_ARG when no source is available (no tty, no file, no variable). */
MvStatus mv_secret_read(const char *path, const char *env_name, const char *prompt, uint8_t **out,
                        size_t *out_len, MvError *err);
void mv_secret_free(uint8_t *secret, size_t len);

/* Creates HOME/keyring (mode 0700; HOME too when missing) with KEK version 1 protected as `how`
 * says. kdf may be NULL (defaults). MV_ERR_ARG if a keyring already exists, for a passphrase of
 * fewer than 8 bytes, a key file of fewer than 32 bytes, or kdf out of range. On success *out
 * is an unlocked keyring; on failure nothing is left behind (a token key made is destroyed). */
MvStatus mv_keyring_create(const char *home, const MvUnlock *how, const MvKdfParams *kdf, MvKeyring **out,
                           MvError *err);
/* Opens and unlocks HOME/keyring (one Argon2id run for a passphrase; older versions are opened
 * when first used). A wrong passphrase, key file or PIN, an unlock method the keyring does not
 * use, or a keyring file readable by others is MV_ERR_DENIED; a damaged or changed keyring file
 * MV_ERR_INTEGRITY (checked before the secret is used); no keyring MV_ERR_NOTFOUND. A missing
 * key file, a PKCS#11 module that does not load or no token with that label is MV_ERR_ARG. */
MvStatus mv_keyring_open(const char *home, const MvUnlock *how, MvKeyring **out, MvError *err);
/* Reads HOME/keyring without unlocking it and says how its current KEK is protected, so that a
 * program knows what to ask for (a passphrase, a key file, a token and its PIN). token_label
 * (may be NULL) receives the PKCS#11 token label recorded at creation, "" if none, truncated to
 * cap bytes with the NUL. MV_ERR_NOTFOUND without a keyring, MV_ERR_INTEGRITY when damaged. */
MvStatus mv_keyring_probe(const char *home, MvUnlockKind *kind, char *token_label, size_t cap, MvError *err);
/* Wipes every key held in memory, logs the token out, frees. NULL is accepted. */
void mv_keyring_close(MvKeyring *kr);

/* The current KEK version (1, 2, ...), and the versions still present (not retired). */
uint32_t mv_keyring_current_version(const MvKeyring *kr);
/* Copies the versions still present (current and old, ascending) into versions[cap] and
 * returns how many there are (which may exceed cap). */
size_t mv_keyring_versions(const MvKeyring *kr, uint32_t *versions, size_t cap);

/* Wraps a data key (1 to 1024 bytes) under the current KEK with AES-256-GCM and a random
 * nonce. `context` (e.g. an object id; a C string of at most 4096 bytes) is bound as associated
 * data: unwrapping with another context fails. *wrapped is malloc'd (the caller frees it),
 * *wrapped_len = key_len + MV_WRAP_OVERHEAD bytes; it records the KEK version used (format in
 * docs/keys.md). A wrapped key holds no secret in the clear. */
#define MV_WRAP_OVERHEAD 33
MvStatus mv_keyring_wrap(MvKeyring *kr, const uint8_t *key, size_t key_len, const char *context,
                         uint8_t **wrapped, size_t *wrapped_len, MvError *err);
/* Unwraps into key[key_len] (which must be the wrapped key's length). MV_ERR_INTEGRITY when the
 * blob, the context or the KEK version does not match; MV_ERR_NOTFOUND when its KEK version has
 * been retired; MV_ERR_DENIED when its version is protected by an unlock method this session
 * does not hold (after a move between a secret and a token). key is wiped on failure. */
MvStatus mv_keyring_unwrap(MvKeyring *kr, const uint8_t *wrapped, size_t wrapped_len, const char *context,
                           uint8_t *key, size_t key_len, MvError *err);
/* The KEK version recorded in a wrapped blob, 0 if malformed. */
uint32_t mv_keyring_wrapped_version(const uint8_t *wrapped, size_t wrapped_len);

/* A long-lived named key of 32 bytes ("blind-index", "display", "audit-signing-seed" ...): made
 * at random on first use, stored wrapped under the KEK in the keyring, rewrapped by rotation.
 * Copies it into out[32]; the caller wipes it. Names are 1 to 64 of a-z 0-9 . _ - (MV_ERR_ARG
 * otherwise). Safe when several processes share the keyring (the file is locked and reread). */
MvStatus mv_keyring_named_key(MvKeyring *kr, const char *name, uint8_t out[32], MvError *err);

/* Argon2id parameters for the versions protected from now on (by mv_keyring_rotate): to
 * retune an installation, set them and rotate. MV_ERR_ARG when out of the ranges above. */
MvStatus mv_keyring_set_kdf(MvKeyring *kr, const MvKdfParams *kdf, MvError *err);

/* Rotation: makes KEK version n+1 the current one (protected the same way, or as `how` says when
 * not NULL) and rewraps the keyring's named keys. Data keys wrapped elsewhere (the vault) are
 * rewrapped by their owner with mv_keyring_unwrap + mv_keyring_wrap. A new passphrase or key
 * file in `how` also re-protects the older software versions, so the old secret opens nothing;
 * when `how` moves between a secret and a token, the older versions keep their protection and
 * can only be used in this session: rewrap and retire before closing. The keyring file is
 * rewritten atomically; on failure it and *kr are unchanged. MV_ERR_ARG when another process
 * rotated the keyring since it was opened. */
MvStatus mv_keyring_rotate(MvKeyring *kr, const MvUnlock *how, MvError *err);
/* Destroys every KEK version older than the current one: their wrapped keys leave the keyring
 * file, their copies in memory are wiped, token keys are destroyed (C_DestroyObject). The caller
 * must have rewrapped everything first; afterwards blobs wrapped under those versions are
 * unrecoverable (MV_ERR_NOTFOUND). Fills *n_retired (0 when there was nothing to retire). */
MvStatus mv_keyring_retire_old(MvKeyring *kr, unsigned *n_retired, MvError *err);

#ifdef __cplusplus
}
#endif
#endif
