/* Recipes: the small line-based format of docs/recipes.md that overrides the profile's
 * action per attribute, maps values through CSV tables and quarantines files by condition.
 * This file parses recipes and their tables, indexes the rules for one lookup per element,
 * evaluates quarantine conditions and keeps the SHA-256 of every byte it loaded. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/core_int.h"
#include "deid/deid_int.h"

#define VERSION_WORD "medveil-recipe"
#define MAX_LINE 4096                   /* bytes of one line, newline excluded */
#define MAX_RULES 100000                /* rules of every kind over all loaded recipes */
#define MAX_MAP_ROWS 1000000            /* data rows of one CSV table */
#define MAX_RECIPE_BYTES (64u << 20)
#define MAX_TABLE_BYTES (256u << 20)
#define MAX_REASON 255                  /* MvDeidResult.reason holds 255 bytes and a NUL */
#define SHOWN(len) ((int)((len) > 80 ? 80 : (len))) /* how much of a token a message quotes */

/* ---- Model ------------------------------------------------------------------------- */

typedef enum TargetKind {
    TARGET_TAG,     /* one tag, by number or keyword */
    TARGET_CREATOR, /* (gggg,"CREATOR",ee): element offset ee of the creator's block */
    TARGET_MASK     /* tag digits given as x, or a repeating-group keyword */
} TargetKind;

typedef struct Target {
    TargetKind kind;
    uint32_t tag;        /* TAG: the tag; MASK: the fixed digits (x digits 0); CREATOR: the group
                            in the high half and the element offset in the low byte */
    uint32_t mask;       /* MASK: bits that must match; CREATOR: bits of the offset that must match */
    const char *creator; /* CREATOR: the creator string, trimmed */
    size_t creator_len;
} Target;

/* Specificity: a tag beats a creator target beats a mask; within a kind, more fixed bits win. */
enum { SPEC_MASK = 0, SPEC_CREATOR = 100, SPEC_TAG = 200 };

typedef struct Rule {
    MvRecipeRule pub; /* handed out by mv__recipe_rule */
    Target target;
    size_t seq;       /* position in load order over the whole recipe */
    int specificity;
} Rule;

typedef enum CondOp { COND_EQ, COND_NE, COND_CONTAINS, COND_PRESENT, COND_ABSENT } CondOp;

typedef struct Cond {
    Target target; /* TARGET_TAG, or TARGET_CREATOR with a fixed offset */
    CondOp op;
    const char *value;
    size_t value_len;
} Cond;

typedef struct Quarantine {
    const char *reason;
    Cond *conds;
    size_t n_conds;
    const char *file;
    int line;
} Quarantine;

typedef struct MapEntry {
    const char *original; /* trimmed, NUL-terminated, inside MvRecipeMap.bytes */
    size_t original_len;
    const char *replacement;
    size_t line;          /* line in the CSV file, for messages */
} MapEntry;

struct MvRecipeMap {
    char *path;         /* as opened (relative paths joined to the recipe's folder) */
    char *bytes;        /* the file, split into fields in place */
    size_t n_bytes;
    MapEntry *entries;  /* sorted by original */
    size_t n_entries;
};

/* One loaded recipe file and everything it owns. Rules and strings do not move once the
 * file has loaded, so pointers to them stay valid until mv__recipe_free. */
typedef struct Part {
    struct Part *next;
    char *path;
    Rule *rules;
    size_t n_rules, cap_rules;
    Quarantine *quarantines;
    size_t n_quarantines, cap_quarantines;
    MvRecipeMap **maps;
    size_t n_maps, cap_maps;
    char **strings;
    size_t n_strings, cap_strings;
} Part;

typedef struct MaskGroup {
    uint32_t mask;
    int bits;
    size_t start, end; /* range of Index.masked */
} MaskGroup;

/* Lookup structures over the rules of every part, rebuilt after each load. */
typedef struct Index {
    const Rule **exact;   /* by tag, then seq */
    size_t n_exact;
    const Rule **creator; /* by group, creator, then seq */
    size_t n_creator;
    const Rule **masked;  /* by mask, fixed digits, then seq */
    size_t n_masked;
    MaskGroup *groups;    /* one per distinct mask, most fixed bits first */
    size_t n_groups;
} Index;

struct MvRecipe {
    Part *first, *last;
    size_t n_rules;   /* rules and quarantine rules of every part */
    Index index;
    EVP_MD_CTX *sha;  /* over every byte loaded so far */
    char hash[65];
};

/* ---- Small helpers ------------------------------------------------------------------- */

/* Room for need items of size bytes in items (capacity *cap): the possibly moved array, or
 * NULL when out of memory (items is then untouched). */
static void *reserve(void *items, size_t *cap, size_t need, size_t size)
{
    size_t new_cap;
    void *grown;

    if (need <= *cap && items != NULL)
        return items;
    new_cap = *cap ? *cap : 8;
    while (new_cap < need)
        new_cap *= 2;
    grown = realloc(items, new_cap * size);
    if (grown != NULL)
        *cap = new_cap;
    return grown;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && is_blank((*s)[0])) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_blank((*s)[*len - 1]))
        (*len)--;
}

static int compare_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);

    if (c != 0)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

static int word_is(const char *word, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(word, name, len) == 0;
}

static int popcount32(uint32_t v)
{
    int n = 0;

    for (; v != 0; v &= v - 1)
        n++;
    return n;
}

/* 1 if the n bytes at s are well-formed UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;

        if (c < 0x80) {
            i++;
            continue;
        }
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
        if (n - i < need || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += need;
    }
    return 1;
}

/* ---- Reading files ------------------------------------------------------------------- */

typedef enum ReadStatus { READ_OK, READ_NOMEM, READ_OPEN, READ_READ, READ_NOT_FILE, READ_TOO_BIG } ReadStatus;

/* Reads the regular file path (at most cap bytes) into a malloc'd buffer with one NUL
 * byte after the content. On failure *out is NULL and *errnum holds errno if relevant. */
static ReadStatus read_whole(const char *path, size_t cap, char **out, size_t *out_len, int *errnum)
{
    int fd = -1;
    struct stat st;
    char *buf = NULL;
    size_t size, got = 0;
    ReadStatus rs = READ_OK;

    *out = NULL;
    *out_len = 0;
    *errnum = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        *errnum = errno;
        rs = READ_OPEN;
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        *errnum = errno;
        rs = READ_READ;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rs = READ_NOT_FILE;
        goto out;
    }
    if ((uint64_t)st.st_size > cap) {
        rs = READ_TOO_BIG;
        goto out;
    }
    size = (size_t)st.st_size;
    buf = malloc(size + 1);
    if (buf == NULL) {
        rs = READ_NOMEM;
        goto out;
    }
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *errnum = errno;
            rs = READ_READ;
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *out_len = got;
    buf = NULL;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rs;
}

