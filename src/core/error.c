/* Error records and status names shared by every module. The message is formatted once
 * where the failure is seen; callers may prefix it with the file name on the way out. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "medveil/status.h"

const char *mv_status_name(MvStatus status)
{
    switch (status) {
    case MV_OK: return "ok";
    case MV_ERR_NOMEM: return "out of memory";
    case MV_ERR_IO: return "i/o error";
    case MV_ERR_PARSE: return "malformed input";
    case MV_ERR_LIMIT: return "limit exceeded";
    case MV_ERR_UNSUPPORTED: return "unsupported";
    case MV_ERR_ARG: return "invalid argument";
    case MV_ERR_NOTFOUND: return "not found";
    case MV_ERR_CHARSET: return "character set error";
    case MV_ERR_INTEGRITY: return "integrity failure";
    case MV_ERR_CRYPTO: return "cryptographic failure";
    case MV_ERR_DENIED: return "denied";
    }
    return "unknown status";
}

void mv_error_clear(MvError *err)
{
    if (err == NULL)
        return;
    err->code = MV_OK;
    err->tag = MV_NO_TAG;
    err->offset = MV_NO_OFFSET;
    err->message[0] = '\0';
}

MvStatus mv_error_set(MvError *err, MvStatus code, uint32_t tag, uint64_t offset, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    err->tag = tag;
    err->offset = offset;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

void mv_error_prefix(MvError *err, const char *prefix)
{
    size_t cap = sizeof err->message, plen, mlen;

    if (err == NULL || prefix == NULL)
        return;
    plen = strlen(prefix);
    if (plen + 2 >= cap)
        plen = cap - 3;
    mlen = strnlen(err->message, cap - 1);
    if (plen + 2 + mlen >= cap)
        mlen = cap - 1 - plen - 2;
    memmove(err->message + plen + 2, err->message, mlen);
    memcpy(err->message, prefix, plen);
    err->message[plen] = ':';
    err->message[plen + 1] = ' ';
    err->message[plen + 2 + mlen] = '\0';
}
