/* Text cleaning for the Clean Descriptors and Clean Structured Content options of PS3.15
 * Annex E: the identifiers of one file (names, IDs, dates in their usual spellings,
 * addresses, phone numbers, institutions) are collected once by mv__ids_collect, then every
 * free-text value the engine (deid.c) cleans loses them and every identifier-shaped token,
 * each replaced by one "*". Matching is hand-written, without regex.h: the case folding is
 * locale-independent and keeps byte lengths, so a position in the folded text is the same
 * position in the text being copied out. */
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deid/deid_int.h"

/* ---- Characters ------------------------------------------------------------------- */

static int is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

static int is_ascii_alpha(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_space(unsigned c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* 1 if c is a byte (not NUL, not -1 for "past the end") of set. */
static int in_set(int c, const char *set)
{
    return c > 0 && c < 256 && strchr(set, c) != NULL;
}

/* Decodes one code point of well-formed UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF) at s[0..n). Returns its length in bytes, or 0 if the bytes are not UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c;
    size_t len;

    if (n == 0)
        return 0;
    c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        c &= 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        c &= 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (uint32_t)(s[k] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static size_t utf8_encode(uint32_t c, unsigned char *out)
{
    if (c < 0x80) {
        out[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (unsigned char)(0xC0 | (c >> 6));
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (c >> 12));
        out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (c >> 18));
    out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* Length of the code point whose lead byte is b, in text already known to be UTF-8. */
static size_t utf8_lead_len(unsigned char b)
{
    return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

/* Simple lowercase mapping of the letters whose two forms have the same UTF-8 length:
 * ASCII, Latin-1, Latin Extended-A (not the dotted/dotless I), the Romanian comma letters,
 * Greek (final sigma folds to sigma) and Cyrillic. Everything else is its own fold. It
 * does not depend on the locale, unlike towlower. */
static uint32_t fold_cp(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 0x20;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F)
            return c;
        if (c == 0x178)
            return 0xFF;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c & 1u) ? c + 1 : c;
        return (c & 1u) ? c : c + 1;
    }
    if (c >= 0x218 && c <= 0x21B)
        return (c & 1u) ? c : c + 1;
    if (c == 0x386)
        return 0x3AC;
    if (c >= 0x388 && c <= 0x38A)
        return c + 0x25;
    if (c == 0x38C)
        return 0x3CC;
    if (c == 0x38E || c == 0x38F)
        return c + 0x3F;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
        return c + 0x20;
    if (c == 0x3C2)
        return 0x3C3;
    if (c >= 0x400 && c <= 0x40F)
        return c + 0x50;
    if (c >= 0x410 && c <= 0x42F)
        return c + 0x20;
    return c;
}

/* Folds n bytes of UTF-8 from in to out (which may be in): the result has the same length
 * and its code points start at the same offsets. Bytes that are not UTF-8 are copied. */
static void fold_utf8(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t i = 0;

    while (i < n) {
        uint32_t cp = 0, folded;
        size_t len;

        if (in[i] < 0x80) {
            out[i] = (unsigned char)fold_cp(in[i]);
            i++;
            continue;
        }
        len = utf8_decode(in + i, n - i, &cp);

        if (len == 0) {
            out[i] = in[i];
            i++;
            continue;
        }
        folded = fold_cp(cp);
        if (folded != cp) {
            unsigned char buf[4];
            size_t flen = utf8_encode(folded, buf);

            assert(flen == len);
            memcpy(out + i, buf, flen);
        } else if (out != in) {
            memcpy(out + i, in + i, len);
        }
        i += len;
    }
}

/* A word character: an ASCII letter or digit, or any other code point except the
 * punctuation and symbol blocks (Latin-1 symbols, general punctuation through
 * miscellaneous symbols and arrows, CJK punctuation, full-width ASCII punctuation). */
