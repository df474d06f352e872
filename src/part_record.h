// One stored file of a message as meta.json describes it, and what decoding found.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mgspool {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Roles of a raw message's files:
//   body-plain, body-html  the first unnamed text part of each kind in the top-level
//                          message, converted to UTF-8
//   inline                 disposition inline, or no disposition and a Content-Id, an
//                          image in multipart/related or unnamed text
//   attachment             every other leaf part
//   message                an attached message, re-serialised with its original line ends
//   extracted              a file unpacked from a TNEF container; its path is the
//                          container's path, '#' and its 1-based position there
// Parts of an attached message have the message's path as parent. Parts of the
// top-level message have none.
struct PartRecord {
  std::string file;                            // name in the message directory, chosen by us
  std::string role;                            // body-plain, body-html, attachment, inline, ...
  std::optional<std::string> filename;         // safe name by the naming rules; null for bodies
  std::optional<std::string> filename_sent;    // the name as sent, decoded to UTF-8
  std::string content_type;                    // type/subtype, lowercase
  std::optional<std::string> charset;          // declared charset of a text part
  std::uint64_t size = 0;                      // bytes on disk
  std::string sha256;                          // hex, of the bytes on disk
  std::optional<std::string> content_id;       // without angle brackets
  std::string path;                            // MIME path such as "2.1", or the form field name
  std::optional<std::string> parent;           // path of the enclosing message or container
};

// The findings of decoding a raw message, beyond the files it wrote.
struct DecodedMessage {
  HeaderList headers;                // top-level header fields, unfolded, in order
  std::vector<std::string> defects;  // human-readable descriptions of what was odd
  std::vector<PartRecord> parts;
  std::optional<std::string> subject;  // decoded to UTF-8
  std::optional<std::string> from;     // decoded to UTF-8
};

}  // namespace mgspool
