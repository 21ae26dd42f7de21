/**
 * Runs an exported model over a folder of preprocessed samples, like the model zoo's
 * ascend310_infer program, on one of two runtimes (inc/backend.h; build.sh BACKEND=...):
 * MindSpore Lite (MINDIR, Ascend 310) or ONNX Runtime (ONNX, CPU/GPU).
 *
 *   main --model_path=MODEL --input0_path=preprocess_Result/00_data
 *        [--input1_path=preprocess_Result/02_noise]
 *        [--device_type=Ascend|GPU|CPU] [--device_id=0] [--output_dir=./result_Files]
 *        [--thread_num=N]
 *   (--mindir_path is the zoo's name for --model_path and is accepted as such)
 *
 * Each sample file (seq_00000.bin, ...) of --input0_path is the model's first float32 input
 * (export.py names it frames) as raw bytes; a model with a second input (a stochastic model's
 * noise) reads the file of the same name from --input1_path;
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

#include "inc/backend.h"
#include "inc/utils.h"

namespace {

const char kUsage[] =
    "usage: main --model_path=MODEL --input0_path=DATA_DIR [--input1_path=NOISE_DIR]\n"
    "            [--device_type=Ascend|GPU|CPU] [--device_id=0] [--output_dir=./result_Files] [--thread_num=N]\n"
    "  DATA_DIR holds one raw float32 file per sample (seq_00000.bin, ...), as written by\n"
    "  preprocess.py into RESULT_PATH/00_data; NOISE_DIR the second input of a two-input\n"
    "  (stochastic) model, files of the same names (RESULT_PATH/02_noise).\n"
    "  MODEL: a MINDIR for the MindSpore Lite build, an ONNX file for the ONNX Runtime build\n"
    "  (--mindir_path is accepted for --model_path).";

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

bool ParseInt(const std::string &text, long *value) {
  if (text.empty()) {
    return false;
  }
  char *end = nullptr;
  errno = 0;
  *value = std::strtol(text.c_str(), &end, 10);
  return errno == 0 && end != nullptr && *end == '\0';
}

}  // namespace

int main(int argc, char **argv) {
  Options opts = ParseOptions(argc, argv,
                              {"model_path", "mindir_path", "input0_path", "input1_path", "device_type", "device_id",
                               "output_dir", "thread_num"});
  if (opts.help) {
    std::cout << kUsage << "\n  this build: " << BackendName() << std::endl;
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
  if (opts.values.count("model_path") && opts.values.count("mindir_path")) {
    std::cerr << "error: give --model_path or --mindir_path, not both\n" << kUsage << std::endl;
    return 2;
  }
  const std::string model_path = get("model_path", get("mindir_path", ""));
  const std::string input_dir = get("input0_path", "");
  const std::string noise_dir = get("input1_path", "");
  std::vector<std::string> input_dirs = {input_dir};
  if (!noise_dir.empty()) {
    input_dirs.push_back(noise_dir);
  }
  const std::string default_device = std::string(BackendName()) == "lite" ? "Ascend" : "CPU";
  RunSettings settings;
  settings.device_name = get("device_type", default_device);
  settings.device_type = Lower(settings.device_name);
  const std::string output_dir = get("output_dir", "./result_Files");
  long device_id = 0;
  long thread_num = 0;
  if (model_path.empty() || input_dir.empty()) {
    std::cerr << "error: --model_path (or --mindir_path) and --input0_path are required\n" << kUsage << std::endl;
    return 2;
  }
  if (settings.device_type != "ascend" && settings.device_type != "gpu" && settings.device_type != "cpu") {
    return Fail("--device_type=" + settings.device_name + " is not one of Ascend, GPU, CPU");
  }
  if (!ParseInt(get("device_id", "0"), &device_id) || device_id < 0) {
    return Fail("--device_id must be a non-negative integer, got '" + get("device_id", "") + "'");
  }
  if (!ParseInt(get("thread_num", "0"), &thread_num) || thread_num < 0) {
    return Fail("--thread_num must be a non-negative integer, got '" + get("thread_num", "") + "'");
  }
  settings.device_id = static_cast<uint32_t>(device_id);
  settings.thread_num = static_cast<int>(thread_num);
  if (!IsRegularFile(model_path)) {
    return Fail("model file not found: " + model_path);
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

  std::unique_ptr<Backend> backend = MakeBackend();
  if (!backend->Load(model_path, settings)) {
    return 1;
  }
  const std::vector<InputSpec> &inputs = backend->Inputs();
  if (inputs.size() != input_dirs.size()) {
    return Fail("the model has " + std::to_string(inputs.size()) + " input(s) but " +
                std::to_string(input_dirs.size()) + " folder(s) were given: one per input, --input0_path" +
                (inputs.size() > 1 ? std::string(" and --input1_path (a stochastic model's noise, RESULT_PATH/02_noise)")
                                   : std::string(" only")));
  }
  std::cout << backend->Describe() << ", device " << settings.device_name << std::endl;
  for (size_t k = 0; k < inputs.size(); ++k) {
    std::cout << "model " << model_path << ": input " << k << " " << inputs[k].name << " "
              << ShapeString(inputs[k].shape) << " float32 (" << inputs[k].bytes << " bytes) from " << input_dirs[k]
              << std::endl;
  }
  std::vector<std::string> output_names = backend->OutputNames();
  for (size_t i = 0; i < output_names.size(); ++i) {
    std::cout << "model " << model_path << ": output " << i << " " << output_names[i] << " -> <sample>_" << i
              << ".bin" << std::endl;
  }
  std::cout << samples.size() << " samples" << std::endl;

  std::vector<double> costs_ms;
  std::vector<std::vector<char>> buffers(inputs.size());
  std::vector<const std::vector<char> *> feed;
  for (const std::vector<char> &b : buffers) {
    feed.push_back(&b);
  }
  std::vector<std::vector<char>> outputs;
  for (const std::string &name : samples) {
    const std::string path = JoinPath(input_dir, name);
    for (size_t k = 0; k < inputs.size(); ++k) {
      const std::string input_path = JoinPath(input_dirs[k], name);
      if (!ReadBinary(input_path, &buffers[k], &error)) {
        return Fail(error);
      }
      if (buffers[k].size() != inputs[k].bytes) {
        return Fail(input_path + " holds " + std::to_string(buffers[k].size()) + " bytes but model input " +
                    std::to_string(k) + " " + inputs[k].name + " " + ShapeString(inputs[k].shape) +
                    " float32 needs " + std::to_string(inputs[k].bytes) +
                    " bytes (was it preprocessed with the same config and batch size as the export?)");
      }
    }

    auto start = std::chrono::steady_clock::now();
    bool ok = backend->Predict(feed, &outputs, &error);
    auto end = std::chrono::steady_clock::now();
    if (!ok) {
      return Fail(error + " (sample " + path + ")");
    }
    double ms = std::chrono::duration<double, std::milli>(end - start).count();
    costs_ms.push_back(ms);

    const std::string stem = FileStem(name);
    for (size_t i = 0; i < outputs.size(); ++i) {
      const std::string out_path = JoinPath(output_dir, stem + "_" + std::to_string(i) + ".bin");
      if (!WriteBinary(out_path, outputs[i].data(), outputs[i].size(), &error)) {
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
