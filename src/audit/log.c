/* The audit log in HOME/audit: durable appends with group commit, crash recovery, the hash
 * caches (leaves.bin, nodes.bin, offsets.bin), subtree hashes for proofs, and checkpoint
 * signing with the log's Ed25519 key. Full verification lives in verify.c. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit/log_int.h"

#define H MV_AUDIT_HASH_BYTES

/* ---------------------------------------------------------------------------------------------
 * Small I/O helpers.
 * ------------------------------------------------------------------------------------------- */

MvStatus mv__io_error(MvError *err, const char *dir, const char *file, const char *what)
{
    return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s/%s: %s: %s", dir, file, what, strerror(errno));
}

int mv__pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;

    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* short file: treated as an I/O error by callers */
            return -1;
        }
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static uint64_t file_size(int fd)
{
    struct stat sb;

    if (fd < 0 || fstat(fd, &sb) != 0)
        return 0;
    return (uint64_t)sb.st_size;
}

static int datasync(const MvAuditLog *log, int fd)
{
    if (log->flags & MV_AUDIT_NOSYNC)
        return 0;
    return fdatasync(fd);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---------------------------------------------------------------------------------------------
 * Subtree hashes from the caches.
 * ------------------------------------------------------------------------------------------- */

MvStatus mv__log_leaf_range(MvAuditLog *log, uint64_t lo, uint64_t n, uint8_t *out, MvError *err)
{
    if (n == 0)
        return MV_OK;
    if (mv__pread_all(log->fd_leaves, out, (size_t)n * H, lo * H) != 0)
        return mv__io_error(err, log->dir, "leaves.bin", "read");
    return MV_OK;
}

/* MTH(D[lo:hi]): whole 256-leaf chunks come from nodes.bin (an aligned range made of whole
 * chunks splits only at chunk boundaries, so its MTH is the MTH of its chunk hashes); the
 * rest is split as RFC 6962 does until it fits in one read of leaves. */
MvStatus mv__log_subtree(void *ctx, uint64_t lo, uint64_t hi, uint8_t out[MV_AUDIT_HASH_BYTES], MvError *err)
{
    MvAuditLog *log = ctx;
    uint64_t n = hi - lo;
    uint8_t *buf = NULL;
    MvStatus st = MV_OK;
    MvHasher h = {NULL};

    if (lo % MV__AUDIT_CHUNK == 0 && n % MV__AUDIT_CHUNK == 0 && hi / MV__AUDIT_CHUNK <= log->n_nodes) {
        uint64_t c = n / MV__AUDIT_CHUNK;
        if (c == 1) {
            if (mv__pread_all(log->fd_nodes, out, H, lo / MV__AUDIT_CHUNK * H) != 0)
                return mv__io_error(err, log->dir, "nodes.bin", "read");
            return MV_OK;
        }
        buf = malloc((size_t)c * H);
        if (buf == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        if (mv__pread_all(log->fd_nodes, buf, (size_t)c * H, lo / MV__AUDIT_CHUNK * H) != 0) {
            st = mv__io_error(err, log->dir, "nodes.bin", "read");
            goto out;
        }
        st = mv__hasher_init(&h, err);
        if (st == MV_OK)
            mv__merkle_root_mem(&h, buf, c, out);
        goto out;
    }
    if (n <= MV__AUDIT_CHUNK) {
        buf = malloc((size_t)n * H);
        if (buf == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        st = mv__log_leaf_range(log, lo, n, buf, err);
        if (st == MV_OK)
            st = mv__hasher_init(&h, err);
        if (st == MV_OK)
            mv__merkle_root_mem(&h, buf, n, out);
        goto out;
    }
    {
        uint64_t k = mv__merkle_split(n);
        uint8_t left[H], right[H];
        st = mv__log_subtree(log, lo, lo + k, left, err);
        if (st == MV_OK)
            st = mv__log_subtree(log, lo + k, hi, right, err);
        if (st == MV_OK)
            st = mv__hasher_init(&h, err);
        if (st == MV_OK)
            mv__hash_node(&h, left, right, out);
    }
out:
    mv__hasher_free(&h);
    free(buf);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * State of the files, and recovery.
 * ------------------------------------------------------------------------------------------- */

/* Reads the newest checkpoint's offset, size and text from the tail of checkpoints.log. A note
 * starts at the file start or after a signature line, with a line that is not one. */
MvStatus mv__log_last_checkpoint(MvAuditLog *log, uint64_t *start_out, char **note_out, MvError *err)
{
    uint64_t fsize = file_size(log->fd_ckpt), from;
    size_t len, p, best = SIZE_MAX;
    char *buf = NULL;
    MvStatus st = MV_OK;

    *start_out = fsize;
    if (note_out != NULL)
        *note_out = NULL;
    log->last_ckpt_size = UINT64_MAX;
    if (fsize == 0)
        return MV_OK;
    from = fsize > 16384 ? fsize - 16384 : 0;
    len = (size_t)(fsize - from);
    buf = malloc(len + 1);
    if (buf == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    if (mv__pread_all(log->fd_ckpt, buf, len, from) != 0) {
        st = mv__io_error(err, log->dir, "checkpoints.log", "read");
        goto out;
    }
    buf[len] = '\0';
    /* Candidate starts: position 0 of the file, or a line start whose previous line is a
     * signature line while this line is not. */
    for (p = 0; p < len; p++) {
        int line_start = (from == 0 && p == 0) || (p > 0 && buf[p - 1] == '\n');
        if (!line_start || (len - p >= 3 && memcmp(buf + p, "\xE2\x80\x94", 3) == 0))
            continue;
        if (p == 0) {
            best = 0;
            continue;
        }
        /* the previous line: from the '\n' before p-1 */
        size_t q = p - 1;
        while (q > 0 && buf[q - 1] != '\n')
            q--;
        if ((q > 0 || from == 0) && p - 1 - q >= 3 && memcmp(buf + q, "\xE2\x80\x94", 3) == 0)
            best = p;
    }
    if (best == SIZE_MAX)
        goto out;
    *start_out = from + best;
    if (mv__note_length(buf + best, len - best) != len - best) {
        /* A torn note at the end: the caller may cut it (writable) or ignore it. */
        log->ckpt_torn = 1;
        goto out;
    }
    log->ckpt_torn = 0;
    {
        MvAuditCheckpoint cp;
        MvError perr;
        if (mv_audit_checkpoint_verify(buf + best, len - best, log->vkey, &cp, &perr) == MV_OK)
            log->last_ckpt_size = cp.size;
    }
    if (note_out != NULL) {
        *note_out = strndup(buf + best, len - best);
        if (*note_out == NULL)
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
out:
    free(buf);
    return st;
}

/* The committed size: leaves and offsets agree and the last offset ends a line of events. */
static MvStatus load_state(MvAuditLog *log, int *consistent, MvError *err)
{
    uint64_t n_leaves = file_size(log->fd_leaves) / H, n_off = file_size(log->fd_offsets) / 8;
    uint64_t ev_size = file_size(log->fd_events), n = n_leaves < n_off ? n_leaves : n_off;
    uint8_t raw[8];
    char last;

    *consistent = 1;
    log->size = n;
    log->events_end = 0;
    log->n_nodes = file_size(log->fd_nodes) / H;
    if (n > 0) {
        if (mv__pread_all(log->fd_offsets, raw, 8, (n - 1) * 8) != 0)
            return mv__io_error(err, log->dir, "offsets.bin", "read");
        log->events_end = get_le64(raw);
    }
    if (n_leaves != n_off || file_size(log->fd_leaves) % H != 0 || file_size(log->fd_offsets) % 8 != 0 ||
        log->events_end != ev_size || log->n_nodes != n / MV__AUDIT_CHUNK ||
        file_size(log->fd_nodes) % H != 0)
        *consistent = 0;
    else if (ev_size > 0 && (mv__pread_all(log->fd_events, &last, 1, ev_size - 1) != 0 || last != '\n'))
        *consistent = 0;
    if (log->events_end > ev_size) {
        /* Read-only users see the prefix the events file still has. */
        *consistent = 0;
    }
    return MV_OK;
}

/* During recovery: whether a line beyond the committed prefix is the canonical event seq. */
static int line_is_event(const char *line, size_t len, uint64_t seq)
{
    char why[160];

    return mv__event_check(line, len, seq, why, sizeof why);
}

/* Whether the line that ends at byte end of events.jsonl is event seq: offsets.bin is not
 * synced on every commit, so after a crash its tail is trusted only once checked this way. */
static int offset_ends_event(MvAuditLog *log, uint64_t end, uint64_t seq)
{
    char buf[4096];
    size_t len = end - 1 < sizeof buf ? (size_t)(end - 1) : sizeof buf;
    const char *start;

    if (mv__pread_all(log->fd_events, buf, len, end - 1 - len) != 0)
        return 0;
    start = memrchr(buf, '\n', len);
    if (start == NULL && len != end - 1)
        return 0; /* a line longer than the window: not an event this log writes */
    start = start == NULL ? buf : start + 1;
    return line_is_event(start, (size_t)(buf + len - start), seq);
}

static MvStatus append_chunks(MvAuditLog *log, MvHasher *h, MvError *err)
{
    uint8_t leaves[MV__AUDIT_CHUNK * H], root[H];

    while (log->n_nodes < log->size / MV__AUDIT_CHUNK) {
        MvStatus st = mv__log_leaf_range(log, log->n_nodes * MV__AUDIT_CHUNK, MV__AUDIT_CHUNK, leaves, err);
        if (st != MV_OK)
            return st;
        mv__merkle_root_mem(h, leaves, MV__AUDIT_CHUNK, root);
        if (pwrite(log->fd_nodes, root, H, (off_t)(log->n_nodes * H)) != H)
            return mv__io_error(err, log->dir, "nodes.bin", "write");
        log->n_nodes++;
    }
    return MV_OK;
}

/* A torn checkpoint at the end of checkpoints.log was never acknowledged: cut it (lock held). */
static MvStatus cut_torn_checkpoint(MvAuditLog *log, MvError *err)
{
    uint64_t start;
    MvStatus st = mv__log_last_checkpoint(log, &start, NULL, err);

    if (st == MV_OK && log->ckpt_torn) {
        if (ftruncate(log->fd_ckpt, (off_t)start) != 0 || datasync(log, log->fd_ckpt) != 0)
            st = mv__io_error(err, log->dir, "checkpoints.log", "truncate");
        else
            st = mv__log_last_checkpoint(log, &start, NULL, err);
    }
    return st;
}

/* Crash recovery, with the exclusive lock held. Events beyond the caches were never
 * acknowledged (an append syncs the caches after the events): complete lines that are events
 * with the next seq are kept and hashed; a torn or malformed tail is cut off. Caches longer
 * than the events are cut back. */
static MvStatus recover(MvAuditLog *log, MvError *err)
{
    uint64_t n_leaves = file_size(log->fd_leaves) / H, n_off = file_size(log->fd_offsets) / 8;
    uint64_t ev_size = file_size(log->fd_events), n = n_leaves < n_off ? n_leaves : n_off, end = 0;
    uint8_t raw[8];
    char *buf = NULL;
    MvHasher h = {NULL};
    MvStatus st;

    st = mv__hasher_init(&h, err);
    if (st != MV_OK)
        return st;
    /* The committed prefix: the largest n whose end offset is in the file after a newline. */
    while (n > 0) {
        char last;
        if (mv__pread_all(log->fd_offsets, raw, 8, (n - 1) * 8) != 0) {
            st = mv__io_error(err, log->dir, "offsets.bin", "read");
            goto out;
        }
        end = get_le64(raw);
        if (end <= ev_size && end > 0 && mv__pread_all(log->fd_events, &last, 1, end - 1) == 0 && last == '\n' &&
            offset_ends_event(log, end, n - 1))
            break;
        n--;
        end = 0;
    }
    if ((n_leaves * H != file_size(log->fd_leaves) && ftruncate(log->fd_leaves, (off_t)(n * H)) != 0) ||
        (n_off * 8 != file_size(log->fd_offsets) && ftruncate(log->fd_offsets, (off_t)(n * 8)) != 0) ||
        (n != n_leaves && ftruncate(log->fd_leaves, (off_t)(n * H)) != 0) ||
        (n != n_off && ftruncate(log->fd_offsets, (off_t)(n * 8)) != 0)) {
        st = mv__io_error(err, log->dir, "leaves.bin", "truncate");
        goto out;
    }
    log->size = n;
    log->events_end = end;
    /* Lines after the committed prefix. */
    if (ev_size > end) {
        size_t len = (size_t)(ev_size - end), pos = 0;
        if (ev_size - end > (64u << 20)) {
            st = mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, end,
                              "%s/events.jsonl: %llu bytes after the last hashed event; refusing to guess",
                              log->dir, (unsigned long long)(ev_size - end));
            goto out;
        }
        buf = malloc(len);
        if (buf == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            goto out;
        }
        if (mv__pread_all(log->fd_events, buf, len, end) != 0) {
            st = mv__io_error(err, log->dir, "events.jsonl", "read");
            goto out;
        }
        while (pos < len) {
            char *nl = memchr(buf + pos, '\n', len - pos);
            uint8_t leaf[H], off[8];
            size_t line_len;
            if (nl == NULL)
                break;
            line_len = (size_t)(nl - (buf + pos));
            if (!line_is_event(buf + pos, line_len, log->size))
                break;
            mv__hash_leaf(&h, buf + pos, line_len, leaf);
            put_le64(off, log->events_end + line_len + 1);
            if (pwrite(log->fd_leaves, leaf, H, (off_t)(log->size * H)) != H ||
                pwrite(log->fd_offsets, off, 8, (off_t)(log->size * 8)) != 8) {
                st = mv__io_error(err, log->dir, "leaves.bin", "write");
                goto out;
            }
            log->size++;
            log->events_end += line_len + 1;
            pos += line_len + 1;
        }
        if (log->events_end != ev_size && ftruncate(log->fd_events, (off_t)log->events_end) != 0) {
            st = mv__io_error(err, log->dir, "events.jsonl", "truncate");
            goto out;
        }
    }
    /* The chunk cache follows the leaves. */
    log->n_nodes = file_size(log->fd_nodes) / H;
    if (log->n_nodes > log->size / MV__AUDIT_CHUNK || file_size(log->fd_nodes) % H != 0) {
        log->n_nodes = log->n_nodes > log->size / MV__AUDIT_CHUNK ? log->size / MV__AUDIT_CHUNK : log->n_nodes;
        if (ftruncate(log->fd_nodes, (off_t)(log->n_nodes * H)) != 0) {
            st = mv__io_error(err, log->dir, "nodes.bin", "truncate");
            goto out;
        }
    }
    st = append_chunks(log, &h, err);
    if (st != MV_OK)
        goto out;
    if (datasync(log, log->fd_events) != 0 || datasync(log, log->fd_leaves) != 0 ||
        datasync(log, log->fd_offsets) != 0 || datasync(log, log->fd_nodes) != 0) {
        st = mv__io_error(err, log->dir, "audit files", "sync");
        goto out;
    }
    st = cut_torn_checkpoint(log, err);
out:
    mv__hasher_free(&h);
    free(buf);
    return st;
}

/* With the exclusive lock held: picks up appends of other processes and recovers if needed. */
static MvStatus sync_state(MvAuditLog *log, MvError *err)
{
    int consistent;
    MvStatus st = load_state(log, &consistent, err);

    if (st == MV_OK && !consistent)
        st = recover(log, err);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * Keys.
 * ------------------------------------------------------------------------------------------- */

static MvStatus read_small_file(const char *dir, const char *name, char **out, MvError *err)
{
    char path[4096];
    FILE *f;
    long len;
    char *buf;

    *out = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        return mv_error_set(err, errno == ENOENT ? MV_ERR_NOTFOUND : MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s",
                            path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || len > 65536 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: unreadable or too large", path);
    }
    buf = malloc((size_t)len + 1);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        fclose(f);
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: read failed", path);
    }
    buf[len] = '\0';
    fclose(f);
    *out = buf;
    return MV_OK;
}

static MvStatus write_new_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
                               MvError *err)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
    if (mv__write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        MvStatus st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return st;
    }
    close(fd);
    return MV_OK;
}

/* Creates signing.key (PKCS#8 PEM, 0600), signing.pub (PEM) and signing.vkey, with the lock
 * held. The key name (and checkpoint origin) is "HOST/medveil-audit/ID", ID the first 8 hex
 * digits of SHA-256 of the public key, unique per log. */
static MvStatus create_key(MvAuditLog *log, MvError *err)
{
    EVP_PKEY *pk = NULL;
    BIO *priv = NULL, *pub = NULL;
    uint8_t raw[32], md[32], id[4], alg_pub[33];
    size_t raw_len = sizeof raw;
    char name[256], b64[64], vkey[400];
    char *pem_data;
    long pem_len;
    unsigned int md_len;
    MvStatus st = MV_OK;

    pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (pk == NULL || EVP_PKEY_get_raw_public_key(pk, raw, &raw_len) != 1) {
        st = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "Ed25519 key generation failed");
        goto out;
    }
    if (EVP_Digest(raw, sizeof raw, md, &md_len, EVP_sha256(), NULL) != 1) {
        st = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "SHA-256 failed");
        goto out;
    }
    snprintf(name, sizeof name, "%.200s/medveil-audit/%02x%02x%02x%02x", log->host, md[0], md[1], md[2], md[3]);
    mv__note_key_id(name, raw, id);
    alg_pub[0] = 0x01;
    memcpy(alg_pub + 1, raw, 32);
    mv__b64_encode(alg_pub, sizeof alg_pub, b64);
    snprintf(vkey, sizeof vkey, "%s+%02x%02x%02x%02x+%s\n", name, id[0], id[1], id[2], id[3], b64);
    priv = BIO_new(BIO_s_secmem());
    pub = BIO_new(BIO_s_mem());
    if (priv == NULL || pub == NULL || PEM_write_bio_PrivateKey(priv, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_PUBKEY(pub, pk) != 1) {
        st = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "cannot encode the Ed25519 key");
        goto out;
    }
    pem_len = BIO_get_mem_data(priv, &pem_data);
    st = write_new_file(log->dir, "signing.key", pem_data, (size_t)pem_len, 0600, err);
    if (st != MV_OK)
        goto out;
    pem_len = BIO_get_mem_data(pub, &pem_data);
    st = write_new_file(log->dir, "signing.pub", pem_data, (size_t)pem_len, 0644, err);
    if (st == MV_OK)
        st = write_new_file(log->dir, "signing.vkey", vkey, strlen(vkey), 0644, err);
out:
    BIO_free(priv);
    BIO_free(pub);
    EVP_PKEY_free(pk);
    return st;
}

static MvStatus load_vkey(MvAuditLog *log, MvError *err)
{
    char *text = NULL;
    MvNoteKey key;
    MvStatus st = read_small_file(log->dir, "signing.vkey", &text, err);

    if (st != MV_OK)
        return st;
    text[strcspn(text, "\r\n")] = '\0';
    st = mv__note_key_parse(text, &key, err);
    if (st == MV_OK) {
        snprintf(log->vkey, sizeof log->vkey, "%s", text);
        snprintf(log->origin, sizeof log->origin, "%s", key.name);
        memcpy(log->key_id, key.key_id, 4);
    } else {
        mv_error_prefix(err, "signing.vkey");
    }
    free(text);
    return st;
}

static MvStatus load_private_key(MvAuditLog *log, MvError *err)
{
    char path[4096];
    struct stat sb;
    FILE *f;

    if (log->sign_key != NULL)
        return MV_OK;
    snprintf(path, sizeof path, "%s/signing.key", log->dir);
    f = fopen(path, "rb");
    if (f == NULL)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &sb) != 0 || (sb.st_mode & 077) != 0) {
        fclose(f);
        return mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET,
                            "%s: readable by others than its owner; chmod 600 it", path);
    }
    log->sign_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (log->sign_key == NULL || EVP_PKEY_get_base_id(log->sign_key) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(log->sign_key);
        log->sign_key = NULL;
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET, "%s: not an Ed25519 private key", path);
    }
    return MV_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Open and close.
 * ------------------------------------------------------------------------------------------- */

