/*
 * test_cross_entropy.c — the fused softmax cross-entropy, hard labels and soft targets, against a
 * float64 reference of the header's formulas (docs/derivation.md §4–§5: dE/dz_i = o_i·Σy − y_i
 * with the weighted, smoothed target y): reductions none / sum / mean, class weights (negative
 * ones included), ignore_index (the default −100 and a class index), label smoothing, grad_scale,
 * per-row upstream gradients (grad_output, reduction none: row r's gradient times grad_output[r]),
 * loss-only, gradient-only and in-place gradients, every row length 1…49, 1000, 1001; a
 * version-1 options struct (32 bytes) still accepted.
 */
#include "harness_support.h"
#include "test_groups.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CE_ROWS 6

typedef enum ce_layout {
    CE_CONTIGUOUS,
    CE_STRIDED,
    CE_IN_PLACE,        /* grad is exactly the logits */
    CE_IN_PLACE_TARGET, /* soft targets only: grad is exactly the target */
    CE_LOSS_ONLY,       /* grad == NULL */
    CE_GRAD_ONLY        /* loss == NULL */
} ce_layout;

static const char* ce_layout_name(ce_layout l)
{
    switch (l) {
    case CE_CONTIGUOUS: return "contiguous";
    case CE_STRIDED: return "strided";
    case CE_IN_PLACE: return "grad-in-place-over-logits";
    case CE_IN_PLACE_TARGET: return "grad-in-place-over-target";
    case CE_LOSS_ONLY: return "loss-only";
    case CE_GRAD_ONLY: return "grad-only";
    }
    return "?";
}

static const char* reduction_name(nsm_reduction r)
{
    return r == NSM_REDUCTION_NONE ? "none" : r == NSM_REDUCTION_SUM ? "sum" : "mean";
}

typedef enum weight_kind { NO_WEIGHT, POSITIVE_WEIGHT, SIGNED_WEIGHT } weight_kind;

static const char* weight_name(weight_kind w)
{
    return w == NO_WEIGHT ? "none" : w == POSITIVE_WEIGHT ? "positive" : "with-negative";
}

/* What the reference says and how closely the result must agree. */
typedef struct expectation {
    double row_loss[CE_ROWS];
    double row_tol[CE_ROWS];
    double* grad;     /* [rows × cols] dense */
    double* grad_tol; /* [rows × cols] dense */
    double reduced, reduced_tol;
} expectation;

/* y_j for row r: the target of docs/derivation.md §4 (already weighted and smoothed). The loss and
 * gradient of one row follow from it:  loss = Σ_{y_j ≠ 0} y_j·(lse − z_j),  g_i = o_i·Σy − y_i. */
static void expect_row(dtype t, const double* z, int64_t cols, const double* y, double s, int row,
                       expectation* e)
{
    double unit = accuracy_unit(t);
    double lse = ref_logsumexp(z, cols);
    double loss = 0.0, loss_abs = 0.0, y_sum = 0.0, y_abs = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
        y_sum += y[j];
        y_abs += fabs(y[j]);
        if (y[j] != 0.0) {
            loss += y[j] * (lse - z[j]);
            loss_abs += fabs(y[j] * (lse - z[j]));
        }
    }
    if (isnan(lse)) loss = NAN;
    e->row_loss[row] = loss;
    e->row_tol[row] = 2.0 * unit * (y_abs + loss_abs);

    double* o = (double*)malloc((size_t)cols * sizeof(double));
    ref_softmax(z, cols, o);
    for (int64_t i = 0; i < cols; ++i) {
        double g = s * (o[i] * y_sum - y[i]);
        e->grad[row * cols + i] = g;
        e->grad_tol[row * cols + i] = unit * (fabs(s) * y_abs + fabs(g)) + flush_floor(t);
    }
    free(o);
}

static void expect_reduction(nsm_reduction reduction, int64_t rows, double divisor, expectation* e)
{
    double sum = 0.0, tol = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
        sum += e->row_loss[r];
        tol += e->row_tol[r];
    }
    if (reduction == NSM_REDUCTION_SUM) {
        e->reduced = sum;
        e->reduced_tol = tol;
    } else {
        e->reduced = divisor == 0.0 ? NAN : sum / divisor;
        e->reduced_tol = divisor == 0.0 ? 0.0 : tol / fabs(divisor);
    }
}

/* Compares the library's loss and grad with the expectation. */
static void check_results(dtype t, nsm_reduction reduction, int64_t rows, int64_t cols,
                          const void* loss, const matrix* grad, const expectation* e)
{
    if (loss != NULL) {
        if (reduction == NSM_REDUCTION_NONE) {
            for (int64_t r = 0; r < rows; ++r) {
                double got = get_element(t, loss, r);
                check(agrees(t, got, e->row_loss[r], e->row_tol[r]),
                      "loss[%lld]: got %.9g, expected %.9g (tolerance %.3g)", (long long)r, got,
                      e->row_loss[r], e->row_tol[r]);
            }
        } else {
            double got = get_element(t, loss, 0);
            check(agrees(t, got, e->reduced, e->reduced_tol),
                  "reduced loss: got %.9g, expected %.9g (tolerance %.3g)", got, e->reduced,
                  e->reduced_tol);
        }
    }
    if (grad != NULL) {
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) {
                double got = matrix_get(grad, r, c), ref = e->grad[r * cols + c];
                if (!check(agrees(t, got, ref, e->grad_tol[r * cols + c]),
                           "grad[%lld,%lld]: got %.9g, expected %.9g (tolerance %.3g)", (long long)r,
                           (long long)c, got, ref, e->grad_tol[r * cols + c]))
                    break;
            }
        check_padding(grad, "grad");
    }
}

