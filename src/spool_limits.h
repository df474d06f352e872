// Every limit of the responder in one place, each with its unit in the name.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mgspool {

// Mailgun accepts messages of up to 25 MB; urlencoding one turns each 8-bit byte into
// three, so a raw message near the limit arrives as roughly 40 MB or more of request body.
inline constexpr std::uint64_t k_default_max_request_bytes = 64ULL * 1024 * 1024;

// Mailgun retries for about 8 hours and a retry may carry the first attempt's timestamp,
// so a window of 12 hours accepts every retry while still rejecting old replays.
inline constexpr std::int64_t k_default_max_age_seconds = 12 * 60 * 60;

// The largest freshness window accepted, about 100 years: anything longer is a typing
// mistake, and the bound keeps the token retention arithmetic far from overflow.
inline constexpr std::int64_t k_max_freshness_window_seconds = 100LL * 365 * 24 * 60 * 60;

// A timestamp further ahead than this is a clock error or a forgery.
inline constexpr std::int64_t k_max_future_skew_seconds = 5 * 60;

// Tokens are remembered for at least this long, and at least the freshness window.
inline constexpr std::int64_t k_min_token_retention_seconds = 7 * 24 * 60 * 60;

// Non-file form fields are kept in memory for meta.json; together they may not exceed this.
// Bodies, body-mime and file parts stream to disk and do not count.
inline constexpr std::size_t k_max_inline_field_bytes = 16 * 1024 * 1024;

// A form with more fields than this is malformed (Mailgun sends one per header plus a few).
inline constexpr std::size_t k_max_form_fields = 10000;

// Buffer size for copying the request body and streaming parts to disk.
inline constexpr std::size_t k_io_buffer_bytes = 64 * 1024;

// Below this much free space in the spool's file system the responder responds with 503, so
// Mailgun retries later instead of the disk filling up.
inline constexpr std::uint64_t k_default_min_free_bytes = 256ULL * 1024 * 1024;

// Limits on the MIME tree of one message, checked while walking it.
inline constexpr int k_max_mime_depth = 64;
inline constexpr std::size_t k_max_mime_parts = 5000;

// Length limit of a safe attachment name, in bytes of UTF-8 (most file systems allow 255).
inline constexpr std::size_t k_max_filename_bytes = 255;

// Form field names are short (header names, "body-mime", "attachment-3"); a longer name
// marks a broken or hostile form, and the cap keeps the decoder's name buffer small.
inline constexpr std::size_t k_max_field_name_bytes = 1024;

// A TNEF container (winmail.dat) is unpacked in memory, so a larger one is stored but not
// unpacked. Mailgun's 25 MB message limit keeps every real container below this.
inline constexpr std::size_t k_max_tnef_container_bytes = 25 * 1024 * 1024;

// Defects recorded for one message; a hostile message can make the parser warn for every
// line, and meta.json does not need more than this to show what was wrong.
inline constexpr std::size_t k_max_recorded_defects = 100;

// Nesting depth up to which the spool removes a staging directory's subfolders. The
// responder writes staging directories flat, so deeper trees are left for the administrator.
inline constexpr int k_max_staging_removal_depth = 16;

// An event webhook's JSON body is read into memory to find its signature. Mailgun's event
// payloads are a few kilobytes, so anything larger is not one and is rejected (406).
inline constexpr std::uint64_t k_max_json_body_bytes = 1024 * 1024;

// JSON-valued fields (message-headers, content-id-map, attachments) nest two or three
// levels. Deeper values are kept as text and not parsed (see parsed_format.cpp).
inline constexpr int k_max_json_depth = 32;

// The signature fields are short (a 10-digit timestamp, a 50-character token, 64 hex
// digits); the signature check rejects a token longer than this.
inline constexpr std::size_t k_max_signature_field_bytes = 1024;

// Limits on the header blocks of one raw message: the top-level header, each part's
// header after a boundary delimiter and each attached message's header. GMime 3.2.13
// builds every field and parameter in memory. A message with 2 million header fields
// made the responder peak at 1.5 GB of RSS (an estimated 750 bytes per field). One
// Content-Type with 100,000 parameters took 90 s to decode, growing quadratically. So
// GMime is not given a message from the part that exceeds a limit on. Real mail stays far
// below: a top-level header has tens to a few hundred fields and tens of kilobytes
// (sendmail's default limit is 32 KiB for all headers, Stalwart's 512 KiB), and a field
// has a handful of parameters.
inline constexpr std::size_t k_max_header_block_bytes = 1024 * 1024;
inline constexpr std::size_t k_max_header_block_fields = 10000;
// Parameters are counted as the ';' in a Content-Type or Content-Disposition field, so
// one inside a quoted value counts too.
inline constexpr std::size_t k_max_header_field_parameters = 1000;
// Sums over all header blocks of a message. They leave room for k_max_mime_parts parts
// with a few fields each and keep GMime's share of the decoder's memory near 30 MB.
inline constexpr std::size_t k_max_message_header_bytes = 4 * 1024 * 1024;
inline constexpr std::size_t k_max_message_header_fields = 30000;
inline constexpr std::size_t k_max_message_header_parameters = 20000;
// GMime also builds every part, even one without header fields: a million empty parts
// made the responder peak at 1.3 GB of RSS. The decoder stores k_max_mime_parts parts,
// so parsing more than twice as many only costs memory.
inline constexpr std::size_t k_max_message_header_blocks = 2 * k_max_mime_parts;

// Top-level header fields copied into meta.json; the rest are counted in a defect.
inline constexpr std::size_t k_max_recorded_headers = 1000;

// A Mailgun signing key is a few dozen characters; a key file larger than this is a mistake.
inline constexpr std::uint64_t k_max_key_file_bytes = 4096;

}  // namespace mgspool
