// Mailgun's request signature: lowercase hex HMAC-SHA256 over timestamp followed by token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mgspool {

enum class SignatureCheck { valid, malformed, mismatch, stale };

// Returns the lowercase hex HMAC-SHA256 of message under key.
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

// Checks the three signature fields exactly as received. malformed: timestamp not 1 to 20
// decimal digits, token empty or longer than 1024 bytes, signature not 64 hex digits (either
// case is accepted, because the decoded bytes are compared). mismatch: the HMAC differs,
// compared in constant time on the decoded bytes. stale: the signature matches but the
// timestamp is older than max_age_seconds (0 turns that check off) or more than
// k_max_future_skew_seconds ahead of now. Throws RequestError only if OpenSSL fails.
SignatureCheck verify_signature(std::string_view key, std::string_view timestamp, std::string_view token,
                                std::string_view signature, std::int64_t now_seconds,
                                std::int64_t max_age_seconds);

}  // namespace mgspool
