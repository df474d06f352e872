#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "file_io.h"
#include "form.h"
#include "recording_sink.h"
#include "request_error.h"
#include "signature.h"
#include "spool_limits.h"
#include "test_support.h"

using mgspool::Outcome;
using mgspool::RequestError;
using mgspool::UrlencodedDecoder;
using mgspool::testing::RecordingSink;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs pairs_of(const RecordingSink& sink) {
  Pairs pairs;
  for (const auto& field : sink.fields) {
    pairs.emplace_back(field.head.name, field.value);
  }
  return pairs;
}

Pairs decode_whole(std::string_view body) {
  RecordingSink sink;
  UrlencodedDecoder decoder(sink);
  decoder.feed(body);
  decoder.finish();
  return pairs_of(sink);
}

Pairs decode_byte_by_byte(std::string_view body) {
  RecordingSink sink;
  UrlencodedDecoder decoder(sink);
  for (char byte : body) {
    decoder.feed(std::string_view(&byte, 1));
  }
  decoder.finish();
  return pairs_of(sink);
}

// Counts value bytes without keeping them, to follow a large value through the decoder.
class CountingSink : public mgspool::FieldSink {
 public:
  void begin_field(const mgspool::FieldHead&) override { ++fields; }
  void append(std::string_view bytes) override {
    value_bytes += bytes.size();
    largest_piece = std::max(largest_piece, bytes.size());
  }
  void end_field() override {}

  std::size_t fields = 0;
  std::size_t value_bytes = 0;
  std::size_t largest_piece = 0;
};

// Splits a request capture into its header block and body at the first blank line.
std::string body_of_capture(const std::string& capture) {
  std::size_t crlf = capture.find("\r\n\r\n");
  std::size_t lf = capture.find("\n\n");
  if (crlf != std::string::npos && (lf == std::string::npos || crlf < lf)) {
    return capture.substr(crlf + 4);
  }
  REQUIRE(lf != std::string::npos);
  return capture.substr(lf + 2);
}

mgspool::UniqueFd write_scratch_file(const std::filesystem::path& path, std::string_view bytes) {
  mgspool::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  mgspool::write_all(fd.get(), bytes, path.string());
  return fd;
}

}  // namespace

TEST_CASE("urlencoded decoding table") {
  struct Row {
    std::string body;
    Pairs expected;
  };
  const std::vector<Row> rows = {
      {"a=1&b=2", {{"a", "1"}, {"b", "2"}}},
      {"a=hello+world", {{"a", "hello world"}}},
      {"first+name=x", {{"first name", "x"}}},
      {"a=%41%42", {{"a", "AB"}}},
      {"a=%4a%4A%e2%82%AC", {{"a", "JJ\xe2\x82\xac"}}},
      {"a=%2B%26%3D", {{"a", "+&="}}},
      {"a%3Db=c", {{"a=b", "c"}}},
      {"a=%zz", {{"a", "%zz"}}},
      {"a=%4z", {{"a", "%4z"}}},
      {"a=%4", {{"a", "%4"}}},
      {"a=%", {{"a", "%"}}},
      {"a=%4&b=1", {{"a", "%4"}, {"b", "1"}}},
      {"a=%&b=1", {{"a", "%"}, {"b", "1"}}},
      {"a=%%41", {{"a", "%A"}}},
      {"a=%+", {{"a", "% "}}},
      {"%zz=1", {{"%zz", "1"}}},
      {"a%=1", {{"a%", "1"}}},
      {"a=", {{"a", ""}}},
      {"a", {{"a", ""}}},
      {"a&b", {{"a", ""}, {"b", ""}}},
      {"a=&b=", {{"a", ""}, {"b", ""}}},
      {"=v", {{"", "v"}}},
      {"a=b=c", {{"a", "b=c"}}},
      {"&&a=1&&b=2&", {{"a", "1"}, {"b", "2"}}},
      {"", {}},
      {"&", {}},
      {"&&&", {}},
      {"Received=one&x=1&Received=two&Received=three",
       {{"Received", "one"}, {"x", "1"}, {"Received", "two"}, {"Received", "three"}}},
      {"bin=%00%FF%80%0D%0A", {{"bin", std::string("\0\xff\x80\r\n", 5)}}},
      {"raw=\x01\xfe", {{"raw", "\x01\xfe"}}},
  };

  for (const Row& row : rows) {
    CAPTURE(row.body);
    CHECK(decode_whole(row.body) == row.expected);
    CHECK(decode_byte_by_byte(row.body) == row.expected);
  }
}

