/* Fast kernels with the meaning of ops_ref.c. Linear layers run one sgemm (gemm.h) per fixed
 * chunk of 192 output features, chunks spread over the pool; F16/BF16 and packed integer
 * weights are expanded chunk by chunk into a per-thread f32 buffer first (192 x K floats),
 * so memory holds only the stored form. The chunk is fixed, whatever the thread count, so
 * results are too; each product packs its activations anew, which is why it is not smaller.
 * Attention runs one task per (sequence, head). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/vmath.h"

#define CHUNK 64 /* output features per task of the integer kernels */
#define F32_CHUNK PQ_OPS_CHUNK
#define QBLOCK 64 /* query rows per attention product */

int pq_ops_init(pq_ops *ops, int n_threads, int max_k, int max_t)
{
    memset(ops, 0, sizeof *ops);
    if (n_threads < 1)
        n_threads = 1;
    openblas_set_num_threads(1);
    ops->n_threads = n_threads;
    ops->pool = pq_pool_create(n_threads);
    ops->scratch_len = (size_t)F32_CHUNK * (size_t)max_k;
    if ((size_t)QBLOCK * (size_t)max_t > ops->scratch_len)
        ops->scratch_len = (size_t)QBLOCK * (size_t)max_t;
    ops->scratch = calloc((size_t)n_threads, sizeof *ops->scratch);
    if (!ops->pool || !ops->scratch) {
        pq_ops_free(ops);
        return -1;
    }
    for (int i = 0; i < n_threads; i++)
        if (!(ops->scratch[i] = pq_alloc_array(ops->scratch_len, sizeof(float)))) {
            pq_ops_free(ops);
            return -1;
        }
    return 0;
}

void pq_ops_free(pq_ops *ops)
{
    if (!ops)
        return;
    pq_pool_free(ops->pool);
    if (ops->scratch)
        for (int i = 0; i < ops->n_threads; i++)
            free(ops->scratch[i]);
    free(ops->scratch);
    free(ops->a8);
    free(ops->a8_scale);
    pq_qact_free(&ops->qact);
    free(ops->act_half);
    memset(ops, 0, sizeof *ops);
}

typedef struct {
    pq_ops *ops;
    float *out;
    int ldo;
    const float *in;
    int M;
    const pq_linear *lin;
} linear_job;

static void add_bias(const linear_job *j, int n0, int nc)
{
    if (j->lin->bias)
        for (int m = 0; m < j->M; m++)
            pq_vec_add(j->out + (size_t)m * j->ldo + n0, j->lin->bias + n0, (size_t)nc);
}

static void linear_task(void *ctx, size_t task, int thread)
{
    linear_job *j = ctx;
    const pq_linear *lin = j->lin;
    int N = lin->n_out, K = lin->n_in;
    int n0 = (int)task * F32_CHUNK, nc = N - n0 < F32_CHUNK ? N - n0 : F32_CHUNK;
    if (lin->w && lin->wt) { /* [K, N]: the chunk is columns n0.. of it */
        pq_sgemm_nn(j->M, nc, K, j->in, K, lin->w + n0, N, j->out + n0, j->ldo);
        add_bias(j, n0, nc);
        return;
    }
    const float *w = lin->w ? lin->w + (size_t)n0 * K : j->ops->scratch[thread];
    if (lin->q)
        for (int r = 0; r < nc; r++)
            pq_qweight_dequant_row(lin->q, n0 + r, j->ops->scratch[thread] + (size_t)r * K);
    else if (lin->w16)
        pq_vec_half_to_f32(lin->w16 + (size_t)n0 * K, j->ops->scratch[thread], (size_t)nc * K,
                           lin->w16_bf16);
    pq_sgemm_nt(j->M, nc, K, j->in, K, w, K, j->out + n0, j->ldo);
    add_bias(j, n0, nc);
}

