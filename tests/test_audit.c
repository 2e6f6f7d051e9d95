/* Unit tests of the audit module: RFC 6962 hashing against the RFC's reference tree, proofs
 * generated and verified for every index and size pair of small trees, every vector of
 * ../shared/testvectors/rfc6962 (accepting exactly the wantErr:false cases), checkpoint
 * signatures, durable appends with group commit, and crash recovery. */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "audit/audit_int.h"
#include "medveil/audit.h"

#define H MV_AUDIT_HASH_BYTES

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The eight leaves of the RFC 6962 reference tree (certificate-transparency test data). */
static const char *const ref_leaves[] = {
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
};
static const char *const ref_roots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = strlen(s) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void test_reference_tree(void **state)
{
    uint8_t leaves[8 * H], root[H], data[32];
    char got[2 * H + 1];

    (void)state;
    mv_merkle_root(NULL, 0, root);
    hex(root, H, got);
    assert_string_equal(got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    for (int i = 0; i < 8; i++) {
        size_t n = unhex(ref_leaves[i], data);
        mv_merkle_leaf_hash(data, n, leaves + i * H);
    }
    for (int n = 1; n <= 8; n++) {
        mv_merkle_root(leaves, (uint64_t)n, root);
        hex(root, H, got);
        assert_string_equal(got, ref_roots[n - 1]);
    }
}

/* An in-memory subtree provider for proof generation. */
typedef struct MemTree {
    const uint8_t *leaves;
} MemTree;

static MvStatus mem_subtree(void *ctx, uint64_t lo, uint64_t hi, uint8_t out[H], MvError *err)
{
    MemTree *t = ctx;
    (void)err;
    mv_merkle_root(t->leaves + lo * H, hi - lo, out);
    return MV_OK;
}

static void test_proofs_all_small_trees(void **state)
{
    enum { N = 40 };
    uint8_t leaves[N * H], roots[N + 1][H], proof[128 * H];
    MemTree t = {leaves};
    size_t n_proof;

    (void)state;
    for (int i = 0; i < N; i++) {
        uint8_t b = (uint8_t)i;
        mv_merkle_leaf_hash(&b, 1, leaves + i * H);
    }
    for (int n = 0; n <= N; n++)
        mv_merkle_root(leaves, (uint64_t)n, roots[n]);
    for (uint64_t n = 1; n <= N; n++) {
        for (uint64_t m = 0; m < n; m++) {
            n_proof = 0;
            assert_int_equal(mv__merkle_path(mem_subtree, &t, m, 0, n, proof, &n_proof, NULL), MV_OK);
            assert_int_equal(mv_merkle_verify_inclusion(m, n, leaves + m * H, H, proof, n_proof * H, roots[n], H, NULL),
                             MV_OK);
            /* The same proof must fail for another leaf, and with any bit flipped. */
            if (n > 1)
                assert_int_equal(mv_merkle_verify_inclusion(m, n, leaves + ((m + 1) % n) * H, H, proof, n_proof * H,
                                                            roots[n], H, NULL),
                                 MV_ERR_INTEGRITY);
            if (n_proof > 0) {
                proof[n_proof * H - 1] ^= 1;
                assert_int_equal(
                    mv_merkle_verify_inclusion(m, n, leaves + m * H, H, proof, n_proof * H, roots[n], H, NULL),
                    MV_ERR_INTEGRITY);
            }
        }
        for (uint64_t m = 1; m <= n; m++) {
            assert_int_equal(mv__merkle_proof(mem_subtree, &t, m, n, proof, &n_proof, NULL), MV_OK);
            assert_true(n_proof <= 2 * 6 + 2);
            assert_int_equal(
                mv_merkle_verify_consistency(m, n, proof, n_proof * H, roots[m], H, roots[n], H, NULL), MV_OK);
            if (m < n) {
                assert_int_equal(
                    mv_merkle_verify_consistency(m, n, proof, n_proof * H, roots[m - 1], H, roots[n], H, NULL),
                    MV_ERR_INTEGRITY);
                proof[0] ^= 0x80;
                assert_int_equal(
                    mv_merkle_verify_consistency(m, n, proof, n_proof * H, roots[m], H, roots[n], H, NULL),
                    MV_ERR_INTEGRITY);
            }
        }
    }
}

/* ---- the transparency-dev vectors ---- */

static long b64(const char *s, uint8_t *out, size_t cap)
{
    size_t len = strlen(s);
    uint8_t tmp[4096];
    int n, pad = 0;

    if (len == 0)
        return 0;
    if (len > 4 * (sizeof tmp / 3))
        return -1;
    n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
    if (n < 0)
        return -1;
    if (len >= 1 && s[len - 1] == '=')
        pad++;
    if (len >= 2 && s[len - 2] == '=')
        pad++;
    n -= pad;
    if ((size_t)n > cap)
        return -1;
    memcpy(out, tmp, (size_t)n);
    return n;
}

static size_t n_vectors, n_accepted, n_rejected;

/* An integer field read from the text itself: jansson refuses 2^64-1, which the vectors use. */
static uint64_t int_field(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    assert_non_null(p);
    p = strchr(p, ':');
    assert_non_null(p);
    return strtoull(p + 1, NULL, 10);
}

static int check_vector(const char *path)
{
    FILE *f = fopen(path, "rb");
    char text[65536];
    size_t text_len;
    json_t *v, *proof, *item;
    const char *items[256];
    uint8_t *proof_bytes = NULL, root1[256], root2[256], leaf[256];
    long r1 = 0, r2 = 0, lf = 0;
    size_t n_items = 0, i;
    int want_err, got_err, ok = 1;

    assert_non_null(f);
    text_len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[text_len] = '\0';
    v = json_loadb(text, text_len, JSON_DECODE_INT_AS_REAL, NULL);
    assert_non_null(v);
    want_err = json_is_true(json_object_get(v, "wantErr"));
    proof = json_object_get(v, "proof");
    json_array_foreach(proof, i, item) if (n_items < 256) items[n_items++] = json_string_value(item);
    /* A malformed proof (an element that is not one hash) is a rejected proof. */
    got_err = mv_merkle_proof_decode(items, n_items, &proof_bytes, NULL) != MV_OK;
    if (!got_err && json_object_get(v, "leafIdx") != NULL) {
        r1 = b64(json_string_value(json_object_get(v, "root")), root1, sizeof root1);
        lf = b64(json_string_value(json_object_get(v, "leafHash")), leaf, sizeof leaf);
        got_err = mv_merkle_verify_inclusion(int_field(text, "\"leafIdx\""), int_field(text, "\"treeSize\""), leaf,
                                             (size_t)lf, proof_bytes, n_items * H, root1, (size_t)r1, NULL) != MV_OK;
    } else if (!got_err) {
        r1 = b64(json_string_value(json_object_get(v, "root1")), root1, sizeof root1);
        r2 = b64(json_string_value(json_object_get(v, "root2")), root2, sizeof root2);
        got_err = mv_merkle_verify_consistency(int_field(text, "\"size1\""), int_field(text, "\"size2\""),
                                               proof_bytes, n_items * H, root1, (size_t)r1, root2, (size_t)r2,
                                               NULL) != MV_OK;
    }
    if (got_err != want_err) {
        print_error("%s: wantErr %d, got %s\n", path, want_err, got_err ? "an error" : "success");
        ok = 0;
    }
    n_vectors++;
    if (got_err)
        n_rejected++;
    else
        n_accepted++;
    free(proof_bytes);
    json_decref(v);
    return ok;
}

static int walk_vectors(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort), ok = 1;

    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(path, &sb) == 0) {
            if (S_ISDIR(sb.st_mode))
                ok &= walk_vectors(path);
            else if (strstr(names[i]->d_name, ".json") != NULL)
                ok &= check_vector(path);
        }
        free(names[i]);
    }
    free(names);
    return ok;
}

