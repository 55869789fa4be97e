/* JSON results (jansson) and the terminal table. Non-finite numbers are written as null in
 * JSON and "n/a" in the table; every ratio carries the name of its basis. */
#include "report/report.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *ci(const pq_ci *c)
{
    return json_pack("{s:o, s:o, s:o}", "value", num(c->value), "ci95_lo", num(c->lo), "ci95_hi",
                     num(c->hi));
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *pq_report_doc(const pq_run_info *in, const pq_lang_metrics *m, size_t n_lang,
                      const pq_disparity_summary *summary)
{
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    json_t *root = json_pack(
        "{s:s, s:s, s:s, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:s}, s:{s:o, s:o, s:o, s:I, s:I},"
        " s:o, s:I, s:i, s:i, s:i, s:s, s:f, s:f, s:f, s:s}",
        "software", "polyq", "version", POLYQ_VERSION, "created", when, "model", "id",
        str_or_null(in->model_id), "path", str_or_null(in->model_path), "revision",
        str_or_null(in->revision), "architecture", str_or_null(in->architecture), "model_type",
        str_or_null(in->model_type), "dtype", str_or_null(in->dtype), "n_params",
        (json_int_t)in->n_params, "scoring", in->pseudo ? "pseudo_log_likelihood" : "causal",
        "data", "dataset", str_or_null(in->dataset), "split", str_or_null(in->split), "path",
        str_or_null(in->data_path), "max_sentences", (json_int_t)in->max_sentences, "n_languages",
        (json_int_t)n_lang, "reference_language",
        in->ref_evaluated ? json_string(in->ref_lang) : json_null(), "seed", (json_int_t)in->seed,
        "bootstrap_resamples", in->n_boot, "threads", in->threads, "batch_tokens", in->batch_tokens,
        "compute", "f32", "wall_time_s", in->wall_time_s, "memory_estimate_mb",
        in->memory_estimate_mb, "peak_rss_mb", in->peak_rss_mb, "disparity_headline_basis",
        pq_basis_name[PQ_BASIS_BITS_PER_SENTENCE]);
    json_t *fp = json_array(), *qa = json_array();
    if (!root || !fp || !qa)
        goto nomem;
    json_object_set_new(root, "full_precision", fp);
    json_object_set_new(root, "quantized", qa);
    json_object_set_new(root, "scoring_unit",
                        json_string(in->stride ? "line of a document" : "sentence"));
    json_object_set_new(root, "document_stride",
                        in->stride ? json_integer(in->stride) : json_null());
    json_object_set_new(root, "document_protocol",
                        !in->stride     ? json_null()
                        : in->llama_ppl ? json_string("llama-perplexity --ppl-stride")
                                        : json_string("huggingface strided"));
    json_object_set_new(root, "context_tokens",
                        in->context > 0 ? json_integer(in->context) : json_null());
    json_object_set_new(root, "calibration",
                        in->calibration ? json_loads(in->calibration, 0, NULL) : json_null());
    if (in->provenance)
        json_object_set(root, "provenance", in->provenance);
    /* what each sentence's first token is predicted from: the model's BOS (else EOS), as
     * lm-evaluation-harness's prefix token, whatever the file's add_bos_token says */
    if (!in->pseudo && in->prefix_id >= 0)
        json_object_set_new(
            json_object_get(root, "model"), "scored_after",
            json_pack("{s:I, s:o, s:o}", "id", (json_int_t)in->prefix_id, "token",
                      str_or_null(in->prefix_token), "file_add_bos_token",
                      in->file_add_bos < 0 ? json_null() : json_boolean(in->file_add_bos)));
    /* where every sentence's numbers are (polyq eval --log-sentences), for polyq compare */
    json_object_set_new(
        root, "sentences",
        in->sentences_file && in->sentences_sha256
            ? json_pack("{s:s, s:s}", "file", in->sentences_file, "sha256", in->sentences_sha256)
            : json_null());
    json_t *codes = json_array(); /* the languages themselves, besides their count */
    for (size_t l = 0; codes && l < n_lang; l++)
        json_array_append_new(codes, json_string(m[l].lang));
    json_object_set_new(json_object_get(root, "data"), "languages", codes ? codes : json_null());
    for (size_t l = 0; l < n_lang; l++) {
        const pq_lang_metrics *x = &m[l];
        json_array_append_new(
            fp,
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "lang",
                      x->lang, "sentences", (json_int_t)x->n_sent, "tokens", (json_int_t)x->tokens,
                      "bytes", (json_int_t)x->bytes, "chars", (json_int_t)x->chars, "words",
                      x->spaced ? json_integer((json_int_t)x->words) : json_null(), "nll",
                      num(x->nll), "ppl", num(x->ppl), "bpb", num(x->bpb), "bits_per_sentence",
                      num(x->bits_per_sentence), "fertility_bytes", num(x->fertility_bytes),
                      "fertility_chars", num(x->fertility_chars), "fertility_words",
                      num(x->fertility_words)));
        json_t *last = json_array_get(fp, json_array_size(fp) - 1);
        json_object_set_new(last, "script", json_string(x->script));
        json_object_set_new(last, "bytes_per_sentence", num(x->bytes_per_sentence));
        json_object_set_new(last, "fallback_rate", num(x->fallback_rate));
    }
    for (int q = 0; q < in->n_q; q++) {
        json_t *langs = json_array();
        const pq_disparity_summary *s = &summary[q];
        json_t *spec =
            json_pack("{s:s, s:s, s:o, s:o, s:{s:s, s:o, s:o, s:o, s:s, s:s}}", "spec",
                      in->q_names[q], "method", in->q_methods[q], "description",
                      str_or_null(in->q_details ? in->q_details[q] : NULL), "bits_per_weight",
                      num(in->q_bits_per_weight[q]), "across_languages", "basis",
                      pq_basis_name[PQ_BASIS_BITS_PER_SENTENCE], "worst_ratio", num(s->worst_ratio),
                      "cv", num(s->cv), "gini", num(s->gini), "worst_lang", s->worst_lang,
                      "best_lang", s->best_lang);
        if (!langs || !spec)
            goto nomem;
        json_t *formats =
            in->q_formats && in->q_formats[q] ? json_loads(in->q_formats[q], 0, NULL) : NULL;
        if (formats)
            json_object_set_new(spec, "linear_formats", formats);
        json_object_set_new(spec, "source", str_or_null(in->q_sources ? in->q_sources[q] : NULL));
        const char *cal = in->q_calibrations ? in->q_calibrations[q] : NULL;
        json_t *cj = cal ? json_loads(cal, 0, NULL) : NULL;
        json_object_set_new(spec, "calibration", cj ? cj : json_null());
        json_object_set_new(spec, "languages", langs);
        json_t *corr = json_object(), *scripts = json_array();
        for (int v = 0; v < PQ_N_EXPLAIN; v++)
            json_object_set_new(corr, pq_explain_name[v], num(s->spearman[v]));
        for (int k = 0; k < s->n_scripts; k++)
            json_array_append_new(
                scripts, json_pack("{s:s, s:i, s:o}", "script", s->scripts[k].script, "languages",
                                   s->scripts[k].n_langs, "mean_delta_bits_per_sentence",
                                   num(s->scripts[k].mean_delta_bits_per_sentence)));
        json_t *across = json_object_get(spec, "across_languages");
        json_object_set_new(across, "worst_ratio_unstable", json_boolean(s->worst_ratio_unstable));
        json_object_set_new(across, "spearman_with_delta_bits_per_sentence", corr);
        json_object_set_new(across, "by_script", scripts);
        json_array_append_new(qa, spec);
        for (size_t l = 0; l < n_lang; l++) {
            const pq_q_metrics *x = &m[l].q[q];
            json_t *disp = json_object();
            for (int b = 0; b < PQ_N_BASES; b++) {
                json_t *d = ci(&x->disparity[b]);
                json_object_set_new(d, "unstable", json_boolean(x->unstable[b]));
                json_object_set_new(d, "difference_vs_reference", ci(&x->diff_vs_ref[b]));
                json_object_set_new(disp, pq_basis_name[b], d);
            }
            json_array_append_new(
                langs,
                json_pack(
                    "{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "lang",
                    m[l].lang, "nll", num(x->nll), "ppl", num(x->ppl), "bpb", num(x->bpb),
                    "bits_per_sentence", num(x->bits_per_sentence), "delta_nll_per_token",
                    ci(&x->delta_nll_per_token), "delta_bpb", ci(&x->delta_bpb),
                    "delta_bits_per_sentence", ci(&x->delta_bits_per_sentence), "rel_degradation",
                    ci(&x->rel_degradation), "kld", ci(&x->kld), "kld_per_sentence",
                    ci(&x->kld_per_sentence), "top1_agree", ci(&x->top1_agree), "disparity", disp));
            json_t *lq = json_array_get(langs, json_array_size(langs) - 1);
            json_object_set_new(lq, "kld_p50", num(x->kld_p50));
            json_object_set_new(lq, "kld_p90", num(x->kld_p90));
            json_object_set_new(lq, "kld_p99", num(x->kld_p99));
            json_t *ks = json_object(); /* as llama-perplexity prints them */
            for (int k = 0; ks && k < 10; k++)
                json_object_set_new(ks, pq_kld_stat_name[k], num(x->kld_stats[k]));
            json_object_set_new(lq, "kld_statistics", ks ? ks : json_null());
            json_object_set_new(lq, "delta_p", ci(&x->delta_p));
            json_object_set_new(lq, "rms_delta_p", ci(&x->rms_delta_p));
        }
    }
    return root;
nomem:
    json_decref(root);
    return NULL;
}

