/* Large arrays through a NumPy memory handler (NEP 49) that keeps a few
 * freed blocks for the next allocation of about their size.
 *
 * Why: a block the C library takes fresh from the OS (glibc maps every
 * block over 32 MB anew, and unmaps it when freed) is faulted in and zeroed
 * by the kernel page by page as the call first writes it. On the project's
 * VM that cost 11 ms of a 35 ms 4096x4096 float32 5x5 convolve2d, the same
 * call into a reused block 24.5 ms. A loop over large images frees each
 * result before (or just after) it asks for the next, so keeping a few
 * freed blocks lets the next call write into pages already mapped.
 *
 * Every block carries a header before the pointer handed to NumPy: the
 * pointer malloc returned, the block's capacity and whether it starts on
 * a huge page. Blocks are 64-byte aligned, and can start at a chosen
 * offset within a 4 KB page (see cyc_cache_place_apart). Only blocks of at
 * least CYC_CACHE_MIN_BYTES are kept, at most CYC_CACHE_SLOTS of them and
 * `limit` bytes in all (the oldest go first).
 *
 * Huge pages: NumPy's own allocator asks Linux to back arrays of 4 MB and
 * more with 2 MB pages (madvise MADV_HUGEPAGE, unless numpy's
 * _set_madvise_hugepage turned that off), and a handler that replaces it
 * must ask too: without it a large result sat in 4 KB pages, one fault and
 * one TLB entry each. Blocks start on a 2 MB boundary (plus their offset
 * within the page) so that all of them can be huge pages. Measured (Zen 4,
 * one thread, against the same build without the advice): a loop keeping
 * its results (every block new) 1.4x (2048^2 float32 5x5) to 2.7x (2048^2
 * float64 3x3) as fast; reused blocks 1.10x at 2048^2 3x3, 1.05x at 4096^2
 * 5x5, 1.00-1.02x at 1024^2.
 *
 * A lock guards the slots: NumPy frees arrays on whatever thread drops
 * them. Nothing here raises or touches Python objects except the few
 * functions at the end, which run with the GIL held. */

#ifndef CYCONV_BLOCK_CACHE_H
#define CYCONV_BLOCK_CACHE_H

#define NPY_NO_DEPRECATED_API NPY_1_25_API_VERSION
#define NPY_TARGET_VERSION NPY_1_25_API_VERSION
#include <Python.h>
#include <pythread.h>
#include <numpy/arrayobject.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#define CYC_CACHE_SLOTS 4
#define CYC_CACHE_MIN_BYTES ((size_t)4 << 20)
#define CYC_CACHE_ALIGN 64
#define CYC_CACHE_PAGE 4096
#define CYC_CACHE_HUGE_PAGE ((size_t)2 << 20)

typedef struct {
    void *raw;           /* what malloc/calloc returned */
    size_t capacity;     /* bytes usable from the aligned pointer */
    int huge;            /* raw has CYC_CACHE_HUGE_PAGE more slack to start on one */
} cyc_block_header;

static struct {
    PyThread_type_lock lock;    /* NULL: nothing is kept */
    size_t limit;               /* bytes kept at most */
    size_t kept;                /* bytes kept now */
    int count;
    void *slot[CYC_CACHE_SLOTS];   /* oldest first */
} cyc_cache;

static cyc_block_header *cyc_header(void *p)
{
    return (cyc_block_header *)p - 1;
}

/* Where a block starts within its 4 KB page: -1 for the first 64-byte
 * aligned address, else this offset (a multiple of 64). Set just before an
 * allocation with the GIL held (cyc_cache_place_apart) and used by that
 * allocation only. A stale value can only cost speed, never correctness. */
static long cyc_next_phase = -1;

/* Advise huge pages for new blocks (NumPy's setting, passed on by
 * cyc_cache_set_hugepages with the GIL held before each allocation). */
static int cyc_hugepages = 1;

/* The block's pointer within the raw allocation (which holds the header,
 * `size` bytes, CYC_CACHE_PAGE of slack and, if `huge`, CYC_CACHE_HUGE_PAGE
 * more to start on a huge page), its header written before it. */
static void *cyc_place(char *raw, size_t size, long phase, int huge)
{
    uintptr_t start = (uintptr_t)(raw + sizeof(cyc_block_header));
    if (huge)
        start = (start + CYC_CACHE_HUGE_PAGE - 1) & ~(uintptr_t)(CYC_CACHE_HUGE_PAGE - 1);
    uintptr_t p = phase < 0
        ? start + (CYC_CACHE_ALIGN - start % CYC_CACHE_ALIGN) % CYC_CACHE_ALIGN
        : start + ((uintptr_t)phase - start % CYC_CACHE_PAGE + CYC_CACHE_PAGE) % CYC_CACHE_PAGE;
    cyc_header((void *)p)->raw = raw;
    cyc_header((void *)p)->capacity = size;
    cyc_header((void *)p)->huge = huge;
    return (void *)p;
}

