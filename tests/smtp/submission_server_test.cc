// The submission server on loopback: the server runs on its own io thread, and the tests talk
// to it with a blocking client of their own (plain sockets and OpenSSL, so that every byte on
// the wire is chosen by the test), with the project's SmtpClient, and with the real clients
// swaks and Python's smtplib when they are installed.
#include <utility>  // before Asio (Boost 1.74)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <cstdio>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

#include "smtp/client.h"
#include "smtp/server_tls.h"
#include "smtp/stream.h"
#include "smtp/submission_server.h"
#include "test_util.h"

namespace magnetic::smtp {
namespace {

namespace asio = boost::asio;
using magnetic::testing::read_file;
using magnetic::testing::TempDir;

constexpr const char* kHost = "mx.example.test";

std::string plain_token(std::string_view authzid, std::string_view user, std::string_view pass) {
  std::string token(authzid);
  token.push_back('\0');
  token.append(user);
  token.push_back('\0');
  token.append(pass);
  return internal::base64_encode(token);
}

// A blocking SMTP client that sends exactly the bytes it is given. Every read and write gives
// up after 20 s (SO_RCVTIMEO/SO_SNDTIMEO), so a server that stops answering fails the test.
class Conn {
 public:
  explicit Conn(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{20, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Conn() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      long n = ssl_ ? SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                    : ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One complete reply, every line with its CRLF; "" when the connection ended first.
  std::string reply() {
    for (;;) {
      size_t pos = 0;
      for (;;) {
        size_t eol = buffer_.find("\r\n", pos);
        if (eol == std::string::npos) break;
        if (eol - pos < 4 || buffer_[pos + 3] != '-') {
          std::string out = buffer_.substr(0, eol + 2);
          buffer_.erase(0, eol + 2);
          return out;
        }
        pos = eol + 2;
      }
      if (fill() != Read::kData) return {};
    }
  }

  std::string command(std::string_view line) {
    send(std::string(line) + "\r\n");
    return reply();
  }

  // True when the server closed the connection with nothing more to read.
  bool at_eof() { return buffer_.empty() && fill() == Read::kEof; }

  // Every byte until the server closes (or the read times out).
  std::string rest() {
    while (fill() == Read::kData) {
    }
    return std::exchange(buffer_, {});
  }

  // The client side of STARTTLS, after the 220. ca_file, when set, is the only trust anchor
  // and the certificate must verify against it.
  bool handshake(const std::string& ca_file = "") {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (!ca_file.empty()) {
      SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, kHost);
    bool ok = SSL_connect(ssl_) == 1;
    ERR_clear_error();
    return ok;
  }

  // The server's certificate in PEM, "" without TLS.
  std::string peer_certificate_pem() {
    if (!ssl_) return {};
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (!cert) return {};
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(bio);
    X509_free(cert);
    return out;
  }

  std::string tls_version() { return ssl_ ? SSL_get_version(ssl_) : ""; }

 private:
  enum class Read { kData, kEof, kError };

  Read fill() {
    char buf[16384];
    long n = ssl_ ? SSL_read(ssl_, buf, sizeof buf) : ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      buffer_.append(buf, static_cast<size_t>(n));
      return Read::kData;
    }
    if (ssl_) {
      int err = SSL_get_error(ssl_, static_cast<int>(n));
      ERR_clear_error();
      return err == SSL_ERROR_ZERO_RETURN ? Read::kEof : Read::kError;
    }
    return n == 0 ? Read::kEof : Read::kError;
  }

  int fd_ = -1;
  bool connected_ = false;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buffer_;
};

std::string ehlo_reply(bool tls, uint64_t size_limit = 10485760) {
  return "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE " + std::to_string(size_limit) +
         "\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n" +
         (tls ? "250 AUTH PLAIN LOGIN\r\n" : "250 STARTTLS\r\n");
}
const std::string kEhloBeforeTls = ehlo_reply(false);
const std::string kEhloAfterTls = ehlo_reply(true);
const std::string kOk = "250 2.0.0 Ok\r\n";
const std::string kAuthOk = "235 2.7.0 Authentication successful\r\n";
const std::string kAuthBad = "535 5.7.8 Authentication credentials invalid\r\n";
const std::string kMailOk = "250 2.1.0 Sender ok\r\n";
const std::string kRcptOk = "250 2.1.5 Ok\r\n";
const std::string kGoAhead = "354 End data with <CR><LF>.<CR><LF>\r\n";
const std::string kQueued = "250 2.0.0 Ok: queued as 1\r\n";

class SubmissionServerTest : public ::testing::Test {
 protected:
  static SubmissionOptions default_options() {
    SubmissionOptions o;
    o.hostname = kHost;
    return o;
  }

  SubmissionCallbacks callbacks() {
    SubmissionCallbacks c;
    c.authenticate = [this](const std::string& user, const std::string& password) {
      std::lock_guard<std::mutex> lock(mu_);
      callback_threads_.push_back(std::this_thread::get_id());
      ++auth_calls_;
      return user == "u" && password == "p";
    };
    c.check_sender = [this](const std::string& user, const std::string& from) {
      std::lock_guard<std::mutex> lock(mu_);
      callback_threads_.push_back(std::this_thread::get_id());
      senders_.push_back(user + " <" + from + ">");
      if (from == "blocked@example.com") return sender_refusal_;
      return Reply{250, "2.1.0", "Sender ok"};
    };
    c.deliver = [this](SubmissionEnvelope envelope) {
      std::lock_guard<std::mutex> lock(mu_);
      callback_threads_.push_back(std::this_thread::get_id());
      delivered_.push_back(std::move(envelope));
      return deliver_reply_;
    };
    return c;
  }

  void start(SubmissionOptions options = default_options()) {
    auto started = SubmissionServer::start(io_, std::move(options), callbacks());
    ASSERT_TRUE(started.is_ok()) << started.status().message();
    server_ = std::move(started).value();
    run_io();
  }

  // Two io threads, as a server runs: every connection must keep to its strand.
  void run_io() {
    work_.emplace(io_.get_executor());
    for (auto& t : threads_) t = std::thread([this] { io_.run(); });
  }

  void stop() {
    if (!threads_[0].joinable()) return;
    server_.reset();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    io_.restart();
  }

  void TearDown() override { stop(); }

  uint16_t port() const { return server_->port(); }

  // Greeting, EHLO, STARTTLS, EHLO again, AUTH PLAIN u/p: the connection ready for MAIL.
  static void login(Conn& c, uint64_t size_limit = 10485760) {
    ASSERT_TRUE(c.connected());
    ASSERT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
    ASSERT_EQ(c.command("EHLO client.example"), ehlo_reply(false, size_limit));
    ASSERT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
    ASSERT_TRUE(c.handshake());
    ASSERT_EQ(c.command("EHLO client.example"), ehlo_reply(true, size_limit));
    ASSERT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "p")), kAuthOk);
  }

  // One transaction with the given raw (already dot-stuffed) DATA bytes, the final dot included.
  static std::string transaction(Conn& c, std::string_view raw_data) {
    EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), kMailOk);
    EXPECT_EQ(c.command("RCPT TO:<x@example.com>"), kRcptOk);
    EXPECT_EQ(c.command("DATA"), kGoAhead);
    c.send(raw_data);
    return c.reply();
  }

  std::vector<SubmissionEnvelope> delivered() {
    std::lock_guard<std::mutex> lock(mu_);
    return delivered_;
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread threads_[2];
  std::unique_ptr<SubmissionServer> server_;

  std::mutex mu_;
  std::vector<std::thread::id> callback_threads_;
  std::vector<std::string> senders_;
  std::vector<SubmissionEnvelope> delivered_;
  int auth_calls_ = 0;
  Reply sender_refusal_{554, "5.7.1", "Email address is not verified."};
  Reply deliver_reply_{250, "2.0.0", "Ok: queued as 1"};
};

