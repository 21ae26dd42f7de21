// Convolutions (1-D, 2-D and 3-D, any stride, dilation, padding and groups, optional bias)
// as MindSpore CPU "aot" Custom-op kernels, forward and backward, on oneDNN with the blocked
// layouts its full-ISA kernels want -- the way PyTorch calls oneDNN on the CPU.
// layers/native.py builds this file; layers/conv.py's Conv2d / Conv3d call it.
//
// Why: MindSpore hands oneDNN plain NCHW tensors. With AVX-512 allowed, its oneDNN then runs
// half of the passes on a reference path (20-50x slower), so the project caps MindSpore's
// oneDNN at AVX2 (engine/__init__.py), where it runs gemm-based convolutions at about half
// of what the CPU gives PyTorch. Here the plain tensors are reordered into the layout the
// primitive chooses (format "any"), so oneDNN runs its direct AVX-512 (or AVX2) kernels.
//
// Which oneDNN: the PyPI wheel onednn-cpu-gomp (Intel's build, OpenMP threads), opened with
// dlopen from the path in STPL_DNNL_LIBRARY -- never linked: MindSpore loads its own
// libdnnl.so.3 (capped, threadpool build) and a DT_NEEDED entry of the same soname would bind
// to that one. RTLD_DEEPBIND keeps the wheel's library on its own symbols, so the two never
// mix; its ISA is set through its own dnnl_set_max_cpu_isa before first use, which takes
// precedence over the ONEDNN_MAX_CPU_ISA that caps MindSpore's copy (STPL_DNNL_MAX_CPU_ISA
// caps ours, e.g. AVX2 for comparisons).
//
// Kernels (params: the inputs, then the outputs):
//   Conv(x, w, b, cfg) -> y
//   ConvGrad(x, w, dy, cfg) -> dx, dw, db
// x: [N, C, *S], w: [O, C / groups, *K], b / db: [O] (or [1], ignored, when cfg says no bias).
// cfg (int32): [spatial dims S, groups, has_bias, same, stride[S], dilation[S], pad_lo[S],
// pad_hi[S]]; same = 1: MindSpore's pad_mode "same" (pads from the input size, the extra
// one at the end), else the explicit pads.
// float32 only: anything else returns 2, a bad shape or configuration 1, a oneDNN failure 3,
// a library that cannot be opened 4 (each with one line on stderr); MindSpore then stops
// with an error naming the op.
#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "oneapi/dnnl/dnnl.h"

namespace {

// ---- the library, opened once -------------------------------------------------------------
struct Api {
#define STPL_DNNL_FUNCTIONS(X)                                                                  \
  X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_memory_desc_create_with_tag)               \
  X(dnnl_memory_desc_destroy) X(dnnl_memory_desc_equal) X(dnnl_memory_desc_get_size)            \
  X(dnnl_memory_create) X(dnnl_memory_destroy) X(dnnl_primitive_desc_query_md)                   \
  X(dnnl_primitive_desc_query) X(dnnl_primitive_desc_destroy) X(dnnl_primitive_create)           \
  X(dnnl_primitive_destroy) X(dnnl_primitive_execute) X(dnnl_reorder_primitive_desc_create)      \
  X(dnnl_convolution_forward_primitive_desc_create)                                              \
  X(dnnl_convolution_backward_data_primitive_desc_create)                                        \
  X(dnnl_convolution_backward_weights_primitive_desc_create) X(dnnl_set_max_cpu_isa)             \
  X(dnnl_get_effective_cpu_isa) X(dnnl_primitive_attr_create)                                     \
  X(dnnl_primitive_attr_set_scratchpad_mode)
#define STPL_DECLARE(name) decltype(&::name) name = nullptr;
  STPL_DNNL_FUNCTIONS(STPL_DECLARE)
#undef STPL_DECLARE
  dnnl_engine_t engine = nullptr;
  // every convolution primitive takes its scratchpad from us (Scratch below): oneDNN 3.2's
  // library-managed one broke the gemm-based weight gradient (depthwise 5x5 and dilated
  // 7x7, as in SimVP's attention) on its second execution: a segfault in im2col
  dnnl_primitive_attr_t user_scratchpad = nullptr;
  void (*omp_set_num_threads)(int) = nullptr;  // libgomp's, which the wheel's oneDNN runs on
  int threads = 1;  // OpenMP threads for oneDNN: STPL_NATIVE_THREADS, else the CPUs this process may use
  std::string error;  // why the library is unusable; empty when it is ready
};

