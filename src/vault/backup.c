/* Vault backups: one archive file holding the keyring's files (as stored: the KEK only in its
 * protected form), a fresh archive key wrapped by the KEK, and an encrypted, authenticated
 * stream (the blob format of aead.c, streamed) of the index and every blob with a SHA-256
 * manifest; and the restore that rebuilds an empty home from it. docs/vault.md has the layout. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "vault/vault_int.h"

#define ARCHIVE_MAGIC "MVBACKUP"
#define PAYLOAD_MAGIC "MVBKPAY1"
#define ARCHIVE_VERSION 1u
#define MAX_KEYRING_FILES 1024u
#define MAX_KEYRING_FILE (64u << 20)
#define MAX_WRAPPED 4096u
#define IO_BUF (1u << 20)

static MvStatus nomem(MvError *err)
{
    return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
}

static void be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t unbe(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- The keyring's files ---------------------------------------------------------------- */

typedef struct FileList {
    char **names; /* relative to HOME/keyring */
    size_t n, cap;
} FileList;

static void file_list_free(FileList *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static MvStatus list_files(const char *root, const char *rel, int depth, FileList *l, MvError *err)
{
    char *dir = rel[0] != '\0' ? mv__path(root, rel) : strdup(root);
    DIR *d;
    struct dirent *e;
    MvStatus st = MV_OK;

    if (dir == NULL)
        return nomem(err);
    if ((d = opendir(dir)) == NULL) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot read %s: %s", dir, strerror(errno));
        free(dir);
        return st;
    }
    while (st == MV_OK && (e = readdir(d)) != NULL) {
        char *child_rel = NULL, *child = NULL;
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (asprintf(&child_rel, "%s%s%s", rel, rel[0] != '\0' ? "/" : "", e->d_name) < 0) {
            st = nomem(err);
            break;
        }
        child = mv__path(root, child_rel);
        if (child == NULL || lstat(child, &sb) != 0) {
            st = child == NULL ? nomem(err) : mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", child,
                                                            strerror(errno));
        } else if (S_ISDIR(sb.st_mode) && depth < 4) {
            st = list_files(root, child_rel, depth + 1, l, err);
        } else if (S_ISREG(sb.st_mode)) {
            if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                char **g = realloc(l->names, cap * sizeof *g);
                if (g == NULL) {
                    st = nomem(err);
                } else {
                    l->names = g;
                    l->cap = cap;
                }
            }
            if (st == MV_OK) {
                l->names[l->n++] = child_rel;
                child_rel = NULL;
            }
        }
        free(child);
        free(child_rel);
    }
    closedir(d);
    free(dir);
    if (st == MV_OK && l->n > MAX_KEYRING_FILES)
        st = mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "too many files in the keyring folder");
    return st;
}

static MvStatus read_whole(const char *path, uint8_t **out, size_t *len, MvError *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    uint8_t *buf;
    size_t got = 0;

    *out = NULL;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot read %s: %s", path, strerror(errno));
    }
    if ((uint64_t)sb.st_size > MAX_KEYRING_FILE) {
        close(fd);
        return mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "%s: too large for a keyring file", path);
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return nomem(err);
    }
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (got != (size_t)sb.st_size) {
        OPENSSL_cleanse(buf, (size_t)sb.st_size + 1);
        free(buf);
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s changed while it was read", path);
    }
    *out = buf;
    *len = got;
    return MV_OK;
}

/* ---- Writing ---------------------------------------------------------------------------- */

typedef struct Out {
    int fd;
    EVP_MD_CTX *md; /* hashes the clear part */
} Out;

static MvStatus out_clear(Out *o, const void *p, size_t n, MvError *err)
{
    if (mv__write_all(o->fd, p, n) != 0)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "write: %s", strerror(errno));
    if (EVP_DigestUpdate(o->md, p, n) != 1)
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "SHA-256 failed");
    return MV_OK;
}

static MvStatus sha256(const void *p, size_t n, uint8_t out[32], MvError *err)
{
    if (EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL) != 1)
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "SHA-256 failed");
    return MV_OK;
}

