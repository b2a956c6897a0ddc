/* harness_support.c — see harness_support.h. */
#define _GNU_SOURCE /* MAP_ANONYMOUS, vsnprintf in C99 mode */
#include "harness_support.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const char* g_variant = "?";
uint64_t g_base_seed = 20240611u;

/* ---- context and failures ------------------------------------------------------------------ */
static char s_context[512];
static long s_failures;
static long s_checks;
#define PRINTED_FAILURES_MAX 40

void set_context(const char* format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(s_context, sizeof s_context, format, args);
    va_end(args);
}

const char* context(void)
{
    return s_context;
}

/* NSM_TEST_PRINT_FAILURES=N prints the first N failures instead (0: all). */
static long printed_failures_max(void)
{
    const char* text = getenv("NSM_TEST_PRINT_FAILURES");
    if (text == NULL || text[0] == '\0') return PRINTED_FAILURES_MAX;
    long n = strtol(text, NULL, 10);
    return n <= 0 ? 1000000000L : n;
}

static void vfail(const char* format, va_list args)
{
    static long limit = -1;
    if (limit < 0) limit = printed_failures_max();
    ++s_failures;
    if (s_failures > limit) {
        if (s_failures == limit + 1)
            fprintf(stderr, "FAIL: (further failures are counted, not printed)\n");
        return;
    }
    char detail[768];
    vsnprintf(detail, sizeof detail, format, args);
    fprintf(stderr, "FAIL: [%s variant=%s] %s\n", s_context, g_variant, detail);
}

void fail(const char* format, ...)
{
    va_list args;
    va_start(args, format);
    vfail(format, args);
    va_end(args);
}

int check(int ok, const char* format, ...)
{
    ++s_checks;
    if (!ok) {
        va_list args;
        va_start(args, format);
        vfail(format, args);
        va_end(args);
    }
    return ok;
}

long failure_count(void)
{
    return s_failures;
}

long check_count(void)
{
    return s_checks;
}

/* ---- random numbers ---------------------------------------------------------------------------- */
rng rng_new(uint64_t seed)
{
    rng g;
    g.state = seed;
    return g;
}

