/* Hub downloads against a local server in the hub's URL layout: a clean download into the
 * huggingface_hub cache layout (then reused offline), a 404, a transfer cut in the middle
 * (no half-written file where the cache expects a whole one), offline and not cached; and
 * the FLORES-200 tarball unpacked into polyq's cache. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "http_server.h"
#include "hub/hub.h"
#include "model/model.h"
#include "test.h"

static char *fixture_abs(const char *rel)
{
    char *p = realpath(pq_test_fixture(rel), NULL);
    if (!p)
        FAILF("no fixture %s", rel);
    return p;
}

static void set_env(const char *cache, int port)
{
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
    setenv("HF_ENDPOINT", ep, 1);
    setenv("HF_HUB_CACHE", cache, 1);
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("HF_TOKEN");
    setenv("HF_TOKEN_PATH", "/nonexistent/token", 1);
}

/* no file in the folder is a leftover ".incomplete" */
static int count_incomplete(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".incomplete") != NULL;
    if (d)
        closedir(d);
    return n;
}

TEST(hub_download_404_cut_offline)
{
    char *fx = fixture_abs("gpt2-tiny-vocab-bf16");
    if (!fx)
        return;
    test_route routes[] = {
        {"/polyq-test/tiny/resolve/main/", fx, 0, NULL, NULL, NULL, NULL},
        {"/polyq-test/cut/resolve/main/", fx, 1, NULL, NULL, NULL, NULL},
    };
    test_server *srv = test_server_start(routes, 2);
    CHECK(srv != NULL);
    if (!srv) {
        free(fx);
        return;
    }
    char *cache = pq_asprintf("%s/hub-cache", pq_test_tmpdir());
    set_env(cache, test_server_port(srv));
    polyq_err err = {0};
    pq_hub_opts o = {0};
    char *dir = NULL, *commit = NULL;

    /* clean download */
    CHECK_OK(pq_hub_resolve("polyq-test/tiny", &o, &dir, &commit, &err));
    if (dir) {
        char *want = pq_asprintf("%s/models--polyq-test--tiny/snapshots/" TEST_COMMIT, cache);
        CHECK(!strcmp(dir, want));
        CHECK(commit && !strcmp(commit, TEST_COMMIT));
        char *link = pq_asprintf("%s/model.safetensors", dir), target[512] = "";
        ssize_t n = readlink(link, target, sizeof target - 1);
        CHECK(n > 0 && !strncmp(target, "../../blobs/", 12));
        char *ref = pq_asprintf("%s/models--polyq-test--tiny/refs/main", cache), *txt = NULL;
        CHECK_OK(pq_read_file(ref, 100, &txt, NULL, &err));
        CHECK(txt && !strcmp(txt, TEST_COMMIT));
        pq_model *m = NULL;
        CHECK_OK(pq_model_open_dir(&m, dir, &err));
        CHECK(m && m->tok && m->cfg.n_vocab == 50257);
        pq_model_free(m);
        free(txt);
        free(ref);
        free(link);
        free(want);
    }
    free(dir);
    free(commit);
    dir = commit = NULL;

    /* cached: offline works and asks nothing of the server */
    int before = test_server_requests(srv);
    setenv("HF_HUB_OFFLINE", "1", 1);
    CHECK_OK(pq_hub_resolve("polyq-test/tiny", &o, &dir, &commit, &err));
    CHECK_INT(test_server_requests(srv), before);
    free(dir);
    free(commit);
    dir = commit = NULL;

    /* offline and not cached: one message saying what to place where */
    CHECK_FAILS(pq_hub_resolve("polyq-test/absent", &o, &dir, &commit, &err), POLYQ_OFFLINE,
                "models--polyq-test--absent/snapshots/<commit>/");
    CHECK(strstr(err.msg, "config.json") && strstr(err.msg, "tokenizer.json"));
    unsetenv("HF_HUB_OFFLINE");

    /* 404 */
    CHECK_FAILS(pq_hub_resolve("polyq-test/absent", &o, &dir, &commit, &err), POLYQ_NOT_FOUND,
                "/polyq-test/absent/resolve/main/config.json: not found (HTTP 404)");

    /* cut in the middle: no complete-looking file is left behind */
    CHECK_FAILS(pq_hub_resolve("polyq-test/cut", &o, &dir, &commit, &err), POLYQ_NETWORK,
                "download failed");
    char *snap =
        pq_asprintf("%s/models--polyq-test--cut/snapshots/" TEST_COMMIT "/config.json", cache);
    CHECK(!pq_file_exists(snap)); /* config.json itself was cut */
    char *blobs = pq_asprintf("%s/models--polyq-test--cut/blobs", cache);
    CHECK_INT(count_incomplete(blobs), 0);
    DIR *d = opendir(blobs);
    struct dirent *e;
    int n_blobs = 0;
    while (d && (e = readdir(d)))
        n_blobs += e->d_name[0] != '.';
    if (d)
        closedir(d);
    CHECK_INT(n_blobs, 0);
    if (dir)
        FAILF("dir %s", dir);

    CHECK_FAILS(pq_hub_resolve("../etc", &o, &dir, &commit, &err), POLYQ_INVALID_ARG,
                "Hugging Face id");
    o.revision = "../x";
    CHECK_FAILS(pq_hub_resolve("gpt2", &o, &dir, &commit, &err), POLYQ_INVALID_ARG, "revision");
    free(snap);
    free(blobs);
    free(cache);
    test_server_stop(srv);
    free(fx);
    unsetenv("HF_ENDPOINT");
    unsetenv("HF_HUB_CACHE");
}

