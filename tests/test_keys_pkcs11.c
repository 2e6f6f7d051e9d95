/* Keyring on a PKCS#11 token (src/keys/pkcs11.c), against SoftHSM2 in a temporary
 * SOFTHSM2_CONF: create, wrap, unwrap, wrong PIN / token / unlock kind, rotation with old
 * wraps readable, retirement destroying the old token key, a KEK deleted behind medveil's back.
 * OpenSC's pkcs11-tool is the independent witness that the KEK objects are sensitive, never
 * extractable and made in the token, and that retired ones are gone. Skips loudly when SoftHSM2
 * (or, for the witness checks only, pkcs11-tool) is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "medveil/keys.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "medveil-test"
#define PIN "123456"
#define SO_PIN "654321"

static char tmp_dir[64];
static int have_softhsm, have_pkcs11_tool;

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

static const char *path_of(const char *name)
{
    static char paths[8][512];
    static int slot;
    char *p = paths[slot++ % 8];

    snprintf(p, 512, "%s/%s", tmp_dir, name);
    return p;
}

static int on_path(const char *prog)
{
    char cmd[256];

    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

static int setup(void **state)
{
    char conf[600], cmd[1024];
    FILE *f;

    (void)state;
    have_softhsm = access(MODULE, R_OK) == 0 && on_path("softhsm2-util");
    have_pkcs11_tool = on_path("pkcs11-tool");
    if (!have_softhsm) {
        print_message("SKIP: SoftHSM2 is not installed (%s, softhsm2-util); PKCS#11 keyring untested\n", MODULE);
        return 0;
    }
    if (!have_pkcs11_tool)
        print_message("SKIP (part): OpenSC's pkcs11-tool is missing; token attributes are not cross-checked\n");
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/mv_p11_XXXXXX");
    if (mkdtemp(tmp_dir) == NULL)
        return -1;
    if (mkdir(path_of("tokens"), 0700) != 0)
        return -1;
    snprintf(conf, sizeof conf, "%s", path_of("softhsm2.conf"));
    f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", path_of("tokens"));
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(cmd, sizeof cmd,
             "softhsm2-util --init-token --free --label " TOKEN " --pin " PIN " --so-pin " SO_PIN " >/dev/null");
    if (system(cmd) != 0)
        return -1;
    snprintf(cmd, sizeof cmd,
             "softhsm2-util --init-token --free --label other-token --pin " PIN " --so-pin " SO_PIN " >/dev/null");
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return have_softhsm ? rm_tree(tmp_dir) : 0;
}

static MvUnlock token_unlock(const char *pin, const char *token)
{
    MvUnlock u = {MV_UNLOCK_PKCS11, (const uint8_t *)pin, strlen(pin), MODULE, token};
    return u;
}

/* The output of `pkcs11-tool --list-objects --type secrkey` on the test token (malloc'd). */
static char *list_secret_keys(void)
{
    char *out = calloc(1, 65536);
    size_t n = 0, r;
    FILE *p;

    assert_non_null(out);
    p = popen("pkcs11-tool --module " MODULE " --token-label " TOKEN " --login --pin " PIN
              " --list-objects --type secrkey 2>/dev/null",
              "r");
    assert_non_null(p);
    while ((r = fread(out + n, 1, 65535 - n, p)) > 0)
        n += r;
    pclose(p);
    return out;
}

