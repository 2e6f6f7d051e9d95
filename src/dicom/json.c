/* The DICOM JSON model of PS3.18 Annex F.2: a file's dataset written as one JSON object,
 * keyed by tag, with text decoded to UTF-8, numbers as JSON numbers and binary values as
 * base64. Output goes through a small buffer of its own to the caller's FILE *; nothing
 * of the dataset is copied except the decoded text of one element at a time. */
#include <assert.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom_int.h"

#define DEFAULT_BULK_THRESHOLD 1024u
#define OUT_BUF_SIZE 16384u

typedef struct Json {
    FILE *out;
    MvError *err;
    MvStatus status;      /* sticky: once set, every further write is skipped */
    unsigned flags;       /* MV_JSON_* */
    size_t bulk_threshold;
    size_t len;           /* bytes waiting in buf */
    char buf[OUT_BUF_SIZE];
} Json;

/* Base64 encoder state for a value given in several pieces. */
typedef struct B64 {
    uint8_t pending[3];
    size_t n_pending;
} B64;

static const char hex_digits[] = "0123456789ABCDEF";
static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ---- Output ------------------------------------------------------------------------ */

/* Hands n bytes to the stream; a short write makes MV_ERR_IO the sticky status. */
static void write_out(Json *j, const char *s, size_t n)
{
    if (j->status != MV_OK || n == 0)
        return;
    errno = 0;
    if (fwrite(s, 1, n, j->out) != n)
        j->status = mv_error_set(j->err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot write JSON output: %s",
                                 strerror(errno != 0 ? errno : EIO));
}

static void flush_buf(Json *j)
{
    write_out(j, j->buf, j->len);
    j->len = 0;
}