static int open_in(const MvAuditLog *log, const char *name, int flags)
{
    char path[4096];

    snprintf(path, sizeof path, "%s/%s", log->dir, name);
    return open(path, flags | O_CLOEXEC, 0644);
}

MvStatus mv_audit_open(const char *home, unsigned flags, uint64_t checkpoint_every, MvAuditLog **out,
                       MvError *err)
{
    MvAuditLog *log = NULL;
    int rdonly = (flags & MV_AUDIT_READONLY) != 0, create = !rdonly && (flags & MV_AUDIT_CREATE);
    int oflags = rdonly ? O_RDONLY : O_RDWR | (create ? O_CREAT : 0);
    size_t dlen;
    MvStatus st = MV_OK;

    *out = NULL;
    if (home == NULL || *home == '\0')
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "no home folder");
    log = calloc(1, sizeof *log);
    if (log == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    log->fd_events = log->fd_leaves = log->fd_nodes = log->fd_offsets = log->fd_ckpt = log->fd_lock = -1;
    log->flags = flags;
    log->checkpoint_every = checkpoint_every;
    log->last_ckpt_size = UINT64_MAX;
    pthread_mutex_init(&log->queue_mu, NULL);
    pthread_cond_init(&log->queue_cv, NULL);
    pthread_mutex_init(&log->state_mu, NULL);
    dlen = strlen(home) + sizeof "/audit";
    log->dir = malloc(dlen);
    if (log->dir == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    snprintf(log->dir, dlen, "%s/audit", home);
    if (gethostname(log->host, sizeof log->host - 1) != 0 || log->host[0] == '\0')
        snprintf(log->host, sizeof log->host, "localhost");
    for (char *c = log->host; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || *c == '+')
            *c = '-';
    if (create) {
        if (mkdir(home, 0700) != 0 && errno != EEXIST) {
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", home, strerror(errno));
            goto out;
        }
        if (mkdir(log->dir, 0700) != 0 && errno != EEXIST) {
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", log->dir, strerror(errno));
            goto out;
        }
    }
    log->fd_lock = open_in(log, "lock", rdonly ? O_RDONLY : O_RDWR | (create ? O_CREAT : 0));
    log->fd_events = open_in(log, "events.jsonl", oflags | (rdonly ? 0 : O_APPEND));
    if ((log->fd_lock < 0 && !rdonly) || log->fd_events < 0) {
        if (errno == ENOENT)
            st = mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET,
                              "%s: no audit log here (it is created by the first audited command)", log->dir);
        else
            st = mv__io_error(err, log->dir, "events.jsonl", "open");
        goto out;
    }
    /* The caches may be missing (deleted, or an older copy): writable opens re-create them. */
    log->fd_leaves = open_in(log, "leaves.bin", rdonly ? O_RDONLY : O_RDWR | O_CREAT);
    log->fd_nodes = open_in(log, "nodes.bin", rdonly ? O_RDONLY : O_RDWR | O_CREAT);
    log->fd_offsets = open_in(log, "offsets.bin", rdonly ? O_RDONLY : O_RDWR | O_CREAT);
    log->fd_ckpt = open_in(log, "checkpoints.log", rdonly ? O_RDONLY : O_RDWR | O_CREAT | O_APPEND);
    if (!rdonly && (log->fd_leaves < 0 || log->fd_nodes < 0 || log->fd_offsets < 0 || log->fd_ckpt < 0)) {
        st = mv__io_error(err, log->dir, "cache files", "open");
        goto out;
    }
    if (log->fd_lock >= 0 && flock(log->fd_lock, rdonly ? LOCK_SH : LOCK_EX) != 0) {
        st = mv__io_error(err, log->dir, "lock", "flock");
        goto out;
    }
    st = load_vkey(log, err);
    if (st == MV_ERR_NOTFOUND && create) {
        st = create_key(log, err);
        if (st == MV_OK)
            st = load_vkey(log, err);
    } else if (st == MV_ERR_NOTFOUND && rdonly) {
        st = MV_OK; /* readers can still be given the public key from outside (verify) */
    }
    if (st == MV_OK) {
        if (rdonly) {
            int consistent;
            st = load_state(log, &consistent, err);
            if (st == MV_OK) {
                uint64_t start;
                st = mv__log_last_checkpoint(log, &start, NULL, err);
            }
        } else {
            st = sync_state(log, err);
            if (st == MV_OK)
                st = cut_torn_checkpoint(log, err);
        }
    }
    flock(log->fd_lock, LOCK_UN);
out:
    if (st != MV_OK) {
        mv_audit_close(log);
        return st;
    }
    *out = log;
    return MV_OK;
}

