/* Decoding of DICOM text values to UTF-8 under a Specific Character Set (0008,0005).
 * The ISO 2022 code extension machinery of PS3.5 6.1.2.5 (G0/G1 designation by escape
 * sequence and its reset at delimiters) is done here; glibc iconv only turns runs of
 * bytes in one of the sets (ISO 8859, TIS-620, EUC-JP/KR/CN, GBK, GB18030) into UTF-8. */
#include <assert.h>
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "medveil/dicom.h"

/* The character sets a defined term can name (PS3.3 C.12.1.1.2, Tables C.12-2 to C.12-5). */
typedef enum CodeSet {
    SET_NONE,         /* nothing designated: bytes in this half cannot be decoded */
    SET_ASCII,        /* ISO-IR 6; also ISO-IR 14 (JIS X 0201 Romaji), see designations */
    SET_LATIN1_GUESS, /* G1 of an unknown term: read as ISO 8859-1 but marked lossy */
    SET_LATIN1,       /* ISO-IR 100, ISO 8859-1 */
    SET_LATIN2,       /* ISO-IR 101, ISO 8859-2 */
    SET_LATIN3,       /* ISO-IR 109, ISO 8859-3 */
    SET_LATIN4,       /* ISO-IR 110, ISO 8859-4 */
    SET_CYRILLIC,     /* ISO-IR 144, ISO 8859-5 */
    SET_ARABIC,       /* ISO-IR 127, ISO 8859-6 */
    SET_GREEK,        /* ISO-IR 126, ISO 8859-7 */
    SET_HEBREW,       /* ISO-IR 138, ISO 8859-8 */
    SET_LATIN5,       /* ISO-IR 148, ISO 8859-9 */
    SET_LATIN9,       /* ISO-IR 203, ISO 8859-15 */
    SET_THAI,         /* ISO-IR 166, TIS-620 */
    SET_KATAKANA,     /* ISO-IR 13, JIS X 0201 Katakana in G1 */
    SET_JISX0208,     /* ISO-IR 87, 94x94 set in G0 */
    SET_JISX0212,     /* ISO-IR 159, 94x94 set in G0 */
    SET_KSX1001,      /* ISO-IR 149, 94x94 set in G1 */
    SET_GB2312,       /* ISO-IR 58, 94x94 set in G1 */
    SET_UTF8,         /* ISO_IR 192, stand-alone */
    SET_GB18030,      /* GB18030, stand-alone */
    SET_GBK,          /* GBK, stand-alone */
    N_CODESETS
} CodeSet;

/* The iconv source encoding of each set; NULL where this file decodes by itself. The
 * two JIS sets share the EUC-JP descriptor of SET_JISX0208, into which their G0 bytes
 * are moved (see put_g0_pair and descriptor_of). */
static const char *const iconv_names[N_CODESETS] = {
    [SET_LATIN2] = "ISO-8859-2",
    [SET_LATIN3] = "ISO-8859-3",
    [SET_LATIN4] = "ISO-8859-4",
    [SET_CYRILLIC] = "ISO-8859-5",
    [SET_ARABIC] = "ISO-8859-6",
    [SET_GREEK] = "ISO-8859-7",
    [SET_HEBREW] = "ISO-8859-8",
    [SET_LATIN5] = "ISO-8859-9",
    [SET_LATIN9] = "ISO-8859-15",
    [SET_THAI] = "TIS-620",
    [SET_JISX0208] = "EUC-JP",
    [SET_KSX1001] = "EUC-KR",
    [SET_GB2312] = "EUC-CN",
    [SET_GB18030] = "GB18030",
    [SET_GBK] = "GBK",
};