static void put(Json *j, const char *s, size_t n)
{
    if (j->status != MV_OK)
        return;
    if (n > OUT_BUF_SIZE - j->len) {
        flush_buf(j);
        if (n >= OUT_BUF_SIZE) {
            write_out(j, s, n);
            return;
        }
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

static void put_char(Json *j, char c)
{
    if (j->len == OUT_BUF_SIZE)
        flush_buf(j);
    if (j->status == MV_OK)
        j->buf[j->len++] = c;
}

static void put_str(Json *j, const char *s)
{
    put(j, s, strlen(s));
}

/* MV_JSON_PRETTY: a line break and two spaces per level; nothing in compact output. */
static void newline(Json *j, unsigned level)
{
    static const char spaces[] = "                                ";

    if (!(j->flags & MV_JSON_PRETTY))
        return;
    put_char(j, '\n');
    for (size_t n = (size_t)level * 2; n > 0;) {
        size_t chunk = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        put(j, spaces, chunk);
        n -= chunk;
    }
}

/* Writes "name": (with a space after the colon when pretty). */
static void put_name(Json *j, const char *name)
{
    put_char(j, '"');
    put_str(j, name);
    put(j, "\":", 2);
    if (j->flags & MV_JSON_PRETTY)
        put_char(j, ' ');
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0 if the bytes
 * there are not one (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_sequence(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;

    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need;
}

/* Writes n bytes of UTF-8 text as a JSON string: '"' and '\' escaped, control characters
 * as \u00XX, and any byte that is not part of well-formed UTF-8 replaced by U+FFFD, so the
 * output is valid JSON whatever the text holds. */
static void put_json_string(Json *j, const char *text, size_t n)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;

    put_char(j, '"');
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            put(j, (const char *)s + i, run - i);
            i = run;
            continue;
        }
        if (s[i] == '"' || s[i] == '\\') {
            char esc[2] = {'\\', (char)s[i]};
            put(j, esc, 2);
            i++;
        } else if (s[i] < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex_digits[s[i] >> 4], hex_digits[s[i] & 0xF]};
            put(j, esc, 6);
            i++;
        } else {
            size_t len = utf8_sequence(s + i, n - i);
            if (len == 0) {
                put(j, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                put(j, (const char *)s + i, len);
                i += len;
            }
        }
    }
    put_char(j, '"');
}

/* ---- Base64 (RFC 4648, with padding) ------------------------------------------------- */

static void b64_quantum(Json *j, const uint8_t *in)
{
    char quad[4];

    quad[0] = b64_alphabet[in[0] >> 2];
    quad[1] = b64_alphabet[((in[0] & 0x03) << 4) | (in[1] >> 4)];
    quad[2] = b64_alphabet[((in[1] & 0x0F) << 2) | (in[2] >> 6)];
    quad[3] = b64_alphabet[in[2] & 0x3F];
    put(j, quad, 4);
}

static void b64_feed(Json *j, B64 *b, const uint8_t *data, size_t n)
{
    char chunk[4 * 256];
    size_t used = 0;

    while (n > 0 && b->n_pending > 0 && b->n_pending < 3) {
        b->pending[b->n_pending++] = *data++;
        n--;
    }
    if (b->n_pending == 3) {
        b64_quantum(j, b->pending);
        b->n_pending = 0;
    }
    /* Whole quanta straight from the input, 256 at a time. */
    while (n >= 3) {
        chunk[used++] = b64_alphabet[data[0] >> 2];
        chunk[used++] = b64_alphabet[((data[0] & 0x03) << 4) | (data[1] >> 4)];
        chunk[used++] = b64_alphabet[((data[1] & 0x0F) << 2) | (data[2] >> 6)];
        chunk[used++] = b64_alphabet[data[2] & 0x3F];
        data += 3;
        n -= 3;
        if (used == sizeof chunk) {
            put(j, chunk, used);
            used = 0;
        }
    }
    if (used > 0)
        put(j, chunk, used);
    while (n > 0) {
        b->pending[b->n_pending++] = *data++;
        n--;
    }
}

static void b64_finish(Json *j, B64 *b)
{
    char quad[4];

    if (b->n_pending == 0)
        return;
    if (b->n_pending == 1)
        b->pending[1] = 0;
    b->pending[2] = 0;
    quad[0] = b64_alphabet[b->pending[0] >> 2];
    quad[1] = b64_alphabet[((b->pending[0] & 0x03) << 4) | (b->pending[1] >> 4)];
    quad[2] = b->n_pending == 2 ? b64_alphabet[(b->pending[1] & 0x0F) << 2] : '=';
    quad[3] = '=';
    put(j, quad, 4);
    b->n_pending = 0;
}

/* Feeds n value bytes, turning each unit of a big endian dataset into little endian
 * (PS3.18 F.2.7 applies the PS3.5 byte ordering rules, and 8.7.3 gives uncompressed bulk
 * data in little endian order). A trailing partial unit is copied as it is. */
static void b64_feed_swapped(Json *j, B64 *b, const uint8_t *data, size_t n, size_t unit, int big_endian)
{
    uint8_t block[3072]; /* a multiple of 3 and of every unit size */
    size_t whole;

    if (!big_endian || unit <= 1) {
        b64_feed(j, b, data, n);
        return;
    }
    whole = n - n % unit;
    while (whole > 0) {
        size_t chunk = whole < sizeof block ? whole : sizeof block;
        for (size_t u = 0; u < chunk; u += unit)
            for (size_t k = 0; k < unit; k++)
                block[u + k] = data[u + unit - 1 - k];
        b64_feed(j, b, block, chunk);
        data += chunk;
        whole -= chunk;
        n -= chunk;
    }
    b64_feed(j, b, data, n);
}

/* ---- Element values ---------------------------------------------------------------- */

/* Starts member "Value": [ of an element object at level. */
static void open_value_array(Json *j, unsigned level)
{
    put_char(j, ',');
    newline(j, level);
    put_name(j, "Value");
    put_char(j, '[');
}

/* Separator and indentation before array entry index (level of the element object). */
static void next_entry(Json *j, size_t index, unsigned level)
{
    if (index > 0)
        put_char(j, ',');
    newline(j, level + 1);
}

static void close_value_array(Json *j, unsigned level)
{
    newline(j, level);
    put_char(j, ']');
}

static int is_padding(char c)
{
    return c == ' ' || c == '\0';
}

/* Writes a DS or IS value as a JSON number with the same decimal value: "+1.5" -> 1.5,
 * ".5" -> 0.5, "1." -> 1, "007" -> 7, "1E+03" stays. Returns 0 without writing anything
 * if the text is not a decimal number in the PS3.5 sense. */
static int put_decimal(Json *j, const char *s, size_t n)
{
    size_t i = 0, int_start, int_end, frac_start, frac_end, exp_start;

    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    int_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    int_end = i;
    frac_start = frac_end = i;
    if (i < n && s[i] == '.') {
        i++;
        frac_start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        frac_end = i;
    }
    if (int_end == int_start && frac_end == frac_start)
        return 0;
    exp_start = i;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t digits;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        digits = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == digits)
            return 0;
    }
    if (i != n)
        return 0;

    if (s[0] == '-')
        put_char(j, '-');
    while (int_start + 1 < int_end && s[int_start] == '0')
        int_start++;
    if (int_start == int_end)
        put_char(j, '0');
    else
        put(j, s + int_start, int_end - int_start);
    if (frac_end > frac_start) {
        put_char(j, '.');
        put(j, s + frac_start, frac_end - frac_start);
    }
    put(j, s + exp_start, n - exp_start);
    return 1;
}

