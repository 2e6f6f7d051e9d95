/* Vault operations over the whole index: listing with decrypted display values (sorted, with
 * blind-index filters), KEK rotation that rewraps every patient and object key, and fsck, which
 * authenticates every row and every blob and compares the folder with the index both ways. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "vault/vault_int.h"

/* ---- Listing -------------------------------------------------------------------------- */

static char *jstr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return strdup(s != NULL ? s : "");
}

static const char *jval(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

static void wipe_str(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void instance_free(MvVaultInstance *in)
{
    wipe_str(in->sop_uid);
    wipe_str(in->sop_class_uid);
    wipe_str(in->number);
    wipe_str(in->transfer_syntax);
}

static void series_free(MvVaultSeries *se)
{
    for (size_t i = 0; i < se->n_instances; i++)
        instance_free(&se->instances[i]);
    free(se->instances);
    wipe_str(se->uid);
    wipe_str(se->modality);
    wipe_str(se->number);
    wipe_str(se->description);
}

static void study_free(MvVaultStudy *st)
{
    for (size_t i = 0; i < st->n_series; i++)
        series_free(&st->series[i]);
    free(st->series);
    wipe_str(st->uid);
    wipe_str(st->date);
    wipe_str(st->time);
    wipe_str(st->description);
    wipe_str(st->accession);
}

void mv_vault_listing_free(MvVaultListing *listing)
{
    if (listing == NULL)
        return;
    for (size_t p = 0; p < listing->n_patients; p++) {
        MvVaultPatient *pa = &listing->patients[p];
        for (size_t i = 0; i < pa->n_studies; i++)
            study_free(&pa->studies[i]);
        free(pa->studies);
        wipe_str(pa->id);
        wipe_str(pa->issuer);
        wipe_str(pa->name);
        wipe_str(pa->birth_date);
        wipe_str(pa->sex);
    }
    free(listing->patients);
    free(listing);
}

/* Numbers as numbers ("2" before "10"), then text. */
static int cmp_number(const char *a, const char *b)
{
    char *ea, *eb;
    long la = strtol(a, &ea, 10), lb = strtol(b, &eb, 10);
    int na = *a != '\0' && *ea == '\0', nb = *b != '\0' && *eb == '\0';
    if (na && nb && la != lb)
        return la < lb ? -1 : 1;
    if (na != nb)
        return na ? -1 : 1;
    return strcmp(a, b);
}

static int cmp_patient(const void *x, const void *y)
{
    const MvVaultPatient *a = x, *b = y;
    int c = strcmp(a->id, b->id);
    if (c == 0)
        c = strcmp(a->issuer, b->issuer);
    if (c == 0)
        c = strcmp(a->name, b->name);
    return c != 0 ? c : strcmp(a->ref, b->ref);
}

static int cmp_study(const void *x, const void *y)
{
    const MvVaultStudy *a = x, *b = y;
    int c = strcmp(a->date, b->date);
    if (c == 0)
        c = strcmp(a->time, b->time);
    return c != 0 ? c : strcmp(a->uid, b->uid);
}

static int cmp_series(const void *x, const void *y)
{
    const MvVaultSeries *a = x, *b = y;
    int c = cmp_number(a->number, b->number);
    return c != 0 ? c : strcmp(a->uid, b->uid);
}

static int cmp_instance(const void *x, const void *y)
{
    const MvVaultInstance *a = x, *b = y;
    int c = cmp_number(a->number, b->number);
    if (c == 0)
        c = strcmp(a->sop_uid, b->sop_uid);
    return c != 0 ? c : strcmp(a->object_id, b->object_id);
}

/* Grows *arr (of elem bytes) to hold n + 1 elements, zeroing the new one. */
static void *grow(void *arr, size_t n, size_t *cap, size_t elem)
{
    if (n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void *g = realloc(arr, ncap * elem);
        if (g == NULL)
            return NULL;
        arr = g;
        *cap = ncap;
    }
    memset((char *)arr + n * elem, 0, elem);
    return arr;
}

static MvStatus nomem(MvError *err)
{
    return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
}

static MvStatus list_instances(MvVault *v, int64_t series, MvVaultSeries *se, size_t *total, MvError *err)
{
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    MvStatus st = mv__db_prepare(v, "SELECT object, size, display FROM instance WHERE series=?", &q, err);
    int rc;

    if (st != MV_OK)
        return st;
    sqlite3_bind_int64(q, 1, series);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *oid = (const char *)sqlite3_column_text(q, 0);
        json_t *d;
        MvVaultInstance *in;
        void *g = grow(se->instances, se->n_instances, &cap, sizeof *se->instances);
        if (g == NULL) {
            st = nomem(err);
            break;
        }
        se->instances = g;
        in = &se->instances[se->n_instances];
        snprintf(in->object_id, sizeof in->object_id, "%s", oid);
        in->size = (uint64_t)sqlite3_column_int64(q, 1);
        d = mv__open_display(v, "mv-vault-instance", oid, strlen(oid), sqlite3_column_blob(q, 2),
                             (size_t)sqlite3_column_bytes(q, 2), err);
        if (d == NULL) {
            st = err != NULL ? err->code : MV_ERR_INTEGRITY;
            mv_error_prefix(err, in->object_id);
            break;
        }
        in->sop_uid = jstr(d, "uid");
        in->sop_class_uid = jstr(d, "class");
        in->number = jstr(d, "number");
        in->transfer_syntax = jstr(d, "transfer_syntax");
        json_decref(d);
        se->n_instances++;
        (*total)++;
        if (in->sop_uid == NULL || in->sop_class_uid == NULL || in->number == NULL || in->transfer_syntax == NULL) {
            st = nomem(err);
            break;
        }
    }
    if (st == MV_OK && rc != SQLITE_DONE)
        st = mv__db_error(v, err, "list");
    sqlite3_finalize(q);
    if (st == MV_OK && se->n_instances > 1)
        qsort(se->instances, se->n_instances, sizeof *se->instances, cmp_instance);
    return st;
}

static MvStatus list_series(MvVault *v, int64_t study, MvVaultStudy *stu, size_t *total, MvError *err)
{
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    MvStatus st = mv__db_prepare(v, "SELECT id, bi_uid, display FROM series WHERE study=?", &q, err);
    int rc;

    if (st != MV_OK)
        return st;
    sqlite3_bind_int64(q, 1, study);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *d;
        MvVaultSeries *se;
        void *g = grow(stu->series, stu->n_series, &cap, sizeof *stu->series);
        if (g == NULL) {
            st = nomem(err);
            break;
        }
        stu->series = g;
        se = &stu->series[stu->n_series];
        d = mv__open_display(v, "mv-vault-series", sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1),
                             sqlite3_column_blob(q, 2), (size_t)sqlite3_column_bytes(q, 2), err);
        if (d == NULL) {
            st = err != NULL ? err->code : MV_ERR_INTEGRITY;
            mv_error_prefix(err, "series");
            break;
        }
        se->uid = jstr(d, "uid");
        se->modality = jstr(d, "modality");
        se->number = jstr(d, "number");
        se->description = jstr(d, "description");
        json_decref(d);
        stu->n_series++;
        if (se->uid == NULL || se->modality == NULL || se->number == NULL || se->description == NULL) {
            st = nomem(err);
            break;
        }
        if ((st = list_instances(v, sqlite3_column_int64(q, 0), se, total, err)) != MV_OK)
            break;
    }
    if (st == MV_OK && rc != SQLITE_DONE)
        st = mv__db_error(v, err, "list");
    sqlite3_finalize(q);
    if (st == MV_OK && stu->n_series > 1)
        qsort(stu->series, stu->n_series, sizeof *stu->series, cmp_series);
    return st;
}

