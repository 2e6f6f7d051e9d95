/* Burned-in text cleaning of one file (docs/pixel-clean.md): decide from the header whether
 * the pixels must be read at all; decode; mask rule regions; OCR windowed renderings of
 * sampled frames and mask every box whose text matches an identifier of the file; read the
 * masked frames again (the verification) and quarantine what is still readable; re-encode
 * and set Burned In Annotation to NO only after a clean verification. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "medveil/deid.h"
#include "pixel/render_int.h"

#define DEFAULT_MARGIN 4
#define MAX_SAMPLED_FRAMES 4
#define MAX_BOXES 4096
#define THUMB_SIDE 384
#define MAX_RENDERS 4


static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void mv_pixel_clean_config_init(MvPixelCleanConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->flags = MV_PIXEL_CLEAN;
}

void mv_pixel_report_clear(MvPixelReport *report)
{
    if (report == NULL)
        return;
    if (report->boxes != NULL)
        mv_wipe(report->boxes, report->n_boxes * sizeof *report->boxes);
    free(report->boxes);
    free(report->before_png);
    free(report->after_png);
    memset(report, 0, sizeof *report);
}

static MvStatus add_box(MvPxFound *found, const MvPxBox *b, int frame, int source, int masked, float conf,
                        const char *kind, const char *text)
{
    MvPixelBox *box;

    if (found->n == MAX_BOXES)
        return MV_OK;
    if (found->n == found->cap) {
        size_t cap = found->cap ? found->cap * 2 : 32;
        MvPixelBox *grown = realloc(found->boxes, cap * sizeof *grown);
        if (grown == NULL)
            return MV_ERR_NOMEM;
        found->boxes = grown;
        found->cap = cap;
    }
    box = &found->boxes[found->n++];
    memset(box, 0, sizeof *box);
    box->x = b->x0;
    box->y = b->y0;
    box->width = b->x1 - b->x0;
    box->height = b->y1 - b->y0;
    box->frame = frame;
    box->source = source;
    box->masked = masked;
    box->confidence = conf;
    snprintf(box->kind, sizeof box->kind, "%s", kind);
    snprintf(box->text, sizeof box->text, "%s", text);
    return MV_OK;
}

/* 1 when an equal-kind box already covers most of b. */
static int known_box(const MvPxFound *found, const MvPxBox *b, const char *text)
{
    for (size_t i = 0; i < found->n; i++) {
        const MvPixelBox *k = &found->boxes[i];
        int x0 = b->x0 > k->x ? b->x0 : k->x, y0 = b->y0 > k->y ? b->y0 : k->y;
        int x1 = b->x1 < k->x + k->width ? b->x1 : k->x + k->width;
        int y1 = b->y1 < k->y + k->height ? b->y1 : k->y + k->height;
        long inter = x1 > x0 && y1 > y0 ? (long)(x1 - x0) * (y1 - y0) : 0;
        long area = (long)(b->x1 - b->x0) * (b->y1 - b->y0);
        if (area > 0 && inter * 10 >= area * 8 && strcmp(k->text, text) == 0)
            return 1;
    }
    return 0;
}

/* The renderings read for one frame: (mode, center, width). */
typedef struct Render {
    int mode;
    double center, width;
} Render;

static size_t plan_renders(const MvImage *img, uint32_t frame, Render out[MAX_RENDERS])
{
    size_t n = 0;
    int64_t lo, hi;

    if (mv__px_is_color(img)) {
        out[n++] = (Render){MV_RENDER_WINDOW, 0, 0};
        out[n++] = (Render){MV_RENDER_MAXCHAN, 0, 0};
        out[n++] = (Render){MV_RENDER_INVERT, 0, 0};
        return n;
    }
    mv__px_range(img, frame, &lo, &hi);
    /* The full range, the file's own window, and a high window for text drawn brighter
     * than anatomy (text is usually the brightest value), then the full range inverted. */
    out[n].mode = MV_RENDER_WINDOW;
    mv__window_for(img, (double)lo, (double)hi, &out[n].center, &out[n].width);
    n++;
    if (img->n_windows > 0 && img->window_width[0] >= 1) {
        out[n++] = (Render){MV_RENDER_WINDOW, img->window_center[0], img->window_width[0]};
    }
    if (hi - lo > 32) {
        double top = (double)hi - (double)(hi - lo) * 0.08;
        out[n].mode = MV_RENDER_WINDOW;
        mv__window_for(img, top, (double)hi, &out[n].center, &out[n].width);
        n++;
    }
    out[n] = out[0];
    out[n++].mode = MV_RENDER_INVERT;
    return n;
}

