// SMTP submission server: the listener clients use the way SES's SMTP interface is used.
//
// STARTTLS with a configured certificate (or a self-signed one made on first start and kept),
// AUTH PLAIN and LOGIN offered and accepted only after TLS, MAIL and RCPT refused before AUTH
// (so it is never an open relay), SIZE advertised in EHLO and enforced while reading DATA.
// The server decides nothing about sending policy: credentials, senders and messages are judged
// by the callbacks, which may block (they run off the I/O threads).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "smtp/reply.h"

namespace magnetic::smtp {

struct SubmissionEnvelope {
  std::string username;  // the authenticated SMTP user
  std::string mail_from;
  std::vector<std::string> rcpt_to;
  std::string data;  // the message as received, dot-stuffing removed, CRLF line ends
};

struct SubmissionCallbacks {
  // True when the username/password pair is valid.
  std::function<bool(const std::string& username, const std::string& password)> authenticate;
  // Judges MAIL FROM for an authenticated user: a positive reply accepts it.
  std::function<Reply(const std::string& username, const std::string& mail_from)> check_sender;
  // Takes a complete message; the reply is sent after the final dot. A 250 reply means the
  // message is durable.
  std::function<Reply(SubmissionEnvelope envelope)> deliver;
};

struct SubmissionOptions {
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
};

class SubmissionServer {
 public:
  static Result<std::unique_ptr<SubmissionServer>> start(boost::asio::io_context& io,
                                                         SubmissionOptions options,
                                                         SubmissionCallbacks callbacks);
  ~SubmissionServer();
  uint16_t port() const;
  void stop();

  struct Impl;
  explicit SubmissionServer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace magnetic::smtp