void mv_audit_close(MvAuditLog *log)
{
    if (log == NULL)
        return;
    int fds[] = {log->fd_events, log->fd_leaves, log->fd_nodes, log->fd_offsets, log->fd_ckpt, log->fd_lock};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    EVP_PKEY_free(log->sign_key);
    pthread_mutex_destroy(&log->queue_mu);
    pthread_cond_destroy(&log->queue_cv);
    pthread_mutex_destroy(&log->state_mu);
    free(log->dir);
    free(log);
}

uint64_t mv_audit_size(const MvAuditLog *log)
{
    return log->size;
}

MvStatus mv_audit_refresh(MvAuditLog *log, MvError *err)
{
    int consistent;
    MvStatus st;

    pthread_mutex_lock(&log->state_mu);
    flock(log->fd_lock, LOCK_SH);
    st = load_state(log, &consistent, err);
    if (st == MV_OK) {
        uint64_t start;
        st = mv__log_last_checkpoint(log, &start, NULL, err);
    }
    flock(log->fd_lock, LOCK_UN);
    pthread_mutex_unlock(&log->state_mu);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * Checkpoint signing.
 * ------------------------------------------------------------------------------------------- */

static MvStatus root_locked(MvAuditLog *log, uint64_t size, uint8_t root[MV_AUDIT_HASH_BYTES], MvError *err);

/* With the exclusive lock and state_mu held: signs the current size and appends the note. */
static MvStatus sign_locked(MvAuditLog *log, char **note_out, MvError *err)
{
    uint8_t root[H], sig_blob[4 + 64];
    size_t sig_len = 64;
    char body[512], b64root[48], b64sig[100], note[1024];
    int body_len, note_len;
    EVP_MD_CTX *ctx = NULL;
    MvStatus st;

    if (note_out != NULL)
        *note_out = NULL;
    st = load_private_key(log, err);
    if (st != MV_OK)
        return st;
    st = root_locked(log, log->size, root, err);
    if (st != MV_OK)
        return st;
    mv__b64_encode(root, H, b64root);
    body_len = snprintf(body, sizeof body, "%s\n%llu\n%s\n", log->origin, (unsigned long long)log->size, b64root);
    ctx = EVP_MD_CTX_new();
    memcpy(sig_blob, log->key_id, 4);
    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, log->sign_key) != 1 ||
        EVP_DigestSign(ctx, sig_blob + 4, &sig_len, (const uint8_t *)body, (size_t)body_len) != 1 || sig_len != 64) {
        EVP_MD_CTX_free(ctx);
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "Ed25519 signing failed");
    }
    EVP_MD_CTX_free(ctx);
    mv__b64_encode(sig_blob, sizeof sig_blob, b64sig);
    note_len = snprintf(note, sizeof note, "%s\n\xE2\x80\x94 %s %s\n", body, log->origin, b64sig);
    if (mv__write_all(log->fd_ckpt, note, (size_t)note_len) != 0 || datasync(log, log->fd_ckpt) != 0)
        return mv__io_error(err, log->dir, "checkpoints.log", "append");
    log->last_ckpt_size = log->size;
    if (note_out != NULL) {
        *note_out = strndup(note, (size_t)note_len);
        if (*note_out == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    return MV_OK;
}

MvStatus mv_audit_checkpoint_sign(MvAuditLog *log, char **note, MvError *err)
{
    MvStatus st;

    *note = NULL;
    if (log->flags & MV_AUDIT_READONLY)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "the log was opened read-only");
    pthread_mutex_lock(&log->state_mu);
    if (flock(log->fd_lock, LOCK_EX) != 0) {
        pthread_mutex_unlock(&log->state_mu);
        return mv__io_error(err, log->dir, "lock", "flock");
    }
    st = sync_state(log, err);
    if (st == MV_OK) {
        uint64_t start;
        st = mv__log_last_checkpoint(log, &start, note, err);
        if (st == MV_OK && (*note == NULL || log->last_ckpt_size != log->size)) {
            free(*note);
            st = sign_locked(log, note, err);
        }
    }
    flock(log->fd_lock, LOCK_UN);
    pthread_mutex_unlock(&log->state_mu);
    return st;
}

