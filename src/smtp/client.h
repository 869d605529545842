// SMTP client for delivery: one SmtpClient is one connection, used for many transactions.
//
// It speaks the protocol and reports replies; it never decides what a reply means (that is
// feedback/reply_policy.h). EHLO falls back to HELO; PIPELINING is used when offered (MAIL,
// RCPT and DATA go in one write); STARTTLS is opportunistic or required; AUTH PLAIN/LOGIN for
// relays; RSET between transactions after a failure; dot-stuffing on DATA; RFC 5321 timeouts.
//
// Not thread-safe: one coroutine drives one client at a time.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/reply.h"

namespace magnetic::smtp {

enum class TlsMode { kOff, kOpportunistic, kRequire };

struct Credentials {
  std::string username;
  std::string password;
};

struct Timeouts {  // RFC 5321 section 4.5.3.2, shortened where noted
  std::chrono::seconds connect{30};
  std::chrono::seconds greeting{300};
  std::chrono::seconds command{300};  // EHLO, MAIL, RCPT, RSET
  std::chrono::seconds data_init{120};
  std::chrono::seconds data_block{180};
  std::chrono::seconds data_term{600};
};

struct ClientOptions {
  std::string ehlo_name = "localhost";
  TlsMode tls = TlsMode::kOpportunistic;
  std::optional<Credentials> auth;  // AUTH PLAIN or LOGIN after TLS (or over plain if kOff)
  Timeouts timeouts;
  // Verify the server certificate when true; opportunistic TLS to MX hosts does not.
  bool verify_certificate = false;
};

struct Capabilities {
  bool esmtp = false;  // EHLO accepted (else HELO was used)
  bool pipelining = false;
  bool starttls = false;
  bool eightbitmime = false;
  bool smtputf8 = false;
  uint64_t size_limit = 0;  // 0: none advertised
  std::vector<std::string> auth_mechanisms;
  bool tls_active = false;
};

// The outcome of one transaction. Check in order: mail, then each rcpt, then data/dot.
//
// rcpts always has one entry per recipient; one never sent (MAIL failed, the connection was
// lost) has code 0 and text "not sent". When the RSET that starts a transaction after a failed
// one is refused or lost, that reply (stage "rset") is in mail. With PIPELINING, DATA goes out
// with the RCPTs, so data holds the server's 554/503 when no recipient was accepted; the body
// is never sent then, and the next transaction starts with RSET.
struct TransactionResult {
  Reply mail;
  std::vector<Reply> rcpts;  // one per recipient, same order
  Reply data;                // reply to DATA (354 expected); code 0 if not reached
  Reply dot;                 // reply to the final dot; code 0 if not reached
  // True once the final "." was written: a reply lost after this point may mean the server
  // took the message, so a retry could duplicate it.
  bool final_dot_sent = false;
};

class SmtpClient {
 public:
  SmtpClient(boost::asio::any_io_executor executor, ClientOptions options,
             std::shared_ptr<boost::asio::ssl::context> tls_context);
  ~SmtpClient();
  SmtpClient(const SmtpClient&) = delete;
  SmtpClient& operator=(const SmtpClient&) = delete;

  // Connects to host:port (a name resolved with the system resolver, or an IP literal), reads
  // the greeting, says EHLO (HELO on a 5xx), does STARTTLS per the TLS mode and AUTH when
  // credentials are set. Returns the positive reply of the last step, or the failing reply
  // (code 0 with stage "connect" and the system error in text when the connection failed).
  // After a failure the client has sent QUIT where it could and is not usable.
  //
  // Failures the client makes up itself (the server said nothing of the kind):
  //   454 4.7.4 stage "starttls": kRequire and the server does not offer STARTTLS;
  //   code 0 stage "starttls", text "TLS handshake failed: ...": the handshake failed;
  //   454 4.7.0 stage "auth": credentials are set but neither PLAIN nor LOGIN is offered.
  // AUTH succeeds on any 2xx (RFC 4954 says 235; smtp-sink says 250).
  boost::asio::awaitable<Reply> open(std::string host, uint16_t port);

  // One transaction. message holds the whole message with CRLF line endings, not dot-stuffed.
  // A message larger than the server's SIZE gets a synthetic 552 reply with stage "mail"
  // without being sent.
  boost::asio::awaitable<TransactionResult> send(std::string_view mail_from,
                                                 const std::vector<std::string>& rcpt_to,
                                                 std::string_view message);

  // QUIT (its reply awaited at most min(command timeout, 10 s)) and close. Safe to call on a
  // broken connection. An idle open client keeps its timer armed for up to the shortest
  // timeout, which keeps io_context::run() from returning until then.
  boost::asio::awaitable<void> close();

  // False after a network error, a timeout, a 421, or close().
  bool usable() const;
  const Capabilities& capabilities() const;
  int transactions() const;  // send() calls on a usable connection (SIZE refusals included)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The reply that decided a one-recipient transaction: the first refusal, else the final dot's.
const Reply& deciding_reply(const TransactionResult& r);

// Appends message to out with dot-stuffing (a '.' at the start of a line is doubled) and the
// terminating CRLF.CRLF; adds a CRLF first if message does not end with one.
void dot_stuff(std::string_view message, std::string& out);

}  // namespace magnetic::smtp
