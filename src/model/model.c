/* Model loading common to every family: config.json, the tensor table, the tokenizer,
 * float conversion of weights, quantized copies, and the checked entry to forward passes. */
#include "model/model.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/json.h"

/* The families polyq reads, one line each (their traits are in arch_<family>.c). Earlier
 * entries win where two write the same GGUF architecture (Mistral is written as "llama"). */
static const pq_arch *const archs[] = {
    &pq_arch_gpt2,    &pq_arch_gpt_neox, &pq_arch_opt,       &pq_arch_llama,
    &pq_arch_mistral, &pq_arch_qwen2,    &pq_arch_qwen3,     &pq_arch_phi3,
    &pq_arch_gemma2,  &pq_arch_gemma3,   &pq_arch_gemma3_mm, &pq_arch_cohere,
    &pq_arch_cohere2, &pq_arch_bloom,    &pq_arch_bert,      &pq_arch_xlm_roberta,
};
#define N_BUILTIN (int)(sizeof archs / sizeof archs[0])
#define N_EXTRA 8
static const pq_arch *extra_archs[N_EXTRA];
static int n_extra_archs;

const pq_arch *pq_arch_at(int i)
{
    if (i >= 0 && i < N_BUILTIN)
        return archs[i];
    return i >= N_BUILTIN && i < N_BUILTIN + n_extra_archs ? extra_archs[i - N_BUILTIN] : NULL;
}

const pq_arch *pq_arch_find(const char *model_type)
{
    for (int i = 0; model_type && pq_arch_at(i); i++)
        if (!strcmp(pq_arch_at(i)->model_type, model_type))
            return pq_arch_at(i);
    return NULL;
}

const pq_arch *pq_arch_find_gguf(const char *arch, size_t n)
{
    for (int i = 0; pq_arch_at(i); i++) {
        const pq_gguf_family *g = pq_arch_at(i)->gguf;
        if (g && strlen(g->arch) == n && !memcmp(g->arch, arch, n))
            return pq_arch_at(i);
    }
    return NULL;
}

void pq_arch_list(char *buf, size_t size, bool gguf_only)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; pq_arch_at(i); i++) {
        const pq_arch *a = pq_arch_at(i);
        const char *name = gguf_only ? (a->gguf ? a->gguf->arch : NULL) : a->model_type;
        if (!name || (gguf_only && pq_arch_find_gguf(name, strlen(name)) != a))
            continue;
        int w = snprintf(buf + at, size - at, "%s%s", at ? ", " : "", name);
        if (w < 0 || (size_t)w >= size - at)
            break;
        at += (size_t)w;
    }
}

int pq_arch_register(const pq_arch *a, polyq_err *err)
{
    if (!a || !a->model_type || !a->load || !a->forward || !a->block_name)
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "a family needs a model_type, load, forward and block name");
    if (pq_arch_find(a->model_type))
        return pq_fail(err, POLYQ_INVALID_ARG, "family \"%s\" is already known", a->model_type);
    if (n_extra_archs == N_EXTRA)
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "family \"%s\": no room for more than %d registered families", a->model_type,
                       N_EXTRA);
    extra_archs[n_extra_archs++] = a;
    return 0;
}

static int own(pq_model *m, float *p)
{
    float **o = realloc(m->owned, (m->n_owned + 1) * sizeof *o);
    if (!o)
        return -1;
    m->owned = o;
    m->owned[m->n_owned++] = p;
    return 0;
}

int pq_config_ints(const json_t *j, const pq_cfg_int *list, size_t n, const char *what,
                   polyq_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const pq_cfg_int *c = &list[i];
        const char *key =
            c->alt && !json_object_get(j, c->key) && json_object_get(j, c->alt) ? c->alt : c->key;
        int64_t v = c->dflt;
        int rc = pq_json_int(j, key, c->required, c->lo, c->hi, &v, what, err);
        if (rc)
            return rc;
        *c->dst = (int)v;
    }
    return 0;
}

int pq_config_layer_types(pq_config *c, const json_t *j, int pattern, const char *what,
                          polyq_err *err)
{
    const json_t *lt = json_object_get(j, "layer_types");
    if (lt && !json_is_null(lt) &&
        (!json_is_array(lt) || json_array_size(lt) != (size_t)c->n_layer))
        return pq_fail(err, POLYQ_FORMAT, "%s: layer_types is not a list of %d layer kinds", what,
                       c->n_layer);
    for (int l = 0; l < c->n_layer; l++) {
        const char *t = json_is_array(lt) ? json_string_value(json_array_get(lt, (size_t)l)) : NULL;
        if (json_is_array(lt) &&
            (!t || (strcmp(t, "sliding_attention") && strcmp(t, "full_attention"))))
            return pq_fail(err, POLYQ_FORMAT,
                           "%s: layer_types[%d] is neither \"sliding_attention\" nor "
                           "\"full_attention\"",
                           what, l);
        c->sliding[l] = t ? !strcmp(t, "sliding_attention") : (l + 1) % pattern != 0;
    }
    return 0;
}

