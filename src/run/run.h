/* Whole jobs built from the other libraries, for the command line, the public API and the
 * tests alike: finding and opening a model, building a calibration set, making a quantized
 * model from any spec, the memory guard, and one evaluation run from models to the numbers and
 * provenance a results file holds. The sweep engine is in run/sweep.h. Nothing here prints for
 * the user: notes and progress go to the caller's callbacks. */
#ifndef PQ_RUN_H
#define PQ_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/corpus.h"
#include "eval/eval.h"
#include "eval/memory.h"
#include "eval/metrics.h"
#include "hub/hub.h"
#include "model/model.h"
#include "report/report.h"

/* ---- models ----------------------------------------------------------------------------- */

/* Whether path is a GGUF file (its first four bytes). */
bool pq_is_gguf_file(const char *path);
/* MODEL as a folder, a GGUF file or a hub id (downloaded when missing and allowed): *path and
 * *rev (hub commit, NULL for local files) are heap strings. */
int pq_model_locate(const char *name, const pq_hub_opts *ho, char **path, char **rev,
                    polyq_err *err);
/* The same, then opened (a folder or a GGUF file). */
int pq_model_open_any(const char *name, const pq_hub_opts *ho, pq_model **m, char **path,
                      char **rev, polyq_err *err);

/* ---- calibration -------------------------------------------------------------------------- */

typedef struct pq_calib_opts {
    const char *langs;      /* comma-separated FLORES codes or "all" (default eng_Latn) */
    const char *file;       /* one sample per line instead of FLORES, or NULL */
    size_t samples;         /* in all, an equal share per language (default 128) */
    int max_tokens;         /* per sample; 0: the model's context */
    const char *eval_split; /* the split being evaluated: calibration never reads it */
    const char *data;       /* the FLORES folder */
} pq_calib_opts;

/* Calibration sequences, each with the model's start token (an encoder's special tokens
 * around it), cut to the context; desc is a JSON object text describing them. */
typedef struct pq_calib_set {
    pq_ids store;
    int *starts; /* n_seq + 1 offsets into store */
    int n_seq;
    char *desc;
} pq_calib_set;

/* The first sentences of each language's FLORES-200 dev file, or the lines of o->file. */
int pq_calib_set_build(pq_calib_set *out, const pq_model *m, const pq_calib_opts *o,
                       polyq_err *err);
void pq_calib_set_free(pq_calib_set *s);

/* ---- quantizing ----------------------------------------------------------------------------- */

/* Whether a spec needs calibration text (GPTQ, AWQ, SmoothQuant). */
bool pq_qspec_calibrated(const pq_qspec *s);
/* base quantized by spec with whatever method it names: round-to-nearest and the block formats,
 * GPTQ, AWQ, SmoothQuant, W8A8, LLM.int8(). cal is required for calibrated specs (batch_tokens
 * per forward pass over it) and ignored otherwise. */
int pq_quantize_spec(pq_model **out, const pq_model *base, const pq_qspec *spec,
                     const pq_calib_set *cal, int batch_tokens, int n_threads, polyq_err *err);
/* Each comma-separated spec of list into specs[0..*n) (at most max). */
int pq_qspec_parse_list(const char *list, pq_qspec *specs, int max, int *n, polyq_err *err);
/* A quantized model written earlier: polyq's folder (polyq-quant.safetensors) or a GGUF file of
 * base; *calibration receives the calibration description the folder records (heap, or NULL). */
int pq_quantized_load(pq_model **out, const pq_model *base, const char *path, char **calibration,
                      polyq_err *err);

/* ---- the memory guard ---------------------------------------------------------------------- */

/* The estimate of evaluating the model at dir with the specs (plan; window_tokens as
 * pq_memory_estimate takes it), refused with one message when it exceeds max_bytes (0: the
 * memory available now; no limit when unknown). */
int pq_memory_guard(const char *model_name, const char *path, const pq_qspec *specs, int n_q,
                    int batch_tokens, int window_tokens, int threads, double max_bytes,
                    pq_mem_plan *plan, polyq_err *err);

/* ---- an evaluation run ---------------------------------------------------------------------- */

typedef void (*pq_note_fn)(void *ctx, const char *msg);
/* After each batch: language li of n_lang (lang), done of total windows. */
/* Progress within language li of n_lang (done of total windows), and of the whole run:
 * frac_all weighs each language by the size of its text (parallel text: the same content, so
 * a fair proxy of its tokens), which keeps an estimate of the time left from growing when the
 * languages that need more tokens come last. */
