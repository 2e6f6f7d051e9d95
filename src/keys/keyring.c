/* The keyring: versioned key-encryption keys (KEKs) in HOME/keyring, unlocked by a passphrase
 * (Argon2id), a key file (HKDF) or a PKCS#11 token, and what other modules do with them:
 * wrapping data keys (AES-256-GCM, context and KEK version bound as associated data), named
 * keys stored wrapped in the keyring, rotation and retirement. The file codec is in
 * keyring_file.c, the token in pkcs11.c; the design is explained in docs/keys.md. */
#include <argon2.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "core/core_int.h"
#include "keys/keys_int.h"

#define KEYRING_FILE "keyring"
#define LOCK_FILE "lock"
#define MIN_PASSPHRASE 8   /* bytes, at creation and when a passphrase is changed */
#define MIN_KEYFILE 32     /* bytes of a key file */
#define CONTEXT_MAX 4096   /* longest wrap context */
#define KEYFILE_INFO "medveil keyring key-file v1"

/* Associated-data domains: data keys wrapped for callers, and the keyring's own keys. */
enum { DOMAIN_CALLER = 0, DOMAIN_KEYRING = 1 };
#define MAC_KEY_CONTEXT "keyring-mac"

struct MvKeyring {
    char *dir;  /* HOME/keyring */
    char *path; /* HOME/keyring/keyring */
    MvKeyringFile kf;
    uint8_t *mac_key;        /* HMAC key of the file (locked memory) */
    uint8_t disk_sum[32];    /* SHA-256 of the file as last read or written */
    MvUnlockKind secret_kind; /* 0, or the kind of the secret below */
    uint8_t *secret;         /* passphrase or key-file bytes, kept for rotation (locked memory) */
    size_t secret_len;
    MvKdfParams kdf;         /* Argon2id parameters for versions protected next */
    MvP11 *p11;              /* open token session, or NULL */
    pthread_mutex_t mutex;   /* held by every public function: one operation at a time */
    char *p11_module;        /* the module it was loaded from */
};

void mv_kdf_params_default(MvKdfParams *kdf)
{
    kdf->t_cost = MV_KDF_DEFAULT_T;
    kdf->m_cost_kib = MV_KDF_DEFAULT_M_KIB;
    kdf->parallelism = MV_KDF_DEFAULT_P;
}

static MvStatus nomem(MvError *err)
{
    return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
}

static MvStatus crypto_fail(MvError *err, const char *what)
{
    return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "%s failed (OpenSSL)", what);
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + 1 + lb + 1);

    if (s != NULL) {
        memcpy(s, a, la);
        s[la] = '/';
        memcpy(s + la + 1, b, lb + 1);
    }
    return s;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static MvStatus check_kdf(const MvKdfParams *kdf, MvError *err)
{
    if (kdf->t_cost < 1 || kdf->t_cost > MV_KDF_MAX_T || kdf->parallelism < 1 || kdf->parallelism > MV_KDF_MAX_P ||
        kdf->m_cost_kib < 8 * kdf->parallelism || kdf->m_cost_kib > MV_KDF_MAX_M_KIB)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "Argon2id parameters out of range: t=%u (1..%d), m=%u KiB (8*p..%d), p=%u (1..%d)",
                            kdf->t_cost, MV_KDF_MAX_T, kdf->m_cost_kib, MV_KDF_MAX_M_KIB, kdf->parallelism,
                            MV_KDF_MAX_P);
    return MV_OK;
}

/* ---- AES-256-GCM in software ---------------------------------------------------------- */

static MvStatus gcm_seal(const uint8_t key[32], const uint8_t nonce[MV_GCM_NONCE], const uint8_t *aad,
                         size_t aad_len, const uint8_t *in, size_t n, uint8_t *out, MvError *err)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, ok;

    ok = ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
         EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aad_len) == 1 &&
         EVP_EncryptUpdate(ctx, out, &len, in, (int)n) == 1 && EVP_EncryptFinal_ex(ctx, out + len, &len) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MV_GCM_TAG, out + n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? MV_OK : crypto_fail(err, "AES-256-GCM encryption");
}

/* Decrypts in[n] (ciphertext then tag) into out[n - 16]. A bad tag is MV_ERR_INTEGRITY with no
 * message of its own (the caller knows what it was opening). */
static MvStatus gcm_open(const uint8_t key[32], const uint8_t nonce[MV_GCM_NONCE], const uint8_t *aad,
                         size_t aad_len, const uint8_t *in, size_t n, uint8_t *out, MvError *err)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    size_t ct_len = n - MV_GCM_TAG;
    int len = 0, ok;
    MvStatus st = MV_OK;

    ok = ctx != NULL && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
         EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aad_len) == 1 &&
         EVP_DecryptUpdate(ctx, out, &len, in, (int)ct_len) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MV_GCM_TAG, (void *)(in + ct_len)) == 1;
    if (!ok)
        st = crypto_fail(err, "AES-256-GCM decryption");
    else if (EVP_DecryptFinal_ex(ctx, out + len, &len) != 1) {
        OPENSSL_cleanse(out, ct_len);
        st = MV_ERR_INTEGRITY;
    }
    EVP_CIPHER_CTX_free(ctx);
    return st;
}

/* ---- Protection of software KEKs ----------------------------------------------------- */

/* The key that wraps a software KEK: Argon2id(passphrase, salt) or HKDF-SHA256(key file, salt). */
static MvStatus derive_wrapping_key(MvUnlockKind kind, const uint8_t *secret, size_t secret_len,
                                    const MvKdfParams *kdf, const uint8_t salt[MV_SALT_BYTES], uint8_t out[32],
                                    MvError *err)
{
    if (kind == MV_UNLOCK_PASSPHRASE) {
        int rc = argon2id_hash_raw(kdf->t_cost, kdf->m_cost_kib, kdf->parallelism, secret, secret_len, salt,
                                   MV_SALT_BYTES, out, 32);
        if (rc == ARGON2_MEMORY_ALLOCATION_ERROR)
            return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET,
                                "Argon2id could not allocate %u KiB", kdf->m_cost_kib);
        if (rc != ARGON2_OK)
            return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "Argon2id failed: %s",
                                argon2_error_message(rc));
        return MV_OK;
    } else {
        EVP_KDF *kdf_alg = EVP_KDF_fetch(NULL, "HKDF", NULL);
        EVP_KDF_CTX *ctx = kdf_alg != NULL ? EVP_KDF_CTX_new(kdf_alg) : NULL;
        OSSL_PARAM params[5];
        int ok;

        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, MV_SALT_BYTES);
        params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)KEYFILE_INFO,
                                                      sizeof KEYFILE_INFO - 1);
        params[4] = OSSL_PARAM_construct_end();
        ok = ctx != NULL && EVP_KDF_derive(ctx, out, 32, params) == 1;
        EVP_KDF_CTX_free(ctx);
        EVP_KDF_free(kdf_alg);
        return ok ? MV_OK : crypto_fail(err, "HKDF-SHA256");
    }
}