static void fill_weight(void* weight, dtype t, int64_t cols, weight_kind kind, rng* g)
{
    for (int64_t j = 0; j < cols; ++j) {
        double w = rng_uniform(g, 0.25, 2.0);
        if (kind == SIGNED_WEIGHT && j % 3 == 1) w = -rng_uniform(g, 0.25, 1.0);
        set_element(t, weight, j, w);
    }
}

/* Logits uniform in [−100, 100]; with `minus_inf`, about a quarter −inf, except at `keep[r]`. */
static void fill_ce_logits(matrix* m, int minus_inf, const int64_t* keep, rng* g)
{
    for (int64_t r = 0; r < m->rows; ++r)
        for (int64_t c = 0; c < m->cols; ++c) {
            double v = rng_uniform(g, -100.0, 100.0);
            if (minus_inf && rng_below(g, 4) == 0 && (keep == NULL || keep[r] != c)) v = -INFINITY;
            matrix_set(m, r, c, v);
        }
}

/* grad_output for `rows` rows: uniform in [−2, 2], row 0 exactly 0 (a zero row gradient), in a
 * guarded region (the call must only read it). */
static region upstream_gradients(dtype t, int64_t rows, rng* g)
{
    region r = region_new((size_t)rows * dtype_size(t));
    for (int64_t i = 0; i < rows; ++i) set_element(t, r.data, i, i == 0 ? 0.0 : rng_uniform(g, -2.0, 2.0));
    return r;
}

/* ---- hard labels ---------------------------------------------------------------------------- */
typedef struct hard_config {
    nsm_reduction reduction;
    weight_kind weight;
    double smoothing;
    double grad_scale;
    int ignore_a_class; /* 0: ignore_index −100 and row 1 labelled −100; 1: ignore_index = row 0's label */
    ce_layout layout;
    int null_options;   /* options == NULL (the defaults) */
    int minus_inf;      /* −inf logits away from the labels */
    int per_row;        /* options.grad_output: one upstream gradient per row (reduction none) */
} hard_config;

static const hard_config k_hard_configs[] = {
    {NSM_REDUCTION_MEAN, NO_WEIGHT, 0.0, 1.0, 0, CE_CONTIGUOUS, 1, 0, 0},
    {NSM_REDUCTION_MEAN, NO_WEIGHT, 0.0, 1.0, 0, CE_CONTIGUOUS, 0, 0, 0},
    {NSM_REDUCTION_SUM, POSITIVE_WEIGHT, 0.0, 1.0, 0, CE_STRIDED, 0, 0, 0},
    {NSM_REDUCTION_NONE, NO_WEIGHT, 0.1, 1.0, 0, CE_STRIDED, 0, 0, 0},
    {NSM_REDUCTION_MEAN, POSITIVE_WEIGHT, 0.1, 0.5, 1, CE_IN_PLACE, 0, 0, 0},
    {NSM_REDUCTION_MEAN, SIGNED_WEIGHT, 0.25, -2.0, 0, CE_STRIDED, 0, 0, 0},
    {NSM_REDUCTION_NONE, POSITIVE_WEIGHT, 1.0, 1.0, 1, CE_CONTIGUOUS, 0, 0, 0},
    {NSM_REDUCTION_SUM, NO_WEIGHT, 0.3, 3.0, 1, CE_LOSS_ONLY, 0, 0, 0},
    {NSM_REDUCTION_MEAN, POSITIVE_WEIGHT, 0.0, 1.0, 0, CE_GRAD_ONLY, 0, 0, 0},
    {NSM_REDUCTION_NONE, SIGNED_WEIGHT, 0.0, 0.25, 0, CE_IN_PLACE, 0, 0, 0},
    {NSM_REDUCTION_MEAN, NO_WEIGHT, 0.0, 1.0, 0, CE_STRIDED, 0, 1, 0},
    {NSM_REDUCTION_NONE, POSITIVE_WEIGHT, 0.1, 1.0, 0, CE_CONTIGUOUS, 0, 1, 0},
    {NSM_REDUCTION_SUM, NO_WEIGHT, 1.0, 1.0, 0, CE_CONTIGUOUS, 0, 0, 0},
    {NSM_REDUCTION_NONE, NO_WEIGHT, 0.0, 1.0, 0, CE_CONTIGUOUS, 0, 0, 1},
    {NSM_REDUCTION_NONE, SIGNED_WEIGHT, 0.1, -0.5, 1, CE_STRIDED, 0, 1, 1},
    {NSM_REDUCTION_NONE, POSITIVE_WEIGHT, 0.2, 2.0, 0, CE_IN_PLACE, 0, 0, 1},
    {NSM_REDUCTION_NONE, NO_WEIGHT, 0.0, 1.0, 1, CE_LOSS_ONLY, 0, 0, 1},
};
#define HARD_CONFIG_COUNT ((int)(sizeof k_hard_configs / sizeof k_hard_configs[0]))

