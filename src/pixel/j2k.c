/* JPEG 2000 and HTJ2K (DICOM 1.2.840.10008.1.2.4.90/.91/.201-.203) through OpenJPEG, from
 * and to memory streams: decoding of every frame (a raw codestream or, tolerated, a JP2
 * file), encoding of lossless (reversible 5/3) codestreams. The image size is checked
 * against the attributes before OpenJPEG allocates anything for the samples. */
#include <stdlib.h>
#include <string.h>

#include <openjpeg.h>

#include "pixel/pixel_int.h"

typedef struct MemStream {
    const uint8_t *in;
    uint8_t *out;
    size_t len, cap, pos;
    int failed;
} MemStream;

static OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T n, void *user)
{
    MemStream *m = user;
    size_t left = m->len - m->pos;

    if (left == 0)
        return (OPJ_SIZE_T)-1;
    if (n > left)
        n = left;
    memcpy(buf, m->in + m->pos, n);
    m->pos += n;
    return n;
}

static OPJ_SIZE_T mem_write(void *buf, OPJ_SIZE_T n, void *user)
{
    MemStream *m = user;

    if (m->pos + n > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        uint8_t *p;
        while (cap < m->pos + n)
            cap *= 2;
        p = realloc(m->out, cap);
        if (p == NULL) {
            m->failed = 1;
            return (OPJ_SIZE_T)-1;
        }
        m->out = p;
        m->cap = cap;
    }
    memcpy(m->out + m->pos, buf, n);
    m->pos += n;
    if (m->pos > m->len)
        m->len = m->pos;
    return n;
}

static OPJ_OFF_T mem_skip(OPJ_OFF_T n, void *user)
{
    MemStream *m = user;

    if (n < 0) {
        if ((size_t)-n > m->pos)
            return -1;
        m->pos -= (size_t)-n;
        return n;
    }
    if (m->in != NULL && (size_t)n > m->len - m->pos)
        n = (OPJ_OFF_T)(m->len - m->pos);
    m->pos += (size_t)n;
    return n;
}

static OPJ_BOOL mem_seek(OPJ_OFF_T n, void *user)
{
    MemStream *m = user;

    if (n < 0 || (m->in != NULL && (size_t)n > m->len))
        return OPJ_FALSE;
    m->pos = (size_t)n;
    return OPJ_TRUE;
}

static void quiet(const char *msg, void *user)
{
    (void)msg;
    (void)user;
}

/* The last OpenJPEG error message, kept for ours (it names no patient data). */
static void keep_error(const char *msg, void *user)
{
    char *buf = user;
    size_t n = strlen(msg);

    if (buf[0] != '\0')
        return;
    if (n > 200)
        n = 200;
    memcpy(buf, msg, n);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
}

static opj_stream_t *stream_for(MemStream *m, int input)
{
    opj_stream_t *s = opj_stream_create(65536, input ? OPJ_TRUE : OPJ_FALSE);

    if (s == NULL)
        return NULL;
    opj_stream_set_user_data(s, m, NULL);
    if (input) {
        opj_stream_set_user_data_length(s, m->len);
        opj_stream_set_read_function(s, mem_read);
    } else {
        opj_stream_set_write_function(s, mem_write);
    }
    opj_stream_set_skip_function(s, mem_skip);
    opj_stream_set_seek_function(s, mem_seek);
    return s;
}

MvStatus mv__j2k_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                        MvError *err)
{
    MemStream m = {0};
    opj_stream_t *stream = NULL;
    opj_codec_t *codec = NULL;
    opj_image_t *img = NULL;
    opj_dparameters_t params;
    char opj_msg[256] = "";
    int jp2 = len >= 12 && memcmp(in, "\x00\x00\x00\x0CjP  ", 8) == 0;
    size_t pixels = (size_t)spec->rows * spec->columns;
    MvStatus st = MV_OK;

    m.in = in;
    m.len = len;
    stream = stream_for(&m, 1);
    codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
    if (stream == NULL || codec == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    opj_set_info_handler(codec, quiet, NULL);
    opj_set_warning_handler(codec, quiet, NULL);
    opj_set_error_handler(codec, keep_error, opj_msg);
    opj_set_default_decoder_parameters(&params);
    if (!opj_setup_decoder(codec, &params) || !opj_read_header(stream, codec, &img) || img == NULL) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "JPEG 2000 header: %s",
                          opj_msg[0] ? opj_msg : "not a codestream");
        goto out;
    }
    if (img->x1 <= img->x0 || img->y1 <= img->y0 || img->x1 - img->x0 != spec->columns ||
        img->y1 - img->y0 != spec->rows || img->numcomps < spec->samples || img->numcomps > 4) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                          "JPEG 2000 image is %ux%u with %u component(s); the attributes say %ux%u with %u",
                          img->x1 - img->x0, img->y1 - img->y0, img->numcomps, spec->columns, spec->rows,
                          spec->samples);
        goto out;
    }
    for (unsigned c = 0; c < spec->samples; c++)
        if (img->comps[c].dx == 0 || img->comps[c].dy == 0 || img->comps[c].dx > 4 || img->comps[c].dy > 4 ||
            img->comps[c].prec == 0 || img->comps[c].prec > 31 ||
            (img->comps[c].prec > 8u * spec->bytes)) {
            st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                              "JPEG 2000 component %u (%u bits, subsampling %ux%u) does not fit %u-bit samples", c,
                              img->comps[c].prec, img->comps[c].dx, img->comps[c].dy, spec->bits_allocated);
            goto out;
        }
    if (!opj_decode(codec, stream, img) || !opj_end_decompress(codec, stream)) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "JPEG 2000 decoding: %s",
                          opj_msg[0] ? opj_msg : "failed");
        goto out;
    }
    {
        opj_codestream_info_v2_t *cinfo = opj_get_cstr_info(codec);
        if (cinfo != NULL) {
            if (cinfo->m_default_tile_info.tccp_info != NULL && cinfo->m_default_tile_info.tccp_info[0].qmfbid == 0)
                info->stream_lossy = 1;
            opj_destroy_cstr_info(&cinfo);
        }
    }
    for (unsigned c = 0; c < spec->samples; c++) {
        const opj_image_comp_t *comp = &img->comps[c];
        uint32_t dx = comp->dx, dy = comp->dy;
        if (comp->data == NULL || comp->w < (spec->columns + dx - 1) / dx || comp->h < (spec->rows + dy - 1) / dy) {
            st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                              "JPEG 2000 component %u was not fully decoded", c);
            goto out;
        }
        /* Subsampled components (YBR_FULL_422 stored as such) are repeated to full size. */
        for (uint32_t r = 0; r < spec->rows; r++)
            for (uint32_t col = 0; col < spec->columns; col++) {
                int32_t v = comp->data[(size_t)(r / dy) * comp->w + col / dx];
                mv__px_put(out, spec->bytes, ((size_t)r * spec->columns + col) * spec->samples + c, (uint32_t)v);
            }
    }
    (void)pixels;
    /* OpenJPEG undoes the multiple component transform itself: YBR_ICT/YBR_RCT come out RGB. */
    if (spec->samples == 3 &&
        (strcmp(spec->photometric, "YBR_ICT") == 0 || strcmp(spec->photometric, "YBR_RCT") == 0))
        info->converted_rgb = 1;
