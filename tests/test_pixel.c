/* Unit tests of the pixel codec (src/pixel, include/medveil/pixel.h): the buffer layout
 * (stored bits, sign extension, planar and 4:2:2 input), every encoder and decoder through
 * a written and re-read file, frame location with and without offset tables, the lossy
 * policy of mv_image_encode, and refusals of hostile or unsupported input. The independent
 * oracles (dcmtk, GDCM, pydicom) are in tests/t_pixel.py; here the expected bytes come from
 * the standard (PS3.5 Annex G for RLE, T.81 for JPEG) or from the test itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jpeglib.h>

#include "medveil/dicom.h"
#include "medveil/pixel.h"
#include "pixel/pixel_int.h"

#define UID_RLE "1.2.840.10008.1.2.5"
#define UID_JPEG_BASELINE "1.2.840.10008.1.2.4.50"
#define UID_SV1 "1.2.840.10008.1.2.4.70"
#define UID_JLS "1.2.840.10008.1.2.4.80"
#define UID_J2K "1.2.840.10008.1.2.4.90"

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mv-test-pixel-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A file holding only SOP class and instance, ready for mv_image_encode. */
static MvFile *empty_file(void)
{
    MvFile *file = NULL;
    MvError err;

    assert_int_equal(mv_file_new(&file), MV_OK);
    assert_int_equal(mv_dataset_set_string(mv_file_dataset(file), MV_TAG(0x0008, 0x0016), MV_VR_UI,
                                           "1.2.840.10008.5.1.4.1.1.7", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(mv_file_dataset(file), MV_TAG(0x0008, 0x0018), MV_VR_UI, "1.2.3.4", &err),
                     MV_OK);
    return file;
}

/* Writes file and opens what was written. */
static MvFile *write_and_reopen(MvFile *file, const char *name)
{
    char path[256];
    MvWriteOptions opts;
    MvFile *again = NULL;
    MvError err;

    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    mv_write_options_init(&opts);
    opts.flags = MV_WRITE_NO_SYNC;
    if (mv_file_write(file, path, &opts, &err) != MV_OK)
        fail_msg("writing %s: %s", name, err.message);
    if (mv_file_open(path, NULL, &again, &err) != MV_OK)
        fail_msg("reading %s back: %s", name, err.message);
    return again;
}

/* A test image: a ramp with noise so that every code path of the encoders is used. */
static MvImage *test_image(uint32_t rows, uint32_t cols, uint32_t frames, uint16_t spp, uint16_t ba, uint16_t bs,
                           uint16_t pr)
{
    MvImage *image = NULL;
    MvError err;
    uint32_t seed = 12345;

    assert_int_equal(mv_image_new(rows, cols, frames, spp, ba, bs, pr, &image, &err), MV_OK);
    for (uint32_t f = 0; f < frames; f++)
        for (uint32_t r = 0; r < rows; r++)
            for (uint32_t c = 0; c < cols; c++)
                for (uint16_t s = 0; s < spp; s++) {
                    int64_t lo = pr ? -((int64_t)1 << (bs - 1)) : 0, span = (int64_t)1 << bs, v;
                    seed = seed * 1103515245u + 12345u;
                    v = (seed >> 16) % 4 == 0 ? (int64_t)(seed >> 8) % span : (int64_t)(r * 3 + c * 5 + f + s) % span;
                    mv_image_set_sample(image, f, r, c, s, lo + v);
                }
    return image;
}

static void assert_same_samples(const MvImage *a, const MvImage *b)
{
    assert_int_equal(a->rows, b->rows);
    assert_int_equal(a->columns, b->columns);
    assert_int_equal(a->frames, b->frames);
    assert_int_equal(a->samples_per_pixel, b->samples_per_pixel);
    for (uint32_t f = 0; f < a->frames; f++)
        for (uint32_t r = 0; r < a->rows; r++)
            for (uint32_t c = 0; c < a->columns; c++)
                for (uint16_t s = 0; s < a->samples_per_pixel; s++) {
                    int64_t x = mv_image_sample(a, f, r, c, s), y = mv_image_sample(b, f, r, c, s);
                    if (x != y)
                        fail_msg("frame %u row %u column %u sample %u: %lld written, %lld read", f, r, c, s,
                                 (long long)x, (long long)y);
                }
}

/* Encodes image in ts (NULL: native), writes, reads back, decodes; returns the decoded image. */
static MvImage *round_trip(const MvImage *image, const char *ts, const char *name)
{
    MvFile *file = empty_file(), *again;
    MvPixelEncodeOptions opts;
    MvImage *back = NULL;
    MvError err;

    mv_pixel_encode_options_init(&opts);
    opts.transfer_syntax = ts;
    if (mv_image_encode(file, image, &opts, &err) != MV_OK)
        fail_msg("encoding %s: %s", name, err.message);
    again = write_and_reopen(file, name);
    mv_file_free(file);
    assert_string_equal(mv_file_transfer_syntax(again)->uid, ts ? ts : MV_UID_EXPLICIT_LE);
    if (mv_image_decode(again, NULL, &back, &err) != MV_OK)
        fail_msg("decoding %s: %s", name, err.message);
    mv_file_free(again);
    return back;
}

/* ---- Layout and native --------------------------------------------------------------------- */

static void test_native_round_trip(void **state)
{
    static const struct { uint16_t spp, ba, bs, pr; } cases[] = {
        {1, 8, 8, 0}, {1, 16, 12, 0}, {1, 16, 12, 1}, {1, 16, 16, 1}, {1, 32, 32, 0}, {3, 8, 8, 0}, {3, 16, 16, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        MvImage *image = test_image(7, 9, 2, cases[i].spp, cases[i].ba, cases[i].bs, cases[i].pr);
        MvImage *back = round_trip(image, NULL, "native.dcm");
        assert_same_samples(image, back);
        assert_int_equal(back->bits_stored, cases[i].bs);
        assert_int_equal(back->high_bit, cases[i].bs - 1);
        assert_int_equal(back->pixel_representation, cases[i].pr);
        assert_int_equal(back->lossy, 0);
        mv_image_free(image);
        mv_image_free(back);
    }
}

/* A native file built by hand: 12 bits stored at bits 2..13 (High Bit 13), signed, with
 * overlay bits set above: the decoder keeps the stored bits, low-aligned and sign-extended. */
static void test_native_stored_bits(void **state)
{
    MvFile *file = empty_file(), *again;
    MvDataset *ds = mv_file_dataset(file);
    MvImage *image = NULL;
    MvError err;
    /* Stored values 5, -1, -2048, 2047, each << 2, with bit 15 set on the first (an overlay). */
    uint16_t words[4] = {(uint16_t)((5u << 2) | 0x8000u), (uint16_t)((0xFFFu) << 2), (uint16_t)(0x800u << 2),
                         (uint16_t)(0x7FFu << 2)};
    uint8_t bytes[8];

    (void)state;
    for (int i = 0; i < 4; i++) {
        bytes[2 * i] = (uint8_t)words[i];
        bytes[2 * i + 1] = (uint8_t)(words[i] >> 8);
    }
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0010), MV_VR_US, 2, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0011), MV_VR_US, 2, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0100), MV_VR_US, 16, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0101), MV_VR_US, 12, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0102), MV_VR_US, 13, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0103), MV_VR_US, 1, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0028, 0x0004), MV_VR_CS, "MONOCHROME2", &err), MV_OK);
    assert_int_equal(mv_dataset_set_bytes(ds, MV_TAG_PIXEL_DATA, MV_VR_OW, bytes, sizeof bytes, &err), MV_OK);
    again = write_and_reopen(file, "stored.dcm");
    assert_int_equal(mv_image_decode(again, NULL, &image, &err), MV_OK);
    assert_int_equal(image->high_bit, 11);
    assert_int_equal(mv_image_sample(image, 0, 0, 0, 0), 5);
    assert_int_equal(mv_image_sample(image, 0, 0, 1, 0), -1);
    assert_int_equal(mv_image_sample(image, 0, 1, 0, 0), -2048);
    assert_int_equal(mv_image_sample(image, 0, 1, 1, 0), 2047);
    assert_int_equal(((int16_t *)(void *)image->pixels)[1], -1);
    mv_image_free(image);
    /* Truncated pixel data is refused, not read past. */
    assert_int_equal(mv_dataset_set_bytes(mv_file_dataset(again), MV_TAG_PIXEL_DATA, MV_VR_OW, bytes, 6, &err),
                     MV_OK);
    assert_int_equal(mv_image_decode(again, NULL, &image, &err), MV_ERR_PARSE);
    assert_null(image);
    mv_file_free(again);
    mv_file_free(file);
}