static void test_hard_case(dtype t, int64_t cols, int config_index)
{
    const hard_config* cfg = &k_hard_configs[config_index];
    const int64_t rows = CE_ROWS;
    int64_t ld_l = cfg->layout == CE_STRIDED ? cols + 3 : cfg->layout == CE_IN_PLACE ? cols + 1 : cols;
    int64_t ld_g = cfg->layout == CE_STRIDED ? cols + 1 : ld_l;
    uint64_t seed = case_seed((uint64_t)cols, (uint64_t)config_index, (uint64_t)t, 4);
    rng g = rng_new(seed);

    region target_mem = region_new(rows * sizeof(int64_t));
    int64_t* target = (int64_t*)target_mem.data;
    for (int64_t r = 0; r < rows; ++r) target[r] = rng_below(&g, cols);
    nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    options.reduction = cfg->reduction;
    options.label_smoothing = cfg->smoothing;
    options.grad_scale = cfg->grad_scale;
    if (cfg->ignore_a_class)
        options.ignore_index = target[0];
    else
        target[1] = -100;
    region upstream = upstream_gradients(t, cfg->per_row ? rows : 0, &g);
    if (cfg->per_row) options.grad_output = upstream.data;

    set_context("op=%s len=%lld rows=%lld ld_logits=%lld ld_grad=%lld layout=%s reduction=%s "
                "weight=%s label_smoothing=%g grad_scale=%g grad_output=%s ignore_index=%lld "
                "options=%s minus_inf=%d seed=%llu",
                op_name("cross_entropy", t), (long long)cols, (long long)rows, (long long)ld_l,
                (long long)ld_g, ce_layout_name(cfg->layout), reduction_name(cfg->reduction),
                weight_name(cfg->weight), cfg->smoothing, cfg->grad_scale,
                cfg->per_row ? "per-row" : "NULL", (long long)options.ignore_index,
                cfg->null_options ? "NULL" : "set", cfg->minus_inf, (unsigned long long)seed);

    matrix logits = matrix_new(t, rows, cols, ld_l);
    fill_ce_logits(&logits, cfg->minus_inf, target, &g);
    double* z = matrix_values(&logits);
    region weight_mem = region_new((size_t)cols * dtype_size(t));
    void* weight = NULL;
    if (cfg->weight != NO_WEIGHT) {
        weight = weight_mem.data;
        fill_weight(weight, t, cols, cfg->weight, &g);
    }

    /* The reference. */
    expectation e;
    e.grad = (double*)calloc((size_t)(rows * cols), sizeof(double));
    e.grad_tol = (double*)calloc((size_t)(rows * cols), sizeof(double));
    double divisor = 0.0;
    for (int64_t r = 0; r < rows; ++r)
        if (target[r] != options.ignore_index)
            divisor += weight ? get_element(t, weight, target[r]) : 1.0;
    double s = cfg->reduction == NSM_REDUCTION_MEAN ? cfg->grad_scale / divisor : cfg->grad_scale;
    double* y = (double*)malloc((size_t)cols * sizeof(double));
    for (int64_t r = 0; r < rows; ++r) {
        if (target[r] == options.ignore_index) {
            e.row_loss[r] = 0.0;
            e.row_tol[r] = 0.0; /* exactly 0, as is the gradient row */
            continue;
        }
        double eps = cfg->smoothing;
        for (int64_t j = 0; j < cols; ++j)
            y[j] = (eps / (double)cols) * (weight ? get_element(t, weight, j) : 1.0);
        y[target[r]] += (1.0 - eps) * (weight ? get_element(t, weight, target[r]) : 1.0);
        /* grad_r = grad_output[r]·(s·∂loss_r/∂z_r) */
        expect_row(t, z + r * cols, cols, y, cfg->per_row ? s * get_element(t, upstream.data, r) : s, (int)r, &e);
    }
    expect_reduction(cfg->reduction, rows, divisor, &e);

    /* The call. */
    region loss_mem = region_new((cfg->reduction == NSM_REDUCTION_NONE ? (size_t)rows : 1) * dtype_size(t));
    void* loss = cfg->layout == CE_GRAD_ONLY ? NULL : loss_mem.data;
    matrix grad_storage;
    matrix* grad = NULL;
    if (cfg->layout == CE_IN_PLACE)
        grad = &logits;
    else if (cfg->layout != CE_LOSS_ONLY) {
        grad_storage = matrix_new(t, rows, cols, ld_g);
        grad = &grad_storage;
    }
    snapshot logits_bytes = snapshot_take(logits.mem.data, logits.mem.bytes);
    snapshot upstream_bytes = snapshot_take(upstream.data, upstream.bytes);
    nsm_status status = call_cross_entropy(t, rows, cols, matrix_data(&logits), ld_l, target, weight,
                                           cfg->null_options ? NULL : &options, loss,
                                           grad ? matrix_data(grad) : NULL, ld_g);
    if (check(status == NSM_OK, "status %d (%s): %s", (int)status, nsm_status_string(status),
              nsm_last_error())) {
        check_results(t, cfg->reduction, rows, cols, loss, grad, &e);
        check(snapshot_unchanged(&upstream_bytes), "grad_output was modified");
        if (cfg->layout != CE_IN_PLACE)
            check(snapshot_unchanged(&logits_bytes), "the logits were modified");
        if (cfg->layout == CE_GRAD_ONLY) {
            const unsigned char* p = loss_mem.data;
            check(p[0] == SENTINEL_BYTE, "loss buffer written although loss == NULL was passed");
        }
    }

    snapshot_free(&logits_bytes);
    snapshot_free(&upstream_bytes);
    if (grad == &grad_storage) matrix_free(&grad_storage);
    region_free(&upstream);
    region_free(&loss_mem);
    region_free(&weight_mem);
    region_free(&target_mem);
    matrix_free(&logits);
    free(z);
    free(y);
    free(e.grad);
    free(e.grad_tol);
}

/* ---- soft targets --------------------------------------------------------------------------- */
typedef enum target_kind {
    TARGET_UNNORMALISED, /* uniform [0, 1], rows do not sum to 1 */
    TARGET_DISTRIBUTION, /* rows sum to 1 */
    TARGET_SPARSE,       /* mostly zeros; row 2 all zero */
    TARGET_ZERO_AT_MINUS_INF /* −inf logits where the target is 0: contributes 0 (xlogy) */
} target_kind;

static const char* target_name(target_kind k)
{
    switch (k) {
    case TARGET_UNNORMALISED: return "unnormalised";
    case TARGET_DISTRIBUTION: return "distribution";
    case TARGET_SPARSE: return "sparse";
    case TARGET_ZERO_AT_MINUS_INF: return "zero-at-minus-inf";
    }
    return "?";
}

typedef struct soft_config {
    nsm_reduction reduction;
    weight_kind weight;
    double smoothing;
    double grad_scale;
    ce_layout layout;
    target_kind targets;
    int null_options;
    int per_row; /* options.grad_output (reduction none) */
} soft_config;