static MvStatus list_studies(MvVault *v, int64_t patient, const uint8_t *study_bi, MvVaultPatient *pa,
                             size_t *total, MvError *err)
{
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    MvStatus st = mv__db_prepare(v,
                                 study_bi != NULL ? "SELECT id, bi_uid, display FROM study WHERE patient=? AND bi_uid=?"
                                                  : "SELECT id, bi_uid, display FROM study WHERE patient=?",
                                 &q, err);
    int rc;

    if (st != MV_OK)
        return st;
    sqlite3_bind_int64(q, 1, patient);
    if (study_bi != NULL)
        sqlite3_bind_blob(q, 2, study_bi, 32, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *d;
        MvVaultStudy *stu;
        void *g = grow(pa->studies, pa->n_studies, &cap, sizeof *pa->studies);
        if (g == NULL) {
            st = nomem(err);
            break;
        }
        pa->studies = g;
        stu = &pa->studies[pa->n_studies];
        d = mv__open_display(v, "mv-vault-study", sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1),
                             sqlite3_column_blob(q, 2), (size_t)sqlite3_column_bytes(q, 2), err);
        if (d == NULL) {
            st = err != NULL ? err->code : MV_ERR_INTEGRITY;
            mv_error_prefix(err, "study");
            break;
        }
        stu->uid = jstr(d, "uid");
        stu->date = jstr(d, "date");
        stu->time = jstr(d, "time");
        stu->description = jstr(d, "description");
        stu->accession = jstr(d, "accession");
        json_decref(d);
        pa->n_studies++;
        if (stu->uid == NULL || stu->date == NULL || stu->time == NULL || stu->description == NULL ||
            stu->accession == NULL) {
            st = nomem(err);
            break;
        }
        if ((st = list_series(v, sqlite3_column_int64(q, 0), stu, total, err)) != MV_OK)
            break;
    }
    if (st == MV_OK && rc != SQLITE_DONE)
        st = mv__db_error(v, err, "list");
    sqlite3_finalize(q);
    if (st == MV_OK && pa->n_studies > 1)
        qsort(pa->studies, pa->n_studies, sizeof *pa->studies, cmp_study);
    return st;
}