/* Planar configuration 1 and YBR_FULL_422 come out interleaved; 4:2:2 as RGB. */
static void test_native_planar_and_422(void **state)
{
    MvFile *file = empty_file(), *again;
    MvDataset *ds = mv_file_dataset(file);
    MvImage *image = NULL;
    MvError err;
    /* 2x1 RGB planar: R R G G B B. */
    static const uint8_t planar[6] = {10, 11, 20, 21, 30, 31};
    /* 2x1 YBR_FULL_422: Y1 Y2 Cb Cr with neutral chroma: grey 100 and 200. */
    static const uint8_t ybr[4] = {100, 200, 128, 128};

    (void)state;
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0002), MV_VR_US, 3, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0006), MV_VR_US, 1, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0010), MV_VR_US, 1, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0011), MV_VR_US, 2, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0100), MV_VR_US, 8, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0028, 0x0004), MV_VR_CS, "RGB", &err), MV_OK);
    assert_int_equal(mv_dataset_set_bytes(ds, MV_TAG_PIXEL_DATA, MV_VR_OB, planar, sizeof planar, &err), MV_OK);
    again = write_and_reopen(file, "planar.dcm");
    assert_int_equal(mv_image_decode(again, NULL, &image, &err), MV_OK);
    assert_int_equal(image->planar_configuration, 0);
    assert_memory_equal(image->pixels, "\x0A\x14\x1E\x0B\x15\x1F", 6);
    mv_image_free(image);
    mv_file_free(again);

    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0006), MV_VR_US, 0, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0028, 0x0004), MV_VR_CS, "YBR_FULL_422", &err), MV_OK);
    assert_int_equal(mv_dataset_set_bytes(ds, MV_TAG_PIXEL_DATA, MV_VR_OB, ybr, sizeof ybr, &err), MV_OK);
    again = write_and_reopen(file, "ybr422.dcm");
    assert_int_equal(mv_image_decode(again, NULL, &image, &err), MV_OK);
    assert_string_equal(image->photometric, "RGB");
    assert_string_equal(image->source_photometric, "YBR_FULL_422");
    assert_int_equal(image->converted_color, 1);
    assert_memory_equal(image->pixels, "\x64\x64\x64\xC8\xC8\xC8", 6);
    /* Encoding writes what the buffer holds: RGB, planar 0. */
    assert_int_equal(mv_image_encode(again, image, NULL, &err), MV_OK);
    {
        char *pi = NULL;
        assert_int_equal(mv_dataset_get_string(mv_file_dataset(again), MV_TAG(0x0028, 0x0004), &pi, &err), MV_OK);
        assert_string_equal(pi, "RGB");
        free(pi);
    }
    mv_image_free(image);
    mv_file_free(again);
    mv_file_free(file);
}

