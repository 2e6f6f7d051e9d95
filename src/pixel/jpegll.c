/* Lossless JPEG (ITU-T T.81 Annex H; DICOM 1.2.840.10008.1.2.4.57 and .70), decoder and
 * encoder: Huffman-coded differences from one of seven predictors, a point transform,
 * 2 to 16 bits, one or more components (interleaved or in separate scans), restart
 * markers. Debian's libjpeg-turbo has no lossless mode, so it is written here. The encoder
 * writes Selection Value 1 with a Huffman table optimised per frame (T.81 Annex K.2). */
#include <stdlib.h>
#include <string.h>

#include "pixel/pixel_int.h"

#define MAX_COMPONENTS 4

/* ---- Huffman tables ------------------------------------------------------------------ */

typedef struct Huff {
    int defined;
    uint8_t bits[17];      /* codes of each length 1..16 */
    uint8_t vals[256];
    int n_vals;
    int32_t maxcode[18];   /* largest code of each length, -1 if none; [17] sentinel */
    int32_t valptr[17];
    int32_t mincode[17];
    uint16_t fast[512];    /* 9-bit look-up: (length << 8) | value, 0 when longer */
} Huff;

static int huff_build(Huff *h)
{
    int code = 0, k = 0;

    for (int l = 1; l <= 16; l++) {
        h->valptr[l] = k;
        h->mincode[l] = code;
        code += h->bits[l];
        k += h->bits[l];
        h->maxcode[l] = h->bits[l] ? code - 1 : -1;
        /* A code must fit in l bits. */
        if (code > (1 << l))
            return -1;
        code <<= 1;
    }
    h->maxcode[17] = 0x7FFFFFFF;
    memset(h->fast, 0, sizeof h->fast);
    code = 0;
    k = 0;
    for (int l = 1; l <= 9; l++) {
        for (int i = 0; i < h->bits[l]; i++, k++, code++) {
            int shift = 9 - l;
            for (int f = 0; f < (1 << shift); f++)
                h->fast[(code << shift) | f] = (uint16_t)((l << 8) | h->vals[k]);
        }
        code <<= 1;
    }
    return 0;
}

/* ---- Bit reader over entropy-coded data ------------------------------------------------ */

typedef struct Bits {
    const uint8_t *p, *end;
    uint64_t acc;
    int n;
    int marker;            /* a marker was met: no more data bytes until it is consumed */
} Bits;

static void bits_fill(Bits *b)
{
    while (b->n <= 56) {
        uint8_t byte = 0;
        if (!b->marker && b->p < b->end) {
            byte = *b->p;
            if (byte == 0xFF) {
                if (b->p + 1 < b->end && b->p[1] == 0x00) {
                    b->p += 2;
                } else {
                    b->marker = 1; /* leave p at the marker */
                    byte = 0;
                }
            } else {
                b->p++;
            }
        }
        b->acc = (b->acc << 8) | byte;
        b->n += 8;
    }
}

static inline uint32_t bits_get(Bits *b, int k)
{
    uint32_t v;

    if (k == 0)
        return 0;
    if (b->n < k)
        bits_fill(b);
    v = (uint32_t)(b->acc >> (b->n - k)) & ((1u << k) - 1u);
    b->n -= k;
    return v;
}

static int huff_decode(Bits *b, const Huff *h)
{
    uint32_t look;
    int l;
    int32_t code;

    if (b->n < 16)
        bits_fill(b);
    look = (uint32_t)(b->acc >> (b->n - 9)) & 0x1FFu;
    if (h->fast[look]) {
        b->n -= h->fast[look] >> 8;
        return h->fast[look] & 0xFF;
    }
    code = (int32_t)((b->acc >> (b->n - 9)) & 0x1FFu);
    l = 9;
    b->n -= 9;
    while (l <= 16 && code > h->maxcode[l]) {
        code = (code << 1) | (int32_t)bits_get(b, 1);
        l++;
    }
    if (l > 16)
        return -1;
    {
        int idx = h->valptr[l] + code - h->mincode[l];
        if (idx < 0 || idx >= h->n_vals)
            return -1;
        return h->vals[idx];
    }
}

