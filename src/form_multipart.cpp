// multipart/form-data parsing with GMime: the staged body is parsed as one MIME entity,
// with persistence on, and each field's bytes are streamed from the file to the sink.
#include <fcntl.h>
#include <gmime/gmime.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <memory>
#include <string>

#include "file_io.h"
#include "form.h"
#include "gobject_ptr.h"
#include "header_scan.h"
#include "request_error.h"
#include "spool_limits.h"

// A write-only GMime stream that hands every write to a FieldSink, so GMime can decode a
// part straight into the sink. The sink may throw, and an exception must not unwind
// through GMime's C frames, so the write catches it, keeps it and reports -1.
struct MgspoolSinkStream {
  GMimeStream parent;
  mgspool::FieldSink* sink;
  std::exception_ptr* error;
};

struct MgspoolSinkStreamClass {
  GMimeStreamClass parent_class;
};

G_DEFINE_TYPE(MgspoolSinkStream, mgspool_sink_stream, GMIME_TYPE_STREAM)

static ssize_t mgspool_sink_stream_write(GMimeStream* stream, const char* buffer, size_t length) {
  auto* self = reinterpret_cast<MgspoolSinkStream*>(stream);
  try {
    self->sink->append(std::string_view(buffer, length));
  } catch (...) {
    *self->error = std::current_exception();
    return -1;
  }
  stream->position += static_cast<gint64>(length);
  return static_cast<ssize_t>(length);
}

static ssize_t mgspool_sink_stream_read(GMimeStream*, char*, size_t) {
  return -1;
}

static int mgspool_sink_stream_flush(GMimeStream*) {
  return 0;
}

static int mgspool_sink_stream_close(GMimeStream*) {
  return 0;
}

static gboolean mgspool_sink_stream_eos(GMimeStream*) {
  return TRUE;
}

static int mgspool_sink_stream_reset(GMimeStream*) {
  return 0;
}

static gint64 mgspool_sink_stream_seek(GMimeStream*, gint64, GMimeSeekWhence) {
  return -1;
}

static gint64 mgspool_sink_stream_tell(GMimeStream* stream) {
  return stream->position;
}

static gint64 mgspool_sink_stream_length(GMimeStream*) {
  return -1;
}

static GMimeStream* mgspool_sink_stream_substream(GMimeStream*, gint64, gint64) {
  return nullptr;
}

static void mgspool_sink_stream_class_init(MgspoolSinkStreamClass* klass) {
  GMimeStreamClass* stream_class = GMIME_STREAM_CLASS(klass);
  stream_class->read = mgspool_sink_stream_read;
  stream_class->write = mgspool_sink_stream_write;
  stream_class->flush = mgspool_sink_stream_flush;
  stream_class->close = mgspool_sink_stream_close;
  stream_class->eos = mgspool_sink_stream_eos;
  stream_class->reset = mgspool_sink_stream_reset;
  stream_class->seek = mgspool_sink_stream_seek;
  stream_class->tell = mgspool_sink_stream_tell;
  stream_class->length = mgspool_sink_stream_length;
  stream_class->substream = mgspool_sink_stream_substream;
}

static void mgspool_sink_stream_init(MgspoolSinkStream* self) {
  self->sink = nullptr;
  self->error = nullptr;
}

