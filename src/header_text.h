// Header text as sent: unfolding and RFC 2047 encoded words, decoded to UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace mgspool {

// Unfolds a raw header value (RFC 5322 section 2.2.3): every CR and LF is removed and the
// whitespace that followed them stays. The whitespace after the colon and the line end
// are dropped; everything else is kept as sent.
std::string unfold_header_value(std::string_view raw_value);

// Decodes RFC 2047 encoded words wherever they appear, also inside quotes and in the
// middle of a word, as mail clients do. Whitespace between two adjacent encoded words is
// dropped. iso-8859-1 and us-ascii labels decode as windows-1252; a word whose charset
// is unknown or whose bytes are invalid in it, and the text outside encoded words, are
// read by decode_unlabelled_bytes() with fallback_charset. The result is valid UTF-8.
std::string decode_encoded_words(std::string_view text, std::string_view fallback_charset);

}  // namespace mgspool
