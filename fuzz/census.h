/* The invariant the fuzzer and the regression runner share for a read-write-read round
 * trip: which top-level elements must survive a rewrite. */
#ifndef MV_FUZZ_CENSUS_H
#define MV_FUZZ_CENSUS_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/dicom.h"

/* Top-level elements, told apart: group lengths (gggg,0000) outside group 0002, which the
 * writer drops when the encoding changes or the dataset was edited (write.c put_dataset;
 * PS3.5 7.2: they would no longer be true), and all the others, which must survive. */
typedef struct Census {
    size_t kept;
    size_t group_lengths;
} Census;

static inline Census census(const MvDataset *ds)
{
    Census c = {0, 0};

    for (size_t i = 0; i < mv_dataset_count(ds); i++) {
        uint32_t tag = mv_element_tag(mv_dataset_at(ds, i));
        if (MV_TAG_ELEMENT(tag) == 0 && MV_TAG_GROUP(tag) != 0x0002)
            c.group_lengths++;
        else
            c.kept++;
    }
    return c;
}

/* 1 if out holds every element of in, and no group length that in did not have. */
static inline int same_census(Census in, Census out)
{
    return out.kept == in.kept && out.group_lengths <= in.group_lengths;
}

#endif
