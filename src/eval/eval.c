/* Lockstep evaluation (see eval.h). A batch packs whole windows up to batch_tokens; the
 * full-precision logits are reduced per scored row (log-sum-exp, target log-prob, argmax)
 * and kept only for the rows of the batch; each quantized model then runs on the same batch
 * and its rows are compared with them: KL(p_fp || p_q) over the vocabulary in double,
 * top-1 agreement with ties to the lowest id. Row results are summed into sentences in row
 * order after each batch, so the numbers do not depend on the thread count. */
#include "eval/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

struct pq_evaluator {
    const pq_model *fp;
    pq_model *const *q;
    int n_q;
    pq_eval_opts opts;
    pq_ops ops;
    pq_acts acts;
    int max_batch;
    float *logits_fp, *logits_q; /* (max_batch, V) */
    /* per row of the current batch */
    int32_t *target; /* -1: row not scored */
    double *lse_fp, *lp_fp, *lp_q, *kl;
    int32_t *arg_fp, *arg_q;
    /* masked LMs: the mask token and the post-processor's tokens around each sentence */
    int32_t mask;
    const int32_t *pre, *post;
    int n_pre, n_post;
    uint64_t passes_fp, passes_q;
};

void pq_evaluator_passes(const pq_evaluator *ev, uint64_t *fp, uint64_t *q)
{
    *fp = ev->passes_fp;
    *q = ev->passes_q;
}

void pq_lang_eval_free(pq_lang_eval *e)
{
    if (!e)
        return;
    free(e->tokens);
    free(e->sbytes);
    free(e->nll_fp);
    for (int i = 0; i < e->n_q; i++) {
        if (e->nll_q)
            free(e->nll_q[i]);
        if (e->kld_q)
            free(e->kld_q[i]);
        if (e->agree_q)
            free(e->agree_q[i]);
        if (e->dp_q)
            free(e->dp_q[i]);
        if (e->dp2_q)
            free(e->dp2_q[i]);
        if (e->kl_pos)
            free(e->kl_pos[i]);
    }
    free(e->nll_q);
    free(e->kld_q);
    free(e->agree_q);
    free(e->dp_q);
    free(e->dp2_q);
    free(e->kl_pos);
    memset(e, 0, sizeof *e);
}

void pq_evaluator_free(pq_evaluator *ev)
{
    if (!ev)
        return;
    pq_ops_free(&ev->ops);
    pq_acts_free(&ev->acts);
    free(ev->logits_fp);
    free(ev->logits_q);
    free(ev->target);
    free(ev->lse_fp);
    free(ev->lp_fp);
    free(ev->lp_q);
    free(ev->kl);
    free(ev->arg_fp);
    free(ev->arg_q);
    free(ev);
}

/* the window of a model's evaluation: --context, else the model's (at most
 * PQ_EVAL_MAX_CONTEXT) */
static int eval_context(const pq_model *fp, const pq_eval_opts *o)
{
    int c = pq_eval_context(fp->cfg.n_ctx);
    return o->context > 0 && o->context < c ? o->context : c;
}