static MvStatus read_status(ReadStatus rs)
{
    switch (rs) {
    case READ_OK: return MV_OK;
    case READ_NOMEM: return MV_ERR_NOMEM;
    case READ_OPEN:
    case READ_READ: return MV_ERR_IO;
    case READ_NOT_FILE:
    case READ_TOO_BIG: return MV_ERR_ARG;
    }
    return MV_ERR_IO;
}

/* The text of a failed read_whole, "cannot open: No such file or directory" ... */
static const char *read_problem(ReadStatus rs, int errnum, size_t cap, char *buf, size_t buf_len)
{
    switch (rs) {
    case READ_OPEN: snprintf(buf, buf_len, "cannot open: %s", strerror(errnum)); break;
    case READ_READ: snprintf(buf, buf_len, "cannot read: %s", strerror(errnum)); break;
    case READ_NOT_FILE: snprintf(buf, buf_len, "not a regular file"); break;
    case READ_TOO_BIG: snprintf(buf, buf_len, "larger than %zu MiB", cap >> 20); break;
    case READ_NOMEM:
    case READ_OK: snprintf(buf, buf_len, "out of memory"); break;
    }
    return buf;
}

/* ---- Freeing ------------------------------------------------------------------------- */

static void map_free(MvRecipeMap *map)
{
    if (map == NULL)
        return;
    /* The table holds patient identifiers: wipe it rather than leave it in the heap. */
    if (map->bytes != NULL)
        OPENSSL_cleanse(map->bytes, map->n_bytes);
    free(map->bytes);
    free(map->entries);
    free(map->path);
    free(map);
}

static void part_free(Part *part)
{
    if (part == NULL)
        return;
    for (size_t i = 0; i < part->n_quarantines; i++)
        free(part->quarantines[i].conds);
    for (size_t i = 0; i < part->n_maps; i++)
        map_free(part->maps[i]);
    for (size_t i = 0; i < part->n_strings; i++)
        free(part->strings[i]);
    free(part->quarantines);
    free(part->maps);
    free(part->strings);
    free(part->rules);
    free(part->path);
    free(part);
}

static void index_free(Index *ix)
{
    free(ix->exact);
    free(ix->creator);
    free(ix->masked);
    free(ix->groups);
    memset(ix, 0, sizeof *ix);
}

void mv__recipe_free(MvRecipe *recipe)
{
    Part *part, *next;

    if (recipe == NULL)
        return;
    for (part = recipe->first; part != NULL; part = next) {
        next = part->next;
        part_free(part);
    }
    index_free(&recipe->index);
    EVP_MD_CTX_free(recipe->sha);
    free(recipe);
}

/* ---- Parser state and messages ------------------------------------------------------- */

typedef struct Parser {
    const MvRecipe *recipe; /* only read: the rules loaded before */
    Part *part;             /* what this file adds */
    EVP_MD_CTX *sha;
    const char *file;
    int line;
    const char *p;          /* cursor in the current line, which is NUL-terminated */
    MvError *err;
    char scratch[MAX_LINE + 1]; /* an unquoted value */
} Parser;