Api *api() {
  static Api a;
  static std::once_flag once;
  std::call_once(once, [] {
    const char *path = std::getenv("STPL_DNNL_LIBRARY");
    if (path == nullptr || *path == '\0') {
      a.error = "STPL_DNNL_LIBRARY is not set (layers/native.py sets it to the onednn-cpu-gomp wheel's libdnnl)";
      return;
    }
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      a.error = std::string("cannot open ") + path + ": " + dlerror();
      return;
    }
#define STPL_LOAD(name)                                                        \
  a.name = reinterpret_cast<decltype(a.name)>(dlsym(handle, #name));           \
  if (a.name == nullptr) {                                                     \
    a.error = std::string(path) + " has no " #name " (oneDNN 3.x expected)";   \
    return;                                                                    \
  }
    STPL_DNNL_FUNCTIONS(STPL_LOAD)
#undef STPL_LOAD
    dnnl_cpu_isa_t isa = dnnl_cpu_isa_default;
    const char *cap = std::getenv("STPL_DNNL_MAX_CPU_ISA");
    if (cap != nullptr && std::strcmp(cap, "AVX2") == 0) isa = dnnl_cpu_isa_avx2;
    if (cap != nullptr && std::strcmp(cap, "AVX512_CORE") == 0) isa = dnnl_cpu_isa_avx512_core;
    // The thread count is set explicitly in every calling thread (use_threads): OpenMP's
    // default comes from OMP_NUM_THREADS, which importing MindSpore sets to 1 in the C
    // environment -- before or after libgomp reads it, depending on what loaded it first.
    void *gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (gomp != nullptr) a.omp_set_num_threads = reinterpret_cast<void (*)(int)>(dlsym(gomp, "omp_set_num_threads"));
    const char *wanted = std::getenv("STPL_NATIVE_THREADS");
    if (wanted != nullptr && std::atoi(wanted) > 0) {
      a.threads = std::atoi(wanted);
    } else {
      cpu_set_t cpus;
      if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) a.threads = std::max(1, CPU_COUNT(&cpus));
    }
    a.dnnl_set_max_cpu_isa(isa);  // before any primitive: overrides ONEDNN_MAX_CPU_ISA
    if (a.dnnl_primitive_attr_create(&a.user_scratchpad) != dnnl_success ||
        a.dnnl_primitive_attr_set_scratchpad_mode(a.user_scratchpad, dnnl_scratchpad_mode_user) != dnnl_success) {
      a.error = std::string("oneDNN from ") + path + " cannot make a primitive attribute";
      return;
    }
    if (a.dnnl_engine_create(&a.engine, dnnl_cpu, 0) != dnnl_success) {
      a.error = std::string("oneDNN from ") + path + " cannot create a CPU engine";
    }
  });
  if (!a.error.empty()) {
    static std::once_flag told;
    std::call_once(told, [] { std::fprintf(stderr, "error: native convolution: %s\n", a.error.c_str()); });
    return nullptr;
  }
  return &a;
}

bool ok(dnnl_status_t status, const char *what) {
  if (status == dnnl_success) return true;
  std::fprintf(stderr, "error: native convolution: oneDNN failed to %s (status %d)\n", what, static_cast<int>(status));
  return false;
}

dnnl_stream_t stream_of_thread(Api *a) {
  thread_local dnnl_stream_t stream = nullptr;
  thread_local bool threads_set = false;  // OpenMP's thread count is per calling thread
  if (!threads_set && a->omp_set_num_threads != nullptr) {
    a->omp_set_num_threads(a->threads);
    threads_set = true;
  }
  if (stream == nullptr && !ok(a->dnnl_stream_create(&stream, a->engine, dnnl_stream_default_flags), "create a stream")) {
    return nullptr;
  }
  return stream;
}

// ---- shapes ---------------------------------------------------------------------------------
struct Geometry {
  int spatial = 0, groups = 1;
  bool has_bias = false;
  int64_t n = 0, c = 0, o = 0;
  dnnl_dims_t x{}, w{}, y{};          // plain dims (w with the group axis when groups > 1)
  int wdims = 0;
  dnnl_dims_t strides{}, dilates{}, pad_lo{}, pad_hi{};  // dilates: oneDNN's (dilation - 1)
  std::vector<int64_t> key;
};

