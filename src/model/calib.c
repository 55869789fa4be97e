/* Calibrated quantization of a whole model (model.h: pq_model_gptq). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "model/model.h"
#include "quant/awq.h"
#include "quant/gptq.h"

int pq_model_gptq(pq_model **out, const pq_model *base, const pq_qspec *spec, const pq_calib *cal,
                  int n_threads, polyq_err *err)
{
    *out = NULL;
    if (!spec->gptq || spec->fmt != PQ_QF_INT)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s is not a GPTQ spec", spec->name);
    if (!cal || cal->n_seq < 1)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s needs calibration text", spec->name);
    const pq_config *c = &base->cfg;
    int max_seq = 0;
    for (int s = 0; s < cal->n_seq; s++) {
        int T = cal->seq_start[s + 1] - cal->seq_start[s];
        if (T < 1 || T > c->n_ctx)
            return pq_fail(err, POLYQ_INVALID_ARG, "calibration sequence %d has %d tokens (1..%d fit)", s, T, c->n_ctx);
        max_seq = T > max_seq ? T : max_seq;
    }
    int batch = cal->batch_tokens > max_seq ? cal->batch_tokens : max_seq;
    pq_qspec none = {.none = true, .name = "fp32"}, rtn = *spec;
    rtn.gptq = false;
    pq_model *q = NULL;
    int rc = pq_model_quantize(&q, base, &none, err);
    if (rc)
        return rc;
    q->spec = *spec;
    pq_ops ops;
    pq_acts acts;
    int max_k = c->n_inner > c->n_embd ? c->n_inner : c->n_embd;
    float *logits = pq_alloc_array((size_t)batch * (size_t)pq_model_out_dim(base), sizeof(float));
    bool ops_ok = pq_ops_init(&ops, n_threads, max_k, c->n_ctx) == 0;
    bool acts_ok = ops_ok && pq_acts_init(&acts, c, batch) == 0;
    pq_capture cap = {0};
    int *starts = pq_alloc_array((size_t)cal->n_seq + 1, sizeof *starts);
    if (!logits || !ops_ok || !acts_ok || !starts) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory for GPTQ calibration batches of %d tokens", batch);
        goto out;
    }
    for (int l = 0; l < c->n_layer && !rc; l++) {
        pq_linear *lins[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&q->layers[l]);
        memset(&cap, 0, sizeof cap);
        for (int i = 0; i < PQ_N_LAYER_LINEARS && !rc; i++) {
            if (!lins[i]->n_out)
                continue;
            size_t K = (size_t)lins[i]->n_in;
            cap.lin[cap.n] = lins[i];
            if (!(cap.h[cap.n++] = pq_calloc_array(K * K, sizeof(double))))
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory for a [%zu, %zu] GPTQ Hessian", K, K);
        }
        ops.capture = &cap;
        for (int s0 = 0; s0 < cal->n_seq && !rc;) { /* the calibration text, batch by batch */
            int s1 = s0, M = 0;
            starts[0] = 0;
            while (s1 < cal->n_seq &&
                   (s1 == s0 || M + cal->seq_start[s1 + 1] - cal->seq_start[s1] <= batch)) {
                M += cal->seq_start[s1 + 1] - cal->seq_start[s1];
                starts[s1 - s0 + 1] = M;
                s1++;
            }
            rc = pq_model_forward(q, &ops, &acts, cal->tokens + cal->seq_start[s0], starts, s1 - s0, logits, err);
            s0 = s1;
        }
        ops.capture = NULL;
        if (!rc && cap.failed)
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory gathering GPTQ statistics");
        for (int k = 0; k < cap.n && !rc; k++) {
            pq_linear *lin = (pq_linear *)cap.lin[k];
            size_t K = (size_t)lin->n_in;
            double *h = cap.h[k], inv = cap.rows[k] ? 1.0 / (double)cap.rows[k] : 0;
            for (size_t i = 0; i < K; i++) /* upper triangle -> full, mean over rows */
                for (size_t j = i; j < K; j++)
                    h[j * K + i] = h[i * K + j] = h[i * K + j] * inv;
            pq_gptq_opts o = {.act_order = spec->act_order};
            pq_qweight *qw = NULL;
            if ((rc = pq_gptq(lin->w, lin->n_out, lin->n_in, h, &rtn, &o, &qw, err)) == 0)
                rc = pq_model_set_qweight(q, lin, qw, err);
            if (rc)
                pq_fail_context(err, "GPTQ, block %d", l);
        }
        for (int k = 0; k < cap.n; k++)
            free(cap.h[k]);
        free(cap.buf);
        memset(&cap, 0, sizeof cap);
    }
    if (!rc && spec->head) {
        pq_qweight *qw = NULL;
        rc = pq_qweight_rtn(q->lm_head.w, q->lm_head.n_out, q->lm_head.n_in, &rtn, &qw, err);
        if (!rc)
            rc = pq_model_set_qweight(q, &q->lm_head, qw, err);
    }
