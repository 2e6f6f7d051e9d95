/* The Part 10 reader: preamble and File Meta Information, encoding detection, the
 * dataset parser for every uncompressed and encapsulated transfer syntax, and deflate.
 * Nothing is copied: elements point into the input. Every length is checked against the
 * bytes left and the caller's cap before it is used, and nesting depth is capped. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dicom/dicom_int.h"

#define DEFAULT_MAX_DEPTH 64
#define DEFAULT_MAX_INFLATED ((uint64_t)2 << 30)

typedef struct Reader {
    MvFile *file;
    const uint8_t *buf;   /* the buffer being parsed (input or inflated dataset) */
    size_t size;
    const char *where;    /* "" or " of the inflated dataset", for messages */
    uint64_t max_len;
    uint32_t max_depth;
    int seq_ended;        /* a Sequence Delimitation Item closed an item early */
    int no_raw;           /* something just read must be re-encoded, not copied, when written */
    MvError *err;
} Reader;

void mv_read_options_init(MvReadOptions *opts)
{
    memset(opts, 0, sizeof *opts);
}

void mv__file_warn(MvFile *file, const char *fmt, ...)
{
    char text[256];
    va_list ap;

    if (file->n_warnings >= MV_MAX_WARNINGS) {
        file->n_warnings_dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    file->warnings[file->n_warnings] = strdup(text);
    if (file->warnings[file->n_warnings] != NULL)
        file->n_warnings++;
}

static MvStatus fail(Reader *r, MvStatus code, uint32_t tag, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static MvStatus fail(Reader *r, MvStatus code, uint32_t tag, size_t pos, const char *fmt, ...)
{
    char what[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (tag == MV_NO_TAG)
        return mv_error_set(r->err, code, tag, pos, "at offset %zu%s: %s", pos, r->where, what);
    return mv_error_set(r->err, code, tag, pos, "tag (%04X,%04X) at offset %zu%s: %s", MV_TAG_GROUP(tag),
                        MV_TAG_ELEMENT(tag), pos, r->where, what);
}

static int is_vr_letter(uint8_t c)
{
    return c >= 'A' && c <= 'Z';
}

static MvStatus parse_dataset(Reader *r, MvDataset *ds, size_t *pos, size_t end, int explicit_vr, int be,
                              uint32_t depth, int undef_item);

/* Reads the items of a sequence, between *pos and end (defined length) or up to the
 * Sequence Delimitation Item (undefined length). PS3.5 7.5. */
static MvStatus parse_items(Reader *r, MvDataset *owner, MvElement *el, size_t *pos, size_t end, int explicit_vr,
                            int be, uint32_t depth)
{
    int undefined = (el->flags & MV_EL_UNDEF_LEN) != 0;
    MvStatus st;

    if (depth >= r->max_depth)
        return fail(r, MV_ERR_LIMIT, el->tag, (size_t)el->offset, "sequences nested deeper than %u levels",
                    r->max_depth);
    for (;;) {
        size_t start = *pos;
        uint32_t tag, len;
        MvDataset *item;

        if (!undefined && start == end)
            return MV_OK;
        if (end - start < 8) {
            if (!undefined) {
                mv__file_warn(r->file, "(%04X,%04X) at offset %zu: %zu stray bytes at the end of a sequence",
                              MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag), start, end - start);
                *pos = end;
                return MV_OK;
            }
            return fail(r, MV_ERR_PARSE, el->tag, start, "sequence ends without a Sequence Delimitation Item");
        }
        tag = ((uint32_t)mv__rd16(r->buf + start, be) << 16) | mv__rd16(r->buf + start + 2, be);
        len = mv__rd32(r->buf + start + 4, be);
        if (tag == MV_TAG_SEQ_DELIM) {
            *pos = start + 8;
            if (!undefined)
                mv__file_warn(r->file, "offset %zu: Sequence Delimitation Item in a sequence of defined length",
                              start);
            return MV_OK;
        }
        if (tag != MV_TAG_ITEM)
            return fail(r, MV_ERR_PARSE, tag, start, "expected an Item (FFFE,E000) in sequence (%04X,%04X)",
                        MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag));
        item = mv__dataset_new(r->file, owner);
        if (item == NULL)
            return mv_error_set(r->err, MV_ERR_NOMEM, tag, start, "out of memory");
        item->offset = start;
        item->big_endian = (uint8_t)be;
        item->explicit_vr = (uint8_t)explicit_vr;
        if (el->n_items == el->cap_items) {
            size_t cap = el->cap_items ? el->cap_items * 2 : 4;
            MvDataset **items = realloc(el->items, cap * sizeof *items);
            if (items == NULL) {
                mv__dataset_free(item);
                return mv_error_set(r->err, MV_ERR_NOMEM, tag, start, "out of memory");
            }
            el->items = items;
            el->cap_items = cap;
        }
        el->items[el->n_items++] = item;
        *pos = start + 8;
        if (len == MV_UNDEFINED_LENGTH) {
            item->undef_len = 1;
            st = parse_dataset(r, item, pos, end, explicit_vr, be, depth + 1, 1);
        } else {
            if (len > end - *pos)
                return fail(r, MV_ERR_PARSE, tag, start, "item declares length %u but only %zu bytes remain", len,
                            end - *pos);
            st = parse_dataset(r, item, pos, *pos + len, explicit_vr, be, depth + 1, 0);
        }
        if (st != MV_OK)
            return st;
        {
            /* A Sequence Delimitation Item that closed the item closed the sequence too;
             * such bytes are not a well-formed encoding, so they are re-encoded. */
            int closed = r->seq_ended;
            r->seq_ended = 0;
            if (closed)
                r->no_raw = 1;
            item->raw = r->no_raw ? NULL : r->buf + start;
            item->raw_len = *pos - start;
            if (closed)
                return MV_OK;
        }
    }
}

/* Encapsulated pixel data: Basic Offset Table item then fragment items up to the
 * Sequence Delimitation Item (PS3.5 A.4). */
static MvStatus parse_fragments(Reader *r, MvElement *el, size_t *pos, size_t end, int be)
{
    size_t cap = 0;

    for (;;) {
        size_t start = *pos;
        uint32_t tag, len;

        if (start == end && end == r->size && el->n_frags > 0) {
            mv__file_warn(r->file, "(%04X,%04X) at offset %llu: encapsulated data ends without a Sequence "
                          "Delimitation Item", MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag),
                          (unsigned long long)el->offset);
            r->no_raw = 1;
            return MV_OK;
        }
        if (end - start < 8)
            return fail(r, MV_ERR_PARSE, el->tag, (size_t)el->offset,
                        "encapsulated data ends without a Sequence Delimitation Item");
        tag = ((uint32_t)mv__rd16(r->buf + start, be) << 16) | mv__rd16(r->buf + start + 2, be);
        len = mv__rd32(r->buf + start + 4, be);
        *pos = start + 8;
        if (tag == MV_TAG_SEQ_DELIM)
            return MV_OK;
        if (tag != MV_TAG_ITEM)
            return fail(r, MV_ERR_PARSE, tag, start, "expected a fragment Item in encapsulated (%04X,%04X)",
                        MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag));
        if (len == MV_UNDEFINED_LENGTH || len > end - *pos)
            return fail(r, MV_ERR_PARSE, tag, start, "fragment declares length %u but only %zu bytes remain", len,
                        end - *pos);
        if (el->n_frags == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            MvFragment *frags = realloc(el->frags, ncap * sizeof *frags);
            if (frags == NULL)
                return mv_error_set(r->err, MV_ERR_NOMEM, tag, start, "out of memory");
            el->frags = frags;
            cap = ncap;
        }
        el->frags[el->n_frags].data = r->buf + *pos;
        el->frags[el->n_frags].len = len;
        el->n_frags++;
        *pos += len;
    }
}

