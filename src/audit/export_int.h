/* Private helpers shared by the audit export, syslog and alert files of src/audit: a growable
 * byte buffer with a cap (curl's dynbuf in spirit). Not part of the public API. */
#ifndef MV_AUDIT_EXPORT_INT_H
#define MV_AUDIT_EXPORT_INT_H

#include <stddef.h>

#include "medveil/audit_export.h"

typedef struct MvBuf {
    char *data; /* NUL-terminated while len < cap */
    size_t len;
    size_t cap;
    size_t max; /* the buffer never grows beyond this many bytes */
    int failed; /* set once an append did not fit or allocation failed; later appends do nothing */
} MvBuf;

/* Initialises b empty with a growth cap of max bytes. */
void mv__buf_init(MvBuf *b, size_t max);
/* Appends n bytes of s; on failure sets b->failed. */
void mv__buf_add(MvBuf *b, const char *s, size_t n);
/* Appends the NUL-terminated s. */
void mv__buf_str(MvBuf *b, const char *s);
/* Appends printf-formatted text. */
void mv__buf_printf(MvBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s escaped for XML character data and attribute values (both quotes escaped); bytes
 * that are not valid UTF-8, and characters XML 1.0 does not allow, become U+FFFD. */
void mv__buf_xml(MvBuf *b, const char *s);
/* Frees the data; b may be reused after mv__buf_init. */
void mv__buf_free(MvBuf *b);

#endif
