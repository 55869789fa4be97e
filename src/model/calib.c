/* Calibrated quantization of a whole model (model.h: pq_model_gptq, pq_model_awq,
 * pq_model_smoothquant). Each runs the calibration text through a model with a capture on
 * one block's linears (kernels/ops.h: pq_capture), block after block. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "model/model.h"
#include "quant/awq.h"
#include "quant/gptq.h"

/* What passes over the calibration text need: kernels, activations, logits, and the copy of
 * the base model that becomes the quantized one. */
typedef struct runner {
    pq_ops ops;
    pq_acts acts;
    bool ops_ok, acts_ok;
    float *logits;
    int *starts;
    int batch;
    pq_model *q;
} runner;

static void runner_free(runner *r, bool keep_model)
{
    if (r->acts_ok)
        pq_acts_free(&r->acts);
    if (r->ops_ok)
        pq_ops_free(&r->ops);
    free(r->logits);
    free(r->starts);
    if (!keep_model)
        pq_model_free(r->q);
    memset(r, 0, sizeof *r);
}

static int runner_init(runner *r, const pq_model *base, const pq_qspec *spec, const pq_calib *cal,
                       int n_threads, polyq_err *err)
{
    memset(r, 0, sizeof *r);
    const pq_config *c = &base->cfg;
    if (!cal || cal->n_seq < 1)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s needs calibration text", spec->name);
    int max_seq = 0;
    for (int s = 0; s < cal->n_seq; s++) {
        int T = cal->seq_start[s + 1] - cal->seq_start[s];
        if (T < 1 || T > c->n_ctx)
            return pq_fail(err, POLYQ_INVALID_ARG, "calibration sequence %d has %d tokens (1..%d fit)", s, T, c->n_ctx);
        max_seq = T > max_seq ? T : max_seq;
    }
    r->batch = cal->batch_tokens > max_seq ? cal->batch_tokens : max_seq;
    pq_qspec none = {.none = true, .name = "fp32"};
    int rc = pq_model_quantize(&r->q, base, &none, err);
    if (rc)
        return rc;
    r->q->spec = *spec;
    int max_k = c->n_inner > c->n_embd ? c->n_inner : c->n_embd;
    r->logits = pq_alloc_array((size_t)r->batch * (size_t)pq_model_out_dim(base), sizeof(float));
    r->starts = pq_alloc_array((size_t)cal->n_seq + 1, sizeof *r->starts);
    r->ops_ok = pq_ops_init(&r->ops, n_threads, max_k, c->n_ctx) == 0;
    r->acts_ok = r->ops_ok && pq_acts_init(&r->acts, c, r->batch) == 0;
    if (!r->logits || !r->starts || !r->ops_ok || !r->acts_ok) {
        runner_free(r, false);
        return pq_fail(err, POLYQ_NOMEM, "out of memory for calibration batches of %d tokens", r->batch);
    }
    return 0;
}

/* The calibration text through m, batch by batch, gathering into cap. */
static int runner_pass(runner *r, const pq_model *m, const pq_calib *cal, pq_capture *cap, polyq_err *err)
{
    int rc = 0;
    r->ops.capture = cap;
    for (int s0 = 0; s0 < cal->n_seq && !rc;) {
        int s1 = s0, M = 0;
        r->starts[0] = 0;
        while (s1 < cal->n_seq &&
               (s1 == s0 || M + cal->seq_start[s1 + 1] - cal->seq_start[s1] <= r->batch)) {
            M += cal->seq_start[s1 + 1] - cal->seq_start[s1];
            r->starts[s1 - s0 + 1] = M;
            s1++;
        }
        rc = pq_model_forward(m, &r->ops, &r->acts, cal->tokens + cal->seq_start[s0], r->starts, s1 - s0,
                              r->logits, err);
        s0 = s1;
    }
    r->ops.capture = NULL;
    if (!rc && cap->failed)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory gathering calibration statistics");
    return rc;
}

/* A capture on the block-l linears of m: h (K x K) for each, with the sums of |x| (absx) and
 * the maxima of |x| (amax) when asked; after the pass, h and absx become means over rows and
 * h is filled out from its upper triangle. */
