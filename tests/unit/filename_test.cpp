#include "filename.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "charset.h"
#include "mime_parameters.h"

using mgspool::decode_sent_filename;
using mgspool::SafeNameAllocator;

namespace {

struct SentNameRow {
  const char* description;
  std::string content_disposition;
  std::string content_type;
  std::string fallback_charset;
  std::optional<std::string> expected;
};

struct SafeNameRow {
  const char* description;
  std::optional<std::string> sent;
  std::string content_type;
  int number;
  std::optional<std::string> subject;
  std::string expected;
};

}  // namespace

TEST_CASE("sent filename decoding table") {
  const SentNameRow rows[] = {
      {"quoted filename", "attachment; filename=\"report.pdf\"", "application/pdf", "", "report.pdf"},
      {"name from the content type only", "", "application/pdf; name=\"quarterly/../../../../../../tmp/evil.pdf\"", "",
       "quarterly/../../../../../../tmp/evil.pdf"},
      {"filename wins over name", "attachment; filename=\"a.pdf\"", "application/pdf; name=\"b.pdf\"", "", "a.pdf"},
      {"no name at all", "attachment", "application/pdf", "", std::nullopt},
      {"empty quoted filename", "form-data; name=\"attachment-1\"; filename=\"\"", "", "", ""},
      {"form-data name is not a filename", "form-data; name=\"attachment-1\"", "", "", std::nullopt},
      {"encoded word cut across continuations",
       "attachment;\r\n\tfilename*0=\"=?UTF-8?B?w5xiZXJzaWNodF9QcsO8Z\";\r\n\tfilename*1=\"nVuZ19RMy0yMDI0Lnhsc3g=?=\"",
       "", "", "Übersicht_Prüfung_Q3-2024.xlsx"},
      {"quoted encoded word with slash in base64",
       "attachment; filename=\"=?UTF-8?B?0JTQvtCz0L7QstC+0YAg0L/QvtGB0YLQsNCy0LrQuCDihJYxNy5wZGY=?=\"", "", "",
       "Договор поставки №17.pdf"},
      {"quoted extended value labelled us-ascii with a latin-1 byte",
       "attachment;\r\n filename*=\"us-ascii''Skizze%20B%FCro%20Nord.jpg\"", "", "", "Skizze Büro Nord.jpg"},
      {"percent-encoded backslashes", "attachment; filename*=utf-8''..%5C..%5Cboot.ini", "", "", "..\\..\\boot.ini"},
      {"percent-encoded line break", "attachment; filename*=utf-8''invoice%0D%0A.pdf", "", "", "invoice\r\n.pdf"},
      {"filename star wins in form-data",
       "form-data; name=\"attachment-2\"; filename=\"otchet.pdf\"; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf",
       "", "", "отчёт.pdf"},
      {"raw UTF-8 in a quoted filename", "form-data; name=\"attachment-1\"; filename=\"приложение_файл.txt\"", "", "",
       "приложение_файл.txt"},
      {"raw windows-1251 bytes with the text charset", "attachment; filename=\"\xEE\xF2\xF7\xE5\xF2.doc\"", "",
       "windows-1251", "отчет.doc"},
      {"raw latin-1 bytes without a text charset", "attachment; filename=\"Gr\xFC\xDF" "e.txt\"", "", "", "Grüße.txt"},
      {"iso-8859-1 encoded word with a windows-1252 byte", "attachment; filename=\"=?iso-8859-1?Q?49=80.txt?=\"", "",
       "", "49€.txt"},
      {"adjacent encoded words lose the space between",
       "attachment; filename=\"=?utf-8?Q?Jahres?= =?utf-8?Q?bericht.pdf?=\"", "", "", "Jahresbericht.pdf"},
      {"continuations joined in numeric order",
       "attachment; filename*10=\"k\"; filename*1=\"b\"; filename*0=\"a\"; filename*2=\"c\"; filename*3=\"d\"; "
       "filename*4=\"e\"; filename*5=\"f\"; filename*6=\"g\"; filename*7=\"h\"; filename*8=\"i\"; filename*9=\"j\"",
       "", "", "abcdefghijk"},
      {"extended continuations share the first charset",
       "attachment; filename*0*=utf-8''%C3%9C; filename*1*=ber%20uns; filename*2=\".txt\"", "", "", "Über uns.txt"},
      {"unquoted value with spaces", "attachment; filename=my file.pdf", "", "", "my file.pdf"},
      {"backslashes that escape nothing are kept", "attachment; filename=\"C:\\dir\\a.pdf\"", "", "",
       "C:\\dir\\a.pdf"},
      {"escaped quote inside a quoted value", "attachment; filename=\"say \\\"hi\\\".txt\"", "", "",
       "say \"hi\".txt"},
      {"missing disposition type", "filename=\"x.pdf\"", "", "", "x.pdf"},
      {"unclosed quote runs to the end", "attachment; filename=\"open.pdf", "", "", "open.pdf"},
      {"upper-case parameter name", "attachment; FILENAME=\"Upper.PDF\"", "", "", "Upper.PDF"},
  };
  for (const SentNameRow& row : rows) {
    CAPTURE(row.description);
    std::optional<std::string> decoded = decode_sent_filename(row.content_disposition, row.content_type,
                                                              row.fallback_charset);
    CHECK(decoded == row.expected);
  }
}

