/*
 * test_softmax.c — softmax, log_softmax, their backward passes and the Jacobian against float64
 * references, for every row length 1…49, 1000, 1001 (and the workload sizes 32000, 128256 for the
 * forward ops), contiguous, strided and in place, on guarded buffers.
 */
#include "harness_support.h"
#include "test_groups.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Input kinds: what the logits look like. */
typedef enum input_kind {
    UNIFORM_100,   /* uniform in [−100, 100] */
    LARGE_1E4,     /* uniform in [−1e4, 1e4]: naive exp overflows */
    WITH_MINUS_INF,/* [−100, 100] with about a quarter of the entries −inf (never a whole row) */
    NON_FINITE,    /* rows: all −inf; one +inf; one NaN; finite with one −inf */
    EXTREME        /* entries near ±FLT_MAX / ±DBL_MAX */
} input_kind;

static const char* input_name(input_kind k)
{
    switch (k) {
    case UNIFORM_100: return "uniform[-100,100]";
    case LARGE_1E4: return "uniform[-1e4,1e4]";
    case WITH_MINUS_INF: return "with -inf";
    case NON_FINITE: return "non-finite rows";
    case EXTREME: return "extreme";
    }
    return "?";
}

static void fill_logits(matrix* m, input_kind kind, rng* g)
{
    double big = m->type == F32 ? 3.0e38 : 1.7e308;
    for (int64_t r = 0; r < m->rows; ++r) {
        for (int64_t c = 0; c < m->cols; ++c) {
            double v = kind == LARGE_1E4 ? rng_uniform(g, -1e4, 1e4) : rng_uniform(g, -100.0, 100.0);
            if (kind == WITH_MINUS_INF && rng_below(g, 4) == 0) v = -INFINITY;
            if (kind == EXTREME) {
                int64_t pick = rng_below(g, 4);
                v = pick == 0 ? big : pick == 1 ? -big : pick == 2 ? rng_uniform(g, -1e30, 1e30) : v;
            }
            matrix_set(m, r, c, v);
        }
        if (kind == WITH_MINUS_INF) /* keep one finite entry per row */
            matrix_set(m, r, rng_below(g, m->cols), rng_uniform(g, -100.0, 100.0));
    }
    if (kind == NON_FINITE) {
        /* rows 0..3: all −inf; +inf in a finite row; NaN in a finite row; one −inf (finite max) */
        int64_t c0 = rng_below(g, m->cols);
        for (int64_t c = 0; c < m->cols; ++c) matrix_set(m, 0, c, -INFINITY);
        if (m->rows > 1) matrix_set(m, 1, c0, INFINITY);
        if (m->rows > 2) matrix_set(m, 2, c0, NAN);
        if (m->rows > 3 && m->cols > 1) matrix_set(m, 3, c0, -INFINITY);
    }
}

typedef enum layout { CONTIGUOUS, STRIDED, IN_PLACE, IN_PLACE_OTHER } layout;

static const char* layout_name(layout l)
{
    switch (l) {
    case CONTIGUOUS: return "contiguous";
    case STRIDED: return "strided";
    case IN_PLACE: return "in-place";
    case IN_PLACE_OTHER: return "in-place(output)";
    }
    return "?";
}

