/* Unit tests of the Part 10 writer (src/dicom/write.c). Inputs are built byte by byte with
 * the encodings of PS3.5 Section 7 and PS3.10 7.1, read, written to a temporary folder and
 * compared with the bytes the standard prescribes: canonical files come back unchanged,
 * the File Meta Information is rebuilt as PS3.10 7.1 says, conversions between explicit,
 * implicit, big endian and deflated syntaxes follow PS3.5 Annex A, and a failed write
 * leaves nothing behind. Where dcmdump (dcmtk) is installed it must read every output. */
#include <dirent.h>
#include <errno.h>
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
#include <zlib.h>

#include "medveil/dicom.h"

/* ---- Hand-made encodings (PS3.5 Section 7) -------------------------------------------- */

#include "dicom_bytes.h"
#include "dicom_values.h"

static const uint8_t us_512_le[2] = {0x00, 0x02}; /* PS3.5 7.3: 512 = 0x0200, LSB first */

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

/* PS3.10 7.1: 128 zero bytes, "DICM", then group 0002 in explicit VR little endian, led by
 * (0002,0000) UL with the byte count of the elements after it. group_length_value 0 writes
 * the right value, anything else is written as it is; NO_GROUP_LENGTH leaves it out.
 * The meta is canonical: every element a medveil write keeps or rebuilds, in tag order. */
#define NO_GROUP_LENGTH 1u
static size_t part10(Buf *b, const char *ts_uid, uint32_t group_length_value)
{
    static const uint8_t zero[128];
    static const uint8_t version[2] = {0x00, 0x01};
    Buf meta = {0};

    ex_el(&meta, 0x00020001u, "OB", version, 2, 0);
    ui_el(&meta, 0x00020002u, "1.2.840.10008.5.1.4.1.1.7"); /* Secondary Capture Image Storage */
    ui_el(&meta, 0x00020003u, "1.2.3.4");
    ui_el(&meta, 0x00020010u, ts_uid);
    ui_el(&meta, 0x00020012u, "1.2.3.999");
    EX_STR(&meta, 0x00020013u, "SH", "OTHER_1 ", 0);
    buf_put(b, zero, sizeof zero);
    buf_put(b, "DICM", 4);
    if (group_length_value != NO_GROUP_LENGTH) {
        ex_hdr(b, 0x00020000u, "UL", 4, 0);
        buf_u32(b, group_length_value ? group_length_value : (uint32_t)meta.len, 0);
    }
    buf_append(b, &meta);
    buf_free(&meta);
    return b->len;
}

/* ---- Files ------------------------------------------------------------------------------ */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mv-test-write-XXXXXX");
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

static const char *path_of(const char *name, char buf[512])
{
    snprintf(buf, 512, "%s/%s", tmpdir, name);
    return buf;
}

static void load(const char *path, Buf *out)
{
    FILE *f = fopen(path, "rb");
    uint8_t chunk[65536];
    size_t n;

    if (f == NULL)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    out->len = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_put(out, chunk, n);
    fclose(f);
}

static void save(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Entries of tmpdir whose name holds ".mvtmp-" (the writer's temporary names). */
static int count_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".mvtmp-") != NULL)
            n++;
    closedir(d);
    return n;
}

static MvFile *read_mem(const Buf *b, const char *name)
{
    MvFile *file = NULL;
    MvError err;
    MvStatus st = mv_file_from_memory(b->data, b->len, name, NULL, &file, &err);

    if (st != MV_OK)
        fail_msg("reading %s failed: %s", name, err.message);
    return file;
}

static MvFile *read_path(const char *path)
{
    MvFile *file = NULL;
    MvError err;
    MvStatus st = mv_file_open(path, NULL, &file, &err);

    if (st != MV_OK)
        fail_msg("reading %s failed: %s", path, err.message);
    return file;
}

/* Writes file to tmpdir/name in transfer syntax ts (NULL: the file's own). */
static const char *write_as(MvFile *file, const char *name, const char *ts, char path[512])
{
    MvWriteOptions opts;
    MvError err;
    MvStatus st;

    mv_write_options_init(&opts);
    opts.transfer_syntax = ts;
    opts.flags = MV_WRITE_NO_SYNC;
    path_of(name, path);
    st = mv_file_write(file, path, &opts, &err);
    if (st != MV_OK)
        fail_msg("writing %s failed (%s): %s", path, mv_status_name(st), err.message);
    assert_int_equal(count_temporaries(tmpdir), 0);
    return path;
}

/* Where needle occurs in hay, or -1. */
static long find_bytes(const Buf *hay, const void *needle, size_t n)
{
    const uint8_t *p = memmem(hay->data, hay->len, needle, n);

    return p ? (long)(p - hay->data) : -1;
}

static void assert_has_bytes(const Buf *hay, const void *needle, size_t n)
{
    if (find_bytes(hay, needle, n) < 0) {
        char hex[3 * 64 + 1] = "";
        for (size_t i = 0; i < n && i < 64; i++)
            snprintf(hex + 3 * i, 4, "%02X ", ((const uint8_t *)needle)[i]);
        fail_msg("the output lacks the bytes %s", hex);
    }
}


static void assert_vr(MvVr got, const char *expected)
{
    char buf[3];

    assert_string_equal(mv_vr_string(got, buf), expected);
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

static void assert_value(const MvElement *el, const void *expected, size_t n)
{
    size_t len = 12345;
    const uint8_t *v = mv_element_value(el, &len);

    assert_int_equal(len, n);
    if (n > 0)
        assert_memory_equal(v, expected, n);
}




/* Same elements, VRs, values (after byte order is taken into account by the caller: here
 * only for datasets in the same byte order), items and fragments. */
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
        assert_int_equal(mv_element_item_count(x), mv_element_item_count(y));
        for (size_t k = 0; k < mv_element_item_count(x); k++)
            assert_same_dataset(mv_element_item(x, k), mv_element_item(y, k));
        assert_int_equal(mv_element_fragment_count(x), mv_element_fragment_count(y));
    }
}

/* The byte count of the group 0002 elements after (0002,0000) in a written file, walking
 * its explicit VR little endian headers (PS3.5 7.1.2) from offset 144. */
static uint32_t measured_meta_length(const Buf *out)
{
    size_t pos = 144;

    while (pos + 8 <= out->len && out->data[pos] == 0x02 && out->data[pos + 1] == 0x00) {
        char vr[3] = {(char)out->data[pos + 4], (char)out->data[pos + 5], 0};
        if (vr_long(vr))
            pos += 12 + ((uint32_t)out->data[pos + 8] | (uint32_t)out->data[pos + 9] << 8 |
                         (uint32_t)out->data[pos + 10] << 16 | (uint32_t)out->data[pos + 11] << 24);
        else
            pos += 8 + ((uint32_t)out->data[pos + 6] | (uint32_t)out->data[pos + 7] << 8);
    }
    return (uint32_t)(pos - 144);
}

/* The checks every written Part 10 file must pass (PS3.10 7.1): zero or kept preamble,
 * "DICM", (0002,0000) UL first with the exact length of the rest of the group. */
