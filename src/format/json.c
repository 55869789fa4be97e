/* jansson wrappers: load with duplicate-key rejection, typed field readers with messages. */
#include "format/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static int parse_flags(const char *what, const char *buf, size_t len, size_t flags, json_t **out,
                       polyq_err *err)
{
    json_error_t je;
    *out = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | flags, &je);
    if (!*out && json_error_code(&je) == json_error_out_of_memory)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory parsing JSON", what);
    if (!*out)
        return pq_fail(err, POLYQ_FORMAT, "%s: invalid JSON at line %d, column %d: %s", what,
                       je.line, je.column, je.text);
    return 0;
}

int pq_json_parse(const char *what, const char *buf, size_t len, json_t **out, polyq_err *err)
{
    return parse_flags(what, buf, len, 0, out, err);
}

int pq_json_load_reals(const char *path, size_t max_size, json_t **out, polyq_err *err)
{
    char *buf;
    size_t len;
    *out = NULL;
    int rc = pq_read_file(path, max_size, &buf, &len, err);
    if (rc)
        return rc;
    rc = parse_flags(path, buf, len, JSON_DECODE_INT_AS_REAL, out, err);
    free(buf);
    return rc;
}

int pq_json_load(const char *path, size_t max_size, json_t **out, polyq_err *err)
{
    char *buf;
    size_t len;
    *out = NULL;
    int rc = pq_read_file(path, max_size, &buf, &len, err);
    if (rc)
        return rc;
    rc = pq_json_parse(path, buf, len, out, err);
    free(buf);
    return rc;
}

static int missing(const char *key, bool required, const char *what, polyq_err *err)
{
    return required ? pq_fail(err, POLYQ_FORMAT, "%s: required key \"%s\" is missing", what, key)
                    : 0;
}

int pq_json_int(const json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                int64_t *out, const char *what, polyq_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return missing(key, required, what, err);
    json_int_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9.2e18) {
        x = (json_int_t)json_real_value(v);
    } else {
        return pq_fail(err, POLYQ_FORMAT, "%s: \"%s\" must be an integer", what, key);
    }
    if (x < min || x > max)
        return pq_fail(err, POLYQ_FORMAT, "%s: \"%s\" is %lld, outside [%lld, %lld]", what, key,
                       (long long)x, (long long)min, (long long)max);
    *out = x;
    return 0;
}

int pq_json_real(const json_t *obj, const char *key, bool required, double *out, const char *what,
                 polyq_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return missing(key, required, what, err);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return pq_fail(err, POLYQ_FORMAT, "%s: \"%s\" must be a finite number", what, key);
    *out = json_number_value(v);
    return 0;
}

int pq_json_bool(const json_t *obj, const char *key, bool required, bool *out, const char *what,
                 polyq_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return missing(key, required, what, err);
    if (!json_is_boolean(v))
        return pq_fail(err, POLYQ_FORMAT, "%s: \"%s\" must be true or false", what, key);
    *out = json_is_true(v);
    return 0;
}

int pq_json_str(const json_t *obj, const char *key, bool required, const char **out,
                const char *what, polyq_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return missing(key, required, what, err);
    if (!json_is_string(v))
        return pq_fail(err, POLYQ_FORMAT, "%s: \"%s\" must be a string", what, key);
    if (strlen(json_string_value(v)) != json_string_length(v)) /* "gpt2\u0000evil" */
        return pq_fail(err, POLYQ_FORMAT, "%s: \"%s\" holds a NUL character", what, key);
    *out = json_string_value(v);
    return 0;
}