/* ---- forward ---------------------------------------------------------------------------------- */
static void test_forward_case(dtype t, int log, int64_t rows, int64_t cols, layout lay,
                              input_kind kind)
{
    int64_t ld_in = lay == CONTIGUOUS ? cols : lay == STRIDED ? cols + 5 : cols + 2;
    int64_t ld_out = lay == CONTIGUOUS ? cols : lay == STRIDED ? cols + 3 : ld_in;
    uint64_t seed = case_seed((uint64_t)cols, (uint64_t)(log * 16 + lay * 4 + t), (uint64_t)kind, 1);
    const char* op = op_name(log ? "log_softmax" : "softmax", t);
    set_context("op=%s len=%lld rows=%lld ld_in=%lld ld_out=%lld layout=%s input=%s seed=%llu", op,
                (long long)cols, (long long)rows, (long long)ld_in, (long long)ld_out,
                layout_name(lay), input_name(kind), (unsigned long long)seed);

    rng g = rng_new(seed);
    matrix in = matrix_new(t, rows, cols, ld_in);
    fill_logits(&in, kind, &g);
    double* z = matrix_values(&in);
    matrix out_storage;
    matrix* out = &in;
    if (lay != IN_PLACE) {
        out_storage = matrix_new(t, rows, cols, ld_out);
        out = &out_storage;
    }
    snapshot input_bytes = snapshot_take(in.mem.data, in.mem.bytes);

    nsm_status status = call_softmax(t, log, rows, cols, matrix_data(&in), ld_in, matrix_data(out), ld_out);
    if (check(status == NSM_OK, "status %d (%s): %s", (int)status, nsm_status_string(status),
              nsm_last_error())) {
        double* ref = (double*)malloc((size_t)cols * sizeof(double));
        double unit = accuracy_unit(t);
        for (int64_t r = 0; r < rows; ++r) {
            if (log)
                ref_log_softmax(z + r * cols, cols, ref);
            else
                ref_softmax(z + r * cols, cols, ref);
            for (int64_t c = 0; c < cols; ++c) {
                double got = matrix_get(out, r, c);
                double tol = log ? 2.0 * unit * (1.0 + fabs(ref[c])) : unit * fabs(ref[c]) + flush_floor(t);
                if (!check(agrees(t, got, ref[c], tol),
                           "row %lld col %lld: got %.9g, expected %.9g (tolerance %.3g, logit %.9g)",
                           (long long)r, (long long)c, got, ref[c], tol, z[r * cols + c]))
                    break; /* one message per row is enough */
            }
        }
        free(ref);
        check_padding(out, "output");
        if (lay != IN_PLACE)
            check(snapshot_unchanged(&input_bytes), "the input logits were modified");
    }
    snapshot_free(&input_bytes);
    free(z);
    if (out != &in) matrix_free(out);
    matrix_free(&in);
}

