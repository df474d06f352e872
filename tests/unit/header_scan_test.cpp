#include "header_scan.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include <filesystem>
#include <optional>
#include <string>

#include "file_io.h"
#include "spool_limits.h"
#include "test_support.h"

namespace {

// One more header line than a header block may hold.
std::string too_many_fields() {
  std::string lines;
  for (std::size_t i = 0; i <= mgspool::k_max_header_block_fields; ++i) {
    lines += "X-Filler: " + std::to_string(i) + "\r\n";
  }
  return lines;
}

// A message of count empty parts, each after a delimiter line of "--IN" and then padding.
std::string many_parts(const std::string& declared, const std::string& padding, std::size_t count) {
  std::string text = "Content-Type: multipart/mixed; boundary=\"" + declared + "\"\r\n\r\n";
  for (std::size_t i = 0; i < count; ++i) {
    text += "--IN" + padding + "\r\n\r\nx\r\n";
  }
  return text + "--IN" + padding + "--\r\n";
}

std::optional<mgspool::HeaderLimitViolation> scan(const std::string& bytes,
                                                 const std::optional<std::string>& boundary = std::nullopt) {
  mgspool::testing::ScratchDirectory scratch;
  std::filesystem::path path = scratch.path() / "input";
  mgspool::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  mgspool::write_all(fd.get(), bytes, path.string());
  return mgspool::scan_header_blocks(fd.get(), 0, "input", boundary);
}

const std::size_t k_too_many_parts = mgspool::k_max_message_header_blocks + 1;

}  // namespace

TEST_CASE("header scan boundary trailing white space") {
  // RFC 2046 lets padding follow a delimiter; GMime also keeps a boundary's own trailing
  // white space and requires it on the line.
  CHECK(scan(many_parts("IN ", " ", k_too_many_parts)).has_value());
  CHECK(scan(many_parts("IN\t", "\t", k_too_many_parts)).has_value());
  CHECK(scan(many_parts("IN", " \t ", k_too_many_parts)).has_value());
  CHECK(scan(many_parts("IN ", " \t", k_too_many_parts)).has_value());
  CHECK_FALSE(scan(many_parts("IN ", "", k_too_many_parts)).has_value());
  CHECK_FALSE(scan(many_parts("IN\t", " ", k_too_many_parts)).has_value());
  CHECK_FALSE(scan(many_parts("IN ", " ", 3)).has_value());
}

TEST_CASE("header scan boundary padding in part header") {
  std::string message = "Content-Type: multipart/mixed; boundary=\"IN \"\r\n\r\n--IN  \r\n" + too_many_fields() +
                        "\r\nx\r\n--IN --\r\n";
  std::optional<mgspool::HeaderLimitViolation> violation = scan(message);
  REQUIRE(violation.has_value());
  CHECK(violation->description.find("the header of the part") == 0);
}

TEST_CASE("header scan digest default message") {
  // In a multipart/digest a part without a valid Content-Type is message/rfc822, and GMime
  // parses the header of the message inside it.
  const std::string head = "Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n";
  std::optional<mgspool::HeaderLimitViolation> violation = scan(head + "\r\n" + too_many_fields() + "\r\nx\r\n--D--\r\n");
  REQUIRE(violation.has_value());
  CHECK(violation->description.find("the header of the attached message") == 0);
  CHECK(scan(head + "Content-Type: garbage\r\n\r\n" + too_many_fields() + "\r\nx\r\n--D--\r\n").has_value());
  CHECK_FALSE(scan(head + "Content-Type: text/plain\r\n\r\n" + too_many_fields() + "\r\n--D--\r\n").has_value());
  CHECK_FALSE(scan(head + "Content-Transfer-Encoding: base64\r\n\r\n" + too_many_fields() + "\r\n--D--\r\n")
                  .has_value());
}

TEST_CASE("header scan digest default only in digest") {
  const std::string message = "Content-Type: multipart/mixed; boundary=M\r\n\r\n--M\r\n\r\n" + too_many_fields() +
                              "\r\n--M--\r\n";
  CHECK_FALSE(scan(message).has_value());
}

TEST_CASE("header scan form body parts") {
  const std::string part = "--F\r\nContent-Disposition: form-data; name=\"a\"\r\n";
  CHECK_FALSE(scan(part + "\r\n1\r\n--F--", std::string("F")).has_value());
  CHECK(scan(part + too_many_fields() + "\r\n1\r\n--F--", std::string("F")).has_value());
  std::string long_name = "--F\r\nContent-Disposition: form-data; name=\"a\"; filename=\"" +
                          std::string(70 * 1024, 'n') + "\"\r\n\r\n1\r\n--F--";
  CHECK_FALSE(scan(long_name, std::string("F")).has_value());
}

TEST_CASE("header scan form attached message") {
  const std::string head = "--F\r\nContent-Disposition: form-data; name=\"m\"; filename=\"m.eml\"\r\n"
                           "Content-Type: message/rfc822\r\n\r\n";
  std::optional<mgspool::HeaderLimitViolation> violation =
      scan(head + too_many_fields() + "\r\nbody\r\n--F--", std::string("F"));
  REQUIRE(violation.has_value());
  CHECK(violation->description.find("the header of the attached message") == 0);
  CHECK_FALSE(scan(head + "Subject: hi\r\n\r\nbody\r\n--F--", std::string("F")).has_value());
}

TEST_CASE("header scan form boundary-prefixed names") {
  // "--Fxyz: 1" is a header line to GMime; it must neither end the block nor start one.
  std::string lines;
  for (std::size_t i = 0; i <= mgspool::k_max_header_block_fields; ++i) {
    lines += (i % 250 == 0 ? "--Fxyz: " : "X-Filler: ") + std::to_string(i) + "\r\n";
  }
  CHECK(scan("--F\r\n" + lines + "\r\n1\r\n--F--", std::string("F")).has_value());
}
