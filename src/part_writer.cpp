#include "part_writer.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "charset.h"
#include "file_io.h"
#include "gobject_ptr.h"
#include "request_error.h"
#include "spool.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

struct FormatOptionsDeleter {
  void operator()(GMimeFormatOptions* options) const { g_mime_format_options_free(options); }
};

StoredFile measure_file(int dir_fd, const std::string& name) {
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    throw_system_error("open " + name + " for its checksum", errno);
  }
  UniqueFd reader(fd);
  struct stat status {};
  if (::fstat(reader.get(), &status) != 0) {
    throw_system_error("stat " + name, errno);
  }
  return {static_cast<std::uint64_t>(status.st_size), sha256_hex_of_fd(reader.get())};
}

// A new file in the staging directory and a GMime stream over it. The stream does not
// own the descriptor, so finish() can check the results of fsync and close.
class OutputFile {
 public:
  OutputFile(int dir_fd, std::string name)
      : m_dir_fd(dir_fd), m_name(std::move(name)), m_fd(create_file_at(dir_fd, m_name, k_message_file_mode)) {
    m_stream = GObjectPtr<GMimeStream>::adopt(g_mime_stream_fs_new(m_fd.get()));
    g_mime_stream_fs_set_owner(GMIME_STREAM_FS(m_stream.get()), FALSE);
  }

  GMimeStream* stream() const { return m_stream.get(); }

  void write(std::string_view bytes) { write_all(m_fd.get(), bytes, m_name); }

  void check_written(ssize_t result) {
    if (result < 0) {
      int error_number = errno != 0 ? errno : EIO;
      throw_system_error("write " + m_name, error_number);
    }
  }

  StoredFile finish() {
    m_stream.reset();
    fsync_or_throw(m_fd.get(), m_name);
    m_fd.close_checked(m_name);
    return measure_file(m_dir_fd, m_name);
  }

 private:
  int m_dir_fd;
  std::string m_name;
  UniqueFd m_fd;
  GObjectPtr<GMimeStream> m_stream;  // declared after m_fd, so it is released first
};

// Returns a stream of the part's content with the transfer encoding undone.
GObjectPtr<GMimeStream> open_decoded_content(GMimeDataWrapper* content) {
  GMimeStream* source = g_mime_data_wrapper_get_stream(content);
  g_mime_stream_reset(source);
  auto filtered = GObjectPtr<GMimeStream>::adopt(g_mime_stream_filter_new(source));
  GMimeContentEncoding encoding = g_mime_data_wrapper_get_encoding(content);
  if (encoding == GMIME_CONTENT_ENCODING_BASE64 || encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
      encoding == GMIME_CONTENT_ENCODING_UUENCODE) {
    auto decoder = GObjectPtr<GMimeFilter>::adopt(g_mime_filter_basic_new(encoding, FALSE));
    g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered.get()), decoder.get());
  }
  return filtered;
}

// Calls consume(chunk) for each chunk read from stream; a read error is a local failure.
template <typename Consumer>
void read_chunks(GMimeStream* stream, const std::string& what, Consumer consume) {
  std::vector<char> buffer(k_io_buffer_bytes);
  for (;;) {
    ssize_t count = g_mime_stream_read(stream, buffer.data(), buffer.size());
    if (count < 0) {
      throw_system_error("read " + what, errno != 0 ? errno : EIO);
    }
    if (count == 0) {
      return;
    }
    consume(std::string_view(buffer.data(), static_cast<std::size_t>(count)));
  }
}

enum class TextConversion { utf8, windows1252, iconv };

struct TextScan {
  bool iso2022jp_escape = false;
  bool valid_utf8 = true;
};

TextScan scan_unlabelled_text(GMimeDataWrapper* content, const std::string& what) {
  TextScan scan;
  Utf8StreamSanitizer validator;
  std::string tail;  // the end of the previous chunk, for an escape cut between chunks
  GObjectPtr<GMimeStream> decoded = open_decoded_content(content);
  read_chunks(decoded.get(), what, [&](std::string_view chunk) {
    std::string window = tail + std::string(chunk.substr(0, 2));
    if (window.find("\x1b$B") != std::string::npos || window.find("\x1b$@") != std::string::npos ||
        chunk.find("\x1b$B") != std::string_view::npos || chunk.find("\x1b$@") != std::string_view::npos) {
      scan.iso2022jp_escape = true;
    }
    tail = std::string(chunk.substr(chunk.size() >= 2 ? chunk.size() - 2 : 0));
    validator.feed(chunk);
  });
  validator.finish();
  scan.valid_utf8 = !validator.replaced();
  return scan;
}

}  // namespace

