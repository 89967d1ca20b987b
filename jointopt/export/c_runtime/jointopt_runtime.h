/* jointopt_runtime.h: integer kernels of the jointopt C runtime (C99, libc only, no allocation).
 *
 * Shipped unchanged with every `jointopt export --format c`; the generated NAME.c calls these
 * kernels in execution order on one static arena. Numbers (see the README, "Integer format"):
 *
 *  - activations: int8, real = (q - zero) * scale; zero = -128 for unsigned tensors, 0 for signed
 *  - weights: per output channel c, bits(c) in {2, 4, 8}, two's-complement codes in
 *    [-2^(bits-1), 2^(bits-1) - 1], one LSB-first bit stream per layer, channels contiguous, each
 *    channel's codes in the order (input channel, kernel row, kernel column)
 *  - accumulator: int32, bias[c] + sum (x - zero_in) * code
 *  - requantization: q = clamp(zero + floor((acc * mult + 2^(shift-1)) / 2^shift), lo, hi),
 *    the product in 64 bits (round to nearest, ties toward +infinity, one rounding)
 */
#ifndef JOINTOPT_RUNTIME_H
#define JOINTOPT_RUNTIME_H

#include <stdint.h>

#define JOINTOPT_RUNTIME_VERSION 1

/* One requantized output of a convolution, add or average pool. */
typedef struct {
    int8_t *out;           /* output codes */
    const int32_t *mult;   /* multiplier: per output channel (convolution) or one value */
    const int8_t *shift;   /* right shift 1..62, same indexing as mult */
    int32_t zero, lo, hi;  /* output zero point and stored code range (fused ReLU / ReLU6 / clip) */
} jointopt_head_t;

/* A Conv1d (in_h = out_h = 1), Conv2d or Linear (all spatial sizes 1) with packed weights. */
typedef struct {
    const uint8_t *weight;   /* packed codes, LSB-first stream, channels contiguous */
    const uint8_t *widths;   /* 2 bits per output channel, LSB-first: bits = 2 << field (2, 4 or 8) */
    const int32_t *bias;     /* [out_c] int32 bias in units of input scale * weight step */
    uint16_t in_c, in_h, in_w, out_c, out_h, out_w, groups;
    uint16_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
    int16_t in_zero;         /* zero point of the input tensor */
} jointopt_conv_t;

/* A pooling window over an int8 tensor [c][in_h][in_w]. */
typedef struct {
    uint16_t c, in_h, in_w, out_h, out_w;
    uint16_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
    int16_t in_zero;
} jointopt_pool_t;

/* Weight bits of output channel c: 2, 4 or 8. */
uint32_t jointopt_weight_bits(const jointopt_conv_t *l, uint32_t c);
/* Stream bit where output channel c starts: the sum of bits * codes over the channels before it. */
uint32_t jointopt_bit_offset(const jointopt_conv_t *l, uint32_t c);
/* Code i of output channel c (random access; the kernels decode a whole channel at a time). */
int32_t jointopt_weight_code(const jointopt_conv_t *l, uint32_t c, uint32_t i);
/* Codes per output channel: (in_c / groups) * kernel_h * kernel_w. */
uint32_t jointopt_codes_per_channel(const jointopt_conv_t *l);

/* Round v * mult / 2^shift to the nearest integer (ties toward +infinity), exactly. */
int32_t jointopt_requantize(int32_t v, int32_t mult, int32_t shift);

/* Float input -> codes: q = clamp(zero + rintf(clamp(x, lo_real, hi_real) * inv), lo, hi). */
void jointopt_quantize(const float *x, int8_t *out, uint32_t n, float lo_real, float hi_real, float inv,
                       int32_t zero, int32_t lo, int32_t hi);
/* Convolution / linear layer. scratch (4-byte aligned) holds one output row of int32 accumulators and
 * one channel's decoded codes: 4 * out_w + codes_per_channel bytes; acc_out (or 0) receives the int32
 * accumulators [out_c][out_h][out_w] when the layer's output is the network output. */
void jointopt_conv(const jointopt_conv_t *l, const int8_t *in, int8_t *scratch, const jointopt_head_t *heads,
                   uint32_t n_heads, int32_t *acc_out);
/* out = clamp(zero + round(((a - za) * mult[0] + (b - zb) * mult_b) / 2^shift[0]), lo, hi), in 32 bits:
 * both multipliers are below 2^21, so the sum and the rounding term fit. */
void jointopt_add(const int8_t *a, int32_t za, const int8_t *b, int32_t zb, uint32_t n, const jointopt_head_t *head,
                  int32_t mult_b);
/* Average pool: window sums of (x - zero) (padding counts as 0), one requantization per head. */
void jointopt_avgpool(const jointopt_pool_t *p, const int8_t *in, const jointopt_head_t *heads, uint32_t n_heads);
/* Max pool on the codes (padding skipped). */
void jointopt_maxpool(const jointopt_pool_t *p, const int8_t *in, int8_t *out);
/* Padding of [c][in_h][in_w] by top/left (out_h x out_w): mode 0 fills the zero point `fill`,
 * 1 reflects (without repeating the edge), 2 replicates the edge, 3 wraps around (circular). */
void jointopt_pad(const int8_t *in, int8_t *out, uint32_t c, uint32_t in_h, uint32_t in_w, uint32_t out_h,
                  uint32_t out_w, uint32_t top, uint32_t left, int32_t mode, int32_t fill);
void jointopt_clamp(const int8_t *in, int8_t *out, uint32_t n, int32_t lo, int32_t hi);
void jointopt_copy(const int8_t *in, int8_t *out, uint32_t n);
/* out[i] = table[in[i] + 128] */
void jointopt_lut(const int8_t *in, int8_t *out, uint32_t n, const int8_t *table);
/* Network output: float(acc[c]) * scale[c], or float(q - zero) * scale. */
void jointopt_dequantize_acc(const int32_t *acc, const float *scale, uint32_t n, float *out);
void jointopt_dequantize(const int8_t *q, int32_t zero, float scale, uint32_t n, float *out);

#endif /* JOINTOPT_RUNTIME_H */
