/*
 * harness_support.h — the pieces every test group of the C harness shares: failure reporting with
 * the test's context, a seeded random generator, guarded buffers, dtype-generic element access and
 * calls, and the float64 reference implementations. C99.
 */
#ifndef NSM_HARNESS_SUPPORT_H
#define NSM_HARNESS_SUPPORT_H

#include "nativesoftmax.h"

#include <stddef.h>
#include <stdint.h>

/* ---- context and failures ------------------------------------------------------------------ */

/* Sets the context printed with every failure: op, row length, leading dimensions, layout, input
 * kind, variant and seed. Call it before each case. */
void set_context(const char* format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
const char* context(void);

/* Records a failure (printed with the context; the first 40 only). */
void fail(const char* format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Records one passed check; returns its argument so `if (!check(...))` reads naturally. */
int check(int ok, const char* format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
long failure_count(void);
long check_count(void);

extern const char* g_variant; /* nsm_isa() of the run, for messages. */
extern uint64_t g_base_seed;  /* NSM_TEST_SEED, default 20240611. */

/* ---- random numbers (splitmix64) ---------------------------------------------------------- */
typedef struct rng { uint64_t state; } rng;
rng rng_new(uint64_t seed);
uint64_t rng_next(rng* g);
double rng_uniform(rng* g, double lo, double hi);
int64_t rng_below(rng* g, int64_t n); /* uniform in [0, n) */
/* A per-case seed derived from the base seed and the case's parameters. */
uint64_t case_seed(uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* ---- guarded buffers ----------------------------------------------------------------------- */
#define SENTINEL_BYTE 0xA5

/* `bytes` bytes whose last byte sits just before a PROT_NONE page (and a PROT_NONE page before the
 * first page), filled with SENTINEL_BYTE: a write past the end crashes the test. */
typedef struct region {
    unsigned char* map;
    size_t map_bytes;
    unsigned char* data;
    size_t bytes;
} region;
region region_new(size_t bytes);
void region_free(region* r);

/* A copy of some bytes, to prove later that nothing changed them. */
typedef struct snapshot {
    const unsigned char* where;
    size_t bytes;
    unsigned char* copy;
} snapshot;
snapshot snapshot_take(const void* where, size_t bytes);
int snapshot_unchanged(const snapshot* s); /* 1 if the bytes are as they were */
void snapshot_free(snapshot* s);

/* ---- dtype-generic matrices ------------------------------------------------------------------ */
typedef enum dtype { F32, F64 } dtype;
const char* dtype_name(dtype t);
size_t dtype_size(dtype t);

typedef struct matrix {
    dtype type;
    int64_t rows, cols, ld;
    region mem; /* exactly (rows − 1)·ld + cols elements, guarded */
} matrix;

size_t extent(int64_t rows, int64_t cols, int64_t ld); /* elements; 0 when rows == 0 */
matrix matrix_new(dtype t, int64_t rows, int64_t cols, int64_t ld);
void matrix_free(matrix* m);
void* matrix_data(const matrix* m);
double matrix_get(const matrix* m, int64_t r, int64_t c);
void matrix_set(matrix* m, int64_t r, int64_t c, double v); /* rounds to the dtype */
/* The values as a dense rows × cols double array (malloc'd). */
double* matrix_values(const matrix* m);
/* Checks that the elements between cols and ld of every row still hold the sentinel. */
void check_padding(const matrix* m, const char* name);

double get_element(dtype t, const void* p, int64_t i);
void set_element(dtype t, void* p, int64_t i, double v);

/* ---- dtype-generic calls -------------------------------------------------------------------- */
nsm_status call_softmax(dtype t, int log, int64_t rows, int64_t cols, const void* in, int64_t ld_in,
                        void* out, int64_t ld_out);
nsm_status call_backward(dtype t, int log, int64_t rows, int64_t cols, const void* grad_output,
                         int64_t ld_grad_output, const void* output, int64_t ld_output,
                         void* grad_logits, int64_t ld_grad_logits);
nsm_status call_jacobian(dtype t, int64_t cols, const void* logits, void* jacobian,
                         int64_t ld_jacobian);
nsm_status call_cross_entropy(dtype t, int64_t rows, int64_t cols, const void* logits,
                              int64_t ld_logits, const int64_t* target, const void* weight,
                              const nsm_cross_entropy_options* options, void* loss, void* grad,
                              int64_t ld_grad);
nsm_status call_cross_entropy_soft(dtype t, int64_t rows, int64_t cols, const void* logits,
                                   int64_t ld_logits, const void* target, int64_t ld_target,
                                   const void* weight, const nsm_cross_entropy_options* options,
                                   void* loss, void* grad, int64_t ld_grad);
const char* op_name(const char* base, dtype t); /* "softmax" + F32 -> "softmax_f32" (static) */

/* ---- comparison -------------------------------------------------------------------------------- */
/* 1e-6 for float32, 1e-12 for float64: the relative accuracy unit of the tolerances. */
double accuracy_unit(dtype t);
/* The absolute floor for values flushed to zero (below FLT_MIN / DBL_MIN). */
double flush_floor(dtype t);
/* NaN reference → NaN result; ±inf reference (after rounding to the dtype) → the same infinity;
 * otherwise finite and |got − ref| <= tol. */
int agrees(dtype t, double got, double ref, double tol);

/* ---- float64 references ---------------------------------------------------------------------- */
/* Neumaier's compensated sum: its error does not grow with the number of terms (99 equal terms
 * summed plainly are off by tens of ulp, more than the few ulp some tests ask of the library). */
typedef struct compensated_sum {
    double sum, compensation;
} compensated_sum;
void sum_add(compensated_sum* s, double x);
double sum_total(const compensated_sum* s);

/* 1 when the row gives NaN everywhere (a NaN, a +inf, or only −inf), per the header. */
int ref_row_is_nan(const double* z, int64_t n);
/* m + log Σ exp(z − m), the log as log1p of the terms but one maximum (exact for a dominant
 * class); NaN for a NaN row. */
double ref_logsumexp(const double* z, int64_t n);
void ref_softmax(const double* z, int64_t n, double* o);
void ref_log_softmax(const double* z, int64_t n, double* lo);
/* s·(o_i·Σy − y_i) for every i, as s·(e_i·Σ_{j≠i} y_j − y_i·Σ_{j≠i} e_j)/Σe (e = exp(z − m)):
 * no 1/S − 1 cancellation at a dominant class. */
void ref_gradient(const double* z, const double* y, int64_t n, double s, double* g);

/* ---- numeric edges ---------------------------------------------------------------------------- */
/* The smallest normal number of the dtype: FLT_MIN or DBL_MIN. */
double min_normal(dtype t);
/* |got − exact| in ulps of exact's binade in the dtype. */
double ulp_error(dtype t, double got, double exact);

/* How many outputs a flush check saw just below and just above the smallest normal number
 * (within a factor 16): a test asserts both are non-zero, so that it really crossed it. */
typedef struct flush_tally {
    long below, above;
} flush_tally;
/* The header's flush rule for one output: never subnormal; ±0 when |exact| is below
 * m·(1 − 2·rel), within rel relative when above m·(1 + 2·rel), either in between. */
int check_flushed(dtype t, double got, double exact, double rel, flush_tally* tally, const char* what,
                  int64_t r, int64_t c);
void check_tally(const flush_tally* tally, const char* what);

/* Row lengths on both sides of every width's short-row range (Count ≤ n < 2·Count), and longer. */
#define EDGE_LENGTH_COUNT 10
extern const int64_t k_edge_lengths[EDGE_LENGTH_COUNT];
/* Offsets (natural log) from the input at which an output equals the smallest normal number. */
#define FLUSH_OFFSET_COUNT 15
extern const double k_flush_offsets[FLUSH_OFFSET_COUNT];
/* A logit whose exp(z − max) is 0 in either dtype. */
#define FAR_BELOW (-1000.0)
/* 2·FLUSH_OFFSET_COUNT rows [0, (0,) d, FAR_BELOW…] (cols ≥ 2): row r has k = 1 leading zero in
 * the first half, 2 in the second (when cols ≥ 3), then d = ln(m·k) + offset at a column that
 * moves with r: its probability e^d/(k + e^d), and for k = 1 the log-probability of class 0 and
 * the loss of label 0, cross the smallest normal number m. */
matrix crossing_logits(dtype t, int64_t cols);
/* 6 rows, each with one logit D (20 for float32, 40 for float64: the others' exps sum below an
 * ulp of 1) at column dominant[r] (start, middle, end, twice); the others 0 in rows 0–2 and
 * −0.5·(c mod 4) in rows 3–5. */
#define DOMINANT_ROWS 6
matrix dominant_logits(dtype t, int64_t cols, int64_t dominant[DOMINANT_ROWS]);
/* "A few ulp": the accuracy asked of results at a dominant class. */
#define DOMINANT_ULPS 4.0

#endif
