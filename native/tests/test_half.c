/*
 * test_half.c — the bfloat16 and float16 functions (nsm_<op>_bf16, nsm_<op>_f16) against float64
 * references computed from the same 16-bit inputs: every 16-bit output within the float32 bound
 * of its _f32 function plus one ulp of its type, never subnormal (the header's flush rule for the
 * 16-bit types); the float32 losses within the _f32 bounds. Row lengths around every width's
 * vector and step, a long row (≥ 8192: the chunked path), strided and in-place layouts, edge rows
 * (all equal, ±inf, NaN, huge, tiny), and bad input (status, nothing written).
 * The 16-bit encodings are written here from their definitions, independent of the library.
 */
#include "harness_support.h"
#include "test_groups.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum half_type { BF16, F16 } half_type;

static const char* half_name(half_type h) { return h == BF16 ? "bf16" : "f16"; }
static int mantissa_bits(half_type h) { return h == BF16 ? 7 : 10; }
static int min_exponent(half_type h) { return h == BF16 ? -126 : -14; }
static double half_min_normal(half_type h) { return ldexp(1.0, min_exponent(h)); }
static double half_max(half_type h) { return h == BF16 ? ldexp(2.0 - ldexp(1.0, -7), 127) : 65504.0; }

/* x rounded to the nearest value of the type, ties to even (rint in the default rounding mode). */
static double half_round(half_type h, double x)
{
    if (isnan(x) || isinf(x) || x == 0.0) return x;
    int e;
    frexp(fabs(x), &e); /* |x| = f·2^e, f in [0.5, 1) */
    e -= 1;
    if (e < min_exponent(h)) e = min_exponent(h);
    double quantum = ldexp(1.0, e - mantissa_bits(h));
    double r = rint(fabs(x) / quantum) * quantum;
    if (r > half_max(h)) r = INFINITY;
    return copysign(r, x);
}

/* One ulp of the type at |x|'s binade (its subnormal spacing below the smallest normal). */
static double half_ulp(half_type h, double x)
{
    int e = min_exponent(h);
    if (fabs(x) >= half_min_normal(h)) {
        frexp(fabs(x), &e);
        e -= 1;
    }
    return ldexp(1.0, e - mantissa_bits(h));
}

/* The bits of v, a value of the type (or NaN, ±inf). */
static uint16_t half_encode(half_type h, double v)
{
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    int p = mantissa_bits(h), exponent_bits = 15 - p, bias = (1 << (exponent_bits - 1)) - 1;
    uint16_t all_ones = (uint16_t)(((1 << exponent_bits) - 1) << p);
    double a = fabs(v);
    if (isnan(v)) return (uint16_t)(all_ones | (1 << (p - 1)));
    if (isinf(v)) return sign | all_ones;
    if (a == 0.0) return sign;
    if (a < half_min_normal(h)) return sign | (uint16_t)(a / ldexp(1.0, min_exponent(h) - p));
    int e;
    double f = frexp(a, &e); /* a = f·2^e: exponent e − 1, mantissa (2f − 1)·2^p */
    return sign | (uint16_t)((e - 1 + bias) << p) | (uint16_t)((2.0 * f - 1.0) * ldexp(1.0, p));
}

static double half_decode(half_type h, uint16_t bits)
{
    int p = mantissa_bits(h), exponent_bits = 15 - p, bias = (1 << (exponent_bits - 1)) - 1;
    int field = (bits >> p) & ((1 << exponent_bits) - 1);
    int mantissa = bits & ((1 << p) - 1);
    double sign = (bits & 0x8000) ? -1.0 : 1.0;
    if (field == (1 << exponent_bits) - 1) return mantissa ? NAN : sign * INFINITY;
    if (field == 0) return sign * ldexp((double)mantissa, 1 - bias - p);
    return sign * ldexp(1.0 + ldexp((double)mantissa, -p), field - bias);
}

/* The header's rule for one 16-bit output: never subnormal; NaN for NaN, the same infinity for an
 * infinite reference (after rounding); else within tol + 1 ulp, or 0 where the exact value lies
 * within that of the flush threshold. */
