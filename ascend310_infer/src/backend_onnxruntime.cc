/**
 * ONNX Runtime backend (build.sh BACKEND=onnxruntime): runs the ONNX files export.py writes,
 * on CPU (or GPU with a CUDA-enabled library), through ONNX Runtime's C++ API.
 *
 * The library is opened at run time (dlopen) rather than linked: the onnxruntime wheel ships
 * libonnxruntime.so.<version> without the libonnxruntime.so.1 name its SONAME asks for, and
 * a library that is missing or too old then gives one clear line instead of a loader error.
 * build.sh records the library it found (STPL_ONNXRUNTIME_LIBRARY); the environment
 * variable STPL_ONNXRUNTIME_LIBRARY overrides it.
 *
 * Inputs are bound by name when the model has export.py's names (frames, noise), else by
 * position; session options match the Python runner's (engine/inference.py session_options:
 * intra-op threads sleep rather than spin), so the two time the same thing.
 */
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "inc/backend.h"
#include "inc/utils.h"

#ifndef STPL_ONNXRUNTIME_LIBRARY
#define STPL_ONNXRUNTIME_LIBRARY "libonnxruntime.so.1"
#endif

namespace {

// The file starts like a MindIR (protobuf with "MindSpore" as producer) rather than ONNX:
// worth a hint, since both are protobuf and ONNX Runtime's own message is cryptic.
bool LooksLikeMindIR(const std::string &path) {
  MindIRInfo info = ReadMindIRInfo(path);
  return info.parsed && info.producer_name == "MindSpore";
}

class OnnxRuntimeBackend : public Backend {
 public:
  std::string Describe() const override { return "ONNX Runtime " + version_ + " (" + library_ + ")"; }

  bool Load(const std::string &model_path, const RunSettings &settings) override {
    if (!OpenLibrary()) {
      return false;
    }
    if (settings.device_type == "ascend") {
      std::cerr << "error: the ONNX Runtime runner runs on CPU or GPU, not Ascend: on Ascend build the MindSpore "
                   "Lite runner (BACKEND=lite bash ascend310_infer/build.sh) and give it a MINDIR"
                << std::endl;
      return false;
    }
    try {
      memory_ = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
      env_.reset(new Ort::Env(ORT_LOGGING_LEVEL_ERROR, "stpl_infer"));
      Ort::SessionOptions options;
      options.AddConfigEntry("session.intra_op.allow_spinning", "0");
      if (settings.thread_num > 0) {
        options.SetIntraOpNumThreads(settings.thread_num);
      }
      if (settings.device_type == "gpu") {
        OrtCUDAProviderOptions cuda;
        cuda.device_id = static_cast<int>(settings.device_id);
        try {
          options.AppendExecutionProvider_CUDA(cuda);
        } catch (const Ort::Exception &e) {
          std::cerr << "error: ONNX Runtime cannot use CUDA here: " << FirstLine(e.what()) << std::endl;
          std::cerr << "hint: --device_type=CPU runs on the CPU; GPU needs the CUDA-enabled library and the CUDA "
                       "runtime libraries"
                    << std::endl;
          return false;
        }
      }
      session_.reset(new Ort::Session(*env_, model_path.c_str(), options));
    } catch (const Ort::Exception &e) {
      std::cerr << "error: ONNX Runtime could not load the model " << model_path << ": " << FirstLine(e.what())
                << std::endl;
      if (LooksLikeMindIR(model_path)) {
        std::cerr << "hint: " << model_path << " is a MINDIR file; this runner takes ONNX: "
                  << "python export.py --file_format=ONNX --batch_size=1 --pretrained_model=CKPT [--config_path=...]"
                  << std::endl;
      }
      return false;
    }
    return ReadSignature();
  }

  const std::vector<InputSpec> &Inputs() const override { return specs_; }

  std::vector<std::string> OutputNames() const override { return output_names_; }

  bool Predict(const std::vector<const std::vector<char> *> &inputs, std::vector<std::vector<char>> *outputs,
               std::string *error) override {
    try {
      std::vector<Ort::Value> values;
      values.reserve(inputs.size());
      for (size_t k = 0; k < inputs.size(); ++k) {
        // Wraps the caller's bytes: no copy. ONNX Runtime only reads inputs.
        float *data = reinterpret_cast<float *>(const_cast<char *>(inputs[k]->data()));
        values.push_back(Ort::Value::CreateTensor<float>(memory_, data, specs_[k].bytes / sizeof(float),
                                                         specs_[k].shape.data(), specs_[k].shape.size()));
      }
      std::vector<Ort::Value> results =
          session_->Run(Ort::RunOptions{nullptr}, input_name_ptrs_.data(), values.data(), values.size(),
                        output_name_ptrs_.data(), output_name_ptrs_.size());
      outputs->resize(results.size());
      for (size_t i = 0; i < results.size(); ++i) {
        auto info = results[i].GetTensorTypeAndShapeInfo();
        if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
          *error = "output " + output_names_[i] + " is not float32";
          return false;
        }
        const char *bytes = reinterpret_cast<const char *>(results[i].GetTensorData<float>());
        (*outputs)[i].assign(bytes, bytes + info.GetElementCount() * sizeof(float));
      }
    } catch (const Ort::Exception &e) {
      *error = std::string("ONNX Runtime Run failed: ") + FirstLine(e.what());
      return false;
    }
    return true;
  }

