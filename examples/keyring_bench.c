/* Times the keyring (include/medveil/keys.h): creating and unlocking a passphrase keyring at
 * given Argon2id costs, and wrapping + unwrapping data keys, so an installation can choose its
 * parameters (docs/keys.md, "Argon2id tuning"). With MV_PKCS11_MODULE, MV_PKCS11_TOKEN and
 * MV_PKCS11_PIN_FILE set it also times wraps in that token. Works in a new temporary home.
 *
 * usage: keyring_bench [T_COST M_COST_KIB [N_WRAPS]]      (defaults: 3 65536 20000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "medveil/keys.h"

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long arg(const char *s, const char *what)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);

    if (end == s || *end != '\0') {
        fprintf(stderr, "keyring_bench: %s must be a number\n", what);
        exit(2);
    }
    return v;
}

/* Times n wrap + unwrap pairs of a 32-byte key; returns microseconds per pair, < 0 on error. */
static double time_wraps(MvKeyring *kr, unsigned long n)
{
    uint8_t dek[MV_DEK_BYTES] = {0}, *wrapped = NULL;
    size_t wrapped_len = 0;
    MvError err;
    double t0 = now();

    for (unsigned long i = 0; i < n; i++) {
        if (mv_keyring_wrap(kr, dek, sizeof dek, "benchmark-object", &wrapped, &wrapped_len, &err) != MV_OK ||
            mv_keyring_unwrap(kr, wrapped, wrapped_len, "benchmark-object", dek, sizeof dek, &err) != MV_OK) {
            fprintf(stderr, "keyring_bench: %s\n", err.message);
            free(wrapped);
            return -1;
        }
        free(wrapped);
    }
    return (now() - t0) / (double)n * 1e6;
}

static void remove_home(const char *home)
{
    char path[600];

    snprintf(path, sizeof path, "%s/keyring/keyring", home);
    unlink(path);
    snprintf(path, sizeof path, "%s/keyring/lock", home);
    unlink(path);
    snprintf(path, sizeof path, "%s/keyring", home);
    rmdir(path);
    rmdir(home);
}

int main(int argc, char **argv)
{
    static const char pass[] = "benchmark passphrase, not a secret";
    char home[] = "/tmp/mv_keyring_bench_XXXXXX";
    MvKdfParams kdf;
    MvUnlock how = {MV_UNLOCK_PASSPHRASE, (const uint8_t *)pass, sizeof pass - 1, NULL, NULL};
    MvKeyring *kr = NULL;
    unsigned long n = 20000;
    double t0, t_create, t_open, per_pair;
    const char *module = getenv("MV_PKCS11_MODULE"), *token = getenv("MV_PKCS11_TOKEN");
    const char *pin_file = getenv("MV_PKCS11_PIN_FILE");
    MvError err;
    int rc = 1;

    mv_kdf_params_default(&kdf);
    if (argc >= 3) {
        kdf.t_cost = (uint32_t)arg(argv[1], "T_COST");
        kdf.m_cost_kib = (uint32_t)arg(argv[2], "M_COST_KIB");
    }
    if (argc >= 4)
        n = arg(argv[3], "N_WRAPS");
    if (argc == 2 || argc > 4 || n == 0) {
        fprintf(stderr, "usage: keyring_bench [T_COST M_COST_KIB [N_WRAPS]]\n");
        return 2;
    }
    if (mkdtemp(home) == NULL) {
        perror("keyring_bench: mkdtemp");
        return 1;
    }
    t0 = now();
    if (mv_keyring_create(home, &how, &kdf, &kr, &err) != MV_OK) {
        fprintf(stderr, "keyring_bench: %s\n", err.message);
        goto out;
    }
    t_create = now() - t0;
    mv_keyring_close(kr);
    t0 = now();
    if (mv_keyring_open(home, &how, &kr, &err) != MV_OK) {
        fprintf(stderr, "keyring_bench: %s\n", err.message);
        goto out;
    }
    t_open = now() - t0;
    per_pair = time_wraps(kr, n);
    if (per_pair < 0)
        goto out;
    printf("argon2id t=%u m=%u KiB p=%u: create %.3f s, unlock %.3f s\n", kdf.t_cost, kdf.m_cost_kib,
           kdf.parallelism, t_create, t_open);
    printf("software KEK: %.2f us per wrap+unwrap of a 32-byte key (%lu pairs)\n", per_pair, n);
    mv_keyring_close(kr);
    kr = NULL;
    remove_home(home);
    if (module != NULL && token != NULL && pin_file != NULL) {
        uint8_t *pin = NULL;
        size_t pin_len = 0;
        MvUnlock p11 = {MV_UNLOCK_PKCS11, NULL, 0, module, token};
        snprintf(home, sizeof home, "/tmp/mv_keyring_bench_XXXXXX");
        if (mkdtemp(home) == NULL || mv_secret_read(pin_file, NULL, NULL, &pin, &pin_len, &err) != MV_OK) {
            fprintf(stderr, "keyring_bench: cannot read the PIN file\n");
            goto out;
        }
        p11.secret = pin;
        p11.secret_len = pin_len;
        if (mv_keyring_create(home, &p11, NULL, &kr, &err) != MV_OK) {
            fprintf(stderr, "keyring_bench: %s\n", err.message);
            mv_secret_free(pin, pin_len);
            goto out;
        }
        mv_secret_free(pin, pin_len);
        per_pair = time_wraps(kr, n / 10 + 1);
        if (per_pair < 0)
            goto out;
        printf("PKCS#11 KEK (%s): %.2f us per wrap+unwrap (%lu pairs)\n", token, per_pair, n / 10 + 1);
        printf("note: the token key of this run stays in the token; delete it with pkcs11-tool\n");
    }
    rc = 0;
out:
    mv_keyring_close(kr);
    remove_home(home);
    return rc;
}
