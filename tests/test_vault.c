/* Unit tests of the vault store (src/vault): put, flush, list with blind-index filters, get and
 * range reads, duplicates and conflicts, nothing identifying in any file of the home folder,
 * rm, crypto-shredding by forget-patient, rotation with retirement, crash recovery, fsck
 * finding each kind of damage, and backup/restore. DICOM inputs are built in memory with the
 * codec's editing API. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "medveil/dicom.h"
#include "medveil/keys.h"
#include "medveil/vault.h"
#include "vault/vault_int.h"


static char root[64];
static int home_seq;

static const uint8_t passphrase[] = "correct horse battery staple";

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/mv-vault-XXXXXX");
    return mkdtemp(root) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static MvUnlock unlock_how(void)
{
    MvUnlock how;
    memset(&how, 0, sizeof how);
    how.kind = MV_UNLOCK_PASSPHRASE;
    how.secret = passphrase;
    how.secret_len = sizeof passphrase - 1;
    return how;
}

/* A fresh home with a keyring and a vault; returns its path (static storage per call site). */
static char *new_home(MvKeyring **kr)
{
    static char homes[16][96];
    char *home = homes[home_seq++ % 16];
    MvUnlock how = unlock_how();
    MvKdfParams kdf = {1, 64, 1};
    MvError err;
    snprintf(home, sizeof homes[0], "%s/home%d", root, home_seq);
    assert_int_equal(mv_keyring_create(home, &how, &kdf, kr, &err), MV_OK);
    assert_int_equal(mv_vault_create(home, *kr, &err), MV_OK);
    return home;
}

typedef struct Obj {
    const char *patient_id, *name, *study, *series, *sop, *desc;
    size_t pixels;
    uint8_t *bytes;
    size_t len;
} Obj;

/* Builds a small CT-like Part 10 file in memory (written by the codec, read back as bytes). */
static void build(Obj *o, unsigned seed)
{
    MvFile *f = NULL;
    MvDataset *ds;
    MvError err;
    MvWriteOptions w;
    char path[160];
    uint8_t *px;
    struct stat sb;
    int fd;

    assert_int_equal(mv_file_new(&f), MV_OK);
    ds = mv_file_dataset(f);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0016), MV_VR_UI, "1.2.840.10008.5.1.4.1.1.2", &err),
                     MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0018), MV_VR_UI, o->sop, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0020), MV_VR_DA, "20240131", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "CT", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x1030), MV_VR_LO, o->desc, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0010, 0x0010), MV_VR_PN, o->name, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0010, 0x0020), MV_VR_LO, o->patient_id, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0010, 0x0030), MV_VR_DA, "19600229", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0020, 0x000D), MV_VR_UI, o->study, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0020, 0x000E), MV_VR_UI, o->series, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0020, 0x0013), MV_VR_IS, "1", &err), MV_OK);
    px = malloc(o->pixels);
    assert_non_null(px);
    for (size_t i = 0; i < o->pixels; i++)
        px[i] = (uint8_t)(i * 7 + seed);
    assert_int_equal(mv_dataset_set_bytes(ds, MV_TAG_PIXEL_DATA, MV_VR_OB, px, o->pixels, &err), MV_OK);
    free(px);
    mv_write_options_init(&w);
    w.flags |= MV_WRITE_NO_SYNC;
    snprintf(path, sizeof path, "%s/obj%u.dcm", root, seed);
    assert_int_equal(mv_file_write(f, path, &w, &err), MV_OK);
    mv_file_free(f);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    o->len = (size_t)sb.st_size;
    o->bytes = malloc(o->len);
    assert_int_equal(read(fd, o->bytes, o->len), (ssize_t)o->len);
    close(fd);
    unlink(path);
}

