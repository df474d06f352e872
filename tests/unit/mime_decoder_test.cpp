#include "mime_decoder.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "charset.h"
#include "file_io.h"
#include "request_error.h"
#include "spool_limits.h"
#include "test_support.h"

using mgspool::DecodedMessage;
using mgspool::PartRecord;
using mgspool::testing::ScratchDirectory;

namespace {

namespace fs = std::filesystem;

// A scratch folder on tmpfs (/dev/shm) when the machine has one, else in the temporary
// directory. fsync costs nothing on tmpfs, which keeps the corpus test fast; it checks
// decoding, not durability.
class TmpfsScratchDirectory {
 public:
  TmpfsScratchDirectory() {
    fs::path base = ::access("/dev/shm", W_OK) == 0 ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string pattern = (base / "mailgun-spool-unit-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    m_path = pattern;
  }
  TmpfsScratchDirectory(const TmpfsScratchDirectory&) = delete;
  TmpfsScratchDirectory& operator=(const TmpfsScratchDirectory&) = delete;
  ~TmpfsScratchDirectory() {
    std::error_code ignored;
    fs::remove_all(m_path, ignored);
  }

  const fs::path& path() const { return m_path; }

 private:
  fs::path m_path;
};

// A staging directory with message.eml in it, decoded.
template <typename Directory>
struct DecodeRunIn {
  Directory directory;
  DecodedMessage message;

