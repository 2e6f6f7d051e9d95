/* libFuzzer target for mv_charset_to_utf8 (src/dicom/charset.c). Byte 0 picks the
 * Specific Character Set from a list of defined terms and ISO 2022 combinations (or, one
 * time in four, takes it from the input up to a newline), byte 1 picks the VR, the rest is the
 * value. The output must be well-formed UTF-8 without NUL, and NUL-terminated at out_len. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medveil/dicom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const charsets[] = {
    "",
    "ISO_IR 6",
    "ISO_IR 100",
    "ISO_IR 101",
    "ISO_IR 109",
    "ISO_IR 110",
    "ISO_IR 144",
    "ISO_IR 127",
    "ISO_IR 126",
    "ISO_IR 138",
    "ISO_IR 148",
    "ISO_IR 203",
    "ISO_IR 13",
    "ISO_IR 166",
    "ISO_IR 192",
    "GB18030",
    "GBK",
    "ISO 2022 IR 6",
    "ISO 2022 IR 100",
    "ISO 2022 IR 13",
    "ISO 2022 IR 166",
    "\\ISO 2022 IR 87",
    "\\ISO 2022 IR 149",
    "\\ISO 2022 IR 58",
    "ISO 2022 IR 6\\ISO 2022 IR 87",
    "ISO 2022 IR 6\\ISO 2022 IR 159",
    "ISO 2022 IR 6\\ISO 2022 IR 87\\ISO 2022 IR 159",
    "ISO 2022 IR 13\\ISO 2022 IR 87",
    "ISO 2022 IR 13\\ISO 2022 IR 87\\ISO 2022 IR 159",
    "ISO 2022 IR 6\\ISO 2022 IR 149",
    "ISO 2022 IR 6\\ISO 2022 IR 58",
    "ISO 2022 IR 100\\ISO 2022 IR 144",
    "ISO 2022 IR 100\\ISO 2022 IR 126\\ISO 2022 IR 138",
    "ISO 2022 IR 144\\ISO 2022 IR 127",
    "ISO 2022 IR 148\\ISO 2022 IR 203",
    "ISO 2022 IR 166\\ISO 2022 IR 87",
    "ISO_IR 100\\ISO 2022 IR 87",
    "ISO_IR 192\\GB18030",
    "iso-ir 100",
    "ISO_IR  100 ",
    "UNKNOWN TERM",
    "UNKNOWN\\ISO 2022 IR 87",
};

#define N_CHARSETS (sizeof charsets / sizeof charsets[0])
#define CHARSET_FROM_INPUT_MAX 80

static const MvVr vrs[] = {
    MV_VR_PN, MV_VR_LO, MV_VR_SH, MV_VR_ST, MV_VR_LT, MV_VR_UT, MV_VR_UC,
    MV_VR_UR, MV_VR_CS, MV_VR_AE, MV_VR_DA, MV_VR_UI, MV_VR_OB, MV_VR_NONE,
};

#define N_VRS (sizeof vrs / sizeof vrs[0])

/* Length of the well-formed UTF-8 character at s (Unicode 15 Table 3-7), 0 if ill-formed. */
static size_t utf8_char(const uint8_t *s, size_t n)
{
    uint8_t lead = s[0], lo = 0x80u, hi = 0xBFu;
    size_t need;

    if (lead >= 0x01u && lead < 0x80u)
        return 1;
    if (lead >= 0xC2u && lead <= 0xDFu) {
        need = 2;
    } else if (lead >= 0xE0u && lead <= 0xEFu) {
        need = 3;
        if (lead == 0xE0u)
            lo = 0xA0u;
        else if (lead == 0xEDu)
            hi = 0x9Fu;
    } else if (lead >= 0xF0u && lead <= 0xF4u) {
        need = 4;
        if (lead == 0xF0u)
            lo = 0x90u;
        else if (lead == 0xF4u)
            hi = 0x8Fu;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if (s[i] < lo || s[i] > hi)
            return 0;
        lo = 0x80u;
        hi = 0xBFu;
    }
    return need;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char charset_buf[CHARSET_FROM_INPUT_MAX + 1];
    const char *charset;
    MvVr vr;
    char *out = NULL;
    size_t out_len = 0, pos = 0;
    int lossy = 0;
    MvError err;
    MvStatus st;

    if (size < 2)
        return 0;
    vr = vrs[data[1] % N_VRS];
    if (data[0] % 4 != 3) {
        charset = charsets[(data[0] / 4 * 3 + data[0] % 4) % N_CHARSETS];
        data += 2;
        size -= 2;
    } else {
        /* The charset value itself comes from the input, up to a newline. */
        size_t n = 0;

        data += 2;
        size -= 2;
        while (n < size && n < CHARSET_FROM_INPUT_MAX && data[n] != '\n' && data[n] != 0)
            n++;
        memcpy(charset_buf, data, n);
        charset_buf[n] = '\0';
        charset = charset_buf;
        if (n < size)
            n++;
        data += n;
        size -= n;
    }

    st = mv_charset_to_utf8(charset, vr, size ? data : NULL, size, &out, &out_len, &lossy, &err);
    if (st != MV_OK) {
        /* Only caps and memory may stop a decode; a bad byte becomes U+FFFD. */
        if (st != MV_ERR_NOMEM && st != MV_ERR_LIMIT) {
            fprintf(stderr, "fuzz_charset: decoding failed: %s\n", err.message);
            abort();
        }
        return 0;
    }
    if (out == NULL || out[out_len] != '\0' || strlen(out) != out_len) {
        fprintf(stderr, "fuzz_charset: output is not one NUL-terminated string of out_len bytes\n");
        abort();
    }
    while (pos < out_len) {
        size_t n = utf8_char((const uint8_t *)out + pos, out_len - pos);

        if (n == 0) {
            fprintf(stderr, "fuzz_charset: ill-formed UTF-8 at output byte %zu of %zu\n", pos, out_len);
            abort();
        }
        pos += n;
    }
    free(out);
    return 0;
}