out:
    for (int k = 0; k < cap.n; k++)
        free(cap.h[k]);
    free(cap.buf);
    if (acts_ok)
        pq_acts_free(&acts);
    if (ops_ok)
        pq_ops_free(&ops);
    free(logits);
    free(starts);
    if (rc) {
        pq_model_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

/* Runs the calibration text through m, gathering for its block-l linears h = X^T X / rows
 * (and mean |x| per channel) into cap (allocated here). */
static int gather(const pq_model *m, int l, const pq_calib *cal, int batch, pq_ops *ops, pq_acts *acts,
                  float *logits, int *starts, pq_capture *cap, polyq_err *err)
{
    pq_linear *lins[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&m->layers[l]);
    memset(cap, 0, sizeof *cap);
    for (int i = 0; i < PQ_N_LAYER_LINEARS; i++) {
        size_t K = (size_t)lins[i]->n_in;
        cap->lin[i] = lins[i];
        if (!lins[i]->n_out)
            continue;
        if (!(cap->h[i] = pq_calloc_array(K * K, sizeof(double))) ||
            !(cap->absx[i] = pq_calloc_array(K, sizeof(double))))
            return pq_fail(err, POLYQ_NOMEM, "out of memory for [%zu, %zu] calibration statistics", K, K);
    }
    cap->n = PQ_N_LAYER_LINEARS;
    ops->capture = cap;
    int rc = 0;
    for (int s0 = 0; s0 < cal->n_seq && !rc;) {
        int s1 = s0, M = 0;
        starts[0] = 0;
        while (s1 < cal->n_seq && (s1 == s0 || M + cal->seq_start[s1 + 1] - cal->seq_start[s1] <= batch)) {
            M += cal->seq_start[s1 + 1] - cal->seq_start[s1];
            starts[s1 - s0 + 1] = M;
            s1++;
        }
        rc = pq_model_forward(m, ops, acts, cal->tokens + cal->seq_start[s0], starts, s1 - s0, logits, err);
        s0 = s1;
    }
    ops->capture = NULL;
    if (!rc && cap->failed)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory gathering calibration statistics");
    for (int i = 0; i < PQ_N_LAYER_LINEARS && !rc; i++) {
        if (!cap->h[i] || !cap->rows[i])
            continue;
        size_t K = (size_t)lins[i]->n_in;
        double inv = 1.0 / (double)cap->rows[i];
        for (size_t a = 0; a < K; a++) {
            cap->absx[i][a] *= inv;
            for (size_t b = a; b < K; b++)
                cap->h[i][b * K + a] = cap->h[i][a * K + b] = cap->h[i][a * K + b] * inv;
        }
    }
    return rc;
}

static void release(pq_capture *cap)
{
    for (int i = 0; i < PQ_CAPTURE_MAX; i++) {
        free(cap->h[i]);
        free(cap->absx[i]);
    }
    free(cap->buf);
    memset(cap, 0, sizeof *cap);
}

int pq_model_awq(pq_model **out, const pq_model *base, const pq_qspec *spec, const pq_calib *cal,
                 int n_threads, polyq_err *err)
{
    *out = NULL;
    if (!spec->awq || spec->fmt != PQ_QF_INT)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s is not an AWQ spec", spec->name);
    if (!cal || cal->n_seq < 1)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s needs calibration text", spec->name);
    const pq_config *c = &base->cfg;
    int max_seq = 0;
    for (int s = 0; s < cal->n_seq; s++) {
        int T = cal->seq_start[s + 1] - cal->seq_start[s];
        if (T < 1 || T > c->n_ctx)
            return pq_fail(err, POLYQ_INVALID_ARG, "calibration sequence %d has %d tokens (1..%d fit)", s, T, c->n_ctx);
        max_seq = T > max_seq ? T : max_seq;
    }
    int batch = cal->batch_tokens > max_seq ? cal->batch_tokens : max_seq;
    pq_qspec none = {.none = true, .name = "fp32"}, rtn = *spec;
    rtn.awq = false;
    pq_model *q = NULL;
    int rc = pq_model_quantize(&q, base, &none, err);
    if (rc)
        return rc;
    q->spec = *spec;
    pq_ops ops;
    pq_acts acts;
    int max_k = c->n_inner > c->n_embd ? c->n_inner : c->n_embd;
    float *logits = pq_alloc_array((size_t)batch * (size_t)pq_model_out_dim(base), sizeof(float));
    bool ops_ok = pq_ops_init(&ops, n_threads, max_k, c->n_ctx) == 0;
    bool acts_ok = ops_ok && pq_acts_init(&acts, c, batch) == 0;
    int *starts = pq_alloc_array((size_t)cal->n_seq + 1, sizeof *starts);
    pq_capture cap = {0};
    if (!logits || !ops_ok || !acts_ok || !starts) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory for AWQ calibration batches of %d tokens", batch);
        goto out;
    }
    /* linears reading the same input share one scale vector: qkv | q k v | out | gate up | down */
    static const int groups[][3] = {{0, -1, -1}, {1, 2, 3}, {4, -1, -1}, {5, 6, -1}, {7, -1, -1}};
    for (int l = 0; l < c->n_layer && !rc; l++) {
        /* scales are searched on the full-precision model's inputs, as the reference does */
        if ((rc = gather(base, l, cal, batch, &ops, &acts, logits, starts, &cap, err)))
            break;
        pq_linear *ql[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&q->layers[l]);
        for (size_t g = 0; g < sizeof groups / sizeof groups[0] && !rc; g++) {
            const float *ws[3];
            int no[3], idx[3], n = 0, K = 0;
            for (int k = 0; k < 3; k++) {
                int i = groups[g][k];
                if (i < 0 || !ql[i]->n_out)
                    continue;
                if (n && ql[i]->n_in != K)
                    continue;
                K = ql[i]->n_in;
                ws[n] = ql[i]->w;
                no[n] = ql[i]->n_out;
                idx[n++] = i;
            }
            if (!n)
                continue;
            pq_qweight *qw[3] = {0};
            if ((rc = pq_awq(ws, no, n, K, cap.h[idx[0]], cap.absx[idx[0]], &rtn, 20, qw, NULL, NULL, NULL, err))) {
                pq_fail_context(err, "AWQ, block %d", l);
                break;
            }
            for (int k = 0; k < n; k++) {
                if (!rc)
                    rc = pq_model_set_qweight(q, ql[idx[k]], qw[k], err);
                else
                    pq_qweight_free(qw[k]);
            }
        }
        release(&cap);
    }
    if (!rc && spec->head) {
        pq_qweight *qw = NULL;
        rc = pq_qweight_rtn(q->lm_head.w, q->lm_head.n_out, q->lm_head.n_in, &rtn, &qw, err);
        if (!rc)
            rc = pq_model_set_qweight(q, &q->lm_head, qw, err);
    }
out:
    release(&cap);
    if (acts_ok)
        pq_acts_free(&acts);
    if (ops_ok)
        pq_ops_free(&ops);
    free(logits);
    free(starts);
    if (rc) {
        pq_model_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

int pq_model_smoothquant(pq_model **out, const pq_model *base, const pq_qspec *spec,
                         const pq_smooth_opts *o, const pq_calib *cal, int n_threads, polyq_err *err)
{
    *out = NULL;
    const pq_config *c = &base->cfg;
    if (!cal || cal->n_seq < 1)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s needs calibration text", spec->name);
    if (c->post_ln || c->encoder)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: SmoothQuant folds its scales into the LayerNorm before each linear; this model "
                       "(post-LayerNorm blocks) has none there; use w8a8", spec->name);
    int max_seq = 0;
    for (int s = 0; s < cal->n_seq; s++) {
        int T = cal->seq_start[s + 1] - cal->seq_start[s];
        if (T < 1 || T > c->n_ctx)
            return pq_fail(err, POLYQ_INVALID_ARG, "calibration sequence %d has %d tokens (1..%d fit)", s, T, c->n_ctx);
        max_seq = T > max_seq ? T : max_seq;
    }
    int batch = cal->batch_tokens > max_seq ? cal->batch_tokens : max_seq, C = c->n_embd;
    pq_qspec none = {.none = true, .name = "fp32"};
    pq_model *q = NULL;
    int rc = pq_model_quantize(&q, base, &none, err);
    if (rc)
        return rc;
    q->spec = *spec;
    pq_ops ops;
    pq_acts acts;
    int max_k = c->n_inner > C ? c->n_inner : C;
    float *logits = pq_alloc_array((size_t)batch * (size_t)pq_model_out_dim(base), sizeof(float));
    bool ops_ok = pq_ops_init(&ops, n_threads, max_k, c->n_ctx) == 0;
    bool acts_ok = ops_ok && pq_acts_init(&acts, c, batch) == 0;
    int *starts = pq_alloc_array((size_t)cal->n_seq + 1, sizeof *starts);
    double *amax[2] = {pq_calloc_array((size_t)C, sizeof(double)), pq_calloc_array((size_t)C, sizeof(double))};
    float *sc = pq_alloc_array((size_t)C, sizeof *sc);
    if (!logits || !ops_ok || !acts_ok || !starts || !amax[0] || !amax[1] || !sc) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory for SmoothQuant calibration batches of %d tokens", batch);
        goto out;
    }
    /* per block: the largest |x| per channel entering the attention (after ln1) and the MLP
     * (after ln2), on the full-precision model */
    static const int attn[] = {0, 1, 2, 3}, mlp[] = {5, 6};
    for (int l = 0; l < c->n_layer && !rc; l++) {
        pq_linear *bl[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&base->layers[l]);
        pq_linear *ql[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&q->layers[l]);
        pq_layer *L = &q->layers[l];
        pq_capture cap = {0};
        int first[2] = {-1, -1};
        for (int i = 0; i < 4 && first[0] < 0; i++)
            if (bl[attn[i]]->n_out)
                first[0] = attn[i];
        for (int i = 0; i < 2 && first[1] < 0; i++)
            if (bl[mlp[i]]->n_out)
                first[1] = mlp[i];
        for (int g = 0; g < 2; g++) {
            memset(amax[g], 0, sizeof(double) * (size_t)C);
            if (first[g] >= 0 && bl[first[g]]->n_in == C) {
                cap.lin[cap.n] = bl[first[g]];
                cap.amax[cap.n++] = amax[g];
            }
        }
        ops.capture = &cap;
        for (int s0 = 0; s0 < cal->n_seq && !rc;) {
            int s1 = s0, M = 0;
            starts[0] = 0;
            while (s1 < cal->n_seq && (s1 == s0 || M + cal->seq_start[s1 + 1] - cal->seq_start[s1] <= batch)) {
                M += cal->seq_start[s1 + 1] - cal->seq_start[s1];
                starts[s1 - s0 + 1] = M;
                s1++;
            }
            rc = pq_model_forward(base, &ops, &acts, cal->tokens + cal->seq_start[s0], starts, s1 - s0, logits, err);
            s0 = s1;
        }
        ops.capture = NULL;
        free(cap.buf);
        if (!rc && cap.failed)
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory gathering SmoothQuant statistics");
        for (int g = 0; g < 2 && !rc && o->smooth; g++) {
            if (first[g] < 0 || bl[first[g]]->n_in != C)
                continue;
            const int *idx = g ? mlp : attn;
            int n_idx = g ? 2 : 4;
            /* s_j = max|x_j|^alpha / max|w_j|^(1 - alpha), w over every linear reading x */
            for (int j = 0; j < C; j++) {
                float wmax = 0;
                for (int t = 0; t < n_idx; t++) {
                    const pq_linear *lin = bl[idx[t]];
                    for (int n = 0; lin->n_out && n < lin->n_out; n++)
                        wmax = fmaxf(wmax, fabsf(lin->w[(size_t)n * C + j]));
                }
                float s = powf((float)amax[g][j], o->alpha) / powf(fmaxf(wmax, 1e-5f), 1 - o->alpha);
                sc[j] = fmaxf(s, 1e-5f);
            }
            /* x / s: into the norm's gain (and bias); W diag(s) */
            const float **nw = g ? &L->ln2_w : &L->ln1_w, **nb = g ? &L->ln2_b : &L->ln1_b;
            float *w2 = pq_model_alloc(q, (size_t)C), *b2 = *nb ? pq_model_alloc(q, (size_t)C) : NULL;
            if (!w2 || (*nb && !b2)) {
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                break;
            }
            for (int j = 0; j < C; j++) {
                w2[j] = (*nw ? (*nw)[j] : 1.0f) / sc[j];
                if (b2)
                    b2[j] = (*nb)[j] / sc[j];
            }
            if (!*nw && *nb == NULL && !c->gated) { /* a LayerNorm without affine parameters */
                b2 = pq_model_alloc(q, (size_t)C);
                if (!b2) {
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                    break;
                }
                memset(b2, 0, sizeof(float) * (size_t)C);
            }
            *nw = w2;
            if (b2)
                *nb = b2;
            for (int t = 0; t < n_idx; t++) {
                pq_linear *lin = ql[idx[t]];
                if (!lin->n_out)
                    continue;
                float *w = pq_model_alloc(q, (size_t)lin->n_out * C);
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
        for (int i = 0; i < PQ_N_LAYER_LINEARS && !rc && o->weights; i++) {
            if (!ql[i]->n_out)
                continue;
            pq_qspec w8 = {.bits = 8, .sym = true, .gran = PQ_GRAN_CHANNEL, .fmt = PQ_QF_INT, .name = "int8"};
            pq_qweight *qw = NULL;
            if ((rc = pq_qweight_rtn(ql[i]->w, ql[i]->n_out, ql[i]->n_in, &w8, &qw, err)) == 0) {
                qw->act8 = o->acts;
                rc = pq_model_set_qweight(q, ql[i], qw, err);
            }
        }
    }
out:
    if (acts_ok)
        pq_acts_free(&acts);
    if (ops_ok)
        pq_ops_free(&ops);
    free(logits);
    free(starts);
    free(amax[0]);
    free(amax[1]);
    free(sc);
    if (rc) {
        pq_model_free(q);
        return rc;
    }
    *out = q;
    return 0;
}