static Obj objs[] = {
    {"PID-ALPHA-0001", "Fakename^Alberta", "1.2.826.0.1.3680043.9.7001.1", "1.2.826.0.1.3680043.9.7001.1.1",
     "1.2.826.0.1.3680043.9.7001.1.1.1", "CT chest", 3000, NULL, 0},
    {"PID-ALPHA-0001", "Fakename^Alberta", "1.2.826.0.1.3680043.9.7001.1", "1.2.826.0.1.3680043.9.7001.1.1",
     "1.2.826.0.1.3680043.9.7001.1.1.2", "CT chest", 70000, NULL, 0},
    {"PID-BRAVO-0002", "Othername^Bruno", "1.2.826.0.1.3680043.9.7002.1", "1.2.826.0.1.3680043.9.7002.1.1",
     "1.2.826.0.1.3680043.9.7002.1.1.1", "MR knee", 500, NULL, 0},
};
#define N_OBJS (sizeof objs / sizeof objs[0])

static int group_setup(void **state)
{
    if (setup(state) != 0)
        return -1;
    for (unsigned i = 0; i < N_OBJS; i++)
        build(&objs[i], i);
    return 0;
}

static int group_teardown(void **state)
{
    for (unsigned i = 0; i < N_OBJS; i++)
        free(objs[i].bytes);
    return teardown(state);
}

typedef struct Acks {
    MvVaultPut put[16];
    size_t n;
} Acks;

static void on_ack(const MvVaultPut *p, void *arg)
{
    Acks *a = arg;
    a->put[a->n++] = *p;
}

/* Stores every object of objs in a new vault; returns the home. The vault stays open. */
static char *stored_vault(MvKeyring **kr, MvVault **v, uint32_t chunk)
{
    char *home = new_home(kr);
    Acks acks = {.n = 0};
    MvError err;
    assert_int_equal(mv_vault_open(home, *kr, MV_VAULT_WRITE, v, &err), MV_OK);
    (*v)->chunk_size = chunk;
    for (size_t i = 0; i < N_OBJS; i++) {
        MvVaultPut res;
        assert_int_equal(mv_vault_put_memory(*v, objs[i].bytes, objs[i].len, "obj", &res, &err), MV_OK);
        assert_int_equal(res.outcome, MV_VAULT_STORED);
        assert_string_equal(res.sop_uid, objs[i].sop);
    }
    assert_int_equal(mv_vault_pending(*v, NULL), N_OBJS);
    assert_int_equal(acks.n, 0);
    assert_int_equal(mv_vault_flush(*v, on_ack, &acks, &err), MV_OK);
    assert_int_equal(acks.n, N_OBJS);
    assert_int_equal(mv_vault_pending(*v, NULL), 0);
    return home;
}

