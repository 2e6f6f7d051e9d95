/* mksynth: writes a small set of synthetic DICOM files for demos and tests, built from
 * scratch with the public editing API of include/medveil/dicom.h and written with
 * mv_file_write. Every person, ID, address and institution in them is obviously fake; the
 * files carry the things de-identification must find (names in free text, nested sequences,
 * private tags, burned-in text, two character sets) so later stages have something to chew. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "medveil/dicom.h"

#define EXIT_WRITE_FAILED 1
#define EXIT_USAGE 2

#define DEFAULT_SLICES 3
#define MAX_SLICES 99999
#define UID_MAX 64

/* SOP Classes (PS3.4 Annex B) and other UIDs of PS3.6 Annex A. */
#define UID_CT_IMAGE "1.2.840.10008.5.1.4.1.1.2"
#define UID_MR_IMAGE "1.2.840.10008.5.1.4.1.1.4"
#define UID_US_IMAGE "1.2.840.10008.5.1.4.1.1.6.1"
#define UID_SC_IMAGE "1.2.840.10008.5.1.4.1.1.7"
#define UID_STUDY_REF "1.2.840.10008.3.1.2.3.1" /* Detached Study Management (retired), as real files cite studies */

#define T(g, e) MV_TAG(0x##g, 0x##e)

/* ---- Deterministic numbers ------------------------------------------------------- */

/* SplitMix64 (Steele, Lea, Flood 2014): a good 64-bit mixer, enough for test data. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t hash_label(const char *label)
{
    uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a */

    for (; *label != '\0'; label++)
        h = (h ^ (unsigned char)*label) * 0x100000001B3ull;
    return h;
}

/* A small generator for pixel noise; state advanced by mix64. */
typedef struct Rng {
    uint64_t state;
} Rng;

static uint32_t rng_next(Rng *rng)
{
    rng->state = mix64(rng->state);
    return (uint32_t)(rng->state >> 32);
}

/* Writes "2.25.<decimal>" into out: the 128-bit number is derived from seed, label and
 * index only, so the same arguments give the same UID on every run and machine. Its bits
 * are shaped as a version 4 UUID (PS3.5 B.2, ITU-T X.667), so the decimal has no leading
 * zero and at most 39 digits: the UID is at most 44 characters. */
static void make_uid(uint64_t seed, const char *label, unsigned index, char out[UID_MAX + 1])
{
    uint64_t hi = mix64(seed ^ hash_label(label) ^ mix64(index));
    uint64_t lo = mix64(hi ^ 0x6D65647665696Cull);
    uint32_t limb[4];
    char digits[40];
    size_t n = 0;

    hi = (hi & ~0xF000ull) | 0x4000ull;                  /* version 4 */
    lo = (lo & ~(3ull << 62)) | (2ull << 62);            /* variant 10 */
    limb[0] = (uint32_t)(hi >> 32);
    limb[1] = (uint32_t)hi;
    limb[2] = (uint32_t)(lo >> 32);
    limb[3] = (uint32_t)lo;
    while (limb[0] | limb[1] | limb[2] | limb[3]) {
        uint64_t rem = 0;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = (rem << 32) | limb[i];
            limb[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
        }
        digits[n++] = (char)('0' + rem);
    }
    memcpy(out, "2.25.", 5);
    for (size_t i = 0; i < n; i++)
        out[5 + i] = digits[n - 1 - i];
    out[5 + n] = '\0';
}

/* ---- Building datasets with a sticky error -------------------------------------- */

/* Every setter below does nothing once an earlier one failed, so a function can set a
 * whole module and check b->st once at the end. b->err names the first failure. */
typedef struct Build {
    MvStatus st;
    MvError err;
} Build;

static void set_str(Build *b, MvDataset *ds, uint32_t tag, const char *value)
{
    if (b->st == MV_OK)
        b->st = mv_dataset_set_string(ds, tag, MV_VR_NONE, value, &b->err);
}

/* For tags outside the public dictionary (private data elements), with an explicit VR. */
static void set_str_vr(Build *b, MvDataset *ds, uint32_t tag, MvVr vr, const char *value)
{
    if (b->st == MV_OK)
        b->st = mv_dataset_set_string(ds, tag, vr, value, &b->err);
}

static void set_raw(Build *b, MvDataset *ds, uint32_t tag, MvVr vr, const void *value, size_t len)
{
    if (b->st == MV_OK)
        b->st = mv_dataset_set_bytes(ds, tag, vr, value, len, &b->err);
}

static void set_us(Build *b, MvDataset *ds, uint32_t tag, unsigned value)
{
    if (b->st == MV_OK)
        b->st = mv_dataset_set_uint(ds, tag, MV_VR_US, value, &b->err);
}

static void set_is(Build *b, MvDataset *ds, uint32_t tag, unsigned value)
{
    if (b->st == MV_OK)
        b->st = mv_dataset_set_uint(ds, tag, MV_VR_IS, value, &b->err);
}

/* Makes tag a sequence of n_items new empty items and stores them in items[]. The items
 * are owned by the dataset; the sequence element itself is not returned because setting
 * another element of ds may move it. */
