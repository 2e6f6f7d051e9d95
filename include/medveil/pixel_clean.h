/* Pixel privacy, cleaning side: region rules, OCR of burned-in text, masks, verification,
 * the recognizable-visual-features check, previews and the reviewer's report data
 * (docs/pixel-clean.md). Decoding and encoding pixel data is medveil/pixel.h's. */
#ifndef MEDVEIL_PIXEL_CLEAN_H
#define MEDVEIL_PIXEL_CLEAN_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/dicom.h"
#include "medveil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Region rules (format in docs/pixel-clean.md) ----------------------------------- */

typedef struct MvPixelRules MvPixelRules;

/* An empty rule set; free with mv_pixel_rules_free (NULL accepted). */
MvStatus mv_pixel_rules_new(MvPixelRules **out);
void mv_pixel_rules_free(MvPixelRules *rules);
/* Appends the rules of a file, or of len bytes of text named name in messages. Errors
 * (MV_ERR_ARG) name the file and the line; on failure the set is left as it was. */
MvStatus mv_pixel_rules_load(MvPixelRules *rules, const char *path, MvError *err);
MvStatus mv_pixel_rules_parse(MvPixelRules *rules, const char *name, const char *text, size_t len, MvError *err);
/* Appends the starter rule set built into the library (a copy of
 * data/pixel-rules/starter.rules, checked equal by the tests). */
MvStatus mv_pixel_rules_load_starter(MvPixelRules *rules, MvError *err);
const char *mv_pixel_rules_starter_text(void);
size_t mv_pixel_rules_count(const MvPixelRules *rules);

/* ---- Cleaning ---------------------------------------------------------------------- */

/* Where a box came from and why it was masked. */
typedef enum MvPixelBoxSource { MV_BOX_OCR = 1, MV_BOX_RULE = 2 } MvPixelBoxSource;

typedef struct MvPixelBox {
    int x, y, width, height; /* in pixels of the frame */
    int frame;               /* first frame it was read on (0-based); -1 for a rule's box */
    int source;              /* MvPixelBoxSource */
    int masked;              /* 1 when the box (plus the margin) was filled */
    float confidence;        /* OCR confidence 0-100; 0 for rules */
    char kind[32];           /* "patient name", "date", "identifier-shaped text", "text", "rule" ... */
    char text[64];           /* the OCR text (patient data: reviewer-only) or the rule's name */
} MvPixelBox;

typedef struct MvPixelReport {
    int scanned;             /* the pixels were decoded and read */
    int changed;             /* some pixels were masked */
    int quarantine;          /* the file must not be released: see reason */
    char reason[256];        /* no patient data */
    char decision[128];      /* why the pixels were, or were not, read (no patient data) */
    size_t n_frames;
    int width, height;
    MvPixelBox *boxes;       /* every box found or applied */
    size_t n_boxes;
    /* Thumbnails (PNG, with boxes drawn) when MV_PIXEL_THUMBNAILS was set and the file was
     * scanned. before_png shows what was found, after_png the masked pixels. */
    uint8_t *before_png, *after_png;
    size_t before_len, after_len;
    double decode_ms, ocr_ms, verify_ms, encode_ms;
} MvPixelReport;

/* Frees what a report holds and zeroes it (NULL accepted). */
void mv_pixel_report_clear(MvPixelReport *report);

#define MV_PIXEL_MASK_ALL_TEXT 1u /* mask every word read, not only identifiers */
#define MV_PIXEL_THUMBNAILS 2u    /* fill before_png and after_png of the report */
#define MV_PIXEL_SCAN_ALL 4u      /* read the pixels of every image, whatever the header says */
#define MV_PIXEL_CLEAN 8u         /* clean-pixel-data: rules, OCR, masks, verification */
#define MV_PIXEL_VISUAL 16u       /* clean-recognizable-visual-features: report and quarantine */
/* For tests of the verification only: OCR boxes are recorded but never filled, so every
 * identifier stays readable and the file must go to quarantine. */
#define MV_PIXEL_TEST_BROKEN_MASKS 32u

