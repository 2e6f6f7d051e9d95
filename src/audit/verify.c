/* Reading the audit log back: the event iterator and the full verification, which trusts
 * nothing but events.jsonl and the public key. It recomputes every leaf and the tree with a
 * stack of perfect subtrees (one pass, O(log n) memory), checks each line's canonical form,
 * compares the caches, and checks every stored checkpoint (and an outside anchor) against the
 * roots it recomputed, reporting the first position where the log stops matching. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/log_int.h"

#define H MV_AUDIT_HASH_BYTES
#define READ_BLOCK (4u << 20)
#define MAX_LINE (1u << 20)

/* Sequential line reader over events.jsonl from an offset up to a limit. */
typedef struct LineReader {
    int fd;
    uint64_t file_off, limit;
    char *buf;
    size_t start, end;
    int eof;
} LineReader;

static int reader_next(LineReader *r, const char **line, size_t *len, int *torn)
{
    *torn = 0;
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl != NULL) {
            *line = r->buf + r->start;
            *len = (size_t)(nl - *line);
            r->start += *len + 1;
            return 1;
        }
        if (r->eof) {
            if (r->end > r->start) {
                *line = r->buf + r->start;
                *len = r->end - r->start;
                r->start = r->end;
                *torn = 1;
                return 1;
            }
            return 0;
        }
        if (r->end - r->start >= MAX_LINE) {
            *line = r->buf + r->start;
            *len = r->end - r->start;
            *torn = 2;
            return 1;
        }
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
        {
            size_t want = READ_BLOCK + MAX_LINE - r->end;
            ssize_t got;
            if (r->limit - r->file_off < want)
                want = (size_t)(r->limit - r->file_off);
            got = want == 0 ? 0 : pread(r->fd, r->buf + r->end, want, (off_t)r->file_off);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                return -1;
            if (got == 0)
                r->eof = 1;
            r->end += (size_t)got;
            r->file_off += (uint64_t)got;
        }
    }
}