static const soft_config k_soft_configs[] = {
    {NSM_REDUCTION_MEAN, NO_WEIGHT, 0.0, 1.0, CE_CONTIGUOUS, TARGET_DISTRIBUTION, 1, 0},
    {NSM_REDUCTION_SUM, NO_WEIGHT, 0.0, 1.0, CE_STRIDED, TARGET_UNNORMALISED, 0, 0},
    {NSM_REDUCTION_NONE, POSITIVE_WEIGHT, 0.1, 1.0, CE_STRIDED, TARGET_SPARSE, 0, 0},
    {NSM_REDUCTION_MEAN, POSITIVE_WEIGHT, 0.0, 0.5, CE_IN_PLACE, TARGET_UNNORMALISED, 0, 0},
    {NSM_REDUCTION_MEAN, SIGNED_WEIGHT, 0.2, -1.0, CE_IN_PLACE_TARGET, TARGET_DISTRIBUTION, 0, 0},
    {NSM_REDUCTION_NONE, NO_WEIGHT, 0.0, 1.0, CE_LOSS_ONLY, TARGET_SPARSE, 0, 0},
    {NSM_REDUCTION_SUM, POSITIVE_WEIGHT, 0.0, 2.0, CE_GRAD_ONLY, TARGET_DISTRIBUTION, 0, 0},
    {NSM_REDUCTION_NONE, NO_WEIGHT, 0.0, 1.0, CE_CONTIGUOUS, TARGET_ZERO_AT_MINUS_INF, 0, 0},
    {NSM_REDUCTION_MEAN, NO_WEIGHT, 1.0, 1.0, CE_CONTIGUOUS, TARGET_UNNORMALISED, 0, 0},
    {NSM_REDUCTION_NONE, NO_WEIGHT, 0.0, 1.0, CE_CONTIGUOUS, TARGET_DISTRIBUTION, 0, 1},
    {NSM_REDUCTION_NONE, SIGNED_WEIGHT, 0.2, -1.5, CE_IN_PLACE_TARGET, TARGET_SPARSE, 0, 1},
    {NSM_REDUCTION_NONE, POSITIVE_WEIGHT, 0.0, 0.5, CE_STRIDED, TARGET_UNNORMALISED, 0, 1},
};
#define SOFT_CONFIG_COUNT ((int)(sizeof k_soft_configs / sizeof k_soft_configs[0]))

static void fill_soft_targets(matrix* target, const matrix* logits, target_kind kind, rng* g)
{
    for (int64_t r = 0; r < target->rows; ++r) {
        double sum = 0.0;
        for (int64_t c = 0; c < target->cols; ++c) {
            double p = rng_uniform(g, 0.0, 1.0);
            if (kind == TARGET_SPARSE && (rng_below(g, 3) != 0 || r == 2)) p = 0.0;
            if (kind == TARGET_ZERO_AT_MINUS_INF && isinf(matrix_get(logits, r, c))) p = 0.0;
            matrix_set(target, r, c, p);
            sum += matrix_get(target, r, c);
        }
        if (kind == TARGET_DISTRIBUTION && sum > 0.0)
            for (int64_t c = 0; c < target->cols; ++c)
                matrix_set(target, r, c, matrix_get(target, r, c) / sum);
    }
}

