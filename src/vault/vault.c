/* The vault's store: the folder (objects/, tmp/, lock), the SQLite index and its schema, the
 * key hierarchy (object data key -> KEK wrap -> patient key seal; patient key -> KEK wrap),
 * crash recovery, and the operations that store, read and destroy objects. Listing, rotation,
 * fsck and backups live in admin.c and backup.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "medveil/dicom.h"
#include "vault/vault_int.h"

static const char *const schema_sql =
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE patient("
    "  id INTEGER PRIMARY KEY,"
    "  ref TEXT NOT NULL UNIQUE,"
    "  identity BLOB NOT NULL UNIQUE,"
    "  bi_id BLOB NOT NULL,"
    "  bi_name BLOB NOT NULL,"
    "  wrapped_key BLOB NOT NULL,"
    "  display BLOB NOT NULL);"
    "CREATE INDEX patient_bi_id ON patient(bi_id);"
    "CREATE INDEX patient_bi_name ON patient(bi_name);"
    "CREATE TABLE study("
    "  id INTEGER PRIMARY KEY,"
    "  patient INTEGER NOT NULL REFERENCES patient(id) ON DELETE CASCADE,"
    "  bi_uid BLOB NOT NULL,"
    "  display BLOB NOT NULL,"
    "  UNIQUE(patient, bi_uid));"
    "CREATE INDEX study_bi_uid ON study(bi_uid);"
    "CREATE TABLE series("
    "  id INTEGER PRIMARY KEY,"
    "  study INTEGER NOT NULL REFERENCES study(id) ON DELETE CASCADE,"
    "  bi_uid BLOB NOT NULL,"
    "  display BLOB NOT NULL,"
    "  UNIQUE(study, bi_uid));"
    "CREATE TABLE instance("
    "  id INTEGER PRIMARY KEY,"
    "  series INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,"
    "  bi_uid BLOB NOT NULL UNIQUE,"
    "  object TEXT NOT NULL UNIQUE,"
    "  size INTEGER NOT NULL,"
    "  wrapped_key BLOB NOT NULL,"
    "  display BLOB NOT NULL);"
    "CREATE INDEX instance_series ON instance(series);"
    "INSERT INTO meta VALUES('format', 'medveil-vault-1');";

/* ---- Small helpers ---------------------------------------------------------------- */

char *mv__path(const char *a, const char *b)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", a, b) < 0)
        return NULL;
    return p;
}

MvStatus mv__db_error(MvVault *v, MvError *err, const char *what)
{
    int code = sqlite3_errcode(v->db);
    MvStatus st = (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) ? MV_ERR_INTEGRITY : MV_ERR_IO;
    return mv_error_set(err, st, MV_NO_TAG, MV_NO_OFFSET, "vault index: %s: %s", what, sqlite3_errmsg(v->db));
}

MvStatus mv__db_exec(MvVault *v, const char *sql, MvError *err)
{
    if (sqlite3_exec(v->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return mv__db_error(v, err, sql);
    return MV_OK;
}

MvStatus mv__db_prepare(MvVault *v, const char *sql, sqlite3_stmt **stmt, MvError *err)
{
    if (sqlite3_prepare_v2(v->db, sql, -1, stmt, NULL) != SQLITE_OK) {
        *stmt = NULL;
        return mv__db_error(v, err, "prepare");
    }
    return MV_OK;
}

static MvStatus random_bytes(uint8_t *out, size_t n, MvError *err)
{
    if (RAND_bytes(out, (int)n) != 1)
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "the random generator failed");
    return MV_OK;
}

static MvStatus sys_error(MvError *err, const char *what, const char *path)
{
    return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s %s: %s", what, path, strerror(errno));
}

char *mv__object_path(const MvVault *v, const char *oid)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%.2s/%s", v->objects, oid, oid) < 0)
        return NULL;
    return p;
}

char *mv__part_path(const MvVault *v, const char *oid)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s.part", v->tmp, oid) < 0)
        return NULL;
    return p;
}

/* ---- Opening -------------------------------------------------------------------------- */

int mv_vault_exists(const char *home)
{
    char *p = NULL;
    struct stat sb;
    int yes;

    if (asprintf(&p, "%s/vault/index.sqlite", home) < 0)
        return 0;
    yes = stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
    free(p);
    return yes;
}

static MvStatus open_db(MvVault *v, int create, MvError *err)
{
    char *path = mv__path(v->dir, "index.sqlite");
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    MvStatus st = MV_OK;

    if (path == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    if (create) {
        /* SQLite would create the file 0644; the -wal and -shm files copy its mode. */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            st = sys_error(err, "cannot create", path);
            goto out;
        }
        close(fd);
    }
    if (sqlite3_open_v2(path, &v->db, flags, NULL) != SQLITE_OK) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot open the vault index %s", path);
        goto out;
    }
    sqlite3_busy_timeout(v->db, 30000);
    /* WAL: readers (get, ls) go on while a put runs; FULL: a commit is durable when it returns;
     * secure_delete: destroyed rows (wrapped keys) are overwritten, not just unlinked. */
    if ((st = mv__db_exec(v, "PRAGMA journal_mode=WAL", err)) != MV_OK ||
        (st = mv__db_exec(v, "PRAGMA synchronous=FULL", err)) != MV_OK ||
        (st = mv__db_exec(v, "PRAGMA secure_delete=ON", err)) != MV_OK ||
        (st = mv__db_exec(v, "PRAGMA foreign_keys=ON", err)) != MV_OK ||
        (st = mv__db_exec(v, "PRAGMA temp_store=MEMORY", err)) != MV_OK)
        goto out;
    if (create) {
        if ((st = mv__db_exec(v, "BEGIN", err)) != MV_OK)
            goto out;
        if ((st = mv__db_exec(v, schema_sql, err)) != MV_OK || (st = mv__db_exec(v, "COMMIT", err)) != MV_OK) {
            sqlite3_exec(v->db, "ROLLBACK", NULL, NULL, NULL);
            goto out;
        }
    } else {
        sqlite3_stmt *q = NULL;
        int ok = 0;
        if (sqlite3_prepare_v2(v->db, "SELECT value FROM meta WHERE name='format'", -1, &q, NULL) == SQLITE_OK &&
            sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0) != NULL &&
            strcmp((const char *)sqlite3_column_text(q, 0), "medveil-vault-1") == 0)
            ok = 1;
        sqlite3_finalize(q);
        if (!ok) {
            st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                              "%s is not a medveil vault index (format 1), or it is damaged", path);
            goto out;
        }
    }
out:
    free(path);
    return st;
}

