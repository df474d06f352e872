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
#include <string_view>
#include <vector>

#include "file_io.h"

namespace mgspool {

// Returns a new message ID such as 20261204T202456.123456Z-mx1-4242-0000000007-9f86d081.
// Its parts, joined by '-', are the UTC time of now in a fixed-width form, the short host
// name (at most 32 characters of [A-Za-z0-9.-], "host" when empty), the process id, a
// per-process counter of 10 digits and 8 hex digits from getrandom. Byte order of IDs is
// arrival order, and IDs differ across calls, processes and hosts. Throws RequestError when
// getrandom fails.
std::string make_message_id(std::chrono::system_clock::time_point now);

// Returns whether id can name a message directory: 1 to 255 bytes of [A-Za-z0-9._-],
// neither "." nor "..".
bool is_valid_message_id(std::string_view id);

// Returns the names in the directory behind dir_fd, without "." and "..". Reads through
// its own descriptor, so the offset of dir_fd is not changed. Throws RequestError.
std::vector<std::string> list_directory_at(int dir_fd, const std::string& what);

// File modes: the group shares new/ and cur/ with consumers; tmp/ and private/ stay private.
// Linux lets a process move a directory to another parent only with write permission on
// that directory (its ".." entry changes), so consumers in the spool's group need the
// group write bit to move new/ID to cur/. The setgid bit gives files and subdirectories
// the spool's group.
inline constexpr mode_t k_message_file_mode = 0640;
inline constexpr mode_t k_message_directory_mode = 02770;

class StagingDirectory;

class Spool {
 public:
  // Opens the spool at path, creating it, tmp/, new/, cur/ and private/ when missing.
  // Folders it creates get root 02750, tmp/ 02700, new/ and cur/ 02770, private/ 0700,
  // whatever the umask; existing folders keep their modes. Throws RequestError
  // (local_failure) with the path and errno text when that fails.
  explicit Spool(const std::string& path);

  const std::string& path() const { return m_path; }
  int fd() const { return m_root.get(); }
  int private_fd() const { return m_private.get(); }

  // Removes staging directories in tmp/ whose owner is gone (no flock held on them), and
  // any entry in tmp/ that is not a directory. Returns how many entries were removed.
  // A staging directory of this process is kept too, because flock locks belong to open
  // file descriptions, not to processes.
  std::size_t remove_abandoned_staging();

  // Returns the free bytes available to this user on the spool's file system.
  std::uint64_t free_bytes() const;

  // Creates tmp/ID and takes its lock. Throws RequestError when id is not a valid message
  // ID, when tmp/ID exists, or when a system call fails. The returned object keeps the
  // descriptors of tmp/ and new/, so the Spool must outlive it.
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
  // anything before the rename fails (the destructor then removes the directory), and also
  // when new/ID exists: the rename uses RENAME_NOREPLACE, so a published message is never
  // replaced. After the rename the message stays, and a failed fsync of new/ is reported in
  // the result. Callers fsync and close every file they wrote before calling commit().
  // NOTE: file systems without RENAME_NOREPLACE (NFS among them) fail here with EINVAL.
  CommitResult commit();

  bool committed() const { return m_committed; }

 private:
  friend class Spool;
  StagingDirectory(const Spool& spool, std::string id, UniqueFd dir);
  void remove_all() noexcept;

  // Descriptors owned by the Spool; copied so that moving the Spool does not matter.
  int m_tmp_fd;
  int m_new_fd;
  std::string m_id;
  UniqueFd m_dir;  // also carries the flock that marks the owner as alive
  bool m_committed = false;
};

}  // namespace mgspool
