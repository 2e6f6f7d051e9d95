/* The de-identification engine: PS3.15 Annex E Table E.1-1 applied to every element at
 * every depth, with the options' columns, keyed pseudonyms (HMAC-SHA256 from OpenSSL
 * under the project key, one domain label per kind), per-patient date shifting, text
 * cleaning, safe private attributes and recipes; then the markers of what was done. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "deid/deid_int.h"
#include "medveil/pixel_clean.h"

#define LABEL_UID "medveil/uid/v1"
#define LABEL_ID "medveil/id/v1"
#define LABEL_NAME "medveil/name/v1"
#define LABEL_DATE "medveil/date/v1"
#define LABEL_AE "medveil/ae/v1"
#define LABEL_FILE "medveil/file-id/v1"

typedef struct UserSafe {
    char *creator;
    uint16_t group;
    uint8_t element;
} UserSafe;

struct MvDeidConfig {
    uint8_t key[MV_KEY_BYTES];
    int random_key;
    char fingerprint[24];
    unsigned options;
    int date_min, date_max;
    MvRecipe *recipe;
    UserSafe *safe;
    size_t n_safe;
    char method[512];
    const struct MvPixelCleanConfig *pixel;
};

/* ---- options ------------------------------------------------------------------- */

static const struct {
    unsigned bit;
    const char *name;
    const char *code;    /* CID 7050 code value */
    const char *meaning; /* its code meaning */
} option_info[] = {
    {MV_OPT_RETAIN_SAFE_PRIVATE, "retain-safe-private", "113111", "Retain Safe Private Option"},
    {MV_OPT_RETAIN_UIDS, "retain-uids", "113110", "Retain UIDs Option"},
    {MV_OPT_RETAIN_DEVICE_IDENTITY, "retain-device-identity", "113109", "Retain Device Identity Option"},
    {MV_OPT_RETAIN_INSTITUTION_IDENTITY, "retain-institution-identity", "113112",
     "Retain Institution Identity Option"},
    {MV_OPT_RETAIN_PATIENT_CHARACTERISTICS, "retain-patient-characteristics", "113108",
     "Retain Patient Characteristics Option"},
    {MV_OPT_RETAIN_LONG_FULL_DATES, "retain-long-full-dates", "113106",
     "Retain Longitudinal Temporal Information Full Dates Option"},
    {MV_OPT_RETAIN_LONG_MODIFIED_DATES, "retain-long-modified-dates", "113107",
     "Retain Longitudinal Temporal Information Modified Dates Option"},
    {MV_OPT_CLEAN_DESCRIPTORS, "clean-descriptors", "113105", "Clean Descriptors Option"},
    {MV_OPT_CLEAN_STRUCTURED_CONTENT, "clean-structured-content", "113104", "Clean Structured Content Option"},
    {MV_OPT_CLEAN_GRAPHICS, "clean-graphics", "113103", "Clean Graphics Option"},
    {MV_OPT_CLEAN_PIXEL_DATA, "clean-pixel-data", "113101", "Clean Pixel Data Option"},
    {MV_OPT_CLEAN_RECOGNIZABLE_VISUAL_FEATURES, "clean-recognizable-visual-features", "113102",
     "Clean Recognizable Visual Features Option"},
};
#define N_OPTIONS (sizeof option_info / sizeof option_info[0])

/* The option bit behind each column of Table E.1-1 (enum MvProfileColumn order). */
static const unsigned column_option[MV_N_COLUMNS] = {
    MV_OPT_RETAIN_SAFE_PRIVATE, MV_OPT_RETAIN_UIDS, MV_OPT_RETAIN_DEVICE_IDENTITY,
    MV_OPT_RETAIN_INSTITUTION_IDENTITY, MV_OPT_RETAIN_PATIENT_CHARACTERISTICS, MV_OPT_RETAIN_LONG_FULL_DATES,
    MV_OPT_RETAIN_LONG_MODIFIED_DATES, MV_OPT_CLEAN_DESCRIPTORS, MV_OPT_CLEAN_STRUCTURED_CONTENT,
    MV_OPT_CLEAN_GRAPHICS,
};

unsigned mv_deid_option_from_name(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(option_info[i].name, name) == 0)
            return option_info[i].bit;
    return 0;
}

const char *mv_deid_option_name(unsigned option)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (option_info[i].bit == option)
            return option_info[i].name;
    return NULL;
}

/* ---- configuration ---------------------------------------------------------------- */

static void update_method(MvDeidConfig *cfg)
{
    size_t n = (size_t)snprintf(cfg->method, sizeof cfg->method, "medveil %s PS3.15 E Basic Profile", mv_version());

    for (size_t i = 0; i < N_OPTIONS && n < sizeof cfg->method; i++)
        if (cfg->options & option_info[i].bit)
            n += (size_t)snprintf(cfg->method + n, sizeof cfg->method - n, "\\%s", option_info[i].name);
    if (cfg->recipe != NULL && n < sizeof cfg->method)
        snprintf(cfg->method + n, sizeof cfg->method - n, "\\recipe sha256:%.16s", mv__recipe_hash(cfg->recipe));
}

MvStatus mv_deid_config_new(MvDeidConfig **out, MvError *err)
{
    MvDeidConfig *cfg = calloc(1, sizeof *cfg);

    *out = NULL;
    if (cfg == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    if (RAND_bytes(cfg->key, sizeof cfg->key) != 1) {
        free(cfg);
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "the random generator failed");
    }
    cfg->random_key = 1;
    mv_key_fingerprint(cfg->key, cfg->fingerprint);
    cfg->date_min = 1;
    cfg->date_max = 3650;
    update_method(cfg);
    *out = cfg;
    return MV_OK;
}

void mv_deid_config_free(MvDeidConfig *cfg)
{
    if (cfg == NULL)
        return;
    mv__recipe_free(cfg->recipe);
    for (size_t i = 0; i < cfg->n_safe; i++)
        free(cfg->safe[i].creator);
    free(cfg->safe);
    mv_wipe(cfg, sizeof *cfg);
    free(cfg);
}

void mv_deid_config_set_key(MvDeidConfig *cfg, const uint8_t key[MV_KEY_BYTES])
{
    memcpy(cfg->key, key, MV_KEY_BYTES);
    cfg->random_key = 0;
    mv_key_fingerprint(cfg->key, cfg->fingerprint);
}

int mv_deid_config_random_key(const MvDeidConfig *cfg)
{
    return cfg->random_key;
}

const char *mv_deid_config_fingerprint(const MvDeidConfig *cfg)
{
    return cfg->fingerprint;
}

MvStatus mv_deid_config_add_options(MvDeidConfig *cfg, unsigned options, MvError *err)
{
    if ((options | cfg->options) & MV_OPT_RETAIN_LONG_FULL_DATES &&
        (options | cfg->options) & MV_OPT_RETAIN_LONG_MODIFIED_DATES)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "retain-long-full-dates and retain-long-modified-dates exclude each other");
    cfg->options |= options;
    update_method(cfg);
    return MV_OK;
}

