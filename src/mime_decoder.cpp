#include "mime_decoder.h"

#include <fcntl.h>
#include <gmime/gmime.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <tuple>
#include <mutex>
#include <vector>

#include "ascii.h"
#include "charset.h"
#include "file_io.h"
#include "filename.h"
#include "gobject_ptr.h"
#include "header_scan.h"
#include "header_text.h"
#include "mime_parameters.h"
#include "part_writer.h"
#include "request_error.h"
#include "spool_limits.h"
#include "tnef.h"

namespace mgspool {

namespace {

// Bytes of a parser warning's item that go into the defect text.
constexpr std::size_t k_max_defect_item_bytes = 200;

// Bytes at the start of message.eml that decide between CRLF and LF line ends.
constexpr std::size_t k_newline_probe_bytes = 64 * 1024;

void initialize_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

struct ParserOptionsDeleter {
  void operator()(GMimeParserOptions* options) const { g_mime_parser_options_free(options); }
};
using ParserOptions = std::unique_ptr<GMimeParserOptions, ParserOptionsDeleter>;

struct PartIterDeleter {
  void operator()(GMimePartIter* iter) const { g_mime_part_iter_free(iter); }
};
using PartIter = std::unique_ptr<GMimePartIter, PartIterDeleter>;

std::string take_g_string(char* owned) {
  std::string text = owned != nullptr ? owned : "";
  g_free(owned);
  return text;
}

std::optional<std::string> raw_header(GMimeObject* object, const char* name) {
  GMimeHeaderList* headers = g_mime_object_get_header_list(object);
  GMimeHeader* header = headers != nullptr ? g_mime_header_list_get_header(headers, name) : nullptr;
  const char* raw = header != nullptr ? g_mime_header_get_raw_value(header) : nullptr;
  if (raw == nullptr) {
    return std::nullopt;
  }
  return std::string(raw);
}

// A Content-Type of "text" alone or "text plain" is invalid, so GMime reads it as
// application/octet-stream. Mail clients show such a part as plain text, and so does
// the decoder.
bool is_broken_text_type(GMimeObject* object) {
  std::optional<std::string> raw = raw_header(object, "Content-Type");
  std::string token = raw ? leading_token(*raw) : "";
  if (token.rfind("text", 0) != 0 || token.find('/') != std::string::npos) {
    return false;
  }
  return token.size() == 4 || !g_ascii_isalnum(token[4]);
}

std::string mime_type_of(GMimeObject* object) {
  GMimeContentType* type = g_mime_object_get_content_type(object);
  if (type == nullptr) {
    return "application/octet-stream";
  }
  std::string mime_type = sanitize_utf8(to_lower_ascii(take_g_string(g_mime_content_type_get_mime_type(type))));
  if (mime_type == "application/octet-stream" && is_broken_text_type(object)) {
    return "text/plain";
  }
  return mime_type;
}

bool has_subtype(GMimeObject* object, const char* subtype) {
  GMimeContentType* type = object != nullptr ? g_mime_object_get_content_type(object) : nullptr;
  const char* actual = type != nullptr ? g_mime_content_type_get_media_subtype(type) : nullptr;
  return actual != nullptr && g_ascii_strcasecmp(actual, subtype) == 0;
}

std::optional<std::string> declared_charset(GMimeObject* object) {
  std::optional<std::string> content_type = raw_header(object, "Content-Type");
  if (!content_type) {
    return std::nullopt;
  }
  std::optional<std::string> charset = decode_mime_parameter(parse_mime_parameters(*content_type), "charset", "");
  if (charset && charset->empty()) {
    return std::nullopt;
  }
  return charset;
}

std::size_t path_depth(const std::string& path) { return static_cast<std::size_t>(std::count(path.begin(), path.end(), '.')) + 1; }

std::string warning_name(GMimeParserWarning warning) {
  switch (warning) {
    case GMIME_WARN_DUPLICATED_HEADER: return "duplicated header";
    case GMIME_WARN_DUPLICATED_PARAMETER: return "duplicated parameter";
    case GMIME_WARN_UNENCODED_8BIT_HEADER: return "unencoded 8-bit header";
    case GMIME_WARN_INVALID_CONTENT_TYPE: return "invalid content type";
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE: return "invalid RFC 2047 header value";
    case GMIME_WARN_MALFORMED_MULTIPART: return "malformed multipart";
    case GMIME_WARN_TRUNCATED_MESSAGE: return "truncated message";
    case GMIME_WARN_MALFORMED_MESSAGE: return "malformed message";
    case GMIME_CRIT_INVALID_HEADER_NAME: return "critical: invalid header name";
    case GMIME_CRIT_CONFLICTING_HEADER: return "critical: conflicting header";
    case GMIME_CRIT_CONFLICTING_PARAMETER: return "critical: conflicting parameter";
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: return "critical: multipart without boundary";
    case GMIME_WARN_INVALID_PARAMETER: return "invalid parameter";
    case GMIME_WARN_INVALID_ADDRESS_LIST: return "invalid address list";
    case GMIME_CRIT_NESTING_OVERFLOW: return "critical: nesting overflow";
    case GMIME_WARN_PART_WITHOUT_CONTENT: return "part without content";
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT: return "critical: part without headers or content";
  }
  return "parser warning " + std::to_string(static_cast<int>(warning));
}

UniqueFd open_for_reading(int dir_fd, const std::string& name) {
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    throw_system_error("open " + name, errno);
  }
  return UniqueFd(fd);
}

// Layout facts from the first bytes of message.eml. Some tools leave blank lines before
// the header, and GMime then rejects the whole file.
struct FileStart {
  std::size_t blank_prefix_bytes = 0;
  bool crlf = false;  // the first header line ends in CRLF
};

FileStart inspect_file_start(int fd, const std::string& name) {
  std::string probe(k_newline_probe_bytes, '\0');
  ssize_t count;
  do {
    count = ::pread(fd, probe.data(), probe.size(), 0);
  } while (count < 0 && errno == EINTR);
  if (count < 0) {
    throw_system_error("read " + name, errno);
  }
  probe.resize(static_cast<std::size_t>(count));

  FileStart start;
  for (;;) {
    std::size_t newline = probe.find('\n', start.blank_prefix_bytes);
    if (newline == std::string::npos) {
      break;
    }
    std::string_view line(probe.data() + start.blank_prefix_bytes, newline - start.blank_prefix_bytes);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
      break;
    }
    start.blank_prefix_bytes = newline + 1;
  }
  std::size_t newline = probe.find('\n', start.blank_prefix_bytes);
  start.crlf = newline != std::string::npos && newline > start.blank_prefix_bytes && probe[newline - 1] == '\r';
  return start;
}

