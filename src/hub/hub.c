/* Hugging Face cache resolution and downloads (layout and rules in hub.h). The request is
 * GET {endpoint}/{repo}/resolve/{revision}/{file}, following redirects; the commit comes
 * from X-Repo-Commit and the blob name from X-Linked-Etag or ETag, as huggingface_hub does.
 * The FLORES-200 tarball is unpacked with libarchive, keeping only <split>/<lang>.<split>
 * text files (no other path from the archive is ever written). */
#include "hub/hub.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "format/json.h"

static const char *env(const char *k)
{
    const char *v = getenv(k);
    return v && *v ? v : NULL;
}

static bool env_true(const char *k)
{
    const char *v = env(k);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
                 !strcasecmp(v, "on"));
}

bool pq_hub_is_id(const char *s)
{
    size_t n = strlen(s), slashes = 0;
    if (!n || n > 96 || s[0] == '.' || s[0] == '-' || strstr(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '/') {
            if (++slashes > 1 || i == 0 || i + 1 == n || s[i + 1] == '.' || s[i + 1] == '-')
                return false;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* A branch, tag or commit, or an etag: one path component of safe characters, never "." or
 * "..", so that a folder or file named by it stays where it is put. */
static bool revision_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 128 || strstr(s, "..") || !strcmp(s, "."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

static bool is_commit(const char *s)
{
    if (strlen(s) != 40)
        return false;
    for (int i = 0; i < 40; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static char *home_cache(const char *sub)
{
    const char *x = env("XDG_CACHE_HOME"), *home = env("HOME");
    if (x)
        return pq_asprintf("%s/%s", x, sub);
    return pq_asprintf("%s/.cache/%s", home ? home : "/tmp", sub);
}

char *pq_hub_cache_dir(void)
{
    if (env("HF_HUB_CACHE"))
        return pq_strdup(env("HF_HUB_CACHE"));
    if (env("HF_HOME"))
        return pq_asprintf("%s/hub", env("HF_HOME"));
    return home_cache("huggingface/hub");
}

static char *read_token(void)
{
    if (env("HF_TOKEN"))
        return pq_strdup(env("HF_TOKEN"));
    char *path = env("HF_TOKEN_PATH") ? pq_strdup(env("HF_TOKEN_PATH"))
                 : env("HF_HOME")     ? pq_asprintf("%s/token", env("HF_HOME"))
                                      : home_cache("huggingface/token");
    char *tok = NULL;
    if (path && pq_file_exists(path) && pq_read_file(path, 4096, &tok, NULL, NULL) == 0) {
        size_t n = strlen(tok);
        while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
            tok[--n] = 0;
        if (!n) {
            free(tok);
            tok = NULL;
        }
    }
    free(path);
    return tok;
}

/* ---- one HTTP download --------------------------------------------------------------- */

typedef struct fetch {
    FILE *f;
    char commit[64], linked_etag[160], etag[160];
    long status;
    bool progress;
    const char *label;
    double last_draw;
} fetch;

static void header_value(const char *line, size_t n, const char *name, char *dst, size_t cap)
{
    size_t ln = strlen(name);
    if (dst[0] || n <= ln + 1 || strncasecmp(line, name, ln) || line[ln] != ':')
        return;
    const char *v = line + ln + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    if (end - v > 2 && v[0] == 'W' && v[1] == '/')
        v += 2;
    if (end - v >= 2 && *v == '"' && end[-1] == '"') {
        v++;
        end--;
    }
    size_t k = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(dst, v, k);
    dst[k] = 0;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    fetch *f = ud;
    size_t len = size * n;
    header_value(buf, len, "X-Repo-Commit", f->commit, sizeof f->commit);
    header_value(buf, len, "X-Linked-Etag", f->linked_etag, sizeof f->linked_etag);
    header_value(buf, len, "ETag", f->etag, sizeof f->etag);
    return len;
}

static size_t on_data(char *buf, size_t size, size_t n, void *ud)
{
    fetch *f = ud;
    return fwrite(buf, size, n, f->f) * size;
}

static int on_progress(void *ud, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
    fetch *f = ud;
    double t = pq_now();
    if (!f->progress || (t - f->last_draw < 0.2 && now != total) || total <= 0)
        return 0;
    f->last_draw = t;
    char bar[31];
    pq_progress_bar(bar, 30, (double)now / (double)total);
    fprintf(stderr, "\r  %-28.28s [%s] %6.1f / %.1f MB", f->label, bar, now / 1e6, total / 1e6);
    if (now == total)
        fputc('\n', stderr);
    return 0;
}

/* GETs url into path (a temporary name). Returns 0, POLYQ_NOT_FOUND for 404, or another
 * status with a message; on failure the file is removed. */
static int http_get(const char *url, const char *path, fetch *f, polyq_err *err)
{
    CURL *c = curl_easy_init();
    if (!c)
        return pq_fail(err, POLYQ_NOMEM, "cannot start libcurl");
    if (!(f->f = fopen(path, "wb"))) {
        curl_easy_cleanup(c);
        return pq_fail(err, POLYQ_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    char *tok = read_token(), *auth = tok ? pq_asprintf("Authorization: Bearer %s", tok) : NULL;
    struct curl_slist *hdr = auth ? curl_slist_append(NULL, auth) : NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    /* HTTP(S) only, also where a server redirects (never file://, ftp:// and the like) */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_USERAGENT, "polyq/" POLYQ_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
    if (getenv("PQ_HUB_DEBUG"))
        fprintf(stderr, "GET %s -> curl %d, HTTP %ld\n", url, (int)cc, f->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdr);
    free(auth);
    free(tok);
    int closed = fclose(f->f);
    f->f = NULL;
    int rc = 0;
    if (cc != CURLE_OK)
        rc = pq_fail(err, POLYQ_NETWORK, "%s: download failed: %s", url,
                     errbuf[0] ? errbuf : curl_easy_strerror(cc));
    else if (f->status == 404)
        rc = pq_fail(err, POLYQ_NOT_FOUND, "%s: not found (HTTP 404)", url);
    else if (f->status == 401 || f->status == 403)
        rc = pq_fail(err, POLYQ_NETWORK,
                     "%s: HTTP %ld: access denied; a gated model needs HF_TOKEN set to a token "
                     "that has accepted its licence",
                     url, f->status);
    else if (f->status < 200 || f->status >= 300)
        rc = pq_fail(err, POLYQ_NETWORK, "%s: HTTP %ld", url, f->status);
    else if (closed != 0)
        rc = pq_fail(err, POLYQ_IO, "%s: write failed", path);
    if (rc)
        unlink(path);
    return rc;
}

/* ---- the model cache ----------------------------------------------------------------- */

typedef struct repo {
    const char *id;
    char *folder; /* <cache>/models--org--name */
    char revision[130];
    char commit[130];
    bool offline;
    bool progress;
    char *endpoint;
} repo;

static char *snapshot_file(const repo *r, const char *file)
{
    return pq_asprintf("%s/snapshots/%s/%s", r->folder, r->commit, file);
}

static bool have(const repo *r, const char *file)
{
    char *p = snapshot_file(r, file);
    bool ok = p && pq_file_exists(p);
    free(p);
    return ok;
}

/* Whether every shard an index lists is in the snapshot. */
static bool have_shards(const repo *r, const char *index)
{
    char *idx = snapshot_file(r, index);
    json_t *root = NULL;
    bool ok = idx && pq_json_load(idx, 64u << 20, &root, NULL) == 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(root, "weight_map"), k,
                        v) if (!json_is_string(v) || !have(r, json_string_value(v))) ok = false;
    json_decref(root);
    free(idx);
    return ok;
}

/* The files a model needs beyond config.json, given what the snapshot holds. */
static bool snapshot_complete(const repo *r)
{
    if (!r->commit[0] || !have(r, "config.json"))
        return false;
    if (!have(r, "tokenizer.json") && !(have(r, "vocab.json") && have(r, "merges.txt")))
        return false;
    if (have(r, "model.safetensors.index.json"))
        return have_shards(r, "model.safetensors.index.json");
    if (have(r, "model.safetensors") || have(r, "pytorch_model.bin"))
        return true;
    return have(r, "pytorch_model.bin.index.json") &&
           have_shards(r, "pytorch_model.bin.index.json");
}

static void read_ref(repo *r)
{
    if (is_commit(r->revision)) {
        snprintf(r->commit, sizeof r->commit, "%s", r->revision);
        return;
    }
    char *ref = pq_asprintf("%s/refs/%s", r->folder, r->revision), *txt = NULL;
    if (ref && pq_file_exists(ref) && pq_read_file(ref, 256, &txt, NULL, NULL) == 0) {
        size_t n = strlen(txt);
        while (n && (txt[n - 1] == '\n' || txt[n - 1] == ' ' || txt[n - 1] == '\r'))
            txt[--n] = 0;
        if (revision_ok(txt))
            snprintf(r->commit, sizeof r->commit, "%s", txt);
    }
    free(txt);
    free(ref);
}

/* Downloads one file into the cache. optional: a 404 is not an error (returns NOT_FOUND
 * without touching err). */
static int download(repo *r, const char *file, bool optional, polyq_err *err)
{
    char *url = pq_asprintf("%s/%s/resolve/%s/%s", r->endpoint, r->id, r->revision, file);
    char *blobs = pq_asprintf("%s/blobs", r->folder);
    char *tmp = pq_asprintf("%s/blobs/download-%d-%s.incomplete", r->folder, (int)getpid(), file);
    char *blob = NULL, *snapdir = NULL, *link = NULL, *target = NULL;
    int rc = 0;
    if (!url || !blobs || !tmp) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    for (char *p = strrchr(tmp, '/') + 1; *p; p++)
        if (*p == '/')
            *p = '_';
    if ((rc = pq_mkdirs(blobs, err)))
        goto out;
    fetch f = {.progress = r->progress, .label = file};
    polyq_err local = {0};
    rc = http_get(url, tmp, &f, &local);
    if (rc == POLYQ_NOT_FOUND && optional)
        goto out;
    if (rc) {
        *err = local;
        goto out;
    }
    /* every value from the server that names a path is checked first: the commit must be a
     * commit hash (it names the snapshot folder and refs/), the etag a safe file name */
    if (f.commit[0] && !is_commit(f.commit)) {
        rc = pq_fail(
            err, POLYQ_NETWORK,
            "%s: the server's X-Repo-Commit \"%.64s\" is not a 40-hex commit hash; nothing was "
            "written to the cache",
            url, f.commit);
        goto out;
    }
    if (!r->commit[0])
        snprintf(r->commit, sizeof r->commit, "%s", f.commit[0] ? f.commit : r->revision);
    const char *etag = f.linked_etag[0] ? f.linked_etag : f.etag;
    blob = etag[0] && revision_ok(etag) ? pq_asprintf("%s/%s", blobs, etag)
                                        : pq_asprintf("%s/%s-%s", blobs, r->commit, file);
    snapdir = pq_asprintf("%s/snapshots/%s", r->folder, r->commit);
    link = snapshot_file(r, file);
    if (!blob || !snapdir || !link) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    if (!etag[0] ||
        !revision_ok(etag)) /* no usable etag: the blob is named after commit and file */
        for (char *p = strrchr(blob, '/') + 1 + strlen(r->commit); *p; p++)
            if (*p == '/')
                *p = '_';
    if (rename(tmp, blob) != 0) {
        rc = pq_fail(err, POLYQ_IO, "%s: cannot move into the cache: %s", blob, strerror(errno));
        goto out;
    }
    char *slash = strrchr(link, '/');
    *slash = 0;
    rc = pq_mkdirs(link, err);
    *slash = '/';
    if (rc)
        goto out;
    /* relative link: ../../blobs/<name>, one more ../ per folder level of `file` */
    size_t depth = 0;
    for (const char *p = file; *p; p++)
        depth += *p == '/';
    target = pq_asprintf("%s../../blobs/%s", depth ? "../" : "", strrchr(blob, '/') + 1);
    unlink(link);
    if (!target || symlink(target, link) != 0) {
        rc = pq_fail(err, POLYQ_IO, "%s: cannot link into the snapshot: %s", link, strerror(errno));
        goto out;
    }
    if (strcmp(r->revision, r->commit)) {
        char *refs = pq_asprintf("%s/refs", r->folder),
             *ref = pq_asprintf("%s/refs/%s", r->folder, r->revision);
        FILE *rf = NULL;
        if (!refs || !ref || pq_mkdirs(refs, err) || !(rf = fopen(ref, "w")))
            rc = pq_fail(err, POLYQ_IO, "%s: cannot write the ref", ref ? ref : r->folder);
        else
            fputs(r->commit, rf);
        if (rf)
            fclose(rf);
        free(refs);
        free(ref);
    }
out:
    if (tmp)
        unlink(tmp);
    free(url);
    free(blobs);
    free(tmp);
    free(blob);
    free(snapdir);
    free(link);
    free(target);
    return rc;
}

/* Downloads the shards an index (already in the snapshot) lists. */
static int fetch_shards(repo *r, const char *index, polyq_err *err)
{
    char *idx = snapshot_file(r, index);
    json_t *root = NULL;
    int rc =
        idx ? pq_json_load(idx, 64u << 20, &root, err) : pq_fail(err, POLYQ_NOMEM, "out of memory");
    free(idx);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(root, "weight_map"), k, v)
    {
        const char *file = json_is_string(v) ? json_string_value(v) : "";
        if (rc)
            break;
        if (!*file || strchr(file, '/') || file[0] == '.')
            rc = pq_fail(err, POLYQ_FORMAT, "%s: shard name \"%s\" is not a plain file name", index,
                         file);
        else if (!have(r, file))
            rc = download(r, file, false, err);
    }
    json_decref(root);
    return rc;
}

/* Weights in the first form the repository publishes: sharded or single safetensors, then
 * sharded or single pytorch_model.bin. */
static int fetch_weights(repo *r, polyq_err *err)
{
    static const struct {
        const char *name;
        bool index;
    } forms[] = {{"model.safetensors.index.json", true},
                 {"model.safetensors", false},
                 {"pytorch_model.bin.index.json", true},
                 {"pytorch_model.bin", false}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        int rc = download(r, forms[i].name, true, err);
        if (rc == POLYQ_NOT_FOUND)
            continue;
        return rc ? rc : forms[i].index ? fetch_shards(r, forms[i].name, err) : 0;
    }
    return pq_fail(
        err, POLYQ_NOT_FOUND,
        "%s publishes neither model.safetensors nor pytorch_model.bin (or their indexes)", r->id);
}

static int fetch_model(repo *r, polyq_err *err)
{
    int rc;
    if ((rc = download(r, "config.json", false, err)) || (rc = fetch_weights(r, err)))
        return rc;
    rc = download(r, "tokenizer.json", true, err);
    if (rc == POLYQ_NOT_FOUND) {
        if ((rc = download(r, "vocab.json", false, err)) ||
            (rc = download(r, "merges.txt", false, err)))
            return rc;
    } else if (rc) {
        return rc;
    }
    rc = download(r, "tokenizer_config.json", true, err);
    return rc == POLYQ_NOT_FOUND ? 0 : rc;
}

bool pq_hub_cached(const char *id, const char *revision)
{
    pq_hub_opts o = {.revision = revision, .offline = true};
    char *dir = NULL, *commit = NULL;
    int rc = pq_hub_resolve(id, &o, &dir, &commit, NULL);
    free(dir);
    free(commit);
    return rc == 0;
}

int pq_hub_resolve(const char *id, const pq_hub_opts *o, char **dir, char **commit, polyq_err *err)
{
    *dir = NULL;
    if (commit)
        *commit = NULL;
    if (!pq_hub_is_id(id))
        return pq_fail(
            err, POLYQ_INVALID_ARG,
            "\"%s\" is neither a model folder nor a Hugging Face id like openai-community/gpt2",
            id);
    repo r = {
        .id = id, .offline = o->offline || env_true("HF_HUB_OFFLINE"), .progress = o->progress};
    snprintf(r.revision, sizeof r.revision, "%s", o->revision ? o->revision : "main");
    if (!revision_ok(r.revision))
        return pq_fail(err, POLYQ_INVALID_ARG, "revision \"%s\" is not a branch, tag or commit",
                       r.revision);
    char *cache = pq_hub_cache_dir();
    char *flat = pq_strdup(id);
    int rc = 0;
    if (!cache || !flat) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    char *sl = strchr(flat, '/');
    r.folder = sl ? (*sl = 0, pq_asprintf("%s/models--%s--%s", cache, flat, sl + 1))
                  : pq_asprintf("%s/models--%s", cache, flat);
    r.endpoint = pq_strdup(env("HF_ENDPOINT") ? env("HF_ENDPOINT") : "https://huggingface.co");
    if (!r.folder || !r.endpoint) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    size_t el = strlen(r.endpoint);
    while (el && r.endpoint[el - 1] == '/')
        r.endpoint[--el] = 0;
    read_ref(&r);
    if (!snapshot_complete(&r)) {
        if (r.offline) {
            rc = pq_fail(
                err, POLYQ_OFFLINE,
                "%s is not in the Hugging Face cache and downloads are off (%s). "
                "Put config.json, model.safetensors (or model.safetensors.index.json and its "
                "shards) and tokenizer.json (or vocab.json + merges.txt) in a folder and pass "
                "the folder instead of the id, or place them in %s/snapshots/<commit>/ with "
                "the commit written in %s/refs/%s",
                id, o->offline ? "--offline" : "HF_HUB_OFFLINE is set", r.folder, r.folder,
                r.revision);
            goto out;
        }
        if (!is_commit(r.revision))
            r.commit[0] = 0;
        if ((rc = fetch_model(&r, err))) {
            if (rc == POLYQ_NETWORK && err && !strstr(err->msg, "HTTP"))
                pq_fail_context(err,
                                "%s is not in the Hugging Face cache (%s) and could not be "
                                "downloaded. Offline, put config.json, model.safetensors and "
                                "tokenizer.json (or vocab.json + merges.txt) in a folder and pass "
                                "the folder instead of the id, or place them in "
                                "%s/snapshots/<commit>/ with the commit in refs/%s",
                                id, cache, r.folder, r.revision);
            goto out;
        }
        if (!snapshot_complete(&r)) {
            rc = pq_fail(err, POLYQ_FORMAT, "%s: downloaded, but the snapshot is still incomplete",
                         id);
            goto out;
        }
    }
    *dir = pq_asprintf("%s/snapshots/%s", r.folder, r.commit);
    if (commit)
        *commit = pq_strdup(r.commit);
    if (!*dir)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
out:
    free(cache);
    free(flat);
    free(r.folder);
    free(r.endpoint);
    return rc;
}

/* ---- FLORES-200 ---------------------------------------------------------------------- */

/* "<anything>/<split>/<lang>.<split>" with a plain language code -> "<split>/<lang>.<split>" */
static const char *flores_member(const char *path)
{
    static const char *const splits[] = {"dev", "devtest"};
    const char *base = strrchr(path, '/');
    if (!base)
        return NULL;
    const char *dirp = base;
    while (dirp > path && dirp[-1] != '/')
        dirp--;
    for (int s = 0; s < 2; s++) {
        size_t sl = strlen(splits[s]), bl = strlen(base + 1);
        if ((size_t)(base - dirp) != sl || strncmp(dirp, splits[s], sl))
            continue;
        if (bl <= sl + 1 || strcmp(base + 1 + bl - sl, splits[s]) || base[bl - sl] != '.')
            continue;
        for (const char *p = base + 1; p < base + bl - sl; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '-'))
                return NULL;
        return dirp;
    }
    return NULL;
}

static int unpack_flores(const char *tarball, const char *dest, polyq_err *err)
{
    struct archive *a = archive_read_new();
    if (!a)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    int rc = 0, files = 0;
    if (archive_read_open_filename(a, tarball, 1 << 16) != ARCHIVE_OK) {
        rc = pq_fail(err, POLYQ_FORMAT, "%s: %s", tarball,
                     archive_error_string(a) ? archive_error_string(a) : "cannot be read");
        goto out;
    }
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *member =
            archive_entry_filetype(e) == AE_IFREG ? flores_member(archive_entry_pathname(e)) : NULL;
        if (!member)
            continue;
        char *path = pq_asprintf("%s/%s", dest, member);
        char *slash = path ? strrchr(path, '/') : NULL;
        FILE *f = NULL;
        if (!path) {
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            goto out;
        }
        *slash = 0;
        rc = pq_mkdirs(path, err);
        *slash = '/';
        if (!rc && !(f = fopen(path, "wb")))
            rc = pq_fail(err, POLYQ_IO, "%s: cannot write: %s", path, strerror(errno));
        if (rc) {
            free(path);
            goto out;
        }
        const void *buf;
        size_t len;
        la_int64_t off;
        bool wrote = true; /* a full disk is told as such, not as a damaged archive */
        int werr = 0;
        while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
            if (fwrite(buf, 1, len, f) != len) {
                wrote = false;
                werr = errno;
                break;
            }
        if (fclose(f) != 0 && wrote) {
            wrote = false;
            werr = errno;
        }
        if (!wrote)
            rc = pq_fail(err, POLYQ_IO, "%s: cannot write: %s", path, strerror(werr));
        else if (r != ARCHIVE_EOF)
            rc = pq_fail(err, POLYQ_FORMAT, "%s: damaged archive: %s", tarball,
                         archive_error_string(a) ? archive_error_string(a) : "a member ends early");
        free(path);
        if (rc)
            goto out;
        files++;
    }
    if (r != ARCHIVE_EOF)
        rc = pq_fail(err, POLYQ_FORMAT, "%s: damaged archive: %s", tarball,
                     archive_error_string(a) ? archive_error_string(a) : "cannot be read");
    else if (!files)
        rc = pq_fail(err, POLYQ_FORMAT, "%s: no dev/ or devtest/ FLORES files inside", tarball);
out:
    archive_read_free(a);
    return rc;
}

int pq_flores_resolve(const pq_hub_opts *o, char **dir, polyq_err *err)
{
    *dir = NULL;
    char *root = env("POLYQ_CACHE") ? pq_strdup(env("POLYQ_CACHE")) : home_cache("polyq");
    char *dest = root ? pq_asprintf("%s/flores200", root) : NULL;
    char *devtest = dest ? pq_asprintf("%s/devtest", dest) : NULL;
    char *tmpdir = dest ? pq_asprintf("%s.incomplete-%d", dest, (int)getpid()) : NULL;
    char *tarball = dest ? pq_asprintf("%s.tar.gz.incomplete-%d", dest, (int)getpid()) : NULL;
    const char *url = env("POLYQ_FLORES_URL")
                          ? env("POLYQ_FLORES_URL")
                          : "https://dl.fbaipublicfiles.com/nllb/flores200_dataset.tar.gz";
    int rc = 0;
    if (!devtest || !tmpdir || !tarball) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    if (pq_dir_exists(devtest))
        goto done;
    if (o->offline || env_true("HF_HUB_OFFLINE") || env_true("POLYQ_OFFLINE")) {
        rc = pq_fail(err, POLYQ_OFFLINE,
                     "FLORES-200 is not in %s and downloads are off (%s): unpack %s there (so "
                     "that %s/eng_Latn.devtest exists), or pass --data DIR or set POLYQ_DATA",
                     dest,
                     o->offline                   ? "--offline"
                     : env_true("HF_HUB_OFFLINE") ? "HF_HUB_OFFLINE is set"
                                                  : "POLYQ_OFFLINE is set",
                     url, devtest);
        goto out;
    }
    if ((rc = pq_mkdirs(root, err)))
        goto out;
    fetch f = {.progress = o->progress, .label = "flores200_dataset.tar.gz"};
    if ((rc = http_get(url, tarball, &f, err))) {
        pq_fail_context(err,
                        "FLORES-200 is not in %s and could not be downloaded; unpack the "
                        "release there (dev/ and devtest/), or pass --data DIR or set POLYQ_DATA",
                        dest);
        goto out;
    }
    rc = unpack_flores(tarball, tmpdir, err);
    unlink(tarball);
    if (!rc && rename(tmpdir, dest) != 0)
        rc = pq_fail(err, POLYQ_IO, "%s: cannot move into place: %s", dest, strerror(errno));
    if (rc) {
        pq_rmtree(tmpdir); /* best effort: a leftover *.incomplete-<pid> folder is never read */
        goto out;
    }
done:
    *dir = dest;
    dest = NULL;
out:
    free(root);
    free(dest);
    free(devtest);
    free(tmpdir);
    free(tarball);
    return rc;
}