static void assert_part10_framing(const Buf *out)
{
    uint32_t declared;

    assert_true(out->len > 144);
    assert_memory_equal(out->data + 128, "DICM", 4);
    assert_memory_equal(out->data + 132, "\x02\x00\x00\x00UL\x04\x00", 8);
    declared = (uint32_t)out->data[140] | (uint32_t)out->data[141] << 8 | (uint32_t)out->data[142] << 16 |
               (uint32_t)out->data[143] << 24;
    assert_int_equal(declared, measured_meta_length(out));
}

/* When dcmdump (dcmtk) is installed: it reads path without an error or a warning and its
 * dump contains expected. */
static void assert_dcmdump_reads(const char *path, const char *expected)
{
    char cmd[1024], line[4096];
    FILE *p;
    int found = 0, complaints = 0, rc;

    if (system("command -v dcmdump >/dev/null 2>&1") != 0) {
        print_message("note: dcmdump is not installed; %s is not checked with it\n", path);
        return;
    }
    snprintf(cmd, sizeof cmd, "dcmdump +L '%s' 2>&1", path);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof line, p) != NULL) {
        if (strncmp(line, "E: ", 3) == 0 || strncmp(line, "W: ", 3) == 0 || strncmp(line, "F: ", 3) == 0) {
            print_error("dcmdump %s: %s", path, line);
            complaints++;
        }
        if (expected != NULL && strstr(line, expected) != NULL)
            found = 1;
    }
    rc = pclose(p);
    assert_int_equal(rc, 0);
    assert_int_equal(complaints, 0);
    if (expected != NULL && !found)
        fail_msg("dcmdump of %s has no line with \"%s\"", path, expected);
}

/* A canonical explicit VR little endian dataset: even lengths, tag order, undefined and
 * defined length sequences, pixel data. */
