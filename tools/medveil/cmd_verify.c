/* `medveil verify`: an independent check of a finished de-identification run. Each original
 * is paired with its output and the pair is examined with the public codec API and the
 * curated attribute lists of this file only, never the engine's tables (src/deid), so that a
 * bug there cannot hide itself: identifying values are searched for in the output's raw bytes,
 * UIDs, pseudonyms and date shifts are checked for consistency across the run, and the
 * de-identification markers and required attributes are checked. Values are never printed. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "cli.h"
#include "medveil/dicom.h"

/* ---- What is checked: the kinds of checks, counted separately ------------------------ */

enum CheckKind { CK_PAIRING, CK_PARSE, CK_LEAK, CK_UID, CK_PATIENT, CK_DATE, CK_MARKER, CK_REQUIRED, CK_N };
static const char *const check_names[CK_N] = {"pairing", "parse", "leak",   "uid",
                                              "patient", "date",  "marker", "required"};

/* Options an output may declare in (0012,0064) or (0012,0063); each allows something that
 * would otherwise fail (PS3.15 Table E.1-1 option columns, CID 7050 codes). */
enum {
    OPT_UIDS = 1u << 0,             /* 113110 Retain UIDs */
    OPT_DEVICE = 1u << 1,           /* 113109 Retain Device Identity */
    OPT_INSTITUTION = 1u << 2,      /* 113112 Retain Institution Identity */
    OPT_SAFE_PRIVATE = 1u << 3      /* 113111 Retain Safe Private */
};

static const struct {
    unsigned bit;
    const char *code;
    const char *phrase; /* lower case, hyphens as spaces */
} option_names[] = {
    {OPT_UIDS, "113110", "retain uids"},
    {OPT_DEVICE, "113109", "retain device identity"},
    {OPT_INSTITUTION, "113112", "retain institution identity"},
    {OPT_SAFE_PRIVATE, "113111", "retain safe private"},
};

/* The identifying attributes this command knows, searched at any depth of the original. */
enum IdentKind { IK_NAME, IK_ID, IK_DATE, IK_ADDRESS, IK_PHONE, IK_PRIVATE, IK_UID };

typedef struct Curated {
    uint32_t tag;
    uint8_t kind;
    uint8_t option; /* a declared option that allows the value to stay in this same attribute */
} Curated;

static const Curated curated[] = {
    {MV_TAG(0x0008, 0x0050), IK_ID, 0},                 /* AccessionNumber */
    {MV_TAG(0x0008, 0x0080), IK_ID, OPT_INSTITUTION},   /* InstitutionName */
    {MV_TAG(0x0008, 0x0081), IK_ADDRESS, OPT_INSTITUTION}, /* InstitutionAddress */
    {MV_TAG(0x0008, 0x0090), IK_NAME, 0},               /* ReferringPhysicianName */
    {MV_TAG(0x0008, 0x0092), IK_ADDRESS, 0},            /* ReferringPhysicianAddress */
    {MV_TAG(0x0008, 0x0094), IK_PHONE, 0},              /* ReferringPhysicianTelephoneNumbers */
    {MV_TAG(0x0008, 0x1010), IK_ID, OPT_DEVICE},        /* StationName */
    {MV_TAG(0x0008, 0x1040), IK_ID, OPT_INSTITUTION},   /* InstitutionalDepartmentName */
    {MV_TAG(0x0008, 0x1048), IK_NAME, 0},               /* PhysiciansOfRecord */
    {MV_TAG(0x0008, 0x1050), IK_NAME, 0},               /* PerformingPhysicianName */
    {MV_TAG(0x0008, 0x1060), IK_NAME, 0},               /* NameOfPhysiciansReadingStudy */
    {MV_TAG(0x0008, 0x1070), IK_NAME, 0},               /* OperatorsName */
    {MV_TAG(0x0010, 0x0010), IK_NAME, 0},               /* PatientName */
    {MV_TAG(0x0010, 0x0020), IK_ID, 0},                 /* PatientID (also in OtherPatientIDsSequence) */
    {MV_TAG(0x0010, 0x0030), IK_DATE, 0},               /* PatientBirthDate */
    {MV_TAG(0x0010, 0x1000), IK_ID, 0},                 /* OtherPatientIDs */
    {MV_TAG(0x0010, 0x1001), IK_NAME, 0},               /* OtherPatientNames */
    {MV_TAG(0x0010, 0x1005), IK_NAME, 0},               /* PatientBirthName */
    {MV_TAG(0x0010, 0x1040), IK_ADDRESS, 0},            /* PatientAddress */
    {MV_TAG(0x0010, 0x1060), IK_NAME, 0},               /* PatientMotherBirthName */
    {MV_TAG(0x0010, 0x1090), IK_ID, 0},                 /* MedicalRecordLocator */
    {MV_TAG(0x0010, 0x2154), IK_PHONE, 0},              /* PatientTelephoneNumbers */
    {MV_TAG(0x0010, 0x2297), IK_NAME, 0},               /* ResponsiblePerson */
    {MV_TAG(0x0020, 0x0010), IK_ID, 0},                 /* StudyID */
    {MV_TAG(0x0032, 0x1032), IK_NAME, 0},               /* RequestingPhysician */
    {MV_TAG(0x0038, 0x0010), IK_ID, 0},                 /* AdmissionID */
    {MV_TAG(0x0038, 0x0400), IK_ID, 0},                 /* PatientInstitutionResidence */
    {MV_TAG(0x0040, 0x1001), IK_ID, 0},                 /* RequestedProcedureID */
    {MV_TAG(0x0040, 0x2016), IK_ID, 0},                 /* PlacerOrderNumberImagingServiceRequest */
    {MV_TAG(0x0040, 0x2017), IK_ID, 0},                 /* FillerOrderNumberImagingServiceRequest */
    {MV_TAG(0x0040, 0xA123), IK_NAME, 0},               /* PersonName (structured reports) */
};

/* Instance UIDs whose original values must not survive anywhere in the output. */
static const uint32_t uid_tags[] = {
    MV_TAG(0x0008, 0x0018), /* SOPInstanceUID */
    MV_TAG(0x0020, 0x000D), /* StudyInstanceUID */
    MV_TAG(0x0020, 0x000E), /* SeriesInstanceUID */
    MV_TAG(0x0020, 0x0052), /* FrameOfReferenceUID */
    MV_TAG(0x0008, 0x1155), /* ReferencedSOPInstanceUID */
    MV_TAG(0x0004, 0x1511), /* ReferencedSOPInstanceUIDInFile (DICOMDIR) */
    MV_TAG(0x0008, 0x0014), /* InstanceCreatorUID */
    MV_TAG(0x0008, 0x3010), /* IrradiationEventUID */
    MV_TAG(0x0020, 0x9161), /* ConcatenationUID */
    MV_TAG(0x0040, 0xA124), /* UID (structured reports) */
    MV_TAG(0x0002, 0x0003), /* MediaStorageSOPInstanceUID */
};

/* Values never searched: too generic to identify anyone (compared in upper case). */
static const char *const generic_values[] = {
    "ANON", "ANONYMISED", "ANONYMIZED", "ANONYMOUS", "DEID", "DE-IDENTIFIED", "DEIDENTIFIED", "DUMMY",
    "EMPTY", "FEMALE", "MALE", "N/A", "NO NAME", "NONAME", "NONE", "NOT AVAILABLE", "NULL", "OTHER",
    "PATIENT", "REDACTED", "REMOVED", "UNKNOWN", "YES", "TEST", "TESTE", "DEMO", "PHANTOM",
    /* department names that name a speciality, not a place */
    "RADIOLOGY", "MRI", "IMAGING", "CARDIOLOGY", "NUCLEAR MEDICINE", "ULTRASOUND",
    "00010101", "19000101", /* dummy dates (PS3.15 action D) */
};
/* Name components that are titles, not names. */
static const char *const honorifics[] = {"DR.", "III", "JR.", "MISS", "MRS", "MRS.", "PHD", "PROF", "PROF.", "SR."};
/* Address words too common to identify a place. */
static const char *const street_words[] = {
    "APARTMENT", "AVENUE", "BLDG", "BLVD", "BOULEVARD", "BUILDING", "CITY", "COUNTY", "COURT", "DRIVE",
    "EAST", "FLOOR", "HIGHWAY", "LANE", "NORTH", "PARKWAY", "PLACE", "ROAD", "ROUTE", "SOUTH", "SQUARE",
    "STATE", "STREET", "SUITE", "UNIT", "WEST",
};

#define MEDIA_STORAGE_DIRECTORY "1.2.840.10008.1.3.10"
#define MAX_PATTERN 64             /* longer values are searched by their first 64 bytes */
#define MAX_PATTERN_BYTES (32u << 10) /* all patterns of one file together */
#define SHORT_PATTERN 6            /* shorter patterns are not searched inside bulk binary data */
#define BULK_MIN (64u << 10)       /* binary values at least this long count as bulk data */

/* ---- Small helpers --------------------------------------------------------------- */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        cli_error("verify", "out of memory");
        exit(MV_EXIT_PARTIAL);
    }
    return p;
}

static void *xrealloc(void *p, size_t n, size_t size)
{
    void *q = NULL;
    size_t bytes = n * size;
    if (size == 0 || n <= SIZE_MAX / size)
        q = realloc(p, bytes > 0 ? bytes : 1);
    if (q == NULL) {
        cli_error("verify", "out of memory");
        exit(MV_EXIT_PARTIAL);
    }
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = xcalloc(n + 1, 1);
    memcpy(p, s, n);
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xcalloc(n + 1, 1);
    memcpy(p, s, n);
    return p;
}

static int is_space_or_nul(unsigned char c)
{
    return c == ' ' || c == '\0' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims s in place (leading and trailing blanks and NULs); returns s. */
static char *trim(char *s)
{
    size_t n = strlen(s), start = 0;
    while (n > 0 && is_space_or_nul((unsigned char)s[n - 1]))
        n--;
    while (start < n && is_space_or_nul((unsigned char)s[start]))
        start++;
    memmove(s, s + start, n - start);
    s[n - start] = '\0';
    return s;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int equal_nocase(const char *a, const char *b)
{
    while (*a && *b && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b))
        a++, b++;
    return *a == '\0' && *b == '\0';
}

static int in_list(const char *upper, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(upper, list[i]) == 0)
            return 1;
    return 0;
}

/* A copy of s with invalid UTF-8 bytes and control characters replaced by '?', for
 * messages and JSON (file names and private creators are not always UTF-8). */
static char *printable_copy(const char *s)
{
    size_t n = strlen(s);
    char *out = xcalloc(n + 1, 1);
    size_t i = 0, o = 0;

    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        int ok = len > 0 && i + len <= n && (c >= 0x20 || len > 1) && c != 0x7F;
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (ok && len == 2 && c < 0xC2)
            ok = 0;
        if (!ok) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- Digests: map keys (SHA-256 prefix) and refs shown instead of values ----------- */

typedef struct Digest {
    uint8_t b[16];
} Digest;

static Digest digest_of(const char *domain, const void *data, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    Digest d;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    memset(&d, 0, sizeof d);
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, domain, strlen(domain) + 1) != 1 || EVP_DigestUpdate(ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len < sizeof d.b) {
        EVP_MD_CTX_free(ctx);
        cli_error("verify", "SHA-256 failed");
        exit(MV_EXIT_PARTIAL);
    }
    EVP_MD_CTX_free(ctx);
    memcpy(d.b, md, sizeof d.b);
    return d;
}

static Digest digest_str(const char *domain, const char *s)
{
    return digest_of(domain, s, strlen(s));
}

/* Open-addressing map from a digest to a digest, a file number and a number. */
typedef struct MapEntry {
    Digest key;
    Digest val;
    uint32_t file;
    int32_t num;
    uint8_t used;
} MapEntry;

typedef struct DigestMap {
    MapEntry *e;
    size_t cap, n;
} DigestMap;

static size_t map_slot(const DigestMap *m, const Digest *key)
{
    uint64_t h;
    memcpy(&h, key->b, sizeof h);
    return (size_t)(h & (m->cap - 1));
}

static MapEntry *map_find(const DigestMap *m, const Digest *key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = map_slot(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (!m->e[i].used)
            return NULL;
        if (memcmp(m->e[i].key.b, key->b, sizeof key->b) == 0)
            return &m->e[i];
    }
}

