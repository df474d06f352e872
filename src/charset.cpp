#include "charset.h"

#include <iconv.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <utility>

#include "ascii.h"

namespace mgspool {

namespace {

std::string_view trim_label(std::string_view label) {
  auto is_trimmed = [](char c) { return c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\r' || c == '\n'; };
  while (!label.empty() && is_trimmed(label.front())) {
    label.remove_prefix(1);
  }
  while (!label.empty() && is_trimmed(label.back())) {
    label.remove_suffix(1);
  }
  return label;
}

// Labels that mean ISO-8859-1 or US-ASCII; both are read as windows-1252.
constexpr std::array k_windows1252_labels = {
    "iso-8859-1", "iso8859-1", "iso_8859-1", "iso_8859-1:1987", "iso-ir-100", "latin1",   "latin-1",
    "l1",         "cp819",     "ibm819",     "csisolatin1",     "us-ascii",   "ascii",    "us",
    "ansi_x3.4-1968", "iso646-us", "csascii", "646",            "windows-1252", "cp1252", "x-cp1252",
};

// MIME labels that glibc's iconv does not know, or whose superset decodes more real mail.
constexpr std::array<std::pair<std::string_view, std::string_view>, 11> k_iconv_aliases = {{
    {"ks_c_5601-1987", "CP949"},
    {"ks_c_5601", "CP949"},
    {"euc-kr", "CP949"},
    {"gb2312", "GB18030"},
    {"gbk", "GB18030"},
    {"x-gbk", "GB18030"},
    {"big5", "BIG5-HKSCS"},
    {"x-sjis", "SHIFT_JIS"},
    {"x-mac-roman", "MACINTOSH"},
    {"unicode-1-1-utf-7", "UTF-7"},
    {"tis-620", "WINDOWS-874"},
}};

// windows-1252 bytes 0x80-0x9F; 0 marks the unassigned ones.
constexpr std::array<std::uint16_t, 32> k_windows1252_high = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

void append_utf8(std::string& out, std::uint32_t code_point) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

constexpr std::uint32_t k_replacement_character = 0xFFFD;

// Returns the length of the valid UTF-8 sequence at the start of bytes, or 0 when it is invalid.
std::size_t valid_sequence_length(std::string_view bytes) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  auto continuation = [&](std::size_t i) { return i < bytes.size() && (byte(i) & 0xC0) == 0x80; };
  unsigned char lead = byte(0);
  if (lead < 0x80) {
    return 1;
  }
  if (lead >= 0xC2 && lead <= 0xDF) {
    return continuation(1) ? 2 : 0;
  }
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (!continuation(1) || !continuation(2)) {
      return 0;
    }
    // E0 needs A0-BF (no overlong form); ED needs 80-9F (no surrogates).
    if ((lead == 0xE0 && byte(1) < 0xA0) || (lead == 0xED && byte(1) > 0x9F)) {
      return 0;
    }
    return 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (!continuation(1) || !continuation(2) || !continuation(3)) {
      return 0;
    }
    // F0 needs 90-BF (no overlong form); F4 needs 80-8F (at most U+10FFFF).
    if ((lead == 0xF0 && byte(1) < 0x90) || (lead == 0xF4 && byte(1) > 0x8F)) {
      return 0;
    }
    return 4;
  }
  return 0;
}

class IconvHandle {
 public:
  IconvHandle(const std::string& to, const std::string& from) : m_handle(iconv_open(to.c_str(), from.c_str())) {}
  IconvHandle(const IconvHandle&) = delete;
  IconvHandle& operator=(const IconvHandle&) = delete;
  ~IconvHandle() {
    if (valid()) {
      iconv_close(m_handle);
    }
  }

  bool valid() const { return m_handle != reinterpret_cast<iconv_t>(-1); }
  iconv_t get() const { return m_handle; }

