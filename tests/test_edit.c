/* Unit tests of the editing API and tag paths (src/dicom/dataset.c) and of how edits reach
 * the writer. Datasets are built with the API or parsed from byte buffers encoded by hand
 * per PS3.5 Section 7; after an edit, a written file must hold exactly the bytes the
 * standard gives for the new value and the untouched bytes of everything else. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "medveil/dicom.h"

/* ---- Hand-made encodings (PS3.5 Section 7) -------------------------------------------- */

#include "dicom_bytes.h"
#include "dicom_values.h"

/* UID value padded with one NUL to even length (PS3.5 6.2). */
static void ui_el(Buf *b, uint32_t tag, const char *uid)
{
    char v[80];
    size_t n = strlen(uid);

    assert_true(n + 1 < sizeof v);
    memcpy(v, uid, n);
    if (n & 1u)
        v[n++] = '\0';
    ex_el(b, tag, "UI", v, n, 0);
}

/* PS3.10 7.1 preamble, "DICM" and a canonical File Meta Information. */
static void part10(Buf *b, const char *ts_uid)
{
    static const uint8_t zero[128];
    static const uint8_t version[2] = {0x00, 0x01};
    Buf meta = {0};

    ex_el(&meta, 0x00020001u, "OB", version, 2, 0);
    ui_el(&meta, 0x00020002u, "1.2.840.10008.5.1.4.1.1.7");
    ui_el(&meta, 0x00020003u, "1.2.3.4");
    ui_el(&meta, 0x00020010u, ts_uid);
    ui_el(&meta, 0x00020012u, "1.2.3.999");
    EX_STR(&meta, 0x00020013u, "SH", "OTHER_1 ", 0);
    buf_put(b, zero, sizeof zero);
    buf_put(b, "DICM", 4);
    ex_hdr(b, 0x00020000u, "UL", 4, 0);
    buf_u32(b, (uint32_t)meta.len, 0);
    buf_append(b, &meta);
    buf_free(&meta);
}

/* ---- Helpers ------------------------------------------------------------------------------ */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mv-test-edit-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    char path[512];

    (void)state;
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
    return 0;
}

static void load(const char *path, Buf *out)
{
    FILE *f = fopen(path, "rb");
    uint8_t chunk[65536];
    size_t n;

    assert_non_null(f);
    out->len = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_put(out, chunk, n);
    fclose(f);
}

static MvFile *read_mem(const Buf *b)
{
    MvFile *file = NULL;
    MvError err;

    if (mv_file_from_memory(b->data, b->len, "edit.dcm", NULL, &file, &err) != MV_OK)
        fail_msg("reading failed: %s", err.message);
    return file;
}

/* Writes file to tmpdir/name (its own transfer syntax, or ts) and loads the bytes. */
static void write_and_load(MvFile *file, const char *name, const char *ts, Buf *out, char path[512])
{
    MvWriteOptions opts;
    MvError err;

    mv_write_options_init(&opts);
    opts.flags = MV_WRITE_NO_SYNC;
    opts.transfer_syntax = ts;
    snprintf(path, 512, "%s/%s", tmpdir, name);
    if (mv_file_write(file, path, &opts, &err) != MV_OK)
        fail_msg("writing %s failed: %s", path, err.message);
    load(path, out);
}

static MvFile *read_path(const char *path)
{
    MvFile *file = NULL;
    MvError err;

    if (mv_file_open(path, NULL, &file, &err) != MV_OK)
        fail_msg("reading %s failed: %s", path, err.message);
    return file;
}

static MvFile *new_file(void)
{
    MvFile *file = NULL;

    assert_int_equal(mv_file_new(&file), MV_OK);
    assert_non_null(file);
    return file;
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
    if (n > 0)
        assert_memory_equal(v, expected, n);
}

static void assert_string_of(const MvDataset *ds, uint32_t tag, const char *expected)
{
    char *s = NULL;
    MvError err;

    if (mv_element_string(ds, must_find(ds, tag), &s, &err) != MV_OK)
        fail_msg("(%04X,%04X): %s", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF), err.message);
    assert_string_equal(s, expected);
    free(s);
}

static void set_string(MvDataset *ds, uint32_t tag, const char *value)
{
    MvError err;

    if (mv_dataset_set_string(ds, tag, MV_VR_NONE, value, &err) != MV_OK)
        fail_msg("setting (%04X,%04X): %s", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF), err.message);
}

static void path_set(MvDataset *root, const char *path, const char *value)
{
    MvError err;

    if (mv_path_set_string(root, path, value, &err) != MV_OK)
        fail_msg("mv_path_set_string(\"%s\"): %s", path, err.message);
}