static MvStatus vault_new(const char *home, MvKeyring *kr, MvVault **out, MvError *err)
{
    MvVault *v = calloc(1, sizeof *v);
    MvStatus st;

    *out = NULL;
    if (v == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    v->lock_fd = -1;
    v->kr = kr;
    v->home = strdup(home);
    v->dir = mv__path(home, "vault");
    v->objects = v->dir != NULL ? mv__path(v->dir, "objects") : NULL;
    v->tmp = v->dir != NULL ? mv__path(v->dir, "tmp") : NULL;
    v->ctx = EVP_CIPHER_CTX_new();
    if (v->home == NULL || v->dir == NULL || v->objects == NULL || v->tmp == NULL || v->ctx == NULL) {
        mv_vault_close(v);
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    if ((st = mv_keyring_named_key(kr, "blind-index", v->bi_key, err)) != MV_OK ||
        (st = mv_keyring_named_key(kr, "display", v->disp_key, err)) != MV_OK) {
        mv_vault_close(v);
        return st;
    }
    *out = v;
    return MV_OK;
}

MvStatus mv_vault_create(const char *home, MvKeyring *kr, MvError *err)
{
    MvVault *v = NULL;
    MvStatus st;

    if (mv_vault_exists(home))
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s/vault already holds a vault", home);
    if ((st = vault_new(home, kr, &v, err)) != MV_OK)
        return st;
    if (mkdir(home, 0700) != 0 && errno != EEXIST) {
        st = sys_error(err, "cannot create", home);
        goto out;
    }
    if ((mkdir(v->dir, 0700) != 0 && errno != EEXIST) || (mkdir(v->objects, 0700) != 0 && errno != EEXIST) ||
        (mkdir(v->tmp, 0700) != 0 && errno != EEXIST)) {
        st = sys_error(err, "cannot create folders under", v->dir);
        goto out;
    }
    if ((st = open_db(v, 1, err)) != MV_OK)
        goto out;
    if (mv__sync_dir(v->dir) != 0 || mv__sync_dir(home) != 0)
        st = sys_error(err, "cannot sync", v->dir);
out:
    mv_vault_close(v);
    return st;
}

/* ---- Crash recovery (docs/vault.md "Crash safety") --------------------------------------
 * Before blobs are renamed into objects/ (put) or unlinked (rm, forget-patient), their ids are
 * written to a synced intent file tmp/intent-*. An id listed there whose row is not in the
 * index after a crash belongs to work that never committed: its blob goes. Every other file of
 * tmp/ is a blob that was never renamed, and goes too. None of them holds plaintext. */

int mv__object_in_index(MvVault *v, const char *oid)
{
    sqlite3_stmt *q = NULL;
    int found = -1;

    if (sqlite3_prepare_v2(v->db, "SELECT 1 FROM instance WHERE object=?", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, oid, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(q);
    return found;
}

static MvStatus recover(MvVault *v, MvError *err)
{
    DIR *d = opendir(v->tmp);
    struct dirent *e;
    MvStatus st = MV_OK;
    int changed = 0;

    if (d == NULL)
        return sys_error(err, "cannot read", v->tmp);
    /* Intents first, while the .part files they may name are still there. */
    while ((e = readdir(d)) != NULL) {
        char *path, line[128];
        FILE *f;
        if (strncmp(e->d_name, "intent-", 7) != 0)
            continue;
        if ((path = mv__path(v->tmp, e->d_name)) == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            break;
        }
        f = fopen(path, "r");
        while (f != NULL && fgets(line, sizeof line, f) != NULL) {
            uint8_t id[MV__ID_BYTES];
            line[strcspn(line, "\r\n")] = '\0';
            if (mv__unhex(line, strlen(line), id, sizeof id) != 0)
                continue;
            int in_index = mv__object_in_index(v, line);
            if (in_index < 0) {
                st = mv__db_error(v, err, "recovery");
                break;
            }
            if (in_index == 0) {
                char *obj = mv__object_path(v, line), *part = mv__part_path(v, line);
                int gone_obj = obj != NULL && unlink(obj) == 0;
                int gone_part = part != NULL && unlink(part) == 0;
                if (gone_obj || gone_part)
                    v->n_rolled_back++;
                free(obj);
                free(part);
            }
        }
        if (f != NULL)
            fclose(f);
        if (st == MV_OK)
            unlink(path);
        free(path);
        changed = 1;
        if (st != MV_OK)
            break;
    }
    closedir(d);
    if (st != MV_OK)
        return st;
    if ((d = opendir(v->tmp)) == NULL)
        return sys_error(err, "cannot read", v->tmp);
    while ((e = readdir(d)) != NULL) {
        char *path;
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0')))
            continue;
        if ((path = mv__path(v->tmp, e->d_name)) != NULL && unlink(path) == 0) {
            v->n_temp_removed++;
            changed = 1;
        }
        free(path);
    }
    closedir(d);
    if (changed) {
        char *ab;
        mv__sync_dir(v->tmp);
        /* Removed blobs may be anywhere under objects/: sync them all (rare: after a crash). */
        if ((d = opendir(v->objects)) != NULL) {
            while ((e = readdir(d)) != NULL) {
                if (strlen(e->d_name) == 2 && (ab = mv__path(v->objects, e->d_name)) != NULL) {
                    mv__sync_dir(ab);
                    free(ab);
                }
            }
            closedir(d);
        }
    }
    return MV_OK;
}

MvStatus mv_vault_open(const char *home, MvKeyring *kr, unsigned flags, MvVault **out, MvError *err)
{
    MvVault *v = NULL;
    MvStatus st;
    struct stat sb;

    *out = NULL;
    if (!mv_vault_exists(home))
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET,
                            "no vault in %s (run 'medveil vault init' first)", home);
    if ((st = vault_new(home, kr, &v, err)) != MV_OK)
        return st;
    if (stat(v->objects, &sb) != 0 || !S_ISDIR(sb.st_mode) || stat(v->tmp, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "%s: objects/ or tmp/ is missing", v->dir);
        goto out;
    }
    if (flags & MV_VAULT_WRITE) {
        char *lock = mv__path(v->dir, "lock");
        v->lock_fd = lock != NULL ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
        free(lock);
        if (v->lock_fd < 0) {
            st = sys_error(err, "cannot open the lock of", v->dir);
            goto out;
        }
        /* One writer at a time; a second one waits. */
        while (flock(v->lock_fd, LOCK_EX) != 0) {
            if (errno != EINTR) {
                st = sys_error(err, "cannot lock", v->dir);
                goto out;
            }
        }
        v->writable = 1;
    }
    if ((st = open_db(v, 0, err)) != MV_OK)
        goto out;
    if (v->writable && (st = recover(v, err)) != MV_OK)
        goto out;
out:
    if (st != MV_OK) {
        mv_vault_close(v);
        return st;
    }
    *out = v;
    return MV_OK;
}

void mv_vault_recovered(const MvVault *v, unsigned *n_rolled_back, unsigned *n_temp_removed)
{
    if (n_rolled_back != NULL)
        *n_rolled_back = v->n_rolled_back;
    if (n_temp_removed != NULL)
        *n_temp_removed = v->n_temp_removed;
}

void mv_vault_set_progress(MvVault *v, MvVaultProgressFn fn, void *ctx)
{
    v->progress = fn;
    v->progress_ctx = ctx;
}

static void drop_pending(MvVault *v)
{
    for (size_t i = 0; i < v->n_pending; i++) {
        char *part = mv__part_path(v, v->pending[i].object_id);
        if (part != NULL)
            unlink(part);
        free(part);
    }
    v->n_pending = 0;
    v->pending_bytes = 0;
}

void mv__forget_keys(MvVault *v)
{
    if (v->pkeys != NULL)
        OPENSSL_cleanse(v->pkeys, v->n_pkeys * sizeof *v->pkeys);
    free(v->pkeys);
    v->pkeys = NULL;
    v->n_pkeys = v->cap_pkeys = 0;
}

void mv_vault_close(MvVault *v)
{
    if (v == NULL)
        return;
    if (v->in_batch) {
        sqlite3_exec(v->db, "ROLLBACK", NULL, NULL, NULL);
        drop_pending(v);
    }
    if (v->db != NULL)
        sqlite3_close(v->db);
    if (v->lock_fd >= 0)
        close(v->lock_fd); /* releases the lock */
    mv__forget_keys(v);
    OPENSSL_cleanse(v->bi_key, sizeof v->bi_key);
    OPENSSL_cleanse(v->disp_key, sizeof v->disp_key);
    EVP_CIPHER_CTX_free(v->ctx);
    free(v->pending);
    free(v->home);
    free(v->dir);
    free(v->objects);
    free(v->tmp);
    free(v);
}

/* ---- Keys ------------------------------------------------------------------------------- */

/* The patient key of row `row` (unwrapped once per run, kept until close). */
MvStatus mv__patient_key(MvVault *v, int64_t row, uint8_t key[32], MvError *err)
{
    sqlite3_stmt *q = NULL;
    MvStatus st;
    char ctx[64];

    for (size_t i = 0; i < v->n_pkeys; i++) {
        if (v->pkeys[i].row == row) {
            memcpy(key, v->pkeys[i].key, 32);
            return MV_OK;
        }
    }
    if ((st = mv__db_prepare(v, "SELECT ref, wrapped_key FROM patient WHERE id=?", &q, err)) != MV_OK)
        return st;
    sqlite3_bind_int64(q, 1, row);
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_finalize(q);
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "vault index: patient row %lld is missing",
                            (long long)row);
    }
    snprintf(ctx, sizeof ctx, "vault-patient:%s", (const char *)sqlite3_column_text(q, 0));
    st = mv_keyring_unwrap(v->kr, sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1), ctx, key, 32, err);
    sqlite3_finalize(q);
    if (st != MV_OK)
        return st;
    return mv__cache_patient_key(v, row, key, err);
}