/* Text VRs (PS3.5 6.2). The whole value is decoded to UTF-8 first and split afterwards:
 * 05/12 is never part of a multi-byte UTF-8 character, while it may be the second byte
 * of a GBK character or appear inside an ISO 2022 escape run before decoding. */
static MvStatus put_text(Json *j, const MvDataset *ds, const MvElement *el, MvVr vr, unsigned level)
{
    char *text = NULL;
    size_t text_len, start = 0, index = 0;
    int single = vr == MV_VR_LT || vr == MV_VR_ST || vr == MV_VR_UT || vr == MV_VR_UR;
    int keep_leading = vr == MV_VR_LT || vr == MV_VR_ST || vr == MV_VR_UT;
    MvStatus st;

    /* Every text VR is decoded under the character set in force, not only those PS3.5
     * 6.1.2.3 lets it apply to: bytes outside the default repertoire in, say, a CS value
     * are invalid either way, and the dataset's set is the best guess at their meaning
     * (ASCII text decodes the same under every set). Trailing padding is not value. */
    {
        const uint8_t *v = el->value;
        size_t n = el->value_len;
        while (n > 0 && is_padding((char)v[n - 1]))
            n--;
        st = mv_charset_to_utf8(mv_dataset_charset(ds), vr, v, n, &text, &text_len, NULL, NULL);
    }
    if (st != MV_OK) {
        st = mv_error_set(j->err, st, el->tag, el->offset, "(%04X,%04X): cannot decode text value (%s)",
                          MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag), mv_status_name(st));
        goto out;
    }
    /* Trailing padding is gone: a value of padding only is an empty element (PS3.18
     * F.2.5) and has no "Value". */
    if (text_len == 0)
        goto out;
    open_value_array(j, level);
    for (;;) {
        size_t end = start, vstart, vend;

        if (!single) {
            const char *bs = memchr(text + start, '\\', text_len - start);
            end = bs != NULL ? (size_t)(bs - text) : text_len;
        } else {
            end = text_len;
        }
        vstart = start;
        vend = end;
        if (!keep_leading)
            while (vstart < vend && text[vstart] == ' ')
                vstart++;
        while (vend > vstart && is_padding(text[vend - 1]))
            vend--;

        next_entry(j, index++, level);
        if (vend == vstart) {
            /* PS3.18 F.2.5: an empty value of a multi-valued element is null. */
            put(j, "null", 4);
        } else if (vr == MV_VR_DS || vr == MV_VR_IS) {
            if (!put_decimal(j, text + vstart, vend - vstart))
                put_json_string(j, text + vstart, vend - vstart);
        } else if (vr == MV_VR_PN) {
            /* PS3.5 6.2.1.1: up to three component groups separated by '='; PS3.18 F.2.2:
             * only the non-empty ones are written. Groups past the third are dropped. */
            static const char *const group_names[3] = {"Alphabetic", "Ideographic", "Phonetic"};
            size_t g_start = vstart, n_written = 0;
            put_char(j, '{');
            for (int g = 0; g < 3 && g_start <= vend; g++) {
                const char *eq = memchr(text + g_start, '=', vend - g_start);
                size_t g_end = eq != NULL ? (size_t)(eq - text) : vend;
                if (g_end > g_start) {
                    if (n_written++ > 0)
                        put_char(j, ',');
                    newline(j, level + 2);
                    put_name(j, group_names[g]);
                    put_json_string(j, text + g_start, g_end - g_start);
                }
                if (eq == NULL)
                    break;
                g_start = g_end + 1;
            }
            if (n_written > 0)
                newline(j, level + 1);
            put_char(j, '}');
        } else {
            put_json_string(j, text + vstart, vend - vstart);
        }
        if (end >= text_len)
            break;
        start = end + 1;
    }
    close_value_array(j, level);
