/* Pixel decoding front end: reads the image pixel attributes (PS3.3 C.7.6.3), finds each
 * frame's bytes (native: by stride; encapsulated: Extended or Basic Offset Table, else by
 * walking fragments, PS3.5 A.4), hands them to the decoder of the transfer syntax, then
 * normalises every frame alike (stored bits only, sign extension, 4:2:2 and YBR to RGB). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixel/pixel_int.h"

#define DEFAULT_MAX_BYTES ((uint64_t)2 << 30)

#define TAG_SAMPLES MV_TAG(0x0028, 0x0002)
#define TAG_PHOTOMETRIC MV_TAG(0x0028, 0x0004)
#define TAG_PLANAR MV_TAG(0x0028, 0x0006)
#define TAG_FRAMES MV_TAG(0x0028, 0x0008)
#define TAG_ROWS MV_TAG(0x0028, 0x0010)
#define TAG_COLUMNS MV_TAG(0x0028, 0x0011)
#define TAG_BITS_ALLOCATED MV_TAG(0x0028, 0x0100)
#define TAG_BITS_STORED MV_TAG(0x0028, 0x0101)
#define TAG_HIGH_BIT MV_TAG(0x0028, 0x0102)
#define TAG_PIXEL_REPRESENTATION MV_TAG(0x0028, 0x0103)
#define TAG_WINDOW_CENTER MV_TAG(0x0028, 0x1050)
#define TAG_WINDOW_WIDTH MV_TAG(0x0028, 0x1051)
#define TAG_RESCALE_INTERCEPT MV_TAG(0x0028, 0x1052)
#define TAG_RESCALE_SLOPE MV_TAG(0x0028, 0x1053)
#define TAG_LOSSY MV_TAG(0x0028, 0x2110)
#define TAG_EXT_OFFSETS MV_TAG(0x7FE0, 0x0001)
#define TAG_EXT_LENGTHS MV_TAG(0x7FE0, 0x0002)

/* ---- Transfer syntaxes ------------------------------------------------------------- */

typedef enum Codec { CODEC_NATIVE, CODEC_RLE, CODEC_JPEG, CODEC_JPEGLL, CODEC_JLS, CODEC_J2K, CODEC_NONE } Codec;

typedef struct SyntaxInfo {
    const char *uid;
    Codec codec;
    int lossy;        /* the syntax is (or may be) lossy */
    const char *name; /* for messages when the codec dictionary does not know the UID */
} SyntaxInfo;

static const SyntaxInfo syntaxes[] = {
    {MV_UID_IMPLICIT_LE, CODEC_NATIVE, 0, "Implicit VR Little Endian"},
    {MV_UID_EXPLICIT_LE, CODEC_NATIVE, 0, "Explicit VR Little Endian"},
    {MV_UID_DEFLATED_LE, CODEC_NATIVE, 0, "Deflated Explicit VR Little Endian"},
    {MV_UID_EXPLICIT_BE, CODEC_NATIVE, 0, "Explicit VR Big Endian"},
    {"1.2.840.10008.1.2.5", CODEC_RLE, 0, "RLE Lossless"},
    {"1.2.840.10008.1.2.4.50", CODEC_JPEG, 1, "JPEG Baseline (Process 1)"},
    {"1.2.840.10008.1.2.4.51", CODEC_JPEG, 1, "JPEG Extended (Process 2 & 4)"},
    {"1.2.840.10008.1.2.4.57", CODEC_JPEGLL, 0, "JPEG Lossless (Process 14)"},
    {"1.2.840.10008.1.2.4.70", CODEC_JPEGLL, 0, "JPEG Lossless SV1 (Process 14, Selection Value 1)"},
    {"1.2.840.10008.1.2.4.80", CODEC_JLS, 0, "JPEG-LS Lossless"},
    {"1.2.840.10008.1.2.4.81", CODEC_JLS, 1, "JPEG-LS Near-Lossless"},
    {"1.2.840.10008.1.2.4.90", CODEC_J2K, 0, "JPEG 2000 Lossless Only"},
    {"1.2.840.10008.1.2.4.91", CODEC_J2K, 1, "JPEG 2000"},
    {"1.2.840.10008.1.2.4.201", CODEC_J2K, 0, "HTJ2K Lossless"},
    {"1.2.840.10008.1.2.4.202", CODEC_J2K, 0, "HTJ2K Lossless RPCL"},
    {"1.2.840.10008.1.2.4.203", CODEC_J2K, 1, "HTJ2K"},
};

static const SyntaxInfo *syntax_info(const char *uid)
{
    for (size_t i = 0; i < sizeof syntaxes / sizeof syntaxes[0]; i++)
        if (strcmp(syntaxes[i].uid, uid) == 0)
            return &syntaxes[i];
    return NULL;
}

int mv_pixel_syntax_supported(const char *uid)
{
    return uid != NULL && syntax_info(uid) != NULL;
}

void mv_pixel_decode_options_init(MvPixelDecodeOptions *opts)
{
    memset(opts, 0, sizeof *opts);
}

/* ---- Attributes ----------------------------------------------------------------------- */

