/* cyconv compute kernels: plain C, no Python, no validation.
 *
 * Every function here trusts its caller (the Cython layer, which trusts the
 * Python layer): pointers are valid for every element the documented loops
 * touch, sizes are positive, and nothing overflows. Each kernel exists once
 * per instruction-set level; cyc_kernels(level) returns the table to use.
 */
#ifndef CYCONV_KERNELS_H
#define CYCONV_KERNELS_H

#include <stddef.h>

typedef ptrdiff_t cyc_index;

enum cyc_level { CYC_BASELINE = 0, CYC_AVX2 = 1, CYC_AVX512 = 2 };

/* Tile sizes from a level's vector size in bytes (0: plain scalar C, one
 * element per "vector"): the template (kernels_impl.h) computes its tiles
 * with these and the tables in kernels.c report them. */
#define CYC_LANES(vbytes, T) ((vbytes) ? (cyc_index)((vbytes) / sizeof(T)) : (cyc_index)1)
#define CYC_BLOCK_CHANNELS(vbytes, T) (2 * CYC_LANES(vbytes, T))     /* KB: 2 vectors */
#define CYC_FLAT_PIXELS(vbytes, fv, T) ((fv) * CYC_LANES(vbytes, T))  /* FP: fv vectors */
/* Output rows per block of the AVX-512 rows for single-channel S x S
 * kernels (S 4-15), their shifts made in registers from the loaded
 * vectors plus one (S - 1 <= lanes) or two past them. With one, 8 rows of 3
 * vectors fill all 32 registers: GCC 12 spilled, and 6 rows ran 1.0-1.2x
 * as fast (Zen 5). With two, 8 rows of 2 vectors fit (6 rows: 0.86-1.0x).
 * A block has at most S rows. */
#define CYC_SQUARE_BLOCK_ROWS(S, lanes) ((S) <= 5 ? (S) : (S) - 1 <= (lanes) ? 6 : 8)
/* Where 512-bit FMAs are double-pumped (Zen 4: cyc_rows_512 off), 6 rows of
 * 3 vectors with two past them ran faster than 8 rows of 2 (whole calls,
 * 1024^2 float64 "same", one process: 11x11 1.11x, 12x12 1.09x, 13x13
 * 1.09x, 15x15 1.05x; 512^2 1.07-1.09x), so the AVX-512 level takes 6 rows
 * there for every S > 5. */
#define CYC_SQUARE_BLOCK_ROWS_DP(S, lanes) ((S) <= 5 ? (S) : 6)
/* The same for single-channel R x S kernels, R != S, S = 3, 5 or 7: the
 * square ones' rows where R has as many, else 5 or 3 (a block has at most
 * R rows). */
#define CYC_RECT_BLOCK_ROWS(R, S, lanes)                                            \
    ((R) >= CYC_SQUARE_BLOCK_ROWS(S, lanes) ? CYC_SQUARE_BLOCK_ROWS(S, lanes)        \
     : (R) >= 5 ? 5 : 3)
/* The single-channel R x S kernels, R != S, whose AVX-512 rows make their
 * shifted vectors in registers: S = 3, 5 or 7 and R >= 3; with the taps
 * transposed (a column-major image), R and S both 3, 5 or 7. */
#define CYC_ODD_3_TO_7(n) ((n) == 3 || (n) == 5 || (n) == 7)
#define CYC_RECT_SHIFTED(R, S) ((R) != (S) && (R) >= 3 && CYC_ODD_3_TO_7(S))
#define CYC_RECT_T_SHIFTED(R, S) ((R) != (S) && CYC_ODD_3_TO_7(R) && CYC_ODD_3_TO_7(S))
/* Bound of every level's flat-tile channels (FK): callers size the array of
 * FK weight pointers (flat_tile's wk) with it; kernels.c asserts it. */
#define CYC_MAX_FLAT_CHANNELS 16
/* Bound of every level's tile_pixels (PT), for callers' offset arrays. */
#define CYC_MAX_TILE_PIXELS 32

/* One row of a multi-channel 2-D correlation, vectorized along the row:
 *   out[x] = sum_{c<C} sum_{r<R} sum_{s<S} w[(c*R + r)*S + s] * in[c*cs + r*rs + s*ds + x]
 * for 0 <= x < width, summed in exactly that (c, r, s) order from zero.
 * `in` points at column 0 of the first input row; rs already includes any
 * row dilation and ds is the column dilation. */