/* OCR of every rendering of one frame; identifier boxes found go to hits (masked = 0), all
 * words to *n_read. */
MvStatus mv__read_frame(MvPxScan *sc, uint32_t frame, MvPxFound *hits, MvError *err)
{
    const MvImage *img = sc->img;
    Render renders[MAX_RENDERS];
    size_t n_renders = plan_renders(img, frame, renders);
    int w = (int)img->columns, h = (int)img->rows;
    int side = w > h ? w : h, scale = side <= 700 ? 3 : side <= 1400 ? 2 : 1;
    uint64_t seen[MAX_RENDERS];
    MvStatus st = MV_OK;

    for (size_t r = 0; r < n_renders; r++) {
        MvPxWord *words = NULL;
        size_t n = 0, cap = 0;
        uint64_t hash = 1469598103934665603ull;
        int dup = 0;

        mv__render_gray(img, frame, renders[r].mode, renders[r].center, renders[r].width, sc->gray);
        for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
            hash = (hash ^ sc->gray[i]) * 1099511628211ull;
        for (size_t k = 0; k < r; k++)
            dup |= seen[k] == hash;
        seen[r] = hash;
        if (dup)
            continue;
        if ((st = mv__ocr_gray(sc->gray, w, h, w, scale, &words, &n, &cap, err)) != MV_OK) {
            mv__words_free(words, n);
            return st;
        }
        mv__match_words(sc->ids, words, n, sc->all_text);
        for (size_t i = 0; i < n; i++) {
            /* A word that could carry meaning: two letters or digits read with some confidence. */
            size_t alnum = 0;
            for (const char *p = words[i].text; *p != '\0'; p++)
                alnum += (*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z');
            hits->n_words_read += alnum >= 2 && words[i].conf >= 50;
        }
        for (size_t i = 0; i < n && st == MV_OK; i++) {
            if ((words[i].kind == 0 && !sc->keep_all) || known_box(hits, &words[i].box, words[i].text))
                continue;
            if (add_box(hits, &words[i].box, (int)(img->first_frame + frame), MV_BOX_OCR, 0, words[i].conf,
                        mv__id_kind_name(words[i].kind), words[i].text) != MV_OK)
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        }
        mv__words_free(words, n);
        if (st != MV_OK)
            return st;
    }
    return MV_OK;
}

/* Frames read: all when few, else the first, the last and evenly spaced ones between. */
static size_t sample_frames(uint32_t frames, uint32_t out[MAX_SAMPLED_FRAMES])
{
    size_t n = 0;

    if (frames <= MAX_SAMPLED_FRAMES) {
        for (uint32_t i = 0; i < frames; i++)
            out[n++] = i;
        return n;
    }
    for (size_t i = 0; i < MAX_SAMPLED_FRAMES; i++)
        out[n++] = (uint32_t)((uint64_t)i * (frames - 1) / (MAX_SAMPLED_FRAMES - 1));
    return n;
}

/* ---- the decision ------------------------------------------------------------------ */

enum { DECIDE_SKIP, DECIDE_SCAN, DECIDE_QUARANTINE };

static int str_in(const char *v, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(v, *list) == 0)
            return 1;
    return 0;
}

static int image_type_has(const MvDataset *ds, const char *const *words)
{
    char *v = NULL;
    int hit = 0;

    if (mv_dataset_get_string(ds, MV_TAG(0x0008, 0x0008), &v, NULL) != MV_OK) {
        free(v);
        return 0;
    }
    for (char *tok = v; tok != NULL && !hit;) {
        char *next = strchr(tok, '\\');
        if (next != NULL)
            *next++ = '\0';
        hit = str_in(tok, words);
        tok = next;
    }
    free(v);
    return hit;
}