/* ---- backward ---------------------------------------------------------------------------------- */
static void test_backward_case(dtype t, int log, int64_t rows, int64_t cols, layout lay,
                               input_kind kind)
{
    int64_t ld_g = lay == STRIDED ? cols + 1 : cols;
    int64_t ld_o = lay == STRIDED ? cols + 4 : cols;
    int64_t ld_d = lay == STRIDED ? cols + 2 : cols;
    if (lay == IN_PLACE) ld_d = ld_g;       /* grad_logits is grad_output */
    if (lay == IN_PLACE_OTHER) ld_d = ld_o; /* grad_logits is output */
    uint64_t seed = case_seed((uint64_t)cols, (uint64_t)(log * 16 + lay * 4 + t), (uint64_t)kind, 2);
    const char* op = op_name(log ? "log_softmax_backward" : "softmax_backward", t);
    set_context("op=%s len=%lld rows=%lld ld_grad_output=%lld ld_output=%lld ld_grad_logits=%lld "
                "layout=%s input=%s seed=%llu",
                op, (long long)cols, (long long)rows, (long long)ld_g, (long long)ld_o,
                (long long)ld_d, layout_name(lay), input_name(kind), (unsigned long long)seed);

    rng g = rng_new(seed);
    /* The forward output comes from the reference (rounded to the dtype), as a training step would
     * have it; the upstream gradient is uniform in [−1, 1]. */
    matrix logits = matrix_new(F64, rows, cols, cols);
    fill_logits(&logits, kind == WITH_MINUS_INF ? WITH_MINUS_INF : UNIFORM_100, &g);
    matrix grad_output = matrix_new(t, rows, cols, ld_g);
    matrix output = matrix_new(t, rows, cols, ld_o);
    double* z = matrix_values(&logits);
    double* row = (double*)malloc((size_t)cols * sizeof(double));
    for (int64_t r = 0; r < rows; ++r) {
        if (log)
            ref_log_softmax(z + r * cols, cols, row);
        else
            ref_softmax(z + r * cols, cols, row);
        for (int64_t c = 0; c < cols; ++c) {
            matrix_set(&output, r, c, row[c]);
            matrix_set(&grad_output, r, c, rng_uniform(&g, -1.0, 1.0));
        }
    }
    double* gv = matrix_values(&grad_output);
    double* ov = matrix_values(&output);

    matrix d_storage;
    matrix* d = lay == IN_PLACE ? &grad_output : lay == IN_PLACE_OTHER ? &output : NULL;
    if (d == NULL) {
        d_storage = matrix_new(t, rows, cols, ld_d);
        d = &d_storage;
    }
    snapshot g_bytes = snapshot_take(grad_output.mem.data, grad_output.mem.bytes);
    snapshot o_bytes = snapshot_take(output.mem.data, output.mem.bytes);

    nsm_status status = call_backward(t, log, rows, cols, matrix_data(&grad_output), ld_g,
                                      matrix_data(&output), ld_o, matrix_data(d), ld_d);
    if (check(status == NSM_OK, "status %d (%s): %s", (int)status, nsm_status_string(status),
              nsm_last_error())) {
        double unit = accuracy_unit(t);
        for (int64_t r = 0; r < rows; ++r) {
            const double* gr = gv + r * cols;
            const double* orow = ov + r * cols;
            double dot = 0.0, dot_abs = 0.0, gsum = 0.0, gsum_abs = 0.0;
            for (int64_t c = 0; c < cols; ++c) {
                double p = log ? exp(orow[c]) : orow[c];
                dot += gr[c] * p;
                dot_abs += fabs(gr[c] * p);
                gsum += gr[c];
                gsum_abs += fabs(gr[c]);
            }
            for (int64_t c = 0; c < cols; ++c) {
                double ref, scale;
                if (log) {
                    double p = exp(orow[c]);
                    ref = gr[c] - p * gsum;
                    scale = fabs(ref) + fabs(gr[c]) + p * gsum_abs;
                } else {
                    ref = orow[c] * (gr[c] - dot);
                    scale = fabs(ref) + orow[c] * (fabs(gr[c]) + dot_abs);
                }
                double tol = 2.0 * unit * scale + flush_floor(t);
                double got = matrix_get(d, r, c);
                if (!check(agrees(t, got, ref, tol),
                           "row %lld col %lld: got %.9g, expected %.9g (tolerance %.3g, g=%.9g, "
                           "output=%.9g)",
                           (long long)r, (long long)c, got, ref, tol, gr[c], orow[c]))
                    break;
            }
        }
        check_padding(d, "grad_logits");
        if (lay != IN_PLACE) check(snapshot_unchanged(&g_bytes), "grad_output was modified");
        if (lay != IN_PLACE_OTHER) check(snapshot_unchanged(&o_bytes), "output was modified");
    }
    snapshot_free(&g_bytes);
    snapshot_free(&o_bytes);
    free(z);
    free(row);
    free(gv);
    free(ov);
    if (d == &d_storage) matrix_free(d);
    matrix_free(&logits);
    matrix_free(&grad_output);
    matrix_free(&output);
}

/* ---- Jacobian ---------------------------------------------------------------------------------- */
static void test_jacobian_case(dtype t, int64_t cols, int64_t ld, input_kind kind)
{
    uint64_t seed = case_seed((uint64_t)cols, (uint64_t)ld, (uint64_t)kind, 3 + (uint64_t)t);
    set_context("op=%s len=%lld ld_jacobian=%lld input=%s seed=%llu", op_name("softmax_jacobian", t),
                (long long)cols, (long long)ld, input_name(kind), (unsigned long long)seed);
    rng g = rng_new(seed);
    matrix logits = matrix_new(t, 1, cols, cols);
    fill_logits(&logits, kind, &g);
    double* z = matrix_values(&logits);
    double* o = (double*)malloc((size_t)cols * sizeof(double));
    ref_softmax(z, cols, o);
    matrix jac = matrix_new(t, cols, cols, ld);
    snapshot in_bytes = snapshot_take(logits.mem.data, logits.mem.bytes);

    nsm_status status = call_jacobian(t, cols, matrix_data(&logits), matrix_data(&jac), ld);
    if (check(status == NSM_OK, "status %d (%s): %s", (int)status, nsm_status_string(status),
              nsm_last_error())) {
        double unit = accuracy_unit(t);
        int reported = 0;
        for (int64_t i = 0; i < cols && reported < 3; ++i)
            for (int64_t j = 0; j < cols; ++j) {
                double ref = o[i] * ((i == j ? 1.0 : 0.0) - o[j]);
                double tol = 3.0 * unit * (fabs(ref) + (i == j ? o[i] : 0.0)) + flush_floor(t);
                double got = matrix_get(&jac, i, j);
                if (!check(agrees(t, got, ref, tol),
                           "J[%lld,%lld]: got %.9g, expected %.9g (tolerance %.3g)", (long long)i,
                           (long long)j, got, ref, tol)) {
                    ++reported;
                    break;
                }
            }
        check_padding(&jac, "jacobian");
        check(snapshot_unchanged(&in_bytes), "the logits were modified");
    }
    snapshot_free(&in_bytes);
    free(z);
    free(o);
    matrix_free(&jac);
    matrix_free(&logits);
}

