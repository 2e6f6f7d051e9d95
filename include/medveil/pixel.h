/* Pixel data: decoding every common transfer syntax into one plain buffer, and encoding a
 * buffer back into a file. Nothing here runs unless a caller asks for pixels: a file whose
 * pixels need no change is written from its input bytes and never decoded.
 * Supported syntaxes, buffer layout and the lossy policy are described in docs/pixel.md. */
#ifndef MEDVEIL_PIXEL_H
#define MEDVEIL_PIXEL_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/dicom.h"
#include "medveil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Decoded image ------------------------------------------------------------------ */

#define MV_PIXEL_MAX_WINDOWS 8

/* A PALETTE COLOR lookup table (PS3.3 C.7.6.3.1.5): entries of 8 or 16 bits held as
 * uint16_t, indexed by (stored value - first_mapped), clamped to [0, entries - 1]. */
typedef struct MvPaletteLut {
    uint16_t *data;        /* entries values; owned by the image */
    uint32_t entries;      /* 1..65536 */
    int32_t first_mapped;  /* the stored value mapped to data[0] */
    uint16_t bits;         /* 8 or 16 */
} MvPaletteLut;

/* One decoded image: all frames of a file (mv_image_decode), or one frame
 * (mv_image_decode_frame). Every field is set by the decoder; callers may edit pixels in
 * place and hand the image to mv_image_encode.
 *
 * Buffer layout, whatever the source syntax:
 * - frames one after another, frame_size bytes each; within a frame rows top to bottom,
 *   columns left to right, samples interleaved (planar configuration 0);
 * - each sample in bytes_per_sample bytes (1 when bits_allocated <= 8, 2 when <= 16, else
 *   4), host byte order;
 * - the stored value only: bits above high_bit (old overlays) are cleared, the value is
 *   shifted so that its lowest bit is bit 0, and signed data (pixel_representation 1) is
 *   sign-extended to the full sample width (so int8_t/int16_t/int32_t reads are correct).
 *   After decoding, high_bit == bits_stored - 1.
 * - photometric is the interpretation of the buffer. Decoders convert only where the
 *   source is not an interleaved full-resolution image: YBR_FULL_422 (native or JPEG) and
 *   JPEG baseline YBR become RGB; YBR_ICT/YBR_RCT (JPEG 2000) become RGB; everything else
 *   (MONOCHROME1/2, RGB, YBR_FULL, PALETTE COLOR) is kept as it was. converted_color says
 *   whether a conversion happened; source_photometric keeps the file's value. */
typedef struct MvImage {
    uint32_t rows;
    uint32_t columns;
    uint32_t frames;               /* frames held in pixels */
    uint32_t first_frame;          /* index in the file of the first frame held (0 for all frames) */
    uint32_t file_frames;          /* Number of Frames of the file (1 when absent) */
    uint16_t samples_per_pixel;    /* 1 or 3 */
    uint16_t bits_allocated;       /* as in the file: 1..32 (8, 16 or 32 in practice) */
    uint16_t bits_stored;          /* 1..bits_allocated */
    uint16_t high_bit;             /* bits_stored - 1 after decoding */
    uint16_t pixel_representation; /* 0 unsigned, 1 two's complement */
    uint16_t planar_configuration; /* of the buffer: always 0 */
    uint16_t bytes_per_sample;     /* 1, 2 or 4 */
    char photometric[20];          /* of the buffer, e.g. "MONOCHROME2", "RGB", "PALETTE COLOR" */
    char source_photometric[20];   /* (0028,0004) of the file, trimmed */
    int converted_color;           /* 1 when the decoder changed the colour space (see above) */
    size_t frame_size;             /* rows * columns * samples_per_pixel * bytes_per_sample */
    uint8_t *pixels;               /* frames * frame_size bytes, owned by the image */

    MvPaletteLut palette[3];       /* red, green, blue when photometric is PALETTE COLOR */

    int has_rescale;               /* (0028,1053)/(0028,1052) present */
    double rescale_slope;          /* 1 when absent */
    double rescale_intercept;      /* 0 when absent */
    size_t n_windows;              /* values of (0028,1050)/(0028,1051) (up to MV_PIXEL_MAX_WINDOWS) */
    double window_center[MV_PIXEL_MAX_WINDOWS];
    double window_width[MV_PIXEL_MAX_WINDOWS];

    char transfer_syntax[68];      /* UID of the source syntax */
    int lossy;                     /* lossy source: lossy syntax, or Lossy Image Compression "01" */
} MvImage;

typedef struct MvPixelDecodeOptions {
    uint64_t max_bytes; /* cap on the decoded buffer (all frames decoded in one call); 0 = 2 GiB */
    unsigned flags;     /* none yet; set 0 */
} MvPixelDecodeOptions;

void mv_pixel_decode_options_init(MvPixelDecodeOptions *opts);

/* Decodes every frame of file's Pixel Data (7FE0,0010). opts may be NULL. On success *out
 * is a new image the caller frees with mv_image_free; on failure *out is NULL and err
 * names the file, the frame and the problem (MV_ERR_NOTFOUND: no pixel data;
 * MV_ERR_UNSUPPORTED: a syntax or layout medveil does not decode, named in the message;
 * MV_ERR_PARSE: damaged data; MV_ERR_LIMIT: over opts->max_bytes). file is not changed. */
