/* Evaluation end to end on FLORES text with a fixture of each decoder family (GPT-2 and Llama
 * with their real vocabularies; BLOOM with its stand-in; GPT-NeoX and OPT with small
 * byte-level BPE tokenizers): NLL against an
 * independent scalar computation, fp32 "quantization" gives KLD 0 and agreement 1,
 * KLD(int8) < KLD(int4-g128), identical numbers for 1 and 2 threads; rolling windows; and
 * the metrics of METRICS.md on hand-made per-sentence numbers. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/eval.h"
#include "eval/metrics.h"
#include "eval/wire.h"
#include "run/run.h"
#include "test.h"

/* NLL of one sentence computed directly: each rolling window (pq_eval_windows, checked by
 * hand in eval_rolling_windows) run alone, log-softmax in double; no batching, no lockstep. */
static double direct_nll(const pq_model *m, const char *text)
{
    polyq_err err = {0};
    pq_ids ids = {0}, store = {0};
    pq_tok_encode(m->tok, text, strlen(text), &ids, &err);
    pq_window *win = NULL;
    size_t n_win = 0;
    int rc;
    if (m->cfg.encoder) { /* pseudo-log-likelihood: one masked copy per token */
        const int32_t *pre, *post;
        int n_pre, n_post;
        pq_tok_special_around(m->tok, &pre, &n_pre, &post, &n_post);
        int32_t mask = pq_tok_token_id(m->tok, "[MASK]");
        if (mask < 0)
            mask = pq_tok_token_id(m->tok, "<mask>");
        rc = pq_eval_pll_windows(&ids, 1, pre, n_pre, post, n_post, mask, m->cfg.n_ctx, &win,
                                 &n_win, &store);
    } else {
        rc = pq_eval_windows(&ids, 1, pq_model_bos(m), m->cfg.n_ctx, &win, &n_win, &store);
    }
    if (rc)
        return NAN;
    int V = m->cfg.n_vocab;
    float *logits = malloc(sizeof(float) * (size_t)m->cfg.n_ctx * V);
    pq_ops ops;
    pq_acts acts;
    pq_ops_init(&ops, 1, m->cfg.n_inner, m->cfg.n_ctx);
    pq_acts_init(&acts, &m->cfg, m->cfg.n_ctx);
    double nll = 0;
    for (size_t w = 0; w < n_win; w++) {
        int ss[2] = {0, win[w].len};
        if (pq_model_forward(m, &ops, &acts, store.v + win[w].in_off, ss, 1, logits, &err))
            nll = NAN;
        for (int r = win[w].first; r < win[w].first + win[w].n_tgt; r++) {
            const float *x = logits + (size_t)r * V;
            double mx = x[0], sum = 0;
            for (int k = 1; k < V; k++)
                mx = x[k] > mx ? x[k] : mx;
            for (int k = 0; k < V; k++)
                sum += exp(x[k] - mx);
            nll -= x[store.v[win[w].tgt_off + (size_t)(r - win[w].first)]] - mx - log(sum);
        }
    }
    pq_acts_free(&acts);
    pq_ops_free(&ops);
    free(logits);
    free(win);
    pq_ids_free(&store);
    pq_ids_free(&ids);
    return nll;
}

static void lockstep_n(const char *fixture, size_t n_sent)
{
    polyq_err err = {0};
    pq_model *fp = NULL, *q[3] = {0};
    CHECK_OK(pq_model_open_dir(&fp, pq_test_fixture(fixture), &err));
    if (!fp)
        return;
    const char *specs[3] = {"int8", "int4-g128", "fp32"};
    for (int i = 0; i < 3; i++) {
        pq_qspec s;
        CHECK_OK(pq_qspec_parse(specs[i], &s, &err));
        CHECK_OK(pq_model_quantize(&q[i], fp, &s, &err));
    }
    const char *langs[3] = {"eng_Latn", "hin_Deva", "zho_Hans"};
    pq_lang_eval res[2][3];
    memset(res, 0, sizeof res);
    for (int th = 1; th <= 2; th++) {
        pq_evaluator *ev = NULL;
        pq_eval_opts o = {.n_threads = th, .batch_tokens = th == 1 ? 512 : 300};
        CHECK_OK(pq_evaluator_create(&ev, fp, q, 3, &o, &err));
        for (int l = 0; l < 3 && ev; l++) {
            char rel[128];
            snprintf(rel, sizeof rel, "data/flores200/devtest/%s.devtest", langs[l]);
            pq_corpus c;
            CHECK_OK(pq_corpus_load(&c, langs[l], pq_test_shared(rel), n_sent, &err));
            CHECK_OK(pq_evaluate(ev, &c, &res[th - 1][l], &err));
            if (th == 1 && l < 2) /* sentence 2 scored alone, window by window */
                CHECK_NEAR(res[0][l].nll_fp[1], direct_nll(fp, c.lines[1]), 1e-3);
            pq_corpus_free(&c);
        }
        pq_evaluator_free(ev);
    }
    for (int l = 0; l < 3; l++) {
        pq_lang_eval *a = &res[0][l], *b = &res[1][l];
        if (a->n_sent != n_sent || b->n_sent != n_sent) {
            FAILF("%s %s: %zu/%zu sentences", fixture, langs[l], a->n_sent, b->n_sent);
            continue;
        }
        double kld8 = 0, kld4 = 0, kld0 = 0, T = 0, agree0 = 0, dnll0 = 0;
        for (size_t s = 0; s < n_sent; s++) {
            kld8 += a->kld_q[0][s];
            kld4 += a->kld_q[1][s];
            kld0 += a->kld_q[2][s];
            agree0 += a->agree_q[2][s];
            dnll0 += fabs(a->nll_q[2][s] - a->nll_fp[s]);
            T += a->tokens[s];
        }
        CHECK(kld8 > 0 && kld8 < kld4);
        CHECK(kld0 == 0 && agree0 == T && dnll0 == 0);
        /* threads and batch sizes change nothing beyond float noise (sgemm's blocking depends
         * on the batch's row count). The random-init masked LMs predict almost uniformly (KL
         * about 2e-5 per masked token), so the same float noise is a larger part of their KLD. */
        double rel = fp->cfg.encoder ? 1e-4 : 1e-6;
        for (size_t s = 0; s < n_sent; s++) {
            CHECK_NEAR(a->nll_fp[s], b->nll_fp[s], 1e-6 * a->nll_fp[s]);
            CHECK_NEAR(a->kld_q[1][s], b->kld_q[1][s], rel * a->kld_q[1][s] + 1e-9);
        }
        pq_lang_eval_free(a);
        pq_lang_eval_free(b);
    }
    for (int i = 0; i < 3; i++)
        pq_model_free(q[i]);
    pq_model_free(fp);
}

