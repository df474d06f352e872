// Files inside a TNEF container (winmail.dat from Outlook and Exchange), read with libytnef.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mgspool {

struct TnefFile {
  std::string name;   // the attachment's long name, else its title, in UTF-8; may be empty
  std::string bytes;  // the file's content
};

// Returns the attached files of a TNEF stream, in stream order, or nullopt when libytnef
// rejects the stream. Attachments without file data (embedded messages, OLE objects) are
// left out. Names in 8-bit strings are read by decode_unlabelled_bytes() with
// fallback_charset. The caller bounds the container's size: it is parsed in memory.
std::optional<std::vector<TnefFile>> unpack_tnef(std::string_view container, std::string_view fallback_charset);

}  // namespace mgspool
