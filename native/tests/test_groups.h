/* test_groups.h — the harness's test groups; each is one CTest test per variant. */
#ifndef NSM_TEST_GROUPS_H
#define NSM_TEST_GROUPS_H

void group_softmax(void);        /* softmax, log_softmax: values, layouts, non-finite rows */
void group_backward(void);       /* softmax_backward, log_softmax_backward */
void group_jacobian(void);       /* softmax_jacobian */
void group_cross_entropy(void);  /* hard labels: reductions, weight, ignore_index, smoothing, … */
void group_cross_entropy_soft(void);
void group_cross_entropy_split(void); /* vocabulary split: partial, merge, finish */
void group_errors(void);         /* bad input: status, message, nothing written */
void group_misc(void);           /* status strings, versions, rows == 0, threads */
void group_reference(void);      /* the PyTorch cases of tests/reference/cases.txt */
void group_threads(void);        /* same bits at 1, 2, 7 threads; thread-count setting; fork */
void group_half(void);           /* the bfloat16 and float16 functions */
/* No usable variant (none present, or NATIVESOFTMAX_MAX_ISA not understood): every operation
 * fails with NSM_ERR_UNSUPPORTED_CPU; the message must contain `expected_text` if not NULL. */
void group_no_variant(const char* expected_text);

#endif
