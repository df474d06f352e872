// The responder's log: one summary line per request, warnings tagged with the same request id.
#pragma once

#include <string>
#include <string_view>

namespace mgspool {

enum class LogLevel { info, warning, error };

// Chooses where lines go: "stderr" (the web server's error log under mod_fcgid and mod_cgid),
// "syslog" (facility mail), or an absolute file path opened for appending. Returns false,
// and keeps stderr, when the file cannot be opened.
bool log_open(const std::string& target, std::string& error);

// Writes one line. Control characters in message are replaced so that a value taken from a
// request can never forge a second log line.
void log_line(LogLevel level, std::string_view message);

// Writes a warning about one request: "request=<id> warning: <message>".
void log_request_warning(std::string_view request_id, std::string_view message);

// Quotes a value for a key="value" log field, escaping quotes and control characters.
std::string log_quote(std::string_view value);

}  // namespace mgspool
