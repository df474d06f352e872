#include "tnef.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "charset.h"

// libytnef's headers define BYTE, WORD, DWORD and friends as macros, so they stay in this file.
extern "C" {
#include <ytnef.h>
}

namespace mgspool {

namespace {

// libytnef prints its parse errors with printf. When the responder runs as plain CGI,
// standard output is the HTTP response, so it points at /dev/null while libytnef runs.
// NOTE: this changes descriptor 1 for the whole process, which is safe only because the
// responder handles one request at a time in one thread.
class StandardOutputSilencer {
 public:
  StandardOutputSilencer() {
    std::fflush(stdout);
    int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd < 0) {
      return;
    }
    m_saved_fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (m_saved_fd >= 0 && ::dup2(null_fd, STDOUT_FILENO) < 0) {
      ::close(m_saved_fd);
      m_saved_fd = -1;
    }
    ::close(null_fd);
  }
  StandardOutputSilencer(const StandardOutputSilencer&) = delete;
  StandardOutputSilencer& operator=(const StandardOutputSilencer&) = delete;
  ~StandardOutputSilencer() {
    std::fflush(stdout);
    if (m_saved_fd >= 0) {
      ::dup2(m_saved_fd, STDOUT_FILENO);
      ::close(m_saved_fd);
    }
  }

  bool active() const { return m_saved_fd >= 0; }

 private:
  int m_saved_fd = -1;
};

class TnefStructure {
 public:
  TnefStructure() { TNEFInitialize(&m_tnef); }
  TnefStructure(const TnefStructure&) = delete;
  TnefStructure& operator=(const TnefStructure&) = delete;
  ~TnefStructure() { TNEFFree(&m_tnef); }

  TNEFStruct* get() { return &m_tnef; }

 private:
  TNEFStruct m_tnef{};
};

std::string strip_trailing_nuls(std::string text) {
  while (!text.empty() && text.back() == '\0') {
    text.pop_back();
  }
  return text;
}

std::string bytes_of(const variableLength* value) {
  if (value == nullptr || value == MAPI_UNDEFINED || value->data == nullptr || value->size <= 0) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(value->data), static_cast<std::size_t>(value->size));
}

std::string attachment_name(Attachment* attachment, std::string_view fallback_charset) {
  variableLength* wide = MAPIFindProperty(&attachment->MAPI, PROP_TAG(PT_UNICODE, PR_ATTACH_LONG_FILENAME));
  std::string utf16 = bytes_of(wide);
  if (!utf16.empty()) {
    if (auto converted = convert_to_utf8(utf16, "UTF-16LE")) {
      std::string name = strip_trailing_nuls(*converted);
      if (!name.empty()) {
        return name;
      }
    }
  }

  variableLength* narrow = MAPIFindProperty(&attachment->MAPI, PROP_TAG(PT_STRING8, PR_ATTACH_LONG_FILENAME));
  std::string name = strip_trailing_nuls(bytes_of(narrow));
  if (name.empty()) {
    name = strip_trailing_nuls(bytes_of(&attachment->Title));
  }
  return decode_unlabelled_bytes(name, fallback_charset);
}

}  // namespace

std::optional<std::vector<TnefFile>> unpack_tnef(std::string_view container, std::string_view fallback_charset) {
  std::vector<BYTE> buffer(container.begin(), container.end());
  TnefStructure tnef;
  int result = 0;
  {
    StandardOutputSilencer silencer;
    if (!silencer.active()) {
      return std::nullopt;
    }
    result = TNEFParseMemory(buffer.data(), static_cast<long>(buffer.size()), tnef.get());
  }
  if (result < 0) {
    return std::nullopt;
  }

  std::vector<TnefFile> files;
  for (Attachment* attachment = tnef.get()->starting_attach.next; attachment != nullptr;
       attachment = attachment->next) {
    std::string bytes = bytes_of(&attachment->FileData);
    if (bytes.empty()) {
      continue;
    }
    files.push_back({attachment_name(attachment, fallback_charset), std::move(bytes)});
  }
  return files;
}

}  // namespace mgspool
