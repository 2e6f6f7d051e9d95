/* Reversible de-identification (PS3.15 E.1.1 steps 1, 4 and 5; E.1.2): what de-identification
 * changed is found by comparing the edited dataset with a second, untouched parse of the same
 * input, so no edit of the engine can escape the record; the originals become one Modified
 * Attributes Sequence item, encoded in Explicit VR Little Endian and wrapped in CMS
 * (EnvelopedData or AuthEnvelopedData from OpenSSL 3) for X.509 recipients, and are restored
 * from there by a holder of a recipient's private key. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/core_int.h"
#include "deid/reversible_int.h"

#define TAG_CHARSET MV_TAG(0x0008, 0x0005)
#define TAG_SOP_INSTANCE MV_TAG(0x0008, 0x0018)
#define TAG_IDENTITY_REMOVED MV_TAG(0x0012, 0x0062)
#define TAG_DEID_METHOD MV_TAG(0x0012, 0x0063)
#define TAG_DEID_METHOD_CODES MV_TAG(0x0012, 0x0064)
#define TAG_TEMPORAL_MODIFIED MV_TAG(0x0028, 0x0303)
#define TAG_ENCRYPTED_ATTRS MV_TAG(0x0400, 0x0500)
#define TAG_ENCRYPTED_TS MV_TAG(0x0400, 0x0510)
#define TAG_ENCRYPTED_CONTENT MV_TAG(0x0400, 0x0520)
#define TAG_MODIFIED_ATTRS MV_TAG(0x0400, 0x0550)
#define TAG_DIR_FIRST MV_TAG(0x0004, 0x1200)
#define TAG_DIR_LAST MV_TAG(0x0004, 0x1202)
#define TAG_DIR_RECORDS MV_TAG(0x0004, 0x1220)
#define TAG_DIR_NEXT MV_TAG(0x0004, 0x1400)
#define TAG_DIR_LOWER MV_TAG(0x0004, 0x1420)

#define MIN_RSA_BITS 2048

struct MvRecipients {
    unsigned flags;
    STACK_OF(X509) *certs;
};

struct MvReidKey {
    EVP_PKEY *pkey;
    X509 *cert; /* NULL: every key-transport recipient info is tried */
};

/* ---- OpenSSL error text (never holds data: OpenSSL's messages name functions and reasons) */

static MvStatus ossl_error(MvError *err, MvStatus code, uint32_t tag, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char reason[160];

    if (e != 0)
        ERR_error_string_n(e, reason, sizeof reason);
    else
        snprintf(reason, sizeof reason, "no detail");
    ERR_clear_error();
    return mv_error_set(err, code, tag, MV_NO_OFFSET, "%s (%s)", what, reason);
}

/* ---- copying elements between datasets of any byte order ------------------------------- */

/* Bytes per value that change order between little and big endian (AT is two 16-bit halves). */
static size_t swap_unit(MvVr vr)
{
    switch (vr) {
    case MV_VR_US: case MV_VR_SS: case MV_VR_OW: case MV_VR_AT: return 2;
    case MV_VR_UL: case MV_VR_SL: case MV_VR_FL: case MV_VR_OF: case MV_VR_OL: return 4;
    case MV_VR_FD: case MV_VR_OD: case MV_VR_SV: case MV_VR_UV: case MV_VR_OV: return 8;
    default: return 1;
    }
}

/* 1 if el, at any depth, holds encapsulated data (which the editing API cannot build). */
static int holds_encapsulated(const MvElement *el, uint32_t *where)
{
    if (mv_element_is_encapsulated(el)) {
        *where = mv_element_tag(el);
        return 1;
    }
    for (size_t i = 0; i < mv_element_item_count(el); i++) {
        const MvDataset *item = mv_element_item(el, i);
        for (size_t k = 0; k < mv_dataset_count(item); k++)
            if (holds_encapsulated(mv_dataset_at(item, k), where))
                return 1;
    }
    return 0;
}

/* Sets a copy of src_el (held by src) into dst, replacing any element of its tag; values are
 * put into dst's byte order and sequences are copied item by item. */