typedef void (*cyc_spatial_row_f32)(const float *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                    cyc_index C, cyc_index R, cyc_index S,
                                    const float *w, float *out, cyc_index width);
typedef void (*cyc_spatial_row_f64)(const double *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                    cyc_index C, cyc_index R, cyc_index S,
                                    const double *w, double *out, cyc_index width);

/* nrows consecutive output rows (unit stride and dilation), out rows `os` apart:
 *   out[t*os + x] = sum_{c,r,s} w[(c*R + r)*S + s] * in[c*cs + (t + r)*rs + s + x]
 * bitwise equal to calling the row kernel once per row. Register-blocked for R >= 4:
 * blocks may overlap and write a pixel twice (same value), so out must not alias in.
 * flags: CYC_ROWS_* bits.
 * STREAM: write `out` with non-temporal stores (x86) where a block fills whole
 * aligned cache lines, for a result larger than the caches; the caller then
 * calls cyc_stream_fence() before another thread reads `out`.
 * PREFETCH: single-channel row blocks ask for the input rows of the block after
 * them, for an image larger than L2: the hardware prefetchers stop at each 4 KB
 * page. Measured, Zen 5, whole 1024^2 calls, 3x3-11x11, image out of cache:
 * float32 1.12-1.25x as fast (every other column 1.33-1.35x), float64
 * 1.08-1.33x; in cache 0.91-1.10x; a 256^2 image in cache 0.91-1.02x.
 * PREFETCH_WALKS: the single-channel 3x3 walks ask for rows ahead too, for an
 * image of 16 MB or more (_core.pyx sets it). Smaller, they lose more to the
 * prefetches in cache than they gain out of it (Zen 5, whole 3x3 calls:
 * 1024^2 float32 and float64 in cache 0.90-0.93x, out of cache 1.02x;
 * float32 2048^2-2896^2 1.13-1.16x in and out of cache). */
#define CYC_ROWS_STREAM 1
#define CYC_ROWS_PREFETCH 2
#define CYC_ROWS_PREFETCH_WALKS 4
typedef void (*cyc_spatial_rows_f32)(const float *in, cyc_index cs, cyc_index rs,
                                     cyc_index C, cyc_index R, cyc_index S,
                                     const float *w, float *out, cyc_index os,
                                     cyc_index width, cyc_index nrows, int flags);
typedef void (*cyc_spatial_rows_f64)(const double *in, cyc_index cs, cyc_index rs,
                                     cyc_index C, cyc_index R, cyc_index S,
                                     const double *w, double *out, cyc_index os,
                                     cyc_index width, cyc_index nrows, int flags);

/* spatial_rows with the taps transposed: the weights are S x R, kernel
 * column s steps down the rows and kernel row r along the row,
 *   out[t*os + x] = sum_{c<C} sum_{s<S} sum_{r<R} w[(c*S + s)*R + r] * in[c*cs + (t + r)*rs + s + x]
 * summed in exactly that (c, s, r) order from zero. A column-major image
 * read as its (row-major) transpose, with its own row-major kernel, gives
 * the transpose of the row-major result to the bit. Same rules as
 * spatial_rows (blocks may overlap; out must not alias in). */
typedef cyc_spatial_rows_f32 cyc_spatial_rows_t_f32;
typedef cyc_spatial_rows_f64 cyc_spatial_rows_t_f64;

/* spatial_rows on every other element of the input rows (a column-strided
 * view such as a[:, ::2]), C = 1:
 *   out[t*os + x] = sum_{r<R} sum_{s<S} w[r*S + s] * in[(t + r)*rs + 2*(s + x)]
 * summed in exactly that order from zero, bitwise spatial_rows on the
 * gathered columns. Only where cyc_kernel_table.rows_s2_square has bit S
 * set (R = S), and for width >= one vector (16 floats, 8 doubles). */
typedef cyc_spatial_rows_f32 cyc_spatial_rows_s2_f32;
typedef cyc_spatial_rows_f64 cyc_spatial_rows_s2_f64;