static int is_word_cp(uint32_t c)
{
    if (c < 0x80)
        return is_digit(c) || is_ascii_alpha(c);
    if ((c >= 0xA0 && c <= 0xBF) || c == 0xD7 || c == 0xF7)
        return 0;
    if (c >= 0x2000 && c <= 0x2BFF)
        return 0;
    if (c >= 0x3000 && c <= 0x303F)
        return 0;
    if ((c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
        (c >= 0xFF5B && c <= 0xFF65))
        return 0;
    if (c == 0xFEFF || c == 0xFFFD)
        return 0;
    return 1;
}

/* Scripts written without spaces between words (Thai, Lao, CJK, kana, Hangul): next to
 * them a name needs no word boundary. */
static int is_unspaced_cp(uint32_t c)
{
    return (c >= 0x0E00 && c <= 0x0EFF) || (c >= 0x2E80 && c <= 0x2FFF) || (c >= 0x3040 && c <= 0x31FF) ||
           (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA960 && c <= 0xA97F) ||
           (c >= 0xAC00 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFF66 && c <= 0xFF9F) ||
           (c >= 0x20000 && c <= 0x3FFFF);
}

/* ---- Stop lists ------------------------------------------------------------------- */

/* Words that are never identifiers, whatever element they come from: connecting words,
 * placeholders of already anonymized data, modality abbreviations (a Station Name "CT"
 * must not erase "CT" from every description). Lowercase (folded). */
static const char *const stop_common[] = {
    "the", "of", "and", "for", "at", "in", "on", "to", "by", "und", "et",
    "anon", "anonymous", "anonymized", "anonymised", "unknown", "none", "null", "nil", "na", "n/a", "test",
    "removed", "redacted", "deidentified", "patient", "phantom", "volunteer",
    "ct", "mr", "mri", "pet", "us", "xr", "cr", "dx", "nm", "pt", "mg", "rf", "xa", "ot", "sr", "io", "px",
    "es", "ecg", "ekg", "eeg", "spect", "cta", "mra", "cxr",
};

/* Name particles and articles, dropped as words inside a longer name component or address
 * ("DE LA CRUZ", "VAN DER BERG", "rue de la Paix") but kept when they are a whole name
 * component: "LE^VAN^AN" is a Vietnamese name whose family name is Le. */
static const char *const stop_particle[] = {
    "de", "la", "le", "les", "du", "da", "di", "del", "della", "der", "den", "des", "dos", "das", "van",
    "von", "ten", "ter", "el", "al", "bin", "bint", "ibn",
};

/* Titles, degrees, suffixes and roles that appear in Person Name values. "DO" is not one
 * of them: it is a common Vietnamese family name. */
static const char *const stop_person[] = {
    "dr", "drs", "md", "mr", "mrs", "ms", "miss", "mx", "prof", "phd", "jr", "ii", "iii", "iv", "rn",
    "rt", "np", "pa", "dds", "dmd", "mbbs", "mbchb", "facr", "frcr", "frcp", "frcs", "msc", "bsc", "herr",
    "frau", "mme", "mlle", "sir", "dame", "rev", "med", "dipl", "ing", "priv", "doz", "univ", "mag",
    "doctor", "physician", "radiologist", "technologist", "tech", "nurse", "resident", "fellow", "staff",
    "admin", "administrator", "service", "operator", "user",
};

/* Generic words of addresses, institution names and places: they identify nothing alone
 * and are common in clinical text ("main pulmonary artery", "general anaesthesia",
 * "center of the lesion"). Whole phrases that contain them are still identifiers. */
static const char *const stop_place[] = {
    "hospital", "hospitals", "hosp", "clinic", "clinics", "clinical", "clinique", "clinica", "clínica",
    "klinik", "kliniken", "klinikum", "krankenhaus", "hôpital", "hopital", "hospitalier", "ospedale",
    "ziekenhuis", "policlinico", "universitaire", "universitario", "chu", "medical", "medicine", "center",
    "centre", "centers", "centres", "ctr", "university", "universität", "universitat", "università",
    "universidad", "université", "universite", "college", "school", "institute", "institut", "instituto",
    "istituto", "foundation", "stiftung", "general", "memorial", "regional", "community", "county", "city",
    "state", "national", "central", "district", "municipal", "children", "childrens", "children's", "women",
    "womens", "women's", "saint", "sainte", "san", "santa", "sankt", "mount", "mt", "st", "ste", "street",
    "str", "strasse", "straße", "rue", "avenue", "ave", "av", "avenida", "via", "calle", "road", "rd",
    "drive", "dr", "lane", "ln", "boulevard", "blvd", "way", "place", "pl", "plaza", "square", "sq", "court",
    "terrace", "highway", "hwy", "route", "rte", "suite", "apt", "apartment", "unit", "floor", "fl",
    "building", "bldg", "room", "rm", "box", "po", "north", "south", "east", "west", "upper", "lower", "main",
    "new", "old", "health", "healthcare", "care", "system", "systems", "network", "services", "group",
    "partners", "associates", "radiology", "imaging", "diagnostic", "diagnostics", "department", "dept",
    "division", "cancer", "heart", "research", "surgery", "surgical", "emergency", "outpatient", "inpatient",
    "pediatric", "paediatric", "orthopedic", "orthopaedic", "rehabilitation", "rehab", "trust", "nhs", "inc",
    "llc", "ltd", "gmbh", "corp", "company", "usa", "united", "states", "kingdom", "america", "major",
    "private",
};

static int in_list(const char *const *list, size_t n_list, const unsigned char *word, size_t len)
{
    for (size_t i = 0; i < n_list; i++) {
        if (strlen(list[i]) == len && memcmp(list[i], word, len) == 0)
            return 1;
    }
    return 0;
}

#define N_OF(array) (sizeof(array) / sizeof((array)[0]))

/* ---- The identifier set ----------------------------------------------------------- */

/* How an identifier is filtered before it is kept. */
enum {
    ID_PERSON = 1u, /* name: 2 characters or more, person stop list */
    ID_PLACE = 2u,  /* address, institution, place: 3 or more, place stop list */
    ID_PLAIN = 4u,  /* ID, phone, date: 3 or more */
    ID_WORD = 8u,   /* a word of a longer value: particle stop list too */
};

typedef struct IdText {
    unsigned char *bytes; /* folded UTF-8, whitespace runs as one space, NUL-terminated */
    size_t len;           /* 2 or more */
    unsigned key;         /* bucket of the first two bytes (id_key) */
    uint8_t left_break;   /* 1 if it begins with a word character that needs a boundary */
    uint8_t right_break;  /* likewise at its end */
} IdText;

/* Identifiers are found by their first two folded bytes: a text position looks only at
 * the identifiers of its bucket, longest first. */
#define ID_BUCKETS 1024u

static unsigned id_key(unsigned char b0, unsigned char b1)
{
    if (is_space(b1))
        b1 = ' ';
    return (b0 * 31u + b1) & (ID_BUCKETS - 1);
}

struct MvIdentifiers {
    IdText *items;
    size_t n_items, cap_items;
    size_t bucket[ID_BUCKETS + 1]; /* after sorting: items[bucket[k]..bucket[k + 1]) have key k */
};

static int is_trim_byte(unsigned char c)
{
    return is_space(c) || in_set(c, ",;:^=\\");
}

/* Adds one identifier: trimmed, whitespace collapsed, folded, then dropped if it is too
 * short, a number of fewer than 4 digits, a stop word, or not UTF-8. */
static MvStatus ids_add(MvIdentifiers *ids, const char *value, size_t len, unsigned flags)
{
    const unsigned char *s = (const unsigned char *)value;
    unsigned char *norm = NULL;
    size_t start = 0, end = len, n = 0, n_cps = 0, n_digits = 0, min_cps;
    int space = 0;
    MvStatus status = MV_OK;

    while (start < end && is_trim_byte(s[start]))
        start++;
    while (end > start && is_trim_byte(s[end - 1]))
        end--;
    if (end - start < 2)
        goto out;
    norm = malloc(end - start + 1);
    if (norm == NULL) {
        status = MV_ERR_NOMEM;
        goto out;
    }
    for (size_t i = start; i < end;) {
        uint32_t cp = 0;
        size_t cp_len;

        if (is_space(s[i])) {
            space = 1;
            i++;
            continue;
        }
        if (space) {
            norm[n++] = ' ';
            n_cps++;
            space = 0;
        }
        cp_len = utf8_decode(s + i, end - i, &cp);
        if (cp_len == 0)
            goto out; /* decoded values are UTF-8; anything else could never match */
        memcpy(norm + n, s + i, cp_len);
        n += cp_len;
        n_cps++;
        n_digits += is_digit(cp);
        i += cp_len;
    }
    norm[n] = '\0';
    fold_utf8(norm, n, norm);

    min_cps = (flags & ID_PERSON) ? 2 : 3;
    if (n_cps < min_cps || (n_digits == n_cps && n_cps < 4))
        goto out;
    if (in_list(stop_common, N_OF(stop_common), norm, n) ||
        ((flags & ID_PERSON) && in_list(stop_person, N_OF(stop_person), norm, n)) ||
        ((flags & ID_PLACE) && in_list(stop_place, N_OF(stop_place), norm, n)) ||
        ((flags & ID_WORD) && in_list(stop_particle, N_OF(stop_particle), norm, n)))
        goto out;

    if (ids->n_items == ids->cap_items) {
        size_t cap = ids->cap_items ? ids->cap_items * 2 : 64;
        IdText *items = realloc(ids->items, cap * sizeof *items);

        if (items == NULL) {
            status = MV_ERR_NOMEM;
            goto out;
        }
        ids->items = items;
        ids->cap_items = cap;
    }
    ids->items[ids->n_items].bytes = norm;
    ids->items[ids->n_items].len = n;
    ids->items[ids->n_items].key = id_key(norm[0], norm[1]);
    ids->n_items++;
    norm = NULL;
out:
    free(norm);
    return status;
}

static MvStatus ids_addf(MvIdentifiers *ids, unsigned flags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static MvStatus ids_addf(MvIdentifiers *ids, unsigned flags, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        return MV_OK;
    return ids_add(ids, buf, (size_t)n, flags);
}

static int id_order(const void *a, const void *b)
{
    const IdText *x = a, *y = b;

    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return memcmp(x->bytes, y->bytes, x->len);
}

/* Sorts by bucket, longest first; removes duplicates; fills the buckets. */
static void ids_finish(MvIdentifiers *ids)
{
    size_t kept = 0;

    if (ids->n_items > 0)
        qsort(ids->items, ids->n_items, sizeof *ids->items, id_order);
    for (size_t i = 0; i < ids->n_items; i++) {
        IdText *it = &ids->items[i];

        if (kept > 0 && id_order(&ids->items[kept - 1], it) == 0) {
            free(it->bytes);
            continue;
        }
        ids->items[kept++] = *it;
    }
    ids->n_items = kept;
    for (size_t i = 0; i < kept; i++) {
        IdText *it = &ids->items[i];
        size_t k = it->len - 1;
        uint32_t first = 0, last = 0;

        utf8_decode(it->bytes, it->len, &first);
        while (k > 0 && (it->bytes[k] & 0xC0) == 0x80)
            k--;
        utf8_decode(it->bytes + k, it->len - k, &last);
        it->left_break = is_word_cp(first) && !is_unspaced_cp(first);
        it->right_break = is_word_cp(last) && !is_unspaced_cp(last);
    }
    for (size_t key = 0, i = 0; key <= ID_BUCKETS; key++) {
        while (key < ID_BUCKETS && i < kept && ids->items[i].key < key)
            i++;
        ids->bucket[key] = key == ID_BUCKETS ? kept : i;
    }
}

void mv__ids_free(MvIdentifiers *ids)
{
    if (ids == NULL)
        return;
    for (size_t i = 0; i < ids->n_items; i++)
        free(ids->items[i].bytes);
    free(ids->items);
    free(ids);
}

size_t mv__ids_count(const MvIdentifiers *ids)
{
    return ids == NULL ? 0 : ids->n_items;
}

/* ---- Turning values into identifiers ---------------------------------------------- */

static int is_joiner(uint32_t c)
{
    return c == '-' || c == '\'' || c == 0x2019;
}

/* Adds the words of s: maximal runs of word characters, joined by '-' or an apostrophe
 * ("Smith-Jones", "O'Brien"); a joined word is added whole and in its parts. */
static MvStatus add_words(MvIdentifiers *ids, const char *text, size_t n, unsigned flags)
{
    const unsigned char *s = (const unsigned char *)text;
    MvStatus status = MV_OK;
    size_t i = 0;

    while (i < n && status == MV_OK) {
        size_t start = i, end = i, len;
        int joined = 0;
        uint32_t cp = 0;

        /* Skip to a word character, then take word characters and inner joiners. */
        len = utf8_decode(s + i, n - i, &cp);
        if (len == 0 || !is_word_cp(cp)) {
            i += len ? len : 1;
            continue;
        }
        while (i < n) {
            len = utf8_decode(s + i, n - i, &cp);
            if (len == 0)
                break;
            if (is_word_cp(cp)) {
                i += len;
                end = i;
            } else if (is_joiner(cp)) {
                joined = 1;
                i += len;
            } else {
                break;
            }
        }
        status = ids_add(ids, text + start, end - start, flags);
        if (status == MV_OK && joined) {
            for (size_t k = start; k < end && status == MV_OK;) {
                size_t part = k;

                while (k < end && (len = utf8_decode(s + k, end - k, &cp)) > 0 && is_word_cp(cp))
                    k += len;
                if (k > part)
                    status = ids_add(ids, text + part, k - part, flags);
                if (k < end)
                    k += (len = utf8_decode(s + k, end - k, &cp)) > 0 ? len : 1;
            }
        }
    }
    return status;
}

/* Adds each part of text between bytes of seps, whole. */
static MvStatus add_parts(MvIdentifiers *ids, const char *text, size_t n, const char *seps, unsigned flags)
{
    MvStatus status = MV_OK;
    size_t start = 0;

    for (size_t i = 0; i <= n && status == MV_OK; i++) {
        if (i == n || in_set((unsigned char)text[i], seps)) {
            status = ids_add(ids, text + start, i - start, flags);
            start = i + 1;
        }
    }
    return status;
}

/* A person name (PS3.5 6.2.1): the whole value, each component group, each component and
 * each word. */
static MvStatus add_person(MvIdentifiers *ids, const char *text, size_t n)
{
    MvStatus status = ids_add(ids, text, n, ID_PERSON);

    if (status == MV_OK && memchr(text, '=', n) != NULL)
        status = add_parts(ids, text, n, "=", ID_PERSON);
    if (status == MV_OK)
        status = add_parts(ids, text, n, "^=", ID_PERSON);
    if (status == MV_OK)
        status = add_words(ids, text, n, ID_PERSON | ID_WORD);
    return status;
}

/* An address or institution: the whole value, its lines or comma-separated parts, and each
 * word of 3 characters or more that is not a generic place word. */
static MvStatus add_place(MvIdentifiers *ids, const char *text, size_t n)
{
    MvStatus status = ids_add(ids, text, n, ID_PLACE);

    if (status == MV_OK)
        status = add_parts(ids, text, n, ",;^\r\n", ID_PLACE);
    if (status == MV_OK)
        status = add_words(ids, text, n, ID_PLACE | ID_WORD);
    return status;
}

static int starts_with_fold(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);

    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++) {
        unsigned c = (unsigned char)s[i];

        if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)prefix[i])
            return 0;
    }
    return 1;
}

