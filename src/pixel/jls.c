/* JPEG-LS (ISO 14495-1; DICOM 1.2.840.10008.1.2.4.80/.81) through CharLS's C API: decoding
 * of lossless and near-lossless frames, encoding of lossless ones. CharLS gives samples of
 * 1 byte (up to 8 bits) or 2 bytes; they are copied into the buffer layout of pixel.h. */
#include <stdlib.h>
#include <string.h>

#include <charls/charls.h>

#include "pixel/pixel_int.h"

static MvStatus charls_fail(MvError *err, const char *what, charls_jpegls_errc ec)
{
    return mv_error_set(err, ec == CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY ? MV_ERR_NOMEM : MV_ERR_PARSE,
                        MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "JPEG-LS %s: %s", what, charls_get_error_message(ec));
}

/* 1 when the stream ends with an EOI marker, trailing zero padding aside. */
static int ends_with_eoi(const uint8_t *in, size_t len)
{
    while (len > 0 && in[len - 1] == 0)
        len--;
    return len >= 2 && in[len - 2] == 0xFF && in[len - 1] == 0xD9;
}

MvStatus mv__jls_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                        MvError *err)
{
    charls_jpegls_decoder *dec = NULL;
    uint8_t *closed = NULL;
    charls_frame_info fi;
    charls_interleave_mode ilv;
    charls_jpegls_errc ec;
    int32_t near = 0;
    size_t need = 0, pixels = (size_t)spec->rows * spec->columns;
    uint8_t *tmp = NULL;
    unsigned in_bytes;
    MvStatus st = MV_OK;

    /* Debian's CharLS 2.4.1 spins for seconds on entropy-coded data that ends without a
     * marker (fuzz/known-slow/): a stream without its EOI gets one appended. */
    if (!ends_with_eoi(in, len)) {
        if (len > SIZE_MAX - 2 || (closed = malloc(len + 2)) == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
        memcpy(closed, in, len);
        closed[len] = 0xFF;
        closed[len + 1] = 0xD9;
        in = closed;
        len += 2;
    }
    dec = charls_jpegls_decoder_create();
    if (dec == NULL) {
        free(closed);
        return mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
    }
    if ((ec = charls_jpegls_decoder_set_source_buffer(dec, in, len)) != CHARLS_JPEGLS_ERRC_SUCCESS ||
        (ec = charls_jpegls_decoder_read_header(dec)) != CHARLS_JPEGLS_ERRC_SUCCESS ||
        (ec = charls_jpegls_decoder_get_frame_info(dec, &fi)) != CHARLS_JPEGLS_ERRC_SUCCESS ||
        (ec = charls_jpegls_decoder_get_interleave_mode(dec, &ilv)) != CHARLS_JPEGLS_ERRC_SUCCESS ||
        (ec = charls_jpegls_decoder_get_near_lossless(dec, 0, &near)) != CHARLS_JPEGLS_ERRC_SUCCESS) {
        st = charls_fail(err, "header", ec);
        goto out;
    }
    if (fi.width != spec->columns || fi.height != spec->rows || fi.component_count != spec->samples ||
        fi.bits_per_sample > 16 || (fi.bits_per_sample > 8 && spec->bytes < 2)) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                          "JPEG-LS frame is %ux%u, %d component(s) of %d bits; the attributes say %ux%u, %u of %u",
                          fi.width, fi.height, fi.component_count, fi.bits_per_sample, spec->columns, spec->rows,
                          spec->samples, spec->bits_allocated);
        goto out;
    }
    in_bytes = fi.bits_per_sample > 8 ? 2 : 1;
    if ((ec = charls_jpegls_decoder_get_destination_size(dec, 0, &need)) != CHARLS_JPEGLS_ERRC_SUCCESS) {
        st = charls_fail(err, "size", ec);
        goto out;
    }
    if (need != pixels * spec->samples * in_bytes) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "JPEG-LS frame size mismatch");
        goto out;
    }
    if (in_bytes == spec->bytes && (spec->samples == 1 || ilv != CHARLS_INTERLEAVE_MODE_NONE)) {
        ec = charls_jpegls_decoder_decode_to_buffer(dec, out, need, 0);
        if (ec != CHARLS_JPEGLS_ERRC_SUCCESS)
            st = charls_fail(err, "decoding", ec);
        goto out;
    }
    tmp = malloc(need);
    if (tmp == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if ((ec = charls_jpegls_decoder_decode_to_buffer(dec, tmp, need, 0)) != CHARLS_JPEGLS_ERRC_SUCCESS) {
        st = charls_fail(err, "decoding", ec);
        goto out;
    }
    /* Interleave mode none comes out plane by plane; the others pixel by pixel. */
    for (size_t i = 0; i < pixels; i++)
        for (unsigned c = 0; c < spec->samples; c++) {
            size_t from = ilv == CHARLS_INTERLEAVE_MODE_NONE ? c * pixels + i : i * spec->samples + c;
            mv__px_put(out, spec->bytes, i * spec->samples + c, mv__px_get(tmp, (uint16_t)in_bytes, from));
        }
out:
    if (near > 0)
        info->stream_lossy = 1;
    free(tmp);
    free(closed);
    charls_jpegls_decoder_destroy(dec);
    return st;
}