static void set_seq(Build *b, MvDataset *ds, uint32_t tag, size_t n_items, MvDataset **items)
{
    MvElement *seq = NULL;

    for (size_t i = 0; i < n_items; i++)
        items[i] = NULL;
    if (b->st == MV_OK)
        b->st = mv_dataset_set_sequence(ds, tag, &seq, &b->err);
    for (size_t i = 0; i < n_items && b->st == MV_OK; i++)
        b->st = mv_element_insert_item(seq, MV_APPEND, &items[i], &b->err);
}

/* ---- The people, places and studies (all fake) ---------------------------------- */

typedef struct Patient {
    const char *key;        /* for UIDs and file names */
    const char *name;       /* PN, ASCII */
    const char *id;
    const char *birth_date;
    const char *sex;
    const char *age;
    const char *weight;
    const char *study_date;
    const char *study_time;
    const char *accession;
} Patient;

static const Patient ALICE = {"alice", "DEMO^ALICE", "DEMO-0001", "19610315", "F", "063Y", "61",
                              "20240315", "101500", "ACC-0001"};
static const Patient BOB = {"bob", "TEST^BOB^Q", "DEMO-0002", "19850707", "M", "038Y", "82",
                            "20240316", "140200", "ACC-0002"};
/* MÜLLER^JÜRGEN: the name is set per file, in ISO 8859-1 or in UTF-8. */
static const Patient JURGEN = {"juergen", NULL, "DEMO-0003", "19480229", "M", "076Y", "70",
                               "20240317", "083000", "ACC-0003"};

#define INSTITUTION "Example General Hospital"
#define ADDRESS "1 Example Street, Testville"
#define PHONE "555-0100"
#define PHYSICIAN "FAKE^DOCTOR"
/* A description that names the patient in free text (LO: at most 64 characters). */
#define ALICE_STUDY "CT HEAD follow-up: Alice Demo (DEMO^ALICE), headaches"

typedef struct Gen {
    const char *outdir;
    uint64_t seed;
    unsigned n_slices;
} Gen;

static void uid(const Gen *g, const char *label, unsigned index, char out[UID_MAX + 1])
{
    make_uid(g->seed, label, index, out);
}

/* Patient module (PS3.3 C.7.1.1) and the Patient Study module's characteristics, with the
 * identifying extras a real hospital file carries. name may be NULL when the caller sets
 * (0010,0010) itself in another character set. */
static void put_patient(Build *b, MvDataset *ds, const Patient *p)
{
    MvDataset *other[1];

    if (p->name != NULL)
        set_str(b, ds, T(0010, 0010), p->name);
    set_str(b, ds, T(0010, 0020), p->id);
    set_str(b, ds, T(0010, 0021), "EXAMPLE GENERAL");              /* IssuerOfPatientID */
    set_str(b, ds, T(0010, 0030), p->birth_date);
    set_str(b, ds, T(0010, 0040), p->sex);
    set_str(b, ds, T(0010, 1010), p->age);
    set_str(b, ds, T(0010, 1030), p->weight);
    set_str(b, ds, T(0010, 1040), ADDRESS);                        /* PatientAddress */
    set_str(b, ds, T(0010, 2154), PHONE);                          /* PatientTelephoneNumbers */
    /* Other Patient IDs Sequence: an identifier one level down. */
    set_seq(b, ds, T(0010, 1002), 1, other);
    if (b->st == MV_OK) {
        char old_id[32];
        snprintf(old_id, sizeof old_id, "OLD-%s", p->id);
        set_str(b, other[0], T(0010, 0020), old_id);
        set_str(b, other[0], T(0010, 0021), "FAKE CLINIC");
        set_str(b, other[0], T(0010, 0022), "TEXT");               /* TypeOfPatientID */
    }
}

/* General Study (C.7.2.1). description may name the patient: a case for clean-descriptors. */
static void put_study(Build *b, const Gen *g, MvDataset *ds, const Patient *p, const char *description)
{
    char study_uid[UID_MAX + 1];

    uid(g, p->key, 0, study_uid);
    set_str(b, ds, T(0020, 000D), study_uid);
    set_str(b, ds, T(0008, 0020), p->study_date);
    set_str(b, ds, T(0008, 0030), p->study_time);
    set_str(b, ds, T(0008, 0090), PHYSICIAN);                      /* ReferringPhysicianName */
    set_str(b, ds, T(0020, 0010), "S1");                           /* StudyID */
    set_str(b, ds, T(0008, 0050), p->accession);
    if (description != NULL)
        set_str(b, ds, T(0008, 1030), description);
}