typedef void (*pq_run_progress_fn)(void *ctx, const char *lang, size_t li, size_t n_lang,
                                   size_t done, size_t total, double frac_all);

/* One language finished: its sentences (units in document mode), scored tokens and the seconds
 * it took. */
typedef void (*pq_run_lang_done_fn)(void *ctx, const char *lang, size_t li, size_t n_lang,
                                    size_t sentences, uint64_t tokens, double seconds);

typedef struct pq_run_opts {
    const char *data;          /* a FLORES folder or lang=path pairs (pq_dataset_open) */
    const char *split;         /* NULL: devtest */
    const char *langs;         /* comma-separated, or NULL / "all" */
    const char *ref;           /* reference language of the disparity ratios; NULL: eng_Latn */
    size_t max_sentences;      /* per language, 0: all */
    int threads, batch_tokens; /* 0: 1 and 512 */
    int n_boot;                /* bootstrap resamples, 0: 1000 */
    unsigned long long seed;
    bool document;   /* each file as one document */
    int stride;      /* document mode's stride; 0: half the context */
    int context;     /* > 0: windows of at most this many tokens */
    bool llama_ppl;  /* document mode as llama-perplexity --ppl-stride scores a file */
    pq_note_fn note; /* what the run decided for the user (may be NULL) */
    pq_run_progress_fn progress;
    pq_run_lang_done_fn lang_done; /* may be NULL */
    void *ctx;
    /* for the provenance: the command line (may be NULL), and the files or folders of models
     * read besides the full-precision one (--quantized) */
    int argc;
    char *const *argv;
    const char *const *extra_models;
    int n_extra_models;
    /* per quantized model (NULL, or entries NULL): the file or folder it was read from, and its
     * calibration set (JSON text as pq_calib_set's desc); two entries of one spec are named
     * spec@calibration in the results */
    const char *const *q_sources;
    const char *const *q_calibrations;
} pq_run_opts;

/* The languages of a run, checked to exist before anything slow starts: the reference added
 * in front when it is in the data but not asked for (and quantized models are compared). */
typedef struct pq_run_langs {
    pq_dataset ds;
    char **langs;
    size_t n;
    int ref_idx; /* -1: the reference is not evaluated */
} pq_run_langs;
int pq_run_langs_open(pq_run_langs *out, const pq_run_opts *o, bool compare, polyq_err *err);
void pq_run_langs_free(pq_run_langs *l);

/* Everything a results file holds: per-language evaluations and metrics, the summary per
 * spec, and the provenance (info; its strings are owned here). */
typedef struct pq_run {
    pq_run_info info;
    size_t n_lang;
    pq_lang_eval *res;
    pq_lang_metrics *met;
    pq_disparity_summary summary[PQ_MAX_SPECS];
    int n_q;
    /* owned copies behind info */
    char *model_id, *model_path, *revision, *architecture, *model_type, *dtype, *data_path,
        *ref_lang, *calibration, *split;
    char *q_names[PQ_MAX_SPECS];
    const char *q_methods[PQ_MAX_SPECS];
    double q_bpw[PQ_MAX_SPECS];
    json_t *provenance; /* pq_prov_new's, with the files read */
    char *q_sources[PQ_MAX_SPECS], *q_calibs[PQ_MAX_SPECS];
    char *q_details[PQ_MAX_SPECS]; /* the spec in words, and how its linears are stored */
    char *q_formats[PQ_MAX_SPECS]; /* pq_model_formats_json */
    char *prefix_token;            /* the text of the token sentences are scored after */
} pq_run;

/* Evaluates fp and q[0..n_q) on the languages l (from pq_run_langs_open with the same o).
 * model_id, path, rev and calibration (JSON text or NULL) go into the provenance; t0 is when
 * the run started (pq_now()), for its wall time. */
int pq_run_eval(pq_run **out, const pq_model *fp, pq_model *const *q, int n_q,
                const pq_run_langs *l, const pq_run_opts *o, const char *model_id, const char *path,
                const char *rev, const char *calibration, double t0, polyq_err *err);
void pq_run_free(pq_run *r);
/* Every sentence's numbers as JSON Lines (like lm-evaluation-harness' --log_samples): per
 * language and sentence its line number, tokens, bytes, NLL in full precision and per entry,
 * and per entry the summed KL and the top-1 agreement. Written whole or not at all. */
int pq_run_write_sentences(const pq_run *r, const char *path, polyq_err *err);

#endif
