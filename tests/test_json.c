/* Unit tests of the DICOM JSON writer (src/dicom/json.c). Datasets are built in memory
 * with the editing API or parsed from small byte buffers; every expectation is the exact
 * JSON text that the rules of PS3.18 F.2 (and the contract in src/dicom/json.c) give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "medveil/dicom.h"

/* ---- Helpers --------------------------------------------------------------------- */

/* The JSON of file with flags and bulk threshold (0 = default), as a malloc'd string. */
static char *json_of(const MvFile *file, unsigned flags, size_t threshold)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    MvJsonOptions opts = {threshold, flags};
    MvError err;

    assert_non_null(out);
    assert_int_equal(mv_json_write(file, out, &opts, &err), MV_OK);
    assert_int_equal(fclose(out), 0);
    return text;
}

static void assert_json(const MvFile *file, unsigned flags, size_t threshold, const char *expected)
{
    char *got = json_of(file, flags, threshold);

    assert_string_equal(got, expected);
    free(got);
}

static MvFile *new_file(void)
{
    MvFile *file = NULL;

    assert_int_equal(mv_file_new(&file), MV_OK);
    return file;
}

static void set_string(MvDataset *ds, uint32_t tag, MvVr vr, const char *value)
{
    MvError err;

    assert_int_equal(mv_dataset_set_string(ds, tag, vr, value, &err), MV_OK);
}

static void set_bytes(MvDataset *ds, uint32_t tag, MvVr vr, const void *value, size_t len)
{
    MvError err;

    assert_int_equal(mv_dataset_set_bytes(ds, tag, vr, value, len, &err), MV_OK);
}

/* A byte buffer for hand-made Part 10 files. */
typedef struct Buf {
    uint8_t data[4096];
    size_t len;
} Buf;

static void buf_put(Buf *b, const void *bytes, size_t n)
{
    assert_true(b->len + n <= sizeof b->data);
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void buf_u16(Buf *b, uint16_t v, int be)
{
    uint8_t p[2] = {be ? (uint8_t)(v >> 8) : (uint8_t)v, be ? (uint8_t)v : (uint8_t)(v >> 8)};
    buf_put(b, p, 2);
}

static void buf_u32(Buf *b, uint32_t v, int be)
{
    buf_u16(b, be ? (uint16_t)(v >> 16) : (uint16_t)v, be);
    buf_u16(b, be ? (uint16_t)v : (uint16_t)(v >> 16), be);
}

static void buf_tag(Buf *b, uint32_t tag, int be)
{
    buf_u16(b, (uint16_t)(tag >> 16), be);
    buf_u16(b, (uint16_t)tag, be);
}

/* Explicit VR element header (PS3.5 7.1.2); len may be MV_UNDEFINED_LENGTH for long VRs. */
static void buf_explicit(Buf *b, uint32_t tag, const char *vr, uint32_t len, int be)
{
    int long_form = strchr("OB OD OF OL OV OW SQ SV UC UN UR UT UV", vr[0]) != NULL &&
                    strstr("OB OD OF OL OV OW SQ SV UC UN UR UT UV", vr) != NULL;

    buf_tag(b, tag, be);
    buf_put(b, vr, 2);
    if (long_form) {
        buf_u16(b, 0, be);
        buf_u32(b, len, be);
    } else {
        buf_u16(b, (uint16_t)len, be);
    }
}

/* Implicit VR element header (PS3.5 7.1.3). */
static void buf_implicit(Buf *b, uint32_t tag, uint32_t len)
{
    buf_tag(b, tag, 0);
    buf_u32(b, len, 0);
}

/* Preamble, "DICM" and a File Meta Information with just the Transfer Syntax UID. */
static void buf_part10(Buf *b, const char *ts_uid)
{
    size_t n = strlen(ts_uid);
    static const uint8_t preamble[128];

    buf_put(b, preamble, sizeof preamble);
    buf_put(b, "DICM", 4);
    buf_explicit(b, MV_TAG(0x0002, 0x0010), "UI", (uint32_t)(n + (n & 1)), 0);
    buf_put(b, ts_uid, n);
    if (n & 1)
        buf_put(b, "", 1);
}

static MvFile *parse(const Buf *b)
{
    MvFile *file = NULL;
    MvError err;

    if (mv_file_from_memory(b->data, b->len, "test", NULL, &file, &err) != MV_OK)
        fail_msg("parse failed: %s", err.message);
    return file;
}

/* ---- Tests ----------------------------------------------------------------------- */

static void test_empty_dataset(void **state)
{
    MvFile *file = new_file();

    (void)state;
    assert_json(file, 0, 0, "{}");
    assert_json(file, MV_JSON_PRETTY, 0, "{}");
    mv_file_free(file);
}

/* F.2.4/F.2.5: values split on backslash, padding trimmed, empty values null; an element
 * of length 0 has no "Value"; keys in ascending tag order. */
static void test_multi_valued_strings(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);

    (void)state;
    set_string(ds, MV_TAG(0x0008, 0x0008), MV_VR_CS, "A \\ B\\\\C ");
    set_string(ds, MV_TAG(0x0008, 0x0050), MV_VR_SH, "");
    set_string(ds, MV_TAG(0x0008, 0x0018), MV_VR_UI, "1.2.3");
    set_bytes(ds, MV_TAG(0x0020, 0x000D), MV_VR_UI, "1.2.34\0", 8);
    set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "    ");
    set_string(ds, MV_TAG(0x0008, 0x0061), MV_VR_CS, "\\");
    assert_json(file, 0, 0,
                "{\"00080008\":{\"vr\":\"CS\",\"Value\":[\"A\",\"B\",null,\"C\"]},"
                "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"1.2.3\"]},"
                "\"00080050\":{\"vr\":\"SH\"},"
                "\"00080060\":{\"vr\":\"CS\"},"
                "\"00080061\":{\"vr\":\"CS\",\"Value\":[null,null]},"
                "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.34\"]}}");
    mv_file_free(file);
}