int pq_config_act(const json_t *j, const char *key, const char *dflt, pq_act *out, const char *what,
                  polyq_err *err)
{
    static const struct {
        const char *name;
        pq_act act;
    } acts[] = {
        {"gelu", PQ_ACT_GELU_ERF},       {"gelu_new", PQ_ACT_GELU_TANH},
        {"gelu_fast", PQ_ACT_GELU_TANH}, {"gelu_pytorch_tanh", PQ_ACT_GELU_TANH},
        {"relu", PQ_ACT_RELU},           {"silu", PQ_ACT_SILU},
        {"swish", PQ_ACT_SILU},
    };
    const char *name = dflt;
    int rc = pq_json_str(j, key, false, &name, what, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (!strcmp(name, acts[i].name)) {
            *out = acts[i].act;
            return 0;
        }
    return pq_fail(err, POLYQ_UNSUPPORTED, "%s: %s \"%s\" is not supported", what, key, name);
}

static int check_tensor(pq_model *m, const char *const *names, int n_dims, const int64_t *shape,
                        const pq_tensor_info **out, polyq_err *err);
static const pq_tensor_info *find_named(const pq_model *m, const char *name);
static int finite_view(const pq_model *m, const pq_tensor_info *t, polyq_err *err);
static int packed_view(const pq_tensor_info *t, pq_qweight **out, polyq_err *err);
static int own_view(pq_model *m, pq_qweight *qw, polyq_err *err);
static int finite_packed(const pq_model *m, const pq_tensor_info *t, const pq_qweight *qw,
                         polyq_err *err);

int pq_model_get_weight(pq_model *m, pq_linear *lin, const char *const *wnames, int n, int k,
                        polyq_err *err)
{
    const pq_tensor_info *t;
    int64_t ws[2] = {n, k};
    lin->n_out = n;
    lin->n_in = k;
    lin->w = NULL;
    lin->w16 = NULL;
    lin->q = NULL;
    int rc = check_tensor(m, wnames, 2, ws, &t, err);
    if (rc)
        return rc;
    if (t->packed) { /* used as stored: the product dequantizes its rows as it goes */
        pq_qweight *qw;
        if ((rc = packed_view(t, &qw, err)) || (rc = own_view(m, qw, err)))
            return rc;
        m->n_params += t->numel;
        lin->q = qw;
        return finite_packed(m, t, qw, err);
    }
    if ((t->dtype == PQ_DT_F16 || t->dtype == PQ_DT_BF16) && ((uintptr_t)t->data & 1) == 0) {
        m->n_params += t->numel;
        lin->w16 = (const uint16_t *)t->data;
        lin->w16_bf16 = t->dtype == PQ_DT_BF16;
        return finite_view(m, t, err);
    }
    return pq_model_get_f32(m, wnames, 2, ws, &lin->w, err);
}

int pq_linear_rows(pq_model *m, const pq_linear *whole, int r0, int n, pq_linear *part,
                   polyq_err *err)
{
    size_t off = (size_t)r0 * (size_t)whole->n_in;
    *part = *whole;
    part->n_out = n;
    part->w = whole->w ? whole->w + off : NULL;
    part->w16 = whole->w16 ? whole->w16 + off : NULL;
    part->bias = whole->bias ? whole->bias + r0 : NULL;
    if (!whole->q)
        return 0;
    const pq_qweight *q = whole->q;
    pq_qweight *qw = NULL;
    char what[128];
    snprintf(what, sizeof what, "%s: rows %d..%d of a packed linear", m->dir, r0, r0 + n);
    if (pq_qweight_view(q->fmt, n, q->n_in, q->data + (size_t)r0 * q->row_bytes,
                        (size_t)n * q->row_bytes, what, &qw, err) ||
        own_view(m, qw, err))
        return -1;
    part->q = qw;
    return 0;
}

int pq_model_get_linear(pq_model *m, pq_linear *lin, const char *const *wnames,
                        const char *const *bnames, int n, int k, polyq_err *err)
{
    int64_t bs[1] = {n};
    int rc = pq_model_get_weight(m, lin, wnames, n, k, err);
    return rc || !bnames ? rc : pq_model_get_f32(m, bnames, 1, bs, &lin->bias, err);
}

int pq_model_lm_head(pq_model *m, int n_in, polyq_err *err)
{
    static const char *const head[] = {"lm_head.weight", NULL};
    m->lm_head = (pq_linear){.n_out = m->cfg.n_vocab, .n_in = n_in, .w = m->wte, .q = m->wte_q};
    if (!m->cfg.tie_word_embeddings || find_named(m, "lm_head.weight"))
        return pq_model_get_weight(m, &m->lm_head, head, m->cfg.n_vocab, n_in, err);
    return 0;
}

int pq_model_regroup_qkv(pq_model *m, pq_linear *lin, int H, polyq_err *err)
{
    int C = lin->n_in, D = lin->n_out / 3 / H;
    float *tmp;
    const float *src = pq_linear_f32(lin, &tmp); /* F16/BF16 rows regrouped as f32 */
    float *w = pq_model_alloc(m, (size_t)lin->n_out * C),
          *b = pq_model_alloc(m, (size_t)lin->n_out);
    if (!src || !w || !b) {
        free(tmp);
        return pq_fail(err, POLYQ_NOMEM, "out of memory regrouping the fused qkv projection");
    }
    for (int h = 0; h < H; h++)
        for (int part = 0; part < 3; part++)
            for (int d = 0; d < D; d++) {
                size_t from = (size_t)h * 3 * D + (size_t)part * D + d;
                size_t to = (size_t)part * H * D + (size_t)h * D + d;
                memcpy(w + to * C, src + from * C, sizeof(float) * (size_t)C);
                b[to] = lin->bias[from];
            }
    free(tmp);
    lin->w = w;
    lin->w16 = NULL;
    lin->bias = b;
    return 0;
}

float *pq_model_alloc(pq_model *m, size_t n)
{
    float *p = pq_alloc_array(n ? n : 1, sizeof *p);
    if (p && own(m, p)) {
        free(p);
        return NULL;
    }
    return p;
}

/* A tensor by its text model's name; the language model of a multimodal checkpoint holds it
 * under language_model.model.* (lm_head: language_model.lm_head.*), as the published files
 * name it, or model.language_model.*, as transformers 5 saves it. */
static const pq_tensor_info *find_named(const pq_model *m, const char *name)
{
    const pq_tensor_info *t = pq_tensors_find(&m->ts, name);
    if (t || !m->text_of_multimodal)
        return t;
    char alt[256];
    snprintf(alt, sizeof alt, "language_model.%s", name);
    if ((t = pq_tensors_find(&m->ts, alt)))
        return t;
    if (!strncmp(name, "model.", 6)) {
        snprintf(alt, sizeof alt, "model.language_model.%s", name + 6);
        t = pq_tensors_find(&m->ts, alt);
    }
    return t;
}

static const pq_tensor_info *find_any(const pq_model *m, const char *const *names,
                                      const char **which)
{
    for (int i = 0; names[i]; i++) {
        const pq_tensor_info *t = find_named(m, names[i]);
        if (t) {
            *which = names[i];
            return t;
        }
    }
    return NULL;
}

static void shape_str(char *buf, size_t n, int n_dims, const int64_t *shape)
{
    size_t w = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < n_dims && w < n; d++)
        w += (size_t)snprintf(buf + w, n - w, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (w < n)
        snprintf(buf + w, n - w, "]");
}

static int check_tensor(pq_model *m, const char *const *names, int n_dims, const int64_t *shape,
                        const pq_tensor_info **out, polyq_err *err)
{
    const char *name = names[0];
    const pq_tensor_info *t = find_any(m, names, &name);
    if (!t)
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" is missing", m->dir, names[0]);
    bool ok = t->n_dims == n_dims;
    for (int d = 0; ok && d < n_dims; d++)
        ok = shape[d] < 0 || t->shape[d] == shape[d];
    if (!ok) {
        char want[128], got[128];
        shape_str(want, sizeof want, n_dims, shape);
        shape_str(got, sizeof got, t->n_dims, t->shape);
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has shape %s, config.json implies %s",
                       t->file, name, got, want);
    }
    if (!t->packed && t->dtype != PQ_DT_F32 && t->dtype != PQ_DT_F16 && t->dtype != PQ_DT_BF16 &&
        t->dtype != PQ_DT_F64)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s, not F32/F16/BF16",
                       t->file, name, pq_dtype_name(t->dtype));
    if (!m->dtype[0])
        snprintf(m->dtype, sizeof m->dtype, "%s", pq_dtype_name(t->dtype));
    *out = t;
    return 0;
}