static void *cyc_new_block(size_t size, int zeroed, long phase)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    int huge = cyc_hugepages && size >= CYC_CACHE_MIN_BYTES;
#else
    int huge = 0;
#endif
    size_t extra = sizeof(cyc_block_header) + CYC_CACHE_PAGE + (huge ? CYC_CACHE_HUGE_PAGE : 0);
    if (size > SIZE_MAX - extra)
        return NULL;
    char *raw = zeroed ? (char *)calloc(1, size + extra) : (char *)malloc(size + extra);
    if (raw == NULL)
        return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    long page = sysconf(_SC_PAGESIZE);
    if (huge && page > 0 && (page & (page - 1)) == 0) {
        /* The allocation's whole pages. A refusal (a kernel without THP) is
         * harmless. (2 MB is the huge page of x86-64 and of 4 KB-page
         * aarch64; elsewhere the advice is kept and the boundary is moot.) */
        uintptr_t first = ((uintptr_t)raw + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
        uintptr_t end = ((uintptr_t)raw + size + extra) & ~((uintptr_t)page - 1);
        if (end > first)
            (void)madvise((void *)first, end - first, MADV_HUGEPAGE);
    }
#endif
    return cyc_place(raw, size, phase, huge);
}

/* Take kept block i out of the slots (the lock held). */
static void *cyc_remove(int i)
{
    void *p = cyc_cache.slot[i];
    cyc_cache.count--;
    cyc_cache.kept -= cyc_header(p)->capacity;
    memmove(&cyc_cache.slot[i], &cyc_cache.slot[i + 1],
            (size_t)(cyc_cache.count - i) * sizeof(void *));
    return p;
}

/* A kept block of at least `size` bytes and not much more (a smaller
 * request would otherwise pin a far larger block), placed at `phase`, or
 * NULL. */
static void *cyc_take(size_t size, long phase)
{
    void *found = NULL;
    if (size < CYC_CACHE_MIN_BYTES || cyc_cache.lock == NULL)
        return NULL;
    PyThread_acquire_lock(cyc_cache.lock, WAIT_LOCK);
    for (int i = cyc_cache.count - 1; i >= 0; i--) {   /* the most recent first */
        size_t cap = cyc_header(cyc_cache.slot[i])->capacity;
        if (cap >= size && cap - size <= size / 4) {
            found = cyc_remove(i);
            break;
        }
    }
    PyThread_release_lock(cyc_cache.lock);
    if (found == NULL)
        return NULL;
    return cyc_place((char *)cyc_header(found)->raw, cyc_header(found)->capacity, phase,
                     cyc_header(found)->huge);
}

/* Keep block p if it is large and fits the limit, dropping the oldest kept
 * blocks to make room; free what is not kept (outside the lock). */
static void cyc_give_back(void *p)
{
    void *drop[CYC_CACHE_SLOTS + 1];
    int ndrop = 0;
    size_t cap = cyc_header(p)->capacity;
    if (cyc_cache.lock == NULL || cap < CYC_CACHE_MIN_BYTES) {
        free(cyc_header(p)->raw);
        return;
    }
    PyThread_acquire_lock(cyc_cache.lock, WAIT_LOCK);
    if (cap > cyc_cache.limit) {
        drop[ndrop++] = p;
    } else {
        while (cyc_cache.count == CYC_CACHE_SLOTS || cyc_cache.kept + cap > cyc_cache.limit)
            drop[ndrop++] = cyc_remove(0);   /* the oldest */
        cyc_cache.slot[cyc_cache.count++] = p;
        cyc_cache.kept += cap;
    }
    PyThread_release_lock(cyc_cache.lock);
    for (int i = 0; i < ndrop; i++)
        free(cyc_header(drop[i])->raw);
}

static void *cyc_handler_malloc(void *ctx, size_t size)
{
    (void)ctx;
    long phase = cyc_next_phase;
    cyc_next_phase = -1;
    void *p = cyc_take(size, phase);
    return p != NULL ? p : cyc_new_block(size, 0, phase);
}

