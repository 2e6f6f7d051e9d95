/* Typed look-ups for the codec's unit tests: find an element or fail the test naming its
 * tag, and read a value of it, failing with the library's message. Include after cmocka.h. */
#ifndef MV_TEST_DICOM_VALUES_H
#define MV_TEST_DICOM_VALUES_H

#include <stdint.h>

#include "medveil/dicom.h"

static inline MvElement *must_find(const MvDataset *ds, uint32_t tag)
{
    MvElement *el = mv_dataset_find(ds, tag);

    if (el == NULL)
        fail_msg("(%04X,%04X) is absent", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF));
    return el;
}

static inline uint64_t uint_of(const MvDataset *ds, uint32_t tag, size_t index)
{
    uint64_t v = 0;
    MvError err;

    if (mv_element_uint(ds, must_find(ds, tag), index, &v, &err) != MV_OK)
        fail_msg("(%04X,%04X)[%zu]: %s", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF), index, err.message);
    return v;
}

static inline int64_t int_of(const MvDataset *ds, uint32_t tag, size_t index)
{
    int64_t v = 0;
    MvError err;

    if (mv_element_int(ds, must_find(ds, tag), index, &v, &err) != MV_OK)
        fail_msg("(%04X,%04X)[%zu]: %s", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF), index, err.message);
    return v;
}

static inline double double_of(const MvDataset *ds, uint32_t tag, size_t index)
{
    double v = 0;
    MvError err;

    if (mv_element_double(ds, must_find(ds, tag), index, &v, &err) != MV_OK)
        fail_msg("(%04X,%04X)[%zu]: %s", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF), index, err.message);
    return v;
}

/* Doubles compared exactly (all values used are exact in binary), printing both. */
static inline void assert_double(double got, double expected)
{
    if (got != expected)
        fail_msg("%.17g != %.17g", got, expected);
}

#endif
