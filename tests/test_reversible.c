/* Unit tests of reversible de-identification (src/deid/encrypt_attrs.c): what is recorded (the
 * changed top-level attributes, a nested change as its whole top-level sequence), that the
 * originals come back in either byte order, and the refusals: a key that is no recipient
 * (denied), altered content and malformed decrypted datasets (integrity), a file without the
 * sequence (not found), each leaving the dataset as it was. Keys and certificates are made
 * here with OpenSSL; nothing secret is stored in the project. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "deid/reversible_int.h"
#include "medveil/dicom.h"
#include "medveil/reversible.h"

#include "dicom_values.h"

#define T_NAME MV_TAG(0x0010, 0x0010)
#define T_ID MV_TAG(0x0010, 0x0020)
#define T_SOP MV_TAG(0x0008, 0x0018)
#define T_REF_SERIES MV_TAG(0x0008, 0x1115)
#define T_SERIES_UID MV_TAG(0x0020, 0x000E)
#define T_ROWS MV_TAG(0x0028, 0x0010)
#define T_EAS MV_TAG(0x0400, 0x0500)
#define T_CONTENT MV_TAG(0x0400, 0x0520)

static char dir[64];
static char path_key_a[96], path_crt_a[96], path_key_b[96], path_crt_b[96], path_input[96];

static void must(MvStatus st, const MvError *err)
{
    if (st != MV_OK)
        fail_msg("%s: %s", mv_status_name(st), err->message);
}

static char *string_of(const MvDataset *ds, uint32_t tag)
{
    char *s = NULL;
    MvError err;

    must(mv_dataset_get_string(ds, tag, &s, &err), &err);
    return s;
}

static void assert_string(const MvDataset *ds, uint32_t tag, const char *want)
{
    char *s = string_of(ds, tag);
    assert_string_equal(s, want);
    free(s);
}

/* A self-signed RSA-2048 certificate, valid for a day, and its key, as PEM files. */
static void make_identity(const char *key_path, const char *crt_path)
{
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    X509_NAME *name;
    FILE *f;

    assert_non_null(pkey);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)getpid() + (long)(key_path[strlen(key_path) - 5]));
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pkey);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)key_path, -1, -1, 0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
    assert_non_null(f = fopen(key_path, "w"));
    assert_int_equal(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    assert_non_null(f = fopen(crt_path, "w"));
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
}

/* The "hospital" file: a name, an ID, a SOP Instance UID, rows, and a reference sequence. */
static void write_input(const char *path, const char *ts)
{
    MvFile *file = NULL;
    MvDataset *ds, *item = NULL;
    MvElement *seq = NULL;
    MvWriteOptions wopts;
    MvError err;

    must(mv_file_new(&file), NULL);
    ds = mv_file_dataset(file);
    must(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0016), MV_VR_UI, "1.2.840.10008.5.1.4.1.1.7", &err), &err);
    must(mv_dataset_set_string(ds, T_SOP, MV_VR_UI, "1.2.3.4.5.6", &err), &err);
    must(mv_dataset_set_string(ds, T_NAME, MV_VR_PN, "DOE^JANE", &err), &err);
    must(mv_dataset_set_string(ds, T_ID, MV_VR_LO, "PAT-0042", &err), &err);
    must(mv_dataset_set_uint(ds, T_ROWS, MV_VR_US, 512, &err), &err);
    must(mv_dataset_set_sequence(ds, T_REF_SERIES, &seq, &err), &err);
    must(mv_element_insert_item(seq, MV_APPEND, &item, &err), &err);
    must(mv_dataset_set_string(item, T_SERIES_UID, MV_VR_UI, "1.2.3.4.7", &err), &err);
    mv_write_options_init(&wopts);
    wopts.transfer_syntax = ts;
    wopts.flags = MV_WRITE_NO_SYNC;
    must(mv_file_write(file, path, &wopts, &err), &err);
    mv_file_free(file);
}

static MvFile *open_file(const char *path)
{
    MvFile *file = NULL;
    MvError err;

    must(mv_file_open(path, NULL, &file, &err), &err);
    return file;
}

/* What a de-identifier does to the input: the name replaced, the ID removed, the UID inside
 * the sequence replaced; rows untouched unless change_rows. */
static void deidentify(MvFile *file, int change_rows)
{
    MvDataset *ds = mv_file_dataset(file);
    MvError err;

    must(mv_dataset_set_string(ds, T_NAME, MV_VR_PN, "MV0123456789ABCDEF", &err), &err);
    assert_int_equal(mv_dataset_remove(ds, T_ID), MV_OK);
    must(mv_dataset_set_string(mv_element_item(must_find(ds, T_REF_SERIES), 0), T_SERIES_UID, MV_VR_UI, "2.25.99",
                               &err),
         &err);
    if (change_rows)
        must(mv_dataset_set_uint(ds, T_ROWS, MV_VR_US, 1, &err), &err);
}

