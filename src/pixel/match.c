/* Identifiers of one file and their matching against OCR words: patient name parts,
 * patient and other IDs, accession number, and dates written the usual ways; compared in a
 * canonical form that folds case and the usual OCR confusions, exactly for short tokens and
 * within a small edit distance for long ones; plus identifier-shaped patterns. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medveil/deid.h"
#include "pixel/clean_int.h"

#define MAX_IDS 512
#define MAX_CANON 128

typedef struct PxId {
    char canon[MAX_CANON];
    size_t len;
    int kind;
} PxId;

struct MvPxIds {
    PxId *ids;
    size_t n, cap;
};

const char *mv__id_kind_name(int kind)
{
    switch (kind) {
    case MV_ID_NAME: return "patient name";
    case MV_ID_PATIENT_ID: return "patient ID";
    case MV_ID_OTHER_ID: return "other patient ID";
    case MV_ID_ACCESSION: return "accession number";
    case MV_ID_DATE: return "date";
    case MV_ID_PATTERN: return "identifier-shaped text";
    case MV_ID_TEXT: return "text";
    default: return "none";
    }
}

static char fold(unsigned char c)
{
    c = (unsigned char)tolower(c);
    switch (c) {
    case 'o': return '0';
    case 'i':
    case 'l':
    case '|':
    case '!': return '1';
    case 's': return '5';
    case 'z': return '2';
    case 'b': return '8';
    default: return (char)c;
    }
}

void mv__canon(const char *in, char *out)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
        char c;
        if (*p >= 0x80) {
            /* Non-ASCII letters are kept as bytes (names in other scripts still match). */
            out[n++] = (char)*p;
            continue;
        }
        c = fold(*p);
        if (isalnum((unsigned char)c))
            out[n++] = c;
    }
    out[n] = '\0';
}

void mv__pxids_free(MvPxIds *ids)
{
    if (ids == NULL)
        return;
    mv_wipe(ids->ids, ids->cap * sizeof *ids->ids);
    free(ids->ids);
    free(ids);
}

size_t mv__pxids_count(const MvPxIds *ids)
{
    return ids == NULL ? 0 : ids->n;
}

MvStatus mv__pxids_add(MvPxIds *ids, const char *text, int kind)
{
    char canon[MAX_CANON * 4];
    size_t len;

    if (strlen(text) >= MAX_CANON)
        return MV_OK; /* a free-text value, not something burned in as one token */
    mv__canon(text, canon);
    len = strlen(canon);
    if (len < 3)
        return MV_OK; /* too short to tell from any other text */
    for (size_t i = 0; i < ids->n; i++)
        if (strcmp(ids->ids[i].canon, canon) == 0)
            return MV_OK;
    if (ids->n == MAX_IDS)
        return MV_OK;
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 32;
        PxId *grown = calloc(cap, sizeof *grown);
        if (grown == NULL)
            return MV_ERR_NOMEM;
        if (ids->n > 0)
            memcpy(grown, ids->ids, ids->n * sizeof *grown);
        mv_wipe(ids->ids, ids->cap * sizeof *ids->ids);
        free(ids->ids);
        ids->ids = grown;
        ids->cap = cap;
    }
    memcpy(ids->ids[ids->n].canon, canon, len + 1);
    ids->ids[ids->n].len = len;
    ids->ids[ids->n].kind = kind;
    ids->n++;
    return MV_OK;
}

static MvStatus add_name(MvPxIds *ids, const char *value)
{
    char part[MAX_CANON];
    size_t n = 0;
    MvStatus st = MV_OK;

    /* Each component and word of the name (PS3.5 6.2: ^ between components, = between
     * groups), and the whole name as written with spaces. */
    for (const char *p = value;; p++) {
        if (*p == '\0' || *p == '^' || *p == '=' || *p == ' ' || *p == ',' || *p == '.') {
            part[n] = '\0';
            if (n > 0 && (st = mv__pxids_add(ids, part, MV_ID_NAME)) != MV_OK)
                return st;
            n = 0;
            if (*p == '\0')
                break;
        } else if (n + 1 < sizeof part) {
            part[n++] = *p;
        }
    }
    return mv__pxids_add(ids, value, MV_ID_NAME);
}

