// SMTP submission server: the listener clients use the way SES's SMTP interface is used, and,
// in inbound mode, the listener other MTAs deliver feedback (DSNs, ARF reports) to.
//
// Submission mode: STARTTLS with a configured certificate (or a self-signed one made on first
// start and kept), AUTH PLAIN and LOGIN offered and accepted only after TLS, MAIL and RCPT
// refused before AUTH (so it is never an open relay), SIZE advertised in EHLO and enforced while
// reading DATA.
// Inbound mode: the same session without AUTH (not offered; the command gets 502), STARTTLS
// offered but optional, MAIL taken from anyone (the null sender included: DSNs come from it),
// and every RCPT TO judged by check_recipient, which is what keeps it from being an open relay.
// The server decides nothing about sending policy: credentials, senders, recipients and
// messages are judged by the callbacks, which may block (they run off the I/O threads).
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "smtp/reply.h"

namespace magnetic::smtp {

struct SubmissionEnvelope {
  std::string username;  // the authenticated SMTP user; "" in inbound mode
  std::string mail_from;
  std::vector<std::string> rcpt_to;
  std::string data;  // the message as received, dot-stuffing removed, CRLF line ends
};

// The replies of check_sender, check_recipient and deliver go to the client as they are: code,
// enhanced code (left out when not valid for the code, see valid_enhanced_code), and text, one line
// per "\n". Codes outside 2xx, 4xx and 5xx, and a callback that throws, become 451 4.3.0.
struct SubmissionCallbacks {
  // True when the username/password pair is valid. Required in submission mode, not used in
  // inbound mode.
  std::function<bool(const std::string& username, const std::string& password)> authenticate;
  // Judges MAIL FROM for an authenticated user: a 2xx reply accepts it. mail_from is the address
  // between the angle brackets, "" for the null sender. Required in submission mode; optional
  // in inbound mode, where username is "" and, when it is not set, every sender is accepted
  // with "250 2.1.0 Ok".
  std::function<Reply(const std::string& username, const std::string& mail_from)> check_sender;
  // Judges one RCPT TO of the open transaction: a 2xx reply adds the recipient, anything else
  // is the refusal (e.g. 550 5.7.1 relay denied, 550 5.1.1 no such user). mail_from is the
  // transaction's sender ("" for the null sender), rcpt the address between the brackets.
  // Called only for a well-formed recipient under max_recipients (in inbound mode that includes
  // the bare "Postmaster" of RFC 5321 4.5.1, passed as written). Required in inbound mode;
  // optional in submission mode, where every recipient is accepted with "250 2.1.5 Ok" when it
  // is not set.
  std::function<Reply(const std::string& mail_from, const std::string& rcpt)> check_recipient;
  // Takes a complete message; the reply is sent after the final dot. A 250 reply means the
  // message is durable.
  std::function<Reply(SubmissionEnvelope envelope)> deliver;
};

enum class ServerMode {
  kSubmission,  // AUTH required before MAIL (clients sending through us)
  kInbound,     // no AUTH, every recipient judged by check_recipient (feedback from other MTAs)
};

struct SubmissionOptions {
  ServerMode mode = ServerMode::kSubmission;
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;  // 0: an ephemeral port
  std::string hostname = "localhost";
  // PEM files. When both are empty or the files are missing, a self-signed certificate for
  // `hostname` is generated and written to these paths (key with mode 0600) if they are set.
  std::string tls_cert_file, tls_key_file;
  uint64_t size_limit = 10 * 1024 * 1024;  // SES's limit for a message
  size_t max_recipients = 50;              // SES's limit per message
  size_t max_connections = 1000;
  int worker_threads = 2;  // threads for the blocking callbacks
  // A connection that sends nothing (or reads none of our replies) for this long gets 421 and
  // is closed. RFC 5321 asks for at least 5 minutes; tests shorten it.
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
};

// Thread-safety: start, port and stop may be called from any thread; the io_context may run on
// several threads (each connection keeps to its own strand). The callbacks are called on the
// server's worker threads, several at once when several connections are busy; each one is
// awaited by its connection without holding an io thread.
//
// Lifetime: destroy the server before the io_context. The destructor calls stop() and then
// waits for callbacks still running, none is called after it returns; so it must not run on a
// thread that a running callback waits for.
class SubmissionServer {
 public:
  // Listens and returns the server, or an error naming the option at fault (invalid option,
  // unusable certificate files, address in use). The callbacks the mode requires must be set.
  static Result<std::unique_ptr<SubmissionServer>> start(boost::asio::io_context& io,
                                                         SubmissionOptions options,
                                                         SubmissionCallbacks callbacks);
  ~SubmissionServer();
  uint16_t port() const;  // the port listened on (the ephemeral one when listen_port is 0)
  // Stops accepting and closes every connection (asynchronously, on the io_context). Open
  // transactions are dropped; a deliver call already running completes, but its reply may not
  // reach the client.
  void stop();

  struct Impl;
  explicit SubmissionServer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace magnetic::smtp