/* The entry of key, created (used == 1, other fields zero) when absent; *created says which. */
static MapEntry *map_put(DigestMap *m, const Digest *key, int *created)
{
    MapEntry *e;

    if (m->n + 1 > m->cap / 2) {
        DigestMap bigger = {NULL, m->cap ? m->cap * 2 : 64, 0};
        bigger.e = xcalloc(bigger.cap, sizeof *bigger.e);
        for (size_t i = 0; i < m->cap; i++) {
            if (m->e[i].used) {
                size_t j = map_slot(&bigger, &m->e[i].key);
                while (bigger.e[j].used)
                    j = (j + 1) & (bigger.cap - 1);
                bigger.e[j] = m->e[i];
                bigger.n++;
            }
        }
        free(m->e);
        *m = bigger;
    }
    e = map_find(m, key);
    *created = e == NULL;
    if (e != NULL)
        return e;
    for (size_t i = map_slot(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (!m->e[i].used) {
            e = &m->e[i];
            break;
        }
    }
    memset(e, 0, sizeof *e);
    e->key = *key;
    e->used = 1;
    m->n++;
    return e;
}

static void map_clear(DigestMap *m)
{
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

/* ---- The run ------------------------------------------------------------------------ */

enum { MAP_STUDY, MAP_SERIES, MAP_FOR, MAP_SOP, MAP_PATIENT, N_UID_MAPS };

typedef struct ReportEntry {
    char *input_real;  /* realpath of "input", or its text when it does not resolve */
    char *output;      /* the output as resolved, NULL if none */
    int withheld;      /* status says quarantined/skipped/failed */
    int used;
    long shares_with;  /* another entry with the same output (one overwrote the other), or -1 */
    int visited;       /* the original was read: sop holds its SOP Instance UID's digest */
    int has_sop;
    Digest sop;
} ReportEntry;

typedef struct Verify {
    int json, quiet, progress;
    const char *orig_arg, *deid_arg, *report_path;
    char *orig_real, *deid_real; /* resolved; deid_real is the folder of outputs walked */
    char *deid_top;              /* DEID_DIR resolved: output paths below it are released names */
    char *root;             /* the folder outputs are paired under (mirror pairing) */
    size_t orig_arg_len;
    int deid_inside_orig, orig_inside_deid;

    ReportEntry *entries;   /* --report */
    size_t n_entries;
    DigestMap report_inputs;   /* digest of input realpath -> entry index (num) */
    DigestMap report_outputs;  /* digest of output realpath -> entry index, for released entries */

    unsigned long run[CK_N], failed[CK_N];
    unsigned long n_originals, n_paired, n_not_released, n_withheld, n_unpaired, n_not_dicom, n_other_outputs;
    unsigned long n_unreadable, n_report_unmatched;
    unsigned long n_files_failed, n_done;

    /* The file being reported on. */
    const char *cur_out, *cur_orig;
    char *disp_out, *disp_orig;  /* masked copies shown for a checked pair */
    int cur_header;
    unsigned long cur_checks, cur_failures;

    DigestMap fwd[N_UID_MAPS];   /* original value -> output value */
    DigestMap rev[N_UID_MAPS];   /* output value -> original value */
    DigestMap shifts;            /* patient -> date shift in days */
    char **names;                /* output path of each paired file, by number */
    size_t n_names, cap_names;

    unsigned char ref_key[32];   /* per-run key of the refs shown instead of values */
    FILE *failures_tmp;          /* --json: failure objects, one per line, until the end */
    int n_json_files;
} Verify;

static void ref_of(const Verify *v, const void *data, size_t len, char out[9])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    static const char hex[] = "0123456789abcdef";

    if (HMAC(EVP_sha256(), v->ref_key, (int)sizeof v->ref_key, data, len, md, &md_len) == NULL || md_len < 4) {
        memcpy(out, "????????", 9);
        return;
    }
    for (int i = 0; i < 4; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[8] = '\0';
}

static uint32_t register_name(Verify *v, const char *out_path)
{
    if (v->n_names == v->cap_names) {
        v->cap_names = v->cap_names ? v->cap_names * 2 : 256;
        v->names = xrealloc(v->names, v->cap_names, sizeof *v->names);
    }
    v->names[v->n_names] = xstrdup(out_path);
    return (uint32_t)v->n_names++;
}

/* ---- Reporting results -------------------------------------------------------------- */

static void begin_file(Verify *v, const char *out_path, const char *orig_path)
{
    v->cur_out = out_path;
    v->cur_orig = orig_path;
    v->cur_header = 0;
    v->cur_checks = v->cur_failures = 0;
}

static void pass(Verify *v, int kind)
{
    v->run[kind]++;
    v->cur_checks++;
}

static void fail(Verify *v, int kind, const char *attribute, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(Verify *v, int kind, const char *attribute, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    const char *file = v->cur_out != NULL ? v->cur_out : v->cur_orig;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    v->run[kind]++;
    v->failed[kind]++;
    v->cur_checks++;
    if (v->cur_failures++ == 0)
        v->n_files_failed++;
    if (v->json) {
        char *pf = printable_copy(file), *po = printable_copy(v->cur_orig ? v->cur_orig : "");
        char *pa = printable_copy(attribute), *pd = printable_copy(detail);
        json_t *obj = json_pack("{s:s,s:s?,s:s,s:s,s:s}", "file", pf, "original", v->cur_orig ? po : NULL, "check",
                                check_names[kind],
                                "attribute", pa, "detail", pd);
        char *line = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
        if (line != NULL && v->failures_tmp != NULL)
            fprintf(v->failures_tmp, "%s\n", line);
        free(line);
        json_decref(obj);
        free(pf), free(po), free(pa), free(pd);
        return;
    }
    if (v->quiet)
        return;
    if (!v->cur_header) {
        if (v->cur_out != NULL && v->cur_orig != NULL && strcmp(v->cur_out, v->cur_orig) != 0)
            printf("%s (original %s)\n", v->cur_out, v->cur_orig);
        else
            printf("%s\n", file);
        v->cur_header = 1;
    }
    printf("  %-9s %s%s%s\n", check_names[kind], attribute, *attribute ? ": " : "", detail);
}

/* Records the end of one original or output: a line of the JSON "files" array. */
static void end_file(Verify *v, const char *status)
{
    if (v->json) {
        char *po = printable_copy(v->cur_orig ? v->cur_orig : ""), *pd = printable_copy(v->cur_out ? v->cur_out : "");
        json_t *obj = json_pack("{s:s?,s:s?,s:s,s:I,s:I}", "original", v->cur_orig ? po : NULL, "output",
                                v->cur_out ? pd : NULL,
                                "status", status, "checks", (json_int_t)v->cur_checks, "failures",
                                (json_int_t)v->cur_failures);
        char *line = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
        if (line != NULL)
            printf("%s\n    %s", v->n_json_files++ ? "," : "", line);
        free(line);
        json_decref(obj);
        free(po), free(pd);
    }
    v->n_done++;
    if (v->progress && v->n_done % 50 == 0)
        fprintf(stderr, "\rverified %lu files", v->n_done);
    v->cur_out = v->cur_orig = NULL;
    free(v->disp_out);
    free(v->disp_orig);
    v->disp_out = v->disp_orig = NULL;
}

/* "(0010,0010) PatientName", "(0009,1001) private [CREATOR]", "(0009,0010) PrivateCreator". */
static void tag_label(char *buf, size_t n, uint32_t tag, const char *creator, size_t creator_len)
{
    const char *kw;

    if (MV_TAG_IS_PRIVATE(tag) && !MV_TAG_IS_PRIVATE_CREATOR(tag) && MV_TAG_ELEMENT(tag) != 0) {
        if (creator != NULL && creator_len > 0) {
            char *raw = xstrndup(creator, creator_len), *p = printable_copy(raw);
            snprintf(buf, n, "(%04X,%04X) private [%s]", MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag), p);
            free(raw), free(p);
        } else {
            snprintf(buf, n, "(%04X,%04X) private", MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
        }
        return;
    }
    kw = mv_dict_keyword(tag);
    snprintf(buf, n, "(%04X,%04X)%s%s", MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag), *kw ? " " : "", kw);
}

/* ---- Reading values ------------------------------------------------------------------ */

/* The value of tag in ds as trimmed UTF-8 (malloc'd), or NULL when absent or not text.
 * *present (may be NULL) tells whether the element exists at all. */
static char *get_text(const MvDataset *ds, uint32_t tag, int *present)
{
    MvElement *el = mv_dataset_find(ds, tag);
    char *s = NULL;

    if (present != NULL)
        *present = el != NULL;
    if (el == NULL || mv_element_is_sequence(el))
        return NULL;
    if (mv_element_string(ds, el, &s, NULL) != MV_OK)
        return NULL;
    return trim(s);
}

/* The text of el: decoded for text VRs; the raw bytes for UN and other binary VRs when they
 * are all printable ASCII (implicit VR private elements are UN). NULL otherwise. */
static char *element_text(const MvDataset *ds, const MvElement *el)
{
    char *s = NULL;
    const uint8_t *v;
    size_t len;
    MvVr vr = mv_element_vr(el);

    if (mv_element_is_sequence(el) || mv_element_is_encapsulated(el))
        return NULL;
    if (mv_vr_is_text(vr))
        return mv_element_string(ds, el, &s, NULL) == MV_OK ? s : NULL;
    if (vr != MV_VR_UN && vr != MV_VR_OB)
        return NULL;
    v = mv_element_value(el, &len);
    while (len > 0 && is_space_or_nul(v[len - 1]))
        len--;
    if (v == NULL || len == 0 || len > 65536)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if (v[i] < 0x20 || v[i] > 0x7E)
            return NULL;
    return xstrndup((const char *)v, len);
}

/* A dummy date written for a Type 1 date (PS3.15 action D): not a date kept from the original. */
static int is_dummy_date(const char *s)
{
    return strncmp(s, "19000101", 8) == 0 || strncmp(s, "00010101", 8) == 0 || strncmp(s, "00000000", 8) == 0;
}

/* Days since 1970-01-01 of a DA (or the date part of a DT); 0 on success. */
static int parse_date(const char *s, long *days)
{
    char digits[9];
    int n = 0;
    long y, m, d, era, yoe, doy, doe;

    for (const char *p = s; *p && n < 8; p++) {
        if (*p >= '0' && *p <= '9')
            digits[n++] = *p;
        else if (*p != '.' && *p != '-')
            return -1;
    }
    if (n != 8)
        return -1;
    digits[8] = '\0';
    y = (digits[0] - '0') * 1000 + (digits[1] - '0') * 100 + (digits[2] - '0') * 10 + (digits[3] - '0');
    m = (digits[4] - '0') * 10 + (digits[5] - '0');
    d = (digits[6] - '0') * 10 + (digits[7] - '0');
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    /* Days from civil (proleptic Gregorian calendar). */
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *days = era * 146097 + doe - 719468;
    return 0;
}

/* Options declared by the output in (0012,0064) codes or (0012,0063) text. */
static unsigned declared_options(const MvDataset *ds)
{
    unsigned opts = 0;
    MvElement *seq = mv_dataset_find(ds, MV_TAG(0x0012, 0x0064));
    char *method = get_text(ds, MV_TAG(0x0012, 0x0063), NULL);

    if (seq != NULL && mv_element_is_sequence(seq)) {
        for (size_t i = 0; i < mv_element_item_count(seq); i++) {
            char *code = get_text(mv_element_item(seq, i), MV_TAG(0x0008, 0x0100), NULL);
            for (size_t k = 0; code != NULL && k < sizeof option_names / sizeof option_names[0]; k++)
                if (strcmp(code, option_names[k].code) == 0)
                    opts |= option_names[k].bit;
            free(code);
        }
    }
    if (method != NULL) {
        for (char *p = method; *p; p++)
            *p = *p == '-' || *p == '_' ? ' ' : (char)ascii_lower((unsigned char)*p);
        for (size_t k = 0; k < sizeof option_names / sizeof option_names[0]; k++)
            if (strstr(method, option_names[k].phrase) != NULL)
                opts |= option_names[k].bit;
        free(method);
    }
    return opts;
}

/* ---- The output's elements by offset: where a byte was found ------------------------- */

typedef struct OutEntry {
    uint64_t offset;
    uint64_t end;          /* offset of the next element in the file (bulk range end) */
    uint32_t tag;
    int32_t parent;        /* index of the enclosing sequence element, -1 at the top */
    uint32_t item;
    const MvDataset *holder;
    const MvElement *el;
    int bulk;
} OutEntry;

typedef struct OutIndex {
    OutEntry *e;
    size_t n, cap;
    size_t *by_offset;     /* indices sorted by offset */
    uint64_t size;
    int had_preamble;
} OutIndex;

static int is_bulk(const MvElement *el)
{
    uint32_t tag = mv_element_tag(el);
    MvVr vr = mv_element_vr(el);
    size_t len = 0;

    if (tag == MV_TAG_PIXEL_DATA || tag == MV_TAG(0x7FE0, 0x0008) || tag == MV_TAG(0x7FE0, 0x0009) ||
        tag == MV_TAG(0x5400, 0x1010) || tag == MV_TAG(0x0042, 0x0011) ||
        ((tag & 0xFF01FFFFu) == MV_TAG(0x6000, 0x3000)))
        return 1;
    if (mv_element_is_encapsulated(el))
        return 1;
    if (vr == MV_VR_OB || vr == MV_VR_OW || vr == MV_VR_OF || vr == MV_VR_OD || vr == MV_VR_OL ||
        vr == MV_VR_OV || vr == MV_VR_UN) {
        (void)mv_element_value(el, &len);
        return len >= BULK_MIN;
    }
    return 0;
}

static void index_dataset(OutIndex *ix, const MvDataset *ds, int32_t parent, uint32_t item, int depth)
{
    for (size_t i = 0; i < mv_dataset_count(ds); i++) {
        MvElement *el = mv_dataset_at(ds, i);
        OutEntry *e;
        int32_t me;

        if (mv_element_offset(el) == MV_NO_OFFSET)
            continue;
        if (ix->n == ix->cap) {
            ix->cap = ix->cap ? ix->cap * 2 : 256;
            ix->e = xrealloc(ix->e, ix->cap, sizeof *ix->e);
        }
        me = (int32_t)ix->n;
        e = &ix->e[ix->n++];
        memset(e, 0, sizeof *e);
        e->offset = mv_element_offset(el);
        e->tag = mv_element_tag(el);
        e->parent = parent;
        e->item = item;
        e->holder = ds;
        e->el = el;
        e->bulk = is_bulk(el);
        if (mv_element_is_sequence(el) && depth < 64)
            for (size_t k = 0; k < mv_element_item_count(el); k++)
                index_dataset(ix, mv_element_item(el, k), me, (uint32_t)k, depth + 1);
    }
}

static const OutIndex *sort_ctx;

static int by_offset(const void *a, const void *b)
{
    uint64_t x = sort_ctx->e[*(const size_t *)a].offset, y = sort_ctx->e[*(const size_t *)b].offset;
    return x < y ? -1 : x > y;
}

/* Indexes the meta and, unless the dataset was deflated (its offsets are then in the
 * inflated stream, not the file), the dataset. */
static void index_build(OutIndex *ix, const MvFile *file, uint64_t size, int with_dataset)
{
    memset(ix, 0, sizeof *ix);
    ix->size = size;
    ix->had_preamble = mv_file_had_preamble(file);
    index_dataset(ix, mv_file_meta(file), -1, 0, 0);
    if (with_dataset)
        index_dataset(ix, mv_file_dataset(file), -1, 0, 0);
    ix->by_offset = xcalloc(ix->n, sizeof *ix->by_offset);
    for (size_t i = 0; i < ix->n; i++)
        ix->by_offset[i] = i;
    sort_ctx = ix;
    qsort(ix->by_offset, ix->n, sizeof *ix->by_offset, by_offset);
    for (size_t i = 0; i < ix->n; i++) {
        OutEntry *e = &ix->e[ix->by_offset[i]];
        e->end = i + 1 < ix->n ? ix->e[ix->by_offset[i + 1]].offset : size;
    }
}

static void index_free(OutIndex *ix)
{
    free(ix->e);
    free(ix->by_offset);
    memset(ix, 0, sizeof *ix);
}

/* The element whose bytes hold offset (the last one that starts at or before it), or -1. */
static long index_locate(const OutIndex *ix, uint64_t offset)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->e[ix->by_offset[mid]].offset <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? -1 : (long)ix->by_offset[lo - 1];
}

/* "(0040,0275) RequestAttributesSequence[0] > (0032,1032) RequestingPhysician". */
static void describe_entry(const OutIndex *ix, long idx, char *buf, size_t n)
{
    long chain[8];
    int depth = 0;
    size_t used = 0;

    buf[0] = '\0';
    for (long i = idx; i >= 0 && depth < 8; i = ix->e[i].parent)
        chain[depth++] = i;
    for (int k = depth - 1; k >= 0; k--) {
        const OutEntry *e = &ix->e[chain[k]];
        char label[160];
        size_t clen = 0;
        const char *creator = mv_dataset_private_creator(e->holder, e->tag, &clen);
        int w;

        tag_label(label, sizeof label, e->tag, creator, clen);
        if (k > 0)
            w = snprintf(buf + used, n - used, "%s[%u] > ", label, ix->e[chain[k - 1]].item);
        else
            w = snprintf(buf + used, n - used, "%s", label);
        if (w < 0 || (size_t)w >= n - used)
            break;
        used += (size_t)w;
    }
}

/* ---- What identifies the patient in one original: attributes and search patterns ----- */

enum {
    P_UID = 1u,      /* UID boundaries: not inside a longer number, may be followed by a '.' */
    P_SHORT = 2u,    /* not searched inside bulk binary data */
    P_TRUNC = 4u     /* a prefix of a longer value: no boundary at the end */
};

typedef struct Ident {
    uint32_t tag;
    uint8_t kind;
    uint8_t check;          /* CK_LEAK or CK_UID */
    unsigned option;        /* a declared option allowing the value in the same attribute */
    char creator[72];       /* private attributes: their creator ("" if none) */
    size_t creator_len;
    char label[160];
    size_t n_values;        /* distinct values searched */
    size_t n_found;
    char found[720];        /* description of the first values found */
    int kept_same;          /* a value too generic to search is kept in the same attribute */
} Ident;

typedef struct Pattern {
    uint8_t *bytes;         /* lower-cased (ASCII) */
    size_t len;
    size_t chars;           /* length of the whole value, in characters */
    size_t ident;
    unsigned flags;
    char what[48];          /* "component 2 of 3", "the value", "digits only" ... */
    char ref[9];
    int hit;
} Pattern;

typedef struct Collect {
    Verify *v;
    unsigned options;
    Ident *idents;
    size_t n_idents, cap_idents;
    Pattern *pats;
    size_t n_pats, cap_pats, pat_bytes;
    size_t n_dropped;
    DigestMap public_values; /* lower-cased public text values of the original */
    DigestMap technical;     /* lower-cased words of coded and technical values (see collect_technical) */
    char **public_texts;     /* the public text values themselves, for private values found inside one */
    size_t n_public_texts;
    char *products[2];       /* the original's Manufacturer and ManufacturerModelName */
} Collect;

/* Whether value is the original's Manufacturer or model name, or a whole word of one: a
 * station or institution so named names a product, not a site. */
static int is_product_name(const Collect *c, const char *value)
{
    size_t n = strlen(value);
    for (int k = 0; k < 2; k++) {
        const char *hay = c->products[k];
        for (const char *p = hay; p != NULL && *p; p++) {
            size_t i = 0;
            while (i < n && p[i] && ascii_lower((unsigned char)p[i]) == ascii_lower((unsigned char)value[i]))
                i++;
            if (i == n && (p == hay || !isalnum((unsigned char)p[-1])) && !isalnum((unsigned char)p[n]))
                return 1;
        }
    }
    return 0;
}

static size_t ident_for(Collect *c, uint32_t tag, uint8_t kind, uint8_t check, unsigned option, const char *creator,
                        size_t creator_len)
{
    Ident *id;

    if (creator_len >= sizeof id->creator)
        creator_len = sizeof id->creator - 1;
    for (size_t i = 0; i < c->n_idents; i++) {
        id = &c->idents[i];
        if (id->tag == tag && id->creator_len == creator_len && memcmp(id->creator, creator, creator_len) == 0)
            return i;
    }
    if (c->n_idents == c->cap_idents) {
        c->cap_idents = c->cap_idents ? c->cap_idents * 2 : 32;
        c->idents = xrealloc(c->idents, c->cap_idents, sizeof *c->idents);
    }
    id = &c->idents[c->n_idents];
    memset(id, 0, sizeof *id);
    id->tag = tag;
    id->kind = kind;
    id->check = check;
    id->option = option;
    memcpy(id->creator, creator, creator_len);
    id->creator_len = creator_len;
    tag_label(id->label, sizeof id->label, tag, creator_len ? id->creator : NULL, creator_len);
    return c->n_idents++;
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static void add_pattern(Collect *c, size_t ident, const char *value, size_t len, unsigned flags, const char *what)
{
    Pattern *p;
    uint8_t low[MAX_PATTERN];
    size_t n = len > MAX_PATTERN ? MAX_PATTERN : len;

    if (len > MAX_PATTERN)
        flags |= P_TRUNC;
    if (n < SHORT_PATTERN)
        flags |= P_SHORT;
    for (size_t i = 0; i < n; i++)
        low[i] = (uint8_t)ascii_lower((unsigned char)value[i]);
    for (size_t i = 0; i < c->n_pats; i++)
        if (c->pats[i].ident == ident && c->pats[i].len == n && memcmp(c->pats[i].bytes, low, n) == 0)
            return;
    if (c->pat_bytes + n > MAX_PATTERN_BYTES) {
        c->n_dropped++;
        return;
    }
    if (c->n_pats == c->cap_pats) {
        c->cap_pats = c->cap_pats ? c->cap_pats * 2 : 64;
        c->pats = xrealloc(c->pats, c->cap_pats, sizeof *c->pats);
    }
    p = &c->pats[c->n_pats++];
    memset(p, 0, sizeof *p);
    p->bytes = xcalloc(n, 1);
    memcpy(p->bytes, low, n);
    p->len = n;
    p->chars = utf8_chars(value, len);
    p->ident = ident;
    p->flags = flags;
    snprintf(p->what, sizeof p->what, "%s", what);
    ref_of(c->v, low, n, p->ref);
    c->pat_bytes += n;
    c->idents[ident].n_values++;
}

static int all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return len > 0;
}

/* Why a value is not searched: NULL when it is searched. */
static const char *not_searched(const char *s, size_t len)
{
    char upper[32];
    size_t same = 1;

    if (utf8_chars(s, len) < 3)
        return "shorter than 3 characters";
    for (size_t i = 1; i < len; i++)
        same += s[i] == s[0];
    if (same == len)
        return "one repeated character";
    if (all_digits(s, len) && len < 6)
        return "a number of fewer than 6 digits";
    if (len < sizeof upper) {
        for (size_t i = 0; i < len; i++)
            upper[i] = (char)toupper((unsigned char)s[i]);
        upper[len] = '\0';
        if (in_list(upper, generic_values, sizeof generic_values / sizeof generic_values[0]))
            return "a generic value";
    }
    return NULL;
}

/* Adds value (one value of a multi-valued attribute) of a curated attribute. */
/* Whether the n bytes at p, as a whole word, occur in a coded or technical value of the
 * original that the profile keeps (ImageType PERFUSION, a coil named KNEE, a machine named
 * like its station): such words are no trace of the identifying attribute. */
static int is_technical(const Collect *c, const char *p, size_t n)
{
    char low[MAX_PATTERN + 1];
    Digest d;

    if (n == 0 || n > MAX_PATTERN)
        return 0;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)ascii_lower((unsigned char)p[i]);
    low[n] = '\0';
    d = digest_str("technical", low);
    return map_find(&c->technical, &d) != NULL;
}

