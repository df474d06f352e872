// Shared pieces of the fuzz targets: one-time setup, invariant failures, and the checks a
// safe attachment name must pass. Each check is written here independently of src/, so a
// bug in the library's own validators cannot hide a bug in the code that uses them.
#pragma once

#include <gmime/gmime.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spool_limits.h"

namespace mgspool::fuzzing {

// Prints which invariant broke, with the value (escaped, cut to 300 bytes), and aborts so
// that libFuzzer saves the input as a crash.
[[noreturn]] inline void fail(std::string_view invariant, std::string_view value = {}) {
  std::string shown;
  for (char c : value.substr(0, 300)) {
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F && c != '\\') {
      shown.push_back(c);
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", byte);
      shown += escaped;
    }
  }
  std::fprintf(stderr, "fuzz invariant broken: %.*s: \"%s\"\n", static_cast<int>(invariant.size()),
               invariant.data(), shown.c_str());
  std::abort();
}

inline void check(bool condition, std::string_view invariant, std::string_view value = {}) {
  if (!condition) {
    fail(invariant, value);
  }
}

// Initializes GMime once per process. G_SLICE=always-malloc (GLib 2.74 and older) turns
// GLib's slice allocations into malloc calls that AddressSanitizer and LeakSanitizer see.
inline void initialize_gmime() {
  setenv("G_SLICE", "always-malloc", 0);
  g_mime_init();
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
inline bool is_strict_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length;
    unsigned code_point;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
      code_point = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      code_point = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      code_point = lead & 0x07;
    } else {
      return false;
    }
    if (text.size() - i < length) {
      return false;
    }
    for (std::size_t k = 1; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) {
        return false;
      }
      code_point = (code_point << 6) | (next & 0x3F);
    }
    bool overlong = (length == 3 && code_point < 0x800) || (length == 4 && code_point < 0x10000);
    bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
    if (overlong || surrogate || code_point > 0x10FFFF) {
      return false;
    }
    i += length;
  }
  return true;
}

// Returns the code point of the UTF-8 sequence at text[i] and advances i past it. The
// text must have passed is_strict_utf8.
inline unsigned next_code_point(std::string_view text, std::size_t& i) {
  auto lead = static_cast<unsigned char>(text[i++]);
  if (lead < 0x80) {
    return lead;
  }
  std::size_t continuation_bytes = 1;
  if (lead >= 0xF0) {
    continuation_bytes = 3;
  } else if (lead >= 0xE0) {
    continuation_bytes = 2;
  }
  unsigned code_point = lead & (0x3F >> continuation_bytes);
  for (std::size_t k = 0; k < continuation_bytes; ++k) {
    code_point = (code_point << 6) | (static_cast<unsigned char>(text[i++]) & 0x3F);
  }
  return code_point;
}

// C0 and C1 controls and DEL.
inline bool is_control_character(unsigned code_point) {
  return code_point < 0x20 || (code_point >= 0x7F && code_point <= 0x9F);
}

// Characters that reorder the text around them when it is displayed.
inline bool is_bidi_formatting_character(unsigned code_point) {
  return code_point == 0x061C || code_point == 0x200E || code_point == 0x200F ||
         (code_point >= 0x202A && code_point <= 0x202E) || (code_point >= 0x2066 && code_point <= 0x2069);
}

// Checks what every safe name (the filename field of meta.json) must be: valid UTF-8,
// at most k_max_filename_bytes, no '/', no control character (C0, DEL or C1), no
// bidirectional formatting character, not empty, not "." or ".." and no leading '.'.
inline void check_safe_name(std::string_view name) {
  check(is_strict_utf8(name), "safe name is not valid UTF-8", name);
  check(!name.empty(), "safe name is empty", name);
  check(name.size() <= k_max_filename_bytes, "safe name is longer than k_max_filename_bytes", name);
  check(name != "." && name != "..", "safe name is . or ..", name);
  check(name.front() != '.', "safe name starts with '.'", name);
  std::size_t i = 0;
  while (i < name.size()) {
    unsigned code_point = next_code_point(name, i);
    check(code_point != '/', "safe name contains '/'", name);
    check(!is_control_character(code_point), "safe name contains a control character", name);
    check(!is_bidi_formatting_character(code_point), "safe name contains a bidi formatting character", name);
  }
}

}  // namespace mgspool::fuzzing