MvStatus mv__jls_encode(const MvImage *image, uint32_t frame, uint8_t **out, size_t *out_len, MvError *err)
{
    const uint8_t *px = mv_image_frame(image, frame);
    size_t n = (size_t)image->rows * image->columns * image->samples_per_pixel, cap = 0, written = 0;
    unsigned bytes = image->bits_stored > 8 ? 2 : 1;
    uint32_t mask = (1u << image->bits_stored) - 1u;
    charls_jpegls_encoder *enc = NULL;
    charls_frame_info fi;
    charls_jpegls_errc ec;
    uint8_t *src = NULL, *dst = NULL;
    MvStatus st = MV_OK;

    *out = NULL;
    *out_len = 0;
    if (px == NULL || image->bits_stored < 2 || image->bits_stored > 16)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "JPEG-LS holds 2 to 16 bits per sample, not %u", image->bits_stored);
    /* The stored bits only: signed samples are sign-extended in the buffer. */
    src = malloc(n * bytes);
    enc = charls_jpegls_encoder_create();
    if (src == NULL || enc == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        mv__px_put(src, (uint16_t)bytes, i, mv__px_get(px, image->bytes_per_sample, i) & mask);
    fi.width = image->columns;
    fi.height = image->rows;
    fi.bits_per_sample = image->bits_stored;
    fi.component_count = image->samples_per_pixel;
    if ((ec = charls_jpegls_encoder_set_frame_info(enc, &fi)) != CHARLS_JPEGLS_ERRC_SUCCESS ||
        (ec = charls_jpegls_encoder_set_near_lossless(enc, 0)) != CHARLS_JPEGLS_ERRC_SUCCESS ||
        (ec = charls_jpegls_encoder_set_interleave_mode(
             enc, image->samples_per_pixel > 1 ? CHARLS_INTERLEAVE_MODE_SAMPLE : CHARLS_INTERLEAVE_MODE_NONE)) !=
            CHARLS_JPEGLS_ERRC_SUCCESS ||
        (ec = charls_jpegls_encoder_get_estimated_destination_size(enc, &cap)) != CHARLS_JPEGLS_ERRC_SUCCESS) {
        st = charls_fail(err, "encoder setup", ec);
        goto out;
    }
    dst = malloc(cap);
    if (dst == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if ((ec = charls_jpegls_encoder_set_destination_buffer(enc, dst, cap)) != CHARLS_JPEGLS_ERRC_SUCCESS ||
        (ec = charls_jpegls_encoder_encode_from_buffer(enc, src, n * bytes, 0)) != CHARLS_JPEGLS_ERRC_SUCCESS ||
        (ec = charls_jpegls_encoder_get_bytes_written(enc, &written)) != CHARLS_JPEGLS_ERRC_SUCCESS) {
        st = charls_fail(err, "encoding", ec);
        goto out;
    }
    *out = dst;
    *out_len = written;
    dst = NULL;
out:
    free(dst);
    free(src);
    charls_jpegls_encoder_destroy(enc);
    return st;
}