static MvStatus write_keyring_part(MvVault *v, Out *o, size_t *n_files, MvError *err)
{
    char *root = mv__path(v->home, "keyring");
    FileList l = {0};
    uint8_t head[12];
    MvStatus st;

    if (root == NULL)
        return nomem(err);
    if ((st = list_files(root, "", 0, &l, err)) != MV_OK)
        goto out;
    qsort(l.names, l.n, sizeof *l.names, by_name);
    be(head, l.n, 4);
    if ((st = out_clear(o, head, 4, err)) != MV_OK)
        goto out;
    for (size_t i = 0; i < l.n; i++) {
        char *path = mv__path(root, l.names[i]);
        uint8_t *data = NULL;
        size_t len = 0, name_len = strlen(l.names[i]);
        struct stat sb;
        if (path == NULL) {
            st = nomem(err);
            goto out;
        }
        st = read_whole(path, &data, &len, err);
        if (st == MV_OK && stat(path, &sb) != 0)
            sb.st_mode = 0600;
        free(path);
        if (st != MV_OK)
            goto out;
        be(head, name_len, 2);
        be(head + 2, (uint64_t)(sb.st_mode & 0700), 2);
        be(head + 4, len, 8);
        st = out_clear(o, head, 12, err);
        if (st == MV_OK)
            st = out_clear(o, l.names[i], name_len, err);
        if (st == MV_OK)
            st = out_clear(o, data, len, err);
        OPENSSL_cleanse(data, len);
        free(data);
        if (st != MV_OK)
            goto out;
    }
    *n_files = l.n;
out:
    file_list_free(&l);
    free(root);
    return st;
}

typedef struct ObjList {
    char (*ids)[MV_VAULT_ID_CHARS + 1];
    size_t n, cap;
} ObjList;

static MvStatus object_list(MvVault *v, ObjList *l, MvError *err)
{
    sqlite3_stmt *q = NULL;
    MvStatus st = mv__db_prepare(v, "SELECT object FROM instance ORDER BY object", &q, err);
    int rc;

    if (st != MV_OK)
        return st;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 256;
            void *g = realloc(l->ids, cap * sizeof *l->ids);
            if (g == NULL) {
                sqlite3_finalize(q);
                return nomem(err);
            }
            l->ids = g;
            l->cap = cap;
        }
        snprintf(l->ids[l->n++], MV_VAULT_ID_CHARS + 1, "%s", (const char *)sqlite3_column_text(q, 0));
    }
    if (rc != SQLITE_DONE)
        st = mv__db_error(v, err, "backup");
    sqlite3_finalize(q);
    return st;
}

/* Streams one blob into the sealer: 'O' || id || length || bytes; adds its SHA-256 to the manifest. */
static MvStatus write_object(MvVault *v, MvSealer *s, EVP_MD_CTX *manifest, const char *oid, uint8_t *buf,
                             MvError *err)
{
    char *path = mv__object_path(v, oid);
    int fd = path != NULL ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t head[1 + MV_VAULT_ID_CHARS + 8], digest[32];
    struct stat sb;
    uint64_t left;
    MvStatus st = MV_OK;

    if (path == NULL || md == NULL) {
        st = nomem(err);
        goto out;
    }
    if (fd < 0 || fstat(fd, &sb) != 0) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "object %s: blob missing", oid);
        goto out;
    }
    head[0] = 'O';
    memcpy(head + 1, oid, MV_VAULT_ID_CHARS);
    be(head + 1 + MV_VAULT_ID_CHARS, (uint64_t)sb.st_size, 8);
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    if ((st = mv__sealer_write(s, head, sizeof head, err)) != MV_OK)
        goto out;
    for (left = (uint64_t)sb.st_size; left > 0;) {
        ssize_t n = read(fd, buf, left < IO_BUF ? (size_t)left : IO_BUF);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "object %s: read failed", oid);
            goto out;
        }
        EVP_DigestUpdate(md, buf, (size_t)n);
        if ((st = mv__sealer_write(s, buf, (size_t)n, err)) != MV_OK)
            goto out;
        left -= (uint64_t)n;
    }
    EVP_DigestFinal_ex(md, digest, NULL);
    EVP_DigestUpdate(manifest, "O", 1);
    EVP_DigestUpdate(manifest, oid, MV_VAULT_ID_CHARS);
    EVP_DigestUpdate(manifest, digest, sizeof digest);
