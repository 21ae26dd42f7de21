// The exact GELU, y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), forward and backward, as
// MindSpore CPU "aot" Custom-op kernels (layers/native.py builds this file at first use;
// layers/activations.py's GELU calls it on the CPU, SimVP's and TAU's attention and MLP),
// and the sigmoid gate of SimVP's gSTA attention in the same way (SigmoidGate below).
//
// Why: MindSpore's CPU Erf is scalar (43-66 ms for 8.4 M values, SimVP's MLP), and its GELU
// gradient another ~6 elementwise ops. Here both directions are one vectorised pass: erf from
// Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7, float32's resolution near 1; the
// same formula as the ONNX export's GELUForExport), exp(-x^2 / 2) from a range-reduced
// polynomial (relative error ~1e-7), written so that the compiler vectorises the loops
// (glibc's scalar erff / expf would not be).
//
//   Gelu(x) -> y;  GeluGrad(x, dy) -> dx = dy * (Phi(x) + x phi(x)); float32 only (else 2).
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

bool all_float32(int nparam, const char **dtypes) {
  for (int i = 0; i < nparam; ++i) {
    if (std::strcmp(dtypes[i], "float32") != 0) return false;
  }
  return true;
}

int64_t count(int ndims, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndims; ++i) n *= shape[i];
  return n;
}

// exp(v) for v <= 0: v = k ln 2 + r, |r| <= ln 2 / 2, exp(r) by its degree-6 Taylor polynomial
// (error below r^7 / 5040 ~ 1.2e-7 relative), 2^k through the exponent bits; below -87 it
// returns ~2^-126 (the callers multiply it by values that make it vanish anyway)
inline float exp_nonpositive(float v) {
  v = v > -87.0f ? v : -87.0f;  // (not fmaxf: its NaN rule keeps it scalar)
  // round to nearest through a truncating conversion (v <= 0), which vectorises where floorf does not
  const int32_t ki = static_cast<int32_t>(v * 1.44269504f - 0.5f);
  const float k = static_cast<float>(ki);
  const float r = (v - k * 0.693145752f) - k * 1.42860677e-6f;  // ln 2 in two parts
  const float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666667e-1f + r * (4.16666667e-2f +
                  r * (8.33333333e-3f + r * 1.38888889e-3f)))));
  union {  // 2^k from its bits (a union, not memcpy: GCC then vectorises the callers' loops)
    int32_t bits;
    float value;
  } scale;
  scale.bits = (ki + 127) << 23;
  return p * scale.value;
}

// erf(|x| / sqrt 2) by A&S 7.1.26, given gauss = exp(-x^2 / 2) (values, no pointers: the
// loops below stay vectorisable)
inline float erf_abs(float x, float gauss) {
  const float t = 1.0f / (1.0f + 0.3275911f * 0.70710678f * std::fabs(x));
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f +
                     t * 1.061405429f))));
  return 1.0f - poly * gauss;
}

}  // namespace

extern "C" int Gelu(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  if (nparam != 2) return 1;
  if (!all_float32(nparam, dtypes)) return 2;
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t n = count(ndims[0], shapes[0]);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float e = erf_abs(x[i], exp_nonpositive(-0.5f * x[i] * x[i]));
    y[i] = 0.5f * (x[i] + std::fabs(x[i]) * e);  // x * sign(x) * erf(|x| / sqrt 2) = |x| e
  }
  return 0;
}

extern "C" int GeluGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                        void *extra) {
  if (nparam != 3) return 1;
  if (!all_float32(nparam, dtypes)) return 2;
  const float *x = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t n = count(ndims[0], shapes[0]);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float gauss = exp_nonpositive(-0.5f * x[i] * x[i]);
    const float e = erf_abs(x[i], gauss);
    const float phi_cdf = 0.5f + 0.5f * std::copysign(e, x[i]);
    dx[i] = dy[i] * (phi_cdf + x[i] * gauss * 0.398942280f);  // phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
  }
  return 0;
}

// The sigmoid gate of gSTA's attention on [B, 2C, ...]: y = sigmoid(g) * f, f the first C
// channels and g the last C (one pass, where MindSpore ran two StridedSlices, Sigmoid and Mul
// forward and four more ops backward). sigmoid(g) from e = exp(-|g|): 1 / (1 + e) for g >= 0,
// e / (1 + e) below.
//   SigmoidGate(fg) -> y [B, C, ...];  SigmoidGateGrad(fg, dy) -> dfg [B, 2C, ...]

namespace {

inline float sigmoid(float g) {
  const float e = exp_nonpositive(-std::fabs(g));
  return (g >= 0.0f ? 1.0f : e) / (1.0f + e);
}

// B and n = C * (the rest) of fg [B, 2C, ...]: per sample f is fg[0, n), g is fg[n, 2n);
// false when the channels are odd or there are fewer than 2 dims
bool gate_dims(int ndims, const int64_t *shape, int64_t *batch, int64_t *n) {
  if (ndims < 2 || shape[1] % 2 != 0) return false;
  *batch = shape[0];
  *n = shape[1] / 2 * count(ndims - 2, shape + 2);
  return true;
}

}  // namespace

extern "C" int SigmoidGate(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                           void *stream, void *extra) {
  if (nparam != 2) return 1;
  if (!all_float32(nparam, dtypes)) return 2;
  int64_t batch, n;
  if (!gate_dims(ndims[0], shapes[0], &batch, &n)) return 3;
  const float *fg = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  for (int64_t b = 0; b < batch; ++b) {
    const float *f = fg + 2 * n * b;
    const float *g = f + n;
    float *out = y + n * b;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = sigmoid(g[i]) * f[i];
  }
  return 0;
}

extern "C" int SigmoidGateGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                               void *stream, void *extra) {
  if (nparam != 3) return 1;
  if (!all_float32(nparam, dtypes)) return 2;
  int64_t batch, n;
  if (!gate_dims(ndims[0], shapes[0], &batch, &n)) return 3;
  const float *fg = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dfg = static_cast<float *>(params[2]);
  for (int64_t b = 0; b < batch; ++b) {
    const float *f = fg + 2 * n * b;
    const float *g = f + n;
    const float *d = dy + n * b;
    float *df = dfg + 2 * n * b;
    float *dg = df + n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float s = sigmoid(g[i]);
      df[i] = d[i] * s;
      dg[i] = d[i] * f[i] * s * (1.0f - s);
    }
  }
  return 0;
}