/* Tries to read a UN value of defined length whose dictionary VR is SQ as implicit VR
 * little endian items (PS3.5 6.2.2); on failure the element keeps its bytes. */
static void try_un_as_sequence(Reader *r, MvDataset *ds, MvElement *el, uint32_t depth)
{
    MvError saved;
    MvError *outer = r->err;
    size_t pos = (size_t)(el->value - r->buf);
    size_t end = pos + el->value_len;
    MvElement probe = *el;
    size_t n_warn = r->file->n_warnings;

    probe.items = NULL;
    probe.n_items = probe.cap_items = 0;
    r->err = &saved;
    if (parse_items(r, ds, &probe, &pos, end, 0, 0, depth) == MV_OK && pos == end) {
        el->items = probe.items;
        el->n_items = probe.n_items;
        el->cap_items = probe.cap_items;
        el->flags |= MV_EL_SEQ | MV_EL_IMPLICIT_ITEMS;
    } else {
        for (size_t i = 0; i < probe.n_items; i++)
            mv__dataset_free(probe.items[i]);
        free(probe.items);
        while (r->file->n_warnings > n_warn)
            free(r->file->warnings[--r->file->n_warnings]);
    }
    r->err = outer;
}

/* 1 if an element could start at pos: the end of the data, or a tag not below prev. */
static int plausible_next(const Reader *r, uint64_t pos, size_t end, uint32_t prev, int be)
{
    uint32_t tag;

    if (pos == end)
        return 1;
    if (pos > end || end - pos < 8)
        return 0;
    tag = ((uint32_t)mv__rd16(r->buf + pos, be) << 16) | mv__rd16(r->buf + pos + 2, be);
    return tag > prev || MV_TAG_GROUP(tag) == 0xFFFE;
}

