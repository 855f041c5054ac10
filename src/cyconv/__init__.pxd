# `cimport cyconv` / `from cyconv cimport ...`: the C-level API, declared in
# cyconv/_core.pxd (read it for the preconditions of each function).
from cyconv._core cimport (
    cyc_index_t, cyc_status, cyc_mode, cyc_boundary, cyc_padding_mode, cyc_conv2d_params,
    CYC_API_VERSION, CYC_OK, CYC_EINVAL, CYC_EWORK,
    CYC_FULL, CYC_SAME, CYC_VALID, CYC_FILL, CYC_WRAP, CYC_SYMM,
    CYC_PAD_ZEROS, CYC_PAD_REFLECT, CYC_PAD_REPLICATE, CYC_PAD_CIRCULAR, CYC_PAD_SYMMETRIC,
    filter2d_shape, filter2d_work_bytes,
    correlate2d_f32, correlate2d_f64, convolve2d_f32, convolve2d_f64,
    conv2d_shape, conv2d_work_bytes, conv2d_f32, conv2d_f64,
)
