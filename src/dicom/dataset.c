/* Datasets and elements: the sorted element array, read accessors with typed values,
 * the editing API and tag paths. An edit gives the element its own copy of the new value
 * and marks it and every ancestor dirty; untouched elements keep pointing into the input. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom_int.h"

void mv__dataset_init(MvDataset *ds, MvFile *file, MvDataset *parent)
{
    memset(ds, 0, sizeof *ds);
    ds->file = file;
    ds->parent = parent;
    ds->explicit_vr = 1;
    if (parent != NULL)
        ds->big_endian = parent->big_endian;
}

MvDataset *mv__dataset_new(MvFile *file, MvDataset *parent)
{
    MvDataset *ds = malloc(sizeof *ds);

    if (ds != NULL)
        mv__dataset_init(ds, file, parent);
    return ds;
}

void mv__element_clear(MvElement *el)
{
    for (size_t i = 0; i < el->n_items; i++)
        mv__dataset_free(el->items[i]);
    free(el->items);
    free(el->frags);
    if (el->flags & MV_EL_OWNED)
        free((void *)el->value);
    memset(el, 0, sizeof *el);
}

void mv__dataset_clear(MvDataset *ds)
{
    if (ds == NULL)
        return;
    for (size_t i = 0; i < ds->n_elems; i++)
        mv__element_clear(&ds->elems[i]);
    free(ds->elems);
    free(ds->charset);
    ds->elems = NULL;
    ds->n_elems = ds->cap_elems = 0;
    ds->charset = NULL;
}

void mv__dataset_free(MvDataset *ds)
{
    if (ds == NULL)
        return;
    mv__dataset_clear(ds);
    free(ds);
}

MvStatus mv__dataset_append(MvDataset *ds, const MvElement *el)
{
    if (ds->n_elems == ds->cap_elems) {
        size_t cap = ds->cap_elems ? ds->cap_elems * 2 : 16;
        MvElement *elems = realloc(ds->elems, cap * sizeof *elems);
        if (elems == NULL)
            return MV_ERR_NOMEM;
        ds->elems = elems;
        ds->cap_elems = cap;
    }
    ds->elems[ds->n_elems] = *el;
    ds->elems[ds->n_elems].owner = ds;
    ds->n_elems++;
    return MV_OK;
}

/* Stable insertion sort: inputs are nearly sorted, and equal tags keep their order. */
void mv__dataset_sort(MvDataset *ds)
{
    for (size_t i = 1; i < ds->n_elems; i++) {
        MvElement key = ds->elems[i];
        size_t j = i;
        while (j > 0 && ds->elems[j - 1].tag > key.tag) {
            ds->elems[j] = ds->elems[j - 1];
            j--;
        }
        ds->elems[j] = key;
    }
    for (size_t i = 0; i < ds->n_elems; i++)
        for (size_t k = 0; k < ds->elems[i].n_items; k++)
            ds->elems[i].items[k]->parent = ds;
}

