#include "mail/mime.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "mail/header.h"
#include "test_support.h"

namespace magnetic::mail {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point kWhen{seconds(1796336649)};  // Thu, 03 Dec 2026 22:24:09 UTC

MimeMessage base() {
  MimeMessage m;
  m.from = Mailbox{"Example Sender", "news", "example.com"};
  m.to = {Mailbox{"", "alice", "example.net"}};
  m.subject = "Hello";
  m.message_id = "<01jexample0000000000000000@example.com>";
  m.date = kWhen;
  return m;
}

std::string build(const MimeMessage& m) {
  std::string out;
  Status s = build_mime(m, out);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return out;
}

// Every boundary="..." in order of appearance.
std::vector<std::string> boundaries(const std::string& message) {
  std::vector<std::string> out;
  std::regex re("boundary=\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(message.begin(), message.end(), re);
       it != std::sregex_iterator(); ++it) {
    out.push_back((*it)[1]);
  }
  return out;
}

// Python's email package (policy.default): each leaf part's type, disposition, filename,
// Content-ID and decoded bytes (base64), plus every defect it noticed.
constexpr const char* kParser = R"PY(
import base64, email, email.policy, json, sys
with open(sys.argv[1], 'rb') as f:
    msg = email.message_from_bytes(f.read(), policy=email.policy.default)
out = {'defects': [], 'structure': [], 'parts': [], 'headers': {}}
for name, value in msg.items():
    out['headers'][name] = str(value)
    out['defects'] += [name + ': ' + repr(d) for d in value.defects]
for part in msg.walk():
    out['defects'] += [repr(d) for d in part.defects]
    out['structure'].append(part.get_content_type())
    if part.is_multipart():
        continue
    out['parts'].append({'type': part.get_content_type(),
                         'disposition': part.get_content_disposition(),
                         'filename': part.get_filename(),
                         'cid': part['Content-ID'] and str(part['Content-ID']),
                         'description': part['Content-Description'] and
                                        str(part['Content-Description']),
                         'bytes': base64.b64encode(part.get_payload(decode=True)).decode()})
print(json.dumps(out))
)PY";

std::optional<nlohmann::json> python_parse(const std::string& message) {
  if (!std::filesystem::exists("/usr/bin/python3")) return std::nullopt;
  magnetic::testing::TempDir dir;
  auto eml = dir.path() / "message.eml";
  auto script = dir.path() / "parse.py";
  std::ofstream(eml, std::ios::binary) << message;
  std::ofstream(script) << kParser;
  std::string command = "/usr/bin/python3 " + script.string() + " " + eml.string();
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::string output;
  char buffer[65536];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  int rc = ::pclose(pipe);
  EXPECT_EQ(rc, 0) << output;
  return nlohmann::json::parse(output);
}

#define PARSE_WITH_PYTHON(var, message)                                \
  auto var##_opt = python_parse(message);                              \
  if (!var##_opt) GTEST_SKIP() << "/usr/bin/python3 is not available"; \
  const nlohmann::json& var = *var##_opt

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  s += "\r\n.line\n\r tail \r\n";
  return s;
}

std::string b64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

TEST(MailboxList, FoldsBetweenMailboxesAndEncodesPhrases) {
  std::vector<Mailbox> list = {
      {"", "a", "example.com"},
      {"Bob Example", "bob", "example.com"},
      {"Last, First", "first.last", "example.com"},
      {"J\xc3\xb6rg, M\xc3\xbcller", "joerg", "example.de"},
      {"", "someone.with.a.long.address", "subdomain.example.org"},
  };
  EXPECT_EQ(format_mailbox_list("To", list),
            "To: a@example.com, Bob Example <bob@example.com>, \"Last, First\"\r\n"
            " <first.last@example.com>, =?UTF-8?B?SsO2cmcsIE3DvGxsZXI=?=\r\n"
            " <joerg@example.de>, someone.with.a.long.address@subdomain.example.org\r\n");
  EXPECT_EQ(format_mailbox_list("Cc", {}), "Cc:\r\n");
  // A line break in a display name cannot end the field.
  EXPECT_EQ(format_mailbox_list("To", {{"Evil\r\nBcc: x@example.com", "e", "example.com"}}),
            "To: \"Evil Bcc: x@example.com\" <e@example.com>\r\n");
}