static int capture_block(runner *r, const pq_model *m, int l, const pq_calib *cal, bool want_h,
                         bool want_absx, bool want_amax, pq_capture *cap, polyq_err *err)
{
    pq_linear *lins[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&m->layers[l]);
    memset(cap, 0, sizeof *cap);
    cap->n = PQ_N_LAYER_LINEARS;
    for (int i = 0; i < PQ_N_LAYER_LINEARS; i++) {
        size_t K = (size_t)lins[i]->n_in;
        cap->lin[i] = lins[i];
        if (!lins[i]->n_out)
            continue;
        if ((want_h && !(cap->h[i] = pq_calloc_array(K * K, sizeof(double)))) ||
            (want_absx && !(cap->absx[i] = pq_calloc_array(K, sizeof(double)))) ||
            (want_amax && !(cap->amax[i] = pq_calloc_array(K, sizeof(double)))))
            return pq_fail(err, POLYQ_NOMEM, "out of memory for [%zu, %zu] calibration statistics", K, K);
    }
    int rc = runner_pass(r, m, cal, cap, err);
    for (int i = 0; i < PQ_N_LAYER_LINEARS && !rc; i++) {
        if (!cap->rows[i])
            continue;
        size_t K = (size_t)lins[i]->n_in;
        double inv = 1.0 / (double)cap->rows[i];
        for (size_t a = 0; a < K; a++) {
            if (cap->absx[i])
                cap->absx[i][a] *= inv;
            for (size_t b = a; cap->h[i] && b < K; b++)
                cap->h[i][b * K + a] = cap->h[i][a * K + b] = cap->h[i][a * K + b] * inv;
        }
    }
    return rc;
}

static void capture_free(pq_capture *cap)
{
    for (int i = 0; i < PQ_CAPTURE_MAX; i++) {
        free(cap->h[i]);
        free(cap->absx[i]);
        free(cap->amax[i]);
    }
    free(cap->buf);
    memset(cap, 0, sizeof *cap);
}

/* lin (of q) as a q-owned f32 copy of its weights */
static int own_f32(pq_model *q, pq_linear *lin, polyq_err *err)
{
    float *w = pq_model_alloc(q, (size_t)lin->n_out * (size_t)lin->n_in);
    if (!w)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int n = 0; n < lin->n_out; n++)
        pq_linear_row_f32(lin, n, w + (size_t)n * lin->n_in);
    lin->w = w;
    lin->w16 = NULL;
    lin->wt = false;
    return 0;
}

/* -head: the LM head by round-to-nearest */
static int quantize_head(pq_model *q, const pq_qspec *rtn, polyq_err *err)
{
    pq_qweight *qw = NULL;
    float *tmp;
    const float *w = pq_linear_f32(&q->lm_head, &tmp);
    int rc = !w ? pq_fail(err, POLYQ_NOMEM, "out of memory")
                : pq_qweight_rtn(w, q->lm_head.n_out, q->lm_head.n_in, rtn, &qw, err);
    free(tmp);
    return rc ? rc : pq_model_set_qweight(q, &q->lm_head, qw, err);
}

static int finish(runner *r, int rc, pq_model **out)
{
    if (!rc)
        *out = r->q;
    runner_free(r, rc == 0);
    return rc;
}

int pq_model_gptq(pq_model **out, const pq_model *base, const pq_qspec *spec, const pq_calib *cal,
                  int n_threads, polyq_err *err)
{
    *out = NULL;
    if (!spec->gptq || spec->fmt != PQ_QF_INT)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s is not a GPTQ spec", spec->name);
    runner r;
    int rc = runner_init(&r, base, spec, cal, n_threads, err);
    if (rc)
        return rc;
    pq_qspec rtn = *spec;
    rtn.gptq = false;
    pq_capture cap = {0};
    for (int l = 0; l < base->cfg.n_layer && !rc; l++) {
        /* inputs as the already-quantized blocks before this one produce them */
        rc = capture_block(&r, r.q, l, cal, true, false, false, &cap, err);
        for (int k = 0; k < cap.n && !rc; k++) {
            pq_linear *lin = (pq_linear *)cap.lin[k];
            if (!lin->n_out)
                continue;
            pq_gptq_opts o = {.act_order = spec->act_order};
            pq_qweight *qw = NULL;
            float *tmp;
            const float *w = pq_linear_f32(lin, &tmp);
            if (!w)
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            else if ((rc = pq_gptq(w, lin->n_out, lin->n_in, cap.h[k], &rtn, &o, &qw, err)) == 0)
                rc = pq_model_set_qweight(r.q, lin, qw, err);
            free(tmp);
            if (rc)
                pq_fail_context(err, "GPTQ, block %d", l);
        }
        capture_free(&cap);
    }
    if (!rc && spec->head)
        rc = quantize_head(r.q, &rtn, err);
    return finish(&r, rc, out);
}