static void get_and_compare(MvVault *v, const Obj *o)
{
    char out[160];
    uint8_t *back;
    struct stat sb;
    MvError err;
    int fd;
    snprintf(out, sizeof out, "%s/got.dcm", root);
    if (mv_vault_get(v, o->sop, out, &err) != MV_OK)
        fail_msg("get %s: %s", o->sop, err.message);
    assert_int_equal(stat(out, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal((size_t)sb.st_size, o->len);
    back = malloc(o->len + 1);
    fd = open(out, O_RDONLY);
    assert_int_equal(read(fd, back, o->len + 1), (ssize_t)o->len);
    close(fd);
    assert_memory_equal(back, o->bytes, o->len);
    free(back);
    unlink(out);
}

/* 1 if any regular file under dir holds needle. */
static int tree_contains(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    if (d == NULL)
        return 0;
    while (!found && (e = readdir(d)) != NULL) {
        char path[512];
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            found = tree_contains(path, needle);
        } else if (S_ISREG(sb.st_mode) && sb.st_size > 0) {
            uint8_t *buf = malloc((size_t)sb.st_size);
            int fd = open(path, O_RDONLY);
            ssize_t n = read(fd, buf, (size_t)sb.st_size);
            close(fd);
            if (n > 0 && memmem(buf, (size_t)n, needle, strlen(needle)) != NULL) {
                printf("found in %s\n", path);
                found = 1;
            }
            free(buf);
        }
    }
    closedir(d);
    return found;
}

/* ---- Tests ----------------------------------------------------------------------------- */

static void test_put_get_list(void **state)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultListing *l = NULL;
    MvError err;
    (void)state;
    char *home = stored_vault(&kr, &v, 1024);

    for (size_t i = 0; i < N_OBJS; i++)
        get_and_compare(v, &objs[i]);
    assert_int_equal(mv_vault_list(v, NULL, &l, &err), MV_OK);
    assert_int_equal(l->n_patients, 2);
    assert_int_equal(l->n_instances, 3);
    assert_string_equal(l->patients[0].id, "PID-ALPHA-0001");
    assert_string_equal(l->patients[0].name, "Fakename^Alberta");
    assert_string_equal(l->patients[0].birth_date, "19600229");
    assert_int_equal(l->patients[0].n_studies, 1);
    assert_string_equal(l->patients[0].studies[0].description, "CT chest");
    assert_int_equal(l->patients[0].studies[0].series[0].n_instances, 2);
    assert_string_equal(l->patients[1].studies[0].uid, objs[2].study);
    mv_vault_listing_free(l);

    /* Blind-index filters, after normalisation. */
    {
        MvVaultFilter f = {"  PID-BRAVO-0002 ", NULL, NULL};
        assert_int_equal(mv_vault_list(v, &f, &l, &err), MV_OK);
        assert_int_equal(l->n_patients, 1);
        assert_string_equal(l->patients[0].name, "Othername^Bruno");
        mv_vault_listing_free(l);
    }
    {
        MvVaultFilter f = {NULL, "FAKENAME^alberta^^", NULL};
        assert_int_equal(mv_vault_list(v, &f, &l, &err), MV_OK);
        assert_int_equal(l->n_instances, 2);
        mv_vault_listing_free(l);
    }
    {
        MvVaultFilter f = {NULL, NULL, objs[2].study};
        assert_int_equal(mv_vault_list(v, &f, &l, &err), MV_OK);
        assert_int_equal(l->n_patients, 1);
        assert_int_equal(l->n_instances, 1);
        mv_vault_listing_free(l);
    }
    {
        MvVaultFilter f = {"PID-NOBODY", NULL, NULL};
        assert_int_equal(mv_vault_list(v, &f, &l, &err), MV_OK);
        assert_int_equal(l->n_patients, 0);
        mv_vault_listing_free(l);
    }
    /* Range reads across the 1024-byte chunks of the large object. */
    {
        uint8_t buf[5000];
        size_t got = 0;
        assert_int_equal(mv_vault_read(v, objs[1].sop, 1000, buf, sizeof buf, &got, &err), MV_OK);
        assert_int_equal(got, sizeof buf);
        assert_memory_equal(buf, objs[1].bytes + 1000, sizeof buf);
        assert_int_equal(mv_vault_read(v, objs[1].sop, objs[1].len - 10, buf, sizeof buf, &got, &err), MV_OK);
        assert_int_equal(got, 10);
    }
    assert_int_equal(mv_vault_get(v, "1.2.3.404", "/tmp/never", &err), MV_ERR_NOTFOUND);

    /* Nothing identifying in any file of the home, the WAL included (the vault is still open). */
    static const char *const secrets[] = {"PID-ALPHA-0001", "PID-BRAVO-0002", "Fakename", "Alberta", "Othername",
                                          "19600229", "CT chest", "MR knee", "1.2.826.0.1.3680043.9.7001",
                                          "1.2.826.0.1.3680043.9.7002", NULL};
    assert_true(tree_contains(home, "MVVAULT")); /* the scan does find what is there */
    for (size_t i = 0; secrets[i] != NULL; i++)
        if (tree_contains(home, secrets[i]))
            fail_msg("'%s' is in the clear under %s", secrets[i], home);
    mv_vault_close(v);
    mv_keyring_close(kr);
}