/* LT ST UT UR are single-valued; LT ST UT keep leading spaces (PS3.5 6.2). */
static void test_single_valued_text(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);

    (void)state;
    set_string(ds, MV_TAG(0x0008, 0x0081), MV_VR_ST, "  12 Main St\\Apt 3  ");
    set_string(ds, MV_TAG(0x0008, 0x010E), MV_VR_UR, " http://x/a\\b ");
    set_string(ds, MV_TAG(0x0010, 0x4000), MV_VR_LT, "line1\r\nline2 ");
    set_string(ds, MV_TAG(0x0040, 0xA160), MV_VR_UT, "x");
    assert_json(file, 0, 0,
                "{\"00080081\":{\"vr\":\"ST\",\"Value\":[\"  12 Main St\\\\Apt 3\"]},"
                "\"0008010E\":{\"vr\":\"UR\",\"Value\":[\"http://x/a\\\\b\"]},"
                "\"00104000\":{\"vr\":\"LT\",\"Value\":[\"line1\\u000D\\u000Aline2\"]},"
                "\"0040A160\":{\"vr\":\"UT\",\"Value\":[\"x\"]}}");
    mv_file_free(file);
}

/* JSON string escaping and valid UTF-8 whatever the bytes hold. */
static void test_escaping(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);

    (void)state;
    set_string(ds, MV_TAG(0x0008, 0x0005), MV_VR_CS, "ISO_IR 192");
    set_string(ds, MV_TAG(0x0010, 0x4000), MV_VR_LT, "q\"b\\s\x01\x1f\x7f/");
    /* A lone continuation byte and a truncated sequence: each becomes U+FFFD. */
    set_bytes(ds, MV_TAG(0x0008, 0x1030), MV_VR_LO, "a\x80" "b\xE2\x82", 5);
    assert_json(file, 0, 0,
                "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 192\"]},"
                "\"00081030\":{\"vr\":\"LO\",\"Value\":[\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\"]},"
                "\"00104000\":{\"vr\":\"LT\",\"Value\":[\"q\\\"b\\\\s\\u0001\\u001F\x7f/\"]}}");
    mv_file_free(file);
}

/* F.2.2: PN values are objects of their non-empty component groups. */
static void test_person_names(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);

    (void)state;
    set_string(ds, MV_TAG(0x0008, 0x0005), MV_VR_CS, "ISO_IR 192");
    set_string(ds, MV_TAG(0x0008, 0x0090), MV_VR_PN, "=Ideo^Only\\==\\\\Doe^Jane ");
    set_string(ds, MV_TAG(0x0010, 0x0010), MV_VR_PN,
               "Yamada^Tarou=\xE5\xB1\xB1\xE7\x94\xB0^\xE5\xA4\xAA\xE9\x83\x8E=\xE3\x82\x84\xE3\x81\xBE\xE3\x81\x9F^"
               "\xE3\x81\x9F\xE3\x82\x8D\xE3\x81\x86");
    set_string(ds, MV_TAG(0x0010, 0x1001), MV_VR_PN, "Smith^J==Phon");
    assert_json(file, 0, 0,
                "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 192\"]},"
                "\"00080090\":{\"vr\":\"PN\",\"Value\":[{\"Ideographic\":\"Ideo^Only\"},{},null,"
                "{\"Alphabetic\":\"Doe^Jane\"}]},"
                "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Yamada^Tarou\","
                "\"Ideographic\":\"\xE5\xB1\xB1\xE7\x94\xB0^\xE5\xA4\xAA\xE9\x83\x8E\","
                "\"Phonetic\":\"\xE3\x82\x84\xE3\x81\xBE\xE3\x81\x9F^\xE3\x81\x9F\xE3\x82\x8D\xE3\x81\x86\"}]},"
                "\"00101001\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Smith^J\",\"Phonetic\":\"Phon\"}]}}");
    mv_file_free(file);
}

