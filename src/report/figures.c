/* Figures of a results file, drawn with cairo, each written as SVG and PNG from one drawing
 * routine:
 *   degradation-<spec>.svg/.png  per-language Δ bits/sentence with its 95% interval, sorted
 *   heatmap.svg/.png             languages × specs, Δ bits/sentence on a diverging scale
 *   fertility.svg/.png           Δ bits/sentence against tokens per byte, labelled languages
 * Lines, bars and points are cairo paths in both files. Text is rendered by cairo in the PNG;
 * in the SVG it is written as <text> elements at the same places (measured with the same
 * font), so the labels stay text that can be searched, selected and edited, as
 * matplotlib's svg.fonttype "none" does. */
#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "eval/metrics.h"
#include "report/figures.h"
#include "report/report.h"

#define FONT "DejaVu Sans"
#define MAX_LANGS 2000
#define PNG_SCALE 2.0
#define PAPER_LANGS 60 /* more languages than this: bars also in three columns */

/* ------------------------------------------------------------------ drawing surface */

typedef struct buf {
    char *p;
    size_t n, cap;
    bool oom;
} buf;

static void buf_put(buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        buf_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_put(b, big, (size_t)n);
    free(big);
}

static void buf_xml(buf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '<'   ? "&lt;"
                        : *s == '>' ? "&gt;"
                        : *s == '&' ? "&amp;"
                        : *s == '"' ? "&quot;"
                                    : NULL;
        if (e)
            buf_put(b, e, strlen(e));
        else if ((unsigned char)*s >= 0x20 || *s == '\t')
            buf_put(b, s, 1);
    }
}

static cairo_status_t to_buf(void *closure, const unsigned char *data, unsigned int n)
{
    buf_put(closure, (const char *)data, n);
    return ((buf *)closure)->oom ? CAIRO_STATUS_NO_MEMORY : CAIRO_STATUS_SUCCESS;
}

typedef struct fig {
    cairo_t *cr;
    bool svg; /* text goes to svg_text instead of through cairo */
    buf text; /* the SVG's <text> elements */
} fig;

typedef struct rgb {
    double r, g, b;
} rgb;

static const rgb INK = {0.13, 0.13, 0.13}, GRID = {0.88, 0.88, 0.88}, MUTED = {0.45, 0.45, 0.45};
/* Okabe & Ito's colour-blind-safe palette, one colour per spec */
static const rgb SPEC_COLOUR[] = {
    {0.000, 0.447, 0.698}, {0.835, 0.369, 0.000}, {0.000, 0.620, 0.451}, {0.800, 0.475, 0.655},
    {0.902, 0.624, 0.000}, {0.337, 0.706, 0.914}, {0.941, 0.894, 0.259}, {0.000, 0.000, 0.000}};
static const rgb LOSS = {0.835, 0.369, 0.000}, NOT_SIG = {0.62, 0.62, 0.62},
                 GAIN = {0.000, 0.447, 0.698};

static void colour(fig *f, rgb c)
{
    cairo_set_source_rgb(f->cr, c.r, c.g, c.b);
}

