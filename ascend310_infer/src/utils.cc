/**
 * Helpers for main.cc. POSIX calls rather than std::filesystem: the MindSpore Lite wheel is
 * built with the pre-C++11 std::string ABI (_GLIBCXX_USE_CXX11_ABI=0), and keeping this file
 * to plain C APIs and std::string makes it compile the same way under either ABI.
 */
#include "inc/utils.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

Options ParseOptions(int argc, char **argv, const std::vector<std::string> &known) {
  Options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') {
      opts.error = "unexpected argument '" + arg + "' (options are --key=value)";
      return opts;
    }
    size_t start = (arg[1] == '-') ? 2 : 1;
    std::string body = arg.substr(start);
    if (body == "help" || body == "h" || body == "helpfull") {
      opts.help = true;
      continue;
    }
    std::string key;
    std::string value;
    size_t eq = body.find('=');
    if (eq != std::string::npos) {
      key = body.substr(0, eq);
      value = body.substr(eq + 1);
    } else {
      // "--key value": gflags takes the next argument as the value.
      key = body;
      if (i + 1 >= argc) {
        opts.error = "option --" + key + " needs a value (--" + key + "=VALUE)";
        return opts;
      }
      value = argv[++i];
    }
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      opts.error = "unknown option --" + key;
      return opts;
    }
    opts.values[key] = value;
  }
  return opts;
}

bool IsDirectory(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsRegularFile(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool MakeDirs(const std::string &path) {
  if (path.empty() || IsDirectory(path)) {
    return !path.empty();
  }
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    if (!MakeDirs(path.substr(0, slash))) {
      return false;
    }
  }
  // EEXIST covers a folder made in between by a concurrent run.
  return (mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) && IsDirectory(path);
}

bool SamePath(const std::string &a, const std::string &b) {
  struct stat sa;
  struct stat sb;
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::vector<std::string> ListFiles(const std::string &dir, const std::string &suffix, std::string *error) {
  std::vector<std::string> names;
  DIR *d = opendir(dir.c_str());
  if (d == nullptr) {
    *error = "cannot read folder " + dir + ": " + std::strerror(errno);
    return names;
  }
  for (struct dirent *e = readdir(d); e != nullptr; e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    if (IsRegularFile(JoinPath(dir, name))) {
      names.push_back(name);
    }
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string ShapeString(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i ? "," : "") + std::to_string(shape[i]);
  }
  return text + "]";
}

std::string JoinPath(const std::string &dir, const std::string &name) {
  if (dir.empty()) {
    return name;
  }
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string FileStem(const std::string &name) {
  size_t dot = name.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

bool ReadBinary(const std::string &path, std::vector<char> *data, std::string *error) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  std::streamsize size = in.tellg();
  in.seekg(0, std::ios::beg);
  data->resize(static_cast<size_t>(size));
  if (size > 0 && !in.read(data->data(), size)) {
    *error = "cannot read " + path;
    return false;
  }
  return true;
}

bool WriteBinary(const std::string &path, const void *data, size_t size, std::string *error) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    *error = "cannot create " + path + ": " + std::strerror(errno);
    return false;
  }
  out.write(static_cast<const char *>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    *error = "cannot write " + path + " (disk full?)";
    return false;
  }
  return true;
}

namespace {
// Protobuf base-128 varint; false at end of file or on a malformed (over-long) varint.
bool ReadVarint(std::istream *in, uint64_t *value) {
  *value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    int c = in->get();
    if (c == EOF) {
      return false;
    }
    *value |= static_cast<uint64_t>(c & 0x7f) << shift;
    if ((c & 0x80) == 0) {
      return true;
    }
  }
  return false;
}
}  // namespace

MindIRInfo ReadMindIRInfo(const std::string &path) {
  // Walks the top-level fields of ModelProto only, seeking over sub-messages (the graph
  // and its weights), so even a large model costs a few reads.
  MindIRInfo info;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return info;
  }
  const uint64_t kMaxString = 4096;  // the wanted fields are short version strings
  bool any = false;
  uint64_t tag = 0;
  while (ReadVarint(&in, &tag)) {
    uint64_t field = tag >> 3;
    uint64_t wire = tag & 7;
    if (wire == 0) {
      uint64_t v = 0;
      if (!ReadVarint(&in, &v)) {
        break;
      }
      if (field == 13) {
        info.mind_ir_version = static_cast<int64_t>(v);
      }
    } else if (wire == 1 || wire == 5) {
      in.seekg(wire == 1 ? 8 : 4, std::ios::cur);
    } else if (wire == 2) {
      uint64_t len = 0;
      if (!ReadVarint(&in, &len)) {
        break;
      }
      bool wanted = field == 1 || field == 2 || field == 5;
      if (wanted && len <= kMaxString) {
        std::string s(static_cast<size_t>(len), '\0');
        if (len > 0 && !in.read(&s[0], static_cast<std::streamsize>(len))) {
          break;
        }
        (field == 1 ? info.ir_version : field == 2 ? info.producer_name : info.model_version) = s;
      } else {
        in.seekg(static_cast<std::streamoff>(len), std::ios::cur);
      }
    } else {
      break;  // groups (3, 4) are not used by ModelProto: not a MindIR file
    }
    if (!in) {
      break;
    }
    any = true;
  }
  info.parsed = any && info.producer_name == "MindSpore";
  return info;
}
