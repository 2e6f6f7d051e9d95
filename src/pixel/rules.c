/* Pixel region rules (docs/pixel-clean.md, "Rules"): a small line-oriented text format
 * that matches header attributes (Modality, Manufacturer, Rows, ImageType, SOP Class ...)
 * to rectangles that are always masked, to "quarantine", or to a forced OCR scan. The
 * parser names the file and line of every error; matching reads the top-level dataset. */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixel/clean_int.h"

#define RULES_MAGIC "medveil-pixel-rules 1"
#define MAX_RULES_BYTES (4u << 20)
#define MAX_LINE 1024

void mv_pixel_rules_free(MvPixelRules *rules)
{
    if (rules == NULL)
        return;
    for (size_t i = 0; i < rules->n_rules; i++) {
        MvPxRule *r = &rules->rules[i];
        for (size_t j = 0; j < r->n_conds; j++)
            free(r->conds[j].value);
        free(r->conds);
        free(r->rects);
        free(r->name);
        free(r->file);
        free(r->reason);
    }
    free(rules->rules);
    free(rules);
}

MvStatus mv_pixel_rules_new(MvPixelRules **out)
{
    *out = calloc(1, sizeof **out);
    return *out == NULL ? MV_ERR_NOMEM : MV_OK;
}

size_t mv_pixel_rules_count(const MvPixelRules *rules)
{
    return rules == NULL ? 0 : rules->n_rules;
}

typedef struct Parser {
    const char *file;
    int line;
    MvError *err;
} Parser;