static MvStatus fail(Parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "FILE:LINE: what" as MV_ERR_ARG. */
static MvStatus fail(Parser *ps, const char *fmt, ...)
{
    char what[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mv_error_set(ps->err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s:%d: %s", ps->file, ps->line, what);
}

static MvStatus fail_nomem(Parser *ps)
{
    return mv_error_set(ps->err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "%s:%d: out of memory", ps->file,
                        ps->line);
}

/* A copy of len bytes owned by the part (NUL-terminated), or NULL when out of memory. */
static const char *part_string(Part *part, const char *s, size_t len)
{
    char *copy;
    void *grown = reserve(part->strings, &part->cap_strings, part->n_strings + 1, sizeof *part->strings);

    if (grown == NULL)
        return NULL;
    part->strings = grown;
    copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    part->strings[part->n_strings++] = copy;
    return copy;
}

/* ---- Tokens -------------------------------------------------------------------------- */

static void skip_blanks(Parser *ps)
{
    while (is_blank(*ps->p))
        ps->p++;
}

/* 1 at the end of the line or at a comment ('#' where a token would start). */
static int at_line_end(Parser *ps)
{
    skip_blanks(ps);
    return *ps->p == '\0' || *ps->p == '#';
}

/* The run of non-blank bytes at the cursor; the cursor moves past it. */
static size_t read_word(Parser *ps, const char **word)
{
    skip_blanks(ps);
    *word = ps->p;
    while (*ps->p != '\0' && !is_blank(*ps->p))
        ps->p++;
    return (size_t)(ps->p - *word);
}

/* Unescapes the double-quoted string that starts at *pos (\" and \\ are the escapes) into
 * ps->scratch; *pos moves past the closing quote. */
static MvStatus unquote(Parser *ps, const char **pos, size_t *len)
{
    const char *q = *pos + 1;
    size_t n = 0;

    assert(**pos == '"');
    for (;;) {
        if (*q == '\0')
            return fail(ps, "unterminated quote");
        if (*q == '"')
            break;
        if (*q == '\\') {
            if (q[1] == '\0')
                return fail(ps, "unterminated quote");
            if (q[1] != '"' && q[1] != '\\')
                return fail(ps, "unknown escape in a quoted value (only \\\" and \\\\ are escapes)");
            q++;
        }
        ps->scratch[n++] = *q++;
    }
    ps->scratch[n] = '\0';
    *len = n;
    *pos = q + 1;
    return MV_OK;
}

/* A quoted value as a token of its own: it must be followed by a blank or the line end. */
static MvStatus read_quoted(Parser *ps, size_t *len)
{
    MvStatus status = unquote(ps, &ps->p, len);

    if (status == MV_OK && *ps->p != '\0' && !is_blank(*ps->p))
        return fail(ps, "text after a closing quote");
    return status;
}

/* Fails with "unexpected ..." unless only blanks or a comment remain. */
static MvStatus expect_line_end(Parser *ps)
{
    const char *word;
    size_t len;

    if (at_line_end(ps))
        return MV_OK;
    if (*ps->p == '"')
        return fail(ps, "unexpected quoted value at the end of the line");
    len = read_word(ps, &word);
    return fail(ps, "unexpected '%.*s' at the end of the line", SHOWN(len), word);
}

/* ---- Targets ------------------------------------------------------------------------- */

/* n digits at s, each a hex digit or x: their value (x as 0) and mask (x as 0) in *value
 * and *mask. 0 if some character is neither. */
static int parse_digits(const char *s, int n, uint32_t *value, uint32_t *mask)
{
    *value = 0;
    *mask = 0;
    for (int i = 0; i < n; i++) {
        char c = s[i];
        uint32_t v;

        if (c >= '0' && c <= '9')
            v = (uint32_t)(c - '0');
        else if (c >= 'A' && c <= 'F')
            v = (uint32_t)(c - 'A' + 10);
        else if (c >= 'a' && c <= 'f')
            v = (uint32_t)(c - 'a' + 10);
        else if (c == 'x' || c == 'X') {
            *value <<= 4;
            *mask <<= 4;
            continue;
        } else
            return 0;
        *value = (*value << 4) | v;
        *mask = (*mask << 4) | 0xFu;
    }
    return 1;
}

static void set_tag_target(Target *t, uint32_t value, uint32_t mask)
{
    memset(t, 0, sizeof *t);
    t->kind = mask == 0xFFFFFFFFu ? TARGET_TAG : TARGET_MASK;
    t->tag = value & mask;
    t->mask = mask;
}

/* Where the target that starts at s ends: a parenthesized one at its ')' (blanks and quoted
 * strings inside), any other at the first blank. */
static const char *target_end(const char *s)
{
    int quoted = 0;
    const char *p = s;

    if (*s != '(') {
        while (*p != '\0' && !is_blank(*p))
            p++;
        return p;
    }
    for (; *p != '\0'; p++) {
        if (quoted) {
            if (*p == '\\' && p[1] != '\0')
                p++;
            else if (*p == '"')
                quoted = 0;
        } else if (*p == '"')
            quoted = 1;
        else if (*p == ')')
            return p + 1;
    }
    return p;
}

static void skip_blanks_at(const char **q)
{
    while (is_blank(**q))
        (*q)++;
}

/* (gggg,eeee) or (gggg,"CREATOR",ee), blanks allowed around the commas. */
static MvStatus parse_paren_target(Parser *ps, const char *start, const char *stop, Target *t)
{
    const char *q = start + 1;
    uint32_t group, group_mask, element, element_mask;
    size_t len = (size_t)(stop - start);
    MvStatus status;

    skip_blanks_at(&q);
    if (!parse_digits(q, 4, &group, &group_mask))
        goto bad;
    q += 4;
    skip_blanks_at(&q);
    if (*q++ != ',')
        goto bad;
    skip_blanks_at(&q);
    if (*q == '"') {
        const char *creator;
        size_t creator_len;

        if ((status = unquote(ps, &q, &creator_len)) != MV_OK)
            return status;
        skip_blanks_at(&q);
        if (*q++ != ',')
            goto bad;
        skip_blanks_at(&q);
        if (!parse_digits(q, 2, &element, &element_mask))
            goto bad;
        q += 2;
        skip_blanks_at(&q);
        if (*q++ != ')' || q != stop)
            goto bad;
        if (group_mask != 0xFFFFu)
            return fail(ps, "the group of '%.*s' must be four hex digits", SHOWN(len), start);
        if (!MV_TAG_IS_PRIVATE(MV_TAG(group, 0x1000u)))
            return fail(ps, "group %04X in '%.*s' is not a private group", (unsigned)group, SHOWN(len), start);
        creator = ps->scratch;
        trim(&creator, &creator_len);
        if (creator_len == 0)
            return fail(ps, "empty private creator in '%.*s'", SHOWN(len), start);
        memset(t, 0, sizeof *t);
        t->kind = TARGET_CREATOR;
        t->tag = MV_TAG(group, element);
        t->mask = element_mask;
        t->creator_len = creator_len;
        if ((t->creator = part_string(ps->part, creator, creator_len)) == NULL)
            return fail_nomem(ps);
        return MV_OK;
    }
    if (!parse_digits(q, 4, &element, &element_mask))
        goto bad;
    q += 4;
    skip_blanks_at(&q);
    if (*q++ != ')' || q != stop)
        goto bad;
    set_tag_target(t, (group << 16) | element, (group_mask << 16) | element_mask);
    return MV_OK;
bad:
    return fail(ps, "'%.*s' is not a tag or keyword", SHOWN(len), start);
}

/* A keyword, gggg,eeee or ggggeeee (x digits allowed). */
static MvStatus parse_word_target(Parser *ps, const char *start, size_t len, Target *t)
{
    char keyword[128];
    uint32_t group, group_mask, element, element_mask;

    if (len < sizeof keyword) {
        const MvDictEntry *entry;

        memcpy(keyword, start, len);
        keyword[len] = '\0';
        entry = mv_dict_lookup_keyword(keyword);
        if (entry != NULL && entry->keyword[0] != '\0') {
            set_tag_target(t, entry->tag, entry->mask);
            return MV_OK;
        }
    }
    if (len == 9 && start[4] == ',' && parse_digits(start, 4, &group, &group_mask) &&
        parse_digits(start + 5, 4, &element, &element_mask)) {
        set_tag_target(t, (group << 16) | element, (group_mask << 16) | element_mask);
        return MV_OK;
    }
    if (len == 8 && parse_digits(start, 8, &element, &element_mask)) {
        set_tag_target(t, element, element_mask);
        return MV_OK;
    }
    return fail(ps, "'%.*s' is not a tag or keyword", SHOWN(len), start);
}

/* Reads the target at the cursor; after names what comes before it, for messages. The raw
 * text of the target is given back in *raw and *raw_len. */
static MvStatus parse_target(Parser *ps, const char *after, Target *t, const char **raw, size_t *raw_len)
{
    const char *start, *stop;
    MvStatus status;

    if (at_line_end(ps) || *ps->p == '"')
        return fail(ps, "expected a target after %s", after);
    start = ps->p;
    stop = target_end(start);
    if (*start == '(')
        status = parse_paren_target(ps, start, stop, t);
    else
        status = parse_word_target(ps, start, (size_t)(stop - start), t);
    if (status != MV_OK)
        return status;
    ps->p = stop;
    if (raw != NULL) {
        *raw = start;
        *raw_len = (size_t)(stop - start);
    }
    return MV_OK;
}

static int target_specificity(const Target *t)
{
    switch (t->kind) {
    case TARGET_TAG: return SPEC_TAG;
    case TARGET_CREATOR: return SPEC_CREATOR + popcount32(t->mask & 0xFFu);
    case TARGET_MASK: return SPEC_MASK + popcount32(t->mask);
    }
    return SPEC_MASK;
}

/* ---- CSV tables ---------------------------------------------------------------------- */

static MvStatus table_fail(Parser *ps, const char *name, size_t csv_line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "FILE:LINE: map table NAME:CSVLINE: what". Never a value of the table: they may be
 * patient identifiers. */
static MvStatus table_fail(Parser *ps, const char *name, size_t csv_line, const char *fmt, ...)
{
    char what[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (csv_line == 0)
        return fail(ps, "map table %s: %s", name, what);
    return fail(ps, "map table %s:%zu: %s", name, csv_line, what);
}

/* Splits the NUL-terminated line s into comma-separated fields in place. A field is trimmed
 * of blanks and may be enclosed in double quotes, "" standing for one quote. The first two
 * fields are returned, NUL-terminated. Returns the number of fields, -1 for an unterminated
 * quote, -2 for text after a closing quote. */
static long split_csv(char *s, char *field[2], size_t len[2])
{
    char *p = s;
    long n = 0;

    for (;;) {
        char *start, *w, next;

        while (is_blank(*p))
            p++;
        if (*p == '"') {
            start = w = ++p;
            for (;;) {
                if (*p == '\0')
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else
                    *w++ = *p++;
            }
            while (is_blank(*p))
                p++;
            if (*p != ',' && *p != '\0')
                return -2;
        } else {
            start = p;
            while (*p != ',' && *p != '\0')
                p++;
            w = p;
        }
        while (start < w && is_blank(*start))
            start++;
        while (w > start && is_blank(w[-1]))
            w--;
        next = *p;
        *w = '\0';
        if (n < 2) {
            field[n] = start;
            len[n] = (size_t)(w - start);
        }
        n++;
        if (next == '\0')
            return n;
        p++;
    }
}

static int compare_entries(const void *a, const void *b)
{
    const MapEntry *x = a, *y = b;
    int c = compare_bytes(x->original, x->original_len, y->original, y->original_len);

    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

static int equal_nocase(const char *a, size_t len, const char *word)
{
    if (strlen(word) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return 1;
}

/* Parses map->bytes into map->entries, sorted, without duplicates. */
static MvStatus parse_table(Parser *ps, const char *name, MvRecipeMap *map)
{
    char *p = map->bytes, *end = map->bytes + map->n_bytes;
    size_t csv_line = 0, cap = 0;
    int first_row = 1;
    size_t dup_line = 0, dup_first = 0;

    if (map->n_bytes >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl != NULL ? nl : end) - p);
        char *field[2] = {NULL, NULL};
        size_t len[2] = {0, 0};
        long n_fields;
        char *line = p;

        csv_line++;
        p = nl != NULL ? nl + 1 : end;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n > MAX_LINE)
            return table_fail(ps, name, csv_line, "line longer than %d bytes", MAX_LINE);
        if (memchr(line, '\0', n) != NULL)
            return table_fail(ps, name, csv_line, "contains a NUL byte");
        if (!utf8_valid((const unsigned char *)line, n))
            return table_fail(ps, name, csv_line, "not valid UTF-8");
        line[n] = '\0';
        {
            const char *s = line;
            size_t k = n;
            trim(&s, &k);
            if (k == 0)
                continue;
        }
        n_fields = split_csv(line, field, len);
        if (n_fields == -1)
            return table_fail(ps, name, csv_line, "unterminated quote");
        if (n_fields == -2)
            return table_fail(ps, name, csv_line, "text after a closing quote");
        if (n_fields != 2)
            return table_fail(ps, name, csv_line, "expected 2 columns, found %ld", n_fields);
        if (first_row) {
            first_row = 0;
            if (equal_nocase(field[0], len[0], "original") && equal_nocase(field[1], len[1], "replacement"))
                continue;
        }
        if (len[0] == 0)
            return table_fail(ps, name, csv_line, "empty original");
        if (len[1] == 0)
            return table_fail(ps, name, csv_line, "empty replacement");
        if (map->n_entries == MAX_MAP_ROWS)
            return table_fail(ps, name, csv_line, "more than %d rows", MAX_MAP_ROWS);
        {
            void *grown = reserve(map->entries, &cap, map->n_entries + 1, sizeof *map->entries);
            if (grown == NULL)
                return fail_nomem(ps);
            map->entries = grown;
        }
        map->entries[map->n_entries++] = (MapEntry){field[0], len[0], field[1], csv_line};
    }
    if (map->n_entries > 1)
        qsort(map->entries, map->n_entries, sizeof *map->entries, compare_entries);
    /* Report the duplicate met first when reading the file top to bottom. */
    for (size_t i = 1; i < map->n_entries; i++) {
        const MapEntry *prev = &map->entries[i - 1], *cur = &map->entries[i];
        if (compare_bytes(prev->original, prev->original_len, cur->original, cur->original_len) != 0)
            continue;
        if (dup_line == 0 || cur->line < dup_line) {
            size_t k = i - 1;
            while (k > 0 && compare_bytes(map->entries[k - 1].original, map->entries[k - 1].original_len,
                                          cur->original, cur->original_len) == 0)
                k--;
            dup_line = cur->line;
            dup_first = map->entries[k].line;
        }
    }
    if (dup_line != 0)
        return table_fail(ps, name, dup_line, "duplicate original (first on line %zu)", dup_first);
    return MV_OK;
}

/* The path of a table named in the recipe file: absolute as given, else relative to the
 * recipe's folder. NULL when out of memory. */
static char *table_path(const char *recipe_path, const char *name)
{
    const char *slash = strrchr(recipe_path, '/');
    size_t dir_len, name_len = strlen(name);
    char *path;

    if (name[0] == '/' || slash == NULL)
        return strdup(name);
    dir_len = (size_t)(slash - recipe_path) + 1;
    path = malloc(dir_len + name_len + 1);
    if (path == NULL)
        return NULL;
    memcpy(path, recipe_path, dir_len);
    memcpy(path + dir_len, name, name_len + 1);
    return path;
}

/* Loads the table name (as written in the recipe) once per recipe file. */
static MvStatus load_table(Parser *ps, const char *name, const MvRecipeMap **out)
{
    Part *part = ps->part;
    MvRecipeMap *map = NULL;
    char *path = NULL;
    ReadStatus rs;
    int errnum;
    MvStatus status = MV_OK;

    path = table_path(ps->file, name);
    if (path == NULL) {
        status = fail_nomem(ps);
        goto out;
    }
    for (size_t i = 0; i < part->n_maps; i++) {
        if (strcmp(part->maps[i]->path, path) == 0) {
            *out = part->maps[i];
            goto out;
        }
    }
    {
        void *grown = reserve(part->maps, &part->cap_maps, part->n_maps + 1, sizeof *part->maps);
        if (grown == NULL) {
            status = fail_nomem(ps);
            goto out;
        }
        part->maps = grown;
    }
    map = calloc(1, sizeof *map);
    if (map == NULL) {
        status = fail_nomem(ps);
        goto out;
    }
    map->path = path;
    path = NULL;
    rs = read_whole(map->path, MAX_TABLE_BYTES, &map->bytes, &map->n_bytes, &errnum);
    if (rs != READ_OK) {
        char problem[200];

        table_fail(ps, name, 0, "%s", read_problem(rs, errnum, MAX_TABLE_BYTES, problem, sizeof problem));
        status = read_status(rs); /* the message as for MV_ERR_ARG, the code of what failed */
        if (ps->err != NULL)
            ps->err->code = status;
        goto out;
    }
    if (EVP_DigestUpdate(ps->sha, map->bytes, map->n_bytes) != 1) {
        status = mv_error_set(ps->err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "%s:%d: SHA-256 failed",
                              ps->file, ps->line);
        goto out;
    }
    if ((status = parse_table(ps, name, map)) != MV_OK)
        goto out;
    part->maps[part->n_maps++] = map;
    *out = map;
    map = NULL;
out:
    map_free(map);
    free(path);
    return status;
}

/* ---- Rules --------------------------------------------------------------------------- */

static const struct {
    const char *name;
    MvRecipeAction action;
} actions[] = {
    {"keep", MV_RA_KEEP},
    {"remove", MV_RA_REMOVE},
    {"empty", MV_RA_EMPTY},
    {"replace", MV_RA_REPLACE},
    {"pseudonymize", MV_RA_PSEUDONYMIZE},
    {"shift", MV_RA_SHIFT},
    {"clean", MV_RA_CLEAN},
    {"uid", MV_RA_UID},
    {"map", MV_RA_MAP},
};

static MvStatus check_rule_count(Parser *ps)
{
    if (ps->recipe->n_rules + ps->part->n_rules + ps->part->n_quarantines >= MAX_RULES)
        return fail(ps, "more than %d rules", MAX_RULES);
    return MV_OK;
}

/* ACTION TARGET [ARGS] for every action but quarantine. */
static MvStatus parse_action_rule(Parser *ps, const char *action_word, MvRecipeAction action)
{
    Rule rule;
    size_t len;
    MvStatus status;
    void *grown;

    memset(&rule, 0, sizeof rule);
    rule.pub.action = action;
    rule.pub.file = ps->part->path;
    rule.pub.line = ps->line;
    if ((status = parse_target(ps, action_word, &rule.target, NULL, NULL)) != MV_OK)
        return status;
    if (action == MV_RA_REPLACE) {
        skip_blanks(ps);
        if (*ps->p != '"')
            return fail(ps, "expected a quoted value after replace");
        if ((status = read_quoted(ps, &len)) != MV_OK)
            return status;
        if ((rule.pub.literal = part_string(ps->part, ps->scratch, len)) == NULL)
            return fail_nomem(ps);
    } else if (action == MV_RA_MAP) {
        const char *word;
        char name[MAX_LINE + 1];

        if (at_line_end(ps))
            return fail(ps, "expected a table file after map");
        if (*ps->p == '"') {
            if ((status = read_quoted(ps, &len)) != MV_OK)
                return status;
            memcpy(name, ps->scratch, len + 1);
        } else {
            len = read_word(ps, &word);
            memcpy(name, word, len);
            name[len] = '\0';
        }
        if (len == 0)
            return fail(ps, "expected a table file after map");
        rule.pub.map_missing = MV_RA_KEEP; /* quarantine */
        if (!at_line_end(ps)) {
            if (*ps->p == '"')
                return fail(ps, "expected 'else' or the end of the line after the table file");
            len = read_word(ps, &word);
            if (!word_is(word, len, "else"))
                return fail(ps, "expected 'else' or the end of the line after the table file, found '%.*s'",
                            SHOWN(len), word);
            len = at_line_end(ps) ? 0 : read_word(ps, &word);
            if (word_is(word, len, "pseudonymize"))
                rule.pub.map_missing = MV_RA_PSEUDONYMIZE;
            else if (word_is(word, len, "remove"))
                rule.pub.map_missing = MV_RA_REMOVE;
            else if (word_is(word, len, "quarantine"))
                rule.pub.map_missing = MV_RA_KEEP;
            else
                return fail(ps, "expected pseudonymize, remove or quarantine after else");
        }
        /* The whole line is checked before the table is read. */
        if ((status = expect_line_end(ps)) != MV_OK)
            return status;
        if ((status = load_table(ps, name, &rule.pub.map)) != MV_OK)
            return status;
    }
    if (action != MV_RA_MAP && (status = expect_line_end(ps)) != MV_OK)
        return status;
    if ((status = check_rule_count(ps)) != MV_OK)
        return status;
    grown = reserve(ps->part->rules, &ps->part->cap_rules, ps->part->n_rules + 1, sizeof *ps->part->rules);
    if (grown == NULL)
        return fail_nomem(ps);
    ps->part->rules = grown;
    rule.seq = ps->recipe->n_rules + ps->part->n_rules + ps->part->n_quarantines;
    rule.specificity = target_specificity(&rule.target);
    ps->part->rules[ps->part->n_rules++] = rule;
    return MV_OK;
}

/* quarantine "REASON" if COND [and COND]... */
static MvStatus parse_quarantine(Parser *ps)
{
    Quarantine q;
    size_t len, cap_conds = 0;
    const char *word, *after = "'if'";
    MvStatus status;
    void *grown;

    memset(&q, 0, sizeof q);
    q.file = ps->part->path;
    q.line = ps->line;
    skip_blanks(ps);
    if (*ps->p != '"') {
        status = fail(ps, "expected a quoted reason after quarantine");
        goto out;
    }
    if ((status = read_quoted(ps, &len)) != MV_OK)
        goto out;
    if (len == 0) {
        status = fail(ps, "empty quarantine reason");
        goto out;
    }
    if (len > MAX_REASON) {
        status = fail(ps, "quarantine reason longer than %d bytes", MAX_REASON);
        goto out;
    }
    if ((q.reason = part_string(ps->part, ps->scratch, len)) == NULL) {
        status = fail_nomem(ps);
        goto out;
    }
    len = at_line_end(ps) ? 0 : read_word(ps, &word);
    if (!word_is(word, len, "if")) {
        status = fail(ps, "expected 'if' after the quarantine reason");
        goto out;
    }
    for (;;) {
        Cond cond;
        const char *raw;
        size_t raw_len;

        memset(&cond, 0, sizeof cond);
        if ((status = parse_target(ps, after, &cond.target, &raw, &raw_len)) != MV_OK)
            goto out;
        if (cond.target.kind == TARGET_MASK ||
            (cond.target.kind == TARGET_CREATOR && cond.target.mask != 0xFFu)) {
            status = fail(ps, "a condition needs one element, but '%.*s' names many", SHOWN(raw_len), raw);
            goto out;
        }
        len = at_line_end(ps) || *ps->p == '"' ? 0 : read_word(ps, &word);
        if (word_is(word, len, "=="))
            cond.op = COND_EQ;
        else if (word_is(word, len, "!="))
            cond.op = COND_NE;
        else if (word_is(word, len, "~"))
            cond.op = COND_CONTAINS;
        else if (word_is(word, len, "present"))
            cond.op = COND_PRESENT;
        else if (word_is(word, len, "absent"))
            cond.op = COND_ABSENT;
        else {
            status = fail(ps, "expected ==, !=, ~, present or absent after %.*s", SHOWN(raw_len), raw);
            goto out;
        }
        if (cond.op == COND_EQ || cond.op == COND_NE || cond.op == COND_CONTAINS) {
            skip_blanks(ps);
            if (*ps->p != '"') {
                status = fail(ps, "expected a quoted value after %.*s", (int)len, word);
                goto out;
            }
            if ((status = read_quoted(ps, &len)) != MV_OK)
                goto out;
            cond.value_len = len;
            if ((cond.value = part_string(ps->part, ps->scratch, len)) == NULL) {
                status = fail_nomem(ps);
                goto out;
            }
        }
        grown = reserve(q.conds, &cap_conds, q.n_conds + 1, sizeof *q.conds);
        if (grown == NULL) {
            status = fail_nomem(ps);
            goto out;
        }
        q.conds = grown;
        q.conds[q.n_conds++] = cond;
        if (at_line_end(ps))
            break;
        if (*ps->p == '"') {
            status = fail(ps, "expected 'and' or the end of the line, found a quoted value");
            goto out;
        }
        len = read_word(ps, &word);
        if (!word_is(word, len, "and")) {
            status = fail(ps, "expected 'and' or the end of the line, found '%.*s'", SHOWN(len), word);
            goto out;
        }
        after = "'and'";
    }
    if ((status = check_rule_count(ps)) != MV_OK)
        goto out;
    grown = reserve(ps->part->quarantines, &ps->part->cap_quarantines, ps->part->n_quarantines + 1,
                    sizeof *ps->part->quarantines);
    if (grown == NULL) {
        status = fail_nomem(ps);
        goto out;
    }
    ps->part->quarantines = grown;
    ps->part->quarantines[ps->part->n_quarantines++] = q;
    q.conds = NULL;
out:
    free(q.conds);
    return status;
}

static MvStatus parse_rule(Parser *ps)
{
    const char *word;
    size_t len = read_word(ps, &word);

    if (word_is(word, len, "quarantine"))
        return parse_quarantine(ps);
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (word_is(word, len, actions[i].name))
            return parse_action_rule(ps, actions[i].name, actions[i].action);
    return fail(ps, "unknown action '%.*s'", SHOWN(len), word);
}

/* "medveil-recipe 1" */
static MvStatus parse_version(Parser *ps)
{
    const char *word;
    size_t len = read_word(ps, &word);

    if (!word_is(word, len, VERSION_WORD) || at_line_end(ps))
        return fail(ps, "missing version line '" VERSION_WORD " 1'");
    len = read_word(ps, &word);
    if (!word_is(word, len, "1"))
        return fail(ps, "unsupported recipe version '%.*s' (this medveil reads version 1)", SHOWN(len), word);
    return expect_line_end(ps);
}

/* Parses the recipe text buf (len bytes, one writable byte past them) line by line. */
static MvStatus parse_recipe(Parser *ps, char *buf, size_t len)
{
    char *p = buf, *end = buf + len;
    int have_version = 0;
    MvStatus status;

    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    ps->line = 0;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl != NULL ? nl : end) - p);
        char *line = p;

        ps->line++;
        p = nl != NULL ? nl + 1 : end;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n > MAX_LINE)
            return fail(ps, "line longer than %d bytes", MAX_LINE);
        if (memchr(line, '\0', n) != NULL)
            return fail(ps, "contains a NUL byte");
        if (!utf8_valid((const unsigned char *)line, n))
            return fail(ps, "not valid UTF-8");
        line[n] = '\0';
        ps->p = line;
        if (at_line_end(ps))
            continue;
        if (!have_version) {
            if ((status = parse_version(ps)) != MV_OK)
                return status;
            have_version = 1;
            continue;
        }
        if ((status = parse_rule(ps)) != MV_OK)
            return status;
    }
    if (!have_version) {
        ps->line = 1;
        return fail(ps, "missing version line '" VERSION_WORD " 1'");
    }
    return MV_OK;
}