size_t mv__dataset_lower_bound(const MvDataset *ds, uint32_t tag)
{
    size_t lo = 0, hi = ds->n_elems;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->elems[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void mv__dataset_mark_dirty(MvDataset *ds)
{
    while (ds != NULL && !ds->dirty) {
        MvDataset *parent = ds->parent;
        ds->dirty = 1;
        if (parent != NULL) {
            for (size_t i = 0; i < parent->n_elems; i++) {
                MvElement *el = &parent->elems[i];
                for (size_t k = 0; k < el->n_items; k++)
                    if (el->items[k] == ds)
                        el->flags |= MV_EL_DIRTY;
            }
        }
        ds = parent;
    }
}

/* ---- read accessors ------------------------------------------------------------ */

size_t mv_dataset_count(const MvDataset *ds)
{
    return ds->n_elems;
}

MvElement *mv_dataset_at(const MvDataset *ds, size_t index)
{
    return index < ds->n_elems ? &ds->elems[index] : NULL;
}

MvElement *mv_dataset_find(const MvDataset *ds, uint32_t tag)
{
    size_t i = mv__dataset_lower_bound(ds, tag);

    return (i < ds->n_elems && ds->elems[i].tag == tag) ? &ds->elems[i] : NULL;
}

MvDataset *mv_dataset_parent(const MvDataset *ds)
{
    return ds->parent;
}

int mv_dataset_big_endian(const MvDataset *ds)
{
    return ds->big_endian;
}

const char *mv_dataset_charset(const MvDataset *ds)
{
    for (const MvDataset *d = ds; d != NULL; d = d->parent) {
        MvElement *el;
        if (d->charset != NULL)
            return d->charset;
        el = mv_dataset_find(d, MV_TAG_SPECIFIC_CHARSET);
        if (el != NULL) {
            size_t n = el->value_len;
            char *copy;
            while (n > 0 && (el->value[n - 1] == ' ' || el->value[n - 1] == '\0'))
                n--;
            copy = malloc(n + 1);
            if (copy == NULL)
                return "";
            if (n > 0)
                memcpy(copy, el->value, n);
            copy[n] = '\0';
            ((MvDataset *)d)->charset = copy;
            return copy;
        }
    }
    return "";
}

const char *mv_dataset_private_creator(const MvDataset *ds, uint32_t tag, size_t *len)
{
    MvElement *creator;
    uint16_t block = MV_TAG_ELEMENT(tag) >> 8;
    size_t n;

    if (!MV_TAG_IS_PRIVATE(tag) || block < 0x10)
        return NULL;
    creator = mv_dataset_find(ds, MV_TAG(MV_TAG_GROUP(tag), block));
    if (creator == NULL || creator->value == NULL)
        return NULL;
    n = creator->value_len;
    while (n > 0 && (creator->value[n - 1] == ' ' || creator->value[n - 1] == '\0'))
        n--;
    if (len != NULL)
        *len = n;
    return (const char *)creator->value;
}

uint32_t mv_element_tag(const MvElement *el)
{
    return el->tag;
}

MvVr mv_element_vr(const MvElement *el)
{
    return el->vr;
}

uint32_t mv_element_length(const MvElement *el)
{
    if ((el->flags & MV_EL_UNDEF_LEN) && !(el->flags & MV_EL_DIRTY))
        return MV_UNDEFINED_LENGTH;
    if (el->flags & (MV_EL_SEQ | MV_EL_ENCAPS))
        return el->flags & MV_EL_UNDEF_LEN ? MV_UNDEFINED_LENGTH : el->length;
    return (uint32_t)el->value_len;
}

uint64_t mv_element_offset(const MvElement *el)
{
    return el->offset;
}

const uint8_t *mv_element_value(const MvElement *el, size_t *len)
{
    if ((el->flags & (MV_EL_SEQ | MV_EL_ENCAPS)) || el->value_len == 0) {
        *len = 0;
        return NULL;
    }
    *len = el->value_len;
    return el->value;
}

int mv_element_is_sequence(const MvElement *el)
{
    return (el->flags & MV_EL_SEQ) != 0;
}

size_t mv_element_item_count(const MvElement *el)
{
    return el->n_items;
}

MvDataset *mv_element_item(const MvElement *el, size_t index)
{
    return index < el->n_items ? el->items[index] : NULL;
}

int mv_element_is_encapsulated(const MvElement *el)
{
    return (el->flags & MV_EL_ENCAPS) != 0;
}

size_t mv_element_fragment_count(const MvElement *el)
{
    return el->n_frags;
}

const uint8_t *mv_element_fragment(const MvElement *el, size_t index, size_t *len)
{
    if (index >= el->n_frags) {
        *len = 0;
        return NULL;
    }
    *len = el->frags[index].len;
    return el->frags[index].data;
}

static int single_valued_text(MvVr vr)
{
    return vr == MV_VR_LT || vr == MV_VR_ST || vr == MV_VR_UT || vr == MV_VR_UR;
}

size_t mv_element_vm(const MvElement *el)
{
    size_t n = 1;

    if (el->flags & MV_EL_SEQ)
        return el->n_items;
    if (el->flags & MV_EL_ENCAPS)
        return 1;
    if (el->value_len == 0)
        return 0;
    if (mv_vr_is_text(el->vr)) {
        if (single_valued_text(el->vr))
            return 1;
        for (size_t i = 0; i < el->value_len; i++)
            if (el->value[i] == '\\')
                n++;
        return n;
    }
    switch (el->vr) {
    case MV_VR_US: case MV_VR_SS: case MV_VR_UL: case MV_VR_SL: case MV_VR_FL: case MV_VR_FD:
    case MV_VR_AT: case MV_VR_SV: case MV_VR_UV:
        return el->value_len / mv_vr_unit_size(el->vr);
    default:
        return 1;
    }
}

MvStatus mv_element_string(const MvDataset *ds, const MvElement *el, char **out, MvError *err)
{
    const uint8_t *v = el->value;
    size_t n = el->value_len;
    const char *charset;

    *out = NULL;
    if (!mv_vr_is_text(el->vr))
        return mv_error_set(err, MV_ERR_ARG, el->tag, el->offset, "(%04X,%04X) is not a text element",
                            MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag));
    /* PS3.5 6.2: trailing spaces (and the NUL of UI) are padding, not value. */
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\0'))
        n--;
    charset = mv_vr_uses_charset(el->vr) ? mv_dataset_charset(ds) : "";
    return mv_charset_to_utf8(charset, el->vr, v, n, out, NULL, NULL, err);
}

/* Finds value index of a backslash-separated text value; leading/trailing spaces trimmed. */
static int text_value(const MvElement *el, size_t index, const uint8_t **start, size_t *len)
{
    const uint8_t *v = el->value, *end = el->value + el->value_len;
    size_t i = 0;

    if (v == NULL)
        return 0;
    while (i < index) {
        const uint8_t *bs = memchr(v, '\\', (size_t)(end - v));
        if (bs == NULL)
            return 0;
        v = bs + 1;
        i++;
    }
    {
        const uint8_t *bs = memchr(v, '\\', (size_t)(end - v));
        const uint8_t *stop = bs ? bs : end;
        while (v < stop && (*v == ' ' || *v == '\0'))
            v++;
        while (stop > v && (stop[-1] == ' ' || stop[-1] == '\0'))
            stop--;
        *start = v;
        *len = (size_t)(stop - v);
    }
    return 1;
}

static MvStatus number_text(const MvDataset *ds, const MvElement *el, size_t index, char buf[64], MvError *err)
{
    const uint8_t *s;
    size_t n;

    (void)ds;
    if (!text_value(el, index, &s, &n))
        return mv_error_set(err, MV_ERR_NOTFOUND, el->tag, el->offset, "(%04X,%04X) has no value %zu",
                            MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag), index);
    if (n == 0 || n >= 64)
        return mv_error_set(err, MV_ERR_PARSE, el->tag, el->offset, "(%04X,%04X) value %zu is not a number",
                            MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag), index);
    memcpy(buf, s, n);
    buf[n] = '\0';
    return MV_OK;
}

