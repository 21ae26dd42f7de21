/**
 * Helpers for the MINDIR inference program (ascend310_infer/src/main.cc): option parsing,
 * folder listing, raw file I/O and a small MindIR header reader. Kept free of MindSpore
 * headers so that they compile without the MindSpore Lite API.
 */
#ifndef STPL_ASCEND310_INFER_INC_UTILS_H_
#define STPL_ASCEND310_INFER_INC_UTILS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

// Parsed command line: "--key=value", "-key=value" or "--key value" (the forms gflags
// accepts), so the zoo's usage lines work unchanged without a gflags dependency.
struct Options {
  std::map<std::string, std::string> values;
  bool help = false;
  std::string error;  // empty when parsing succeeded
};

// `known` lists the accepted keys; any other key is an error rather than silently ignored,
// so that a typo such as --input_path does not run with a default.
Options ParseOptions(int argc, char **argv, const std::vector<std::string> &known);

bool IsDirectory(const std::string &path);
bool IsRegularFile(const std::string &path);
// True when both name the same existing file or folder.
bool SamePath(const std::string &a, const std::string &b);
// Creates `path` and its parents; true when the folder exists afterwards.
bool MakeDirs(const std::string &path);

// Names (not paths) of the regular files in `dir` ending in `suffix`, in byte-wise sorted
// order: sample files are zero-padded (seq_00000.bin), so this is the sample order.
// Sets `error` and returns an empty list when the folder cannot be read.
std::vector<std::string> ListFiles(const std::string &dir, const std::string &suffix, std::string *error);

// [1,10,16,16,16]
std::string ShapeString(const std::vector<int64_t> &shape);

std::string JoinPath(const std::string &dir, const std::string &name);
// "seq_00001.bin" -> "seq_00001"
std::string FileStem(const std::string &name);

// Whole file into `data`; false (with `error` set) when it cannot be read.
bool ReadBinary(const std::string &path, std::vector<char> *data, std::string *error);
bool WriteBinary(const std::string &path, const void *data, size_t size, std::string *error);

// A few top-level fields of a MindIR file (protobuf ModelProto), read without protobuf so
// that a load failure can be explained: which MindSpore wrote the file, and which MindIR
// format version it uses (field 13, mind_ir_version; absent in files from MindSpore 1.x).
// MindSpore 2.10 writes ir_version "1.1", model_version "2.10.0", mind_ir_version 3.
struct MindIRInfo {
  bool parsed = false;
  std::string ir_version;        // field 1
  std::string producer_name;     // field 2, "MindSpore"
  std::string model_version;     // field 5: the version of MindSpore that exported it
  int64_t mind_ir_version = -1;  // field 13; -1 when absent
};
MindIRInfo ReadMindIRInfo(const std::string &path);

#endif  // STPL_ASCEND310_INFER_INC_UTILS_H_