static void canonical_dataset(Buf *b)
{
    Buf it = {0};
    uint8_t pixels[64];

    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(i * 37 + 1);
    ui_el(b, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    ui_el(b, 0x00080018u, "1.2.3.4");
    ui_el(&it, 0x0020000Eu, "1.2.3.4.1");
    ex_hdr(b, 0x00081115u, "SQ", (uint32_t)(8 + it.len), 0);
    item(b, (uint32_t)it.len, 0);
    buf_append(b, &it);
    ex_hdr(b, 0x00081140u, "SQ", UNDEF, 0);
    item(b, UNDEF, 0);
    ui_el(b, 0x00081150u, "1.2.840.10008.5.1.4.1.1.7");
    ui_el(b, 0x00081155u, "1.2.3.4.2");
    item_end(b, 0);
    seq_end(b, 0);
    EX_STR(b, 0x00100010u, "PN", "Doe^John", 0);
    EX_STR(b, 0x00100020u, "LO", "ID0001", 0);
    ex_el(b, 0x00280010u, "US", us_512_le, 2, 0);
    ex_el(b, 0x7FE00010u, "OW", pixels, sizeof pixels, 0);
    buf_free(&it);
}

/* ---- Unchanged files ---------------------------------------------------------------------- */

static void test_canonical_written_identical(void **state)
{
    Buf in = {0}, out = {0};
    MvFile *file;
    char path[512];
    MvError err;

    (void)state;
    part10(&in, MV_UID_EXPLICIT_LE, 0);
    canonical_dataset(&in);
    file = read_mem(&in, "canonical.dcm");
    write_as(file, "canonical-out.dcm", NULL, path);
    load(path, &out);
    assert_int_equal(out.len, in.len);
    assert_memory_equal(out.data, in.data, in.len);
    assert_part10_framing(&out);
    assert_dcmdump_reads(path, "(0010,0010) PN [Doe^John]");

    /* The same through mv_file_write_fd, and with fsync. */
    {
        int fd = open(path_of("canonical-fd.dcm", path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(mv_file_write_fd(file, fd, NULL, &err), MV_OK);
        assert_int_equal(close(fd), 0);
        load(path, &out);
        assert_int_equal(out.len, in.len);
        assert_memory_equal(out.data, in.data, in.len);
        assert_int_equal(mv_file_write(file, path_of("canonical-sync.dcm", path), NULL, &err), MV_OK);
        load(path, &out);
        assert_int_equal(out.len, in.len);
        assert_memory_equal(out.data, in.data, in.len);
    }
    mv_file_free(file);
    buf_free(&in);
    buf_free(&out);
}

/* PS3.10 7.1: (0002,0000) is the byte count of the rest of group 0002; the writer computes
 * it whatever the input said, or adds it when it was missing. */
static void test_group_length_recomputed(void **state)
{
    Buf good = {0}, bad = {0}, none = {0}, out = {0};
    MvFile *file;
    char path[512];

    (void)state;
    part10(&good, MV_UID_EXPLICIT_LE, 0);
    canonical_dataset(&good);
    part10(&bad, MV_UID_EXPLICIT_LE, 0x1234);
    canonical_dataset(&bad);
    part10(&none, MV_UID_EXPLICIT_LE, NO_GROUP_LENGTH);
    canonical_dataset(&none);

    file = read_mem(&bad, "wrong-group-length.dcm");
    write_as(file, "fixed.dcm", NULL, path);
    mv_file_free(file);
    load(path, &out);
    assert_part10_framing(&out);
    assert_int_equal(out.len, good.len);
    assert_memory_equal(out.data, good.data, good.len);

    file = read_mem(&none, "no-group-length.dcm");
    write_as(file, "added.dcm", NULL, path);
    mv_file_free(file);
    load(path, &out);
    assert_int_equal(out.len, good.len);
    assert_memory_equal(out.data, good.data, good.len);
    buf_free(&good);
    buf_free(&bad);
    buf_free(&none);
    buf_free(&out);
}

/* The preamble is kept, zeroed or left out as asked (PS3.10 7.1 leaves its content to the
 * application). */
static void test_preamble_options(void **state)
{
    Buf in = {0}, out = {0};
    MvFile *file;
    MvWriteOptions opts;
    MvError err;
    char path[512];
    static const uint8_t zero[128];

    (void)state;
    part10(&in, MV_UID_EXPLICIT_LE, 0);
    canonical_dataset(&in);
    for (int i = 0; i < 128; i++)
        in.data[i] = (uint8_t)('A' + i % 26);
    file = read_mem(&in, "preamble.dcm");
    write_as(file, "kept.dcm", NULL, path);
    load(path, &out);
    assert_int_equal(out.len, in.len);
    assert_memory_equal(out.data, in.data, in.len);

    mv_write_options_init(&opts);
    opts.flags = MV_WRITE_NO_SYNC | MV_WRITE_ZERO_PREAMBLE;
    assert_int_equal(mv_file_write(file, path_of("zeroed.dcm", path), &opts, &err), MV_OK);
    load(path, &out);
    assert_int_equal(out.len, in.len);
    assert_memory_equal(out.data, zero, 128);
    assert_memory_equal(out.data + 128, in.data + 128, in.len - 128);

    opts.flags = MV_WRITE_NO_SYNC | MV_WRITE_NO_PREAMBLE;
    assert_int_equal(mv_file_write(file, path_of("nopreamble.dcm", path), &opts, &err), MV_OK);
    load(path, &out);
    assert_int_equal(out.len, in.len - 128);
    assert_memory_equal(out.data, in.data + 128, in.len - 128);
    mv_file_free(file);
    buf_free(&in);
    buf_free(&out);
}

/* ---- Conversions (PS3.5 Annex A) ------------------------------------------------------- */

/* Values of every binary kind, little endian. */
static void numeric_dataset(Buf *b)
{
    static const uint8_t ul[] = {0x70, 0x11, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00};        /* 70000 1 */
    static const uint8_t fd[] = {0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0, 0, 0, 0, 0, 0, 0x02, 0xC0}; /* 1.5 -2.25 */
    static const uint8_t us4[] = {0x01, 0x00, 0x02, 0x00, 0x00, 0x02, 0xFF, 0xFF};       /* 1 2 512 65535 */
    static const uint8_t fl[] = {0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x10, 0xC0};        /* 1.5 -2.25 */
    static const uint8_t ss[] = {0xFB, 0xFF};                                             /* -5 */
    static const uint8_t at[] = {0x18, 0x00, 0x63, 0x10};                                 /* (0018,1063) */
    static const uint8_t ob[] = {0x01, 0x02, 0x03, 0x04};
    static const uint8_t ow[] = {0x02, 0x01, 0x04, 0x03};                                 /* 0x0102 0x0304 */

    static const uint8_t uv[] = {1, 2, 3, 4, 5, 6, 7, 8};                                  /* 0x0807060504030201 */
    static const uint8_t of[] = {0x00, 0x00, 0xC0, 0x3F};                                 /* 1.5 */
    static const uint8_t od[] = {0, 0, 0, 0, 0, 0, 0x02, 0xC0};                           /* -2.25 */
    static const uint8_t ol[] = {0x04, 0x03, 0x02, 0x01};                                 /* 0x01020304 */
    static const uint8_t sv[] = {0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};         /* -2 */
    static const uint8_t un[] = {0x0A, 0x0B, 0x0C, 0x0D};

    ui_el(b, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    ui_el(b, 0x00080018u, "1.2.3.4");
    ex_el(b, 0x0008040Cu, "UV", uv, sizeof uv, 0);
    ex_hdr(b, 0x00081140u, "SQ", UNDEF, 0);
    item(b, UNDEF, 0);
    ui_el(b, 0x00081155u, "1.2.3.4.2");
    ex_el(b, 0x00081160u, "IS", "3 ", 2, 0);
    ex_el(b, 0x00181310u, "US", us4, sizeof us4, 0);
    item_end(b, 0);
    seq_end(b, 0);
    ex_el(b, 0x00081161u, "UL", ul, sizeof ul, 0);
    ex_el(b, 0x00081163u, "FD", fd, sizeof fd, 0);
    EX_STR(b, 0x00090010u, "LO", "ACME", 0);
    ex_el(b, 0x00091001u, "UN", un, sizeof un, 0);
    EX_STR(b, 0x00100010u, "PN", "Doe^John", 0);
    ex_el(b, 0x00181310u, "US", us4, sizeof us4, 0);
    ex_el(b, 0x00182043u, "FL", fl, sizeof fl, 0);
    ex_el(b, 0x00189219u, "SS", ss, sizeof ss, 0);
    ex_el(b, 0x00280009u, "AT", at, sizeof at, 0);
    ex_el(b, 0x00280010u, "US", us_512_le, 2, 0);
    EX_STR(b, 0x00280030u, "DS", "1.5\\-2", 0);
    ex_el(b, 0x00420011u, "OB", ob, sizeof ob, 0);
    ex_el(b, 0x00660016u, "OF", of, sizeof of, 0);
    ex_el(b, 0x00660022u, "OD", od, sizeof od, 0);
    ex_el(b, 0x00660040u, "OL", ol, sizeof ol, 0);
    ex_el(b, 0x00720082u, "SV", sv, sizeof sv, 0);
    ex_el(b, 0x7FE00010u, "OW", ow, sizeof ow, 0);
}

static void check_numeric_values(const MvDataset *ds)
{
    MvDataset *it = mv_element_item(must_find(ds, 0x00081140u), 0);

    assert_int_equal(uint_of(ds, 0x00081161u, 0), 70000);
    assert_int_equal(uint_of(ds, 0x00081161u, 1), 1);
    assert_double(double_of(ds, 0x00081163u, 0), 1.5);
    assert_double(double_of(ds, 0x00081163u, 1), -2.25);
    assert_int_equal(uint_of(ds, 0x00181310u, 2), 512);
    assert_int_equal(uint_of(ds, 0x00181310u, 3), 65535);
    assert_double(double_of(ds, 0x00182043u, 1), -2.25);
    assert_double(double_of(ds, 0x00189219u, 0), -5.0);
    assert_int_equal(uint_of(ds, 0x00280009u, 0), 0x00181063u);
    assert_int_equal(uint_of(ds, 0x00280010u, 0), 512);
    assert_double(double_of(ds, 0x00280030u, 1), -2.0);
    assert_int_equal(uint_of(ds, 0x7FE00010u, 0), 0x0102);
    assert_int_equal(uint_of(ds, 0x7FE00010u, 1), 0x0304);
    assert_int_equal(uint_of(ds, 0x0008040Cu, 0), 0x0807060504030201u);
    assert_double(double_of(ds, 0x00660016u, 0), 1.5);
    assert_double(double_of(ds, 0x00660022u, 0), -2.25);
    assert_int_equal(uint_of(ds, 0x00660040u, 0), 0x01020304u);
    {
        int64_t v = 0;
        MvError err;
        assert_int_equal(mv_element_int(ds, must_find(ds, 0x00720082u), 0, &v, &err), MV_OK);
        assert_int_equal(v, -2);
    }
    assert_value(must_find(ds, 0x00091001u), "\x0A\x0B\x0C\x0D", 4);
    assert_string_of(ds, 0x00100010u, "Doe^John");
    assert_string_of(it, 0x00081155u, "1.2.3.4.2");
    assert_int_equal(uint_of(it, 0x00181310u, 2), 512);
    assert_int_equal(uint_of(it, 0x00081160u, 0), 3);
}

static void test_little_big_little(void **state)
{
    Buf in = {0}, be = {0}, back = {0};
    MvFile *le_file, *be_file, *le_again;
    MvDataset *ds;
    char path[512];

    (void)state;
    part10(&in, MV_UID_EXPLICIT_LE, 0);
    numeric_dataset(&in);
    le_file = read_mem(&in, "numbers-le.dcm");
    check_numeric_values(mv_file_dataset(le_file));
    write_as(le_file, "numbers-be.dcm", MV_UID_EXPLICIT_BE, path);
    load(path, &be);
    assert_part10_framing(&be);
    assert_dcmdump_reads(path, "(0028,0010) US 512");
    be_file = read_path(path);
    ds = mv_file_dataset(be_file);
    assert_string_equal(mv_file_transfer_syntax(be_file)->uid, MV_UID_EXPLICIT_BE);
    assert_int_equal(mv_dataset_big_endian(ds), 1);
    check_numeric_values(ds);

    /* PS3.5 A.3 / 7.3: the bytes of big endian elements. */
    assert_has_bytes(&be, "\x00\x28\x00\x10" "US" "\x00\x02" "\x02\x00", 10);          /* Rows 512 */
    assert_has_bytes(&be, "\x00\x08\x11\x61" "UL" "\x00\x08" "\x00\x01\x11\x70\x00\x00\x00\x01", 16);
    assert_has_bytes(&be, "\x00\x08\x11\x63" "FD" "\x00\x10" "\x3F\xF8\0\0\0\0\0\0\xC0\x02\0\0\0\0\0\0", 24);
    assert_has_bytes(&be, "\x00\x18\x20\x43" "FL" "\x00\x08" "\x3F\xC0\x00\x00\xC0\x10\x00\x00", 16);
    assert_has_bytes(&be, "\x00\x18\x92\x19" "SS" "\x00\x02" "\xFF\xFB", 10);
    assert_has_bytes(&be, "\x00\x28\x00\x09" "AT" "\x00\x04" "\x00\x18\x10\x63", 12);  /* AT: two 16-bit halves */
    assert_has_bytes(&be, "\x00\x10\x00\x10" "PN" "\x00\x08" "Doe^John", 16);          /* text untouched */
    assert_has_bytes(&be, "\x00\x28\x00\x30" "DS" "\x00\x06" "1.5\\-2", 14);
    assert_has_bytes(&be, "\x00\x42\x00\x11" "OB" "\x00\x00" "\x00\x00\x00\x04" "\x01\x02\x03\x04", 16); /* OB: bytes */
    assert_has_bytes(&be, "\x7F\xE0\x00\x10" "OW" "\x00\x00" "\x00\x00\x00\x04" "\x01\x02\x03\x04", 16); /* OW: words */
    assert_has_bytes(&be, "\x00\x18\x13\x10" "US" "\x00\x08" "\x00\x01\x00\x02\x02\x00\xFF\xFF", 16);
    assert_has_bytes(&be, "\x00\x08\x04\x0C" "UV" "\x00\x00" "\x00\x00\x00\x08" "\x08\x07\x06\x05\x04\x03\x02\x01", 20);
    assert_has_bytes(&be, "\x00\x66\x00\x16" "OF" "\x00\x00" "\x00\x00\x00\x04" "\x3F\xC0\x00\x00", 16);
    assert_has_bytes(&be, "\x00\x66\x00\x22" "OD" "\x00\x00" "\x00\x00\x00\x08" "\xC0\x02\0\0\0\0\0\0", 20);
    assert_has_bytes(&be, "\x00\x66\x00\x40" "OL" "\x00\x00" "\x00\x00\x00\x04" "\x01\x02\x03\x04", 16);
    assert_has_bytes(&be, "\x00\x72\x00\x82" "SV" "\x00\x00" "\x00\x00\x00\x08" "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFE", 20);
    /* PS3.5 6.2.2: a UN value is never byte-swapped */
    assert_has_bytes(&be, "\x00\x09\x10\x01" "UN" "\x00\x00" "\x00\x00\x00\x04" "\x0A\x0B\x0C\x0D", 16);
    assert_has_bytes(&be, "\xFF\xFE\xE0\x00", 4);                                        /* a BE item tag */
    /* The meta stays explicit VR little endian (PS3.10 7.1). */
    assert_has_bytes(&be, "\x02\x00\x10\x00" "UI" "\x14\x00" MV_UID_EXPLICIT_BE "\0", 28);

    /* And back: the very same bytes as the input. */
    write_as(be_file, "numbers-le-again.dcm", MV_UID_EXPLICIT_LE, path);
    load(path, &back);
    assert_int_equal(back.len, in.len);
    assert_memory_equal(back.data, in.data, in.len);
    le_again = read_path(path);
    assert_same_dataset(mv_file_dataset(le_again), mv_file_dataset(le_file));

    mv_file_free(le_file);
    mv_file_free(be_file);
    mv_file_free(le_again);
    buf_free(&in);
    buf_free(&be);
    buf_free(&back);
}

/* Implicit VR input written explicit: VRs come from the dictionary; a value too long for a
 * 16-bit length field is written as UN with a 32-bit length (PS3.5 6.2.2, CP-1066), one of
 * 65534 bytes keeps its VR. */
static void test_implicit_to_explicit(void **state)
{
    Buf in = {0}, out = {0};
    uint8_t *long_value = malloc(70000), *max_short = malloc(65534);
    MvFile *file, *again;
    MvDataset *ds;
    char path[512];
    long at;

    (void)state;
    assert_non_null(long_value);
    assert_non_null(max_short);
    memset(long_value, 'A', 70000);
    memset(max_short, 'B', 65534);
    part10(&in, MV_UID_IMPLICIT_LE, 0);
    IM_STR(&in, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7\0");
    IM_STR(&in, 0x00080018u, "1.2.3.4\0");
    IM_STR(&in, 0x00090010u, "ACME");
    IM_STR(&in, 0x00091001u, "\x01\x02\x03\x04");
    IM_STR(&in, 0x00100010u, "Doe^John");
    im_el(&in, 0x00100020u, long_value, 70000);
    im_el(&in, 0x00100021u, max_short, 65534);
    im_el(&in, 0x00280010u, us_512_le, 2);
    im_el(&in, 0x7FE00010u, "\x02\x01\x04\x03", 4);
    file = read_mem(&in, "implicit.dcm");
    write_as(file, "explicit.dcm", MV_UID_EXPLICIT_LE, path);
    load(path, &out);
    assert_part10_framing(&out);
    assert_dcmdump_reads(path, "(0010,0010) PN [Doe^John]");
    assert_has_bytes(&out, "\x08\x00\x16\x00" "UI" "\x1A\x00" "1.2.840.10008.5.1.4.1.1.7\0", 34);
    assert_has_bytes(&out, "\x09\x00\x10\x00" "LO" "\x04\x00" "ACME", 12);              /* creator: LO */
    assert_has_bytes(&out, "\x09\x00\x01\x10" "UN" "\0\0" "\x04\0\0\0" "\x01\x02\x03\x04", 16); /* private: UN */
    assert_has_bytes(&out, "\x10\x00\x10\x00" "PN" "\x08\x00" "Doe^John", 16);
    at = find_bytes(&out, "\x10\x00\x20\x00" "UN" "\0\0" "\x70\x11\x01\x00", 12);     /* 70000 = 0x11170 */
    assert_true(at > 0);
    assert_memory_equal(out.data + at + 12, long_value, 70000);
    at = find_bytes(&out, "\x10\x00\x21\x00" "LO" "\xFE\xFF", 8);
    assert_true(at > 0);
    assert_memory_equal(out.data + at + 8, max_short, 65534);
    assert_has_bytes(&out, "\x28\x00\x10\x00" "US" "\x02\x00" "\x00\x02", 10);
    assert_has_bytes(&out, "\xE0\x7F\x10\x00" "OW" "\0\0" "\x04\0\0\0" "\x02\x01\x04\x03", 16);
    assert_has_bytes(&out, "\x02\x00\x10\x00" "UI" "\x14\x00" MV_UID_EXPLICIT_LE "\0", 28);

    again = read_path(path);
    ds = mv_file_dataset(again);
    assert_string_equal(mv_file_transfer_syntax(again)->uid, MV_UID_EXPLICIT_LE);
    assert_vr(mv_element_vr(must_find(ds, 0x00100020u)), "UN");
    assert_value(must_find(ds, 0x00100020u), long_value, 70000);
    assert_vr(mv_element_vr(must_find(ds, 0x00100021u)), "LO");
    assert_value(must_find(ds, 0x00100021u), max_short, 65534);
    assert_vr(mv_element_vr(must_find(ds, 0x00100010u)), "PN");
    assert_vr(mv_element_vr(must_find(ds, 0x7FE00010u)), "OW");
    mv_file_free(again);

    /* Explicit back to implicit: the same dataset bytes as the input. */
    {
        Buf imp = {0};
        MvFile *exp_file = read_path(path);
        write_as(exp_file, "implicit-again.dcm", MV_UID_IMPLICIT_LE, path);
        mv_file_free(exp_file);
        load(path, &imp);
        assert_part10_framing(&imp);
        assert_int_equal(imp.len, in.len);
        assert_memory_equal(imp.data, in.data, in.len);
        buf_free(&imp);
    }
    mv_file_free(file);
    free(long_value);
    free(max_short);
    buf_free(&in);
    buf_free(&out);
}

/* PS3.5 7.1.1 and 6.2: values have even length; text is padded with a space, UI with a NUL,
 * OB with a NUL. */
static void test_odd_values_padded(void **state)
{
    Buf in = {0}, out = {0};
    MvFile *file, *again;
    MvDataset *ds;
    MvError err;
    char path[512];

    (void)state;
    assert_int_equal(mv_file_new(&file), MV_OK);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_dataset_set_string(ds, 0x00080016u, MV_VR_NONE, "1.2.840.10008.5.1.4.1.1.7", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, 0x00080018u, MV_VR_NONE, "1.2.3", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, 0x00100010u, MV_VR_NONE, "Doe", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, 0x00100020u, MV_VR_NONE, "A", &err), MV_OK);
    assert_int_equal(mv_dataset_set_bytes(ds, 0x00420011u, MV_VR_OB, "abc", 3, &err), MV_OK);
    write_as(file, "padded.dcm", NULL, path);
    mv_file_free(file);
    load(path, &out);
    assert_part10_framing(&out);
    assert_has_bytes(&out, "\x08\x00\x16\x00" "UI" "\x1A\x00" "1.2.840.10008.5.1.4.1.1.7\0", 34);
    assert_has_bytes(&out, "\x08\x00\x18\x00" "UI" "\x06\x00" "1.2.3\0", 14);
    assert_has_bytes(&out, "\x10\x00\x10\x00" "PN" "\x04\x00" "Doe ", 12);
    assert_has_bytes(&out, "\x10\x00\x20\x00" "LO" "\x02\x00" "A ", 10);
    assert_has_bytes(&out, "\x42\x00\x11\x00" "OB" "\0\0" "\x04\0\0\0" "abc\0", 16);
    /* the copies in the meta are padded too */
    assert_has_bytes(&out, "\x02\x00\x03\x00" "UI" "\x06\x00" "1.2.3\0", 14);
    assert_dcmdump_reads(path, "(0010,0010) PN [Doe]");
    again = read_path(path);
    assert_int_equal(mv_file_warning_count(again), 0);
    assert_string_of(mv_file_dataset(again), 0x00100010u, "Doe");
    assert_string_of(mv_file_dataset(again), 0x00080018u, "1.2.3");
    mv_file_free(again);

    /* An odd length read from a file is padded when written. */
    part10(&in, MV_UID_EXPLICIT_LE, 0);
    ui_el(&in, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    ui_el(&in, 0x00080018u, "1.2.3.4");
    EX_STR(&in, 0x00100010u, "PN", "Doe", 0);
    EX_STR(&in, 0x00100020u, "LO", "ID01", 0);
    file = read_mem(&in, "odd-in.dcm");
    write_as(file, "odd-out.dcm", NULL, path);
    mv_file_free(file);
    load(path, &out);
    assert_has_bytes(&out, "\x10\x00\x10\x00" "PN" "\x04\x00" "Doe " "\x10\x00\x20\x00" "LO" "\x04\x00" "ID01", 24);
    assert_int_equal(out.len, in.len + 1);
    buf_free(&in);
    buf_free(&out);
}

/* PS3.5 A.5: the dataset after the meta is a raw deflate stream (RFC 1951) of its explicit
 * VR little endian encoding. */
static void test_deflated_output(void **state)
{
    Buf in = {0}, ds_bytes = {0}, out = {0}, inflated = {0}, again_bytes = {0};
    MvFile *file, *z, *plain;
    char path[512], zpath[512];
    size_t meta_end, ds_at;
    uint32_t group_len;
    z_stream zs;
    char text[2000];
    int zr;

    (void)state;
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 7);
    ds_at = part10(&in, MV_UID_EXPLICIT_LE, 0);
    canonical_dataset(&ds_bytes);
    buf_append(&in, &ds_bytes);
    ex_el(&in, 0x7FE10010u, "OB", "pad!", 4, 0); /* private group after pixel data */
    ex_hdr(&in, 0x7FE11010u, "OB", sizeof text, 0);
    buf_put(&in, text, sizeof text);
    ds_bytes.len = 0;
    buf_put(&ds_bytes, in.data + ds_at, in.len - ds_at);

    file = read_mem(&in, "to-deflate.dcm");
    write_as(file, "deflated.dcm", MV_UID_DEFLATED_LE, zpath);
    load(zpath, &out);
    assert_part10_framing(&out);
    assert_has_bytes(&out, "\x02\x00\x10\x00" "UI" "\x16\x00" MV_UID_DEFLATED_LE, 30);
    group_len = (uint32_t)out.data[140] | (uint32_t)out.data[141] << 8 | (uint32_t)out.data[142] << 16 |
                (uint32_t)out.data[143] << 24;
    meta_end = 144 + group_len;
    assert_true(out.len > meta_end);
    /* compressed: smaller, and no element of the dataset appears in clear */
    assert_true(out.len - meta_end < ds_bytes.len);
    {
        Buf tail = {0};
        buf_put(&tail, out.data + meta_end, out.len - meta_end);
        assert_true(find_bytes(&tail, "\x10\x00\x10\x00" "PN", 6) < 0);
        assert_true(find_bytes(&tail, "Doe^John", 8) < 0);
        assert_true(find_bytes(&tail, "1.2.840.10008.5.1.4.1.1.7", 25) < 0);
        buf_free(&tail);
    }
    /* inflate it ourselves: exactly the explicit VR little endian dataset */
    memset(&zs, 0, sizeof zs);
    assert_int_equal(inflateInit2(&zs, -15), Z_OK);
    inflated.data = malloc(ds_bytes.len + 1024);
    inflated.cap = ds_bytes.len + 1024;
    zs.next_in = out.data + meta_end;
    zs.avail_in = (uInt)(out.len - meta_end);
    zs.next_out = inflated.data;
    zs.avail_out = (uInt)inflated.cap;
    zr = inflate(&zs, Z_FINISH);
    assert_int_equal(zr, Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0);
    inflated.len = inflated.cap - zs.avail_out;
    inflateEnd(&zs);
    assert_int_equal(inflated.len, ds_bytes.len);
    assert_memory_equal(inflated.data, ds_bytes.data, ds_bytes.len);
    assert_dcmdump_reads(zpath, "(0010,0010) PN [Doe^John]");

    /* read back: the same elements */
    z = read_path(zpath);
    assert_int_equal(mv_file_transfer_syntax(z)->deflated, 1);
    assert_same_dataset(mv_file_dataset(z), mv_file_dataset(file));
    /* rewritten unchanged it stays the same file; rewritten plain it is the input again */
    write_as(z, "deflated-again.dcm", NULL, path);
    load(path, &again_bytes);
    assert_int_equal(again_bytes.len, out.len);
    assert_memory_equal(again_bytes.data, out.data, out.len);
    write_as(z, "inflated.dcm", MV_UID_EXPLICIT_LE, path);
    load(path, &again_bytes);
    assert_int_equal(again_bytes.len, in.len);
    assert_memory_equal(again_bytes.data, in.data, in.len);
    plain = read_path(path);
    assert_same_dataset(mv_file_dataset(plain), mv_file_dataset(file));
    mv_file_free(plain);
    mv_file_free(z);
    mv_file_free(file);
    buf_free(&in);
    buf_free(&ds_bytes);
    buf_free(&out);
    buf_free(&inflated);
    buf_free(&again_bytes);
}

/* PS3.5 6.2.2: a UN element of undefined length keeps its items in implicit VR little
 * endian in every transfer syntax, big endian too; only its own header changes. */
static void test_un_sequence_conversions(void **state)
{
    Buf in = {0}, be = {0}, back = {0}, seq = {0};
    MvFile *file, *be_file;
    MvElement *un;
    char path[512];
    long at;

    (void)state;
    part10(&in, MV_UID_EXPLICIT_LE, 0);
    ui_el(&in, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    ui_el(&in, 0x00080018u, "1.2.3.4");
    item(&seq, UNDEF, 0);
    IM_STR(&seq, 0x00081155u, "1.2.3\0");
    im_el(&seq, 0x00181310u, "\x01\x00\x02\x00", 4);
    item_end(&seq, 0);
    seq_end(&seq, 0);
    ex_hdr(&in, 0x00081140u, "UN", UNDEF, 0);
    buf_append(&in, &seq);
    EX_STR(&in, 0x00100010u, "PN", "Doe^John", 0);
    file = read_mem(&in, "un-seq.dcm");
    write_as(file, "un-seq-be.dcm", MV_UID_EXPLICIT_BE, path);
    load(path, &be);
    at = find_bytes(&be, "\x00\x08\x11\x40" "UN" "\0\0" "\xFF\xFF\xFF\xFF", 12);
    assert_true(at > 0);
    assert_true((size_t)at + 12 + seq.len <= be.len);
    assert_memory_equal(be.data + at + 12, seq.data, seq.len);
    be_file = read_path(path);
    un = must_find(mv_file_dataset(be_file), 0x00081140u);
    assert_true(mv_element_is_sequence(un));
    assert_int_equal(mv_element_item_count(un), 1);
    assert_string_of(mv_element_item(un, 0), 0x00081155u, "1.2.3");
    assert_int_equal(uint_of(mv_element_item(un, 0), 0x00181310u, 1), 2);
    write_as(be_file, "un-seq-le.dcm", MV_UID_EXPLICIT_LE, path);
    load(path, &back);
    assert_int_equal(back.len, in.len);
    assert_memory_equal(back.data, in.data, in.len);
    mv_file_free(be_file);
    mv_file_free(file);
    buf_free(&in);
    buf_free(&be);
    buf_free(&back);
    buf_free(&seq);
}

/* ---- Atomic replacement ------------------------------------------------------------- */

static void test_write_failures_leave_nothing(void **state)
{
    Buf in = {0}, jpeg = {0}, before = {0}, after = {0};
    MvFile *file, *jpeg_file;
    MvWriteOptions opts;
    MvError err;
    char path[512], missing_dir[256], target[512];
    struct stat sb;

    (void)state;
    part10(&in, MV_UID_EXPLICIT_LE, 0);
    canonical_dataset(&in);
    file = read_mem(&in, "in.dcm");
    mv_write_options_init(&opts);
    opts.flags = MV_WRITE_NO_SYNC;

    /* into a folder that does not exist */
    snprintf(missing_dir, sizeof missing_dir, "%s/no-such-dir", tmpdir);
    snprintf(path, sizeof path, "%s/out.dcm", missing_dir);
    assert_int_equal(mv_file_write(file, path, &opts, &err), MV_ERR_IO);
    assert_int_equal(err.code, MV_ERR_IO);
    assert_non_null(strstr(err.message, path));
    assert_int_equal(stat(path, &sb), -1);
    assert_int_equal(stat(missing_dir, &sb), -1);
    assert_int_equal(count_temporaries(tmpdir), 0);

    /* over an existing file, failing after the temporary file was made: the target keeps
     * its bytes and no temporary file stays */
    path_of("keep.dcm", target);
    save(target, "old contents", 12);
    opts.transfer_syntax = "1.2.3.4.5.6";
    assert_int_not_equal(mv_file_write(file, target, &opts, &err), MV_OK);
    assert_int_equal(count_temporaries(tmpdir), 0);
    load(target, &after);
    assert_int_equal(after.len, 12);
    assert_memory_equal(after.data, "old contents", 12);

    /* encapsulated pixel data cannot become native without a codec */
    part10(&jpeg, "1.2.840.10008.1.2.4.50", 0);
    ui_el(&jpeg, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    ex_hdr(&jpeg, 0x7FE00010u, "OB", UNDEF, 0);
    item(&jpeg, 0, 0);
    item(&jpeg, 4, 0);
    buf_put(&jpeg, "\xFF\xD8\xFF\xD9", 4);
    seq_end(&jpeg, 0);
    jpeg_file = read_mem(&jpeg, "jpeg.dcm");
    opts.transfer_syntax = MV_UID_EXPLICIT_LE;
    assert_int_equal(mv_file_write(jpeg_file, target, &opts, &err), MV_ERR_UNSUPPORTED);
    assert_int_equal(count_temporaries(tmpdir), 0);
    load(target, &before);
    assert_int_equal(before.len, 12);
    assert_memory_equal(before.data, "old contents", 12);
    /* but it is written in its own syntax, unchanged */
    opts.transfer_syntax = NULL;
    assert_int_equal(mv_file_write(jpeg_file, target, &opts, &err), MV_OK);
    load(target, &after);
    assert_int_equal(after.len, jpeg.len);
    assert_memory_equal(after.data, jpeg.data, jpeg.len);
    assert_int_equal(count_temporaries(tmpdir), 0);

    mv_file_free(jpeg_file);
    mv_file_free(file);
    buf_free(&in);
    buf_free(&jpeg);
    buf_free(&before);
    buf_free(&after);
}

/* Writing over a longer existing file replaces all of it. */
static void test_overwrite_replaces_completely(void **state)
{
    Buf in = {0}, fresh = {0}, over = {0};
    uint8_t *junk = malloc(100000);
    MvFile *file;
    char path[512], target[512];

    (void)state;
    assert_non_null(junk);
    memset(junk, 0xAA, 100000);
    part10(&in, MV_UID_EXPLICIT_LE, 0);
    canonical_dataset(&in);
    file = read_mem(&in, "in.dcm");
    write_as(file, "fresh.dcm", NULL, path);
    load(path, &fresh);
    save(path_of("over.dcm", target), junk, 100000);
    write_as(file, "over.dcm", NULL, target);
    load(target, &over);
    assert_int_equal(over.len, fresh.len);
    assert_memory_equal(over.data, fresh.data, fresh.len);
    assert_int_equal(count_temporaries(tmpdir), 0);
    mv_file_free(file);
    free(junk);
    buf_free(&in);
    buf_free(&fresh);
    buf_free(&over);
}

/* ---- New files -------------------------------------------------------------------------- */

/* PS3.10 7.1: (0002,0001) 00 01; (0002,0002) and (0002,0003) from (0008,0016) and
 * (0008,0018); (0002,0010) the transfer syntax written; (0002,0012) present. */
static void test_new_file_meta(void **state)
{
    Buf out = {0}, fd_out = {0};
    MvFile *file, *again;
    MvDataset *ds, *meta, *it;
    MvElement *seq;
    MvError err;
    char path[512];

    (void)state;
    assert_int_equal(mv_file_new(&file), MV_OK);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_dataset_count(ds), 0);
    assert_int_equal(mv_dataset_count(mv_file_meta(file)), 0);
    assert_int_equal(mv_file_had_meta(file), 0);
    assert_string_equal(mv_file_transfer_syntax(file)->uid, MV_UID_EXPLICIT_LE);
    assert_int_equal(mv_dataset_set_string(ds, 0x00080016u, MV_VR_NONE, "1.2.840.10008.5.1.4.1.1.7", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, 0x00080018u, MV_VR_NONE, "1.2.3.4.5", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, 0x00100010u, MV_VR_NONE, "Doe^John", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, 0x00100020u, MV_VR_NONE, "ID01", &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(ds, 0x00280010u, MV_VR_NONE, 512, &err), MV_OK);
    assert_int_equal(mv_dataset_set_sequence(ds, 0x00081140u, &seq, &err), MV_OK);
    assert_int_equal(mv_element_insert_item(seq, MV_APPEND, &it, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(it, 0x00081155u, MV_VR_NONE, "1.2.3.4.6", &err), MV_OK);
    write_as(file, "new.dcm", NULL, path);
    load(path, &out);
    assert_part10_framing(&out);
    for (int i = 0; i < 128; i++)
        assert_int_equal(out.data[i], 0);
    assert_has_bytes(&out, "\x02\x00\x01\x00" "OB" "\0\0" "\x02\0\0\0" "\x00\x01", 14);
    assert_has_bytes(&out, "\x02\x00\x02\x00" "UI" "\x1A\x00" "1.2.840.10008.5.1.4.1.1.7\0", 34);
    assert_has_bytes(&out, "\x02\x00\x03\x00" "UI" "\x0A\x00" "1.2.3.4.5\0", 18);
    assert_has_bytes(&out, "\x02\x00\x10\x00" "UI" "\x14\x00" MV_UID_EXPLICIT_LE "\0", 28);
    assert_has_bytes(&out, "\x28\x00\x10\x00" "US" "\x02\x00" "\x00\x02", 10);
    assert_dcmdump_reads(path, "(0010,0010) PN [Doe^John]");
    assert_dcmdump_reads(path, "(0002,0003) UI [1.2.3.4.5]");

    again = read_path(path);
    meta = mv_file_meta(again);
    assert_int_equal(mv_file_had_meta(again), 1);
    assert_value(must_find(meta, 0x00020001u), "\x00\x01", 2);
    assert_string_of(meta, 0x00020002u, "1.2.840.10008.5.1.4.1.1.7");
    assert_string_of(meta, 0x00020003u, "1.2.3.4.5");
    assert_string_of(meta, 0x00020010u, MV_UID_EXPLICIT_LE);
    assert_non_null(mv_dataset_find(meta, 0x00020012u));
    assert_int_equal(uint_of(meta, 0x00020000u, 0), measured_meta_length(&out));
    ds = mv_file_dataset(again);
    assert_int_equal(mv_dataset_count(ds), 6);
    assert_string_of(ds, 0x00100010u, "Doe^John");
    assert_int_equal(uint_of(ds, 0x00280010u, 0), 512);
    assert_string_of(mv_element_item(must_find(ds, 0x00081140u), 0), 0x00081155u, "1.2.3.4.6");
    mv_file_free(again);

    /* mv_file_write_fd gives the same bytes */
    {
        int fd = open(path_of("new-fd.dcm", path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(mv_file_write_fd(file, fd, NULL, &err), MV_OK);
        assert_int_equal(close(fd), 0);
        load(path, &fd_out);
        assert_int_equal(fd_out.len, out.len);
        assert_memory_equal(fd_out.data, out.data, out.len);
    }

    /* written implicit VR little endian: (0002,0010) says so, the dataset has no VRs */
    write_as(file, "new-implicit.dcm", MV_UID_IMPLICIT_LE, path);
    load(path, &out);
    assert_part10_framing(&out);
    assert_has_bytes(&out, "\x02\x00\x10\x00" "UI" "\x12\x00" MV_UID_IMPLICIT_LE "\0", 26);
    assert_has_bytes(&out, "\x10\x00\x10\x00" "\x08\x00\x00\x00" "Doe^John", 16);
    assert_has_bytes(&out, "\x28\x00\x10\x00" "\x02\x00\x00\x00" "\x00\x02", 10);
    assert_dcmdump_reads(path, "(0010,0010) PN [Doe^John]");
    again = read_path(path);
    assert_string_equal(mv_file_transfer_syntax(again)->uid, MV_UID_IMPLICIT_LE);
    assert_string_of(mv_file_meta(again), 0x00020010u, MV_UID_IMPLICIT_LE);
    assert_string_of(mv_element_item(must_find(mv_file_dataset(again), 0x00081140u), 0), 0x00081155u,
                     "1.2.3.4.6");
    mv_file_free(again);
    mv_file_free(file);
    buf_free(&out);
    buf_free(&fd_out);
}

/* PS3.10 Table 7.1-1: (0002,0002) and (0002,0003) identify the SOP Class and Instance of
 * the dataset in the file, so they follow (0008,0016) and (0008,0018) when those change
 * (as a de-identification that replaces UIDs does). */
static void test_meta_follows_dataset_uids(void **state)
{
    Buf in = {0}, out = {0};
    MvFile *file, *again;
    MvError err;
    char path[512];

    (void)state;
    part10(&in, MV_UID_EXPLICIT_LE, 0);
    canonical_dataset(&in);
    file = read_mem(&in, "uids.dcm");
    assert_int_equal(mv_dataset_set_string(mv_file_dataset(file), 0x00080018u, MV_VR_NONE, "2.25.12345", &err),
                     MV_OK);
    assert_int_equal(mv_dataset_set_string(mv_file_dataset(file), 0x00080016u, MV_VR_NONE,
                                           "1.2.840.10008.5.1.4.1.1.2", &err), MV_OK);
    write_as(file, "uids-out.dcm", NULL, path);
    mv_file_free(file);
    load(path, &out);
    assert_part10_framing(&out);
    again = read_path(path);
    assert_string_of(mv_file_dataset(again), 0x00080018u, "2.25.12345");
    assert_string_of(mv_file_meta(again), 0x00020003u, "2.25.12345");
    assert_string_of(mv_file_meta(again), 0x00020002u, "1.2.840.10008.5.1.4.1.1.2");
    /* the old instance UID is gone from the file */
    assert_true(find_bytes(&out, "1.2.3.4\0", 8) < 0);
    mv_file_free(again);
    buf_free(&in);
    buf_free(&out);
}

/* PS3.5 7.2: a Group Length element holds the byte count of the rest of its group. A
 * dataset that carries one (0010,0000) must not keep a stale value after an edit of the
 * group: it is either recomputed or left out. */
static void test_dataset_group_length_stays_true(void **state)
{
    Buf in = {0}, out = {0};
    MvFile *file, *again;
    MvElement *gl;
    uint64_t group_length;
    MvError err;
    char path[512];

    (void)state;
    part10(&in, MV_UID_EXPLICIT_LE, 0);
    ui_el(&in, 0x00080016u, "1.2.840.10008.5.1.4.1.1.7");
    ui_el(&in, 0x00080018u, "1.2.3.4");
    ex_hdr(&in, 0x00100000u, "UL", 4, 0);
    buf_u32(&in, 16 + 14, 0); /* (0010,0010) 8 + 8 bytes, (0010,0020) 8 + 6 bytes */
    EX_STR(&in, 0x00100010u, "PN", "Doe^John", 0);
    EX_STR(&in, 0x00100020u, "LO", "ID0001", 0);
    file = read_mem(&in, "group-length.dcm");
    assert_int_equal(mv_dataset_set_string(mv_file_dataset(file), 0x00100010u, MV_VR_NONE, "Anonymous^Patient",
                                           &err), MV_OK);
    write_as(file, "group-length-out.dcm", NULL, path);
    mv_file_free(file);
    load(path, &out);
    again = read_path(path);
    gl = mv_dataset_find(mv_file_dataset(again), 0x00100000u);
    group_length = gl != NULL ? uint_of(mv_file_dataset(again), 0x00100000u, 0) : 0;
    mv_file_free(again); /* freed before asserting, so that a failure leaks nothing */
    buf_free(&in);
    buf_free(&out);
    if (gl != NULL) /* "Anonymous^Patient " is 18 bytes: 8 + 18 + 8 + 6 */
        assert_int_equal(group_length, 8 + 18 + 8 + 6);
}

/* PS3.3 F.3.2.2: a DICOMDIR's records point at each other by their byte offset in the file.
 * The input below is built with correct offsets; an edit that lengthens the first record
 * moves the second, so the writer must rewrite every offset to where the items now are. */
static void put_ul(Buf *b, uint32_t tag, uint32_t value)
{
    uint8_t v[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16), (uint8_t)(value >> 24)};
    ex_el(b, tag, "UL", v, 4, 0);
}

static uint32_t ul_of(const MvDataset *ds, uint32_t tag)
{
    uint64_t v = 0;
    const MvElement *el = mv_dataset_find(ds, tag);

    assert_non_null(el);
    assert_int_equal(mv_element_uint(ds, el, 0, &v, NULL), MV_OK);
    return (uint32_t)v;
}

static void test_dicomdir_offsets_follow_records(void **state)
{
    Buf in = {0}, rec1 = {0}, rec2 = {0}, out = {0};
    static const uint8_t item_tag[4] = {0xFE, 0xFF, 0x00, 0xE0};
    size_t header, first, second;
    MvFile *file, *back;
    MvError err;
    char path[512];
    long pos1, pos2;
    const MvElement *seq;

    (void)state;
    part10(&in, "1.2.840.10008.1.2.1", 0);
    /* Record 2 (12 + 14 bytes of elements), then record 1 knowing where record 2 will be. */
    put_ul(&rec2, 0x00041400u, 0);
    EX_STR(&rec2, 0x00041430u, "CS", "STUDY ", 0);
    header = in.len + 12 + 12 + 12; /* (0004,1200), (0004,1202), then the SQ header */
    first = header;
    second = first + 8 + (12 + 16 + 16); /* item header + record 1's elements */
    put_ul(&rec1, 0x00041400u, (uint32_t)second);
    EX_STR(&rec1, 0x00041430u, "CS", "PATIENT ", 0);
    EX_STR(&rec1, 0x00100010u, "PN", "DOE^JOHN", 0);
    assert_int_equal(rec1.len, 12 + 16 + 16);
    put_ul(&in, 0x00041200u, (uint32_t)first);
    put_ul(&in, 0x00041202u, (uint32_t)second);
    ex_hdr(&in, 0x00041220u, "SQ", (uint32_t)(8 + rec1.len + 8 + rec2.len), 0);
    assert_int_equal(in.len, first);
    item(&in, (uint32_t)rec1.len, 0);
    buf_append(&in, &rec1);
    assert_int_equal(in.len, second);
    item(&in, (uint32_t)rec2.len, 0);
    buf_append(&in, &rec2);

    /* Unchanged, the directory is written byte for byte. */
    file = read_mem(&in, "dicomdir");
    load(write_as(file, "dicomdir-same.dcm", NULL, path), &out);
    assert_int_equal(out.len, in.len);
    assert_memory_equal(out.data, in.data, in.len);
    buf_free(&out);

    /* A longer name in record 1 moves record 2. */
    assert_int_equal(mv_path_set_string(mv_file_dataset(file), "DirectoryRecordSequence[0].PatientName",
                                        "DOE^JOHNATHAN^LONGER", &err), MV_OK);
    load(write_as(file, "dicomdir-moved.dcm", NULL, path), &out);
    mv_file_free(file);
    back = read_path(path);
    pos1 = find_bytes(&out, item_tag, 4);
    assert_true(pos1 > 0);
    {
        Buf rest = {out.data + pos1 + 4, out.len - (size_t)pos1 - 4, 0};
        pos2 = find_bytes(&rest, item_tag, 4);
        assert_true(pos2 > 0);
        pos2 += pos1 + 4;
    }
    assert_true((size_t)pos2 != second); /* it did move */
    assert_int_equal(ul_of(mv_file_dataset(back), 0x00041200u), pos1);
    assert_int_equal(ul_of(mv_file_dataset(back), 0x00041202u), pos2);
    seq = mv_dataset_find(mv_file_dataset(back), 0x00041220u);
    assert_non_null(seq);
    assert_int_equal(mv_element_item_count(seq), 2);
    assert_int_equal(ul_of(mv_element_item(seq, 0), 0x00041400u), pos2);
    assert_int_equal(ul_of(mv_element_item(seq, 1), 0x00041400u), 0);
    mv_file_free(back);
    buf_free(&out);
    buf_free(&in);
    buf_free(&rec1);
    buf_free(&rec2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_written_identical),
        cmocka_unit_test(test_group_length_recomputed),
        cmocka_unit_test(test_preamble_options),
        cmocka_unit_test(test_little_big_little),
        cmocka_unit_test(test_implicit_to_explicit),
        cmocka_unit_test(test_odd_values_padded),
        cmocka_unit_test(test_deflated_output),
        cmocka_unit_test(test_un_sequence_conversions),
        cmocka_unit_test(test_write_failures_leave_nothing),
        cmocka_unit_test(test_overwrite_replaces_completely),
        cmocka_unit_test(test_new_file_meta),
        cmocka_unit_test(test_meta_follows_dataset_uids),
        cmocka_unit_test(test_dataset_group_length_stays_true),
        cmocka_unit_test(test_dicomdir_offsets_follow_records),
    };

    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
