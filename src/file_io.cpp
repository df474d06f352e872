#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "spool_limits.h"
#include "request_error.h"

namespace mgspool {

void throw_system_error(const std::string& what, int error_number) {
  throw RequestError(outcome_for_errno(error_number), what + ": " + std::strerror(error_number));
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

int UniqueFd::release() {
  int fd = m_fd;
  m_fd = -1;
  return fd;
}

void UniqueFd::close_checked(const std::string& what) {
  int fd = release();
  // Linux releases the descriptor even when close fails, so it is never closed twice.
  if (fd >= 0 && ::close(fd) != 0) {
    throw_system_error("close " + what, errno);
  }
}

void write_all(int fd, std::string_view bytes, const std::string& what) {
  while (!bytes.empty()) {
    ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_system_error("write " + what, errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
}

std::size_t read_some(int fd, char* buffer, std::size_t size, const std::string& what) {
  for (;;) {
    ssize_t count = ::read(fd, buffer, size);
    if (count >= 0) {
      return static_cast<std::size_t>(count);
    }
    if (errno != EINTR) {
      throw_system_error("read " + what, errno);
    }
  }
}

void fsync_or_throw(int fd, const std::string& what) {
  if (::fsync(fd) != 0) {
    throw_system_error("fsync " + what, errno);
  }
}

UniqueFd open_directory_at(int dir_fd, const std::string& name) {
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    throw_system_error("open directory " + name, errno);
  }
  return UniqueFd(fd);
}

UniqueFd create_file_at(int dir_fd, const std::string& name, mode_t mode) {
  // Read and write, so the writer can checksum what it wrote without a second open.
  int fd = ::openat(dir_fd, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    throw_system_error("create " + name, errno);
  }
  return UniqueFd(fd);
}

void write_new_file_at(int dir_fd, const std::string& name, std::string_view bytes, mode_t mode) {
  UniqueFd fd = create_file_at(dir_fd, name, mode);
  write_all(fd.get(), bytes, name);
  fsync_or_throw(fd.get(), name);
  fd.close_checked(name);
}

void read_chunks(int fd, const std::string& what, const std::function<void(std::string_view)>& consume) {
  std::vector<char> buffer(k_io_buffer_bytes);
  off_t offset = 0;
  for (;;) {
    ssize_t count = ::pread(fd, buffer.data(), buffer.size(), offset);
    if (count < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_system_error("read " + what, errno);
    }
    if (count == 0) {
      return;
    }
    consume(std::string_view(buffer.data(), static_cast<std::size_t>(count)));
    offset += count;
  }
}

bool is_still_linked_at(int dir_fd, const std::string& name, int fd) {
  struct stat opened {};
  struct stat linked {};
  if (::fstat(fd, &opened) != 0 || opened.st_nlink == 0) {
    return false;
  }
  if (::fstatat(dir_fd, name.c_str(), &linked, AT_SYMLINK_NOFOLLOW) != 0) {
    return false;
  }
  return opened.st_dev == linked.st_dev && opened.st_ino == linked.st_ino;
}

namespace {

struct DigestContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using DigestContext = std::unique_ptr<EVP_MD_CTX, DigestContextDeleter>;

DigestContext new_sha256_context() {
  DigestContext context(EVP_MD_CTX_new());
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) {
    throw RequestError(Outcome::local_failure, "OpenSSL failed to start a SHA-256 digest");
  }
  return context;
}

std::string finish_hex(EVP_MD_CTX* context) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context, digest, &length) != 1) {
    throw RequestError(Outcome::local_failure, "OpenSSL failed to finish a SHA-256 digest");
  }
  static constexpr char k_hex_digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(k_hex_digits[digest[i] >> 4]);
    hex.push_back(k_hex_digits[digest[i] & 0x0f]);
  }
  return hex;
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  DigestContext context = new_sha256_context();
  EVP_DigestUpdate(context.get(), bytes.data(), bytes.size());
  return finish_hex(context.get());
}

std::string sha256_hex_of_fd(int fd) {
  DigestContext context = new_sha256_context();
  read_chunks(fd, "file for checksum", [&](std::string_view chunk) {
    EVP_DigestUpdate(context.get(), chunk.data(), chunk.size());
  });
  return finish_hex(context.get());
}

}  // namespace mgspool
