/* Reading HOME/audit/events.jsonl line by line (jansson, one canonical event per line) and
 * turning each event into a DICOM audit message (PS3.15 A.5.1 schema, the RFC 3881 derivative):
 * EventIdentification, ActiveParticipant, AuditSourceIdentification and one
 * ParticipantObjectIdentification per object. The action -> EventID mapping is the table in
 * docs/audit-export.md; the buffer helpers of export_int.h live here too. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/export_int.h"

/* ---- Buffer ------------------------------------------------------------------------------ */

void mv__buf_init(MvBuf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->failed = 0;
}

static int buf_reserve(MvBuf *b, size_t more)
{
    size_t want, cap;
    char *p;

    if (b->failed)
        return -1;
    if (more > b->max || b->len > b->max - more) {
        b->failed = 1;
        return -1;
    }
    want = b->len + more + 1;
    if (want <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void mv__buf_add(MvBuf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mv__buf_str(MvBuf *b, const char *s)
{
    mv__buf_add(b, s, strlen(s));
}

void mv__buf_printf(MvBuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (buf_reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1-4), with its code point, or 0 if invalid
 * (overlong forms, surrogates and values above U+10FFFF are invalid: RFC 3629). */
static size_t utf8_sequence(const unsigned char *s, unsigned long *cp)
{
    unsigned long c;
    size_t n, i;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        c = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        c = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        c = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

void mv__buf_xml(MvBuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

    while (*p != '\0') {
        unsigned long cp = 0;
        size_t n = utf8_sequence(p, &cp);

        if (n == 0) {
            mv__buf_str(b, replacement);
            p++;
            continue;
        }
        switch (cp) {
        case '&': mv__buf_str(b, "&amp;"); break;
        case '<': mv__buf_str(b, "&lt;"); break;
        case '>': mv__buf_str(b, "&gt;"); break;
        case '"': mv__buf_str(b, "&quot;"); break;
        case '\'': mv__buf_str(b, "&apos;"); break;
        /* Kept as references so that attribute-value normalisation does not turn them into spaces. */
        case '\t': mv__buf_str(b, "&#9;"); break;
        case '\n': mv__buf_str(b, "&#10;"); break;
        case '\r': mv__buf_str(b, "&#13;"); break;
        default:
            /* XML 1.0 section 2.2 Char: no other C0 controls, no U+FFFE/U+FFFF. */
            if (cp < 0x20 || cp == 0xFFFE || cp == 0xFFFF)
                mv__buf_str(b, replacement);
            else
                mv__buf_add(b, (const char *)p, n);
        }
        p += n;
    }
}

void mv__buf_free(MvBuf *b)
{
    free(b->data);
    mv__buf_init(b, b->max);
}

/* ---- Time -------------------------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y_out, unsigned *m_out, unsigned *d_out)
{
    int64_t era, y;
    unsigned doe, yoe, doy, mp, d, m;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = (int64_t)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    *y_out = (int)(y + (m <= 2));
    *m_out = m;
    *d_out = d;
}

/* Reads exactly n decimal digits at *p into *out. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : mdays[m - 1];
}

MvStatus mv_audit_time_parse(const char *text, int64_t *us_out)
{
    const char *p = text;
    int year, mon, day, hh = 0, mm = 0, ss = 0;
    int64_t frac_us = 0, offset_s = 0;

    if (text == NULL || digits(&p, 4, &year) != 0 || *p++ != '-' || digits(&p, 2, &mon) != 0 || *p++ != '-' ||
        digits(&p, 2, &day) != 0)
        return MV_ERR_PARSE;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
        return MV_ERR_PARSE;
    if (*p == '\0')
        goto done;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return MV_ERR_PARSE;
    p++;
    if (digits(&p, 2, &hh) != 0 || *p++ != ':' || digits(&p, 2, &mm) != 0 || *p++ != ':' ||
        digits(&p, 2, &ss) != 0)
        return MV_ERR_PARSE;
    if (hh > 23 || mm > 59 || ss > 60) /* 60: a leap second, counted as the next second */
        return MV_ERR_PARSE;
    if (*p == '.') {
        int n = 0;
        int64_t scale = 100000;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (n < 6) {
                frac_us += (*p - '0') * scale;
                scale /= 10;
            }
            n++;
            p++;
        }
        if (n == 0 || n > 9)
            return MV_ERR_PARSE;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(&p, 2, &oh) != 0 || *p++ != ':' || digits(&p, 2, &om) != 0 || oh > 23 || om > 59)
            return MV_ERR_PARSE;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return MV_ERR_PARSE;
    }
    if (*p != '\0')
        return MV_ERR_PARSE;
done:
    *us_out = ((days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss) -
               offset_s) * 1000000 + frac_us;
    return MV_OK;
}

void mv_audit_time_format(int64_t us, char *buf, size_t cap)
{
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t frac = us - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t sod = secs - days * 86400;
    int y;
    unsigned m, d;

    civil_from_days(days, &y, &m, &d);
    snprintf(buf, cap, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", y, m, d, (int)(sod / 3600), (int)(sod / 60 % 60),
             (int)(sod % 60), (int)frac);
}

/* ---- Reader ------------------------------------------------------------------------------ */

struct MvAuditReader {
    FILE *file;          /* NULL when reading from memory */
    const char *mem;
    size_t mem_len, mem_pos;
    char *name;
    uint64_t line_no;
    char *line;          /* the current line (getline's buffer for files) */
    size_t line_cap;
    json_t *root;        /* the current event; strings of MvAuditEvent point into it */
    const char **objects;
    size_t objects_cap;
};

static MvStatus reader_new(const char *name, MvAuditReader **out, MvError *err)
{
    MvAuditReader *r = calloc(1, sizeof *r);

    if (r == NULL || (r->name = strdup(name != NULL ? name : "events")) == NULL) {
        free(r);
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    *out = r;
    return MV_OK;
}

MvStatus mv_audit_reader_open(const char *path, MvAuditReader **out, MvError *err)
{
    MvAuditReader *r = NULL;
    MvStatus st;

    *out = NULL;
    st = reader_new(path, &r, err);
    if (st != MV_OK)
        return st;
    r->file = fopen(path, "rb");
    if (r->file == NULL) {
        int e = errno;
        mv_audit_reader_free(r);
        return mv_error_set(err, e == ENOENT ? MV_ERR_NOTFOUND : MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET,
                            "%s: cannot open: %s", path, strerror(e));
    }
    *out = r;
    return MV_OK;
}

MvStatus mv_audit_reader_open_mem(const char *buf, size_t len, const char *name, MvAuditReader **out,
                                  MvError *err)
{
    MvAuditReader *r = NULL;
    MvStatus st;

    *out = NULL;
    st = reader_new(name, &r, err);
    if (st != MV_OK)
        return st;
    r->mem = buf;
    r->mem_len = len;
    *out = r;
    return MV_OK;
}

uint64_t mv_audit_reader_line(const MvAuditReader *r)
{
    return r->line_no;
}

void mv_audit_reader_free(MvAuditReader *r)
{
    if (r == NULL)
        return;
    if (r->file != NULL)
        fclose(r->file);
    json_decref(r->root);
    free(r->line);
    free(r->objects);
    free(r->name);
    free(r);
}

/* Reads the next line into r->line (without its newline), never holding more than
 * MV_AUDIT_MAX_LINE + 2 bytes of it: 1 a line, 2 a line too long (skipped to its end), 0 the end,
 * -1 an error (err set). */
static int read_line(MvAuditReader *r, size_t *len_out, MvError *err)
{
    if (r->file != NULL) {
        char scratch[4096];
        size_t n = 0;
        int got_any = 0, too_long = 0;

        for (;;) {
            char *dst;
            size_t room, k;

            if (!too_long && r->line_cap - n < 2) {
                size_t ncap = r->line_cap ? r->line_cap * 2 : 4096;
                char *p;
                if (ncap > MV_AUDIT_MAX_LINE + 2)
                    ncap = MV_AUDIT_MAX_LINE + 2;
                if (ncap <= r->line_cap) {
                    too_long = 1;
                } else if ((p = realloc(r->line, ncap)) == NULL) {
                    mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                    return -1;
                } else {
                    r->line = p;
                    r->line_cap = ncap;
                }
            }
            dst = too_long ? scratch : r->line + n;
            room = too_long ? sizeof scratch : r->line_cap - n;
            if (fgets(dst, (int)room, r->file) == NULL) {
                if (ferror(r->file)) {
                    mv_error_set(err, MV_ERR_IO, MV_NO_TAG, r->line_no, "%s: read error after line %llu", r->name,
                                 (unsigned long long)r->line_no);
                    return -1;
                }
                break;
            }
            got_any = 1;
            /* A NUL byte ends what strlen sees; such a line is not JSON and fails to parse. */
            k = strlen(dst);
            if (!too_long)
                n += k;
            if (k > 0 && dst[k - 1] == '\n')
                break;
        }
        if (!got_any)
            return 0;
        r->line_no++;
        if (too_long || n > MV_AUDIT_MAX_LINE + 1)
            return 2;
        if (n > 0 && r->line[n - 1] == '\n')
            r->line[--n] = '\0';
        *len_out = n;
        return 1;
    }
    if (r->mem_pos >= r->mem_len)
        return 0;
    {
        const char *start = r->mem + r->mem_pos;
        const char *nl = memchr(start, '\n', r->mem_len - r->mem_pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : r->mem_len - r->mem_pos;
        if (n + 1 > r->line_cap) {
            char *p = realloc(r->line, n + 1);
            if (p == NULL) {
                mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                return -1;
            }
            r->line = p;
            r->line_cap = n + 1;
        }
        memcpy(r->line, start, n);
        r->line[n] = '\0';
        r->mem_pos += n + (nl != NULL);
        r->line_no++;
        *len_out = n;
        return 1;
    }
}

/* The string value of key, or NULL (absent or JSON null). -1 if present with another type. */
static int get_string(json_t *root, const char *key, const char **out)
{
    json_t *v = json_object_get(root, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

static MvStatus bad_line(MvAuditReader *r, MvError *err, const char *what)
{
    return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, r->line_no, "%s: line %llu: %s", r->name,
                        (unsigned long long)r->line_no, what);
}

MvStatus mv_audit_reader_next(MvAuditReader *r, MvAuditEvent *ev, MvError *err)
{
    size_t len = 0;
    json_error_t jerr;
    json_t *objects, *seq;
    int got;

    memset(ev, 0, sizeof *ev);
    ev->seq = -1;
    json_decref(r->root);
    r->root = NULL;
    for (;;) {
        got = read_line(r, &len, err);
        if (got < 0)
            return err != NULL ? err->code : MV_ERR_IO;
        if (got == 0)
            return MV_ERR_NOTFOUND;
        if (got == 2 || len > MV_AUDIT_MAX_LINE)
            return bad_line(r, err, "line longer than 1 MiB");
        if (len > 0)
            break;
    }
    r->root = json_loadb(r->line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (r->root == NULL)
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, r->line_no, "%s: line %llu, column %d: not JSON",
                            r->name, (unsigned long long)r->line_no, jerr.column);
    if (!json_is_object(r->root))
        return bad_line(r, err, "not a JSON object");
    if (get_string(r->root, "action", &ev->action) != 0 || ev->action == NULL || ev->action[0] == '\0')
        return bad_line(r, err, "\"action\" missing or not a string");
    if (get_string(r->root, "actor", &ev->actor) != 0 || ev->actor == NULL || ev->actor[0] == '\0')
        return bad_line(r, err, "\"actor\" missing or not a string");
    if (get_string(r->root, "outcome", &ev->outcome) != 0 || ev->outcome == NULL)
        return bad_line(r, err, "\"outcome\" missing or not a string");
    if (strcmp(ev->outcome, "success") != 0 && strcmp(ev->outcome, "failure") != 0 &&
        strcmp(ev->outcome, "denied") != 0)
        return bad_line(r, err, "\"outcome\" is not success, failure or denied");
    if (get_string(r->root, "time", &ev->time) != 0 || ev->time == NULL)
        return bad_line(r, err, "\"time\" missing or not a string");
    if (mv_audit_time_parse(ev->time, &ev->time_us) != MV_OK)
        return bad_line(r, err, "\"time\" is not an RFC 3339 date-time");
    if (get_string(r->root, "purpose", &ev->purpose) != 0)
        return bad_line(r, err, "\"purpose\" is not a string");
    if (get_string(r->root, "detail", &ev->detail) != 0)
        return bad_line(r, err, "\"detail\" is not a string");
    if (get_string(r->root, "host", &ev->host) != 0)
        return bad_line(r, err, "\"host\" is not a string");
    seq = json_object_get(r->root, "seq");
    if (seq != NULL) {
        if (!json_is_integer(seq) || json_integer_value(seq) < 0)
            return bad_line(r, err, "\"seq\" is not a non-negative integer");
        ev->seq = json_integer_value(seq);
    }
    objects = json_object_get(r->root, "objects");
    if (objects != NULL && !json_is_null(objects)) {
        size_t n = json_array_size(objects);
        if (!json_is_array(objects))
            return bad_line(r, err, "\"objects\" is not an array");
        if (n > r->objects_cap) {
            const char **p = realloc(r->objects, n * sizeof *p);
            if (p == NULL)
                return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            r->objects = p;
            r->objects_cap = n;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_array_get(objects, i);
            if (!json_is_string(o) || json_string_length(o) == 0)
                return bad_line(r, err, "an entry of \"objects\" is not a non-empty string");
            r->objects[i] = json_string_value(o);
        }
        ev->objects = n > 0 ? r->objects : NULL;
        ev->n_objects = n;
    }
    return MV_OK;
}

/* ---- DICOM audit messages ------------------------------------------------------------------- */

/* PS3.16 CID 400 (Audit Event ID), CID 401 (Audit Event Type Code); PS3.15 A.5.1.2.3 life cycle. */
static const struct {
    const char *action;
    MvDicomEventCode code;
} event_codes[] = {
    {"vault.put", {"110107", "Import", 'C', NULL, NULL, 2}},
    {"vault.restore", {"110107", "Import", 'C', NULL, NULL, 2}},
    {"vault.get", {"110103", "DICOM Instances Accessed", 'R', NULL, NULL, 6}},
    {"vault.ls", {"110112", "Query", 'E', NULL, NULL, 6}},
    {"vault.rm", {"110105", "DICOM Study Deleted", 'D', NULL, NULL, 15}},
    {"vault.forget-patient", {"110105", "DICOM Study Deleted", 'D', NULL, NULL, 15}},
    {"vault.backup", {"110106", "Export", 'R', NULL, NULL, 10}},
    {"vault.rotate", {"110113", "Security Alert", 'E', "110129", "Security Configuration", 0}},
    {"vault.init", {"110113", "Security Alert", 'E', "110129", "Security Configuration", 0}},
    {"deid", {"110103", "DICOM Instances Accessed", 'R', NULL, NULL, 7}},
    {"reidentify", {"110110", "Patient Record", 'R', NULL, NULL, 6}},
    {"auth.unlock", {"110114", "User Authentication", 'E', "110122", "Login", 0}},
    {"audit.alert", {"110113", "Security Alert", 'E', NULL, NULL, 0}},
    {"audit.export", {"110101", "Audit Log Used", 'R', NULL, NULL, 10}},
};
static const MvDicomEventCode unknown_code = {"110100", "Application Activity", 'E', NULL, NULL, 0};

const MvDicomEventCode *mv_dicom_audit_code(const char *action)
{
    if (action != NULL)
        for (size_t i = 0; i < sizeof event_codes / sizeof event_codes[0]; i++)
            if (strcmp(event_codes[i].action, action) == 0)
                return &event_codes[i].code;
    return &unknown_code;
}

/* PS3.15 A.5.1: EventOutcomeIndicator 0 success, 4 minor failure, 8 serious failure. */
static const char *outcome_indicator(const char *outcome)
{
    if (strcmp(outcome, "success") == 0)
        return "0";
    if (strcmp(outcome, "failure") == 0)
        return "4";
    if (strcmp(outcome, "denied") == 0)
        return "8";
    return NULL;
}

/* 1 if s is a DICOM UID (PS3.5 9.1: digits and dots, no leading zero in a component, <= 64). */
static int is_uid(const char *s)
{
    size_t n = strlen(s);
    const char *p = s;

    if (n == 0 || n > 64)
        return 0;
    while (*p != '\0') {
        if (*p < '0' || *p > '9')
            return 0;
        if (*p == '0' && p[1] >= '0' && p[1] <= '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p == '.') {
            p++;
            if (*p == '\0')
                return 0;
        } else if (*p != '\0') {
            return 0;
        }
    }
    return strchr(s, '.') != NULL;
}

static void coded(MvBuf *b, const char *element, const char *code, const char *scheme, const char *meaning)
{
    mv__buf_printf(b, "<%s csd-code=\"", element);
    mv__buf_xml(b, code);
    mv__buf_str(b, "\" codeSystemName=\"");
    mv__buf_xml(b, scheme);
    mv__buf_str(b, "\" originalText=\"");
    mv__buf_xml(b, meaning);
    mv__buf_str(b, "\"/>");
}

/* One ParticipantObjectIdentification. Objects are told apart by an optional prefix: "study:",
 * "series:", "sop:" followed by a UID, or a bare UID (taken as a Study Instance UID, the unit DICOM
 * audit messages name), or anything else (a medveil vault object id). */
static void participant_object(MvBuf *b, const char *object, int life_cycle)
{
    const char *id = object, *type_code = "110180", *type_scheme = "DCM", *type_meaning = "Study Instance UID";
    int is_study = 0;

    /* CID 404 has codes for studies (110180) but none for a series or a single instance: those
     * are typed with private codes of the 99MEDVEIL scheme (PS3.16 8.2: "99" designators). */
    if (strncmp(object, "study:", 6) == 0 && is_uid(object + 6)) {
        id = object + 6;
        is_study = 1;
    } else if (strncmp(object, "series:", 7) == 0 && is_uid(object + 7)) {
        id = object + 7;
        type_code = "SERIES-INSTANCE-UID";
        type_scheme = "99MEDVEIL";
        type_meaning = "Series Instance UID";
    } else if (strncmp(object, "sop:", 4) == 0 && is_uid(object + 4)) {
        id = object + 4;
        type_code = "SOP-INSTANCE-UID";
        type_scheme = "99MEDVEIL";
        type_meaning = "SOP Instance UID";
    } else if (is_uid(object)) {
        is_study = 1;
    } else {
        type_code = "VAULT-ID";
        type_scheme = "99MEDVEIL";
        type_meaning = "medveil vault object id";
    }
    /* PS3.15 A.5.1: type 2 system object, role 3 report (studies, instances, stored objects). */
    mv__buf_str(b, "<ParticipantObjectIdentification ParticipantObjectID=\"");
    mv__buf_xml(b, id);
    mv__buf_str(b, "\" ParticipantObjectTypeCode=\"2\" ParticipantObjectTypeCodeRole=\"3\"");
    if (life_cycle > 0)
        mv__buf_printf(b, " ParticipantObjectDataLifeCycle=\"%d\"", life_cycle);
    mv__buf_str(b, ">");
    coded(b, "ParticipantObjectIDTypeCode", type_code, type_scheme, type_meaning);
    /* The A.5.1 schema transcribed in tests/fixtures requires a name or a query; the object's own
     * opaque id is the only name medveil records (never a patient's name). */
    mv__buf_str(b, "<ParticipantObjectName>");
    mv__buf_xml(b, id);
    mv__buf_str(b, "</ParticipantObjectName>");
    if (is_study) {
        mv__buf_str(b, "<ParticipantObjectDescription><ParticipantObjectContainsStudy><StudyIDs UID=\"");
        mv__buf_xml(b, id);
        mv__buf_str(b, "\"/></ParticipantObjectContainsStudy></ParticipantObjectDescription>");
    }
    mv__buf_str(b, "</ParticipantObjectIdentification>");
}

MvStatus mv_dicom_audit_format(const MvAuditEvent *ev, const MvDicomAuditOptions *opt, char **xml_out,
                               size_t *len_out, MvError *err)
{
    static const MvDicomAuditOptions defaults = {NULL, NULL, 0};
    const MvDicomEventCode *code;
    const char *indicator, *source;
    char when[40];
    int64_t us;
    MvBuf b;

    *xml_out = NULL;
    if (len_out != NULL)
        *len_out = 0;
    if (opt == NULL)
        opt = &defaults;
    if (ev == NULL || ev->action == NULL || ev->actor == NULL || ev->outcome == NULL || ev->time == NULL)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "event lacks action, actor, outcome or time");
    indicator = outcome_indicator(ev->outcome);
    if (indicator == NULL)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "event outcome is not success, failure or denied");
    if (mv_audit_time_parse(ev->time, &us) != MV_OK)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "event time is not RFC 3339");
    /* PS3.15 A.5.2.5: EventDateTime in UTC; written normalised so that offsets never leak through. */
    mv_audit_time_format(us, when, sizeof when);
    code = mv_dicom_audit_code(ev->action);
    source = ev->host != NULL && ev->host[0] != '\0' ? ev->host
             : opt->source_id != NULL                ? opt->source_id
                                                     : "medveil";

    mv__buf_init(&b, (size_t)64 << 20);
    if (opt->xml_declaration)
        mv__buf_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    mv__buf_str(&b, "<AuditMessage>");

    /* EventIdentification: EventID, EventTypeCode*, EventOutcomeDescription? (A.5.1 order). */
    mv__buf_printf(&b, "<EventIdentification EventActionCode=\"%c\" EventDateTime=\"%s\" EventOutcomeIndicator=\"%s\">",
                   code->action_code, when, indicator);
    coded(&b, "EventID", code->event_id, "DCM", code->event_meaning);
    if (code->type_code != NULL)
        coded(&b, "EventTypeCode", code->type_code, "DCM", code->type_meaning);
    /* The medveil action itself, so that no information of the log is lost in translation. */
    coded(&b, "EventTypeCode", ev->action, "99MEDVEIL", ev->action);
    if ((ev->purpose != NULL && ev->purpose[0] != '\0') || (ev->detail != NULL && ev->detail[0] != '\0')) {
        mv__buf_str(&b, "<EventOutcomeDescription>");
        if (ev->purpose != NULL && ev->purpose[0] != '\0') {
            mv__buf_str(&b, "purpose: ");
            mv__buf_xml(&b, ev->purpose);
            if (ev->detail != NULL && ev->detail[0] != '\0')
                mv__buf_str(&b, "; ");
        }
        if (ev->detail != NULL && ev->detail[0] != '\0')
            mv__buf_xml(&b, ev->detail);
        mv__buf_str(&b, "</EventOutcomeDescription>");
    }
    mv__buf_str(&b, "</EventIdentification>");

    /* The person who asked (A.5.2.1: UserIsRequestor true), then the medveil process. */
    mv__buf_str(&b, "<ActiveParticipant UserID=\"");
    mv__buf_xml(&b, ev->actor);
    mv__buf_str(&b, "\" UserIsRequestor=\"true\">");
    if (code->action_code == 'C')
        coded(&b, "RoleIDCode", "110153", "DCM", "Source Role ID");
    else if (strcmp(code->event_id, "110106") == 0 || strcmp(code->event_id, "110103") == 0 ||
             strcmp(code->event_id, "110110") == 0)
        coded(&b, "RoleIDCode", "110152", "DCM", "Destination Role ID");
    mv__buf_str(&b, "</ActiveParticipant>");
    mv__buf_str(&b, "<ActiveParticipant UserID=\"medveil@");
    mv__buf_xml(&b, source);
    mv__buf_str(&b, "\" UserIsRequestor=\"false\" NetworkAccessPointID=\"");
    mv__buf_xml(&b, source);
    mv__buf_str(&b, "\" NetworkAccessPointTypeCode=\"1\">");
    coded(&b, "RoleIDCode", "110150", "DCM", "Application");
    mv__buf_str(&b, "</ActiveParticipant>");

    mv__buf_str(&b, "<AuditSourceIdentification");
    if (opt->enterprise_site_id != NULL && opt->enterprise_site_id[0] != '\0') {
        mv__buf_str(&b, " AuditEnterpriseSiteID=\"");
        mv__buf_xml(&b, opt->enterprise_site_id);
        mv__buf_str(&b, "\"");
    }
    mv__buf_str(&b, " AuditSourceID=\"");
    mv__buf_xml(&b, source);
    mv__buf_str(&b, "\">");
    /* A.5.1.2.1: 4 = application server process. */
    coded(&b, "AuditSourceTypeCode", "4", "DCM", "Application Server Process");
    mv__buf_str(&b, "</AuditSourceIdentification>");

    for (size_t i = 0; i < ev->n_objects; i++)
        participant_object(&b, ev->objects[i], code->life_cycle);
    mv__buf_str(&b, "</AuditMessage>");

    if (b.failed) {
        mv__buf_free(&b);
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory formatting an audit message");
    }
    *xml_out = b.data;
    if (len_out != NULL)
        *len_out = b.len;
    return MV_OK;
}
