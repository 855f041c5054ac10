# cython: boundscheck=False, wraparound=False
"""Sobel gradient magnitude, computed without the GIL by cyconv's C API."""

from libc.math cimport sqrt
from libc.stdlib cimport free, malloc

cimport cyconv
from cyconv cimport cyc_index_t, CYC_OK, CYC_SAME, CYC_SYMM

import numpy as np

cdef double[9] SOBEL_X = [1, 0, -1, 2, 0, -2, 1, 0, -1]
cdef double[9] SOBEL_Y = [1, 2, 1, 0, 0, 0, -1, -2, -1]


def sobel_magnitude(image):
    """sqrt(gx**2 + gy**2) of a 2-D float64 image, 'same' size, mirrored edges."""
    cdef double[:, ::1] img = np.ascontiguousarray(image, dtype=np.float64)
    cdef cyc_index_t h = img.shape[0], w = img.shape[1], i, j
    gx = np.empty((h, w))
    gy = np.empty((h, w))
    cdef double[:, ::1] ox = gx, oy = gy
    cdef cyc_index_t nbytes = cyconv.filter2d_work_bytes(h, w, 3, 3, CYC_SAME, 8)
    if nbytes < 0:
        raise ValueError(f"image of shape {image.shape} is too small")
    cdef void *work = malloc(nbytes)
    if work == NULL:
        raise MemoryError()
    cdef int sx, sy
    with nogil:
        sx = cyconv.correlate2d_f64(&img[0, 0], h, w, w, SOBEL_X, 3, 3, 3, CYC_SAME, CYC_SYMM,
                                    0.0, &ox[0, 0], w, work, nbytes)
        sy = cyconv.correlate2d_f64(&img[0, 0], h, w, w, SOBEL_Y, 3, 3, 3, CYC_SAME, CYC_SYMM,
                                    0.0, &oy[0, 0], w, work, nbytes)
        for i in range(h):
            for j in range(w):
                ox[i, j] = sqrt(ox[i, j] * ox[i, j] + oy[i, j] * oy[i, j])
    free(work)
    if sx != CYC_OK or sy != CYC_OK:
        raise RuntimeError(f"cyconv returned status {sx}, {sy}")
    return gx