static void test_rfc6962_vectors(void **state)
{
    const char *src = getenv("MV_SOURCE_DIR");
    char dir[4096];
    struct stat sb;

    (void)state;
    snprintf(dir, sizeof dir, "%s/../shared/testvectors/rfc6962", src != NULL ? src : "..");
    if (stat(dir, &sb) != 0) {
        fprintf(stderr, "SKIP: %s is absent; the RFC 6962 vectors were not checked\n", dir);
        skip();
    }
    assert_true(walk_vectors(dir));
    fprintf(stderr, "rfc6962 vectors: %zu checked, %zu accepted, %zu rejected\n", n_vectors, n_accepted, n_rejected);
    assert_true(n_vectors >= 190); /* 196 files when this was written */
    assert_true(n_accepted >= 10);
}

/* ---- the log on disk ---- */

static char *make_home(void)
{
    char tmpl[] = "/tmp/mv-audit-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rm_home(char *home)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    assert_int_equal(system(cmd), 0);
    free(home);
}

static void append_n(MvAuditLog *log, int n)
{
    for (int i = 0; i < n; i++) {
        char obj[32];
        const char *objs[1] = {obj};
        MvAuditEvent ev = {.action = "vault.get", .actor = "alice", .objects = objs, .n_objects = 1,
                           .outcome = "success", .purpose = i % 3 ? "research" : NULL};
        snprintf(obj, sizeof obj, "v-%d", i);
        assert_int_equal(mv_audit_append(log, &ev, 1, NULL, NULL), MV_OK);
    }
}