TEST_F(SubmissionServerTest, greeting_and_ehlo_before_and_after_tls) {
  start();
  Conn c(port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("EHLO client.example"), kEhloAfterTls);
  EXPECT_EQ(c.command("STARTTLS"), "503 5.5.1 TLS already active\r\n");
  EXPECT_EQ(c.command("QUIT"), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(c.at_eof());
}

TEST_F(SubmissionServerTest, helo_and_the_small_commands) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("HELO client.example"), "250 mx.example.test\r\n");
  EXPECT_EQ(c.command("EHLO"), "501 5.5.4 Syntax: EHLO hostname\r\n");
  EXPECT_EQ(c.command("NOOP"), kOk);
  EXPECT_EQ(c.command("rset"), kOk);
  EXPECT_EQ(c.command("VRFY someone"),
            "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n");
  EXPECT_EQ(c.command("HELP"),
            "214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY QUIT\r\n");
  EXPECT_EQ(c.command("EXPN list"), "500 5.5.2 Command not recognized\r\n");
  EXPECT_EQ(c.command("BDAT 10 LAST"), "500 5.5.2 Command not recognized\r\n");
  EXPECT_EQ(c.command("STARTTLS now"), "501 5.5.4 Syntax: STARTTLS\r\n");
  EXPECT_EQ(c.command("QUIT"), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(c.at_eof());
}

TEST_F(SubmissionServerTest, auth_before_tls_is_refused_with_538) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
  const std::string refused =
      "538 5.7.11 Encryption required for requested authentication mechanism\r\n";
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "p")), refused);
  EXPECT_EQ(c.command("AUTH LOGIN"), refused);
  EXPECT_EQ(auth_calls_, 0);  // the password was never looked at
}

TEST_F(SubmissionServerTest, mail_before_auth_530_and_rcpt_data_without_mail_503) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), "530 5.7.0 Authentication required\r\n");
  EXPECT_EQ(c.command("RCPT TO:<x@example.com>"), "503 5.5.1 Need MAIL command\r\n");
  EXPECT_EQ(c.command("DATA"), "503 5.5.1 Need MAIL command\r\n");

  // Under TLS but before AUTH: the same.
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("EHLO client.example"), kEhloAfterTls);
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), "530 5.7.0 Authentication required\r\n");
  EXPECT_EQ(c.command("RCPT TO:<x@example.com>"), "503 5.5.1 Need MAIL command\r\n");
  EXPECT_TRUE(senders_.empty());
}

TEST_F(SubmissionServerTest, auth_needs_ehlo_again_after_starttls) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "p")), "503 5.5.1 Send EHLO first\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloAfterTls);
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "p")), kAuthOk);
}

TEST_F(SubmissionServerTest, auth_plain_with_and_without_initial_response) {
  start();
  {
    Conn c(port());
    login(c);  // AUTH PLAIN with the initial response
    EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "p")),
              "503 5.5.1 Already authenticated\r\n");
    EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), kMailOk);
  }
  {
    Conn c(port());
    EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
    EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
    EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
    ASSERT_TRUE(c.handshake());
    EXPECT_EQ(c.command("EHLO client.example"), kEhloAfterTls);
    EXPECT_EQ(c.command("auth plain"), "334 \r\n");
    EXPECT_EQ(c.command(plain_token("u", "u", "p")), kAuthOk);  // authzid = authcid is fine
    EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), kMailOk);
  }
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(senders_, (std::vector<std::string>{"u <a@example.com>", "u <a@example.com>"}));
}

TEST_F(SubmissionServerTest, auth_login_with_both_prompts) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("EHLO client.example"), kEhloAfterTls);
  EXPECT_EQ(c.command("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(c.command(internal::base64_encode("u")), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(c.command(internal::base64_encode("wrong")), kAuthBad);
  // The username may come with the command.
  EXPECT_EQ(c.command("AUTH LOGIN " + internal::base64_encode("u")), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(c.command(internal::base64_encode("p")), kAuthOk);
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), kMailOk);
}

TEST_F(SubmissionServerTest, auth_failures_cancel_and_malformed_responses) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("EHLO client.example"), kEhloAfterTls);

  // Cancelled at either prompt: 501, not a failure.
  EXPECT_EQ(c.command("AUTH PLAIN"), "334 \r\n");
  EXPECT_EQ(c.command("*"), "501 5.0.0 Authentication cancelled\r\n");
  EXPECT_EQ(c.command("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(c.command("*"), "501 5.0.0 Authentication cancelled\r\n");
  EXPECT_EQ(c.command("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(c.command(internal::base64_encode("u")), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(c.command("*"), "501 5.0.0 Authentication cancelled\r\n");
  // Not base64: 501, not a failure either.
  EXPECT_EQ(c.command("AUTH PLAIN not*base64"), "501 5.5.2 Invalid base64 data\r\n");
  EXPECT_EQ(c.command("AUTH PLAIN"), "334 \r\n");
  EXPECT_EQ(c.command("dGVzdA"), "501 5.5.2 Invalid base64 data\r\n");
  EXPECT_EQ(c.command("AUTH CRAM-MD5"), "504 5.5.4 Unrecognized authentication type\r\n");
  // A wrong password, then acting for another user (not supported): two failures.
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "x")), kAuthBad);
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("admin", "u", "p")), kAuthBad);
  // Two failures leave the connection usable.
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "p")), kAuthOk);
}

TEST_F(SubmissionServerTest, three_auth_failures_close_with_421) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("EHLO client.example"), kEhloAfterTls);
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "1")), kAuthBad);
  EXPECT_EQ(c.command("AUTH PLAIN =" /* empty response */), kAuthBad);
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "nobody", "p")), kAuthBad);
  EXPECT_EQ(c.reply(), "421 4.7.0 mx.example.test Error: too many failed authentications\r\n");
  EXPECT_TRUE(c.at_eof());
}

TEST_F(SubmissionServerTest, size_parameter_over_the_limit) {
  SubmissionOptions o = default_options();
  o.size_limit = 1000;
  start(o);
  Conn c(port());
  login(c, 1000);
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com> SIZE=1001"),
            "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com> SIZE=99999999999999999999999"),
            "501 5.5.4 Syntax error in SIZE parameter\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com> SIZE=12x"),
            "501 5.5.4 Syntax error in SIZE parameter\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com> size=1000 BODY=8BITMIME"), kMailOk);
}

TEST_F(SubmissionServerTest, message_size_enforced_while_reading) {
  SubmissionOptions o = default_options();
  o.size_limit = 100;
  start(o);
  Conn c(port());
  login(c, 100);

  // 100 bytes once unstuffed: accepted. The leading dot of the last line is not counted.
  std::string exact = std::string(48, 'a') + "\r\n" + std::string(45, 'b') + "\r\n";
  ASSERT_EQ(exact.size(), 97u);
  EXPECT_EQ(transaction(c, exact + "..\r\n.\r\n"), kQueued);
  // 101: refused after the final dot, and the session goes on.
  EXPECT_EQ(transaction(c, exact + "..x\r\n.\r\n"),
            "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  // Far over the limit, in one long line and many short ones.
  EXPECT_EQ(
      transaction(c, std::string(200000, 'z') + "\r\n" + std::string(50000, '\n') + "\r\n.\r\n"),
      "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  EXPECT_EQ(transaction(c, "small\r\n.\r\n"), kQueued);

  auto got = delivered();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data, exact + ".\r\n");
  EXPECT_EQ(got[0].data.size(), 100u);
  EXPECT_EQ(got[1].data, "small\r\n");
}

TEST_F(SubmissionServerTest, dot_unstuffing_exact_bytes) {
  start();
  Conn c(port());
  login(c);
  EXPECT_EQ(transaction(c,
                        "Subject: dots\r\n\r\n..one\r\n...\r\n..\r\n.x unstuffed by a sloppy "
                        "client\r\nend.\r\n. \r\n.\r\n"),
            kQueued);
  EXPECT_EQ(transaction(c, ".\r\n"), kQueued);  // an empty message
  auto got = delivered();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data,
            "Subject: dots\r\n\r\n.one\r\n..\r\n.\r\nx unstuffed by a sloppy client\r\nend.\r\n "
            "\r\n");
  EXPECT_EQ(got[0].username, "u");
  EXPECT_EQ(got[0].mail_from, "a@example.com");
  EXPECT_EQ(got[0].rcpt_to, std::vector<std::string>{"x@example.com"});
  EXPECT_EQ(got[1].data, "");
}

TEST_F(SubmissionServerTest, bare_lf_becomes_crlf) {
  start();
  Conn c(port());
  login(c);
  EXPECT_EQ(transaction(c, "A\nB\r\n..C\n\nD\r\r\n.\r\n"), kQueued);
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  // A bare CR is not a line end and stays; the dot of "..C" is unstuffed.
  EXPECT_EQ(got[0].data, "A\r\nB\r\n.C\r\n\r\nD\r\r\n");
}

