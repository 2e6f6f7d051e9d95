/* JPEG baseline and extended (DICOM 1.2.840.10008.1.2.4.50/.51) through libjpeg-turbo,
 * from memory, errors caught with longjmp. Debian's libjpeg-turbo decodes 8-bit samples
 * only: 12-bit extended streams are a clear MV_ERR_UNSUPPORTED. A stream whose frame
 * header says lossless (SOF3, seen in mislabelled files) goes to the lossless decoder. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "pixel/pixel_int.h"

typedef struct JpegErr {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} JpegErr;

static void on_error(j_common_ptr cinfo)
{
    JpegErr *e = (JpegErr *)cinfo->err;

    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    (void)cinfo;
    (void)level;
}

/* The first start-of-frame marker of the stream: its type (0xC0..0xCF) and precision. */
static int find_sof(const uint8_t *in, size_t len, int *precision)
{
    size_t i = 2;

    if (len < 4 || in[0] != 0xFF || in[1] != 0xD8)
        return -1;
    while (i + 4 <= len) {
        uint8_t m;
        size_t seg;
        if (in[i] != 0xFF)
            return -1;
        m = in[i + 1];
        if (m == 0xFF) {
            i++;
            continue;
        }
        if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
            i += 2;
            continue;
        }
        seg = ((size_t)in[i + 2] << 8) | in[i + 3];
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            *precision = i + 4 < len ? in[i + 4] : 0;
            return m;
        }
        if (m == 0xDA || m == 0xD9 || seg < 2)
            return -1;
        i += 2 + seg;
    }
    return -1;
}

MvStatus mv__jpeg_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                         MvError *err)
{
    struct jpeg_decompress_struct cinfo;
    JpegErr jerr;
    int precision = 0, sof = find_sof(in, len, &precision);
    volatile int created = 0;
    volatile MvStatus st = MV_OK;
    size_t row_bytes;

    if (sof == 0xC3)
        return mv__jpegll_decode(in, len, spec, out, info, err);
    if (sof >= 0 && precision > 8)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "%d-bit lossy JPEG (JPEG Extended) is not supported by this build's libjpeg-turbo",
                            precision);
    if (sof >= 0 && sof != 0xC0 && sof != 0xC1 && sof != 0xC2)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "JPEG process with frame marker FF%02X is not supported", (unsigned)sof);
    if (spec->bytes != 1)
        return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "8-bit JPEG data in a %u-bit Bits Allocated image", spec->bits_allocated);
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = on_error;
    jerr.mgr.emit_message = on_message;
    jerr.message[0] = '\0';
    if (setjmp(jerr.jump)) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "JPEG: %s", jerr.message);
        goto out;
    }
    jpeg_create_decompress(&cinfo);
    created = 1;
    jpeg_mem_src(&cinfo, in, (unsigned long)len);
    if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "JPEG: no image in the stream");
        goto out;
    }
    if (cinfo.image_width != spec->columns || cinfo.image_height != spec->rows ||
        cinfo.num_components != spec->samples) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                          "JPEG image is %ux%u with %d component(s); the attributes say %ux%u with %u",
                          cinfo.image_width, cinfo.image_height, cinfo.num_components, spec->columns, spec->rows,
                          spec->samples);
        goto out;
    }
    if (spec->samples == 3) {
        /* The DICOM label decides, as dcmtk and pydicom decide: YBR_* is converted to RGB,
         * RGB is taken as it is stored, even when a JFIF marker claims YCbCr. */
        cinfo.jpeg_color_space = strncmp(spec->photometric, "YBR", 3) == 0 ? JCS_YCbCr : JCS_RGB;
        info->converted_rgb = cinfo.jpeg_color_space == JCS_YCbCr;
        cinfo.out_color_space = JCS_RGB;
    } else {
        cinfo.out_color_space = JCS_GRAYSCALE;
    }
    cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&cinfo);
    row_bytes = (size_t)spec->columns * spec->samples;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1];
        rows[0] = out + (size_t)cinfo.output_scanline * row_bytes;
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1)
            break;
    }
    if (cinfo.output_scanline < cinfo.output_height) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "JPEG: stream ends at row %u of %u",
                          cinfo.output_scanline, cinfo.output_height);
        goto out;
    }
    jpeg_finish_decompress(&cinfo);
out:
    if (created)
        jpeg_destroy_decompress(&cinfo);
    return st;
}
