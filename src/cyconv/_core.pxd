# The C-level API of cyconv, for other Cython packages (see __init__.pxd).
#
# Version 1. Every function here is `noexcept nogil`, single-threaded, never
# allocates, never raises and never touches Python objects: call it inside
# `with nogil:` from any thread. Arrays are C-contiguous in row-major order,
# with an explicit row stride (in elements) for 2-D planes.
#
# Every scalar argument is checked, and every size is computed with overflow
# checks: a function returns CYC_EINVAL, and a *_work_bytes query -1, for
# sizes out of range (below 1, a stride shorter than its row, padding the
# mode does not allow, ...), an itemsize other than 4 (float32) or 8
# (float64), and for any problem whose arrays cannot be addressed with
# Py_ssize_t byte offsets (an image, kernel, weight or output, or the work
# buffer, of more than PY_SSIZE_T_MAX bytes; for conv2d's work this uses an
# upper bound a small factor above the exact size). A size query never
# returns a wrapped value: whatever it returns is the exact byte count, and a
# buffer of that many bytes at any alignment is enough. The *_shape queries
# check the sizes for float32. What no function can check is that the
# pointers are valid for the sizes given: that is the caller's precondition.

ctypedef Py_ssize_t cyc_index_t

cdef enum:
    CYC_API_VERSION = 1

cdef enum cyc_status:
    CYC_OK = 0
    CYC_EINVAL = -1          # a size, mode, boundary or parameter is out of range
    CYC_EWORK = -2           # the work buffer is smaller than *_work_bytes() asks for

cdef enum cyc_mode:          # scipy.signal.convolve2d's `mode`
    CYC_FULL = 0
    CYC_SAME = 1
    CYC_VALID = 2            # needs in1 at least as large as in2 (no swapping)

cdef enum cyc_boundary:      # scipy.signal.convolve2d's `boundary`
    CYC_FILL = 0
    CYC_WRAP = 1
    CYC_SYMM = 2

cdef enum cyc_padding_mode:  # torch.nn.Conv2d's `padding_mode`, plus symmetric
    CYC_PAD_ZEROS = 0
    CYC_PAD_REFLECT = 1
    CYC_PAD_REPLICATE = 2
    CYC_PAD_CIRCULAR = 3
    CYC_PAD_SYMMETRIC = 4

ctypedef struct cyc_conv2d_params:
    cyc_index_t N, C, H, W       # input, NCHW
    cyc_index_t K, R, S          # weight (K, C / groups, R, S)
    cyc_index_t groups
    cyc_index_t stride_h, stride_w
    cyc_index_t dilation_h, dilation_w
    cyc_index_t pad_top, pad_bottom, pad_left, pad_right
    int padding_mode             # a cyc_padding_mode

# correlate2d / convolve2d of one real plane, as scipy.signal's (in1 is the image).
# Where in1's rows and the output take 16 MB or more, the output is written with
# non-temporal stores on x86 (past the caches; fenced before the call returns), as
# cyconv.convolve2d's is.
cdef int filter2d_shape(cyc_index_t h, cyc_index_t w, cyc_index_t m, cyc_index_t n, int mode,
                        cyc_index_t *out_h, cyc_index_t *out_w) noexcept nogil
# Bytes of `work` a filter2d call of that dtype (itemsize 4 or 8) needs, or -1.
cdef cyc_index_t filter2d_work_bytes(cyc_index_t h, cyc_index_t w, cyc_index_t m,
                                     cyc_index_t n, int mode, cyc_index_t itemsize) noexcept nogil
cdef int correlate2d_f32(const float *in1, cyc_index_t h, cyc_index_t w, cyc_index_t in1_stride,
                         const float *in2, cyc_index_t m, cyc_index_t n, cyc_index_t in2_stride,
                         int mode, int boundary, float fillvalue,
                         float *out, cyc_index_t out_stride,
                         void *work, cyc_index_t work_bytes) noexcept nogil
cdef int correlate2d_f64(const double *in1, cyc_index_t h, cyc_index_t w, cyc_index_t in1_stride,
                         const double *in2, cyc_index_t m, cyc_index_t n, cyc_index_t in2_stride,
                         int mode, int boundary, double fillvalue,
                         double *out, cyc_index_t out_stride,
                         void *work, cyc_index_t work_bytes) noexcept nogil
cdef int convolve2d_f32(const float *in1, cyc_index_t h, cyc_index_t w, cyc_index_t in1_stride,
                        const float *in2, cyc_index_t m, cyc_index_t n, cyc_index_t in2_stride,
                        int mode, int boundary, float fillvalue,
                        float *out, cyc_index_t out_stride,
                        void *work, cyc_index_t work_bytes) noexcept nogil
cdef int convolve2d_f64(const double *in1, cyc_index_t h, cyc_index_t w, cyc_index_t in1_stride,
                        const double *in2, cyc_index_t m, cyc_index_t n, cyc_index_t in2_stride,
                        int mode, int boundary, double fillvalue,
                        double *out, cyc_index_t out_stride,
                        void *work, cyc_index_t work_bytes) noexcept nogil

# conv2d as torch.nn.functional.conv2d: input (N, C, H, W), weight (K, C/groups, R, S),
# bias (K,) or NULL, out (N, K, Ho, Wo), all C-contiguous.
cdef int conv2d_shape(const cyc_conv2d_params *p, cyc_index_t *out_h,
                      cyc_index_t *out_w) noexcept nogil
# Bytes of `work` conv2d_f32 (itemsize 4) or conv2d_f64 (8) needs, or -1. It depends on
# the kernel level chosen when cyconv is imported (CPU, CYCONV_CPU).
cdef cyc_index_t conv2d_work_bytes(const cyc_conv2d_params *p, cyc_index_t itemsize) noexcept nogil
cdef int conv2d_f32(const cyc_conv2d_params *p, const float *input, const float *weight,
                    const float *bias, float *out, void *work, cyc_index_t work_bytes) noexcept nogil
cdef int conv2d_f64(const cyc_conv2d_params *p, const double *input, const double *weight,
                    const double *bias, double *out, void *work, cyc_index_t work_bytes) noexcept nogil
