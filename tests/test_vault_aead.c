/* Unit tests of the vault's cryptographic formats (src/vault/aead.c): the chunked AES-256-GCM
 * blob (round trips at chunk boundaries, range reads, and failure on a changed byte anywhere,
 * reordered chunks, chunks moved between objects, truncation, extra bytes, a wrong key), an
 * independent decryption of a blob by tests/blob_oracle.py (Python `cryptography`), sealed
 * small values, and the blind indexes with their normalisation. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "vault/vault_int.h"

#define CHUNK 64u

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mv-aead-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131u + seed * 7u + (i >> 8));
}

/* Writes a blob of data[len] under key with object id byte `idb` and returns its path. */
static char *make_blob(const char *name, const uint8_t key[32], uint8_t idb, const uint8_t *data, size_t len)
{
    static char path[128];
    uint8_t id[MV__ID_BYTES];
    MvBlobHeader h;
    MvSealer s;
    MvError err;
    int fd;

    memset(id, idb, sizeof id);
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(mv__blob_header_make(&h, id, CHUNK, len, &err), MV_OK);
    assert_int_equal(mv__sealer_start(&s, key, &h, fd, &err), MV_OK);
    /* Written in uneven pieces, so that the sealer's buffering is exercised. */
    for (size_t at = 0; at < len;) {
        size_t piece = (at % 3 == 0) ? 7 : 150;
        if (piece > len - at)
            piece = len - at;
        assert_int_equal(mv__sealer_write(&s, data + at, piece, &err), MV_OK);
        at += piece;
    }
    assert_int_equal(mv__sealer_finish(&s, &err), MV_OK);
    mv__sealer_free(&s);
    close(fd);
    return path;
}

typedef struct Sink {
    uint8_t *buf;
    size_t len, cap;
} Sink;

static int to_sink(const uint8_t *data, size_t len, void *arg)
{
    Sink *s = arg;
    if (s->len + len > s->cap)
        return 1;
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    return 0;
}

/* Decrypts path fully; returns the status and fills out (cap bytes) and *out_len. */
static MvStatus open_blob(const char *path, const uint8_t key[32], uint8_t idb, uint8_t *out, size_t cap,
                          size_t *out_len, MvError *err)
{
    uint8_t id[MV__ID_BYTES];
    Sink sink = {out, 0, cap};
    int fd = open(path, O_RDONLY);
    MvStatus st;

    memset(id, idb, sizeof id);
    assert_true(fd >= 0);
    st = mv__blob_decrypt_fd(fd, key, id, NULL, to_sink, &sink, err);
    close(fd);
    *out_len = sink.len;
    return st;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    struct stat sb;
    uint8_t *buf;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    buf = malloc((size_t)sb.st_size + 1);
    assert_non_null(buf);
    assert_int_equal(read(fd, buf, (size_t)sb.st_size), sb.st_size);
    close(fd);
    *len = (size_t)sb.st_size;
    return buf;
}

static void spit(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* ---- Round trips ------------------------------------------------------------------------ */

static void test_round_trip_sizes(void **state)
{
    static const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17, 1000};
    uint8_t key[32], data[1000], out[1000 + 16];
    (void)state;
    fill(key, sizeof key, 1);
    fill(data, sizeof data, 2);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i], got = 0, blob_len = 0;
        MvError err;
        char *path = make_blob("rt", key, 0x11, data, n);
        uint8_t *blob = slurp(path, &blob_len);
        /* L/C + 1 chunks, each with a 16-byte tag, after a 64-byte header. */
        assert_int_equal(blob_len, 64 + (n / CHUNK + 1) * 16 + n);
        free(blob);
        assert_int_equal(open_blob(path, key, 0x11, out, sizeof out, &got, &err), MV_OK);
        assert_int_equal(got, n);
        assert_memory_equal(out, data, n);
    }
}

