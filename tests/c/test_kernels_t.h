/* Template: included by test_kernels.c once per element type (T, SFX, EPS). */
#define CK_CAT_(a, b) a##_##b
#define CK_CAT(a, b) CK_CAT_(a, b)
#define CK(name) CK_CAT(name, SFX)

static T *CK(rand_array)(cyc_index n)
{
    T *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(T));
    for (cyc_index i = 0; i < n; i++) p[i] = (T)urand();
    return p;
}

/* rand_array's values in guarded_alloc's memory: nothing readable past them. */
static T *CK(guarded_rand_array)(cyc_index n)
{
    T *p = guarded_alloc((size_t)n * sizeof(T));
    for (cyc_index i = 0; i < n; i++) p[i] = (T)urand();
    return p;
}

static int CK(agree)(T got, long double ref, long double mag, cyc_index nterms)
{
    long double err = fabsl((long double)got - ref);
    long double unit = (long double)EPS * (mag > 0 ? mag : 1);
    checks++;
    if (err / unit > worst) worst = (double)(err / unit);
    return err <= 2.0L * (nterms + 2) * unit;
}

/* spatial_row: every width class (vector blocks, single vectors, scalar
 * tail), column and row dilation, one and several channels. */
static int CK(check_row)(const cyc_kernel_table *kt)
{
    static const cyc_index widths[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33,
                                       63, 64, 65, 100, 129};
    int bad = 0;
    for (cyc_index C = 1; C <= 3; C += 2)
    for (cyc_index R = 1; R <= 3; R++)
    for (cyc_index S = 1; S <= 5; S += 2)
    for (cyc_index ds = 1; ds <= 2; ds++)
    for (cyc_index dr = 1; dr <= 2; dr++)
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        cyc_index width = widths[wi];
        cyc_index rstride = width + (S - 1) * ds + 3, rows = (R - 1) * dr + 1;
        cyc_index cs = rows * rstride + 5;
        T *in = CK(rand_array)(C * cs), *w = CK(rand_array)(C * R * S);
        T *out = malloc((size_t)(width + GUARD) * sizeof(T));
        for (cyc_index i = 0; i < width + GUARD; i++) out[i] = (T)SENTINEL;
        kt->CK(spatial_row)(in, cs, dr * rstride, ds, C, R, S, w, out, width);
        for (cyc_index x = 0; x < width; x++) {
            long double ref = 0, mag = 0;
            for (cyc_index c = 0; c < C; c++)
                for (cyc_index r = 0; r < R; r++)
                    for (cyc_index s = 0; s < S; s++) {
                        long double p = (long double)w[(c * R + r) * S + s]
                                        * in[c * cs + r * dr * rstride + s * ds + x];
                        ref += p;
                        mag += fabsl(p);
                    }
            if (!CK(agree)(out[x], ref, mag, C * R * S) && bad++ < 5)
                printf("  spatial_row_%s C=%d R=%d S=%d ds=%d dr=%d width=%d x=%d: %g != %Lg\n",
                       STR(SFX), (int)C, (int)R, (int)S, (int)ds, (int)dr, (int)width, (int)x,
                       (double)out[x], ref);
        }
        for (cyc_index g = 0; g < GUARD; g++)
            if (out[width + g] != (T)SENTINEL) {
                if (bad++ < 5)
                    printf("  spatial_row_%s wrote past the row (width=%d)\n", STR(SFX), (int)width);
                break;
            }
        /* A pixel's value must not depend on where the row handed to the
         * kernel starts (callers split rows into tiles and chunks): the
         * same pixel falls into a vector lane in one call and into the
         * scalar remainder in another. */
        for (cyc_index x0 = 1; x0 < width && x0 <= 5; x0 += 2) {
            kt->CK(spatial_row)(in + x0, cs, dr * rstride, ds, C, R, S, w, out + width + 1,
                                width - x0 < GUARD - 1 ? width - x0 : GUARD - 1);
            for (cyc_index i = 0; i < width - x0 && i < GUARD - 1; i++)
                if (memcmp(&out[width + 1 + i], &out[x0 + i], sizeof(T)) != 0) {
                    if (bad++ < 5)
                        printf("  spatial_row_%s: pixel %d differs when the row starts at %d"
                               " (C=%d R=%d S=%d width=%d)\n", STR(SFX), (int)(x0 + i),
                               (int)x0, (int)C, (int)R, (int)S, (int)width);
                    break;
                }
        }
        free(in); free(w); free(out);
    }
    return bad;
}

/* rows_f with streamed (non-temporal) stores into a line-aligned output at
 * a pitch of whole lines, where they take effect, and the next rows asked
 * for ahead: the same bits as `out` (rows os apart, written with plain
 * stores), and nothing written between the rows. */