/* A cut model.safetensors after a whole config.json: the snapshot keeps config.json only. */
TEST(hub_cut_weights_leave_no_partial_file)
{
    char *fx = fixture_abs("gpt2-tiny-vocab-bf16");
    char *cfg = fx ? pq_asprintf("%s/config.json", fx) : NULL;
    test_route routes[] = {
        {"/polyq-test/cutw/resolve/main/config.json", cfg, 0, NULL, NULL, NULL, NULL},
        {"/polyq-test/cutw/resolve/main/", fx, 1, NULL, NULL, NULL, NULL},
    };
    test_server *srv = fx ? test_server_start(routes, 2) : NULL;
    if (!srv) {
        FAILF("server");
        free(fx);
        free(cfg);
        return;
    }
    char *cache = pq_asprintf("%s/hub-cache2", pq_test_tmpdir());
    set_env(cache, test_server_port(srv));
    polyq_err err = {0};
    pq_hub_opts o = {0};
    char *dir = NULL, *commit = NULL;
    CHECK_FAILS(pq_hub_resolve("polyq-test/cutw", &o, &dir, &commit, &err), POLYQ_NETWORK,
                "model.safetensors");
    char *snap = pq_asprintf("%s/models--polyq-test--cutw/snapshots/" TEST_COMMIT, cache);
    char *c = pq_path_join(snap, "config.json"), *w = pq_path_join(snap, "model.safetensors");
    CHECK(pq_file_exists(c));
    CHECK(!pq_file_exists(w));
    char *blobs = pq_asprintf("%s/models--polyq-test--cutw/blobs", cache);
    CHECK_INT(count_incomplete(blobs), 0);
    free(blobs);
    free(c);
    free(w);
    free(snap);
    free(cache);
    test_server_stop(srv);
    free(fx);
    free(cfg);
    unsetenv("HF_ENDPOINT");
    unsetenv("HF_HUB_CACHE");
}

/* LFS-style redirects and a gated repository that needs HF_TOKEN. */
TEST(hub_redirect_and_token)
{
    char *fx = fixture_abs("gpt2-tiny-vocab-bf16");
    test_route routes[] = {
        {"/polyq-test/lfs/resolve/main/", NULL, 0, "/cdn/", NULL, NULL, NULL},
        {"/cdn/", fx, 0, NULL, NULL, NULL, NULL},
        {"/polyq-test/gated/resolve/main/", fx, 0, NULL, "s3cret", NULL, NULL},
    };
    test_server *srv = fx ? test_server_start(routes, 3) : NULL;
    if (!srv) {
        FAILF("server");
        free(fx);
        return;
    }
    char *cache = pq_asprintf("%s/hub-cache3", pq_test_tmpdir());
    set_env(cache, test_server_port(srv));
    polyq_err err = {0};
    pq_hub_opts o = {0};
    char *dir = NULL, *commit = NULL;
    CHECK_OK(pq_hub_resolve("polyq-test/lfs", &o, &dir, &commit, &err));
    if (dir) {
        char *link = pq_asprintf("%s/model.safetensors", dir), target[512] = "";
        ssize_t n = readlink(link, target, sizeof target - 1);
        CHECK(n > 0 && !strcmp(target, "../../blobs/linked-model.safetensors"));
        pq_model *m = NULL;
        CHECK_OK(pq_model_open_dir(&m, dir, &err));
        pq_model_free(m);
        free(link);
    }
    free(dir);
    free(commit);
    dir = commit = NULL;
    CHECK_FAILS(pq_hub_resolve("polyq-test/gated", &o, &dir, &commit, &err), POLYQ_NETWORK,
                "needs HF_TOKEN");
    setenv("HF_TOKEN", "s3cret", 1);
    CHECK_OK(pq_hub_resolve("polyq-test/gated", &o, &dir, &commit, &err));
    unsetenv("HF_TOKEN");
    free(dir);
    free(commit);
    free(cache);
    test_server_stop(srv);
    free(fx);
    unsetenv("HF_ENDPOINT");
    unsetenv("HF_HUB_CACHE");
}

