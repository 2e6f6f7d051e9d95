/* Driver of bench/audit.sh (built by the script with cc against build/libmedveil.a): durable
 * append throughput of the audit log for one appender, batches and concurrent threads (group
 * commit), and, on a log grown to a given size, verification time and proof size and time.
 *
 *   audit_bench append HOME N BATCH THREADS   durable appends; prints one JSON line
 *   audit_bench grow HOME TARGET              appends (batches of 1000, a checkpoint each,
 *                                             fdatasync only at the end) until TARGET events
 *   audit_bench measure HOME                  verify time, proof sizes and times; one JSON line
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "medveil/audit.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(MvAuditEvent *ev, char (*obj)[40], const char **ptrs, size_t n, uint64_t base)
{
    static const char *const actions[] = {"vault.get", "vault.put", "deid", "vault.ls"};
    for (size_t i = 0; i < n; i++) {
        snprintf(obj[i], 40, "2.25.%llu", (unsigned long long)(123456789000ull + base + i));
        ptrs[i] = obj[i];
        ev[i] = (MvAuditEvent){.action = actions[(base + i) % 4], .actor = "bench-user", .objects = &ptrs[i],
                               .n_objects = 1, .outcome = "success", .purpose = "research"};
    }
}

typedef struct Worker {
    MvAuditLog *log;
    long n, batch;
    int failed;
} Worker;

static void *work(void *p)
{
    Worker *w = p;
    MvAuditEvent ev[1000];
    static __thread char obj[1000][40];
    const char *ptrs[1000];
    MvError err;

    for (long done = 0; done < w->n; done += w->batch) {
        long k = w->n - done < w->batch ? w->n - done : w->batch;
        fill(ev, obj, ptrs, (size_t)k, (uint64_t)done);
        if (mv_audit_append(w->log, ev, (size_t)k, NULL, &err) != MV_OK) {
            fprintf(stderr, "append: %s\n", err.message);
            w->failed = 1;
            break;
        }
    }
    return NULL;
}

static int cmd_append(const char *home, long n, long batch, int threads)
{
    MvAuditLog *log;
    MvError err;
    pthread_t th[256];
    Worker w[256];
    double t0, t1;
    uint64_t before_size;
    int failed = 0;

    if (threads < 1 || threads > 256 || batch < 1 || batch > 1000)
        return 2;
    if (mv_audit_open(home, MV_AUDIT_CREATE, 0, &log, &err) != MV_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    before_size = mv_audit_size(log);
    t0 = now();
    for (int i = 0; i < threads; i++) {
        w[i] = (Worker){log, n / threads, batch, 0};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        failed |= w[i].failed;
    }
    t1 = now();
    {
        uint64_t appended = mv_audit_size(log) - before_size, commits = mv_audit_commit_count(log);
        printf("{\"events\":%llu,\"batch\":%ld,\"threads\":%d,\"seconds\":%.3f,\"events_per_s\":%.0f,"
               "\"commits\":%llu,\"commits_per_event\":%.4f}\n",
               (unsigned long long)appended, batch, threads, t1 - t0, (double)appended / (t1 - t0),
               (unsigned long long)commits, appended ? (double)commits / (double)appended : 0.0);
    }
    mv_audit_close(log);
    return failed;
}

static int cmd_grow(const char *home, uint64_t target)
{
    MvAuditLog *log;
    MvError err;
    MvAuditEvent ev[1000];
    static char obj[1000][40];
    const char *ptrs[1000];

    if (mv_audit_open(home, MV_AUDIT_CREATE | MV_AUDIT_NOSYNC, 1, &log, &err) != MV_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    while (mv_audit_size(log) < target) {
        uint64_t k = target - mv_audit_size(log) < 1000 ? target - mv_audit_size(log) : 1000;
        fill(ev, obj, ptrs, (size_t)k, mv_audit_size(log));
        if (mv_audit_append(log, ev, (size_t)k, NULL, &err) != MV_OK) {
            fprintf(stderr, "append: %s\n", err.message);
            mv_audit_close(log);
            return 1;
        }
    }
    mv_audit_close(log);
    /* One durable commit at the end: reopen without NOSYNC and sign (syncs the checkpoint). */
    if (mv_audit_open(home, 0, 0, &log, &err) == MV_OK) {
        char *note = NULL;
        mv_audit_checkpoint_sign(log, &note, &err);
        free(note);
        mv_audit_close(log);
    }
    return 0;
}

static int cmd_measure(const char *home)
{
    MvAuditLog *log;
    MvError err;
    MvAuditVerifyReport rep;
    uint64_t n;
    double t0, t_verify, t_incl = 0, t_cons = 0;
    size_t max_incl = 0, max_cons = 0;
    int rounds = 200;
    unsigned seed = 12345;

    if (mv_audit_open(home, MV_AUDIT_READONLY, 0, &log, &err) != MV_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    n = mv_audit_size(log);
    t0 = now();
    if (mv_audit_verify(log, NULL, NULL, 0, &rep, &err) != MV_OK) {
        fprintf(stderr, "verify failed: %s %s\n", rep.reason, err.message);
        mv_audit_close(log);
        return 1;
    }
    t_verify = now() - t0;
    for (int r = 0; r < rounds; r++) {
        uint8_t *proof = NULL, root[MV_AUDIT_HASH_BYTES], leaf[MV_AUDIT_HASH_BYTES];
        size_t k = 0;
        uint64_t idx = (uint64_t)rand_r(&seed) % n, old = 1 + (uint64_t)rand_r(&seed) % n;
        t0 = now();
        if (mv_audit_prove_inclusion(log, idx, n, &proof, &k, &err) != MV_OK)
            return 1;
        t_incl += now() - t0;
        if (k > max_incl)
            max_incl = k;
        mv_audit_root(log, n, root, &err);
        mv_audit_leaf_hash(log, idx, leaf, &err);
        if (mv_merkle_verify_inclusion(idx, n, leaf, sizeof leaf, proof, k * MV_AUDIT_HASH_BYTES, root, sizeof root,
                                       &err) != MV_OK) {
            fprintf(stderr, "an inclusion proof does not verify: %s\n", err.message);
            return 1;
        }
        free(proof);
        t0 = now();
        if (mv_audit_prove_consistency(log, old, n, &proof, &k, &err) != MV_OK)
            return 1;
        t_cons += now() - t0;
        if (k > max_cons)
            max_cons = k;
        free(proof);
    }
    printf("{\"events\":%llu,\"checkpoints\":%llu,\"verify_s\":%.3f,\"verify_events_per_s\":%.0f,"
           "\"inclusion_hashes_max\":%zu,\"inclusion_bytes_max\":%zu,\"inclusion_ms\":%.3f,"
           "\"consistency_hashes_max\":%zu,\"consistency_ms\":%.3f}\n",
           (unsigned long long)n, (unsigned long long)rep.n_checkpoints, t_verify, (double)n / t_verify, max_incl,
           max_incl * MV_AUDIT_HASH_BYTES, 1e3 * t_incl / rounds, max_cons, 1e3 * t_cons / rounds);
    mv_audit_close(log);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "append") == 0)
        return cmd_append(argv[2], strtol(argv[3], NULL, 10), strtol(argv[4], NULL, 10), (int)strtol(argv[5], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "grow") == 0)
        return cmd_grow(argv[2], strtoull(argv[3], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "measure") == 0)
        return cmd_measure(argv[2]);
    fprintf(stderr, "usage: audit_bench append HOME N BATCH THREADS | grow HOME TARGET | measure HOME\n");
    return 2;
}
