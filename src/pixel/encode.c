/* Pixel encoding: puts a decoded (and possibly edited) image back into a file, as native
 * pixel data or re-encoded in a lossless compressed syntax, sets the image pixel
 * attributes to match and switches the file's transfer syntax. Lossy sources are never
 * re-compressed lossily: they are written native and keep Lossy Image Compression. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixel/pixel_int.h"

#define UID_RLE "1.2.840.10008.1.2.5"
#define UID_JPEG_LL14 "1.2.840.10008.1.2.4.57"
#define UID_JPEG_SV1 "1.2.840.10008.1.2.4.70"
#define UID_JLS_LOSSLESS "1.2.840.10008.1.2.4.80"
#define UID_J2K_LOSSLESS "1.2.840.10008.1.2.4.90"
#define UID_HTJ2K_LOSSLESS "1.2.840.10008.1.2.4.201"
#define UID_HTJ2K_RPCL "1.2.840.10008.1.2.4.202"

void mv_pixel_encode_options_init(MvPixelEncodeOptions *opts)
{
    memset(opts, 0, sizeof *opts);
}

typedef MvStatus (*FrameEncoder)(const MvImage *, uint32_t, uint8_t **, size_t *, MvError *);

/* The syntax to write under the policy of pixel.h, and its frame encoder (NULL: native). */
static MvStatus choose(const MvFile *file, const MvImage *image, const MvPixelEncodeOptions *opts,
                       const char **uid, FrameEncoder *enc, MvError *err)
{
    const MvTransferSyntax *cur = mv_file_transfer_syntax(file);
    const char *want = opts ? opts->transfer_syntax : NULL;

    *enc = NULL;
    if (opts != NULL && (opts->flags & MV_PIXEL_ENCODE_NATIVE))
        want = MV_UID_EXPLICIT_LE;
    if (want == NULL) {
        const char *src = cur && cur->uid ? cur->uid : MV_UID_EXPLICIT_LE;
        if (cur != NULL && !cur->encapsulated && mv_ts_lookup(src) != NULL)
            want = src;
        else if (strcmp(src, UID_RLE) == 0)
            want = UID_RLE;
        else if (strcmp(src, UID_JPEG_LL14) == 0 || strcmp(src, UID_JPEG_SV1) == 0)
            want = UID_JPEG_SV1;
        else if (strcmp(src, UID_JLS_LOSSLESS) == 0)
            want = UID_JLS_LOSSLESS;
        else if (strcmp(src, UID_J2K_LOSSLESS) == 0 || strcmp(src, UID_HTJ2K_LOSSLESS) == 0 ||
                 strcmp(src, UID_HTJ2K_RPCL) == 0)
            want = UID_J2K_LOSSLESS;
        else
            want = MV_UID_EXPLICIT_LE;
        (void)image;
    }
    if (strcmp(want, MV_UID_EXPLICIT_LE) == 0 || strcmp(want, MV_UID_IMPLICIT_LE) == 0 ||
        strcmp(want, MV_UID_DEFLATED_LE) == 0 || strcmp(want, MV_UID_EXPLICIT_BE) == 0)
        *enc = NULL;
    else if (strcmp(want, UID_RLE) == 0)
        *enc = mv__rle_encode;
    else if (strcmp(want, UID_JPEG_SV1) == 0)
        *enc = mv__jpegll_encode;
    else if (strcmp(want, UID_JLS_LOSSLESS) == 0)
        *enc = mv__jls_encode;
    else if (strcmp(want, UID_J2K_LOSSLESS) == 0)
        *enc = mv__j2k_encode;
    else
        return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_TRANSFER_SYNTAX, MV_NO_OFFSET,
                            "medveil does not encode pixel data in transfer syntax %s", want);
    *uid = want;
    return MV_OK;
}

/* Native pixel data bytes of every frame, in the dataset's byte order. */
static MvStatus native_bytes(const MvImage *image, int big_endian, uint8_t **out, size_t *out_len, MvError *err)
{
    size_t total = image->frame_size * image->frames, n = total / image->bytes_per_sample;
    uint8_t *buf = malloc(total ? total : 1);

    if (buf == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t v = mv__px_get(image->pixels, image->bytes_per_sample, i);
        uint8_t *d = buf + i * image->bytes_per_sample;
        for (unsigned b = 0; b < image->bytes_per_sample; b++) {
            unsigned shift = big_endian ? 8u * (image->bytes_per_sample - 1u - b) : 8u * b;
            d[b] = (uint8_t)(v >> shift);
        }
    }
    *out = buf;
    *out_len = total;
    return MV_OK;
}

