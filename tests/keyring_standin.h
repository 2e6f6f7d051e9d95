/* TEMPORARY test-only stand-in for the keyring of include/medveil/keys.h, used by
 * tests/test_vault.c until the real keyring (branch keyring) is merged. Keys are kept in the
 * clear in HOME/keyring/standin: never use outside tests. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "medveil/keys.h"

#define SI_MAX_VERSIONS 16
#define SI_MAX_NAMED 8

struct MvKeyring {
    char path[512];
    uint32_t current;
    uint8_t kek[SI_MAX_VERSIONS + 1][32];
    uint8_t present[SI_MAX_VERSIONS + 1];
    char names[SI_MAX_NAMED][32];
    uint8_t named[SI_MAX_NAMED][32];
    int n_named;
};

static int si_save(MvKeyring *kr)
{
    FILE *f = fopen(kr->path, "wb");
    if (f == NULL)
        return -1;
    fwrite(kr, sizeof *kr, 1, f);
    return fclose(f);
}

MvStatus mv_keyring_create(const char *home, const MvUnlock *how, const MvKdfParams *kdf, MvKeyring **out, MvError *err)
{
    MvKeyring *kr = calloc(1, sizeof *kr);
    char dir[256];
    (void)how;
    (void)kdf;
    snprintf(dir, sizeof dir, "%s/keyring", home);
    mkdir(home, 0700);
    if (mkdir(dir, 0700) != 0)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "exists");
    snprintf(kr->path, sizeof kr->path, "%s/standin", dir);
    kr->current = 1;
    kr->present[1] = 1;
    RAND_bytes(kr->kek[1], 32);
    si_save(kr);
    *out = kr;
    return MV_OK;
}

MvStatus mv_keyring_open(const char *home, const MvUnlock *how, MvKeyring **out, MvError *err)
{
    MvKeyring *kr = calloc(1, sizeof *kr);
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/keyring/standin", home);
    f = fopen(path, "rb");
    if (f == NULL) {
        free(kr);
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET, "no keyring");
    }
    if (fread(kr, sizeof *kr, 1, f) != 1) {
        fclose(f);
        free(kr);
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "bad keyring");
    }
    fclose(f);
    snprintf(kr->path, sizeof kr->path, "%s", path);
    if (how != NULL && how->kind == MV_UNLOCK_PASSPHRASE && how->secret_len == 5 &&
        memcmp(how->secret, "wrong", 5) == 0) {
        free(kr);
        return mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET, "wrong passphrase");
    }
    *out = kr;
    return MV_OK;
}

void mv_keyring_close(MvKeyring *kr)
{
    free(kr);
}

uint32_t mv_keyring_current_version(const MvKeyring *kr)
{
    return kr->current;
}

/* wrapped = version (4) || nonce (12) || ct || tag (16); AAD = context */
MvStatus mv_keyring_wrap(MvKeyring *kr, const uint8_t *key, size_t key_len, const char *context, uint8_t **wrapped,
                         size_t *wrapped_len, MvError *err)
{
    uint8_t *w = malloc(4 + 12 + key_len + 16);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n;
    (void)err;
    w[0] = 0;
    w[1] = 0;
    w[2] = 0;
    w[3] = (uint8_t)kr->current;
    RAND_bytes(w + 4, 12);
    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, kr->kek[kr->current], w + 4);
    EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)context, (int)strlen(context));
    EVP_EncryptUpdate(c, w + 16, &n, key, (int)key_len);
    EVP_EncryptFinal_ex(c, w + 16 + key_len, &n);
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, w + 16 + key_len);
    EVP_CIPHER_CTX_free(c);
    *wrapped = w;
    *wrapped_len = 4 + 12 + key_len + 16;
    return MV_OK;
}

uint32_t mv_keyring_wrapped_version(const uint8_t *wrapped, size_t wrapped_len)
{
    return wrapped_len > 32 ? wrapped[3] : 0;
}

MvStatus mv_keyring_unwrap(MvKeyring *kr, const uint8_t *wrapped, size_t wrapped_len, const char *context,
                           uint8_t *key, size_t key_len, MvError *err)
{
    uint32_t ver = mv_keyring_wrapped_version(wrapped, wrapped_len);
    EVP_CIPHER_CTX *c;
    uint8_t tag[16];
    int n, ok;
    if (ver == 0 || ver > SI_MAX_VERSIONS || wrapped_len != 4 + 12 + key_len + 16)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "malformed wrapped key");
    if (!kr->present[ver])
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET, "KEK version retired");
    memcpy(tag, wrapped + 16 + key_len, 16);
    c = EVP_CIPHER_CTX_new();
    EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, kr->kek[ver], wrapped + 4);
    EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)context, (int)strlen(context));
    EVP_DecryptUpdate(c, key, &n, wrapped + 16, (int)key_len);
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag);
    ok = EVP_DecryptFinal_ex(c, key + key_len, &n) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "unwrap failed");
    return MV_OK;
}

MvStatus mv_keyring_named_key(MvKeyring *kr, const char *name, uint8_t out[32], MvError *err)
{
    (void)err;
    for (int i = 0; i < kr->n_named; i++) {
        if (strcmp(kr->names[i], name) == 0) {
            memcpy(out, kr->named[i], 32);
            return MV_OK;
        }
    }
    snprintf(kr->names[kr->n_named], 32, "%s", name);
    RAND_bytes(kr->named[kr->n_named], 32);
    memcpy(out, kr->named[kr->n_named], 32);
    kr->n_named++;
    si_save(kr);
    return MV_OK;
}

MvStatus mv_keyring_rotate(MvKeyring *kr, const MvUnlock *how, MvError *err)
{
    (void)how;
    (void)err;
    kr->current++;
    kr->present[kr->current] = 1;
    RAND_bytes(kr->kek[kr->current], 32);
    si_save(kr);
    return MV_OK;
}

MvStatus mv_keyring_retire_old(MvKeyring *kr, unsigned *n_retired, MvError *err)
{
    (void)err;
    *n_retired = 0;
    for (uint32_t v = 1; v < kr->current; v++) {
        if (kr->present[v]) {
            kr->present[v] = 0;
            memset(kr->kek[v], 0, 32);
            (*n_retired)++;
        }
    }
    si_save(kr);
    return MV_OK;
}