static void test_soft_case(dtype t, int64_t cols, int config_index)
{
    const soft_config* cfg = &k_soft_configs[config_index];
    const int64_t rows = CE_ROWS;
    int64_t ld_l = cfg->layout == CE_STRIDED ? cols + 3 : cfg->layout == CE_IN_PLACE ? cols + 1 : cols;
    int64_t ld_t = cfg->layout == CE_STRIDED || cfg->layout == CE_IN_PLACE_TARGET ? cols + 2 : cols;
    int64_t ld_g = cfg->layout == CE_STRIDED ? cols + 1
                 : cfg->layout == CE_IN_PLACE ? ld_l
                 : cfg->layout == CE_IN_PLACE_TARGET ? ld_t
                 : cols;
    uint64_t seed = case_seed((uint64_t)cols, (uint64_t)config_index, (uint64_t)t, 5);
    rng g = rng_new(seed);
    set_context("op=%s len=%lld rows=%lld ld_logits=%lld ld_target=%lld ld_grad=%lld layout=%s "
                "reduction=%s weight=%s label_smoothing=%g grad_scale=%g grad_output=%s targets=%s "
                "options=%s seed=%llu",
                op_name("cross_entropy_soft", t), (long long)cols, (long long)rows, (long long)ld_l,
                (long long)ld_t, (long long)ld_g, ce_layout_name(cfg->layout),
                reduction_name(cfg->reduction), weight_name(cfg->weight), cfg->smoothing,
                cfg->grad_scale, cfg->per_row ? "per-row" : "NULL", target_name(cfg->targets),
                cfg->null_options ? "NULL" : "set", (unsigned long long)seed);

    matrix logits = matrix_new(t, rows, cols, ld_l);
    int64_t* keep = (int64_t*)malloc(rows * sizeof(int64_t));
    for (int64_t r = 0; r < rows; ++r) keep[r] = rng_below(&g, cols);
    fill_ce_logits(&logits, cfg->targets == TARGET_ZERO_AT_MINUS_INF, keep, &g);
    matrix target = matrix_new(t, rows, cols, ld_t);
    fill_soft_targets(&target, &logits, cfg->targets, &g);
    double* z = matrix_values(&logits);
    double* p = matrix_values(&target);
    region weight_mem = region_new((size_t)cols * dtype_size(t));
    void* weight = NULL;
    if (cfg->weight != NO_WEIGHT) {
        weight = weight_mem.data;
        fill_weight(weight, t, cols, cfg->weight, &g);
    }
    nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    options.reduction = cfg->reduction;
    options.label_smoothing = cfg->smoothing;
    options.grad_scale = cfg->grad_scale;
    region upstream = upstream_gradients(t, cfg->per_row ? rows : 0, &g);
    if (cfg->per_row) options.grad_output = upstream.data;

    /* The reference: ŷ_j = ((1 − ε)·p_j + ε/cols)·w_j. */
    expectation e;
    e.grad = (double*)calloc((size_t)(rows * cols), sizeof(double));
    e.grad_tol = (double*)calloc((size_t)(rows * cols), sizeof(double));
    double s = cfg->reduction == NSM_REDUCTION_MEAN ? cfg->grad_scale / (double)rows : cfg->grad_scale;
    double* y = (double*)malloc((size_t)cols * sizeof(double));
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < cols; ++j)
            y[j] = ((1.0 - cfg->smoothing) * p[r * cols + j] + cfg->smoothing / (double)cols) *
                   (weight ? get_element(t, weight, j) : 1.0);
        expect_row(t, z + r * cols, cols, y, cfg->per_row ? s * get_element(t, upstream.data, r) : s, (int)r, &e);
    }
    expect_reduction(cfg->reduction, rows, (double)rows, &e);

    region loss_mem = region_new((cfg->reduction == NSM_REDUCTION_NONE ? (size_t)rows : 1) * dtype_size(t));
    void* loss = cfg->layout == CE_GRAD_ONLY ? NULL : loss_mem.data;
    matrix grad_storage;
    matrix* grad = NULL;
    if (cfg->layout == CE_IN_PLACE)
        grad = &logits;
    else if (cfg->layout == CE_IN_PLACE_TARGET)
        grad = &target;
    else if (cfg->layout != CE_LOSS_ONLY) {
        grad_storage = matrix_new(t, rows, cols, ld_g);
        grad = &grad_storage;
    }
    snapshot logits_bytes = snapshot_take(logits.mem.data, logits.mem.bytes);
    snapshot target_bytes = snapshot_take(target.mem.data, target.mem.bytes);
    nsm_status status = call_cross_entropy_soft(t, rows, cols, matrix_data(&logits), ld_l,
                                                matrix_data(&target), ld_t, weight,
                                                cfg->null_options ? NULL : &options, loss,
                                                grad ? matrix_data(grad) : NULL, ld_g);
    if (check(status == NSM_OK, "status %d (%s): %s", (int)status, nsm_status_string(status),
              nsm_last_error())) {
        check_results(t, cfg->reduction, rows, cols, loss, grad, &e);
        if (cfg->layout != CE_IN_PLACE)
            check(snapshot_unchanged(&logits_bytes), "the logits were modified");
        if (cfg->layout != CE_IN_PLACE_TARGET)
            check(snapshot_unchanged(&target_bytes), "the target was modified");
    }

    snapshot_free(&logits_bytes);
    snapshot_free(&target_bytes);
    region_free(&upstream);
    if (grad == &grad_storage) matrix_free(&grad_storage);
    region_free(&loss_mem);
    region_free(&weight_mem);
    matrix_free(&target);
    matrix_free(&logits);
    free(keep);
    free(z);
    free(p);
    free(y);
    free(e.grad);
    free(e.grad_tol);
}

/* ---- numeric edges -------------------------------------------------------------------------- */
/* A dominant class as the label (hard, with and without weights) and as a one-hot soft target:
 * the loss w_t·log1p(others) and the gradient at the label −w_t·others/S within a few ulp. */
static void test_ce_dominant(dtype t, int soft)
{
    const char* op = op_name(soft ? "cross_entropy_soft" : "cross_entropy", t);
    nsm_cross_entropy_options none = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    none.reduction = NSM_REDUCTION_NONE;
    for (int i = 0; i < EDGE_LENGTH_COUNT; ++i)
        for (int weighted = 0; weighted < 2 - soft; ++weighted) {
            int64_t cols = k_edge_lengths[i], dominant[DOMINANT_ROWS], labels[DOMINANT_ROWS];
            set_context("op=%s dominant class len=%lld rows=%d weight=%s", op, (long long)cols, DOMINANT_ROWS,
                        weighted ? "positive" : "none");
            matrix logits = dominant_logits(t, cols, dominant);
            matrix target = matrix_new(t, DOMINANT_ROWS, cols, cols);
            matrix grad = matrix_new(t, DOMINANT_ROWS, cols, cols);
            region loss = region_new(DOMINANT_ROWS * dtype_size(t));
            region weight = region_new((size_t)cols * dtype_size(t));
            rng g = rng_new(case_seed((uint64_t)cols, 7, (uint64_t)t, 8));
            for (int64_t j = 0; j < cols; ++j) set_element(t, weight.data, j, rng_uniform(&g, 0.5, 2.0));
            for (int64_t r = 0; r < DOMINANT_ROWS; ++r) {
                labels[r] = dominant[r];
                for (int64_t c = 0; c < cols; ++c) matrix_set(&target, r, c, c == dominant[r] ? 1.0 : 0.0);
            }
            nsm_status status = soft
                ? call_cross_entropy_soft(t, DOMINANT_ROWS, cols, matrix_data(&logits), cols, matrix_data(&target), cols,
                                          NULL, &none, loss.data, matrix_data(&grad), cols)
                : call_cross_entropy(t, DOMINANT_ROWS, cols, matrix_data(&logits), cols, labels,
                                     weighted ? weight.data : NULL, &none, loss.data, matrix_data(&grad), cols);
            if (check(status == NSM_OK, "status %d: %s", (int)status, nsm_last_error())) {
                double* z = matrix_values(&logits);
                for (int64_t r = 0; r < DOMINANT_ROWS; ++r) {
                    int64_t at = dominant[r];
                    double w = weighted ? get_element(t, weight.data, at) : 1.0;
                    compensated_sum sum = {0.0, 0.0};
                    for (int64_t c = 0; c < cols; ++c)
                        if (c != at) sum_add(&sum, exp(z[r * cols + c] - z[r * cols + at]));
                    double others = sum_total(&sum);
                    double ref_loss = w * log1p(others), ref_grad = -w * others / (1.0 + others);
                    double got_loss = get_element(t, loss.data, r), got_grad = matrix_get(&grad, r, at);
                    check(ulp_error(t, got_loss, ref_loss) <= DOMINANT_ULPS, "row %lld: loss %.17g, exact %.17g (%.2f ulp)",
                          (long long)r, got_loss, ref_loss, ulp_error(t, got_loss, ref_loss));
                    check(ulp_error(t, got_grad, ref_grad) <= DOMINANT_ULPS,
                          "row %lld: gradient at the label %.17g, exact %.17g (%.2f ulp)", (long long)r, got_grad,
                          ref_grad, ulp_error(t, got_grad, ref_grad));
                }
                free(z);
            }
            region_free(&weight);
            region_free(&loss);
            matrix_free(&grad);
            matrix_free(&target);
            matrix_free(&logits);
        }
}

