#include <doctest/doctest.h>
#include <fcntl.h>
#include <gmime/gmime.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "file_io.h"
#include "form.h"
#include "gobject_ptr.h"
#include "recording_sink.h"
#include "request_error.h"
#include "signature.h"
#include "spool_limits.h"
#include "test_support.h"

using mgspool::GObjectPtr;
using mgspool::Outcome;
using mgspool::RequestError;
using mgspool::testing::RecordingSink;

// A seekable GMime stream over another that returns at most one byte per read, to show
// that the form parser copes with short reads.
struct TestOneByteStream {
  GMimeStream parent;
  GMimeStream* inner;
};

struct TestOneByteStreamClass {
  GMimeStreamClass parent_class;
};

G_DEFINE_TYPE(TestOneByteStream, test_one_byte_stream, GMIME_TYPE_STREAM)

static GMimeStream* test_one_byte_stream_new(GMimeStream* inner);

static GMimeStream* inner_of(GMimeStream* stream) {
  return reinterpret_cast<TestOneByteStream*>(stream)->inner;
}

static void sync_position(GMimeStream* stream) {
  stream->position = g_mime_stream_tell(inner_of(stream));
}

static ssize_t test_one_byte_stream_read(GMimeStream* stream, char* buffer, size_t length) {
  ssize_t count = g_mime_stream_read(inner_of(stream), buffer, length > 0 ? 1 : 0);
  sync_position(stream);
  return count;
}

static ssize_t test_one_byte_stream_write(GMimeStream*, const char*, size_t) {
  return -1;
}

static int test_one_byte_stream_flush(GMimeStream*) {
  return 0;
}

static int test_one_byte_stream_close(GMimeStream*) {
  return 0;
}

static gboolean test_one_byte_stream_eos(GMimeStream* stream) {
  return g_mime_stream_eos(inner_of(stream));
}

static int test_one_byte_stream_reset(GMimeStream* stream) {
  int result = g_mime_stream_reset(inner_of(stream));
  sync_position(stream);
  return result;
}

static gint64 test_one_byte_stream_seek(GMimeStream* stream, gint64 offset, GMimeSeekWhence whence) {
  gint64 result = g_mime_stream_seek(inner_of(stream), offset, whence);
  sync_position(stream);
  return result;
}

static gint64 test_one_byte_stream_tell(GMimeStream* stream) {
  return g_mime_stream_tell(inner_of(stream));
}

static gint64 test_one_byte_stream_length(GMimeStream* stream) {
  return g_mime_stream_length(inner_of(stream));
}

static GMimeStream* test_one_byte_stream_substream(GMimeStream* stream, gint64 start, gint64 end) {
  auto inner = GObjectPtr<GMimeStream>::adopt(g_mime_stream_substream(inner_of(stream), start, end));
  return test_one_byte_stream_new(inner.get());
}

static void test_one_byte_stream_finalize(GObject* object) {
  g_object_unref(reinterpret_cast<TestOneByteStream*>(object)->inner);
  G_OBJECT_CLASS(test_one_byte_stream_parent_class)->finalize(object);
}

static void test_one_byte_stream_class_init(TestOneByteStreamClass* klass) {
  GMimeStreamClass* stream_class = GMIME_STREAM_CLASS(klass);
  G_OBJECT_CLASS(klass)->finalize = test_one_byte_stream_finalize;
  stream_class->read = test_one_byte_stream_read;
  stream_class->write = test_one_byte_stream_write;
  stream_class->flush = test_one_byte_stream_flush;
  stream_class->close = test_one_byte_stream_close;
  stream_class->eos = test_one_byte_stream_eos;
  stream_class->reset = test_one_byte_stream_reset;
  stream_class->seek = test_one_byte_stream_seek;
  stream_class->tell = test_one_byte_stream_tell;
  stream_class->length = test_one_byte_stream_length;
  stream_class->substream = test_one_byte_stream_substream;
}

static void test_one_byte_stream_init(TestOneByteStream* self) {
  self->inner = nullptr;
}