void pq_capture_add(pq_capture *c, const pq_linear *lin, const float *in, int M)
{
    for (int k = 0; k < c->n; k++) {
        if (c->lin[k] != lin)
            continue;
        size_t K = (size_t)lin->n_in, need = (size_t)M * K;
        if (need > c->buf_len) {
            double *b = realloc(c->buf, need * sizeof *b);
            if (!b) {
                c->failed = 1;
                return;
            }
            c->buf = b;
            c->buf_len = need;
        }
        for (size_t i = 0; i < need; i++)
            c->buf[i] = in[i];
        if (c->raw[k]) {
            if (c->rows[k] + (size_t)M > c->raw_rows[k]) {
                c->failed = 1;
                return;
            }
            memcpy(c->raw[k] + c->rows[k] * K, in, need * sizeof *in);
        }
        if (c->absx[k])
            for (size_t i = 0; i < need; i++)
                c->absx[k][i % K] += fabs(c->buf[i]);
        if (c->amax[k])
            for (size_t i = 0; i < need; i++)
                c->amax[k][i % K] = fmax(c->amax[k][i % K], fabs(c->buf[i]));
        if (c->h[k])
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)K, M, 2.0, c->buf, (int)K, 1.0,
                        c->h[k], (int)K);
        c->rows[k] += (size_t)M;
    }
}

typedef struct {
    linear_job j;
    const uint8_t *mask; /* LLM.int8(): [n_seq][K] outlier features of each sequence, or NULL */
    const int *row_seq;  /* sequence of each row */
    const uint8_t *any;  /* per sequence: has outliers */
} int8_job;

/* One chunk of output features: int32 sums of int8 activations times int8 weights, scaled,
 * plus the bias, plus (LLM.int8()) the float product of the row's sequence's outlier features. */
static void int8_task(void *ctx, size_t task, int thread)
{
    int8_job *t = ctx;
    const pq_linear *lin = t->j.lin;
    const pq_qweight *q = lin->q;
    int N = lin->n_out, K = lin->n_in;
    int n0 = (int)task * CHUNK, nc = N - n0 < CHUNK ? N - n0 : CHUNK;
    (void)thread;
    /* the chunk's weights as int8 (stored as w + 128: flipping the top bit gives w), then
     * one exact integer product for all rows */
    int8_t *w8 = malloc((size_t)nc * K);
    int32_t *acc32 = malloc(sizeof(int32_t) * (size_t)t->j.M * nc);
    if (!w8 || !acc32) {
        free(w8);
        free(acc32);
        t->j.ops->oom = 1;
        return;
    }
    for (int r = 0; r < nc; r++) {
        const uint8_t *w = q->data + (size_t)(n0 + r) * q->row_bytes;
        for (int k = 0; k < K; k++)
            w8[(size_t)r * K + k] = (int8_t)(w[k] ^ 0x80);
    }
    if (pq_igemm_nt(t->j.M, nc, K, t->j.ops->a8, K, w8, K, acc32, nc)) {
        free(w8);
        free(acc32);
        t->j.ops->oom = 1;
        return;
    }
    for (int m = 0; m < t->j.M; m++) {
        const float *xf = t->j.in + (size_t)m * K;
        int s = t->mask ? t->row_seq[m] : 0;
        const uint8_t *mask = t->mask ? t->mask + (size_t)s * K : NULL;
        float sx = t->j.ops->a8_scale[m];
        for (int n = n0; n < n0 + nc; n++) {
            const uint8_t *w = q->data + (size_t)n * q->row_bytes;
            int32_t acc = acc32[(size_t)m * nc + (n - n0)];
            float o = (float)acc * (sx * q->scale[n]) + (lin->bias ? lin->bias[n] : 0.0f);
            if (mask && t->any[s]) {
                float f = 0;
                for (int k = 0; k < K; k++)
                    if (mask[k])
                        f += xf[k] * ((float)((int)w[k] - 128) * q->scale[n]);
                o += f;
            }
            t->j.out[(size_t)m * t->j.ldo + n] = o;
        }
    }
    free(w8);
    free(acc32);
}

/* W8A8 and LLM.int8(): the batch's activations quantized once (outlier features left out), then
 * chunks of output features, in parallel or not; W8A8 gives the bits of pq_ref_linear_w8a8. */
