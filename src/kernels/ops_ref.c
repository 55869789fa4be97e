/* Scalar reference kernels: the meaning of every op, written as plainly as possible.
 * LayerNorm as torch.nn.LayerNorm (biased variance, eps inside the square root); GELU as
 * transformers' NewGELUActivation (tanh) and GELUActivation (erf), SiLU; RMSNorm as
 * LlamaRMSNorm; attention as causal softmax(q k^T * scale) v with grouped kv heads and an
 * optional sliding window (Mistral). Fast kernels are tested against these. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "kernels/ops.h"
#include "quant/round.h"

void pq_ref_linear(float *out, const float *in, int M, const pq_linear *lin)
{
    pq_ref_linear_ld(out, lin->n_out, in, M, lin);
}

void pq_quant_act_row(const float *x, int K, int8_t *q, float *scale)
{
    float amax = 0;
    for (int k = 0; k < K; k++)
        amax = fmaxf(amax, fabsf(x[k]));
    float s = amax / 127.0f;
    *scale = s;
    for (int k = 0; k < K; k++) {
        int v = s > 0 ? pq_round_even(x[k] / s) : 0;
        q[k] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
    }
}

void pq_ref_linear_w8a8(float *out, int ldo, const float *in, int M, const pq_linear *lin)
{
    int N = lin->n_out, K = lin->n_in;
    const pq_qweight *q = lin->q;
    int8_t *xq = malloc((size_t)K);
    if (!xq)
        return;
    for (int m = 0; m < M; m++) {
        float sx;
        pq_quant_act_row(in + (size_t)m * K, K, xq, &sx);
        for (int n = 0; n < N; n++) {
            const uint8_t *w = q->data + (size_t)n * q->row_bytes;
            int32_t acc = 0;
            for (int k = 0; k < K; k++)
                acc += (int32_t)xq[k] * ((int32_t)w[k] - 128);
            out[(size_t)m * ldo + n] =
                (float)acc * (sx * q->scale[n]) + (lin->bias ? lin->bias[n] : 0.0f);
        }
    }
    free(xq);
}

void pq_linear_row_f32(const pq_linear *lin, int n, float *row)
{
    size_t K = (size_t)lin->n_in;
    if (lin->q)
        pq_qweight_dequant_row(lin->q, n, row);
    else if (lin->w16)
        for (size_t k = 0; k < K; k++)
            row[k] = lin->w16_bf16 ? pq_bf16_to_f32(lin->w16[n * K + k])
                                   : pq_f16_to_f32(lin->w16[n * K + k]);
    else if (lin->wt)
        for (size_t k = 0; k < K; k++)
            row[k] = lin->w[k * (size_t)lin->n_out + n];
    else
        memcpy(row, lin->w + n * K, sizeof(float) * K);
}

const float *pq_linear_f32(const pq_linear *lin, float **tmp)
{
    *tmp = NULL;
    if (lin->w && !lin->wt)
        return lin->w;
    float *w = pq_alloc_array((size_t)lin->n_out * (size_t)lin->n_in, sizeof *w);
    for (int n = 0; w && n < lin->n_out; n++)
        pq_linear_row_f32(lin, n, w + (size_t)n * lin->n_in);
    *tmp = w;
    return w;
}

void pq_ref_linear_ld(float *out, int ldo, const float *in, int M, const pq_linear *lin)
{
    if (lin->q && lin->q->act8) {
        pq_ref_linear_w8a8(out, ldo, in, M, lin);
        return;
    }
    int N = lin->n_out, K = lin->n_in;
    bool direct = lin->w && !lin->wt;
    float *row = direct ? NULL : malloc(sizeof(float) * (size_t)K);
    for (int n = 0; n < N; n++) {
        const float *w = direct ? lin->w + (size_t)n * K : row;
        if (!direct) {
            if (!row)
                return; /* allocation failure: leave out untouched (reference use only) */
            pq_linear_row_f32(lin, n, row);
        }
        for (int m = 0; m < M; m++) {
            const float *x = in + (size_t)m * K;
            float acc = 0;
            for (int k = 0; k < K; k++)
                acc += x[k] * w[k];
            out[(size_t)m * ldo + n] = acc + (lin->bias ? lin->bias[n] : 0.0f);
        }
    }
    free(row);
}

