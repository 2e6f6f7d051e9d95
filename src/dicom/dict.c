/* Lookups in the generated PS3.6 dictionary, VR properties (PS3.5 Table 6.2-1) and the
 * transfer syntax table (PS3.6 Table A-1). Exact tags are found by binary search;
 * repeating-group and masked entries by one binary search per distinct mask. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom_int.h"

int mv_vr_is_known(MvVr vr)
{
    switch (vr) {
    case MV_VR_AE: case MV_VR_AS: case MV_VR_AT: case MV_VR_CS: case MV_VR_DA: case MV_VR_DS:
    case MV_VR_DT: case MV_VR_FD: case MV_VR_FL: case MV_VR_IS: case MV_VR_LO: case MV_VR_LT:
    case MV_VR_OB: case MV_VR_OD: case MV_VR_OF: case MV_VR_OL: case MV_VR_OV: case MV_VR_OW:
    case MV_VR_PN: case MV_VR_SH: case MV_VR_SL: case MV_VR_SQ: case MV_VR_SS: case MV_VR_ST:
    case MV_VR_SV: case MV_VR_TM: case MV_VR_UC: case MV_VR_UI: case MV_VR_UL: case MV_VR_UN:
    case MV_VR_UR: case MV_VR_US: case MV_VR_UT: case MV_VR_UV:
        return 1;
    default:
        return 0;
    }
}

int mv_vr_is_text(MvVr vr)
{
    switch (vr) {
    case MV_VR_AE: case MV_VR_AS: case MV_VR_CS: case MV_VR_DA: case MV_VR_DS: case MV_VR_DT:
    case MV_VR_IS: case MV_VR_LO: case MV_VR_LT: case MV_VR_PN: case MV_VR_SH: case MV_VR_ST:
    case MV_VR_TM: case MV_VR_UC: case MV_VR_UI: case MV_VR_UR: case MV_VR_UT:
        return 1;
    default:
        return 0;
    }
}

int mv_vr_uses_charset(MvVr vr)
{
    switch (vr) {
    case MV_VR_SH: case MV_VR_LO: case MV_VR_ST: case MV_VR_LT: case MV_VR_UC: case MV_VR_UT:
    case MV_VR_PN:
        return 1;
    default:
        return 0;
    }
}

/* PS3.5 Table 7.1-1: VRs with a reserved 16-bit field and a 32-bit length. */
int mv_vr_has_long_length(MvVr vr)
{
    switch (vr) {
    case MV_VR_OB: case MV_VR_OD: case MV_VR_OF: case MV_VR_OL: case MV_VR_OV: case MV_VR_OW:
    case MV_VR_SQ: case MV_VR_SV: case MV_VR_UC: case MV_VR_UN: case MV_VR_UR: case MV_VR_UT:
    case MV_VR_UV:
        return 1;
    default:
        return 0;
    }
}

size_t mv_vr_unit_size(MvVr vr)
{
    switch (vr) {
    case MV_VR_US: case MV_VR_SS: case MV_VR_OW: return 2;
    case MV_VR_UL: case MV_VR_SL: case MV_VR_FL: case MV_VR_OF: case MV_VR_OL: case MV_VR_AT: return 4;
    case MV_VR_FD: case MV_VR_OD: case MV_VR_SV: case MV_VR_UV: case MV_VR_OV: return 8;
    default: return 1;
    }
}

const char *mv_vr_string(MvVr vr, char buf[3])
{
    unsigned char a = (unsigned char)(vr >> 8), b = (unsigned char)vr;

    buf[0] = isprint(a) ? (char)a : '?';
    buf[1] = isprint(b) ? (char)b : '?';
    buf[2] = '\0';
    if (vr == MV_VR_NONE) {
        buf[0] = 'n';
        buf[1] = 'a';
    }
    return buf;
}

size_t mv_dict_size(void)
{
    return mv__dict_n_total;
}

static const MvDictEntry *find_exact(uint32_t tag)
{
    size_t lo = 0, hi = mv__dict_n_exact;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mv__dict_entries[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < mv__dict_n_exact && mv__dict_entries[lo].tag == tag)
        return &mv__dict_entries[lo];
    return NULL;
}

/* Masked entries are sorted by (mask, tag): a run per mask, searched with tag & mask. */
static const MvDictEntry *find_masked(uint32_t tag)
{
    size_t start = mv__dict_n_exact;

    while (start < mv__dict_n_total) {
        uint32_t mask = mv__dict_entries[start].mask;
        size_t end = start, lo, hi;
        uint32_t key = tag & mask;

        while (end < mv__dict_n_total && mv__dict_entries[end].mask == mask)
            end++;
        lo = start;
        hi = end;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (mv__dict_entries[mid].tag < key)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < end && mv__dict_entries[lo].tag == key)
            return &mv__dict_entries[lo];
        start = end;
    }
    return NULL;
}

const MvDictEntry *mv_dict_lookup(uint32_t tag)
{
    const MvDictEntry *e;

    if (MV_TAG_IS_PRIVATE(tag))
        return NULL;
    e = find_exact(tag);
    if (e == NULL)
        e = find_masked(tag);
    return e;
}

const MvDictEntry *mv_dict_lookup_keyword(const char *keyword)
{
    size_t lo = 0, hi = mv__dict_n_keywords;

    if (keyword == NULL)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(mv__dict_entries[mv__dict_by_keyword[mid]].keyword, keyword);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < mv__dict_n_keywords && strcmp(mv__dict_entries[mv__dict_by_keyword[lo]].keyword, keyword) == 0)
        return &mv__dict_entries[mv__dict_by_keyword[lo]];
    return NULL;
}