namespace mgspool {

namespace {

void ensure_gmime_initialized() {
  // g_mime_init counts its calls, so another module having called it does no harm.
  static const bool initialized = (g_mime_init(), true);
  (void)initialized;
}

[[noreturn]] void throw_malformed(const std::string& message) {
  throw RequestError(Outcome::malformed_request, "multipart form: " + message);
}

// Returns a raw header value as sent, with folding line breaks removed and the
// surrounding white space trimmed; "" when the header is absent.
std::string raw_header_value(GMimeObject* part, const char* name) {
  GMimeHeader* header = g_mime_header_list_get_header(g_mime_object_get_header_list(part), name);
  const char* raw = header != nullptr ? g_mime_header_get_raw_value(header) : nullptr;
  if (raw == nullptr) {
    return {};
  }

  std::string value;
  for (const char* byte = raw; *byte != '\0'; ++byte) {
    if (*byte != '\r' && *byte != '\n') {
      value.push_back(*byte);
    }
  }
  std::size_t first = value.find_first_not_of(" \t");
  if (first == std::string::npos) {
    return {};
  }
  std::size_t last = value.find_last_not_of(" \t");
  return value.substr(first, last - first + 1);
}

FieldHead read_field_head(GMimeObject* part, int index) {
  GMimeContentDisposition* disposition = g_mime_object_get_content_disposition(part);
  if (disposition == nullptr) {
    throw_malformed("part " + std::to_string(index) + " has no Content-Disposition header");
  }
  const char* name = g_mime_content_disposition_get_parameter(disposition, "name");
  if (name == nullptr) {
    throw_malformed("part " + std::to_string(index) + " has no name in its Content-Disposition");
  }

  FieldHead head;
  head.name = name;
  // GMime merges an RFC 2231 filename* into the "filename" parameter, and keeps an empty
  // filename="" as an empty value, so both count as a file here.
  head.is_file = g_mime_content_disposition_get_parameter(disposition, "filename") != nullptr;
  head.content_type = raw_header_value(part, "Content-Type");
  head.content_disposition = raw_header_value(part, "Content-Disposition");
  return head;
}

// Forwards value bytes to another sink but holds back the last byte, and drops it at the
// end when it is a CR. Used for the one case where GMime leaves the delimiter's CR in the
// content (see ends_in_bare_delimiter).
class DropFinalCrSink : public FieldSink {
 public:
  explicit DropFinalCrSink(FieldSink& sink) : m_sink(sink) {}

  void begin_field(const FieldHead& head) override { m_sink.begin_field(head); }
  void end_field() override { m_sink.end_field(); }

  void append(std::string_view bytes) override {
    if (bytes.empty()) {
      return;
    }
    m_pending.assign(m_held ? 1 : 0, m_held_byte);
    m_pending.append(bytes.substr(0, bytes.size() - 1));
    m_held = true;
    m_held_byte = bytes.back();
    if (!m_pending.empty()) {
      m_sink.append(m_pending);
    }
  }

  // Sends the held byte unless it is the CR to drop.
  void finish() {
    if (m_held && m_held_byte != '\r') {
      m_sink.append(std::string_view(&m_held_byte, 1));
    }
    m_held = false;
  }

 private:
  FieldSink& m_sink;
  std::string m_pending;
  bool m_held = false;
  char m_held_byte = 0;
};

bool is_identity_encoding(GMimeContentEncoding encoding) {
  return encoding == GMIME_CONTENT_ENCODING_DEFAULT || encoding == GMIME_CONTENT_ENCODING_7BIT ||
         encoding == GMIME_CONTENT_ENCODING_8BIT || encoding == GMIME_CONTENT_ENCODING_BINARY;
}

// Decodes a leaf part's content (base64 and quoted-printable included) into the sink.
// NOTE: GMime keeps the CR of a CRLF before a delimiter line that itself ends in a bare LF;
// only the case at the end of the body (ends_in_bare_delimiter) is corrected.
void stream_leaf_content(GMimePart* part, FieldSink& sink) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr) {
    return;
  }

  std::exception_ptr sink_error;
  auto sink_stream = GObjectPtr<MgspoolSinkStream>::adopt(
      static_cast<MgspoolSinkStream*>(g_object_new(mgspool_sink_stream_get_type(), nullptr)));
  sink_stream.get()->sink = &sink;
  sink_stream.get()->error = &sink_error;

  gint64 written = g_mime_data_wrapper_write_to_stream(content, GMIME_STREAM(sink_stream.get()));
  if (sink_error) {
    std::rethrow_exception(sink_error);
  }
  if (written < 0) {
    throw RequestError(Outcome::local_failure, "multipart form: reading a part's content from the staged body failed");
  }
}

// Returns whether line (without its line break) is a delimiter line for boundary: "--",
// the boundary, an optional "--" that closes the form, then only white space. This is the
// rule GMime applies.
bool is_delimiter_line(std::string_view line, std::string_view boundary) {
  if (!line.starts_with("--") || line.substr(2, boundary.size()) != boundary) {
    return false;
  }
  std::string_view tail = line.substr(2 + boundary.size());
  if (tail.starts_with("--")) {
    tail.remove_prefix(2);
  }
  return tail.find_first_not_of(" \t\r") == std::string_view::npos;
}