TEST(BuildMime, TextOnlyWithListsAndHeadersExactBytes) {
  MimeMessage m = base();
  m.to.push_back(Mailbox{"Bob", "bob", "example.net"});
  m.cc = {Mailbox{"", "carol", "example.net"}};
  m.reply_to = {Mailbox{"Support", "help", "example.com"}};
  m.headers = {{"X-Campaign", "spring-2026"}, {"List-Unsubscribe", "<mailto:u@example.com>"}};
  m.text = "Hi,\nsee you.\n";
  EXPECT_EQ(build(m),
            "Date: Thu, 03 Dec 2026 22:24:09 +0000\r\n"
            "From: Example Sender <news@example.com>\r\n"
            "To: alice@example.net, Bob <bob@example.net>\r\n"
            "Cc: carol@example.net\r\n"
            "Reply-To: Support <help@example.com>\r\n"
            "Subject: Hello\r\n"
            "Message-ID: <01jexample0000000000000000@example.com>\r\n"
            "MIME-Version: 1.0\r\n"
            "X-Campaign: spring-2026\r\n"
            "List-Unsubscribe: <mailto:u@example.com>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n"
            "\r\n"
            "Hi,\r\nsee you.\r\n");
}

TEST(BuildMime, PreviewWithoutFromDateOrId) {
  MimeMessage m;
  m.subject = "Preview";
  m.html = "<b>x</b>";
  EXPECT_EQ(build(m),
            "Subject: Preview\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n"
            "\r\n"
            "<b>x</b>\r\n");
}

TEST(BuildMime, MixedAlternativeAndAttachmentExactBytes) {
  MimeMessage m = base();
  m.text = "Text";
  m.html = "<p>Html</p>";
  Attachment a;
  a.filename = "report.pdf";
  a.data = "%PDF-1.4 binary\x01\x02";
  m.attachments.push_back(a);
  std::string message = build(m);
  std::vector<std::string> b = boundaries(message);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_NE(b[0], b[1]);
  EXPECT_EQ(message,
            "Date: Thu, 03 Dec 2026 22:24:09 +0000\r\n"
            "From: Example Sender <news@example.com>\r\n"
            "To: alice@example.net\r\n"
            "Subject: Hello\r\n"
            "Message-ID: <01jexample0000000000000000@example.com>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"" +
                b[0] +
                "\"\r\n"
                "\r\n"
                "--" +
                b[0] +
                "\r\n"
                "Content-Type: multipart/alternative; boundary=\"" +
                b[1] +
                "\"\r\n"
                "\r\n"
                "--" +
                b[1] +
                "\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 7bit\r\n"
                "\r\n"
                "Text\r\n"
                "--" +
                b[1] +
                "\r\n"
                "Content-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 7bit\r\n"
                "\r\n"
                "<p>Html</p>\r\n"
                "--" +
                b[1] +
                "--\r\n"
                "--" +
                b[0] +
                "\r\n"
                "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
                "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
                "Content-Transfer-Encoding: base64\r\n"
                "\r\n"
                "JVBERi0xLjQgYmluYXJ5AQI=\r\n"
                "--" +
                b[0] + "--\r\n");
}

TEST(BuildMime, AttachmentsDecodeBackToTheirBytes) {
  MimeMessage m = base();
  m.text = "See the files.";
  Attachment big;
  big.filename = "all.bin";
  big.data = all_bytes() + std::string(5000, 'x') + all_bytes();
  Attachment qp = big;
  qp.filename = "all-qp.bin";
  qp.encoding = TransferEncoding::kQuotedPrintable;
  Attachment seven;
  seven.filename = "notes.txt";
  seven.encoding = TransferEncoding::k7bit;
  seven.data = "line one\r\nline two\r\n";
  Attachment named;
  named.filename = "Pr\xc3\xa4sentation \xe2\x80\x94 " + std::string(80, 'n') + ".pdf";
  named.description = "Zusammenfassung f\xc3\xbcr alle";
  named.data = "pdf";
  m.attachments = {big, qp, seven, named};
  std::string message = build(m);

  PARSE_WITH_PYTHON(parsed, message);
  EXPECT_TRUE(parsed["defects"].empty()) << parsed["defects"].dump();
  EXPECT_EQ(parsed["structure"],
            nlohmann::json::array({"multipart/mixed", "text/plain", "application/octet-stream",
                                   "application/octet-stream", "text/plain", "application/pdf"}));
  ASSERT_EQ(parsed["parts"].size(), 5u);
  EXPECT_EQ(parsed["parts"][1]["bytes"], b64(big.data));
  EXPECT_EQ(parsed["parts"][2]["bytes"], b64(qp.data));
  EXPECT_EQ(parsed["parts"][3]["bytes"], b64(seven.data));
  EXPECT_EQ(parsed["parts"][4]["filename"], named.filename);
  EXPECT_EQ(parsed["parts"][4]["description"], named.description);
  EXPECT_EQ(parsed["parts"][4]["disposition"], "attachment");
  // No line over 998 octets and no bare CR or LF anywhere.
  size_t line = 0;
  for (size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\r') {
      ASSERT_EQ(message[i + 1], '\n');
      line = 0;
      ++i;
    } else {
      ASSERT_NE(message[i], '\n');
      ASSERT_LE(++line, 998u);
    }
  }
}

