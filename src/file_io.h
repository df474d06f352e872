// File descriptors as RAII values, and the durable-write primitives the spool is built on.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace mgspool {

// Owns one file descriptor. The destructor closes it and ignores the result, so code that
// must see a failed close (every file the spool publishes) calls close_checked() first.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : m_fd(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return m_fd; }
  bool valid() const { return m_fd >= 0; }
  int release();

  // Closes the descriptor and throws RequestError (local_failure) when close fails.
  // Never retried: after a failed close the state of the data is unknown.
  void close_checked(const std::string& what);

 private:
  int m_fd = -1;
};

// Writes all of bytes, looping over short writes and EINTR; throws RequestError on error.
void write_all(int fd, std::string_view bytes, const std::string& what);

// Reads up to size bytes, retrying on EINTR; returns 0 at end of file; throws on error.
std::size_t read_some(int fd, char* buffer, std::size_t size, const std::string& what);

// fsync that throws on failure. Never retried: after a failed fsync Linux may have dropped
// the dirty pages, so a second fsync could succeed without the data being on disk.
void fsync_or_throw(int fd, const std::string& what);

// Opens a directory relative to dir_fd (O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC); throws on error.
UniqueFd open_directory_at(int dir_fd, const std::string& name);

// Creates a new regular file relative to dir_fd with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC,
// so it never follows a link or reuses an existing file; throws on error.
UniqueFd create_file_at(int dir_fd, const std::string& name, mode_t mode);

// Writes bytes into a new file, fsyncs it and closes it with the result checked.
void write_new_file_at(int dir_fd, const std::string& name, std::string_view bytes, mode_t mode);

// Reads the file behind fd from offset 0 to its end, in chunks of k_io_buffer_bytes, and
// passes each chunk to consume. Throws RequestError, naming what, when a read fails.
void read_chunks(int fd, const std::string& what, const std::function<void(std::string_view)>& consume);

// Returns true when name in dir_fd is still the entry open as fd: the same device and
// inode, and not unlinked. Checked after taking an flock, because another process may have
// removed the entry while this one waited for the lock.
bool is_still_linked_at(int dir_fd, const std::string& name, int fd);

// Returns the lowercase hex SHA-256 of the whole file behind fd, read from offset 0.
std::string sha256_hex_of_fd(int fd);

// Returns the lowercase hex SHA-256 of bytes.
std::string sha256_hex(std::string_view bytes);

}  // namespace mgspool