/* Reads one element at *pos. Sets *done when an Item Delimitation Item ends the item. */
static MvStatus parse_element(Reader *r, MvDataset *ds, size_t *pos, size_t end, int *explicit_vr, int be,
                              uint32_t depth, MvElement *el, int *done)
{
    size_t start = *pos, hdr;
    const uint8_t *p = r->buf + start;
    uint32_t tag, len;
    MvVr vr;
    MvStatus st;
    int explicit_here = *explicit_vr;
    int saved_no_raw;

    memset(el, 0, sizeof *el);
    if (end - start < 8)
        return fail(r, MV_ERR_PARSE, MV_NO_TAG, start, "truncated element header (%zu bytes left)", end - start);
    tag = ((uint32_t)mv__rd16(p, be) << 16) | mv__rd16(p + 2, be);
    el->tag = tag;
    el->offset = start;

    if (MV_TAG_GROUP(tag) == 0xFFFE) {
        len = mv__rd32(p + 4, be);
        if (tag == MV_TAG_ITEM_DELIM) {
            *pos = start + 8;
            *done = 1;
            if (len != 0)
                mv__file_warn(r->file, "offset %zu: Item Delimitation Item with length %u", start, len);
            return MV_OK;
        }
        if (tag == MV_TAG_SEQ_DELIM && depth > 0) {
            /* Seen in DICOMDIRs: the sequence closes without closing its last item. */
            mv__file_warn(r->file, "offset %zu: Sequence Delimitation Item where the item's delimiter belongs",
                          start);
            *pos = start + 8;
            *done = 2;
            return MV_OK;
        }
        if (tag == MV_TAG_SEQ_DELIM && len == 0) {
            mv__file_warn(r->file, "offset %zu: stray Sequence Delimitation Item ignored", start);
            *pos = start + 8;
            *done = 3;
            return MV_OK;
        }
        return fail(r, MV_ERR_PARSE, tag, start, "unexpected %s outside a sequence",
                    tag == MV_TAG_ITEM ? "Item" : tag == MV_TAG_SEQ_DELIM ? "Sequence Delimitation Item"
                                                                          : "delimiter");
    }
    saved_no_raw = r->no_raw;
    r->no_raw = 0;

    if (explicit_here && !(is_vr_letter(p[4]) && is_vr_letter(p[5]))) {
        /* Real files carry blanks or garbage where the VR belongs. dcmtk assumes a 16-bit
         * length; other writers switched to implicit VR. Take the reading whose next
         * element starts with a plausible tag. */
        size_t short_next = start + 8 + mv__rd16(p + 6, be);
        uint64_t long_next = (uint64_t)start + 8 + mv__rd32(p + 4, be);
        int short_ok = plausible_next(r, short_next, end, tag, be);
        int long_ok = plausible_next(r, long_next, end, tag, be);
        if (short_ok || !long_ok) {
            mv__file_warn(r->file, "(%04X,%04X) at offset %zu: invalid VR bytes, read with the dictionary VR",
                          MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag), start);
            el->vr = mv_dict_vr(tag);
            if (el->vr == MV_VR_SQ)
                el->vr = MV_VR_UN; /* bytes, not items: this reading did not parse them */
            len = mv__rd16(p + 6, be);
            el->length = len;
            if (len > end - (start + 8))
                return fail(r, MV_ERR_PARSE, tag, start, "element declares length %u but only %zu bytes remain",
                            len, end - (start + 8));
            el->value = p + 8;
            el->value_len = len;
            *pos = start + 8 + len;
            el->raw = NULL;
            el->raw_len = *pos - start;
            r->no_raw = 1;
            return MV_OK;
        }
        mv__file_warn(r->file, "(%04X,%04X) at offset %zu: no VR in explicit VR data, read as implicit",
                      MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag), start);
        explicit_here = 0;
    }
    if (explicit_here) {
        vr = MV_VR(p[4], p[5]);
        if (!mv_vr_is_known(vr)) {
            mv__file_warn(r->file, "(%04X,%04X) at offset %zu: unknown VR, read as UN", MV_TAG_GROUP(tag),
                          MV_TAG_ELEMENT(tag), start);
            r->no_raw = 1; /* written back as UN, which every reader knows */
        }
        if (mv_vr_has_long_length(vr) || !mv_vr_is_known(vr)) {
            if (end - start < 12)
                return fail(r, MV_ERR_PARSE, tag, start, "truncated element header (%zu bytes left)", end - start);
            len = mv__rd32(p + 8, be);
            hdr = 12;
            if (!mv_vr_is_known(vr))
                vr = MV_VR_UN;
        } else {
            len = mv__rd16(p + 6, be);
            hdr = 8;
        }
    } else {
        vr = mv_dict_vr(tag);
        len = mv__rd32(p + 4, be);
        hdr = 8;
    }
    el->vr = vr;
    el->length = len;
    *pos = start + hdr;

    if (len == MV_UNDEFINED_LENGTH) {
        el->flags |= MV_EL_UNDEF_LEN;
        if (vr == MV_VR_SQ) {
            el->flags |= MV_EL_SEQ;
            st = parse_items(r, ds, el, pos, end, explicit_here, be, depth);
        } else if (tag == MV_TAG_PIXEL_DATA || vr == MV_VR_OB || vr == MV_VR_OW) {
            el->flags |= MV_EL_ENCAPS;
            st = parse_fragments(r, el, pos, end, be);
        } else if (vr == MV_VR_UN || !explicit_here) {
            /* PS3.5 6.2.2: UN of undefined length holds items in implicit VR little endian. */
            el->flags |= MV_EL_SEQ | (explicit_here || be ? MV_EL_IMPLICIT_ITEMS : 0);
            st = parse_items(r, ds, el, pos, end, 0, 0, depth);
        } else {
            char vrs[3];
            return fail(r, MV_ERR_PARSE, tag, start, "undefined length is not allowed for VR %s",
                        mv_vr_string(vr, vrs));
        }
        if (st != MV_OK)
            return st;
    } else {
        if (len > end - *pos)
            return fail(r, MV_ERR_PARSE, tag, start, "element declares length %u but only %zu bytes remain", len,
                        end - *pos);
        if (r->max_len != 0 && len > r->max_len)
            return fail(r, MV_ERR_LIMIT, tag, start, "element length %u exceeds the cap of %llu bytes", len,
                        (unsigned long long)r->max_len);
        if (len & 1u) {
            /* PS3.5 7.1.1: lengths are even. The writer pads such a value. */
            mv__file_warn(r->file, "(%04X,%04X) at offset %zu: odd value length %u", MV_TAG_GROUP(tag),
                          MV_TAG_ELEMENT(tag), start, len);
            r->no_raw = 1;
        }
        if (vr == MV_VR_SQ && !explicit_here && len >= 4 &&
            (mv__rd16(r->buf + *pos, be) != 0xFFFE || mv__rd16(r->buf + *pos + 2, be) != 0xE000)) {
            /* The dictionary says SQ but the value is not items: keep the bytes as UN. */
            mv__file_warn(r->file, "(%04X,%04X) at offset %zu: value is not a sequence; kept as UN",
                          MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag), start);
            vr = MV_VR_UN;
            el->vr = vr;
        }
        if (vr == MV_VR_SQ) {
            size_t seq_end = *pos + len;
            el->flags |= MV_EL_SEQ;
            st = parse_items(r, ds, el, pos, seq_end, explicit_here, be, depth);
            if (st != MV_OK)
                return st;
            *pos = seq_end;
        } else {
            el->value = r->buf + *pos;
            el->value_len = len;
            *pos += len;
            if (vr == MV_VR_UN && len >= 8 && mv_dict_vr(tag) == MV_VR_SQ)
                try_un_as_sequence(r, ds, el, depth);
        }
    }
    /* An element read in another encoding than its dataset, or holding something malformed,
     * is re-encoded when written; the flag also reaches every enclosing element. */
    if (explicit_here != *explicit_vr)
        r->no_raw = 1;
    el->raw = r->no_raw ? NULL : r->buf + start;
    el->raw_len = *pos - start;
    r->no_raw |= saved_no_raw;
    return MV_OK;
}

