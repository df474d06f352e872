// Attachment names: decoding the name as sent, and making a safe name from it.
//
// The rules, applied in order (they define the `filename` field of meta.json):
//  R1 decode: RFC 2231 (join *0, *1 ... numerically, percent-decode *N* pieces with the
//     declared charset), then RFC 2047 encoded words (also inside quotes; whitespace between
//     adjacent encoded words dropped), raw 8-bit bytes as UTF-8 if valid, else the charset of
//     the message's text parts, else windows-1252; iso-8859-1 and us-ascii labels are read
//     as windows-1252. No Unicode normalisation.
//  R2 '\' becomes '/', trailing '/' are dropped, every remaining '/' becomes '_'.
//  R3 control characters (U+0000-U+001F, U+007F, C1 U+0080-U+009F) and bidirectional
//     formatting characters (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) become
//     '_', one per character; surrounding spaces are trimmed.
//  R4 empty or only dots: message/rfc822 takes the embedded Subject (through R2-R3), anything
//     else attachment-N. A leading '.' gets a '_' prefix.
//  R5 no extension (no '.' after the first character): one is added from the content type.
//  R6 at most 255 bytes of UTF-8, keeping the extension and whole characters. The
//     extension is what follows the last '.' after the first character; one longer than
//     127 bytes is not kept apart, the whole name is cut instead.
//  R7 a name already taken within the message gets " (2)", " (3)", ... before the extension
//     (cutting more of the name when R6 requires it). Names are compared byte for byte.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace mgspool {

// R1: returns the decoded sent name from the raw Content-Disposition and Content-Type
// header values of a part (filename and filename* from the disposition win over name and
// name* from the type), or nullopt when neither carries a name. fallback_charset is the
// charset of the message's text parts, or "" when unknown. The result is valid UTF-8.
std::optional<std::string> decode_sent_filename(std::string_view content_disposition,
                                                std::string_view content_type,
                                                std::string_view fallback_charset);

// Returns the extension (with its dot) for a content type by the R5 table, ".bin" otherwise.
// Parameters after ';' and letter case are ignored.
std::string extension_for_content_type(std::string_view content_type);

// Returns the content type for a file name's extension, the R5 table read backwards
// (".jpeg" and ".tiff" too), or application/octet-stream. For files that arrive without a
// content type, such as those inside a TNEF container.
std::string content_type_for_filename(std::string_view filename);

// Applies R2-R7 for the parts of one message; remembers names already handed out (R7).
class SafeNameAllocator {
 public:
  // sent: the R1 result, or nullopt. number: N for attachment-N. rfc822_subject: the
  // decoded Subject of an attached message, used by R4 when the name is empty.
  std::string allocate(const std::optional<std::string>& sent, std::string_view content_type, int number,
                       const std::optional<std::string>& rfc822_subject = std::nullopt);

 private:
  std::set<std::string> m_taken;
};

}  // namespace mgspool
