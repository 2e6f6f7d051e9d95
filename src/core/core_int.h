/* Small helpers shared by every module of the library (private: not part of the public API):
 * whole writes, folder syncs and hex encoding of keys, digests and ids. */
#ifndef MV_CORE_INT_H
#define MV_CORE_INT_H

#include <stddef.h>
#include <stdint.h>

/* Writes all len bytes to fd, retrying on EINTR and short writes. 0, or -1 with errno set
 * (EIO when write returned 0). */
int mv__write_all(int fd, const void *buf, size_t len);

/* fsync of the folder dir itself, so that names created or renamed in it are durable.
 * 0, or -1 with errno set. */
int mv__sync_dir(const char *dir);

/* Lower-case hex of in[n] into out: 2*n characters and a NUL. */
void mv__hex(const uint8_t *in, size_t n, char *out);

/* Decodes exactly 2*n lower-case hex digits (in_len must be 2*n) into out[n]. Upper case is
 * refused: every hex string medveil writes is lower case, so anything else was changed.
 * 0, or -1 (out is then unspecified). */
int mv__unhex(const char *in, size_t in_len, uint8_t *out, size_t n);

#endif