static MvStatus parse_dataset(Reader *r, MvDataset *ds, size_t *pos, size_t end, int explicit_vr, int be,
                              uint32_t depth, int undef_item)
{
    uint32_t last_tag = 0;
    int unsorted = 0;

    ds->big_endian = (uint8_t)be;
    ds->explicit_vr = (uint8_t)explicit_vr;
    while (*pos < end) {
        MvElement el;
        int done = 0;
        MvStatus st;

        if (!undef_item && depth == 0 && end - *pos < 8) {
            /* Zero padding after the last element is harmless; anything else is a cut. */
            size_t k = *pos;
            while (k < end && r->buf[k] == 0)
                k++;
            if (k < end)
                return fail(r, MV_ERR_PARSE, MV_NO_TAG, *pos, "truncated element header (%zu bytes left)",
                            end - *pos);
            mv__file_warn(r->file, "offset %zu%s: %zu trailing zero bytes ignored", *pos, r->where, end - *pos);
            *pos = end;
            break;
        }
        st = parse_element(r, ds, pos, end, &explicit_vr, be, depth, &el, &done);
        if (st != MV_OK) {
            mv__element_clear(&el);
            return st;
        }
        if (done == 3)
            continue;
        if (done == 2) {
            if (undef_item) {
                r->seq_ended = 1;
                break;
            }
            return fail(r, MV_ERR_PARSE, MV_TAG_SEQ_DELIM, *pos - 8,
                        "Sequence Delimitation Item inside an item of defined length");
        }
        if (done) {
            if (undef_item) {
                undef_item = 0; /* closed as it should be */
                break;
            }
            mv__file_warn(r->file, "offset %zu%s: Item Delimitation Item in an item of defined length",
                          *pos - 8, r->where);
            continue;
        }
        if (el.tag < last_tag)
            unsorted = 1;
        last_tag = el.tag;
        st = mv__dataset_append(ds, &el);
        if (st != MV_OK) {
            mv__element_clear(&el);
            return mv_error_set(r->err, st, el.tag, el.offset, "out of memory");
        }
    }
    if (undef_item && !r->seq_ended)
        return fail(r, MV_ERR_PARSE, MV_NO_TAG, *pos, "item of undefined length ends without a delimiter");
    if (unsorted) {
        mv__file_warn(r->file, "elements%s are not in ascending tag order; sorted", r->where);
        mv__dataset_sort(ds);
    }
    return MV_OK;
}