/* A phone number or telecom address: the value without a URI scheme, its digits alone
 * (7 or more), and every tail after a separator that still holds 7 digits or more
 * ("867-5309" of "555-867-5309"). */
static MvStatus add_phone(MvIdentifiers *ids, const char *text, size_t n)
{
    static const char *const schemes[] = {"tel:", "fax:", "sms:", "mailto:", "callto:", "sip:"};
    char digits[64];
    size_t n_digits = 0, total = 0;
    MvStatus status;

    while (n > 0 && is_space((unsigned char)text[0])) {
        text++;
        n--;
    }
    for (size_t k = 0; k < N_OF(schemes); k++) {
        if (starts_with_fold(text, n, schemes[k])) {
            text += strlen(schemes[k]);
            n -= strlen(schemes[k]);
            break;
        }
    }
    status = ids_add(ids, text, n, ID_PLAIN);
    for (size_t i = 0; i < n; i++)
        total += is_digit((unsigned char)text[i]);
    for (size_t i = 0; i < n && n_digits < sizeof digits - 1; i++) {
        if (is_digit((unsigned char)text[i]))
            digits[n_digits++] = text[i];
    }
    if (status == MV_OK && n_digits >= 7)
        status = ids_add(ids, digits, n_digits, ID_PLAIN);
    for (size_t i = 0, seen = 0; i + 1 < n && status == MV_OK; i++) {
        unsigned c = (unsigned char)text[i];

        seen += is_digit(c);
        if (!is_digit(c) && is_digit((unsigned char)text[i + 1]) && total - seen >= 7 && seen > 0)
            status = ids_add(ids, text + i + 1, n - i - 1, ID_PLAIN);
    }
    return status;
}

/* Telecom information (LT): one address per line (or ';'), each as a phone number. */
static MvStatus add_telecom(MvIdentifiers *ids, const char *text, size_t n)
{
    MvStatus status = MV_OK;
    size_t start = 0;

    for (size_t i = 0; i <= n && status == MV_OK; i++) {
        if (i == n || in_set((unsigned char)text[i], "\r\n;")) {
            if (i > start)
                status = add_phone(ids, text + start, i - start);
            start = i + 1;
        }
    }
    return status;
}

static int is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int valid_date(long y, long m, long d)
{
    static const int days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m < 1 || m > 12 || d < 1 || d > days[m - 1])
        return 0;
    return !(m == 2 && d == 29 && !is_leap(y));
}