bool geometry_of(const int *ndims, int64_t **shapes, const int32_t *cfg, int64_t cfg_len, Geometry *g) {
  if (cfg_len < 4) return false;
  const int s = cfg[0];
  if (s < 1 || s > 3 || cfg_len != 4 + 4 * s || ndims[0] != s + 2 || ndims[1] != s + 2) return false;
  g->spatial = s;
  g->groups = cfg[1];
  g->has_bias = cfg[2] != 0;
  const bool same = cfg[3] != 0;
  const int64_t *xs = shapes[0], *ws = shapes[1];
  g->n = xs[0];
  g->c = xs[1];
  g->o = ws[0];
  if (g->groups < 1 || g->c % g->groups != 0 || g->o % g->groups != 0 || ws[1] * g->groups != g->c) return false;
  g->x[0] = g->n;
  g->x[1] = g->c;
  g->y[0] = g->n;
  g->y[1] = g->o;
  int w0 = 0;
  if (g->groups > 1) {
    g->w[0] = g->groups;
    g->w[1] = g->o / g->groups;
    w0 = 1;
  } else {
    g->w[0] = g->o;
  }
  g->w[w0 + 1] = ws[1];
  g->wdims = s + 2 + w0;
  for (int i = 0; i < s; ++i) {
    const int64_t in = xs[2 + i], k = ws[2 + i];
    const int64_t stride = cfg[4 + i], dilation = cfg[4 + s + i];
    if (stride < 1 || dilation < 1 || in < 1 || k < 1) return false;
    const int64_t span = (k - 1) * dilation + 1;
    int64_t lo = cfg[4 + 2 * s + i], hi = cfg[4 + 3 * s + i];
    if (same) {  // as MindSpore's pad_mode="same": out = ceil(in / stride)
      const int64_t out = (in + stride - 1) / stride;
      const int64_t total = std::max<int64_t>((out - 1) * stride + span - in, 0);
      lo = total / 2;
      hi = total - lo;
    }
    const int64_t out = (in + lo + hi - span) / stride + 1;
    if (out < 1) return false;
    g->x[2 + i] = in;
    g->y[2 + i] = out;
    g->w[w0 + 2 + i] = k;
    g->strides[i] = stride;
    g->dilates[i] = dilation - 1;
    g->pad_lo[i] = lo;
    g->pad_hi[i] = hi;
  }
  g->key.assign(xs, xs + s + 2);
  g->key.insert(g->key.end(), ws, ws + s + 2);
  g->key.insert(g->key.end(), cfg, cfg + cfg_len);
  return true;
}

dnnl_format_tag_t plain_tag(int ndims) {
  static const dnnl_format_tag_t tags[] = {dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde, dnnl_abcdef};
  return tags[ndims - 1];
}

// ---- memory descriptors and reorders ------------------------------------------------------
struct Desc {  // an owned memory descriptor
  Api *a = nullptr;
  dnnl_memory_desc_t md = nullptr;
  Desc() = default;
  Desc(const Desc &) = delete;
  Desc &operator=(const Desc &) = delete;
  ~Desc() {
    if (md != nullptr) a->dnnl_memory_desc_destroy(md);
  }
  bool make(Api *api, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    a = api;
    return ok(a->dnnl_memory_desc_create_with_tag(&md, ndims, dims, dnnl_f32, tag), "describe a tensor");
  }
};

// a reorder between a plain tensor and the layout a primitive chose (absent when they agree)
struct Reorder {
  dnnl_primitive_t prim = nullptr;
  size_t bytes = 0;  // size of the chosen layout's buffer
  const_dnnl_memory_desc_t chosen = nullptr;
  bool make(Api *a, const_dnnl_memory_desc_t plain, const_dnnl_memory_desc_t chosen_md, bool to_chosen) {
    chosen = chosen_md;
    if (a->dnnl_memory_desc_equal(plain, chosen_md)) return true;
    bytes = a->dnnl_memory_desc_get_size(chosen_md);
    dnnl_primitive_desc_t pd = nullptr;
    const_dnnl_memory_desc_t from = to_chosen ? plain : chosen_md, to = to_chosen ? chosen_md : plain;
    if (!ok(a->dnnl_reorder_primitive_desc_create(&pd, from, a->engine, to, a->engine, nullptr), "plan a reorder")) {
      return false;
    }
    const bool made = ok(a->dnnl_primitive_create(&prim, pd), "create a reorder");
    a->dnnl_primitive_desc_destroy(pd);
    return made;
  }
};

// per-thread scratch buffers, grown as needed and reused by every call on the thread:
// the blocked copies live only during one kernel call
struct Scratch {
  std::vector<std::unique_ptr<float[]>> buffers;
  std::vector<size_t> sizes;
  float *get(int slot, size_t bytes) {
    if (static_cast<int>(buffers.size()) <= slot) {
      buffers.resize(slot + 1);
      sizes.resize(slot + 1, 0);
    }
    if (sizes[slot] < bytes) {
      buffers[slot].reset(new float[(bytes + 63) / sizeof(float) + 16]);
      sizes[slot] = bytes;
    }
    // 64-byte alignment for the vector kernels
    uintptr_t p = reinterpret_cast<uintptr_t>(buffers[slot].get());
    return reinterpret_cast<float *>((p + 63) & ~static_cast<uintptr_t>(63));
  }
};

Scratch &scratch() {
  thread_local Scratch s;
  return s;
}

struct Memory {  // a memory object over a caller's buffer
  Api *a;
  dnnl_memory_t mem = nullptr;
  Memory(Api *api, const_dnnl_memory_desc_t md, void *data) : a(api) {
    if (!ok(a->dnnl_memory_create(&mem, md, a->engine, data), "wrap a buffer")) mem = nullptr;
  }
  Memory(const Memory &) = delete;
  ~Memory() {
    if (mem != nullptr) a->dnnl_memory_destroy(mem);
  }
};