/* Group 0002 is always explicit VR little endian (PS3.10 7.1); its elements run until the
 * first tag of another group. The group length is checked, not trusted. */
static MvStatus parse_meta(Reader *r, MvFile *file, size_t *pos)
{
    MvDataset *meta = &file->meta;

    size_t meta_end = SIZE_MAX;

    meta->explicit_vr = 1;
    /* PS3.10 7.1: the group ends where (0002,0000) says when an element ends exactly there,
     * so a dataset element that happens to start with 02 00 is not taken for meta. A wrong
     * group length (real files have them) is never landed on, and the group rule decides. */
    if (r->size - *pos >= 12 && mv__rd16(r->buf + *pos + 2, 0) == 0x0000 && memcmp(r->buf + *pos + 4, "UL", 2) == 0 &&
        mv__rd16(r->buf + *pos + 6, 0) == 4) {
        uint32_t group_len = mv__rd32(r->buf + *pos + 8, 0);
        if (group_len <= r->size - *pos - 12)
            meta_end = *pos + 12 + group_len;
    }
    while (*pos != meta_end && r->size - *pos >= 8 && mv__rd16(r->buf + *pos, 0) == 0x0002) {
        /* A second meta group (seen in files rewritten by careless tools) belongs to the
         * dataset, as dcmtk reads it. */
        if (meta->n_elems > 0 && mv__rd16(r->buf + *pos + 2, 0) <= MV_TAG_ELEMENT(meta->elems[meta->n_elems - 1].tag))
            break;
        MvElement el;
        int done = 0, explicit_vr = 1;
        MvStatus st = parse_element(r, meta, pos, r->size, &explicit_vr, 0, 0, &el, &done);

        if (st != MV_OK) {
            mv__element_clear(&el);
            return st;
        }
        st = mv__dataset_append(meta, &el);
        if (st != MV_OK) {
            mv__element_clear(&el);
            return mv_error_set(r->err, st, el.tag, el.offset, "out of memory");
        }
    }
    mv__dataset_sort(meta);
    return MV_OK;
}

