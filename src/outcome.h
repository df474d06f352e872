// Every way a request can end, and the one mapping from an outcome to its HTTP status.
#pragma once

#include <string_view>

namespace mgspool {

enum class Outcome {
  stored,                  // the message was published in new/
  already_stored,          // the token was recorded before: Mailgun's retry of a stored message
  method_not_allowed,      // not POST
  invalid_content_length,  // CONTENT_LENGTH is not a plain decimal number
  request_too_large,       // the body, or its CONTENT_LENGTH, is above the configured maximum
  malformed_request,       // the form cannot be parsed, or a field is repeated or has the wrong shape
  unsupported_media_type,  // neither a form nor JSON
  event_webhook,           // an authentic event webhook posted to the inbound URL
  signature_missing,       // timestamp, token or signature absent, repeated or malformed
  signature_mismatch,      // the HMAC does not match the configured key
  signature_stale,         // the timestamp is outside the freshness window
  body_truncated,          // the client went away before the whole body arrived
  no_signing_key,          // no key is configured, or its file cannot be read
  local_failure,           // an I/O or other local error
  below_free_space,        // the spool's file system is below the free-space reserve
  published_not_synced,    // the message is in new/ but syncing new/ failed
};

// Returns the HTTP status for an outcome: 200 stored, 403 authentication, 405 method,
// 406 never acceptable, 503 low disk, 500 every other local failure.
int status_for(Outcome outcome);

// Returns a short reason for the log line, such as "stored" or "signature mismatch".
std::string_view reason_for(Outcome outcome);

// Returns the outcome for a failed system call: every errno is a local failure that Mailgun
// should retry, because a full disk or an I/O error may be gone by the next attempt.
Outcome outcome_for_errno(int error_number);

}  // namespace mgspool