static void add_curated_value(Collect *c, size_t ident, const char *value, const char *what_prefix)
{
    const Ident *id = &c->idents[ident];
    size_t len = strlen(value);
    char what[48];

    /* "DOE^JOHN^^^" is searched as "DOE^JOHN": writers drop empty trailing components. */
    while (id->kind == IK_NAME && len > 0 && strchr("^= ", value[len - 1]) != NULL)
        len--;
    if (not_searched(value, len) == NULL && !is_technical(c, value, len))
        add_pattern(c, ident, value, len, 0, what_prefix);

    if (id->kind == IK_NAME) {
        /* PN components and words: split on ^ = and space. */
        const char *p = value;
        size_t n_parts = 0, k = 0;
        for (const char *q = value; *q; q++)
            n_parts += (q == value || strchr("^= ", q[-1]) != NULL) && strchr("^= ", *q) == NULL;
        while (*p) {
            size_t n = strcspn(p, "^= ");
            if (n > 0) {
                char upper[16];
                int title = 0;
                k++;
                if (n < sizeof upper) {
                    for (size_t i = 0; i < n; i++)
                        upper[i] = (char)toupper((unsigned char)p[i]);
                    upper[n] = '\0';
                    title = in_list(upper, honorifics, sizeof honorifics / sizeof honorifics[0]);
                }
                if (!title && n_parts > 1 && not_searched(p, n) == NULL && !is_technical(c, p, n)) {
                    snprintf(what, sizeof what, "component %zu of %zu", k, n_parts);
                    add_pattern(c, ident, p, n, 0, what);
                }
            }
            p += n;
            if (*p)
                p++;
        }
    } else if (id->kind == IK_ADDRESS) {
        const char *p = value;
        size_t k = 0;
        while (*p) {
            size_t n = strcspn(p, " ,^/.;:#()-\t\r\n");
            if (n > 0) {
                char upper[16];
                int common = 0;
                k++;
                if (n < sizeof upper) {
                    for (size_t i = 0; i < n; i++)
                        upper[i] = (char)toupper((unsigned char)p[i]);
                    upper[n] = '\0';
                    common = in_list(upper, street_words, sizeof street_words / sizeof street_words[0]);
                }
                if (!common && n >= 4 && not_searched(p, n) == NULL) {
                    char *word = xstrndup(p, n);
                    if (!((id->option & OPT_INSTITUTION) && is_product_name(c, word))) {
                        snprintf(what, sizeof what, "word %zu", k);
                        add_pattern(c, ident, p, n, 0, what);
                    }
                    free(word);
                }
            }
            p += n;
            if (*p)
                p++;
        }
    } else if (id->kind == IK_PHONE) {
        char digits[64];
        size_t n = 0;
        for (const char *q = value; *q && n < sizeof digits - 1; q++)
            if (*q >= '0' && *q <= '9')
                digits[n++] = *q;
        digits[n] = '\0';
        if (n >= 7 && n != len)
            add_pattern(c, ident, digits, n, 0, "its digits only");
    } else if (id->kind == IK_DATE) {
        long days;
        if (parse_date(value, &days) == 0 && len == 8 && not_searched(value, len) == NULL) {
            /* The usual spellings of a date in free text: YYYY-MM-DD, DD/MM/YYYY, MM/DD/YYYY. */
            static const char seps[] = "-/.";
            char buf[16];
            for (size_t i = 0; i < 3; i++) {
                char sep = seps[i];
                snprintf(buf, sizeof buf, "%.4s%c%.2s%c%.2s", value, sep, value + 4, sep, value + 6);
                add_pattern(c, ident, buf, strlen(buf), 0, "written as YYYY-MM-DD or similar");
                snprintf(buf, sizeof buf, "%.2s%c%.2s%c%.4s", value + 6, sep, value + 4, sep, value);
                add_pattern(c, ident, buf, strlen(buf), 0, "written as DD/MM/YYYY or similar");
                snprintf(buf, sizeof buf, "%.2s%c%.2s%c%.4s", value + 4, sep, value + 6, sep, value);
                add_pattern(c, ident, buf, strlen(buf), 0, "written as MM/DD/YYYY or similar");
            }
        }
    }
}

static const Curated *find_curated(uint32_t tag)
{
    for (size_t i = 0; i < sizeof curated / sizeof curated[0]; i++)
        if (curated[i].tag == tag)
            return &curated[i];
    return NULL;
}

static int is_uid_tag(uint32_t tag)
{
    for (size_t i = 0; i < sizeof uid_tags / sizeof uid_tags[0]; i++)
        if (uid_tags[i] == tag)
            return 1;
    return 0;
}

/* Calls fn for each backslash-separated value of text (trimmed, non-empty). */
static void each_value(char *text, int split, void (*fn)(Collect *, size_t, char *, size_t, size_t), Collect *c,
                       size_t ident)
{
    size_t n_values = 1, k = 0;
    char *p = text;

    if (split)
        for (const char *q = text; *q; q++)
            n_values += *q == '\\';
    for (;;) {
        char *bs = split ? strchr(p, '\\') : NULL;
        if (bs != NULL)
            *bs = '\0';
        trim(p);
        k++;
        if (*p)
            fn(c, ident, p, k, n_values);
        if (bs == NULL)
            break;
        p = bs + 1;
    }
}

static void curated_value_fn(Collect *c, size_t ident, char *value, size_t k, size_t n)
{
    char what[48];
    if ((c->idents[ident].option & (OPT_DEVICE | OPT_INSTITUTION)) && is_product_name(c, value))
        return;
    if (n > 1)
        snprintf(what, sizeof what, "value %zu of %zu", k, n);
    else
        snprintf(what, sizeof what, "the value");
    add_curated_value(c, ident, value, what);
}

static void uid_value_fn(Collect *c, size_t ident, char *value, size_t k, size_t n)
{
    size_t len = strlen(value);
    (void)k;
    (void)n;
    /* Well-known UIDs of the standard are not instance identifiers. */
    if (len < 8 || strncmp(value, "1.2.840.10008.", 14) == 0)
        return;
    /* A UID is searched once, under the first attribute that holds it. */
    for (size_t i = 0; i < c->n_pats; i++)
        if ((c->pats[i].flags & P_UID) && c->pats[i].len == (len > MAX_PATTERN ? MAX_PATTERN : len) &&
            memcmp(c->pats[i].bytes, value, c->pats[i].len) == 0)
            return;
    add_pattern(c, ident, value, len, P_UID, "the original UID");
}

static void public_value_fn(Collect *c, size_t ident, char *value, size_t k, size_t n)
{
    int created;
    Digest d;
    (void)ident, (void)k, (void)n;
    for (char *p = value; *p; p++)
        *p = (char)ascii_lower((unsigned char)*p);
    d = digest_str("public", value);
    (void)map_put(&c->public_values, &d, &created);
    if (created) {
        c->public_texts = xrealloc(c->public_texts, c->n_public_texts + 1, sizeof *c->public_texts);
        c->public_texts[c->n_public_texts++] = xstrdup(value);
    }
}

/* 1 if low (lower-cased) occurs as whole words inside a public text value of the original:
 * a private "3-Plane" inside the series description "3-PLANE LOC" names a technique. */
static int inside_public_text(const Collect *c, const char *low, size_t len)
{
    for (size_t i = 0; i < c->n_public_texts; i++) {
        const char *hay = c->public_texts[i];
        for (const char *p = strstr(hay, low); p != NULL; p = strstr(p + 1, low))
            if ((p == hay || !isalnum((unsigned char)p[-1])) && !isalnum((unsigned char)p[len]))
                return 1;
    }
    return 0;
}

static void private_value_fn(Collect *c, size_t ident, char *value, size_t k, size_t n)
{
    size_t len = strlen(value), letters = 0;
    char low[MAX_PATTERN + 1], what[48];
    Digest d;

    (void)k;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value[i];
        if (ch < 0x20 || ch == 0x7F)
            return;
        letters += isalpha(ch) || ch >= 0xC0;
    }
    if (len < 6 || letters < 3 || not_searched(value, len) != NULL)
        return;
    /* A private value that repeats a public value of the same original (Manufacturer, ImageType,
     * or an identifying attribute searched under its own name) is left to that attribute. */
    if (len <= MAX_PATTERN) {
        for (size_t i = 0; i <= len; i++)
            low[i] = (char)ascii_lower((unsigned char)value[i]);
        d = digest_str("public", low);
        if (map_find(&c->public_values, &d) != NULL || inside_public_text(c, low, len))
            return;
    }
    if (n > 1)
        snprintf(what, sizeof what, "value %zu of %zu", k, n);
    else
        snprintf(what, sizeof what, "the value");
    add_pattern(c, ident, value, len, 0, what);
}