MvStatus mv_audit_checkpoint_latest(MvAuditLog *log, char **note, MvError *err)
{
    uint64_t start;
    MvStatus st;

    pthread_mutex_lock(&log->state_mu);
    st = mv__log_last_checkpoint(log, &start, note, err);
    pthread_mutex_unlock(&log->state_mu);
    if (st == MV_OK && *note == NULL)
        st = mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET, "%s: no checkpoint signed yet", log->dir);
    return st;
}

MvStatus mv_audit_public_key(MvAuditLog *log, int pem, char **text, MvError *err)
{
    if (pem)
        return read_small_file(log->dir, "signing.pub", text, err);
    if (log->vkey[0] == '\0') {
        *text = NULL;
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET, "%s/signing.vkey is missing", log->dir);
    }
    *text = malloc(strlen(log->vkey) + 2);
    if (*text == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    snprintf(*text, strlen(log->vkey) + 2, "%s\n", log->vkey);
    return MV_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Roots and proofs.
 * ------------------------------------------------------------------------------------------- */

static MvStatus root_locked(MvAuditLog *log, uint64_t size, uint8_t root[MV_AUDIT_HASH_BYTES], MvError *err)
{
    if (size > log->size)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "size %llu is beyond the log's %llu events",
                            (unsigned long long)size, (unsigned long long)log->size);
    if (size == 0) {
        mv_merkle_root(NULL, 0, root);
        return MV_OK;
    }
    return mv__log_subtree(log, 0, size, root, err);
}

