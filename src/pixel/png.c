/* PNG output with libpng: 8-bit grey or RGB images to memory (for the review page's data
 * URIs) or to a file written atomically with mode 0600 (previews may show identifiers). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

#include "core/core_int.h"
#include "pixel/clean_int.h"

typedef struct MemSink {
    uint8_t *data;
    size_t len, cap;
    int failed;
} MemSink;

static void sink_write(png_structp png, png_bytep data, png_size_t len)
{
    MemSink *s = png_get_io_ptr(png);

    if (s->failed)
        return;
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        uint8_t *grown;
        while (cap < s->len + len)
            cap *= 2;
        grown = realloc(s->data, cap);
        if (grown == NULL) {
            s->failed = 1;
            return;
        }
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
}

static void sink_flush(png_structp png)
{
    (void)png;
}

MvStatus mv__png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *len,
                        MvError *err)
{
    png_structp png = NULL;
    png_infop info = NULL;
    MemSink sink = {0};
    /* volatile: kept across the longjmp of libpng's error handling. */
    MvStatus volatile st = MV_OK;

    *out = NULL;
    *len = 0;
    if (width < 1 || height < 1 || (channels != 1 && channels != 3))
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "PNG of %dx%dx%d is not possible", width,
                            height, channels);
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (png == NULL || (info = png_create_info_struct(png)) == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    if (setjmp(png_jmpbuf(png))) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "libpng failed to encode the image");
        goto out;
    }
    png_set_write_fn(png, &sink, sink_write, sink_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * (size_t)width * (size_t)channels));
    png_write_end(png, info);
    if (sink.failed) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
out:
    png_destroy_write_struct(png != NULL ? &png : NULL, info != NULL ? &info : NULL);
    if (st != MV_OK) {
        free(sink.data);
        return st;
    }
    *out = sink.data;
    *len = sink.len;
    return MV_OK;
}

MvStatus mv__png_write_file(const char *path, const uint8_t *pixels, int width, int height, int channels,
                            MvError *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char tmp[PATH_MAX];
    int fd = -1;
    MvStatus st;

    if ((st = mv__png_encode(pixels, width, height, channels, &data, &len, err)) != MV_OK)
        return st;
    if (snprintf(tmp, sizeof tmp, "%s.mvtmp-png", path) >= (int)sizeof tmp) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: path too long", path);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (mv__write_all(fd, data, len) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    if (st != MV_OK)
        unlink(tmp);
    free(data);
    return st;
}