bool run(Api *a, dnnl_stream_t stream, dnnl_primitive_t prim, std::vector<dnnl_exec_arg_t> args, const char *what) {
  for (const auto &arg : args) {
    if (arg.memory == nullptr) return false;
  }
  return ok(a->dnnl_primitive_execute(prim, stream, static_cast<int>(args.size()), args.data()), what);
}

// a convolution primitive with its scratchpad (user mode: slot 4 of this thread's Scratch)
bool run_conv(Api *a, dnnl_stream_t stream, dnnl_primitive_t prim, const_dnnl_primitive_desc_t pd,
              std::vector<dnnl_exec_arg_t> args, const char *what) {
  const_dnnl_memory_desc_t md = a->dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  const size_t bytes = md == nullptr ? 0 : a->dnnl_memory_desc_get_size(md);
  if (bytes == 0) return run(a, stream, prim, args, what);
  Memory pad(a, md, scratch().get(4, bytes));
  args.push_back({DNNL_ARG_SCRATCHPAD, pad.mem});
  return run(a, stream, prim, args, what);
}

// plain <-> chosen layout through `reorder` (a no-op view when the layouts agree)
float *to_chosen(Api *a, dnnl_stream_t stream, const Reorder &r, const_dnnl_memory_desc_t plain, const float *data,
                 int slot, bool *failed) {
  if (r.prim == nullptr) return const_cast<float *>(data);
  float *buffer = scratch().get(slot, r.bytes);
  Memory from(a, plain, const_cast<float *>(data)), to(a, r.chosen, buffer);
  if (!run(a, stream, r.prim, {{DNNL_ARG_FROM, from.mem}, {DNNL_ARG_TO, to.mem}}, "reorder an input")) *failed = true;
  return buffer;
}

// the implementations oneDNN chose so far ("forward jit:avx512_core", ...), for ConvDescribe
std::mutex described_lock;
std::set<std::string> described;

void describe(Api *a, const char *pass, dnnl_primitive_desc_t pd, bool direct = false) {
  const char *name = "direct_depthwise";  // the direct loops below take the pass
  if (!direct && (pd == nullptr || a->dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success)) {
    return;
  }
  std::lock_guard<std::mutex> guard(described_lock);
  described.insert(std::string(pass) + " " + name);
}

// whether oneDNN runs a pass gemm-based or on its reference path (the direct depthwise loops
// below are faster than those for what they cover)
bool slow_impl(Api *a, dnnl_primitive_desc_t pd) {
  const char *name = nullptr;
  if (a->dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || name == nullptr) {
    return true;
  }
  return std::strstr(name, "gemm") != nullptr || std::strncmp(name, "ref", 3) == 0;
}

// the geometry the direct depthwise loops below cover: 2-D, stride 1, one channel per group
bool depthwise_direct(const Geometry &g) {
  return g.spatial == 2 && g.groups == g.c && g.o == g.c && g.strides[0] == 1 && g.strides[1] == 1;
}

// ---- the cached plans -----------------------------------------------------------------------
struct Plain {
  Desc x, w, y, b;
  bool make(Api *a, const Geometry &g) {
    const dnnl_dims_t bias_dims = {g.o};
    return x.make(a, g.spatial + 2, g.x, plain_tag(g.spatial + 2)) &&
           w.make(a, g.wdims, g.w, plain_tag(g.wdims)) && y.make(a, g.spatial + 2, g.y, plain_tag(g.spatial + 2)) &&
           b.make(a, 1, bias_dims, dnnl_a);
  }
};

struct AnyDescs {
  Desc x, w, y;
  bool make(Api *a, const Geometry &g) {
    return x.make(a, g.spatial + 2, g.x, dnnl_format_tag_any) && w.make(a, g.wdims, g.w, dnnl_format_tag_any) &&
           y.make(a, g.spatial + 2, g.y, dnnl_format_tag_any);
  }
};

dnnl_status_t forward_pd(Api *a, const Geometry &g, const AnyDescs &any, const Plain &plain, dnnl_primitive_desc_t *pd) {
  return a->dnnl_convolution_forward_primitive_desc_create(
      pd, a->engine, dnnl_forward_training, dnnl_convolution_direct, any.x.md, any.w.md,
      g.has_bias ? plain.b.md : nullptr, any.y.md, g.strides, g.dilates, g.pad_lo, g.pad_hi, a->user_scratchpad);
}

struct ForwardPlan {
  Plain plain;
  AnyDescs any;
  dnnl_primitive_desc_t pd = nullptr;
  dnnl_primitive_t prim = nullptr;
  Reorder x, w, y;  // x, w: plain -> chosen; y: chosen -> plain
  bool direct = false;  // the direct depthwise loops take the pass (oneDNN chose gemm or ref)
  bool make(Api *a, const Geometry &g) {
    if (!plain.make(a, g) || !any.make(a, g)) return false;
    if (!ok(forward_pd(a, g, any, plain, &pd), "plan a convolution") || !ok(a->dnnl_primitive_create(&prim, pd), "create a convolution")) {
      return false;
    }
    direct = depthwise_direct(g) && slow_impl(a, pd);
    return x.make(a, plain.x.md, a->dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), true) &&
           w.make(a, plain.w.md, a->dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), true) &&
           y.make(a, plain.y.md, a->dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), false);
  }
  void describe(Api *a) { ::describe(a, "forward", pd, direct); }
};

