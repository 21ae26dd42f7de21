/**
 * MindSpore Lite backend (build.sh BACKEND=lite): the model zoo's route, for MINDIR files on
 * Ascend 310 with the MindSpore Lite that matches the exporting MindSpore. The Lite on the
 * package index (2.0.0) reads MindIR only up to version 1; MindSpore 2.10 writes version 3,
 * and a failed build says so (ExplainBuildFailure).
 */
#include <algorithm>
#include <cstring>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/status.h"
#include "include/api/types.h"
#include "inc/backend.h"
#include "inc/utils.h"

// Set by CMakeLists.txt from build.sh's detection; empty when unknown.
#ifndef STPL_MS_LITE_VERSION
#define STPL_MS_LITE_VERSION ""
#endif

namespace {

// The device list of the context decides where Lite runs the graph. device_id applies to
// Ascend and GPU; on CPU it is ignored.
std::shared_ptr<mindspore::Context> MakeContext(const std::string &device_type, uint32_t device_id,
                                                int thread_num) {
  auto context = std::make_shared<mindspore::Context>();
  if (thread_num > 0) {
    context->SetThreadNum(thread_num);
  }
  auto &devices = context->MutableDeviceInfo();
  if (device_type == "ascend") {
    auto ascend = std::make_shared<mindspore::AscendDeviceInfo>();
    ascend->SetDeviceID(device_id);
    devices.push_back(ascend);
  } else if (device_type == "gpu") {
    auto gpu = std::make_shared<mindspore::GPUDeviceInfo>();
    gpu->SetDeviceID(device_id);
    devices.push_back(gpu);
  } else {
    devices.push_back(std::make_shared<mindspore::CPUDeviceInfo>());
  }
  return context;
}

// Explains a failed Model::Build. The Status text of older runtimes is often generic
// ("Load MindIR failed"), while the real reason — a MindIR format newer than the runtime
// reads — only appears in the runtime's log; reading the file's own version fields lets
// us name the mismatch ourselves.
void ExplainBuildFailure(const std::string &mindir_path, const mindspore::Status &status,
                         const std::string &device_type) {
  std::string text = status.ToString();
  std::cerr << "error: MindSpore Lite could not build the model " << mindir_path << ": "
            << (text.empty() ? "(no message)" : text) << " (status code " << static_cast<int>(status.StatusCode())
            << ")" << std::endl;
  MindIRInfo info = ReadMindIRInfo(mindir_path);
  if (!info.parsed) {
    std::cerr << "hint: " << mindir_path << " does not look like a MINDIR file exported by MindSpore "
              << "(export one with mindspore.export(..., file_format='MINDIR'))." << std::endl;
    return;
  }
  std::cerr << "hint: the file is MindIR format version "
            << (info.mind_ir_version >= 0 ? std::to_string(info.mind_ir_version) : std::string("0 (field absent)"))
            << ", exported by " << info.producer_name << " "
            << (info.model_version.empty() ? std::string("(version not recorded)") : info.model_version) << "."
            << std::endl;
  const std::string lite_version = STPL_MS_LITE_VERSION;
  const std::string exporter = info.model_version.empty() ? std::string("the exporting version") : info.model_version;
  // MindSpore Lite up to 2.0 reads MindIR up to version 1 (its log says "maximum mind ir
  // version: 1 ... mind ir version: 3" for files from MindSpore 2.10).
  const bool old_lite = lite_version.rfind("1.", 0) == 0 || lite_version.rfind("2.0.", 0) == 0;
  if (info.mind_ir_version > 1 && old_lite) {
    std::cerr << "hint: MindIR version mismatch: the model is MindIR version " << info.mind_ir_version
              << " (MindSpore " << exporter << "), but this program is linked against MindSpore Lite "
              << lite_version << ", which reads MindIR only up to version 1." << std::endl;
  } else if (info.mind_ir_version > 1) {
    std::cerr << "hint: if the runtime log above says \"maximum mind ir version: N\" with N < "
              << info.mind_ir_version << ", this is a MindIR version mismatch: MindSpore Lite "
              << (lite_version.empty() ? std::string("(version unknown)") : lite_version)
              << " is older than the MindSpore that exported the model." << std::endl;
  }
  std::cerr << "hint: MindSpore Lite must be able to read MindIR from MindSpore " << exporter
            << " and support --device_type=" << device_type
            << ": rebuild with MS_LITE_HOME set to a matching MindSpore Lite (see docs/deployment.md), "
            << "or export ONNX and use the ONNX Runtime runner (BACKEND=onnxruntime bash ascend310_infer/build.sh), "
            << "or the Python runner (scripts/run_infer_310.sh ... DEVICE_TYPE python)." << std::endl;
}


class LiteBackend : public Backend {
 public:
  std::string Describe() const override {
    const std::string version = STPL_MS_LITE_VERSION;
    return "MindSpore Lite " + (version.empty() ? std::string("(version unknown)") : version);
  }