static GMimeStream* test_one_byte_stream_new(GMimeStream* inner) {
  auto* self = static_cast<TestOneByteStream*>(g_object_new(test_one_byte_stream_get_type(), nullptr));
  self->inner = static_cast<GMimeStream*>(g_object_ref(inner));
  g_mime_stream_construct(GMIME_STREAM(self), inner->bound_start, inner->bound_end);
  GMIME_STREAM(self)->position = g_mime_stream_tell(inner);
  return GMIME_STREAM(self);
}

namespace {

constexpr const char* k_boundary = "515e0b8d-a7e3-43ef-808e-f27b75edf470";
const std::string k_content_type = std::string("multipart/form-data; boundary=") + k_boundary;

struct TestPart {
  std::string headers;  // header lines, each ending in CRLF
  std::string value;
};

enum class Ending { closed_with_crlf, closed_at_end, unclosed };

std::string build_form(const std::vector<TestPart>& parts, Ending ending = Ending::closed_with_crlf) {
  std::string body;
  for (const TestPart& part : parts) {
    body += std::string("--") + k_boundary + "\r\n" + part.headers + "\r\n" + part.value + "\r\n";
  }
  if (ending != Ending::unclosed) {
    body += std::string("--") + k_boundary + "--";
  }
  if (ending == Ending::closed_with_crlf) {
    body += "\r\n";
  }
  return body;
}

std::string all_byte_values() {
  std::string bytes;
  for (int value = 0; value < 256; ++value) {
    bytes.push_back(static_cast<char>(value));
  }
  // Lines that look almost like a delimiter must stay content.
  bytes += std::string("\r\n--") + k_boundary + "x\r\n--" + "\r\n\r\n";
  return bytes;
}

RecordingSink parse_bytes(const std::string& body, const std::string& content_type = k_content_type) {
  mgspool::testing::ScratchDirectory scratch;
  std::filesystem::path path = scratch.path() / "body";
  mgspool::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  mgspool::write_all(fd.get(), body, path.string());

  RecordingSink sink;
  mgspool::parse_multipart_file(fd.get(), content_type, sink);
  return sink;
}

Outcome outcome_of_parse(const std::string& body, const std::string& content_type = k_content_type) {
  try {
    parse_bytes(body, content_type);
  } catch (const RequestError& error) {
    return error.outcome();
  }
  return Outcome::stored;
}

std::string disposition(const std::string& name) {
  return "Content-Disposition: form-data; name=\"" + name + "\"\r\n";
}

// Splits a request capture into its header block and body at the first blank line.
std::string body_of_capture(const std::string& capture) {
  std::size_t end = capture.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  return capture.substr(end + 4);
}

std::string lf_to_crlf(const std::string& text) {
  std::string converted;
  for (char byte : text) {
    if (byte == '\n') {
      converted.push_back('\r');
    }
    converted.push_back(byte);
  }
  return converted;
}

class ThrowingSink : public mgspool::FieldSink {
 public:
  void begin_field(const mgspool::FieldHead&) override {}
  void append(std::string_view) override { throw RequestError(Outcome::request_too_large, "too much"); }
  void end_field() override {}
};

}  // namespace

TEST_CASE("multipart form fields exact") {
  const std::string binary = all_byte_values();
  const std::vector<TestPart> parts = {
      {disposition("Received"), "first hop"},
      {disposition("body-plain"), "line one\r\nline two\r\n\r\n"},
      {disposition("Received"), "second hop"},
      {"Content-Disposition: form-data; name=\"attachment-1\"; filename=\"data.bin\"\r\n"
       "Content-Type: application/octet-stream\r\nContent-Length: 999\r\n",
       binary},
      {"Content-Disposition: form-data; name=\"attachment-2\"; filename=\"\"\r\n", ""},
      {"Content-Disposition: form-data;\r\n name=\"attachment-3\"; filename*=UTF-8''%E2%82%AC.txt;"
       " filename=\"euro.txt\"\r\nContent-Type: text/plain;\r\n\tcharset=utf-8\r\n",
       "euro"},
      {disposition("Received"), "third hop"},
      {disposition("empty"), ""},
  };
  RecordingSink sink = parse_bytes(build_form(parts));

  REQUIRE(sink.fields.size() == parts.size());
  CHECK(sink.values_of("Received") == std::vector<std::string>{"first hop", "second hop", "third hop"});
  CHECK(sink.fields[1].value == "line one\r\nline two\r\n\r\n");
  CHECK_FALSE(sink.fields[1].head.is_file);
  CHECK(sink.fields[1].head.content_type == "");
  CHECK(sink.fields[1].head.content_disposition == "form-data; name=\"body-plain\"");

  CHECK(sink.fields[3].head.name == "attachment-1");
  CHECK(sink.fields[3].head.is_file);
  CHECK(sink.fields[3].head.content_type == "application/octet-stream");
  CHECK(sink.fields[3].value == binary);

  CHECK(sink.fields[4].head.is_file);
  CHECK(sink.fields[4].value == "");

  CHECK(sink.fields[5].head.name == "attachment-3");
  CHECK(sink.fields[5].head.is_file);
  CHECK(sink.fields[5].head.content_type == "text/plain;\tcharset=utf-8");
  CHECK(sink.fields[5].head.content_disposition ==
        "form-data; name=\"attachment-3\"; filename*=UTF-8''%E2%82%AC.txt; filename=\"euro.txt\"");
  CHECK(sink.fields[5].value == "euro");

  CHECK(sink.fields[7].head.name == "empty");
  CHECK(sink.fields[7].value == "");
}

