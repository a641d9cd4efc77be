/* Helpers shared by the C test programs of this folder (host.c, destroy_lines.c). */
#ifndef MQL_TEST_UTIL_H
#define MQL_TEST_UTIL_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "mqtt_line.h"

/* Borrows a NUL-terminated string as plugin text. */
static MqlStr str(const char *s)
{
    MqlStr out;
    out.ptr = (const uint8_t *)s;
    out.len = strlen(s);
    return out;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
