/* Rendering of decoded frames to 8-bit grey for OCR, previews and thumbnails: linear VOI
 * windows on modality values (PS3.3 C.11.2.1.2), MONOCHROME1 shown inverted, colour as
 * luminance or as the brightest channel; plus mask filling and box drawing on renderings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pixel/render_int.h"

int64_t mv__px_sample(const MvImage *img, const uint8_t *frame, size_t index)
{
    switch (img->bytes_per_sample) {
    case 1: return img->pixel_representation ? (int64_t)((const int8_t *)frame)[index] : (int64_t)frame[index];
    case 2: {
        uint16_t v;
        memcpy(&v, frame + index * 2, 2);
        return img->pixel_representation ? (int64_t)(int16_t)v : (int64_t)v;
    }
    default: {
        uint32_t v;
        memcpy(&v, frame + index * 4, 4);
        return img->pixel_representation ? (int64_t)(int32_t)v : (int64_t)v;
    }
    }
}

void mv__px_set(const MvImage *img, uint8_t *frame, size_t index, int64_t value)
{
    switch (img->bytes_per_sample) {
    case 1: frame[index] = (uint8_t)value; break;
    case 2: {
        uint16_t v = (uint16_t)value;
        memcpy(frame + index * 2, &v, 2);
        break;
    }
    default: {
        uint32_t v = (uint32_t)value;
        memcpy(frame + index * 4, &v, 4);
        break;
    }
    }
}

int mv__px_is_color(const MvImage *img)
{
    return img->samples_per_pixel == 3 || strcmp(img->photometric, "PALETTE COLOR") == 0;
}

static int is_mono1(const MvImage *img)
{
    return strcmp(img->photometric, "MONOCHROME1") == 0;
}

void mv__px_range(const MvImage *img, uint32_t frame, int64_t *lo, int64_t *hi)
{
    const uint8_t *f = mv_image_frame(img, frame);
    size_t n = (size_t)img->rows * img->columns * img->samples_per_pixel;

    *lo = *hi = 0;
    if (f == NULL || n == 0)
        return;
    *lo = *hi = mv__px_sample(img, f, 0);
    for (size_t i = 1; i < n; i++) {
        int64_t v = mv__px_sample(img, f, i);
        if (v < *lo)
            *lo = v;
        if (v > *hi)
            *hi = v;
    }
}

static uint8_t palette_channel(const MvPaletteLut *lut, int64_t v)
{
    int64_t i = v - lut->first_mapped;

    if (lut->data == NULL || lut->entries == 0)
        return 0;
    if (i < 0)
        i = 0;
    if (i >= (int64_t)lut->entries)
        i = (int64_t)lut->entries - 1;
    return lut->bits > 8 ? (uint8_t)(lut->data[i] >> 8) : (uint8_t)lut->data[i];
}

/* One pixel as RGB 8-bit (colour images: samples scaled to 8 bits; YBR_FULL converted). */
static void color_at(const MvImage *img, const uint8_t *f, size_t p, uint8_t rgb[3])
{
    if (img->samples_per_pixel == 1) {
        int64_t v = mv__px_sample(img, f, p);
        for (int c = 0; c < 3; c++)
            rgb[c] = palette_channel(&img->palette[c], v);
        return;
    }
    {
        int shift = img->bits_stored > 8 ? img->bits_stored - 8 : 0;
        double s[3];
        for (int c = 0; c < 3; c++)
            s[c] = (double)(mv__px_sample(img, f, p * 3 + (size_t)c) >> shift);
        if (strncmp(img->photometric, "YBR", 3) == 0) {
            double y = s[0], cb = s[1] - 128, cr = s[2] - 128;
            s[0] = y + 1.402 * cr;
            s[1] = y - 0.344136 * cb - 0.714136 * cr;
            s[2] = y + 1.772 * cb;
        }
        for (int c = 0; c < 3; c++)
            rgb[c] = (uint8_t)(s[c] < 0 ? 0 : s[c] > 255 ? 255 : s[c] + 0.5);
    }
}

void mv__render_rgb(const MvImage *img, uint32_t frame, uint8_t *out)
{
    const uint8_t *f = mv_image_frame(img, frame);
    size_t n = (size_t)img->rows * img->columns;

    for (size_t p = 0; p < n; p++)
        color_at(img, f, p, out + p * 3);
}

void mv__render_gray(const MvImage *img, uint32_t frame, int mode, double center, double width, uint8_t *out)
{
    const uint8_t *f = mv_image_frame(img, frame);
    size_t n = (size_t)img->rows * img->columns;

    if (f == NULL)
        return;
    if (mv__px_is_color(img)) {
        for (size_t p = 0; p < n; p++) {
            uint8_t rgb[3];
            color_at(img, f, p, rgb);
            if (mode == MV_RENDER_MAXCHAN)
                out[p] = rgb[0] > rgb[1] ? (rgb[0] > rgb[2] ? rgb[0] : rgb[2]) : (rgb[1] > rgb[2] ? rgb[1] : rgb[2]);
            else
                out[p] = (uint8_t)((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] + 500) / 1000);
            if (mode == MV_RENDER_INVERT)
                out[p] = (uint8_t)(255 - out[p]);
        }
        return;
    }
    {
        /* PS3.3 C.11.2.1.2.1: linear function on modality values (rescaled). A window is
         * mapped onto stored values once, then a table is avoided: the loop is linear. */
        double slope = img->rescale_slope != 0 ? img->rescale_slope : 1, icpt = img->rescale_intercept;
        double lo, hi;
        int invert = is_mono1(img) ^ (mode == MV_RENDER_INVERT);
        if (width < 1)
            width = 1;
        lo = center - 0.5 - (width - 1) / 2;
        hi = center - 0.5 + (width - 1) / 2;
        for (size_t p = 0; p < n; p++) {
            double v = (double)mv__px_sample(img, f, p) * slope + icpt, g;
            if (v <= lo)
                g = 0;
            else if (v > hi)
                g = 255;
            else
                g = ((v - (center - 0.5)) / (width - 1) + 0.5) * 255;
            out[p] = (uint8_t)(invert ? 255 - (int)(g + 0.5) : (int)(g + 0.5));
        }
    }
}