unsigned mv_deid_config_options(const MvDeidConfig *cfg)
{
    return cfg->options;
}

void mv_deid_config_set_pixel(MvDeidConfig *cfg, const struct MvPixelCleanConfig *pixel)
{
    cfg->pixel = pixel;
}

MvStatus mv_deid_config_set_date_range(MvDeidConfig *cfg, int min_days, int max_days, MvError *err)
{
    if (min_days < 0 || max_days < min_days || max_days > 36500)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "date shift range must satisfy 0 <= MIN <= MAX <= 36500 days");
    cfg->date_min = min_days;
    cfg->date_max = max_days;
    return MV_OK;
}

MvStatus mv_deid_config_load_safe_private(MvDeidConfig *cfg, const char *path, MvError *err)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int lineno = 0;
    MvStatus st = MV_OK;

    if (f == NULL)
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET, "%s: cannot open", path);
    while (st == MV_OK && fgets(line, sizeof line, f) != NULL) {
        char *comma1, *comma2, *end, *p = line;
        unsigned long group, element;
        UserSafe *grown;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        comma2 = strrchr(p, ',');
        comma1 = NULL;
        if (comma2 != NULL) {
            *comma2 = '\0';
            comma1 = strrchr(p, ',');
        }
        if (comma1 == NULL) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                              "%s:%d: expected CREATOR,GGGG,EE (e.g. SIEMENS CSA HEADER,0029,08)", path, lineno);
            break;
        }
        *comma1 = '\0';
        group = strtoul(comma1 + 1, &end, 16);
        if (*end != '\0' || end == comma1 + 1 || group > 0xFFFF || !(group & 1)) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s:%d: GGGG must be an odd hex group",
                              path, lineno);
            break;
        }
        element = strtoul(comma2 + 1, &end, 16);
        if (*end != '\0' || end == comma2 + 1 || element > 0xFF) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                              "%s:%d: EE must be two hex digits (the element within the block)", path, lineno);
            break;
        }
        grown = realloc(cfg->safe, (cfg->n_safe + 1) * sizeof *grown);
        if (grown == NULL || (p = strdup(p)) == NULL) {
            if (grown != NULL)
                cfg->safe = grown;
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            break;
        }
        cfg->safe = grown;
        cfg->safe[cfg->n_safe].creator = p;
        cfg->safe[cfg->n_safe].group = (uint16_t)group;
        cfg->safe[cfg->n_safe].element = (uint8_t)element;
        cfg->n_safe++;
    }
    fclose(f);
    return st;
}

MvStatus mv_deid_config_load_recipe(MvDeidConfig *cfg, const char *path, MvError *err)
{
    MvStatus st = mv__recipe_load(&cfg->recipe, path, err);

    if (st == MV_OK)
        update_method(cfg);
    return st;
}

const char *mv_deid_config_recipe_hash(const MvDeidConfig *cfg)
{
    return cfg->recipe ? mv__recipe_hash(cfg->recipe) : "";
}

const char *mv_deid_config_method(const MvDeidConfig *cfg)
{
    return cfg->method;
}

/* ---- keyed derivations ---------------------------------------------------------- */

static void keyed(const MvDeidConfig *cfg, const char *label, const void *data, size_t len, uint8_t out[32])
{
    unsigned int out_len = 32;
    size_t label_len = strlen(label);
    uint8_t stack[256];
    uint8_t *msg = label_len + 1 + len <= sizeof stack ? stack : malloc(label_len + 1 + len);

    if (msg == NULL) {
        /* Out of memory on a huge value: derive from its digest instead. */
        uint8_t digest[32];
        unsigned int dlen = 0;
        EVP_Digest(data, len, digest, &dlen, EVP_sha256(), NULL);
        keyed(cfg, label, digest, sizeof digest, out);
        return;
    }
    /* label || 0x00 || data: the separator keeps domains apart. */
    memcpy(msg, label, label_len);
    msg[label_len] = 0;
    if (len > 0)
        memcpy(msg + label_len + 1, data, len);
    HMAC(EVP_sha256(), cfg->key, MV_KEY_BYTES, msg, label_len + 1 + len, out, &out_len);
    if (msg != stack)
        free(msg);
    else
        mv_wipe(stack, label_len + 1 + len);
}