void pq_layernorm(float *out, const float *in, const float *w, const float *b, int M, int C,
                  float eps)
{
    for (int m = 0; m < M; m++) {
        const float *x = in + (size_t)m * C;
        float *y = out + (size_t)m * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++)
            mean += x[c];
        mean /= C;
        for (int c = 0; c < C; c++)
            var += (x[c] - mean) * (x[c] - mean);
        var /= C;
        float rstd = (float)(1.0 / sqrt(var + eps)), fm = (float)mean;
        for (int c = 0; c < C; c++)
            y[c] = !w  ? (x[c] - fm) * rstd
                   : b ? (x[c] - fm) * rstd * w[c] + b[c]
                       : (x[c] - fm) * rstd * w[c];
    }
}

/* llama.cpp's tanh GELU on F16 values, as a table over the 65536 F16 bit patterns (as ggml
 * keeps it): the input rounded to F16, the function in f32, the result rounded to F16. */
static uint16_t gelu_f16_table[65536];
static pthread_once_t gelu_f16_once = PTHREAD_ONCE_INIT;

static void gelu_f16_init(void)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (uint32_t h = 0; h < 65536; h++) {
        float v = pq_f16_to_f32((uint16_t)h);
        v = 0.5f * v * (1.0f + tanhf(k * v * (1.0f + 0.044715f * v * v)));
        gelu_f16_table[h] = pq_f32_to_f16(v);
    }
}

void pq_activation(float *x, size_t n, pq_act act)
{
    if (act == PQ_ACT_GELU_TANH_F16)
        pthread_once(&gelu_f16_once, gelu_f16_init);
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        switch (act) {
        case PQ_ACT_GELU_TANH:
            x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
            break;
        case PQ_ACT_GELU_ERF:
            x[i] = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
            break;
        case PQ_ACT_RELU:
            x[i] = v > 0 ? v : 0;
            break;
        case PQ_ACT_SILU:
            x[i] = v / (1.0f + expf(-v));
            break;
        case PQ_ACT_GELU_TANH_F16:
            if (v <= -10.0f || v >= 10.0f) {
                x[i] = v <= -10.0f ? 0.0f : v;
                break;
            }
            x[i] = pq_f16_to_f32(gelu_f16_table[pq_f32_to_f16(v)]);
            break;
        }
    }
}

void pq_embed(float *x, const float *table, const int32_t *tokens, int M, int C)
{
    for (int r = 0; r < M; r++)
        memcpy(x + (size_t)r * C, table + (size_t)tokens[r] * C, sizeof(float) * (size_t)C);
}

void pq_add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

void pq_gated(float *g, const float *u, size_t n, pq_act act)
{
    pq_activation(g, n, act);
    for (size_t i = 0; i < n; i++)
        g[i] *= u[i];
}

void pq_rmsnorm(float *out, const float *in, const float *w, int M, int C, float eps)
{
    for (int m = 0; m < M; m++) {
        const float *x = in + (size_t)m * C;
        float *y = out + (size_t)m * C;
        double ss = 0;
        for (int c = 0; c < C; c++)
            ss += (double)x[c] * x[c];
        float r = (float)(1.0 / sqrt(ss / C + eps));
        for (int c = 0; c < C; c++)
            y[c] = w[c] * (x[c] * r);
    }
}

void pq_rope_inv_freq(float *inv, int rot, const pq_rope *r)
{
    /* as transformers computes it, in float: 1 / theta^(2i/rot) */
    for (int i = 0; i < rot / 2; i++) {
        float f = 1.0f / powf(r->theta, (float)(2 * i) / (float)rot);
        if (r->kind == PQ_ROPE_LINEAR) {
            f /= r->factor;
        } else if (r->kind == PQ_ROPE_LLAMA3) {
            float wavelen = 2.0f * (float)M_PI / f;
            float low_wl = r->orig_ctx / r->low_freq, high_wl = r->orig_ctx / r->high_freq;
            float scaled = wavelen > low_wl ? f / r->factor : f;
            if (!(wavelen < high_wl) && !(wavelen > low_wl)) {
                float smooth = (r->orig_ctx / wavelen - r->low_freq) / (r->high_freq - r->low_freq);
                scaled = (1 - smooth) * scaled / r->factor + smooth * scaled;
            }
            f = scaled;
        }
        inv[i] = f;
    }
}

