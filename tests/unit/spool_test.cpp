#include "spool.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "request_error.h"
#include "test_support.h"

namespace fs = std::filesystem;
using mgspool::Spool;
using mgspool::StagingDirectory;
using mgspool::testing::ScratchDirectory;

namespace {

mode_t mode_of(const fs::path& path) {
  struct stat info {};
  REQUIRE_MESSAGE(::lstat(path.c_str(), &info) == 0, "cannot stat " << path);
  return info.st_mode & 07777;
}

std::size_t entry_count(const fs::path& folder) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(folder), fs::directory_iterator()));
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream stream(path, std::ios::binary);
  stream << text;
}

void write_staged_file(const StagingDirectory& staging, const std::string& name, const std::string& text) {
  mgspool::UniqueFd fd = staging.create_file(name);
  mgspool::write_all(fd.get(), text, name);
  mgspool::fsync_or_throw(fd.get(), name);
  fd.close_checked(name);
}

// Runs child in a forked process and returns its exit status; the child never returns
// into doctest.
template <typename Function>
int run_in_child(Function child) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int status = 1;
    try {
      status = child();
    } catch (...) {
    }
    ::_exit(status);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::chrono::system_clock::time_point example_time() {
  using namespace std::chrono;
  return sys_days{year{2026} / December / 4} + hours{20} + minutes{24} + seconds{56} + microseconds{123456};
}

}  // namespace

TEST_CASE("spool creates folders with modes") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());

  CHECK(mode_of(root) == 02750);
  CHECK(mode_of(root / "tmp") == 02700);
  CHECK(mode_of(root / "new") == 02770);
  CHECK(mode_of(root / "cur") == 02770);
  CHECK(mode_of(root / "private") == 0700);
  CHECK(spool.path() == root.string());
}

TEST_CASE("spool keeps modes of existing folders") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  REQUIRE(::mkdir(root.c_str(), 0755) == 0);
  REQUIRE(::mkdir((root / "new").c_str(), 0700) == 0);
  REQUIRE(::chmod(root.c_str(), 0755) == 0);
  REQUIRE(::chmod((root / "new").c_str(), 0711) == 0);

  Spool spool(root.string());

  CHECK(mode_of(root) == 0755);
  CHECK(mode_of(root / "new") == 0711);
  CHECK(mode_of(root / "tmp") == 02700);
}

TEST_CASE("spool rejects symbolic link folders") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  fs::create_directories(root);
  fs::create_directories(scratch.path() / "elsewhere");
  fs::create_directory_symlink(scratch.path() / "elsewhere", root / "new");

  CHECK_THROWS_AS(Spool(root.string()), mgspool::RequestError);
}

TEST_CASE("spool fails without parent folder") {
  ScratchDirectory scratch;
  CHECK_THROWS_AS(Spool((scratch.path() / "missing" / "spool").string()), mgspool::RequestError);
}

TEST_CASE("message ID format and width") {
  std::string id = mgspool::make_message_id(example_time());
  CAPTURE(id);

  static const std::regex pattern(R"(^\d{8}T\d{6}\.\d{6}Z-[A-Za-z0-9.-]{1,32}-\d+-\d{10}-[0-9a-f]{8}$)");
  CHECK(std::regex_match(id, pattern));
  CHECK(id.rfind("20261204T202456.123456Z-", 0) == 0);
  CHECK(mgspool::is_valid_message_id(id));

  std::string at_epoch = mgspool::make_message_id(std::chrono::system_clock::time_point{});
  CHECK(at_epoch.rfind("19700101T000000.000000Z-", 0) == 0);
}

TEST_CASE("message IDs sort in call order") {
  std::vector<std::string> same_time;
  std::vector<std::string> rising_time;
  auto now = std::chrono::system_clock::now();
  for (int i = 0; i < 2000; ++i) {
    same_time.push_back(mgspool::make_message_id(now));
    rising_time.push_back(mgspool::make_message_id(now + std::chrono::microseconds(i)));
  }
  CHECK(std::is_sorted(same_time.begin(), same_time.end()));
  CHECK(std::is_sorted(rising_time.begin(), rising_time.end()));
  CHECK(mgspool::make_message_id(now + std::chrono::seconds(1)) > same_time.back());
}

TEST_CASE("message IDs are unique") {
  std::set<std::string> ids;
  auto now = std::chrono::system_clock::now();
  for (int i = 0; i < 10000; ++i) {
    ids.insert(mgspool::make_message_id(now));
  }
  CHECK(ids.size() == 10000);
}