struct BackwardPlan {
  Plain plain;
  AnyDescs any;
  dnnl_primitive_desc_t hint = nullptr, data_pd = nullptr, weights_pd = nullptr;
  dnnl_primitive_t data = nullptr, weights = nullptr;
  Reorder dy_data, w_data, dx;           // backward data: dy, w in; dx out
  Reorder x_weights, dy_weights, dw;     // backward weights: x, dy in; dw out
  bool same_dy_layout = false;           // both passes read dy in one layout: one copy serves both
  bool data_direct = false, weights_direct = false;  // as ForwardPlan::direct
  bool make(Api *a, const Geometry &g) {
    if (!plain.make(a, g) || !any.make(a, g)) return false;
    if (!ok(forward_pd(a, g, any, plain, &hint), "plan a convolution")) return false;
    if (!ok(a->dnnl_convolution_backward_data_primitive_desc_create(&data_pd, a->engine, dnnl_convolution_direct,
                                                                      any.x.md, any.w.md, any.y.md, g.strides, g.dilates,
                                                                      g.pad_lo, g.pad_hi, hint, a->user_scratchpad),
            "plan a convolution's input gradient") ||
        !ok(a->dnnl_primitive_create(&data, data_pd), "create a convolution's input gradient")) {
      return false;
    }
    if (!ok(a->dnnl_convolution_backward_weights_primitive_desc_create(
                &weights_pd, a->engine, dnnl_convolution_direct, any.x.md, any.w.md, g.has_bias ? plain.b.md : nullptr,
                any.y.md, g.strides, g.dilates, g.pad_lo, g.pad_hi, hint, a->user_scratchpad),
            "plan a convolution's weight gradient") ||
        !ok(a->dnnl_primitive_create(&weights, weights_pd), "create a convolution's weight gradient")) {
      return false;
    }
    data_direct = depthwise_direct(g) && slow_impl(a, data_pd);
    weights_direct = depthwise_direct(g) && slow_impl(a, weights_pd);
    same_dy_layout = a->dnnl_memory_desc_equal(a->dnnl_primitive_desc_query_md(data_pd, dnnl_query_diff_dst_md, 0),
                                               a->dnnl_primitive_desc_query_md(weights_pd, dnnl_query_diff_dst_md, 0));
    return dy_data.make(a, plain.y.md, a->dnnl_primitive_desc_query_md(data_pd, dnnl_query_diff_dst_md, 0), true) &&
           w_data.make(a, plain.w.md, a->dnnl_primitive_desc_query_md(data_pd, dnnl_query_weights_md, 0), true) &&
           dx.make(a, plain.x.md, a->dnnl_primitive_desc_query_md(data_pd, dnnl_query_diff_src_md, 0), false) &&
           x_weights.make(a, plain.x.md, a->dnnl_primitive_desc_query_md(weights_pd, dnnl_query_src_md, 0), true) &&
           dy_weights.make(a, plain.y.md, a->dnnl_primitive_desc_query_md(weights_pd, dnnl_query_diff_dst_md, 0), true) &&
           dw.make(a, plain.w.md, a->dnnl_primitive_desc_query_md(weights_pd, dnnl_query_diff_weights_md, 0), false);
  }
  void describe(Api *a) {
    ::describe(a, "backward_data", data_pd, data_direct);
    ::describe(a, "backward_weights", weights_pd, weights_direct);
  }
};

// plans live for the process (a few per layer shape); failed ones are cached as null
template <typename Plan>
Plan *plan_for(Api *a, const Geometry &g) {
  static std::mutex lock;
  static std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans;
  std::lock_guard<std::mutex> guard(lock);
  auto found = plans.find(g.key);
  if (found != plans.end()) return found->second.get();
  std::unique_ptr<Plan> plan(new Plan());
  if (!plan->make(a, g)) plan.reset();  // its primitives leak: a failure stops training anyway
  if (plan) plan->describe(a);
  return (plans[g.key] = std::move(plan)).get();
}

int check(int nparam, int expected, const char **dtypes, int cfg_index) {
  if (nparam != expected) return 1;
  for (int i = 0; i < nparam; ++i) {
    if (i != cfg_index && std::strcmp(dtypes[i], "float32") != 0) return 2;
  }
  return std::strcmp(dtypes[cfg_index], "int32") == 0 ? 0 : 1;
}

int64_t count(int ndims, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndims; ++i) n *= shape[i];
  return n;
}

