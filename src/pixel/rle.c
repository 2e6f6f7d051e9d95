/* RLE Lossless (PS3.5 Annex G), decoder and encoder. A frame is a 64-byte header (the
 * segment count and 15 offsets) followed by one PackBits-coded segment per byte of each
 * sample: the most significant byte of every pixel of sample 0 first, then the next byte,
 * then sample 1, and so on. No Debian library does this, so it is written here. */
#include <stdlib.h>
#include <string.h>

#include "pixel/pixel_int.h"

#define RLE_HEADER 64
#define RLE_MAX_SEGMENTS 15

static uint32_t rd32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void wr32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* PS3.5 G.3.2: decodes one PackBits segment into exactly n bytes of dst. Output that would
 * run past n is an error; a segment that ends early leaves the rest zero and is an error. */
static MvStatus unpack_segment(const uint8_t *in, size_t len, uint8_t *dst, size_t n, unsigned seg, MvError *err)
{
    size_t i = 0, o = 0;

    while (o < n) {
        int8_t c;
        if (i >= len)
            return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                                "RLE segment %u ends after %zu of %zu bytes", seg, o, n);
        c = (int8_t)in[i++];
        if (c >= 0) {
            size_t run = (size_t)c + 1;
            if (run > len - i || run > n - o)
                return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                                    "RLE segment %u: literal run of %zu bytes overflows", seg, run);
            memcpy(dst + o, in + i, run);
            i += run;
            o += run;
        } else if (c != -128) {
            size_t run = (size_t)(1 - c);
            if (i >= len || run > n - o)
                return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                                    "RLE segment %u: replicate run of %zu bytes overflows", seg, run);
            memset(dst + o, in[i++], run);
            o += run;
        }
    }
    return MV_OK;
}

MvStatus mv__rle_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                        MvError *err)
{
    size_t pixels = (size_t)spec->rows * spec->columns;
    unsigned bytes_in = spec->bits_allocated / 8u, n_seg = (unsigned)spec->samples * bytes_in;
    uint32_t count, offsets[RLE_MAX_SEGMENTS + 1];
    uint8_t *plane = NULL;
    MvStatus st = MV_OK;

    (void)info;
    if (len < RLE_HEADER)
        return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "RLE frame of %zu bytes is shorter than its 64-byte header", len);
    count = rd32le(in);
    if (count != n_seg)
        return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "RLE header declares %u segments; %u samples of %u bits need %u", count,
                            spec->samples, spec->bits_allocated, n_seg);
    for (unsigned s = 0; s < count; s++) {
        offsets[s] = rd32le(in + 4 + 4 * s);
        if (offsets[s] < RLE_HEADER || offsets[s] > len || (s > 0 && offsets[s] < offsets[s - 1]))
            return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                                "RLE segment %u offset %u is outside the frame of %zu bytes", s, offsets[s], len);
    }
    offsets[count] = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
    plane = malloc(pixels);
    if (plane == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
    if (bytes_in == spec->bytes && spec->bytes == 1 && spec->samples == 1) {
        st = unpack_segment(in + offsets[0], offsets[1] - offsets[0], out, pixels, 0, err);
        goto out;
    }
    memset(out, 0, spec->out_size);
    for (unsigned s = 0; s < count && st == MV_OK; s++) {
        unsigned sample = s / bytes_in, shift = 8u * (bytes_in - 1 - s % bytes_in);
        if ((st = unpack_segment(in + offsets[s], offsets[s + 1] - offsets[s], plane, pixels, s, err)) != MV_OK)
            break;
        for (size_t i = 0; i < pixels; i++) {
            size_t at = i * spec->samples + sample;
            mv__px_put(out, spec->bytes, at, mv__px_get(out, spec->bytes, at) | ((uint32_t)plane[i] << shift));
        }
    }
out:
    free(plane);
    return st;
}

/* PS3.5 G.3.1: PackBits of one row of n bytes appended at dst (room for n + n/128 + 1). */
static size_t pack_row(const uint8_t *src, size_t n, uint8_t *dst)
{
    size_t i = 0, o = 0;

    while (i < n) {
        size_t run = 1;
        while (i + run < n && run < 128 && src[i + run] == src[i])
            run++;
        if (run >= 2) {
            dst[o++] = (uint8_t)(int8_t)(1 - (int)run);
            dst[o++] = src[i];
            i += run;
            continue;
        }
        /* Literal: up to 128 bytes, stopping before a run of 3 or more (a run of 2 inside
         * a literal costs no more than splitting it out). */
        {
            size_t lit = 1;
            while (i + lit < n && lit < 128) {
                if (i + lit + 2 < n && src[i + lit] == src[i + lit + 1] && src[i + lit] == src[i + lit + 2])
                    break;
                lit++;
            }
            dst[o++] = (uint8_t)(lit - 1);
            memcpy(dst + o, src + i, lit);
            o += lit;
            i += lit;
        }
    }
    return o;
}

MvStatus mv__rle_encode(const MvImage *image, uint32_t frame, uint8_t **out, size_t *out_len, MvError *err)
{
    const uint8_t *px = mv_image_frame(image, frame);
    unsigned bytes = image->bytes_per_sample, n_seg = (unsigned)image->samples_per_pixel * bytes;
    size_t cols = image->columns, rows = image->rows;
    size_t worst_seg = rows * (cols + cols / 128 + 2) + 1, cap, pos = RLE_HEADER;
    uint8_t *buf = NULL, *row = NULL;

    *out = NULL;
    *out_len = 0;
    if (px == NULL || n_seg > RLE_MAX_SEGMENTS)
        return mv_error_set(err, MV_ERR_ARG, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "RLE cannot hold this image");
    cap = RLE_HEADER + (size_t)n_seg * worst_seg;
    buf = calloc(1, cap);
    row = malloc(cols);
    if (buf == NULL || row == NULL) {
        free(buf);
        free(row);
        return mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
    }
    wr32le(buf, n_seg);
    for (unsigned s = 0; s < n_seg; s++) {
        unsigned sample = s / bytes, shift = 8u * (bytes - 1 - s % bytes);
        wr32le(buf + 4 + 4 * s, (uint32_t)pos);
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < cols; c++) {
                size_t at = (r * cols + c) * image->samples_per_pixel + sample;
                row[c] = (uint8_t)(mv__px_get(px, (uint16_t)bytes, at) >> shift);
            }
            pos += pack_row(row, cols, buf + pos);
        }
        /* Segments start at even offsets (PS3.5 G.5: each segment padded to even length). */
        if (pos & 1u)
            buf[pos++] = 0;
    }
    free(row);
    *out = buf;
    *out_len = pos;
    return MV_OK;
}
