/* Private helpers of the pixel-clean files that need decoded images (medveil/pixel.h):
 * sample access, 8-bit renderings, masks and drawing. Implemented in render.c. */
#ifndef MV_PIXEL_RENDER_INT_H
#define MV_PIXEL_RENDER_INT_H

#include "medveil/pixel.h"
#include "pixel/clean_int.h"

enum { MV_RENDER_WINDOW = 0, MV_RENDER_INVERT, MV_RENDER_MAXCHAN };

int64_t mv__px_sample(const MvImage *img, const uint8_t *frame, size_t index);
void mv__px_set(const MvImage *img, uint8_t *frame, size_t index, int64_t value);
int mv__px_is_color(const MvImage *img);
/* Smallest and largest stored sample of a frame. */
void mv__px_range(const MvImage *img, uint32_t frame, int64_t *lo, int64_t *hi);
/* The window (modality values) that spans stored values lo..hi. */
void mv__window_for(const MvImage *img, double lo, double hi, double *center, double *width);
/* Renders frame to rows*columns bytes of grey: monochrome through the window center/width
 * (MONOCHROME1 inverted), colour as luminance or (MV_RENDER_MAXCHAN) brightest channel;
 * MV_RENDER_INVERT inverts the result. */
void mv__render_gray(const MvImage *img, uint32_t frame, int mode, double center, double width, uint8_t *out);
/* Renders frame to rows*columns*3 bytes of RGB (colour images only). */
void mv__render_rgb(const MvImage *img, uint32_t frame, uint8_t *out);
/* The stored value(s) that display black: the minimum (MONOCHROME2), the maximum
 * (MONOCHROME1), 0 (RGB), Y 0 with neutral chroma (YBR), the darkest palette entry. */
int64_t mv__px_black(const MvImage *img, int64_t lo, int64_t hi, int64_t out[3]);
/* Fills box on every frame held by img with value (one per sample). */
void mv__fill_box(MvImage *img, const MvPxBox *box, const int64_t value[3]);
MvPxBox mv__box_grow(MvPxBox b, int margin, int width, int height);
void mv__draw_rect(uint8_t *rgb, int width, int height, const MvPxBox *b, const uint8_t color[3], int thick);
uint8_t *mv__gray_to_rgb(const uint8_t *gray, size_t n);
/* A copy reduced by an integer factor so that no side exceeds max_side (malloc'd). */
uint8_t *mv__shrink_rgb(const uint8_t *rgb, int width, int height, int max_side, int *out_w, int *out_h);

/* ---- OCR of decoded frames (clean.c) ---------------------------------------------------- */

typedef struct MvPxFound {
    MvPixelBox *boxes;
    size_t n, cap;
    size_t n_words_read; /* every word read, identifier or not */
} MvPxFound;

typedef struct MvPxScan {
    const MvImage *img;
    const MvPxIds *ids;
    int all_text;
    int keep_all;  /* keep words that match nothing too (previews) */
    uint8_t *gray; /* rows * columns bytes of work space */
} MvPxScan;

/* Reads frame (an index among the frames img holds) through every rendering planned for
 * it (full range, the file's window, a high window, inverted; colour: luminance, brightest
 * channel, inverted) and appends to hits the words that match an identifier (with
 * keep_all, every word), one box per distinct word and place, masked = 0. */
MvStatus mv__read_frame(MvPxScan *sc, uint32_t frame, MvPxFound *hits, MvError *err);

#endif