TEST_CASE("sent filename always valid UTF-8") {
  const std::string hostile[] = {
      "attachment; filename*=utf-8''%FF%FE%C3",
      "attachment; filename=\"=?utf-8?B?/w==?=\"",
      "attachment; filename=\"=?x-no-such-charset?Q?=E9t=E9.txt?=\"",
      "attachment; filename*=x-no-such-charset''%E9t%E9.txt",
      std::string("attachment; filename=\"a\0b.txt\"", sizeof("attachment; filename=\"a\0b.txt\"") - 1),
  };
  for (const std::string& value : hostile) {
    CAPTURE(value);
    std::optional<std::string> decoded = decode_sent_filename(value, "", "");
    REQUIRE(decoded.has_value());
    CHECK(mgspool::is_valid_utf8(*decoded));
  }
}

TEST_CASE("safe name rules table") {
  const std::string long_ascii = std::string(300, 'a') + ".pdf";
  std::string long_umlauts;
  for (int i = 0; i < 200; ++i) {
    long_umlauts += "ü";
  }
  const SafeNameRow rows[] = {
      // R2
      {"backslash and slash become underscores", "a\\b/c.pdf", "application/pdf", 1, std::nullopt, "a_b_c.pdf"},
      {"trailing slash dropped", "image/", "image/png", 3, std::nullopt, "image.png"},
      {"path traversal", "quarterly/../../../../../../tmp/evil.pdf", "application/pdf", 1, std::nullopt,
       "quarterly_.._.._.._.._.._.._tmp_evil.pdf"},
      {"slashes in a date", "Bescheid vom 01/02/2024.pdf", "application/pdf", 2, std::nullopt,
       "Bescheid vom 01_02_2024.pdf"},
      {"absolute path", "/etc/cron.d/backup", "text/plain", 3, std::nullopt, "_etc_cron.d_backup"},
      {"windows relative path", "..\\..\\boot.ini", "text/plain", 4, std::nullopt, "_.._.._boot.ini"},
      // R3
      {"line break becomes underscores", "invoice\r\n.pdf", "application/pdf", 6, std::nullopt, "invoice__.pdf"},
      {"delete character", "a\x7F" "b.txt", "text/plain", 1, std::nullopt, "a_b.txt"},
      {"surrounding spaces trimmed", "  spaced name.txt  ", "text/plain", 1, std::nullopt, "spaced name.txt"},
      {"tab becomes an underscore first", "\tx.txt", "text/plain", 1, std::nullopt, "_x.txt"},
      {"right-to-left override", "invoice_\u202Efdp.exe", "application/octet-stream", 1, std::nullopt,
       "invoice__fdp.exe"},
      {"every bidi formatting character",
       "a\u061Cb\u200Ec\u200Fd\u202Ae\u202Bf\u202Cg\u202Dh\u202Ei\u2066j\u2067k\u2068l\u2069m.txt", "text/plain", 1,
       std::nullopt, "a_b_c_d_e_f_g_h_i_j_k_l_m.txt"},
      {"first and last C1 control", "a\u0080b\u009Fc.txt", "text/plain", 1, std::nullopt, "a_b_c.txt"},
      {"next line character", "line\u0085break.pdf", "application/pdf", 1, std::nullopt, "line_break.pdf"},
      {"characters next to C1 kept", "\u00A0nbsp\u00E9.txt", "text/plain", 1, std::nullopt, "\u00A0nbsp\u00E9.txt"},
      {"characters next to bidi kept", "\u200Dzwj\u2065\u202F\u061B.txt", "text/plain", 1, std::nullopt,
       "\u200Dzwj\u2065\u202F\u061B.txt"},
      {"bidi override in a message subject", std::nullopt, "message/rfc822", 1, "Re: \u202Etxt.exe",
       "Re: _txt.exe"},
      {"leading isolate then trimmed spaces", "\u2066 x.txt ", "text/plain", 1, std::nullopt, "_ x.txt"},
      // R4
      {"empty name", "", "image/png", 1, std::nullopt, "attachment-1.png"},
      {"no name", std::nullopt, "application/zip", 7, std::nullopt, "attachment-7.bin"},
      {"only dots", "..", "application/pdf", 4, std::nullopt, "attachment-4.pdf"},
      {"only spaces", "   ", "text/csv", 2, std::nullopt, "attachment-2.csv"},
      {"message takes its subject", std::nullopt, "message/rfc822", 1, "Angebot 2024-17", "Angebot 2024-17.eml"},
      {"message subject is sanitised", std::nullopt, "message/rfc822", 1, "Re: a/b\tc", "Re: a_b_c.eml"},
      {"message without subject", std::nullopt, "message/rfc822", 5, std::nullopt, "attachment-5.eml"},
      {"sent name wins over the subject", "fwd.eml", "message/rfc822", 1, "Subject", "fwd.eml"},
      {"leading dot", ".bashrc", "text/plain", 5, std::nullopt, "_.bashrc"},
      // R5
      {"name without extension", "README", "text/plain", 1, std::nullopt, "README.txt"},
      {"unknown type gets bin", "archive", "application/x-zip", 1, std::nullopt, "archive.bin"},
      {"tnef container", "winmail", "application/ms-tnef", 1, std::nullopt, "winmail.dat"},
      {"content type with parameters", "page", "Text/HTML; charset=utf-8", 1, std::nullopt, "page.html"},
      {"dot after the first character is an extension", "notes.", "text/plain", 1, std::nullopt, "notes."},
      {"decoded cyrillic name kept", "Договор поставки №17.pdf", "application/pdf", 1, std::nullopt,
       "Договор поставки №17.pdf"},
      // R6
      {"long ascii name keeps its extension", long_ascii, "application/pdf", 1, std::nullopt,
       std::string(251, 'a') + ".pdf"},
      {"long name cut at whole characters", long_umlauts + ".txt", "text/plain", 1, std::nullopt,
       long_umlauts.substr(0, 250) + ".txt"},
  };
  for (const SafeNameRow& row : rows) {
    CAPTURE(row.description);
    SafeNameAllocator names;
    CHECK(names.allocate(row.sent, row.content_type, row.number, row.subject) == row.expected);
  }
}

