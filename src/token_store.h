// Token memory: which Mailgun tokens were already stored, kept in SPOOL/private/.
// A token is recorded only after its message is published, so a failed attempt never
// blocks Mailgun's retry.
//
//   private/tokens/<sha256 hex of token>   the message ID and a newline
//   private/locks/<sha256 hex of token>    an empty file whose flock serialises one token
//
// File names are digests, so a token of any bytes ('/', "..", NUL, any length) is safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "file_io.h"

namespace mgspool {

// Holds the exclusive lock of one token; released by the destructor. The lock belongs to
// the open file description, so it excludes other processes and other TokenLocks alike.
class TokenLock {
 public:
  TokenLock() = default;
  explicit TokenLock(UniqueFd fd) : m_fd(std::move(fd)) {}
  TokenLock(TokenLock&&) noexcept = default;
  TokenLock& operator=(TokenLock&&) noexcept = default;

 private:
  UniqueFd m_fd;
};

// Returns the retention for a freshness window of max_age_seconds: at least
// k_min_token_retention_seconds, and long enough that a token is never forgotten while its
// signature could still pass, even with a timestamp k_max_future_skew_seconds ahead.
std::int64_t token_retention_seconds(std::int64_t max_age_seconds);

class TokenStore {
 public:
  // private_fd: the spool's private/ directory; tokens/ and locks/ (0700) are created inside
  // it when missing. retention_seconds: how long a record is kept after it was written;
  // callers pass token_retention_seconds(window). Throws RequestError.
  TokenStore(int private_fd, std::int64_t retention_seconds);

  // Blocks until the returned lock is held for token. Concurrent requests with the same
  // token serialise here: the later one waits, then finds the token if the first published.
  // Safe against a concurrent prune(), which may unlink an idle lock file.
  TokenLock lock(std::string_view token);

  // Returns the message ID stored under token, or nullopt when the token is unknown.
  // Throws RequestError when the record cannot be read or does not hold a valid message ID.
  std::optional<std::string> find(std::string_view token) const;

  // Records token -> message_id durably: a temporary file is written, fsynced and closed
  // with the result checked, renamed over tokens/<hash>, then tokens/ is fsynced. Callers
  // hold lock(token). Throws RequestError, also for a message ID that is_valid_message_id
  // rejects.
  void record(std::string_view token, const std::string& message_id);

  // Removes records and temporary files whose mtime is older than now_seconds minus the
  // retention, and such lock files unless a process holds their lock. Returns how many
  // records were removed.
  std::size_t prune(std::int64_t now_seconds);

 private:
  UniqueFd m_tokens;
  UniqueFd m_locks;
  std::int64_t m_retention_seconds;
};

}  // namespace mgspool