static MvStatus perr(const Parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static MvStatus perr(const Parser *ps, const char *fmt, ...)
{
    char what[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mv_error_set(ps->err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s:%d: %s", ps->file, ps->line, what);
}

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        *--end = '\0';
    return s;
}

/* Removes one pair of surrounding double quotes. */
static char *unquote(char *s)
{
    size_t n = strlen(s);

    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        return s + 1;
    }
    return s;
}

/* One coordinate: a non-negative integer of pixels or a percentage ("12.5%"). */
static int parse_coord(const char *text, MvPxCoord *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (end == text || errno != 0 || v < 0 || v != v)
        return -1;
    if (*end == '%') {
        if (end[1] != '\0' || v > 100)
            return -1;
        out->percent = 1;
    } else {
        if (*end != '\0' || v > 65535 || v != (double)(long)v)
            return -1;
        out->percent = 0;
    }
    out->value = v;
    return 0;
}

static MvStatus parse_when(const Parser *ps, MvPxRule *rule, char *rest)
{
    static const struct {
        const char *text;
        int op;
    } ops[] = {{"!=", MV_PX_NE}, {"=", MV_PX_EQ}, {"~", MV_PX_GLOB}, {"contains", MV_PX_CONTAINS},
               {"absent", MV_PX_ABSENT}, {"present", MV_PX_PRESENT}, {">=", MV_PX_GE}, {"<=", MV_PX_LE}};
    char *keyword = rest, *p = rest, *value;
    MvPxCond cond = {0};
    MvPxCond *grown;
    MvError terr;
    size_t i;

    while (*p != '\0' && !isspace((unsigned char)*p) && *p != '=' && *p != '!' && *p != '~' && *p != '<' &&
           *p != '>')
        p++;
    if (p == keyword)
        return perr(ps, "'when' needs an attribute keyword or tag");
    value = p;
    while (isspace((unsigned char)*value))
        value++;
    *p = '\0';
    if (mv_tag_parse(keyword, &cond.tag, &terr) != MV_OK)
        return perr(ps, "unknown attribute '%.200s'", keyword);
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].text);
        if (strncmp(value, ops[i].text, n) == 0 &&
            (!isalpha((unsigned char)ops[i].text[0]) || value[n] == '\0' || isspace((unsigned char)value[n]))) {
            cond.op = ops[i].op;
            value = trim(value + n);
            break;
        }
    }
    if (i == sizeof ops / sizeof ops[0])
        return perr(ps, "expected =, !=, ~, contains, >=, <=, absent or present after '%.200s'", keyword);
    value = unquote(value);
    if (cond.op == MV_PX_ABSENT || cond.op == MV_PX_PRESENT) {
        if (*value != '\0')
            return perr(ps, "'absent' and 'present' take no value");
    } else if (*value == '\0') {
        return perr(ps, "missing value after the operator for '%.200s'", keyword);
    }
    if (cond.op == MV_PX_GE || cond.op == MV_PX_LE) {
        char *end;
        errno = 0;
        cond.number = strtod(value, &end);
        if (end == value || *end != '\0' || errno != 0)
            return perr(ps, "'%.200s' is not a number", value);
    }
    cond.value = strdup(value);
    grown = realloc(rule->conds, (rule->n_conds + 1) * sizeof *grown);
    if (cond.value == NULL || grown == NULL) {
        free(cond.value);
        if (grown != NULL)
            rule->conds = grown;
        return mv_error_set(ps->err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    rule->conds = grown;
    rule->conds[rule->n_conds++] = cond;
    return MV_OK;
}

static MvStatus parse_mask(const Parser *ps, MvPxRule *rule, char *rest)
{
    char *fields[5];
    size_t n = 0;
    MvPxRegion region;
    MvPxRegion *grown;
    char *p = rest;

    /* Fields separated by blanks and/or commas. */
    for (;;) {
        size_t len;
        p += strspn(p, " \t,");
        if (*p == '\0')
            break;
        len = strcspn(p, " \t,");
        if (n == 5)
            return perr(ps, "'mask' takes four values: X Y WIDTH HEIGHT");
        fields[n++] = p;
        p += len;
        if (*p != '\0')
            *p++ = '\0';
    }
    if (n != 4)
        return perr(ps, "'mask' takes four values: X Y WIDTH HEIGHT");
    if (parse_coord(fields[0], &region.x) != 0 || parse_coord(fields[1], &region.y) != 0 ||
        parse_coord(fields[2], &region.w) != 0 || parse_coord(fields[3], &region.h) != 0)
        return perr(ps, "'mask' values are pixels (0..65535) or percentages (0%%..100%%)");
    if (region.w.value == 0 || region.h.value == 0)
        return perr(ps, "'mask' width and height must not be zero");
    grown = realloc(rule->rects, (rule->n_rects + 1) * sizeof *grown);
    if (grown == NULL)
        return mv_error_set(ps->err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    rule->rects = grown;
    rule->rects[rule->n_rects++] = region;
    return MV_OK;
}

static MvStatus finish_rule(const Parser *ps, MvPixelRules *rules, MvPxRule *rule)
{
    MvPxRule *grown;

    if (rule->n_rects == 0 && !rule->quarantine && !rule->scan && !rule->skip)
        return perr(ps, "rule '%.200s' has no action (mask, quarantine, scan or skip)", rule->name);
    grown = realloc(rules->rules, (rules->n_rules + 1) * sizeof *grown);
    if (grown == NULL)
        return mv_error_set(ps->err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    rules->rules = grown;
    rules->rules[rules->n_rules++] = *rule;
    memset(rule, 0, sizeof *rule);
    return MV_OK;
}

static void rule_clear(MvPxRule *r)
{
    for (size_t j = 0; j < r->n_conds; j++)
        free(r->conds[j].value);
    free(r->conds);
    free(r->rects);
    free(r->name);
    free(r->file);
    free(r->reason);
    memset(r, 0, sizeof *r);
}

MvStatus mv_pixel_rules_parse(MvPixelRules *rules, const char *name, const char *text, size_t len, MvError *err)
{
    Parser ps = {name != NULL ? name : "<rules>", 0, err};
    MvPxRule rule;
    size_t pos = 0, n_before = rules->n_rules;
    int in_rule = 0, seen_magic = 0;
    MvStatus st = MV_OK;
    char line[MAX_LINE + 2];

    memset(&rule, 0, sizeof rule);
    while (pos < len) {
        size_t end = pos, n;
        char *s, *word, *rest;

        while (end < len && text[end] != '\n')
            end++;
        n = end - pos;
        ps.line++;
        if (n > MAX_LINE) {
            st = perr(&ps, "line longer than %s characters", "1024");
            goto out;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos = end + 1;
        if (memchr(line, '\0', n) != NULL) {
            st = perr(&ps, "NUL byte in the text");
            goto out;
        }
        s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        if (!seen_magic) {
            if (strcmp(s, RULES_MAGIC) != 0) {
                st = perr(&ps, "the first line must be '%s'", RULES_MAGIC);
                goto out;
            }
            seen_magic = 1;
            continue;
        }
        word = s;
        rest = s;
        while (*rest != '\0' && !isspace((unsigned char)*rest))
            rest++;
        if (*rest != '\0')
            *rest++ = '\0';
        rest = trim(rest);
        if (strcmp(word, "rule") == 0) {
            if (in_rule) {
                st = perr(&ps, "'rule' inside rule '%.200s' (missing 'end')", rule.name);
                goto out;
            }
            rest = unquote(rest);
            if (*rest == '\0') {
                st = perr(&ps, "'rule' needs a name");
                goto out;
            }
            rule.name = strdup(rest);
            rule.file = strdup(ps.file);
            rule.line = ps.line;
            if (rule.name == NULL || rule.file == NULL) {
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                goto out;
            }
            in_rule = 1;
            continue;
        }
        if (!in_rule) {
            st = perr(&ps, "'%.200s' outside a rule (rules start with 'rule NAME')", word);
            goto out;
        }
        if (strcmp(word, "end") == 0) {
            if (*rest != '\0') {
                st = perr(&ps, "'end' takes nothing after it");
                goto out;
            }
            if ((st = finish_rule(&ps, rules, &rule)) != MV_OK)
                goto out;
            in_rule = 0;
        } else if (strcmp(word, "when") == 0) {
            if ((st = parse_when(&ps, &rule, rest)) != MV_OK)
                goto out;
        } else if (strcmp(word, "mask") == 0) {
            if ((st = parse_mask(&ps, &rule, rest)) != MV_OK)
                goto out;
        } else if (strcmp(word, "quarantine") == 0) {
            rest = unquote(rest);
            free(rule.reason);
            rule.reason = strdup(*rest != '\0' ? rest : "pixel rule says quarantine");
            if (rule.reason == NULL) {
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                goto out;
            }
            rule.quarantine = 1;
        } else if (strcmp(word, "scan") == 0 || strcmp(word, "skip") == 0) {
            if (*rest != '\0') {
                st = perr(&ps, "'%.200s' takes nothing after it", word);
                goto out;
            }
            if (word[1] == 'c')
                rule.scan = 1;
            else
                rule.skip = 1;
        } else {
            st = perr(&ps, "unknown word '%.200s' (expected when, mask, quarantine, scan, skip or end)", word);
            goto out;
        }
    }
    if (!seen_magic) {
        ps.line = ps.line > 0 ? ps.line : 1;
        st = perr(&ps, "empty rules file: the first line must be '%s'", RULES_MAGIC);
        goto out;
    }
    if (in_rule) {
        st = perr(&ps, "rule '%.200s' has no 'end'", rule.name);
        goto out;
    }
out:
    rule_clear(&rule);
    if (st != MV_OK) {
        /* A failed load leaves the set as it was. */
        for (size_t i = n_before; i < rules->n_rules; i++)
            rule_clear(&rules->rules[i]);
        rules->n_rules = n_before;
    }
    return st;
}

MvStatus mv_pixel_rules_load(MvPixelRules *rules, const char *path, MvError *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    MvStatus st;

    if (f == NULL)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
    for (;;) {
        size_t got;
        if (len == cap) {
            char *grown;
            cap = cap ? cap * 2 : 8192;
            if (cap > MAX_RULES_BYTES + 1)
                cap = MAX_RULES_BYTES + 1;
            grown = realloc(buf, cap);
            if (grown == NULL) {
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                goto out;
            }
            buf = grown;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
        if (len > MAX_RULES_BYTES) {
            st = mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "%s: larger than 4 MiB", path);
            goto out;
        }
    }
    if (ferror(f)) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: read error", path);
        goto out;
    }
    st = mv_pixel_rules_parse(rules, path, buf != NULL ? buf : "", len, err);
out:
    free(buf);
    fclose(f);
    return st;
}

/* ---- matching ------------------------------------------------------------------------ */

/* The value of tag in ds as text (string VRs as they are; integer and float VRs as
 * decimals joined by backslashes); NULL when absent. The caller frees it. */
static char *value_text(const MvDataset *ds, uint32_t tag)
{
    const MvElement *el = mv_dataset_find(ds, tag);
    MvVr vr;
    char *out = NULL;

    if (el == NULL)
        return NULL;
    vr = mv_element_vr(el);
    if (mv_vr_is_text(vr) || vr == MV_VR_UN) {
        if (mv_element_string(ds, el, &out, NULL) != MV_OK)
            return NULL;
        return out;
    }
    if (vr == MV_VR_US || vr == MV_VR_UL || vr == MV_VR_SS || vr == MV_VR_SL || vr == MV_VR_FL || vr == MV_VR_FD ||
        vr == MV_VR_UV || vr == MV_VR_SV) {
        size_t vm = mv_element_vm(el), cap = vm * 24 + 1, n = 0;
        if (vm > 64)
            vm = 64;
        out = malloc(cap);
        if (out == NULL)
            return NULL;
        out[0] = '\0';
        for (size_t i = 0; i < vm; i++) {
            double d;
            if (mv_element_double(ds, el, i, &d, NULL) != MV_OK)
                break;
            n += (size_t)snprintf(out + n, cap - n, "%s%.10g", i ? "\\" : "", d);
        }
        return out;
    }
    return NULL;
}

static int cond_matches(const MvDataset *ds, const MvPxCond *cond)
{
    char *text = value_text(ds, cond->tag);
    int hit = 0;

    switch (cond->op) {
    case MV_PX_ABSENT: hit = text == NULL || text[0] == '\0'; break;
    case MV_PX_PRESENT: hit = text != NULL && text[0] != '\0'; break;
    case MV_PX_EQ: hit = text != NULL && strcasecmp(text, cond->value) == 0; break;
    case MV_PX_NE: hit = text == NULL || strcasecmp(text, cond->value) != 0; break;
    case MV_PX_GLOB: hit = text != NULL && fnmatch(cond->value, text, FNM_CASEFOLD) == 0; break;
    case MV_PX_CONTAINS:
        /* One of the backslash-separated values equals the given one. */
        for (char *v = text; v != NULL && !hit;) {
            char *next = strchr(v, '\\');
            if (next != NULL)
                *next++ = '\0';
            hit = strcasecmp(trim(v), cond->value) == 0;
            v = next;
        }
        break;
    case MV_PX_GE:
    case MV_PX_LE:
        if (text != NULL) {
            char *end;
            double v = strtod(text, &end);
            if (end != text)
                hit = cond->op == MV_PX_GE ? v >= cond->number : v <= cond->number;
        }
        break;
    default: break;
    }
    free(text);
    return hit;
}

int mv__rule_matches(const MvPxRule *rule, const MvDataset *ds)
{
    for (size_t i = 0; i < rule->n_conds; i++)
        if (!cond_matches(ds, &rule->conds[i]))
            return 0;
    return 1;
}

static int coord_px(const MvPxCoord *c, int extent)
{
    double v = c->percent ? c->value * extent / 100.0 : c->value;
    if (v > extent)
        v = extent;
    return (int)(v + (c->percent ? 0.5 : 0));
}

MvPxBox mv__region_box(const MvPxRegion *r, int width, int height)
{
    MvPxBox b;

    b.x0 = coord_px(&r->x, width);
    b.y0 = coord_px(&r->y, height);
    b.x1 = b.x0 + coord_px(&r->w, width);
    b.y1 = b.y0 + coord_px(&r->h, height);
    if (b.x1 > width)
        b.x1 = width;
    if (b.y1 > height)
        b.y1 = height;
    return b;
}
