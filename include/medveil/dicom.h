/* The DICOM Part 10 codec: dictionary, reader, editing API and writer.
 * A file is mapped (or held) once; elements point into it and are never copied to be
 * read. Edited elements own their new bytes; everything else is written back verbatim. */
#ifndef MEDVEIL_DICOM_H
#define MEDVEIL_DICOM_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

#include "medveil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Tags and value representations ---------------------------------------------- */

#define MV_TAG(group, element) ((uint32_t)(((uint32_t)(group) << 16) | (uint32_t)(element)))
#define MV_TAG_GROUP(tag) ((uint16_t)((tag) >> 16))
#define MV_TAG_ELEMENT(tag) ((uint16_t)((tag)&0xFFFFu))
#define MV_TAG_IS_PRIVATE(tag) ((MV_TAG_GROUP(tag) & 1u) && MV_TAG_GROUP(tag) > 8u)
/* (gggg,0010)-(gggg,00FF) of an odd group: a Private Creator element (PS3.5 7.8.1). */
#define MV_TAG_IS_PRIVATE_CREATOR(tag) \
    (MV_TAG_IS_PRIVATE(tag) && MV_TAG_ELEMENT(tag) >= 0x10u && MV_TAG_ELEMENT(tag) <= 0xFFu)
#define MV_UNDEFINED_LENGTH 0xFFFFFFFFu

#define MV_TAG_ITEM MV_TAG(0xFFFE, 0xE000)
#define MV_TAG_ITEM_DELIM MV_TAG(0xFFFE, 0xE00D)
#define MV_TAG_SEQ_DELIM MV_TAG(0xFFFE, 0xE0DD)
#define MV_TAG_PIXEL_DATA MV_TAG(0x7FE0, 0x0010)
#define MV_TAG_SPECIFIC_CHARSET MV_TAG(0x0008, 0x0005)
#define MV_TAG_TRANSFER_SYNTAX MV_TAG(0x0002, 0x0010)

/* A VR is its two ASCII letters packed big-endian: MV_VR('P','N') == 0x504E. */
typedef uint16_t MvVr;
#define MV_VR(a, b) ((MvVr)(((unsigned)(a) << 8) | (unsigned)(b)))

enum {
    MV_VR_NONE = 0,
    MV_VR_AE = MV_VR('A', 'E'), MV_VR_AS = MV_VR('A', 'S'), MV_VR_AT = MV_VR('A', 'T'),
    MV_VR_CS = MV_VR('C', 'S'), MV_VR_DA = MV_VR('D', 'A'), MV_VR_DS = MV_VR('D', 'S'),
    MV_VR_DT = MV_VR('D', 'T'), MV_VR_FD = MV_VR('F', 'D'), MV_VR_FL = MV_VR('F', 'L'),
    MV_VR_IS = MV_VR('I', 'S'), MV_VR_LO = MV_VR('L', 'O'), MV_VR_LT = MV_VR('L', 'T'),
    MV_VR_OB = MV_VR('O', 'B'), MV_VR_OD = MV_VR('O', 'D'), MV_VR_OF = MV_VR('O', 'F'),
    MV_VR_OL = MV_VR('O', 'L'), MV_VR_OV = MV_VR('O', 'V'), MV_VR_OW = MV_VR('O', 'W'),
    MV_VR_PN = MV_VR('P', 'N'), MV_VR_SH = MV_VR('S', 'H'), MV_VR_SL = MV_VR('S', 'L'),
    MV_VR_SQ = MV_VR('S', 'Q'), MV_VR_SS = MV_VR('S', 'S'), MV_VR_ST = MV_VR('S', 'T'),
    MV_VR_SV = MV_VR('S', 'V'), MV_VR_TM = MV_VR('T', 'M'), MV_VR_UC = MV_VR('U', 'C'),
    MV_VR_UI = MV_VR('U', 'I'), MV_VR_UL = MV_VR('U', 'L'), MV_VR_UN = MV_VR('U', 'N'),
    MV_VR_UR = MV_VR('U', 'R'), MV_VR_US = MV_VR('U', 'S'), MV_VR_UT = MV_VR('U', 'T'),
    MV_VR_UV = MV_VR('U', 'V')
};