/* Associated data of a wrapped software KEK: the keyring's identity, the version and the kind,
 * so a wrapped KEK cannot be moved to another keyring, version or protection. */
#define KEK_AAD_LEN (12 + MV_KEYRING_ID + 4 + 1)
static void kek_aad(const uint8_t id[MV_KEYRING_ID], const MvKek *kek, uint8_t aad[KEK_AAD_LEN])
{
    memcpy(aad, "medveil-kek", 12); /* with its NUL */
    memcpy(aad + 12, id, MV_KEYRING_ID);
    put_be32(aad + 12 + MV_KEYRING_ID, kek->version);
    aad[KEK_AAD_LEN - 1] = (uint8_t)kek->kind;
}

/* Protects key (a software KEK) as version kek->version under a fresh salt and nonce. */
static MvStatus protect_kek(const uint8_t id[MV_KEYRING_ID], MvKek *kek, MvUnlockKind kind, const uint8_t *secret,
                            size_t secret_len, const MvKdfParams *kdf, const uint8_t key[MV_KEK_BYTES],
                            MvError *err)
{
    uint8_t wk[32], aad[KEK_AAD_LEN];
    MvStatus st;

    kek->kind = kind;
    if (kind == MV_UNLOCK_PASSPHRASE)
        kek->kdf = *kdf;
    else
        memset(&kek->kdf, 0, sizeof kek->kdf);
    if (RAND_bytes(kek->salt, sizeof kek->salt) != 1 || RAND_bytes(kek->nonce, sizeof kek->nonce) != 1)
        return crypto_fail(err, "the random generator");
    st = derive_wrapping_key(kind, secret, secret_len, &kek->kdf, kek->salt, wk, err);
    if (st == MV_OK) {
        kek_aad(id, kek, aad);
        st = gcm_seal(wk, kek->nonce, aad, sizeof aad, key, MV_KEK_BYTES, kek->wrapped, err);
    }
    OPENSSL_cleanse(wk, sizeof wk);
    return st;
}

/* Opens a software KEK into locked memory: MV_ERR_DENIED when the secret does not open it. */
static MvStatus open_kek(const uint8_t id[MV_KEYRING_ID], MvKek *kek, const uint8_t *secret, size_t secret_len,
                         MvError *err)
{
    uint8_t wk[32], aad[KEK_AAD_LEN];
    uint8_t *key = mv__secure_alloc(MV_KEK_BYTES);
    MvStatus st;

    if (key == NULL)
        return nomem(err);
    st = derive_wrapping_key(kek->kind, secret, secret_len, &kek->kdf, kek->salt, wk, err);
    if (st == MV_OK) {
        kek_aad(id, kek, aad);
        st = gcm_open(wk, kek->nonce, aad, sizeof aad, kek->wrapped, sizeof kek->wrapped, key, err);
        if (st == MV_ERR_INTEGRITY)
            st = mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET, "wrong %s for KEK version %u",
                              kek->kind == MV_UNLOCK_PASSPHRASE ? "passphrase" : "key file", kek->version);
    }
    OPENSSL_cleanse(wk, sizeof wk);
    if (st != MV_OK) {
        mv__secure_free(key, MV_KEK_BYTES);
        return st;
    }
    kek->key = key;
    kek->unlocked = 1;
    return MV_OK;
}

/* The label of a token KEK: unique per keyring and version. */
static void token_label(const uint8_t id[MV_KEYRING_ID], uint32_t version, char out[MV_LABEL_MAX])
{
    char hex[2 * MV_KEYRING_ID + 1];

    for (size_t i = 0; i < MV_KEYRING_ID; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(out, MV_LABEL_MAX, "medveil-kek-%s-v%u", hex, version);
}

/* ---- Finding and unlocking versions --------------------------------------------------- */

static MvKek *find_kek(MvKeyring *kr, uint32_t version)
{
    for (size_t i = 0; i < kr->kf.n_keks; i++)
        if (kr->kf.keks[i].version == version)
            return &kr->kf.keks[i];
    return NULL;
}

static MvKek *current_kek(MvKeyring *kr)
{
    return find_kek(kr, kr->kf.current);
}

/* Makes kek usable in this session (lazily: older versions are opened on first use). */
static MvStatus ensure_unlocked(MvKeyring *kr, MvKek *kek, MvError *err)
{
    MvStatus st;

    if (kek->unlocked)
        return MV_OK;
    if (kek->state == MV_KEK_RETIRED)
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET,
                            "KEK version %u was retired: what it wrapped is unrecoverable", kek->version);
    if (kek->kind == MV_UNLOCK_PKCS11) {
        if (kr->p11 == NULL)
            return mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET,
                                "KEK version %u is in the PKCS#11 token%s%s; unlock the keyring with that token "
                                "to use it", kek->version, kr->kf.p11_token[0] ? " " : "", kr->kf.p11_token);
        st = mv__p11_find(kr->p11, kek->label, &kek->handle, err);
        if (st == MV_ERR_NOTFOUND)
            return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET,
                                "KEK version %u: the token holds no key labelled '%s'", kek->version, kek->label);
        if (st != MV_OK)
            return st;
        kek->unlocked = 1;
        return MV_OK;
    }
    if (kr->secret == NULL || kr->secret_kind != kek->kind)
        return mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET,
                            "KEK version %u is protected by a %s, and this session was unlocked otherwise",
                            kek->version, kek->kind == MV_UNLOCK_PASSPHRASE ? "passphrase" : "key file");
    return open_kek(kr->kf.id, kek, kr->secret, kr->secret_len, err);
}

/* ---- Wrapping ---------------------------------------------------------------------------- */

/* Associated data of a wrapped key: domain, keyring identity, the blob's header, context. */
static uint8_t *wrap_aad(const MvKeyring *kr, int domain, const uint8_t header[MV_WRAP_HEADER], const char *context,
                         size_t *aad_len)
{
    size_t clen = strlen(context), n = 13 + 1 + MV_KEYRING_ID + MV_WRAP_HEADER + clen;
    uint8_t *aad = malloc(n);

    if (aad == NULL)
        return NULL;
    memcpy(aad, "medveil-wrap", 13); /* with its NUL */
    aad[13] = (uint8_t)domain;
    memcpy(aad + 14, kr->kf.id, MV_KEYRING_ID);
    memcpy(aad + 14 + MV_KEYRING_ID, header, MV_WRAP_HEADER);
    memcpy(aad + 14 + MV_KEYRING_ID + MV_WRAP_HEADER, context, clen);
    *aad_len = n;
    return aad;
}