static MvStatus inflate_dataset(Reader *r, MvFile *file, size_t pos, uint64_t cap)
{
    z_stream zs;
    size_t out_cap = (r->size - pos) * 4 + 4096, out_len = 0;
    uint8_t *out = NULL;
    int zr = Z_OK, attempt;
    MvStatus st = MV_OK;

    /* Raw deflate as PS3.5 A.5 says; some writers add a zlib header, so try that second. */
    for (attempt = 0; attempt < 2; attempt++) {
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, attempt == 0 ? -MAX_WBITS : MAX_WBITS) != Z_OK)
            return mv_error_set(r->err, MV_ERR_NOMEM, MV_NO_TAG, pos, "cannot start inflate");
        zs.next_in = (Bytef *)(uintptr_t)(r->buf + pos);
        zs.avail_in = (uInt)((r->size - pos) > UINT32_MAX ? UINT32_MAX : (r->size - pos));
        out_len = 0;
        for (;;) {
            if (out == NULL || out_len == out_cap) {
                uint8_t *grown;
                if (out != NULL)
                    out_cap *= 2;
                if (out_cap > cap)
                    out_cap = (size_t)cap;
                if (out != NULL && out_len >= out_cap) {
                    inflateEnd(&zs);
                    free(out);
                    return mv_error_set(r->err, MV_ERR_LIMIT, MV_NO_TAG, pos,
                                        "at offset %zu: deflated dataset inflates past the cap of %llu bytes", pos,
                                        (unsigned long long)cap);
                }
                grown = realloc(out, out_cap);
                if (grown == NULL) {
                    inflateEnd(&zs);
                    free(out);
                    return mv_error_set(r->err, MV_ERR_NOMEM, MV_NO_TAG, pos, "out of memory inflating dataset");
                }
                out = grown;
            }
            zs.next_out = out + out_len;
            zs.avail_out = (uInt)((out_cap - out_len) > UINT32_MAX ? UINT32_MAX : (out_cap - out_len));
            zr = inflate(&zs, Z_NO_FLUSH);
            out_len = (size_t)(zs.next_out - out);
            if (zr == Z_STREAM_END)
                break;
            if (zr == Z_BUF_ERROR && zs.avail_in == 0)
                break; /* truncated stream: keep what inflated */
            if (zr != Z_OK)
                break;
        }
        inflateEnd(&zs);
        if (zr == Z_STREAM_END || (zr == Z_BUF_ERROR && out_len > 0))
            break;
    }
    if (zr != Z_STREAM_END && !(zr == Z_BUF_ERROR && out_len > 0)) {
        free(out);
        return mv_error_set(r->err, MV_ERR_PARSE, MV_NO_TAG, pos, "at offset %zu: deflated dataset is corrupt", pos);
    }
    if (zr != Z_STREAM_END)
        mv__file_warn(file, "offset %zu: deflated dataset is truncated", pos);
    file->inflated = out;
    file->inflated_len = out_len;
    return st;
}

/* Guesses the encoding of a dataset with no File Meta Information from its first bytes. */
static void guess_encoding(const uint8_t *p, size_t n, int *explicit_vr, int *be)
{
    *explicit_vr = 0;
    *be = 0;
    if (n < 8)
        return;
    if (p[0] == 0 && p[1] != 0 && p[1] <= 0x28 && !(p[2] == 0 && p[3] == 0 && p[1] == 0)) {
        /* (0008,xxxx) stored big endian starts 00 08. */
        if (mv__rd16(p, 0) > 0x1000 && mv__rd16(p, 1) < 0x1000)
            *be = 1;
    }
    *explicit_vr = is_vr_letter(p[4]) && is_vr_letter(p[5]) && mv_vr_is_known(MV_VR(p[4], p[5]));
}

/* 1 if data starts like a bare dataset: a group 0008 element with a valid explicit VR. */
static int looks_like_dataset(const uint8_t *p, size_t n)
{
    return n >= 8 && mv__rd16(p, 0) == 0x0008 && is_vr_letter(p[4]) && is_vr_letter(p[5]) &&
           mv_vr_is_known(MV_VR(p[4], p[5]));
}

static char *trimmed_copy(const uint8_t *v, size_t n)
{
    char *s;

    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\0'))
        n--;
    s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, v, n);
        s[n] = '\0';
    }
    return s;
}