MvStatus mv_vault_list(MvVault *v, const MvVaultFilter *filter, MvVaultListing **out, MvError *err)
{
    MvVaultListing *l = calloc(1, sizeof *l);
    sqlite3_stmt *q = NULL;
    uint8_t bi_patient[32], bi_study[32];
    const char *sql = "SELECT id, ref, display FROM patient";
    int bind = 0, rc;
    size_t cap = 0;
    MvStatus st;

    *out = NULL;
    if (l == NULL)
        return nomem(err);
    if (filter != NULL && filter->patient_id != NULL) {
        char *n = mv__normalize_id(filter->patient_id);
        if (n == NULL) {
            free(l);
            return nomem(err);
        }
        mv__blind(v->bi_key, "patient-id", n, strlen(n), bi_patient);
        free(n);
        sql = "SELECT id, ref, display FROM patient WHERE bi_id=?";
        bind = 1;
    } else if (filter != NULL && filter->patient_name != NULL) {
        char *n = mv__normalize_name(filter->patient_name);
        if (n == NULL) {
            free(l);
            return nomem(err);
        }
        mv__blind(v->bi_key, "patient-name", n, strlen(n), bi_patient);
        free(n);
        sql = "SELECT id, ref, display FROM patient WHERE bi_name=?";
        bind = 1;
    }
    if (filter != NULL && filter->study_uid != NULL)
        mv__blind(v->bi_key, "study-uid", filter->study_uid, strlen(filter->study_uid), bi_study);
    /* One read transaction: a consistent snapshot even while a put commits (inside an open
     * batch the batch's own transaction already is one). */
    if (!v->in_batch && (st = mv__db_exec(v, "BEGIN", err)) != MV_OK) {
        free(l);
        return st;
    }
    if ((st = mv__db_prepare(v, sql, &q, err)) != MV_OK)
        goto out;
    if (bind)
        sqlite3_bind_blob(q, 1, bi_patient, 32, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *ref = (const char *)sqlite3_column_text(q, 1);
        MvVaultPatient *pa;
        json_t *d;
        void *g = grow(l->patients, l->n_patients, &cap, sizeof *l->patients);
        if (g == NULL) {
            st = nomem(err);
            break;
        }
        l->patients = g;
        pa = &l->patients[l->n_patients];
        snprintf(pa->ref, sizeof pa->ref, "%s", ref);
        d = mv__open_display(v, "mv-vault-patient", ref, strlen(ref), sqlite3_column_blob(q, 2),
                             (size_t)sqlite3_column_bytes(q, 2), err);
        if (d == NULL) {
            st = err != NULL ? err->code : MV_ERR_INTEGRITY;
            mv_error_prefix(err, pa->ref);
            break;
        }
        pa->id = jstr(d, "id");
        pa->issuer = jstr(d, "issuer");
        pa->name = jstr(d, "name");
        pa->birth_date = jstr(d, "birth_date");
        pa->sex = jstr(d, "sex");
        json_decref(d);
        l->n_patients++;
        if (pa->id == NULL || pa->issuer == NULL || pa->name == NULL || pa->birth_date == NULL || pa->sex == NULL) {
            st = nomem(err);
            break;
        }
        if ((st = list_studies(v, sqlite3_column_int64(q, 0),
                               filter != NULL && filter->study_uid != NULL ? bi_study : NULL, pa, &l->n_instances,
                               err)) != MV_OK)
            break;
        if (pa->n_studies == 0) { /* filtered out by study */
            wipe_str(pa->id);
            wipe_str(pa->issuer);
            wipe_str(pa->name);
            wipe_str(pa->birth_date);
            wipe_str(pa->sex);
            free(pa->studies);
            l->n_patients--;
        }
    }
    if (st == MV_OK && rc != SQLITE_DONE)
        st = mv__db_error(v, err, "list");
out:
    sqlite3_finalize(q);
    if (!v->in_batch)
        sqlite3_exec(v->db, "COMMIT", NULL, NULL, NULL);
    if (st != MV_OK) {
        mv_vault_listing_free(l);
        return st;
    }
    if (l->n_patients > 1)
        qsort(l->patients, l->n_patients, sizeof *l->patients, cmp_patient);
    *out = l;
    return MV_OK;
}