MvStatus mv__cache_patient_key(MvVault *v, int64_t row, const uint8_t key[32], MvError *err)
{
    if (v->n_pkeys == v->cap_pkeys) {
        size_t cap = v->cap_pkeys ? v->cap_pkeys * 2 : 16;
        MvPatientKey *grown = malloc(cap * sizeof *grown);
        if (grown == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        if (v->n_pkeys > 0)
            memcpy(grown, v->pkeys, v->n_pkeys * sizeof *grown);
        if (v->pkeys != NULL)
            OPENSSL_cleanse(v->pkeys, v->n_pkeys * sizeof *v->pkeys);
        free(v->pkeys);
        v->pkeys = grown;
        v->cap_pkeys = cap;
    }
    v->pkeys[v->n_pkeys].row = row;
    memcpy(v->pkeys[v->n_pkeys].key, key, 32);
    v->n_pkeys++;
    return MV_OK;
}

MvStatus mv__wrap_object_key(MvVault *v, const uint8_t pkey[32], const char *oid, const uint8_t dek[32], uint8_t **out,
                             size_t *out_len, MvError *err)
{
    char ctx[64];
    uint8_t *kek_wrapped = NULL;
    size_t kek_len = 0;
    MvStatus st;

    snprintf(ctx, sizeof ctx, "vault-object:%s", oid);
    if ((st = mv_keyring_wrap(v->kr, dek, 32, ctx, &kek_wrapped, &kek_len, err)) != MV_OK)
        return st;
    st = mv__seal(pkey, "mv-vault-object-key", oid, strlen(oid), kek_wrapped, kek_len, out, out_len, err);
    free(kek_wrapped);
    return st;
}

MvStatus mv__unwrap_object_key(MvVault *v, const uint8_t pkey[32], const char *oid, const void *wrapped, size_t len,
                               uint8_t dek[32], uint32_t *kek_version, MvError *err)
{
    char ctx[64];
    uint8_t *kek_wrapped = NULL;
    size_t kek_len = 0;
    MvStatus st;

    snprintf(ctx, sizeof ctx, "vault-object:%s", oid);
    if ((st = mv__unseal(pkey, "mv-vault-object-key", oid, strlen(oid), wrapped, len, &kek_wrapped, &kek_len, err)) !=
        MV_OK)
        return st;
    if (kek_version != NULL)
        *kek_version = mv_keyring_wrapped_version(kek_wrapped, kek_len);
    st = mv_keyring_unwrap(v->kr, kek_wrapped, kek_len, ctx, dek, 32, err);
    OPENSSL_cleanse(kek_wrapped, kek_len);
    free(kek_wrapped);
    return st;
}

/* Looks up an instance by SOP Instance UID: its object id, size, patient row, wrapped key. */
MvStatus mv__find_instance(MvVault *v, const char *sop_uid, MvInstanceRow *row, MvError *err)
{
    sqlite3_stmt *q = NULL;
    uint8_t bi[32];
    MvStatus st;
    int rc;

    memset(row, 0, sizeof *row);
    mv__blind(v->bi_key, "sop-uid", sop_uid, strlen(sop_uid), bi);
    if ((st = mv__db_prepare(v,
                             "SELECT i.id, i.object, i.size, i.wrapped_key, st.patient, i.series FROM instance i"
                             " JOIN series se ON se.id = i.series JOIN study st ON st.id = se.study"
                             " WHERE i.bi_uid = ?",
                             &q, err)) != MV_OK)
        return st;
    sqlite3_bind_blob(q, 1, bi, sizeof bi, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(q);
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET,
                            "no object with that SOP Instance UID in the vault");
    }
    if (rc != SQLITE_ROW) {
        st = mv__db_error(v, err, "lookup");
        sqlite3_finalize(q);
        return st;
    }
    row->id = sqlite3_column_int64(q, 0);
    snprintf(row->object_id, sizeof row->object_id, "%s", (const char *)sqlite3_column_text(q, 1));
    row->size = (uint64_t)sqlite3_column_int64(q, 2);
    row->wrapped_len = (size_t)sqlite3_column_bytes(q, 3);
    row->wrapped = malloc(row->wrapped_len + 1);
    if (row->wrapped != NULL && row->wrapped_len > 0)
        memcpy(row->wrapped, sqlite3_column_blob(q, 3), row->wrapped_len);
    row->patient = sqlite3_column_int64(q, 4);
    row->series = sqlite3_column_int64(q, 5);
    sqlite3_finalize(q);
    if (row->wrapped == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    return MV_OK;
}

void mv__instance_row_clear(MvInstanceRow *row)
{
    free(row->wrapped);
    row->wrapped = NULL;
}

MvStatus mv__object_key(MvVault *v, const MvInstanceRow *row, uint8_t dek[32], MvError *err)
{
    uint8_t pkey[32];
    MvStatus st = mv__patient_key(v, row->patient, pkey, err);
    if (st == MV_OK)
        st = mv__unwrap_object_key(v, pkey, row->object_id, row->wrapped, row->wrapped_len, dek, NULL, err);
    OPENSSL_cleanse(pkey, sizeof pkey);
    if (st != MV_OK)
        mv_error_prefix(err, row->object_id);
    return st;
}

/* ---- Display values ------------------------------------------------------------------- */

MvStatus mv__seal_display(MvVault *v, const char *label, const void *aad, size_t aad_len, json_t *obj, uint8_t **out,
                          size_t *out_len, MvError *err)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    MvStatus st;

    if (text == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    st = mv__seal(v->disp_key, label, aad, aad_len, text, strlen(text), out, out_len, err);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return st;
}

json_t *mv__open_display(MvVault *v, const char *label, const void *aad, size_t aad_len, const void *sealed,
                         size_t len, MvError *err)
{
    uint8_t *text = NULL;
    size_t text_len = 0;
    json_t *obj;

    if (mv__unseal(v->disp_key, label, aad, aad_len, sealed, len, &text, &text_len, err) != MV_OK)
        return NULL;
    obj = json_loadb((const char *)text, text_len, 0, NULL);
    OPENSSL_cleanse(text, text_len);
    free(text);
    if (obj == NULL || !json_is_object(obj)) {
        json_decref(obj);
        mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "display record is not a JSON object");
        return NULL;
    }
    return obj;
}

/* ---- Put ------------------------------------------------------------------------------- */

typedef struct Attrs {
    char *patient_id, *issuer, *name, *birth, *sex;
    char *study_uid, *study_date, *study_time, *study_desc, *accession;
    char *series_uid, *modality, *series_number, *series_desc;
    char *sop_uid, *sop_class, *instance_number, *transfer_syntax;
} Attrs;

#define N_ATTRS (sizeof(Attrs) / sizeof(char *))

static void attrs_free(Attrs *a)
{
    char **p = (char **)a;
    for (size_t i = 0; i < N_ATTRS; i++) {
        if (p[i] != NULL) {
            OPENSSL_cleanse(p[i], strlen(p[i]));
            free(p[i]);
        }
    }
    memset(a, 0, sizeof *a);
}

static char *get_text(const MvDataset *ds, uint32_t tag)
{
    char *s = NULL;
    if (mv_dataset_get_string(ds, tag, &s, NULL) != MV_OK || s == NULL) {
        free(s);
        return strdup("");
    }
    return s;
}

