/*
 * loader_relative.c — a program that loads the dispatcher by a relative path and then changes
 * directory before its first call (as a program that dlopen()s "lib/libnativesoftmax.so", or
 * Python's ctypes with a relative path, may do).
 *
 *   loader_relative LIBRARY DIRECTORY ISA
 *
 * dlopen()s LIBRARY (a relative path), chdir()s to DIRECTORY, then calls nsm_softmax_f32 on a
 * 2 × 4 matrix and expects success, probabilities within 1e-6 relative of a float64 softmax, and
 * nsm_isa() == ISA: the variants beside the dispatcher's file, not anything that the relative path
 * names from DIRECTORY (CTest puts a decoy there that aborts the process when called).
 * Exits 0 when every check passes, 1 otherwise.
 */
#include "nativesoftmax.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ROWS 2
#define COLS 4

int main(int argc, char** argv)
{
    if (argc != 4 || argv[1][0] == '/') {
        fprintf(stderr, "usage: loader_relative RELATIVE_LIBRARY_PATH DIRECTORY ISA\n");
        return 2;
    }
    const char* library = argv[1];
    const char* directory = argv[2];
    const char* expected_isa = argv[3];

    void* handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fprintf(stderr, "FAIL: dlopen(\"%s\"): %s\n", library, dlerror());
        return 1;
    }
    if (chdir(directory) != 0) {
        perror("FAIL: chdir");
        return 1;
    }
    printf("loader_relative: loaded %s, then moved to %s\n", library, directory);

    __typeof__(&nsm_softmax_f32) softmax = (__typeof__(&nsm_softmax_f32))dlsym(handle, "nsm_softmax_f32");
    __typeof__(&nsm_isa) isa = (__typeof__(&nsm_isa))dlsym(handle, "nsm_isa");
    __typeof__(&nsm_last_error) last_error = (__typeof__(&nsm_last_error))dlsym(handle, "nsm_last_error");
    if (softmax == NULL || isa == NULL || last_error == NULL) {
        fprintf(stderr, "FAIL: %s lacks nsm_softmax_f32, nsm_isa or nsm_last_error\n", library);
        return 1;
    }

    float logits[ROWS * COLS] = {1.0f, 2.0f, 3.0f, 4.0f, -1.5f, 0.0f, 0.25f, -8.0f};
    float probabilities[ROWS * COLS] = {0};
    nsm_status status = softmax(ROWS, COLS, logits, COLS, probabilities, COLS);
    int failures = 0;
    if (status != NSM_OK) {
        fprintf(stderr, "FAIL: nsm_softmax_f32 returned %d: %s\n", (int)status, last_error());
        ++failures;
    } else {
        for (int r = 0; r < ROWS; ++r) {
            const float* z = logits + r * COLS;
            double m = -INFINITY, sum = 0.0;
            for (int j = 0; j < COLS; ++j) m = fmax(m, z[j]);
            for (int j = 0; j < COLS; ++j) sum += exp((double)z[j] - m);
            for (int j = 0; j < COLS; ++j) {
                double exact = exp((double)z[j] - m) / sum;
                if (!(fabs(probabilities[r * COLS + j] - exact) <= 1e-6 * exact)) {
                    fprintf(stderr, "FAIL: probability [%d, %d] = %.9g, float64 reference %.9g\n", r, j,
                            (double)probabilities[r * COLS + j], exact);
                    ++failures;
                }
            }
        }
    }
    if (strcmp(isa(), expected_isa) != 0) {
        fprintf(stderr, "FAIL: nsm_isa() = \"%s\", expected \"%s\"\n", isa(), expected_isa);
        ++failures;
    }
    printf("loader_relative: nsm_isa() = \"%s\"; %s\n", isa(), failures == 0 ? "ok" : "FAILED");
    return failures == 0 ? 0 : 1;
}