// SMTP smuggling: only CRLF "." CRLF ends the data. A server that also ended it at LF "." LF (or
// at a mix) would let the rest be read as a second transaction of the client's making.
TEST_F(SubmissionServerTest, bare_lf_dot_does_not_end_data) {
  start();
  Conn c(port());
  login(c);
  std::string smuggled =
      "MAIL FROM:<ceo@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nforged\r\n";
  EXPECT_EQ(transaction(c, "first\r\n\n.\n" + smuggled + "x\n.\r\n" + smuggled + "y\r\n.\n" +
                               "end\r\n.\r\n"),
            kQueued);
  EXPECT_EQ(c.command("NOOP"), kOk);  // no stray replies in between
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  std::string crlf_smuggled =
      "MAIL FROM:<ceo@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nforged\r\n";
  EXPECT_EQ(got[0].data, "first\r\n\r\n.\r\n" + crlf_smuggled + "x\r\n.\r\n" + crlf_smuggled +
                             "y\r\n.\r\nend\r\n");
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(senders_.size(), 1u);  // this transaction's MAIL only, none smuggled
}

TEST_F(SubmissionServerTest, long_message_lines_kept_whole) {
  start();
  Conn c(port());
  login(c);
  // Around the size of the pieces a long line is read in (32 KB), with CRLF split between
  // writes and a stuffed dot at the start.
  std::string expected;
  std::string raw;
  for (size_t n : {32766u, 32767u, 32768u, 32769u, 70000u}) {
    std::string line = "." + std::string(n, 'q');
    expected += line + "\r\n";
    raw += "." + line + "\r\n";
  }
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), kMailOk);
  EXPECT_EQ(c.command("RCPT TO:<x@example.com>"), kRcptOk);
  EXPECT_EQ(c.command("DATA"), kGoAhead);
  for (size_t pos = 0; pos < raw.size(); pos += 32769) c.send(raw.substr(pos, 32769));
  c.send(".\r\n");
  EXPECT_EQ(c.reply(), kQueued);
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data.size(), expected.size());
  EXPECT_TRUE(got[0].data == expected);
}

TEST_F(SubmissionServerTest, too_many_recipients) {
  SubmissionOptions o = default_options();
  o.max_recipients = 3;
  start(o);
  Conn c(port());
  login(c);
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), kMailOk);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.command("RCPT TO:<r" + std::to_string(i) + "@other.example>"), kRcptOk);
  }
  EXPECT_EQ(c.command("RCPT TO:<r3@other.example>"), "452 4.5.3 Too many recipients\r\n");
  EXPECT_EQ(c.command("DATA"), kGoAhead);
  c.send("x\r\n.\r\n");
  EXPECT_EQ(c.reply(), kQueued);
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].rcpt_to,
            (std::vector<std::string>{"r0@other.example", "r1@other.example", "r2@other.example"}));
}

TEST_F(SubmissionServerTest, mail_and_rcpt_syntax) {
  start();
  Conn c(port());
  login(c);
  EXPECT_EQ(c.command("MAIL TO:<a@example.com>"), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
  EXPECT_EQ(c.command("MAIL FROM:a@example.com"), "501 5.1.7 Bad sender address syntax\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com"), "501 5.1.7 Bad sender address syntax\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<a b@example.com>"), "501 5.1.7 Bad sender address syntax\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<a@exa\x01mple.com>"), "501 5.1.7 Bad sender address syntax\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<\xc3\xa9@example.com>"),
            "501 5.1.7 Bad sender address syntax\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com> SMTPUTF8"),
            "555 5.5.4 MAIL FROM parameters not recognized or not implemented\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com> BODY=BINARYMIME"),
            "501 5.5.4 Syntax error in BODY parameter\r\n");
  // RFC 4954's AUTH parameter is taken and ignored; a space after the colon is tolerated.
  EXPECT_EQ(c.command("MAIL FROM: <\"odd>local\"@example.com> AUTH=<> BODY=7BIT"), kMailOk);
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), "503 5.5.1 Nested MAIL command\r\n");
  EXPECT_EQ(c.command("RCPT TO:<postmaster>"), "501 5.1.3 Bad recipient address syntax\r\n");
  EXPECT_EQ(c.command("RCPT TO:<>"), "501 5.1.3 Bad recipient address syntax\r\n");
  EXPECT_EQ(c.command("RCPT FROM:<x@example.com>"), "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
  EXPECT_EQ(c.command("RCPT TO:<x@example.com> NOTIFY=NEVER"),
            "555 5.5.4 RCPT TO parameters not recognized or not implemented\r\n");
  EXPECT_EQ(c.command("DATA"), "554 5.5.1 No valid recipients\r\n");
  EXPECT_EQ(c.command("RCPT TO:<@relay.example:x@example.com>"), kRcptOk);  // route dropped
  EXPECT_EQ(c.command("RSET"), kOk);
  EXPECT_EQ(c.command("MAIL FROM:<>"), kMailOk);  // the null sender goes to check_sender
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(senders_, (std::vector<std::string>{"u <\"odd>local\"@example.com>", "u <>"}));
}

TEST_F(SubmissionServerTest, starttls_command_injection_is_discarded) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
  // Whatever follows STARTTLS in the same packet was sent in the clear: an attacker's NOOP and
  // AUTH would otherwise be answered inside the TLS session.
  c.send("STARTTLS\r\nNOOP\r\nAUTH PLAIN " + plain_token("", "u", "p") + "\r\n");
  EXPECT_EQ(c.reply(), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("EHLO client.example"), kEhloAfterTls);
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), "530 5.7.0 Authentication required\r\n");
  EXPECT_EQ(c.command("QUIT"), "221 2.0.0 Bye\r\n");
  EXPECT_EQ(c.rest(), "");
  EXPECT_EQ(auth_calls_, 0);
}

TEST_F(SubmissionServerTest, pipelined_commands_answered_in_order) {
  start();
  Conn c(port());
  login(c);
  c.send(
      "MAIL FROM:<a@example.com> SIZE=20\r\nRCPT TO:<x@example.com>\r\nRCPT TO:<bad>\r\n"
      "RCPT TO:<y@example.com>\r\nDATA\r\n");
  EXPECT_EQ(c.reply(), kMailOk);
  EXPECT_EQ(c.reply(), kRcptOk);
  EXPECT_EQ(c.reply(), "501 5.1.3 Bad recipient address syntax\r\n");
  EXPECT_EQ(c.reply(), kRcptOk);
  EXPECT_EQ(c.reply(), kGoAhead);
  // The body, the next transaction (refused by check_sender) and QUIT in one write.
  c.send(
      "Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<blocked@example.com>\r\nRCPT "
      "TO:<x@example.com>\r\nDATA\r\nNOOP\r\nQUIT\r\n");
  EXPECT_EQ(c.reply(), kQueued);
  EXPECT_EQ(c.reply(), "554 5.7.1 Email address is not verified.\r\n");
  EXPECT_EQ(c.reply(), "503 5.5.1 Need MAIL command\r\n");
  EXPECT_EQ(c.reply(), "503 5.5.1 Need MAIL command\r\n");
  EXPECT_EQ(c.reply(), kOk);
  EXPECT_EQ(c.reply(), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(c.at_eof());
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].rcpt_to, (std::vector<std::string>{"x@example.com", "y@example.com"}));
  EXPECT_EQ(got[0].data, "Subject: p\r\n\r\nbody\r\n");
}