/* Reads binary value index as a 64-bit pattern plus signedness/float kind. */
static MvStatus binary_value(const MvDataset *ds, const MvElement *el, size_t index, uint64_t *bits, MvError *err)
{
    size_t unit = mv_vr_unit_size(el->vr);
    const uint8_t *p;
    int be = ds ? ds->big_endian : 0;

    if (el->value == NULL || unit == 1 || (index + 1) * unit > el->value_len)
        return mv_error_set(err, MV_ERR_NOTFOUND, el->tag, el->offset, "(%04X,%04X) has no value %zu",
                            MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag), index);
    p = el->value + index * unit;
    switch (unit) {
    case 2: *bits = mv__rd16(p, be); break;
    case 4:
        if (el->vr == MV_VR_AT)
            *bits = ((uint32_t)mv__rd16(p, be) << 16) | mv__rd16(p + 2, be);
        else
            *bits = mv__rd32(p, be);
        break;
    default:
        *bits = be ? ((uint64_t)mv__rd32(p, 1) << 32) | mv__rd32(p + 4, 1)
                   : ((uint64_t)mv__rd32(p + 4, 0) << 32) | mv__rd32(p, 0);
        break;
    }
    return MV_OK;
}

MvStatus mv_element_int(const MvDataset *ds, const MvElement *el, size_t index, int64_t *out, MvError *err)
{
    uint64_t bits;
    MvStatus st;

    if (el->vr == MV_VR_IS || el->vr == MV_VR_DS) {
        char buf[64], *end;
        long long v;
        if ((st = number_text(ds, el, index, buf, err)) != MV_OK)
            return st;
        errno = 0;
        v = strtoll(buf, &end, 10);
        if (errno != 0 || *end != '\0')
            return mv_error_set(err, MV_ERR_PARSE, el->tag, el->offset, "(%04X,%04X) value %zu is not an integer",
                                MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag), index);
        *out = v;
        return MV_OK;
    }
    if ((st = binary_value(ds, el, index, &bits, err)) != MV_OK)
        return st;
    switch (el->vr) {
    case MV_VR_SS: *out = (int16_t)bits; break;
    case MV_VR_SL: *out = (int32_t)bits; break;
    case MV_VR_SV: *out = (int64_t)bits; break;
    case MV_VR_US: case MV_VR_UL: case MV_VR_AT: case MV_VR_OW: case MV_VR_OL: *out = (int64_t)bits; break;
    case MV_VR_UV: case MV_VR_OV:
        if (bits > INT64_MAX)
            return mv_error_set(err, MV_ERR_PARSE, el->tag, el->offset, "(%04X,%04X) value out of range",
                                MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag));
        *out = (int64_t)bits;
        break;
    default:
        return mv_error_set(err, MV_ERR_ARG, el->tag, el->offset, "(%04X,%04X) is not an integer element",
                            MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag));
    }
    return MV_OK;
}