/* The read functions below take state_mu, so they may run while other threads append. */
MvStatus mv_audit_root(MvAuditLog *log, uint64_t size, uint8_t root[MV_AUDIT_HASH_BYTES], MvError *err)
{
    MvStatus st;

    pthread_mutex_lock(&log->state_mu);
    st = root_locked(log, size, root, err);
    pthread_mutex_unlock(&log->state_mu);
    return st;
}

MvStatus mv_audit_leaf_hash(MvAuditLog *log, uint64_t index, uint8_t out[MV_AUDIT_HASH_BYTES], MvError *err)
{
    MvStatus st;

    pthread_mutex_lock(&log->state_mu);
    if (index >= log->size)
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "no event %llu: the log has %llu",
                          (unsigned long long)index, (unsigned long long)log->size);
    else
        st = mv__log_leaf_range(log, index, 1, out, err);
    pthread_mutex_unlock(&log->state_mu);
    return st;
}

MvStatus mv_audit_prove_inclusion(MvAuditLog *log, uint64_t index, uint64_t size, uint8_t **proof,
                                  size_t *n_hashes, MvError *err)
{
    MvStatus st;

    *proof = NULL;
    *n_hashes = 0;
    if (size > log->size || index >= size)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "need INDEX < SIZE <= %llu (the log's size), got index %llu and size %llu",
                            (unsigned long long)log->size, (unsigned long long)index, (unsigned long long)size);
    *proof = malloc(64 * H);
    if (*proof == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    pthread_mutex_lock(&log->state_mu);
    st = mv__merkle_path(mv__log_subtree, log, index, 0, size, *proof, n_hashes, err);
    pthread_mutex_unlock(&log->state_mu);
    if (st != MV_OK || *n_hashes == 0) {
        free(*proof);
        *proof = NULL;
    }
    return st;
}