TEST_F(SubmissionServerTest, callback_replies_passed_through) {
  deliver_reply_ = Reply{554, "5.7.1", "Message rejected: Email address is not verified."};
  start();
  Conn c(port());
  login(c);
  EXPECT_EQ(transaction(c, "x\r\n.\r\n"),
            "554 5.7.1 Message rejected: Email address is not verified.\r\n");

  deliver_reply_ = Reply{451, "4.3.0", "spool busy\ntry again\r\nlater"};
  EXPECT_EQ(transaction(c, "x\r\n.\r\n"),
            "451-4.3.0 spool busy\r\n451-4.3.0 try again\r\n451 4.3.0 later\r\n");
  // An enhanced code of the wrong class is left out; an empty text gets a word.
  deliver_reply_ = Reply{250, "5.0.0", ""};
  EXPECT_EQ(transaction(c, "x\r\n.\r\n"), "250 Ok\r\n");
  // A code a callback must not give (3xx, none) becomes a local error.
  deliver_reply_ = Reply{354, "", "go on"};
  EXPECT_EQ(transaction(c, "x\r\n.\r\n"), "451 4.3.0 Local error in processing\r\n");
  deliver_reply_ = Reply{};
  EXPECT_EQ(transaction(c, "x\r\n.\r\n"), "451 4.3.0 Local error in processing\r\n");

  sender_refusal_ = Reply{451, "4.4.5", "sending paused\r\n250 fake"};
  EXPECT_EQ(c.command("MAIL FROM:<blocked@example.com>"),
            "451-4.4.5 sending paused\r\n451 4.4.5 250 fake\r\n");
  EXPECT_EQ(c.command("RCPT TO:<x@example.com>"), "503 5.5.1 Need MAIL command\r\n");
}

TEST_F(SubmissionServerTest, callbacks_run_off_the_io_thread) {
  start();
  Conn c(port());
  login(c);
  EXPECT_EQ(transaction(c, "x\r\n.\r\n"), kQueued);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(callback_threads_.size(), 3u);  // authenticate, check_sender, deliver
  for (auto id : callback_threads_) {
    EXPECT_NE(id, threads_[0].get_id());
    EXPECT_NE(id, threads_[1].get_id());
  }
}

TEST_F(SubmissionServerTest, throwing_callbacks_become_temporary_errors) {
  auto started = SubmissionServer::start(io_, default_options(), [] {
    SubmissionCallbacks c;
    c.authenticate = [](const std::string& user, const std::string&) -> bool {
      if (user == "broken") throw std::runtime_error("store down");
      return true;
    };
    c.check_sender = [](const std::string&, const std::string& from) -> Reply {
      if (from == "broken@example.com") throw std::runtime_error("store down");
      return Reply{250, "2.1.0", "Sender ok"};
    };
    c.deliver = [](SubmissionEnvelope) -> Reply { throw std::runtime_error("spool down"); };
    return c;
  }());
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  server_ = std::move(started).value();
  run_io();

  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("EHLO client.example"), kEhloAfterTls);
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "broken", "p")),
            "454 4.7.0 Temporary authentication failure\r\n");
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "p")), kAuthOk);
  EXPECT_EQ(c.command("MAIL FROM:<broken@example.com>"), "451 4.3.0 Local error in processing\r\n");
  EXPECT_EQ(transaction(c, "x\r\n.\r\n"), "451 4.3.0 Local error in processing\r\n");
}

TEST_F(SubmissionServerTest, line_too_long_and_unknown_commands) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  // 512 octets with the CRLF pass, 513 do not.
  EXPECT_EQ(c.command("NOOP " + std::string(505, 'x')), kOk);
  EXPECT_EQ(c.command("NOOP " + std::string(506, 'x')), "500 5.5.6 Line too long\r\n");
  // A huge line without an end is skipped as it comes, then the session goes on.
  c.send(std::string(300000, 'y'));
  EXPECT_EQ(c.command("\r\nNOOP"), "500 5.5.6 Line too long\r\n");
  EXPECT_EQ(c.reply(), kOk);
  EXPECT_EQ(c.command(std::string("NO\0OP", 5)), "500 5.5.2 Command not recognized\r\n");
  EXPECT_EQ(c.command("\x01\xff\xfe"), "500 5.5.2 Command not recognized\r\n");
  EXPECT_EQ(c.command("GET / HTTP/1.1"), "500 5.5.2 Command not recognized\r\n");
  EXPECT_EQ(c.command("NOOP"), kOk);
}

TEST_F(SubmissionServerTest, auth_lines_may_be_longer) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO client.example"), kEhloBeforeTls);
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("EHLO client.example"), kEhloAfterTls);
  // RFC 4954: AUTH lines up to 12288 octets, so long passwords (tokens) fit.
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", std::string(3000, 'p'))), kAuthBad);
  EXPECT_EQ(c.command("AUTH PLAIN"), "334 \r\n");
  EXPECT_EQ(c.command(std::string(13000, 'A')), "500 5.5.6 Line too long\r\n");
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "p")), kAuthOk);
}

TEST_F(SubmissionServerTest, too_many_errors_close_the_connection) {
  start();
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  std::string garbage;
  for (int i = 0; i < 25; ++i) garbage += "junk " + std::to_string(i) + "\r\n";
  c.send(garbage);
  std::string expected;
  for (int i = 0; i < 20; ++i) expected += "500 5.5.2 Command not recognized\r\n";
  expected += "421 4.7.0 mx.example.test Error: too many errors\r\n";
  EXPECT_EQ(c.rest(), expected);
}

TEST_F(SubmissionServerTest, binary_garbage_and_disconnects_at_every_step) {
  start();
  // Random bytes (NULs and 8-bit included), before and after TLS.
  std::mt19937 random(20240611);
  std::string garbage(200000, '\0');
  for (char& ch : garbage) ch = static_cast<char>(random());
  {
    Conn c(port());
    ASSERT_TRUE(c.connected());
    c.send(garbage);
    std::string rest = c.rest();
    EXPECT_TRUE(rest.ends_with("421 4.7.0 mx.example.test Error: too many errors\r\n")) << rest;
  }
  {
    Conn c(port());
    login(c);
    c.send(garbage);
    EXPECT_TRUE(c.rest().ends_with("421 4.7.0 mx.example.test Error: too many errors\r\n"));
  }
  {
    Conn c(port());  // garbage instead of a TLS handshake
    EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
    EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
    c.send(garbage.substr(0, 5000));
    c.rest();
  }

  // A whole session, cut after every few bytes: the server must take each cut.
  const std::string session = "EHLO client.example\r\nSTARTTLS\r\n";
  for (size_t cut = 0; cut <= session.size(); cut += 3) {
    Conn c(port());
    c.send(session.substr(0, cut));
  }
  for (int step = 0; step < 8; ++step) {
    Conn c(port());
    login(c);
    if (step == 0) continue;
    if (step == 1) c.send("AUTH");
    if (step >= 2) c.send("MAIL FROM:<a@example.com>\r\n");
    if (step >= 3) c.send("RCPT TO:<x@example.com>\r\n");
    if (step >= 4) c.send("DATA\r\n");
    if (step >= 5) c.send("half a message\r\n");
    if (step >= 6) c.send("\r\n.");
    if (step >= 7) c.send("\r");
  }
  {
    Conn c(port());
    EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
    EXPECT_EQ(c.command("AUTH LOGIN"),
              "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
  }

  // Still serving, and nothing cut short was delivered.
  Conn c(port());
  login(c);
  EXPECT_EQ(transaction(c, "whole\r\n.\r\n"), kQueued);
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "whole\r\n");
}

TEST_F(SubmissionServerTest, idle_timeout_says_421) {
  SubmissionOptions o = default_options();
  o.idle_timeout = std::chrono::milliseconds(1000);
  start(o);
  {
    Conn c(port());
    EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
    EXPECT_EQ(c.reply(), "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
    EXPECT_TRUE(c.at_eof());
  }
  {
    Conn c(port());  // under TLS, in the middle of DATA
    login(c);
    EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), kMailOk);
    EXPECT_EQ(c.command("RCPT TO:<x@example.com>"), kRcptOk);
    EXPECT_EQ(c.command("DATA"), kGoAhead);
    c.send("a line\r\n");
    EXPECT_EQ(c.reply(), "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
    EXPECT_TRUE(c.at_eof());
  }
  EXPECT_TRUE(delivered().empty());
}