static void assert_tags(const MvDataset *ds, const uint32_t *tags, size_t n)
{
    assert_int_equal(mv_dataset_count(ds), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(mv_element_tag(mv_dataset_at(ds, i)), tags[i]);
}

/* Same elements, VRs, values, items and fragments, except the element at skip_path
 * (a tag in a dataset that is compared through mv_dataset_find by the caller). */
static void assert_same_dataset_except(const MvDataset *a, const MvDataset *b, uint32_t skip_tag)
{
    assert_int_equal(mv_dataset_count(a), mv_dataset_count(b));
    for (size_t i = 0; i < mv_dataset_count(a); i++) {
        const MvElement *x = mv_dataset_at(a, i), *y = mv_dataset_at(b, i);
        size_t nx, ny;
        const uint8_t *vx = mv_element_value(x, &nx), *vy = mv_element_value(y, &ny);

        assert_int_equal(mv_element_tag(x), mv_element_tag(y));
        assert_int_equal(mv_element_vr(x), mv_element_vr(y));
        if (mv_element_tag(x) != skip_tag) {
            assert_int_equal(nx, ny);
            if (nx > 0)
                assert_memory_equal(vx, vy, nx);
        }
        assert_int_equal(mv_element_item_count(x), mv_element_item_count(y));
        for (size_t k = 0; k < mv_element_item_count(x); k++)
            assert_same_dataset_except(mv_element_item(x, k), mv_element_item(y, k), skip_tag);
        assert_int_equal(mv_element_fragment_count(x), mv_element_fragment_count(y));
    }
}

/* A file with nested sequences and pixel data; every sequence and item on the way to
 * (0008,1115)[0].(0008,114A)[0].(0008,1155) has undefined length (PS3.5 7.5.2), so that
 * an edit there re-encodes them into the same form. */
static void nested_file(Buf *b, const char *nested_uid)
{
    Buf it = {0};
    uint8_t pixels[256];

    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(255 - i);
    part10(b, MV_UID_EXPLICIT_LE);
    ui_el(b, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    ui_el(b, 0x00080018u, "1.2.3.4");
    ex_hdr(b, 0x00081115u, "SQ", UNDEF, 0);             /* ReferencedSeriesSequence */
    item(b, UNDEF, 0);
    ex_hdr(b, 0x0008114Au, "SQ", UNDEF, 0);             /*   ReferencedInstanceSequence */
    item(b, UNDEF, 0);
    ui_el(b, 0x00081150u, "1.2.840.10008.5.1.4.1.1.7"); /*     ReferencedSOPClassUID */
    ui_el(b, 0x00081155u, nested_uid);                  /*     ReferencedSOPInstanceUID */
    item_end(b, 0);
    seq_end(b, 0);
    ui_el(b, 0x0020000Eu, "1.2.3.4.10");                /*   SeriesInstanceUID */
    item_end(b, 0);
    ui_el(&it, 0x0020000Eu, "1.2.3.4.11");              /* item 1, defined length */
    item(b, (uint32_t)it.len, 0);
    buf_append(b, &it);
    seq_end(b, 0);
    EX_STR(b, 0x00100010u, "PN", "Doe^John", 0);
    EX_STR(b, 0x00100020u, "LO", "ID0001", 0);
    ex_el(b, 0x00280010u, "US", "\x10\x00", 2, 0);
    ex_el(b, 0x7FE00010u, "OW", pixels, sizeof pixels, 0);
    buf_free(&it);
}

/* ---- Top level ---------------------------------------------------------------------------- */

static void test_set_replace_remove(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);
    MvElement *el;
    MvError err;

    (void)state;
    set_string(ds, 0x00100010u, "Doe^John");
    assert_int_equal(mv_dataset_count(ds), 1);
    el = must_find(ds, 0x00100010u);
    assert_vr(mv_element_vr(el), "PN"); /* the dictionary VR */
    assert_value(el, "Doe^John", 8);
    assert_int_equal(mv_element_length(el), 8);
    assert_int_equal(mv_element_offset(el), MV_NO_OFFSET);
    assert_string_of(ds, 0x00100010u, "Doe^John");

    /* replacing keeps one element */
    set_string(ds, 0x00100010u, "Roe^Jane^^Dr");
    assert_int_equal(mv_dataset_count(ds), 1);
    assert_string_of(ds, 0x00100010u, "Roe^Jane^^Dr");

    /* an explicit VR for a private element; the dictionary says UN for an unknown one */
    assert_int_equal(mv_dataset_set_string(ds, 0x00091001u, MV_VR_LO, "x", &err), MV_OK);
    assert_vr(mv_element_vr(must_find(ds, 0x00091001u)), "LO");
    assert_int_equal(mv_dataset_set_bytes(ds, 0x00091002u, MV_VR_NONE, "\x01\x02", 2, &err), MV_OK);
    assert_vr(mv_element_vr(must_find(ds, 0x00091002u)), "UN");
    assert_int_equal(mv_dataset_count(ds), 3);

    /* misuse is refused and changes nothing */
    assert_int_equal(mv_dataset_set_bytes(ds, MV_TAG_ITEM, MV_VR_NONE, "ab", 2, &err), MV_ERR_ARG);
    assert_int_equal(mv_dataset_set_bytes(ds, 0x00081115u, MV_VR_SQ, "ab", 2, &err), MV_ERR_ARG);
    assert_int_equal(mv_dataset_set_string(ds, 0x00280010u, MV_VR_NONE, "512", &err), MV_ERR_ARG);
    /* PS3.5 7.1.2: a short-form VR cannot hold more than 0xFFFE bytes */
    {
        char *big = malloc(70001);
        assert_non_null(big);
        memset(big, 'A', 70000);
        big[70000] = '\0';
        assert_int_not_equal(mv_dataset_set_string(ds, 0x00100020u, MV_VR_NONE, big, &err), MV_OK);
        assert_int_equal(mv_dataset_set_string(ds, 0x00081190u, MV_VR_UR, big, &err), MV_OK); /* UR: long form */
        assert_int_equal(mv_dataset_remove(ds, 0x00081190u), MV_OK);
        free(big);
    }
    assert_int_equal(mv_dataset_count(ds), 3);

    assert_int_equal(mv_dataset_remove(ds, 0x00100010u), MV_OK);
    assert_null(mv_dataset_find(ds, 0x00100010u));
    assert_int_equal(mv_dataset_count(ds), 2);
    assert_int_equal(mv_dataset_remove(ds, 0x00100010u), MV_ERR_NOTFOUND);
    assert_int_equal(mv_dataset_remove(ds, 0x7FE00010u), MV_ERR_NOTFOUND);
    mv_file_free(file);
}

/* PS3.5 7.1: elements of a dataset are in ascending tag order, whatever the order of edits. */
static void test_insert_keeps_tag_order(void **state)
{
    static const uint32_t expected[] = {0x00080005u, 0x00080016u, 0x00091001u, 0x00100010u, 0x00100020u,
                                        0x0020000Du, 0x7FE00010u, 0xFFFCFFFCu};
    static const uint32_t read_expected[] = {0x00080005u, 0x00080016u, 0x00080018u, 0x00081115u, 0x00100010u,
                                             0x00100020u, 0x00100030u, 0x00280010u, 0x7FE00010u};
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);
    MvError err;
    Buf b = {0};

    (void)state;
    assert_int_equal(mv_dataset_set_bytes(ds, 0x7FE00010u, MV_VR_OW, "\0\0", 2, &err), MV_OK);
    set_string(ds, 0x00100020u, "ID01");
    set_string(ds, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    set_string(ds, 0x0020000Du, "1.2.3");
    assert_int_equal(mv_dataset_set_bytes(ds, 0xFFFCFFFCu, MV_VR_OB, "\0\0", 2, &err), MV_OK);
    set_string(ds, 0x00100010u, "Doe^John");
    assert_int_equal(mv_dataset_set_string(ds, 0x00091001u, MV_VR_LO, "x", &err), MV_OK);
    set_string(ds, 0x00080005u, "ISO_IR 192");
    assert_tags(ds, expected, sizeof expected / sizeof expected[0]);
    mv_file_free(file);

    /* into a dataset that was read: first, middle and last places */
    nested_file(&b, "1.2.3.4.5");
    file = read_mem(&b);
    ds = mv_file_dataset(file);
    set_string(ds, 0x00100030u, "19700101");
    set_string(ds, 0x00080005u, "ISO_IR 100");
    assert_tags(ds, read_expected, sizeof read_expected / sizeof read_expected[0]);
    assert_string_of(ds, 0x00100030u, "19700101");
    assert_string_of(ds, 0x00100010u, "Doe^John");
    mv_file_free(file);
    buf_free(&b);
}

/* ---- Tag paths ---------------------------------------------------------------------------- */

static void test_path_find_spellings(void **state)
{
    static const char *spellings[] = {
        "ReferencedSeriesSequence[0].SeriesInstanceUID",
        "(0008,1115)[0].(0020,000E)",
        "00081115[0].0020000E",
        "0008,1115[0].0020,000E",
        "(0008,1115)[0].SeriesInstanceUID",
    };
    Buf b = {0};
    MvFile *file;
    MvDataset *ds, *holder, *item0;
    MvElement *el;
    uint32_t tag;
    MvError err;

    (void)state;
    nested_file(&b, "1.2.3.4.5");
    file = read_mem(&b);
    ds = mv_file_dataset(file);
    item0 = mv_element_item(must_find(ds, 0x00081115u), 0);
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        holder = NULL;
        el = mv_path_find(ds, spellings[i], &holder);
        if (el == NULL)
            fail_msg("%s not found", spellings[i]);
        assert_ptr_equal(holder, item0);
        assert_int_equal(mv_element_tag(el), 0x0020000Eu);
        assert_string_of(holder, 0x0020000Eu, "1.2.3.4.10");
    }
    el = mv_path_find(ds, "ReferencedSeriesSequence[1].SeriesInstanceUID", &holder);
    assert_non_null(el);
    assert_string_of(holder, 0x0020000Eu, "1.2.3.4.11");
    el = mv_path_find(ds, "ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID",
                      &holder);
    assert_non_null(el);
    assert_string_of(holder, 0x00081155u, "1.2.3.4.5");
    assert_ptr_equal(mv_dataset_parent(holder), item0);
    el = mv_path_find(ds, "PatientName", &holder);
    assert_non_null(el);
    assert_ptr_equal(holder, ds);
    assert_null(mv_path_find(ds, "PatientBirthDate", NULL));
    assert_null(mv_path_find(ds, "ReferencedSeriesSequence[2].SeriesInstanceUID", NULL));
    assert_null(mv_path_find(ds, "ReferencedImageSequence[0].ReferencedSOPInstanceUID", NULL));

    /* mv_path_resolve names the holder and the tag, present or not */
    assert_int_equal(mv_path_resolve(ds, "ReferencedSeriesSequence[0].StudyInstanceUID", 0, &holder, &tag, &err),
                     MV_OK);
    assert_ptr_equal(holder, item0);
    assert_int_equal(tag, 0x0020000Du);

    /* malformed paths */
    {
        static const char *bad[] = {
            "", "ReferencedSeriesSequence.SeriesInstanceUID", "ReferencedSeriesSequence[0]",
            "Bogus[0].PatientName", "ReferencedSeriesSequence[x].SeriesInstanceUID",
            "ReferencedSeriesSequence[-1].SeriesInstanceUID", "ReferencedSeriesSequence[0.SeriesInstanceUID",
            "ReferencedSeriesSequence[0].", "(0008,1115[0].(0020,000E)",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            MvStatus st = mv_path_resolve(ds, bad[i], 0, &holder, &tag, &err);
            if (st == MV_OK)
                fail_msg("the path \"%s\" was accepted", bad[i]);
            assert_int_equal(err.code, st);
        }
    }
    mv_file_free(file);
    buf_free(&b);
}

