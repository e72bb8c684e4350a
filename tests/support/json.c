/* json.c - see json.h. A recursive-descent parser with a depth limit; every container keeps its
 * elements in one contiguous array. */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *base, *p, *end;
    char *err;
    size_t errcap;
    int depth;
    bool failed;
} parser;

static void fail(parser *ps, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void fail(parser *ps, const char *fmt, ...) {
    if (ps->failed) return;
    ps->failed = true;
    if (!ps->err || ps->errcap == 0) return;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errcap, "json: %s at byte %zu", msg, (size_t)(ps->p - ps->base));
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            ps->p++;
        else
            break;
    }
}

static bool match_word(parser *ps, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0) {
        ps->p += n;
        return true;
    }
    return false;
}

static void free_contents(json *v) {
    if (!v) return;
    if (v->type == JSON_STRING) {
        free(v->str);
    } else if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->len; i++) free_contents(&v->items[i]);
        free(v->items);
        if (v->keys) {
            for (size_t i = 0; i < v->len; i++) free(v->keys[i]);
            free(v->keys);
        }
        free(v->key_lens);
    }
    memset(v, 0, sizeof *v);
}

/* ---- strings -------------------------------------------------------------------------------- */

typedef struct sbuf {
    char *data;
    size_t len, cap;
} sbuf;

static bool sbuf_reserve(sbuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 16;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) return false;
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d) return false;
    b->data = d;
    b->cap = cap;
    return true;
}

static void put_utf8(char *out, size_t *n, uint32_t cp) {
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xC0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xE0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*n)++] = (char)(0xF0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u" (ps->p at the 'u'); -1 on error. */
static long read_u4(parser *ps) {
    if (ps->end - ps->p < 5) return -1;
    long v = 0;
    for (int i = 1; i <= 4; i++) {
        int h = hexval(ps->p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    ps->p += 5;
    return v;
}

/* Parses a string starting at '"'; returns a malloc'd NUL-terminated buffer. */
static char *parse_string(parser *ps, size_t *out_len) {
    sbuf b = {0};
    ps->p++; /* opening quote */
    for (;;) {
        /* copy a run of plain bytes at once */
        const char *s = ps->p;
        while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && (unsigned char)*ps->p >= 0x20)
            ps->p++;
        size_t run = (size_t)(ps->p - s);
        if (run) {
            if (!sbuf_reserve(&b, run)) goto nomem;
            memcpy(b.data + b.len, s, run);
            b.len += run;
        }
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            goto bad;
        }
        char c = *ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if ((unsigned char)c < 0x20) {
            fail(ps, "control character 0x%02x in string", (unsigned)(unsigned char)c);
            goto bad;
        }
        /* backslash */
        if (ps->end - ps->p < 2) {
            fail(ps, "unterminated escape");
            goto bad;
        }
        if (!sbuf_reserve(&b, 8)) goto nomem;
        char e = ps->p[1];
        char simple = 0;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': break;
        default: fail(ps, "invalid escape '\\%c'", (e >= 0x20 && e < 0x7F) ? e : '?'); goto bad;
        }
        if (simple) {
            b.data[b.len++] = simple;
            ps->p += 2;
            continue;
        }
        ps->p++; /* now at 'u' */
        long cp = read_u4(ps);
        if (cp < 0) {
            fail(ps, "invalid \\u escape");
            goto bad;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* high surrogate: a low one must follow to make a pair */
            if (ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                parser save = *ps;
                ps->p++;
                long lo = read_u4(ps);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    *ps = save; /* not a pair: leave the next escape for the next round */
                    cp = 0xFFFD;
                }
            } else {
                cp = 0xFFFD;
            }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = 0xFFFD; /* lone low surrogate */
        }
        put_utf8(b.data, &b.len, (uint32_t)cp);
    }
    if (!sbuf_reserve(&b, 0)) goto nomem;
    b.data[b.len] = 0;
    *out_len = b.len;
    return b.data;
nomem:
    fail(ps, "out of memory");
bad:
    free(b.data);
    return NULL;
}

/* ---- numbers -------------------------------------------------------------------------------- */

static bool parse_number(parser *ps, double *out) {
    const char *s = ps->p, *q = ps->p;
    if (q < ps->end && *q == '-') q++;
    /* extensions: NaN, Infinity, -Infinity */
    ps->p = q;
    if (match_word(ps, "Infinity")) {
        *out = (*s == '-') ? -INFINITY : INFINITY;
        return true;
    }
    if (q == s && match_word(ps, "NaN")) {
        *out = NAN;
        return true;
    }
    ps->p = s;
    if (q >= ps->end || !(*q >= '0' && *q <= '9')) {
        fail(ps, "invalid number");
        return false;
    }
    if (*q == '0') {
        q++;
    } else {
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) {
            ps->p = q;
            fail(ps, "digit expected after '.'");
            return false;
        }
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) {
            ps->p = q;
            fail(ps, "digit expected in exponent");
            return false;
        }
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    size_t n = (size_t)(q - s);
    char small[64];
    char *tmp = n < sizeof small ? small : malloc(n + 1);
    if (!tmp) {
        fail(ps, "out of memory");
        return false;
    }
    memcpy(tmp, s, n);
    tmp[n] = 0;
    *out = strtod(tmp, NULL);
    if (tmp != small) free(tmp);
    ps->p = q;
    return true;
}

/* ---- values --------------------------------------------------------------------------------- */

static bool parse_value(parser *ps, json *v);