static void check_half(half_type h, uint16_t bits, double exact, double tol, const char* what,
                       int64_t r, int64_t c)
{
    double got = half_decode(h, bits);
    int exponent_zero = ((bits >> mantissa_bits(h)) & ((1 << (15 - mantissa_bits(h))) - 1)) == 0;
    if (!check(!exponent_zero || (bits & 0x7FFF) == 0, "%s %s [%lld,%lld]: 0x%04x is subnormal",
               half_name(h), what, (long long)r, (long long)c, bits))
        return;
    if (isnan(exact)) {
        check(isnan(got), "%s %s [%lld,%lld]: %.9g, expected NaN", half_name(h), what, (long long)r,
              (long long)c, got);
        return;
    }
    double rounded = half_round(h, exact);
    if (isinf(rounded) || isinf(exact)) {
        check(got == rounded || got == exact, "%s %s [%lld,%lld]: %.9g, expected %.9g", half_name(h),
              what, (long long)r, (long long)c, got, rounded);
        return;
    }
    double bound = tol + half_ulp(h, fabs(exact) + tol);
    int ok = fabs(got - exact) <= bound || (got == 0.0 && fabs(exact) <= half_min_normal(h) + bound);
    check(ok, "%s %s [%lld,%lld]: %.9g, exact %.9g (bound %.3g)", half_name(h), what, (long long)r,
          (long long)c, got, exact, bound);
}

typedef nsm_status (*row_fn)(int64_t, int64_t, const void*, int64_t, void*, int64_t);
typedef nsm_status (*backward_fn)(int64_t, int64_t, const void*, int64_t, const void*, int64_t,
                                  void*, int64_t);

static nsm_status call_forward(half_type h, int log, int64_t rows, int64_t cols, const uint16_t* in,
                               int64_t ld_in, uint16_t* out, int64_t ld_out)
{
    if (h == BF16)
        return log ? nsm_log_softmax_bf16(rows, cols, (const nsm_bfloat16*)in, ld_in, (nsm_bfloat16*)out, ld_out)
                   : nsm_softmax_bf16(rows, cols, (const nsm_bfloat16*)in, ld_in, (nsm_bfloat16*)out, ld_out);
    return log ? nsm_log_softmax_f16(rows, cols, (const nsm_float16*)in, ld_in, (nsm_float16*)out, ld_out)
               : nsm_softmax_f16(rows, cols, (const nsm_float16*)in, ld_in, (nsm_float16*)out, ld_out);
}

static nsm_status call_back(half_type h, int log, int64_t rows, int64_t cols, const uint16_t* g,
                            int64_t ld_g, const uint16_t* o, int64_t ld_o, uint16_t* out, int64_t ld_out)
{
    if (h == BF16)
        return log ? nsm_log_softmax_backward_bf16(rows, cols, (const nsm_bfloat16*)g, ld_g, (const nsm_bfloat16*)o, ld_o, (nsm_bfloat16*)out, ld_out)
                   : nsm_softmax_backward_bf16(rows, cols, (const nsm_bfloat16*)g, ld_g, (const nsm_bfloat16*)o, ld_o, (nsm_bfloat16*)out, ld_out);
    return log ? nsm_log_softmax_backward_f16(rows, cols, (const nsm_float16*)g, ld_g, (const nsm_float16*)o, ld_o, (nsm_float16*)out, ld_out)
               : nsm_softmax_backward_f16(rows, cols, (const nsm_float16*)g, ld_g, (const nsm_float16*)o, ld_o, (nsm_float16*)out, ld_out);
}

static nsm_status call_ce(half_type h, int64_t rows, int64_t cols, const uint16_t* z, int64_t ld_z,
                          const int64_t* target, const float* weight,
                          const nsm_cross_entropy_options* options, float* loss, uint16_t* grad, int64_t ld_grad)
{
    return h == BF16 ? nsm_cross_entropy_bf16(rows, cols, (const nsm_bfloat16*)z, ld_z, target, weight, options, loss, (nsm_bfloat16*)grad, ld_grad)
                     : nsm_cross_entropy_f16(rows, cols, (const nsm_float16*)z, ld_z, target, weight, options, loss, (nsm_float16*)grad, ld_grad);
}

static nsm_status call_ce_soft(half_type h, int64_t rows, int64_t cols, const uint16_t* z, int64_t ld_z,
                               const uint16_t* p, int64_t ld_p, const float* weight,
                               const nsm_cross_entropy_options* options, float* loss, uint16_t* grad, int64_t ld_grad)
{
    return h == BF16 ? nsm_cross_entropy_soft_bf16(rows, cols, (const nsm_bfloat16*)z, ld_z, (const nsm_bfloat16*)p, ld_p, weight, options, loss, (nsm_bfloat16*)grad, ld_grad)
                     : nsm_cross_entropy_soft_f16(rows, cols, (const nsm_float16*)z, ld_z, (const nsm_float16*)p, ld_p, weight, options, loss, (nsm_float16*)grad, ld_grad);
}

/* Edge kinds of a row of logits. */
enum { RANDOM, ALL_EQUAL, WITH_MINUS_INF, WITH_PLUS_INF, WITH_NAN, HUGE_VALUES, TINY_VALUES, KIND_COUNT };