  fs::path file(const std::string& name) const { return directory.path() / name; }
};
using DecodeRun = DecodeRunIn<ScratchDirectory>;

void write_message(const fs::path& directory, const std::string& bytes) {
  std::ofstream stream(directory / "message.eml", std::ios::binary);
  stream << bytes;
  REQUIRE(stream.good());
}

template <typename Run>
void decode_into(Run& run) {
  mgspool::UniqueFd dir(::open(run.directory.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(dir.valid());
  run.message = mgspool::decode_message_file(dir.get(), "message.eml");
}

std::string without_carriage_returns(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
  return text;
}

const PartRecord* find_role(const DecodedMessage& message, const std::string& role) {
  for (const PartRecord& part : message.parts) {
    if (part.role == role) {
      return &part;
    }
  }
  return nullptr;
}

// Records a reader counts as the message's own attachments: not bodies, not inside an
// attached message or a container.
std::vector<const PartRecord*> top_level_attachments(const DecodedMessage& message) {
  std::vector<const PartRecord*> attachments;
  for (const PartRecord& part : message.parts) {
    bool counted = part.role == "attachment" || part.role == "inline" || part.role == "message";
    if (counted && !part.parent) {
      attachments.push_back(&part);
    }
  }
  return attachments;
}

// Checks the invariants every decoded message directory must keep: program-chosen
// names of regular files directly inside it, records that match the files, and names
// that are valid UTF-8 without separators.
template <typename Run>
void check_directory_invariants(const Run& run) {
  static const std::regex k_program_name(R"((message\.eml|body-plain\.txt|body-html\.html|body-other-[0-9]+\.(txt|html)|part-[0-9]+\.[a-z]+))");
  std::size_t files_found = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(run.directory.path())) {
    std::string name = entry.path().filename().string();
    CAPTURE(name);
    CHECK(entry.is_regular_file());
    CHECK_FALSE(entry.is_symlink());
    CHECK(std::regex_match(name, k_program_name));
    ++files_found;
  }
  CHECK(files_found == run.message.parts.size() + 1);

  for (const PartRecord& part : run.message.parts) {
    CAPTURE(part.file);
    std::error_code error;
    CHECK(fs::file_size(run.file(part.file), error) == part.size);
    CHECK(mgspool::sha256_hex(mgspool::testing::read_file(run.file(part.file))) == part.sha256);
    if (part.filename) {
      CHECK(mgspool::is_valid_utf8(*part.filename));
      CHECK(part.filename->find('/') == std::string::npos);
      CHECK(part.filename->size() <= 255);
      CHECK_FALSE(part.filename->empty());
      CHECK(part.filename->front() != '.');
    }
    if (part.filename_sent) {
      CHECK(mgspool::is_valid_utf8(*part.filename_sent));
    }
  }
  for (const auto& [name, value] : run.message.headers) {
    CHECK(mgspool::is_valid_utf8(name));
    CHECK(mgspool::is_valid_utf8(value));
  }
  if (run.message.subject) {
    CHECK(mgspool::is_valid_utf8(*run.message.subject));
  }
  for (const std::string& defect : run.message.defects) {
    CHECK(mgspool::is_valid_utf8(defect));
  }
}

std::string base64_encode(const std::string& bytes) {
  static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    unsigned value = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                     static_cast<unsigned char>(bytes[i + 2]);
    out += k_alphabet[(value >> 18) & 63];
    out += k_alphabet[(value >> 12) & 63];
    out += k_alphabet[(value >> 6) & 63];
    out += k_alphabet[value & 63];
  }
  if (i + 1 == bytes.size()) {
    unsigned value = static_cast<unsigned char>(bytes[i]) << 16;
    out += k_alphabet[(value >> 18) & 63];
    out += k_alphabet[(value >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    unsigned value = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += k_alphabet[(value >> 18) & 63];
    out += k_alphabet[(value >> 12) & 63];
    out += k_alphabet[(value >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string with_crlf(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("decoder multipart with attachment") {
  DecodeRun run;
  write_message(run.directory.path(), with_crlf(
      "From: Anna <anna@example.com>\n"
      "Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\n"
      "Content-Type: multipart/mixed; boundary=\"outer\"\n"
      "\n"
      "--outer\n"
      "Content-Type: multipart/alternative; boundary=\"inner\"\n"
      "\n"
      "--inner\n"
      "Content-Type: text/plain; charset=utf-8\n"
      "\n"
      "Hallo\n"
      "--inner\n"
      "Content-Type: text/html; charset=utf-8\n"
      "\n"
      "<p>Hallo</p>\n"
      "--inner--\n"
      "--outer\n"
      "Content-Type: application/pdf; name=\"r.pdf\"\n"
      "Content-Disposition: attachment; filename=\"report.pdf\"\n"
      "Content-Transfer-Encoding: base64\n"
      "\n" + base64_encode("%PDF-1.4 test") + "\n"
      "--outer--\n"));
  decode_into(run);

  CHECK(run.message.subject == std::optional<std::string>("Grüße"));
  CHECK(run.message.from == std::optional<std::string>("Anna <anna@example.com>"));
  REQUIRE(run.message.parts.size() == 3);
  CHECK(run.message.parts[0].file == "body-plain.txt");
  CHECK(run.message.parts[0].path == "1.1");
  CHECK(run.message.parts[0].charset == std::optional<std::string>("utf-8"));
  CHECK(run.message.parts[1].file == "body-html.html");
  CHECK(run.message.parts[2].file == "part-1.pdf");
  CHECK(run.message.parts[2].role == "attachment");
  CHECK(run.message.parts[2].path == "2");
  CHECK(run.message.parts[2].filename == std::optional<std::string>("report.pdf"));
  CHECK(mgspool::testing::read_file(run.file("part-1.pdf")) == "%PDF-1.4 test");
  CHECK(mgspool::testing::read_file(run.file("body-plain.txt")) == "Hallo");
  check_directory_invariants(run);
}

TEST_CASE("decoder header list order") {
  DecodeRun run;
  write_message(run.directory.path(), with_crlf(
      "Received: from a\n\tby b\n"
      "Content-Type: text/plain; charset=iso-8859-1\n"
      "X-Raw: J\xFCrgen\n"
      "Subject: s\n"
      "\n"
      "body\n"));
  decode_into(run);
  REQUIRE(run.message.headers.size() == 4);
  CHECK(run.message.headers[0] == std::pair<std::string, std::string>("Received", "from a\tby b"));
  CHECK(run.message.headers[1].first == "Content-Type");
  CHECK(run.message.headers[2] == std::pair<std::string, std::string>("X-Raw", "Jürgen"));
  CHECK(run.message.headers[3].first == "Subject");
}

TEST_CASE("decoder latin1 body as windows-1252") {
  DecodeRun run;
  write_message(run.directory.path(), with_crlf(
      "Subject: offer\n"
      "Content-Type: text/plain; charset=iso-8859-1\n"
      "Content-Transfer-Encoding: quoted-printable\n"
      "\n"
      "Here=92s 49=80 =96 K=F6ln\n"));
  decode_into(run);
  const PartRecord* body = find_role(run.message, "body-plain");
  REQUIRE(body != nullptr);
  CHECK(body->path == "1");
  CHECK(body->charset == std::optional<std::string>("iso-8859-1"));
  CHECK(without_carriage_returns(mgspool::testing::read_file(run.file("body-plain.txt"))) == "Here’s 49€ – Köln\n");
}

TEST_CASE("decoder unknown charset read leniently") {
  DecodeRun run;
  write_message(run.directory.path(), with_crlf(
      "Subject: odd\n"
      "Content-Type: text/plain; charset=x-no-such-charset\n"
      "Content-Transfer-Encoding: 8bit\n"
      "\n"
      "caf\xE9\n"));
  decode_into(run);
  const PartRecord* body = find_role(run.message, "body-plain");
  REQUIRE(body != nullptr);
  CHECK(body->charset == std::optional<std::string>("x-no-such-charset"));
  CHECK(mgspool::testing::read_file(run.file("body-plain.txt")) == "caf\xC3\xA9\r\n");
  bool defect_recorded = std::any_of(run.message.defects.begin(), run.message.defects.end(),
                                     [](const std::string& d) { return d.find("unknown charset") != std::string::npos; });
  CHECK(defect_recorded);
}

TEST_CASE("decoder unlabelled iso-2022-jp body") {
  DecodeRun run;
  write_message(run.directory.path(), with_crlf(
      "Subject: jp\n"
      "Content-Type: text/plain\n"
      "\n"
      "\x1b$B$3$s$K$A$O\x1b(B\n"));
  decode_into(run);
  CHECK(without_carriage_returns(mgspool::testing::read_file(run.file("body-plain.txt"))) == "こんにちは\n");
}

TEST_CASE("decoder unlabelled utf-8 and latin1 bodies") {
  DecodeRun utf8_run;
  write_message(utf8_run.directory.path(), "Subject: u\r\n\r\nGr\xC3\xBC\xC3\x9F" "e\r\n");
  decode_into(utf8_run);
  CHECK(mgspool::testing::read_file(utf8_run.file("body-plain.txt")) == "Grüße\r\n");

  DecodeRun latin1_run;
  write_message(latin1_run.directory.path(), "Subject: l\r\n\r\nGr\xFC\xDF" "e\r\n");
  decode_into(latin1_run);
  CHECK(mgspool::testing::read_file(latin1_run.file("body-plain.txt")) == "Grüße\r\n");
}

TEST_CASE("decoder encoded multipart repaired") {
  std::string inner = with_crlf(
      "--b\n"
      "Content-Type: text/plain; charset=us-ascii\n"
      "\n"
      "See attachment.\n"
      "--b\n"
      "Content-Type: application/pdf; name=\"x.pdf\"\n"
      "Content-Transfer-Encoding: base64\n"
      "\n" + base64_encode("%PDF-1.4 inner") + "\n"
      "--b--\n");
  DecodeRun run;
  write_message(run.directory.path(), with_crlf(
      "Subject: sap\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"b\"\n"
      "Content-Transfer-Encoding: base64\n"
      "\n") + base64_encode(inner) + "\r\n");
  decode_into(run);

  REQUIRE(run.message.parts.size() == 2);
  CHECK(run.message.parts[0].role == "body-plain");
  CHECK(run.message.parts[0].path == "1");
  CHECK(run.message.parts[1].path == "2");
  CHECK(run.message.parts[1].filename == std::optional<std::string>("x.pdf"));
  CHECK(mgspool::testing::read_file(run.file("part-1.pdf")) == "%PDF-1.4 inner");
  bool defect_recorded = std::any_of(run.message.defects.begin(), run.message.defects.end(), [](const std::string& d) {
    return d.find("encoded multipart") != std::string::npos;
  });
  CHECK(defect_recorded);
  check_directory_invariants(run);
}

TEST_CASE("decoder nesting depth limit") {
  std::string message = "Subject: deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n";
  const int levels = 80;
  for (int level = 1; level < levels; ++level) {
    message += "--b" + std::to_string(level - 1) + "\r\nContent-Type: multipart/mixed; boundary=\"b" +
               std::to_string(level) + "\"\r\n\r\n";
  }
  message += "--b" + std::to_string(levels - 1) + "\r\nContent-Type: application/pdf\r\n\r\ndeep\r\n";
  for (int level = levels - 1; level >= 0; --level) {
    message += "--b" + std::to_string(level) + "--\r\n";
  }
  DecodeRun run;
  write_message(run.directory.path(), message);
  decode_into(run);
  CHECK(run.message.parts.empty());
  bool defect_recorded = std::any_of(run.message.defects.begin(), run.message.defects.end(),
                                     [](const std::string& d) { return d.find("nesting") != std::string::npos; });
  CHECK(defect_recorded);
  check_directory_invariants(run);
}

TEST_CASE("decoder inline image roles") {
  DecodeRun run;
  write_message(run.directory.path(), with_crlf(
      "Subject: related\n"
      "Content-Type: multipart/related; boundary=\"r\"\n"
      "\n"
      "--r\n"
      "Content-Type: text/html; charset=utf-8\n"
      "\n"
      "<img src=\"cid:logo@x\">\n"
      "--r\n"
      "Content-Type: image/png\n"
      "Content-ID: <logo@x>\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "iVBORw0KGgo=\n"
      "--r\n"
      "Content-Type: image/gif\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "R0lGODlh\n"
      "--r\n"
      "Content-Type: image/gif\n"
      "Content-Disposition: attachment\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "R0lGODlh\n"
      "--r--\n"));
  decode_into(run);
  REQUIRE(run.message.parts.size() == 4);
  CHECK(run.message.parts[1].role == "inline");
  CHECK(run.message.parts[1].content_id == std::optional<std::string>("logo@x"));
  CHECK(run.message.parts[1].filename == std::optional<std::string>("attachment-1.png"));
  CHECK(run.message.parts[2].role == "inline");
  CHECK(run.message.parts[3].role == "attachment");
  CHECK(run.message.parts[3].filename == std::optional<std::string>("attachment-3.gif"));
}

TEST_CASE("decoder uuencoded part") {
  DecodeRun run;
  write_message(run.directory.path(), with_crlf(
      "Subject: uu\n"
      "Content-Type: multipart/mixed; boundary=\"u\"\n"
      "\n"
      "--u\n"
      "Content-Type: application/octet-stream; name=\"cat.txt\"\n"
      "Content-Transfer-Encoding: x-uuencode\n"
      "\n"
      "begin 644 cat.txt\n"
      "#0V%T\n"
      "`\n"
      "end\n"
      "--u--\n"));
  decode_into(run);
  REQUIRE(run.message.parts.size() == 1);
  CHECK(mgspool::testing::read_file(run.file(run.message.parts[0].file)) == "Cat");
}

TEST_CASE("decoder embedded message with LF lines") {
  const std::string embedded = "Subject: inner\nContent-Type: text/plain\n\ninner text\n";
  DecodeRun run;
  write_message(run.directory.path(),
                "Subject: outer\nContent-Type: multipart/mixed; boundary=\"m\"\n\n"
                "--m\nContent-Type: text/plain\n\nouter text\n"
                "--m\nContent-Type: message/rfc822\n\n" + embedded + "--m--\n");
  decode_into(run);
  const PartRecord* message = find_role(run.message, "message");
  REQUIRE(message != nullptr);
  CHECK(message->path == "2");
  CHECK(message->filename == std::optional<std::string>("inner.eml"));
  CHECK(mgspool::testing::read_file(run.file(message->file)) == "Subject: inner\nContent-Type: text/plain\n\ninner text");
  REQUIRE(run.message.parts.size() == 3);
  CHECK(run.message.parts[2].parent == std::optional<std::string>("2"));
  CHECK(run.message.parts[2].path == "2.1");
  CHECK(run.message.parts[2].role == "body-other");
  CHECK(run.message.parts[2].file == "body-other-1.txt");
  CHECK_FALSE(run.message.parts[2].filename);
}

TEST_CASE("decoder leading blank lines skipped") {
  DecodeRun run;
  write_message(run.directory.path(), "   \r\n\r\nSubject: late start\r\n\r\nbody\r\n");
  decode_into(run);
  CHECK(run.message.subject == std::optional<std::string>("late start"));
  CHECK(find_role(run.message, "body-plain") != nullptr);
}

TEST_CASE("decoder odd input never throws") {
  const std::string inputs[] = {
      "",
      "\r\n\r\n",
      "no header at all",
      "Content-Type: multipart/mixed\r\n\r\nno boundary\r\n",
      "Content-Type: multipart/mixed; boundary=x\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n",
      "Content-Type: text/plain; charset=\"\r\n\r\nbroken quote\r\n",
      "Content-Type: application/ms-tnef\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n",
      "Content-Type: message/rfc822\r\n\r\n",
      "Content-Type: text\r\n\r\nbare text type\r\n",
  };
  for (const std::string& input : inputs) {
    CAPTURE(input);
    DecodeRun run;
    write_message(run.directory.path(), input);
    CHECK_NOTHROW(decode_into(run));
    check_directory_invariants(run);
  }
}

TEST_CASE("decoder missing message file throws") {
  ScratchDirectory directory;
  mgspool::UniqueFd dir(::open(directory.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(dir.valid());
  CHECK_THROWS_AS(mgspool::decode_message_file(dir.get(), "message.eml"), mgspool::RequestError);
}

namespace {

void check_case_attachment(const DecodeRun& run, const PartRecord& part, const nlohmann::json& expected) {
  CAPTURE(part.file);
  CHECK(part.filename == std::optional<std::string>(expected.at("name").get<std::string>()));
  CHECK(part.size == expected.at("size").get<std::uint64_t>());
  CHECK(part.sha256 == expected.at("sha256").get<std::string>());
  CHECK(part.content_type == expected.at("content_type").get<std::string>());
  CHECK(mgspool::sha256_hex(mgspool::testing::read_file(run.file(part.file))) == expected.at("sha256"));
  if (expected.value("inline", false)) {
    CHECK(part.role == "inline");
  }
}

void check_case(const fs::path& folder) {
  const nlohmann::json expected_file = nlohmann::json::parse(mgspool::testing::read_file(folder / "expected.json"));
  const nlohmann::json& expected = expected_file.at("messages").at(0);
  const std::string raw = mgspool::testing::read_file(folder / "message.eml");

  DecodeRun run;
  write_message(run.directory.path(), raw);
  decode_into(run);
  check_directory_invariants(run);

  CHECK(mgspool::sha256_hex(mgspool::testing::read_file(run.file("message.eml"))) == expected.at("raw_sha256"));
  CHECK(run.message.subject == std::optional<std::string>(expected.at("subject").get<std::string>()));

  const PartRecord* body = find_role(run.message, "body-plain");
  if (expected.at("text").is_null()) {
    CHECK(body == nullptr);
  } else {
    REQUIRE(body != nullptr);
    CHECK(without_carriage_returns(mgspool::testing::read_file(run.file(body->file))) == expected.at("text"));
  }

  std::vector<const PartRecord*> attachments = top_level_attachments(run.message);
  const nlohmann::json& expected_attachments = expected.at("attachments");
  REQUIRE(attachments.size() == expected_attachments.size());
  for (std::size_t i = 0; i < attachments.size(); ++i) {
    check_case_attachment(run, *attachments[i], expected_attachments.at(i));
  }

  if (expected.contains("nested_attachment_not_top_level")) {
    const nlohmann::json& nested = expected.at("nested_attachment_not_top_level");
    bool found = std::any_of(run.message.parts.begin(), run.message.parts.end(), [&](const PartRecord& part) {
      return part.parent && part.filename == std::optional<std::string>(nested.at("name").get<std::string>()) &&
             part.sha256 == nested.at("sha256").get<std::string>();
    });
    CHECK(found);
  }

  if (expected.contains("should_also_extract")) {
    std::vector<const PartRecord*> extracted;
    for (const PartRecord& part : run.message.parts) {
      if (part.role == "extracted") {
        extracted.push_back(&part);
      }
    }
    const nlohmann::json& expected_extracted = expected.at("should_also_extract");
    REQUIRE(extracted.size() == expected_extracted.size());
    for (std::size_t i = 0; i < extracted.size(); ++i) {
      check_case_attachment(run, *extracted[i], expected_extracted.at(i));
      CHECK(extracted[i]->parent == std::optional<std::string>(attachments.at(0)->path));
    }
  }
}

}  // namespace

TEST_CASE("decoder raw message cases") {
  auto shared = mgspool::testing::shared_or_skip("decoder raw message cases");
  if (!shared) {
    return;
  }
  std::vector<fs::path> folders;
  for (const fs::directory_entry& entry : fs::directory_iterator(*shared / "cases")) {
    if (fs::exists(entry.path() / "message.eml") && fs::exists(entry.path() / "expected.json")) {
      folders.push_back(entry.path());
    }
  }
  std::sort(folders.begin(), folders.end());
  CHECK(folders.size() >= 11);
  for (const fs::path& folder : folders) {
    SUBCASE(folder.filename().string().c_str()) { check_case(folder); }
  }
}

namespace {

struct CorpusRow {
  std::string path;
  std::string expected_attachments;
};

std::vector<CorpusRow> read_corpus_index(const fs::path& index) {
  std::vector<CorpusRow> rows;
  std::istringstream lines(mgspool::testing::read_file(index));
  std::string line;
  std::getline(lines, line);  // column names
  while (std::getline(lines, line)) {
    std::vector<std::string> columns;
    std::istringstream fields(line);
    std::string field;
    while (std::getline(fields, field, '\t')) {
      columns.push_back(field);
    }
    if (columns.size() >= 4) {
      rows.push_back({columns[0], columns[3]});
    }
  }
  return rows;
}

// The corpus index counts what a mail client lists as attachments. The decoder's closest
// equivalent: top-level records of role attachment or message, and inline parts that
// were sent with a name (unnamed inline images and text are shown in the body).
std::size_t listed_attachment_count(const DecodedMessage& message) {
  std::size_t count = 0;
  for (const PartRecord& part : message.parts) {
    bool listed = part.role == "attachment" || part.role == "message" || (part.role == "inline" && part.filename_sent);
    if (listed && !part.parent) {
      ++count;
    }
  }
  return count;
}

}  // namespace

TEST_CASE("decoder corpus messages") {
  auto shared = mgspool::testing::shared_or_skip("decoder corpus messages");
  if (!shared) {
    return;
  }
  const fs::path corpus = *shared / "corpus";
  std::vector<CorpusRow> rows = read_corpus_index(corpus / "INDEX.tsv");
  CHECK(rows.size() == 345);

  std::size_t numbered = 0;
  std::size_t agreeing = 0;
  std::string disagreements;
  for (const CorpusRow& row : rows) {
    CAPTURE(row.path);
    DecodeRunIn<TmpfsScratchDirectory> run;
    write_message(run.directory.path(), mgspool::testing::read_file(corpus / row.path));
    REQUIRE_NOTHROW(decode_into(run));
    check_directory_invariants(run);
    for (const std::string& defect : run.message.defects) {
      CHECK(defect.find("header limit exceeded") == std::string::npos);
    }

    bool is_number = !row.expected_attachments.empty() &&
                     std::all_of(row.expected_attachments.begin(), row.expected_attachments.end(),
                                 [](char c) { return c >= '0' && c <= '9'; });
    if (is_number) {
      ++numbered;
      std::size_t count = listed_attachment_count(run.message);
      if (count == std::stoul(row.expected_attachments)) {
        ++agreeing;
      } else {
        disagreements += row.path + ": index " + row.expected_attachments + ", decoded " + std::to_string(count) + "\n";
      }
    }
  }

  // The index and the decoder disagree on a few kinds of part, such as unnamed inline
  // images, text/calendar and invalid content types. A drop below 95% agreement means
  // the decoder lost attachments.
  INFO("attachment counts that differ from the index:\n" << disagreements);
  CHECK(numbered > 300);
  CHECK(agreeing * 100 >= numbered * 95);
}

TEST_CASE("decoder part count limit") {
  std::string message = "Subject: many\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n";
  const std::size_t parts = mgspool::k_max_mime_parts + 50;
  for (std::size_t i = 0; i < parts; ++i) {
    message += "--p\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n";
  }
  message += "--p--\r\n";
  DecodeRunIn<TmpfsScratchDirectory> run;
  write_message(run.directory.path(), message);
  decode_into(run);
  CHECK(run.message.parts.size() == mgspool::k_max_mime_parts);
  bool defect_recorded = std::any_of(run.message.defects.begin(), run.message.defects.end(),
                                     [](const std::string& d) { return d.find("MIME parts") != std::string::npos; });
  CHECK(defect_recorded);
}

namespace {

void append_little_endian(std::string& out, std::uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  }
}

// Appends one TNEF attribute: level, id, length, data and the 16-bit sum of the data.
void append_tnef_attribute(std::string& out, int level, std::uint32_t id, const std::string& data) {
  out.push_back(static_cast<char>(level));
  append_little_endian(out, id, 4);
  append_little_endian(out, static_cast<std::uint32_t>(data.size()), 4);
  out += data;
  std::uint32_t checksum = 0;
  for (char c : data) {
    checksum += static_cast<unsigned char>(c);
  }
  append_little_endian(out, checksum & 0xFFFF, 2);
}

std::string make_tnef(const std::vector<std::pair<std::string, std::string>>& files) {
  constexpr int k_message_level = 1;
  constexpr int k_attachment_level = 2;
  std::string tnef;
  append_little_endian(tnef, 0x223E9F78, 4);  // signature
  append_little_endian(tnef, 0x0001, 2);      // key
  std::string version;
  append_little_endian(version, 0x00010000, 4);
  append_tnef_attribute(tnef, k_message_level, 0x00089006, version);  // attTnefVersion
  for (const auto& [name, content] : files) {
    append_tnef_attribute(tnef, k_attachment_level, 0x00069002, std::string(14, '\0'));  // attAttachRenddata
    append_tnef_attribute(tnef, k_attachment_level, 0x00018010, name + std::string(1, '\0'));  // attAttachTitle
    append_tnef_attribute(tnef, k_attachment_level, 0x0006800F, content);  // attAttachData
  }
  return tnef;
}

}  // namespace

TEST_CASE("decoder tnef container unpacked") {
  std::string tnef = make_tnef({{"plan.txt", "first file\n"}, {"Notiz.pdf", "%PDF second"}});
  DecodeRun run;
  write_message(run.directory.path(), with_crlf(
      "Subject: tnef\n"
      "Content-Type: multipart/mixed; boundary=\"t\"\n"
      "\n"
      "--t\n"
      "Content-Type: text/plain\n"
      "\n"
      "see attachments\n"
      "--t\n"
      "Content-Type: application/ms-tnef; name=\"winmail.dat\"\n"
      "Content-Disposition: attachment; filename=\"winmail.dat\"\n"
      "Content-Transfer-Encoding: base64\n"
      "\n") + base64_encode(tnef) + "\r\n--t--\r\n");
  decode_into(run);

  REQUIRE(run.message.parts.size() == 4);
  const PartRecord& container = run.message.parts[1];
  CHECK(container.role == "attachment");
  CHECK(container.filename == std::optional<std::string>("winmail.dat"));
  CHECK(mgspool::testing::read_file(run.file(container.file)) == tnef);

  const PartRecord& first = run.message.parts[2];
  CHECK(first.role == "extracted");
  CHECK(first.parent == std::optional<std::string>("2"));
  CHECK(first.path == "2#1");
  CHECK(first.filename == std::optional<std::string>("plan.txt"));
  CHECK(first.content_type == "text/plain");
  CHECK(mgspool::testing::read_file(run.file(first.file)) == "first file\n");

  const PartRecord& second = run.message.parts[3];
  CHECK(second.filename == std::optional<std::string>("Notiz.pdf"));
  CHECK(second.content_type == "application/pdf");
  CHECK(mgspool::testing::read_file(run.file(second.file)) == "%PDF second");
  check_directory_invariants(run);
}

TEST_CASE("decoder corrupt tnef kept") {
  std::string tnef = make_tnef({{"a.txt", "data"}}).substr(0, 30);
  DecodeRun run;
  write_message(run.directory.path(), with_crlf(
      "Subject: tnef\n"
      "Content-Type: application/ms-tnef\n"
      "Content-Transfer-Encoding: base64\n"
      "\n") + base64_encode(tnef) + "\r\n");
  decode_into(run);
  REQUIRE_FALSE(run.message.parts.empty());
  CHECK(run.message.parts[0].size == tnef.size());
  check_directory_invariants(run);
}

namespace {

bool has_defect_containing(const DecodedMessage& message, const std::string& text) {
  return std::any_of(message.defects.begin(), message.defects.end(),
                     [&](const std::string& defect) { return defect.find(text) != std::string::npos; });
}

std::string header_lines(std::size_t count) {
  std::string lines;
  for (std::size_t i = 0; i < count; ++i) {
    lines += "X-Line: " + std::to_string(i) + "\r\n";
  }
  return lines;
}

std::string content_type_with_parameters(std::size_t count) {
  std::string value = "Content-Type: text/plain";
  for (std::size_t i = 0; i < count; ++i) {
    value += "; p" + std::to_string(i) + "=v";
  }
  return value + "\r\n";
}

template <typename Run>
void check_message_kept(const Run& run, const std::string& raw) {
  CHECK(mgspool::testing::read_file(run.file("message.eml")) == raw);
}

}  // namespace

TEST_CASE("decoder top-level header too many fields") {
  const std::string raw = "Subject: many\r\n" + header_lines(mgspool::k_max_header_block_fields + 10) + "\r\nbody\r\n";
  DecodeRun run;
  write_message(run.directory.path(), raw);
  CHECK_NOTHROW(decode_into(run));

  CHECK(run.message.parts.empty());
  CHECK(run.message.headers.empty());
  CHECK_FALSE(run.message.subject.has_value());
  CHECK(has_defect_containing(run.message, "header limit exceeded: the top-level header at byte 0 has " +
                                               std::to_string(mgspool::k_max_header_block_fields + 11) + " fields"));
  CHECK(has_defect_containing(run.message, "fields per header block; the message was not decoded"));
  check_message_kept(run, raw);
  check_directory_invariants(run);
}

TEST_CASE("decoder top-level header too many bytes") {
  const std::string raw = "Subject: long\r\nX-Long: " + std::string(mgspool::k_max_header_block_bytes, 'a') +
                          "\r\n\r\nbody\r\n";
  DecodeRun run;
  write_message(run.directory.path(), raw);
  CHECK_NOTHROW(decode_into(run));

  CHECK(run.message.parts.empty());
  CHECK(has_defect_containing(run.message, "bytes per header block; the message was not decoded"));
  check_message_kept(run, raw);
  check_directory_invariants(run);
}

TEST_CASE("decoder content type too many parameters") {
  const std::string raw = "Subject: parameters\r\n" +
                          content_type_with_parameters(mgspool::k_max_header_field_parameters + 1) + "\r\nbody\r\n";
  DecodeRun run;
  write_message(run.directory.path(), raw);
  CHECK_NOTHROW(decode_into(run));

  CHECK(run.message.parts.empty());
  CHECK(has_defect_containing(run.message, "up to " + std::to_string(mgspool::k_max_header_field_parameters + 1) +
                                               " parameters in one field"));
  CHECK(has_defect_containing(run.message, "parameters per field"));
  check_message_kept(run, raw);
}

TEST_CASE("decoder parameters at the limit accepted") {
  const std::string raw = "Subject: parameters\r\n" +
                          content_type_with_parameters(mgspool::k_max_header_field_parameters) + "\r\nbody\r\n";
  DecodeRun run;
  write_message(run.directory.path(), raw);
  decode_into(run);

  CHECK_FALSE(has_defect_containing(run.message, "header limit exceeded"));
  REQUIRE(run.message.parts.size() == 1);
  CHECK(mgspool::testing::read_file(run.file("body-plain.txt")) == "body\r\n");
}

TEST_CASE("decoder oversized part header keeps earlier parts") {
  const std::string raw = with_crlf(
      "Subject: parts\n"
      "Content-Type: multipart/mixed; boundary=\"b\"\n"
      "\n"
      "--b\n"
      "Content-Type: text/plain\n"
      "\n"
      "first\n"
      "--b\n") + header_lines(mgspool::k_max_header_block_fields + 1) + with_crlf(
      "Content-Type: application/pdf; name=\"big.pdf\"\n"
      "\n"
      "second\n"
      "--b\n"
      "Content-Type: application/pdf; name=\"third.pdf\"\n"
      "\n"
      "third\n"
      "--b--\n");
  DecodeRun run;
  write_message(run.directory.path(), raw);
  CHECK_NOTHROW(decode_into(run));

  REQUIRE(run.message.parts.size() == 1);
  CHECK(run.message.parts[0].file == "body-plain.txt");
  CHECK(mgspool::testing::read_file(run.file("body-plain.txt")) == "first");
  CHECK(run.message.subject == std::optional<std::string>("parts"));
  std::size_t second_delimiter = raw.find("\r\n--b\r\nX-Line");
  CHECK(has_defect_containing(run.message, "the header of the part at byte " + std::to_string(second_delimiter + 7)));
  CHECK(has_defect_containing(run.message, "decoded only up to byte " + std::to_string(second_delimiter)));
  check_message_kept(run, raw);
  check_directory_invariants(run);
}

TEST_CASE("decoder oversized attached message header") {
  const std::string raw = with_crlf(
      "Subject: forward\n"
      "Content-Type: multipart/mixed; boundary=\"b\"\n"
      "\n"
      "--b\n"
      "Content-Type: text/plain\n"
      "\n"
      "see attached\n"
      "--b\n"
      "Content-Type: message/rfc822\n"
      "\n") + header_lines(mgspool::k_max_header_block_fields + 1) + with_crlf(
      "\n"
      "inner body\n"
      "--b--\n");
  DecodeRun run;
  write_message(run.directory.path(), raw);
  CHECK_NOTHROW(decode_into(run));

  REQUIRE(run.message.parts.size() == 1);
  CHECK(mgspool::testing::read_file(run.file("body-plain.txt")) == "see attached");
  CHECK(has_defect_containing(run.message, "header limit exceeded: the header of the attached message at byte"));
  check_message_kept(run, raw);
  check_directory_invariants(run);
}

TEST_CASE("decoder header-like body lines accepted") {
  // Lines that look like header fields in a body, an encoded attached message and a part
  // without an empty line before the next delimiter are not header blocks to GMime.
  std::string encoded_message;
  for (std::size_t i = 0; i < 30000; ++i) {
    encoded_message += base64_encode("X-Inner-" + std::to_string(i) + ": value\r\n") + "\r\n";
  }
  const std::string raw = with_crlf(
      "Subject: lookalikes\n"
      "Content-Type: multipart/mixed; boundary=\"b\"\n"
      "\n"
      "--b\n"
      "Content-Type: text/plain\n"
      "\n") + header_lines(mgspool::k_max_header_block_fields + 1) + with_crlf(
      "--b\n"
      "Content-Type: message/rfc822\n"
      "Content-Transfer-Encoding: base64\n"
      "\n") + encoded_message + with_crlf(
      "--b\n"
      "Content-Type: application/octet-stream\n"
      "--b\n"
      "Content-Type: application/pdf; name=\"last.pdf\"\n"
      "\n"
      "last\n"
      "--b--\n");
  DecodeRunIn<TmpfsScratchDirectory> run;
  write_message(run.directory.path(), raw);
  decode_into(run);

  CHECK_FALSE(has_defect_containing(run.message, "header limit exceeded"));
  REQUIRE(run.message.parts.size() == 4);
  CHECK(run.message.parts[3].filename == std::optional<std::string>("last.pdf"));
  check_directory_invariants(run);
}

TEST_CASE("decoder message header field total") {
  const std::size_t fields_per_part = 1000;
  const std::size_t parts = mgspool::k_max_message_header_fields / fields_per_part + 1;
  std::string raw = "Subject: totals\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n";
  for (std::size_t i = 0; i < parts; ++i) {
    raw += "--b\r\n" + header_lines(fields_per_part - 1) + "Content-Type: application/octet-stream\r\n\r\nx\r\n";
  }
  raw += "--b--\r\n";
  DecodeRunIn<TmpfsScratchDirectory> run;
  write_message(run.directory.path(), raw);
  CHECK_NOTHROW(decode_into(run));

  CHECK(has_defect_containing(run.message, "header fields per message"));
  CHECK(run.message.parts.size() == parts - 2);
  check_message_kept(run, raw);
  check_directory_invariants(run);
}

TEST_CASE("decoder encoded multipart header limit") {
  std::string inner = "--i\r\n" + header_lines(mgspool::k_max_header_block_fields + 1) +
                      "Content-Type: text/plain\r\n\r\nhidden\r\n--i--\r\n";
  const std::string raw = "Subject: encoded\r\n"
                          "Content-Type: multipart/mixed; boundary=\"i\"\r\n"
                          "Content-Transfer-Encoding: base64\r\n"
                          "\r\n" + base64_encode(inner) + "\r\n";
  DecodeRunIn<TmpfsScratchDirectory> run;
  write_message(run.directory.path(), raw);
  CHECK_NOTHROW(decode_into(run));

  CHECK(has_defect_containing(run.message, "the decoded body of the top-level multipart was"));
  CHECK(run.message.parts.empty());
  check_message_kept(run, raw);
  check_directory_invariants(run);
}

TEST_CASE("decoder recorded headers capped") {
  const std::size_t fields = mgspool::k_max_recorded_headers + 200;
  const std::string raw = "Subject: capped\r\n" + header_lines(fields - 1) + "\r\nbody\r\n";
  DecodeRun run;
  write_message(run.directory.path(), raw);
  decode_into(run);

  CHECK(run.message.headers.size() == mgspool::k_max_recorded_headers);
  CHECK(run.message.headers.front().first == "Subject");
  CHECK(run.message.headers.back().second == std::to_string(mgspool::k_max_recorded_headers - 2));
  CHECK(has_defect_containing(run.message, "the top-level header has " + std::to_string(fields) +
                                               " fields: only the first " +
                                               std::to_string(mgspool::k_max_recorded_headers) + " were recorded"));
  CHECK(find_role(run.message, "body-plain") != nullptr);
}

TEST_CASE("decoder header block count limit") {
  std::string raw = "Subject: parts\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n";
  for (std::size_t i = 0; i < mgspool::k_max_message_header_blocks + 10; ++i) {
    raw += "--p\r\n\r\nx\r\n";
  }
  raw += "--p--\r\n";
  DecodeRunIn<TmpfsScratchDirectory> run;
  write_message(run.directory.path(), raw);
  CHECK_NOTHROW(decode_into(run));

  CHECK(has_defect_containing(run.message, "header blocks per message"));
  CHECK(has_defect_containing(run.message, "MIME parts"));
  CHECK(run.message.parts.size() == mgspool::k_max_mime_parts);
  check_message_kept(run, raw);
}