static void test_path_set_in_items(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *ds, *item0, *inner;
    size_t n_top;

    (void)state;
    nested_file(&b, "1.2.3.4.5");
    file = read_mem(&b);
    ds = mv_file_dataset(file);
    n_top = mv_dataset_count(ds);
    path_set(ds, "ReferencedSeriesSequence[0].SeriesInstanceUID", "2.25.1");
    item0 = mv_element_item(must_find(ds, 0x00081115u), 0);
    assert_string_of(item0, 0x0020000Eu, "2.25.1");
    path_set(ds, "(0008,1115)[1].(0020,000E)", "2.25.2");
    assert_string_of(mv_element_item(must_find(ds, 0x00081115u), 1), 0x0020000Eu, "2.25.2");
    path_set(ds, "ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID", "2.25.3");
    inner = mv_element_item(must_find(item0, 0x0008114Au), 0);
    assert_string_of(inner, 0x00081155u, "2.25.3");
    /* a new element inside an item goes in tag order */
    path_set(ds, "ReferencedSeriesSequence[0].StudyInstanceUID", "2.25.4");
    assert_int_equal(mv_element_tag(mv_dataset_at(item0, 0)), 0x0008114Au);
    assert_int_equal(mv_element_tag(mv_dataset_at(item0, 1)), 0x0020000Du);
    assert_int_equal(mv_element_tag(mv_dataset_at(item0, 2)), 0x0020000Eu);
    /* top level */
    path_set(ds, "PatientName", "Roe^Jane");
    assert_string_of(ds, 0x00100010u, "Roe^Jane");
    assert_int_equal(mv_dataset_count(ds), n_top);
    mv_file_free(file);
    buf_free(&b);
}

/* With create, a missing sequence and the item just past the last one are made; an index
 * further on is an error that creates nothing. */
