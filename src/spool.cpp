#include "spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <memory>

#include "request_error.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

constexpr mode_t k_spool_root_mode = 02750;
constexpr mode_t k_tmp_folder_mode = 02700;
constexpr mode_t k_shared_folder_mode = 02770;
constexpr mode_t k_private_folder_mode = 0700;

constexpr std::size_t k_max_host_name_chars = 32;
constexpr std::size_t k_max_message_id_bytes = 255;

struct DirDeleter {
  void operator()(DIR* directory) const { ::closedir(directory); }
};
using DirectoryStream = std::unique_ptr<DIR, DirDeleter>;

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::string short_host_name() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0) {
    buffer[0] = '\0';
  }

  std::string host;
  for (const char* c = buffer; *c != '\0' && *c != '.' && host.size() < k_max_host_name_chars; ++c) {
    if (is_id_char(*c) && *c != '_') {
      host.push_back(*c);
    }
  }
  return host.empty() ? "host" : host;
}

std::uint32_t random_32_bits() {
  std::uint32_t value = 0;
  for (;;) {
    ssize_t count = ::getrandom(&value, sizeof value, 0);
    if (count == static_cast<ssize_t>(sizeof value)) {
      return value;
    }
    if (count < 0 && errno != EINTR) {
      throw_system_error("getrandom for a message ID", errno);
    }
  }
}

// Formats now as 20261204T202456.123456Z; the fixed width makes byte order time order.
std::string format_utc_microseconds(std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  auto since_epoch = floor<microseconds>(now.time_since_epoch());
  auto whole_seconds = floor<seconds>(since_epoch);
  auto micros = (since_epoch - whole_seconds).count();

  std::time_t time = static_cast<std::time_t>(whole_seconds.count());
  std::tm utc{};
  if (::gmtime_r(&time, &utc) == nullptr) {
    throw RequestError(Outcome::local_failure, "the clock value cannot be converted to UTC");
  }
  char text[64];
  std::snprintf(text, sizeof text, "%04d%02d%02dT%02d%02d%02d.%06dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(micros));
  return text;
}

struct CreatedDirectory {
  UniqueFd fd;
  bool created = false;
};

// Creates name under dir_fd with mode unless it exists, and opens it. A symbolic link as
// the last component is followed only when follow_link is set. fchmod sets the mode,
// because mkdir applies the umask and ignores the setgid bit.
CreatedDirectory open_or_create_directory_at(int dir_fd, const std::string& name, mode_t mode,
                                             const std::string& shown_path, bool follow_link = false) {
  CreatedDirectory result;
  if (::mkdirat(dir_fd, name.c_str(), mode & 0777) == 0) {
    result.created = true;
  } else if (errno != EEXIST) {
    throw_system_error("create spool folder " + shown_path, errno);
  }

  int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow_link ? 0 : O_NOFOLLOW);
  int fd = ::openat(dir_fd, name.c_str(), flags);
  if (fd < 0) {
    throw_system_error("open spool folder " + shown_path, errno);
  }
  result.fd = UniqueFd(fd);

  if (result.created && ::fchmod(result.fd.get(), mode) != 0) {
    throw_system_error("set the mode of spool folder " + shown_path, errno);
  }
  return result;
}

bool remove_tree_contents(int dir_fd, int depth) noexcept;

// Removes name from dir_fd: a directory with its contents, anything else with unlink.
// Links are removed, never followed. Returns false when something stayed.
bool remove_entry_at(int dir_fd, const std::string& name, int depth) noexcept {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) {
    return true;
  }
  if (errno != EISDIR || depth >= k_max_staging_removal_depth) {
    return false;
  }

  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  UniqueFd subdirectory(fd);
  remove_tree_contents(subdirectory.get(), depth + 1);
  return ::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT;
}

// Removes everything inside the directory behind dir_fd; returns false when something stayed.
bool remove_tree_contents(int dir_fd, int depth) noexcept {
  try {
    bool all_removed = true;
    for (const std::string& name : list_directory_at(dir_fd, "staging directory")) {
      all_removed = remove_entry_at(dir_fd, name, depth) && all_removed;
    }
    return all_removed;
  } catch (...) {
    return false;
  }
}

}  // namespace

bool is_valid_message_id(std::string_view id) {
  if (id.empty() || id.size() > k_max_message_id_bytes || id == "." || id == "..") {
    return false;
  }
  for (char c : id) {
    if (!is_id_char(c)) {
      return false;
    }
  }
  return true;
}

std::string make_message_id(std::chrono::system_clock::time_point now) {
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t sequence = counter.fetch_add(1, std::memory_order_relaxed);

  // The counter has a fixed width so that IDs made in one microsecond sort in call order;
  // 10 digits are enough for any process lifetime.
  char tail[64];
  std::snprintf(tail, sizeof tail, "-%ld-%010llu-%08x", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(sequence), static_cast<unsigned>(random_32_bits()));
  return format_utc_microseconds(now) + "-" + short_host_name() + tail;
}

std::vector<std::string> list_directory_at(int dir_fd, const std::string& what) {
  // A new open file description keeps readdir's position apart from dir_fd's.
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    throw_system_error("open " + what + " for listing", errno);
  }
  DirectoryStream stream(::fdopendir(fd));
  if (!stream) {
    int error = errno;
    ::close(fd);
    throw_system_error("list " + what, error);
  }

  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(stream.get());
    if (entry == nullptr) {
      if (errno != 0) {
        throw_system_error("list " + what, errno);
      }
      return names;
    }
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
  }
}

