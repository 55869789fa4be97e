/* polyq: measures how quantizing a language model treats each human language.
 *
 * Public API. Handles are opaque; every fallible call returns a polyq status (0 = OK) and
 * fills a caller-owned polyq_err whose message names the file, the item and the problem.
 * Options structs zeroed with {0} mean "defaults". Nothing in the library exits or aborts.
 *
 * A program: open a model, quantize it by spec, evaluate languages into a results handle,
 * write JSON or CSV, free everything (free quantized copies before their base):
 *
 *   polyq_err err = {0};
 *   polyq_model *base, *q;
 *   polyq_results *r;
 *   polyq_eval_opts eo = {.data = "flores200", .langs = "eng_Latn,hin_Deva"};
 *   if (polyq_model_open(&base, "gpt2", NULL, &err) || polyq_quantize(&q, base, "int4-g128", NULL,
 * &err) || polyq_evaluate(&r, base, &q, 1, &eo, &err) || polyq_results_write_json(r, "r.json",
 * &err)) fprintf(stderr, "%s\n", err.msg);
 *
 * Build with pkg-config --cflags --libs polyq. */
#ifndef POLYQ_H
#define POLYQ_H

#include <stddef.h>
#include <stdint.h>

#define POLYQ_VERSION "0.1.0"

/* What libpolyq.so exports: these functions alone (the library is built with hidden symbols). */
#if defined(__GNUC__)
#define POLYQ_API __attribute__((visibility("default")))
#else
#define POLYQ_API
#endif

/* X(name, value, text) */
#define POLYQ_STATUS_MAP(X)                                                                        \
    X(OK, 0, "ok")                                                                                 \
    X(NOMEM, 1, "out of memory")                                                                   \
    X(IO, 2, "input/output error")                                                                 \
    X(NOT_FOUND, 3, "not found")                                                                   \
    X(FORMAT, 4, "malformed file")                                                                 \
    X(UNSUPPORTED, 5, "not supported")                                                             \
    X(INVALID_ARG, 6, "invalid argument")                                                          \
    X(NETWORK, 7, "network error")                                                                 \
    X(OFFLINE, 8, "not available offline")                                                         \
    X(TEXT, 9, "invalid text")                                                                     \
    X(NUMERIC, 10, "non-finite number")

enum {
#define PQ_X(name, value, text) POLYQ_##name = value,
    POLYQ_STATUS_MAP(PQ_X)
#undef PQ_X
};

typedef struct polyq_err {
    int code;
    char msg[1024];
} polyq_err;

/* Static text for a status code ("unknown status" for others). */
POLYQ_API const char *polyq_status_name(int code);
POLYQ_API const char *polyq_status_text(int code);
/* The library's version, POLYQ_VERSION when header and library agree. */
POLYQ_API const char *polyq_version(void);

/* ---- models --------------------------------------------------------------------------------
 * A full-precision model, or a quantized copy of one (which borrows from its base: free the
 * copy first). */
typedef struct polyq_model polyq_model;

typedef struct polyq_open_opts {
    const char *revision; /* hub branch, tag or commit; NULL: main */
    int offline;          /* never use the network */
} polyq_open_opts;

/* name: a Hugging Face model folder, a GGUF file, or a hub id (from the Hugging Face cache,
 * downloaded when missing and allowed). opts may be NULL. */
POLYQ_API int polyq_model_open(polyq_model **out, const char *name, const polyq_open_opts *opts,
                               polyq_err *err);
POLYQ_API void polyq_model_free(polyq_model *m);
/* config.json's model_type ("gpt2", "llama", ...) and the spec of a quantized copy ("fp32" for
 * a base model); static for the model's life. */
POLYQ_API const char *polyq_model_type(const polyq_model *m);
POLYQ_API const char *polyq_model_spec(const polyq_model *m);
/* Bits per weight of the block linear layers (32 for a full-precision model). */
POLYQ_API double polyq_model_bits_per_weight(const polyq_model *m);