std::string read_whole_file(int dir_fd, const std::string& name) {
  UniqueFd fd = open_for_reading(dir_fd, name);
  std::string bytes;
  std::vector<char> buffer(k_io_buffer_bytes);
  for (;;) {
    std::size_t count = read_some(fd.get(), buffer.data(), buffer.size(), name);
    if (count == 0) {
      return bytes;
    }
    bytes.append(buffer.data(), count);
  }
}

// A file being parsed, and what must stay alive while objects parsed from it are used:
// with persistence on, parts refer to the stream instead of holding copies.
struct ParsedFile {
  UniqueFd fd;
  GObjectPtr<GMimeStream> stream;
  GObjectPtr<GMimeParser> parser;
};

// Parses fd from start_offset to end_offset, or to its end when end_offset is nullopt.
ParsedFile open_parser(UniqueFd fd, std::uint64_t start_offset = 0, std::optional<std::uint64_t> end_offset = {}) {
  ParsedFile parsed;
  parsed.fd = std::move(fd);
  gint64 end = end_offset ? static_cast<gint64>(*end_offset) : -1;
  parsed.stream = GObjectPtr<GMimeStream>::adopt(
      g_mime_stream_fs_new_with_bounds(parsed.fd.get(), static_cast<gint64>(start_offset), end));
  g_mime_stream_fs_set_owner(GMIME_STREAM_FS(parsed.stream.get()), FALSE);
  parsed.parser = GObjectPtr<GMimeParser>::adopt(g_mime_parser_new_with_stream(parsed.stream.get()));
  g_mime_parser_set_persist_stream(parsed.parser.get(), TRUE);
  return parsed;
}

