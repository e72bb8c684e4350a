#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ty_seterr(ty_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int ty_preferr(ty_err *err, const char *fmt, ...) {
    if (!err) return TY_ERR_INTERNAL;
    char prefix[160];
    char old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = 0;
    char joined[sizeof prefix + sizeof old + 2];
    snprintf(joined, sizeof joined, "%s: %s", prefix, old);
    size_t n = strlen(joined);
    if (n >= sizeof err->msg) n = sizeof err->msg - 1; /* cut to fit */
    memcpy(err->msg, joined, n);
    err->msg[n] = 0;
    return err->code;
}

const char *ty_status_string(int code) {
    switch (code) {
    case TY_OK: return "ok";
    case TY_ERR_INVALID_ARG: return "invalid argument";
    case TY_ERR_IO: return "input/output error";
    case TY_ERR_FORMAT: return "malformed model file";
    case TY_ERR_UNSUPPORTED: return "unsupported";
    case TY_ERR_NOMEM: return "out of memory";
    case TY_ERR_CONTEXT_FULL: return "context full";
    case TY_ERR_DEVICE: return "device error";
    case TY_ERR_UTF8: return "invalid UTF-8";
    case TY_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case TY_ERR_CANCELLED: return "cancelled";
    case TY_ERR_INTERNAL: return "internal error";
    default: return "unknown error";
    }
}