/* Counts the KEK objects of this test (label prefix) that pkcs11-tool sees. */
static int count_keks(const char *listing)
{
    int n = 0;

    for (const char *p = listing; (p = strstr(p, "label:      medveil-kek-")) != NULL; p++)
        n++;
    return n;
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void test_token_keyring(void **state)
{
    const char *home = path_of("home");
    MvUnlock u = token_unlock(PIN, TOKEN);
    MvKeyring *kr = NULL;
    uint8_t dek[MV_DEK_BYTES], back[MV_DEK_BYTES], named1[32], named2[32], *w1 = NULL, *w2 = NULL;
    size_t w1len = 0, w2len = 0;
    unsigned n_retired = 0;
    MvError err;

    (void)state;
    if (!have_softhsm)
        skip();
    assert_int_equal(RAND_bytes(dek, sizeof dek), 1);
    if (mv_keyring_create(home, &u, NULL, &kr, &err) != MV_OK)
        print_error("create: %s\n", err.message);
    assert_non_null(kr);
    assert_int_equal(mv_keyring_wrap(kr, dek, sizeof dek, "obj-1", &w1, &w1len, &err), MV_OK);
    assert_int_equal(mv_keyring_wrapped_version(w1, w1len), 1);
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "obj-1", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "obj-2", back, sizeof back, &err), MV_ERR_INTEGRITY);
    w1[20] ^= 1;
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "obj-1", back, sizeof back, &err), MV_ERR_INTEGRITY);
    w1[20] ^= 1;
    assert_int_equal(mv_keyring_named_key(kr, "blind-index", named1, &err), MV_OK);
    mv_keyring_close(kr);
    kr = NULL;

    /* Probing tells a token keyring and its token without the PIN. */
    {
        MvUnlockKind kind = 0;
        char token[64];
        assert_int_equal(mv_keyring_probe(home, &kind, token, sizeof token, &err), MV_OK);
        assert_int_equal(kind, MV_UNLOCK_PKCS11);
        assert_string_equal(token, TOKEN);
    }
    /* The keyring file names the token key; it holds no key material for it. */
    {
        FILE *f = fopen(path_of("home/keyring/keyring"), "r");
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        assert_non_null(strstr(buf, "\"kind\":\"pkcs11\""));
        assert_null(strstr(buf, "\"wrapped\""));
        assert_non_null(strstr(buf, "\"token\":\"" TOKEN "\""));
    }
    /* The witness: a sensitive, never extractable AES key made in the token, for encrypt and
     * decrypt only, whose value cannot be read. */
    if (have_pkcs11_tool) {
        char *listing = list_secret_keys();
        int rc;
        assert_int_equal(count_keks(listing), 1);
        assert_non_null(strstr(listing, "AES length 32"));
        assert_non_null(strstr(listing, "Access:     sensitive, always sensitive, never extractable, local"));
        assert_non_null(strstr(listing, "Usage:      encrypt, decrypt\n"));
        free(listing);
        rc = system("pkcs11-tool --module " MODULE " --token-label " TOKEN " --login --pin " PIN
                    " --read-object --type secrkey --label \"$(pkcs11-tool --module " MODULE " --token-label " TOKEN
                    " --login --pin " PIN " --list-objects --type secrkey 2>/dev/null | sed -n "
                    "'s/^ *label: *//p' | head -1)\" >/dev/null 2>&1");
        assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) != 0);
    }

    /* Wrong PIN, unknown token, another token, another kind, a module that is not one. */
    {
        MvUnlock bad = token_unlock("000000", TOKEN);
        MvUnlock pass = {MV_UNLOCK_PASSPHRASE, (const uint8_t *)"some passphrase", 15, NULL, NULL};
        assert_int_equal(mv_keyring_open(home, &bad, &kr, &err), MV_ERR_DENIED);
        bad = token_unlock(PIN, "no-such-token");
        assert_int_equal(mv_keyring_open(home, &bad, &kr, &err), MV_ERR_ARG);
        bad = token_unlock(PIN, "other-token");
        assert_int_equal(mv_keyring_open(home, &bad, &kr, &err), MV_ERR_DENIED);
        assert_int_equal(mv_keyring_open(home, &pass, &kr, &err), MV_ERR_DENIED);
        bad = token_unlock(PIN, TOKEN);
        bad.path = "/nonexistent/libnothing.so";
        assert_int_equal(mv_keyring_open(home, &bad, &kr, &err), MV_ERR_ARG);
        assert_null(kr);
    }

    /* Rotation: a second token key; old wraps still open; named keys unchanged. */
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_rotate(kr, NULL, &err), MV_OK);
    assert_int_equal(mv_keyring_current_version(kr), 2);
    assert_int_equal(mv_keyring_wrap(kr, dek, sizeof dek, "obj-1", &w2, &w2len, &err), MV_OK);
    assert_int_equal(mv_keyring_wrapped_version(w2, w2len), 2);
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "obj-1", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    assert_int_equal(mv_keyring_named_key(kr, "blind-index", named2, &err), MV_OK);
    assert_memory_equal(named1, named2, 32);
    mv_keyring_close(kr);
    kr = NULL;
    if (have_pkcs11_tool) {
        char *listing = list_secret_keys();
        assert_int_equal(count_keks(listing), 2);
        free(listing);
    }

    /* Retire: the old token key is destroyed; its wraps are gone for good. */
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "obj-1", back, sizeof back, &err), MV_OK);
    assert_int_equal(mv_keyring_retire_old(kr, &n_retired, &err), MV_OK);
    assert_int_equal(n_retired, 1);
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "obj-1", back, sizeof back, &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_keyring_unwrap(kr, w2, w2len, "obj-1", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    mv_keyring_close(kr);
    kr = NULL;
    if (have_pkcs11_tool) {
        char *listing = list_secret_keys();
        assert_int_equal(count_keks(listing), 1);
        assert_non_null(strstr(listing, "-v2\n"));
        assert_null(strstr(listing, "-v1\n"));
        free(listing);
    }
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_named_key(kr, "blind-index", named2, &err), MV_OK);
    assert_memory_equal(named1, named2, 32);
    mv_keyring_close(kr);
    kr = NULL;

    /* The current KEK deleted from the token behind medveil's back: the keyring no longer opens. */
    if (have_pkcs11_tool) {
        int rc = system("pkcs11-tool --module " MODULE " --token-label " TOKEN " --login --pin " PIN
                        " --delete-object --type secrkey --label \"$(pkcs11-tool --module " MODULE
                        " --token-label " TOKEN " --login --pin " PIN " --list-objects --type secrkey 2>/dev/null | "
                        "sed -n 's/^ *label: *//p' | grep medveil-kek | head -1)\" >/dev/null 2>&1");
        assert_int_equal(rc, 0);
        assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_ERR_DENIED);
        assert_non_null(strstr(err.message, "does not hold"));
    }
    free(w1);
    free(w2);
}

