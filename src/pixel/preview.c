/* `medveil preview` in the library: one frame rendered through a window to a PNG, with
 * the boxes the cleaner would use drawn when asked (rule regions blue, identifiers red,
 * other words read yellow). Reads the file only; never changes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medveil/deid.h"
#include "pixel/render_int.h"

void mv_pixel_preview_options_init(MvPixelPreviewOptions *opts)
{
    memset(opts, 0, sizeof *opts);
}

static MvStatus push(MvPixelReport *rep, const MvPxBox *b, int frame, int source, int masked, float conf,
                     const char *kind, const char *text)
{
    MvPixelBox *grown = realloc(rep->boxes, (rep->n_boxes + 1) * sizeof *grown), *box;

    if (grown == NULL)
        return MV_ERR_NOMEM;
    rep->boxes = grown;
    box = &rep->boxes[rep->n_boxes++];
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

/* Rule regions and OCR words of one decoded frame into rep->boxes. */
static MvStatus find_boxes(const MvImage *img, const MvDataset *ds, const MvPixelRules *rules, MvPixelReport *rep,
                           MvError *err)
{
    MvPxIds *ids = NULL;
    uint8_t *gray = NULL;
    int w = (int)img->columns, h = (int)img->rows;
    MvStatus st;

    for (size_t i = 0; i < rules->n_rules; i++) {
        const MvPxRule *r = &rules->rules[i];
        if (!mv__rule_matches(r, ds))
            continue;
        for (size_t k = 0; k < r->n_rects; k++) {
            MvPxBox b = mv__region_box(&r->rects[k], w, h);
            if ((st = push(rep, &b, -1, MV_BOX_RULE, 1, 0, "rule", r->name)) != MV_OK)
                goto nomem;
        }
    }
    if ((st = mv__pxids_collect(ds, &ids)) != MV_OK)
        goto nomem;
    gray = malloc((size_t)w * (size_t)h);
    if (gray == NULL)
        goto nomem;
    {
        MvPxScan sc = {img, ids, 0, 1, gray};
        MvPxFound found = {0};
        st = mv__read_frame(&sc, 0, &found, err);
        for (size_t i = 0; i < found.n && st == MV_OK; i++) {
            const MvPixelBox *k = &found.boxes[i];
            MvPxBox b = {k->x, k->y, k->x + k->width, k->y + k->height};
            int hit = strcmp(k->kind, "none") != 0;
            if (push(rep, &b, k->frame, MV_BOX_OCR, hit, k->confidence, k->kind, k->text) != MV_OK)
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        }
        if (found.boxes != NULL)
            mv_wipe(found.boxes, found.cap * sizeof *found.boxes);
        free(found.boxes);
        if (st != MV_OK)
            goto out;
    }
    st = MV_OK;
    goto out;
nomem:
    st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
out:
    free(gray);
    mv__pxids_free(ids);
    return st;
}

MvStatus mv_pixel_preview(MvFile *file, const MvPixelPreviewOptions *opts, const char *png_path,
                          MvPixelReport *report, MvError *err)
{
    MvImage *img = NULL;
    MvPixelRules *starter = NULL;
    const MvPixelRules *rules = opts->rules;
    uint8_t *rgb = NULL, *gray = NULL;
    size_t n;
    MvStatus st;

    memset(report, 0, sizeof *report);
    if (opts->frame > UINT32_MAX)
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET, "%s: no frame %zu",
                            mv_file_name(file), opts->frame + 1);
    if ((st = mv_image_decode_frame(file, (uint32_t)opts->frame, NULL, &img, err)) != MV_OK)
        return st;
    report->scanned = 1;
    report->n_frames = img->file_frames;
    report->width = (int)img->columns;
    report->height = (int)img->rows;
    n = (size_t)img->rows * img->columns;
    if (mv__px_is_color(img) && !opts->has_window) {
        rgb = malloc(n * 3);
        if (rgb == NULL)
            goto nomem;
        mv__render_rgb(img, 0, rgb);
    } else {
        double c, w;
        gray = malloc(n);
        if (gray == NULL)
            goto nomem;
        if (opts->has_window) {
            c = opts->center;
            w = opts->width;
        } else if (img->n_windows > 0 && img->window_width[0] >= 1) {
            c = img->window_center[0];
            w = img->window_width[0];
        } else {
            int64_t lo, hi;
            mv__px_range(img, 0, &lo, &hi);
            mv__window_for(img, (double)lo, (double)hi, &c, &w);
        }
        mv__render_gray(img, 0, MV_RENDER_WINDOW, c, w, gray);
    }
    if (opts->boxes) {
        if (rules == NULL) {
            if ((st = mv_pixel_rules_new(&starter)) != MV_OK)
                goto nomem;
            if ((st = mv_pixel_rules_load_starter(starter, err)) != MV_OK)
                goto out;
            rules = starter;
        }
        if ((st = find_boxes(img, mv_file_dataset(file), rules, report, err)) != MV_OK)
            goto out;
        if (rgb == NULL) {
            rgb = mv__gray_to_rgb(gray, n);
            if (rgb == NULL)
                goto nomem;
        }
        for (size_t i = 0; i < report->n_boxes; i++) {
            static const uint8_t red[3] = {255, 40, 40}, blue[3] = {60, 140, 255}, yellow[3] = {255, 220, 0};
            const MvPixelBox *k = &report->boxes[i];
            MvPxBox b = {k->x, k->y, k->x + k->width, k->y + k->height};
            mv__draw_rect(rgb, (int)img->columns, (int)img->rows, &b,
                          k->source == MV_BOX_RULE ? blue : k->masked ? red : yellow, img->columns > 1000 ? 3 : 2);
        }
    }
    st = rgb != NULL ? mv__png_write_file(png_path, rgb, (int)img->columns, (int)img->rows, 3, err)
                     : mv__png_write_file(png_path, gray, (int)img->columns, (int)img->rows, 1, err);
    goto out;
nomem:
    st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
out:
    free(rgb);
    free(gray);
    mv_image_free(img);
    mv_pixel_rules_free(starter);
    return st;
}