  bool Load(const std::string &model_path, const RunSettings &settings) override {
    auto context = MakeContext(settings.device_type, settings.device_id, settings.thread_num);
    mindspore::Status status = model_.Build(model_path, mindspore::ModelType::kMindIR, context);
    if (status != mindspore::kSuccess) {
      ExplainBuildFailure(model_path, status, settings.device_name);
      return false;
    }
    tensors_ = model_.GetInputs();
    specs_.clear();
    for (size_t k = 0; k < tensors_.size(); ++k) {
      const std::vector<int64_t> &shape = tensors_[k].Shape();
      if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; })) {
        std::cerr << "error: model input " << k << " has a dynamic shape " << ShapeString(shape)
                  << "; export the MINDIR with a fixed input shape" << std::endl;
        return false;
      }
      if (tensors_[k].DataType() != mindspore::DataType::kNumberTypeFloat32) {
        std::cerr << "error: model input " << k << " is not float32 (type id "
                  << static_cast<int>(tensors_[k].DataType()) << "); the sample files hold float32" << std::endl;
        return false;
      }
      InputSpec spec;
      spec.name = tensors_[k].Name();
      spec.shape = shape;
      spec.bytes = tensors_[k].DataSize();
      specs_.push_back(spec);
    }
    for (auto &t : model_.GetOutputs()) {
      output_names_.push_back(t.Name());
    }
    return true;
  }

  const std::vector<InputSpec> &Inputs() const override { return specs_; }

  std::vector<std::string> OutputNames() const override { return output_names_; }

  bool Predict(const std::vector<const std::vector<char> *> &inputs, std::vector<std::vector<char>> *outputs,
               std::string *error) override {
    for (size_t k = 0; k < tensors_.size(); ++k) {
      void *dst = tensors_[k].MutableData();
      if (dst == nullptr) {
        *error = "MindSpore Lite gave no buffer for model input " + std::to_string(k);
        return false;
      }
      std::memcpy(dst, inputs[k]->data(), specs_[k].bytes);
    }
    std::vector<mindspore::MSTensor> results;
    mindspore::Status status = model_.Predict(tensors_, &results);
    if (status != mindspore::kSuccess) {
      *error = "Predict failed: " + status.ToString();
      return false;
    }
    outputs->resize(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      auto data = results[i].Data();
      if (data == nullptr) {
        *error = "output " + std::to_string(i) + " has no data";
        return false;
      }
      const char *bytes = static_cast<const char *>(data.get());
      (*outputs)[i].assign(bytes, bytes + results[i].DataSize());
    }
    return true;
  }

 private:
  mindspore::Model model_;
  std::vector<mindspore::MSTensor> tensors_;
  std::vector<InputSpec> specs_;
  std::vector<std::string> output_names_;
};

}  // namespace

std::unique_ptr<Backend> MakeBackend() { return std::unique_ptr<Backend>(new LiteBackend()); }

const char *BackendName() { return "lite"; }