const char *mv_dict_keyword(uint32_t tag)
{
    const MvDictEntry *e;

    if (MV_TAG_IS_PRIVATE_CREATOR(tag))
        return "PrivateCreator";
    e = mv_dict_lookup(tag);
    if (e != NULL)
        return e->keyword;
    if (MV_TAG_ELEMENT(tag) == 0)
        return MV_TAG_IS_PRIVATE(tag) ? "PrivateGroupLength" : "GroupLength";
    return "";
}

MvVr mv_dict_vr(uint32_t tag)
{
    const MvDictEntry *e;

    if (MV_TAG_ELEMENT(tag) == 0)
        return MV_VR_UL;
    if (MV_TAG_IS_PRIVATE_CREATOR(tag))
        return MV_VR_LO;
    e = mv_dict_lookup(tag);
    if (e == NULL || e->vr == MV_VR_NONE)
        return MV_VR_UN;
    /* PS3.5 A.1: pixel data and other "OB or OW" elements are OW in implicit VR. */
    if (e->vr == MV_VR_OB && e->vr_alt == MV_VR_OW)
        return MV_VR_OW;
    return e->vr;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

MvStatus mv_tag_parse(const char *text, uint32_t *tag, MvError *err)
{
    char digits[9];
    size_t n = 0;
    const char *p = text;
    const MvDictEntry *e;
    uint32_t value = 0;

    if (text == NULL || *text == '\0')
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "empty tag");
    e = mv_dict_lookup_keyword(text);
    if (e != NULL && e->mask == 0xFFFFFFFFu) {
        *tag = e->tag;
        return MV_OK;
    }
    if (*p == '(')
        p++;
    for (; *p != '\0' && *p != ')'; p++) {
        if (*p == ',' && n == 4 && p[-1] != ',')
            continue;
        if (hexval((unsigned char)*p) < 0 || n == 8)
            goto bad;
        digits[n++] = *p;
    }
    if (n != 8 || (*p == ')' && (text[0] != '(' || p[1] != '\0')) || (*p != ')' && text[0] == '('))
        goto bad;
    for (size_t i = 0; i < 8; i++)
        value = (value << 4) | (uint32_t)hexval((unsigned char)digits[i]);
    *tag = value;
    return MV_OK;
bad:
    return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                        "'%s' is neither a tag like (0010,0010) nor a dictionary keyword", text);
}

/* PS3.6 Table A-1, plus retired syntaxes that real archives still hold. */
static const MvTransferSyntax transfer_syntaxes[] = {
    {"1.2.840.10008.1.2", "Implicit VR Little Endian", 0, 0, 0, 0, 0},
    {"1.2.840.10008.1.2.1", "Explicit VR Little Endian", 1, 0, 0, 0, 0},
    {"1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", 1, 0, 1, 0, 0},
    {"1.2.840.10008.1.2.2", "Explicit VR Big Endian", 1, 1, 0, 0, 1},
    {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.52", "JPEG Extended (Process 3 & 5)", 1, 0, 0, 1, 1},
    {"1.2.840.10008.1.2.4.53", "JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8)", 1, 0, 0, 1, 1},
    {"1.2.840.10008.1.2.4.54", "JPEG Spectral Selection, Non-Hierarchical (Process 7 & 9)", 1, 0, 0, 1, 1},
    {"1.2.840.10008.1.2.4.55", "JPEG Full Progression, Non-Hierarchical (Process 10 & 12)", 1, 0, 0, 1, 1},
    {"1.2.840.10008.1.2.4.56", "JPEG Full Progression, Non-Hierarchical (Process 11 & 13)", 1, 0, 0, 1, 1},
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.58", "JPEG Lossless, Non-Hierarchical (Process 15)", 1, 0, 0, 1, 1},
    {"1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 (Lossless Only)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component (Lossless Only)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.94", "JPIP Referenced", 1, 0, 0, 0, 0},
    {"1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate", 1, 0, 1, 0, 0},
    {"1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.110", "JPEG XL Lossless", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.112", "JPEG XL", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 (Lossless Only)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options (Lossless Only)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.5", "RLE Lossless", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.6.1", "RFC 2557 MIME encapsulation", 1, 0, 0, 0, 1},
    {"1.2.840.10008.1.2.6.2", "XML Encoding", 1, 0, 0, 0, 1},
    {"1.2.840.10008.1.2.7.1", "SMPTE ST 2110-20 Uncompressed Progressive Active Video", 1, 0, 0, 0, 0},
    {"1.2.840.10008.1.2.7.2", "SMPTE ST 2110-20 Uncompressed Interlaced Active Video", 1, 0, 0, 0, 0},
    {"1.2.840.10008.1.2.7.3", "SMPTE ST 2110-30 PCM Digital Audio", 1, 0, 0, 0, 0},
    {"1.2.840.10008.1.20", "Papyrus 3 Implicit VR Little Endian", 0, 0, 0, 0, 1},
};

const MvTransferSyntax *mv_ts_lookup(const char *uid)
{
    size_t n;

    if (uid == NULL)
        return NULL;
    n = strlen(uid);
    while (n > 0 && (uid[n - 1] == ' ' || uid[n - 1] == '\0'))
        n--;
    for (size_t i = 0; i < sizeof transfer_syntaxes / sizeof transfer_syntaxes[0]; i++) {
        if (strlen(transfer_syntaxes[i].uid) == n && memcmp(transfer_syntaxes[i].uid, uid, n) == 0)
            return &transfer_syntaxes[i];
    }
    return NULL;
}