static MvStatus copy_element(MvDataset *dst, const MvDataset *src, const MvElement *src_el, MvError *err)
{
    uint32_t tag = mv_element_tag(src_el);
    MvVr vr = mv_element_vr(src_el);
    MvStatus st;

    if (mv_element_is_encapsulated(src_el))
        return mv_error_set(err, MV_ERR_UNSUPPORTED, tag, MV_NO_OFFSET,
                            "(%04X,%04X) holds encapsulated data, which cannot be recorded or restored",
                            MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
    if (mv_element_is_sequence(src_el)) {
        MvElement *seq = NULL;
        if ((st = mv_dataset_set_sequence(dst, tag, &seq, err)) != MV_OK)
            return st;
        for (size_t i = 0; i < mv_element_item_count(src_el); i++) {
            const MvDataset *src_item = mv_element_item(src_el, i);
            MvDataset *dst_item = NULL;
            seq = mv_dataset_find(dst, tag);
            if ((st = mv_element_insert_item(seq, MV_APPEND, &dst_item, err)) != MV_OK)
                return st;
            for (size_t k = 0; k < mv_dataset_count(src_item); k++)
                if ((st = copy_element(dst_item, src_item, mv_dataset_at(src_item, k), err)) != MV_OK)
                    return st;
        }
        return MV_OK;
    }
    {
        size_t len = 0, unit = swap_unit(vr);
        const uint8_t *value = mv_element_value(src_el, &len);
        uint8_t *swapped = NULL;

        if (unit > 1 && len > 0 && mv_dataset_big_endian(src) != mv_dataset_big_endian(dst)) {
            if ((swapped = malloc(len)) == NULL)
                return mv_error_set(err, MV_ERR_NOMEM, tag, MV_NO_OFFSET, "out of memory");
            for (size_t i = 0; i + unit <= len; i += unit)
                for (size_t b = 0; b < unit; b++)
                    swapped[i + b] = value[i + unit - 1 - b];
            for (size_t i = len - len % unit; i < len; i++)
                swapped[i] = value[i];
            value = swapped;
        }
        st = mv_dataset_set_bytes(dst, tag, vr, value, len, err);
        if (swapped != NULL) {
            OPENSSL_cleanse(swapped, len);
            free(swapped);
        }
        return st;
    }
}

static int same_dataset(const MvDataset *a, const MvDataset *b);

/* 1 if two elements of the same tag hold the same VR and the same bytes at every depth. */
static int same_element(const MvElement *a, const MvElement *b)
{
    if (mv_element_vr(a) != mv_element_vr(b) || mv_element_is_sequence(a) != mv_element_is_sequence(b) ||
        mv_element_is_encapsulated(a) != mv_element_is_encapsulated(b))
        return 0;
    if (mv_element_is_sequence(a)) {
        if (mv_element_item_count(a) != mv_element_item_count(b))
            return 0;
        for (size_t i = 0; i < mv_element_item_count(a); i++)
            if (!same_dataset(mv_element_item(a, i), mv_element_item(b, i)))
                return 0;
        return 1;
    }
    if (mv_element_is_encapsulated(a)) {
        if (mv_element_fragment_count(a) != mv_element_fragment_count(b))
            return 0;
        for (size_t i = 0; i < mv_element_fragment_count(a); i++) {
            size_t la = 0, lb = 0;
            const uint8_t *fa = mv_element_fragment(a, i, &la), *fb = mv_element_fragment(b, i, &lb);
            if (la != lb || (la > 0 && memcmp(fa, fb, la) != 0))
                return 0;
        }
        return 1;
    }
    {
        size_t la = 0, lb = 0;
        const uint8_t *va = mv_element_value(a, &la), *vb = mv_element_value(b, &lb);
        return la == lb && (la == 0 || memcmp(va, vb, la) == 0);
    }
}

static int same_dataset(const MvDataset *a, const MvDataset *b)
{
    if (mv_dataset_count(a) != mv_dataset_count(b))
        return 0;
    for (size_t i = 0; i < mv_dataset_count(a); i++) {
        const MvElement *ea = mv_dataset_at(a, i), *eb = mv_dataset_at(b, i);
        if (mv_element_tag(ea) != mv_element_tag(eb) || !same_element(ea, eb))
            return 0;
    }
    return 1;
}

static int is_marker(uint32_t tag)
{
    return tag == TAG_IDENTITY_REMOVED || tag == TAG_DEID_METHOD || tag == TAG_DEID_METHOD_CODES ||
           tag == TAG_TEMPORAL_MODIFIED;
}

static int is_pixel_data(uint32_t tag)
{
    return tag == MV_TAG(0x7FE0, 0x0008) || tag == MV_TAG(0x7FE0, 0x0009) || tag == MV_TAG_PIXEL_DATA;
}

/* ---- recipients --------------------------------------------------------------------- */

MvStatus mv_recipients_new(unsigned flags, MvRecipients **out, MvError *err)
{
    MvRecipients *r = calloc(1, sizeof *r);

    *out = NULL;
    if (r == NULL || (r->certs = sk_X509_new_null()) == NULL) {
        free(r);
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    r->flags = flags;
    *out = r;
    return MV_OK;
}

void mv_recipients_free(MvRecipients *r)
{
    if (r == NULL)
        return;
    sk_X509_pop_free(r->certs, X509_free);
    free(r);
}

size_t mv_recipients_count(const MvRecipients *r)
{
    return (size_t)sk_X509_num(r->certs);
}

void mv_recipients_fingerprint(const MvRecipients *r, size_t index, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    X509 *cert = sk_X509_value(r->certs, (int)index);

    out[0] = '\0';
    if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32)
        return;
    memcpy(out, "sha256:", 7);
    mv__hex(md, n, out + 7);
}

/* Why cert cannot be a recipient, or NULL if it can. */
static const char *unfit_recipient(X509 *cert)
{
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    uint32_t usage;

    if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)
        return "its key is not RSA (PS3.15 E.1.1 asks for RSA key transport)";
    if (EVP_PKEY_get_bits(pk) < MIN_RSA_BITS)
        return "its RSA key is shorter than 2048 bits";
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
        return "it has expired";
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0)
        return "it is not valid yet";
    usage = X509_get_key_usage(cert);
    if (usage != UINT32_MAX && !(usage & KU_KEY_ENCIPHERMENT))
        return "its Key Usage does not allow key encipherment";
    return NULL;
}