/* A defined term. key is the term in upper case without ' ', '_' and '-', so that
 * "ISO_IR 100", "ISO IR 100", "ISO-IR 100" and "iso_ir_100" are all found.
 * g1 is the set the term puts in G1 when it is value 1; whole, if not SET_NONE, is a
 * stand-alone encoding that decodes the whole value without code extensions
 * (PS3.5 6.1.2.5.4 d). G0 starts as ISO-IR 6 (or ISO-IR 14, read the same) for every
 * term: the 94x94 G0 sets of ISO 2022 IR 87 and IR 159 are only reached by escape
 * sequence, as in every example of PS3.5 Annex H. */
typedef struct Term {
    const char *key;
    CodeSet g1;
    CodeSet whole;
} Term;

static const Term terms[] = {
    { "ISOIR6", SET_NONE, SET_NONE },
    { "ISOIR100", SET_LATIN1, SET_NONE },
    { "ISOIR101", SET_LATIN2, SET_NONE },
    { "ISOIR109", SET_LATIN3, SET_NONE },
    { "ISOIR110", SET_LATIN4, SET_NONE },
    { "ISOIR144", SET_CYRILLIC, SET_NONE },
    { "ISOIR127", SET_ARABIC, SET_NONE },
    { "ISOIR126", SET_GREEK, SET_NONE },
    { "ISOIR138", SET_HEBREW, SET_NONE },
    { "ISOIR148", SET_LATIN5, SET_NONE },
    { "ISOIR203", SET_LATIN9, SET_NONE },
    { "ISOIR13", SET_KATAKANA, SET_NONE },
    { "ISOIR166", SET_THAI, SET_NONE },
    { "ISOIR192", SET_NONE, SET_UTF8 },
    { "GB18030", SET_NONE, SET_GB18030 },
    { "GBK", SET_NONE, SET_GBK },
    { "ISO2022IR6", SET_NONE, SET_NONE },
    { "ISO2022IR100", SET_LATIN1, SET_NONE },
    { "ISO2022IR101", SET_LATIN2, SET_NONE },
    { "ISO2022IR109", SET_LATIN3, SET_NONE },
    { "ISO2022IR110", SET_LATIN4, SET_NONE },
    { "ISO2022IR144", SET_CYRILLIC, SET_NONE },
    { "ISO2022IR127", SET_ARABIC, SET_NONE },
    { "ISO2022IR126", SET_GREEK, SET_NONE },
    { "ISO2022IR138", SET_HEBREW, SET_NONE },
    { "ISO2022IR148", SET_LATIN5, SET_NONE },
    { "ISO2022IR203", SET_LATIN9, SET_NONE },
    { "ISO2022IR13", SET_KATAKANA, SET_NONE },
    { "ISO2022IR166", SET_THAI, SET_NONE },
    { "ISO2022IR87", SET_NONE, SET_NONE },
    { "ISO2022IR159", SET_NONE, SET_NONE },
    { "ISO2022IR149", SET_KSX1001, SET_NONE },
    { "ISO2022IR58", SET_GB2312, SET_NONE },
};

#define TERM_KEY_MAX 24

/* An escape sequence that designates a set (PS3.3 Tables C.12-3 and C.12-4). */
typedef struct Designation {
    const char *seq; /* the bytes after ESC */
    int g;           /* 0 or 1 */
    CodeSet set;
} Designation;

static const Designation designations[] = {
    { "(B", 0, SET_ASCII },
    /* ISO-IR 14 differs from ISO-IR 6 only at 05/12 (YEN SIGN) and 07/14 (OVERLINE);
     * 05/12 is the value delimiter all the same (PS3.5 6.1.2.5.3), so both are read as
     * ASCII, as pydicom's shift_jis codec does. */
    { "(J", 0, SET_ASCII },
    { ")I", 1, SET_KATAKANA },
    { "-A", 1, SET_LATIN1 },
    { "-B", 1, SET_LATIN2 },
    { "-C", 1, SET_LATIN3 },
    { "-D", 1, SET_LATIN4 },
    { "-L", 1, SET_CYRILLIC },
    { "-G", 1, SET_ARABIC },
    { "-F", 1, SET_GREEK },
    { "-H", 1, SET_HEBREW },
    { "-M", 1, SET_LATIN5 },
    { "-b", 1, SET_LATIN9 },
    { "-T", 1, SET_THAI },
    { "$B", 0, SET_JISX0208 },
    { "$(D", 0, SET_JISX0212 },
    { "$)C", 1, SET_KSX1001 },
    { "$)A", 1, SET_GB2312 },
};