static void lockstep(const char *fixture)
{
    lockstep_n(fixture, 8);
}

TEST_SLOW(eval_lockstep_real_text)
{
    lockstep("gpt2-tiny-vocab-bf16");
    lockstep("neox-tiny-f32");
    lockstep("opt-tiny-proj-f32");
    lockstep("llama-tiny-vocab-bf16");
    lockstep("bloom-tiny-f32");
    /* masked LMs run one pass per token: fewer sentences */
    lockstep_n("bert-tiny-f32", 2);
    lockstep_n("xlmr-tiny-f32", 2);
}

/* Pseudo-log-likelihood windows, by hand: [CLS] t.. [MASK] ..t [SEP], one scored row each; a
 * sentence longer than the context seen through a span around the masked token. */
TEST(eval_pll_windows)
{
    int32_t t[3] = {10, 11, 12}, pre[1] = {1}, post[1] = {2};
    pq_ids ids = {t, 3, 3}, store = {0};
    pq_window *w = NULL;
    size_t n = 0;
    CHECK(pq_eval_pll_windows(&ids, 1, pre, 1, post, 1, 3, 10, &w, &n, &store) == 0);
    CHECK_INT(n, 3);
    static const int32_t want[3][5] = {{1, 3, 11, 12, 2}, {1, 10, 3, 12, 2}, {1, 10, 11, 3, 2}};
    for (size_t k = 0; k < n && k < 3; k++) {
        CHECK(w[k].len == 5 && w[k].first == 1 + (int)k && w[k].n_tgt == 1);
        CHECK(memcmp(store.v + w[k].in_off, want[k], sizeof want[k]) == 0);
        CHECK(store.v[w[k].tgt_off] == t[k]);
    }
    free(w);
    pq_ids_free(&store);
    /* context 4: spans of 2 tokens */
    CHECK(pq_eval_pll_windows(&ids, 1, pre, 1, post, 1, 3, 4, &w, &n, &store) == 0);
    static const int32_t want4[3][4] = {{1, 3, 11, 2}, {1, 10, 3, 2}, {1, 11, 3, 2}};
    for (size_t k = 0; k < n && k < 3; k++) {
        CHECK(w[k].len == 4 && w[k].n_tgt == 1);
        CHECK(memcmp(store.v + w[k].in_off, want4[k], sizeof want4[k]) == 0);
        CHECK(store.v[w[k].in_off + (size_t)w[k].first] == 3 && store.v[w[k].tgt_off] == t[k]);
    }
    free(w);
    pq_ids_free(&store);
}

/* 1 and 2 threads with the same batch size: bit-identical per-sentence numbers. */
TEST_SLOW(eval_threads_bit_identical)
{
    polyq_err err = {0};
    pq_model *fp = NULL, *q = NULL;
    pq_qspec s;
    CHECK_OK(pq_model_open_dir(&fp, pq_test_fixture("gpt2-tiny-vocab-bf16"), &err));
    CHECK_OK(pq_qspec_parse("int4-g16", &s, &err));
    if (!fp || pq_model_quantize(&q, fp, &s, &err))
        return pq_model_free(fp);
    pq_corpus c;
    CHECK_OK(pq_corpus_load(&c, "tam_Taml",
                            pq_test_shared("data/flores200/devtest/tam_Taml.devtest"), 4, &err));
    pq_lang_eval r[2];
    for (int th = 1; th <= 2; th++) {
        pq_evaluator *ev = NULL;
        pq_eval_opts o = {.n_threads = th};
        CHECK_OK(pq_evaluator_create(&ev, fp, &q, 1, &o, &err));
        CHECK_OK(pq_evaluate(ev, &c, &r[th - 1], &err));
        pq_evaluator_free(ev);
    }
    CHECK(memcmp(r[0].nll_fp, r[1].nll_fp, 4 * sizeof(double)) == 0);
    CHECK(memcmp(r[0].nll_q[0], r[1].nll_q[0], 4 * sizeof(double)) == 0);
    CHECK(memcmp(r[0].kld_q[0], r[1].kld_q[0], 4 * sizeof(double)) == 0);
    pq_lang_eval_free(&r[0]);
    pq_lang_eval_free(&r[1]);
    pq_corpus_free(&c);
    pq_model_free(q);
    pq_model_free(fp);
}

TEST(eval_rolling_windows)
{
    pq_ids ids[2] = {{0}, {0}}, store = {0};
    for (int i = 0; i < 10; i++)
        pq_ids_push(&ids[0], 100 + i);
    pq_ids_push(&ids[1], 7);
    pq_window *w = NULL;
    size_t n = 0;
    CHECK(pq_eval_windows(ids, 2, 1, 4, &w, &n, &store) == 0);
    CHECK_INT(n, 4);
    if (n == 4) {
        /* [BOS,100,101,102] -> 100..103 */
        CHECK(w[0].len == 4 && w[0].first == 0 && store.v[w[0].in_off] == 1 &&
              store.v[w[0].in_off + 3] == 102 && store.v[w[0].tgt_off + 3] == 103);
        /* [103..106] -> 104..107 */
        CHECK(w[1].len == 4 && w[1].first == 0 && store.v[w[1].in_off] == 103 &&
              store.v[w[1].tgt_off] == 104);
        /* [105..108], rows 2,3 -> 108,109 */
        CHECK(w[2].len == 4 && w[2].first == 2 && store.v[w[2].in_off] == 105 &&
              store.v[w[2].tgt_off] == 108 && store.v[w[2].tgt_off + 1] == 109);
        /* second sentence: [BOS] -> 7 */
        CHECK(w[3].sent == 1 && w[3].len == 1 && store.v[w[3].in_off] == 1 &&
              store.v[w[3].tgt_off] == 7);
        /* every row r >= first predicts the token right after input row r */
        for (size_t k = 0; k < 3; k++)
            for (int r = w[k].first; r + 1 < w[k].len; r++)
                CHECK_INT(store.v[w[k].in_off + (size_t)r + 1],
                          store.v[w[k].tgt_off + (size_t)(r - w[k].first)]);
    }
    free(w);
    pq_ids_free(&store);
    pq_ids_free(&ids[0]);
    pq_ids_free(&ids[1]);
}