/* ---- Index --------------------------------------------------------------------------- */

static int compare_exact(const void *a, const void *b)
{
    const Rule *x = *(const Rule *const *)a, *y = *(const Rule *const *)b;

    if (x->target.tag != y->target.tag)
        return x->target.tag < y->target.tag ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int compare_creator_key(const Rule *x, uint16_t group, const char *creator, size_t creator_len)
{
    uint16_t x_group = MV_TAG_GROUP(x->target.tag);

    if (x_group != group)
        return x_group < group ? -1 : 1;
    return compare_bytes(x->target.creator, x->target.creator_len, creator, creator_len);
}

static int compare_creator(const void *a, const void *b)
{
    const Rule *x = *(const Rule *const *)a, *y = *(const Rule *const *)b;
    int c = compare_creator_key(x, MV_TAG_GROUP(y->target.tag), y->target.creator, y->target.creator_len);

    if (c != 0)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int compare_masked(const void *a, const void *b)
{
    const Rule *x = *(const Rule *const *)a, *y = *(const Rule *const *)b;

    if (x->target.mask != y->target.mask)
        return x->target.mask < y->target.mask ? -1 : 1;
    if (x->target.tag != y->target.tag)
        return x->target.tag < y->target.tag ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int compare_groups(const void *a, const void *b)
{
    const MaskGroup *x = a, *y = b;

    if (x->bits != y->bits)
        return x->bits > y->bits ? -1 : 1;
    return x->mask < y->mask ? -1 : x->mask > y->mask;
}

/* The part after part in load order: recipe's parts, then extra (not yet linked). NULL
 * as part gives the first one. */
static const Part *next_part(const MvRecipe *recipe, const Part *extra, const Part *part)
{
    if (part == NULL)
        return recipe->first != NULL ? recipe->first : extra;
    if (part == extra)
        return NULL;
    return part->next != NULL ? part->next : extra;
}

/* Builds in ix the index over the rules of recipe and of extra. */
static MvStatus build_index(const MvRecipe *recipe, const Part *extra, Index *ix)
{
    size_t n_exact = 0, n_creator = 0, n_masked = 0;
    const Part *part;

    memset(ix, 0, sizeof *ix);
    for (part = next_part(recipe, extra, NULL); part != NULL; part = next_part(recipe, extra, part)) {
        for (size_t i = 0; i < part->n_rules; i++) {
            TargetKind kind = part->rules[i].target.kind;
            n_exact += kind == TARGET_TAG;
            n_creator += kind == TARGET_CREATOR;
            n_masked += kind == TARGET_MASK;
        }
    }
    ix->exact = malloc((n_exact + 1) * sizeof *ix->exact);
    ix->creator = malloc((n_creator + 1) * sizeof *ix->creator);
    ix->masked = malloc((n_masked + 1) * sizeof *ix->masked);
    ix->groups = malloc((n_masked + 1) * sizeof *ix->groups);
    if (ix->exact == NULL || ix->creator == NULL || ix->masked == NULL || ix->groups == NULL) {
        index_free(ix);
        return MV_ERR_NOMEM;
    }
    for (part = next_part(recipe, extra, NULL); part != NULL; part = next_part(recipe, extra, part)) {
        for (size_t i = 0; i < part->n_rules; i++) {
            const Rule *rule = &part->rules[i];
            switch (rule->target.kind) {
            case TARGET_TAG: ix->exact[ix->n_exact++] = rule; break;
            case TARGET_CREATOR: ix->creator[ix->n_creator++] = rule; break;
            case TARGET_MASK: ix->masked[ix->n_masked++] = rule; break;
            }
        }
    }
    qsort(ix->exact, ix->n_exact, sizeof *ix->exact, compare_exact);
    qsort(ix->creator, ix->n_creator, sizeof *ix->creator, compare_creator);
    qsort(ix->masked, ix->n_masked, sizeof *ix->masked, compare_masked);
    for (size_t i = 0; i < ix->n_masked; i++) {
        uint32_t mask = ix->masked[i]->target.mask;
        if (ix->n_groups > 0 && ix->groups[ix->n_groups - 1].mask == mask) {
            ix->groups[ix->n_groups - 1].end = i + 1;
            continue;
        }
        ix->groups[ix->n_groups++] = (MaskGroup){mask, popcount32(mask), i, i + 1};
    }
    qsort(ix->groups, ix->n_groups, sizeof *ix->groups, compare_groups);
    return MV_OK;
}

/* ---- Loading ------------------------------------------------------------------------- */

static MvStatus hex_digest(const EVP_MD_CTX *sha, char out[65])
{
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    MvStatus status = MV_OK;

    if (copy == NULL)
        return MV_ERR_NOMEM;
    if (EVP_MD_CTX_copy_ex(copy, sha) != 1 || EVP_DigestFinal_ex(copy, md, &md_len) != 1 || md_len != 32) {
        status = MV_ERR_CRYPTO;
        goto out;
    }
    mv__hex(md, md_len, out);
out:
    EVP_MD_CTX_free(copy);
    return status;
}

MvStatus mv__recipe_load(MvRecipe **recipe, const char *path, MvError *err)
{
    MvRecipe *r, *created = NULL;
    Part *part = NULL;
    EVP_MD_CTX *sha = NULL;
    Index index;
    char *bytes = NULL, hash[65];
    size_t n_bytes = 0;
    Parser *ps = NULL;
    ReadStatus rs;
    int errnum;
    MvStatus status = MV_OK;

    assert(recipe != NULL && path != NULL);
    memset(&index, 0, sizeof index);
    r = *recipe;
    if (r == NULL && (r = created = calloc(1, sizeof *r)) == NULL)
        goto nomem;
    if ((sha = EVP_MD_CTX_new()) == NULL)
        goto nomem;
    if ((r->sha != NULL ? EVP_MD_CTX_copy_ex(sha, r->sha) : EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) != 1)
        goto crypto;
    rs = read_whole(path, MAX_RECIPE_BYTES, &bytes, &n_bytes, &errnum);
    if (rs != READ_OK) {
        char problem[200];

        status = mv_error_set(err, read_status(rs), MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path,
                              read_problem(rs, errnum, MAX_RECIPE_BYTES, problem, sizeof problem));
        goto out;
    }
    if (EVP_DigestUpdate(sha, bytes, n_bytes) != 1)
        goto crypto;
    if ((part = calloc(1, sizeof *part)) == NULL || (part->path = strdup(path)) == NULL)
        goto nomem;
    if ((ps = calloc(1, sizeof *ps)) == NULL)
        goto nomem;
    ps->recipe = r;
    ps->part = part;
    ps->sha = sha;
    ps->file = path;
    ps->err = err;
    if ((status = parse_recipe(ps, bytes, n_bytes)) != MV_OK)
        goto out;
    if ((status = build_index(r, part, &index)) != MV_OK)
        goto nomem;
    if ((status = hex_digest(sha, hash)) == MV_ERR_NOMEM)
        goto nomem;
    if (status != MV_OK)
        goto crypto;

    /* Commit: nothing below can fail. */
    if (r->last != NULL)
        r->last->next = part;
    else
        r->first = part;
    r->last = part;
    r->n_rules += part->n_rules + part->n_quarantines;
    part = NULL;
    index_free(&r->index);
    r->index = index;
    memset(&index, 0, sizeof index);
    EVP_MD_CTX_free(r->sha);
    r->sha = sha;
    sha = NULL;
    memcpy(r->hash, hash, sizeof hash);
    *recipe = r;
    created = NULL;
    goto out;
nomem:
    status = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "%s: out of memory", path);
    goto out;
crypto:
    status = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "%s: SHA-256 failed", path);
out:
    free(ps);
    free(bytes);
    index_free(&index);
    part_free(part);
    EVP_MD_CTX_free(sha);
    mv__recipe_free(created);
    return status;
}

const char *mv__recipe_hash(const MvRecipe *recipe)
{
    return recipe != NULL ? recipe->hash : "";
}

/* ---- Lookup -------------------------------------------------------------------------- */

/* The last loaded rule of ix->exact whose tag is tag. */
static const Rule *find_exact(const Index *ix, uint32_t tag)
{
    size_t lo = 0, hi = ix->n_exact;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->exact[mid]->target.tag <= tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && ix->exact[lo - 1]->target.tag == tag ? ix->exact[lo - 1] : NULL;
}

static const Rule *find_creator(const Index *ix, const MvDataset *ds, uint32_t tag)
{
    const char *creator;
    size_t creator_len = 0, lo = 0, hi = ix->n_creator;
    uint16_t group = MV_TAG_GROUP(tag);
    uint32_t offset = MV_TAG_ELEMENT(tag) & 0xFFu;
    const Rule *best = NULL;

    if (ix->n_creator == 0 || ds == NULL || (creator = mv_dataset_private_creator(ds, tag, &creator_len)) == NULL)
        return NULL;
    trim(&creator, &creator_len);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (compare_creator_key(ix->creator[mid], group, creator, creator_len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < ix->n_creator && compare_creator_key(ix->creator[lo], group, creator, creator_len) == 0; lo++) {
        const Rule *rule = ix->creator[lo];
        if ((offset & rule->target.mask) != (rule->target.tag & rule->target.mask & 0xFFu))
            continue;
        if (best == NULL || rule->specificity > best->specificity ||
            (rule->specificity == best->specificity && rule->seq > best->seq))
            best = rule;
    }
    return best;
}

static const Rule *find_masked(const Index *ix, uint32_t tag)
{
    const Rule *best = NULL;

    for (size_t g = 0; g < ix->n_groups; g++) {
        const MaskGroup *group = &ix->groups[g];
        uint32_t value = tag & group->mask;
        size_t lo = group->start, hi = group->end;

        if (best != NULL && group->bits < best->specificity - SPEC_MASK)
            break;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ix->masked[mid]->target.tag <= value)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > group->start && ix->masked[lo - 1]->target.tag == value) {
            const Rule *rule = ix->masked[lo - 1];
            if (best == NULL || rule->specificity > best->specificity ||
                (rule->specificity == best->specificity && rule->seq > best->seq))
                best = rule;
        }
    }
    return best;
}