static MvStatus get_uint(const MvDataset *ds, uint32_t tag, int required, uint64_t dflt, uint64_t *out,
                         MvError *err)
{
    MvElement *el = mv_dataset_find(ds, tag);

    *out = dflt;
    if (el == NULL || mv_element_length(el) == 0) {
        if (required)
            return mv_error_set(err, MV_ERR_PARSE, tag, MV_NO_OFFSET, "(%04X,%04X) is missing or empty",
                                MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
        return MV_OK;
    }
    if (mv_element_uint(ds, el, 0, out, NULL) != MV_OK) {
        int64_t v;
        if (mv_element_int(ds, el, 0, &v, NULL) != MV_OK || v < 0)
            return mv_error_set(err, MV_ERR_PARSE, tag, mv_element_offset(el), "(%04X,%04X) is not a valid number",
                                MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
        *out = (uint64_t)v;
    }
    return MV_OK;
}

static void get_text(const MvDataset *ds, uint32_t tag, char *buf, size_t size)
{
    MvElement *el = mv_dataset_find(ds, tag);
    const uint8_t *v;
    size_t len = 0, n = 0;

    buf[0] = '\0';
    if (el == NULL || (v = mv_element_value(el, &len)) == NULL)
        return;
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\0'))
        len--;
    while (len > 0 && *v == ' ') {
        v++;
        len--;
    }
    for (size_t i = 0; i < len && n + 1 < size; i++)
        buf[n++] = isprint(v[i]) ? (char)v[i] : '?';
    buf[n] = '\0';
}

static size_t get_doubles(const MvDataset *ds, uint32_t tag, double *out, size_t max)
{
    MvElement *el = mv_dataset_find(ds, tag);
    size_t n = 0, vm;

    if (el == NULL)
        return 0;
    vm = mv_element_vm(el);
    for (size_t i = 0; i < vm && n < max; i++)
        if (mv_element_double(ds, el, i, &out[n], NULL) == MV_OK)
            n++;
    return n;
}

/* Everything decode needs to know about a file, gathered once. */
typedef struct Source {
    const MvFile *file;
    const MvDataset *ds;
    const MvElement *px;
    const SyntaxInfo *syntax;
    const char *uid;
    MvFrameSpec spec;
    uint32_t frames;
    int ybr422;             /* native YBR_FULL_422: 2 luma per chroma pair */
    size_t native_frame;    /* bytes of one native frame in the file */
} Source;

static const char *file_label(const MvFile *file)
{
    return file ? mv_file_name(file) : "<memory>";
}

/* Reads and checks the attributes; fills src and the descriptive fields of image. */
static MvStatus describe(const MvFile *file, Source *src, MvImage *image, MvError *err)
{
    const MvDataset *ds = mv_file_dataset(file);
    const MvTransferSyntax *ts = mv_file_transfer_syntax(file);
    uint64_t rows, cols, spp, ba, bs, hb, pr, planar, frames;
    MvStatus st;
    char lossy_text[8];

    memset(src, 0, sizeof *src);
    src->file = file;
    src->ds = ds;
    src->uid = ts && ts->uid ? ts->uid : MV_UID_IMPLICIT_LE;
    src->px = mv_dataset_find(ds, MV_TAG_PIXEL_DATA);
    if (src->px == NULL) {
        if (mv_dataset_find(ds, MV_TAG(0x7FE0, 0x0008)) || mv_dataset_find(ds, MV_TAG(0x7FE0, 0x0009)))
            return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG(0x7FE0, 0x0008), MV_NO_OFFSET,
                                "float pixel data (7FE0,0008)/(7FE0,0009) is not decoded");
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "no Pixel Data (7FE0,0010)");
    }
    src->syntax = syntax_info(src->uid);
    if (src->syntax == NULL)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_TRANSFER_SYNTAX, MV_NO_OFFSET,
                            "pixel data in transfer syntax %s (%s) is not decoded", src->uid,
                            ts && ts->name ? ts->name : "unknown syntax");
    if ((src->syntax->codec == CODEC_NATIVE) == (mv_element_is_encapsulated(src->px) != 0))
        return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, mv_element_offset(src->px),
                            "Pixel Data is %s but the transfer syntax %s says otherwise",
                            mv_element_is_encapsulated(src->px) ? "encapsulated" : "native", src->uid);
    if ((st = get_uint(ds, TAG_ROWS, 1, 0, &rows, err)) != MV_OK ||
        (st = get_uint(ds, TAG_COLUMNS, 1, 0, &cols, err)) != MV_OK ||
        (st = get_uint(ds, TAG_BITS_ALLOCATED, 1, 0, &ba, err)) != MV_OK ||
        (st = get_uint(ds, TAG_SAMPLES, 0, 1, &spp, err)) != MV_OK ||
        (st = get_uint(ds, TAG_BITS_STORED, 0, ba, &bs, err)) != MV_OK ||
        (st = get_uint(ds, TAG_HIGH_BIT, 0, bs ? bs - 1 : 0, &hb, err)) != MV_OK ||
        (st = get_uint(ds, TAG_PIXEL_REPRESENTATION, 0, 0, &pr, err)) != MV_OK ||
        (st = get_uint(ds, TAG_PLANAR, 0, 0, &planar, err)) != MV_OK ||
        (st = get_uint(ds, TAG_FRAMES, 0, 1, &frames, err)) != MV_OK)
        return st;
    if (frames == 0)
        frames = 1;
    if (rows == 0 || cols == 0 || rows > 65535 || cols > 65535)
        return mv_error_set(err, MV_ERR_PARSE, TAG_ROWS, MV_NO_OFFSET, "image size %llux%llu is not valid",
                            (unsigned long long)rows, (unsigned long long)cols);
    if (spp != 1 && spp != 3)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, TAG_SAMPLES, MV_NO_OFFSET,
                            "%llu samples per pixel (only 1 and 3 are decoded)", (unsigned long long)spp);
    if (ba == 1)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, TAG_BITS_ALLOCATED, MV_NO_OFFSET,
                            "1-bit pixel data is not decoded");
    if (ba != 8 && ba != 16 && ba != 32)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, TAG_BITS_ALLOCATED, MV_NO_OFFSET,
                            "Bits Allocated %llu is not decoded (8, 16 and 32 are)", (unsigned long long)ba);
    if (bs == 0 || bs > ba || hb >= ba || hb + 1 < bs)
        return mv_error_set(err, MV_ERR_PARSE, TAG_BITS_STORED, MV_NO_OFFSET,
                            "Bits Stored %llu / High Bit %llu do not fit Bits Allocated %llu",
                            (unsigned long long)bs, (unsigned long long)hb, (unsigned long long)ba);
    if (pr > 1 || planar > 1)
        return mv_error_set(err, MV_ERR_PARSE, pr > 1 ? TAG_PIXEL_REPRESENTATION : TAG_PLANAR, MV_NO_OFFSET,
                            "Pixel Representation %llu / Planar Configuration %llu is not valid",
                            (unsigned long long)pr, (unsigned long long)planar);
    if (frames > 0x7FFFFFFFu)
        return mv_error_set(err, MV_ERR_PARSE, TAG_FRAMES, MV_NO_OFFSET, "Number of Frames is not valid");

    get_text(ds, TAG_PHOTOMETRIC, image->source_photometric, sizeof image->source_photometric);
    if (image->source_photometric[0] == '\0')
        snprintf(image->source_photometric, sizeof image->source_photometric, "%s",
                 spp == 3 ? "RGB" : "MONOCHROME2");
    snprintf(image->photometric, sizeof image->photometric, "%s", image->source_photometric);

    src->frames = (uint32_t)frames;
    src->spec.rows = (uint32_t)rows;
    src->spec.columns = (uint32_t)cols;
    src->spec.samples = (uint16_t)spp;
    src->spec.bits_allocated = (uint16_t)ba;
    src->spec.bits_stored = (uint16_t)bs;
    src->spec.high_bit = (uint16_t)hb;
    src->spec.signed_samples = (uint16_t)pr;
    src->spec.planar = (uint16_t)(spp > 1 ? planar : 0);
    src->spec.bytes = (uint16_t)(ba / 8);
    src->spec.out_size = (size_t)rows * cols * spp * src->spec.bytes;
    src->spec.photometric = image->source_photometric;
    src->ybr422 = spp == 3 && strcmp(image->source_photometric, "YBR_FULL_422") == 0;
    if (src->syntax->codec == CODEC_NATIVE) {
        if (src->ybr422 && (cols & 1u))
            return mv_error_set(err, MV_ERR_PARSE, TAG_COLUMNS, MV_NO_OFFSET,
                                "YBR_FULL_422 needs an even number of columns");
        src->native_frame = src->ybr422 ? (size_t)rows * cols * 2 * src->spec.bytes : src->spec.out_size;
    }

    image->rows = src->spec.rows;
    image->columns = src->spec.columns;
    image->file_frames = src->frames;
    image->frames = src->frames;
    image->samples_per_pixel = src->spec.samples;
    image->bits_allocated = src->spec.bits_allocated;
    image->bits_stored = src->spec.bits_stored;
    image->high_bit = (uint16_t)(bs - 1);
    image->pixel_representation = src->spec.signed_samples;
    image->planar_configuration = 0;
    image->bytes_per_sample = src->spec.bytes;
    image->frame_size = src->spec.out_size;
    snprintf(image->transfer_syntax, sizeof image->transfer_syntax, "%s", src->uid);
    get_text(ds, TAG_LOSSY, lossy_text, sizeof lossy_text);
    image->lossy = src->syntax->lossy || strcmp(lossy_text, "01") == 0;
    {
        double v;
        image->rescale_slope = 1.0;
        image->rescale_intercept = 0.0;
        if (get_doubles(ds, TAG_RESCALE_SLOPE, &v, 1) == 1) {
            image->rescale_slope = v;
            image->has_rescale = 1;
        }
        if (get_doubles(ds, TAG_RESCALE_INTERCEPT, &v, 1) == 1) {
            image->rescale_intercept = v;
            image->has_rescale = 1;
        }
    }
    {
        size_t nc = get_doubles(ds, TAG_WINDOW_CENTER, image->window_center, MV_PIXEL_MAX_WINDOWS);
        size_t nw = get_doubles(ds, TAG_WINDOW_WIDTH, image->window_width, MV_PIXEL_MAX_WINDOWS);
        image->n_windows = nc < nw ? nc : nw;
    }
    /* The colour space of the buffer after decoding (see pixel.h). */
    if (src->ybr422 && (src->syntax->codec == CODEC_NATIVE || src->syntax->codec == CODEC_JPEG)) {
        snprintf(image->photometric, sizeof image->photometric, "RGB");
        image->converted_color = 1;
    } else if (src->ybr422) {
        /* RLE, JPEG-LS and JPEG 2000 hold full-resolution components (upsampled by the
         * decoder if the codestream subsamples): the buffer is YBR_FULL. */
        snprintf(image->photometric, sizeof image->photometric, "YBR_FULL");
    } else if (spp == 3 && src->syntax->codec == CODEC_JPEG && strncmp(image->source_photometric, "YBR", 3) == 0) {
        snprintf(image->photometric, sizeof image->photometric, "RGB");
        image->converted_color = 1;
    } else if (spp == 3 && (strcmp(image->source_photometric, "YBR_ICT") == 0 ||
                            strcmp(image->source_photometric, "YBR_RCT") == 0)) {
        snprintf(image->photometric, sizeof image->photometric, "RGB");
        image->converted_color = 1;
    }
    return MV_OK;
}

