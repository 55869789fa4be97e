/* Models named by Hugging Face hub id ("gpt2", "openai-community/gpt2"): found in the
 * standard cache, or downloaded into it over HTTPS with libcurl, laid out exactly as
 * huggingface_hub lays it out so either tool can reuse the other's files:
 *   <cache>/models--<org>--<name>/refs/<revision>        holds the commit hash
 *   <cache>/models--<org>--<name>/blobs/<etag>           file contents
 *   <cache>/models--<org>--<name>/snapshots/<commit>/<f> symlink to ../../blobs/<etag>
 * <cache> = $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub. Downloads honour HF_ENDPOINT, HF_TOKEN (or the saved token
 * file) and HF_HUB_OFFLINE. A file is written as blobs/<etag>.incomplete and renamed only
 * when complete, so the cache never holds half a file where a whole one is expected.
 * Also: the FLORES-200 release, downloaded once into polyq's own cache. */
#ifndef PQ_HUB_H
#define PQ_HUB_H

#include <stdbool.h>

#include "base/status.h"

typedef struct pq_hub_opts {
    const char *revision; /* NULL = "main" */
    bool offline;         /* never use the network (HF_HUB_OFFLINE=1 also does this) */
    bool progress;        /* progress bar on stderr */
} pq_hub_opts;

/* Whether `name` has the form of a hub id (org/name or name). */
bool pq_hub_is_id(const char *name);
/* The cache folder (heap string). */
char *pq_hub_cache_dir(void);
/* Finds or downloads the files of a model; *dir (heap) is the snapshot folder and
 * *commit (heap) its commit hash. */
int pq_hub_resolve(const char *id, const pq_hub_opts *o, char **dir, char **commit, polyq_err *err);

/* Whether the cache already holds a complete snapshot of id at revision (NULL = main). */
bool pq_hub_cached(const char *id, const char *revision);

/* Finds or downloads FLORES-200 ($POLYQ_FLORES_URL or the NLLB release tarball) into
 * <polyq cache>/flores200 (with dev/ and devtest/); *dir is a heap string. */
int pq_flores_resolve(const pq_hub_opts *o, char **dir, polyq_err *err);

#endif
