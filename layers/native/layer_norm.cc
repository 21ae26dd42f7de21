// Per-sample LayerNorm over all non-batch axes (torch.nn.LayerNorm(x.shape[1:]): biased
// variance, eps inside the square root) with an affine of one scale and shift per channel or
// per element, forward and backward, as MindSpore CPU "aot" Custom-op kernels.
// layers/native.py builds this file at first use; layers/layer_norm.py calls it while training.
//
// Why a kernel: the same maths as MindSpore ops is ~10 elementwise passes and launches per
// call, and its broadcast gradients are slow ReduceSums. Here the forward reads x once for
// the statistics and once to write y; the backward reads (x, dy) once for every sum and once
// to write dx.
//
// Signature of every MindSpore aot kernel: params holds the inputs, then the outputs.
//   LayerNorm(x [B, C, ...], gamma, beta, eps [1]) -> y
//   LayerNormGrad(x, gamma, dy, eps [1]) -> dx, dgamma, dbeta
// gamma and beta hold C values (per channel, shape [C, 1, ...]) or C * rest (per element).
// GroupNorm (torch.nn.GroupNorm: statistics per sample and group of C / G channels, one scale
// and shift per channel) is the same kernel with eps [2] = (eps, G): the samples are then the
// B * G groups, gamma and beta C values.
// Every sum and every output is taken around a shift (the mean of the sample's first 256
// values), so that neither E[d^2] - E[d]^2 nor x * scale + offset cancels when the mean
// dwarfs the spread; per-channel partial sums in float (vectorised), totals in double.
// float32 only (anything else returns 2: MindSpore then stops with an error).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

struct Layout {
  int64_t batch, channels, rest;  // x viewed as [batch, channels, rest] (GroupNorm: batch B * G, channels C / G)
  bool per_channel;               // gamma: [C] (else [C * rest])
  int64_t groups;                 // GroupNorm's G (1: LayerNorm); sample b's gamma starts at (b % G) * channels
  int64_t size() const { return channels * rest; }
};

bool layout_of(const int *ndims, int64_t **shapes, const float *eps, Layout *l) {
  if (ndims[0] < 2) return false;
  *l = Layout{shapes[0][0], shapes[0][1], 1, true, 1};
  for (int i = 2; i < ndims[0]; ++i) l->rest *= shapes[0][i];
  int64_t affine = 1, eps_count = 1;
  for (int i = 0; i < ndims[1]; ++i) affine *= shapes[1][i];
  for (int i = 0; i < ndims[3]; ++i) eps_count *= shapes[3][i];
  if (eps_count == 2) {  // GroupNorm
    const int64_t groups = static_cast<int64_t>(eps[1]);
    if (groups < 1 || l->channels % groups != 0 || affine != l->channels) return false;
    l->groups = groups;
    l->batch *= groups;
    l->channels /= groups;
    return true;
  }
  if (affine == l->size() && l->rest > 1) {
    l->per_channel = false;
  } else if (affine != l->channels) {
    return false;
  }
  return true;
}

bool all_float32(int nparam, const char **dtypes) {
  for (int i = 0; i < nparam; ++i) {
    if (std::strcmp(dtypes[i], "float32") != 0) return false;
  }
  return true;
}

// the mean of the first values: a shift near the mean even when one value is an outlier
float shift_of(const float *xs, int64_t n) {
  int64_t k = n < 256 ? n : 256;
  double s = 0;
  for (int64_t i = 0; i < k; ++i) s += xs[i];
  return static_cast<float>(s / k);
}

struct Moments {
  float mean, rstd;  // mean: relative to the shift
};

Moments moments(double s1, double s2, int64_t n, float eps) {
  double m = s1 / n;
  double var = s2 / n - m * m;
  if (var < 0) var = 0;
  return {static_cast<float>(m), static_cast<float>(1.0 / std::sqrt(var + eps))};
}

}  // namespace

extern "C" int LayerNorm(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                         void *stream, void *extra) {
  Layout l;
  if (nparam != 5 || !layout_of(ndims, shapes, static_cast<const float *>(params[3]), &l)) return 1;
  if (!all_float32(nparam, dtypes)) return 2;
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *y = static_cast<float *>(params[4]);
  const int64_t n = l.size(), rest = l.rest;
  // one thread: splitting the batch over two measured slower ([4, 224, 16, 16]: 2.3 vs 2.8 ms
  // forward + backward), the second core being busy with MindSpore's own kernel threads
  for (int64_t b = 0; b < l.batch; ++b) {
    const float *xs = x + b * n;
    float *ys = y + b * n;
    const float shift = shift_of(xs, n);
    double s1 = 0, s2 = 0;
    for (int64_t c = 0; c < l.channels; ++c) {
      const float *xc = xs + c * rest;
      float a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
      for (int64_t i = 0; i < rest; ++i) {
        float d = xc[i] - shift;
        a1 += d;
        a2 += d * d;
      }
      s1 += a1;
      s2 += a2;
    }
    const Moments m = moments(s1, s2, n, eps);
    if (l.per_channel) {
      const float *gam = gamma + (b % l.groups) * l.channels, *bet = beta + (b % l.groups) * l.channels;
      for (int64_t c = 0; c < l.channels; ++c) {
        const float scale = gam[c] * m.rstd, offset = bet[c] - m.mean * scale;
        const float *xc = xs + c * rest;
        float *yc = ys + c * rest;
#pragma omp simd
        for (int64_t i = 0; i < rest; ++i) yc[i] = (xc[i] - shift) * scale + offset;
      }
    } else {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) ys[i] = ((xs[i] - shift) - m.mean) * m.rstd * gamma[i] + beta[i];
    }
  }
  return 0;
}

