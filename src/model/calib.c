/* Calibrated quantization of a whole model (model.h: pq_model_gptq). */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "model/model.h"
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
