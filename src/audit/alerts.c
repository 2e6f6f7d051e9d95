/* Misuse alerts over the audit log: one streaming pass gathers, per actor and UTC day, the number
 * of accesses, their hours and the busiest window's distinct objects, while sliding windows catch
 * bulk read-outs and repeated failed unlocks and every object is checked against the sensitive
 * list; a second pass over the per-day figures judges each day against the actor's own previous
 * days (volume, distinct objects, unusual hours). Rules and thresholds: docs/audit-export.md. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/export_int.h"

enum Rule { R_VOLUME, R_DISTINCT, R_BULK, R_OFFHOURS, R_UNLOCK, R_SENSITIVE, R_N };
static const char *const rule_names[R_N] = {"volume", "distinct", "bulk", "offhours", "unlock", "sensitive"};

#define DAY_US ((int64_t)86400 * 1000000)
#define MAX_ALERT_OBJECTS 64 /* objects listed in one alert; the count says how many more */

/* ---- Configuration ----------------------------------------------------------------------- */

void mv_alert_config_default(MvAlertConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->baseline_days = 30;
    cfg->baseline_min_days = 7;
    cfg->volume_k = 4.0;
    cfg->volume_min = 40;
    cfg->volume_factor = 2.5;
    cfg->distinct_window_s = 3600;
    cfg->distinct_k = 4.0;
    cfg->distinct_min = 30;
    cfg->distinct_factor = 2.5;
    cfg->bulk_window_s = 3600;
    cfg->bulk_max_objects = 200;
    cfg->offhours_min_events = 100;
    cfg->offhours_max_share = 0.01;
    cfg->offhours_min_count = 3;
    cfg->unlock_window_s = 900;
    cfg->unlock_max_failures = 5;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void mv_alert_config_clear(MvAlertConfig *cfg)
{
    if (cfg == NULL)
        return;
    free_strings(cfg->sensitive, cfg->n_sensitive);
    free_strings(cfg->exempt_actors, cfg->n_exempt);
    cfg->sensitive = NULL;
    cfg->n_sensitive = 0;
    cfg->exempt_actors = NULL;
    cfg->n_exempt = 0;
}

static char *trim(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

static int push_string(char ***v, size_t *n, const char *s)
{
    char **p = realloc(*v, (*n + 1) * sizeof *p);
    if (p == NULL)
        return -1;
    *v = p;
    if ((p[*n] = strdup(s)) == NULL)
        return -1;
    (*n)++;
    return 0;
}

/* Adds the comma- or blank-separated items of list. */
static int push_list(char ***v, size_t *n, char *list)
{
    char *p = list;

    while (*p != '\0') {
        char *start, saved;
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        start = p;
        while (*p != '\0' && *p != ',' && !isspace((unsigned char)*p))
            p++;
        if (p == start)
            break;
        saved = *p;
        *p = '\0';
        if (push_string(v, n, start) != 0)
            return -1;
        *p = saved;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads one id per line of path ('#' comments and blank lines skipped). */
static MvStatus load_sensitive_file(MvAlertConfig *cfg, const char *path, MvError *err)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    MvStatus st = MV_OK;

    if (f == NULL)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: cannot open the sensitive list: %s", path,
                            strerror(errno));
    while (getline(&line, &cap, f) >= 0) {
        char *hash = strchr(line, '#'), *id;
        if (hash != NULL)
            *hash = '\0';
        id = trim(line);
        if (*id != '\0' && push_string(&cfg->sensitive, &cfg->n_sensitive, id) != 0) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            break;
        }
    }
    free(line);
    fclose(f);
    return st;
}

static int parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

MvStatus mv_alert_config_load(MvAlertConfig *cfg, const char *path, MvError *err)
{
    static const struct {
        const char *key;
        size_t offset;
        int is_double;
        double min, max;
    } keys[] = {
        {"baseline.days", offsetof(MvAlertConfig, baseline_days), 0, 1, 3650},
        {"baseline.min_days", offsetof(MvAlertConfig, baseline_min_days), 0, 1, 3650},
        {"volume.k", offsetof(MvAlertConfig, volume_k), 1, 0, 1000},
        {"volume.min", offsetof(MvAlertConfig, volume_min), 0, 1, INT_MAX},
        {"volume.factor", offsetof(MvAlertConfig, volume_factor), 1, 0, 1000},
        {"distinct.window", offsetof(MvAlertConfig, distinct_window_s), 0, 60, 86400},
        {"distinct.k", offsetof(MvAlertConfig, distinct_k), 1, 0, 1000},
        {"distinct.min", offsetof(MvAlertConfig, distinct_min), 0, 1, INT_MAX},
        {"distinct.factor", offsetof(MvAlertConfig, distinct_factor), 1, 0, 1000},
        {"bulk.window", offsetof(MvAlertConfig, bulk_window_s), 0, 1, 30 * 86400},
        {"bulk.max_objects", offsetof(MvAlertConfig, bulk_max_objects), 0, 1, INT_MAX},
        {"offhours.min_events", offsetof(MvAlertConfig, offhours_min_events), 0, 1, INT_MAX},
        {"offhours.max_share", offsetof(MvAlertConfig, offhours_max_share), 1, 0, 1},
        {"offhours.min_count", offsetof(MvAlertConfig, offhours_min_count), 0, 1, INT_MAX},
        {"unlock.window", offsetof(MvAlertConfig, unlock_window_s), 0, 1, 30 * 86400},
        {"unlock.max_failures", offsetof(MvAlertConfig, unlock_max_failures), 0, 1, INT_MAX},
    };
    FILE *f = fopen(path, "r");
    char *line = NULL, *dir = NULL;
    size_t cap = 0;
    unsigned long line_no = 0;
    MvStatus st = MV_OK;

    if (f == NULL)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: cannot open: %s", path, strerror(errno));
    dir = strdup(path);
    if (dir == NULL) {
        fclose(f);
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    {
        char *slash = strrchr(dir, '/');
        if (slash != NULL)
            slash[1] = '\0';
        else
            dir[0] = '\0';
    }
    while (getline(&line, &cap, f) >= 0) {
        char *hash, *eq, *key, *value;
        size_t i;

        line_no++;
        hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        key = trim(line);
        if (*key == '\0')
            continue;
        eq = strchr(key, '=');
        if (eq == NULL) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, line_no, "%s: line %lu: expected key = value", path, line_no);
            break;
        }
        *eq = '\0';
        key = trim(key);
        value = trim(eq + 1);
        if (strcmp(key, "sensitive.ids") == 0) {
            if (push_list(&cfg->sensitive, &cfg->n_sensitive, value) != 0) {
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                break;
            }
            continue;
        }
        if (strcmp(key, "alerts.exempt_actors") == 0) {
            if (push_list(&cfg->exempt_actors, &cfg->n_exempt, value) != 0) {
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                break;
            }
            continue;
        }
        if (strcmp(key, "sensitive.file") == 0) {
            char full[4096];
            if (value[0] == '/' || dir[0] == '\0')
                snprintf(full, sizeof full, "%s", value);
            else
                snprintf(full, sizeof full, "%s%s", dir, value);
            st = load_sensitive_file(cfg, full, err);
            if (st != MV_OK) {
                mv_error_prefix(err, path);
                break;
            }
            continue;
        }
        for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (strcmp(keys[i].key, key) == 0)
                break;
        if (i == sizeof keys / sizeof keys[0]) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, line_no, "%s: line %lu: unknown key '%s'", path, line_no, key);
            break;
        }
        if (keys[i].is_double) {
            double v;
            if (parse_double(value, keys[i].min, keys[i].max, &v) != 0) {
                st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, line_no, "%s: line %lu: %s must be a number from %g to %g",
                                  path, line_no, key, keys[i].min, keys[i].max);
                break;
            }
            *(double *)(void *)((char *)cfg + keys[i].offset) = v;
        } else {
            int v;
            if (parse_int(value, (int)keys[i].min, (int)keys[i].max, &v) != 0) {
                st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, line_no,
                                  "%s: line %lu: %s must be a whole number from %.0f to %.0f", path, line_no, key,
                                  keys[i].min, keys[i].max);
                break;
            }
            *(int *)(void *)((char *)cfg + keys[i].offset) = v;
        }
    }
    free(line);
    free(dir);
    fclose(f);
    if (cfg->n_sensitive > 1)
        qsort(cfg->sensitive, cfg->n_sensitive, sizeof *cfg->sensitive, cmp_str);
    return st;
}

