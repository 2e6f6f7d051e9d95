/* One input through every pixel decoder, shared by fuzz/fuzz_pixel.c (libFuzzer) and
 * tests/regress_runner.c (replay of tests/regress/ and the corpus), so that both check the
 * same invariants. The first byte chooses the path:
 *   byte % 6 == 0: the whole input is a DICOM file (a Part 10 preamble of zeros lands
 *     here): open it from memory, decode every frame, encode the image again with the
 *     default policy (its own lossless syntax, or native), write, read, decode again; the
 *     samples must be the same.
 *   1 RLE, 2 JPEG baseline/extended, 3 lossless JPEG, 4 JPEG-LS, 5 JPEG 2000: bytes 1..5
 *     choose rows, columns, samples, bit depth and sign, the rest is one frame handed
 *     straight to that decoder. A frame the lossless decoders accept is encoded again with
 *     medveil's RLE and lossless JPEG encoders and must decode to the same samples.
 * A broken invariant calls abort() (a crash for libFuzzer, a failure for the runner); any
 * error status is a clean refusal. Needs the private header pixel/pixel_int.h. */
#ifndef MV_FUZZ_PIXEL_CHECK_H
#define MV_FUZZ_PIXEL_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "medveil/dicom.h"
#include "medveil/pixel.h"
#include "pixel/pixel_int.h"

/* Caps that keep one input fast under ASan. */
#define PIXEL_CHECK_MAX_DECODED ((uint64_t)64 << 20)
#define PIXEL_CHECK_MAX_REENCODE ((size_t)4 << 20)
#define PIXEL_CHECK_DIRECT_HEADER 6

