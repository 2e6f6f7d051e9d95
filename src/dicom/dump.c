/* Human-readable dump of a file, one line per element in the layout dcmdump users know:
 * tag, VR, value in brackets (text) or backslash-separated numbers, then length, VM and
 * keyword. Nested items are indented by two spaces per level; long values are cut. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom_int.h"

typedef struct Line {
    char *buf;
    size_t len, cap, limit;
    int cut;
} Line;

static void line_add(Line *l, const char *s, size_t n)
{
    if (l->cut)
        return;
    if (l->len + n > l->limit) {
        n = l->limit > l->len ? l->limit - l->len : 0;
        l->cut = 1;
    }
    if (l->len + n + 1 > l->cap) {
        size_t cap = (l->len + n + 1) * 2;
        char *grown = realloc(l->buf, cap);
        if (grown == NULL) {
            l->cut = 1;
            return;
        }
        l->buf = grown;
        l->cap = cap;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static void line_addf(Line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line_addf(Line *l, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        line_add(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Renders the value of el (not a sequence) into l. */
static void render_value(const MvDataset *ds, const MvElement *el, Line *l)
{
    size_t vm = mv_element_vm(el);

    if (el->flags & MV_EL_ENCAPS) {
        line_addf(l, "(PixelSequence #=%zu)", el->n_frags);
        return;
    }
    if (el->value_len == 0) {
        line_add(l, "(no value available)", 20);
        return;
    }
    if (mv_vr_is_text(el->vr)) {
        char *text = NULL;
        if (mv_element_string(ds, el, &text, NULL) != MV_OK || text == NULL) {
            line_add(l, "(undecodable text)", 18);
            return;
        }
        line_add(l, "[", 1);
        /* Control characters would break the one-line layout. */
        for (char *c = text; *c; c++)
            if ((unsigned char)*c < 0x20)
                *c = '.';
        line_add(l, text, strlen(text));
        if (!l->cut)
            line_add(l, "]", 1);
        free(text);
        return;
    }
    switch (el->vr) {
    case MV_VR_US: case MV_VR_UL: case MV_VR_UV: case MV_VR_SS: case MV_VR_SL: case MV_VR_SV:
    case MV_VR_FL: case MV_VR_FD: case MV_VR_AT:
        for (size_t i = 0; i < vm && !l->cut; i++) {
            if (i > 0)
                line_add(l, "\\", 1);
            if (el->vr == MV_VR_AT) {
                uint64_t t;
                if (mv_element_uint(ds, el, i, &t, NULL) == MV_OK)
                    line_addf(l, "(%04X,%04X)", (unsigned)(t >> 16), (unsigned)(t & 0xFFFF));
            } else if (el->vr == MV_VR_FL || el->vr == MV_VR_FD) {
                double d;
                if (mv_element_double(ds, el, i, &d, NULL) == MV_OK)
                    line_addf(l, "%.*g", el->vr == MV_VR_FL ? 7 : 15, d);
            } else if (el->vr == MV_VR_UV) {
                uint64_t u;
                if (mv_element_uint(ds, el, i, &u, NULL) == MV_OK)
                    line_addf(l, "%" PRIu64, u);
            } else {
                int64_t v;
                if (mv_element_int(ds, el, i, &v, NULL) == MV_OK)
                    line_addf(l, "%" PRId64, v);
            }
        }
        if (el->value_len % mv_vr_unit_size(el->vr) != 0 && !l->cut)
            line_addf(l, " (+%zu stray bytes)", el->value_len % mv_vr_unit_size(el->vr));
        return;
    default: {
        /* OB OW OF OD OL OV UN: bytes in hex, grouped by the VR's unit. */
        size_t unit = (el->vr == MV_VR_OB || el->vr == MV_VR_UN) ? 1 : mv_vr_unit_size(el->vr);
        int be = ds->big_endian;
        static const char hex[] = "0123456789abcdef";
        char group[20];
        for (size_t i = 0; i + unit <= el->value_len && !l->cut; i += unit) {
            size_t n = 0;
            if (i > 0)
                group[n++] = '\\';
            for (size_t k = 0; k < unit; k++) {
                uint8_t b = el->value[be ? i + k : i + unit - 1 - k];
                group[n++] = hex[b >> 4];
                group[n++] = hex[b & 15];
            }
            line_add(l, group, n);
        }
        return;
    }
    }
}

static void put_spaces(FILE *out, int n)
{
    static const char spaces[] = "                                                                ";

    while (n > 0) {
        int chunk = n > (int)sizeof spaces - 1 ? (int)sizeof spaces - 1 : n;
        fwrite(spaces, 1, (size_t)chunk, out);
        n -= chunk;
    }
}

static void print_line(FILE *out, int depth, uint64_t offset, unsigned flags, const char *left, size_t left_len,
                       const char *right)
{
    int pad = 56 - 2 * depth - (int)left_len;

    if (flags & MV_DUMP_OFFSETS) {
        if (offset == MV_NO_OFFSET)
            fputs("         - ", out);
        else
            fprintf(out, "%10" PRIu64 " ", offset);
    }
    put_spaces(out, 2 * depth);
    fwrite(left, 1, left_len, out);
    put_spaces(out, pad > 0 ? pad : 1);
    fputs(" # ", out);
    fputs(right, out);
    fputc('\n', out);
}