static const char *const month_abbr[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const month_full[12] = {"January", "February", "March",     "April",   "May",      "June",
                                           "July",    "August",   "September", "October", "November", "December"};

/* The spellings of one date that free text uses. */
static MvStatus add_date_spellings(MvIdentifiers *ids, int y, int m, int d)
{
    const char *ab = month_abbr[m - 1], *full = month_full[m - 1];
    int yy = y % 100;
    MvStatus st = MV_OK;

    /* Numeric, year first and day or month first, padded and not. */
    st = st ? st : ids_addf(ids, ID_PLAIN, "%04d%02d%02d", y, m, d);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%04d-%02d-%02d", y, m, d);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%04d/%02d/%02d", y, m, d);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%04d.%02d.%02d", y, m, d);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d.%02d.%04d", d, m, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d/%02d/%04d", d, m, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d-%02d-%04d", d, m, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d/%02d/%04d", m, d, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d-%02d-%04d", m, d, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%d.%d.%04d", d, m, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%d/%d/%04d", d, m, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%d/%d/%04d", m, d, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%d-%d-%04d", m, d, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d/%02d/%02d", m, d, yy);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d/%02d/%02d", d, m, yy);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d.%02d.%02d", d, m, yy);
    /* With the month's name: "16 Apr 1997", "16-Apr-1997", "16APR1997", "Apr 16, 1997",
     * "April 16 1997" and so on. */
    st = st ? st : ids_addf(ids, ID_PLAIN, "%d %s %04d", d, ab, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%d %s %04d", d, full, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d %s %04d", d, ab, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d %s %04d", d, full, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%d-%s-%04d", d, ab, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d-%s-%04d", d, ab, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%02d%s%04d", d, ab, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%s %d, %04d", ab, d, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%s %d %04d", ab, d, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%s %d, %04d", full, d, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%s %d %04d", full, d, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%s %02d, %04d", ab, d, y);
    st = st ? st : ids_addf(ids, ID_PLAIN, "%s %02d, %04d", full, d, y);
    return st;
}

/* A DA value (PS3.5 Table 6.2-1): YYYYMMDD, the ACR-NEMA YYYY.MM.DD, or the first eight
 * characters of a DT value. Anything else is ignored. */
static MvStatus add_date(MvIdentifiers *ids, const char *text, size_t n)
{
    char digits[8];
    size_t k = 0;
    int y, m, d;

    while (n > 0 && is_space((unsigned char)text[0])) {
        text++;
        n--;
    }
    for (size_t i = 0; i < n && k < 8; i++) {
        unsigned c = (unsigned char)text[i];

        if (is_digit(c))
            digits[k++] = (char)c;
        else if (!(c == '.' && (i == 4 || i == 7)))
            break;
    }
    if (k < 8)
        return MV_OK;
    y = (digits[0] - '0') * 1000 + (digits[1] - '0') * 100 + (digits[2] - '0') * 10 + (digits[3] - '0');
    m = (digits[4] - '0') * 10 + (digits[5] - '0');
    d = (digits[6] - '0') * 10 + (digits[7] - '0');
    if (y < 1000 || !valid_date(y, m, d))
        return MV_OK;
    return add_date_spellings(ids, y, m, d);
}

/* ---- Collecting from a dataset ----------------------------------------------------- */

typedef enum Source {
    SRC_NONE,
    SRC_PERSON,   /* person names */
    SRC_PLACE,    /* addresses, institution names */
    SRC_ID,       /* identifiers, kept whole */
    SRC_WHOLE,    /* descriptions of the person kept whole (rank, region ...) */
    SRC_PHONE,    /* telephone numbers */
    SRC_TELECOM,  /* telecom information, one address per line */
    SRC_DATE,     /* DA */
    SRC_DATETIME  /* DT */
} Source;

/* What an element contributes. Tags are listed so that a value whose VR is UN (explicit
 * VR files that did not know the tag) is still read; any other PN, DA or DT counts too. */
static Source source_of(uint32_t tag, MvVr vr)
{
    switch (tag) {
    case MV_TAG(0x0008, 0x0090): /* Referring Physician's Name */
    case MV_TAG(0x0008, 0x009C): /* Consulting Physician's Name */
    case MV_TAG(0x0008, 0x1048): /* Physician(s) of Record */
    case MV_TAG(0x0008, 0x1050): /* Performing Physician's Name */
    case MV_TAG(0x0008, 0x1060): /* Name of Physician(s) Reading Study */
    case MV_TAG(0x0008, 0x1070): /* Operators' Name */
    case MV_TAG(0x0010, 0x0010): /* Patient's Name */
    case MV_TAG(0x0010, 0x1001): /* Other Patient Names */
    case MV_TAG(0x0010, 0x1005): /* Patient's Birth Name */
    case MV_TAG(0x0010, 0x1060): /* Patient's Mother's Birth Name */
    case MV_TAG(0x0010, 0x2297): /* Responsible Person */
    case MV_TAG(0x0032, 0x1032): /* Requesting Physician */
    case MV_TAG(0x0040, 0x0006): /* Scheduled Performing Physician's Name */
    case MV_TAG(0x0040, 0xA075): /* Verifying Observer Name */
    case MV_TAG(0x0040, 0xA123): /* Person Name (SR) */
    case MV_TAG(0x0070, 0x0084): /* Content Creator's Name */
        return SRC_PERSON;
    case MV_TAG(0x0008, 0x0080): /* Institution Name */
    case MV_TAG(0x0008, 0x0081): /* Institution Address */
    case MV_TAG(0x0008, 0x0092): /* Referring Physician's Address */
    case MV_TAG(0x0010, 0x1040): /* Patient's Address */
    case MV_TAG(0x0038, 0x0400): /* Patient's Institution Residence */
    case MV_TAG(0x0040, 0x1102): /* Person's Address */
        return SRC_PLACE;
    case MV_TAG(0x0008, 0x0050): /* Accession Number */
    case MV_TAG(0x0008, 0x0055): /* Station AE Title */
    case MV_TAG(0x0008, 0x1010): /* Station Name */
    case MV_TAG(0x0010, 0x0020): /* Patient ID (also in Other Patient IDs Sequence items) */
    case MV_TAG(0x0010, 0x0021): /* Issuer of Patient ID */
    case MV_TAG(0x0010, 0x1000): /* Other Patient IDs */
    case MV_TAG(0x0010, 0x1050): /* Insurance Plan Identification */
    case MV_TAG(0x0010, 0x1090): /* Medical Record Locator */
    case MV_TAG(0x0018, 0x1000): /* Device Serial Number */
    case MV_TAG(0x0020, 0x0010): /* Study ID */
    case MV_TAG(0x0038, 0x0010): /* Admission ID */
    case MV_TAG(0x0038, 0x0060): /* Service Episode ID */
    case MV_TAG(0x0040, 0x0001): /* Scheduled Station AE Title */
    case MV_TAG(0x0040, 0x0009): /* Scheduled Procedure Step ID */
    case MV_TAG(0x0040, 0x0010): /* Scheduled Station Name */
    case MV_TAG(0x0040, 0x0241): /* Performed Station AE Title */
    case MV_TAG(0x0040, 0x0242): /* Performed Station Name */
    case MV_TAG(0x0040, 0x0253): /* Performed Procedure Step ID */
    case MV_TAG(0x0040, 0x1001): /* Requested Procedure ID */
    case MV_TAG(0x0040, 0x2016): /* Placer Order Number / Imaging Service Request */
    case MV_TAG(0x0040, 0x2017): /* Filler Order Number / Imaging Service Request */
        return SRC_ID;
    case MV_TAG(0x0010, 0x1080): /* Military Rank */
    case MV_TAG(0x0010, 0x1081): /* Branch of Service */
    case MV_TAG(0x0010, 0x2150): /* Country of Residence */
    case MV_TAG(0x0010, 0x2152): /* Region of Residence */
    case MV_TAG(0x0038, 0x0300): /* Current Patient Location */
        return SRC_WHOLE;
    case MV_TAG(0x0008, 0x0094): /* Referring Physician's Telephone Numbers */
    case MV_TAG(0x0010, 0x2154): /* Patient's Telephone Numbers */
    case MV_TAG(0x0040, 0x1103): /* Person's Telephone Numbers */
        return SRC_PHONE;
    case MV_TAG(0x0010, 0x2155): /* Patient's Telecom Information */
    case MV_TAG(0x0040, 0x1104): /* Person's Telecom Information */
        return SRC_TELECOM;
    case MV_TAG(0x0008, 0x0020): /* Study Date */
    case MV_TAG(0x0008, 0x0021): /* Series Date */
    case MV_TAG(0x0008, 0x0022): /* Acquisition Date */
    case MV_TAG(0x0008, 0x0023): /* Content Date */
    case MV_TAG(0x0010, 0x0030): /* Patient's Birth Date */
    case MV_TAG(0x0040, 0xA121): /* Date (SR) */
        return SRC_DATE;
    case MV_TAG(0x0008, 0x002A): /* Acquisition DateTime */
    case MV_TAG(0x0040, 0xA120): /* DateTime (SR) */
        return SRC_DATETIME;
    default:
        break;
    }
    if (vr == MV_VR_PN)
        return SRC_PERSON;
    if (vr == MV_VR_DA)
        return SRC_DATE;
    if (vr == MV_VR_DT)
        return SRC_DATETIME;
    return SRC_NONE;
}