static MvStatus parse_file(MvFile *file, const MvReadOptions *opts, MvError *err)
{
    Reader r = {0};
    size_t pos = 0;
    int explicit_vr, be;
    const MvTransferSyntax *ts = NULL;
    MvElement *ts_el;
    MvStatus st;

    r.file = file;
    r.buf = file->data;
    r.size = file->size;
    r.where = "";
    r.max_len = opts ? opts->max_element_length : 0;
    r.max_depth = opts && opts->max_depth ? opts->max_depth : DEFAULT_MAX_DEPTH;
    r.err = err;

    if (file->size >= 132 && memcmp(file->data + 128, "DICM", 4) == 0 &&
        (file->size < 136 || mv__rd16(file->data + 132, 0) == 0x0002 || !looks_like_dataset(file->data, file->size))) {
        memcpy(file->preamble, file->data, 128);
        file->had_preamble = 1;
        pos = 132;
    } else if (file->size >= 4 && memcmp(file->data, "DICM", 4) == 0) {
        mv__file_warn(file, "no 128-byte preamble before DICM");
        pos = 4;
    }
    if (file->size - pos >= 8 && mv__rd16(file->data + pos, 0) == 0x0002) {
        st = parse_meta(&r, file, &pos);
        if (st != MV_OK)
            return st;
        file->had_meta = 1;
    } else if (pos != 0) {
        mv__file_warn(file, "DICM marker without File Meta Information");
    }

    ts_el = mv_dataset_find(&file->meta, MV_TAG_TRANSFER_SYNTAX);
    if (ts_el != NULL && ts_el->value_len > 0) {
        char *uid = trimmed_copy(ts_el->value, ts_el->value_len);
        if (uid == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        ts = mv_ts_lookup(uid);
        if (ts == NULL) {
            mv__file_warn(file, "unknown Transfer Syntax UID in (0002,0010); read as explicit VR little endian");
            file->unknown_ts.uid = uid;
            file->unknown_ts.name = "Unknown Transfer Syntax";
            file->unknown_ts.explicit_vr = 1;
            file->unknown_ts.encapsulated = 1;
            file->ts_uid_unknown = uid;
            ts = &file->unknown_ts;
        } else {
            free(uid);
        }
    }
    if (ts == NULL) {
        guess_encoding(file->data + pos, file->size - pos, &explicit_vr, &be);
        ts = mv_ts_lookup(be ? MV_UID_EXPLICIT_BE : explicit_vr ? MV_UID_EXPLICIT_LE : MV_UID_IMPLICIT_LE);
        if (file->had_meta)
            mv__file_warn(file, "File Meta Information has no Transfer Syntax UID; guessed %s", ts->name);
    }
    file->ts = ts;
    explicit_vr = ts->explicit_vr;
    be = ts->big_endian;

    if (ts->deflated) {
        uint64_t cap = opts && opts->max_inflated ? opts->max_inflated : DEFAULT_MAX_INFLATED;
        file->deflated_at = pos;
        st = inflate_dataset(&r, file, pos, cap);
        if (st != MV_OK)
            return st;
        r.buf = file->inflated;
        r.size = file->inflated_len;
        r.where = " of the inflated dataset";
        pos = 0;
    }

    /* The meta may promise one encoding while the dataset uses the other (dcmtk and
     * pydicom both read on): check the first element's VR field. */
    if (r.size - pos >= 8 && mv__rd16(r.buf + pos, be) != 0xFFFE) {
        const uint8_t *p = r.buf + pos;
        int looks_explicit = is_vr_letter(p[4]) && is_vr_letter(p[5]) && mv_vr_is_known(MV_VR(p[4], p[5]));
        if (explicit_vr && !looks_explicit) {
            mv__file_warn(file, "dataset is implicit VR although the transfer syntax is explicit");
            explicit_vr = 0;
        } else if (!explicit_vr && looks_explicit) {
            uint32_t tag = ((uint32_t)mv__rd16(p, be) << 16) | mv__rd16(p + 2, be);
            MvVr dict = mv_dict_vr(tag), vr = MV_VR(p[4], p[5]);
            size_t left = r.size - pos;
            uint64_t explicit_next = mv_vr_has_long_length(vr) ? (left >= 12 ? 12 + (uint64_t)mv__rd32(p + 8, be) : UINT64_MAX)
                                                               : 8 + (uint64_t)mv__rd16(p + 6, be);
            uint64_t implicit_next = 8 + (uint64_t)mv__rd32(p + 4, be);
            int explicit_fits = explicit_next <= left, implicit_fits = implicit_next <= left;
            /* The dictionary's own VR is strong evidence; for tags it does not know, the
             * explicit reading must fit where the implicit one does not. */
            if (explicit_fits && (dict == vr || (dict == MV_VR_UN && !implicit_fits))) {
                mv__file_warn(file, "dataset is explicit VR although the transfer syntax is implicit");
                explicit_vr = 1;
            }
        }
    }
    file->ds.big_endian = (uint8_t)be;
    st = parse_dataset(&r, &file->ds, &pos, r.size, explicit_vr, be, 0, 0);
    if (st != MV_OK)
        return st;
    if (file->ds.n_elems == 0 && file->meta.n_elems == 0)
        return mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, 0, "no DICOM data found");
    return MV_OK;
}

static MvFile *file_alloc(const char *name)
{
    MvFile *file = calloc(1, sizeof *file);

    if (file == NULL)
        return NULL;
    file->fd = -1;
    file->name = strdup(name ? name : "<memory>");
    if (file->name == NULL) {
        free(file);
        return NULL;
    }
    mv__dataset_init(&file->meta, file, NULL);
    mv__dataset_init(&file->ds, file, NULL);
    file->ds.explicit_vr = 1;
    file->meta.explicit_vr = 1;
    return file;
}

