/*
 * harness.c — the C test harness of libnativesoftmax.so (run by CTest, one test per group and
 * variant).
 *
 *   nsm_harness --variant avx2 --group softmax [--seed N]
 *       Runs one test group on the variant named (CTest also sets NATIVESOFTMAX_MAX_ISA to it).
 *       Exits 77 (CTest's skip) when this CPU cannot run that variant, and fails when the library
 *       uses another path than the one requested.
 *   nsm_harness --no-variant [--expect-message TEXT]
 *       Expects that no variant is usable: nsm_isa() == "none" and every operation fails with
 *       NSM_ERR_UNSUPPORTED_CPU (and a message containing TEXT).
 *
 * Groups: softmax backward jacobian cross_entropy cross_entropy_soft cross_entropy_split errors misc reference threads.
 * The harness refuses to run against a library whose version differs from the header's.
 */
#include "harness_support.h"
#include "test_groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_SKIP 77

typedef struct group {
    const char* name;
    void (*run)(void);
} group;

static const group k_groups[] = {
    {"softmax", group_softmax},
    {"backward", group_backward},
    {"jacobian", group_jacobian},
    {"cross_entropy", group_cross_entropy},
    {"cross_entropy_soft", group_cross_entropy_soft},
    {"cross_entropy_split", group_cross_entropy_split},
    {"errors", group_errors},
    {"misc", group_misc},
    {"reference", group_reference},
    {"threads", group_threads},
    {"half", group_half},
};
#define GROUP_COUNT ((int)(sizeof k_groups / sizeof k_groups[0]))

/* Whether this CPU can run a variant: the harness's own answer, independent of the library's. */
static int cpu_supports(const char* variant, int* known)
{
    *known = 1;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (strcmp(variant, "avx512") == 0) return __builtin_cpu_supports("x86-64-v4");
    if (strcmp(variant, "avx2") == 0) return __builtin_cpu_supports("x86-64-v3");
    if (strcmp(variant, "sse4.2") == 0) return __builtin_cpu_supports("x86-64-v2");
#elif defined(__aarch64__)
    if (strcmp(variant, "neon") == 0) return 1; /* Advanced SIMD is mandatory on AArch64 Linux */
#endif
    *known = 0;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: nsm_harness --variant ISA --group NAME [--seed N]\n"
                    "       nsm_harness --no-variant [--expect-message TEXT]\n"
                    "groups:");
    for (int i = 0; i < GROUP_COUNT; ++i) fprintf(stderr, " %s", k_groups[i].name);
    fprintf(stderr, "\n");
    return 2;
}

int main(int argc, char** argv)
{
    const char* variant = NULL;
    const char* group_name = NULL;
    const char* expect_message = NULL;
    int no_variant = 0;
    const char* seed_text = getenv("NSM_TEST_SEED");
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc)
            variant = argv[++i];
        else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
            group_name = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed_text = argv[++i];
        else if (strcmp(argv[i], "--expect-message") == 0 && i + 1 < argc)
            expect_message = argv[++i];
        else if (strcmp(argv[i], "--no-variant") == 0)
            no_variant = 1;
        else
            return usage();
    }
    if (seed_text != NULL) g_base_seed = strtoull(seed_text, NULL, 0);

    /* Refuse a header/library mismatch before anything else. */
    if (nsm_version_number() != NSM_VERSION_NUMBER) {
        fprintf(stderr, "harness: library version %d does not match the header's %d; refusing to run\n",
                (int)nsm_version_number(), NSM_VERSION_NUMBER);
        return 1;
    }

    g_variant = nsm_isa();
    if (no_variant) {
        printf("harness: no-variant check, nsm_isa() = \"%s\", seed %llu\n", g_variant,
               (unsigned long long)g_base_seed);
        group_no_variant(expect_message);
    } else {
        if (variant == NULL || group_name == NULL) return usage();
        int known = 0;
        int supported = cpu_supports(variant, &known);
        if (!known) {
            fprintf(stderr, "harness: unknown variant \"%s\" for this architecture\n", variant);
            return 2;
        }
        if (!supported) {
            printf("harness: SKIP: this CPU cannot run the %s variant\n", variant);
            return EXIT_SKIP;
        }
        if (strcmp(g_variant, variant) != 0) {
            float one = 0.0f, out = 0.0f; /* a call that can only fail for want of a variant */
            if (nsm_softmax_f32(1, 1, &one, 1, &out, 1) == NSM_OK) nsm_softmax_f32(1, 0, &one, 1, &out, 1);
            fprintf(stderr, "FAIL: requested variant %s (NATIVESOFTMAX_MAX_ISA=%s) but nsm_isa() = \"%s\"; "
                            "last error: %s\n",
                    variant, getenv("NATIVESOFTMAX_MAX_ISA") ? getenv("NATIVESOFTMAX_MAX_ISA") : "(unset)",
                    g_variant, nsm_last_error());
            return 1;
        }
        const group* chosen = NULL;
        for (int i = 0; i < GROUP_COUNT; ++i)
            if (strcmp(k_groups[i].name, group_name) == 0) chosen = &k_groups[i];
        if (chosen == NULL) return usage();
        printf("harness: group %s on variant %s (library %s), seed %llu\n", chosen->name, g_variant,
               nsm_version_string(), (unsigned long long)g_base_seed);
        chosen->run();
    }

    printf("harness: %ld checks, %ld failed\n", check_count(), failure_count());
    if (check_count() == 0) {
        fprintf(stderr, "FAIL: no check ran\n");
        return 1;
    }
    return failure_count() == 0 ? 0 : 1;
}