out:
    if (fd >= 0)
        close(fd);
    free(path);
    EVP_MD_CTX_free(md);
    return st;
}

MvStatus mv_vault_backup(MvVault *v, const char *path, MvVaultBackupInfo *info, MvError *err)
{
    Out o = {-1, NULL};
    MvSealer s;
    MvBlobHeader h;
    ObjList objs = {0};
    EVP_MD_CTX *manifest = NULL;
    uint8_t head[16], id[MV__ID_BYTES], key[32], clear_digest[32], digest[32];
    uint8_t *wrapped = NULL, *image = NULL, *buf = NULL;
    sqlite3_int64 image_len = 0;
    size_t wrapped_len = 0;
    char *tmp = NULL, ctx[64], hex[MV_VAULT_ID_CHARS + 1], *slash, *dir = NULL;
    int in_txn = 0;
    MvStatus st = MV_OK;

    memset(&s, 0, sizeof s);
    memset(info, 0, sizeof *info);
    if (!v->writable || v->in_batch)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "vault not opened for writing");
    if (asprintf(&tmp, "%s.mvtmp-XXXXXX", path) < 0)
        return nomem(err);
    o.md = EVP_MD_CTX_new();
    manifest = EVP_MD_CTX_new();
    buf = malloc(IO_BUF);
    if (o.md == NULL || manifest == NULL || buf == NULL) {
        st = nomem(err);
        goto out;
    }
    EVP_DigestInit_ex(o.md, EVP_sha256(), NULL);
    EVP_DigestInit_ex(manifest, EVP_sha256(), NULL);
    if ((o.fd = mkstemp(tmp)) < 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    /* Clear part: magic, version, keyring files, archive id, wrapped archive key. */
    memcpy(head, ARCHIVE_MAGIC, 8);
    be(head + 8, ARCHIVE_VERSION, 2);
    be(head + 10, 0, 2);
    if ((st = out_clear(&o, head, 12, err)) != MV_OK ||
        (st = write_keyring_part(v, &o, &info->n_keyring_files, err)) != MV_OK)
        goto out;
    if (RAND_bytes(id, sizeof id) != 1 || RAND_bytes(key, sizeof key) != 1) {
        st = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "the random generator failed");
        goto out;
    }
    mv__hex(id, sizeof id, hex);
    snprintf(ctx, sizeof ctx, "vault-backup:%s", hex);
    if ((st = mv_keyring_wrap(v->kr, key, sizeof key, ctx, &wrapped, &wrapped_len, err)) != MV_OK)
        goto out;
    be(head, wrapped_len, 4);
    if ((st = out_clear(&o, id, sizeof id, err)) != MV_OK || (st = out_clear(&o, head, 4, err)) != MV_OK ||
        (st = out_clear(&o, wrapped, wrapped_len, err)) != MV_OK)
        goto out;
    EVP_DigestFinal_ex(o.md, clear_digest, NULL);
    /* Encrypted part. */
    if ((st = mv__blob_header_make(&h, id, MV__CHUNK_DEFAULT, MV__STREAMED, err)) != MV_OK ||
        (st = mv__sealer_start(&s, key, &h, o.fd, err)) != MV_OK ||
        (st = mv__sealer_write(&s, PAYLOAD_MAGIC, 8, err)) != MV_OK ||
        (st = mv__sealer_write(&s, clear_digest, sizeof clear_digest, err)) != MV_OK)
        goto out;
    if ((st = mv__db_exec(v, "BEGIN", err)) != MV_OK)
        goto out;
    in_txn = 1;
    image = sqlite3_serialize(v->db, "main", &image_len, 0);
    if (image == NULL) {
        st = mv__db_error(v, err, "serialize");
        goto out;
    }
    head[0] = 'I';
    be(head + 1, (uint64_t)image_len, 8);
    if ((st = mv__sealer_write(&s, head, 9, err)) != MV_OK ||
        (st = mv__sealer_write(&s, image, (size_t)image_len, err)) != MV_OK ||
        (st = sha256(image, (size_t)image_len, digest, err)) != MV_OK)
        goto out;
    EVP_DigestUpdate(manifest, "I", 1);
    EVP_DigestUpdate(manifest, digest, sizeof digest);
    if ((st = object_list(v, &objs, err)) != MV_OK)
        goto out;
    for (size_t i = 0; i < objs.n; i++) {
        if ((st = write_object(v, &s, manifest, objs.ids[i], buf, err)) != MV_OK)
            goto out;
        if (v->progress != NULL)
            v->progress(i + 1, objs.n, v->progress_ctx);
    }
    EVP_DigestFinal_ex(manifest, digest, NULL);
    head[0] = 'E';
    be(head + 1, objs.n, 8);
    if ((st = mv__sealer_write(&s, head, 9, err)) != MV_OK ||
        (st = mv__sealer_write(&s, digest, sizeof digest, err)) != MV_OK || (st = mv__sealer_finish(&s, err)) != MV_OK)
        goto out;
    if (fsync(o.fd) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot sync %s: %s", tmp, strerror(errno));
        goto out;
    }
    {
        struct stat sb;
        if (fstat(o.fd, &sb) == 0)
            info->bytes = (uint64_t)sb.st_size;
    }
    if (close(o.fd) != 0) {
        o.fd = -1;
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot write %s", tmp);
        goto out;
    }
    o.fd = -1;
    if (rename(tmp, path) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot rename to %s: %s", path, strerror(errno));
        goto out;
    }
    dir = strdup(path);
    if (dir != NULL && (slash = strrchr(dir, '/')) != NULL) {
        *slash = '\0';
        mv__sync_dir(dir[0] != '\0' ? dir : "/");
    } else {
        mv__sync_dir(".");
    }
    info->n_objects = objs.n;
    free(tmp);
    tmp = NULL;