struct HeaderAt {
  gint64 offset;
  std::string name;
  std::string value;
};

void collect_headers(GMimeObject* object, std::vector<HeaderAt>& headers) {
  GMimeHeaderList* list = object != nullptr ? g_mime_object_get_header_list(object) : nullptr;
  int count = list != nullptr ? g_mime_header_list_get_count(list) : 0;
  headers.reserve(headers.size() + static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    GMimeHeader* header = g_mime_header_list_get_header_at(list, i);
    const char* name = g_mime_header_get_name(header);
    const char* raw = g_mime_header_get_raw_value(header);
    headers.push_back({g_mime_header_get_offset(header), sanitize_utf8(name != nullptr ? name : ""),
                       decode_unlabelled_bytes(unfold_header_value(raw != nullptr ? raw : ""), "")});
  }
}

// GMime keeps the Content-* fields of the top level in the MIME part's own list, so
// the header offsets merge both lists back into the order of the file. Returns the first
// k_max_recorded_headers fields and the number of fields in the header.
std::pair<HeaderList, std::size_t> top_level_headers(GMimeMessage* message) {
  std::vector<HeaderAt> headers;
  collect_headers(GMIME_OBJECT(message), headers);
  collect_headers(g_mime_message_get_mime_part(message), headers);
  std::stable_sort(headers.begin(), headers.end(),
                   [](const HeaderAt& a, const HeaderAt& b) { return a.offset < b.offset; });
  HeaderList list;
  std::size_t recorded = std::min(headers.size(), k_max_recorded_headers);
  list.reserve(recorded);
  for (std::size_t i = 0; i < recorded; ++i) {
    list.emplace_back(std::move(headers[i].name), std::move(headers[i].value));
  }
  return {std::move(list), headers.size()};
}

// The charset of the first text part that declares one other than us-ascii: the best
// guess for raw 8-bit bytes in its names.
std::string text_parts_charset(GMimeMessage* message) {
  PartIter iter(g_mime_part_iter_new(GMIME_OBJECT(message)));
  std::size_t visited = 0;
  for (bool valid = g_mime_part_iter_is_valid(iter.get()); valid && visited < k_max_mime_parts;
       valid = g_mime_part_iter_next(iter.get()), ++visited) {
    GMimeObject* current = g_mime_part_iter_get_current(iter.get());
    GMimeContentType* type = g_mime_object_get_content_type(current);
    if (!GMIME_IS_PART(current) || type == nullptr || !g_mime_content_type_is_type(type, "text", "*")) {
      continue;
    }
    std::optional<std::string> charset = declared_charset(current);
    if (charset && effective_charset(*charset) != "windows-1252") {
      return *charset;
    }
    if (charset) {
      return "windows-1252";
    }
  }
  return "";
}

std::optional<std::string> decoded_header(GMimeObject* object, const char* name, std::string_view fallback_charset) {
  std::optional<std::string> raw = raw_header(object, name);
  if (!raw) {
    return std::nullopt;
  }
  return decode_encoded_words(unfold_header_value(*raw), fallback_charset);
}

class MessageDecoder {
 public:
  MessageDecoder(int dir_fd, bool crlf, SafeNameAllocator& names) : m_dir_fd(dir_fd), m_crlf(crlf), m_names(names) {}

