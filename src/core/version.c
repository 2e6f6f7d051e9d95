/* The library's version string, set by the build from the project version. */
#include "medveil/dicom.h"

#ifndef MV_VERSION_STRING
#define MV_VERSION_STRING "0.1.0"
#endif

const char *mv_version(void)
{
    return MV_VERSION_STRING;
}