/* Skips to the next RSTn marker after a restart interval and resets the reader. */
static int bits_restart(Bits *b)
{
    b->n = 0;
    b->acc = 0;
    b->marker = 0;
    while (b->p + 1 < b->end) {
        if (b->p[0] == 0xFF && b->p[1] >= 0xD0 && b->p[1] <= 0xD7) {
            b->p += 2;
            return 0;
        }
        if (b->p[0] == 0xFF && b->p[1] != 0x00 && b->p[1] != 0xFF)
            return -1;
        b->p++;
    }
    return -1;
}

/* T.81 H.1.2.1: the prediction of selection value pred from the left (ra), upper (rb) and
 * upper-left (rc) neighbours. */
static int32_t predict(int pred, int32_t ra, int32_t rb, int32_t rc)
{
    switch (pred) {
    case 1: return ra;
    case 2: return rb;
    case 3: return rc;
    case 4: return ra + rb - rc;
    case 5: return ra + ((rb - rc) >> 1);
    case 6: return rb + ((ra - rc) >> 1);
    default: return (ra + rb) >> 1;
    }
}

/* ---- Decoder --------------------------------------------------------------------------------- */

typedef struct Comp {
    int id;
    int h, v;
} Comp;

typedef struct Dec {
    const uint8_t *in;
    size_t len, pos;
    int precision;
    uint32_t rows, cols;
    int n_comp;
    Comp comp[MAX_COMPONENTS];
    Huff huff[4];
    uint32_t restart;
    int got_frame;
    uint16_t *samples;     /* rows * cols * n_comp, interleaved, reconstructed (before the point transform) */
    int *done;             /* per component: decoded by some scan */
} Dec;

static MvStatus fail(MvError *err, const char *what)
{
    return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "lossless JPEG: %s", what);
}

static MvStatus read_dht(Dec *d, size_t at, size_t seg_len, MvError *err)
{
    size_t end = at + seg_len;

    while (at < end) {
        int tc_th, total = 0;
        Huff *h;
        if (end - at < 17)
            return fail(err, "truncated Huffman table");
        tc_th = d->in[at];
        if ((tc_th >> 4) != 0 || (tc_th & 0x0F) > 3)
            return fail(err, "Huffman table class or number out of range");
        h = &d->huff[tc_th & 0x0F];
        memset(h, 0, sizeof *h);
        for (int l = 1; l <= 16; l++) {
            h->bits[l] = d->in[at + (size_t)l];
            total += h->bits[l];
        }
        at += 17;
        if (total > 256 || (size_t)total > end - at)
            return fail(err, "Huffman table holds more values than its segment");
        memcpy(h->vals, d->in + at, (size_t)total);
        h->n_vals = total;
        at += (size_t)total;
        if (huff_build(h) != 0)
            return fail(err, "Huffman table is not a prefix code");
        h->defined = 1;
    }
    return MV_OK;
}

static MvStatus read_sof(Dec *d, size_t at, size_t seg_len, const MvFrameSpec *spec, MvError *err)
{
    if (seg_len < 6)
        return fail(err, "truncated frame header");
    d->precision = d->in[at];
    d->rows = ((uint32_t)d->in[at + 1] << 8) | d->in[at + 2];
    d->cols = ((uint32_t)d->in[at + 3] << 8) | d->in[at + 4];
    d->n_comp = d->in[at + 5];
    if (d->precision < 2 || d->precision > 16)
        return fail(err, "precision out of 2..16");
    if (d->n_comp < 1 || d->n_comp > MAX_COMPONENTS || seg_len < 6 + 3 * (size_t)d->n_comp)
        return fail(err, "bad component count");
    if (d->rows == 0)
        d->rows = spec->rows; /* T.81 B.2.5: the number of lines may come later (DNL); take the attributes' */
    if (d->rows != spec->rows || d->cols != spec->columns || d->n_comp != spec->samples ||
        d->precision > 8 * spec->bytes)
        return mv_error_set(err, MV_ERR_PARSE, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "lossless JPEG frame is %ux%u, %d component(s) of %d bits; the attributes say %ux%u, "
                            "%u of %u",
                            d->cols, d->rows, d->n_comp, d->precision, spec->columns, spec->rows, spec->samples,
                            spec->bits_allocated);
    for (int c = 0; c < d->n_comp; c++) {
        d->comp[c].id = d->in[at + 6 + 3 * (size_t)c];
        d->comp[c].h = d->in[at + 7 + 3 * (size_t)c] >> 4;
        d->comp[c].v = d->in[at + 7 + 3 * (size_t)c] & 0x0F;
        if (d->comp[c].h != 1 || d->comp[c].v != 1)
            return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                                "lossless JPEG with subsampled components is not supported");
    }
    d->got_frame = 1;
    return MV_OK;
}