typedef struct MvPixelCleanConfig {
    const MvPixelRules *rules; /* NULL: the starter set */
    unsigned flags;            /* MV_PIXEL_* */
    int margin;                /* pixels added around every OCR box; 0 = the default (4) */
    /* Called once per file that clean-pixel-data looked at (read or not: see scanned and
     * decision) or that a pixel reason quarantined, with the report (valid during the call
     * only), from the thread that cleans the file; several threads may call at once: the
     * callee locks. The report holds identifiers: reviewer-only. */
    void (*review)(void *ctx, const char *name, const MvPixelReport *report);
    void *review_ctx;
} MvPixelCleanConfig;

void mv_pixel_clean_config_init(MvPixelCleanConfig *cfg);

/* Cleans the pixel data of file in place, reading the identifiers from its header (so it
 * must run before the header is de-identified). Decides from rules, Burned In Annotation
 * (0028,0301), modality and SOP class whether the pixels must be read at all (a file that
 * needs nothing is not decoded); if so decodes every frame, masks rule regions and the OCR
 * boxes whose text matches an identifier of the file (or any text with
 * MV_PIXEL_MASK_ALL_TEXT), reads the masked frames again, and re-encodes them. Burned In
 * Annotation becomes NO only when that verification found nothing. A file that cannot be
 * cleaned (undecodable, a rule says quarantine, identifiers still readable, a face may be
 * recognizable under MV_PIXEL_VISUAL) gets report->quarantine = 1 and a reason, with MV_OK.
 * Errors other than that (out of memory) return a status. The report is owned by the
 * caller: mv_pixel_report_clear. Thread-safe for different files. */
MvStatus mv_pixel_clean_file(const MvPixelCleanConfig *cfg, MvFile *file, MvPixelReport *report, MvError *err);

/* The part of the de-identification engine: runs mv_pixel_clean_file with MV_PIXEL_CLEAN
 * and MV_PIXEL_VISUAL set from the deid options (MvDeidOption bits). cfg may be NULL. */
MvStatus mv_pixel_clean_for_deid(const MvPixelCleanConfig *cfg, unsigned deid_options, MvFile *file,
                                 MvPixelReport *report, MvError *err);

/* 1 (with a reason, no patient data) when ds is a head CT/MR, or a photograph, in which a
 * face may be recognizable or reconstructable; 0 otherwise. */
int mv_pixel_visual_check(const MvDataset *ds, char *reason, size_t reason_len);

/* Frees the calling thread's OCR engine (it is otherwise kept for the thread's life). */
void mv_pixel_ocr_release(void);

/* ---- Reviewer's report ------------------------------------------------------------------ */

typedef struct MvPixelReview MvPixelReview;

MvStatus mv_pixel_review_new(MvPixelReview **out);
void mv_pixel_review_free(MvPixelReview *review);
/* A review callback for MvPixelCleanConfig (ctx is the MvPixelReview): keeps a copy of
 * every report whose pixels changed or that was quarantined, counts the files read and
 * found clean, ignores the files not read; thread-safe. */
void mv_pixel_review_add(void *ctx, const char *name, const MvPixelReport *report);
/* Writes the self-contained HTML page (thumbnails as data URIs) to path, atomically and
 * with mode 0600: it holds identifiers and says so at the top. */
MvStatus mv_pixel_review_write(MvPixelReview *review, const char *path, MvError *err);

/* ---- Preview ------------------------------------------------------------------------- */

typedef struct MvPixelPreviewOptions {
    size_t frame;           /* 0-based */
    int has_window;         /* use center/width instead of the file's window */
    double center, width;
    int boxes;              /* draw rule regions (blue), OCR words (yellow), identifiers (red) */
    const MvPixelRules *rules; /* for boxes; NULL: the starter set */
} MvPixelPreviewOptions;

void mv_pixel_preview_options_init(MvPixelPreviewOptions *opts);
/* Writes a PNG of one frame of file to png_path (atomically, mode 0600 since it may show
 * identifiers). MV_ERR_NOTFOUND when the frame does not exist; MV_ERR_UNSUPPORTED for
 * pixel data that cannot be decoded. */
MvStatus mv_pixel_preview(MvFile *file, const MvPixelPreviewOptions *opts, const char *png_path,
                          MvPixelReport *report, MvError *err);

#ifdef __cplusplus
}
#endif
#endif
