/* The canonical event line (the on-disk contract of audit.h): a direct encoder and a strict
 * checker, both byte-for-byte what jansson's json_dumps(JSON_COMPACT | JSON_SORT_KEYS |
 * JSON_ENSURE_ASCII) writes for an event object, without building a JSON tree (appends and
 * verification of millions of events are dominated by it otherwise). tests/test_audit.c
 * checks both against jansson on random and hostile strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_int.h"

MvStatus mv__buf_reserve(MvBuf *b, size_t more, MvError *err)
{
    size_t cap;
    char *p;

    if (b->len + more <= b->cap)
        return MV_OK;
    cap = b->cap == 0 ? 4096 : b->cap;
    while (cap < b->len + more)
        cap *= 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    b->data = p;
    b->cap = cap;
    return MV_OK;
}

static void put(MvBuf *b, const char *s, size_t n)
{
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* Decodes one UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF);
 * returns its length, or 0 when the bytes are not valid UTF-8. */
static size_t utf8_next(const unsigned char *s, size_t left, uint32_t *cp)
{
    uint32_t c = s[0], min;
    size_t n;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        c &= 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        c &= 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

int mv__utf8_valid(const char *s)
{
    size_t len = strlen(s);

    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_next((const unsigned char *)s + i, len - i, &cp);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* A JSON string as jansson escapes it: \\ \" \b \f \n \r \t, other controls and everything
 * above 0x7F as \uXXXX (upper-case hex, UTF-16 surrogate pairs above U+FFFF). */
static MvStatus put_string(MvBuf *b, const char *s, MvError *err)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(s), i = 0;
    MvStatus st = mv__buf_reserve(b, len * 12 + 2, err);

    if (st != MV_OK)
        return st;
    b->data[b->len++] = '"';
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_next((const unsigned char *)s + i, len - i, &cp);
        char *o = b->data + b->len;
        if (n == 0)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "text that is not valid UTF-8");
        i += n;
        if (cp >= 0x20 && cp <= 0x7F && cp != '"' && cp != '\\') {
            *o = (char)cp;
            b->len++;
            continue;
        }
        switch (cp) {
        case '"': put(b, "\\\"", 2); continue;
        case '\\': put(b, "\\\\", 2); continue;
        case '\b': put(b, "\\b", 2); continue;
        case '\f': put(b, "\\f", 2); continue;
        case '\n': put(b, "\\n", 2); continue;
        case '\r': put(b, "\\r", 2); continue;
        case '\t': put(b, "\\t", 2); continue;
        default: break;
        }
        if (cp >= 0x10000) {
            uint32_t v = cp - 0x10000, hi = 0xD800 | (v >> 10), lo = 0xDC00 | (v & 0x3FF);
            char u[12] = {'\\', 'u', hex[hi >> 12], hex[hi >> 8 & 15], hex[hi >> 4 & 15], hex[hi & 15],
                          '\\', 'u', hex[lo >> 12], hex[lo >> 8 & 15], hex[lo >> 4 & 15], hex[lo & 15]};
            put(b, u, 12);
        } else {
            char u[6] = {'\\', 'u', hex[cp >> 12], hex[cp >> 8 & 15], hex[cp >> 4 & 15], hex[cp & 15]};
            put(b, u, 6);
        }
    }
    b->data[b->len++] = '"';
    return MV_OK;
}

static MvStatus put_key(MvBuf *b, const char *key, int first, MvError *err)
{
    size_t n = strlen(key);
    MvStatus st = mv__buf_reserve(b, n + 4, err);

    if (st != MV_OK)
        return st;
    if (!first)
        b->data[b->len++] = ',';
    b->data[b->len++] = '"';
    put(b, key, n);
    put(b, "\":", 2);
    return MV_OK;
}

/* Keys in byte order: action actor detail host objects outcome purpose seq time. */
MvStatus mv__event_encode(MvBuf *b, const MvAuditEvent *ev, const char *actor, uint64_t seq, const char *time_s,
                          const char *host, MvError *err)
{
    size_t start = b->len;
    char num[24];
    MvStatus st;
    int n;

    st = mv__buf_reserve(b, 1, err);
    if (st != MV_OK)
        return st;
    b->data[b->len++] = '{';
#define TRY(x)              \
    do {                    \
        st = (x);           \
        if (st != MV_OK)    \
            goto fail;      \
    } while (0)
    TRY(put_key(b, "action", 1, err));
    TRY(put_string(b, ev->action, err));
    TRY(put_key(b, "actor", 0, err));
    TRY(put_string(b, actor, err));
    if (ev->detail != NULL) {
        TRY(put_key(b, "detail", 0, err));
        TRY(put_string(b, ev->detail, err));
    }
    TRY(put_key(b, "host", 0, err));
    TRY(put_string(b, host, err));
    TRY(put_key(b, "objects", 0, err));
    TRY(mv__buf_reserve(b, 1, err));
    b->data[b->len++] = '[';
    for (size_t i = 0; i < ev->n_objects; i++) {
        if (i > 0) {
            TRY(mv__buf_reserve(b, 1, err));
            b->data[b->len++] = ',';
        }
        TRY(put_string(b, ev->objects[i], err));
    }
    TRY(mv__buf_reserve(b, 1, err));
    b->data[b->len++] = ']';
    TRY(put_key(b, "outcome", 0, err));
    TRY(put_string(b, ev->outcome != NULL ? ev->outcome : "success", err));
    if (ev->purpose != NULL) {
        TRY(put_key(b, "purpose", 0, err));
        TRY(put_string(b, ev->purpose, err));
    }
    TRY(put_key(b, "seq", 0, err));
    n = snprintf(num, sizeof num, "%llu", (unsigned long long)seq);
    TRY(mv__buf_reserve(b, (size_t)n, err));
    put(b, num, (size_t)n);
    TRY(put_key(b, "time", 0, err));
    TRY(put_string(b, time_s, err));
    TRY(mv__buf_reserve(b, 1, err));
    b->data[b->len++] = '}';
#undef TRY
    return MV_OK;
fail:
    b->len = start;
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * The checker: accepts exactly the lines the encoder (and jansson) writes.
 * ------------------------------------------------------------------------------------------- */

typedef struct Scan {
    const char *p, *end;
} Scan;

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower-case hex is not canonical */
}

