/* json.h - a small JSON reader for the tests: parses a whole document into a tree.
 *
 * Objects, arrays, strings (escapes incl. \uXXXX and surrogate pairs, decoded to UTF-8; a lone
 * surrogate becomes U+FFFD), numbers (as double), true/false/null. As extensions (Python's json
 * module writes them) NaN, Infinity and -Infinity are accepted as numbers. Nesting is limited to
 * JSON_MAX_DEPTH levels. Every accessor accepts NULL and wrong-typed values and then returns a
 * neutral result (NULL, 0, NaN), so lookups can be chained:
 *
 *     json *doc = json_parse_file("../shared/fixtures/cases.json", err, sizeof err);
 *     const json *ids = json_get(json_at(json_get(json_get(json_get(doc, "models"), "tiny-e2e"),
 *                                                  "cases"), 0), "ids");
 *     for (size_t i = 0; i < json_len(ids); i++) use((int)json_num(json_at(ids, i)));
 *     json_free(doc);
 */
#ifndef TY_TEST_JSON_H
#define TY_TEST_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 1000

typedef enum json_type {
    JSON_NULL = 0,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type;

typedef struct json json;
struct json {
    json_type type;
    bool b;      /* JSON_BOOL */
    double num;  /* JSON_NUMBER */
    char *str;   /* JSON_STRING: UTF-8, NUL-terminated (may also contain NULs from \u0000) */
    size_t len;  /* JSON_STRING: bytes; JSON_ARRAY / JSON_OBJECT: number of elements */
    json *items; /* JSON_ARRAY / JSON_OBJECT: the elements (values), contiguous */
    char **keys; /* JSON_OBJECT: keys[i] names items[i] (NUL-terminated) */
    size_t *key_lens;
};

/* Parses len bytes (a UTF-8 BOM is skipped). NULL on error, with a one-line message (giving the
 * byte offset) in err when errcap > 0. */
json *json_parse(const char *text, size_t len, char *err, size_t errcap);
/* Reads and parses a file. */
json *json_parse_file(const char *path, char *err, size_t errcap);
void json_free(json *v);

json_type json_typeof(const json *v); /* JSON_NULL for NULL */
/* Object member by key (the last one if a key repeats), or NULL. */
const json *json_get(const json *obj, const char *key);
const json *json_at(const json *arr, size_t i);     /* array (or object value) i, or NULL */
const char *json_key_at(const json *obj, size_t i); /* object key i, or NULL */
size_t json_len(const json *v);      /* elements of an array/object, bytes of a string */
double json_num(const json *v);      /* NaN unless a number */
const char *json_str(const json *v); /* NULL unless a string */
bool json_bool(const json *v);       /* false unless true */
bool json_is_null(const json *v);    /* true for JSON null (not for a missing value) */

#endif
