/* The vault's cryptographic formats, all built on OpenSSL 3: the chunked AES-256-GCM blob
 * (header, per-chunk nonce and associated data, streaming sealer, sequential and random-access
 * openers), small sealed values (display values, inner wraps), and the HMAC-SHA256 blind
 * indexes with the normalisation they are computed over. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "vault/vault_int.h"

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- Header ------------------------------------------------------------------------- */

MvStatus mv__blob_header_make(MvBlobHeader *h, const uint8_t id[MV__ID_BYTES], uint32_t chunk_size, uint64_t length,
                              MvError *err)
{
    memset(h, 0, sizeof *h);
    memcpy(h->raw, MV__BLOB_MAGIC, 8); /* the magic's NUL included */
    put_be16(h->raw + 8, MV__BLOB_VERSION);
    put_be16(h->raw + 10, MV__BLOB_HEADER);
    put_be32(h->raw + 12, chunk_size);
    put_be64(h->raw + 16, length);
    memcpy(h->raw + 24, id, MV__ID_BYTES);
    if (RAND_bytes(h->raw + 40, 4) != 1)
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "the random generator failed");
    h->chunk_size = chunk_size;
    h->length = length;
    memcpy(h->id, id, MV__ID_BYTES);
    return MV_OK;
}

MvStatus mv__blob_header_parse(MvBlobHeader *h, const uint8_t *raw, const uint8_t *expected_id, MvError *err)
{
    static const uint8_t zero[20];

    memset(h, 0, sizeof *h);
    if (memcmp(raw, MV__BLOB_MAGIC, 8) != 0)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, 0, "not a vault blob (bad magic)");
    if (raw[8] != 0 || raw[9] != MV__BLOB_VERSION || raw[10] != 0 || raw[11] != MV__BLOB_HEADER)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, 8, "unknown blob format version or header length");
    memcpy(h->raw, raw, MV__BLOB_HEADER);
    h->chunk_size = get_be32(raw + 12);
    h->length = get_be64(raw + 16);
    memcpy(h->id, raw + 24, MV__ID_BYTES);
    if (h->chunk_size < 16 || h->chunk_size > MV__CHUNK_MAX)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, 12, "blob chunk size %u out of range", h->chunk_size);
    if (h->length != MV__STREAMED && h->length > MV__OBJECT_MAX)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, 16, "blob length out of range");
    if (memcmp(raw + 44, zero, sizeof zero) != 0)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, 44, "blob header reserved bytes are not zero");
    if (expected_id != NULL && CRYPTO_memcmp(expected_id, h->id, MV__ID_BYTES) != 0)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, 24, "blob belongs to another object");
    return MV_OK;
}

uint64_t mv__blob_chunks(const MvBlobHeader *h)
{
    return h->length / h->chunk_size + 1;
}

uint64_t mv__blob_size(const MvBlobHeader *h)
{
    return MV__BLOB_HEADER + mv__blob_chunks(h) * MV__TAG_BYTES + h->length;
}

/* ---- Chunks ------------------------------------------------------------------------- */

static void chunk_params(const MvBlobHeader *h, uint64_t index, int last, uint8_t iv[12], uint8_t aad[73])
{
    memcpy(iv, h->raw + 40, 4);
    put_be64(iv + 4, index);
    memcpy(aad, h->raw, MV__BLOB_HEADER);
    put_be64(aad + MV__BLOB_HEADER, index);
    aad[72] = last ? 1 : 0;
}

MvStatus mv__chunk_seal(EVP_CIPHER_CTX *ctx, const uint8_t key[32], const MvBlobHeader *h, uint64_t index, int last,
                        const uint8_t *in, size_t len, uint8_t *out, MvError *err)
{
    uint8_t iv[12], aad[73];
    int n = 0, fin = 0;

    chunk_params(h, index, last, iv, aad);
    if (len > INT32_MAX || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n, aad, sizeof aad) != 1 ||
        (len > 0 && EVP_EncryptUpdate(ctx, out, &n, in, (int)len) != 1) ||
        EVP_EncryptFinal_ex(ctx, out + len, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MV__TAG_BYTES, out + len) != 1)
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "AES-GCM encryption failed");
    return MV_OK;
}

