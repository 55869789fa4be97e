/* Packed integer weights and round-to-nearest (layout in qformat.h). The asymmetric range
 * always includes 0 (min(x,0)..max(x,0)) and is GPTQ's reference quantizer (gptq.h), so the
 * zero point lies on the grid and every value is within half a step of its level. */
#include "quant/qformat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "quant/gptq.h"

int pq_qspec_parse(const char *text, pq_qspec *out, polyq_err *err)
{
    memset(out, 0, sizeof *out);
    if (!strcmp(text, "fp32") || !strcmp(text, "f32") || !strcmp(text, "none")) {
        out->none = true;
        snprintf(out->name, sizeof out->name, "fp32");
        return 0;
    }
    if (!strncmp(text, "llm-int8", 8)) {
        const char *r = text + 8;
        out->fmt = PQ_QF_INT;
        out->bits = 8;
        out->sym = true;
        out->gran = PQ_GRAN_CHANNEL;
        out->act8 = true;
        out->outlier = 6.0f;
        if (!strncmp(r, "-t", 2)) {
            char *e;
            double t = strtod(r + 2, &e);
            if (e == r + 2 || !(t > 0))
                return pq_fail(err, POLYQ_INVALID_ARG, "quant spec \"%s\": the threshold after -t must be positive", text);
            out->outlier = (float)t;
            r = e;
        }
        if (*r)
            goto bad;
        snprintf(out->name, sizeof out->name, "%s", text);
        return 0;
    }
    if (!strcmp(text, "w8a8") || !strncmp(text, "smoothquant", 11)) {
        const char *r = text + (text[0] == 'w' ? 4 : 11);
        out->fmt = PQ_QF_INT;
        out->bits = 8;
        out->sym = true;
        out->gran = PQ_GRAN_CHANNEL;
        out->act8 = true;
        out->smooth = text[0] == 's';
        out->alpha = 0.5f;
        if (out->smooth && !strncmp(r, "-a", 2)) {
            char *e;
            double a = strtod(r + 2, &e);
            if (e == r + 2 || !(a >= 0 && a <= 1))
                return pq_fail(err, POLYQ_INVALID_ARG,
                               "quant spec \"%s\": the migration strength after -a must be in [0, 1]", text);
            out->alpha = (float)a;
            r = e;
        }
        if (*r)
            goto bad;
        snprintf(out->name, sizeof out->name, "%s", text);
        return 0;
    }
    static const struct { const char *name; pq_qfmt fmt; int bits; } blocks[] = {
        {"q8_0", PQ_QF_Q8_0, 8}, {"q4_0", PQ_QF_Q4_0, 4}, {"q4_1", PQ_QF_Q4_1, 4},
        {"q5_0", PQ_QF_Q5_0, 5}, {"q5_1", PQ_QF_Q5_1, 5}, {"nf4", PQ_QF_NF4, 4}, {"fp4", PQ_QF_FP4, 4},
        {"q2_k", PQ_QF_Q2_K, 2}, {"q3_k", PQ_QF_Q3_K, 3}, {"q4_k", PQ_QF_Q4_K, 4}, {"q5_k", PQ_QF_Q5_K, 5},
        {"q6_k", PQ_QF_Q6_K, 6}, {"q4_k_m", PQ_QF_Q4_K, 4}, {"nf4-dq", PQ_QF_NF4, 4}, {"fp4-dq", PQ_QF_FP4, 4}};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        size_t n = strlen(blocks[i].name);
        if (strncmp(text, blocks[i].name, n) || (text[n] && strcmp(text + n, "-head")))
            continue;
        out->fmt = blocks[i].fmt;
        out->bits = blocks[i].bits;
        out->gran = PQ_GRAN_GROUP;
        out->group = pq_qfmt_block(blocks[i].fmt);
        out->head = text[n] != 0;
        if (!strcmp(blocks[i].name, "q4_k_m"))
            out->k_mix = out->head = true; /* the recipe includes the output layer */
        out->dq = strstr(blocks[i].name, "-dq") != NULL;
        snprintf(out->name, sizeof out->name, "%s", text);
        return 0;
    }
    const char *p = text;
    char *end;
    if (!strncmp(p, "gptq-", 5)) {
        out->gptq = true;
        p += 5;
    } else if (!strncmp(p, "awq-", 4)) {
        out->awq = true;
        p += 4;
    }
    if (strncmp(p, "int", 3) != 0)
        goto bad;
    long bits = strtol(p + 3, &end, 10);
    if (end == p + 3 || bits < 2 || bits > 8)
        goto bad;
    out->bits = (int)bits;
    out->sym = bits == 8;
    out->gran = PQ_GRAN_CHANNEL;
    p = end;
    bool seen_gran = false, seen_sym = false;
    while (*p == '-') {
        p++;
        if (*p == 'g' && p[1] >= '0' && p[1] <= '9' && !seen_gran) {
            long g = strtol(p + 1, &end, 10);
            if (g < 1 || g > (1 << 20))
                goto bad;
            out->gran = PQ_GRAN_GROUP;
            out->group = (int)g;
            seen_gran = true;
            p = end;
        } else if (!strncmp(p, "tensor", 6) && !seen_gran) {
            out->gran = PQ_GRAN_TENSOR;
            seen_gran = true;
            p += 6;
        } else if (!strncmp(p, "channel", 7) && !seen_gran) {
            seen_gran = true;
            p += 7;
        } else if (!strncmp(p, "sym", 3) && !seen_sym) {
            out->sym = true;
            seen_sym = true;
            p += 3;
        } else if (!strncmp(p, "asym", 4) && !seen_sym) {
            out->sym = false;
            seen_sym = true;
            p += 4;
        } else if (!strncmp(p, "clip", 4) && out->awq && !out->clip) {
            out->clip = true;
            p += 4;
        } else if (!strncmp(p, "duo", 3) && out->awq && !out->duo) {
            out->duo = true;
            p += 3;
        } else if (!strncmp(p, "act", 3) && out->gptq && !out->act_order) {
            out->act_order = true;
            p += 3;
        } else if (!strncmp(p, "head", 4) && !out->head) {
            out->head = true;
            p += 4;
        } else {
            goto bad;
        }
        if (*p && *p != '-')
            goto bad;
    }
    if (*p)
        goto bad;
    if ((out->gptq || out->awq) && out->gran == PQ_GRAN_TENSOR)
        return pq_fail(err, POLYQ_INVALID_ARG, "quant spec \"%s\": %s quantizes per channel or in groups, not per tensor",
                       text, out->gptq ? "GPTQ" : "AWQ");
    snprintf(out->name, sizeof out->name, "%s", text);
    return 0;
