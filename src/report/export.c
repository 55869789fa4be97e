/* polyq report: from a results JSON file, a tidy CSV (one row per quantization spec and
 * language, every number with its 95% interval, printed so it reads back exactly) and a
 * report.md with the tables and the findings in plain sentences. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "format/json.h"
#include "report/figures.h"
#include "report/html.h"
#include "report/report.h"

static const char *const ci_fields[] = {
    "delta_nll_per_token", "delta_bpb", "delta_bits_per_sentence",
    "rel_degradation",     "kld",       "kld_per_sentence",
    "top1_agree",          "delta_p",   "rms_delta_p"};
#define N_CI (sizeof ci_fields / sizeof ci_fields[0])

double pq_rj_num(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

#define num pq_rj_num

long long pq_rj_n_languages(const json_t *data)
{
    const json_t *n = json_object_get(data, "n_languages"), *l = json_object_get(data, "languages");
    if (json_is_integer(n))
        return json_integer_value(n);
    return json_is_array(l) ? (long long)json_array_size(l)
                            : (long long)pq_rj_num(data, "languages");
}

static void put_num(FILE *f, double v)
{
    if (isnan(v))
        fputs(",", f);
    else
        fprintf(f, ",%.17g", v);
}

const char *pq_rj_str(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "";
}

#define str pq_rj_str

/* a CSV field: quoted when it holds a comma, quote or newline */
static void put_str(FILE *f, const char *s, bool first)
{
    if (!first)
        fputc(',', f);
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

const json_t *pq_rj_fp_lang(const json_t *fp, const char *lang)
{
    size_t i;
    json_t *e;
    json_array_foreach(fp, i, e) if (!strcmp(str(e, "lang"), lang)) return e;
    return NULL;
}

#define fp_of pq_rj_fp_lang

int pq_report_csv(const char *path, const json_t *r, polyq_err *err)
{
    char *tmp;
    FILE *f = pq_out_open(path, &tmp, err); /* written whole, then renamed over path */
    if (!f)
        return err->code;
    const json_t *fp = json_object_get(r, "full_precision"), *qa = json_object_get(r, "quantized");
    const char *model = str(json_object_get(r, "model"), "id");
    fputs("model,spec,method,bits_per_weight,lang,script,sentences,tokens,bytes,ppl_fp,bpb_fp,"
          "bits_per_sentence_fp,fertility_bytes,fallback_rate,ppl_q,bpb_q",
          f);
    for (size_t k = 0; k < N_CI; k++)
        fprintf(f, ",%s,%s_lo,%s_hi", ci_fields[k], ci_fields[k], ci_fields[k]);
    fputs(",disparity_bits,disparity_bits_lo,disparity_bits_hi,disparity_bits_unstable,"
          "diff_vs_ref_bits,diff_vs_ref_bits_lo,diff_vs_ref_bits_hi,kld_p50,kld_p90,kld_p99\n",
          f);
    size_t qi, li;
    json_t *q, *l;
    json_array_foreach(qa, qi, q)
    {
        json_array_foreach(json_object_get(q, "languages"), li, l)
        {
            const char *lang = str(l, "lang");
            const json_t *base = fp_of(fp, lang);
            put_str(f, model, true);
            put_str(f, str(q, "spec"), false);
            put_str(f, str(q, "method"), false);
            put_num(f, num(q, "bits_per_weight"));
            put_str(f, lang, false);
            put_str(f, str(base, "script"), false);
            static const char *const fk[] = {
                "sentences",         "tokens",          "bytes",        "ppl", "bpb",
                "bits_per_sentence", "fertility_bytes", "fallback_rate"};
            for (size_t k = 0; k < 8; k++)
                put_num(f, num(base, fk[k]));
            put_num(f, num(l, "ppl"));
            put_num(f, num(l, "bpb"));
            for (size_t k = 0; k < N_CI; k++) {
                const json_t *c = json_object_get(l, ci_fields[k]);
                put_num(f, num(c, "value"));
                put_num(f, num(c, "ci95_lo"));
                put_num(f, num(c, "ci95_hi"));
            }
            const json_t *d =
                json_object_get(json_object_get(l, "disparity"), "delta_bits_per_sentence");
            const json_t *dv = json_object_get(d, "difference_vs_reference");
            put_num(f, num(d, "value"));
            put_num(f, num(d, "ci95_lo"));
            put_num(f, num(d, "ci95_hi"));
            fputs(d ? (json_is_true(json_object_get(d, "unstable")) ? ",true" : ",false") : ",", f);
            put_num(f, num(dv, "value"));
            put_num(f, num(dv, "ci95_lo"));
            put_num(f, num(dv, "ci95_hi"));
            put_num(f, num(l, "kld_p50"));
            put_num(f, num(l, "kld_p90"));
            put_num(f, num(l, "kld_p99"));
            fputc('\n', f);
        }
    }
    return pq_out_close(f, tmp, path, err);
}

typedef struct row {
    const json_t *l;
    double d;
} row;

static int by_delta_desc(const void *a, const void *b)
{
    double x = ((const row *)a)->d, y = ((const row *)b)->d;
    return (x < y) - (x > y);
}

/* One language's row of a spec's table, as report.md and tables.tex print it: language,
 * Δ bits/sentence [95% CI], ΔBPB, KLD, top-1, disparity. True when the disparity is unstable. */
enum { N_COLS = 6 };
static bool lang_cells(const json_t *l, char c[N_COLS][64])
{
    const json_t *d = json_object_get(l, "delta_bits_per_sentence");
    const json_t *disp =
        json_object_get(json_object_get(l, "disparity"), "delta_bits_per_sentence");
    bool unst = json_is_true(json_object_get(disp, "unstable"));
    snprintf(c[0], 64, "%s", str(l, "lang"));
    snprintf(c[1], 64, "%.3f [%.3f, %.3f]", num(d, "value"), num(d, "ci95_lo"), num(d, "ci95_hi"));
    snprintf(c[2], 64, "%.5f", num(json_object_get(l, "delta_bpb"), "value"));
    snprintf(c[3], 64, "%.5f", num(json_object_get(l, "kld"), "value"));
    snprintf(c[4], 64, "%.4f", num(json_object_get(l, "top1_agree"), "value"));
    snprintf(c[5], 64, "n/a");
    if (disp && !unst)
        snprintf(c[5], 64, "%.2f [%.2f, %.2f]", num(disp, "value"), num(disp, "ci95_lo"),
                 num(disp, "ci95_hi"));
    else if (disp)
        snprintf(c[5], 64, "unstable");
    return unst;
}

static void tex_text(FILE *f, const char *s)
{
    for (; *s; s++)
        if (strchr("_&%$#{}", *s))
            fprintf(f, "\\%c", *s);
        else if (*s == '~' || *s == '^')
            fprintf(f, "\\text%s{}", *s == '~' ? "asciitilde" : "asciicircum");
        else
            fputc(*s, f);
}

/* tables.tex: report.md's tables as LaTeX (booktabs), one table per spec, languages by loss. */
static int write_tex(const char *path, const json_t *r, polyq_err *err)
{
    char *tmp;
    FILE *f = pq_out_open(path, &tmp, err);
    if (!f)
        return err->code;
    fprintf(f, "%% polyq report: %s; needs \\usepackage{booktabs}\n",
            str(json_object_get(r, "model"), "id"));
    size_t qi;
    json_t *q;
    const char *ref = str(r, "reference_language");
    json_array_foreach(json_object_get(r, "quantized"), qi, q)
    {
        const json_t *langs = json_object_get(q, "languages");
        size_t n = json_array_size(langs);
        row *rows = calloc(n ? n : 1, sizeof *rows);
        if (!rows) {
            fclose(f);
            remove(tmp);
            free(tmp);
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            rows[i].l = json_array_get(langs, i);
            rows[i].d = num(json_object_get(rows[i].l, "delta_bits_per_sentence"), "value");
        }
        qsort(rows, n, sizeof *rows, by_delta_desc);
        fputs("\n\\begin{table}\n\\centering\n\\begin{tabular}{lrrrrr}\n\\toprule\n"
              "Language & $\\Delta$ bits/sentence [95\\% CI] & $\\Delta$BPB & KLD & top-1 & "
              "disparity \\\\\n\\midrule\n",
              f);
        for (size_t i = 0; i < n; i++) {
            char c[N_COLS][64];
            lang_cells(rows[i].l, c);
            for (int k = 0; k < N_COLS; k++) {
                if (k)
                    fputs(" & ", f);
                tex_text(f, c[k]);
            }
            fputs(" \\\\\n", f);
        }
        fputs("\\bottomrule\n\\end{tabular}\n\\caption{", f);
        tex_text(f, str(q, "spec"));
        fprintf(f, " (");
        tex_text(f, str(q, "method"));
        fprintf(f,
                ", %.3f bits/weight): information lost per parallel sentence by language, with "
                "95\\%% paired-bootstrap intervals; disparity: the ratio to ",
                num(q, "bits_per_weight"));
        tex_text(f, *ref ? ref : "the reference");
        fputs(" on the same basis (unstable when the reference's own interval includes 0).}\n"
              "\\end{table}\n",
              f);
        free(rows);
    }
    return pq_out_close(f, tmp, path, err);
}

static int write_md(const char *path, const json_t *r, const pq_figures *figs, polyq_err *err)
{
    char *tmp;
    FILE *f = pq_out_open(path, &tmp, err);
    if (!f)
        return err->code;
    const json_t *m = json_object_get(r, "model"), *data = json_object_get(r, "data");
    const char *ref = str(r, "reference_language");
    fprintf(f, "# polyq report: %s\n\n", str(m, "id"));
    fprintf(
        f,
        "Model `%s` (%s, weights %s), %s %s, %lld languages; polyq %s, seed %lld, %lld bootstrap "
        "resamples; reference language %s. Scoring: %s, unit: %s.\n\n",
        str(m, "path"), str(m, "architecture"), str(m, "dtype"), str(data, "dataset"),
        str(data, "split"), pq_rj_n_languages(data), str(r, "version"), (long long)num(r, "seed"),
        (long long)num(r, "bootstrap_resamples"), *ref ? ref : "(none)", str(m, "scoring"),
        *str(r, "scoring_unit") ? str(r, "scoring_unit") : "sentence");
    size_t qi, n_spec = json_array_size(json_object_get(r, "quantized"));
    json_t *q;
    if (figs->n >= n_spec + 2)
        fprintf(
            f,
            "![%s](%s.png)\n\n![%s](%s.png)\n\nEach figure is also in SVG (`%s.svg`, `%s.svg`); "
            "`report.html` has them with sortable tables.\n\n",
            figs->v[n_spec].title, figs->v[n_spec].stem, figs->v[n_spec + 1].title,
            figs->v[n_spec + 1].stem, figs->v[n_spec].stem, figs->v[n_spec + 1].stem);
    json_array_foreach(json_object_get(r, "quantized"), qi, q)
    {
        const json_t *langs = json_object_get(q, "languages");
        size_t n = json_array_size(langs);
        row *rows = calloc(n ? n : 1, sizeof *rows);
        if (!rows) {
            fclose(f);
            remove(tmp);
            free(tmp);
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            rows[i].l = json_array_get(langs, i);
            rows[i].d = num(json_object_get(rows[i].l, "delta_bits_per_sentence"), "value");
        }
        qsort(rows, n, sizeof *rows, by_delta_desc);
        fprintf(f, "## %s (%s, %.3f bits/weight)\n\n", str(q, "spec"), str(q, "method"),
                num(q, "bits_per_weight"));
        if (figs->n == 2 * n_spec + 2) /* many languages: the three-column form, a page high */
            fprintf(f, "![%s](%s.png)\n\nOne column, every language on its row: `%s.svg`.\n\n",
                    figs->v[n_spec + 2 + qi].title, figs->v[n_spec + 2 + qi].stem,
                    figs->v[qi].stem);
        else if (qi < figs->n)
            fprintf(f, "![%s](%s.png)\n\n", figs->v[qi].title, figs->v[qi].stem);
        fprintf(f, "| language | Δ bits/sentence [95%% CI] | ΔBPB | KLD | top-1 | disparity "
                   "(bits/sentence) |\n"
                   "|---|---|---|---|---|---|\n");
        int significant = 0, unstable = 0;
        for (size_t i = 0; i < n; i++) {
            const json_t *l = rows[i].l, *d = json_object_get(l, "delta_bits_per_sentence");
            char c[N_COLS][64];
            bool unst = lang_cells(l, c);
            significant += num(d, "ci95_lo") > 0;
            unstable += unst;
            fputc('|', f);
            for (int k = 0; k < N_COLS; k++)
                fprintf(f, " %s |", c[k]);
            fputc('\n', f);
        }
        if (n) {
            const json_t *w = rows[0].l, *d = json_object_get(w, "delta_bits_per_sentence");
            if (num(d, "value") > 0) /* the words follow the sign: a gain is never a loss */
                fprintf(f,
                        "\n%s loses the most information: %.3f bits per sentence [%.3f, %.3f] "
                        "more than in full precision.",
                        str(w, "lang"), num(d, "value"), num(d, "ci95_lo"), num(d, "ci95_hi"));
            else
                fprintf(f,
                        "\nNo language loses information on average; the least gain is in %s: "
                        "%.3f bits per sentence [%.3f, %.3f].",
                        str(w, "lang"), num(d, "value"), num(d, "ci95_lo"), num(d, "ci95_hi"));
            fprintf(f,
                    " In %d of %zu languages the loss is significant (its interval lies "
                    "above 0).",
                    significant, n);
            if (unstable)
                fprintf(f,
                        " Disparity ratios against %s are unstable (its own degradation is not "
                        "clearly a loss: the interval includes 0, or it is a gain): compare the "
                        "differences in the CSV instead.",
                        *ref ? ref : "the reference");
            const json_t *across = json_object_get(q, "across_languages");
            const json_t *rho = json_object_get(across, "spearman_with_delta_bits_per_sentence");
            const char *best = NULL;
            double br = 0;
            const char *key;
            json_t *v;
            json_object_foreach((json_t *)rho, key,
                                v) if (json_is_number(v) &&
                                       (!best || fabs(json_number_value(v)) > fabs(br)))
            {
                best = key;
                br = json_number_value(v);
            }
            if (best && n >= 3)
                fprintf(f,
                        " Across the %zu languages the loss follows %s most closely (Spearman ρ = "
                        "%.2f, %s%s).",
                        n, best, br,
                        fabs(br) >= 0.7   ? "strong"
                        : fabs(br) >= 0.4 ? "moderate"
                                          : "weak",
                        n < 10 ? "; few languages, so read it with care" : "");
            if (json_is_number(json_object_get(across, "worst_ratio")))
                fprintf(f, " Worst/best ratio %.2f (%s / %s, on Δ bits/sentence)%s.",
                        num(across, "worst_ratio"), str(across, "worst_lang"),
                        str(across, "best_lang"),
                        json_is_true(json_object_get(across, "worst_ratio_unstable"))
                            ? ", unstable: the interval of its denominator includes 0"
                            : "");
            fputs("\n\n", f);
        }
        free(rows);
    }
    return pq_out_close(f, tmp, path, err);
}

int pq_report_export(const char *results, const char *out_dir, bool latex, polyq_err *err)
{
    json_t *r = NULL;
    int rc = pq_json_load_reals(results, 1u << 30, &r, err);
    if (rc)
        return rc;
    const char *sw = str(r, "software"), *ver = str(r, "version");
    if (strcmp(sw, "polyq") || !json_is_array(json_object_get(r, "quantized")) ||
        !json_is_array(json_object_get(r, "full_precision")))
        rc = pq_fail(err, POLYQ_FORMAT, "%s: not a polyq results file", results);
    else if (strncmp(ver, POLYQ_VERSION, strcspn(POLYQ_VERSION, ".")) ||
             ver[strcspn(POLYQ_VERSION, ".")] != '.')
        rc = pq_fail(err, POLYQ_UNSUPPORTED,
                     "%s: written by polyq %s; this is polyq %s (a different major version)",
                     results, ver, POLYQ_VERSION);
    char *csv = NULL, *md = NULL;
    if (!rc && !(rc = pq_mkdirs(out_dir, err))) {
        csv = pq_path_join(out_dir, "results.csv");
        md = pq_path_join(out_dir, "report.md");
        if (!csv || !md)
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    if (!rc)
        rc = pq_report_csv(csv, r, err);
    pq_figures figs = {0};
    if (!rc)
        rc = pq_report_figures(r, results, out_dir, &figs, err);
    if (!rc)
        rc = write_md(md, r, &figs, err);
    if (!rc)
        rc = pq_report_html(r, &figs, out_dir, err);
    char *tex = !rc && latex ? pq_path_join(out_dir, "tables.tex") : NULL;
    if (!rc && latex)
        rc = tex ? write_tex(tex, r, err) : pq_fail(err, POLYQ_NOMEM, "out of memory");
    free(tex);
    pq_figures_free(&figs);
    free(csv);
    free(md);
    json_decref(r);
    return rc;
}