static MvRecipients *recipients(const char *crt, unsigned flags)
{
    MvRecipients *r = NULL;
    MvError err;

    must(mv_recipients_new(flags, &r, &err), &err);
    must(mv_recipients_add_file(r, crt, &err), &err);
    return r;
}

static MvReidKey *key(const char *key_path)
{
    MvReidKey *k = NULL;
    MvError err;

    must(mv_reid_key_load(key_path, NULL, NULL, 0, &k, &err), &err);
    return k;
}

/* Input opened twice, the second de-identified and given the encrypted originals, written
 * and opened again: what a reader of the released file gets. */
static MvFile *released(const char *ts, unsigned flags, int change_rows, size_t *n_recorded)
{
    char out[128];
    MvFile *orig, *file;
    MvRecipients *r = recipients(path_crt_a, flags);
    MvWriteOptions wopts;
    MvError err;

    write_input(path_input, ts);
    orig = open_file(path_input);
    file = open_file(path_input);
    deidentify(file, change_rows);
    must(mv_originals_encrypt(r, mv_file_dataset(orig), file, n_recorded, &err), &err);
    snprintf(out, sizeof out, "%s/released.dcm", dir);
    mv_write_options_init(&wopts);
    wopts.flags = MV_WRITE_NO_SYNC;
    must(mv_file_write(file, out, &wopts, &err), &err);
    mv_file_free(file);
    mv_file_free(orig);
    mv_recipients_free(r);
    return open_file(out);
}

static void test_records_changes_and_restores(void **state)
{
    size_t n = 0;
    MvFile *file = released(MV_UID_EXPLICIT_LE, 0, 0, &n);
    MvDataset *ds = mv_file_dataset(file);
    MvReidKey *k = key(path_key_a);
    MvReidResult res;
    MvError err;

    (void)state;
    /* Name, ID and the whole reference sequence; rows and SOP Instance UID did not change. */
    assert_int_equal(n, 3);
    assert_null(mv_dataset_find(ds, T_ID));
    must(mv_originals_restore(k, file, 0, &res, &err), &err);
    assert_int_equal(res.n_restored, 3);
    assert_int_equal(res.item_index, 0);
    assert_string(ds, T_NAME, "DOE^JANE");
    assert_string(ds, T_ID, "PAT-0042");
    assert_string(mv_element_item(must_find(ds, T_REF_SERIES), 0), T_SERIES_UID, "1.2.3.4.7");
    assert_int_equal(uint_of(ds, T_ROWS, 0), 512);
    assert_null(mv_dataset_find(ds, T_EAS));
    mv_reid_key_free(k);
    mv_file_free(file);
}

static void test_big_endian_values_swap_both_ways(void **state)
{
    size_t n = 0;
    MvFile *file = released(MV_UID_EXPLICIT_BE, 0, 1, &n);
    MvDataset *ds = mv_file_dataset(file);
    MvReidKey *k = key(path_key_a);
    MvReidResult res;
    MvError err;

    (void)state;
    assert_true(mv_dataset_big_endian(ds));
    assert_int_equal(n, 4);
    assert_int_equal(uint_of(ds, T_ROWS, 0), 1);
    must(mv_originals_restore(k, file, 0, &res, &err), &err);
    assert_int_equal(uint_of(ds, T_ROWS, 0), 512);
    assert_string(ds, T_NAME, "DOE^JANE");
    mv_reid_key_free(k);
    mv_file_free(file);
}

static void test_other_key_denied_dataset_unchanged(void **state)
{
    MvFile *file = released(MV_UID_EXPLICIT_LE, MV_REV_AUTH_ENVELOPED, 0, NULL);
    MvDataset *ds = mv_file_dataset(file);
    MvReidKey *k = key(path_key_b);
    MvReidResult res;
    MvError err;

    (void)state;
    assert_int_equal(mv_originals_restore(k, file, 0, &res, &err), MV_ERR_DENIED);
    assert_non_null(strstr(err.message, "not encrypted to this key"));
    assert_string(ds, T_NAME, "MV0123456789ABCDEF");
    assert_non_null(mv_dataset_find(ds, T_EAS));
    mv_reid_key_free(k);
    mv_file_free(file);
}