static MvStatus set_attributes(MvDataset *ds, const MvImage *image, MvError *err)
{
    MvStatus st;

    if ((st = mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0002), MV_VR_US, image->samples_per_pixel, err)) != MV_OK ||
        (st = mv_dataset_set_string(ds, MV_TAG(0x0028, 0x0004), MV_VR_CS, image->photometric, err)) != MV_OK ||
        (st = mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0010), MV_VR_US, image->rows, err)) != MV_OK ||
        (st = mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0011), MV_VR_US, image->columns, err)) != MV_OK ||
        (st = mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0100), MV_VR_US, image->bits_allocated, err)) != MV_OK ||
        (st = mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0101), MV_VR_US, image->bits_stored, err)) != MV_OK ||
        (st = mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0102), MV_VR_US, (uint64_t)image->bits_stored - 1, err)) !=
            MV_OK ||
        (st = mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0103), MV_VR_US, image->pixel_representation, err)) != MV_OK)
        return st;
    if (image->samples_per_pixel > 1) {
        if ((st = mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0006), MV_VR_US, 0, err)) != MV_OK)
            return st;
    } else {
        mv_dataset_remove(ds, MV_TAG(0x0028, 0x0006));
    }
    if (image->frames > 1 || mv_dataset_find(ds, MV_TAG(0x0028, 0x0008)) != NULL)
        if ((st = mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0008), MV_VR_IS, image->frames, err)) != MV_OK)
            return st;
    return MV_OK;
}

MvStatus mv_image_encode(MvFile *file, const MvImage *image, const MvPixelEncodeOptions *opts, MvError *err)
{
    MvDataset *ds = mv_file_dataset(file);
    const char *uid = NULL;
    FrameEncoder enc = NULL;
    uint8_t **frags = NULL, *native = NULL, *bot = NULL;
    size_t *lens = NULL, native_len = 0;
    MvStatus st;

    mv_error_clear(err);
    if (image == NULL || image->pixels == NULL || image->frames == 0 || image->first_frame != 0 ||
        (image->file_frames != 0 && image->frames != image->file_frames) || image->planar_configuration != 0 ||
        image->frame_size != (size_t)image->rows * image->columns * image->samples_per_pixel * image->bytes_per_sample ||
        image->bytes_per_sample * 8u != image->bits_allocated)
        return mv_error_set(err, MV_ERR_ARG, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "the image to encode must hold every frame, interleaved, as decoded");
    if (strcmp(image->photometric, "YBR_FULL_422") == 0 || strcmp(image->photometric, "YBR_PARTIAL_420") == 0)
        return mv_error_set(err, MV_ERR_ARG, MV_TAG(0x0028, 0x0004), MV_NO_OFFSET,
                            "a full-resolution buffer cannot be written as %s", image->photometric);
    if ((st = choose(file, image, opts, &uid, &enc, err)) != MV_OK)
        goto out;

    if (enc == NULL) {
        /* Values are held in the byte order the dataset was read in; the writer swaps them
         * if the file is written in the other one. */
        if ((st = native_bytes(image, mv_dataset_big_endian(ds), &native, &native_len, err)) != MV_OK)
            goto out;
        if ((st = mv_dataset_set_bytes(ds, MV_TAG_PIXEL_DATA, image->bits_allocated > 8 ? MV_VR_OW : MV_VR_OB, native,
                                       native_len, err)) != MV_OK)
            goto out;
    } else {
        uint64_t pos = 0;
        frags = calloc((size_t)image->frames + 1, sizeof *frags);
        lens = calloc((size_t)image->frames + 1, sizeof *lens);
        bot = malloc((size_t)image->frames * 4);
        if (frags == NULL || lens == NULL || bot == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
            goto out;
        }
        for (uint32_t f = 0; f < image->frames; f++) {
            if ((st = enc(image, f, &frags[f + 1], &lens[f + 1], err)) != MV_OK)
                goto out;
            /* PS3.5 A.4: Basic Offset Table entries are offsets of each frame's first item. */
            if (pos > UINT32_MAX) {
                st = mv_error_set(err, MV_ERR_LIMIT, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                                  "encoded frames exceed the 4 GiB a Basic Offset Table can address");
                goto out;
            }
            bot[4 * f] = (uint8_t)pos;
            bot[4 * f + 1] = (uint8_t)(pos >> 8);
            bot[4 * f + 2] = (uint8_t)(pos >> 16);
            bot[4 * f + 3] = (uint8_t)(pos >> 24);
            pos += 8 + lens[f + 1] + (lens[f + 1] & 1u);
        }
        frags[0] = bot;
        lens[0] = (size_t)image->frames * 4;
        st = mv_dataset_set_fragments(ds, MV_TAG_PIXEL_DATA, MV_VR_OB, (const uint8_t *const *)frags, lens,
                                      (size_t)image->frames + 1, err);
        frags[0] = NULL;
        if (st != MV_OK)
            goto out;
    }
    /* Offset tables of the old encoding no longer describe the new one. */
    mv_dataset_remove(ds, MV_TAG(0x7FE0, 0x0001));
    mv_dataset_remove(ds, MV_TAG(0x7FE0, 0x0002));
    if ((st = set_attributes(ds, image, err)) != MV_OK)
        goto out;
    if (image->lossy) {
        /* PS3.3 C.7.6.1.1.5: once lossy, always marked lossy; ratio and method are kept. */
        MvElement *el = mv_dataset_find(ds, MV_TAG(0x0028, 0x2110));
        if (el == NULL && (st = mv_dataset_set_string(ds, MV_TAG(0x0028, 0x2110), MV_VR_CS, "01", err)) != MV_OK)
            goto out;
    }
    st = mv_file_set_transfer_syntax(file, uid, err);
out:
    if (frags != NULL)
        for (uint32_t f = 1; f <= image->frames; f++)
            free(frags[f]);
    free(frags);
    free(lens);
    free(bot);
    free(native);
    if (st != MV_OK)
        mv_error_prefix(err, mv_file_name(file));
    return st;
}