static int finite_check(const pq_tensor_info *t, const float *p, polyq_err *err)
{
    for (size_t i = 0; i < t->numel; i++)
        if (!isfinite(p[i]))
            return pq_fail(err, POLYQ_NUMERIC, "%s: tensor \"%s\" element %zu is not finite",
                           t->file, t->name, i);
    return 0;
}

/* whether bytes [p, p + n) lie in one of the model's mapped files (not in a copy it owns) */
static bool in_a_map(const pq_model *m, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; b && i < m->ts.n_files; i++) {
        const uint8_t *a = m->ts.files[i].map.data;
        if (a && b >= a && b + n <= a + m->ts.files[i].map.size)
            return true;
    }
    return false;
}

/* A tensor used in place (F32, F16, BF16): every element finite, read in windows whose pages
 * are handed back as soon as they are checked when they are in the file's map, so that opening
 * a model does not make all of it resident (a quantized copy may never read these pages
 * again); a copy in memory is only checked. */
static int finite_view(const pq_model *m, const pq_tensor_info *t, polyq_err *err)
{
    bool mapped = in_a_map(m, t->data, t->nbytes);
    size_t esz = t->dtype == PQ_DT_F32 ? 4 : 2, win = (size_t)8 << 20; /* elements */
    for (size_t i0 = 0; i0 < t->numel; i0 += win) {
        size_t n = t->numel - i0 < win ? t->numel - i0 : win;
        const uint8_t *p = t->data + i0 * esz;
        for (size_t i = 0; i < n; i++) {
            bool bad;
            if (esz == 4) {
                float f;
                memcpy(&f, p + i * 4, 4);
                bad = !isfinite(f);
            } else {
                uint16_t h;
                memcpy(&h, p + i * 2, 2);
                bad = t->dtype == PQ_DT_BF16 ? (h & 0x7f80) == 0x7f80 : (h & 0x7c00) == 0x7c00;
            }
            if (bad)
                return pq_fail(err, POLYQ_NUMERIC, "%s: tensor \"%s\" element %zu is not finite",
                               t->file, t->name, i0 + i);
        }
        if (mapped)
            pq_map_release(p, n * esz);
    }
    return 0;
}

