/* Status codes and error detail shared by every medveil module.
 * A function that can fail returns MvStatus (MV_OK is always 0) and may fill an
 * MvError with a message that names files, tags and offsets, never element values. */
#ifndef MEDVEIL_STATUS_H
#define MEDVEIL_STATUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum MvStatus {
    MV_OK = 0,
    MV_ERR_NOMEM,       /* allocation failed */
    MV_ERR_IO,          /* a system call failed; errno-derived text in the message */
    MV_ERR_PARSE,       /* the input is malformed */
    MV_ERR_LIMIT,       /* the input exceeds a configured cap (length, depth, size) */
    MV_ERR_UNSUPPORTED, /* well-formed but not handled (e.g. an unknown transfer syntax) */
    MV_ERR_ARG,         /* invalid argument from the caller or the user */
    MV_ERR_NOTFOUND,    /* the element, file or object does not exist */
    MV_ERR_CHARSET,     /* text could not be converted between character sets */
    MV_ERR_INTEGRITY,   /* authentication or integrity check failed */
    MV_ERR_CRYPTO,      /* a cryptographic operation failed */
    MV_ERR_DENIED       /* not permitted */
} MvStatus;

/* Optional detail about a failure. Every field is valid after a function that
 * took a non-NULL MvError returned something other than MV_OK. */
typedef struct MvError {
    MvStatus code;
    uint32_t tag;       /* the tag being read or written, 0xFFFFFFFF if none */
    uint64_t offset;    /* byte offset in the input, UINT64_MAX if none */
    char message[512];  /* one line, no trailing newline, no patient data */
} MvError;

#define MV_NO_TAG 0xFFFFFFFFu
#define MV_NO_OFFSET UINT64_MAX

/* A short constant English name for a status ("parse error", ...). */
const char *mv_status_name(MvStatus status);

/* Clears an error record (code MV_OK, empty message). NULL is accepted. */
void mv_error_clear(MvError *err);

/* Fills err (may be NULL) and returns code. The message is printf-formatted. */
MvStatus mv_error_set(MvError *err, MvStatus code, uint32_t tag, uint64_t offset,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Prefixes err->message with "PREFIX: " (typically the file name). NULL err is accepted. */
void mv_error_prefix(MvError *err, const char *prefix);

#ifdef __cplusplus
}
#endif
#endif
