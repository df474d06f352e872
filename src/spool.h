// The spool directory: staging in tmp/, publication into new/ with one rename.
//
//   SPOOL/tmp/ID/      a message being written; its owner holds an flock on the directory
//   SPOOL/new/ID/      complete messages; each appeared with one rename
//   SPOOL/cur/         where consumers move what they processed (the Maildir convention)
//   SPOOL/private/     the responder's own state (token memory, locks); not for consumers
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "file_io.h"

namespace mgspool {

// Returns a new message ID: the UTC time in a fixed-width form (20261204T202456.123456Z),
// then the host name and process id and a per-process counter and random part, joined by
// '-' and made of [A-Za-z0-9._-] only, so that IDs sort by arrival and never collide
// across processes or hosts.
std::string make_message_id(std::chrono::system_clock::time_point now);

// File modes: the group shares new/ and cur/ with consumers; tmp/ and private/ stay private.
inline constexpr mode_t k_message_file_mode = 0640;
inline constexpr mode_t k_message_directory_mode = 0750;

class StagingDirectory;

class Spool {
 public:
  // Opens the spool at path, creating it, tmp/, new/, cur/ and private/ when missing.
  // Throws RequestError(local_failure) with the path and errno text when that fails.
  explicit Spool(const std::string& path);

  const std::string& path() const { return m_path; }
  int fd() const { return m_root.get(); }
  int private_fd() const { return m_private.get(); }

  // Removes staging directories in tmp/ whose owner is gone (no flock held on them).
  // Returns how many were removed.
  std::size_t remove_abandoned_staging();

  // Returns the free bytes available to this user on the spool's file system.
  std::uint64_t free_bytes() const;

  // Creates tmp/ID and takes its lock.
  StagingDirectory create_staging(const std::string& id);

 private:
  friend class StagingDirectory;
  std::string m_path;
  UniqueFd m_root;
  UniqueFd m_tmp;
  UniqueFd m_new;
  UniqueFd m_cur;
  UniqueFd m_private;
};

enum class CommitResult {
  published,             // renamed into new/ and new/ synced
  published_not_synced,  // renamed into new/, but the fsync of new/ failed
};

// A message directory under construction in tmp/. The destructor removes it with all its
// files unless commit() renamed it into new/: the commit-or-roll-back shape.
class StagingDirectory {
 public:
  StagingDirectory(StagingDirectory&&) noexcept;
  StagingDirectory& operator=(StagingDirectory&&) = delete;
  StagingDirectory(const StagingDirectory&) = delete;
  StagingDirectory& operator=(const StagingDirectory&) = delete;
  ~StagingDirectory();

  const std::string& id() const { return m_id; }
  int fd() const { return m_dir.get(); }

  // Creates a new file in the directory (O_EXCL, O_NOFOLLOW, O_CLOEXEC, k_message_file_mode).
  UniqueFd create_file(const std::string& name) const;

  // Removes a file from the directory (used for the request body before publishing).
  void remove_file(const std::string& name) const;

  // fsyncs the directory, renames it to new/ID, fsyncs new/. Throws RequestError when
  // anything before the rename fails (the destructor then removes the directory);
  // after the rename the message stays, and a failed fsync of new/ is reported in the result.
  CommitResult commit();

  bool committed() const { return m_committed; }

 private:
  friend class Spool;
  StagingDirectory(const Spool& spool, std::string id, UniqueFd dir);
  void remove_all() noexcept;

  const Spool* m_spool;
  std::string m_id;
  UniqueFd m_dir;  // also carries the flock that marks the owner as alive
  bool m_committed = false;
};

}  // namespace mgspool