out:
    if (in_txn)
        sqlite3_exec(v->db, "COMMIT", NULL, NULL, NULL);
    sqlite3_free(image);
    mv__sealer_free(&s);
    if (o.fd >= 0)
        close(o.fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    OPENSSL_cleanse(key, sizeof key);
    EVP_MD_CTX_free(o.md);
    EVP_MD_CTX_free(manifest);
    free(objs.ids);
    free(wrapped);
    free(buf);
    free(dir);
    return st;
}

/* ---- Reading ---------------------------------------------------------------------------- */

typedef struct In {
    int fd;
    EVP_MD_CTX *md; /* hashes the clear part */
    uint64_t off;
} In;

static MvStatus in_clear(In *in, void *p, size_t n, MvError *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(in->fd, (uint8_t *)p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, in->off + got, "archive cut short at offset %llu",
                                (unsigned long long)(in->off + got));
        got += (size_t)r;
    }
    in->off += n;
    EVP_DigestUpdate(in->md, p, n);
    return MV_OK;
}

/* Pulls authenticated plaintext from the encrypted part, chunk by chunk. */
typedef struct Puller {
    int fd;
    const uint8_t *key;
    MvBlobHeader h;
    EVP_CIPHER_CTX *ctx;
    uint8_t *in, *plain;
    size_t plain_len, pos;
    uint64_t index;
    int last_seen;
} Puller;

static MvStatus pull_chunk(Puller *p, MvError *err)
{
    size_t cs = p->h.chunk_size, got = 0;
    MvStatus st;

    while (got < cs + MV__TAG_BYTES) {
        ssize_t r = read(p->fd, p->in + got, cs + MV__TAG_BYTES - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "read: %s", strerror(errno));
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got < MV__TAG_BYTES)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "archive cut short: its encrypted part ends without its last chunk");
    p->last_seen = got < cs + MV__TAG_BYTES;
    if ((st = mv__chunk_open(p->ctx, p->key, &p->h, p->index, p->last_seen, p->in, got - MV__TAG_BYTES, p->plain,
                             err)) != MV_OK)
        return st;
    p->index++;
    p->plain_len = got - MV__TAG_BYTES;
    p->pos = 0;
    return MV_OK;
}

