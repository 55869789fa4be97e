/* report.html: one self-contained page per results file — provenance, a summary over the
 * specs, the figures (SVG inlined as data: URIs) and one sortable table per spec. No network:
 * styles and the sorting script are in the page. Sorting: click a column header, or open the
 * page as report.html#sort=<table>:<column>:<asc|desc> (tables t0, t1, … and columns from 0).
 * The script records any error in #errors and marks <html data-ready="1"> when it is set up. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "report/html.h"
#include "report/report.h"

#define num pq_rj_num

#define str pq_rj_str

static void esc(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
                fputc(*s, f);
        }
}

static void base64(FILE *f, const char *s, size_t n)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        fputc(A[v >> 18 & 63], f);
        fputc(A[v >> 12 & 63], f);
        fputc(i + 1 < n ? A[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? A[v & 63] : '=', f);
    }
}

/* a numeric cell: data-v carries the value the column sorts by; text shows it with its interval */
static void cell_ci(FILE *f, const json_t *c, const char *fmt)
{
    double v = num(c, "value"), lo = num(c, "ci95_lo"), hi = num(c, "ci95_hi");
    if (!isfinite(v)) {
        fputs("<td class=\"n\" data-v=\"\">n/a</td>", f);
        return;
    }
    char a[48], b[48], x[48];
    snprintf(x, sizeof x, fmt, v);
    snprintf(a, sizeof a, fmt, lo);
    snprintf(b, sizeof b, fmt, hi);
    const char *cls = lo > 0 ? " loss" : hi < 0 ? " gain" : "";
    fprintf(f, "<td class=\"n%s\" data-v=\"%.17g\">%s <small>[%s, %s]</small></td>", cls, v, x, a,
            b);
}

static void cell_num(FILE *f, double v, const char *fmt)
{
    if (!isfinite(v)) {
        fputs("<td class=\"n\" data-v=\"\">n/a</td>", f);
        return;
    }
    char x[48];
    snprintf(x, sizeof x, fmt, v);
    fprintf(f, "<td class=\"n\" data-v=\"%.17g\">%s</td>", v, x);
}

#define fp_of pq_rj_fp_lang

static void figure(FILE *f, const pq_figure *x)
{
    if (!x || !x->svg)
        return;
    fputs("<figure><img alt=\"", f);
    esc(f, x->title);
    fputs("\" src=\"data:image/svg+xml;base64,", f);
    base64(f, x->svg, strlen(x->svg));
    fputs("\"><figcaption>", f);
    esc(f, x->title);
    fprintf(f, " (<a href=\"%s.svg\">SVG</a>, <a href=\"%s.png\">PNG</a>)</figcaption></figure>\n",
            x->stem, x->stem);
}

static const char STYLE[] =
    "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em "
    "auto;max-width:1100px;color:#222;padding:0 1em}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}"
    "p.meta{color:#555;font-size:.9em}table{border-collapse:collapse;font-size:.85em;margin:1em 0}"
    "th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}th{cursor:pointer;user-select:none;background:#f6f6f6;"
    "position:sticky;top:0}"
    "th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' "
    "\\25BC'}"
    "td.loss{color:#b34700}td.gain{color:#005a8c}small{color:#777}figure{margin:1.5em 0}"
    "figure img{max-width:100%;height:auto;border:1px solid "
    "#eee}figcaption{font-size:.85em;color:#555}"
    "#errors:empty{display:none}#errors{color:#a00;border:1px solid #a00;padding:.5em}";

/* Column headers get aria-sort; rows are reordered in the table body. Numbers sort by data-v,
 * empty (n/a) values last. */
