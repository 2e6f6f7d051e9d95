/* Unit tests of the Part 10 reader (src/dicom/read.c) and of the read accessors of
 * src/dicom/dataset.c. Every input is built byte by byte in the test with the encodings of
 * PS3.5 Section 7 (explicit/implicit VR, little/big endian, items and delimiters) and
 * PS3.10 7.1 (preamble, "DICM", File Meta Information), so each test documents the bytes
 * it feeds in; the expectations are what the standard says those bytes mean. Set
 * MV_TEST_SAVE_DIR to a folder to get every input as a file there (for dcmdump). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "medveil/dicom.h"

/* ---- Hand-made encodings (PS3.5 Section 7) -------------------------------------------- */

#include "dicom_bytes.h"
#include "dicom_values.h"

/* PS3.10 7.1: optional 128-byte preamble and "DICM", then the File Meta Information,
 * explicit VR little endian, led by (0002,0000) UL holding the byte count of the rest of
 * group 0002. Returns the offset at which the dataset starts. */
static size_t part10_with(Buf *b, const char *ts_uid, int preamble)
{
    static const uint8_t zero[128];
    static const uint8_t version[2] = {0x00, 0x01};
    Buf meta = {0};
    char uid[80];
    size_t n = strlen(ts_uid);

    assert_true(n + 1 < sizeof uid);
    memcpy(uid, ts_uid, n);
    if (n & 1u)
        uid[n++] = '\0'; /* PS3.5 6.2: UI values are padded with one NUL to even length */
    ex_el(&meta, 0x00020001u, "OB", version, 2, 0);
    EX_STR(&meta, 0x00020002u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0); /* Secondary Capture */
    EX_STR(&meta, 0x00020003u, "UI", "1.2.3.4\0", 0);
    ex_el(&meta, 0x00020010u, "UI", uid, n, 0);
    if (preamble)
        buf_put(b, zero, sizeof zero);
    buf_put(b, "DICM", 4);
    ex_hdr(b, 0x00020000u, "UL", 4, 0);
    buf_u32(b, (uint32_t)meta.len, 0);
    buf_append(b, &meta);
    buf_free(&meta);
    return b->len;
}

static size_t part10(Buf *b, const char *ts_uid)
{
    return part10_with(b, ts_uid, 1);
}

/* Writes the input to $MV_TEST_SAVE_DIR/name when that is set (to check it with dcmdump). */
static void save_input(const char *name, const Buf *b)
{
    const char *dir = getenv("MV_TEST_SAVE_DIR");
    char path[4096];
    FILE *f;

    if (dir == NULL || *dir == '\0')
        return;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL)
        return;
    fwrite(b->data, 1, b->len, f);
    fclose(f);
}

/* ---- Reading and looking ------------------------------------------------------------ */

static MvFile *read_as(const Buf *b, const char *name, const MvReadOptions *opts)
{
    MvFile *file = NULL;
    MvError err;
    MvStatus st;

    save_input(name, b);
    st = mv_file_from_memory(b->data, b->len, name, opts, &file, &err);
    if (st != MV_OK)
        fail_msg("reading %s failed (%s): %s", name, mv_status_name(st), err.message);
    assert_non_null(file);
    return file;
}

static MvStatus read_fails(const Buf *b, const char *name, const MvReadOptions *opts, MvError *err)
{
    MvFile *file = (MvFile *)&file; /* any non-NULL value: it must be set to NULL */
    MvStatus st;

    save_input(name, b);
    st = mv_file_from_memory(b->data, b->len, name, opts, &file, err);
    if (st == MV_OK) {
        mv_file_free(file);
        fail_msg("reading %s succeeded; an error was expected", name);
    }
    assert_null(file);
    assert_int_equal(err->code, st);
    return st;
}


static void assert_vr(MvVr got, const char *expected)
{
    char buf[3];

    assert_string_equal(mv_vr_string(got, buf), expected);
}

static void assert_value(const MvElement *el, const void *expected, size_t n)
{
    size_t len = 12345;
    const uint8_t *v = mv_element_value(el, &len);

    assert_int_equal(len, n);
    if (n > 0) {
        assert_non_null(v);
        assert_memory_equal(v, expected, n);
    }
}

/* The string of tag in ds, checked to succeed, compared and freed. */
static void assert_string_of(const MvDataset *ds, uint32_t tag, const char *expected)
{
    char *s = NULL;
    MvError err;
    MvStatus st = mv_element_string(ds, must_find(ds, tag), &s, &err);

    if (st != MV_OK)
        fail_msg("(%04X,%04X): mv_element_string failed: %s", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF),
                 err.message);
    assert_non_null(s);
    assert_string_equal(s, expected);
    free(s);
}





static void assert_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", text, part);
}

/* Two datasets hold the same elements: tags, VRs, value bytes, items, fragments. */
static void assert_same_dataset(const MvDataset *a, const MvDataset *b)
{
    assert_int_equal(mv_dataset_count(a), mv_dataset_count(b));
    for (size_t i = 0; i < mv_dataset_count(a); i++) {
        const MvElement *x = mv_dataset_at(a, i), *y = mv_dataset_at(b, i);
        size_t nx, ny;
        const uint8_t *vx = mv_element_value(x, &nx), *vy = mv_element_value(y, &ny);

        assert_int_equal(mv_element_tag(x), mv_element_tag(y));
        assert_int_equal(mv_element_vr(x), mv_element_vr(y));
        assert_int_equal(nx, ny);
        if (nx > 0)
            assert_memory_equal(vx, vy, nx);
        assert_int_equal(mv_element_is_sequence(x), mv_element_is_sequence(y));
        assert_int_equal(mv_element_item_count(x), mv_element_item_count(y));
        for (size_t k = 0; k < mv_element_item_count(x); k++)
            assert_same_dataset(mv_element_item(x, k), mv_element_item(y, k));
        assert_int_equal(mv_element_fragment_count(x), mv_element_fragment_count(y));
        for (size_t k = 0; k < mv_element_fragment_count(x); k++) {
            const uint8_t *fx = mv_element_fragment(x, k, &nx), *fy = mv_element_fragment(y, k, &ny);
            assert_int_equal(nx, ny);
            if (nx > 0)
                assert_memory_equal(fx, fy, nx);
        }
    }
}

/* Common values. */
static const uint8_t us_512_le[2] = {0x00, 0x02}; /* PS3.5 7.3: 512 = 0x0200, LSB first */
static const uint8_t us_512_be[2] = {0x02, 0x00};

/* A small explicit VR LE dataset: SOP Class, SOP Instance, Patient's Name, Rows. */
static void small_dataset(Buf *b)
{
    EX_STR(b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    EX_STR(b, 0x00080018u, "UI", "1.2.3.4\0", 0);
    EX_STR(b, 0x00100010u, "PN", "Doe^John", 0);
    ex_el(b, 0x00280010u, "US", us_512_le, 2, 0);
}

/* ---- Part 10 framing ---------------------------------------------------------------- */

static void test_part10_explicit_le(void **state)
{
    Buf b = {0};
    size_t ds_at, meta_len;
    MvFile *file;
    MvDataset *ds, *meta;
    const MvElement *pn;
    size_t n;

    (void)state;
    ds_at = part10(&b, MV_UID_EXPLICIT_LE);
    small_dataset(&b);
    file = read_as(&b, "part10.dcm", NULL);
    ds = mv_file_dataset(file);
    meta = mv_file_meta(file);

    assert_int_equal(mv_file_had_preamble(file), 1);
    assert_int_equal(mv_file_had_meta(file), 1);
    assert_string_equal(mv_file_transfer_syntax(file)->uid, MV_UID_EXPLICIT_LE);
    assert_int_equal(mv_file_input_size(file), b.len);
    assert_string_equal(mv_file_name(file), "part10.dcm");
    assert_int_equal(mv_file_warning_count(file), 0);

    /* Meta: (0002,0000) (0002,0001) (0002,0002) (0002,0003) (0002,0010). */
    assert_int_equal(mv_dataset_count(meta), 5);
    meta_len = ds_at - 132 - 12;
    assert_int_equal(uint_of(meta, 0x00020000u, 0), meta_len);
    assert_int_equal(mv_element_offset(must_find(meta, 0x00020000u)), 132);
    assert_int_equal(mv_element_offset(must_find(meta, 0x00020001u)), 144);
    assert_string_of(meta, 0x00020010u, MV_UID_EXPLICIT_LE);

    assert_int_equal(mv_dataset_count(ds), 4);
    assert_null(mv_dataset_parent(ds));
    assert_int_equal(mv_dataset_big_endian(ds), 0);
    assert_int_equal(mv_element_tag(mv_dataset_at(ds, 0)), 0x00080016u);
    assert_int_equal(mv_element_offset(mv_dataset_at(ds, 0)), ds_at);
    assert_int_equal(mv_element_offset(mv_dataset_at(ds, 1)), ds_at + 8 + 26);
    pn = must_find(ds, 0x00100010u);
    assert_int_equal(mv_element_offset(pn), ds_at + 8 + 26 + 8 + 8);
    assert_vr(mv_element_vr(pn), "PN");
    assert_int_equal(mv_element_length(pn), 8);
    /* The value is not copied: it points at its bytes in the input. */
    assert_ptr_equal(mv_element_value(pn, &n), b.data + ds_at + 8 + 26 + 8 + 8 + 8);
    assert_int_equal(n, 8);
    assert_string_of(ds, 0x00100010u, "Doe^John");
    assert_string_of(ds, 0x00080018u, "1.2.3.4");
    assert_int_equal(uint_of(ds, 0x00280010u, 0), 512);
    assert_null(mv_dataset_at(ds, 4));
    assert_null(mv_dataset_find(ds, 0x00100020u));
    mv_file_free(file);

    /* Without a name the file is "<memory>". */
    {
        MvError err;
        assert_int_equal(mv_file_from_memory(b.data, b.len, NULL, NULL, &file, &err), MV_OK);
        assert_string_equal(mv_file_name(file), "<memory>");
        mv_file_free(file);
    }
    buf_free(&b);
}

/* "DICM" at offset 0: a file written without the 128-byte preamble. */
static void test_no_preamble(void **state)
{
    Buf b = {0};
    size_t ds_at;
    MvFile *file;
    MvDataset *ds;

    (void)state;
    ds_at = part10_with(&b, MV_UID_EXPLICIT_LE, 0);
    small_dataset(&b);
    file = read_as(&b, "nopreamble.dcm", NULL);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_file_had_preamble(file), 0);
    assert_int_equal(mv_file_had_meta(file), 1);
    assert_int_equal(mv_dataset_count(mv_file_meta(file)), 5);
    assert_int_equal(mv_dataset_count(ds), 4);
    assert_int_equal(mv_element_offset(mv_dataset_at(ds, 0)), ds_at);
    assert_int_equal(mv_element_offset(must_find(mv_file_meta(file), 0x00020000u)), 4);
    assert_string_of(ds, 0x00100010u, "Doe^John");
    mv_file_free(file);
    buf_free(&b);
}

