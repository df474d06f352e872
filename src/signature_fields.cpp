#include "signature_fields.h"

#include <optional>
#include <vector>

#include "ascii.h"
#include "file_io.h"
#include "form.h"
#include "mime_parameters.h"
#include "request_error.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

// Header blocks of Mailgun's form parts are a few hundred bytes; a signature field's part
// header is kept up to this size, and the rest of a longer block is ignored.
constexpr std::size_t k_max_kept_header_bytes = 16 * 1024;

// White space that may follow a boundary on its line, with the line break.
constexpr std::string_view k_blank = " \t\r\n";

// Bytes kept of any one line: enough for a delimiter and for a capped field value.
constexpr std::size_t k_max_kept_line_bytes = 4 * 1024;

// The counter and value of a signature field; both null for any other field.
struct Slot {
  int* count = nullptr;
  std::string* value = nullptr;
};

Slot slot_for(SignatureFields& fields, std::string_view name) {
  if (name == "timestamp") {
    return {&fields.timestamp_count, &fields.timestamp};
  }
  if (name == "token") {
    return {&fields.token_count, &fields.token};
  }
  if (name == "signature") {
    return {&fields.signature_count, &fields.signature};
  }
  return {};
}

// Appends to value, keeping at most one byte past the longest valid value.
void append_capped(std::string& value, std::string_view bytes) {
  std::size_t room = k_max_signature_field_bytes + 1 - std::min(value.size(), k_max_signature_field_bytes + 1);
  value.append(bytes.substr(0, room));
}

// Returns the Content-Disposition value in a part's header block, unfolded, or nullopt.
std::optional<std::string> content_disposition(const std::string& header_block) {
  std::optional<std::string> found;
  std::size_t start = 0;
  while (start < header_block.size()) {
    std::size_t end = header_block.find('\n', start);
    std::string_view line(header_block.data() + start, (end == std::string::npos ? header_block.size() : end) - start);
    start = end == std::string::npos ? header_block.size() : end + 1;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    bool continuation = !line.empty() && (line.front() == ' ' || line.front() == '\t');
    if (continuation) {
      std::size_t text_start = line.find_first_not_of(" \t");
      if (found && text_start != std::string_view::npos) {
        found->append(" ").append(line.substr(text_start));
      }
      continue;
    }
    if (found) {
      break;
    }
    std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && to_lower_ascii(line.substr(0, colon)) == "content-disposition") {
      found = std::string(line.substr(colon + 1));
    }
  }
  return found;
}

// Follows the lines of a form: preamble, then for each part its header block and value.
class MultipartSignatureScanner {
 public:
  explicit MultipartSignatureScanner(std::string boundary) : m_delimiter("--" + std::move(boundary)) {}

  void feed(std::string_view chunk) {
    while (!chunk.empty()) {
      std::size_t end = chunk.find('\n');
      std::string_view piece = chunk.substr(0, end == std::string_view::npos ? chunk.size() : end + 1);
      std::size_t kept = std::min(piece.size(), k_max_kept_line_bytes - std::min(m_line.size(), k_max_kept_line_bytes));
      m_line.append(piece.substr(0, kept));
      if (piece.substr(kept).find_first_not_of(k_blank) != std::string_view::npos) {
        m_dropped_text = true;
      }
      m_line_bytes += piece.size();
      if (end != std::string_view::npos) {
        end_line();
      }
      chunk.remove_prefix(piece.size());
    }
  }

  SignatureFields finish() {
    if (m_line_bytes > 0) {
      end_line();
    }
    m_fields.closed = m_state == State::epilogue;
    return m_fields;
  }

 private:
  enum class State { preamble, headers, value, epilogue };

  // A delimiter line is "--" and the boundary, "--" more for the closing one, then only
  // white space: GMime's rule, so both passes split the form alike.
  bool is_delimiter(bool& closing) const {
    std::string_view line = m_line;
    if (m_dropped_text || !line.starts_with(m_delimiter)) {
      return false;
    }
    line.remove_prefix(m_delimiter.size());
    closing = line.starts_with("--");
    if (closing) {
      line.remove_prefix(2);
    }
    return line.find_first_not_of(k_blank) == std::string_view::npos;
  }

