/* jointopt_runtime.c: the integer kernels (C99, libc only, no allocation). See jointopt_runtime.h. */
#include "jointopt_runtime.h"

#include <math.h>
#include <string.h>

/* floor(v / 2^shift) without shifting a negative number (implementation-defined in C99). */
static int64_t floor_shift64(int64_t v, int32_t shift) {
    return v >= 0 ? v >> shift : -((-v - 1) >> shift) - 1;
}

static int32_t floor_shift32(int32_t v, int32_t shift) {
    return v >= 0 ? v >> shift : -((-v - 1) >> shift) - 1;
}

static int8_t clamp8(int32_t v, int32_t lo, int32_t hi) {
    return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}

int32_t jointopt_requantize(int32_t v, int32_t mult, int32_t shift) {
    int64_t p = (int64_t)v * (int64_t)mult + ((int64_t)1 << (shift - 1));
    return (int32_t)floor_shift64(p, shift);
}

uint32_t jointopt_weight_bits(const jointopt_conv_t *l, uint32_t c) {
    return 2u << ((l->widths[c / 4u] >> (2u * (c % 4u))) & 3u);
}

uint32_t jointopt_codes_per_channel(const jointopt_conv_t *l) {
    return (uint32_t)(l->in_c / l->groups) * l->kernel_h * l->kernel_w;
}

uint32_t jointopt_bit_offset(const jointopt_conv_t *l, uint32_t c) {
    uint32_t k, bit = 0, n = jointopt_codes_per_channel(l);
    for (k = 0; k < c; ++k)
        bit += jointopt_weight_bits(l, k) * n;
    return bit;
}

/* The b-bit two's-complement code at stream bit `bit` (b in 2, 4, 8: at most two bytes). */
static int32_t read_code(const uint8_t *stream, uint32_t bit, uint32_t b) {
    uint32_t byte = bit / 8u, shift = bit % 8u;
    uint32_t v = (uint32_t)stream[byte] >> shift;
    if (shift + b > 8u)
        v |= (uint32_t)stream[byte + 1u] << (8u - shift);
    v &= (1u << b) - 1u;
    return (v & (1u << (b - 1u))) ? (int32_t)v - (int32_t)(1u << b) : (int32_t)v;
}

int32_t jointopt_weight_code(const jointopt_conv_t *l, uint32_t c, uint32_t i) {
    uint32_t b = jointopt_weight_bits(l, c);
    return read_code(l->weight, jointopt_bit_offset(l, c) + i * b, b);
}

void jointopt_quantize(const float *x, int8_t *out, uint32_t n, float lo_real, float hi_real, float inv,
                       int32_t zero, int32_t lo, int32_t hi) {
    uint32_t i;
    for (i = 0; i < n; ++i) {
        float v = x[i];
        float scaled;
        if (!(v >= lo_real))
            v = lo_real; /* also maps NaN to the lower bound */
        if (v > hi_real)
            v = hi_real;
        scaled = v * inv;
        out[i] = clamp8(zero + (int32_t)rintf(scaled), lo, hi);
    }
}

static void write_heads(const jointopt_head_t *heads, uint32_t n_heads, uint32_t channel, uint32_t index, int32_t acc,
                        int per_channel) {
    uint32_t h;
    for (h = 0; h < n_heads; ++h) {
        const jointopt_head_t *head = &heads[h];
        uint32_t k = per_channel ? channel : 0u;
        heads[h].out[index] = clamp8(head->zero + jointopt_requantize(acc, head->mult[k], head->shift[k]),
                                     head->lo, head->hi);
    }
}

/* The kernel taps k in [0, n) with 0 <= start + k * step < size: [*lo, *hi). */
static void valid_taps(int32_t start, uint32_t step, uint32_t n, uint32_t size, uint32_t *lo, uint32_t *hi) {
    int32_t first = 0, last = (int32_t)n;
    if (start < 0)
        first = (-start + (int32_t)step - 1) / (int32_t)step;
    if ((int32_t)size - start <= 0)
        last = 0;
    else if (start + (last - 1) * (int32_t)step >= (int32_t)size)
        last = ((int32_t)size - start + (int32_t)step - 1) / (int32_t)step;
    *lo = (uint32_t)first;
    *hi = (uint32_t)(last > first ? last : first);
}

