/* Unit tests of the keyring (src/keys, contract include/medveil/keys.h, format docs/keys.md):
 * create and open with a passphrase or a key file, wrong secrets, every flipped byte of the
 * keyring file, a forged body with a recomputed checksum, wrap/unwrap with contexts, rotation
 * with old wraps readable until retirement, named keys across rotation and across processes,
 * changing the passphrase, file modes, writers killed with SIGKILL, mv_secret_read, and an
 * independent decryption of the documented format by Python's `cryptography` package
 * (tests/keys_oracle.py). Argon2id runs with tiny costs here; files go to a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <pty.h>
#include <sys/select.h>
#include <termios.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "medveil/keys.h"

#define PASS "correct horse battery staple"
#define PASS2 "a different passphrase, longer"

static const MvKdfParams fast_kdf = {1, 64, 1};
static char tmp_dir[64];

/* ---- Helpers --------------------------------------------------------------------- */

static int rm_tree(const char *path)
{
    struct stat sb;

    if (lstat(path, &sb) != 0)
        return 0;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        if (d == NULL)
            return -1;
        while ((e = readdir(d)) != NULL) {
            char sub[1024];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        closedir(d);
        return rmdir(path);
    }
    return unlink(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/mv_keys_XXXXXX");
    return mkdtemp(tmp_dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    return rm_tree(tmp_dir);
}

/* tmp_dir/name in one of a few rotating static buffers. */
static const char *path_of(const char *name)
{
    static char paths[8][512];
    static int slot;
    char *p = paths[slot++ % 8];

    snprintf(p, 512, "%s/%s", tmp_dir, name);
    return p;
}

static MvUnlock pass_unlock(const char *pass)
{
    MvUnlock u = {MV_UNLOCK_PASSPHRASE, (const uint8_t *)pass, strlen(pass), NULL, NULL};
    return u;
}

static MvUnlock file_unlock(const char *path)
{
    MvUnlock u = {MV_UNLOCK_KEYFILE, NULL, 0, path, NULL};
    return u;
}

static MvKeyring *create_pass(const char *home, const char *pass)
{
    MvUnlock u = pass_unlock(pass);
    MvKeyring *kr = NULL;
    MvError err;
    MvStatus st = mv_keyring_create(home, &u, &fast_kdf, &kr, &err);

    if (st != MV_OK)
        print_error("create: %s\n", err.message);
    assert_int_equal(st, MV_OK);
    return kr;
}

static MvStatus open_pass(const char *home, const char *pass, MvKeyring **kr, MvError *err)
{
    MvUnlock u = pass_unlock(pass);
    return mv_keyring_open(home, &u, kr, err);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(1 << 20);
    size_t n;

    assert_non_null(f);
    assert_non_null(buf);
    n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    *len = n;
    return buf;
}

static int contains(const uint8_t *buf, size_t len, const char *text)
{
    return memmem(buf, len, text, strlen(text)) != NULL;
}

static void write_all(const char *path, const uint8_t *buf, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void write_random_keyfile(const char *path, size_t n)
{
    uint8_t buf[256];

    assert_true(n <= sizeof buf);
    assert_int_equal(RAND_bytes(buf, (int)n), 1);
    write_all(path, buf, n, 0600);
}

/* ---- Passphrase ------------------------------------------------------------------------ */

static void test_create_open_wrap(void **state)
{
    const char *home = path_of("h1");
    uint8_t dek[MV_DEK_BYTES], back[MV_DEK_BYTES], *w = NULL;
    size_t wlen = 0;
    MvKeyring *kr, *kr2 = NULL;
    MvError err;
    struct stat sb;

    (void)state;
    kr = create_pass(home, PASS);
    assert_int_equal(mv_keyring_current_version(kr), 1);
    assert_int_equal(RAND_bytes(dek, sizeof dek), 1);
    assert_int_equal(mv_keyring_wrap(kr, dek, sizeof dek, "object-1", &w, &wlen, &err), MV_OK);
    assert_int_equal(wlen, 1 + 4 + 12 + MV_DEK_BYTES + 16);
    assert_int_equal(w[0], 1);
    assert_int_equal(mv_keyring_wrapped_version(w, wlen), 1);
    assert_int_equal(mv_keyring_wrapped_version(w, 10), 0);
    assert_null(memmem(w, wlen, dek, 8)); /* the key is not there in the clear */
    mv_keyring_close(kr);

    /* Folder 0700, file 0600, nothing else left behind but the lock file. */
    assert_int_equal(stat(path_of("h1/keyring"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(path_of("h1/keyring/keyring"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    {
        DIR *d = opendir(path_of("h1/keyring"));
        struct dirent *e;
        int n = 0;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.' || strncmp(e->d_name, ".keyring.", 9) == 0)
                n++;
        closedir(d);
        assert_int_equal(n, 2); /* keyring, lock */
    }

    assert_int_equal(open_pass(home, PASS, &kr2, &err), MV_OK);
    assert_int_equal(mv_keyring_unwrap(kr2, w, wlen, "object-1", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    /* Another context, a changed byte anywhere, a truncated blob, a wrong length: all refused. */
    assert_int_equal(mv_keyring_unwrap(kr2, w, wlen, "object-2", back, sizeof back, &err), MV_ERR_INTEGRITY);
    assert_int_equal(mv_keyring_unwrap(kr2, w, wlen, "", back, sizeof back, &err), MV_ERR_INTEGRITY);
    for (size_t i = 0; i < wlen; i++) {
        MvStatus st;
        w[i] ^= 0x40;
        st = mv_keyring_unwrap(kr2, w, wlen, "object-1", back, sizeof back, &err);
        w[i] ^= 0x40;
        if (st != MV_ERR_INTEGRITY)
            print_error("byte %zu of the wrapped key flipped: status %d\n", i, (int)st);
        assert_int_equal(st, MV_ERR_INTEGRITY);
    }
    assert_int_equal(mv_keyring_unwrap(kr2, w, wlen - 1, "object-1", back, sizeof back - 1, &err),
                     MV_ERR_INTEGRITY);
    assert_int_equal(mv_keyring_unwrap(kr2, w, wlen, "object-1", back, sizeof back - 1, &err), MV_ERR_INTEGRITY);
    /* Two wraps of one key differ (random nonces). */
    {
        uint8_t *w2 = NULL;
        size_t w2len = 0;
        assert_int_equal(mv_keyring_wrap(kr2, dek, sizeof dek, "object-1", &w2, &w2len, &err), MV_OK);
        assert_int_equal(w2len, wlen);
        assert_memory_not_equal(w2, w, wlen);
        free(w2);
    }
    mv_keyring_close(kr2);
    free(w);
}

static void test_wrong_passphrase_and_missing(void **state)
{
    const char *home = path_of("h2");
    MvKeyring *kr = create_pass(home, PASS), *kr2 = NULL;
    MvUnlock u = pass_unlock(PASS);
    MvError err;

    (void)state;
    mv_keyring_close(kr);
    assert_int_equal(open_pass(home, "wrong passphrase", &kr2, &err), MV_ERR_DENIED);
    assert_null(kr2);
    assert_non_null(strstr(err.message, "wrong passphrase"));
    assert_int_equal(open_pass(home, "Zq9-not-in-any-message", &kr2, &err), MV_ERR_DENIED);
    assert_null(strstr(err.message, "Zq9"));
    assert_int_equal(open_pass(home, PASS "x", &kr2, &err), MV_ERR_DENIED);
    assert_int_equal(open_pass(path_of("nowhere"), PASS, &kr2, &err), MV_ERR_NOTFOUND);
    /* A second keyring is never created over the first. */
    assert_int_equal(mv_keyring_create(home, &u, &fast_kdf, &kr2, &err), MV_ERR_ARG);
    assert_null(kr2);
    assert_int_equal(open_pass(home, PASS, &kr2, &err), MV_OK);
    mv_keyring_close(kr2);
    /* A too-short new passphrase, bad Argon2 parameters. */
    u = pass_unlock("short");
    assert_int_equal(mv_keyring_create(path_of("h2b"), &u, &fast_kdf, &kr2, &err), MV_ERR_ARG);
    {
        MvKdfParams bad = {0, 64, 1};
        u = pass_unlock(PASS);
        assert_int_equal(mv_keyring_create(path_of("h2c"), &u, &bad, &kr2, &err), MV_ERR_ARG);
        bad.t_cost = 1;
        bad.m_cost_kib = 4;
        assert_int_equal(mv_keyring_create(path_of("h2c"), &u, &bad, &kr2, &err), MV_ERR_ARG);
    }
    /* A keyring readable by others is refused. */
    assert_int_equal(chmod(path_of("h2/keyring/keyring"), 0644), 0);
    assert_int_equal(open_pass(home, PASS, &kr2, &err), MV_ERR_DENIED);
    assert_int_equal(chmod(path_of("h2/keyring/keyring"), 0600), 0);
}

/* Every single flipped bit, in every byte of the file, is MV_ERR_INTEGRITY with the right
 * passphrase, and the keyring still opens once the byte is restored. */
static void test_flipped_bytes(void **state)
{
    const char *home = path_of("h3"), *file = path_of("h3/keyring/keyring");
    MvKeyring *kr = create_pass(home, PASS);
    uint8_t key[32], *orig, *buf;
    size_t len;
    MvError err;

    (void)state;
    assert_int_equal(mv_keyring_named_key(kr, "blind-index", key, &err), MV_OK);
    mv_keyring_close(kr);
    orig = read_all(file, &len);
    /* Neither the passphrase nor the named key is in the file, raw or in hex. */
    {
        char hex[65];
        for (size_t i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", key[i]);
        assert_false(contains(orig, len, PASS));
        assert_false(contains(orig, len, hex));
        assert_null(memmem(orig, len, key, 8));
    }
    buf = malloc(len);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++) {
        static const uint8_t bits[] = {0x01, 0x20, 0x80};
        for (size_t b = 0; b < sizeof bits; b++) {
            MvStatus st;
            memcpy(buf, orig, len);
            buf[i] ^= bits[b];
            write_all(file, buf, len, 0600);
            kr = NULL;
            st = open_pass(home, PASS, &kr, &err);
            if (st != MV_ERR_INTEGRITY)
                print_error("byte %zu ^ 0x%02x of %zu: status %d (%s)\n", i, bits[b], len, (int)st, err.message);
            assert_int_equal(st, MV_ERR_INTEGRITY);
            assert_null(kr);
        }
    }
    /* Truncated, extended, emptied. */
    write_all(file, orig, len - 1, 0600);
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_ERR_INTEGRITY);
    memcpy(buf, orig, len);
    write_all(file, orig, len, 0600);
    {
        FILE *f = fopen(file, "ab");
        fputs("x\n", f);
        fclose(f);
    }
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_ERR_INTEGRITY);
    write_all(file, orig, 0, 0600);
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_ERR_INTEGRITY);
    write_all(file, orig, len, 0600);
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_OK);
    mv_keyring_close(kr);
    free(orig);
    free(buf);
}

/* An attacker who edits the body and recomputes the plain SHA-256 line is stopped by the
 * keyed HMAC (or by the AEAD of what was edited). */
static void test_forged_checksum(void **state)
{
    const char *home = path_of("h4"), *file = path_of("h4/keyring/keyring");
    MvKeyring *kr = create_pass(home, PASS);
    uint8_t key[32], *buf, sum[32];
    size_t len, body_end, mac_end;
    char *p;
    MvError err;

    (void)state;
    assert_int_equal(mv_keyring_named_key(kr, "display", key, &err), MV_OK);
    mv_keyring_close(kr);
    buf = read_all(file, &len);
    p = memchr(buf, '\n', len);
    body_end = (size_t)((uint8_t *)p - buf) + 1;
    p = memchr(buf + body_end, '\n', len - body_end);
    mac_end = (size_t)((uint8_t *)p - buf) + 1;
    /* Edit the name of the named key (same length), recompute the checksum line. */
    p = memmem(buf, body_end, "\"display\"", 9);
    assert_non_null(p);
    memcpy(p, "\"dasplay\"", 9);
    assert_int_equal(EVP_Digest(buf, mac_end, sum, NULL, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < 32; i++)
        snprintf((char *)buf + mac_end + 7 + 2 * i, 3, "%02x", sum[i]);
    buf[len - 1] = '\n';
    write_all(file, buf, len, 0600);
    kr = NULL;
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_ERR_INTEGRITY);
    assert_non_null(strstr(err.message, "HMAC"));
    assert_null(kr);
    /* A keyring of a later format is refused as such, not as damage. */
    memcpy(p, "\"display\"", 9);
    p = memmem(buf, body_end, "\"format_version\":1", 18);
    assert_non_null(p);
    p[17] = '2';
    assert_int_equal(EVP_Digest(buf, mac_end, sum, NULL, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < 32; i++)
        snprintf((char *)buf + mac_end + 7 + 2 * i, 3, "%02x", sum[i]);
    buf[len - 1] = '\n';
    write_all(file, buf, len, 0600);
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "format version 2"));
    free(buf);
}

/* ---- Rotation ---------------------------------------------------------------------------- */

static void test_rotation(void **state)
{
    const char *home = path_of("h5");
    MvKeyring *kr = create_pass(home, PASS), *kr2 = NULL;
    uint8_t dek[MV_DEK_BYTES], back[MV_DEK_BYTES], named1[32], named2[32], named3[32];
    uint8_t *w1 = NULL, *w2 = NULL;
    size_t w1len = 0, w2len = 0;
    uint32_t versions[4];
    unsigned n_retired = 99;
    MvError err;

    (void)state;
    assert_int_equal(RAND_bytes(dek, sizeof dek), 1);
    assert_int_equal(mv_keyring_wrap(kr, dek, sizeof dek, "obj", &w1, &w1len, &err), MV_OK);
    assert_int_equal(mv_keyring_named_key(kr, "blind-index", named1, &err), MV_OK);
    assert_int_equal(mv_keyring_retire_old(kr, &n_retired, &err), MV_OK);
    assert_int_equal(n_retired, 0);

    assert_int_equal(mv_keyring_rotate(kr, NULL, &err), MV_OK);
    assert_int_equal(mv_keyring_current_version(kr), 2);
    assert_int_equal(mv_keyring_versions(kr, versions, 4), 2);
    assert_int_equal(versions[0], 1);
    assert_int_equal(versions[1], 2);
    /* Old wraps still open; new wraps use version 2; the named key is the same key. */
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "obj", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    assert_int_equal(mv_keyring_wrap(kr, dek, sizeof dek, "obj", &w2, &w2len, &err), MV_OK);
    assert_int_equal(mv_keyring_wrapped_version(w2, w2len), 2);
    assert_int_equal(mv_keyring_named_key(kr, "blind-index", named2, &err), MV_OK);
    assert_memory_equal(named1, named2, 32);
    mv_keyring_close(kr);

    /* Reopened: version 1 is unlocked on demand with the same passphrase. */
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_current_version(kr), 2);
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "obj", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    assert_int_equal(mv_keyring_named_key(kr, "blind-index", named3, &err), MV_OK);
    assert_memory_equal(named1, named3, 32);

    /* Retire: version 1 is gone for good, version 2 works, also after reopening. */
    assert_int_equal(mv_keyring_retire_old(kr, &n_retired, &err), MV_OK);
    assert_int_equal(n_retired, 1);
    assert_int_equal(mv_keyring_versions(kr, versions, 4), 1);
    assert_int_equal(versions[0], 2);
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "obj", back, sizeof back, &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_keyring_unwrap(kr, w2, w2len, "obj", back, sizeof back, &err), MV_OK);
    mv_keyring_close(kr);
    assert_int_equal(open_pass(home, PASS, &kr2, &err), MV_OK);
    assert_int_equal(mv_keyring_unwrap(kr2, w1, w1len, "obj", back, sizeof back, &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_keyring_unwrap(kr2, w2, w2len, "obj", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    assert_int_equal(mv_keyring_named_key(kr2, "blind-index", named3, &err), MV_OK);
    assert_memory_equal(named1, named3, 32);
    /* A version this keyring never had. */
    w2[4] = 9;
    assert_int_equal(mv_keyring_unwrap(kr2, w2, w2len, "obj", back, sizeof back, &err), MV_ERR_INTEGRITY);
    /* The retired version's key material is no longer in the file. */
    {
        size_t len;
        uint8_t *file = read_all(path_of("h5/keyring/keyring"), &len);
        assert_true(contains(file, len, "{\"kind\":\"passphrase\",\"state\":\"retired\",\"version\":1}"));
        free(file);
    }
    mv_keyring_close(kr2);
    free(w1);
    free(w2);
}

/* A new passphrase at rotation re-protects the older versions: the old one opens nothing. */
static void test_change_passphrase(void **state)
{
    const char *home = path_of("h6");
    MvKeyring *kr = create_pass(home, PASS);
    MvUnlock u2 = pass_unlock(PASS2);
    uint8_t dek[MV_DEK_BYTES] = {1, 2, 3}, back[MV_DEK_BYTES], *w = NULL;
    size_t wlen = 0;
    MvKdfParams tuned = {2, 128, 1};
    MvError err;

    (void)state;
    assert_int_equal(mv_keyring_wrap(kr, dek, sizeof dek, "x", &w, &wlen, &err), MV_OK);
    assert_int_equal(mv_keyring_set_kdf(kr, &tuned, &err), MV_OK);
    tuned.parallelism = 0;
    assert_int_equal(mv_keyring_set_kdf(kr, &tuned, &err), MV_ERR_ARG);
    assert_int_equal(mv_keyring_rotate(kr, &u2, &err), MV_OK);
    mv_keyring_close(kr);
    kr = NULL;
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_ERR_DENIED);
    assert_int_equal(open_pass(home, PASS2, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_unwrap(kr, w, wlen, "x", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    mv_keyring_close(kr);
    /* The tuned parameters are stored with every version protected since. */
    {
        size_t len;
        uint8_t *file = read_all(path_of("h6/keyring/keyring"), &len);
        assert_true(contains(file, len, "{\"alg\":\"argon2id\",\"m_kib\":128,\"p\":1,\"t\":2}"));
        assert_false(contains(file, len, "\"m_kib\":64"));
        free(file);
    }
    free(w);
}

/* Two handles on one keyring (two processes in real life): named keys made by either are
 * seen by both; a rotation by one makes the other's writes refuse. */
static void test_two_handles(void **state)
{
    const char *home = path_of("h7");
    MvKeyring *a = create_pass(home, PASS), *b = NULL;
    uint8_t ka[32], kb[32], ka2[32], kb2[32];
    unsigned n;
    MvError err;

    (void)state;
    assert_int_equal(open_pass(home, PASS, &b, &err), MV_OK);
    assert_int_equal(mv_keyring_named_key(a, "k-a", ka, &err), MV_OK);
    assert_int_equal(mv_keyring_named_key(b, "k-b", kb, &err), MV_OK);
    assert_int_equal(mv_keyring_named_key(b, "k-a", ka2, &err), MV_OK);
    assert_memory_equal(ka, ka2, 32);
    assert_int_equal(mv_keyring_named_key(a, "k-b", kb2, &err), MV_OK);
    assert_memory_equal(kb, kb2, 32);
    assert_memory_not_equal(ka, kb, 32);
    assert_int_equal(mv_keyring_rotate(a, NULL, &err), MV_OK);
    assert_int_equal(mv_keyring_named_key(b, "k-c", kb2, &err), MV_ERR_ARG);
    assert_int_equal(mv_keyring_retire_old(b, &n, &err), MV_ERR_ARG);
    /* Names are checked. */
    assert_int_equal(mv_keyring_named_key(a, "Bad Name", ka2, &err), MV_ERR_ARG);
    assert_int_equal(mv_keyring_named_key(a, "", ka2, &err), MV_ERR_ARG);
    mv_keyring_close(a);
    mv_keyring_close(b);
}

/* Writers killed with SIGKILL at random moments (while they make named keys and rotate): the
 * keyring always opens afterwards, every named key it lists still opens, and no temporary
 * file outlives the next write. */
static void test_killed_writers(void **state)
{
    const char *home = path_of("h10");
    MvKeyring *kr = create_pass(home, PASS);
    uint8_t key[32];
    MvError err;

    (void)state;
    assert_int_equal(mv_keyring_named_key(kr, "first", key, &err), MV_OK);
    mv_keyring_close(kr);
    for (int round = 0; round < 20; round++) {
        uint8_t r;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            MvKeyring *child = NULL;
            if (open_pass(home, PASS, &child, NULL) != MV_OK)
                _exit(3);
            for (unsigned i = 0;; i++) {
                char name[32];
                unsigned n;
                snprintf(name, sizeof name, "k%d-%u", round, i);
                if (mv_keyring_named_key(child, name, key, NULL) != MV_OK)
                    _exit(4);
                if (i % 3 == 0 && mv_keyring_rotate(child, NULL, NULL) != MV_OK)
                    _exit(5);
                if (i % 7 == 0 && mv_keyring_retire_old(child, &n, NULL) != MV_OK)
                    _exit(6);
            }
        }
        assert_int_equal(RAND_bytes(&r, 1), 1);
        usleep(2000 + 200u * r);
        kill(pid, SIGKILL);
        {
            int status = 0;
            assert_int_equal(waitpid(pid, &status, 0), pid);
            if (!WIFSIGNALED(status))
                print_error("round %d: the writer exited with %d before it was killed\n", round,
                            WEXITSTATUS(status));
            assert_true(WIFSIGNALED(status));
        }
        kr = NULL;
        if (open_pass(home, PASS, &kr, &err) != MV_OK)
            print_error("round %d: %s\n", round, err.message);
        assert_non_null(kr);
        assert_int_equal(mv_keyring_named_key(kr, "first", key, &err), MV_OK);
        mv_keyring_close(kr);
    }
    /* The writers did write (the test would prove nothing otherwise). */
    {
        size_t len;
        uint8_t *file = read_all(path_of("h10/keyring/keyring"), &len);
        int rounds_written = 0;
        for (int round = 0; round < 20; round++) {
            char name[32];
            snprintf(name, sizeof name, "\"k%d-0\"", round);
            rounds_written += contains(file, len, name);
        }
        print_message("killed writers: %d of 20 rounds had written before SIGKILL\n", rounds_written);
        assert_true(rounds_written >= 5);
        free(file);
    }
    /* A write removes what killed writers left between mkstemp and rename. */
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_OK);
    write_all(path_of("h10/keyring/.keyring.stale1"), (const uint8_t *)"x", 1, 0600);
    assert_int_equal(mv_keyring_named_key(kr, "last", key, &err), MV_OK);
    assert_int_equal(access(path_of("h10/keyring/.keyring.stale1"), F_OK), -1);
    mv_keyring_close(kr);
}

/* Several threads wrapping, unwrapping and asking for named keys on one handle. */
struct thread_arg {
    MvKeyring *kr;
    int id;
    int failures;
};

static void *wrap_worker(void *p)
{
    struct thread_arg *a = p;
    uint8_t dek[MV_DEK_BYTES], back[MV_DEK_BYTES], named[32], *w = NULL;
    size_t wlen = 0;
    char context[32], name[32];

    snprintf(context, sizeof context, "thread-%d", a->id);
    snprintf(name, sizeof name, "thread-%d", a->id % 2);
    for (int i = 0; i < 200; i++) {
        memset(dek, a->id + i, sizeof dek);
        if (mv_keyring_wrap(a->kr, dek, sizeof dek, context, &w, &wlen, NULL) != MV_OK ||
            mv_keyring_unwrap(a->kr, w, wlen, context, back, sizeof back, NULL) != MV_OK ||
            memcmp(back, dek, sizeof dek) != 0 || mv_keyring_named_key(a->kr, name, named, NULL) != MV_OK)
            a->failures++;
        free(w);
        w = NULL;
    }
    return NULL;
}

static void test_threads(void **state)
{
    MvKeyring *kr = create_pass(path_of("h11"), PASS);
    pthread_t threads[4];
    struct thread_arg args[4];
    uint8_t k0[32], k1[32];
    MvError err;

    (void)state;
    for (int i = 0; i < 4; i++) {
        args[i].kr = kr;
        args[i].id = i;
        args[i].failures = 0;
        assert_int_equal(pthread_create(&threads[i], NULL, wrap_worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    mv_keyring_close(kr);
    /* The two named keys raced for were each made once. */
    assert_int_equal(open_pass(path_of("h11"), PASS, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_named_key(kr, "thread-0", k0, &err), MV_OK);
    assert_int_equal(mv_keyring_named_key(kr, "thread-1", k1, &err), MV_OK);
    assert_memory_not_equal(k0, k1, 32);
    mv_keyring_close(kr);
}

/* mv_keyring_probe tells the unlock method without any secret. */
static void test_probe(void **state)
{
    MvKeyring *kr = create_pass(path_of("h12"), PASS);
    MvUnlock u = file_unlock(path_of("kf12"));
    MvUnlockKind kind = 0;
    char token[64] = "x";
    MvError err;

    (void)state;
    mv_keyring_close(kr);
    assert_int_equal(mv_keyring_probe(path_of("h12"), &kind, token, sizeof token, &err), MV_OK);
    assert_int_equal(kind, MV_UNLOCK_PASSPHRASE);
    assert_string_equal(token, "");
    write_random_keyfile(path_of("kf12"), 32);
    assert_int_equal(mv_keyring_create(path_of("h13"), &u, NULL, &kr, &err), MV_OK);
    mv_keyring_close(kr);
    assert_int_equal(mv_keyring_probe(path_of("h13"), &kind, NULL, 0, &err), MV_OK);
    assert_int_equal(kind, MV_UNLOCK_KEYFILE);
    assert_int_equal(mv_keyring_probe(path_of("nothing"), &kind, NULL, 0, &err), MV_ERR_NOTFOUND);
    {
        size_t len;
        uint8_t *file = read_all(path_of("h13/keyring/keyring"), &len);
        file[10] ^= 1;
        write_all(path_of("h13/keyring/keyring"), file, len, 0600);
        free(file);
    }
    assert_int_equal(mv_keyring_probe(path_of("h13"), &kind, NULL, 0, &err), MV_ERR_INTEGRITY);
}

/* ---- Key file ------------------------------------------------------------------------------ */

static void test_keyfile(void **state)
{
    const char *home = path_of("h8"), *kf = path_of("kf1"), *kf2 = path_of("kf2"), *kshort = path_of("kf3");
    MvUnlock u = file_unlock(kf);
    MvKeyring *kr = NULL;
    uint8_t dek[MV_DEK_BYTES] = {9}, back[MV_DEK_BYTES], *w = NULL;
    size_t wlen = 0;
    MvError err;

    (void)state;
    write_random_keyfile(kf, 64);
    write_random_keyfile(kf2, 64);
    write_random_keyfile(kshort, 31);
    assert_int_equal(mv_keyring_create(home, &u, NULL, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_wrap(kr, dek, sizeof dek, "k", &w, &wlen, &err), MV_OK);
    mv_keyring_close(kr);
    kr = NULL;
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_unwrap(kr, w, wlen, "k", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    /* Rotation keeps the key file. */
    assert_int_equal(mv_keyring_rotate(kr, NULL, &err), MV_OK);
    mv_keyring_close(kr);
    kr = NULL;
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_unwrap(kr, w, wlen, "k", back, sizeof back, &err), MV_OK);
    mv_keyring_close(kr);
    kr = NULL;
    /* Another key file, a passphrase, a short or open key file, a missing one. */
    u.path = kf2;
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_ERR_DENIED);
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_ERR_DENIED);
    assert_non_null(strstr(err.message, "key file"));
    u.path = kshort;
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_ERR_ARG);
    u.path = path_of("missing");
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_ERR_ARG);
    assert_int_equal(chmod(kf, 0640), 0);
    u.path = kf;
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_ERR_DENIED);
    assert_int_equal(chmod(kf, 0600), 0);
    /* From key file to passphrase at rotation. */
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_OK);
    {
        MvUnlock p = pass_unlock(PASS);
        assert_int_equal(mv_keyring_set_kdf(kr, &fast_kdf, &err), MV_OK);
        assert_int_equal(mv_keyring_rotate(kr, &p, &err), MV_OK);
    }
    mv_keyring_close(kr);
    kr = NULL;
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_ERR_DENIED);
    assert_int_equal(open_pass(home, PASS, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_unwrap(kr, w, wlen, "k", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    mv_keyring_close(kr);
    free(w);
}

/* ---- mv_secret_read -------------------------------------------------------------------------- */

static void test_secret_read(void **state)
{
    const char *f1 = path_of("pass1"), *f2 = path_of("pass2"), *f3 = path_of("pass3");
    uint8_t *s = NULL;
    size_t n = 0;
    MvError err;

    (void)state;
    write_all(f1, (const uint8_t *)"my passphrase\n", 14, 0600);
    assert_int_equal(mv_secret_read(f1, NULL, NULL, &s, &n, &err), MV_OK);
    assert_int_equal(n, 13);
    assert_memory_equal(s, "my passphrase", 13);
    assert_int_equal(s[n], 0);
    mv_secret_free(s, n);
    write_all(f2, (const uint8_t *)"crlf\r\n", 6, 0600);
    assert_int_equal(mv_secret_read(f2, NULL, NULL, &s, &n, &err), MV_OK);
    assert_int_equal(n, 4);
    mv_secret_free(s, n);
    write_all(f3, (const uint8_t *)"two\nlines\n", 10, 0600);
    assert_int_equal(mv_secret_read(f3, NULL, NULL, &s, &n, &err), MV_ERR_ARG);
    assert_null(s);
    write_all(f3, (const uint8_t *)"\n", 1, 0600);
    assert_int_equal(mv_secret_read(f3, NULL, NULL, &s, &n, &err), MV_ERR_ARG);
    /* A file readable by others is refused; the message names the file, never the secret. */
    assert_int_equal(chmod(f1, 0644), 0);
    assert_int_equal(mv_secret_read(f1, NULL, NULL, &s, &n, &err), MV_ERR_DENIED);
    assert_non_null(strstr(err.message, "pass1"));
    assert_null(strstr(err.message, "my passphrase"));
    assert_int_equal(mv_secret_read(path_of("none"), NULL, NULL, &s, &n, &err), MV_ERR_NOTFOUND);
    /* The file wins over the variable; the variable is used when there is no file. */
    setenv("MV_TEST_SECRET", "from the environment", 1);
    assert_int_equal(chmod(f1, 0600), 0);
    assert_int_equal(mv_secret_read(f1, "MV_TEST_SECRET", NULL, &s, &n, &err), MV_OK);
    assert_int_equal(n, 13);
    mv_secret_free(s, n);
    assert_int_equal(mv_secret_read(NULL, "MV_TEST_SECRET", NULL, &s, &n, &err), MV_OK);
    assert_int_equal(n, 20);
    assert_memory_equal(s, "from the environment", 20);
    mv_secret_free(s, n);
    unsetenv("MV_TEST_SECRET");
    /* No file, no variable and no terminal: a clear usage error. */
    {
        int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
        if (tty < 0) {
            assert_int_equal(mv_secret_read(NULL, "MV_TEST_SECRET", "Passphrase: ", &s, &n, &err), MV_ERR_ARG);
            assert_non_null(strstr(err.message, "MV_TEST_SECRET"));
        } else {
            close(tty);
            print_message("SKIP: a terminal is attached; the no-source case is not tested\n");
        }
    }
}

/* The prompt on a real terminal (a pseudo-terminal): what is typed is not echoed, the prompt
 * goes out, and after Ctrl-C the terminal has its echo back and the process dies of SIGINT. */
static void pty_read_all(int fd, char *buf, size_t cap, size_t *n)
{
    for (;;) {
        fd_set fds;
        struct timeval tv = {2, 0};
        ssize_t r;
        FD_ZERO(&fds);
        FD_SET(fd, &fds);
        if (select(fd + 1, &fds, NULL, NULL, &tv) <= 0)
            break;
        r = read(fd, buf + *n, cap - 1 - *n);
        if (r <= 0)
            break;
        *n += (size_t)r;
    }
    buf[*n] = '\0';
}

/* Reads the pseudo-terminal until the prompt has appeared (echo is off from then on). */
static void wait_for_prompt(int master)
{
    char prompt[256];
    size_t pn = 0;

    prompt[0] = '\0';
    while (strstr(prompt, "Passphrase: ") == NULL && pn < sizeof prompt - 1) {
        ssize_t r = read(master, prompt + pn, sizeof prompt - 1 - pn);
        if (r <= 0)
            break;
        pn += (size_t)r;
        prompt[pn] = '\0';
    }
    assert_non_null(strstr(prompt, "Passphrase: "));
}

static void test_secret_tty(void **state)
{
    char out[4096];
    size_t n = 0;
    int master, status = 0;
    pid_t pid;
    struct termios tio;

    (void)state;
    alarm(60); /* a hang at the prompt fails the test instead of stalling the suite */
    pid = forkpty(&master, NULL, NULL, NULL);
    if (pid < 0) {
        print_message("SKIP: no pseudo-terminal available (forkpty failed)\n");
        alarm(0);
        return;
    }
    if (pid == 0) {
        uint8_t *s = NULL;
        size_t len = 0;
        unsetenv("MV_TEST_SECRET");
        if (mv_secret_read(NULL, "MV_TEST_SECRET", "Passphrase: ", &s, &len, NULL) != MV_OK)
            _exit(3);
        printf("GOT %zu %s\n", len, len == 18 && memcmp(s, "typed-but-not-seen", 18) == 0 ? "match" : "nomatch");
        fflush(stdout);
        mv_secret_free(s, len);
        _exit(0);
    }
    /* Wait for the prompt (so echo is off), then type. */
    wait_for_prompt(master);
    assert_int_equal(write(master, "typed-but-not-seen\n", 19), 19);
    pty_read_all(master, out, sizeof out, &n);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    if (strstr(out, "GOT 18 match") == NULL || strstr(out, "typed-but-not-seen") != NULL)
        print_error("terminal showed: %s\n", out);
    assert_null(strstr(out, "typed-but-not-seen")); /* not echoed */
    assert_non_null(strstr(out, "GOT 18 match"));     /* read, without the newline */
    close(master);

    /* Ctrl-C at the prompt: the child dies of SIGINT and the terminal echoes again. */
    pid = forkpty(&master, NULL, NULL, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t *s = NULL;
        size_t len = 0;
        signal(SIGINT, SIG_DFL); /* a test run in the background may inherit SIGINT ignored */
        (void)mv_secret_read(NULL, NULL, "Passphrase: ", &s, &len, NULL);
        _exit(0);
    }
    wait_for_prompt(master);
    assert_int_equal(tcgetattr(master, &tio), 0);
    assert_int_equal(tio.c_lflag & ECHO, 0); /* echo off while the prompt waits */
    assert_int_equal(write(master, "\x03", 1), 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGINT);
    assert_int_equal(tcgetattr(master, &tio), 0);
    assert_true((tio.c_lflag & ECHO) != 0);
    close(master);
    alarm(0);
}

/* ---- Independent oracle ------------------------------------------------------------------- */

/* Writes a keyring, a wrapped data key and the data key in hex, then asks
 * tests/keys_oracle.py to open the KEK with Argon2id + AES-GCM and the data key with
 * AES-GCM, exactly as docs/keys.md describes, using Python's `cryptography` package. */
static void test_python_oracle(void **state)
{
    const char *src = getenv("MV_SOURCE_DIR"), *py = getenv("MV_PYTHON");
    const char *home = path_of("h9");
    MvKeyring *kr = create_pass(home, PASS);
    uint8_t dek[MV_DEK_BYTES], *w = NULL, named[32];
    size_t wlen = 0;
    char cmd[2048], hex[2 * 200 + 1];
    MvError err;
    FILE *f;
    int rc;

    (void)state;
    assert_int_equal(RAND_bytes(dek, sizeof dek), 1);
    assert_int_equal(mv_keyring_named_key(kr, "blind-index", named, &err), MV_OK);
    assert_int_equal(mv_keyring_rotate(kr, NULL, &err), MV_OK); /* the oracle sees two versions */
    assert_int_equal(mv_keyring_wrap(kr, dek, sizeof dek, "object-42", &w, &wlen, &err), MV_OK);
    mv_keyring_close(kr);
    f = fopen(path_of("oracle.txt"), "w");
    assert_non_null(f);
    for (size_t i = 0; i < wlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", w[i]);
    fprintf(f, "%s\nobject-42\n", hex);
    for (size_t i = 0; i < sizeof dek; i++)
        snprintf(hex + 2 * i, 3, "%02x", dek[i]);
    fprintf(f, "%s\n", hex);
    for (size_t i = 0; i < sizeof named; i++)
        snprintf(hex + 2 * i, 3, "%02x", named[i]);
    fprintf(f, "%s\n", hex);
    fclose(f);
    write_all(path_of("oracle.pass"), (const uint8_t *)PASS, strlen(PASS), 0600);
    if (src == NULL || py == NULL) {
        print_message("SKIP: MV_SOURCE_DIR or MV_PYTHON unset (run under ctest)\n");
        free(w);
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/keys_oracle.py' '%s' '%s' '%s'", py, src,
             path_of("h9/keyring/keyring"), path_of("oracle.pass"), path_of("oracle.txt"));
    rc = system(cmd);
    assert_true(WIFEXITED(rc));
    if (WEXITSTATUS(rc) == 77) {
        print_message("SKIP: Python's cryptography package (with Argon2id) is missing\n");
    } else {
        assert_int_equal(WEXITSTATUS(rc), 0);
    }
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_open_wrap),
        cmocka_unit_test(test_wrong_passphrase_and_missing),
        cmocka_unit_test(test_flipped_bytes),
        cmocka_unit_test(test_forged_checksum),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_change_passphrase),
        cmocka_unit_test(test_two_handles),
        cmocka_unit_test(test_killed_writers),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_keyfile),
        cmocka_unit_test(test_secret_read),
        cmocka_unit_test(test_secret_tty),
        cmocka_unit_test(test_python_oracle),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
