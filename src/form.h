// Streaming parsers for the request body: multipart/form-data (with GMime) and
// application/x-www-form-urlencoded. Both read a staging file and push fields, in request
// order, into a FieldSink, so no value needs to be held in memory by the parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

typedef struct _GMimeStream GMimeStream;

namespace mgspool {

// The description of a field that precedes its value: everything except the bytes.
struct FieldHead {
  std::string name;                 // the field name as sent, decoded from the form's quoting
  bool is_file = false;             // multipart only: the part carried a filename parameter
  std::string content_type;         // multipart only: the part's Content-Type value as sent, or ""
  std::string content_disposition;  // multipart only: the Content-Disposition value as sent
};

// Receives the fields of a form in request order: begin_field, any number of append calls
// with the decoded value bytes, then end_field. Implementations may throw RequestError to
// stop the parse (a limit was hit, a write failed); the parser lets it propagate.
class FieldSink {
 public:
  virtual ~FieldSink() = default;
  virtual void begin_field(const FieldHead& head) = 0;
  virtual void append(std::string_view bytes) = 0;
  virtual void end_field() = 0;
};

// Push decoder for application/x-www-form-urlencoded: accepts the body in pieces of any
// size (one byte at a time works) and emits each name=value pair. '+' is a space, %XX a
// byte; a bad escape is kept literally, as browsers and Mailgun's own libraries do. A pair
// without '=' is a field with an empty value, and empty pairs ("&&") are skipped. Values
// reach the sink in pieces of at most k_io_buffer_bytes. Throws RequestError
// (malformed_request) for a name longer than k_max_field_name_bytes or more than
// k_max_form_fields fields. The caller must call finish() after the last piece.
class UrlencodedDecoder {
 public:
  explicit UrlencodedDecoder(FieldSink& sink);
  void feed(std::string_view bytes);
  void finish();

 private:
  enum class Part { name, value };

  void decode_byte(char byte);
  void emit_byte(char byte);
  void flush_escape();
  void start_value();
  void end_pair();
  void flush_value();

  FieldSink& m_sink;
  Part m_part = Part::name;
  bool m_pair_started = false;     // a byte of the current pair has been seen
  std::size_t m_field_count = 0;
  std::string m_name;              // at most k_max_field_name_bytes
  std::string m_escape;            // "%" or "%X" while an escape is incomplete
  std::string m_value_buffer;      // decoded value bytes, flushed at k_io_buffer_bytes
};

// Reads the urlencoded body from fd to end of file and feeds it to a decoder.
void parse_urlencoded_file(int fd, FieldSink& sink);

// Parses a multipart/form-data body stored in the file behind fd, from offset 0, given the
// request's Content-Type header (which carries the boundary). GMime parses the file as one
// MIME entity, seekable and with persistence on, so large parts stay on disk and each value
// reaches the sink in pieces. Values are the bytes as sent (base64 or quoted-printable
// parts are decoded). Throws RequestError(malformed_request) when there is no boundary,
// the body is not a form, a part has no Content-Disposition name, or there are more than
// k_max_form_fields parts. A body without its final boundary yields the parts before it.
void parse_multipart_file(int fd, std::string_view content_type, FieldSink& sink);

// Same as parse_multipart_file, for a body in any seekable GMime stream (which is read
// from its start and must not be used elsewhere during the call). Exposed so tests can
// feed streams that return short reads.
void parse_multipart_stream(GMimeStream* body, std::string_view content_type, FieldSink& sink);

}  // namespace mgspool
