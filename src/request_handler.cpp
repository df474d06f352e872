#include "request_handler.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "body_reader.h"
#include "charset.h"
#include "event_webhook.h"
#include "field_collector.h"
#include "file_io.h"
#include "form.h"
#include "log.h"
#include "meta.h"
#include "mime_decoder.h"
#include "parsed_format.h"
#include "request_error.h"
#include "signature.h"
#include "signature_fields.h"
#include "spool.h"
#include "spool_limits.h"
#include "token_store.h"

namespace mgspool {

namespace {

// The request body while it is parsed; removed before the message is published.
constexpr const char* k_request_body_file = "request.body";

std::string new_request_id() {
  unsigned char random[8] = {};
  if (getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random)) {
    // Only the log correlation suffers from a weak id, so the time is good enough here.
    auto ticks = std::chrono::steady_clock::now().time_since_epoch().count();
    for (std::size_t i = 0; i < sizeof random; ++i) {
      random[i] = static_cast<unsigned char>(ticks >> (8 * i));
    }
  }
  static constexpr char k_hex_digits[] = "0123456789abcdef";
  std::string id;
  for (unsigned char byte : random) {
    id.push_back(k_hex_digits[byte >> 4]);
    id.push_back(k_hex_digits[byte & 0x0f]);
  }
  return id;
}

std::string rfc3339_utc(std::chrono::system_clock::time_point when) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count() % 1000000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  char fraction[16];
  std::snprintf(fraction, sizeof fraction, ".%06lldZ", static_cast<long long>(micros));
  return std::string(buffer) + fraction;
}

std::string lowercase_media_type(const std::optional<std::string>& content_type) {
  return content_type ? parse_media_type(*content_type).type : std::string();
}

Outcome outcome_for_signature(SignatureCheck check) {
  switch (check) {
    case SignatureCheck::valid: return Outcome::stored;
    case SignatureCheck::malformed: return Outcome::signature_missing;
    case SignatureCheck::mismatch: return Outcome::signature_mismatch;
    case SignatureCheck::stale: return Outcome::signature_stale;
  }
  return Outcome::signature_mismatch;
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Returns the one value of a signature field, or nullopt when it is absent or repeated.
std::optional<std::string> single_value(const FieldCollector& collector, const char* name) {
  std::vector<std::string> values = collector.values_of(name);
  if (values.size() != 1) {
    return std::nullopt;
  }
  return values.front();
}

void parse_form(int fd, const std::string& media_type, const std::string& content_type, FieldSink& sink) {
  if (media_type == "multipart/form-data") {
    parse_multipart_file(fd, content_type, sink);
  } else {
    parse_urlencoded_file(fd, sink);
  }
}

// Returns true for a form that Mailgun's legacy (form-encoded) event webhooks send: an
// "event" field, and none of the fields every route POST carries.
bool is_legacy_event_webhook(const FieldCollector& collector) {
  if (collector.values_of("event").empty() || collector.has_raw_message()) {
    return false;
  }
  if (!collector.values_of("message-url").empty()) {
    return false;
  }
  return std::none_of(collector.parts().begin(), collector.parts().end(),
                      [](const PartRecord& part) { return part.role == "body-plain" || part.role == "body-html"; });
}

UniqueFd create_body_file(const StagingDirectory& staging) {
  // Read and write: the parsers read the body back from this file.
  int fd = ::openat(staging.fd(), k_request_body_file, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw_system_error(std::string("create ") + k_request_body_file, errno);
  }
  return UniqueFd(fd);
}

}  // namespace

std::string response_for(Outcome outcome) {
  int status = status_for(outcome);
  const char* status_text = "Internal Server Error";
  switch (status) {
    case 200: status_text = "OK"; break;
    case 403: status_text = "Forbidden"; break;
    case 405: status_text = "Method Not Allowed"; break;
    case 406: status_text = "Not Acceptable"; break;
    case 503: status_text = "Service Unavailable"; break;
    default: break;
  }
  std::string response = "Status: " + std::to_string(status) + " " + status_text + "\r\n";
  if (outcome == Outcome::method_not_allowed) {
    response += "Allow: POST\r\n";
  }
  response += "Content-Type: text/plain; charset=utf-8\r\n";
  response += "Cache-Control: no-store\r\n\r\n";
  response += std::string(reason_for(outcome)) + "\n";
  return response;
}

RequestHandler::RequestHandler(const Config& config, Spool* spool, TokenStore* tokens, std::string spool_error)
    : m_config(config), m_spool(spool), m_tokens(tokens), m_spool_error(std::move(spool_error)) {}