static bool grow(parser *ps, json **items, char ***keys, size_t **key_lens, size_t *cap, size_t n,
                 bool object) {
    if (n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : 4;
    json *ni = realloc(*items, nc * sizeof **items);
    if (!ni) goto nomem;
    *items = ni;
    if (object) {
        char **nk = realloc(*keys, nc * sizeof **keys);
        if (!nk) goto nomem;
        *keys = nk;
        size_t *nl = realloc(*key_lens, nc * sizeof **key_lens);
        if (!nl) goto nomem;
        *key_lens = nl;
    }
    *cap = nc;
    return true;
nomem:
    fail(ps, "out of memory");
    return false;
}

static bool parse_container(parser *ps, json *v, bool object) {
    char close = object ? '}' : ']';
    if (++ps->depth > JSON_MAX_DEPTH) {
        fail(ps, "nesting deeper than %d", JSON_MAX_DEPTH);
        return false;
    }
    ps->p++; /* '{' or '[' */
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    size_t cap = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return true;
    }
    for (;;) {
        if (!grow(ps, &v->items, &v->keys, &v->key_lens, &cap, v->len, object)) return false;
        if (object) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') {
                fail(ps, "object key expected");
                return false;
            }
            size_t kl = 0;
            char *k = parse_string(ps, &kl);
            if (!k) return false;
            v->keys[v->len] = k;
            v->key_lens[v->len] = kl;
            memset(&v->items[v->len], 0, sizeof(json));
            v->len++; /* counted now so that json_free releases the key on failure */
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                fail(ps, "':' expected");
                return false;
            }
            ps->p++;
            if (!parse_value(ps, &v->items[v->len - 1])) return false;
        } else {
            memset(&v->items[v->len], 0, sizeof(json));
            v->len++;
            if (!parse_value(ps, &v->items[v->len - 1])) return false;
        }
        skip_ws(ps);
        if (ps->p >= ps->end) {
            fail(ps, "unterminated %s", object ? "object" : "array");
            return false;
        }
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == close) {
            ps->p++;
            break;
        }
        fail(ps, "',' or '%c' expected", close);
        return false;
    }
    ps->depth--;
    return true;
}

static bool parse_value(parser *ps, json *v) {
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "value expected");
        return false;
    }
    char c = *ps->p;
    switch (c) {
    case '{': return parse_container(ps, v, true);
    case '[': return parse_container(ps, v, false);
    case '"': {
        size_t n = 0;
        char *s = parse_string(ps, &n);
        if (!s) return false;
        v->type = JSON_STRING;
        v->str = s;
        v->len = n;
        return true;
    }
    case 't':
        if (match_word(ps, "true")) {
            v->type = JSON_BOOL;
            v->b = true;
            return true;
        }
        break;
    case 'f':
        if (match_word(ps, "false")) {
            v->type = JSON_BOOL;
            v->b = false;
            return true;
        }
        break;
    case 'n':
        if (match_word(ps, "null")) {
            v->type = JSON_NULL;
            return true;
        }
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9') || c == 'N' || c == 'I') {
            double d;
            if (!parse_number(ps, &d)) return false;
            v->type = JSON_NUMBER;
            v->num = d;
            return true;
        }
        break;
    }
    fail(ps, "unexpected character '%c'", (c >= 0x20 && c < 0x7F) ? c : '?');
    return false;
}

json *json_parse(const char *text, size_t len, char *err, size_t errcap) {
    if (err && errcap) err[0] = 0;
    parser ps = {text, text, text + len, err, errcap, 0, false};
    if (!text) {
        fail(&ps, "no input");
        return NULL;
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ps.p += 3;
    json *root = calloc(1, sizeof *root);
    if (!root) {
        fail(&ps, "out of memory");
        return NULL;
    }
    if (parse_value(&ps, root)) {
        skip_ws(&ps);
        if (ps.p != ps.end) fail(&ps, "trailing characters after the document");
    }
    if (ps.failed) {
        json_free(root);
        return NULL;
    }
    return root;
}

json *json_parse_file(const char *path, char *err, size_t errcap) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errcap) snprintf(err, errcap, "json: cannot open %s", path);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                fclose(f);
                if (err && errcap) snprintf(err, errcap, "json: out of memory reading %s", path);
                return NULL;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    bool ioerr = ferror(f) != 0;
    fclose(f);
    if (ioerr) {
        free(buf);
        if (err && errcap) snprintf(err, errcap, "json: read error on %s", path);
        return NULL;
    }
    json *doc = json_parse(buf, len, err, errcap);
    free(buf);
    return doc;
}

void json_free(json *v) {
    if (!v) return;
    free_contents(v);
    free(v);
}

/* ---- accessors ------------------------------------------------------------------------------ */

json_type json_typeof(const json *v) { return v ? v->type : JSON_NULL; }

const json *json_get(const json *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
    size_t kl = strlen(key);
    for (size_t i = obj->len; i-- > 0;)
        if (obj->key_lens[i] == kl && memcmp(obj->keys[i], key, kl) == 0) return &obj->items[i];
    return NULL;
}

const json *json_at(const json *arr, size_t i) {
    if (!arr || (arr->type != JSON_ARRAY && arr->type != JSON_OBJECT) || i >= arr->len) return NULL;
    return &arr->items[i];
}

const char *json_key_at(const json *obj, size_t i) {
    if (!obj || obj->type != JSON_OBJECT || i >= obj->len) return NULL;
    return obj->keys[i];
}

size_t json_len(const json *v) {
    if (!v) return 0;
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT || v->type == JSON_STRING) return v->len;
    return 0;
}

double json_num(const json *v) { return (v && v->type == JSON_NUMBER) ? v->num : NAN; }

const char *json_str(const json *v) { return (v && v->type == JSON_STRING) ? v->str : NULL; }

bool json_bool(const json *v) { return v && v->type == JSON_BOOL && v->b; }

bool json_is_null(const json *v) { return v && v->type == JSON_NULL; }