/* Properties of a VR (PS3.5 Table 6.2-1). */
int mv_vr_is_known(MvVr vr);             /* one of the 34 VRs of the current standard */
int mv_vr_is_text(MvVr vr);              /* a string VR: AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT */
int mv_vr_uses_charset(MvVr vr);         /* SH LO ST LT UC UT PN: decoded with Specific Character Set */
int mv_vr_has_long_length(MvVr vr);      /* explicit VR with 2 reserved bytes and a 32-bit length */
size_t mv_vr_unit_size(MvVr vr);         /* bytes per value for binary VRs (AT=4, US=2 ...), 1 otherwise */
const char *mv_vr_string(MvVr vr, char buf[3]); /* "PN"; "??" style letters are returned as-is */

/* ---- Data dictionary (PS3.6), generated from the standard's tables ----------------- */

typedef struct MvDictEntry {
    uint32_t tag;      /* with the x digits of a repeating entry set to 0 */
    uint32_t mask;     /* bits that must match: 0xFFFFFFFF for exact entries */
    MvVr vr;           /* first VR of the entry ("US or SS" gives US); MV_VR_NONE if none */
    MvVr vr_alt;       /* second VR of an ambiguous entry, else MV_VR_NONE */
    uint8_t retired;
    const char *keyword; /* "" for the few entries without one */
    const char *name;
    const char *vm;
} MvDictEntry;

/* Exact entries are found by binary search, then repeating-group and mask entries
 * ((50xx,eeee), (60xx,eeee), (0020,31xx), (1000,xxxy) ...). NULL when unknown; private
 * tags other than creators and group lengths are never in the public dictionary. */
const MvDictEntry *mv_dict_lookup(uint32_t tag);
/* Lookup by keyword (case-sensitive, O(log n)); NULL when unknown. */
const MvDictEntry *mv_dict_lookup_keyword(const char *keyword);
/* Keyword of tag: the dictionary's; else "GroupLength" for a public (gggg,0000),
 * "PrivateGroupLength" for a private one, "PrivateCreator" for creators, "" when unknown. */
const char *mv_dict_keyword(uint32_t tag);
/* The VR used when the file does not say (implicit VR): dictionary VR, LO for private
 * creators, UL for group lengths, UN otherwise. */
MvVr mv_dict_vr(uint32_t tag);
size_t mv_dict_size(void);
/* Parses "(0010,0010)", "0010,0010", "00100010" or a keyword into a tag. */
MvStatus mv_tag_parse(const char *text, uint32_t *tag, MvError *err);

/* ---- Transfer syntaxes ---------------------------------------------------------- */

typedef struct MvTransferSyntax {
    const char *uid;
    const char *name;
    uint8_t explicit_vr;
    uint8_t big_endian;
    uint8_t deflated;
    uint8_t encapsulated; /* pixel data in fragments */
    uint8_t retired;
} MvTransferSyntax;

#define MV_UID_IMPLICIT_LE "1.2.840.10008.1.2"
#define MV_UID_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define MV_UID_DEFLATED_LE "1.2.840.10008.1.2.1.99"
#define MV_UID_EXPLICIT_BE "1.2.840.10008.1.2.2"

/* Known transfer syntax by UID (trailing NUL/space ignored); NULL when unknown. */
const MvTransferSyntax *mv_ts_lookup(const char *uid);

/* ---- Files, datasets and elements ------------------------------------------------- */

typedef struct MvFile MvFile;
typedef struct MvDataset MvDataset;
typedef struct MvElement MvElement;

typedef struct MvReadOptions {
    uint64_t max_element_length; /* cap on one element's declared length; 0 = no cap beyond the input */
    uint64_t max_inflated;       /* cap on a deflated dataset's inflated size; 0 = 2 GiB */
    uint32_t max_depth;          /* cap on sequence nesting; 0 = 64 */
    unsigned flags;              /* MV_READ_* */
} MvReadOptions;

#define MV_READ_NO_MMAP 1u       /* read the file into memory instead of mapping it */

void mv_read_options_init(MvReadOptions *opts);

/* Opens and parses a DICOM file: Part 10 with or without preamble, a bare dataset
 * (implicit VR LE assumed, as dcmtk does, unless the bytes show explicit VR).
 * On success *out owns the mapping; free it with mv_file_free. On failure *out is
 * NULL and err names the file, the tag and the offset where reading stopped. */
