// A cheap pass over a raw message that finds header blocks too large to hand to GMime.
//
// GMime 3.2 builds every header field and every Content-Type parameter of a message in
// memory before the decoder sees any of it, so a message of a few megabytes can make it
// allocate gigabytes. This scan reads the file in chunks and holds at most one header
// block's Content-Type value, bounded by k_max_header_block_bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mgspool {

// The first header limit a message exceeds.
struct HeaderLimitViolation {
  // Offset in the file up to which GMime may parse: the start of the part whose header
  // block exceeded a limit (before its delimiter line and the line break in front of it),
  // or the scan's start offset when the top-level header is too large.
  std::uint64_t parse_end = 0;
  std::string description;  // which limit, the block's offset and its sizes
};

// Scans the header blocks of the message in fd from start_offset to the end of the file
// against the limits in spool_limits.h: the top-level header, each part's header after a
// boundary delimiter and the header of each attached message. It follows GMime's rules:
// a block ends at an empty line or a delimiter line; a delimiter line is "--" and a
// boundary declared by a multipart Content-Type, then only white space; message/rfc822,
// message/news and message/global parts, and parts of a multipart/digest without a valid
// Content-Type, start a header block unless encoded as base64, quoted-printable or
// uuencode. With initial_boundary, the file is a multipart body without a header of its
// own (a multipart/form-data request body): the scan starts in its preamble with that
// boundary declared. Reads with pread, so the file offset of fd does not move. Throws
// RequestError when a read fails.
//
// NOTE: every boundary declared anywhere in the message counts for the rest of the file,
// while GMime forgets a boundary when its multipart ends. The scan therefore finds at
// least the header blocks GMime builds, and possibly more in unusual messages.
std::optional<HeaderLimitViolation> scan_header_blocks(int fd, std::uint64_t start_offset, const std::string& name,
                                                       const std::optional<std::string>& initial_boundary = std::nullopt);

}  // namespace mgspool