MvStatus mv_audit_prove_consistency(MvAuditLog *log, uint64_t old_size, uint64_t new_size, uint8_t **proof,
                                    size_t *n_hashes, MvError *err)
{
    MvStatus st;

    *proof = NULL;
    *n_hashes = 0;
    if (old_size == 0 || old_size > new_size || new_size > log->size)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "need 1 <= OLD_SIZE <= NEW_SIZE <= %llu (the log's size), got %llu and %llu",
                            (unsigned long long)log->size, (unsigned long long)old_size,
                            (unsigned long long)new_size);
    *proof = malloc(128 * H);
    if (*proof == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    pthread_mutex_lock(&log->state_mu);
    st = mv__merkle_proof(mv__log_subtree, log, old_size, new_size, *proof, n_hashes, err);
    pthread_mutex_unlock(&log->state_mu);
    if (st != MV_OK || *n_hashes == 0) {
        free(*proof);
        *proof = NULL;
    }
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * Appends: encoding, and group commit.
 * ------------------------------------------------------------------------------------------- */

static int valid_action(const char *a)
{
    size_t n = 0;

    if (a == NULL)
        return 0;
    for (; a[n]; n++)
        if (!((a[n] >= 'a' && a[n] <= 'z') || (a[n] >= '0' && a[n] <= '9') || a[n] == '.' || a[n] == '-'))
            return 0;
    return n > 0 && n <= 64;
}

void mv__audit_time_now(char out[48])
{
    struct timespec ts;
    struct tm tm;
    char base[24];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 48, "%.19s.%06ldZ", base, (long)(ts.tv_nsec / 1000));
}