/* ---- RLE --------------------------------------------------------------------------------- */

/* PS3.5 G.3.2 worked by hand: one 8-bit segment, a literal run then a replicate run. */
static void test_rle_decode_by_hand(void **state)
{
    uint8_t frame[64 + 6] = {0};
    uint8_t out[6];
    MvFrameSpec spec = {0};
    MvFrameInfo info = {0};
    MvError err;

    (void)state;
    frame[0] = 1;   /* one segment */
    frame[4] = 64;  /* at offset 64 */
    frame[64] = 1;  /* literal of 2: */
    frame[65] = 7;
    frame[66] = 9;
    frame[67] = 0xFD; /* replicate 4 times: */
    frame[68] = 42;
    frame[69] = 0x80; /* no-op */
    spec.rows = 2;
    spec.columns = 3;
    spec.samples = 1;
    spec.bits_allocated = spec.bits_stored = 8;
    spec.high_bit = 7;
    spec.bytes = 1;
    spec.out_size = 6;
    spec.photometric = "MONOCHROME2";
    assert_int_equal(mv__rle_decode(frame, sizeof frame, &spec, out, &info, &err), MV_OK);
    assert_memory_equal(out, "\x07\x09\x2A\x2A\x2A\x2A", 6);
    /* A replicate run past the frame, a short segment and a wrong segment count are refused. */
    frame[67] = 0xFC;
    assert_int_equal(mv__rle_decode(frame, sizeof frame, &spec, out, &info, &err), MV_ERR_PARSE);
    frame[67] = 0xFD;
    assert_int_equal(mv__rle_decode(frame, 68, &spec, out, &info, &err), MV_ERR_PARSE);
    frame[0] = 2;
    assert_int_equal(mv__rle_decode(frame, sizeof frame, &spec, out, &info, &err), MV_ERR_PARSE);
    frame[0] = 1;
    frame[4] = 200; /* offset past the end */
    assert_int_equal(mv__rle_decode(frame, sizeof frame, &spec, out, &info, &err), MV_ERR_PARSE);
}

