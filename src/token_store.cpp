#include "token_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "request_error.h"
#include "spool.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

constexpr mode_t k_token_folder_mode = 0700;
constexpr mode_t k_token_file_mode = 0600;
constexpr std::size_t k_sha256_hex_chars = 64;

// A record contains one message ID and a newline, so anything longer is not a record.
constexpr std::size_t k_max_record_bytes = 512;

// Temporary record files start with this; a record's own name is 64 hex digits.
constexpr std::string_view k_temporary_prefix = "tmp-";

UniqueFd open_or_create_folder_at(int dir_fd, const char* name) {
  bool created = ::mkdirat(dir_fd, name, k_token_folder_mode) == 0;
  if (!created && errno != EEXIST) {
    throw_system_error(std::string("create token folder private/") + name, errno);
  }
  UniqueFd fd = open_directory_at(dir_fd, name);
  if (created && ::fchmod(fd.get(), k_token_folder_mode) != 0) {
    throw_system_error(std::string("set the mode of token folder private/") + name, errno);
  }
  return fd;
}

bool is_record_name(std::string_view name) {
  return name.size() == k_sha256_hex_chars &&
         std::all_of(name.begin(), name.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_older_than(const struct stat& info, std::int64_t cutoff_seconds) {
  return static_cast<std::int64_t>(info.st_mtim.tv_sec) < cutoff_seconds;
}

// Removes the lock file name if it is old and no process holds its lock. Unlinking while
// holding the lock is safe, because TokenStore::lock checks, after its flock, that its file is still linked.
void remove_idle_lock_file(int locks_fd, const std::string& name, std::int64_t cutoff_seconds) {
  int fd = ::openat(locks_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return;
  }
  UniqueFd lock_file(fd);
  struct stat info {};
  if (::fstat(lock_file.get(), &info) != 0 || !is_older_than(info, cutoff_seconds)) {
    return;
  }
  if (::flock(lock_file.get(), LOCK_EX | LOCK_NB) != 0) {
    return;
  }
  if (is_still_linked_at(locks_fd, name, lock_file.get())) {
    ::unlinkat(locks_fd, name.c_str(), 0);
  }
}

}  // namespace

std::int64_t token_retention_seconds(std::int64_t max_age_seconds) {
  return std::max(k_min_token_retention_seconds, max_age_seconds + k_max_future_skew_seconds);
}

TokenStore::TokenStore(int private_fd, std::int64_t retention_seconds)
    : m_tokens(open_or_create_folder_at(private_fd, "tokens")),
      m_locks(open_or_create_folder_at(private_fd, "locks")),
      m_retention_seconds(retention_seconds) {}

TokenLock TokenStore::lock(std::string_view token) {
  std::string name = sha256_hex(token);
  for (;;) {
    int fd = ::openat(m_locks.get(), name.c_str(), O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, k_token_file_mode);
    if (fd < 0) {
      throw_system_error("open token lock private/locks/" + name, errno);
    }
    UniqueFd lock_file(fd);

    while (::flock(lock_file.get(), LOCK_EX) != 0) {
      if (errno != EINTR) {
        throw_system_error("lock token lock private/locks/" + name, errno);
      }
    }
    // prune() may have unlinked this file while this process waited. A lock on an unlinked
    // file excludes no other process, so start again with the file now at that name.
    if (is_still_linked_at(m_locks.get(), name, lock_file.get())) {
      return TokenLock(std::move(lock_file));
    }
  }
}

std::optional<std::string> TokenStore::find(std::string_view token) const {
  std::string name = sha256_hex(token);
  int fd = ::openat(m_tokens.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    throw_system_error("open token record private/tokens/" + name, errno);
  }
  UniqueFd record_file(fd);

  std::string contents;
  char buffer[k_max_record_bytes + 1];
  for (;;) {
    std::size_t count = read_some(record_file.get(), buffer, sizeof buffer, "token record private/tokens/" + name);
    if (count == 0) {
      break;
    }
    contents.append(buffer, count);
    if (contents.size() > k_max_record_bytes) {
      break;
    }
  }

  // Records are renamed into place complete, so a bad one means outside interference.
  if (contents.size() > k_max_record_bytes || contents.empty() || contents.back() != '\n' ||
      !is_valid_message_id(std::string_view(contents).substr(0, contents.size() - 1))) {
    throw RequestError(Outcome::local_failure,
                       "token record private/tokens/" + name +
                           " does not contain one message ID and a newline; remove it to accept the token again");
  }
  contents.pop_back();
  return contents;
}

void TokenStore::record(std::string_view token, const std::string& message_id) {
  if (!is_valid_message_id(message_id)) {
    throw RequestError(Outcome::local_failure, "invalid message ID for a token record: " + message_id);
  }
  std::string name = sha256_hex(token);
  std::string temporary_name = std::string(k_temporary_prefix) + make_message_id(std::chrono::system_clock::now());

  try {
    write_new_file_at(m_tokens.get(), temporary_name, message_id + "\n", k_token_file_mode);
    if (::renameat(m_tokens.get(), temporary_name.c_str(), m_tokens.get(), name.c_str()) != 0) {
      throw_system_error("rename token record to private/tokens/" + name, errno);
    }
  } catch (...) {
    ::unlinkat(m_tokens.get(), temporary_name.c_str(), 0);
    throw;
  }
  fsync_or_throw(m_tokens.get(), "token folder private/tokens");
}

std::size_t TokenStore::prune(std::int64_t now_seconds) {
  std::int64_t cutoff_seconds = now_seconds - m_retention_seconds;

  std::size_t records_removed = 0;
  for (const std::string& name : list_directory_at(m_tokens.get(), "token folder private/tokens")) {
    bool is_record = is_record_name(name);
    if (!is_record && name.rfind(k_temporary_prefix, 0) != 0) {
      continue;
    }
    struct stat info {};
    if (::fstatat(m_tokens.get(), name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0 || !is_older_than(info, cutoff_seconds)) {
      continue;
    }
    if (::unlinkat(m_tokens.get(), name.c_str(), 0) == 0 && is_record) {
      ++records_removed;
    }
  }

  for (const std::string& name : list_directory_at(m_locks.get(), "token folder private/locks")) {
    if (is_record_name(name)) {
      remove_idle_lock_file(m_locks.get(), name, cutoff_seconds);
    }
  }
  return records_removed;
}

}  // namespace mgspool