static void test_path_create(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file), *holder;
    MvElement *seq;
    MvError err;
    uint32_t tag;

    (void)state;
    /* without create, nothing is made */
    assert_int_equal(mv_path_resolve(ds, "ReferencedSeriesSequence[0].SeriesInstanceUID", 0, &holder, &tag, &err),
                     MV_ERR_NOTFOUND);
    assert_int_equal(mv_dataset_count(ds), 0);

    path_set(ds, "ReferencedSeriesSequence[0].SeriesInstanceUID", "1.2.3");
    seq = must_find(ds, 0x00081115u);
    assert_true(mv_element_is_sequence(seq));
    assert_vr(mv_element_vr(seq), "SQ");
    assert_int_equal(mv_element_item_count(seq), 1);
    assert_ptr_equal(mv_dataset_parent(mv_element_item(seq, 0)), ds);
    assert_string_of(mv_element_item(seq, 0), 0x0020000Eu, "1.2.3");

    /* [2] with only one item: an index gap */
    assert_int_not_equal(mv_path_set_string(ds, "ReferencedSeriesSequence[2].SeriesInstanceUID", "1.2.4", &err),
                         MV_OK);
    assert_int_equal(err.code, MV_ERR_NOTFOUND);
    assert_int_equal(mv_element_item_count(must_find(ds, 0x00081115u)), 1);

    path_set(ds, "ReferencedSeriesSequence[1].SeriesInstanceUID", "1.2.4");
    seq = must_find(ds, 0x00081115u);
    assert_int_equal(mv_element_item_count(seq), 2);
    assert_string_of(mv_element_item(seq, 1), 0x0020000Eu, "1.2.4");
    assert_string_of(mv_element_item(seq, 0), 0x0020000Eu, "1.2.3");

    /* two levels at once, by tag numbers */
    path_set(ds, "(0008,1115)[1].(0008,114A)[0].(0008,1155)", "1.2.5");
    seq = must_find(mv_element_item(must_find(ds, 0x00081115u), 1), 0x0008114Au);
    assert_int_equal(mv_element_item_count(seq), 1);
    assert_string_of(mv_element_item(seq, 0), 0x00081155u, "1.2.5");

    /* mv_path_resolve with create makes the holder without making the element */
    assert_int_equal(mv_path_resolve(ds, "ReferencedImageSequence[0].ReferencedSOPClassUID", 1, &holder, &tag, &err),
                     MV_OK);
    assert_int_equal(tag, 0x00081150u);
    assert_int_equal(mv_element_item_count(must_find(ds, 0x00081140u)), 1);
    assert_ptr_equal(holder, mv_element_item(must_find(ds, 0x00081140u), 0));
    assert_int_equal(mv_dataset_count(holder), 0);
    mv_file_free(file);
}

/* A step that names an element which is not a sequence is an error, with or without
 * create, and leaves the element as it was. */
static void test_path_through_non_sequence(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file), *holder;
    MvError err;
    uint32_t tag;

    (void)state;
    set_string(ds, 0x00100010u, "Doe^John");
    assert_int_not_equal(mv_path_set_string(ds, "PatientName[0].PatientID", "x", &err), MV_OK);
    assert_int_not_equal(err.code, MV_OK);
    assert_int_not_equal(mv_path_resolve(ds, "PatientName[0].PatientID", 1, &holder, &tag, &err), MV_OK);
    assert_int_not_equal(mv_path_resolve(ds, "(0010,0010)[0].(0010,0020)", 0, &holder, &tag, &err), MV_OK);
    assert_int_equal(mv_dataset_count(ds), 1);
    assert_false(mv_element_is_sequence(must_find(ds, 0x00100010u)));
    assert_vr(mv_element_vr(must_find(ds, 0x00100010u)), "PN");
    assert_string_of(ds, 0x00100010u, "Doe^John");
    assert_int_not_equal(mv_path_remove(ds, "PatientName[0].PatientID", &err), MV_OK);
    assert_string_of(ds, 0x00100010u, "Doe^John");
    mv_file_free(file);
}