static void *cyc_handler_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    if (elsize != 0 && nelem > SIZE_MAX / elsize)
        return NULL;
    size_t size = nelem * elsize;
    long phase = cyc_next_phase;
    cyc_next_phase = -1;
    void *p = cyc_take(size, phase);
    if (p != NULL) {
        memset(p, 0, size);   /* pages already mapped: faster than fresh zero pages */
        return p;
    }
    return cyc_new_block(size, 1, phase);
}

static void *cyc_handler_realloc(void *ctx, void *ptr, size_t new_size)
{
    if (ptr == NULL)
        return cyc_handler_malloc(ctx, new_size);
    size_t cap = cyc_header(ptr)->capacity;
    if (new_size <= cap)
        return ptr;
    void *q = cyc_handler_malloc(ctx, new_size);
    if (q == NULL)
        return NULL;
    memcpy(q, ptr, cap);
    cyc_give_back(ptr);
    return q;
}

static void cyc_handler_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    (void)size;
    if (ptr != NULL)
        cyc_give_back(ptr);
}

static PyDataMem_Handler cyc_handler = {
    "cyconv_block_cache",
    1,
    {NULL, cyc_handler_malloc, cyc_handler_calloc, cyc_handler_realloc, cyc_handler_free},
};

/* ---- called from Python (GIL held) ---- */

/* Import NumPy's C API and make the lock; -1 with an exception set on failure. */
static int cyc_cache_init(size_t limit)
{
    if (_import_array() < 0)
        return -1;
    cyc_cache.lock = PyThread_allocate_lock();
    if (cyc_cache.lock == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    cyc_cache.limit = limit;
    return 0;
}

/* The handler as the capsule NumPy takes (a new reference). */
static PyObject *cyc_cache_handler(void)
{
    return PyCapsule_New(&cyc_handler, "mem_handler", NULL);
}

/* Make `handler` this context's NumPy memory handler; returns the previous
 * one (a new reference). */
static PyObject *cyc_cache_swap_handler(PyObject *handler)
{
    return PyDataMem_SetHandler(handler);
}

/* Let the next block start 1536 bytes (rounded down to 64) past where
 * `array`'s data starts within its 4 KB page. Why: L1 caches index lines by
 * address bits 6-11, so rows whose pitch is a multiple of 4 KB share one
 * set per column (8 ways). A row kernel reading such an image and writing
 * a result that starts at the same offset crowds both into the same sets;
 * 1536 bytes apart they fall in other sets (also for pitches of 1 and 2
 * KB). Measured, Zen 4, 1024^2 float32 5x5 "same": 0.77 against 0.83 ms
 * (float64: 1.43 against 1.60). Not an array: nothing changes. */
static void cyc_cache_place_apart(PyObject *array)
{
    if (PyArray_Check(array)) {
        uintptr_t at = (uintptr_t)PyArray_DATA((PyArrayObject *)array);
        cyc_next_phase = (long)(((at + 1536) % CYC_CACHE_PAGE) / CYC_CACHE_ALIGN * CYC_CACHE_ALIGN);
    }
}

/* Whether new blocks ask for huge pages (NumPy's _get_madvise_hugepage). */
static void cyc_cache_set_hugepages(int enabled)
{
    cyc_hugepages = enabled != 0;
}

/* Set the byte limit (dropping what no longer fits); returns the old one. */
static size_t cyc_cache_set_limit(size_t limit)
{
    void *drop[CYC_CACHE_SLOTS];
    int ndrop = 0;
    PyThread_acquire_lock(cyc_cache.lock, WAIT_LOCK);
    size_t old = cyc_cache.limit;
    cyc_cache.limit = limit;
    while (cyc_cache.count > 0 && cyc_cache.kept > limit)
        drop[ndrop++] = cyc_remove(0);
    PyThread_release_lock(cyc_cache.lock);
    for (int i = 0; i < ndrop; i++)
        free(cyc_header(drop[i])->raw);
    return old;
}

/* In a child after fork(): another thread may have held the lock at the
 * fork, and no thread is left to release it; the kept blocks stay valid. */
static void cyc_cache_after_fork(void)
{
    if (cyc_cache.lock != NULL)
        cyc_cache.lock = PyThread_allocate_lock();   /* the old one leaks: a few bytes */
}

static size_t cyc_cache_limit(void)
{
    PyThread_acquire_lock(cyc_cache.lock, WAIT_LOCK);
    size_t limit = cyc_cache.limit;
    PyThread_release_lock(cyc_cache.lock);
    return limit;
}

static size_t cyc_cache_kept(void)
{
    PyThread_acquire_lock(cyc_cache.lock, WAIT_LOCK);
    size_t kept = cyc_cache.kept;
    PyThread_release_lock(cyc_cache.lock);
    return kept;
}

#endif