/* General Series (C.7.3.1) and General Equipment (C.7.5.1). */
static void put_series(Build *b, const Gen *g, MvDataset *ds, const Patient *p, const char *modality,
                       unsigned number, const char *description, const char *station)
{
    char series_uid[UID_MAX + 1], label[64];

    snprintf(label, sizeof label, "%s-series", p->key);
    uid(g, label, number, series_uid);
    set_str(b, ds, T(0008, 0060), modality);
    set_str(b, ds, T(0020, 000E), series_uid);
    set_is(b, ds, T(0020, 0011), number);
    set_str(b, ds, T(0008, 0021), p->study_date);                  /* SeriesDate */
    set_str(b, ds, T(0008, 0031), p->study_time);                  /* SeriesTime */
    set_str(b, ds, T(0008, 103E), description);
    set_str(b, ds, T(0008, 1050), PHYSICIAN);                      /* PerformingPhysicianName */
    set_str(b, ds, T(0008, 1070), "FAKE^OPERATOR");                /* OperatorsName */
    set_str(b, ds, T(0008, 0070), "medveil synthetic");            /* Manufacturer */
    set_str(b, ds, T(0008, 0080), INSTITUTION);
    set_str(b, ds, T(0008, 0081), "2 Example Street, Testville");  /* InstitutionAddress */
    set_str(b, ds, T(0008, 1010), station);                        /* StationName */
    set_str(b, ds, T(0008, 1040), "Radiology");                    /* InstitutionalDepartmentName */
    set_str(b, ds, T(0008, 1090), "mksynth");                      /* ManufacturerModelName */
    set_str(b, ds, T(0018, 1000), "SN-0000-FAKE");                 /* DeviceSerialNumber */
    set_str(b, ds, T(0018, 1020), mv_version());                   /* SoftwareVersions */
}

/* SOP Common (C.12.1) and the dates and numbers of General Image (C.7.6.1). charset is the
 * Specific Character Set value, NULL for the default repertoire. */
static void put_instance(Build *b, const Gen *g, MvDataset *ds, const Patient *p, const char *sop_class,
                         const char *label, unsigned number, const char *charset)
{
    char sop_uid[UID_MAX + 1];

    uid(g, label, number, sop_uid);
    if (charset != NULL)
        set_str(b, ds, MV_TAG_SPECIFIC_CHARSET, charset);
    set_str(b, ds, T(0008, 0016), sop_class);
    set_str(b, ds, T(0008, 0018), sop_uid);
    set_str(b, ds, T(0008, 0012), p->study_date);                  /* InstanceCreationDate */
    set_str(b, ds, T(0008, 0013), p->study_time);                  /* InstanceCreationTime */
    set_str(b, ds, T(0008, 0023), p->study_date);                  /* ContentDate */
    set_str(b, ds, T(0008, 0033), p->study_time);                  /* ContentTime */
    set_is(b, ds, T(0020, 0013), number);                          /* InstanceNumber */
}

/* Image Pixel module (C.7.6.3) for an uncompressed single frame; the pixel bytes are
 * little endian, as the dataset is. */
static void put_pixels(Build *b, MvDataset *ds, unsigned rows, unsigned cols, unsigned samples,
                       unsigned bits_allocated, unsigned bits_stored, const char *photometric,
                       const uint8_t *pixels, size_t len)
{
    set_us(b, ds, T(0028, 0002), samples);
    set_str(b, ds, T(0028, 0004), photometric);
    if (samples > 1)
        set_us(b, ds, T(0028, 0006), 0);                           /* PlanarConfiguration: RGBRGB */
    set_us(b, ds, T(0028, 0010), rows);
    set_us(b, ds, T(0028, 0011), cols);
    set_us(b, ds, T(0028, 0100), bits_allocated);
    set_us(b, ds, T(0028, 0101), bits_stored);
    set_us(b, ds, T(0028, 0102), bits_stored - 1);                 /* HighBit */
    set_us(b, ds, T(0028, 0103), 0);                               /* PixelRepresentation: unsigned */
    set_raw(b, ds, MV_TAG_PIXEL_DATA, bits_allocated > 8 ? MV_VR_OW : MV_VR_OB, pixels, len);
}

/* Private block "MEDVEIL DEMO" in group 0009 (PS3.5 7.8.1): creator (0009,0010), then
 * (0009,1001) an ID-like LO that retain-safe-private must not keep, (0009,1002) a date. */
static void put_private(Build *b, MvDataset *ds, const Patient *p)
{
    char value[64];

    snprintf(value, sizeof value, "%s/%s", p->id, p->accession);
    set_str_vr(b, ds, T(0009, 0010), MV_VR_LO, "MEDVEIL DEMO");
    set_str_vr(b, ds, T(0009, 1001), MV_VR_LO, value);
    set_str_vr(b, ds, T(0009, 1002), MV_VR_DA, p->study_date);
}

/* ---- Pixels ------------------------------------------------------------------------ */

static void put_le16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* A head-like CT phantom in Hounsfield units: air, a skull ring, brain with a left-right
 * gradient and a small lesion whose size changes with the slice. Stored value = HU + 1024
 * (Rescale Intercept -1024), 12 bits. */
static void ct_pixels(uint8_t *out, unsigned n, unsigned slice, uint64_t seed)
{
    int cx = (int)n / 2 + (int)(seed % 5) - 2, cy = (int)n / 2 + (int)((seed / 5) % 5) - 2;
    int outer = (int)n * 13 / 32, inner = outer - 3, lesion = 2 + (int)slice % 4;

    for (unsigned y = 0; y < n; y++) {
        for (unsigned x = 0; x < n; x++) {
            int dx = (int)x - cx, dy = (int)y - cy, r2 = dx * dx + dy * dy;
            int lx = dx - outer / 3, ly = dy + outer / 4;
            int hu;
            if (r2 > outer * outer)
                hu = -1000;
            else if (r2 > inner * inner)
                hu = 800;
            else if (lx * lx + ly * ly <= lesion * lesion)
                hu = 90;
            else
                hu = 30 + dx / 2;
            put_le16(out + 2 * ((size_t)y * n + x), (unsigned)(hu + 1024));
        }
    }
}