/* ---- Every encoder, through a file --------------------------------------------------------- */

static void test_lossless_encoders_round_trip(void **state)
{
    static const char *const syntaxes[] = {UID_RLE, UID_SV1, UID_JLS, UID_J2K};
    static const struct { uint16_t spp, ba, bs, pr; } cases[] = {
        {1, 8, 8, 0}, {1, 16, 12, 0}, {1, 16, 16, 0}, {1, 16, 12, 1}, {1, 16, 16, 1}, {3, 8, 8, 0},
    };

    (void)state;
    for (size_t t = 0; t < sizeof syntaxes / sizeof syntaxes[0]; t++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            MvImage *image = test_image(13, 17, 3, cases[i].spp, cases[i].ba, cases[i].bs, cases[i].pr);
            MvImage *back = round_trip(image, syntaxes[t], "encoded.dcm");
            assert_same_samples(image, back);
            assert_int_equal(back->lossy, 0);
            mv_image_free(image);
            mv_image_free(back);
        }
}

/* The policy: a lossless compressed source is re-encoded in its own syntax (process 14
 * becomes SV1); decode_frame reads one frame through the Basic Offset Table. */
static void test_policy_keeps_lossless_syntax(void **state)
{
    MvImage *image = test_image(8, 8, 3, 1, 16, 16, 0), *frame = NULL;
    MvFile *file = empty_file(), *again;
    MvPixelEncodeOptions opts;
    MvError err;

    (void)state;
    mv_pixel_encode_options_init(&opts);
    opts.transfer_syntax = UID_JLS;
    assert_int_equal(mv_image_encode(file, image, &opts, &err), MV_OK);
    again = write_and_reopen(file, "jls.dcm");
    assert_int_equal(mv_image_decode_frame(again, 2, NULL, &frame, &err), MV_OK);
    assert_int_equal(frame->frames, 1);
    assert_int_equal(frame->first_frame, 2);
    assert_memory_equal(frame->pixels, mv_image_frame(image, 2), image->frame_size);
    {
        MvImage *none = image;
        assert_int_equal(mv_image_decode_frame(again, 3, NULL, &none, &err), MV_ERR_NOTFOUND);
        assert_null(none);
    }
    assert_int_equal(mv_image_encode(again, image, NULL, &err), MV_OK);
    assert_string_equal(mv_file_transfer_syntax(again)->uid, UID_JLS);
    opts.flags = MV_PIXEL_ENCODE_NATIVE;
    assert_int_equal(mv_image_encode(again, image, &opts, &err), MV_OK);
    assert_string_equal(mv_file_transfer_syntax(again)->uid, MV_UID_EXPLICIT_LE);
    /* An image with fewer frames than the file is refused. */
    frame->first_frame = 0;
    assert_int_equal(mv_image_encode(again, frame, NULL, &err), MV_ERR_ARG);
    mv_image_free(frame);
    mv_image_free(image);
    mv_file_free(again);
    mv_file_free(file);
}

