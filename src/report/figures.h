/* Figures of a polyq results file (figures.c): per-language degradation bars with intervals,
 * a languages × specs heatmap and degradation against tokenizer fertility, each written as
 * DIR/<stem>.svg and DIR/<stem>.png. */
#ifndef PQ_FIGURES_H
#define PQ_FIGURES_H

#include <jansson.h>
#include <stddef.h>

#include "base/status.h"

typedef struct pq_figure {
    char *stem; /* file name without .svg/.png */
    char *title;
    char *svg; /* the SVG document, for pages that inline it */
} pq_figure;

typedef struct pq_figures {
    pq_figure *v;
    size_t n;
} pq_figures;

/* results: a parsed results file (path names it in messages). out->v holds each spec's bars
 * (n_spec of them), then the heatmap and the fertility figure, then, with more than 60
 * languages, each spec's bars again in three columns (a page high: 204 languages in about
 * 900 px). Nothing is drawn when it has no language or no spec. Free out with
 * pq_figures_free, also after a failure. */
int pq_report_figures(const json_t *results, const char *path, const char *dir, pq_figures *out,
                      polyq_err *err);
/* DIR/summary-heatmap.svg/.png: languages x (model, spec) of several results documents (a sweep's
 * models), each column named "<model's last path part> <spec>". Nothing when there is no spec. */
int pq_report_summary_figure(const json_t *const *results, size_t n, const char *dir,
                             pq_figures *out, polyq_err *err);
void pq_figures_free(pq_figures *fs);
/* Frees the font caches cairo and fontconfig keep for the life of the process, for a program
 * that draws no more (a clean leak check); no cairo object may be alive. */
void pq_figures_release(void);

#endif