/* ---- Small containers ----------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ull;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* A set of 64-bit hashes of object names (open addressing; 0 marks an empty slot). */
typedef struct HashSet {
    uint64_t *slots;
    size_t cap, count;
} HashSet;

static int set_add(HashSet *s, uint64_t h)
{
    if (h == 0)
        h = 1;
    if ((s->count + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        uint64_t *n = calloc(ncap, sizeof *n);
        if (n == NULL)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i] != 0) {
                size_t j = s->slots[i] & (ncap - 1);
                while (n[j] != 0)
                    j = (j + 1) & (ncap - 1);
                n[j] = s->slots[i];
            }
        free(s->slots);
        s->slots = n;
        s->cap = ncap;
    }
    for (size_t j = h & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
        if (s->slots[j] == h)
            return 0;
        if (s->slots[j] == 0) {
            s->slots[j] = h;
            s->count++;
            return 0;
        }
    }
}

static void set_clear(HashSet *s)
{
    if (s->slots != NULL)
        memset(s->slots, 0, s->cap * sizeof *s->slots);
    s->count = 0;
}

/* A ring of (time, amount) for sliding windows. */
typedef struct Window {
    int64_t *t;
    int64_t *amount;
    size_t head, n, cap;
    int64_t sum;
} Window;

static int window_push(Window *w, int64_t t, int64_t amount, int64_t span_us)
{
    while (w->n > 0 && t - w->t[w->head] > span_us) {
        w->sum -= w->amount[w->head];
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 16;
        int64_t *nt = malloc(ncap * sizeof *nt), *na = malloc(ncap * sizeof *na);
        if (nt == NULL || na == NULL) {
            free(nt);
            free(na);
            return -1;
        }
        for (size_t i = 0; i < w->n; i++) {
            nt[i] = w->t[(w->head + i) % w->cap];
            na[i] = w->amount[(w->head + i) % w->cap];
        }
        free(w->t);
        free(w->amount);
        w->t = nt;
        w->amount = na;
        w->head = 0;
        w->cap = ncap;
    }
    w->t[(w->head + w->n) % w->cap] = t;
    w->amount[(w->head + w->n) % w->cap] = amount;
    w->n++;
    w->sum += amount;
    return 0;
}

