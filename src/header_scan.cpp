#include "header_scan.h"

#include <gmime/gmime.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "gobject_ptr.h"
#include "request_error.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

// A line is kept up to this many bytes. A longer line exceeds the header block limit by
// itself, and a boundary comes from a header, so it is never longer either.
constexpr std::size_t k_max_kept_line_bytes = k_max_header_block_bytes;

bool is_blank_or_cr(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// GMime's linear white space, which may follow a boundary on its line.
bool is_lwsp(char c) { return is_blank_or_cr(c) || c == '\n'; }

std::string_view trim_right(std::string_view text) {
  while (!text.empty() && is_blank_or_cr(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

std::string_view trim_lwsp_right(std::string_view text) {
  while (!text.empty() && is_lwsp(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

struct ParserOptionsDeleter {
  void operator()(GMimeParserOptions* options) const { g_mime_parser_options_free(options); }
};

void note_invalid_content_type(gint64, GMimeParserWarning warning, const gchar*, gpointer flag) {
  if (warning == GMIME_WARN_INVALID_CONTENT_TYPE) {
    *static_cast<bool*>(flag) = true;
  }
}

// Returns whether GMime can read a media type from the value. Where it cannot, GMime takes
// the part for text/plain, or for message/rfc822 inside a multipart/digest.
bool has_valid_media_type(const std::string& value) {
  bool invalid = false;
  std::unique_ptr<GMimeParserOptions, ParserOptionsDeleter> options(g_mime_parser_options_new());
  g_mime_parser_options_set_warning_callback(options.get(), &note_invalid_content_type, &invalid);
  auto type = GObjectPtr<GMimeContentType>::adopt(g_mime_content_type_parse(options.get(), value.c_str()));
  return type && !invalid;
}

// The delimiters ("--boundary") declared so far. GMime takes a line for a delimiter when it
// starts with one and only white space follows, and a boundary may itself end in white
// space. So each delimiter is kept as its text without trailing white space plus a trie of
// the white space endings declared with it, and a match costs time linear in the line.
class DelimiterSet {
 public:
  struct Match {
    bool found = false;
    bool digest = false;  // a matching boundary belongs to a multipart/digest
  };

  bool empty() const { return m_roots.empty(); }

  void add(std::string_view delimiter, bool digest) {
    std::string_view stem = trim_lwsp_right(delimiter);
    auto root = m_roots.find(stem);
    if (root == m_roots.end()) {
      root = m_roots.emplace(std::string(stem), new_node()).first;
    }
    std::size_t node = root->second;
    for (char c : delimiter.substr(stem.size())) {
      std::size_t index = suffix_index(c);
      if (m_nodes[node].children[index] == k_none) {
        std::size_t created = new_node();
        m_nodes[node].children[index] = created;
      }
      node = m_nodes[node].children[index];
    }
    m_nodes[node].terminal = true;
    m_nodes[node].digest = m_nodes[node].digest || digest;
  }

  // Matches a line, given without its line break and without the one final CR that GMime
  // drops. When text_is_cut, the line goes on past text with white space only, and every
  // declared ending longer than the white space in text is taken to match too.
  Match match_open(std::string_view text, bool text_is_cut) const {
    Match match;
    std::string_view stem = trim_right(text);
    auto root = m_roots.find(stem);
    if (root == m_roots.end()) {
      return match;
    }
    std::size_t node = root->second;
    std::string_view padding = text.substr(stem.size());
    for (std::size_t at = 0;; ++at) {
      match.found = match.found || m_nodes[node].terminal;
      match.digest = match.digest || (m_nodes[node].terminal && m_nodes[node].digest);
      if (at == padding.size()) {
        if (text_is_cut) {
          collect_below(node, match);
        }
        return match;
      }
      node = m_nodes[node].children[suffix_index(padding[at])];
      if (node == k_none) {
        return match;
      }
    }
  }

  // Whether delimiter is declared, exactly as given.
  bool contains(std::string_view delimiter) const {
    std::string_view stem = trim_lwsp_right(delimiter);
    auto root = m_roots.find(stem);
    if (root == m_roots.end()) {
      return false;
    }
    std::size_t node = root->second;
    for (char c : delimiter.substr(stem.size())) {
      node = m_nodes[node].children[suffix_index(c)];
      if (node == k_none) {
        return false;
      }
    }
    return m_nodes[node].terminal;
  }

 private:
  static constexpr std::size_t k_none = static_cast<std::size_t>(-1);

  struct Node {
    std::array<std::size_t, 4> children{k_none, k_none, k_none, k_none};
    bool terminal = false;
    bool digest = false;
  };

  static std::size_t suffix_index(char c) {
    switch (c) {
      case ' ':
        return 0;
      case '\t':
        return 1;
      case '\r':
        return 2;
      default:
        return 3;  // '\n'
    }
  }

  std::size_t new_node() {
    m_nodes.emplace_back();
    return m_nodes.size() - 1;
  }

  void collect_below(std::size_t node, Match& match) const {
    std::vector<std::size_t> pending{node};
    while (!pending.empty()) {
      const Node& current = m_nodes[pending.back()];
      pending.pop_back();
      match.found = match.found || current.terminal;
      match.digest = match.digest || (current.terminal && current.digest);
      for (std::size_t child : current.children) {
        if (child != k_none) {
          pending.push_back(child);
        }
      }
    }
  }

  std::map<std::string, std::size_t, std::less<>> m_roots;
  std::vector<Node> m_nodes;
};

std::string count_of(std::uint64_t count, const char* noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && g_ascii_strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// One line of the file without its '\n', cut to k_max_kept_line_bytes.
struct Line {
  std::uint64_t offset = 0;
  std::string_view text;
  std::uint64_t length = 0;        // bytes without the '\n', before any cut
  bool has_newline = false;
  bool tail_is_blank = true;       // the bytes cut off were only spaces, tabs and CRs
  std::uint64_t tail_semicolons = 0;  // ';' in the bytes cut off
};

enum class FieldKind { other, content_type, content_transfer_encoding, content_disposition };

FieldKind field_kind(std::string_view name) {
  if (equals_ignoring_case(name, "content-type")) {
    return FieldKind::content_type;
  }
  if (equals_ignoring_case(name, "content-transfer-encoding")) {
    return FieldKind::content_transfer_encoding;
  }
  if (equals_ignoring_case(name, "content-disposition")) {
    return FieldKind::content_disposition;
  }
  return FieldKind::other;
}

// GMime parses a message/rfc822, message/news or message/global part as an attached
// message unless its Content-Transfer-Encoding is one that hides the lines.
bool hides_lines(const std::string& encoding) {
  std::string trimmed(trim_right(encoding.substr(std::min(encoding.find_first_not_of(" \t"), encoding.size()))));
  GMimeContentEncoding value = g_mime_content_encoding_from_string(trimmed.c_str());
  return value == GMIME_CONTENT_ENCODING_BASE64 || value == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
         value == GMIME_CONTENT_ENCODING_UUENCODE;
}

// Sizes of all header blocks read so far.
struct Totals {
  std::uint64_t blocks = 0;
  std::uint64_t bytes = 0;
  std::uint64_t fields = 0;
  std::uint64_t parameters = 0;
};

struct HeaderBlock {
  std::uint64_t offset = 0;     // of its first line
  std::uint64_t parse_end = 0;  // where GMime's input ends when this block is too large
  std::string kind;             // for the defect text
  std::uint64_t bytes = 0;
  std::uint64_t fields = 0;
  std::uint64_t max_field_parameters = 0;
  bool in_digest = false;        // the part of a multipart/digest
  std::vector<std::string> content_types;
  std::vector<std::string> encodings;
};

class HeaderBlockScanner {
 public:
  HeaderBlockScanner(std::uint64_t start_offset, const std::optional<std::string>& initial_boundary)
      : m_line_offset(start_offset) {
    if (initial_boundary) {
      m_in_header = false;
      m_delimiters.add("--" + *initial_boundary, false);
    } else {
      start_block(start_offset, start_offset, "the top-level header");
    }
  }

  void consume(std::string_view chunk);
  void finish();
  bool done() const { return m_done; }
  std::optional<HeaderLimitViolation> violation() const;

 private:
  void append_to_line(std::string_view piece);
  void deliver_line(bool has_newline);

  void on_header_line(const Line& line);
  void on_body_line(const Line& line);
  void start_field(const Line& line);
  void end_field();
  void start_block(std::uint64_t offset, std::uint64_t parse_end, std::string kind);
  void end_block(std::uint64_t next_offset, bool blank_line);
  bool register_declared_types();
  void check_limits();

  DelimiterSet::Match match_open_delimiter(const Line& line) const;
  bool is_open_delimiter(const Line& line) const { return match_open_delimiter(line).found; }
  bool keeps_field_value() const {
    return m_exceeded_limit.empty() &&
           (m_field_kind == FieldKind::content_type || m_field_kind == FieldKind::content_transfer_encoding);
  }
  std::string describe_violation() const;
  bool is_close_delimiter(const Line& line) const;

  // Line assembly.
  std::string m_line;
  std::uint64_t m_line_offset;
  std::uint64_t m_line_length = 0;
  bool m_line_tail_is_blank = true;
  std::uint64_t m_line_tail_semicolons = 0;
  std::uint64_t m_previous_line_break_bytes = 0;

  // Structure.
  bool m_in_header = true;
  HeaderBlock m_block;
  DelimiterSet m_delimiters;
  Totals m_totals;

  // The field being read.
  bool m_field_open = false;
  FieldKind m_field_kind = FieldKind::other;
  std::string m_field_value;  // kept for Content-Type and Content-Transfer-Encoding only
  std::uint64_t m_field_parameters = 0;

  // Once a limit is exceeded, the scan reads on to the end of that block to report its
  // sizes, then stops.
  std::string m_exceeded_limit;  // "the limit of ...", empty while none is exceeded
  bool m_exceeded_message_total = false;
  std::optional<HeaderLimitViolation> m_violation;
  bool m_done = false;
};

void HeaderBlockScanner::consume(std::string_view chunk) {
  while (!chunk.empty() && !m_done) {
    const void* newline = std::memchr(chunk.data(), '\n', chunk.size());
    if (newline == nullptr) {
      append_to_line(chunk);
      return;
    }
    std::size_t length = static_cast<std::size_t>(static_cast<const char*>(newline) - chunk.data());
    append_to_line(chunk.substr(0, length));
    deliver_line(true);
    chunk.remove_prefix(length + 1);
  }
}

void HeaderBlockScanner::finish() {
  if (!m_done && m_line_length > 0) {
    deliver_line(false);
  }
  if (!m_done && m_in_header) {
    end_block(m_line_offset, false);
  }
  m_done = true;
}

void HeaderBlockScanner::append_to_line(std::string_view piece) {
  std::size_t room = k_max_kept_line_bytes - m_line.size();
  m_line.append(piece.substr(0, room));
  if (piece.size() > room) {
    std::string_view rest = piece.substr(room);
    m_line_tail_is_blank = m_line_tail_is_blank && std::all_of(rest.begin(), rest.end(), is_blank_or_cr);
    m_line_tail_semicolons += static_cast<std::uint64_t>(std::count(rest.begin(), rest.end(), ';'));
  }
  m_line_length += piece.size();
}

void HeaderBlockScanner::deliver_line(bool has_newline) {
  Line line{m_line_offset, m_line, m_line_length, has_newline, m_line_tail_is_blank, m_line_tail_semicolons};
  if (m_in_header) {
    on_header_line(line);
  } else {
    on_body_line(line);
  }

  bool ends_in_cr = !m_line.empty() && m_line.back() == '\r' && m_line_length == m_line.size();
  m_previous_line_break_bytes = 0;
  if (has_newline) {
    m_previous_line_break_bytes = ends_in_cr ? 2 : 1;
  }
  m_line_offset += m_line_length + (has_newline ? 1 : 0);
  m_line.clear();
  m_line_length = 0;
  m_line_tail_is_blank = true;
  m_line_tail_semicolons = 0;
}

// The line as GMime compares it with a boundary: without one final CR.
std::string_view compared_text(const Line& line) {
  bool cut = line.length > line.text.size();
  if (!cut && !line.text.empty() && line.text.back() == '\r') {
    return line.text.substr(0, line.text.size() - 1);
  }
  return line.text;
}

DelimiterSet::Match HeaderBlockScanner::match_open_delimiter(const Line& line) const {
  if (m_delimiters.empty() || line.text.substr(0, 2) != "--" || !line.tail_is_blank) {
    return {};
  }
  return m_delimiters.match_open(compared_text(line), line.length > line.text.size());
}

// A close delimiter is "--boundary--" followed by white space only. The boundary's own
// trailing white space, if any, must then be there exactly, as GMime compares it.
bool HeaderBlockScanner::is_close_delimiter(const Line& line) const {
  std::string_view trimmed = trim_right(compared_text(line));
  if (m_delimiters.empty() || trimmed.size() < 4 || trimmed.substr(0, 2) != "--" ||
      trimmed.substr(trimmed.size() - 2) != "--" || !line.tail_is_blank) {
    return false;
  }
  return m_delimiters.contains(trimmed.substr(0, trimmed.size() - 2));
}

void HeaderBlockScanner::on_body_line(const Line& line) {
  DelimiterSet::Match delimiter = match_open_delimiter(line);
  if (delimiter.found) {
    std::uint64_t part_start = line.offset - m_previous_line_break_bytes;
    std::uint64_t next = line.offset + line.length + (line.has_newline ? 1 : 0);
    start_block(next, part_start, "the header of the part");
    m_block.in_digest = delimiter.digest;
  }
}

void HeaderBlockScanner::on_header_line(const Line& line) {
  std::uint64_t next = line.offset + line.length + (line.has_newline ? 1 : 0);
  bool blank = line.length == 0 || (line.length == 1 && line.text[0] == '\r');
  if (blank) {
    end_block(next, true);
    return;
  }
  // GMime ends a part's header at a delimiter line even without an empty line before it.
  if (is_open_delimiter(line)) {
    end_block(next, false);
    if (!m_done) {
      on_body_line(line);
    }
    return;
  }
  if (is_close_delimiter(line)) {
    end_block(next, false);
    return;
  }

  std::uint64_t line_bytes = next - line.offset;
  m_block.bytes += line_bytes;
  m_totals.bytes += line_bytes;
  bool continuation = line.text[0] == ' ' || line.text[0] == '\t';
  if (continuation && m_field_open) {
    if (keeps_field_value()) {
      m_field_value.append(trim_right(line.text));
    }
    if (m_field_kind == FieldKind::content_type || m_field_kind == FieldKind::content_disposition) {
      m_field_parameters +=
          static_cast<std::uint64_t>(std::count(line.text.begin(), line.text.end(), ';')) + line.tail_semicolons;
    }
  } else {
    end_field();
    start_field(line);
  }
  m_block.max_field_parameters = std::max(m_block.max_field_parameters, m_field_parameters);
  check_limits();
}

// A line without ':' is not a field: GMime 3.2 drops it.
void HeaderBlockScanner::start_field(const Line& line) {
  std::size_t colon = line.text.find(':');
  if (colon == std::string_view::npos) {
    return;
  }
  m_field_open = true;
  ++m_block.fields;
  ++m_totals.fields;
  m_field_kind = field_kind(trim_right(line.text.substr(0, colon)));
  std::string_view value = line.text.substr(colon + 1);
  if (keeps_field_value()) {
    m_field_value.assign(trim_right(value));
  }
  if (m_field_kind == FieldKind::content_type || m_field_kind == FieldKind::content_disposition) {
    m_field_parameters = static_cast<std::uint64_t>(std::count(value.begin(), value.end(), ';')) + line.tail_semicolons;
  }
}

void HeaderBlockScanner::end_field() {
  if (m_field_open && m_field_kind == FieldKind::content_type) {
    m_block.content_types.push_back(std::move(m_field_value));
  } else if (m_field_open && m_field_kind == FieldKind::content_transfer_encoding) {
    m_block.encodings.push_back(std::move(m_field_value));
  }
  m_totals.parameters += m_field_parameters;
  m_field_open = false;
  m_field_kind = FieldKind::other;
  m_field_value.clear();
  m_field_parameters = 0;
}

void HeaderBlockScanner::start_block(std::uint64_t offset, std::uint64_t parse_end, std::string kind) {
  m_in_header = true;
  m_block = HeaderBlock{};
  m_block.offset = offset;
  m_block.parse_end = parse_end;
  m_block.kind = std::move(kind);
  ++m_totals.blocks;
  check_limits();
}

void HeaderBlockScanner::end_block(std::uint64_t next_offset, bool blank_line) {
  end_field();
  m_in_header = false;
  if (!m_exceeded_limit.empty()) {
    m_violation = HeaderLimitViolation{m_block.parse_end, describe_violation()};
    m_done = true;
    return;
  }

  bool attached_message = register_declared_types();
  if (attached_message && blank_line) {
    start_block(next_offset, m_block.parse_end, "the header of the attached message");
  }
}

// Adds the delimiters of every multipart Content-Type in the block. Returns true when the
// block starts a part that GMime parses as an attached message: one whose Content-Type
// declares it, or a part of a multipart/digest without a valid Content-Type (RFC 2046
// 5.1.5 makes message/rfc822 its default). With two Content-Type fields GMime uses one of
// them, but the scan follows both.
bool HeaderBlockScanner::register_declared_types() {
  bool is_message_type = m_block.in_digest && m_block.content_types.empty();
  for (const std::string& value : m_block.content_types) {
    auto type = GObjectPtr<GMimeContentType>::adopt(g_mime_content_type_parse(nullptr, value.c_str()));
    if (!type) {
      continue;
    }
    const char* boundary = g_mime_content_type_get_parameter(type.get(), "boundary");
    if (g_mime_content_type_is_type(type.get(), "multipart", "*") && boundary != nullptr && *boundary != '\0') {
      m_delimiters.add("--" + std::string(boundary), g_mime_content_type_is_type(type.get(), "multipart", "digest"));
    }
    is_message_type = is_message_type || g_mime_content_type_is_type(type.get(), "message", "rfc822") ||
                      g_mime_content_type_is_type(type.get(), "message", "rfc2822") ||
                      g_mime_content_type_is_type(type.get(), "message", "news") ||
                      g_mime_content_type_is_type(type.get(), "message", "global") ||
                      (m_block.in_digest && !has_valid_media_type(value));
  }
  bool all_encodings_hide_lines = !m_block.encodings.empty() &&
                                  std::all_of(m_block.encodings.begin(), m_block.encodings.end(), hides_lines);
  return is_message_type && !all_encodings_hide_lines;
}

void HeaderBlockScanner::check_limits() {
  if (!m_exceeded_limit.empty()) {
    return;
  }
  if (m_block.bytes > k_max_header_block_bytes) {
    m_exceeded_limit = "the limit of " + std::to_string(k_max_header_block_bytes) + " bytes per header block";
  } else if (m_block.fields > k_max_header_block_fields) {
    m_exceeded_limit = "the limit of " + std::to_string(k_max_header_block_fields) + " fields per header block";
  } else if (m_field_parameters > k_max_header_field_parameters) {
    m_exceeded_limit = "the limit of " + std::to_string(k_max_header_field_parameters) + " parameters per field";
  } else if (m_totals.blocks > k_max_message_header_blocks) {
    m_exceeded_limit = "the limit of " + std::to_string(k_max_message_header_blocks) + " header blocks per message";
    m_exceeded_message_total = true;
  } else if (m_totals.bytes > k_max_message_header_bytes) {
    m_exceeded_limit = "the limit of " + std::to_string(k_max_message_header_bytes) + " header bytes per message";
    m_exceeded_message_total = true;
  } else if (m_totals.fields > k_max_message_header_fields) {
    m_exceeded_limit = "the limit of " + std::to_string(k_max_message_header_fields) + " header fields per message";
    m_exceeded_message_total = true;
  } else if (m_totals.parameters + m_field_parameters > k_max_message_header_parameters) {
    m_exceeded_limit =
        "the limit of " + std::to_string(k_max_message_header_parameters) + " header parameters per message";
    m_exceeded_message_total = true;
  }
  if (!m_exceeded_limit.empty()) {
    m_field_value.clear();
    m_field_value.shrink_to_fit();
  }
}

// For example: "the header of the part at byte 120 has 2000000 fields in 14000000 bytes:
// more than the limit of 10000 fields per header block".
std::string HeaderBlockScanner::describe_violation() const {
  std::string text = m_block.kind + " at byte " + std::to_string(m_block.offset) + " has " +
                     count_of(m_block.fields, "field") + " in " + count_of(m_block.bytes, "byte");
  if (m_block.max_field_parameters > 0) {
    text += ", up to " + count_of(m_block.max_field_parameters, "parameter") + " in one field";
  }
  if (m_exceeded_message_total) {
    text += ", and the " + count_of(m_totals.blocks, "header block") + " up to its end have " +
            count_of(m_totals.fields, "field") + " in " +
            count_of(m_totals.bytes, "byte") + " with " + count_of(m_totals.parameters, "parameter");
  }
  return text + ": more than " + m_exceeded_limit;
}

std::optional<HeaderLimitViolation> HeaderBlockScanner::violation() const { return m_violation; }

}  // namespace

std::optional<HeaderLimitViolation> scan_header_blocks(int fd, std::uint64_t start_offset, const std::string& name,
                                                       const std::optional<std::string>& initial_boundary) {
  HeaderBlockScanner scanner(start_offset, initial_boundary);
  std::string buffer(k_io_buffer_bytes, '\0');
  std::uint64_t offset = start_offset;
  while (!scanner.done()) {
    ssize_t count = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      throw_system_error("read " + name, errno);
    }
    if (count == 0) {
      break;
    }
    scanner.consume(std::string_view(buffer.data(), static_cast<std::size_t>(count)));
    offset += static_cast<std::uint64_t>(count);
  }
  scanner.finish();
  return scanner.violation();
}

}  // namespace mgspool