static void test_range_reads(void **state)
{
    uint8_t key[32], data[1000], buf[1000], id[MV__ID_BYTES];
    char *path;
    int fd;
    (void)state;
    fill(key, sizeof key, 3);
    fill(data, sizeof data, 4);
    memset(id, 0x22, sizeof id);
    path = make_blob("range", key, 0x22, data, sizeof data);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    static const size_t ranges[][2] = {{0, 1}, {0, 64}, {63, 2}, {64, 64}, {100, 500}, {990, 100}, {999, 1}, {0, 1000}};
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        size_t off = ranges[i][0], len = ranges[i][1], got = 0, want = off + len > 1000 ? 1000 - off : len;
        MvError err;
        memset(buf, 0, sizeof buf);
        assert_int_equal(mv__blob_read_range(fd, key, id, off, buf, len, &got, &err), MV_OK);
        assert_int_equal(got, want);
        assert_memory_equal(buf, data + off, want);
    }
    {
        size_t got = 7;
        MvError err;
        assert_int_equal(mv__blob_read_range(fd, key, id, 1000, buf, 10, &got, &err), MV_OK);
        assert_int_equal(got, 0);
    }
    close(fd);
}

/* ---- Every way of breaking a blob fails ----------------------------------------------- */

static void expect_integrity(const char *path, const uint8_t key[32], uint8_t idb, const char *what)
{
    uint8_t out[2048];
    size_t got = 0;
    MvError err;
    MvStatus st = open_blob(path, key, idb, out, sizeof out, &got, &err);
    if (st != MV_ERR_INTEGRITY)
        fail_msg("%s: expected an integrity failure, got %s (%s)", what, mv_status_name(st),
                 st == MV_OK ? "decrypted" : err.message);
}

static void test_every_byte_flip_fails(void **state)
{
    uint8_t key[32], data[200];
    size_t len = 0;
    char flipped[160];
    uint8_t *blob;
    (void)state;
    fill(key, sizeof key, 5);
    fill(data, sizeof data, 6);
    blob = slurp(make_blob("flip", key, 0x33, data, sizeof data), &len);
    snprintf(flipped, sizeof flipped, "%s/flipped", tmpdir);
    /* Every single bit of every byte: header, ciphertext and tags alike. */
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            char what[64];
            blob[i] ^= (uint8_t)(1u << bit);
            spit(flipped, blob, len);
            blob[i] ^= (uint8_t)(1u << bit);
            snprintf(what, sizeof what, "bit %d of byte %zu", bit, i);
            expect_integrity(flipped, key, 0x33, what);
        }
    }
    free(blob);
}

