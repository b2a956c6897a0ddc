/*
 * fake_variant.c — a shared library that looks like a NativeSoftmax variant to the dispatcher but
 * must never be run by it (the loader tests stage it under a variant's file name).
 *
 * It exports every NSM_API function of nativesoftmax.h (the list, NSM_FAKE_VARIANT_EXPORTS, is
 * generated from the header by CMake) and the variant marker NSM_FAKE_VARIANT_MARKER, e.g.
 * nsm_variant_v201 for "a variant of the next version". Every one of them, when called, reports
 * which function ran and aborts the process: a dispatcher that calls into a variant it should have
 * refused (to ask its version, say) fails the test on the spot, as a real variant of another
 * version would fail it later by starting its runtime and being unloaded under it.
 */
#include "fake_variant_exports.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NSM_FAKE_VARIANT_MARKER
#error "build with -DNSM_FAKE_VARIANT_MARKER=nsm_variant_v<version>"
#endif
#define NSM_STRING(x) NSM_STRING_(x)
#define NSM_STRING_(x) #x

static void trap(const char* name)
{
    static const char prefix[] = "FAIL: the dispatcher called ";
    static const char middle[] = "() of a fake variant (marked " NSM_STRING(NSM_FAKE_VARIANT_MARKER) ")\n";
    /* write(2), not stdio: the caller may be anywhere, on any stack. */
    if (write(STDERR_FILENO, prefix, sizeof prefix - 1) < 0 || write(STDERR_FILENO, name, strlen(name)) < 0 ||
        write(STDERR_FILENO, middle, sizeof middle - 1) < 0) {
        /* nothing more to say */
    }
    abort();
}

/* The signatures do not matter: none of these may ever be called. */
#define NSM_FAKE_EXPORT(name)                                                                      \
    __attribute__((visibility("default"))) void name(void);                                        \
    void name(void) { trap(#name); }
#define NSM_FAKE_EXPORT_EXPANDED(name) NSM_FAKE_EXPORT(name)
NSM_FAKE_VARIANT_EXPORTS(NSM_FAKE_EXPORT)
NSM_FAKE_EXPORT_EXPANDED(NSM_FAKE_VARIANT_MARKER)