/* ---- Per-actor state ---------------------------------------------------------------------- */

typedef struct DayStat {
    int64_t day;              /* days since 1970-01-01 (UTC) */
    uint32_t count;           /* accesses */
    uint32_t max_distinct;    /* distinct objects in the busiest window of the day */
    int64_t max_distinct_at;  /* start of that window */
    uint32_t hours[24];
    int64_t first_us, last_us, first_seq;
} DayStat;

typedef struct Actor {
    char *name;
    int exempt;
    DayStat *days;
    size_t n_days, cap_days;
    int64_t bucket;           /* the distinct-objects window being filled, INT64_MIN: none */
    size_t bucket_day;        /* index of the day it started on */
    HashSet bucket_objects;
    Window bulk, unlock;
    ptrdiff_t last_alert[R_N]; /* index in the list of this actor's latest alert per rule, -1: none */
} Actor;

typedef struct Scan {
    const MvAlertConfig *cfg;
    Actor **table;            /* open addressing by name */
    size_t cap, count;
    MvAlertList *list;
    size_t list_cap;
} Scan;

static Actor *actor_get(Scan *sc, const char *name)
{
    uint64_t h = fnv1a(name);
    size_t j;

    if ((sc->count + 1) * 2 > sc->cap) {
        size_t ncap = sc->cap ? sc->cap * 2 : 64;
        Actor **n = calloc(ncap, sizeof *n);
        if (n == NULL)
            return NULL;
        for (size_t i = 0; i < sc->cap; i++)
            if (sc->table[i] != NULL) {
                size_t k = fnv1a(sc->table[i]->name) & (ncap - 1);
                while (n[k] != NULL)
                    k = (k + 1) & (ncap - 1);
                n[k] = sc->table[i];
            }
        free(sc->table);
        sc->table = n;
        sc->cap = ncap;
    }
    for (j = h & (sc->cap - 1); sc->table[j] != NULL; j = (j + 1) & (sc->cap - 1))
        if (strcmp(sc->table[j]->name, name) == 0)
            return sc->table[j];
    {
        Actor *a = calloc(1, sizeof *a);
        if (a == NULL || (a->name = strdup(name)) == NULL) {
            free(a);
            return NULL;
        }
        a->bucket = INT64_MIN;
        for (int r = 0; r < R_N; r++)
            a->last_alert[r] = -1;
        for (size_t i = 0; i < sc->cfg->n_exempt; i++)
            if (strcmp(sc->cfg->exempt_actors[i], name) == 0)
                a->exempt = 1;
        sc->table[j] = a;
        sc->count++;
        return a;
    }
}