/* ---- Rotation ------------------------------------------------------------------------- */

static MvStatus rewrap_patients(MvVault *v, size_t *n, MvError *err)
{
    sqlite3_stmt *q = NULL, *upd = NULL;
    MvStatus st;
    int rc;

    if ((st = mv__db_prepare(v, "SELECT id, ref, wrapped_key FROM patient ORDER BY id", &q, err)) != MV_OK ||
        (st = mv__db_prepare(v, "UPDATE patient SET wrapped_key=? WHERE id=?", &upd, err)) != MV_OK)
        goto out;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        uint8_t key[32], *wrapped = NULL;
        size_t wrapped_len = 0;
        char ctx[64];
        snprintf(ctx, sizeof ctx, "vault-patient:%s", (const char *)sqlite3_column_text(q, 1));
        st = mv_keyring_unwrap(v->kr, sqlite3_column_blob(q, 2), (size_t)sqlite3_column_bytes(q, 2), ctx, key, 32,
                               err);
        if (st == MV_OK) {
            st = mv_keyring_wrap(v->kr, key, 32, ctx, &wrapped, &wrapped_len, err);
            if (st == MV_OK)
                st = mv__cache_patient_key(v, sqlite3_column_int64(q, 0), key, err);
        }
        OPENSSL_cleanse(key, sizeof key);
        if (st != MV_OK) {
            mv_error_prefix(err, "patient key");
            free(wrapped);
            goto out;
        }
        sqlite3_reset(upd);
        sqlite3_bind_blob(upd, 1, wrapped, (int)wrapped_len, SQLITE_TRANSIENT);
        sqlite3_bind_int64(upd, 2, sqlite3_column_int64(q, 0));
        rc = sqlite3_step(upd);
        free(wrapped);
        if (rc != SQLITE_DONE) {
            st = mv__db_error(v, err, "rewrap");
            goto out;
        }
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        st = mv__db_error(v, err, "rewrap");
out:
    sqlite3_finalize(q);
    sqlite3_finalize(upd);
    return st;
}