  DecodedMessage decode(UniqueFd eml, std::size_t start_offset);

 private:
  static void on_parser_warning(gint64 offset, GMimeParserWarning warning, const gchar* item, gpointer self);

  void add_defect(std::string text);
  ParserOptions make_parser_options();
  std::optional<std::uint64_t> check_header_limits(int fd, std::uint64_t start_offset, const std::string& name,
                                                   const std::string& where, bool& nothing_to_parse);

  void walk(GMimeObject* toplevel, const std::string& prefix);
  void visit(GMimePartIter* iter, const std::string& prefix);
  bool repair_encoded_multipart(GMimeObject* multipart, const std::string& path);
  void store_message_part(GMimeMessagePart* part, const std::string& path);
  void store_leaf(GMimePart* part, const std::string& path, GMimeObject* container);
  void store_body(GMimePart* part, const std::string& path, const std::string& type, const std::string& file,
                  const std::string& role);
  void unpack_tnef_container(const PartRecord& container);

  std::optional<std::string> parent_of(const std::string& path) const;
  std::string next_file_name(const std::string& extension);

  int m_dir_fd;
  bool m_crlf;
  DecodedMessage m_result;
  SafeNameAllocator& m_names;
  std::string m_fallback_charset;
  std::string m_warning_context;            // where parser warnings come from
  std::vector<std::string> m_message_paths;  // attached messages seen so far
  int m_files_written = 0;
  int m_other_bodies_written = 0;
  int m_attachment_number = 0;
  int m_repairs = 0;
  std::size_t m_parts_visited = 0;
  bool m_stopped = false;
  bool m_depth_defect_recorded = false;
  bool m_have_plain = false;
  bool m_have_html = false;
};

void MessageDecoder::add_defect(std::string text) {
  if (m_result.defects.size() < k_max_recorded_defects) {
    m_result.defects.push_back(sanitize_utf8(text));
  }
}

void MessageDecoder::on_parser_warning(gint64 offset, GMimeParserWarning warning, const gchar* item, gpointer self) {
  auto* decoder = static_cast<MessageDecoder*>(self);
  std::string text = warning_name(warning) + " at byte " + std::to_string(offset) + decoder->m_warning_context;
  if (item != nullptr && *item != '\0') {
    std::string shown(item, strnlen(item, k_max_defect_item_bytes));
    text += ": " + shown;
  }
  try {
    decoder->add_defect(std::move(text));
  } catch (...) {
    // Called from C code: an exception must not unwind through GMime. A lost defect
    // text is the only cost.
  }
}

ParserOptions MessageDecoder::make_parser_options() {
  ParserOptions options(g_mime_parser_options_new());
  static const char* k_fallback_charsets[] = {"utf-8", "windows-1252", nullptr};
  g_mime_parser_options_set_fallback_charsets(options.get(), k_fallback_charsets);
  g_mime_parser_options_set_warning_callback(options.get(), &MessageDecoder::on_parser_warning, this);
  return options;
}

// Scans the header blocks of fd from start_offset before GMime parses them. Returns the
// offset GMime's input must end at when a header limit is exceeded (recording a defect),
// and sets nothing_to_parse when that is the start, because the first header is too large.
std::optional<std::uint64_t> MessageDecoder::check_header_limits(int fd, std::uint64_t start_offset,
                                                                 const std::string& name, const std::string& where,
                                                                 bool& nothing_to_parse) {
  std::optional<HeaderLimitViolation> violation = scan_header_blocks(fd, start_offset, name);
  nothing_to_parse = violation && violation->parse_end <= start_offset;
  if (!violation) {
    return std::nullopt;
  }
  std::string consequence = nothing_to_parse ? where + " was not decoded"
                                             : where + " was decoded only up to byte " +
                                                   std::to_string(violation->parse_end) + " and no part after it";
  add_defect("header limit exceeded: " + violation->description + "; " + consequence);
  return violation->parse_end;
}