/* A tile of `pixels` (PT, see cyc_kernel_table) consecutive output pixels of
 * one row times KB output channels, channels innermost:
 *   tile[i*KB + k] = sum_{c,r,s} in[c*cs + r*rs + s*ds + i*sx] * wp[((c*R + r)*S + s)*KB + k]
 * summed in (c, r, s) order from zero, or from init[i*KB + k] when init is
 * not NULL (partial sums over earlier input channels; init may be tile).
 * `in` points at the tile's first input pixel; wp holds the weights packed
 * with KB channels innermost. */
typedef void (*cyc_blocked_tile_f32)(const float *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                     cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                                     const float *wp, const float *init, float *tile);
typedef void (*cyc_blocked_tile_f64)(const double *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                     cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                                     const double *wp, const double *init, double *tile);

/* The same for `pixels` = CYC_TILE_WIDTH(PT, i) pixels (PT or fewer: a
 * row's last tile, a row of few pixels, a weight gradient's last channels)
 * over R rows of a kernel whose channels' packed weights are wcs elements
 * apart (wcs = R * S * KB: the whole kernel; more: the rows of a taller
 * kernel, wp at the first of them):
 *   tile[i*KB + k] = sum_{c,r,s} in[c*cs + r*rs + s*ds + i*sx] * wp[c*wcs + (r*S + s)*KB + k]
 * leaving out, for S == 3, ds == 1 and sx 1 or 2 only, pixel 0's products of
 * kernel column 0 when bit 0 of `edges` is set and pixel pixels-1's of
 * column 2 when bit 1 is (their input is zero padding; 0 otherwise). */
typedef void (*cyc_blocked_tile_sized_f32)(const float *in, cyc_index cs, cyc_index rs,
                                           cyc_index ds, cyc_index sx, cyc_index C,
                                           cyc_index R, cyc_index S, cyc_index wcs,
                                           const float *wp, const float *init, float *tile,
                                           cyc_index pixels, int edges);
typedef void (*cyc_blocked_tile_sized_f64)(const double *in, cyc_index cs, cyc_index rs,
                                           cyc_index ds, cyc_index sx, cyc_index C,
                                           cyc_index R, cyc_index S, cyc_index wcs,
                                           const double *wp, const double *init, double *tile,
                                           cyc_index pixels, int edges);
/* The sums of cyc_blocked_tile (init NULL) for PT pixels each at its own
 * place, pixel i's input at in + off[i] (a tile may span rows and images),
 * over R x S taps of a kernel whose packed weights are wcs elements apart
 * per channel and wrs per kernel row (wcs = R*S*KB and wrs = S*KB: all of
 * it; else a window of a larger kernel, wp at its first tap):
 *   tile[i*KB + k] = sum_{c,r,s} in[off[i] + c*cs + r*rs + s*ds] * wp[c*wcs + r*wrs + s*KB + k]
 * summed in (c, r, s) order from zero. */
typedef void (*cyc_gathered_tile_f32)(const float *in, const cyc_index *off, cyc_index cs,
                                      cyc_index rs, cyc_index ds, cyc_index C, cyc_index R,
                                      cyc_index S, cyc_index wcs, cyc_index wrs,
                                      const float *wp, float *tile);
typedef void (*cyc_gathered_tile_f64)(const double *in, const cyc_index *off, cyc_index cs,
                                      cyc_index rs, cyc_index ds, cyc_index C, cyc_index R,
                                      cyc_index S, cyc_index wcs, cyc_index wrs,
                                      const double *wp, double *tile);
/* The tile widths for PT pixels per tile, widest first: PT, about 2/3 of it,
 * half of it and about 1/3 (AVX-512: 14, 10, 7, 5; AVX2: 6, 4, 3, 2), so a
 * row's last tile computes at most one pixel too many, and rows of 7 (ResNet's
 * last stage) fill AVX-512 tiles. */
#define CYC_TILE_WIDTH(pt, i) \
    ((i) == 0 ? (pt) : (i) == 1 ? (2 * (pt) + 2) / 3 : (i) == 2 ? (pt) / 2 : ((pt) + 2) / 3)
#define CYC_TILE_WIDTHS 4

/* FK output channels x FP flat pixels (see kernels_impl.h: flat_tile). */
typedef void (*cyc_flat_tile_f32)(const float *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                  cyc_index C, cyc_index R, cyc_index S,
                                  const float *const *wk, float *tile);
