// Responder configuration from the process environment and command-line flags.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mgspool {

struct Config {
  std::string spool_dir;
  std::optional<std::string> signing_key;  // never logged, echoed or written to the spool
  std::uint64_t max_request_bytes = 0;
  std::int64_t max_age_seconds = 0;        // 0 turns the freshness check off
  std::uint64_t min_free_bytes = 0;
  bool insecure = false;                   // accept requests without a signature check
  std::string log_target = "stderr";       // "stderr", "syslog" or an absolute file path
  std::string key_error;                   // why the key file could not be read, or ""
  std::string key_file;                    // path of the key file, or "" when the key came inline
  std::string key_file_stamp;              // inode, size and mtime at the last read of key_file
};

// The result of reading the configuration: either a config or an error message that
// names the variable or flag and how to fix it.
struct ConfigResult {
  std::optional<Config> config;
  std::string error;
  bool show_help = false;
  bool show_version = false;
};

// Reads MAILGUN_* variables from environment (name=value strings), then applies flags
// from arguments (argv without the program name), which win. Never reads request data.
ConfigResult load_config(const std::vector<std::string>& environment, const std::vector<std::string>& arguments);

// Reads the key file again when it changed since the last read or could not be read then,
// so a corrected permission or a rotated key takes effect without a restart. A key that
// was read once is kept when the file later goes missing or becomes unreadable.
void refresh_signing_key(Config& config);

// Usage text for --help and for a start by hand on a terminal.
std::string usage_text();

inline constexpr const char* k_version = "0.1.0";

}  // namespace mgspool
