// Copies the request body from the web server into a staging file, within the size limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "request_io.h"

namespace mgspool {

// Parses CONTENT_LENGTH: nullopt for absent or empty (a chunked upload read to the end),
// a number for plain decimal digits. Throws RequestError(invalid_content_length) for
// anything else, and RequestError(request_too_large) for a value above max_request_bytes.
std::optional<std::uint64_t> parse_content_length(const std::optional<std::string>& text,
                                                  std::uint64_t max_request_bytes);

// Copies the body into fd and returns its size. With a content length it reads exactly
// that many bytes and throws RequestError(body_truncated) when the input ends early;
// without one it reads to the end and throws RequestError(request_too_large) past the max.
std::uint64_t copy_body_to_file(RequestIo& io, int fd, std::optional<std::uint64_t> content_length,
                                std::uint64_t max_request_bytes);

// Reads and discards what is left of the body, up to max_bytes, so that a web server that
// waits for the upload to finish before reading the response gets the early response.
void drain_body(RequestIo& io, std::uint64_t max_bytes);

}  // namespace mgspool