static MvStatus read_attrs(MvFile *file, Attrs *a, MvError *err)
{
    const MvDataset *ds = mv_file_dataset(file);
    char **p = (char **)a;
    const MvTransferSyntax *ts = mv_file_transfer_syntax(file);

    a->patient_id = get_text(ds, MV_TAG(0x0010, 0x0020));
    a->issuer = get_text(ds, MV_TAG(0x0010, 0x0021));
    a->name = get_text(ds, MV_TAG(0x0010, 0x0010));
    a->birth = get_text(ds, MV_TAG(0x0010, 0x0030));
    a->sex = get_text(ds, MV_TAG(0x0010, 0x0040));
    a->study_uid = get_text(ds, MV_TAG(0x0020, 0x000D));
    a->study_date = get_text(ds, MV_TAG(0x0008, 0x0020));
    a->study_time = get_text(ds, MV_TAG(0x0008, 0x0030));
    a->study_desc = get_text(ds, MV_TAG(0x0008, 0x1030));
    a->accession = get_text(ds, MV_TAG(0x0008, 0x0050));
    a->series_uid = get_text(ds, MV_TAG(0x0020, 0x000E));
    a->modality = get_text(ds, MV_TAG(0x0008, 0x0060));
    a->series_number = get_text(ds, MV_TAG(0x0020, 0x0011));
    a->series_desc = get_text(ds, MV_TAG(0x0008, 0x103E));
    a->sop_uid = get_text(ds, MV_TAG(0x0008, 0x0018));
    a->sop_class = get_text(ds, MV_TAG(0x0008, 0x0016));
    a->instance_number = get_text(ds, MV_TAG(0x0020, 0x0013));
    a->transfer_syntax = strdup(ts != NULL && ts->uid != NULL ? ts->uid : "");
    for (size_t i = 0; i < N_ATTRS; i++)
        if (p[i] == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    /* The Media Storage SOP Instance UID stands in for a dataset without one. */
    if (a->sop_uid[0] == '\0') {
        free(a->sop_uid);
        a->sop_uid = get_text(mv_file_meta(file), MV_TAG(0x0002, 0x0003));
        if (a->sop_uid == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    if (a->sop_uid[0] == '\0')
        return mv_error_set(err, MV_ERR_ARG, MV_TAG(0x0008, 0x0018), MV_NO_OFFSET,
                            "no SOP Instance UID (0008,0018): the vault cannot store it under a key");
    if (strlen(a->sop_uid) > 64)
        return mv_error_set(err, MV_ERR_ARG, MV_TAG(0x0008, 0x0018), MV_NO_OFFSET,
                            "SOP Instance UID (0008,0018) longer than 64 characters");
    return MV_OK;
}

static json_t *jobj(const char *const *kv)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && kv[i] != NULL; i += 2)
        json_object_set_new(o, kv[i], json_string(kv[i + 1]));
    return o;
}

/* Returns the row id of the patient of a, inserting it (with a new key) when new. */
static MvStatus patient_row(MvVault *v, const Attrs *a, int64_t *row, MvError *err)
{
    sqlite3_stmt *q = NULL;
    char *nid = mv__normalize_id(a->patient_id), *nname = mv__normalize_name(a->name);
    char *ident_src = NULL;
    uint8_t identity[32], bi_id[32], bi_name[32], pkey[32], refb[MV__ID_BYTES];
    uint8_t *wrapped = NULL, *display = NULL;
    size_t wrapped_len = 0, display_len = 0;
    char ref[MV_VAULT_ID_CHARS + 1], ctx[64];
    json_t *obj = NULL;
    MvStatus st = MV_OK;
    int rc, n;

    if (nid == NULL || nname == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    /* Who the patient is: issuer and ID; without an ID, name and birth date. */
    if (nid[0] != '\0')
        n = asprintf(&ident_src, "id%c%s%c%s", 0, a->issuer, 0, nid);
    else
        n = asprintf(&ident_src, "name%c%s%c%s", 0, nname, 0, a->birth);
    if (n < 0) {
        ident_src = NULL;
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    mv__blind(v->bi_key, "patient", ident_src, (size_t)n, identity);
    OPENSSL_cleanse(ident_src, (size_t)n);
    if ((st = mv__db_prepare(v, "SELECT id FROM patient WHERE identity=?", &q, err)) != MV_OK)
        goto out;
    sqlite3_bind_blob(q, 1, identity, 32, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *row = sqlite3_column_int64(q, 0);
        goto out;
    }
    if (rc != SQLITE_DONE) {
        st = mv__db_error(v, err, "patient lookup");
        goto out;
    }
    sqlite3_finalize(q);
    q = NULL;
    mv__blind(v->bi_key, "patient-id", nid, strlen(nid), bi_id);
    mv__blind(v->bi_key, "patient-name", nname, strlen(nname), bi_name);
    if ((st = random_bytes(refb, sizeof refb, err)) != MV_OK || (st = random_bytes(pkey, sizeof pkey, err)) != MV_OK)
        goto out;
    mv__hex(refb, sizeof refb, ref);
    snprintf(ctx, sizeof ctx, "vault-patient:%s", ref);
    if ((st = mv_keyring_wrap(v->kr, pkey, 32, ctx, &wrapped, &wrapped_len, err)) != MV_OK)
        goto out;
    {
        const char *kv[] = {"id", a->patient_id, "issuer", a->issuer, "name", a->name,
                            "birth_date", a->birth, "sex", a->sex, NULL};
        obj = jobj(kv);
    }
    if (obj == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if ((st = mv__seal_display(v, "mv-vault-patient", ref, strlen(ref), obj, &display, &display_len, err)) != MV_OK)
        goto out;
    if ((st = mv__db_prepare(v,
                             "INSERT INTO patient(ref, identity, bi_id, bi_name, wrapped_key, display)"
                             " VALUES(?,?,?,?,?,?)",
                             &q, err)) != MV_OK)
        goto out;
    sqlite3_bind_text(q, 1, ref, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, identity, 32, SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, bi_id, 32, SQLITE_STATIC);
    sqlite3_bind_blob(q, 4, bi_name, 32, SQLITE_STATIC);
    sqlite3_bind_blob(q, 5, wrapped, (int)wrapped_len, SQLITE_STATIC);
    sqlite3_bind_blob(q, 6, display, (int)display_len, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) {
        st = mv__db_error(v, err, "insert patient");
        goto out;
    }
    *row = sqlite3_last_insert_rowid(v->db);
    st = mv__cache_patient_key(v, *row, pkey, err);
out:
    sqlite3_finalize(q);
    json_decref(obj);
    OPENSSL_cleanse(pkey, sizeof pkey);
    free(wrapped);
    free(display);
    free(ident_src);
    if (nid != NULL)
        OPENSSL_cleanse(nid, strlen(nid));
    if (nname != NULL)
        OPENSSL_cleanse(nname, strlen(nname));
    free(nid);
    free(nname);
    return st;
}

/* The row of a study (kind "study", parent = patient row) or series (kind "series", parent =
 * study row), inserted when new. */
static MvStatus level_row(MvVault *v, int is_series, int64_t parent, const char *uid, const char *const *kv,
                          int64_t *row, MvError *err)
{
    sqlite3_stmt *q = NULL;
    uint8_t bi[32], *display = NULL;
    size_t display_len = 0;
    json_t *obj = NULL;
    MvStatus st = MV_OK;
    int rc;

    mv__blind(v->bi_key, is_series ? "series-uid" : "study-uid", uid, strlen(uid), bi);
    if ((st = mv__db_prepare(v,
                             is_series ? "SELECT id FROM series WHERE study=? AND bi_uid=?"
                                       : "SELECT id FROM study WHERE patient=? AND bi_uid=?",
                             &q, err)) != MV_OK)
        return st;
    sqlite3_bind_int64(q, 1, parent);
    sqlite3_bind_blob(q, 2, bi, 32, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *row = sqlite3_column_int64(q, 0);
        goto out;
    }
    if (rc != SQLITE_DONE) {
        st = mv__db_error(v, err, "lookup");
        goto out;
    }
    sqlite3_finalize(q);
    q = NULL;
    if ((obj = jobj(kv)) == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if ((st = mv__seal_display(v, is_series ? "mv-vault-series" : "mv-vault-study", bi, sizeof bi, obj, &display,
                               &display_len, err)) != MV_OK)
        goto out;
    if ((st = mv__db_prepare(v,
                             is_series ? "INSERT INTO series(study, bi_uid, display) VALUES(?,?,?)"
                                       : "INSERT INTO study(patient, bi_uid, display) VALUES(?,?,?)",
                             &q, err)) != MV_OK)
        goto out;
    sqlite3_bind_int64(q, 1, parent);
    sqlite3_bind_blob(q, 2, bi, 32, SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, display, (int)display_len, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) {
        st = mv__db_error(v, err, "insert");
        goto out;
    }
    *row = sqlite3_last_insert_rowid(v->db);
out:
    sqlite3_finalize(q);
    json_decref(obj);
    free(display);
    return st;
}

typedef struct CmpCtx {
    const uint8_t *data;
    size_t len, at;
    int differs;
} CmpCtx;

static int compare_chunk(const uint8_t *chunk, size_t len, void *arg)
{
    CmpCtx *c = arg;
    if (c->at + len > c->len || memcmp(c->data + c->at, chunk, len) != 0)
        c->differs = 1;
    c->at += len;
    return c->differs; /* stop at the first difference */
}

/* The stored object already holding this SOP Instance UID: the same bytes or not. */
static MvStatus compare_existing(MvVault *v, const MvInstanceRow *row, const uint8_t *data, size_t len, int *same,
                                 MvError *err)
{
    uint8_t dek[32];
    uint8_t id[MV__ID_BYTES];
    CmpCtx c = {data, len, 0, 0};
    char *path = NULL;
    int fd = -1;
    MvStatus st;

    *same = 0;
    if (row->size != len)
        return MV_OK;
    if ((st = mv__object_key(v, row, dek, err)) != MV_OK)
        return st;
    mv__unhex(row->object_id, strlen(row->object_id), id, sizeof id);
    /* A twin staged in this batch is still in tmp/. */
    for (size_t i = 0; i < v->n_pending; i++)
        if (strcmp(v->pending[i].object_id, row->object_id) == 0)
            path = mv__part_path(v, row->object_id);
    if (path == NULL)
        path = mv__object_path(v, row->object_id);
    if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        st = path == NULL ? mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory")
                          : mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "object %s: blob missing",
                                         row->object_id);
        goto out;
    }
    st = mv__blob_decrypt_fd(fd, dek, id, NULL, compare_chunk, &c, err);
    if (st != MV_OK && c.differs) {
        st = MV_OK; /* stopped on purpose */
    } else if (st == MV_OK) {
        *same = !c.differs && c.at == len;
    }
out:
    if (fd >= 0)
        close(fd);
    free(path);
    OPENSSL_cleanse(dek, sizeof dek);
    return st;
}

static MvStatus write_part(MvVault *v, const char *oid, const uint8_t id[MV__ID_BYTES], const uint8_t dek[32],
                           const uint8_t *data, size_t len, MvError *err)
{
    MvSealer s;
    MvBlobHeader h;
    char *path = mv__part_path(v, oid);
    int fd = -1;
    MvStatus st;

    memset(&s, 0, sizeof s);
    if (path == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        st = sys_error(err, "cannot create", path);
        goto out;
    }
    if ((st = mv__blob_header_make(&h, id, v->chunk_size ? v->chunk_size : MV__CHUNK_DEFAULT, len, err)) != MV_OK ||
        (st = mv__sealer_start(&s, dek, &h, fd, err)) != MV_OK || (st = mv__sealer_write(&s, data, len, err)) != MV_OK ||
        (st = mv__sealer_finish(&s, err)) != MV_OK)
        goto out;
    /* Start writing back now; the batch's flush waits for it. */
    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
out:
    mv__sealer_free(&s);
    if (fd >= 0 && close(fd) != 0 && st == MV_OK)
        st = sys_error(err, "cannot write", path);
    if (st != MV_OK && fd >= 0)
        unlink(path);
    free(path);
    return st;
}

static int looks_like_dicom(const uint8_t *p, size_t n)
{
    if (n >= 132 && memcmp(p + 128, "DICM", 4) == 0)
        return 1;
    if (n >= 4 && memcmp(p, "DICM", 4) == 0)
        return 1;
    return n >= 8 && (p[0] == 0x02 || p[0] == 0x08) && p[1] == 0x00;
}

MvStatus mv_vault_put_memory(MvVault *v, const void *data, size_t len, const char *name, MvVaultPut *res,
                             MvError *err)
{
    MvFile *file = NULL;
    Attrs a;
    MvReadOptions ropts;
    MvInstanceRow existing;
    int64_t patient = 0, study = 0, series = 0;
    uint8_t id[MV__ID_BYTES], dek[32], pkey[32], bi[32];
    uint8_t *wrapped = NULL, *display = NULL;
    size_t wrapped_len = 0, display_len = 0;
    char oid[MV_VAULT_ID_CHARS + 1];
    sqlite3_stmt *q = NULL;
    json_t *obj = NULL;
    int savepoint = 0, part_written = 0;
    MvStatus st;

    memset(&a, 0, sizeof a);
    memset(&existing, 0, sizeof existing);
    memset(res, 0, sizeof *res);
    if (!v->writable)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "vault opened read-only");
    if ((uint64_t)len > MV__OBJECT_MAX)
        return mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "%s: larger than the vault's object limit",
                            name);
    if (!looks_like_dicom(data, len))
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, 0,
                            "%s: not a DICOM file (no DICM marker at offset 128, no dataset at offset 0)", name);
    mv_read_options_init(&ropts);
    if ((st = mv_file_from_memory(data, len, name, &ropts, &file, err)) != MV_OK) {
        if (st != MV_ERR_NOMEM)
            st = MV_ERR_PARSE;
        if (err != NULL)
            err->code = st;
        goto out;
    }
    if ((st = read_attrs(file, &a, err)) != MV_OK) {
        mv_error_prefix(err, name);
        goto out;
    }
    snprintf(res->sop_uid, sizeof res->sop_uid, "%s", a.sop_uid);
    res->size = len;
    if (!v->in_batch) {
        if ((st = mv__db_exec(v, "BEGIN IMMEDIATE", err)) != MV_OK)
            goto out;
        v->in_batch = 1;
    }
    /* Already stored (committed, or staged earlier in this batch)? */
    st = mv__find_instance(v, a.sop_uid, &existing, err);
    if (st == MV_OK) {
        int same = 0;
        if ((st = compare_existing(v, &existing, data, len, &same, err)) != MV_OK)
            goto out;
        res->outcome = same ? MV_VAULT_ALREADY : MV_VAULT_CONFLICT;
        snprintf(res->object_id, sizeof res->object_id, "%s", existing.object_id);
        goto out;
    }
    if (st != MV_ERR_NOTFOUND)
        goto out;
    mv_error_clear(err);
    if ((st = mv__db_exec(v, "SAVEPOINT put_one", err)) != MV_OK)
        goto out;
    savepoint = 1;
    if ((st = patient_row(v, &a, &patient, err)) != MV_OK)
        goto out;
    {
        const char *kv[] = {"uid", a.study_uid, "date", a.study_date, "time", a.study_time,
                            "description", a.study_desc, "accession", a.accession, NULL};
        if ((st = level_row(v, 0, patient, a.study_uid, kv, &study, err)) != MV_OK)
            goto out;
    }
    {
        const char *kv[] = {"uid", a.series_uid, "modality", a.modality, "number", a.series_number,
                            "description", a.series_desc, NULL};
        if ((st = level_row(v, 1, study, a.series_uid, kv, &series, err)) != MV_OK)
            goto out;
    }
    if ((st = random_bytes(id, sizeof id, err)) != MV_OK || (st = random_bytes(dek, sizeof dek, err)) != MV_OK)
        goto out;
    mv__hex(id, sizeof id, oid);
    if ((st = write_part(v, oid, id, dek, data, len, err)) != MV_OK)
        goto out;
    part_written = 1;
    if ((st = mv__patient_key(v, patient, pkey, err)) != MV_OK ||
        (st = mv__wrap_object_key(v, pkey, oid, dek, &wrapped, &wrapped_len, err)) != MV_OK)
        goto out;
    {
        const char *kv[] = {"uid", a.sop_uid, "class", a.sop_class, "number", a.instance_number,
                            "transfer_syntax", a.transfer_syntax, NULL};
        obj = jobj(kv);
    }
    if (obj == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if ((st = mv__seal_display(v, "mv-vault-instance", oid, strlen(oid), obj, &display, &display_len, err)) != MV_OK)
        goto out;
    mv__blind(v->bi_key, "sop-uid", a.sop_uid, strlen(a.sop_uid), bi);
    if ((st = mv__db_prepare(v,
                             "INSERT INTO instance(series, bi_uid, object, size, wrapped_key, display)"
                             " VALUES(?,?,?,?,?,?)",
                             &q, err)) != MV_OK)
        goto out;
    sqlite3_bind_int64(q, 1, series);
    sqlite3_bind_blob(q, 2, bi, 32, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, oid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)len);
    sqlite3_bind_blob(q, 5, wrapped, (int)wrapped_len, SQLITE_STATIC);
    sqlite3_bind_blob(q, 6, display, (int)display_len, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) {
        st = mv__db_error(v, err, "insert instance");
        goto out;
    }
    if (v->n_pending == v->cap_pending) {
        size_t cap = v->cap_pending ? v->cap_pending * 2 : 64;
        MvVaultPut *grown = realloc(v->pending, cap * sizeof *grown);
        if (grown == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            goto out;
        }
        v->pending = grown;
        v->cap_pending = cap;
    }
    res->outcome = MV_VAULT_STORED;
    snprintf(res->object_id, sizeof res->object_id, "%s", oid);
    v->pending[v->n_pending++] = *res;
    v->pending_bytes += len;
    st = MV_OK;
out:
    sqlite3_finalize(q);
    if (savepoint) {
        if (st != MV_OK)
            sqlite3_exec(v->db, "ROLLBACK TO put_one", NULL, NULL, NULL);
        sqlite3_exec(v->db, "RELEASE put_one", NULL, NULL, NULL);
    }
    if (st != MV_OK && part_written) {
        char *part = mv__part_path(v, oid);
        if (part != NULL)
            unlink(part);
        free(part);
    }
    if (st != MV_OK && patient != 0) {
        /* The patient row may have been rolled back: forget its cached key. */
        mv__forget_keys(v);
    }
    mv__instance_row_clear(&existing);
    json_decref(obj);
    free(wrapped);
    free(display);
    OPENSSL_cleanse(dek, sizeof dek);
    OPENSSL_cleanse(pkey, sizeof pkey);
    attrs_free(&a);
    mv_file_free(file);
    return st;
}