  void end_line() {
    bool closing = false;
    if (m_state != State::epilogue && is_delimiter(closing)) {
      end_part();
      m_state = closing ? State::epilogue : State::headers;
      m_header_block.clear();
    } else if (m_state == State::headers) {
      if (m_line == "\r\n" || m_line == "\n") {
        start_value();
      } else if (m_header_block.size() < k_max_kept_header_bytes) {
        m_header_block.append(m_line);
      }
    } else if (m_state == State::value && m_slot.value != nullptr) {
      // The kept part of a line is longer than any valid value, so a cut line still fails.
      append_capped(*m_slot.value, m_line);
    }
    m_line.clear();
    m_line_bytes = 0;
    m_dropped_text = false;
  }

  void start_value() {
    m_state = State::value;
    m_slot = {};
    std::optional<std::string> disposition = content_disposition(m_header_block);
    if (!disposition) {
      return;
    }
    std::vector<MimeParameter> parameters = parse_mime_parameters(*disposition);
    for (const MimeParameter& parameter : parameters) {
      if (parameter.name == "filename") {
        return;  // a file part is never a signature field
      }
    }
    std::optional<std::string> name = decode_mime_parameter(parameters, "name", "");
    if (name) {
      m_slot = slot_for(m_fields, *name);
    }
    if (m_slot.value != nullptr) {
      ++*m_slot.count;
      m_slot.value->clear();
    }
  }

  // The line break before a delimiter belongs to the delimiter, not to the value.
  void end_part() {
    if (m_state == State::value && m_slot.value != nullptr) {
      std::string& value = *m_slot.value;
      if (!value.empty() && value.back() == '\n') {
        value.pop_back();
        if (!value.empty() && value.back() == '\r') {
          value.pop_back();
        }
      }
    }
    m_slot = {};
  }

  std::string m_delimiter;
  State m_state = State::preamble;
  std::string m_line;  // the first k_max_kept_line_bytes of the current line
  std::size_t m_line_bytes = 0;
  bool m_dropped_text = false;  // the line had more than white space past the kept bytes
  std::string m_header_block;
  Slot m_slot;
  SignatureFields m_fields;
};

class SignatureFieldSink : public FieldSink {
 public:
  explicit SignatureFieldSink(SignatureFields& fields) : m_fields(fields) {}

  void begin_field(const FieldHead& head) override {
    m_slot = head.is_file ? Slot{} : slot_for(m_fields, head.name);
    if (m_slot.value != nullptr) {
      ++*m_slot.count;
      m_slot.value->clear();
    }
  }

  void append(std::string_view bytes) override {
    if (m_slot.value != nullptr) {
      append_capped(*m_slot.value, bytes);
    }
  }

  void end_field() override { m_slot = {}; }

 private:
  SignatureFields& m_fields;
  Slot m_slot;
};

}  // namespace

SignatureFields read_multipart_signature_fields(int fd, std::string_view content_type) {
  if (to_lower_ascii(leading_token(content_type)) != "multipart/form-data") {
    throw RequestError(Outcome::malformed_request, "multipart form: the Content-Type is not multipart/form-data");
  }
  std::optional<std::string> boundary = decode_mime_parameter(parse_mime_parameters(content_type), "boundary", "");
  if (!boundary || boundary->empty()) {
    throw RequestError(Outcome::malformed_request, "multipart form: the Content-Type has no boundary");
  }
  MultipartSignatureScanner scanner(*boundary);
  read_chunks(fd, "multipart request body", [&](std::string_view chunk) { scanner.feed(chunk); });
  return scanner.finish();
}

SignatureFields read_urlencoded_signature_fields(int fd) {
  SignatureFields fields;
  SignatureFieldSink sink(fields);
  parse_urlencoded_file(fd, sink);
  return fields;
}

}  // namespace mgspool
