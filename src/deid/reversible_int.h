/* Private entry points of reversible de-identification (encrypt_attrs.c), for the fuzz target
 * and unit tests: the part of re-identification that runs on decrypted bytes. */
#ifndef MV_REVERSIBLE_INT_H
#define MV_REVERSIBLE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/reversible.h"

/* Parses plain (the decrypted Encrypted Content, encoded in transfer syntax ts_uid) as a
 * dataset holding exactly one Modified Attributes Sequence item and copies its attributes into
 * the top-level dataset of file, then removes the markers as mv_originals_restore says. Does
 * not touch the Encrypted Attributes Sequence. MV_ERR_INTEGRITY when plain is not such a
 * dataset, MV_ERR_UNSUPPORTED for an unknown or compressed ts_uid. */
MvStatus mv__originals_apply(MvFile *file, const char *ts_uid, const uint8_t *plain, size_t len,
                             MvReidResult *res, MvError *err);

#endif