/* The flush rule on losses and gradients: rows [0, (0,) d, FAR_BELOW…] with label 0 (hard, and
 * one-hot soft targets); and the reduced (sum) loss of one such row. */
static void test_ce_flush(dtype t, int soft)
{
    const char* op = op_name(soft ? "cross_entropy_soft" : "cross_entropy", t);
    flush_tally tally = {0, 0}, reduced = {0, 0};
    nsm_cross_entropy_options none = NSM_CROSS_ENTROPY_OPTIONS_INIT, sum = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    none.reduction = NSM_REDUCTION_NONE;
    sum.reduction = NSM_REDUCTION_SUM;
    double rel = 4.0 * accuracy_unit(t);
    for (int i = 0; i < EDGE_LENGTH_COUNT; ++i) {
        int64_t cols = k_edge_lengths[i];
        set_context("op=%s flush rule len=%lld rows=%d", op, (long long)cols, 2 * FLUSH_OFFSET_COUNT);
        matrix logits = crossing_logits(t, cols);
        int64_t rows = logits.rows;
        matrix target = matrix_new(t, rows, cols, cols);
        matrix grad = matrix_new(t, rows, cols, cols);
        region loss = region_new((size_t)rows * dtype_size(t));
        int64_t* labels = (int64_t*)calloc((size_t)rows, sizeof(int64_t));
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) matrix_set(&target, r, c, c == 0 ? 1.0 : 0.0);
        double* z = matrix_values(&logits);
        double* y = (double*)calloc((size_t)cols, sizeof(double));
        double* ref = (double*)malloc((size_t)cols * sizeof(double));
        y[0] = 1.0;
        nsm_status status = soft
            ? call_cross_entropy_soft(t, rows, cols, matrix_data(&logits), cols, matrix_data(&target), cols, NULL, &none,
                                      loss.data, matrix_data(&grad), cols)
            : call_cross_entropy(t, rows, cols, matrix_data(&logits), cols, labels, NULL, &none, loss.data,
                                 matrix_data(&grad), cols);
        if (check(status == NSM_OK, "status %d: %s", (int)status, nsm_last_error()))
            for (int64_t r = 0; r < rows; ++r) {
                double ref_loss = ref_logsumexp(z + r * cols, cols) - z[r * cols];
                check_flushed(t, get_element(t, loss.data, r), ref_loss, rel, &tally, "loss", r, 0);
                ref_gradient(z + r * cols, y, cols, 1.0, ref);
                for (int64_t c = 0; c < cols; ++c)
                    if (!check_flushed(t, matrix_get(&grad, r, c), ref[c], rel, &tally, "grad", r, c)) break;
            }
        for (int64_t r = 0; r < FLUSH_OFFSET_COUNT; ++r) {
            const void* row = (const unsigned char*)matrix_data(&logits) + (size_t)(r * cols) * dtype_size(t);
            const void* row_target = (const unsigned char*)matrix_data(&target) + (size_t)(r * cols) * dtype_size(t);
            status = soft ? call_cross_entropy_soft(t, 1, cols, row, cols, row_target, cols, NULL, &sum, loss.data, NULL, cols)
                          : call_cross_entropy(t, 1, cols, row, cols, labels, NULL, &sum, loss.data, NULL, cols);
            if (check(status == NSM_OK, "sum of row %lld: status %d: %s", (long long)r, (int)status, nsm_last_error()))
                check_flushed(t, get_element(t, loss.data, 0), ref_logsumexp(z + r * cols, cols) - z[r * cols], rel, &reduced,
                              "sum loss", r, 0);
        }
        free(ref);
        free(y);
        free(z);
        free(labels);
        region_free(&loss);
        matrix_free(&grad);
        matrix_free(&target);
        matrix_free(&logits);
    }
    set_context("op=%s flush rule", op);
    check_tally(&tally, op);
    check_tally(&reduced, "reduced (sum) loss");
}

/* A weighted mean whose divisor Σ w_t is 0 (every label has weight 0) while the smoothing term is
 * not: the loss is NaN (header, PyTorch) and so is the gradient of every row it covers; an
 * ignored row keeps a zero gradient. */