static MvStatus add_values(MvPxIds *ids, const char *value, int kind)
{
    char one[MAX_CANON];
    size_t n = 0;
    MvStatus st;

    for (const char *p = value;; p++) {
        if (*p == '\0' || *p == '\\') {
            one[n] = '\0';
            if (n > 0 && (st = (kind == MV_ID_NAME ? add_name(ids, one) : mv__pxids_add(ids, one, kind))) != MV_OK)
                return st;
            n = 0;
            if (*p == '\0')
                break;
        } else if (n + 1 < sizeof one) {
            one[n++] = *p;
        }
    }
    return MV_OK;
}

static const char *const month_short[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const month_long[12] = {"january", "february", "march",     "april",   "may",      "june",
                                           "july",    "august",   "september", "october", "november", "december"};

/* A DA value YYYYMMDD in the ways it is commonly burned in. */
static MvStatus add_date(MvPxIds *ids, const char *value)
{
    int y, m, d;
    char extra, buf[64];
    MvStatus st = MV_OK;

    if (sscanf(value, "%4d%2d%2d%c", &y, &m, &d, &extra) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return MV_OK;
#define ADD(...)                                                   \
    do {                                                           \
        snprintf(buf, sizeof buf, __VA_ARGS__);                    \
        if ((st = mv__pxids_add(ids, buf, MV_ID_DATE)) != MV_OK)   \
            return st;                                             \
    } while (0)
    ADD("%04d%02d%02d", y, m, d);        /* YYYYMMDD, YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD */
    ADD("%02d%02d%04d", d, m, y);        /* DD/MM/YYYY, DD.MM.YYYY, DD-MM-YYYY */
    ADD("%02d%02d%04d", m, d, y);        /* MM/DD/YYYY */
    ADD("%d/%d/%04d", d, m, y);          /* D/M/YYYY */
    ADD("%d/%d/%04d", m, d, y);          /* M/D/YYYY */
    ADD("%02d%02d%02d", d, m, y % 100);  /* DD/MM/YY */
    ADD("%02d%02d%02d", m, d, y % 100);  /* MM/DD/YY */
    ADD("%02d%02d%02d", y % 100, m, d);  /* YY-MM-DD */
    ADD("%02d%s%04d", d, month_short[m - 1], y); /* DD-Mon-YYYY, DD Mon YYYY */
    ADD("%d%s%04d", d, month_short[m - 1], y);
    ADD("%02d%s%02d", d, month_short[m - 1], y % 100);
    ADD("%s%02d%04d", month_short[m - 1], d, y); /* Mon DD, YYYY */
    ADD("%s%d%04d", month_short[m - 1], d, y);
    ADD("%d%s%04d", d, month_long[m - 1], y); /* D Month YYYY */
    ADD("%s%d%04d", month_long[m - 1], d, y); /* Month D, YYYY */
    ADD("%04d%s%02d", y, month_short[m - 1], d);
#undef ADD
    return st;
}

MvStatus mv__pxids_collect(const MvDataset *ds, MvPxIds **out)
{
    static const struct {
        uint32_t tag;
        int kind;
    } sources[] = {
        {MV_TAG(0x0010, 0x0010), MV_ID_NAME},       {MV_TAG(0x0010, 0x1001), MV_ID_NAME},
        {MV_TAG(0x0010, 0x1005), MV_ID_NAME},       {MV_TAG(0x0010, 0x1060), MV_ID_NAME},
        {MV_TAG(0x0010, 0x0020), MV_ID_PATIENT_ID}, {MV_TAG(0x0010, 0x1000), MV_ID_OTHER_ID},
        {MV_TAG(0x0010, 0x1090), MV_ID_OTHER_ID},   {MV_TAG(0x0008, 0x0050), MV_ID_ACCESSION},
        {MV_TAG(0x0010, 0x0030), MV_ID_DATE},       {MV_TAG(0x0008, 0x0020), MV_ID_DATE},
        {MV_TAG(0x0008, 0x0021), MV_ID_DATE},       {MV_TAG(0x0008, 0x0022), MV_ID_DATE},
        {MV_TAG(0x0008, 0x0023), MV_ID_DATE},       {MV_TAG(0x0008, 0x0012), MV_ID_DATE},
    };
    MvPxIds *ids = calloc(1, sizeof *ids);
    MvStatus st = MV_OK;

    *out = NULL;
    if (ids == NULL)
        return MV_ERR_NOMEM;
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        char *v = NULL;
        if (mv_dataset_get_string(ds, sources[i].tag, &v, NULL) != MV_OK) {
            free(v);
            continue;
        }
        st = sources[i].kind == MV_ID_DATE ? add_date(ids, v) : add_values(ids, v, sources[i].kind);
        mv_wipe(v, strlen(v));
        free(v);
        if (st != MV_OK)
            goto out;
    }
    {
        /* Other Patient IDs Sequence (0010,1002): each item's Patient ID. */
        const MvElement *seq = mv_dataset_find(ds, MV_TAG(0x0010, 0x1002));
        for (size_t i = 0; seq != NULL && i < mv_element_item_count(seq) && i < 64; i++) {
            char *v = NULL;
            if (mv_dataset_get_string(mv_element_item(seq, i), MV_TAG(0x0010, 0x0020), &v, NULL) == MV_OK)
                st = add_values(ids, v, MV_ID_OTHER_ID);
            if (v != NULL)
                mv_wipe(v, strlen(v));
            free(v);
            if (st != MV_OK)
                goto out;
        }
    }
out:
    if (st != MV_OK) {
        mv__pxids_free(ids);
        return st;
    }
    *out = ids;
    return MV_OK;
}

/* ---- matching -------------------------------------------------------------------------- */

static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb, size_t cap)
{
    size_t row[MAX_CANON + 1];

    if (la > MAX_CANON || lb > MAX_CANON)
        return cap + 1;
    if ((la > lb ? la - lb : lb - la) > cap)
        return cap + 1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0], best;
        row[0] = i;
        best = row[0];
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], v = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < v)
                v = up + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            diag = up;
            row[j] = v;
            if (v < best)
                best = v;
        }
        if (best > cap)
            return cap + 1;
    }
    return row[lb];
}