/* Threads sharing one token session: the keyring serialises them. */
struct thread_arg {
    MvKeyring *kr;
    int id;
    int failures;
};

static void *token_worker(void *p)
{
    struct thread_arg *a = p;
    uint8_t dek[MV_DEK_BYTES], back[MV_DEK_BYTES], *w = NULL;
    size_t wlen = 0;

    for (int i = 0; i < 50; i++) {
        memset(dek, a->id * 64 + i, sizeof dek);
        if (mv_keyring_wrap(a->kr, dek, sizeof dek, "threaded", &w, &wlen, NULL) != MV_OK ||
            mv_keyring_unwrap(a->kr, w, wlen, "threaded", back, sizeof back, NULL) != MV_OK ||
            memcmp(back, dek, sizeof dek) != 0)
            a->failures++;
        free(w);
        w = NULL;
    }
    return NULL;
}

static void test_token_threads(void **state)
{
    MvUnlock u = token_unlock(PIN, TOKEN);
    MvKeyring *kr = NULL;
    pthread_t threads[4];
    struct thread_arg args[4];
    MvError err;

    (void)state;
    if (!have_softhsm)
        skip();
    assert_int_equal(mv_keyring_create(path_of("home3"), &u, NULL, &kr, &err), MV_OK);
    for (int i = 0; i < 4; i++) {
        args[i].kr = kr;
        args[i].id = i;
        args[i].failures = 0;
        assert_int_equal(pthread_create(&threads[i], NULL, token_worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    mv_keyring_close(kr);
}

/* Moving from a passphrase to the token at rotation, in one session, then retiring. */
static void test_passphrase_to_token(void **state)
{
    const char *home = path_of("home2");
    MvKdfParams fast = {1, 64, 1};
    MvUnlock pass = {MV_UNLOCK_PASSPHRASE, (const uint8_t *)"passphrase one", 14, NULL, NULL};
    MvUnlock u = token_unlock(PIN, TOKEN);
    MvKeyring *kr = NULL;
    uint8_t dek[MV_DEK_BYTES] = {7}, back[MV_DEK_BYTES], *w1 = NULL, *w2 = NULL;
    size_t w1len = 0, w2len = 0;
    unsigned n_retired = 0;
    MvError err;

    (void)state;
    if (!have_softhsm)
        skip();
    assert_int_equal(mv_keyring_create(home, &pass, &fast, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_wrap(kr, dek, sizeof dek, "o", &w1, &w1len, &err), MV_OK);
    assert_int_equal(mv_keyring_rotate(kr, &u, &err), MV_OK);
    /* The owner rewraps its data keys in the same session, then retires. */
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "o", back, sizeof back, &err), MV_OK);
    assert_int_equal(mv_keyring_wrap(kr, back, sizeof back, "o", &w2, &w2len, &err), MV_OK);
    assert_int_equal(mv_keyring_retire_old(kr, &n_retired, &err), MV_OK);
    assert_int_equal(n_retired, 1);
    mv_keyring_close(kr);
    kr = NULL;
    assert_int_equal(mv_keyring_open(home, &pass, &kr, &err), MV_ERR_DENIED);
    assert_int_equal(mv_keyring_open(home, &u, &kr, &err), MV_OK);
    assert_int_equal(mv_keyring_unwrap(kr, w2, w2len, "o", back, sizeof back, &err), MV_OK);
    assert_memory_equal(back, dek, sizeof dek);
    assert_int_equal(mv_keyring_unwrap(kr, w1, w1len, "o", back, sizeof back, &err), MV_ERR_NOTFOUND);
    mv_keyring_close(kr);
    free(w1);
    free(w2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_keyring),
        cmocka_unit_test(test_passphrase_to_token),
        cmocka_unit_test(test_token_threads),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