TEST_CASE("message IDs unique across forks") {
  ScratchDirectory scratch;
  constexpr int k_children = 4;
  constexpr int k_ids_per_process = 1000;
  auto now = std::chrono::system_clock::now();

  std::set<std::string> ids;
  for (int i = 0; i < k_ids_per_process; ++i) {
    ids.insert(mgspool::make_message_id(now));
  }
  for (int child = 0; child < k_children; ++child) {
    fs::path output = scratch.path() / ("ids-" + std::to_string(child));
    int status = run_in_child([&] {
      std::ofstream stream(output);
      for (int i = 0; i < k_ids_per_process; ++i) {
        stream << mgspool::make_message_id(now) << '\n';
      }
      return stream.good() ? 0 : 1;
    });
    CHECK(status == 0);

    std::ifstream stream(output);
    for (std::string line; std::getline(stream, line);) {
      ids.insert(line);
    }
  }
  CHECK(ids.size() == (k_children + 1) * k_ids_per_process);
}

TEST_CASE("message ID validity rules") {
  CHECK(mgspool::is_valid_message_id("abc-1.2_3"));
  CHECK_FALSE(mgspool::is_valid_message_id(""));
  CHECK_FALSE(mgspool::is_valid_message_id("."));
  CHECK_FALSE(mgspool::is_valid_message_id(".."));
  CHECK_FALSE(mgspool::is_valid_message_id("a/b"));
  CHECK_FALSE(mgspool::is_valid_message_id("a b"));
  CHECK_FALSE(mgspool::is_valid_message_id(std::string(256, 'a')));
}

TEST_CASE("staging commit publishes message") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  std::string id = mgspool::make_message_id(std::chrono::system_clock::now());

  {
    StagingDirectory staging = spool.create_staging(id);
    CHECK(fs::is_directory(root / "tmp" / id));
    write_staged_file(staging, "message.eml", "Subject: hello\r\n\r\nbody\r\n");
    write_staged_file(staging, "request.body", "to be removed");
    staging.remove_file("request.body");

    CHECK(staging.commit() == mgspool::CommitResult::published);
    CHECK(staging.committed());
  }

  fs::path message = root / "new" / id;
  CHECK(fs::is_directory(message));
  CHECK(mgspool::testing::read_file(message / "message.eml") == "Subject: hello\r\n\r\nbody\r\n");
  CHECK_FALSE(fs::exists(message / "request.body"));
  CHECK(mode_of(message) == 02770);
  CHECK(mode_of(message / "message.eml") == 0640);
  CHECK(entry_count(root / "tmp") == 0);
}

TEST_CASE("staging without commit leaves nothing") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  std::string id = mgspool::make_message_id(std::chrono::system_clock::now());

  {
    StagingDirectory staging = spool.create_staging(id);
    write_staged_file(staging, "message.eml", "partial");
  }

  CHECK(entry_count(root / "tmp") == 0);
  CHECK(entry_count(root / "new") == 0);
}

TEST_CASE("staging removal never follows links") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  fs::path outside = scratch.path() / "outside";
  fs::create_directories(outside);
  write_text(outside / "keep.txt", "keep");

  {
    StagingDirectory staging = spool.create_staging("staging-with-tree");
    fs::path folder = root / "tmp" / "staging-with-tree";
    fs::create_directories(folder / "sub" / "deeper");
    write_text(folder / "sub" / "deeper" / "file", "x");
    fs::create_directory_symlink(outside, folder / "sub" / "link-to-outside");
    fs::create_symlink(outside / "keep.txt", folder / "file-link");
  }

  CHECK(entry_count(root / "tmp") == 0);
  CHECK(mgspool::testing::read_file(outside / "keep.txt") == "keep");
}

TEST_CASE("staging moved keeps one owner") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());

  {
    StagingDirectory first = spool.create_staging("moved-staging");
    StagingDirectory second(std::move(first));
    CHECK(second.id() == "moved-staging");
    CHECK(second.commit() == mgspool::CommitResult::published);
  }

  CHECK(fs::is_directory(root / "new" / "moved-staging"));
  CHECK(entry_count(root / "tmp") == 0);
}

TEST_CASE("staging rejects invalid and taken IDs") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());

  CHECK_THROWS_AS(spool.create_staging("../escape"), mgspool::RequestError);
  CHECK_THROWS_AS(spool.create_staging(".."), mgspool::RequestError);
  StagingDirectory staging = spool.create_staging("taken");
  CHECK_THROWS_AS(spool.create_staging("taken"), mgspool::RequestError);
  CHECK(fs::is_directory(root / "tmp" / "taken"));
}

