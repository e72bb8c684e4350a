/* error.h - the error record every internal function fills in.
 *
 * Internal functions return a ty_status (TY_OK == 0) and, on failure, write a one-line
 * message into a ty_err supplied by the caller. The public API copies the message into the
 * handle it concerns (or into the errmsg out-parameter of an open call). The library never
 * prints, exits or aborts. */
#ifndef TY_BASE_ERROR_H
#define TY_BASE_ERROR_H

#include "trainyard.h"

typedef struct ty_err {
    int code;
    char msg[320];
} ty_err;

/* Records code and a printf-style message in err (err may be NULL) and returns code. */
int ty_seterr(ty_err *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefixes an existing message: "what: <old message>". Returns err->code. */
int ty_preferr(ty_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
