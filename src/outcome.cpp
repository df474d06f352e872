#include "outcome.h"

namespace mgspool {

int status_for(Outcome outcome) {
  switch (outcome) {
    case Outcome::stored:
    case Outcome::already_stored:
      return 200;
    case Outcome::signature_missing:
    case Outcome::signature_mismatch:
    case Outcome::signature_stale:
      // Not 406: Mailgun retries a 403, so a mistyped key or a wrong clock loses no mail.
      return 403;
    case Outcome::method_not_allowed:
      return 405;
    case Outcome::invalid_content_length:
    case Outcome::request_too_large:
    case Outcome::malformed_request:
    case Outcome::unsupported_media_type:
    case Outcome::event_webhook:
      return 406;
    case Outcome::below_free_space:
      return 503;
    case Outcome::body_truncated:
    case Outcome::no_signing_key:
    case Outcome::local_failure:
    case Outcome::published_not_synced:
      return 500;
  }
  return 500;
}

std::string_view reason_for(Outcome outcome) {
  switch (outcome) {
    case Outcome::stored: return "stored";
    case Outcome::already_stored: return "already stored";
    case Outcome::method_not_allowed: return "method not allowed";
    case Outcome::invalid_content_length: return "invalid CONTENT_LENGTH";
    case Outcome::request_too_large: return "request too large";
    case Outcome::malformed_request: return "malformed request";
    case Outcome::unsupported_media_type: return "unsupported content type";
    case Outcome::event_webhook: return "event webhook on the inbound route";
    case Outcome::signature_missing: return "signature missing or malformed";
    case Outcome::signature_mismatch: return "signature mismatch";
    case Outcome::signature_stale: return "timestamp outside the freshness window";
    case Outcome::body_truncated: return "request body truncated";
    case Outcome::no_signing_key: return "signing key unavailable";
    case Outcome::local_failure: return "local failure";
    case Outcome::below_free_space: return "below the free-space reserve";
    case Outcome::published_not_synced: return "published but syncing new/ failed";
  }
  return "unknown";
}

Outcome outcome_for_errno(int /*error_number*/) {
  return Outcome::local_failure;
}

}  // namespace mgspool
