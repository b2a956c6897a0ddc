/* header_check.c — nativesoftmax.h compiles as C99 with -Wall -Wextra -Werror -pedantic, and its
 * version macros agree with the library. */
#include "nativesoftmax.h"

#include <stdio.h>

int main(void)
{
    nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    if (options.struct_size != sizeof options || options.reduction != NSM_REDUCTION_MEAN ||
        options.ignore_index != -100 || options.label_smoothing != 0.0 || options.grad_scale != 1.0) {
        fprintf(stderr, "FAIL: NSM_CROSS_ENTROPY_OPTIONS_INIT does not give the documented defaults\n");
        return 1;
    }
    if (nsm_version_number() != NSM_VERSION_NUMBER) {
        fprintf(stderr, "FAIL: library version %d, header %d\n", (int)nsm_version_number(),
                NSM_VERSION_NUMBER);
        return 1;
    }
    printf("header_check (C99): ok, version %s\n", nsm_version_string());
    return 0;
}