TEST_F(SubmissionServerTest, max_connections_refused_with_421) {
  SubmissionOptions o = default_options();
  o.max_connections = 2;
  start(o);
  Conn first(port());
  Conn second(port());
  EXPECT_EQ(first.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(second.reply(), "220 mx.example.test ESMTP\r\n");
  Conn third(port());
  EXPECT_EQ(third.reply(),
            "421 4.7.0 mx.example.test Error: too many connections, try again later\r\n");
  EXPECT_TRUE(third.at_eof());
  EXPECT_EQ(first.command("NOOP"), kOk);
}

TEST_F(SubmissionServerTest, the_project_client_sends_pipelined_over_tls) {
  start();
  asio::io_context client_io;
  Reply opened;
  Capabilities caps;
  std::vector<TransactionResult> results;
  testing::run_until_done(client_io, [&]() -> asio::awaitable<void> {
    ClientOptions o = testing::test_client_options();
    o.tls = TlsMode::kRequire;
    o.auth = Credentials{"u", "p"};
    SmtpClient client(client_io.get_executor(), o, nullptr);
    opened = co_await client.open("127.0.0.1", port());
    caps = client.capabilities();
    const std::vector<std::string> to = {"x@example.com", "y@example.com"};
    for (int i = 0; i < 5; ++i) {
      results.push_back(co_await client.send("a@example.com", to, testing::test_message(i)));
    }
    co_await client.close();
  });
  EXPECT_EQ(opened.code, 235);
  EXPECT_EQ(opened.stage, "auth");
  EXPECT_TRUE(caps.tls_active);
  EXPECT_TRUE(caps.pipelining);
  EXPECT_EQ(caps.size_limit, 10u * 1024 * 1024);
  EXPECT_EQ(caps.auth_mechanisms, (std::vector<std::string>{"PLAIN", "LOGIN"}));
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) EXPECT_EQ(r.dot.to_string(), "250 2.0.0 Ok: queued as 1");
  auto got = delivered();
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(got[i].data, testing::test_message(i));
}

TEST_F(SubmissionServerTest, self_signed_certificate_written_0600_and_reused) {
  TempDir dir;
  SubmissionOptions o = default_options();
  o.tls_cert_file = (dir.path() / "tls" / "cert.pem").string();
  o.tls_key_file = (dir.path() / "tls" / "key.pem").string();
  start(o);

  struct stat key_stat {
  }, cert_stat{};
  ASSERT_EQ(::stat(o.tls_key_file.c_str(), &key_stat), 0);
  ASSERT_EQ(::stat(o.tls_cert_file.c_str(), &cert_stat), 0);
  EXPECT_EQ(key_stat.st_mode & 0777, 0600u);
  EXPECT_EQ(cert_stat.st_mode & 0777, 0644u);
  std::string key_pem = read_file(o.tls_key_file);
  std::string cert_pem = read_file(o.tls_cert_file);
  EXPECT_TRUE(key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
  EXPECT_TRUE(cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path() / "tls"),
                          std::filesystem::directory_iterator()),
            2);  // no temporary file left behind

  // CN and subjectAltName are the hostname; an EC P-256 key.
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(cert, nullptr);
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, kHost);
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  ASSERT_NE(names, nullptr);
  ASSERT_EQ(sk_GENERAL_NAME_num(names), 1);
  const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, 0);
  ASSERT_EQ(name->type, GEN_DNS);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                        static_cast<size_t>(ASN1_STRING_length(name->d.dNSName))),
            kHost);
  GENERAL_NAMES_free(names);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(cert)), EVP_PKEY_EC);
  X509_free(cert);

  // The server presents it, and it verifies against itself as the trust anchor.
  {
    Conn c(port());
    EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
    EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
    ASSERT_TRUE(c.handshake(o.tls_cert_file));
    EXPECT_EQ(c.peer_certificate_pem(), cert_pem);
    EXPECT_TRUE(c.tls_version() == "TLSv1.3" || c.tls_version() == "TLSv1.2");
  }

  // The next start loads the same files and leaves them as they are.
  stop();
  start(o);
  EXPECT_EQ(read_file(o.tls_key_file), key_pem);
  EXPECT_EQ(read_file(o.tls_cert_file), cert_pem);
  Conn c(port());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake(o.tls_cert_file));
  EXPECT_EQ(c.peer_certificate_pem(), cert_pem);
}

TEST_F(SubmissionServerTest, start_refuses_bad_options_naming_the_field) {
  auto status_of = [&](SubmissionOptions o, SubmissionCallbacks c) {
    auto r = SubmissionServer::start(io_, std::move(o), std::move(c));
    return r.is_ok() ? std::string("ok") : r.status().message();
  };
  SubmissionCallbacks none;
  EXPECT_EQ(status_of(default_options(), none), "callbacks.authenticate is not set");
  SubmissionCallbacks partial = callbacks();
  partial.deliver = nullptr;
  EXPECT_EQ(status_of(default_options(), partial), "callbacks.deliver is not set");

  SubmissionOptions o = default_options();
  o.hostname = "mx.example.test\r\n250 injected";
  EXPECT_EQ(status_of(o, callbacks()),
            "hostname \"mx.example.test\\x0d\\x0a250 injected\" is not a host name (letters, "
            "digits, '-' and '.')");
  o = default_options();
  o.worker_threads = 0;
  EXPECT_EQ(status_of(o, callbacks()), "worker_threads must be at least 1");
  o = default_options();
  o.listen_host = "localhost";
  EXPECT_EQ(status_of(o, callbacks()), "listen_host is not an IP address: localhost");

  TempDir dir;
  o = default_options();
  o.tls_cert_file = (dir.path() / "cert.pem").string();
  EXPECT_EQ(status_of(o, callbacks()),
            "tls_key_file is empty while tls_cert_file is set: set both");
  o.tls_key_file = (dir.path() / "key.pem").string();
  { std::ofstream(o.tls_cert_file) << "not a certificate\n"; }
  EXPECT_EQ(status_of(o, callbacks()), "tls_key_file " + o.tls_key_file +
                                           " is missing while tls_cert_file " + o.tls_cert_file +
                                           " exists: provide it or remove both");
  { std::ofstream(o.tls_key_file) << "not a key\n"; }
  std::string garbage = status_of(o, callbacks());
  EXPECT_TRUE(garbage.starts_with("tls_cert_file " + o.tls_cert_file + ": not a PEM certificate: "))
      << garbage;
  EXPECT_EQ(read_file(o.tls_cert_file), "not a certificate\n");  // never replaced
}

TEST(ServerTlsTest, contexts_refuse_tls_below_1_2) {
  auto memory = internal::self_signed_tls_context(kHost, 1);
  ASSERT_TRUE(memory.is_ok()) << memory.status().message();
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*memory)->native_handle()), TLS1_2_VERSION);
  auto generated = internal::server_tls_context(kHost, "", "");
  ASSERT_TRUE(generated.is_ok()) << generated.status().message();
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*generated)->native_handle()), TLS1_2_VERSION);
}

TEST(Base64DecodeTest, strict) {
  std::string out;
  EXPECT_TRUE(internal::base64_decode("", out));
  EXPECT_EQ(out, "");
  EXPECT_TRUE(internal::base64_decode("AHUAcA==", out));
  EXPECT_EQ(out, std::string("\0u\0p", 4));
  EXPECT_TRUE(internal::base64_decode("dGVzdDE=", out));
  EXPECT_EQ(out, "test1");
  EXPECT_TRUE(internal::base64_decode("dGVzdDEy", out));
  EXPECT_EQ(out, "test12");
  for (const char* bad :
       {"dGVzdA", "dGVz dA==", "dGVzdA=\n", "dG=zdA==", "====", "dGVzd===", "dGVz*A=="}) {
    EXPECT_FALSE(internal::base64_decode(bad, out)) << bad;
  }
}

// --- The real clients. -----------------------------------------------------------------------