static MvStatus pull(Puller *p, void *buf, size_t n, MvError *err)
{
    uint8_t *dst = buf;
    MvStatus st;

    while (n > 0) {
        if (p->pos == p->plain_len) {
            if (p->last_seen)
                return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                                    "archive payload ends before its manifest");
            if ((st = pull_chunk(p, err)) != MV_OK)
                return st;
            continue;
        }
        size_t take = p->plain_len - p->pos < n ? p->plain_len - p->pos : n;
        memcpy(dst, p->plain + p->pos, take);
        p->pos += take;
        dst += take;
        n -= take;
    }
    return MV_OK;
}

static MvStatus pull_end(Puller *p, MvError *err)
{
    uint8_t extra;
    MvStatus st;

    /* The manifest may end exactly on a chunk boundary: the last (empty) chunk then follows. */
    while (!p->last_seen || p->pos != p->plain_len) {
        if (p->pos != p->plain_len)
            return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "data after the archive's manifest");
        if ((st = pull_chunk(p, err)) != MV_OK)
            return st;
    }
    if (read(p->fd, &extra, 1) != 0)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "bytes after the archive's last chunk");
    return MV_OK;
}

static int safe_rel_name(const char *name)
{
    if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL || strchr(name, '\\') != NULL)
        return 0;
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20)
            return 0;
    return 1;
}

/* mkdir -p of the folders above rel under root, mode 0700. */
static int make_parents(const char *root, const char *rel)
{
    char *path = mv__path(root, rel), *p;
    if (path == NULL)
        return -1;
    for (p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            free(path);
            return -1;
        }
        *p = '/';
    }
    free(path);
    return 0;
}

static MvStatus write_file(const char *path, const void *data, size_t len, mode_t mode, MvError *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create %s: %s", path, strerror(errno));
    if (mv__write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        close(fd);
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot write %s: %s", path, strerror(errno));
    }
    close(fd);
    return MV_OK;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *child = mv__path(path, e->d_name);
            if (child != NULL)
                remove_tree(child);
            free(child);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static MvStatus restore_keyring(In *in, const char *keyring_dir, size_t *n_files, MvError *err)
{
    uint8_t head[12];
    uint64_t n;
    MvStatus st;

    if ((st = in_clear(in, head, 4, err)) != MV_OK)
        return st;
    n = unbe(head, 4);
    if (n == 0 || n > MAX_KEYRING_FILES)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, in->off, "archive: bad keyring file count");
    if (mkdir(keyring_dir, 0700) != 0)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create %s: %s", keyring_dir,
                            strerror(errno));
    for (uint64_t i = 0; i < n; i++) {
        char name[4097], *path;
        uint64_t name_len, len;
        uint8_t *data;
        mode_t mode;
        if ((st = in_clear(in, head, 12, err)) != MV_OK)
            return st;
        name_len = unbe(head, 2);
        mode = (mode_t)(unbe(head + 2, 2) & 0700);
        len = unbe(head + 4, 8);
        if (name_len == 0 || name_len >= sizeof name || len > MAX_KEYRING_FILE)
            return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, in->off, "archive: bad keyring file entry");
        if ((st = in_clear(in, name, (size_t)name_len, err)) != MV_OK)
            return st;
        name[name_len] = '\0';
        if (!safe_rel_name(name) || strlen(name) != name_len)
            return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, in->off, "archive: unsafe keyring file name");
        if ((data = malloc((size_t)len + 1)) == NULL)
            return nomem(err);
        st = in_clear(in, data, (size_t)len, err);
        if (st == MV_OK && ((path = mv__path(keyring_dir, name)) == NULL || make_parents(keyring_dir, name) != 0)) {
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create the keyring folder");
            free(path);
            path = NULL;
        } else if (st != MV_OK) {
            path = NULL;
        }
        if (st == MV_OK)
            st = write_file(path, data, (size_t)len, mode | 0600, err);
        OPENSSL_cleanse(data, (size_t)len);
        free(data);
        free(path);
        if (st != MV_OK)
            return st;
    }
    *n_files = (size_t)n;
    mv__sync_dir(keyring_dir);
    return MV_OK;
}