TEST(BuildMime, NonAsciiFileNameUsesRfc2231Continuations) {
  MimeMessage m = base();
  Attachment a;
  a.filename = "\xc3\xa4" + std::string(70, 'b') + ".txt";
  a.data = "x";
  m.attachments = {a};
  std::string message = build(m);
  std::string first = "%C3%A4" + std::string(54, 'b');
  std::string second = std::string(16, 'b') + ".txt";
  EXPECT_NE(message.find("Content-Type: text/plain;\r\n name*0*=UTF-8''" + first +
                         ";\r\n name*1*=" + second +
                         "\r\nContent-Disposition: attachment;\r\n filename*0*=UTF-8''" + first +
                         ";\r\n filename*1*=" + second + "\r\n"),
            std::string::npos)
      << message;
}

TEST(BuildMime, InlineImagesGoInMultipartRelated) {
  MimeMessage m = base();
  m.text = "plain";
  m.html = "<img src=\"cid:logo\">";
  Attachment logo;
  logo.filename = "logo.png";
  logo.inline_disposition = true;
  logo.content_id = "logo";
  logo.data = "\x89PNG";
  Attachment doc;
  doc.filename = "terms.txt";
  doc.data = "terms";
  m.attachments = {logo, doc};
  std::string message = build(m);

  PARSE_WITH_PYTHON(parsed, message);
  EXPECT_TRUE(parsed["defects"].empty()) << parsed["defects"].dump();
  EXPECT_EQ(parsed["structure"],
            nlohmann::json::array({"multipart/mixed", "multipart/alternative", "text/plain",
                                   "multipart/related", "text/html", "image/png", "text/plain"}));
  EXPECT_EQ(parsed["parts"][2]["cid"], "<logo>");
  EXPECT_EQ(parsed["parts"][2]["disposition"], "inline");
  EXPECT_EQ(parsed["parts"][2]["bytes"], b64(logo.data));
  EXPECT_EQ(parsed["parts"][3]["disposition"], "attachment");
}

TEST(BuildMime, InlineWithoutHtmlIsAnAttachmentPart) {
  MimeMessage m = base();
  m.text = "plain";
  Attachment logo;
  logo.filename = "logo.png";
  logo.inline_disposition = true;
  logo.data = "png";
  m.attachments = {logo};
  std::string message = build(m);
  EXPECT_NE(message.find("Content-Type: multipart/mixed;"), std::string::npos);
  EXPECT_EQ(message.find("multipart/related"), std::string::npos);
  EXPECT_NE(message.find("Content-Disposition: inline; filename=\"logo.png\"\r\n"),
            std::string::npos);
}

TEST(BuildMime, Refuses8bitDataAs7bit) {
  MimeMessage m = base();
  Attachment a;
  a.filename = "x.txt";
  a.encoding = TransferEncoding::k7bit;
  a.data = "caf\xc3\xa9";
  m.attachments = {a};
  std::string out;
  Status s = build_mime(m, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "attachment 1 (x.txt) is not 7bit data: byte 3 is not ASCII");
  EXPECT_EQ(why_not_7bit("a\rb"), "byte 1 is a CR outside a CRLF line break");
  EXPECT_EQ(why_not_7bit(std::string(999, 'a')), "line 1 is longer than 998 octets");
  EXPECT_EQ(why_not_7bit(std::string("a\0", 2)), "byte 1 is NUL");
  EXPECT_EQ(why_not_7bit("ok\r\nfine\n"), "");
}

TEST(ContentTypeFor, ByExtension) {
  EXPECT_EQ(content_type_for("Report.PDF"), "application/pdf");
  EXPECT_EQ(content_type_for("a.tar.gz"), "application/gzip");
  EXPECT_EQ(content_type_for("photo.jpeg"), "image/jpeg");
  EXPECT_EQ(content_type_for("archive.zip"), "application/zip");
  EXPECT_EQ(content_type_for("noext"), "application/octet-stream");
  EXPECT_EQ(content_type_for("x.unknown"), "application/octet-stream");
}

}  // namespace
}  // namespace magnetic::mail