DecodedMessage MessageDecoder::decode(UniqueFd eml, std::size_t start_offset) {
  if (start_offset > 0) {
    add_defect(std::to_string(start_offset) + " bytes of blank lines before the header were skipped");
  }
  bool nothing_to_parse = false;
  std::optional<std::uint64_t> parse_end =
      check_header_limits(eml.get(), start_offset, "message.eml", "the message", nothing_to_parse);
  if (nothing_to_parse) {
    return std::move(m_result);
  }

  ParserOptions options = make_parser_options();
  ParsedFile parsed = open_parser(std::move(eml), start_offset, parse_end);
  g_mime_parser_set_format(parsed.parser.get(), GMIME_FORMAT_MESSAGE);
  auto message = GObjectPtr<GMimeMessage>::adopt(g_mime_parser_construct_message(parsed.parser.get(), options.get()));
  if (!message) {
    add_defect("the file does not parse as a message: nothing was extracted");
    return std::move(m_result);
  }

  std::size_t header_count = 0;
  std::tie(m_result.headers, header_count) = top_level_headers(message.get());
  if (header_count > m_result.headers.size()) {
    add_defect("the top-level header has " + std::to_string(header_count) + " fields: only the first " +
               std::to_string(m_result.headers.size()) + " were recorded");
  }
  m_fallback_charset = text_parts_charset(message.get());
  m_result.subject = decoded_header(GMIME_OBJECT(message.get()), "Subject", m_fallback_charset);
  m_result.from = decoded_header(GMIME_OBJECT(message.get()), "From", m_fallback_charset);

  GMimeObject* root = g_mime_message_get_mime_part(message.get());
  if (root == nullptr) {
    add_defect("the message has no body");
    return std::move(m_result);
  }
  if (GMIME_IS_MULTIPART(root) && repair_encoded_multipart(root, "")) {
    return std::move(m_result);
  }
  walk(GMIME_OBJECT(message.get()), "");
  return std::move(m_result);
}

// Walks every part below toplevel depth first. prefix is the path of toplevel when it is
// itself a part of a larger tree (a multipart parsed again after decoding).
void MessageDecoder::walk(GMimeObject* toplevel, const std::string& prefix) {
  PartIter iter(g_mime_part_iter_new(toplevel));
  if (!g_mime_part_iter_is_valid(iter.get())) {
    return;
  }
  do {
    visit(iter.get(), prefix);
  } while (!m_stopped && g_mime_part_iter_next(iter.get()));
}

void MessageDecoder::visit(GMimePartIter* iter, const std::string& prefix) {
  GMimeObject* current = g_mime_part_iter_get_current(iter);
  std::string iter_path = take_g_string(g_mime_part_iter_get_path(iter));
  if (iter_path.empty() || iter_path == "0") {
    iter_path = "1";  // a message whose body is one leaf part
  }
  std::string path = prefix.empty() ? iter_path : prefix + "." + iter_path;

  if (++m_parts_visited > k_max_mime_parts) {
    add_defect("more than " + std::to_string(k_max_mime_parts) + " MIME parts: the parts after " + path +
               " were not stored");
    m_stopped = true;
    return;
  }
  if (path_depth(path) > static_cast<std::size_t>(k_max_mime_depth)) {
    if (!m_depth_defect_recorded) {
      add_defect("MIME nesting deeper than " + std::to_string(k_max_mime_depth) + " levels at " + path +
                 ": deeper parts were not stored");
      m_depth_defect_recorded = true;
    }
    return;
  }

  if (GMIME_IS_MULTIPART(current)) {
    repair_encoded_multipart(current, path);
  } else if (GMIME_IS_MESSAGE_PART(current)) {
    store_message_part(GMIME_MESSAGE_PART(current), path);
  } else if (GMIME_IS_PART(current)) {
    store_leaf(GMIME_PART(current), path, g_mime_part_iter_get_parent(iter));
  }
}