out:
    free(text);
    return st != MV_OK ? st : j->status;
}

/* Writes d as the shortest decimal text that reads back as the same float (or double);
 * NaN and the infinities, which JSON numbers cannot hold, as the strings "NaN",
 * "Infinity" and "-Infinity". */
static void put_float(Json *j, double d, int single)
{
    char text[40], clean[40];
    size_t n = 0;

    if (isnan(d)) {
        put_str(j, "\"NaN\"");
        return;
    }
    if (isinf(d)) {
        put_str(j, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    /* 6 (float) or 15 (double) significant digits always hold the shortest text of a
     * normal number; subnormal ones have fewer digits of precision, so start lower. */
    for (int prec = fabs(d) < (single ? FLT_MIN : DBL_MIN) ? 1 : single ? 6 : 15; prec <= (single ? 9 : 17);
         prec++) {
        snprintf(text, sizeof text, "%.*g", prec, d);
        if (single ? strtof(text, NULL) == (float)d : strtod(text, NULL) == d)
            break;
    }
    /* The decimal point is the locale's; JSON wants '.'. */
    for (const char *p = text; *p != '\0' && n + 1 < sizeof clean; p++) {
        if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == 'e')
            clean[n++] = *p;
        else if (n == 0 || clean[n - 1] != '.')
            clean[n++] = '.';
    }
    put(j, clean, n);
}

/* US SS UL SL FL FD SV UV: one JSON number per whole unit; bytes of a last partial unit
 * (a malformed length) are not shown. AT: "GGGGEEEE" strings (PS3.18 F.2.3). */
static MvStatus put_binary_numbers(Json *j, const MvDataset *ds, const MvElement *el, MvVr vr, unsigned level)
{
    size_t unit = mv_vr_unit_size(vr), n_values = el->value_len / unit;
    const uint8_t *p = el->value;
    int be = ds->big_endian;
    char text[32];

    if (n_values == 0)
        return j->status;
    open_value_array(j, level);
    for (size_t i = 0; i < n_values; i++, p += unit) {
        int len = 0;
        next_entry(j, i, level);
        switch (vr) {
        case MV_VR_US: len = snprintf(text, sizeof text, "%u", (unsigned)mv__rd16(p, be)); break;
        case MV_VR_SS: len = snprintf(text, sizeof text, "%d", (int)(int16_t)mv__rd16(p, be)); break;
        case MV_VR_UL: len = snprintf(text, sizeof text, "%" PRIu32, mv__rd32(p, be)); break;
        case MV_VR_SL: len = snprintf(text, sizeof text, "%" PRId32, (int32_t)mv__rd32(p, be)); break;
        case MV_VR_SV: case MV_VR_UV: {
            uint64_t bits = be ? ((uint64_t)mv__rd32(p, 1) << 32) | mv__rd32(p + 4, 1)
                               : ((uint64_t)mv__rd32(p + 4, 0) << 32) | mv__rd32(p, 0);
            if (vr == MV_VR_UV)
                len = snprintf(text, sizeof text, "%" PRIu64, bits);
            else
                len = snprintf(text, sizeof text, "%" PRId64, (int64_t)bits);
            break;
        }
        case MV_VR_FL: {
            uint32_t bits = mv__rd32(p, be);
            float f;
            memcpy(&f, &bits, sizeof f);
            put_float(j, f, 1);
            break;
        }
        case MV_VR_FD: {
            uint64_t bits = be ? ((uint64_t)mv__rd32(p, 1) << 32) | mv__rd32(p + 4, 1)
                               : ((uint64_t)mv__rd32(p + 4, 0) << 32) | mv__rd32(p, 0);
            double d;
            memcpy(&d, &bits, sizeof d);
            put_float(j, d, 0);
            break;
        }
        case MV_VR_AT: {
            uint16_t group = mv__rd16(p, be), element = mv__rd16(p + 2, be);
            text[0] = '"';
            for (int k = 0; k < 4; k++) {
                text[1 + k] = hex_digits[(group >> (12 - 4 * k)) & 0xF];
                text[5 + k] = hex_digits[(element >> (12 - 4 * k)) & 0xF];
            }
            text[9] = '"';
            len = 10;
            break;
        }
        default:
            break;
        }
        if (len > 0)
            put(j, text, (size_t)len);
    }
    close_value_array(j, level);
    return j->status;
}

static void open_inline_binary(Json *j, unsigned level)
{
    put_char(j, ',');
    newline(j, level);
    put_name(j, "InlineBinary");
    put_char(j, '"');
}

/* OB OD OF OL OV OW UN: the value field as one base64 string (PS3.18 F.2.7), or nothing
 * when it is longer than the bulk threshold. */
static MvStatus put_inline_binary(Json *j, const MvDataset *ds, const MvElement *el, MvVr vr, unsigned level)
{
    B64 b = {{0}, 0};

    if (el->value_len == 0 || (!(j->flags & MV_JSON_BULK) && el->value_len > j->bulk_threshold))
        return j->status;
    open_inline_binary(j, level);
    b64_feed_swapped(j, &b, el->value, el->value_len, mv_vr_unit_size(vr), ds->big_endian);
    b64_finish(j, &b);
    put_char(j, '"');
    return j->status;
}

/* Encapsulated data (PS3.5 A.4) with MV_JSON_BULK: the item stream as it is encoded, Basic
 * Offset Table item, fragment items and Sequence Delimitation Item, little endian. */
static MvStatus put_encapsulated(Json *j, const MvElement *el, unsigned level)
{
    static const uint8_t seq_delim[8] = {0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0};
    B64 b = {{0}, 0};

    if (!(j->flags & MV_JSON_BULK))
        return j->status;
    open_inline_binary(j, level);
    for (size_t i = 0; i < el->n_frags && j->status == MV_OK; i++) {
        uint8_t header[8] = {0xFE, 0xFF, 0x00, 0xE0};
        mv__wr32(header + 4, el->frags[i].len, 0);
        b64_feed(j, &b, header, sizeof header);
        if (el->frags[i].len > 0)
            b64_feed(j, &b, el->frags[i].data, el->frags[i].len);
    }
    b64_feed(j, &b, seq_delim, sizeof seq_delim);
    b64_finish(j, &b);
    put_char(j, '"');
    return j->status;
}

/* ---- Datasets ------------------------------------------------------------------------ */

/* True when el's VR was taken from the dictionary by the reader (an element of implicit
 * VR data, read from the input and not edited since), so that an ambiguous dictionary VR
 * may be refined. An element without VR bytes inside explicit VR data is not recognised. */
static int vr_from_dictionary(const MvDataset *ds, const MvElement *el)
{
    if (el->offset == MV_NO_OFFSET || (el->flags & MV_EL_DIRTY))
        return 0;
    return !ds->explicit_vr;
}

/* First value of a US element of ds or its nearest ancestor that has tag; -1 if none. */
static long find_us(const MvDataset *ds, uint32_t tag)
{
    for (; ds != NULL; ds = ds->parent) {
        const MvElement *el = mv_dataset_find(ds, tag);
        if (el != NULL) {
            if (el->value_len < 2 || (el->flags & (MV_EL_SEQ | MV_EL_ENCAPS)))
                return -1;
            return mv__rd16(el->value, ds->big_endian);
        }
    }
    return -1;
}

/* The VR written for el. Sequences are SQ (also UN holding items, PS3.5 6.2.2); Private
 * Creators read as UN are LO (PS3.5 7.8.1); VRs the standard does not know are UN. An
 * ambiguous dictionary VR of implicit VR data is resolved as dcmtk and pydicom do: "US or
 * SS" is SS when Pixel Representation (0028,0103) of the item or an enclosing dataset is 1
 * (the rule the PS3.3 definitions of these attributes give); "US or OW" LUT Data
 * (0028,3006) is OW unless its LUT Descriptor (0028,3002) counts a single entry. "OB or
 * OW" already reads as OW (PS3.5 A.1). */
static MvVr json_vr(const MvDataset *ds, const MvElement *el)
{
    MvVr vr = el->vr;

    if (el->flags & MV_EL_SEQ)
        return MV_VR_SQ;
    if (!mv_vr_is_known(vr))
        return MV_VR_UN;
    if (vr == MV_VR_UN && MV_TAG_IS_PRIVATE_CREATOR(el->tag))
        return MV_VR_LO;
    if (vr == MV_VR_US && vr_from_dictionary(ds, el)) {
        const MvDictEntry *entry = mv_dict_lookup(el->tag);
        if (entry != NULL && entry->vr == MV_VR_US && entry->vr_alt == MV_VR_SS &&
            find_us(ds, MV_TAG(0x0028, 0x0103)) == 1)
            return MV_VR_SS;
        if (entry != NULL && entry->vr == MV_VR_US && entry->vr_alt == MV_VR_OW &&
            el->tag == MV_TAG(0x0028, 0x3006)) {
            const MvElement *desc = mv_dataset_find(ds, MV_TAG(0x0028, 0x3002));
            if (desc == NULL || desc->value_len < 2 || mv__rd16(desc->value, ds->big_endian) != 1)
                return MV_VR_OW;
        }
    }
    return vr;
}

static MvStatus write_dataset(Json *j, const MvDataset *ds, const MvDataset *meta, unsigned level);

static MvStatus write_element(Json *j, const MvDataset *ds, const MvElement *el, unsigned level)
{
    MvVr vr = json_vr(ds, el);
    char vr_text[3];
    MvStatus st = MV_OK;

    put_char(j, '{');
    newline(j, level + 1);
    put_name(j, "vr");
    put_char(j, '"');
    put_str(j, mv_vr_string(vr, vr_text));
    put_char(j, '"');

    if (el->flags & MV_EL_SEQ) {
        /* PS3.18 F.2.5: no items, no "Value"; an empty item is {}. */
        if (el->n_items > 0) {
            open_value_array(j, level + 1);
            for (size_t i = 0; i < el->n_items && st == MV_OK; i++) {
                next_entry(j, i, level + 1);
                st = write_dataset(j, el->items[i], NULL, level + 2);
            }
            close_value_array(j, level + 1);
        }
    } else if (el->flags & MV_EL_ENCAPS) {
        st = put_encapsulated(j, el, level + 1);
    } else if (el->value_len == 0 || vr == MV_VR_SQ) {
        /* PS3.18 F.2.5: an empty element has no "Value". */
    } else if (mv_vr_is_text(vr)) {
        st = put_text(j, ds, el, vr, level + 1);
    } else {
        switch (vr) {
        case MV_VR_US: case MV_VR_SS: case MV_VR_UL: case MV_VR_SL: case MV_VR_FL: case MV_VR_FD:
        case MV_VR_SV: case MV_VR_UV: case MV_VR_AT:
            st = put_binary_numbers(j, ds, el, vr, level + 1);
            break;
        default:
            st = put_inline_binary(j, ds, el, vr, level + 1);
            break;
        }
    }
    if (st == MV_OK) {
        newline(j, level);
        put_char(j, '}');
        st = j->status;
    }
    return st;
}

/* Writes ds as a JSON object, with the elements of meta (may be NULL) first. Attributes
 * are in ascending tag order (PS3.18 F.2.2) as the dataset holds them; Group Length
 * elements are left out (F.2.2), so is group 0002 of ds unless MV_JSON_META, and a
 * repeated tag (malformed input) keeps its first element, JSON names being unique. */
static MvStatus write_dataset(Json *j, const MvDataset *ds, const MvDataset *meta, unsigned level)
{
    size_t n_written = 0;
    uint32_t last_tag = 0;
    MvStatus st = MV_OK;

    put_char(j, '{');
    for (int part = 0; part < 2 && st == MV_OK; part++) {
        const MvDataset *from = part == 0 ? meta : ds;
        if (from == NULL)
            continue;
        for (size_t i = 0; i < from->n_elems && st == MV_OK; i++) {
            const MvElement *el = &from->elems[i];
            char key[11];

            if (MV_TAG_ELEMENT(el->tag) == 0x0000)
                continue;
            if (MV_TAG_GROUP(el->tag) == 0x0002 && !(j->flags & MV_JSON_META))
                continue;
            if (n_written > 0 && el->tag <= last_tag)
                continue;
            if (n_written++ > 0)
                put_char(j, ',');
            last_tag = el->tag;
            newline(j, level + 1);
            key[0] = '"';
            for (int k = 0; k < 8; k++)
                key[1 + k] = hex_digits[(el->tag >> (28 - 4 * k)) & 0xF];
            key[9] = '"';
            key[10] = ':';
            put(j, key, sizeof key);
            if (j->flags & MV_JSON_PRETTY)
                put_char(j, ' ');
            st = write_element(j, from, el, level + 1);
        }
    }
    if (st != MV_OK)
        return st;
    if (n_written > 0)
        newline(j, level);
    put_char(j, '}');
    return j->status;
}

/* Writes file's dataset as one DICOM JSON object (PS3.18 F.2), without a trailing newline.
 *
 * Values: text is decoded to UTF-8 under the Specific Character Set in force, split on
 * backslash (not LT ST UT UR), trailing padding removed from every value and leading
 * spaces too except for LT ST UT; an empty value among several is null, an element of
 * padding only has no "Value". PN values are objects of their non-empty component groups.
 * IS and DS are JSON numbers with the decimal value of the text ("+1.5" -> 1.5, ".5" ->
 * 0.5); a value that is not a decimal number at all is written as a JSON string, which
 * F.2.3 allows for IS and DS. FL and FD are the shortest text that reads back as the
 * same binary value; NaN and infinities become the strings "NaN", "Infinity" and
 * "-Infinity". SV and UV are exact 64-bit integers, AT values "GGGGEEEE" strings.
 * OB OD OF OL OV OW UN are "InlineBinary" base64 of the little endian value (big endian
 * data swapped per unit), left out, so that the element looks empty, when longer than the
 * bulk threshold unless MV_JSON_BULK; encapsulated pixel data is shown, as its item
 * stream, only with MV_JSON_BULK. Sequences, and UN holding items, are "SQ".
 *
 * Returns MV_ERR_IO when writing to out fails (output may then be partial), MV_ERR_NOMEM
 * when decoding a value cannot allocate. Messages name tags, never values. */
MvStatus mv_json_write(const MvFile *file, FILE *out, const MvJsonOptions *opts, MvError *err)
{
    Json *j = NULL;
    MvStatus st = MV_OK;

    assert(file != NULL && out != NULL);
    mv_error_clear(err);
    j = malloc(sizeof *j);
    if (j == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    j->out = out;
    j->err = err;
    j->status = MV_OK;
    j->len = 0;
    j->flags = opts != NULL ? opts->flags : 0;
    j->bulk_threshold = opts != NULL && opts->bulk_threshold != 0 ? opts->bulk_threshold : DEFAULT_BULK_THRESHOLD;
    st = write_dataset(j, &file->ds, (j->flags & MV_JSON_META) ? &file->meta : NULL, 0);
    flush_buf(j);
    if (st == MV_OK)
        st = j->status;
    if (st == MV_OK && ferror(out))
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot write JSON output: the stream is in error");
out:
    free(j);
    return st;
}