static int read_u16(const char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexv(p[i]);
        if (h < 0)
            return 0;
        *v = *v << 4 | (uint32_t)h;
    }
    return 1;
}

/* A canonical string literal; text and text_len (may be NULL) get its escaped contents. */
static int scan_string(Scan *s, const char **text, size_t *text_len)
{
    if (s->p >= s->end || *s->p != '"')
        return 0;
    s->p++;
    if (text != NULL)
        *text = s->p;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            if (text_len != NULL)
                *text_len = (size_t)(s->p - *text);
            s->p++;
            return 1;
        }
        if (c < 0x20 || c > 0x7F)
            return 0;
        if (c != '\\') {
            s->p++;
            continue;
        }
        if (s->end - s->p < 2)
            return 0;
        switch (s->p[1]) {
        case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
            s->p += 2;
            continue;
        case 'u': {
            uint32_t v, lo;
            if (s->end - s->p < 6 || !read_u16(s->p + 2, &v))
                return 0;
            s->p += 6;
            if (v == 0 || v == 0x08 || v == 0x09 || v == 0x0A || v == 0x0C || v == 0x0D || (v >= 0x20 && v <= 0x7F))
                return 0; /* NUL is refused; the others have a shorter canonical form */
            if (v >= 0xDC00 && v <= 0xDFFF)
                return 0;
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || !read_u16(s->p + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return 0;
                s->p += 6;
            }
            continue;
        }
        default:
            return 0;
        }
    }
    return 0;
}

static int scan_lit(Scan *s, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return 0;
    s->p += n;
    return 1;
}

static int next_key_is(const Scan *s, const char *key)
{
    size_t n = strlen(key);
    return (size_t)(s->end - s->p) > n + 3 && s->p[0] == ',' && s->p[1] == '"' && memcmp(s->p + 2, key, n) == 0 &&
           s->p[2 + n] == '"';
}

int mv__event_check(const char *line, size_t len, uint64_t seq, char *why, size_t why_len)
{
    Scan s = {line, line + len};
    const char *outcome;
    size_t outcome_len = 0;
    uint64_t v = 0;
    const char *digits;

#define BAD(...)                               \
    do {                                       \
        snprintf(why, why_len, __VA_ARGS__);   \
        return 0;                              \
    } while (0)
    if (!scan_lit(&s, "{\"action\":"))
        BAD("not a canonical event object: it must start with {\"action\":");
    if (!scan_string(&s, NULL, NULL))
        BAD("\"action\" is not a canonical string");
    if (!scan_lit(&s, ",\"actor\":") || !scan_string(&s, NULL, NULL))
        BAD("\"actor\" is missing, out of order or not a canonical string");
    if (next_key_is(&s, "detail") && (!scan_lit(&s, ",\"detail\":") || !scan_string(&s, NULL, NULL)))
        BAD("\"detail\" is not a canonical string");
    if (!scan_lit(&s, ",\"host\":") || !scan_string(&s, NULL, NULL))
        BAD("\"host\" is missing, out of order or not a canonical string");
    if (!scan_lit(&s, ",\"objects\":["))
        BAD("\"objects\" is missing, out of order or not an array");
    if (s.p < s.end && *s.p != ']') {
        for (;;) {
            if (!scan_string(&s, NULL, NULL))
                BAD("an item of \"objects\" is not a canonical string");
            if (s.p < s.end && *s.p == ',') {
                s.p++;
                continue;
            }
            break;
        }
    }
    if (!scan_lit(&s, "],\"outcome\":") || !scan_string(&s, &outcome, &outcome_len))
        BAD("\"objects\" is not closed, or \"outcome\" is missing or out of order");
    if (!((outcome_len == 7 && memcmp(outcome, "success", 7) == 0) ||
          (outcome_len == 7 && memcmp(outcome, "failure", 7) == 0) ||
          (outcome_len == 6 && memcmp(outcome, "denied", 6) == 0)))
        BAD("\"outcome\" is not success, failure or denied");
    if (next_key_is(&s, "purpose") && (!scan_lit(&s, ",\"purpose\":") || !scan_string(&s, NULL, NULL)))
        BAD("\"purpose\" is not a canonical string");
    if (!scan_lit(&s, ",\"seq\":"))
        BAD("\"seq\" is missing or out of order (or an unknown key is present)");
    digits = s.p;
    while (s.p < s.end && *s.p >= '0' && *s.p <= '9' && s.p - digits < 20) {
        v = v * 10 + (uint64_t)(*s.p - '0');
        s.p++;
    }
    if (s.p == digits || (digits[0] == '0' && s.p - digits > 1) || v != seq)
        BAD("\"seq\" is not %llu: an event was inserted, removed or moved", (unsigned long long)seq);
    if (!scan_lit(&s, ",\"time\":") || !scan_string(&s, NULL, NULL))
        BAD("\"time\" is missing, out of order or not a canonical string");
    if (!scan_lit(&s, "}") || s.p != s.end)
        BAD("unexpected bytes after \"time\" (an unknown key, or not canonical)");
#undef BAD
    return 1;
}