// Repairs a multipart with Content-Transfer-Encoding base64 or quoted-printable. RFC 2045
// allows neither, but some ERP systems send it, and GMime then finds zero parts and
// leaves the body in the prologue. The body is decoded into a temporary file and parsed
// as the multipart it is. Returns true when the multipart was such a case.
bool MessageDecoder::repair_encoded_multipart(GMimeObject* multipart, const std::string& path) {
  if (g_mime_multipart_get_count(GMIME_MULTIPART(multipart)) != 0) {
    return false;
  }
  std::optional<std::string> raw_encoding = raw_header(multipart, "Content-Transfer-Encoding");
  if (!raw_encoding) {
    return false;
  }
  std::string encoding_name = unfold_header_value(*raw_encoding);
  GMimeContentEncoding encoding = g_mime_content_encoding_from_string(encoding_name.c_str());
  if (encoding != GMIME_CONTENT_ENCODING_BASE64 && encoding != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
      encoding != GMIME_CONTENT_ENCODING_UUENCODE) {
    return false;
  }
  std::string where = path.empty() ? "the top-level multipart" : "multipart " + path;
  add_defect("encoded multipart body: " + where + " has Content-Transfer-Encoding " + encoding_name +
             "; it was decoded and parsed again");

  const char* prologue = g_mime_multipart_get_prologue(GMIME_MULTIPART(multipart));
  if (prologue == nullptr || *prologue == '\0') {
    return true;
  }

  std::string content_type = unfold_header_value(raw_header(multipart, "Content-Type").value_or(""));
  std::string temporary_name = "repair-" + std::to_string(++m_repairs) + ".tmp";
  write_decoded_entity(m_dir_fd, temporary_name, "Content-Type: " + content_type + "\r\n\r\n", prologue, encoding);
  UniqueFd decoded = open_for_reading(m_dir_fd, temporary_name);
  // The open descriptor keeps the data readable; unlinking now means no path leaves it behind.
  if (::unlinkat(m_dir_fd, temporary_name.c_str(), 0) != 0) {
    throw_system_error("remove " + temporary_name, errno);
  }

  bool nothing_to_parse = false;
  std::optional<std::uint64_t> parse_end =
      check_header_limits(decoded.get(), 0, temporary_name, "the decoded body of " + where, nothing_to_parse);
  if (nothing_to_parse) {
    return true;
  }

  ParserOptions options = make_parser_options();
  ParsedFile parsed = open_parser(std::move(decoded), 0, parse_end);
  g_mime_parser_set_format(parsed.parser.get(), GMIME_FORMAT_MESSAGE);
  std::string saved_context = m_warning_context;
  m_warning_context = " of the decoded body of " + where;
  auto entity = GObjectPtr<GMimeObject>::adopt(g_mime_parser_construct_part(parsed.parser.get(), options.get()));
  if (!entity || !GMIME_IS_MULTIPART(entity.get()) || g_mime_multipart_get_count(GMIME_MULTIPART(entity.get())) == 0) {
    add_defect("the decoded body of " + where + " has no parts either");
  } else {
    walk(entity.get(), path);
  }
  m_warning_context = saved_context;
  return true;
}

std::optional<std::string> MessageDecoder::parent_of(const std::string& path) const {
  const std::string* best = nullptr;
  for (const std::string& message_path : m_message_paths) {
    bool encloses = path.size() > message_path.size() && path.compare(0, message_path.size(), message_path) == 0 &&
                    path[message_path.size()] == '.';
    if (encloses && (best == nullptr || message_path.size() > best->size())) {
      best = &message_path;
    }
  }
  if (best == nullptr) {
    return std::nullopt;
  }
  return *best;
}

std::string MessageDecoder::next_file_name(const std::string& extension) {
  return "part-" + std::to_string(++m_files_written) + extension;
}