static int is_month(const char *w)
{
    char low[16];
    size_t n = 0;

    for (; *w != '\0' && n + 1 < sizeof low; w++)
        if (isalpha((unsigned char)*w))
            low[n++] = (char)tolower((unsigned char)*w);
    low[n] = '\0';
    if (n < 3)
        return 0;
    for (int m = 0; m < 12; m++)
        if (strncmp(low, month_short[m], 3) == 0 && strncmp(month_long[m], low, n) == 0)
            return 1;
    return 0;
}

static size_t count_digits(const char *w, size_t *longest_run)
{
    size_t n = 0, run = 0;

    *longest_run = 0;
    for (; *w != '\0'; w++) {
        if (isdigit((unsigned char)*w)) {
            n++;
            if (++run > *longest_run)
                *longest_run = run;
        } else {
            run = 0;
        }
    }
    return n;
}

/* d{1,4} SEP d{1,2} SEP d{2,4} with SEP one of / . - and at least one 4-digit part or
 * 2-digit parts only: a written date. */
static int date_shaped(const char *w)
{
    int parts[3] = {0}, n = 0;
    char sep = 0;

    for (const char *p = w; *p != '\0'; p++) {
        if (isdigit((unsigned char)*p)) {
            if (++parts[n] > 4)
                return 0;
        } else if (*p == '/' || *p == '.' || *p == '-') {
            if (parts[n] == 0 || n == 2 || (sep != 0 && *p != sep))
                return 0;
            sep = *p;
            n++;
        } else if (!(p[1] == '\0' && (*p == ',' || *p == ')'))) {
            return 0;
        }
    }
    return n == 2 && parts[2] >= 2 && parts[1] <= 2 && (parts[0] == 4 || parts[0] <= 2);
}