/* ---- numeric edges -------------------------------------------------------------------------- */
/* A dominant class: log_softmax there (−log1p of the others' exps) within a few ulp, and every
 * other output as accurate as usual. */
static void test_forward_dominant(dtype t)
{
    for (int i = 0; i < EDGE_LENGTH_COUNT; ++i) {
        int64_t cols = k_edge_lengths[i], dominant[DOMINANT_ROWS];
        set_context("op=%s dominant class len=%lld rows=%d", op_name("log_softmax", t), (long long)cols,
                    DOMINANT_ROWS);
        matrix in = dominant_logits(t, cols, dominant);
        matrix out = matrix_new(t, DOMINANT_ROWS, cols, cols);
        double* z = matrix_values(&in);
        double* ref = (double*)malloc((size_t)cols * sizeof(double));
        for (int is_log = 0; is_log < 2; ++is_log) {
            nsm_status status = call_softmax(t, is_log, DOMINANT_ROWS, cols, matrix_data(&in), cols, matrix_data(&out), cols);
            if (!check(status == NSM_OK, "status %d: %s", (int)status, nsm_last_error())) continue;
            for (int64_t r = 0; r < DOMINANT_ROWS; ++r) {
                if (is_log)
                    ref_log_softmax(z + r * cols, cols, ref);
                else
                    ref_softmax(z + r * cols, cols, ref);
                for (int64_t c = 0; c < cols; ++c) {
                    double got = matrix_get(&out, r, c);
                    if (c == dominant[r])
                        check(ulp_error(t, got, ref[c]) <= DOMINANT_ULPS,
                              "%s row %lld at the dominant class: got %.17g, exact %.17g (%.2f ulp, more than %g)",
                              is_log ? "log_softmax" : "softmax", (long long)r, got, ref[c],
                              ulp_error(t, got, ref[c]), DOMINANT_ULPS);
                    else {
                        double unit = accuracy_unit(t);
                        double tol = is_log ? 2.0 * unit * (1.0 + fabs(ref[c])) : unit * fabs(ref[c]) + flush_floor(t);
                        check(agrees(t, got, ref[c], tol), "%s row %lld col %lld: got %.9g, expected %.9g",
                              is_log ? "log_softmax" : "softmax", (long long)r, (long long)c, got, ref[c]);
                    }
                }
            }
        }
        free(ref);
        free(z);
        matrix_free(&out);
        matrix_free(&in);
    }
}

/* The flush rule on softmax and log_softmax: outputs crossing the smallest normal number. */
static void test_forward_flush(dtype t)
{
    for (int is_log = 0; is_log < 2; ++is_log) {
        flush_tally tally = {0, 0};
        const char* op = op_name(is_log ? "log_softmax" : "softmax", t);
        for (int i = 0; i < EDGE_LENGTH_COUNT; ++i) {
            int64_t cols = k_edge_lengths[i];
            set_context("op=%s flush rule len=%lld rows=%d", op, (long long)cols, 2 * FLUSH_OFFSET_COUNT);
            matrix in = crossing_logits(t, cols);
            matrix out = matrix_new(t, in.rows, cols, cols);
            double* z = matrix_values(&in);
            double* ref = (double*)malloc((size_t)cols * sizeof(double));
            nsm_status status = call_softmax(t, is_log, in.rows, cols, matrix_data(&in), cols, matrix_data(&out), cols);
            if (check(status == NSM_OK, "status %d: %s", (int)status, nsm_last_error()))
                for (int64_t r = 0; r < in.rows; ++r) {
                    if (is_log)
                        ref_log_softmax(z + r * cols, cols, ref);
                    else
                        ref_softmax(z + r * cols, cols, ref);
                    for (int64_t c = 0; c < cols; ++c)
                        if (!check_flushed(t, matrix_get(&out, r, c), ref[c], 2.0 * accuracy_unit(t) * 2.0, &tally, op, r, c))
                            break;
                }
            free(ref);
            free(z);
            matrix_free(&out);
            matrix_free(&in);
        }
        set_context("op=%s flush rule", op);
        check_tally(&tally, op);
    }
}