/* Whether the pixels of ds must be read (docs/pixel-clean.md "Which files are read"). */
static int decide(const MvPixelCleanConfig *cfg, const MvPixelRules *rules, const MvDataset *ds, MvPxFound *rule_boxes,
                  int width, int height, MvPixelReport *rep, int *burned_yes)
{
    static const char *const risky_modalities[] = {"US", "SC", "OT", "XC", "DOC", "CR", "DX", "MG", "XA", "RF",
                                                   "ES", "IO", "PX", "GM", "SM", NULL};
    static const char *const risky_types[] = {"SECONDARY", "DERIVED", "LOCALIZER", "SCREEN SAVE", "SCOUT", NULL};
    char *burned = NULL, *modality = NULL, *sop = NULL;
    int scan = 0, skip = 0, masks = 0, result;

    *burned_yes = 0;
    for (size_t i = 0; i < rules->n_rules; i++) {
        const MvPxRule *r = &rules->rules[i];
        if (!mv__rule_matches(r, ds))
            continue;
        if (r->quarantine) {
            snprintf(rep->reason, sizeof rep->reason, "pixel rule '%.60s' (%.80s:%d): %.80s", r->name, r->file,
                     r->line, r->reason);
            snprintf(rep->decision, sizeof rep->decision, "a rule says quarantine");
            return DECIDE_QUARANTINE;
        }
        for (size_t k = 0; k < r->n_rects; k++) {
            MvPxBox b = mv__region_box(&r->rects[k], width, height);
            if (b.x1 > b.x0 && b.y1 > b.y0 && add_box(rule_boxes, &b, -1, MV_BOX_RULE, 1, 0, "rule", r->name) != MV_OK)
                return -1;
            masks = 1;
        }
        scan |= r->scan;
        skip |= r->skip;
    }
    if (mv_dataset_find(ds, MV_TAG_PIXEL_DATA) == NULL) {
        snprintf(rep->decision, sizeof rep->decision, "no Pixel Data");
        return DECIDE_SKIP;
    }
    mv_dataset_get_string(ds, MV_TAG(0x0028, 0x0301), &burned, NULL);
    mv_dataset_get_string(ds, MV_TAG(0x0008, 0x0060), &modality, NULL);
    mv_dataset_get_string(ds, MV_TAG(0x0008, 0x0016), &sop, NULL);
    /* As the engine does without the option: any value but NO (or empty) means burned-in text. */
    *burned_yes = burned != NULL && burned[0] != '\0' && strcmp(burned, "NO") != 0;
    if (masks || scan) {
        snprintf(rep->decision, sizeof rep->decision, "a pixel rule %s", masks ? "masks regions" : "asks for OCR");
        result = DECIDE_SCAN;
    } else if (cfg->flags & MV_PIXEL_SCAN_ALL) {
        snprintf(rep->decision, sizeof rep->decision, "every image is read (scan-all)");
        result = DECIDE_SCAN;
    } else if (*burned_yes) {
        snprintf(rep->decision, sizeof rep->decision, "Burned In Annotation is not NO");
        result = DECIDE_SCAN;
    } else if (skip) {
        snprintf(rep->decision, sizeof rep->decision, "a pixel rule says skip");
        result = DECIDE_SKIP;
    } else if (burned != NULL && burned[0] != '\0') {
        snprintf(rep->decision, sizeof rep->decision, "Burned In Annotation is NO");
        result = DECIDE_SKIP;
    } else if ((modality != NULL && str_in(modality, risky_modalities)) ||
               (sop != NULL && strncmp(sop, "1.2.840.10008.5.1.4.1.1.7", 25) == 0)) {
        snprintf(rep->decision, sizeof rep->decision, "modality or SOP class often carries burned-in text");
        result = DECIDE_SCAN;
    } else if (image_type_has(ds, risky_types)) {
        snprintf(rep->decision, sizeof rep->decision, "Image Type says derived, secondary or localizer");
        result = DECIDE_SCAN;
    } else {
        snprintf(rep->decision, sizeof rep->decision,
                 "original acquisition without Burned In Annotation: not read");
        result = DECIDE_SKIP;
    }
    free(burned);
    free(modality);
    free(sop);
    return result;
}