static void test_duplicates(void **state)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultPut res;
    MvError err;
    uint8_t *changed;
    (void)state;
    stored_vault(&kr, &v, 0);
    assert_int_equal(mv_vault_put_memory(v, objs[0].bytes, objs[0].len, "again", &res, &err), MV_OK);
    assert_int_equal(res.outcome, MV_VAULT_ALREADY);
    changed = malloc(objs[0].len);
    memcpy(changed, objs[0].bytes, objs[0].len);
    changed[objs[0].len - 1] ^= 1; /* last pixel byte */
    assert_int_equal(mv_vault_put_memory(v, changed, objs[0].len, "changed", &res, &err), MV_OK);
    assert_int_equal(res.outcome, MV_VAULT_CONFLICT);
    assert_int_equal(mv_vault_pending(v, NULL), 0);
    free(changed);
    /* Not DICOM. */
    assert_int_equal(mv_vault_put_memory(v, "hello, world, this is text", 26, "readme.txt", &res, &err),
                     MV_ERR_PARSE);
    assert_non_null(strstr(err.message, "not a DICOM file"));
    assert_int_equal(mv_vault_flush(v, NULL, NULL, &err), MV_OK);
    mv_vault_close(v);
    mv_keyring_close(kr);
}

static void test_rm(void **state)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultListing *l = NULL;
    char oid[MV_VAULT_ID_CHARS + 1], *blob;
    struct stat sb;
    MvError err;
    (void)state;
    stored_vault(&kr, &v, 0);
    assert_int_equal(mv_vault_rm(v, objs[2].sop, oid, &err), MV_OK);
    blob = mv__object_path(v, oid);
    assert_int_not_equal(stat(blob, &sb), 0);
    free(blob);
    assert_int_equal(mv_vault_lookup(v, objs[2].sop, NULL, NULL, &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_vault_rm(v, objs[2].sop, oid, &err), MV_ERR_NOTFOUND);
    /* The patient had no other object: the patient (and its key) went too. */
    assert_int_equal(mv_vault_list(v, NULL, &l, &err), MV_OK);
    assert_int_equal(l->n_patients, 1);
    mv_vault_listing_free(l);
    get_and_compare(v, &objs[0]);
    mv_vault_close(v);
    mv_keyring_close(kr);
}

static void test_forget_patient_shreds(void **state)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultForget res;
    MvInstanceRow row;
    MvError err;
    uint8_t other_pkey[32], dek[32];
    char oid[MV_VAULT_ID_CHARS + 1];
    int64_t other_patient;
    (void)state;
    stored_vault(&kr, &v, 0);
    /* Keep what an attacker with an old copy of the index row and the blob would have. */
    assert_int_equal(mv__find_instance(v, objs[0].sop, &row, &err), MV_OK);
    snprintf(oid, sizeof oid, "%s", row.object_id);
    {
        MvInstanceRow r2;
        assert_int_equal(mv__find_instance(v, objs[2].sop, &r2, &err), MV_OK);
        other_patient = r2.patient;
        mv__instance_row_clear(&r2);
    }
    assert_int_equal(mv_vault_forget_patient(v, "PID-ALPHA-0001", &res, &err), MV_OK);
    assert_int_equal(res.n_patients, 1);
    assert_int_equal(res.n_studies, 1);
    assert_int_equal(res.n_series, 1);
    assert_int_equal(res.n_objects, 2);
    mv_vault_forget_clear(&res);
    assert_int_equal(mv_vault_lookup(v, objs[0].sop, NULL, NULL, &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_vault_lookup(v, objs[1].sop, NULL, NULL, &err), MV_ERR_NOTFOUND);
    /* The patient key row is gone, so the saved object key cannot be unwrapped: not with the
     * patient key (destroyed), not with another patient's key. */
    assert_int_not_equal(mv__patient_key(v, row.patient, dek, &err), MV_OK);
    assert_int_equal(mv__patient_key(v, other_patient, other_pkey, &err), MV_OK);
    assert_int_equal(mv__unwrap_object_key(v, other_pkey, oid, row.wrapped, row.wrapped_len, dek, NULL, &err),
                     MV_ERR_INTEGRITY);
    mv__instance_row_clear(&row);
    assert_int_equal(mv_vault_forget_patient(v, "PID-ALPHA-0001", &res, &err), MV_ERR_NOTFOUND);
    get_and_compare(v, &objs[2]);
    mv_vault_close(v);
    mv_keyring_close(kr);
}