static const char SCRIPT[] =
    "(function(){\n"
    "var errs=document.getElementById('errors');\n"
    "window.addEventListener('error',function(e){errs.textContent+=String(e.message)+'\\n';"
    "document.documentElement.setAttribute('data-errors','1');});\n"
    "function key(td,num){if(!num)return td.textContent;var v=td.getAttribute('data-v');"
    "return v===''||v===null?null:parseFloat(v);}\n"
    "function sortBy(table,col,dir){var "
    "ths=table.tHead.rows[0].cells,num=ths[col].getAttribute('data-type')==='num';\n"
    " for(var i=0;i<ths.length;i++)ths[i].removeAttribute('aria-sort');\n"
    " ths[col].setAttribute('aria-sort',dir>0?'ascending':'descending');\n"
    " var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);\n"
    " rows.sort(function(a,b){var x=key(a.cells[col],num),y=key(b.cells[col],num);\n"
    "  if(x===null||y===null)return (x===null)-(y===null);\n"
    "  return num?(x-y)*dir:x.localeCompare(y)*dir;});\n"
    " rows.forEach(function(r){body.appendChild(r);});}\n"
    "var tables=document.querySelectorAll('table.sortable');\n"
    "Array.prototype.forEach.call(tables,function(t){Array.prototype.forEach.call(t.tHead.rows[0]."
    "cells,"
    "function(th,i){th.addEventListener('click',function(){sortBy(t,i,th.getAttribute('aria-sort')="
    "=='descending'?1:-1);});});});\n"
    "var m=/^#sort=([A-Za-z0-9]+):([0-9]+):(asc|desc)$/.exec(location.hash);\n"
    "if(m){var "
    "t=document.getElementById(m[1]);if(t&&+m[2]<t.tHead.rows[0].cells.length)sortBy(t,+m[2],m[3]=="
    "='asc'?1:-1);"
    "else throw new Error('no table column '+m[1]+':'+m[2]);}\n"
    "document.documentElement.setAttribute('data-ready','1');\n"
    "})();\n";