/* Copies len bytes of payload to a new file, returning their SHA-256. */
static MvStatus pull_to_file(Puller *p, const char *path, uint64_t len, uint8_t *buf, uint8_t digest[32],
                             MvError *err)
{
    int fd = path != NULL ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -2;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    MvStatus st = MV_OK;

    if (fd == -1 || md == NULL) {
        st = fd < 0 ? mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create %s: %s", path,
                                   strerror(errno))
                    : nomem(err);
        goto out;
    }
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    while (len > 0) {
        size_t n = len < IO_BUF ? (size_t)len : IO_BUF;
        if ((st = pull(p, buf, n, err)) != MV_OK)
            goto out;
        EVP_DigestUpdate(md, buf, n);
        if (fd >= 0 && mv__write_all(fd, buf, n) != 0) {
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot write %s: %s", path, strerror(errno));
            goto out;
        }
        len -= n;
    }
    EVP_DigestFinal_ex(md, digest, NULL);
    if (fd >= 0 && fsync(fd) != 0)
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot sync %s: %s", path, strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(md);
    return st;
}

static MvStatus restore_payload(Puller *p, const char *dir, const uint8_t clear_digest[32], size_t *n_objects,
                                MvError *err)
{
    uint8_t head[1 + MV_VAULT_ID_CHARS + 8], digest[32], want[32], *buf = malloc(IO_BUF);
    int writing = dir != NULL; /* else only authenticate and check */
    char *objects = writing ? mv__path(dir, "objects") : NULL, *tmpdir = writing ? mv__path(dir, "tmp") : NULL;
    char *index = writing ? mv__path(dir, "index.sqlite") : NULL;
    EVP_MD_CTX *manifest = EVP_MD_CTX_new();
    size_t n = 0;
    int have_index = 0;
    MvStatus st = MV_OK;

    if (buf == NULL || manifest == NULL || (writing && (objects == NULL || tmpdir == NULL || index == NULL))) {
        st = nomem(err);
        goto out;
    }
    EVP_DigestInit_ex(manifest, EVP_sha256(), NULL);
    if (writing && (mkdir(objects, 0700) != 0 || mkdir(tmpdir, 0700) != 0)) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create folders under %s", dir);
        goto out;
    }
    if ((st = pull(p, head, 8 + 32, err)) != MV_OK)
        goto out;
    if (memcmp(head, PAYLOAD_MAGIC, 8) != 0 || CRYPTO_memcmp(head + 8, clear_digest, 32) != 0) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                          "archive: the clear part (keyring files, archive key) was changed");
        goto out;
    }
    for (;;) {
        if ((st = pull(p, head, 1, err)) != MV_OK)
            goto out;
        if (head[0] == 'I' && !have_index) {
            if ((st = pull(p, head + 1, 8, err)) != MV_OK ||
                (st = pull_to_file(p, index, unbe(head + 1, 8), buf, digest, err)) != MV_OK)
                goto out;
            EVP_DigestUpdate(manifest, "I", 1);
            EVP_DigestUpdate(manifest, digest, sizeof digest);
            have_index = 1;
        } else if (head[0] == 'O' && have_index) {
            char oid[MV_VAULT_ID_CHARS + 1], *sub = NULL, *path = NULL;
            uint8_t id[MV__ID_BYTES];
            if ((st = pull(p, head + 1, MV_VAULT_ID_CHARS + 8, err)) != MV_OK)
                goto out;
            memcpy(oid, head + 1, MV_VAULT_ID_CHARS);
            oid[MV_VAULT_ID_CHARS] = '\0';
            if (mv__unhex(oid, strlen(oid), id, sizeof id) != 0) {
                st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "archive: malformed object id");
                goto out;
            }
            if (writing && (asprintf(&sub, "%s/%.2s", objects, oid) < 0 || asprintf(&path, "%s/%s", sub, oid) < 0)) {
                free(sub);
                st = nomem(err);
                goto out;
            }
            if (writing && mkdir(sub, 0700) != 0 && errno != EEXIST)
                st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create %s", sub);
            if (st == MV_OK)
                st = pull_to_file(p, path, unbe(head + 1 + MV_VAULT_ID_CHARS, 8), buf, digest, err);
            free(sub);
            free(path);
            if (st != MV_OK)
                goto out;
            EVP_DigestUpdate(manifest, "O", 1);
            EVP_DigestUpdate(manifest, oid, MV_VAULT_ID_CHARS);
            EVP_DigestUpdate(manifest, digest, sizeof digest);
            n++;
        } else if (head[0] == 'E' && have_index) {
            if ((st = pull(p, head + 1, 8, err)) != MV_OK || (st = pull(p, want, sizeof want, err)) != MV_OK)
                goto out;
            EVP_DigestFinal_ex(manifest, digest, NULL);
            if (unbe(head + 1, 8) != n || CRYPTO_memcmp(digest, want, sizeof digest) != 0) {
                st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                                  "archive: the manifest does not match its contents");
                goto out;
            }
            st = pull_end(p, err);
            break;
        } else {
            st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "archive: unexpected entry");
            goto out;
        }
    }
    *n_objects = n;
