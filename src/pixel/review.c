/* The reviewer's report of a pixel-cleaning run: one self-contained HTML page (thumbnails
 * as base64 PNG data URIs) with, for every image whose pixels were changed or that was
 * quarantined, the before/after thumbnails, the boxes and the text OCR read. The page holds
 * identifiers by design: it says so at the top and is written with mode 0600. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "medveil/deid.h"
#include "medveil/pixel_clean.h"

#define MAX_ENTRIES 5000

typedef struct Entry {
    char *name;
    MvPixelReport rep; /* deep copy */
} Entry;

struct MvPixelReview {
    pthread_mutex_t lock;
    Entry *entries;
    size_t n, cap, n_left_out, n_scanned_clean;
};

MvStatus mv_pixel_review_new(MvPixelReview **out)
{
    MvPixelReview *rv = calloc(1, sizeof *rv);

    *out = NULL;
    if (rv == NULL)
        return MV_ERR_NOMEM;
    pthread_mutex_init(&rv->lock, NULL);
    *out = rv;
    return MV_OK;
}

void mv_pixel_review_free(MvPixelReview *rv)
{
    if (rv == NULL)
        return;
    for (size_t i = 0; i < rv->n; i++) {
        free(rv->entries[i].name);
        mv_pixel_report_clear(&rv->entries[i].rep);
    }
    free(rv->entries);
    pthread_mutex_destroy(&rv->lock);
    free(rv);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *q;

    if (p == NULL || n == 0)
        return NULL;
    q = malloc(n);
    if (q != NULL)
        memcpy(q, p, n);
    return q;
}

void mv_pixel_review_add(void *ctx, const char *name, const MvPixelReport *report)
{
    MvPixelReview *rv = ctx;
    Entry e;

    if (!report->scanned && !report->quarantine)
        return; /* not read: nothing to review */
    pthread_mutex_lock(&rv->lock);
    if (!report->changed && !report->quarantine) {
        rv->n_scanned_clean++;
        goto out;
    }
    if (rv->n == MAX_ENTRIES) {
        rv->n_left_out++;
        goto out;
    }
    if (rv->n == rv->cap) {
        size_t cap = rv->cap ? rv->cap * 2 : 64;
        Entry *grown = realloc(rv->entries, cap * sizeof *grown);
        if (grown == NULL) {
            rv->n_left_out++;
            goto out;
        }
        rv->entries = grown;
        rv->cap = cap;
    }
    memset(&e, 0, sizeof e);
    e.name = strdup(name != NULL ? name : "");
    e.rep = *report;
    e.rep.boxes = NULL;
    e.rep.before_png = dup_bytes(report->before_png, report->before_len);
    e.rep.after_png = dup_bytes(report->after_png, report->after_len);
    if (report->n_boxes > 0) {
        e.rep.boxes = malloc(report->n_boxes * sizeof *e.rep.boxes);
        if (e.rep.boxes != NULL)
            memcpy(e.rep.boxes, report->boxes, report->n_boxes * sizeof *e.rep.boxes);
        else
            e.rep.n_boxes = 0;
    }
    if (e.rep.before_png == NULL)
        e.rep.before_len = 0;
    if (e.rep.after_png == NULL)
        e.rep.after_len = 0;
    rv->entries[rv->n++] = e;
out:
    pthread_mutex_unlock(&rv->lock);
}

static void html_text(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, f);
        }
    }
}

static int data_uri(FILE *f, const uint8_t *png, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    unsigned char *b64 = malloc(cap);

    if (b64 == NULL)
        return -1;
    EVP_EncodeBlock(b64, png, (int)len);
    fputs("data:image/png;base64,", f);
    fputs((const char *)b64, f);
    free(b64);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const Entry *)a)->name, ((const Entry *)b)->name);
}

