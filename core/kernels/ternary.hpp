// Ternary values {-1, 0, +1} (int8, element order) to and from the packed weight formats:
// I2_S (bitnet.cpp, SPEC.md 1.3) and TQ1_0/TQ2_0 (ggml, SPEC.md 1.5). The encoders write what
// bitnet.cpp's and ggml's reference quantizers write for ternary input, byte for byte; the
// decoders are the inverses (blocks.hpp holds the per-block layouts they share with the kernels).
#pragma once

#include <cstdint>

namespace bitnet::kernels {

inline constexpr int64_t kI2sTailBytes = 32;  // f32 scale + 28 bytes bitnet.cpp leaves unspecified

// I2_S codes of elements [first, first + n): first and n multiples of 128. Writes n/4 bytes,
// the codes of element `first` landing at out[0] (the tensor's byte first/4).
void pack_i2s(const int8_t* t, int64_t n, uint8_t* out);
// The 32-byte tail after the codes: the f32 scale, then zeros.
void pack_i2s_tail(float scale, uint8_t* out);
// Element values of codes [first, first + n) (any first, n): code 0 -> -1, 1 -> 0, 2 -> +1, and
// the never-written code 3 -> 0 as bitnet.cpp decodes it.
void unpack_i2s(const uint8_t* codes, int64_t first, int64_t n, int8_t* t);

// n_blocks blocks of 256 elements; d[b] is block b's f16 scale (bits). 66 / 54 bytes per block.
void pack_tq2_0(const int8_t* t, int64_t n_blocks, const uint16_t* d, uint8_t* out);
void pack_tq1_0(const int8_t* t, int64_t n_blocks, const uint16_t* d, uint8_t* out);

// The same encoders fed with codes c = t + 1 in {0, 1, 2} instead of values (what both formats
// store; saves a pass when values are generated as codes).
void pack_i2s_codes(const uint8_t* c, int64_t n, uint8_t* out);
void pack_tq2_0_codes(const uint8_t* c, int64_t n_blocks, const uint16_t* d, uint8_t* out);

// TQ1_0 blocks rewritten as TQ2_0 blocks: the same ternary values and the same f16 scale, so every
// dot product of the result equals the source's (both formats share one dot definition). 54 bytes
// in, 66 out per block. Lets TQ1_0 weights use the TQ2_0 GEMM entries.
void tq1_0_to_tq2_0(const uint8_t* src, int64_t n_blocks, uint8_t* dst);
void pack_tq1_0_codes(const uint8_t* c, int64_t n_blocks, const uint16_t* d, uint8_t* out);

// Decoders of whole blocks: values and f16 scale bits. TQ2_0's code 3 (value +2, which no
// quantizer writes) comes out as 2, so callers can tell the block is not ternary.
void unpack_tq2_0(const uint8_t* blocks, int64_t n_blocks, int8_t* t, uint16_t* d);
void unpack_tq1_0(const uint8_t* blocks, int64_t n_blocks, int8_t* t, uint16_t* d);

}  // namespace bitnet::kernels