/* The flush rule on the backward passes: softmax_backward with o = [a, ½, 0…], g = [c, 0…]
 * (a = 2^−scale) gives [a·c·(1 − a), −a·c/2, 0…]; log_softmax_backward with g = [0, ½, 0…] and
 * y = [ln(2m) + offset, FAR_BELOW…] gives [−e^y/2, ½, 0…]: both cross the smallest normal m. */
static void test_backward_flush(dtype t)
{
    double m = min_normal(t);
    int scale = t == F32 ? 60 : 500;
    for (int is_log = 0; is_log < 2; ++is_log) {
        flush_tally tally = {0, 0};
        const char* op = op_name(is_log ? "log_softmax_backward" : "softmax_backward", t);
        for (int i = 0; i < EDGE_LENGTH_COUNT; ++i) {
            int64_t cols = k_edge_lengths[i], rows = 2 * FLUSH_OFFSET_COUNT;
            set_context("op=%s flush rule len=%lld rows=%lld", op, (long long)cols, (long long)rows);
            matrix g = matrix_new(t, rows, cols, cols), o = matrix_new(t, rows, cols, cols), d = matrix_new(t, rows, cols, cols);
            for (int64_t r = 0; r < rows; ++r) {
                double offset = k_flush_offsets[r % FLUSH_OFFSET_COUNT];
                for (int64_t c = 0; c < cols; ++c) {
                    if (is_log) {
                        matrix_set(&g, r, c, c == 1 ? 0.5 : 0.0);
                        matrix_set(&o, r, c, c == 0 ? log(2.0 * m) + offset * (r < FLUSH_OFFSET_COUNT ? 1.0 : 0.5) : FAR_BELOW);
                    } else {
                        matrix_set(&o, r, c, c == 0 ? ldexp(1.0, -scale) : c == 1 ? 0.5 : 0.0);
                        matrix_set(&g, r, c, c == 0 ? ldexp(m, scale) * (r < FLUSH_OFFSET_COUNT ? 1.0 : 2.0) * exp(offset) : 0.0);
                    }
                }
            }
            nsm_status status = call_backward(t, is_log, rows, cols, matrix_data(&g), cols, matrix_data(&o), cols, matrix_data(&d), cols);
            if (check(status == NSM_OK, "status %d: %s", (int)status, nsm_last_error()))
                for (int64_t r = 0; r < rows; ++r) {
                    double gsum = 0.0, dot = 0.0;
                    for (int64_t c = 0; c < cols; ++c) {
                        gsum += matrix_get(&g, r, c);
                        dot += matrix_get(&g, r, c) * matrix_get(&o, r, c);
                    }
                    for (int64_t c = 0; c < cols; ++c) {
                        double gc = matrix_get(&g, r, c), oc = matrix_get(&o, r, c);
                        double ref = is_log ? gc - exp(oc) * gsum : oc * (gc - dot);
                        if (!check_flushed(t, matrix_get(&d, r, c), ref, 4.0 * accuracy_unit(t), &tally, op, r, c)) break;
                    }
                }
            matrix_free(&g);
            matrix_free(&o);
            matrix_free(&d);
        }
        set_context("op=%s flush rule", op);
        check_tally(&tally, op);
    }
}

/* exp's error bound, the header's number, on this variant's own evaluation (with FMA on avx2,
 * avx512 and neon; without on sse4.2): log_softmax_backward with g = [0, −1] and y = [x, FAR_BELOW]
 * gives exactly [exp(x), −1]: the library's exp(x) with no other rounding. */