/* One output row of one channel at a time: acc[ox] (int32, at the start of the scratch buffer) collects
 * every tap, the inner loop runs along the row (contiguous for stride 1); zero weights are skipped.
 * The scratch holds out_w accumulators, then the channel's decoded codes. */
void jointopt_conv(const jointopt_conv_t *l, const int8_t *in, int8_t *scratch, const jointopt_head_t *heads,
                   uint32_t n_heads, int32_t *acc_out) {
    const uint32_t cin_g = (uint32_t)l->in_c / l->groups, cout_g = (uint32_t)l->out_c / l->groups;
    const uint32_t n = jointopt_codes_per_channel(l), plane = (uint32_t)l->in_h * l->in_w;
    const uint32_t taps = (uint32_t)l->kernel_h * l->kernel_w;
    const int32_t in_zero = l->in_zero;
    int32_t *acc = (int32_t *)(void *)scratch;  /* the arena gives scratch a 4-byte aligned offset */
    int8_t *codes = scratch + 4u * l->out_w;
    uint32_t oc, bit = 0;
    for (oc = 0; oc < l->out_c; ++oc) {
        const uint32_t b = jointopt_weight_bits(l, oc);
        const int8_t *first = in + (size_t)(oc / cout_g) * cin_g * plane;
        uint32_t i, oy, ox;
        for (i = 0; i < n; ++i, bit += b) /* decode this channel's codes once */
            codes[i] = (int8_t)read_code(l->weight, bit, b);
        for (oy = 0; oy < l->out_h; ++oy) {
            const int32_t iy0 = (int32_t)(oy * l->stride_h) - l->pad_h;
            uint32_t ic, ky, kx, ky_lo, ky_hi;
            valid_taps(iy0, l->dilation_h, l->kernel_h, l->in_h, &ky_lo, &ky_hi);
            for (ox = 0; ox < l->out_w; ++ox)
                acc[ox] = l->bias[oc];
            for (ic = 0; ic < cin_g; ++ic) {
                for (ky = ky_lo; ky < ky_hi; ++ky) {
                    const int8_t *x = first + (size_t)ic * plane +
                                      (size_t)(iy0 + (int32_t)(ky * l->dilation_h)) * l->in_w;
                    for (kx = 0; kx < l->kernel_w; ++kx) {
                        const int32_t w = codes[ic * taps + ky * l->kernel_w + kx];
                        const int32_t shift = (int32_t)(kx * l->dilation_w) - l->pad_w; /* ix = ox * stride + shift */
                        uint32_t ox_lo, ox_hi;
                        if (w == 0)
                            continue;
                        valid_taps(shift, l->stride_w, l->out_w, l->in_w, &ox_lo, &ox_hi);
                        if (l->stride_w == 1) { /* contiguous: a loop the compiler vectorises */
                            const int8_t *xs = x + (int32_t)ox_lo + shift;
                            int32_t *as = acc + ox_lo;
                            const uint32_t count = ox_hi - ox_lo;
                            for (ox = 0; ox < count; ++ox)
                                as[ox] += ((int32_t)xs[ox] - in_zero) * w;
                        } else {
                            for (ox = ox_lo; ox < ox_hi; ++ox)
                                acc[ox] += ((int32_t)x[(int32_t)(ox * l->stride_w) + shift] - in_zero) * w;
                        }
                    }
                }
            }
            for (ox = 0; ox < l->out_w; ++ox) {
                const uint32_t index = (oc * l->out_h + oy) * l->out_w + ox;
                if (acc_out)
                    acc_out[index] = acc[ox];
                write_heads(heads, n_heads, oc, index, acc[ox], 1);
            }
        }
    }
}

void jointopt_add(const int8_t *a, int32_t za, const int8_t *b, int32_t zb, uint32_t n, const jointopt_head_t *head,
                  int32_t mult_b) {
    const int32_t shift = head->shift[0], round = (int32_t)1 << (shift - 1), ma = head->mult[0], mb = mult_b;
    uint32_t i;
    for (i = 0; i < n; ++i) {
        int32_t v = ((int32_t)a[i] - za) * ma + ((int32_t)b[i] - zb) * mb + round;
        head->out[i] = clamp8(head->zero + floor_shift32(v, shift), head->lo, head->hi);
    }
}

