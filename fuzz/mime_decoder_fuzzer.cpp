// Decodes the input as message.eml in a fresh directory, then checks that the files on
// disk are exactly the regular files the records describe, with names the decoder chose,
// and that every text meta.json would carry is valid UTF-8.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "file_io.h"
#include "fuzz_support.h"
#include "mime_decoder.h"

using namespace mgspool;

namespace {

std::string g_base_directory;

// Every name decode_message_file may give a file it writes.
bool is_decoder_file_name(const std::string& name) {
  static const std::regex pattern(
      "body-plain\\.txt|body-html\\.html|body-other-[1-9][0-9]*\\.(txt|html)|"
      "part-[1-9][0-9]*\\.(png|jpg|gif|tif|pdf|txt|html|csv|eml|dat|bin)");
  return std::regex_match(name, pattern);
}

std::vector<std::string> list_directory(int dir_fd) {
  DIR* dir = fdopendir(fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
  fuzzing::check(dir != nullptr, "fdopendir failed");
  rewinddir(dir);  // the duplicate shares its offset with dir_fd, which an earlier listing moved
  std::vector<std::string> names;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") {
      names.push_back(name);
    }
  }
  closedir(dir);
  return names;
}

void check_files(int dir_fd, const DecodedMessage& message) {
  std::set<std::string> recorded;
  std::set<std::string> safe_names;
  for (const PartRecord& part : message.parts) {
    fuzzing::check(recorded.insert(part.file).second, "two records name the same file", part.file);
    if (part.filename) {
      fuzzing::check_safe_name(*part.filename);
      fuzzing::check(safe_names.insert(*part.filename).second, "two parts got the same safe name", *part.filename);
    }
    fuzzing::check(!part.filename_sent || fuzzing::is_strict_utf8(*part.filename_sent), "filename_sent is not UTF-8",
                   part.filename_sent.value_or(""));
  }

  std::vector<std::string> names = list_directory(dir_fd);
  for (const std::string& name : names) {
    if (name == "message.eml") {
      continue;
    }
    fuzzing::check(is_decoder_file_name(name), "file with a name the decoder does not choose", name);
    fuzzing::check(recorded.count(name) == 1, "file without a record", name);
    struct stat status;
    fuzzing::check(fstatat(dir_fd, name.c_str(), &status, AT_SYMLINK_NOFOLLOW) == 0, "fstatat failed", name);
    fuzzing::check(S_ISREG(status.st_mode), "written entry is not a regular file", name);
  }
  fuzzing::check(names.size() == message.parts.size() + 1, "a record has no file");

  for (const PartRecord& part : message.parts) {
    UniqueFd file(openat(dir_fd, part.file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    fuzzing::check(file.valid(), "recorded file cannot be opened", part.file);
    struct stat status;
    fuzzing::check(fstat(file.get(), &status) == 0, "fstat failed", part.file);
    fuzzing::check(static_cast<std::uint64_t>(status.st_size) == part.size, "recorded size differs", part.file);
    fuzzing::check(sha256_hex_of_fd(file.get()) == part.sha256, "recorded sha256 differs", part.file);
  }
}

void check_texts(const DecodedMessage& message) {
  for (const auto& [name, value] : message.headers) {
    fuzzing::check(fuzzing::is_strict_utf8(name) && fuzzing::is_strict_utf8(value), "header is not UTF-8", name + value);
  }
  for (const std::string& defect : message.defects) {
    fuzzing::check(fuzzing::is_strict_utf8(defect), "defect is not UTF-8", defect);
  }
  fuzzing::check(fuzzing::is_strict_utf8(message.subject.value_or("")), "subject is not UTF-8");
  fuzzing::check(fuzzing::is_strict_utf8(message.from.value_or("")), "from is not UTF-8");
}

void remove_directory(const std::string& path, int dir_fd) {
  for (const std::string& name : list_directory(dir_fd)) {
    fuzzing::check(unlinkat(dir_fd, name.c_str(), 0) == 0, "unlink failed", name);
  }
  fuzzing::check(rmdir(path.c_str()) == 0, "rmdir failed", path);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzzing::initialize_gmime();
  struct stat status;
  g_base_directory = stat("/dev/shm", &status) == 0 && S_ISDIR(status.st_mode) ? "/dev/shm" : "/tmp";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string path = g_base_directory + "/mgspool-fuzz-XXXXXX";
  fuzzing::check(mkdtemp(path.data()) != nullptr, "mkdtemp failed", path);
  UniqueFd dir(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  fuzzing::check(dir.valid(), "open of the temporary directory failed", path);
  write_new_file_at(dir.get(), "message.eml", std::string_view(reinterpret_cast<const char*>(data), size), 0600);

  // decode_message_file throws only when a read or write fails, and this fresh directory
  // does not fail them, so any exception is a bug: it escapes and libFuzzer reports it.
  DecodedMessage message = decode_message_file(dir.get(), "message.eml");
  check_files(dir.get(), message);
  check_texts(message);

  remove_directory(path, dir.get());
  return 0;
}
