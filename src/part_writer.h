// Writing the parts of a parsed message into files of a staging directory, durably.
#pragma once

#include <gmime/gmime.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mgspool {

// A file as it is on disk after it was written, fsynced and closed.
struct StoredFile {
  std::uint64_t size = 0;
  std::string sha256;  // lowercase hex
};

// Each function below creates the new file name in dir_fd with create_file_at(), fsyncs
// and closes it with the result checked, and throws RequestError when a system call
// fails. Content GMime cannot decode is written as far as GMime decodes it.

// Writes a leaf part's content with its transfer encoding (base64, quoted-printable,
// uuencode) undone and nothing else changed. A part without content gives an empty file.
StoredFile write_part_content(int dir_fd, const std::string& name, GMimePart* part);

// Writes an attached message re-serialised by GMime, with CRLF line ends when crlf is
// true. GMime writes the raw header values and the undecoded content back, so a
// well-formed message comes out byte for byte.
// NOTE: a message with mixed line ends, or one GMime repaired while parsing (a missing
// boundary, for example), comes out normalised, not byte for byte.
StoredFile write_embedded_message(int dir_fd, const std::string& name, GMimeMessage* message, bool crlf);

// Writes bytes as they are.
StoredFile write_bytes_file(int dir_fd, const std::string& name, std::string_view bytes);

// Writes header_block as it is, then encoded_body with encoding (base64,
// quoted-printable or uuencode) undone: a MIME entity to parse again.
StoredFile write_decoded_entity(int dir_fd, const std::string& name, std::string_view header_block,
                                std::string_view encoded_body, GMimeContentEncoding encoding);

struct TextBody {
  StoredFile file;
  std::optional<std::string> defect;  // set when the text could not be converted
};

// Writes a text part converted to UTF-8, streaming. The label is read through
// effective_charset(). Without a label the text is ISO-2022-JP when it contains the
// escape ESC $ B or ESC $ @, UTF-8 when it is valid UTF-8, else windows-1252. A charset
// GMime's iconv does not know keeps the raw bytes and returns a defect.
TextBody write_text_body(int dir_fd, const std::string& name, GMimePart* part,
                         const std::optional<std::string>& declared_charset);

}  // namespace mgspool