/* Decodes one scan (T.81 H.1.2) starting at the SOS segment; *next is where its entropy-
 * coded data ends. */
static MvStatus decode_scan(Dec *d, size_t at, size_t seg_len, size_t *next, MvError *err)
{
    int ns, comp_idx[MAX_COMPONENTS], table[MAX_COMPONENTS], pred, pt;
    Bits b;
    uint32_t mcu = 0, rows = d->rows, cols = d->cols;
    int nc = d->n_comp;
    int first_line = 1;

    if (!d->got_frame)
        return fail(err, "scan before frame header");
    if (seg_len < 1)
        return fail(err, "truncated scan header");
    ns = d->in[at];
    if (ns < 1 || ns > nc || seg_len < 4 + 2 * (size_t)ns)
        return fail(err, "bad scan component count");
    for (int s = 0; s < ns; s++) {
        int id = d->in[at + 1 + 2 * (size_t)s], k;
        for (k = 0; k < nc && d->comp[k].id != id; k++)
            ;
        if (k == nc)
            return fail(err, "scan names an unknown component");
        comp_idx[s] = k;
        table[s] = d->in[at + 2 + 2 * (size_t)s] >> 4;
        if (table[s] > 3 || !d->huff[table[s]].defined)
            return fail(err, "scan uses an undefined Huffman table");
    }
    pred = d->in[at + 1 + 2 * (size_t)ns];
    pt = d->in[at + 3 + 2 * (size_t)ns] & 0x0F;
    if (pred < 1 || pred > 7)
        return fail(err, "predictor out of 1..7");
    if (pt >= d->precision)
        return fail(err, "point transform not below the precision");
    b.p = d->in + at + seg_len;
    b.end = d->in + d->len;
    b.acc = 0;
    b.n = 0;
    b.marker = 0;
    {
        int p_bits = d->precision - pt;
        uint32_t dflt = 1u << (p_bits - 1);
        uint32_t vmask = 0xFFFFu;
        for (uint32_t r = 0; r < rows; r++) {
            uint16_t *row = d->samples + (size_t)r * cols * (size_t)nc;
            uint16_t *up = r > 0 ? row - (size_t)cols * (size_t)nc : NULL;
            int restart_row = 0;
            for (uint32_t x = 0; x < cols; x++) {
                if (d->restart && mcu > 0 && mcu % d->restart == 0) {
                    if (bits_restart(&b) != 0)
                        return fail(err, "restart marker missing");
                    first_line = 1;
                    restart_row = 1;
                }
                for (int s = 0; s < ns; s++) {
                    int c = comp_idx[s], t = huff_decode(&b, &d->huff[table[s]]);
                    int32_t diff, px;
                    size_t at_px = (size_t)x * (size_t)nc + (size_t)c;
                    if (t < 0 || t > 16)
                        return fail(err, "bad Huffman code");
                    if (t == 16) {
                        diff = 32768;
                    } else if (t == 0) {
                        diff = 0;
                    } else {
                        uint32_t v = bits_get(&b, t);
                        diff = (v & (1u << (t - 1))) ? (int32_t)v : (int32_t)v - (int32_t)((1u << t) - 1u);
                    }
                    /* T.81 H.1.2.1: the first sample of the image and of each restart interval
                     * takes 2^(P-Pt-1); the rest of that line predicts from the left. */
                    if ((first_line && x == 0) || (restart_row && d->restart && mcu % d->restart == 0)) {
                        px = (int32_t)dflt;
                    } else if (first_line) {
                        px = row[at_px - (size_t)nc];
                    } else if (x == 0) {
                        px = up[at_px];
                    } else {
                        px = predict(pred, row[at_px - (size_t)nc], up[at_px], up[at_px - (size_t)nc]);
                    }
                    row[at_px] = (uint16_t)((uint32_t)(px + diff) & vmask);
                }
                mcu++;
            }
            first_line = 0;
        }
    }
    for (int s = 0; s < ns; s++)
        d->done[comp_idx[s]] = pt + 1; /* remember the point transform (+1: 0 means not done) */
    /* Continue after the entropy-coded data: the next marker that is not RSTn. */
    {
        const uint8_t *p = b.p;
        while (p + 1 < b.end && !(p[0] == 0xFF && p[1] != 0x00 && !(p[1] >= 0xD0 && p[1] <= 0xD7) && p[1] != 0xFF))
            p++;
        *next = (size_t)(p - d->in);
    }
    return MV_OK;
}