MvStatus mv_element_uint(const MvDataset *ds, const MvElement *el, size_t index, uint64_t *out, MvError *err)
{
    int64_t v;
    uint64_t bits;
    MvStatus st;

    if (el->vr == MV_VR_UV || el->vr == MV_VR_OV) {
        if ((st = binary_value(ds, el, index, &bits, err)) != MV_OK)
            return st;
        *out = bits;
        return MV_OK;
    }
    if ((st = mv_element_int(ds, el, index, &v, NULL)) != MV_OK)
        return mv_error_set(err, st, el->tag, el->offset, "(%04X,%04X) value %zu is not an unsigned integer",
                            MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag), index);
    if (v < 0)
        return mv_error_set(err, MV_ERR_PARSE, el->tag, el->offset, "(%04X,%04X) value %zu is negative",
                            MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag), index);
    *out = (uint64_t)v;
    return MV_OK;
}

MvStatus mv_element_double(const MvDataset *ds, const MvElement *el, size_t index, double *out, MvError *err)
{
    uint64_t bits;
    int64_t iv;
    MvStatus st;

    if (el->vr == MV_VR_DS || el->vr == MV_VR_IS) {
        char buf[64], *end;
        double v;
        if ((st = number_text(ds, el, index, buf, err)) != MV_OK)
            return st;
        errno = 0;
        v = strtod(buf, &end);
        if (*end != '\0' || !isfinite(v))
            return mv_error_set(err, MV_ERR_PARSE, el->tag, el->offset, "(%04X,%04X) value %zu is not a number",
                                MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag), index);
        *out = v;
        return MV_OK;
    }
    if (el->vr == MV_VR_FL || el->vr == MV_VR_OF) {
        float f;
        uint32_t b32;
        if ((st = binary_value(ds, el, index, &bits, err)) != MV_OK)
            return st;
        b32 = (uint32_t)bits;
        memcpy(&f, &b32, sizeof f);
        *out = f;
        return MV_OK;
    }
    if (el->vr == MV_VR_FD || el->vr == MV_VR_OD) {
        if ((st = binary_value(ds, el, index, &bits, err)) != MV_OK)
            return st;
        memcpy(out, &bits, sizeof *out);
        return MV_OK;
    }
    if (el->vr == MV_VR_UV) {
        if ((st = binary_value(ds, el, index, &bits, err)) != MV_OK)
            return st;
        *out = (double)bits;
        return MV_OK;
    }
    if ((st = mv_element_int(ds, el, index, &iv, err)) != MV_OK)
        return st;
    *out = (double)iv;
    return MV_OK;
}

MvStatus mv_dataset_get_string(const MvDataset *ds, uint32_t tag, char **out, MvError *err)
{
    const MvElement *el = mv_dataset_find(ds, tag);

    *out = NULL;
    if (el == NULL)
        return mv_error_set(err, MV_ERR_NOTFOUND, tag, MV_NO_OFFSET, "(%04X,%04X) is absent", MV_TAG_GROUP(tag),
                            MV_TAG_ELEMENT(tag));
    return mv_element_string(ds, el, out, err);
}

/* ---- editing ------------------------------------------------------------------ */