MvStatus mv_file_from_memory(const void *data, size_t len, const char *name, const MvReadOptions *opts,
                             MvFile **out, MvError *err)
{
    MvFile *file;
    MvStatus st;

    *out = NULL;
    mv_error_clear(err);
    file = file_alloc(name);
    if (file == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    file->data = data;
    file->size = len;
    st = parse_file(file, opts, err);
    if (st != MV_OK) {
        mv_error_prefix(err, file->name);
        mv_file_free(file);
        return st;
    }
    *out = file;
    return MV_OK;
}

MvStatus mv_file_open(const char *path, const MvReadOptions *opts, MvFile **out, MvError *err)
{
    MvFile *file = NULL;
    struct stat sb;
    int fd = -1;
    MvStatus st = MV_OK;

    *out = NULL;
    mv_error_clear(err);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = mv_error_set(err, errno == ENOENT ? MV_ERR_NOTFOUND : MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s",
                          path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &sb) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: not a regular file", path);
        goto out;
    }
    if (sb.st_size == 0) {
        st = mv_error_set(err, MV_ERR_PARSE, MV_NO_TAG, 0, "%s: empty file", path);
        goto out;
    }
    file = file_alloc(path);
    if (file == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    file->size = (size_t)sb.st_size;
    if (!(opts && (opts->flags & MV_READ_NO_MMAP))) {
        void *map = mmap(NULL, file->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            file->map = map;
            file->map_len = file->size;
            file->data = map;
        }
    }
    if (file->data == NULL) {
        size_t got = 0;
        file->heap = malloc(file->size);
        if (file->heap == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "%s: out of memory", path);
            goto out;
        }
        while (got < file->size) {
            ssize_t n = read(fd, file->heap + got, file->size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, got, "%s: %s", path,
                                  n == 0 ? "file shrank while reading" : strerror(errno));
                goto out;
            }
            got += (size_t)n;
        }
        file->data = file->heap;
    }
    st = parse_file(file, opts, err);
    if (st != MV_OK)
        mv_error_prefix(err, path);
    if (st == MV_OK && file->map != NULL) {
        /* Kept so that the writer can copy large unchanged values in the kernel. */
        file->fd = fd;
        fd = -1;
    }
out:
    if (fd >= 0)
        close(fd);
    if (st != MV_OK) {
        mv_file_free(file);
        return st;
    }
    *out = file;
    return MV_OK;
}

MvStatus mv_file_new(MvFile **out)
{
    MvFile *file = file_alloc("<new>");

    *out = NULL;
    if (file == NULL)
        return MV_ERR_NOMEM;
    file->ts = mv_ts_lookup(MV_UID_EXPLICIT_LE);
    file->had_meta = 0;
    *out = file;
    return MV_OK;
}

void mv_file_free(MvFile *file)
{
    if (file == NULL)
        return;
    mv__dataset_clear(&file->meta);
    mv__dataset_clear(&file->ds);
    if (file->map != NULL)
        munmap(file->map, file->map_len);
    if (file->fd >= 0)
        close(file->fd);
    free(file->heap);
    free(file->inflated);
    free(file->ts_uid_unknown);
    for (size_t i = 0; i < file->n_warnings; i++)
        free(file->warnings[i]);
    free(file->name);
    free(file);
}

MvDataset *mv_file_meta(const MvFile *file)
{
    return (MvDataset *)&file->meta;
}

MvDataset *mv_file_dataset(const MvFile *file)
{
    return (MvDataset *)&file->ds;
}

const char *mv_file_name(const MvFile *file)
{
    return file->name;
}

const MvTransferSyntax *mv_file_transfer_syntax(const MvFile *file)
{
    return file->ts;
}

MvStatus mv_file_set_transfer_syntax(MvFile *file, const char *uid, MvError *err)
{
    const MvTransferSyntax *ts = mv_ts_lookup(uid);
    const MvElement *px = mv_dataset_find(&file->ds, MV_TAG_PIXEL_DATA);

    if (ts == NULL)
        return mv_error_set(err, MV_ERR_ARG, MV_TAG_TRANSFER_SYNTAX, MV_NO_OFFSET, "unknown transfer syntax %s",
                            uid);
    if (px != NULL && (px->flags & MV_EL_ENCAPS) && !ts->encapsulated)
        return mv_error_set(err, MV_ERR_ARG, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "%s needs native pixel data; (7FE0,0010) is encapsulated", ts->name);
    if (px != NULL && !(px->flags & MV_EL_ENCAPS) && ts->encapsulated)
        return mv_error_set(err, MV_ERR_ARG, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                            "%s needs encapsulated pixel data; (7FE0,0010) is native", ts->name);
    file->ts = ts;
    return MV_OK;
}

int mv_file_had_preamble(const MvFile *file)
{
    return file->had_preamble;
}

void mv_file_zero_preamble(MvFile *file)
{
    memset(file->preamble, 0, sizeof file->preamble);
}

int mv_file_had_meta(const MvFile *file)
{
    return file->had_meta;
}

uint64_t mv_file_input_size(const MvFile *file)
{
    return file->size;
}

size_t mv_file_warning_count(const MvFile *file)
{
    return file->n_warnings;
}

const char *mv_file_warning(const MvFile *file, size_t index)
{
    return index < file->n_warnings ? file->warnings[index] : NULL;
}
