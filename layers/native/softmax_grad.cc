// The backward of a softmax over the last axis, dx = y * (dy - sum(dy * y)) per row, as a
// MindSpore CPU "aot" Custom-op kernel (layers/native.py builds it at first use;
// layers/activations.py's LastAxisSoftmax calls it from its bprop while training on the CPU).
// As MindSpore ops it is a Mul, a row sum, a Sub and a Mul over the whole attention matrix:
// here one read of (y, dy) per row for the sum and one to write dx, the row still in cache.
//
//   SoftmaxGrad(y [..., K], dy [..., K]) -> dx [..., K]; float32 only (else returns 2).
#include <cstdint>
#include <cstring>

extern "C" int SoftmaxGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                           void *stream, void *extra) {
  if (nparam != 3 || ndims[0] < 1) return 1;
  for (int i = 0; i < nparam; ++i) {
    if (std::strcmp(dtypes[i], "float32") != 0) return 2;
  }
  const float *y = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t width = shapes[0][ndims[0] - 1];
  int64_t rows = 1;
  for (int i = 0; i < ndims[0] - 1; ++i) rows *= shapes[0][i];
  for (int64_t r = 0; r < rows; ++r) {
    const float *yr = y + r * width, *dyr = dy + r * width;
    float *dxr = dx + r * width;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < width; ++i) s += yr[i] * dyr[i];
#pragma omp simd
    for (int64_t i = 0; i < width; ++i) dxr[i] = yr[i] * (dyr[i] - s);
  }
  return 0;
}