static MvStatus rewrap_objects(MvVault *v, size_t *n, MvError *err)
{
    sqlite3_stmt *q = NULL, *upd = NULL, *cnt = NULL;
    uint64_t total = 0;
    MvStatus st;
    int rc;

    if ((st = mv__db_prepare(v, "SELECT count(*) FROM instance", &cnt, err)) != MV_OK)
        goto out;
    if (sqlite3_step(cnt) == SQLITE_ROW)
        total = (uint64_t)sqlite3_column_int64(cnt, 0);
    if ((st = mv__db_prepare(v,
                             "SELECT i.id, i.object, i.wrapped_key, st.patient FROM instance i"
                             " JOIN series se ON se.id = i.series JOIN study st ON st.id = se.study ORDER BY i.id",
                             &q, err)) != MV_OK ||
        (st = mv__db_prepare(v, "UPDATE instance SET wrapped_key=? WHERE id=?", &upd, err)) != MV_OK)
        goto out;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *oid = (const char *)sqlite3_column_text(q, 1);
        uint8_t pkey[32], dek[32], *wrapped = NULL;
        size_t wrapped_len = 0;
        st = mv__patient_key(v, sqlite3_column_int64(q, 3), pkey, err);
        if (st == MV_OK)
            st = mv__unwrap_object_key(v, pkey, oid, sqlite3_column_blob(q, 2), (size_t)sqlite3_column_bytes(q, 2),
                                       dek, NULL, err);
        if (st == MV_OK)
            st = mv__wrap_object_key(v, pkey, oid, dek, &wrapped, &wrapped_len, err);
        OPENSSL_cleanse(pkey, sizeof pkey);
        OPENSSL_cleanse(dek, sizeof dek);
        if (st != MV_OK) {
            mv_error_prefix(err, oid);
            free(wrapped);
            goto out;
        }
        sqlite3_reset(upd);
        sqlite3_bind_blob(upd, 1, wrapped, (int)wrapped_len, SQLITE_TRANSIENT);
        sqlite3_bind_int64(upd, 2, sqlite3_column_int64(q, 0));
        rc = sqlite3_step(upd);
        free(wrapped);
        if (rc != SQLITE_DONE) {
            st = mv__db_error(v, err, "rewrap");
            goto out;
        }
        (*n)++;
        if (v->progress != NULL)
            v->progress(*n, total, v->progress_ctx);
    }
    if (rc != SQLITE_DONE)
        st = mv__db_error(v, err, "rewrap");
out:
    sqlite3_finalize(cnt);
    sqlite3_finalize(q);
    sqlite3_finalize(upd);
    return st;
}

MvStatus mv_vault_rotate(MvVault *v, int retire, MvVaultRotation *res, MvError *err)
{
    return mv_vault_rotate_to(v, NULL, retire, res, err);
}

MvStatus mv_vault_rotate_to(MvVault *v, const MvUnlock *new_how, int retire, MvVaultRotation *res, MvError *err)
{
    MvStatus st;

    memset(res, 0, sizeof *res);
    if (!v->writable || v->in_batch)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "vault not opened for writing");
    res->old_version = mv_keyring_current_version(v->kr);
    /* The new version first: if anything below fails, rows stay under the old one, which is
     * still there, and a second rotate finishes the job. */
    if ((st = mv_keyring_rotate(v->kr, new_how, err)) != MV_OK)
        return st;
    res->new_version = mv_keyring_current_version(v->kr);
    mv__forget_keys(v);
    if ((st = mv__db_exec(v, "BEGIN IMMEDIATE", err)) != MV_OK)
        return st;
    if ((st = rewrap_patients(v, &res->n_patient_keys, err)) != MV_OK ||
        (st = rewrap_objects(v, &res->n_object_keys, err)) != MV_OK ||
        (st = mv__db_exec(v, "COMMIT", err)) != MV_OK) {
        sqlite3_exec(v->db, "ROLLBACK", NULL, NULL, NULL);
        mv__forget_keys(v);
        return st;
    }
    /* Old wrapped forms must not linger in the WAL once their KEK may be gone. */
    mv__checkpoint(v);
    if (retire) {
        /* Everything committed above is under the new version; check before destroying. */
        sqlite3_stmt *q = NULL;
        int rc;
        if ((st = mv__db_prepare(v, "SELECT wrapped_key FROM patient", &q, err)) != MV_OK)
            return st;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            uint32_t ver = mv_keyring_wrapped_version(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0));
            if (ver != res->new_version) {
                sqlite3_finalize(q);
                return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                                    "a patient key is still under KEK version %u: not retiring", ver);
            }
        }
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE)
            return mv__db_error(v, err, "check");
        if ((st = mv_keyring_retire_old(v->kr, &res->n_retired, err)) != MV_OK)
            return st;
    }
    return MV_OK;
}

/* ---- fsck ----------------------------------------------------------------------------- */