// what both entry points do first: check the call, read the geometry, find the plan
template <typename Plan>
int prepare(int nparam, int expected, void **params, int *ndims, int64_t **shapes, const char **dtypes, Geometry *g,
            Api **a, dnnl_stream_t *s, Plan **p) {
  const int bad = check(nparam, expected, dtypes, 3);
  if (bad != 0) return bad;
  if (!geometry_of(ndims, shapes, static_cast<const int32_t *>(params[3]), count(ndims[3], shapes[3]), g)) return 1;
  *a = api();
  if (*a == nullptr) return 4;
  *s = stream_of_thread(*a);
  *p = *s == nullptr ? nullptr : plan_for<Plan>(*a, *g);
  return *p == nullptr ? 3 : 0;
}

// chosen layout -> the caller's plain buffer through `r` (nothing when the layouts agree)
bool from_chosen(Api *a, dnnl_stream_t s, const Reorder &r, float *chosen_data, const_dnnl_memory_desc_t plain,
                 float *plain_data) {
  if (r.prim == nullptr) return true;
  Memory from(a, r.chosen, chosen_data), to(a, plain, plain_data);
  return run(a, s, r.prim, {{DNNL_ARG_FROM, from.mem}, {DNNL_ARG_TO, to.mem}}, "reorder an output");
}


// ---- direct depthwise convolutions (2-D, stride 1) ------------------------------------------
// oneDNN 3.2 has no jit kernel for the weight gradient of a depthwise convolution wider than
// 3x3, nor for the passes of SimVP's dilated 7x7 one: it runs them gemm-based over im2col
// copies, far slower than their arithmetic needs (SimVP's gSTA attention, [16, 160, 32, 32]:
// depthwise 5x5 weight gradient 74 ms, dilated 7x7 forward + both gradients 223 ms). Here they
// are plain loops over zero-padded NCHW planes, one row of the kernel at a time (the compiler
// vectorises the inner row loops), the planes (or, for the weight gradient, the channels) split
// over the threads. A plan sends a pass here when its geometry fits (depthwise_direct) and
// oneDNN chose a gemm-based or reference implementation for it (slow_impl).
template <typename F>
void split(int threads, int64_t count, F f) {  // f(begin, end) over [0, count) in `threads` parts
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, count)));
  std::vector<std::thread> others;
  for (int t = 1; t < parts; ++t) others.emplace_back(f, count * t / parts, count * (t + 1) / parts);
  f(0, count / parts);
  for (auto &t : others) t.join();
}

struct Plane {  // one depthwise plane's geometry
  int64_t h, w, oh, ow, kh, kw, dh, dw, pt, pl, ph, pw;  // ph, pw: the zero-padded input plane
  explicit Plane(const Geometry &g)
      : h(g.x[2]), w(g.x[3]), oh(g.y[2]), ow(g.y[3]), kh(g.w[3]), kw(g.w[4]), dh(g.dilates[0] + 1),
        dw(g.dilates[1] + 1), pt(g.pad_lo[0]), pl(g.pad_lo[1]), ph(oh + (kh - 1) * dh), pw(ow + (kw - 1) * dw) {}
  // src [rows, cols] into the zero plane dst [ph, pw] at (top, left); parts outside are cut
  void pad(const float *src, int64_t rows, int64_t cols, int64_t top, int64_t left, float *dst) const {
    std::fill(dst, dst + ph * pw, 0.0f);
    for (int64_t r = std::max<int64_t>(0, -top); r < rows && r + top < ph; ++r) {
      const int64_t lo = std::max<int64_t>(0, -left), hi = std::min<int64_t>(cols, pw - left);
      if (hi > lo) std::memcpy(dst + (r + top) * pw + left + lo, src + r * cols + lo, sizeof(float) * (hi - lo));
    }
  }
};

// out [oh, ow] = sum_(i, j) k(i, j) in[r + i dh, q + j dw] over a zero-padded plane in [ph, pw]
inline void correlate(const Plane &p, const float *in, const float *k, float bias, float *out) {
  for (int64_t r = 0; r < p.oh; ++r) {
    float *o = out + r * p.ow;
    for (int64_t q = 0; q < p.ow; ++q) o[q] = bias;
    for (int64_t i = 0; i < p.kh; ++i) {
      const float *row = in + (r + i * p.dh) * p.pw;
      for (int64_t j = 0; j < p.kw; ++j) {
        const float kv = k[i * p.kw + j];
        const float *src = row + j * p.dw;
#pragma omp simd
        for (int64_t q = 0; q < p.ow; ++q) o[q] += kv * src[q];
      }
    }
  }
}

// y[n, c] = b[c] + sum_(i, j) w[c, i, j] x[n, c, oh - pt + i dh, ow - pl + j dw]
void depthwise_forward(const Geometry &g, int threads, const float *x, const float *w, const float *b, float *y) {
  const Plane p(g);
  split(threads, g.n * g.c, [&](int64_t begin, int64_t end) {
    std::vector<float> padded(p.ph * p.pw);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t c = plane % g.c;
      p.pad(x + plane * p.h * p.w, p.h, p.w, p.pt, p.pl, padded.data());
      correlate(p, padded.data(), w + c * p.kh * p.kw, g.has_bias ? b[c] : 0.0f, y + plane * p.oh * p.ow);
    }
  });
}

