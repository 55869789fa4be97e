/* BERT and XLM-RoBERTa masked language models (transformers BertForMaskedLM,
 * XLMRobertaForMaskedLM; also a bare BertModel, whose output is then the last hidden state).
 * Post-LayerNorm encoder blocks with bidirectional attention: x = LN(x + attn(x)),
 * x = LN(x + fc2(gelu(fc1(x)))). Embeddings: word + position + token type 0, then LayerNorm.
 * XLM-R counts positions from padding_idx + 1 (= pad_token_id + 1). MLM head: dense, gelu,
 * LayerNorm, then the decoder tied to the word embeddings plus an output bias.
 * References: transformers/models/bert/modeling_bert.py, models/xlm_roberta/.
 *
 * Tensor names (P = "bert." or "roberta."; absent for a bare model):
 *   P embeddings.{word_embeddings [V, C], position_embeddings [Pmax, C],
 *                 token_type_embeddings [T, C], LayerNorm.{weight,bias}}
 *   P encoder.layer.L.attention.self.{query,key,value}.{weight [C, C], bias}
 *   P encoder.layer.L.attention.output.{dense, LayerNorm}   ...intermediate.dense [F, C]
 *   P encoder.layer.L.output.{dense [C, F], LayerNorm}
 *   BERT head: cls.predictions.transform.{dense, LayerNorm}, cls.predictions.bias [V]
 *   XLM-R head: lm_head.{dense, layer_norm}, lm_head.bias [V] */
#include <stdio.h>
#include <string.h>

#include "format/json.h"
#include "model/model.h"

typedef struct names {
    const char *prefix, *head_dense, *head_ln, *head_bias, *head_bias2;
} names;

static const names bert_names = {"bert.", "cls.predictions.transform.dense",
                                 "cls.predictions.transform.LayerNorm", "cls.predictions.bias",
                                 "cls.predictions.decoder.bias"};
static const names xlmr_names = {"roberta.", "lm_head.dense", "lm_head.layer_norm", "lm_head.bias",
                                 "lm_head.decoder.bias"};

static int get(pq_model *m, const char *prefix, const char *name, int nd, const int64_t *shape,
               const float **out, bool optional, polyq_err *err)
{
    char a[200], b[200];
    snprintf(a, sizeof a, "%s%s", prefix, name);
    snprintf(b, sizeof b, "%s", name); /* a bare BertModel has no prefix */
    const char *const cand[] = {a, b, NULL};
    return optional ? pq_model_get_f32_opt(m, cand, nd, shape, out, err)
                    : pq_model_get_f32(m, cand, nd, shape, out, err);
}

static int linear(pq_model *m, const char *prefix, pq_linear *lin, const char *base, int n, int k,
                  polyq_err *err)
{
    char w[200], bias[200], w2[200], b2[200];
    snprintf(w, sizeof w, "%s%s.weight", prefix, base);
    snprintf(bias, sizeof bias, "%s%s.bias", prefix, base);
    snprintf(w2, sizeof w2, "%s.weight", base);
    snprintf(b2, sizeof b2, "%s.bias", base);
    const char *const wn[] = {w, w2, NULL}, *const bn[] = {bias, b2, NULL};
    return pq_model_get_linear(m, lin, wn, bn, n, k, err);
}

static int layernorm(pq_model *m, const char *prefix, const char *base, int C, const float **w,
                     const float **b, polyq_err *err)
{
    char wn[200], bn[200];
    int64_t s[1] = {C};
    snprintf(wn, sizeof wn, "%s.weight", base);
    snprintf(bn, sizeof bn, "%s.bias", base);
    int rc = get(m, prefix, wn, 1, s, w, false, err);
    return rc ? rc : get(m, prefix, bn, 1, s, b, false, err);
}

