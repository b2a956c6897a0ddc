// header_check.cpp — nativesoftmax.h compiles as C++ with -Wall -Wextra -Werror -pedantic, the
// functions link with C linkage, and the defaults initialiser works in C++.
#include "nativesoftmax.h"

#include <cstdio>
#include <cstring>

int main()
{
    nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    if (options.struct_size != sizeof options || options.reduction != NSM_REDUCTION_MEAN ||
        options.ignore_index != -100 || options.grad_scale != 1.0) {
        std::fprintf(stderr, "FAIL: NSM_CROSS_ENTROPY_OPTIONS_INIT does not give the documented defaults\n");
        return 1;
    }
    if (nsm_version_number() != NSM_VERSION_NUMBER ||
        std::strcmp(nsm_version_string(), NSM_VERSION_STRING) != 0) {
        std::fprintf(stderr, "FAIL: library version %s, header %s\n", nsm_version_string(),
                     NSM_VERSION_STRING);
        return 1;
    }
    std::printf("header_check (C++): ok, version %s\n", nsm_version_string());
    return 0;
}