static void dump_dataset(const MvDataset *ds, FILE *out, int depth, const MvDumpOptions *o);

static void dump_element(const MvDataset *ds, const MvElement *el, FILE *out, int depth, const MvDumpOptions *o)
{
    Line l = {0};
    char vrs[3], right[160];
    const char *kw = mv_dict_keyword(el->tag);
    uint32_t len = mv_element_length(el);
    char lenbuf[16];

    l.limit = (o->flags & MV_DUMP_FULL) ? SIZE_MAX / 2 : o->max_value_chars + 16;
    if (len == MV_UNDEFINED_LENGTH)
        snprintf(lenbuf, sizeof lenbuf, "u/l");
    else
        snprintf(lenbuf, sizeof lenbuf, "%u", len);
    line_addf(&l, "(%04X,%04X) %s ", MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag), mv_vr_string(el->vr, vrs));
    l.limit = (o->flags & MV_DUMP_FULL) ? SIZE_MAX / 2 : l.len + o->max_value_chars;
    if (el->flags & MV_EL_SEQ)
        line_addf(&l, "(Sequence with %s length #=%zu)", len == MV_UNDEFINED_LENGTH ? "undefined" : "explicit",
                  el->n_items);
    else
        render_value(ds, el, &l);
    if (l.cut) {
        l.cut = 0;
        l.limit += 3;
        line_add(&l, "...", 3);
    }
    snprintf(right, sizeof right, "%4s, %zu %s", lenbuf, mv_element_vm(el), *kw ? kw : "Unknown");
    if (MV_TAG_IS_PRIVATE(el->tag) && !MV_TAG_IS_PRIVATE_CREATOR(el->tag)) {
        size_t clen = 0;
        const char *creator = mv_dataset_private_creator(ds, el->tag, &clen);
        size_t used = strlen(right);
        if (creator != NULL && used + 4 < sizeof right) {
            /* The creator is an identifier of the vendor, not patient data. */
            snprintf(right + used, sizeof right - used, " [%.*s]", (int)(clen > 64 ? 64 : clen), creator);
        }
    }
    print_line(out, depth, el->offset, o->flags, l.buf ? l.buf : "", l.len, right);
    free(l.buf);

    if (el->flags & MV_EL_SEQ) {
        for (size_t i = 0; i < el->n_items; i++) {
            const MvDataset *item = el->items[i];
            char left[80];
            int n = snprintf(left, sizeof left, "(FFFE,E000) na (Item with %s length #=%zu)",
                             item->undef_len ? "undefined" : "explicit", item->n_elems);
            print_line(out, depth + 1, item->offset, o->flags, left, (size_t)n, "Item");
            dump_dataset(item, out, depth + 2, o);
        }
    } else if ((el->flags & MV_EL_ENCAPS)) {
        for (size_t i = 0; i < el->n_frags; i++) {
            char left[80], r2[48];
            int n = snprintf(left, sizeof left, "(FFFE,E000) pi (%s, %u bytes)",
                             i == 0 ? "Basic Offset Table" : "fragment", el->frags[i].len);
            snprintf(r2, sizeof r2, "%u, 1 Item", el->frags[i].len);
            print_line(out, depth + 1, MV_NO_OFFSET, o->flags, left, (size_t)n, r2);
        }
    }
}

static void dump_dataset(const MvDataset *ds, FILE *out, int depth, const MvDumpOptions *o)
{
    for (size_t i = 0; i < ds->n_elems; i++)
        dump_element(ds, &ds->elems[i], out, depth, o);
}

MvStatus mv_dump_write(const MvFile *file, FILE *out, const MvDumpOptions *opts, MvError *err)
{
    MvDumpOptions o = {0};

    if (opts != NULL)
        o = *opts;
    if (o.max_value_chars == 0)
        o.max_value_chars = 64;
    fprintf(out, "# File: %s\n", file->name);
    if (!(o.flags & MV_DUMP_NO_META)) {
        fprintf(out, "# File Meta Information%s\n", file->had_meta ? "" : ": none in the input");
        dump_dataset(&file->meta, out, 0, &o);
    }
    fprintf(out, "# Dataset: %s%s\n", file->ts ? file->ts->name : "unknown encoding",
            file->ds.explicit_vr == (file->ts ? file->ts->explicit_vr : 1) ? "" : " (VR encoding guessed)");
    dump_dataset(&file->ds, out, 0, &o);
    for (size_t i = 0; i < file->n_warnings; i++)
        fprintf(out, "# warning: %s\n", file->warnings[i]);
    if (file->n_warnings_dropped > 0)
        fprintf(out, "# warning: %zu more warnings not shown\n", file->n_warnings_dropped);
    if (ferror(out))
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot write the dump");
    return MV_OK;
}