/* One value (between backslashes) of an element. */
static MvStatus add_value(MvIdentifiers *ids, Source source, const char *text, size_t n)
{
    switch (source) {
    case SRC_PERSON:
        return add_person(ids, text, n);
    case SRC_PLACE:
        return add_place(ids, text, n);
    case SRC_ID:
        return ids_add(ids, text, n, ID_PLAIN);
    case SRC_WHOLE:
        return ids_add(ids, text, n, ID_PLACE);
    case SRC_PHONE:
        return add_phone(ids, text, n);
    case SRC_TELECOM:
        return add_telecom(ids, text, n);
    case SRC_DATE: {
        /* A range matching value "A-B" gives both ends. */
        const char *dash = memchr(text, '-', n);
        MvStatus status = add_date(ids, text, dash ? (size_t)(dash - text) : n);

        if (status == MV_OK && dash != NULL)
            status = add_date(ids, dash + 1, n - (size_t)(dash - text) - 1);
        return status;
    }
    case SRC_DATETIME:
        return add_date(ids, text, n);
    case SRC_NONE:
        break;
    }
    return MV_OK;
}

/* The element's value as UTF-8 (*out NULL when it has no text). A value whose VR is UN
 * is decoded with the dictionary's VR. */
static MvStatus element_text(const MvDataset *ds, const MvElement *el, char **out, MvError *err)
{
    MvVr vr = mv_element_vr(el), dict_vr;
    const uint8_t *value;
    size_t len = 0;

    *out = NULL;
    if (mv_vr_is_text(vr))
        return mv_element_string(ds, el, out, err);
    if (vr != MV_VR_UN)
        return MV_OK;
    dict_vr = mv_dict_vr(mv_element_tag(el));
    if (!mv_vr_is_text(dict_vr))
        return MV_OK;
    value = mv_element_value(el, &len);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\0'))
        len--;
    return mv_charset_to_utf8(mv_vr_uses_charset(dict_vr) ? mv_dataset_charset(ds) : "", dict_vr,
                              len ? value : (const uint8_t *)"", len, out, NULL, NULL, err);
}

#define MAX_DEPTH 128

static MvStatus collect(MvIdentifiers *ids, const MvDataset *ds, unsigned depth, MvError *err)
{
    MvStatus status = MV_OK;
    char *text = NULL;
    size_t n_elems = mv_dataset_count(ds);

    if (depth > MAX_DEPTH) {
        status = mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET,
                              "sequences nested deeper than %d levels", MAX_DEPTH);
        goto out;
    }
    for (size_t i = 0; i < n_elems; i++) {
        const MvElement *el = mv_dataset_at(ds, i);
        uint32_t tag = mv_element_tag(el);
        Source source;

        if (mv_element_is_sequence(el)) {
            size_t n_items = mv_element_item_count(el);

            for (size_t k = 0; k < n_items; k++) {
                status = collect(ids, mv_element_item(el, k), depth + 1, err);
                if (status != MV_OK)
                    goto out;
            }
            continue;
        }
        source = source_of(tag, mv_element_vr(el));
        if (source == SRC_NONE)
            continue;
        status = element_text(ds, el, &text, err);
        if (status != MV_OK)
            goto out;
        if (text == NULL)
            continue;
        for (const char *p = text;;) {
            const char *bs = strchr(p, '\\');
            size_t n = bs ? (size_t)(bs - p) : strlen(p);

            status = add_value(ids, source, p, n);
            if (status != MV_OK) {
                mv_error_set(err, status, tag, MV_NO_OFFSET,
                             "out of memory collecting identifiers from (%04X,%04X)", MV_TAG_GROUP(tag),
                             MV_TAG_ELEMENT(tag));
                goto out;
            }
            if (bs == NULL)
                break;
            p = bs + 1;
        }
        free(text);
        text = NULL;
    }
out:
    free(text);
    return status;
}

MvStatus mv__ids_collect(const MvDataset *ds, MvIdentifiers **out, MvError *err)
{
    MvIdentifiers *ids = NULL;
    MvStatus status;

    assert(ds != NULL && out != NULL);
    *out = NULL;
    ids = calloc(1, sizeof *ids);
    if (ids == NULL) {
        status = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory collecting identifiers");
        goto out;
    }
    status = collect(ids, ds, 0, err);
    if (status != MV_OK)
        goto out;
    ids_finish(ids);
    *out = ids;
    ids = NULL;
out:
    mv__ids_free(ids);
    return status;
}

/* ---- Matching ---------------------------------------------------------------------- */

/* Folded UTF-8 text being scanned. */
typedef struct Scan {
    const unsigned char *t;
    size_t n;
} Scan;

/* The code point starting at j (0 past the end). */
static uint32_t cp_at(const Scan *s, size_t j)
{
    uint32_t cp = 0;

    if (j >= s->n || utf8_decode(s->t + j, s->n - j, &cp) == 0)
        return 0;
    return cp;
}

/* The code point ending at i (0 at the start). */
static uint32_t cp_before(const Scan *s, size_t i)
{
    size_t k;
    uint32_t cp = 0;

    if (i == 0)
        return 0;
    k = i - 1;
    while (k > 0 && i - k < 4 && (s->t[k] & 0xC0) == 0x80)
        k--;
    if (utf8_decode(s->t + k, i - k, &cp) == 0)
        return 0;
    return cp;
}

static int word_at(const Scan *s, size_t j)
{
    return j < s->n && is_word_cp(cp_at(s, j));
}