MvStatus mv_file_open(const char *path, const MvReadOptions *opts, MvFile **out, MvError *err);

/* As mv_file_open on bytes the caller owns; data must stay valid and unchanged until
 * mv_file_free. name is used in messages (may be NULL). */
MvStatus mv_file_from_memory(const void *data, size_t len, const char *name,
                             const MvReadOptions *opts, MvFile **out, MvError *err);

/* A new, empty file (explicit VR little endian), for building datasets from scratch. */
MvStatus mv_file_new(MvFile **out);

void mv_file_free(MvFile *file);

MvDataset *mv_file_meta(const MvFile *file);    /* group 0002, possibly empty; never NULL */
MvDataset *mv_file_dataset(const MvFile *file); /* never NULL */
const char *mv_file_name(const MvFile *file);   /* as given to open, or "<memory>" */
/* The encoding the dataset was read in (or will be written in by default). */
const MvTransferSyntax *mv_file_transfer_syntax(const MvFile *file);
/* Changes the transfer syntax the dataset is written in by default, after its pixel data
 * was re-encoded: an encapsulated syntax needs encapsulated Pixel Data (or none), a native
 * one needs native Pixel Data, else MV_ERR_ARG and nothing changes. MV_ERR_ARG for an
 * unknown UID. mv_file_transfer_syntax reports the new syntax afterwards. */
MvStatus mv_file_set_transfer_syntax(MvFile *file, const char *uid, MvError *err);
int mv_file_had_preamble(const MvFile *file);
/* Zeroes the 128-byte preamble that will be written (it can carry data of other formats). */
void mv_file_zero_preamble(MvFile *file);
int mv_file_had_meta(const MvFile *file);
uint64_t mv_file_input_size(const MvFile *file);
/* Non-fatal oddities met while reading (odd lengths, wrong VRs, guessed encodings):
 * count and text of each, in order. Texts name tags and offsets only. */
size_t mv_file_warning_count(const MvFile *file);
const char *mv_file_warning(const MvFile *file, size_t index);

size_t mv_dataset_count(const MvDataset *ds);
MvElement *mv_dataset_at(const MvDataset *ds, size_t index);
MvElement *mv_dataset_find(const MvDataset *ds, uint32_t tag); /* NULL when absent */
MvDataset *mv_dataset_parent(const MvDataset *ds);             /* NULL at the top */
int mv_dataset_big_endian(const MvDataset *ds);
/* The Specific Character Set in force for ds (its own or an ancestor's), as the raw
 * value with padding trimmed; "" for the default repertoire. */
const char *mv_dataset_charset(const MvDataset *ds);
/* The creator string of the private block that holds tag, trimmed; NULL if the tag is
 * not a private data element or its creator element is absent. */
const char *mv_dataset_private_creator(const MvDataset *ds, uint32_t tag, size_t *len);

uint32_t mv_element_tag(const MvElement *el);
MvVr mv_element_vr(const MvElement *el);
/* Length as encoded: the value length, or MV_UNDEFINED_LENGTH for a sequence or
 * encapsulated pixel data read with undefined length. */
uint32_t mv_element_length(const MvElement *el);
/* Offset of the element's tag in the input, or MV_NO_OFFSET for an element made in memory. */
uint64_t mv_element_offset(const MvElement *el);
/* The value bytes in the dataset's byte order (into the mapping or owned by the element);
 * NULL with *len 0 for sequences, encapsulated data and empty values. Valid until the
 * element is changed or the file freed. */
const uint8_t *mv_element_value(const MvElement *el, size_t *len);
int mv_element_is_sequence(const MvElement *el); /* SQ, or UN of undefined length holding items */
size_t mv_element_item_count(const MvElement *el);
MvDataset *mv_element_item(const MvElement *el, size_t index);
int mv_element_is_encapsulated(const MvElement *el);
/* Fragments of encapsulated data; fragment 0 is the Basic Offset Table (maybe empty). */
size_t mv_element_fragment_count(const MvElement *el);
const uint8_t *mv_element_fragment(const MvElement *el, size_t index, size_t *len);