int pq_evaluator_create(pq_evaluator **out, const pq_model *fp, pq_model *const *q, int n_q,
                        const pq_eval_opts *opts, polyq_err *err)
{
    *out = NULL;
    if (!fp->tok)
        return pq_fail(err, POLYQ_NOT_FOUND,
                       "%s: no tokenizer.json (or vocab.json + merges.txt): cannot score text",
                       fp->dir);
    int32_t bos = pq_model_bos(fp), mask = -1;
    if (fp->cfg.encoder) {
        if (!fp->head_dense.n_out)
            return pq_fail(err, POLYQ_UNSUPPORTED,
                           "%s: an encoder without a masked-LM head cannot score text", fp->dir);
        mask = pq_tok_token_id(fp->tok, "[MASK]");
        if (mask < 0)
            mask = pq_tok_token_id(fp->tok, "<mask>");
        if (mask < 0 || mask >= fp->cfg.n_vocab)
            return pq_fail(err, POLYQ_FORMAT, "%s: the tokenizer has no [MASK] or <mask> token",
                           fp->dir);
    } else if (bos < 0 || bos >= fp->cfg.n_vocab) {
        return pq_fail(err, POLYQ_FORMAT, "%s: no usable BOS/EOS token to start sequences with",
                       fp->dir);
    }
    if (opts->stride > 0 && fp->cfg.encoder)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: document mode scores left to right; a masked LM has no such order",
                       fp->dir);
    if (opts->context > pq_eval_context(fp->cfg.n_ctx))
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "--context %d exceeds the %d-token window polyq evaluates for this model "
                       "(its context is %d)",
                       opts->context, pq_eval_context(fp->cfg.n_ctx), fp->cfg.n_ctx);
    if (opts->context > 0 && opts->stride > opts->context)
        return pq_fail(err, POLYQ_INVALID_ARG, "--stride %d exceeds --context %d", opts->stride,
                       opts->context);
    if (opts->llama_ppl && (opts->stride < 1 || opts->stride >= eval_context(fp, opts)))
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "llama-perplexity's protocol scores the last --stride tokens of each "
                       "window: --stride %d must be below the window of %d tokens",
                       opts->stride, eval_context(fp, opts));
    if (opts->stride > pq_eval_context(fp->cfg.n_ctx))
        return fp->cfg.n_ctx <= PQ_EVAL_MAX_CONTEXT
                   ? pq_fail(err, POLYQ_INVALID_ARG,
                             "--stride %d exceeds the model's context of %d tokens", opts->stride,
                             fp->cfg.n_ctx)
                   : pq_fail(err, POLYQ_INVALID_ARG,
                             "--stride %d exceeds the %d-token window polyq evaluates (the "
                             "model's context is %d)",
                             opts->stride, PQ_EVAL_MAX_CONTEXT, fp->cfg.n_ctx);
    pq_evaluator *ev = calloc(1, sizeof *ev);
    if (!ev)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    ev->mask = mask;
    pq_tok_special_around(fp->tok, &ev->pre, &ev->n_pre, &ev->post, &ev->n_post);
    ev->fp = fp;
    ev->q = q;
    ev->n_q = n_q;
    ev->opts = *opts;
    if (ev->opts.n_threads < 1)
        ev->opts.n_threads = 1;
    if (ev->opts.batch_tokens < 1)
        ev->opts.batch_tokens = 512;
    int ctx = eval_context(fp, &ev->opts);
    ev->max_batch = ev->opts.batch_tokens > ctx ? ev->opts.batch_tokens : ctx;
    size_t M = (size_t)ev->max_batch, V = (size_t)fp->cfg.n_vocab;
    int max_k = fp->cfg.n_inner > fp->cfg.n_embd ? fp->cfg.n_inner : fp->cfg.n_embd;
    if (pq_ops_init(&ev->ops, ev->opts.n_threads, max_k, ctx) ||
        pq_acts_init(&ev->acts, &fp->cfg, ev->max_batch) ||
        !(ev->logits_fp = pq_alloc_array(M * V, sizeof(float))) ||
        (n_q && !(ev->logits_q = pq_alloc_array(M * V, sizeof(float)))) ||
        !(ev->target = pq_alloc_array(M, sizeof(int32_t))) ||
        !(ev->lse_fp = pq_alloc_array(M, sizeof(double))) ||
        !(ev->lp_fp = pq_alloc_array(M, sizeof(double))) ||
        !(ev->lp_q = pq_alloc_array(M, sizeof(double))) ||
        !(ev->kl = pq_alloc_array(M, sizeof(double))) ||
        !(ev->arg_fp = pq_alloc_array(M, sizeof(int32_t))) ||
        !(ev->arg_q = pq_alloc_array(M, sizeof(int32_t)))) {
        pq_evaluator_free(ev);
        return pq_fail(
            err, POLYQ_NOMEM,
            "out of memory for a batch of %d tokens x %zu vocabulary (try --batch-tokens smaller)",
            (int)M, V);
    }
    *out = ev;
    return 0;
}

/* log-sum-exp and argmax (lowest id on ties) of one row, in double */
static double row_lse(const float *x, int V, int32_t *arg)
{
    float mx = x[0];
    int32_t a = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > mx) {
            mx = x[i];
            a = i;
        }
    double s = 0; /* terms in float, the sum in double */
    for (int i = 0; i < V; i++)
        s += expf(x[i] - mx);
    *arg = a;
    return mx + log(s);
}

typedef struct {
    pq_evaluator *ev;
    bool quant;
} row_job;

