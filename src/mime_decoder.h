// Decodes a stored raw message (message.eml) with GMime and writes its bodies and
// attachments, decoded, as files beside it.
#pragma once

#include <string>

#include "filename.h"
#include "part_record.h"

namespace mgspool {

// Parses the file eml_name inside the directory dir_fd (a staging directory) from disk,
// with a seekable stream and persistence on. Then it writes the first text/plain body
// as body-plain.txt and the first text/html body as body-html.html, both converted to
// UTF-8 from their declared charset. Every other leaf part is written decoded as
// part-N.EXT, attached messages as part-N.eml with their original line ends, and files
// found inside TNEF containers as extracted entries; N counts the files written.
// Limits: k_max_mime_depth and k_max_mime_parts (parts past them are skipped) and
// k_max_tnef_container_bytes. Odd MIME never throws: it becomes a defect. Throws
// RequestError only for local failures (a read, write, fsync or close failed).
DecodedMessage decode_message_file(int dir_fd, const std::string& eml_name);

// The same, with the safe names already given to other files of the message (form files
// sent beside body-mime), so that no two files of one message share a name.
DecodedMessage decode_message_file(int dir_fd, const std::string& eml_name, SafeNameAllocator& names);

}  // namespace mgspool