static int CK(check_streamed)(const char *name, CK(cyc_spatial_rows) rows_f, const T *in,
                              cyc_index cs, cyc_index rs, cyc_index C, cyc_index R, cyc_index S,
                              const T *w, const T *out, cyc_index os, cyc_index width,
                              cyc_index nrows)
{
    cyc_index line = 64 / (cyc_index)sizeof(T), pitch = (width + line) / line * line;
    char *block = malloc((size_t)(nrows * pitch) * sizeof(T) + 64);
    T *streamed = (T *)(void *)(block + (64 - (size_t)block % 64));
    int bad = 0;
    for (cyc_index i = 0; i < nrows * pitch; i++) streamed[i] = (T)SENTINEL;
    rows_f(in, cs, rs, C, R, S, w, streamed, pitch, width, nrows,
           CYC_ROWS_STREAM | CYC_ROWS_PREFETCH);
    cyc_stream_fence();
    for (cyc_index t = 0; t < nrows; t++) {
        if (memcmp(streamed + t * pitch, out + t * os, (size_t)width * sizeof(T)) != 0
                && bad++ < 5)
            printf("  %s_%s: streamed stores change row %d (C=%d R=%d S=%d width=%d"
                   " nrows=%d)\n", name, STR(SFX), (int)t, (int)C, (int)R, (int)S, (int)width,
                   (int)nrows);
        for (cyc_index g = width; g < pitch; g++)
            if (streamed[t * pitch + g] != (T)SENTINEL) {
                if (bad++ < 5) printf("  %s_%s streamed between rows\n", name, STR(SFX));
                break;
            }
    }
    free(block);
    return bad;
}

/* spatial_rows: bitwise equal to spatial_row row by row (kernels.h says
 * so); bitwise the same when the rows are split over two calls (as threads
 * split them); nothing written between the output rows. With `tmajor`, the
 * same for spatial_rows_t against spatial_row with the taps transposed
 * (unit row stride, column stride rstride, S x R weights). */