void jointopt_avgpool(const jointopt_pool_t *p, const int8_t *in, const jointopt_head_t *heads, uint32_t n_heads) {
    uint32_t c, oy, ox, ky, kx;
    for (c = 0; c < p->c; ++c) {
        const int8_t *x = in + (size_t)c * p->in_h * p->in_w;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                int32_t sum = 0;
                for (ky = 0; ky < p->kernel_h; ++ky) {
                    const int32_t iy = (int32_t)(oy * p->stride_h + ky) - p->pad_h;
                    if (iy < 0 || iy >= (int32_t)p->in_h)
                        continue;
                    for (kx = 0; kx < p->kernel_w; ++kx) {
                        const int32_t ix = (int32_t)(ox * p->stride_w + kx) - p->pad_w;
                        if (ix >= 0 && ix < (int32_t)p->in_w)
                            sum += (int32_t)x[iy * (int32_t)p->in_w + ix] - p->in_zero;
                    }
                }
                write_heads(heads, n_heads, c, (c * p->out_h + oy) * p->out_w + ox, sum, 0);
            }
        }
    }
}

void jointopt_maxpool(const jointopt_pool_t *p, const int8_t *in, int8_t *out) {
    uint32_t c, oy, ox, ky, kx;
    for (c = 0; c < p->c; ++c) {
        const int8_t *x = in + (size_t)c * p->in_h * p->in_w;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                int32_t best = -128;
                for (ky = 0; ky < p->kernel_h; ++ky) {
                    const int32_t iy = (int32_t)(oy * p->stride_h + ky * p->dilation_h) - p->pad_h;
                    if (iy < 0 || iy >= (int32_t)p->in_h)
                        continue;
                    for (kx = 0; kx < p->kernel_w; ++kx) {
                        const int32_t ix = (int32_t)(ox * p->stride_w + kx * p->dilation_w) - p->pad_w;
                        if (ix >= 0 && ix < (int32_t)p->in_w && x[iy * (int32_t)p->in_w + ix] > best)
                            best = x[iy * (int32_t)p->in_w + ix];
                    }
                }
                out[(c * p->out_h + oy) * p->out_w + ox] = (int8_t)best;
            }
        }
    }
}

/* Source index of padded position i (i - before in the input's coordinates) along an axis of n. */
static int32_t pad_source(int32_t i, int32_t n, int32_t mode) {
    if (i >= 0 && i < n)
        return i;
    if (mode == 1) /* reflect: -1 -> 1, n -> n - 2 */
        return i < 0 ? -i : 2 * (n - 1) - i;
    if (mode == 2) /* replicate */
        return i < 0 ? 0 : n - 1;
    if (mode == 3) /* circular */
        return ((i % n) + n) % n;
    return -1; /* constant */
}

void jointopt_pad(const int8_t *in, int8_t *out, uint32_t c, uint32_t in_h, uint32_t in_w, uint32_t out_h,
                  uint32_t out_w, uint32_t top, uint32_t left, int32_t mode, int32_t fill) {
    uint32_t k, oy, ox;
    for (k = 0; k < c; ++k) {
        const int8_t *x = in + (size_t)k * in_h * in_w;
        int8_t *y = out + (size_t)k * out_h * out_w;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t iy = pad_source((int32_t)oy - (int32_t)top, (int32_t)in_h, mode);
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t ix = pad_source((int32_t)ox - (int32_t)left, (int32_t)in_w, mode);
                y[oy * out_w + ox] = (iy < 0 || ix < 0) ? (int8_t)fill : x[iy * (int32_t)in_w + ix];
            }
        }
    }
}

void jointopt_clamp(const int8_t *in, int8_t *out, uint32_t n, int32_t lo, int32_t hi) {
    uint32_t i;
    for (i = 0; i < n; ++i)
        out[i] = clamp8(in[i], lo, hi);
}

void jointopt_copy(const int8_t *in, int8_t *out, uint32_t n) {
    memcpy(out, in, n);
}

void jointopt_lut(const int8_t *in, int8_t *out, uint32_t n, const int8_t *table) {
    uint32_t i;
    for (i = 0; i < n; ++i)
        out[i] = table[(int32_t)in[i] + 128];
}

void jointopt_dequantize_acc(const int32_t *acc, const float *scale, uint32_t n, float *out) {
    uint32_t i;
    for (i = 0; i < n; ++i)
        out[i] = (float)acc[i] * scale[i];
}

void jointopt_dequantize(const int8_t *q, int32_t zero, float scale, uint32_t n, float *out) {
    uint32_t i;
    for (i = 0; i < n; ++i)
        out[i] = (float)((int32_t)q[i] - zero) * scale;
}
