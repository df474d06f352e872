#include "charset.h"

#include <doctest/doctest.h>

#include <string>

#include "header_text.h"

using mgspool::convert_to_utf8;
using mgspool::decode_encoded_words;
using mgspool::effective_charset;
using mgspool::is_valid_utf8;

namespace {

// True when text contains a C1 control character (U+0080-U+009F, encoded C2 80-C2 9F).
bool contains_c1_control(const std::string& text) {
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    auto lead = static_cast<unsigned char>(text[i]);
    auto next = static_cast<unsigned char>(text[i + 1]);
    if (lead == 0xC2 && next >= 0x80 && next <= 0x9F) {
      return true;
    }
  }
  return false;
}

std::string all_high_bytes() {
  std::string bytes;
  for (int byte = 0x80; byte <= 0xFF; ++byte) {
    bytes.push_back(static_cast<char>(byte));
  }
  return bytes;
}

}  // namespace

TEST_CASE("effective charset latin1 labels") {
  CHECK(effective_charset("ISO-8859-1") == "windows-1252");
  CHECK(effective_charset("iso_8859-1") == "windows-1252");
  CHECK(effective_charset("\"latin1\"") == "windows-1252");
  CHECK(effective_charset("us-ascii") == "windows-1252");
  CHECK(effective_charset(" US-ASCII ") == "windows-1252");
  CHECK(effective_charset("ascii") == "windows-1252");
  CHECK(effective_charset("cp1252") == "windows-1252");
}

TEST_CASE("effective charset other labels") {
  CHECK(effective_charset("UTF-8") == "utf-8");
  CHECK(effective_charset("ISO-8859-15") == "iso-8859-15");
  CHECK(effective_charset("Shift_JIS") == "shift_jis");
  CHECK(effective_charset("") == "");
}

TEST_CASE("windows-1252 decoding has no C1 controls") {
  std::string decoded = mgspool::windows1252_to_utf8(all_high_bytes());
  CHECK(is_valid_utf8(decoded));
  CHECK_FALSE(contains_c1_control(decoded));
}

TEST_CASE("windows-1252 typographic characters") {
  CHECK(mgspool::windows1252_to_utf8("\x92\x93\x94\x85\x80\x96") == "’“”…€–");
  CHECK(mgspool::windows1252_to_utf8("K\xF6ln") == "Köln");
  CHECK(mgspool::windows1252_to_utf8("\x81") == "\xEF\xBF\xBD");
}

TEST_CASE("latin1 label converts as windows-1252") {
  std::optional<std::string> converted = convert_to_utf8("49\x80 \x96 ok", effective_charset("iso-8859-1"));
  REQUIRE(converted.has_value());
  CHECK(*converted == "49€ – ok");
  CHECK_FALSE(contains_c1_control(*converted));
}

TEST_CASE("convert unknown charset") {
  CHECK_FALSE(convert_to_utf8("abc", "x-no-such-charset").has_value());
  CHECK_FALSE(convert_to_utf8("abc", "").has_value());
}

TEST_CASE("convert invalid bytes") {
  CHECK_FALSE(convert_to_utf8("\xFF\xFE", "utf-8").has_value());
  CHECK_FALSE(convert_to_utf8("\x82\xA0\xFF", "shift_jis").has_value());
}

TEST_CASE("convert known charsets") {
  CHECK(convert_to_utf8("\xEE\xF2\xF7\xE5\xF2", "windows-1251") == std::optional<std::string>("отчет"));
  CHECK(convert_to_utf8("\xCF\xD2\xDE\xC5\xD4", "koi8-r") == std::optional<std::string>("орчет"));
  CHECK(convert_to_utf8("\x1b$B$3$s$K$A$O\x1b(B", "iso-2022-jp") == std::optional<std::string>("こんにちは"));
  CHECK(convert_to_utf8("\xC7\xD1\xB1\xDB", "ks_c_5601-1987") == std::optional<std::string>("한글"));
}

TEST_CASE("unlabelled bytes fallback order") {
  CHECK(mgspool::decode_unlabelled_bytes("Grüße", "") == "Grüße");
  CHECK(mgspool::decode_unlabelled_bytes("\xEE\xF2\xF7\xE5\xF2", "windows-1251") == "отчет");
  CHECK(mgspool::decode_unlabelled_bytes("Gr\xFC\xDF" "e", "") == "Grüße");
  CHECK(mgspool::decode_unlabelled_bytes("Gr\xFC\xDF" "e", "x-no-such-charset") == "Grüße");
  CHECK(mgspool::decode_unlabelled_bytes("Gr\xFC\xDF" "e", "iso-8859-1") == "Grüße");
}