TEST_CASE("urlencoded name length limit") {
  std::string longest(mgspool::k_max_field_name_bytes, 'n');
  CHECK(decode_whole(longest + "=1") == Pairs{{longest, "1"}});

  RecordingSink sink;
  UrlencodedDecoder decoder(sink);
  try {
    decoder.feed(longest + "n=1");
    decoder.finish();
    FAIL("a name over the limit was accepted");
  } catch (const RequestError& error) {
    CHECK(error.outcome() == Outcome::malformed_request);
  }
}

TEST_CASE("urlencoded field count limit") {
  std::string body;
  for (std::size_t i = 0; i <= mgspool::k_max_form_fields; ++i) {
    body += "a=1&";
  }
  RecordingSink sink;
  UrlencodedDecoder decoder(sink);
  try {
    decoder.feed(body);
    decoder.finish();
    FAIL("more fields than the limit were accepted");
  } catch (const RequestError& error) {
    CHECK(error.outcome() == Outcome::malformed_request);
  }
  CHECK(sink.fields.size() == mgspool::k_max_form_fields);
}

TEST_CASE("urlencoded large value streams") {
  // A 40 MB body-mime, fed in 1 MB pieces, must reach the sink in bounded pieces.
  constexpr std::size_t k_value_bytes = 40 * 1024 * 1024;
  constexpr std::size_t k_piece_bytes = 1024 * 1024;
  std::string piece(k_piece_bytes, 'x');

  CountingSink sink;
  UrlencodedDecoder decoder(sink);
  decoder.feed("body-mime=");
  for (std::size_t fed = 0; fed < k_value_bytes; fed += k_piece_bytes) {
    decoder.feed(piece);
  }
  decoder.feed("&next=1");
  decoder.finish();

  CHECK(sink.fields == 2);
  CHECK(sink.value_bytes == k_value_bytes + 1);
  CHECK(sink.largest_piece <= mgspool::k_io_buffer_bytes);
}

TEST_CASE("urlencoded file read from start") {
  mgspool::testing::ScratchDirectory scratch;
  // The descriptor's offset is at the end of the file after writing; parsing must still
  // read from offset 0.
  mgspool::UniqueFd fd = write_scratch_file(scratch.path() / "body", "a=1&b=two+words&c=%41");

  RecordingSink sink;
  mgspool::parse_urlencoded_file(fd.get(), sink);
  CHECK(pairs_of(sink) == Pairs{{"a", "1"}, {"b", "two words"}, {"c", "A"}});
}

TEST_CASE("urlencoded Mailgun captures parse") {
  auto shared = mgspool::testing::shared_or_skip("urlencoded Mailgun captures parse");
  if (!shared) {
    return;
  }
  const char* names[] = {"multi_mail-parsed-invalid.http", "multi_mail-parsed-missing.http",
                         "multi_mail-parsed-spam.http",    "multi_mail-raw-invalid.http",
                         "multi_mail-raw-missing.http",    "multi_mail-raw-spam.http",
                         "multi_mail-raw-valid.http"};
  mgspool::testing::ScratchDirectory scratch;

  for (const char* name : names) {
    CAPTURE(name);
    std::string body = body_of_capture(mgspool::testing::read_file(*shared / "mailgun-samples" / name));
    mgspool::UniqueFd fd = write_scratch_file(scratch.path() / name, body);

    RecordingSink sink;
    mgspool::parse_urlencoded_file(fd.get(), sink);
    CHECK(sink.values_of("recipient") == std::vector<std::string>{"foo+bar@multimail.mailgun.org"});
    CHECK(sink.values_of("timestamp").size() == 1);
    CHECK(sink.values_of("token").size() == 1);
  }
}

TEST_CASE("urlencoded raw capture verifies") {
  auto shared = mgspool::testing::shared_or_skip("urlencoded raw capture verifies");
  if (!shared) {
    return;
  }
  std::string capture = mgspool::testing::read_file(*shared / "mailgun-samples" / "multi_mail-raw-valid.http");
  RecordingSink sink;
  UrlencodedDecoder decoder(sink);
  decoder.feed(body_of_capture(capture));
  decoder.finish();

  // The capture's fields were signed with the key "foo" in 2013.
  sink.check_signed_with("foo", 1366071615);

  auto messages = sink.values_of("body-mime");
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].find("\r\nSubject: ") != std::string::npos);
}