MvStatus mv_recipients_add_file(MvRecipients *r, const char *pem_path, MvError *err)
{
    BIO *in = BIO_new_file(pem_path, "r");
    STACK_OF(X509) *found = NULL;
    X509 *cert;
    MvStatus st = MV_OK;

    if (in == NULL) {
        ERR_clear_error();
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET, "%s: cannot open: %s", pem_path,
                            strerror(errno));
    }
    if ((found = sk_X509_new_null()) == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    while ((cert = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        const char *why = unfit_recipient(cert);
        if (why != NULL) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: certificate %d cannot be a recipient: %s",
                              pem_path, sk_X509_num(found) + 1, why);
            X509_free(cert);
            goto out;
        }
        if (!sk_X509_push(found, cert)) {
            X509_free(cert);
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            goto out;
        }
    }
    ERR_clear_error(); /* the end of the file reads as "no start line" */
    if (sk_X509_num(found) == 0) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, MV_NO_OFFSET, "%s: no PEM certificate in the file",
                          pem_path);
        goto out;
    }
    while (sk_X509_num(found) > 0) {
        cert = sk_X509_shift(found);
        if (!sk_X509_push(r->certs, cert)) {
            X509_free(cert);
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            goto out;
        }
    }
out:
    sk_X509_pop_free(found, X509_free);
    BIO_free(in);
    return st;
}

/* ---- encrypting ----------------------------------------------------------------------- */

/* The dataset of payload encoded in Explicit VR Little Endian, without preamble or meta
 * information, into *out (malloc'd; the caller cleanses and frees it). The bytes go through
 * an anonymous memory file, never through the file system. */
static MvStatus encode_dataset(MvFile *payload, uint8_t **out, size_t *out_len, MvError *err)
{
    MvWriteOptions wopts;
    struct stat sb;
    uint8_t *bytes = NULL;
    size_t skip, size;
    MvStatus st;
    int fd = memfd_create("medveil-originals", MFD_CLOEXEC);

    *out = NULL;
    *out_len = 0;
    if (fd < 0)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot make a memory file: %s",
                            strerror(errno));
    mv_write_options_init(&wopts);
    wopts.transfer_syntax = MV_UID_EXPLICIT_LE;
    wopts.flags = MV_WRITE_NO_SYNC | MV_WRITE_NO_PREAMBLE;
    if ((st = mv_file_write_fd(payload, fd, &wopts, err)) != MV_OK)
        goto out;
    if (fstat(fd, &sb) != 0 || sb.st_size < 16) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot size the memory file");
        goto out;
    }
    size = (size_t)sb.st_size;
    if ((bytes = malloc(size)) == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if (pread(fd, bytes, size, 0) != (ssize_t)size) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot read the memory file back");
        goto out;
    }
    /* "DICM", then (0002,0000) UL = the length of the rest of group 0002. */
    if (memcmp(bytes, "DICM\x02\x00\x00\x00UL\x04\x00", 12) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "unexpected layout of the encoded originals");
        goto out;
    }
    skip = 16 + ((size_t)bytes[12] | (size_t)bytes[13] << 8 | (size_t)bytes[14] << 16 | (size_t)bytes[15] << 24);
    if (skip > size) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "unexpected layout of the encoded originals");
        goto out;
    }
    memmove(bytes, bytes + skip, size - skip);
    OPENSSL_cleanse(bytes + (size - skip), skip);
    *out = bytes;
    *out_len = size - skip;
    bytes = NULL;
out:
    if (bytes != NULL) {
        OPENSSL_cleanse(bytes, size);
        free(bytes);
    }
    close(fd);
    return st;
}

