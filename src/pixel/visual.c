/* Recognizable visual features (PS3.15 E.3.2 "Clean Recognizable Visual Features Option"):
 * finds the images from which a face may be seen or reconstructed, head CT/MR volumes and
 * photographs, from the header alone. medveil does not deface yet: the de-identification
 * engine quarantines what this finds (docs/pixel-clean.md). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixel/clean_int.h"

static const char *const head_words[] = {"head",  "brain", "skull",   "face",  "facial", "cranial", "cranio",
                                         "sinus", "orbit", "neuro",   "tmj",   "maxill", "mandib",  "dental",
                                         "cereb", "nasal", "temporal bone", "iac", "sella", "pituitar", "stroke",
                                         "cabeza", "kopf", "schaedel", "schadel", "crane", "cerveau"};

/* 1 if text contains one of the head keywords as the start of a word (case-insensitive). */
static int has_head_word(const char *text)
{
    char low[256];
    size_t n = 0;

    for (; *text != '\0' && n + 1 < sizeof low; text++)
        low[n++] = (char)tolower((unsigned char)*text);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof head_words / sizeof head_words[0]; i++) {
        const char *w = head_words[i];
        size_t wl = strlen(w);
        for (const char *p = strstr(low, w); p != NULL; p = strstr(p + 1, w)) {
            int starts = p == low || !isalpha((unsigned char)p[-1]);
            /* Three-letter words must stand alone ("iac", "tmj"), or "iliac" would match. */
            if (starts && (wl > 3 || !isalpha((unsigned char)p[wl])))
                return 1;
        }
    }
    return 0;
}

static int text_has_head(const MvDataset *ds, uint32_t tag)
{
    char *v = NULL;
    int hit = 0;

    if (mv_dataset_get_string(ds, tag, &v, NULL) == MV_OK)
        hit = has_head_word(v);
    free(v);
    return hit;
}

static int str_is(const MvDataset *ds, uint32_t tag, const char *want)
{
    char *v = NULL;
    int hit = 0;

    if (mv_dataset_get_string(ds, tag, &v, NULL) == MV_OK)
        hit = strcmp(v, want) == 0;
    free(v);
    return hit;
}

static int str_prefix(const MvDataset *ds, uint32_t tag, const char *prefix)
{
    char *v = NULL;
    int hit = 0;

    if (mv_dataset_get_string(ds, tag, &v, NULL) == MV_OK)
        hit = strncmp(v, prefix, strlen(prefix)) == 0;
    free(v);
    return hit;
}

static double number(const MvDataset *ds, uint32_t tag, size_t index)
{
    const MvElement *el = mv_dataset_find(ds, tag);
    double v = 0;

    if (el == NULL || mv_element_double(ds, el, index, &v, NULL) != MV_OK)
        return 0;
    return v;
}

int mv_pixel_visual_check(const MvDataset *ds, char *reason, size_t reason_len)
{
    /* PS3.4 B.5: VL Photographic, Video Photographic, VL Endoscopic is internal (not listed). */
    static const char *const photo_classes[] = {
        "1.2.840.10008.5.1.4.1.1.77.1.4",   /* VL Photographic Image Storage */
        "1.2.840.10008.5.1.4.1.1.77.1.4.1", /* Video Photographic Image Storage */
    };
    int ct_mr = str_is(ds, MV_TAG(0x0008, 0x0060), "CT") || str_is(ds, MV_TAG(0x0008, 0x0060), "MR") ||
                str_prefix(ds, MV_TAG(0x0008, 0x0016), "1.2.840.10008.5.1.4.1.1.2") ||
                str_prefix(ds, MV_TAG(0x0008, 0x0016), "1.2.840.10008.5.1.4.1.1.4");

    for (size_t i = 0; i < sizeof photo_classes / sizeof photo_classes[0]; i++)
        if (str_is(ds, MV_TAG(0x0008, 0x0016), photo_classes[i])) {
            snprintf(reason, reason_len, "recognizable visual features: a photographic image (SOP Class %s)",
                     photo_classes[i]);
            return 1;
        }
    if (str_is(ds, MV_TAG(0x0008, 0x0060), "XC")) {
        snprintf(reason, reason_len, "recognizable visual features: an external-camera photograph (Modality XC)");
        return 1;
    }
    if (!ct_mr)
        return 0;
    if (text_has_head(ds, MV_TAG(0x0018, 0x0015))) {
        snprintf(reason, reason_len,
                 "recognizable visual features: a head CT/MR (Body Part Examined), a face may be reconstructed");
        return 1;
    }
    if (text_has_head(ds, MV_TAG(0x0008, 0x1030)) || text_has_head(ds, MV_TAG(0x0008, 0x103E)) ||
        text_has_head(ds, MV_TAG(0x0018, 0x1030))) {
        snprintf(reason, reason_len,
                 "recognizable visual features: a head CT/MR (study, series or protocol description), a face may "
                 "be reconstructed");
        return 1;
    }
    {
        /* Anatomic Region Sequence (0008,2218): code meaning. */
        const MvElement *seq = mv_dataset_find(ds, MV_TAG(0x0008, 0x2218));
        for (size_t i = 0; seq != NULL && i < mv_element_item_count(seq) && i < 16; i++)
            if (text_has_head(mv_element_item(seq, i), MV_TAG(0x0008, 0x0104))) {
                snprintf(reason, reason_len,
                         "recognizable visual features: a head CT/MR (Anatomic Region Sequence), a face may be "
                         "reconstructed");
                return 1;
            }
    }
    {
        /* A multi-frame volume whose slices span a head-sized box: field of view 150-300 mm
         * and 100 mm or more of slices. Single-slice files carry no extent: see the docs. */
        double frames = number(ds, MV_TAG(0x0028, 0x0008), 0);
        double rows = number(ds, MV_TAG(0x0028, 0x0010), 0), cols = number(ds, MV_TAG(0x0028, 0x0011), 0);
        double sy = number(ds, MV_TAG(0x0028, 0x0030), 0), sx = number(ds, MV_TAG(0x0028, 0x0030), 1);
        double thick = number(ds, MV_TAG(0x0018, 0x0050), 0);
        double fov_y = rows * sy, fov_x = cols * sx;
        if (frames >= 20 && thick > 0 && frames * thick >= 100 && fov_x >= 150 && fov_x <= 300 && fov_y >= 150 &&
            fov_y <= 300) {
            snprintf(reason, reason_len,
                     "recognizable visual features: a CT/MR volume of head size (%.0fx%.0f mm, %.0f mm of slices)",
                     fov_x, fov_y, frames * thick);
            return 1;
        }
    }
    return 0;
}
