/* OCR of 8-bit renderings with Tesseract's C API (tesseract/capi.h): one engine per thread,
 * made on first use and kept for the thread's life (mv_pixel_ocr_release frees it early),
 * sparse-text page segmentation, words with their boxes and confidences. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <tesseract/capi.h>

#include "medveil/deid.h"
#include "pixel/clean_int.h"

/* Words under this confidence (0-100) are noise from edges and textures. */
#define MIN_CONFIDENCE 30.0f
#define MAX_OCR_PIXELS (16u << 20)

static pthread_key_t engine_key;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static int engine_key_ok;

static void engine_free(void *p)
{
    TessBaseAPI *api = p;

    if (api != NULL) {
        TessBaseAPIEnd(api);
        TessBaseAPIDelete(api);
    }
}

static void make_key(void)
{
    engine_key_ok = pthread_key_create(&engine_key, engine_free) == 0;
}

static TessBaseAPI *engine(MvError *err)
{
    TessBaseAPI *api;

    pthread_once(&engine_once, make_key);
    if (!engine_key_ok) {
        mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "cannot make a per-thread OCR engine");
        return NULL;
    }
    api = pthread_getspecific(engine_key);
    if (api != NULL)
        return api;
    api = TessBaseAPICreate();
    if (api == NULL) {
        mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "cannot create the Tesseract engine");
        return NULL;
    }
    /* Quiet: Tesseract's diagnostics would go to stderr. */
    TessBaseAPISetVariable(api, "debug_file", "/dev/null");
    if (TessBaseAPIInit3(api, NULL, "eng") != 0) {
        TessBaseAPIDelete(api);
        mv_error_set(err, MV_ERR_UNSUPPORTED, MV_NO_TAG, MV_NO_OFFSET,
                     "Tesseract could not load its English model (install tesseract-ocr-eng)");
        return NULL;
    }
    TessBaseAPISetVariable(api, "debug_file", "/dev/null");
    TessBaseAPISetPageSegMode(api, PSM_SPARSE_TEXT);
    if (pthread_setspecific(engine_key, api) != 0) {
        engine_free(api);
        mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "cannot keep the OCR engine");
        return NULL;
    }
    return api;
}

void mv_pixel_ocr_release(void)
{
    pthread_once(&engine_once, make_key);
    if (!engine_key_ok)
        return;
    engine_free(pthread_getspecific(engine_key));
    pthread_setspecific(engine_key, NULL);
}

void mv__words_free(MvPxWord *words, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (words[i].text != NULL)
            mv_wipe(words[i].text, strlen(words[i].text));
        free(words[i].text);
    }
    free(words);
}

/* Enlarges by an integer factor with nearest neighbour (text edges stay sharp). */
static uint8_t *upscale(const uint8_t *gray, int width, int height, int stride, int scale)
{
    size_t w = (size_t)width * (size_t)scale, h = (size_t)height * (size_t)scale;
    uint8_t *out = malloc(w * h);

    if (out == NULL)
        return NULL;
    for (size_t y = 0; y < h; y++) {
        const uint8_t *src = gray + (y / (size_t)scale) * (size_t)stride;
        uint8_t *dst = out + y * w;
        for (size_t x = 0; x < w; x++)
            dst[x] = src[x / (size_t)scale];
    }
    return out;
}

MvStatus mv__ocr_gray(const uint8_t *gray, int width, int height, int stride, int scale, MvPxWord **words,
                      size_t *n, size_t *cap, MvError *err)
{
    TessBaseAPI *api = engine(err);
    TessResultIterator *it = NULL;
    uint8_t *big = NULL;
    MvStatus st = MV_OK;
    int line = -1;

    if (api == NULL)
        return err != NULL ? err->code : MV_ERR_UNSUPPORTED;
    if (scale < 1)
        scale = 1;
    if (width < 1 || height < 1 || (size_t)width * (size_t)height * (size_t)scale * (size_t)scale > MAX_OCR_PIXELS)
        scale = 1;
    if ((size_t)width * (size_t)height > MAX_OCR_PIXELS)
        return mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "image of %dx%d is too large for OCR",
                            width, height);
    if (*n > 0)
        line = (*words)[*n - 1].line;
    if (scale > 1) {
        big = upscale(gray, width, height, stride, scale);
        if (big == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        TessBaseAPISetImage(api, big, width * scale, height * scale, 1, width * scale);
    } else {
        TessBaseAPISetImage(api, gray, width, height, 1, stride);
    }
    TessBaseAPISetSourceResolution(api, 300);
    if (TessBaseAPIRecognize(api, NULL) != 0) {
        st = mv_error_set(err, MV_ERR_UNSUPPORTED, MV_NO_TAG, MV_NO_OFFSET, "Tesseract could not read the image");
        goto out;
    }
    it = TessBaseAPIGetIterator(api);
    if (it == NULL)
        goto out; /* no text at all */
    do {
        const TessPageIterator *pit = TessResultIteratorGetPageIterator(it);
        int left, top, right, bottom;
        char *text;
        float conf;

        if (TessPageIteratorIsAtBeginningOf(pit, RIL_TEXTLINE))
            line++;
        if (!TessPageIteratorBoundingBox(pit, RIL_WORD, &left, &top, &right, &bottom))
            continue;
        text = TessResultIteratorGetUTF8Text(it, RIL_WORD);
        if (text == NULL)
            continue;
        conf = TessResultIteratorConfidence(it, RIL_WORD);
        if (conf < MIN_CONFIDENCE || text[0] == '\0') {
            TessDeleteText(text);
            continue;
        }
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            MvPxWord *grown = realloc(*words, ncap * sizeof *grown);
            if (grown == NULL) {
                TessDeleteText(text);
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                goto out;
            }
            *words = grown;
            *cap = ncap;
        }
        {
            MvPxWord *w = &(*words)[*n];
            memset(w, 0, sizeof *w);
            w->text = strdup(text);
            size_t tl = strlen(text);
            mv_wipe(text, tl);
            TessDeleteText(text);
            if (w->text == NULL) {
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                goto out;
            }
            w->box.x0 = left / scale;
            w->box.y0 = top / scale;
            w->box.x1 = (right + scale - 1) / scale;
            w->box.y1 = (bottom + scale - 1) / scale;
            w->conf = conf;
            w->line = line < 0 ? 0 : line;
            (*n)++;
        }
    } while (TessResultIteratorNext(it, RIL_WORD));
out:
    if (it != NULL)
        TessResultIteratorDelete(it);
    TessBaseAPIClear(api);
    free(big);
    return st;
}