static void test_second_item_for_second_recipient(void **state)
{
    MvFile *orig, *file;
    MvRecipients *ra = recipients(path_crt_a, 0), *rb = recipients(path_crt_b, 0);
    MvReidKey *kb = key(path_key_b);
    MvReidResult res;
    MvError err;

    (void)state;
    write_input(path_input, MV_UID_EXPLICIT_LE);
    orig = open_file(path_input);
    file = open_file(path_input);
    deidentify(file, 0);
    must(mv_originals_encrypt(ra, mv_file_dataset(orig), file, NULL, &err), &err);
    must(mv_originals_encrypt(rb, mv_file_dataset(orig), file, NULL, &err), &err);
    assert_int_equal(mv_element_item_count(must_find(mv_file_dataset(file), T_EAS)), 2);
    must(mv_originals_restore(kb, file, 0, &res, &err), &err);
    assert_int_equal(res.item_index, 1);
    assert_string(mv_file_dataset(file), T_NAME, "DOE^JANE");
    /* Only the item used goes; A's stays. */
    assert_int_equal(mv_element_item_count(must_find(mv_file_dataset(file), T_EAS)), 1);
    mv_reid_key_free(kb);
    mv_recipients_free(ra);
    mv_recipients_free(rb);
    mv_file_free(file);
    mv_file_free(orig);
}

static void test_altered_content_integrity(void **state)
{
    MvFile *file = released(MV_UID_EXPLICIT_LE, MV_REV_AUTH_ENVELOPED, 0, NULL);
    MvDataset *ds = mv_file_dataset(file), *item = mv_element_item(must_find(ds, T_EAS), 0);
    MvReidKey *k = key(path_key_a);
    MvReidResult res;
    MvError err;
    size_t len = 0;
    const uint8_t *v = mv_element_value(must_find(item, T_CONTENT), &len);
    uint8_t *copy = malloc(len);

    (void)state;
    assert_non_null(copy);
    memcpy(copy, v, len);
    /* The DER length from its header (0x30 0x82 hi lo); the structure ends with the 16-byte
     * GCM tag (2 bytes of header before it), so 3 bytes before that is ciphertext. */
    assert_int_equal(copy[1], 0x82);
    copy[4 + ((size_t)copy[2] << 8 | copy[3]) - 18 - 3] ^= 0x20;
    must(mv_dataset_set_bytes(item, T_CONTENT, MV_VR_OB, copy, len, &err), &err);
    free(copy);
    assert_int_equal(mv_originals_restore(k, file, 0, &res, &err), MV_ERR_INTEGRITY);
    assert_string(ds, T_NAME, "MV0123456789ABCDEF");
    mv_reid_key_free(k);
    mv_file_free(file);
}

static void test_no_sequence_not_found(void **state)
{
    MvFile *file;
    MvReidKey *k = key(path_key_a);
    MvReidResult res;
    MvError err;

    (void)state;
    write_input(path_input, MV_UID_EXPLICIT_LE);
    file = open_file(path_input);
    assert_int_equal(mv_originals_restore(k, file, 0, &res, &err), MV_ERR_NOTFOUND);
    mv_reid_key_free(k);
    mv_file_free(file);
}

/* Explicit VR LE by hand (PS3.5 7.1.2, 7.5): a header with a 16- or 32-bit length. */
static size_t put_el(uint8_t *p, uint32_t tag, const char *vr, const void *value, uint32_t len)
{
    int long_form = strcmp(vr, "SQ") == 0 || strcmp(vr, "OB") == 0 || strcmp(vr, "UN") == 0;
    size_t n = 0;

    p[n++] = (uint8_t)(tag >> 16);
    p[n++] = (uint8_t)(tag >> 24);
    p[n++] = (uint8_t)tag;
    p[n++] = (uint8_t)(tag >> 8);
    p[n++] = (uint8_t)vr[0];
    p[n++] = (uint8_t)vr[1];
    if (long_form) {
        p[n++] = 0;
        p[n++] = 0;
        memcpy(p + n, &len, 4); /* the test runs on little-endian machines */
        n += 4;
    } else {
        p[n++] = (uint8_t)len;
        p[n++] = (uint8_t)(len >> 8);
    }
    if (value != NULL && len != 0xFFFFFFFFu) {
        memcpy(p + n, value, len);
        n += len;
    }
    return n;
}

static size_t put_item(uint8_t *p, int end)
{
    static const uint8_t start[8] = {0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF};
    static const uint8_t stop[8] = {0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0};
    memcpy(p, end ? stop : start, 8);
    return 8;
}

static size_t put_seq_end(uint8_t *p)
{
    static const uint8_t stop[8] = {0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0};
    memcpy(p, stop, 8);
    return 8;
}

/* Decrypted contents that are not one Modified Attributes Sequence item are refused, and
 * nothing of them reaches the dataset. */
