/**
 * Runs a MINDIR model over a folder of preprocessed samples with the MindSpore Lite C++ API,
 * like the model zoo's ascend310_infer program:
 *
 *   main --mindir_path=model.mindir --input0_path=preprocess_Result/00_data
 *        [--input1_path=preprocess_Result/02_noise]
 *        [--device_type=Ascend|GPU|CPU] [--device_id=0] [--output_dir=./result_Files]
 *        [--thread_num=N]
 *
 * Each sample file (seq_00000.bin, ...) of --input0_path is the model's first float32 input
 * as raw bytes; a model with a second input (a stochastic model's noise) reads the file of
 * the same name from --input1_path;
 * output i of sample <stem>.bin goes to <output_dir>/<stem>_<i>.bin (raw, native byte
 * order), and the mean Predict latency to ./time_Result/test_perform_static.txt.
 * Every failure prints one "error:" line (plus hints) to stderr and exits non-zero.
 */
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/status.h"
#include "include/api/types.h"
#include "inc/utils.h"

// Set by CMakeLists.txt from build.sh's detection; empty when unknown.
#ifndef STPL_MS_LITE_VERSION
#define STPL_MS_LITE_VERSION ""
#endif

namespace {

const char kUsage[] =
    "usage: main --mindir_path=MODEL.mindir --input0_path=DATA_DIR [--input1_path=NOISE_DIR]\n"
    "            [--device_type=Ascend|GPU|CPU] [--device_id=0] [--output_dir=./result_Files] [--thread_num=N]\n"
    "  DATA_DIR holds one raw float32 file per sample (seq_00000.bin, ...), as written by\n"
    "  preprocess.py into RESULT_PATH/00_data; NOISE_DIR the second input of a two-input\n"
    "  (stochastic) model, files of the same names (RESULT_PATH/02_noise).";

// The zoo writes its timing summary here, relative to the working directory.
const char kTimeDir[] = "./time_Result";
const char kTimeFile[] = "./time_Result/test_perform_static.txt";

int Fail(const std::string &message) {
  std::cerr << "error: " << message << std::endl;
  return 1;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string ShapeString(const std::vector<int64_t> &shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    os << (i ? "," : "") << shape[i];
  }
  os << "]";
  return os.str();
}

bool ParseInt(const std::string &text, long *value) {
  if (text.empty()) {
    return false;
  }
  char *end = nullptr;
  errno = 0;
  *value = std::strtol(text.c_str(), &end, 10);
  return errno == 0 && end != nullptr && *end == '\0';
}

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
            << "or use the Python runner (scripts/run_infer_310.sh ... DEVICE_TYPE python)." << std::endl;
}

}  // namespace