MvStatus mv_image_decode(const MvFile *file, const MvPixelDecodeOptions *opts, MvImage **out, MvError *err);

/* As mv_image_decode for one frame (0-based): the image holds frames == 1 and
 * first_frame == frame. Only that frame's bytes are read (found through the Basic or
 * Extended Offset Table, or by walking fragments). MV_ERR_NOTFOUND if frame >= the
 * number of frames. */
MvStatus mv_image_decode_frame(const MvFile *file, uint32_t frame, const MvPixelDecodeOptions *opts,
                               MvImage **out, MvError *err);

/* Reads the image attributes without decoding anything: every field of the image is set
 * as mv_image_decode would set it (frames = file_frames, the photometric the decoder
 * would produce), except pixels, which is NULL. Free with mv_image_free. Fails as decode
 * would on missing or inconsistent attributes and on an unsupported syntax. */
MvStatus mv_image_describe(const MvFile *file, MvImage **out, MvError *err);

/* MV_OK when file holds pixel data in a syntax and layout this library decodes (checked
 * from the attributes and the transfer syntax only, nothing decoded); otherwise the
 * status and message mv_image_decode would give for it (MV_ERR_NOTFOUND without Pixel
 * Data, MV_ERR_UNSUPPORTED naming the syntax ...). Cheap: use it to send a file to
 * quarantine before any work is done. */
MvStatus mv_pixel_check(const MvFile *file, MvError *err);

/* 1 when transfer syntax uid has a decoder here (the uncompressed and deflated syntaxes,
 * RLE, JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, HTJ2K). */
int mv_pixel_syntax_supported(const char *uid);

/* A new image with the given geometry and a zeroed buffer of frames * frame_size bytes,
 * every other field as for a MONOCHROME2 native file (slope 1, no windows, transfer syntax
 * Explicit VR Little Endian); photometric "RGB" when samples_per_pixel is 3. For tests and
 * synthetic images. bits_allocated 8, 16 or 32. */
MvStatus mv_image_new(uint32_t rows, uint32_t columns, uint32_t frames, uint16_t samples_per_pixel,
                      uint16_t bits_allocated, uint16_t bits_stored, uint16_t pixel_representation,
                      MvImage **out, MvError *err);

/* Frees the image, its buffer and its palette. NULL is accepted. */
void mv_image_free(MvImage *image);

/* Address of frame index (0-based among the frames held), NULL if out of range. */
uint8_t *mv_image_frame(const MvImage *image, uint32_t index);

/* One sample as a signed 64-bit integer (stored value, before rescale); 0 when out of
 * range. Convenient, not fast: loops over whole frames should read the buffer. */
int64_t mv_image_sample(const MvImage *image, uint32_t frame, uint32_t row, uint32_t column, uint16_t sample);
void mv_image_set_sample(MvImage *image, uint32_t frame, uint32_t row, uint32_t column, uint16_t sample,
                         int64_t value);

/* ---- Encoding ------------------------------------------------------------------------ */

typedef struct MvPixelEncodeOptions {
    /* Transfer syntax to write; NULL applies the policy below. Accepted: Explicit VR Little
     * Endian, Implicit VR Little Endian, Deflated Explicit VR Little Endian, RLE Lossless,
     * JPEG Lossless SV1 (1.2.840.10008.1.2.4.70), JPEG-LS Lossless, JPEG 2000 Lossless. */
    const char *transfer_syntax;
    unsigned flags;     /* MV_PIXEL_ENCODE_* */
} MvPixelEncodeOptions;

#define MV_PIXEL_ENCODE_NATIVE 1u /* always write native Explicit VR Little Endian */

void mv_pixel_encode_options_init(MvPixelEncodeOptions *opts);

/* Replaces file's Pixel Data (7FE0,0010) with image (which must hold every frame:
 * first_frame 0, frames == file_frames, or a new image for a file without pixels) and sets
 * the image pixel attributes to describe it: Rows, Columns, Samples per Pixel, Bits
 * Allocated/Stored, High Bit, Pixel Representation, Photometric Interpretation, Planar
 * Configuration (0, only when samples > 1), Number of Frames (when > 1 or already there).
 * Policy with opts->transfer_syntax NULL: an uncompressed or deflated source keeps its
 * syntax; RLE, JPEG Lossless, JPEG-LS Lossless and JPEG 2000 Lossless sources are
 * re-encoded in their own syntax (JPEG lossless process 14 is written as SV1; JPEG-LS near-
 * lossless and lossy JPEG 2000 are lossy sources); lossy sources (JPEG baseline/extended,
 * JPEG-LS near-lossless, JPEG 2000, HTJ2K) are written as native Explicit VR Little Endian
 * and Lossy Image Compression (0028,2110) stays "01" with its ratio and method attributes
 * as they were (it is set to "01" if the syntax was lossy and the element absent). When the
 * decoder converted colour (YBR -> RGB), the new Photometric Interpretation says so.
 * Palette LUTs are left as they are. The file's transfer syntax is changed with
 * mv_file_set_transfer_syntax, so mv_file_write then writes the new encoding. The file
 * keeps no pointer into image: image stays the caller's. On failure the file may have been
 * partly changed (attributes set, pixels not): write nothing from it. */
MvStatus mv_image_encode(MvFile *file, const MvImage *image, const MvPixelEncodeOptions *opts, MvError *err);

#ifdef __cplusplus
}
#endif
#endif
