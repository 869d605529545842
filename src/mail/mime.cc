// MIME building for API messages: strategy.
//
// The tree is decided first (see mime.h), then written depth-first straight into the output:
// each entity is its fields, a blank line and its body, and a multipart writes "--boundary"
// before each child and "--boundary--" after the last, the CRLF before each delimiter belonging
// to the delimiter (RFC 2046 5.1.1), so a body's own final line break survives.
//
// The 7bit test and copy for body text are message.cc's (mail/body_internal.h).
#include "mail/mime.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "base/ids.h"
#include "mail/body_internal.h"
#include "mail/header.h"
#include "mail/message.h"
#include "mail/quoted_printable.h"

namespace magnetic::mail {
namespace {

constexpr size_t kMaxLine = 998;         // RFC 5322 2.1.1
constexpr size_t kMaxHtmlLine7bit = 78;  // as build_message: some relays rewrap long lines
constexpr size_t kFoldAt = 78;
constexpr size_t kBase64Line = 76;         // RFC 2045 6.8
constexpr size_t kQpLine = 76;             // RFC 2045 6.7 (5)
constexpr size_t kContinuationChunk = 60;  // RFC 2231 segments, so parameter lines stay short
constexpr char kHex[] = "0123456789ABCDEF";

using internal::append_7bit;
using internal::fits_7bit;

void append_base64(std::string_view data, std::string& out) {
  constexpr size_t kChunk = kBase64Line / 4 * 3;  // 57 bytes make one 76-character line
  unsigned char line[kBase64Line + 1];
  for (size_t i = 0; i < data.size(); i += kChunk) {
    size_t n = std::min(kChunk, data.size() - i);
    int len = EVP_EncodeBlock(line, reinterpret_cast<const unsigned char*>(data.data() + i),
                              static_cast<int>(n));
    if (i > 0) out.append("\r\n");
    out.append(reinterpret_cast<char*>(line), static_cast<size_t>(len));
  }
}

// Binary-safe quoted-printable: CRLF in the data is a hard line break, every other byte that is
// not printable ASCII (and '=', and a '.' or space where it could be misread) is =XX.
void append_qp_binary(std::string_view data, std::string& out) {
  size_t line = 0;
  auto put = [&](std::string_view piece) {
    if (line + piece.size() > kQpLine - 1) {  // room for the '=' of a soft break
      out.append("=\r\n");
      line = 0;
    }
    out.append(piece);
    line += piece.size();
  };
  for (size_t i = 0; i < data.size(); ++i) {
    auto c = static_cast<unsigned char>(data[i]);
    if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') {
      out.append("\r\n");
      line = 0;
      ++i;
      continue;
    }
    bool at_break =
        i + 1 == data.size() || (data[i + 1] == '\r' && i + 2 < data.size() && data[i + 2] == '\n');
    bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_break);
    if (c == '.' && line == 0) literal = false;  // never a lone "." at a line start
    if (literal) {
      char one = static_cast<char>(c);
      put(std::string_view(&one, 1));
    } else {
      char three[3] = {'=', kHex[c >> 4], kHex[c & 15]};
      put(std::string_view(three, 3));
    }
  }
}

bool is_token_char(unsigned char c) {
  return c > 32 && c < 127 &&
         std::string_view("()<>@,;:\\\"/[]?=").find(static_cast<char>(c)) == std::string_view::npos;
}

bool is_media_type(std::string_view type) {
  size_t slash = type.find('/');
  if (slash == 0 || slash == std::string_view::npos || slash + 1 == type.size()) return false;
  for (size_t i = 0; i < type.size(); ++i) {
    if (i != slash && !is_token_char(static_cast<unsigned char>(type[i]))) return false;
  }
  return true;
}

// A field of the form "Name: value; p1; p2", folded between parameters.
void append_with_params(std::string& out, std::string_view name, std::string_view value,
                        const std::vector<std::string>& params) {
  size_t start = out.size();
  out.append(name);
  out.append(": ");
  out.append(value);
  size_t line = out.size() - start;
  for (const std::string& p : params) {
    out.push_back(';');
    if (line + 2 + p.size() > kFoldAt) {
      out.append("\r\n ");
      line = 1;
    } else {
      out.push_back(' ');
      line += 2;
    }
    out.append(p);
    line += p.size();
  }
  out.append("\r\n");
}