static int CK(check_rows)(const cyc_kernel_table *kt, int tmajor)
{
    CK(cyc_spatial_rows) rows_f = tmajor ? kt->CK(spatial_rows_t) : kt->CK(spatial_rows);
    const char *name = tmajor ? "spatial_rows_t" : "spatial_rows";
    static const cyc_index widths[] = {1, 3, 8, 9, 16, 17, 31, 33, 64, 70, 100};
    int bad = 0;
    /* R, S: the unshared rows (R < 4), the register-blocked rows (R >= 4),
     * the walks of 3x3 and R x 1 kernels (C = 1), the square kernels whose
     * shifted vectors are made in registers (C = 1, S = R = 3 .. 15, either
     * tap order) and the R x S ones (S = 3, 5, 7: blocks of 3, 5 and the
     * square rows; transposed, R and S both 3, 5 or 7); nrows: their row blocks and the moved-back last block;
     * widths: up to the 96 columns of float32 3-row shifted blocks. */
    static const cyc_index kernel_rows[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                           kernel_cols[] = {1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (cyc_index C = 1; C <= 2; C++)
    for (size_t ri = 0; ri < sizeof kernel_rows / sizeof kernel_rows[0]; ri++)
    for (size_t si = 0; si < sizeof kernel_cols / sizeof kernel_cols[0]; si++)
    for (cyc_index nrows = 1; nrows <= 14; nrows += 1 + (nrows > 8))
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        cyc_index R = kernel_rows[ri], S = kernel_cols[si];
        int rect = (S == 5 || S == 7) && (R == 3 || R == 4 || R == 5 || R == 6 || R == 7 || R == 9
                                           || R == 13);
        if (S > 4 && S != R && !(R <= 3 && S <= 5) && !rect)
            continue;   /* wide kernels: the square ones and a few others */
        cyc_index width = widths[wi], rows = nrows + R - 1;
        cyc_index rstride = width + S - 1 + 2, cs = rows * rstride + 3, os = width + GUARD;
        /* the input ends at the last column the last row's window reads */
        cyc_index n_in = (C - 1) * cs + (rows - 1) * rstride + width + S - 1;
        T *in = CK(guarded_rand_array)(n_in), *w = CK(rand_array)(C * R * S);
        T *out = malloc((size_t)(nrows * os) * sizeof(T));
        T *one = malloc((size_t)width * sizeof(T));
        T *two = malloc((size_t)(nrows * os) * sizeof(T));
        for (cyc_index i = 0; i < nrows * os; i++) out[i] = (T)SENTINEL;
        rows_f(in, cs, rstride, C, R, S, w, out, os, width, nrows, 0);
        bad += CK(check_streamed)(name, rows_f, in, cs, rstride, C, R, S, w, out, os, width,
                                  nrows);
        for (cyc_index split = 1; split < nrows; split += 3) {
            rows_f(in, cs, rstride, C, R, S, w, two, os, width, split, CYC_ROWS_PREFETCH);
            rows_f(in + split * rstride, cs, rstride, C, R, S, w, two + split * os,
                   os, width, nrows - split, CYC_ROWS_PREFETCH);
            for (cyc_index t = 0; t < nrows; t++)
                if (memcmp(two + t * os, out + t * os, (size_t)width * sizeof(T)) != 0) {
                    if (bad++ < 5)
                        printf("  %s_%s: splitting %d rows at %d changes row %d"
                               " (C=%d R=%d S=%d width=%d)\n", name, STR(SFX), (int)nrows, (int)split,
                               (int)t, (int)C, (int)R, (int)S, (int)width);
                    break;
                }
        }
        for (cyc_index t = 0; t < nrows; t++) {
            if (tmajor)
                kt->CK(spatial_row)(in + t * rstride, cs, 1, rstride, C, S, R, w, one, width);
            else
                kt->CK(spatial_row)(in + t * rstride, cs, rstride, 1, C, R, S, w, one, width);
            checks += width;
            if (memcmp(one, out + t * os, (size_t)width * sizeof(T)) != 0 && bad++ < 5)
                printf("  %s_%s is not bitwise spatial_row (C=%d R=%d S=%d width=%d"
                       " nrows=%d row %d)\n", name, STR(SFX), (int)C, (int)R, (int)S, (int)width,
                       (int)nrows, (int)t);
            for (cyc_index g = width; g < os; g++)
                if (out[t * os + g] != (T)SENTINEL) {
                    if (bad++ < 5) printf("  %s_%s wrote between rows\n", name, STR(SFX));
                    break;
                }
        }
        guarded_free(in, (size_t)n_in * sizeof(T));
        free(w); free(out); free(one); free(two);
    }
    return bad;
}

/* spatial_rows_s2 (where the table has it): bitwise spatial_rows on the
 * gathered columns (the kernels it serves, their row blocks, the moved-back
 * last blocks, widths from one vector up), the same when the rows are split
 * over two calls, nothing read past the last element its last window reads
 * (guarded memory) and nothing written between the output rows. */
static int CK(check_rows_s2)(const cyc_kernel_table *kt)
{
    if (!kt->CK(spatial_rows_s2))
        return 0;
    const cyc_index v = 64 / (cyc_index)sizeof(T);   /* a 512-bit vector: the least width */
    const cyc_index widths[] = {v, v + 1, 2 * v - 1, 2 * v, 2 * v + 3, 5 * v + 7};
    int bad = 0;
    for (cyc_index S = 1; S < 32; S++)
    for (cyc_index nrows = 1; nrows <= 18; nrows += 1 + (nrows > 9))
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        if (!(kt->rows_s2_square >> S & 1))
            continue;
        cyc_index R = S, width = widths[wi], rows = nrows + R - 1;
        cyc_index rstride = 2 * (width + S - 1) + 3, os = width + GUARD;
        /* the input ends at the last element the last row's window reads */
        cyc_index n_in = (rows - 1) * rstride + 2 * (width + S - 2) + 1;
        T *in = CK(guarded_rand_array)(n_in), *w = CK(rand_array)(R * S);
        T *packed = malloc((size_t)(rows * (width + S - 1)) * sizeof(T));
        T *out = malloc((size_t)(nrows * os) * sizeof(T));
        T *ref = malloc((size_t)(nrows * os) * sizeof(T));
        T *two = malloc((size_t)(nrows * os) * sizeof(T));
        for (cyc_index r = 0; r < rows; r++)
            for (cyc_index x = 0; x < width + S - 1; x++)
                packed[r * (width + S - 1) + x] = in[r * rstride + 2 * x];
        for (cyc_index i = 0; i < nrows * os; i++) out[i] = (T)SENTINEL;
        kt->CK(spatial_rows_s2)(in, 0, rstride, 1, R, S, w, out, os, width, nrows, 0);
        kt->CK(spatial_rows)(packed, 0, width + S - 1, 1, R, S, w, ref, os, width, nrows, 0);
        bad += CK(check_streamed)("spatial_rows_s2", kt->CK(spatial_rows_s2), in, 0, rstride, 1,
                                  R, S, w, out, os, width, nrows);
        for (cyc_index split = 1; split < nrows; split += 4) {
            kt->CK(spatial_rows_s2)(in, 0, rstride, 1, R, S, w, two, os, width, split,
                                    CYC_ROWS_PREFETCH);
            kt->CK(spatial_rows_s2)(in + split * rstride, 0, rstride, 1, R, S, w,
                                    two + split * os, os, width, nrows - split,
                                    CYC_ROWS_PREFETCH);
            for (cyc_index t = 0; t < nrows; t++)
                if (memcmp(two + t * os, out + t * os, (size_t)width * sizeof(T)) != 0) {
                    if (bad++ < 5)
                        printf("  spatial_rows_s2_%s: splitting %d rows at %d changes row %d"
                               " (S=%d width=%d)\n", STR(SFX), (int)nrows, (int)split, (int)t,
                               (int)S, (int)width);
                    break;
                }
        }
        for (cyc_index t = 0; t < nrows; t++) {
            checks += width;
            if (memcmp(ref + t * os, out + t * os, (size_t)width * sizeof(T)) != 0 && bad++ < 5)
                printf("  spatial_rows_s2_%s is not bitwise spatial_rows (S=%d width=%d"
                       " nrows=%d row %d)\n", STR(SFX), (int)S, (int)width, (int)nrows, (int)t);
            for (cyc_index g = width; g < os; g++)
                if (out[t * os + g] != (T)SENTINEL) {
                    if (bad++ < 5) printf("  spatial_rows_s2_%s wrote between rows\n", STR(SFX));
                    break;
                }
        }
        guarded_free(in, (size_t)n_in * sizeof(T));
        free(w); free(packed); free(out); free(ref); free(two);
    }
    return bad;
}

/* depthwise_lanes: each of the L channels bitwise spatial_row on that
 * channel's plane, pixel by pixel, plus the bias (kernels.h), at strides and
 * dilations 1-3, widths across the kernel's blocks (8 pixels; 2 rows of 4;
 * 1), output pixels L or 2L apart, nothing written past each output row's
 * pixels or between them; and interleave.h's layout there and back, zeros
 * past the channels given. */