static void test_path_remove(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *ds, *item0;
    MvError err;

    (void)state;
    nested_file(&b, "1.2.3.4.5");
    file = read_mem(&b);
    ds = mv_file_dataset(file);
    item0 = mv_element_item(must_find(ds, 0x00081115u), 0);
    assert_int_equal(mv_path_remove(ds, "PatientBirthDate", &err), MV_ERR_NOTFOUND);
    assert_int_equal(err.code, MV_ERR_NOTFOUND);
    assert_int_equal(mv_path_remove(ds, "ReferencedSeriesSequence[0].StudyInstanceUID", &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_path_remove(ds, "ReferencedImageSequence[0].ReferencedSOPInstanceUID", &err),
                     MV_ERR_NOTFOUND);
    assert_int_equal(mv_path_remove(ds, "ReferencedSeriesSequence[5].SeriesInstanceUID", &err), MV_ERR_NOTFOUND);
    /* nothing was created on the way */
    assert_null(mv_dataset_find(ds, 0x00081140u));
    assert_int_equal(mv_element_item_count(must_find(ds, 0x00081115u)), 2);

    assert_int_equal(mv_path_remove(ds, "ReferencedSeriesSequence[0].SeriesInstanceUID", &err), MV_OK);
    assert_null(mv_dataset_find(item0, 0x0020000Eu));
    assert_int_equal(mv_dataset_count(item0), 1);
    assert_int_equal(mv_path_remove(ds, "ReferencedSeriesSequence[0].SeriesInstanceUID", &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_path_remove(ds, "PatientName", &err), MV_OK);
    assert_null(mv_dataset_find(ds, 0x00100010u));
    /* a whole sequence */
    assert_int_equal(mv_path_remove(ds, "ReferencedSeriesSequence", &err), MV_OK);
    assert_null(mv_dataset_find(ds, 0x00081115u));
    mv_file_free(file);
    buf_free(&b);
}

/* ---- Edits reach the file ------------------------------------------------------------ */

/* An edit deep in a sequence: written and read again, the new value is there and every
 * other byte of the file is what it was (the expected file is the same hand-made file
 * with the new value). */
static void test_nested_edit_written(void **state)
{
    Buf in = {0}, expected = {0}, out = {0};
    MvFile *file, *orig, *again;
    MvDataset *holder;
    MvElement *el;
    char path[512];

    (void)state;
    nested_file(&in, "1.2.3.4.5");
    nested_file(&expected, "2.25.99");
    file = read_mem(&in);
    path_set(mv_file_dataset(file),
             "ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID", "2.25.99");
    write_and_load(file, "nested-edit.dcm", NULL, &out, path);
    assert_int_equal(out.len, expected.len);
    assert_memory_equal(out.data, expected.data, expected.len);

    again = read_path(path);
    orig = read_mem(&in);
    el = mv_path_find(mv_file_dataset(again),
                      "ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID", &holder);
    assert_non_null(el);
    assert_string_of(holder, 0x00081155u, "2.25.99");
    assert_same_dataset_except(mv_file_dataset(orig), mv_file_dataset(again), 0x00081155u);
    /* pixel data byte for byte */
    {
        size_t n1, n2;
        const uint8_t *p1 = mv_element_value(must_find(mv_file_dataset(orig), 0x7FE00010u), &n1);
        const uint8_t *p2 = mv_element_value(must_find(mv_file_dataset(again), 0x7FE00010u), &n2);
        assert_int_equal(n1, 256);
        assert_int_equal(n2, 256);
        assert_memory_equal(p1, p2, 256);
    }
    mv_file_free(orig);
    mv_file_free(again);
    mv_file_free(file);
    buf_free(&in);
    buf_free(&expected);
    buf_free(&out);
}

/* Removing an element and an item, written and read again. */
static void test_removals_written(void **state)
{
    Buf in = {0}, out = {0};
    MvFile *file, *again;
    MvDataset *ds;
    MvElement *seq;
    MvError err;
    char path[512];

    (void)state;
    nested_file(&in, "1.2.3.4.5");
    file = read_mem(&in);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_dataset_remove(ds, 0x00100020u), MV_OK);
    assert_int_equal(mv_element_remove_item(must_find(ds, 0x00081115u), 0), MV_OK);
    assert_int_equal(mv_path_remove(ds, "ReferencedSeriesSequence[0].SeriesInstanceUID", &err), MV_OK);
    write_and_load(file, "removed.dcm", NULL, &out, path);
    mv_file_free(file);
    again = read_path(path);
    ds = mv_file_dataset(again);
    assert_null(mv_dataset_find(ds, 0x00100020u));
    seq = must_find(ds, 0x00081115u);
    assert_int_equal(mv_element_item_count(seq), 1);
    assert_int_equal(mv_dataset_count(mv_element_item(seq, 0)), 0);
    assert_string_of(ds, 0x00100010u, "Doe^John");
    mv_file_free(again);
    buf_free(&in);
    buf_free(&out);
}

/* PS3.5 6.2.2: items of a UN sequence of undefined length are implicit VR little endian;
 * an edit inside one is written that way, and nothing else changes. */
static void un_sequence_file(Buf *b, const char *uid)
{
    part10(b, MV_UID_EXPLICIT_LE);
    ui_el(b, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    ui_el(b, 0x00080018u, "1.2.3.4");
    ex_hdr(b, 0x00081140u, "UN", UNDEF, 0);
    item(b, UNDEF, 0);
    im_el(b, 0x00081150u, "1.2.840.10008.5.1.4.1.1.7\0", 26);
    im_el(b, 0x00081155u, uid, strlen(uid));
    item_end(b, 0);
    seq_end(b, 0);
    EX_STR(b, 0x00100010u, "PN", "Doe^John", 0);
}

static void test_edit_in_un_sequence(void **state)
{
    Buf in = {0}, expected = {0}, out = {0};
    MvFile *file, *again;
    MvDataset *holder;
    char path[512];

    (void)state;
    un_sequence_file(&in, "1.2.3.4.5.60"); /* even lengths: no padding to spell out */
    un_sequence_file(&expected, "2.25.420");
    file = read_mem(&in);
    assert_true(mv_element_is_sequence(must_find(mv_file_dataset(file), 0x00081140u)));
    path_set(mv_file_dataset(file), "(0008,1140)[0].(0008,1155)", "2.25.420");
    write_and_load(file, "un-edit.dcm", NULL, &out, path);
    assert_int_equal(out.len, expected.len);
    assert_memory_equal(out.data, expected.data, expected.len);
    again = read_path(path);
    assert_non_null(mv_path_find(mv_file_dataset(again), "(0008,1140)[0].(0008,1155)", &holder));
    assert_string_of(holder, 0x00081155u, "2.25.420");
    mv_file_free(again);
    mv_file_free(file);
    buf_free(&in);
    buf_free(&expected);
    buf_free(&out);
}

/* ---- Character sets ------------------------------------------------------------------ */

static void test_set_string_charset(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file), *it;
    MvElement *seq;
    MvError err;

    (void)state;
    /* "Müller" in UTF-8; without ISO_IR 192 it cannot be stored as given */
    assert_int_equal(mv_dataset_set_string(ds, 0x00100010u, MV_VR_NONE, "M\xC3\xBCller", &err), MV_ERR_CHARSET);
    assert_int_equal(err.code, MV_ERR_CHARSET);
    assert_int_equal(err.tag, 0x00100010u);
    assert_null(mv_dataset_find(ds, 0x00100010u));
    set_string(ds, 0x00080005u, "ISO_IR 100");
    assert_int_equal(mv_dataset_set_string(ds, 0x00100010u, MV_VR_NONE, "M\xC3\xBCller", &err), MV_ERR_CHARSET);
    assert_null(mv_dataset_find(ds, 0x00100010u));

    set_string(ds, 0x00080005u, "ISO_IR 192");
    assert_string_equal(mv_dataset_charset(ds), "ISO_IR 192");
    assert_int_equal(mv_dataset_set_string(ds, 0x00100010u, MV_VR_NONE, "M\xC3\xBCller", &err), MV_OK);
    assert_value(must_find(ds, 0x00100010u), "M\xC3\xBCller", 7);
    assert_string_of(ds, 0x00100010u, "M\xC3\xBCller");
    /* UI and CS have no character set: non-ASCII is refused there (PS3.5 6.1.2.3) */
    assert_int_equal(mv_dataset_set_string(ds, 0x00080018u, MV_VR_NONE, "1.2.\xC3\xBC", &err), MV_ERR_CHARSET);

    /* an item inherits the character set of its parent ... */
    assert_int_equal(mv_dataset_set_sequence(ds, 0x0040A730u, &seq, &err), MV_OK);
    assert_int_equal(mv_element_insert_item(seq, MV_APPEND, &it, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(it, 0x0040A160u, MV_VR_NONE, "Gr\xC3\xBC\xC3\x9F" "e", &err), MV_OK);
    assert_string_of(it, 0x0040A160u, "Gr\xC3\xBC\xC3\x9F" "e");
    /* ... unless it has its own */
    set_string(it, 0x00080005u, "ISO_IR 100");
    assert_string_equal(mv_dataset_charset(it), "ISO_IR 100");
    assert_int_equal(mv_dataset_set_string(it, 0x0040A123u, MV_VR_NONE, "M\xC3\xBCller", &err), MV_ERR_CHARSET);
    assert_null(mv_dataset_find(it, 0x0040A123u));

    /* removing (0008,0005) takes the default repertoire back */
    assert_int_equal(mv_dataset_remove(ds, 0x00080005u), MV_OK);
    assert_string_equal(mv_dataset_charset(ds), "");
    assert_int_equal(mv_dataset_set_string(ds, 0x00100010u, MV_VR_NONE, "M\xC3\xBCller", &err), MV_ERR_CHARSET);
    set_string(ds, 0x00100010u, "Mueller");
    assert_string_of(ds, 0x00100010u, "Mueller");
    mv_file_free(file);
}

/* The character set cached for a dataset follows edits of (0008,0005) in it and its parents. */
static void test_charset_follows_edits(void **state)
{
    Buf b = {0};
    MvFile *file;
    MvDataset *ds, *it;

    (void)state;
    part10(&b, MV_UID_EXPLICIT_LE);
    EX_STR(&b, 0x00080005u, "CS", "ISO_IR 100", 0);
    ui_el(&b, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    ex_hdr(&b, 0x00081115u, "SQ", UNDEF, 0);
    item(&b, UNDEF, 0);
    EX_STR(&b, 0x00081030u, "LO", "K\xE4se ", 0); /* hypothetical LO in an item, Latin-1 */
    item_end(&b, 0);
    seq_end(&b, 0);
    file = read_mem(&b);
    ds = mv_file_dataset(file);
    it = mv_element_item(must_find(ds, 0x00081115u), 0);
    assert_string_equal(mv_dataset_charset(it), "ISO_IR 100");
    assert_string_of(it, 0x00081030u, "K\xC3\xA4se");
    set_string(ds, 0x00080005u, "ISO_IR 192");
    assert_string_equal(mv_dataset_charset(ds), "ISO_IR 192");
    assert_string_equal(mv_dataset_charset(it), "ISO_IR 192");
    mv_file_free(file);
    buf_free(&b);
}

/* ---- Integers ------------------------------------------------------------------------ */

static void test_set_uint(void **state)
{
    Buf b = {0}, out = {0};
    MvFile *file = new_file(), *be_file, *again;
    MvDataset *ds = mv_file_dataset(file);
    MvError err;
    char path[512];

    (void)state;
    /* PS3.5 7.3: binary values in the dataset's byte order, little endian here */
    assert_int_equal(mv_dataset_set_uint(ds, 0x00280010u, MV_VR_NONE, 512, &err), MV_OK);
    assert_vr(mv_element_vr(must_find(ds, 0x00280010u)), "US");
    assert_value(must_find(ds, 0x00280010u), "\x00\x02", 2);
    assert_int_equal(mv_dataset_set_uint(ds, 0x00081161u, MV_VR_NONE, 70000, &err), MV_OK);
    assert_vr(mv_element_vr(must_find(ds, 0x00081161u)), "UL");
    assert_value(must_find(ds, 0x00081161u), "\x70\x11\x01\x00", 4);
    assert_int_equal(mv_dataset_set_uint(ds, 0x0008040Cu, MV_VR_NONE, 0x0102030405060708u, &err), MV_OK);
    assert_value(must_find(ds, 0x0008040Cu), "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
    /* IS: decimal text (PS3.5 Table 6.2-1) */
    assert_int_equal(mv_dataset_set_uint(ds, 0x00200013u, MV_VR_NONE, 42, &err), MV_OK);
    assert_vr(mv_element_vr(must_find(ds, 0x00200013u)), "IS");
    assert_value(must_find(ds, 0x00200013u), "42", 2);
    assert_int_equal(mv_dataset_set_uint(ds, 0x00200012u, MV_VR_NONE, 123, &err), MV_OK);
    assert_value(must_find(ds, 0x00200012u), "123", 3);
    assert_int_equal(mv_dataset_set_uint(ds, 0x00200011u, MV_VR_NONE, 2147483647u, &err), MV_OK);
    assert_value(must_find(ds, 0x00200011u), "2147483647", 10);
    /* out of range for the VR: US is 16 bits, UL 32, IS at most 2^31 - 1 (PS3.5 Table 6.2-1) */
    assert_int_not_equal(mv_dataset_set_uint(ds, 0x00280011u, MV_VR_NONE, 70000, &err), MV_OK);
    assert_null(mv_dataset_find(ds, 0x00280011u));
    assert_int_not_equal(mv_dataset_set_uint(ds, 0x00081162u, MV_VR_UL, 0x100000000u, &err), MV_OK);
    assert_null(mv_dataset_find(ds, 0x00081162u));
    /* not an integer VR */
    assert_int_equal(mv_dataset_set_uint(ds, 0x00100010u, MV_VR_NONE, 1, &err), MV_ERR_ARG);
    assert_null(mv_dataset_find(ds, 0x00100010u));

    write_and_load(file, "uint.dcm", NULL, &out, path);
    assert_true(memmem(out.data, out.len, "\x28\x00\x10\x00" "US" "\x02\x00" "\x00\x02", 10) != NULL);
    assert_true(memmem(out.data, out.len, "\x20\x00\x12\x00" "IS" "\x04\x00" "123 ", 12) != NULL);
    again = read_path(path);
    {
        uint64_t v = 0;
        assert_int_equal(mv_element_uint(mv_file_dataset(again), must_find(mv_file_dataset(again), 0x00200012u), 0,
                                         &v, &err), MV_OK);
        assert_int_equal(v, 123);
    }
    mv_file_free(again);
    mv_file_free(file);

    /* in a big endian dataset the bytes are big endian */
    part10(&b, MV_UID_EXPLICIT_BE);
    ex_el(&b, 0x00080016u, "UI", "1.2.840.10008.5.1.4.1.1.7\0", 26, 1);
    ex_el(&b, 0x00280010u, "US", "\x00\x10", 2, 1);
    be_file = read_mem(&b);
    ds = mv_file_dataset(be_file);
    assert_int_equal(mv_dataset_set_uint(ds, 0x00280010u, MV_VR_NONE, 512, &err), MV_OK);
    assert_value(must_find(ds, 0x00280010u), "\x02\x00", 2);
    assert_int_equal(mv_dataset_set_uint(ds, 0x00081161u, MV_VR_NONE, 70000, &err), MV_OK);
    assert_value(must_find(ds, 0x00081161u), "\x00\x01\x11\x70", 4);
    write_and_load(be_file, "uint-be.dcm", NULL, &out, path);
    assert_true(memmem(out.data, out.len, "\x00\x28\x00\x10" "US" "\x00\x02" "\x02\x00", 10) != NULL);
    write_and_load(be_file, "uint-le.dcm", MV_UID_EXPLICIT_LE, &out, path);
    assert_true(memmem(out.data, out.len, "\x28\x00\x10\x00" "US" "\x02\x00" "\x00\x02", 10) != NULL);
    assert_true(memmem(out.data, out.len, "\x08\x00\x61\x11" "UL" "\x04\x00" "\x70\x11\x01\x00", 12) != NULL);
    mv_file_free(be_file);
    buf_free(&b);
    buf_free(&out);
}

/* PS3.5 Table 6.2-1: an IS value is an integer n with -2^31 <= n <= 2^31 - 1. */
static void test_set_uint_is_range(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);
    MvError err;
    MvStatus too_big, far_too_big;
    int made_12, made_11;

    (void)state;
    assert_int_equal(mv_dataset_set_uint(ds, 0x00200013u, MV_VR_IS, 2147483647u, &err), MV_OK);
    assert_value(must_find(ds, 0x00200013u), "2147483647", 10);
    too_big = mv_dataset_set_uint(ds, 0x00200012u, MV_VR_IS, 2147483648u, &err);
    made_12 = mv_dataset_find(ds, 0x00200012u) != NULL;
    far_too_big = mv_dataset_set_uint(ds, 0x00200011u, MV_VR_IS, 999999999999u, &err);
    made_11 = mv_dataset_find(ds, 0x00200011u) != NULL;
    mv_file_free(file); /* freed before asserting, so that a failure leaks nothing */
    assert_int_not_equal(too_big, MV_OK);
    assert_false(made_12);
    assert_int_not_equal(far_too_big, MV_OK);
    assert_false(made_11);
}

/* ---- Sequences and items ------------------------------------------------------------- */

/* The IS value of (0020,0013) in item index of seq. */
static uint64_t marker_of(const MvElement *seq, size_t index)
{
    MvDataset *it = mv_element_item(seq, index);
    uint64_t v = 0;
    MvError err;

    assert_non_null(it);
    assert_int_equal(mv_element_uint(it, must_find(it, 0x00200013u), 0, &v, &err), MV_OK);
    return v;
}

static void test_items(void **state)
{
    MvFile *file = new_file(), *again;
    MvDataset *ds = mv_file_dataset(file), *it;
    MvElement *seq;
    MvError err;
    Buf out = {0};
    char path[512];

    (void)state;
    set_string(ds, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    set_string(ds, 0x00080018u, "1.2.3.4");
    assert_int_equal(mv_dataset_set_sequence(ds, 0x00081140u, &seq, &err), MV_OK);
    assert_true(mv_element_is_sequence(seq));
    assert_vr(mv_element_vr(seq), "SQ");
    assert_int_equal(mv_element_item_count(seq), 0);
    assert_int_equal(mv_element_insert_item(seq, MV_APPEND, &it, &err), MV_OK);
    assert_ptr_equal(mv_dataset_parent(it), ds);
    assert_int_equal(mv_dataset_set_uint(it, 0x00200013u, MV_VR_NONE, 1, &err), MV_OK);
    assert_int_equal(mv_element_insert_item(seq, MV_APPEND, &it, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(it, 0x00200013u, MV_VR_NONE, 2, &err), MV_OK);
    assert_int_equal(mv_element_insert_item(seq, 0, &it, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(it, 0x00200013u, MV_VR_NONE, 0, &err), MV_OK);
    assert_int_equal(mv_element_insert_item(seq, 2, &it, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(it, 0x00200013u, MV_VR_NONE, 9, &err), MV_OK);
    assert_int_equal(mv_element_item_count(seq), 4);
    assert_int_equal(marker_of(seq, 0), 0);
    assert_int_equal(marker_of(seq, 1), 1);
    assert_int_equal(marker_of(seq, 2), 9);
    assert_int_equal(marker_of(seq, 3), 2);
    assert_int_equal(mv_element_remove_item(seq, 2), MV_OK);
    assert_int_equal(mv_element_item_count(seq), 3);
    assert_int_equal(marker_of(seq, 2), 2);
    assert_int_equal(mv_element_remove_item(seq, 3), MV_ERR_NOTFOUND);
    assert_int_equal(mv_element_item_count(seq), 3);

    /* items only go into sequences */
    set_string(ds, 0x00100010u, "Doe^John");
    seq = must_find(ds, 0x00100010u);
    assert_int_equal(mv_element_insert_item(seq, MV_APPEND, &it, &err), MV_ERR_ARG);
    assert_int_equal(mv_element_item_count(seq), 0);

    write_and_load(file, "items.dcm", NULL, &out, path);
    again = read_path(path);
    seq = must_find(mv_file_dataset(again), 0x00081140u);
    assert_int_equal(mv_element_item_count(seq), 3);
    assert_int_equal(marker_of(seq, 0), 0);
    assert_int_equal(marker_of(seq, 1), 1);
    assert_int_equal(marker_of(seq, 2), 2);
    mv_file_free(again);

    /* a sequence replaces an element of its tag, and a value replaces a sequence */
    assert_int_equal(mv_dataset_set_sequence(ds, 0x00100010u, &seq, &err), MV_OK);
    assert_true(mv_element_is_sequence(must_find(ds, 0x00100010u)));
    assert_int_equal(mv_element_item_count(must_find(ds, 0x00100010u)), 0);
    assert_int_equal(mv_dataset_set_bytes(ds, 0x00081140u, MV_VR_UN, "ab", 2, &err), MV_OK);
    assert_false(mv_element_is_sequence(must_find(ds, 0x00081140u)));
    assert_int_equal(mv_element_item_count(must_find(ds, 0x00081140u)), 0);
    mv_file_free(file);
    buf_free(&out);
}

/* An item inserted into a sequence that was read is written with the others. */
/* PS3.5 A.4: pixel data replaced by fragments (as the pixel encoder does) is written as an
 * encapsulated element with its Basic Offset Table, in the syntax the file was switched to;
 * odd fragments are padded; a syntax that does not fit the pixel data is refused. */
static void test_set_fragments_and_syntax(void **state)
{
    Buf in = {0}, out = {0};
    MvFile *file, *again;
    MvDataset *ds;
    MvElement *px;
    MvError err;
    char path[512];
    static const uint8_t bot[4] = {0, 0, 0, 0};
    static const uint8_t frag[3] = {0xAA, 0xBB, 0xCC};
    const uint8_t *data[2] = {bot, frag};
    size_t lens[2] = {4, 3}, len;
    const uint8_t *got;

    (void)state;
    part10(&in, MV_UID_EXPLICIT_LE);
    ui_el(&in, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    ui_el(&in, 0x00080018u, "1.2.3.4");
    ex_el(&in, 0x7FE00010u, "OW", "\x01\x02\x03\x04", 4, 0);
    file = read_mem(&in);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_file_set_transfer_syntax(file, "1.2.840.10008.1.2.5", &err), MV_ERR_ARG);
    assert_string_equal(mv_file_transfer_syntax(file)->uid, MV_UID_EXPLICIT_LE);
    assert_int_equal(mv_dataset_set_fragments(ds, MV_TAG_PIXEL_DATA, MV_VR_NONE, data, lens, 0, &err), MV_ERR_ARG);
    assert_int_equal(mv_dataset_set_fragments(ds, MV_TAG_PIXEL_DATA, MV_VR_NONE, data, lens, 2, &err), MV_OK);
    assert_int_equal(mv_file_set_transfer_syntax(file, MV_UID_EXPLICIT_LE, &err), MV_ERR_ARG);
    assert_int_equal(mv_file_set_transfer_syntax(file, "1.2.3.4.5.6", &err), MV_ERR_ARG);
    assert_int_equal(mv_file_set_transfer_syntax(file, "1.2.840.10008.1.2.5", &err), MV_OK);
    write_and_load(file, "frags.dcm", NULL, &out, path);
    mv_file_free(file);
    again = read_path(path);
    assert_string_equal(mv_file_transfer_syntax(again)->uid, "1.2.840.10008.1.2.5");
    px = must_find(mv_file_dataset(again), MV_TAG_PIXEL_DATA);
    assert_true(mv_element_is_encapsulated(px));
    assert_int_equal(mv_element_fragment_count(px), 2);
    got = mv_element_fragment(px, 0, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(got, bot, 4);
    got = mv_element_fragment(px, 1, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(got, "\xAA\xBB\xCC\x00", 4);
    /* Back to native: bytes first, then the syntax. */
    assert_int_equal(mv_dataset_set_bytes(mv_file_dataset(again), MV_TAG_PIXEL_DATA, MV_VR_OW, "\0\0", 2, &err),
                     MV_OK);
    assert_int_equal(mv_file_set_transfer_syntax(again, MV_UID_EXPLICIT_LE, &err), MV_OK);
    write_and_load(again, "native.dcm", NULL, &out, path);
    mv_file_free(again);
    again = read_path(path);
    assert_string_equal(mv_file_transfer_syntax(again)->uid, MV_UID_EXPLICIT_LE);
    assert_false(mv_element_is_encapsulated(must_find(mv_file_dataset(again), MV_TAG_PIXEL_DATA)));
    mv_file_free(again);
    buf_free(&in);
    buf_free(&out);
}

static void test_insert_item_into_read_sequence(void **state)
{
    Buf in = {0}, out = {0};
    MvFile *file, *again;
    MvDataset *it;
    MvElement *seq;
    MvError err;
    char path[512];

    (void)state;
    nested_file(&in, "1.2.3.4.5");
    file = read_mem(&in);
    seq = must_find(mv_file_dataset(file), 0x00081115u);
    assert_int_equal(mv_element_insert_item(seq, 1, &it, &err), MV_OK);
    set_string(it, 0x0020000Eu, "2.25.7");
    write_and_load(file, "inserted.dcm", NULL, &out, path);
    mv_file_free(file);
    again = read_path(path);
    seq = must_find(mv_file_dataset(again), 0x00081115u);
    assert_int_equal(mv_element_item_count(seq), 3);
    assert_string_of(mv_element_item(seq, 0), 0x0020000Eu, "1.2.3.4.10");
    assert_string_of(mv_element_item(seq, 1), 0x0020000Eu, "2.25.7");
    assert_string_of(mv_element_item(seq, 2), 0x0020000Eu, "1.2.3.4.11");
    assert_string_of(mv_file_dataset(again), 0x00100010u, "Doe^John");
    mv_file_free(again);
    buf_free(&in);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_replace_remove),
        cmocka_unit_test(test_insert_keeps_tag_order),
        cmocka_unit_test(test_path_find_spellings),
        cmocka_unit_test(test_path_set_in_items),
        cmocka_unit_test(test_path_create),
        cmocka_unit_test(test_path_through_non_sequence),
        cmocka_unit_test(test_path_remove),
        cmocka_unit_test(test_nested_edit_written),
        cmocka_unit_test(test_removals_written),
        cmocka_unit_test(test_edit_in_un_sequence),
        cmocka_unit_test(test_set_string_charset),
        cmocka_unit_test(test_charset_follows_edits),
        cmocka_unit_test(test_set_uint),
        cmocka_unit_test(test_set_uint_is_range),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_insert_item_into_read_sequence),
        cmocka_unit_test(test_set_fragments_and_syntax),
    };

    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