static MvStatus check_event(const MvAuditEvent *ev, MvError *err)
{
    if (!valid_action(ev->action))
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "audit action must be 1-64 characters of a-z, 0-9, '.', '-'");
    if (ev->outcome != NULL && strcmp(ev->outcome, "success") != 0 && strcmp(ev->outcome, "failure") != 0 &&
        strcmp(ev->outcome, "denied") != 0)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "audit outcome must be success, failure or denied");
    if (ev->n_objects > 0 && ev->objects == NULL)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "audit event without its objects array");
    for (size_t i = 0; i < ev->n_objects; i++)
        if (ev->objects[i] == NULL || !mv__utf8_valid(ev->objects[i]))
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "audit object %zu is NULL or not UTF-8", i);
    /* Checked here, before the event joins a batch, so that one bad event never fails the
     * events of other threads committed with it. */
    if ((ev->actor != NULL && !mv__utf8_valid(ev->actor)) || (ev->purpose != NULL && !mv__utf8_valid(ev->purpose)) ||
        (ev->detail != NULL && !mv__utf8_valid(ev->detail)))
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "audit event %s: the actor, purpose or detail is not valid UTF-8", ev->action);
    return MV_OK;
}

/* The leader's work: writes every waiter's events as one batch under the exclusive lock. */
static MvStatus commit_batch(MvAuditLog *log, MvAuditWaiter *batch, MvError *err)
{
    size_t n_events = 0, used = 0, k = 0;
    char now[48], os_user[256];
    MvBuf out = {NULL, 0, 0};
    uint8_t *leaves = NULL, *offs = NULL;
    uint64_t seq0, first_new_chunk;
    MvHasher h = {NULL};
    MvStatus st;
    int locked = 0;

    os_user[0] = '\0';
    for (MvAuditWaiter *w = batch; w != NULL; w = w->next)
        n_events += w->n;
    st = mv__hasher_init(&h, err);
    if (st != MV_OK)
        goto out;
    leaves = malloc(n_events * H + 1);
    offs = malloc(n_events * 8 + 1);
    if (leaves == NULL || offs == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if (flock(log->fd_lock, LOCK_EX) != 0) {
        st = mv__io_error(err, log->dir, "lock", "flock");
        goto out;
    }
    locked = 1;
    st = sync_state(log, err);
    if (st != MV_OK)
        goto out;
    seq0 = log->size;
    mv__audit_time_now(now);
    for (MvAuditWaiter *w = batch; w != NULL; w = w->next) {
        w->first_seq = seq0 + k;
        for (size_t i = 0; i < w->n; i++, k++) {
            MvAuditEvent ev = w->events[i];
            size_t line_start;
            if (ev.actor == NULL) {
                if (os_user[0] == '\0') {
                    struct passwd pw, *res = NULL;
                    char pwbuf[4096];
                    if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res != NULL)
                        snprintf(os_user, sizeof os_user, "%s", res->pw_name);
                    else
                        snprintf(os_user, sizeof os_user, "uid:%lu", (unsigned long)geteuid());
                }
                ev.actor = os_user;
            }
            line_start = out.len;
            st = mv__event_encode(&out, &ev, ev.actor, seq0 + k, now, log->host, err);
            if (st == MV_OK)
                st = mv__buf_reserve(&out, 1, err);
            if (st != MV_OK) {
                mv_error_prefix(err, ev.action);
                goto out;
            }
            mv__hash_leaf(&h, out.data + line_start, out.len - line_start, leaves + k * H);
            out.data[out.len++] = '\n';
            used = out.len;
            put_le64(offs + k * 8, log->events_end + used);
        }
    }
    /* events.jsonl first (O_APPEND), then the caches. events.jsonl and leaves.bin (whose
     * hashes checkpoints are signed over) are synced before anyone is told, nodes.bin when a
     * chunk completed; offsets.bin is re-derived from events.jsonl by recover() if a crash
     * leaves it short or wrong, so it is not synced here (it would cost one more journal
     * commit per append: measured 3-5 times slower for single appends). */
    if (used > 0 && mv__write_all(log->fd_events, out.data, used) != 0) {
        st = mv__io_error(err, log->dir, "events.jsonl", "append");
        goto out;
    }
    if (pwrite(log->fd_leaves, leaves, n_events * H, (off_t)(seq0 * H)) != (ssize_t)(n_events * H) ||
        pwrite(log->fd_offsets, offs, n_events * 8, (off_t)(seq0 * 8)) != (ssize_t)(n_events * 8)) {
        st = mv__io_error(err, log->dir, "leaves.bin", "write");
        goto out;
    }
    first_new_chunk = log->n_nodes;
    log->size = seq0 + n_events;
    log->events_end += used;
    st = append_chunks(log, &h, err);
    if (st != MV_OK)
        goto out;
    if (datasync(log, log->fd_events) != 0 || datasync(log, log->fd_leaves) != 0 ||
        (log->n_nodes != first_new_chunk && datasync(log, log->fd_nodes) != 0)) {
        st = mv__io_error(err, log->dir, "audit files", "sync");
        goto out;
    }
    log->n_syncs++;
    if (log->checkpoint_every > 0 &&
        (log->last_ckpt_size == UINT64_MAX || log->size - log->last_ckpt_size >= log->checkpoint_every))
        st = sign_locked(log, NULL, err);
out:
    if (st != MV_OK && locked) {
        /* Cut what this batch may have written, so the caches never run ahead. */
        int consistent;
        MvError ignored;
        if (load_state(log, &consistent, &ignored) == MV_OK && !consistent)
            recover(log, &ignored);
    }
    if (locked)
        flock(log->fd_lock, LOCK_UN);
    mv__hasher_free(&h);
    free(out.data);
    free(leaves);
    free(offs);
    return st;
}