int main(int argc, char **argv) {
  Options opts = ParseOptions(argc, argv,
                              {"mindir_path", "input0_path", "input1_path", "device_type", "device_id", "output_dir",
                               "thread_num"});
  if (opts.help) {
    std::cout << kUsage << std::endl;
    return 0;
  }
  if (!opts.error.empty()) {
    std::cerr << "error: " << opts.error << "\n" << kUsage << std::endl;
    return 2;
  }
  auto get = [&opts](const std::string &key, const std::string &fallback) {
    auto it = opts.values.find(key);
    return it == opts.values.end() ? fallback : it->second;
  };
  const std::string mindir_path = get("mindir_path", "");
  const std::string input_dir = get("input0_path", "");
  const std::string noise_dir = get("input1_path", "");
  std::vector<std::string> input_dirs = {input_dir};
  if (!noise_dir.empty()) {
    input_dirs.push_back(noise_dir);
  }
  const std::string device_name = get("device_type", "Ascend");
  const std::string device_type = Lower(device_name);
  const std::string output_dir = get("output_dir", "./result_Files");
  long device_id = 0;
  long thread_num = 0;
  if (mindir_path.empty() || input_dir.empty()) {
    std::cerr << "error: --mindir_path and --input0_path are required\n" << kUsage << std::endl;
    return 2;
  }
  if (device_type != "ascend" && device_type != "gpu" && device_type != "cpu") {
    return Fail("--device_type=" + device_name + " is not one of Ascend, GPU, CPU");
  }
  if (!ParseInt(get("device_id", "0"), &device_id) || device_id < 0) {
    return Fail("--device_id must be a non-negative integer, got '" + get("device_id", "") + "'");
  }
  if (!ParseInt(get("thread_num", "0"), &thread_num) || thread_num < 0) {
    return Fail("--thread_num must be a non-negative integer, got '" + get("thread_num", "") + "'");
  }
  if (!IsRegularFile(mindir_path)) {
    return Fail("model file not found: " + mindir_path);
  }
  if (!IsDirectory(input_dir)) {
    return Fail("input folder not found: " + input_dir + " (--input0_path; preprocess.py writes RESULT_PATH/00_data)");
  }
  if (!noise_dir.empty() && !IsDirectory(noise_dir)) {
    return Fail("input folder not found: " + noise_dir + " (--input1_path; preprocess.py writes RESULT_PATH/02_noise)");
  }
  std::string error;
  std::vector<std::string> samples = ListFiles(input_dir, ".bin", &error);
  if (!error.empty()) {
    return Fail(error);
  }
  if (samples.empty()) {
    return Fail("no .bin files in " + input_dir + " (run preprocess.py first)");
  }
  if (!MakeDirs(output_dir)) {
    return Fail("cannot create output folder " + output_dir);
  }
  // Outputs written among the inputs would be read as samples by the next run.
  for (size_t k = 0; k < input_dirs.size(); ++k) {
    if (SamePath(output_dir, input_dirs[k])) {
      return Fail("--output_dir must differ from --input" + std::to_string(k) + "_path (" + input_dirs[k] + ")");
    }
  }

  auto context = MakeContext(device_type, static_cast<uint32_t>(device_id), static_cast<int>(thread_num));
  mindspore::Model model;
  mindspore::Status status = model.Build(mindir_path, mindspore::ModelType::kMindIR, context);
  if (status != mindspore::kSuccess) {
    ExplainBuildFailure(mindir_path, status, device_name);
    return 1;
  }

  std::vector<mindspore::MSTensor> inputs = model.GetInputs();
  if (inputs.size() != input_dirs.size()) {
    return Fail("the model has " + std::to_string(inputs.size()) + " input(s) but " +
                std::to_string(input_dirs.size()) + " folder(s) were given: one per input, --input0_path" +
                (inputs.size() > 1 ? std::string(" and --input1_path (a stochastic model's noise, RESULT_PATH/02_noise)")
                                   : std::string(" only")));
  }
  std::vector<size_t> expected_bytes;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const std::vector<int64_t> &shape = inputs[k].Shape();
    if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; })) {
      return Fail("model input " + std::to_string(k) + " has a dynamic shape " + ShapeString(shape) +
                  "; export the MINDIR with a fixed input shape");
    }
    if (inputs[k].DataType() != mindspore::DataType::kNumberTypeFloat32) {
      return Fail("model input " + std::to_string(k) + " is not float32 (type id " +
                  std::to_string(static_cast<int>(inputs[k].DataType())) + "); the sample files hold float32");
    }
    expected_bytes.push_back(inputs[k].DataSize());
    std::cout << "model " << mindir_path << ": input " << k << " " << inputs[k].Name() << " " << ShapeString(shape)
              << " float32 (" << expected_bytes[k] << " bytes) from " << input_dirs[k] << std::endl;
  }
  std::cout << samples.size() << " samples, device " << device_name << std::endl;

  std::vector<double> costs_ms;
  std::vector<char> buffer;
  for (const std::string &name : samples) {
    const std::string path = JoinPath(input_dir, name);
    for (size_t k = 0; k < inputs.size(); ++k) {
      const std::string input_path = JoinPath(input_dirs[k], name);
      if (!ReadBinary(input_path, &buffer, &error)) {
        return Fail(error);
      }
      if (buffer.size() != expected_bytes[k]) {
        return Fail(input_path + " holds " + std::to_string(buffer.size()) + " bytes but model input " +
                    std::to_string(k) + " " + ShapeString(inputs[k].Shape()) + " float32 needs " +
                    std::to_string(expected_bytes[k]) +
                    " bytes (was it preprocessed with the same config as the export?)");
      }
      void *dst = inputs[k].MutableData();
      if (dst == nullptr) {
        return Fail("MindSpore Lite gave no buffer for model input " + std::to_string(k));
      }
      std::memcpy(dst, buffer.data(), expected_bytes[k]);
    }

    std::vector<mindspore::MSTensor> outputs;
    auto start = std::chrono::steady_clock::now();
    status = model.Predict(inputs, &outputs);
    auto end = std::chrono::steady_clock::now();
    if (status != mindspore::kSuccess) {
      return Fail("Predict failed on " + path + ": " + status.ToString());
    }
    double ms = std::chrono::duration<double, std::milli>(end - start).count();
    costs_ms.push_back(ms);

    const std::string stem = FileStem(name);
    for (size_t i = 0; i < outputs.size(); ++i) {
      const std::string out_path = JoinPath(output_dir, stem + "_" + std::to_string(i) + ".bin");
      auto data = outputs[i].Data();
      if (data == nullptr) {
        return Fail("output " + std::to_string(i) + " of " + path + " has no data");
      }
      if (!WriteBinary(out_path, data.get(), outputs[i].DataSize(), &error)) {
        return Fail(error);
      }
    }
    std::cout << name << ": " << std::fixed << std::setprecision(3) << ms << " ms, " << outputs.size()
              << " output(s)" << std::endl;
  }

  double total = 0.0;
  for (double c : costs_ms) {
    total += c;
  }
  const double average = total / static_cast<double>(costs_ms.size());
  std::ostringstream summary;
  summary << "NN inference cost average time: " << std::fixed << std::setprecision(3) << average
          << " ms of infer_count " << costs_ms.size();
  std::cout << summary.str() << std::endl;
  if (!MakeDirs(kTimeDir)) {
    return Fail(std::string("cannot create ") + kTimeDir);
  }
  std::ofstream time_file(kTimeFile, std::ios::trunc);
  time_file << summary.str() << std::endl;
  if (!time_file) {
    return Fail(std::string("cannot write ") + kTimeFile);
  }
  return 0;
}