typedef struct Lines {
    uint8_t *leaves;
    uint64_t n;
} Lines;

static int collect(uint64_t seq, const char *line, size_t len, void *ctx)
{
    Lines *l = ctx;
    assert_int_equal(seq, l->n);
    mv_merkle_leaf_hash(line, len, l->leaves + l->n * H);
    l->n++;
    return 0;
}

static void file_path(char *out, size_t cap, const char *home, const char *name)
{
    snprintf(out, cap, "%s/audit/%s", home, name);
}

static void test_log_roots_proofs_checkpoints(void **state)
{
    char *home = make_home(), *note = NULL, *vkey = NULL, *pem = NULL;
    MvAuditLog *log = NULL;
    Lines l = {malloc(1000 * H), 0};
    uint8_t root[H], mem_root[H], *proof = NULL;
    size_t n_proof;
    MvAuditCheckpoint cp;
    MvAuditVerifyReport rep;
    MvError err;

    (void)state;
    assert_int_equal(mv_audit_open(home, MV_AUDIT_READONLY, 0, &log, &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_audit_open(home, MV_AUDIT_CREATE | MV_AUDIT_NOSYNC, 0, &log, &err), MV_OK);
    append_n(log, 700);
    assert_int_equal(mv_audit_size(log), 700);
    assert_int_equal(mv_audit_foreach(log, 0, collect, &l, &err), MV_OK);
    assert_int_equal(l.n, 700);
    /* Roots from the caches equal the in-memory MTH at every size around the chunk edges. */
    for (uint64_t n = 1; n <= 700; n += (n > 250 && n < 260) || (n > 508 && n < 516) ? 1 : 37) {
        assert_int_equal(mv_audit_root(log, n, root, &err), MV_OK);
        mv_merkle_root(l.leaves, n, mem_root);
        assert_memory_equal(root, mem_root, H);
        for (uint64_t m = 0; m < n; m += 1 + n / 7) {
            assert_int_equal(mv_audit_prove_inclusion(log, m, n, &proof, &n_proof, &err), MV_OK);
            assert_int_equal(
                mv_merkle_verify_inclusion(m, n, l.leaves + m * H, H, proof, n_proof * H, mem_root, H, &err), MV_OK);
            free(proof);
            if (m >= 1) {
                uint8_t old_root[H];
                mv_merkle_root(l.leaves, m, old_root);
                assert_int_equal(mv_audit_prove_consistency(log, m, n, &proof, &n_proof, &err), MV_OK);
                assert_int_equal(
                    mv_merkle_verify_consistency(m, n, proof, n_proof * H, old_root, H, mem_root, H, &err), MV_OK);
                free(proof);
            }
        }
    }
    /* A signed checkpoint verifies with the vkey line and with the PEM key, and not once changed. */
    assert_int_equal(mv_audit_checkpoint_sign(log, &note, &err), MV_OK);
    assert_int_equal(mv_audit_public_key(log, 0, &vkey, &err), MV_OK);
    assert_int_equal(mv_audit_public_key(log, 1, &pem, &err), MV_OK);
    assert_int_equal(mv_audit_checkpoint_verify(note, strlen(note), vkey, &cp, &err), MV_OK);
    assert_int_equal(cp.size, 700);
    assert_int_equal(mv_audit_checkpoint_verify(note, strlen(note), pem, &cp, &err), MV_OK);
    mv_merkle_root(l.leaves, 700, mem_root);
    assert_memory_equal(cp.root, mem_root, H);
    {
        char *bad = strdup(note);
        char *size_line = strchr(bad, '\n') + 1;
        size_line[0] = size_line[0] == '7' ? '8' : '7';
        assert_int_equal(mv_audit_checkpoint_verify(bad, strlen(bad), vkey, &cp, &err), MV_ERR_INTEGRITY);
        free(bad);
    }
    assert_int_equal(mv_audit_verify(log, NULL, note, strlen(note), &rep, &err), MV_OK);
    assert_int_equal(rep.size, 700);
    assert_int_equal(rep.n_checkpoints, 1);
    assert_int_equal(rep.n_unsigned, 0);
    mv_audit_close(log);
    free(note);
    free(vkey);
    free(pem);
    free(l.leaves);
    rm_home(home);
}

static void test_recovery(void **state)
{
    char *home = make_home(), path[4200];
    MvAuditLog *log = NULL;
    MvAuditVerifyReport rep;
    MvError err;
    struct stat sb;
    off_t committed, committed_ckpt;
    int fd;

    (void)state;
    assert_int_equal(mv_audit_open(home, MV_AUDIT_CREATE, 1, &log, &err), MV_OK);
    append_n(log, 300);
    mv_audit_close(log);
    file_path(path, sizeof path, home, "events.jsonl");
    assert_int_equal(stat(path, &sb), 0);
    committed = sb.st_size;
    /* A torn last line (a crash in the middle of a write) is cut at the next open. */
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(write(fd, "{\"action\":\"vault.g", 18) == 18);
    close(fd);
    assert_int_equal(mv_audit_open(home, MV_AUDIT_READONLY, 0, &log, &err), MV_OK);
    assert_int_equal(mv_audit_verify(log, NULL, NULL, 0, &rep, &err), MV_ERR_INTEGRITY);
    assert_int_equal(rep.bad_position, 300);
    mv_audit_close(log);
    assert_int_equal(mv_audit_open(home, 0, 1, &log, &err), MV_OK);
    assert_int_equal(mv_audit_size(log), 300);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, committed);
    /* A torn checkpoint at the end of checkpoints.log is cut, like a torn event. */
    mv_audit_close(log);
    file_path(path, sizeof path, home, "checkpoints.log");
    assert_int_equal(stat(path, &sb), 0);
    committed_ckpt = sb.st_size;
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(write(fd, "host/medveil-audit/00000000\n301\nAAAA", 36) == 36);
    close(fd);
    assert_int_equal(mv_audit_open(home, 0, 1, &log, &err), MV_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, committed_ckpt);
    assert_int_equal(mv_audit_verify(log, NULL, NULL, 0, &rep, &err), MV_OK);
    /* Caches lost or short are derived again from events.jsonl. */
    mv_audit_close(log);
    file_path(path, sizeof path, home, "leaves.bin");
    assert_int_equal(truncate(path, 290 * H), 0);
    file_path(path, sizeof path, home, "nodes.bin");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mv_audit_open(home, 0, 1, &log, &err), MV_OK);
    assert_int_equal(mv_audit_size(log), 300);
    assert_int_equal(mv_audit_verify(log, NULL, NULL, 0, &rep, &err), MV_OK);
    append_n(log, 1);
    assert_int_equal(mv_audit_verify(log, NULL, NULL, 0, &rep, &err), MV_OK);
    assert_int_equal(rep.size, 301);
    assert_int_equal(rep.n_checkpoints, 301);
    mv_audit_close(log);
    /* offsets.bin is not synced per commit: short, or with a wrong last entry, it is rebuilt
     * and no acknowledged event is cut. */
    file_path(path, sizeof path, home, "offsets.bin");
    assert_int_equal(truncate(path, 100 * 8), 0);
    assert_int_equal(mv_audit_open(home, 0, 1, &log, &err), MV_OK);
    assert_int_equal(mv_audit_size(log), 301);
    mv_audit_close(log);
    fd = open(path, O_WRONLY);
    assert_true(pwrite(fd, "\x05\0\0\0\0\0\0\0", 8, 300 * 8) == 8);
    close(fd);
    assert_int_equal(mv_audit_open(home, 0, 1, &log, &err), MV_OK);
    assert_int_equal(mv_audit_size(log), 301);
    assert_int_equal(mv_audit_verify(log, NULL, NULL, 0, &rep, &err), MV_OK);
    mv_audit_close(log);
    /* Unacknowledged events lost while their leaves reached the disk: the caches are cut back
     * to the events (a tail deleted on purpose is caught by the checkpoints instead). */
    file_path(path, sizeof path, home, "events.jsonl");
    assert_int_equal(truncate(path, committed), 0);
    assert_int_equal(mv_audit_open(home, MV_AUDIT_READONLY, 0, &log, &err), MV_OK);
    assert_int_equal(mv_audit_verify(log, NULL, NULL, 0, &rep, &err), MV_ERR_INTEGRITY);
    assert_int_equal(rep.bad_position, 300);
    mv_audit_close(log);
    assert_int_equal(mv_audit_open(home, 0, 1, &log, &err), MV_OK);
    assert_int_equal(mv_audit_size(log), 300);
    /* ... and the signed checkpoint of size 301 still tells that event 300 is gone. */
    assert_int_equal(mv_audit_verify(log, NULL, NULL, 0, &rep, &err), MV_ERR_INTEGRITY);
    assert_int_equal(rep.bad_position, 300);
    mv_audit_close(log);
    /* A changed subtree hash in nodes.bin is named with the range it covers. */
    file_path(path, sizeof path, home, "nodes.bin");
    fd = open(path, O_RDWR);
    assert_true(pwrite(fd, "X", 1, 5) == 1);
    close(fd);
    assert_int_equal(mv_audit_open(home, MV_AUDIT_READONLY, 0, &log, &err), MV_OK);
    assert_int_equal(mv_audit_verify(log, NULL, NULL, 0, &rep, &err), MV_ERR_INTEGRITY);
    assert_int_equal(rep.bad_position, 0);
    assert_int_equal(rep.bad_position_last, 255);
    mv_audit_close(log);
    rm_home(home);
}

