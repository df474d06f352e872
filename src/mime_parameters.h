// Parameters of Content-Type and Content-Disposition values, read leniently from the raw
// header text, with RFC 2231 continuations and charsets.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mgspool {

// One parameter as written: filename*1*=utf-8''%41 has name "filename", section 1,
// extended true and value "utf-8''%41".
struct MimeParameter {
  std::string name;              // lowercase, without the RFC 2231 '*' suffixes
  std::optional<unsigned> section;  // continuation number of name*N, if any
  bool extended = false;         // name* or name*N*: the value is percent-encoded
  std::string value;             // quotes removed, \" and \\ unescaped
};

// Returns the leading token of a header value ("attachment", "text/plain"), lowercase and
// trimmed, or "" when the value starts with a parameter.
std::string leading_token(std::string_view header_value);

// Parses the parameters after the leading token. Tolerated, because real mailers send
// them: quoted extended values, unquoted values with spaces, a missing closing quote,
// a missing leading token, and backslashes inside quotes that escape nothing (Windows
// paths), which are kept.
std::vector<MimeParameter> parse_mime_parameters(std::string_view header_value);

// Returns the value of parameter name decoded to UTF-8, or nullopt when it is absent.
// name* and name*0, name*1, ... win over a plain name. Continuations are joined in
// numeric order before anything is decoded. Percent-encoded pieces are converted from
// the charset declared in the first piece (iso-8859-1 and us-ascii as windows-1252), or
// by decode_unlabelled_bytes() when that fails. Then RFC 2047 encoded words are
// decoded, also when the joined value is one. fallback_charset is the one for raw
// 8-bit bytes.
std::optional<std::string> decode_mime_parameter(const std::vector<MimeParameter>& parameters,
                                                 std::string_view name, std::string_view fallback_charset);

}  // namespace mgspool