TEST_CASE("commit never replaces published message") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  std::string id = mgspool::make_message_id(std::chrono::system_clock::now());
  fs::create_directory(root / "new" / id);
  write_text(root / "new" / id / "message.eml", "first");

  {
    StagingDirectory staging = spool.create_staging(id);
    write_staged_file(staging, "message.eml", "second");
    CHECK_THROWS_AS(staging.commit(), mgspool::RequestError);
    CHECK_FALSE(staging.committed());
  }

  CHECK(mgspool::testing::read_file(root / "new" / id / "message.eml") == "first");
  CHECK(entry_count(root / "new" / id) == 1);
  CHECK(entry_count(root / "new") == 1);
  CHECK(entry_count(root / "tmp") == 0);
}

TEST_CASE("commit never replaces empty folder") {
  // A plain rename would replace an empty directory, so only RENAME_NOREPLACE fails here.
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  fs::create_directory(root / "new" / "empty-target");

  {
    StagingDirectory staging = spool.create_staging("empty-target");
    write_staged_file(staging, "message.eml", "second");
    CHECK_THROWS_AS(staging.commit(), mgspool::RequestError);
  }

  CHECK(entry_count(root / "new" / "empty-target") == 0);
  CHECK(entry_count(root / "tmp") == 0);
}

TEST_CASE("commit failure rolls back staging") {
  if (::geteuid() == 0) {
    // Root ignores directory permissions, so this fault cannot be made; the test above
    // covers the same roll-back with an existing new/ID.
    std::printf("SKIP commit failure rolls back staging: root ignores directory permissions "
                "(the integration tests make the rename fail instead)\n");
    return;
  }
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  REQUIRE(::chmod((root / "new").c_str(), 0500) == 0);

  {
    StagingDirectory staging = spool.create_staging("denied");
    write_staged_file(staging, "message.eml", "text");
    CHECK_THROWS_AS(staging.commit(), mgspool::RequestError);
  }

  ::chmod((root / "new").c_str(), 0700);
  CHECK(entry_count(root / "tmp") == 0);
  CHECK(entry_count(root / "new") == 0);
}

TEST_CASE("second commit is rejected") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());

  StagingDirectory staging = spool.create_staging("twice");
  CHECK(staging.commit() == mgspool::CommitResult::published);
  CHECK_THROWS_AS(staging.commit(), mgspool::RequestError);
  CHECK(fs::is_directory(root / "new" / "twice"));
}

TEST_CASE("abandoned staging removed, locked kept") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  fs::path tmp = root / "tmp";
  fs::path outside = scratch.path() / "outside";
  fs::create_directories(outside);
  write_text(outside / "keep.txt", "keep");

  // Owned by this process through the StagingDirectory's own open file description.
  StagingDirectory live = spool.create_staging("live");
  write_staged_file(live, "message.eml", "in progress");

  // Locked by a second open file description, as another process would hold it.
  fs::create_directory(tmp / "held");
  int held_fd = ::open((tmp / "held").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(held_fd >= 0);
  mgspool::UniqueFd held(held_fd);
  REQUIRE(::flock(held.get(), LOCK_EX) == 0);

  fs::create_directories(tmp / "abandoned" / "sub");
  write_text(tmp / "abandoned" / "message.eml", "left behind");
  write_text(tmp / "abandoned" / "sub" / "part", "left behind");
  write_text(tmp / "stray-file", "x");
  fs::create_directory_symlink(outside, tmp / "stray-link");

  CHECK(spool.remove_abandoned_staging() == 3);

  CHECK(fs::is_directory(tmp / "live"));
  CHECK(fs::exists(tmp / "live" / "message.eml"));
  CHECK(fs::is_directory(tmp / "held"));
  CHECK_FALSE(fs::exists(tmp / "abandoned"));
  CHECK_FALSE(fs::exists(tmp / "stray-file"));
  CHECK_FALSE(fs::is_symlink(tmp / "stray-link"));
  CHECK(mgspool::testing::read_file(outside / "keep.txt") == "keep");
}

TEST_CASE("abandoned staging of exited process") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());

  int status = run_in_child([&] {
    Spool child_spool(root.string());
    StagingDirectory staging = child_spool.create_staging("crashed");
    write_staged_file(staging, "message.eml", "unfinished");
    // _exit skips the destructor, as a crash would.
    ::_exit(0);
    return 1;
  });
  REQUIRE(status == 0);
  REQUIRE(fs::is_directory(root / "tmp" / "crashed"));

  CHECK(spool.remove_abandoned_staging() == 1);
  CHECK(entry_count(root / "tmp") == 0);
}

TEST_CASE("spool free bytes positive") {
  ScratchDirectory scratch;
  Spool spool((scratch.path() / "spool").string());
  CHECK(spool.free_bytes() > 0);
}