/* Hand-made numbers: two languages of 4 parallel sentences. */
TEST(metrics_hand_computed)
{
    uint32_t tok_a[4] = {10, 10, 10, 10}, tok_b[4] = {30, 30, 30, 30};
    uint32_t by_a[4] = {50, 50, 50, 50}, by_b[4] = {60, 60, 60, 60};
    double fp_a[4] = {20, 22, 18, 20}, q_a[4] = {21, 23, 19, 21}; /* +1 nat each */
    double fp_b[4] = {60, 66, 54, 60}, q_b[4] = {64, 70, 57, 61}; /* +3 on average */
    double kl_a[4] = {0.1, 0.1, 0.1, 0.1}, kl_b[4] = {0.9, 0.9, 0.9, 0.9};
    uint32_t ag_a[4] = {9, 9, 9, 9}, ag_b[4] = {15, 15, 15, 15};
    double *nq_a[1] = {q_a}, *nq_b[1] = {q_b}, *k_a[1] = {kl_a}, *k_b[1] = {kl_b};
    uint32_t *g_a[1] = {ag_a}, *g_b[1] = {ag_b};
    pq_lang_eval ev[2] = {
        {.lang = "eng_Latn",
         .n_sent = 4,
         .bytes = 200,
         .chars = 200,
         .words = 40,
         .spaced = true,
         .tokens = tok_a,
         .sbytes = by_a,
         .nll_fp = fp_a,
         .n_q = 1,
         .nll_q = nq_a,
         .kld_q = k_a,
         .agree_q = g_a},
        {.lang = "zho_Hans",
         .n_sent = 4,
         .bytes = 240,
         .chars = 80,
         .words = 4,
         .spaced = false,
         .tokens = tok_b,
         .sbytes = by_b,
         .nll_fp = fp_b,
         .n_q = 1,
         .nll_q = nq_b,
         .kld_q = k_b,
         .agree_q = g_b},
    };
    pq_lang_metrics m[2];
    pq_disparity_summary sum;
    polyq_err err = {0};
    pq_metrics_opts o = {.n_boot = 400, .seed = 3, .ref = 0};
    CHECK_OK(pq_metrics_compute(ev, 2, 1, &o, m, &sum, &err));
    CHECK_INT(m[0].tokens, 40);
    CHECK_NEAR(m[0].ppl, exp(80.0 / 40), 1e-12);
    CHECK_NEAR(m[0].bpb, 80 / (200 * M_LN2), 1e-12);
    CHECK_NEAR(m[0].bits_per_sentence, 80 / (4 * M_LN2), 1e-12);
    CHECK_NEAR(m[1].fertility_chars, 120.0 / 80, 1e-12);
    CHECK(isnan(m[1].fertility_words) && !isnan(m[0].fertility_words));
    const pq_q_metrics *a = &m[0].q[0], *b = &m[1].q[0];
    CHECK_NEAR(a->delta_nll_per_token.value, 4.0 / 40, 1e-12);
    CHECK_NEAR(a->delta_bits_per_sentence.value, 4 / (4 * M_LN2), 1e-12);
    CHECK_NEAR(b->delta_bits_per_sentence.value, 12 / (4 * M_LN2), 1e-12);
    CHECK_NEAR(b->delta_bpb.value, 12 / (240 * M_LN2), 1e-12);
    CHECK_NEAR(b->rel_degradation.value, 12.0 / 240, 1e-12);
    CHECK_NEAR(b->kld.value, 3.6 / 120, 1e-12);
    CHECK_NEAR(b->kld_per_sentence.value, 0.9, 1e-12);
    CHECK_NEAR(b->top1_agree.value, 60.0 / 120, 1e-12);
    /* disparity on each basis: bits/sentence 3x, relative 12/240 / 4/80 = 1x, per token 1x */
    CHECK_NEAR(b->disparity[PQ_BASIS_BITS_PER_SENTENCE].value, 3.0, 1e-12);
    CHECK_NEAR(b->disparity[PQ_BASIS_REL].value, 1.0, 1e-12);
    CHECK_NEAR(b->disparity[PQ_BASIS_NLL_PER_TOKEN].value, 1.0, 1e-12);
    CHECK(!b->unstable[PQ_BASIS_BITS_PER_SENTENCE]); /* English loses exactly 1 nat every time */
    /* the English degradation is constant, so its interval is a point */
    CHECK_NEAR(a->delta_bits_per_sentence.lo, a->delta_bits_per_sentence.value, 1e-12);
    CHECK(b->delta_bits_per_sentence.lo <= b->delta_bits_per_sentence.value &&
          b->delta_bits_per_sentence.value <= b->delta_bits_per_sentence.hi);
    CHECK(b->delta_bits_per_sentence.lo < b->delta_bits_per_sentence.hi);
    /* across languages: d = {1, 3} x c: worst 3, CV = sd/mean = sqrt(2)/2, Gini = 2/(2*4*2) */
    CHECK_NEAR(sum.worst_ratio, 3.0, 1e-12);
    CHECK_NEAR(sum.cv, sqrt(2.0) / 2, 1e-12);
    CHECK_NEAR(sum.gini, 0.25, 1e-12);
    CHECK(!strcmp(sum.worst_lang, "zho_Hans") && !strcmp(sum.best_lang, "eng_Latn"));
    pq_metrics_free(m, 2);

    /* a reference that does not degrade makes every ratio unstable */
    double q_a0[4] = {20, 22, 18, 20};
    nq_a[0] = q_a0;
    CHECK_OK(pq_metrics_compute(ev, 2, 1, &o, m, &sum, &err));
    CHECK(m[1].q[0].unstable[PQ_BASIS_BITS_PER_SENTENCE] && isnan(sum.worst_ratio));
    pq_metrics_free(m, 2);

    /* the best language loses on average but its interval includes 0: the worst/best ratio is
     * flagged */
    double q_a2[4] = {22, 21, 18.5, 21}; /* +2, -1, +0.5, +1 */
    nq_a[0] = q_a2;
    CHECK_OK(pq_metrics_compute(ev, 2, 1, &o, m, &sum, &err));
    CHECK(isfinite(sum.worst_ratio) && sum.worst_ratio_unstable);
    CHECK(m[0].q[0].delta_bits_per_sentence.lo < 0 && m[0].q[0].delta_bits_per_sentence.value > 0);
    pq_metrics_free(m, 2);
    nq_a[0] = q_a;
    CHECK_OK(pq_metrics_compute(ev, 2, 1, &o, m, &sum, &err));
    CHECK(!sum.worst_ratio_unstable);
    pq_metrics_free(m, 2);

    /* a language that gains: ratios and Gini of a non-negative share are n/a, CV is not */
    double q_a1[4] = {19, 21, 17, 19};
    nq_a[0] = q_a1;
    CHECK_OK(pq_metrics_compute(ev, 2, 1, &o, m, &sum, &err));
    CHECK(isnan(sum.worst_ratio) && isnan(sum.gini) && isfinite(sum.cv));
    pq_metrics_free(m, 2);
}

