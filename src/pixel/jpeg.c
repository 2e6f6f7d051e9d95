/* Placeholder: the jpeg codec of src/pixel (being written). */
#include "pixel/pixel_int.h"

MvStatus mv__jpeg_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                        MvError *err)
{
    (void)in; (void)len; (void)spec; (void)out; (void)info;
    return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "decoder not yet available");
}
