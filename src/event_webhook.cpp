// Event webhook recognition with nlohmann-json's SAX interface: only the top-level
// "signature" object is looked at, and nothing else of the document is kept.
#include "event_webhook.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>

#include "file_io.h"
#include "request_error.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

using Json = nlohmann::json;

// Collects the signature fields while nlohmann-json reports the document's events.
// Depth 1 is inside the top-level object, depth 2 inside the "signature" object.
class SignatureCollector : public nlohmann::json_sax<Json> {
 public:
  EventWebhookBody result() const {
    EventWebhookBody body;
    if (!m_top_is_object || m_signature_objects == 0) {
      body.kind = EventWebhookKind::malformed;
      return body;
    }
    if (m_signature_objects > 1 || m_field_invalid || !m_timestamp || !m_token || !m_signature) {
      body.kind = EventWebhookKind::signature_unusable;
      return body;
    }
    body.kind = EventWebhookKind::signed_event;
    body.timestamp = m_timestamp_text;
    body.token = m_token_text;
    body.signature = m_signature_text;
    return body;
  }

  bool null() override { return scalar(nullptr); }
  bool boolean(bool) override { return scalar(nullptr); }
  bool number_float(number_float_t, const string_t&) override { return scalar(nullptr); }
  bool binary(binary_t&) override { return scalar(nullptr); }

  bool number_integer(number_integer_t value) override {
    std::string text = std::to_string(value);
    return scalar(&text, true);
  }

  bool number_unsigned(number_unsigned_t value) override {
    std::string text = std::to_string(value);
    return scalar(&text, true);
  }

  bool string(string_t& value) override { return scalar(&value, false); }

  bool start_object(std::size_t) override {
    if (m_depth == 0) {
      m_top_is_object = true;
    } else if (m_depth == 1 && m_key == "signature") {
      ++m_signature_objects;
      m_in_signature = true;
    } else if (m_depth == 2 && m_in_signature) {
      m_field_invalid = true;  // a signature field holding an object
    }
    ++m_depth;
    return true;
  }

  bool end_object() override {
    --m_depth;
    if (m_depth == 1) {
      m_in_signature = false;
    }
    return true;
  }

  bool start_array(std::size_t) override {
    if (m_depth == 2 && m_in_signature) {
      m_field_invalid = true;  // a signature field holding an array
    }
    ++m_depth;
    return true;
  }

  bool end_array() override {
    --m_depth;
    return true;
  }

  bool key(string_t& value) override {
    if (m_depth <= 2) {
      m_key = value;
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  // Handles a scalar value: text is the value as sent for strings and integers, else null.
  bool scalar(const std::string* text, bool is_integer = false) {
    if (m_depth != 2 || !m_in_signature) {
      return true;
    }
    if (m_key == "timestamp") {
      store(text, m_timestamp, m_timestamp_text);
    } else if (m_key == "token") {
      store(is_integer ? nullptr : text, m_token, m_token_text);
    } else if (m_key == "signature") {
      store(is_integer ? nullptr : text, m_signature, m_signature_text);
    }
    return true;
  }

  void store(const std::string* text, bool& seen, std::string& target) {
    if (text == nullptr || seen) {
      m_field_invalid = true;
      return;
    }
    seen = true;
    target = *text;
  }

  int m_depth = 0;
  std::string m_key;
  bool m_top_is_object = false;
  bool m_in_signature = false;
  int m_signature_objects = 0;
  bool m_field_invalid = false;
  bool m_timestamp = false;
  bool m_token = false;
  bool m_signature = false;
  std::string m_timestamp_text;
  std::string m_token_text;
  std::string m_signature_text;
};

}  // namespace

EventWebhookBody inspect_event_webhook(std::string_view json_text) {
  try {
    SignatureCollector collector;
    if (!Json::sax_parse(json_text, &collector)) {
      return EventWebhookBody{};
    }
    return collector.result();
  } catch (const std::bad_alloc&) {
    throw RequestError(Outcome::local_failure, "event webhook: out of memory while reading the JSON body");
  } catch (const Json::exception&) {
    // sax_parse reports syntax errors through parse_error; any other library error still
    // means the body is not usable JSON.
    return EventWebhookBody{};
  }
}

EventWebhookBody inspect_event_webhook_file(int fd) {
  std::string text;
  read_chunks(fd, "JSON request body", [&](std::string_view chunk) { text.append(chunk); });
  return inspect_event_webhook(text);
}

}  // namespace mgspool