/* ---- Frames split over fragments -------------------------------------------------------------- */

/* Two frames of lossless JPEG in three fragments (frame 0 split in two), with and without a
 * Basic Offset Table: both must decode, the second by finding each frame's SOI marker. */
static void test_fragments_split(void **state)
{
    MvImage *image = test_image(10, 12, 2, 1, 8, 8, 0), *back = NULL;
    uint8_t *f0 = NULL, *f1 = NULL;
    size_t l0, l1;
    MvError err;

    (void)state;
    assert_int_equal(mv__jpegll_encode(image, 0, &f0, &l0, &err), MV_OK);
    assert_int_equal(mv__jpegll_encode(image, 1, &f1, &l1, &err), MV_OK);
    for (int with_bot = 0; with_bot < 2; with_bot++) {
        MvFile *file = empty_file(), *again;
        MvPixelEncodeOptions opts;
        size_t half = (l0 / 2) & ~(size_t)1, first_len = half, second_len = l0 - half;
        uint8_t bot[8];
        uint32_t off1 = (uint32_t)(8 + first_len + 8 + second_len + (second_len & 1u));
        const uint8_t *data[4] = {bot, f0, f0 + half, f1};
        size_t lens[4] = {with_bot ? 8u : 0u, first_len, second_len, l1};

        memset(bot, 0, sizeof bot);
        bot[4] = (uint8_t)off1;
        bot[5] = (uint8_t)(off1 >> 8);
        mv_pixel_encode_options_init(&opts);
        assert_int_equal(mv_image_encode(file, image, &opts, &err), MV_OK); /* attributes */
        assert_int_equal(mv_dataset_set_fragments(mv_file_dataset(file), MV_TAG_PIXEL_DATA, MV_VR_OB, data, lens, 4,
                                                  &err), MV_OK);
        assert_int_equal(mv_file_set_transfer_syntax(file, UID_SV1, &err), MV_OK);
        again = write_and_reopen(file, "split.dcm");
        if (mv_image_decode(again, NULL, &back, &err) != MV_OK)
            fail_msg("with_bot %d: %s", with_bot, err.message);
        assert_same_samples(image, back);
        mv_image_free(back);
        mv_file_free(again);
        mv_file_free(file);
    }
    free(f0);
    free(f1);
    mv_image_free(image);
}

/* Lossless JPEG with every predictor and restart intervals of whole rows (and one in the
 * middle of a row): medveil decodes its own streams, and dcmtk's dcmdjpeg (when installed)
 * decodes the whole-row ones to the same samples, an independent check of both sides. */
