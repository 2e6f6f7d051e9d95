/* libFuzzer target for the part of re-identification that runs on decrypted bytes
 * (mv__originals_apply in src/deid/encrypt_attrs.c): whoever holds a recipient's certificate
 * can encrypt anything, so what decrypts is as untrusted as any input. Byte 0 picks the
 * Encrypted Content Transfer Syntax and the byte order of the dataset restored into; the rest
 * is the decrypted Encrypted Attributes Data Set. Invariants: a refused content leaves the
 * dataset exactly as it was (same encoding), and an accepted one leaves a dataset the writer
 * can write and the reader can read back. A failed invariant calls abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "deid/reversible_int.h"
#include "medveil/dicom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const syntaxes[] = {MV_UID_EXPLICIT_LE, MV_UID_IMPLICIT_LE, MV_UID_EXPLICIT_BE,
                                       MV_UID_DEFLATED_LE, "1.2.840.10008.1.2.4.50", "1.2.3"};

/* The dataset that originals are restored into: a few attributes, one sequence. */
static MvFile *target(void)
{
    MvFile *file = NULL;
    MvDataset *ds, *item = NULL;
    MvElement *seq = NULL;

    if (mv_file_new(&file) != MV_OK)
        abort();
    ds = mv_file_dataset(file);
    if (mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0016), MV_VR_UI, "1.2.840.10008.5.1.4.1.1.7", NULL) != MV_OK ||
        mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0018), MV_VR_UI, "2.25.1", NULL) != MV_OK ||
        mv_dataset_set_string(ds, MV_TAG(0x0010, 0x0010), MV_VR_PN, "MV00", NULL) != MV_OK ||
        mv_dataset_set_string(ds, MV_TAG(0x0012, 0x0062), MV_VR_CS, "YES", NULL) != MV_OK ||
        mv_dataset_set_string(ds, MV_TAG(0x0012, 0x0063), MV_VR_LO, "medveil fuzz", NULL) != MV_OK ||
        mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0010), MV_VR_US, 8, NULL) != MV_OK ||
        mv_dataset_set_sequence(ds, MV_TAG(0x0008, 0x1115), &seq, NULL) != MV_OK ||
        mv_element_insert_item(seq, MV_APPEND, &item, NULL) != MV_OK ||
        mv_dataset_set_string(item, MV_TAG(0x0020, 0x000E), MV_VR_UI, "2.25.2", NULL) != MV_OK)
        abort();
    return file;
}

/* The file encoded in syntax ts into a malloc'd buffer (NULL when the writer declines). */
static uint8_t *encode(MvFile *file, const char *ts, size_t *len)
{
    MvWriteOptions wopts;
    uint8_t *out = NULL;
    off_t end;
    int fd = memfd_create("fuzz-reidentify", MFD_CLOEXEC);

    *len = 0;
    if (fd < 0)
        abort();
    mv_write_options_init(&wopts);
    wopts.transfer_syntax = ts;
    wopts.flags = MV_WRITE_NO_SYNC;
    if (mv_file_write_fd(file, fd, &wopts, NULL) == MV_OK && (end = lseek(fd, 0, SEEK_END)) > 0) {
        out = malloc((size_t)end);
        if (out == NULL || pread(fd, out, (size_t)end, 0) != end)
            abort();
        *len = (size_t)end;
    }
    close(fd);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *ts, *target_ts;
    MvFile *file, *reread = NULL;
    MvReidResult res;
    uint8_t *before, *after;
    size_t before_len, after_len;
    MvStatus st;

    if (size < 1)
        return 0;
    ts = syntaxes[(data[0] & 0x0F) % (sizeof syntaxes / sizeof syntaxes[0])];
    target_ts = (data[0] & 0x10) ? MV_UID_EXPLICIT_BE : (data[0] & 0x20) ? MV_UID_IMPLICIT_LE : MV_UID_EXPLICIT_LE;
    file = target();
    before = encode(file, target_ts, &before_len);
    if (before == NULL)
        abort();
    memset(&res, 0, sizeof res);
    st = mv__originals_apply(file, ts, data + 1, size - 1, &res, NULL);
    if (st != MV_OK && st != MV_ERR_NOMEM) {
        /* Refused: nothing may have changed. */
        after = encode(file, target_ts, &after_len);
        if (after == NULL || after_len != before_len || memcmp(after, before, before_len) != 0)
            abort();
        free(after);
    } else if (st == MV_OK) {
        /* Accepted: the writer may decline an encoding (an element implicit VR cannot carry),
         * but Explicit VR Little Endian always takes it, and what it writes reads back. */
        after = encode(file, MV_UID_EXPLICIT_LE, &after_len);
        if (after == NULL)
            abort();
        if (mv_file_from_memory(after, after_len, "fuzz", NULL, &reread, NULL) != MV_OK)
            abort();
        mv_file_free(reread);
        free(after);
    }
    free(before);
    mv_file_free(file);
    return 0;
}