typedef struct Fsck {
    MvVault *v;
    MvVaultProblemFn fn;
    void *ctx;
    MvVaultFsck *res;
    char (*ids)[MV_VAULT_ID_CHARS + 1]; /* object ids of the index, sorted */
    size_t n_ids, cap_ids;
} Fsck;

static void problem(Fsck *f, const char *who, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(Fsck *f, const char *who, const char *fmt, ...)
{
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (f->fn != NULL)
        f->fn(who, what, f->ctx);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int blind_matches(MvVault *v, const char *label, const char *value, const void *stored, size_t len)
{
    uint8_t bi[32];
    mv__blind(v->bi_key, label, value, strlen(value), bi);
    return len == 32 && CRYPTO_memcmp(bi, stored, 32) == 0;
}

static MvStatus fsck_patients(Fsck *f, MvError *err)
{
    MvVault *v = f->v;
    sqlite3_stmt *q = NULL;
    MvStatus st = mv__db_prepare(v, "SELECT id, ref, bi_id, bi_name, display FROM patient", &q, err);
    int rc;

    if (st != MV_OK)
        return st;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *ref = (const char *)sqlite3_column_text(q, 1);
        uint8_t key[32];
        MvError e;
        json_t *d;
        char who[80];
        snprintf(who, sizeof who, "patient %s", ref != NULL ? ref : "?");
        mv_error_clear(&e);
        if (mv__patient_key(v, sqlite3_column_int64(q, 0), key, &e) != MV_OK) {
            f->res->n_damaged++;
            problem(f, who, "patient key cannot be unwrapped: %s", e.message);
            continue;
        }
        OPENSSL_cleanse(key, sizeof key);
        d = mv__open_display(v, "mv-vault-patient", ref, ref != NULL ? strlen(ref) : 0, sqlite3_column_blob(q, 4),
                             (size_t)sqlite3_column_bytes(q, 4), &e);
        if (d == NULL) {
            f->res->n_damaged++;
            problem(f, who, "display values: %s", e.message);
            continue;
        }
        char *nid = mv__normalize_id(jval(d, "id"));
        char *nname = mv__normalize_name(jval(d, "name"));
        if (nid == NULL || nname == NULL || !blind_matches(v, "patient-id", nid, sqlite3_column_blob(q, 2),
                                                           (size_t)sqlite3_column_bytes(q, 2)) ||
            !blind_matches(v, "patient-name", nname, sqlite3_column_blob(q, 3), (size_t)sqlite3_column_bytes(q, 3))) {
            f->res->n_damaged++;
            problem(f, who, "blind index does not match the display values");
        }
        wipe_str(nid);
        wipe_str(nname);
        json_decref(d);
    }
    if (rc != SQLITE_DONE)
        st = mv__db_error(v, err, "fsck");
    sqlite3_finalize(q);
    return st;
}

static MvStatus fsck_levels(Fsck *f, int is_series, MvError *err)
{
    MvVault *v = f->v;
    sqlite3_stmt *q = NULL;
    MvStatus st = mv__db_prepare(v, is_series ? "SELECT id, bi_uid, display FROM series"
                                              : "SELECT id, bi_uid, display FROM study",
                                 &q, err);
    int rc;

    if (st != MV_OK)
        return st;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        MvError e;
        char who[64];
        json_t *d;
        snprintf(who, sizeof who, "%s row %lld", is_series ? "series" : "study", (long long)sqlite3_column_int64(q, 0));
        mv_error_clear(&e);
        d = mv__open_display(v, is_series ? "mv-vault-series" : "mv-vault-study", sqlite3_column_blob(q, 1),
                             (size_t)sqlite3_column_bytes(q, 1), sqlite3_column_blob(q, 2),
                             (size_t)sqlite3_column_bytes(q, 2), &e);
        if (d == NULL) {
            f->res->n_damaged++;
            problem(f, who, "display values: %s", e.message);
            continue;
        }
        const char *uid = json_string_value(json_object_get(d, "uid"));
        if (uid == NULL || !blind_matches(v, is_series ? "series-uid" : "study-uid", uid, sqlite3_column_blob(q, 1),
                                          (size_t)sqlite3_column_bytes(q, 1))) {
            f->res->n_damaged++;
            problem(f, who, "blind index does not match the display values");
        }
        json_decref(d);
    }
    if (rc != SQLITE_DONE)
        st = mv__db_error(v, err, "fsck");
    sqlite3_finalize(q);
    return st;
}