/* The names of P's entries, sorted and joined by spaces (a static buffer). */
static const char *entries(const char *dir)
{
    static char out[1024];
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, ".."))
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", out[0] ? " " : "",
                     list[i]->d_name);
        free(list[i]);
    }
    free(list);
    return out;
}

/* Values from the server that could name paths (the commit header, the etag, a redirect to
 * another protocol): refused or made harmless, nothing written outside the cache, a file beside
 * it left as it was. */
TEST(hub_hostile_server_values)
{
    char *fx = fixture_abs("gpt2-tiny-vocab-bf16");
    test_route routes[] = {
        {"/polyq-test/up/resolve/main/", fx, 0, NULL, NULL, "../../../victim", NULL},
        {"/polyq-test/short/resolve/main/", fx, 0, NULL, NULL, "abc", NULL},
        {"/polyq-test/etag/resolve/main/", fx, 0, NULL, NULL, NULL, "../../../victim2"},
        {"/polyq-test/dotetag/resolve/main/", fx, 0, NULL, NULL, NULL, ".."},
        {"/polyq-test/file/resolve/main/", NULL, 0, "file:///etc/hostname", NULL, NULL, NULL},
    };
    test_server *srv = fx ? test_server_start(routes, 5) : NULL;
    if (!srv) {
        FAILF("server");
        free(fx);
        return;
    }
    char *top = pq_asprintf("%s/hostile", pq_test_tmpdir()), *cache = pq_asprintf("%s/cache", top),
         *victim = pq_asprintf("%s/victim", top);
    mkdir(top, 0755);
    pq_test_write(victim, "precious\n");
    set_env(cache, test_server_port(srv));
    polyq_err err = {0};
    pq_hub_opts o = {0};
    char *dir = NULL, *commit = NULL;
    CHECK_FAILS(pq_hub_resolve("polyq-test/up", &o, &dir, &commit, &err), POLYQ_NETWORK,
                "X-Repo-Commit \"../../../victim\" is not a 40-hex commit hash");
    CHECK_FAILS(pq_hub_resolve("polyq-test/short", &o, &dir, &commit, &err), POLYQ_NETWORK,
                "X-Repo-Commit \"abc\"");
    /* an etag that is no safe file name: the blob is named after commit and file instead */
    CHECK_OK(pq_hub_resolve("polyq-test/etag", &o, &dir, &commit, &err));
    free(dir);
    free(commit);
    dir = commit = NULL;
    CHECK_OK(pq_hub_resolve("polyq-test/dotetag", &o, &dir, &commit, &err));
    free(dir);
    free(commit);
    dir = commit = NULL;
    err.msg[0] = 0;
    CHECK(pq_hub_resolve("polyq-test/file", &o, &dir, &commit, &err) != 0 &&
          strstr(err.msg, "download failed"));
    char *txt = NULL;
    CHECK(pq_read_file(victim, 100, &txt, NULL, &err) == 0 && txt && !strcmp(txt, "precious\n"));
    free(txt);
    const char *e = entries(top);
    if (strcmp(e, "cache victim"))
        FAILF("%s holds \"%s\", want only \"cache victim\"", top, e);
    /* every blob stays in its repository's blobs/ */
    char *blobs = pq_asprintf("%s/models--polyq-test--etag/blobs", cache);
    CHECK(strstr(entries(blobs), TEST_COMMIT "-config.json") != NULL);
    free(blobs);
    free(dir);
    free(commit);
    free(victim);
    free(cache);
    free(top);
    test_server_stop(srv);
    free(fx);
    unsetenv("HF_ENDPOINT");
    unsetenv("HF_HUB_CACHE");
}

/* A repository that publishes only a sharded pytorch_model.bin: the index and both shards
 * are fetched and the model opens from the snapshot. */