 private:
  static std::string FirstLine(const std::string &text) { return text.substr(0, text.find('\n')); }

  bool OpenLibrary() {
    const char *override_path = std::getenv("STPL_ONNXRUNTIME_LIBRARY");
    library_ = (override_path != nullptr && *override_path != '\0') ? override_path : STPL_ONNXRUNTIME_LIBRARY;
    void *handle = dlopen(library_.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char *why = dlerror();
      std::cerr << "error: cannot load the ONNX Runtime library " << library_ << ": " << (why ? why : "unknown")
                << std::endl;
      std::cerr << "hint: rebuild with ascend310_infer/build.sh (it finds the library of the onnxruntime wheel in "
                   "the project's .venv), or set STPL_ONNXRUNTIME_LIBRARY=/path/to/libonnxruntime.so"
                << std::endl;
      return false;
    }
    using GetApiBase = const OrtApiBase *(*)();
    auto get_api_base = reinterpret_cast<GetApiBase>(dlsym(handle, "OrtGetApiBase"));
    if (get_api_base == nullptr) {
      std::cerr << "error: " << library_ << " has no OrtGetApiBase: not an ONNX Runtime library" << std::endl;
      return false;
    }
    const OrtApiBase *base = get_api_base();
    version_ = base->GetVersionString();
    const OrtApi *api = base->GetApi(ORT_API_VERSION);
    if (api == nullptr) {
      std::cerr << "error: the ONNX Runtime library " << library_ << " is version " << version_
                << ", older than the headers this program was built with (C API version " << ORT_API_VERSION
                << "): use a newer library (STPL_ONNXRUNTIME_LIBRARY) or rebuild" << std::endl;
      return false;
    }
    Ort::InitApi(api);
    return true;
  }

  bool ReadSignature() {
    Ort::AllocatorWithDefaultOptions allocator;
    std::vector<InputSpec> found;
    for (size_t k = 0; k < session_->GetInputCount(); ++k) {
      InputSpec spec;
      spec.name = session_->GetInputNameAllocated(k, allocator).get();
      Ort::TypeInfo type_info = session_->GetInputTypeInfo(k);  // owns what info points into
      auto info = type_info.GetTensorTypeAndShapeInfo();
      spec.shape = info.GetShape();
      if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
        std::cerr << "error: model input " << k << " (" << spec.name
                  << ") is not float32; the sample files hold float32" << std::endl;
        return false;
      }
      if (std::any_of(spec.shape.begin(), spec.shape.end(), [](int64_t d) { return d < 0; })) {
        std::cerr << "error: model input " << k << " (" << spec.name << ") has a dynamic shape "
                  << ShapeString(spec.shape) << "; export with a fixed batch size (export.py --batch_size=1)"
                  << std::endl;
        return false;
      }
      size_t count = 1;
      for (int64_t d : spec.shape) {
        count *= static_cast<size_t>(d);
      }
      spec.bytes = count * sizeof(float);
      found.push_back(spec);
    }
    // export.py names the inputs frames (and noise for a stochastic model): bind the sample
    // folders by those names, whatever their order in the graph; other models by position.
    specs_ = found;
    const char *wanted[] = {"frames", "noise"};
    if (found.size() <= 2) {
      std::vector<InputSpec> by_name;
      for (size_t k = 0; k < found.size(); ++k) {
        auto it = std::find_if(found.begin(), found.end(),
                               [&](const InputSpec &s) { return s.name == wanted[k]; });
        if (it == found.end()) {
          by_name.clear();
          break;
        }
        by_name.push_back(*it);
      }
      if (by_name.size() == found.size()) {
        specs_ = by_name;
      }
    }
    for (const InputSpec &spec : specs_) {
      input_names_.push_back(spec.name);
    }
    for (size_t i = 0; i < session_->GetOutputCount(); ++i) {
      output_names_.push_back(session_->GetOutputNameAllocated(i, allocator).get());
    }
    for (const std::string &n : input_names_) {
      input_name_ptrs_.push_back(n.c_str());
    }
    for (const std::string &n : output_names_) {
      output_name_ptrs_.push_back(n.c_str());
    }
    return true;
  }

  std::string library_;
  std::string version_;
  std::unique_ptr<Ort::Env> env_;
  std::unique_ptr<Ort::Session> session_;
  Ort::MemoryInfo memory_{nullptr};
  std::vector<InputSpec> specs_;
  std::vector<std::string> input_names_;
  std::vector<std::string> output_names_;
  std::vector<const char *> input_name_ptrs_;
  std::vector<const char *> output_name_ptrs_;
};

}  // namespace

std::unique_ptr<Backend> MakeBackend() { return std::unique_ptr<Backend>(new OnnxRuntimeBackend()); }

const char *BackendName() { return "onnxruntime"; }