MvStatus mv_vault_put_file(MvVault *v, const char *path, MvVaultPut *res, MvError *err)
{
    struct stat sb;
    void *map = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    MvStatus st;
    static const uint8_t empty[1];

    memset(res, 0, sizeof *res);
    if (fd < 0)
        return sys_error(err, "cannot open", path);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: not a regular file", path);
    }
    if (sb.st_size > 0) {
        map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return sys_error(err, "cannot map", path);
        }
        madvise(map, (size_t)sb.st_size, MADV_SEQUENTIAL);
    }
    close(fd);
    st = mv_vault_put_memory(v, map != NULL ? map : empty, (size_t)sb.st_size, path, res, err);
    if (map != NULL)
        munmap(map, (size_t)sb.st_size);
    return st;
}

size_t mv_vault_pending(const MvVault *v, uint64_t *bytes)
{
    if (bytes != NULL)
        *bytes = v->pending_bytes;
    return v->n_pending;
}

/* Writes tmp/intent-RANDOM listing object ids, synced with its folder. *path is malloc'd. */
MvStatus mv__write_intent(MvVault *v, const char *ids, size_t n, size_t stride,
                          char **path_out, MvError *err)
{
    uint8_t rnd[8];
    char hex[17], *path = NULL;
    int fd = -1;
    MvStatus st = MV_OK;

    *path_out = NULL;
    if ((st = random_bytes(rnd, sizeof rnd, err)) != MV_OK)
        return st;
    mv__hex(rnd, sizeof rnd, hex);
    if (asprintf(&path, "%s/intent-%s", v->tmp, hex) < 0)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        st = sys_error(err, "cannot create", path);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *id = ids + i * stride;
        char line[MV_VAULT_ID_CHARS + 2];
        int k = snprintf(line, sizeof line, "%s\n", id);
        if (mv__write_all(fd, line, (size_t)k) != 0) {
            st = sys_error(err, "cannot write", path);
            goto out;
        }
    }
    if (fsync(fd) != 0 || mv__sync_dir(v->tmp) != 0)
        st = sys_error(err, "cannot sync", path);