/* Text is decoded with the Specific Character Set in force (here ISO 8859-1). */
static void test_character_set(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);

    (void)state;
    set_string(ds, MV_TAG(0x0008, 0x0005), MV_VR_CS, "ISO_IR 100");
    set_bytes(ds, MV_TAG(0x0010, 0x0010), MV_VR_PN, "Buc^J\xE9r\xF4me", 10);
    set_bytes(ds, MV_TAG(0x0010, 0x1040), MV_VR_LO, "Stra\xDF" "e 1\\K\xF6ln ", 14);
    assert_json(file, 0, 0,
                "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 100\"]},"
                "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Buc^J\xC3\xA9r\xC3\xB4me\"}]},"
                "\"00101040\":{\"vr\":\"LO\",\"Value\":[\"Stra\xC3\x9F" "e 1\",\"K\xC3\xB6ln\"]}}");
    mv_file_free(file);
}

/* F.2.3: IS and DS as JSON numbers with the decimal value of the text; not a number: a string. */
static void test_decimal_strings(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);

    (void)state;
    set_string(ds, MV_TAG(0x0018, 0x0050), MV_VR_DS, "+1.5\\.5\\1.\\1e3\\ 2 \\-0.0\\007\\-.25E-02\\\\00.10");
    set_string(ds, MV_TAG(0x0018, 0x0088), MV_VR_DS, "abc\\1.2.3\\1e\\.\\-\\NaN\\0x10 ");
    set_string(ds, MV_TAG(0x0020, 0x0013), MV_VR_IS, " -12\\+3\\0\\-007 ");
    set_string(ds, MV_TAG(0x0028, 0x1050), MV_VR_DS, "12345678901234567890.123456789");
    assert_json(file, 0, 0,
                "{\"00180050\":{\"vr\":\"DS\",\"Value\":[1.5,0.5,1,1e3,2,-0.0,7,-0.25E-02,null,0.10]},"
                "\"00180088\":{\"vr\":\"DS\",\"Value\":[\"abc\",\"1.2.3\",\"1e\",\".\",\"-\",\"NaN\",\"0x10\"]},"
                "\"00200013\":{\"vr\":\"IS\",\"Value\":[-12,3,0,-7]},"
                "\"00281050\":{\"vr\":\"DS\",\"Value\":[12345678901234567890.123456789]}}");
    mv_file_free(file);
}