static void test_reorder_swap_truncate(void **state)
{
    uint8_t key[32], data[4 * CHUNK + 10];
    size_t len = 0, len2 = 0, cs = CHUNK + 16;
    char path[160];
    uint8_t *a, *b, *work;
    (void)state;
    fill(key, sizeof key, 7);
    fill(data, sizeof data, 8);
    a = slurp(make_blob("a", key, 0x44, data, sizeof data), &len);
    /* Object b: the same key and the same bytes, another object id. */
    b = slurp(make_blob("b", key, 0x55, data, sizeof data), &len2);
    assert_int_equal(len, len2);
    work = malloc(len);
    assert_non_null(work);
    snprintf(path, sizeof path, "%s/broken", tmpdir);

    /* Chunks 1 and 2 swapped. */
    memcpy(work, a, len);
    memcpy(work + 64 + cs, a + 64 + 2 * cs, cs);
    memcpy(work + 64 + 2 * cs, a + 64 + cs, cs);
    spit(path, work, len);
    expect_integrity(path, key, 0x44, "chunks 1 and 2 swapped");

    /* Chunk 1 of object b put into object a (same key, same plaintext, same position). */
    memcpy(work, a, len);
    memcpy(work + 64 + cs, b + 64 + cs, cs);
    spit(path, work, len);
    expect_integrity(path, key, 0x44, "chunk from another object");

    /* b's whole body behind a's header. */
    memcpy(work, a, 64);
    memcpy(work + 64, b + 64, len - 64);
    spit(path, work, len);
    expect_integrity(path, key, 0x44, "body of another object");

    /* b opened as if it were a: the header names another object. */
    spit(path, b, len);
    expect_integrity(path, key, 0x44, "blob of another object");

    /* Truncations: the last chunk dropped (a full-size chunk then ends the file), one byte
     * short, cut inside the header, header only. */
    spit(path, a, len - (10 + 16));
    expect_integrity(path, key, 0x44, "last chunk dropped");
    spit(path, a, len - 1);
    expect_integrity(path, key, 0x44, "one byte short");
    spit(path, a, 40);
    expect_integrity(path, key, 0x44, "cut in the header");
    spit(path, a, 64);
    expect_integrity(path, key, 0x44, "header only");
    /* Extra bytes after the last chunk. */
    memcpy(work, a, len);
    spit(path, work, len);
    {
        FILE *f = fopen(path, "ab");
        assert_non_null(f);
        fputc(0, f);
        fclose(f);
    }
    expect_integrity(path, key, 0x44, "a byte appended");
    /* The last chunk's final flag: drop the last chunk of a blob whose length is a multiple of
     * the chunk size and fix the header length; the now-last full chunk was sealed as not last. */
    {
        uint8_t d2[2 * CHUNK];
        size_t l2 = 0;
        uint8_t *c;
        fill(d2, sizeof d2, 9);
        c = slurp(make_blob("c", key, 0x66, d2, sizeof d2), &l2);
        assert_int_equal(l2, 64 + 3 * 16 + 2 * CHUNK);
        spit(path, c, l2 - 16); /* the empty last chunk (tag only) removed */
        expect_integrity(path, key, 0x66, "empty last chunk removed");
        free(c);
    }
    free(work);
    free(a);
    free(b);
}

static void test_wrong_key(void **state)
{
    uint8_t key[32], other[32], data[300];
    char *path;
    (void)state;
    fill(key, sizeof key, 10);
    memcpy(other, key, sizeof other);
    other[31] ^= 1;
    fill(data, sizeof data, 11);
    path = make_blob("wk", key, 0x77, data, sizeof data);
    expect_integrity(path, other, 0x77, "wrong key");
}

/* ---- Independent oracle ------------------------------------------------------------------ */

static void test_python_oracle(void **state)
{
    uint8_t key[32], data[3 * CHUNK + 5], digest[32];
    char hex[65], cmd[1024], line[128], want[65];
    const char *src = getenv("MV_SOURCE_DIR"), *py = getenv("MV_PYTHON");
    FILE *p;
    int rc;
    (void)state;
    if (src == NULL) {
        printf("SKIP: MV_SOURCE_DIR unset, no oracle\n");
        return;
    }
    fill(key, sizeof key, 12);
    fill(data, sizeof data, 13);
    mv__hex(key, sizeof key, hex);
    EVP_Digest(data, sizeof data, digest, NULL, EVP_sha256(), NULL);
    mv__hex(digest, sizeof digest, want);
    snprintf(cmd, sizeof cmd, "%s '%s/tests/blob_oracle.py' %s '%s'", py != NULL ? py : "python3", src, hex,
             make_blob("oracle", key, 0x12, data, sizeof data));
    p = popen(cmd, "r");
    assert_non_null(p);
    line[0] = '\0';
    if (fgets(line, sizeof line, p) == NULL)
        line[0] = '\0';
    rc = pclose(p);
    if (WEXITSTATUS(rc) == 77) {
        printf("SKIP: %s", line);
        return;
    }
    line[strcspn(line, "\n")] = '\0';
    assert_int_equal(WEXITSTATUS(rc), 0);
    assert_string_equal(line, want);
}

/* ---- Sealed values, blind indexes ------------------------------------------------------- */