static void test_rotate_retire(void **state)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultRotation rot;
    MvInstanceRow row;
    MvError err;
    uint8_t pkey[32], dek[32];
    (void)state;
    stored_vault(&kr, &v, 0);
    assert_int_equal(mv__find_instance(v, objs[0].sop, &row, &err), MV_OK);
    assert_int_equal(mv_vault_rotate(v, 0, &rot, &err), MV_OK);
    assert_int_equal(rot.old_version, 1);
    assert_int_equal(rot.new_version, 2);
    assert_int_equal(rot.n_patient_keys, 2);
    assert_int_equal(rot.n_object_keys, 3);
    for (size_t i = 0; i < N_OBJS; i++)
        get_and_compare(v, &objs[i]);
    /* The pre-rotation wrapped key still opens while version 1 exists... */
    assert_int_equal(mv__patient_key(v, row.patient, pkey, &err), MV_OK);
    assert_int_equal(mv__unwrap_object_key(v, pkey, row.object_id, row.wrapped, row.wrapped_len, dek, NULL, &err),
                     MV_OK);
    assert_int_equal(mv_vault_rotate(v, 1, &rot, &err), MV_OK);
    assert_int_equal(rot.new_version, 3);
    assert_int_equal(rot.n_retired, 2);
    for (size_t i = 0; i < N_OBJS; i++)
        get_and_compare(v, &objs[i]);
    /* ... and not after its KEK version is retired. */
    mv__forget_keys(v);
    assert_int_equal(mv__patient_key(v, row.patient, pkey, &err), MV_OK);
    assert_int_not_equal(mv__unwrap_object_key(v, pkey, row.object_id, row.wrapped, row.wrapped_len, dek, NULL, &err),
                         MV_OK);
    mv__instance_row_clear(&row);
    mv_vault_close(v);
    mv_keyring_close(kr);
}

static void touch(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_recovery(void **state)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultPut res;
    MvError err;
    unsigned rolled = 9, temp = 9;
    char path[512], oid[] = "00112233445566778899aabbccddeeff";
    struct stat sb;
    (void)state;
    char *home = stored_vault(&kr, &v, 0);
    mv_vault_close(v);
    assert_int_equal(mv_vault_open(home, kr, MV_VAULT_WRITE, &v, &err), MV_OK);
    mv_vault_recovered(v, &rolled, &temp);
    assert_int_equal(rolled, 0);
    assert_int_equal(temp, 0);
    {
        Obj extra = {"PID-C", "C^C", "1.2.3.9", "1.2.3.9.1", "1.2.3.9.1.1", "x", 10, NULL, 0};
        build(&extra, 9);
        assert_int_equal(mv_vault_put_memory(v, extra.bytes, extra.len, "extra", &res, &err), MV_OK);
        free(extra.bytes);
    }
    mv_vault_close(v); /* a put staged and never flushed: close rolls it back */
    /* A crash after the renames and before the commit: an intent names a blob in objects/. */
    snprintf(path, sizeof path, "%s/vault/objects/00", home);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/vault/objects/00/%s", home, oid);
    touch(path, "ciphertext");
    snprintf(path, sizeof path, "%s/vault/tmp/intent-0123456789abcdef", home);
    touch(path, "00112233445566778899aabbccddeeff\n");
    snprintf(path, sizeof path, "%s/vault/tmp/ffeeddccbbaa99887766554433221100.part", home);
    touch(path, "half a blob");
    assert_int_equal(mv_vault_open(home, kr, MV_VAULT_WRITE, &v, &err), MV_OK);
    mv_vault_recovered(v, &rolled, &temp);
    assert_int_equal(rolled, 1);
    assert_int_equal(temp, 1);
    snprintf(path, sizeof path, "%s/vault/objects/00/%s", home, oid);
    assert_int_not_equal(stat(path, &sb), 0);
    assert_int_equal(mv_vault_lookup(v, "1.2.3.9.1.1", NULL, NULL, &err), MV_ERR_NOTFOUND);
    {
        MvVaultFsck f;
        assert_int_equal(mv_vault_fsck(v, NULL, NULL, &f, &err), MV_OK);
        assert_int_equal(f.n_damaged + f.n_missing + f.n_orphans + f.n_temp, 0);
        assert_int_equal(f.n_objects, 3);
    }
    mv_vault_close(v);
    mv_keyring_close(kr);
}