/* PS3.3 C.7.6.3.1.5/C.7.9: the three palette descriptors and their data. */
static MvStatus read_palette(const MvDataset *ds, MvImage *image, MvError *err)
{
    for (int c = 0; c < 3; c++) {
        uint32_t desc_tag = MV_TAG(0x0028, 0x1101 + c), data_tag = MV_TAG(0x0028, 0x1201 + c);
        MvElement *desc = mv_dataset_find(ds, desc_tag), *data = mv_dataset_find(ds, data_tag);
        uint64_t entries = 0, bits = 0;
        int64_t first = 0;
        const uint8_t *v;
        size_t len = 0, need;
        MvPaletteLut *lut = &image->palette[c];

        if (desc == NULL || data == NULL || mv_element_vm(desc) < 3)
            return mv_error_set(err, MV_ERR_PARSE, desc_tag, MV_NO_OFFSET,
                                "PALETTE COLOR without a complete (%04X,%04X) descriptor and (%04X,%04X) data",
                                MV_TAG_GROUP(desc_tag), MV_TAG_ELEMENT(desc_tag), MV_TAG_GROUP(data_tag),
                                MV_TAG_ELEMENT(data_tag));
        if (mv_element_uint(ds, desc, 0, &entries, NULL) != MV_OK || mv_element_uint(ds, desc, 2, &bits, NULL) != MV_OK)
            return mv_error_set(err, MV_ERR_PARSE, desc_tag, MV_NO_OFFSET, "palette descriptor is not readable");
        if (mv_element_vr(desc) == MV_VR_SS) {
            if (mv_element_int(ds, desc, 1, &first, NULL) != MV_OK)
                first = 0;
        } else {
            uint64_t u = 0;
            mv_element_uint(ds, desc, 1, &u, NULL);
            first = (int64_t)u;
        }
        /* PS3.3 C.7.6.3.1.5: 0 entries means 65536. */
        if (entries == 0)
            entries = 65536;
        v = mv_element_value(data, &len);
        need = (size_t)entries * (bits <= 8 && len < (size_t)entries * 2 ? 1 : 2);
        if (v == NULL || len < need || entries > 65536)
            return mv_error_set(err, MV_ERR_PARSE, data_tag, mv_element_offset(data),
                                "palette data holds %zu bytes, %llu entries declared", len,
                                (unsigned long long)entries);
        lut->data = malloc((size_t)entries * sizeof *lut->data);
        if (lut->data == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, data_tag, MV_NO_OFFSET, "out of memory");
        lut->entries = (uint32_t)entries;
        lut->first_mapped = (int32_t)first;
        lut->bits = bits <= 8 ? 8 : 16;
        {
            int be = mv_dataset_big_endian(ds);
            int one_byte = need == (size_t)entries;
            for (size_t i = 0; i < entries; i++) {
                uint16_t e;
                if (one_byte)
                    e = v[i];
                else
                    e = be ? (uint16_t)((v[2 * i] << 8) | v[2 * i + 1]) : (uint16_t)((v[2 * i + 1] << 8) | v[2 * i]);
                /* Many 8-bit palettes are stored in 16-bit words with the value in the low byte. */
                lut->data[i] = e;
            }
        }
    }
    return MV_OK;
}