/* 128 bits to decimal: repeated division of a big-endian byte string by 10. */
static void decimal128(const uint8_t in[16], char out[40])
{
    uint8_t n[16];
    char rev[40];
    size_t k = 0;
    int nonzero;

    memcpy(n, in, 16);
    do {
        unsigned rem = 0;
        nonzero = 0;
        for (size_t i = 0; i < 16; i++) {
            unsigned cur = rem * 256 + n[i];
            n[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            nonzero |= n[i];
        }
        rev[k++] = (char)('0' + rem);
    } while (nonzero);
    for (size_t i = 0; i < k; i++)
        out[i] = rev[k - 1 - i];
    out[k] = '\0';
}

void mv_deid_uid(const MvDeidConfig *cfg, const char *uid, char out[65])
{
    uint8_t mac[32];
    char digits[40];

    keyed(cfg, LABEL_UID, uid, strlen(uid), mac);
    decimal128(mac, digits);
    snprintf(out, 65, "2.25.%s", digits);
}

static void hex_upper(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* "MV" and 16 hex digits: the pseudonym of an identifier under a domain label. */
static void pseudonym(const MvDeidConfig *cfg, const char *label, const char *value, char out[19])
{
    uint8_t mac[32];

    keyed(cfg, label, value, strlen(value), mac);
    out[0] = 'M';
    out[1] = 'V';
    hex_upper(mac, 8, out + 2);
}

/* ---- dates (proleptic Gregorian day numbers) ----------------------------------------- */

static long days_from_civil(long y, unsigned m, unsigned d)
{
    long era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
    long era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    *y = (long)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y += *m <= 2;
}

/* Shifts a YYYYMMDD at p by days; 0 if p does not hold a valid date. */
static int shift_date8(char *p, long days)
{
    long y, ny;
    unsigned m, d, nm, nd;

    for (int i = 0; i < 8; i++)
        if (!isdigit((unsigned char)p[i]))
            return 0;
    y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    m = (unsigned)((p[4] - '0') * 10 + (p[5] - '0'));
    d = (unsigned)((p[6] - '0') * 10 + (p[7] - '0'));
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return 0;
    civil_from_days(days_from_civil(y, m, d), &ny, &nm, &nd);
    if (ny != y || nm != m || nd != d)
        return 0; /* 31 February and the like */
    civil_from_days(days_from_civil(y, m, d) + days, &ny, &nm, &nd);
    if (ny < 0 || ny > 9999)
        return 0;
    {
        char tmp[9];
        snprintf(tmp, sizeof tmp, "%04ld%02u%02u", ny, nm, nd);
        memcpy(p, tmp, 8);
    }
    return 1;
}

/* ---- the engine ------------------------------------------------------------------ */

enum { MODE_NONE, MODE_SR_DUMMY, MODE_SR_CLEAN, MODE_GRAPHICS_DUMMY, MODE_GRAPHICS_CLEAN };

typedef struct Ctx {
    const MvDeidConfig *cfg;
    MvFile *file;
    MvDeidResult *res;
    MvIdentifiers *ids;
    long shift_days;
    int dates_touched;
    char patient_pseudo[19];
    int sr_or_enhanced;  /* an IOD where some combined-code attributes are Type 1 */
    int dicomdir;        /* a Media Storage Directory: its records have Type 1 dates and IDs */
    int mode;            /* inside structured content or graphic annotations */
    MvError *err;
} Ctx;

static const MvProfileRow *find_row(uint32_t tag)
{
    size_t lo = 0, hi = mv__profile_n_exact;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mv__profile_rows[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < mv__profile_n_exact && mv__profile_rows[lo].tag == tag)
        return &mv__profile_rows[lo];
    for (size_t i = mv__profile_n_exact; i < mv__profile_n_rows; i++)
        if ((tag & mv__profile_rows[i].mask) == mv__profile_rows[i].tag)
            return &mv__profile_rows[i];
    return NULL;
}

/* The action for a public tag under the configured options, and the column that chose
 * it (-1 for the Basic Profile). An option's K wins over another's C. */
static MvAction profile_action(const Ctx *c, const MvProfileRow *row, int *column)
{
    MvAction act = (MvAction)row->basic;

    *column = -1;
    for (int col = 0; col < MV_N_COLUMNS; col++) {
        MvAction opt = (MvAction)row->option[col];
        if (opt == MV_ACT_NONE || !(c->cfg->options & column_option[col]))
            continue;
        if (opt == MV_ACT_K || *column < 0) {
            act = opt;
            *column = col;
            if (opt == MV_ACT_K)
                break;
        }
    }
    return act;
}

/* Attributes that are Type 1 in SR documents or enhanced multi-frame IODs, where a
 * combined code must resolve to D rather than Z or X. */
static int type1_in_context(const Ctx *c, uint32_t tag)
{
    if (!c->sr_or_enhanced)
        return 0;
    switch (tag) {
    case MV_TAG(0x0008, 0x0023): /* Content Date */
    case MV_TAG(0x0008, 0x0033): /* Content Time */
    case MV_TAG(0x0008, 0x002A): /* Acquisition DateTime */
    case MV_TAG(0x0018, 0x1000): /* Device Serial Number */
    case MV_TAG(0x0040, 0xA032): /* Observation DateTime */
        return 1;
    default:
        return 0;
    }
}

/* Resolves the combined codes of E.1.1 without per-IOD attribute types: keep the element
 * present (Z) where that can only help validity, D where it is known to be Type 1. */
static MvAction resolve_combined(const Ctx *c, uint32_t tag, MvAction act, int is_seq)
{
    if (c->dicomdir && !is_seq && act != MV_ACT_K && act != MV_ACT_C) {
        /* PS3.3 F.5: the Study record's date, time and ID are Type 1, its description Type 2. */
        if (tag == MV_TAG(0x0008, 0x0020) || tag == MV_TAG(0x0008, 0x0030) || tag == MV_TAG(0x0020, 0x0010))
            return MV_ACT_D;
        if (tag == MV_TAG(0x0008, 0x1030) && act == MV_ACT_X)
            return MV_ACT_Z;
    }
    /* Reference sequences hold SOP Class and Instance UIDs, which their own rows replace:
     * keeping the items keeps Type 1 and "1-n items" rules satisfied and leaks nothing. */
    if (is_seq && (act == MV_ACT_ZD || act == MV_ACT_XZ || act == MV_ACT_XD || act == MV_ACT_XZD) &&
        strncmp(mv_dict_keyword(tag), "Referenced", 10) == 0)
        return MV_ACT_K;
    /* Without the attribute's Type in each IOD, D is the one choice valid for Types 1, 1C,
     * 2 and 3 alike, and a dummy leaks nothing. A sequence other than references is
     * emptied instead: a dummy sequence would keep whatever its items hold. */
    switch (act) {
    case MV_ACT_ZD:
    case MV_ACT_XD:
    case MV_ACT_XZD:
        return is_seq && !type1_in_context(c, tag) ? MV_ACT_Z : MV_ACT_D;
    case MV_ACT_XZ:
        return MV_ACT_Z;
    case MV_ACT_XZU:
        /* A sequence of references keeps its items, whose UIDs are replaced by their own rows. */
        return is_seq ? MV_ACT_K : MV_ACT_Z;
    default:
        return act;
    }
}

static MvStatus set_text(Ctx *c, MvDataset *ds, uint32_t tag, MvVr vr, const char *text)
{
    MvStatus st = mv_dataset_set_bytes(ds, tag, vr, text, strlen(text), c->err);

    if (st == MV_OK)
        c->res->n_replaced++;
    return st;
}

static MvStatus act_remove(Ctx *c, MvDataset *ds, uint32_t tag)
{
    mv_dataset_remove(ds, tag);
    c->res->n_removed++;
    return MV_OK;
}

static MvStatus act_empty(Ctx *c, MvDataset *ds, const MvElement *el)
{
    uint32_t tag = mv_element_tag(el);
    MvStatus st;

    if (mv_element_is_sequence(el) || mv_element_vr(el) == MV_VR_SQ)
        st = mv_dataset_set_sequence(ds, tag, NULL, c->err);
    else
        st = mv_dataset_set_bytes(ds, tag, mv_element_vr(el), NULL, 0, c->err);
    if (st == MV_OK)
        c->res->n_emptied++;
    return st;
}

/* Splits a text value on backslashes, maps each value, joins them again. */
typedef void (*ValueMap)(Ctx *c, const char *in, char *out, size_t out_size);

static MvStatus map_values(Ctx *c, MvDataset *ds, const MvElement *el, ValueMap fn, size_t *n_mapped)
{
    size_t len = 0, cap;
    const uint8_t *v = mv_element_value(el, &len);
    char *out, *value, *start;
    size_t used = 0;
    MvStatus st;

    cap = len * 2 + 80 * (mv_element_vm(el) + 1) + 1;
    out = malloc(cap);
    value = malloc(len + 1);
    if (out == NULL || value == NULL) {
        free(out);
        free(value);
        return mv_error_set(c->err, MV_ERR_NOMEM, mv_element_tag(el), MV_NO_OFFSET, "out of memory");
    }
    if (len > 0)
        memcpy(value, v, len);
    value[len] = '\0';
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\0'))
        value[--len] = '\0';
    start = value;
    for (;;) {
        char *bs = strchr(start, '\\');
        char mapped[80];
        if (bs != NULL)
            *bs = '\0';
        while (*start == ' ')
            start++;
        {
            size_t n = strlen(start);
            while (n > 0 && start[n - 1] == ' ')
                start[--n] = '\0';
        }
        mapped[0] = '\0';
        if (*start != '\0') {
            fn(c, start, mapped, sizeof mapped);
            (*n_mapped)++;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s", mapped);
        if (bs == NULL)
            break;
        out[used++] = '\\';
        out[used] = '\0';
        start = bs + 1;
    }
    st = mv_dataset_set_bytes(ds, mv_element_tag(el), mv_element_vr(el), out, used, c->err);
    mv_wipe(value, strlen(value));
    free(value);
    free(out);
    return st;
}

static void map_uid(Ctx *c, const char *in, char *out, size_t out_size)
{
    char uid[65];

    mv_deid_uid(c->cfg, in, uid);
    snprintf(out, out_size, "%s", uid);
}

static void map_date(Ctx *c, const char *in, char *out, size_t out_size)
{
    /* DA, DT and ranges "A-B": every 8-digit date at the start of a part is shifted. */
    char buf[80];
    size_t n = strlen(in);

    snprintf(buf, sizeof buf, "%s", in);
    if (n < 8 || !shift_date8(buf, c->shift_days)) {
        /* A year or a year and month alone cannot be shifted by days: it is emptied. */
        out[0] = '\0';
        return;
    }
    {
        char *dash = strchr(buf, '-');
        /* A DT offset (+hhmm/-hhmm) follows six or more digits; a range dash follows a date. */
        if (dash != NULL && dash - buf >= 8 && strlen(dash + 1) >= 8 && !shift_date8(dash + 1, c->shift_days)) {
            out[0] = '\0';
            return;
        }
    }
    c->dates_touched = 1;
    snprintf(out, out_size, "%s", buf);
}

static void map_ae(Ctx *c, const char *in, char *out, size_t out_size)
{
    char p[19];

    pseudonym(c->cfg, LABEL_AE, in, p);
    snprintf(out, out_size, "AE%.14s", p + 2);
}

/* A file-set path component (PS3.10 8.5: up to 8 of A-Z 0-9 _) as a keyed pseudonym. */
static void map_file_id(Ctx *c, const char *in, char *out, size_t out_size)
{
    uint8_t mac[32];
    char hex[9];

    keyed(c->cfg, LABEL_FILE, in, strlen(in), mac);
    hex_upper(mac, 4, hex);
    snprintf(out, out_size, "%s", hex);
}

static MvStatus act_uid(Ctx *c, MvDataset *ds, const MvElement *el)
{
    size_t n = 0;
    MvStatus st = map_values(c, ds, el, map_uid, &n);

    c->res->n_uids += n;
    return st;
}

static MvStatus act_shift(Ctx *c, MvDataset *ds, const MvElement *el)
{
    MvVr vr = mv_element_vr(el);
    size_t n = 0;
    MvStatus st;

    if (vr == MV_VR_TM)
        return MV_OK; /* whole-day shifts leave times as they are */
    if (vr != MV_VR_DA && vr != MV_VR_DT)
        return MV_OK;
    st = map_values(c, ds, el, map_date, &n);
    c->res->n_dates_shifted += n;
    return st;
}

/* A person's name as a keyed pseudonym: the patient's own gets the patient pseudonym. */
static MvStatus act_person(Ctx *c, MvDataset *ds, const MvElement *el)
{
    char *name = NULL, p[19];
    MvStatus st = mv_element_string(ds, el, &name, c->err);

    if (st != MV_OK)
        return st;
    if (name[0] == '\0') {
        free(name);
        return MV_OK;
    }
    pseudonym(c->cfg, LABEL_NAME, name, p);
    mv_wipe(name, strlen(name));
    free(name);
    return set_text(c, ds, mv_element_tag(el), MV_VR_PN, p);
}

static MvStatus act_dummy(Ctx *c, MvDataset *ds, const MvElement *el)
{
    uint32_t tag = mv_element_tag(el);
    MvVr vr = mv_element_vr(el);
    static const uint8_t zeros[8];

    switch (vr) {
    case MV_VR_PN: return act_person(c, ds, el);
    case MV_VR_UI: return act_uid(c, ds, el);
    case MV_VR_DA: return set_text(c, ds, tag, vr, "19000101");
    case MV_VR_TM: return set_text(c, ds, tag, vr, "000000");
    case MV_VR_DT: return set_text(c, ds, tag, vr, "19000101000000");
    case MV_VR_AS: return set_text(c, ds, tag, vr, "000D");
    case MV_VR_AE: case MV_VR_CS: return set_text(c, ds, tag, vr, "ANONYMIZED");
    case MV_VR_DS: case MV_VR_IS: return set_text(c, ds, tag, vr, "0");
    case MV_VR_UR: return set_text(c, ds, tag, vr, "urn:medveil:anonymized");
    case MV_VR_SH: case MV_VR_LO: case MV_VR_ST: case MV_VR_LT: case MV_VR_UT: case MV_VR_UC:
        return set_text(c, ds, tag, vr, "ANONYMIZED");
    default: {
        size_t unit = mv_vr_unit_size(vr);
        MvStatus st = mv_dataset_set_bytes(ds, tag, vr, zeros, unit < 2 ? 2 : unit, c->err);
        if (st == MV_OK)
            c->res->n_replaced++;
        return st;
    }
    }
}

/* Clean: text keeps its words but loses identifiers; other VRs get a dummy. */
static MvStatus act_clean_text(Ctx *c, MvDataset *ds, const MvElement *el)
{
    MvVr vr = mv_element_vr(el);
    char *text = NULL, *clean = NULL;
    size_t clean_len = 0;
    int changed = 0, ascii = 1;
    MvStatus st;

    if (!mv_vr_is_text(vr) || vr == MV_VR_UI || vr == MV_VR_DA || vr == MV_VR_TM || vr == MV_VR_DT)
        return act_dummy(c, ds, el);
    if ((st = mv_element_string(ds, el, &text, c->err)) != MV_OK)
        return st;
    st = mv__clean_text(c->ids, text, strlen(text), &clean, &clean_len, &changed);
    mv_wipe(text, strlen(text));
    free(text);
    if (st != MV_OK)
        return mv_error_set(c->err, st, mv_element_tag(el), MV_NO_OFFSET, "out of memory cleaning text");
    c->res->n_cleaned++;
    if (!changed) {
        free(clean);
        return MV_OK;
    }
    for (size_t i = 0; i < clean_len; i++)
        if ((unsigned char)clean[i] >= 0x80)
            ascii = 0;
    if (!ascii && strstr(mv_dataset_charset(ds), "192") == NULL) {
        /* The cleaned text cannot be re-encoded in the file's character set here: drop
         * the non-ASCII characters rather than risk writing them in the wrong one. */
        size_t k = 0;
        for (size_t i = 0; i < clean_len; i++) {
            unsigned char ch = (unsigned char)clean[i];
            if (ch < 0x80)
                clean[k++] = (char)ch;
            else if ((ch & 0xC0) == 0xC0)
                clean[k++] = '?';
        }
        clean_len = k;
    }
    st = mv_dataset_set_bytes(ds, mv_element_tag(el), vr, clean, clean_len, c->err);
    mv_wipe(clean, clean_len);
    free(clean);
    return st;
}

static MvStatus process_dataset(Ctx *c, MvDataset *ds, int depth);

/* Without its Overlay Data (Type 1) an overlay plane is invalid: the whole group goes. */
static MvStatus remove_overlay(Ctx *c, MvDataset *ds, uint16_t group)
{
    for (size_t i = 0; i < mv_dataset_count(ds);) {
        uint32_t t = mv_element_tag(mv_dataset_at(ds, i));
        if (MV_TAG_GROUP(t) == group) {
            mv_dataset_remove(ds, t);
            c->res->n_removed++;
        } else {
            i++;
        }
    }
    return MV_OK;
}

static MvStatus recurse(Ctx *c, MvDataset *ds, uint32_t tag, int depth, int mode)
{
    MvElement *el = mv_dataset_find(ds, tag);
    int saved = c->mode;
    MvStatus st = MV_OK;

    if (el == NULL || !mv_element_is_sequence(el))
        return MV_OK;
    if (mode != MODE_NONE)
        c->mode = mode;
    for (size_t i = 0; i < mv_element_item_count(el) && st == MV_OK; i++)
        st = process_dataset(c, mv_element_item(el, i), depth + 1);
    c->mode = saved;
    return st;
}

/* Applies a simple action (not combined, not a recipe) to one element. */
static MvStatus apply(Ctx *c, MvDataset *ds, MvElement *el, MvAction act, int column, int depth)
{
    uint32_t tag = mv_element_tag(el);
    MvVr vr = mv_element_vr(el);
    int is_seq = mv_element_is_sequence(el) || vr == MV_VR_SQ;

    act = resolve_combined(c, tag, act, is_seq);
    /* PS3.3 C.7.1.1: for an animal (species given), the responsible person and
     * organization are Type 2C: emptied, not removed. */
    if (act == MV_ACT_X && (tag == MV_TAG(0x0010, 0x2297) || tag == MV_TAG(0x0010, 0x2299)) &&
        (mv_dataset_find(ds, MV_TAG(0x0010, 0x2201)) != NULL || mv_dataset_find(ds, MV_TAG(0x0010, 0x2202)) != NULL))
        act = MV_ACT_Z;
    if (act == MV_ACT_X && MV_TAG_GROUP(tag) >= 0x6000 && MV_TAG_GROUP(tag) <= 0x60FF && MV_TAG_ELEMENT(tag) == 0x3000)
        return remove_overlay(c, ds, MV_TAG_GROUP(tag));
    switch (act) {
    case MV_ACT_X:
        return act_remove(c, ds, tag);
    case MV_ACT_Z:
        return act_empty(c, ds, el);
    case MV_ACT_K:
        if (is_seq)
            return recurse(c, ds, tag, depth, MODE_NONE);
        if (tag == MV_TAG(0x0010, 0x1010) && (c->cfg->options & MV_OPT_RETAIN_PATIENT_CHARACTERISTICS)) {
            /* HIPAA Safe Harbor: ages over 89 are aggregated. */
            char *age = NULL;
            if (mv_element_string(ds, el, &age, NULL) == MV_OK && strlen(age) == 4 && age[3] == 'Y' &&
                atoi(age) > 89) {
                free(age);
                return set_text(c, ds, tag, MV_VR_AS, "090Y");
            }
            free(age);
        }
        return MV_OK;
    case MV_ACT_U:
        if (vr != MV_VR_UI)
            return is_seq ? recurse(c, ds, tag, depth, MODE_NONE) : act_dummy(c, ds, el);
        return act_uid(c, ds, el);
    case MV_ACT_D:
        if (is_seq) {
            /* A dummy sequence: kept, with every element inside handled by its own row and
             * free text in structured content or annotations replaced. */
            int mode = tag == MV_TAG(0x0070, 0x0001) ? MODE_GRAPHICS_DUMMY : MODE_SR_DUMMY;
            return recurse(c, ds, tag, depth, c->mode != MODE_NONE ? c->mode : mode);
        }
        return act_dummy(c, ds, el);
    case MV_ACT_C:
        switch (column) {
        case MV_COL_MODIFIED_DATES:
            return act_shift(c, ds, el);
        case MV_COL_STRUCTURED:
            return is_seq ? recurse(c, ds, tag, depth, MODE_SR_CLEAN) : act_clean_text(c, ds, el);
        case MV_COL_GRAPHICS:
            if (MV_TAG_GROUP(tag) >= 0x6000 && MV_TAG_GROUP(tag) <= 0x60FF && MV_TAG_ELEMENT(tag) == 0x3000)
                return remove_overlay(c, ds, MV_TAG_GROUP(tag)); /* bitmaps need pixel cleaning: see docs */
            if (MV_TAG_GROUP(tag) >= 0x5000 && MV_TAG_GROUP(tag) <= 0x50FF && !mv_vr_is_text(vr))
                return MV_OK; /* curve values are numbers */
            return is_seq ? recurse(c, ds, tag, depth, MODE_GRAPHICS_CLEAN) : act_clean_text(c, ds, el);
        case MV_COL_DEVICE:
            if (vr == MV_VR_AE) {
                size_t n = 0;
                return map_values(c, ds, el, map_ae, &n);
            }
            return act_clean_text(c, ds, el);
        default:
            return is_seq ? recurse(c, ds, tag, depth, MODE_NONE) : act_clean_text(c, ds, el);
        }
    default:
        return MV_OK;
    }
}

/* 1 if the private element is listed as safe. A listed sequence that could not be read as
 * one (an implicit VR file keeps it as opaque UN bytes) is not safe: its items may hold
 * anything, and only items that were read can be cleaned. */
static int is_safe_private(const Ctx *c, const char *creator, size_t clen, uint16_t group, uint8_t element,
                           int is_seq)
{
    size_t lo = 0, hi = mv__safe_private_n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const MvSafePrivate *s = &mv__safe_private[mid];
        size_t slen = strlen(s->creator);
        int cmp = memcmp(s->creator, creator, slen < clen ? slen : clen);
        if (cmp == 0)
            cmp = slen < clen ? -1 : slen > clen ? 1 : 0;
        if (cmp == 0)
            cmp = s->group != group ? (s->group < group ? -1 : 1) : s->element != element ? (s->element < element ? -1 : 1) : 0;
        if (cmp == 0)
            return s->vr != MV_VR_SQ || is_seq;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < c->cfg->n_safe; i++) {
        const UserSafe *u = &c->cfg->safe[i];
        if (u->group == group && u->element == element && strlen(u->creator) == clen &&
            memcmp(u->creator, creator, clen) == 0)
            return 1;
    }
    return 0;
}

/* A recipe's text: non-ASCII text can only go into a dataset whose character set is UTF-8;
 * elsewhere the file is quarantined rather than written in the wrong encoding. */
static MvStatus set_recipe_text(Ctx *c, MvDataset *ds, uint32_t tag, MvVr vr, const char *text,
                                const MvRecipeRule *rule)
{
    MvStatus st = mv_dataset_set_string(ds, tag, vr, text, NULL);

    if (st == MV_ERR_CHARSET) {
        c->res->outcome = MV_DEID_QUARANTINE;
        snprintf(c->res->reason, sizeof c->res->reason,
                 "%s:%d: non-ASCII text for (%04X,%04X) cannot be written in this file's character set",
                 rule->file, rule->line, MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
        return MV_OK;
    }
    if (st != MV_OK)
        return mv_error_set(c->err, st, tag, MV_NO_OFFSET, "(%04X,%04X): cannot set the recipe's value",
                            MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
    c->res->n_replaced++;
    return MV_OK;
}

/* A recipe's action on one element. */
static MvStatus apply_rule(Ctx *c, MvDataset *ds, MvElement *el, const MvRecipeRule *rule, int depth)
{
    uint32_t tag = mv_element_tag(el);
    MvVr vr = mv_element_vr(el);
    MvRecipeAction action = rule->action;
    const char *mapped = NULL;
    char *value = NULL;
    MvStatus st;

    if (action == MV_RA_MAP) {
        if (mv_element_string(ds, el, &value, NULL) != MV_OK)
            value = NULL;
        mapped = value ? mv__recipe_map_lookup(rule, value) : NULL;
        if (value != NULL) {
            mv_wipe(value, strlen(value));
            free(value);
        }
        if (mapped != NULL)
            return set_recipe_text(c, ds, tag, vr, mapped, rule);
        if (rule->map_missing == MV_RA_KEEP) {
            c->res->outcome = MV_DEID_QUARANTINE;
            snprintf(c->res->reason, sizeof c->res->reason,
                     "%s:%d: the value of (%04X,%04X) is not in the map table", rule->file, rule->line,
                     MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
            return MV_OK;
        }
        action = rule->map_missing;
    }
    switch (action) {
    case MV_RA_KEEP:
        return mv_element_is_sequence(el) ? recurse(c, ds, tag, depth, MODE_NONE) : MV_OK;
    case MV_RA_REMOVE:
        return act_remove(c, ds, tag);
    case MV_RA_EMPTY:
        return act_empty(c, ds, el);
    case MV_RA_REPLACE:
        if (mv_element_is_sequence(el))
            return mv_error_set(c->err, MV_ERR_ARG, tag, MV_NO_OFFSET, "%s:%d: cannot replace sequence (%04X,%04X) with text",
                                rule->file, rule->line, MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
        return set_recipe_text(c, ds, tag, vr, rule->literal, rule);
    case MV_RA_PSEUDONYMIZE:
        if (vr == MV_VR_PN)
            return act_person(c, ds, el);
        if ((st = mv_element_string(ds, el, &value, NULL)) != MV_OK || value[0] == '\0') {
            free(value);
            return act_empty(c, ds, el);
        } else {
            char p[19];
            pseudonym(c->cfg, LABEL_ID, value, p);
            mv_wipe(value, strlen(value));
            free(value);
            return set_text(c, ds, tag, vr, p);
        }
    case MV_RA_SHIFT:
        return act_shift(c, ds, el);
    case MV_RA_CLEAN:
        return act_clean_text(c, ds, el);
    case MV_RA_UID:
        return vr == MV_VR_UI ? act_uid(c, ds, el) : act_dummy(c, ds, el);
    case MV_RA_MAP:
        break;
    }
    return MV_OK;
}

/* Structured content and annotations: free text that no row covers is replaced (Basic
 * Profile D) or cleaned (the options' C). */
static int free_text_in_mode(const Ctx *c, uint32_t tag, MvVr vr)
{
    if (c->mode == MODE_NONE)
        return 0;
    if (tag == MV_TAG(0x0040, 0xA160) || tag == MV_TAG(0x0070, 0x0006))
        return 1;
    return vr == MV_VR_UT || vr == MV_VR_LT || vr == MV_VR_ST;
}

static MvStatus process_element(Ctx *c, MvDataset *ds, MvElement *el, int depth)
{
    uint32_t tag = mv_element_tag(el);
    MvVr vr = mv_element_vr(el);
    const MvProfileRow *row;
    const MvRecipeRule *rule = NULL;
    int column = -1;

    if (c->cfg->recipe != NULL && (rule = mv__recipe_rule(c->cfg->recipe, ds, tag)) != NULL)
        return apply_rule(c, ds, el, rule, depth);

    if (MV_TAG_IS_PRIVATE(tag)) {
        size_t clen = 0;
        const char *creator;
        if (MV_TAG_IS_PRIVATE_CREATOR(tag))
            return MV_OK; /* removed afterwards if its block is empty */
        creator = mv_dataset_private_creator(ds, tag, &clen);
        if ((c->cfg->options & MV_OPT_RETAIN_SAFE_PRIVATE) && creator != NULL && MV_TAG_ELEMENT(tag) >= 0x1000 &&
            is_safe_private(c, creator, clen, MV_TAG_GROUP(tag), (uint8_t)(MV_TAG_ELEMENT(tag) & 0xFF),
                            mv_element_is_sequence(el)))
            return mv_element_is_sequence(el) ? recurse(c, ds, tag, depth, MODE_NONE) : MV_OK;
        c->res->n_private_removed++;
        return act_remove(c, ds, tag);
    }
    if (MV_TAG_ELEMENT(tag) == 0x0000)
        return act_remove(c, ds, tag); /* group lengths go stale: PS3.5 7.2 makes them optional */
    if (MV_TAG_GROUP(tag) == 0x0012 && (MV_TAG_ELEMENT(tag) == 0x0062 || MV_TAG_ELEMENT(tag) == 0x0063 ||
                                         MV_TAG_ELEMENT(tag) == 0x0064))
        return MV_OK; /* the markers are rewritten at the end */

    /* A DICOMDIR's Referenced File IDs are paths, often named after the patient: every
     * component becomes a keyed pseudonym, the same one for the same name. */
    if (tag == MV_TAG(0x0004, 0x1500) && vr == MV_VR_CS) {
        size_t n = 0;
        return map_values(c, ds, el, map_file_id, &n);
    }

    /* The patient's identity becomes the keyed pseudonym (Z/D and Z allow a dummy). In
     * items (directory records, other IDs) each value gets its own pseudonym, which is the
     * top level's for the same patient. */
    if (tag == MV_TAG(0x0010, 0x0020) || tag == MV_TAG(0x0010, 0x0010)) {
        char *value = NULL, p[19];
        if (depth == 0)
            return set_text(c, ds, tag, tag == MV_TAG(0x0010, 0x0020) ? MV_VR_LO : MV_VR_PN, c->patient_pseudo);
        if (mv_dataset_get_string(ds, MV_TAG(0x0010, 0x0020), &value, NULL) != MV_OK || value[0] == '\0') {
            free(value);
            value = NULL;
            if (mv_element_string(ds, el, &value, NULL) != MV_OK || value[0] == '\0') {
                free(value);
                return act_empty(c, ds, el);
            }
        }
        pseudonym(c->cfg, LABEL_ID, value, p);
        mv_wipe(value, strlen(value));
        free(value);
        return set_text(c, ds, tag, tag == MV_TAG(0x0010, 0x0020) ? MV_VR_LO : MV_VR_PN, p);
    }

    row = find_row(tag);
    if (row == NULL) {
        if (free_text_in_mode(c, tag, vr)) {
            if (c->mode == MODE_SR_CLEAN || c->mode == MODE_GRAPHICS_CLEAN)
                return act_clean_text(c, ds, el);
            return act_dummy(c, ds, el);
        }
        /* PS3.15 E.1.1: an attribute the table does not list is kept; sequences are
         * still cleaned inside. */
        return mv_element_is_sequence(el) ? recurse(c, ds, tag, depth, MODE_NONE) : MV_OK;
    }
    {
        MvAction act = profile_action(c, row, &column);
        return apply(c, ds, el, act, column, depth);
    }
}

/* Removes Private Creator elements whose block no longer holds any element. */
static void drop_empty_private_blocks(MvDataset *ds)
{
    for (size_t i = 0; i < mv_dataset_count(ds);) {
        uint32_t tag = mv_element_tag(mv_dataset_at(ds, i));
        int used = 0;
        if (MV_TAG_IS_PRIVATE_CREATOR(tag)) {
            uint32_t first = MV_TAG(MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag) << 8);
            for (size_t k = 0; k < mv_dataset_count(ds) && !used; k++) {
                uint32_t t = mv_element_tag(mv_dataset_at(ds, k));
                used = t >= first && t <= first + 0xFF;
            }
            if (!used) {
                mv_dataset_remove(ds, tag);
                continue;
            }
        }
        i++;
    }
}

static MvStatus process_dataset(Ctx *c, MvDataset *ds, int depth)
{
    size_t i = 0;

    while (i < mv_dataset_count(ds)) {
        MvElement *el = mv_dataset_at(ds, i);
        uint32_t tag = mv_element_tag(el);
        MvStatus st = process_element(c, ds, el, depth);

        if (st != MV_OK)
            return st;
        if (c->res->outcome == MV_DEID_QUARANTINE)
            return MV_OK;
        /* The element may have been replaced, removed, or removed with others (an
         * overlay group): continue at the first element after its tag. */
        if (i > mv_dataset_count(ds))
            i = mv_dataset_count(ds);
        while (i > 0 && mv_element_tag(mv_dataset_at(ds, i - 1)) > tag)
            i--;
        while (i < mv_dataset_count(ds) && mv_element_tag(mv_dataset_at(ds, i)) <= tag)
            i++;
    }
    drop_empty_private_blocks(ds);
    return MV_OK;
}

static MvStatus add_markers(Ctx *c, MvDataset *ds)
{
    unsigned opts = c->cfg->options;
    MvElement *seq = NULL;
    MvDataset *item;
    const char *temporal;
    MvStatus st;

    if ((st = mv_dataset_set_string(ds, MV_TAG(0x0012, 0x0062), MV_VR_CS, "YES", c->err)) != MV_OK)
        return st;
    {
        /* LO values are at most 64 characters: one value per part of the method. */
        char method[600];
        size_t n = 0;
        const char *p = c->cfg->method;
        while (*p != '\0' && n + 66 < sizeof method) {
            size_t part = strcspn(p, "\\");
            size_t keep = part > 64 ? 64 : part;
            memcpy(method + n, p, keep);
            n += keep;
            p += part;
            if (*p == '\\') {
                method[n++] = '\\';
                p++;
            }
        }
        method[n] = '\0';
        if ((st = mv_dataset_set_string(ds, MV_TAG(0x0012, 0x0063), MV_VR_LO, method, c->err)) != MV_OK)
            return st;
    }
    if ((st = mv_dataset_set_sequence(ds, MV_TAG(0x0012, 0x0064), &seq, c->err)) != MV_OK)
        return st;
    for (size_t i = 0; i <= N_OPTIONS; i++) {
        const char *code = i == 0 ? "113100" : option_info[i - 1].code;
        const char *meaning = i == 0 ? "Basic Application Confidentiality Profile" : option_info[i - 1].meaning;
        if (i > 0 && !(opts & option_info[i - 1].bit))
            continue;
        seq = mv_dataset_find(ds, MV_TAG(0x0012, 0x0064));
        if ((st = mv_element_insert_item(seq, MV_APPEND, &item, c->err)) != MV_OK ||
            (st = mv_dataset_set_string(item, MV_TAG(0x0008, 0x0100), MV_VR_SH, code, c->err)) != MV_OK ||
            (st = mv_dataset_set_string(item, MV_TAG(0x0008, 0x0102), MV_VR_SH, "DCM", c->err)) != MV_OK ||
            (st = mv_dataset_set_string(item, MV_TAG(0x0008, 0x0104), MV_VR_LO, meaning, c->err)) != MV_OK)
            return st;
    }
    /* (0028,0303) says what happened to the dates, whichever rule (option or recipe) did it. */
    if (c->dates_touched || (opts & MV_OPT_RETAIN_LONG_MODIFIED_DATES))
        temporal = "MODIFIED";
    else if (opts & MV_OPT_RETAIN_LONG_FULL_DATES)
        temporal = "UNMODIFIED";
    else
        temporal = "REMOVED";
    return mv_dataset_set_string(ds, MV_TAG(0x0028, 0x0303), MV_VR_CS, temporal, c->err);
}

static void copy_uid(MvDataset *ds, uint32_t tag, char out[65])
{
    char *v = NULL;

    out[0] = '\0';
    if (mv_dataset_get_string(ds, tag, &v, NULL) == MV_OK)
        snprintf(out, 65, "%s", v);
    free(v);
}

MvStatus mv_deid_file(const MvDeidConfig *cfg, MvFile *file, MvDeidResult *res, MvError *err)
{
    MvDataset *ds = mv_file_dataset(file), *meta = mv_file_meta(file);
    Ctx c;
    char *identity = NULL, *sop_class = NULL, *burned = NULL;
    MvStatus st = MV_OK;

    memset(res, 0, sizeof *res);
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.file = file;
    c.res = res;
    c.err = err;
    mv_error_clear(err);

    if (cfg->recipe != NULL && mv__recipe_quarantine(cfg->recipe, ds, res->reason, sizeof res->reason)) {
        res->outcome = MV_DEID_QUARANTINE;
        return MV_OK;
    }
    if (mv_dataset_get_string(ds, MV_TAG(0x0028, 0x0301), &burned, NULL) == MV_OK && strcmp(burned, "NO") != 0 &&
        burned[0] != '\0' && !(cfg->options & MV_OPT_CLEAN_PIXEL_DATA)) {
        res->outcome = MV_DEID_QUARANTINE;
        snprintf(res->reason, sizeof res->reason,
                 "Burned In Annotation (0028,0301) is not NO and clean-pixel-data is not set");
        free(burned);
        return MV_OK;
    }
    free(burned);
    if (mv_dataset_find(ds, MV_TAG(0x0400, 0x0500)) != NULL) {
        res->outcome = MV_DEID_QUARANTINE;
        snprintf(res->reason, sizeof res->reason, "already holds an Encrypted Attributes Sequence (0400,0500)");
        return MV_OK;
    }
    if (cfg->options & (MV_OPT_CLEAN_PIXEL_DATA | MV_OPT_CLEAN_RECOGNIZABLE_VISUAL_FEATURES)) {
        /* Burned-in text is found with the identifiers of the header: before it changes. */
        MvPixelReport pixel;
        st = mv_pixel_clean_for_deid(cfg->pixel, cfg->options, file, &pixel, err);
        if (st == MV_OK && pixel.quarantine) {
            res->outcome = MV_DEID_QUARANTINE;
            snprintf(res->reason, sizeof res->reason, "%s", pixel.reason);
        }
        mv_pixel_report_clear(&pixel);
        if (st != MV_OK || res->outcome == MV_DEID_QUARANTINE)
            return st;
    }

    /* The patient's identity: Patient ID, else the name, else the study. */
    if ((mv_dataset_get_string(ds, MV_TAG(0x0010, 0x0020), &identity, NULL) != MV_OK || identity[0] == '\0')) {
        free(identity);
        identity = NULL;
        if (mv_dataset_get_string(ds, MV_TAG(0x0010, 0x0010), &identity, NULL) != MV_OK || identity[0] == '\0') {
            free(identity);
            identity = NULL;
            if (mv_dataset_get_string(ds, MV_TAG(0x0020, 0x000D), &identity, NULL) != MV_OK) {
                free(identity);
                identity = strdup("");
            }
        }
    }
    if (identity == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    pseudonym(cfg, LABEL_ID, identity, c.patient_pseudo);
    {
        uint8_t mac[32];
        uint64_t v = 0;
        keyed(cfg, LABEL_DATE, identity, strlen(identity), mac);
        for (int i = 0; i < 8; i++)
            v = v << 8 | mac[i];
        c.shift_days = -(long)(cfg->date_min + (long)(v % (uint64_t)(cfg->date_max - cfg->date_min + 1)));
    }
    mv_wipe(identity, strlen(identity));
    free(identity);
    snprintf(res->patient_pseudonym, sizeof res->patient_pseudonym, "%s", c.patient_pseudo);

    if (mv_dataset_get_string(ds, MV_TAG(0x0008, 0x0016), &sop_class, NULL) == MV_OK)
        c.sr_or_enhanced = strncmp(sop_class, "1.2.840.10008.5.1.4.1.1.88.", 27) == 0 ||
                           strcmp(sop_class, "1.2.840.10008.5.1.4.1.1.2.1") == 0 ||
                           strcmp(sop_class, "1.2.840.10008.5.1.4.1.1.4.1") == 0 ||
                           strcmp(sop_class, "1.2.840.10008.5.1.4.1.1.130") == 0 ||
                           strcmp(sop_class, "1.2.840.10008.5.1.4.1.1.6.2") == 0;
    {
        char *media = NULL;
        if (mv_dataset_get_string(meta, MV_TAG(0x0002, 0x0002), &media, NULL) == MV_OK)
            c.dicomdir = strcmp(media, "1.2.840.10008.1.3.10") == 0;
        free(media);
    }
    free(sop_class);

    if (cfg->options & (MV_OPT_CLEAN_DESCRIPTORS | MV_OPT_CLEAN_STRUCTURED_CONTENT | MV_OPT_CLEAN_GRAPHICS |
                        MV_OPT_RETAIN_PATIENT_CHARACTERISTICS | MV_OPT_RETAIN_DEVICE_IDENTITY) ||
        cfg->recipe != NULL) {
        if ((st = mv__ids_collect(ds, &c.ids, err)) != MV_OK)
            return st;
    }
    st = process_dataset(&c, ds, 0);
    if (st == MV_OK && res->outcome == MV_DEID_DONE)
        st = add_markers(&c, ds);
    if (st == MV_OK && res->outcome == MV_DEID_DONE) {
        /* File Meta Information: the instance UID follows the dataset's; AE titles and
         * private meta information go (PS3.10 7.1). */
        char sop[65];
        copy_uid(ds, MV_TAG(0x0008, 0x0018), sop);
        if (sop[0] != '\0')
            st = mv_dataset_set_string(meta, MV_TAG(0x0002, 0x0003), MV_VR_UI, sop, err);
        else if (mv_dataset_find(meta, MV_TAG(0x0002, 0x0003)) != NULL)
            st = act_uid(&c, meta, mv_dataset_find(meta, MV_TAG(0x0002, 0x0003)));
        mv_dataset_remove(meta, MV_TAG(0x0002, 0x0016));
        mv_dataset_remove(meta, MV_TAG(0x0002, 0x0017));
        mv_dataset_remove(meta, MV_TAG(0x0002, 0x0018));
        mv_dataset_remove(meta, MV_TAG(0x0002, 0x0100));
        mv_dataset_remove(meta, MV_TAG(0x0002, 0x0102));
        mv_dataset_remove(meta, MV_TAG(0x0002, 0x0012));
        mv_dataset_remove(meta, MV_TAG(0x0002, 0x0013));
        mv_file_zero_preamble(file);
        copy_uid(ds, MV_TAG(0x0020, 0x000D), res->study_uid);
        copy_uid(ds, MV_TAG(0x0020, 0x000E), res->series_uid);
        snprintf(res->sop_uid, sizeof res->sop_uid, "%s", sop);
    }
    mv__ids_free(c.ids);
    return st;
}