static void test_seal(void **state)
{
    uint8_t key[32], *sealed = NULL, *opened = NULL;
    size_t sealed_len = 0, opened_len = 0;
    MvError err;
    (void)state;
    fill(key, sizeof key, 14);
    assert_int_equal(mv__seal(key, "label", "row-1", 5, "secret value", 12, &sealed, &sealed_len, &err), MV_OK);
    assert_int_equal(sealed_len, 12 + MV__SEAL_OVERHEAD);
    assert_null(memmem(sealed, sealed_len, "secret", 6));
    assert_int_equal(mv__unseal(key, "label", "row-1", 5, sealed, sealed_len, &opened, &opened_len, &err), MV_OK);
    assert_int_equal(opened_len, 12);
    assert_string_equal((char *)opened, "secret value");
    free(opened);
    /* Another row, another label, a changed byte: all refused. */
    assert_int_equal(mv__unseal(key, "label", "row-2", 5, sealed, sealed_len, &opened, &opened_len, &err),
                     MV_ERR_INTEGRITY);
    assert_int_equal(mv__unseal(key, "other", "row-1", 5, sealed, sealed_len, &opened, &opened_len, &err),
                     MV_ERR_INTEGRITY);
    sealed[14] ^= 0x80;
    assert_int_equal(mv__unseal(key, "label", "row-1", 5, sealed, sealed_len, &opened, &opened_len, &err),
                     MV_ERR_INTEGRITY);
    free(sealed);
}

static void test_normalize(void **state)
{
    static const char *const names[][2] = {
        {"Doe^John", "DOE^JOHN"},         {"  doe ^ john ^^^ ", "DOE^JOHN"}, {"DOE^JOHN=ドウ^ジョン", "DOE^JOHN"},
        {"^John", "^JOHN"},               {"", ""},                         {"Smith", "SMITH"},
        {"O'Brien^Mary Ann", "O'BRIEN^MARY ANN"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *n = mv__normalize_name(names[i][0]);
        assert_non_null(n);
        assert_string_equal(n, names[i][1]);
        free(n);
    }
    char *id = mv__normalize_id("  12345 ");
    assert_string_equal(id, "12345");
    free(id);
}

static void test_blind(void **state)
{
    uint8_t key[32], key2[32], a[32], b[32], c[32], d[32], e[32];
    char *n1, *n2;
    (void)state;
    fill(key, sizeof key, 15);
    fill(key2, sizeof key2, 16);
    n1 = mv__normalize_name("doe^john");
    n2 = mv__normalize_name(" DOE^JOHN^ ");
    mv__blind(key, "patient-name", n1, strlen(n1), a);
    mv__blind(key, "patient-name", n2, strlen(n2), b);
    mv__blind(key, "patient-id", n1, strlen(n1), c);   /* another field */
    mv__blind(key2, "patient-name", n1, strlen(n1), d); /* another key */
    mv__blind(key, "patient-name", "DOE^JANE", 8, e);   /* another value */
    assert_memory_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
    assert_memory_not_equal(a, d, 32);
    assert_memory_not_equal(a, e, 32);
    /* The label is separated from the value: ("ab", "c") and ("a", "bc") differ. */
    mv__blind(key, "ab", "c", 1, c);
    mv__blind(key, "a", "bc", 2, d);
    assert_memory_not_equal(c, d, 32);
    /* HMAC-SHA256(key, "patient-name" || 0 || value), checked against OpenSSL's one-shot HMAC. */
    {
        uint8_t msg[64], want[32];
        size_t mlen = 0;
        unsigned wlen = 0;
        memcpy(msg, "patient-name", 12);
        msg[12] = 0;
        memcpy(msg + 13, "DOE^JOHN", 8);
        mlen = 21;
        EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 32, msg, mlen, want, sizeof want, NULL);
        (void)wlen;
        assert_memory_equal(a, want, 32);
    }
    free(n1);
    free(n2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_range_reads),
        cmocka_unit_test(test_every_byte_flip_fails),
        cmocka_unit_test(test_reorder_swap_truncate),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_python_oracle),
        cmocka_unit_test(test_seal),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_blind),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
