#include "mail/message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "mail/header.h"
#include "test_support.h"

namespace magnetic::mail {
namespace {

using ::magnetic::testing::crlf_lines;

using std::chrono::seconds;
using std::chrono::system_clock;

// 2026-12-03 22:24:09 UTC, a Thursday.
const system_clock::time_point kWhen{seconds(1796336649)};

MessageSpec base_spec() {
  MessageSpec spec;
  spec.from = Mailbox{"Example Sender", "news", "example.com"};
  spec.to = Mailbox{"", "alice", "example.net"};
  spec.subject = "Hello";
  spec.message_id = "<01jexample0000000000000000@example.com>";
  spec.date = kWhen;
  return spec;
}

std::string build(const MessageSpec& spec) {
  std::string out;
  build_message(spec, out);
  return out;
}

std::string boundary_of(const std::string& message) {
  const std::string key = "boundary=\"";
  size_t at = message.find(key);
  if (at == std::string::npos) return "";
  size_t end = message.find('"', at + key.size());
  return message.substr(at + key.size(), end - at - key.size());
}

// CRLF everywhere, no bare CR or LF, no line over 998 octets.
void expect_wire_safe(const std::string& message) {
  size_t longest = 0;
  size_t line = 0;
  for (size_t i = 0; i < message.size(); ++i) {
    char c = message[i];
    if (c == '\r') {
      ASSERT_TRUE(i + 1 < message.size() && message[i + 1] == '\n') << "bare CR at " << i;
      longest = std::max(longest, line);
      line = 0;
      ++i;
    } else if (c == '\n') {
      FAIL() << "bare LF at " << i;
    } else {
      ++line;
    }
  }
  EXPECT_LE(std::max(longest, line), 998u);
  ASSERT_GE(message.size(), 2u);
  EXPECT_EQ(message.substr(message.size() - 2), "\r\n");
}

// Parses message with Python's email package (policy.default) and returns what it saw.
constexpr const char* kParser = R"PY(
import email, email.policy, json, sys
with open(sys.argv[1], 'rb') as f:
    msg = email.message_from_bytes(f.read(), policy=email.policy.default)
out = {'defects': [], 'headers': [], 'parts': [], 'multipart': None}
for name, value in msg.items():
    out['headers'].append([name, str(value)])
    out['defects'] += [name + ': ' + repr(d) for d in value.defects]
    if name.lower() in ('from', 'to'):
        a = value.addresses[0]
        out[name.lower()] = [a.display_name, a.addr_spec]
for part in msg.walk():
    out['defects'] += [repr(d) for d in part.defects]
    if part.is_multipart():
        out['multipart'] = part.get_content_type()
        continue
    out['parts'].append({'type': part.get_content_type(),
                         'cte': str(part['Content-Transfer-Encoding']),
                         'charset': part.get_content_charset(),
                         'content': part.get_content()})
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

std::vector<std::string> header_names(const nlohmann::json& parsed) {
  std::vector<std::string> names;
  for (const auto& h : parsed["headers"]) names.push_back(h[0]);
  return names;
}

TEST(FormatDate, Rfc5322InUtc) {
  EXPECT_EQ(format_date(kWhen), "Thu, 03 Dec 2026 22:24:09 +0000");
  EXPECT_EQ(format_date(system_clock::time_point{}), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(format_date(system_clock::time_point{seconds(951782400)}),
            "Tue, 29 Feb 2000 00:00:00 +0000");
  // Sub-second parts are cut, not rounded.
  EXPECT_EQ(format_date(kWhen + std::chrono::milliseconds(999)), "Thu, 03 Dec 2026 22:24:09 +0000");
}

TEST(MakeMessageId, UniqueWithDomain) {
  std::string a = make_message_id("example.com");
  std::string b = make_message_id("example.com");
  EXPECT_NE(a, b);
  ASSERT_EQ(a.size(), 1 + 26 + 1 + 11 + 1);
  EXPECT_EQ(a.front(), '<');
  EXPECT_EQ(a.substr(27), "@example.com>");
}

TEST(BuildMessage, MultipartAlternativeExactBytes) {
  MessageSpec spec = base_spec();
  spec.text = "Hi Alice,\nyour order shipped.\n";
  spec.html = "<p>Hi Alice,</p>\n<p>your order shipped.</p>";
  spec.extra_headers = {{"List-Unsubscribe", "<https://example.com/u/abc>"},
                        {"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"}};
  std::string message = build(spec);
  std::string b = boundary_of(message);
  ASSERT_EQ(b.size(), 2u + 24u);
  EXPECT_EQ(b.substr(0, 2), "=_");
  EXPECT_EQ(message,
            "Date: Thu, 03 Dec 2026 22:24:09 +0000\r\n"
            "From: Example Sender <news@example.com>\r\n"
            "To: alice@example.net\r\n"
            "Subject: Hello\r\n"
            "Message-ID: <01jexample0000000000000000@example.com>\r\n"
            "MIME-Version: 1.0\r\n"
            "List-Unsubscribe: <https://example.com/u/abc>\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            "Content-Type: multipart/alternative; boundary=\"" +
                b +
                "\"\r\n"
                "\r\n"
                "--" +
                b +
                "\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 7bit\r\n"
                "\r\n"
                "Hi Alice,\r\nyour order shipped.\r\n"
                "\r\n--" +
                b +
                "\r\n"
                "Content-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 7bit\r\n"
                "\r\n"
                "<p>Hi Alice,</p>\r\n<p>your order shipped.</p>"
                "\r\n--" +
                b + "--\r\n");
  expect_wire_safe(message);

  PARSE_WITH_PYTHON(parsed, message);
  EXPECT_TRUE(parsed["defects"].empty()) << parsed["defects"].dump();
  EXPECT_EQ(parsed["multipart"], "multipart/alternative");
  ASSERT_EQ(parsed["parts"].size(), 2u);
  EXPECT_EQ(parsed["parts"][0]["type"], "text/plain");
  EXPECT_EQ(parsed["parts"][0]["content"], crlf_lines(spec.text));
  EXPECT_EQ(parsed["parts"][1]["type"], "text/html");
  EXPECT_EQ(parsed["parts"][1]["content"], crlf_lines(spec.html));
  EXPECT_EQ(parsed["from"], nlohmann::json::array({"Example Sender", "news@example.com"}));
  EXPECT_EQ(parsed["to"], nlohmann::json::array({"", "alice@example.net"}));
}

TEST(BuildMessage, NonAsciiGoesQuotedPrintableAndDecodesExactly) {
  MessageSpec spec = base_spec();
  spec.from.display_name = "J\xc3\xb6rg M\xc3\xbcller, Vertrieb";
  spec.to.display_name = "\xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e";
  spec.subject =
      "Ihre Bestellung \xe2\x80\x93 Gr\xc3\xbc\xc3\x9f"
      "e aus K\xc3\xb6ln! "
      "\xf0\x9f\x98\x8a Und ein sehr langer Betreff, der gefaltet werden muss, "
      "weil er nicht in eine Zeile passt";
  spec.text =
      "Sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9f"
      "e,\n.\n..leading dots\nend with space \n";
  spec.html = "<html><body><p>" + std::string(300, 'w') + " \xc3\xa9t\xc3\xa9</p></body></html>";
  std::string message = build(spec);
  expect_wire_safe(message);
  EXPECT_NE(message.find("Content-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: quoted-printable\r\n"),
            std::string::npos);
  EXPECT_NE(message.find("Content-Type: text/html; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: quoted-printable\r\n"),
            std::string::npos);

  PARSE_WITH_PYTHON(parsed, message);
  EXPECT_TRUE(parsed["defects"].empty()) << parsed["defects"].dump();
  ASSERT_EQ(parsed["parts"].size(), 2u);
  EXPECT_EQ(parsed["parts"][0]["content"], crlf_lines(spec.text));
  EXPECT_EQ(parsed["parts"][0]["cte"], "quoted-printable");
  EXPECT_EQ(parsed["parts"][0]["charset"], "utf-8");
  EXPECT_EQ(parsed["parts"][1]["content"], spec.html);
  EXPECT_EQ(parsed["from"], nlohmann::json::array({spec.from.display_name, "news@example.com"}));
  EXPECT_EQ(parsed["to"], nlohmann::json::array({spec.to.display_name, "alice@example.net"}));
  bool saw_subject = false;
  for (const auto& h : parsed["headers"]) {
    if (h[0] == "Subject") {
      EXPECT_EQ(h[1], spec.subject);
      saw_subject = true;
    }
  }
  EXPECT_TRUE(saw_subject);
}

TEST(BuildMessage, crlf_in_subject_cannot_add_header) {
  MessageSpec spec = base_spec();
  spec.subject = "Hi\r\nBcc: victim@example.com\r\n\r\nfake body";
  spec.from.display_name = "Sender\r\nBcc: victim2@example.com";
  spec.to.display_name = "R\xc3\xa9\nX-Injected: yes";
  spec.extra_headers = {{"X-Campaign", "spring\r\nBcc: victim3@example.com"}};
  spec.text = "body";
  std::string message = build(spec);
  expect_wire_safe(message);
  EXPECT_EQ(message.substr(0, message.find("\r\n\r\n") + 4),
            "Date: Thu, 03 Dec 2026 22:24:09 +0000\r\n"
            "From: \"Sender Bcc: victim2@example.com\" <news@example.com>\r\n"
            "To: =?UTF-8?B?UsOpIFgtSW5qZWN0ZWQ6?= yes <alice@example.net>\r\n"
            "Subject: Hi Bcc: victim@example.com fake body\r\n"
            "Message-ID: <01jexample0000000000000000@example.com>\r\n"
            "MIME-Version: 1.0\r\n"
            "X-Campaign: spring Bcc: victim3@example.com\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n");

  PARSE_WITH_PYTHON(parsed, message);
  EXPECT_TRUE(parsed["defects"].empty()) << parsed["defects"].dump();
  EXPECT_EQ(header_names(parsed),
            (std::vector<std::string>{"Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
                                      "X-Campaign", "Content-Type", "Content-Transfer-Encoding"}));
  EXPECT_EQ(parsed["headers"][3][1], "Hi Bcc: victim@example.com fake body");
  EXPECT_EQ(parsed["to"],
            nlohmann::json::array({"R\xc3\xa9 X-Injected: yes", "alice@example.net"}));
  EXPECT_EQ(parsed["from"],
            nlohmann::json::array({"Sender Bcc: victim2@example.com", "news@example.com"}));
  ASSERT_EQ(parsed["parts"].size(), 1u);
  EXPECT_EQ(parsed["parts"][0]["content"], "body\r\n");
}

TEST(BuildMessage, SinglePartTextOrHtml) {
  MessageSpec spec = base_spec();
  spec.text = "only text";
  std::string message = build(spec);
  EXPECT_EQ(boundary_of(message), "");
  EXPECT_EQ(message.substr(message.find("Content-Type")),
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\nonly text\r\n");

  spec.text.clear();
  spec.html = "<b>only html</b>\n";
  message = build(spec);
  EXPECT_EQ(message.substr(message.find("Content-Type")),
            "Content-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n<b>only html</b>\r\n");
  PARSE_WITH_PYTHON(parsed, message);
  EXPECT_TRUE(parsed["defects"].empty()) << parsed["defects"].dump();
  EXPECT_EQ(parsed["multipart"], nullptr);
  ASSERT_EQ(parsed["parts"].size(), 1u);
  EXPECT_EQ(parsed["parts"][0]["type"], "text/html");
  EXPECT_EQ(parsed["parts"][0]["content"], "<b>only html</b>\r\n");
}

TEST(BuildMessage, AppendsToExistingBuffer) {
  MessageSpec spec = base_spec();
  spec.text = "x";
  std::string out = "PREFIX";
  build_message(spec, out);
  EXPECT_EQ(out.substr(0, 12), "PREFIXDate: ");
  EXPECT_EQ(out.substr(6), build(spec));
}

TEST(BuildMessage, TransferEncodingChoice) {
  MessageSpec spec = base_spec();
  auto cte_of = [&](const std::string& text, const std::string& html) {
    spec.text = text;
    spec.html = html;
    std::string m = build(spec);
    std::string key = "Content-Transfer-Encoding: ";
    std::string result;
    for (size_t at = m.find(key); at != std::string::npos; at = m.find(key, at + 1)) {
      if (!result.empty()) result += ",";
      result += m.substr(at + key.size(), m.find("\r\n", at) - at - key.size());
    }
    return result;
  };
  EXPECT_EQ(cte_of(std::string(998, 'a'), ""), "7bit");
  EXPECT_EQ(cte_of(std::string(999, 'a'), ""), "quoted-printable");
  EXPECT_EQ(cte_of("bare\rcr", ""), "quoted-printable");
  EXPECT_EQ(cte_of(std::string("nul\0", 4), ""), "quoted-printable");
  EXPECT_EQ(cte_of("caf\xc3\xa9", ""), "quoted-printable");
  EXPECT_EQ(cte_of("crlf\r\nand lf\n", ""), "7bit");
  EXPECT_EQ(cte_of("t", std::string(78, 'h')), "7bit,7bit");
  EXPECT_EQ(cte_of("t", std::string(79, 'h')), "7bit,quoted-printable");
}

TEST(BuildMessage, huge_inputs_keep_lines_within_998) {
  MessageSpec spec = base_spec();
  std::string line(5000, 'L');
  spec.subject = std::string(3000, 's') + " \xc3\xa9 " + std::string(2000, 't');
  spec.from.display_name = std::string(1500, 'n');
  for (int i = 0; i < 200; ++i) spec.text += line + "\n";
  spec.html = "<div>" + std::string(200000, 'h') + "</div>";
  spec.extra_headers = {{"X-Long", std::string(5000, 'v')}};
  std::string message = build(spec);
  expect_wire_safe(message);

  PARSE_WITH_PYTHON(parsed, message);
  ASSERT_EQ(parsed["parts"].size(), 2u);
  EXPECT_EQ(parsed["parts"][0]["content"], crlf_lines(spec.text));
  EXPECT_EQ(parsed["parts"][1]["content"], spec.html);
  EXPECT_EQ(parsed["headers"][3][1], spec.subject);
  // The 1500-octet name cannot stay one word on a line, so it becomes 24 encoded-words.
  // RFC 2047 6.2 says readers drop the space between adjacent encoded-words (decode_words does);
  // Python 3.11 keeps it inside a phrase, so its reading has a space at each word boundary.
  std::string name = parsed["from"][0];
  EXPECT_EQ(std::count(name.begin(), name.end(), ' '), 23);
  name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
  EXPECT_EQ(name, spec.from.display_name);
  size_t from = message.find("\r\nFrom: ") + 8;
  size_t from_end = message.find("\r\nTo: ");
  std::string from_value = message.substr(from, from_end - from);
  EXPECT_EQ(decode_words(from_value), spec.from.display_name + " <news@example.com>");
}

TEST(BuildMessage, BoundaryNeverInParts) {
  MessageSpec spec = base_spec();
  spec.text = "--=_ looks like a boundary start\n--";
  spec.html = "<p>=_</p>";
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    std::string message = build(spec);
    std::string b = boundary_of(message);
    EXPECT_EQ(spec.text.find(b), std::string::npos);
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), 50u);  // random per message
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

TEST(BuildMessage, ThroughputOnOneCore) {
  // A typical 1 KB campaign message: text and HTML, one non-ASCII subject, List-Unsubscribe.
  MessageSpec spec = base_spec();
  spec.from.display_name = "Example Store";
  spec.to.display_name = "Alice Example";
  spec.subject = "Your weekly picks \xe2\x80\x93 20% off";
  spec.message_id = make_message_id("example.com");
  spec.extra_headers = {{"List-Unsubscribe", "<https://example.com/u/0123456789abcdef>"}};
  for (int i = 0; i < 6; ++i) spec.text += "This week we picked these products for you. Enjoy!\n";
  for (int i = 0; i < 6; ++i) spec.html += "<p>This week we picked these for you. Enjoy!</p>\n";

  constexpr int kMessages = 100'000;
  std::string out;
  auto start = std::chrono::steady_clock::now();
  size_t bytes = 0;
  for (int i = 0; i < kMessages; ++i) {
    out.clear();
    build_message(spec, out);
    bytes += out.size();
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double rate = kMessages / elapsed;
  std::cout << "build_message: " << static_cast<long>(rate) << " messages/s on one core ("
            << bytes / kMessages << " bytes each)\n";
  // 100,000s per second across 2 cores needs at least 50,000 per core with room for signing.
  if (!kSanitized) {
    EXPECT_GT(rate, 50'000.0);
  }
}

}  // namespace
}  // namespace magnetic::mail