// Copies the content of a part that GMime parsed into a tree of its own (message/rfc822 or
// a nested multipart) from the stream as sent, because writing GMime's tree back would
// change line endings. The part's first header is at header_offset. Its content starts
// after the blank line that ends the headers. It stops before the line break that precedes
// the next delimiter line, the same rule GMime applies.
class RawContentCopier {
 public:
  RawContentCopier(std::string boundary, FieldSink& sink)
      : m_delimiter("--" + std::move(boundary)), m_sink(sink) {}

  void copy(GMimeStream* stream, gint64 header_offset) {
    auto section = GObjectPtr<GMimeStream>::adopt(g_mime_stream_substream(stream, header_offset, -1));
    auto buffer = std::make_unique<char[]>(k_io_buffer_bytes);

    while (!m_done) {
      ssize_t count = g_mime_stream_read(section.get(), buffer.get(), k_io_buffer_bytes);
      // A GMimeStreamCat substream returns -1, not 0, when a read starts at its end.
      if (count < 0 && g_mime_stream_eos(section.get())) {
        break;
      }
      if (count < 0) {
        throw RequestError(Outcome::local_failure, "multipart form: reading a part from the staged body failed");
      }
      if (count == 0) {
        break;
      }
      for (ssize_t i = 0; i < count && !m_done; ++i) {
        consume(buffer[i]);
      }
      flush_output();
    }

    if (!m_done) {
      finish_at_end_of_stream();
    }
  }

 private:
  enum class Phase { headers, line_start, candidate, content };

  void consume(char byte) {
    switch (m_phase) {
      case Phase::headers:
        consume_header_byte(byte);
        break;
      case Phase::line_start:
      case Phase::candidate:
        consume_candidate_byte(byte);
        break;
      case Phase::content:
        consume_content_byte(byte);
        break;
    }
  }

  void consume_header_byte(char byte) {
    if (byte == '\n') {
      end_header_line();
      return;
    }
    if (byte != '\r') {
      m_header_line_empty = false;
    }
    // A line longer than the buffer is not taken for a delimiter, as in the content.
    if (m_header_line.size() < k_io_buffer_bytes) {
      m_header_line.push_back(byte);
    } else {
      m_header_line_too_long = true;
    }
  }

  // GMime ends a part's headers at a delimiter line even without a blank line before it,
  // and the part then has no content: the copy must not run on into the next part.
  void end_header_line() {
    if (!m_header_line_too_long && is_delimiter(m_header_line)) {
      m_done = true;
    } else if (m_header_line_empty) {
      m_phase = Phase::line_start;
    }
    m_header_line_empty = true;
    m_header_line_too_long = false;
    m_header_line.clear();
  }

  // While a line still looks like "--boundary" followed by optional "--" and white space,
  // its bytes and the line break before it are held back.
  void consume_candidate_byte(char byte) {
    m_phase = Phase::candidate;
    if (byte == '\n' && is_delimiter(m_candidate)) {
      m_done = true;
      return;
    }
    m_candidate.push_back(byte);
    if (could_become_delimiter(m_candidate) && m_candidate.size() < k_io_buffer_bytes) {
      return;
    }

    // Ordinary content: release what was held and go on with the rest of the line.
    std::string held;
    held.swap(m_candidate);
    emit(m_pending_newline);
    m_pending_newline.clear();
    m_phase = Phase::content;
    for (char held_byte : held) {
      consume_content_byte(held_byte);
    }
  }

  void consume_content_byte(char byte) {
    if (m_pending_cr) {
      m_pending_cr = false;
      if (byte == '\n') {
        end_content_line("\r\n");
        return;
      }
      emit("\r");
    }
    if (byte == '\r') {
      m_pending_cr = true;
    } else if (byte == '\n') {
      end_content_line("\n");
    } else {
      emit(std::string_view(&byte, 1));
    }
  }

  void end_content_line(const char* newline) {
    m_pending_newline = newline;
    m_phase = Phase::line_start;
  }