/* plain as a DER CMS EnvelopedData (or AuthEnvelopedData) for every recipient of r. */
static MvStatus cms_encrypt(const MvRecipients *r, const uint8_t *plain, size_t len, uint8_t **der,
                            size_t *der_len, MvError *err)
{
    const EVP_CIPHER *cipher = (r->flags & MV_REV_AUTH_ENVELOPED) ? EVP_aes_256_gcm() : EVP_aes_256_cbc();
    BIO *in = NULL;
    CMS_ContentInfo *cms = NULL;
    unsigned char *out = NULL;
    int n;
    MvStatus st = MV_OK;

    *der = NULL;
    *der_len = 0;
    if (len > INT32_MAX)
        return mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "the originals exceed 2 GiB");
    if ((in = BIO_new_mem_buf(plain, (int)len)) == NULL ||
        (cms = CMS_encrypt(NULL, in, cipher, CMS_BINARY | CMS_PARTIAL)) == NULL) {
        st = ossl_error(err, MV_ERR_CRYPTO, MV_NO_TAG, "cannot start the CMS structure");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(r->certs); i++) {
        CMS_RecipientInfo *ri = CMS_add1_recipient_cert(cms, sk_X509_value(r->certs, i), CMS_KEY_PARAM);
        EVP_PKEY_CTX *pctx = ri != NULL ? CMS_RecipientInfo_get0_pkey_ctx(ri) : NULL;
        if (pctx == NULL) {
            st = ossl_error(err, MV_ERR_CRYPTO, MV_NO_TAG, "cannot add a recipient");
            goto out;
        }
        /* RFC 4055 RSAES-OAEP with SHA-256 and MGF1-SHA-256, unless the peer is too old for it. */
        if (!(r->flags & MV_REV_RSA_PKCS1V15) &&
            (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
             EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)) {
            st = ossl_error(err, MV_ERR_CRYPTO, MV_NO_TAG, "cannot set RSA-OAEP for a recipient");
            goto out;
        }
    }
    if (CMS_final(cms, in, NULL, CMS_BINARY) != 1) {
        st = ossl_error(err, MV_ERR_CRYPTO, MV_NO_TAG, "cannot encrypt the originals");
        goto out;
    }
    if ((n = i2d_CMS_ContentInfo(cms, &out)) <= 0) {
        st = ossl_error(err, MV_ERR_CRYPTO, MV_NO_TAG, "cannot encode the CMS structure");
        goto out;
    }
    if ((*der = malloc((size_t)n)) == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    memcpy(*der, out, (size_t)n);
    *der_len = (size_t)n;
out:
    OPENSSL_free(out);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    return st;
}

MvStatus mv_originals_encrypt(const MvRecipients *r, const MvDataset *original, MvFile *deidentified,
                              size_t *n_recorded, MvError *err)
{
    MvDataset *ds = mv_file_dataset(deidentified), *item = NULL, *eas_item = NULL;
    MvFile *payload = NULL;
    MvElement *seq = NULL;
    uint8_t *plain = NULL, *der = NULL;
    size_t plain_len = 0, der_len = 0, n = 0;
    MvStatus st;

    mv_error_clear(err);
    if (n_recorded != NULL)
        *n_recorded = 0;
    if (mv_recipients_count(r) == 0)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "no recipient certificate");
    if ((st = mv_file_new(&payload)) != MV_OK) {
        return mv_error_set(err, st, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    if ((st = mv_dataset_set_sequence(mv_file_dataset(payload), TAG_MODIFIED_ATTRS, &seq, err)) != MV_OK ||
        (st = mv_element_insert_item(seq, MV_APPEND, &item, err)) != MV_OK)
        goto out;
    /* PS3.15 E.1.1 step 1: every attribute that step 2 removed or replaced, whole top-level
     * sequences for changes inside them (step 5's note). */
    for (size_t i = 0; i < mv_dataset_count(original); i++) {
        const MvElement *el = mv_dataset_at(original, i);
        uint32_t tag = mv_element_tag(el), where = 0;
        const MvElement *now = mv_dataset_find(ds, tag);
        int record;

        /* Group lengths are left out: the writer drops them from every edited dataset. */
        if (is_pixel_data(tag) || tag == TAG_ENCRYPTED_ATTRS || MV_TAG_GROUP(tag) == 0x0002 ||
            MV_TAG_ELEMENT(tag) == 0x0000)
            continue;
        record = tag == TAG_CHARSET || is_marker(tag) || now == NULL || !same_element(el, now);
        if (!record)
            continue;
        if (holds_encapsulated(el, &where)) {
            st = mv_error_set(err, MV_ERR_UNSUPPORTED, tag, MV_NO_OFFSET,
                              "(%04X,%04X) was changed but holds encapsulated data at (%04X,%04X), which "
                              "cannot be recorded in the Encrypted Attributes Sequence",
                              MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag), MV_TAG_GROUP(where), MV_TAG_ELEMENT(where));
            goto out;
        }
        if ((st = copy_element(item, original, el, err)) != MV_OK)
            goto out;
        n++;
    }
    if ((st = encode_dataset(payload, &plain, &plain_len, err)) != MV_OK ||
        (st = cms_encrypt(r, plain, plain_len, &der, &der_len, err)) != MV_OK)
        goto out;
    /* PS3.15 E.1.1 step 4: one item of (0400,0500) per Encrypted Attributes Data Set. */
    seq = mv_dataset_find(ds, TAG_ENCRYPTED_ATTRS);
    if (seq == NULL && (st = mv_dataset_set_sequence(ds, TAG_ENCRYPTED_ATTRS, &seq, err)) != MV_OK)
        goto out;
    if ((st = mv_element_insert_item(seq, MV_APPEND, &eas_item, err)) != MV_OK) {
        if (mv_element_item_count(seq) == 0)
            mv_dataset_remove(ds, TAG_ENCRYPTED_ATTRS); /* the sequence made just now */
        goto out;
    }
    if ((st = mv_dataset_set_string(eas_item, TAG_ENCRYPTED_TS, MV_VR_UI, MV_UID_EXPLICIT_LE, err)) != MV_OK ||
        (st = mv_dataset_set_bytes(eas_item, TAG_ENCRYPTED_CONTENT, MV_VR_OB, der, der_len, err)) != MV_OK) {
        seq = mv_dataset_find(ds, TAG_ENCRYPTED_ATTRS);
        mv_element_remove_item(seq, mv_element_item_count(seq) - 1);
        if (mv_element_item_count(seq) == 0)
            mv_dataset_remove(ds, TAG_ENCRYPTED_ATTRS);
        goto out;
    }
    if (n_recorded != NULL)
        *n_recorded = n;
out:
    if (plain != NULL) {
        OPENSSL_cleanse(plain, plain_len);
        free(plain);
    }
    free(der);
    mv_file_free(payload);
    return st;
}

