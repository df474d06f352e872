// Recognizes a Mailgun event webhook (a JSON body) posted to the inbound route, so the
// responder can tell an authentic one (406, never retried) from a forgery (403).
#pragma once

#include <string>
#include <string_view>

namespace mgspool {

enum class EventWebhookKind {
  not_json,             // the body is not valid JSON: 406
  malformed,            // JSON, but not an object with a "signature" object: 406
  signature_unusable,   // the "signature" object lacks a field or has one of the wrong type: 403
  signed_event,         // the three signature fields are present; the caller verifies them
};

// Classification of a JSON body, with its signature fields as sent when kind is signed_event.
struct EventWebhookBody {
  EventWebhookKind kind = EventWebhookKind::not_json;
  std::string timestamp;  // the JSON string's text, or the decimal text of a JSON integer
  std::string token;
  std::string signature;
};

// Inspects a JSON document. Only the top-level "signature" object is read, with "token"
// and "signature" as strings. Its "timestamp" may be a string, or an integer taken as its
// decimal text. A float or any other type, or a repeated "signature" object or field,
// makes the signature unusable. The document is read as a stream of
// events, so no tree of it is built. Throws only RequestError (local_failure, when memory
// runs out).
EventWebhookBody inspect_event_webhook(std::string_view json_text);

// Reads the file behind fd from offset 0 and inspects it. The caller bounds the file's
// size, because the whole file is read into memory. Throws RequestError when reading fails.
EventWebhookBody inspect_event_webhook_file(int fd);

}  // namespace mgspool