/* An MR-like slice: a bright ellipse with a smooth falloff and a dark inner ellipse. */
static void mr_pixels(uint8_t *out, unsigned n)
{
    for (unsigned y = 0; y < n; y++) {
        for (unsigned x = 0; x < n; x++) {
            long dx = (long)x - (long)n / 2, dy = (long)y - (long)n / 2;
            long e = (dx * dx * 100) / ((long)n * n / 8) + (dy * dy * 100) / ((long)n * n / 5);
            long v = e >= 100 ? 0 : 3000 - e * 20;
            if ((dx * dx * 100) / ((long)n * n / 40) + (dy * dy * 100) / ((long)n * n / 20) < 100)
                v = 600;
            put_le16(out + 2 * ((size_t)y * n + x), (unsigned)v);
        }
    }
}

/* An 8-bit test card: diagonal gradient, a checker square and a circle. */
static void sc_pixels(uint8_t *out, unsigned n)
{
    for (unsigned y = 0; y < n; y++) {
        for (unsigned x = 0; x < n; x++) {
            int dx = (int)x - (int)n / 2, dy = (int)y - (int)n / 2;
            unsigned v = (x + y) * 255 / (2 * n - 2);
            if (x >= n / 8 && x < n / 3 && y >= n / 8 && y < n / 3)
                v = ((x / 4 + y / 4) & 1) ? 255 : 0;
            if (dx * dx + dy * dy < (int)(n * n / 36))
                v = 255 - v;
            out[(size_t)y * n + x] = (uint8_t)v;
        }
    }
}

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column: enough for burned-in text. */
typedef struct Glyph {
    char c;
    uint8_t rows[7];
} Glyph;

static const Glyph FONT[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}}, {'^', {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00}},
    {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
};

/* Draws text (characters without a glyph are blanks) into an RGB image of width w,
 * top-left corner at (x0, y0), clipped to the image. */
static void draw_text(uint8_t *rgb, unsigned w, unsigned h, unsigned x0, unsigned y0, const char *text,
                      const uint8_t color[3])
{
    for (unsigned i = 0; text[i] != '\0'; i++) {
        const Glyph *glyph = NULL;
        for (size_t k = 0; k < sizeof FONT / sizeof FONT[0]; k++)
            if (FONT[k].c == text[i])
                glyph = &FONT[k];
        if (glyph == NULL)
            continue;
        for (unsigned row = 0; row < 7; row++) {
            for (unsigned col = 0; col < 5; col++) {
                unsigned x = x0 + 6 * i + col, y = y0 + row;
                if (!(glyph->rows[row] & (0x10u >> col)) || x >= w || y >= h)
                    continue;
                memcpy(rgb + 3 * ((size_t)y * w + x), color, 3);
            }
        }
    }
}

/* An ultrasound-like RGB frame: a speckled sector on black, a colour bar, and burned-in
 * text with the patient's name and ID, as real scanners put in the image. */
static void us_pixels(uint8_t *rgb, unsigned w, unsigned h, const Patient *p, uint64_t seed)
{
    static const uint8_t text_color[3] = {230, 230, 160};
    Rng rng = {seed ^ 0x5553ull};
    long apex_x = (long)w / 2, apex_y = 24;
    char line[64];

    memset(rgb, 0, (size_t)w * h * 3);
    for (unsigned y = 0; y < h; y++) {
        for (unsigned x = 0; x < w; x++) {
            long dx = (long)x - apex_x, dy = (long)y - apex_y;
            long r2 = dx * dx + dy * dy;
            uint8_t *px = rgb + 3 * ((size_t)y * w + x);
            if (dy > 0 && r2 < (long)(h - 30) * (long)(h - 30) && labs(dx) * 10 < dy * 8) {
                unsigned speckle = rng_next(&rng) % 90;
                unsigned depth_gain = 160 - (unsigned)(dy * 100 / (long)h);
                unsigned v = speckle + depth_gain / 2;
                /* A dark, round "cyst" in the middle of the sector. */
                long cx = dx, cy = dy - (long)h / 2;
                if (cx * cx + cy * cy < 144)
                    v /= 6;
                px[0] = px[1] = px[2] = (uint8_t)(v > 255 ? 255 : v);
            }
        }
    }
    for (unsigned y = 40; y < h - 20; y++) {
        unsigned level = (h - 20 - y) * 255 / (h - 60);
        for (unsigned x = w - 12; x < w - 6; x++) {
            uint8_t *px = rgb + 3 * ((size_t)y * w + x);
            px[0] = px[1] = px[2] = (uint8_t)level;
        }
    }
    snprintf(line, sizeof line, "%s  %s", p->name, p->id);
    draw_text(rgb, w, h, 4, 4, line, text_color);
    draw_text(rgb, w, h, 4, 13, "EXAMPLE GENERAL HOSPITAL", text_color);
    draw_text(rgb, w, h, 4, h - 10, "2024-03-16 14:02:11", text_color);
}