MvStatus mv__chunk_open(EVP_CIPHER_CTX *ctx, const uint8_t key[32], const MvBlobHeader *h, uint64_t index, int last,
                        const uint8_t *in, size_t len, uint8_t *out, MvError *err)
{
    uint8_t iv[12], aad[73], tag[MV__TAG_BYTES];
    int n = 0, fin = 0;
    uint64_t off = MV__BLOB_HEADER + index * ((uint64_t)h->chunk_size + MV__TAG_BYTES);

    chunk_params(h, index, last, iv, aad);
    memcpy(tag, in + len, MV__TAG_BYTES);
    if (len > INT32_MAX || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &n, aad, sizeof aad) != 1 ||
        (len > 0 && EVP_DecryptUpdate(ctx, out, &n, in, (int)len) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MV__TAG_BYTES, tag) != 1)
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, off, "AES-GCM decryption failed");
    if (EVP_DecryptFinal_ex(ctx, out + len, &fin) != 1) {
        OPENSSL_cleanse(out, len);
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, off,
                            "chunk %llu at offset %llu fails authentication (damaged, moved, cut short or another key)",
                            (unsigned long long)index, (unsigned long long)off);
    }
    return MV_OK;
}

/* ---- Sealer ------------------------------------------------------------------------- */

MvStatus mv__sealer_start(MvSealer *s, const uint8_t key[32], const MvBlobHeader *h, int fd, MvError *err)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->h = *h;
    memcpy(s->key, key, 32);
    s->ctx = EVP_CIPHER_CTX_new();
    /* A small object needs small buffers: no chunk is longer than the object. */
    s->buf_cap = h->length != MV__STREAMED && h->length < h->chunk_size ? (size_t)h->length + 1 : h->chunk_size;
    s->buf = malloc(s->buf_cap);
    s->out = malloc(s->buf_cap + MV__TAG_BYTES);
    if (s->ctx == NULL || s->buf == NULL || s->out == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    if (mv__write_all(fd, h->raw, MV__BLOB_HEADER) != 0)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "write: %s", strerror(errno));
    return MV_OK;
}

static MvStatus seal_out(MvSealer *s, const uint8_t *in, size_t len, int last, MvError *err)
{
    MvStatus st;
    if (len > s->buf_cap)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "object longer than announced");
    st = mv__chunk_seal(s->ctx, s->key, &s->h, s->index, last, in, len, s->out, err);
    if (st != MV_OK)
        return st;
    if (mv__write_all(s->fd, s->out, len + MV__TAG_BYTES) != 0)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "write: %s", strerror(errno));
    s->index++;
    s->total += len;
    return MV_OK;
}

MvStatus mv__sealer_write(MvSealer *s, const void *data, size_t len, MvError *err)
{
    const uint8_t *p = data;
    size_t cs = s->h.chunk_size;
    MvStatus st;

    while (len > 0) {
        /* A full chunk is never the last one, so it can go as soon as it is full. */
        if (s->used == 0 && len >= cs) {
            if ((st = seal_out(s, p, cs, 0, err)) != MV_OK)
                return st;
            p += cs;
            len -= cs;
            continue;
        }
        size_t take = cs - s->used < len ? cs - s->used : len;
        if (s->used + take > s->buf_cap)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "object longer than announced");
        memcpy(s->buf + s->used, p, take);
        s->used += take;
        if (s->used > s->buf_high)
            s->buf_high = s->used;
        p += take;
        len -= take;
        if (s->used == cs) {
            if ((st = seal_out(s, s->buf, cs, 0, err)) != MV_OK)
                return st;
            s->used = 0;
        }
    }
    return MV_OK;
}

MvStatus mv__sealer_finish(MvSealer *s, MvError *err)
{
    MvStatus st = seal_out(s, s->buf, s->used, 1, err);
    if (st != MV_OK)
        return st;
    s->used = 0;
    if (s->h.length != MV__STREAMED && s->total != s->h.length)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "object changed size while it was stored");
    return MV_OK;
}

void mv__sealer_free(MvSealer *s)
{
    if (s == NULL)
        return;
    EVP_CIPHER_CTX_free(s->ctx);
    if (s->buf != NULL)
        OPENSSL_cleanse(s->buf, s->buf_high); /* only what held plaintext */
    free(s->buf);
    free(s->out);
    OPENSSL_cleanse(s->key, sizeof s->key);
    s->ctx = NULL;
    s->buf = s->out = NULL;
}

/* ---- Openers ------------------------------------------------------------------------ */

static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