TEST_CASE("safe name length limit") {
  SafeNameAllocator names;
  std::string huge_extension = "a." + std::string(400, 'x');
  std::string name = names.allocate(huge_extension, "application/pdf", 1);
  CHECK(name.size() == 255);
  CHECK(name.substr(0, 2) == "a.");
}

TEST_CASE("safe name duplicates numbered") {
  SafeNameAllocator names;
  CHECK(names.allocate(std::string("a.pdf"), "application/pdf", 1) == "a.pdf");
  CHECK(names.allocate(std::string("a.pdf"), "application/pdf", 2) == "a (2).pdf");
  CHECK(names.allocate(std::string("a.pdf"), "application/pdf", 3) == "a (3).pdf");
  CHECK(names.allocate(std::string("a/b.pdf"), "application/pdf", 4) == "a_b.pdf");
  CHECK(names.allocate(std::string("a_b.pdf"), "application/pdf", 5) == "a_b (2).pdf");
  CHECK(names.allocate(std::nullopt, "image/png", 6) == "attachment-6.png");
  CHECK(names.allocate(std::string("attachment-6.png"), "image/png", 7) == "attachment-6 (2).png");
}

TEST_CASE("safe name duplicate of a long name") {
  SafeNameAllocator names;
  std::string long_name = std::string(300, 'n') + ".pdf";
  std::string first = names.allocate(long_name, "application/pdf", 1);
  std::string second = names.allocate(long_name, "application/pdf", 2);
  CHECK(first.size() == 255);
  CHECK(second.size() == 255);
  CHECK(second.substr(second.size() - 8) == " (2).pdf");
  CHECK(first != second);
}