/* ---- Files ---------------------------------------------------------------------- */

/* Writes file to OUTDIR/name and prints one line about it. Returns 0, or 1 after
 * printing the error (which names the path and never a value). */
static int write_file(const Gen *g, MvFile *file, const char *name, const char *syntax, const char *what)
{
    char path[4096];
    MvWriteOptions opts;
    MvError err;

    if (snprintf(path, sizeof path, "%s/%s", g->outdir, name) >= (int)sizeof path) {
        fprintf(stderr, "mksynth: %s/%s: path too long\n", g->outdir, name);
        return 1;
    }
    mv_write_options_init(&opts);
    opts.transfer_syntax = syntax;
    opts.flags = MV_WRITE_NO_SYNC; /* regenerable test data; still written to a temporary name and renamed */
    if (mv_file_write(file, path, &opts, &err) != MV_OK) {
        fprintf(stderr, "mksynth: cannot write: %s\n", err.message);
        return 1;
    }
    printf("wrote %s  (%s)\n", path, what);
    return 0;
}

/* Reports a failed build; the message names a tag, never a value. Returns 1. */
static int build_failed(const Build *b, const char *name)
{
    fprintf(stderr, "mksynth: %s: cannot build dataset: %s (%s)\n", name, b->err.message, mv_status_name(b->st));
    return 1;
}

/* CT series of DEMO^ALICE: explicit VR LE, 64x64 16-bit MONOCHROME2, a private block and
 * a StudyDescription that names the patient. One file per slice. */
static int write_ct_series(const Gen *g)
{
    enum { N = 64 };
    static uint8_t pixels[N * N * 2];
    int failed = 0, width = 3;

    /* Numbers of equal width, so that the slices sort in order by name. */
    for (unsigned n = g->n_slices; n >= 1000; n /= 10)
        width++;
    for (unsigned i = 1; i <= g->n_slices && !failed; i++) {
        Build b = {0};
        MvFile *file = NULL;
        MvDataset *ds;
        char name[64], for_uid[UID_MAX + 1], text[64];
        double z = -60.0 + 5.0 * (i - 1);

        snprintf(name, sizeof name, "ct-alice-%0*u.dcm", width, i);
        if (mv_file_new(&file) != MV_OK) {
            fprintf(stderr, "mksynth: out of memory\n");
            return 1;
        }
        ds = mv_file_dataset(file);
        put_instance(&b, g, ds, &ALICE, UID_CT_IMAGE, "alice-ct", i, "ISO_IR 100");
        put_patient(&b, ds, &ALICE);
        put_study(&b, g, ds, &ALICE, ALICE_STUDY);
        put_series(&b, g, ds, &ALICE, "CT", 1, "Head 5mm", "DEMO-CT-01");
        set_str(&b, ds, T(0008, 0008), "ORIGINAL\\PRIMARY\\AXIAL");  /* ImageType */
        set_str(&b, ds, T(0008, 0022), ALICE.study_date);             /* AcquisitionDate */
        set_str(&b, ds, T(0008, 0032), ALICE.study_time);             /* AcquisitionTime */
        set_str(&b, ds, T(0018, 0015), "HEAD");                       /* BodyPartExamined */
        set_str(&b, ds, T(0018, 0050), "5");                          /* SliceThickness */
        set_str(&b, ds, T(0018, 0060), "120");                        /* KVP */
        set_str(&b, ds, T(0018, 5100), "HFS");                        /* PatientPosition */
        set_is(&b, ds, T(0020, 0012), 1);                             /* AcquisitionNumber */
        uid(g, "alice-for", 0, for_uid);
        set_str(&b, ds, T(0020, 0052), for_uid);                      /* FrameOfReferenceUID */
        set_str(&b, ds, T(0020, 1040), "");                           /* PositionReferenceIndicator */
        snprintf(text, sizeof text, "-100\\-100\\%.1f", z);
        set_str(&b, ds, T(0020, 0032), text);                         /* ImagePositionPatient */
        set_str(&b, ds, T(0020, 0037), "1\\0\\0\\0\\1\\0");          /* ImageOrientationPatient */
        snprintf(text, sizeof text, "%.1f", z);
        set_str(&b, ds, T(0020, 1041), text);                         /* SliceLocation */
        set_str(&b, ds, T(0028, 0030), "3.125\\3.125");              /* PixelSpacing */
        set_str(&b, ds, T(0028, 1050), "40");                         /* WindowCenter */
        set_str(&b, ds, T(0028, 1051), "400");                        /* WindowWidth */
        set_str(&b, ds, T(0028, 1052), "-1024");                      /* RescaleIntercept */
        set_str(&b, ds, T(0028, 1053), "1");                          /* RescaleSlope */
        set_str(&b, ds, T(0028, 1054), "HU");                         /* RescaleType */
        put_private(&b, ds, &ALICE);
        ct_pixels(pixels, N, i, g->seed);
        put_pixels(&b, ds, N, N, 1, 16, 12, "MONOCHROME2", pixels, sizeof pixels);
        if (b.st != MV_OK)
            failed = build_failed(&b, name);
        else
            failed = write_file(g, file, name, MV_UID_EXPLICIT_LE,
                                "CT, explicit VR LE, 64x64 16-bit, DEMO^ALICE, private block");
        mv_file_free(file);
    }
    return failed;
}