void pq_linear_llm_int8(pq_ops *ops, float *out, int ldo, const float *in, int M,
                        const pq_linear *lin, bool parallel)
{
    int K = lin->n_in, n_seq = ops->seq_start ? ops->n_seq : 1;
    bool outliers = lin->q->outlier > 0;
    size_t need = (size_t)M * (size_t)K;
    int8_t *a = need > ops->a8_cap ? realloc(ops->a8, need) : ops->a8;
    if (a) {
        ops->a8 = a;
        if (need > ops->a8_cap)
            ops->a8_cap = need;
    }
    float *sc = a ? realloc(ops->a8_scale, sizeof(float) * (size_t)M) : NULL;
    if (sc)
        ops->a8_scale = sc;
    uint8_t *mask = outliers ? calloc((size_t)n_seq * K + (size_t)n_seq, 1) : NULL;
    int *row_seq = outliers ? malloc(sizeof(int) * (size_t)M) : NULL;
    float *xm = outliers ? malloc(sizeof(float) * (size_t)K) : NULL;
    if (!a || !sc || (outliers && (!mask || !row_seq || !xm))) {
        ops->oom = 1;
        free(mask);
        free(row_seq);
        free(xm);
        return;
    }
    uint8_t *any = outliers ? mask + (size_t)n_seq * K : NULL;
    float thr = lin->q->outlier;
    for (int s = 0; outliers && s < n_seq; s++) {
        int r0 = ops->seq_start ? ops->seq_start[s] : 0,
            r1 = ops->seq_start ? ops->seq_start[s + 1] : M;
        for (int r = r0; r < r1 && r < M; r++) {
            row_seq[r] = s;
            for (int k = 0; k < K; k++)
                if (fabsf(in[(size_t)r * K + k]) >= thr) {
                    mask[(size_t)s * K + k] = 1;
                    any[s] = 1;
                }
        }
    }
    for (int m = 0; m < M; m++) {
        const float *x = in + (size_t)m * K;
        if (outliers) { /* the int8 part sees the non-outlier features only */
            const uint8_t *mk = mask + (size_t)row_seq[m] * K;
            for (int k = 0; k < K; k++)
                xm[k] = mk[k] ? 0.0f : x[k];
            x = xm;
        }
        pq_quant_act_row(x, K, ops->a8 + (size_t)m * K, &ops->a8_scale[m]);
    }
    int8_job t = {{ops, out, ldo, in, M, lin}, mask, row_seq, any};
    size_t tasks = (size_t)(lin->n_out + CHUNK - 1) / CHUNK;
    if (parallel)
        pq_pool_run(ops->pool, tasks, int8_task, &t);
    else
        for (size_t i = 0; i < tasks; i++)
            int8_task(&t, i, 0);
    free(mask);
    free(row_seq);
    free(xm);
}

typedef struct {
    linear_job j;
    const pq_qfmt_traits *t;
} ggml_job;

/* One chunk of output features: its rows decoded into the thread's buffer (codes, then the
 * block headers), each dotted with every quantized activation row. */
static void ggml_task(void *ctx, size_t task, int thread)
{
    ggml_job *g = ctx;
    const pq_linear *lin = g->j.lin;
    int N = lin->n_out, K = lin->n_in, nb = lin->q->n_groups;
    int n0 = (int)task * CHUNK, nc = N - n0 < CHUNK ? N - n0 : CHUNK;
    int8_t *codes = (int8_t *)g->j.ops->scratch[thread];
    pq_dec *h = (pq_dec *)(codes + (size_t)CHUNK * K); /* K is whole blocks of 32: aligned */
    double *wd = (double *)(h + (size_t)CHUNK * nb);   /* pq_dec's size is a multiple of 8 */
    for (int r = 0; r < nc; r++) {
        pq_qweight_decode_row(lin->q, n0 + r, codes + (size_t)r * K, h + (size_t)r * nb);
        pq_ggml_rows_layout(&g->j.ops->qact, codes + (size_t)r * K, h + (size_t)r * nb,
                            wd + (size_t)r * 2 * nb);
    }
    for (int m0 = 0; m0 < g->j.M; m0 += 4) { /* four rows per pass over the chunk */
        int rows = g->j.M - m0 < 4 ? g->j.M - m0 : 4;
        float *o = g->j.out + (size_t)m0 * g->j.ldo + n0;
        pq_ggml_dot_tile(g->t, codes, h, wd, nc, &g->j.ops->qact, m0, rows, o, (size_t)g->j.ldo);
        for (int r = 0; r < rows && lin->bias; r++)
            pq_vec_add(o + (size_t)r * g->j.ldo, lin->bias + n0, (size_t)nc);
    }
}

