#include "token_store.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "request_error.h"
#include "spool.h"
#include "spool_limits.h"
#include "test_support.h"

namespace fs = std::filesystem;
using mgspool::Spool;
using mgspool::TokenStore;
using mgspool::testing::ScratchDirectory;

namespace {

constexpr std::int64_t k_retention_seconds = 7 * 24 * 60 * 60;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

mode_t mode_of(const fs::path& path) {
  struct stat info {};
  REQUIRE_MESSAGE(::lstat(path.c_str(), &info) == 0, "cannot stat " << path);
  return info.st_mode & 07777;
}

void set_mtime(const fs::path& path, std::int64_t seconds) {
  struct timespec times[2] = {{static_cast<time_t>(seconds), 0}, {static_cast<time_t>(seconds), 0}};
  REQUIRE_MESSAGE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0, "cannot set mtime of " << path);
}

// One pipe; both ends close with the object.
struct Pipe {
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    read_end = mgspool::UniqueFd(fds[0]);
    write_end = mgspool::UniqueFd(fds[1]);
  }
  mgspool::UniqueFd read_end;
  mgspool::UniqueFd write_end;
};

}  // namespace

TEST_CASE("token store creates private folders") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  TokenStore store(spool.private_fd(), k_retention_seconds);

  CHECK(mode_of(root / "private" / "tokens") == 0700);
  CHECK(mode_of(root / "private" / "locks") == 0700);
}

TEST_CASE("token record and find") {
  ScratchDirectory scratch;
  Spool spool((scratch.path() / "spool").string());
  TokenStore store(spool.private_fd(), k_retention_seconds);

  CHECK_FALSE(store.find("unknown-token").has_value());

  store.record("token-1", "20261204T202456.123456Z-host-1-0000000000-0123abcd");
  auto found = store.find("token-1");
  REQUIRE(found.has_value());
  CHECK(*found == "20261204T202456.123456Z-host-1-0000000000-0123abcd");
  CHECK_FALSE(store.find("token-2").has_value());

  // A second store on the same folder reads what the first wrote.
  TokenStore reopened(spool.private_fd(), k_retention_seconds);
  CHECK(reopened.find("token-1") == found);
}

TEST_CASE("token record file layout") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  TokenStore store(spool.private_fd(), k_retention_seconds);

  store.record("token-1", "message-1");

  fs::path record = root / "private" / "tokens" / mgspool::sha256_hex("token-1");
  CHECK(mgspool::testing::read_file(record) == "message-1\n");
  CHECK(mode_of(record) == 0600);
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(root / "private" / "tokens")) {
    ++entries;
  }
  CHECK(entries == 1);
}

TEST_CASE("token record rejects invalid message ID") {
  ScratchDirectory scratch;
  Spool spool((scratch.path() / "spool").string());
  TokenStore store(spool.private_fd(), k_retention_seconds);

  CHECK_THROWS_AS(store.record("token", "two\nlines"), mgspool::RequestError);
  CHECK_THROWS_AS(store.record("token", ""), mgspool::RequestError);
  CHECK_FALSE(store.find("token").has_value());
}

TEST_CASE("token find rejects corrupt record") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  TokenStore store(spool.private_fd(), k_retention_seconds);
  store.record("token", "message-1");

  fs::path record = root / "private" / "tokens" / mgspool::sha256_hex("token");
  fs::resize_file(record, 4);

  CHECK_THROWS_AS(store.find("token"), mgspool::RequestError);
}

TEST_CASE("tokens with arbitrary bytes") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  TokenStore store(spool.private_fd(), k_retention_seconds);

  const std::vector<std::string> tokens = {
      std::string("with\0nul", 8), std::string("with\0other", 10), "../../escape", "/", "..", ".", "a/b/c",
      std::string(2048, 'x'),      std::string("\xff\xfe\n\r", 4),
  };
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    store.record(tokens[i], "message-" + std::to_string(i));
    (void)store.lock(tokens[i]);
  }

  for (std::size_t i = 0; i < tokens.size(); ++i) {
    CAPTURE(i);
    auto found = store.find(tokens[i]);
    REQUIRE(found.has_value());
    CHECK(*found == "message-" + std::to_string(i));
  }
  CHECK_FALSE(store.find("with").has_value());

  for (const char* folder : {"tokens", "locks"}) {
    for (const auto& entry : fs::directory_iterator(root / "private" / folder)) {
      CAPTURE(entry.path());
      CHECK(entry.is_regular_file());
      CHECK(entry.path().filename().string().size() == 64);
    }
  }
  CHECK(std::distance(fs::directory_iterator(root), fs::directory_iterator()) == 4);
}

