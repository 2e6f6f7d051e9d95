/* The keyring file codec: HOME/keyring/keyring holds one line of compact JSON (the body: KEK
 * versions and how each is protected, named keys and the file's MAC key, all wrapped), a line
 * with the HMAC-SHA256 of the body, and a line with the SHA-256 of both. The bytes are
 * untrusted: every field is bounded and checked, and any defect is MV_ERR_INTEGRITY. The
 * format is described in docs/keys.md; keyring.c checks the HMAC once the KEK is unlocked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/core_int.h"
#include "keys/keys_int.h"

#define FORMAT_NAME "medveil-keyring"
#define FORMAT_VERSION 1
#define MAC_PREFIX "hmac-sha256 "
#define SUM_PREFIX "sha256 "
#define MAX_VERSIONS 10000
#define MAX_NAMED 10000
#define WRAP_HEX_MAX (2 * (MV_WRAP_MAX_KEY + MV_WRAP_OVERHEAD))

const char *mv__kind_name(MvUnlockKind kind)
{
    switch (kind) {
    case MV_UNLOCK_PASSPHRASE: return "passphrase";
    case MV_UNLOCK_KEYFILE: return "keyfile";
    case MV_UNLOCK_PKCS11: return "pkcs11";
    }
    return "?";
}

static const char *state_name(MvKekState state)
{
    switch (state) {
    case MV_KEK_CURRENT: return "current";
    case MV_KEK_OLD: return "old";
    case MV_KEK_RETIRED: return "retired";
    }
    return "?";
}

void mv__keyring_file_clear(MvKeyringFile *kf)
{
    if (kf == NULL)
        return;
    for (size_t i = 0; i < kf->n_keks; i++)
        mv__secure_free(kf->keks[i].key, MV_KEK_BYTES);
    free(kf->keks);
    for (size_t i = 0; i < kf->n_named; i++)
        free(kf->named[i].wrapped);
    free(kf->named);
    free(kf->mac_key_wrapped);
    OPENSSL_cleanse(kf, sizeof *kf);
    memset(kf, 0, sizeof *kf);
}

/* ---- Parsing ------------------------------------------------------------------------ */

static MvStatus bad(MvError *err, const char *what)
{
    return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "keyring file is damaged: %s", what);
}

/* A string member that must be present; its length in *len. */
static const char *get_str(json_t *obj, const char *key, size_t *len)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

static int get_u32(json_t *obj, const char *key, uint32_t min, uint32_t max, uint32_t *out)
{
    json_t *v = json_object_get(obj, key);
    json_int_t x;

    if (!json_is_integer(v))
        return -1;
    x = json_integer_value(v);
    if (x < (json_int_t)min || x > (json_int_t)max)
        return -1;
    *out = (uint32_t)x;
    return 0;
}

static int get_hex(json_t *obj, const char *key, uint8_t *out, size_t n)
{
    size_t len = 0;
    const char *s = get_str(obj, key, &len);

    return s == NULL ? -1 : mv__unhex(s, len, out, n);
}

/* A wrapped blob in hex: at least the overhead and one key byte, at most WRAP_HEX_MAX digits. */
static int get_blob(json_t *v, uint8_t **out, size_t *out_len)
{
    size_t len;
    const char *s;

    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len % 2 != 0 || len > WRAP_HEX_MAX || len < 2 * (MV_WRAP_OVERHEAD + 1))
        return -1;
    *out = malloc(len / 2);
    if (*out == NULL)
        return -1;
    if (mv__unhex(s, len, *out, len / 2) != 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    *out_len = len / 2;
    return 0;
}