// Runs a shell command (bounded by timeout(1)) and returns its exit code and output.
std::pair<int, std::string> run(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(("timeout 60 " + command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

bool swaks_available() {
  return ::access("/usr/bin/swaks", X_OK) == 0 && run("perl -MNet::SSLeay -e 1").first == 0;
}

TEST_F(SubmissionServerTest, swaks_sends_with_starttls_and_auth) {
  if (!swaks_available()) GTEST_SKIP() << "/usr/bin/swaks with Net::SSLeay is not installed";
  start();
  for (const char* mechanism : {"PLAIN", "LOGIN"}) {
    auto [code, output] =
        run("/usr/bin/swaks --server 127.0.0.1:" + std::to_string(port()) + " --tls --auth " +
            mechanism +
            " --auth-user u --auth-password p --to x@example.com --from a@example.com"
            " --helo client.example --header 'Subject: from swaks'");
    EXPECT_EQ(code, 0) << output;
    EXPECT_NE(output.find("\n<~  250 2.0.0 Ok: queued as 1\n"), std::string::npos) << output;
  }
  auto [code, output] = run("/usr/bin/swaks --server 127.0.0.1:" + std::to_string(port()) +
                            " --tls --auth PLAIN --auth-user u --auth-password wrong"
                            " --to x@example.com --from a@example.com --helo client.example");
  EXPECT_NE(code, 0);
  EXPECT_NE(output.find("\n<~* 535 5.7.8 Authentication credentials invalid\n"), std::string::npos)
      << output;

  auto got = delivered();
  ASSERT_EQ(got.size(), 2u);
  for (const auto& e : got) {
    EXPECT_EQ(e.username, "u");
    EXPECT_EQ(e.mail_from, "a@example.com");
    EXPECT_EQ(e.rcpt_to, std::vector<std::string>{"x@example.com"});
    EXPECT_NE(e.data.find("\r\nSubject: from swaks\r\n"), std::string::npos) << e.data;
    EXPECT_TRUE(e.data.ends_with("\r\n"));
  }
}

TEST_F(SubmissionServerTest, python_smtplib_starttls_login_sendmail) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 is missing";
  TempDir dir;
  SubmissionOptions o = default_options();
  o.tls_cert_file = (dir.path() / "cert.pem").string();
  o.tls_key_file = (dir.path() / "key.pem").string();
  start(o);

  std::string script = (dir.path() / "send.py").string();
  std::ofstream(script) << R"(import smtplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=cafile)
context.check_hostname = False  # reached by IP address; the certificate is still verified
s = smtplib.SMTP('127.0.0.1', port, local_hostname='client.example', timeout=20)
s.ehlo()
print('before', sorted(s.esmtp_features))
s.starttls(context=context)
s.ehlo()
print('after', sorted(s.esmtp_features), s.esmtp_features['auth'].split())
try:
    s.login('u', 'wrong')
except smtplib.SMTPAuthenticationError as e:
    print('refused', e.smtp_code, e.smtp_error.decode())
s.login('u', 'p')
message = 'From: a@example.com\nTo: x@example.com\nSubject: from smtplib\n\n.dot line\nend\n'
print('sendmail', s.sendmail('a@example.com', ['x@example.com', 'y@example.com'], message))
try:
    s.sendmail('blocked@example.com', ['x@example.com'], message)
except smtplib.SMTPSenderRefused as e:
    print('sender', e.smtp_code, e.smtp_error.decode())
s.quit()
)";
  auto [code, output] =
      run("/usr/bin/python3 " + script + " " + std::to_string(port()) + " " + o.tls_cert_file);
  EXPECT_EQ(code, 0) << output;
  EXPECT_EQ(output,
            "before ['8bitmime', 'enhancedstatuscodes', 'pipelining', 'size', 'starttls']\n"
            "after ['8bitmime', 'auth', 'enhancedstatuscodes', 'pipelining', 'size'] ['PLAIN', "
            "'LOGIN']\n"
            "refused 535 5.7.8 Authentication credentials invalid\n"
            "sendmail {}\n"
            "sender 554 5.7.1 Email address is not verified.\n");
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].username, "u");
  EXPECT_EQ(got[0].rcpt_to, (std::vector<std::string>{"x@example.com", "y@example.com"}));
  EXPECT_EQ(got[0].data,
            "From: a@example.com\r\nTo: x@example.com\r\nSubject: from smtplib\r\n\r\n.dot "
            "line\r\nend\r\n");
}

// Inbound mode: the listener other MTAs bring DSNs and complaint reports to. The recipient
// policy below stands for the service's (VERP addresses and the feedback loop address of the
// bounce domain); the server only carries out what the callback says.
class InboundServerTest : public SubmissionServerTest {
 protected:
  static SubmissionOptions inbound_options() {
    SubmissionOptions o = default_options();
    o.mode = ServerMode::kInbound;
    return o;
  }

  SubmissionCallbacks inbound_callbacks() {
    SubmissionCallbacks c = callbacks();
    c.authenticate = [this](const std::string&, const std::string&) {
      std::lock_guard<std::mutex> lock(mu_);
      ++auth_calls_;
      return true;
    };
    c.check_sender = nullptr;
    c.check_recipient = [this](const std::string& from, const std::string& rcpt) {
      std::lock_guard<std::mutex> lock(mu_);
      recipients_asked_.push_back("<" + from + "> <" + rcpt + ">");
      if (rcpt == "throw@bounces.test") throw std::runtime_error("store down");
      if (!rcpt.ends_with("@bounces.test")) return Reply{550, "5.7.1", "Relay access denied"};
      if (rcpt.starts_with("bounce+") || rcpt == "fbl@bounces.test") {
        return Reply{250, "2.1.5", "Ok"};
      }
      return Reply{550, "5.1.1", "Recipient address rejected: User unknown"};
    };
    return c;
  }

  void start_inbound(SubmissionOptions options = inbound_options()) {
    start_inbound_with(std::move(options), inbound_callbacks());
  }
  void start_inbound_with(SubmissionOptions options, SubmissionCallbacks c) {
    auto started = SubmissionServer::start(io_, std::move(options), std::move(c));
    ASSERT_TRUE(started.is_ok()) << started.status().message();
    server_ = std::move(started).value();
    run_io();
  }

  static void greet(Conn& c, uint64_t size_limit = 10485760) {
    ASSERT_TRUE(c.connected());
    ASSERT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
    ASSERT_EQ(c.command("EHLO mta.example"), inbound_ehlo(false, size_limit));
  }

  static std::string inbound_ehlo(bool tls, uint64_t size_limit = 10485760) {
    return "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE " + std::to_string(size_limit) +
           "\r\n250-8BITMIME\r\n" +
           (tls ? "250 ENHANCEDSTATUSCODES\r\n" : "250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n");
  }

  std::vector<std::string> recipients_asked() {
    std::lock_guard<std::mutex> lock(mu_);
    return recipients_asked_;
  }

  std::vector<std::string> recipients_asked_;
};

const std::string kInboundMailOk = "250 2.1.0 Ok\r\n";
const std::string kRelayDenied = "550 5.7.1 Relay access denied\r\n";
const std::string kUserUnknown = "550 5.1.1 Recipient address rejected: User unknown\r\n";

TEST_F(InboundServerTest, ehlo_offers_starttls_and_no_auth) {
  start_inbound();
  Conn c(port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.reply(), "220 mx.example.test ESMTP\r\n");
  EXPECT_EQ(c.command("EHLO mta.example"),
            "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n"
            "250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n");
  EXPECT_EQ(c.command("HELO mta.example"), "250 mx.example.test\r\n");
  EXPECT_EQ(c.command("HELP"),
            "214 2.0.0 Commands: EHLO HELO STARTTLS MAIL RCPT DATA RSET NOOP VRFY QUIT\r\n");
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("EHLO mta.example"),
            "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n"
            "250 ENHANCEDSTATUSCODES\r\n");
  EXPECT_EQ(c.command("QUIT"), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(c.at_eof());
}