static void row_task(void *ctx, size_t r, int thread)
{
    row_job *j = ctx;
    pq_evaluator *ev = j->ev;
    if (ev->target[r] < 0)
        return;
    int V = ev->fp->cfg.n_vocab;
    const float *f = ev->logits_fp + r * (size_t)V;
    if (!j->quant) {
        ev->lse_fp[r] = row_lse(f, V, &ev->arg_fp[r]);
        ev->lp_fp[r] = f[ev->target[r]] - ev->lse_fp[r];
        return;
    }
    const float *q = ev->logits_q + r * (size_t)V;
    double lse_q = row_lse(q, V, &ev->arg_q[r]);
    ev->lp_q[r] = q[ev->target[r]] - lse_q;
    /* KL(p_fp || p_q) = sum_i p_fp(i) (log p_fp(i) - log p_q(i)) */
    double kl = 0, lse_f = ev->lse_fp[r];
    float shift = (float)lse_f;
    for (int i = 0; i < V; i++) {
        double lpf = f[i] - lse_f, lpq = q[i] - lse_q;
        kl += expf(f[i] - shift) * (lpf - lpq);
    }
    ev->kl[r] = kl > 0 ? kl : 0; /* rounding can give -1e-17 for identical rows */
}

static int alloc_result(pq_lang_eval *e, size_t n, int n_q)
{
    e->n_sent = n;
    e->n_q = n_q;
    e->tokens = pq_calloc_array(n, sizeof *e->tokens);
    e->sbytes = pq_calloc_array(n, sizeof *e->sbytes);
    e->nll_fp = pq_calloc_array(n, sizeof *e->nll_fp);
    e->nll_q = pq_calloc_array(n_q ? (size_t)n_q : 1, sizeof *e->nll_q);
    e->kld_q = pq_calloc_array(n_q ? (size_t)n_q : 1, sizeof *e->kld_q);
    e->agree_q = pq_calloc_array(n_q ? (size_t)n_q : 1, sizeof *e->agree_q);
    e->kl_pos = pq_calloc_array(n_q ? (size_t)n_q : 1, sizeof *e->kl_pos);
    e->dp_q = pq_calloc_array(n_q ? (size_t)n_q : 1, sizeof *e->dp_q);
    e->dp2_q = pq_calloc_array(n_q ? (size_t)n_q : 1, sizeof *e->dp2_q);
    if (!e->tokens || !e->sbytes || !e->nll_fp || !e->nll_q || !e->kld_q || !e->agree_q ||
        !e->kl_pos || !e->dp_q || !e->dp2_q)
        return -1;
    for (int i = 0; i < n_q; i++)
        if (!(e->nll_q[i] = pq_calloc_array(n, sizeof(double))) ||
            !(e->kld_q[i] = pq_calloc_array(n, sizeof(double))) ||
            !(e->agree_q[i] = pq_calloc_array(n, sizeof(uint32_t))) ||
            !(e->dp_q[i] = pq_calloc_array(n, sizeof(double))) ||
            !(e->dp2_q[i] = pq_calloc_array(n, sizeof(double))))
            return -1;
    return 0;
}

int pq_eval_windows(const pq_ids *ids, size_t n_sent, int32_t bos, int ctx, pq_window **out,
                    size_t *n_out, pq_ids *store)
{
    size_t cap = 0;
    *out = NULL;
    *n_out = 0;
    for (size_t s = 0; s < n_sent; s++) {
        const int32_t *t = ids[s].v;
        size_t n = ids[s].n, predicted = 0;
        while (predicted < n) {
            if (*n_out == cap) {
                cap = cap ? cap * 2 : 256;
                pq_window *w = realloc(*out, cap * sizeof *w);
                if (!w)
                    return -1;
                *out = w;
            }
            pq_window *w = &(*out)[(*n_out)++];
            w->sent = (int)s;
            w->in_off = store->n;
            if (predicted == 0) {
                size_t k = n < (size_t)ctx ? n : (size_t)ctx;
                if (pq_ids_push(store, bos))
                    return -1;
                for (size_t i = 0; i + 1 < k; i++)
                    if (pq_ids_push(store, t[i]))
                        return -1;
                w->len = (int)k;
                w->first = 0;
                w->n_tgt = (int)k;
                w->tgt_off = store->n;
                for (size_t i = 0; i < k; i++)
                    if (pq_ids_push(store, t[i]))
                        return -1;
                predicted = k;
            } else {
                size_t pl = n - predicted < (size_t)ctx ? n - predicted : (size_t)ctx;
                size_t end = predicted + pl;
                for (size_t i = end - (size_t)ctx - 1; i < end - 1; i++)
                    if (pq_ids_push(store, t[i]))
                        return -1;
                w->len = ctx;
                w->first = ctx - (int)pl;
                w->n_tgt = (int)pl;
                w->tgt_off = store->n;
                for (size_t i = end - pl; i < end; i++)
                    if (pq_ids_push(store, t[i]))
                        return -1;
                predicted = end;
            }
        }
    }
    return 0;
}

