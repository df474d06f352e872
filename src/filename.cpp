#include "filename.h"

#include <algorithm>
#include <array>
#include <utility>

#include "ascii.h"
#include "charset.h"
#include "mime_parameters.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

// The R5 table.
constexpr std::array<std::pair<std::string_view, std::string_view>, 10> k_extensions = {{
    {"image/png", ".png"},
    {"image/jpeg", ".jpg"},
    {"image/gif", ".gif"},
    {"image/tiff", ".tif"},
    {"application/pdf", ".pdf"},
    {"text/plain", ".txt"},
    {"text/html", ".html"},
    {"text/csv", ".csv"},
    {"message/rfc822", ".eml"},
    {"application/ms-tnef", ".dat"},
}};

// An extension longer than this is treated as part of the name by R6.
constexpr std::size_t k_max_kept_extension_bytes = k_max_filename_bytes / 2;

std::string bare_content_type(std::string_view content_type) {
  std::string_view bare = content_type.substr(0, content_type.find(';'));
  while (!bare.empty() && (bare.front() == ' ' || bare.front() == '\t')) {
    bare.remove_prefix(1);
  }
  while (!bare.empty() && (bare.back() == ' ' || bare.back() == '\t')) {
    bare.remove_suffix(1);
  }
  return to_lower_ascii(bare);
}

// UTF-8 encodings of the characters R3 replaces besides the ASCII controls: the bidi
// formatting characters, with which "invoice_fdp.exe" can show as "invoice_exe.pdf".
constexpr std::array<std::string_view, 12> k_bidi_formatting_characters = {{
    "\xD8\x9C",                                                              // U+061C
    "\xE2\x80\x8E", "\xE2\x80\x8F",                                          // U+200E-U+200F
    "\xE2\x80\xAA", "\xE2\x80\xAB", "\xE2\x80\xAC", "\xE2\x80\xAD", "\xE2\x80\xAE",  // U+202A-U+202E
    "\xE2\x81\xA6", "\xE2\x81\xA7", "\xE2\x81\xA8", "\xE2\x81\xA9",              // U+2066-U+2069
}};

// Returns the length in bytes of the character R3 replaces at the start of text, or 0.
// The C1 controls U+0080-U+009F are C2 80 to C2 9F in UTF-8.
std::size_t replaced_character_bytes(std::string_view text) {
  auto byte = static_cast<unsigned char>(text[0]);
  if (byte < 0x20 || byte == 0x7F) {
    return 1;
  }
  if (byte == 0xC2 && text.size() >= 2) {
    auto next = static_cast<unsigned char>(text[1]);
    return next >= 0x80 && next <= 0x9F ? 2 : 0;
  }
  for (std::string_view character : k_bidi_formatting_characters) {
    if (text.substr(0, character.size()) == character) {
      return character.size();
    }
  }
  return 0;
}

// R2 and R3.
std::string neutralise_separators_and_controls(std::string_view name) {
  std::string slashed(name);
  for (char& c : slashed) {
    if (c == '\\') {
      c = '/';
    }
  }
  while (!slashed.empty() && slashed.back() == '/') {
    slashed.pop_back();
  }

  std::string out;
  out.reserve(slashed.size());
  std::string_view rest(slashed);
  while (!rest.empty()) {
    std::size_t replaced = replaced_character_bytes(rest);
    if (replaced > 0 || rest[0] == '/') {
      out.push_back('_');
      rest.remove_prefix(std::max<std::size_t>(replaced, 1));
    } else {
      out.push_back(rest[0]);
      rest.remove_prefix(1);
    }
  }
  std::size_t first = out.find_first_not_of(' ');
  if (first == std::string::npos) {
    return {};
  }
  std::size_t last = out.find_last_not_of(' ');
  return out.substr(first, last - first + 1);
}

bool is_empty_or_dots(std::string_view name) { return name.find_first_not_of('.') == std::string_view::npos; }

// Offset of the extension's '.', or npos: the last '.' after the first character.
std::size_t extension_offset(std::string_view name) {
  std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) {
    return std::string_view::npos;
  }
  return dot;
}

// Cuts text to at most max_bytes without splitting a UTF-8 sequence.
std::string cut_whole_characters(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) {
    return std::string(text);
  }
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    --end;
  }
  return std::string(text.substr(0, end));
}

struct SplitName {
  std::string stem;
  std::string extension;  // with its dot, or empty
};

SplitName split_for_length(const std::string& name) {
  std::size_t dot = extension_offset(name);
  if (dot == std::string::npos || name.size() - dot > k_max_kept_extension_bytes) {
    return {name, ""};
  }
  return {name.substr(0, dot), name.substr(dot)};
}

// R6, with room for a suffix such as " (2)" before the extension.
std::string fit_length(const SplitName& split, std::string_view suffix) {
  std::size_t room = k_max_filename_bytes - split.extension.size() - suffix.size();
  return cut_whole_characters(split.stem, room) + std::string(suffix) + split.extension;
}

}  // namespace

std::optional<std::string> decode_sent_filename(std::string_view content_disposition,
                                                std::string_view content_type,
                                                std::string_view fallback_charset) {
  std::optional<std::string> name =
      decode_mime_parameter(parse_mime_parameters(content_disposition), "filename", fallback_charset);
  if (!name) {
    name = decode_mime_parameter(parse_mime_parameters(content_type), "name", fallback_charset);
  }
  if (name && !is_valid_utf8(*name)) {
    name = sanitize_utf8(*name);
  }
  return name;
}

std::string extension_for_content_type(std::string_view content_type) {
  std::string bare = bare_content_type(content_type);
  for (const auto& [type, extension] : k_extensions) {
    if (bare == type) {
      return std::string(extension);
    }
  }
  return ".bin";
}

std::string content_type_for_filename(std::string_view filename) {
  std::size_t dot = extension_offset(filename);
  if (dot == std::string_view::npos) {
    return "application/octet-stream";
  }
  std::string extension = to_lower_ascii(filename.substr(dot));
  if (extension == ".jpeg") {
    return "image/jpeg";
  }
  if (extension == ".tiff") {
    return "image/tiff";
  }
  if (extension == ".htm") {
    return "text/html";
  }
  for (const auto& [type, known] : k_extensions) {
    if (extension == known && extension != ".bin") {
      return std::string(type);
    }
  }
  return "application/octet-stream";
}

std::string SafeNameAllocator::allocate(const std::optional<std::string>& sent, std::string_view content_type,
                                        int number, const std::optional<std::string>& rfc822_subject) {
  std::string bare_type = bare_content_type(content_type);
  std::string name = neutralise_separators_and_controls(sent.value_or(""));

  if (is_empty_or_dots(name) && bare_type == "message/rfc822" && rfc822_subject) {
    name = neutralise_separators_and_controls(sanitize_utf8(*rfc822_subject));
  }
  if (is_empty_or_dots(name)) {
    name = "attachment-" + std::to_string(number);
  }
  if (name.front() == '.') {
    name.insert(0, "_");
  }

  if (extension_offset(name) == std::string::npos) {
    name += extension_for_content_type(bare_type);
  }

  SplitName split = split_for_length(name);
  std::string candidate = fit_length(split, "");
  for (int copy = 2; m_taken.count(candidate) != 0; ++copy) {
    candidate = fit_length(split, " (" + std::to_string(copy) + ")");
  }
  m_taken.insert(candidate);
  return candidate;
}

}  // namespace mgspool