static void pixel_check_broken(const char *what, const char *detail)
{
    fprintf(stderr, "pixel check: invariant failed: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* Decodes file fully, or returns NULL on a clean refusal. */
static MvImage *pixel_check_decode(const MvFile *file)
{
    MvPixelDecodeOptions opts;
    MvImage *image = NULL;
    MvError err;

    mv_pixel_decode_options_init(&opts);
    opts.max_bytes = PIXEL_CHECK_MAX_DECODED;
    if (mv_image_decode(file, &opts, &image, &err) != MV_OK)
        return NULL;
    if (image->pixels == NULL || image->frames != image->file_frames || image->high_bit + 1 != image->bits_stored)
        pixel_check_broken("decoded image is inconsistent", NULL);
    return image;
}

/* Path 0: a DICOM file. */
static void pixel_check_file(const uint8_t *data, size_t size)
{
    MvFile *file = NULL, *again = NULL;
    MvImage *image = NULL, *back = NULL;
    MvReadOptions ropts;
    MvWriteOptions wopts;
    MvError err;
    int fd = -1;
    struct stat sb;
    void *map = MAP_FAILED;

    mv_read_options_init(&ropts);
    ropts.max_depth = 64;
    ropts.max_inflated = (uint64_t)64 << 20;
    if (mv_file_from_memory(data, size, "fuzz.dcm", &ropts, &file, &err) != MV_OK)
        return;
    if (mv_pixel_check(file, &err) != MV_OK) {
        /* A file check refuses must not decode either. */
        if (mv_image_decode(file, NULL, &image, &err) == MV_OK)
            pixel_check_broken("mv_pixel_check refused what mv_image_decode decodes", NULL);
        goto out;
    }
    if ((image = pixel_check_decode(file)) == NULL)
        goto out;
    {
        /* Every frame alone must equal the same frame of the whole decode. */
        MvImage *one = NULL;
        uint32_t last = image->frames - 1;
        if (mv_image_decode_frame(file, last, NULL, &one, &err) != MV_OK)
            pixel_check_broken("a frame of a decodable file does not decode alone", err.message);
        if (one->frame_size != image->frame_size || memcmp(one->pixels, mv_image_frame(image, last), one->frame_size))
            pixel_check_broken("decode_frame differs from decode", NULL);
        mv_image_free(one);
    }
    if (image->frame_size * image->frames > PIXEL_CHECK_MAX_REENCODE)
        goto out;
    if (mv_image_encode(file, image, NULL, &err) != MV_OK) {
        if (err.code == MV_ERR_NOMEM)
            goto out;
        /* Encoders refuse depths their syntax cannot hold: then native must work. */
        MvPixelEncodeOptions native;
        mv_pixel_encode_options_init(&native);
        native.flags = MV_PIXEL_ENCODE_NATIVE;
        if (mv_image_encode(file, image, &native, &err) != MV_OK)
            pixel_check_broken("a decoded image cannot be written native", err.message);
    }
    fd = memfd_create("pixel-check", 0);
    if (fd < 0)
        goto out;
    mv_write_options_init(&wopts);
    wopts.flags = MV_WRITE_NO_SYNC;
    if (mv_file_write_fd(file, fd, &wopts, &err) != MV_OK) {
        if (err.code == MV_ERR_UNSUPPORTED || err.code == MV_ERR_LIMIT)
            goto out; /* the writer declines the rest of this dataset, not the pixels */
        pixel_check_broken("writing the re-encoded file failed", err.message);
    }
    if (fstat(fd, &sb) != 0 || sb.st_size <= 0)
        goto out;
    map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        goto out;
    if (mv_file_from_memory(map, (size_t)sb.st_size, "rewritten.dcm", &ropts, &again, &err) != MV_OK)
        pixel_check_broken("the re-encoded file does not parse", err.message);
    if (mv_image_decode(again, NULL, &back, &err) != MV_OK)
        pixel_check_broken("the re-encoded file does not decode", err.message);
    if (back->frames != image->frames || back->frame_size != image->frame_size ||
        memcmp(back->pixels, image->pixels, image->frame_size * image->frames) != 0)
        pixel_check_broken("re-encoded samples differ", mv_file_transfer_syntax(again)->uid);
out:
    mv_image_free(back);
    mv_image_free(image);
    mv_file_free(again);
    if (map != MAP_FAILED)
        munmap(map, (size_t)sb.st_size);
    if (fd >= 0)
        close(fd);
    mv_file_free(file);
}

/* Paths 1-5: one frame straight into a decoder. */
static void pixel_check_direct(int codec, const uint8_t *data, size_t size)
{
    MvFrameSpec spec;
    MvFrameInfo info;
    MvError err;
    MvStatus st;
    uint8_t *out = NULL;
    const uint8_t *in = data + PIXEL_CHECK_DIRECT_HEADER;
    size_t len = size - PIXEL_CHECK_DIRECT_HEADER;
    static const char *const photometric[] = {"MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT"};

    memset(&spec, 0, sizeof spec);
    memset(&info, 0, sizeof info);
    spec.rows = (uint32_t)data[1] % 64 + 1;
    spec.columns = (uint32_t)data[2] % 64 + 1;
    spec.samples = (data[3] & 1) ? 3 : 1;
    spec.bits_allocated = (data[3] & 2) ? 16 : 8;
    spec.signed_samples = (data[3] & 4) ? 1 : 0;
    spec.bits_stored = (uint16_t)(data[4] % spec.bits_allocated + 1);
    spec.high_bit = (uint16_t)(spec.bits_stored - 1);
    spec.bytes = (uint16_t)(spec.bits_allocated / 8);
    spec.photometric = spec.samples == 3 ? photometric[1 + data[5] % 4] : photometric[0];
    spec.out_size = (size_t)spec.rows * spec.columns * spec.samples * spec.bytes;
    out = malloc(spec.out_size);
    if (out == NULL)
        return;
    switch (codec) {
    case 1: st = mv__rle_decode(in, len, &spec, out, &info, &err); break;
    case 2: st = mv__jpeg_decode(in, len, &spec, out, &info, &err); break;
    case 3: st = mv__jpegll_decode(in, len, &spec, out, &info, &err); break;
    case 4: st = mv__jls_decode(in, len, &spec, out, &info, &err); break;
    default: st = mv__j2k_decode(in, len, &spec, out, &info, &err); break;
    }
    if (st == MV_OK && (codec == 1 || codec == 3) && spec.bits_stored >= 2) {
        /* Lossless: medveil's own encoders must give the same samples back. */
        MvImage *image = NULL;
        if (mv_image_new(spec.rows, spec.columns, 1, spec.samples, spec.bits_allocated, spec.bits_stored,
                         spec.signed_samples, &image, &err) == MV_OK) {
            uint32_t mask = (1u << spec.bits_stored) - 1u;
            size_t n = spec.out_size / spec.bytes;
            for (size_t i = 0; i < n; i++) {
                uint32_t v = mv__px_get(out, spec.bytes, i) & mask;
                if (spec.signed_samples && (v >> (spec.bits_stored - 1)))
                    v |= ~mask;
                mv__px_put(image->pixels, spec.bytes, i, v);
            }
            for (int enc = 0; enc < 2; enc++) {
                uint8_t *coded = NULL, *again = malloc(spec.out_size);
                size_t coded_len = 0;
                MvFrameSpec plain = spec;
                MvFrameInfo info2;
                memset(&info2, 0, sizeof info2);
                plain.photometric = spec.samples == 3 ? "RGB" : "MONOCHROME2";
                if (again == NULL)
                    break;
                st = enc == 0 ? mv__rle_encode(image, 0, &coded, &coded_len, &err)
                              : mv__jpegll_encode(image, 0, &coded, &coded_len, &err);
                if (st != MV_OK)
                    pixel_check_broken("encoding a decoded frame failed", err.message);
                st = enc == 0 ? mv__rle_decode(coded, coded_len, &plain, again, &info2, &err)
                              : mv__jpegll_decode(coded, coded_len, &plain, again, &info2, &err);
                if (st != MV_OK)
                    pixel_check_broken(enc == 0 ? "medveil's RLE does not decode" : "medveil's JPEG does not decode",
                                       err.message);
                for (size_t i = 0; i < n; i++)
                    if ((mv__px_get(again, spec.bytes, i) & mask) != (mv__px_get(image->pixels, spec.bytes, i) & mask))
                        pixel_check_broken(enc == 0 ? "RLE round trip differs" : "lossless JPEG round trip differs",
                                           NULL);
                free(coded);
                free(again);
            }
            mv_image_free(image);
        }
    }
    free(out);
}

static void pixel_check_input(const uint8_t *data, size_t size)
{
    int path;

    if (size == 0)
        return;
    path = data[0] % 6;
    if (path == 0)
        pixel_check_file(data, size);
    else if (size >= PIXEL_CHECK_DIRECT_HEADER)
        pixel_check_direct(path, data, size);
}

#endif