/* ---- Frames of encapsulated data --------------------------------------------------------- */

/* Index of the fragment whose item starts at byte off (positions increase), 0 if none. */
static size_t fragment_at(const uint64_t *positions, size_t n_frags, uint64_t off)
{
    size_t lo = 1, hi = n_frags;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (positions[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n_frags && positions[lo] == off ? lo : 0;
}

/* Start fragment index (1-based in the element) of each frame, n_frames + 1 entries, the
 * last one the fragment count. Fails when no consistent split exists. */
static MvStatus locate_frames(const Source *src, size_t *starts, MvError *err)
{
    const MvElement *px = src->px;
    size_t n_frags = mv_element_fragment_count(px), n_data = n_frags > 0 ? n_frags - 1 : 0;
    uint32_t frames = src->frames;
    size_t bot_len = 0;
    const uint8_t *bot = n_frags > 0 ? mv_element_fragment(px, 0, &bot_len) : NULL;
    uint64_t *positions = NULL;
    MvStatus st = MV_OK;

    if (n_data == 0)
        return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, mv_element_offset(px),
                            "encapsulated Pixel Data holds no fragment");
    starts[frames] = n_frags;
    if (n_data == frames) {
        for (uint32_t f = 0; f < frames; f++)
            starts[f] = f + 1;
        return MV_OK;
    }
    if (frames == 1) {
        starts[0] = 1;
        return MV_OK;
    }
    if (n_data < frames)
        return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, mv_element_offset(px),
                            "%u frames declared but only %zu fragments", frames, n_data);
    /* Byte position of each fragment item relative to the first fragment's item tag. */
    positions = malloc(n_frags * sizeof *positions);
    if (positions == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
    {
        uint64_t pos = 0;
        for (size_t i = 1; i < n_frags; i++) {
            size_t len = 0;
            mv_element_fragment(px, i, &len);
            positions[i] = pos;
            pos += 8 + (uint64_t)len;
        }
    }
    {
        /* Offsets: Extended Offset Table (7FE0,0001), 64-bit, else the Basic Offset Table. */
        const MvElement *eot = mv_dataset_find(src->ds, TAG_EXT_OFFSETS);
        const uint8_t *ev = NULL;
        size_t elen = 0;
        int have = 0;
        if (eot != NULL && (ev = mv_element_value(eot, &elen)) != NULL && elen / 8 == frames) {
            int be = mv_dataset_big_endian(src->ds);
            have = 1;
            for (uint32_t f = 0; f < frames && have; f++) {
                uint64_t off = 0;
                for (int b = 0; b < 8; b++)
                    off |= (uint64_t)ev[8 * f + (be ? 7 - b : b)] << (8 * b);
                starts[f] = fragment_at(positions, n_frags, off);
                have = starts[f] != 0 && (f == 0 || starts[f] > starts[f - 1]);
            }
        }
        if (!have && bot != NULL && bot_len / 4 == frames) {
            have = 1;
            for (uint32_t f = 0; f < frames && have; f++) {
                uint64_t off = (uint64_t)bot[4 * f] | ((uint64_t)bot[4 * f + 1] << 8) |
                               ((uint64_t)bot[4 * f + 2] << 16) | ((uint64_t)bot[4 * f + 3] << 24);
                starts[f] = fragment_at(positions, n_frags, off);
                have = starts[f] != 0 && (f == 0 || starts[f] > starts[f - 1]);
            }
        }
        if (have)
            goto out;
    }
    /* Walk the fragments: a new frame starts where a fragment starts a new codestream
     * (JPEG SOI, JPEG 2000 SOC or a JP2 signature box). */
    {
        uint32_t f = 0;
        for (size_t i = 1; i < n_frags; i++) {
            size_t len = 0;
            const uint8_t *d = mv_element_fragment(px, i, &len);
            int begins = len >= 2 && ((d[0] == 0xFF && d[1] == 0xD8) || (d[0] == 0xFF && d[1] == 0x4F) ||
                                      (len >= 12 && memcmp(d, "\x00\x00\x00\x0CjP  ", 8) == 0));
            if (i == 1 || begins) {
                if (f == frames) {
                    f++;
                    break;
                }
                starts[f++] = i;
            }
        }
        if (f != frames || (src->syntax->codec == CODEC_RLE))
            st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, mv_element_offset(px),
                              "cannot tell the %u frames apart among %zu fragments (no usable offset table)",
                              frames, n_data);
    }
out:
    free(positions);
    return st;
}