void MessageDecoder::store_message_part(GMimeMessagePart* part, const std::string& path) {
  GMimeObject* object = GMIME_OBJECT(part);
  GMimeMessage* embedded = g_mime_message_part_get_message(part);
  std::optional<std::string> subject;
  if (embedded != nullptr) {
    subject = decoded_header(GMIME_OBJECT(embedded), "Subject", m_fallback_charset);
  }

  PartRecord record;
  record.role = "message";
  record.path = path;
  record.parent = parent_of(path);
  record.content_type = mime_type_of(object);
  record.filename_sent = decode_sent_filename(raw_header(object, "Content-Disposition").value_or(""),
                                              raw_header(object, "Content-Type").value_or(""), m_fallback_charset);
  record.filename = m_names.allocate(record.filename_sent, record.content_type, ++m_attachment_number, subject);
  if (const char* content_id = g_mime_object_get_content_id(object); content_id != nullptr && *content_id != '\0') {
    record.content_id = sanitize_utf8(content_id);
  }
  record.file = next_file_name(".eml");
  StoredFile stored = write_embedded_message(m_dir_fd, record.file, embedded, m_crlf);
  record.size = stored.size;
  record.sha256 = stored.sha256;
  m_result.parts.push_back(std::move(record));
  m_message_paths.push_back(path);

  // The iterator does not visit the root of the embedded message, only its children.
  if (embedded != nullptr) {
    GMimeObject* root = g_mime_message_get_mime_part(embedded);
    if (root != nullptr && GMIME_IS_MULTIPART(root)) {
      repair_encoded_multipart(root, path);
    }
  }
}

// NOTE: uuencoded blocks ("begin 644 name" ... "end") inside a text body stay in the
// body as text; only parts with Content-Transfer-Encoding x-uuencode are decoded.
void MessageDecoder::store_body(GMimePart* part, const std::string& path, const std::string& type,
                                const std::string& file, const std::string& role) {
  GMimeObject* object = GMIME_OBJECT(part);
  PartRecord record;
  record.file = file;
  record.role = role;
  record.path = path;
  record.parent = parent_of(path);
  record.content_type = type;
  record.charset = declared_charset(object);
  if (const char* content_id = g_mime_object_get_content_id(object); content_id != nullptr && *content_id != '\0') {
    record.content_id = sanitize_utf8(content_id);
  }
  TextBody body = write_text_body(m_dir_fd, record.file, part, record.charset);
  if (body.defect) {
    add_defect(*body.defect);
  }
  record.size = body.file.size;
  record.sha256 = body.file.sha256;
  m_result.parts.push_back(std::move(record));
}

