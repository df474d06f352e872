#include "log.h"

#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace mgspool {

namespace {

enum class Target { standard_error, system_log, file };

Target g_target = Target::standard_error;
int g_file_fd = -1;

std::string sanitize(std::string_view message) {
  std::string line;
  line.reserve(message.size());
  for (char c : message) {
    unsigned char byte = static_cast<unsigned char>(c);
    line.push_back(byte < 0x20 || byte == 0x7f ? '?' : c);
  }
  return line;
}

std::string timestamp_now() {
  char buffer[32];
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "info";
}

}  // namespace

bool log_open(const std::string& target, std::string& error) {
  if (target == "stderr") {
    g_target = Target::standard_error;
    return true;
  }
  if (target == "syslog") {
    openlog("mailgun-spool", LOG_PID | LOG_NDELAY, LOG_MAIL);
    g_target = Target::system_log;
    return true;
  }
  int fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    error = "cannot open the log file " + target + ": " + std::strerror(errno) +
            "; make it writable by the responder's user";
    // Under spawn-fcgi standard error is /dev/null, so the reason also goes to syslog.
    openlog("mailgun-spool", LOG_PID, LOG_MAIL);
    syslog(LOG_ERR, "%s", error.c_str());
    closelog();
    return false;
  }
  if (g_file_fd >= 0) {
    ::close(g_file_fd);
  }
  g_file_fd = fd;
  g_target = Target::file;
  return true;
}

void log_line(LogLevel level, std::string_view message) {
  std::string text = sanitize(message);
  if (g_target == Target::system_log) {
    int priority = LOG_INFO;
    if (level == LogLevel::error) {
      priority = LOG_ERR;
    } else if (level == LogLevel::warning) {
      priority = LOG_WARNING;
    }
    syslog(priority, "%s", text.c_str());
    return;
  }
  std::string line = timestamp_now() + " mailgun-spool[" + std::to_string(::getpid()) + "] " + level_name(level) +
                     ": " + text + "\n";
  int fd = g_target == Target::file ? g_file_fd : STDERR_FILENO;
  // One write per line keeps lines whole when several responders share a log (O_APPEND).
  ssize_t ignored = ::write(fd, line.data(), line.size());
  (void)ignored;
}

void log_request_warning(std::string_view request_id, std::string_view message) {
  std::string line = "request=";
  line.append(request_id);
  line.append(" warning: ");
  line.append(message);
  log_line(LogLevel::warning, line);
}

std::string log_quote(std::string_view value) {
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      quoted.push_back('\\');
    }
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

}  // namespace mgspool
