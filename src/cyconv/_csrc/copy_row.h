/* Copying the short rows of a gather (border strips beside an in-place
 * interior, the rows of small padded planes) without a libc call per row:
 * fixed-size memcpy calls, which compilers make single vector moves, the
 * last move placed back over bytes already copied. Plain C for the Cython
 * drivers; no validation; dst and src must not overlap. */
#ifndef CYCONV_COPY_ROW_H
#define CYCONV_COPY_ROW_H

#include <stddef.h>
#include <string.h>

/* Rows up to this long: longer ones go to memcpy, whose wider moves win. */
#define CYC_SHORT_ROW_BYTES 256

/* n bytes, a multiple of 4 (rows of float or double). */
static inline void cyc_copy_row(void *dst, const void *src, size_t n)
{
    char *d = (char *)dst;
    const char *s = (const char *)src;
    size_t i = 0;
    if (n > CYC_SHORT_ROW_BYTES) {
        memcpy(d, s, n);
        return;
    }
    if (n >= 16) {
        for (; i + 16 <= n; i += 16)
            memcpy(d + i, s + i, 16);
        if (i < n)
            memcpy(d + n - 16, s + n - 16, 16);
        return;
    }
    for (; i < n; i += 4)
        memcpy(d + i, s + i, 4);
}

#endif