/* ---- the re-identifier's key ------------------------------------------------------------ */

typedef struct Passphrase {
    const uint8_t *bytes;
    size_t len;
} Passphrase;

/* The passphrase given, or none: the library never prompts (the CLI reads secrets itself). */
static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    const Passphrase *p = u;

    (void)rwflag;
    if (p == NULL || p->bytes == NULL || size <= 0 || p->len > (size_t)size)
        return -1;
    memcpy(buf, p->bytes, p->len);
    return (int)p->len;
}

MvStatus mv_reid_key_load(const char *key_path, const char *cert_path, const uint8_t *pass, size_t pass_len,
                          MvReidKey **out, MvError *err)
{
    MvReidKey *key = calloc(1, sizeof *key);
    Passphrase pw = {pass, pass_len};
    BIO *in = NULL;
    int encrypted = 0;
    MvStatus st = MV_OK;

    *out = NULL;
    if (key == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    if ((in = BIO_new_file(key_path, "r")) == NULL) {
        ERR_clear_error();
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: cannot open: %s", key_path, strerror(errno));
        goto out;
    }
    encrypted = mv_reid_key_encrypted(key_path);
    key->pkey = PEM_read_bio_PrivateKey(in, NULL, pass_cb, &pw);
    if (key->pkey == NULL) {
        if (encrypted && pass != NULL)
            st = ossl_error(err, MV_ERR_DENIED, MV_NO_TAG, "the private key did not open: wrong passphrase");
        else if (encrypted)
            st = ossl_error(err, MV_ERR_ARG, MV_NO_TAG, "the private key is encrypted and no passphrase was given");
        else
            st = ossl_error(err, MV_ERR_ARG, MV_NO_TAG, "the private key cannot be read (PEM expected)");
        mv_error_prefix(err, key_path);
        goto out;
    }
    if (cert_path != NULL) {
        BIO_free(in);
        if ((in = BIO_new_file(cert_path, "r")) == NULL) {
            ERR_clear_error();
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: cannot open: %s", cert_path,
                              strerror(errno));
            goto out;
        }
        if ((key->cert = PEM_read_bio_X509(in, NULL, NULL, NULL)) == NULL) {
            st = ossl_error(err, MV_ERR_ARG, MV_NO_TAG, "no PEM certificate in the file");
            mv_error_prefix(err, cert_path);
            goto out;
        }
        if (X509_check_private_key(key->cert, key->pkey) != 1) {
            ERR_clear_error();
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                              "%s: the certificate does not match the private key %s", cert_path, key_path);
            goto out;
        }
    }
out:
    BIO_free(in);
    if (st != MV_OK)
        mv_reid_key_free(key);
    else
        *out = key;
    return st;
}

int mv_reid_key_encrypted(const char *key_path)
{
    char head[4096];
    int n, encrypted = 0;
    BIO *in = BIO_new_file(key_path, "r");

    if (in == NULL) {
        ERR_clear_error();
        return 0;
    }
    n = BIO_read(in, head, (int)sizeof head - 1);
    if (n > 0) {
        head[n] = '\0';
        encrypted = strstr(head, "ENCRYPTED") != NULL;
    }
    OPENSSL_cleanse(head, sizeof head);
    BIO_free(in);
    return encrypted;
}

