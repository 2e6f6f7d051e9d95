/* Private state of an open audit log (log.c, verify.c): file descriptors of HOME/audit, the
 * committed size, the signing key, and the group-commit queue. */
#ifndef MV_AUDIT_LOG_INT_H
#define MV_AUDIT_LOG_INT_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit/audit_int.h"
#include "core/core_int.h"

/* The canonical encoding of an event line (the on-disk contract in audit.h). */
#define MV__AUDIT_JSON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

/* One caller of mv_audit_append waiting for its batch to be committed (on its stack). */
typedef struct MvAuditWaiter {
    const MvAuditEvent *events;
    size_t n;
    int done;
    MvStatus status;
    MvError err;
    uint64_t first_seq;
    struct MvAuditWaiter *next;
} MvAuditWaiter;

struct MvAuditLog {
    char *dir;                  /* HOME/audit */
    unsigned flags;
    uint64_t checkpoint_every;
    int fd_events, fd_leaves, fd_nodes, fd_offsets, fd_ckpt, fd_lock;
    uint64_t size;              /* committed events */
    uint64_t events_end;        /* bytes of events.jsonl they take */
    uint64_t n_nodes;           /* chunk hashes in nodes.bin */
    uint64_t last_ckpt_size;    /* size of the newest valid checkpoint, UINT64_MAX if none */
    int ckpt_torn;              /* checkpoints.log ends with an incomplete note */
    uint64_t n_syncs;           /* durable commits made through this handle */
    char host[256];
    char origin[256];           /* key name = checkpoint origin */
    uint8_t key_id[4];
    char vkey[512];             /* verifier key line */
    EVP_PKEY *sign_key;         /* loaded on first signature */
    pthread_mutex_t state_mu;   /* the fields above, during a commit or a read */
    pthread_mutex_t queue_mu;   /* the queue and leading */
    pthread_cond_t queue_cv;
    MvAuditWaiter *queue_head, *queue_tail;
    int leading;
};

MvStatus mv__io_error(MvError *err, const char *dir, const char *file, const char *what);
int mv__pread_all(int fd, void *buf, size_t len, uint64_t off);
MvStatus mv__log_leaf_range(MvAuditLog *log, uint64_t lo, uint64_t n, uint8_t *out, MvError *err);
MvStatus mv__log_subtree(void *ctx, uint64_t lo, uint64_t hi, uint8_t out[MV_AUDIT_HASH_BYTES], MvError *err);
MvStatus mv__log_last_checkpoint(MvAuditLog *log, uint64_t *start_out, char **note_out, MvError *err);
void mv__audit_time_now(char out[48]);

#endif