/* ---- quantizing -------------------------------------------------------------------------- */

typedef struct polyq_quant_opts {
    const char *data;        /* FLORES-200 folder for calibration text (calibrated specs) */
    const char *calib_langs; /* comma-separated FLORES codes or "all"; NULL: eng_Latn */
    const char *calib_file;  /* one sample per line instead of FLORES */
    size_t calib_samples;    /* 0: 128 */
    int calib_tokens;        /* per sample; 0: the model's context */
    const char
        *eval_split; /* the split that will be evaluated (never calibrated on); NULL: devtest */
    int threads;     /* 0: 1 */
} polyq_quant_opts;

/* base quantized by spec, any of polyq eval --quant's (int4-g128, q4_k_m, nf4, gptq-int4-g128,
 * awq-int4-g128, smoothquant, ...). opts may be NULL for uncalibrated specs. */
POLYQ_API int polyq_quantize(polyq_model **out, const polyq_model *base, const char *spec,
                             const polyq_quant_opts *opts, polyq_err *err);
/* A quantized copy written to path: a folder (polyq-quant.safetensors) or FILE.gguf. */
POLYQ_API int polyq_quantized_save(const polyq_model *q, const char *path, polyq_err *err);
/* One written earlier (by polyq_quantized_save, polyq quantize or llama-quantize) as a copy of
 * base. */
POLYQ_API int polyq_quantized_load(polyq_model **out, const polyq_model *base, const char *path,
                                   polyq_err *err);

/* ---- evaluating ----------------------------------------------------------------------------- */

typedef struct polyq_results polyq_results;

typedef struct polyq_eval_opts {
    const char *data;        /* FLORES-200 folder, or lang=file[,lang=file...] (required) */
    const char *split;       /* NULL: devtest */
    const char *langs;       /* comma-separated FLORES codes; NULL: all */
    const char *ref;         /* reference language of the disparity ratios; NULL: eng_Latn */
    size_t max_sentences;    /* per language; 0: all */
    int threads;             /* 0: 1; the numbers do not depend on it */
    int batch_tokens;        /* 0: 512 */
    int bootstrap;           /* resamples for the intervals; 0: 1000 */
    unsigned long long seed; /* bootstrap seed */
    int document;            /* each file as one document */
    int stride;              /* document mode's stride; 0: half the context */
} polyq_eval_opts;

/* base and its quantized copies q[0..n_q) scored on the same text, every language. */
POLYQ_API int polyq_evaluate(polyq_results **out, const polyq_model *base, polyq_model *const *q,
                             int n_q, const polyq_eval_opts *opts, polyq_err *err);
POLYQ_API void polyq_results_free(polyq_results *r);
POLYQ_API size_t polyq_results_n_langs(const polyq_results *r);
POLYQ_API int polyq_results_n_specs(const polyq_results *r);
POLYQ_API const char *polyq_results_lang(const polyq_results *r, size_t lang);
POLYQ_API const char *polyq_results_spec(const polyq_results *r, int spec);

/* A number with its 95% bootstrap interval. */
typedef struct polyq_value {
    double value, lo, hi;
} polyq_value;
/* metric: "delta_bits_per_sentence", "delta_bpb", "delta_nll_per_token", "kld",
 * "kld_per_sentence", "top1_agree" or "rel_degradation" (METRICS.md), of language lang under
 * quantized model spec. */
POLYQ_API int polyq_results_get(const polyq_results *r, size_t lang, int spec, const char *metric,
                                polyq_value *out, polyq_err *err);
/* The results file polyq eval --out writes (every number with the run's provenance), and the
 * tidy CSV polyq report writes; each written whole, then renamed into place. */
POLYQ_API int polyq_results_write_json(const polyq_results *r, const char *path, polyq_err *err);
POLYQ_API int polyq_results_write_csv(const polyq_results *r, const char *path, polyq_err *err);

#endif
