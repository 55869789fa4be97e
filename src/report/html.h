/* report.html (html.c): one self-contained page with the figures and sortable tables. */
#ifndef PQ_HTML_H
#define PQ_HTML_H

#include <jansson.h>

#include "base/status.h"
#include "report/figures.h"

int pq_report_html(const json_t *results, const pq_figures *figs, const char *dir, polyq_err *err);

#endif
