#include "signature.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <string>

#include "spool_limits.h"
#include "test_support.h"

using mgspool::SignatureCheck;
using mgspool::verify_signature;

namespace {

// Computed independently with Python's hmac module: HMAC-SHA256("test-key", timestamp + token).
constexpr const char* k_key = "test-key";
constexpr const char* k_timestamp = "1700000000";
constexpr std::int64_t k_timestamp_seconds = 1700000000;
constexpr const char* k_token = "abcdef0123456789";
constexpr const char* k_signature = "f3b0d6ad86650aba246df4903377d5278db44330586d942d3b6b83616dfdd7a4";

SignatureCheck check_at(std::int64_t now_seconds, std::int64_t max_age_seconds) {
  return verify_signature(k_key, k_timestamp, k_token, k_signature, now_seconds, max_age_seconds);
}

}  // namespace

TEST_CASE("hmac sha256 hex known answers") {
  // RFC 4231, test case 2.
  CHECK(mgspool::hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(mgspool::hmac_sha256_hex("", "") == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  CHECK(mgspool::hmac_sha256_hex(k_key, std::string(k_timestamp) + k_token) == k_signature);
}

TEST_CASE("signature Mailgun vectors") {
  auto shared = mgspool::testing::shared_or_skip("signature Mailgun vectors");
  if (!shared) {
    return;
  }
  auto vectors = nlohmann::json::parse(
      mgspool::testing::read_file(*shared / "mailgun-samples" / "signature-test-vectors.json"));
  REQUIRE(vectors["vectors"].size() >= 6);

  for (const auto& vector : vectors["vectors"]) {
    std::string timestamp = vector["timestamp"];
    CAPTURE(timestamp);
    std::int64_t now = std::stoll(timestamp);
    SignatureCheck expected = vector["valid"].get<bool>() ? SignatureCheck::valid : SignatureCheck::mismatch;
    CHECK(verify_signature(vector["key"].get<std::string>(), timestamp, vector["token"].get<std::string>(),
                           vector["signature"].get<std::string>(), now,
                           mgspool::k_default_max_age_seconds) == expected);
  }
}

TEST_CASE("signature freshness window") {
  constexpr std::int64_t k_hour = 60 * 60;
  CHECK(check_at(k_timestamp_seconds, k_hour) == SignatureCheck::valid);
  CHECK(check_at(k_timestamp_seconds + k_hour, k_hour) == SignatureCheck::valid);
  CHECK(check_at(k_timestamp_seconds + k_hour + 1, k_hour) == SignatureCheck::stale);
  CHECK(check_at(k_timestamp_seconds + 400 * 24 * k_hour, k_hour) == SignatureCheck::stale);
}

TEST_CASE("signature future skew") {
  const std::int64_t skew = mgspool::k_max_future_skew_seconds;
  CHECK(check_at(k_timestamp_seconds - skew, 0) == SignatureCheck::valid);
  CHECK(check_at(k_timestamp_seconds - skew - 1, 0) == SignatureCheck::stale);
  CHECK(check_at(k_timestamp_seconds - skew - 1, mgspool::k_default_max_age_seconds) == SignatureCheck::stale);
}

TEST_CASE("signature window zero disables age") {
  CHECK(check_at(k_timestamp_seconds + 10LL * 365 * 24 * 60 * 60, 0) == SignatureCheck::valid);
}

TEST_CASE("signature mismatch before staleness") {
  // A wrong signature is reported as a mismatch even when the timestamp is also stale.
  std::string wrong(k_signature);
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  CHECK(verify_signature(k_key, k_timestamp, k_token, wrong, k_timestamp_seconds, 0) == SignatureCheck::mismatch);
  CHECK(verify_signature(k_key, k_timestamp, k_token, wrong, k_timestamp_seconds + 1000000, 60) ==
        SignatureCheck::mismatch);
  CHECK(verify_signature("other-key", k_timestamp, k_token, k_signature, k_timestamp_seconds, 0) ==
        SignatureCheck::mismatch);
  CHECK(verify_signature(k_key, k_timestamp, "abcdef012345678", k_signature, k_timestamp_seconds, 0) ==
        SignatureCheck::mismatch);
}

TEST_CASE("signature uppercase hex accepted") {
  // Mailgun sends lowercase, but the decoded bytes are compared, so either case matches.
  std::string upper(k_signature);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  CHECK(verify_signature(k_key, k_timestamp, k_token, upper, k_timestamp_seconds, 0) == SignatureCheck::valid);
}

TEST_CASE("signature malformed shapes") {
  const std::string good_signature = k_signature;
  const std::int64_t now = k_timestamp_seconds;
  struct Row {
    std::string timestamp;
    std::string token;
    std::string signature;
  };
  const Row rows[] = {
      {"", k_token, good_signature},
      {"17000000x0", k_token, good_signature},
      {"-1700000000", k_token, good_signature},
      {" 1700000000", k_token, good_signature},
      {"1700000000.5", k_token, good_signature},
      {std::string(21, '1'), k_token, good_signature},
      {k_timestamp, "", good_signature},
      {k_timestamp, std::string(1025, 't'), good_signature},
      {k_timestamp, k_token, ""},
      {k_timestamp, k_token, good_signature.substr(1)},
      {k_timestamp, k_token, good_signature + "0"},
      {k_timestamp, k_token, "g" + good_signature.substr(1)},
      {k_timestamp, k_token, "xxx"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.timestamp);
    CAPTURE(row.token.size());
    CAPTURE(row.signature);
    CHECK(verify_signature(k_key, row.timestamp, row.token, row.signature, now, 0) == SignatureCheck::malformed);
  }
}

TEST_CASE("signature timestamp beyond 64 bits") {
  // Twenty digits are a valid shape but overflow 64 bits; such a timestamp cannot be fresh.
  std::string timestamp(20, '9');
  std::string signature = mgspool::hmac_sha256_hex(k_key, timestamp + k_token);
  CHECK(verify_signature(k_key, timestamp, k_token, signature, k_timestamp_seconds, 0) == SignatureCheck::stale);
}

TEST_CASE("signature longest token accepted") {
  std::string token(1024, 't');
  std::string signature = mgspool::hmac_sha256_hex(k_key, std::string(k_timestamp) + token);
  CHECK(verify_signature(k_key, k_timestamp, token, signature, k_timestamp_seconds, 0) == SignatureCheck::valid);
}