#define ESC 0x1B
#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD in UTF-8 */

/* The initial state named by value 1 of the Specific Character Set. */
typedef struct Initial {
    CodeSet g1;
    CodeSet whole;
} Initial;

/* Everything one call of mv_charset_to_utf8 works with. pending holds bytes waiting to
 * go through the iconv descriptor of pending_set; its capacity is fixed at 3/2 of the
 * input length, which bounds what the input can put in it. */
typedef struct Decoder {
    char *out;
    size_t out_len;
    size_t out_cap;
    uint8_t *pending;
    size_t pending_len;
    size_t pending_cap;
    CodeSet pending_set;
    iconv_t cd[N_CODESETS];
    int lossy;
    MvError *err;
} Decoder;

/* ---- Defined terms ---------------------------------------------------------------- */

/* Finds the term of the n bytes at value (one value of (0008,0005), without the
 * backslash), or NULL for an unknown term. A value of only padding is the default
 * repertoire (PS3.3 C.12.1.1.2: an empty value 1 means ISO 2022 IR 6). */
static const Term *term_lookup(const char *value, size_t n)
{
    char key[TERM_KEY_MAX];
    size_t key_len = 0;
    int too_long = 0;
    const Term *found = NULL;

    for (size_t i = 0; i < n && !too_long; i++) {
        char c = value[i];

        if (c == ' ' || c == '_' || c == '-')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (key_len + 1 < sizeof key)
            key[key_len++] = c;
        else
            too_long = 1;
    }
    key[key_len] = '\0';
    if (key_len == 0)
        found = &terms[0];
    for (size_t i = 0; i < sizeof terms / sizeof terms[0] && found == NULL && !too_long; i++) {
        if (strcmp(terms[i].key, key) == 0)
            found = &terms[i];
    }
    return found;
}

/* Reads the initial state from value 1 of charset (NULL means the default repertoire)
 * and returns 1 if every value is a known term. Value 1 unknown: G1 is read as
 * ISO 8859-1 and every byte read that way is lossy. */
static int parse_charset(const char *charset, Initial *initial)
{
    int all_known = 1;
    size_t index = 0;
    const char *value = charset != NULL ? charset : "";

    initial->g1 = SET_NONE;
    initial->whole = SET_NONE;
    for (;;) {
        size_t n = strcspn(value, "\\");
        const Term *term = term_lookup(value, n);

        if (term == NULL)
            all_known = 0;
        if (index == 0) {
            initial->g1 = term != NULL ? term->g1 : SET_LATIN1_GUESS;
            initial->whole = term != NULL ? term->whole : SET_NONE;
        }
        if (value[n] == '\0')
            break;
        value += n + 1;
        index++;
    }
    return all_known;
}

int mv_charset_is_supported(const char *charset)
{
    Initial initial;

    return parse_charset(charset, &initial);
}

/* ---- Output ----------------------------------------------------------------------- */

/* Makes room for extra more bytes of output and the final NUL. On failure the output
 * is unchanged (the caller frees it). */
static MvStatus out_reserve(Decoder *d, size_t extra)
{
    MvStatus status = MV_OK;
    size_t need;
    size_t cap;
    char *grown;

    if (extra > SIZE_MAX - 1 - d->out_len) {
        status = mv_error_set(d->err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET,
                              "decoded text value exceeds the address space");
        goto out;
    }
    need = d->out_len + extra + 1;
    if (need <= d->out_cap)
        goto out;
    cap = d->out_cap > 0 ? d->out_cap : 64;
    while (cap < need)
        cap = cap <= SIZE_MAX / 2 ? cap * 2 : need;
    grown = realloc(d->out, cap);
    if (grown == NULL) {
        status = mv_error_set(d->err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET,
                              "out of memory decoding a text value to UTF-8 (%zu bytes)", cap);
        goto out;
    }
    d->out = grown;
    d->out_cap = cap;
out:
    return status;
}