  // Returns whether line, whose bytes before the last could become a delimiter line, still
  // can. Only the last byte is checked, so holding back a long line stays linear.
  bool could_become_delimiter(const std::string& line) const {
    std::size_t last = line.size() - 1;
    char byte = line.back();
    if (last < m_delimiter.size()) {
      return byte == m_delimiter[last];
    }
    bool is_space = byte == ' ' || byte == '\t' || byte == '\r';
    std::size_t tail_position = last - m_delimiter.size();
    if (tail_position == 0) {
      return byte == '-' || is_space;
    }
    if (tail_position == 1 && line[m_delimiter.size()] == '-') {
      return byte == '-';  // the closing "--"; a single '-' is no delimiter tail
    }
    return is_space;
  }

  bool is_delimiter(const std::string& line) const {
    return is_delimiter_line(line, std::string_view(m_delimiter).substr(2));
  }

  void finish_at_end_of_stream() {
    if (m_phase == Phase::candidate && is_delimiter(m_candidate)) {
      return;
    }
    emit(m_pending_newline);
    emit(m_candidate);
    if (m_pending_cr) {
      emit("\r");
    }
    flush_output();
  }

  void emit(std::string_view bytes) {
    m_output.append(bytes);
    if (m_output.size() >= k_io_buffer_bytes) {
      flush_output();
    }
  }

  // Hands the output to the sink in pieces of at most k_io_buffer_bytes.
  void flush_output() {
    std::string_view output = m_output;
    while (!output.empty()) {
      std::size_t piece = std::min(output.size(), k_io_buffer_bytes);
      m_sink.append(output.substr(0, piece));
      output.remove_prefix(piece);
    }
    m_output.clear();
  }

  std::string m_delimiter;
  FieldSink& m_sink;
  Phase m_phase = Phase::headers;
  bool m_header_line_empty = true;
  bool m_header_line_too_long = false;
  std::string m_header_line;
  bool m_pending_cr = false;
  bool m_done = false;
  std::string m_pending_newline;
  std::string m_candidate;
  std::string m_output;
};

void stream_raw_content(GMimeObject* part, GMimeStream* stream, const std::string& boundary, FieldSink& sink) {
  GMimeHeader* first_header = g_mime_header_list_get_header_at(g_mime_object_get_header_list(part), 0);
  if (first_header == nullptr) {
    throw_malformed("a part without headers");
  }
  RawContentCopier copier(boundary, sink);
  copier.copy(stream, g_mime_header_get_offset(first_header));
}

// Returns the boundary of a multipart/form-data Content-Type header value.
std::string boundary_of(std::string_view content_type) {
  // The request header becomes the entity's own header, so a line break in it could add
  // headers of its choosing.
  if (content_type.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    throw_malformed("the Content-Type header contains a line break or NUL byte");
  }
  std::string text(content_type);
  auto type = GObjectPtr<GMimeContentType>::adopt(g_mime_content_type_parse(nullptr, text.c_str()));
  if (!type || !g_mime_content_type_is_type(type.get(), "multipart", "form-data")) {
    throw_malformed("the Content-Type is not multipart/form-data");
  }
  const char* boundary = g_mime_content_type_get_parameter(type.get(), "boundary");
  if (boundary == nullptr || *boundary == '\0') {
    throw_malformed("the Content-Type has no boundary");
  }
  return boundary;
}

// Facts from one pass over the body, taken before GMime parses it.
struct BodyScan {
  // Lines that start with "--boundary", an upper bound on the number of parts. GMime has no
  // limit on parts and builds an object for each, so the count is checked first.
  std::size_t delimiter_lines = 0;
  // The body ends with a delimiter line that has no line break and does not end in CR,
  // after a CRLF. GMime 3.2.13 takes the line ending of a delimiter line as the style of
  // the break before it, so there it strips only the LF and leaves the CR in the last
  // part. Mailgun's requests end this way.
  bool ends_in_bare_delimiter = false;
  // A closing delimiter line ("--boundary--") was seen. Without one the upload was cut
  // short, or the body is not a whole form.
  bool closed = false;
};