/* Binary numbers in dataset byte order (little endian for a new file). */
static void test_binary_numbers(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);
    static const uint8_t us[] = {0x01, 0x00, 0xFF, 0xFF, 0x07};            /* 1, 65535, stray byte */
    static const uint8_t ss[] = {0xFB, 0xFF, 0x00, 0x80};                  /* -5, -32768 */
    static const uint8_t ul[] = {0xFF, 0xFF, 0xFF, 0xFF};                  /* 4294967295 */
    static const uint8_t sl[] = {0x00, 0x00, 0x00, 0x80};                  /* -2147483648 */
    static const uint8_t sv[] = {0, 0, 0, 0, 0, 0, 0, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    static const uint8_t uv[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    static const uint8_t at[] = {0x10, 0x00, 0x10, 0x00, 0xE0, 0x7F, 0x10, 0x00};
    static const uint8_t us_short[] = {0x01};
    float fl[] = {0.1f, 1.0f, -2.5e-8f, 3.4028235e38f, 16777216.0f};
    double fd[] = {0.1, 1.0 / 3.0, 1e300, -0.0, 5e-324};

    (void)state;
    set_bytes(ds, MV_TAG(0x0028, 0x0010), MV_VR_US, us, sizeof us);
    set_bytes(ds, MV_TAG(0x0028, 0x0011), MV_VR_US, us_short, sizeof us_short);
    set_bytes(ds, MV_TAG(0x0028, 0x0106), MV_VR_SS, ss, sizeof ss);
    set_bytes(ds, MV_TAG(0x0018, 0x6020), MV_VR_UL, ul, sizeof ul);
    set_bytes(ds, MV_TAG(0x0018, 0x6022), MV_VR_SL, sl, sizeof sl);
    set_bytes(ds, MV_TAG(0x0072, 0x0082), MV_VR_SV, sv, sizeof sv);
    set_bytes(ds, MV_TAG(0x0072, 0x0083), MV_VR_UV, uv, sizeof uv);
    set_bytes(ds, MV_TAG(0x0020, 0x5000), MV_VR_AT, at, sizeof at);
    set_bytes(ds, MV_TAG(0x0018, 0x9087), MV_VR_FD, fd, sizeof fd);
    set_bytes(ds, MV_TAG(0x0018, 0x9089), MV_VR_FL, fl, sizeof fl);
    assert_json(file, 0, 0,
                "{\"00186020\":{\"vr\":\"UL\",\"Value\":[4294967295]},"
                "\"00186022\":{\"vr\":\"SL\",\"Value\":[-2147483648]},"
                "\"00189087\":{\"vr\":\"FD\",\"Value\":[0.1,0.3333333333333333,1e+300,-0,5e-324]},"
                "\"00189089\":{\"vr\":\"FL\",\"Value\":[0.1,1,-2.5e-08,3.4028235e+38,16777216]},"
                "\"00205000\":{\"vr\":\"AT\",\"Value\":[\"00100010\",\"7FE00010\"]},"
                "\"00280010\":{\"vr\":\"US\",\"Value\":[1,65535]},"
                "\"00280011\":{\"vr\":\"US\"},"
                "\"00280106\":{\"vr\":\"SS\",\"Value\":[-5,-32768]},"
                "\"00720082\":{\"vr\":\"SV\",\"Value\":[-9223372036854775808,9223372036854775807]},"
                "\"00720083\":{\"vr\":\"UV\",\"Value\":[18446744073709551615]}}");
    mv_file_free(file);
}

/* JSON has no NaN or infinity: they are written as strings. */
static void test_float_specials(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);
    float fl[3];
    double fd[2];
    uint32_t nan32 = 0x7FC00000u, inf32 = 0xFF800000u;
    uint64_t inf64 = 0x7FF0000000000000ull, nan64 = 0xFFF8000000000001ull;

    (void)state;
    memcpy(&fl[0], &nan32, 4);
    memcpy(&fl[1], &inf32, 4);
    fl[2] = 2.0f;
    memcpy(&fd[0], &inf64, 8);
    memcpy(&fd[1], &nan64, 8);
    set_bytes(ds, MV_TAG(0x0018, 0x9089), MV_VR_FL, fl, sizeof fl);
    set_bytes(ds, MV_TAG(0x0018, 0x9087), MV_VR_FD, fd, sizeof fd);
    assert_json(file, 0, 0,
                "{\"00189087\":{\"vr\":\"FD\",\"Value\":[\"Infinity\",\"NaN\"]},"
                "\"00189089\":{\"vr\":\"FL\",\"Value\":[\"NaN\",\"-Infinity\",2]}}");
    mv_file_free(file);
}