// name="value" for printable ASCII, else RFC 2231 name*=UTF-8''... in segments of at most
// kContinuationChunk characters (name*0*=, name*1*=, ...), never splitting a %XX.
void add_file_name_params(std::string_view param, std::string_view value,
                          std::vector<std::string>& params) {
  bool ascii = std::all_of(value.begin(), value.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c <= 0x7e;
  });
  if (ascii && value.size() <= kContinuationChunk) {
    std::string p(param);
    p.append("=\"");
    for (char c : value) {
      if (c == '"' || c == '\\') p.push_back('\\');
      p.push_back(c);
    }
    p.push_back('"');
    params.push_back(std::move(p));
    return;
  }
  std::vector<std::string> segments(1);
  for (unsigned char c : value) {
    std::string piece;
    if (c < 128 && is_token_char(c) && c != '*' && c != '\'' && c != '%') {
      piece.push_back(static_cast<char>(c));
    } else {
      piece = {'%', kHex[c >> 4], kHex[c & 15]};
    }
    if (segments.back().size() + piece.size() > kContinuationChunk) segments.emplace_back();
    segments.back().append(piece);
  }
  if (segments.size() == 1) {
    params.push_back(std::string(param) + "*=UTF-8''" + segments[0]);
    return;
  }
  for (size_t i = 0; i < segments.size(); ++i) {
    params.push_back(std::string(param) + "*" + std::to_string(i) +
                     "*=" + (i == 0 ? "UTF-8''" : "") + segments[i]);
  }
}

std::string new_boundary(const std::vector<std::string_view>& contents) {
  while (true) {
    std::string boundary = "=_" + random_token(15);
    if (std::none_of(contents.begin(), contents.end(), [&](std::string_view c) {
          return c.find(boundary) != std::string_view::npos;
        })) {
      return boundary;
    }
  }
}

class Writer {
 public:
  Writer(const MimeMessage& m, std::string& out) : m_(m), out_(out) {
    contents_.push_back(m.text);
    contents_.push_back(m.html);
    for (const Attachment& a : m.attachments) {
      if (a.encoding == TransferEncoding::k7bit) contents_.push_back(a.data);
    }
  }

  // The top entity: its fields follow the message's.
  void body() {
    std::vector<const Attachment*> inline_parts, other_parts;
    for (const Attachment& a : m_.attachments) {
      (a.inline_disposition && !m_.html.empty() ? inline_parts : other_parts).push_back(&a);
    }
    if (other_parts.empty()) {
      alternatives(inline_parts);
      return;
    }
    std::string boundary = new_boundary(contents_);
    open_multipart("mixed", boundary);
    delimiter(boundary, true);
    alternatives(inline_parts);
    for (const Attachment* a : other_parts) {
      delimiter(boundary);
      attachment(*a);
    }
    close_multipart(boundary);
  }

 private:
  void alternatives(const std::vector<const Attachment*>& inline_parts) {
    bool text = !m_.text.empty(), html = !m_.html.empty();
    if (text && html) {
      std::string boundary = new_boundary(contents_);
      open_multipart("alternative", boundary);
      delimiter(boundary, true);
      text_part("plain", m_.text, kMaxLine);
      delimiter(boundary);
      html_block(inline_parts);
      close_multipart(boundary);
    } else if (html) {
      html_block(inline_parts);
    } else {
      text_part("plain", m_.text, kMaxLine);
    }
  }

  void html_block(const std::vector<const Attachment*>& inline_parts) {
    if (inline_parts.empty()) {
      text_part("html", m_.html, kMaxHtmlLine7bit);
      return;
    }
    std::string boundary = new_boundary(contents_);
    append_with_params(out_, "Content-Type", "multipart/related",
                       {"boundary=\"" + boundary + "\"", "type=\"text/html\""});
    out_.append("\r\n");
    delimiter(boundary, true);
    text_part("html", m_.html, kMaxHtmlLine7bit);
    for (const Attachment* a : inline_parts) {
      delimiter(boundary);
      attachment(*a);
    }
    close_multipart(boundary);
  }

  void text_part(std::string_view subtype, std::string_view body, size_t max_line) {
    out_.append("Content-Type: text/");
    out_.append(subtype);
    out_.append("; charset=utf-8\r\n");
    if (fits_7bit(body, max_line)) {
      out_.append("Content-Transfer-Encoding: 7bit\r\n\r\n");
      append_7bit(body, out_);
    } else {
      out_.append("Content-Transfer-Encoding: quoted-printable\r\n\r\n");
      qp_encode(body, out_);
    }
  }