/* Returns the element for tag, inserted empty in tag order if absent. */
static MvStatus slot_for(MvDataset *ds, uint32_t tag, MvElement **out)
{
    size_t i = mv__dataset_lower_bound(ds, tag);

    if (i < ds->n_elems && ds->elems[i].tag == tag) {
        *out = &ds->elems[i];
        return MV_OK;
    }
    if (ds->n_elems == ds->cap_elems) {
        size_t cap = ds->cap_elems ? ds->cap_elems * 2 : 16;
        MvElement *elems = realloc(ds->elems, cap * sizeof *elems);
        if (elems == NULL)
            return MV_ERR_NOMEM;
        ds->elems = elems;
        ds->cap_elems = cap;
    }
    memmove(&ds->elems[i + 1], &ds->elems[i], (ds->n_elems - i) * sizeof *ds->elems);
    ds->n_elems++;
    memset(&ds->elems[i], 0, sizeof ds->elems[i]);
    ds->elems[i].tag = tag;
    ds->elems[i].offset = MV_NO_OFFSET;
    ds->elems[i].owner = ds;
    *out = &ds->elems[i];
    return MV_OK;
}

static void forget_charset_cache(MvDataset *ds, uint32_t tag)
{
    if (tag != MV_TAG_SPECIFIC_CHARSET)
        return;
    free(ds->charset);
    ds->charset = NULL;
}

MvStatus mv_dataset_set_bytes(MvDataset *ds, uint32_t tag, MvVr vr, const void *value, size_t len, MvError *err)
{
    MvElement *el;
    uint8_t *copy = NULL;

    if (MV_TAG_GROUP(tag) == 0xFFFE)
        return mv_error_set(err, MV_ERR_ARG, tag, MV_NO_OFFSET, "(FFFE,%04X) is a delimiter, not an element",
                            MV_TAG_ELEMENT(tag));
    if (vr == MV_VR_NONE)
        vr = mv_dict_vr(tag);
    if (vr == MV_VR_SQ)
        return mv_error_set(err, MV_ERR_ARG, tag, MV_NO_OFFSET, "(%04X,%04X): use mv_dataset_set_sequence for SQ",
                            MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
    if (len > 0xFFFFFFFEu || (!mv_vr_has_long_length(vr) && len > 0xFFFE))
        return mv_error_set(err, MV_ERR_LIMIT, tag, MV_NO_OFFSET, "(%04X,%04X): value of %zu bytes is too long",
                            MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag), len);
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, tag, MV_NO_OFFSET, "out of memory");
        memcpy(copy, value, len);
    }
    if (slot_for(ds, tag, &el) != MV_OK) {
        free(copy);
        return mv_error_set(err, MV_ERR_NOMEM, tag, MV_NO_OFFSET, "out of memory");
    }
    {
        uint64_t offset = el->offset;
        mv__element_clear(el);
        el->offset = offset;
        el->owner = ds;
    }
    el->tag = tag;
    el->vr = vr;
    el->value = copy;
    el->value_len = len;
    el->length = (uint32_t)len;
    el->flags = MV_EL_DIRTY | (copy ? MV_EL_OWNED : 0);
    forget_charset_cache(ds, tag);
    mv__dataset_mark_dirty(ds);
    return MV_OK;
}