/* A packed tensor as a weight borrowing its blocks (freed by the caller or handed to a model). */
static int packed_view(const pq_tensor_info *t, pq_qweight **out, polyq_err *err)
{
    char what[512];
    snprintf(what, sizeof what, "%s: tensor \"%s\"", t->file, t->name);
    if (t->shape[0] > INT32_MAX || t->shape[1] > INT32_MAX)
        return pq_fail(err, POLYQ_FORMAT, "%s is too large", what);
    return pq_qweight_view((pq_qfmt)(t->packed - 1), (int)t->shape[0], (int)t->shape[1], t->data,
                           t->nbytes, what, out, err);
}

/* A base model's packed weight, owned by it (not counted as a quantized linear of its own). */
static int own_view(pq_model *m, pq_qweight *qw, polyq_err *err)
{
    pq_qweight **o = realloc(m->qowned, (m->n_qowned + 1) * sizeof *o);
    if (!o) {
        pq_qweight_free(qw);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    m->qowned = o;
    m->qowned[m->n_qowned++] = qw;
    return 0;
}

/* Every row of a packed weight dequantizes to finite values; its pages are handed back as they
 * are checked when they lie in the file's map, as finite_view does. */
static int finite_packed(const pq_model *m, const pq_tensor_info *t, const pq_qweight *qw,
                         polyq_err *err)
{
    float *row = pq_alloc_array((size_t)qw->n_in, sizeof *row);
    if (!row)
        return pq_fail(err, POLYQ_NOMEM, "out of memory checking \"%s\"", t->name);
    bool mapped = in_a_map(m, t->data, t->nbytes);
    int rc = 0;
    for (int r = 0; r < qw->n_out && !rc; r++) {
        pq_qweight_dequant_row(qw, r, row);
        for (int i = 0; i < qw->n_in && !rc; i++)
            if (!isfinite(row[i]))
                rc = pq_fail(err, POLYQ_NUMERIC, "%s: tensor \"%s\" row %d weight %d is not finite",
                             t->file, t->name, r, i);
        if (mapped && (r + 1) % 256 == 0)
            pq_map_release(qw->data + (size_t)(r - 255) * qw->row_bytes, 256 * qw->row_bytes);
    }
    free(row);
    return rc;
}

int pq_model_get_embeddings(pq_model *m, const char *const *names, const int64_t *shape,
                            polyq_err *err)
{
    const pq_tensor_info *t;
    m->wte = NULL;
    m->wte_q = NULL;
    int rc = check_tensor(m, names, 2, shape, &t, err);
    if (rc || !t->packed)
        return rc ? rc : pq_model_get_f32(m, names, 2, shape, &m->wte, err);
    pq_qweight *qw;
    if ((rc = packed_view(t, &qw, err)) || (rc = own_view(m, qw, err)))
        return rc;
    m->wte_q = qw;
    return finite_packed(m, t, qw, err);
}

void pq_model_embed(const pq_model *m, float *x, const int32_t *tokens, int M)
{
    if (!m->wte_q) {
        pq_embed(x, m->wte, tokens, M, m->cfg.n_embd_proj ? m->cfg.n_embd_proj : m->cfg.n_embd);
        return;
    }
    for (int r = 0; r < M; r++)
        pq_qweight_dequant_row(m->wte_q, tokens[r], x + (size_t)r * (size_t)m->wte_q->n_in);
}

bool pq_model_head_is_embeddings(const pq_model *m)
{
    return m->wte_q ? m->lm_head.q == m->wte_q : !m->lm_head.q && m->lm_head.w == m->wte;
}

bool pq_model_packed(const pq_model *m, const char *const *names)
{
    const char *which;
    const pq_tensor_info *t = find_any(m, names, &which);
    return t && t->packed;
}

int pq_model_get_f32(pq_model *m, const char *const *names, int n_dims, const int64_t *shape,
                     const float **out, polyq_err *err)
{
    const pq_tensor_info *t;
    int rc = check_tensor(m, names, n_dims, shape, &t, err);
    if (rc)
        return rc;
    m->n_params += t->numel;
    if (t->dtype == PQ_DT_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = (const float *)t->data;
        return finite_view(m, t, err);
    }
    float *p = pq_alloc_array(t->numel, sizeof *p);
    if (!p || own(m, p)) {
        free(p);
        return pq_fail(err, POLYQ_NOMEM, "out of memory loading \"%s\"", t->name);
    }
    if (t->packed) { /* dequantized by the format's reference dequantizer */
        pq_qweight *qw;
        if ((rc = packed_view(t, &qw, err)))
            return rc;
        for (int r = 0; r < qw->n_out; r++)
            pq_qweight_dequant_row(qw, r, p + (size_t)r * (size_t)qw->n_in);
        pq_qweight_free(qw);
    } else if ((rc = pq_tensor_to_f32(t, p, err)))
        return rc;
    *out = p;
    return finite_check(t, p, err);
}

int pq_model_get_f32_opt(pq_model *m, const char *const *names, int n_dims, const int64_t *shape,
                         const float **out, polyq_err *err)
{
    const char *which;
    *out = NULL;
    return find_any(m, names, &which) ? pq_model_get_f32(m, names, n_dims, shape, out, err) : 0;
}

int pq_model_open_dir(pq_model **out, const char *dir, polyq_err *err)
{
    *out = NULL;
    pq_model *m = calloc(1, sizeof *m);
    char *cfg_path = pq_path_join(dir, "config.json");
    json_t *cfg = NULL;
    int rc = 0;
    if (!m || !cfg_path || !(m->dir = pq_strdup(dir))) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    m->add_bos = -1; /* a folder's tokenizer adds what its post-processor adds */
    m->spec.none = true;
    snprintf(m->spec.name, sizeof m->spec.name, "fp32");
    if (!pq_file_exists(cfg_path)) {
        rc = pq_fail(err, POLYQ_NOT_FOUND, "%s: no config.json: not a Hugging Face model directory",
                     dir);
        goto out;
    }
    if ((rc = pq_json_load(cfg_path, 16u << 20, &cfg, err)))
        goto out;
    const char *mt = NULL;
    if (!json_is_object(cfg) || (rc = pq_json_str(cfg, "model_type", true, &mt, cfg_path, err))) {
        rc = rc ? rc : pq_fail(err, POLYQ_FORMAT, "%s: not a JSON object", cfg_path);
        goto out;
    }
    if (!(m->arch = pq_arch_find(mt))) {
        char list[512];
        pq_arch_list(list, sizeof list, false);
        rc = pq_fail(err, POLYQ_UNSUPPORTED,
                     "%s: model_type \"%s\" is not supported (supported: %s)", cfg_path, mt, list);
        goto out;
    }
    snprintf(m->cfg.model_type, sizeof m->cfg.model_type, "%s", mt);
    json_t *archs_j = json_object_get(cfg, "architectures");
    if (json_is_string(json_array_get(archs_j, 0)))
        snprintf(m->cfg.architecture, sizeof m->cfg.architecture, "%s",
                 json_string_value(json_array_get(archs_j, 0)));
    if ((rc = pq_tensors_open_dir(&m->ts, dir, err)))
        goto out;
    m->cfg.encoder = m->arch->scoring == PQ_SCORE_PLL;
    if ((rc = m->arch->load(m, cfg, err)))
        goto out;
    /* The tokenizer is optional here (bare weights run on ids); evaluation requires it. */
    if (pq_tok_dir_has(dir) && (rc = pq_tok_load_dir(&m->tok, dir, err)))
        goto out;
    if (m->tok && pq_tok_vocab_size(m->tok) > m->cfg.n_vocab) {
        rc = pq_fail(err, POLYQ_FORMAT, "%s: the tokenizer has %d ids but the model only %d", dir,
                     pq_tok_vocab_size(m->tok), m->cfg.n_vocab);
        goto out;
    }
    if (m->tok && !m->cfg.encoder && (pq_model_bos(m) < 0 || pq_model_bos(m) >= m->cfg.n_vocab)) {
        rc = pq_fail(err, POLYQ_FORMAT, "%s: no usable BOS/EOS token to start sequences with", dir);
        goto out;
    }
out:
    json_decref(cfg);
    free(cfg_path);
    if (rc) {
        pq_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void pq_model_free(pq_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    for (size_t i = 0; i < m->n_qowned; i++)
        pq_qweight_free(m->qowned[i]);
    free(m->qowned);
    free(m->layers);
    if (!m->base) {
        pq_tensors_close(&m->ts);
        pq_tok_free(m->tok);
    }
    free(m->dir);
    free(m);
}

int pq_model_out_dim(const pq_model *m)
{
    return m->cfg.encoder && !m->head_dense.n_out ? m->cfg.n_embd : m->cfg.n_vocab;
}

int32_t pq_model_bos(const pq_model *m)
{
    int32_t id = m->tok ? pq_tok_bos(m->tok) : -1;
    if (id < 0 && m->tok)
        id = pq_tok_eos(m->tok);
    if (id < 0)
        id = m->cfg.bos_id >= 0 ? m->cfg.bos_id : m->cfg.eos_id;
    return id;
}

int pq_model_set_qweight(pq_model *q, pq_linear *lin, pq_qweight *qw, polyq_err *err)
{
    pq_qweight **o = realloc(q->qowned, (q->n_qowned + 1) * sizeof *o);
    if (!o) {
        pq_qweight_free(qw);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    q->qowned = o;
    q->qowned[q->n_qowned++] = qw;
    lin->q = qw;
    lin->w = NULL;
    lin->w16 = NULL;
    lin->wt = false;
    q->linear_bits += pq_qweight_bits(qw);
    q->linear_params += (double)lin->n_out * lin->n_in;
    q->n_linear_fmt[qw->fmt]++;
    return 0;
}

/* Hands back the pages of a base model's weights mapped from its file (a no-op for owned
 * copies, whose pages are not file-backed: those stay). */
void pq_linear_release(const pq_model *base, const pq_linear *lin)
{
    const void *p = lin->w16 ? (const void *)lin->w16 : (const void *)lin->w;
    size_t bytes = (size_t)lin->n_out * (size_t)lin->n_in * (lin->w16 ? 2 : 4);
    if (lin->q) { /* a GGUF's blocks used in place */
        p = lin->q->borrowed ? lin->q->data : NULL;
        bytes = (size_t)lin->n_out * lin->q->row_bytes;
    }
    if (in_a_map(base, p, bytes))
        pq_map_release(p, bytes);
}

static int quantize_linear(pq_model *q, pq_linear *lin, const pq_qspec *model_spec, pq_role role,
                           int layer, polyq_err *err)
{
    pq_qweight *qw;
    pq_qspec one;
    if (pq_qspec_for_linear(model_spec, role, layer, q->cfg.n_layer, lin->n_in, &one, err))
        return -1;
    const pq_qspec *spec = &one;
    if (spec->none) { /* no block of the format fits these rows: kept in full precision */
        q->linear_bits += 32.0 * lin->n_out * (double)lin->n_in;
        q->linear_params += (double)lin->n_out * lin->n_in;
        q->n_linear_fp++;
        return 0;
    }
    float *tmp;
    const float *w = pq_linear_f32(lin, &tmp);
    if (!w)
        return pq_fail(err, POLYQ_NOMEM, "out of memory reading a linear layer's weights");
    int rc = pq_qweight_rtn(w, lin->n_out, lin->n_in, spec, &qw, err);
    free(tmp);
    pq_linear_release(q->base, lin);
    if (!rc) {
        qw->act8 = spec->act8;
        qw->outlier = spec->outlier;
    }
    return rc ? rc : pq_model_set_qweight(q, lin, qw, err);
}

int pq_model_quantize(pq_model **out, const pq_model *base, const pq_qspec *spec, polyq_err *err)
{
    *out = NULL;
    if (spec->gptq || spec->awq || spec->smooth)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s needs calibration text (%s)", spec->name,
                       spec->gptq  ? "GPTQ"
                       : spec->awq ? "AWQ"
                                   : "SmoothQuant");
    pq_model *q = calloc(1, sizeof *q);
    if (!q)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    *q = *base;
    q->owned = NULL;
    q->n_owned = 0;
    q->qowned = NULL;
    q->n_qowned = 0;
    q->base = base;
    q->spec = *spec;
    q->linear_bits = q->linear_params = 0;
    memset(q->n_linear_fmt, 0, sizeof q->n_linear_fmt);
    q->n_linear_fp = 0;
    q->dir = pq_strdup(base->dir);
    q->layers = pq_alloc_array((size_t)base->cfg.n_layer, sizeof *q->layers);
    if (!q->dir || !q->layers) {
        pq_model_free(q);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    memcpy(q->layers, base->layers, (size_t)base->cfg.n_layer * sizeof *q->layers);
    int rc = 0;
    for (int l = 0; l < base->cfg.n_layer && !spec->none && !rc; l++) {
        pq_linear *lins[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&q->layers[l]);
        for (int i = 0; i < PQ_N_LAYER_LINEARS && !rc; i++)
            if (lins[i]->n_out)
                rc = quantize_linear(q, lins[i], spec, (pq_role)i, l, err);
    }
    if (!rc && spec->head && !spec->none)
        rc = quantize_linear(q, &q->lm_head, spec, PQ_ROLE_HEAD, base->cfg.n_layer, err);
    if (rc) {
        pq_model_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

double pq_model_bits_per_weight(const pq_model *m)
{
    return m->linear_params > 0 ? m->linear_bits / m->linear_params : 32.0;
}

int pq_acts_init(pq_acts *a, const pq_config *cfg, int max_tokens)
{
    memset(a, 0, sizeof *a);
    size_t M = (size_t)max_tokens, C = (size_t)cfg->n_embd;
    a->max_tokens = max_tokens;
    a->x = pq_alloc_array(M * C, sizeof(float));
    a->xn = pq_alloc_array(M * C, sizeof(float));
    size_t att = pq_config_att_width(cfg);
    a->att = pq_alloc_array(M * (att > C ? att : C), sizeof(float));
    a->qkv = pq_alloc_array(M * pq_config_qkv_width(cfg), sizeof(float));
    a->h = pq_alloc_array(M * (size_t)cfg->n_inner, sizeof(float));
    a->proj = cfg->n_embd_proj ? pq_alloc_array(M * (size_t)cfg->n_embd_proj, sizeof(float)) : NULL;
    a->h2 = cfg->gated ? pq_alloc_array(M * (size_t)cfg->n_inner, sizeof(float)) : NULL;
    if (!a->x || !a->xn || !a->att || !a->qkv || !a->h || (cfg->n_embd_proj && !a->proj) ||
        (cfg->gated && !a->h2)) {
        pq_acts_free(a);
        return -1;
    }
    return 0;
}

void pq_acts_free(pq_acts *a)
{
    if (!a)
        return;
    free(a->x);
    free(a->xn);
    free(a->att);
    free(a->qkv);
    free(a->h);
    free(a->proj);
    free(a->h2);
    memset(a, 0, sizeof *a);
}

int pq_config_rope_scaling(const json_t *s, int n_ctx, pq_rope *r, const char *what, polyq_err *err)
{
    const char *type = "default";
    if (pq_json_str(s, "rope_type", false, &type, what, NULL) || !strcmp(type, "default"))
        pq_json_str(s, "type", false, &type, what, NULL);
    if (!strcmp(type, "default") || !strcmp(type, "dynamic")) /* dynamic: unchanged within n_ctx */
        return 0;
    double factor = 0, low = 1, high = 4, orig = n_ctx;
    int rc;
    if ((rc = pq_json_real(s, "factor", true, &factor, what, err)))
        return rc;
    if (!(factor >= 1))
        return pq_fail(err, POLYQ_FORMAT, "%s: rope scaling factor %g is below 1", what, factor);
    r->factor = (float)factor;
    if (!strcmp(type, "linear")) {
        r->kind = PQ_ROPE_LINEAR;
        return 0;
    }
    if (strcmp(type, "llama3"))
        return pq_fail(
            err, POLYQ_UNSUPPORTED,
            "%s: rope scaling \"%s\" is not supported (default, linear, dynamic, llama3 are)", what,
            type);
    if ((rc = pq_json_real(s, "low_freq_factor", true, &low, what, err)) ||
        (rc = pq_json_real(s, "high_freq_factor", true, &high, what, err)) ||
        (rc = pq_json_real(s, "original_max_position_embeddings", false, &orig, what, err)))
        return rc;
    if (!(low > 0) || !(high > low) || !(orig > 0))
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor "
                       "and original_max_position_embeddings > 0",
                       what);
    r->kind = PQ_ROPE_LLAMA3;
    r->low_freq = (float)low;
    r->high_freq = (float)high;
    r->orig_ctx = (float)orig;
    return 0;
}

pq_attn pq_config_attn(const pq_config *c)
{
    int D = c->head_dim ? c->head_dim : c->n_embd / c->n_head;
    return (pq_attn){.H = c->n_head,
                     .KVH = c->n_kv_head ? c->n_kv_head : c->n_head,
                     .D = D,
                     .scale = c->attn_scale > 0 ? c->attn_scale : 1.0f / sqrtf((float)D),
                     .window = c->window,
                     .bidirectional = c->encoder,
                     .softcap = c->attn_softcap};
}

size_t pq_config_att_width(const pq_config *c)
{
    pq_attn a = pq_config_attn(c);
    return (size_t)a.H * (size_t)a.D;
}

size_t pq_config_qkv_width(const pq_config *c)
{
    pq_attn a = pq_config_attn(c);
    size_t w = (size_t)pq_attn_ld(&a), fused = 3 * (size_t)c->n_embd;
    return w > fused ? w : fused;
}

void pq_layer_qkv(pq_ops *ops, const pq_layer *L, float *qkv, const float *xn, int M,
                  const pq_attn *a)
{
    if (L->qkv.n_out) {
        pq_linear_fwd(ops, qkv, xn, M, &L->qkv);
        return;
    }
    int ld = pq_attn_ld(a), qd = a->H * a->D, kd = a->KVH * a->D;
    pq_linear_fwd_ld(ops, qkv, ld, xn, M, &L->q);
    pq_linear_fwd_ld(ops, qkv + qd, ld, xn, M, &L->k);
    pq_linear_fwd_ld(ops, qkv + qd + kd, ld, xn, M, &L->v);
}

int pq_model_forward(const pq_model *m, pq_ops *ops, pq_acts *acts, const int32_t *tokens,
                     const int *seq_start, int n_seq, float *logits, polyq_err *err)
{
    if (n_seq <= 0 || seq_start[0] != 0)
        return pq_fail(err, POLYQ_INVALID_ARG, "forward: empty batch");
    for (int s = 0; s < n_seq; s++) {
        int T = seq_start[s + 1] - seq_start[s];
        if (T <= 0 || T > m->cfg.n_ctx)
            return pq_fail(err, POLYQ_INVALID_ARG,
                           "forward: sequence %d has %d tokens; the context holds 1..%d", s, T,
                           m->cfg.n_ctx);
    }
    int M = seq_start[n_seq];
    if (M > acts->max_tokens)
        return pq_fail(err, POLYQ_INVALID_ARG, "forward: %d tokens exceed the batch size %d", M,
                       acts->max_tokens);
    for (int i = 0; i < M; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.n_vocab)
            return pq_fail(err, POLYQ_INVALID_ARG,
                           "forward: token id %d outside the vocabulary (%d)", tokens[i],
                           m->cfg.n_vocab);
    acts->bad_block = -1;
    ops->oom = 0;
    ops->seq_start = seq_start;
    ops->n_seq = n_seq;
    ops->llama_numerics = m->spec.llama_numerics;
    m->arch->forward(m, ops, acts, tokens, seq_start, n_seq, logits);
    ops->seq_start = NULL;
    ops->llama_numerics = false;
    if (ops->oom)
        return pq_fail(err, POLYQ_NOMEM, "%s (%s): out of memory for int8 activations of %d tokens",
                       m->dir, m->spec.name, M);
    if (acts->bad_block >= 0) {
        char block[96];
        snprintf(block, sizeof block, m->arch->block_name, acts->bad_block);
        return pq_fail(err, POLYQ_NUMERIC,
                       "%s (%s): activations became NaN or infinite in block %d (%s) of this batch",
                       m->dir, m->spec.name, acts->bad_block, block);
    }
    size_t n = (size_t)M * (size_t)pq_model_out_dim(m);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(logits[i]))
            return pq_fail(err, POLYQ_NUMERIC, "%s (%s): the LM head gave NaN or infinite logits",
                           m->dir, m->spec.name);
    return 0;
}

void pq_acts_check(pq_acts *a, int block, size_t n)
{
    if (a->bad_block >= 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a->x[i])) {
            a->bad_block = block;
            return;
        }
}

/* Appends each format's count to buf[*at..n) as item ("\"%s\": %d" or " %s (%d)") joined by
 * sep; full precision as fp_name; only formats the spec does not name when moved_only. */
static void list_formats(const pq_model *m, char *buf, size_t n, size_t *at, const char *item,
                         const char *sep, const char *fp_name, bool moved_only)
{
    bool first = true;
    for (int f = 0; f <= pq_qfmt_count() && *at < n; f++) {
        bool fp = f == pq_qfmt_count();
        int count = fp ? m->n_linear_fp : m->n_linear_fmt[f];
        if (!count || (!fp && moved_only && pq_qspec_names_format(&m->spec, (pq_qfmt)f)))
            continue;
        char name[24];
        if (fp)
            snprintf(name, sizeof name, "%s", fp_name);
        else if (f == PQ_QF_INT) /* polyq's integer layout: named by its width */
            snprintf(name, sizeof name, "int%d", m->spec.bits);
        else
            snprintf(name, sizeof name, "%s", pq_qfmt_get((pq_qfmt)f)->name);
        int w = snprintf(buf + *at, n - *at, "%s", first ? "" : sep);
        *at += w > 0 ? (size_t)w : 0;
        w = *at < n ? snprintf(buf + *at, n - *at, item, name, count) : 0;
        *at += w > 0 ? (size_t)w : 0;
        first = false;
    }
    if (*at > n)
        *at = n;
}

void pq_model_formats_json(const pq_model *m, char *buf, size_t n)
{
    size_t at = (size_t)snprintf(buf, n, "{");
    list_formats(m, buf, n, &at, "\"%s\": %d", ", ", "f32", false);
    if (at < n)
        snprintf(buf + at, n - at, "}");
}

bool pq_model_fallbacks(const pq_model *m, char *buf, size_t n)
{
    buf[0] = 0;
    if (m->spec.none || (m->spec.fmt == PQ_QF_INT && !m->spec.k_mix) ||
        !strncmp(m->spec.name, "gguf:", 5)) /* a GGUF file's formats are its own */
        return false;
    int moved = m->n_linear_fp, total = m->n_linear_fp;
    for (int f = 0; f < pq_qfmt_count(); f++) {
        total += m->n_linear_fmt[f];
        if (!pq_qspec_names_format(&m->spec, (pq_qfmt)f))
            moved += m->n_linear_fmt[f];
    }
    if (!moved)
        return false;
    int w = snprintf(buf, n, "%s: %d of %d linears stored as ", m->spec.name, moved, total);
    size_t at = w > 0 && (size_t)w < n ? (size_t)w : n;
    list_formats(m, buf, n, &at, "%s (%d)", ", ", "full precision", true);
    if (at < n)
        snprintf(buf + at, n - at,
                 ": their rows are not whole blocks of the spec's format, and llama-quantize falls "
                 "back the same way");
    return true;
}
