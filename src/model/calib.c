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
            return pq_fail(err, POLYQ_INVALID_ARG,
                           "calibration sequence %d has %d tokens (1..%d fit)", s, T, c->n_ctx);
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
        return pq_fail(err, POLYQ_NOMEM, "out of memory for calibration batches of %d tokens",
                       r->batch);
    }
    return 0;
}

/* The calibration text through m, batch by batch, gathering into cap. */
static int runner_pass(runner *r, const pq_model *m, const pq_calib *cal, pq_capture *cap,
                       polyq_err *err)
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
        rc = pq_model_forward(m, &r->ops, &r->acts, cal->tokens + cal->seq_start[s0], r->starts,
                              s1 - s0, r->logits, err);
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
static int capture_block_into(runner *r, const pq_model *m, int l, const pq_calib *cal, bool want_h,
                              bool want_absx, bool want_amax, pq_capture *cap, polyq_err *err)
{
    pq_linear *lins[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&m->layers[l]);
    cap->n = PQ_N_LAYER_LINEARS;
    for (int i = 0; i < PQ_N_LAYER_LINEARS; i++) {
        size_t K = (size_t)lins[i]->n_in;
        cap->lin[i] = lins[i];
        if (!lins[i]->n_out)
            continue;
        if ((want_h && !(cap->h[i] = pq_calloc_array(K * K, sizeof(double)))) ||
            (want_absx && !(cap->absx[i] = pq_calloc_array(K, sizeof(double)))) ||
            (want_amax && !(cap->amax[i] = pq_calloc_array(K, sizeof(double)))))
            return pq_fail(err, POLYQ_NOMEM, "out of memory for [%zu, %zu] calibration statistics",
                           K, K);
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

/* The same on a zeroed capture (capture_block_into: one whose raw buffers the caller set). */
static int capture_block(runner *r, const pq_model *m, int l, const pq_calib *cal, bool want_h,
                         bool want_absx, bool want_amax, pq_capture *cap, polyq_err *err)
{
    memset(cap, 0, sizeof *cap);
    return capture_block_into(r, m, l, cal, want_h, want_absx, want_amax, cap, err);
}

/* frees what capture_block allocated (not the raw buffers, which are the caller's) */
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

int pq_awq_groups_std(pq_awq_group *g, pq_awq_target qkv, pq_awq_target attn_out, pq_awq_target mlp)
{
    int n = 0;
    g[n++] = (pq_awq_group){{0, -1, -1, -1, -1}, PQ_AWQ_LINEARS};
    g[n++] = (pq_awq_group){{1, 2, 3, -1, -1}, qkv};
    g[n++] = (pq_awq_group){{4, -1, -1, -1, -1}, attn_out};
    g[n++] = (pq_awq_group){{5, 6, -1, -1, -1}, mlp};
    g[n++] = (pq_awq_group){{7, -1, -1, -1, -1}, PQ_AWQ_LINEARS};
    return n;
}

/* The output of layer L's attention (the family's module), gated MLP or whole block (the
 * family's) on rows xn of the sequences starts[0..n]. */
static void module_out(const pq_model *m, pq_ops *ops, const pq_layer *L, pq_awq_target t,
                       const float *xn, const int *starts, int n, float *qkv, float *att, float *h,
                       float *h2, float *out)
{
    int M = starts[n];
    if (t == PQ_AWQ_ATTENTION) {
        m->arch->awq_attention(m, ops, L, xn, starts, n, qkv, att, out);
    } else if (t == PQ_AWQ_BLOCK) {
        m->arch->awq_block(m, ops, L, xn, starts, n, qkv, att, h, h2, out);
    } else {
        pq_linear_fwd(ops, h, xn, M, &L->gate);
        pq_linear_fwd(ops, h2, xn, M, &L->up);
        pq_gated_fwd(ops, h, h2, (size_t)M * m->cfg.n_inner, m->cfg.act);
        pq_linear_fwd(ops, out, h, M, &L->down);
    }
}

/* Sum over the calibration sequences of the squared difference between the module's output
 * with layer L and ref (when loss is not NULL), or ref itself (fp: loss NULL). */
static double module_pass(runner *r, const pq_model *m, const pq_layer *L, pq_awq_target t,
                          const float *xn, int K, const pq_calib *cal, float *const *buf,
                          float *ref, bool fill)
{
    int C = m->cfg.n_embd;
    double sum = 0;
    for (int s0 = 0; s0 < cal->n_seq;) {
        int s1 = s0, M = 0;
        r->starts[0] = 0;
        while (s1 < cal->n_seq &&
               (s1 == s0 || M + cal->seq_start[s1 + 1] - cal->seq_start[s1] <= r->batch)) {
            M += cal->seq_start[s1 + 1] - cal->seq_start[s1];
            r->starts[s1 - s0 + 1] = M;
            s1++;
        }
        size_t row0 = (size_t)(cal->seq_start[s0] - cal->seq_start[0]);
        float *o = fill ? ref + row0 * C : buf[4];
        module_out(m, &r->ops, L, t, xn + row0 * K, r->starts, s1 - s0, buf[0], buf[1], buf[2],
                   buf[3], o);
        for (size_t i = 0; !fill && i < (size_t)M * C; i++) {
            double d = (double)o[i] - ref[row0 * C + i];
            sum += d * d;
        }
        s0 = s1;
    }
    return sum;
}

/* AWQ's clipping search on one linear already quantized with its chosen scales (*q's in_scale,
 * if any): *q is replaced by the clipped weights quantized with the same scales. */
static int awq_clip_one(const float *w, int n_out, int K, const double *h, const pq_qspec *spec,
                        pq_qweight **q, polyq_err *err)
{
    float *s = NULL, *wc = pq_alloc_array((size_t)n_out, (size_t)K * sizeof(float));
    if (!wc)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    if ((*q)->in_scale && !(s = pq_alloc_array((size_t)K, sizeof(float)))) {
        free(wc);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    for (int k = 0; s && k < K; k++)
        s[k] = 1.0f / (*q)->in_scale[k];
    pq_qspec plain = *spec;
    plain.clip = false;
    pq_qweight *c = NULL;
    int rc = pq_awq_clip(w, n_out, K, s, h, &plain, wc, NULL, NULL, err);
    if (!rc)
        rc = pq_qweight_rtn(wc, n_out, K, &plain, &c, err);
    if (!rc && s && !(c->in_scale = pq_alloc_array((size_t)K, sizeof(float))))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int k = 0; !rc && s && k < K; k++)
        c->in_scale[k] = (*q)->in_scale[k];
    if (rc)
        pq_qweight_free(c);
    else {
        pq_qweight_free(*q);
        *q = c;
    }
    free(s);
    free(wc);
    return rc;
}

/* AWQ's grid search measured on a module's output: for a = 0, 1/n, .. the group's linears are
 * quantized with the scales of a and the module run on the captured inputs; the least squared
 * error wins (ties: the smaller a). out[] receive the chosen quantized linears. */
static int awq_module(runner *r, int l, const pq_awq_group *grp, const pq_capture *cap,
                      const float *xn, const pq_calib *cal, const float *const *ws, const int *no,
                      const int *idx, int n, int K, const pq_qspec *spec, pq_qweight **out,
                      polyq_err *err)
{
    const pq_model *m = r->q;
    pq_layer *L = &r->q->layers[l];
    pq_linear *all[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(L);
    float *eff[PQ_AWQ_MAX_LINEARS] = {0}; /* per linear: W s to quantize, then Q(W s) / s as the
                                             module computes */
    const pq_config *c = &m->cfg;
    pq_attn at = pq_config_attn(c);
    size_t B = (size_t)r->batch, rows = (size_t)(cal->seq_start[cal->n_seq] - cal->seq_start[0]);
    size_t wide = (size_t)(c->n_inner > c->n_embd ? c->n_inner : c->n_embd),
           att_w = pq_config_att_width(c) > (size_t)c->n_embd ? pq_config_att_width(c)
                                                              : (size_t)c->n_embd;
    float *buf[5] = {pq_alloc_array(B, (size_t)pq_attn_ld(&at) * sizeof(float)),
                     pq_alloc_array(B, att_w * sizeof(float)),
                     pq_alloc_array(B, wide * sizeof(float)),
                     pq_alloc_array(B, wide * sizeof(float)),
                     pq_alloc_array(B, (size_t)c->n_embd * sizeof(float))};
    float *ref = pq_alloc_array(rows, (size_t)c->n_embd * sizeof(float)),
          *s = pq_alloc_array((size_t)K, sizeof(float));
    float *wmean = spec->duo ? pq_alloc_array((size_t)K, sizeof(float)) : NULL;
    pq_qweight *cand[PQ_AWQ_MAX_LINEARS] = {0};
    int rc = 0;
    for (int k = 0; k < n && !rc; k++)
        if (!(eff[k] = pq_alloc_array((size_t)no[k], (size_t)K * sizeof(float))))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc && (!buf[0] || !buf[1] || !buf[2] || !buf[3] || !buf[4] || !ref || !s ||
                (spec->duo && !wmean)))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory for AWQ's search on block %d's outputs", l);
    if (!rc)
        module_pass(r, m, L, grp->target, xn, K, cal, buf, ref, true);
    if (!rc && wmean)
        pq_awq_wmean(wmean, ws, no, n, K, spec->gran == PQ_GRAN_GROUP ? spec->group : K);
    double best = INFINITY;
    for (int g = 0; g < 20 && !rc; g++) {
        pq_awq_scales(s, cap->absx[grp->idx[0]], wmean, K, (float)g / 20.0f);
        bool scaled = g > 0 || wmean;
        pq_layer trial = *L;
        pq_linear *tl[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&trial);
        for (int k = 0; k < n && !rc; k++) {
            for (size_t i = 0; i < (size_t)no[k] * K; i++)
                eff[k][i] = scaled ? ws[k][i] * s[i % K] : ws[k][i];
            rc = pq_qweight_rtn(eff[k], no[k], K, spec, &cand[k], err);
            if (!rc && scaled && !(cand[k]->in_scale = pq_alloc_array((size_t)K, sizeof(float))))
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            for (int i = 0; !rc && scaled && i < K; i++)
                cand[k]->in_scale[i] = 1.0f / s[i];
            for (int row = 0; !rc && row < no[k]; row++)
                pq_qweight_dequant_row(cand[k], row, eff[k] + (size_t)row * K);
            const pq_linear *orig = all[idx[k]];
            *tl[idx[k]] = (pq_linear){.n_out = no[k], .n_in = K, .w = eff[k], .bias = orig->bias};
        }
        double loss = rc ? 0 : module_pass(r, m, &trial, grp->target, xn, K, cal, buf, ref, false);
        if (!rc && (g == 0 || loss < best)) {
            best = loss;
            for (int k = 0; k < n; k++) {
                pq_qweight_free(out[k]);
                out[k] = cand[k];
                cand[k] = NULL;
            }
        }
        for (int k = 0; k < n; k++) {
            pq_qweight_free(cand[k]);
            cand[k] = NULL;
        }
    }
    for (int k = 0; k < PQ_AWQ_MAX_LINEARS; k++)
        free(eff[k]);
    for (int k = 0; k < 5; k++)
        free(buf[k]);
    free(ref);
    free(s);
    free(wmean);
    return rc;
}

int pq_model_awq(pq_model **out, const pq_model *base, const pq_qspec *spec, const pq_calib *cal,
                 int n_threads, polyq_err *err)
{
    *out = NULL;
    if (!spec->awq || spec->fmt != PQ_QF_INT)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s is not an AWQ spec", spec->name);
    if (!base->arch->awq_groups)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: AWQ has no scaling groups for the %s family",
                       base->dir, base->arch->model_type);
    runner r;
    int rc = runner_init(&r, base, spec, cal, n_threads, err);
    if (rc)
        return rc;
    pq_qspec rtn = *spec;
    rtn.awq = false;
    pq_capture cap = {0};
    pq_awq_group groups[PQ_AWQ_MAX_GROUPS];
    int n_groups = base->arch->awq_groups(base, groups);
    size_t rows = (size_t)(cal->seq_start[cal->n_seq] - cal->seq_start[0]);
    for (int l = 0; l < base->cfg.n_layer && !rc; l++) {
        /* scales are searched on the full-precision model's inputs, as the reference does; the
         * inputs themselves are kept for the groups measured on a module's output */
        pq_linear *bl[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&base->layers[l]);
        float *raw[PQ_N_LAYER_LINEARS] = {0};
        for (int g = 0; g < n_groups && !rc; g++) {
            int i = groups[g].idx[0];
            if ((groups[g].target == PQ_AWQ_ATTENTION || groups[g].target == PQ_AWQ_MLP ||
                 groups[g].target == PQ_AWQ_BLOCK) &&
                bl[i]->n_out &&
                !(raw[i] = pq_alloc_array(rows, (size_t)bl[i]->n_in * sizeof(float))))
                rc = pq_fail(err, POLYQ_NOMEM,
                             "out of memory keeping block %d's calibration inputs (%zu rows)", l,
                             rows);
        }
        if (!rc) {
            memset(&cap, 0, sizeof cap);
            for (int i = 0; i < PQ_N_LAYER_LINEARS; i++) {
                cap.raw[i] = raw[i];
                cap.raw_rows[i] = raw[i] ? rows : 0;
            }
            rc = capture_block_into(&r, base, l, cal, true, true, false, &cap, err);
        }
        pq_linear *ql[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&r.q->layers[l]);
        pq_qweight *chosen[PQ_N_LAYER_LINEARS] = {0};
        for (int g = 0; g < n_groups && !rc; g++) {
            const pq_awq_group *gr = &groups[g];
            const float *ws[PQ_AWQ_MAX_LINEARS];
            float *tmp[PQ_AWQ_MAX_LINEARS] = {0};
            int no[PQ_AWQ_MAX_LINEARS], idx[PQ_AWQ_MAX_LINEARS], n = 0, K = 0;
            for (int k = 0; k < PQ_AWQ_MAX_LINEARS; k++) {
                int i = gr->idx[k];
                if (i < 0 || !ql[i]->n_out || (n && ql[i]->n_in != K))
                    continue;
                K = ql[i]->n_in;
                if (!(ws[n] = pq_linear_f32(ql[i], &tmp[n])))
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                no[n] = ql[i]->n_out;
                idx[n++] = i;
            }
            pq_qweight *qw[PQ_AWQ_MAX_LINEARS] = {0};
            /* -clip: every linear but q and k (and a fused qkv), as the references clip */
            pq_qspec one = rtn;
            one.clip = false;
            if (!rc && n && gr->target == PQ_AWQ_NONE)
                rc = pq_qweight_rtn(ws[0], no[0], K, &one, &qw[0], err);
            else if (!rc && n && gr->target == PQ_AWQ_LINEARS)
                rc = pq_awq(ws, no, n, K, cap.h[idx[0]], cap.absx[idx[0]], &one, 20, qw, NULL, NULL,
                            NULL, err);
            else if (!rc && n)
                rc =
                    awq_module(&r, l, gr, &cap, raw[idx[0]], cal, ws, no, idx, n, K, &one, qw, err);
            for (int k = 0; k < n && !rc && rtn.clip; k++)
                if (idx[k] > 2)
                    rc = awq_clip_one(ws[k], no[k], K, cap.h[idx[k]], &one, &qw[k], err);
            for (int k = 0; k < PQ_AWQ_MAX_LINEARS; k++)
                free(tmp[k]);
            for (int k = 0; k < n; k++)
                chosen[idx[k]] = qw[k];
            if (rc)
                pq_fail_context(err, "AWQ, block %d", l);
        }
        /* the block's linears change only now: every group searched on the block as it was */
        for (int i = 0; i < PQ_N_LAYER_LINEARS; i++) {
            if (!rc && chosen[i])
                rc = pq_model_set_qweight(r.q, ql[i], chosen[i], err);
            else
                pq_qweight_free(chosen[i]);
        }
        for (int i = 0; i < PQ_N_LAYER_LINEARS; i++)
            free(raw[i]);
        capture_free(&cap);
    }
    if (!rc && spec->head)
        rc = quantize_head(r.q, &rtn, err);
    return finish(&r, rc, out);
}

/* x / s into a norm's gain (and bias; a LayerNorm without affine parameters gets both) */
static int fold_into_norm(pq_model *q, const float **w, const float **b, bool rms, const float *s,
                          int C, polyq_err *err)
{
    float *w2 = pq_model_alloc(q, (size_t)C),
          *b2 = (*b || (!*w && !rms)) ? pq_model_alloc(q, (size_t)C) : NULL;
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
                         const pq_smooth_opts *o, const pq_calib *cal, int n_threads,
                         polyq_err *err)
{
    *out = NULL;
    const pq_config *c = &base->cfg;
    if (c->post_ln || c->encoder)
        return pq_fail(
            err, POLYQ_UNSUPPORTED,
            "%s: SmoothQuant folds its scales into the LayerNorm before each linear; this model "
            "(post-LayerNorm blocks) has none there; use w8a8",
            spec->name);
    runner r;
    int rc = runner_init(&r, base, spec, cal, n_threads, err);
    if (rc)
        return rc;
    int C = c->n_embd;
    float *sc = pq_alloc_array((size_t)C, sizeof *sc);
    if (!sc)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    pq_capture cap = {0};
    /* the attention's linears read ln1's output, the MLP's first ones ln2's; where one norm
     * feeds both (Cohere), all of them read ln1's and share its scales */
    static const int attn[] = {0, 1, 2, 3}, mlp[] = {5, 6}, both[] = {0, 1, 2, 3, 5, 6};
    int n_groups = c->one_norm ? 1 : 2;
    for (int l = 0; l < c->n_layer && !rc; l++) {
        pq_linear *bl[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&base->layers[l]);
        pq_linear *ql[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&r.q->layers[l]);
        pq_layer *L = &r.q->layers[l];
        if (o->smooth && (rc = capture_block(&r, base, l, cal, false, false, true, &cap, err)))
            break;
        for (int g = 0; g < n_groups && !rc && o->smooth; g++) {
            const int *idx = c->one_norm ? both : g ? mlp : attn;
            int n_idx = c->one_norm ? 6 : g ? 2 : 4, first = -1;
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
                float s = powf((float)cap.amax[first][j], o->alpha) /
                          powf(fmaxf(wmax, 1e-5f), 1 - o->alpha);
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
            pq_qspec w8 = {
                .bits = 8, .sym = true, .gran = PQ_GRAN_CHANNEL, .fmt = PQ_QF_INT, .name = "int8"};
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