out:
    if (fd >= 0)
        close(fd);
    if (st != MV_OK) {
        unlink(path);
        free(path);
        return st;
    }
    *path_out = path;
    return MV_OK;
}

static MvStatus flush_batch(MvVault *v, MvError *err)
{
    char *intent = NULL;
    char *synced_dirs = NULL; /* 256 flags: objects/ab touched */
    MvStatus st = MV_OK;
    int new_dir = 0;

    synced_dirs = calloc(256, 1);
    if (synced_dirs == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    /* 1. Every blob on disk: one syncfs for the whole batch (their writeback started when they
     * were written), else one fdatasync per blob. */
    {
        int fd = open(v->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int synced = fd >= 0 && syncfs(fd) == 0;
        if (fd >= 0)
            close(fd);
        for (size_t i = 0; !synced && i < v->n_pending && st == MV_OK; i++) {
            char *part = mv__part_path(v, v->pending[i].object_id);
            int pfd = part != NULL ? open(part, O_RDONLY | O_CLOEXEC) : -1;
            if (pfd < 0 || fdatasync(pfd) != 0)
                st = sys_error(err, "cannot sync", part != NULL ? part : "blob");
            if (pfd >= 0)
                close(pfd);
            free(part);
        }
    }
    if (st != MV_OK)
        goto out;
    /* 2. The intent, so that a crash from here on rolls the batch back cleanly. */
    if ((st = mv__write_intent(v, v->pending[0].object_id, v->n_pending, sizeof(MvVaultPut), &intent, err)) != MV_OK)
        goto out;
    /* 3. Blobs into place. */
    for (size_t i = 0; i < v->n_pending && st == MV_OK; i++) {
        const char *oid = v->pending[i].object_id;
        char *part = mv__part_path(v, oid), *obj = mv__object_path(v, oid);
        char ab[3] = {oid[0], oid[1], 0};
        unsigned slot = (unsigned)strtoul(ab, NULL, 16) & 255u;
        if (part == NULL || obj == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        } else {
            char *dir = mv__path(v->objects, ab);
            if (dir != NULL && mkdir(dir, 0700) == 0)
                new_dir = 1;
            free(dir);
            if (rename(part, obj) != 0)
                st = sys_error(err, "cannot move a blob to", obj);
            synced_dirs[slot] = 1;
        }
        free(part);
        free(obj);
    }
    if (st != MV_OK)
        goto out;
    /* 4. The renames durable: one syncfs, else every folder touched. */
    {
        int fd = open(v->objects, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int synced = fd >= 0 && syncfs(fd) == 0;
        if (fd >= 0)
            close(fd);
        for (unsigned slot = 0; !synced && slot < 256 && st == MV_OK; slot++) {
            if (!synced_dirs[slot])
                continue;
            char ab[3];
            snprintf(ab, sizeof ab, "%02x", slot);
            char *dir = mv__path(v->objects, ab);
            if (dir == NULL || mv__sync_dir(dir) != 0)
                st = sys_error(err, "cannot sync", dir != NULL ? dir : "objects");
            free(dir);
        }
        if (!synced && st == MV_OK && ((new_dir && mv__sync_dir(v->objects) != 0) || mv__sync_dir(v->tmp) != 0))
            st = sys_error(err, "cannot sync", v->objects);
    }
    if (st != MV_OK)
        goto out;
    /* 5. Commit: from here on the objects exist. */
    if ((st = mv__db_exec(v, "COMMIT", err)) != MV_OK)
        goto out;
    v->in_batch = 0;
    unlink(intent);
out:
    if (st != MV_OK) {
        sqlite3_exec(v->db, "ROLLBACK", NULL, NULL, NULL);
        v->in_batch = 0;
        for (size_t i = 0; i < v->n_pending; i++) {
            char *obj = mv__object_path(v, v->pending[i].object_id);
            if (obj != NULL)
                unlink(obj);
            free(obj);
        }
        drop_pending(v);
        if (intent != NULL)
            unlink(intent);
        mv__forget_keys(v);
    }
    free(intent);
    free(synced_dirs);
    return st;
}

MvStatus mv_vault_flush(MvVault *v, MvVaultAckFn fn, void *ctx, MvError *err)
{
    MvStatus st;

    if (!v->in_batch)
        return MV_OK;
    if (v->n_pending == 0) {
        v->in_batch = 0;
        return mv__db_exec(v, "COMMIT", err);
    }
    if ((st = flush_batch(v, err)) != MV_OK)
        return st;
    for (size_t i = 0; fn != NULL && i < v->n_pending; i++)
        fn(&v->pending[i], ctx);
    v->n_pending = 0;
    v->pending_bytes = 0;
    return MV_OK;
}

/* ---- Get -------------------------------------------------------------------------------- */

MvStatus mv_vault_lookup(MvVault *v, const char *sop_uid, char object_id[MV_VAULT_ID_CHARS + 1], uint64_t *size,
                         MvError *err)
{
    MvInstanceRow row;
    MvStatus st = mv__find_instance(v, sop_uid, &row, err);
    if (st == MV_OK) {
        if (object_id != NULL)
            snprintf(object_id, MV_VAULT_ID_CHARS + 1, "%s", row.object_id);
        if (size != NULL)
            *size = row.size;
    }
    mv__instance_row_clear(&row);
    return st;
}

static int write_chunk(const uint8_t *data, size_t len, void *arg)
{
    return mv__write_all(*(int *)arg, data, len);
}

MvStatus mv_vault_get(MvVault *v, const char *sop_uid, const char *out_path, MvError *err)
{
    return mv_vault_get_file(v, sop_uid, out_path, 0, err);
}

MvStatus mv_vault_get_file(MvVault *v, const char *sop_uid, const char *out_path, unsigned flags, MvError *err)
{
    MvInstanceRow row;
    uint8_t dek[32], id[MV__ID_BYTES];
    char *blob = NULL, *tmp = NULL;
    int in = -1, out = -1;
    MvBlobHeader h;
    MvStatus st;

    if ((st = mv__find_instance(v, sop_uid, &row, err)) != MV_OK)
        return st;
    if ((st = mv__object_key(v, &row, dek, err)) != MV_OK)
        goto out;
    mv__unhex(row.object_id, strlen(row.object_id), id, sizeof id);
    if ((blob = mv__object_path(v, row.object_id)) == NULL || asprintf(&tmp, "%s.mvtmp-XXXXXX", out_path) < 0) {
        tmp = NULL;
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if ((in = open(blob, O_RDONLY | O_CLOEXEC)) < 0) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "object %s: blob missing (%s)",
                          row.object_id, strerror(errno));
        goto out;
    }
    posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
    if ((out = mkstemp(tmp)) < 0) { /* mode 0600 */
        st = sys_error(err, "cannot create", tmp);
        free(tmp);
        tmp = NULL;
        goto out;
    }
    if ((st = mv__blob_decrypt_fd(in, dek, id, &h, write_chunk, &out, err)) != MV_OK) {
        mv_error_prefix(err, row.object_id);
        goto out;
    }
    if (h.length != row.size) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "object %s: size differs from the index",
                          row.object_id);
        goto out;
    }
    if ((!(flags & MV_VAULT_NO_SYNC) && fsync(out) != 0) || close(out) != 0) {
        out = -1;
        st = sys_error(err, "cannot write", tmp);
        goto out;
    }
    out = -1;
    if (rename(tmp, out_path) != 0) {
        st = sys_error(err, "cannot rename to", out_path);
        goto out;
    }
    free(tmp);
    tmp = NULL;
out:
    if (out >= 0)
        close(out);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    if (in >= 0)
        close(in);
    free(blob);
    OPENSSL_cleanse(dek, sizeof dek);
    mv__instance_row_clear(&row);
    return st;
}