/* ---- thumbnails ----------------------------------------------------------------------- */

static uint8_t *render_view(const MvImage *img, uint32_t frame)
{
    size_t n = (size_t)img->rows * img->columns;
    uint8_t *rgb, *gray;
    double c, w;
    int64_t lo, hi;

    if (mv__px_is_color(img)) {
        rgb = malloc(n * 3);
        if (rgb != NULL)
            mv__render_rgb(img, frame, rgb);
        return rgb;
    }
    gray = malloc(n);
    if (gray == NULL)
        return NULL;
    if (img->n_windows > 0 && img->window_width[0] >= 1) {
        c = img->window_center[0];
        w = img->window_width[0];
    } else {
        mv__px_range(img, frame, &lo, &hi);
        mv__window_for(img, (double)lo, (double)hi, &c, &w);
    }
    mv__render_gray(img, frame, MV_RENDER_WINDOW, c, w, gray);
    rgb = mv__gray_to_rgb(gray, n);
    free(gray);
    return rgb;
}

static const uint8_t RED[3] = {255, 40, 40}, BLUE[3] = {60, 140, 255}, YELLOW[3] = {255, 220, 0};

static void draw_boxes(uint8_t *rgb, int w, int h, const MvPixelBox *boxes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        MvPxBox b = {boxes[i].x, boxes[i].y, boxes[i].x + boxes[i].width, boxes[i].y + boxes[i].height};
        const uint8_t *color = boxes[i].source == MV_BOX_RULE ? BLUE : boxes[i].masked ? RED : YELLOW;
        mv__draw_rect(rgb, w, h, &b, color, w > 1000 ? 3 : 2);
    }
}