static int encoder_load(pq_model *m, const json_t *j, const names *nm, polyq_err *err)
{
    pq_config *c = &m->cfg;
    char what[4200];
    snprintf(what, sizeof what, "%s/config.json", m->dir);
    int type_vocab = 2, pad = 0;
    const pq_cfg_int dims[] = {
        {"hidden_size", NULL, &c->n_embd, true, 1, 1 << 16, 0},
        {"num_attention_heads", NULL, &c->n_head, true, 1, 1 << 10, 0},
        {"num_hidden_layers", NULL, &c->n_layer, true, 1, 1 << 10, 0},
        {"vocab_size", NULL, &c->n_vocab, true, 1, 1 << 24, 0},
        {"intermediate_size", NULL, &c->n_inner, true, 1, 1 << 20, 0},
        {"max_position_embeddings", NULL, &c->n_ctx, false, 1, 1 << 20, 512},
        {"type_vocab_size", NULL, &type_vocab, false, 1, 1 << 16, 2},
        {"pad_token_id", NULL, &pad, false, 0, 1 << 24, nm == &xlmr_names ? 1 : 0},
        {"bos_token_id", NULL, &c->bos_id, false, 0, 1 << 24, -1},
        {"eos_token_id", NULL, &c->eos_id, false, 0, 1 << 24, -1},
    };
    int rc = pq_config_ints(j, dims, sizeof dims / sizeof dims[0], what, err);
    if (rc)
        return rc;
    if (c->n_embd % c->n_head)
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: hidden_size %d is not a multiple of num_attention_heads %d", what,
                       c->n_embd, c->n_head);
    const char *pet = "absolute";
    pq_json_str(j, "position_embedding_type", false, &pet, what, NULL);
    if (strcmp(pet, "absolute"))
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: position_embedding_type \"%s\" is not supported", what, pet);
    double eps = 1e-12;
    json_t *e = json_object_get(j, "layer_norm_eps");
    if (json_is_number(e))
        eps = json_number_value(e);
    c->ln_eps = (float)eps;
    if ((rc = pq_config_act(j, "hidden_act", "gelu", &c->act, what, err)))
        return rc;
    c->post_ln = true;
    c->tie_word_embeddings = true;
    pq_json_bool(j, "tie_word_embeddings", false, &c->tie_word_embeddings, what, NULL);
    int Pmax = c->n_ctx;
    c->pos_offset = nm == &xlmr_names ? pad + 1 : 0;
    if (c->pos_offset >= Pmax)
        return pq_fail(err, POLYQ_FORMAT, "%s: pad_token_id %d leaves no positions of %d", what,
                       pad, Pmax);
    c->n_ctx = Pmax - c->pos_offset;
    int C = c->n_embd, F = c->n_inner;
    int64_t s_emb[2] = {c->n_vocab, C}, s_pos[2] = {Pmax, C}, s_type[2] = {type_vocab, C};
    const char *p = nm->prefix;
    if ((rc = get(m, p, "embeddings.word_embeddings.weight", 2, s_emb, &m->wte, false, err)) ||
        (rc = get(m, p, "embeddings.position_embeddings.weight", 2, s_pos, &m->wpe, false, err)) ||
        (rc = get(m, p, "embeddings.token_type_embeddings.weight", 2, s_type, &m->type_emb, false,
                  err)) ||
        (rc = layernorm(m, p, "embeddings.LayerNorm", C, &m->emb_ln_w, &m->emb_ln_b, err)))
        return rc;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layer; l++) {
        pq_layer *L = &m->layers[l];
        char b[96], n1[128], n2[128];
        snprintf(b, sizeof b, "encoder.layer.%d.", l);
        snprintf(n1, sizeof n1, "%sattention.output.LayerNorm", b);
        snprintf(n2, sizeof n2, "%soutput.LayerNorm", b);
        char q[128], k[128], v[128], o[128], up[128], down[128];
        snprintf(q, sizeof q, "%sattention.self.query", b);
        snprintf(k, sizeof k, "%sattention.self.key", b);
        snprintf(v, sizeof v, "%sattention.self.value", b);
        snprintf(o, sizeof o, "%sattention.output.dense", b);
        snprintf(up, sizeof up, "%sintermediate.dense", b);
        snprintf(down, sizeof down, "%soutput.dense", b);
        if ((rc = layernorm(m, p, n1, C, &L->ln1_w, &L->ln1_b, err)) ||
            (rc = layernorm(m, p, n2, C, &L->ln2_w, &L->ln2_b, err)) ||
            (rc = linear(m, p, &L->q, q, C, C, err)) || (rc = linear(m, p, &L->k, k, C, C, err)) ||
            (rc = linear(m, p, &L->v, v, C, C, err)) ||
            (rc = linear(m, p, &L->attn_out, o, C, C, err)) ||
            (rc = linear(m, p, &L->up, up, F, C, err)) ||
            (rc = linear(m, p, &L->down, down, C, F, err)))
            return rc;
    }
    /* the MLM head, unless this is a bare encoder (then the output is the hidden state) */
    char hw[128];
    snprintf(hw, sizeof hw, "%s.weight", nm->head_dense);
    if (!pq_tensors_find(&m->ts, hw))
        return 0; /* a bare encoder: the forward's output rows are the last hidden state */
    int64_t s_v[1] = {c->n_vocab};
    const float *bias = NULL;
    if ((rc = linear(m, "", &m->head_dense, nm->head_dense, C, C, err)) ||
        (rc = layernorm(m, "", nm->head_ln, C, &m->head_ln_w, &m->head_ln_b, err)) ||
        (rc = get(m, "", nm->head_bias, 1, s_v, &bias, true, err)) ||
        (!bias && (rc = get(m, "", nm->head_bias2, 1, s_v, &bias, false, err))))
        return rc;
    m->lm_head = (pq_linear){.n_out = c->n_vocab, .n_in = C, .w = m->wte, .bias = bias};
    return 0;
}