/* F.2.7: InlineBinary up to the bulk threshold, left out above it unless MV_JSON_BULK. */
static void test_inline_binary(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);
    uint8_t big[1025];
    char *text;

    (void)state;
    set_bytes(ds, MV_TAG(0x0009, 0x0010), MV_VR_LO, "ACME", 4);
    set_bytes(ds, MV_TAG(0x0009, 0x1001), MV_VR_UN, "\x00\x01\x02\x03\x04", 5);
    set_bytes(ds, MV_TAG(0x0028, 0x1201), MV_VR_OW, "\x12\x34\x56\x78", 4);
    set_bytes(ds, MV_TAG(0x0042, 0x0011), MV_VR_OB, "", 0);
    set_bytes(ds, MV_TAG(0x0066, 0x0040), MV_VR_OL, "ab", 2);
    assert_json(file, 0, 0,
                "{\"00090010\":{\"vr\":\"LO\",\"Value\":[\"ACME\"]},"
                "\"00091001\":{\"vr\":\"UN\",\"InlineBinary\":\"AAECAwQ=\"},"
                "\"00281201\":{\"vr\":\"OW\",\"InlineBinary\":\"EjRWeA==\"},"
                "\"00420011\":{\"vr\":\"OB\"},"
                "\"00660040\":{\"vr\":\"OL\",\"InlineBinary\":\"YWI=\"}}");
    /* Threshold 4: the 5-byte UN value is left out, the 4-byte OW value is not. */
    assert_json(file, 0, 4,
                "{\"00090010\":{\"vr\":\"LO\",\"Value\":[\"ACME\"]},"
                "\"00091001\":{\"vr\":\"UN\"},"
                "\"00281201\":{\"vr\":\"OW\",\"InlineBinary\":\"EjRWeA==\"},"
                "\"00420011\":{\"vr\":\"OB\"},"
                "\"00660040\":{\"vr\":\"OL\",\"InlineBinary\":\"YWI=\"}}");
    assert_json(file, MV_JSON_BULK, 4,
                "{\"00090010\":{\"vr\":\"LO\",\"Value\":[\"ACME\"]},"
                "\"00091001\":{\"vr\":\"UN\",\"InlineBinary\":\"AAECAwQ=\"},"
                "\"00281201\":{\"vr\":\"OW\",\"InlineBinary\":\"EjRWeA==\"},"
                "\"00420011\":{\"vr\":\"OB\"},"
                "\"00660040\":{\"vr\":\"OL\",\"InlineBinary\":\"YWI=\"}}");

    /* Default threshold 1024 bytes: 1024 are written (1368 base64 characters), 1025 only with
     * MV_JSON_BULK (1368 characters too, with other padding). */
    mv_file_free(file);
    file = new_file();
    ds = mv_file_dataset(file);
    memset(big, 0, sizeof big);
    set_bytes(ds, MV_TAG(0x7FE0, 0x0010), MV_VR_OB, big, 1024);
    text = json_of(file, 0, 0);
    assert_int_equal(strlen(text), strlen("{\"7FE00010\":{\"vr\":\"OB\",\"InlineBinary\":\"\"}}") + 1368);
    assert_non_null(strstr(text, "\"InlineBinary\":\"AAAA"));
    free(text);
    set_bytes(ds, MV_TAG(0x7FE0, 0x0010), MV_VR_OB, big, 1025);
    assert_json(file, 0, 0, "{\"7FE00010\":{\"vr\":\"OB\"}}");
    text = json_of(file, MV_JSON_BULK, 0);
    assert_int_equal(strlen(text), strlen("{\"7FE00010\":{\"vr\":\"OB\",\"InlineBinary\":\"\"}}") + 1368);
    assert_non_null(strstr(text, "AAA=\"}}"));
    free(text);
    mv_file_free(file);
}

/* F.2.5: a sequence without items has no "Value"; an empty item is {}; nested items. */
static void test_sequences(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file), *item, *inner;
    MvElement *seq, *nested;
    MvError err;

    (void)state;
    assert_int_equal(mv_dataset_set_sequence(ds, MV_TAG(0x0008, 0x1110), &seq, &err), MV_OK);
    assert_int_equal(mv_dataset_set_sequence(ds, MV_TAG(0x0008, 0x1115), &seq, &err), MV_OK);
    assert_int_equal(mv_element_insert_item(seq, MV_APPEND, &item, &err), MV_OK);
    assert_int_equal(mv_element_insert_item(seq, MV_APPEND, &item, &err), MV_OK);
    set_string(item, MV_TAG(0x0020, 0x000E), MV_VR_UI, "1.2.3.4");
    assert_int_equal(mv_dataset_set_sequence(item, MV_TAG(0x0008, 0x1199), &nested, &err), MV_OK);
    assert_int_equal(mv_element_insert_item(nested, MV_APPEND, &inner, &err), MV_OK);
    set_string(inner, MV_TAG(0x0008, 0x1150), MV_VR_UI, "1.2");
    assert_json(file, 0, 0,
                "{\"00081110\":{\"vr\":\"SQ\"},"
                "\"00081115\":{\"vr\":\"SQ\",\"Value\":[{},"
                "{\"00081199\":{\"vr\":\"SQ\",\"Value\":[{\"00081150\":{\"vr\":\"UI\",\"Value\":[\"1.2\"]}}]},"
                "\"0020000E\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.4\"]}}]}}");
    assert_json(file, MV_JSON_PRETTY, 0,
                "{\n"
                "  \"00081110\": {\n"
                "    \"vr\": \"SQ\"\n"
                "  },\n"
                "  \"00081115\": {\n"
                "    \"vr\": \"SQ\",\n"
                "    \"Value\": [\n"
                "      {},\n"
                "      {\n"
                "        \"00081199\": {\n"
                "          \"vr\": \"SQ\",\n"
                "          \"Value\": [\n"
                "            {\n"
                "              \"00081150\": {\n"
                "                \"vr\": \"UI\",\n"
                "                \"Value\": [\n"
                "                  \"1.2\"\n"
                "                ]\n"
                "              }\n"
                "            }\n"
                "          ]\n"
                "        },\n"
                "        \"0020000E\": {\n"
                "          \"vr\": \"UI\",\n"
                "          \"Value\": [\n"
                "            \"1.2.3.4\"\n"
                "          ]\n"
                "        }\n"
                "      }\n"
                "    ]\n"
                "  }\n"
                "}");
    mv_file_free(file);
}