typedef void (*cyc_flat_tile_f64)(const double *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                  cyc_index C, cyc_index R, cyc_index S,
                                  const double *const *wk, double *tile);
/* The same for the first `vectors` (1 .. FV - 1; FV = FP / lanes) vectors
 * of pixels only: the tile's other values are left as they were. */
typedef void (*cyc_flat_tile_part_f32)(const float *in, cyc_index cs, cyc_index rs,
                                       cyc_index ds, cyc_index C, cyc_index R, cyc_index S,
                                       const float *const *wk, float *tile, cyc_index vectors);
typedef void (*cyc_flat_tile_part_f64)(const double *in, cyc_index cs, cyc_index rs,
                                       cyc_index ds, cyc_index C, cyc_index R, cyc_index S,
                                       const double *const *wk, double *tile,
                                       cyc_index vectors);

/* A 1x1 layer's tile with the output pixels in the vector lanes (unit
 * stride, no padding): CYC_PIXEL_CHANNELS output channels x CYC_PIXEL_PIXELS
 * consecutive pixels,
 *   out[k*os + x] = sum_{c<C} wp[c*ws + k] * in[c*cs + x]  (+ bias[k] when bias is not NULL)
 * for k < nk (at most CYC_PIXEL_CHANNELS) and x < CYC_PIXEL_PIXELS, summed in
 * c order from zero and the bias added once: per pixel the blocked tile's
 * sum and store, to the bit. wp: channel k0 of a packed block (ws = KB). */
typedef void (*cyc_pixel_tile_f32)(const float *in, cyc_index cs, cyc_index C, const float *wp,
                                   cyc_index ws, const float *bias, float *out, cyc_index os,
                                   cyc_index nk);
typedef void (*cyc_pixel_tile_f64)(const double *in, cyc_index cs, cyc_index C, const double *wp,
                                   cyc_index ws, const double *bias, double *out, cyc_index os,
                                   cyc_index nk);
/* Its channels (a divisor of every level's KB) and pixels (3 vectors). */
#define CYC_PIXEL_CHANNELS(vbytes) ((vbytes) ? 4 : 2)
#define CYC_PIXEL_PIXELS(vbytes, T) (3 * CYC_LANES(vbytes, T))

/* Depthwise correlation with L channels in the vector lanes (L: the table's
 * dw_lanes; kernels_impl.h says why): pixel j of row i of the input, output
 * and taps is L consecutive values, one per channel,
 *   out[y*os + x*ps + l] = sum_{r<R} sum_{s<S} w[(r*S + s)*L + l]
 *                          * in[(y*sh + r*dh)*rs + (x*sw + s*dw)*L + l]   (+ bias[l])
 * for y < nrows, x < width, l < L, summed in (r, s) order from zero and the
 * bias (L values, or NULL) added once: per channel, spatial_row's sum and
 * rounding for one input channel. rs, os and ps (at least L: a multiple of
 * L spaces the pixels, as the stride phases of a transposed convolution
 * fill every other one) are element pitches. */
typedef void (*cyc_depthwise_lanes_f32)(const float *in, cyc_index rs, cyc_index sh,
                                        cyc_index sw, cyc_index dh, cyc_index dw, cyc_index R,
                                        cyc_index S, const float *w, const float *bias,
                                        float *out, cyc_index os, cyc_index ps,
                                        cyc_index width, cyc_index nrows);
typedef void (*cyc_depthwise_lanes_f64)(const double *in, cyc_index rs, cyc_index sh,
                                        cyc_index sw, cyc_index dh, cyc_index dw, cyc_index R,
                                        cyc_index S, const double *w, const double *bias,
                                        double *out, cyc_index os, cyc_index ps,
                                        cyc_index width, cyc_index nrows);

/* The gradient of depthwise_lanes with respect to its taps, added to acc:
 *   acc[(r*S + s)*L + l] += sum_{y<nrows} sum_{x<width} g[y*gs + x*L + l]
 *                           * in[(y*sh + r*dh)*rs + (x*sw + s*dw)*L + l]
 * for every tap and l < L, each sum in (y, x) order onto acc's value (fused
 * where the level fuses): calls on consecutive row ranges give the bits of
 * one call. */
