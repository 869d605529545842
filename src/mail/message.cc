// Message building: fields, then one or two body parts, appended straight into the caller's
// buffer.
//
// Transfer encoding per part: 7bit when the text is ASCII without NUL, without a CR that does
// not start a CRLF, and with every line within the limit (998 octets for text/plain, 78 for
// HTML: long HTML lines are common and some relays rewrap them, which QP's soft breaks survive);
// quoted-printable otherwise. A 7bit part is copied with LF made CRLF and nothing else changed.
// The multipart boundary is "=_" and 120 random bits: "=_" never occurs in quoted-printable
// output ('=' is always followed by a hex digit or a line break there), and a 7bit part is the
// input itself, so checking the inputs for the boundary is enough; a hit draws a new one.
#include "mail/message.h"

#include "base/ids.h"
#include "mail/body_internal.h"
#include "mail/header.h"
#include "mail/quoted_printable.h"

namespace magnetic::mail {
namespace {

constexpr size_t kMaxTextLine7bit = 998;  // RFC 5322 2.1.1
constexpr size_t kMaxHtmlLine7bit = 78;

using internal::append_7bit;
using internal::fits_7bit;

bool ends_with_crlf(const std::string& out) {
  return out.size() >= 2 && out[out.size() - 2] == '\r' && out.back() == '\n';
}

// Content-Type and Content-Transfer-Encoding, the blank line, then the body (no final CRLF).
void append_part(std::string_view subtype, std::string_view body, size_t max_line_7bit,
                 std::string& out) {
  out.append("Content-Type: text/");
  out.append(subtype);
  out.append("; charset=utf-8\r\n");
  if (fits_7bit(body, max_line_7bit)) {
    out.append("Content-Transfer-Encoding: 7bit\r\n\r\n");
    append_7bit(body, out);
  } else {
    out.append("Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    qp_encode(body, out);
  }
}

std::string new_boundary(const MessageSpec& spec) {
  while (true) {
    std::string boundary = "=_" + random_token(15);
    if (spec.text.find(boundary) == std::string::npos &&
        spec.html.find(boundary) == std::string::npos) {
      return boundary;
    }
  }
}

void append_two_digits(unsigned value, std::string& out) {
  out.push_back(static_cast<char>('0' + value / 10 % 10));
  out.push_back(static_cast<char>('0' + value % 10));
}

void append_date(std::chrono::system_clock::time_point when, std::string& out) {
  using namespace std::chrono;
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto secs = floor<seconds>(when);
  auto day = floor<days>(secs);
  year_month_day ymd{day};
  weekday wd{day};
  hh_mm_ss hms{secs - day};

  out.append(kDays[wd.c_encoding()]);
  out.append(", ");
  append_two_digits(static_cast<unsigned>(ymd.day()), out);
  out.push_back(' ');
  out.append(kMonths[static_cast<unsigned>(ymd.month()) - 1]);
  out.push_back(' ');
  int year = static_cast<int>(ymd.year());
  append_two_digits(static_cast<unsigned>(year / 100), out);
  append_two_digits(static_cast<unsigned>(year % 100), out);
  out.push_back(' ');
  append_two_digits(static_cast<unsigned>(hms.hours().count()), out);
  out.push_back(':');
  append_two_digits(static_cast<unsigned>(hms.minutes().count()), out);
  out.push_back(':');
  append_two_digits(static_cast<unsigned>(hms.seconds().count()), out);
  out.append(" +0000");
}

}  // namespace

void build_message(const MessageSpec& spec, std::string& out) {
  out.reserve(out.size() + 600 + spec.text.size() * 11 / 10 + spec.html.size() * 11 / 10);

  out.append("Date: ");
  append_date(spec.date, out);
  out.append("\r\n");
  append_mailbox(out, "From", spec.from);
  append_mailbox(out, "To", spec.to);
  append_unstructured(out, "Subject", spec.subject);
  append_structured(out, "Message-ID", spec.message_id);
  out.append("MIME-Version: 1.0\r\n");
  for (const auto& [name, value] : spec.extra_headers) append_structured(out, name, value);

  if (!spec.text.empty() && !spec.html.empty()) {
    std::string boundary = new_boundary(spec);
    out.append("Content-Type: multipart/alternative; boundary=\"");
    out.append(boundary);
    out.append("\"\r\n\r\n--");
    out.append(boundary);
    out.append("\r\n");
    append_part("plain", spec.text, kMaxTextLine7bit, out);
    out.append("\r\n--");
    out.append(boundary);
    out.append("\r\n");
    append_part("html", spec.html, kMaxHtmlLine7bit, out);
    out.append("\r\n--");
    out.append(boundary);
    out.append("--\r\n");
    return;
  }

  // One part (text when both are empty): the message must end with a line break, which then
  // belongs to the body.
  if (spec.html.empty()) {
    append_part("plain", spec.text, kMaxTextLine7bit, out);
  } else {
    append_part("html", spec.html, kMaxHtmlLine7bit, out);
  }
  if (!ends_with_crlf(out)) out.append("\r\n");
}

std::string make_message_id(std::string_view domain) {
  std::string id = "<";
  id.append(new_id());
  id.push_back('@');
  id.append(domain);
  id.push_back('>');
  return id;
}

std::string format_date(std::chrono::system_clock::time_point when) {
  std::string out;
  append_date(when, out);
  return out;
}

}  // namespace magnetic::mail
