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
#include "quant/round.h"

static int qspec_parse(const char *text, pq_qspec *out, polyq_err *err)
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
                return pq_fail(err, POLYQ_INVALID_ARG,
                               "quant spec \"%s\": the threshold after -t must be positive", text);
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
                return pq_fail(
                    err, POLYQ_INVALID_ARG,
                    "quant spec \"%s\": the migration strength after -a must be in [0, 1]", text);
            out->alpha = (float)a;
            r = e;
        }
        if (*r)
            goto bad;
        snprintf(out->name, sizeof out->name, "%s", text);
        return 0;
    }
    /* a block format by its name, or one of the recipes built on them; each may end in -head */
    static const struct {
        const char *name, *fmt;
        bool k_mix, dq;
    } recipes[] = {{"q4_k_m", "q4_k", true, false},
                   {"nf4-dq", "nf4", false, true},
                   {"fp4-dq", "fp4", false, true}};
    char base[32];
    size_t n = strcspn(text, "-");
    bool head = false;
    for (size_t i = 0; i < sizeof recipes / sizeof recipes[0] && n < sizeof base; i++) {
        size_t rn = strlen(recipes[i].name);
        if (!strncmp(text, recipes[i].name, rn) && (!text[rn] || !strcmp(text + rn, "-head")))
            n = rn;
    }
    if (n < sizeof base && (!text[n] || !strcmp(text + n, "-head"))) {
        memcpy(base, text, n);
        base[n] = 0;
        head = text[n] != 0;
        const char *fname = base;
        bool k_mix = false, dq = false;
        for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++)
            if (!strcmp(base, recipes[i].name)) {
                fname = recipes[i].fmt;
                k_mix = recipes[i].k_mix;
                dq = recipes[i].dq;
            }
        pq_qfmt f;
        if (pq_qfmt_by_name(fname, &f)) {
            const pq_qfmt_traits *t = pq_qfmt_get(f);
            out->fmt = f;
            out->bits = t->bits;
            out->gran = PQ_GRAN_GROUP;
            out->group = t->block;
            out->head = head || k_mix; /* q4_k_m's recipe includes the output layer */
            out->k_mix = k_mix;
            out->dq = dq;
            snprintf(out->name, sizeof out->name, "%s", text);
            return 0;
        }
    }
    const char *p = text;
    char *end;
    if (!strncmp(p, "gptq-", 5)) {
        out->gptq = true;
        p += 5;
    } else if (!strncmp(p, "awq-", 4)) {
        out->awq = out->minmax = true;
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
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "quant spec \"%s\": %s quantizes per channel or in groups, not per tensor",
                       text, out->gptq ? "GPTQ" : "AWQ");
    snprintf(out->name, sizeof out->name, "%s", text);
    return 0;
bad:
    return POLYQ_INVALID_ARG - 1000; /* not understood: pq_qspec_parse says so */
}

/* A spec that parses and is one slip away from text: '_' for '-' (or back), or a common spec
 * within a few edits; NULL if none. */
static const char *spec_suggestion(const char *text, char *buf, size_t size)
{
    pq_qspec tmp;
    for (int swap = 0; swap < 2; swap++) {
        snprintf(buf, size, "%s", text);
        for (char *c = buf; *c; c++)
            if (*c == (swap ? '-' : '_'))
                *c = swap ? '_' : '-';
        if (strcmp(buf, text) && qspec_parse(buf, &tmp, NULL) == 0)
            return buf;
    }
    static const char *const common[] = {"fp32",
                                         "int8",
                                         "int4-g128",
                                         "int4-g128-sym",
                                         "int4-g32",
                                         "int3-g64",
                                         "int2-g16",
                                         "gptq-int4-g128",
                                         "gptq-int4-act",
                                         "awq-int4-g128",
                                         "awq-int4-g128-clip",
                                         "awq-int4-g128-duo",
                                         "q4_k_m",
                                         "nf4",
                                         "fp4",
                                         "nf4-dq",
                                         "fp4-dq",
                                         "w8a8",
                                         "smoothquant",
                                         "llm-int8"};
    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        names[n++] = common[i];
    for (int f = 0; f < pq_qfmt_count() && n < 64; f++)
        names[n++] = pq_qfmt_get((pq_qfmt)f)->name;
    const char *near = pq_nearest(text, names, n);
    if (!near)
        return NULL;
    snprintf(buf, size, "%s", near);
    return buf;
}

