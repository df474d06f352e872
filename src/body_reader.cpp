#include "body_reader.h"

#include <charconv>
#include <vector>

#include "file_io.h"
#include "request_error.h"
#include "spool_limits.h"

namespace mgspool {

std::optional<std::uint64_t> parse_content_length(const std::optional<std::string>& text,
                                                  std::uint64_t max_request_bytes) {
  if (!text || text->empty()) {
    return std::nullopt;
  }
  // Only plain digits: no sign, no spaces, no hex; at most 19 digits so the value fits.
  bool digits_only = text->size() <= 19;
  for (char c : *text) {
    digits_only = digits_only && c >= '0' && c <= '9';
  }
  std::uint64_t length = 0;
  if (!digits_only ||
      std::from_chars(text->data(), text->data() + text->size(), length).ec != std::errc()) {
    throw RequestError(Outcome::invalid_content_length, "invalid CONTENT_LENGTH \"" + text->substr(0, 40) + "\"");
  }
  if (length > max_request_bytes) {
    throw RequestError(Outcome::request_too_large, "CONTENT_LENGTH " + *text + " is above the maximum of " +
                                                       std::to_string(max_request_bytes) + " bytes");
  }
  return length;
}

std::uint64_t copy_body_to_file(RequestIo& io, int fd, std::optional<std::uint64_t> content_length,
                                std::uint64_t max_request_bytes) {
  // NOTE: without a content length the end of input is taken as the end of the body. A
  // multipart form that was cut short is caught by its missing closing delimiter; a cut
  // urlencoded body cannot be told from a whole one. Mailgun sends a Content-Length, and
  // nginx and mod_fcgid buffer the whole body, so only a chunked upload through mod_cgid or
  // mod_proxy_fcgi reaches this path.
  std::vector<char> buffer(k_io_buffer_bytes);
  std::uint64_t total = 0;
  for (;;) {
    std::size_t wanted = buffer.size();
    if (content_length) {
      if (total == *content_length) {
        break;
      }
      wanted = static_cast<std::size_t>(std::min<std::uint64_t>(wanted, *content_length - total));
    }
    std::size_t count = io.read_body(buffer.data(), wanted);
    if (count == 0) {
      if (content_length) {
        throw RequestError(Outcome::body_truncated, "the request body ended after " + std::to_string(total) +
                                                        " of " + std::to_string(*content_length) + " bytes");
      }
      break;
    }
    total += count;
    if (total > max_request_bytes) {
      throw RequestError(Outcome::request_too_large, "the request body is above the maximum of " +
                                                         std::to_string(max_request_bytes) + " bytes");
    }
    write_all(fd, std::string_view(buffer.data(), count), "request body");
  }
  return total;
}

void drain_body(RequestIo& io, std::uint64_t max_bytes) {
  std::vector<char> buffer(k_io_buffer_bytes);
  std::uint64_t total = 0;
  try {
    while (total < max_bytes) {
      std::size_t count = io.read_body(buffer.data(), buffer.size());
      if (count == 0) {
        break;
      }
      total += count;
    }
  } catch (const RequestError&) {
    // The response is already decided, so a broken upload changes nothing.
  }
}

}  // namespace mgspool