typedef struct Problems {
    int n;
    char last[256];
} Problems;

static void on_problem(const char *who, const char *what, void *arg)
{
    Problems *p = arg;
    p->n++;
    snprintf(p->last, sizeof p->last, "%s: %s", who, what);
}

static void test_fsck(void **state)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultFsck f;
    MvError err;
    Problems pr = {0, ""};
    char oid[MV_VAULT_ID_CHARS + 1], *blob, path[512];
    uint8_t *bytes;
    size_t len;
    struct stat sb;
    int fd;
    (void)state;
    char *home = stored_vault(&kr, &v, 4096);
    assert_int_equal(mv_vault_fsck(v, on_problem, &pr, &f, &err), MV_OK);
    assert_int_equal(pr.n, 0);
    assert_int_equal(f.n_objects, 3);
    assert_int_equal(f.bytes, objs[0].len + objs[1].len + objs[2].len);

    /* One flipped byte in the middle of the large blob. */
    assert_int_equal(mv_vault_lookup(v, objs[1].sop, oid, NULL, &err), MV_OK);
    blob = mv__object_path(v, oid);
    assert_int_equal(stat(blob, &sb), 0);
    fd = open(blob, O_RDWR);
    len = (size_t)sb.st_size;
    bytes = malloc(len);
    assert_int_equal(read(fd, bytes, len), (ssize_t)len);
    bytes[len / 2] ^= 0x01;
    assert_int_equal(pwrite(fd, bytes + len / 2, 1, (off_t)(len / 2)), 1);
    assert_int_equal(mv_vault_fsck(v, on_problem, &pr, &f, &err), MV_OK);
    assert_int_equal(f.n_damaged, 1);
    assert_int_equal(pr.n, 1);
    assert_non_null(strstr(pr.last, oid));
    /* get refuses it too, and writes nothing. */
    snprintf(path, sizeof path, "%s/bad.dcm", root);
    assert_int_equal(mv_vault_get(v, objs[1].sop, path, &err), MV_ERR_INTEGRITY);
    assert_int_not_equal(stat(path, &sb), 0);
    bytes[len / 2] ^= 0x01;
    assert_int_equal(pwrite(fd, bytes + len / 2, 1, (off_t)(len / 2)), 1);
    close(fd);

    /* A missing blob and an orphan. */
    snprintf(path, sizeof path, "%s.moved", blob);
    assert_int_equal(rename(blob, path), 0);
    pr.n = 0;
    assert_int_equal(mv_vault_fsck(v, on_problem, &pr, &f, &err), MV_OK);
    assert_int_equal(f.n_missing, 1);
    assert_int_equal(f.n_orphans, 1); /* the .moved file */
    assert_int_equal(rename(path, blob), 0);
    free(blob);
    free(bytes);

    /* A display value changed in the index (SQL, as a tamperer with write access would). */
    {
        sqlite3 *db;
        char dbpath[512];
        snprintf(dbpath, sizeof dbpath, "%s/vault/index.sqlite", home);
        assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "UPDATE patient SET display = substr(display,1,20) || x'00' || substr(display,22)"
                                      " WHERE id = (SELECT min(id) FROM patient)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
    }
    pr.n = 0;
    assert_int_equal(mv_vault_fsck(v, on_problem, &pr, &f, &err), MV_OK);
    assert_true(f.n_damaged >= 1);
    assert_non_null(strstr(pr.last, "patient"));
    mv_vault_close(v);
    mv_keyring_close(kr);
}