TEST_CASE("multipart missing final boundary") {
  // A form without its closing delimiter was cut short: a retryable failure, not a 406.
  CHECK(outcome_of_parse(build_form({{disposition("a"), "1"}, {disposition("b"), "22"}}, Ending::unclosed)) ==
        Outcome::body_truncated);
  std::string cut = build_form({{disposition("a"), "1"}, {disposition("b"), std::string(1000, 'v')}});
  CHECK(outcome_of_parse(cut.substr(0, cut.size() / 2)) == Outcome::body_truncated);
}

TEST_CASE("multipart header block limits") {
  // A long file name is real mail: it is stored, and only a block beyond the message
  // limits of spool_limits.h is malformed.
  std::string long_name = "Content-Disposition: form-data; name=\"f\"; filename=\"" + std::string(70 * 1024, 'n') +
                          ".txt\"\r\n";
  CHECK(outcome_of_parse(build_form({{long_name, "1"}})) == Outcome::stored);
  std::string long_header = "X-Long: " + std::string(70 * 1024, 'p') + "\r\n";
  CHECK(outcome_of_parse(build_form({{disposition("a") + long_header, "1"}})) == Outcome::stored);

  std::string huge_header = "X-Long: " + std::string(mgspool::k_max_header_block_bytes, 'p') + "\r\n";
  CHECK(outcome_of_parse(build_form({{disposition("a") + huge_header, "1"}})) == Outcome::malformed_request);
  std::string many_lines;
  for (std::size_t i = 0; i <= mgspool::k_max_header_block_fields; ++i) {
    many_lines += "X-Filler: " + std::to_string(i) + "\r\n";
  }
  CHECK(outcome_of_parse(build_form({{disposition("a") + many_lines, "1"}})) == Outcome::malformed_request);
}

TEST_CASE("multipart nested part headers limited") {
  // An attached message or a nested multipart in a file part is built by GMime too.
  std::string message_header;
  for (std::size_t i = 0; i <= mgspool::k_max_header_block_fields; ++i) {
    message_header += "X-Filler: " + std::to_string(i) + "\r\n";
  }
  const std::string rfc822 = "Content-Disposition: form-data; name=\"m\"; filename=\"m.eml\"\r\n"
                             "Content-Type: message/rfc822\r\n";
  CHECK(outcome_of_parse(build_form({{rfc822, message_header + "\r\nbody"}})) == Outcome::malformed_request);
  CHECK(outcome_of_parse(build_form({{rfc822, "Subject: hi\r\n\r\nbody"}})) == Outcome::stored);

  std::string many_parts;
  for (std::size_t i = 0; i <= mgspool::k_max_message_header_blocks; ++i) {
    many_parts += "--in\r\n\r\nx\r\n";
  }
  const std::string nested = "Content-Disposition: form-data; name=\"n\"; filename=\"n.bin\"\r\n"
                             "Content-Type: multipart/mixed; boundary=in\r\n";
  CHECK(outcome_of_parse(build_form({{nested, many_parts + "--in--"}})) == Outcome::malformed_request);
  CHECK(outcome_of_parse(build_form({{nested, "--in\r\n\r\nx\r\n--in--"}})) == Outcome::stored);
}