// Roles: a text/plain or text/html part that is not marked as an attachment and has no
// name is a body: the first of each kind in the top-level message is body-plain or
// body-html, any other is body-other (a list footer, a split HTML body, the text of an
// attached message). Every other leaf is "inline" when its disposition is inline, or when
// it has no disposition and has a Content-Id or is an image inside multipart/related;
// otherwise it is an "attachment".
void MessageDecoder::store_leaf(GMimePart* part, const std::string& path, GMimeObject* container) {
  GMimeObject* object = GMIME_OBJECT(part);
  std::string type = mime_type_of(object);
  std::optional<std::string> raw_disposition = raw_header(object, "Content-Disposition");
  std::string disposition = raw_disposition ? leading_token(*raw_disposition) : "";
  std::optional<std::string> sent =
      decode_sent_filename(raw_disposition.value_or(""), raw_header(object, "Content-Type").value_or(""),
                           m_fallback_charset);
  std::optional<std::string> parent = parent_of(path);

  bool body_candidate = !parent && !sent && disposition != "attachment";
  if (body_candidate && type == "text/plain" && !m_have_plain) {
    m_have_plain = true;
    store_body(part, path, type, "body-plain.txt", "body-plain");
    return;
  }
  if (body_candidate && type == "text/html" && !m_have_html) {
    m_have_html = true;
    store_body(part, path, type, "body-html.html", "body-html");
    return;
  }

  // Further unnamed text is part of a body too: Apple Mail splits one HTML body into several
  // parts around the attachments, and an attached message carries its own text.
  bool unnamed_text = !sent && (type == "text/plain" || type == "text/html");
  if (unnamed_text && disposition != "attachment") {
    std::string extension = type == "text/html" ? ".html" : ".txt";
    store_body(part, path, type, "body-other-" + std::to_string(++m_other_bodies_written) + extension, "body-other");
    return;
  }

  PartRecord record;
  record.path = path;
  record.parent = parent;
  record.content_type = type;
  record.filename_sent = sent;
  if (const char* content_id = g_mime_object_get_content_id(object); content_id != nullptr && *content_id != '\0') {
    record.content_id = sanitize_utf8(content_id);
  }
  bool image_in_related = type.rfind("image/", 0) == 0 && container != nullptr && GMIME_IS_MULTIPART(container) &&
                          has_subtype(container, "related");
  bool inline_part = disposition == "inline" || (disposition.empty() && (record.content_id || image_in_related));
  record.role = inline_part ? "inline" : "attachment";
  if (type.rfind("text/", 0) == 0) {
    record.charset = declared_charset(object);
  }
  record.filename = m_names.allocate(sent, type, ++m_attachment_number);
  record.file = next_file_name(extension_for_content_type(type));
  StoredFile stored = write_part_content(m_dir_fd, record.file, part);
  record.size = stored.size;
  record.sha256 = stored.sha256;
  m_result.parts.push_back(record);

  bool tnef = type == "application/ms-tnef" || type == "application/vnd.ms-tnef" ||
              (sent && to_lower_ascii(*sent) == "winmail.dat");
  if (tnef) {
    unpack_tnef_container(record);
  }
}

void MessageDecoder::unpack_tnef_container(const PartRecord& container) {
  if (container.size > k_max_tnef_container_bytes) {
    add_defect("TNEF container " + container.path + " is larger than " + std::to_string(k_max_tnef_container_bytes) +
               " bytes: stored, not unpacked");
    return;
  }
  std::optional<std::vector<TnefFile>> files =
      unpack_tnef(read_whole_file(m_dir_fd, container.file), m_fallback_charset);
  if (!files) {
    add_defect("TNEF container " + container.path + " could not be read: stored, not unpacked");
    return;
  }

  int position = 0;
  for (TnefFile& file : *files) {
    PartRecord record;
    record.role = "extracted";
    record.path = container.path + "#" + std::to_string(++position);
    record.parent = container.path;
    if (!file.name.empty()) {
      record.filename_sent = file.name;
    }
    record.content_type = content_type_for_filename(file.name);
    record.filename = m_names.allocate(record.filename_sent, record.content_type, ++m_attachment_number);
    record.file = next_file_name(extension_for_content_type(record.content_type));
    StoredFile stored = write_bytes_file(m_dir_fd, record.file, file.bytes);
    record.size = stored.size;
    record.sha256 = stored.sha256;
    m_result.parts.push_back(std::move(record));
  }
}

}  // namespace

DecodedMessage decode_message_file(int dir_fd, const std::string& eml_name) {
  SafeNameAllocator names;
  return decode_message_file(dir_fd, eml_name, names);
}

DecodedMessage decode_message_file(int dir_fd, const std::string& eml_name, SafeNameAllocator& names) {
  initialize_gmime();
  UniqueFd eml = open_for_reading(dir_fd, eml_name);
  FileStart start = inspect_file_start(eml.get(), eml_name);
  MessageDecoder decoder(dir_fd, start.crlf, names);
  return decoder.decode(std::move(eml), start.blank_prefix_bytes);
}

}  // namespace mgspool
