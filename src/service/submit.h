// Submission: the one door through which the HTTP API and SMTP submission hand mail to the
// service. It applies the sending policy (the From identity exists, the configuration set
// exists and may send, the account may send and is within its quota), marks suppressed
// recipients, and makes the accepted messages durable in the spool before it returns. A
// caller replies "accepted" (HTTP 200, SMTP 250) only after submit() returned ok for it.
//
// Messages arrive complete (rendered, MIME built, RFC 5322 with CRLF line ends) and unsigned:
// DKIM signing happens at delivery, with the key of the identity named here.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace magnetic::service {

struct OutboundMessage {
  std::string message_id;     // the SES MessageId: returned to the client, carried by events;
                              // empty: submit() makes one
  std::string from;           // the From address (addr-spec), checked against identities
  std::string envelope_from;  // MAIL FROM; empty: the From address
  std::string sender;         // a Sender field's address; checked like From
  std::vector<std::string> recipients;  // envelope RCPT TO, addr-specs (To, Cc and Bcc)
  std::string configuration_set;        // may be empty
  std::vector<std::pair<std::string, std::string>> tags;  // EmailTags / X-SES-MESSAGE-TAGS
  std::string data;    // the whole message, CRLF line ends, without DKIM-Signature
  std::string source;  // "api" or "smtp", for logs
};

// Why a message was not accepted; the API maps these to SES errors and BulkEmailStatus, SMTP to
// reply codes.
enum class Refusal {
  kNone,
  kMessageRejected,           // MessageRejected (400): e.g. From not a verified identity
  kFromDomainNotVerified,     // MailFromDomainNotVerifiedException
  kConfigurationSetNotFound,  // NotFoundException naming the set
  kConfigurationSetPaused,    // SendingPausedException
  kAccountPaused,             // SendingPausedException
  kDailyQuotaExceeded,        // LimitExceededException "Daily message quota exceeded"
  kThrottled,                 // TooManyRequestsException "Maximum sending rate exceeded"
  kInvalidParameter,          // BadRequestException
  kTemporary,                 // the spool could not commit: retry (500 / 451)
};

struct SubmitResult {
  Refusal refusal = Refusal::kNone;
  std::string message;                  // why, for the error body or SMTP reply text
  std::string message_id;               // when accepted
  std::vector<std::string> suppressed;  // recipients accepted but not to be delivered
};

// A templated message that was not sent because its template did not render with its data:
// SES publishes a Rendering Failure event for it.
struct RenderingFailure {
  std::string configuration_set;  // as the request named it; may be empty
  std::string from;               // the From address
  std::vector<std::string> recipients;
  std::vector<std::pair<std::string, std::string>> tags;
  std::string template_name;  // "" for inline template content
  std::string error;
};

class Submitter {
 public:
  virtual ~Submitter() = default;
  // Publishes the Rendering Failure event of a message the API refused (nothing else happens).
  // Never blocks for long; failures are logged, not returned.
  virtual void rendering_failed(const RenderingFailure& failure) { (void)failure; }
  // One result per message, in order. Messages are accepted or refused one by one (a bulk send
  // accepts the entries that pass); all accepted ones are durable when this returns. Blocking;
  // safe to call from many threads at once (calls are committed together).
  virtual std::vector<SubmitResult> submit(std::vector<OutboundMessage> messages) = 0;
};

}  // namespace magnetic::service