MvStatus mv__blob_decrypt_fd(int fd, const uint8_t key[32], const uint8_t *expected_id, MvBlobHeader *hout,
                             MvChunkFn fn, void *fn_ctx, MvError *err)
{
    uint8_t raw[MV__BLOB_HEADER], extra;
    uint8_t *in = NULL, *out = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    MvBlobHeader h;
    uint64_t index = 0, total = 0;
    size_t cs, bufsize = 0;
    ssize_t n;
    MvStatus st;

    n = read_full(fd, raw, sizeof raw);
    if (n < 0)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, 0, "read: %s", strerror(errno));
    if (n < (ssize_t)sizeof raw)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, 0, "blob shorter than its header");
    if ((st = mv__blob_header_parse(&h, raw, expected_id, err)) != MV_OK)
        return st;
    cs = h.chunk_size;
    /* Room for one chunk (a small object's chunk is the object) plus one byte, so that data
     * beyond the announced length is seen. */
    bufsize = (h.length != MV__STREAMED && h.length < cs ? (size_t)h.length : cs) + MV__TAG_BYTES + 1;
    in = malloc(bufsize);
    out = malloc(bufsize);
    ctx = EVP_CIPHER_CTX_new();
    if (in == NULL || out == NULL || ctx == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    for (;;) {
        uint64_t off = MV__BLOB_HEADER + index * ((uint64_t)cs + MV__TAG_BYTES);
        int last;
        n = read_full(fd, in, bufsize - 1 < cs + MV__TAG_BYTES ? bufsize : cs + MV__TAG_BYTES);
        if (n < 0) {
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, off, "read: %s", strerror(errno));
            goto out;
        }
        if ((size_t)n > cs + MV__TAG_BYTES || (bufsize - 1 < cs + MV__TAG_BYTES && (size_t)n == bufsize)) {
            st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, off, "blob longer than its header says");
            goto out;
        }
        if (n < (ssize_t)MV__TAG_BYTES) {
            st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, off,
                              "blob cut short at offset %llu: its last chunk is missing", (unsigned long long)off);
            goto out;
        }
        last = n < (ssize_t)(cs + MV__TAG_BYTES);
        if ((st = mv__chunk_open(ctx, key, &h, index, last, in, (size_t)n - MV__TAG_BYTES, out, err)) != MV_OK)
            goto out;
        total += (uint64_t)n - MV__TAG_BYTES;
        if (h.length != MV__STREAMED && total > h.length) {
            st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, off, "blob longer than its header says");
            goto out;
        }
        if (fn != NULL && fn(out, (size_t)n - MV__TAG_BYTES, fn_ctx) != 0) {
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, off, "stopped while writing the plaintext");
            goto out;
        }
        index++;
        if (last)
            break;
    }
    if (read_full(fd, &extra, 1) != 0) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "bytes after the last chunk");
        goto out;
    }
    if (h.length != MV__STREAMED && total != h.length) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "blob length differs from its header");
        goto out;
    }
    if (hout != NULL)
        *hout = h;
    st = MV_OK;
out:
    if (out != NULL)
        OPENSSL_cleanse(out, bufsize);
    free(in);
    free(out);
    EVP_CIPHER_CTX_free(ctx);
    return st;
}

MvStatus mv__blob_read_range(int fd, const uint8_t key[32], const uint8_t *expected_id, uint64_t offset, uint8_t *buf,
                             size_t len, size_t *n_read, MvError *err)
{
    uint8_t raw[MV__BLOB_HEADER];
    uint8_t *in = NULL, *out = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    MvBlobHeader h;
    struct stat sb;
    uint64_t end, first, last_chunk, n_chunks;
    size_t cs, done = 0;
    MvStatus st;

    *n_read = 0;
    if (pread(fd, raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, 0, "blob shorter than its header");
    if ((st = mv__blob_header_parse(&h, raw, expected_id, err)) != MV_OK)
        return st;
    if (h.length == MV__STREAMED || fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != mv__blob_size(&h))
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "blob size differs from its header");
    if (offset >= h.length || len == 0)
        return MV_OK;
    end = h.length - offset < len ? h.length : offset + len;
    cs = h.chunk_size;
    n_chunks = mv__blob_chunks(&h);
    first = offset / cs;
    last_chunk = (end - 1) / cs;
    in = malloc(cs + MV__TAG_BYTES);
    out = malloc(cs + MV__TAG_BYTES);
    ctx = EVP_CIPHER_CTX_new();
    if (in == NULL || out == NULL || ctx == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    for (uint64_t i = first; i <= last_chunk; i++) {
        int is_last = i == n_chunks - 1;
        size_t clen = is_last ? (size_t)(h.length - i * cs) : cs;
        off_t at = (off_t)(MV__BLOB_HEADER + i * ((uint64_t)cs + MV__TAG_BYTES));
        uint64_t lo, hi;
        if (pread(fd, in, clen + MV__TAG_BYTES, at) != (ssize_t)(clen + MV__TAG_BYTES)) {
            st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, (uint64_t)at, "blob cut short");
            goto out;
        }
        if ((st = mv__chunk_open(ctx, key, &h, i, is_last, in, clen, out, err)) != MV_OK)
            goto out;
        lo = i * cs > offset ? i * cs : offset;
        hi = i * cs + clen < end ? i * cs + clen : end;
        memcpy(buf + (lo - offset), out + (lo - i * cs), (size_t)(hi - lo));
        done += (size_t)(hi - lo);
    }
    *n_read = done;
    st = MV_OK;
out:
    if (out != NULL)
        OPENSSL_cleanse(out, cs + MV__TAG_BYTES);
    free(in);
    free(out);
    EVP_CIPHER_CTX_free(ctx);
    return st;
}