RequestSummary RequestHandler::handle(RequestIo& io) {
  auto started = std::chrono::steady_clock::now();
  RequestSummary summary;
  summary.request_id = new_request_id();
  summary.format = "-";
  summary.message_id = "-";

  try {
    summary.outcome = process(io, summary);
  } catch (const RequestError& error) {
    summary.outcome = error.outcome();
    summary.detail = error.what();
  } catch (const std::exception& error) {
    summary.outcome = Outcome::local_failure;
    summary.detail = error.what();
  }

  io.write_response(response_for(summary.outcome));

  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::string line = "request=" + summary.request_id + " status=" + std::to_string(status_for(summary.outcome)) +
                     " reason=" + log_quote(reason_for(summary.outcome)) + " format=" + summary.format +
                     " bytes=" + std::to_string(summary.bytes) + " parts=" + std::to_string(summary.parts) +
                     " ms=" + std::to_string(elapsed.count()) + " id=" + summary.message_id;
  line += " uri=" + log_quote(io.param("REQUEST_URI").value_or("-").substr(0, 200)) +
          " remote=" + log_quote(io.param("REMOTE_ADDR").value_or("-").substr(0, 64));
  if (!summary.detail.empty()) {
    line += " detail=" + log_quote(summary.detail);
  }
  int status = status_for(summary.outcome);
  log_line(status >= 500 ? LogLevel::error : LogLevel::info, line);
  return summary;
}