TEST_CASE("token prune removes old records") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  TokenStore store(spool.private_fd(), k_retention_seconds);
  std::int64_t now = now_seconds();

  store.record("old-token", "message-old");
  store.record("fresh-token", "message-fresh");
  (void)store.lock("old-token");
  set_mtime(root / "private" / "tokens" / mgspool::sha256_hex("old-token"), now - k_retention_seconds - 10);
  set_mtime(root / "private" / "locks" / mgspool::sha256_hex("old-token"), now - k_retention_seconds - 10);
  set_mtime(root / "private" / "tokens" / mgspool::sha256_hex("fresh-token"), now - k_retention_seconds + 60);

  CHECK(store.prune(now) == 1);

  CHECK_FALSE(store.find("old-token").has_value());
  CHECK(store.find("fresh-token") == "message-fresh");
  CHECK_FALSE(fs::exists(root / "private" / "locks" / mgspool::sha256_hex("old-token")));
  CHECK(store.prune(now) == 0);
}

TEST_CASE("token prune keeps held lock") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  TokenStore store(spool.private_fd(), k_retention_seconds);
  std::int64_t now = now_seconds();
  fs::path lock_file = root / "private" / "locks" / mgspool::sha256_hex("busy-token");

  mgspool::TokenLock held = store.lock("busy-token");
  set_mtime(lock_file, now - k_retention_seconds - 10);

  store.prune(now);

  CHECK(fs::exists(lock_file));
}

TEST_CASE("token prune removes stale temporary") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  TokenStore store(spool.private_fd(), k_retention_seconds);
  std::int64_t now = now_seconds();
  fs::path temporary = root / "private" / "tokens" / "tmp-left-by-a-crash";
  {
    std::FILE* file = std::fopen(temporary.c_str(), "w");
    REQUIRE(file != nullptr);
    std::fclose(file);
  }
  set_mtime(temporary, now - k_retention_seconds - 10);

  CHECK(store.prune(now) == 0);
  CHECK_FALSE(fs::exists(temporary));
}

TEST_CASE("token lock after prune relinks") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  TokenStore store(spool.private_fd(), k_retention_seconds);
  std::int64_t now = now_seconds();
  fs::path lock_file = root / "private" / "locks" / mgspool::sha256_hex("token");

  (void)store.lock("token");
  set_mtime(lock_file, now - k_retention_seconds - 10);
  store.prune(now);
  REQUIRE_FALSE(fs::exists(lock_file));

  mgspool::TokenLock again = store.lock("token");
  CHECK(fs::exists(lock_file));
}

TEST_CASE("token lock serialises processes") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  TokenStore store(spool.private_fd(), k_retention_seconds);
  Pipe locked;

  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int status = 1;
    try {
      TokenStore child_store(spool.private_fd(), k_retention_seconds);
      mgspool::TokenLock lock = child_store.lock("shared-token");
      if (::write(locked.write_end.get(), "L", 1) == 1) {
        // Long enough that a lock which did not wait would read before the record exists.
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        child_store.record("shared-token", "message-from-child");
        status = 0;
      }
    } catch (...) {
    }
    ::_exit(status);
  }

  locked.write_end = mgspool::UniqueFd();
  char signal = 0;
  REQUIRE(::read(locked.read_end.get(), &signal, 1) == 1);

  auto started = std::chrono::steady_clock::now();
  {
    mgspool::TokenLock lock = store.lock("shared-token");
    auto waited = std::chrono::steady_clock::now() - started;
    CHECK(store.find("shared-token") == "message-from-child");
    CHECK(waited >= std::chrono::milliseconds(100));
  }

  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("token lock excludes second holder") {
  ScratchDirectory scratch;
  fs::path root = scratch.path() / "spool";
  Spool spool(root.string());
  TokenStore store(spool.private_fd(), k_retention_seconds);
  fs::path lock_file = root / "private" / "locks" / mgspool::sha256_hex("token");

  mgspool::TokenLock held = store.lock("token");
  int fd = ::open(lock_file.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  mgspool::UniqueFd probe(fd);
  CHECK(::flock(probe.get(), LOCK_EX | LOCK_NB) != 0);

  held = mgspool::TokenLock();
  CHECK(::flock(probe.get(), LOCK_EX | LOCK_NB) == 0);
}

TEST_CASE("token retention covers window") {
  CHECK(mgspool::token_retention_seconds(60) == mgspool::k_min_token_retention_seconds);
  std::int64_t long_window = 30 * 24 * 60 * 60;
  CHECK(mgspool::token_retention_seconds(long_window) == long_window + mgspool::k_max_future_skew_seconds);
}