static void test_backup_restore(void **state)
{
    MvKeyring *kr = NULL, *kr2 = NULL;
    MvVault *v = NULL, *v2 = NULL;
    MvVaultBackupInfo info;
    MvVaultListing *a = NULL, *b = NULL;
    MvUnlock how = unlock_how();
    MvError err;
    char archive[256], home2[256], home3[256], path[512];
    struct stat sb;
    (void)state;
    stored_vault(&kr, &v, 2048);
    snprintf(archive, sizeof archive, "%s/backup.mvb", root);
    assert_int_equal(mv_vault_backup(v, archive, &info, &err), MV_OK);
    assert_int_equal(info.n_objects, 3);
    assert_int_equal(stat(archive, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    snprintf(home2, sizeof home2, "%s/restored", root);
    assert_int_equal(mv_vault_restore(home2, archive, &how, &kr2, &info, &err), MV_OK);
    assert_int_equal(info.n_objects, 3);
    assert_int_equal(mv_vault_open(home2, kr2, 0, &v2, &err), MV_OK);
    assert_int_equal(mv_vault_list(v, NULL, &a, &err), MV_OK);
    assert_int_equal(mv_vault_list(v2, NULL, &b, &err), MV_OK);
    assert_int_equal(a->n_patients, b->n_patients);
    assert_int_equal(a->n_instances, b->n_instances);
    for (size_t p = 0; p < a->n_patients; p++) {
        assert_string_equal(a->patients[p].ref, b->patients[p].ref);
        assert_string_equal(a->patients[p].name, b->patients[p].name);
    }
    mv_vault_listing_free(a);
    mv_vault_listing_free(b);
    for (size_t i = 0; i < N_OBJS; i++)
        get_and_compare(v2, &objs[i]);
    /* Not into a home that has a keyring. */
    assert_int_equal(mv_vault_restore(home2, archive, &how, NULL, &info, &err), MV_ERR_ARG);
    mv_vault_close(v2);
    mv_keyring_close(kr2);

    /* A changed byte anywhere in the archive: refused, and the home is left empty. */
    {
        size_t len = 0;
        uint8_t *bytes;
        int fd = open(archive, O_RDONLY);
        assert_int_equal(fstat(fd, &sb), 0);
        len = (size_t)sb.st_size;
        bytes = malloc(len);
        assert_int_equal(read(fd, bytes, len), (ssize_t)len);
        close(fd);
        static const double where[] = {0.3, 0.5, 0.9, 0.999};
        for (size_t k = 0; k < sizeof where / sizeof where[0]; k++) {
            size_t at = (size_t)((double)len * where[k]);
            char bad[256];
            snprintf(bad, sizeof bad, "%s/bad%zu.mvb", root, k);
            bytes[at] ^= 0x20;
            fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            assert_int_equal(write(fd, bytes, len), (ssize_t)len);
            close(fd);
            bytes[at] ^= 0x20;
            snprintf(home3, sizeof home3, "%s/bad-home%zu", root, k);
            MvStatus st = mv_vault_restore(home3, bad, &how, NULL, &info, &err);
            if (st != MV_ERR_INTEGRITY)
                fail_msg("byte %zu of %zu changed: restore gave %s", at, len, mv_status_name(st));
            snprintf(path, sizeof path, "%s/keyring", home3);
            assert_int_not_equal(stat(path, &sb), 0);
            snprintf(path, sizeof path, "%s/vault", home3);
            assert_int_not_equal(stat(path, &sb), 0);
        }
        /* Cut short. */
        fd = open(archive, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_int_equal(write(fd, bytes, len - 20), (ssize_t)(len - 20));
        close(fd);
        snprintf(home3, sizeof home3, "%s/short-home", root);
        assert_int_equal(mv_vault_restore(home3, archive, &how, NULL, &info, &err), MV_ERR_INTEGRITY);
        free(bytes);
    }
    mv_vault_close(v);
    mv_keyring_close(kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_list),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_rm),
        cmocka_unit_test(test_forget_patient_shreds),
        cmocka_unit_test(test_rotate_retire),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_fsck),
        cmocka_unit_test(test_backup_restore),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