/* A value with bytes outside ASCII is also searched as encoded in the original (Latin-1,
 * GB18030, ISO 2022 ...), since the search above is for its UTF-8 form: an output that
 * copies the bytes verbatim keeps the original encoding. */
static void add_encoded_form(Collect *c, size_t ident, const MvElement *el)
{
    size_t len = 0, n;
    const uint8_t *v = mv_element_value(el, &len);
    int non_ascii = 0;

    if (v == NULL)
        return;
    n = len;
    while (n > 0 && is_space_or_nul(v[n - 1]))
        n--;
    while (n > 0 && is_space_or_nul(v[0]))
        v++, n--;
    for (size_t i = 0; i < n; i++)
        non_ascii |= v[i] >= 0x80 || v[i] == 0x1B;
    if (non_ascii && n >= 4)
        add_pattern(c, ident, (const char *)v, n, 0, "the value as encoded in the original");
}

/* First pass: curated attributes, UIDs and the public text values. */
static void collect_public(Collect *c, const MvDataset *ds, int depth)
{
    for (size_t i = 0; i < mv_dataset_count(ds); i++) {
        MvElement *el = mv_dataset_at(ds, i);
        uint32_t tag = mv_element_tag(el);
        MvVr vr = mv_element_vr(el);
        const Curated *cur;
        char *text;

        if (mv_element_is_sequence(el)) {
            if (depth < 64)
                for (size_t k = 0; k < mv_element_item_count(el); k++)
                    collect_public(c, mv_element_item(el, k), depth + 1);
            continue;
        }
        if (MV_TAG_IS_PRIVATE(tag) || MV_TAG_ELEMENT(tag) == 0)
            continue;
        cur = find_curated(tag);
        if (cur == NULL && !is_uid_tag(tag) && !mv_vr_is_text(vr))
            continue;
        text = element_text(ds, el);
        if (text == NULL)
            continue;
        if (cur != NULL) {
            char *copy = xstrdup(text);
            size_t ident = ident_for(c, tag, cur->kind, CK_LEAK, cur->option, "", 0);
            each_value(copy, 1, curated_value_fn, c, ident);
            add_encoded_form(c, ident, el);
            free(copy);
        } else if (is_uid_tag(tag) && !(c->options & OPT_UIDS)) {
            char *copy = xstrdup(text);
            size_t ident = ident_for(c, tag, IK_UID, CK_UID, 0, "", 0);
            each_value(copy, 1, uid_value_fn, c, ident);
            free(copy);
        }
        if (mv_vr_is_text(vr) && vr != MV_VR_UI)
            each_value(text, vr != MV_VR_LT && vr != MV_VR_ST && vr != MV_VR_UT, public_value_fn, c, 0);
        free(text);
    }
}

/* First pass: words of the values that identify no one and that the profile keeps, coded
 * strings (CS) and short technical strings (SH, LO) other than free text, outside the
 * curated identifying attributes. */
static void collect_technical(Collect *c, const MvDataset *ds, int depth)
{
    static const char *const free_text[] = {"Description", "Comment", "Protocol", "Text", "History", "Remark",
                                            "Note", "Label"};

    for (size_t i = 0; i < mv_dataset_count(ds); i++) {
        MvElement *el = mv_dataset_at(ds, i);
        uint32_t tag = mv_element_tag(el);
        MvVr vr = mv_element_vr(el);
        const char *kw = mv_dict_keyword(tag);
        char *text;
        int technical = vr == MV_VR_CS;

        if (mv_element_is_sequence(el)) {
            if (depth < 64)
                for (size_t k = 0; k < mv_element_item_count(el); k++)
                    collect_technical(c, mv_element_item(el, k), depth + 1);
            continue;
        }
        /* Referenced File ID is a path of the file-set, named by whoever wrote it. */
        if (MV_TAG_IS_PRIVATE(tag) || find_curated(tag) != NULL || tag == MV_TAG(0x0004, 0x1500))
            continue;
        if ((vr == MV_VR_SH || vr == MV_VR_LO) && *kw) {
            technical = 1;
            for (size_t k = 0; k < sizeof free_text / sizeof free_text[0]; k++)
                if (strstr(kw, free_text[k]) != NULL)
                    technical = 0;
        }
        if (!technical || (text = element_text(ds, el)) == NULL)
            continue;
        for (char *p = text; *p;) {
            size_t n = 0;
            while (p[n] && isalnum((unsigned char)p[n]))
                n++;
            if (n > 0 && n <= MAX_PATTERN) {
                int created;
                Digest d;
                char save = p[n];
                p[n] = '\0';
                for (char *q = p; *q; q++)
                    *q = (char)ascii_lower((unsigned char)*q);
                d = digest_str("technical", p);
                (void)map_put(&c->technical, &d, &created);
                p[n] = save;
            }
            p += n;
            while (*p && !isalnum((unsigned char)*p))
                p++;
        }
        free(text);
    }
}

/* Second pass: the text values of private data elements. */
static void collect_private(Collect *c, const MvDataset *ds, int depth)
{
    for (size_t i = 0; i < mv_dataset_count(ds); i++) {
        MvElement *el = mv_dataset_at(ds, i);
        uint32_t tag = mv_element_tag(el);
        MvVr vr = mv_element_vr(el);
        const char *creator;
        size_t creator_len = 0, before;
        char *text;

        if (mv_element_is_sequence(el)) {
            if (depth < 64)
                for (size_t k = 0; k < mv_element_item_count(el); k++)
                    collect_private(c, mv_element_item(el, k), depth + 1);
            continue;
        }
        if (!MV_TAG_IS_PRIVATE(tag) || MV_TAG_IS_PRIVATE_CREATOR(tag) || MV_TAG_ELEMENT(tag) < 0x10)
            continue;
        text = element_text(ds, el);
        if (text == NULL)
            continue;
        creator = mv_dataset_private_creator(ds, tag, &creator_len);
        before = c->n_idents;
        {
            size_t ident = ident_for(c, tag, IK_PRIVATE, CK_LEAK, OPT_SAFE_PRIVATE, creator ? creator : "",
                                     creator ? creator_len : 0);
            size_t n_before = c->idents[ident].n_values;
            each_value(text, vr != MV_VR_LT && vr != MV_VR_ST && vr != MV_VR_UT, private_value_fn, c, ident);
            if (c->idents[ident].n_values > n_before)
                add_encoded_form(c, ident, el);
            /* An attribute without any searchable value is no check at all. */
            if (c->idents[ident].n_values == n_before && ident == before && ident == c->n_idents - 1)
                c->n_idents--;
        }
        free(text);
    }
}

static void collect_free(Collect *c)
{
    for (size_t i = 0; i < c->n_pats; i++)
        free(c->pats[i].bytes);
    free(c->pats);
    free(c->idents);
    map_clear(&c->public_values);
    map_clear(&c->technical);
    for (size_t i = 0; i < c->n_public_texts; i++)
        free(c->public_texts[i]);
    free(c->public_texts);
    c->public_texts = NULL;
    c->n_public_texts = 0;
    free(c->products[0]);
    free(c->products[1]);
}

/* ---- Searching bytes for every pattern at once (Aho-Corasick, ASCII case folded) ------- */

typedef struct Matcher {
    uint8_t cls[256];
    size_t n_cls, n_states;
    int32_t *go, *fail, *out, *dict, *pat_next;
} Matcher;

static void matcher_build(Matcher *m, const Pattern *pats, size_t n_pats)
{
    size_t total = 1, head = 0, tail = 0;
    int32_t *queue;

    memset(m, 0, sizeof *m);
    m->n_cls = 1;
    for (size_t i = 0; i < n_pats; i++) {
        total += pats[i].len;
        for (size_t k = 0; k < pats[i].len; k++)
            if (m->cls[pats[i].bytes[k]] == 0)
                m->cls[pats[i].bytes[k]] = (uint8_t)m->n_cls++;
    }
    for (int ch = 'A'; ch <= 'Z'; ch++)
        m->cls[ch] = m->cls[ch + 32];
    m->go = xcalloc(total * m->n_cls, sizeof *m->go);
    m->fail = xcalloc(total, sizeof *m->fail);
    m->out = xcalloc(total, sizeof *m->out);
    m->dict = xcalloc(total, sizeof *m->dict);
    m->pat_next = xcalloc(n_pats, sizeof *m->pat_next);
    queue = xcalloc(total, sizeof *queue);
    for (size_t i = 0; i < total * m->n_cls; i++)
        m->go[i] = -1;
    for (size_t i = 0; i < total; i++)
        m->out[i] = m->dict[i] = -1;
    m->n_states = 1;
    for (size_t i = 0; i < n_pats; i++) {
        size_t s = 0;
        for (size_t k = 0; k < pats[i].len; k++) {
            size_t c = m->cls[pats[i].bytes[k]];
            if (m->go[s * m->n_cls + c] < 0)
                m->go[s * m->n_cls + c] = (int32_t)m->n_states++;
            s = (size_t)m->go[s * m->n_cls + c];
        }
        m->pat_next[i] = m->out[s];
        m->out[s] = (int32_t)i;
    }
    for (size_t c = 0; c < m->n_cls; c++) {
        int32_t t = m->go[c];
        if (t < 0) {
            m->go[c] = 0;
        } else {
            m->fail[t] = 0;
            queue[tail++] = t;
        }
    }
    while (head < tail) {
        size_t s = (size_t)queue[head++];
        for (size_t c = 0; c < m->n_cls; c++) {
            int32_t t = m->go[s * m->n_cls + c];
            int32_t f = m->go[(size_t)m->fail[s] * m->n_cls + c];
            if (t < 0) {
                m->go[s * m->n_cls + c] = f;
                continue;
            }
            m->fail[t] = f;
            m->dict[t] = m->out[f] >= 0 ? f : m->dict[f];
            queue[tail++] = t;
        }
    }
    free(queue);
}

static void matcher_free(Matcher *m)
{
    free(m->go), free(m->fail), free(m->out), free(m->dict), free(m->pat_next);
    memset(m, 0, sizeof *m);
}

static int char_class(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return 1;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return 2;
    return 0;
}

typedef struct Scan {
    Collect *c;
    const OutIndex *ix;
    const uint8_t *buf;
    size_t lo, hi;
    long element;           /* value scanning: the element, else -1 (locate by offset) */
    int raw;                /* offsets are file offsets */
    int path;               /* scanning the output's path under DEID_DIR */
    char *mask;             /* masking a path for display: matches become '*' here */
} Scan;

/* Whether pos is where an element's value starts (at_start) or where the next element
 * begins: the bytes beyond are a length or the next tag, not text, whatever they spell
 * (group 0x0053 reads as 'S'). Only for the raw scan; values scanned alone end at hi. */
static int element_edge(const Scan *s, size_t pos, int at_start)
{
    long idx;
    const OutEntry *e;

    if (!s->raw || (!at_start && pos == 0))
        return 0;
    idx = index_locate(s->ix, at_start ? pos : pos - 1);
    if (idx < 0)
        return 0;
    e = &s->ix->e[idx];
    if (at_start)
        return pos == e->offset + 8 || pos == e->offset + 12;
    return pos == e->end;
}

/* Whether a match of p at [start, end) of buf[lo, hi) stands as a value of its own: not
 * the middle of a longer word or number (a name inside a longer name, digits inside a
 * longer number, a UID inside a longer UID). */
static int at_boundary(const Scan *s, const Pattern *p, size_t start, size_t end)
{
    const uint8_t *buf = s->buf;
    size_t lo = s->lo, hi = s->hi;
    int first = char_class(p->bytes[0]), last = char_class(p->bytes[p->len - 1]);
    int open_start = start > lo, open_end = end < hi;

    if (open_start && element_edge(s, start, 1))
        open_start = 0;
    if (open_end && element_edge(s, end, 0))
        open_end = 0;
    if (p->flags & P_UID) {
        if (open_start && (char_class(buf[start - 1]) == 1 || buf[start - 1] == '.'))
            return 0;
        return !(open_end && char_class(buf[end]) == 1);
    }
    if (first != 0 && open_start && char_class(buf[start - 1]) == first)
        return 0;
    if (!(p->flags & P_TRUNC) && last != 0 && open_end && char_class(buf[end]) == last)
        return 0;
    return 1;
}

/* Attributes an option keeps (PS3.15 Table E.1-1, K in the Rtn. Inst. Id. and Rtn. Dev. Id.
 * columns): under a declared option, their content is released on purpose. */
static const uint32_t institution_attributes[] = {
    MV_TAG(0x0008, 0x0080), MV_TAG(0x0008, 0x0081), MV_TAG(0x0008, 0x0082), MV_TAG(0x0008, 0x1040),
    MV_TAG(0x0008, 0x1041), MV_TAG(0x0012, 0x0030), MV_TAG(0x0012, 0x0031), MV_TAG(0x0012, 0x0060),
    MV_TAG(0x0012, 0x0081), MV_TAG(0x0400, 0x0564),
};
static const uint32_t device_attributes[] = {
    MV_TAG(0x0008, 0x1010), MV_TAG(0x0016, 0x004E), MV_TAG(0x0016, 0x004F), MV_TAG(0x0016, 0x0050),
    MV_TAG(0x0016, 0x0051), MV_TAG(0x0018, 0x1000), MV_TAG(0x0018, 0x1002), MV_TAG(0x0018, 0x1004),
    MV_TAG(0x0018, 0x1005), MV_TAG(0x0018, 0x1007), MV_TAG(0x0018, 0x1008), MV_TAG(0x0018, 0x1009),
    MV_TAG(0x0018, 0x100A), MV_TAG(0x0018, 0x100B), MV_TAG(0x0018, 0x5011), MV_TAG(0x0018, 0x700A),
    MV_TAG(0x0018, 0x9367), MV_TAG(0x0018, 0x9371), MV_TAG(0x0018, 0x9373), MV_TAG(0x0020, 0x3401),
    MV_TAG(0x0032, 0x1020), MV_TAG(0x0040, 0x0010), MV_TAG(0x0040, 0x0011), MV_TAG(0x0040, 0x0242),
    MV_TAG(0x0040, 0x4025), MV_TAG(0x0040, 0x4027), MV_TAG(0x0040, 0x4028), MV_TAG(0x0040, 0x4030),
    MV_TAG(0x0050, 0x0020), MV_TAG(0x0400, 0x0563), MV_TAG(0x3008, 0x0105), MV_TAG(0x300A, 0x00B2),
    MV_TAG(0x300A, 0x0216), MV_TAG(0x3010, 0x002D), MV_TAG(0x3010, 0x0043),
};