static void test_ce_divisor_zero(dtype t)
{
    static const double logits_values[4][3] = {{0.25, -0.5, 1.0}, {1.5, 0.0, -1.0}, {0.0, 2.0, 0.5}, {3.0, 1.0, 2.0}};
    static const double weight_values[3] = {0.0, 1.0, 2.0};
    nsm_cross_entropy_options mean = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    mean.label_smoothing = 0.1;
    for (int with_ignored = 0; with_ignored < 2; ++with_ignored) {
        set_context("op=%s mean, weight [0, 1, 2], labels all 0%s, label_smoothing 0.1", op_name("cross_entropy", t),
                    with_ignored ? " but the last -100" : "");
        matrix logits = matrix_new(t, 4, 3, 3), grad = matrix_new(t, 4, 3, 3);
        region weight = region_new(3 * dtype_size(t)), loss = region_new(dtype_size(t));
        int64_t labels[4] = {0, 0, 0, with_ignored ? -100 : 0};
        for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 3; ++c) matrix_set(&logits, r, c, logits_values[r][c]);
        for (int c = 0; c < 3; ++c) set_element(t, weight.data, c, weight_values[c]);
        nsm_status status = call_cross_entropy(t, 4, 3, matrix_data(&logits), 3, labels, weight.data, &mean, loss.data,
                                               matrix_data(&grad), 3);
        if (check(status == NSM_OK, "status %d: %s", (int)status, nsm_last_error())) {
            check(isnan(get_element(t, loss.data, 0)), "loss %.9g, expected NaN", get_element(t, loss.data, 0));
            for (int r = 0; r < 4; ++r)
                for (int c = 0; c < 3; ++c) {
                    double g = matrix_get(&grad, r, c);
                    if (labels[r] == -100)
                        check(g == 0.0, "grad[%d,%d] of the ignored row = %.9g, expected 0", r, c, g);
                    else
                        check(isnan(g), "grad[%d,%d] = %.9g, expected NaN (as the loss)", r, c, g);
                }
        }
        region_free(&loss);
        region_free(&weight);
        matrix_free(&grad);
        matrix_free(&logits);
    }
}

/* float32 logits ±3e38 with label smoothing: max − z = 6e38 overflows float32, the loss
 * ε/C·Σ_j (lse − z_j) ≈ 3e37 (two classes) does not. Hard labels and one-hot soft targets. */
static void test_ce_near_float_max(int soft)
{
    const dtype t = F32;
    const double big = 3e38, eps = 0.1;
    nsm_cross_entropy_options none = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    none.reduction = NSM_REDUCTION_NONE;
    none.label_smoothing = eps;
    for (int i = 0; i < EDGE_LENGTH_COUNT; ++i) {
        int64_t cols = k_edge_lengths[i];
        set_context("op=%s len=%lld logits [%g, -%g...], label_smoothing %g, label on the large logit",
                    op_name(soft ? "cross_entropy_soft" : "cross_entropy", t), (long long)cols, big, big, eps);
        matrix logits = matrix_new(t, 1, cols, cols), target = matrix_new(t, 1, cols, cols), grad = matrix_new(t, 1, cols, cols);
        region loss = region_new(dtype_size(t));
        int64_t label = 0;
        for (int64_t c = 0; c < cols; ++c) {
            matrix_set(&logits, 0, c, c == 0 ? big : -big);
            matrix_set(&target, 0, c, c == 0 ? 1.0 : 0.0);
        }
        nsm_status status = soft
            ? call_cross_entropy_soft(t, 1, cols, matrix_data(&logits), cols, matrix_data(&target), cols, NULL, &none,
                                      loss.data, matrix_data(&grad), cols)
            : call_cross_entropy(t, 1, cols, matrix_data(&logits), cols, &label, NULL, &none, loss.data, matrix_data(&grad), cols);
        if (check(status == NSM_OK, "status %d: %s", (int)status, nsm_last_error())) {
            double z0 = matrix_get(&logits, 0, 0), z1 = matrix_get(&logits, 0, 1);
            double expected = eps / (double)cols * (double)(cols - 1) * (z0 - z1); /* lse = z0 exactly in float64 */
            double got = get_element(t, loss.data, 0);
            check(isfinite(got) && fabs(got - expected) <= 2e-6 * expected, "loss %.9g, expected %.9g", got, expected);
            for (int64_t c = 0; c < cols; ++c) {
                double ref = c == 0 ? 1.0 - (1.0 - eps + eps / (double)cols) : -eps / (double)cols;
                check(fabs(matrix_get(&grad, 0, c) - ref) <= 1e-6, "grad[%lld] = %.9g, expected %.9g", (long long)c,
                      matrix_get(&grad, 0, c), ref);
            }
        }
        region_free(&loss);
        matrix_free(&grad);
        matrix_free(&target);
        matrix_free(&logits);
    }
}

/* ---- options versions and per-row upstream gradients ------------------------------------------ */
/* nsm_cross_entropy_options as version 1 of the header declared it: it ends with grad_scale. */
typedef struct options_v1 {
    uint32_t struct_size;
    nsm_reduction reduction;
    int64_t ignore_index;
    double label_smoothing;
    double grad_scale;
} options_v1;

#define SMALL_ROWS 4
#define SMALL_COLS 7

/* One small call, hard labels {1, 2, −100, 6} or soft targets whose row 2 is all zero. */
static nsm_status small_call(dtype t, int soft, const nsm_cross_entropy_options* options, void* loss, void* grad)
{
    static const int64_t labels[SMALL_ROWS] = {1, 2, -100, 6};
    double z[SMALL_ROWS * SMALL_COLS], p[SMALL_ROWS * SMALL_COLS]; /* storage for either dtype */
    for (int i = 0; i < SMALL_ROWS * SMALL_COLS; ++i) {
        set_element(t, z, i, 0.375 * (double)(i % 11) - 1.5);
        set_element(t, p, i, i / SMALL_COLS == 2 ? 0.0 : 0.125 * (double)(i % 5));
    }
    return soft ? call_cross_entropy_soft(t, SMALL_ROWS, SMALL_COLS, z, SMALL_COLS, p, SMALL_COLS, NULL, options, loss, grad,
                                          SMALL_COLS)
                : call_cross_entropy(t, SMALL_ROWS, SMALL_COLS, z, SMALL_COLS, labels, NULL, options, loss, grad, SMALL_COLS);
}

/* A caller compiled against version 1 passes a 32-byte struct: accepted, with grad_output NULL.
 * The struct ends at a PROT_NONE page, so a read past its 32 bytes would crash the test. */
