#include "test_support.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace mgspool::testing {

ScratchDirectory::ScratchDirectory() {
  std::string pattern = (std::filesystem::temp_directory_path() / "mailgun-spool-unit-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    FAIL("mkdtemp failed for " << pattern);
  }
  m_path = pattern;
}

ScratchDirectory::~ScratchDirectory() {
  if (m_keep) {
    std::fprintf(stderr, "kept %s for inspection\n", m_path.c_str());
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(m_path, ignored);
}

std::optional<std::filesystem::path> shared_directory() {
  // The unit tests run from the repository root (make check), so ../shared is beside it.
  const char* configured = std::getenv("MAILGUN_SPOOL_SHARED_DIR");
  std::filesystem::path candidate = configured != nullptr ? configured : "../shared";
  if (std::filesystem::is_directory(candidate / "mailgun-samples")) {
    return std::filesystem::absolute(candidate);
  }
  return std::nullopt;
}

std::optional<std::filesystem::path> shared_or_skip(const char* test_name) {
  auto shared = shared_directory();
  if (!shared) {
    std::printf("SKIP %s: needs the shared samples at ../shared, which are missing\n", test_name);
  }
  return shared;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  REQUIRE_MESSAGE(stream.good(), "cannot open " << path);
  std::ostringstream contents;
  contents << stream.rdbuf();
  return contents.str();
}

}  // namespace mgspool::testing