TEST_CASE("safe names of hostile attachments") {
  // The six attachments of one message, in order, as the naming rules must store them.
  const std::optional<std::string> sent[] = {
      "quarterly/../../../../../../tmp/evil.pdf", "Bescheid vom 01/02/2024.pdf", "/etc/cron.d/backup",
      "..\\..\\boot.ini", ".bashrc", "invoice\r\n.pdf"};
  const char* types[] = {"application/pdf", "application/pdf", "text/plain",
                         "text/plain",      "text/plain",      "application/pdf"};
  const char* expected[] = {"quarterly_.._.._.._.._.._.._tmp_evil.pdf",
                            "Bescheid vom 01_02_2024.pdf",
                            "_etc_cron.d_backup",
                            "_.._.._boot.ini",
                            "_.bashrc",
                            "invoice__.pdf"};
  SafeNameAllocator names;
  for (int i = 0; i < 6; ++i) {
    std::string name = names.allocate(sent[i], types[i], i + 1);
    CHECK(name == expected[i]);
    CHECK(name.find('/') == std::string::npos);
    CHECK(name.front() != '.');
  }
}

TEST_CASE("safe names of nameless form parts") {
  SafeNameAllocator names;
  CHECK(names.allocate(std::string(""), "image/png", 1) == "attachment-1.png");
  CHECK(names.allocate(std::string(""), "image/png", 2) == "attachment-2.png");
  CHECK(names.allocate(std::string("image/"), "image/png", 3) == "image.png");
  CHECK(names.allocate(std::string(".."), "application/pdf", 4) == "attachment-4.pdf");
}

TEST_CASE("extension for content type table") {
  CHECK(mgspool::extension_for_content_type("image/png") == ".png");
  CHECK(mgspool::extension_for_content_type("image/jpeg") == ".jpg");
  CHECK(mgspool::extension_for_content_type("image/gif") == ".gif");
  CHECK(mgspool::extension_for_content_type("image/tiff") == ".tif");
  CHECK(mgspool::extension_for_content_type("application/pdf") == ".pdf");
  CHECK(mgspool::extension_for_content_type("text/plain") == ".txt");
  CHECK(mgspool::extension_for_content_type("text/html") == ".html");
  CHECK(mgspool::extension_for_content_type("text/csv") == ".csv");
  CHECK(mgspool::extension_for_content_type("message/rfc822") == ".eml");
  CHECK(mgspool::extension_for_content_type("application/ms-tnef") == ".dat");
  CHECK(mgspool::extension_for_content_type("application/vnd.ms-excel") == ".bin");
  CHECK(mgspool::extension_for_content_type("IMAGE/PNG; name=x") == ".png");
}

TEST_CASE("content type for filename table") {
  CHECK(mgspool::content_type_for_filename("Lageplan.txt") == "text/plain");
  CHECK(mgspool::content_type_for_filename("scan.JPEG") == "image/jpeg");
  CHECK(mgspool::content_type_for_filename("scan.jpg") == "image/jpeg");
  CHECK(mgspool::content_type_for_filename("fax.tiff") == "image/tiff");
  CHECK(mgspool::content_type_for_filename("page.htm") == "text/html");
  CHECK(mgspool::content_type_for_filename("report.pdf") == "application/pdf");
  CHECK(mgspool::content_type_for_filename("data.xyz") == "application/octet-stream");
  CHECK(mgspool::content_type_for_filename("noextension") == "application/octet-stream");
  CHECK(mgspool::content_type_for_filename("") == "application/octet-stream");
}

TEST_CASE("mime parameters leading token") {
  CHECK(mgspool::leading_token("Attachment; filename=a") == "attachment");
  CHECK(mgspool::leading_token(" inline") == "inline");
  CHECK(mgspool::leading_token("filename=\"a.pdf\"") == "");
  CHECK(mgspool::leading_token("") == "");
}

TEST_CASE("mime parameters charset value") {
  auto parameters = mgspool::parse_mime_parameters("text/plain;\r\n    charset=\"ISO-8859-1\"; format=flowed");
  CHECK(mgspool::decode_mime_parameter(parameters, "charset", "") == std::optional<std::string>("ISO-8859-1"));
  CHECK(mgspool::decode_mime_parameter(parameters, "format", "") == std::optional<std::string>("flowed"));
  CHECK_FALSE(mgspool::decode_mime_parameter(parameters, "name", "").has_value());
}