static MvStatus out_put(Decoder *d, const void *bytes, size_t n)
{
    MvStatus status = out_reserve(d, n);

    if (status == MV_OK && n > 0) {
        memcpy(d->out + d->out_len, bytes, n);
        d->out_len += n;
    }
    return status;
}

static MvStatus out_put_replacement(Decoder *d)
{
    d->lossy = 1;
    return out_put(d, REPLACEMENT, 3);
}

/* ---- iconv runs ------------------------------------------------------------------- */

/* The set whose descriptor converts set: JIS X 0212 goes through EUC-JP as JIS X 0208. */
static CodeSet descriptor_of(CodeSet set)
{
    return set == SET_JISX0212 ? SET_JISX0208 : set;
}

/* Length of the character that iconv refused at p, so that the bytes after it are read
 * in step. Bytes handed over by the ISO 2022 path are whole characters of the EUC form;
 * for GBK and GB18030 (raw input) one byte is skipped, as for UTF-8's maximal subparts,
 * unless the rest of the input is one incomplete character (incomplete is set). */
static size_t refused_length(CodeSet set, const uint8_t *p, size_t n, int incomplete)
{
    size_t len = 1;

    if (incomplete)
        len = n;
    else if (set == SET_JISX0208)
        len = p[0] == 0x8Fu ? 3 : p[0] >= 0x80u ? 2 : 1;
    else if (set == SET_KSX1001 || set == SET_GB2312)
        len = p[0] >= 0x80u ? 2 : 1;
    return len < n ? len : n;
}

/* Converts the n bytes at p from set (a descriptor_of set) to UTF-8 onto the output;
 * characters that the set does not define become U+FFFD. The descriptor is opened on
 * first use in this call and closed by mv_charset_to_utf8: opening and closing one costs
 * about 0.3 us with glibc once its module is loaded, so no cache outlives the call. */
static MvStatus convert_run(Decoder *d, CodeSet set, const uint8_t *p, size_t n)
{
    MvStatus status = MV_OK;
    char *in = (char *)p;
    size_t in_left = n;

    assert(iconv_names[set] != NULL);
    if (d->cd[set] == (iconv_t)-1) {
        d->cd[set] = iconv_open("UTF-8", iconv_names[set]);
        if (d->cd[set] == (iconv_t)-1) {
            if (errno == ENOMEM)
                status = mv_error_set(d->err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET,
                                      "out of memory opening iconv for %s", iconv_names[set]);
            else
                status = mv_error_set(d->err, MV_ERR_CHARSET, MV_NO_TAG, MV_NO_OFFSET,
                                      "iconv cannot convert %s to UTF-8", iconv_names[set]);
            goto out;
        }
    }
    /* in_left <= 3/2 of the input length, which mv_charset_to_utf8 caps at SIZE_MAX / 4. */
    status = out_reserve(d, in_left + in_left / 2 + 16);
    while (in_left > 0 && status == MV_OK) {
        char *out = d->out + d->out_len;
        size_t out_left = d->out_cap - 1 - d->out_len;
        size_t rc = iconv(d->cd[set], &in, &in_left, &out, &out_left);
        int iconv_errno = errno;

        d->out_len = d->out_cap - 1 - out_left;
        if (rc != (size_t)-1)
            break;
        if (iconv_errno == E2BIG) {
            status = out_reserve(d, d->out_cap);
        } else if (iconv_errno == EILSEQ || iconv_errno == EINVAL) {
            size_t skip = refused_length(set, (const uint8_t *)in, in_left, iconv_errno == EINVAL);

            in += skip;
            in_left -= skip;
            iconv(d->cd[set], NULL, NULL, NULL, NULL);
            status = out_put_replacement(d);
            if (status == MV_OK)
                status = out_reserve(d, in_left + in_left / 2 + 16);
        } else {
            status = mv_error_set(d->err, MV_ERR_CHARSET, MV_NO_TAG, MV_NO_OFFSET,
                                  "iconv failed converting %s to UTF-8", iconv_names[set]);
        }
    }
    iconv(d->cd[set], NULL, NULL, NULL, NULL);
out:
    return status;
}

