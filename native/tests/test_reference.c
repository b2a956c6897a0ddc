/*
 * test_reference.c — the PyTorch reference cases of tests/reference/cases.txt (float64 values
 * that PyTorch computed; see tests/reference/make_reference_cases.py for the format), checked
 * through the C ABI in float32 (1e-5 relative, 1e-6 absolute) and float64 (1e-12). The C# suite
 * and pytest check the same file, so the three front ends answer to one set of numbers.
 *
 * The file is named by the environment variable NSM_REFERENCE_CASES (CTest sets it).
 */
#include "harness_support.h"
#include "test_groups.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reference_case {
    char name[128], op[32];
    int64_t rows, cols, ignore_index;
    int reduction, has_weight;
    double label_smoothing;
    double *logits, *upstream, *target, *weight, *output, *grad;
    int64_t output_count;
} reference_case;

static int read_values(FILE* f, const char* key, double* into, int64_t count)
{
    char token[64];
    if (fscanf(f, "%63s", token) != 1 || strcmp(token, key) != 0) {
        fail("cases file: expected \"%s\", found \"%s\"", key, token);
        return 0;
    }
    for (int64_t i = 0; i < count; ++i) {
        if (fscanf(f, "%63s", token) != 1) {
            fail("cases file: %s ends after %lld of %lld values", key, (long long)i, (long long)count);
            return 0;
        }
        into[i] = strtod(token, NULL); /* strtod reads Python's "inf", "-inf" and "nan" */
    }
    return 1;
}

static double* values(int64_t count) { return (double*)calloc((size_t)(count > 0 ? count : 1), sizeof(double)); }

static void case_free(reference_case* c)
{
    free(c->logits); free(c->upstream); free(c->target); free(c->weight); free(c->output); free(c->grad);
}

/* Reads the next case; 0 at the end of the file (or on a malformed record, which fails). */
static int read_case(FILE* f, reference_case* c)
{
    char token[64];
    memset(c, 0, sizeof *c);
    for (;;) {
        if (fscanf(f, "%63s", token) != 1) return 0;
        if (token[0] != '#') break;
        int ch;
        while ((ch = fgetc(f)) != EOF && ch != '\n') {}
    }
    long long rows, cols, ignore;
    if (strcmp(token, "case") != 0
        || fscanf(f, "%127s %31s %lld %lld %d %lld %lf %d", c->name, c->op, &rows, &cols, &c->reduction,
                  &ignore, &c->label_smoothing, &c->has_weight) != 8) {
        fail("cases file: malformed case header near \"%s\"", token);
        return 0;
    }
    c->rows = rows, c->cols = cols, c->ignore_index = ignore;
    int64_t n = c->rows * c->cols;
    int is_softmax = strcmp(c->op, "softmax") == 0 || strcmp(c->op, "log_softmax") == 0;
    int soft = strcmp(c->op, "cross_entropy_soft") == 0;
    c->output_count = is_softmax ? n : c->reduction == NSM_REDUCTION_NONE ? c->rows : 1;
    c->logits = values(n), c->grad = values(n), c->output = values(c->output_count);
    int ok = read_values(f, "logits", c->logits, n);
    if (is_softmax) {
        c->upstream = values(n);
        ok = ok && read_values(f, "upstream", c->upstream, n);
    } else {
        c->target = values(soft ? n : c->rows);
        ok = ok && read_values(f, "target", c->target, soft ? n : c->rows);
        if (c->has_weight) {
            c->weight = values(c->cols);
            ok = ok && read_values(f, "weight", c->weight, c->cols);
        }
    }
    ok = ok && read_values(f, "output", c->output, c->output_count) && read_values(f, "grad", c->grad, n);
    if (!ok || fscanf(f, "%63s", token) != 1 || strcmp(token, "end") != 0) {
        fail("cases file: case %s is malformed", c->name);
        case_free(c);
        return 0;
    }
    return 1;
}

/* The case's values converted to dtype t (malloc'd). */
static void* as_dtype(dtype t, const double* v, int64_t count)
{
    void* p = calloc((size_t)(count > 0 ? count : 1), dtype_size(t));
    for (int64_t i = 0; i < count; ++i) set_element(t, p, i, v[i]);
    return p;
}

