// The exception that ends a request with a known outcome.
#pragma once

#include <stdexcept>
#include <string>

#include "outcome.h"

namespace mgspool {

// Thrown inside the request path. The request boundary catches it, logs what() and sends
// status_for(outcome()). what() may name files and errno text but never the signing key.
class RequestError : public std::runtime_error {
 public:
  RequestError(Outcome outcome, const std::string& message)
      : std::runtime_error(message), m_outcome(outcome) {}

  Outcome outcome() const { return m_outcome; }

 private:
  Outcome m_outcome;
};

// Throws a RequestError for a failed system call: "<what>: <strerror(error_number)>".
[[noreturn]] void throw_system_error(const std::string& what, int error_number);

}  // namespace mgspool