static MvStatus flush_pending(Decoder *d)
{
    MvStatus status = MV_OK;

    if (d->pending_len > 0) {
        status = convert_run(d, d->pending_set, d->pending, d->pending_len);
        d->pending_len = 0;
    }
    return status;
}

/* Queues the n bytes of one character of set for iconv, after whatever is queued for
 * the same descriptor. */
static MvStatus put_pending(Decoder *d, CodeSet set, const uint8_t *bytes, size_t n)
{
    MvStatus status = MV_OK;

    set = descriptor_of(set);
    if (d->pending_len > 0 && d->pending_set != set)
        status = flush_pending(d);
    if (status == MV_OK) {
        if (d->pending_len == 0)
            d->pending_set = set;
        assert(d->pending_len + n <= d->pending_cap);
        memcpy(d->pending + d->pending_len, bytes, n);
        d->pending_len += n;
    }
    return status;
}

/* ASCII bytes: every iconv source used here is ASCII in 00/00-07/15, so they join the
 * queued run if there is one, which keeps runs long and the output in order. */
static MvStatus put_ascii(Decoder *d, const uint8_t *bytes, size_t n)
{
    return d->pending_len > 0 ? put_pending(d, d->pending_set, bytes, n) : out_put(d, bytes, n);
}

/* The helpers below write what this file decodes by itself (U+FFFD, Katakana, Latin-1);
 * each first flushes the queue so that the output stays in input order. */

/* JIS X 0201 Katakana 10/01-13/15 is U+FF61-U+FF9F, three bytes of UTF-8 each. */
static MvStatus put_katakana(Decoder *d, uint8_t byte)
{
    MvStatus status = flush_pending(d);
    uint32_t cp = 0xFF61u + (uint32_t)(byte - 0xA1u);
    char utf8[3];

    assert(byte >= 0xA1u && byte <= 0xDFu);
    utf8[0] = (char)(0xE0u | (cp >> 12));
    utf8[1] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
    utf8[2] = (char)(0x80u | (cp & 0x3Fu));
    return status != MV_OK ? status : out_put(d, utf8, 3);
}

/* ISO 8859-1 is U+0000-U+00FF, so it needs no iconv. */
static MvStatus put_latin1(Decoder *d, const uint8_t *bytes, size_t n)
{
    MvStatus status = flush_pending(d);

    if (status == MV_OK)
        status = out_reserve(d, 2 * n);
    for (size_t i = 0; i < n && status == MV_OK; i++) {
        if (bytes[i] < 0x80u) {
            d->out[d->out_len++] = (char)bytes[i];
        } else {
            d->out[d->out_len++] = (char)(0xC0u | (bytes[i] >> 6));
            d->out[d->out_len++] = (char)(0x80u | (bytes[i] & 0x3Fu));
        }
    }
    return status;
}

static MvStatus put_replacement(Decoder *d)
{
    MvStatus status = flush_pending(d);

    return status != MV_OK ? status : out_put_replacement(d);
}

/* ---- ISO 2022 (PS3.5 6.1.2.5) --------------------------------------------------- */

/* Reads the escape sequence at p (p[0] is ESC): ESC, intermediate bytes 02/00-02/15, a
 * final byte 03/00-07/14 (ISO/IEC 2022 clause 13). Returns the bytes it takes; *set is
 * SET_NONE unless the sequence designates a set medveil knows, then *g is 0 or 1. A
 * malformed sequence takes only the ESC. */