static void actor_free(Actor *a)
{
    if (a == NULL)
        return;
    free(a->name);
    free(a->days);
    free(a->bucket_objects.slots);
    free(a->bulk.t);
    free(a->bulk.amount);
    free(a->unlock.t);
    free(a->unlock.amount);
    free(a);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The DayStat of day (appended when new; events come in time order, nearly always). */
static DayStat *actor_day(Actor *a, int64_t day, size_t *index)
{
    size_t i = a->n_days;

    while (i > 0 && a->days[i - 1].day > day)
        i--;
    if (i > 0 && a->days[i - 1].day == day) {
        *index = i - 1;
        return &a->days[i - 1];
    }
    if (a->n_days == a->cap_days) {
        size_t ncap = a->cap_days ? a->cap_days * 2 : 32;
        DayStat *n = realloc(a->days, ncap * sizeof *n);
        if (n == NULL)
            return NULL;
        a->days = n;
        a->cap_days = ncap;
    }
    memmove(&a->days[i + 1], &a->days[i], (a->n_days - i) * sizeof *a->days);
    memset(&a->days[i], 0, sizeof *a->days);
    a->days[i].day = day;
    a->days[i].first_us = INT64_MAX;
    a->days[i].last_us = INT64_MIN;
    a->days[i].first_seq = -1;
    a->n_days++;
    if (a->bucket != INT64_MIN && a->bucket_day >= i)
        a->bucket_day++;
    *index = i;
    return &a->days[i];
}

/* ---- Alerts --------------------------------------------------------------------------------- */

static void day_text(int64_t us, char out[11])
{
    char buf[40];

    mv_audit_time_format(us, buf, sizeof buf);
    memcpy(out, buf, 10);
    out[10] = '\0';
}

/* Raises (or, for the same rule, actor and day, widens) an alert; returns it or NULL (no memory). */
static MvAlert *raise_alert(Scan *sc, Actor *a, enum Rule rule, int64_t start, int64_t end, double observed,
                            double threshold, int64_t seq)
{
    MvAlertList *l = sc->list;
    char day[11];
    MvAlert *al;

    day_text(start, day);
    if (a->last_alert[rule] >= 0) {
        al = &l->items[a->last_alert[rule]];
        if (strcmp(al->day, day) == 0) {
            if (start < al->start_us)
                al->start_us = start;
            if (end > al->end_us)
                al->end_us = end;
            if (observed > al->observed) {
                al->observed = observed;
                al->threshold = threshold;
            }
            return al;
        }
    }
    if (l->n_items == sc->list_cap) {
        size_t ncap = sc->list_cap ? sc->list_cap * 2 : 16;
        MvAlert *n = realloc(l->items, ncap * sizeof *n);
        if (n == NULL)
            return NULL;
        l->items = n;
        sc->list_cap = ncap;
    }
    al = &l->items[l->n_items];
    memset(al, 0, sizeof *al);
    al->rule = rule_names[rule];
    al->actor = strdup(a->name);
    if (al->actor == NULL)
        return NULL;
    memcpy(al->day, day, sizeof al->day);
    al->start_us = start;
    al->end_us = end;
    al->observed = observed;
    al->threshold = threshold;
    al->first_seq = seq;
    a->last_alert[rule] = (ptrdiff_t)l->n_items;
    l->n_items++;
    return al;
}

static int alert_add_object(MvAlert *al, const char *object)
{
    char **n;

    for (size_t i = 0; i < al->n_objects; i++)
        if (strcmp(al->objects[i], object) == 0)
            return 0;
    if (al->n_objects >= MAX_ALERT_OBJECTS)
        return 0;
    n = realloc(al->objects, (al->n_objects + 1) * sizeof *n);
    if (n == NULL)
        return -1;
    al->objects = n;
    if ((n[al->n_objects] = strdup(object)) == NULL)
        return -1;
    al->n_objects++;
    return 0;
}

static int is_sensitive(const MvAlertConfig *cfg, const char *object)
{
    const char *colon = strchr(object, ':');
    const char *keys[2] = {object, colon != NULL ? colon + 1 : NULL};

    for (int k = 0; k < 2 && keys[k] != NULL; k++) {
        size_t lo = 0, hi = cfg->n_sensitive;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(cfg->sensitive[mid], keys[k]);
            if (c == 0)
                return 1;
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    return 0;
}

/* Actions that read objects out of medveil's keeping (the bulk rule). */
static int is_readout(const char *action)
{
    return strcmp(action, "vault.get") == 0 || strcmp(action, "vault.backup") == 0 || strcmp(action, "deid") == 0 ||
           strcmp(action, "reidentify") == 0;
}

/* Closes the actor's distinct-objects window into the day it started on. */
static void close_bucket(Actor *a, int64_t window_us)
{
    if (a->bucket != INT64_MIN && a->bucket_day < a->n_days) {
        DayStat *d = &a->days[a->bucket_day];
        if (a->bucket_objects.count > d->max_distinct) {
            d->max_distinct = (uint32_t)a->bucket_objects.count;
            d->max_distinct_at = a->bucket * window_us;
        }
    }
    set_clear(&a->bucket_objects);
    a->bucket = INT64_MIN;
}

static MvStatus nomem(MvError *err)
{
    return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
}

static MvStatus observe(Scan *sc, const MvAuditEvent *ev, MvError *err)
{
    const MvAlertConfig *cfg = sc->cfg;
    Actor *a = actor_get(sc, ev->actor);
    int64_t t = ev->time_us;

    if (a == NULL)
        return nomem(err);
    if (a->exempt || strncmp(ev->action, "audit.", 6) == 0)
        return MV_OK;

    if (strcmp(ev->action, "auth.unlock") == 0) {
        if (strcmp(ev->outcome, "success") == 0)
            return MV_OK;
        if (window_push(&a->unlock, t, 1, (int64_t)cfg->unlock_window_s * 1000000) != 0)
            return nomem(err);
        if (a->unlock.sum >= cfg->unlock_max_failures &&
            raise_alert(sc, a, R_UNLOCK, a->unlock.t[a->unlock.head], t, (double)a->unlock.sum,
                        cfg->unlock_max_failures, ev->seq) == NULL)
            return nomem(err);
        return MV_OK;
    }
    if (strncmp(ev->action, "auth.", 5) == 0)
        return MV_OK;

    /* Every other action reads or changes protected data: an access (attempts count too). */
    {
        size_t di;
        int64_t window_us = (int64_t)cfg->distinct_window_s * 1000000, bucket = floor_div(t, window_us);
        int64_t day = floor_div(t, DAY_US);
        DayStat *d = actor_day(a, day, &di);
        int hour;

        if (d == NULL)
            return nomem(err);
        hour = (int)(floor_div(t, (int64_t)3600 * 1000000) % 24);
        if (hour < 0)
            hour += 24;
        d->count++;
        d->hours[hour]++;
        if (t < d->first_us) {
            d->first_us = t;
            d->first_seq = ev->seq;
        }
        if (t > d->last_us)
            d->last_us = t;
        if (bucket != a->bucket) {
            if (a->bucket != INT64_MIN && bucket < a->bucket)
                bucket = a->bucket; /* a late event: counted in the window being filled */
            else {
                close_bucket(a, window_us);
                a->bucket = bucket;
                a->bucket_day = di;
            }
        }
        for (size_t i = 0; i < ev->n_objects; i++)
            if (set_add(&a->bucket_objects, fnv1a(ev->objects[i])) != 0)
                return nomem(err);
    }
    if (is_readout(ev->action) && ev->n_objects > 0) {
        if (window_push(&a->bulk, t, (int64_t)ev->n_objects, (int64_t)cfg->bulk_window_s * 1000000) != 0)
            return nomem(err);
        if (a->bulk.sum > cfg->bulk_max_objects &&
            raise_alert(sc, a, R_BULK, a->bulk.t[a->bulk.head], t, (double)a->bulk.sum, cfg->bulk_max_objects,
                        ev->seq) == NULL)
            return nomem(err);
    }
    if (cfg->n_sensitive > 0) {
        MvAlert *al = NULL;
        for (size_t i = 0; i < ev->n_objects; i++) {
            if (!is_sensitive(cfg, ev->objects[i]))
                continue;
            if (al == NULL) {
                al = raise_alert(sc, a, R_SENSITIVE, t, t, 0, 0, ev->seq);
                if (al == NULL)
                    return nomem(err);
            }
            if (alert_add_object(al, ev->objects[i]) != 0)
                return nomem(err);
            al->observed = (double)al->n_objects;
        }
    }
    return MV_OK;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

static double median_of(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The actor's usual value over their active days in [day - span, day): the median, and a robust
 * standard deviation (1.4826 times the median absolute deviation), so that one earlier anomaly
 * in the window does not raise the bar for the next. scratch holds at least i values. Returns
 * the number of days used. */
static size_t baseline(const Actor *a, size_t i, int span, int distinct, double *scratch, double *center,
                       double *spread)
{
    size_t n = 0;

    for (size_t j = i; j-- > 0 && a->days[j].day >= a->days[i].day - span;)
        scratch[n++] = distinct ? a->days[j].max_distinct : a->days[j].count;
    if (n == 0) {
        *center = *spread = 0;
        return 0;
    }
    *center = median_of(scratch, n);
    for (size_t j = 0; j < n; j++)
        scratch[j] = fabs(scratch[j] - *center);
    *spread = 1.4826 * median_of(scratch, n);
    return n;
}

/* The per-day rules, judged against the actor's own previous days. */
static MvStatus judge_days(Scan *sc, Actor *a, MvError *err)
{
    const MvAlertConfig *cfg = sc->cfg;
    double *scratch = malloc((a->n_days + 1) * sizeof *scratch);

    if (scratch == NULL)
        return nomem(err);
    for (size_t i = 0; i < a->n_days; i++) {
        DayStat *d = &a->days[i];
        double mean, sd, limit;
        size_t n;

        for (int distinct = 0; distinct < 2; distinct++) {
            double k = distinct ? cfg->distinct_k : cfg->volume_k;
            double factor = distinct ? cfg->distinct_factor : cfg->volume_factor;
            double floor_min = distinct ? cfg->distinct_min : cfg->volume_min;
            double value = distinct ? d->max_distinct : d->count;
            MvAlert *al;

            n = baseline(a, i, cfg->baseline_days, distinct, scratch, &mean, &sd);
            if (n < (size_t)cfg->baseline_min_days)
                continue;
            /* Counts are at least as noisy as a Poisson process of the same mean. */
            sd = fmax(sd, sqrt(mean));
            limit = fmax(floor_min, fmax(mean + k * sd, factor * mean));
            if (value <= limit)
                continue;
            if (distinct)
                al = raise_alert(sc, a, R_DISTINCT, d->max_distinct_at,
                                 d->max_distinct_at + (int64_t)cfg->distinct_window_s * 1000000 - 1, value, limit,
                                 -1);
            else
                al = raise_alert(sc, a, R_VOLUME, d->first_us, d->last_us, value, limit, d->first_seq);
            if (al == NULL) {
                free(scratch);
                return nomem(err);
            }
            al->baseline_mean = mean;
            al->baseline_sd = sd;
        }

        /* Unusual hours: the hour and its neighbours held under max_share of the baseline's events. */
        {
            uint64_t hist[24] = {0}, total = 0, off = 0;
            for (size_t j = i; j-- > 0 && a->days[j].day >= d->day - cfg->baseline_days;)
                for (int h = 0; h < 24; h++) {
                    hist[h] += a->days[j].hours[h];
                    total += a->days[j].hours[h];
                }
            if (total < (uint64_t)cfg->offhours_min_events)
                continue;
            for (int h = 0; h < 24; h++) {
                uint64_t near = hist[(h + 23) % 24] + hist[h] + hist[(h + 1) % 24];
                if (d->hours[h] > 0 && (double)near < cfg->offhours_max_share * (double)total)
                    off += d->hours[h];
            }
            if (off >= (uint64_t)cfg->offhours_min_count) {
                MvAlert *al = raise_alert(sc, a, R_OFFHOURS, d->first_us, d->last_us, (double)off,
                                          cfg->offhours_min_count, d->first_seq);
                if (al == NULL) {
                    free(scratch);
                    return nomem(err);
                }
            }
        }
    }
    free(scratch);
    return MV_OK;
}

static int cmp_alert(const void *pa, const void *pb)
{
    const MvAlert *a = pa, *b = pb;
    int c;

    if (a->start_us != b->start_us)
        return a->start_us < b->start_us ? -1 : 1;
    c = strcmp(a->rule, b->rule);
    return c != 0 ? c : strcmp(a->actor, b->actor);
}

static void free_alert(MvAlert *al)
{
    free(al->actor);
    free_strings(al->objects, al->n_objects);
}

static void summarize(MvAlert *al, const MvAlertConfig *cfg)
{
    char start[40], end[40];

    mv_audit_time_format(al->start_us, start, sizeof start);
    mv_audit_time_format(al->end_us, end, sizeof end);
    if (strcmp(al->rule, "volume") == 0)
        snprintf(al->summary, sizeof al->summary, "%.0f accesses on %s; usual %.1f +/- %.1f a day (median, robust sd; limit %.1f)",
                 al->observed, al->day, al->baseline_mean, al->baseline_sd, al->threshold);
    else if (strcmp(al->rule, "distinct") == 0)
        snprintf(al->summary, sizeof al->summary,
                 "%.0f distinct objects within %d s from %s; usual busiest %.1f +/- %.1f (limit %.1f)", al->observed,
                 cfg->distinct_window_s, start, al->baseline_mean, al->baseline_sd, al->threshold);
    else if (strcmp(al->rule, "bulk") == 0)
        snprintf(al->summary, sizeof al->summary, "%.0f objects read out within %d s, %s to %s (limit %.0f)",
                 al->observed, cfg->bulk_window_s, start, end, al->threshold);
    else if (strcmp(al->rule, "offhours") == 0)
        snprintf(al->summary, sizeof al->summary, "%.0f accesses on %s at hours this actor rarely works", al->observed,
                 al->day);
    else if (strcmp(al->rule, "unlock") == 0)
        snprintf(al->summary, sizeof al->summary, "%.0f failed unlocks within %d s, %s to %s", al->observed,
                 cfg->unlock_window_s, start, end);
    else
        snprintf(al->summary, sizeof al->summary, "%.0f sensitive object(s) accessed on %s", al->observed, al->day);
}

MvStatus mv_alerts_scan_reader(MvAuditReader *r, const MvAlertConfig *cfg, int64_t since_us, MvAlertList *list,
                               MvError *err)
{
    Scan sc;
    MvAuditEvent ev;
    MvStatus st = MV_OK;
    MvError line_err;
    size_t kept = 0;

    memset(list, 0, sizeof *list);
    memset(&sc, 0, sizeof sc);
    sc.cfg = cfg;
    sc.list = list;
    mv_error_clear(&line_err);
    for (;;) {
        st = mv_audit_reader_next(r, &ev, &line_err);
        if (st == MV_ERR_NOTFOUND) {
            st = MV_OK;
            break;
        }
        if (st == MV_ERR_PARSE) {
            list->n_bad_lines++;
            continue;
        }
        if (st != MV_OK) {
            if (err != NULL)
                *err = line_err;
            goto out;
        }
        list->n_events++;
        st = observe(&sc, &ev, err);
        if (st != MV_OK)
            goto out;
    }
    if (list->n_events == 0 && list->n_bad_lines > 0) {
        if (err != NULL)
            *err = line_err;
        st = MV_ERR_PARSE;
        goto out;
    }
    for (size_t i = 0; i < sc.cap; i++) {
        Actor *a = sc.table[i];
        if (a == NULL)
            continue;
        close_bucket(a, (int64_t)cfg->distinct_window_s * 1000000);
        st = judge_days(&sc, a, err);
        if (st != MV_OK)
            goto out;
        for (size_t j = 0; j < a->n_days; j++)
            if (a->days[j].last_us >= since_us)
                list->n_actor_days++;
    }
    /* Keep what touches [since, ...), in order. */
    for (size_t i = 0; i < list->n_items; i++) {
        if (list->items[i].end_us >= since_us) {
            summarize(&list->items[i], cfg);
            list->items[kept++] = list->items[i];
        } else {
            free_alert(&list->items[i]);
        }
    }
    list->n_items = kept;
    if (list->n_items > 1)
        qsort(list->items, list->n_items, sizeof *list->items, cmp_alert);
out:
    for (size_t i = 0; i < sc.cap; i++)
        actor_free(sc.table[i]);
    free(sc.table);
    if (st != MV_OK)
        mv_alert_list_clear(list);
    return st;
}

MvStatus mv_alerts_scan(const char *path, const MvAlertConfig *cfg, int64_t since_us, MvAlertList *list,
                        MvError *err)
{
    MvAuditReader *r = NULL;
    MvStatus st;

    memset(list, 0, sizeof *list);
    st = mv_audit_reader_open(path, &r, err);
    if (st != MV_OK)
        return st;
    st = mv_alerts_scan_reader(r, cfg, since_us, list, err);
    mv_audit_reader_free(r);
    return st;
}

void mv_alert_list_clear(MvAlertList *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n_items; i++)
        free_alert(&list->items[i]);
    free(list->items);
    memset(list, 0, sizeof *list);
}

char *mv_alert_to_json(const MvAlert *a)
{
    json_t *o = json_object(), *objects = json_array();
    char start[40], end[40], *text = NULL;

    if (o == NULL || objects == NULL)
        goto out;
    mv_audit_time_format(a->start_us, start, sizeof start);
    mv_audit_time_format(a->end_us, end, sizeof end);
    for (size_t i = 0; i < a->n_objects; i++)
        json_array_append_new(objects, json_string(a->objects[i]));
    json_object_set_new(o, "rule", json_string(a->rule));
    json_object_set_new(o, "actor", json_string(a->actor));
    json_object_set_new(o, "day", json_string(a->day));
    json_object_set_new(o, "start", json_string(start));
    json_object_set_new(o, "end", json_string(end));
    json_object_set_new(o, "observed", json_real(a->observed));
    json_object_set_new(o, "threshold", json_real(a->threshold));
    json_object_set_new(o, "baseline_mean", json_real(a->baseline_mean));
    json_object_set_new(o, "baseline_sd", json_real(a->baseline_sd));
    json_object_set_new(o, "summary", json_string(a->summary));
    json_object_set_new(o, "first_seq", a->first_seq >= 0 ? json_integer(a->first_seq) : json_null());
    json_object_set(o, "objects", objects);
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
out:
    json_decref(objects);
    json_decref(o);
    return text;
}

MvStatus mv_alerts_log(const MvAlertList *list, const char *actor, MvAuditAppendFn append, void *ctx, MvError *err)
{
    for (size_t i = 0; i < list->n_items; i++) {
        const MvAlert *a = &list->items[i];
        MvAuditEvent ev;
        char detail[512];

        snprintf(detail, sizeof detail, "rule=%s actor=%s day=%s observed=%.0f threshold=%.1f", a->rule, a->actor,
                 a->day, a->observed, a->threshold);
        memset(&ev, 0, sizeof ev);
        ev.action = "audit.alert";
        ev.actor = actor;
        ev.objects = (const char *const *)a->objects;
        ev.n_objects = a->n_objects;
        ev.outcome = "success";
        ev.detail = detail;
        ev.seq = -1;
        if (append(ctx, &ev) != 0)
            return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET,
                                "could not log alert %zu of %zu as an audit.alert event", i + 1, list->n_items);
    }
    return MV_OK;
}