// The textbook backward, g = gamma * dy, x_c = x - mean:
//   dx = rstd * g - rstd^3 * mean(g * x_c) * x_c - rstd * mean(g)
//   dgamma = sum over the batch (and, per channel, the channel's values) of dy * x_c * rstd,
//   dbeta likewise of dy.
// Per channel, every sum over the sample is a sum over channels of S_c = sum dy * x_c and
// D_c = sum dy, which also give dgamma and dbeta.
extern "C" int LayerNormGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  Layout l;
  if (nparam != 7 || !layout_of(ndims, shapes, static_cast<const float *>(params[3]), &l)) return 1;
  if (!all_float32(nparam, dtypes)) return 2;
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *dy = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *dx = static_cast<float *>(params[4]);
  float *dgamma = static_cast<float *>(params[5]);
  float *dbeta = static_cast<float *>(params[6]);
  const int64_t n = l.size(), rest = l.rest, channels = l.channels;
  const int64_t affine = l.per_channel ? channels * l.groups : n;
  float *dg = dgamma, *db = dbeta;  // summed over the batch below
  for (int64_t i = 0; i < affine; ++i) dg[i] = db[i] = 0.0f;
  std::vector<float> s_c(l.per_channel ? channels : 0), d_c(s_c.size());
  for (int64_t b = 0; b < l.batch; ++b) {
    const float *xs = x + b * n, *dys = dy + b * n;
    float *dxs = dx + b * n;
    const float shift = shift_of(xs, n);
    // s1, s2: statistics of x; sg, sgx: sums of g and g * (x - shift)
    double s1 = 0, s2 = 0, sg = 0, sgx = 0;
    const int64_t group_offset = l.per_channel ? (b % l.groups) * channels : 0;
    const float *gam = gamma + group_offset;
    float *dgs = dg + group_offset, *dbs = db + group_offset;
    for (int64_t c = 0; c < channels; ++c) {
      const float *xc = xs + c * rest, *dyc = dys + c * rest;
      float a1 = 0, a2 = 0, a3 = 0, a4 = 0;
      if (l.per_channel) {
#pragma omp simd reduction(+ : a1, a2, a3, a4)
        for (int64_t i = 0; i < rest; ++i) {
          float d = xc[i] - shift;
          a1 += d;
          a2 += d * d;
          a3 += d * dyc[i];
          a4 += dyc[i];
        }
        s_c[c] = a3;  // around the shift; moved to the mean below
        d_c[c] = a4;
        sg += static_cast<double>(gam[c]) * a4;
        sgx += static_cast<double>(gam[c]) * a3;
      } else {
        const float *gc = gamma + c * rest;
#pragma omp simd reduction(+ : a1, a2, a3, a4)
        for (int64_t i = 0; i < rest; ++i) {
          float d = xc[i] - shift, g = gc[i] * dyc[i];
          a1 += d;
          a2 += d * d;
          a3 += d * g;
          a4 += g;
        }
        sg += a4;
        sgx += a3;
      }
      s1 += a1;
      s2 += a2;
    }
    const Moments m = moments(s1, s2, n, eps);
    const double mean_g = sg / n, mean_gx = (sgx - static_cast<double>(m.mean) * sg) / n;
    // dx = rstd * g - k1 * (x - shift) + k0
    const float k1 = m.rstd * m.rstd * m.rstd * static_cast<float>(mean_gx);
    const float k0 = k1 * m.mean - m.rstd * static_cast<float>(mean_g);
    if (l.per_channel) {
      for (int64_t c = 0; c < channels; ++c) {
        dgs[c] += (s_c[c] - m.mean * d_c[c]) * m.rstd;
        dbs[c] += d_c[c];
        const float a = m.rstd * gam[c];
        const float *xc = xs + c * rest, *dyc = dys + c * rest;
        float *dxc = dxs + c * rest;
#pragma omp simd
        for (int64_t i = 0; i < rest; ++i) dxc[i] = a * dyc[i] - k1 * (xc[i] - shift) + k0;
      }
    } else {
      const float mean = m.mean, rstd = m.rstd;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        float d = dys[i], xi = xs[i] - shift;
        dxs[i] = rstd * gamma[i] * d - k1 * xi + k0;
        dg[i] += d * (xi - mean) * rstd;
        db[i] += d;
      }
    }
  }
  return 0;
}
