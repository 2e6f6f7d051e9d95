/* OCR of 8-bit renderings with Tesseract's C API (tesseract/capi.h): one engine per thread,
 * made on first use and kept for the thread's life (mv_pixel_ocr_release frees it early),
 * sparse-text page segmentation, words with their boxes and confidences. libtesseract is
 * loaded with dlopen on the first OCR, not linked: it pulls in some fifty libraries (curl,
 * Kerberos, LDAP, ICU ...) whose loading would cost every medveil command ~10 ms at start. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <tesseract/capi.h>

#include "medveil/deid.h"
#include "pixel/clean_int.h"

/* Words under this confidence (0-100) are noise from edges and textures. */
#define MIN_CONFIDENCE 30.0f
#define MAX_OCR_PIXELS (16u << 20)
/* Larger renderings are reduced before OCR (burned-in text on such images is large). */
#define MAX_OCR_SIDE 3000
#define REDUCED_SIDE 2500

/* The functions used, resolved from TESS_LIBRARY; each member has the type of its prototype
 * in capi.h. */
#define TESS_LIBRARY "libtesseract.so.5"
#define TESS_FUNCTIONS(X) \
    X(TessBaseAPIClear) \
    X(TessBaseAPICreate) \
    X(TessBaseAPIDelete) \
    X(TessBaseAPIEnd) \
    X(TessBaseAPIGetIterator) \
    X(TessBaseAPIInit3) \
    X(TessBaseAPIRecognize) \
    X(TessBaseAPISetImage) \
    X(TessBaseAPISetPageSegMode) \
    X(TessBaseAPISetSourceResolution) \
    X(TessBaseAPISetVariable) \
    X(TessDeleteText) \
    X(TessPageIteratorBoundingBox) \
    X(TessPageIteratorIsAtBeginningOf) \
    X(TessResultIteratorConfidence) \
    X(TessResultIteratorDelete) \
    X(TessResultIteratorGetPageIterator) \
    X(TessResultIteratorGetUTF8Text) \
    X(TessResultIteratorNext)
static struct {
#define TESS_MEMBER(name) __typeof__(&name) name;
    TESS_FUNCTIONS(TESS_MEMBER)
#undef TESS_MEMBER
} tess;
static pthread_once_t tess_once = PTHREAD_ONCE_INIT;
static int tess_ok;