/* rows × ld 16-bit matrix (guarded) with the row kind `kind` (RANDOM rows in [−spread, spread]). */
static uint16_t* half_logits(half_type h, region* mem, int64_t rows, int64_t cols, int64_t ld, int kind, rng* g)
{
    *mem = region_new((size_t)extent(rows, cols, ld) * 2);
    uint16_t* z = (uint16_t*)mem->data;
    double huge = h == BF16 ? 1e38 : 60000.0;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            double v = rng_uniform(g, -8.0, 8.0);
            if (kind == ALL_EQUAL) v = 1.5;
            if (kind == HUGE_VALUES) v = rng_uniform(g, -huge, huge);
            if (kind == TINY_VALUES) v = rng_uniform(g, -1e-3, 1e-3);
            z[r * ld + c] = half_encode(h, half_round(h, v));
        }
    int64_t c0 = rng_below(g, cols);
    for (int64_t r = 0; r < rows; ++r) {
        if (kind == WITH_MINUS_INF && cols > 1) z[r * ld + c0] = half_encode(h, -INFINITY);
        if (kind == WITH_PLUS_INF) z[r * ld + c0] = half_encode(h, INFINITY);
        if (kind == WITH_NAN) z[r * ld + c0] = half_encode(h, NAN);
    }
    return z;
}

static double* widened(half_type h, const uint16_t* a, int64_t rows, int64_t cols, int64_t ld)
{
    double* v = malloc((size_t)(rows * cols + 1) * sizeof(double));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) v[r * cols + c] = half_decode(h, a[r * ld + c]);
    return v;
}

static void forward_case(half_type h, int log, int64_t rows, int64_t cols, int in_place, int kind)
{
    rng g = rng_new(case_seed((uint64_t)cols, (uint64_t)(h * 4 + log * 2 + in_place), (uint64_t)kind, 7));
    int64_t ld_in = in_place ? cols + 1 : cols + 3, ld_out = in_place ? ld_in : cols;
    region zin, zout = {0};
    uint16_t* z = half_logits(h, &zin, rows, cols, ld_in, kind, &g);
    double* zv = widened(h, z, rows, cols, ld_in);
    uint16_t* out = z;
    if (!in_place) {
        zout = region_new((size_t)extent(rows, cols, ld_out) * 2);
        out = (uint16_t*)zout.data;
    }
    set_context("%s_%s cols=%lld rows=%lld kind=%d %s", log ? "log_softmax" : "softmax", half_name(h),
                (long long)cols, (long long)rows, kind, in_place ? "in-place" : "strided");
    nsm_status s = call_forward(h, log, rows, cols, z, ld_in, out, ld_out);
    if (check(s == NSM_OK, "status %d: %s", s, nsm_last_error())) {
        double* e = malloc((size_t)cols * sizeof(double));
        for (int64_t r = 0; r < rows; ++r) {
            const double* row = zv + r * cols;
            if (log) ref_log_softmax(row, cols, e); else ref_softmax(row, cols, e);
            for (int64_t c = 0; c < cols; ++c) {
                double tol = log ? 2e-6 * (1 + fabs(e[c])) : 1e-6 * fabs(e[c]);
                check_half(h, out[r * ld_out + c], e[c], tol, "forward", r, c);
            }
        }
        free(e);
    }
    free(zv);
    region_free(&zin);
    if (!in_place) region_free(&zout);
}

static void backward_case(half_type h, int log, int64_t rows, int64_t cols)
{
    rng g = rng_new(case_seed((uint64_t)cols, (uint64_t)(h * 2 + log), 3, 8));
    region gm, om, rm;
    uint16_t* gr = half_logits(h, &gm, rows, cols, cols + 2, RANDOM, &g);
    om = region_new((size_t)extent(rows, cols, cols) * 2);
    uint16_t* o = (uint16_t*)om.data;
    for (int64_t r = 0; r < rows; ++r) {
        double* z = malloc((size_t)cols * sizeof(double));
        double* y = malloc((size_t)cols * sizeof(double));
        for (int64_t c = 0; c < cols; ++c) z[c] = rng_uniform(&g, -4.0, 4.0);
        if (log) ref_log_softmax(z, cols, y); else ref_softmax(z, cols, y);
        for (int64_t c = 0; c < cols; ++c) o[r * cols + c] = half_encode(h, half_round(h, y[c]));
        free(z);
        free(y);
    }
    rm = region_new((size_t)extent(rows, cols, cols) * 2);
    uint16_t* out = (uint16_t*)rm.data;
    set_context("%s_backward_%s cols=%lld rows=%lld", log ? "log_softmax" : "softmax", half_name(h),
                (long long)cols, (long long)rows);
    nsm_status s = call_back(h, log, rows, cols, gr, cols + 2, o, cols, out, cols);
    if (check(s == NSM_OK, "status %d: %s", s, nsm_last_error())) {
        double* gv = widened(h, gr, rows, cols, cols + 2);
        double* ov = widened(h, o, rows, cols, cols);
        for (int64_t r = 0; r < rows; ++r) {
            const double* gg = gv + r * cols;
            const double* oo = ov + r * cols;
            compensated_sum dot = {0, 0}, sum = {0, 0};
            double dot_abs = 0, sum_abs = 0;
            for (int64_t c = 0; c < cols; ++c) {
                sum_add(&dot, gg[c] * oo[c]);
                sum_add(&sum, gg[c]);
                dot_abs += fabs(gg[c] * oo[c]);
                sum_abs += fabs(gg[c]);
            }
            for (int64_t c = 0; c < cols; ++c) {
                double e, tol;
                if (log) {
                    e = gg[c] - exp(oo[c]) * sum_total(&sum);
                    tol = 1e-6 * (fabs(gg[c]) + exp(oo[c]) * sum_abs);
                } else {
                    e = oo[c] * (gg[c] - sum_total(&dot));
                    tol = 1e-6 * fabs(oo[c]) * (fabs(gg[c]) + dot_abs);
                }
                check_half(h, out[r * cols + c], e, tol, "backward", r, c);
            }
        }
        free(gv);
        free(ov);
    }
    region_free(&gm);
    region_free(&om);
    region_free(&rm);
}