MvStatus mv__jpegll_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                           MvError *err)
{
    Dec d;
    size_t pos = 2;
    int done_frames = 0;
    MvStatus st = MV_OK;
    int seen_eoi = 0;

    (void)info;
    memset(&d, 0, sizeof d);
    d.in = in;
    d.len = len;
    if (len < 4 || in[0] != 0xFF || in[1] != 0xD8)
        return fail(err, "no start of image marker");
    while (pos + 4 <= len && !seen_eoi && st == MV_OK) {
        uint8_t m;
        size_t seg;
        if (in[pos] != 0xFF) {
            st = fail(err, "expected a marker");
            break;
        }
        m = in[pos + 1];
        if (m == 0xFF) {
            pos++;
            continue;
        }
        if (m == 0xD9) {
            seen_eoi = 1;
            break;
        }
        if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
            pos += 2;
            continue;
        }
        seg = ((size_t)in[pos + 2] << 8) | in[pos + 3];
        if (seg < 2 || seg > len - pos - 2) {
            st = fail(err, "marker segment runs past the data");
            break;
        }
        switch (m) {
        case 0xC3:
            if (d.got_frame) {
                st = fail(err, "two frame headers");
                break;
            }
            st = read_sof(&d, pos + 4, seg - 2, spec, err);
            if (st == MV_OK) {
                size_t n = (size_t)d.rows * d.cols * (size_t)d.n_comp;
                d.samples = calloc(n, sizeof *d.samples);
                d.done = calloc(MAX_COMPONENTS, sizeof *d.done);
                if (d.samples == NULL || d.done == NULL)
                    st = mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
            }
            pos += 2 + seg;
            break;
        case 0xC4:
            st = read_dht(&d, pos + 4, seg - 2, err);
            pos += 2 + seg;
            break;
        case 0xDD:
            if (seg < 4)
                st = fail(err, "truncated restart interval");
            else
                d.restart = ((uint32_t)in[pos + 4] << 8) | in[pos + 5];
            pos += 2 + seg;
            break;
        case 0xDA: {
            size_t next = len;
            st = decode_scan(&d, pos + 4, seg - 2, &next, err);
            done_frames++;
            pos = next;
            break;
        }
        default:
            if ((m >= 0xC0 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC)
                st = mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                                  "JPEG process with frame marker FF%02X in a lossless syntax", m);
            pos += 2 + seg;
            break;
        }
    }
    if (st == MV_OK && (!d.got_frame || done_frames == 0))
        st = fail(err, "no frame or no scan");
    if (st == MV_OK)
        for (int c = 0; c < d.n_comp; c++)
            if (!d.done[c])
                st = fail(err, "a component is in no scan");
    if (st == MV_OK) {
        size_t n = (size_t)d.rows * d.cols;
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < d.n_comp; c++) {
                size_t k = i * (size_t)d.n_comp + (size_t)c;
                mv__px_put(out, spec->bytes, k, (uint32_t)d.samples[k] << (d.done[c] - 1));
            }
    }
    free(d.samples);
    free(d.done);
    return st;
}

/* ---- Encoder ---------------------------------------------------------------------------------- */

typedef struct Out {
    uint8_t *buf;
    size_t len, cap;
    uint64_t acc;
    int n;
    int failed;
} Out;

static void out_byte(Out *o, uint8_t v)
{
    if (o->len == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 65536;
        uint8_t *p = realloc(o->buf, cap);
        if (p == NULL) {
            o->failed = 1;
            return;
        }
        o->buf = p;
        o->cap = cap;
    }
    o->buf[o->len++] = v;
}

static void out_u16(Out *o, unsigned v)
{
    out_byte(o, (uint8_t)(v >> 8));
    out_byte(o, (uint8_t)v);
}

static void out_bits(Out *o, uint32_t v, int k)
{
    o->acc = (o->acc << k) | (v & ((1u << k) - 1u));
    o->n += k;
    while (o->n >= 8) {
        uint8_t byte = (uint8_t)(o->acc >> (o->n - 8));
        o->n -= 8;
        out_byte(o, byte);
        if (byte == 0xFF)
            out_byte(o, 0x00); /* T.81 F.1.2.3: byte stuffing */
    }
}