static void tess_load(void)
{
    void *lib = dlopen(TESS_LIBRARY, RTLD_NOW | RTLD_LOCAL);

    if (lib == NULL)
        return;
#define TESS_RESOLVE(name)                                  \
    if ((*(void **)&tess.name = dlsym(lib, #name)) == NULL) \
        return;
    TESS_FUNCTIONS(TESS_RESOLVE)
#undef TESS_RESOLVE
    tess_ok = 1; /* the library stays loaded for the process's life */
}

static pthread_key_t engine_key;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static int engine_key_ok;

static void engine_free(void *p)
{
    TessBaseAPI *api = p;

    if (api != NULL) {
        tess.TessBaseAPIEnd(api);
        tess.TessBaseAPIDelete(api);
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
    pthread_once(&tess_once, tess_load);
    if (!tess_ok) {
        mv_error_set(err, MV_ERR_UNSUPPORTED, MV_NO_TAG, MV_NO_OFFSET,
                     "OCR needs %s (Debian package libtesseract5), which cannot be loaded", TESS_LIBRARY);
        return NULL;
    }
    api = tess.TessBaseAPICreate();
    if (api == NULL) {
        mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "cannot create the Tesseract engine");
        return NULL;
    }
    /* Quiet: Tesseract's diagnostics would go to stderr. */
    tess.TessBaseAPISetVariable(api, "debug_file", "/dev/null");
    if (tess.TessBaseAPIInit3(api, NULL, "eng") != 0) {
        tess.TessBaseAPIDelete(api);
        mv_error_set(err, MV_ERR_UNSUPPORTED, MV_NO_TAG, MV_NO_OFFSET,
                     "Tesseract could not load its English model (install tesseract-ocr-eng)");
        return NULL;
    }
    tess.TessBaseAPISetVariable(api, "debug_file", "/dev/null");
    tess.TessBaseAPISetPageSegMode(api, PSM_SPARSE_TEXT);
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

#define PAD 12

/* A copy enlarged by an integer factor (bilinear, so strokes stay smooth for the LSTM
 * recogniser) inside a border of PAD pixels of the image's edge colour: text touching the
 * edge of the image is otherwise often misread. */
static uint8_t *prepare(const uint8_t *gray, int width, int height, int stride, int scale, int *out_w, int *out_h)
{
    size_t w = (size_t)width * (size_t)scale + 2 * PAD, h = (size_t)height * (size_t)scale + 2 * PAD;
    uint8_t *out = malloc(w * h);
    unsigned hist[256] = {0}, best = 0;
    uint8_t edge = 0;

    if (out == NULL)
        return NULL;
    for (int x = 0; x < width; x++) {
        hist[gray[x]]++;
        hist[gray[(size_t)(height - 1) * (size_t)stride + (size_t)x]]++;
    }
    for (int v = 0; v < 256; v++)
        if (hist[v] > best) {
            best = hist[v];
            edge = (uint8_t)v;
        }
    memset(out, edge, w * h);
    for (size_t y = 0; y < (size_t)height * (size_t)scale; y++) {
        double fy = ((double)y + 0.5) / scale - 0.5;
        int y0 = fy < 0 ? 0 : (int)fy, y1 = y0 + 1 < height ? y0 + 1 : y0;
        double wy = fy - y0 < 0 ? 0 : fy - y0;
        uint8_t *dst = out + (y + PAD) * w + PAD;
        const uint8_t *r0 = gray + (size_t)y0 * (size_t)stride, *r1 = gray + (size_t)y1 * (size_t)stride;
        for (size_t x = 0; x < (size_t)width * (size_t)scale; x++) {
            double fx = ((double)x + 0.5) / scale - 0.5;
            int x0 = fx < 0 ? 0 : (int)fx, x1 = x0 + 1 < width ? x0 + 1 : x0;
            double wx = fx - x0 < 0 ? 0 : fx - x0;
            double top = r0[x0] + (r0[x1] - r0[x0]) * wx, bottom = r1[x0] + (r1[x1] - r1[x0]) * wx;
            dst[x] = (uint8_t)(top + (bottom - top) * wy + 0.5);
        }
    }
    *out_w = (int)w;
    *out_h = (int)h;
    return out;
}

/* OCR of a copy reduced by an integer factor (box filter), boxes mapped back. */
static MvStatus ocr_reduced(const uint8_t *gray, int width, int height, int stride, MvPxWord **words, size_t *n,
                            size_t *cap, MvError *err)
{
    int side = width > height ? width : height, f = (side + REDUCED_SIDE - 1) / REDUCED_SIDE;
    int rw = (width + f - 1) / f, rh = (height + f - 1) / f;
    uint8_t *small = malloc((size_t)rw * (size_t)rh);
    size_t first = *n;
    MvStatus st;

    if (small == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    for (int y = 0; y < rh; y++)
        for (int x = 0; x < rw; x++) {
            unsigned sum = 0, cnt = 0;
            for (int dy = 0; dy < f && y * f + dy < height; dy++)
                for (int dx = 0; dx < f && x * f + dx < width; dx++) {
                    sum += gray[(size_t)(y * f + dy) * (size_t)stride + (size_t)(x * f + dx)];
                    cnt++;
                }
            small[(size_t)y * (size_t)rw + (size_t)x] = (uint8_t)(sum / cnt);
        }
    st = mv__ocr_gray(small, rw, rh, rw, 1, words, n, cap, err);
    free(small);
    for (size_t i = first; i < *n; i++) {
        MvPxBox *b = &(*words)[i].box;
        b->x0 *= f;
        b->y0 *= f;
        b->x1 = b->x1 * f > width ? width : b->x1 * f;
        b->y1 = b->y1 * f > height ? height : b->y1 * f;
    }
    return st;
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
    if (width > MAX_OCR_SIDE || height > MAX_OCR_SIDE)
        return ocr_reduced(gray, width, height, stride, words, n, cap, err);
    if (scale < 1)
        scale = 1;
    if (width < 1 || height < 1 || (size_t)width * (size_t)height * (size_t)scale * (size_t)scale > MAX_OCR_PIXELS)
        scale = 1;
    if ((size_t)width * (size_t)height > MAX_OCR_PIXELS)
        return mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "image of %dx%d is too large for OCR",
                            width, height);
    if (*n > 0)
        line = (*words)[*n - 1].line;
    {
        int bw, bh;
        big = prepare(gray, width, height, stride, scale, &bw, &bh);
        if (big == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        tess.TessBaseAPISetImage(api, big, bw, bh, 1, bw);
    }
    tess.TessBaseAPISetSourceResolution(api, 300);
    if (tess.TessBaseAPIRecognize(api, NULL) != 0) {
        st = mv_error_set(err, MV_ERR_UNSUPPORTED, MV_NO_TAG, MV_NO_OFFSET, "Tesseract could not read the image");
        goto out;
    }
    it = tess.TessBaseAPIGetIterator(api);
    if (it == NULL)
        goto out; /* no text at all */
    do {
        const TessPageIterator *pit = tess.TessResultIteratorGetPageIterator(it);
        int left, top, right, bottom;
        char *text;
        float conf;

        if (tess.TessPageIteratorIsAtBeginningOf(pit, RIL_TEXTLINE))
            line++;
        if (!tess.TessPageIteratorBoundingBox(pit, RIL_WORD, &left, &top, &right, &bottom))
            continue;
        text = tess.TessResultIteratorGetUTF8Text(it, RIL_WORD);
        if (text == NULL)
            continue;
        conf = tess.TessResultIteratorConfidence(it, RIL_WORD);
        if (conf < MIN_CONFIDENCE || text[0] == '\0') {
            tess.TessDeleteText(text);
            continue;
        }
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            MvPxWord *grown = realloc(*words, ncap * sizeof *grown);
            if (grown == NULL) {
                tess.TessDeleteText(text);
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
            tess.TessDeleteText(text);
            if (w->text == NULL) {
                st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
                goto out;
            }
            left = left > PAD ? left - PAD : 0;
            top = top > PAD ? top - PAD : 0;
            right = right > PAD ? right - PAD : 0;
            bottom = bottom > PAD ? bottom - PAD : 0;
            w->box.x0 = left / scale;
            w->box.y0 = top / scale;
            w->box.x1 = (right + scale - 1) / scale;
            w->box.y1 = (bottom + scale - 1) / scale;
            if (w->box.x1 > width)
                w->box.x1 = width;
            if (w->box.y1 > height)
                w->box.y1 = height;
            w->conf = conf;
            w->line = line < 0 ? 0 : line;
            (*n)++;
        }
    } while (tess.TessResultIteratorNext(it, RIL_WORD));
out:
    if (it != NULL)
        tess.TessResultIteratorDelete(it);
    tess.TessBaseAPIClear(api);
    free(big);
    return st;
}