static void jacobian_case(half_type h, int64_t cols)
{
    rng g = rng_new(case_seed((uint64_t)cols, (uint64_t)h, 5, 9));
    region zm, jm;
    uint16_t* z = half_logits(h, &zm, 1, cols, cols, RANDOM, &g);
    int64_t ld = cols + 1;
    jm = region_new((size_t)extent(cols, cols, ld) * 2);
    uint16_t* j = (uint16_t*)jm.data;
    set_context("softmax_jacobian_%s cols=%lld", half_name(h), (long long)cols);
    nsm_status s = h == BF16 ? nsm_softmax_jacobian_bf16(cols, (const nsm_bfloat16*)z, (nsm_bfloat16*)j, ld)
                             : nsm_softmax_jacobian_f16(cols, (const nsm_float16*)z, (nsm_float16*)j, ld);
    if (check(s == NSM_OK, "status %d: %s", s, nsm_last_error())) {
        double* zv = widened(h, z, 1, cols, cols);
        double* o = malloc((size_t)cols * sizeof(double));
        ref_softmax(zv, cols, o);
        for (int64_t a = 0; a < cols; ++a)
            for (int64_t b = 0; b < cols; ++b) {
                double e = o[a] * ((a == b ? 1.0 : 0.0) - o[b]);
                check_half(h, j[a * ld + b], e, 2e-6 * o[a] * ((a == b) + o[b]), "jacobian", a, b);
            }
        free(zv);
        free(o);
    }
    region_free(&zm);
    region_free(&jm);
}

/* Hard labels (one ignored row, weights) or soft targets, reduction none, gradient in place over
 * the logits for the hard labels; the float32 row losses and the 16-bit gradient. */