MvStatus mv_audit_append(MvAuditLog *log, const MvAuditEvent *events, size_t n, uint64_t *first_seq,
                         MvError *err)
{
    MvAuditWaiter me;
    MvStatus st;

    if (log->flags & MV_AUDIT_READONLY)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "the log was opened read-only");
    for (size_t i = 0; i < n; i++) {
        st = check_event(&events[i], err);
        if (st != MV_OK)
            return st;
    }
    memset(&me, 0, sizeof me);
    me.events = events;
    me.n = n;
    mv_error_clear(&me.err);
    pthread_mutex_lock(&log->queue_mu);
    if (log->queue_tail != NULL)
        log->queue_tail->next = &me;
    else
        log->queue_head = &me;
    log->queue_tail = &me;
    while (!me.done) {
        if (!log->leading) {
            MvAuditWaiter *batch = log->queue_head;
            MvError berr;
            log->leading = 1;
            log->queue_head = log->queue_tail = NULL;
            pthread_mutex_unlock(&log->queue_mu);
            mv_error_clear(&berr);
            pthread_mutex_lock(&log->state_mu);
            st = commit_batch(log, batch, &berr);
            pthread_mutex_unlock(&log->state_mu);
            pthread_mutex_lock(&log->queue_mu);
            for (MvAuditWaiter *w = batch, *next; w != NULL; w = next) {
                next = w->next;
                w->status = st;
                w->err = berr;
                w->done = 1;
            }
            log->leading = 0;
            pthread_cond_broadcast(&log->queue_cv);
        } else {
            pthread_cond_wait(&log->queue_cv, &log->queue_mu);
        }
    }
    pthread_mutex_unlock(&log->queue_mu);
    if (me.status != MV_OK) {
        if (err != NULL)
            *err = me.err;
        return me.status;
    }
    if (first_seq != NULL)
        *first_seq = me.first_seq;
    return MV_OK;
}

uint64_t mv_audit_commit_count(const MvAuditLog *log)
{
    return log->n_syncs;
}
