/* Private model of burned-in text cleaning (src/pixel/ rules, identifiers, OCR, masks,
 * rendering, PNG, review): shared by the files of the pixel-clean part of the pixel
 * module only. The public face is include/medveil/pixel_clean.h. */
#ifndef MV_PIXEL_CLEAN_INT_H
#define MV_PIXEL_CLEAN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/dicom.h"
#include "medveil/pixel_clean.h"

/* ---- Rules (rules.c) ------------------------------------------------------------------- */

enum { MV_PX_EQ = 1, MV_PX_NE, MV_PX_GLOB, MV_PX_CONTAINS, MV_PX_ABSENT, MV_PX_PRESENT, MV_PX_GE, MV_PX_LE };

typedef struct MvPxCond {
    uint32_t tag;
    int op;
    char *value;
    double number; /* for >= and <= */
} MvPxCond;

typedef struct MvPxCoord {
    double value;
    int percent; /* value is a percentage of the width (x, w) or height (y, h) */
} MvPxCoord;

typedef struct MvPxRegion {
    MvPxCoord x, y, w, h;
} MvPxRegion;

typedef struct MvPxRule {
    char *name;
    char *file;
    int line;
    MvPxCond *conds;
    size_t n_conds;
    MvPxRegion *rects;
    size_t n_rects;
    int quarantine, scan, skip;
    char *reason;
} MvPxRule;

struct MvPixelRules {
    MvPxRule *rules;
    size_t n_rules;
};

/* A rectangle in pixels, [x0,x1) x [y0,y1). */
typedef struct MvPxBox {
    int x0, y0, x1, y1;
} MvPxBox;

int mv__rule_matches(const MvPxRule *rule, const MvDataset *ds);
/* The region in pixels of an image of width x height, clipped to it. */
MvPxBox mv__region_box(const MvPxRegion *r, int width, int height);

/* ---- Identifiers of one file and text matching (match.c) -------------------------------- */

typedef struct MvPxIds MvPxIds;

/* Kinds of identifier, for reasons and the review (never the value). */
enum { MV_ID_NAME = 1, MV_ID_PATIENT_ID, MV_ID_OTHER_ID, MV_ID_ACCESSION, MV_ID_DATE, MV_ID_PATTERN, MV_ID_TEXT };
const char *mv__id_kind_name(int kind);

/* Collects the identifiers of ds (patient name parts, IDs, accession, dates in the usual
 * written forms) in the canonical form of mv__canon. *out is freed with mv__ids_px_free. */
MvStatus mv__pxids_collect(const MvDataset *ds, MvPxIds **out);
void mv__pxids_free(MvPxIds *ids);
size_t mv__pxids_count(const MvPxIds *ids);
/* Adds one identifier (tests, synthetic names). */
MvStatus mv__pxids_add(MvPxIds *ids, const char *text, int kind);

/* Canonical form for comparison: lower case, letters and digits only, OCR confusions
 * folded (o->0, i/l/|->1, s->5, z->2, b->8). out has room for strlen(in)+1. */
void mv__canon(const char *in, char *out);

/* An OCR word with its box and confidence; kind is set by mv__match_words. */
typedef struct MvPxWord {
    char *text;
    MvPxBox box;
    float conf;
    int line;   /* text line index within one OCR pass */
    int kind;   /* 0: harmless; else MV_ID_* */
} MvPxWord;

/* Marks every word that is, or is part of a run of words on one line that spells, an
 * identifier of ids (exact canonical match; edit distance 1 for tokens of 6+ characters,
 * 2 for 10+), or an identifier-shaped pattern (date shapes, runs of 6+ digits). With
 * all_text every word of at least two letters or digits is marked MV_ID_TEXT. Returns the
 * number of words marked. */
size_t mv__match_words(const MvPxIds *ids, MvPxWord *words, size_t n_words, int all_text);

/* ---- OCR (ocr.c) ------------------------------------------------------------------------- */

/* Runs Tesseract on an 8-bit grey image (stride bytes per row) and appends the words
 * found (boxes in the image's coordinates) to *words (*n, *cap grown with realloc; the
 * caller frees each text and the array). scale > 1 enlarges the image before OCR. */
MvStatus mv__ocr_gray(const uint8_t *gray, int width, int height, int stride, int scale, MvPxWord **words,
                      size_t *n, size_t *cap, MvError *err);
void mv__words_free(MvPxWord *words, size_t n);

/* ---- PNG (png.c) ------------------------------------------------------------------------- */

/* Encodes an 8-bit grey (channels 1) or RGB (3) image as PNG in memory (*out malloc'd). */
MvStatus mv__png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *len,
                        MvError *err);
MvStatus mv__png_write_file(const char *path, const uint8_t *pixels, int width, int height, int channels,
                            MvError *err);

#endif