// dx[n, c, r, q] = sum_(i, j) w[c, i, j] dy[n, c, r + pt - i dh, q + pl - j dw]: the correlation
// of dy, padded by the kernel's span less the forward pads, with the flipped kernel
void depthwise_backward_data(const Geometry &g, int threads, const float *w, const float *dy, float *dx) {
  Plane p(g);
  Plane back = p;  // the same correlation with dy as input and dx as output
  back.h = p.oh, back.w = p.ow, back.oh = p.h, back.ow = p.w;
  back.ph = p.h + (p.kh - 1) * p.dh, back.pw = p.w + (p.kw - 1) * p.dw;
  const int64_t top = (p.kh - 1) * p.dh - p.pt, left = (p.kw - 1) * p.dw - p.pl;
  split(threads, g.n * g.c, [&](int64_t begin, int64_t end) {
    std::vector<float> padded(back.ph * back.pw), flipped(p.kh * p.kw);
    for (int64_t plane = begin; plane < end; ++plane) {
      const float *wc = w + (plane % g.c) * p.kh * p.kw;
      for (int64_t k = 0; k < p.kh * p.kw; ++k) flipped[k] = wc[p.kh * p.kw - 1 - k];
      back.pad(dy + plane * p.oh * p.ow, p.oh, p.ow, top, left, padded.data());
      correlate(back, padded.data(), flipped.data(), 0.0f, dx + plane * p.h * p.w);
    }
  });
}

// dw[c, i, j] = sum_(n, r, q) dy[n, c, r, q] x[n, c, r - pt + i dh, q - pl + j dw]; db[c] = sum dy[n, c]
// (element-wise partial sums over the rows in float, totals in double)
void depthwise_backward_weights(const Geometry &g, int threads, const float *x, const float *dy, float *dw,
                                float *db) {
  const Plane p(g);
  const int64_t taps = p.kh * p.kw;
  split(threads, g.c, [&](int64_t begin, int64_t end) {
    std::vector<float> padded(p.ph * p.pw), partial(taps * p.ow), bias_partial(p.ow);
    for (int64_t c = begin; c < end; ++c) {
      std::fill(partial.begin(), partial.end(), 0.0f);
      std::fill(bias_partial.begin(), bias_partial.end(), 0.0f);
      for (int64_t n = 0; n < g.n; ++n) {
        p.pad(x + (n * g.c + c) * p.h * p.w, p.h, p.w, p.pt, p.pl, padded.data());
        const float *dyp = dy + (n * g.c + c) * p.oh * p.ow;
        for (int64_t r = 0; r < p.oh; ++r) {
          const float *dyr = dyp + r * p.ow;
          float *bp = bias_partial.data();
#pragma omp simd
          for (int64_t q = 0; q < p.ow; ++q) bp[q] += dyr[q];
          for (int64_t i = 0; i < p.kh; ++i) {
            const float *row = padded.data() + (r + i * p.dh) * p.pw;
            for (int64_t j = 0; j < p.kw; ++j) {
              float *acc = partial.data() + (i * p.kw + j) * p.ow;
              const float *src = row + j * p.dw;
#pragma omp simd
              for (int64_t q = 0; q < p.ow; ++q) acc[q] += dyr[q] * src[q];
            }
          }
        }
      }
      for (int64_t k = 0; k < taps; ++k) {
        double total = 0.0;
        for (int64_t q = 0; q < p.ow; ++q) total += partial[k * p.ow + q];
        dw[c * taps + k] = static_cast<float>(total);
      }
      double total = 0.0;
      for (int64_t q = 0; q < p.ow; ++q) total += bias_partial[q];
      db[c] = static_cast<float>(total);
    }
  });
}

}  // namespace

extern "C" int Conv(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  Geometry g;
  Api *a = nullptr;
  dnnl_stream_t s = nullptr;
  ForwardPlan *p = nullptr;
  const int status = prepare(nparam, 5, params, ndims, shapes, dtypes, &g, &a, &s, &p);
  if (status != 0) return status;
  if (p->direct) {
    depthwise_forward(g, a->threads, static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                      static_cast<const float *>(params[2]), static_cast<float *>(params[4]));
    return 0;
  }
  bool failed = false;
  float *x = to_chosen(a, s, p->x, p->plain.x.md, static_cast<const float *>(params[0]), 0, &failed);
  float *w = to_chosen(a, s, p->w, p->plain.w.md, static_cast<const float *>(params[1]), 1, &failed);
  float *y_plain = static_cast<float *>(params[4]);
  float *y = p->y.prim == nullptr ? y_plain : scratch().get(2, p->y.bytes);
  if (failed) return 3;
  {
    Memory mx(a, p->x.chosen, x), mw(a, p->w.chosen, w), my(a, p->y.chosen, y), mb(a, p->plain.b.md, params[2]);
    std::vector<dnnl_exec_arg_t> args = {{DNNL_ARG_SRC, mx.mem}, {DNNL_ARG_WEIGHTS, mw.mem}, {DNNL_ARG_DST, my.mem}};
    if (g.has_bias) args.push_back({DNNL_ARG_BIAS, mb.mem});
    if (!run_conv(a, s, p->prim, p->pd, args, "run a convolution")) return 3;
  }
  return from_chosen(a, s, p->y, y, p->plain.y.md, y_plain) ? 0 : 3;
}