static void test_malformed_payloads(void **state)
{
    uint8_t p[512];
    size_t n;
    MvFile *file;
    MvReidResult res;
    MvError err;

    (void)state;
    write_input(path_input, MV_UID_EXPLICIT_LE);
    file = open_file(path_input);
    memset(&res, 0, sizeof res);

    memcpy(p, "garbage, not a dataset at all....", 32);
    assert_int_equal(mv__originals_apply(file, MV_UID_EXPLICIT_LE, p, 32, &res, &err), MV_ERR_INTEGRITY);

    /* Two items. */
    n = put_el(p, MV_TAG(0x0400, 0x0550), "SQ", NULL, 0xFFFFFFFFu);
    n += put_item(p + n, 0);
    n += put_el(p + n, T_NAME, "PN", "EVIL^ONE", 8);
    n += put_item(p + n, 1);
    n += put_item(p + n, 0);
    n += put_item(p + n, 1);
    n += put_seq_end(p + n);
    assert_int_equal(mv__originals_apply(file, MV_UID_EXPLICIT_LE, p, n, &res, &err), MV_ERR_INTEGRITY);

    /* A File Meta Information element inside the item. */
    n = put_el(p, MV_TAG(0x0400, 0x0550), "SQ", NULL, 0xFFFFFFFFu);
    n += put_item(p + n, 0);
    n += put_el(p + n, MV_TAG(0x0002, 0x0010), "UI", "1.2.840.10008.1.2\0", 18);
    n += put_el(p + n, T_NAME, "PN", "EVIL^ONE", 8);
    n += put_item(p + n, 1);
    n += put_seq_end(p + n);
    assert_int_equal(mv__originals_apply(file, MV_UID_EXPLICIT_LE, p, n, &res, &err), MV_ERR_INTEGRITY);
    assert_string(mv_file_dataset(file), T_NAME, "DOE^JANE");

    /* A compressed or unknown transfer syntax. */
    assert_int_equal(mv__originals_apply(file, "1.2.840.10008.1.2.4.50", p, n, &res, &err), MV_ERR_UNSUPPORTED);
    assert_int_equal(mv__originals_apply(file, "1.2.3", p, n, &res, &err), MV_ERR_UNSUPPORTED);

    /* The same item without the meta element is applied. */
    n = put_el(p, MV_TAG(0x0400, 0x0550), "SQ", NULL, 0xFFFFFFFFu);
    n += put_item(p + n, 0);
    n += put_el(p + n, T_NAME, "PN", "ROE^RICH", 8);
    n += put_item(p + n, 1);
    n += put_seq_end(p + n);
    must(mv__originals_apply(file, MV_UID_EXPLICIT_LE, p, n, &res, &err), &err);
    assert_string(mv_file_dataset(file), T_NAME, "ROE^RICH");
    assert_int_equal(res.n_restored, 1);
    mv_file_free(file);
}

static void test_refused_certificates(void **state)
{
    MvRecipients *r = NULL;
    MvError err;

    (void)state;
    must(mv_recipients_new(0, &r, &err), &err);
    assert_int_equal(mv_recipients_add_file(r, path_key_a, &err), MV_ERR_PARSE);
    assert_int_equal(mv_recipients_add_file(r, "/nonexistent/cert.pem", &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_recipients_count(r), 0);
    must(mv_recipients_add_file(r, path_crt_a, &err), &err);
    assert_int_equal(mv_recipients_count(r), 1);
    {
        char fp[72];
        mv_recipients_fingerprint(r, 0, fp);
        assert_int_equal(strlen(fp), 71);
        assert_memory_equal(fp, "sha256:", 7);
    }
    mv_recipients_free(r);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mv-test-reversible-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path_key_a, sizeof path_key_a, "%s/a.key", dir);
    snprintf(path_crt_a, sizeof path_crt_a, "%s/a.crt", dir);
    snprintf(path_key_b, sizeof path_key_b, "%s/b.key", dir);
    snprintf(path_crt_b, sizeof path_crt_b, "%s/b.crt", dir);
    snprintf(path_input, sizeof path_input, "%s/input.dcm", dir);
    make_identity(path_key_a, path_crt_a);
    make_identity(path_key_b, path_crt_b);
    return 0;
}

static int teardown(void **state)
{
    const char *names[] = {"a.key", "a.crt", "b.key", "b.crt", "input.dcm", "released.dcm"};
    char path[128];

    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_changes_and_restores),
        cmocka_unit_test(test_big_endian_values_swap_both_ways),
        cmocka_unit_test(test_other_key_denied_dataset_unchanged),
        cmocka_unit_test(test_second_item_for_second_recipient),
        cmocka_unit_test(test_altered_content_integrity),
        cmocka_unit_test(test_no_sequence_not_found),
        cmocka_unit_test(test_malformed_payloads),
        cmocka_unit_test(test_refused_certificates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