TEST_CASE("multipart boundary-prefixed header names") {
  // A header named like the boundary plus more is a header line to GMime, not a delimiter.
  std::string lines;
  for (int i = 0; i < 300; ++i) {
    lines += std::string("--") + k_boundary + "xyz: " + std::to_string(i) + "\r\n";
  }
  RecordingSink sink = parse_bytes(build_form({{disposition("a") + lines, "1"}, {disposition("b"), "2"}}));
  REQUIRE(sink.fields.size() == 2);
  CHECK(sink.fields[0].value == "1");
  CHECK(sink.fields[1].value == "2");
  // Nor is a line that merely starts with the closing delimiter a closing delimiter.
  CHECK(outcome_of_parse(build_form({{disposition("a"), "1"}}, Ending::unclosed) + "--" + k_boundary +
                         "--xyz\r\n") == Outcome::body_truncated);
}

TEST_CASE("multipart closing delimiter at end") {
  // Mailgun ends the body right after the closing delimiter, without a line break.
  for (const std::string& last : {std::string("plain"), std::string("ends in CR\r"), std::string("")}) {
    CAPTURE(last);
    RecordingSink sink = parse_bytes(build_form({{disposition("a"), "1"}, {disposition("b"), last}},
                                                Ending::closed_at_end));
    REQUIRE(sink.fields.size() == 2);
    CHECK(sink.fields[0].value == "1");
    CHECK(sink.fields[1].value == last);
  }
}

TEST_CASE("multipart transfer encodings decoded") {
  RecordingSink sink = parse_bytes(build_form({
      {disposition("b64") + "Content-Transfer-Encoding: base64\r\n", "aGVsbG8gd29ybGQ=\r\n"},
      {disposition("qp") + "Content-Transfer-Encoding: quoted-printable\r\n", "caf=C3=A9 soft=\r\nbreak"},
  }));
  REQUIRE(sink.fields.size() == 2);
  CHECK(sink.fields[0].value == "hello world");
  CHECK(sink.fields[1].value == "caf\xc3\xa9 softbreak");
}

TEST_CASE("multipart embedded message exact") {
  // GMime parses message/rfc822 and multipart parts into trees of their own; the value must
  // still be the bytes as sent, mixed line endings included.
  const std::string message = "Subject: hi\r\nX-Folded: a\n  b\r\n\r\nbody\nline\r\n\r\n";
  const std::string nested = "--inner\r\nContent-Type: text/plain\r\n\r\nx\r\n--inner--\r\n";
  RecordingSink sink = parse_bytes(build_form({
      {"Content-Disposition: form-data; name=\"attachment-1\"; filename=\"fwd.eml\"\r\n"
       "Content-Type: message/rfc822\r\n",
       message},
      {disposition("files") + "Content-Type: multipart/mixed; boundary=inner\r\n", nested},
      {"Content-Type: message/rfc822\r\n" + disposition("last"), "Subject: end\n\nno newline"},
  }));
  REQUIRE(sink.fields.size() == 3);
  CHECK(sink.fields[0].head.is_file);
  CHECK(sink.fields[0].head.content_type == "message/rfc822");
  CHECK(sink.fields[0].value == message);
  CHECK(sink.fields[1].value == nested);
  CHECK(sink.fields[2].head.name == "last");
  CHECK(sink.fields[2].value == "Subject: end\n\nno newline");
}

TEST_CASE("multipart embedded message last") {
  const std::string message = "Subject: last\r\n\r\nbody\r\n";
  const TestPart part{disposition("m") + "Content-Type: message/rfc822\r\n", message};
  for (Ending ending : {Ending::closed_with_crlf, Ending::closed_at_end}) {
    CAPTURE(static_cast<int>(ending));
    RecordingSink sink = parse_bytes(build_form({part}, ending));
    REQUIRE(sink.fields.size() == 1);
    CHECK(sink.fields[0].value == message);
  }
  CHECK(outcome_of_parse(build_form({part}, Ending::unclosed)) == Outcome::body_truncated);
}