/* Spearman with and without ties, KL percentiles and per-script means, by hand. */
TEST(metrics_explanations_by_hand)
{
    double x[4] = {1, 2, 3, 4}, up[4] = {10, 20, 30, 40}, down[4] = {4, 3, 2, 1};
    double tx[4] = {1, 2, 2, 3}, ty[4] = {1, 2, 3, 4}, flat[4] = {5, 5, 5, 5};
    CHECK_NEAR(pq_spearman(x, up, 4), 1.0, 1e-12);
    CHECK_NEAR(pq_spearman(x, down, 4), -1.0, 1e-12);
    CHECK_NEAR(pq_spearman(tx, ty, 4), 4.5 / sqrt(22.5), 1e-12);
    CHECK(isnan(pq_spearman(x, flat, 4)) && isnan(pq_spearman(x, up, 2)));

    /* three languages, two sentences of two tokens each; degradation grows with bytes */
    static const char *langs[3] = {"eng_Latn", "fra_Latn", "tha_Thai"};
    uint32_t tok[2] = {2, 2}, by[3][2] = {{10, 10}, {20, 20}, {40, 40}}, ag[2] = {2, 2};
    double fp[2] = {4, 4}, q[3][2] = {{4.5, 4.5}, {5, 5}, {6, 6}}, kl[2] = {0.3, 0.7};
    float kpos[4] = {0.4f, 0.1f, 0.3f, 0.2f};
    double *nq[3][1] = {{q[0]}, {q[1]}, {q[2]}}, *kq[1] = {kl};
    uint32_t *aq[1] = {ag};
    float *kp[1] = {kpos};
    pq_lang_eval ev[3];
    for (int l = 0; l < 3; l++)
        ev[l] = (pq_lang_eval){.n_sent = 2,
                               .bytes = 2 * by[l][0],
                               .chars = 2 * by[l][0],
                               .spaced = true,
                               .tokens = tok,
                               .sbytes = by[l],
                               .nll_fp = fp,
                               .n_q = 1,
                               .nll_q = nq[l],
                               .kld_q = kq,
                               .agree_q = aq,
                               .kl_pos = kp,
                               .fallback = (uint64_t)l};
    for (int l = 0; l < 3; l++)
        snprintf(ev[l].lang, sizeof ev[l].lang, "%s", langs[l]);
    pq_lang_metrics m[3];
    pq_disparity_summary sum;
    polyq_err err = {0};
    pq_metrics_opts o = {.n_boot = 100, .seed = 5, .ref = 0};
    CHECK_OK(pq_metrics_compute(ev, 3, 1, &o, m, &sum, &err));
    CHECK_NEAR(m[0].q[0].kld_p50, 0.25, 1e-7);
    CHECK_NEAR(m[0].q[0].kld_p90, 0.37, 1e-7);
    CHECK_NEAR(m[0].q[0].kld_p99, 0.397, 1e-7);
    CHECK_NEAR(m[2].fallback_rate, 2.0 / 4, 1e-12);
    CHECK_NEAR(m[1].bytes_per_sentence, 20, 1e-12);
    CHECK_NEAR(sum.spearman[PQ_X_BYTES_PER_SENTENCE], 1.0, 1e-12);
    CHECK_NEAR(sum.spearman[PQ_X_FALLBACK_RATE], 1.0, 1e-12);
    CHECK_NEAR(sum.spearman[PQ_X_FERTILITY_BYTES], -1.0, 1e-12);
    CHECK_INT(sum.n_scripts, 2);
    CHECK(!strcmp(sum.scripts[0].script, "Latn") && sum.scripts[0].n_langs == 2);
    CHECK_NEAR(sum.scripts[0].mean_delta_bits_per_sentence, (1.0 + 2.0) / 2 / (2 * M_LN2), 1e-12);
    CHECK_NEAR(sum.scripts[1].mean_delta_bits_per_sentence, 4.0 / (2 * M_LN2), 1e-12);
    pq_metrics_free(m, 3);
}