TEST_CASE("utf-8 validation table") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("Ü€😀"));
  CHECK(is_valid_utf8(std::string("a\0b", 3)));
  CHECK_FALSE(is_valid_utf8("\xC0\x80"));          // overlong NUL
  CHECK_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xC3"));              // cut off
  CHECK_FALSE(is_valid_utf8("\x80"));              // lone continuation byte
}

TEST_CASE("sanitize utf-8 replaces invalid bytes") {
  CHECK(mgspool::sanitize_utf8("ok") == "ok");
  CHECK(mgspool::sanitize_utf8("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(mgspool::sanitize_utf8("\xC3") == "\xEF\xBF\xBD");
}

TEST_CASE("utf-8 stream sanitizer keeps split characters") {
  mgspool::Utf8StreamSanitizer sanitizer;
  std::string out = sanitizer.feed("Gr\xC3");
  out += sanitizer.feed("\xBC\xC3\x9F" "e \xE2\x82");
  out += sanitizer.feed("\xAC");
  out += sanitizer.finish();
  CHECK(out == "Grüße €");
  CHECK_FALSE(sanitizer.replaced());
}

TEST_CASE("utf-8 stream sanitizer reports replacements") {
  mgspool::Utf8StreamSanitizer sanitizer;
  std::string out = sanitizer.feed("a\xFF");
  out += sanitizer.feed("b\xE2\x82");
  out += sanitizer.finish();
  CHECK(out == "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(sanitizer.replaced());
}

TEST_CASE("encoded words windows-1252 subject") {
  std::string subject = decode_encoded_words("=?iso-8859-1?Q?Don=92t_miss_the_=93summer=94_offer_=96_49=80?=", "");
  CHECK(subject == "Don’t miss the “summer” offer – 49€");
  CHECK_FALSE(contains_c1_control(subject));
}

TEST_CASE("encoded words table") {
  CHECK(decode_encoded_words("=?iso-8859-1?Q?=DCbergabe_am_Dienstag?=", "") == "Übergabe am Dienstag");
  CHECK(decode_encoded_words("=?UTF-8?B?UHLDvGZiZXJpY2h0?= Q3", "") == "Prüfbericht Q3");
  CHECK(decode_encoded_words("=?utf-8?q?a?= =?utf-8?q?b?=", "") == "ab");
  CHECK(decode_encoded_words("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "") == "ab");
  CHECK(decode_encoded_words("x =?utf-8?q?a?= y", "") == "x a y");
  CHECK(decode_encoded_words("Re: plain text", "") == "Re: plain text");
  CHECK(decode_encoded_words("=?utf-8?x?bad?=", "") == "=?utf-8?x?bad?=");
  CHECK(decode_encoded_words("=?utf-8*en?Q?lang?=", "") == "lang");
  CHECK(decode_encoded_words("=? not a word", "") == "=? not a word");
}

TEST_CASE("encoded words split multibyte character") {
  // "ü" is C3 BC; the encoder cut it between two words.
  CHECK(decode_encoded_words("=?utf-8?B?R3LD?= =?utf-8?B?vGU=?=", "") == "Grüe");
}

TEST_CASE("encoded words unknown charset") {
  std::string decoded = decode_encoded_words("=?x-no-such-charset?Q?caf=E9?=", "");
  CHECK(decoded == "café");
  CHECK(is_valid_utf8(decoded));
}

TEST_CASE("encoded words raw 8-bit outside words") {
  CHECK(decode_encoded_words("J\xFCrgen <j@example.de>", "") == "Jürgen <j@example.de>");
  CHECK(decode_encoded_words("Jürgen", "") == "Jürgen");
}

TEST_CASE("unfold header value") {
  CHECK(mgspool::unfold_header_value(" value\r\n") == "value");
  CHECK(mgspool::unfold_header_value(" a;\r\n\tb=c\r\n") == "a;\tb=c");
  CHECK(mgspool::unfold_header_value("  folded\n  twice\n") == "folded  twice");
  CHECK(mgspool::unfold_header_value(" \r\n") == "");
}