static int valid_label(const char *s, size_t len)
{
    if (len == 0 || len >= MV_LABEL_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static MvStatus parse_version(json_t *obj, size_t index, MvKek *kek, MvError *err)
{
    char what[96];
    size_t len = 0;
    const char *s;

    snprintf(what, sizeof what, "versions[%zu]", index);
    if (!json_is_object(obj))
        return bad(err, what);
    if (get_u32(obj, "version", 1, UINT32_MAX - 1, &kek->version) != 0) {
        snprintf(what, sizeof what, "versions[%zu].version", index);
        return bad(err, what);
    }
    s = get_str(obj, "state", &len);
    if (s != NULL && strcmp(s, "current") == 0)
        kek->state = MV_KEK_CURRENT;
    else if (s != NULL && strcmp(s, "old") == 0)
        kek->state = MV_KEK_OLD;
    else if (s != NULL && strcmp(s, "retired") == 0)
        kek->state = MV_KEK_RETIRED;
    else {
        snprintf(what, sizeof what, "version %u: state", kek->version);
        return bad(err, what);
    }
    s = get_str(obj, "kind", &len);
    if (s != NULL && strcmp(s, "passphrase") == 0)
        kek->kind = MV_UNLOCK_PASSPHRASE;
    else if (s != NULL && strcmp(s, "keyfile") == 0)
        kek->kind = MV_UNLOCK_KEYFILE;
    else if (s != NULL && strcmp(s, "pkcs11") == 0)
        kek->kind = MV_UNLOCK_PKCS11;
    else {
        snprintf(what, sizeof what, "version %u: kind", kek->version);
        return bad(err, what);
    }
    if (kek->state == MV_KEK_RETIRED) {
        /* Nothing is left of a retired version but its number and kind. */
        if (json_object_size(obj) != 3) {
            snprintf(what, sizeof what, "version %u: a retired version holds key material", kek->version);
            return bad(err, what);
        }
        return MV_OK;
    }
    if (kek->kind == MV_UNLOCK_PKCS11) {
        s = get_str(obj, "label", &len);
        if (s == NULL || !valid_label(s, len) || json_object_size(obj) != 4) {
            snprintf(what, sizeof what, "version %u: token key label", kek->version);
            return bad(err, what);
        }
        memcpy(kek->label, s, len);
        kek->label[len] = '\0';
        return MV_OK;
    }
    if (get_hex(obj, "salt", kek->salt, sizeof kek->salt) != 0 ||
        get_hex(obj, "nonce", kek->nonce, sizeof kek->nonce) != 0 ||
        get_hex(obj, "wrapped", kek->wrapped, sizeof kek->wrapped) != 0) {
        snprintf(what, sizeof what, "version %u: salt, nonce or wrapped key", kek->version);
        return bad(err, what);
    }
    if (kek->kind == MV_UNLOCK_PASSPHRASE) {
        json_t *kdf = json_object_get(obj, "kdf");
        s = kdf != NULL ? get_str(kdf, "alg", &len) : NULL;
        if (!json_is_object(kdf) || s == NULL || strcmp(s, "argon2id") != 0 || json_object_size(kdf) != 4 ||
            get_u32(kdf, "t", 1, MV_KDF_MAX_T, &kek->kdf.t_cost) != 0 ||
            get_u32(kdf, "p", 1, MV_KDF_MAX_P, &kek->kdf.parallelism) != 0 ||
            get_u32(kdf, "m_kib", 8 * kek->kdf.parallelism, MV_KDF_MAX_M_KIB, &kek->kdf.m_cost_kib) != 0 ||
            json_object_size(obj) != 7) {
            snprintf(what, sizeof what, "version %u: Argon2id parameters", kek->version);
            return bad(err, what);
        }
    } else if (json_object_size(obj) != 6) {
        snprintf(what, sizeof what, "version %u: unexpected members", kek->version);
        return bad(err, what);
    }
    return MV_OK;
}

static int valid_name(const char *s, size_t len)
{
    if (len == 0 || len > MV_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return 1;
}

int mv__keyring_name_valid(const char *name)
{
    return name != NULL && valid_name(name, strlen(name));
}

static MvStatus parse_body(json_t *root, MvKeyringFile *kf, MvError *err)
{
    json_t *versions, *named, *v;
    const char *s, *key;
    size_t len = 0, n_current = 0;
    uint32_t format_version = 0;
    MvStatus st;

    if (!json_is_object(root))
        return bad(err, "the body is not a JSON object");
    s = get_str(root, "format", &len);
    if (s == NULL || strcmp(s, FORMAT_NAME) != 0)
        return bad(err, "not a medveil keyring (format)");
    if (get_u32(root, "format_version", 1, UINT32_MAX, &format_version) != 0)
        return bad(err, "format_version");
    if (format_version != FORMAT_VERSION)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_NO_TAG, MV_NO_OFFSET,
                            "keyring format version %u is not supported (this medveil reads %d)", format_version,
                            FORMAT_VERSION);
    if (get_hex(root, "id", kf->id, sizeof kf->id) != 0)
        return bad(err, "id");
    if (get_u32(root, "current", 1, UINT32_MAX - 1, &kf->current) != 0)
        return bad(err, "current");
    s = get_str(root, "token", &len);
    if (s != NULL) {
        if (!valid_label(s, len))
            return bad(err, "token");
        memcpy(kf->p11_token, s, len);
        kf->p11_token[len] = '\0';
    } else if (json_object_get(root, "token") != NULL) {
        return bad(err, "token");
    }
    versions = json_object_get(root, "versions");
    if (!json_is_array(versions) || json_array_size(versions) == 0 || json_array_size(versions) > MAX_VERSIONS)
        return bad(err, "versions");
    kf->keks = calloc(json_array_size(versions), sizeof *kf->keks);
    if (kf->keks == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    for (size_t i = 0; i < json_array_size(versions); i++) {
        MvKek *kek = &kf->keks[i];
        st = parse_version(json_array_get(versions, i), i, kek, err);
        if (st != MV_OK)
            return st;
        kf->n_keks++;
        if (i > 0 && kek->version <= kf->keks[i - 1].version)
            return bad(err, "versions are not in ascending order");
        if (kek->state == MV_KEK_CURRENT) {
            n_current++;
            if (kek->version != kf->current)
                return bad(err, "the current version disagrees with its record");
        } else if (kek->version > kf->current && kek->state != MV_KEK_RETIRED) {
            return bad(err, "an old version is newer than the current one");
        }
    }
    if (n_current != 1)
        return bad(err, "there must be exactly one current version");
    named = json_object_get(root, "named");
    if (!json_is_object(named) || json_object_size(named) > MAX_NAMED)
        return bad(err, "named");
    kf->named = calloc(json_object_size(named) + 1, sizeof *kf->named);
    if (kf->named == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    json_object_foreach(named, key, v) {
        MvNamedKey *nk = &kf->named[kf->n_named];
        len = strlen(key);
        if (!valid_name(key, len) || get_blob(v, &nk->wrapped, &nk->wrapped_len) != 0)
            return bad(err, "a named key");
        memcpy(nk->name, key, len + 1);
        kf->n_named++;
    }
    /* Keep named keys sorted by name (jansson's iteration order is not). */
    for (size_t i = 1; i < kf->n_named; i++)
        for (size_t j = i; j > 0 && strcmp(kf->named[j - 1].name, kf->named[j].name) > 0; j--) {
            MvNamedKey t = kf->named[j - 1];
            kf->named[j - 1] = kf->named[j];
            kf->named[j] = t;
        }
    if (get_blob(json_object_get(root, "mac_key"), &kf->mac_key_wrapped, &kf->mac_key_wrapped_len) != 0)
        return bad(err, "mac_key");
    /* Members not listed above are refused: a keyring says only what this code reads. */
    if (json_object_size(root) != (size_t)(7 + (kf->p11_token[0] != '\0')))
        return bad(err, "unexpected members");
    return MV_OK;
}

/* Finds the line that starts at *pos and ends with '\n'; advances *pos past it. */
static int next_line(const uint8_t *buf, size_t len, size_t *pos, size_t *line_len)
{
    const uint8_t *nl = memchr(buf + *pos, '\n', len - *pos);

    if (nl == NULL)
        return -1;
    *line_len = (size_t)(nl - (buf + *pos));
    *pos += *line_len + 1;
    return 0;
}

MvStatus mv__keyring_file_parse(const uint8_t *buf, size_t len, MvKeyringFile *kf, MvError *err)
{
    uint8_t sum[32], want[32];
    size_t pos = 0, body_len = 0, mac_len = 0, sum_len = 0, mac_start, sum_start;
    json_t *root = NULL;
    json_error_t jerr;
    MvStatus st = MV_OK;

    memset(kf, 0, sizeof *kf);
    if (len > MV_KEYRING_MAX) {
        st = bad(err, "larger than 1 MiB");
        goto out;
    }
    if (next_line(buf, len, &pos, &body_len) != 0) {
        st = bad(err, "line 1 is not complete");
        goto out;
    }
    mac_start = pos;
    if (next_line(buf, len, &pos, &mac_len) != 0) {
        st = bad(err, "line 2 (HMAC) is missing");
        goto out;
    }
    sum_start = pos;
    if (next_line(buf, len, &pos, &sum_len) != 0 || pos != len) {
        st = bad(err, "line 3 (checksum) is missing, or bytes follow it");
        goto out;
    }
    if (sum_len != sizeof SUM_PREFIX - 1 + 64 || memcmp(buf + sum_start, SUM_PREFIX, sizeof SUM_PREFIX - 1) != 0 ||
        mv__unhex((const char *)buf + sum_start + sizeof SUM_PREFIX - 1, 64, want, sizeof want) != 0) {
        st = bad(err, "line 3 is not 'sha256 <64 hex digits>'");
        goto out;
    }
    if (EVP_Digest(buf, sum_start, sum, NULL, EVP_sha256(), NULL) != 1) {
        st = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "SHA-256 failed");
        goto out;
    }
    if (CRYPTO_memcmp(sum, want, sizeof sum) != 0) {
        st = bad(err, "checksum mismatch (a byte changed)");
        goto out;
    }
    if (mac_len != sizeof MAC_PREFIX - 1 + 64 || memcmp(buf + mac_start, MAC_PREFIX, sizeof MAC_PREFIX - 1) != 0 ||
        mv__unhex((const char *)buf + mac_start + sizeof MAC_PREFIX - 1, 64, kf->mac, sizeof kf->mac) != 0) {
        st = bad(err, "line 2 is not 'hmac-sha256 <64 hex digits>'");
        goto out;
    }
    root = json_loadb((const char *)buf, body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        char what[64];
        snprintf(what, sizeof what, "line 1 is not JSON (column %d)", jerr.column);
        st = bad(err, what);
        goto out;
    }
    st = parse_body(root, kf, err);
    if (st != MV_OK)
        goto out;
    kf->body = buf;
    kf->body_len = body_len + 1; /* the newline is authenticated too */
out:
    json_decref(root);
    if (st != MV_OK)
        mv__keyring_file_clear(kf);
    return st;
}

/* ---- Formatting --------------------------------------------------------------------- */

static json_t *hex_string(const uint8_t *in, size_t n)
{
    char *s = malloc(2 * n + 1);
    json_t *v;

    if (s == NULL)
        return NULL;
    mv__hex(in, n, s);
    v = json_string(s);
    free(s);
    return v;
}

/* json_object_set_new that remembers a failure in *ok. */
static void put(json_t *obj, const char *key, json_t *value, int *ok)
{
    if (value == NULL || json_object_set_new(obj, key, value) != 0)
        *ok = 0;
}

static json_t *format_version(const MvKek *kek, int *ok)
{
    json_t *obj = json_object();

    if (obj == NULL) {
        *ok = 0;
        return NULL;
    }
    put(obj, "version", json_integer(kek->version), ok);
    put(obj, "state", json_string(state_name(kek->state)), ok);
    put(obj, "kind", json_string(mv__kind_name(kek->kind)), ok);
    if (kek->state == MV_KEK_RETIRED)
        return obj;
    if (kek->kind == MV_UNLOCK_PKCS11) {
        put(obj, "label", json_string(kek->label), ok);
        return obj;
    }
    put(obj, "salt", hex_string(kek->salt, sizeof kek->salt), ok);
    put(obj, "nonce", hex_string(kek->nonce, sizeof kek->nonce), ok);
    put(obj, "wrapped", hex_string(kek->wrapped, sizeof kek->wrapped), ok);
    if (kek->kind == MV_UNLOCK_PASSPHRASE) {
        json_t *kdf = json_object();
        if (kdf == NULL) {
            *ok = 0;
            return obj;
        }
        put(kdf, "alg", json_string("argon2id"), ok);
        put(kdf, "t", json_integer(kek->kdf.t_cost), ok);
        put(kdf, "m_kib", json_integer(kek->kdf.m_cost_kib), ok);
        put(kdf, "p", json_integer(kek->kdf.parallelism), ok);
        put(obj, "kdf", kdf, ok);
    }
    return obj;
}

MvStatus mv__keyring_file_format(const MvKeyringFile *kf, const uint8_t mac_key[32], uint8_t **out,
                                 size_t *out_len, MvError *err)
{
    json_t *root = json_object(), *versions = json_array(), *named = json_object();
    char *body = NULL, hex[65];
    uint8_t mac[32], sum[32];
    unsigned mac_len = sizeof mac;
    uint8_t *buf = NULL;
    size_t body_len, total;
    int ok = root != NULL && versions != NULL && named != NULL;
    MvStatus st = MV_OK;

    *out = NULL;
    *out_len = 0;
    if (ok) {
        put(root, "format", json_string(FORMAT_NAME), &ok);
        put(root, "format_version", json_integer(FORMAT_VERSION), &ok);
        put(root, "id", hex_string(kf->id, sizeof kf->id), &ok);
        put(root, "current", json_integer(kf->current), &ok);
        if (kf->p11_token[0] != '\0')
            put(root, "token", json_string(kf->p11_token), &ok);
        for (size_t i = 0; i < kf->n_keks && ok; i++)
            if (json_array_append_new(versions, format_version(&kf->keks[i], &ok)) != 0)
                ok = 0;
        for (size_t i = 0; i < kf->n_named && ok; i++)
            put(named, kf->named[i].name, hex_string(kf->named[i].wrapped, kf->named[i].wrapped_len), &ok);
        put(root, "mac_key", hex_string(kf->mac_key_wrapped, kf->mac_key_wrapped_len), &ok);
        put(root, "versions", versions, &ok);
        versions = NULL;
        put(root, "named", named, &ok);
        named = NULL;
    }
    if (ok)
        body = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (!ok || body == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    body_len = strlen(body);
    total = body_len + 1 + sizeof MAC_PREFIX - 1 + 64 + 1 + sizeof SUM_PREFIX - 1 + 64 + 1;
    buf = malloc(total + 1);
    if (buf == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    memcpy(buf, body, body_len);
    buf[body_len] = '\n';
    if (HMAC(EVP_sha256(), mac_key, 32, buf, body_len + 1, mac, &mac_len) == NULL) {
        st = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "HMAC-SHA256 failed");
        goto out;
    }
    mv__hex(mac, sizeof mac, hex);
    snprintf((char *)buf + body_len + 1, total + 1 - body_len - 1, "%s%s\n", MAC_PREFIX, hex);
    if (EVP_Digest(buf, total - (sizeof SUM_PREFIX - 1 + 64 + 1), sum, NULL, EVP_sha256(), NULL) != 1) {
        st = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "SHA-256 failed");
        goto out;
    }
    mv__hex(sum, sizeof sum, hex);
    snprintf((char *)buf + total - (sizeof SUM_PREFIX - 1 + 64 + 1), sizeof SUM_PREFIX - 1 + 64 + 2, "%s%s\n",
             SUM_PREFIX, hex);
    *out = buf;
    *out_len = total;
    buf = NULL;
out:
    OPENSSL_cleanse(mac, sizeof mac);
    free(body);
    free(buf);
    json_decref(versions);
    json_decref(named);
    json_decref(root);
    return st;
}