MvStatus mv_pixel_review_write(MvPixelReview *rv, const char *path, MvError *err)
{
    char tmp[PATH_MAX];
    FILE *f = NULL;
    int fd;
    size_t n_changed = 0, n_quarantined = 0;

    if (snprintf(tmp, sizeof tmp, "%s.mvtmp-review", path) >= (int)sizeof tmp)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: path too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        if (fd >= 0)
            close(fd);
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
    }
    pthread_mutex_lock(&rv->lock);
    qsort(rv->entries, rv->n, sizeof *rv->entries, by_name);
    for (size_t i = 0; i < rv->n; i++) {
        n_changed += rv->entries[i].rep.changed && !rv->entries[i].rep.quarantine;
        n_quarantined += rv->entries[i].rep.quarantine != 0;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"robots\" content=\"noindex\">\n"
          "<title>medveil pixel review (reviewer only: holds identifiers)</title>\n<style>\n"
          "body{font-family:sans-serif;margin:1.5em;background:#fafafa;color:#222}\n"
          ".warn{background:#b00020;color:#fff;padding:1em;font-weight:bold;border-radius:4px}\n"
          ".img{background:#fff;border:1px solid #ccc;margin:1em 0;padding:1em;border-radius:4px}\n"
          ".q{border-left:6px solid #b00020}.c{border-left:6px solid #2e7d32}\n"
          "figure{display:inline-block;margin:0 1em 0 0;vertical-align:top}\n"
          "figure img{border:1px solid #888;image-rendering:pixelated;max-width:384px}\n"
          "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}\n"
          ".key span{display:inline-block;width:1em;height:1em;margin:0 .3em 0 1em;vertical-align:middle}\n"
          "</style></head><body>\n",
          f);
    fputs("<p class=\"warn\">REVIEWER-ONLY REPORT. This page shows the original pixels and the text read from "
          "them: it holds patient identifiers. Do not release or share it with the de-identified data; delete it "
          "after the review. It was written readable by its owner only (mode 0600).</p>\n",
          f);
    {
        char when[64];
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
        fprintf(f,
                "<h1>medveil pixel review</h1>\n<p>medveil %s, %s. %zu image(s) changed and released, %zu "
                "quarantined, %zu read and found clean (not shown)%s.</p>\n",
                mv_version(), when, n_changed, n_quarantined, rv->n_scanned_clean,
                rv->n_left_out ? ", some left out of this page (over the limit)" : "");
    }
    fputs("<p class=\"key\">Boxes:<span style=\"background:#ff2828\"></span>masked (identifier, or any text with "
          "--mask-all-text)<span style=\"background:#3c8cff\"></span>pixel rule region"
          "<span style=\"background:#ffdc00\"></span>read, not masked</p>\n",
          f);
    for (size_t i = 0; i < rv->n; i++) {
        const Entry *e = &rv->entries[i];
        const MvPixelReport *r = &e->rep;
        fprintf(f, "<div class=\"img %s\" id=\"i%zu\"><h2>", r->quarantine ? "q" : "c", i + 1);
        html_text(f, e->name);
        fputs("</h2>\n<p>", f);
        if (r->quarantine) {
            fputs("<b>Quarantined:</b> ", f);
            html_text(f, r->reason);
        } else {
            fputs("<b>Masked and verified</b>: Burned In Annotation set to NO.", f);
        }
        if (r->decision[0] != '\0') {
            fputs(" Read because: ", f);
            html_text(f, r->decision);
            fputs(".", f);
        }
        if (r->scanned)
            fprintf(f, " %dx%d, %zu frame(s); decode %.0f ms, OCR %.0f ms, verification %.0f ms, encode %.0f ms.",
                    r->width, r->height, r->n_frames, r->decode_ms, r->ocr_ms, r->verify_ms, r->encode_ms);
        fputs("</p>\n", f);
        if (r->before_len > 0) {
            fputs("<figure><img alt=\"before\" src=\"", f);
            data_uri(f, r->before_png, r->before_len);
            fputs("\"><figcaption>before, boxes drawn (frame 1)</figcaption></figure>\n", f);
        }
        if (r->after_len > 0) {
            fputs("<figure><img alt=\"after\" src=\"", f);
            data_uri(f, r->after_png, r->after_len);
            fprintf(f, "\"><figcaption>%s (frame 1)</figcaption></figure>\n",
                    r->quarantine ? "after masking (not released)" : "after");
        }
        if (r->n_boxes > 0) {
            fputs("<table><tr><th>box (x,y w&times;h)</th><th>frame</th><th>from</th><th>kind</th><th>masked</th>"
                  "<th>confidence</th><th>text</th></tr>\n",
                  f);
            for (size_t k = 0; k < r->n_boxes; k++) {
                const MvPixelBox *b = &r->boxes[k];
                fprintf(f, "<tr><td>%d,%d %d&times;%d</td><td>", b->x, b->y, b->width, b->height);
                if (b->frame >= 0)
                    fprintf(f, "%d", b->frame + 1);
                else
                    fputs("all", f);
                fprintf(f, "</td><td>%s</td><td>", b->source == MV_BOX_RULE ? "rule" : "OCR");
                html_text(f, b->kind);
                fprintf(f, "</td><td>%s</td><td>%.0f</td><td>", b->masked ? "yes" : "no", (double)b->confidence);
                html_text(f, b->text);
                fputs("</td></tr>\n", f);
            }
            fputs("</table>\n", f);
        }
        fputs("</div>\n", f);
    }
    fputs("</body></html>\n", f);
    pthread_mutex_unlock(&rv->lock);
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        fclose(f);
        unlink(tmp);
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: write failed", path);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
    }
    return MV_OK;
}