TEST_F(InboundServerTest, dsn_from_the_null_sender_delivered_with_its_envelope) {
  start_inbound();
  Conn c(port());
  greet(c);
  EXPECT_EQ(c.command("MAIL FROM:<>"), kInboundMailOk);
  EXPECT_EQ(c.command("RCPT TO:<victim@elsewhere.example>"), kRelayDenied);
  EXPECT_EQ(c.command("RCPT TO:<bounce+abc123@bounces.test>"), kRcptOk);
  EXPECT_EQ(c.command("RCPT TO:<nobody@bounces.test>"), kUserUnknown);
  EXPECT_EQ(c.command("DATA"), kGoAhead);
  c.send("From: MAILER-DAEMON@mta.example\r\nSubject: Undelivered Mail\r\n\r\n..dot\r\n.\r\n");
  EXPECT_EQ(c.reply(), kQueued);

  // A complaint report from a real sender to the feedback loop address, on the same connection.
  EXPECT_EQ(c.command("MAIL FROM:<fbl-reports@isp.example> BODY=7BIT SIZE=100"), kInboundMailOk);
  EXPECT_EQ(c.command("RCPT TO:<fbl@bounces.test>"), kRcptOk);
  EXPECT_EQ(c.command("DATA"), kGoAhead);
  c.send("Subject: abuse report\r\n\r\nreport\r\n.\r\n");
  EXPECT_EQ(c.reply(), kQueued);
  EXPECT_EQ(c.command("QUIT"), "221 2.0.0 Bye\r\n");

  EXPECT_EQ(recipients_asked(),
            (std::vector<std::string>{"<> <victim@elsewhere.example>",
                                      "<> <bounce+abc123@bounces.test>", "<> <nobody@bounces.test>",
                                      "<fbl-reports@isp.example> <fbl@bounces.test>"}));
  auto got = delivered();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].username, "");
  EXPECT_EQ(got[0].mail_from, "");
  EXPECT_EQ(got[0].rcpt_to, std::vector<std::string>{"bounce+abc123@bounces.test"});
  EXPECT_EQ(got[0].data,
            "From: MAILER-DAEMON@mta.example\r\nSubject: Undelivered Mail\r\n\r\n.dot\r\n");
  EXPECT_EQ(got[1].mail_from, "fbl-reports@isp.example");
  EXPECT_EQ(got[1].rcpt_to, std::vector<std::string>{"fbl@bounces.test"});
  EXPECT_EQ(got[1].data, "Subject: abuse report\r\n\r\nreport\r\n");
}

TEST_F(InboundServerTest, every_recipient_refused_leaves_nothing_to_send) {
  start_inbound();
  Conn c(port());
  greet(c);
  EXPECT_EQ(c.command("MAIL FROM:<>"), kInboundMailOk);
  EXPECT_EQ(c.command("RCPT TO:<a@elsewhere.example>"), kRelayDenied);
  EXPECT_EQ(c.command("RCPT TO:<postmaster@bounces.test>"), kUserUnknown);
  EXPECT_EQ(c.command("RCPT TO:<Postmaster>"), kRelayDenied);  // taken, and judged
  EXPECT_EQ(c.command("DATA"), "554 5.5.1 No valid recipients\r\n");
  // Recipients with a bad syntax or parameters never reach the callback.
  EXPECT_EQ(c.command("RCPT TO:<>"), "501 5.1.3 Bad recipient address syntax\r\n");
  EXPECT_EQ(c.command("RCPT TO:<bounce+x@bounces.test> NOTIFY=NEVER"),
            "555 5.5.4 RCPT TO parameters not recognized or not implemented\r\n");
  EXPECT_EQ(c.command("RSET"), kOk);
  EXPECT_EQ(c.command("RCPT TO:<bounce+x@bounces.test>"), "503 5.5.1 Need MAIL command\r\n");
  EXPECT_EQ(recipients_asked(),
            (std::vector<std::string>{"<> <a@elsewhere.example>", "<> <postmaster@bounces.test>",
                                      "<> <Postmaster>"}));
  EXPECT_TRUE(delivered().empty());
}

TEST_F(InboundServerTest, auth_is_not_a_command_here_502) {
  start_inbound();
  Conn c(port());
  greet(c);
  const std::string not_implemented = "502 5.5.1 Command not implemented\r\n";
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "p")), not_implemented);
  EXPECT_EQ(c.command("AUTH LOGIN"), not_implemented);  // no 334 prompt follows
  EXPECT_EQ(c.command(internal::base64_encode("u")), "500 5.5.2 Command not recognized\r\n");
  // The longer line limit of AUTH does not apply either.
  EXPECT_EQ(c.command("AUTH PLAIN " + std::string(1000, 'A')), "500 5.5.6 Line too long\r\n");
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.command("EHLO mta.example"), inbound_ehlo(true));
  EXPECT_EQ(c.command("AUTH PLAIN " + plain_token("", "u", "p")), not_implemented);
  EXPECT_EQ(c.command("MAIL FROM:<>"), kInboundMailOk);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(auth_calls_, 0);
}

TEST_F(InboundServerTest, transaction_over_starttls) {
  start_inbound();
  Conn c(port());
  greet(c);
  EXPECT_EQ(c.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
  ASSERT_TRUE(c.handshake());
  EXPECT_EQ(c.tls_version().substr(0, 6), "TLSv1.");
  EXPECT_EQ(c.command("EHLO mta.example"), inbound_ehlo(true));
  EXPECT_EQ(c.command("STARTTLS"), "503 5.5.1 TLS already active\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<>"), kInboundMailOk);
  EXPECT_EQ(c.command("RCPT TO:<bounce+tls@bounces.test>"), kRcptOk);
  EXPECT_EQ(c.command("DATA"), kGoAhead);
  c.send("Subject: over TLS\r\n\r\nbody\r\n.\r\n");
  EXPECT_EQ(c.reply(), kQueued);
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].rcpt_to, std::vector<std::string>{"bounce+tls@bounces.test"});
  EXPECT_EQ(got[0].data, "Subject: over TLS\r\n\r\nbody\r\n");
}

TEST_F(InboundServerTest, size_limit) {
  SubmissionOptions o = inbound_options();
  o.size_limit = 100;
  start_inbound(o);
  Conn c(port());
  greet(c, 100);
  EXPECT_EQ(c.command("MAIL FROM:<> SIZE=101"),
            "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<> SIZE=100"), kInboundMailOk);
  EXPECT_EQ(c.command("RCPT TO:<bounce+big@bounces.test>"), kRcptOk);
  EXPECT_EQ(c.command("DATA"), kGoAhead);
  c.send(std::string(99, 'x') + "\r\n.\r\n");
  EXPECT_EQ(c.reply(), "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<>"), kInboundMailOk);  // the transaction was reset
  EXPECT_EQ(c.command("RCPT TO:<bounce+small@bounces.test>"), kRcptOk);
  EXPECT_EQ(c.command("DATA"), kGoAhead);
  c.send(std::string(98, 'y') + "\r\n.\r\n");
  EXPECT_EQ(c.reply(), kQueued);
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, std::string(98, 'y') + "\r\n");
}

TEST_F(InboundServerTest, max_recipients_checked_before_the_callback) {
  SubmissionOptions o = inbound_options();
  o.max_recipients = 2;
  start_inbound(o);
  Conn c(port());
  greet(c);
  EXPECT_EQ(c.command("MAIL FROM:<>"), kInboundMailOk);
  EXPECT_EQ(c.command("RCPT TO:<bounce+1@bounces.test>"), kRcptOk);
  EXPECT_EQ(c.command("RCPT TO:<nobody@bounces.test>"), kUserUnknown);  // a refusal takes no slot
  EXPECT_EQ(c.command("RCPT TO:<bounce+2@bounces.test>"), kRcptOk);
  EXPECT_EQ(c.command("RCPT TO:<bounce+3@bounces.test>"), "452 4.5.3 Too many recipients\r\n");
  EXPECT_EQ(c.command("DATA"), kGoAhead);
  c.send("x\r\n.\r\n");
  EXPECT_EQ(c.reply(), kQueued);
  EXPECT_EQ(recipients_asked(),
            (std::vector<std::string>{"<> <bounce+1@bounces.test>", "<> <nobody@bounces.test>",
                                      "<> <bounce+2@bounces.test>"}));
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].rcpt_to,
            (std::vector<std::string>{"bounce+1@bounces.test", "bounce+2@bounces.test"}));
}

TEST_F(InboundServerTest, pipelined_recipients_answered_in_order) {
  start_inbound();
  Conn c(port());
  greet(c);
  c.send(
      "MAIL FROM:<>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<bounce+p@bounces.test>\r\n"
      "RCPT TO:<throw@bounces.test>\r\nDATA\r\n");
  EXPECT_EQ(c.reply(), kInboundMailOk);
  EXPECT_EQ(c.reply(), kRelayDenied);
  EXPECT_EQ(c.reply(), kRcptOk);
  EXPECT_EQ(c.reply(), "451 4.3.0 Local error in processing\r\n");  // the callback threw
  EXPECT_EQ(c.reply(), kGoAhead);
  c.send("pipelined\r\n.\r\nQUIT\r\n");
  EXPECT_EQ(c.reply(), kQueued);
  EXPECT_EQ(c.reply(), "221 2.0.0 Bye\r\n");
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].rcpt_to, std::vector<std::string>{"bounce+p@bounces.test"});
}