/* One frame's compressed bytes: a pointer into the file when the frame is one fragment,
 * else a malloc'd join in *owned. */
static MvStatus frame_bytes(const Source *src, const size_t *starts, uint32_t frame, const uint8_t **data,
                            size_t *len, uint8_t **owned, MvError *err)
{
    size_t first = starts[frame], end = starts[frame + 1], total = 0;
    uint8_t *buf;

    *owned = NULL;
    if (end == first + 1) {
        *data = mv_element_fragment(src->px, first, len);
        return MV_OK;
    }
    for (size_t i = first; i < end; i++) {
        size_t l = 0;
        mv_element_fragment(src->px, i, &l);
        total += l;
    }
    buf = malloc(total ? total : 1);
    if (buf == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
    total = 0;
    for (size_t i = first; i < end; i++) {
        size_t l = 0;
        const uint8_t *d = mv_element_fragment(src->px, i, &l);
        memcpy(buf + total, d, l);
        total += l;
    }
    *owned = buf;
    *data = buf;
    *len = total;
    return MV_OK;
}

/* ---- Native -------------------------------------------------------------------------------- */

static MvStatus native_frame(const Source *src, uint32_t frame, uint8_t *out, MvError *err)
{
    size_t len = 0, n_samples;
    const uint8_t *v = mv_element_value(src->px, &len);
    const MvFrameSpec *sp = &src->spec;
    int be = mv_dataset_big_endian(src->ds);
    int pair_swap = be && sp->bytes == 1 && mv_element_vr(src->px) == MV_VR_OW;
    const uint8_t *p;
    size_t stride = src->native_frame;

    if (v == NULL || len / stride <= frame)
        return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, mv_element_offset(src->px),
                            "Pixel Data holds %zu bytes; frame %u needs %zu from offset %zu", len, frame, stride,
                            (size_t)frame * stride);
    p = v + (size_t)frame * stride;
    if (src->ybr422) {
        /* PS3.3 C.7.6.3.1.2: Y1 Y2 Cb Cr for each pair of pixels; chroma is repeated. */
        size_t pairs = (size_t)sp->rows * sp->columns / 2;
        for (size_t i = 0; i < pairs; i++) {
            uint32_t q[4];
            for (int k = 0; k < 4; k++) {
                size_t at = 4 * i + (size_t)k;
                if (sp->bytes == 1)
                    q[k] = p[pair_swap ? at ^ 1u : at];
                else if (sp->bytes == 2)
                    q[k] = be ? (uint32_t)((p[2 * at] << 8) | p[2 * at + 1]) : (uint32_t)((p[2 * at + 1] << 8) | p[2 * at]);
                else
                    q[k] = be ? ((uint32_t)p[4 * at] << 24) | ((uint32_t)p[4 * at + 1] << 16) |
                                    ((uint32_t)p[4 * at + 2] << 8) | p[4 * at + 3]
                              : ((uint32_t)p[4 * at + 3] << 24) | ((uint32_t)p[4 * at + 2] << 16) |
                                    ((uint32_t)p[4 * at + 1] << 8) | p[4 * at];
            }
            mv__px_put(out, sp->bytes, 6 * i + 0, q[0]);
            mv__px_put(out, sp->bytes, 6 * i + 1, q[2]);
            mv__px_put(out, sp->bytes, 6 * i + 2, q[3]);
            mv__px_put(out, sp->bytes, 6 * i + 3, q[1]);
            mv__px_put(out, sp->bytes, 6 * i + 4, q[2]);
            mv__px_put(out, sp->bytes, 6 * i + 5, q[3]);
        }
        return MV_OK;
    }
    n_samples = (size_t)sp->rows * sp->columns * sp->samples;
    if (sp->bytes == 1) {
        if (pair_swap)
            for (size_t i = 0; i < n_samples; i++)
                out[i] = p[i ^ 1u];
        else
            memcpy(out, p, n_samples);
    } else if (!be) {
        memcpy(out, p, n_samples * sp->bytes);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (size_t i = 0; i < n_samples; i++) {
            const uint8_t *s = p + i * sp->bytes;
            mv__px_put(out, sp->bytes, i,
                       sp->bytes == 2 ? (uint32_t)((s[1] << 8) | s[0])
                                      : ((uint32_t)s[3] << 24) | ((uint32_t)s[2] << 16) | ((uint32_t)s[1] << 8) | s[0]);
        }
#endif
    } else {
        for (size_t i = 0; i < n_samples; i++) {
            const uint8_t *s = p + i * sp->bytes;
            mv__px_put(out, sp->bytes, i,
                       sp->bytes == 2 ? (uint32_t)((s[0] << 8) | s[1])
                                      : ((uint32_t)s[0] << 24) | ((uint32_t)s[1] << 16) | ((uint32_t)s[2] << 8) | s[3]);
        }
    }
    if (sp->planar == 1) {
        /* Planar configuration 1: RRR.. GGG.. BBB.. into R G B R G B ... */
        size_t plane = (size_t)sp->rows * sp->columns;
        uint8_t *tmp = malloc(sp->out_size);
        if (tmp == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
        memcpy(tmp, out, sp->out_size);
        for (size_t i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                mv__px_put(out, sp->bytes, 3 * i + (size_t)c, mv__px_get(tmp, sp->bytes, (size_t)c * plane + i));
        free(tmp);
    }
    return MV_OK;
}

/* ---- Normalisation ---------------------------------------------------------------------- */

/* PS3.3 C.7.6.3.1.2: YBR_FULL to RGB (full range, ITU-R BT.601 coefficients). */
static void ybr_to_rgb(uint8_t *buf, const MvFrameSpec *sp)
{
    size_t n = (size_t)sp->rows * sp->columns;
    uint32_t max = (sp->bits_stored >= 32) ? 0xFFFFFFFFu : (1u << sp->bits_stored) - 1u;
    double half = (double)(max / 2 + 1);

    for (size_t i = 0; i < n; i++) {
        double y = mv__px_get(buf, sp->bytes, 3 * i), cb = mv__px_get(buf, sp->bytes, 3 * i + 1) - half,
               cr = mv__px_get(buf, sp->bytes, 3 * i + 2) - half;
        mv__px_put(buf, sp->bytes, 3 * i, mv__px_clamp(y + 1.402 * cr, max));
        mv__px_put(buf, sp->bytes, 3 * i + 1, mv__px_clamp(y - 0.344136 * cb - 0.714136 * cr, max));
        mv__px_put(buf, sp->bytes, 3 * i + 2, mv__px_clamp(y + 1.772 * cb, max));
    }
}

/* Keeps the stored bits, low-aligned, sign-extended for signed data. shift is the
 * position of the lowest stored bit (native and RLE: high_bit + 1 - bits_stored). */
static void normalise(uint8_t *buf, const MvFrameSpec *sp, unsigned shift)
{
    size_t n = (size_t)sp->rows * sp->columns * sp->samples;
    unsigned bs = sp->bits_stored, width = 8u * sp->bytes;

    if (bs == width && shift == 0)
        return;
    if (sp->bytes == 1) {
        uint8_t mask = (uint8_t)((1u << bs) - 1u), sign = (uint8_t)(1u << (bs - 1));
        for (size_t i = 0; i < n; i++) {
            uint8_t v = (uint8_t)((buf[i] >> shift) & mask);
            if (sp->signed_samples && (v & sign))
                v = (uint8_t)(v | (uint8_t)~mask);
            buf[i] = v;
        }
    } else if (sp->bytes == 2) {
        uint16_t *b = (uint16_t *)(void *)buf;
        uint16_t mask = (uint16_t)((1u << bs) - 1u), sign = (uint16_t)(1u << (bs - 1));
        for (size_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)((b[i] >> shift) & mask);
            if (sp->signed_samples && (v & sign))
                v = (uint16_t)(v | (uint16_t)~mask);
            b[i] = v;
        }
    } else {
        uint32_t *b = (uint32_t *)(void *)buf;
        uint32_t mask = bs >= 32 ? 0xFFFFFFFFu : (1u << bs) - 1u, sign = 1u << (bs - 1);
        for (size_t i = 0; i < n; i++) {
            uint32_t v = (b[i] >> shift) & mask;
            if (sp->signed_samples && (v & sign))
                v |= ~mask;
            b[i] = v;
        }
    }
}

static MvStatus decode_one(const Source *src, const size_t *starts, uint32_t frame, uint8_t *out, MvImage *image,
                           MvError *err)
{
    const uint8_t *data = NULL;
    uint8_t *owned = NULL;
    size_t len = 0;
    MvFrameInfo info = {0};
    MvStatus st;
    unsigned shift = 0;

    if (src->syntax->codec == CODEC_NATIVE) {
        st = native_frame(src, frame, out, err);
        shift = (unsigned)(src->spec.high_bit + 1 - src->spec.bits_stored);
        info.converted_rgb = 0;
    } else {
        if ((st = frame_bytes(src, starts, frame, &data, &len, &owned, err)) != MV_OK)
            return st;
        switch (src->syntax->codec) {
        case CODEC_RLE:
            st = mv__rle_decode(data, len, &src->spec, out, &info, err);
            shift = (unsigned)(src->spec.high_bit + 1 - src->spec.bits_stored);
            break;
        case CODEC_JPEG:
            st = mv__jpeg_decode(data, len, &src->spec, out, &info, err);
            break;
        case CODEC_JPEGLL:
            st = mv__jpegll_decode(data, len, &src->spec, out, &info, err);
            break;
        case CODEC_JLS:
            st = mv__jls_decode(data, len, &src->spec, out, &info, err);
            break;
        case CODEC_J2K:
            st = mv__j2k_decode(data, len, &src->spec, out, &info, err);
            break;
        default:
            st = mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_TRANSFER_SYNTAX, MV_NO_OFFSET, "no decoder");
            break;
        }
        free(owned);
    }
    if (st != MV_OK) {
        char where[32];
        snprintf(where, sizeof where, "frame %u", frame);
        mv_error_prefix(err, where);
        return st;
    }
    if (info.stream_lossy)
        image->lossy = 1;
    normalise(out, &src->spec, shift);
    /* Colour: native and RLE YBR_FULL_422 were expanded to full resolution YBR; decoders
     * that already produced RGB say so. */
    if (src->syntax->codec == CODEC_JPEG) {
        /* libjpeg converts what the stream says is YCbCr, whatever the label: the buffer is RGB. */
        if (info.converted_rgb)
            image->converted_color = 1;
    } else if (image->converted_color && !info.converted_rgb && src->spec.samples == 3) {
        ybr_to_rgb(out, &src->spec);
    }
    return MV_OK;
}