static double sim_uniform(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull; /* splitmix64 */
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

/* Bootstrap intervals cover the true value at about the nominal 95%: 300 synthetic studies of
 * two parallel languages (80 sentences each) whose per-sentence degradation is skewed
 * (mean + sd * (Exp(1) - 1)), correlated across the languages as parallel sentences are, with
 * known means. Checked for delta_bits_per_sentence of each language and for the disparity
 * ratio; the same seed gives the same intervals. */
TEST(metrics_bootstrap_coverage)
{
    enum { N = 80, REPS = 300 };
    const double mu_a = 0.8, mu_b = 2.0, sd = 1.0; /* nats per sentence */
    uint32_t tok[N], by[N], ag[N];
    double fp_a[N], fp_b[N], q_a[N], q_b[N], kl[N];
    double *nq_a[1] = {q_a}, *nq_b[1] = {q_b}, *k[1] = {kl};
    uint32_t *g[1] = {ag};
    int cover_a = 0, cover_b = 0, cover_r = 0;
    uint64_t rng = 42;
    for (int rep = 0; rep < REPS; rep++) {
        for (int s = 0; s < N; s++) {
            tok[s] = 20;
            by[s] = 100;
            ag[s] = 18;
            kl[s] = 0.1;
            fp_a[s] = 40 + 10 * sim_uniform(&rng);
            fp_b[s] = 60 + 10 * sim_uniform(&rng);
            double shared = -log(sim_uniform(&rng)) - 1; /* a hard sentence is hard in both */
            double own_a = -log(sim_uniform(&rng)) - 1, own_b = -log(sim_uniform(&rng)) - 1;
            q_a[s] = fp_a[s] + mu_a + sd * (0.6 * shared + 0.8 * own_a);
            q_b[s] = fp_b[s] + mu_b + sd * (0.6 * shared + 0.8 * own_b);
        }
        pq_lang_eval ev[2] = {
            {.lang = "eng_Latn",
             .n_sent = N,
             .bytes = 100 * N,
             .chars = 100 * N,
             .words = 20 * N,
             .spaced = true,
             .tokens = tok,
             .sbytes = by,
             .nll_fp = fp_a,
             .n_q = 1,
             .nll_q = nq_a,
             .kld_q = k,
             .agree_q = g},
            {.lang = "hin_Deva",
             .n_sent = N,
             .bytes = 100 * N,
             .chars = 100 * N,
             .words = 20 * N,
             .spaced = true,
             .tokens = tok,
             .sbytes = by,
             .nll_fp = fp_b,
             .n_q = 1,
             .nll_q = nq_b,
             .kld_q = k,
             .agree_q = g},
        };
        pq_lang_metrics m[2], m2[2];
        pq_disparity_summary sum;
        polyq_err err = {0};
        pq_metrics_opts o = {.n_boot = 1000, .seed = (uint64_t)rep + 1, .ref = 0};
        if (pq_metrics_compute(ev, 2, 1, &o, m, &sum, &err)) {
            FAILF("%s", err.msg);
            return;
        }
        const pq_ci *a = &m[0].q[0].delta_bits_per_sentence,
                    *b = &m[1].q[0].delta_bits_per_sentence;
        const pq_ci *r = &m[1].q[0].disparity[PQ_BASIS_BITS_PER_SENTENCE];
        cover_a += a->lo <= mu_a / M_LN2 && mu_a / M_LN2 <= a->hi;
        cover_b += b->lo <= mu_b / M_LN2 && mu_b / M_LN2 <= b->hi;
        cover_r += r->lo <= mu_b / mu_a && mu_b / mu_a <= r->hi;
        if (rep < 3) { /* same seed, same intervals */
            CHECK_OK(pq_metrics_compute(ev, 2, 1, &o, m2, &sum, &err));
            CHECK(m2[1].q[0].disparity[0].lo == r->lo && m2[1].q[0].disparity[0].hi == r->hi &&
                  m2[0].q[0].delta_bits_per_sentence.lo == a->lo);
            pq_metrics_free(m2, 2);
        }
        pq_metrics_free(m, 2);
    }
    double ca = (double)cover_a / REPS, cb = (double)cover_b / REPS, cr = (double)cover_r / REPS;
    if (getenv("PQ_TEST_VERBOSE"))
        fprintf(stderr, "  coverage of 95%% intervals: %.3f, %.3f, ratio %.3f\n", ca, cb, cr);
    /* nominal 0.95; 300 studies give a standard error of 0.013 */
    if (!(ca >= 0.91 && ca <= 0.99 && cb >= 0.91 && cb <= 0.99 && cr >= 0.90 && cr <= 0.99))
        FAILF("coverage of 95%% intervals: %.3f, %.3f, ratio %.3f", ca, cb, cr);
}

/* Document mode windows, by hand: lines [10 11] [12] [13 14 15], newline [99], BOS 1, context
 * 4, stride 2: stream 1 10 11 99 12 99 13 14 15 99; each token scored once, by its line. */
TEST(eval_doc_windows)
{
    int32_t a[2] = {10, 11}, b[1] = {12}, c3[3] = {13, 14, 15}, n1[1] = {99};
    pq_ids ids[3] = {{a, 2, 2}, {b, 1, 1}, {c3, 3, 3}}, nl = {n1, 1, 1}, store = {0}, units = {0};
    pq_window *w = NULL;
    size_t n = 0;
    CHECK(pq_eval_doc_windows(ids, 3, &nl, 1, 4, 2, &w, &n, &store, &units) == 0);
    CHECK_INT(n, 4);
    static const int32_t in[4][4] = {
        {1, 10, 11, 99}, {11, 99, 12, 99}, {12, 99, 13, 14}, {13, 14, 15, 0}};
    static const int len[4] = {4, 4, 4, 3}, first[4] = {0, 2, 2, 2}, ntgt[4] = {4, 2, 2, 1};
    static const int32_t tgt[9] = {10, 11, 99, 12, 99, 13, 14, 15, 99},
                         unit[9] = {0, 0, 0, 1, 1, 2, 2, 2, 2};
    int k = 0;
    for (size_t i = 0; i < n && i < 4; i++) {
        CHECK(w[i].len == len[i] && w[i].first == first[i] && w[i].n_tgt == ntgt[i]);
        CHECK(!memcmp(store.v + w[i].in_off, in[i], sizeof(int32_t) * (size_t)len[i]));
        for (int t = 0; t < w[i].n_tgt; t++, k++) {
            CHECK_INT(store.v[w[i].tgt_off + (size_t)t], tgt[k]);
            CHECK_INT(units.v[w[i].unit_off + (size_t)t], unit[k]);
            /* row first + t predicts the token after its input */
            if (w[i].first + t + 1 < w[i].len)
                CHECK_INT(store.v[w[i].in_off + (size_t)(w[i].first + t + 1)], tgt[k]);
        }
    }
    CHECK_INT(k, 9);
    free(w);
    pq_ids_free(&store);
    pq_ids_free(&units);
}

/* llama-perplexity's protocol: ten tokens after BOS in windows of 4 every 2, the last 2 of each
 * scored, (11 - 4 + 2 - 1) / 2 = 4 windows, the first window's earlier tokens never scored;
 * without BOS the stream starts at the first token; fewer than two windows' tokens refused. */
TEST(eval_llama_perplexity_windows)
{
    pq_ids ids[2] = {{0}}, store = {0}, units = {0};
    for (int32_t t = 10; t < 20; t++)
        pq_ids_push(&ids[t < 16 ? 0 : 1], t);
    pq_window *w = NULL;
    size_t n = 0;
    CHECK(pq_eval_llama_windows(ids, 2, 1, 4, 2, &w, &n, &store, &units) == 0);
    CHECK_INT(n, 4);
    for (size_t i = 0; w && i < n; i++) {
        /* stream: 1 10 11 .. 19; window i holds stream[2i .. 2i+4), scores rows 1, 2 */
        CHECK_INT(w[i].len, 4);
        CHECK_INT(w[i].first, 1);
        CHECK_INT(w[i].n_tgt, 2);
        CHECK_INT(store.v[w[i].in_off], i == 0 ? 1 : 10 + 2 * (int)i - 1);
        CHECK_INT(store.v[w[i].tgt_off], 10 + 2 * (int)i + 1);
        CHECK_INT(store.v[w[i].tgt_off + 1], 10 + 2 * (int)i + 2);
        CHECK_INT(units.v[w[i].unit_off + 1], 10 + 2 * (int)i + 2 < 16 ? 0 : 1);
    }
    free(w);
    pq_ids_free(&store);
    pq_ids_free(&units);
    w = NULL;
    CHECK(pq_eval_llama_windows(ids, 2, -1, 4, 2, &w, &n, &store, &units) == 0);
    CHECK(n == 3 && store.v[w[0].in_off] == 10); /* (10 - 4 + 1) / 2 */
    free(w);
    pq_ids_free(&store);
    pq_ids_free(&units);
    w = NULL;
    CHECK(pq_eval_llama_windows(ids, 2, 1, 6, 2, &w, &n, &store, &units) == 1);
    free(w);
    pq_ids_free(&store);
    pq_ids_free(&units);
    pq_ids_free(&ids[0]);
    pq_ids_free(&ids[1]);
}

/* Document mode through the evaluator equals running each window of the document alone, the
 * document tokenized as one text (its lines each with a newline); every token is scored once
 * and counted for the line it starts in. On a sentencepiece vocabulary (Llama 2's) the one text
 * is not the lines tokenized one by one (each would get its own space prefix). */
TEST(eval_document_mode)
{
    static const char *const fixtures[] = {"neox-tiny-f32", "llama-tiny-vocab-bf16"};
    for (int f = 0; f < 2; f++) {
        polyq_err err = {0};
        pq_model *m = NULL;
        CHECK_OK(pq_model_open_dir(&m, pq_test_fixture(fixtures[f]), &err));
        if (!m)
            continue;
        pq_corpus c;
        CHECK_OK(pq_corpus_load(
            &c, "eng_Latn", pq_test_shared("data/flores200/devtest/eng_Latn.devtest"), 6, &err));
        size_t len = 0;
        char text[8192];
        for (size_t s = 0; s < c.n && len + c.lens[s] + 1 < sizeof text; s++) {
            memcpy(text + len, c.lines[s], c.lens[s]);
            len += c.lens[s];
            text[len++] = '\n';
        }
        pq_ids doc = {0}, nl = {0}, lines = {0};
        CHECK_OK(pq_tok_encode(m->tok, text, len, &doc, &err));
        CHECK_OK(pq_tok_encode(m->tok, "\n", 1, &nl, &err));
        size_t per_line[6] = {0};
        for (size_t s = 0; s < c.n; s++) { /* the lines one by one, as before */
            pq_ids one = {0};
            pq_tok_encode(m->tok, c.lines[s], c.lens[s], &one, &err);
            per_line[s] = one.n + nl.n;
            for (size_t i = 0; i < one.n + nl.n; i++)
                pq_ids_push(&lines, i < one.n ? one.v[i] : nl.v[i - one.n]);
            pq_ids_free(&one);
        }
        bool same = lines.n == doc.n && !memcmp(lines.v, doc.v, sizeof(int32_t) * doc.n);
        CHECK(f == 0 ? same : !same);
        for (int stride = 16; stride <= 64; stride *= 4) {
            pq_evaluator *ev = NULL;
            pq_eval_opts o = {.n_threads = 2, .batch_tokens = 256, .stride = stride};
            pq_lang_eval r;
            CHECK_OK(pq_evaluator_create(&ev, m, NULL, 0, &o, &err));
            CHECK_OK(pq_evaluate(ev, &c, &r, &err));
            /* direct: the windows of the one stream, one by one */
            pq_ids none = {0}, store = {0}, units = {0};
            pq_window *w = NULL;
            size_t n = 0, scored = 0;
            CHECK(pq_eval_doc_windows(&doc, 1, &none, pq_model_bos(m), m->cfg.n_ctx, stride, &w, &n,
                                      &store, &units) == 0);
            int V = m->cfg.n_vocab;
            float *logits = malloc(sizeof(float) * (size_t)m->cfg.n_ctx * V);
            pq_ops ops;
            pq_acts acts;
            pq_ops_init(&ops, 1, m->cfg.n_inner, m->cfg.n_ctx);
            pq_acts_init(&acts, &m->cfg, m->cfg.n_ctx);
            double want = 0, got = 0;
            for (size_t i = 0; i < n; i++) {
                int ss[2] = {0, w[i].len};
                CHECK_OK(
                    pq_model_forward(m, &ops, &acts, store.v + w[i].in_off, ss, 1, logits, &err));
                for (int t = 0; t < w[i].n_tgt; t++, scored++) {
                    const float *x = logits + (size_t)(w[i].first + t) * V;
                    double mx = x[0], sum = 0;
                    for (int v = 1; v < V; v++)
                        mx = x[v] > mx ? x[v] : mx;
                    for (int v = 0; v < V; v++)
                        sum += exp(x[v] - mx);
                    want -= x[store.v[w[i].tgt_off + (size_t)t]] - mx - log(sum);
                }
            }
            size_t tokens = 0;
            for (size_t s = 0; s < c.n; s++) {
                got += r.nll_fp[s];
                /* a line's tokens are its own: as many as alone, give or take the space
                 * prefix and the newline */
                if (!(r.tokens[s] + 2 >= per_line[s] && r.tokens[s] <= per_line[s] + 2))
                    FAILF("%s line %zu: %u tokens in the document, %zu alone", fixtures[f], s,
                          r.tokens[s], per_line[s]);
                tokens += r.tokens[s];
            }
            CHECK_NEAR(got, want, 1e-6 * want);
            CHECK_INT(tokens, scored);
            CHECK_INT(tokens, doc.n);
            CHECK(f == 1 || n > 1); /* the document is longer than neox's context of 64 */
            pq_acts_free(&acts);
            pq_ops_free(&ops);
            free(logits);
            free(w);
            pq_ids_free(&store);
            pq_ids_free(&units);
            pq_lang_eval_free(&r);
            pq_evaluator_free(ev);
        }
        pq_ids_free(&doc);
        pq_ids_free(&nl);
        pq_ids_free(&lines);
        pq_corpus_free(&c);
        pq_model_free(m);
    }
}

/* A language's results sent between sweep ranks (eval/wire.h): the spec asked for comes back
 * value for value; truncated, padded, relabelled or inconsistent bytes are refused. */
TEST(eval_wire_round_trip)
{
    uint32_t tokens[3] = {2, 0, 3}, sbytes[3] = {11, 1, 17}, agree1[3] = {2, 0, 1};
    double nll_fp[3] = {1.5, 0, 7.25}, nll1[3] = {1.75, 0, 9.5}, kld1[3] = {0.01, 0, 0.125};
    float kl1[5] = {0.001f, 0.009f, 0.1f, 0.02f, 0.005f};
    double zero[3] = {0};
    uint32_t zu[3] = {0};
    float zf[5] = {0};
    double *nq[2] = {zero, nll1}, *kq[2] = {zero, kld1};
    uint32_t *aq[2] = {zu, agree1};
    float *kp[2] = {zf, kl1};
    double dp1[3] = {-0.25, 0, 0.5}, dp21[3] = {0.0625, 0, 0.375};
    double *dq[2] = {zero, dp1}, *d2q[2] = {zero, dp21};
    pq_lang_eval e = {.n_sent = 3,
                      .bytes = 29,
                      .chars = 20,
                      .words = 5,
                      .spaced = true,
                      .tokens = tokens,
                      .sbytes = sbytes,
                      .nll_fp = nll_fp,
                      .n_q = 2,
                      .nll_q = nq,
                      .kld_q = kq,
                      .kl_pos = kp,
                      .fallback = 1,
                      .agree_q = aq,
                      .dp_q = dq,
                      .dp2_q = d2q};
    snprintf(e.lang, sizeof e.lang, "hin_Deva");
    char *b = NULL;
    size_t n = 0;
    polyq_err err = {0};
    CHECK_OK(pq_lang_eval_pack(&e, 1, &b, &n, &err));
    CHECK_INT(n, 128 + 3 * 36 + 1 + 5 * 4 + 1 + 3 * 16);
    pq_lang_eval r;
    CHECK_OK(pq_lang_eval_unpack(b, n, &r, &err));
    CHECK(!strcmp(r.lang, "hin_Deva") && r.n_sent == 3 && r.bytes == 29 && r.chars == 20 &&
          r.words == 5 && r.spaced && r.fallback == 1 && r.n_q == 1);
    for (int i = 0; r.n_sent == 3 && i < 3; i++)
        CHECK(r.tokens[i] == tokens[i] && r.sbytes[i] == sbytes[i] && r.nll_fp[i] == nll_fp[i] &&
              r.nll_q[0][i] == nll1[i] && r.kld_q[0][i] == kld1[i] && r.agree_q[0][i] == agree1[i]);
    for (int i = 0; r.kl_pos && r.kl_pos[0] && i < 5; i++)
        CHECK(r.kl_pos[0][i] == kl1[i]);
    CHECK(r.dp_q && r.dp2_q);
    for (int i = 0; r.dp_q && r.dp2_q && i < 3; i++)
        CHECK(r.dp_q[0][i] == dp1[i] && r.dp2_q[0][i] == dp21[i]);
    pq_lang_eval_free(&r);
    CHECK_FAILS(pq_lang_eval_unpack(b, n - 1, &r, &err), POLYQ_FORMAT, "bytes, want");
    pq_lang_eval_free(&r);
    CHECK_FAILS(pq_lang_eval_unpack(b, 100, &r, &err), POLYQ_FORMAT, "not polyq's layout");
    pq_lang_eval_free(&r);
    b[128] = 9; /* the first sentence's token count no longer adds up */
    CHECK_FAILS(pq_lang_eval_unpack(b, n, &r, &err), POLYQ_FORMAT, "add up to");
    pq_lang_eval_free(&r);
    b[128] = 2;
    uint64_t huge = 1ull << 60;
    memcpy(b + 72, &huge, 8);
    CHECK_FAILS(pq_lang_eval_unpack(b, n, &r, &err), POLYQ_FORMAT, "do not fit");
    pq_lang_eval_free(&r);
    char *none = NULL;
    CHECK_FAILS(pq_lang_eval_pack(&e, 2, &none, &n, &err), POLYQ_INVALID_ARG,
                "no quantized result 2");
    CHECK(none == NULL);
    free(b);
    e.dp_q = NULL; /* not measured: nothing of it is sent, and none comes back */
    CHECK_OK(pq_lang_eval_pack(&e, 1, &b, &n, &err));
    CHECK_INT(n, 128 + 3 * 36 + 1 + 5 * 4 + 1);
    CHECK_OK(pq_lang_eval_unpack(b, n, &r, &err));
    CHECK(r.dp_q == NULL && r.dp2_q == NULL);
    pq_lang_eval_free(&r);
    free(b);
}

/* llama-perplexity's statistics by hand: KL max/percentiles/min over positions, and the mean
 * and root mean square of dp = p_q - p_fp of the token that comes. */
TEST(metrics_kld_statistics_and_delta_p)
{
    uint32_t tok[2] = {5, 5}, by[2] = {20, 20}, ag[2] = {5, 5};
    double fp[2] = {10, 10}, q[2] = {11, 11}, kls[2] = {1.5, 4.0};
    float klp[10] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1.0f};
    double dp[2] = {-0.5, 0.1}, dp2[2] = {0.15, 0.05}; /* sums over each sentence's 5 positions */
    double *nq[1] = {q}, *kq[1] = {kls}, *dq[1] = {dp}, *d2q[1] = {dp2};
    uint32_t *gq[1] = {ag};
    float *kp[1] = {klp};
    pq_lang_eval ev = {.lang = "eng_Latn",
                       .n_sent = 2,
                       .bytes = 40,
                       .chars = 40,
                       .words = 8,
                       .spaced = true,
                       .tokens = tok,
                       .sbytes = by,
                       .nll_fp = fp,
                       .n_q = 1,
                       .nll_q = nq,
                       .kld_q = kq,
                       .kl_pos = kp,
                       .agree_q = gq,
                       .dp_q = dq,
                       .dp2_q = d2q};
    pq_lang_metrics m;
    pq_disparity_summary sum;
    polyq_err err = {0};
    pq_metrics_opts o = {.n_boot = 200, .seed = 1, .ref = 0};
    CHECK_OK(pq_metrics_compute(&ev, 1, 1, &o, &m, &sum, &err));
    const pq_q_metrics *x = &m.q[0];
    CHECK_NEAR(x->kld_stats[0], 1.0, 1e-7);  /* max */
    CHECK_NEAR(x->kld_stats[9], 0.1, 1e-7);  /* min */
    CHECK_NEAR(x->kld_stats[5], 0.55, 1e-7); /* median, between the 5th and 6th */
    CHECK_NEAR(x->kld_stats[4], 0.91, 1e-6); /* 90%: 0.9 + 0.1 * (9 * 0.9 - 8) */
    CHECK(!strcmp(pq_kld_stat_name[1], "p99.9") && !strcmp(pq_kld_stat_name[5], "median"));
    CHECK_NEAR(x->delta_p.value, -0.4 / 10, 1e-12);
    CHECK_NEAR(x->rms_delta_p.value, sqrt(0.2 / 10), 1e-12);
    CHECK(x->delta_p.lo <= x->delta_p.value && x->delta_p.value <= x->delta_p.hi);
    pq_metrics_free(&m, 1);
}