static int in_tags(uint32_t tag, const uint32_t *tags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tags[i] == tag)
            return 1;
    return 0;
}

/* Whether element idx, or a sequence around it, is an attribute that options keep. */
static int retained_by(unsigned options, const OutIndex *ix, long idx)
{
    for (long i = idx; i >= 0; i = ix->e[i].parent) {
        uint32_t tag = ix->e[i].tag;
        if ((options & OPT_INSTITUTION) &&
            in_tags(tag, institution_attributes, sizeof institution_attributes / sizeof institution_attributes[0]))
            return 1;
        if ((options & OPT_DEVICE) &&
            in_tags(tag, device_attributes, sizeof device_attributes / sizeof device_attributes[0]))
            return 1;
    }
    return 0;
}

/* Whether the hit at element idx is allowed by an option the output declares: an
 * institution or device value inside an attribute its option keeps; a private value in
 * its own private element (same creator and element) under Retain Safe Private, or inside
 * an attribute a declared option keeps. A patient's value is never allowed. */
static int allowed_in_place(const Collect *c, const Ident *id, const OutIndex *ix, long idx)
{
    const OutEntry *e;
    const char *creator;
    size_t clen = 0;

    if (idx < 0 || id->option == 0)
        return 0;
    if (id->kind != IK_PRIVATE)
        return (c->options & id->option) && retained_by(c->options & id->option, ix, idx);
    if (retained_by(c->options, ix, idx))
        return 1;
    if (!(c->options & OPT_SAFE_PRIVATE))
        return 0;
    e = &ix->e[idx];
    if (MV_TAG_GROUP(e->tag) != MV_TAG_GROUP(id->tag) ||
        (MV_TAG_ELEMENT(e->tag) & 0xFF) != (MV_TAG_ELEMENT(id->tag) & 0xFF))
        return 0;
    creator = mv_dataset_private_creator(e->holder, e->tag, &clen);
    return creator != NULL && clen == id->creator_len && memcmp(creator, id->creator, clen) == 0;
}

static int in_bulk(const OutIndex *ix, uint64_t offset)
{
    long idx = index_locate(ix, offset);
    return idx >= 0 && ix->e[idx].bulk && offset < ix->e[idx].end;
}

/* Whether a longer UID of the original also starts at start: a leaked SOP Instance UID
 * often begins with the study and series UIDs, and is then reported once, as itself. */
static int longer_uid_at(const Scan *s, const Pattern *p, size_t start)
{
    for (size_t i = 0; i < s->c->n_pats; i++) {
        const Pattern *q = &s->c->pats[i];
        size_t end = start + q->len;
        if (q == p || !(q->flags & P_UID) || q->len <= p->len || end > s->hi)
            continue;
        if (memcmp(s->buf + start, q->bytes, q->len) == 0 && at_boundary(s, q, start, end))
            return 1;
    }
    return 0;
}

static void on_hit(Scan *s, size_t pi, size_t end)
{
    Pattern *p = &s->c->pats[pi];
    Ident *id = &s->c->idents[p->ident];
    size_t start = end - p->len;
    long idx = s->element;
    char where[320], clause[512];
    size_t used;

    if (s->mask != NULL) {
        if (at_boundary(s, p, start, end))
            memset(s->mask + start, '*', p->len);
        return;
    }
    if (p->hit || !at_boundary(s, p, start, end))
        return;
    if ((p->flags & P_UID) && end < s->hi && s->buf[end] == '.' && longer_uid_at(s, p, start))
        return;
    if (s->path) {
        idx = -1;
    } else if (s->raw) {
        if ((p->flags & P_SHORT) && in_bulk(s->ix, start))
            return;
        idx = index_locate(s->ix, start);
    } else if ((p->flags & P_SHORT) && idx >= 0 && s->ix->e[idx].bulk) {
        return;
    }
    if (!s->path && allowed_in_place(s->c, id, s->ix, idx))
        return;
    p->hit = 1;
    if (s->path)
        snprintf(where, sizeof where, "in the output's path under DEID_DIR");
    else if (s->raw && start < 128 + 4 && s->ix->had_preamble && (idx < 0 || start < s->ix->e[idx].offset))
        snprintf(where, sizeof where, "at offset %zu, in the preamble", start);
    else if (s->raw && s->ix->n == 0)
        snprintf(where, sizeof where, "at offset %zu", start);
    else if (s->raw && idx < 0)
        snprintf(where, sizeof where, "at offset %zu, before the first element", start);
    else if (s->raw && s->ix->e[idx].end <= start)
        snprintf(where, sizeof where, "at offset %zu, after the last element", start);
    else {
        char path[256];
        describe_entry(s->ix, idx, path, sizeof path);
        if (s->raw)
            snprintf(where, sizeof where, "at offset %zu, in %s", start, path);
        else
            snprintf(where, sizeof where, "in %s (inflated dataset)", path);
    }
    id->n_found++;
    used = strlen(id->found);
    if (id->n_found <= 3) {
        snprintf(clause, sizeof clause, "%s%s (%zu characters, ref %s) found %s", id->n_found > 1 ? "; " : "",
                 p->what, p->chars, p->ref, where);
        snprintf(id->found + used, sizeof id->found - used, "%s", clause);
    }
}

static void matcher_scan(const Matcher *m, Scan *s)
{
    int32_t state = 0;

    for (size_t i = s->lo; i < s->hi; i++) {
        state = m->go[(size_t)state * m->n_cls + m->cls[s->buf[i]]];
        if (m->out[state] < 0 && m->dict[state] < 0)
            continue;
        for (int32_t t = state; t >= 0; t = m->dict[t])
            for (int32_t p = m->out[t]; p >= 0; p = m->pat_next[p])
                on_hit(s, (size_t)p, i + 1);
    }
}

/* Scans every element value of a dataset (a deflated output: the file's bytes are compressed). */
static void scan_values(const Matcher *m, Scan *s, const OutIndex *values_ix)
{
    for (size_t i = 0; i < values_ix->n; i++) {
        const MvElement *el = values_ix->e[i].el;
        size_t len = 0;
        const uint8_t *val = mv_element_value(el, &len);
        s->element = (long)i;
        s->ix = values_ix;
        if (val != NULL && len > 0) {
            s->buf = val, s->lo = 0, s->hi = len;
            matcher_scan(m, s);
        }
        for (size_t f = 0; mv_element_is_encapsulated(el) && f < mv_element_fragment_count(el); f++) {
            val = mv_element_fragment(el, f, &len);
            if (val != NULL && len > 0) {
                s->buf = val, s->lo = 0, s->hi = len;
                matcher_scan(m, s);
            }
        }
    }
}

/* ---- The checks of one pair ------------------------------------------------------------ */

typedef struct Mapped {
    const uint8_t *data;
    size_t size;
    void *map;
    uint8_t *heap;
} Mapped;

static int map_file(const char *path, Mapped *mf)
{
    int fd;
    struct stat sb;

    memset(mf, 0, sizeof *mf);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return -1;
    }
    mf->size = (size_t)sb.st_size;
    if (mf->size > 0) {
        mf->map = mmap(NULL, mf->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (mf->map == MAP_FAILED) {
            size_t got = 0;
            mf->map = NULL;
            mf->heap = xcalloc(mf->size, 1);
            while (got < mf->size) {
                ssize_t r = read(fd, mf->heap + got, mf->size - got);
                if (r <= 0)
                    break;
                got += (size_t)r;
            }
            mf->size = got;
            mf->data = mf->heap;
        } else {
            mf->data = mf->map;
        }
    }
    close(fd);
    return 0;
}

static void unmap_file(Mapped *mf)
{
    if (mf->map != NULL)
        munmap(mf->map, mf->size);
    free(mf->heap);
    memset(mf, 0, sizeof *mf);
}

/* End of the File Meta Information in the file (explicit VR little endian). */
static uint64_t meta_end(const MvFile *file)
{
    const MvDataset *meta = mv_file_meta(file);
    uint64_t end = 0;
    for (size_t i = 0; i < mv_dataset_count(meta); i++) {
        const MvElement *el = mv_dataset_at(meta, i);
        uint64_t off = mv_element_offset(el);
        if (off == MV_NO_OFFSET || mv_element_length(el) == MV_UNDEFINED_LENGTH)
            continue;
        off += (mv_vr_has_long_length(mv_element_vr(el)) ? 12u : 8u) + mv_element_length(el);
        if (off > end)
            end = off;
    }
    return end;
}

/* The identifying values of one original, ready to be searched for. */
typedef struct Leaks {
    Collect c;
    Matcher m;
    int have_matcher;
} Leaks;

static void leaks_prepare(Leaks *lk, Verify *v, const MvFile *orig, unsigned options)
{
    Collect *c = &lk->c;

    memset(lk, 0, sizeof *lk);
    c->v = v;
    c->options = options;
    c->products[0] = get_text(mv_file_dataset(orig), MV_TAG(0x0008, 0x0070), NULL);
    c->products[1] = get_text(mv_file_dataset(orig), MV_TAG(0x0008, 0x1090), NULL);
    collect_technical(c, mv_file_dataset(orig), 0);
    collect_public(c, mv_file_dataset(orig), 0);
    collect_public(c, mv_file_meta(orig), 0);
    collect_private(c, mv_file_dataset(orig), 0);
    if (c->n_pats > 0) {
        matcher_build(&lk->m, c->pats, c->n_pats);
        lk->have_matcher = 1;
    }
}

static void leaks_free(Leaks *lk)
{
    if (lk->have_matcher)
        matcher_free(&lk->m);
    collect_free(&lk->c);
}

/* A copy of path (malloc'd) with every identifying value of the original replaced by '*',
 * for display: a folder named after the patient must not be printed either. */
static char *mask_path(Leaks *lk, const char *path)
{
    char *copy = xstrdup(path);
    OutIndex none;
    Scan s;

    if (!lk->have_matcher)
        return copy;
    memset(&none, 0, sizeof none);
    memset(&s, 0, sizeof s);
    s.c = &lk->c;
    s.ix = &none;
    s.buf = (const uint8_t *)path;
    s.hi = strlen(path);
    s.element = -1;
    s.path = 1;
    s.mask = copy;
    matcher_scan(&lk->m, &s);
    return copy;
}

/* Check 1 (leak) and the UID part of check 2: every identifying value of the original is
 * searched for in the output's bytes and in its path under DEID_DIR. */
static void leaks_check(Leaks *lk, Verify *v, const MvFile *orig, const MvFile *out, const Mapped *bytes,
                        const char *out_rel)
{
    Collect *c = &lk->c;
    OutIndex ix, values_ix;
    Scan s;
    int deflated = out != NULL && mv_file_transfer_syntax(out) != NULL && mv_file_transfer_syntax(out)->deflated;

    memset(&ix, 0, sizeof ix);
    memset(&values_ix, 0, sizeof values_ix);
    if (out != NULL)
        index_build(&ix, out, bytes->size, !deflated);
    else
        ix.size = bytes->size;

    if (lk->have_matcher) {
        memset(&s, 0, sizeof s);
        s.c = c;
        s.ix = &ix;
        s.buf = bytes->data;
        s.lo = 0;
        s.hi = bytes->size;
        if (deflated && bytes->size > 0) {
            uint64_t me = meta_end(out);
            s.hi = me < bytes->size ? (size_t)me : bytes->size;
        }
        s.element = -1;
        s.raw = 1;
        if (bytes->data != NULL)
            matcher_scan(&lk->m, &s);
        if (deflated) {
            index_dataset(&values_ix, mv_file_dataset(out), -1, 0, 0);
            s.raw = 0;
            scan_values(&lk->m, &s, &values_ix);
            free(values_ix.e);
        }
        /* File and folder names are released with the files (the mirror layout keeps them). */
        s.ix = &ix;
        s.raw = 0;
        s.path = 1;
        s.element = -1;
        s.buf = (const uint8_t *)out_rel;
        s.lo = 0;
        s.hi = strlen(out_rel);
        matcher_scan(&lk->m, &s);
    }

    /* A number too short for a byte search must at least not stay in its own attribute. */
    if (out != NULL) {
        for (size_t i = 0; i < c->n_idents; i++) {
            Ident *id = &c->idents[i];
            char *a, *b;
            if (id->check != CK_LEAK || id->kind == IK_PRIVATE || id->n_found > 0 || (c->options & id->option))
                continue;
            a = get_text(mv_file_dataset(orig), id->tag, NULL);
            b = get_text(mv_file_dataset(out), id->tag, NULL);
            if (a != NULL && b != NULL && strlen(a) >= 3 && strlen(a) < 6 && all_digits(a, strlen(a)) &&
                strcmp(a, b) == 0) {
                id->kept_same = 1;
                if (id->n_values == 0)
                    id->n_values = 1;
            }
            free(a), free(b);
        }
    }

    for (size_t i = 0; i < c->n_idents; i++) {
        Ident *id = &c->idents[i];
        if (id->n_values == 0)
            continue;
        if (id->n_found == 0 && !id->kept_same) {
            pass(v, id->check);
        } else if (id->n_found == 0) {
            fail(v, id->check, id->label, "the original value (a number of fewer than 6 digits) is kept unchanged");
        } else if (id->check == CK_UID) {
            fail(v, id->check, id->label, "%s%s", id->found, id->n_found > 3 ? "; and more" : "");
        } else {
            fail(v, id->check, id->label, "%s%s (%zu of the %zu values and spellings searched were found)", id->found,
                 id->n_found > 3 ? "; and more" : "", id->n_found, id->n_values);
        }
    }
    if (c->n_dropped > 0)
        fprintf(stderr, "%s verify: %s: %zu values not searched (more than %u bytes of values)\n", cli_program,
                v->cur_out ? v->cur_out : "", c->n_dropped, MAX_PATTERN_BYTES);
    index_free(&ix);
}

/* Consistency of one mapping across the run: the same original value always gives the same
 * output value, and two original values never give one output value. */
static void check_mapping(Verify *v, int map, uint32_t tag, const char *orig_value, const char *out_value,
                          uint32_t file_id, int kind, const char *what)
{
    char label[160];
    Digest ko = digest_str(what, orig_value), kn = digest_str(what, out_value);
    int created_f, created_r;
    MapEntry *f = map_put(&v->fwd[map], &ko, &created_f);
    MapEntry *r;
    int ok = 1;

    tag_label(label, sizeof label, tag, NULL, 0);
    if (created_f) {
        f->val = kn;
        f->file = file_id;
    } else if (memcmp(f->val.b, kn.b, sizeof kn.b) != 0) {
        fail(v, kind, label, "inconsistent: the same original %s was given a different output value in %s", what,
             v->names[f->file]);
        ok = 0;
    }
    r = map_put(&v->rev[map], &kn, &created_r);
    if (created_r) {
        r->val = ko;
        r->file = file_id;
    } else if (ok && memcmp(r->val.b, ko.b, sizeof ko.b) != 0) {
        fail(v, kind, label, "collision: output value %s is also the output of a different original %s, in %s",
             out_value, what, v->names[r->file]);
        ok = 0;
    }
    if (ok)
        pass(v, kind);
}