/* Rotary over the pairs (i * step, i * step + gap) of the first rot dims of every q and k head:
 * rotate_half pairs (step 1, gap rot / 2) or interleaved ones (step 2, gap 1). */
static void rope_pairs(float *qkv, const int *seq_start, int n_seq, const pq_attn *a, int rot,
                       const pq_rope *rp, int step, int gap)
{
    int half = rot / 2, ld = pq_attn_ld(a);
    float inv[512];
    if (half <= 0 || half > 512)
        return;
    pq_rope_inv_freq(inv, rot, rp); /* angle = position * inv */
    for (int s = 0; s < n_seq; s++)
        for (int r = seq_start[s]; r < seq_start[s + 1]; r++) {
            float pos = (float)(r - seq_start[s]);
            for (int i = 0; i < half; i++) {
                float ang = pos * inv[i];
                float c = (float)cos((double)ang), sn = (float)sin((double)ang);
                for (int h = 0; h < a->H + a->KVH; h++) { /* q heads, then k heads */
                    float *x = qkv + (size_t)r * ld + (size_t)h * a->D + (size_t)i * step;
                    float x1 = x[0], x2 = x[gap];
                    x[0] = x1 * c - x2 * sn;
                    x[gap] = x2 * c + x1 * sn;
                }
            }
        }
}

void pq_rope_neox(float *qkv, const int *seq_start, int n_seq, const pq_attn *a, int rot,
                  const pq_rope *rp)
{
    rope_pairs(qkv, seq_start, n_seq, a, rot, rp, 1, rot / 2);
}

void pq_rope_interleaved(float *qkv, const int *seq_start, int n_seq, const pq_attn *a, int rot,
                         const pq_rope *rp)
{
    rope_pairs(qkv, seq_start, n_seq, a, rot, rp, 2, 1);
}

/* One (sequence, head): rows r0..r0+T of qkv; scores (T) scratch. */
void pq_attention_head(float *out, const float *qkv, int r0, int T, int h, const pq_attn *a,
                       float *scores)
{
    int D = a->D, ld = pq_attn_ld(a), kvh = h / (a->H / a->KVH);
    size_t qo = (size_t)h * D, ko = (size_t)(a->H + kvh) * D,
           vo = (size_t)(a->H + a->KVH + kvh) * D;
    for (int i = 0; i < T; i++) {
        const float *q = qkv + (size_t)(r0 + i) * ld + qo;
        int j0 = a->window > 0 && i - a->window + 1 > 0 ? i - a->window + 1 : 0;
        int j1 = a->bidirectional ? T - 1 : i; /* last key position seen */
        float mx = -INFINITY;
        for (int j = j0; j <= j1; j++) {
            const float *k = qkv + (size_t)(r0 + j) * ld + ko;
            float s = 0;
            for (int d = 0; d < D; d++)
                s += q[d] * k[d];
            float v = s * a->scale;
            if (a->softcap > 0)
                v = a->softcap * tanhf(v / a->softcap);
            scores[j] = a->alibi ? v + a->alibi[h] * (float)j : v;
            mx = fmaxf(mx, scores[j]);
        }
        float sum = 0;
        for (int j = j0; j <= j1; j++) {
            scores[j] = expf(scores[j] - mx);
            sum += scores[j];
        }
        float inv = 1.0f / sum;
        float *o = out + (size_t)(r0 + i) * a->H * D + qo;
        for (int d = 0; d < D; d++)
            o[d] = 0;
        for (int j = j0; j <= j1; j++) {
            const float *v = qkv + (size_t)(r0 + j) * ld + vo;
            float p = scores[j] * inv;
            for (int d = 0; d < D; d++)
                o[d] += p * v[d];
        }
    }
}

void pq_ref_attention(float *out, const float *qkv, const int *seq_start, int n_seq,
                      const pq_attn *a)
{
    int max_t = 0;
    for (int s = 0; s < n_seq; s++)
        if (seq_start[s + 1] - seq_start[s] > max_t)
            max_t = seq_start[s + 1] - seq_start[s];
    float *scores = malloc(sizeof(float) * (size_t)(max_t ? max_t : 1));
    if (!scores)
        return;
    for (int s = 0; s < n_seq; s++)
        for (int h = 0; h < a->H; h++)
            pq_attention_head(out, qkv, seq_start[s], seq_start[s + 1] - seq_start[s], h, a,
                              scores);
    free(scores);
}