// Follows the lines of the body to find the closing delimiter, with GMime's rule for a
// delimiter line (is_delimiter_line). The header limits are checked before, by
// scan_header_blocks over the whole body.
class LineTracker {
 public:
  explicit LineTracker(const std::string& boundary)
      : m_boundary(boundary), m_kept_bytes(boundary.size() + 4) {}

  void feed(std::string_view chunk) {
    while (!chunk.empty()) {
      std::size_t end = chunk.find('\n');
      take(chunk.substr(0, end));
      if (end == std::string_view::npos) {
        return;
      }
      end_line();
      chunk.remove_prefix(end + 1);
    }
  }

  // Ends the last line, which need not end in a line break.
  void finish() {
    if (m_line_bytes > 0) {
      end_line();
    }
  }

  bool closed() const { return m_closed; }

 private:
  // Keeps the first bytes of the line, enough for "--", the boundary and "--", and notes
  // whether the rest is white space only.
  void take(std::string_view piece) {
    std::size_t room = m_kept_bytes - std::min(m_line_start.size(), m_kept_bytes);
    m_line_start.append(piece.substr(0, room));
    if (piece.size() > room) {
      std::string_view rest = piece.substr(room);
      m_rest_is_blank = m_rest_is_blank && rest.find_first_not_of(" \t\r") == std::string_view::npos;
    }
    m_line_bytes += piece.size();
  }

  void end_line() {
    if (m_rest_is_blank && is_delimiter_line(m_line_start, m_boundary)) {
      std::string_view tail = std::string_view(m_line_start).substr(2 + m_boundary.size());
      m_closed = m_closed || tail.starts_with("--");
    }
    m_line_start.clear();
    m_line_bytes = 0;
    m_rest_is_blank = true;
  }

  std::string m_boundary;
  std::size_t m_kept_bytes;
  std::string m_line_start;  // the first m_kept_bytes bytes of the current line
  std::size_t m_line_bytes = 0;
  bool m_rest_is_blank = true;
  bool m_closed = false;
};

BodyScan scan_body(GMimeStream* body, const std::string& boundary) {
  const std::string needle = "\n--" + boundary;
  const std::size_t max_final_line_bytes = needle.size() + 256;
  auto buffer = std::make_unique<char[]>(k_io_buffer_bytes);
  std::string window = "\n";  // the body's first line counts as following a line break
  std::string final_line;      // the bytes after the last LF, while they are short
  bool final_line_short = true;
  bool crlf_before_final_line = false;
  bool seen_line_break = false;
  char previous_byte = '\0';
  BodyScan scan;
  LineTracker lines(boundary);

  for (;;) {
    ssize_t read_count = g_mime_stream_read(body, buffer.get(), k_io_buffer_bytes);
    if (read_count < 0) {
      throw RequestError(Outcome::local_failure, "multipart form: reading the staged body failed");
    }
    if (read_count == 0) {
      break;
    }
    std::string_view chunk(buffer.get(), static_cast<std::size_t>(read_count));
    lines.feed(chunk);

    window.append(chunk);
    for (std::size_t at = window.find(needle); at != std::string::npos; at = window.find(needle, at + 1)) {
      ++scan.delimiter_lines;
    }
    // Keep a tail shorter than the needle, so a match split across reads is found once.
    window.erase(0, window.size() - std::min(window.size(), needle.size() - 1));

    std::size_t last_break = chunk.rfind('\n');
    if (last_break != std::string_view::npos) {
      seen_line_break = true;
      crlf_before_final_line = (last_break > 0 ? chunk[last_break - 1] : previous_byte) == '\r';
      final_line.clear();
      final_line_short = true;
      chunk.remove_prefix(last_break + 1);
    }
    if (final_line_short && final_line.size() + chunk.size() <= max_final_line_bytes) {
      final_line.append(chunk);
    } else {
      final_line_short = false;
    }
    previous_byte = buffer[read_count - 1];
  }

  lines.finish();
  scan.closed = lines.closed();
  scan.ends_in_bare_delimiter = seen_line_break && crlf_before_final_line && final_line_short &&
                                !final_line.empty() && final_line.back() != '\r' &&
                                is_delimiter_line(final_line, boundary);
  return scan;
}

void rewind_body(GMimeStream* body) {
  if (g_mime_stream_reset(body) != 0) {
    throw RequestError(Outcome::local_failure, "multipart form: seeking to the start of the staged body failed");
  }
}