#define EXP_CLAIMED_ULPS 1.25
static void test_exp_error(dtype t)
{
    const int64_t samples = 100000;
    double low = t == F32 ? log((double)FLT_MIN) : log(DBL_MIN);
    set_context("op=%s exp error through y = [x, %g], g = [0, -1], %lld samples over [%g, 0]",
                op_name("log_softmax_backward", t), FAR_BELOW, (long long)samples, low);
    static const double known_worst[] = {-59.954246520996094, -5.8911237716674805}; /* float32, without and with FMA */
    int64_t rows = samples + 2;
    matrix g = matrix_new(t, rows, 2, 2), y = matrix_new(t, rows, 2, 2), d = matrix_new(t, rows, 2, 2);
    for (int64_t r = 0; r < rows; ++r) {
        double x = r < samples ? low * (double)(r + 1) / (double)samples * 0.999999 : known_worst[r - samples];
        matrix_set(&y, r, 0, x);
        matrix_set(&y, r, 1, FAR_BELOW);
        matrix_set(&g, r, 0, 0.0);
        matrix_set(&g, r, 1, -1.0);
    }
    nsm_status status = call_backward(t, 1, rows, 2, matrix_data(&g), 2, matrix_data(&y), 2, matrix_data(&d), 2);
    if (check(status == NSM_OK, "status %d: %s", (int)status, nsm_last_error())) {
        double worst = 0.0, worst_x = 0.0;
        for (int64_t r = 0; r < rows; ++r) {
            double x = matrix_get(&y, r, 0);
            long double exact = expl((long double)x);
            if (exact < (long double)min_normal(t)) continue;
            double got = matrix_get(&d, r, 0);
            double ulp = ldexp(1.0, ilogb((double)exact) - (t == F32 ? 23 : 52));
            double error = (double)(fabsl((long double)got - exact) / (long double)ulp);
            if (error > worst) {
                worst = error;
                worst_x = x;
            }
        }
        printf("harness: exp %s on %s: max error %.3f ulp at x = %.17g\n", dtype_name(t), g_variant, worst, worst_x);
        check(worst < EXP_CLAIMED_ULPS, "exp error %.3f ulp at x = %.17g: not below the header's %g ulp", worst,
              worst_x, EXP_CLAIMED_ULPS);
    }
    matrix_free(&g);
    matrix_free(&y);
    matrix_free(&d);
}

/* The Jacobian: its diagonal at a dominant class (o·Σ_{j≠i} o_j) within a few ulp, and the
 * flush rule on rows [0, d, FAR_BELOW…] (J[0,0], J[d,d] ≈ e^d, J[0,d] ≈ −e^d cross m). */
static void test_jacobian_edges(dtype t)
{
    flush_tally tally = {0, 0};
    const char* op = op_name("softmax_jacobian", t);
    for (int i = 0; i < EDGE_LENGTH_COUNT; ++i) {
        int64_t cols = k_edge_lengths[i], dominant[DOMINANT_ROWS];
        matrix logits = dominant_logits(t, cols, dominant);
        matrix crossing = crossing_logits(t, cols);
        matrix jac = matrix_new(t, cols, cols, cols);
        double* z = (double*)malloc((size_t)cols * sizeof(double));
        double* o = (double*)malloc((size_t)cols * sizeof(double));
        for (int64_t r = 0; r < DOMINANT_ROWS + FLUSH_OFFSET_COUNT; ++r) {
            int flush = r >= DOMINANT_ROWS;
            const matrix* source = flush ? &crossing : &logits;
            int64_t row = flush ? r - DOMINANT_ROWS : r;
            set_context("op=%s %s len=%lld row %lld", op, flush ? "flush rule" : "dominant class", (long long)cols, (long long)row);
            for (int64_t c = 0; c < cols; ++c) z[c] = matrix_get(source, row, c);
            nsm_status status = call_jacobian(t, cols, (const unsigned char*)matrix_data(source) + (size_t)(row * cols) * dtype_size(t),
                                              matrix_data(&jac), cols);
            if (!check(status == NSM_OK, "status %d: %s", (int)status, nsm_last_error())) continue;
            ref_softmax(z, cols, o);
            for (int64_t a = 0; a < cols; ++a)
                for (int64_t b = 0; b < cols; ++b) {
                    double ref;
                    if (a == b) {
                        compensated_sum rest = {0.0, 0.0};
                        for (int64_t k = 0; k < cols; ++k)
                            if (k != a) sum_add(&rest, o[k]);
                        ref = o[a] * sum_total(&rest);
                    } else
                        ref = -o[a] * o[b];
                    double got = matrix_get(&jac, a, b);
                    if (flush)
                        check_flushed(t, got, ref, 4.0 * accuracy_unit(t), &tally, op, a, b);
                    else if (a == b && a == dominant[row])
                        check(ulp_error(t, got, ref) <= DOMINANT_ULPS, "J[%lld,%lld] at the dominant class: got %.17g, exact %.17g (%.2f ulp)",
                              (long long)a, (long long)b, got, ref, ulp_error(t, got, ref));
                }
        }
        free(z);
        free(o);
        matrix_free(&jac);
        matrix_free(&crossing);
        matrix_free(&logits);
    }
    set_context("op=%s flush rule", op);
    check_tally(&tally, op);
}

