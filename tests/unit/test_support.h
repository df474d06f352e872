// Helpers shared by the unit tests: scratch folders and the optional shared samples.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace mgspool::testing {

// A fresh folder under the system temporary directory, removed by the destructor unless
// keep() was called (tests call it when a check failed, to leave the evidence behind).
class ScratchDirectory {
 public:
  ScratchDirectory();
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;

  const std::filesystem::path& path() const { return m_path; }
  void keep() { m_keep = true; }

 private:
  std::filesystem::path m_path;
  bool m_keep = false;
};

// Returns the shared samples folder (../shared beside the repository), or nullopt when it
// is missing. Tests that need it call shared_or_skip() first.
std::optional<std::filesystem::path> shared_directory();

// Returns the shared folder; when it is missing, prints "SKIP <test name>: ..." and returns
// nullopt, and the test returns at once.
std::optional<std::filesystem::path> shared_or_skip(const char* test_name);

// Reads a whole file as bytes; fails the current test when it cannot.
std::string read_file(const std::filesystem::path& path);

}  // namespace mgspool::testing