static void test_jpegll_predictors_and_restarts(void **state)
{
    static const unsigned restarts[] = {0, 7, 17, 34, 51};
    int have_dcmtk = system("command -v dcmdjpeg >/dev/null 2>&1") == 0;
    MvImage *image = test_image(9, 17, 1, 1, 16, 12, 1);
    MvError err;

    (void)state;
    if (!have_dcmtk)
        printf("NOTE: dcmdjpeg not installed: predictor/restart streams checked by medveil only\n");
    for (int pred = 1; pred <= 7; pred++)
        for (size_t k = 0; k < sizeof restarts / sizeof restarts[0]; k++) {
            uint8_t *coded = NULL;
            size_t len = 0;
            MvFile *file = empty_file(), *again;
            MvImage *back = NULL;
            const uint8_t *data[2];
            size_t lens[2];
            char cmd[1024];

            assert_int_equal(mv__jpegll_encode_with(image, 0, pred, restarts[k], &coded, &len, &err), MV_OK);
            assert_int_equal(mv_image_encode(file, image, NULL, &err), MV_OK);
            data[0] = NULL;
            lens[0] = 0;
            data[1] = coded;
            lens[1] = len;
            assert_int_equal(mv_dataset_set_fragments(mv_file_dataset(file), MV_TAG_PIXEL_DATA, MV_VR_NONE, data,
                                                      lens, 2, &err), MV_OK);
            assert_int_equal(mv_file_set_transfer_syntax(file, "1.2.840.10008.1.2.4.57", &err), MV_OK);
            again = write_and_reopen(file, "p14.dcm");
            if (mv_image_decode(again, NULL, &back, &err) != MV_OK)
                fail_msg("predictor %d restart %u: %s", pred, restarts[k], err.message);
            assert_same_samples(image, back);
            mv_image_free(back);
            mv_file_free(again);
            /* dcmtk (like IJG) takes restart intervals of whole rows only. */
            if (have_dcmtk && restarts[k] % image->columns == 0) {
                snprintf(cmd, sizeof cmd, "dcmdjpeg '%s/p14.dcm' '%s/p14-dcmtk.dcm'", tmpdir, tmpdir);
                if (system(cmd) != 0)
                    fail_msg("dcmdjpeg cannot decode predictor %d restart %u", pred, restarts[k]);
                snprintf(cmd, sizeof cmd, "%s/p14-dcmtk.dcm", tmpdir);
                if (mv_file_open(cmd, NULL, &again, &err) != MV_OK || mv_image_decode(again, NULL, &back, &err) != MV_OK)
                    fail_msg("reading dcmtk's output: %s", err.message);
                assert_same_samples(image, back);
                mv_image_free(back);
                mv_file_free(again);
            }
            mv_file_free(file);
            free(coded);
        }
    mv_image_free(image);
}

/* ---- Lossy policy ------------------------------------------------------------------------------ */