typedef struct frac_log {
    double last, after_first;
    size_t first_li_calls;
    bool backwards;
} frac_log;

static void log_frac(void *ctx, const char *lang, size_t li, size_t n_lang, size_t done,
                     size_t total, double frac)
{
    frac_log *f = ctx;
    (void)lang;
    (void)n_lang;
    f->backwards |= frac < f->last - 1e-12;
    f->last = frac;
    if (li == 0 && done == total)
        f->after_first = frac;
}

/* The run's progress weighs each language by the size of its text, so the time left is
 * estimated from the share of the text done: after the first language its share, at the end
 * 1, never going back. */
TEST(run_progress_weighs_languages_by_text)
{
    polyq_err err = {0};
    const char *tmp = pq_test_tmpdir();
    char *a = pq_asprintf("%s/short.txt", tmp), *b = pq_asprintf("%s/long.txt", tmp);
    pq_test_write(a, "One.\nTwo.\nThree.\n");
    pq_test_write(b, "The first sentence is rather longer than the others.\n"
                     "So is the second one, which goes on for a good while.\n"
                     "And the third sentence here is the longest of them all, by far.\n");
    char *data = pq_asprintf("aaa=%s,bbb=%s", a, b);
    pq_run_opts o = {
        .data = data, .langs = "all", .ref = "aaa", .threads = 1, .progress = log_frac};
    frac_log f = {0};
    o.ctx = &f;
    pq_run_langs l = {0};
    pq_model *fp = NULL;
    pq_run *r = NULL;
    CHECK_OK(pq_run_langs_open(&l, &o, false, &err));
    CHECK_OK(pq_model_open_dir(&fp, pq_test_fixture("gpt2-tiny-vocab-bf16"), &err));
    if (fp && l.n == 2)
        CHECK_OK(pq_run_eval(&r, fp, NULL, 0, &l, &o, "fixture", pq_test_fixture(""), NULL, NULL,
                             pq_now(), &err));
    struct stat sta, stb;
    CHECK(stat(a, &sta) == 0 && stat(b, &stb) == 0);
    double sa = (double)sta.st_size, sb = (double)stb.st_size; /* the files' bytes */
    CHECK_NEAR(f.after_first, sa / (sa + sb), 1e-12);
    CHECK_NEAR(f.last, 1.0, 1e-12);
    CHECK(!f.backwards);
    pq_run_free(r);
    pq_model_free(fp);
    pq_run_langs_free(&l);
    free(data);
    free(a);
    free(b);
}