/* No preamble, no meta: a bare dataset in implicit VR little endian (PS3.5 A.1). */
static void test_bare_implicit_le(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *ds;

    (void)state;
    IM_STR(&b, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7\0");
    IM_STR(&b, 0x00080018u, "1.2.3.4\0");
    IM_STR(&b, 0x00100010u, "Doe^John");
    im_el(&b, 0x00280010u, us_512_le, 2);
    im_el(&b, 0x7FE00010u, "\x01\x02\x03\x04", 4);
    file = read_as(&b, "bare-implicit.dcm", NULL);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_file_had_preamble(file), 0);
    assert_int_equal(mv_file_had_meta(file), 0);
    assert_int_equal(mv_dataset_count(mv_file_meta(file)), 0);
    assert_string_equal(mv_file_transfer_syntax(file)->uid, MV_UID_IMPLICIT_LE);
    assert_int_equal(mv_dataset_count(ds), 5);
    /* Implicit VR: the VRs come from the dictionary (PS3.6), OW for Pixel Data (A.1). */
    assert_vr(mv_element_vr(must_find(ds, 0x00080016u)), "UI");
    assert_vr(mv_element_vr(must_find(ds, 0x00100010u)), "PN");
    assert_vr(mv_element_vr(must_find(ds, 0x00280010u)), "US");
    assert_vr(mv_element_vr(must_find(ds, 0x7FE00010u)), "OW");
    assert_int_equal(mv_element_offset(must_find(ds, 0x00100010u)), 8 + 26 + 8 + 8);
    assert_string_of(ds, 0x00100010u, "Doe^John");
    assert_int_equal(uint_of(ds, 0x00280010u, 0), 512);
    assert_value(must_find(ds, 0x7FE00010u), "\x01\x02\x03\x04", 4);
    mv_file_free(file);
    buf_free(&b);
}

/* No preamble, no meta, explicit VR little endian: VRs are taken from the bytes. */
static void test_bare_explicit_le(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *ds;

    (void)state;
    small_dataset(&b);
    /* A private block (PS3.5 7.8.1): creator LO, then a private element declared LO. */
    EX_STR(&b, 0x00290010u, "LO", "ACME 1.0", 0);
    EX_STR(&b, 0x00291010u, "LO", "secret", 0);
    file = read_as(&b, "bare-explicit.dcm", NULL);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_file_had_meta(file), 0);
    assert_string_equal(mv_file_transfer_syntax(file)->uid, MV_UID_EXPLICIT_LE);
    assert_int_equal(mv_dataset_count(ds), 6);
    /* The dictionary would say UN for (0029,1010); the explicit VR says LO. */
    assert_vr(mv_element_vr(must_find(ds, 0x00291010u)), "LO");
    assert_string_of(ds, 0x00291010u, "secret");
    assert_string_of(ds, 0x00100010u, "Doe^John");
    assert_int_equal(uint_of(ds, 0x00280010u, 0), 512);
    mv_file_free(file);
    buf_free(&b);
}

/* PS3.5 A.3 Explicit VR Big Endian: tags, lengths and binary values most significant byte
 * first; the meta stays explicit little endian (PS3.10 7.1). */
static void test_explicit_big_endian(void **state)
{
    /* US 1, 2, 512, 65535 */
    static const uint8_t us4[] = {0x00, 0x01, 0x00, 0x02, 0x02, 0x00, 0xFF, 0xFF};
    /* UL 70000 = 0x00011170 */
    static const uint8_t ul[] = {0x00, 0x01, 0x11, 0x70};
    /* FL 1.5 = 0x3FC00000, -2.25 = 0xC0100000 (IEEE 754 single) */
    static const uint8_t fl[] = {0x3F, 0xC0, 0x00, 0x00, 0xC0, 0x10, 0x00, 0x00};
    /* FD 1.5 = 0x3FF8000000000000, -2.25 = 0xC002000000000000 */
    static const uint8_t fd[] = {0x3F, 0xF8, 0, 0, 0, 0, 0, 0, 0xC0, 0x02, 0, 0, 0, 0, 0, 0};
    /* SS -5 = 0xFFFB */
    static const uint8_t ss[] = {0xFF, 0xFB};
    /* AT (0018,1063): group then element, each 16-bit big endian */
    static const uint8_t at[] = {0x00, 0x18, 0x10, 0x63};
    /* OW words 0x0102, 0x0304 */
    static const uint8_t ow[] = {0x01, 0x02, 0x03, 0x04};
    Buf b = {0}, it = {0};
    size_t ds_at;
    MvFile *file;
    MvDataset *ds, *item0;

    (void)state;
    ds_at = part10(&b, MV_UID_EXPLICIT_BE);
    EX_STR(&b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 1);
    ex_el(&b, 0x00081161u, "UL", ul, sizeof ul, 1);
    ex_el(&b, 0x00081163u, "FD", fd, sizeof fd, 1);
    /* (0008,1140) SQ of defined length holding one item of defined length */
    ex_el(&it, 0x00281050u, "DS", "40", 2, 1);
    ex_el(&it, 0x00280010u, "US", us_512_be, 2, 1);
    ex_hdr(&b, 0x00081140u, "SQ", (uint32_t)(8 + it.len), 1);
    item(&b, (uint32_t)it.len, 1);
    buf_append(&b, &it);
    EX_STR(&b, 0x00100010u, "PN", "Doe^John", 1);
    ex_el(&b, 0x00181310u, "US", us4, sizeof us4, 1);
    ex_el(&b, 0x00182043u, "FL", fl, sizeof fl, 1);
    ex_el(&b, 0x00189219u, "SS", ss, sizeof ss, 1);
    ex_el(&b, 0x00280009u, "AT", at, sizeof at, 1);
    ex_el(&b, 0x00280010u, "US", us_512_be, 2, 1);
    ex_el(&b, 0x7FE00010u, "OW", ow, sizeof ow, 1);
    file = read_as(&b, "big-endian.dcm", NULL);
    ds = mv_file_dataset(file);

    assert_string_equal(mv_file_transfer_syntax(file)->uid, MV_UID_EXPLICIT_BE);
    assert_int_equal(mv_file_transfer_syntax(file)->big_endian, 1);
    assert_int_equal(mv_dataset_big_endian(ds), 1);
    assert_int_equal(mv_dataset_count(ds), 11);
    assert_int_equal(mv_element_offset(mv_dataset_at(ds, 0)), ds_at);
    assert_int_equal(uint_of(ds, 0x00280010u, 0), 512);
    assert_value(must_find(ds, 0x00280010u), us_512_be, 2); /* values stay in file order */
    assert_int_equal(mv_element_vm(must_find(ds, 0x00181310u)), 4);
    assert_int_equal(uint_of(ds, 0x00181310u, 0), 1);
    assert_int_equal(uint_of(ds, 0x00181310u, 1), 2);
    assert_int_equal(uint_of(ds, 0x00181310u, 2), 512);
    assert_int_equal(uint_of(ds, 0x00181310u, 3), 65535);
    assert_int_equal(uint_of(ds, 0x00081161u, 0), 70000);
    assert_double(double_of(ds, 0x00182043u, 0), 1.5);
    assert_double(double_of(ds, 0x00182043u, 1), -2.25);
    assert_double(double_of(ds, 0x00081163u, 0), 1.5);
    assert_double(double_of(ds, 0x00081163u, 1), -2.25);
    assert_int_equal(int_of(ds, 0x00189219u, 0), -5);
    assert_int_equal(uint_of(ds, 0x00280009u, 0), 0x00181063u);
    assert_int_equal(int_of(ds, 0x7FE00010u, 1), 0x0304);
    assert_string_of(ds, 0x00100010u, "Doe^John");
    /* the item is big endian too */
    assert_int_equal(mv_element_item_count(must_find(ds, 0x00081140u)), 1);
    item0 = mv_element_item(must_find(ds, 0x00081140u), 0);
    assert_int_equal(mv_dataset_big_endian(item0), 1);
    assert_int_equal(uint_of(item0, 0x00280010u, 0), 512);
    assert_double(double_of(item0, 0x00281050u, 0), 40.0);
    mv_file_free(file);
    buf_free(&it);
    buf_free(&b);
}