typedef struct ThreadArg {
    MvAuditLog *log;
    int n;
} ThreadArg;

static void *appender(void *p)
{
    ThreadArg *a = p;
    for (int i = 0; i < a->n; i++) {
        MvAuditEvent ev = {.action = "deid", .actor = "worker", .outcome = "success", .detail = "thread"};
        if (mv_audit_append(a->log, &ev, 1, NULL, NULL) != MV_OK)
            return p;
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    enum { THREADS = 8, EACH = 25 };
    char *home = make_home();
    MvAuditLog *log = NULL;
    pthread_t th[THREADS];
    ThreadArg arg;
    MvAuditVerifyReport rep;
    MvError err;
    MvAuditEvent batch[100];

    (void)state;
    assert_int_equal(mv_audit_open(home, MV_AUDIT_CREATE, 0, &log, &err), MV_OK);
    arg.log = log;
    arg.n = EACH;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, appender, &arg), 0);
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    assert_int_equal(mv_audit_size(log), THREADS * EACH);
    fprintf(stderr, "group commit: %d appends in %llu fsync rounds\n", THREADS * EACH,
            (unsigned long long)mv_audit_commit_count(log));
    assert_true(mv_audit_commit_count(log) < THREADS * EACH);
    /* A batch is one commit. */
    for (int i = 0; i < 100; i++)
        batch[i] = (MvAuditEvent){.action = "vault.ls"};
    {
        uint64_t before = mv_audit_commit_count(log), first;
        assert_int_equal(mv_audit_append(log, batch, 100, &first, &err), MV_OK);
        assert_int_equal(first, THREADS * EACH);
        assert_int_equal(mv_audit_commit_count(log), before + 1);
    }
    /* Bad events are refused before anything is written. */
    batch[5].action = "Vault PUT";
    assert_int_equal(mv_audit_append(log, batch, 100, NULL, &err), MV_ERR_ARG);
    batch[5].action = "vault.ls";
    batch[7].outcome = "maybe";
    assert_int_equal(mv_audit_append(log, batch, 100, NULL, &err), MV_ERR_ARG);
    batch[7].outcome = NULL;
    batch[9].purpose = "caf\xe9"; /* Latin-1, not UTF-8 */
    assert_int_equal(mv_audit_append(log, batch, 100, NULL, &err), MV_ERR_ARG);
    batch[9].purpose = NULL;
    {
        char *note = NULL;
        assert_int_equal(mv_audit_checkpoint_sign(log, &note, &err), MV_OK);
        free(note);
    }
    assert_int_equal(mv_audit_verify(log, NULL, NULL, 0, &rep, &err), MV_OK);
    assert_int_equal(rep.size, THREADS * EACH + 100);
    mv_audit_close(log);
    rm_home(home);
}