static MvStatus fsck_instances(Fsck *f, MvError *err)
{
    MvVault *v = f->v;
    sqlite3_stmt *q = NULL, *cnt = NULL;
    uint64_t total = 0, done = 0;
    MvStatus st;
    int rc;

    if ((st = mv__db_prepare(v, "SELECT count(*) FROM instance", &cnt, err)) != MV_OK)
        return st;
    if (sqlite3_step(cnt) == SQLITE_ROW)
        total = (uint64_t)sqlite3_column_int64(cnt, 0);
    sqlite3_finalize(cnt);
    if ((st = mv__db_prepare(v,
                             "SELECT i.object, i.size, i.wrapped_key, st.patient, i.bi_uid, i.display FROM instance i"
                             " JOIN series se ON se.id = i.series JOIN study st ON st.id = se.study ORDER BY i.object",
                             &q, err)) != MV_OK)
        return st;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *oid = (const char *)sqlite3_column_text(q, 0);
        uint64_t size = (uint64_t)sqlite3_column_int64(q, 1);
        uint8_t pkey[32], dek[32], id[MV__ID_BYTES];
        MvBlobHeader h;
        MvError e;
        json_t *d;
        char *path;
        int fd;

        f->res->n_objects++;
        if (v->progress != NULL)
            v->progress(++done, total, v->progress_ctx);
        if (oid == NULL || mv__unhex(oid, strlen(oid), id, sizeof id) != 0) {
            f->res->n_damaged++;
            problem(f, "index", "an instance row has a malformed object id");
            continue;
        }
        void *g = grow(f->ids, f->n_ids, &f->cap_ids, sizeof *f->ids);
        if (g == NULL) {
            st = nomem(err);
            break;
        }
        f->ids = g;
        snprintf(f->ids[f->n_ids++], MV_VAULT_ID_CHARS + 1, "%s", oid);
        mv_error_clear(&e);
        d = mv__open_display(v, "mv-vault-instance", oid, strlen(oid), sqlite3_column_blob(q, 5),
                             (size_t)sqlite3_column_bytes(q, 5), &e);
        if (d == NULL) {
            f->res->n_damaged++;
            problem(f, oid, "display values: %s", e.message);
        } else {
            const char *uid = json_string_value(json_object_get(d, "uid"));
            if (uid == NULL ||
                !blind_matches(v, "sop-uid", uid, sqlite3_column_blob(q, 4), (size_t)sqlite3_column_bytes(q, 4))) {
                f->res->n_damaged++;
                problem(f, oid, "SOP Instance UID blind index does not match the display values");
            }
            json_decref(d);
        }
        if (mv__patient_key(v, sqlite3_column_int64(q, 3), pkey, &e) != MV_OK) {
            f->res->n_damaged++;
            problem(f, oid, "its patient key cannot be unwrapped");
            continue;
        }
        st = mv__unwrap_object_key(v, pkey, oid, sqlite3_column_blob(q, 2), (size_t)sqlite3_column_bytes(q, 2), dek,
                                   NULL, &e);
        OPENSSL_cleanse(pkey, sizeof pkey);
        if (st != MV_OK) {
            st = MV_OK;
            f->res->n_damaged++;
            problem(f, oid, "data key cannot be unwrapped: %s", e.message);
            continue;
        }
        path = mv__object_path(v, oid);
        fd = path != NULL ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd < 0) {
            f->res->n_missing++;
            problem(f, oid, "blob missing (%s)", path != NULL ? path : "?");
        } else {
            posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
            if (mv__blob_decrypt_fd(fd, dek, id, &h, NULL, NULL, &e) != MV_OK) {
                f->res->n_damaged++;
                problem(f, oid, "%s", e.message);
            } else if (h.length != size) {
                f->res->n_damaged++;
                problem(f, oid, "blob holds %llu bytes, the index says %llu", (unsigned long long)h.length,
                        (unsigned long long)size);
            } else {
                f->res->bytes += size;
            }
            close(fd);
        }
        free(path);
        OPENSSL_cleanse(dek, sizeof dek);
    }
    if (st == MV_OK && rc != SQLITE_DONE)
        st = mv__db_error(v, err, "fsck");
    sqlite3_finalize(q);
    return st;
}

