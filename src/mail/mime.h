// Building a whole MIME message as an API client describes it: any of a text and an HTML body,
// attachments (inline, referenced by Content-ID from the HTML, or not), To, Cc and Reply-To lists
// and the caller's own header fields.
//
// Structure, from the inside out:
//   text only: text/plain;  HTML only: text/html;  both: multipart/alternative (text first);
//   inline attachments beside an HTML body: multipart/related around the HTML and them;
//   other attachments (and inline ones without an HTML body): multipart/mixed around it all.
// Text parts are 7bit when ASCII with short lines, quoted-printable otherwise (as build_message
// does). Attachments are base64 by default; their quoted-printable form here is binary-safe
// (a CR or LF that is not part of a CRLF is written =0D / =0A), so every encoding decodes back
// to the exact input bytes. Boundaries are "=_" and 120 random bits, which neither
// quoted-printable nor base64 output can contain; 7bit content is checked for them.
//
// build_message (message.h) stays the campaign path: one recipient, no lists, no attachments.
// Thread-safe (no shared state).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "mail/address.h"

namespace magnetic::mail {

enum class TransferEncoding { kBase64, kQuotedPrintable, k7bit };

struct Attachment {
  std::string filename;      // UTF-8; non-ASCII names are written with RFC 2231 (and RFC 2047)
  std::string content_type;  // "type/subtype", ASCII; empty: guessed from the file name
  bool inline_disposition = false;  // Content-Disposition: inline rather than attachment
  std::string content_id;           // without angle brackets; empty: no Content-ID
  std::string description;          // Content-Description, UTF-8; empty: none
  TransferEncoding encoding = TransferEncoding::kBase64;
  std::string data;  // the bytes of the file
};

struct MimeMessage {
  std::optional<Mailbox> from;  // nullopt: no From field (a preview of a template)
  std::vector<Mailbox> to, cc, reply_to;
  std::string subject;     // UTF-8
  std::string text, html;  // UTF-8 bodies; both empty: an empty text/plain body
  std::string message_id;  // with angle brackets; empty: no Message-ID field
  std::optional<std::chrono::system_clock::time_point> date;  // nullopt: no Date field
  // The caller's fields, written after MIME-Version in this order with format_structured
  // (values already printable ASCII; the caller refuses CR and LF).
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<Attachment> attachments;
};

// Appends the message. Field order: Date, From, To, Cc, Reply-To, Subject, Message-ID,
// MIME-Version, headers, then Content-Type (and for a single part, Content-Transfer-Encoding).
// Empty lists write no field. Fails (kInvalidArgument, naming the attachment) only when a 7bit
// attachment is not 7bit data: ASCII without NUL, lines of at most 998 octets, CR only in CRLF.
Status build_mime(const MimeMessage& message, std::string& out);

// The 7bit check above, for callers that validate before building; empty when fine, else why.
std::string why_not_7bit(std::string_view data);

// A media type for a file name from its extension (lower-cased), e.g. "report.PDF" ->
// "application/pdf"; "application/octet-stream" when unknown.
std::string content_type_for(std::string_view filename);

}  // namespace magnetic::mail