/* The oracle of the contract, with jansson: a JSON object with exactly the contract's keys,
 * seq equal to index, that jansson re-encodes to the same bytes. */
static int oracle_check(const char *line, size_t len, uint64_t index, char *why, size_t why_len)
{
    json_error_t jerr;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr), *v;
    const char *key;
    char *again = NULL;
    int ok = 0;

    if (o == NULL || !json_is_object(o)) {
        snprintf(why, why_len, "not a JSON object (column %d)", o == NULL ? jerr.column : 0);
        goto out;
    }
    json_object_foreach(o, key, v) {
        int string = json_is_string(v);
        if (strcmp(key, "objects") == 0) {
            size_t i;
            json_t *item;
            if (!json_is_array(v)) {
                snprintf(why, why_len, "\"objects\" is not an array");
                goto out;
            }
            json_array_foreach(v, i, item) if (!json_is_string(item))
            {
                snprintf(why, why_len, "\"objects\" item %zu is not a string", i);
                goto out;
            }
        } else if (strcmp(key, "seq") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) != index) {
                snprintf(why, why_len, "\"seq\" is not %llu: an event was inserted, removed or moved",
                         (unsigned long long)index);
                goto out;
            }
        } else if (strcmp(key, "outcome") == 0) {
            const char *s = json_string_value(v);
            if (s == NULL || (strcmp(s, "success") != 0 && strcmp(s, "failure") != 0 && strcmp(s, "denied") != 0)) {
                snprintf(why, why_len, "\"outcome\" is not success, failure or denied");
                goto out;
            }
        } else if (strcmp(key, "action") == 0 || strcmp(key, "actor") == 0 || strcmp(key, "time") == 0 ||
                   strcmp(key, "host") == 0 || strcmp(key, "purpose") == 0 || strcmp(key, "detail") == 0) {
            if (!string) {
                snprintf(why, why_len, "\"%s\" is not a string", key);
                goto out;
            }
        } else {
            snprintf(why, why_len, "unexpected key (not in the event contract)");
            goto out;
        }
    }
    {
        static const char *const required[] = {"action", "actor", "objects", "outcome", "time", "seq", "host"};
        for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
            if (json_object_get(o, required[i]) == NULL) {
                snprintf(why, why_len, "the key \"%s\" is missing", required[i]);
                goto out;
            }
    }
    again = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (again == NULL || strlen(again) != len || memcmp(again, line, len) != 0) {
        snprintf(why, why_len, "not in canonical form (compact, sorted keys, ASCII): it was edited");
        goto out;
    }
    ok = 1;