static int CK(check_depthwise_lanes)(const cyc_kernel_table *kt)
{
    const cyc_index L = kt->CK(dw_lanes);
    int bad = 0;
    for (cyc_index R = 1; R <= 5; R += 2)
    for (cyc_index S = 1; S <= 7; S += 2)
    for (cyc_index st = 1; st <= 3; st++)
    for (cyc_index dl = 1; dl <= 2; dl++)
    for (cyc_index width = 1; width <= 19; width += 1 + (width > 9))
    for (cyc_index nrows = 1; nrows <= 4; nrows++)
    for (int with_bias = 0; with_bias <= 1; with_bias++) {
        if ((R * S + width + nrows + st + dl) % 3)   /* a third of the grid */
            continue;
        cyc_index sh = st, sw = 4 - st, dh = dl, dw = 3 - dl;
        cyc_index W = (width - 1) * sw + (S - 1) * dw + 1, H = (nrows - 1) * sh + (R - 1) * dh + 1;
        cyc_index ps = (width + nrows) % 2 ? 2 * L : L;   /* output pixel step */
        cyc_index pitch = (W + 2) * L, os = width * ps + GUARD;
        T *in = CK(rand_array)(H * pitch), *w = CK(rand_array)(R * S * L), *b = CK(rand_array)(L);
        T *plane = malloc((size_t)(H * W) * sizeof(T)), *taps = malloc((size_t)(R * S) * sizeof(T));
        T *out = malloc((size_t)(nrows * os) * sizeof(T));
        for (cyc_index i = 0; i < nrows * os; i++) out[i] = (T)SENTINEL;
        kt->CK(depthwise_lanes)(in, pitch, sh, sw, dh, dw, R, S, w, with_bias ? b : NULL, out,
                                os, ps, width, nrows);
        for (cyc_index l = 0; l < L; l++) {
            for (cyc_index i = 0; i < H * W; i++) plane[i] = in[(i / W) * pitch + (i % W) * L + l];
            for (cyc_index t = 0; t < R * S; t++) taps[t] = w[t * L + l];
            for (cyc_index y = 0; y < nrows; y++)
                for (cyc_index x = 0; x < width; x++) {
                    T want;
                    kt->CK(spatial_row)(plane + y * sh * W + x * sw, 0, dh * W, dw, 1, R, S, taps,
                                        &want, 1);
                    if (with_bias) want = want + b[l];
                    checks++;
                    if (memcmp(&want, &out[y * os + x * ps + l], sizeof(T)) != 0 && bad++ < 5)
                        printf("  depthwise_lanes_%s: %dx%d stride %d,%d dilation %d,%d width %d"
                               " row %d pixel %d lane %d is not spatial_row's\n", STR(SFX),
                               (int)R, (int)S, (int)sh, (int)sw, (int)dh, (int)dw, (int)width,
                               (int)y, (int)x, (int)l);
                }
        }
        for (cyc_index y = 0; y < nrows; y++)
            for (cyc_index g = 0; g < os; g++)
                if (!(g < width * ps && g % ps < L) && out[y * os + g] != (T)SENTINEL) {
                    if (bad++ < 5) printf("  depthwise_lanes_%s wrote outside its pixels\n",
                                          STR(SFX));
                    break;
                }
        /* depthwise_taps: the taps' gradient with `out` as the output's
         * gradient, onto a start value, against the definition; and the
         * rows split over two calls, bitwise one call (`grad`: `out`'s pixels
         * packed, L apart) */
        cyc_index gs = width * L;
        T *grad = malloc((size_t)(nrows * gs) * sizeof(T));
        for (cyc_index i = 0; i < nrows * gs; i++)
            grad[i] = out[i / gs * os + i % gs / L * ps + i % L];
        T *acc = CK(rand_array)(R * S * L + GUARD), *two = malloc((size_t)(R * S * L + GUARD) * sizeof(T));
        for (cyc_index i = R * S * L; i < R * S * L + GUARD; i++) acc[i] = (T)SENTINEL;
        memcpy(two, acc, (size_t)(R * S * L + GUARD) * sizeof(T));
        T *start = malloc((size_t)(R * S * L) * sizeof(T));
        memcpy(start, acc, (size_t)(R * S * L) * sizeof(T));
        kt->CK(depthwise_taps)(in, pitch, sh, sw, dh, dw, R, S, grad, gs, width, nrows, acc);
        cyc_index split = nrows / 2;
        kt->CK(depthwise_taps)(in, pitch, sh, sw, dh, dw, R, S, grad, gs, width, split, two);
        kt->CK(depthwise_taps)(in + split * sh * pitch, pitch, sh, sw, dh, dw, R, S,
                               grad + split * gs, gs, width, nrows - split, two);
        for (cyc_index t = 0; t < R * S; t++)
            for (cyc_index l = 0; l < L; l++) {
                long double ref = start[t * L + l], mag = fabsl(ref);
                for (cyc_index y = 0; y < nrows; y++)
                    for (cyc_index x = 0; x < width; x++) {
                        long double term = (long double)grad[y * gs + x * L + l]
                            * in[(y * sh + t / S * dh) * pitch + (x * sw + t % S * dw) * L + l];
                        ref += term;
                        mag += fabsl(term);
                    }
                if (!CK(agree)(acc[t * L + l], ref, mag, nrows * width) && bad++ < 5)
                    printf("  depthwise_taps_%s: %dx%d stride %d,%d dilation %d,%d width %d"
                           " rows %d tap %d lane %d\n", STR(SFX), (int)R, (int)S, (int)sh,
                           (int)sw, (int)dh, (int)dw, (int)width, (int)nrows, (int)t, (int)l);
            }
        if (memcmp(acc, two, (size_t)(R * S * L + GUARD) * sizeof(T)) != 0 && bad++ < 5)
            printf("  depthwise_taps_%s: rows split over two calls differ (or wrote past)\n",
                   STR(SFX));
        for (cyc_index i = R * S * L; i < R * S * L + GUARD; i++)
            if (acc[i] != (T)SENTINEL) {
                if (bad++ < 5) printf("  depthwise_taps_%s wrote past the taps\n", STR(SFX));
                break;
            }
        free(acc); free(two); free(start); free(grad);
        free(in); free(w); free(b); free(plane); free(taps); free(out);
    }
    /* interleave.h: G channels of n pixels into G-value pixels and back */
    for (cyc_index G = 1; G <= 16; G *= 2)
    for (cyc_index nc = 1; nc <= G; nc++)
    for (cyc_index n = 0; n <= 9; n++) {
        cyc_index cs = n + 3;
        T *src = CK(rand_array)(G * cs), *lanes = CK(rand_array)(n * G);
        T *back = malloc((size_t)(G * cs) * sizeof(T));
        for (cyc_index i = 0; i < G * cs; i++) back[i] = (T)SENTINEL;
        CK(cyc_interleave)(src, cs, n, nc, G, lanes);
        CK(cyc_deinterleave)(lanes, G, n, nc, back, cs);
        for (cyc_index j = 0; j < n; j++)
            for (cyc_index l = 0; l < G; l++) {
                T want = l < nc ? src[l * cs + j] : 0;
                checks++;
                if (memcmp(&lanes[j * G + l], &want, sizeof(T)) != 0 && bad++ < 5)
                    printf("  interleave_%s G=%d nc=%d n=%d: pixel %d lane %d\n", STR(SFX),
                           (int)G, (int)nc, (int)n, (int)j, (int)l);
            }
        for (cyc_index l = 0; l < G; l++)
            for (cyc_index j = 0; j < cs; j++) {
                T want = l < nc && j < n ? src[l * cs + j] : (T)SENTINEL;
                if (memcmp(&back[l * cs + j], &want, sizeof(T)) != 0 && bad++ < 5)
                    printf("  deinterleave_%s G=%d nc=%d n=%d: channel %d column %d\n",
                           STR(SFX), (int)G, (int)nc, (int)n, (int)l, (int)j);
            }
        free(src); free(lanes); free(back);
    }
    /* the level's own transposes of a whole group (where it has them):
     * bitwise interleave.h's, nothing written past the n pixels / columns */
    if (kt->CK(interleave_lanes))
        for (cyc_index n = 1; n <= 3 * L + 1; n++) {
            cyc_index cs = n + 5, N = n * L + GUARD;
            T *src = CK(rand_array)(L * cs), *want = CK(rand_array)(N);
            T *got = malloc((size_t)N * sizeof(T)), *back = malloc((size_t)(L * cs) * sizeof(T));
            T *back_want = malloc((size_t)(L * cs) * sizeof(T));
            for (cyc_index i = 0; i < N; i++) got[i] = want[i] = (T)SENTINEL;
            for (cyc_index i = 0; i < L * cs; i++) back[i] = back_want[i] = (T)SENTINEL;
            kt->CK(interleave_lanes)(src, cs, n, got);
            CK(cyc_interleave)(src, cs, n, L, L, want);
            kt->CK(deinterleave_lanes)(want, n, back, cs);
            CK(cyc_deinterleave)(want, L, n, L, back_want, cs);
            checks += 2 * n * L;
            if ((memcmp(got, want, (size_t)N * sizeof(T)) != 0
                 || memcmp(back, back_want, (size_t)(L * cs) * sizeof(T)) != 0) && bad++ < 5)
                printf("  interleave_lanes_%s / deinterleave_lanes_%s n=%d: not interleave.h's\n",
                       STR(SFX), STR(SFX), (int)n);
            free(src); free(want); free(got); free(back); free(back_want);
        }
    return bad;
}