extern "C" int ConvGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                        void *extra) {
  Geometry g;
  Api *a = nullptr;
  dnnl_stream_t s = nullptr;
  BackwardPlan *p = nullptr;
  const int status = prepare(nparam, 7, params, ndims, shapes, dtypes, &g, &a, &s, &p);
  if (status != 0) return status;
  const float *x_plain = static_cast<const float *>(params[0]);
  const float *w_plain = static_cast<const float *>(params[1]);
  const float *dy_plain = static_cast<const float *>(params[2]);
  float *dx_plain = static_cast<float *>(params[4]);
  float *dw_plain = static_cast<float *>(params[5]);
  float *db = static_cast<float *>(params[6]);
  bool failed = false;
  // input gradient (dy's copy in slot 3: the weight gradient reuses it when both passes
  // chose the same layout)
  float *dy_copy = nullptr;
  if (p->data_direct) {
    depthwise_backward_data(g, a->threads, w_plain, dy_plain, dx_plain);
  } else {
    float *dy = to_chosen(a, s, p->dy_data, p->plain.y.md, dy_plain, 3, &failed);
    dy_copy = dy;
    float *w = to_chosen(a, s, p->w_data, p->plain.w.md, w_plain, 1, &failed);
    float *dx = p->dx.prim == nullptr ? dx_plain : scratch().get(2, p->dx.bytes);
    if (failed) return 3;
    Memory mdy(a, p->dy_data.chosen, dy), mw(a, p->w_data.chosen, w), mdx(a, p->dx.chosen, dx);
    if (!run_conv(a, s, p->data, p->data_pd, {{DNNL_ARG_DIFF_DST, mdy.mem}, {DNNL_ARG_WEIGHTS, mw.mem}, {DNNL_ARG_DIFF_SRC, mdx.mem}},
             "run a convolution's input gradient")) {
      return 3;
    }
    if (!from_chosen(a, s, p->dx, dx, p->plain.x.md, dx_plain)) return 3;
  }
  // weight (and bias) gradient
  if (p->weights_direct) {
    depthwise_backward_weights(g, a->threads, x_plain, dy_plain, dw_plain, db);
  } else {
    float *x = to_chosen(a, s, p->x_weights, p->plain.x.md, x_plain, 0, &failed);
    float *dy = p->same_dy_layout ? dy_copy : to_chosen(a, s, p->dy_weights, p->plain.y.md, dy_plain, 1, &failed);
    float *dw = p->dw.prim == nullptr ? dw_plain : scratch().get(2, p->dw.bytes);
    if (failed) return 3;
    Memory mx(a, p->x_weights.chosen, x), mdy(a, p->dy_weights.chosen, dy), mdw(a, p->dw.chosen, dw),
        mdb(a, p->plain.b.md, db);
    std::vector<dnnl_exec_arg_t> args = {
        {DNNL_ARG_SRC, mx.mem}, {DNNL_ARG_DIFF_DST, mdy.mem}, {DNNL_ARG_DIFF_WEIGHTS, mdw.mem}};
    if (g.has_bias) args.push_back({DNNL_ARG_DIFF_BIAS, mdb.mem});
    if (!run_conv(a, s, p->weights, p->weights_pd, args, "run a convolution's weight gradient")) return 3;
    if (!from_chosen(a, s, p->dw, dw, p->plain.w.md, dw_plain)) return 3;
  }
  if (!g.has_bias) std::memset(db, 0, sizeof(float) * count(ndims[6], shapes[6]));
  return 0;
}

// for logs and the benchmark: the ISA oneDNN may dispatch to (dnnl_cpu_isa_t, in hex) and the
// implementations chosen so far: "isa=0x..; backward_data jit:avx512_core; forward ...".
extern "C" int ConvDescribe(char *out, int size) {
  Api *a = api();
  if (a == nullptr || size < 1) return 1;
  char isa[32];
  std::snprintf(isa, sizeof(isa), "isa=0x%x; threads=%d", static_cast<unsigned>(a->dnnl_get_effective_cpu_isa()),
                a->threads);
  std::string text = isa;
  std::lock_guard<std::mutex> guard(described_lock);
  for (const auto &d : described) text += "; " + d;
  std::snprintf(out, size, "%s", text.c_str());
  return 0;
}
