/* libFuzzer target for the pixel rules parser (src/pixel/rules.c) and the identifier
 * matcher (src/pixel/match.c). The input up to the first NUL is a rules file; after it,
 * newline-separated words go through mv__match_words against a fixed set of identifiers.
 * The parser must either accept the text or fail with a message naming "fuzz.rules:LINE:",
 * leaving the set as it was; matching must not read or write out of bounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medveil/pixel_clean.h"
#include "pixel/clean_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t rules_len = nul != NULL ? (size_t)(nul - data) : size;
    MvPixelRules *rules = NULL;
    MvError err;

    if (mv_pixel_rules_new(&rules) != MV_OK)
        return 0;
    if (mv_pixel_rules_parse(rules, "fuzz.rules", (const char *)data, rules_len, &err) != MV_OK) {
        if (strncmp(err.message, "fuzz.rules:", 11) != 0 || mv_pixel_rules_count(rules) != 0)
            abort();
    }
    mv_pixel_rules_free(rules);
    if (nul != NULL) {
        MvFile *file = NULL;
        MvPxIds *ids = NULL;
        MvPxWord words[64];
        size_t n = 0;
        const char *p = (const char *)nul + 1, *end = (const char *)data + size;

        if (mv_file_new(&file) != MV_OK)
            return 0;
        mv_dataset_set_string(mv_file_dataset(file), MV_TAG(0x0010, 0x0010), MV_VR_PN, "DAVIDSON^DOUGLAS", NULL);
        mv_dataset_set_string(mv_file_dataset(file), MV_TAG(0x0010, 0x0030), MV_VR_DA, "19430722", NULL);
        if (mv__pxids_collect(mv_file_dataset(file), &ids) == MV_OK) {
            while (p < end && n < 64) {
                const char *q = memchr(p, '\n', (size_t)(end - p));
                size_t len = q != NULL ? (size_t)(q - p) : (size_t)(end - p);
                memset(&words[n], 0, sizeof words[n]);
                words[n].text = strndup(p, len);
                if (words[n].text == NULL)
                    break;
                words[n].line = (int)(n / 4);
                n++;
                p += len + 1;
            }
            mv__match_words(ids, words, n, (int)(size & 1));
            for (size_t i = 0; i < n; i++)
                free(words[i].text);
        }
        mv__pxids_free(ids);
        mv_file_free(file);
    }
    return 0;
}