/* A tile's px pixels x KB channels against long double sums over kernel
 * rows r0 <= r < R of the products in[c*cs + r*rs + s*ds + i*sx] *
 * wp[c*wcs + (r*S + s)*KB + k]; returns the number that disagree (the
 * first ones printed). */
static int CK(tile_sums_bad)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                             cyc_index sx, cyc_index C, cyc_index r0, cyc_index R, cyc_index S,
                             const T *wp, cyc_index wcs, cyc_index KB, const T *tile,
                             cyc_index px, const char *what)
{
    int bad = 0;
    for (cyc_index i = 0; i < px; i++)
        for (cyc_index k = 0; k < KB; k++) {
            long double ref = 0, mag = 0;
            for (cyc_index c = 0; c < C; c++)
                for (cyc_index r = r0; r < R; r++)
                    for (cyc_index s = 0; s < S; s++) {
                        long double p = (long double)in[c * cs + r * rs + s * ds + i * sx]
                                        * wp[c * wcs + (r * S + s) * KB + k];
                        ref += p;
                        mag += fabsl(p);
                    }
            if (!CK(agree)(tile[i * KB + k], ref, mag, C * R * S) && bad++ < 5)
                printf("  %s_%s C=%d R=%d S=%d sx=%d pixel %d channel %d: %g != %Lg\n", what,
                       STR(SFX), (int)C, (int)R, (int)S, (int)sx, (int)i, (int)k,
                       (double)tile[i * KB + k], ref);
        }
    return bad;
}