void mv_reid_key_free(MvReidKey *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey); /* OpenSSL clears private key material when it frees it */
    X509_free(key->cert);
    free(key);
}

/* ---- decrypting ------------------------------------------------------------------------ */

/* Decrypts one Encrypted Content. MV_ERR_DENIED when no recipient info is for key;
 * MV_ERR_INTEGRITY when one is, but the structure or the content does not decrypt. */
static MvStatus cms_decrypt(const MvReidKey *key, size_t item, const uint8_t *der, size_t len, uint8_t **plain,
                            size_t *plain_len, MvError *err)
{
    const unsigned char *p = der;
    CMS_ContentInfo *cms = NULL;
    STACK_OF(CMS_RecipientInfo) *ris;
    BIO *out = NULL;
    BUF_MEM *mem = NULL;
    int nid, opened = 0;
    char item_name[32];
    MvStatus st = MV_OK;

    snprintf(item_name, sizeof item_name, "item %zu", item);
    *plain = NULL;
    *plain_len = 0;
    /* An OB value of odd DER length carries one pad byte of zero (PS3.5 7.1.1). */
    if (len > LONG_MAX || (cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL ||
        !(p == der + len || (p == der + len - 1 && der[len - 1] == 0))) {
        st = ossl_error(err, MV_ERR_INTEGRITY, TAG_ENCRYPTED_CONTENT, "the Encrypted Content is not one DER CMS structure");
        mv_error_prefix(err, item_name);
        goto out;
    }
    nid = OBJ_obj2nid(CMS_get0_type(cms));
    if (nid != NID_pkcs7_enveloped && nid != NID_id_smime_ct_authEnvelopedData) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, TAG_ENCRYPTED_CONTENT, MV_NO_OFFSET,
                          "item %zu: the CMS content type is neither EnvelopedData nor AuthEnvelopedData", item);
        goto out;
    }
    /* The content-encryption key first: which recipient info opens with this key tells a
     * wrong key (denied) apart from altered content (integrity). */
    ris = CMS_get0_RecipientInfos(cms);
    for (int i = 0; ris != NULL && i < sk_CMS_RecipientInfo_num(ris) && !opened; i++) {
        CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS)
            continue;
        if (key->cert != NULL && CMS_RecipientInfo_ktri_cert_cmp(ri, key->cert) != 0)
            continue;
        /* set0 takes a reference, which setting NULL gives back. */
        if (EVP_PKEY_up_ref(key->pkey) != 1)
            continue;
        if (CMS_RecipientInfo_set0_pkey(ri, key->pkey) != 1) {
            EVP_PKEY_free(key->pkey);
            continue;
        }
        opened = CMS_RecipientInfo_decrypt(cms, ri) == 1;
        CMS_RecipientInfo_set0_pkey(ri, NULL);
    }
    if (!opened) {
        ERR_clear_error();
        st = mv_error_set(err, MV_ERR_DENIED, TAG_ENCRYPTED_CONTENT, MV_NO_OFFSET,
                          "item %zu is not encrypted to this key%s", item,
                          key->cert != NULL ? " and certificate" : "");
        goto out;
    }
    /* The plaintext grows in the secure heap when there is one; copies are wiped either way. */
    if ((out = BIO_new(BIO_s_secmem())) == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if (CMS_decrypt(cms, NULL, NULL, NULL, out, CMS_BINARY) != 1) {
        st = ossl_error(err, MV_ERR_INTEGRITY, TAG_ENCRYPTED_CONTENT,
                        "the content does not decrypt with the key it is addressed to: altered");
        mv_error_prefix(err, item_name);
        goto out;
    }
    BIO_get_mem_ptr(out, &mem);
    if (mem == NULL || (*plain = malloc(mem->length > 0 ? mem->length : 1)) == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    memcpy(*plain, mem->data, mem->length);
    *plain_len = mem->length;
out:
    if (mem != NULL && mem->data != NULL)
        OPENSSL_cleanse(mem->data, mem->length);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    return st;
}

/* The top-level dataset of a decrypted Encrypted Attributes Data Set: plain behind a File Meta
 * Information that names ts, so that the reader takes the encoding from it, not a guess. */
static MvStatus open_payload(const char *ts_uid, const uint8_t *plain, size_t len, uint8_t **buf,
                             size_t *buf_len, MvFile **out, MvError *err)
{
    const MvTransferSyntax *ts = mv_ts_lookup(ts_uid);
    size_t uid_len = strlen(ts_uid), padded, head;
    MvError perr;
    uint8_t *b;

    *buf = NULL;
    *out = NULL;
    if (ts == NULL || ts->encapsulated)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, TAG_ENCRYPTED_TS, MV_NO_OFFSET,
                            "Encrypted Content Transfer Syntax UID is not an uncompressed transfer syntax");
    while (uid_len > 0 && (ts_uid[uid_len - 1] == ' ' || ts_uid[uid_len - 1] == '\0'))
        uid_len--;
    padded = uid_len + (uid_len & 1);
    head = 4 + 12 + 8 + padded;
    if (len > SIZE_MAX - head || (b = calloc(1, head + len)) == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    memcpy(b, "DICM\x02\x00\x00\x00UL\x04\x00", 12);
    b[12] = (uint8_t)(8 + padded);
    memcpy(b + 16, "\x02\x00\x10\x00UI", 6);
    b[22] = (uint8_t)padded;
    memcpy(b + 24, ts_uid, uid_len);
    if (len > 0)
        memcpy(b + head, plain, len);
    if (mv_file_from_memory(b, head + len, "the decrypted Encrypted Content", NULL, out, &perr) != MV_OK) {
        OPENSSL_cleanse(b, head + len);
        free(b);
        return mv_error_set(err, MV_ERR_INTEGRITY, TAG_ENCRYPTED_CONTENT, MV_NO_OFFSET,
                            "the decrypted content is not a dataset: %s", perr.message);
    }
    *buf = b;
    *buf_len = head + len;
    return MV_OK;
}

/* PS3.3 F.3.2.2: directory records point at each other by byte offsets into the file they
 * were read from, which the originals' offsets are not. The records de-identification left
 * (whose offsets the writer knows how to follow) get their original attributes back instead,
 * their offsets aside. MV_ERR_NOTFOUND when the records do not pair up one to one. */
static MvStatus restore_directory(MvDataset *ds, const MvElement *orig, MvError *err)
{
    MvElement *now = mv_dataset_find(ds, TAG_DIR_RECORDS);
    MvStatus st;

    if (now == NULL || !mv_element_is_sequence(now) || !mv_element_is_sequence(orig) ||
        mv_element_item_count(now) != mv_element_item_count(orig))
        return MV_ERR_NOTFOUND;
    for (size_t i = 0; i < mv_element_item_count(orig); i++) {
        const MvDataset *from = mv_element_item(orig, i);
        MvDataset *to = mv_element_item(mv_dataset_find(ds, TAG_DIR_RECORDS), i);
        /* What the original record does not hold goes; what it holds comes back. */
        for (size_t k = 0; k < mv_dataset_count(to);) {
            uint32_t tag = mv_element_tag(mv_dataset_at(to, k));
            if (tag != TAG_DIR_NEXT && tag != TAG_DIR_LOWER && mv_dataset_find(from, tag) == NULL)
                mv_dataset_remove(to, tag);
            else
                k++;
        }
        for (size_t k = 0; k < mv_dataset_count(from); k++) {
            const MvElement *el = mv_dataset_at(from, k);
            if (mv_element_tag(el) == TAG_DIR_NEXT || mv_element_tag(el) == TAG_DIR_LOWER)
                continue;
            if ((st = copy_element(to, from, el, err)) != MV_OK)
                return st;
        }
    }
    return MV_OK;
}

MvStatus mv__originals_apply(MvFile *file, const char *ts_uid, const uint8_t *plain, size_t len,
                             MvReidResult *res, MvError *err)
{
    static const uint32_t markers[] = {TAG_IDENTITY_REMOVED, TAG_DEID_METHOD, TAG_DEID_METHOD_CODES,
                                       TAG_TEMPORAL_MODIFIED};
    MvDataset *ds = mv_file_dataset(file), *item;
    MvFile *pf = NULL;
    uint8_t *buf = NULL;
    size_t buf_len = 0;
    const MvElement *seq;
    char *method = NULL;
    size_t n_markers = 2;
    MvStatus st;

    if ((st = open_payload(ts_uid, plain, len, &buf, &buf_len, &pf, err)) != MV_OK)
        return st;
    seq = mv_dataset_find(mv_file_dataset(pf), TAG_MODIFIED_ATTRS);
    if (seq == NULL || !mv_element_is_sequence(seq) || mv_element_item_count(seq) != 1) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, TAG_MODIFIED_ATTRS, MV_NO_OFFSET,
                          "the decrypted content does not hold exactly one Modified Attributes Sequence item");
        goto out;
    }
    item = mv_element_item(seq, 0);
    /* Check everything first, so that a refused content leaves the dataset as it was. */
    for (size_t i = 0; i < mv_dataset_count(item); i++) {
        const MvElement *el = mv_dataset_at(item, i);
        uint32_t tag = mv_element_tag(el), where = 0;
        if (MV_TAG_GROUP(tag) == 0x0002 || tag == TAG_ENCRYPTED_ATTRS) {
            st = mv_error_set(err, MV_ERR_INTEGRITY, tag, MV_NO_OFFSET,
                              "(%04X,%04X) cannot be an original attribute of a dataset", MV_TAG_GROUP(tag),
                              MV_TAG_ELEMENT(tag));
            goto out;
        }
        if (holds_encapsulated(el, &where)) {
            st = mv_error_set(err, MV_ERR_UNSUPPORTED, tag, MV_NO_OFFSET,
                              "the original of (%04X,%04X) holds encapsulated data, which cannot be restored",
                              MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
            goto out;
        }
    }
    /* Markers only medveil writes are removed only from files medveil de-identified. */
    if (mv_dataset_get_string(ds, TAG_DEID_METHOD, &method, NULL) == MV_OK && strncmp(method, "medveil ", 8) == 0)
        n_markers = 4;
    free(method);
    for (size_t i = 0; i < mv_dataset_count(item); i++) {
        const MvElement *el = mv_dataset_at(item, i);
        uint32_t tag = mv_element_tag(el);
        if (tag == TAG_DIR_FIRST || tag == TAG_DIR_LAST)
            continue; /* offsets into the original file's bytes: the writer sets them */
        if (tag == TAG_DIR_RECORDS && (st = restore_directory(ds, el, err)) != MV_ERR_NOTFOUND) {
            if (st != MV_OK)
                goto out;
            continue;
        }
        if ((st = copy_element(ds, item, el, err)) != MV_OK)
            goto out;
    }
    res->n_restored = mv_dataset_count(item);
    res->n_markers_removed = 0;
    for (size_t i = 0; i < n_markers; i++)
        if (mv_dataset_find(item, markers[i]) == NULL && mv_dataset_remove(ds, markers[i]) == MV_OK)
            res->n_markers_removed++;
out:
    mv_file_free(pf);
    if (buf != NULL) {
        OPENSSL_cleanse(buf, buf_len);
        free(buf);
    }
    return st;
}