static MvStatus wrap_with(MvKeyring *kr, MvKek *kek, int domain, const char *context, const uint8_t *key,
                          size_t key_len, uint8_t **wrapped, size_t *wrapped_len, MvError *err)
{
    size_t n = MV_WRAP_OVERHEAD + key_len, aad_len = 0;
    uint8_t *blob = NULL, *aad = NULL;
    MvStatus st;

    *wrapped = NULL;
    *wrapped_len = 0;
    st = ensure_unlocked(kr, kek, err);
    if (st != MV_OK)
        return st;
    blob = malloc(n);
    if (blob == NULL)
        return nomem(err);
    blob[0] = MV_WRAP_FORMAT;
    put_be32(blob + 1, kek->version);
    if (RAND_bytes(blob + MV_WRAP_HEADER, MV_GCM_NONCE) != 1) {
        st = crypto_fail(err, "the random generator");
        goto out;
    }
    aad = wrap_aad(kr, domain, blob, context, &aad_len);
    if (aad == NULL) {
        st = nomem(err);
        goto out;
    }
    if (kek->kind == MV_UNLOCK_PKCS11)
        st = mv__p11_gcm(kr->p11, kek->handle, 1, blob + MV_WRAP_HEADER, aad, aad_len, key, key_len,
                         blob + MV_WRAP_HEADER + MV_GCM_NONCE, err);
    else
        st = gcm_seal(kek->key, blob + MV_WRAP_HEADER, aad, aad_len, key, key_len,
                      blob + MV_WRAP_HEADER + MV_GCM_NONCE, err);
    if (st != MV_OK)
        goto out;
    *wrapped = blob;
    *wrapped_len = n;
    blob = NULL;
out:
    free(aad);
    free(blob);
    return st;
}

static MvStatus unwrap_with(MvKeyring *kr, int domain, const char *context, const uint8_t *wrapped,
                            size_t wrapped_len, uint8_t *key, size_t key_len, MvError *err)
{
    uint32_t version = mv_keyring_wrapped_version(wrapped, wrapped_len);
    size_t aad_len = 0;
    uint8_t *aad = NULL;
    MvKek *kek;
    MvStatus st;

    if (version == 0)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "wrapped key is malformed (%zu bytes, or unknown format)", wrapped_len);
    if (wrapped_len != MV_WRAP_OVERHEAD + key_len)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "wrapped key holds %zu key bytes, %zu expected",
                            wrapped_len > MV_WRAP_OVERHEAD ? wrapped_len - MV_WRAP_OVERHEAD : 0, key_len);
    kek = find_kek(kr, version);
    if (kek == NULL)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "wrapped key names KEK version %u, which this keyring never had", version);
    st = ensure_unlocked(kr, kek, err);
    if (st != MV_OK)
        return st;
    aad = wrap_aad(kr, domain, wrapped, context, &aad_len);
    if (aad == NULL)
        return nomem(err);
    if (kek->kind == MV_UNLOCK_PKCS11)
        st = mv__p11_gcm(kr->p11, kek->handle, 0, wrapped + MV_WRAP_HEADER, aad, aad_len,
                         wrapped + MV_WRAP_HEADER + MV_GCM_NONCE, key_len + MV_GCM_TAG, key, err);
    else
        st = gcm_open(kek->key, wrapped + MV_WRAP_HEADER, aad, aad_len, wrapped + MV_WRAP_HEADER + MV_GCM_NONCE,
                      key_len + MV_GCM_TAG, key, err);
    if (st == MV_ERR_INTEGRITY)
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                          "wrapped key does not authenticate under KEK version %u (changed, or another context)",
                          version);
    if (st != MV_OK)
        OPENSSL_cleanse(key, key_len);
    free(aad);
    return st;
}

uint32_t mv_keyring_wrapped_version(const uint8_t *wrapped, size_t wrapped_len)
{
    uint32_t version;

    if (wrapped == NULL || wrapped_len <= MV_WRAP_OVERHEAD || wrapped_len > MV_WRAP_OVERHEAD + MV_WRAP_MAX_KEY ||
        wrapped[0] != MV_WRAP_FORMAT)
        return 0;
    version = get_be32(wrapped + 1);
    return version;
}

static MvStatus keyring_wrap(MvKeyring *kr, const uint8_t *key, size_t key_len, const char *context,
                             uint8_t **wrapped, size_t *wrapped_len, MvError *err)
{
    if (key == NULL || context == NULL || wrapped == NULL || wrapped_len == NULL)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "mv_keyring_wrap: missing argument");
    if (key_len == 0 || key_len > MV_WRAP_MAX_KEY || strlen(context) > CONTEXT_MAX)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "mv_keyring_wrap: key of %zu bytes (1..%d) or context longer than %d bytes", key_len,
                            MV_WRAP_MAX_KEY, CONTEXT_MAX);
    return wrap_with(kr, current_kek(kr), DOMAIN_CALLER, context, key, key_len, wrapped, wrapped_len, err);
}

static MvStatus keyring_unwrap(MvKeyring *kr, const uint8_t *wrapped, size_t wrapped_len, const char *context,
                               uint8_t *key, size_t key_len, MvError *err)
{
    if (wrapped == NULL || context == NULL || key == NULL)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "mv_keyring_unwrap: missing argument");
    if (key_len == 0 || key_len > MV_WRAP_MAX_KEY || strlen(context) > CONTEXT_MAX)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "mv_keyring_unwrap: key of %zu bytes (1..%d) or context longer than %d bytes", key_len,
                            MV_WRAP_MAX_KEY, CONTEXT_MAX);
    return unwrap_with(kr, DOMAIN_CALLER, context, wrapped, wrapped_len, key, key_len, err);
}

/* ---- The file on disk ------------------------------------------------------------------ */

static MvStatus read_keyring_bytes(const char *path, uint8_t **out, size_t *out_len, MvError *err)
{
    struct stat sb;
    uint8_t *buf = NULL;
    size_t n = 0;
    int fd;
    MvStatus st = MV_OK;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET, "%s: no keyring here", path);
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: not a regular file", path);
        goto out;
    }
    if ((sb.st_mode & 077) != 0) {
        st = mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET,
                          "%s: keyring is accessible to others (mode %03o); chmod 600 it", path,
                          (unsigned)(sb.st_mode & 0777));
        goto out;
    }
    if ((uint64_t)sb.st_size > MV_KEYRING_MAX) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "%s: larger than 1 MiB", path);
        goto out;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        st = nomem(err);
        goto out;
    }
    while (n < (size_t)sb.st_size + 1) {
        ssize_t r = read(fd, buf + n, (size_t)sb.st_size + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n != (size_t)sb.st_size) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: changed while being read", path);
        goto out;
    }
    *out = buf;
    *out_len = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return st;
}

/* Removes temporary files that a writer killed before its rename left behind (they hold nothing
 * secret). Called with the lock held, so no other writer is between mkstemp and rename. */
static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, ".keyring.", 9) == 0)
            (void)unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

/* Writes kf (a view that may differ from kr->kf) to HOME/keyring/keyring: a temporary file,
 * synced, renamed over the old one, and the folder synced, so a crash leaves either the old
 * or the new keyring, never a mix. */
static MvStatus write_keyring(MvKeyring *kr, const MvKeyringFile *kf, MvError *err)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    char *tmp = join(kr->dir, ".keyring.XXXXXX");
    int fd = -1;
    MvStatus st;

    if (tmp == NULL)
        return nomem(err);
    st = mv__keyring_file_format(kf, kr->mac_key, &bytes, &len, err);
    if (st != MV_OK)
        goto out;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", kr->dir, strerror(errno));
        goto out;
    }
    (void)fchmod(fd, 0600);
    if (mv__write_all(fd, bytes, len) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, kr->path) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", kr->path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    remove_stale_temps(kr->dir);
    if (mv__sync_dir(kr->dir) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", kr->dir, strerror(errno));
        goto out;
    }
    if (EVP_Digest(bytes, len, kr->disk_sum, NULL, EVP_sha256(), NULL) != 1)
        st = crypto_fail(err, "SHA-256");
out:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    free(bytes);
    return st;
}

/* An exclusive lock on HOME/keyring/lock for the read-modify-write of the keyring file. */
static MvStatus lock_keyring(const char *dir, int *fd_out, MvError *err)
{
    char *path = join(dir, LOCK_FILE);
    int fd;

    *fd_out = -1;
    if (path == NULL)
        return nomem(err);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        MvStatus st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
        free(path);
        return st;
    }
    free(path);
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(fd);
            return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: cannot lock: %s", dir,
                                strerror(errno));
        }
    }
    *fd_out = fd;
    return MV_OK;
}

static void unlock_keyring(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* Checks kf's HMAC with the MAC key; MV_ERR_INTEGRITY when it does not match. */
static MvStatus check_mac(const uint8_t mac_key[32], const MvKeyringFile *kf, const char *path, MvError *err)
{
    uint8_t mac[32];
    unsigned mac_len = sizeof mac;
    MvStatus st = MV_OK;

    if (HMAC(EVP_sha256(), mac_key, 32, kf->body, kf->body_len, mac, &mac_len) == NULL)
        return crypto_fail(err, "HMAC-SHA256");
    if (CRYPTO_memcmp(mac, kf->mac, sizeof mac) != 0)
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                          "%s: keyring was changed (its HMAC does not match)", path);
    OPENSSL_cleanse(mac, sizeof mac);
    return st;
}

/* Under the lock: when another process changed the keyring file since this one read it, takes
 * the new contents (named keys added, versions retired) after checking them. A rotation by
 * another process cannot be followed (the new KEK is not unlocked here): MV_ERR_ARG. */
static MvStatus refresh(MvKeyring *kr, MvError *err)
{
    MvKeyringFile nk;
    uint8_t *bytes = NULL, sum[32], mac_key[32];
    size_t len = 0;
    MvStatus st;

    memset(&nk, 0, sizeof nk);
    st = read_keyring_bytes(kr->path, &bytes, &len, err);
    if (st != MV_OK)
        goto out;
    if (EVP_Digest(bytes, len, sum, NULL, EVP_sha256(), NULL) != 1) {
        st = crypto_fail(err, "SHA-256");
        goto out;
    }
    if (CRYPTO_memcmp(sum, kr->disk_sum, sizeof sum) == 0)
        goto out;
    st = mv__keyring_file_parse(bytes, len, &nk, err);
    if (st != MV_OK)
        goto out;
    if (CRYPTO_memcmp(nk.id, kr->kf.id, sizeof nk.id) != 0 || nk.current != kr->kf.current) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                          "%s: the keyring was rotated or replaced by another process since it was opened; "
                          "open it again",
                          kr->path);
        goto out;
    }
    st = unwrap_with(kr, DOMAIN_KEYRING, MAC_KEY_CONTEXT, nk.mac_key_wrapped, nk.mac_key_wrapped_len, mac_key,
                     sizeof mac_key, err);
    if (st == MV_OK && CRYPTO_memcmp(mac_key, kr->mac_key, sizeof mac_key) != 0)
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "%s: keyring MAC key changed", kr->path);
    if (st == MV_OK)
        st = check_mac(kr->mac_key, &nk, kr->path, err);
    OPENSSL_cleanse(mac_key, sizeof mac_key);
    if (st != MV_OK)
        goto out;
    /* Carry the unlocked keys over to the versions that are still alive. */
    for (size_t i = 0; i < nk.n_keks; i++) {
        MvKek *old = find_kek(kr, nk.keks[i].version);
        if (old == NULL || !old->unlocked || nk.keks[i].state == MV_KEK_RETIRED || old->kind != nk.keks[i].kind)
            continue;
        nk.keks[i].key = old->key;
        nk.keks[i].handle = old->handle;
        nk.keks[i].unlocked = 1;
        old->key = NULL;
    }
    nk.body = NULL;
    mv__keyring_file_clear(&kr->kf);
    kr->kf = nk;
    memset(&nk, 0, sizeof nk);
    memcpy(kr->disk_sum, sum, sizeof sum);
out:
    mv__keyring_file_clear(&nk);
    free(bytes);
    return st;
}

/* ---- Unlock sources ---------------------------------------------------------------------- */

static MvStatus check_unlock(const MvUnlock *how, int creating, MvError *err)
{
    if (how == NULL)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "no unlock method given");
    switch (how->kind) {
    case MV_UNLOCK_PASSPHRASE:
        if (how->secret == NULL || how->secret_len == 0)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "the passphrase is empty");
        if (how->secret_len > MV_SECRET_MAX)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "the passphrase is longer than %d bytes",
                                MV_SECRET_MAX);
        if (creating && how->secret_len < MIN_PASSPHRASE)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                                "a new passphrase needs at least %d bytes (a few random words are best)",
                                MIN_PASSPHRASE);
        return MV_OK;
    case MV_UNLOCK_KEYFILE:
        if (how->path == NULL || how->path[0] == '\0')
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "no key file given");
        return MV_OK;
    case MV_UNLOCK_PKCS11:
        if (how->path == NULL || how->path[0] == '\0' || how->token_label == NULL || how->token_label[0] == '\0')
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                                "a PKCS#11 unlock needs the module and the token label");
        if (strlen(how->token_label) >= MV_LABEL_MAX)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "token label longer than %d bytes",
                                MV_LABEL_MAX - 1);
        if (how->secret == NULL || how->secret_len == 0 || how->secret_len > 256)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "a PKCS#11 unlock needs the user PIN");
        return MV_OK;
    }
    return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "unknown unlock method %d", (int)how->kind);
}

/* The software secret of `how` in locked memory: the passphrase, or the key file's bytes. */
static MvStatus load_secret(const MvUnlock *how, uint8_t **out, size_t *out_len, MvError *err)
{
    MvStatus st;

    *out = NULL;
    *out_len = 0;
    if (how->kind == MV_UNLOCK_PASSPHRASE) {
        *out = mv__secure_alloc(how->secret_len + 1);
        if (*out == NULL)
            return nomem(err);
        memcpy(*out, how->secret, how->secret_len);
        *out_len = how->secret_len;
        return MV_OK;
    }
    st = mv__secret_file(how->path, MV_SECRET_MAX, 1, out, out_len, err);
    if (st == MV_ERR_NOTFOUND)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: key file not found", how->path);
    if (st != MV_OK)
        return st;
    if (*out_len < MIN_KEYFILE) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                          "%s: a key file needs at least %d random bytes; it has %zu (make one with "
                          "'medveil keygen -o FILE')",
                          how->path, MIN_KEYFILE, *out_len);
        mv__secure_free(*out, *out_len + 1);
        *out = NULL;
        *out_len = 0;
    }
    return st;
}