/* ---- Deflate (PS3.5 A.5) ------------------------------------------------------------ */

/* Raw deflate (RFC 1951, no zlib header: windowBits -15) of in, as PS3.5 A.5 says. */
static void deflate_raw(const Buf *in, Buf *out)
{
    z_stream zs;
    uLong bound;

    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    bound = deflateBound(&zs, (uLong)in->len);
    out->data = malloc(bound);
    assert_non_null(out->data);
    out->cap = bound;
    zs.next_in = in->data;
    zs.avail_in = (uInt)in->len;
    zs.next_out = out->data;
    zs.avail_out = (uInt)bound;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out->len = bound - zs.avail_out;
    deflateEnd(&zs);
}

/* A dataset with a sequence and pixel data, explicit VR little endian. */
static void rich_dataset(Buf *b)
{
    Buf it = {0};

    EX_STR(b, 0x00080005u, "CS", "ISO_IR 100", 0);
    EX_STR(b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    EX_STR(b, 0x00080018u, "UI", "1.2.3.4\0", 0);
    EX_STR(&it, 0x00081150u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    EX_STR(&it, 0x00081155u, "UI", "1.2.3.5\0", 0);
    ex_hdr(b, 0x00081140u, "SQ", UNDEF, 0);
    item(b, (uint32_t)it.len, 0);
    buf_append(b, &it);
    item(b, UNDEF, 0);
    buf_append(b, &it);
    item_end(b, 0);
    seq_end(b, 0);
    EX_STR(b, 0x00100010u, "PN", "M\xFCller^Hans ", 0);
    EX_STR(b, 0x00100020u, "LO", "ID0001", 0);
    ex_el(b, 0x00280010u, "US", us_512_le, 2, 0);
    {
        uint8_t pixels[512];
        for (size_t i = 0; i < sizeof pixels; i++)
            pixels[i] = (uint8_t)(i * 7);
        ex_el(b, 0x7FE00010u, "OW", pixels, sizeof pixels, 0);
    }
    buf_free(&it);
}

static void test_deflated(void **state)
{
    Buf plain_ds = {0}, squeezed = {0}, plain = {0}, deflated = {0};
    MvFile *a, *z;

    (void)state;
    rich_dataset(&plain_ds);
    deflate_raw(&plain_ds, &squeezed);
    part10(&plain, MV_UID_EXPLICIT_LE);
    buf_append(&plain, &plain_ds);
    part10(&deflated, MV_UID_DEFLATED_LE);
    buf_append(&deflated, &squeezed);

    a = read_as(&plain, "plain.dcm", NULL);
    z = read_as(&deflated, "deflated.dcm", NULL);
    assert_int_equal(mv_file_transfer_syntax(z)->deflated, 1);
    assert_string_equal(mv_file_transfer_syntax(z)->uid, MV_UID_DEFLATED_LE);
    assert_int_equal(mv_dataset_count(mv_file_dataset(z)), 8);
    assert_same_dataset(mv_file_dataset(a), mv_file_dataset(z));
    assert_string_of(mv_file_dataset(z), 0x00100010u, "M\xC3\xBCller^Hans");
    mv_file_free(a);
    mv_file_free(z);
    buf_free(&plain_ds);
    buf_free(&squeezed);
    buf_free(&plain);
    buf_free(&deflated);
}

/* A small deflated stream that inflates past max_inflated is refused. */
static void test_deflate_bomb_capped(void **state)
{
    Buf plain_ds = {0}, squeezed = {0}, file = {0};
    uint8_t *zeros = calloc(1, 1 << 20);
    MvReadOptions opts;
    MvError err;

    (void)state;
    assert_non_null(zeros);
    ex_el(&plain_ds, 0x7FE00010u, "OB", zeros, 1 << 20, 0);
    deflate_raw(&plain_ds, &squeezed);
    assert_true(squeezed.len < 8192);
    part10(&file, MV_UID_DEFLATED_LE);
    buf_append(&file, &squeezed);
    mv_read_options_init(&opts);
    opts.max_inflated = 64 * 1024;
    assert_int_equal(read_fails(&file, "bomb.dcm", &opts, &err), MV_ERR_LIMIT);
    /* With room for it, the same file reads. */
    opts.max_inflated = 2u << 20;
    {
        MvFile *f = read_as(&file, "bomb.dcm", &opts);
        assert_int_equal(mv_element_length(must_find(mv_file_dataset(f), 0x7FE00010u)), 1 << 20);
        mv_file_free(f);
    }
    free(zeros);
    buf_free(&plain_ds);
    buf_free(&squeezed);
    buf_free(&file);
}

/* ---- Sequences (PS3.5 7.5) ------------------------------------------------------------ */

static void test_sequences_explicit(void **state)
{
    Buf b = {0}, items = {0}, it = {0}, lvl2 = {0}, lvl2_item = {0};
    size_t seq1_at, seq2_at;
    MvFile *file;
    MvDataset *ds, *i0, *i1, *d1, *d2, *d3;
    MvElement *seq;
    uint32_t seq1_len;

    (void)state;
    /* (0008,1115) SQ, defined length, two items of defined length. */
    EX_STR(&it, 0x0020000Eu, "UI", "1.2.3.4\0", 0);
    item(&items, (uint32_t)it.len, 0);
    buf_append(&items, &it);
    it.len = 0;
    EX_STR(&it, 0x0020000Eu, "UI", "1.2.3.5\0", 0);
    item(&items, (uint32_t)it.len, 0);
    buf_append(&items, &it);
    seq1_len = (uint32_t)items.len;
    EX_STR(&b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    seq1_at = b.len;
    ex_hdr(&b, 0x00081115u, "SQ", seq1_len, 0);
    buf_append(&b, &items);

    /* (0008,1140) SQ, undefined length: an item of undefined length, then one of defined length. */
    ex_hdr(&b, 0x00081140u, "SQ", UNDEF, 0);
    item(&b, UNDEF, 0);
    EX_STR(&b, 0x00081150u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    EX_STR(&b, 0x00081155u, "UI", "1.2.3\0", 0);
    item_end(&b, 0);
    it.len = 0;
    EX_STR(&it, 0x00081155u, "UI", "1.2.4\0", 0);
    item(&b, (uint32_t)it.len, 0);
    buf_append(&b, &it);
    seq_end(&b, 0);

    EX_STR(&b, 0x00100010u, "PN", "Doe^John", 0);

    /* (0040,A730) nested three deep: undefined SQ > undefined item > defined SQ > defined
     * item > undefined SQ > undefined item > (0040,A160) UT. */
    ex_hdr(&lvl2_item, 0x0040A730u, "SQ", UNDEF, 0);
    item(&lvl2_item, UNDEF, 0);
    EX_STR(&lvl2_item, 0x0040A160u, "UT", "deep", 0);
    item_end(&lvl2_item, 0);
    seq_end(&lvl2_item, 0);
    {
        Buf tmp = {0};
        EX_STR(&tmp, 0x0040A040u, "CS", "TEXT", 0);
        buf_append(&tmp, &lvl2_item);
        item(&lvl2, (uint32_t)tmp.len, 0);
        buf_append(&lvl2, &tmp);
        buf_free(&tmp);
    }
    seq2_at = b.len;
    ex_hdr(&b, 0x0040A730u, "SQ", UNDEF, 0);
    item(&b, UNDEF, 0);
    EX_STR(&b, 0x0040A040u, "CS", "CONTAINER ", 0);
    ex_hdr(&b, 0x0040A730u, "SQ", (uint32_t)lvl2.len, 0);
    buf_append(&b, &lvl2);
    item_end(&b, 0);
    seq_end(&b, 0);
    /* an element after all of it */
    ex_el(&b, 0x7FE00010u, "OW", "\x01\x02\x03\x04", 4, 0);

    file = read_as(&b, "sequences.dcm", NULL);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_file_warning_count(file), 0);
    assert_int_equal(mv_dataset_count(ds), 6);

    seq = must_find(ds, 0x00081115u);
    assert_true(mv_element_is_sequence(seq));
    assert_vr(mv_element_vr(seq), "SQ");
    assert_int_equal(mv_element_length(seq), seq1_len);
    assert_int_equal(mv_element_offset(seq), seq1_at);
    assert_int_equal(mv_element_item_count(seq), 2);
    assert_int_equal(mv_element_vm(seq), 2);
    i0 = mv_element_item(seq, 0);
    i1 = mv_element_item(seq, 1);
    assert_null(mv_element_item(seq, 2));
    assert_ptr_equal(mv_dataset_parent(i0), ds);
    assert_string_of(i0, 0x0020000Eu, "1.2.3.4");
    assert_string_of(i1, 0x0020000Eu, "1.2.3.5");
    /* item 0's element: SQ header 12, item header 8 */
    assert_int_equal(mv_element_offset(must_find(i0, 0x0020000Eu)), seq1_at + 12 + 8);
    assert_null(mv_element_value(seq, &(size_t){0}));

    seq = must_find(ds, 0x00081140u);
    assert_true(mv_element_is_sequence(seq));
    assert_int_equal(mv_element_length(seq), MV_UNDEFINED_LENGTH);
    assert_int_equal(mv_element_item_count(seq), 2);
    assert_int_equal(mv_dataset_count(mv_element_item(seq, 0)), 2);
    assert_string_of(mv_element_item(seq, 0), 0x00081155u, "1.2.3");
    assert_string_of(mv_element_item(seq, 1), 0x00081155u, "1.2.4");

    assert_string_of(ds, 0x00100010u, "Doe^John");

    seq = must_find(ds, 0x0040A730u);
    assert_int_equal(mv_element_offset(seq), seq2_at);
    assert_int_equal(mv_element_item_count(seq), 1);
    d1 = mv_element_item(seq, 0);
    assert_string_of(d1, 0x0040A040u, "CONTAINER");
    seq = must_find(d1, 0x0040A730u);
    assert_int_equal(mv_element_length(seq), (uint32_t)lvl2.len);
    assert_int_equal(mv_element_item_count(seq), 1);
    d2 = mv_element_item(seq, 0);
    assert_string_of(d2, 0x0040A040u, "TEXT");
    seq = must_find(d2, 0x0040A730u);
    assert_int_equal(mv_element_length(seq), MV_UNDEFINED_LENGTH);
    assert_int_equal(mv_element_item_count(seq), 1);
    d3 = mv_element_item(seq, 0);
    assert_string_of(d3, 0x0040A160u, "deep");
    assert_ptr_equal(mv_dataset_parent(d3), d2);
    assert_ptr_equal(mv_dataset_parent(d2), d1);
    assert_ptr_equal(mv_dataset_parent(d1), ds);

    assert_value(must_find(ds, 0x7FE00010u), "\x01\x02\x03\x04", 4);
    mv_file_free(file);
    buf_free(&b);
    buf_free(&items);
    buf_free(&it);
    buf_free(&lvl2);
    buf_free(&lvl2_item);
}

/* Implicit VR: SQ comes from the dictionary, items and delimiters are the same. */
static void test_sequences_implicit(void **state)
{
    Buf b = {0}, it = {0}, seq = {0};
    MvFile *file;
    MvDataset *ds;
    MvElement *el;

    (void)state;
    IM_STR(&b, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7\0");
    /* (0008,1115) undefined length, item of defined length */
    IM_STR(&it, 0x0020000Eu, "1.2.3.4\0");
    im_hdr(&b, 0x00081115u, UNDEF);
    item(&b, (uint32_t)it.len, 0);
    buf_append(&b, &it);
    seq_end(&b, 0);
    /* (0008,1140) defined length, two items of undefined length */
    for (int i = 0; i < 2; i++) {
        item(&seq, UNDEF, 0);
        IM_STR(&seq, 0x00081155u, "1.2.3\0");
        item_end(&seq, 0);
    }
    im_hdr(&b, 0x00081140u, (uint32_t)seq.len);
    buf_append(&b, &seq);
    IM_STR(&b, 0x00100010u, "Doe^John");
    file = read_as(&b, "sequences-implicit.dcm", NULL);
    ds = mv_file_dataset(file);
    assert_string_equal(mv_file_transfer_syntax(file)->uid, MV_UID_IMPLICIT_LE);
    assert_int_equal(mv_dataset_count(ds), 4);
    el = must_find(ds, 0x00081115u);
    assert_true(mv_element_is_sequence(el));
    assert_vr(mv_element_vr(el), "SQ");
    assert_int_equal(mv_element_item_count(el), 1);
    assert_vr(mv_element_vr(must_find(mv_element_item(el, 0), 0x0020000Eu)), "UI");
    assert_string_of(mv_element_item(el, 0), 0x0020000Eu, "1.2.3.4");
    el = must_find(ds, 0x00081140u);
    assert_int_equal(mv_element_length(el), (uint32_t)seq.len);
    assert_int_equal(mv_element_item_count(el), 2);
    assert_string_of(mv_element_item(el, 1), 0x00081155u, "1.2.3");
    assert_string_of(ds, 0x00100010u, "Doe^John");
    mv_file_free(file);
    buf_free(&b);
    buf_free(&it);
    buf_free(&seq);
}

/* Empty sequences and empty items, of defined and undefined length (PS3.5 7.5). */
static void test_empty_sequences_and_items(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *ds;
    MvElement *el;

    (void)state;
    EX_STR(&b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    ex_hdr(&b, 0x00081115u, "SQ", 0, 0);     /* defined length 0: no items */
    ex_hdr(&b, 0x00081140u, "SQ", UNDEF, 0); /* undefined length: no items */
    seq_end(&b, 0);
    ex_hdr(&b, 0x0040A730u, "SQ", UNDEF, 0); /* an empty item of each kind */
    item(&b, 0, 0);
    item(&b, UNDEF, 0);
    item_end(&b, 0);
    seq_end(&b, 0);
    EX_STR(&b, 0x7FE00010u, "OB", "\x01\x02", 0);
    file = read_as(&b, "empty-sequences.dcm", NULL);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_dataset_count(ds), 5);
    el = must_find(ds, 0x00081115u);
    assert_true(mv_element_is_sequence(el));
    assert_int_equal(mv_element_item_count(el), 0);
    assert_int_equal(mv_element_length(el), 0);
    assert_int_equal(mv_element_vm(el), 0);
    el = must_find(ds, 0x00081140u);
    assert_true(mv_element_is_sequence(el));
    assert_int_equal(mv_element_item_count(el), 0);
    assert_int_equal(mv_element_length(el), MV_UNDEFINED_LENGTH);
    el = must_find(ds, 0x0040A730u);
    assert_int_equal(mv_element_item_count(el), 2);
    assert_int_equal(mv_dataset_count(mv_element_item(el, 0)), 0);
    assert_int_equal(mv_dataset_count(mv_element_item(el, 1)), 0);
    assert_value(must_find(ds, 0x7FE00010u), "\x01\x02", 2);
    mv_file_free(file);
    buf_free(&b);
}

/* levels nested (0040,A730) sequences of undefined length, each with one undefined-length
 * item, the innermost holding (0040,A160) UT "x ". Each level adds 12 + 8 bytes. */
static void nested(Buf *b, int levels)
{
    for (int i = 0; i < levels; i++) {
        ex_hdr(b, 0x0040A730u, "SQ", UNDEF, 0);
        item(b, UNDEF, 0);
    }
    EX_STR(b, 0x0040A160u, "UT", "x ", 0);
    for (int i = 0; i < levels; i++) {
        item_end(b, 0);
        seq_end(b, 0);
    }
}

static void test_depth_cap(void **state)
{
    Buf b = {0};
    MvReadOptions opts;
    MvError err;
    MvFile *file;
    char offset_text[32];
    size_t base;

    (void)state;
    EX_STR(&b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    base = b.len;
    nested(&b, 100);

    mv_read_options_init(&opts);
    opts.max_depth = 64;
    assert_int_equal(read_fails(&b, "deep.dcm", &opts, &err), MV_ERR_LIMIT);
    /* The 65th sequence is the first one past the cap: it is the offending element. */
    assert_int_equal(err.tag, 0x0040A730u);
    assert_int_equal(err.offset, base + 64 * 20);
    assert_contains(err.message, "deep");
    assert_contains(err.message, "64");
    assert_contains(err.message, "deep.dcm");
    snprintf(offset_text, sizeof offset_text, "%zu", base + 64 * 20);
    assert_contains(err.message, offset_text);

    /* The default cap is 64 too. */
    assert_int_equal(read_fails(&b, "deep.dcm", NULL, &err), MV_ERR_LIMIT);

    opts.max_depth = 200;
    file = read_as(&b, "deep.dcm", &opts);
    {
        MvDataset *ds = mv_file_dataset(file);
        for (int i = 0; i < 100; i++) {
            MvElement *seq = must_find(ds, 0x0040A730u);
            assert_int_equal(mv_element_item_count(seq), 1);
            ds = mv_element_item(seq, 0);
        }
        assert_string_of(ds, 0x0040A160u, "x");
    }
    mv_file_free(file);

    /* Exactly at the cap: 64 levels read with max_depth 64, 65 do not. */
    b.len = base;
    nested(&b, 64);
    opts.max_depth = 64;
    file = read_as(&b, "deep64.dcm", &opts);
    mv_file_free(file);
    b.len = base;
    nested(&b, 65);
    assert_int_equal(read_fails(&b, "deep65.dcm", &opts, &err), MV_ERR_LIMIT);
    buf_free(&b);
}

/* ---- Hostile lengths ------------------------------------------------------------------ */

static void test_length_past_end(void **state)
{
    Buf b = {0};
    size_t px_at;
    MvError err;
    char offset_text[32];

    (void)state;
    part10(&b, MV_UID_EXPLICIT_LE);
    small_dataset(&b);
    px_at = b.len;
    /* OW with 1000 bytes declared and 16 present */
    ex_hdr(&b, 0x7FE00010u, "OW", 1000, 0);
    buf_put(&b, "0123456789abcdef", 16);
    assert_int_equal(read_fails(&b, "trunc.dcm", NULL, &err), MV_ERR_PARSE);
    assert_int_equal(err.tag, 0x7FE00010u);
    assert_int_equal(err.offset, px_at);
    assert_contains(err.message, "trunc.dcm");
    assert_contains(err.message, "(7FE0,0010)");
    snprintf(offset_text, sizeof offset_text, "%zu", px_at);
    assert_contains(err.message, offset_text);

    /* A short-form element whose 16-bit length runs past the end. */
    b.len = px_at;
    ex_hdr(&b, 0x00100020u, "LO", 64, 0);
    buf_put(&b, "ID", 2);
    assert_int_equal(read_fails(&b, "trunc2.dcm", NULL, &err), MV_ERR_PARSE);
    assert_int_equal(err.tag, 0x00100020u);
    assert_int_equal(err.offset, px_at);
    assert_contains(err.message, "(0010,0020)");

    /* An item whose length runs past the end of its sequence. */
    b.len = px_at;
    ex_hdr(&b, 0x00400275u, "SQ", 16, 0);
    item(&b, 400, 0);
    EX_STR(&b, 0x00400007u, "LO", "abcd", 0);
    assert_int_equal(read_fails(&b, "trunc3.dcm", NULL, &err), MV_ERR_PARSE);
    buf_free(&b);
}

/* True when this binary runs under AddressSanitizer, which reserves terabytes of address
 * space and so cannot run under an address space limit. */
static int under_asan(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 1;
#else
    return 0;
#endif
#else
    return 0;
#endif
}

/* Reads b in a child whose address space is capped at what it uses now plus 256 MiB: an
 * attempt to allocate what a length field declares would fail there. Returns the status. */
static int status_under_memory_cap(const Buf *b)
{
    pid_t pid = fork();
    int wstatus = 0;

    assert_true(pid >= 0);
    if (pid == 0) {
        long pages = 0;
        FILE *statm = fopen("/proc/self/statm", "r");
        struct rlimit rl;
        MvFile *file = NULL;
        MvStatus st;

        if (statm == NULL || fscanf(statm, "%ld", &pages) != 1)
            _exit(100);
        fclose(statm);
        rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(101);
        st = mv_file_from_memory(b->data, b->len, "huge.dcm", NULL, &file, NULL);
        mv_file_free(file);
        _exit((int)st);
    }
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFEXITED(wstatus));
    return WEXITSTATUS(wstatus);
}

/* A 200-byte input that declares a 3 GB Pixel Data element. */
static void test_huge_declared_length(void **state)
{
    static const uint8_t zeros[200];
    Buf b = {0};
    size_t px_at;
    MvError err;

    (void)state;
    small_dataset(&b);
    px_at = b.len;
    ex_hdr(&b, 0x7FE00010u, "OW", 0xC0000000u, 0);
    buf_put(&b, zeros, 200 - b.len);
    assert_int_equal(b.len, 200);
    assert_int_equal(read_fails(&b, "huge.dcm", NULL, &err), MV_ERR_PARSE);
    assert_int_equal(err.tag, 0x7FE00010u);
    assert_int_equal(err.offset, px_at);
    if (under_asan())
        print_message("note: built with AddressSanitizer; the address-space-capped run is skipped\n");
    else
        assert_int_equal(status_under_memory_cap(&b), MV_ERR_PARSE);

    /* The same in implicit VR, and as a sequence and an item of 3 GB. */
    b.len = 0;
    IM_STR(&b, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7\0");
    im_hdr(&b, 0x7FE00010u, 0xC0000000u);
    buf_put(&b, zeros, 200 - b.len);
    assert_int_equal(read_fails(&b, "huge-implicit.dcm", NULL, &err), MV_ERR_PARSE);
    assert_int_equal(err.tag, 0x7FE00010u);
    if (!under_asan())
        assert_int_equal(status_under_memory_cap(&b), MV_ERR_PARSE);

    b.len = 0;
    small_dataset(&b);
    ex_hdr(&b, 0x00400275u, "SQ", 0xC0000000u, 0);
    buf_put(&b, zeros, 200 - b.len);
    assert_int_equal(read_fails(&b, "huge-sq.dcm", NULL, &err), MV_ERR_PARSE);

    b.len = 0;
    small_dataset(&b);
    ex_hdr(&b, 0x00400275u, "SQ", UNDEF, 0);
    item(&b, 0xC0000000u, 0);
    buf_put(&b, zeros, 200 - b.len);
    assert_int_equal(read_fails(&b, "huge-item.dcm", NULL, &err), MV_ERR_PARSE);
    buf_free(&b);
}

static void test_max_element_length(void **state)
{
    Buf b = {0};
    size_t at;
    MvReadOptions opts;
    MvError err;
    MvFile *file;

    (void)state;
    EX_STR(&b, 0x00100010u, "PN", "Doe^John", 0);
    at = b.len;
    EX_STR(&b, 0x00100020u, "LO", "0123456789ABCDEF01", 0); /* 18 bytes */
    mv_read_options_init(&opts);
    opts.max_element_length = 16;
    assert_int_equal(read_fails(&b, "cap.dcm", &opts, &err), MV_ERR_LIMIT);
    assert_int_equal(err.tag, 0x00100020u);
    assert_int_equal(err.offset, at);
    assert_contains(err.message, "(0010,0020)");

    /* 16 bytes is within the cap. */
    b.len = at;
    EX_STR(&b, 0x00100020u, "LO", "0123456789ABCDEF", 0);
    file = read_as(&b, "cap.dcm", &opts);
    assert_string_of(mv_file_dataset(file), 0x00100020u, "0123456789ABCDEF");
    mv_file_free(file);
    buf_free(&b);
}

/* ---- Encapsulated pixel data (PS3.5 A.4) ---------------------------------------------- */

static void test_encapsulated(void **state)
{
    static const uint8_t bot[4] = {0, 0, 0, 0};  /* Basic Offset Table: frame 0 at offset 0 */
    static const uint8_t frag1[6] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10};
    static const uint8_t frag2[4] = {0x12, 0x34, 0xFF, 0xD9};
    Buf b = {0};
    size_t px_at;
    MvFile *file;
    MvElement *px;
    const uint8_t *p;
    size_t n;

    (void)state;
    part10(&b, "1.2.840.10008.1.2.4.50");
    small_dataset(&b);
    px_at = b.len;
    ex_hdr(&b, 0x7FE00010u, "OB", UNDEF, 0);
    item(&b, sizeof bot, 0);
    buf_put(&b, bot, sizeof bot);
    item(&b, sizeof frag1, 0);
    buf_put(&b, frag1, sizeof frag1);
    item(&b, sizeof frag2, 0);
    buf_put(&b, frag2, sizeof frag2);
    seq_end(&b, 0);
    file = read_as(&b, "jpeg.dcm", NULL);
    assert_int_equal(mv_file_transfer_syntax(file)->encapsulated, 1);
    px = must_find(mv_file_dataset(file), 0x7FE00010u);
    assert_int_equal(mv_element_offset(px), px_at);
    assert_true(mv_element_is_encapsulated(px));
    assert_false(mv_element_is_sequence(px));
    assert_vr(mv_element_vr(px), "OB");
    assert_int_equal(mv_element_length(px), MV_UNDEFINED_LENGTH);
    assert_null(mv_element_value(px, &n));
    assert_int_equal(n, 0);
    assert_int_equal(mv_element_fragment_count(px), 3);
    p = mv_element_fragment(px, 0, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(p, bot, 4);
    p = mv_element_fragment(px, 1, &n);
    assert_int_equal(n, 6);
    assert_memory_equal(p, frag1, 6);
    assert_ptr_equal(p, b.data + px_at + 12 + 8 + 4 + 8); /* not copied */
    p = mv_element_fragment(px, 2, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(p, frag2, 4);
    assert_null(mv_element_fragment(px, 3, &n));
    assert_int_equal(n, 0);
    mv_file_free(file);

    /* An empty Basic Offset Table is still fragment 0. */
    b.len = px_at;
    ex_hdr(&b, 0x7FE00010u, "OB", UNDEF, 0);
    item(&b, 0, 0);
    item(&b, sizeof frag1, 0);
    buf_put(&b, frag1, sizeof frag1);
    seq_end(&b, 0);
    EX_STR(&b, 0xFFFCFFFCu, "OB", "\0\0", 0); /* Data Set Trailing Padding after it */
    file = read_as(&b, "jpeg-nobot.dcm", NULL);
    px = must_find(mv_file_dataset(file), 0x7FE00010u);
    assert_int_equal(mv_element_fragment_count(px), 2);
    n = 12345;
    (void)mv_element_fragment(px, 0, &n);
    assert_int_equal(n, 0);
    p = mv_element_fragment(px, 1, &n);
    assert_int_equal(n, 6);
    assert_memory_equal(p, frag1, 6);
    assert_non_null(mv_dataset_find(mv_file_dataset(file), 0xFFFCFFFCu));
    mv_file_free(file);
    buf_free(&b);
}

/* PS3.5 6.2.2: a UN element of undefined length holds a sequence whose items are encoded
 * in implicit VR little endian, whatever the transfer syntax. */
static void test_un_undefined_length(void **state)
{
    Buf b = {0}, it = {0};
    MvFile *file;
    MvDataset *ds, *i0, *i1;
    MvElement *un;

    (void)state;
    part10(&b, MV_UID_EXPLICIT_LE);
    EX_STR(&b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    ex_hdr(&b, 0x00081115u, "UN", UNDEF, 0);
    item(&b, UNDEF, 0);
    IM_STR(&b, 0x00081155u, "1.2.3\0"); /* implicit VR inside the UN value */
    IM_STR(&b, 0x0020000Eu, "1.2.3.4\0");
    item_end(&b, 0);
    IM_STR(&it, 0x0020000Eu, "1.2.3.5\0");
    item(&b, (uint32_t)it.len, 0);
    buf_append(&b, &it);
    seq_end(&b, 0);
    EX_STR(&b, 0x00090010u, "LO", "ACME", 0);
    ex_hdr(&b, 0x00091010u, "UN", UNDEF, 0);
    item(&b, UNDEF, 0);
    IM_STR(&b, 0x00080100u, "CODE01");
    item_end(&b, 0);
    seq_end(&b, 0);
    EX_STR(&b, 0x00100010u, "PN", "Doe^John", 0);
    file = read_as(&b, "un-sequence.dcm", NULL);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_dataset_count(ds), 5);

    un = must_find(ds, 0x00081115u);
    assert_true(mv_element_is_sequence(un));
    assert_int_equal(mv_element_length(un), MV_UNDEFINED_LENGTH);
    assert_int_equal(mv_element_item_count(un), 2);
    i0 = mv_element_item(un, 0);
    i1 = mv_element_item(un, 1);
    assert_int_equal(mv_dataset_count(i0), 2);
    assert_vr(mv_element_vr(must_find(i0, 0x00081155u)), "UI");
    assert_vr(mv_element_vr(must_find(i0, 0x0020000Eu)), "UI");
    assert_string_of(i0, 0x00081155u, "1.2.3");
    assert_string_of(i0, 0x0020000Eu, "1.2.3.4");
    assert_string_of(i1, 0x0020000Eu, "1.2.3.5");

    un = must_find(ds, 0x00091010u);
    assert_true(mv_element_is_sequence(un));
    assert_int_equal(mv_element_item_count(un), 1);
    assert_vr(mv_element_vr(must_find(mv_element_item(un, 0), 0x00080100u)), "SH");
    assert_string_of(mv_element_item(un, 0), 0x00080100u, "CODE01");

    assert_string_of(ds, 0x00100010u, "Doe^John");
    mv_file_free(file);
    buf_free(&b);
    buf_free(&it);
}

/* ---- Tolerated oddities --------------------------------------------------------------- */

/* The meta says explicit VR; the dataset is implicit VR. It is read, with a warning. */
static void test_explicit_ts_implicit_dataset(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *ds;

    (void)state;
    part10(&b, MV_UID_EXPLICIT_LE);
    IM_STR(&b, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7\0");
    IM_STR(&b, 0x00080018u, "1.2.3.4\0");
    IM_STR(&b, 0x00100010u, "Doe^John");
    im_el(&b, 0x00280010u, us_512_le, 2);
    file = read_as(&b, "mislabelled.dcm", NULL);
    ds = mv_file_dataset(file);
    assert_true(mv_file_warning_count(file) > 0);
    assert_non_null(mv_file_warning(file, 0));
    assert_null(mv_file_warning(file, mv_file_warning_count(file)));
    assert_int_equal(mv_dataset_count(ds), 4);
    assert_vr(mv_element_vr(must_find(ds, 0x00100010u)), "PN");
    assert_string_of(ds, 0x00100010u, "Doe^John");
    assert_string_of(ds, 0x00080018u, "1.2.3.4");
    assert_int_equal(uint_of(ds, 0x00280010u, 0), 512);
    mv_file_free(file);
    buf_free(&b);
}

/* PS3.5 7.1.1: value lengths are even. An odd one is read as declared, with a warning. */
static void test_odd_length(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *ds;

    (void)state;
    EX_STR(&b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    EX_STR(&b, 0x00100010u, "PN", "Doe", 0);
    EX_STR(&b, 0x00100020u, "LO", "ID01", 0);
    file = read_as(&b, "odd.dcm", NULL);
    ds = mv_file_dataset(file);
    assert_true(mv_file_warning_count(file) > 0);
    assert_int_equal(mv_element_length(must_find(ds, 0x00100010u)), 3);
    assert_string_of(ds, 0x00100010u, "Doe");
    assert_int_equal(mv_element_offset(must_find(ds, 0x00100020u)), 8 + 26 + 8 + 3);
    assert_string_of(ds, 0x00100020u, "ID01");
    mv_file_free(file);
    buf_free(&b);
}

/* PS3.5 7.1: elements are in ascending tag order; others are sorted on reading, at the
 * top level and in items of defined length. */
static void test_out_of_order(void **state)
{
    Buf b = {0}, it = {0};
    MvFile *file;
    MvDataset *ds, *item0;

    (void)state;
    EX_STR(&b, 0x00100020u, "LO", "ID01", 0);               /* offset 0 */
    EX_STR(&b, 0x00100010u, "PN", "Doe^John", 0);           /* offset 12 */
    EX_STR(&b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0); /* offset 28 */
    EX_STR(&it, 0x00081155u, "UI", "1.2.3\0", 0);
    EX_STR(&it, 0x00081150u, "UI", "1.2\0", 0);
    ex_hdr(&b, 0x00081140u, "SQ", UNDEF, 0);                /* offset 62 */
    item(&b, (uint32_t)it.len, 0);
    buf_append(&b, &it);
    seq_end(&b, 0);
    file = read_as(&b, "unsorted.dcm", NULL);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_dataset_count(ds), 4);
    assert_int_equal(mv_element_tag(mv_dataset_at(ds, 0)), 0x00080016u);
    assert_int_equal(mv_element_tag(mv_dataset_at(ds, 1)), 0x00081140u);
    assert_int_equal(mv_element_tag(mv_dataset_at(ds, 2)), 0x00100010u);
    assert_int_equal(mv_element_tag(mv_dataset_at(ds, 3)), 0x00100020u);
    assert_int_equal(mv_element_offset(must_find(ds, 0x00100020u)), 0);
    assert_int_equal(mv_element_offset(must_find(ds, 0x00100010u)), 12);
    assert_int_equal(mv_element_offset(must_find(ds, 0x00080016u)), 28);
    assert_int_equal(mv_element_offset(must_find(ds, 0x00081140u)), 62);
    assert_string_of(ds, 0x00100010u, "Doe^John");
    item0 = mv_element_item(must_find(ds, 0x00081140u), 0);
    assert_ptr_equal(mv_dataset_parent(item0), ds);
    assert_int_equal(mv_element_tag(mv_dataset_at(item0, 0)), 0x00081150u);
    assert_int_equal(mv_element_tag(mv_dataset_at(item0, 1)), 0x00081155u);
    assert_string_of(item0, 0x00081150u, "1.2");
    assert_string_of(item0, 0x00081155u, "1.2.3");
    mv_file_free(file);
    buf_free(&b);
    buf_free(&it);
}

/* The same inside an item of undefined length (PS3.5 7.5.2): its elements are sorted too,
 * so that mv_dataset_find (a binary search) finds every one of them. */
static void test_out_of_order_in_undefined_item(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *item0;
    size_t n;
    uint32_t first, second;
    int found_1150, found_1155;

    (void)state;
    EX_STR(&b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    ex_hdr(&b, 0x00081140u, "SQ", UNDEF, 0);
    item(&b, UNDEF, 0);
    EX_STR(&b, 0x00081155u, "UI", "1.2.3\0", 0);
    EX_STR(&b, 0x00081150u, "UI", "1.2\0", 0);
    item_end(&b, 0);
    seq_end(&b, 0);
    file = read_as(&b, "unsorted-item.dcm", NULL);
    item0 = mv_element_item(must_find(mv_file_dataset(file), 0x00081140u), 0);
    /* looked at first and asserted after the frees, so that a failure leaks nothing */
    n = mv_dataset_count(item0);
    first = n > 0 ? mv_element_tag(mv_dataset_at(item0, 0)) : 0;
    second = n > 1 ? mv_element_tag(mv_dataset_at(item0, 1)) : 0;
    found_1150 = mv_dataset_find(item0, 0x00081150u) != NULL;
    found_1155 = mv_dataset_find(item0, 0x00081155u) != NULL;
    mv_file_free(file);
    buf_free(&b);
    assert_int_equal(n, 2);
    assert_int_equal(first, 0x00081150u);
    assert_int_equal(second, 0x00081155u);
    assert_true(found_1150);
    assert_true(found_1155);
}

/* ---- Accessors -------------------------------------------------------------------------- */

/* PS3.5 7.8.1: (gggg,xxee) belongs to the block reserved by creator (gggg,00xx). */
static void test_private_creator(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *ds;
    const char *creator;
    size_t len = 0;

    (void)state;
    EX_STR(&b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 0);
    EX_STR(&b, 0x00090010u, "LO", "ACME 1.0 ", 0);
    EX_STR(&b, 0x00090012u, "LO", "OTHER\0", 0);
    EX_STR(&b, 0x000900FFu, "LO", "LAST", 0);
    EX_STR(&b, 0x00091010u, "LO", "v1", 0);
    EX_STR(&b, 0x000910FFu, "LO", "v2", 0);
    EX_STR(&b, 0x00091201u, "LO", "v3", 0);
    EX_STR(&b, 0x0009FF01u, "LO", "v4", 0);
    EX_STR(&b, 0x00091101u, "LO", "v5", 0); /* block 11: no (0009,0011) */
    file = read_as(&b, "private.dcm", NULL);
    ds = mv_file_dataset(file);

    creator = mv_dataset_private_creator(ds, 0x00091010u, &len);
    assert_non_null(creator);
    assert_int_equal(len, 8); /* "ACME 1.0" without its padding */
    assert_memory_equal(creator, "ACME 1.0", 8);
    creator = mv_dataset_private_creator(ds, 0x000910FFu, &len);
    assert_non_null(creator);
    assert_int_equal(len, 8);
    assert_memory_equal(creator, "ACME 1.0", 8);
    creator = mv_dataset_private_creator(ds, 0x00091201u, &len);
    assert_non_null(creator);
    assert_int_equal(len, 5);
    assert_memory_equal(creator, "OTHER", 5);
    creator = mv_dataset_private_creator(ds, 0x0009FF01u, &len);
    assert_non_null(creator);
    assert_int_equal(len, 4);
    assert_memory_equal(creator, "LAST", 4);
    /* no creator for block 11 */
    assert_null(mv_dataset_private_creator(ds, 0x00091101u, &len));
    /* a creator element, a public tag: not private data elements */
    assert_null(mv_dataset_private_creator(ds, 0x00090010u, &len));
    assert_null(mv_dataset_private_creator(ds, 0x00100010u, &len));
    assert_null(mv_dataset_private_creator(ds, 0x00080016u, &len));
    mv_file_free(file);
    buf_free(&b);
}

static void test_typed_getters(void **state)
{
    static const uint8_t us4[] = {0x01, 0x00, 0x02, 0x00, 0x00, 0x02, 0xFF, 0xFF}; /* 1 2 512 65535 */
    static const uint8_t ss[] = {0xFB, 0xFF};                                   /* -5 */
    static const uint8_t ul[] = {0x70, 0x11, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}; /* 70000 4294967295 */
    static const uint8_t fl[] = {0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x10, 0xC0}; /* 1.5 -2.25 */
    static const uint8_t fd[] = {0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0, 0, 0, 0, 0, 0, 0x02, 0xC0};
    static const uint8_t sl[] = {0x90, 0xEE, 0xFE, 0xFF};                       /* -70000 */
    static const uint8_t at[] = {0x18, 0x00, 0x63, 0x10};                       /* (0018,1063) */
    Buf b = {0};
    MvFile *file;
    MvDataset *ds;
    MvError err;
    uint64_t u;
    int64_t i;
    double d;

    (void)state;
    ex_el(&b, 0x00081161u, "UL", ul, sizeof ul, 0);
    ex_el(&b, 0x00081163u, "FD", fd, sizeof fd, 0);
    EX_STR(&b, 0x00100020u, "LO", "", 0);
    EX_STR(&b, 0x00101030u, "DS", "abc ", 0);
    ex_el(&b, 0x00181310u, "US", us4, sizeof us4, 0);
    ex_el(&b, 0x00182043u, "FL", fl, sizeof fl, 0);
    ex_el(&b, 0x00186020u, "SL", sl, sizeof sl, 0);
    ex_el(&b, 0x00189219u, "SS", ss, sizeof ss, 0);
    EX_STR(&b, 0x00200013u, "IS", " 42 ", 0);
    ex_el(&b, 0x00280009u, "AT", at, sizeof at, 0);
    EX_STR(&b, 0x00280030u, "DS", "1.5\\-2", 0);
    EX_STR(&b, 0x00280301u, "CS", "A\\B\\C ", 0);
    EX_STR(&b, 0x00284000u, "LT", "a\\b ", 0);
    file = read_as(&b, "typed.dcm", NULL);
    ds = mv_file_dataset(file);

    /* US */
    assert_int_equal(uint_of(ds, 0x00181310u, 0), 1);
    assert_int_equal(uint_of(ds, 0x00181310u, 2), 512);
    assert_int_equal(uint_of(ds, 0x00181310u, 3), 65535);
    assert_int_equal(int_of(ds, 0x00181310u, 3), 65535);
    assert_double(double_of(ds, 0x00181310u, 3), 65535.0);
    assert_int_equal(mv_element_uint(ds, must_find(ds, 0x00181310u), 4, &u, &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_element_int(ds, must_find(ds, 0x00181310u), 4, &i, &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_element_double(ds, must_find(ds, 0x00181310u), 4, &d, &err), MV_ERR_NOTFOUND);
    /* SS negative */
    assert_int_equal(int_of(ds, 0x00189219u, 0), -5);
    assert_double(double_of(ds, 0x00189219u, 0), -5.0);
    assert_int_not_equal(mv_element_uint(ds, must_find(ds, 0x00189219u), 0, &u, &err), MV_OK);
    /* SL */
    assert_int_equal(int_of(ds, 0x00186020u, 0), -70000);
    /* UL */
    assert_int_equal(uint_of(ds, 0x00081161u, 0), 70000);
    assert_int_equal(uint_of(ds, 0x00081161u, 1), 4294967295u);
    assert_int_equal(int_of(ds, 0x00081161u, 1), 4294967295);
    assert_int_equal(mv_element_uint(ds, must_find(ds, 0x00081161u), 2, &u, &err), MV_ERR_NOTFOUND);
    /* FL, FD */
    assert_double(double_of(ds, 0x00182043u, 0), 1.5);
    assert_double(double_of(ds, 0x00182043u, 1), -2.25);
    assert_int_equal(mv_element_double(ds, must_find(ds, 0x00182043u), 2, &d, &err), MV_ERR_NOTFOUND);
    assert_double(double_of(ds, 0x00081163u, 0), 1.5);
    assert_double(double_of(ds, 0x00081163u, 1), -2.25);
    /* AT: group then element */
    assert_int_equal(uint_of(ds, 0x00280009u, 0), 0x00181063u);
    /* DS "1.5\-2" */
    assert_double(double_of(ds, 0x00280030u, 0), 1.5);
    assert_double(double_of(ds, 0x00280030u, 1), -2.0);
    assert_int_equal(mv_element_double(ds, must_find(ds, 0x00280030u), 2, &d, &err), MV_ERR_NOTFOUND);
    assert_int_equal(err.code, MV_ERR_NOTFOUND);
    assert_int_equal(err.tag, 0x00280030u);
    assert_int_equal(mv_element_int(ds, must_find(ds, 0x00280030u), 0, &i, &err), MV_ERR_PARSE);
    /* IS " 42 ": leading and trailing spaces are padding (PS3.5 Table 6.2-1) */
    assert_int_equal(uint_of(ds, 0x00200013u, 0), 42);
    assert_int_equal(int_of(ds, 0x00200013u, 0), 42);
    assert_double(double_of(ds, 0x00200013u, 0), 42.0);
    assert_int_equal(mv_element_uint(ds, must_find(ds, 0x00200013u), 1, &u, &err), MV_ERR_NOTFOUND);
    /* DS that is not a number */
    assert_int_equal(mv_element_double(ds, must_find(ds, 0x00101030u), 0, &d, &err), MV_ERR_PARSE);
    /* VM (PS3.5 6.4): backslashes for text but LT/ST/UT/UR, size for binary */
    assert_int_equal(mv_element_vm(must_find(ds, 0x00181310u)), 4);
    assert_int_equal(mv_element_vm(must_find(ds, 0x00189219u)), 1);
    assert_int_equal(mv_element_vm(must_find(ds, 0x00081161u)), 2);
    assert_int_equal(mv_element_vm(must_find(ds, 0x00182043u)), 2);
    assert_int_equal(mv_element_vm(must_find(ds, 0x00081163u)), 2);
    assert_int_equal(mv_element_vm(must_find(ds, 0x00280009u)), 1);
    assert_int_equal(mv_element_vm(must_find(ds, 0x00280030u)), 2);
    assert_int_equal(mv_element_vm(must_find(ds, 0x00200013u)), 1);
    assert_int_equal(mv_element_vm(must_find(ds, 0x00280301u)), 3);
    assert_int_equal(mv_element_vm(must_find(ds, 0x00284000u)), 1);
    assert_int_equal(mv_element_vm(must_find(ds, 0x00100020u)), 0);
    mv_file_free(file);
    buf_free(&b);
}

static void test_strings_and_charsets(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *ds, *i0, *i1;
    MvElement *seq;
    char *s = (char *)&s;
    MvError err;

    (void)state;
    EX_STR(&b, 0x00080005u, "CS", "ISO_IR 100", 0);
    EX_STR(&b, 0x00080018u, "UI", "1.2.3\0", 0);
    ex_hdr(&b, 0x00081115u, "SQ", UNDEF, 0);
    item(&b, UNDEF, 0); /* inherits ISO_IR 100 */
    EX_STR(&b, 0x00100010u, "PN", "M\xFCller", 0);
    item_end(&b, 0);
    item(&b, UNDEF, 0); /* its own character set */
    EX_STR(&b, 0x00080005u, "CS", "ISO_IR 192", 0);
    EX_STR(&b, 0x00100010u, "PN", "M\xC3\xBCller ", 0);
    item_end(&b, 0);
    seq_end(&b, 0);
    EX_STR(&b, 0x00100010u, "PN", "M\xFCller^Hans ", 0);
    EX_STR(&b, 0x00100020u, "LO", "ID7 ", 0);
    EX_STR(&b, 0x00104000u, "LT", "  two leading  ", 0);
    ex_el(&b, 0x00280010u, "US", us_512_le, 2, 0);
    file = read_as(&b, "charset.dcm", NULL);
    ds = mv_file_dataset(file);

    assert_string_equal(mv_dataset_charset(ds), "ISO_IR 100");
    /* ISO_IR 100 is Latin-1: 0xFC is U+00FC, C3 BC in UTF-8 */
    assert_string_of(ds, 0x00100010u, "M\xC3\xBCller^Hans");
    assert_string_of(ds, 0x00100020u, "ID7");
    assert_string_of(ds, 0x00104000u, "  two leading");
    assert_string_of(ds, 0x00080018u, "1.2.3");
    seq = must_find(ds, 0x00081115u);
    i0 = mv_element_item(seq, 0);
    i1 = mv_element_item(seq, 1);
    assert_string_equal(mv_dataset_charset(i0), "ISO_IR 100");
    assert_string_of(i0, 0x00100010u, "M\xC3\xBCller");
    assert_string_equal(mv_dataset_charset(i1), "ISO_IR 192");
    assert_string_of(i1, 0x00100010u, "M\xC3\xBCller");

    assert_int_equal(mv_dataset_get_string(ds, 0x00100010u, &s, &err), MV_OK);
    assert_string_equal(s, "M\xC3\xBCller^Hans");
    free(s);
    s = (char *)&s;
    assert_int_equal(mv_dataset_get_string(ds, 0x00100030u, &s, &err), MV_ERR_NOTFOUND);
    assert_null(s);
    /* binary VRs have no string */
    s = (char *)&s;
    assert_int_equal(mv_element_string(ds, must_find(ds, 0x00280010u), &s, &err), MV_ERR_ARG);
    assert_null(s);
    mv_file_free(file);

    /* Without (0008,0005) the default repertoire applies. */
    b.len = 0;
    EX_STR(&b, 0x00100010u, "PN", "Doe^John", 0);
    file = read_as(&b, "nocharset.dcm", NULL);
    assert_string_equal(mv_dataset_charset(mv_file_dataset(file)), "");
    assert_string_of(mv_file_dataset(file), 0x00100010u, "Doe^John");
    mv_file_free(file);
    buf_free(&b);
}

/* ---- Files on disk ------------------------------------------------------------------- */

static void test_file_open(void **state)
{
    char dir[] = "/tmp/mv-test-read-XXXXXX";
    char path[256], missing[256], empty[256];
    Buf b = {0};
    FILE *f;
    MvFile *file = NULL;
    MvReadOptions opts;
    MvError err;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/in.dcm", dir);
    snprintf(missing, sizeof missing, "%s/missing.dcm", dir);
    snprintf(empty, sizeof empty, "%s/empty.dcm", dir);
    part10(&b, MV_UID_EXPLICIT_LE);
    small_dataset(&b);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
    assert_int_equal(fclose(f), 0);
    f = fopen(empty, "wb");
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);

    for (int no_mmap = 0; no_mmap < 2; no_mmap++) {
        mv_read_options_init(&opts);
        opts.flags = no_mmap ? MV_READ_NO_MMAP : 0;
        assert_int_equal(mv_file_open(path, &opts, &file, &err), MV_OK);
        assert_string_equal(mv_file_name(file), path);
        assert_int_equal(mv_file_input_size(file), b.len);
        assert_int_equal(mv_dataset_count(mv_file_dataset(file)), 4);
        assert_string_of(mv_file_dataset(file), 0x00100010u, "Doe^John");
        mv_file_free(file);
    }
    file = (MvFile *)&file;
    assert_int_equal(mv_file_open(missing, NULL, &file, &err), MV_ERR_NOTFOUND);
    assert_null(file);
    assert_contains(err.message, missing);
    assert_int_equal(mv_file_open(empty, NULL, &file, &err), MV_ERR_PARSE);
    assert_contains(err.message, empty);
    assert_int_equal(mv_file_open(dir, NULL, &file, &err), MV_ERR_ARG);

    /* A parse error names the path. */
    b.len -= 2;
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(mv_file_open(path, NULL, &file, &err), MV_ERR_PARSE);
    assert_contains(err.message, path);
    assert_contains(err.message, "(0028,0010)");
    assert_int_equal(err.tag, 0x00280010u);

    unlink(path);
    unlink(empty);
    rmdir(dir);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_part10_explicit_le),
        cmocka_unit_test(test_no_preamble),
        cmocka_unit_test(test_bare_implicit_le),
        cmocka_unit_test(test_bare_explicit_le),
        cmocka_unit_test(test_explicit_big_endian),
        cmocka_unit_test(test_deflated),
        cmocka_unit_test(test_deflate_bomb_capped),
        cmocka_unit_test(test_sequences_explicit),
        cmocka_unit_test(test_sequences_implicit),
        cmocka_unit_test(test_empty_sequences_and_items),
        cmocka_unit_test(test_depth_cap),
        cmocka_unit_test(test_length_past_end),
        cmocka_unit_test(test_huge_declared_length),
        cmocka_unit_test(test_max_element_length),
        cmocka_unit_test(test_encapsulated),
        cmocka_unit_test(test_un_undefined_length),
        cmocka_unit_test(test_explicit_ts_implicit_dataset),
        cmocka_unit_test(test_odd_length),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_out_of_order_in_undefined_item),
        cmocka_unit_test(test_private_creator),
        cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_strings_and_charsets),
        cmocka_unit_test(test_file_open),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