typedef void (*cyc_depthwise_taps_f32)(const float *in, cyc_index rs, cyc_index sh,
                                       cyc_index sw, cyc_index dh, cyc_index dw, cyc_index R,
                                       cyc_index S, const float *g, cyc_index gs,
                                       cyc_index width, cyc_index nrows, float *acc);
typedef void (*cyc_depthwise_taps_f64)(const double *in, cyc_index rs, cyc_index sh,
                                       cyc_index sw, cyc_index dh, cyc_index dw, cyc_index R,
                                       cyc_index S, const double *g, cyc_index gs,
                                       cyc_index width, cyc_index nrows, double *acc);

/* The channels-in-lanes layout for a whole group of L (dw_lanes) channels:
 * interleave_lanes  dst[j*L + l] = src[l*cs + j],
 * deinterleave_lanes dst[l*cs + j] = src[j*L + l], for j < n and l < L;
 * copies only. NULL where the level has none (interleave.h serves). */
typedef void (*cyc_interleave_lanes_f32)(const float *src, cyc_index cs, cyc_index n, float *dst);
typedef void (*cyc_interleave_lanes_f64)(const double *src, cyc_index cs, cyc_index n,
                                         double *dst);
typedef void (*cyc_deinterleave_lanes_f32)(const float *src, cyc_index n, float *dst,
                                           cyc_index cs);
typedef void (*cyc_deinterleave_lanes_f64)(const double *src, cyc_index n, double *dst,
                                           cyc_index cs);

/* n samples converted between unsigned 8/16-bit and float32 (pixels_impl.h). */
typedef void (*cyc_u8_to_f32)(const unsigned char *src, float *dst, cyc_index n);
typedef void (*cyc_u16_to_f32)(const unsigned short *src, float *dst, cyc_index n);
typedef void (*cyc_f32_to_u8)(const float *src, unsigned char *dst, cyc_index n);
typedef void (*cyc_f32_to_u16)(const float *src, unsigned short *dst, cyc_index n);
/* Is any of n contiguous floats / doubles inf or NaN (every exponent bit
 * set)? 1 or 0. */
typedef int (*cyc_nonfinite_f32)(const float *row, cyc_index n);
typedef int (*cyc_nonfinite_f64)(const double *row, cyc_index n);
/* A weight gradient's tile of one vector of channels (NK = the level's
 * lanes: 16 float32, 8 float64) x `pixels` = CYC_TILE_WIDTH(narrow_pixels, i)
 * elements, the 512-bit counterpart of a blocked tile's two vectors for
 * layers of at most NK output channels:
 *   tile[i*NK + k] = sum_{r,s} in[r*rs + s*ds + i*sx] * wp[(r*S + s)*NK + k]
 * summed in (r, s) order from zero, or from init[i*NK + k] when init is not
 * NULL (init may be tile): per lane the sums of blocked_tile_sized with C = 1,
 * so the same bits. AVX-512 only (NULL in the other tables). */
typedef void (*cyc_narrow_tile_f32)(const float *in, cyc_index rs, cyc_index ds, cyc_index sx,
                                    cyc_index R, cyc_index S, const float *wp,
                                    const float *init, float *tile, cyc_index pixels);
typedef void (*cyc_narrow_tile_f64)(const double *in, cyc_index rs, cyc_index ds, cyc_index sx,
                                    cyc_index R, cyc_index S, const double *wp,
                                    const double *init, double *tile, cyc_index pixels);
/* Elements per narrow tile: 24 of the 32 registers hold sums. */
#define CYC_NARROW_PIXELS 24
/* out[x] = sum_t w[t] * src[t][x], 0 <= x < width, in t order from zero (pixels_impl.h). */
typedef void (*cyc_taps_row_f32)(const float *const *src, const float *w, cyc_index ntaps,
                                 float *out, cyc_index width);

/* A weight gradient with the output pixels in the vector lanes, for layers
 * of few taps (unit column stride):
 *   sums[k*ntaps + t] = sum_{m<images} sum_{y<Ho} sum_{x<Wo} g[m*gn + k*gk + y*gy + x]
 *                       * in[m*xn + y*xy + off[t] + x]
 * for k < K and t < ntaps: `in` a padded input, off[t] tap t's element
 * offset in it (channel, kernel row and column), xy its elements per output
 * row (stride x padded width). Each sum's order depends on Wo and the level
 * only: the same bits for any cut of the channels or calls over the same
 * images. Reads nothing past the pixels the sums use. */