/* ---- Public ------------------------------------------------------------------------------- */

void mv_image_free(MvImage *image)
{
    if (image == NULL)
        return;
    free(image->pixels);
    for (int c = 0; c < 3; c++)
        free(image->palette[c].data);
    free(image);
}

static MvStatus start(const MvFile *file, Source *src, MvImage **out, MvError *err)
{
    MvImage *image = calloc(1, sizeof *image);
    MvStatus st;

    *out = NULL;
    if (image == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    if ((st = describe(file, src, image, err)) == MV_OK && strcmp(image->photometric, "PALETTE COLOR") == 0)
        st = read_palette(src->ds, image, err);
    if (st != MV_OK) {
        mv_image_free(image);
        return st;
    }
    *out = image;
    return MV_OK;
}

static MvStatus decode_range(const MvFile *file, uint32_t first, uint32_t count_or_all, int all,
                             const MvPixelDecodeOptions *opts, MvImage **out, MvError *err)
{
    Source src;
    MvImage *image = NULL;
    size_t *starts = NULL;
    uint64_t max = opts && opts->max_bytes ? opts->max_bytes : DEFAULT_MAX_BYTES;
    uint32_t count;
    MvStatus st;

    mv_error_clear(err);
    *out = NULL;
    if ((st = start(file, &src, &image, err)) != MV_OK)
        goto out;
    count = all ? src.frames : count_or_all;
    if (first >= src.frames) {
        st = mv_error_set(err, MV_ERR_NOTFOUND, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                          "frame %u does not exist (the file has %u)", first, src.frames);
        goto out;
    }
    if ((uint64_t)src.spec.out_size * count > max) {
        st = mv_error_set(err, MV_ERR_LIMIT, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                          "decoding %u frame(s) of %ux%u needs %llu bytes, over the cap of %llu", count,
                          src.spec.rows, src.spec.columns, (unsigned long long)src.spec.out_size * count,
                          (unsigned long long)max);
        goto out;
    }
    if (src.syntax->codec == CODEC_NATIVE) {
        size_t len = 0;
        mv_element_value(src.px, &len);
        /* A native file must hold every frame it declares. */
        if (len / src.native_frame < src.frames) {
            st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, mv_element_offset(src.px),
                              "Pixel Data holds %zu bytes; %u frame(s) of %zu bytes declared", len, src.frames,
                              src.native_frame);
            goto out;
        }
    } else {
        starts = malloc(((size_t)src.frames + 1) * sizeof *starts);
        if (starts == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            goto out;
        }
        /* Frames cannot outnumber fragments: this bounds starts by the file's size too. */
        if (src.frames > mv_element_fragment_count(src.px)) {
            st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, mv_element_offset(src.px),
                              "%u frames declared but only %zu fragments", src.frames,
                              mv_element_fragment_count(src.px) ? mv_element_fragment_count(src.px) - 1 : 0);
            goto out;
        }
        if ((st = locate_frames(&src, starts, err)) != MV_OK)
            goto out;
    }
    image->pixels = malloc(src.spec.out_size * count);
    if (image->pixels == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory for %llu bytes",
                          (unsigned long long)src.spec.out_size * count);
        goto out;
    }
    image->frames = count;
    image->first_frame = first;
    for (uint32_t f = 0; f < count && st == MV_OK; f++)
        st = decode_one(&src, starts, first + f, image->pixels + (size_t)f * src.spec.out_size, image, err);