TEST_CASE("multipart headers cut by delimiter") {
  // The first part's headers run straight into the next delimiter: it has no value, and the
  // next part's value must not be handed to it.
  const std::string second_value(400, 'x');
  std::string body = std::string("--") + k_boundary + "\r\n" + disposition("first") +
                     "Content-Type: message/rfc822\r\n"
                     "--" + k_boundary + "\r\n" + disposition("second") + "\r\n" + second_value + "\r\n" +
                     "--" + k_boundary + "--\r\n";
  RecordingSink sink = parse_bytes(body);
  REQUIRE(sink.fields.size() == 2);
  CHECK(sink.fields[0].head.name == "first");
  CHECK(sink.fields[0].value.empty());
  CHECK(sink.fields[1].head.name == "second");
  CHECK(sink.fields[1].value == second_value);
}

TEST_CASE("multipart long padded delimiter") {
  // A delimiter may carry whitespace before its line break (transport padding). Until the
  // break arrives such a line may still be content, and scanning it again for every byte
  // once made a 60 KB line cost seconds of CPU before the signature check.
  const std::string message = "Subject: padded\r\n\r\nbody\r\n";
  std::string body = std::string("--") + k_boundary + "\r\n" + disposition("m") + "Content-Type: message/rfc822\r\n\r\n" +
                     message + "\r\n--" + k_boundary + std::string(60000, ' ') + "\r\n" + disposition("next") +
                     "\r\nvalue\r\n--" + k_boundary + "--\r\n";
  RecordingSink sink = parse_bytes(body);
  REQUIRE(sink.fields.size() == 2);
  CHECK(sink.fields[0].value == message);
  CHECK(sink.fields[1].head.name == "next");
  CHECK(sink.fields[1].value == "value");
}

TEST_CASE("multipart large file streams") {
  std::string content;
  for (std::size_t i = 0; content.size() < 4 * 1024 * 1024; ++i) {
    content.push_back(static_cast<char>((i * 7919) >> 3));
  }
  RecordingSink sink = parse_bytes(build_form({
      {disposition("before"), "x"},
      {"Content-Disposition: form-data; name=\"attachment-1\"; filename=\"big.bin\"\r\n", content},
  }));
  REQUIRE(sink.fields.size() == 2);
  CHECK(sink.fields[1].value.size() == content.size());
  CHECK(mgspool::sha256_hex(sink.fields[1].value) == mgspool::sha256_hex(content));
  CHECK(sink.largest_piece <= mgspool::k_io_buffer_bytes);
}

TEST_CASE("multipart large embedded message streams") {
  std::string message = "Subject: big\r\n\r\n";
  while (message.size() < 1024 * 1024) {
    message += std::string(76, 'x') + "\r\n";
  }
  RecordingSink sink = parse_bytes(build_form({{disposition("m") + "Content-Type: message/rfc822\r\n", message}}));
  REQUIRE(sink.fields.size() == 1);
  CHECK(sink.fields[0].value == message);
  CHECK(sink.largest_piece <= mgspool::k_io_buffer_bytes);
}

TEST_CASE("multipart one byte reads") {
  const std::string binary = all_byte_values();
  std::string body = build_form({
      {disposition("Received"), "hop"},
      {"Content-Disposition: form-data; name=\"f\"; filename=\"f.bin\"\r\n", binary},
      {"Content-Disposition: form-data; name=\"m\"\r\nContent-Type: message/rfc822\r\n", "A: b\r\n\r\nc"},
  });
  auto memory = GObjectPtr<GMimeStream>::adopt(g_mime_stream_mem_new_with_buffer(body.data(), body.size()));
  auto slow = GObjectPtr<GMimeStream>::adopt(test_one_byte_stream_new(memory.get()));

  RecordingSink sink;
  mgspool::parse_multipart_stream(slow.get(), k_content_type, sink);
  REQUIRE(sink.fields.size() == 3);
  CHECK(sink.fields[0].value == "hop");
  CHECK(sink.fields[1].value == binary);
  CHECK(sink.fields[2].value == "A: b\r\n\r\nc");
}