static int category(int32_t diff)
{
    uint32_t a = (uint32_t)(diff < 0 ? -diff : diff);
    int t = 0;

    while (a) {
        t++;
        a >>= 1;
    }
    return t;
}

/* T.81 K.2: code lengths (at most 16) from symbol frequencies; fills bits and vals. */
static void optimal_table(const long *freq_in, uint8_t bits[17], uint8_t *vals, int *n_vals)
{
    long freq[18];
    int codesize[18], others[18], count[40];

    memset(codesize, 0, sizeof codesize);
    memset(count, 0, sizeof count);
    for (int i = 0; i < 18; i++)
        others[i] = -1;
    for (int i = 0; i < 17; i++)
        freq[i] = freq_in[i];
    freq[17] = 1; /* reserved so that no code is all ones */
    for (;;) {
        int v1 = -1, v2 = -1;
        for (int i = 0; i < 18; i++)
            if (freq[i] > 0 && (v1 < 0 || freq[i] <= freq[v1]))
                v1 = i;
        for (int i = 0; i < 18; i++)
            if (freq[i] > 0 && i != v1 && (v2 < 0 || freq[i] <= freq[v2]))
                v2 = i;
        if (v2 < 0)
            break;
        freq[v1] += freq[v2];
        freq[v2] = 0;
        codesize[v1]++;
        while (others[v1] >= 0) {
            v1 = others[v1];
            codesize[v1]++;
        }
        others[v1] = v2;
        codesize[v2]++;
        while (others[v2] >= 0) {
            v2 = others[v2];
            codesize[v2]++;
        }
    }
    for (int i = 0; i < 18; i++)
        if (codesize[i])
            count[codesize[i]]++;
    for (int i = 39; i > 16; i--)
        while (count[i] > 0) {
            int j = i - 2;
            while (count[j] == 0)
                j--;
            count[i] -= 2;
            count[i - 1]++;
            count[j + 1] += 2;
            count[j]--;
        }
    {
        int i = 16;
        while (count[i] == 0)
            i--;
        count[i]--; /* drop the reserved symbol's code */
    }
    memset(bits, 0, 17);
    for (int l = 1; l <= 16; l++)
        bits[l] = (uint8_t)count[l];
    *n_vals = 0;
    for (int l = 1; l <= 32; l++)
        for (int s = 0; s < 17; s++)
            if (codesize[s] == l)
                vals[(*n_vals)++] = (uint8_t)s;
}

MvStatus mv__jpegll_encode(const MvImage *image, uint32_t frame, uint8_t **out, size_t *out_len, MvError *err)
{
    return mv__jpegll_encode_with(image, frame, 1, 0, out, out_len, err);
}