/* 8 digits that read as a date of 1900-2099 (YYYYMMDD). */
static int compact_date(const char *w)
{
    int y, m, d;
    char extra;

    if (strlen(w) != 8 || sscanf(w, "%4d%2d%2d%c", &y, &m, &d, &extra) != 3)
        return 0;
    return y >= 1900 && y <= 2099 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static int pattern_word(const char *w)
{
    size_t run, digits = count_digits(w, &run);

    (void)digits;
    return run >= 6 || date_shaped(w) || compact_date(w);
}

size_t mv__match_words(const MvPxIds *ids, MvPxWord *words, size_t n_words, int all_text)
{
    size_t marked = 0;
    size_t start = 0;

    while (start < n_words) {
        size_t end = start;
        char line[2048];
        int owner[2048];
        size_t len = 0;

        while (end < n_words && words[end].line == words[start].line)
            end++;
        /* The line's canonical text, each character knowing its word. */
        for (size_t w = start; w < end; w++) {
            char canon[1024];
            if (strlen(words[w].text) >= sizeof canon)
                continue;
            mv__canon(words[w].text, canon);
            for (size_t k = 0; canon[k] != '\0' && len + 1 < sizeof line; k++) {
                owner[len] = (int)w;
                line[len++] = canon[k];
            }
        }
        line[len] = '\0';
        for (size_t i = 0; ids != NULL && i < ids->n; i++) {
            const PxId *id = &ids->ids[i];
            for (const char *hit = strstr(line, id->canon); hit != NULL; hit = strstr(hit + 1, id->canon)) {
                size_t a = (size_t)(hit - line), b = a + id->len - 1;
                /* Short identifiers must cover whole words, or "ann" would hide "channel". */
                if (id->len < 5 && ((a > 0 && owner[a - 1] == owner[a]) ||
                                    (b + 1 < len && owner[b + 1] == owner[b])))
                    continue;
                for (size_t k = a; k <= b; k++)
                    if (words[owner[k]].kind == 0 || words[owner[k]].kind == MV_ID_TEXT)
                        words[owner[k]].kind = id->kind;
            }
        }
        for (size_t w = start; w < end; w++) {
            char canon[1024];
            size_t clen;
            if (words[w].kind != 0 && words[w].kind != MV_ID_TEXT)
                continue;
            if (strlen(words[w].text) >= sizeof canon)
                continue;
            mv__canon(words[w].text, canon);
            clen = strlen(canon);
            /* Tolerance for OCR errors on long tokens. */
            for (size_t i = 0; ids != NULL && i < ids->n && words[w].kind == 0; i++) {
                const PxId *id = &ids->ids[i];
                size_t cap = id->len >= 10 ? 2 : id->len >= 6 ? 1 : 0;
                if (cap > 0 && clen >= 4 && edit_distance(canon, clen, id->canon, id->len, cap) <= cap)
                    words[w].kind = id->kind;
            }
            if (words[w].kind == 0 && pattern_word(words[w].text))
                words[w].kind = MV_ID_PATTERN;
            /* "22 Jul 1943": a day, a month name and a year. */
            if (words[w].kind == 0 && w + 2 < end && is_month(words[w + 1].text)) {
                size_t r1, r2;
                size_t d1 = count_digits(words[w].text, &r1), d2 = count_digits(words[w + 2].text, &r2);
                if (d1 >= 1 && d1 <= 2 && r1 == d1 && d2 >= 2 && d2 <= 4 && r2 == d2)
                    words[w].kind = words[w + 1].kind = words[w + 2].kind = MV_ID_PATTERN;
            }
            if (words[w].kind == 0 && all_text) {
                size_t alnum = 0;
                for (const char *p = words[w].text; *p != '\0'; p++)
                    alnum += isalnum((unsigned char)*p) != 0;
                if (alnum >= 2)
                    words[w].kind = MV_ID_TEXT;
            }
        }
        start = end;
    }
    for (size_t w = 0; w < n_words; w++)
        marked += words[w].kind != 0;
    return marked;
}