typedef void (*cyc_pixel_taps_f32)(const float *g, cyc_index gn, cyc_index gk, cyc_index gy,
                                   const float *in, cyc_index xn, cyc_index xy,
                                   const cyc_index *off, cyc_index ntaps, cyc_index K,
                                   cyc_index images, cyc_index Ho, cyc_index Wo, float *sums);
typedef void (*cyc_pixel_taps_f64)(const double *g, cyc_index gn, cyc_index gk, cyc_index gy,
                                   const double *in, cyc_index xn, cyc_index xy,
                                   const cyc_index *off, cyc_index ntaps, cyc_index K,
                                   cyc_index images, cyc_index Ho, cyc_index Wo, double *sums);

/* A layer of few taps with the output pixels in the vector lanes (unit
 * column stride, rows of at least one vector: the table's row lanes):
 *   out[m*on + k*ok + y*oy + x] = sum_{t<ntaps} wt[t*K + k] * in[m*xn + y*xy + off[t] + x]
 *                                 (+ bias[k] when bias is not NULL)
 * for m < images, k < K, y < Ho, x < Wo, summed in t order from zero and
 * the bias added once (the blocked tiles' bits when the taps run in (c, r,
 * s) order). `in` a padded input, off[t] tap t's element offset in it. */
typedef void (*cyc_pixel_conv_f32)(const float *in, cyc_index xn, cyc_index xy,
                                   const cyc_index *off, cyc_index ntaps, const float *wt,
                                   const float *bias, float *out, cyc_index on, cyc_index ok,
                                   cyc_index oy, cyc_index K, cyc_index images, cyc_index Ho,
                                   cyc_index Wo);
typedef void (*cyc_pixel_conv_f64)(const double *in, cyc_index xn, cyc_index xy,
                                   const cyc_index *off, cyc_index ntaps, const double *wt,
                                   const double *bias, double *out, cyc_index on, cyc_index ok,
                                   cyc_index oy, cyc_index K, cyc_index images, cyc_index Ho,
                                   cyc_index Wo);

typedef struct {
    const char *name;
    cyc_spatial_row_f32 spatial_row_f32;
    cyc_spatial_row_f64 spatial_row_f64;
    cyc_spatial_rows_f32 spatial_rows_f32;
    cyc_spatial_rows_f64 spatial_rows_f64;
    cyc_blocked_tile_f32 blocked_tile_f32;
    cyc_blocked_tile_f64 blocked_tile_f64;
    cyc_index tile_pixels;      /* PT: output pixels per blocked tile */
    cyc_index block_f32;        /* KB for float32: output channels per blocked tile */
    cyc_index block_f64;        /* KB for float64 */
    cyc_flat_tile_f32 flat_tile_f32;
    cyc_flat_tile_f64 flat_tile_f64;
    cyc_index flat_channels;    /* FK: output channels per flat tile */
    cyc_index flat_f32;         /* FP for float32: flat pixels per tile */
    cyc_index flat_f64;         /* FP for float64 */
    /* 8/16-bit image samples (pixels_impl.h): unsigned -> float32, and
     * float32 -> unsigned rounded half to even, saturated, NaN -> 0 */
    cyc_u8_to_f32 u8_to_f32;
    cyc_u16_to_f32 u16_to_f32;
    cyc_f32_to_u8 f32_to_u8;
    cyc_f32_to_u16 f32_to_u16;
    cyc_taps_row_f32 taps_row_f32;
    cyc_spatial_rows_t_f32 spatial_rows_t_f32;
    cyc_spatial_rows_t_f64 spatial_rows_t_f64;
    cyc_blocked_tile_sized_f32 blocked_tile_sized_f32;
    cyc_blocked_tile_sized_f64 blocked_tile_sized_f64;
    cyc_pixel_tile_f32 pixel_tile_f32;
    cyc_pixel_tile_f64 pixel_tile_f64;
    cyc_index pixel_channels;   /* output channels per pixel tile */
    cyc_index pixel_f32;        /* its pixels for float32 */
    cyc_index pixel_f64;        /* for float64 */
    /* Bit n set: a single-channel n x n kernel's transposed rows load each
     * input row once per block (their shifts made in registers), when at
     * least 5 rows of 2 vectors each; other transposed rows reload a
     * block's rows for every kernel column, so those rows must stay in L1
     * together. */
    unsigned rows_t_square_once;
    /* Bit n set: spatial_rows_s2 serves n x n kernels (NULL when none). */
    unsigned rows_s2_square;
    cyc_spatial_rows_s2_f32 spatial_rows_s2_f32;
    cyc_spatial_rows_s2_f64 spatial_rows_s2_f64;
    cyc_depthwise_lanes_f32 depthwise_lanes_f32;
    cyc_depthwise_lanes_f64 depthwise_lanes_f64;
    cyc_index dw_lanes_f32;     /* L: channels per pixel of depthwise_lanes, float32 */
    cyc_index dw_lanes_f64;     /* for float64 */
    cyc_interleave_lanes_f32 interleave_lanes_f32;
    cyc_interleave_lanes_f64 interleave_lanes_f64;
    cyc_deinterleave_lanes_f32 deinterleave_lanes_f32;
    cyc_deinterleave_lanes_f64 deinterleave_lanes_f64;
    cyc_depthwise_taps_f32 depthwise_taps_f32;
    cyc_depthwise_taps_f64 depthwise_taps_f64;
    cyc_narrow_tile_f32 narrow_tile_f32;
    cyc_narrow_tile_f64 narrow_tile_f64;
    cyc_index narrow_pixels;    /* elements per narrow tile (0 without one) */
    cyc_flat_tile_part_f32 flat_tile_part_f32;
    cyc_flat_tile_part_f64 flat_tile_part_f64;
    cyc_pixel_taps_f32 pixel_taps_f32;
    cyc_pixel_taps_f64 pixel_taps_f64;
    cyc_pixel_conv_f32 pixel_conv_f32;
    cyc_pixel_conv_f64 pixel_conv_f64;
    cyc_gathered_tile_f32 gathered_tile_f32;
    cyc_gathered_tile_f64 gathered_tile_f64;
    cyc_nonfinite_f32 nonfinite_f32;
    cyc_nonfinite_f64 nonfinite_f64;
} cyc_kernel_table;

