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
};

// The result of reading the configuration: either a config or an error message that
// names the variable or flag and says how to fix it.
struct ConfigResult {
  std::optional<Config> config;
  std::string error;
  bool show_help = false;
  bool show_version = false;
};

// Reads MAILGUN_* variables from environment (name=value strings), then applies flags
// from arguments (argv without the program name), which win. Never reads request data.
ConfigResult load_config(const std::vector<std::string>& environment, const std::vector<std::string>& arguments);

// Usage text for --help and for a start by hand on a terminal.
std::string usage_text();

inline constexpr const char* k_version = "0.1.0";

}  // namespace mgspool