static void cross_entropy_case(half_type h, int soft, int64_t rows, int64_t cols, int kind)
{
    rng g = rng_new(case_seed((uint64_t)cols, (uint64_t)(h * 2 + soft), (uint64_t)kind, 10));
    region zm, pm, gm;
    int64_t ld = cols + 2;
    uint16_t* z = half_logits(h, &zm, rows, cols, ld, kind, &g);
    double* zv = widened(h, z, rows, cols, ld);
    uint16_t* p = half_logits(h, &pm, rows, cols, cols, RANDOM, &g);
    for (int64_t i = 0; i < rows * cols; ++i)
        p[i] = half_encode(h, half_round(h, rng_uniform(&g, 0.0, 2.0 / (double)cols)));
    double* pv = widened(h, p, rows, cols, cols);
    int64_t* target = malloc((size_t)rows * sizeof(int64_t));
    float* weight = malloc((size_t)cols * sizeof(float));
    float* loss = malloc((size_t)rows * sizeof(float));
    for (int64_t r = 0; r < rows; ++r) target[r] = r == 1 ? -100 : rng_below(&g, cols);
    for (int64_t c = 0; c < cols; ++c) weight[c] = (float)rng_uniform(&g, 0.5, 1.5);
    nsm_cross_entropy_options opt = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    opt.reduction = NSM_REDUCTION_NONE;
    uint16_t* grad = z; /* in place over the logits (hard labels) */
    if (soft) {
        gm = region_new((size_t)extent(rows, cols, ld) * 2);
        grad = (uint16_t*)gm.data;
    }
    set_context("cross_entropy%s_%s cols=%lld rows=%lld kind=%d", soft ? "_soft" : "", half_name(h),
                (long long)cols, (long long)rows, kind);
    nsm_status s = soft ? call_ce_soft(h, rows, cols, z, ld, p, cols, weight, &opt, loss, grad, ld)
                        : call_ce(h, rows, cols, z, ld, target, weight, &opt, loss, grad, ld);
    if (check(s == NSM_OK, "status %d: %s", s, nsm_last_error())) {
        double* y = malloc((size_t)cols * sizeof(double));
        double* e = malloc((size_t)cols * sizeof(double));
        for (int64_t r = 0; r < rows; ++r) {
            const double* zr = zv + r * cols;
            double mass = 0;
            for (int64_t c = 0; c < cols; ++c) {
                y[c] = soft ? pv[r * cols + c] * (double)weight[c]
                            : (c == target[r] ? (double)weight[c] : 0.0);
                mass += fabs(y[c]);
            }
            double lse = ref_logsumexp(zr, cols), exact_loss = 0, loss_scale = 0;
            for (int64_t c = 0; c < cols; ++c)
                if (y[c] != 0) {
                    exact_loss += y[c] * (lse - zr[c]);
                    loss_scale += fabs(y[c]) * (1 + fabs(lse - zr[c]));
                }
            if (!soft && target[r] == -100) exact_loss = 0;
            if (ref_row_is_nan(zr, cols) && !(!soft && target[r] == -100)) exact_loss = NAN;
            double tol = 2e-6 * loss_scale + 2e-6;
            if (isnan(exact_loss))
                check(isnan(loss[r]), "loss[%lld] %.9g, expected NaN", (long long)r, (double)loss[r]);
            else if (isinf(exact_loss) || fabs(exact_loss) > 3.4028234663852886e38) /* beyond FLT_MAX */
                check((double)loss[r] == copysign(INFINITY, exact_loss), "loss[%lld] %.9g, expected %g", (long long)r,
                      (double)loss[r], exact_loss);
            else
                check(fabs((double)loss[r] - exact_loss) <= tol, "loss[%lld] %.9g, exact %.9g", (long long)r,
                      (double)loss[r], exact_loss);
            if (!soft && target[r] == -100) {
                for (int64_t c = 0; c < cols; ++c)
                    check(grad[r * ld + c] == 0, "ignored row's grad[%lld] is 0x%04x", (long long)c, grad[r * ld + c]);
                continue;
            }
            ref_gradient(zr, y, cols, 1.0, e);
            for (int64_t c = 0; c < cols; ++c) check_half(h, grad[r * ld + c], e[c], 1e-6 * mass, "grad", r, c);
        }
        free(y);
        free(e);
    }
    if (soft) region_free(&gm);
    free(zv);
    free(pv);
    free(target);
    free(weight);
    free(loss);
    region_free(&zm);
    region_free(&pm);
}

/* Bad input: the right status, and neither the output nor the loss written. */
static void bad_input_cases(half_type h)
{
    int64_t rows = 3, cols = 5;
    region zm, om;
    rng g = rng_new(case_seed(1, (uint64_t)h, 2, 11));
    uint16_t* z = half_logits(h, &zm, rows, cols, cols, RANDOM, &g);
    om = region_new((size_t)(rows * cols) * 2);
    uint16_t* out = (uint16_t*)om.data;
    snapshot before = snapshot_take(out, (size_t)(rows * cols) * 2);
    set_context("bad input %s", half_name(h));
    check(call_forward(h, 0, rows, cols, NULL, cols, out, cols) == NSM_ERR_NULL_POINTER, "NULL logits");
    check(call_forward(h, 0, rows, cols, z, cols - 1, out, cols) == NSM_ERR_INVALID_LEADING_DIM, "ld < cols");
    check(call_forward(h, 0, rows, 0, z, cols, out, cols) == NSM_ERR_INVALID_SHAPE, "cols 0");
    /* partial overlap: one element (2 bytes) along */
    check(call_forward(h, 1, rows, cols, z, cols, z + 1, cols) == NSM_ERR_OVERLAP, "overlap");
    check(call_back(h, 0, rows, cols, z, cols, z, cols, z + 1, cols) == NSM_ERR_OVERLAP, "backward overlap");
    int64_t target[3] = {0, 5, 1};
    float loss[3] = {-1, -1, -1};
    nsm_cross_entropy_options opt = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    opt.reduction = NSM_REDUCTION_NONE;
    check(call_ce(h, rows, cols, z, cols, target, NULL, &opt, loss, out, cols) == NSM_ERR_LABEL_OUT_OF_RANGE, "label 5");
    /* a float32 loss that overlaps the 16-bit grad: the bytes are compared */
    target[1] = 2;
    check(call_ce(h, rows, cols, z, cols, target, NULL, &opt, (float*)(void*)(out + 4), out, cols) == NSM_ERR_OVERLAP,
          "loss overlapping grad");
    float bad_weight[5] = {1, 1, NAN, 1, 1};
    check(call_ce(h, rows, cols, z, cols, target, bad_weight, &opt, loss, out, cols) == NSM_ERR_INVALID_ARGUMENT, "NaN weight");
    check(call_ce_soft(h, rows, cols, z, cols, z, cols - 1, NULL, &opt, loss, out, cols) == NSM_ERR_INVALID_LEADING_DIM,
          "soft ld_target");
    check(snapshot_unchanged(&before), "an output was written by a failed call");
    check(loss[0] == -1 && loss[1] == -1 && loss[2] == -1, "a loss was written by a failed call");
    check(strlen(nsm_last_error()) > 0, "no message");
    snapshot_free(&before);
    region_free(&zm);
    region_free(&om);
}