MvStatus mv_originals_restore(const MvReidKey *key, MvFile *file, unsigned flags, MvReidResult *res, MvError *err)
{
    MvDataset *ds = mv_file_dataset(file);
    MvElement *eas = mv_dataset_find(ds, TAG_ENCRYPTED_ATTRS);
    size_t n_items = eas != NULL && mv_element_is_sequence(eas) ? mv_element_item_count(eas) : 0;
    MvStatus st = MV_ERR_NOTFOUND;

    mv_error_clear(err);
    memset(res, 0, sizeof *res);
    if (n_items == 0)
        return mv_error_set(err, MV_ERR_NOTFOUND, TAG_ENCRYPTED_ATTRS, MV_NO_OFFSET,
                            "no Encrypted Attributes Sequence (0400,0500) item");
    for (size_t i = 0; i < n_items; i++) {
        MvDataset *item = mv_element_item(mv_dataset_find(ds, TAG_ENCRYPTED_ATTRS), i);
        const MvElement *content = mv_dataset_find(item, TAG_ENCRYPTED_CONTENT);
        const uint8_t *der;
        uint8_t *plain = NULL;
        size_t der_len = 0, plain_len = 0;
        char *ts = NULL;

        der = content != NULL ? mv_element_value(content, &der_len) : NULL;
        if (der == NULL || der_len == 0 || mv_dataset_get_string(item, TAG_ENCRYPTED_TS, &ts, NULL) != MV_OK) {
            free(ts);
            st = mv_error_set(err, MV_ERR_INTEGRITY, TAG_ENCRYPTED_ATTRS, MV_NO_OFFSET,
                              "item %zu lacks Encrypted Content Transfer Syntax UID (0400,0510) or Encrypted "
                              "Content (0400,0520)", i + 1);
            continue;
        }
        st = cms_decrypt(key, i + 1, der, der_len, &plain, &plain_len, err);
        if (st == MV_ERR_DENIED) {
            free(ts);
            continue;
        }
        if (st == MV_OK) {
            st = mv__originals_apply(file, ts, plain, plain_len, res, err);
            OPENSSL_cleanse(plain, plain_len);
        }
        free(plain);
        free(ts);
        if (st != MV_OK)
            return st; /* content addressed to this key that does not open is never skipped */
        res->item_index = i;
        if (!(flags & MV_REID_KEEP_ENCRYPTED)) {
            eas = mv_dataset_find(ds, TAG_ENCRYPTED_ATTRS);
            mv_element_remove_item(eas, i);
            if (mv_element_item_count(eas) == 0)
                mv_dataset_remove(ds, TAG_ENCRYPTED_ATTRS);
        }
        return MV_OK;
    }
    if (st == MV_ERR_DENIED && n_items > 1)
        mv_error_set(err, MV_ERR_DENIED, TAG_ENCRYPTED_ATTRS, MV_NO_OFFSET,
                     "none of the %zu Encrypted Attributes Sequence items is encrypted to this key", n_items);
    return st;
}