const MvRecipeRule *mv__recipe_rule(const MvRecipe *recipe, const MvDataset *ds, uint32_t tag)
{
    const Rule *rule;

    if (recipe == NULL)
        return NULL;
    if ((rule = find_exact(&recipe->index, tag)) != NULL)
        return &rule->pub;
    if (MV_TAG_IS_PRIVATE(tag) && (rule = find_creator(&recipe->index, ds, tag)) != NULL)
        return &rule->pub;
    if ((rule = find_masked(&recipe->index, tag)) != NULL)
        return &rule->pub;
    return NULL;
}

const char *mv__recipe_map_lookup(const MvRecipeRule *rule, const char *value)
{
    const MvRecipeMap *map;
    size_t len, lo = 0, hi;

    if (rule == NULL || rule->map == NULL || value == NULL)
        return NULL;
    map = rule->map;
    len = strlen(value);
    trim(&value, &len);
    hi = map->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare_bytes(map->entries[mid].original, map->entries[mid].original_len, value, len);
        if (c == 0)
            return map->entries[mid].replacement;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- Quarantine ---------------------------------------------------------------------- */

/* The element a condition names in ds, or NULL. */
static const MvElement *cond_element(const Cond *cond, const MvDataset *ds)
{
    uint16_t group = MV_TAG_GROUP(cond->target.tag);

    if (cond->target.kind == TARGET_TAG)
        return mv_dataset_find(ds, cond->target.tag);
    for (uint32_t block = 0x10; block <= 0xFF; block++) {
        uint32_t tag = MV_TAG(group, (block << 8) | (cond->target.tag & 0xFFu));
        size_t len = 0;
        const char *creator = mv_dataset_private_creator(ds, tag, &len);

        if (creator == NULL)
            continue;
        trim(&creator, &len);
        if (compare_bytes(creator, len, cond->target.creator, cond->target.creator_len) == 0)
            return mv_dataset_find(ds, tag);
    }
    return NULL;
}

static int contains_nocase(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
    if (needle_len > hay_len)
        return 0;
    for (size_t i = 0; i + needle_len <= hay_len; i++) {
        size_t k = 0;
        for (; k < needle_len; k++) {
            char a = hay[i + k], b = needle[k];
            if (a >= 'A' && a <= 'Z')
                a = (char)(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z')
                b = (char)(b - 'A' + 'a');
            if (a != b)
                break;
        }
        if (k == needle_len)
            return 1;
    }
    return 0;
}

/* The values of el as malloc'd UTF-8 text (*split: backslash separates values), or *text
 * NULL when the element has no text form. -1 on failure. */
static int element_text(const MvDataset *ds, const MvElement *el, char **text, int *split)
{
    MvVr vr = mv_element_vr(el);

    *text = NULL;
    *split = 0;
    if (mv_element_is_sequence(el) || mv_element_is_encapsulated(el))
        return 0;
    if (mv_vr_is_text(vr)) {
        if (mv_element_string(ds, el, text, NULL) != MV_OK)
            return -1;
        *split = vr != MV_VR_LT && vr != MV_VR_ST && vr != MV_VR_UT && vr != MV_VR_UR;
        return 0;
    }
    if (vr == MV_VR_US || vr == MV_VR_UL || vr == MV_VR_UV || vr == MV_VR_SS || vr == MV_VR_SL ||
        vr == MV_VR_SV) {
        size_t vm = mv_element_vm(el), used = 0, cap = vm * 22 + 1;
        char *buf = malloc(cap);

        if (buf == NULL)
            return -1;
        buf[0] = '\0';
        for (size_t i = 0; i < vm; i++) {
            uint64_t u;
            int64_t s;
            int n;

            if (vr == MV_VR_SS || vr == MV_VR_SL || vr == MV_VR_SV) {
                if (mv_element_int(ds, el, i, &s, NULL) != MV_OK)
                    goto bad;
                n = snprintf(buf + used, cap - used, "%s%" PRId64, i ? "\\" : "", s);
            } else {
                if (mv_element_uint(ds, el, i, &u, NULL) != MV_OK)
                    goto bad;
                n = snprintf(buf + used, cap - used, "%s%" PRIu64, i ? "\\" : "", u);
            }
            if (n < 0 || (size_t)n >= cap - used)
                goto bad;
            used += (size_t)n;
        }
        *text = buf;
        *split = 1;
        return 0;
    bad:
        free(buf);
        return -1;
    }
    if (vr == MV_VR_UN) {
        /* Private elements of implicit VR files: compared as text when they are text. */
        size_t len = 0;
        const uint8_t *value = mv_element_value(el, &len);

        while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\0'))
            len--;
        if (len > 0 && (memchr(value, '\0', len) != NULL || !utf8_valid(value, len)))
            return 0;
        if ((*text = malloc(len + 1)) == NULL)
            return -1;
        if (len > 0)
            memcpy(*text, value, len);
        (*text)[len] = '\0';
        return 0;
    }
    return 0;
}

/* 1 if some value of el equals (or, for ~, contains) cond's value; -1 on failure. */
static int values_match(const Cond *cond, const MvDataset *ds, const MvElement *el)
{
    char *text;
    int split, found = 0;
    const char *p, *end;

    if (element_text(ds, el, &text, &split) != 0)
        return -1;
    if (text == NULL)
        return 0;
    p = text;
    end = text + strlen(text);
    for (;;) {
        const char *stop = split ? memchr(p, '\\', (size_t)(end - p)) : NULL;
        const char *value = p;
        size_t len;

        if (stop == NULL)
            stop = end;
        len = (size_t)(stop - p);
        trim(&value, &len);
        if (cond->op == COND_CONTAINS ? contains_nocase(value, len, cond->value, cond->value_len)
                                      : compare_bytes(value, len, cond->value, cond->value_len) == 0) {
            found = 1;
            break;
        }
        if (stop == end)
            break;
        p = stop + 1;
    }
    free(text);
    return found;
}

/* 1 if cond holds for ds, 0 if not, -1 if it could not be evaluated. */
static int cond_holds(const Cond *cond, const MvDataset *ds)
{
    const MvElement *el = cond_element(cond, ds);
    int match;

    switch (cond->op) {
    case COND_PRESENT: return el != NULL;
    case COND_ABSENT: return el == NULL;
    case COND_EQ:
    case COND_CONTAINS: return el != NULL ? values_match(cond, ds, el) : 0;
    case COND_NE:
        if (el == NULL)
            return 1;
        match = values_match(cond, ds, el);
        return match < 0 ? -1 : !match;
    }
    return -1;
}

int mv__recipe_quarantine(const MvRecipe *recipe, const MvDataset *ds, char *reason, size_t reason_len)
{
    if (recipe == NULL || ds == NULL)
        return 0;
    for (const Part *part = recipe->first; part != NULL; part = part->next) {
        for (size_t i = 0; i < part->n_quarantines; i++) {
            const Quarantine *q = &part->quarantines[i];
            int holds = 1;

            for (size_t k = 0; k < q->n_conds && holds == 1; k++)
                holds = cond_holds(&q->conds[k], ds);
            if (holds == 0)
                continue;
            /* A condition that cannot be evaluated quarantines: the safe side. */
            if (reason != NULL && reason_len > 0) {
                if (holds == 1)
                    snprintf(reason, reason_len, "%s", q->reason);
                else
                    snprintf(reason, reason_len, "%s:%d: quarantine rule could not be evaluated", q->file,
                             q->line);
            }
            return 1;
        }
    }
    return 0;
}