MvStatus mv_dataset_set_fragments(MvDataset *ds, uint32_t tag, MvVr vr, const uint8_t *const *data,
                                  const size_t *lens, size_t n_frags, MvError *err)
{
    MvElement *el;
    MvFragment *frags;
    uint8_t *bytes;
    size_t total = 0;

    if (MV_TAG_GROUP(tag) == 0xFFFE)
        return mv_error_set(err, MV_ERR_ARG, tag, MV_NO_OFFSET, "(FFFE,%04X) is a delimiter, not an element",
                            MV_TAG_ELEMENT(tag));
    if (vr == MV_VR_NONE)
        vr = MV_VR_OB;
    if (vr != MV_VR_OB && vr != MV_VR_OW)
        return mv_error_set(err, MV_ERR_ARG, tag, MV_NO_OFFSET, "(%04X,%04X): encapsulated data is OB",
                            MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
    if (n_frags == 0 || n_frags > SIZE_MAX / sizeof *frags / 2)
        return mv_error_set(err, MV_ERR_ARG, tag, MV_NO_OFFSET,
                            "(%04X,%04X): encapsulated data needs at least the Basic Offset Table item",
                            MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
    for (size_t i = 0; i < n_frags; i++) {
        size_t padded = lens[i] + (lens[i] & 1u);
        if (lens[i] >= 0xFFFFFFFEu || padded > SIZE_MAX - total - n_frags * sizeof *frags)
            return mv_error_set(err, MV_ERR_LIMIT, tag, MV_NO_OFFSET,
                                "(%04X,%04X): fragment %zu of %zu bytes is too long", MV_TAG_GROUP(tag),
                                MV_TAG_ELEMENT(tag), i, lens[i]);
        total += padded;
    }
    /* One block: the fragment table, then the bytes it points at (freed with el->frags). */
    frags = malloc(n_frags * sizeof *frags + total);
    if (frags == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, tag, MV_NO_OFFSET, "out of memory");
    bytes = (uint8_t *)(frags + n_frags);
    for (size_t i = 0; i < n_frags; i++) {
        size_t padded = lens[i] + (lens[i] & 1u);
        if (lens[i] > 0)
            memcpy(bytes, data[i], lens[i]);
        if (padded != lens[i])
            bytes[lens[i]] = 0;
        frags[i].data = bytes;
        frags[i].len = (uint32_t)padded;
        bytes += padded;
    }
    if (slot_for(ds, tag, &el) != MV_OK) {
        free(frags);
        return mv_error_set(err, MV_ERR_NOMEM, tag, MV_NO_OFFSET, "out of memory");
    }
    {
        uint64_t offset = el->offset;
        mv__element_clear(el);
        el->offset = offset;
        el->owner = ds;
    }
    el->tag = tag;
    el->vr = vr;
    el->frags = frags;
    el->n_frags = n_frags;
    el->length = MV_UNDEFINED_LENGTH;
    el->flags = MV_EL_DIRTY | MV_EL_ENCAPS | MV_EL_UNDEF_LEN;
    mv__dataset_mark_dirty(ds);
    return MV_OK;
}

MvStatus mv_dataset_set_string(MvDataset *ds, uint32_t tag, MvVr vr, const char *value, MvError *err)
{
    size_t len = strlen(value);
    int ascii = 1;

    if (vr == MV_VR_NONE)
        vr = mv_dict_vr(tag);
    if (!mv_vr_is_text(vr) && vr != MV_VR_UN)
        return mv_error_set(err, MV_ERR_ARG, tag, MV_NO_OFFSET, "(%04X,%04X) does not hold text",
                            MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] >= 0x80)
            ascii = 0;
    if (!ascii) {
        const char *cs = mv_dataset_charset(ds);
        if (!mv_vr_uses_charset(vr) || strstr(cs, "ISO_IR 192") == NULL)
            return mv_error_set(err, MV_ERR_CHARSET, tag, MV_NO_OFFSET,
                                "(%04X,%04X): non-ASCII text needs Specific Character Set ISO_IR 192",
                                MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
    }
    return mv_dataset_set_bytes(ds, tag, vr, value, len, err);
}

MvStatus mv_dataset_set_uint(MvDataset *ds, uint32_t tag, MvVr vr, uint64_t value, MvError *err)
{
    uint8_t buf[8];
    int be = ds->big_endian;

    if (vr == MV_VR_NONE)
        vr = mv_dict_vr(tag);
    switch (vr) {
    case MV_VR_US: case MV_VR_SS:
        if (value > 0xFFFF)
            goto range;
        mv__wr16(buf, (uint16_t)value, be);
        return mv_dataset_set_bytes(ds, tag, vr, buf, 2, err);
    case MV_VR_UL: case MV_VR_SL:
        if (value > 0xFFFFFFFFu)
            goto range;
        mv__wr32(buf, (uint32_t)value, be);
        return mv_dataset_set_bytes(ds, tag, vr, buf, 4, err);
    case MV_VR_UV: case MV_VR_SV:
        if (be) {
            mv__wr32(buf, (uint32_t)(value >> 32), 1);
            mv__wr32(buf + 4, (uint32_t)value, 1);
        } else {
            mv__wr32(buf, (uint32_t)value, 0);
            mv__wr32(buf + 4, (uint32_t)(value >> 32), 0);
        }
        return mv_dataset_set_bytes(ds, tag, vr, buf, 8, err);
    case MV_VR_IS: {
        char text[24];
        /* PS3.5 Table 6.2-1: an IS lies in [-2^31, 2^31 - 1]. */
        if (value > INT32_MAX)
            goto range;
        snprintf(text, sizeof text, "%" PRIu64, value);
        return mv_dataset_set_string(ds, tag, vr, text, err);
    }
    default:
        return mv_error_set(err, MV_ERR_ARG, tag, MV_NO_OFFSET, "(%04X,%04X) is not an integer element",
                            MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
    }
range:
    return mv_error_set(err, MV_ERR_ARG, tag, MV_NO_OFFSET, "(%04X,%04X): value out of range for its VR",
                        MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag));
}

MvStatus mv_dataset_remove(MvDataset *ds, uint32_t tag)
{
    size_t i = mv__dataset_lower_bound(ds, tag);

    if (i >= ds->n_elems || ds->elems[i].tag != tag)
        return MV_ERR_NOTFOUND;
    mv__element_clear(&ds->elems[i]);
    memmove(&ds->elems[i], &ds->elems[i + 1], (ds->n_elems - i - 1) * sizeof *ds->elems);
    ds->n_elems--;
    forget_charset_cache(ds, tag);
    mv__dataset_mark_dirty(ds);
    return MV_OK;
}

MvStatus mv_dataset_set_sequence(MvDataset *ds, uint32_t tag, MvElement **out, MvError *err)
{
    MvElement *el;

    if (slot_for(ds, tag, &el) != MV_OK)
        return mv_error_set(err, MV_ERR_NOMEM, tag, MV_NO_OFFSET, "out of memory");
    mv__element_clear(el);
    el->tag = tag;
    el->vr = MV_VR_SQ;
    el->offset = MV_NO_OFFSET;
    el->owner = ds;
    el->flags = MV_EL_SEQ | MV_EL_DIRTY | MV_EL_UNDEF_LEN;
    el->length = MV_UNDEFINED_LENGTH;
    mv__dataset_mark_dirty(ds);
    if (out != NULL)
        *out = el;
    return MV_OK;
}

static MvDataset *owner_of(MvElement *seq)
{
    return seq->owner;
}

MvStatus mv_element_insert_item(MvElement *seq, size_t index, MvDataset **item, MvError *err)
{
    MvDataset *owner = owner_of(seq), *it;

    if (!(seq->flags & MV_EL_SEQ))
        return mv_error_set(err, MV_ERR_ARG, seq->tag, MV_NO_OFFSET, "(%04X,%04X) is not a sequence",
                            MV_TAG_GROUP(seq->tag), MV_TAG_ELEMENT(seq->tag));
    if (index == MV_APPEND || index > seq->n_items)
        index = seq->n_items;
    if (seq->n_items == seq->cap_items) {
        size_t cap = seq->cap_items ? seq->cap_items * 2 : 4;
        MvDataset **items = realloc(seq->items, cap * sizeof *items);
        if (items == NULL)
            return mv_error_set(err, MV_ERR_NOMEM, seq->tag, MV_NO_OFFSET, "out of memory");
        seq->items = items;
        seq->cap_items = cap;
    }
    it = mv__dataset_new(owner ? owner->file : NULL, owner);
    if (it == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, seq->tag, MV_NO_OFFSET, "out of memory");
    it->undef_len = 1;
    it->dirty = 1;
    it->offset = MV_NO_OFFSET;
    memmove(&seq->items[index + 1], &seq->items[index], (seq->n_items - index) * sizeof *seq->items);
    seq->items[index] = it;
    seq->n_items++;
    seq->flags |= MV_EL_DIRTY;
    if (owner != NULL)
        mv__dataset_mark_dirty(owner);
    *item = it;
    return MV_OK;
}

MvStatus mv_element_remove_item(MvElement *seq, size_t index)
{
    MvDataset *owner = owner_of(seq);

    if (index >= seq->n_items)
        return MV_ERR_NOTFOUND;
    mv__dataset_free(seq->items[index]);
    memmove(&seq->items[index], &seq->items[index + 1], (seq->n_items - index - 1) * sizeof *seq->items);
    seq->n_items--;
    seq->flags |= MV_EL_DIRTY;
    if (owner != NULL)
        mv__dataset_mark_dirty(owner);
    return MV_OK;
}

/* ---- tag paths ---------------------------------------------------------------- */

/* Splits the next step "TAG[INDEX]" or "TAG" off *p. */
static MvStatus path_step(const char **p, uint32_t *tag, long *index, MvError *err)
{
    char word[80];
    size_t n = 0;
    const char *s = *p;

    *index = -1;
    while (*s != '\0' && *s != '.' && *s != '[') {
        if (n + 1 >= sizeof word)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "tag path step is too long");
        word[n++] = *s++;
    }
    word[n] = '\0';
    if (mv_tag_parse(word, tag, err) != MV_OK)
        return MV_ERR_ARG;
    if (*s == '[') {
        char *end;
        errno = 0;
        *index = strtol(s + 1, &end, 10);
        if (end == s + 1 || *end != ']' || *index < 0 || errno != 0)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "bad item index in tag path after '%s'",
                                word);
        s = end + 1;
    }
    if (*s == '.')
        s++;
    *p = s;
    return MV_OK;
}

