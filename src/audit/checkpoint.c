/* Checkpoints: C2SP tlog-checkpoint notes ("ORIGIN\nSIZE\nBASE64(ROOT)\n") signed as C2SP
 * signed-note says, "— NAME BASE64(KEYID || SIGNATURE)" lines after a blank line, with Ed25519
 * from OpenSSL. Also the verifier key line "NAME+KEYID+BASE64(0x01 || PUB)" and strict base64. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit/audit_int.h"
#include "core/core_int.h"

#define EM_DASH_SP "\xE2\x80\x94 " /* U+2014 and a space open every signature line */
#define ALG_ED25519 0x01

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void mv__b64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = len - i;
        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
}

static int b64_value(char c)
{
    const char *p;

    if (c == '\0')
        return -1;
    p = strchr(b64_alphabet, c);
    return p == NULL ? -1 : (int)(p - b64_alphabet);
}

long mv__b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    size_t o = 0;

    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            if (in[i + j] == '=' && i + 4 == len && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad > 0 || (v[j] = b64_value(in[i + j])) < 0) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t n = 3 - (size_t)pad;
        if (o + n > cap)
            return -1;
        out[o++] = (uint8_t)(w >> 16);
        if (n > 1)
            out[o++] = (uint8_t)(w >> 8);
        if (n > 2)
            out[o++] = (uint8_t)w;
    }
    return (long)o;
}

void mv__note_key_id(const char *name, const uint8_t pub[32], uint8_t id[4])
{
    uint8_t md[32];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    static const uint8_t sep[2] = {0x0A, ALG_ED25519};

    if (ctx == NULL || EVP_DigestInit_ex2(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, name, strlen(name)) != 1 || EVP_DigestUpdate(ctx, sep, sizeof sep) != 1 ||
        EVP_DigestUpdate(ctx, pub, 32) != 1 || EVP_DigestFinal_ex(ctx, md, &md_len) != 1)
        OPENSSL_die("SHA-256 failed", __FILE__, __LINE__);
    EVP_MD_CTX_free(ctx);
    memcpy(id, md, 4);
}

/* signed-note: a key name is non-empty, has no spaces, no '+' and no newline. */
static int valid_name(const char *s, size_t len)
{
    if (len == 0 || len >= 256)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == '+')
            return 0;
    return 1;
}

MvStatus mv__note_key_parse(const char *text, MvNoteKey *key, MvError *err)
{
    const char *plus1, *plus2, *end;
    uint8_t raw[64];
    long n;

    memset(key, 0, sizeof *key);
    while (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t')
        text++;
    if (strncmp(text, "-----BEGIN PUBLIC KEY-----", 26) == 0) {
        BIO *bio = BIO_new_mem_buf(text, -1);
        EVP_PKEY *pk = bio == NULL ? NULL : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        size_t pub_len = sizeof key->pub;
        MvStatus st = MV_OK;
        if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519 ||
            EVP_PKEY_get_raw_public_key(pk, key->pub, &pub_len) != 1 || pub_len != 32)
            st = mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET, "the PEM key is not an Ed25519 public key");
        EVP_PKEY_free(pk);
        BIO_free(bio);
        return st;
    }
    end = text + strcspn(text, "\r\n");
    plus1 = memchr(text, '+', (size_t)(end - text));
    plus2 = plus1 == NULL ? NULL : memchr(plus1 + 1, '+', (size_t)(end - plus1 - 1));
    if (plus2 == NULL || !valid_name(text, (size_t)(plus1 - text)) || plus2 - plus1 != 9)
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET,
                            "the key is neither a verifier key line NAME+KEYID+BASE64 nor a PEM public key");
    memcpy(key->name, text, (size_t)(plus1 - text));
    n = mv__b64_decode(plus2 + 1, (size_t)(end - plus2 - 1), raw, sizeof raw);
    if (n != 33 || raw[0] != ALG_ED25519)
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET,
                            "the verifier key is not an Ed25519 key (algorithm byte 0x01 and 32 bytes)");
    memcpy(key->pub, raw + 1, 32);
    if (mv__unhex(plus1 + 1, (size_t)(plus2 - plus1 - 1), key->key_id, 4) != 0)
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET, "the key id is not 8 lowercase hex digits");
    {
        uint8_t id[4];
        mv__note_key_id(key->name, key->pub, id);
        if (memcmp(id, key->key_id, 4) != 0)
            return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET,
                                "the key id does not match the name and the key");
    }
    return MV_OK;
}

size_t mv__note_length(const char *text, size_t len)
{
    const char *blank = NULL, *p;
    size_t pos, n_sigs = 0;

    for (size_t i = 0; i + 1 < len; i++)
        if (text[i] == '\n' && text[i + 1] == '\n') {
            blank = text + i;
            break;
        }
    if (blank == NULL)
        return 0;
    pos = (size_t)(blank - text) + 2;
    while (pos < len && len - pos >= 4 && memcmp(text + pos, EM_DASH_SP, 4) == 0) {
        p = memchr(text + pos, '\n', len - pos);
        if (p == NULL)
            return 0;
        pos = (size_t)(p - text) + 1;
        n_sigs++;
    }
    return n_sigs > 0 ? pos : 0;
}