static void test_ce_version1_options(dtype t, int soft)
{
    set_context("op=%s version-1 options struct (32 bytes, ending at a guard page)",
                op_name(soft ? "cross_entropy_soft" : "cross_entropy", t));
    check(sizeof(options_v1) == 32 && offsetof(nsm_cross_entropy_options, grad_output) == 32,
          "version 1 is 32 bytes and grad_output follows it (sizeof %zu, offset %zu)", sizeof(options_v1),
          offsetof(nsm_cross_entropy_options, grad_output));
    region v1_mem = region_new(sizeof(options_v1));
    options_v1* v1 = (options_v1*)v1_mem.data;
    v1->struct_size = (uint32_t)sizeof(options_v1);
    v1->reduction = NSM_REDUCTION_NONE;
    v1->ignore_index = -100;
    v1->label_smoothing = 0.1;
    v1->grad_scale = 0.5;
    nsm_cross_entropy_options current = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    current.reduction = NSM_REDUCTION_NONE;
    current.label_smoothing = 0.1;
    current.grad_scale = 0.5;
    double loss_v1[SMALL_ROWS], grad_v1[SMALL_ROWS * SMALL_COLS]; /* storage for either dtype */
    double loss[SMALL_ROWS], grad[SMALL_ROWS * SMALL_COLS]; /* storage for either dtype */
    nsm_status status = small_call(t, soft, (const nsm_cross_entropy_options*)(const void*)v1, loss_v1, grad_v1);
    if (check(status == NSM_OK, "version 1: status %d: %s", (int)status, nsm_last_error())) {
        status = small_call(t, soft, &current, loss, grad);
        check(status == NSM_OK, "status %d: %s", (int)status, nsm_last_error());
        check(memcmp(loss, loss_v1, SMALL_ROWS * dtype_size(t)) == 0 &&
                  memcmp(grad, grad_v1, SMALL_ROWS * SMALL_COLS * dtype_size(t)) == 0,
              "version 1 gives other results than the same options in the current struct");
    }
    region_free(&v1_mem);
}

/* grad_output {0.5, NaN, NaN, inf}: row 0 is the bits of grad_scale 0.5 alone; row 1 is NaN;
 * row 2 (ignored label, or all-zero soft targets) stays 0; row 3 is non-finite everywhere. */
static void test_ce_nonfinite_upstream(dtype t, int soft)
{
    set_context("op=%s grad_output {0.5, NaN, NaN, inf}", op_name(soft ? "cross_entropy_soft" : "cross_entropy", t));
    double upstream[SMALL_ROWS]; /* storage for either dtype */
    set_element(t, upstream, 0, 0.5);
    set_element(t, upstream, 1, NAN);
    set_element(t, upstream, 2, NAN);
    set_element(t, upstream, 3, INFINITY);
    nsm_cross_entropy_options per_row = NSM_CROSS_ENTROPY_OPTIONS_INIT, half = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    per_row.reduction = half.reduction = NSM_REDUCTION_NONE;
    per_row.grad_output = upstream;
    half.grad_scale = 0.5;
    double loss[SMALL_ROWS], grad[SMALL_ROWS * SMALL_COLS]; /* storage for either dtype */
    double grad_half[SMALL_ROWS * SMALL_COLS];
    nsm_status status = small_call(t, soft, &per_row, loss, grad);
    nsm_status status_half = small_call(t, soft, &half, loss, grad_half);
    if (check(status == NSM_OK && status_half == NSM_OK, "status %d, %d: %s", (int)status, (int)status_half, nsm_last_error())) {
        check(memcmp(grad, grad_half, SMALL_COLS * dtype_size(t)) == 0,
              "row 0 (grad_output 0.5) differs from grad_scale 0.5");
        for (int c = 0; c < SMALL_COLS; ++c) {
            double nan_row = get_element(t, grad, SMALL_COLS + c), zero_row = get_element(t, grad, 2 * SMALL_COLS + c);
            double inf_row = get_element(t, grad, 3 * SMALL_COLS + c);
            check(isnan(nan_row), "grad[1,%d] = %g, expected NaN", c, nan_row);
            check(zero_row == 0.0, "grad[2,%d] = %g, expected 0 (a row that asks for nothing)", c, zero_row);
            check(!isfinite(inf_row), "grad[3,%d] = %g, expected non-finite", c, inf_row);
        }
    }
}

static int64_t ce_length_at(int index) /* 0..50: 1…49, 1000, 1001 */
{
    return index < 49 ? index + 1 : index == 49 ? 1000 : 1001;
}

void group_cross_entropy(void)
{
    for (int dt = 0; dt < 2; ++dt)
        for (int i = 0; i < 51; ++i)
            for (int k = 0; k < HARD_CONFIG_COUNT; ++k) test_hard_case((dtype)dt, ce_length_at(i), k);
    for (int dt = 0; dt < 2; ++dt) {
        test_ce_dominant((dtype)dt, 0);
        test_ce_flush((dtype)dt, 0);
        test_ce_divisor_zero((dtype)dt);
        test_ce_version1_options((dtype)dt, 0);
        test_ce_nonfinite_upstream((dtype)dt, 0);
    }
    test_ce_near_float_max(0);
}

void group_cross_entropy_soft(void)
{
    for (int dt = 0; dt < 2; ++dt)
        for (int i = 0; i < 51; ++i)
            for (int k = 0; k < SOFT_CONFIG_COUNT; ++k) test_soft_case((dtype)dt, ce_length_at(i), k);
    for (int dt = 0; dt < 2; ++dt) {
        test_ce_dominant((dtype)dt, 1);
        test_ce_flush((dtype)dt, 1);
        test_ce_version1_options((dtype)dt, 1);
        test_ce_nonfinite_upstream((dtype)dt, 1);
    }
    test_ce_near_float_max(1);
}