Spool::Spool(const std::string& path) : m_path(path) {
  // The administrator may point the spool path at a symbolic link; its folders may not be.
  CreatedDirectory root = open_or_create_directory_at(AT_FDCWD, path, k_spool_root_mode, path, true);
  m_root = std::move(root.fd);

  m_tmp = open_or_create_directory_at(m_root.get(), "tmp", k_tmp_folder_mode, path + "/tmp").fd;
  m_new = open_or_create_directory_at(m_root.get(), "new", k_shared_folder_mode, path + "/new").fd;
  m_cur = open_or_create_directory_at(m_root.get(), "cur", k_shared_folder_mode, path + "/cur").fd;
  m_private =
      open_or_create_directory_at(m_root.get(), "private", k_private_folder_mode, path + "/private").fd;
}

std::size_t Spool::remove_abandoned_staging() {
  std::size_t removed = 0;
  for (const std::string& name : list_directory_at(m_tmp.get(), m_path + "/tmp")) {
    int fd = ::openat(m_tmp.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      // ENOTDIR for files, ELOOP for symbolic links: neither is a staging directory.
      if ((errno == ENOTDIR || errno == ELOOP) && ::unlinkat(m_tmp.get(), name.c_str(), 0) == 0) {
        ++removed;
      }
      continue;
    }
    UniqueFd directory(fd);

    // A lock that is free means its owner is gone: the kernel drops it when the owner exits.
    if (::flock(directory.get(), LOCK_EX | LOCK_NB) != 0) {
      continue;
    }
    if (!is_still_linked_at(m_tmp.get(), name, directory.get())) {
      continue;
    }
    remove_tree_contents(directory.get(), 0);
    if (::unlinkat(m_tmp.get(), name.c_str(), AT_REMOVEDIR) == 0) {
      ++removed;
    }
  }
  return removed;
}

std::uint64_t Spool::free_bytes() const {
  struct statvfs info {};
  if (::fstatvfs(m_root.get(), &info) != 0) {
    throw_system_error("statvfs " + m_path, errno);
  }
  return static_cast<std::uint64_t>(info.f_bavail) * static_cast<std::uint64_t>(info.f_frsize);
}

StagingDirectory Spool::create_staging(const std::string& id) {
  if (!is_valid_message_id(id)) {
    throw RequestError(Outcome::local_failure, "invalid message ID for a staging directory: " + id);
  }
  std::string shown = m_path + "/tmp/" + id;
  if (::mkdirat(m_tmp.get(), id.c_str(), k_message_directory_mode & 0777) != 0) {
    throw_system_error("create staging directory " + shown, errno);
  }

  int fd = ::openat(m_tmp.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    ::unlinkat(m_tmp.get(), id.c_str(), AT_REMOVEDIR);
    throw_system_error("open staging directory " + shown, error);
  }
  // From here on the destructor removes the directory if anything fails.
  StagingDirectory staging(*this, id, UniqueFd(fd));

  if (::fchmod(staging.fd(), k_message_directory_mode) != 0) {
    throw_system_error("set the mode of staging directory " + shown, errno);
  }
  while (::flock(staging.fd(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      throw_system_error("lock staging directory " + shown, errno);
    }
  }
  // remove_abandoned_staging in another process may have taken the directory between
  // mkdirat and flock, when it was not locked yet.
  if (!is_still_linked_at(m_tmp.get(), id, staging.fd())) {
    throw RequestError(Outcome::local_failure, "staging directory " + shown + " was removed while being created");
  }
  return staging;
}

StagingDirectory::StagingDirectory(const Spool& spool, std::string id, UniqueFd dir)
    : m_tmp_fd(spool.m_tmp.get()), m_new_fd(spool.m_new.get()), m_id(std::move(id)), m_dir(std::move(dir)) {}

StagingDirectory::StagingDirectory(StagingDirectory&& other) noexcept
    : m_tmp_fd(other.m_tmp_fd),
      m_new_fd(other.m_new_fd),
      m_id(std::move(other.m_id)),
      m_dir(std::move(other.m_dir)),
      m_committed(other.m_committed) {}

StagingDirectory::~StagingDirectory() {
  if (!m_committed) {
    remove_all();
  }
}

UniqueFd StagingDirectory::create_file(const std::string& name) const {
  return create_file_at(m_dir.get(), name, k_message_file_mode);
}

void StagingDirectory::remove_file(const std::string& name) const {
  if (::unlinkat(m_dir.get(), name.c_str(), 0) != 0) {
    throw_system_error("remove " + name + " from staging directory " + m_id, errno);
  }
}

CommitResult StagingDirectory::commit() {
  if (m_committed || !m_dir.valid()) {
    throw RequestError(Outcome::local_failure, "staging directory " + m_id + " was already committed or moved");
  }

  // The directory entries of the message's files must be on disk before the name that
  // publishes them.
  fsync_or_throw(m_dir.get(), "staging directory " + m_id);

  if (::renameat2(m_tmp_fd, m_id.c_str(), m_new_fd, m_id.c_str(), RENAME_NOREPLACE) != 0) {
    throw_system_error("publish " + m_id + " by renaming it from tmp/ to new/", errno);
  }
  m_committed = true;

  // Never retried: a second fsync after a failed one may succeed without the data on disk.
  if (::fsync(m_new_fd) != 0) {
    return CommitResult::published_not_synced;
  }
  return CommitResult::published;
}

void StagingDirectory::remove_all() noexcept {
  if (!m_dir.valid()) {
    return;
  }
  remove_tree_contents(m_dir.get(), 0);
  ::unlinkat(m_tmp_fd, m_id.c_str(), AT_REMOVEDIR);
}

}  // namespace mgspool