/* The same bits at 1, 2 and 7 threads (rows cut into blocks, a long row into chunks): softmax,
 * log_softmax and the cross-entropy with its reduced loss and gradient. */
static void same_bits_at_every_thread_count(half_type h, int64_t rows, int64_t cols)
{
    rng g = rng_new(case_seed((uint64_t)rows, (uint64_t)cols, (uint64_t)h, 12));
    size_t n = (size_t)(rows * cols);
    uint16_t* z = malloc(n * 2);
    uint16_t* out[3];
    uint16_t* grad[3];
    float loss[3];
    int64_t* target = malloc((size_t)rows * sizeof(int64_t));
    for (size_t i = 0; i < n; ++i) z[i] = half_encode(h, half_round(h, rng_uniform(&g, -8.0, 8.0)));
    for (int64_t r = 0; r < rows; ++r) target[r] = rng_below(&g, cols);
    static const int32_t counts[3] = {1, 2, 7};
    set_context("%s threads rows=%lld cols=%lld", half_name(h), (long long)rows, (long long)cols);
    for (int log = 0; log < 2; ++log) {
        for (int k = 0; k < 3; ++k) {
            nsm_set_num_threads(counts[k]);
            out[k] = malloc(n * 2);
            grad[k] = malloc(n * 2);
            check(call_forward(h, log, rows, cols, z, cols, out[k], cols) == NSM_OK, "forward: %s", nsm_last_error());
            check(call_ce(h, rows, cols, z, cols, target, NULL, NULL, &loss[k], grad[k], cols) == NSM_OK,
                  "cross_entropy: %s", nsm_last_error());
        }
        for (int k = 1; k < 3; ++k) {
            check(memcmp(out[0], out[k], n * 2) == 0, "%s differs at %d threads", log ? "log_softmax" : "softmax", counts[k]);
            check(memcmp(grad[0], grad[k], n * 2) == 0, "grad differs at %d threads", counts[k]);
            check(memcmp(&loss[0], &loss[k], sizeof(float)) == 0, "loss differs at %d threads", counts[k]);
        }
        for (int k = 0; k < 3; ++k) {
            free(out[k]);
            free(grad[k]);
        }
    }
    nsm_set_num_threads(0);
    free(z);
    free(target);
}

/* ---- PyTorch's results (tests/reference/half_cases.txt) ------------------------------------
 * Inputs that are values of the 16-bit type and PyTorch's float64 results from them
 * (tests/reference/make_half_reference_cases.py), checked with the bounds used above. The file is
 * named by NSM_HALF_REFERENCE_CASES (CTest sets it); this is how the arm64 variant, under qemu,
 * meets PyTorch's numbers. */

/* Reads "KEY v1 v2 …" of count values into a malloc'd array; NULL (and a failure) if malformed. */
static double* read_line(FILE* f, const char* name, const char* key, int64_t count)
{
    char token[64];
    if (fscanf(f, "%63s", token) != 1 || strcmp(token, key) != 0) {
        fail("half cases: %s: expected \"%s\", found \"%s\"", name, key, token);
        return NULL;
    }
    double* v = malloc((size_t)(count > 0 ? count : 1) * sizeof(double));
    for (int64_t i = 0; i < count; ++i)
        if (fscanf(f, "%63s", token) != 1) {
            fail("half cases: %s: %s ends after %lld values", name, key, (long long)i);
            free(v);
            return NULL;
        }
        else v[i] = strtod(token, NULL);
    return v;
}

static uint16_t* encoded(half_type h, const double* v, int64_t count)
{
    uint16_t* e = malloc((size_t)(count > 0 ? count : 1) * sizeof(uint16_t));
    for (int64_t i = 0; i < count; ++i) e[i] = half_encode(h, v[i]);
    return e;
}