/* Parses "ORIGIN\nSIZE\nROOT\n" (further extension lines allowed) of the body. */
static MvStatus parse_body(const char *body, size_t len, MvAuditCheckpoint *out, MvError *err)
{
    const char *l1 = body, *e1, *l2, *e2, *l3, *e3;
    uint64_t size = 0;
    long n;

    e1 = memchr(l1, '\n', len);
    if (e1 == NULL || e1 == l1 || (size_t)(e1 - l1) >= sizeof out->origin)
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET, "checkpoint: no origin line");
    l2 = e1 + 1;
    e2 = memchr(l2, '\n', len - (size_t)(l2 - body));
    if (e2 == NULL || e2 == l2 || e2 - l2 > 20 || (l2[0] == '0' && e2 - l2 > 1))
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET, "checkpoint: the size line is not a number");
    for (const char *c = l2; c < e2; c++) {
        if (*c < '0' || *c > '9' || size > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
            return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET,
                                "checkpoint: the size line is not a decimal number");
        size = size * 10 + (uint64_t)(*c - '0');
    }
    l3 = e2 + 1;
    e3 = memchr(l3, '\n', len - (size_t)(l3 - body));
    if (e3 == NULL)
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET, "checkpoint: no root hash line");
    n = mv__b64_decode(l3, (size_t)(e3 - l3), out->root, sizeof out->root);
    if (n != MV_AUDIT_HASH_BYTES)
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET,
                            "checkpoint: the root line is not the base64 of 32 bytes");
    memcpy(out->origin, l1, (size_t)(e1 - l1));
    out->origin[e1 - l1] = '\0';
    out->size = size;
    return MV_OK;
}

static int ed25519_verify(const uint8_t pub[32], const uint8_t sig[64], const void *msg, size_t len)
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = 0;

    if (pk != NULL && ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1)
        ok = EVP_DigestVerify(ctx, sig, 64, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return ok;
}

MvStatus mv_audit_checkpoint_verify(const char *note, size_t len, const char *vkey, MvAuditCheckpoint *out,
                                    MvError *err)
{
    MvNoteKey key;
    size_t note_len, body_len, pos;
    int pem, found_name = 0;
    MvStatus st;

    memset(out, 0, sizeof *out);
    st = mv__note_key_parse(vkey, &key, err);
    if (st != MV_OK)
        return st;
    pem = key.name[0] == '\0';
    note_len = mv__note_length(note, len);
    if (note_len == 0 || note_len != len)
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET,
                            "not a signed note: body, blank line, then one or more signature lines");
    body_len = (size_t)((const char *)memmem(note, len, "\n\n", 2) - note) + 1;
    st = parse_body(note, body_len, out, err);
    if (st != MV_OK)
        return st;
    if (pem) {
        if (!valid_name(out->origin, strlen(out->origin)))
            return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET, "checkpoint: the origin is no key name");
        memcpy(key.name, out->origin, strlen(out->origin) + 1);
        mv__note_key_id(key.name, key.pub, key.key_id);
    }
    for (pos = body_len + 1; pos < len;) {
        const char *line = note + pos + 4, *eol = memchr(line, '\n', len - pos - 4), *sp;
        uint8_t raw[68];
        long n;
        pos = (size_t)(eol - note) + 1;
        sp = memchr(line, ' ', (size_t)(eol - line));
        if (sp == NULL)
            continue;
        if ((size_t)(sp - line) != strlen(key.name) || memcmp(line, key.name, (size_t)(sp - line)) != 0)
            continue;
        found_name = 1;
        n = mv__b64_decode(sp + 1, (size_t)(eol - sp - 1), raw, sizeof raw);
        if (n != 68 || memcmp(raw, key.key_id, 4) != 0)
            continue;
        if (ed25519_verify(key.pub, raw + 4, note, body_len))
            return MV_OK;
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "checkpoint of size %llu: the signature of %s does not verify",
                            (unsigned long long)out->size, key.name);
    }
    return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                        "checkpoint of size %llu: no signature by the key %s%s", (unsigned long long)out->size,
                        key.name, found_name ? " with its key id (signed by another key of that name)" : "");
}

MvStatus mv_merkle_proof_decode(const char *const *b64, size_t n, uint8_t **out, MvError *err)
{
    uint8_t tmp[48];

    *out = NULL;
    if (n == 0)
        return MV_OK;
    if (n > 128)
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET, "a proof of %zu hashes: at most 128", n);
    *out = malloc(n * MV_AUDIT_HASH_BYTES);
    if (*out == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    for (size_t i = 0; i < n; i++) {
        long len = b64[i] == NULL ? -1 : mv__b64_decode(b64[i], strlen(b64[i]), tmp, sizeof tmp);
        if (len != MV_AUDIT_HASH_BYTES) {
            free(*out);
            *out = NULL;
            return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET,
                                "proof hash %zu is not the base64 of 32 bytes", i);
        }
        memcpy(*out + i * MV_AUDIT_HASH_BYTES, tmp, MV_AUDIT_HASH_BYTES);
    }
    return MV_OK;
}
