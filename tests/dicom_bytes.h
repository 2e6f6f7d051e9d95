/* Hand-made DICOM encodings for the unit tests (PS3.5 Section 7): a growing byte buffer and
 * helpers that append explicit and implicit VR elements, items and delimiters, so that each
 * test spells out the bytes the standard prescribes instead of trusting the writer. */
#ifndef MV_TEST_DICOM_BYTES_H
#define MV_TEST_DICOM_BYTES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A growing byte buffer that the helpers below append encoded elements to. */
typedef struct Buf {
    uint8_t *data;
    size_t len, cap;
} Buf;

static inline void buf_free(Buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static inline void buf_put(Buf *b, const void *bytes, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        uint8_t *data;
        while (cap < b->len + n)
            cap *= 2;
        data = realloc(b->data, cap);
        assert_non_null(data);
        b->data = data;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static inline void buf_append(Buf *b, const Buf *src)
{
    buf_put(b, src->data, src->len);
}

/* PS3.5 7.3: multi-byte numbers little or big endian. */
static inline void buf_u16(Buf *b, uint16_t v, int be)
{
    uint8_t p[2];

    p[0] = be ? (uint8_t)(v >> 8) : (uint8_t)v;
    p[1] = be ? (uint8_t)v : (uint8_t)(v >> 8);
    buf_put(b, p, 2);
}

static inline void buf_u32(Buf *b, uint32_t v, int be)
{
    buf_u16(b, be ? (uint16_t)(v >> 16) : (uint16_t)v, be);
    buf_u16(b, be ? (uint16_t)v : (uint16_t)(v >> 16), be);
}

/* PS3.5 7.1: a tag is the group number then the element number, each a 16-bit number. */
static inline void buf_tag(Buf *b, uint32_t tag, int be)
{
    buf_u16(b, (uint16_t)(tag >> 16), be);
    buf_u16(b, (uint16_t)tag, be);
}

/* PS3.5 Table 7.1-1: VRs whose explicit header has 2 reserved bytes and a 32-bit length. */
static inline int vr_long(const char *vr)
{
    static const char *const long_vrs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"};

    for (size_t i = 0; i < sizeof long_vrs / sizeof long_vrs[0]; i++)
        if (strcmp(vr, long_vrs[i]) == 0)
            return 1;
    return 0;
}

/* PS3.5 7.1.2 explicit VR header: tag, VR, then a 16-bit length, or 0000 and a 32-bit length. */
static inline void ex_hdr(Buf *b, uint32_t tag, const char *vr, uint32_t len, int be)
{
    buf_tag(b, tag, be);
    buf_put(b, vr, 2);
    if (vr_long(vr)) {
        buf_u16(b, 0, be);
        buf_u32(b, len, be);
    } else {
        buf_u16(b, (uint16_t)len, be);
    }
}

static inline void ex_el(Buf *b, uint32_t tag, const char *vr, const void *value, size_t len, int be)
{
    ex_hdr(b, tag, vr, (uint32_t)len, be);
    buf_put(b, value, len);
}

/* A value given as a string literal, all its bytes but the terminating NUL (so "1.2\0" is
 * 4 bytes: the padding of UIs is spelled out where it is used). */
#define EX_STR(b, tag, vr, lit, be) ex_el((b), (tag), (vr), (lit), sizeof(lit) - 1, (be))
#define IM_STR(b, tag, lit) im_el((b), (tag), (lit), sizeof(lit) - 1)

/* PS3.5 7.1.3 implicit VR header: tag and a 32-bit length (little endian only, A.1). */
static inline void im_hdr(Buf *b, uint32_t tag, uint32_t len)
{
    buf_tag(b, tag, 0);
    buf_u32(b, len, 0);
}

static inline void im_el(Buf *b, uint32_t tag, const void *value, size_t len)
{
    im_hdr(b, tag, (uint32_t)len);
    buf_put(b, value, len);
}

/* PS3.5 7.5: Item (FFFE,E000) with its length, Item Delimitation Item (FFFE,E00D) and
 * Sequence Delimitation Item (FFFE,E0DD), both with length 0. */
static inline void item(Buf *b, uint32_t len, int be)
{
    buf_tag(b, 0xFFFEE000u, be);
    buf_u32(b, len, be);
}

static inline void item_end(Buf *b, int be)
{
    buf_tag(b, 0xFFFEE00Du, be);
    buf_u32(b, 0, be);
}

static inline void seq_end(Buf *b, int be)
{
    buf_tag(b, 0xFFFEE0DDu, be);
    buf_u32(b, 0, be);
}

#define UNDEF 0xFFFFFFFFu

#endif