/* One case; returns the bit of its operation in the "seen" mask, 0 when the record is malformed. */
static int pytorch_case(FILE* f, const char* name, const char* op, half_type h, int64_t rows, int64_t cols)
{
    int64_t n = rows * cols;
    double *a = NULL, *b = NULL, *want = NULL, *want_grad = NULL;
    int bit = 0;
    set_context("group=half PyTorch case %s (tests/reference/half_cases.txt)", name);
    if (strcmp(op, "softmax") == 0 || strcmp(op, "log_softmax") == 0) {
        int log = op[0] == 'l';
        if ((a = read_line(f, name, "logits", n)) && (want = read_line(f, name, "output", n))) {
            uint16_t *z = encoded(h, a, n), *out = calloc((size_t)n, 2);
            nsm_status s = call_forward(h, log, rows, cols, z, cols, out, cols);
            if (check(s == NSM_OK, "%s: status %d: %s", name, s, nsm_last_error()))
                for (int64_t i = 0; i < n; ++i)
                    check_half(h, out[i], want[i], log ? 2e-6 * (1 + fabs(want[i])) : 1e-6 * fabs(want[i]),
                               name, i / cols, i % cols);
            free(z), free(out);
            bit = 1 << log;
        }
    } else if (strcmp(op, "softmax_backward") == 0 || strcmp(op, "log_softmax_backward") == 0) {
        int log = op[0] == 'l';
        if ((a = read_line(f, name, "grad_output", n)) && (b = read_line(f, name, "output", n))
            && (want = read_line(f, name, "grad", n))) {
            uint16_t *gr = encoded(h, a, n), *o = encoded(h, b, n), *out = calloc((size_t)n, 2);
            nsm_status s = call_back(h, log, rows, cols, gr, cols, o, cols, out, cols);
            if (check(s == NSM_OK, "%s: status %d: %s", name, s, nsm_last_error()))
                for (int64_t r = 0; r < rows; ++r) {
                    double dot_abs = 0, sum_abs = 0;
                    for (int64_t c = 0; c < cols; ++c) {
                        dot_abs += fabs(a[r * cols + c] * b[r * cols + c]);
                        sum_abs += fabs(a[r * cols + c]);
                    }
                    for (int64_t c = 0; c < cols; ++c) {
                        double g = a[r * cols + c], y = b[r * cols + c];
                        double tol = log ? 1e-6 * (fabs(g) + exp(y) * sum_abs) : 1e-6 * fabs(y) * (fabs(g) + dot_abs);
                        check_half(h, out[r * cols + c], want[r * cols + c], tol, name, r, c);
                    }
                }
            free(gr), free(o), free(out);
            bit = 4 << log;
        }
    } else if (strcmp(op, "softmax_jacobian") == 0) {
        if ((a = read_line(f, name, "logits", cols)) && (b = read_line(f, name, "probabilities", cols))
            && (want = read_line(f, name, "jacobian", cols * cols))) {
            uint16_t *z = encoded(h, a, cols), *j = calloc((size_t)(cols * cols), 2);
            nsm_status s = h == BF16 ? nsm_softmax_jacobian_bf16(cols, (const nsm_bfloat16*)z, (nsm_bfloat16*)j, cols)
                                     : nsm_softmax_jacobian_f16(cols, (const nsm_float16*)z, (nsm_float16*)j, cols);
            if (check(s == NSM_OK, "%s: status %d: %s", name, s, nsm_last_error()))
                for (int64_t x = 0; x < cols; ++x)
                    for (int64_t y = 0; y < cols; ++y)
                        check_half(h, j[x * cols + y], want[x * cols + y], 2e-6 * b[x] * ((x == y) + b[y]), name, x, y);
            free(z), free(j);
            bit = 16;
        }
    } else if (strcmp(op, "cross_entropy") == 0 || strcmp(op, "cross_entropy_soft") == 0) {
        int soft = op[13] == '_';
        double* loss_want = NULL;
        if ((a = read_line(f, name, "logits", n)) && (b = read_line(f, name, "target", soft ? n : rows))
            && (loss_want = read_line(f, name, "loss", rows)) && (want_grad = read_line(f, name, "grad", n))) {
            uint16_t *z = encoded(h, a, n), *grad = calloc((size_t)n, 2), *p = soft ? encoded(h, b, n) : NULL;
            int64_t* labels = calloc((size_t)rows, sizeof(int64_t));
            float* loss = calloc((size_t)rows, sizeof(float));
            for (int64_t r = 0; r < rows && !soft; ++r) labels[r] = (int64_t)b[r];
            nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
            options.reduction = NSM_REDUCTION_NONE;
            nsm_status s = soft ? call_ce_soft(h, rows, cols, z, cols, p, cols, NULL, &options, loss, grad, cols)
                                : call_ce(h, rows, cols, z, cols, labels, NULL, &options, loss, grad, cols);
            if (check(s == NSM_OK, "%s: status %d: %s", name, s, nsm_last_error()))
                for (int64_t r = 0; r < rows; ++r) {
                    double mass = 1.0;
                    if (soft) {
                        mass = 0;
                        for (int64_t c = 0; c < cols; ++c) mass += fabs(b[r * cols + c]);
                    }
                    double tol = 2e-6 * mass * (1 + fabs(loss_want[r])) + 2e-6;
                    check(fabs((double)loss[r] - loss_want[r]) <= tol, "%s: loss[%lld] %.9g, PyTorch %.17g", name,
                          (long long)r, (double)loss[r], loss_want[r]);
                    for (int64_t c = 0; c < cols; ++c)
                        check_half(h, grad[r * cols + c], want_grad[r * cols + c], 1e-6 * mass, name, r, c);
                }
            free(z), free(grad), free(p), free(labels), free(loss);
            bit = 32 << soft;
        }
        free(loss_want);
    } else {
        fail("half cases: %s: unknown operation %s", name, op);
    }
    free(a), free(b), free(want), free(want_grad);
    char token[64];
    if (bit && (fscanf(f, "%63s", token) != 1 || strcmp(token, "end") != 0)) {
        fail("half cases: %s: no \"end\"", name);
        bit = 0;
    }
    return bit;
}