MvStatus mv_vault_read(MvVault *v, const char *sop_uid, uint64_t offset, void *buf, size_t len, size_t *n_read,
                       MvError *err)
{
    MvInstanceRow row;
    uint8_t dek[32], id[MV__ID_BYTES];
    char *blob = NULL;
    int fd = -1;
    MvStatus st;

    *n_read = 0;
    if ((st = mv__find_instance(v, sop_uid, &row, err)) != MV_OK)
        return st;
    if ((st = mv__object_key(v, &row, dek, err)) != MV_OK)
        goto out;
    mv__unhex(row.object_id, strlen(row.object_id), id, sizeof id);
    if ((blob = mv__object_path(v, row.object_id)) == NULL || (fd = open(blob, O_RDONLY | O_CLOEXEC)) < 0) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "object %s: blob missing", row.object_id);
        goto out;
    }
    st = mv__blob_read_range(fd, dek, id, offset, buf, len, n_read, err);
    if (st != MV_OK)
        mv_error_prefix(err, row.object_id);
out:
    if (fd >= 0)
        close(fd);
    free(blob);
    OPENSSL_cleanse(dek, sizeof dek);
    mv__instance_row_clear(&row);
    return st;
}

/* ---- Destroying ----------------------------------------------------------------------- */

/* Unlinks the blobs of ids (stride bytes apart) and syncs their folders. */
void mv__unlink_blobs(MvVault *v, const char *ids, size_t n, size_t stride)
{
    char *touched = calloc(256, 1);
    for (size_t i = 0; i < n; i++) {
        const char *oid = ids + i * stride;
        char *obj = mv__object_path(v, oid);
        char ab[3] = {oid[0], oid[1], 0};
        if (obj != NULL)
            unlink(obj);
        free(obj);
        if (touched != NULL)
            touched[strtoul(ab, NULL, 16) & 255u] = 1;
    }
    for (unsigned slot = 0; touched != NULL && slot < 256; slot++) {
        if (!touched[slot])
            continue;
        char ab[3];
        snprintf(ab, sizeof ab, "%02x", slot);
        char *dir = mv__path(v->objects, ab);
        if (dir != NULL)
            mv__sync_dir(dir);
        free(dir);
    }
    free(touched);
}

/* Old page images of destroyed rows may still sit in the WAL: fold it into the database
 * (where secure_delete has overwritten them) and truncate it. */