int pq_eval_pll_windows(const pq_ids *ids, size_t n_sent, const int32_t *pre, int n_pre,
                        const int32_t *post, int n_post, int32_t mask, int ctx, pq_window **out,
                        size_t *n_out, pq_ids *store)
{
    size_t cap = 0, span = ctx > n_pre + n_post ? (size_t)(ctx - n_pre - n_post) : 1;
    *out = NULL;
    *n_out = 0;
    for (size_t s = 0; s < n_sent; s++) {
        const int32_t *t = ids[s].v;
        size_t n = ids[s].n, len = n < span ? n : span;
        for (size_t i = 0; i < n; i++) {
            if (*n_out == cap) {
                cap = cap ? cap * 2 : 256;
                pq_window *w = realloc(*out, cap * sizeof *w);
                if (!w)
                    return -1;
                *out = w;
            }
            /* the span [a, a + len) holding token i, centred on it where the sentence allows */
            size_t a = i > len / 2 ? i - len / 2 : 0;
            if (a + len > n)
                a = n - len;
            pq_window *w = &(*out)[(*n_out)++];
            w->sent = (int)s;
            w->in_off = store->n;
            w->len = n_pre + (int)len + n_post;
            w->first = n_pre + (int)(i - a);
            w->n_tgt = 1;
            for (int k = 0; k < n_pre; k++)
                if (pq_ids_push(store, pre[k]))
                    return -1;
            for (size_t k = a; k < a + len; k++)
                if (pq_ids_push(store, k == i ? mask : t[k]))
                    return -1;
            for (int k = 0; k < n_post; k++)
                if (pq_ids_push(store, post[k]))
                    return -1;
            w->tgt_off = store->n;
            if (pq_ids_push(store, t[i]))
                return -1;
        }
    }
    return 0;
}

int pq_eval_doc_windows(const pq_ids *ids, size_t n_lines, const pq_ids *newline, int32_t bos,
                        int ctx, int stride, pq_window **out, size_t *n_out, pq_ids *store,
                        pq_ids *units)
{
    *out = NULL;
    *n_out = 0;
    pq_ids stream = {0}, owner = {0};
    int rc = pq_ids_push(&stream, bos) || pq_ids_push(&owner, -1) ? -1 : 0;
    for (size_t s = 0; s < n_lines && !rc; s++) {
        for (size_t i = 0; i < ids[s].n && !rc; i++)
            rc = pq_ids_push(&stream, ids[s].v[i]) || pq_ids_push(&owner, (int32_t)s) ? -1 : 0;
        for (size_t i = 0; i < newline->n && !rc; i++)
            rc = pq_ids_push(&stream, newline->v[i]) || pq_ids_push(&owner, (int32_t)s) ? -1 : 0;
    }
    size_t L = stream.n, cap = 0, prev_end = 1;
    for (size_t begin = 0; !rc && L > 1; begin += (size_t)stride) {
        size_t end = begin + (size_t)ctx + 1 < L ? begin + (size_t)ctx + 1 : L;
        size_t first = prev_end > begin + 1 ? prev_end : begin + 1;
        if (end > first) {
            if (*n_out == cap) {
                cap = cap ? cap * 2 : 64;
                pq_window *w = realloc(*out, cap * sizeof *w);
                if (!w) {
                    rc = -1;
                    break;
                }
                *out = w;
            }
            pq_window *w = &(*out)[(*n_out)++];
            w->sent = owner.v[first];
            w->in_off = store->n;
            w->len = (int)(end - 1 - begin);
            w->first = (int)(first - 1 - begin);
            w->n_tgt = (int)(end - first);
            for (size_t i = begin; i + 1 < end && !rc; i++)
                rc = pq_ids_push(store, stream.v[i]) ? -1 : 0;
            w->tgt_off = store->n;
            w->unit_off = units->n;
            for (size_t i = first; i < end && !rc; i++)
                rc = pq_ids_push(store, stream.v[i]) || pq_ids_push(units, owner.v[i]) ? -1 : 0;
            prev_end = end;
        }
        if (end == L)
            break;
    }
    pq_ids_free(&stream);
    pq_ids_free(&owner);
    return rc;
}