/* MR slice of TEST^BOB^Q in implicit VR LE (private elements then read back as UN). */
static int write_mr(const Gen *g)
{
    enum { N = 64 };
    static uint8_t pixels[N * N * 2];
    const char *name = "mr-bob-implicit.dcm";
    Build b = {0};
    MvFile *file = NULL;
    MvDataset *ds;
    char for_uid[UID_MAX + 1];
    int failed;

    if (mv_file_new(&file) != MV_OK) {
        fprintf(stderr, "mksynth: out of memory\n");
        return 1;
    }
    ds = mv_file_dataset(file);
    put_instance(&b, g, ds, &BOB, UID_MR_IMAGE, "bob-mr", 1, NULL);
    put_patient(&b, ds, &BOB);
    put_study(&b, g, ds, &BOB, "MR KNEE LEFT");
    put_series(&b, g, ds, &BOB, "MR", 1, "T1 SE sag", "DEMO-MR-01");
    set_str(&b, ds, T(0008, 0008), "ORIGINAL\\PRIMARY\\OTHER");
    set_str(&b, ds, T(0008, 0022), BOB.study_date);
    set_str(&b, ds, T(0008, 0032), BOB.study_time);
    set_str(&b, ds, T(0018, 0015), "KNEE");
    set_str(&b, ds, T(0018, 0020), "SE");                             /* ScanningSequence */
    set_str(&b, ds, T(0018, 0021), "NONE");                           /* SequenceVariant */
    set_str(&b, ds, T(0018, 0022), "");                               /* ScanOptions */
    set_str(&b, ds, T(0018, 0023), "2D");                             /* MRAcquisitionType */
    set_str(&b, ds, T(0018, 0050), "4");                              /* SliceThickness */
    set_str(&b, ds, T(0018, 0080), "500");                            /* RepetitionTime */
    set_str(&b, ds, T(0018, 0081), "15");                             /* EchoTime */
    set_is(&b, ds, T(0018, 0091), 1);                                 /* EchoTrainLength */
    set_str(&b, ds, T(0018, 0087), "1.5");                            /* MagneticFieldStrength */
    set_str(&b, ds, T(0018, 5100), "FFS");
    set_is(&b, ds, T(0020, 0012), 1);
    uid(g, "bob-for", 0, for_uid);
    set_str(&b, ds, T(0020, 0052), for_uid);
    set_str(&b, ds, T(0020, 1040), "");
    set_str(&b, ds, T(0020, 0032), "0\\-90\\-90");
    set_str(&b, ds, T(0020, 0037), "0\\1\\0\\0\\0\\-1");
    set_str(&b, ds, T(0020, 0060), "L");                              /* Laterality */
    set_str(&b, ds, T(0028, 0030), "2.8125\\2.8125");
    set_str(&b, ds, T(0028, 1050), "1500");
    set_str(&b, ds, T(0028, 1051), "3000");
    put_private(&b, ds, &BOB);
    mr_pixels(pixels, N);
    put_pixels(&b, ds, N, N, 1, 16, 12, "MONOCHROME2", pixels, sizeof pixels);
    failed = b.st != MV_OK ? build_failed(&b, name)
                           : write_file(g, file, name, MV_UID_IMPLICIT_LE,
                                        "MR, implicit VR LE, 64x64 16-bit, TEST^BOB^Q, private block");
    mv_file_free(file);
    return failed;
}

/* Ultrasound RGB frame of TEST^BOB^Q with burned-in name and ID (explicit VR LE). */
static int write_us(const Gen *g)
{
    enum { W = 192, H = 144 };
    static uint8_t pixels[W * H * 3];
    const char *name = "us-bob-rgb.dcm";
    Build b = {0};
    MvFile *file = NULL;
    MvDataset *ds;
    int failed;

    if (mv_file_new(&file) != MV_OK) {
        fprintf(stderr, "mksynth: out of memory\n");
        return 1;
    }
    ds = mv_file_dataset(file);
    put_instance(&b, g, ds, &BOB, UID_US_IMAGE, "bob-us", 1, NULL);
    put_patient(&b, ds, &BOB);
    put_study(&b, g, ds, &BOB, "MR KNEE LEFT");
    put_series(&b, g, ds, &BOB, "US", 2, "Knee effusion", "DEMO-US-01");
    set_str(&b, ds, T(0008, 0008), "ORIGINAL\\PRIMARY\\MUSCULOSKELETAL\\0001"); /* US: 2D imaging */
    set_str(&b, ds, T(0018, 0015), "KNEE");
    set_str(&b, ds, T(0020, 0060), "L");                              /* Laterality */
    set_str(&b, ds, T(0020, 0020), "");                               /* PatientOrientation */
    set_str(&b, ds, T(0028, 0301), "YES");                            /* BurnedInAnnotation */
    set_str(&b, ds, T(0028, 2110), "00");                             /* LossyImageCompression */
    us_pixels(pixels, W, H, &BOB, g->seed);
    put_pixels(&b, ds, H, W, 3, 8, 8, "RGB", pixels, sizeof pixels);
    failed = b.st != MV_OK ? build_failed(&b, name)
                           : write_file(g, file, name, MV_UID_EXPLICIT_LE,
                                        "US, explicit VR LE, 192x144 RGB 8-bit, burned-in name and ID");
    mv_file_free(file);
    return failed;
}

