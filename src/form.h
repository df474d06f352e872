// Streaming parsers for the request body: multipart/form-data (with GMime) and
// application/x-www-form-urlencoded. Both read a staging file and push fields, in request
// order, into a FieldSink, so no value needs to be held in memory by the parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mgspool {

// What is known of a field before its value: everything except the bytes.
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
// byte; a bad escape is kept literally, as browsers and Mailgun's own libraries do.
class UrlencodedDecoder {
 public:
  explicit UrlencodedDecoder(FieldSink& sink);
  void feed(std::string_view bytes);
  void finish();

 private:
  // Implementation state; see form_urlencoded.cpp.
  FieldSink& m_sink;
  enum class State { name, value } m_state = State::name;
  std::string m_name;
  std::string m_pending_escape;
  std::string m_value_buffer;
  bool m_in_pair = false;
  void flush_value();
  void emit_byte(char byte);
  void end_pair();
};

// Reads the urlencoded body from fd to end of file and feeds it to a decoder.
void parse_urlencoded_file(int fd, FieldSink& sink);

// Parses a multipart/form-data body stored in the file behind fd, given the request's
// Content-Type header (which carries the boundary). GMime parses the file as one MIME
// entity, seekable and with persistence on, so large parts stay on disk. Throws
// RequestError(malformed_request) when there is no boundary or the body is not a form.
void parse_multipart_file(int fd, std::string_view content_type, FieldSink& sink);

}  // namespace mgspool
