/* Private interface of the pixel codec (src/pixel): the geometry every codec works on and
 * the per-syntax decoders and encoders that decode.c and encode.c dispatch to. A decoder
 * turns one frame's compressed bytes into the frame layout of pixel.h without the final
 * normalisation (masking, sign extension), which decode.c applies to every syntax alike. */
#ifndef MV_PIXEL_INT_H
#define MV_PIXEL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/pixel.h"

/* Geometry of one frame as the file describes it. */
typedef struct MvFrameSpec {
    uint32_t rows, columns;
    uint16_t samples;       /* samples per pixel */
    uint16_t bits_allocated, bits_stored, high_bit;
    uint16_t signed_samples; /* pixel representation 1 */
    uint16_t planar;        /* planar configuration of the source */
    uint16_t bytes;         /* bytes per sample of the output buffer: 1, 2 or 4 */
    size_t out_size;        /* rows * columns * samples * bytes */
    const char *photometric; /* source photometric, trimmed */
} MvFrameSpec;

/* What a decoder reports about a frame beyond its samples. */
typedef struct MvFrameInfo {
    int converted_rgb;      /* samples were converted from YBR to RGB */
    int stream_lossy;       /* the codestream says it is lossy (J2K irreversible, JPEG-LS NEAR > 0) */
} MvFrameInfo;

/* Each decoder: in/len is one frame's compressed bytes (fragments joined); out has
 * spec->out_size bytes and receives rows*columns*samples interleaved samples of
 * spec->bytes each in host order, the sample value in the low bits (not yet masked or
 * sign-extended). Errors name the problem, not the file (decode.c prefixes it). */
MvStatus mv__rle_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                        MvError *err);
MvStatus mv__jpeg_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                         MvError *err);
MvStatus mv__jpegll_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out,
                           MvFrameInfo *info, MvError *err);
MvStatus mv__jls_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                        MvError *err);
MvStatus mv__j2k_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                        MvError *err);

/* Each encoder: one frame of image (layout of pixel.h, already normalised) into a new
 * malloc'd buffer *out of *out_len bytes (even length not required; the caller pads). */
MvStatus mv__rle_encode(const MvImage *image, uint32_t frame, uint8_t **out, size_t *out_len, MvError *err);
MvStatus mv__jpegll_encode(const MvImage *image, uint32_t frame, uint8_t **out, size_t *out_len, MvError *err);
/* Lossless JPEG with selection value predictor (1-7) and a restart interval in pixels (0:
 * none); mv__jpegll_encode is (1, 0). */
MvStatus mv__jpegll_encode_with(const MvImage *image, uint32_t frame, int predictor, unsigned restart,
                                uint8_t **out, size_t *out_len, MvError *err);
MvStatus mv__jls_encode(const MvImage *image, uint32_t frame, uint8_t **out, size_t *out_len, MvError *err);
MvStatus mv__j2k_encode(const MvImage *image, uint32_t frame, uint8_t **out, size_t *out_len, MvError *err);

/* Reads sample i of a buffer of bytes-wide host-order samples, and writes it back. */
static inline uint32_t mv__px_get(const uint8_t *buf, uint16_t bytes, size_t i)
{
    if (bytes == 1)
        return buf[i];
    if (bytes == 2)
        return ((const uint16_t *)(const void *)buf)[i];
    return ((const uint32_t *)(const void *)buf)[i];
}
static inline void mv__px_put(uint8_t *buf, uint16_t bytes, size_t i, uint32_t v)
{
    if (bytes == 1)
        buf[i] = (uint8_t)v;
    else if (bytes == 2)
        ((uint16_t *)(void *)buf)[i] = (uint16_t)v;
    else
        ((uint32_t *)(void *)buf)[i] = v;
}

/* Clamps a double to 0..max and rounds it (colour conversions). */
static inline uint32_t mv__px_clamp(double v, uint32_t max)
{
    if (v <= 0)
        return 0;
    if (v >= (double)max)
        return max;
    return (uint32_t)(v + 0.5);
}

#endif