MvStatus mv_path_resolve(MvDataset *root, const char *path, int create, MvDataset **holder, uint32_t *tag,
                         MvError *err)
{
    const char *p = path;
    MvDataset *ds = root;

    if (path == NULL || *path == '\0')
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "empty tag path");
    for (;;) {
        uint32_t step_tag;
        long index;
        MvElement *el;

        if (path_step(&p, &step_tag, &index, err) != MV_OK)
            return MV_ERR_ARG;
        if (*p == '\0') {
            if (index >= 0)
                return mv_error_set(err, MV_ERR_ARG, step_tag, MV_NO_OFFSET,
                                    "tag path ends with an item index; name an element inside the item");
            *holder = ds;
            *tag = step_tag;
            return MV_OK;
        }
        if (index < 0)
            return mv_error_set(err, MV_ERR_ARG, step_tag, MV_NO_OFFSET,
                                "sequence (%04X,%04X) in a tag path needs an item index like [0]",
                                MV_TAG_GROUP(step_tag), MV_TAG_ELEMENT(step_tag));
        el = mv_dataset_find(ds, step_tag);
        if (el == NULL || !(el->flags & MV_EL_SEQ)) {
            if (!create || (el != NULL && !(el->flags & MV_EL_SEQ)))
                return mv_error_set(err, el ? MV_ERR_ARG : MV_ERR_NOTFOUND, step_tag, MV_NO_OFFSET,
                                    "(%04X,%04X) %s", MV_TAG_GROUP(step_tag), MV_TAG_ELEMENT(step_tag),
                                    el ? "is not a sequence" : "is absent");
            if (mv_dataset_set_sequence(ds, step_tag, &el, err) != MV_OK)
                return MV_ERR_NOMEM;
        }
        if ((size_t)index >= el->n_items) {
            MvDataset *item;
            if (!create || (size_t)index != el->n_items)
                return mv_error_set(err, MV_ERR_NOTFOUND, step_tag, MV_NO_OFFSET,
                                    "sequence (%04X,%04X) has %zu items, no item %ld", MV_TAG_GROUP(step_tag),
                                    MV_TAG_ELEMENT(step_tag), el->n_items, index);
            if (mv_element_insert_item(el, MV_APPEND, &item, err) != MV_OK)
                return MV_ERR_NOMEM;
        }
        ds = el->items[index];
    }
}