static int bert_load(pq_model *m, const json_t *j, polyq_err *err)
{
    return encoder_load(m, j, &bert_names, err);
}
static int xlmr_load(pq_model *m, const json_t *j, polyq_err *err)
{
    return encoder_load(m, j, &xlmr_names, err);
}

static void encoder_forward(const pq_model *m, pq_ops *ops, pq_acts *a, const int32_t *tokens,
                            const int *seq_start, int n_seq, float *logits)
{
    const pq_config *c = &m->cfg;
    int C = c->n_embd, M = seq_start[n_seq];
    pq_embed(a->x, m->wte, tokens, M, C);
    for (int s = 0; s < n_seq; s++)
        for (int r = seq_start[s]; r < seq_start[s + 1]; r++) {
            const float *pe = m->wpe + (size_t)(r - seq_start[s] + c->pos_offset) * C;
            float *x = a->x + (size_t)r * C;
            for (int i = 0; i < C; i++)
                x[i] += pe[i] + m->type_emb[i];
        }
    pq_layernorm_fwd(ops, a->x, a->x, m->emb_ln_w, m->emb_ln_b, M, C, c->ln_eps);
    pq_attn at = pq_config_attn(c);
    for (int l = 0; l < c->n_layer; l++) {
        const pq_layer *L = &m->layers[l];
        pq_layer_qkv(ops, L, a->qkv, a->x, M, &at);
        pq_attention_fwd(ops, a->att, a->qkv, seq_start, n_seq, &at);
        pq_linear_fwd(ops, a->xn, a->att, M, &L->attn_out);
        pq_add(a->x, a->xn, (size_t)M * C);
        pq_layernorm_fwd(ops, a->x, a->x, L->ln1_w, L->ln1_b, M, C, c->ln_eps);
        pq_linear_fwd(ops, a->h, a->x, M, &L->up);
        pq_activation_fwd(ops, a->h, (size_t)M * c->n_inner, c->act);
        pq_linear_fwd(ops, a->xn, a->h, M, &L->down);
        pq_add(a->x, a->xn, (size_t)M * C);
        pq_layernorm_fwd(ops, a->x, a->x, L->ln2_w, L->ln2_b, M, C, c->ln_eps);
        pq_acts_check(a, l, (size_t)M * C);
    }
    if (!m->head_dense.n_out) {
        memcpy(logits, a->x, sizeof(float) * (size_t)M * C);
        return;
    }
    pq_linear_fwd(ops, a->xn, a->x, M, &m->head_dense);
    pq_activation_fwd(ops, a->xn, (size_t)M * C, c->act);
    pq_layernorm_fwd(ops, a->xn, a->xn, m->head_ln_w, m->head_ln_b, M, C, c->ln_eps);
    pq_linear_fwd(ops, logits, a->xn, M, &m->lm_head); /* logits (M,V) */
}

/* AWQ: the references do not cover encoders; every linear or group is measured at its outputs */
static int encoder_awq_groups(const pq_model *m, pq_awq_group *g)
{
    return pq_awq_groups_std(g, PQ_AWQ_LINEARS, PQ_AWQ_LINEARS, PQ_AWQ_LINEARS);
}

const pq_arch pq_arch_bert = {
    .model_type = "bert",
    .description = "BERT, mBERT, MiniLM (masked LM, post-LayerNorm)",
    .load = bert_load,
    .forward = encoder_forward,
    .block_name = "bert.encoder.layer.%d",
    .scoring = PQ_SCORE_PLL,
    .awq_groups = encoder_awq_groups,
};

const pq_arch pq_arch_xlm_roberta = {
    .model_type = "xlm-roberta",
    .description = "XLM-RoBERTa (masked LM, positions after the padding id)",
    .load = xlmr_load,
    .forward = encoder_forward,
    .block_name = "roberta.encoder.layer.%d",
    .scoring = PQ_SCORE_PLL,
    .awq_groups = encoder_awq_groups,
};