static void compare(dtype t, const reference_case* c, const char* what, const void* got, const double* want,
                    int64_t count)
{
    double relative = t == F32 ? 1e-5 : 1e-12, absolute = t == F32 ? 1e-6 : 1e-12;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < count; ++i) {
        double g = get_element(t, got, i), w = want[i];
        int ok = isnan(w) ? isnan(g) : isinf(w) ? g == w : fabs(g - w) <= absolute + relative * fabs(w);
        if (!ok && bad++ == 0) first = i;
    }
    if (!check(bad == 0, "%s %s", c->name, what))
        fail("%s: %lld of %lld values differ from PyTorch; first [%lld]: got %.9g, PyTorch %.17g", what,
             (long long)bad, (long long)count, (long long)first, get_element(t, got, first), want[first]);
}

static void run_case(dtype t, const reference_case* c)
{
    int64_t rows = c->rows, cols = c->cols, n = rows * cols;
    set_context("op=%s case=%s dtype=%s variant=%s (tests/reference/cases.txt)", c->op, c->name, dtype_name(t),
                g_variant);
    void* z = as_dtype(t, c->logits, n);
    void* out = calloc((size_t)c->output_count, dtype_size(t));
    void* grad = calloc((size_t)n, dtype_size(t));
    nsm_status status;
    if (strcmp(c->op, "softmax") == 0 || strcmp(c->op, "log_softmax") == 0) {
        int log = c->op[0] == 'l';
        void* upstream = as_dtype(t, c->upstream, n);
        status = call_softmax(t, log, rows, cols, z, cols, out, cols);
        if (status == NSM_OK) status = call_backward(t, log, rows, cols, upstream, cols, out, cols, grad, cols);
        free(upstream);
    } else {
        nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
        options.reduction = c->reduction;
        options.ignore_index = c->ignore_index;
        options.label_smoothing = c->label_smoothing;
        void* weight = c->weight ? as_dtype(t, c->weight, cols) : NULL;
        if (strcmp(c->op, "cross_entropy") == 0) {
            int64_t* labels = (int64_t*)calloc((size_t)(rows > 0 ? rows : 1), sizeof(int64_t));
            for (int64_t r = 0; r < rows; ++r) labels[r] = (int64_t)c->target[r];
            status = call_cross_entropy(t, rows, cols, z, cols, labels, weight, &options, out, grad, cols);
            free(labels);
        } else {
            void* target = as_dtype(t, c->target, n);
            status = call_cross_entropy_soft(t, rows, cols, z, cols, target, cols, weight, &options, out, grad, cols);
            free(target);
        }
        free(weight);
    }
    if (check(status == NSM_OK, "%s status", c->name)) {
        compare(t, c, "output", out, c->output, c->output_count);
        compare(t, c, "grad", grad, c->grad, n);
    } else {
        fail("status %d (%s): %s", (int)status, nsm_status_string(status), nsm_last_error());
    }
    free(z), free(out), free(grad);
}

void group_reference(void)
{
    const char* path = getenv("NSM_REFERENCE_CASES");
    FILE* f = path ? fopen(path, "r") : NULL;
    set_context("group=reference file=%s", path ? path : "(NSM_REFERENCE_CASES unset)");
    if (!check(f != NULL, "open the cases file")) {
        fail("cannot open the reference cases file");
        return;
    }
    int cases = 0, ops_seen = 0;
    const char* ops[] = {"softmax", "log_softmax", "cross_entropy", "cross_entropy_soft"};
    reference_case c;
    while (read_case(f, &c)) {
        for (int i = 0; i < 4; ++i)
            if (strcmp(c.op, ops[i]) == 0) ops_seen |= 1 << i;
        run_case(F64, &c);
        run_case(F32, &c);
        case_free(&c);
        ++cases;
    }
    fclose(f);
    set_context("group=reference file=%s", path);
    check(cases >= 100, "at least 100 cases") || (fail("only %d cases read", cases), 0);
    check(ops_seen == 15, "every operation present") || (fail("operations seen: mask %d of 15", ops_seen), 0);
}