/* A baseline JPEG made with libjpeg in memory. */
static void make_jpeg(const uint8_t *gray, unsigned w, unsigned h, uint8_t **out, unsigned long *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;

    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    *out = NULL;
    *len = 0;
    jpeg_mem_dest(&c, out, len);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    for (unsigned r = 0; r < h; r++) {
        JSAMPROW row = (JSAMPROW)(gray + (size_t)r * w);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
}

static void test_lossy_written_native_and_marked(void **state)
{
    MvImage *image = test_image(16, 16, 1, 1, 8, 8, 0), *back = NULL;
    MvFile *file = empty_file(), *again;
    uint8_t *jpeg = NULL;
    unsigned long jpeg_len = 0;
    const uint8_t *data[2];
    size_t lens[2];
    MvError err;
    char *lossy = NULL;

    (void)state;
    make_jpeg(image->pixels, 16, 16, &jpeg, &jpeg_len);
    data[0] = NULL;
    lens[0] = 0;
    data[1] = jpeg;
    lens[1] = jpeg_len;
    assert_int_equal(mv_image_encode(file, image, NULL, &err), MV_OK);
    assert_int_equal(mv_dataset_set_fragments(mv_file_dataset(file), MV_TAG_PIXEL_DATA, MV_VR_NONE, data, lens, 2, &err),
                     MV_OK);
    assert_int_equal(mv_file_set_transfer_syntax(file, UID_JPEG_BASELINE, &err), MV_OK);
    /* A stale Extended Offset Table must not survive re-encoding. */
    assert_int_equal(mv_dataset_set_bytes(mv_file_dataset(file), MV_TAG(0x7FE0, 0x0001), MV_VR_OV,
                                          "\0\0\0\0\0\0\0\0", 8, &err), MV_OK);
    again = write_and_reopen(file, "baseline.dcm");
    assert_int_equal(mv_pixel_check(again, &err), MV_OK);
    assert_int_equal(mv_image_decode(again, NULL, &back, &err), MV_OK);
    assert_int_equal(back->lossy, 1);
    for (size_t i = 0; i < 256; i++) {
        int d = (int)back->pixels[i] - (int)image->pixels[i];
        if (d < -48 || d > 48)
            fail_msg("sample %zu: %u written, %u decoded", i, image->pixels[i], back->pixels[i]);
    }
    assert_int_equal(mv_image_encode(again, back, NULL, &err), MV_OK);
    assert_string_equal(mv_file_transfer_syntax(again)->uid, MV_UID_EXPLICIT_LE);
    assert_null(mv_dataset_find(mv_file_dataset(again), MV_TAG(0x7FE0, 0x0001)));
    assert_int_equal(mv_dataset_get_string(mv_file_dataset(again), MV_TAG(0x0028, 0x2110), &lossy, &err), MV_OK);
    assert_string_equal(lossy, "01");
    free(lossy);
    mv_image_free(back);
    mv_file_free(again);
    mv_file_free(file);
    free(jpeg);
    mv_image_free(image);
}

/* ---- Refusals ---------------------------------------------------------------------------------- */

static void test_refusals(void **state)
{
    MvImage *image = test_image(4, 4, 2, 1, 16, 16, 0), *out = NULL;
    MvFile *file = empty_file(), *again;
    MvPixelDecodeOptions dopts;
    MvError err;

    (void)state;
    assert_int_equal(mv_image_decode(file, NULL, &out, &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_pixel_check(file, &err), MV_ERR_NOTFOUND);
    assert_int_equal(mv_image_encode(file, image, NULL, &err), MV_OK);
    again = write_and_reopen(file, "refuse.dcm");
    /* The cap on decoded bytes. */
    mv_pixel_decode_options_init(&dopts);
    dopts.max_bytes = 32;
    assert_int_equal(mv_image_decode(again, &dopts, &out, &err), MV_ERR_LIMIT);
    assert_null(out);
    dopts.max_bytes = 64;
    assert_int_equal(mv_image_decode(again, &dopts, &out, &err), MV_OK);
    mv_image_free(out);
    out = NULL;
    /* 1-bit, 12-bit packed and 2-sample layouts are unsupported, with a message that says so. */
    assert_int_equal(mv_dataset_set_uint(mv_file_dataset(again), MV_TAG(0x0028, 0x0100), MV_VR_US, 1, &err), MV_OK);
    assert_int_equal(mv_image_decode(again, NULL, &out, &err), MV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "1-bit"));
    assert_int_equal(mv_dataset_set_uint(mv_file_dataset(again), MV_TAG(0x0028, 0x0100), MV_VR_US, 16, &err), MV_OK);
    assert_int_equal(mv_dataset_set_uint(mv_file_dataset(again), MV_TAG(0x0028, 0x0101), MV_VR_US, 17, &err), MV_OK);
    assert_int_equal(mv_image_decode(again, NULL, &out, &err), MV_ERR_PARSE);
    assert_int_equal(mv_dataset_set_uint(mv_file_dataset(again), MV_TAG(0x0028, 0x0101), MV_VR_US, 16, &err), MV_OK);
    /* More frames declared than the data holds. */
    assert_int_equal(mv_dataset_set_uint(mv_file_dataset(again), MV_TAG(0x0028, 0x0008), MV_VR_IS, 3, &err), MV_OK);
    assert_int_equal(mv_image_decode(again, NULL, &out, &err), MV_ERR_PARSE);
    mv_file_free(again);
    mv_file_free(file);

    /* An unknown compressed syntax names itself. */
    file = empty_file();
    {
        const uint8_t *data[2] = {NULL, (const uint8_t *)"\xFF\x0A\x00\x00"};
        size_t lens[2] = {0, 4};
        assert_int_equal(mv_image_encode(file, image, NULL, &err), MV_OK);
        assert_int_equal(mv_dataset_set_fragments(mv_file_dataset(file), MV_TAG_PIXEL_DATA, MV_VR_NONE, data, lens, 2,
                                                  &err), MV_OK);
        assert_int_equal(mv_file_set_transfer_syntax(file, "1.2.840.10008.1.2.4.110", &err), MV_OK);
    }
    assert_int_equal(mv_pixel_check(file, &err), MV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "1.2.840.10008.1.2.4.110"));
    assert_false(mv_pixel_syntax_supported("1.2.840.10008.1.2.4.110"));
    assert_true(mv_pixel_syntax_supported(UID_RLE));
    /* Garbage in a supported syntax is a parse error, never a crash. */
    assert_int_equal(mv_file_set_transfer_syntax(file, UID_SV1, &err), MV_OK);
    assert_int_equal(mv_image_decode(file, NULL, &out, &err), MV_ERR_PARSE);
    assert_int_equal(mv_file_set_transfer_syntax(file, UID_JLS, &err), MV_OK);
    assert_int_equal(mv_image_decode(file, NULL, &out, &err), MV_ERR_PARSE);
    assert_int_equal(mv_file_set_transfer_syntax(file, UID_J2K, &err), MV_OK);
    assert_int_equal(mv_image_decode(file, NULL, &out, &err), MV_ERR_PARSE);
    assert_int_equal(mv_file_set_transfer_syntax(file, UID_JPEG_BASELINE, &err), MV_OK);
    assert_int_equal(mv_image_decode(file, NULL, &out, &err), MV_ERR_PARSE);
    assert_int_equal(mv_file_set_transfer_syntax(file, UID_RLE, &err), MV_OK);
    assert_int_equal(mv_image_decode(file, NULL, &out, &err), MV_ERR_PARSE);
    assert_null(out);
    mv_file_free(file);
    mv_image_free(image);
}