static int is_hex_name(const char *s, size_t len)
{
    if (strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void fsck_folder(Fsck *f)
{
    MvVault *v = f->v;
    DIR *d = opendir(v->objects), *sub;
    struct dirent *e, *se;

    if (d == NULL) {
        f->res->n_damaged++;
        problem(f, "objects/", "cannot be read");
        return;
    }
    if (f->n_ids > 1)
        qsort(f->ids, f->n_ids, sizeof *f->ids, cmp_id);
    while ((e = readdir(d)) != NULL) {
        char *dir;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        dir = mv__path(v->objects, e->d_name);
        if (dir == NULL)
            continue;
        if (!is_hex_name(e->d_name, 2) || (sub = opendir(dir)) == NULL) {
            f->res->n_orphans++;
            problem(f, e->d_name, "unexpected entry in objects/");
            free(dir);
            continue;
        }
        while ((se = readdir(sub)) != NULL) {
            if (strcmp(se->d_name, ".") == 0 || strcmp(se->d_name, "..") == 0)
                continue;
            if (!is_hex_name(se->d_name, MV_VAULT_ID_CHARS) || strncmp(se->d_name, e->d_name, 2) != 0 ||
                bsearch(se->d_name, f->ids, f->n_ids, sizeof *f->ids, cmp_id) == NULL) {
                f->res->n_orphans++;
                problem(f, se->d_name, "blob in objects/%s has no row in the index (orphan)", e->d_name);
            }
        }
        closedir(sub);
        free(dir);
    }
    closedir(d);
    if ((d = opendir(v->tmp)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            f->res->n_temp++;
            problem(f, e->d_name, "temporary file left in tmp/");
        }
        closedir(d);
    }
}

MvStatus mv_vault_fsck(MvVault *v, MvVaultProblemFn fn, void *ctx, MvVaultFsck *res, MvError *err)
{
    Fsck f = {v, fn, ctx, res, NULL, 0, 0};
    sqlite3_stmt *q = NULL;
    MvStatus st;
    int rc, bad = 0;

    memset(res, 0, sizeof *res);
    if (v->in_batch)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "fsck with a batch of puts open: flush first");
    mv__forget_keys(v);
    /* The structure of the database file first: pages, b-trees, indexes, references. */
    if (sqlite3_prepare_v2(v->db, "PRAGMA integrity_check", -1, &q, NULL) != SQLITE_OK)
        return mv__db_error(v, err, "integrity_check");
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(q, 0);
        if (line != NULL && strcmp(line, "ok") != 0) {
            bad = 1;
            res->n_damaged++;
            problem(&f, "index", "%s", line);
        }
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        res->n_damaged++;
        problem(&f, "index", "integrity_check failed: %s", sqlite3_errmsg(v->db));
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "the vault index is damaged: %s",
                            sqlite3_errmsg(v->db));
    }
    if (sqlite3_prepare_v2(v->db, "PRAGMA foreign_key_check", -1, &q, NULL) == SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            res->n_damaged++;
            problem(&f, "index", "row %lld of %s refers to a missing parent", (long long)sqlite3_column_int64(q, 1),
                    (const char *)sqlite3_column_text(q, 0));
        }
    }
    sqlite3_finalize(q);
    (void)bad;
    if ((st = mv__db_exec(v, "BEGIN", err)) != MV_OK)
        return st;
    st = fsck_patients(&f, err);
    if (st == MV_OK)
        st = fsck_levels(&f, 0, err);
    if (st == MV_OK)
        st = fsck_levels(&f, 1, err);
    if (st == MV_OK)
        st = fsck_instances(&f, err);
    sqlite3_exec(v->db, "COMMIT", NULL, NULL, NULL);
    if (st == MV_OK)
        fsck_folder(&f);
    if (st == MV_ERR_INTEGRITY) {
        res->n_damaged++;
        problem(&f, "index", "%s", err != NULL ? err->message : "unreadable");
    }
    free(f.ids);
    mv__forget_keys(v);
    return st;
}