static int word_before(const Scan *s, size_t i)
{
    return i > 0 && is_word_cp(cp_before(s, i));
}

static int letter_at(const Scan *s, size_t j)
{
    return word_at(s, j) && !is_digit(s->t[j]);
}

static int byte_at(const Scan *s, size_t j)
{
    return j < s->n ? s->t[j] : -1;
}

static size_t count_digits(const Scan *s, size_t j)
{
    size_t k = j;

    while (k < s->n && is_digit(s->t[k]))
        k++;
    return k - j;
}

static long number_at(const Scan *s, size_t j, size_t n_digits)
{
    long v = 0;

    for (size_t k = 0; k < n_digits; k++)
        v = v * 10 + (s->t[j + k] - '0');
    return v;
}

/* Length of the text matching id at i (a space of id matches a run of whitespace), 0 if
 * it does not match there. */
static size_t match_one_id(const Scan *s, size_t i, const IdText *id)
{
    size_t j = i;

    for (size_t k = 0; k < id->len; k++) {
        if (j >= s->n)
            return 0;
        if (id->bytes[k] == ' ') {
            if (!is_space(s->t[j]))
                return 0;
            while (j < s->n && is_space(s->t[j]))
                j++;
        } else {
            if (s->t[j] != id->bytes[k])
                return 0;
            j++;
        }
    }
    return j - i;
}

/* 1 if a word may begin after (or end before) code point c. */
static int is_boundary_cp(uint32_t c)
{
    return !is_word_cp(c) || is_unspaced_cp(c);
}

/* The longest identifier that matches at i as a whole word; prev_boundary says whether
 * the code point before i (if any) lets a word begin. */
static size_t match_ids(const MvIdentifiers *ids, const Scan *s, size_t i, int prev_boundary)
{
    unsigned key;

    if (ids == NULL || s->n - i < 2)
        return 0;
    key = id_key(s->t[i], s->t[i + 1]);
    for (size_t k = ids->bucket[key]; k < ids->bucket[key + 1]; k++) {
        const IdText *id = &ids->items[k];
        size_t m;

        if (id->len > s->n - i || id->bytes[0] != s->t[i] || (id->left_break && !prev_boundary))
            continue;
        m = match_one_id(s, i, id);
        if (m == 0)
            continue;
        if (id->right_break && i + m < s->n && !is_boundary_cp(cp_at(s, i + m)))
            continue;
        return m;
    }
    return 0;
}

/* A run of 5 or more digits, wherever it stands. */
static size_t match_digit_run(const Scan *s, size_t i)
{
    size_t k;

    if (i > 0 && is_digit(s->t[i - 1]))
        return 0;
    k = count_digits(s, i);
    return k >= 5 ? k : 0;
}

/* A UID or dotted number: digits and dots, at least 4 components ("1.2.840.10008"). */
static size_t match_uid(const Scan *s, size_t i)
{
    size_t j = i, dots = 0;

    if (i > 0 && (is_digit(s->t[i - 1]) || s->t[i - 1] == '.'))
        return 0;
    j += count_digits(s, j);
    while (j + 1 < s->n && s->t[j] == '.' && is_digit(s->t[j + 1])) {
        j++;
        j += count_digits(s, j);
        dots++;
    }
    return dots >= 3 ? j - i : 0;
}

static int plausible_year(long y)
{
    return y >= 1900 && y <= 2100;
}

/* Numeric dates: Y-M-D, D-M-Y and M-D-Y with '-', '/' or '.' (the same twice), 4-digit
 * years from 1900 to 2100; D/M/YY and M/D/YY; DD.MM.YY and DD-MM-YY with two digits each. */
static size_t match_numeric_date(const Scan *s, size_t i)
{
    size_t j = i, g1, g2, g3;
    long a, b, c;
    int sep, ok;

    if (word_before(s, i) || (i > 0 && (s->t[i - 1] == '.' || s->t[i - 1] == '/')))
        return 0;
    g1 = count_digits(s, j);
    if (g1 == 0 || g1 > 4)
        return 0;
    a = number_at(s, j, g1);
    j += g1;
    sep = byte_at(s, j);
    if (sep != '-' && sep != '/' && sep != '.')
        return 0;
    j++;
    g2 = count_digits(s, j);
    if (g2 == 0 || g2 > 2)
        return 0;
    b = number_at(s, j, g2);
    j += g2;
    if (byte_at(s, j) != sep)
        return 0;
    j++;
    g3 = count_digits(s, j);
    if (g3 == 0 || g3 > 4)
        return 0;
    c = number_at(s, j, g3);
    j += g3;
    if (byte_at(s, j) == sep && j + 1 < s->n && is_digit(s->t[j + 1]))
        return 0;
    if (g1 == 4 && g3 <= 2) {
        ok = plausible_year(a) && valid_date(a, b, c);
        /* An ISO 8601 date-time: the date part goes, the time stays. */
        if (ok && byte_at(s, j) == 't' && j + 1 < s->n && is_digit(s->t[j + 1]))
            return j - i;
    } else if (g1 <= 2 && g3 == 4) {
        ok = plausible_year(c) && (valid_date(c, b, a) || valid_date(c, a, b));
    } else if (g1 <= 2 && g3 == 2) {
        ok = (sep == '/' || (g1 == 2 && g2 == 2)) && (valid_date(2000, b, a) || valid_date(2000, a, b));
    } else {
        ok = 0;
    }
    if (!ok || word_at(s, j))
        return 0;
    return j - i;
}

/* Month names, folded: English, German, French, Spanish and Italian, full and short. */
static const char *const month_names[] = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "januar", "jänner", "februar", "märz", "mär", "mrz", "mai", "juni", "juli", "oktober", "okt", "dezember",
    "dez", "janvier", "février", "fevrier", "mars", "avril", "juin", "juillet", "août", "aout", "septembre",
    "octobre", "novembre", "décembre", "decembre", "janv", "févr", "fevr", "avr", "juil", "déc", "enero",
    "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre",
    "diciembre", "gennaio", "febbraio", "aprile", "maggio", "giugno", "luglio", "settembre", "ottobre",
    "dicembre",
};

/* Length of the month name at j, not followed by a letter; 0 if none. */
static size_t match_month_name(const Scan *s, size_t j)
{
    size_t best = 0;

    if (j + 3 > s->n || !in_set(s->t[j], "jfmasondegl"))
        return 0;
    for (size_t k = 0; k < N_OF(month_names); k++) {
        const char *name = month_names[k];
        size_t len;

        if ((unsigned char)name[0] != s->t[j] || (unsigned char)name[1] != s->t[j + 1])
            continue;
        len = strlen(name);
        if (len > best && len <= s->n - j && memcmp(s->t + j, name, len) == 0 && !letter_at(s, j + len))
            best = len;
    }
    return best;
}

/* "st", "nd", "rd", "th" or "er" after a day number, not followed by a letter. */
static size_t ordinal_suffix(const Scan *s, size_t j)
{
    static const char *const suffixes[] = {"st", "nd", "rd", "th", "er"};

    for (size_t k = 0; k < N_OF(suffixes); k++) {
        if (j + 2 <= s->n && memcmp(s->t + j, suffixes[k], 2) == 0 && !letter_at(s, j + 2))
            return 2;
    }
    return 0;
}