StoredFile write_part_content(int dir_fd, const std::string& name, GMimePart* part) {
  OutputFile output(dir_fd, name);
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content != nullptr) {
    errno = 0;
    output.check_written(g_mime_data_wrapper_write_to_stream(content, output.stream()));
  }
  return output.finish();
}

StoredFile write_embedded_message(int dir_fd, const std::string& name, GMimeMessage* message, bool crlf) {
  OutputFile output(dir_fd, name);
  if (message != nullptr) {
    std::unique_ptr<GMimeFormatOptions, FormatOptionsDeleter> options(g_mime_format_options_new());
    g_mime_format_options_set_newline_format(options.get(),
                                             crlf ? GMIME_NEWLINE_FORMAT_DOS : GMIME_NEWLINE_FORMAT_UNIX);
    errno = 0;
    output.check_written(g_mime_object_write_to_stream(GMIME_OBJECT(message), options.get(), output.stream()));
  }
  return output.finish();
}

StoredFile write_bytes_file(int dir_fd, const std::string& name, std::string_view bytes) {
  OutputFile output(dir_fd, name);
  output.write(bytes);
  return output.finish();
}

StoredFile write_decoded_entity(int dir_fd, const std::string& name, std::string_view header_block,
                                std::string_view encoded_body, GMimeContentEncoding encoding) {
  OutputFile output(dir_fd, name);
  output.write(header_block);

  auto source = GObjectPtr<GMimeStream>::adopt(g_mime_stream_mem_new_with_buffer(encoded_body.data(), encoded_body.size()));
  auto decoded = GObjectPtr<GMimeStream>::adopt(g_mime_stream_filter_new(source.get()));
  auto decoder = GObjectPtr<GMimeFilter>::adopt(g_mime_filter_basic_new(encoding, FALSE));
  g_mime_stream_filter_add(GMIME_STREAM_FILTER(decoded.get()), decoder.get());
  read_chunks(decoded.get(), name, [&](std::string_view chunk) { output.write(chunk); });
  return output.finish();
}

TextBody write_text_body(int dir_fd, const std::string& name, GMimePart* part,
                         const std::optional<std::string>& declared_charset) {
  TextBody body;
  OutputFile output(dir_fd, name);
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr) {
    body.file = output.finish();
    return body;
  }

  std::string label = declared_charset ? effective_charset(*declared_charset) : "";
  bool converted_directly = label.empty() || label == "utf-8" || label == "utf8" || label == "windows-1252";
  if (!converted_directly &&
      !GObjectPtr<GMimeFilter>::adopt(g_mime_filter_charset_new(iconv_name_for(label).c_str(), "UTF-8"))) {
    // The file must still be UTF-8, so an unknown label is read like a missing one; the raw
    // bytes stay in message.eml.
    body.defect = "unknown charset \"" + sanitize_utf8(*declared_charset) + "\" in " + name +
                  ": decoded as UTF-8 where valid, else as windows-1252";
    label.clear();
  }
  if (label.empty()) {
    TextScan scan = scan_unlabelled_text(content, name);
    if (scan.iso2022jp_escape) {
      label = "iso-2022-jp";
    } else if (scan.valid_utf8) {
      label = "utf-8";
    } else {
      label = "windows-1252";
    }
  }

  TextConversion conversion = TextConversion::iconv;
  if (label == "utf-8" || label == "utf8") {
    conversion = TextConversion::utf8;
  } else if (label == "windows-1252") {
    conversion = TextConversion::windows1252;
  }

  GObjectPtr<GMimeStream> decoded = open_decoded_content(content);
  if (conversion == TextConversion::iconv) {
    auto filter = GObjectPtr<GMimeFilter>::adopt(g_mime_filter_charset_new(iconv_name_for(label).c_str(), "UTF-8"));
    if (filter) {
      g_mime_stream_filter_add(GMIME_STREAM_FILTER(decoded.get()), filter.get());
    } else {
      // Not expected after the check above; the sanitizer still guarantees UTF-8.
      conversion = TextConversion::utf8;
    }
  }

  // The charset filter's output goes through the sanitizer too: GMime does not promise
  // valid UTF-8 when the input is invalid in its charset.
  Utf8StreamSanitizer sanitizer;
  read_chunks(decoded.get(), name, [&](std::string_view chunk) {
    switch (conversion) {
      case TextConversion::windows1252:
        output.write(windows1252_to_utf8(chunk));
        break;
      case TextConversion::utf8:
      case TextConversion::iconv:
        output.write(sanitizer.feed(chunk));
        break;
    }
  });
  output.write(sanitizer.finish());
  body.file = output.finish();
  return body;
}

}  // namespace mgspool
