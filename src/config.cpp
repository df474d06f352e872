#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>

#include "file_io.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

// Parses a plain non-negative decimal number; no sign, spaces or suffix.
template <typename Number>
bool parse_decimal(const std::string& text, Number& value) {
  if (text.empty() || text.size() > 19) {
    return false;
  }
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && value >= 0;
}

// Reads the key file; one trailing newline (or CRLF) is dropped because editors add one.
// Only a regular file of at most k_max_key_file_bytes is read, and the open does not wait,
// so a FIFO or a device put in the key's place cannot block or flood the responder.
std::optional<std::string> read_key_file(const std::string& path, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot read the signing key file " + path + " (MAILGUN_SIGNING_KEY_FILE): " + std::strerror(errno) +
            "; check that it exists and that the responder's user can read it";
    return std::nullopt;
  }
  UniqueFd file(fd);
  struct stat status {};
  if (::fstat(file.get(), &status) != 0 || !S_ISREG(status.st_mode) ||
      static_cast<std::uint64_t>(status.st_size) > k_max_key_file_bytes) {
    error = "the signing key file " + path + " is not a regular file of at most " +
            std::to_string(k_max_key_file_bytes) + " bytes";
    return std::nullopt;
  }
  std::string key(k_max_key_file_bytes + 1, '\0');
  ssize_t count = ::read(file.get(), key.data(), key.size());
  if (count < 0 || static_cast<std::size_t>(count) > k_max_key_file_bytes) {
    error = "cannot read the signing key file " + path;
    return std::nullopt;
  }
  key.resize(static_cast<std::size_t>(count));
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) {
    key.pop_back();
  }
  if (key.empty()) {
    error = "the signing key file " + path + " is empty";
    return std::nullopt;
  }
  return key;
}

// Returns a text that changes whenever the file is replaced or modified, or "" when it
// cannot be examined.
std::string file_stamp(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    return "";
  }
  return std::to_string(status.st_dev) + ":" + std::to_string(status.st_ino) + ":" + std::to_string(status.st_size) +
         ":" + std::to_string(status.st_mtim.tv_sec) + "." + std::to_string(status.st_mtim.tv_nsec);
}

struct Setting {
  const char* variable;
  const char* flag;
  bool takes_value;
};

const Setting k_settings[] = {
    {"MAILGUN_SPOOL_DIR", "--spool", true},
    {"MAILGUN_SIGNING_KEY_FILE", "--key-file", true},
    {"MAILGUN_SIGNING_KEY", nullptr, true},
    {"MAILGUN_MAX_REQUEST_BYTES", "--max-request-bytes", true},
    {"MAILGUN_MAX_AGE_SECONDS", "--max-age-seconds", true},
    {"MAILGUN_MIN_FREE_BYTES", "--min-free-bytes", true},
    {"MAILGUN_SPOOL_INSECURE", "--insecure", false},
    {"MAILGUN_SPOOL_LOG", "--log", true},
};

}  // namespace

std::string usage_text() {
  return
      "Usage: mailgun-spool [OPTIONS]\n"
      "\n"
      "Receives Mailgun route POSTs and stores each message in a spool directory.\n"
      "It runs as a FastCGI responder (spawn-fcgi, systemd socket, mod_fcgid) or as a\n"
      "plain CGI program; it is not meant to be started on a terminal.\n"
      "\n"
      "Options (each also read from the environment variable in brackets):\n"
      "  --spool DIR              spool directory, required [MAILGUN_SPOOL_DIR]\n"
      "  --key-file FILE          file holding the HTTP webhook signing key\n"
      "                           [MAILGUN_SIGNING_KEY_FILE; or the key in MAILGUN_SIGNING_KEY]\n"
      "  --max-request-bytes N    largest request body accepted, in bytes (default 67108864)\n"
      "                           [MAILGUN_MAX_REQUEST_BYTES]\n"
      "  --max-age-seconds N      freshness window of the signature timestamp, in seconds;\n"
      "                           0 turns the check off (default 43200) [MAILGUN_MAX_AGE_SECONDS]\n"
      "  --min-free-bytes N       free space the spool keeps in reserve; below it requests get\n"
      "                           503 (default 268435456) [MAILGUN_MIN_FREE_BYTES]\n"
      "  --insecure               accept requests without checking signatures; development\n"
      "                           only [MAILGUN_SPOOL_INSECURE=1]\n"
      "  --log TARGET             stderr (default), syslog, or an absolute file path\n"
      "                           [MAILGUN_SPOOL_LOG]\n"
      "  --help                   print this text\n"
      "  --version                print the version\n"
      "\n"
      "Example with spawn-fcgi:\n"
      "  spawn-fcgi -s /run/mailgun-spool/fcgi.sock -M 0600 -U www-data -G www-data \\\n"
      "    -u mailgun-spool -g mailgun-spool -F 4 -- \\\n"
      "    /usr/local/lib/mailgun-spool/mailgun-spool --spool /var/spool/mailgun-spool \\\n"
      "    --key-file /etc/mailgun-spool/signing-key --log syslog\n"
      "\n"
      "See mailgun-spool(8) for the spool format, the status codes and the other setups.\n";
}