/* PALETTE COLOR: the three LUTs are read with their descriptors. */
static void test_palette(void **state)
{
    MvImage *image = test_image(2, 2, 1, 1, 8, 8, 0), *back = NULL;
    MvFile *file = empty_file(), *again;
    MvDataset *ds;
    MvError err;
    uint8_t desc[6] = {4, 0, 10, 0, 16, 0}, lut[8] = {0, 1, 0, 2, 0, 3, 0xFF, 0xFF};

    (void)state;
    assert_int_equal(mv_image_encode(file, image, NULL, &err), MV_OK);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0028, 0x0004), MV_VR_CS, "PALETTE COLOR", &err), MV_OK);
    for (int c = 0; c < 3; c++) {
        assert_int_equal(mv_dataset_set_bytes(ds, MV_TAG(0x0028, 0x1101 + c), MV_VR_US, desc, 6, &err), MV_OK);
        assert_int_equal(mv_dataset_set_bytes(ds, MV_TAG(0x0028, 0x1201 + c), MV_VR_OW, lut, 8, &err), MV_OK);
    }
    again = write_and_reopen(file, "palette.dcm");
    assert_int_equal(mv_image_decode(again, NULL, &back, &err), MV_OK);
    assert_string_equal(back->photometric, "PALETTE COLOR");
    assert_int_equal(back->palette[1].entries, 4);
    assert_int_equal(back->palette[1].first_mapped, 10);
    assert_int_equal(back->palette[1].bits, 16);
    assert_int_equal(back->palette[1].data[3], 0xFFFF);
    assert_int_equal(back->palette[2].data[1], 0x0200);
    mv_image_free(back);
    /* A palette shorter than its descriptor says is refused. */
    assert_int_equal(mv_dataset_set_bytes(mv_file_dataset(again), MV_TAG(0x0028, 0x1202), MV_VR_OW, lut, 4, &err),
                     MV_OK);
    assert_int_equal(mv_image_decode(again, NULL, &back, &err), MV_ERR_PARSE);
    mv_file_free(again);
    mv_file_free(file);
    mv_image_free(image);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native_round_trip),
        cmocka_unit_test(test_native_stored_bits),
        cmocka_unit_test(test_native_planar_and_422),
        cmocka_unit_test(test_rle_decode_by_hand),
        cmocka_unit_test(test_lossless_encoders_round_trip),
        cmocka_unit_test(test_policy_keeps_lossless_syntax),
        cmocka_unit_test(test_fragments_split),
        cmocka_unit_test(test_jpegll_predictors_and_restarts),
        cmocka_unit_test(test_lossy_written_native_and_marked),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_palette),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