/* Number of values: backslash-separated for text (except LT ST UT UR), value size for binary. */
size_t mv_element_vm(const MvElement *el);
/* The whole value as NUL-terminated UTF-8, decoded under ds's character set, trailing
 * padding removed (for PN/text, leading spaces kept). *out is malloc'd; the caller frees it.
 * For binary VRs: MV_ERR_ARG. */
MvStatus mv_element_string(const MvDataset *ds, const MvElement *el, char **out, MvError *err);
/* Value index (0-based) as an unsigned/signed integer (US UL UV SS SL SV AT IS) or double
 * (FL FD DS IS and the integer VRs). MV_ERR_NOTFOUND if index >= VM, MV_ERR_PARSE if the
 * text is not a number. */
MvStatus mv_element_uint(const MvDataset *ds, const MvElement *el, size_t index, uint64_t *out, MvError *err);
MvStatus mv_element_int(const MvDataset *ds, const MvElement *el, size_t index, int64_t *out, MvError *err);
MvStatus mv_element_double(const MvDataset *ds, const MvElement *el, size_t index, double *out, MvError *err);
/* Convenience: find tag in ds and return its string (*out NULL with MV_ERR_NOTFOUND if absent). */
MvStatus mv_dataset_get_string(const MvDataset *ds, uint32_t tag, char **out, MvError *err);

/* ---- Editing ------------------------------------------------------------------------ */

/* Sets tag in ds to a copy of len bytes (dataset byte order), replacing any element of
 * that tag (a sequence too) or inserting it in tag order. vr MV_VR_NONE takes the
 * dictionary VR. Odd lengths are padded when written. On failure ds is unchanged. */
MvStatus mv_dataset_set_bytes(MvDataset *ds, uint32_t tag, MvVr vr, const void *value, size_t len,
                              MvError *err);
/* Sets a text value given as UTF-8. Non-ASCII text needs a dataset whose character set
 * is ISO_IR 192 (UTF-8), else MV_ERR_CHARSET. */
MvStatus mv_dataset_set_string(MvDataset *ds, uint32_t tag, MvVr vr, const char *value, MvError *err);
/* Sets one binary integer value (US UL SS SL UV SV) or a decimal text (IS). */
MvStatus mv_dataset_set_uint(MvDataset *ds, uint32_t tag, MvVr vr, uint64_t value, MvError *err);
/* Sets tag (normally Pixel Data) to encapsulated data (PS3.5 A.4), replacing any element of
 * that tag: n_frags fragments, data[0]/lens[0] the Basic Offset Table (lens[0] may be 0),
 * then one or more fragments. The bytes are copied into one block the element owns; an
 * odd fragment is padded with a zero byte. vr is OB (MV_VR_NONE gives OB). The file must
 * then be written in an encapsulated transfer syntax (mv_file_set_transfer_syntax).
 * MV_ERR_LIMIT if a fragment is 4 GiB or more. On failure ds is unchanged. */
MvStatus mv_dataset_set_fragments(MvDataset *ds, uint32_t tag, MvVr vr, const uint8_t *const *data,
                                  const size_t *lens, size_t n_frags, MvError *err);
/* Removes the element; MV_ERR_NOTFOUND when absent. */
MvStatus mv_dataset_remove(MvDataset *ds, uint32_t tag);
/* Makes tag an empty sequence (replacing any element of that tag) and returns it. */
MvStatus mv_dataset_set_sequence(MvDataset *ds, uint32_t tag, MvElement **out, MvError *err);
/* Appends a new empty item to a sequence (index MV_APPEND) or inserts it before index. */
#define MV_APPEND ((size_t)-1)
MvStatus mv_element_insert_item(MvElement *seq, size_t index, MvDataset **item, MvError *err);
MvStatus mv_element_remove_item(MvElement *seq, size_t index);

/* A tag path addresses an element at any depth: steps separated by '.', each a tag
 * ("0008,1115" or "(0008,1115)" or "00081115") or a keyword, and every step but the last
 * a sequence followed by an item index: "ReferencedSeriesSequence[0].SeriesInstanceUID".
 * Resolves the dataset that holds the last step and that step's tag. With create, missing
 * sequences and the item just past the last one are created. */
MvStatus mv_path_resolve(MvDataset *root, const char *path, int create, MvDataset **holder,
                         uint32_t *tag, MvError *err);
