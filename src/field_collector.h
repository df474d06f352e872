// Receives the form fields of a request and stores each where it belongs: body-mime into
// message.eml, bodies and file parts into files of the staging directory, every other field
// in memory for meta.json. Nothing the request names becomes a file name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "file_io.h"
#include "filename.h"
#include "form.h"
#include "part_record.h"

namespace mgspool {

// A non-file field kept in memory, value as raw bytes.
struct TextField {
  std::string name;
  std::string value;
};

// The file name of the raw message in a message directory.
inline constexpr const char* k_raw_message_file = "message.eml";

class FieldCollector : public FieldSink {
 public:
  explicit FieldCollector(int staging_fd);

  void begin_field(const FieldHead& head) override;
  void append(std::string_view bytes) override;
  void end_field() override;

  // Non-file fields other than body-mime and the bodies, in request order.
  const std::vector<TextField>& text_fields() const { return m_text_fields; }

  // Every value of the text field name, in request order.
  std::vector<std::string> values_of(std::string_view name) const;

  // Bodies and file parts written so far, in request order (their `path` is the field name).
  std::vector<PartRecord>& parts() { return m_parts; }
  const std::vector<PartRecord>& parts() const { return m_parts; }

  // Field names of file parts, parallel to parts() for attachments.
  bool has_raw_message() const { return m_raw_message_seen; }

  // The safe names given to file parts so far; the decoder of body-mime continues from them.
  SafeNameAllocator& names() { return m_names; }
  std::vector<std::string>& defects() { return m_defects; }

 private:
  enum class Destination { memory, file };

  void open_file_for(const FieldHead& head);
  void finish_file();

  int m_staging_fd;
  std::vector<TextField> m_text_fields;
  std::vector<PartRecord> m_parts;
  std::vector<std::string> m_defects;
  SafeNameAllocator m_names;
  std::size_t m_field_count = 0;
  std::size_t m_inline_bytes = 0;
  int m_next_part_number = 1;
  int m_next_other_body_number = 1;
  int m_file_ordinal = 0;
  bool m_raw_message_seen = false;

  // The field being received.
  Destination m_destination = Destination::memory;
  FieldHead m_head;
  UniqueFd m_file;
  std::string m_file_name;
  PartRecord m_record;
  bool m_is_raw_message = false;
};

// Splits a Content-Type value into its lowercase type/subtype and its charset parameter.
struct MediaType {
  std::string type;                    // "text/plain"; "" when the value is empty or invalid
  std::optional<std::string> charset;  // as sent, unquoted
};
MediaType parse_media_type(std::string_view value);

}  // namespace mgspool