int pq_model_awq(pq_model **out, const pq_model *base, const pq_qspec *spec, const pq_calib *cal,
                 int n_threads, polyq_err *err)
{
    *out = NULL;
    if (!spec->awq || spec->fmt != PQ_QF_INT)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s is not an AWQ spec", spec->name);
    runner r;
    int rc = runner_init(&r, base, spec, cal, n_threads, err);
    if (rc)
        return rc;
    pq_qspec rtn = *spec;
    rtn.awq = false;
    pq_capture cap = {0};
    /* linears reading the same input share one scale vector: qkv | q k v | out | gate up | down */
    static const int groups[][3] = {{0, -1, -1}, {1, 2, 3}, {4, -1, -1}, {5, 6, -1}, {7, -1, -1}};
    for (int l = 0; l < base->cfg.n_layer && !rc; l++) {
        /* scales are searched on the full-precision model's inputs, as the reference does */
        if ((rc = capture_block(&r, base, l, cal, true, true, false, &cap, err)))
            break;
        pq_linear *ql[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&r.q->layers[l]);
        for (size_t g = 0; g < sizeof groups / sizeof groups[0] && !rc; g++) {
            const float *ws[3];
            float *tmp[3] = {0};
            int no[3], idx[3], n = 0, K = 0;
            for (int k = 0; k < 3; k++) {
                int i = groups[g][k];
                if (i < 0 || !ql[i]->n_out || (n && ql[i]->n_in != K))
                    continue;
                K = ql[i]->n_in;
                if (!(ws[n] = pq_linear_f32(ql[i], &tmp[n])))
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                no[n] = ql[i]->n_out;
                idx[n++] = i;
            }
            if (!n)
                continue;
            pq_qweight *qw[3] = {0};
            if (!rc)
                rc = pq_awq(ws, no, n, K, cap.h[idx[0]], cap.absx[idx[0]], &rtn, 20, qw, NULL, NULL, NULL, err);
            for (int k = 0; k < 3; k++)
                free(tmp[k]);
            if (rc) {
                pq_fail_context(err, "AWQ, block %d", l);
                break;
            }
            for (int k = 0; k < n; k++) {
                if (!rc)
                    rc = pq_model_set_qweight(r.q, ql[idx[k]], qw[k], err);
                else
                    pq_qweight_free(qw[k]);
            }
        }
        capture_free(&cap);
    }
    capture_free(&cap);
    if (!rc && spec->head)
        rc = quantize_head(r.q, &rtn, err);
    return finish(&r, rc, out);
}

/* x / s into a norm's gain (and bias; a LayerNorm without affine parameters gets both) */
static int fold_into_norm(pq_model *q, const float **w, const float **b, bool rms, const float *s, int C,
                          polyq_err *err)
{
    float *w2 = pq_model_alloc(q, (size_t)C), *b2 = (*b || (!*w && !rms)) ? pq_model_alloc(q, (size_t)C) : NULL;
    if (!w2 || ((*b || (!*w && !rms)) && !b2))
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int j = 0; j < C; j++) {
        w2[j] = (*w ? (*w)[j] : 1.0f) / s[j];
        if (b2)
            b2[j] = *b ? (*b)[j] / s[j] : 0.0f;
    }
    *w = w2;
    if (b2)
        *b = b2;
    return 0;
}