out:
    opj_image_destroy(img);
    if (codec != NULL)
        opj_destroy_codec(codec);
    if (stream != NULL)
        opj_stream_destroy(stream);
    return st;
}

MvStatus mv__j2k_encode(const MvImage *image, uint32_t frame, uint8_t **out, size_t *out_len, MvError *err)
{
    const uint8_t *px = mv_image_frame(image, frame);
    opj_image_cmptparm_t cp[3];
    opj_cparameters_t params;
    opj_image_t *img = NULL;
    opj_codec_t *codec = NULL;
    opj_stream_t *stream = NULL;
    MemStream m = {0};
    char opj_msg[256] = "";
    size_t pixels = (size_t)image->rows * image->columns;
    unsigned spp = image->samples_per_pixel, res = 1;
    MvStatus st = MV_OK;

    *out = NULL;
    *out_len = 0;
    if (px == NULL || image->bits_stored > 24)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "JPEG 2000 encoding holds up to 24 bits per sample, not %u", image->bits_stored);
    memset(cp, 0, sizeof cp);
    for (unsigned c = 0; c < spp; c++) {
        cp[c].dx = cp[c].dy = 1;
        cp[c].w = image->columns;
        cp[c].h = image->rows;
        cp[c].prec = image->bits_stored;
        cp[c].sgnd = image->pixel_representation;
    }
    img = opj_image_create(spp, cp, spp == 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY);
    if (img == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    img->x0 = img->y0 = 0;
    img->x1 = image->columns;
    img->y1 = image->rows;
    for (size_t i = 0; i < pixels; i++)
        for (unsigned c = 0; c < spp; c++) {
            uint32_t v = mv__px_get(px, image->bytes_per_sample, i * spp + c);
            int32_t s;
            if (image->pixel_representation)
                s = image->bytes_per_sample == 1 ? (int8_t)v : image->bytes_per_sample == 2 ? (int16_t)v : (int32_t)v;
            else
                s = (int32_t)(v & (image->bits_stored >= 32 ? 0xFFFFFFFFu : (1u << image->bits_stored) - 1u));
            img->comps[c].data[i] = s;
        }
    opj_set_default_encoder_parameters(&params);
    params.tcp_numlayers = 1;
    params.tcp_rates[0] = 0;
    params.cp_disto_alloc = 1;
    params.irreversible = 0;
    params.tcp_mct = 0;
    while (res < 6 && (image->columns >> res) >= 1 && (image->rows >> res) >= 1)
        res++;
    params.numresolution = (int)res;
    codec = opj_create_compress(OPJ_CODEC_J2K);
    stream = stream_for(&m, 0);
    if (codec == NULL || stream == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    opj_set_info_handler(codec, quiet, NULL);
    opj_set_warning_handler(codec, quiet, NULL);
    opj_set_error_handler(codec, keep_error, opj_msg);
    if (!opj_setup_encoder(codec, &params, img) || !opj_start_compress(codec, img, stream) ||
        !opj_encode(codec, stream) || !opj_end_compress(codec, stream) || m.failed) {
        st = mv_error_set(err, m.failed ? MV_ERR_NOMEM : MV_ERR_ARG, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                          "JPEG 2000 encoding: %s", opj_msg[0] ? opj_msg : "failed");
        goto out;
    }
    *out = m.out;
    *out_len = m.len;
    m.out = NULL;
out:
    free(m.out);
    if (stream != NULL)
        opj_stream_destroy(stream);
    if (codec != NULL)
        opj_destroy_codec(codec);
    opj_image_destroy(img);
    return st;
}