static size_t read_escape(const uint8_t *p, size_t n, int *g, CodeSet *set)
{
    size_t i = 1;

    *set = SET_NONE;
    *g = 0;
    while (i < n && p[i] >= 0x20u && p[i] <= 0x2Fu)
        i++;
    if (i >= n || p[i] < 0x30u || p[i] > 0x7Eu)
        i = 0;
    for (size_t k = 0; k < sizeof designations / sizeof designations[0] && i > 0; k++) {
        const char *seq = designations[k].seq;

        if (strlen(seq) == i && memcmp(seq, p + 1, i) == 0) {
            *g = designations[k].g;
            *set = designations[k].set;
            break;
        }
    }
    return i + 1;
}

static int is_double_byte_g0(CodeSet set)
{
    return set == SET_JISX0208 || set == SET_JISX0212;
}

/* A G1 set of 96 characters that iconv reads a byte at a time (ISO 8859, TIS-620). */
static int is_single_byte_g1(CodeSet set)
{
    return set >= SET_LATIN2 && set <= SET_THAI;
}

/* In the initial state a delimiter changes nothing, so the bytes up to the next ESC or
 * NUL (or, with G1 not a one-byte iconv set, up to the next byte of 08/00-15/15) can go
 * on in one piece. Returns how many, 0 when the state is not the initial one. */
static size_t initial_run(CodeSet g0, CodeSet g1, const Initial *initial, const uint8_t *p,
                          size_t n)
{
    size_t run = 0;
    int take_gr = g1 == SET_LATIN1 || is_single_byte_g1(g1);

    if (g0 == SET_ASCII && g1 == initial->g1) {
        while (run < n && p[run] != ESC && p[run] != 0 && (p[run] < 0x80u || take_gr))
            run++;
    }
    return run;
}

/* A byte of 02/01-07/14 in G0 with JIS X 0208 or JIS X 0212 designated: with the next
 * byte it is one character, which goes to iconv in EUC-JP form (both bytes | 0x80,
 * after 0x8F for JIS X 0212). Returns the bytes taken. */
static size_t put_g0_pair(Decoder *d, CodeSet g0, const uint8_t *p, size_t n, MvStatus *status)
{
    uint8_t euc[3];
    size_t euc_len = 0;
    size_t taken = 1;

    if (n >= 2 && p[1] >= 0x21u && p[1] <= 0x7Eu) {
        if (g0 == SET_JISX0212)
            euc[euc_len++] = 0x8Fu;
        euc[euc_len++] = (uint8_t)(p[0] | 0x80u);
        euc[euc_len++] = (uint8_t)(p[1] | 0x80u);
        *status = put_pending(d, g0, euc, euc_len);
        taken = 2;
    } else {
        *status = put_replacement(d);
    }
    return taken;
}

/* A byte of 08/00-15/15, read in the set designated to G1 (invoked in GR). Returns the
 * bytes taken. */
static size_t put_g1(Decoder *d, CodeSet g1, const uint8_t *p, size_t n, MvStatus *status)
{
    size_t taken = 1;

    switch (g1) {
    case SET_NONE:
        *status = put_replacement(d);
        break;
    case SET_LATIN1_GUESS:
        d->lossy = 1;
        *status = put_latin1(d, p, 1);
        break;
    case SET_LATIN1:
        *status = put_latin1(d, p, 1);
        break;
    case SET_KATAKANA:
        if (p[0] >= 0xA1u && p[0] <= 0xDFu)
            *status = put_katakana(d, p[0]);
        else
            *status = put_replacement(d);
        break;
    case SET_KSX1001:
    case SET_GB2312:
        if (n >= 2 && p[0] >= 0xA1u && p[0] <= 0xFEu && p[1] >= 0xA1u && p[1] <= 0xFEu) {
            *status = put_pending(d, g1, p, 2);
            taken = 2;
        } else {
            *status = put_replacement(d);
        }
        break;
    default:
        *status = put_pending(d, g1, p, 1);
        break;
    }
    return taken;
}