bool pq_linear_ggml_ok(const pq_linear *lin)
{
    const pq_qfmt_traits *t = lin->q ? pq_qfmt_get(lin->q->fmt) : NULL;
    return t && t->decode && t->dot_act != PQ_DOT_NONE && !lin->q->in_scale &&
           lin->n_in % t->block == 0 && lin->q->n_groups == lin->n_in / t->block;
}

void pq_linear_ggml(pq_ops *ops, float *out, int ldo, const float *in, int M, const pq_linear *lin,
                    bool parallel)
{
    const pq_qfmt_traits *t = pq_qfmt_get(lin->q->fmt);
    int K = lin->n_in;
    /* the chunk's codes, headers and their doubles fit the thread's buffer of F32_CHUNK x K
     * floats */
    _Static_assert(CHUNK * (32 + sizeof(pq_dec) + 2 * sizeof(double)) <= F32_CHUNK * 32 * 4,
                   "a chunk's decoded blocks of 32 weights fit the scratch");
    _Static_assert(sizeof(pq_dec) % sizeof(double) == 0, "the doubles after the headers align");
    if (pq_qact_reserve(&ops->qact, t->dot_act, M, K)) {
        ops->oom = 1;
        return;
    }
    for (int m = 0; m < M; m++)
        pq_qact_row(&ops->qact, m, in + (size_t)m * K);
    ggml_job g = {{ops, out, ldo, in, M, lin}, t};
    size_t tasks = (size_t)(lin->n_out + CHUNK - 1) / CHUNK;
    if (parallel)
        pq_pool_run(ops->pool, tasks, ggml_task, &g);
    else
        for (size_t i = 0; i < tasks; i++)
            ggml_task(&g, i, 0);
}

/* in rounded to F16 or BF16 as llama.cpp converts activations for such weights (into
 * ops->act_half); NULL when out of memory. */
static const float *round_half(pq_ops *ops, const float *in, size_t n, bool bf16)
{
    if (n > ops->act_half_cap) {
        float *p = realloc(ops->act_half, sizeof(float) * n);
        if (!p)
            return NULL;
        ops->act_half = p;
        ops->act_half_cap = n;
    }
    float *f = ops->act_half;
    for (size_t i = 0; i < n; i++)
        f[i] = bf16 ? pq_bf16_to_f32(pq_f32_to_bf16(in[i])) : pq_f16_to_f32(pq_f32_to_f16(in[i]));
    return f;
}

void pq_linear_fwd_ld(pq_ops *ops, float *out, int ldo, const float *in, int M,
                      const pq_linear *lin)
{
    if (M <= 0)
        return;
    if (ops->capture)
        pq_capture_add(ops->capture, lin, in, M);
    if (ops->llama_numerics && pq_linear_ggml_ok(lin)) {
        pq_linear_ggml(ops, out, ldo, in, M, lin, !ops->reference);
        return;
    }
    if (ops->llama_numerics && lin->w16) {
        in = round_half(ops, in, (size_t)M * (size_t)lin->n_in, lin->w16_bf16);
        if (!in) {
            ops->oom = 1;
            return;
        }
    }
    if (lin->q && lin->q->act8 && (lin->q->outlier > 0 || !ops->reference)) {
        pq_linear_llm_int8(ops, out, ldo, in, M, lin, !ops->reference);
        return;
    }
    if (ops->reference) {
        pq_ref_linear_ld(out, ldo, in, M, lin);
        return;
    }
    linear_job j = {ops, out, ldo, in, M, lin};
    pq_pool_run(ops->pool, (size_t)(lin->n_out + F32_CHUNK - 1) / F32_CHUNK, linear_task, &j);
}