void refresh_signing_key(Config& config) {
  if (config.key_file.empty()) {
    return;
  }
  std::string stamp = file_stamp(config.key_file);
  if (config.signing_key && (stamp.empty() || stamp == config.key_file_stamp)) {
    return;
  }
  std::string error;
  std::optional<std::string> key = read_key_file(config.key_file, error);
  config.key_file_stamp = stamp;
  if (key) {
    config.signing_key = std::move(key);
    config.key_error.clear();
  } else if (!config.signing_key) {
    config.key_error = error;
  }
}

ConfigResult load_config(const std::vector<std::string>& environment, const std::vector<std::string>& arguments) {
  ConfigResult result;
  std::map<std::string, std::string> values;

  for (const std::string& entry : environment) {
    std::size_t equals = entry.find('=');
    if (equals == std::string::npos) {
      continue;
    }
    std::string name = entry.substr(0, equals);
    for (const Setting& setting : k_settings) {
      if (name == setting.variable) {
        values[name] = entry.substr(equals + 1);
      }
    }
  }

  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    if (argument == "--help" || argument == "-h") {
      result.show_help = true;
      return result;
    }
    if (argument == "--version") {
      result.show_version = true;
      return result;
    }
    const Setting* matched = nullptr;
    std::string inline_value;
    bool has_inline_value = false;
    for (const Setting& setting : k_settings) {
      if (setting.flag == nullptr) {
        continue;
      }
      std::string flag = setting.flag;
      if (argument == flag) {
        matched = &setting;
      } else if (setting.takes_value && argument.rfind(flag + "=", 0) == 0) {
        matched = &setting;
        inline_value = argument.substr(flag.size() + 1);
        has_inline_value = true;
      }
    }
    if (matched == nullptr) {
      result.error = "unknown option " + argument + " (see --help)";
      return result;
    }
    if (!matched->takes_value) {
      values[matched->variable] = "1";
    } else if (has_inline_value) {
      values[matched->variable] = inline_value;
    } else if (i + 1 < arguments.size()) {
      values[matched->variable] = arguments[++i];
    } else {
      result.error = std::string("option ") + matched->flag + " needs a value (see --help)";
      return result;
    }
  }

  Config config;
  config.max_request_bytes = k_default_max_request_bytes;
  config.max_age_seconds = k_default_max_age_seconds;
  config.min_free_bytes = k_default_min_free_bytes;

  auto value_of = [&](const char* variable) -> const std::string* {
    auto found = values.find(variable);
    return found == values.end() ? nullptr : &found->second;
  };

  const std::string* spool = value_of("MAILGUN_SPOOL_DIR");
  if (spool == nullptr || spool->empty()) {
    result.error = "no spool directory configured: set MAILGUN_SPOOL_DIR or pass --spool DIR";
    return result;
  }
  config.spool_dir = *spool;

  if (const std::string* text = value_of("MAILGUN_MAX_REQUEST_BYTES")) {
    if (!parse_decimal(*text, config.max_request_bytes) || config.max_request_bytes == 0) {
      result.error = "invalid MAILGUN_MAX_REQUEST_BYTES \"" + *text + "\": expected a positive number of bytes";
      return result;
    }
  }
  if (const std::string* text = value_of("MAILGUN_MAX_AGE_SECONDS")) {
    if (!parse_decimal(*text, config.max_age_seconds) || config.max_age_seconds > k_max_freshness_window_seconds) {
      result.error = "invalid MAILGUN_MAX_AGE_SECONDS \"" + *text + "\": expected seconds up to " +
                     std::to_string(k_max_freshness_window_seconds) + ", or 0 to turn the check off";
      return result;
    }
  }
  if (const std::string* text = value_of("MAILGUN_MIN_FREE_BYTES")) {
    if (!parse_decimal(*text, config.min_free_bytes)) {
      result.error = "invalid MAILGUN_MIN_FREE_BYTES \"" + *text + "\": expected a number of bytes";
      return result;
    }
  }
  if (const std::string* text = value_of("MAILGUN_SPOOL_INSECURE")) {
    config.insecure = (*text == "1" || *text == "yes" || *text == "true");
  }
  if (const std::string* text = value_of("MAILGUN_SPOOL_LOG")) {
    if (*text != "stderr" && *text != "syslog" && (text->empty() || (*text)[0] != '/')) {
      result.error = "invalid MAILGUN_SPOOL_LOG \"" + *text + "\": expected stderr, syslog or an absolute path";
      return result;
    }
    config.log_target = *text;
  }

  if (const std::string* path = value_of("MAILGUN_SIGNING_KEY_FILE"); path != nullptr && !path->empty()) {
    // An unreadable key file is not fatal. The responder keeps running and responds with 500,
    // which Mailgun retries, while the log names the problem.
    config.key_file = *path;
    config.key_file_stamp = file_stamp(*path);
    config.signing_key = read_key_file(*path, config.key_error);
  } else if (const std::string* key = value_of("MAILGUN_SIGNING_KEY"); key != nullptr && !key->empty()) {
    config.signing_key = *key;
  }

  result.config = config;
  return result;
}

}  // namespace mgspool