 private:
  iconv_t m_handle;
};

std::optional<std::string> convert_with_iconv(std::string_view bytes, const std::string& iconv_name) {
  IconvHandle handle("UTF-8", iconv_name);
  if (!handle.valid()) {
    return std::nullopt;
  }

  std::string out;
  std::array<char, 4096> buffer;
  char* in_pointer = const_cast<char*>(bytes.data());
  std::size_t in_left = bytes.size();
  while (in_left > 0) {
    char* out_pointer = buffer.data();
    std::size_t out_left = buffer.size();
    std::size_t result = iconv(handle.get(), &in_pointer, &in_left, &out_pointer, &out_left);
    int error_number = errno;
    out.append(buffer.data(), static_cast<std::size_t>(out_pointer - buffer.data()));
    if (result == static_cast<std::size_t>(-1) && error_number != E2BIG) {
      return std::nullopt;  // EILSEQ, or a sequence cut off at the end (EINVAL)
    }
  }

  // A call without input ends a stateful encoding such as ISO-2022-JP or UTF-7.
  char* out_pointer = buffer.data();
  std::size_t out_left = buffer.size();
  iconv(handle.get(), nullptr, nullptr, &out_pointer, &out_left);
  out.append(buffer.data(), static_cast<std::size_t>(out_pointer - buffer.data()));

  if (!is_valid_utf8(out)) {
    return std::nullopt;
  }
  return out;
}

}  // namespace

std::string effective_charset(std::string_view declared) {
  std::string label = to_lower_ascii(trim_label(declared));
  for (const char* alias : k_windows1252_labels) {
    if (label == alias) {
      return "windows-1252";
    }
  }
  return label;
}

std::string iconv_name_for(std::string_view charset) {
  std::string label = to_lower_ascii(trim_label(charset));
  for (const auto& [alias, iconv_name] : k_iconv_aliases) {
    if (label == alias) {
      return std::string(iconv_name);
    }
  }
  return label;
}

std::string windows1252_to_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 4);
  for (char c : bytes) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80) {
      out.push_back(c);
    } else if (byte < 0xA0) {
      std::uint16_t mapped = k_windows1252_high[byte - 0x80];
      append_utf8(out, mapped != 0 ? mapped : k_replacement_character);
    } else {
      append_utf8(out, byte);
    }
  }
  return out;
}

std::optional<std::string> convert_to_utf8(std::string_view bytes, std::string_view charset) {
  std::string label = to_lower_ascii(trim_label(charset));
  if (label == "windows-1252" || label == "cp1252" || label == "x-cp1252") {
    return windows1252_to_utf8(bytes);
  }
  if (label == "utf-8" || label == "utf8") {
    if (!is_valid_utf8(bytes)) {
      return std::nullopt;
    }
    return std::string(bytes);
  }
  if (label.empty()) {
    return std::nullopt;
  }
  return convert_with_iconv(bytes, iconv_name_for(label));
}

std::string decode_unlabelled_bytes(std::string_view bytes, std::string_view fallback_charset) {
  if (is_valid_utf8(bytes)) {
    return std::string(bytes);
  }
  if (!trim_label(fallback_charset).empty()) {
    if (auto converted = convert_to_utf8(bytes, effective_charset(fallback_charset))) {
      return *converted;
    }
  }
  return windows1252_to_utf8(bytes);
}

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  while (!bytes.empty()) {
    std::size_t length = valid_sequence_length(bytes);
    if (length == 0) {
      append_utf8(out, k_replacement_character);
      bytes.remove_prefix(1);
      continue;
    }
    out.append(bytes.substr(0, length));
    bytes.remove_prefix(length);
  }
  return out;
}

std::string Utf8StreamSanitizer::feed(std::string_view chunk) {
  m_pending.append(chunk);

  // Hold back a lead byte and its continuation bytes when the sequence is not complete yet.
  std::size_t keep_from = m_pending.size();
  for (std::size_t back = 1; back <= 3 && back <= m_pending.size(); ++back) {
    auto byte = static_cast<unsigned char>(m_pending[m_pending.size() - back]);
    if ((byte & 0xC0) == 0x80) {
      continue;
    }
    std::size_t needed = 1;
    if (byte >= 0xF0) {
      needed = 4;
    } else if (byte >= 0xE0) {
      needed = 3;
    } else if (byte >= 0xC0) {
      needed = 2;
    }
    if (needed > back) {
      keep_from = m_pending.size() - back;
    }
    break;
  }

  std::string_view complete = std::string_view(m_pending).substr(0, keep_from);
  std::string out = sanitize_utf8(complete);
  m_replaced = m_replaced || out != complete;
  m_pending.erase(0, keep_from);
  return out;
}

std::string Utf8StreamSanitizer::finish() {
  std::string out = sanitize_utf8(m_pending);
  m_replaced = m_replaced || out != m_pending;
  m_pending.clear();
  return out;
}

bool is_valid_utf8(std::string_view bytes) {
  while (!bytes.empty()) {
    std::size_t length = valid_sequence_length(bytes);
    if (length == 0) {
      return false;
    }
    bytes.remove_prefix(length);
  }
  return true;
}

}  // namespace mgspool
