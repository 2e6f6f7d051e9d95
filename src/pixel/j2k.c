/* Placeholder: the j2k codec of src/pixel (being written). */
#include "pixel/pixel_int.h"

MvStatus mv__j2k_decode(const uint8_t *in, size_t len, const MvFrameSpec *spec, uint8_t *out, MvFrameInfo *info,
                        MvError *err)
{
    (void)in; (void)len; (void)spec; (void)out; (void)info;
    return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "decoder not yet available");
}

MvStatus mv__j2k_encode(const MvImage *image, uint32_t frame, uint8_t **out, size_t *out_len, MvError *err)
{
    (void)image; (void)frame; *out = NULL; *out_len = 0;
    return mv_error_set(err, MV_ERR_UNSUPPORTED, MV_TAG_PIXEL_DATA, MV_NO_OFFSET, "encoder not yet available");
}
