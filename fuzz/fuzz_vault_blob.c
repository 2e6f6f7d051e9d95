/* libFuzzer target for the vault blob reader (src/vault/aead.c), which reads files an attacker
 * with the home folder (or a backup) can write. Byte 0 chooses: even, the rest is a whole blob
 * given to the sequential and the random-access readers under a fixed key (they must fail
 * cleanly); odd, the rest is a plaintext that is sealed with a small chunk size, read back (it
 * must be identical, whole and by range), then one byte chosen by the input is changed and
 * both readers must refuse it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vault/vault_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t id[MV__ID_BYTES] = {0xab, 0xcd};

typedef struct Sink {
    uint8_t *buf;
    size_t len, cap;
} Sink;

static int to_sink(const uint8_t *chunk, size_t len, void *arg)
{
    Sink *s = arg;
    if (s->len + len > s->cap)
        return 1;
    memcpy(s->buf + s->len, chunk, len);
    s->len += len;
    return 0;
}

static int memfd_with(const uint8_t *bytes, size_t len)
{
    int fd = memfd_create("blob", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (len > 0 && write(fd, bytes, len) != (ssize_t)len)
        abort();
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static MvStatus read_all(int fd, Sink *s)
{
    lseek(fd, 0, SEEK_SET);
    s->len = 0;
    return mv__blob_decrypt_fd(fd, key, id, NULL, to_sink, s, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t range[300];
    size_t n_read = 0;
    Sink sink;
    int fd;

    if (size < 1 || size > (1u << 16))
        return 0;
    sink.cap = size + 64;
    sink.buf = malloc(sink.cap);
    if (sink.buf == NULL)
        return 0;
    if ((data[0] & 1) == 0) {
        fd = memfd_with(data + 1, size - 1);
        (void)read_all(fd, &sink);
        (void)mv__blob_read_range(fd, key, id, 10, range, sizeof range, &n_read, NULL);
        close(fd);
    } else {
        const uint8_t *plain = data + 1;
        size_t plain_len = size - 1, at;
        MvBlobHeader h;
        MvSealer s;
        uint8_t *blob;
        off_t blob_len;

        fd = memfd_create("sealed", MFD_CLOEXEC);
        if (fd < 0 || mv__blob_header_make(&h, id, 64, plain_len, NULL) != MV_OK ||
            mv__sealer_start(&s, key, &h, fd, NULL) != MV_OK || mv__sealer_write(&s, plain, plain_len, NULL) != MV_OK ||
            mv__sealer_finish(&s, NULL) != MV_OK)
            abort();
        mv__sealer_free(&s);
        if (read_all(fd, &sink) != MV_OK || sink.len != plain_len || memcmp(sink.buf, plain, plain_len) != 0)
            abort();
        if (plain_len > 0) {
            size_t off = plain[0] % plain_len;
            size_t want = plain_len - off < sizeof range ? plain_len - off : sizeof range;
            if (mv__blob_read_range(fd, key, id, off, range, sizeof range, &n_read, NULL) != MV_OK ||
                n_read != want || memcmp(range, plain + off, want) != 0)
                abort();
        }
        blob_len = lseek(fd, 0, SEEK_END);
        blob = malloc((size_t)blob_len);
        if (blob == NULL || pread(fd, blob, (size_t)blob_len, 0) != blob_len)
            abort();
        close(fd);
        at = (plain_len > 1 ? plain[1] * 251u + plain[plain_len - 1] : 7u) % (size_t)blob_len;
        blob[at] ^= 0x5a;
        fd = memfd_with(blob, (size_t)blob_len);
        if (read_all(fd, &sink) == MV_OK)
            abort(); /* a changed byte must never authenticate */
        if (mv__blob_read_range(fd, key, id, 0, range, sizeof range, &n_read, NULL) == MV_OK &&
            at < MV__BLOB_HEADER)
            abort(); /* a changed header must fail every read */
        close(fd);
        free(blob);
    }
    free(sink.buf);
    return 0;
}