  void attachment(const Attachment& a) {
    std::string type = a.content_type.empty() ? content_type_for(a.filename) : a.content_type;
    if (!is_media_type(type)) type = "application/octet-stream";
    std::vector<std::string> type_params, disposition_params;
    add_file_name_params("name", a.filename, type_params);
    add_file_name_params("filename", a.filename, disposition_params);
    append_with_params(out_, "Content-Type", type, type_params);
    append_with_params(out_, "Content-Disposition", a.inline_disposition ? "inline" : "attachment",
                       disposition_params);
    if (!a.content_id.empty()) append_structured(out_, "Content-ID", "<" + a.content_id + ">");
    if (!a.description.empty()) append_unstructured(out_, "Content-Description", a.description);
    switch (a.encoding) {
      case TransferEncoding::kBase64:
        out_.append("Content-Transfer-Encoding: base64\r\n\r\n");
        append_base64(a.data, out_);
        break;
      case TransferEncoding::kQuotedPrintable:
        out_.append("Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        append_qp_binary(a.data, out_);
        break;
      case TransferEncoding::k7bit:
        out_.append("Content-Transfer-Encoding: 7bit\r\n\r\n");
        append_7bit(a.data, out_);
        break;
    }
  }

  void open_multipart(std::string_view subtype, const std::string& boundary) {
    out_.append("Content-Type: multipart/");
    out_.append(subtype);
    out_.append("; boundary=\"");
    out_.append(boundary);
    out_.append("\"\r\n\r\n");
  }
  // The first delimiter starts the multipart's body; the others end the part before them.
  void delimiter(const std::string& boundary, bool first = false) {
    if (!first) out_.append("\r\n");
    out_.append("--");
    out_.append(boundary);
    out_.append("\r\n");
  }
  void close_multipart(const std::string& boundary) {
    out_.append("\r\n--");
    out_.append(boundary);
    out_.append("--");
  }

  const MimeMessage& m_;
  std::string& out_;
  std::vector<std::string_view> contents_;
};

}  // namespace

std::string why_not_7bit(std::string_view data) {
  size_t line = 0, number = 1;
  for (size_t i = 0; i < data.size(); ++i) {
    auto c = static_cast<unsigned char>(data[i]);
    if (c >= 0x80) return "byte " + std::to_string(i) + " is not ASCII";
    if (c == 0) return "byte " + std::to_string(i) + " is NUL";
    if (c == '\r') {
      if (i + 1 >= data.size() || data[i + 1] != '\n') {
        return "byte " + std::to_string(i) + " is a CR outside a CRLF line break";
      }
      continue;
    }
    if (c == '\n') {
      line = 0;
      ++number;
    } else if (++line > kMaxLine) {
      return "line " + std::to_string(number) + " is longer than 998 octets";
    }
  }
  return {};
}

Status build_mime(const MimeMessage& m, std::string& out) {
  for (size_t i = 0; i < m.attachments.size(); ++i) {
    const Attachment& a = m.attachments[i];
    if (a.encoding != TransferEncoding::k7bit) continue;
    if (std::string why = why_not_7bit(a.data); !why.empty()) {
      return Status::invalid("attachment " + std::to_string(i + 1) + " (" + a.filename +
                             ") is not 7bit data: " + why);
    }
  }

  if (m.date) {
    out.append("Date: ");
    out.append(format_date(*m.date));
    out.append("\r\n");
  }
  if (m.from) append_mailbox(out, "From", *m.from);
  if (!m.to.empty()) append_mailbox_list(out, "To", m.to);
  if (!m.cc.empty()) append_mailbox_list(out, "Cc", m.cc);
  if (!m.reply_to.empty()) append_mailbox_list(out, "Reply-To", m.reply_to);
  append_unstructured(out, "Subject", m.subject);
  if (!m.message_id.empty()) append_structured(out, "Message-ID", m.message_id);
  out.append("MIME-Version: 1.0\r\n");
  for (const auto& [name, value] : m.headers) append_structured(out, name, value);

  Writer(m, out).body();
  if (!out.ends_with("\r\n")) out.append("\r\n");
  return Status::ok();
}

std::string content_type_for(std::string_view filename) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 31> kTypes = {{
      {"csv", "text/csv"},
      {"doc", "application/msword"},
      {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"gif", "image/gif"},
      {"gz", "application/gzip"},
      {"htm", "text/html"},
      {"html", "text/html"},
      {"ics", "text/calendar"},
      {"jpeg", "image/jpeg"},
      {"jpg", "image/jpeg"},
      {"json", "application/json"},
      {"md", "text/markdown"},
      {"mp3", "audio/mpeg"},
      {"mp4", "video/mp4"},
      {"odt", "application/vnd.oasis.opendocument.text"},
      {"pdf", "application/pdf"},
      {"png", "image/png"},
      {"ppt", "application/vnd.ms-powerpoint"},
      {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
      {"rtf", "application/rtf"},
      {"svg", "image/svg+xml"},
      {"tar", "application/x-tar"},
      {"tif", "image/tiff"},
      {"tiff", "image/tiff"},
      {"txt", "text/plain"},
      {"wav", "audio/wav"},
      {"webp", "image/webp"},
      {"xls", "application/vnd.ms-excel"},
      {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"xml", "application/xml"},
      {"zip", "application/zip"},
  }};
  size_t dot = filename.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext(filename.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [e, type] : kTypes) {
    if (e == ext) return std::string(type);
  }
  return "application/octet-stream";
}

}  // namespace magnetic::mail