static void pytorch_cases(void)
{
    const char* path = getenv("NSM_HALF_REFERENCE_CASES");
    FILE* f = path ? fopen(path, "r") : NULL;
    set_context("group=half file=%s", path ? path : "(NSM_HALF_REFERENCE_CASES unset)");
    if (!check(f != NULL, "open the half-precision cases file")) return;
    int cases[2] = {0, 0}, seen[2] = {0, 0};
    char token[64], name[128], op[32], type[8];
    long long rows, cols;
    while (fscanf(f, "%63s", token) == 1) {
        if (token[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n') {}
            continue;
        }
        if (strcmp(token, "case") != 0 || fscanf(f, "%127s %31s %7s %lld %lld", name, op, type, &rows, &cols) != 5
            || (strcmp(type, "bf16") != 0 && strcmp(type, "f16") != 0)) {
            fail("half cases: malformed case header near \"%s\"", token);
            break;
        }
        half_type h = strcmp(type, "bf16") == 0 ? BF16 : F16;
        int bit = pytorch_case(f, name, op, h, rows, cols);
        if (!bit) break;
        seen[h] |= bit;
        ++cases[h];
    }
    fclose(f);
    set_context("group=half file=%s", path);
    for (int h = BF16; h <= F16; ++h) {
        check(cases[h] >= 50, "%s: at least 50 PyTorch cases (read %d)", half_name((half_type)h), cases[h]);
        check(seen[h] == 127, "%s: every operation among the PyTorch cases (mask %d of 127)",
              half_name((half_type)h), seen[h]);
    }
}

void group_half(void)
{
    static const int64_t lengths[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 8195};
    const int count = (int)(sizeof lengths / sizeof lengths[0]);
    for (int h = BF16; h <= F16; ++h) {
        for (int i = 0; i < count; ++i) {
            int64_t cols = lengths[i], rows = cols >= 8192 ? 2 : 5;
            for (int log = 0; log < 2; ++log) {
                forward_case((half_type)h, log, rows, cols, 0, RANDOM);
                if (cols <= 1000) { /* the long row once per op is enough (and qemu is slow) */
                    forward_case((half_type)h, log, rows, cols, 1, RANDOM);
                    backward_case((half_type)h, log, rows, cols);
                }
            }
            cross_entropy_case((half_type)h, 0, rows, cols, RANDOM);
            cross_entropy_case((half_type)h, 1, rows, cols, RANDOM);
            if (cols <= 65) jacobian_case((half_type)h, cols);
        }
        for (int kind = ALL_EQUAL; kind < KIND_COUNT; ++kind)
            for (int i = 0; i < count; i += 3) {
                for (int log = 0; log < 2; ++log) forward_case((half_type)h, log, 4, lengths[i], 0, kind);
                cross_entropy_case((half_type)h, 0, 4, lengths[i], kind);
                cross_entropy_case((half_type)h, 1, 4, lengths[i], kind);
            }
        bad_input_cases((half_type)h);
        same_bits_at_every_thread_count((half_type)h, 3001, 10);
        same_bits_at_every_thread_count((half_type)h, 517, 999);
        same_bits_at_every_thread_count((half_type)h, 1, 300007);
    }
    pytorch_cases();
}