static void drop_secret(MvKeyring *kr)
{
    mv__secure_free(kr->secret, kr->secret_len + 1);
    kr->secret = NULL;
    kr->secret_len = 0;
    kr->secret_kind = 0;
}

static MvKeyring *keyring_new(const char *home)
{
    MvKeyring *kr = calloc(1, sizeof *kr);

    if (kr == NULL)
        return NULL;
    kr->dir = join(home, "keyring");
    kr->path = kr->dir != NULL ? join(kr->dir, KEYRING_FILE) : NULL;
    kr->mac_key = mv__secure_alloc(32);
    mv_kdf_params_default(&kr->kdf);
    pthread_mutex_init(&kr->mutex, NULL);
    if (kr->path == NULL || kr->mac_key == NULL) {
        mv_keyring_close(kr);
        return NULL;
    }
    return kr;
}

void mv_keyring_close(MvKeyring *kr)
{
    if (kr == NULL)
        return;
    mv__keyring_file_clear(&kr->kf);
    mv__secure_free(kr->mac_key, 32);
    drop_secret(kr);
    mv__p11_close(kr->p11);
    free(kr->p11_module);
    free(kr->dir);
    free(kr->path);
    pthread_mutex_destroy(&kr->mutex);
    free(kr);
}

/* ---- Create and open ---------------------------------------------------------------------- */

static MvStatus make_dir(const char *dir, MvError *err)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", dir, strerror(errno));
    return MV_OK;
}

MvStatus mv_keyring_create(const char *home, const MvUnlock *how, const MvKdfParams *kdf, MvKeyring **out,
                           MvError *err)
{
    MvKeyring *kr = NULL;
    MvKek *kek;
    struct stat sb;
    int lock_fd = -1, generated = 0;
    MvStatus st;

    *out = NULL;
    st = check_unlock(how, 1, err);
    if (st != MV_OK)
        return st;
    if (kdf != NULL && (st = check_kdf(kdf, err)) != MV_OK)
        return st;
    kr = keyring_new(home);
    if (kr == NULL)
        return nomem(err);
    if (kdf != NULL)
        kr->kdf = *kdf;
    if ((st = make_dir(home, err)) != MV_OK || (st = make_dir(kr->dir, err)) != MV_OK)
        goto out;
    if (chmod(kr->dir, 0700) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", kr->dir, strerror(errno));
        goto out;
    }
    st = lock_keyring(kr->dir, &lock_fd, err);
    if (st != MV_OK)
        goto out;
    if (lstat(kr->path, &sb) == 0) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                          "%s: a keyring already exists; it is never overwritten", kr->path);
        goto out;
    }
    kr->kf.keks = calloc(1, sizeof *kr->kf.keks);
    if (kr->kf.keks == NULL) {
        st = nomem(err);
        goto out;
    }
    kr->kf.n_keks = 1;
    kr->kf.current = 1;
    kek = &kr->kf.keks[0];
    kek->version = 1;
    kek->state = MV_KEK_CURRENT;
    kek->kind = how->kind;
    if (RAND_bytes(kr->kf.id, sizeof kr->kf.id) != 1 || RAND_bytes(kr->mac_key, 32) != 1) {
        st = crypto_fail(err, "the random generator");
        goto out;
    }
    if (how->kind == MV_UNLOCK_PKCS11) {
        st = mv__p11_open(how->path, how->token_label, how->secret, how->secret_len, &kr->p11, err);
        if (st != MV_OK)
            goto out;
        kr->p11_module = strdup(how->path);
        if (kr->p11_module == NULL) {
            st = nomem(err);
            goto out;
        }
        snprintf(kr->kf.p11_token, sizeof kr->kf.p11_token, "%s", how->token_label);
        token_label(kr->kf.id, 1, kek->label);
        st = mv__p11_generate(kr->p11, kek->label, err);
        if (st != MV_OK)
            goto out;
        generated = 1;
        st = mv__p11_find(kr->p11, kek->label, &kek->handle, err);
        if (st != MV_OK)
            goto out;
        kek->unlocked = 1;
    } else {
        st = load_secret(how, &kr->secret, &kr->secret_len, err);
        if (st != MV_OK)
            goto out;
        kr->secret_kind = how->kind;
        kek->key = mv__secure_alloc(MV_KEK_BYTES);
        if (kek->key == NULL) {
            st = nomem(err);
            goto out;
        }
        if (RAND_bytes(kek->key, MV_KEK_BYTES) != 1) {
            st = crypto_fail(err, "the random generator");
            goto out;
        }
        st = protect_kek(kr->kf.id, kek, how->kind, kr->secret, kr->secret_len, &kr->kdf, kek->key, err);
        if (st != MV_OK)
            goto out;
        kek->unlocked = 1;
    }
    st = wrap_with(kr, kek, DOMAIN_KEYRING, MAC_KEY_CONTEXT, kr->mac_key, 32, &kr->kf.mac_key_wrapped,
                   &kr->kf.mac_key_wrapped_len, err);
    if (st != MV_OK)
        goto out;
    st = write_keyring(kr, &kr->kf, err);
out:
    if (st != MV_OK && generated)
        (void)mv__p11_destroy(kr->p11, kr->kf.keks[0].label, NULL);
    unlock_keyring(lock_fd);
    if (st != MV_OK) {
        mv_keyring_close(kr);
        return st;
    }
    *out = kr;
    return MV_OK;
}