/* Secondary Capture of DEMO^ALICE full of references: Referenced Study Sequence,
 * Referenced Image Sequence pointing at the CT slices, and a Request Attributes Sequence
 * whose item holds a PN and a nested sequence (depth 2). */
static int write_sc_sequences(const Gen *g)
{
    enum { N = 64 };
    static uint8_t pixels[N * N];
    const char *name = "sc-alice-sequences.dcm";
    Build b = {0};
    MvFile *file = NULL;
    MvDataset *ds, *study_ref[1], *image_ref[2], *request[1], *nested[1];
    char text[UID_MAX + 1];
    unsigned n_refs;
    int failed;

    if (mv_file_new(&file) != MV_OK) {
        fprintf(stderr, "mksynth: out of memory\n");
        return 1;
    }
    ds = mv_file_dataset(file);
    put_instance(&b, g, ds, &ALICE, UID_SC_IMAGE, "alice-sc", 1, NULL);
    put_patient(&b, ds, &ALICE);
    put_study(&b, g, ds, &ALICE, ALICE_STUDY);
    put_series(&b, g, ds, &ALICE, "OT", 90, "Key images", "DEMO-WS-01");
    set_str(&b, ds, T(0008, 0064), "SYN");                            /* ConversionType: synthetic */
    set_str(&b, ds, T(0008, 0008), "DERIVED\\SECONDARY");
    set_str(&b, ds, T(0018, 0015), "HEAD");                           /* BodyPartExamined */
    set_str(&b, ds, T(0020, 0020), "");                               /* PatientOrientation */
    set_str(&b, ds, T(0020, 4000), "Key image for DEMO-0001, discussed with FAKE^DOCTOR"); /* ImageComments */

    /* (0008,1110) Referenced Study Sequence: a prior study of the same patient. */
    set_seq(&b, ds, T(0008, 1110), 1, study_ref);
    if (b.st == MV_OK) {
        set_str(&b, study_ref[0], T(0008, 1150), UID_STUDY_REF);
        uid(g, "alice-prior", 0, text);
        set_str(&b, study_ref[0], T(0008, 1155), text);
    }
    /* (0008,1140) Referenced Image Sequence: the first two CT slices (or the only one). */
    n_refs = g->n_slices < 2 ? g->n_slices : 2;
    set_seq(&b, ds, T(0008, 1140), n_refs, image_ref);
    for (unsigned i = 0; i < n_refs && b.st == MV_OK; i++) {
        set_str(&b, image_ref[i], T(0008, 1150), UID_CT_IMAGE);
        uid(g, "alice-ct", i + 1, text);
        set_str(&b, image_ref[i], T(0008, 1155), text);
    }
    /* (0040,0275) Request Attributes Sequence: IDs, a person's name and, one level down,
     * the study the request was made in. */
    set_seq(&b, ds, T(0040, 0275), 1, request);
    if (b.st == MV_OK) {
        set_str(&b, request[0], T(0040, 1001), "RP-0001");            /* RequestedProcedureID */
        set_str(&b, request[0], T(0040, 0009), "SPS-0001");           /* ScheduledProcedureStepID */
        set_str(&b, request[0], T(0032, 1060), "CT HEAD");            /* RequestedProcedureDescription */
        set_str(&b, request[0], T(0032, 1032), PHYSICIAN);            /* RequestingPhysician (PN) */
        set_str(&b, request[0], T(0008, 0050), ALICE.accession);
        set_seq(&b, request[0], T(0008, 1110), 1, nested);
        if (b.st == MV_OK) {
            set_str(&b, nested[0], T(0008, 1150), UID_STUDY_REF);
            uid(g, ALICE.key, 0, text);
            set_str(&b, nested[0], T(0008, 1155), text);
        }
    }
    sc_pixels(pixels, N);
    put_pixels(&b, ds, N, N, 1, 8, 8, "MONOCHROME2", pixels, sizeof pixels);
    failed = b.st != MV_OK ? build_failed(&b, name)
                           : write_file(g, file, name, MV_UID_EXPLICIT_LE,
                                        "SC, explicit VR LE, nested sequences with a PN at depth 1");
    mv_file_free(file);
    return failed;
}

/* Secondary Capture of MÜLLER^JÜRGEN, once in ISO 8859-1 (ISO_IR 100, raw bytes) and once
 * in UTF-8 (ISO_IR 192, set as text), with the name in a description too. */
