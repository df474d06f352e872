#include "signature_fields.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include <filesystem>
#include <string>

#include "file_io.h"
#include "request_error.h"
#include "signature.h"
#include "spool_limits.h"
#include "test_support.h"

using mgspool::SignatureFields;

namespace {

const std::string k_content_type = "multipart/form-data; boundary=sig-boundary";

std::string part(const std::string& name, const std::string& value, const std::string& extra = "") {
  return "--sig-boundary\r\nContent-Disposition: form-data; name=\"" + name + "\"" + extra + "\r\n\r\n" + value +
         "\r\n";
}

std::string signed_parts() {
  return part("timestamp", "1700000000") + part("token", "tok-123") + part("signature", std::string(64, 'a'));
}

SignatureFields scan(const std::string& body, const std::string& content_type = k_content_type) {
  mgspool::testing::ScratchDirectory scratch;
  std::filesystem::path path = scratch.path() / "body";
  mgspool::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  mgspool::write_all(fd.get(), body, "body");
  return mgspool::read_multipart_signature_fields(fd.get(), content_type);
}

}  // namespace

TEST_CASE("signature fields from a form") {
  SignatureFields fields = scan(part("subject", "Hi") + signed_parts() + "--sig-boundary--");
  CHECK(fields.complete());
  CHECK(fields.closed);
  CHECK(fields.timestamp == "1700000000");
  CHECK(fields.token == "tok-123");
  CHECK(fields.signature == std::string(64, 'a'));
}

TEST_CASE("signature fields repeated or in files") {
  SignatureFields repeated = scan(signed_parts() + part("token", "other") + "--sig-boundary--\r\n");
  CHECK(repeated.token_count == 2);
  CHECK_FALSE(repeated.complete());

  SignatureFields in_file = scan(part("timestamp", "1") + part("token", "t", "; filename=\"t.txt\"") +
                                 part("signature", "s") + "--sig-boundary--\r\n");
  CHECK(in_file.token_count == 0);
  CHECK_FALSE(in_file.complete());
}

TEST_CASE("signature fields form cut short") {
  std::string body = signed_parts() + part("body-plain", std::string(1000, 'x'));
  SignatureFields fields = scan(body.substr(0, body.size() - 10));
  CHECK_FALSE(fields.closed);
}

TEST_CASE("signature fields odd framing") {
  // LF line ends, a preamble, transport padding after the delimiters, a folded header.
  std::string body = "preamble\n--sig-boundary \t\nContent-Disposition: form-data;\n name=\"timestamp\"\n\n12\n"
                     "--sig-boundary\nContent-Disposition: form-data; name=token\n\nabc\n"
                     "--sig-boundary\nContent-Disposition: form-data; name=\"signature\"\n\nsig\n"
                     "--sig-boundary--  \nepilogue\n";
  SignatureFields fields = scan(body);
  CHECK(fields.complete());
  CHECK(fields.closed);
  CHECK(fields.timestamp == "12");
  CHECK(fields.token == "abc");
  CHECK(fields.signature == "sig");
}

TEST_CASE("signature fields long values capped") {
  std::string long_token(100000, 't');
  SignatureFields fields =
      scan(part("timestamp", "1") + part("token", long_token) + part("signature", "s") + "--sig-boundary--");
  CHECK(fields.token.size() == mgspool::k_max_signature_field_bytes + 1);
  CHECK(mgspool::verify_signature("key", fields.timestamp, fields.token, fields.signature, 1, 0) ==
        mgspool::SignatureCheck::malformed);
}

TEST_CASE("signature fields ignore huge headers") {
  // A part with a hundred thousand header lines costs no more than its first kilobytes.
  std::string filler;
  for (int i = 0; i < 100000; ++i) {
    filler += "X-Filler-" + std::to_string(i) + ": value\r\n";
  }
  std::string body = "--sig-boundary\r\nContent-Disposition: form-data; name=\"junk\"\r\n" + filler + "\r\nv\r\n" +
                     signed_parts() + "--sig-boundary--";
  SignatureFields fields = scan(body);
  CHECK(fields.complete());
  CHECK(fields.token == "tok-123");
}

TEST_CASE("signature fields need a boundary") {
  try {
    scan(signed_parts(), "multipart/form-data");
    FAIL("a Content-Type without a boundary was accepted");
  } catch (const mgspool::RequestError& error) {
    CHECK(error.outcome() == mgspool::Outcome::malformed_request);
  }
}

TEST_CASE("signature fields of Mailgun capture") {
  auto shared = mgspool::testing::shared_or_skip("signature fields of Mailgun capture");
  if (!shared) {
    return;
  }
  std::string capture = mgspool::testing::read_file(*shared / "mailgun-samples" / "multi_mail-parsed-valid.http");
  std::string body = capture.substr(capture.find("\r\n\r\n") + 4);
  SignatureFields fields = scan(body, "multipart/form-data; boundary=515e0b8d-a7e3-43ef-808e-f27b75edf470");
  CHECK(fields.complete());
  CHECK(fields.closed);
  std::int64_t sent_at = std::stoll(fields.timestamp);
  CHECK(mgspool::verify_signature("foo", fields.timestamp, fields.token, fields.signature, sent_at, 0) ==
        mgspool::SignatureCheck::valid);
}

TEST_CASE("signature fields boundary-like lines") {
  // A line that starts with the boundary but goes on with text is content, as GMime reads it.
  std::string body = part("timestamp", "1") + part("token", "abc\r\n--sig-boundaryXYZ: not a delimiter") +
                     part("signature", "s") + "--sig-boundary--";
  SignatureFields fields = scan(body);
  CHECK(fields.complete());
  CHECK(fields.token == "abc\r\n--sig-boundaryXYZ: not a delimiter");
}