void pq_linear_fwd(pq_ops *ops, float *out, const float *in, int M, const pq_linear *lin)
{
    pq_linear_fwd_ld(ops, out, lin->n_out, in, M, lin);
}

typedef struct {
    pq_ops *ops;
    float *out;
    const float *qkv;
    const int *seq_start;
    const pq_attn *a;
} attn_job;

/* One (sequence, head) in blocks of QBLOCK query rows: scores = Q K^T over the keys the block
 * can see (one product), masked and soft-maxed row by row, then out = P V (one product). The
 * meaning of pq_attention_head; only the order of the sums differs. */
static void attention_head_blocked(float *out, const float *qkv, int r0, int T, int h,
                                   const pq_attn *a, float *sc)
{
    int D = a->D, ld = pq_attn_ld(a), kvh = h / (a->H / a->KVH), ldo = a->H * D;
    size_t qo = (size_t)h * D, ko = (size_t)(a->H + kvh) * D,
           vo = (size_t)(a->H + a->KVH + kvh) * D;
    for (int i0 = 0; i0 < T; i0 += QBLOCK) {
        int i1 = i0 + QBLOCK < T ? i0 + QBLOCK : T; /* rows i0..i1-1 */
        int j0 = a->window > 0 && i0 - a->window + 1 > 0 ? i0 - a->window + 1 : 0;
        int j1 = a->bidirectional ? T : i1; /* keys j0..j1-1 */
        int nj = j1 - j0;
        const float *q = qkv + (size_t)(r0 + i0) * ld + qo;
        pq_sgemm_nt(i1 - i0, nj, D, q, ld, qkv + (size_t)(r0 + j0) * ld + ko, ld, sc, nj);
        for (int i = i0; i < i1; i++) {
            float *s = sc + (size_t)(i - i0) * nj;
            int lo = a->window > 0 && i - a->window + 1 > j0 ? i - a->window + 1 : j0;
            int hi = a->bidirectional ? T - 1 : i; /* last key seen */
            float scale = a->scale;
            if (a->softcap > 0 || a->alibi) {
                for (int j = lo; j <= hi; j++) {
                    float v = s[j - j0] * a->scale;
                    if (a->softcap > 0)
                        v = a->softcap * tanhf(v / a->softcap);
                    if (a->alibi)
                        v += a->alibi[h] * (float)j;
                    s[j - j0] = v;
                }
                scale = 1.0f;
            }
            pq_vec_softmax(s + (lo - j0), (size_t)(hi - lo + 1), scale);
            for (int j = j0; j < lo; j++)
                s[j - j0] = 0.0f;
            for (int j = hi + 1; j < j1; j++)
                s[j - j0] = 0.0f;
        }
        pq_sgemm_nn(i1 - i0, D, nj, sc, nj, qkv + (size_t)(r0 + j0) * ld + vo, ld,
                    out + (size_t)(r0 + i0) * ldo + qo, ldo);
    }
}

static void attn_task(void *ctx, size_t task, int thread)
{
    attn_job *j = ctx;
    int s = (int)(task / (size_t)j->a->H), h = (int)(task % (size_t)j->a->H);
    attention_head_blocked(j->out, j->qkv, j->seq_start[s], j->seq_start[s + 1] - j->seq_start[s],
                           h, j->a, j->ops->scratch[thread]);
}

void pq_attention_fwd(pq_ops *ops, float *out, const float *qkv, const int *seq_start, int n_seq,
                      const pq_attn *a)
{
    if (ops->reference) {
        pq_ref_attention(out, qkv, seq_start, n_seq, a);
        return;
    }
    attn_job j = {ops, out, qkv, seq_start, a};
    pq_pool_run(ops->pool, (size_t)n_seq * (size_t)a->H, attn_task, &j);
}

#define ELEMS 8192 /* floats per element-wise task */