int pq_eval_llama_windows(const pq_ids *ids, size_t n_lines, int32_t bos, int ctx, int stride,
                          pq_window **out, size_t *n_out, pq_ids *store, pq_ids *units)
{
    *out = NULL;
    *n_out = 0;
    pq_ids stream = {0}, owner = {0};
    int rc = bos >= 0 && (pq_ids_push(&stream, bos) || pq_ids_push(&owner, 0)) ? -1 : 0;
    for (size_t s = 0; s < n_lines && !rc; s++)
        for (size_t i = 0; i < ids[s].n && !rc; i++)
            rc = pq_ids_push(&stream, ids[s].v[i]) || pq_ids_push(&owner, (int32_t)s) ? -1 : 0;
    size_t L = stream.n;
    if (!rc && (L < 2 * (size_t)ctx || stride < 1 || stride >= ctx))
        rc = 1;
    size_t n_chunk = rc ? 0 : (L - (size_t)ctx + (size_t)stride - 1) / (size_t)stride;
    if (n_chunk && !(*out = calloc(n_chunk, sizeof **out)))
        rc = -1;
    for (size_t i = 0; i < n_chunk && !rc; i++) {
        size_t start = i * (size_t)stride;
        pq_window *w = &(*out)[(*n_out)++];
        w->len = ctx;
        w->first = ctx - stride - 1;
        w->n_tgt = stride;
        w->in_off = store->n;
        w->sent = owner.v[start + (size_t)w->first + 1];
        for (size_t k = 0; k < (size_t)ctx && !rc; k++)
            rc = pq_ids_push(store, stream.v[start + k]) ? -1 : 0;
        w->tgt_off = store->n;
        w->unit_off = units->n;
        for (size_t k = (size_t)w->first + 1; k <= (size_t)ctx - 1 && !rc; k++)
            rc = pq_ids_push(store, stream.v[start + k]) || pq_ids_push(units, owner.v[start + k])
                     ? -1
                     : 0;
    }
    pq_ids_free(&stream);
    pq_ids_free(&owner);
    return rc;
}

/* Document mode: the lines, each with its newline, tokenized as one text (as llama-perplexity
 * and the Hugging Face perplexity recipe read a file: a sentencepiece model gives the document
 * a space prefix once, not each line), then each token given to the line it starts in (the
 * newlines its text holds move on to the next line): ids[s] (empty on entry) receive line s's
 * tokens, its newline's included. */
static int doc_tokens(const pq_tokenizer *tok, const pq_corpus *c, pq_ids *ids, polyq_err *err)
{
    size_t total = 0;
    if (!c->n)
        return 0;
    for (size_t s = 0; s < c->n; s++)
        total += c->lens[s] + 1;
    char *text = malloc(total ? total : 1);
    if (!text)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory for the document", c->path);
    size_t at = 0;
    for (size_t s = 0; s < c->n; s++) {
        memcpy(text + at, c->lines[s], c->lens[s]);
        at += c->lens[s];
        text[at++] = '\n';
    }
    pq_ids all = {0};
    int rc = pq_tok_encode(tok, text, total, &all, err);
    free(text);
    if (rc) {
        pq_fail_context(err, "%s (the document)", c->path);
        return rc;
    }
    size_t line = 0;
    for (size_t i = 0; !rc && i < all.n; i++) {
        char *piece = NULL;
        size_t plen = 0;
        if ((rc = pq_tok_decode(tok, &all.v[i], 1, &piece, &plen, err)))
            break;
        rc = pq_ids_push(&ids[line], all.v[i])
                 ? pq_fail(err, POLYQ_NOMEM, "%s: out of memory", c->path)
                 : 0;
        for (size_t k = 0; k < plen; k++)
            line += piece[k] == '\n' && line + 1 < c->n;
        free(piece);
    }
    pq_ids_free(&all);
    return rc;
}