MvStatus mv_keyring_open(const char *home, const MvUnlock *how, MvKeyring **out, MvError *err)
{
    MvKeyring *kr = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    MvKek *cur;
    MvStatus st;

    *out = NULL;
    st = check_unlock(how, 0, err);
    if (st != MV_OK)
        return st;
    kr = keyring_new(home);
    if (kr == NULL)
        return nomem(err);
    st = read_keyring_bytes(kr->path, &bytes, &len, err);
    if (st != MV_OK)
        goto out;
    if (EVP_Digest(bytes, len, kr->disk_sum, NULL, EVP_sha256(), NULL) != 1) {
        st = crypto_fail(err, "SHA-256");
        goto out;
    }
    st = mv__keyring_file_parse(bytes, len, &kr->kf, err);
    if (st != MV_OK) {
        mv_error_prefix(err, kr->path);
        goto out;
    }
    cur = current_kek(kr);
    if (cur->kind == MV_UNLOCK_PKCS11 && how->kind != MV_UNLOCK_PKCS11) {
        st = mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET,
                          "this keyring's KEK is in the PKCS#11 token%s%s: unlock it with the token and its PIN",
                          kr->kf.p11_token[0] ? " " : "", kr->kf.p11_token);
        goto out;
    }
    if (cur->kind != MV_UNLOCK_PKCS11 && how->kind != cur->kind) {
        st = mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET, "this keyring is unlocked by a %s, not a %s",
                          cur->kind == MV_UNLOCK_PASSPHRASE ? "passphrase" : "key file",
                          how->kind == MV_UNLOCK_PASSPHRASE ? "passphrase"
                          : how->kind == MV_UNLOCK_KEYFILE ? "key file" : "PKCS#11 token");
        goto out;
    }
    if (how->kind == MV_UNLOCK_PKCS11) {
        st = mv__p11_open(how->path, how->token_label, how->secret, how->secret_len, &kr->p11, err);
        if (st != MV_OK)
            goto out;
        kr->p11_module = strdup(how->path);
        if (kr->p11_module == NULL) {
            st = nomem(err);
            goto out;
        }
    } else {
        st = load_secret(how, &kr->secret, &kr->secret_len, err);
        if (st != MV_OK)
            goto out;
        kr->secret_kind = how->kind;
        if (how->kind == MV_UNLOCK_PASSPHRASE)
            kr->kdf = cur->kdf;
    }
    st = ensure_unlocked(kr, cur, err);
    if (st == MV_ERR_NOTFOUND && cur->kind == MV_UNLOCK_PKCS11)
        st = mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET,
                          "token '%s' does not hold this keyring's KEK (no key labelled '%s')", how->token_label,
                          cur->label);
    if (st != MV_OK)
        goto out;
    st = unwrap_with(kr, DOMAIN_KEYRING, MAC_KEY_CONTEXT, kr->kf.mac_key_wrapped, kr->kf.mac_key_wrapped_len,
                     kr->mac_key, 32, err);
    if (st != MV_OK) {
        /* The MAC key is wrapped under the KEK that just opened: failing here is damage. */
        if (st == MV_ERR_NOTFOUND || st == MV_ERR_DENIED) {
            st = MV_ERR_INTEGRITY;
            if (err != NULL)
                err->code = st;
        }
        mv_error_prefix(err, kr->path);
        goto out;
    }
    st = check_mac(kr->mac_key, &kr->kf, kr->path, err);
    if (st != MV_OK)
        goto out;
    kr->kf.body = NULL;
out:
    free(bytes);
    if (st != MV_OK) {
        mv_keyring_close(kr);
        return st;
    }
    *out = kr;
    return MV_OK;
}

MvStatus mv_keyring_probe(const char *home, MvUnlockKind *kind, char *token_label, size_t cap, MvError *err)
{
    MvKeyringFile kf;
    uint8_t *bytes = NULL;
    size_t len = 0;
    char *dir = join(home, "keyring"), *path = dir != NULL ? join(dir, KEYRING_FILE) : NULL;
    MvStatus st;

    memset(&kf, 0, sizeof kf);
    if (path == NULL) {
        st = nomem(err);
        goto out;
    }
    st = read_keyring_bytes(path, &bytes, &len, err);
    if (st != MV_OK)
        goto out;
    st = mv__keyring_file_parse(bytes, len, &kf, err);
    if (st != MV_OK) {
        mv_error_prefix(err, path);
        goto out;
    }
    for (size_t i = 0; i < kf.n_keks; i++)
        if (kf.keks[i].version == kf.current)
            *kind = kf.keks[i].kind;
    if (token_label != NULL && cap > 0)
        snprintf(token_label, cap, "%s", kf.p11_token);
out:
    mv__keyring_file_clear(&kf);
    free(bytes);
    free(path);
    free(dir);
    return st;
}

uint32_t mv_keyring_current_version(const MvKeyring *kr)
{
    pthread_mutex_t *mutex = (pthread_mutex_t *)&kr->mutex;
    uint32_t v;

    pthread_mutex_lock(mutex);
    v = kr->kf.current;
    pthread_mutex_unlock(mutex);
    return v;
}

size_t mv_keyring_versions(const MvKeyring *kr, uint32_t *versions, size_t cap)
{
    pthread_mutex_t *mutex = (pthread_mutex_t *)&kr->mutex;
    size_t n = 0;

    pthread_mutex_lock(mutex);
    for (size_t i = 0; i < kr->kf.n_keks; i++) {
        if (kr->kf.keks[i].state == MV_KEK_RETIRED)
            continue;
        if (n < cap)
            versions[n] = kr->kf.keks[i].version;
        n++;
    }
    pthread_mutex_unlock(mutex);
    return n;
}

MvStatus mv_keyring_set_kdf(MvKeyring *kr, const MvKdfParams *kdf, MvError *err)
{
    MvStatus st = check_kdf(kdf, err);

    if (st == MV_OK) {
        pthread_mutex_lock(&kr->mutex);
        kr->kdf = *kdf;
        pthread_mutex_unlock(&kr->mutex);
    }
    return st;
}

/* ---- Named keys ------------------------------------------------------------------------------ */

static void named_context(const char *name, char out[MV_NAME_MAX + 8])
{
    snprintf(out, MV_NAME_MAX + 8, "named:%s", name);
}

static MvNamedKey *find_named(MvKeyring *kr, const char *name, size_t *insert_at)
{
    size_t i = 0;

    for (; i < kr->kf.n_named; i++) {
        int c = strcmp(kr->kf.named[i].name, name);
        if (c == 0)
            return &kr->kf.named[i];
        if (c > 0)
            break;
    }
    if (insert_at != NULL)
        *insert_at = i;
    return NULL;
}

static MvStatus keyring_named_key(MvKeyring *kr, const char *name, uint8_t out[32], MvError *err)
{
    char context[MV_NAME_MAX + 8];
    MvNamedKey *nk, *grown = NULL;
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0, at = 0;
    int lock_fd = -1;
    MvStatus st;

    if (!mv__keyring_name_valid(name))
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "named key '%s': a name is 1 to %d of a-z 0-9 . _ -", name != NULL ? name : "",
                            MV_NAME_MAX);
    named_context(name, context);
    nk = find_named(kr, name, NULL);
    if (nk == NULL) {
        st = lock_keyring(kr->dir, &lock_fd, err);
        if (st != MV_OK)
            return st;
        st = refresh(kr, err);
        if (st != MV_OK)
            goto out;
        nk = find_named(kr, name, &at);
    }
    if (nk != NULL) {
        st = unwrap_with(kr, DOMAIN_KEYRING, context, nk->wrapped, nk->wrapped_len, out, 32, err);
        if (st != MV_OK)
            mv_error_prefix(err, name);
        goto out;
    }
    /* First use: a random key, wrapped under the current KEK and stored before it is returned. */
    if (RAND_bytes(out, 32) != 1) {
        st = crypto_fail(err, "the random generator");
        goto out;
    }
    st = wrap_with(kr, current_kek(kr), DOMAIN_KEYRING, context, out, 32, &wrapped, &wrapped_len, err);
    if (st != MV_OK)
        goto out;
    grown = calloc(kr->kf.n_named + 1, sizeof *grown);
    if (grown == NULL) {
        st = nomem(err);
        goto out;
    }
    if (at > 0)
        memcpy(grown, kr->kf.named, at * sizeof *grown);
    snprintf(grown[at].name, sizeof grown[at].name, "%s", name);
    grown[at].wrapped = wrapped;
    grown[at].wrapped_len = wrapped_len;
    if (kr->kf.n_named > at)
        memcpy(grown + at + 1, kr->kf.named + at, (kr->kf.n_named - at) * sizeof *grown);
    {
        MvKeyringFile view = kr->kf;
        view.named = grown;
        view.n_named = kr->kf.n_named + 1;
        st = write_keyring(kr, &view, err);
    }
    if (st != MV_OK)
        goto out;
    free(kr->kf.named);
    kr->kf.named = grown;
    kr->kf.n_named++;
    grown = NULL;
    wrapped = NULL;