/* Spec names are read without case (Q4_K_M as llama.cpp users type it). */
int pq_qspec_parse(const char *text, pq_qspec *out, polyq_err *err)
{
    char low[sizeof out->name];
    size_t n = strlen(text);
    if (n >= sizeof low)
        n = sizeof low - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = text[i] >= 'A' && text[i] <= 'Z' ? (char)(text[i] - 'A' + 'a') : text[i];
    low[n] = 0;
    static const char numerics[] = "-llamacpp";
    size_t nn = sizeof numerics - 1;
    bool llama = n > nn && !strcmp(low + n - nn, numerics);
    if (llama)
        low[n - nn] = 0;
    int rc = strlen(text) < sizeof low ? qspec_parse(low, out, err) : POLYQ_INVALID_ARG - 1000;
    if (llama && !rc) {
        const pq_qfmt_traits *t = pq_qfmt_get(out->fmt);
        if (!out->none && !(t && t->dot_act != PQ_DOT_NONE && !out->act8))
            return pq_fail(err, POLYQ_INVALID_ARG,
                           "quant spec \"%s\": -llamacpp (llama.cpp's numerics) applies to fp32, "
                           "llama.cpp's block formats and q4_k_m, not to %s",
                           text, out->name);
        out->llama_numerics = true;
        char plain[sizeof out->name];
        snprintf(plain, sizeof plain, "%s", out->name);
        snprintf(out->name, sizeof out->name, "%.*s%s", (int)(sizeof plain - nn - 1), plain,
                 numerics);
    }
    if (rc != POLYQ_INVALID_ARG - 1000)
        return rc;
    memset(out, 0, sizeof *out);
    char formats[512], hint[sizeof out->name + 32] = "", alt[sizeof out->name];
    const char *near = spec_suggestion(low, alt, sizeof alt);
    if (near)
        snprintf(hint, sizeof hint, " (did you mean %s?)", near);
    pq_qfmt_list(formats, sizeof formats);
    return pq_fail(
        err, POLYQ_INVALID_ARG,
        "quant spec \"%s\" is not understood%s: expected fp32, "
        "int<2-8>[-g<group>|-tensor][-sym|-asym][-head] (e.g. int8, int4-g128), "
        "gptq-int<2-8>[-g<group>][-sym][-act][-head] or awq-int<2-8>[-g<group>][-clip][-duo] "
        "(calibrated), "
        "%s, q4_k_m (llama.cpp's mixture), nf4-dq, fp4-dq (double-quantized), each with optional "
        "-head, "
        "or w8a8, smoothquant[-a<alpha>], llm-int8[-t<threshold>] (int8 weights and activations)",
        text, hint, formats);
}

void pq_qfmt_list(char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = 0;
    for (int f = 0; f < pq_qfmt_count(); f++) { /* each tool once, where its first format is */
        const pq_qfmt_traits *t = pq_qfmt_get((pq_qfmt)f);
        bool first = t->block != 0;
        for (int e = 0; e < f && first; e++)
            first =
                !pq_qfmt_get((pq_qfmt)e)->block || strcmp(pq_qfmt_get((pq_qfmt)e)->tool, t->tool);
        for (int g = f; first && g < pq_qfmt_count(); g++) {
            const pq_qfmt_traits *u = pq_qfmt_get((pq_qfmt)g);
            if (!u->block || strcmp(u->tool, t->tool))
                continue;
            int w = snprintf(buf + at, size - at, "%s%s",
                             at && g == f ? "; "
                             : at         ? ", "
                                          : "",
                             u->name);
            if (w < 0 || (size_t)w >= size - at)
                return;
            at += (size_t)w;
        }
        int w = first ? snprintf(buf + at, size - at, " (%s)", t->tool) : 0;
        if (w < 0 || (size_t)w >= size - at)
            return;
        at += (size_t)w;
    }
}

static void describe(const pq_qspec *s, char *buf, size_t n);

void pq_qspec_describe(const pq_qspec *s, char *buf, size_t n)
{
    describe(s, buf, n);
    size_t at = strlen(buf);
    if (s->llama_numerics && at < n)
        snprintf(buf + at, n - at, "%s",
                 s->none ? "; the model's own blocks in llama.cpp's numerics (activations "
                           "quantized per block, integer dot products)"
                         : "; llama.cpp's numerics (activations quantized per block, integer dot "
                           "products)");
}

static void describe(const pq_qspec *s, char *buf, size_t n)
{
    if (s->none) {
        snprintf(buf, n, "full precision");
        return;
    }
    const char *head = s->head ? ", the LM head too" : "";
    if (s->k_mix) {
        snprintf(buf, n, "llama.cpp's Q4_K_M mixture of Q4_K, Q5_K and Q6_K%s", head);
        return;
    }
    const pq_qfmt_traits *t = pq_qfmt_get(s->fmt);
    if (s->fmt != PQ_QF_INT) {
        snprintf(buf, n, "%s's %s%s%s", t->tool, t->name, s->dq ? ", double-quantized" : "", head);
        return;
    }
    char gran[48];
    if (s->gran == PQ_GRAN_GROUP)
        snprintf(gran, sizeof gran, "in groups of %d", s->group);
    else
        snprintf(gran, sizeof gran, "%s", s->gran == PQ_GRAN_TENSOR ? "per tensor" : "per channel");
    const char *how = s->gptq          ? ", GPTQ"
                      : s->awq         ? ", AWQ"
                      : s->smooth      ? ", SmoothQuant"
                      : s->outlier > 0 ? ", LLM.int8() with outlier features in floating point"
                      : s->act8        ? ", activations int8 per token"
                                       : ", round-to-nearest";
    snprintf(buf, n, "%d-bit integers %s, %s%s%s", s->bits, gran,
             s->sym ? "symmetric" : "asymmetric", how, head);
}