static void font(fig *f, double size, bool bold)
{
    cairo_select_font_face(f->cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(f->cr, size);
}

static double text_width(fig *f, const char *s, double size, bool bold)
{
    cairo_text_extents_t te;
    font(f, size, bold);
    cairo_text_extents(f->cr, s, &te);
    return te.x_advance;
}

/* Text with its baseline at y; anchor 0 = starts at x, 0.5 = centred, 1 = ends at x; rotated
 * by deg (counter-clockwise) about (x, y). */
static void text(fig *f, double x, double y, const char *s, double size, bool bold, double anchor,
                 double deg, rgb c)
{
    if (f->svg) {
        buf_printf(&f->text,
                   "<text x=\"%.2f\" y=\"%.2f\" font-family=\"DejaVu Sans, Verdana, sans-serif\" "
                   "font-size=\"%.1f\"%s fill=\"#%02x%02x%02x\" text-anchor=\"%s\"",
                   x, y, size, bold ? " font-weight=\"bold\"" : "", (int)lround(c.r * 255),
                   (int)lround(c.g * 255), (int)lround(c.b * 255),
                   anchor == 0   ? "start"
                   : anchor == 1 ? "end"
                                 : "middle");
        if (deg != 0)
            buf_printf(&f->text, " transform=\"rotate(%.1f %.2f %.2f)\"", -deg, x, y);
        buf_put(&f->text, ">", 1);
        buf_xml(&f->text, s);
        buf_put(&f->text, "</text>\n", 8);
        return;
    }
    double w = text_width(f, s, size, bold);
    cairo_save(f->cr);
    cairo_translate(f->cr, x, y);
    cairo_rotate(f->cr, -deg * M_PI / 180);
    cairo_move_to(f->cr, -anchor * w, 0);
    colour(f, c);
    cairo_show_text(f->cr, s);
    cairo_restore(f->cr);
}

static void line(fig *f, double x0, double y0, double x1, double y1, double width, rgb c)
{
    cairo_move_to(f->cr, x0, y0);
    cairo_line_to(f->cr, x1, y1);
    cairo_set_line_width(f->cr, width);
    colour(f, c);
    cairo_stroke(f->cr);
}

static void rect(fig *f, double x, double y, double w, double h, rgb c)
{
    cairo_rectangle(f->cr, x, y, w, h);
    colour(f, c);
    cairo_fill(f->cr);
}

/* ------------------------------------------------------------------ data */

typedef struct fig_data {
    const char *model, *ref, *basis_note;
    size_t n_lang, n_q;
    const char **lang, **script;
    double *fert; /* tokens per byte, full precision */
    const char **spec;
    double *bpw, *rho;   /* per spec: bits/weight, Spearman(Δ, fertility) */
    double *d, *lo, *hi; /* [q * n_lang + l]: Δ bits/sentence and its interval */
    int columns;         /* the bars in this many columns (the paper-sized form); 0 = 1 */
} fig_data;

#define num pq_rj_num

#define str pq_rj_str

static void data_free(fig_data *g)
{
    free(g->lang);
    free(g->script);
    free(g->fert);
    free(g->spec);
    free(g->bpw);
    free(g->rho);
    free(g->d);
    free(g->lo);
    free(g->hi);
}

/* The model as a title names it: a hub id as it is, a folder or file given by its path by its
 * last component ("tests/fixtures/gpt2-tiny" -> "gpt2-tiny"). */
static const char *model_label(const json_t *model)
{
    const char *id = str(model, "id"), *path = str(model, "path");
    if (strcmp(id, path) || !strchr(id, '/')) /* a hub id (resolved elsewhere), or a bare name */
        return id;
    size_t n = strlen(id);
    while (n > 1 && id[n - 1] == '/')
        n--;
    const char *base = id + n;
    while (base > id && base[-1] != '/')
        base--;
    return base; /* the trailing slashes, if any, stay: titles of "dir/" are rare */
}

static int data_read(fig_data *g, const json_t *r, const char *path, polyq_err *err)
{
    memset(g, 0, sizeof *g);
    const json_t *fp = json_object_get(r, "full_precision"), *qa = json_object_get(r, "quantized");
    g->model = model_label(json_object_get(r, "model"));
    g->ref = str(r, "reference_language");
    g->n_lang = json_array_size(fp);
    g->n_q = json_array_size(qa);
    if (g->n_lang > MAX_LANGS)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: %zu languages; figures are drawn for at most %d", path, g->n_lang,
                       MAX_LANGS);
    if (g->n_q > 64)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: %zu quantization specs; figures are drawn for at most 64", path,
                       g->n_q);
    size_t nl = g->n_lang ? g->n_lang : 1, nq = g->n_q ? g->n_q : 1, nc = nl * nq;
    g->lang = calloc(nl, sizeof *g->lang);
    g->script = calloc(nl, sizeof *g->script);
    g->fert = calloc(nl, sizeof *g->fert);
    g->spec = calloc(nq, sizeof *g->spec);
    g->bpw = calloc(nq, sizeof *g->bpw);
    g->rho = calloc(nq, sizeof *g->rho);
    g->d = calloc(nc, sizeof *g->d);
    g->lo = calloc(nc, sizeof *g->lo);
    g->hi = calloc(nc, sizeof *g->hi);
    if (!g->lang || !g->script || !g->fert || !g->spec || !g->bpw || !g->rho || !g->d || !g->lo ||
        !g->hi)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (size_t l = 0; l < g->n_lang; l++) {
        const json_t *e = json_array_get(fp, l);
        g->lang[l] = str(e, "lang");
        g->script[l] = str(e, "script");
        g->fert[l] = num(e, "fertility_bytes");
    }
    for (size_t q = 0; q < g->n_q; q++) {
        const json_t *s = json_array_get(qa, q), *langs = json_object_get(s, "languages");
        g->spec[q] = str(s, "spec");
        g->bpw[q] = num(s, "bits_per_weight");
        g->rho[q] = num(json_object_get(json_object_get(s, "across_languages"),
                                        "spearman_with_delta_bits_per_sentence"),
                        "fertility_bytes");
        for (size_t l = 0; l < g->n_lang; l++) {
            size_t i = q * g->n_lang + l;
            g->d[i] = g->lo[i] = g->hi[i] = NAN;
            size_t k;
            json_t *e;
            json_array_foreach(langs, k, e) if (!strcmp(str(e, "lang"), g->lang[l]))
            {
                const json_t *c = json_object_get(e, "delta_bits_per_sentence");
                g->d[i] = num(c, "value");
                g->lo[i] = num(c, "ci95_lo");
                g->hi[i] = num(c, "ci95_hi");
                break;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ axes */

/* Up to about `want` round tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k. */
static int ticks(double lo, double hi, int want, double *t, int max)
{
    double span = hi - lo;
    if (!(span > 0) || !isfinite(span))
        return 0;
    double raw = span / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
    int n = 0;
    for (double v = ceil(lo / step) * step; v <= hi + step * 1e-9 && n < max; v += step)
        t[n++] = fabs(v) < step * 1e-9 ? 0 : v;
    return n;
}

static void tick_label(char *out, size_t n, double v, double step)
{
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(out, n, "%.*f", dec > 6 ? 6 : dec, v);
    if (!strcmp(out, "-0"))
        snprintf(out, n, "0");
}

/* a range that holds the finite values of v (and 0), padded by 4% each side */
static void range_of(const double *v, size_t n, const double *v2, double *lo, double *hi)
{
    *lo = 0;
    *hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(v[i])) {
            *lo = fmin(*lo, v[i]);
            *hi = fmax(*hi, v[i]);
        }
        if (v2 && isfinite(v2[i])) {
            *lo = fmin(*lo, v2[i]);
            *hi = fmax(*hi, v2[i]);
        }
    }
    if (*hi - *lo <= 0) {
        *lo -= 1;
        *hi += 1;
    }
    double pad = (*hi - *lo) * 0.04;
    *lo -= pad;
    *hi += pad;
}

/* A language as a crowded figure labels it: its ISO 639-3 code alone ("hin_Deva" -> "hin"),
 * unless another language of the figure has the same code (zho_Hans, zho_Hant), which keep
 * the script. */
static const char *short_lang(const fig_data *g, size_t l, bool shorten, char *tmp, size_t n)
{
    const char *code = g->lang[l];
    size_t len = strcspn(code, "_");
    if (!shorten)
        return code;
    for (size_t k = 0; k < g->n_lang; k++)
        if (k != l && strcspn(g->lang[k], "_") == len && !strncmp(g->lang[k], code, len))
            return code;
    snprintf(tmp, n, "%.*s", (int)len, code);
    return tmp;
}

/* ------------------------------------------------------------------ figures */

typedef struct sorted {
    size_t l;
    double key;
} sorted;

static int by_key_desc(const void *a, const void *b)
{
    double x = ((const sorted *)a)->key, y = ((const sorted *)b)->key;
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return (x < y) - (x > y);
}

typedef void (*draw_fn)(fig *f, const fig_data *g, size_t q, double w, double h);

/* per-language bars of one spec, largest loss on top */
static double title_w(fig *m, const char *title)
{
    return text_width(m, title, 14, true) + 32;
}

static void bars_title(char *out, size_t n, const fig_data *g, size_t q)
{
    snprintf(out, n, "Information lost per sentence: %s, %s (%.2f bits/weight)", g->model,
             g->spec[q], g->bpw[q]);
}

static void size_bars(fig *m, const fig_data *g, size_t q, double *w, double *h)
{
    int cols = g->columns > 1 ? g->columns : 1;
    size_t per = (g->n_lang + (size_t)cols - 1) / (size_t)cols;
    double row = per > 60 ? 12 : 17;
    char title[512];
    bars_title(title, sizeof title, g, q);
    *w = fmax(cols > 1 ? 360.0 * cols + 40 : 760, title_w(m, title));
    *h = 86 + row * (double)per + 84;
}

static void draw_bars(fig *f, const fig_data *g, size_t q, double W, double H)
{
    size_t n = g->n_lang;
    int cols = g->columns > 1 ? g->columns : 1;
    size_t per = (n + (size_t)cols - 1) / (size_t)cols;
    double row = per > 60 ? 12 : 17, top = 86, label = 104, right = 24;
    double margin = cols > 1 ? 16 : 0, col_w = (W - margin - right) / cols,
           plot_w = col_w - label - (cols > 1 ? 14 : 0);
    sorted *s = calloc(n ? n : 1, sizeof *s);
    if (!s)
        return;
    for (size_t l = 0; l < n; l++)
        s[l] = (sorted){l, g->d[q * n + l]};
    qsort(s, n, sizeof *s, by_key_desc);
    double lo, hi; /* one scale for every column */
    range_of(g->lo + q * n, n, g->hi + q * n, &lo, &hi);
    rect(f, 0, 0, W, H, (rgb){1, 1, 1});
    char title[512];
    bars_title(title, sizeof title, g, q);
    text(f, 16, 26, title, 14, true, 0, 0, INK);
    text(f, 16, 46,
         cols > 1 ? "Δ bits per parallel sentence (quantized − full precision), 95% "
                    "paired-bootstrap interval; languages by loss, down each column in turn"
                  : "Δ bits per parallel sentence (quantized − full precision), mean over "
                    "sentences, 95% paired-bootstrap interval",
         10.5, false, 0, 0, MUTED);
    double t[32];
    int nt = ticks(lo, hi, cols > 1 ? 4 : 6, t, 32);
    double step = nt > 1 ? t[1] - t[0] : 1;
    for (int c = 0; c < cols; c++) {
        size_t first = (size_t)c * per, last = first + per < n ? first + per : n;
        double left = margin + label + col_w * c;
#define X(v) (left + ((v)-lo) / (hi - lo) * plot_w)
        double plot_bottom = top + row * (double)(last > first ? last - first : 0);
        for (int i = 0; i < nt; i++) {
            char lab[32];
            line(f, X(t[i]), top - 4, X(t[i]), plot_bottom, 0.6, GRID);
            tick_label(lab, sizeof lab, t[i], step);
            text(f, X(t[i]), plot_bottom + 16, lab, 10, false, 0.5, 0, INK);
        }
        for (size_t k = first; k < last; k++) {
            size_t l = s[k].l, i = q * n + l;
            double y = top + row * (double)(k - first), d = g->d[i], a = g->lo[i], b = g->hi[i];
            bool is_ref = !strcmp(g->lang[l], g->ref);
            text(f, left - 8, y + row * 0.5 + 3.5, g->lang[l], per > 60 ? 8.5 : 10, is_ref, 1, 0,
                 INK);
            if (!isfinite(d))
                continue;
            rgb co = a > 0 ? LOSS : b < 0 ? GAIN : NOT_SIG;
            double x0 = X(fmin(0, d)), x1 = X(fmax(0, d));
            rect(f, x0, y + row * 0.18, fmax(x1 - x0, 0.8), row * 0.64, co);
            if (isfinite(a) && isfinite(b)) {
                line(f, X(a), y + row * 0.5, X(b), y + row * 0.5, 1, INK);
                line(f, X(a), y + row * 0.3, X(a), y + row * 0.7, 1, INK);
                line(f, X(b), y + row * 0.3, X(b), y + row * 0.7, 1, INK);
            }
        }
        line(f, X(0), top - 4, X(0), plot_bottom, 1.2, INK);
        line(f, left, plot_bottom, left + plot_w, plot_bottom, 1, INK);
        text(f, left + plot_w / 2, plot_bottom + 36, "Δ bits per sentence", cols > 1 ? 10.5 : 12,
             false, 0.5, 0, INK);
#undef X
    }
    /* legend */
    double lx = margin + label, ly = H - 22;
    static const char *const names[3] = {"loss (interval above 0)", "interval includes 0",
                                         "gain (interval below 0)"};
    const rgb cs[3] = {LOSS, NOT_SIG, GAIN};
    for (int k = 0; k < 3; k++) {
        rect(f, lx, ly - 9, 14, 10, cs[k]);
        text(f, lx + 19, ly, names[k], 10, false, 0, 0, INK);
        lx += 19 + text_width(f, names[k], 10, false) + 22;
    }
    if (*g->ref)
        text(f, W - right, ly, "reference language in bold", 10, false, 1, 0, MUTED);
    free(s);
}

/* rows: languages by their mean Δ over the specs; columns: specs */
/* The heatmap's columns: wide enough for each spec's name, or, when the names are long (a
 * summary over models), narrow columns under names written upwards. */
typedef struct heat_layout {
    double col, top;
    bool vertical;
} heat_layout;

static heat_layout heat_layout_of(fig *f, const fig_data *g)
{
    double w = 0;
    for (size_t q = 0; q < g->n_q; q++)
        w = fmax(w, text_width(f, g->spec[q], 10, false));
    if (w <= 100)
        return (heat_layout){fmax(64, w + 12), 110, false};
    double bw = text_width(f, " · 00.00 b/w", 10, false); /* bits/weight after the name */
    return (heat_layout){44, 70 + w + bw + 16, true};
}

static void heat_title(char *out, size_t n, const fig_data *g)
{
    snprintf(out, n, "Information lost per sentence, by language and spec: %s", g->model);
}

static void size_heat(fig *m, const fig_data *g, size_t q, double *w, double *h)
{
    double row = g->n_lang > 60 ? 12 : 18;
    char title[512];
    heat_title(title, sizeof title, g);
    heat_layout hl = heat_layout_of(m, g);
    *w = fmax(fmax(560, 104 + hl.col * (double)g->n_q + 190), title_w(m, title));
    double rows = row * (double)g->n_lang, bar = fmin(240, fmax(120, rows)); /* the colour bar's */
    *h = hl.top + fmax(rows, bar + 80) + 40; /* under the bar: its key and the clipping note */
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static rgb diverging(double v, double m)
{
    /* blue (gain) - white - red (loss), ColorBrewer RdBu ends */
    const rgb neg = {0.129, 0.400, 0.675}, pos = {0.698, 0.094, 0.169};
    double t = m > 0 ? fmax(-1, fmin(1, v / m)) : 0;
    rgb e = t < 0 ? neg : pos;
    t = fabs(t);
    return (rgb){1 + (e.r - 1) * t, 1 + (e.g - 1) * t, 1 + (e.b - 1) * t};
}

/* The colour scale's end: the 95th percentile of |Δ| over the cells, so that one outlier does
 * not wash out the rest (cells beyond it are clipped to the end colour and marked); the
 * largest |Δ| when there are fewer than 20 cells. *max_abs receives the largest |Δ|. */
static double heat_scale(const fig_data *g, double *max_abs)
{
    size_t nc = g->n_lang * g->n_q, k = 0;
    float *v = malloc((nc ? nc : 1) * sizeof *v);
    *max_abs = 0;
    for (size_t i = 0; i < nc; i++)
        if (isfinite(g->d[i])) {
            *max_abs = fmax(*max_abs, fabs(g->d[i]));
            if (v)
                v[k++] = (float)fabs(g->d[i]);
        }
    double m = *max_abs;
    if (v && k >= 20) {
        qsort(v, k, sizeof *v, cmp_float);
        m = pq_percentile_sorted(v, k, 0.95);
    }
    free(v);
    return m > 0 ? m : *max_abs;
}

static void draw_heat(fig *f, const fig_data *g, size_t unused, double W, double H)
{
    size_t n = g->n_lang, nq = g->n_q;
    heat_layout hl = heat_layout_of(f, g);
    double row = n > 60 ? 12 : 18, top = hl.top, left = 104, col = hl.col;
    sorted *s = calloc(n ? n : 1, sizeof *s);
    if (!s)
        return;
    for (size_t l = 0; l < n; l++) {
        double sum = 0;
        int k = 0;
        for (size_t q = 0; q < nq; q++)
            if (isfinite(g->d[q * n + l])) {
                sum += g->d[q * n + l];
                k++;
            }
        s[l] = (sorted){l, k ? sum / k : NAN};
    }
    double max_abs, m = heat_scale(g, &max_abs);
    bool clipped = max_abs > m * (1 + 1e-9);
    qsort(s, n, sizeof *s, by_key_desc);
    rect(f, 0, 0, W, H, (rgb){1, 1, 1});
    char title[512];
    heat_title(title, sizeof title, g);
    text(f, 16, 26, title, 14, true, 0, 0, INK);
    text(f, 16, 46,
         "Δ bits per parallel sentence; rows by mean loss over the specs; • interval includes 0",
         10.5, false, 0, 0, MUTED);
    for (size_t q = 0; q < nq; q++) {
        char b[32];
        snprintf(b, sizeof b, "%.2f b/w", g->bpw[q]);
        if (hl.vertical) { /* name and bits/weight upwards from the top of the column */
            char lab[320];
            snprintf(lab, sizeof lab, "%s · %s", g->spec[q], b);
            text(f, left + col * ((double)q + 0.5) + 3.5, top - 8, lab, 10, false, 0, 90, INK);
        } else {
            text(f, left + col * ((double)q + 0.5), top - 24, g->spec[q], 10, false, 0.5, 0, INK);
            text(f, left + col * ((double)q + 0.5), top - 10, b, 9, false, 0.5, 0, MUTED);
        }
    }
    for (size_t k = 0; k < n; k++) {
        size_t l = s[k].l;
        double y = top + row * (double)k;
        text(f, left - 8, y + row * 0.5 + 3.5, g->lang[l], n > 60 ? 8.5 : 10,
             !strcmp(g->lang[l], g->ref), 1, 0, INK);
        for (size_t q = 0; q < nq; q++) {
            size_t i = q * n + l;
            double x = left + col * (double)q;
            if (!isfinite(g->d[i])) {
                rect(f, x, y, col, row, (rgb){0.95, 0.95, 0.95});
                continue;
            }
            rgb c = diverging(g->d[i], m);
            rect(f, x, y, col, row, c);
            bool dark = fabs(g->d[i]) > 0.6 * m, beyond = fabs(g->d[i]) > m * (1 + 1e-9);
            rgb ink = dark ? (rgb){1, 1, 1} : INK;
            if (beyond) { /* clipped: a corner triangle */
                cairo_move_to(f->cr, x + col, y);
                cairo_line_to(f->cr, x + col - 6, y);
                cairo_line_to(f->cr, x + col, y + 6);
                cairo_close_path(f->cr);
                colour(f, ink);
                cairo_fill(f->cr);
            }
            if (row >= 18) {
                char v[32]; /* as many decimals as fit the cell: 123, 12.3, 1.23 */
                double a = fabs(g->d[i]);
                snprintf(v, sizeof v, "%.*f%s",
                         a >= 99.95   ? 0
                         : a >= 9.995 ? 1
                                      : 2,
                         g->d[i], g->lo[i] <= 0 && g->hi[i] >= 0 ? " •" : "");
                if (!strncmp(v, "-0.00", 5) && !strpbrk(v + 5, "123456789"))
                    memmove(v, v + 1, strlen(v)); /* no "-0.00" */
                text(f, x + col / 2, y + row * 0.5 + 3.5, v, hl.vertical ? 8 : 9, false, 0.5, 0,
                     ink);
            } else if (g->lo[i] <= 0 && g->hi[i] >= 0) {
                cairo_arc(f->cr, x + col / 2, y + row / 2, 1.6, 0, 2 * M_PI);
                colour(f, ink);
                cairo_fill(f->cr);
            }
        }
    }
    /* colour bar */
    double bx = left + col * (double)nq + 36, by = top, bh = fmin(240, fmax(120, row * (double)n)),
           bw = 14;
    for (int k = 0; k < 100; k++) {
        double v = m * (1 - 2 * (k + 0.5) / 100);
        rect(f, bx, by + bh * k / 100, bw, bh / 100 + 0.3, diverging(v, m));
    }
    cairo_rectangle(f->cr, bx, by, bw, bh);
    cairo_set_line_width(f->cr, 0.6);
    colour(f, INK);
    cairo_stroke(f->cr);
    double t[16];
    int nt = ticks(-m, m, 4, t, 16);
    double step = nt > 1 ? t[1] - t[0] : 1;
    for (int k = 0; k < nt && m > 0; k++) {
        char lab[32];
        double y = by + bh * (m - t[k]) / (2 * m);
        line(f, bx + bw, y, bx + bw + 4, y, 0.8, INK);
        tick_label(lab, sizeof lab, t[k], step);
        text(f, bx + bw + 7, y + 3.5, lab, 9, false, 0, 0, INK);
    }
    text(f, bx - 8, by + bh / 2, "Δ bits per sentence", 10, false, 0.5, 90, INK);
    text(f, bx, by + bh + 16, "red: loss", 9, false, 0, 0, MUTED);
    text(f, bx, by + bh + 28, "blue: gain", 9, false, 0, 0, MUTED);
    if (clipped) {
        char lab[96];
        snprintf(lab, sizeof lab, "scale ends at ±%.3g", m);
        text(f, bx, by + bh + 44, lab, 9, false, 0, 0, MUTED);
        text(f, bx, by + bh + 56, "(95th percentile of |Δ|);", 9, false, 0, 0, MUTED);
        snprintf(lab, sizeof lab, "◥ beyond it (up to %.3g)", max_abs);
        text(f, bx, by + bh + 68, lab, 9, false, 0, 0, MUTED);
    }
    free(s);
}

/* Δ against fertility, every spec in its colour, languages labelled where there is room */
static void scatter_title(char *out, size_t n, const fig_data *g)
{
    snprintf(out, n, "Degradation against tokenizer fertility: %s", g->model);
}

/* the legend's label of spec q */
static void scatter_label(char *out, size_t n, const fig_data *g, size_t q)
{
    if (isfinite(g->rho[q]))
        snprintf(out, n, "%s (ρ = %.2f)", g->spec[q], g->rho[q]);
    else
        snprintf(out, n, "%s (ρ n/a)", g->spec[q]);
}

/* the room right of the plot: the widest legend line, and the note under it */
static double scatter_right(fig *f, const fig_data *g)
{
    double w = fmax(text_width(f, "spec (ρ with fertility)", 10, true),
                    text_width(f, "labels: ISO 639-3 codes (with the script", 9, false));
    for (size_t q = 0; q < g->n_q; q++) {
        char lab[160];
        scatter_label(lab, sizeof lab, g, q);
        w = fmax(w, 14 + text_width(f, lab, 10, false));
    }
    return 18 + w + 16;
}

static void size_scatter(fig *m, const fig_data *g, size_t q, double *w, double *h)
{
    char title[512];
    scatter_title(title, sizeof title, g);
    *w = fmax(fmax(820, 78 + 540 + scatter_right(m, g)), title_w(m, title));
    *h = fmax(560, 70 + 18 * ((double)g->n_q + 4) + 64);
}

typedef struct box {
    double x0, y0, x1, y1;
} box;

static bool overlaps(const box *b, const box *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b->x0 < v[i].x1 && v[i].x0 < b->x1 && b->y0 < v[i].y1 && v[i].y0 < b->y1)
            return true;
    return false;
}

static void draw_scatter(fig *f, const fig_data *g, size_t unused, double W, double H)
{
    size_t n = g->n_lang, nq = g->n_q, nc = n * nq;
    double top = 70, left = 78, right = scatter_right(f, g), bottom = 64, pw = W - left - right,
           ph = H - top - bottom;
    rect(f, 0, 0, W, H, (rgb){1, 1, 1});
    char title[512];
    scatter_title(title, sizeof title, g);
    text(f, 16, 26, title, 14, true, 0, 0, INK);
    text(f, 16, 46,
         "one point per language and spec; bars: 95% paired-bootstrap interval; "
         "ρ: Spearman correlation across languages",
         10.5, false, 0, 0, MUTED);
    double xlo = INFINITY, xhi = -INFINITY;
    for (size_t l = 0; l < n; l++)
        if (isfinite(g->fert[l])) {
            xlo = fmin(xlo, g->fert[l]);
            xhi = fmax(xhi, g->fert[l]);
        }
    if (!(xhi >= xlo)) {
        xlo = 0;
        xhi = 1;
    }
    double xpad = fmax((xhi - xlo) * 0.06, 0.01);
    xlo = fmax(0, xlo - xpad);
    xhi += xpad;
    double ylo, yhi;
    range_of(g->lo, nc, g->hi, &ylo, &yhi);
#define PX(v) (left + ((v)-xlo) / (xhi - xlo) * pw)
#define PY(v) (top + (yhi - (v)) / (yhi - ylo) * ph)
    double t[32];
    int nt = ticks(xlo, xhi, 7, t, 32);
    double step = nt > 1 ? t[1] - t[0] : 1;
    for (int i = 0; i < nt; i++) {
        char lab[32];
        line(f, PX(t[i]), top, PX(t[i]), top + ph, 0.6, GRID);
        tick_label(lab, sizeof lab, t[i], step);
        text(f, PX(t[i]), top + ph + 16, lab, 10, false, 0.5, 0, INK);
    }
    nt = ticks(ylo, yhi, 7, t, 32);
    step = nt > 1 ? t[1] - t[0] : 1;
    for (int i = 0; i < nt; i++) {
        char lab[32];
        line(f, left, PY(t[i]), left + pw, PY(t[i]), 0.6, GRID);
        tick_label(lab, sizeof lab, t[i], step);
        text(f, left - 6, PY(t[i]) + 3.5, lab, 10, false, 1, 0, INK);
    }
    line(f, left, PY(0), left + pw, PY(0), 1.2, INK);
    cairo_rectangle(f->cr, left, top, pw, ph);
    cairo_set_line_width(f->cr, 1);
    colour(f, INK);
    cairo_stroke(f->cr);
    text(f, left + pw / 2, H - 18, "tokenizer fertility (tokens per byte of text, full precision)",
         12, false, 0.5, 0, INK);
    text(f, 22, top + ph / 2, "Δ bits per sentence", 12, false, 0.5, 90, INK);
    box *placed = calloc(nc + 1, sizeof *placed);
    size_t n_placed = 0;
    bool shorten = n > 40;
    for (size_t q = 0; q < nq; q++) {
        rgb c = SPEC_COLOUR[q % 8];
        for (size_t l = 0; l < n; l++) {
            size_t i = q * n + l;
            if (!isfinite(g->d[i]) || !isfinite(g->fert[l]))
                continue;
            double x = PX(g->fert[l]);
            if (isfinite(g->lo[i]) && isfinite(g->hi[i]))
                line(f, x, PY(g->lo[i]), x, PY(g->hi[i]), 0.8,
                     (rgb){c.r * 0.6 + 0.4, c.g * 0.6 + 0.4, c.b * 0.6 + 0.4});
        }
    }
    for (size_t q = 0; q < nq; q++) { /* points over every interval; their boxes block labels */
        rgb c = SPEC_COLOUR[q % 8];
        for (size_t l = 0; l < n; l++) {
            size_t i = q * n + l;
            if (!isfinite(g->d[i]) || !isfinite(g->fert[l]))
                continue;
            double x = PX(g->fert[l]), y = PY(g->d[i]);
            cairo_arc(f->cr, x, y, 3.4, 0, 2 * M_PI);
            colour(f, c);
            cairo_fill_preserve(f->cr);
            cairo_set_line_width(f->cr, 0.6);
            colour(f, (rgb){1, 1, 1});
            cairo_stroke(f->cr);
            if (placed)
                placed[n_placed++] = (box){x - 3.4, y - 3.4, x + 3.4, y + 3.4};
        }
    }
    /* labels: the largest losses first, each where it overlaps nothing placed before */
    sorted *s = calloc(nc ? nc : 1, sizeof *s);
    box *lab_boxes = calloc(nc ? nc : 1, sizeof *lab_boxes);
    size_t n_lab = 0;
    bool *named = calloc(n ? n : 1, sizeof *named);
    for (size_t i = 0; s && i < nc; i++)
        s[i] = (sorted){i, fabs(g->d[i])};
    if (s)
        qsort(s, nc, sizeof *s, by_key_desc);
    for (size_t k = 0; s && lab_boxes && placed && named && k < nc; k++) {
        size_t i = s[k].l, l = i % n;
        if (!isfinite(g->d[i]) || !isfinite(g->fert[l]) || named[l])
            continue;
        char tmp[64];
        const char *name = short_lang(g, l, shorten, tmp, sizeof tmp);
        bool bold = !strcmp(g->lang[l], g->ref);
        double x = PX(g->fert[l]), y = PY(g->d[i]), w = text_width(f, name, 8.5, bold);
        const double dx[4] = {5, -5 - w, -w / 2, -w / 2}, dy[4] = {3, 3, -6, 12};
        for (int p = 0; p < 4; p++) {
            box b = {x + dx[p], y + dy[p] - 8, x + dx[p] + w, y + dy[p] + 1};
            if (b.x0 < left || b.x1 > left + pw || b.y0 < top || b.y1 > top + ph)
                continue;
            if (overlaps(&b, placed, n_placed) || overlaps(&b, lab_boxes, n_lab))
                continue;
            lab_boxes[n_lab++] = b;
            named[l] = true;
            text(f, b.x0, b.y1 - 1, name, 8.5, bold, 0, 0, MUTED);
            break;
        }
    }
    /* legend: spec, colour, Spearman rho */
    double lx = left + pw + 18, ly = top + 8;
    text(f, lx, ly, "spec (ρ with fertility)", 10, true, 0, 0, INK);
    for (size_t q = 0; q < nq; q++) {
        double y = ly + 18 * ((double)q + 1);
        cairo_arc(f->cr, lx + 5, y - 4, 4, 0, 2 * M_PI);
        colour(f, SPEC_COLOUR[q % 8]);
        cairo_fill(f->cr);
        char lab[160];
        scatter_label(lab, sizeof lab, g, q);
        text(f, lx + 14, y, lab, 10, false, 0, 0, INK);
    }
    if (shorten) {
        double y = ly + 18 * ((double)nq + 2);
        text(f, lx, y, "labels: ISO 639-3 codes (with the script", 9, false, 0, 0, MUTED);
        text(f, lx, y + 12, "where two share a code)", 9, false, 0, 0, MUTED);
    }
#undef PX
#undef PY
    free(s);
    free(named);
    free(lab_boxes);
    free(placed);
}

/* ------------------------------------------------------------------ writing */

static int write_file(const char *path, const void *p, size_t n, polyq_err *err)
{
    char *tmp;
    FILE *f = pq_out_open(path, &tmp, err); /* written whole, then renamed over path */
    if (!f)
        return err->code;
    fwrite(p, 1, n, f);
    return pq_out_close(f, tmp, path, err);
}

static cairo_status_t to_file(void *closure, const unsigned char *data, unsigned int length)
{
    return fwrite(data, 1, length, closure) == length ? CAIRO_STATUS_SUCCESS
                                                      : CAIRO_STATUS_WRITE_ERROR;
}

/* One figure as stem.svg and stem.png; *svg_out (if not NULL) receives the SVG text. */
typedef void (*size_fn)(fig *m, const fig_data *g, size_t q, double *w, double *h);

/* draws on surf through f (whose cr it makes and ends); an SVG surface is finished (its
 * document written), an image surface flushed */
static cairo_status_t draw_on(cairo_surface_t *surf, fig *f, draw_fn draw, const fig_data *g,
                              size_t q, double w, double h)
{
    f->cr = cairo_create(surf);
    if (!f->svg)
        cairo_set_antialias(f->cr, CAIRO_ANTIALIAS_GOOD);
    draw(f, g, q, w, h);
    cairo_status_t st = cairo_status(f->cr);
    cairo_destroy(f->cr);
    f->cr = NULL;
    if (f->svg)
        cairo_surface_finish(surf);
    else
        cairo_surface_flush(surf);
    return st == CAIRO_STATUS_SUCCESS ? cairo_surface_status(surf) : st;
}

static int render(const char *dir, const char *stem, draw_fn draw, size_fn size, const fig_data *g,
                  size_t q, char **svg_out, polyq_err *err)
{
    double w, h; /* sizes depend on measured text: measure on a scratch context */
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
    fig m = {.cr = cairo_create(scratch)};
    size(&m, g, q, &w, &h);
    cairo_destroy(m.cr);
    cairo_surface_destroy(scratch);
    char *svg_path = pq_asprintf("%s/%s.svg", dir, stem),
         *png_path = pq_asprintf("%s/%s.png", dir, stem);
    int rc = svg_path && png_path ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    buf svg = {0};
    fig f = {0};
    if (!rc) { /* SVG: shapes through cairo, text as <text> */
        cairo_surface_t *surf = cairo_svg_surface_create_for_stream(to_buf, &svg, w, h);
        f.svg = true;
        cairo_status_t st = draw_on(surf, &f, draw, g, q, w, h);
        cairo_surface_destroy(surf);
        char *end = svg.p ? strstr(svg.p, "</svg>") : NULL;
        if (st != CAIRO_STATUS_SUCCESS || svg.oom || f.text.oom || !end)
            rc = pq_fail(err, POLYQ_IO, "%s: cairo could not draw it (%s)", svg_path,
                         svg.oom || f.text.oom ? "out of memory" : cairo_status_to_string(st));
        else {
            size_t head = (size_t)(end - svg.p);
            buf out = {0};
            buf_put(&out, svg.p, head);
            buf_put(&out, "<g id=\"text\">\n", 14);
            buf_put(&out, f.text.p ? f.text.p : "", f.text.n);
            buf_put(&out, "</g>\n", 5);
            buf_put(&out, end, strlen(end));
            rc = out.oom ? pq_fail(err, POLYQ_NOMEM, "out of memory")
                         : write_file(svg_path, out.p, out.n, err);
            if (!rc && svg_out) {
                *svg_out = out.p;
                out.p = NULL;
            }
            free(out.p);
        }
    }
    free(svg.p);
    free(f.text.p);
    if (!rc) { /* PNG at twice the size */
        cairo_surface_t *surf = cairo_image_surface_create(
            CAIRO_FORMAT_RGB24, (int)ceil(w * PNG_SCALE), (int)ceil(h * PNG_SCALE));
        cairo_surface_set_device_scale(surf, PNG_SCALE, PNG_SCALE);
        fig p = {0};
        cairo_status_t st = draw_on(surf, &p, draw, g, q, w, h);
        char *tmp = NULL;
        FILE *pf = st == CAIRO_STATUS_SUCCESS ? pq_out_open(png_path, &tmp, err) : NULL;
        if (st == CAIRO_STATUS_SUCCESS && !pf)
            rc = err->code;
        else if (st == CAIRO_STATUS_SUCCESS)
            st = cairo_surface_write_to_png_stream(surf, to_file, pf);
        if (!rc && st != CAIRO_STATUS_SUCCESS)
            rc = pq_fail(err, POLYQ_IO, "%s: cairo could not write it (%s)", png_path,
                         cairo_status_to_string(st));
        if (pf && st != CAIRO_STATUS_SUCCESS) {
            fclose(pf);
            remove(tmp);
            free(tmp);
        } else if (pf)
            rc = pq_out_close(pf, tmp, png_path, err);
        cairo_surface_destroy(surf);
    }
    free(svg_path);
    free(png_path);
    return rc;
}

/* a spec name as a file name: letters, digits, '-', '.', '_'; anything else becomes '_' */
static void file_stem(char *out, size_t n, const char *prefix, const char *spec)
{
    size_t k = (size_t)snprintf(out, n, "%s", prefix);
    for (const char *s = spec; *s && k + 1 < n; s++)
        out[k++] = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                           (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_'
                       ? *s
                       : '_';
    out[k < n ? k : n - 1] = 0;
}

void pq_figures_free(pq_figures *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        free(fs->v[i].stem);
        free(fs->v[i].title);
        free(fs->v[i].svg);
    }
    free(fs->v);
    memset(fs, 0, sizeof *fs);
}

static int add(pq_figures *fs, const char *dir, const char *stem, const char *title, draw_fn draw,
               size_fn size, const fig_data *g, size_t q, polyq_err *err)
{
    pq_figure *v = realloc(fs->v, (fs->n + 1) * sizeof *v);
    if (!v)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    fs->v = v;
    pq_figure *x = &v[fs->n];
    memset(x, 0, sizeof *x);
    if (!(x->stem = pq_strdup(stem)) || !(x->title = pq_strdup(title))) {
        free(x->stem);
        free(x->title);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    fs->n++;
    return render(dir, stem, draw, size, g, q, &x->svg, err);
}

int pq_report_figures(const json_t *results, const char *path, const char *dir, pq_figures *out,
                      polyq_err *err)
{
    memset(out, 0, sizeof *out);
    fig_data g;
    int rc = data_read(&g, results, path, err);
    if (!rc && (!g.n_lang || !g.n_q)) {
        data_free(&g);
        return 0; /* nothing to draw */
    }
    for (size_t q = 0; q < g.n_q && !rc; q++) {
        char stem[128], title[256];
        file_stem(stem, sizeof stem, "degradation-", g.spec[q]);
        for (size_t k = 0; k < q && !rc; k++) { /* two specs with the same file name */
            char other[128];
            file_stem(other, sizeof other, "degradation-", g.spec[k]);
            if (!strcmp(other, stem))
                snprintf(stem + strlen(stem), sizeof stem - strlen(stem), "-%zu", q + 1);
        }
        snprintf(title, sizeof title, "Δ bits per sentence by language, %s", g.spec[q]);
        rc = add(out, dir, stem, title, draw_bars, size_bars, &g, q, err);
    }
    if (!rc)
        rc = add(out, dir, "heatmap", "Languages × specs", draw_heat, size_heat, &g, 0, err);
    if (!rc)
        rc = add(out, dir, "fertility", "Degradation against tokenizer fertility", draw_scatter,
                 size_scatter, &g, 0, err);
    /* many languages: each spec's bars also in three columns, a page high */
    fig_data paper = g;
    paper.columns = 3;
    for (size_t q = 0; q < g.n_q && !rc && g.n_lang > PAPER_LANGS; q++) {
        char stem[160], title[256];
        snprintf(stem, sizeof stem, "%s-columns", out->v[q].stem);
        snprintf(title, sizeof title, "Δ bits per sentence by language, %s (three columns)",
                 g.spec[q]);
        rc = add(out, dir, stem, title, draw_bars, size_bars, &paper, q, err);
    }
    data_free(&g);
    if (rc)
        pq_figures_free(out);
    return rc;
}

void pq_figures_release(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}

int pq_report_summary_figure(const json_t *const *results, size_t n_res, const char *dir,
                             pq_figures *out, polyq_err *err)
{
    memset(out, 0, sizeof *out);
    fig_data g;
    memset(&g, 0, sizeof g);
    size_t cap_l = 0, n_q = 0;
    for (size_t r = 0; r < n_res; r++)
        n_q += json_array_size(json_object_get(results[r], "quantized"));
    if (!n_res || !n_q)
        return 0;
    if (n_q > 64)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: %zu model and spec pairs; the summary figure holds at most 64", dir,
                       n_q);
    int rc = 0;
    /* languages: every one any model has, in order of appearance */
    for (size_t r = 0; r < n_res && !rc; r++) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(results[r], "full_precision"), i, e)
        {
            const char *lang = str(e, "lang");
            bool seen = false;
            for (size_t l = 0; l < g.n_lang && !seen; l++)
                seen = !strcmp(g.lang[l], lang);
            if (seen)
                continue;
            if (g.n_lang == MAX_LANGS) {
                rc = pq_fail(err, POLYQ_UNSUPPORTED, "%s: more than %d languages for a figure", dir,
                             MAX_LANGS);
                break;
            }
            if (g.n_lang == cap_l) {
                const char **v = realloc(g.lang, (cap_l = cap_l ? 2 * cap_l : 64) * sizeof *v);
                if (!v) {
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                    break;
                }
                g.lang = v;
            }
            g.lang[g.n_lang++] = lang;
        }
    }
    size_t nl = g.n_lang ? g.n_lang : 1;
    char **names = rc ? NULL : calloc(n_q, sizeof *names);
    g.n_q = n_q;
    g.spec = rc ? NULL : calloc(n_q, sizeof *g.spec);
    g.bpw = rc ? NULL : calloc(n_q, sizeof *g.bpw);
    g.d = rc ? NULL : pq_alloc_array(nl * n_q, sizeof *g.d);
    g.lo = rc ? NULL : pq_alloc_array(nl * n_q, sizeof *g.lo);
    g.hi = rc ? NULL : pq_alloc_array(nl * n_q, sizeof *g.hi);
    if (!rc && (!names || !g.spec || !g.bpw || !g.d || !g.lo || !g.hi))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    g.model = "every model";
    g.ref = n_res ? str(results[0], "reference_language") : "";
    size_t q = 0;
    for (size_t r = 0; r < n_res && !rc; r++) {
        const char *id = str(json_object_get(results[r], "model"), "id"), *base = strrchr(id, '/');
        base = base ? base + 1 : id;
        size_t i;
        json_t *spec;
        json_array_foreach(json_object_get(results[r], "quantized"), i, spec)
        {
            if (!(names[q] = pq_asprintf("%s %s", base, str(spec, "spec")))) {
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                break;
            }
            g.spec[q] = names[q];
            g.bpw[q] = num(spec, "bits_per_weight");
            for (size_t l = 0; l < g.n_lang; l++) {
                size_t at = q * g.n_lang + l, k;
                json_t *e;
                g.d[at] = g.lo[at] = g.hi[at] = NAN;
                json_array_foreach(json_object_get(spec, "languages"), k,
                                   e) if (!strcmp(str(e, "lang"), g.lang[l]))
                {
                    const json_t *c = json_object_get(e, "delta_bits_per_sentence");
                    g.d[at] = num(c, "value");
                    g.lo[at] = num(c, "ci95_lo");
                    g.hi[at] = num(c, "ci95_hi");
                }
            }
            q++;
        }
    }
    if (!rc && g.n_lang)
        rc = add(out, dir, "summary-heatmap", "Every model and spec by language", draw_heat,
                 size_heat, &g, 0, err);
    for (size_t k = 0; names && k < n_q; k++)
        free(names[k]);
    free(names);
    data_free(&g);
    if (rc)
        pq_figures_free(out);
    return rc;
}
