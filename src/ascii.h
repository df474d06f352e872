// ASCII helpers shared by the parsers. They ignore the process locale on purpose: header
// names, charset labels and percent escapes are ASCII whatever the locale says.
#pragma once

#include <string>
#include <string_view>

namespace mgspool {

// Returns the value of a hex digit in either case, or -1 for any other character.
inline int hex_digit_value(char digit) {
  if (digit >= '0' && digit <= '9') {
    return digit - '0';
  }
  if (digit >= 'a' && digit <= 'f') {
    return digit - 'a' + 10;
  }
  if (digit >= 'A' && digit <= 'F') {
    return digit - 'A' + 10;
  }
  return -1;
}

// Returns text with A-Z lowered; other bytes, UTF-8 included, are left as they are.
inline std::string to_lower_ascii(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c + ('a' - 'A'));
    }
  }
  return lower;
}

}  // namespace mgspool