MvStatus mv__jpegll_encode_with(const MvImage *image, uint32_t frame, int predictor, unsigned restart,
                                uint8_t **out, size_t *out_len, MvError *err)
{
    const uint8_t *px = mv_image_frame(image, frame);
    uint32_t rows = image->rows, cols = image->columns;
    unsigned nc = image->samples_per_pixel, p = image->bits_stored;
    uint32_t mask = (p >= 32) ? 0xFFFFFFFFu : (1u << p) - 1u;
    long freq[17];
    uint8_t bits[17], vals[17];
    int n_vals = 0;
    uint32_t code_of[17];
    int len_of[17];
    Out o;

    *out = NULL;
    *out_len = 0;
    if (px == NULL || p < 2 || p > 16)
        return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "lossless JPEG holds 2 to 16 bits per sample, not %u", p);
    if (predictor < 1 || predictor > 7 || restart > 0xFFFF)
        return mv_error_set(err, MV_ERR_ARG, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "bad lossless JPEG parameters");
    memset(freq, 0, sizeof freq);
    memset(&o, 0, sizeof o);
    /* Two passes over the differences: frequencies, then codes. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            int code = 0, k = 0;
            optimal_table(freq, bits, vals, &n_vals);
            memset(len_of, 0, sizeof len_of);
            for (int l = 1; l <= 16; l++) {
                for (int i = 0; i < bits[l]; i++, k++) {
                    code_of[vals[k]] = (uint32_t)code++;
                    len_of[vals[k]] = l;
                }
                code <<= 1;
            }
            /* SOI, SOF3, DHT, SOS (T.81 B.2). */
            out_u16(&o, 0xFFD8);
            out_u16(&o, 0xFFC3);
            out_u16(&o, 8 + 3 * nc);
            out_byte(&o, (uint8_t)p);
            out_u16(&o, rows);
            out_u16(&o, cols);
            out_byte(&o, (uint8_t)nc);
            for (unsigned c = 0; c < nc; c++) {
                out_byte(&o, (uint8_t)(c + 1));
                out_byte(&o, 0x11);
                out_byte(&o, 0);
            }
            out_u16(&o, 0xFFC4);
            out_u16(&o, (unsigned)(2 + 1 + 16 + n_vals));
            out_byte(&o, 0x00);
            for (int l = 1; l <= 16; l++)
                out_byte(&o, bits[l]);
            for (int i = 0; i < n_vals; i++)
                out_byte(&o, vals[i]);
            if (restart > 0) {
                out_u16(&o, 0xFFDD);
                out_u16(&o, 4);
                out_u16(&o, restart);
            }
            out_u16(&o, 0xFFDA);
            out_u16(&o, 6 + 2 * nc);
            out_byte(&o, (uint8_t)nc);
            for (unsigned c = 0; c < nc; c++) {
                out_byte(&o, (uint8_t)(c + 1));
                out_byte(&o, 0x00);
            }
            out_byte(&o, (uint8_t)predictor); /* Ss */
            out_byte(&o, 0); /* Se */
            out_byte(&o, 0); /* Ah Al: no point transform */
        }
        {
            /* The same prediction rules as the decoder (decode_scan), restarts included. */
            int first_line = 1;
            uint32_t mcu = 0;
            unsigned rst = 0;
            for (uint32_t r = 0; r < rows; r++) {
                int restart_row = 0;
                for (uint32_t x = 0; x < cols; x++) {
                    if (restart && mcu > 0 && mcu % restart == 0) {
                        if (pass == 1) {
                            if (o.n > 0)
                                out_bits(&o, 0x7F, 8 - o.n);
                            out_u16(&o, 0xFFD0 + (rst++ & 7u));
                        }
                        first_line = 1;
                        restart_row = 1;
                    }
                    for (unsigned c = 0; c < nc; c++) {
                        size_t i = ((size_t)r * cols + x) * nc + c;
                        uint32_t v = mv__px_get(px, image->bytes_per_sample, i) & mask;
                        int32_t pred, diff;
                        int t;
                        if ((first_line && x == 0) || (restart_row && restart && mcu % restart == 0))
                            pred = (int32_t)(1u << (p - 1));
                        else if (first_line)
                            pred = (int32_t)(mv__px_get(px, image->bytes_per_sample, i - nc) & mask);
                        else if (x == 0)
                            pred = (int32_t)(mv__px_get(px, image->bytes_per_sample, i - (size_t)cols * nc) & mask);
                        else
                            pred = predict(predictor, (int32_t)(mv__px_get(px, image->bytes_per_sample, i - nc) & mask),
                                           (int32_t)(mv__px_get(px, image->bytes_per_sample, i - (size_t)cols * nc) &
                                                     mask),
                                           (int32_t)(mv__px_get(px, image->bytes_per_sample,
                                                                i - (size_t)cols * nc - nc) & mask));
                        diff = (int32_t)(((uint32_t)v - (uint32_t)pred) & 0xFFFFu);
                        if (diff >= 32768)
                            diff -= 65536;
                        t = diff == -32768 ? 16 : category(diff);
                        if (pass == 0) {
                            freq[t]++;
                            continue;
                        }
                        out_bits(&o, code_of[t], len_of[t]);
                        if (t > 0 && t < 16)
                            out_bits(&o, (uint32_t)(diff < 0 ? diff - 1 : diff), t);
                    }
                    mcu++;
                }
                first_line = 0;
            }
        }
    }
    if (o.n > 0)
        out_bits(&o, 0x7F, 8 - o.n); /* pad with ones (T.81 F.1.2.3) */
    out_u16(&o, 0xFFD9);
    if (o.failed) {
        free(o.buf);
        return mv_error_set(err, MV_ERR_NOMEM, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "out of memory");
    }
    *out = o.buf;
    *out_len = o.len;
    return MV_OK;
}
