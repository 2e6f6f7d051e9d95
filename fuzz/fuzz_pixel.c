/* libFuzzer target for the pixel codec (src/pixel): every decoder, fed either a whole
 * DICOM file or one frame with fuzz-chosen geometry, and medveil's own encoders checked by
 * round trip. The paths and invariants are in fuzz/pixel_check.h, which
 * tests/regress_runner.c shares; reproducers go to tests/regress/pixel/. */
#include <stddef.h>
#include <stdint.h>

#include "pixel_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pixel_check_input(data, size);
    return 0;
}
