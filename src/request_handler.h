// One request from start to response: read the body, parse the form, verify, decode, commit.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "config.h"
#include "outcome.h"
#include "request_io.h"

namespace mgspool {

class Spool;
class TokenStore;

// The facts the summary log line reports about one request.
struct RequestSummary {
  std::string request_id;
  Outcome outcome = Outcome::local_failure;
  std::string detail;      // the error text for failures; never contains the signing key
  std::string format;      // mime, parsed, notify, or "-" when none was chosen
  std::uint64_t bytes = 0;
  std::size_t parts = 0;
  std::string message_id;  // the spool ID, or "-"
};

class RequestHandler {
 public:
  // spool is null when the spool could not be opened. Every request then gets a 500 with
  // spool_error in the log, so the web server does not respawn the responder in a loop.
  RequestHandler(const Config& config, Spool* spool, TokenStore* tokens, std::string spool_error);

  // Handles one request: writes the whole response to io and one summary line to the log.
  RequestSummary handle(RequestIo& io);

 private:
  Outcome process(RequestIo& io, RequestSummary& summary);
  Outcome process_event_webhook(int body_fd, RequestSummary& summary);

  const Config& m_config;
  Spool* m_spool;
  TokenStore* m_tokens;
  std::string m_spool_error;
};

// Returns the response text for an outcome: Status header, Allow for 405, a short body.
std::string response_for(Outcome outcome);

}  // namespace mgspool