bad:
    return pq_fail(err, POLYQ_INVALID_ARG,
                   "quant spec \"%s\" is not understood: expected fp32, "
                   "int<2-8>[-g<group>|-tensor][-sym|-asym][-head] (e.g. int8, int4-g128), "
                   "gptq-int<2-8>[-g<group>][-sym][-act][-head] or awq-int<2-8>[-g<group>][-clip][-duo] (calibrated), "
                   "q8_0, q4_0, q4_1, q5_0, q5_1, q2_k .. q6_k, q4_k_m (llama.cpp), nf4, fp4, nf4-dq, fp4-dq (bitsandbytes), each with optional -head, "
                   "or w8a8, smoothquant[-a<alpha>], llm-int8[-t<threshold>] (int8 weights and activations)",
                   text);
}

const char *pq_qspec_method(const pq_qspec *s)
{
    if (!strncmp(s->name, "gguf:", 5))
        return "ggml";
    return s->gptq ? "gptq" : s->awq ? "awq" : s->smooth ? "smoothquant" : s->outlier > 0 ? "llm.int8"
           : s->act8 ? "w8a8" : s->fmt == PQ_QF_NF4 || s->fmt == PQ_QF_FP4 ? "bitsandbytes"
           : s->fmt != PQ_QF_INT ? "ggml" : "rtn";
}

unsigned pq_unpack(const uint8_t *row, int bits, size_t i)
{
    size_t bit = i * (size_t)bits, byte = bit >> 3;
    unsigned shift = bit & 7;
    unsigned v = row[byte] >> shift;
    if (shift + (unsigned)bits > 8)
        v |= (unsigned)row[byte + 1] << (8 - shift);
    return v & ((1u << bits) - 1);
}

void pq_pack(uint8_t *row, int bits, size_t i, unsigned v)
{
    size_t bit = i * (size_t)bits, byte = bit >> 3;
    unsigned shift = bit & 7, mask = (1u << bits) - 1;
    v &= mask;
    row[byte] = (uint8_t)((row[byte] & ~(mask << shift)) | (v << shift));
    if (shift + (unsigned)bits > 8) {
        unsigned hi = 8 - shift;
        row[byte + 1] = (uint8_t)((row[byte + 1] & ~(mask >> hi)) | (v >> hi));
    }
}