/* Up to 3 separator bytes of set at j; *spaced set if one was a space. */
static size_t separators(const Scan *s, size_t j, const char *set, int *spaced)
{
    size_t k = 0;

    *spaced = 0;
    while (k < 3 && j + k < s->n && in_set(s->t[j + k], set)) {
        if (s->t[j + k] == ' ')
            *spaced = 1;
        k++;
    }
    return k;
}

/* "16 Apr 1997", "16. April 1997", "16th April, 1997", "16-APR-97", "16APR1997": a day,
 * a month name, a year of 4 digits (1900-2100) or, without spaces before it, 2 digits. */
static size_t match_day_month_year(const Scan *s, size_t i)
{
    size_t j = i, g, len;
    long day;
    int spaced;

    if (word_before(s, i))
        return 0;
    g = count_digits(s, j);
    if (g == 0 || g > 2)
        return 0;
    day = number_at(s, j, g);
    if (day < 1 || day > 31)
        return 0;
    j += g;
    j += ordinal_suffix(s, j);
    if (byte_at(s, j) == '.')
        j++;
    j += separators(s, j, " ,-/", &spaced);
    len = match_month_name(s, j);
    if (len == 0)
        return 0;
    j += len;
    if (byte_at(s, j) == '.')
        j++;
    j += separators(s, j, " ,-/", &spaced);
    g = count_digits(s, j);
    if (g == 4) {
        if (!plausible_year(number_at(s, j, g)))
            return 0;
    } else if (g != 2 || spaced) {
        return 0;
    }
    j += g;
    return word_at(s, j) ? 0 : j - i;
}

/* "Apr 16, 1997", "April 16th 1997", "Apr-16-1997": a month name, a day, a 4-digit year. */
static size_t match_month_day_year(const Scan *s, size_t i)
{
    size_t j = i, g, len, sep;
    long day;
    int spaced;

    /* A day follows the name (3 to 10 bytes), a dot and separators within 16 bytes. */
    for (g = 4; g < 16 && j + g < s->n && !is_digit(s->t[j + g]); g++)
        ;
    if (g == 16 || j + g >= s->n || word_before(s, i))
        return 0;
    len = match_month_name(s, j);
    if (len == 0)
        return 0;
    j += len;
    if (byte_at(s, j) == '.')
        j++;
    sep = separators(s, j, " -/", &spaced);
    if (sep == 0)
        return 0;
    j += sep;
    g = count_digits(s, j);
    if (g == 0 || g > 2)
        return 0;
    day = number_at(s, j, g);
    if (day < 1 || day > 31)
        return 0;
    j += g;
    j += ordinal_suffix(s, j);
    sep = separators(s, j, " ,-/", &spaced);
    if (sep == 0)
        return 0;
    j += sep;
    g = count_digits(s, j);
    if (g != 4 || !plausible_year(number_at(s, j, g)))
        return 0;
    j += g;
    return word_at(s, j) ? 0 : j - i;
}

/* North American numbers: [+1 or 1 and a separator] (555) 867-5309, 555-867-5309,
 * 555.867.5309, 555 867 5309. */
static size_t match_nanp_rest(const Scan *s, size_t j)
{
    size_t start = j;

    if (byte_at(s, j) == '(') {
        if (count_digits(s, j + 1) != 3 || byte_at(s, j + 4) != ')')
            return 0;
        j += 5;
        if (byte_at(s, j) == ' ' || byte_at(s, j) == '-')
            j++;
    } else {
        if (count_digits(s, j) != 3 || !in_set(byte_at(s, j + 3), " -."))
            return 0;
        j += 4;
    }
    if (count_digits(s, j) != 3 || !in_set(byte_at(s, j + 3), " -."))
        return 0;
    j += 4;
    if (count_digits(s, j) != 4)
        return 0;
    j += 4;
    return word_at(s, j) ? 0 : j - start;
}

static size_t match_nanp(const Scan *s, size_t i)
{
    size_t rest;

    if (word_before(s, i) || (i > 0 && in_set(s->t[i - 1], ".+")))
        return 0;
    if (byte_at(s, i) == '+' && byte_at(s, i + 1) == '1' && in_set(byte_at(s, i + 2), " -.")) {
        rest = match_nanp_rest(s, i + 3);
        return rest ? rest + 3 : 0;
    }
    if (byte_at(s, i) == '1' && in_set(byte_at(s, i + 1), " -.")) {
        rest = match_nanp_rest(s, i + 2);
        if (rest)
            return rest + 2;
    }
    return match_nanp_rest(s, i);
}

/* International numbers: '+', then digit groups separated by one of " -./" or written
 * "(0)", 7 to 15 digits in all ("+44 20 7946 0958", "+49 (0)30 1234567"). */
static size_t match_international(const Scan *s, size_t i)
{
    size_t j, end, total, k;

    if (byte_at(s, i) != '+' || word_before(s, i) || (i > 0 && is_digit(s->t[i - 1])))
        return 0;
    total = count_digits(s, i + 1);
    if (total == 0)
        return 0;
    end = i + 1 + total;
    for (;;) {
        j = end;
        if (in_set(byte_at(s, j), " -./"))
            j++;
        if (byte_at(s, j) == '(') {
            k = count_digits(s, j + 1);
            if (k == 0 || k > 4 || byte_at(s, j + 1 + k) != ')')
                break;
            total += k;
            end = j + k + 2;
            continue;
        }
        k = count_digits(s, j);
        if (k == 0)
            break;
        total += k;
        end = j + k;
    }
    if (total < 7 || total > 15 || word_at(s, end))
        return 0;
    return end - i;
}

/* National numbers with a trunk prefix 0: "0123 456789", "030 1234567", "(0123) 456789",
 * "020 7946 0958": a first group of 2-5 digits starting with 0, then groups of 2-8 digits
 * after one of " -/.", 9 to 12 digits in all, the last group 3 digits or more. */
static size_t match_trunk(const Scan *s, size_t i)
{
    size_t j = i, end, total, k, last, groups = 1;
    int paren = 0;

    if (word_before(s, i) || (i > 0 && s->t[i - 1] == '.'))
        return 0;
    if (byte_at(s, j) == '(') {
        paren = 1;
        j++;
    }
    if (byte_at(s, j) != '0')
        return 0;
    k = count_digits(s, j);
    if (k < 2 || k > 5)
        return 0;
    j += k;
    if (paren) {
        if (byte_at(s, j) != ')')
            return 0;
        j++;
    }
    total = last = k;
    end = j;
    for (;;) {
        j = end;
        if (in_set(byte_at(s, j), " -/."))
            j++;
        else if (!(paren && groups == 1))
            break;
        k = count_digits(s, j);
        if (k < 2 || k > 8)
            break;
        total += k;
        last = k;
        groups++;
        end = j + k;
    }
    if (groups < 2 || total < 9 || total > 12 || last < 3 || word_at(s, end))
        return 0;
    return end - i;
}

/* A US Social Security number shape: 123-45-6789. */
static size_t match_ssn(const Scan *s, size_t i)
{
    if (word_before(s, i) || count_digits(s, i) != 3 || byte_at(s, i + 3) != '-' ||
        count_digits(s, i + 4) != 2 || byte_at(s, i + 6) != '-' || count_digits(s, i + 7) != 4 ||
        word_at(s, i + 11))
        return 0;
    return 11;
}