/* The window in modality values that spans stored values lo..hi. */
void mv__window_for(const MvImage *img, double lo, double hi, double *center, double *width)
{
    double slope = img->rescale_slope != 0 ? img->rescale_slope : 1, icpt = img->rescale_intercept;
    double a = lo * slope + icpt, b = hi * slope + icpt;

    if (a > b) {
        double t = a;
        a = b;
        b = t;
    }
    *center = (a + b) / 2 + 0.5;
    *width = b - a + 1;
    if (*width < 2)
        *width = 2;
}

int64_t mv__px_black(const MvImage *img, int64_t lo, int64_t hi, int64_t out[3])
{
    if (img->samples_per_pixel == 3) {
        int64_t mid = strncmp(img->photometric, "YBR", 3) == 0 ? (int64_t)1 << (img->bits_stored - 1) : 0;
        out[0] = 0;
        out[1] = out[2] = mid;
        return 0;
    }
    if (strcmp(img->photometric, "PALETTE COLOR") == 0) {
        /* The index whose colour is darkest among lo..hi (capped scan). */
        int64_t best = lo;
        unsigned best_sum = 1000;
        for (int64_t v = lo; v <= hi && v - lo < 65536; v++) {
            unsigned sum = 0;
            for (int c = 0; c < 3; c++)
                sum += palette_channel(&img->palette[c], v);
            if (sum < best_sum) {
                best_sum = sum;
                best = v;
            }
        }
        out[0] = out[1] = out[2] = best;
        return best;
    }
    out[0] = out[1] = out[2] = is_mono1(img) ? hi : lo;
    return out[0];
}

void mv__fill_box(MvImage *img, const MvPxBox *box, const int64_t value[3])
{
    int spp = img->samples_per_pixel;

    for (uint32_t fr = 0; fr < img->frames; fr++) {
        uint8_t *f = mv_image_frame(img, fr);
        for (int y = box->y0; y < box->y1; y++)
            for (int x = box->x0; x < box->x1; x++) {
                size_t p = ((size_t)y * img->columns + (size_t)x) * (size_t)spp;
                for (int c = 0; c < spp; c++)
                    mv__px_set(img, f, p + (size_t)c, value[c]);
            }
    }
}

MvPxBox mv__box_grow(MvPxBox b, int margin, int width, int height)
{
    b.x0 -= margin;
    b.y0 -= margin;
    b.x1 += margin;
    b.y1 += margin;
    if (b.x0 < 0)
        b.x0 = 0;
    if (b.y0 < 0)
        b.y0 = 0;
    if (b.x1 > width)
        b.x1 = width;
    if (b.y1 > height)
        b.y1 = height;
    return b;
}

void mv__draw_rect(uint8_t *rgb, int width, int height, const MvPxBox *b, const uint8_t color[3], int thick)
{
    for (int t = 0; t < thick; t++) {
        int x0 = b->x0 - t, y0 = b->y0 - t, x1 = b->x1 - 1 + t, y1 = b->y1 - 1 + t;
        for (int x = x0; x <= x1; x++)
            for (int k = 0; k < 2; k++) {
                int y = k ? y1 : y0;
                if (x >= 0 && x < width && y >= 0 && y < height)
                    memcpy(rgb + ((size_t)y * (size_t)width + (size_t)x) * 3, color, 3);
            }
        for (int y = y0; y <= y1; y++)
            for (int k = 0; k < 2; k++) {
                int x = k ? x1 : x0;
                if (x >= 0 && x < width && y >= 0 && y < height)
                    memcpy(rgb + ((size_t)y * (size_t)width + (size_t)x) * 3, color, 3);
            }
    }
}

uint8_t *mv__gray_to_rgb(const uint8_t *gray, size_t n)
{
    uint8_t *rgb = malloc(n * 3);

    if (rgb == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = gray[i];
    return rgb;
}

uint8_t *mv__shrink_rgb(const uint8_t *rgb, int width, int height, int max_side, int *out_w, int *out_h)
{
    int f = 1;
    uint8_t *out;

    while ((width + f - 1) / f > max_side || (height + f - 1) / f > max_side)
        f++;
    *out_w = (width + f - 1) / f;
    *out_h = (height + f - 1) / f;
    out = malloc((size_t)*out_w * (size_t)*out_h * 3);
    if (out == NULL)
        return NULL;
    /* Box filter over f x f cells. */
    for (int y = 0; y < *out_h; y++)
        for (int x = 0; x < *out_w; x++)
            for (int c = 0; c < 3; c++) {
                unsigned sum = 0, cnt = 0;
                for (int dy = 0; dy < f && y * f + dy < height; dy++)
                    for (int dx = 0; dx < f && x * f + dx < width; dx++) {
                        sum += rgb[(((size_t)(y * f + dy)) * (size_t)width + (size_t)(x * f + dx)) * 3 + (size_t)c];
                        cnt++;
                    }
                out[((size_t)y * (size_t)*out_w + (size_t)x) * 3 + (size_t)c] = (uint8_t)(cnt ? sum / cnt : 0);
            }
    return out;
}