static int write_sc_charset(const Gen *g, int utf8)
{
    enum { N = 32 };
    static uint8_t pixels[N * N];
    /* "MÜLLER^JÜRGEN" and a description naming him: Ü is 0xDC in ISO 8859-1. */
    static const char latin1_name[] = "M\xDCLLER^J\xDCRGEN";
    static const char latin1_desc[] = "Kontrolle Herr M\xFCller, J\xFCrgen";
    const char *name = utf8 ? "sc-mueller-utf8.dcm" : "sc-mueller-latin1.dcm";
    Build b = {0};
    MvFile *file = NULL;
    MvDataset *ds;
    int failed;

    if (mv_file_new(&file) != MV_OK) {
        fprintf(stderr, "mksynth: out of memory\n");
        return 1;
    }
    ds = mv_file_dataset(file);
    put_instance(&b, g, ds, &JURGEN, UID_SC_IMAGE, "juergen-sc", utf8 ? 2 : 1, utf8 ? "ISO_IR 192" : "ISO_IR 100");
    put_patient(&b, ds, &JURGEN);
    if (utf8) {
        set_str(&b, ds, T(0010, 0010), "MÜLLER^JÜRGEN");
        put_study(&b, g, ds, &JURGEN, "Kontrolle Herr Müller, Jürgen");
    } else {
        set_raw(&b, ds, T(0010, 0010), MV_VR_PN, latin1_name, sizeof latin1_name - 1);
        put_study(&b, g, ds, &JURGEN, NULL);
        set_raw(&b, ds, T(0008, 1030), MV_VR_LO, latin1_desc, sizeof latin1_desc - 1);
    }
    put_series(&b, g, ds, &JURGEN, "OT", utf8 ? 2 : 1, utf8 ? "Scan UTF-8" : "Scan Latin-1", "DEMO-WS-02");
    set_str(&b, ds, T(0008, 0064), "SYN");
    set_str(&b, ds, T(0018, 0015), "CHEST");
    set_str(&b, ds, T(0020, 0020), "");
    sc_pixels(pixels, N);
    put_pixels(&b, ds, N, N, 1, 8, 8, "MONOCHROME2", pixels, sizeof pixels);
    failed = b.st != MV_OK ? build_failed(&b, name)
                           : write_file(g, file, name, MV_UID_EXPLICIT_LE,
                                        utf8 ? "SC, ISO_IR 192 (UTF-8) name and description"
                                             : "SC, ISO_IR 100 (Latin-1) name and description");
    mv_file_free(file);
    return failed;
}

/* ---- Command line --------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mksynth OUTDIR [--count N] [--seed S]\n"
            "\n"
            "Writes synthetic DICOM files with obviously fake patients into OUTDIR (created if\n"
            "missing): a CT series of N slices (explicit VR LE, 16-bit), an MR slice (implicit\n"
            "VR LE), an RGB ultrasound frame with burned-in text, a Secondary Capture with nested\n"
            "sequences, and the same Latin-1 name in ISO_IR 100 and in ISO_IR 192 files.\n"
            "\n"
            "  -n, --count N   number of CT slices, 1 to %d (%d)\n"
            "  -s, --seed S    unsigned 64-bit seed for UIDs and pixel noise (1); the same\n"
            "                  seed gives the same files\n"
            "  -h, --help      show this help\n"
            "\n"
            "Exit status: 0 every file written; 1 a file could not be written; 2 usage error.\n",
            MAX_SLICES, DEFAULT_SLICES);
}

/* Prints "mksynth: MESSAGE" and a hint to stderr; returns EXIT_USAGE. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("mksynth: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'mksynth --help' for more information.\n", stderr);
    return EXIT_USAGE;
}

/* Parses a decimal unsigned 64-bit number, digits only; 0 on success. */
static int parse_u64(const char *text, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (text == NULL || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Creates dir and its missing parents (mode 0777 before umask); 0 on success. */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof path)
        return -1;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return -1;
        path[i] = i < n ? '/' : '\0';
    }
    {
        struct stat sb;
        if (stat(dir, &sb) != 0)
            return -1;
        if (!S_ISDIR(sb.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
        return 0;
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"count", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    Gen g = {NULL, 1, DEFAULT_SLICES};
    uint64_t value;
    int c, failed = 0;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (parse_u64(optarg, &value) != 0 || value < 1 || value > MAX_SLICES)
                return usage_error("--count needs a number from 1 to %d, not '%s'", MAX_SLICES, optarg);
            g.n_slices = (unsigned)value;
            break;
        case 's':
            if (parse_u64(optarg, &value) != 0)
                return usage_error("--seed needs an unsigned decimal number, not '%s'", optarg);
            g.seed = value;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return usage_error("needs exactly one OUTDIR, not %d arguments", argc - optind);
    g.outdir = argv[optind];
    if (make_dirs(g.outdir) != 0) {
        fprintf(stderr, "mksynth: %s: cannot create folder: %s\n", g.outdir, strerror(errno));
        return EXIT_WRITE_FAILED;
    }
    failed |= write_ct_series(&g);
    failed |= write_mr(&g);
    failed |= write_us(&g);
    failed |= write_sc_sequences(&g);
    failed |= write_sc_charset(&g, 0);
    failed |= write_sc_charset(&g, 1);
    if (fflush(stdout) != 0)
        failed = 1;
    return failed ? EXIT_WRITE_FAILED : 0;
}