out:
    free(grown);
    free(wrapped);
    unlock_keyring(lock_fd);
    if (st != MV_OK)
        OPENSSL_cleanse(out, 32);
    return st;
}

/* ---- Rotation and retirement -------------------------------------------------------------- */

static MvStatus keyring_rotate(MvKeyring *kr, const MvUnlock *how, MvError *err)
{
    MvKeyringFile view;
    MvKek *cur, *old_keks = kr->kf.keks, *new_keks = NULL, *fresh;
    MvNamedKey *new_named = NULL;
    MvP11 *opened_p11 = NULL;
    uint8_t *new_secret = NULL, *new_mac = NULL, tmp[32];
    size_t new_secret_len = 0, new_mac_len = 0, n = kr->kf.n_keks;
    MvUnlockKind kind;
    const uint8_t *secret;
    size_t secret_len;
    int lock_fd = -1, generated = 0;
    MvStatus st;

    if (how != NULL && (st = check_unlock(how, 1, err)) != MV_OK)
        return st;
    st = lock_keyring(kr->dir, &lock_fd, err);
    if (st != MV_OK)
        return st;
    st = refresh(kr, err);
    if (st != MV_OK)
        goto out;
    old_keks = kr->kf.keks;
    n = kr->kf.n_keks;
    cur = current_kek(kr);
    st = ensure_unlocked(kr, cur, err);
    if (st != MV_OK)
        goto out;
    kind = how != NULL ? how->kind : cur->kind;
    secret = kr->secret;
    secret_len = kr->secret_len;
    if (how != NULL && kind != MV_UNLOCK_PKCS11) {
        st = load_secret(how, &new_secret, &new_secret_len, err);
        if (st != MV_OK)
            goto out;
        secret = new_secret;
        secret_len = new_secret_len;
    } else if (kind != MV_UNLOCK_PKCS11 && (kr->secret == NULL || kr->secret_kind != kind)) {
        st = mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET,
                          "this session holds no %s to protect the new KEK version with",
                          kind == MV_UNLOCK_PASSPHRASE ? "passphrase" : "key file");
        goto out;
    }
    if (kind == MV_UNLOCK_PKCS11 && how != NULL) {
        if (kr->p11 == NULL) {
            st = mv__p11_open(how->path, how->token_label, how->secret, how->secret_len, &opened_p11, err);
            if (st != MV_OK)
                goto out;
            kr->p11 = opened_p11;
        } else if (kr->p11_module == NULL || strcmp(kr->p11_module, how->path) != 0 ||
                   strcmp(kr->kf.p11_token, how->token_label) != 0) {
            st = mv_error_set(err, MV_ERR_UNSUPPORTED, MV_NO_TAG, MV_NO_OFFSET,
                              "moving the KEK to another PKCS#11 module or token is not supported");
            goto out;
        }
    }
    new_keks = calloc(n + 1, sizeof *new_keks);
    new_named = calloc(kr->kf.n_named + 1, sizeof *new_named);
    if (new_keks == NULL || new_named == NULL) {
        st = nomem(err);
        goto out;
    }
    memcpy(new_keks, old_keks, n * sizeof *new_keks);
    for (size_t i = 0; i < n; i++)
        if (new_keks[i].state == MV_KEK_CURRENT)
            new_keks[i].state = MV_KEK_OLD;
    fresh = &new_keks[n];
    fresh->version = old_keks[n - 1].version + 1;
    fresh->state = MV_KEK_CURRENT;
    fresh->kind = kind;
    if (fresh->version == UINT32_MAX) {
        st = mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "no KEK version numbers left");
        goto out;
    }
    if (kind == MV_UNLOCK_PKCS11) {
        token_label(kr->kf.id, fresh->version, fresh->label);
        st = mv__p11_generate(kr->p11, fresh->label, err);
        if (st != MV_OK)
            goto out;
        generated = 1;
        st = mv__p11_find(kr->p11, fresh->label, &fresh->handle, err);
        if (st != MV_OK)
            goto out;
    } else {
        fresh->key = mv__secure_alloc(MV_KEK_BYTES);
        if (fresh->key == NULL) {
            st = nomem(err);
            goto out;
        }
        if (RAND_bytes(fresh->key, MV_KEK_BYTES) != 1) {
            st = crypto_fail(err, "the random generator");
            goto out;
        }
        st = protect_kek(kr->kf.id, fresh, kind, secret, secret_len, &kr->kdf, fresh->key, err);
        if (st != MV_OK)
            goto out;
    }
    fresh->unlocked = 1;
    /* A new passphrase or key file protects the older software versions too (fresh salts), so
     * that the old secret opens nothing in this keyring any more. */
    if (how != NULL && kind != MV_UNLOCK_PKCS11) {
        for (size_t i = 0; i < n; i++) {
            MvKek *o = &old_keks[i];
            if (o->state == MV_KEK_RETIRED || o->kind == MV_UNLOCK_PKCS11 || ensure_unlocked(kr, o, NULL) != MV_OK)
                continue;
            new_keks[i].key = o->key;
            new_keks[i].unlocked = 1;
            st = protect_kek(kr->kf.id, &new_keks[i], kind, secret, secret_len, &kr->kdf, o->key, err);
            if (st != MV_OK)
                goto out;
        }
    }
    for (size_t i = 0; i < kr->kf.n_named; i++) {
        char context[MV_NAME_MAX + 8];
        MvNamedKey *nk = &kr->kf.named[i];
        named_context(nk->name, context);
        st = unwrap_with(kr, DOMAIN_KEYRING, context, nk->wrapped, nk->wrapped_len, tmp, sizeof tmp, err);
        if (st == MV_OK)
            st = wrap_with(kr, fresh, DOMAIN_KEYRING, context, tmp, sizeof tmp, &new_named[i].wrapped,
                           &new_named[i].wrapped_len, err);
        OPENSSL_cleanse(tmp, sizeof tmp);
        if (st != MV_OK) {
            mv_error_prefix(err, nk->name);
            goto out;
        }
        memcpy(new_named[i].name, nk->name, sizeof nk->name);
    }
    st = wrap_with(kr, fresh, DOMAIN_KEYRING, MAC_KEY_CONTEXT, kr->mac_key, 32, &new_mac, &new_mac_len, err);
    if (st != MV_OK)
        goto out;
    view = kr->kf;
    view.keks = new_keks;
    view.n_keks = n + 1;
    view.current = fresh->version;
    view.named = new_named;
    view.mac_key_wrapped = new_mac;
    view.mac_key_wrapped_len = new_mac_len;
    if (how != NULL && kind == MV_UNLOCK_PKCS11)
        snprintf(view.p11_token, sizeof view.p11_token, "%s", how->token_label);
    st = write_keyring(kr, &view, err);
    if (st != MV_OK)
        goto out;
    /* Committed: the view becomes the keyring. */
    for (size_t i = 0; i < kr->kf.n_named; i++)
        free(kr->kf.named[i].wrapped);
    free(kr->kf.named);
    free(kr->kf.mac_key_wrapped);
    free(old_keks);
    kr->kf = view;
    new_keks = NULL;
    new_named = NULL;
    new_mac = NULL;
    generated = 0;
    if (how != NULL && kind == MV_UNLOCK_PKCS11 && opened_p11 != NULL) {
        /* Only used to compare later; NULL (out of memory) refuses further token changes. */
        kr->p11_module = strdup(how->path);
        opened_p11 = NULL;
    }
    if (new_secret != NULL) {
        drop_secret(kr);
        kr->secret = new_secret;
        kr->secret_len = new_secret_len;
        kr->secret_kind = kind;
        new_secret = NULL;
    }