/* blocked_tile: PT pixels x KB channels, pixel stride sx. */
static int CK(check_tile)(const cyc_kernel_table *kt, cyc_index KB)
{
    cyc_index PT = kt->tile_pixels;
    int bad = 0;
    for (cyc_index C = 1; C <= 5; C += 2)
    for (cyc_index R = 1; R <= 3; R += 2)
    for (cyc_index S = 1; S <= 3; S++)
    for (cyc_index ds = 1; ds <= 2; ds++)
    for (cyc_index dr = 1; dr <= 2; dr++)
    for (cyc_index sx = 1; sx <= 3; sx++) {
        cyc_index rstride = (PT - 1) * sx + (S - 1) * ds + 3, rows = (R - 1) * dr + 1;
        cyc_index cs = rows * rstride + 1;
        T *in = CK(rand_array)(C * cs), *wp = CK(rand_array)(C * R * S * KB);
        T *tile = malloc((size_t)(PT * KB + GUARD) * sizeof(T));
        for (cyc_index i = 0; i < PT * KB + GUARD; i++) tile[i] = (T)SENTINEL;
        kt->CK(blocked_tile)(in, cs, dr * rstride, ds, sx, C, R, S, wp, NULL, tile);
        if (C > 1) {
            /* The channels in two calls, the second from the first's partial
             * sums (init == tile): the same bits as one call. */
            cyc_index C1 = C / 2;
            T *two = malloc((size_t)(PT * KB) * sizeof(T));
            kt->CK(blocked_tile)(in, cs, dr * rstride, ds, sx, C1, R, S, wp, NULL, two);
            kt->CK(blocked_tile)(in + C1 * cs, cs, dr * rstride, ds, sx, C - C1, R, S,
                                 wp + C1 * R * S * KB, two, two);
            if (memcmp(two, tile, (size_t)(PT * KB) * sizeof(T)) != 0 && bad++ < 5)
                printf("  blocked_tile_%s C=%d R=%d S=%d sx=%d: two passes (init) differ\n",
                       STR(SFX), (int)C, (int)R, (int)S, (int)sx);
            free(two);
        }
        bad += CK(tile_sums_bad)(in, cs, dr * rstride, ds, sx, C, 0, R, S, wp, R * S * KB, KB,
                                 tile, PT, "blocked_tile");
        for (cyc_index g = 0; g < GUARD; g++)
            if (tile[PT * KB + g] != (T)SENTINEL) {
                if (bad++ < 5) printf("  blocked_tile_%s wrote past the tile\n", STR(SFX));
                break;
            }
        /* Every tile width: its pixels bitwise the full tile's first ones,
         * nothing written past them. */
        for (int n = 0; n < CYC_TILE_WIDTHS; n++) {
            cyc_index px = CYC_TILE_WIDTH(PT, n), wcs = R * S * KB;
            T *narrow = malloc((size_t)(PT * KB + GUARD) * sizeof(T));
            for (cyc_index i = 0; i < PT * KB + GUARD; i++) narrow[i] = (T)SENTINEL;
            kt->CK(blocked_tile_sized)(in, cs, dr * rstride, ds, sx, C, R, S, wcs, wp, NULL,
                                       narrow, px, 0);
            if (memcmp(narrow, tile, (size_t)(px * KB) * sizeof(T)) != 0 && bad++ < 5)
                printf("  blocked_tile_sized_%s %d pixels C=%d R=%d S=%d sx=%d: not the "
                       "full tile's bits\n", STR(SFX), (int)px, (int)C, (int)R, (int)S, (int)sx);
            if (C > 1) {
                /* In two calls, the second from the first's partial sums. */
                cyc_index C1 = C / 2;
                T *two = malloc((size_t)(px * KB) * sizeof(T));
                kt->CK(blocked_tile_sized)(in, cs, dr * rstride, ds, sx, C1, R, S, wcs, wp,
                                           NULL, two, px, 0);
                kt->CK(blocked_tile_sized)(in + C1 * cs, cs, dr * rstride, ds, sx, C - C1, R,
                                           S, wcs, wp + C1 * wcs, two, two, px, 0);
                if (memcmp(two, tile, (size_t)(px * KB) * sizeof(T)) != 0 && bad++ < 5)
                    printf("  blocked_tile_sized_%s %d pixels C=%d: two passes (init) "
                           "differ\n", STR(SFX), (int)px, (int)C);
                free(two);
            }
            for (cyc_index i = px * KB; i < PT * KB + GUARD; i++)
                if (narrow[i] != (T)SENTINEL) {
                    if (bad++ < 5)
                        printf("  blocked_tile_sized_%s wrote past its %d pixels\n", STR(SFX),
                               (int)px);
                    break;
                }
            if (R > 1) {
                /* Kernel rows 1..R-1 only (the channels' weights wcs apart):
                 * the sums of those rows' products. */
                kt->CK(blocked_tile_sized)(in + dr * rstride, cs, dr * rstride, ds, sx, C, R - 1,
                                           S, wcs, wp + S * KB, NULL, narrow, px, 0);
                bad += CK(tile_sums_bad)(in, cs, dr * rstride, ds, sx, C, 1, R, S, wp, wcs, KB,
                                         narrow, px, "blocked_tile_sized, kernel rows from 1");
            }
            if (S == 3 && sx == 1 && ds == 1) {
                /* Edge taps left out: the bits of the whole tile over an
                 * input whose left-out elements are zeros (the padding they
                 * stand for), from zero and from partial sums. */
                T *zeroed = malloc((size_t)(C * cs) * sizeof(T));
                T *full = malloc((size_t)(px * KB) * sizeof(T));
                for (int edges = 1; edges <= 3; edges++) {
                    memcpy(zeroed, in, (size_t)(C * cs) * sizeof(T));
                    for (cyc_index c = 0; c < C; c++)
                        for (cyc_index r = 0; r < R; r++) {
                            if (edges & 1) zeroed[c * cs + r * dr * rstride] = 0;
                            if (edges & 2) zeroed[c * cs + r * dr * rstride + px + 1] = 0;
                        }
                    kt->CK(blocked_tile_sized)(zeroed, cs, dr * rstride, 1, 1, C, R, 3, wcs, wp,
                                               tile, full, px, 0);
                    kt->CK(blocked_tile_sized)(in, cs, dr * rstride, 1, 1, C, R, 3, wcs, wp,
                                               tile, narrow, px, edges);
                    if (memcmp(narrow, full, (size_t)(px * KB) * sizeof(T)) != 0 && bad++ < 5)
                        printf("  blocked_tile_sized_%s %d pixels C=%d R=%d edges=%d: not the "
                               "bits over zeros\n", STR(SFX), (int)px, (int)C, (int)R, edges);
                }
                free(zeroed); free(full);
            }
            free(narrow);
        }
        free(in); free(wp); free(tile);
    }
    return bad;
}