static void check_uids(Verify *v, const MvFile *orig, const MvFile *out, unsigned options, uint32_t file_id)
{
    static const struct {
        uint32_t tag;
        int map;
        const char *what;
    } mapped[] = {
        {MV_TAG(0x0020, 0x000D), MAP_STUDY, "study"},
        {MV_TAG(0x0020, 0x000E), MAP_SERIES, "series"},
        {MV_TAG(0x0020, 0x0052), MAP_FOR, "frame of reference"},
        {MV_TAG(0x0008, 0x0018), MAP_SOP, "instance"},
    };
    const MvDataset *ods = mv_file_dataset(orig), *nds = mv_file_dataset(out);
    char label[160];
    char *a, *b;

    for (size_t i = 0; i < sizeof mapped / sizeof mapped[0]; i++) {
        a = get_text(ods, mapped[i].tag, NULL);
        b = get_text(nds, mapped[i].tag, NULL);
        /* An unchanged UID without Retain UIDs has already failed the byte search. */
        if (a != NULL && b != NULL && *a && *b && ((options & OPT_UIDS) || strcmp(a, b) != 0))
            check_mapping(v, mapped[i].map, mapped[i].tag, a, b, file_id, CK_UID, mapped[i].what);
        free(a), free(b);
    }

    /* SOP Class UID unchanged. */
    a = get_text(ods, MV_TAG(0x0008, 0x0016), NULL);
    b = get_text(nds, MV_TAG(0x0008, 0x0016), NULL);
    if (a != NULL && *a) {
        tag_label(label, sizeof label, MV_TAG(0x0008, 0x0016), NULL, 0);
        if (b != NULL && strcmp(a, b) == 0)
            pass(v, CK_UID);
        else if (b != NULL && *b)
            fail(v, CK_UID, label, "changed from %s to %s: the kind of object must stay the same", a, b);
        /* A missing one is a required-attribute failure. */
    }
    free(a), free(b);

    /* The meta's Media Storage SOP Instance UID follows the dataset's SOP Instance UID. */
    a = get_text(mv_file_meta(out), MV_TAG(0x0002, 0x0003), NULL);
    b = get_text(nds, MV_TAG(0x0008, 0x0018), NULL);
    if (a != NULL && b != NULL && *b) {
        tag_label(label, sizeof label, MV_TAG(0x0002, 0x0003), NULL, 0);
        if (strcmp(a, b) == 0)
            pass(v, CK_UID);
        else
            fail(v, CK_UID, label, "differs from the output's SOPInstanceUID %s", b);
    }
    free(a), free(b);
}

static void check_patient(Verify *v, const MvFile *orig, const MvFile *out, uint32_t file_id)
{
    char *a = get_text(mv_file_dataset(orig), MV_TAG(0x0010, 0x0020), NULL);
    char *b = get_text(mv_file_dataset(out), MV_TAG(0x0010, 0x0020), NULL);

    if (a != NULL && b != NULL && *a && *b)
        check_mapping(v, MAP_PATIENT, MV_TAG(0x0010, 0x0020), a, b, file_id, CK_PATIENT, "patient");
    free(a), free(b);
}

/* The key dates of a patient are grouped under: the original PatientID, else the name, else the study. */
static Digest patient_key(const MvDataset *ods)
{
    static const uint32_t keys[] = {MV_TAG(0x0010, 0x0020), MV_TAG(0x0010, 0x0010), MV_TAG(0x0020, 0x000D)};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *s = get_text(ods, keys[i], NULL);
        if (s != NULL && *s) {
            char domain[16];
            Digest d;
            snprintf(domain, sizeof domain, "pk%zu", i);
            d = digest_str(domain, s);
            free(s);
            return d;
        }
        free(s);
    }
    return digest_str("pk", "");
}

static void check_dates(Verify *v, const MvFile *orig, const MvFile *out, uint32_t file_id)
{
    static const uint32_t date_tags[] = {
        MV_TAG(0x0008, 0x0020), MV_TAG(0x0008, 0x0021), MV_TAG(0x0008, 0x0022), MV_TAG(0x0008, 0x0023),
        MV_TAG(0x0008, 0x0012), MV_TAG(0x0008, 0x002A), MV_TAG(0x0040, 0x0244), MV_TAG(0x0040, 0x0250),
    };
    const MvDataset *ods = mv_file_dataset(orig), *nds = mv_file_dataset(out);
    char label[160], first_label[160] = "";
    char *marker = get_text(nds, MV_TAG(0x0028, 0x0303), NULL);
    int kept = 0, modified, unmodified, have_shift = 0, bad = 0;
    long shift = 0;
    char problem[512] = "";

    for (size_t i = 0; i < sizeof date_tags / sizeof date_tags[0]; i++) {
        char *b = get_text(nds, date_tags[i], NULL);
        kept |= b != NULL && *b && !is_dummy_date(b);
        free(b);
    }
    modified = marker != NULL && strcmp(marker, "MODIFIED") == 0;
    unmodified = marker != NULL && strcmp(marker, "UNMODIFIED") == 0;
    tag_label(label, sizeof label, MV_TAG(0x0028, 0x0303), NULL, 0);
    if (kept) {
        if (modified || unmodified)
            pass(v, CK_DATE);
        else
            fail(v, CK_DATE, label, "the output keeps dates but says %s: it must say MODIFIED (shifted) or UNMODIFIED",
                 marker == NULL ? "nothing (absent)" : *marker ? "REMOVED or another value" : "nothing (empty)");
    }

    if (kept && (modified || unmodified)) {
        for (size_t i = 0; i < sizeof date_tags / sizeof date_tags[0] && !bad; i++) {
            char *a = get_text(ods, date_tags[i], NULL), *b = get_text(nds, date_tags[i], NULL);
            long da, db;
            if (a != NULL && b != NULL && *a && *b && !is_dummy_date(b) && !is_dummy_date(a)) {
                tag_label(label, sizeof label, date_tags[i], NULL, 0);
                if (parse_date(b, &db) != 0) {
                    snprintf(problem, sizeof problem, "%s: the output's value is not a valid date", label);
                    bad = 1;
                } else if (parse_date(a, &da) == 0) {
                    if (!have_shift) {
                        shift = db - da;
                        have_shift = 1;
                        snprintf(first_label, sizeof first_label, "%s", label);
                    } else if (db - da != shift) {
                        snprintf(problem, sizeof problem, "%s is shifted by %ld days but %s by %ld days", label,
                                 db - da, first_label, shift);
                        bad = 1;
                    }
                }
            }
            free(a), free(b);
        }
        tag_label(label, sizeof label, MV_TAG(0x0028, 0x0303), NULL, 0);
        if (bad) {
            fail(v, CK_DATE, label, "%s", problem);
        } else if (have_shift && unmodified && shift != 0) {
            fail(v, CK_DATE, label, "UNMODIFIED, but %s is shifted by %ld days", first_label, shift);
        } else if (have_shift && modified && shift == 0) {
            fail(v, CK_DATE, label, "MODIFIED, but %s is the original date (shift of 0 days)", first_label);
        } else if (have_shift && modified) {
            Digest key = patient_key(ods);
            int created;
            MapEntry *e = map_put(&v->shifts, &key, &created);
            if (created) {
                e->num = (int32_t)shift;
                e->file = file_id;
                pass(v, CK_DATE);
            } else if (e->num != shift) {
                fail(v, CK_DATE, label, "this patient's dates are shifted by %ld days here but by %d days in %s", shift,
                     (int)e->num, v->names[e->file]);
            } else {
                pass(v, CK_DATE);
            }
        } else if (have_shift) {
            pass(v, CK_DATE);
        }
    }

    /* Birth date: absent, empty or shifted. */
    {
        char *a = get_text(ods, MV_TAG(0x0010, 0x0030), NULL), *b = get_text(nds, MV_TAG(0x0010, 0x0030), NULL);
        long da, db;
        tag_label(label, sizeof label, MV_TAG(0x0010, 0x0030), NULL, 0);
        if (a != NULL && *a && !is_dummy_date(a)) {
            if (b == NULL || *b == '\0' || is_dummy_date(b))
                pass(v, CK_DATE);
            else if (strcmp(a, b) == 0)
                fail(v, CK_DATE, label, "the original birth date is kept");
            else if (modified && have_shift && !bad && parse_date(a, &da) == 0 && parse_date(b, &db) == 0 &&
                     db - da != shift)
                fail(v, CK_DATE, label, "shifted by %ld days, but the other dates by %ld days", db - da, shift);
            else
                pass(v, CK_DATE);
        }
        free(a), free(b);
    }
    free(marker);
}

static void check_markers(Verify *v, const MvFile *out)
{
    const MvDataset *ds = mv_file_dataset(out);
    char label[160];
    char *s;
    int present, found = 0;
    MvElement *seq;

    tag_label(label, sizeof label, MV_TAG(0x0012, 0x0062), NULL, 0);
    s = get_text(ds, MV_TAG(0x0012, 0x0062), &present);
    if (s != NULL && equal_nocase(s, "YES"))
        pass(v, CK_MARKER);
    else
        fail(v, CK_MARKER, label, "%s, must be YES", present ? "not YES" : "absent");
    free(s);

    tag_label(label, sizeof label, MV_TAG(0x0012, 0x0063), NULL, 0);
    s = get_text(ds, MV_TAG(0x0012, 0x0063), &present);
    if (s != NULL && *s)
        pass(v, CK_MARKER);
    else
        fail(v, CK_MARKER, label, "%s, must describe the method", present ? "empty" : "absent");
    free(s);

    tag_label(label, sizeof label, MV_TAG(0x0012, 0x0064), NULL, 0);
    seq = mv_dataset_find(ds, MV_TAG(0x0012, 0x0064));
    for (size_t i = 0; seq != NULL && mv_element_is_sequence(seq) && i < mv_element_item_count(seq); i++) {
        s = get_text(mv_element_item(seq, i), MV_TAG(0x0008, 0x0100), NULL);
        found |= s != NULL && strcmp(s, "113100") == 0;
        free(s);
    }
    if (found)
        pass(v, CK_MARKER);
    else
        fail(v, CK_MARKER, label, "%s, must hold code 113100 (Basic Application Confidentiality Profile)",
             seq == NULL ? "absent" : "has no item with code 113100");
}

static void check_required(Verify *v, const MvFile *orig, const MvFile *out)
{
    static const struct {
        uint32_t tag;
        int may_be_empty;
    } required[] = {
        {MV_TAG(0x0008, 0x0016), 0}, {MV_TAG(0x0008, 0x0018), 0}, {MV_TAG(0x0020, 0x000D), 0},
        {MV_TAG(0x0020, 0x000E), 0}, {MV_TAG(0x0008, 0x0060), 0}, {MV_TAG(0x0010, 0x0020), 0},
        {MV_TAG(0x0010, 0x0010), 1},
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        int in_orig, in_out;
        char *a = get_text(mv_file_dataset(orig), required[i].tag, &in_orig);
        char *b = get_text(mv_file_dataset(out), required[i].tag, &in_out);
        char label[160];
        tag_label(label, sizeof label, required[i].tag, NULL, 0);
        /* Only what the original had is required of the output. */
        if (in_orig && (required[i].may_be_empty || (a != NULL && *a))) {
            if (!in_out)
                fail(v, CK_REQUIRED, label, "absent from the output");
            else if (!required[i].may_be_empty && (b == NULL || *b == '\0'))
                fail(v, CK_REQUIRED, label, "empty in the output");
            else
                pass(v, CK_REQUIRED);
        }
        free(a), free(b);
    }
}

/* " at offset N" of a read error, "" when it has none (static buffer). */
static const char *where_offset(const MvError *err)
{
    static char buf[48];
    if (err->offset == MV_NO_OFFSET)
        return "";
    snprintf(buf, sizeof buf, " at offset %llu", (unsigned long long)err->offset);
    return buf;
}

static int is_directory_file(const MvFile *file)
{
    char *cls = get_text(mv_file_meta(file), MV_TAG(0x0002, 0x0002), NULL);
    int yes = cls != NULL && strcmp(cls, MEDIA_STORAGE_DIRECTORY) == 0;
    free(cls);
    return yes;
}