MvElement *mv_path_find(MvDataset *root, const char *path, MvDataset **holder)
{
    MvDataset *ds;
    uint32_t tag;

    if (mv_path_resolve(root, path, 0, &ds, &tag, NULL) != MV_OK)
        return NULL;
    if (holder != NULL)
        *holder = ds;
    return mv_dataset_find(ds, tag);
}

MvStatus mv_path_set_string(MvDataset *root, const char *path, const char *value, MvError *err)
{
    MvDataset *ds;
    uint32_t tag;
    MvStatus st = mv_path_resolve(root, path, 1, &ds, &tag, err);

    if (st != MV_OK)
        return st;
    return mv_dataset_set_string(ds, tag, MV_VR_NONE, value, err);
}

MvStatus mv_path_remove(MvDataset *root, const char *path, MvError *err)
{
    MvDataset *ds;
    uint32_t tag;
    MvStatus st = mv_path_resolve(root, path, 0, &ds, &tag, err);

    if (st != MV_OK)
        return st;
    if (mv_dataset_remove(ds, tag) != MV_OK)
        return mv_error_set(err, MV_ERR_NOTFOUND, tag, MV_NO_OFFSET, "(%04X,%04X) is absent", MV_TAG_GROUP(tag),
                            MV_TAG_ELEMENT(tag));
    return MV_OK;
}