TEST(hub_pytorch_bin_only_repository)
{
    char *repo = pq_asprintf("%s/binrepo", pq_test_tmpdir());
    mkdir(repo, 0755);
    const char *files[][2] = {
        {"gpt2-tiny-bin-sharded", "config.json"},
        {"gpt2-tiny-bin-sharded", "pytorch_model.bin.index.json"},
        {"gpt2-tiny-bin-sharded", "pytorch_model-00001-of-00002.bin"},
        {"gpt2-tiny-bin-sharded", "pytorch_model-00002-of-00002.bin"},
        {"neox-tiny-f32", "tokenizer.json"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *src = pq_asprintf("%s/%s", files[i][0], files[i][1]);
        char *abs = fixture_abs(src), *dst = pq_asprintf("%s/%s", repo, files[i][1]);
        if (!abs || symlink(abs, dst) != 0)
            FAILF("cannot link %s", dst);
        free(src);
        free(abs);
        free(dst);
    }
    test_route routes[] = {{"/polyq-test/bin/resolve/main/", repo, 0, NULL, NULL, NULL, NULL}};
    test_server *srv = test_server_start(routes, 1);
    if (!srv) {
        FAILF("server");
        free(repo);
        return;
    }
    char *cache = pq_asprintf("%s/hub-cache-bin", pq_test_tmpdir());
    set_env(cache, test_server_port(srv));
    polyq_err err = {0};
    pq_hub_opts o = {0};
    char *dir = NULL, *commit = NULL;
    CHECK_OK(pq_hub_resolve("polyq-test/bin", &o, &dir, &commit, &err));
    if (dir) {
        pq_model *m = NULL;
        CHECK_OK(pq_model_open_dir(&m, dir, &err));
        CHECK(m && m->tok && m->cfg.n_vocab == 300);
        pq_model_free(m);
        CHECK(pq_hub_cached("polyq-test/bin", NULL));
    }
    free(dir);
    free(commit);
    free(cache);
    free(repo);
    test_server_stop(srv);
    unsetenv("HF_ENDPOINT");
    unsetenv("HF_HUB_CACHE");
}

static void tar_add(struct archive *a, const char *name, const char *text)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)strlen(text));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, text, strlen(text));
    archive_entry_free(e);
}

TEST(hub_flores_download_and_unpack)
{
    char *tarball = pq_asprintf("%s/flores.tar.gz", pq_test_tmpdir());
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, tarball);
    tar_add(a, "flores200_dataset/devtest/eng_Latn.devtest", "Hello.\nWorld.\n");
    tar_add(a, "flores200_dataset/dev/eng_Latn.dev", "Dev.\n");
    tar_add(a, "flores200_dataset/devtest/../../evil.devtest", "no\n");
    tar_add(a, "flores200_dataset/README", "not copied\n");
    archive_write_close(a);
    archive_write_free(a);
    test_route routes[] = {{"/flores.tar.gz", tarball, 0, NULL, NULL, NULL, NULL}};
    test_server *srv = test_server_start(routes, 1);
    if (!srv) {
        FAILF("server");
        free(tarball);
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/flores.tar.gz", test_server_port(srv));
    char *cache = pq_asprintf("%s/polyq-cache", pq_test_tmpdir());
    setenv("POLYQ_CACHE", cache, 1);
    setenv("POLYQ_FLORES_URL", url, 1);
    unsetenv("HF_HUB_OFFLINE");
    polyq_err err = {0};
    pq_hub_opts o = {0};
    char *dir = NULL;
    CHECK_OK(pq_flores_resolve(&o, &dir, &err));
    if (dir) {
        char *f = pq_asprintf("%s/devtest/eng_Latn.devtest", dir), *txt = NULL;
        CHECK_OK(pq_read_file(f, 1000, &txt, NULL, &err));
        CHECK(txt && !strcmp(txt, "Hello.\nWorld.\n"));
        char *evil = pq_asprintf("%s/../evil.devtest", dir),
             *readme = pq_asprintf("%s/README", dir);
        CHECK(!pq_file_exists(evil) && !pq_file_exists(readme));
        free(evil);
        free(readme);
        free(txt);
        free(f);
    }
    free(dir);
    dir = NULL;
    /* second time: from the cache, no request */
    int before = test_server_requests(srv);
    CHECK_OK(pq_flores_resolve(&o, &dir, &err));
    CHECK_INT(test_server_requests(srv), before);
    free(dir);
    dir = NULL;
    /* a 404 and the offline message */
    char *cache2 = pq_asprintf("%s/polyq-cache2", pq_test_tmpdir());
    setenv("POLYQ_CACHE", cache2, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/none.tar.gz", test_server_port(srv));
    setenv("POLYQ_FLORES_URL", url, 1);
    CHECK_FAILS(pq_flores_resolve(&o, &dir, &err), POLYQ_NOT_FOUND, "pass --data DIR");
    o.offline = true;
    CHECK_FAILS(pq_flores_resolve(&o, &dir, &err), POLYQ_OFFLINE, "eng_Latn.devtest exists");
    unsetenv("POLYQ_CACHE");
    unsetenv("POLYQ_FLORES_URL");
    test_server_stop(srv);
    free(cache);
    free(cache2);
    free(tarball);
}