static int is_email_punct(uint32_t c)
{
    return c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int email_local_cp(uint32_t c)
{
    return c < 0x80 ? (is_digit(c) || is_ascii_alpha(c) || is_email_punct(c)) : is_word_cp(c);
}

static int domain_cp(uint32_t c)
{
    return c < 0x80 ? (is_digit(c) || is_ascii_alpha(c) || c == '-') : is_word_cp(c);
}

/* local@domain.tld: the local part in [A-Za-z0-9._%+-] or letters, two or more domain
 * labels, the last one 2 characters or more with a letter. */
static size_t match_email(const Scan *s, size_t i)
{
    size_t j = i, end = 0, labels = 0, last_start = 0;
    int tld_letter = 0;

    if (i > 0 && email_local_cp(cp_before(s, i)))
        return 0;
    while (j < s->n && email_local_cp(cp_at(s, j)))
        j += utf8_lead_len(s->t[j]);
    if (j == i || byte_at(s, j) != '@')
        return 0;
    j++;
    for (;;) {
        size_t start = j;

        while (j < s->n && domain_cp(cp_at(s, j)))
            j += utf8_lead_len(s->t[j]);
        if (j == start)
            break;
        labels++;
        end = j;
        last_start = start;
        if (byte_at(s, j) == '.' && domain_cp(cp_at(s, j + 1))) {
            j++;
            continue;
        }
        break;
    }
    if (labels < 2 || end - last_start < 2)
        return 0;
    for (size_t k = last_start; k < end; k++)
        tld_letter |= !is_digit(s->t[k]) && s->t[k] != '-';
    return tld_letter ? end - i : 0;
}

/* http://, https://, ftp:// and www. addresses, up to white space, quotes or angle
 * brackets, without trailing punctuation. */
static size_t match_url(const Scan *s, size_t i)
{
    static const char *const prefixes[] = {"https://", "http://", "ftp://", "www."};
    size_t j = 0, end;

    if (!in_set(s->t[i], "hfw") || word_before(s, i))
        return 0;
    for (size_t k = 0; k < N_OF(prefixes); k++) {
        size_t len = strlen(prefixes[k]);

        if (len <= s->n - i && memcmp(s->t + i, prefixes[k], len) == 0) {
            j = i + len;
            break;
        }
    }
    if (j == 0)
        return 0;
    end = j;
    while (end < s->n && s->t[end] > ' ' && s->t[end] != 0x7F && !in_set(s->t[end], "\"<>\\"))
        end++;
    while (end > j && in_set(s->t[end - 1], ".,;:!?)]}'"))
        end--;
    return end > j ? end - i : 0;
}

static size_t longest(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* The longest identifier-shaped token at i; after_word says the code point before i is a
 * word character, where only digit runs and UIDs can begin. */
static size_t match_patterns(const Scan *s, size_t i, int after_word)
{
    unsigned c = s->t[i];
    size_t best = 0;

    if (after_word) {
        if (is_digit(c)) {
            best = longest(best, match_digit_run(s, i));
            best = longest(best, match_uid(s, i));
        }
        return best;
    }
    if (is_digit(c)) {
        best = longest(best, match_digit_run(s, i));
        best = longest(best, match_uid(s, i));
        best = longest(best, match_numeric_date(s, i));
        best = longest(best, match_day_month_year(s, i));
        best = longest(best, match_nanp(s, i));
        best = longest(best, match_trunk(s, i));
        best = longest(best, match_ssn(s, i));
    } else if (c == '(') {
        best = longest(best, match_nanp(s, i));
        best = longest(best, match_trunk(s, i));
    } else if (c == '+') {
        best = longest(best, match_nanp(s, i));
        best = longest(best, match_international(s, i));
    } else if (c >= 0x80 || is_ascii_alpha(c)) {
        best = longest(best, match_month_day_year(s, i));
        best = longest(best, match_url(s, i));
    }
    if (c >= 0x80 || is_digit(c) || is_ascii_alpha(c) || is_email_punct(c))
        best = longest(best, match_email(s, i));
    return best;
}

/* A copy of in with every byte that is not part of well-formed UTF-8 replaced by U+FFFD;
 * *copy stays NULL when in is already well formed. */
static MvStatus make_utf8(const unsigned char *in, size_t len, unsigned char **copy, size_t *copy_len)
{
    size_t i = 0, n = 0;
    uint32_t cp;
    unsigned char *buf;

    *copy = NULL;
    *copy_len = len;
    while (i < len) {
        size_t cp_len = utf8_decode(in + i, len - i, &cp);

        if (cp_len == 0)
            break;
        i += cp_len;
    }
    if (i == len)
        return MV_OK;
    buf = malloc(3 * len + 1);
    if (buf == NULL)
        return MV_ERR_NOMEM;
    memcpy(buf, in, i);
    for (n = i; i < len;) {
        size_t cp_len = utf8_decode(in + i, len - i, &cp);

        if (cp_len == 0) {
            n += utf8_encode(0xFFFD, buf + n);
            i++;
        } else {
            memcpy(buf + n, in + i, cp_len);
            n += cp_len;
            i += cp_len;
        }
    }
    *copy = buf;
    *copy_len = n;
    return MV_OK;
}

MvStatus mv__clean_text(const MvIdentifiers *ids, const char *in, size_t len, char **out, size_t *out_len,
                        int *changed)
{
    unsigned char *valid = NULL, *folded = NULL;
    const unsigned char *text;
    char *result = NULL;
    size_t n, r = 0, copied = 0;
    uint32_t prev = 0;
    int any = 0;
    MvStatus status = MV_OK;
    Scan scan;

    assert(out != NULL);
    assert(in != NULL || len == 0);
    *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (changed != NULL)
        *changed = 0;
    if (len > SIZE_MAX / 4) {
        status = MV_ERR_LIMIT;
        goto out;
    }
    status = make_utf8((const unsigned char *)in, len, &valid, &n);
    if (status != MV_OK)
        goto out;
    any = valid != NULL;
    text = valid != NULL ? valid : (const unsigned char *)in;
    folded = malloc(n + 1);
    result = malloc(n + 1);
    if (folded == NULL || result == NULL) {
        status = MV_ERR_NOMEM;
        goto out;
    }
    if (n > 0)
        fold_utf8(text, n, folded);
    scan.t = folded;
    scan.n = n;

    /* Leftmost first; at one position the longest of the identifiers and the patterns.
     * prev is the code point before i (0 at the start). */
    for (size_t i = 0, m; i < n; i += m) {
        uint32_t prev_cp = 0;
        int after_word = is_word_cp(prev);

        m = longest(match_ids(ids, &scan, i, !after_word || is_unspaced_cp(prev)),
                    match_patterns(&scan, i, after_word));
        if (m == 0) {
            m = utf8_decode(folded + i, n - i, &prev_cp);
            if (m == 0)
                m = 1; /* not reached: the text is UTF-8 */
            prev = prev_cp;
            continue;
        }
        memcpy(result + r, text + copied, i - copied);
        r += i - copied;
        result[r++] = '*';
        copied = i + m;
        prev = cp_before(&scan, i + m);
        any = 1;
    }
    if (n > copied)
        memcpy(result + r, text + copied, n - copied);
    r += n - copied;
    result[r] = '\0';

    *out = result;
    result = NULL;
    if (out_len != NULL)
        *out_len = r;
    if (changed != NULL)
        *changed = any;
out:
    free(result);
    free(folded);
    free(valid);
    return status;
}
