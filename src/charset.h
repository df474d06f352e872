// Charset conversion to UTF-8, with the labels mail clients reinterpret.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mgspool {

// Returns the charset to decode with for a declared label: iso-8859-1, latin1, us-ascii
// and their aliases become windows-1252 (mail clients do the same, because such mail
// often carries curly quotes and the euro sign); other labels are returned lowercased.
std::string effective_charset(std::string_view declared);

// Converts bytes in charset to UTF-8; nullopt when iconv does not know the charset or
// the bytes are invalid in it.
std::optional<std::string> convert_to_utf8(std::string_view bytes, std::string_view charset);

// Returns bytes as valid UTF-8, each invalid sequence replaced by U+FFFD.
std::string sanitize_utf8(std::string_view bytes);

// Returns true when bytes are valid UTF-8.
bool is_valid_utf8(std::string_view bytes);

}  // namespace mgspool