typedef struct {
    float *x;
    const float *u;
    size_t n;
    pq_act act;
} elem_job;

static void elem_task(void *ctx, size_t task, int thread)
{
    elem_job *j = ctx;
    size_t i0 = task * ELEMS, n = j->n - i0 < ELEMS ? j->n - i0 : ELEMS;
    (void)thread;
    if (j->u)
        pq_vec_gated(j->x + i0, j->u + i0, n, j->act);
    else
        pq_vec_activation(j->x + i0, n, j->act);
}

void pq_activation_fwd(pq_ops *ops, float *x, size_t n, pq_act act)
{
    if (ops->llama_numerics && act == PQ_ACT_GELU_TANH)
        act = PQ_ACT_GELU_TANH_F16;
    if (ops->reference) {
        pq_activation(x, n, act);
        return;
    }
    elem_job j = {x, NULL, n, act};
    pq_pool_run(ops->pool, (n + ELEMS - 1) / ELEMS, elem_task, &j);
}

void pq_gated_fwd(pq_ops *ops, float *g, const float *u, size_t n, pq_act act)
{
    if (ops->llama_numerics && act == PQ_ACT_GELU_TANH)
        act = PQ_ACT_GELU_TANH_F16;
    if (ops->reference) {
        pq_gated(g, u, n, act);
        return;
    }
    elem_job j = {g, u, n, act};
    pq_pool_run(ops->pool, (n + ELEMS - 1) / ELEMS, elem_task, &j);
}

#define NORM_ROWS 16 /* rows per normalization task */

typedef struct {
    float *out;
    const float *in, *w, *b;
    int M, C;
    float eps;
    bool rms;
} norm_job;

static void norm_task(void *ctx, size_t task, int thread)
{
    norm_job *j = ctx;
    int r0 = (int)task * NORM_ROWS, n = j->M - r0 < NORM_ROWS ? j->M - r0 : NORM_ROWS;
    size_t o = (size_t)r0 * (size_t)j->C;
    (void)thread;
    if (j->rms)
        pq_rmsnorm(j->out + o, j->in + o, j->w, n, j->C, j->eps);
    else
        pq_layernorm(j->out + o, j->in + o, j->w, j->b, n, j->C, j->eps);
}

/* rows are independent: the pool changes no bit */
void pq_layernorm_fwd(pq_ops *ops, float *out, const float *in, const float *w, const float *b,
                      int M, int C, float eps)
{
    norm_job j = {out, in, w, b, M, C, eps, false};
    pq_pool_run(ops->pool, (size_t)(M + NORM_ROWS - 1) / NORM_ROWS, norm_task, &j);
}

typedef struct {
    float *x;
    const float *w;
    int M, ld, n_heads, D;
    float eps;
} head_norm_job;

static void head_norm_task(void *ctx, size_t task, int thread)
{
    head_norm_job *j = ctx;
    int r0 = (int)task * NORM_ROWS, n = j->M - r0 < NORM_ROWS ? j->M - r0 : NORM_ROWS;
    (void)thread;
    for (int r = r0; r < r0 + n; r++) { /* a row's heads are consecutive: n_heads rows of D */
        float *h = j->x + (size_t)r * (size_t)j->ld;
        pq_rmsnorm(h, h, j->w, j->n_heads, j->D, j->eps);
    }
}

void pq_head_rmsnorm_fwd(pq_ops *ops, float *x, int M, int ld, int n_heads, int D, const float *w,
                         float eps)
{
    head_norm_job j = {x, w, M, ld, n_heads, D, eps};
    pq_pool_run(ops->pool, (size_t)(M + NORM_ROWS - 1) / NORM_ROWS, head_norm_task, &j);
}

void pq_rmsnorm_fwd(pq_ops *ops, float *out, const float *in, const float *w, int M, int C,
                    float eps)
{
    norm_job j = {out, in, w, NULL, M, C, eps, true};
    pq_pool_run(ops->pool, (size_t)(M + NORM_ROWS - 1) / NORM_ROWS, norm_task, &j);
}