Outcome RequestHandler::process(RequestIo& io, RequestSummary& summary) {
  std::optional<std::string> method = io.param("REQUEST_METHOD");
  if (method != "POST") {
    drain_body(io, m_config.max_request_bytes);
    summary.detail = "method " + method.value_or("(none)");
    return Outcome::method_not_allowed;
  }

  std::optional<std::uint64_t> content_length =
      parse_content_length(io.param("CONTENT_LENGTH"), m_config.max_request_bytes);

  if (!m_config.signing_key && !m_config.insecure) {
    drain_body(io, m_config.max_request_bytes);
    summary.detail = m_config.key_error.empty()
                         ? "no signing key: set MAILGUN_SIGNING_KEY_FILE (or MAILGUN_SIGNING_KEY) to the HTTP "
                           "webhook signing key from the Mailgun dashboard"
                         : m_config.key_error;
    return Outcome::no_signing_key;
  }
  if (m_spool == nullptr) {
    drain_body(io, m_config.max_request_bytes);
    summary.detail = m_spool_error;
    return Outcome::local_failure;
  }
  if (std::uint64_t free_bytes = m_spool->free_bytes(); free_bytes < m_config.min_free_bytes) {
    drain_body(io, m_config.max_request_bytes);
    summary.detail = std::to_string(free_bytes) + " bytes free in " + m_spool->path() + ", reserve is " +
                     std::to_string(m_config.min_free_bytes);
    return Outcome::below_free_space;
  }

  auto received = std::chrono::system_clock::now();
  std::string message_id = make_message_id(received);
  StagingDirectory staging = m_spool->create_staging(message_id);

  UniqueFd body = create_body_file(staging);
  summary.bytes = copy_body_to_file(io, body.get(), content_length, m_config.max_request_bytes);

  std::optional<std::string> content_type = io.param("CONTENT_TYPE");
  std::string media_type = lowercase_media_type(content_type);

  if (media_type == "application/json") {
    if (summary.bytes > k_max_json_body_bytes) {
      summary.detail = "a JSON body of " + std::to_string(summary.bytes) + " bytes, above the " +
                       std::to_string(k_max_json_body_bytes) + " bytes an event webhook may have";
      return Outcome::request_too_large;
    }
    return process_event_webhook(body.get(), summary);
  }
  if (media_type != "multipart/form-data" && media_type != "application/x-www-form-urlencoded") {
    summary.detail = "content type \"" + content_type.value_or("").substr(0, 80) + "\"";
    return Outcome::unsupported_media_type;
  }

  // The signature is checked in a first pass that keeps only the three signature fields, so
  // an unsigned request costs no file writes, fsyncs or GMime parse.
  std::optional<std::string> verified_token;
  if (!m_config.insecure) {
    SignatureFields signature_fields = media_type == "multipart/form-data"
                                           ? read_multipart_signature_fields(body.get(), *content_type)
                                           : read_urlencoded_signature_fields(body.get());
    if (!signature_fields.closed) {
      summary.detail = "multipart form: the body ends without its closing delimiter";
      return Outcome::body_truncated;
    }
    if (!signature_fields.complete()) {
      summary.detail = "timestamp, token and signature must each occur once";
      return Outcome::signature_missing;
    }
    SignatureCheck check =
        verify_signature(*m_config.signing_key, signature_fields.timestamp, signature_fields.token,
                         signature_fields.signature, now_seconds(), m_config.max_age_seconds);
    if (check != SignatureCheck::valid) {
      return outcome_for_signature(check);
    }
    verified_token = signature_fields.token;
  }

  FieldCollector collector(staging.fd());
  parse_form(body.get(), media_type, *content_type, collector);
  if (is_legacy_event_webhook(collector)) {
    summary.format = "event";
    log_request_warning(summary.request_id,
                        "event webhook received on the inbound route; configure event webhooks with another URL");
    return Outcome::event_webhook;
  }
  // The verified token keys the token memory; without a check (insecure mode) the form's.
  std::optional<std::string> token = verified_token ? verified_token : single_value(collector, "token");

  // Requests with the same token serialise here; the later ones find the first one's record.
  TokenLock token_lock;
  if (token) {
    token_lock = m_tokens->lock(*token);
    if (std::optional<std::string> stored_as = m_tokens->find(*token)) {
      summary.message_id = *stored_as;
      return Outcome::already_stored;
    }
  }

  MessageMeta meta;
  meta.id = message_id;
  meta.received_at = rfc3339_utc(received);
  meta.fields = collector.text_fields();
  meta.defects = collector.defects();
  std::vector<PartRecord>& form_parts = collector.parts();

  if (collector.has_raw_message()) {
    meta.format = "mime";
    // Bodies or files sent beside body-mime keep a "form-" prefix so that the decoder's own
    // file names stay free.
    for (PartRecord& part : form_parts) {
      std::string renamed = "form-" + part.file;
      if (::renameat(staging.fd(), part.file.c_str(), staging.fd(), renamed.c_str()) != 0) {
        throw_system_error("rename " + part.file, errno);
      }
      part.file = renamed;
    }
    DecodedMessage decoded = decode_message_file(staging.fd(), k_raw_message_file, collector.names());
    meta.headers = std::move(decoded.headers);
    meta.defects.insert(meta.defects.end(), decoded.defects.begin(), decoded.defects.end());
    meta.parts = std::move(decoded.parts);
    meta.parts.insert(meta.parts.end(), form_parts.begin(), form_parts.end());
  } else {
    bool notification = !collector.values_of("message-url").empty();
    meta.format = notification ? "notify" : "parsed";
    if (std::vector<std::string> values = collector.values_of("message-headers"); !values.empty()) {
      meta.headers = headers_from_message_headers(values.front(), meta.defects);
    }
    if (std::vector<std::string> values = collector.values_of("content-id-map"); !values.empty()) {
      apply_content_id_map(values.front(), form_parts, meta.defects);
    }
    if (std::vector<std::string> values = collector.values_of("attachment-count"); !values.empty()) {
      check_attachment_count(values.front(), form_parts, meta.defects, meta.extra);
    }
    if (notification) {
      std::vector<std::string> announced = collector.values_of("attachments");
      record_announced_attachments(announced.empty() ? "[]" : announced.front(), meta.defects, meta.extra);
      if (!meta.extra["announced_attachments"].empty()) {
        log_request_warning(summary.request_id,
                            "route uses store(): attachments arrive as links only; use forward() to receive "
                            "attachment content");
      } else {
        log_request_warning(summary.request_id,
                            "message-url present without body-mime: the route uses store(); use forward() to "
                            "receive the raw message");
      }
    }
    meta.parts = form_parts;
  }
  summary.format = meta.format;
  summary.parts = meta.parts.size();
  for (const std::string& defect : meta.defects) {
    log_request_warning(summary.request_id, "defect: " + defect);
  }

  std::string meta_text =
      build_meta_json(meta).dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  write_new_file_at(staging.fd(), k_meta_file, meta_text, k_message_file_mode);

  body = UniqueFd();
  staging.remove_file(k_request_body_file);

  CommitResult result = staging.commit();
  summary.message_id = message_id;
  // Recorded even when syncing new/ failed: the message is in new/, so the retry must not
  // store a second copy.
  if (token) {
    try {
      m_tokens->record(*token, message_id);
    } catch (const std::exception& error) {
      // The message is published; a 500 now would make Mailgun send it again, and without
      // the record the retry would be stored twice. A 200 stops the retries instead.
      log_request_warning(summary.request_id, "the message is published as " + message_id +
                                                  " but recording its token failed: " + error.what() +
                                                  "; a replay of this token would be stored again");
    }
  }
  if (result == CommitResult::published_not_synced) {
    summary.detail = "fsync of new/ failed after the rename";
    return Outcome::published_not_synced;
  }
  return Outcome::stored;
}

Outcome RequestHandler::process_event_webhook(int body_fd, RequestSummary& summary) {
  summary.format = "event";
  EventWebhookBody event = inspect_event_webhook_file(body_fd);
  switch (event.kind) {
    case EventWebhookKind::not_json:
      summary.detail = "an application/json body that is not valid JSON";
      return Outcome::malformed_request;
    case EventWebhookKind::malformed:
      summary.detail = "a JSON body without a signature object";
      return Outcome::malformed_request;
    case EventWebhookKind::signature_unusable:
      return Outcome::signature_missing;
    case EventWebhookKind::signed_event:
      break;
  }
  if (!m_config.insecure) {
    SignatureCheck check = verify_signature(*m_config.signing_key, event.timestamp, event.token, event.signature,
                                            now_seconds(), m_config.max_age_seconds);
    if (check != SignatureCheck::valid) {
      return outcome_for_signature(check);
    }
  }
  log_request_warning(summary.request_id,
                      "event webhook received on the inbound route; configure event webhooks with another URL");
  return Outcome::event_webhook;
}

}  // namespace mgspool