out:
    free(buf);
    free(objects);
    free(tmpdir);
    free(index);
    EVP_MD_CTX_free(manifest);
    return st;
}

static MvStatus restore_impl(const char *home, const char *path, const MvUnlock *how, int verify_only,
                             MvKeyring **kr_out, MvVaultBackupInfo *info, MvError *err)
{
    In in = {-1, NULL, 0};
    Puller p;
    MvKeyring *kr = NULL;
    uint8_t head[16], id[MV__ID_BYTES], key[32], clear_digest[32], raw[MV__BLOB_HEADER], *wrapped = NULL;
    char *keyring_dir = mv__path(home, "keyring"), *vault_dir = mv__path(home, "vault"), *staging = NULL;
    char ctx[64], hex[MV_VAULT_ID_CHARS + 1];
    int made_keyring = 0, made_staging = 0;
    struct stat sb;
    uint64_t wrapped_len;
    MvStatus st = MV_OK;

    memset(&p, 0, sizeof p);
    memset(info, 0, sizeof *info);
    if (kr_out != NULL)
        *kr_out = NULL;
    if (keyring_dir == NULL || vault_dir == NULL || asprintf(&staging, "%s/vault.restoring", home) < 0) {
        staging = NULL;
        st = nomem(err);
        goto out;
    }
    if (stat(keyring_dir, &sb) == 0 || stat(vault_dir, &sb) == 0) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                          "%s already holds a keyring or a vault: restore needs an empty home", home);
        goto out;
    }
    if ((in.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if ((in.md = EVP_MD_CTX_new()) == NULL) {
        st = nomem(err);
        goto out;
    }
    EVP_DigestInit_ex(in.md, EVP_sha256(), NULL);
    if ((st = in_clear(&in, head, 12, err)) != MV_OK)
        goto out;
    if (memcmp(head, ARCHIVE_MAGIC, 8) != 0 || unbe(head + 8, 2) != ARCHIVE_VERSION) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, 0, "%s is not a medveil vault backup (version 1)", path);
        goto out;
    }
    if (mkdir(home, 0700) != 0 && errno != EEXIST) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create %s: %s", home, strerror(errno));
        goto out;
    }
    made_keyring = 1;
    if ((st = restore_keyring(&in, keyring_dir, &info->n_keyring_files, err)) != MV_OK)
        goto out;
    if ((st = in_clear(&in, id, sizeof id, err)) != MV_OK || (st = in_clear(&in, head, 4, err)) != MV_OK)
        goto out;
    wrapped_len = unbe(head, 4);
    if (wrapped_len == 0 || wrapped_len > MAX_WRAPPED) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, in.off, "archive: bad wrapped key length");
        goto out;
    }
    if ((wrapped = malloc((size_t)wrapped_len)) == NULL) {
        st = nomem(err);
        goto out;
    }
    if ((st = in_clear(&in, wrapped, (size_t)wrapped_len, err)) != MV_OK)
        goto out;
    EVP_DigestFinal_ex(in.md, clear_digest, NULL);
    if ((st = mv_keyring_open(home, how, &kr, err)) != MV_OK)
        goto out;
    mv__hex(id, sizeof id, hex);
    snprintf(ctx, sizeof ctx, "vault-backup:%s", hex);
    if ((st = mv_keyring_unwrap(kr, wrapped, (size_t)wrapped_len, ctx, key, sizeof key, err)) != MV_OK) {
        mv_error_prefix(err, "archive key");
        goto out;
    }
    /* The encrypted part: a streamed blob whose id is the archive id. */
    {
        size_t got = 0;
        while (got < sizeof raw) {
            ssize_t r = read(in.fd, raw + got, sizeof raw - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got != sizeof raw) {
            st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, in.off, "archive cut short");
            goto out;
        }
    }
    if ((st = mv__blob_header_parse(&p.h, raw, id, err)) != MV_OK)
        goto out;
    if (p.h.length != MV__STREAMED) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, in.off, "archive: unexpected payload header");
        goto out;
    }
    p.fd = in.fd;
    p.key = key;
    p.ctx = EVP_CIPHER_CTX_new();
    p.in = malloc((size_t)p.h.chunk_size + MV__TAG_BYTES);
    p.plain = malloc((size_t)p.h.chunk_size + MV__TAG_BYTES);
    if (p.ctx == NULL || p.in == NULL || p.plain == NULL) {
        st = nomem(err);
        goto out;
    }
    if (verify_only) {
        if ((st = restore_payload(&p, NULL, clear_digest, &info->n_objects, err)) == MV_OK && fstat(in.fd, &sb) == 0)
            info->bytes = (uint64_t)sb.st_size;
        goto out;
    }
    if (mkdir(staging, 0700) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create %s: %s", staging, strerror(errno));
        goto out;
    }
    made_staging = 1;
    if ((st = restore_payload(&p, staging, clear_digest, &info->n_objects, err)) != MV_OK)
        goto out;
    /* Everything authenticated: the vault appears in one rename. */
    {
        char *objects = mv__path(staging, "objects");
        DIR *d = objects != NULL ? opendir(objects) : NULL;
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char *sub = mv__path(objects, e->d_name);
            if (sub != NULL)
                mv__sync_dir(sub);
            free(sub);
        }
        if (d != NULL)
            closedir(d);
        if (objects != NULL)
            mv__sync_dir(objects);
        free(objects);
    }
    mv__sync_dir(staging);
    if (rename(staging, vault_dir) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot rename %s: %s", staging, strerror(errno));
        goto out;
    }
    made_staging = 0;
    mv__sync_dir(home);
    if (fstat(in.fd, &sb) == 0)
        info->bytes = (uint64_t)sb.st_size;