void mv__checkpoint(MvVault *v)
{
    sqlite3_wal_checkpoint_v2(v->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

static const char prune_sql[] =
    "DELETE FROM series WHERE id NOT IN (SELECT series FROM instance);"
    "DELETE FROM study WHERE id NOT IN (SELECT study FROM series);"
    "DELETE FROM patient WHERE id NOT IN (SELECT patient FROM study);";

MvStatus mv_vault_rm(MvVault *v, const char *sop_uid, char object_id[MV_VAULT_ID_CHARS + 1], MvError *err)
{
    MvInstanceRow row;
    sqlite3_stmt *q = NULL;
    char *intent = NULL;
    MvStatus st;

    if (!v->writable || v->in_batch)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "vault not opened for writing");
    if ((st = mv__find_instance(v, sop_uid, &row, err)) != MV_OK)
        return st;
    if (object_id != NULL)
        snprintf(object_id, MV_VAULT_ID_CHARS + 1, "%s", row.object_id);
    if ((st = mv__write_intent(v, row.object_id, 1, sizeof row.object_id,
                               &intent, err)) != MV_OK)
        goto out;
    if ((st = mv__db_exec(v, "BEGIN IMMEDIATE", err)) != MV_OK)
        goto out;
    if ((st = mv__db_prepare(v, "DELETE FROM instance WHERE id=?", &q, err)) != MV_OK)
        goto rollback;
    sqlite3_bind_int64(q, 1, row.id);
    if (sqlite3_step(q) != SQLITE_DONE) {
        st = mv__db_error(v, err, "delete");
        goto rollback;
    }
    if ((st = mv__db_exec(v, prune_sql, err)) != MV_OK || (st = mv__db_exec(v, "COMMIT", err)) != MV_OK)
        goto rollback;
    mv__unlink_blobs(v, row.object_id, 1, sizeof row.object_id);
    unlink(intent);
    mv__forget_keys(v);
    mv__checkpoint(v);
    goto out;
rollback:
    sqlite3_exec(v->db, "ROLLBACK", NULL, NULL, NULL);
    unlink(intent);
out:
    sqlite3_finalize(q);
    free(intent);
    mv__instance_row_clear(&row);
    return st;
}

void mv_vault_forget_clear(MvVaultForget *res)
{
    if (res == NULL)
        return;
    free(res->patient_refs);
    free(res->object_ids);
    memset(res, 0, sizeof *res);
}

static MvStatus count_rows(MvVault *v, const char *sql, int64_t patient, size_t *n, MvError *err)
{
    sqlite3_stmt *q = NULL;
    MvStatus st = mv__db_prepare(v, sql, &q, err);
    if (st != MV_OK)
        return st;
    sqlite3_bind_int64(q, 1, patient);
    if (sqlite3_step(q) == SQLITE_ROW)
        *n += (size_t)sqlite3_column_int64(q, 0);
    else
        st = mv__db_error(v, err, "count");
    sqlite3_finalize(q);
    return st;
}

MvStatus mv_vault_forget_patient(MvVault *v, const char *patient_id, MvVaultForget *res, MvError *err)
{
    sqlite3_stmt *q = NULL, *objs = NULL, *del = NULL;
    char *nid = mv__normalize_id(patient_id), *intent = NULL;
    uint8_t bi[32];
    int64_t *rows = NULL;
    size_t n_rows = 0, cap_objs = 0;
    MvStatus st = MV_OK;
    int rc;

    memset(res, 0, sizeof *res);
    if (nid == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    if (!v->writable || v->in_batch) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "vault not opened for writing");
        goto out;
    }
    mv__blind(v->bi_key, "patient-id", nid, strlen(nid), bi);
    if ((st = mv__db_exec(v, "BEGIN IMMEDIATE", err)) != MV_OK)
        goto out;
    if ((st = mv__db_prepare(v, "SELECT id, ref FROM patient WHERE bi_id=? ORDER BY ref", &q, err)) != MV_OK)
        goto rollback;
    sqlite3_bind_blob(q, 1, bi, 32, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t *grown = realloc(rows, (n_rows + 1) * sizeof *rows);
        char(*refs)[MV_VAULT_ID_CHARS + 1] = realloc(res->patient_refs, (n_rows + 1) * sizeof *refs);
        if (grown != NULL)
            rows = grown;
        if (refs != NULL)
            res->patient_refs = refs;
        if (grown == NULL || refs == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            goto rollback;
        }
        rows[n_rows] = sqlite3_column_int64(q, 0);
        snprintf(res->patient_refs[n_rows], MV_VAULT_ID_CHARS + 1, "%s", (const char *)sqlite3_column_text(q, 1));
        n_rows++;
    }
    if (rc != SQLITE_DONE) {
        st = mv__db_error(v, err, "patient lookup");
        goto rollback;
    }
    res->n_patients = n_rows;
    if (n_rows == 0) {
        st = mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET, "no patient with that Patient ID in the vault");
        goto rollback;
    }
    if ((st = mv__db_prepare(v,
                             "SELECT i.object FROM instance i JOIN series se ON se.id = i.series"
                             " JOIN study st ON st.id = se.study WHERE st.patient=? ORDER BY i.object",
                             &objs, err)) != MV_OK)
        goto rollback;
    for (size_t p = 0; p < n_rows; p++) {
        if ((st = count_rows(v, "SELECT count(*) FROM study WHERE patient=?", rows[p], &res->n_studies, err)) !=
                MV_OK ||
            (st = count_rows(v, "SELECT count(*) FROM series se JOIN study st ON st.id=se.study WHERE st.patient=?",
                             rows[p], &res->n_series, err)) != MV_OK)
            goto rollback;
        sqlite3_reset(objs);
        sqlite3_bind_int64(objs, 1, rows[p]);
        while ((rc = sqlite3_step(objs)) == SQLITE_ROW) {
            if (res->n_objects == cap_objs) {
                size_t cap = cap_objs ? cap_objs * 2 : 64;
                char(*grown)[MV_VAULT_ID_CHARS + 1] = realloc(res->object_ids, cap * sizeof *grown);
                if (grown == NULL) {
                    st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                    goto rollback;
                }
                res->object_ids = grown;
                cap_objs = cap;
            }
            snprintf(res->object_ids[res->n_objects++], MV_VAULT_ID_CHARS + 1, "%s",
                     (const char *)sqlite3_column_text(objs, 0));
        }
        if (rc != SQLITE_DONE) {
            st = mv__db_error(v, err, "object list");
            goto rollback;
        }
    }
    if (res->n_objects > 0 &&
        (st = mv__write_intent(v, (const char *)res->object_ids, res->n_objects,
                               MV_VAULT_ID_CHARS + 1, &intent, err)) != MV_OK)
        goto rollback;
    /* Destroying the patient row destroys the patient key; the rows below it cascade. */
    if ((st = mv__db_prepare(v, "DELETE FROM patient WHERE id=?", &del, err)) != MV_OK)
        goto rollback;
    for (size_t p = 0; p < n_rows; p++) {
        sqlite3_reset(del);
        sqlite3_bind_int64(del, 1, rows[p]);
        if (sqlite3_step(del) != SQLITE_DONE) {
            st = mv__db_error(v, err, "delete patient");
            goto rollback;
        }
    }
    if ((st = mv__db_exec(v, "COMMIT", err)) != MV_OK)
        goto rollback;
    mv__unlink_blobs(v, (const char *)res->object_ids, res->n_objects, MV_VAULT_ID_CHARS + 1);
    if (intent != NULL)
        unlink(intent);
    mv__forget_keys(v);
    mv__checkpoint(v);
    goto out;
rollback:
    sqlite3_exec(v->db, "ROLLBACK", NULL, NULL, NULL);
    if (intent != NULL)
        unlink(intent);
out:
    sqlite3_finalize(q);
    sqlite3_finalize(objs);
    sqlite3_finalize(del);
    free(rows);
    free(intent);
    OPENSSL_cleanse(nid, strlen(nid));
    free(nid);
    if (st != MV_OK)
        mv_vault_forget_clear(res);
    return st;
}
