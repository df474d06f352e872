// Mailgun's HMAC-SHA256 request signature, checked with OpenSSL 3.
#include "signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <optional>

#include "ascii.h"
#include "request_error.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

constexpr std::size_t k_sha256_bytes = 32;
constexpr std::size_t k_max_timestamp_digits = 20;

using Digest = std::array<unsigned char, k_sha256_bytes>;

Digest hmac_sha256(std::string_view key, std::string_view message) {
  // OpenSSL reads a null key pointer as "no key given", so an empty key still gets a
  // valid pointer.
  static const unsigned char empty = 0;
  const void* key_bytes = key.empty() ? &empty : static_cast<const void*>(key.data());
  const unsigned char* message_bytes = message.empty()
                                           ? &empty
                                           : reinterpret_cast<const unsigned char*>(message.data());

  Digest digest{};
  unsigned int digest_length = 0;
  if (HMAC(EVP_sha256(), key_bytes, static_cast<int>(key.size()), message_bytes, message.size(),
           digest.data(), &digest_length) == nullptr ||
      digest_length != k_sha256_bytes) {
    throw RequestError(Outcome::local_failure, "HMAC-SHA256 computation failed in OpenSSL");
  }
  return digest;
}

// Decodes 64 hex digits of either case; nullopt for any other shape.
std::optional<Digest> decode_hex_digest(std::string_view hex) {
  if (hex.size() != 2 * k_sha256_bytes) {
    return std::nullopt;
  }
  Digest digest{};
  for (std::size_t i = 0; i < k_sha256_bytes; ++i) {
    int high = hex_digit_value(hex[2 * i]);
    int low = hex_digit_value(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    digest[i] = static_cast<unsigned char>(high * 16 + low);
  }
  return digest;
}

bool is_decimal_timestamp(std::string_view timestamp) {
  if (timestamp.empty() || timestamp.size() > k_max_timestamp_digits) {
    return false;
  }
  for (char digit : timestamp) {
    if (digit < '0' || digit > '9') {
      return false;
    }
  }
  return true;
}

// Parses digits already checked by is_decimal_timestamp; nullopt when the value does not
// fit in 64 bits, which only a forged or broken timestamp can reach.
std::optional<std::int64_t> parse_timestamp(std::string_view digits) {
  constexpr std::int64_t k_max = INT64_MAX;
  std::int64_t value = 0;
  for (char digit : digits) {
    int digit_value = digit - '0';
    if (value > (k_max - digit_value) / 10) {
      return std::nullopt;
    }
    value = value * 10 + digit_value;
  }
  return value;
}

bool is_fresh(std::int64_t timestamp, std::int64_t now_seconds, std::int64_t max_age_seconds) {
  // Both differences stay far from overflow: the timestamp and now are non-negative
  // 64-bit values, and the subtraction is only done in the direction that cannot wrap.
  if (timestamp > now_seconds) {
    return timestamp - now_seconds <= k_max_future_skew_seconds;
  }
  return max_age_seconds == 0 || now_seconds - timestamp <= max_age_seconds;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  static constexpr char k_hex_digits[] = "0123456789abcdef";
  Digest digest = hmac_sha256(key, message);

  std::string hex;
  hex.reserve(2 * digest.size());
  for (unsigned char byte : digest) {
    hex.push_back(k_hex_digits[byte >> 4]);
    hex.push_back(k_hex_digits[byte & 0x0f]);
  }
  return hex;
}

SignatureCheck verify_signature(std::string_view key, std::string_view timestamp, std::string_view token,
                                std::string_view signature, std::int64_t now_seconds,
                                std::int64_t max_age_seconds) {
  std::optional<Digest> received = decode_hex_digest(signature);
  if (!is_decimal_timestamp(timestamp) || token.empty() || token.size() > k_max_signature_field_bytes || !received) {
    return SignatureCheck::malformed;
  }

  // The HMAC is checked before the age, so a sender without the key learns nothing about
  // the freshness window from the response.
  std::string message;
  message.reserve(timestamp.size() + token.size());
  message.append(timestamp);
  message.append(token);
  Digest expected = hmac_sha256(key, message);
  if (CRYPTO_memcmp(expected.data(), received->data(), expected.size()) != 0) {
    return SignatureCheck::mismatch;
  }

  std::optional<std::int64_t> seconds = parse_timestamp(timestamp);
  if (!seconds || !is_fresh(*seconds, now_seconds, max_age_seconds)) {
    return SignatureCheck::stale;
  }
  return SignatureCheck::valid;
}

}  // namespace mgspool
