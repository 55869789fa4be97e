/* What a result was made with (run/provenance.h): the build, the host, the libraries and the
 * files read, each file by its SHA-256 (OpenSSL's EVP). */
#include "run/provenance.h"

#include <curl/curl.h>
#include <dnnl.h>
#include <errno.h>
#include <openssl/evp.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "base/base.h"
#include "polyq_build.h"

/* OpenBLAS's own description of itself ("OpenBLAS 0.3.21 DYNAMIC_ARCH ...") */
char *openblas_get_config(void);

int pq_sha256_file(const char *path, char hex[65], uint64_t *bytes, polyq_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pq_fail(err, POLYQ_IO, "%s: cannot read (%s)", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20), md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = 0;
    uint64_t total = 0;
    if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory hashing %s", path);
    size_t got;
    while (!rc && (got = fread(buf, 1, 1 << 20, f)) > 0) {
        total += got;
        if (!EVP_DigestUpdate(ctx, buf, got))
            rc = pq_fail(err, POLYQ_IO, "%s: hashing failed", path);
    }
    if (!rc && ferror(f))
        rc = pq_fail(err, POLYQ_IO, "%s: read error while hashing", path);
    if (!rc && !EVP_DigestFinal_ex(ctx, md, &mdlen))
        rc = pq_fail(err, POLYQ_IO, "%s: hashing failed", path);
    for (unsigned i = 0; !rc && i < mdlen && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (!rc)
        hex[64] = 0;
    if (bytes)
        *bytes = total;
    EVP_MD_CTX_free(ctx);
    free(buf);
    fclose(f);
    return rc;
}

static bool regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int pq_prov_add_file(json_t *files, const char *path, const char *role, polyq_err *err)
{
    size_t i;
    json_t *v;
    json_array_foreach(files, i, v) /* each file once */
    {
        const char *p = json_string_value(json_object_get(v, "path"));
        if (p && !strcmp(p, path))
            return 0;
    }
    char hex[65];
    uint64_t bytes;
    int rc = pq_sha256_file(path, hex, &bytes, err);
    if (!rc &&
        json_array_append_new(files, json_pack("{s:s, s:s, s:I, s:s}", "path", path, "role", role,
                                               "bytes", (json_int_t)bytes, "sha256", hex)))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    return rc;
}

int pq_prov_add_model(json_t *files, const char *path, const char *role, polyq_err *err)
{
    if (regular(path)) /* a GGUF file */
        return pq_prov_add_file(files, path, role, err);
    /* the files of a model folder polyq reads: configuration, weights, tokenizer */
    static const char *const names[] = {"config.json",
                                        "model.safetensors",
                                        "model.safetensors.index.json",
                                        "pytorch_model.bin",
                                        "pytorch_model.bin.index.json",
                                        "tokenizer.json",
                                        "tokenizer_config.json",
                                        "vocab.json",
                                        "merges.txt",
                                        "vocab.txt",
                                        "tokenizer.model",
                                        "polyq-quant.safetensors",
                                        "polyq-quant.json"};
    int rc = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0] && !rc; k++) {
        char *p = pq_asprintf("%s/%s", path, names[k]);
        if (!p)
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        if (regular(p))
            rc = pq_prov_add_file(files, p, role, err);
        free(p);
    }
    /* the shards an index names */
    static const char *const indexes[] = {"model.safetensors.index.json",
                                          "pytorch_model.bin.index.json"};
    for (size_t k = 0; k < 2 && !rc; k++) {
        char *p = pq_asprintf("%s/%s", path, indexes[k]);
        json_t *ix = p && regular(p) ? json_load_file(p, 0, NULL) : NULL;
        const char *key;
        json_t *shard;
        json_object_foreach(json_object_get(ix, "weight_map"), key, shard)
        {
            const char *s = json_string_value(shard);
            char *sp = s && !strchr(s, '/') ? pq_asprintf("%s/%s", path, s) : NULL;
            if (sp && regular(sp))
                rc = rc ? rc : pq_prov_add_file(files, sp, role, err);
            free(sp);
        }
        json_decref(ix);
        free(p);
    }
    return rc;
}

/* /proc/cpuinfo's "model name", or NULL */
static char *cpu_model(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512], *out = NULL;
    while (f && !out && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                c[strcspn(c, "\n")] = 0;
                out = pq_strdup(c);
            }
        }
    }
    if (f)
        fclose(f);
    return out;
}

json_t *pq_prov_new(int argc, char *const *argv, int threads)
{
    json_t *cmd = json_array();
    for (int i = 0; cmd && argv && i < argc; i++)
        json_array_append_new(cmd, json_string(argv[i]));
    char pcre[64] = "", *cpu = cpu_model();
    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    const dnnl_version_t *dv = dnnl_version();
    char dnnl[48];
    snprintf(dnnl, sizeof dnnl, "%d.%d.%d", dv->major, dv->minor, dv->patch);
    const char *blas = openblas_get_config();
    char blasv[64] = "";
    if (blas) { /* "OpenBLAS 0.3.21 NO_AFFINITY ...": the version */
        const char *v = strncmp(blas, "OpenBLAS ", 9) ? blas : blas + 9;
        snprintf(blasv, sizeof blasv, "%.*s", (int)strcspn(v, " "), v);
    }
    json_t *p = json_pack(
        "{s:o, s:{s:s, s:s}, s:{s:o, s:I, s:i}, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}, s:[]}",
        "command_line", cmd ? cmd : json_null(), "polyq", "version", POLYQ_VERSION, "git",
        POLYQ_GIT, "host", "cpu", cpu ? json_string(cpu) : json_null(), "logical_cpus",
        (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "threads", threads, "libraries", "onednn", dnnl,
        "openblas", blasv, "sqlite", sqlite3_libversion(), "pcre2", pcre, "utf8proc",
        utf8proc_version(), "jansson", JANSSON_VERSION, "libcurl",
        curl_version_info(CURLVERSION_NOW)->version, "openssl",
        OpenSSL_version(OPENSSL_VERSION_STRING), "files");
    free(cpu);
    return p;
}