out:
    free(again);
    json_decref(o);
    return ok;
}


static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

/* A random string from a palette of what makes JSON escaping hard, sometimes invalid UTF-8. */
static void random_text(char *out, size_t cap)
{
    static const char *const pieces[] = {
        "a", "Z", "0", " ", "~", "\"", "\\", "/", "\x01", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1f", "\x7f",
        "\xc3\xa9", "\xe2\x80\x94", "\xef\xbf\xbf", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xc2\x80",
        "\xff", "\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x80",
    };
    size_t n = rnd(12), len = 0;
    int allow_bad = rnd(8) == 0;

    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t k = rnd(allow_bad ? 29 : 23);
        size_t pl = strlen(pieces[k]);
        if (len + pl + 1 > cap)
            break;
        memcpy(out + len, pieces[k], pl + 1);
        len += pl;
    }
}

static void test_event_encoding_matches_jansson(void **state)
{
    char action[64], actor[64], detail[64], purpose[64], o1[64], o2[64];
    const char *objs[2] = {o1, o2};
    MvBuf b = {NULL, 0, 0};
    int n_valid = 0, n_invalid = 0;

    (void)state;
    for (int round = 0; round < 20000; round++) {
        MvAuditEvent ev = {.action = "vault.get", .objects = objs, .n_objects = rnd(3)};
        uint64_t seq = rnd(3) == 0 ? rnd(10) : ((uint64_t)rnd(1u << 31) << 20);
        json_t *o = json_object(), *arr = json_array();
        int ok = 1;
        char *dumped;
        MvStatus st;
        random_text(actor, sizeof actor);
        random_text(o1, sizeof o1);
        random_text(o2, sizeof o2);
        if (rnd(2)) {
            random_text(detail, sizeof detail);
            ev.detail = detail;
        }
        if (rnd(2)) {
            random_text(purpose, sizeof purpose);
            ev.purpose = purpose;
        }
        snprintf(action, sizeof action, "%s", rnd(2) ? "deid" : "audit.alert");
        ev.action = action;
        ev.outcome = rnd(3) == 0 ? "denied" : "success";
        b.len = 0;
        st = mv__event_encode(&b, &ev, actor, seq, "2026-11-27T07:30:00.123456Z", "host-1", NULL);
#define SETS(k, v)                                                       \
    do {                                                                 \
        json_t *js = json_string(v);                                     \
        if (js == NULL)                                                  \
            ok = 0;                                                      \
        else                                                             \
            json_object_set_new(o, k, js);                               \
    } while (0)
        SETS("action", ev.action);
        SETS("actor", actor);
        SETS("outcome", ev.outcome);
        SETS("time", "2026-11-27T07:30:00.123456Z");
        SETS("host", "host-1");
        if (ev.detail)
            SETS("detail", ev.detail);
        if (ev.purpose)
            SETS("purpose", ev.purpose);
#undef SETS
        for (size_t i = 0; i < ev.n_objects; i++) {
            json_t *js = json_string(objs[i]);
            if (js == NULL)
                ok = 0;
            else
                json_array_append_new(arr, js);
        }
        json_object_set_new(o, "objects", arr);
        json_object_set_new(o, "seq", json_integer((json_int_t)seq));
        if (!ok) {
            /* jansson refuses the text as UTF-8: so must the encoder. */
            assert_int_equal(st, MV_ERR_ARG);
            assert_int_equal(b.len, 0);
            n_invalid++;
        } else {
            char why[160];
            assert_int_equal(st, MV_OK);
            dumped = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
            if (strlen(dumped) != b.len || memcmp(dumped, b.data, b.len) != 0)
                fail_msg("encoder and jansson differ:\n  %.*s\n  %s", (int)b.len, b.data, dumped);
            assert_true(mv__event_check(b.data, b.len, seq, why, sizeof why));
            assert_false(mv__event_check(b.data, b.len, seq + 1, why, sizeof why));
            free(dumped);
            n_valid++;
        }
        json_decref(o);
    }
    fprintf(stderr, "encoder: %d events equal to jansson's, %d invalid texts refused by both\n", n_valid, n_invalid);
    assert_true(n_valid > 10000 && n_invalid > 100);
    free(b.data);
}

