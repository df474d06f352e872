// Token memory: which Mailgun tokens were already stored, kept in SPOOL/private/.
// A token is recorded only after its message is published, so a failed attempt never
// blocks Mailgun's retry.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "file_io.h"

namespace mgspool {

// Holds the exclusive lock of one token; released by the destructor.
class TokenLock {
 public:
  TokenLock() = default;
  explicit TokenLock(UniqueFd fd) : m_fd(std::move(fd)) {}
  TokenLock(TokenLock&&) noexcept = default;
  TokenLock& operator=(TokenLock&&) noexcept = default;

 private:
  UniqueFd m_fd;
};

class TokenStore {
 public:
  // private_fd: the spool's private/ directory; tokens/ and locks/ are created inside it.
  // retention_seconds: how long a token is kept; the caller passes at least 7 days and
  // at least the freshness window.
  TokenStore(int private_fd, std::int64_t retention_seconds);

  // Blocks until this process holds the lock for token. Concurrent requests with the same
  // token serialise here: the later one waits, then sees the token if the first published.
  TokenLock lock(std::string_view token);

  // Returns the message ID stored under token, or nullopt when the token is unknown.
  std::optional<std::string> find(std::string_view token) const;

  // Records token -> message_id durably (file written, fsynced, directory fsynced).
  void record(std::string_view token, const std::string& message_id);

  // Removes records and lock files older than the retention; returns how many records went.
  std::size_t prune(std::int64_t now_seconds);

 private:
  UniqueFd m_tokens;
  UniqueFd m_locks;
  std::int64_t m_retention_seconds;
};

}  // namespace mgspool