/* gathered_tile: pixels at offsets i * sx are bitwise blocked_tile's; at
 * any offsets (repeated, out of order) each pixel is the bits of that
 * pixel in blocked_tile; over a window of the taps (weights wcs and wrs
 * apart), the window's sums. Nothing written past the tile. */
static int CK(check_gathered)(const cyc_kernel_table *kt, cyc_index KB)
{
    cyc_index PT = kt->tile_pixels;
    cyc_index off[CYC_MAX_TILE_PIXELS];
    int bad = 0;
    for (cyc_index C = 1; C <= 5; C += 2)
    for (cyc_index R = 1; R <= 3; R += 2)
    for (cyc_index S = 1; S <= 3; S++)
    for (cyc_index ds = 1; ds <= 2; ds++)
    for (cyc_index sx = 1; sx <= 2; sx++) {
        cyc_index rs = (PT - 1) * sx + (S - 1) * ds + 3, cs = R * rs + 1;
        cyc_index wcs = R * S * KB, wrs = S * KB;
        T *in = CK(rand_array)(C * cs), *wp = CK(rand_array)(C * R * S * KB);
        T *tile = malloc((size_t)(PT * KB) * sizeof(T));
        T *got = malloc((size_t)(PT * KB + GUARD) * sizeof(T));
        for (cyc_index i = 0; i < PT * KB + GUARD; i++) got[i] = (T)SENTINEL;
        kt->CK(blocked_tile)(in, cs, rs, ds, sx, C, R, S, wp, NULL, tile);
        for (cyc_index i = 0; i < PT; i++) off[i] = i * sx;
        kt->CK(gathered_tile)(in, off, cs, rs, ds, C, R, S, wcs, wrs, wp, got);
        if (memcmp(got, tile, (size_t)(PT * KB) * sizeof(T)) != 0 && bad++ < 5)
            printf("  gathered_tile_%s C=%d R=%d S=%d sx=%d: not blocked_tile's bits\n",
                   STR(SFX), (int)C, (int)R, (int)S, (int)sx);
        for (cyc_index g = 0; g < GUARD; g++)
            if (got[PT * KB + g] != (T)SENTINEL) {
                if (bad++ < 5) printf("  gathered_tile_%s wrote past the tile\n", STR(SFX));
                break;
            }
        for (cyc_index i = 0; i < PT; i++) off[i] = (PT - 1 - i / 2) * sx;
        kt->CK(gathered_tile)(in, off, cs, rs, ds, C, R, S, wcs, wrs, wp, got);
        for (cyc_index i = 0; i < PT; i++)
            if (memcmp(got + i * KB, tile + (PT - 1 - i / 2) * KB, (size_t)KB * sizeof(T)) != 0
                && bad++ < 5)
                printf("  gathered_tile_%s C=%d R=%d S=%d: pixel %d not its bits\n", STR(SFX),
                       (int)C, (int)R, (int)S, (int)i);
        if (R > 1 && S > 1) {
            /* taps r >= 1 and 1 <= s < S - 1 only */
            for (cyc_index i = 0; i < PT; i++) off[i] = i * sx + rs + ds;
            kt->CK(gathered_tile)(in, off, cs, rs, ds, C, R - 1, S - 2 > 0 ? S - 2 : 1, wcs,
                                  wrs, wp + (S + 1) * KB, got);
            for (cyc_index i = 0; i < PT; i++)
                for (cyc_index k = 0; k < KB; k++) {
                    long double ref = 0, mag = 0;
                    for (cyc_index c = 0; c < C; c++)
                        for (cyc_index r = 1; r < R; r++)
                            for (cyc_index s = 1; s < (S - 1 > 1 ? S - 1 : 2); s++) {
                                long double p = (long double)in[c * cs + r * rs + s * ds + i * sx]
                                                * wp[c * wcs + r * wrs + s * KB + k];
                                ref += p;
                                mag += fabsl(p);
                            }
                    if (!CK(agree)(got[i * KB + k], ref, mag, C * R * S) && bad++ < 5)
                        printf("  gathered_tile_%s window C=%d R=%d S=%d pixel %d channel %d: "
                               "%g != %Lg\n", STR(SFX), (int)C, (int)R, (int)S, (int)i, (int)k,
                               (double)got[i * KB + k], ref);
                }
        }
        free(in); free(wp); free(tile); free(got);
    }
    return bad;
}

