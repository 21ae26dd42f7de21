/**
 * The runtime under the inference program: main.cc reads samples, times Predict and writes
 * outputs; a backend loads the model and runs it. One backend is compiled in, chosen by
 * build.sh (BACKEND=lite: MindSpore Lite, the model zoo's route for Ascend 310 and MINDIR;
 * BACKEND=onnxruntime: ONNX Runtime's C++ API, for the ONNX files export.py writes).
 */
#ifndef STPL_ASCEND310_INFER_INC_BACKEND_H_
#define STPL_ASCEND310_INFER_INC_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

// One float32 model input, fixed shape.
struct InputSpec {
  std::string name;
  std::vector<int64_t> shape;
  size_t bytes = 0;
};

struct RunSettings {
  std::string device_name;  // as given: Ascend, GPU, CPU
  std::string device_type;  // lower case
  uint32_t device_id = 0;
  int thread_num = 0;  // 0: the runtime's default
};

class Backend {
 public:
  virtual ~Backend() = default;
  // "MindSpore Lite 2.0.0", "ONNX Runtime 1.31.1": for the log.
  virtual std::string Describe() const = 0;
  // Builds the model. On failure prints "error: ..." (and any "hint: ..." lines) to stderr
  // and returns false.
  virtual bool Load(const std::string &model_path, const RunSettings &settings) = 0;
  // After Load: the inputs in the model's order. Load fails on non-float32 or dynamic inputs.
  virtual const std::vector<InputSpec> &Inputs() const = 0;
  // inputs[k] holds Inputs()[k].bytes bytes. Fills outputs with each output's raw float32
  // bytes, in the model's output order; false with *error set on failure.
  virtual bool Predict(const std::vector<const std::vector<char> *> &inputs, std::vector<std::vector<char>> *outputs,
                       std::string *error) = 0;
  // After Load: output names in the model's order (may be empty strings).
  virtual std::vector<std::string> OutputNames() const = 0;
};

// Defined by the backend compiled in (backend_lite.cc or backend_onnxruntime.cc).
std::unique_ptr<Backend> MakeBackend();
// "lite" or "onnxruntime".
const char *BackendName();

#endif  // STPL_ASCEND310_INFER_INC_BACKEND_H_
