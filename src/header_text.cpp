#include "header_text.h"

#include <optional>

#include "ascii.h"
#include "charset.h"

namespace mgspool {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

// Lenient: characters outside the alphabet are skipped and decoding stops at '='.
std::string decode_base64(std::string_view text) {
  std::string out;
  unsigned int accumulator = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') {
      break;
    }
    int value = base64_value(c);
    if (value < 0) {
      continue;
    }
    accumulator = (accumulator << 6) | static_cast<unsigned int>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((accumulator >> bits) & 0xFF));
    }
  }
  return out;
}

// The Q encoding of RFC 2047: '_' is a space, =XX a byte; a broken escape stays literal.
std::string decode_q(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_') {
      out.push_back(' ');
    } else if (c == '=' && i + 2 < text.size() && hex_digit_value(text[i + 1]) >= 0 && hex_digit_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_digit_value(text[i + 1]) * 16 + hex_digit_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

struct EncodedWord {
  std::size_t end = 0;  // offset just past the closing "?="
  std::string charset;  // lowercase, without an RFC 2231 language suffix
  std::string bytes;    // the decoded octets, still in charset
};

// Parses "=?charset?B|Q?text?=" at start; nullopt when text there is no encoded word.
std::optional<EncodedWord> parse_encoded_word(std::string_view text, std::size_t start) {
  if (text.compare(start, 2, "=?") != 0) {
    return std::nullopt;
  }
  std::size_t charset_start = start + 2;
  std::size_t charset_end = text.find('?', charset_start);
  if (charset_end == std::string_view::npos || charset_end == charset_start) {
    return std::nullopt;
  }
  for (std::size_t i = charset_start; i < charset_end; ++i) {
    if (is_blank(text[i]) || text[i] == '"') {
      return std::nullopt;
    }
  }
  if (charset_end + 2 >= text.size() || text[charset_end + 2] != '?') {
    return std::nullopt;
  }
  char encoding = text[charset_end + 1];
  if (encoding != 'B' && encoding != 'b' && encoding != 'Q' && encoding != 'q') {
    return std::nullopt;
  }
  std::size_t payload_start = charset_end + 3;
  std::size_t payload_end = text.find("?=", payload_start);
  if (payload_end == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view payload = text.substr(payload_start, payload_end - payload_start);
  if (payload.find_first_of("\r\n") != std::string_view::npos) {
    return std::nullopt;
  }

  EncodedWord word;
  word.end = payload_end + 2;
  word.charset = std::string(text.substr(charset_start, charset_end - charset_start));
  if (std::size_t language = word.charset.find('*'); language != std::string::npos) {
    word.charset.erase(language);
  }
  word.bytes = (encoding == 'B' || encoding == 'b') ? decode_base64(payload) : decode_q(payload);
  return word;
}

std::string decode_word_bytes(const std::string& bytes, const std::string& charset, std::string_view fallback_charset) {
  if (auto converted = convert_to_utf8(bytes, effective_charset(charset))) {
    return *converted;
  }
  return decode_unlabelled_bytes(bytes, fallback_charset);
}

}  // namespace

std::string unfold_header_value(std::string_view raw_value) {
  std::string out;
  out.reserve(raw_value.size());
  for (char c : raw_value) {
    if (c != '\r' && c != '\n') {
      out.push_back(c);
    }
  }
  std::size_t first = out.find_first_not_of(" \t");
  if (first == std::string::npos) {
    return {};
  }
  out.erase(0, first);
  return out;
}

std::string decode_encoded_words(std::string_view text, std::string_view fallback_charset) {
  std::string out;
  // Bytes of adjacent words in one charset are joined before conversion, because
  // encoders split multi-byte characters across words.
  std::string pending_bytes;
  std::string pending_charset;
  auto flush_pending = [&]() {
    if (!pending_bytes.empty()) {
      out += decode_word_bytes(pending_bytes, pending_charset, fallback_charset);
    }
    pending_bytes.clear();
    pending_charset.clear();
  };

  std::size_t position = 0;
  std::size_t plain_start = 0;
  bool previous_was_word = false;
  while (position < text.size()) {
    std::size_t candidate = text.find("=?", position);
    if (candidate == std::string_view::npos) {
      break;
    }
    std::optional<EncodedWord> word = parse_encoded_word(text, candidate);
    if (!word) {
      position = candidate + 1;
      continue;
    }

    std::string_view between = text.substr(plain_start, candidate - plain_start);
    bool only_blanks = between.find_first_not_of(" \t\r\n") == std::string_view::npos;
    if (!(previous_was_word && only_blanks)) {
      flush_pending();
      out += decode_unlabelled_bytes(between, fallback_charset);
    }
    if (!pending_bytes.empty() && pending_charset != word->charset) {
      flush_pending();
    }
    pending_charset = word->charset;
    pending_bytes += word->bytes;
    previous_was_word = true;
    position = word->end;
    plain_start = word->end;
  }

  flush_pending();
  out += decode_unlabelled_bytes(text.substr(plain_start), fallback_charset);
  return sanitize_utf8(out);
}

}  // namespace mgspool