/* ---- Small sealed values ------------------------------------------------------------ */

static MvStatus gcm_small(int enc, const uint8_t key[32], const char *label, const void *aad, size_t aad_len,
                          const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag, MvError *err)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t zero = 0;
    int n = 0, ok;

    if (ctx == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    ok = len <= INT32_MAX && aad_len <= INT32_MAX &&
         EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv, enc) == 1 &&
         EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)label, (int)strlen(label)) == 1 &&
         EVP_CipherUpdate(ctx, NULL, &n, &zero, 1) == 1 &&
         (aad_len == 0 || EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1) &&
         (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
    if (!ok) {
        EVP_CIPHER_CTX_free(ctx);
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "AES-GCM failed");
    }
    ok = EVP_CipherFinal_ex(ctx, out + len, &n) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok)
        return mv_error_set(err, enc ? MV_ERR_CRYPTO : MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            enc ? "AES-GCM failed" : "sealed value fails authentication");
    return MV_OK;
}

MvStatus mv__seal(const uint8_t key[32], const char *label, const void *aad, size_t aad_len, const void *in,
                  size_t len, uint8_t **out, size_t *out_len, MvError *err)
{
    uint8_t *buf = malloc(len + MV__SEAL_OVERHEAD + 1);
    MvStatus st;

    *out = NULL;
    if (buf == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    if (RAND_bytes(buf, 12) != 1) {
        free(buf);
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "the random generator failed");
    }
    st = gcm_small(1, key, label, aad, aad_len, buf, in, len, buf + 12, buf + 12 + len, err);
    if (st != MV_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = len + MV__SEAL_OVERHEAD;
    return MV_OK;
}

MvStatus mv__unseal(const uint8_t key[32], const char *label, const void *aad, size_t aad_len, const void *in,
                    size_t len, uint8_t **out, size_t *out_len, MvError *err)
{
    const uint8_t *p = in;
    uint8_t tag[16], *buf;
    size_t plen;
    MvStatus st;

    *out = NULL;
    if (len < MV__SEAL_OVERHEAD)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "sealed value too short");
    plen = len - MV__SEAL_OVERHEAD;
    buf = malloc(plen + 17);
    if (buf == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    memcpy(tag, p + 12 + plen, 16);
    st = gcm_small(0, key, label, aad, aad_len, p, p + 12, plen, buf, tag, err);
    if (st != MV_OK) {
        OPENSSL_cleanse(buf, plen + 17);
        free(buf);
        return st;
    }
    buf[plen] = 0;
    *out = buf;
    *out_len = plen;
    return MV_OK;
}

/* ---- Blind indexes ------------------------------------------------------------------ */

void mv__blind(const uint8_t key[32], const char *label, const void *data, size_t len, uint8_t out[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2];
    uint8_t zero = 0;
    size_t n = 0;

    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx == NULL || EVP_MAC_init(ctx, key, 32, params) != 1 ||
        EVP_MAC_update(ctx, (const uint8_t *)label, strlen(label)) != 1 || EVP_MAC_update(ctx, &zero, 1) != 1 ||
        (len > 0 && EVP_MAC_update(ctx, data, len) != 1) || EVP_MAC_final(ctx, out, &n, 32) != 1 || n != 32) {
        /* Only out of memory gets here; a value that matches nothing is the safe failure. */
        RAND_bytes(out, 32);
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

static char *trim_dup(const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\0'))
        len--;
    return strndup(s, len);
}

char *mv__normalize_id(const char *id)
{
    return trim_dup(id, strlen(id));
}

char *mv__normalize_name(const char *name)
{
    /* PS3.5 6.2.1.1: component groups are separated by '=', components by '^'. */
    size_t group_len = strcspn(name, "="), n = 0;
    char *out = malloc(group_len + 1);
    const char *p = name, *end = name + group_len;

    if (out == NULL)
        return NULL;
    while (p <= end) {
        const char *caret = memchr(p, '^', (size_t)(end - p));
        const char *stop = caret != NULL ? caret : end;
        const char *a = p, *b = stop;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        if (n > 0 || p != name)
            out[n++] = '^';
        for (; a < b; a++)
            out[n++] = (char)toupper((unsigned char)*a);
        if (caret == NULL)
            break;
        p = caret + 1;
    }
    while (n > 0 && out[n - 1] == '^')
        n--;
    out[n] = '\0';
    return out;
}