/* tile_store.h: one channel of a channels-innermost tile into npx
 * consecutive outputs, with and without a bias: bitwise the scalar
 * t + bias (or t itself, -0.0 included), nothing written past npx. */
static int CK(check_store)(void)
{
    int bad = 0;
    for (cyc_index KB = 4; KB <= 32; KB *= 2)
    for (cyc_index npx = 0; npx <= 16; npx++)
    for (int with_bias = 0; with_bias <= 1; with_bias++) {
        T *tile = CK(rand_array)(16 * KB), out[16 + GUARD], bias = (T)urand();
        tile[0] = (T)-0.0;
        for (cyc_index i = 0; i < 16 + GUARD; i++) out[i] = (T)SENTINEL;
        CK(cyc_store_channel)(tile, KB, out, npx, with_bias ? &bias : NULL);
        for (cyc_index i = 0; i < npx; i++) {
            T want = with_bias ? tile[i * KB] + bias : tile[i * KB];
            checks++;
            if (memcmp(&out[i], &want, sizeof(T)) != 0 && bad++ < 5)
                printf("  store_channel_%s KB=%d npx=%d bias=%d pixel %d: %g != %g\n", STR(SFX),
                       (int)KB, (int)npx, with_bias, (int)i, (double)out[i], (double)want);
        }
        for (cyc_index i = npx; i < 16 + GUARD; i++)
            if (out[i] != (T)SENTINEL) {
                if (bad++ < 5) printf("  store_channel_%s wrote past npx=%d\n", STR(SFX), (int)npx);
                break;
            }
        free(tile);
    }
    return bad;
}

/* flat_tile: FK channels x FP consecutive pixels, weights unpacked. */
static int CK(check_flat)(const cyc_kernel_table *kt, cyc_index FP)
{
    cyc_index FK = kt->flat_channels;
    int bad = 0;
    for (cyc_index C = 1; C <= 3; C += 2)
    for (cyc_index R = 1; R <= 3; R += 2)
    for (cyc_index S = 1; S <= 3; S++)
    for (cyc_index ds = 1; ds <= 2; ds++) {
        cyc_index rstride = FP + (S - 1) * ds + 2, cs = R * rstride + 1;
        T *in = CK(rand_array)(C * cs);
        T *wts = CK(rand_array)(FK * C * R * S);
        const T **wk = malloc((size_t)FK * sizeof(*wk));
        T *tile = malloc((size_t)(FK * FP + GUARD) * sizeof(T));
        for (cyc_index k = 0; k < FK; k++) wk[k] = wts + k * C * R * S;
        for (cyc_index i = 0; i < FK * FP + GUARD; i++) tile[i] = (T)SENTINEL;
        kt->CK(flat_tile)(in, cs, rstride, ds, C, R, S, (const T *const *)wk, tile);
        for (cyc_index k = 0; k < FK; k++)
            for (cyc_index x = 0; x < FP; x++) {
                long double ref = 0, mag = 0;
                for (cyc_index c = 0; c < C; c++)
                    for (cyc_index r = 0; r < R; r++)
                        for (cyc_index s = 0; s < S; s++) {
                            long double p = (long double)wk[k][(c * R + r) * S + s]
                                            * in[c * cs + r * rstride + s * ds + x];
                            ref += p;
                            mag += fabsl(p);
                        }
                if (!CK(agree)(tile[k * FP + x], ref, mag, C * R * S) && bad++ < 5)
                    printf("  flat_tile_%s C=%d R=%d S=%d ds=%d channel %d pixel %d: %g != %Lg\n",
                           STR(SFX), (int)C, (int)R, (int)S, (int)ds, (int)k, (int)x,
                           (double)tile[k * FP + x], ref);
            }
        for (cyc_index g = 0; g < GUARD; g++)
            if (tile[FK * FP + g] != (T)SENTINEL) {
                if (bad++ < 5) printf("  flat_tile_%s wrote past the tile\n", STR(SFX));
                break;
            }
        free(in); free(wts); free(wk); free(tile);
    }
    return bad;
}

#undef CK
#undef CK_CAT
#undef CK_CAT_
