#include "field_collector.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "request_error.h"
#include "spool.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

std::string lowercase(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

struct BodyTarget {
  const char* field;
  const char* file;
  const char* role;
};

// The bodies Mailgun's parsed format sends, and the file each is stored in.
const BodyTarget k_body_targets[] = {
    {"body-plain", "body-plain.txt", "body-plain"},
    {"body-html", "body-html.html", "body-html"},
    {"stripped-text", "stripped-text.txt", "stripped-text"},
    {"stripped-html", "stripped-html.html", "stripped-html"},
    {"stripped-signature", "stripped-signature.txt", "stripped-signature"},
};

bool is_body_field(std::string_view name) {
  return name.rfind("body-", 0) == 0 || name.rfind("stripped-", 0) == 0;
}

// Returns N for a field named attachment-N, or nullopt.
std::optional<int> attachment_number(std::string_view name) {
  constexpr std::string_view prefix = "attachment-";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size() || name.size() > prefix.size() + 6) {
    return std::nullopt;
  }
  int number = 0;
  auto digits = name.substr(prefix.size());
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (error != std::errc() || end != digits.data() + digits.size() || number <= 0) {
    return std::nullopt;
  }
  return number;
}

}  // namespace

MediaType parse_media_type(std::string_view value) {
  MediaType media;
  std::size_t semicolon = value.find(';');
  std::string type = lowercase(trim(value.substr(0, semicolon)));
  if (type.find('/') != std::string::npos && type.find_first_of(" \t\"") == std::string::npos) {
    media.type = type;
  }
  while (semicolon != std::string_view::npos) {
    value.remove_prefix(semicolon + 1);
    semicolon = value.find(';');
    std::string_view parameter = trim(value.substr(0, semicolon));
    std::size_t equals = parameter.find('=');
    if (equals == std::string_view::npos || lowercase(trim(parameter.substr(0, equals))) != "charset") {
      continue;
    }
    std::string_view charset = trim(parameter.substr(equals + 1));
    if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') {
      charset = charset.substr(1, charset.size() - 2);
    }
    if (!charset.empty()) {
      media.charset = std::string(charset);
    }
  }
  return media;
}

FieldCollector::FieldCollector(int staging_fd) : m_staging_fd(staging_fd) {}

void FieldCollector::begin_field(const FieldHead& head) {
  if (++m_field_count > k_max_form_fields) {
    throw RequestError(Outcome::malformed_request,
                       "the form has more than " + std::to_string(k_max_form_fields) + " fields");
  }
  m_head = head;
  m_is_raw_message = (head.name == "body-mime");
  if (m_is_raw_message) {
    // Two raw messages under one signature: there is no telling which one is genuine.
    if (m_raw_message_seen) {
      throw RequestError(Outcome::malformed_request, "the field body-mime occurs more than once");
    }
    m_raw_message_seen = true;
    m_destination = Destination::file;
    m_file_name = k_raw_message_file;
    m_file = create_file_at(m_staging_fd, m_file_name, k_message_file_mode);
    return;
  }
  if (head.is_file || is_body_field(head.name)) {
    m_destination = Destination::file;
    open_file_for(head);
    return;
  }
  m_destination = Destination::memory;
  m_text_fields.push_back(TextField{head.name, {}});
  m_inline_bytes += head.name.size();
}

void FieldCollector::open_file_for(const FieldHead& head) {
  MediaType media = parse_media_type(head.content_type);
  m_record = PartRecord{};
  m_record.path = head.name;
  m_record.charset = media.charset;

  if (!head.is_file) {
    const BodyTarget* target = nullptr;
    for (const BodyTarget& candidate : k_body_targets) {
      if (head.name == candidate.field) {
        target = &candidate;
      }
    }
    bool repeated = target != nullptr && std::any_of(m_parts.begin(), m_parts.end(), [&](const PartRecord& part) {
                      return part.file == target->file;
                    });
    if (repeated) {
      m_defects.push_back("the field " + head.name + " occurs more than once; later values are stored as body-other");
    }
    if (target != nullptr && !repeated) {
      m_file_name = target->file;
      m_record.role = target->role;
    } else {
      m_file_name = "body-other-" + std::to_string(m_next_other_body_number++) + ".txt";
      m_record.role = "body-other";
    }
    bool html = m_record.role == "body-html" || m_record.role == "stripped-html";
    m_record.content_type = media.type;
    if (m_record.content_type.empty()) {
      m_record.content_type = html ? "text/html" : "text/plain";
    }
  } else {
    m_record.content_type = media.type.empty() ? "application/octet-stream" : media.type;
    m_record.role = "attachment";
    ++m_file_ordinal;
    std::optional<int> number = attachment_number(head.name);
    m_record.filename_sent = decode_sent_filename(head.content_disposition, head.content_type, "");
    m_record.filename = m_names.allocate(m_record.filename_sent, m_record.content_type,
                                         number.value_or(m_file_ordinal));
    m_file_name = "part-" + std::to_string(m_next_part_number++) + extension_for_content_type(m_record.content_type);
    if (!m_record.content_type.starts_with("text/")) {
      m_record.charset.reset();
    }
  }
  m_file = create_file_at(m_staging_fd, m_file_name, k_message_file_mode);
}

void FieldCollector::append(std::string_view bytes) {
  if (m_destination == Destination::file) {
    write_all(m_file.get(), bytes, m_file_name);
    return;
  }
  m_inline_bytes += bytes.size();
  if (m_inline_bytes > k_max_inline_field_bytes) {
    throw RequestError(Outcome::request_too_large, "the form's text fields exceed " +
                                                       std::to_string(k_max_inline_field_bytes) + " bytes");
  }
  m_text_fields.back().value.append(bytes);
}

void FieldCollector::end_field() {
  if (m_destination == Destination::file) {
    finish_file();
  }
  m_destination = Destination::memory;
}

void FieldCollector::finish_file() {
  // Durable before anything refers to it: fsync, then close with the result checked.
  fsync_or_throw(m_file.get(), m_file_name);
  std::string digest = sha256_hex_of_fd(m_file.get());
  off_t size = ::lseek(m_file.get(), 0, SEEK_END);
  m_file.close_checked(m_file_name);
  if (m_is_raw_message) {
    return;
  }
  m_record.file = m_file_name;
  m_record.sha256 = digest;
  m_record.size = size < 0 ? 0 : static_cast<std::uint64_t>(size);
  m_parts.push_back(m_record);
}

std::vector<std::string> FieldCollector::values_of(std::string_view name) const {
  std::vector<std::string> values;
  for (const TextField& field : m_text_fields) {
    if (field.name == name) {
      values.push_back(field.value);
    }
  }
  return values;
}

}  // namespace mgspool