TEST_F(InboundServerTest, check_sender_when_set_sees_no_user) {
  SubmissionCallbacks cb = inbound_callbacks();
  cb.check_sender = [this](const std::string& user, const std::string& from) {
    std::lock_guard<std::mutex> lock(mu_);
    senders_.push_back("[" + user + "] <" + from + ">");
    if (from == "spammer@bad.example") return Reply{550, "5.7.1", "Sender refused"};
    return Reply{250, "2.1.0", "Sender ok"};
  };
  start_inbound_with(inbound_options(), cb);
  Conn c(port());
  greet(c);
  EXPECT_EQ(c.command("MAIL FROM:<spammer@bad.example>"), "550 5.7.1 Sender refused\r\n");
  EXPECT_EQ(c.command("MAIL FROM:<>"), kMailOk);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(senders_, (std::vector<std::string>{"[] <spammer@bad.example>", "[] <>"}));
}

// A submission server may judge recipients too; without the callback every one is taken.
TEST_F(InboundServerTest, check_recipient_also_judges_submission_recipients) {
  SubmissionCallbacks cb = callbacks();
  cb.check_recipient = [](const std::string& from, const std::string& rcpt) {
    if (rcpt == "no@example.com") return Reply{550, "5.1.1", "no for " + from};
    return Reply{250, "2.1.5", "Ok"};
  };
  start_inbound_with(default_options(), cb);
  Conn c(port());
  login(c);
  EXPECT_EQ(c.command("MAIL FROM:<a@example.com>"), kMailOk);
  EXPECT_EQ(c.command("RCPT TO:<no@example.com>"), "550 5.1.1 no for a@example.com\r\n");
  EXPECT_EQ(c.command("RCPT TO:<yes@example.com>"), kRcptOk);
}

TEST_F(InboundServerTest, start_names_the_missing_callback) {
  auto status_of = [&](SubmissionOptions o, SubmissionCallbacks c) {
    auto r = SubmissionServer::start(io_, std::move(o), std::move(c));
    return r.is_ok() ? std::string("ok") : r.status().message();
  };
  SubmissionCallbacks cb = inbound_callbacks();
  cb.check_recipient = nullptr;
  EXPECT_EQ(status_of(inbound_options(), cb),
            "callbacks.check_recipient is not set (required in inbound mode)");
  cb = inbound_callbacks();
  cb.deliver = nullptr;
  EXPECT_EQ(status_of(inbound_options(), cb), "callbacks.deliver is not set");
  // authenticate and check_sender are not needed.
  SubmissionCallbacks minimal;
  minimal.check_recipient = [](const std::string&, const std::string&) { return Reply{}; };
  minimal.deliver = [](SubmissionEnvelope) { return Reply{}; };
  EXPECT_EQ(status_of(inbound_options(), minimal), "ok");
  SubmissionOptions o = inbound_options();
  o.mode = static_cast<ServerMode>(7);
  EXPECT_EQ(status_of(o, minimal), "mode is not kSubmission or kInbound");
}

TEST_F(InboundServerTest, python_smtplib_sends_a_dsn_from_the_null_sender) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 is missing";
  TempDir dir;
  start_inbound();
  std::string script = (dir.path() / "send.py").string();
  std::ofstream(script) << R"(import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='mta.example', timeout=20)
s.ehlo()
print('features', sorted(s.esmtp_features))
message = 'From: MAILER-DAEMON@mta.example\nSubject: failure\n\nreport\n'
refused = s.sendmail('', ['bounce+py@bounces.test', 'x@elsewhere.example'], message)
print('refused', {k: (v[0], v[1].decode()) for k, v in refused.items()})
try:
    s.sendmail('', ['x@elsewhere.example'], message)
except smtplib.SMTPRecipientsRefused as e:
    print('all refused', {k: (v[0], v[1].decode()) for k, v in e.recipients.items()})
s.quit()
)";
  auto [code, output] = run("/usr/bin/python3 " + script + " " + std::to_string(port()));
  EXPECT_EQ(code, 0) << output;
  EXPECT_EQ(output,
            "features ['8bitmime', 'enhancedstatuscodes', 'pipelining', 'size', 'starttls']\n"
            "refused {'x@elsewhere.example': (550, '5.7.1 Relay access denied')}\n"
            "all refused {'x@elsewhere.example': (550, '5.7.1 Relay access denied')}\n");
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].mail_from, "");
  EXPECT_EQ(got[0].rcpt_to, std::vector<std::string>{"bounce+py@bounces.test"});
  EXPECT_EQ(got[0].data, "From: MAILER-DAEMON@mta.example\r\nSubject: failure\r\n\r\nreport\r\n");
}

// The peer inbound mode is for: a real Postfix (a private instance from
// tests/integration/postfix_peer.py) accepts a message for an unknown user, bounces it with
// local(8)'s "unknown user", and delivers its own DSN from the null sender to this listener,
// over STARTTLS. The script waits (bounded) until Postfix logs the DSN as sent.
TEST_F(InboundServerTest, real_postfix_delivers_its_dsn_over_starttls) {
  if (::access("/usr/sbin/postfix", X_OK) != 0) GTEST_SKIP() << "/usr/sbin/postfix is missing";
  if (::geteuid() != 0) GTEST_SKIP() << "a private Postfix instance needs root to start";
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 is missing";
  TempDir dir;
  start_inbound();

  std::string script = (dir.path() / "peer.py").string();
  std::ofstream(script) << R"(import sys, time, smtplib
sys.path.insert(0, sys.argv[1])
import postfix_peer
feedback = int(sys.argv[2])
with postfix_peer.PostfixPeer(smtp_tls='may') as peer:
    port = peer.start(feedback)
    message = ('From: sender@sender.example\r\nTo: unknown@rcpt.test\r\n'
               'Subject: to nobody\r\nMessage-ID: <pf-1@sender.example>\r\n\r\nbody\r\n')
    with smtplib.SMTP('127.0.0.1', port, local_hostname='client.example', timeout=30) as s:
        print('refused', s.sendmail('bounce+abc123@bounces.test', ['unknown@rcpt.test'], message))
    sent = 'to=<bounce+abc123@bounces.test>, relay=127.0.0.1[127.0.0.1]:%d' % feedback
    def dsn_lines():
        return [l for l in peer.log().splitlines() if sent in l]
    end = time.time() + 60
    while time.time() < end and not dsn_lines():
        time.sleep(0.2)
        peer.flush()
    print('dsn', [l[l.index('status='):] for l in dsn_lines()])
    print('tls', 'TLS connection established to 127.0.0.1[127.0.0.1]:%d' % feedback in peer.log())
    if not dsn_lines():
        print(peer.log())
)";
  std::string peer_dir = std::string(MAGNETIC_SOURCE_DIR) + "/tests/integration";
  auto [code, output] =
      run("/usr/bin/python3 " + script + " " + peer_dir + " " + std::to_string(port()));
  EXPECT_EQ(code, 0) << output;
  EXPECT_EQ(output,
            "refused {}\n"
            "dsn ['status=sent (250 2.0.0 Ok: queued as 1)']\n"
            "tls True\n");

  EXPECT_EQ(recipients_asked(), std::vector<std::string>{"<> <bounce+abc123@bounces.test>"});
  auto got = delivered();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].username, "");
  EXPECT_EQ(got[0].mail_from, "");
  EXPECT_EQ(got[0].rcpt_to, std::vector<std::string>{"bounce+abc123@bounces.test"});
  const std::string& dsn = got[0].data;
  for (const char* line :
       {"\r\nSubject: Undelivered Mail Returned to Sender\r\n",
        "\r\nTo: bounce+abc123@bounces.test\r\n", "\r\nContent-Type: message/delivery-status\r\n",
        "\r\nReporting-MTA: dns; mta.rcpt.test\r\n",
        "\r\nFinal-Recipient: rfc822; unknown@rcpt.test\r\n", "\r\nAction: failed\r\n",
        "\r\nStatus: 5.1.1\r\n", "\r\nDiagnostic-Code: X-Postfix; unknown user: \"unknown\"\r\n",
        "\r\nContent-Type: message/rfc822\r\n", "\r\nMessage-ID: <pf-1@sender.example>\r\n"}) {
    EXPECT_NE(dsn.find(line), std::string::npos) << "missing " << line << " in\n" << dsn;
  }
}

}  // namespace
}  // namespace magnetic::smtp