/* The checker against the jansson oracle, on valid lines mutated byte by byte. */
static void test_event_check_matches_jansson(void **state)
{
    char actor[64], o1[64], why[160], why2[160];
    const char *objs[1] = {o1};
    MvBuf b = {NULL, 0, 0};
    char line[4096];
    int n_accept = 0, n_reject = 0;

    (void)state;
    for (int round = 0; round < 4000; round++) {
        MvAuditEvent ev = {.action = "vault.put", .objects = objs, .n_objects = 1, .outcome = "failure",
                           .purpose = rnd(2) ? "qa" : NULL, .detail = rnd(2) ? "x" : NULL};
        size_t len;
        do {
            random_text(actor, sizeof actor);
            random_text(o1, sizeof o1);
            b.len = 0;
        } while (mv__event_encode(&b, &ev, actor, 42, "2026-11-27T07:30:00.000001Z", "h", NULL) != MV_OK);
        for (int m = 0; m < 10; m++) {
            static const char inserts[] = "\"\\,:{}[]u0Aa \x7f\x01\xc3";
            memcpy(line, b.data, b.len);
            len = b.len;
            switch (rnd(4)) {
            case 0: line[rnd((uint32_t)len)] = (char)rnd(256); break;
            case 1: line[rnd((uint32_t)len)] = inserts[rnd(sizeof inserts - 1)]; break;
            case 2: {
                size_t at = rnd((uint32_t)len);
                memmove(line + at, line + at + 1, len - at - 1);
                len--;
                break;
            }
            default: {
                size_t at = rnd((uint32_t)len + 1);
                memmove(line + at + 1, line + at, len - at);
                line[at] = inserts[rnd(sizeof inserts - 1)];
                len++;
                break;
            }
            }
            int mine = mv__event_check(line, len, 42, why, sizeof why);
            int theirs = oracle_check(line, len, 42, why2, sizeof why2);
            if (mine != theirs)
                fail_msg("checker %d, oracle %d (%s / %s) on: %.*s", mine, theirs, why, why2, (int)len, line);
            if (mine)
                n_accept++;
            else
                n_reject++;
        }
    }
    fprintf(stderr, "checker: %d mutated lines accepted, %d rejected, as jansson decides\n", n_accept, n_reject);
    assert_true(n_accept > 100 && n_reject > 1000);
    free(b.data);
}

