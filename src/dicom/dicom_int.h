/* Private data model of the DICOM codec, shared by the files of src/dicom only.
 * Elements point into the input (the mapping, or the inflated copy of a deflated
 * dataset); an edit gives an element its own bytes and marks it and its ancestors dirty,
 * which is what tells the writer to encode instead of copying the input's bytes. */
#ifndef MV_DICOM_INT_H
#define MV_DICOM_INT_H

#include <stdint.h>
#include <stddef.h>

#include "medveil/dicom.h"

/* Element flags. */
#define MV_EL_UNDEF_LEN 0x01u  /* read with undefined length (SQ, UN-as-SQ, encapsulated) */
#define MV_EL_OWNED 0x02u      /* value was allocated by an edit; free it */
#define MV_EL_DIRTY 0x04u      /* changed (or a descendant changed) since reading */
#define MV_EL_ENCAPS 0x08u     /* encapsulated pixel data: see frags */
#define MV_EL_SEQ 0x10u        /* holds items (SQ, or UN of undefined length) */
#define MV_EL_IMPLICIT_ITEMS 0x20u /* UN sequence: items are implicit VR LE (PS3.5 6.2.2) */

typedef struct MvFragment {
    const uint8_t *data;
    uint32_t len;
} MvFragment;

struct MvElement {
    uint32_t tag;
    MvVr vr;
    uint8_t flags;
    uint32_t length;       /* as read: value length or MV_UNDEFINED_LENGTH */
    const uint8_t *value;  /* value bytes (not for SQ/ENCAPS) */
    size_t value_len;
    const uint8_t *raw;    /* the element as read (header..end incl. delimiters); NULL if made in memory */
    size_t raw_len;
    uint64_t offset;       /* offset of the tag in the input; MV_NO_OFFSET if made in memory */
    MvDataset *owner;      /* the dataset that holds this element */
    MvDataset **items;     /* SQ items */
    size_t n_items, cap_items;
    MvFragment *frags;     /* encapsulated fragments, [0] = Basic Offset Table */
    size_t n_frags;
};

struct MvDataset {
    MvElement *elems;
    size_t n_elems, cap_elems;
    MvDataset *parent;
    MvFile *file;
    const uint8_t *raw;    /* the item as read, with its header and delimiter; NULL for top level */
    size_t raw_len;
    uint64_t offset;
    uint8_t undef_len;     /* item was read with undefined length */
    uint8_t dirty;
    uint8_t big_endian;    /* byte order of the values held */
    uint8_t explicit_vr;   /* encoding the raw bytes are in */
    char *charset;         /* own (0008,0005), trimmed, cached on first use; NULL if not looked up */
};

#define MV_MAX_WARNINGS 64

struct MvFile {
    char *name;
    const uint8_t *data;   /* whole input */
    size_t size;
    int fd;                /* the input, kept open for copy_file_range; -1 if none */
    void *map;             /* mmap base, or NULL */
    size_t map_len;
    uint8_t *heap;         /* input read into memory (MV_READ_NO_MMAP), owned */
    uint8_t *inflated;     /* inflated dataset of a deflated file, owned */
    size_t inflated_len;
    size_t deflated_at;    /* offset of the deflated stream in data */
    uint8_t preamble[128];
    uint8_t had_preamble, had_meta;
    const MvTransferSyntax *ts;   /* encoding of the dataset */
    MvTransferSyntax unknown_ts;  /* used when the meta names an unknown syntax */
    char *ts_uid_unknown;
    MvDataset meta;
    MvDataset ds;
    char *warnings[MV_MAX_WARNINGS];
    size_t n_warnings;
    size_t n_warnings_dropped;
};

/* Dictionary tables (dict_table.c, generated). */
extern const MvDictEntry mv__dict_entries[];
extern const size_t mv__dict_n_exact;
extern const size_t mv__dict_n_total;
extern const uint16_t mv__dict_by_keyword[];
extern const size_t mv__dict_n_keywords;

/* Byte order helpers. */
static inline uint16_t mv__rd16(const uint8_t *p, int be)
{
    return be ? (uint16_t)((p[0] << 8) | p[1]) : (uint16_t)((p[1] << 8) | p[0]);
}
static inline uint32_t mv__rd32(const uint8_t *p, int be)
{
    return be ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]
              : ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}
static inline void mv__wr16(uint8_t *p, uint16_t v, int be)
{
    if (be) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
    else { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
}
static inline void mv__wr32(uint8_t *p, uint32_t v, int be)
{
    if (be) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
    else { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
}

/* Records a non-fatal oddity on the file (formatted; tags and offsets only). */
void mv__file_warn(MvFile *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Dataset internals (dataset.c). */
void mv__dataset_init(MvDataset *ds, MvFile *file, MvDataset *parent);
void mv__dataset_clear(MvDataset *ds);     /* frees elements and items, keeps ds itself */
void mv__dataset_free(MvDataset *ds);      /* clear + free(ds) */
MvDataset *mv__dataset_new(MvFile *file, MvDataset *parent);
/* Appends el (moved in) at the end; the caller keeps tag order or calls mv__dataset_sort. */
MvStatus mv__dataset_append(MvDataset *ds, const MvElement *el);
void mv__dataset_sort(MvDataset *ds);
void mv__element_clear(MvElement *el);
void mv__dataset_mark_dirty(MvDataset *ds);
/* Binary search; index of the first element with tag >= tag. */
size_t mv__dataset_lower_bound(const MvDataset *ds, uint32_t tag);

/* Value padding byte for a VR: space for text, NUL for UI and binary. */
static inline uint8_t mv__vr_pad(MvVr vr)
{
    return (vr == MV_VR_UI || !mv_vr_is_text(vr)) ? 0 : ' ';
}

#endif