static MvStatus thumbnail(const uint8_t *rgb, int w, int h, uint8_t **png, size_t *len, MvError *err)
{
    int tw, th;
    uint8_t *small = mv__shrink_rgb(rgb, w, h, THUMB_SIDE, &tw, &th);
    MvStatus st;

    if (small == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    st = mv__png_encode(small, tw, th, 3, png, len, err);
    free(small);
    return st;
}

/* ---- the whole file ----------------------------------------------------------------- */

static void quarantine(MvPixelReport *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void quarantine(MvPixelReport *rep, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rep->reason, sizeof rep->reason, fmt, ap);
    va_end(ap);
    rep->quarantine = 1;
}

/* Masks every not yet masked box of hits (plus the margin) on every frame. */
static void apply_masks(MvImage *img, MvPxFound *hits, size_t from, int margin, const int64_t black[3],
                        unsigned flags)
{
    for (size_t i = from; i < hits->n; i++) {
        MvPixelBox *k = &hits->boxes[i];
        MvPxBox b = {k->x, k->y, k->x + k->width, k->y + k->height};
        if (k->source == MV_BOX_OCR && (flags & MV_PIXEL_TEST_BROKEN_MASKS))
            continue;
        if (k->source == MV_BOX_OCR)
            b = mv__box_grow(b, margin + k->height / 5, (int)img->columns, (int)img->rows);
        mv__fill_box(img, &b, black);
        k->masked = 1;
    }
}

MvStatus mv_pixel_clean_file(const MvPixelCleanConfig *cfg_in, MvFile *file, MvPixelReport *rep, MvError *err)
{
    MvPixelCleanConfig defaults;
    const MvPixelCleanConfig *cfg = cfg_in;
    MvDataset *ds = mv_file_dataset(file);
    MvPixelRules *starter = NULL;
    const MvPixelRules *rules;
    MvPxIds *ids = NULL;
    MvImage *img = NULL;
    MvPxFound found = {0};
    MvPxScan sc = {0};
    uint8_t *before = NULL;
    uint32_t frames[MAX_SAMPLED_FRAMES];
    size_t n_sampled, first_ocr;
    int burned_yes = 0, decision, width = 0, height = 0, margin;
    int64_t lo = 0, hi = 0, black[3];
    double t0;
    MvStatus st = MV_OK;
    MvError perr;

    memset(rep, 0, sizeof *rep);
    if (cfg == NULL) {
        mv_pixel_clean_config_init(&defaults);
        cfg = &defaults;
    }
    margin = cfg->margin > 0 ? cfg->margin : DEFAULT_MARGIN;
    if (cfg->flags & MV_PIXEL_VISUAL) {
        if (mv_pixel_visual_check(ds, rep->reason, sizeof rep->reason)) {
            rep->quarantine = 1;
            snprintf(rep->decision, sizeof rep->decision, "clean-recognizable-visual-features");
            goto review;
        }
    }
    if (!(cfg->flags & MV_PIXEL_CLEAN))
        return MV_OK;
    rules = cfg->rules;
    if (rules == NULL) {
        if ((st = mv_pixel_rules_new(&starter)) != MV_OK ||
            (st = mv_pixel_rules_load_starter(starter, err)) != MV_OK)
            goto out;
        rules = starter;
    }
    {
        const MvElement *r = mv_dataset_find(ds, MV_TAG(0x0028, 0x0010)), *c = mv_dataset_find(ds, MV_TAG(0x0028, 0x0011));
        uint64_t v;
        if (r != NULL && mv_element_uint(ds, r, 0, &v, NULL) == MV_OK && v <= 65535)
            height = (int)v;
        if (c != NULL && mv_element_uint(ds, c, 0, &v, NULL) == MV_OK && v <= 65535)
            width = (int)v;
    }
    decision = decide(cfg, rules, ds, &found, width, height, rep, &burned_yes);
    if (decision < 0) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if (decision == DECIDE_QUARANTINE) {
        rep->quarantine = 1;
        goto review;
    }
    if (decision == DECIDE_SKIP)
        goto review;
    if (mv_pixel_check(file, &perr) != MV_OK) {
        quarantine(rep, "pixel data must be read but cannot be decoded: %.150s", perr.message);
        goto review;
    }
    if ((st = mv__pxids_collect(ds, &ids)) != MV_OK) {
        st = mv_error_set(err, st, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    t0 = now_ms();
    if (mv_image_decode(file, NULL, &img, &perr) != MV_OK) {
        quarantine(rep, "pixel data must be read but cannot be decoded: %.150s", perr.message);
        goto review;
    }
    rep->decode_ms = now_ms() - t0;
    rep->scanned = 1;
    rep->n_frames = img->frames;
    rep->width = (int)img->columns;
    rep->height = (int)img->rows;
    if (width != (int)img->columns || height != (int)img->rows) {
        /* Rule regions were placed with the header's size; place them again. */
        found.n = 0;
        decide(cfg, rules, ds, &found, (int)img->columns, (int)img->rows, rep, &burned_yes);
    }
    mv__px_range(img, 0, &lo, &hi);
    for (uint32_t f = 1; f < img->frames; f++) {
        int64_t a, b;
        mv__px_range(img, f, &a, &b);
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    mv__px_black(img, lo, hi, black);
    if (cfg->flags & MV_PIXEL_THUMBNAILS)
        before = render_view(img, 0);
    sc.img = img;
    sc.ids = ids;
    sc.all_text = (cfg->flags & MV_PIXEL_MASK_ALL_TEXT) != 0;
    sc.gray = malloc((size_t)img->rows * img->columns);
    if (sc.gray == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    n_sampled = sample_frames(img->frames, frames);

    /* Pass 1: rule regions, then what OCR finds on the original pixels. */
    t0 = now_ms();
    apply_masks(img, &found, 0, margin, black, cfg->flags);
    first_ocr = found.n;
    for (size_t i = 0; i < n_sampled; i++)
        if ((st = mv__read_frame(&sc, frames[i], &found, err)) != MV_OK)
            goto out;
    rep->ocr_ms = now_ms() - t0;
    if (burned_yes && found.n_words_read == 0 && first_ocr == 0) {
        quarantine(rep, "Burned In Annotation is not NO but no text could be read, so it cannot be located");
        goto review;
    }
    apply_masks(img, &found, first_ocr, margin, black, cfg->flags);

    /* Verification: read the masked frames again. Identifiers found then are masked and
     * the frames read once more; anything still readable after that sends the file to
     * quarantine. Text that is no identifier (--mask-all-text) is masked and not re-read. */
    t0 = now_ms();
    for (int round = 0; round < 2 && st == MV_OK && !rep->quarantine; round++) {
        MvPxFound again = {0};
        size_t n_ids = 0, first_id = 0, from = found.n;
        for (size_t i = 0; i < n_sampled && st == MV_OK; i++)
            st = mv__read_frame(&sc, frames[i], &again, err);
        for (size_t i = 0; i < again.n; i++)
            if (strcmp(again.boxes[i].kind, "text") != 0 && n_ids++ == 0)
                first_id = i;
        if (st == MV_OK && n_ids > 0 && round == 1)
            quarantine(rep, "burned-in %s still readable after masking (frame %d)", again.boxes[first_id].kind,
                       again.boxes[first_id].frame + 1);
        for (size_t i = 0; i < again.n && st == MV_OK; i++) {
            const MvPixelBox *k = &again.boxes[i];
            MvPxBox b = {k->x, k->y, k->x + k->width, k->y + k->height};
            if (add_box(&found, &b, k->frame, k->source, 0, k->confidence, k->kind, k->text) != MV_OK)
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        }
        if (again.boxes != NULL)
            mv_wipe(again.boxes, again.cap * sizeof *again.boxes);
        free(again.boxes);
        if (st == MV_OK && !rep->quarantine)
            apply_masks(img, &found, from, margin, black, cfg->flags);
        if (n_ids == 0)
            break;
    }
    if (st != MV_OK)
        goto out;
    rep->verify_ms = now_ms() - t0;
    for (size_t i = 0; i < found.n; i++)
        rep->changed |= found.boxes[i].masked;
    if (rep->quarantine)
        goto review;
    if (rep->changed) {
        t0 = now_ms();
        if (mv_image_encode(file, img, NULL, &perr) != MV_OK) {
            quarantine(rep, "masked pixel data cannot be encoded: %.150s", perr.message);
            goto review;
        }
        rep->encode_ms = now_ms() - t0;
    }
    /* PS3.3 C.7.6.1.1.5: no burned-in text that identifies the patient remains. */
    if ((st = mv_dataset_set_string(ds, MV_TAG(0x0028, 0x0301), MV_VR_CS, "NO", err)) != MV_OK)
        goto out;

review:
    if (found.n > 0) {
        rep->boxes = found.boxes;
        rep->n_boxes = found.n;
        found.boxes = NULL;
        found.n = found.cap = 0;
    }
    if ((cfg->flags & MV_PIXEL_THUMBNAILS) && img != NULL && before != NULL) {
        uint8_t *after = render_view(img, 0);
        int w = (int)img->columns, h = (int)img->rows;
        draw_boxes(before, w, h, rep->boxes, rep->n_boxes);
        if (thumbnail(before, w, h, &rep->before_png, &rep->before_len, err) != MV_OK ||
            (after != NULL && thumbnail(after, w, h, &rep->after_png, &rep->after_len, err) != MV_OK)) {
            /* Thumbnails are for the review only: a failure leaves them out. */
        }
        free(after);
    }
    if (cfg->review != NULL)
        cfg->review(cfg->review_ctx, mv_file_name(file), rep);
out:
    if (found.boxes != NULL)
        mv_wipe(found.boxes, found.cap * sizeof *found.boxes);
    free(found.boxes);
    free(sc.gray);
    free(before);
    mv_image_free(img);
    mv__pxids_free(ids);
    mv_pixel_rules_free(starter);
    return st;
}

MvStatus mv_pixel_clean_for_deid(const MvPixelCleanConfig *cfg, unsigned deid_options, MvFile *file,
                                 MvPixelReport *report, MvError *err)
{
    MvPixelCleanConfig local;

    if (cfg != NULL)
        local = *cfg;
    else
        mv_pixel_clean_config_init(&local);
    local.flags &= ~(MV_PIXEL_CLEAN | MV_PIXEL_VISUAL);
    if (deid_options & MV_OPT_CLEAN_PIXEL_DATA)
        local.flags |= MV_PIXEL_CLEAN;
    if (deid_options & MV_OPT_CLEAN_RECOGNIZABLE_VISUAL_FEATURES)
        local.flags |= MV_PIXEL_VISUAL;
    return mv_pixel_clean_file(&local, file, report, err);
}