/* Helper mode for tests/t_audit.sh (no public command appends raw events):
 *   test_audit append HOME N [BATCH]
 * appends N events in batches of BATCH (default 1), as the CLI does: a signed checkpoint after
 * every batch. Actions, actors and objects vary so that `audit log` filters have work. */
static int append_mode(int argc, char **argv)
{
    static const char *const actions[] = {"vault.put", "vault.get", "deid", "vault.ls", "auth.unlock"};
    static const char *const actors[] = {"alice", "bob", "carol"};
    MvAuditLog *log = NULL;
    MvAuditEvent ev[64];
    char objs[64][32];
    const char *obj_ptrs[64];
    MvError err;
    long n = argc > 3 ? strtol(argv[3], NULL, 10) : 0, batch = argc > 4 ? strtol(argv[4], NULL, 10) : 1;
    long done = 0;

    if (argc < 4 || n < 0 || batch < 1 || batch > 64) {
        fprintf(stderr, "usage: test_audit append HOME N [BATCH<=64]\n");
        return 2;
    }
    if (mv_audit_open(argv[2], MV_AUDIT_CREATE, 1, &log, &err) != MV_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    while (done < n) {
        long k = n - done < batch ? n - done : batch;
        uint64_t base = mv_audit_size(log);
        for (long i = 0; i < k; i++) {
            uint64_t seq = base + (uint64_t)i;
            snprintf(objs[i], sizeof objs[i], "2.25.%llu", (unsigned long long)(1000 + seq));
            obj_ptrs[i] = objs[i];
            ev[i] = (MvAuditEvent){.action = actions[seq % 5], .actor = actors[seq % 3], .objects = &obj_ptrs[i],
                                   .n_objects = 1, .outcome = seq % 5 == 4 ? "failure" : "success",
                                   .purpose = seq % 2 ? "treatment" : NULL};
        }
        if (mv_audit_append(log, ev, (size_t)k, NULL, &err) != MV_OK) {
            fprintf(stderr, "append: %s\n", err.message);
            mv_audit_close(log);
            return 1;
        }
        done += k;
        if (getenv("MV_AUDIT_PRINT_ACK") != NULL) {
            /* What has been acknowledged, for the crash test: every line printed is durable. */
            printf("acked %llu\n", (unsigned long long)(mv_audit_size(log)));
            fflush(stdout);
        }
    }
    mv_audit_close(log);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "append") == 0)
        return append_mode(argc, argv);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_tree),
        cmocka_unit_test(test_proofs_all_small_trees),
        cmocka_unit_test(test_rfc6962_vectors),
        cmocka_unit_test(test_event_encoding_matches_jansson),
        cmocka_unit_test(test_event_check_matches_jansson),
        cmocka_unit_test(test_log_roots_proofs_checkpoints),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_group_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
