// The one way this engine sums floats in double: rms_norm's sum of squares and softmax_f32's sum
// of exps (whose vector entries reproduce it lane by lane).
#pragma once

#include <cstdint>

namespace bitnet::kernels {

// Sums f(i) for i < n in double over eight interleaved partial sums (element i in part i % 8),
// the parts added ((0+1)+(2+3))+((4+5)+(6+7)): a single running sum waits for the previous add
// every time (four cycles), which made the norms and the softmax a tenth of a prompt's time. The
// grouping moves only the double's last bits, below what the float results keep. The same n
// always gives the same grouping, whatever the thread.
template <typename F>
double sum_double(int64_t n, F f) {
  double part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += static_cast<double>(f(i + j));
  for (int j = 0; i < n; ++i, ++j) part[j] += static_cast<double>(f(i));
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

}  // namespace bitnet::kernels