/* Decodes with code extensions. G0 and G1 return to their initial sets at each value
 * delimiter (05/12, except in LT ST UT UR), at '^' and '=' in PN, and at every control
 * character other than ESC (PS3.5 6.1.2.5.3). The delimiter bytes 05/12, 05/14 and
 * 03/13 only count as such while G0 is a one-byte set: in JIS X 0208 they are bytes of
 * a character. */
static MvStatus decode_iso2022(Decoder *d, const Initial *initial, MvVr vr, const uint8_t *in,
                               size_t len)
{
    MvStatus status = MV_OK;
    CodeSet g0 = SET_ASCII;
    CodeSet g1 = initial->g1;
    int multi_valued = vr != MV_VR_LT && vr != MV_VR_ST && vr != MV_VR_UT && vr != MV_VR_UR;
    size_t pos = 0;

    while (pos < len && status == MV_OK) {
        uint8_t byte = in[pos];
        size_t run = initial_run(g0, g1, initial, in + pos, len - pos);

        if (run > 0) {
            if (g1 == SET_LATIN1)
                status = put_latin1(d, in + pos, run);
            else if (is_single_byte_g1(g1))
                status = put_pending(d, g1, in + pos, run);
            else
                status = put_ascii(d, in + pos, run);
            pos += run;
        } else if (byte == ESC) {
            int g;
            CodeSet set;
            size_t taken = read_escape(in + pos, len - pos, &g, &set);

            if (set == SET_NONE)
                status = put_replacement(d);
            else if (g == 0)
                g0 = set;
            else
                g1 = set;
            pos += taken;
        } else if (byte < 0x20u) {
            g0 = SET_ASCII;
            g1 = initial->g1;
            status = byte == 0 ? put_replacement(d) : put_ascii(d, &byte, 1);
            pos++;
        } else if (byte >= 0x80u) {
            pos += put_g1(d, g1, in + pos, len - pos, &status);
        } else if (is_double_byte_g0(g0) && byte >= 0x21u && byte <= 0x7Eu) {
            pos += put_g0_pair(d, g0, in + pos, len - pos, &status);
        } else {
            int pn_delimiter = (byte == '^' || byte == '=') && vr == MV_VR_PN;

            if ((byte == '\\' && multi_valued) || pn_delimiter) {
                g0 = SET_ASCII;
                g1 = initial->g1;
            }
            status = put_ascii(d, &byte, 1);
            pos++;
        }
    }
    if (status == MV_OK)
        status = flush_pending(d);
    return status;
}

/* ---- Stand-alone encodings ------------------------------------------------------ */

/* Copies UTF-8, replacing each maximal ill-formed subpart (Unicode 15 section 3.9,
 * as Python does) and each NUL with U+FFFD. */
static MvStatus decode_utf8(Decoder *d, const uint8_t *in, size_t len)
{
    MvStatus status = MV_OK;
    size_t pos = 0;

    while (pos < len && status == MV_OK) {
        uint8_t lead = in[pos];
        size_t need;
        uint8_t lo = 0x80u;
        uint8_t hi = 0xBFu;
        size_t got = 1;

        if (lead >= 0x01u && lead < 0x80u) {
            size_t run = pos + 1;

            while (run < len && in[run] >= 0x01u && in[run] < 0x80u)
                run++;
            status = out_put(d, in + pos, run - pos);
            pos = run;
            continue;
        }
        if (lead >= 0xC2u && lead <= 0xDFu) {
            need = 2;
        } else if (lead >= 0xE0u && lead <= 0xEFu) {
            need = 3;
            if (lead == 0xE0u)
                lo = 0xA0u;
            else if (lead == 0xEDu)
                hi = 0x9Fu;
        } else if (lead >= 0xF0u && lead <= 0xF4u) {
            need = 4;
            if (lead == 0xF0u)
                lo = 0x90u;
            else if (lead == 0xF4u)
                hi = 0x8Fu;
        } else {
            status = out_put_replacement(d);
            pos++;
            continue;
        }
        while (got < need && pos + got < len && in[pos + got] >= lo && in[pos + got] <= hi) {
            got++;
            lo = 0x80u;
            hi = 0xBFu;
        }
        status = got == need ? out_put(d, in + pos, need) : out_put_replacement(d);
        pos += got;
    }
    return status;
}

