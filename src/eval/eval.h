/* Scoring parallel text with a full-precision model and its quantized copies in lockstep
 * (METRICS.md, "Scoring a sentence"): each sentence alone, preceded by the model's BOS,
 * every sentence token scored; a sentence longer than the context is scored in rolling
 * windows as lm-evaluation-harness does (each later window sees the full context before
 * the tokens it predicts). Both models see the same batch; no logits are written out.
 * Per-sentence sums are kept so statistics can resample sentences. */
#ifndef PQ_EVAL_H
#define PQ_EVAL_H

#include <stdint.h>

#include "eval/corpus.h"
#include "model/model.h"

/* What one language gave, per sentence. q arrays are [n_q][n_sent]. */
typedef struct pq_lang_eval {
    char lang[64];
    size_t n_sent;
    uint64_t bytes, chars, words;
    bool spaced;      /* words are meaningful for this script */
    uint32_t *tokens; /* scored tokens per sentence */
    uint32_t *sbytes; /* UTF-8 bytes per sentence */
    double *nll_fp;   /* nats per sentence */
    int n_q;
    double **nll_q, **kld_q; /* nats per sentence; summed KL over its positions */
    float **kl_pos;          /* [n_q][tokens]: KL at every scored position, in order */
    uint64_t fallback;       /* scored tokens that are unk or byte-fallback tokens */
    uint32_t **agree_q;      /* positions where the top-1 tokens agree */
    /* [n_q][n_sent]: per sentence, the sum over its positions of dp = p_q(t) - p_fp(t), the
     * change in the probability of the token that comes, and of dp^2 (NULL: not measured) */
    double **dp_q, **dp2_q;
} pq_lang_eval;

void pq_lang_eval_free(pq_lang_eval *e);

/* The longest window polyq evaluates: a model's context, at most this many tokens (every
 * FLORES sentence fits in far fewer; longer sentences and documents are scored in rolling
 * windows). Buffers hold a window's logits for every model, so a 32k- or 128k-token context
 * is not allocated whole. */
#define PQ_EVAL_MAX_CONTEXT 4096
static inline int pq_eval_context(int n_ctx)
{
    return n_ctx < PQ_EVAL_MAX_CONTEXT ? n_ctx : PQ_EVAL_MAX_CONTEXT;
}

/* The most quantized models one evaluation (or one report) compares with its full-precision
 * model. */
#define PQ_MAX_SPECS 32

typedef void (*pq_progress_fn)(void *ctx, size_t done, size_t total);

typedef struct pq_eval_opts {
    int n_threads;           /* 0 = 1 */
    int batch_tokens;        /* tokens per forward batch; 0 = 512 */
    pq_progress_fn progress; /* called after each batch; may be NULL */
    void *progress_ctx;
    int stride;  /* > 0: document mode (pq_eval_doc_windows) with this stride */
    int context; /* > 0: windows of at most this many tokens (the model's window otherwise) */
    /* document mode scored as llama.cpp's llama-perplexity --ppl-stride scores a file
     * (pq_eval_llama_windows) instead of the Hugging Face recipe */
    bool llama_ppl;
} pq_eval_opts;

typedef struct pq_evaluator pq_evaluator;

/* One forward sequence: input tokens store[in_off .. in_off+len); rows first..first+n_tgt-1
 * predict store[tgt_off ..] in order. */
typedef struct pq_window {
    int sent;  /* sentence index */
    int len;   /* input tokens */
    int first; /* first scored row */
    int n_tgt; /* scored rows */
    size_t in_off, tgt_off;
    size_t unit_off; /* document mode: the unit (line) of each target, in units[unit_off ..] */
} pq_window;

/* Cuts each sentence's ids into windows of at most ctx tokens, as lm-evaluation-harness's
 * get_rolling_token_windows(context_len=1): the first window is [bos, t_0 .. t_{k-2}]
 * predicting t_0 .. t_{k-1}; each later one is the ctx tokens before its last target.
 * *out (free) and store (pq_ids_free) belong to the caller. 0 or -1 (out of memory). */
int pq_eval_windows(const pq_ids *ids, size_t n_sent, int32_t bos, int ctx, pq_window **out,
                    size_t *n_out, pq_ids *store);

/* Pseudo-log-likelihood windows for masked LMs (Salazar et al. 2020): for each token t_i of
 * each sentence, one sequence pre + t_0 .. t_{i-1} mask t_{i+1} .. + post scoring row i with
 * target t_i. A sentence longer than ctx - |pre| - |post| tokens is seen through a span of
 * that many tokens centred on the masked one. Same ownership and return as pq_eval_windows. */
int pq_eval_pll_windows(const pq_ids *ids, size_t n_sent, const int32_t *pre, int n_pre,
                        const int32_t *post, int n_post, int32_t mask, int ctx, pq_window **out,
                        size_t *n_out, pq_ids *store);

/* Document mode (WikiText-style): the lines' tokens, each line's followed by the tokens of
 * newline (pq_evaluate passes the document tokenized as one text, split by line, each line's
 * newline in its ids, and an empty newline), form one stream after bos; windows of ctx input tokens
 * start every `stride` tokens and score only the tokens no earlier window scored (the Hugging Face
 * perplexity recipe; stride = ctx scores each token with whatever context precedes it in its
 * window). Every scored token belongs to its line (units), the unit of the statistics. 0 or -1 (out
 * of memory). */
/* llama-perplexity's strided protocol (perplexity_v2 with --ppl-stride): the stream is the
 * lines' tokens after bos (none when bos < 0: a vocabulary whose add_bos_token is false); chunk
 * i is the ctx tokens from i * stride, its last `stride` positions scored (the first chunk's
 * earlier tokens are never scored), as many chunks as start with a whole chunk inside the
 * stream, (len - ctx + stride - 1) / stride. The token llama.cpp writes over each chunk's first
 * position after computing it changes nothing. Same ownership as pq_eval_doc_windows; 0, -1
 * (out of memory) or 1 (fewer than 2 ctx tokens, which llama-perplexity refuses). */
int pq_eval_llama_windows(const pq_ids *ids, size_t n_lines, int32_t bos, int ctx, int stride,
                          pq_window **out, size_t *n_out, pq_ids *store, pq_ids *units);
int pq_eval_doc_windows(const pq_ids *ids, size_t n_lines, const pq_ids *newline, int32_t bos,
                        int ctx, int stride, pq_window **out, size_t *n_out, pq_ids *store,
                        pq_ids *units);

/* fp and q[0..n_q) must share the configuration (q made by pq_model_quantize from fp). */
int pq_evaluator_create(pq_evaluator **out, const pq_model *fp, pq_model *const *q, int n_q,
                        const pq_eval_opts *opts, polyq_err *err);
void pq_evaluator_free(pq_evaluator *ev);
/* The forward passes ev has run: of the full-precision model (one per batch) and of the
 * quantized ones (n_q per batch). */
void pq_evaluator_passes(const pq_evaluator *ev, uint64_t *fp, uint64_t *q);
int pq_evaluate(pq_evaluator *ev, const pq_corpus *c, pq_lang_eval *out, polyq_err *err);

#endif