out:
    if (generated)
        (void)mv__p11_destroy(kr->p11, new_keks[n].label, NULL);
    if (new_keks != NULL)
        mv__secure_free(new_keks[n].key, MV_KEK_BYTES);
    free(new_keks);
    if (new_named != NULL)
        for (size_t i = 0; i < kr->kf.n_named; i++)
            free(new_named[i].wrapped);
    free(new_named);
    free(new_mac);
    if (opened_p11 != NULL) {
        kr->p11 = NULL;
        mv__p11_close(opened_p11);
    }
    if (new_secret != NULL)
        mv__secure_free(new_secret, new_secret_len + 1);
    unlock_keyring(lock_fd);
    return st;
}

static MvStatus keyring_retire_old(MvKeyring *kr, unsigned *n_retired, MvError *err)
{
    MvKek *new_keks = NULL;
    MvKeyringFile view;
    unsigned count = 0;
    int lock_fd = -1;
    MvStatus st;

    *n_retired = 0;
    st = lock_keyring(kr->dir, &lock_fd, err);
    if (st != MV_OK)
        return st;
    st = refresh(kr, err);
    if (st != MV_OK)
        goto out;
    for (size_t i = 0; i < kr->kf.n_keks; i++) {
        MvKek *k = &kr->kf.keks[i];
        if (k->state == MV_KEK_OLD && k->kind == MV_UNLOCK_PKCS11 && kr->p11 == NULL) {
            st = mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET,
                              "KEK version %u is in a PKCS#11 token; retire it with the token open", k->version);
            goto out;
        }
        if (k->state == MV_KEK_OLD)
            count++;
    }
    if (count == 0)
        goto out;
    new_keks = calloc(kr->kf.n_keks, sizeof *new_keks);
    if (new_keks == NULL) {
        st = nomem(err);
        goto out;
    }
    for (size_t i = 0; i < kr->kf.n_keks; i++) {
        const MvKek *k = &kr->kf.keks[i];
        if (k->state != MV_KEK_OLD) {
            new_keks[i] = *k;
            continue;
        }
        new_keks[i].version = k->version;
        new_keks[i].kind = k->kind;
        new_keks[i].state = MV_KEK_RETIRED;
    }
    view = kr->kf;
    view.keks = new_keks;
    st = write_keyring(kr, &view, err);
    if (st != MV_OK)
        goto out;
    /* The file no longer holds them: wipe the keys in memory, destroy the token objects. */
    for (size_t i = 0; i < kr->kf.n_keks; i++) {
        MvKek *k = &kr->kf.keks[i];
        if (k->state != MV_KEK_OLD)
            continue;
        mv__secure_free(k->key, MV_KEK_BYTES);
        k->key = NULL;
        if (k->kind == MV_UNLOCK_PKCS11) {
            MvStatus ds = mv__p11_destroy(kr->p11, k->label, err);
            if (ds != MV_OK && ds != MV_ERR_NOTFOUND && st == MV_OK) {
                st = ds;
                mv_error_prefix(err, "retired in the keyring, but the token key could not be destroyed (run "
                                     "retire again)");
            }
        }
    }
    OPENSSL_cleanse(kr->kf.keks, kr->kf.n_keks * sizeof *kr->kf.keks);
    free(kr->kf.keks);
    kr->kf.keks = new_keks;
    new_keks = NULL;
    *n_retired = count;
out:
    /* Token keys of versions retired earlier whose destruction failed then: try again. */
    if (st == MV_OK && kr->p11 != NULL)
        for (size_t i = 0; i < kr->kf.n_keks; i++) {
            const MvKek *k = &kr->kf.keks[i];
            char label[MV_LABEL_MAX];
            MvStatus ds;
            if (k->state != MV_KEK_RETIRED || k->kind != MV_UNLOCK_PKCS11)
                continue;
            token_label(kr->kf.id, k->version, label);
            ds = mv__p11_destroy(kr->p11, label, err);
            if (ds != MV_OK && ds != MV_ERR_NOTFOUND) {
                st = ds;
                break;
            }
        }
    free(new_keks);
    unlock_keyring(lock_fd);
    return st;
}

/* ---- Public entry points: one operation at a time per keyring ---------------------------- */

MvStatus mv_keyring_wrap(MvKeyring *kr, const uint8_t *key, size_t key_len, const char *context,
                         uint8_t **wrapped, size_t *wrapped_len, MvError *err)
{
    MvStatus st;

    assert(kr != NULL);
    pthread_mutex_lock(&kr->mutex);
    st = keyring_wrap(kr, key, key_len, context, wrapped, wrapped_len, err);
    pthread_mutex_unlock(&kr->mutex);
    return st;
}

MvStatus mv_keyring_unwrap(MvKeyring *kr, const uint8_t *wrapped, size_t wrapped_len, const char *context,
                           uint8_t *key, size_t key_len, MvError *err)
{
    MvStatus st;

    assert(kr != NULL);
    pthread_mutex_lock(&kr->mutex);
    st = keyring_unwrap(kr, wrapped, wrapped_len, context, key, key_len, err);
    pthread_mutex_unlock(&kr->mutex);
    return st;
}

MvStatus mv_keyring_named_key(MvKeyring *kr, const char *name, uint8_t out[32], MvError *err)
{
    MvStatus st;

    assert(kr != NULL);
    pthread_mutex_lock(&kr->mutex);
    st = keyring_named_key(kr, name, out, err);
    pthread_mutex_unlock(&kr->mutex);
    return st;
}

MvStatus mv_keyring_rotate(MvKeyring *kr, const MvUnlock *how, MvError *err)
{
    MvStatus st;

    assert(kr != NULL);
    pthread_mutex_lock(&kr->mutex);
    st = keyring_rotate(kr, how, err);
    pthread_mutex_unlock(&kr->mutex);
    return st;
}

MvStatus mv_keyring_retire_old(MvKeyring *kr, unsigned *n_retired, MvError *err)
{
    MvStatus st;

    assert(kr != NULL);
    pthread_mutex_lock(&kr->mutex);
    st = keyring_retire_old(kr, n_retired, err);
    pthread_mutex_unlock(&kr->mutex);
    return st;
}