uint64_t rng_next(rng* g)
{
    uint64_t z = (g->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double rng_uniform(rng* g, double lo, double hi)
{
    double unit = (double)(rng_next(g) >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
    return lo + (hi - lo) * unit;
}

int64_t rng_below(rng* g, int64_t n)
{
    return (int64_t)(rng_next(g) % (uint64_t)n);
}

uint64_t case_seed(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    rng g = rng_new(g_base_seed ^ (a * 0x100000001B3ull) ^ (b << 20) ^ (c << 40) ^ (d * 0x9E37ull));
    return rng_next(&g);
}

/* ---- guarded buffers ------------------------------------------------------------------------- */
region region_new(size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (bytes + page - 1) / page;
    if (data_pages == 0) data_pages = 1;
    region r;
    r.map_bytes = (data_pages + 2) * page;
    void* map = mmap(NULL, r.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "harness: mmap of %zu bytes failed\n", r.map_bytes);
        exit(2);
    }
    r.map = (unsigned char*)map;
    if (mprotect(r.map, page, PROT_NONE) != 0 ||
        mprotect(r.map + (1 + data_pages) * page, page, PROT_NONE) != 0) {
        fprintf(stderr, "harness: mprotect failed\n");
        exit(2);
    }
    r.bytes = bytes;
    r.data = r.map + (1 + data_pages) * page - bytes;
    memset(r.data, SENTINEL_BYTE, bytes);
    return r;
}

void region_free(region* r)
{
    if (r->map != NULL) munmap(r->map, r->map_bytes);
    r->map = NULL;
    r->data = NULL;
}

snapshot snapshot_take(const void* where, size_t bytes)
{
    snapshot s;
    s.where = (const unsigned char*)where;
    s.bytes = bytes;
    s.copy = (unsigned char*)malloc(bytes ? bytes : 1);
    if (bytes) memcpy(s.copy, where, bytes);
    return s;
}

int snapshot_unchanged(const snapshot* s)
{
    return s->bytes == 0 || memcmp(s->copy, s->where, s->bytes) == 0;
}

void snapshot_free(snapshot* s)
{
    free(s->copy);
    s->copy = NULL;
}

/* ---- matrices ---------------------------------------------------------------------------------- */
const char* dtype_name(dtype t)
{
    return t == F32 ? "f32" : "f64";
}

size_t dtype_size(dtype t)
{
    return t == F32 ? sizeof(float) : sizeof(double);
}

size_t extent(int64_t rows, int64_t cols, int64_t ld)
{
    return rows == 0 ? 0 : (size_t)((rows - 1) * ld + cols);
}

matrix matrix_new(dtype t, int64_t rows, int64_t cols, int64_t ld)
{
    matrix m;
    m.type = t;
    m.rows = rows;
    m.cols = cols;
    m.ld = ld;
    m.mem = region_new(extent(rows, cols, ld) * dtype_size(t));
    return m;
}

void matrix_free(matrix* m)
{
    region_free(&m->mem);
}

void* matrix_data(const matrix* m)
{
    return m->mem.data;
}

double get_element(dtype t, const void* p, int64_t i)
{
    return t == F32 ? (double)((const float*)p)[i] : ((const double*)p)[i];
}

void set_element(dtype t, void* p, int64_t i, double v)
{
    if (t == F32)
        ((float*)p)[i] = (float)v;
    else
        ((double*)p)[i] = v;
}

double matrix_get(const matrix* m, int64_t r, int64_t c)
{
    return get_element(m->type, m->mem.data, r * m->ld + c);
}

void matrix_set(matrix* m, int64_t r, int64_t c, double v)
{
    set_element(m->type, m->mem.data, r * m->ld + c, v);
}

double* matrix_values(const matrix* m)
{
    double* v = (double*)malloc((size_t)(m->rows * m->cols + 1) * sizeof(double));
    for (int64_t r = 0; r < m->rows; ++r)
        for (int64_t c = 0; c < m->cols; ++c) v[r * m->cols + c] = matrix_get(m, r, c);
    return v;
}

void check_padding(const matrix* m, const char* name)
{
    size_t size = dtype_size(m->type);
    for (int64_t r = 0; r + 1 < m->rows; ++r) {
        const unsigned char* p = m->mem.data + (size_t)(r * m->ld + m->cols) * size;
        size_t bytes = (size_t)(m->ld - m->cols) * size;
        for (size_t i = 0; i < bytes; ++i)
            if (!check(p[i] == SENTINEL_BYTE,
                       "%s: padding of row %lld (between cols and ld) was written", name,
                       (long long)r))
                return;
    }
}

/* ---- dtype-generic calls ----------------------------------------------------------------------- */
nsm_status call_softmax(dtype t, int log, int64_t rows, int64_t cols, const void* in, int64_t ld_in,
                        void* out, int64_t ld_out)
{
    if (t == F32)
        return log ? nsm_log_softmax_f32(rows, cols, (const float*)in, ld_in, (float*)out, ld_out)
                   : nsm_softmax_f32(rows, cols, (const float*)in, ld_in, (float*)out, ld_out);
    return log ? nsm_log_softmax_f64(rows, cols, (const double*)in, ld_in, (double*)out, ld_out)
               : nsm_softmax_f64(rows, cols, (const double*)in, ld_in, (double*)out, ld_out);
}

nsm_status call_backward(dtype t, int log, int64_t rows, int64_t cols, const void* grad_output,
                         int64_t ld_grad_output, const void* output, int64_t ld_output,
                         void* grad_logits, int64_t ld_grad_logits)
{
    if (t == F32) {
        const float* g = (const float*)grad_output;
        const float* o = (const float*)output;
        float* d = (float*)grad_logits;
        return log ? nsm_log_softmax_backward_f32(rows, cols, g, ld_grad_output, o, ld_output, d,
                                                  ld_grad_logits)
                   : nsm_softmax_backward_f32(rows, cols, g, ld_grad_output, o, ld_output, d,
                                              ld_grad_logits);
    }
    const double* g = (const double*)grad_output;
    const double* o = (const double*)output;
    double* d = (double*)grad_logits;
    return log ? nsm_log_softmax_backward_f64(rows, cols, g, ld_grad_output, o, ld_output, d,
                                              ld_grad_logits)
               : nsm_softmax_backward_f64(rows, cols, g, ld_grad_output, o, ld_output, d,
                                          ld_grad_logits);
}

nsm_status call_jacobian(dtype t, int64_t cols, const void* logits, void* jacobian,
                         int64_t ld_jacobian)
{
    if (t == F32)
        return nsm_softmax_jacobian_f32(cols, (const float*)logits, (float*)jacobian, ld_jacobian);
    return nsm_softmax_jacobian_f64(cols, (const double*)logits, (double*)jacobian, ld_jacobian);
}

nsm_status call_cross_entropy(dtype t, int64_t rows, int64_t cols, const void* logits,
                              int64_t ld_logits, const int64_t* target, const void* weight,
                              const nsm_cross_entropy_options* options, void* loss, void* grad,
                              int64_t ld_grad)
{
    if (t == F32)
        return nsm_cross_entropy_f32(rows, cols, (const float*)logits, ld_logits, target,
                                     (const float*)weight, options, (float*)loss, (float*)grad,
                                     ld_grad);
    return nsm_cross_entropy_f64(rows, cols, (const double*)logits, ld_logits, target,
                                 (const double*)weight, options, (double*)loss, (double*)grad,
                                 ld_grad);
}

nsm_status call_cross_entropy_soft(dtype t, int64_t rows, int64_t cols, const void* logits,
                                   int64_t ld_logits, const void* target, int64_t ld_target,
                                   const void* weight, const nsm_cross_entropy_options* options,
                                   void* loss, void* grad, int64_t ld_grad)
{
    if (t == F32)
        return nsm_cross_entropy_soft_f32(rows, cols, (const float*)logits, ld_logits,
                                          (const float*)target, ld_target, (const float*)weight,
                                          options, (float*)loss, (float*)grad, ld_grad);
    return nsm_cross_entropy_soft_f64(rows, cols, (const double*)logits, ld_logits,
                                      (const double*)target, ld_target, (const double*)weight,
                                      options, (double*)loss, (double*)grad, ld_grad);
}

const char* op_name(const char* base, dtype t)
{
    static char names[8][64];
    static int next;
    char* name = names[next++ % 8];
    snprintf(name, sizeof names[0], "%s_%s", base, dtype_name(t));
    return name;
}

/* ---- comparison ---------------------------------------------------------------------------------- */
double accuracy_unit(dtype t)
{
    return t == F32 ? 1e-6 : 1e-12;
}

double flush_floor(dtype t)
{
    return t == F32 ? 1e-37 : 1e-300;
}

int agrees(dtype t, double got, double ref, double tol)
{
    if (t == F32 && fabs(ref) > FLT_MAX) ref = (double)(float)ref; /* ±inf once rounded */
    if (isnan(ref)) return isnan(got);
    if (isinf(ref)) return got == ref;
    if (!isfinite(got)) return 0;
    return fabs(got - ref) <= tol;
}

/* ---- references ---------------------------------------------------------------------------------- */
int ref_row_is_nan(const double* z, int64_t n)
{
    int any_finite_or_minus_inf = 0, all_minus_inf = 1;
    for (int64_t j = 0; j < n; ++j) {
        if (isnan(z[j]) || z[j] == INFINITY) return 1;
        if (z[j] != -INFINITY) all_minus_inf = 0;
        any_finite_or_minus_inf = 1;
    }
    return any_finite_or_minus_inf && all_minus_inf;
}

static double row_max(const double* z, int64_t n)
{
    double m = z[0];
    for (int64_t j = 1; j < n; ++j)
        if (z[j] > m) m = z[j];
    return m;
}

void sum_add(compensated_sum* s, double x)
{
    double t = s->sum + x;
    s->compensation += fabs(s->sum) >= fabs(x) ? (s->sum - t) + x : (x - t) + s->sum;
    s->sum = t;
}

double sum_total(const compensated_sum* s)
{
    return s->sum + s->compensation;
}

/* log Σ exp(z − m) as log1p(Σ over every element but the first maximum). */
static double log_sum_shifted(const double* z, int64_t n, double m)
{
    int64_t first = 0;
    while (first < n && z[first] != m) ++first;
    compensated_sum others = {0.0, 0.0};
    for (int64_t j = 0; j < n; ++j)
        if (j != first) sum_add(&others, exp(z[j] - m));
    return log1p(sum_total(&others));
}

double ref_logsumexp(const double* z, int64_t n)
{
    if (ref_row_is_nan(z, n)) return NAN;
    double m = row_max(z, n);
    return m + log_sum_shifted(z, n, m);
}

void ref_softmax(const double* z, int64_t n, double* o)
{
    if (ref_row_is_nan(z, n)) {
        for (int64_t j = 0; j < n; ++j) o[j] = NAN;
        return;
    }
    double m = row_max(z, n);
    compensated_sum sum = {0.0, 0.0};
    for (int64_t j = 0; j < n; ++j) sum_add(&sum, exp(z[j] - m));
    for (int64_t j = 0; j < n; ++j) o[j] = exp(z[j] - m) / sum_total(&sum);
}

void ref_log_softmax(const double* z, int64_t n, double* lo)
{
    if (ref_row_is_nan(z, n)) {
        for (int64_t j = 0; j < n; ++j) lo[j] = NAN;
        return;
    }
    double m = row_max(z, n);
    double log_sum = log_sum_shifted(z, n, m);
    for (int64_t j = 0; j < n; ++j) lo[j] = (z[j] - m) - log_sum;
}

void ref_gradient(const double* z, const double* y, int64_t n, double s, double* g)
{
    if (ref_row_is_nan(z, n)) {
        for (int64_t i = 0; i < n; ++i) g[i] = NAN;
        return;
    }
    double m = row_max(z, n);
    compensated_sum e_sum = {0.0, 0.0};
    for (int64_t j = 0; j < n; ++j) sum_add(&e_sum, exp(z[j] - m));
    for (int64_t i = 0; i < n; ++i) {
        compensated_sum y_rest = {0.0, 0.0}, e_rest = {0.0, 0.0};
        for (int64_t j = 0; j < n; ++j)
            if (j != i) {
                sum_add(&y_rest, y[j]);
                sum_add(&e_rest, exp(z[j] - m));
            }
        g[i] = s * (exp(z[i] - m) * sum_total(&y_rest) - y[i] * sum_total(&e_rest)) / sum_total(&e_sum);
    }
}

/* ---- numeric edges ---------------------------------------------------------------------------- */
const int64_t k_edge_lengths[EDGE_LENGTH_COUNT] = {2, 3, 5, 8, 9, 16, 17, 31, 33, 100};
const double k_flush_offsets[FLUSH_OFFSET_COUNT] = {-1.5, -0.7, -0.2, -0.01, -1e-4, -1e-5, -1e-6, 0.0,
                                                    1e-6, 1e-5, 1e-4, 0.01, 0.2, 0.7, 1.5};

double min_normal(dtype t)
{
    return t == F32 ? (double)FLT_MIN : DBL_MIN;
}

double ulp_error(dtype t, double got, double exact)
{
    return fabs(got - exact) / ldexp(1.0, ilogb(exact) - (t == F32 ? 23 : 52));
}

int check_flushed(dtype t, double got, double exact, double rel, flush_tally* tally, const char* what,
                  int64_t r, int64_t c)
{
    double m = min_normal(t), magnitude = fabs(exact);
    if (!check(got == 0.0 || fabs(got) >= m, "%s [%lld,%lld]: %.9g is subnormal (exact %.9g)", what,
               (long long)r, (long long)c, got, exact))
        return 0;
    int close = fabs(got - exact) <= rel * magnitude;
    if (magnitude >= m * (1.0 + 2.0 * rel)) {
        if (magnitude < 16.0 * m) ++tally->above;
        return check(close, "%s [%lld,%lld]: got %.9g, exact %.9g (relative tolerance %.1e)", what,
                     (long long)r, (long long)c, got, exact, rel);
    }
    if (magnitude < m * (1.0 - 2.0 * rel)) {
        if (magnitude > 0.0) ++tally->below;
        return check(got == 0.0, "%s [%lld,%lld]: got %.9g, exact %.9g is below the smallest normal "
                     "number: must be 0", what, (long long)r, (long long)c, got, exact);
    }
    return check(got == 0.0 || close, "%s [%lld,%lld]: got %.9g, exact %.9g (within rounding of the "
                 "smallest normal number): must be 0 or close", what, (long long)r, (long long)c, got, exact);
}

void check_tally(const flush_tally* tally, const char* what)
{
    check(tally->below > 0 && tally->above > 0,
          "%s: %ld outputs checked just below the smallest normal number, %ld just above (both must be > 0)",
          what, tally->below, tally->above);
}

matrix crossing_logits(dtype t, int64_t cols)
{
    int64_t rows = 2 * FLUSH_OFFSET_COUNT;
    matrix m = matrix_new(t, rows, cols, cols);
    for (int64_t r = 0; r < rows; ++r) {
        int64_t k = r < FLUSH_OFFSET_COUNT || cols < 3 ? 1 : 2;
        int64_t at = k + r % (cols - k);
        double d = log(min_normal(t) * (double)k) + k_flush_offsets[r % FLUSH_OFFSET_COUNT];
        for (int64_t c = 0; c < cols; ++c) matrix_set(&m, r, c, c < k ? 0.0 : c == at ? d : FAR_BELOW);
    }
    return m;
}

matrix dominant_logits(dtype t, int64_t cols, int64_t dominant[DOMINANT_ROWS])
{
    double big = t == F32 ? 20.0 : 40.0;
    matrix m = matrix_new(t, DOMINANT_ROWS, cols, cols);
    for (int64_t r = 0; r < DOMINANT_ROWS; ++r) {
        int64_t at = r % 3 == 0 ? 0 : r % 3 == 1 ? cols / 2 : cols - 1;
        dominant[r] = at;
        for (int64_t c = 0; c < cols; ++c)
            matrix_set(&m, r, c, c == at ? big : r < 3 ? 0.0 : -0.5 * (double)(c % 4));
    }
    return m;
}