void pq_rtn_group_ref(const float *x, int n, int bits, bool sym, float *scale, uint8_t *zero,
                      uint8_t *u)
{
    if (sym) {
        int qmax = (1 << (bits - 1)) - 1, mid = 1 << (bits - 1);
        float amax = 0;
        for (int i = 0; i < n; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / (float)qmax, id = d ? 1.0f / d : 0.0f;
        for (int i = 0; i < n; i++) {
            int q = (int)lrintf(x[i] * id);
            q = q < -qmax ? -qmax : q > qmax ? qmax : q;
            u[i] = (uint8_t)(q + mid);
        }
        *scale = d;
        return;
    }
    /* asymmetric: GPTQ's quantizer, so that GPTQ without error feedback is exactly this */
    int qmax = (1 << bits) - 1, z;
    float d;
    pq_gptq_params(x, n, bits, false, &d, &z);
    for (int i = 0; i < n; i++)
        u[i] = (uint8_t)pq_gptq_level(x[i], d, z, qmax);
    *scale = d;
    *zero = (uint8_t)z;
}

void pq_qweight_free(pq_qweight *q)
{
    if (!q)
        return;
    free(q->data);
    free(q->scale);
    free(q->zero);
    free(q->in_scale);
    free(q);
}

int pq_qweight_rtn(const float *w, int n_out, int n_in, const pq_qspec *spec, pq_qweight **out,
                   polyq_err *err)
{
    *out = NULL;
    if (spec->fmt != PQ_QF_INT)
        return pq_qweight_blocks(w, n_out, n_in, spec, out, err);
    if (spec->none || n_out <= 0 || n_in <= 0)
        return pq_fail(err, POLYQ_INVALID_ARG, "quantize: nothing to do for spec %s on [%d, %d]",
                       spec->name, n_out, n_in);
    pq_qweight *q = calloc(1, sizeof *q);
    if (!q)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    q->bits = spec->bits;
    q->n_out = n_out;
    q->n_in = n_in;
    q->gran = spec->gran;
    q->sym = spec->sym;
    q->group = spec->gran == PQ_GRAN_GROUP ? (spec->group < n_in ? spec->group : n_in) : n_in;
    q->n_groups = spec->gran == PQ_GRAN_TENSOR ? 1 : (n_in + q->group - 1) / q->group;
    q->row_bytes = ((size_t)n_in * (size_t)spec->bits + 7) / 8;
    size_t n_scales = spec->gran == PQ_GRAN_TENSOR ? 1 : (size_t)n_out * (size_t)q->n_groups;
    q->data = pq_calloc_array((size_t)n_out, q->row_bytes);
    q->scale = pq_alloc_array(n_scales, sizeof *q->scale);
    q->zero = spec->sym ? NULL : pq_alloc_array(n_scales, 1);
    uint8_t *u = malloc((size_t)n_in);
    if (!q->data || !q->scale || (!spec->sym && !q->zero) || !u) {
        free(u);
        pq_qweight_free(q);
        return pq_fail(err, POLYQ_NOMEM, "out of memory quantizing a [%d, %d] matrix", n_out, n_in);
    }
    if (spec->gran == PQ_GRAN_TENSOR) {
        /* one scale/zero from the whole matrix, then every row on that grid */
        float lo = 0, hi = 0, amax = 0;
        size_t total = (size_t)n_out * (size_t)n_in;
        for (size_t i = 0; i < total; i++) {
            lo = fminf(lo, w[i]);
            hi = fmaxf(hi, w[i]);
        }
        amax = fmaxf(-lo, hi);
        float probe[2] = {spec->sym ? amax : lo, spec->sym ? -amax : hi};
        uint8_t pu[2];
        pq_rtn_group_ref(probe, 2, q->bits, q->sym, &q->scale[0], q->zero ? &q->zero[0] : pu, pu);
        float d = q->scale[0], id = d ? 1.0f / d : 0.0f;
        int qmax = q->sym ? (1 << (q->bits - 1)) - 1 : (1 << q->bits) - 1;
        int z = q->sym ? 1 << (q->bits - 1) : q->zero[0];
        for (int r = 0; r < n_out; r++)
            for (int i = 0; i < n_in; i++) {
                float x = w[(size_t)r * n_in + i];
                int v = (int)lrintf(x * id);
                v = q->sym ? (v < -qmax ? -qmax : v > qmax ? qmax : v) + z
                           : pq_gptq_level(x, d, z, qmax);
                pq_pack(q->data + (size_t)r * q->row_bytes, q->bits, (size_t)i, (unsigned)v);
            }
    } else {
        for (int r = 0; r < n_out; r++) {
            const float *x = w + (size_t)r * n_in;
            for (int g = 0; g < q->n_groups; g++) {
                int i0 = g * q->group, n = n_in - i0 < q->group ? n_in - i0 : q->group;
                size_t gi = (size_t)r * q->n_groups + g;
                uint8_t zdummy;
                pq_rtn_group_ref(x + i0, n, q->bits, q->sym, &q->scale[gi],
                                 q->zero ? &q->zero[gi] : &zdummy, u + i0);
            }
            for (int i = 0; i < n_in; i++)
                pq_pack(q->data + (size_t)r * q->row_bytes, q->bits, (size_t)i, u[i]);
        }
    }
    free(u);
    *out = q;
    return 0;
}

static void dequant_int_row(const pq_qweight *q, int r, float *out);

void pq_qweight_dequant_row(const pq_qweight *q, int r, float *out)
{
    if (q->fmt != PQ_QF_INT) {
        pq_qweight_blocks_dequant_row(q, r, out);
        return;
    }
    dequant_int_row(q, r, out);
    if (q->in_scale)
        for (int i = 0; i < q->n_in; i++)
            out[i] *= q->in_scale[i];
}

static void dequant_int_row(const pq_qweight *q, int r, float *out)
{
    const uint8_t *row = q->data + (size_t)r * q->row_bytes;
    int mid = 1 << (q->bits - 1);
    for (int g = 0; g < (q->gran == PQ_GRAN_TENSOR ? 1 : q->n_groups); g++) {
        size_t gi = q->gran == PQ_GRAN_TENSOR ? 0 : (size_t)r * q->n_groups + g;
        float d = q->scale[gi];
        int z = q->sym ? mid : q->zero[gi];
        int i0 = q->gran == PQ_GRAN_TENSOR ? 0 : g * q->group;
        int i1 = q->gran == PQ_GRAN_TENSOR ? q->n_in : (i0 + q->group < q->n_in ? i0 + q->group : q->n_in);
        if (q->bits == 4 && (i0 & 1) == 0) {
            int i = i0;
            for (; i + 1 < i1; i += 2) {
                uint8_t b = row[i >> 1];
                out[i] = (float)((int)(b & 15) - z) * d;
                out[i + 1] = (float)((int)(b >> 4) - z) * d;
            }
            for (; i < i1; i++)
                out[i] = (float)((int)pq_unpack(row, 4, (size_t)i) - z) * d;
        } else if (q->bits == 8) {
            for (int i = i0; i < i1; i++)
                out[i] = (float)((int)row[i] - z) * d;
        } else {
            for (int i = i0; i < i1; i++)
                out[i] = (float)((int)pq_unpack(row, q->bits, (size_t)i) - z) * d;
        }
    }
}

double pq_qweight_bits(const pq_qweight *q)
{
    if ((q->fmt == PQ_QF_NF4 || q->fmt == PQ_QF_FP4) && q->dq) /* codes, u8 absmax codes, f32 nested + offset */
        return 8.0 * (double)(((size_t)q->n_out * q->n_in + 1) / 2) + 8.0 * q->n_groups +
               32.0 * ((q->n_groups + 255) / 256 + 1);
    if (q->fmt == PQ_QF_NF4 || q->fmt == PQ_QF_FP4) /* 4-bit codes + an f32 absmax per 64 */
        return 8.0 * (double)(((size_t)q->n_out * q->n_in + 1) / 2) + 32.0 * q->n_groups;
    if (q->fmt != PQ_QF_INT) /* ggml blocks hold their scales */
        return 8.0 * (double)q->row_bytes * q->n_out;
    size_t n_scales = q->gran == PQ_GRAN_TENSOR ? 1 : (size_t)q->n_out * q->n_groups;
    return 8.0 * (double)q->row_bytes * q->n_out + 32.0 * n_scales + (q->zero ? 8.0 * n_scales : 0) +
           (q->in_scale ? 32.0 * q->n_in : 0);
}

int pq_qspec_for_linear(const pq_qspec *s, pq_role role, int layer, int n_layer, int n_in,
                        pq_qspec *out, polyq_err *err)
{
    *out = *s;
    if (!pq_qfmt_is_k(s->fmt))
        return 0;
    const char *name = NULL;
    if (s->k_mix) {
        bool more = layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
        name = role == PQ_ROLE_HEAD ? "q6_k"
             : role == PQ_ROLE_QKV ? "q5_k"
             : (role == PQ_ROLE_V || role == PQ_ROLE_DOWN) && more ? "q6_k" : "q4_k";
    }
    pq_qspec k;
    if (name && pq_qspec_parse(name, &k, err))
        return -1;
    pq_qfmt f = name ? k.fmt : s->fmt;
    if (n_in % 256) {
        name = f == PQ_QF_Q4_K ? "q5_0" : f == PQ_QF_Q5_K ? "q5_1" : f == PQ_QF_Q6_K ? "q8_0" : "q4_0";
        if (n_in % 32) {
            pq_qspec_parse("fp32", out, err);
            return 0;
        }
        if (pq_qspec_parse(name, &k, err))
            return -1;
    }
    if (name) {
        snprintf(k.name, sizeof k.name, "%s", s->name);
        k.head = s->head;
        *out = k;
    }
    return 0;
}