int pq_report_json(const char *path, const pq_run_info *in, const pq_lang_metrics *m, size_t n_lang,
                   const pq_disparity_summary *summary, polyq_err *err)
{
    json_t *root = pq_report_doc(in, m, n_lang, summary);
    if (!root)
        return pq_fail(err, POLYQ_NOMEM, "out of memory writing %s", path);
    char *tmp = pq_asprintf("%s.tmp", path);
    int rc = 0;
    if (!tmp) {
        json_decref(root);
        return pq_fail(err, POLYQ_NOMEM, "out of memory writing %s", path);
    }
    if (json_dump_file(root, tmp, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) != 0 ||
        rename(tmp, path) != 0) {
        remove(tmp);
        rc = pq_fail(err, POLYQ_IO, "%s: cannot write the results", path);
    }
    free(tmp);
    json_decref(root);
    return rc;
}

static void fmt(char *buf, size_t n, const char *f, double v)
{
    if (isfinite(v))
        snprintf(buf, n, f, v);
    else
        snprintf(buf, n, "n/a");
}

void pq_report_table(FILE *f, const pq_run_info *in, const pq_lang_metrics *m, size_t n_lang,
                     const pq_disparity_summary *summary)
{
    /* a text file has no split; in document mode the units are the file's lines */
    fprintf(f,
            "polyq %s | %s (%s, %s) | %s%s%s | %llu %s per language | bootstrap %d, seed "
            "%llu\n",
            POLYQ_VERSION, in->model_id, in->architecture, in->dtype, in->dataset,
            in->split ? " " : "", in->split ? in->split : "",
            (unsigned long long)(n_lang ? m[0].n_sent : 0),
            in->stride > 0 ? "line(s) of one document" : "sentence(s)", in->n_boot,
            (unsigned long long)in->seed);
    fprintf(f, "\nfull precision\n%-12s %9s %9s %9s %8s %10s %9s\n", "language",
            in->stride > 0 ? "lines" : "sentences", "tokens", "PPL", "bits/B", "bits/sent",
            "tok/byte");
    for (size_t l = 0; l < n_lang; l++) {
        char ppl[32], bpb[32], bps[32], fb[32];
        fmt(ppl, sizeof ppl, "%.2f", m[l].ppl);
        fmt(bpb, sizeof bpb, "%.3f", m[l].bpb);
        fmt(bps, sizeof bps, "%.1f", m[l].bits_per_sentence);
        fmt(fb, sizeof fb, "%.3f", m[l].fertility_bytes);
        fprintf(f, "%-12s %9llu %9llu %9s %8s %10s %9s\n", m[l].lang,
                (unsigned long long)m[l].n_sent, (unsigned long long)m[l].tokens, ppl, bpb, bps,
                fb);
    }
    for (int q = 0; q < in->n_q; q++) {
        bool llama = strstr(in->q_names[q], "-llamacpp") != NULL;
        fprintf(f, "\n%s  (%s%s, %.3f bits/weight in the quantized layers)\n", in->q_names[q],
                !strcmp(in->q_methods[q], "ggml")           ? "llama.cpp blocks"
                : !strcmp(in->q_methods[q], "bitsandbytes") ? "bitsandbytes 4-bit"
                : !strcmp(in->q_methods[q], "gptq")         ? "GPTQ, calibrated"
                : !strcmp(in->q_methods[q], "awq")          ? "AWQ, calibrated"
                : !strcmp(in->q_methods[q], "smoothquant")  ? "SmoothQuant W8A8, calibrated"
                : !strcmp(in->q_methods[q], "w8a8")         ? "int8 weights and activations"
                : !strcmp(in->q_methods[q], "llm.int8")     ? "LLM.int8(), outliers in float"
                : !strcmp(in->q_methods[q], "none")         ? "no quantization"
                                                            : "round-to-nearest",
                llama ? " in llama.cpp's numerics" : "", in->q_bits_per_weight[q]);
        fprintf(f, "%-12s %19s %26s %9s %7s %18s\n", "language",
                in->pseudo ? "pseudo-PPL fp -> q" : "PPL fp -> q", "dbits/sent [95% CI]", "KLD",
                "top-1", "disparity x");
        for (size_t l = 0; l < n_lang; l++) {
            const pq_q_metrics *x = &m[l].q[q];
            char pf[24], pq[24], d[24], lo[24], hi[24], kld[24], top[24], disp[40];
            fmt(pf, sizeof pf, "%.2f", m[l].ppl);
            fmt(pq, sizeof pq, "%.2f", x->ppl);
            fmt(d, sizeof d, "%.3f", x->delta_bits_per_sentence.value);
            fmt(lo, sizeof lo, "%.3f", x->delta_bits_per_sentence.lo);
            fmt(hi, sizeof hi, "%.3f", x->delta_bits_per_sentence.hi);
            fmt(kld, sizeof kld, "%.5f", x->kld.value);
            fmt(top, sizeof top, "%.4f", x->top1_agree.value);
            const pq_ci *r = &x->disparity[PQ_BASIS_BITS_PER_SENTENCE];
            if (!in->ref_evaluated)
                snprintf(disp, sizeof disp, "n/a");
            else if (x->unstable[PQ_BASIS_BITS_PER_SENTENCE])
                snprintf(disp, sizeof disp, "unstable");
            else
                fmt(disp, sizeof disp, "%.2f", r->value);
            char ppl_pair[64], dci[96];
            snprintf(ppl_pair, sizeof ppl_pair, "%s -> %s", pf, pq);
            snprintf(dci, sizeof dci, "%s [%s, %s]", d, lo, hi);
            fprintf(f, "%-12s %19s %26s %9s %7s %18s\n", m[l].lang, ppl_pair, dci, kld, top, disp);
        }
        const pq_disparity_summary *s = &summary[q];
        char wr[32], cv[32], gini[32];
        fmt(wr, sizeof wr, "%.2f", s->worst_ratio);
        fmt(cv, sizeof cv, "%.3f", s->cv);
        fmt(gini, sizeof gini, "%.3f", s->gini);
        fprintf(f,
                "  across languages (delta_bits_per_sentence): worst/best %s%s (%s / %s), CV %s, "
                "Gini %s\n",
                wr, s->worst_ratio_unstable ? " unstable: the best's interval includes 0" : "",
                s->worst_lang, s->best_lang, cv, gini);
        int best = -1;
        for (int v = 0; v < PQ_N_EXPLAIN; v++)
            if (isfinite(s->spearman[v]) &&
                (best < 0 || fabs(s->spearman[v]) > fabs(s->spearman[best])))
                best = v;
        if (best >= 0)
            fprintf(
                f,
                "  strongest association: Spearman rho %.2f between delta_bits_per_sentence and %s "
                "over %zu languages (%s)\n",
                s->spearman[best], pq_explain_name[best], n_lang,
                fabs(s->spearman[best]) >= 0.7   ? "strong"
                : fabs(s->spearman[best]) >= 0.4 ? "moderate"
                                                 : "weak");
    }
    if (in->n_q)
        fprintf(f,
                "\ndisparity x = delta_bits_per_sentence(language) / delta_bits_per_sentence(%s): "
                "the same content in every language, so it compares information lost.\n"
                "\"unstable\": the reference's own degradation is not clearly a loss (its "
                "interval includes 0, or it is a gain); read the difference in the JSON "
                "instead.\n",
                in->ref_evaluated ? in->ref_lang : "reference (not evaluated)");
    if (in->calibration)
        fprintf(f, "calibration: %s\n", in->calibration);
}