/* the unit a scored row of window w counts for: its sentence, or in document mode its line */
#define UNIT(w, r) (doc ? units.v[win[w].unit_off + (size_t)((r)-win[w].first)] : win[w].sent)

int pq_evaluate(pq_evaluator *ev, const pq_corpus *c, pq_lang_eval *out, polyq_err *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->lang, sizeof out->lang, "%s", c->lang);
    const pq_model *fp = ev->fp;
    int rc = 0, V = fp->cfg.n_vocab, ctx = eval_context(fp, &ev->opts);
    pq_ids *ids = pq_calloc_array(c->n, sizeof *ids), store = {0}, units = {0}, nl = {0};
    bool doc = ev->opts.stride > 0;
    pq_window *win = NULL;
    size_t n_win = 0;
    int32_t *tokens = pq_alloc_array((size_t)ev->max_batch, sizeof *tokens);
    int *seq_start = pq_alloc_array((size_t)ev->max_batch + 1, sizeof *seq_start);
    if (!ids || !tokens || !seq_start || alloc_result(out, c->n, ev->n_q)) {
        rc = pq_fail(err, POLYQ_NOMEM, "%s: out of memory", c->path);
        goto out;
    }
    out->spaced = !pq_script_unspaced(c->lang);
    if (doc && (rc = doc_tokens(fp->tok, c, ids, err)))
        goto out;
    for (size_t s = 0; s < c->n; s++) {
        if (!doc && !c->lens[s]) { /* a sentence of no bytes has no bits per byte to report */
            rc = pq_fail(err, POLYQ_TEXT,
                         "%s: line %zu is empty: every line is a sentence (remove blank lines, or "
                         "score the file as one document with --document)",
                         c->path, s + 1);
            goto out;
        }
        if (!doc && (rc = pq_tok_encode(fp->tok, c->lines[s], c->lens[s], &ids[s], err))) {
            pq_fail_context(err, "%s: line %zu", c->path, s + 1);
            goto out;
        }
        for (size_t i = 0; i < ids[s].n; i++)
            if (ids[s].v[i] >= V) {
                rc = pq_fail(err, POLYQ_FORMAT,
                             "%s: line %zu gives token id %d beyond the model's %d", c->path, s + 1,
                             ids[s].v[i], V);
                goto out;
            }
        out->tokens[s] = (uint32_t)(ids[s].n + nl.n); /* document mode: a line and its newline */
        for (size_t i = 0; i < ids[s].n; i++)
            out->fallback += pq_tok_is_fallback(fp->tok, ids[s].v[i]);
        for (size_t i = 0; i < nl.n; i++)
            out->fallback += pq_tok_is_fallback(fp->tok, nl.v[i]);
        out->bytes += c->lens[s] + doc;
        out->sbytes[s] = (uint32_t)(c->lens[s] + doc);
        out->chars += pq_utf8_count(c->lines[s], c->lens[s]) + doc;
        bool in_word = false;
        for (size_t i = 0; i < c->lens[s]; i++) {
            char ch = c->lines[s][i];
            bool sp =
                ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
            out->words += !sp && !in_word;
            in_word = !sp;
        }
    }
    size_t total_tokens = 0, kl_at = 0;
    for (size_t s = 0; s < c->n; s++)
        total_tokens += out->tokens[s];
    for (int qi = 0; qi < ev->n_q; qi++)
        if (!(out->kl_pos[qi] = pq_alloc_array(total_tokens ? total_tokens : 1, sizeof(float)))) {
            rc = pq_fail(err, POLYQ_NOMEM, "%s: out of memory", c->path);
            goto out;
        }
    int wrc = doc && ev->opts.llama_ppl
                  ? pq_eval_llama_windows(ids, c->n, fp->add_bos == 0 ? -1 : pq_model_bos(fp), ctx,
                                          ev->opts.stride, &win, &n_win, &store, &units)
              : doc ? pq_eval_doc_windows(ids, c->n, &nl, pq_model_bos(fp), ctx, ev->opts.stride,
                                          &win, &n_win, &store, &units)
              : fp->cfg.encoder
                  ? pq_eval_pll_windows(ids, c->n, ev->pre, ev->n_pre, ev->post, ev->n_post,
                                        ev->mask, ctx, &win, &n_win, &store)
                  : pq_eval_windows(ids, c->n, pq_model_bos(fp), ctx, &win, &n_win, &store);
    if (wrc == 1) {
        rc = pq_fail(err, POLYQ_TEXT,
                     "%s: llama-perplexity's protocol needs at least %d tokens (two windows); the "
                     "document has fewer",
                     c->path, 2 * ctx);
        goto out;
    }
    if (wrc) {
        rc = pq_fail(err, POLYQ_NOMEM, "%s: out of memory", c->path);
        goto out;
    }
    if (doc && ev->opts.llama_ppl) { /* only the scored tokens count for their lines */
        for (size_t s = 0; s < c->n; s++)
            out->tokens[s] = 0;
        for (size_t i = 0; i < units.n; i++)
            out->tokens[units.v[i]]++;
    }
    for (size_t w0 = 0; w0 < n_win;) {
        /* pack windows [w0, w1) */
        size_t w1 = w0;
        int M = 0, n_seq = 0;
        seq_start[0] = 0;
        while (w1 < n_win && (w1 == w0 || M + win[w1].len <= ev->opts.batch_tokens)) {
            memcpy(tokens + M, store.v + win[w1].in_off, sizeof(int32_t) * (size_t)win[w1].len);
            for (int r = 0; r < win[w1].len; r++)
                ev->target[M + r] = r < win[w1].first || r >= win[w1].first + win[w1].n_tgt
                                        ? -1
                                        : store.v[win[w1].tgt_off + (size_t)(r - win[w1].first)];
            M += win[w1].len;
            seq_start[++n_seq] = M;
            w1++;
        }
        if ((rc = pq_model_forward(fp, &ev->ops, &ev->acts, tokens, seq_start, n_seq, ev->logits_fp,
                                   err)))
            goto out;
        ev->passes_fp++;
        row_job job = {ev, false};
        pq_pool_run(ev->ops.pool, (size_t)M, row_task, &job);
        for (size_t w = w0, r0 = 0; w < w1; r0 += (size_t)win[w].len, w++)
            for (int r = win[w].first; r < win[w].first + win[w].n_tgt; r++)
                out->nll_fp[UNIT(w, r)] -= ev->lp_fp[r0 + (size_t)r];
        for (int qi = 0; qi < ev->n_q; qi++) {
            if ((rc = pq_model_forward(ev->q[qi], &ev->ops, &ev->acts, tokens, seq_start, n_seq,
                                       ev->logits_q, err)))
                goto out;
            ev->passes_q++;
            job.quant = true;
            pq_pool_run(ev->ops.pool, (size_t)M, row_task, &job);
            size_t k = kl_at;
            for (size_t w = w0, r0 = 0; w < w1; r0 += (size_t)win[w].len, w++)
                for (int r = win[w].first; r < win[w].first + win[w].n_tgt; r++) {
                    size_t row = r0 + (size_t)r;
                    out->nll_q[qi][UNIT(w, r)] -= ev->lp_q[row];
                    out->kld_q[qi][UNIT(w, r)] += ev->kl[row];
                    out->kl_pos[qi][k++] = (float)ev->kl[row];
                    out->agree_q[qi][UNIT(w, r)] += ev->arg_q[row] == ev->arg_fp[row];
                    double dp = exp(ev->lp_q[row]) - exp(ev->lp_fp[row]);
                    out->dp_q[qi][UNIT(w, r)] += dp;
                    out->dp2_q[qi][UNIT(w, r)] += dp * dp;
                }
        }
        for (size_t w = w0; w < w1; w++)
            kl_at += (size_t)win[w].n_tgt;
        w0 = w1;
        if (ev->opts.progress)
            ev->opts.progress(ev->opts.progress_ctx, w0, n_win);
    }
    for (size_t s = 0; s < c->n && !rc; s++)
        if (!isfinite(out->nll_fp[s]))
            rc = pq_fail(err, POLYQ_NUMERIC, "%s: line %zu: full-precision NLL is not finite",
                         c->path, s + 1);
out:
    for (size_t s = 0; ids && s < c->n; s++)
        pq_ids_free(&ids[s]);
    free(ids);
    pq_ids_free(&store);
    pq_ids_free(&units);
    pq_ids_free(&nl);
    free(win);
    free(tokens);
    free(seq_start);
    return rc;
}
