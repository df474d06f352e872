// Decodes a stored raw message (message.eml) with GMime and writes its bodies and
// attachments, decoded, as files beside it.
#pragma once

#include <string>

#include "part_record.h"

namespace mgspool {

// Parses the file eml_name inside the directory dir_fd (a staging directory) from disk (seekable stream,
// persistence on), then writes: the first text/plain body as body-plain.txt and the first
// text/html body as body-html.html, converted to UTF-8 from their declared charset; every
// other leaf part as part-N.EXT; attached messages byte-exact as part-N.eml; files found
// inside containers (TNEF) as extracted entries. Odd MIME never throws: it becomes a
// defect. Throws RequestError only for local failures (a write or fsync failed).
DecodedMessage decode_message_file(int dir_fd, const std::string& eml_name);

}  // namespace mgspool