const char *pq_qspec_method(const pq_qspec *s)
{
    if (!strncmp(s->name, "gguf:", 5))
        return "ggml";
    if (s->none)
        return "none";
    return s->gptq          ? "gptq"
           : s->awq         ? "awq"
           : s->smooth      ? "smoothquant"
           : s->outlier > 0 ? "llm.int8"
           : s->act8        ? "w8a8"
                            : pq_qfmt_get(s->fmt)->tool;
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
            int q = pq_round_even(x[i] * id);
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

void pq_rtn_group_minmax(const float *x, int n, int bits, float *scale, uint8_t *zero, uint8_t *u)
{
    int qmax = (1 << bits) - 1;
    float lo = n ? x[0] : 0, hi = lo;
    for (int i = 1; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    float d = fmaxf(hi - lo, 1e-5f) / (float)qmax;
    int z = -pq_round_even(lo / d);
    z = z < 0 ? 0 : z > qmax ? qmax : z;
    for (int i = 0; i < n; i++)
        u[i] = (uint8_t)pq_gptq_level(x[i], d, z, qmax);
    *scale = d;
    *zero = (uint8_t)z;
}

void pq_rtn_group_spec(const float *x, int n, const pq_qspec *spec, float *scale, uint8_t *zero,
                       uint8_t *u)
{
    if (spec->minmax && !spec->sym)
        pq_rtn_group_minmax(x, n, spec->bits, scale, zero, u);
    else
        pq_rtn_group_ref(x, n, spec->bits, spec->sym, scale, zero, u);
}

void pq_qweight_free(pq_qweight *q)
{
    if (!q)
        return;
    if (!q->borrowed)
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
                int v = pq_round_even(x * id);
                v = q->sym ? (v < -qmax  ? -qmax
                              : v > qmax ? qmax
                                         : v) +
                                 z
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
                pq_rtn_group_spec(x + i0, n, spec, &q->scale[gi], q->zero ? &q->zero[gi] : &zdummy,
                                  u + i0);
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
        int i1 = q->gran == PQ_GRAN_TENSOR ? q->n_in
                                           : (i0 + q->group < q->n_in ? i0 + q->group : q->n_in);
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
    const pq_qfmt_traits *t = pq_qfmt_get(q->fmt);
    if (t->flat) /* 4-bit codes, an f32 absmax per block, or with double quantization a u8 code per
                  * block and an f32 per 256 blocks and the offset */
        return 8.0 * (double)(((size_t)q->n_out * q->n_in + 1) / 2) +
               (q->dq ? 8.0 * q->n_groups + 32.0 * ((q->n_groups + 255) / 256 + 1)
                      : 32.0 * q->n_groups);
    if (t->block) /* the blocks hold their scales */
        return 8.0 * (double)q->row_bytes * q->n_out;
    size_t n_scales = q->gran == PQ_GRAN_TENSOR ? 1 : (size_t)q->n_out * q->n_groups;
    return 8.0 * (double)q->row_bytes * q->n_out + 32.0 * n_scales +
           (q->zero ? 8.0 * n_scales : 0) + (q->in_scale ? 32.0 * q->n_in : 0);
}

/* the formats of llama.cpp's Q4_K_M mixture */
static const char *const k_mix_formats[3] = {"q4_k", "q5_k", "q6_k"};

bool pq_qspec_names_format(const pq_qspec *s, pq_qfmt f)
{
    if (!s->k_mix)
        return f == s->fmt;
    for (int k = 0; k < 3; k++)
        if (!strcmp(pq_qfmt_get(f)->name, k_mix_formats[k]))
            return true;
    return false;
}

int pq_qspec_for_linear(const pq_qspec *s, pq_role role, int layer, int n_layer, int n_in,
                        pq_qspec *out, polyq_err *err)
{
    *out = *s;
    pq_qfmt f = s->fmt;
    if (s->k_mix) {
        bool more =
            layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
        const char *name = role == PQ_ROLE_HEAD                                  ? k_mix_formats[2]
                           : role == PQ_ROLE_QKV                                 ? k_mix_formats[1]
                           : (role == PQ_ROLE_V || role == PQ_ROLE_DOWN) && more ? k_mix_formats[2]
                                                                                 : k_mix_formats[0];
        if (!pq_qfmt_by_name(name, &f))
            return pq_fail(err, POLYQ_INVALID_ARG, "q4_k_m: no format %s", name);
    }
    const pq_qfmt_traits *t = pq_qfmt_get(f);
    if (t->fallback && t->block && n_in % t->block) {
        f = t->fallback;
        if (n_in % pq_qfmt_get(f)->block) { /* not even the fallback's blocks fit: full precision */
            pq_qspec_parse("fp32", out, err);
            return 0;
        }
    }
    if (f != s->fmt || s->k_mix) {
        pq_qspec k;
        if (pq_qspec_parse(pq_qfmt_get(f)->name, &k, err))
            return -1;
        snprintf(k.name, sizeof k.name, "%s", s->name);
        k.head = s->head;
        *out = k;
    }
    return 0;
}