TEST_CASE("multipart malformed forms rejected") {
  const std::string form = build_form({{disposition("a"), "1"}});
  CHECK(outcome_of_parse(form, "multipart/form-data") == Outcome::malformed_request);
  CHECK(outcome_of_parse(form, "multipart/form-data; boundary=\"\"") == Outcome::malformed_request);
  CHECK(outcome_of_parse(form, "text/plain; boundary=" + std::string(k_boundary)) == Outcome::malformed_request);
  CHECK(outcome_of_parse(form, k_content_type + "\r\nContent-Transfer-Encoding: base64") ==
        Outcome::malformed_request);
  CHECK(outcome_of_parse(build_form({{"Content-Disposition: form-data\r\n", "1"}})) == Outcome::malformed_request);
  CHECK(outcome_of_parse(build_form({{"Content-Type: text/plain\r\n", "1"}})) == Outcome::malformed_request);
  CHECK(outcome_of_parse(build_form({{disposition("a"), "1"}, {"X-Other: y\r\n", "2"}})) ==
        Outcome::malformed_request);
  CHECK(outcome_of_parse(form) == Outcome::stored);
}

TEST_CASE("multipart field count limit") {
  std::vector<TestPart> parts(mgspool::k_max_form_fields, TestPart{disposition("a"), "1"});
  CHECK(outcome_of_parse(build_form(parts)) == Outcome::stored);
  parts.push_back(TestPart{disposition("a"), "1"});
  CHECK(outcome_of_parse(build_form(parts)) == Outcome::malformed_request);
}

TEST_CASE("multipart sink error propagates") {
  mgspool::testing::ScratchDirectory scratch;
  std::filesystem::path path = scratch.path() / "body";
  mgspool::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  mgspool::write_all(fd.get(), build_form({{disposition("a"), "1"}}), path.string());

  ThrowingSink sink;
  try {
    mgspool::parse_multipart_file(fd.get(), k_content_type, sink);
    FAIL("the sink's exception was lost");
  } catch (const RequestError& error) {
    CHECK(error.outcome() == Outcome::request_too_large);
  }
}

TEST_CASE("multipart Mailgun capture parses") {
  auto shared = mgspool::testing::shared_or_skip("multipart Mailgun capture parses");
  if (!shared) {
    return;
  }
  std::string capture = mgspool::testing::read_file(*shared / "mailgun-samples" / "multi_mail-parsed-valid.http");
  RecordingSink sink = parse_bytes(body_of_capture(capture), k_content_type);

  CHECK(sink.fields.size() > 20);
  CHECK(sink.values_of("Received").size() == 4);
  CHECK(sink.values_of("subject") == std::vector<std::string>{"Test"});
  CHECK(sink.values_of("attachment-1") ==
        std::vector<std::string>{"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n"});
  CHECK(sink.values_of("attachment-2") == std::vector<std::string>{"Nam accumsan euismod eros et rhoncus.\r\n"});
  for (const auto& field : sink.fields) {
    CAPTURE(field.head.name);
    bool is_attachment = field.head.name.starts_with("attachment-") && field.head.name != "attachment-count";
    CHECK(field.head.is_file == is_attachment);
  }

  // The capture's fields were signed with the key "foo" in 2013.
  sink.check_signed_with("foo", 1366071615);
}

TEST_CASE("multipart legacy webhook parses") {
  auto shared = mgspool::testing::shared_or_skip("multipart legacy webhook parses");
  if (!shared) {
    return;
  }
  std::string body = lf_to_crlf(
      mgspool::testing::read_file(*shared / "mailgun-samples" / "learnscripture-legacy-bounce-webhook.multipart"));
  RecordingSink sink = parse_bytes(body, "multipart/form-data; boundary=f723ccea-a5e9-497a-806e-7088c837e9e0");

  CHECK(sink.values_of("event") == std::vector<std::string>{"bounced"});
  CHECK(sink.values_of("body-plain") == std::vector<std::string>{""});
  auto messages = sink.values_of("attachment-1");
  REQUIRE(messages.size() == 1);
  // Its part header is Content-Length: 1195, counted before the LF to CRLF conversion. The
  // parser ignores that header, but the bytes still match it.
  std::string without_cr = messages[0];
  std::erase(without_cr, '\r');
  CHECK(without_cr.size() == 1195);
  CHECK(lf_to_crlf(without_cr) == messages[0]);
  CHECK(messages[0].starts_with("Received: by luna.mailgun.net"));
  for (const auto& field : sink.fields) {
    if (field.head.name == "attachment-1") {
      CHECK(field.head.is_file);
      CHECK(field.head.content_type == "application/octet-stream");
    }
  }
}
