// The request as the web server hands it over: parameters, a body stream and a response
// stream. FastCGI and plain CGI each implement it, so one handler serves both modes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mgspool {

class RequestIo {
 public:
  virtual ~RequestIo() = default;

  // Returns a CGI parameter (REQUEST_METHOD, CONTENT_LENGTH, ...) or nullopt when unset.
  virtual std::optional<std::string> param(const char* name) const = 0;

  // Reads up to size body bytes; returns 0 at the end of the input. Throws RequestError
  // (body_truncated) when the connection failed.
  virtual std::size_t read_body(char* buffer, std::size_t size) = 0;

  // Writes response bytes (headers and body).
  virtual void write_response(std::string_view bytes) = 0;
};

}  // namespace mgspool