MvStatus mv_audit_foreach(MvAuditLog *log, uint64_t first, MvAuditEventFn fn, void *ctx, MvError *err)
{
    LineReader r = {0};
    uint64_t seq = first, size, end;
    MvStatus st = MV_OK;

    pthread_mutex_lock(&log->state_mu);
    size = log->size;
    end = log->events_end;
    r.file_off = 0;
    if (first > 0 && first <= size) {
        uint8_t raw[8];
        if (mv__pread_all(log->fd_offsets, raw, 8, (first - 1) * 8) != 0) {
            pthread_mutex_unlock(&log->state_mu);
            return mv__io_error(err, log->dir, "offsets.bin", "read");
        }
        for (int i = 7; i >= 0; i--)
            r.file_off = r.file_off << 8 | raw[i];
    }
    pthread_mutex_unlock(&log->state_mu);
    if (first >= size)
        return MV_OK;
    r.fd = log->fd_events;
    r.limit = end;
    r.buf = malloc(READ_BLOCK + MAX_LINE);
    if (r.buf == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    while (seq < size) {
        const char *line;
        size_t len;
        int torn, got = reader_next(&r, &line, &len, &torn);
        if (got < 0) {
            st = mv__io_error(err, log->dir, "events.jsonl", "read");
            break;
        }
        if (got == 0 || torn)
            break;
        if (fn(seq, line, len, ctx) != 0)
            break;
        seq++;
    }
    free(r.buf);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * Verification.
 * ------------------------------------------------------------------------------------------- */

typedef struct Ckpt {
    uint64_t size;
    uint8_t root[H];
    int sig_ok;        /* the signature verified with the key */
    int anchor;        /* given from outside, not read from checkpoints.log */
    size_t number;     /* 1-based position in checkpoints.log */
    char why[256];     /* why the signature failed */
} Ckpt;

static int cmp_ckpt(const void *a, const void *b)
{
    const Ckpt *x = a, *y = b;

    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    return x->number < y->number ? -1 : x->number > y->number;
}

static MvStatus fail(MvAuditVerifyReport *rep, uint64_t first, uint64_t last, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static MvStatus fail(MvAuditVerifyReport *rep, uint64_t first, uint64_t last, const char *fmt, ...)
{
    va_list ap;

    rep->bad_position = first;
    rep->bad_position_last = last;
    va_start(ap, fmt);
    vsnprintf(rep->reason, sizeof rep->reason, fmt, ap);
    va_end(ap);
    return MV_ERR_INTEGRITY;
}

/* Reads checkpoints.log into ckpts (appended to *list). */
static MvStatus load_checkpoints(MvAuditLog *log, const char *vkey, Ckpt **list, size_t *n, size_t *cap,
                                 MvAuditVerifyReport *rep, MvError *err)
{
    struct stat sb;
    char *buf = NULL;
    size_t len, pos = 0;
    MvStatus st = MV_OK;

    if (log->fd_ckpt < 0 || fstat(log->fd_ckpt, &sb) != 0 || sb.st_size == 0)
        return MV_OK;
    if (sb.st_size > (off_t)(1u << 30))
        return mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "%s/checkpoints.log: larger than 1 GiB",
                            log->dir);
    len = (size_t)sb.st_size;
    buf = malloc(len);
    if (buf == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    if (mv__pread_all(log->fd_ckpt, buf, len, 0) != 0) {
        st = mv__io_error(err, log->dir, "checkpoints.log", "read");
        goto out;
    }
    while (pos < len) {
        size_t note_len = mv__note_length(buf + pos, len - pos);
        MvAuditCheckpoint cp;
        MvError verr;
        Ckpt *c;
        if (note_len == 0) {
            st = fail(rep, 0, UINT64_MAX, "checkpoints.log: checkpoint %zu (byte %zu) is torn or malformed", *n + 1,
                      pos);
            goto out;
        }
        if (*n == *cap) {
            size_t ncap = *cap == 0 ? 64 : *cap * 2;
            Ckpt *nl = realloc(*list, ncap * sizeof **list);
            if (nl == NULL) {
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                goto out;
            }
            *list = nl;
            *cap = ncap;
        }
        c = &(*list)[*n];
        memset(c, 0, sizeof *c);
        c->number = ++*n;
        mv_error_clear(&verr);
        if (mv_audit_checkpoint_verify(buf + pos, note_len, vkey, &cp, &verr) == MV_OK) {
            c->sig_ok = 1;
        } else if (verr.code == MV_ERR_PARSE && cp.origin[0] == '\0') {
            st = fail(rep, 0, UINT64_MAX, "checkpoints.log: checkpoint %zu (byte %zu): %s", c->number, pos,
                      verr.message);
            goto out;
        } else {
            snprintf(c->why, sizeof c->why, "%.250s", verr.message);
        }
        c->size = cp.size;
        memcpy(c->root, cp.root, H);
        pos += note_len;
    }
out:
    free(buf);
    return st;
}

MvStatus mv_audit_checkpoint_find(MvAuditLog *log, uint64_t size, char **note, MvError *err)
{
    struct stat sb;
    char *buf = NULL;
    size_t len, pos = 0, best = SIZE_MAX, best_len = 0;
    MvStatus st = MV_OK;

    *note = NULL;
    pthread_mutex_lock(&log->state_mu);
    if (log->fd_ckpt < 0 || fstat(log->fd_ckpt, &sb) != 0 || sb.st_size == 0)
        goto done;
    if (sb.st_size > (off_t)(1u << 30)) {
        st = mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "%s/checkpoints.log: larger than 1 GiB",
                          log->dir);
        goto done;
    }
    len = (size_t)sb.st_size;
    buf = malloc(len);
    if (buf == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto done;
    }
    if (mv__pread_all(log->fd_ckpt, buf, len, 0) != 0) {
        st = mv__io_error(err, log->dir, "checkpoints.log", "read");
        goto done;
    }
    while (pos < len) {
        size_t note_len = mv__note_length(buf + pos, len - pos);
        MvAuditCheckpoint cp;
        if (note_len == 0)
            break;
        if (mv_audit_checkpoint_verify(buf + pos, note_len, log->vkey, &cp, NULL) == MV_OK && cp.size == size) {
            best = pos;
            best_len = note_len;
        }
        pos += note_len;
    }
done:
    pthread_mutex_unlock(&log->state_mu);
    if (st == MV_OK && best == SIZE_MAX)
        st = mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET,
                          "%s/checkpoints.log: no valid checkpoint of size %llu", log->dir, (unsigned long long)size);
    if (st == MV_OK && (*note = strndup(buf + best, best_len)) == NULL)
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    free(buf);
    return st;
}

/* A perfect subtree on the stack: its hash and height (log2 of its leaves). */
typedef struct Node {
    uint8_t hash[H];
    unsigned height;
} Node;

static void fold_root(MvHasher *h, const Node *stack, int depth, uint8_t out[H])
{
    uint8_t r[H];

    if (depth == 0) {
        mv_merkle_root(NULL, 0, out);
        return;
    }
    memcpy(r, stack[depth - 1].hash, H);
    for (int j = depth - 2; j >= 0; j--)
        mv__hash_node(h, stack[j].hash, r, r);
    memcpy(out, r, H);
}

MvStatus mv_audit_verify(MvAuditLog *log, const char *vkey, const char *anchor, size_t anchor_len,
                         MvAuditVerifyReport *rep, MvError *err)
{
    Ckpt *ck = NULL;
    size_t n_ck = 0, cap_ck = 0, next_ck = 0, n_stored;
    uint64_t n_leaves_cache, n_nodes_cache, n_off_cache, i = 0, end_off = 0, last_good = 0;
    uint64_t cache_base = UINT64_MAX, max_signed = 0;
    uint8_t *cache = NULL, *off_cache = NULL;
    Node stack[66];
    int depth = 0, have_signed = 0;
    LineReader r = {0};
    MvHasher h = {NULL};
    struct stat sb;
    MvStatus st;

    memset(rep, 0, sizeof *rep);
    rep->bad_position = rep->bad_position_last = UINT64_MAX;
    if (vkey == NULL)
        vkey = log->vkey;
    if (vkey[0] == '\0')
        return fail(rep, 0, UINT64_MAX,
                    "%s/signing.vkey is missing: the checkpoints cannot be checked (give the public key "
                    "with --key)", log->dir);
    st = mv__hasher_init(&h, err);
    if (st != MV_OK)
        return st;
    pthread_mutex_lock(&log->state_mu);
    flock(log->fd_lock, LOCK_SH);
    st = load_checkpoints(log, vkey, &ck, &n_ck, &cap_ck, rep, err);
    n_stored = n_ck;
    if (st != MV_OK)
        goto out;
    if (anchor != NULL) {
        MvAuditCheckpoint cp;
        MvError verr;
        Ckpt *c;
        if (n_ck == cap_ck) {
            Ckpt *nl = realloc(ck, (cap_ck + 1) * sizeof *ck);
            if (nl == NULL) {
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                goto out;
            }
            ck = nl;
            cap_ck++;
        }
        c = &ck[n_ck++];
        memset(c, 0, sizeof *c);
        c->anchor = 1;
        c->number = n_ck;
        mv_error_clear(&verr);
        if (mv_audit_checkpoint_verify(anchor, anchor_len, vkey, &cp, &verr) != MV_OK) {
            st = fail(rep, 0, cp.size > 0 ? cp.size - 1 : 0, "the given checkpoint: %s%s", verr.message,
                      verr.code == MV_ERR_INTEGRITY ? " (the log's key was replaced, or it is not this log's)" : "");
            goto out;
        }
        c->sig_ok = 1;
        c->size = cp.size;
        memcpy(c->root, cp.root, H);
    }
    for (size_t k = 0; k < n_stored; k++) {
        if (k > 0 && ck[k].size < ck[k - 1].size) {
            st = fail(rep, ck[k].size, ck[k - 1].size,
                      "checkpoint %zu has size %llu, smaller than checkpoint %zu's %llu: the log was cut back and "
                      "re-grown", k + 1, (unsigned long long)ck[k].size, k, (unsigned long long)ck[k - 1].size);
            goto out;
        }
        if (ck[k].sig_ok) {
            have_signed = 1;
            if (ck[k].size > max_signed)
                max_signed = ck[k].size;
        }
    }
    qsort(ck, n_ck, sizeof *ck, cmp_ckpt);
    n_leaves_cache = log->fd_leaves >= 0 && fstat(log->fd_leaves, &sb) == 0 ? (uint64_t)sb.st_size / H : 0;
    n_nodes_cache = log->fd_nodes >= 0 && fstat(log->fd_nodes, &sb) == 0 ? (uint64_t)sb.st_size / H : 0;
    n_off_cache = log->fd_offsets >= 0 && fstat(log->fd_offsets, &sb) == 0 ? (uint64_t)sb.st_size / 8 : 0;
    cache = malloc(4096 * H);
    off_cache = malloc(4096 * 8);
    r.buf = malloc(READ_BLOCK + MAX_LINE);
    if (cache == NULL || off_cache == NULL || r.buf == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    r.fd = log->fd_events;
    r.limit = fstat(log->fd_events, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    for (;;) {
        const char *line;
        size_t len;
        int torn, got;
        uint8_t leaf[H];
        char why[160];

        /* Checkpoints (and the anchor) of size i: their root is that of the first i events. */
        while (next_ck < n_ck && ck[next_ck].size == i) {
            Ckpt *c = &ck[next_ck++];
            uint8_t root[H];
            if (!c->sig_ok) {
                st = fail(rep, last_good, i == 0 ? 0 : i - 1, "checkpoint %zu (size %llu): %s", c->number,
                          (unsigned long long)c->size, c->why);
                goto out;
            }
            fold_root(&h, stack, depth, root);
            if (memcmp(root, c->root, H) != 0) {
                if (c->anchor)
                    st = fail(rep, last_good, i - 1,
                              "the log does not extend the given checkpoint of size %llu: the first %llu events "
                              "were rewritten (the change is at or after position %llu)",
                              (unsigned long long)c->size, (unsigned long long)c->size,
                              (unsigned long long)last_good);
                else
                    st = fail(rep, last_good, i - 1,
                              "checkpoint %zu (size %llu) signed another root than the events 0..%llu give: an event "
                              "at position %llu..%llu was changed",
                              c->number, (unsigned long long)c->size, (unsigned long long)(i - 1),
                              (unsigned long long)last_good, (unsigned long long)(i - 1));
                goto out;
            }
            last_good = i;
            rep->n_checkpoints += !c->anchor;
        }
        got = reader_next(&r, &line, &len, &torn);
        if (got < 0) {
            st = mv__io_error(err, log->dir, "events.jsonl", "read");
            goto out;
        }
        if (got == 0)
            break;
        if (torn) {
            st = fail(rep, i, i, "event %llu (byte %llu of events.jsonl): %s", (unsigned long long)i,
                      (unsigned long long)end_off,
                      torn == 1 ? "the last line is incomplete (cut short, or a crash before recovery)"
                                : "a line longer than 1 MiB");
            goto out;
        }
        if (!mv__event_check(line, len, i, why, sizeof why)) {
            st = fail(rep, i, i, "event %llu (byte %llu of events.jsonl): %s", (unsigned long long)i,
                      (unsigned long long)end_off, why);
            goto out;
        }
        mv__hash_leaf(&h, line, len, leaf);
        end_off += len + 1;
        /* The caches must agree with what the events give. */
        if (i < n_leaves_cache && i < n_off_cache) {
            if (cache_base == UINT64_MAX || i >= cache_base + 4096) {
                uint64_t cnt = n_leaves_cache - i < 4096 ? n_leaves_cache - i : 4096;
                if (n_off_cache - i < cnt)
                    cnt = n_off_cache - i;
                if (mv__pread_all(log->fd_leaves, cache, (size_t)cnt * H, i * H) != 0 ||
                    mv__pread_all(log->fd_offsets, off_cache, (size_t)cnt * 8, i * 8) != 0) {
                    st = mv__io_error(err, log->dir, "leaves.bin", "read");
                    goto out;
                }
                cache_base = i;
            }
            uint64_t off = 0;
            for (int b = 7; b >= 0; b--)
                off = off << 8 | off_cache[(i - cache_base) * 8 + (uint64_t)b];
            if (memcmp(cache + (i - cache_base) * H, leaf, H) != 0 || off != end_off) {
                st = fail(rep, i, i,
                          "event %llu: leaves.bin or offsets.bin holds another hash or offset than events.jsonl "
                          "gives: one of them was changed", (unsigned long long)i);
                goto out;
            }
        }
        memcpy(stack[depth].hash, leaf, H);
        stack[depth++].height = 0;
        while (depth >= 2 && stack[depth - 1].height == stack[depth - 2].height) {
            mv__hash_node(&h, stack[depth - 2].hash, stack[depth - 1].hash, stack[depth - 2].hash);
            stack[depth - 2].height++;
            depth--;
            if (stack[depth - 1].height == 8) {
                uint64_t chunk = (i + 1) / MV__AUDIT_CHUNK - 1;
                uint8_t cached[H];
                if (chunk < n_nodes_cache) {
                    if (mv__pread_all(log->fd_nodes, cached, H, chunk * H) != 0) {
                        st = mv__io_error(err, log->dir, "nodes.bin", "read");
                        goto out;
                    }
                    if (memcmp(cached, stack[depth - 1].hash, H) != 0) {
                        st = fail(rep, chunk * MV__AUDIT_CHUNK, i,
                                  "nodes.bin: the hash of events %llu..%llu differs from the events: the cache "
                                  "was changed", (unsigned long long)(chunk * MV__AUDIT_CHUNK),
                                  (unsigned long long)i);
                        goto out;
                    }
                }
            }
        }
        i++;
    }
    rep->size = i;
    fold_root(&h, stack, depth, rep->root);
    if (next_ck < n_ck) {
        Ckpt *c = &ck[next_ck];
        st = fail(rep, i, i,
                  "the log has %llu events but %s of size %llu covers more: events %llu.. were removed",
                  (unsigned long long)i, c->anchor ? "the given checkpoint" : "a signed checkpoint",
                  (unsigned long long)c->size, (unsigned long long)i);
        goto out;
    }
    if (n_leaves_cache > i || n_nodes_cache > i / MV__AUDIT_CHUNK) {
        st = fail(rep, i, i,
                  "leaves.bin covers %llu events, events.jsonl only %llu: events %llu.. were removed",
                  (unsigned long long)n_leaves_cache, (unsigned long long)i, (unsigned long long)i);
        goto out;
    }
    rep->n_unsigned = have_signed ? i - max_signed : i;
    st = MV_OK;
out:
    flock(log->fd_lock, LOCK_UN);
    pthread_mutex_unlock(&log->state_mu);
    mv__hasher_free(&h);
    free(ck);
    free(cache);
    free(off_cache);
    free(r.buf);
    return st;
}