/* MV_JSON_PRETTY: two spaces per level, PN objects and binary members included. */
static void test_pretty(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);

    (void)state;
    set_string(ds, MV_TAG(0x0010, 0x0010), MV_VR_PN, "Doe^John=\\Roe");
    set_string(ds, MV_TAG(0x0010, 0x0020), MV_VR_LO, "");
    set_bytes(ds, MV_TAG(0x0028, 0x1201), MV_VR_OW, "\x12\x34\x56\x78", 4);
    assert_json(file, MV_JSON_PRETTY, 0,
                "{\n"
                "  \"00100010\": {\n"
                "    \"vr\": \"PN\",\n"
                "    \"Value\": [\n"
                "      {\n"
                "        \"Alphabetic\": \"Doe^John\"\n"
                "      },\n"
                "      {\n"
                "        \"Alphabetic\": \"Roe\"\n"
                "      }\n"
                "    ]\n"
                "  },\n"
                "  \"00100020\": {\n"
                "    \"vr\": \"LO\"\n"
                "  },\n"
                "  \"00281201\": {\n"
                "    \"vr\": \"OW\",\n"
                "    \"InlineBinary\": \"EjRWeA==\"\n"
                "  }\n"
                "}");
    mv_file_free(file);
}

/* F.2.2: no Group Length elements; group 0002 only with MV_JSON_META, first. */
static void test_group_length_and_meta(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file), *meta = mv_file_meta(file);
    static const uint8_t length[] = {0x10, 0, 0, 0};

    (void)state;
    set_bytes(meta, MV_TAG(0x0002, 0x0000), MV_VR_UL, length, 4);
    set_string(meta, MV_TAG(0x0002, 0x0010), MV_VR_UI, "1.2.840.10008.1.2.1");
    set_bytes(ds, MV_TAG(0x0008, 0x0000), MV_VR_UL, length, 4);
    set_bytes(ds, MV_TAG(0x0009, 0x0000), MV_VR_UL, length, 4);
    set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "OT");
    assert_json(file, 0, 0, "{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"OT\"]}}");
    assert_json(file, MV_JSON_META, 0,
                "{\"00020010\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.1.2.1\"]},"
                "\"00080060\":{\"vr\":\"CS\",\"Value\":[\"OT\"]}}");
    mv_file_free(file);
}

/* Explicit VR big endian: numbers read in that order, binary values swapped to little
 * endian per unit (F.2.7: the PS3.5 byte ordering rules apply). */
static void test_big_endian(void **state)
{
    Buf b = {{0}, 0};
    MvFile *file;

    (void)state;
    buf_part10(&b, MV_UID_EXPLICIT_BE);
    buf_explicit(&b, MV_TAG(0x0008, 0x0060), "CS", 2, 1);
    buf_put(&b, "MR", 2);
    buf_explicit(&b, MV_TAG(0x0018, 0x1310), "US", 4, 1);
    buf_u16(&b, 256, 1);
    buf_u16(&b, 2, 1);
    buf_explicit(&b, MV_TAG(0x0020, 0x5000), "AT", 4, 1);
    buf_tag(&b, MV_TAG(0x0010, 0x0020), 1);
    buf_explicit(&b, MV_TAG(0x0028, 0x1201), "OW", 4, 1);
    buf_put(&b, "\x12\x34\x56\x78", 4);
    buf_explicit(&b, MV_TAG(0x0066, 0x0040), "OL", 6, 1);
    buf_put(&b, "\x01\x02\x03\x04\x05\x06", 6);
    buf_explicit(&b, MV_TAG(0x7FE0, 0x0010), "OB", 3, 1);
    buf_put(&b, "\x01\x02\x03", 3);
    file = parse(&b);
    assert_json(file, 0, 0,
                "{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"MR\"]},"
                "\"00181310\":{\"vr\":\"US\",\"Value\":[256,2]},"
                "\"00205000\":{\"vr\":\"AT\",\"Value\":[\"00100020\"]},"
                "\"00281201\":{\"vr\":\"OW\",\"InlineBinary\":\"NBJ4Vg==\"},"
                "\"00660040\":{\"vr\":\"OL\",\"InlineBinary\":\"BAMCAQUG\"},"
                "\"7FE00010\":{\"vr\":\"OB\",\"InlineBinary\":\"AQID\"}}");
    mv_file_free(file);
}

/* Implicit VR: "US or SS" follows Pixel Representation, also from an enclosing dataset;
 * Private Creators are LO, unknown private elements UN (PS3.5 6.2.2, 7.8.1). */