GObjectPtr<GMimeStream> prefix_with_content_type(GMimeStream* body, std::string_view content_type) {
  std::string header = "Content-Type: " + std::string(content_type) + "\r\n\r\n";
  auto prefix = GObjectPtr<GMimeStream>::adopt(
      g_mime_stream_mem_new_with_buffer(header.data(), header.size()));
  auto combined = GObjectPtr<GMimeStream>::adopt(g_mime_stream_cat_new());
  g_mime_stream_cat_add_source(GMIME_STREAM_CAT(combined.get()), prefix.get());
  g_mime_stream_cat_add_source(GMIME_STREAM_CAT(combined.get()), body);
  return combined;
}

}  // namespace

void parse_multipart_stream(GMimeStream* body, std::string_view content_type, FieldSink& sink) {
  ensure_gmime_initialized();
  std::string boundary = boundary_of(content_type);

  rewind_body(body);
  BodyScan scan = scan_body(body, boundary);
  // One more delimiter line than fields: the closing one.
  if (scan.delimiter_lines > k_max_form_fields + 1) {
    throw_malformed("more than " + std::to_string(k_max_form_fields) + " fields");
  }
  if (!scan.closed) {
    // Mailgun always closes its forms, so a form that ends without the closing delimiter
    // was cut short (a chunked upload whose client went away reaches the responder as a
    // plain end of input). A 500 makes Mailgun send the whole request again.
    throw RequestError(Outcome::body_truncated, "multipart form: the body ends without its closing delimiter");
  }
  rewind_body(body);

  GObjectPtr<GMimeStream> stream = prefix_with_content_type(body, content_type);
  auto parser = GObjectPtr<GMimeParser>::adopt(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_persist_stream(parser.get(), TRUE);
  auto entity = GObjectPtr<GMimeObject>::adopt(g_mime_parser_construct_part(parser.get(), nullptr));
  if (!entity || !GMIME_IS_MULTIPART(entity.get())) {
    throw_malformed("the body does not parse as a multipart entity");
  }

  GMimeMultipart* form = GMIME_MULTIPART(entity.get());
  int count = g_mime_multipart_get_count(form);
  if (count < 0 || static_cast<std::size_t>(count) > k_max_form_fields) {
    throw_malformed("more than " + std::to_string(k_max_form_fields) + " fields");
  }
  for (int index = 0; index < count; ++index) {
    GMimeObject* part = g_mime_multipart_get_part(form, index);
    sink.begin_field(read_field_head(part, index));
    if (GMIME_IS_PART(part) && index == count - 1 && scan.ends_in_bare_delimiter &&
        is_identity_encoding(g_mime_part_get_content_encoding(GMIME_PART(part)))) {
      DropFinalCrSink trimming_sink(sink);
      stream_leaf_content(GMIME_PART(part), trimming_sink);
      trimming_sink.finish();
    } else if (GMIME_IS_PART(part)) {
      stream_leaf_content(GMIME_PART(part), sink);
    } else {
      stream_raw_content(part, stream.get(), boundary, sink);
    }
    sink.end_field();
  }
}

void parse_multipart_file(int fd, std::string_view content_type, FieldSink& sink) {
  ensure_gmime_initialized();
  // GMime builds every header, parameter and part of the form in memory, attached messages
  // and nested multiparts included, so their header blocks are bounded first.
  std::optional<HeaderLimitViolation> violation =
      scan_header_blocks(fd, 0, "the staged body", boundary_of(content_type));
  if (violation) {
    throw_malformed(violation->description);
  }

  // A duplicate gives the stream a descriptor of its own to close; both share one file
  // offset, so callers read the staged body with pread.
  UniqueFd own(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!own.valid()) {
    throw_system_error("duplicate the staged body descriptor", errno);
  }
  // The bounds start at 0: without them GMime would start at the descriptor's current
  // offset, which is the end of the file right after staging.
  auto body = GObjectPtr<GMimeStream>::adopt(g_mime_stream_fs_new_with_bounds(own.release(), 0, -1));
  parse_multipart_stream(body.get(), content_type, sink);
}

}  // namespace mgspool
