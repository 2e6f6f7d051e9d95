/* The Part 10 writer. Elements that were not edited and whose encoding does not change
 * are copied verbatim from the input (large ones with one write straight from the
 * mapping); everything else is encoded for the target transfer syntax. Files appear
 * under their final name only when complete: temporary name, fsync, rename. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dicom/dicom_int.h"

#define SINK_BUF (64 * 1024)

typedef struct Sink {
    int fd;
    int in_fd;             /* the input file, for copy_file_range; -1 if none */
    const uint8_t *in_base;
    size_t in_size;
    int no_copy_range;     /* copy_file_range failed once: use write */
    uint64_t pos;          /* bytes of the file emitted so far (before deflate) */
    int dry;               /* count only: nothing is written */
    const MvElement *track; /* a sequence whose items' positions are recorded */
    uint64_t *track_pos;
    uint8_t *buf;
    size_t len;
    z_stream *zs;
    MvError *err;
    MvStatus st;
} Sink;

typedef struct Enc {
    int explicit_vr;
    int be;
} Enc;

void mv_write_options_init(MvWriteOptions *opts)
{
    memset(opts, 0, sizeof *opts);
}

static void write_all(Sink *s, const uint8_t *p, size_t n)
{
    while (n > 0 && s->st == MV_OK) {
        ssize_t w = write(s->fd, p, n > (size_t)1 << 30 ? (size_t)1 << 30 : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->st = mv_error_set(s->err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "write failed: %s",
                                 w < 0 ? strerror(errno) : "no progress");
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void sink_flush(Sink *s)
{
    if (s->len > 0)
        write_all(s, s->buf, s->len);
    s->len = 0;
}

static void deflate_out(Sink *s, const uint8_t *p, size_t n, int flush)
{
    uint8_t out[SINK_BUF];

    s->zs->next_in = (Bytef *)(uintptr_t)p;
    s->zs->avail_in = (uInt)n;
    do {
        int zr;
        s->zs->next_out = out;
        s->zs->avail_out = sizeof out;
        zr = deflate(s->zs, flush);
        if (zr == Z_STREAM_ERROR) {
            s->st = mv_error_set(s->err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "deflate failed");
            return;
        }
        write_all(s, out, sizeof out - s->zs->avail_out);
    } while (s->st == MV_OK && (s->zs->avail_out == 0 || s->zs->avail_in > 0));
}

static void put(Sink *s, const void *data, size_t n)
{
    const uint8_t *p = data;

    if (s->st != MV_OK || n == 0)
        return;
    s->pos += n;
    if (s->dry)
        return;
    if (s->zs != NULL) {
        while (n > 0 && s->st == MV_OK) {
            size_t chunk = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
            deflate_out(s, p, chunk, Z_NO_FLUSH);
            p += chunk;
            n -= chunk;
        }
        return;
    }
    if (n >= SINK_BUF) {
        /* Large values (pixel data) go from the input to the output in the kernel, or
         * straight from the mapping: never through a buffer of ours. */
        sink_flush(s);
        if (s->in_fd >= 0 && !s->no_copy_range && p >= s->in_base && p + n <= s->in_base + s->in_size) {
            loff_t off = (loff_t)(p - s->in_base);
            while (n > 0) {
                ssize_t c = copy_file_range(s->in_fd, &off, s->fd, NULL, n, 0);
                if (c < 0 && errno == EINTR)
                    continue;
                if (c <= 0)
                    break;
                p += c;
                n -= (size_t)c;
            }
            if (n == 0)
                return;
            s->no_copy_range = 1;
        }
        write_all(s, p, n);
        return;
    }
    if (s->len + n > SINK_BUF)
        sink_flush(s);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static void put_tag(Sink *s, uint32_t tag, int be)
{
    uint8_t b[4];

    mv__wr16(b, MV_TAG_GROUP(tag), be);
    mv__wr16(b + 2, MV_TAG_ELEMENT(tag), be);
    put(s, b, 4);
}

static void put_u32(Sink *s, uint32_t v, int be)
{
    uint8_t b[4];

    mv__wr32(b, v, be);
    put(s, b, 4);
}

/* Element header for the target encoding. A short-length VR whose value does not fit in
 * 16 bits is written as UN, as dcmtk does (PS3.5 6.2.2). */
static void put_header(Sink *s, uint32_t tag, MvVr vr, uint32_t len, Enc enc)
{
    uint8_t b[12];

    mv__wr16(b, MV_TAG_GROUP(tag), enc.be);
    mv__wr16(b + 2, MV_TAG_ELEMENT(tag), enc.be);
    if (!enc.explicit_vr) {
        mv__wr32(b + 4, len, enc.be);
        put(s, b, 8);
        return;
    }
    if (!mv_vr_is_known(vr))
        vr = MV_VR_UN;
    if (!mv_vr_has_long_length(vr) && len > 0xFFFF)
        vr = MV_VR_UN;
    b[4] = (uint8_t)(vr >> 8);
    b[5] = (uint8_t)vr;
    if (mv_vr_has_long_length(vr)) {
        b[6] = b[7] = 0;
        mv__wr32(b + 8, len, enc.be);
        put(s, b, 12);
    } else {
        mv__wr16(b + 6, (uint16_t)len, enc.be);
        put(s, b, 8);
    }
}

/* Unit in which a value's bytes swap between byte orders (1: never). */
static size_t swap_unit(const MvElement *el)
{
    if (el->vr == MV_VR_AT)
        return 2;
    if (el->vr == MV_VR_OB || el->vr == MV_VR_UN || mv_vr_is_text(el->vr))
        return 1;
    return mv_vr_unit_size(el->vr);
}

static void put_value(Sink *s, const MvElement *el, int from_be, int to_be)
{
    size_t unit = swap_unit(el);

    if (from_be == to_be || unit == 1) {
        put(s, el->value, el->value_len);
    } else {
        uint8_t chunk[4096];
        size_t done = 0, whole = el->value_len - el->value_len % unit;
        while (done < whole) {
            size_t n = whole - done > sizeof chunk ? sizeof chunk : whole - done;
            for (size_t i = 0; i < n; i += unit)
                for (size_t k = 0; k < unit; k++)
                    chunk[i + k] = el->value[done + i + unit - 1 - k];
            put(s, chunk, n);
            done += n;
        }
        put(s, el->value + whole, el->value_len - whole);
    }
    if (el->value_len & 1u) {
        uint8_t pad = mv__vr_pad(el->vr);
        put(s, &pad, 1);
    }
}

static void put_dataset(Sink *s, const MvDataset *ds, Enc enc);

static int same_encoding(const MvDataset *ds, Enc enc)
{
    return ds->explicit_vr == enc.explicit_vr && ds->big_endian == enc.be;
}

static void put_item(Sink *s, const MvDataset *item, Enc enc)
{
    if (!item->dirty && item->raw != NULL && same_encoding(item, enc)) {
        put(s, item->raw, item->raw_len);
        return;
    }
    put_tag(s, MV_TAG_ITEM, enc.be);
    put_u32(s, MV_UNDEFINED_LENGTH, enc.be);
    put_dataset(s, item, enc);
    put_tag(s, MV_TAG_ITEM_DELIM, enc.be);
    put_u32(s, 0, enc.be);
}

static void encode_element(Sink *s, const MvDataset *ds, const MvElement *el, Enc enc);

static void put_element(Sink *s, const MvDataset *ds, const MvElement *el, Enc enc)
{
    if (!(el->flags & MV_EL_DIRTY) && el->raw != NULL && same_encoding(ds, enc)) {
        if (el == s->track)
            for (size_t i = 0; i < el->n_items; i++)
                s->track_pos[i] = s->pos + (uint64_t)(el->items[i]->raw - el->raw);
        put(s, el->raw, el->raw_len);
        return;
    }
    encode_element(s, ds, el, enc);
}

static void encode_element(Sink *s, const MvDataset *ds, const MvElement *el, Enc enc)
{
    if (el->flags & MV_EL_SEQ) {
        /* PS3.5 6.2.2: a sequence kept as UN holds implicit VR little endian items. */
        int as_un = el->vr == MV_VR_UN && enc.explicit_vr;
        Enc item_enc = as_un ? (Enc){0, 0} : enc;
        put_header(s, el->tag, as_un ? MV_VR_UN : MV_VR_SQ, MV_UNDEFINED_LENGTH, enc);
        for (size_t i = 0; i < el->n_items; i++) {
            if (el == s->track)
                s->track_pos[i] = s->pos;
            put_item(s, el->items[i], item_enc);
        }
        put_tag(s, MV_TAG_SEQ_DELIM, item_enc.be);
        put_u32(s, 0, item_enc.be);
        return;
    }
    if (el->vr == MV_VR_SQ && el->value_len > 0 && enc.explicit_vr) {
        /* An SQ that holds bytes rather than items (a damaged input) goes out as UN. */
        put_header(s, el->tag, MV_VR_UN, (uint32_t)(el->value_len + (el->value_len & 1u)), enc);
        put_value(s, el, ds->big_endian, enc.be);
        return;
    }
    if (el->flags & MV_EL_ENCAPS) {
        put_header(s, el->tag, el->vr == MV_VR_OW ? MV_VR_OW : MV_VR_OB, MV_UNDEFINED_LENGTH, enc);
        for (size_t i = 0; i < el->n_frags; i++) {
            put_tag(s, MV_TAG_ITEM, enc.be);
            put_u32(s, el->frags[i].len, enc.be);
            put(s, el->frags[i].data, el->frags[i].len);
        }
        put_tag(s, MV_TAG_SEQ_DELIM, enc.be);
        put_u32(s, 0, enc.be);
        return;
    }
    if (!enc.explicit_vr && mv_dict_vr(el->tag) == MV_VR_SQ) {
        /* Implicit VR has no way to say "bytes, not items" for a tag the dictionary calls a
         * sequence: every reader would parse these bytes as items. */
        s->st = mv_error_set(s->err, MV_ERR_UNSUPPORTED, el->tag, el->offset,
                             "(%04X,%04X) holds bytes where the dictionary expects a sequence; implicit VR "
                             "cannot represent it", MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag));
        return;
    }
    if (el->value_len + (el->value_len & 1u) > 0xFFFFFFFEu) {
        s->st = mv_error_set(s->err, MV_ERR_LIMIT, el->tag, el->offset, "(%04X,%04X): value too long to encode",
                             MV_TAG_GROUP(el->tag), MV_TAG_ELEMENT(el->tag));
        return;
    }
    put_header(s, el->tag, el->vr, (uint32_t)(el->value_len + (el->value_len & 1u)), enc);
    put_value(s, el, ds->big_endian, enc.be);
}

static void put_dataset(Sink *s, const MvDataset *ds, Enc enc)
{
    /* PS3.5 7.2: a group length counts the bytes of its group as encoded. Once the dataset
     * was edited or changes encoding it may no longer be true, and as the element is
     * optional (retired outside group 0002) it is dropped rather than left wrong. */
    int drop_group_lengths = ds->dirty || !same_encoding(ds, enc);

    for (size_t i = 0; i < ds->n_elems && s->st == MV_OK; i++) {
        if (drop_group_lengths && MV_TAG_ELEMENT(ds->elems[i].tag) == 0 && MV_TAG_GROUP(ds->elems[i].tag) != 0x0002)
            continue;
        put_element(s, ds, &ds->elems[i], enc);
    }
}

/* 1 if every element of ds would be copied from the input as it is. */
static int verbatim(const MvDataset *ds)
{
    if (ds->dirty)
        return 0;
    for (size_t i = 0; i < ds->n_elems; i++)
        if (ds->elems[i].raw == NULL || (ds->elems[i].flags & MV_EL_DIRTY))
            return 0;
    return 1;
}

/* Encoded size of a meta element (explicit VR little endian, never a sequence). */
static uint64_t meta_size(const MvElement *el)
{
    size_t n = el->value_len + (el->value_len & 1u);
    int long_form = mv_vr_has_long_length(el->vr) || !mv_vr_is_known(el->vr) || n > 0xFFFF;
    return (long_form ? 12 : 8) + (uint64_t)n;
}

/* PS3.10 7.1: the Media Storage SOP Class and Instance UIDs are the dataset's SOP Class
 * and Instance UIDs; an edit of the dataset's is carried into the meta information. */
static MvStatus copy_string_from(MvFile *file, uint32_t meta_tag, uint32_t ds_tag, MvError *err)
{
    MvElement *src = mv_dataset_find(&file->ds, ds_tag), *dst = mv_dataset_find(&file->meta, meta_tag);
    size_t n;

    if (src == NULL || src->value == NULL || (src->flags & (MV_EL_SEQ | MV_EL_ENCAPS)))
        return MV_OK;
    n = src->value_len;
    while (n > 0 && (src->value[n - 1] == '\0' || src->value[n - 1] == ' '))
        n--;
    if (dst != NULL && dst->value != NULL) {
        size_t have = dst->value_len;
        while (have > 0 && (dst->value[have - 1] == '\0' || dst->value[have - 1] == ' '))
            have--;
        if (have == n && memcmp(dst->value, src->value, n) == 0)
            return MV_OK;
        if (!(src->flags & MV_EL_DIRTY))
            return MV_OK; /* an input that disagreed with itself is written as it was */
    }
    return mv_dataset_set_bytes(&file->meta, meta_tag, MV_VR_UI, src->value, n, err);
}

static MvStatus set_uid(MvDataset *meta, uint32_t tag, const char *uid, MvError *err)
{
    MvElement *el = mv_dataset_find(meta, tag);
    size_t n = strlen(uid);

    if (el != NULL && el->value != NULL) {
        size_t have = el->value_len;
        while (have > 0 && (el->value[have - 1] == '\0' || el->value[have - 1] == ' '))
            have--;
        if (have == n && memcmp(el->value, uid, n) == 0)
            return MV_OK;
    }
    return mv_dataset_set_bytes(meta, tag, MV_VR_UI, uid, n, err);
}

/* PS3.10 7.1: the File Meta Information this writer emits. */
static MvStatus prepare_meta(MvFile *file, const MvTransferSyntax *ts, MvError *err)
{
    MvDataset *meta = &file->meta;
    static const uint8_t version[2] = {0x00, 0x01};
    MvStatus st;

    if (mv_dataset_find(meta, MV_TAG(0x0002, 0x0001)) == NULL &&
        (st = mv_dataset_set_bytes(meta, MV_TAG(0x0002, 0x0001), MV_VR_OB, version, 2, err)) != MV_OK)
        return st;
    if ((st = copy_string_from(file, MV_TAG(0x0002, 0x0002), MV_TAG(0x0008, 0x0016), err)) != MV_OK ||
        (st = copy_string_from(file, MV_TAG(0x0002, 0x0003), MV_TAG(0x0008, 0x0018), err)) != MV_OK ||
        (st = set_uid(meta, MV_TAG_TRANSFER_SYNTAX, ts->uid, err)) != MV_OK)
        return st;
    if (mv_dataset_find(meta, MV_TAG(0x0002, 0x0012)) == NULL) {
        if ((st = set_uid(meta, MV_TAG(0x0002, 0x0012), MV_IMPLEMENTATION_CLASS_UID, err)) != MV_OK)
            return st;
        mv_dataset_remove(meta, MV_TAG(0x0002, 0x0013));
        if ((st = mv_dataset_set_string(meta, MV_TAG(0x0002, 0x0013), MV_VR_SH, MV_IMPLEMENTATION_VERSION_NAME,
                                        err)) != MV_OK)
            return st;
    }
    return MV_OK;
}

/* Emits the whole file through s: preamble, meta information, dataset. */
static void emit(Sink *s, MvFile *file, const MvTransferSyntax *ts, const MvWriteOptions *opts)
{
    static const uint8_t zero[128];
    uint64_t group_len = 0;
    z_stream zs;
    Enc enc;

    if (!(opts && (opts->flags & MV_WRITE_NO_PREAMBLE))) {
        int zero_it = !file->had_preamble || (opts && (opts->flags & MV_WRITE_ZERO_PREAMBLE));
        put(s, zero_it ? zero : file->preamble, 128);
    }
    put(s, "DICM", 4);
    for (size_t i = 0; i < file->meta.n_elems; i++)
        if (file->meta.elems[i].tag != MV_TAG(0x0002, 0x0000))
            group_len += meta_size(&file->meta.elems[i]);
    {
        uint8_t gl[12] = {0x02, 0x00, 0x00, 0x00, 'U', 'L', 0x04, 0x00};
        mv__wr32(gl + 8, (uint32_t)group_len, 0);
        put(s, gl, 12);
    }
    enc.explicit_vr = 1;
    enc.be = 0;
    /* Meta elements are always encoded, so that the group length above is exact. */
    for (size_t i = 0; i < file->meta.n_elems; i++)
        if (file->meta.elems[i].tag != MV_TAG(0x0002, 0x0000))
            encode_element(s, &file->meta, &file->meta.elems[i], enc);

    enc.explicit_vr = ts->explicit_vr;
    enc.be = ts->big_endian;
    if (!ts->deflated || s->dry) {
        put_dataset(s, &file->ds, enc);
        return;
    }
    sink_flush(s);
    if (ts == file->ts && file->inflated != NULL && verbatim(&file->ds)) {
        /* Unchanged deflated dataset: the input's compressed bytes are the output's. */
        put(s, file->data + file->deflated_at, file->size - file->deflated_at);
        return;
    }
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, opts && opts->deflate_level ? opts->deflate_level : Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                     -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        s->st = mv_error_set(s->err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "cannot start deflate");
        return;
    }
    s->zs = &zs;
    put_dataset(s, &file->ds, enc);
    if (s->st == MV_OK)
        deflate_out(s, NULL, 0, Z_FINISH);
    deflateEnd(&zs);
    s->zs = NULL;
}

#define TAG_DIR_RECORDS MV_TAG(0x0004, 0x1220)

/* Rewrites one directory offset (UL) from an input position to the output position of the
 * record that was there. Unknown targets are left as they are. */
static MvStatus fix_offset(MvDataset *ds, uint32_t tag, const MvElement *dir, const uint64_t *new_pos, int set_same,
                           MvError *err)
{
    MvElement *el = mv_dataset_find(ds, tag);
    uint64_t old;

    if (el == NULL || mv_element_uint(ds, el, 0, &old, NULL) != MV_OK)
        return MV_OK;
    if (set_same)
        return mv_dataset_set_uint(ds, tag, MV_VR_UL, old, err);
    if (old == 0)
        return MV_OK;
    for (size_t i = 0; i < dir->n_items; i++)
        if (dir->items[i]->offset == old)
            return new_pos[i] > UINT32_MAX ? mv_error_set(err, MV_ERR_LIMIT, tag, MV_NO_OFFSET, "directory too large")
                                           : mv_dataset_set_uint(ds, tag, MV_VR_UL, new_pos[i], err);
    return MV_OK;
}

/* PS3.3 F.3.2.2: a DICOMDIR's records point at each other by byte offset from the start of
 * the file. Re-encoding moves them, so the offsets are recomputed: mark them changed (so
 * that both passes encode alike), measure where each record lands, then set the values. */
static MvStatus fix_directory(MvFile *file, const MvTransferSyntax *ts, const MvWriteOptions *opts, MvError *err)
{
    MvElement *dir = mv_dataset_find(&file->ds, TAG_DIR_RECORDS);
    uint64_t *new_pos;
    Sink dry = {0};
    MvStatus st = MV_OK;

    if (dir == NULL || dir->n_items == 0 || ts->deflated || file->inflated != NULL)
        return MV_OK;
    new_pos = calloc(dir->n_items, sizeof *new_pos);
    if (new_pos == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    /* First see whether anything moves at all: an unchanged directory stays byte for byte. */
    dry.dry = 1;
    dry.err = err;
    dry.track = dir;
    dry.track_pos = new_pos;
    dry.in_fd = -1;
    emit(&dry, file, ts, opts);
    {
        int moved = dry.st != MV_OK;
        for (size_t i = 0; i < dir->n_items && !moved; i++)
            moved = new_pos[i] != dir->items[i]->offset;
        if (!moved) {
            free(new_pos);
            return MV_OK;
        }
    }
    memset(&dry, 0, sizeof dry);
    for (int pass = 0; pass < 2 && st == MV_OK; pass++) {
        if (pass == 1) {
            dry.dry = 1;
            dry.err = err;
            dry.track = mv_dataset_find(&file->ds, TAG_DIR_RECORDS);
            dry.track_pos = new_pos;
            dry.in_fd = -1;
            emit(&dry, file, ts, opts);
            if ((st = dry.st) != MV_OK)
                break;
            dir = mv_dataset_find(&file->ds, TAG_DIR_RECORDS);
        }
        if ((st = fix_offset(&file->ds, MV_TAG(0x0004, 0x1200), dir, new_pos, pass == 0, err)) != MV_OK ||
            (st = fix_offset(&file->ds, MV_TAG(0x0004, 0x1202), dir, new_pos, pass == 0, err)) != MV_OK)
            break;
        dir = mv_dataset_find(&file->ds, TAG_DIR_RECORDS);
        for (size_t i = 0; i < dir->n_items && st == MV_OK; i++) {
            st = fix_offset(dir->items[i], MV_TAG(0x0004, 0x1400), dir, new_pos, pass == 0, err);
            if (st == MV_OK)
                st = fix_offset(dir->items[i], MV_TAG(0x0004, 0x1420), dir, new_pos, pass == 0, err);
        }
    }
    free(new_pos);
    return st;
}

static MvStatus write_stream(MvFile *file, int fd, const MvWriteOptions *opts, MvError *err)
{
    const MvTransferSyntax *ts = file->ts;
    Sink s = {0};
    MvStatus st;

    if (opts != NULL && opts->transfer_syntax != NULL) {
        ts = mv_ts_lookup(opts->transfer_syntax);
        if (ts == NULL)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "unknown transfer syntax %s",
                                opts->transfer_syntax);
    }
    if (ts == NULL)
        ts = mv_ts_lookup(MV_UID_EXPLICIT_LE);
    if (ts != file->ts) {
        MvElement *px = mv_dataset_find(&file->ds, MV_TAG_PIXEL_DATA);
        int src_encaps = file->ts != NULL && file->ts->encapsulated && px != NULL && (px->flags & MV_EL_ENCAPS);
        if (src_encaps || ts->encapsulated)
            return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET,
                                "converting %s to %s needs the pixel codec (mv_image_encode; medveil convert "
                                "--decompress)",
                                file->ts ? file->ts->name : "?", ts->name);
    }
    if ((st = prepare_meta(file, ts, err)) != MV_OK)
        return st;
    if ((st = fix_directory(file, ts, opts, err)) != MV_OK)
        return st;

    s.fd = fd;
    s.in_fd = file->fd;
    s.in_base = file->data;
    s.in_size = file->size;
    s.err = err;
    s.buf = malloc(SINK_BUF);
    if (s.buf == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    emit(&s, file, ts, opts);
    sink_flush(&s);
    free(s.buf);
    return s.st;
}

MvStatus mv_file_write_fd(MvFile *file, int fd, const MvWriteOptions *opts, MvError *err)
{
    mv_error_clear(err);
    return write_stream(file, fd, opts, err);
}

MvStatus mv_file_write(MvFile *file, const char *path, const MvWriteOptions *opts, MvError *err)
{
    static atomic_uint counter;
    char tmp[PATH_MAX];
    int fd = -1;
    MvStatus st;

    mv_error_clear(err);
    for (int attempt = 0; attempt < 100; attempt++) {
        int n = snprintf(tmp, sizeof tmp, "%s.mvtmp-%ld-%u", path, (long)getpid(),
                         atomic_fetch_add(&counter, 1u));
        if (n < 0 || (size_t)n >= sizeof tmp)
            return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: path too long", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0)
        return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: cannot create: %s", path,
                            strerror(errno));
    st = write_stream(file, fd, opts, err);
    if (st == MV_OK && !(opts && (opts->flags & MV_WRITE_NO_SYNC)) && fsync(fd) != 0)
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "fsync failed: %s", strerror(errno));
    if (close(fd) != 0 && st == MV_OK)
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "close failed: %s", strerror(errno));
    if (st == MV_OK && rename(tmp, path) != 0)
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "rename failed: %s", strerror(errno));
    if (st != MV_OK) {
        unlink(tmp);
        mv_error_prefix(err, path);
    }
    return st;
}