out:
    free(starts);
    if (st != MV_OK) {
        mv_image_free(image);
        mv_error_prefix(err, file_label(file));
        return st;
    }
    *out = image;
    return MV_OK;
}

MvStatus mv_image_decode(const MvFile *file, const MvPixelDecodeOptions *opts, MvImage **out, MvError *err)
{
    return decode_range(file, 0, 0, 1, opts, out, err);
}

MvStatus mv_image_decode_frame(const MvFile *file, uint32_t frame, const MvPixelDecodeOptions *opts, MvImage **out,
                               MvError *err)
{
    return decode_range(file, frame, 1, 0, opts, out, err);
}

MvStatus mv_image_describe(const MvFile *file, MvImage **out, MvError *err)
{
    Source src;
    MvStatus st;

    mv_error_clear(err);
    st = start(file, &src, out, err);
    if (st != MV_OK)
        mv_error_prefix(err, file_label(file));
    return st;
}

MvStatus mv_pixel_check(const MvFile *file, MvError *err)
{
    MvImage *image = NULL;
    MvStatus st = mv_image_describe(file, &image, err);

    mv_image_free(image);
    return st;
}

MvStatus mv_image_new(uint32_t rows, uint32_t columns, uint32_t frames, uint16_t samples_per_pixel,
                      uint16_t bits_allocated, uint16_t bits_stored, uint16_t pixel_representation, MvImage **out,
                      MvError *err)
{
    MvImage *image;
    size_t frame_size;

    *out = NULL;
    if (rows == 0 || columns == 0 || frames == 0 || rows > 65535 || columns > 65535 ||
        (samples_per_pixel != 1 && samples_per_pixel != 3) ||
        (bits_allocated != 8 && bits_allocated != 16 && bits_allocated != 32) || bits_stored == 0 ||
        bits_stored > bits_allocated || pixel_representation > 1)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "invalid image geometry");
    frame_size = (size_t)rows * columns * samples_per_pixel * (bits_allocated / 8u);
    if ((uint64_t)frame_size * frames > DEFAULT_MAX_BYTES)
        return mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "image too large");
    image = calloc(1, sizeof *image);
    if (image == NULL || (image->pixels = calloc(frames, frame_size)) == NULL) {
        free(image);
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    image->rows = rows;
    image->columns = columns;
    image->frames = image->file_frames = frames;
    image->samples_per_pixel = samples_per_pixel;
    image->bits_allocated = bits_allocated;
    image->bits_stored = bits_stored;
    image->high_bit = (uint16_t)(bits_stored - 1);
    image->pixel_representation = pixel_representation;
    image->bytes_per_sample = (uint16_t)(bits_allocated / 8);
    image->frame_size = frame_size;
    snprintf(image->photometric, sizeof image->photometric, "%s", samples_per_pixel == 3 ? "RGB" : "MONOCHROME2");
    snprintf(image->source_photometric, sizeof image->source_photometric, "%s", image->photometric);
    image->rescale_slope = 1.0;
    snprintf(image->transfer_syntax, sizeof image->transfer_syntax, "%s", MV_UID_EXPLICIT_LE);
    *out = image;
    return MV_OK;
}

