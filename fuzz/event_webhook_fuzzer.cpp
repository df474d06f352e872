// Inspects the input as an event webhook's JSON body and checks that signature fields are
// only returned for a signed event.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "event_webhook.h"
#include "fuzz_support.h"

using namespace mgspool;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view json_text(reinterpret_cast<const char*>(data), size);
  EventWebhookBody body = inspect_event_webhook(json_text);

  if (body.kind != EventWebhookKind::signed_event) {
    fuzzing::check(body.timestamp.empty() && body.token.empty() && body.signature.empty(),
                   "signature fields set for a body that is not a signed event", json_text);
  }
  // A field is a JSON string (whose escapes only shorten it) or the decimal text of an
  // integer in the document, so none can be longer than the document.
  fuzzing::check(body.timestamp.size() <= size && body.token.size() <= size && body.signature.size() <= size,
                 "signature field longer than the document", json_text);
  return 0;
}