/* Whether real (a resolved path) is dir or inside it. */
static int is_under(const char *real, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return 1;
    return strncmp(real, dir, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/* out_path below DEID_DIR ("sub/x.dcm"), or its last component when it is elsewhere; the
 * names of the folders above DEID_DIR are the user's, not released data. */
static const char *output_relative(const Verify *v, const char *out_path)
{
    static char rel[PATH_MAX];
    char real[PATH_MAX];
    const char *base = strrchr(out_path, '/');

    if (realpath(out_path, real) != NULL && v->deid_top != NULL && is_under(real, v->deid_top)) {
        const char *r = real + strlen(v->deid_top);
        while (*r == '/')
            r++;
        snprintf(rel, sizeof rel, "%s", r);
        return rel;
    }
    snprintf(rel, sizeof rel, "%s", base != NULL ? base + 1 : out_path);
    return rel;
}

/* Every check of one original and its output. The paths shown for the pair are masked
 * first, so that no message of the pair prints an identifying value in a path. */
static void verify_pair(Verify *v, const char *orig_path, const char *out_path, MvFile *orig)
{
    MvFile *out = NULL;
    MvError err;
    Mapped bytes;
    Leaks lk;
    uint32_t file_id;
    unsigned options = 0;
    int directory, out_ok;

    v->n_paired++;
    directory = is_directory_file(orig);
    out_ok = mv_file_open(out_path, NULL, &out, &err) == MV_OK;
    if (out_ok)
        options = declared_options(mv_file_dataset(out));
    else
        out = NULL;
    leaks_prepare(&lk, v, orig, options);
    free(v->disp_out);
    free(v->disp_orig);
    v->disp_out = mask_path(&lk, out_path);
    v->disp_orig = mask_path(&lk, orig_path);
    v->cur_out = v->disp_out;
    v->cur_orig = v->disp_orig;
    file_id = register_name(v, v->disp_out);

    if (map_file(out_path, &bytes) != 0) {
        fail(v, CK_PARSE, "", "the output cannot be read: %s", strerror(errno));
        goto out;
    }
    if (!out_ok)
        /* The codec's message may quote a "tag" or length that is really the file's text. */
        fail(v, CK_PARSE, "", "the output is not readable DICOM (%s%s); its bytes are still searched",
             mv_status_name(err.code), where_offset(&err));
    else
        pass(v, CK_PARSE);
    leaks_check(&lk, v, orig, out, &bytes, output_relative(v, out_path));
    if (out != NULL && !directory) {
        check_uids(v, orig, out, options, file_id);
        check_patient(v, orig, out, file_id);
        check_dates(v, orig, out, file_id);
        check_markers(v, out);
        check_required(v, orig, out);
    }
    unmap_file(&bytes);
out:
    leaks_free(&lk);
    mv_file_free(out);
}

/* ---- Pairing ------------------------------------------------------------------------- */

static int is_regular(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}


static int skip_path(const char *path, const char *other_real)
{
    char real[PATH_MAX];
    return realpath(path, real) != NULL && is_under(real, other_real);
}

/* An original: pair it with its output (by relative path or by the report) and check. */
static int visit_original(const char *path, void *arg)
{
    Verify *v = arg;
    MvFile *orig = NULL;
    MvError err;
    char out_path[PATH_MAX];
    const char *rel = path + v->orig_arg_len;
    const char *out = NULL;
    const char *status;
    const char *shared = NULL;
    ReportEntry *entry = NULL;
    int withheld = 0, in_report = 0, missing = 0;

    if (v->deid_inside_orig && skip_path(path, v->deid_real))
        return 0;
    while (*rel == '/')
        rel++;
    v->n_originals++;
    if (v->entries != NULL) {
        char real[PATH_MAX];
        if (realpath(path, real) != NULL) {
            Digest d = digest_str("path", real);
            MapEntry *e = map_find(&v->report_inputs, &d);
            if (e != NULL) {
                ReportEntry *re = &v->entries[e->num];
                entry = re;
                in_report = 1;
                re->used = 1;
                withheld = re->withheld;
                if (!withheld) {
                    out = re->output;
                    missing = out == NULL || !is_regular(out);
                }
            }
        }
    } else {
        int n = snprintf(out_path, sizeof out_path, "%s/%s", v->root, rel);
        if (n > 0 && (size_t)n < sizeof out_path && is_regular(out_path))
            out = out_path;
    }

    begin_file(v, out != NULL && !missing ? out : NULL, path);
    if (withheld) {
        v->n_withheld++;
        pass(v, CK_PAIRING);
        end_file(v, "withheld");
        return 0;
    }
    if (mv_file_open(path, NULL, &orig, &err) != MV_OK) {
        orig = NULL;
        if (out != NULL && !missing) {
            fail(v, CK_PARSE, "", "the original cannot be read (%s%s), so its output cannot be verified",
                 mv_status_name(err.code), where_offset(&err));
            v->n_unreadable++;
            status = "unreadable original";
        } else {
            v->n_not_dicom++;
            status = "not DICOM";
        }
        end_file(v, status);
        return 0;
    }
    if (entry != NULL) {
        /* Two originals with one output: fine for two copies of one instance (same SOP
         * Instance UID), else one output overwrote the other. Decided at the second. */
        char *sop = get_text(mv_file_dataset(orig), MV_TAG(0x0008, 0x0018), NULL);
        entry->visited = 1;
        entry->has_sop = sop != NULL && *sop;
        if (entry->has_sop)
            entry->sop = digest_str("sop", sop);
        free(sop);
        if (entry->shares_with >= 0) {
            const ReportEntry *other = &v->entries[entry->shares_with];
            if (other->visited && (!entry->has_sop || !other->has_sop ||
                                   memcmp(entry->sop.b, other->sop.b, sizeof entry->sop.b) != 0))
                shared = other->input_real;
        }
    }
    if (v->entries != NULL && !in_report) {
        fail(v, CK_PAIRING, "", "the report names neither an output nor a quarantine for this original");
        status = "not in report";
    } else if (missing) {
        fail(v, CK_PAIRING, "", "the report says it was released, but the output %s does not exist",
             out ? out : "(none named)");
        status = "output missing";
    } else if (out == NULL) {
        v->n_not_released++;
        status = "not released";
    } else {
        verify_pair(v, path, out, orig);
        /* After verify_pair, so that the failure is shown under the masked paths. */
        if (shared != NULL)
            fail(v, CK_PAIRING, "",
                 "the report gives another original, a different instance, the same output: one overwrote the "
                 "other (see %s)", v->report_path);
        else
            pass(v, CK_PAIRING);
        status = "checked";
    }
    mv_file_free(orig);
    end_file(v, status);
    return 0;
}

/* An output: fine if an original accounts for it, a failure if it is DICOM nobody explains. */
static int visit_output(const char *path, void *arg)
{
    Verify *v = arg;
    MvFile *file = NULL;
    int paired = 0;

    if (v->orig_inside_deid && skip_path(path, v->orig_real))
        return 0;
    if (v->entries != NULL) {
        char real[PATH_MAX];
        if (realpath(path, real) != NULL) {
            Digest d = digest_str("path", real);
            paired = map_find(&v->report_outputs, &d) != NULL;
        }
    } else {
        char orig_path[PATH_MAX];
        const char *rel = path + strlen(v->root);
        int n;
        while (*rel == '/')
            rel++;
        n = snprintf(orig_path, sizeof orig_path, "%s/%s", v->orig_arg, rel);
        paired = n > 0 && (size_t)n < sizeof orig_path && is_regular(orig_path);
    }
    if (paired)
        return 0;
    if (mv_file_open(path, NULL, &file, NULL) != MV_OK) {
        v->n_other_outputs++;
        return 0;
    }
    mv_file_free(file);
    v->n_unpaired++;
    begin_file(v, path, NULL);
    fail(v, CK_PAIRING, "", "no original accounts for this DICOM output, so nothing shows it is clean%s",
         v->entries ? " (it is not in the report)" : " (no original at the same relative path; use --report)");
    end_file(v, "unpaired output");
    return 0;
}

/* A path of the report as given, else relative to the report's folder, else to base. */
static char *resolve_report_path(const char *p, const char *report_dir, const char *base)
{
    char buf[PATH_MAX];
    if (p[0] == '/' || access(p, F_OK) == 0)
        return xstrdup(p);
    if (snprintf(buf, sizeof buf, "%s/%s", report_dir, p) < (int)sizeof buf && access(buf, F_OK) == 0)
        return xstrdup(buf);
    if (snprintf(buf, sizeof buf, "%s/%s", base, p) < (int)sizeof buf && access(buf, F_OK) == 0)
        return xstrdup(buf);
    return xstrdup(p);
}

static int status_withheld(const char *status)
{
    static const char *const words[] = {"quarantin", "skip", "fail", "error", "exclude", "withheld", "not released",
                                        "rejected"};
    char low[64];
    size_t n = 0;
    for (; status[n] && n < sizeof low - 1; n++)
        low[n] = (char)ascii_lower((unsigned char)status[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(low, words[i]) != NULL)
            return 1;
    return 0;
}

/* Loads --report. Returns 0, or an exit status after printing why. */
static int load_report(Verify *v)
{
    json_error_t jerr;
    json_t *root = json_load_file(v->report_path, 0, &jerr), *files;
    char *dir_copy = xstrdup(v->report_path), *slash;
    const char *report_dir;
    int rc = 0;

    slash = strrchr(dir_copy, '/');
    if (slash == NULL) {
        report_dir = ".";
    } else {
        if (slash == dir_copy)
            slash++; /* the report is in / */
        *slash = '\0';
        report_dir = dir_copy;
    }
    if (root == NULL) {
        rc = cli_usage_error("verify", "--report %s: not readable JSON (line %d: %s)", v->report_path, jerr.line,
                             jerr.text);
        goto out;
    }
    files = json_object_get(root, "files");
    if (!json_is_array(files)) {
        rc = cli_usage_error("verify", "--report %s: no \"files\" array; is it the report of medveil deid?",
                             v->report_path);
        goto out;
    }
    v->n_entries = json_array_size(files);
    v->entries = xcalloc(v->n_entries, sizeof *v->entries);
    for (size_t i = 0; i < v->n_entries; i++) {
        json_t *f = json_array_get(files, i);
        const char *input = json_string_value(json_object_get(f, "input"));
        const char *output = json_string_value(json_object_get(f, "output"));
        const char *status = json_string_value(json_object_get(f, "status"));
        ReportEntry *re = &v->entries[i];
        char real[PATH_MAX];
        Digest d;
        MapEntry *e;
        int created;

        if (input == NULL) {
            rc = cli_usage_error("verify", "--report %s: files[%zu] has no \"input\" string", v->report_path, i);
            goto out;
        }
        {
            char *resolved = resolve_report_path(input, report_dir, v->orig_arg);
            re->input_real = xstrdup(realpath(resolved, real) != NULL ? real : resolved);
            free(resolved);
        }
        re->withheld = status != NULL && status_withheld(status);
        re->shares_with = -1;
        if (output != NULL && *output && !re->withheld) {
            re->output = resolve_report_path(output, report_dir, v->deid_arg);
            if (realpath(re->output, real) != NULL) {
                d = digest_str("path", real);
                e = map_put(&v->report_outputs, &d, &created);
                if (created) {
                    e->num = (int32_t)i;
                } else {
                    re->shares_with = e->num;
                    if (v->entries[e->num].shares_with < 0)
                        v->entries[e->num].shares_with = (long)i;
                }
            }
        }
        d = digest_str("path", re->input_real);
        e = map_put(&v->report_inputs, &d, &created);
        e->num = (int32_t)i;
    }
out:
    json_decref(root);
    free(dir_copy);
    return rc;
}

/* ---- Summary ------------------------------------------------------------------------- */

static const char *plural(unsigned long n)
{
    return n == 1 ? "" : "s";
}

static void print_summary(Verify *v, double score, unsigned long total_run, unsigned long total_failed)
{
    unsigned long total_passed = total_run - total_failed;

    if (v->json) {
        json_t *counts = json_object(), *files = json_object(), *tail;
        char *text;
        char line[65536];

        printf("\n  ],\n  \"failures\": [");
        if (v->failures_tmp != NULL) {
            int first = 1;
            rewind(v->failures_tmp);
            while (fgets(line, sizeof line, v->failures_tmp) != NULL) {
                line[strcspn(line, "\n")] = '\0';
                printf("%s\n    %s", first ? "" : ",", line);
                first = 0;
            }
        }
        printf("\n  ],\n");
        for (int k = 0; k < CK_N; k++)
            json_object_set_new(counts, check_names[k],
                                json_pack("{s:I,s:I,s:I}", "run", (json_int_t)v->run[k], "passed",
                                          (json_int_t)(v->run[k] - v->failed[k]), "failed",
                                          (json_int_t)v->failed[k]));
        json_object_set_new(files, "originals", json_integer((json_int_t)v->n_originals));
        json_object_set_new(files, "paired", json_integer((json_int_t)v->n_paired));
        json_object_set_new(files, "not_released", json_integer((json_int_t)v->n_not_released));
        json_object_set_new(files, "withheld", json_integer((json_int_t)v->n_withheld));
        json_object_set_new(files, "unpaired_outputs", json_integer((json_int_t)v->n_unpaired));
        json_object_set_new(files, "not_dicom", json_integer((json_int_t)v->n_not_dicom));
        json_object_set_new(files, "unreadable_originals", json_integer((json_int_t)v->n_unreadable));
        json_object_set_new(files, "report_entries_unmatched", json_integer((json_int_t)v->n_report_unmatched));
        json_object_set_new(files, "other_files_in_deid_dir", json_integer((json_int_t)v->n_other_outputs));
        json_object_set_new(files, "with_failures", json_integer((json_int_t)v->n_files_failed));
        tail = json_pack("{s:o,s:o,s:I,s:I,s:I,s:f}", "counts", counts, "totals", files, "checks_run",
                         (json_int_t)total_run, "checks_passed", (json_int_t)total_passed, "failures_count",
                         (json_int_t)total_failed, "score", score);
        text = tail ? json_dumps(tail, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
        /* Splice the tail object's members into the outer object. */
        if (text != NULL) {
            char *body = strchr(text, '{');
            size_t len = strlen(text);
            while (len > 0 && text[len - 1] != '}')
                len--;
            if (body != NULL && len > 0) {
                text[len - 1] = '\0';
                printf("%s}\n", body + 1 + (body[1] == '\n'));
            }
        }
        free(text);
        json_decref(tail);
        return;
    }
    if (!v->quiet) {
        if (v->n_files_failed > 0)
            printf("\n");
        printf("verify: %lu original%s: %lu checked against their output, %lu not released", v->n_originals,
               plural(v->n_originals), v->n_paired, v->n_not_released);
        if (v->entries != NULL)
            printf(", %lu withheld by the report", v->n_withheld);
        if (v->n_not_dicom > 0)
            printf(", %lu not DICOM", v->n_not_dicom);
        if (v->n_unreadable > 0)
            printf(", %lu unreadable with an output", v->n_unreadable);
        printf("; %lu unpaired output%s\n", v->n_unpaired, plural(v->n_unpaired));
        if (v->n_report_unmatched > 0)
            printf("  (%lu report entr%s name%s no original under %s: not checked)\n", v->n_report_unmatched,
                   v->n_report_unmatched == 1 ? "y" : "ies", v->n_report_unmatched == 1 ? "s" : "", v->orig_arg);
        printf("  %-9s %8s %8s %8s\n", "check", "run", "passed", "failed");
        for (int k = 0; k < CK_N; k++)
            printf("  %-9s %8lu %8lu %8lu\n", check_names[k], v->run[k], v->run[k] - v->failed[k], v->failed[k]);
        printf("  %-9s %8lu %8lu %8lu\n", "total", total_run, total_passed, total_failed);
    }
    printf("score %.2f (%lu of %lu checks passed); %lu failure%s in %lu file%s\n", score, total_passed, total_run,
           total_failed, plural(total_failed), v->n_files_failed, plural(v->n_files_failed));
}

/* ---- The command --------------------------------------------------------------------- */

void help_verify(FILE *out)
{
    fprintf(out,
            "usage: %s verify [OPTIONS] ORIGINAL_DIR DEID_DIR\n"
            "       %s verify [OPTIONS] ORIGINAL_FILE DEID_FILE\n"
            "\n"
            "Checks a finished de-identification run independently of the engine that did it:\n"
            "every original is paired with its output and the pair is examined with the DICOM\n"
            "codec alone and lists of identifying attributes kept in this command, not the\n"
            "engine's profile tables, so that a bug there cannot hide itself. The result is a\n"
            "score, 100 * checks passed / checks run, with counts per kind of check.\n"
            "\n"
            "How files are paired:\n"
            "  By relative path (the 'mirror' layout of medveil deid): ORIGINAL_DIR/a/b.dcm is\n"
            "  checked against DEID_DIR/a/b.dcm. When DEID_DIR/NAME is a folder, NAME being the\n"
            "  last component of ORIGINAL_DIR (what 'medveil deid IN -o OUT' makes: OUT/IN/...),\n"
            "  that folder is the root of the outputs instead.\n"
            "  With --report, the pairs come from the run's JSON report instead, which must hold\n"
            "  a \"files\" array of objects with \"input\" (the original), \"output\" (the file\n"
            "  written, may be null) and \"status\"; a status containing quarantine, skip, fail,\n"
            "  error, exclude or withheld means not released, any other means released. Paths\n"
            "  are taken as written, else relative to the report's folder, else to ORIGINAL_DIR\n"
            "  (inputs) or DEID_DIR (outputs).\n"
            "  An original without an output is 'not released' and no failure; with --report it\n"
            "  must be withheld by the report, or it fails [pairing], as do two originals of\n"
            "  different instances given one output (one overwrote the other). A DICOM file in DEID_DIR\n"
            "  that no original accounts for fails [pairing]: nothing shows it is clean (keep a\n"
            "  quarantine folder outside DEID_DIR). Files that are not DICOM are ignored.\n"
            "\n"
            "What is checked for each pair, by kind:\n"
            "  [leak]     Each identifying value of the original is searched for in the raw bytes\n"
            "             of the output, anywhere: preamble, meta, every element, private ones,\n"
            "             and around the pixel data (for a deflated output, in the inflated\n"
            "             values), and in the output's path under DEID_DIR (folder and file\n"
            "             names are released too). Search is case-insensitive, for whole words\n"
            "             and numbers; a value shorter than 6 bytes is not searched inside\n"
            "             pixel data or other bulk binary values, where it occurs by chance. The\n"
            "             values, from any depth of the original: patient's name and its\n"
            "             components (split on ^ = and space), ID, other IDs (also in Other\n"
            "             Patient IDs Sequence), other names, birth name, mother's birth name,\n"
            "             birth date (also as YYYY-MM-DD, DD/MM/YYYY, MM/DD/YYYY and similar),\n"
            "             address and its words of 4+ letters (common street words excepted),\n"
            "             telephone numbers (also as digits only), medical record locator,\n"
            "             responsible person, accession number, study ID, admission ID, order\n"
            "             numbers, requested procedure ID, institution name, address and\n"
            "             department, the referring, performing, reading and requesting\n"
            "             physicians, physicians of record, operators, station name, person\n"
            "             names of structured reports; and the text of every private element\n"
            "             (odd groups, creators excepted): each value of 6+ printable characters\n"
            "             with 3+ letters, unless it repeats a public value of the original.\n"
            "             A value in any non-ASCII character set is also searched as encoded.\n"
            "             One check per attribute. A number of fewer than 6 digits is too\n"
            "             common to search for: it must only not stay in its attribute.\n"
            "  [uid]      The original's instance UIDs (SOP, study, series, frame of reference,\n"
            "             referenced SOP instances, media storage SOP instance and a few others)\n"
            "             appear nowhere in the output, not even as the start of a longer UID;\n"
            "             study, series, frame of reference and SOP instance UIDs map the same\n"
            "             way across the whole run (same original, same output) without\n"
            "             collisions (two originals, one output); SOPClassUID is unchanged;\n"
            "             MediaStorageSOPInstanceUID equals the output's SOPInstanceUID.\n"
            "  [patient]  Originals with the same PatientID get the same output PatientID, and\n"
            "             different ones never share one, across the run.\n"
            "  [date]     If the output keeps dates (study, series, acquisition, content ...),\n"
            "             LongitudinalTemporalInformationModified (0028,0303) says MODIFIED,\n"
            "             then every date of a patient is shifted by the same non-zero number of\n"
            "             days across the run, or UNMODIFIED, then the dates are the original\n"
            "             ones; absent or REMOVED fails. PatientBirthDate is absent, empty or\n"
            "             shifted like the other dates.\n"
            "  [marker]   PatientIdentityRemoved (0012,0062) is YES, DeidentificationMethod\n"
            "             (0012,0063) is present, DeidentificationMethodCodeSequence (0012,0064)\n"
            "             holds code 113100.\n"
            "  [required] What the original had, the output still has: SOPClassUID,\n"
            "             SOPInstanceUID, StudyInstanceUID, SeriesInstanceUID, Modality and\n"
            "             PatientID (a pseudonym) non-empty, PatientName (may be empty).\n"
            "  [parse]    The output reads as DICOM (its bytes are searched even if not).\n"
            "  [pairing]  As above.\n"
            "  A DICOMDIR (Media Storage Directory) is checked for [leak] and UID leaks only.\n"
            "\n"
            "Options the output declares (codes in (0012,0064) or words in (0012,0063)) are\n"
            "honoured: Retain UIDs (113110) skips the UID search and 'unchanged' checks; under\n"
            "Retain Institution Identity (113112) and Retain Device Identity (113109) the\n"
            "institution's and station's values may appear in the attributes those options keep\n"
            "(PS3.15 Table E.1-1), and nowhere else; under Retain Safe Private (113111) a private\n"
            "value may stay in its own element (same creator and element). A patient's values\n"
            "are never allowed anywhere.\n"
            "\n"
            "Never searched (too short or generic to identify anyone): values of fewer than 3\n"
            "characters (so codes like M, F, O), one character repeated, ANONYMOUS, ANONYMIZED,\n"
            "ANON, UNKNOWN, NONE, NULL, N/A, REMOVED, REDACTED, DEIDENTIFIED, DUMMY, EMPTY,\n"
            "PATIENT, MALE, FEMALE, OTHER, YES, NO NAME, titles (MRS, MISS, PROF, PHD, III),\n"
            "the dummy dates 19000101 and 00010101 (also not counted as kept dates), and a\n"
            "station or institution name that is the original's Manufacturer or model name.\n"
            "\n"
            "Options:\n"
            "  -j, --json           print one JSON object: \"files\" (each original or output with\n"
            "                       its status, checks and failures), \"failures\" (objects with\n"
            "                       file, original, check, attribute, detail), \"counts\" per kind\n"
            "                       (run, passed, failed), \"totals\", \"score\". A file's status\n"
            "                       is checked, not released, withheld, not DICOM, unreadable\n"
            "                       original, not in report, output missing or unpaired output\n"
            "  -r, --report FILE    pair files by the JSON report of the run (see above)\n"
            "  -q, --quiet          print only the score line (no failures, no progress); with\n"
            "                       --json, only the progress is silenced\n"
            "  -h, --help           show this help\n"
            "\n"
            "Output: one line per failure, grouped under the output file, then the counts and\n"
            "the score. A failure names the attribute and where its value was found (offset and\n"
            "element of the output), never the value: a value is shown by its length and a\n"
            "'ref', a digest under a key made for this run, equal for equal values within one\n"
            "report and useless for checking guesses. Original UIDs are not shown either, and\n"
            "the paths of a checked pair are shown with its identifying values masked by '*'.\n"
            "\n"
            "Exit status: 0 every check passed; 1 some check failed (a leak, an inconsistency,\n"
            "a missing marker or attribute, an unpaired output); 2 usage error (a missing\n"
            "folder, a bad option, an unreadable report).\n"
            "\n"
            "Examples:\n"
            "  %s deid study/ -o out/ --key project.key --report run.json\n"
            "  %s verify study/ out/                  (pairs study/a.dcm with out/study/a.dcm)\n"
            "  %s verify --report run.json study/ out/\n"
            "  %s verify --json study/ out/ > verify.json\n"
            "  %s verify -q original.dcm deidentified.dcm && echo clean\n",
            cli_program, cli_program, cli_program, cli_program, cli_program, cli_program, cli_program);
}

/* The start of the JSON object, up to the opening of the streamed "files" array. */
static void print_json_head(const Verify *v, int files_mode)
{
    const char *pairing = files_mode ? "files" : v->report_path != NULL ? "report" : "relative path";
    char *po = printable_copy(v->orig_arg), *pd = printable_copy(v->deid_arg);
    char *pr = printable_copy(v->root ? v->root : v->deid_arg);
    json_t *head = json_pack("{s:s,s:s,s:s,s:s}", "original_dir", po, "deid_dir", pd, "deid_root", pr, "pairing",
                             pairing);
    char *text = head ? json_dumps(head, JSON_PRESERVE_ORDER | JSON_INDENT(2)) : NULL;

    if (text != NULL) {
        /* Drop the closing brace: the object goes on with "files", "failures" ... */
        size_t len = strlen(text);
        while (len > 0 && text[len - 1] != '}')
            len--;
        if (len > 0)
            len--;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
            len--;
        text[len] = '\0';
        printf("%s,\n  \"files\": [", text);
    }
    free(text);
    json_decref(head);
    free(po), free(pd), free(pr);
}

static void verify_free(Verify *v)
{
    for (int k = 0; k < N_UID_MAPS; k++) {
        map_clear(&v->fwd[k]);
        map_clear(&v->rev[k]);
    }
    map_clear(&v->shifts);
    map_clear(&v->report_inputs);
    map_clear(&v->report_outputs);
    for (size_t i = 0; i < v->n_entries; i++) {
        free(v->entries[i].input_real);
        free(v->entries[i].output);
    }
    free(v->entries);
    for (size_t i = 0; i < v->n_names; i++)
        free(v->names[i]);
    free(v->names);
    free(v->orig_real);
    free(v->deid_real);
    free(v->deid_top);
    free(v->root);
    free(v->disp_out);
    free(v->disp_orig);
    if (v->failures_tmp != NULL)
        fclose(v->failures_tmp);
    OPENSSL_cleanse(v->ref_key, sizeof v->ref_key);
}

int cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"report", required_argument, NULL, 'r'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    Verify v;
    int c, rc = MV_EXIT_OK, files_mode;
    unsigned long total_run = 0, total_failed = 0;
    double score;
    char real[PATH_MAX];

    memset(&v, 0, sizeof v);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":jr:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': v.json = 1; break;
        case 'r': v.report_path = optarg; break;
        case 'q': v.quiet = 1; break;
        case 'h': help_verify(stdout); return MV_EXIT_OK;
        case ':': return cli_usage_error("verify", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("verify", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("verify", "needs ORIGINAL_DIR and DEID_DIR (%d argument%s given)", argc - optind,
                               argc - optind == 1 ? "" : "s");
    v.orig_arg = argv[optind];
    v.deid_arg = argv[optind + 1];
    files_mode = is_regular(v.orig_arg) && is_regular(v.deid_arg);
    if (!files_mode) {
        if (!is_dir(v.orig_arg))
            return cli_usage_error("verify", "ORIGINAL_DIR %s is not a folder%s", v.orig_arg,
                                   is_regular(v.orig_arg) ? " (a file needs a file as DEID_DIR)" : "");
        if (!is_dir(v.deid_arg))
            return cli_usage_error("verify", "DEID_DIR %s is not a folder%s", v.deid_arg,
                                   is_regular(v.deid_arg) ? " (a file needs a file as ORIGINAL_DIR)" : "");
    }
    if (v.report_path != NULL && !is_regular(v.report_path))
        return cli_usage_error("verify", "--report %s: no such file", v.report_path);
    if (v.report_path != NULL && files_mode)
        return cli_usage_error("verify", "--report pairs the files of two folders; two files need no report");
    if (RAND_bytes(v.ref_key, (int)sizeof v.ref_key) != 1) {
        cli_error("verify", "no random bytes for the run's key");
        return MV_EXIT_PARTIAL;
    }
    v.orig_real = xstrdup(realpath(v.orig_arg, real) != NULL ? real : v.orig_arg);
    v.deid_real = xstrdup(realpath(v.deid_arg, real) != NULL ? real : v.deid_arg);
    v.deid_top = files_mode ? NULL : xstrdup(v.deid_real);
    v.orig_arg_len = strlen(v.orig_arg);

    if (v.report_path != NULL) {
        rc = load_report(&v);
        if (rc != 0)
            goto out;
    }
    if (!files_mode) {
        /* OUT/<last component of ORIGINAL_DIR>, as `medveil deid IN -o OUT` writes. */
        const char *base = strrchr(v.orig_real, '/');
        char candidate[PATH_MAX];
        int n;
        base = base != NULL ? base + 1 : v.orig_real;
        n = snprintf(candidate, sizeof candidate, "%s/%s", v.deid_arg, base);
        if (*base && n > 0 && (size_t)n < sizeof candidate && is_dir(candidate))
            v.root = xstrdup(candidate);
        else
            v.root = xstrdup(v.deid_arg);
        /* A folder of outputs inside the originals (or the reverse) is not walked twice. */
        if (realpath(v.report_path != NULL ? v.deid_arg : v.root, real) != NULL) {
            free(v.deid_real);
            v.deid_real = xstrdup(real);
            if (strcmp(v.deid_real, v.orig_real) != 0) {
                v.deid_inside_orig = is_under(v.deid_real, v.orig_real);
                v.orig_inside_deid = is_under(v.orig_real, v.deid_real);
            }
        }
    }
    if (v.json) {
        v.failures_tmp = tmpfile();
        if (v.failures_tmp == NULL) {
            cli_error("verify", "cannot create a temporary file: %s", strerror(errno));
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
        print_json_head(&v, files_mode);
    }
    v.progress = !v.quiet && isatty(2);

    if (files_mode) {
        MvFile *orig = NULL;
        MvError err;
        v.n_originals = 1;
        begin_file(&v, v.deid_arg, v.orig_arg);
        if (mv_file_open(v.orig_arg, NULL, &orig, &err) != MV_OK) {
            fail(&v, CK_PARSE, "", "the original cannot be read (%s%s), so its output cannot be verified",
                 mv_status_name(err.code), where_offset(&err));
            end_file(&v, "unreadable original");
        } else {
            pass(&v, CK_PAIRING);
            verify_pair(&v, v.orig_arg, v.deid_arg, orig);
            mv_file_free(orig);
            end_file(&v, "checked");
        }
    } else {
        int n_failed = 0;
        char *orig_paths[1], *out_paths[1];
        orig_paths[0] = (char *)v.orig_arg;
        cli_walk(orig_paths, 1, visit_original, &v, "verify", &n_failed);
        out_paths[0] = v.entries != NULL ? (char *)v.deid_arg : v.root;
        cli_walk(out_paths, 1, visit_output, &v, "verify", &n_failed);
        if (n_failed > 0)
            fprintf(stderr, "%s verify: %d paths could not be read (named above)\n", cli_program, n_failed);
        for (size_t i = 0; i < v.n_entries; i++)
            v.n_report_unmatched += !v.entries[i].used;
    }
    if (v.progress)
        fprintf(stderr, "\r\033[K");

    for (int k = 0; k < CK_N; k++) {
        total_run += v.run[k];
        total_failed += v.failed[k];
    }
    score = total_run > 0 ? 100.0 * (double)(total_run - total_failed) / (double)total_run : 100.0;
    score = (double)(long)(score * 100.0) / 100.0; /* two decimals, never rounded up to 100 */
    print_summary(&v, score, total_run, total_failed);
    if (total_run == 0 && !v.json && !v.quiet)
        fprintf(stderr, "%s verify: nothing was checked: no original has an output in %s\n", cli_program,
                v.deid_arg);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("verify", "cannot write to standard output");
        rc = MV_EXIT_PARTIAL;
    } else {
        rc = total_failed > 0 ? MV_EXIT_PARTIAL : MV_EXIT_OK;
    }
out:
    verify_free(&v);
    return rc;
}