/* Ask for the cache line at p before writing (or reading) it; a no-op where
 * the compiler has no prefetch builtin. For drivers that scatter tiles over
 * many planes, or read strips of many planes. */
#if defined(__GNUC__) || defined(__clang__)
#define cyc_prefetch_write(p) __builtin_prefetch((p), 1)
#define cyc_prefetch_read(p) __builtin_prefetch((p), 0)
/* Into L2 only: lines for a later phase, kept out of the running one's L1. */
#define cyc_prefetch_read_l2(p) __builtin_prefetch((p), 0, 2)
#else
#define cyc_prefetch_write(p) ((void)(p))
#define cyc_prefetch_read(p) ((void)(p))
#define cyc_prefetch_read_l2(p) ((void)(p))
#endif

/* Makes this thread's non-temporal stores (spatial_rows' CYC_ROWS_STREAM) visible
 * before its later stores: sfence on x86, nothing elsewhere. */
void cyc_stream_fence(void);
/* Highest level this CPU and OS support (cpuid/xgetbv on x86-64). */
int cyc_detect_level(void);
/* Bitmask of detected features, for show_config: 1=sse2 2=avx 4=avx2 8=fma 16=avx512f 32=neon */
int cyc_detect_features(void);
/* Does this CPU run 512-bit FMAs at full width, twice its AVX2 peak? 1 on
 * AMD family 1Ah (Zen 5) and later; 0 elsewhere: Zen 4 runs them as two
 * 256-bit halves, and other CPUs keep the choice measured there. */
int cyc_detect_full_width_512(void);
/* on: the AVX-512 level runs every row kernel 512 bits wide (rows of at
 * least one 512-bit vector); off (the default): 256 bits where that
 * measured faster on Zen 4 (kernels.c, MIXED). Either way the same bits.
 * Set before calls, not during them. */
void cyc_set_rows_512(int on);
/* The choice cyc_set_rows_512 made: 1 on, 0 off (always 0 off x86). */
int cyc_rows_512(void);
/* The compiler that built the kernels, for show_config. */
const char *cyc_compiler(void);
/* Table for `level`, which must be <= cyc_detect_level(). */
const cyc_kernel_table *cyc_kernels(int level);

#endif