int pq_model_smoothquant(pq_model **out, const pq_model *base, const pq_qspec *spec,
                         const pq_smooth_opts *o, const pq_calib *cal, int n_threads, polyq_err *err)
{
    *out = NULL;
    const pq_config *c = &base->cfg;
    if (c->post_ln || c->encoder)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: SmoothQuant folds its scales into the LayerNorm before each linear; this model "
                       "(post-LayerNorm blocks) has none there; use w8a8", spec->name);
    runner r;
    int rc = runner_init(&r, base, spec, cal, n_threads, err);
    if (rc)
        return rc;
    int C = c->n_embd;
    float *sc = pq_alloc_array((size_t)C, sizeof *sc);
    if (!sc)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    pq_capture cap = {0};
    /* the attention's linears read ln1's output, the MLP's first ones ln2's */
    static const int attn[] = {0, 1, 2, 3}, mlp[] = {5, 6};
    for (int l = 0; l < c->n_layer && !rc; l++) {
        pq_linear *bl[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&base->layers[l]);
        pq_linear *ql[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&r.q->layers[l]);
        pq_layer *L = &r.q->layers[l];
        if (o->smooth && (rc = capture_block(&r, base, l, cal, false, false, true, &cap, err)))
            break;
        for (int g = 0; g < 2 && !rc && o->smooth; g++) {
            const int *idx = g ? mlp : attn;
            int n_idx = g ? 2 : 4, first = -1;
            for (int t = 0; t < n_idx && first < 0; t++)
                if (bl[idx[t]]->n_out && bl[idx[t]]->n_in == C)
                    first = idx[t];
            if (first < 0)
                continue;
            for (int t = 0; t < n_idx && !rc; t++) /* F16/BF16 weights: f32 copies to rescale */
                if (ql[idx[t]]->n_out && (!ql[idx[t]]->w || ql[idx[t]]->wt))
                    rc = own_f32(r.q, ql[idx[t]], err);
            if (rc)
                break;
            /* s_j = max|x_j|^alpha / max|w_j|^(1 - alpha), w over every linear reading x */
            for (int j = 0; j < C; j++) {
                float wmax = 0;
                for (int t = 0; t < n_idx; t++) {
                    const pq_linear *lin = ql[idx[t]]; /* still the base's weights, as f32 */
                    for (int n = 0; lin->n_out && n < lin->n_out; n++)
                        wmax = fmaxf(wmax, fabsf(lin->w[(size_t)n * C + j]));
                }
                float s = powf((float)cap.amax[first][j], o->alpha) / powf(fmaxf(wmax, 1e-5f), 1 - o->alpha);
                sc[j] = fmaxf(s, 1e-5f);
            }
            if ((rc = g ? fold_into_norm(r.q, &L->ln2_w, &L->ln2_b, c->gated, sc, C, err)
                        : fold_into_norm(r.q, &L->ln1_w, &L->ln1_b, c->gated, sc, C, err)))
                break;
            for (int t = 0; t < n_idx && !rc; t++) { /* W diag(s) */
                pq_linear *lin = ql[idx[t]];
                if (!lin->n_out)
                    continue;
                float *w = pq_model_alloc(r.q, (size_t)lin->n_out * C);
                if (!w) {
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                    break;
                }
                for (int n = 0; n < lin->n_out; n++)
                    for (int j = 0; j < C; j++)
                        w[(size_t)n * C + j] = lin->w[(size_t)n * C + j] * sc[j];
                lin->w = w;
            }
        }
        capture_free(&cap);
        for (int i = 0; i < PQ_N_LAYER_LINEARS && !rc && o->weights; i++) {
            if (!ql[i]->n_out)
                continue;
            pq_qspec w8 = {.bits = 8, .sym = true, .gran = PQ_GRAN_CHANNEL, .fmt = PQ_QF_INT, .name = "int8"};
            pq_qweight *qw = NULL;
            if ((!ql[i]->w || ql[i]->wt) && (rc = own_f32(r.q, ql[i], err)))
                break;
            if ((rc = pq_qweight_rtn(ql[i]->w, ql[i]->n_out, ql[i]->n_in, &w8, &qw, err)) == 0) {
                qw->act8 = o->acts;
                rc = pq_model_set_qweight(r.q, ql[i], qw, err);
            }
        }
    }
    capture_free(&cap);
    free(sc);
    return finish(&r, rc, out);
}
