// Charset conversion to UTF-8, with the labels mail clients reinterpret.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mgspool {

// Returns the charset to decode with for a declared label. iso-8859-1, latin1, us-ascii
// and their aliases become windows-1252, as in mail clients, because such mail often
// carries curly quotes and the euro sign. Other labels come back lowercased, without
// surrounding quotes and whitespace.
std::string effective_charset(std::string_view declared);

// Returns the iconv name for a MIME charset label: ks_c_5601-1987 becomes CP949, gb2312
// its superset GB18030, and so on. Other labels come back lowercased.
std::string iconv_name_for(std::string_view charset);

// Converts bytes in charset to UTF-8; nullopt when iconv does not know the charset or
// the bytes are invalid in it. windows-1252 never fails: its five unassigned bytes
// become U+FFFD. The label is taken literally: call effective_charset() first to get
// the reinterpretation of iso-8859-1 and us-ascii.
std::optional<std::string> convert_to_utf8(std::string_view bytes, std::string_view charset);

// Decodes windows-1252 bytes; the unassigned bytes 0x81, 0x8D, 0x8F, 0x90, 0x9D become U+FFFD.
std::string windows1252_to_utf8(std::string_view bytes);

// Decodes bytes without a declared charset (raw 8-bit header text, names): as UTF-8
// when they are valid UTF-8, else in fallback_charset (through effective_charset) when
// that is given and converts them, else as windows-1252. The result is valid UTF-8.
std::string decode_unlabelled_bytes(std::string_view bytes, std::string_view fallback_charset);

// Returns bytes as valid UTF-8, each invalid sequence replaced by U+FFFD.
std::string sanitize_utf8(std::string_view bytes);

// Makes a stream of chunks valid UTF-8, like sanitize_utf8(), without splitting a
// character that is cut between two chunks: the incomplete end of a chunk is held back
// until the next one, or until finish().
class Utf8StreamSanitizer {
 public:
  std::string feed(std::string_view chunk);
  std::string finish();

  // Returns true when some invalid sequence was replaced so far.
  bool replaced() const { return m_replaced; }

 private:
  std::string m_pending;
  bool m_replaced = false;
};

// Returns true when bytes are valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool is_valid_utf8(std::string_view bytes);

}  // namespace mgspool