static void test_implicit_vr(void **state)
{
    Buf b = {{0}, 0};
    MvFile *file;

    (void)state;
    buf_part10(&b, MV_UID_IMPLICIT_LE);
    buf_implicit(&b, MV_TAG(0x0009, 0x0010), 4);
    buf_put(&b, "ACME", 4);
    buf_implicit(&b, MV_TAG(0x0009, 0x1001), 2);
    buf_put(&b, "\xFF\x01", 2);
    buf_implicit(&b, MV_TAG(0x0028, 0x0103), 2);
    buf_u16(&b, 1, 0);
    buf_implicit(&b, MV_TAG(0x0028, 0x0106), 2);
    buf_u16(&b, 0xFFFB, 0);
    /* Real World Value Mapping Sequence, one item with a "US or SS" element. */
    buf_implicit(&b, MV_TAG(0x0040, 0x9096), 18);
    buf_tag(&b, MV_TAG(0xFFFE, 0xE000), 0);
    buf_u32(&b, 10, 0);
    buf_implicit(&b, MV_TAG(0x0040, 0x9216), 2);
    buf_u16(&b, 0x8000, 0);
    file = parse(&b);
    assert_json(file, 0, 0,
                "{\"00090010\":{\"vr\":\"LO\",\"Value\":[\"ACME\"]},"
                "\"00091001\":{\"vr\":\"UN\",\"InlineBinary\":\"/wE=\"},"
                "\"00280103\":{\"vr\":\"US\",\"Value\":[1]},"
                "\"00280106\":{\"vr\":\"SS\",\"Value\":[-5]},"
                "\"00409096\":{\"vr\":\"SQ\",\"Value\":[{\"00409216\":{\"vr\":\"SS\",\"Value\":[-32768]}}]}}");
    mv_file_free(file);
}

/* Without Pixel Representation 1, an implicit "US or SS" element is US. */
static void test_implicit_us_default(void **state)
{
    Buf b = {{0}, 0};
    MvFile *file;

    (void)state;
    buf_part10(&b, MV_UID_IMPLICIT_LE);
    buf_implicit(&b, MV_TAG(0x0028, 0x0106), 2);
    buf_u16(&b, 0xFFFB, 0);
    file = parse(&b);
    assert_json(file, 0, 0, "{\"00280106\":{\"vr\":\"US\",\"Value\":[65531]}}");
    mv_file_free(file);
}

/* Implicit VR "US or OW" LUT Data is OW, US when the LUT Descriptor counts one entry. */
static void test_implicit_lut_data(void **state)
{
    Buf b = {{0}, 0};
    MvFile *file;

    (void)state;
    buf_part10(&b, MV_UID_IMPLICIT_LE);
    buf_implicit(&b, MV_TAG(0x0028, 0x3010), 2 * (8 + 6 + 8 + 4) + 2 * 8);
    for (uint16_t entries = 2; entries > 0; entries--) {
        buf_tag(&b, MV_TAG(0xFFFE, 0xE000), 0);
        buf_u32(&b, 8 + 6 + 8 + 4, 0);
        buf_implicit(&b, MV_TAG(0x0028, 0x3002), 6);
        buf_u16(&b, entries, 0);
        buf_u16(&b, 0, 0);
        buf_u16(&b, 16, 0);
        buf_implicit(&b, MV_TAG(0x0028, 0x3006), 4);
        buf_u16(&b, 0x1234, 0);
        buf_u16(&b, 0x5678, 0);
    }
    file = parse(&b);
    assert_json(file, 0, 0,
                "{\"00283010\":{\"vr\":\"SQ\",\"Value\":["
                "{\"00283002\":{\"vr\":\"US\",\"Value\":[2,0,16]},"
                "\"00283006\":{\"vr\":\"OW\",\"InlineBinary\":\"NBJ4Vg==\"}},"
                "{\"00283002\":{\"vr\":\"US\",\"Value\":[1,0,16]},"
                "\"00283006\":{\"vr\":\"US\",\"Value\":[4660,22136]}}]}}");
    mv_file_free(file);
}