/* Row lengths: every length 1…49 (more than 3 × the widest vector + 1 for float32 on AVX-512),
 * and 1000, 1001. */
static const int64_t k_extra_lengths[] = {1000, 1001};

static int64_t length_at(int index) /* 0..50 */
{
    return index < 49 ? index + 1 : k_extra_lengths[index - 49];
}
#define LENGTH_COUNT 51

void group_softmax(void)
{
    for (int dt = 0; dt < 2; ++dt)
        for (int log = 0; log < 2; ++log) {
            dtype t = (dtype)dt;
            for (int i = 0; i < LENGTH_COUNT; ++i) {
                int64_t cols = length_at(i);
                test_forward_case(t, log, 3, cols, CONTIGUOUS, UNIFORM_100);
                test_forward_case(t, log, 3, cols, STRIDED, UNIFORM_100);
                test_forward_case(t, log, 3, cols, IN_PLACE, UNIFORM_100);
                test_forward_case(t, log, 2, cols, STRIDED, LARGE_1E4);
                test_forward_case(t, log, 2, cols, CONTIGUOUS, WITH_MINUS_INF);
                test_forward_case(t, log, 4, cols, STRIDED, NON_FINITE);
                test_forward_case(t, log, 2, cols, CONTIGUOUS, EXTREME);
                /* 19 rows: groups of W rows across lanes (4, 8 or 16) and the rows left over. */
                test_forward_case(t, log, 19, cols, STRIDED, UNIFORM_100);
            }
            /* Workload sizes: a vocabulary of 32000 and of 128256. */
            test_forward_case(t, log, 2, 32000, CONTIGUOUS, UNIFORM_100);
            test_forward_case(t, log, 1, 128256, CONTIGUOUS, UNIFORM_100);
            test_forward_case(t, log, 1, 128256, CONTIGUOUS, LARGE_1E4);
        }
    for (int dt = 0; dt < 2; ++dt) {
        test_forward_dominant((dtype)dt);
        test_forward_flush((dtype)dt);
    }
}

void group_backward(void)
{
    for (int dt = 0; dt < 2; ++dt)
        for (int log = 0; log < 2; ++log) {
            dtype t = (dtype)dt;
            for (int i = 0; i < LENGTH_COUNT; ++i) {
                int64_t cols = length_at(i);
                test_backward_case(t, log, 3, cols, CONTIGUOUS, UNIFORM_100);
                test_backward_case(t, log, 3, cols, STRIDED, UNIFORM_100);
                test_backward_case(t, log, 3, cols, IN_PLACE, UNIFORM_100);
                test_backward_case(t, log, 3, cols, IN_PLACE_OTHER, UNIFORM_100);
                test_backward_case(t, log, 2, cols, STRIDED, WITH_MINUS_INF);
                test_backward_case(t, log, 19, cols, IN_PLACE, UNIFORM_100); /* across lanes, as above */
            }
            test_backward_case(t, log, 2, 32000, CONTIGUOUS, UNIFORM_100);
        }
    for (int dt = 0; dt < 2; ++dt) {
        test_backward_flush((dtype)dt);
        test_exp_error((dtype)dt);
    }
}

void group_jacobian(void)
{
    for (int dt = 0; dt < 2; ++dt) {
        dtype t = (dtype)dt;
        for (int i = 0; i < LENGTH_COUNT; ++i) {
            int64_t cols = length_at(i);
            test_jacobian_case(t, cols, cols, UNIFORM_100);
            test_jacobian_case(t, cols, cols + 3, UNIFORM_100);
            if (cols < 1000) test_jacobian_case(t, cols, cols + 1, WITH_MINUS_INF);
        }
        test_jacobian_edges(t);
    }
}