int pq_report_html(const json_t *r, const pq_figures *figs, const char *dir, polyq_err *err)
{
    char *path = pq_path_join(dir, "report.html");
    if (!path)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    char *tmp;
    FILE *f = pq_out_open(path, &tmp, err); /* written whole, then renamed over path */
    if (!f) {
        free(path);
        return err->code;
    }
    const json_t *m = json_object_get(r, "model"), *data = json_object_get(r, "data"),
                 *fp = json_object_get(r, "full_precision"), *qa = json_object_get(r, "quantized");
    const char *ref = str(r, "reference_language");
    size_t n_spec = json_array_size(qa);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>polyq "
          "report: ",
          f);
    esc(f, str(m, "id"));
    fprintf(f,
            "</title>\n<style>%s</style>\n</head>\n<body>\n<div id=\"errors\"></div>\n<h1>polyq "
            "report: ",
            STYLE);
    esc(f, str(m, "id"));
    fputs("</h1>\n<p class=\"meta\">", f);
    char line[1024];
    snprintf(line, sizeof line,
             "Model %s (%s, weights %s, %.0f parameters). Data: %s %s, %lld languages. "
             "polyq %s, seed %lld, %lld bootstrap resamples, reference language %s. Scoring: %s. "
             "Written %s.",
             str(m, "path"), str(m, "architecture"), str(m, "dtype"), num(m, "n_params"),
             str(data, "dataset"), str(data, "split"), pq_rj_n_languages(data), str(r, "version"),
             (long long)num(r, "seed"), (long long)num(r, "bootstrap_resamples"),
             *ref ? ref : "(none)", str(m, "scoring"), str(r, "created"));
    esc(f, line);
    fputs("</p>\n<p>Numbers are information lost to quantization per parallel sentence: Δ "
          "bits/sentence = "
          "(NLL<sub>q</sub> − NLL<sub>fp</sub>) / ln 2, summed over a sentence's tokens and "
          "averaged over sentences, "
          "which compares languages on the same content whatever their tokenizer. Brackets hold "
          "95% paired-bootstrap "
          "intervals; orange: the interval lies above 0 (a loss), blue: below 0. A disparity ratio "
          "whose reference degradation is not clearly a loss (its interval includes 0, or it is "
          "a gain) is shown as unstable.</p>\n",
          f);
    /* summary over the specs */
    fputs(
        "<h2>Summary</h2>\n<table id=\"summary\" "
        "class=\"sortable\"><thead><tr><th>spec</th><th>method</th>"
        "<th data-type=\"num\">bits/weight</th><th>worst language</th><th data-type=\"num\">worst: "
        "Δ bits/sentence</th>"
        "<th data-type=\"num\">reference: Δ bits/sentence</th><th data-type=\"num\">worst/best</th>"
        "<th data-type=\"num\">CV</th><th data-type=\"num\">significant "
        "losses</th></tr></thead><tbody>\n",
        f);
    size_t qi;
    json_t *q;
    json_array_foreach(qa, qi, q)
    {
        const json_t *langs = json_object_get(q, "languages"), *worst = NULL, *refl = NULL,
                     *across = json_object_get(q, "across_languages");
        size_t li, sig = 0;
        json_t *l;
        json_array_foreach(langs, li, l)
        {
            double d = num(json_object_get(l, "delta_bits_per_sentence"), "value");
            if (!worst || d > num(json_object_get(worst, "delta_bits_per_sentence"), "value"))
                worst = l;
            if (!strcmp(str(l, "lang"), ref))
                refl = l;
            sig += num(json_object_get(l, "delta_bits_per_sentence"), "ci95_lo") > 0;
        }
        fputs("<tr><td>", f);
        esc(f, str(q, "spec"));
        fputs("</td><td>", f);
        esc(f, str(q, "method"));
        fputs("</td>", f);
        cell_num(f, num(q, "bits_per_weight"), "%.3f");
        fputs("<td>", f);
        esc(f, worst ? str(worst, "lang") : "");
        fputs("</td>", f);
        cell_ci(f, json_object_get(worst, "delta_bits_per_sentence"), "%.3f");
        cell_ci(f, json_object_get(refl, "delta_bits_per_sentence"), "%.3f");
        cell_num(f, num(across, "worst_ratio"), "%.2f");
        cell_num(f, num(across, "cv"), "%.2f");
        fprintf(f, "<td class=\"n\" data-v=\"%zu\">%zu of %zu</td></tr>\n", sig, sig,
                json_array_size(langs));
    }
    fputs("</tbody></table>\n", f);
    if (figs->n >= n_spec + 2) {
        figure(f, &figs->v[n_spec]);
        figure(f, &figs->v[n_spec + 1]);
    }
    json_array_foreach(qa, qi, q)
    {
        fputs("<h2>", f);
        esc(f, str(q, "spec"));
        fprintf(f, " <small>(%s, %.3f bits/weight)</small></h2>\n", str(q, "method"),
                num(q, "bits_per_weight"));
        if (*str(q, "description")) {
            fputs("<p class=\"meta\">", f);
            esc(f, str(q, "description"));
            fputs("</p>\n", f);
        }
        if (figs->n == 2 * n_spec + 2) /* many languages: the three-column form */
            figure(f, &figs->v[n_spec + 2 + qi]);
        else if (qi < figs->n && figs->n == n_spec + 2)
            figure(f, &figs->v[qi]);
        fprintf(
            f,
            "<table id=\"t%zu\" class=\"sortable\"><thead><tr><th>language</th><th>script</th>"
            "<th data-type=\"num\">tokens/byte</th><th data-type=\"num\">BPB fp</th>"
            "<th data-type=\"num\">Δ bits/sentence</th><th data-type=\"num\">ΔBPB</th>"
            "<th data-type=\"num\">ln(PPL<sub>q</sub>/PPL<sub>fp</sub>)</th><th "
            "data-type=\"num\">KLD</th>"
            "<th data-type=\"num\">top-1 agreement</th><th data-type=\"num\">disparity vs %s</th>"
            "</tr></thead><tbody>\n",
            qi, *ref ? ref : "reference");
        size_t li;
        json_t *l;
        json_array_foreach(json_object_get(q, "languages"), li, l)
        {
            const json_t *base = fp_of(fp, str(l, "lang"));
            const json_t *disp =
                json_object_get(json_object_get(l, "disparity"), "delta_bits_per_sentence");
            bool is_ref = !strcmp(str(l, "lang"), ref);
            fprintf(f, "<tr><td>%s", is_ref ? "<b>" : "");
            esc(f, str(l, "lang"));
            fprintf(f, "%s</td><td>", is_ref ? "</b>" : "");
            esc(f, str(base, "script"));
            fputs("</td>", f);
            cell_num(f, num(base, "fertility_bytes"), "%.3f");
            cell_num(f, num(base, "bpb"), "%.3f");
            cell_ci(f, json_object_get(l, "delta_bits_per_sentence"), "%.3f");
            cell_ci(f, json_object_get(l, "delta_bpb"), "%.5f");
            cell_ci(f, json_object_get(l, "delta_nll_per_token"), "%.5f");
            cell_ci(f, json_object_get(l, "kld"), "%.5f");
            cell_ci(f, json_object_get(l, "top1_agree"), "%.4f");
            if (disp && json_is_true(json_object_get(disp, "unstable")))
                fputs("<td class=\"n\" data-v=\"\">unstable</td>", f);
            else
                cell_ci(f, disp, "%.2f");
            fputs("</tr>\n", f);
        }
        fputs("</tbody></table>\n", f);
    }
    fprintf(f,
            "<p class=\"meta\">Written by polyq %s. Sort a table by clicking a column header.</p>\n"
            "<script>\n%s</script>\n</body>\n</html>\n",
            POLYQ_VERSION, SCRIPT);
    int rc = pq_out_close(f, tmp, path, err);
    free(path);
    return rc;
}