MvStatus mv_path_set_string(MvDataset *root, const char *path, const char *value, MvError *err);
MvStatus mv_path_remove(MvDataset *root, const char *path, MvError *err);
MvElement *mv_path_find(MvDataset *root, const char *path, MvDataset **holder);

/* ---- Writing ---------------------------------------------------------------------- */

typedef struct MvWriteOptions {
    const char *transfer_syntax; /* UID to write; NULL keeps the file's own */
    int deflate_level;           /* for the deflated syntax; 0 = zlib default */
    unsigned flags;              /* MV_WRITE_* */
} MvWriteOptions;

#define MV_WRITE_NO_SYNC 1u      /* skip fsync (tests, pipelines that sync later) */
#define MV_WRITE_NO_PREAMBLE 2u  /* write "DICM" at offset 0 (not Part 10 conformant; rarely wanted) */
#define MV_WRITE_ZERO_PREAMBLE 4u /* write 128 zero bytes even if the input's preamble held data */

void mv_write_options_init(MvWriteOptions *opts);

/* Writes file as Part 10 to path: to a temporary name in the same folder, synced, then
 * renamed over path, so path is either untouched or complete. File Meta Information is
 * rebuilt (group length recomputed, Transfer Syntax UID set, missing required elements
 * added from the dataset). Unchanged elements are copied verbatim when the encoding is
 * unchanged; pixel data is written straight from the input. Converting between syntaxes is
 * possible among the uncompressed and deflated ones; an encapsulated file keeps its own. */
MvStatus mv_file_write(MvFile *file, const char *path, const MvWriteOptions *opts, MvError *err);
/* As mv_file_write, to an open descriptor (no temporary name, no rename). */
MvStatus mv_file_write_fd(MvFile *file, int fd, const MvWriteOptions *opts, MvError *err);

/* ---- Presenting ------------------------------------------------------------------- */

typedef struct MvDumpOptions {
    size_t max_value_chars; /* longer values are cut with "..."; 0 = 64 */
    unsigned flags;         /* MV_DUMP_* */
} MvDumpOptions;
#define MV_DUMP_NO_META 1u
#define MV_DUMP_OFFSETS 2u   /* prefix each line with the element's offset */
#define MV_DUMP_FULL 4u      /* never cut values */

/* Prints every element, nested items indented, in a dcmdump-like layout. */
MvStatus mv_dump_write(const MvFile *file, FILE *out, const MvDumpOptions *opts, MvError *err);

typedef struct MvJsonOptions {
    size_t bulk_threshold; /* binary values longer than this are omitted; 0 = 1024 */
    unsigned flags;        /* MV_JSON_* */
} MvJsonOptions;
#define MV_JSON_BULK 1u    /* include every binary value as InlineBinary */
#define MV_JSON_PRETTY 2u  /* indented output */
#define MV_JSON_META 4u    /* include group 0002 (not part of the PS3.18 model) */

/* Writes the dataset in the DICOM JSON model (PS3.18 Annex F) as one JSON object. */
MvStatus mv_json_write(const MvFile *file, FILE *out, const MvJsonOptions *opts, MvError *err);

/* ---- Character sets ------------------------------------------------------------- */

/* Decodes len bytes of a value of VR vr, encoded under the Specific Character Set value
 * charset (the raw (0008,0005) value, backslash-separated, NULL or "" for the default
 * repertoire), into malloc'd NUL-terminated UTF-8. ISO 2022 escape sequences are honoured
 * and reset at value, component-group and line delimiters as PS3.5 6.1.2.5.3 says.
 * Bytes that cannot be decoded become U+FFFD and *lossy (may be NULL) is set to 1. */
MvStatus mv_charset_to_utf8(const char *charset, MvVr vr, const uint8_t *in, size_t len,
                            char **out, size_t *out_len, int *lossy, MvError *err);
/* 1 if every defined term in charset is known to medveil. */
int mv_charset_is_supported(const char *charset);

/* ---- Library ---------------------------------------------------------------------- */

const char *mv_version(void);
#define MV_IMPLEMENTATION_CLASS_UID "2.25.196508341452399637015848702785328219641"
#define MV_IMPLEMENTATION_VERSION_NAME "MEDVEIL_0_1"

#ifdef __cplusplus
}
#endif
#endif