/* Encapsulated pixel data (PS3.5 A.4): left out, or with MV_JSON_BULK the item stream. */
static void test_encapsulated(void **state)
{
    Buf b = {{0}, 0};
    MvFile *file;

    (void)state;
    buf_part10(&b, "1.2.840.10008.1.2.4.50");
    buf_explicit(&b, MV_TAG(0x0028, 0x0010), "US", 2, 0);
    buf_u16(&b, 1, 0);
    buf_explicit(&b, MV_TAG(0x7FE0, 0x0010), "OB", MV_UNDEFINED_LENGTH, 0);
    buf_tag(&b, MV_TAG(0xFFFE, 0xE000), 0);
    buf_u32(&b, 0, 0);
    buf_tag(&b, MV_TAG(0xFFFE, 0xE000), 0);
    buf_u32(&b, 4, 0);
    buf_put(&b, "\x01\x02\x03\x04", 4);
    buf_tag(&b, MV_TAG(0xFFFE, 0xE0DD), 0);
    buf_u32(&b, 0, 0);
    file = parse(&b);
    assert_json(file, 0, 0, "{\"00280010\":{\"vr\":\"US\",\"Value\":[1]},\"7FE00010\":{\"vr\":\"OB\"}}");
    assert_json(file, MV_JSON_BULK, 0,
                "{\"00280010\":{\"vr\":\"US\",\"Value\":[1]},"
                "\"7FE00010\":{\"vr\":\"OB\",\"InlineBinary\":\"/v8A4AAAAAD+/wDgBAAAAAECAwT+/93gAAAAAA==\"}}");
    mv_file_free(file);
}

/* UN of undefined length holding items (PS3.5 6.2.2) is written as a sequence. */
static void test_un_sequence(void **state)
{
    Buf b = {{0}, 0};
    MvFile *file;

    (void)state;
    buf_part10(&b, MV_UID_EXPLICIT_LE);
    buf_explicit(&b, MV_TAG(0x0019, 0x0010), "LO", 4, 0);
    buf_put(&b, "ACME", 4);
    buf_explicit(&b, MV_TAG(0x0019, 0x1001), "UN", MV_UNDEFINED_LENGTH, 0);
    buf_tag(&b, MV_TAG(0xFFFE, 0xE000), 0);
    buf_u32(&b, MV_UNDEFINED_LENGTH, 0);
    buf_implicit(&b, MV_TAG(0x0008, 0x0100), 6);
    buf_put(&b, "T-D1A ", 6);
    buf_tag(&b, MV_TAG(0xFFFE, 0xE00D), 0);
    buf_u32(&b, 0, 0);
    buf_tag(&b, MV_TAG(0xFFFE, 0xE0DD), 0);
    buf_u32(&b, 0, 0);
    file = parse(&b);
    assert_json(file, 0, 0,
                "{\"00190010\":{\"vr\":\"LO\",\"Value\":[\"ACME\"]},"
                "\"00191001\":{\"vr\":\"SQ\",\"Value\":[{\"00080100\":{\"vr\":\"SH\",\"Value\":[\"T-D1A\"]}}]}}");
    mv_file_free(file);
}

/* A stream that cannot be written gives MV_ERR_IO, and the message holds no value. */
static void test_write_error(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);
    MvJsonOptions opts = {0, 0};
    MvError err;
    FILE *out = fopen("/dev/full", "w");

    (void)state;
    if (out == NULL)
        skip();
    setvbuf(out, NULL, _IONBF, 0);
    set_string(ds, MV_TAG(0x0010, 0x0010), MV_VR_PN, "Secret^Name");
    assert_int_equal(mv_json_write(file, out, &opts, &err), MV_ERR_IO);
    assert_int_equal(err.code, MV_ERR_IO);
    assert_null(strstr(err.message, "Secret"));
    fclose(out);
    mv_file_free(file);
}

/* NULL options mean the defaults: compact, threshold 1024, no meta. */
static void test_null_options(void **state)
{
    MvFile *file = new_file();
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    (void)state;
    set_string(mv_file_dataset(file), MV_TAG(0x0008, 0x0060), MV_VR_CS, "CT");
    assert_int_equal(mv_json_write(file, out, NULL, NULL), MV_OK);
    fclose(out);
    assert_string_equal(text, "{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"CT\"]}}");
    free(text);
    mv_file_free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_dataset),
        cmocka_unit_test(test_multi_valued_strings),
        cmocka_unit_test(test_single_valued_text),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_person_names),
        cmocka_unit_test(test_character_set),
        cmocka_unit_test(test_decimal_strings),
        cmocka_unit_test(test_binary_numbers),
        cmocka_unit_test(test_float_specials),
        cmocka_unit_test(test_inline_binary),
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_pretty),
        cmocka_unit_test(test_group_length_and_meta),
        cmocka_unit_test(test_big_endian),
        cmocka_unit_test(test_implicit_vr),
        cmocka_unit_test(test_implicit_us_default),
        cmocka_unit_test(test_implicit_lut_data),
        cmocka_unit_test(test_encapsulated),
        cmocka_unit_test(test_un_sequence),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_null_options),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