uint8_t *mv_image_frame(const MvImage *image, uint32_t index)
{
    if (image == NULL || image->pixels == NULL || index >= image->frames)
        return NULL;
    return image->pixels + (size_t)index * image->frame_size;
}

int64_t mv_image_sample(const MvImage *image, uint32_t frame, uint32_t row, uint32_t column, uint16_t sample)
{
    const uint8_t *f = mv_image_frame(image, frame);
    size_t i;

    if (f == NULL || row >= image->rows || column >= image->columns || sample >= image->samples_per_pixel)
        return 0;
    i = ((size_t)row * image->columns + column) * image->samples_per_pixel + sample;
    if (image->pixel_representation) {
        if (image->bytes_per_sample == 1)
            return ((const int8_t *)f)[i];
        if (image->bytes_per_sample == 2)
            return ((const int16_t *)(const void *)f)[i];
        return ((const int32_t *)(const void *)f)[i];
    }
    return mv__px_get(f, image->bytes_per_sample, i);
}

void mv_image_set_sample(MvImage *image, uint32_t frame, uint32_t row, uint32_t column, uint16_t sample,
                         int64_t value)
{
    uint8_t *f = mv_image_frame(image, frame);

    if (f == NULL || row >= image->rows || column >= image->columns || sample >= image->samples_per_pixel)
        return;
    mv__px_put(f, image->bytes_per_sample, ((size_t)row * image->columns + column) * image->samples_per_pixel + sample,
               (uint32_t)value);
}