out:
    OPENSSL_cleanse(key, sizeof key);
    if (p.plain != NULL)
        OPENSSL_cleanse(p.plain, (size_t)p.h.chunk_size + MV__TAG_BYTES);
    free(p.in);
    free(p.plain);
    EVP_CIPHER_CTX_free(p.ctx);
    if (in.fd >= 0)
        close(in.fd);
    EVP_MD_CTX_free(in.md);
    free(wrapped);
    if (st != MV_OK) {
        mv_keyring_close(kr);
        kr = NULL;
        if (made_staging)
            remove_tree(staging);
        if (made_keyring)
            remove_tree(keyring_dir);
    }
    if (kr_out != NULL)
        *kr_out = kr;
    else
        mv_keyring_close(kr);
    free(keyring_dir);
    free(vault_dir);
    free(staging);
    return st;
}

MvStatus mv_vault_restore(const char *home, const char *path, const MvUnlock *how, MvKeyring **kr_out,
                          MvVaultBackupInfo *info, MvError *err)
{
    return restore_impl(home, path, how, 0, kr_out, info, err);
}

MvStatus mv_vault_verify_backup(const char *path, const MvUnlock *how, MvVaultBackupInfo *info, MvError *err)
{
    const char *base = getenv("TMPDIR");
    char *home = NULL;
    MvStatus st;

    /* The archive's keyring is unlocked from a private temporary copy, removed afterwards. */
    if (asprintf(&home, "%s/medveil-verify-XXXXXX", base != NULL && base[0] != '\0' ? base : "/tmp") < 0)
        return nomem(err);
    if (mkdtemp(home) == NULL) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create a temporary folder: %s",
                          strerror(errno));
        free(home);
        return st;
    }
    st = restore_impl(home, path, how, 1, NULL, info, err);
    remove_tree(home);
    free(home);
    return st;
}