/* GBK and GB18030 through iconv in one go: a second byte may be 05/12 or 05/14, so the
 * value is never split at delimiters. NUL cannot be part of a character; it becomes
 * U+FFFD. */
static MvStatus decode_gb(Decoder *d, CodeSet set, const uint8_t *in, size_t len)
{
    MvStatus status = MV_OK;
    size_t pos = 0;

    while (pos < len && status == MV_OK) {
        const uint8_t *nul = memchr(in + pos, 0, len - pos);
        size_t run = nul != NULL ? (size_t)(nul - in) - pos : len - pos;

        if (run > 0)
            status = convert_run(d, set, in + pos, run);
        pos += run;
        if (pos < len && status == MV_OK) {
            status = out_put_replacement(d);
            pos++;
        }
    }
    return status;
}

/* ---- Entry point ------------------------------------------------------------------ */

MvStatus mv_charset_to_utf8(const char *charset, MvVr vr, const uint8_t *in, size_t len, char **out,
                            size_t *out_len, int *lossy, MvError *err)
{
    MvStatus status = MV_OK;
    Decoder d;
    Initial initial;
    size_t ascii = 0;

    assert(out != NULL);
    assert(in != NULL || len == 0);
    memset(&d, 0, sizeof d);
    d.err = err;
    for (size_t i = 0; i < N_CODESETS; i++)
        d.cd[i] = (iconv_t)-1;
    *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (lossy != NULL)
        *lossy = 0;

    /* Trailing NULs are padding (PS3.5 6.2: UI values are padded with NUL). */
    while (len > 0 && in[len - 1] == 0)
        len--;
    if (len > SIZE_MAX / 4) {
        status = mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET,
                              "text value of %zu bytes is too long to decode", len);
        goto out;
    }

    /* Every set starts as ASCII in 00/00-07/15, so text without ESC, NUL or a byte of
     * 08/00-15/15 is its own UTF-8 under any character set. */
    while (ascii < len && in[ascii] != 0 && in[ascii] != ESC && in[ascii] < 0x80u)
        ascii++;
    if (ascii == len) {
        status = out_put(&d, in, len);
        goto out;
    }

    status = out_reserve(&d, len + len / 2);
    if (status != MV_OK)
        goto out;
    parse_charset(charset, &initial);
    if (initial.whole == SET_UTF8) {
        status = decode_utf8(&d, in, len);
    } else if (initial.whole != SET_NONE) {
        status = decode_gb(&d, initial.whole, in, len);
    } else {
        d.pending_cap = len + len / 2 + 1;
        d.pending = malloc(d.pending_cap);
        if (d.pending == NULL) {
            status = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET,
                                  "out of memory decoding a text value to UTF-8 (%zu bytes)",
                                  d.pending_cap);
            goto out;
        }
        status = decode_iso2022(&d, &initial, vr, in, len);
    }

out:
    for (size_t i = 0; i < N_CODESETS; i++) {
        if (d.cd[i] != (iconv_t)-1)
            iconv_close(d.cd[i]);
    }
    free(d.pending);
    if (status != MV_OK) {
        free(d.out);
    } else {
        assert(d.out != NULL);
        d.out[d.out_len] = '\0';
        *out = d.out;
        if (out_len != NULL)
            *out_len = d.out_len;
        if (lossy != NULL)
            *lossy = d.lossy;
    }
    return status;
}
