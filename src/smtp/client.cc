// SMTP client session: strategy.
//
// System calls per message are what limits throughput on loopback, so a transaction is two
// writes: with PIPELINING, [RSET] MAIL, every RCPT and DATA go in one write and their replies
// are parsed from as few reads as the server's batching allows; after 354 the dot-stuffed body
// and the final dot go in a second write. Without PIPELINING every command waits for its reply.
// A failed transaction leaves need_rset_ set and the next one starts with RSET, in the same
// write as its MAIL when pipelining.
//
// Timeouts: one steady_timer per connection serves every operation. Re-arming a timer per
// read would cost a timerfd_settime per SMTP round, so the timer is armed lazily: each
// operation only records its deadline, and the timer, armed at most once per shortest timeout,
// checks on expiry whether the pending operation is past its deadline (then it cancels the
// socket and the operation reports "timeout") or re-arms for the rest.
//
// Measured with strace over loopback: per pipelined message each side makes 2 sends, 2 reads
// that return data, 2 that find nothing yet (Asio tries a read before it waits in epoll) and 2
// epoll_waits, and no timer calls.
//
// Written by hand because no packaged library fits: libcurl's SMTP does one message per
// transfer without control over pipelining or per-recipient replies, and libesmtp blocks.
//
// TODO: no CHUNKING (BDAT) and no DSN parameters (NOTIFY, RET, ENVID) yet; DSN requests from
// the SES API need them. TLS ends without close_notify (the TCP connection closes after QUIT).
#include "smtp/client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>

#include "base/log.h"
#include "smtp/stream.h"

namespace magnetic::smtp {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxReplySize = 64 * 1024;  // a reply longer than this is a broken server

// Length of the first complete reply at the start of in, 0 when more input is needed, or npos
// when the input cannot be a reply.
size_t complete_reply_length(std::string_view in) {
  size_t pos = 0;
  while (pos < in.size()) {
    size_t eol = in.find('\n', pos);
    if (eol == std::string_view::npos) return 0;
    std::string_view line = in.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() < 3) return std::string_view::npos;
    if (line.size() == 3 || line[3] != '-') return eol + 1;
    pos = eol + 1;
  }
  return 0;
}

bool has_8bit(std::string_view s) {
  // Eight bytes at a time: this runs over every message body.
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    if (word & 0x8080808080808080ULL) return true;
    p += 8;
    n -= 8;
  }
  for (; n > 0; --n, ++p) {
    if (static_cast<unsigned char>(*p) >= 0x80) return true;
  }
  return false;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Reply make_reply(int code, std::string enhanced, std::string text, std::string stage) {
  Reply r;
  r.code = code;
  r.enhanced = std::move(enhanced);
  r.text = std::move(text);
  r.stage = std::move(stage);
  return r;
}

}  // namespace

struct SmtpClient::Impl {
  Impl(asio::any_io_executor ex, ClientOptions opts, std::shared_ptr<asio::ssl::context> ctx)
      : executor(ex), options(std::move(opts)), tls_context(std::move(ctx)), timer(ex) {
    const Timeouts& t = options.timeouts;
    shortest_timeout =
        std::min({t.connect, t.greeting, t.command, t.data_init, t.data_block, t.data_term});
    if (shortest_timeout < seconds(1)) shortest_timeout = seconds(1);
  }

  asio::any_io_executor executor;
  ClientOptions options;
  std::shared_ptr<asio::ssl::context> tls_context;
  std::unique_ptr<internal::Stream> stream;
  tcp::resolver* resolver = nullptr;  // while resolving, for the timeout to cancel
  internal::InBuffer in;
  std::string out;   // the commands of one write
  std::string body;  // the dot-stuffed message
  Capabilities caps;
  bool size_offered = false;
  bool usable = false;
  bool need_rset = false;
  int transactions = 0;
  std::string host;

  // The lazy deadline (see the note at the top).
  asio::steady_timer timer;
  Clock::time_point deadline;
  seconds shortest_timeout{1};
  bool op_pending = false;
  bool timer_armed = false;
  bool timed_out = false;
  std::shared_ptr<int> alive = std::make_shared<int>(0);  // guards timer callbacks

  void begin_op(seconds timeout) {
    deadline = Clock::now() + timeout;
    op_pending = true;
    timed_out = false;
    if (!timer_armed || timer.expiry() > deadline) arm_timer();
  }
  void end_op() { op_pending = false; }

  void arm_timer() {
    timer_armed = true;
    timer.expires_at(std::min(deadline, Clock::now() + shortest_timeout));
    timer.async_wait([this, guard = std::weak_ptr<int>(alive)](boost::system::error_code ec) {
      if (ec || guard.expired()) return;  // re-armed, cancelled, or the client is gone
      timer_armed = false;
      if (!op_pending) return;
      if (Clock::now() >= deadline) {
        timed_out = true;
        if (stream) stream->cancel();
        if (resolver) resolver->cancel();
      } else {
        arm_timer();
      }
    });
  }

  // Closes the connection; the client is unusable from here on.
  void drop() {
    usable = false;
    if (stream) stream->close();
    timer.cancel();
    timer_armed = false;
    in.clear();
  }

  Reply io_failure(const char* stage, const boost::system::error_code& ec) {
    std::string text;
    if (timed_out) {
      text = "timeout";
    } else if (ec == asio::error::eof) {
      text = "connection closed by the server";
    } else {
      text = ec.message();
    }
    logger("smtp")->debug("{} {}: {}", host, stage, text);
    drop();
    return make_reply(0, "", std::move(text), stage);
  }

  // Reads one reply. A failure to read is a Reply with code 0; 421 also closes the connection.
  awaitable<Reply> read_reply(const char* stage, seconds timeout) {
    for (;;) {
      std::string_view view = in.view();
      size_t n = complete_reply_length(view);
      if (n == std::string_view::npos || (n == 0 && view.size() > kMaxReplySize)) {
        std::string shown(view.substr(0, std::min<size_t>(view.find('\n'), 200)));
        if (!shown.empty() && shown.back() == '\r') shown.pop_back();
        drop();
        co_return make_reply(0, "", "malformed reply: " + shown, stage);
      }
      if (n > 0) {
        Reply reply;
        bool ok = parse_reply(view.substr(0, n), reply);
        if (!ok) {
          std::string shown(view.substr(0, std::min<size_t>(n, 200)));
          while (!shown.empty() && (shown.back() == '\r' || shown.back() == '\n')) {
            shown.pop_back();
          }
          drop();
          co_return make_reply(0, "", "malformed reply: " + shown, stage);
        }
        in.consume(n);
        reply.stage = stage;
        if (reply.code == 421) drop();
        co_return reply;
      }
      if (!stream || !stream->is_open()) co_return make_reply(0, "", "not connected", stage);

      boost::system::error_code ec;
      asio::mutable_buffer space = in.prepare(4096);
      begin_op(timeout);
      size_t got = co_await stream->read_some(space, ec);
      end_op();
      if (ec || timed_out) co_return io_failure(stage, ec);
      in.commit(got);
    }
  }

  // Writes data; returns a Reply with code 0 on failure, nullopt on success.
  awaitable<std::optional<Reply>> write(std::string_view data, const char* stage, seconds timeout) {
    if (!stream || !stream->is_open()) co_return make_reply(0, "", "not connected", stage);
    boost::system::error_code ec;
    begin_op(timeout);
    co_await stream->write(asio::buffer(data), ec);
    end_op();
    if (ec || timed_out) co_return io_failure(stage, ec);
    co_return std::nullopt;
  }

  awaitable<Reply> command(std::string_view line, const char* stage, seconds timeout) {
    out.assign(line);
    out += "\r\n";
    if (auto failed = co_await write(out, stage, timeout)) co_return *failed;
    co_return co_await read_reply(stage, timeout);
  }

  // Ends a connection that failed during open: QUIT without waiting, then close.
  awaitable<Reply> fail_open(Reply reply) {
    if (stream && stream->is_open() && reply.code != 0 && reply.code != 421) {
      boost::system::error_code ec;
      static constexpr std::string_view kQuit = "QUIT\r\n";
      begin_op(seconds(5));
      co_await stream->write(asio::buffer(kQuit), ec);
      end_op();
    }
    drop();
    co_return reply;
  }

  void parse_capabilities(const Reply& ehlo) {
    bool tls_active = caps.tls_active;
    caps = Capabilities{};
    caps.esmtp = true;
    caps.tls_active = tls_active;
    size_offered = false;

    std::string_view text = ehlo.text;
    size_t eol = text.find('\n');
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    while (!text.empty()) {
      eol = text.find('\n');
      std::string_view line = text.substr(0, eol);
      text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);

      size_t split = line.find_first_of(" =");
      std::string_view keyword = line.substr(0, split);
      std::string_view args = split == std::string_view::npos ? "" : line.substr(split + 1);
      if (iequals(keyword, "PIPELINING")) {
        caps.pipelining = true;
      } else if (iequals(keyword, "STARTTLS")) {
        caps.starttls = true;
      } else if (iequals(keyword, "8BITMIME")) {
        caps.eightbitmime = true;
      } else if (iequals(keyword, "SMTPUTF8")) {
        caps.smtputf8 = true;
      } else if (iequals(keyword, "SIZE")) {
        size_offered = true;
        uint64_t limit = 0;
        for (char c : args) {
          if (c < '0' || c > '9') break;
          limit = limit * 10 + static_cast<uint64_t>(c - '0');
        }
        caps.size_limit = limit;
      } else if (iequals(keyword, "AUTH")) {
        while (!args.empty()) {
          size_t space = args.find(' ');
          std::string_view mech = args.substr(0, space);
          args = space == std::string_view::npos ? "" : args.substr(space + 1);
          if (mech.empty()) continue;
          std::string name = upper(mech);
          if (std::find(caps.auth_mechanisms.begin(), caps.auth_mechanisms.end(), name) ==
              caps.auth_mechanisms.end()) {
            caps.auth_mechanisms.push_back(std::move(name));
          }
        }
      }
    }
  }

  // EHLO, or HELO when EHLO is refused for good (500, 502 and other 5xx).
  awaitable<Reply> hello() {
    const seconds t = options.timeouts.command;
    Reply reply = co_await command("EHLO " + options.ehlo_name, "ehlo", t);
    if (reply.positive()) {
      parse_capabilities(reply);
      co_return reply;
    }
    if (!reply.permanent()) co_return reply;
    reply = co_await command("HELO " + options.ehlo_name, "ehlo", t);
    if (reply.positive()) {
      bool tls_active = caps.tls_active;
      caps = Capabilities{};
      caps.tls_active = tls_active;
      size_offered = false;
    }
    co_return reply;
  }

  awaitable<Reply> starttls() {
    Reply reply = co_await command("STARTTLS", "starttls", options.timeouts.command);
    if (reply.code != 220) co_return reply;

    // Anything the server sent after its 220 predates TLS and must not be trusted.
    in.clear();
    if (!tls_context) {
      tls_context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
      tls_context->set_default_verify_paths();
    }
    boost::system::error_code addr_ec;
    asio::ip::make_address(host, addr_ec);
    std::string sni = addr_ec ? host : std::string();
    boost::system::error_code ec;
    begin_op(options.timeouts.command);
    co_await stream->handshake(*tls_context, asio::ssl::stream_base::client,
                               options.verify_certificate ? host : sni, options.verify_certificate,
                               ec);
    end_op();
    if (ec || timed_out) {
      Reply failed = io_failure("starttls", ec);
      if (failed.text != "timeout") failed.text = "TLS handshake failed: " + failed.text;
      co_return failed;
    }
    caps.tls_active = true;
    co_return make_reply(220, "", "TLS active", "starttls");
  }

  awaitable<Reply> authenticate(const Credentials& creds) {
    const seconds t = options.timeouts.command;
    auto offered = [&](std::string_view mech) {
      return std::find(caps.auth_mechanisms.begin(), caps.auth_mechanisms.end(), mech) !=
             caps.auth_mechanisms.end();
    };

    // Success is any 2xx: RFC 4954 says 235, but some servers (smtp-sink) answer 250.
    if (offered("PLAIN")) {
      std::string token;
      token += '\0';
      token += creds.username;
      token += '\0';
      token += creds.password;
      co_return co_await command("AUTH PLAIN " + internal::base64_encode(token), "auth", t);
    }
    if (offered("LOGIN")) {
      Reply reply = co_await command("AUTH LOGIN", "auth", t);
      if (reply.code != 334) co_return reply;
      reply = co_await command(internal::base64_encode(creds.username), "auth", t);
      if (reply.code != 334) co_return reply;
      co_return co_await command(internal::base64_encode(creds.password), "auth", t);
    }
    std::string have;
    for (const auto& m : caps.auth_mechanisms) have += (have.empty() ? "" : " ") + m;
    co_return make_reply(454, "4.7.0",
                         "no supported AUTH mechanism offered (PLAIN, LOGIN); server offers: " +
                             (have.empty() ? std::string("none") : have),
                         "auth");
  }

  awaitable<Reply> open(std::string host_name, uint16_t port) {
    host = std::move(host_name);
    caps = Capabilities{};
    need_rset = false;
    in.clear();
    stream = std::make_unique<internal::Stream>(tcp::socket(executor));

    // Connect: an IP literal directly, a name through the system resolver.
    boost::system::error_code ec;
    begin_op(options.timeouts.connect);
    asio::ip::address address = asio::ip::make_address(host, ec);
    if (!ec) {
      co_await stream->socket().async_connect(tcp::endpoint(address, port),
                                              asio::redirect_error(asio::use_awaitable, ec));
    } else {
      tcp::resolver res(executor);
      resolver = &res;
      auto endpoints = co_await res.async_resolve(host, std::to_string(port),
                                                  asio::redirect_error(asio::use_awaitable, ec));
      resolver = nullptr;
      if (!ec && !timed_out) {
        co_await asio::async_connect(stream->socket(), endpoints,
                                     asio::redirect_error(asio::use_awaitable, ec));
      }
    }
    end_op();
    if (ec || timed_out) co_return io_failure("connect", ec);
    boost::system::error_code ignored;
    stream->socket().set_option(tcp::no_delay(true), ignored);  // each write is a whole round
    usable = true;

    Reply reply = co_await read_reply("greeting", options.timeouts.greeting);
    if (!reply.positive()) co_return co_await fail_open(std::move(reply));

    reply = co_await hello();
    if (!reply.positive()) co_return co_await fail_open(std::move(reply));

    // STARTTLS per the mode, then EHLO again: capabilities may differ under TLS.
    if (options.tls != TlsMode::kOff) {
      if (caps.starttls) {
        Reply tls = co_await starttls();
        if (tls.code == 220) {
          reply = co_await hello();
          if (!reply.positive()) co_return co_await fail_open(std::move(reply));
        } else if (options.tls == TlsMode::kRequire || !usable) {
          co_return co_await fail_open(std::move(tls));
        }
      } else if (options.tls == TlsMode::kRequire) {
        co_return co_await fail_open(make_reply(
            454, "4.7.4", "TLS is required, but the server did not offer STARTTLS", "starttls"));
      }
    }

    if (options.auth) {
      reply = co_await authenticate(*options.auth);
      if (!reply.positive()) co_return co_await fail_open(std::move(reply));
    }
    co_return reply;
  }

  awaitable<TransactionResult> send(std::string_view mail_from,
                                    const std::vector<std::string>& rcpt_to,
                                    std::string_view message) {
    TransactionResult result;
    result.mail.stage = "mail";
    result.data.stage = "data";
    result.dot.stage = "dot";
    result.rcpts.resize(rcpt_to.size());
    for (Reply& r : result.rcpts) {
      r.stage = "rcpt";
      r.text = "not sent";
    }
    if (!usable) {
      result.mail.text = "connection not usable";
      co_return result;
    }
    if (rcpt_to.empty()) {
      result.mail.text = "no recipients";
      co_return result;
    }
    ++transactions;
    if (caps.size_limit > 0 && message.size() > caps.size_limit) {
      result.mail = make_reply(552, "5.3.4",
                               "message size exceeds the server's limit of " +
                                   std::to_string(caps.size_limit) + " bytes",
                               "mail");
      co_return result;
    }

    // The MAIL command with the parameters the server offers and the message needs.
    std::string mail = "MAIL FROM:<";
    mail.append(mail_from);
    mail += '>';
    if (size_offered) mail += " SIZE=" + std::to_string(message.size());
    if (caps.eightbitmime && has_8bit(message)) mail += " BODY=8BITMIME";
    if (caps.smtputf8) {
      bool utf8 = has_8bit(mail_from);
      for (const auto& r : rcpt_to) utf8 = utf8 || has_8bit(r);
      if (utf8) mail += " SMTPUTF8";
    }

    if (caps.pipelining) {
      co_await send_pipelined(mail, rcpt_to, message, result);
    } else {
      co_await send_in_lockstep(mail, rcpt_to, message, result);
    }
    co_return result;
  }

  awaitable<void> send_pipelined(const std::string& mail, const std::vector<std::string>& rcpt_to,
                                 std::string_view message, TransactionResult& result) {
    const seconds t = options.timeouts.command;

    // One write: [RSET] MAIL, every RCPT, DATA (RFC 2920: DATA ends the group).
    out.clear();
    bool rset = need_rset;
    if (rset) out += "RSET\r\n";
    out += mail;
    out += "\r\n";
    for (const auto& r : rcpt_to) {
      out += "RCPT TO:<";
      out += r;
      out += ">\r\n";
    }
    out += "DATA\r\n";
    if (auto failed = co_await write(out, "mail", t)) {
      result.mail = std::move(*failed);
      co_return;
    }

    if (rset) {
      Reply reply = co_await read_reply("rset", t);
      if (!reply.positive()) {
        // The server's state is unknown: the rest of the group cannot be trusted.
        result.mail = std::move(reply);
        drop();
        co_return;
      }
      need_rset = false;
    }
    result.mail = co_await read_reply("mail", t);
    if (!usable) co_return;
    size_t accepted = 0;
    for (Reply& r : result.rcpts) {
      r = co_await read_reply("rcpt", t);
      if (!usable) co_return;
      if (r.positive()) ++accepted;
    }
    result.data = co_await read_reply("data", options.timeouts.data_init);
    if (!usable) co_return;
    if (result.data.code != 354) {
      // 554/503 to DATA when no recipient was accepted: the MAIL (if taken) is still open.
      need_rset = result.mail.positive();
      co_return;
    }
    if (!result.mail.positive() || accepted == 0) {
      // A server that says 354 without recipients: end the data at once, never send the body.
      if (auto failed = co_await write(".\r\n", "dot", options.timeouts.data_block)) {
        result.dot = std::move(*failed);
        co_return;
      }
      result.final_dot_sent = true;
      result.dot = co_await read_reply("dot", options.timeouts.data_term);
      need_rset = true;
      co_return;
    }
    co_await send_body(message, result);
  }

  awaitable<void> send_in_lockstep(const std::string& mail, const std::vector<std::string>& rcpt_to,
                                   std::string_view message, TransactionResult& result) {
    const seconds t = options.timeouts.command;
    if (need_rset) {
      Reply reply = co_await command("RSET", "rset", t);
      if (!reply.positive()) {
        result.mail = std::move(reply);
        drop();
        co_return;
      }
      need_rset = false;
    }

    result.mail = co_await command(mail, "mail", t);
    if (!result.mail.positive()) co_return;
    size_t accepted = 0;
    for (size_t i = 0; i < rcpt_to.size(); ++i) {
      result.rcpts[i] = co_await command("RCPT TO:<" + rcpt_to[i] + ">", "rcpt", t);
      if (!usable) co_return;
      if (result.rcpts[i].positive()) ++accepted;
    }
    if (accepted == 0) {
      result.data.text = "not sent: no recipient accepted";
      need_rset = true;
      co_return;
    }
    result.data = co_await command("DATA", "data", options.timeouts.data_init);
    if (!usable) co_return;
    if (result.data.code != 354) {
      need_rset = true;
      co_return;
    }
    co_await send_body(message, result);
  }

  // After 354: the stuffed body and the final dot in one write, then the reply to the dot.
  awaitable<void> send_body(std::string_view message, TransactionResult& result) {
    body.clear();
    dot_stuff(message, body);
    if (auto failed = co_await write(body, "dot", options.timeouts.data_block)) {
      result.dot = std::move(*failed);
      co_return;
    }
    result.final_dot_sent = true;
    result.dot = co_await read_reply("dot", options.timeouts.data_term);
    // After the reply to the dot the server has ended the transaction either way.
    need_rset = false;
  }

  awaitable<void> close() {
    if (usable && stream && stream->is_open()) {
      seconds t = std::min(options.timeouts.command, seconds(10));
      Reply reply = co_await command("QUIT", "quit", t);
      (void)reply;
    }
    drop();
  }
};

SmtpClient::SmtpClient(asio::any_io_executor executor, ClientOptions options,
                       std::shared_ptr<asio::ssl::context> tls_context)
    : impl_(std::make_unique<Impl>(executor, std::move(options), std::move(tls_context))) {}

SmtpClient::~SmtpClient() = default;

awaitable<Reply> SmtpClient::open(std::string host, uint16_t port) {
  return impl_->open(std::move(host), port);
}

awaitable<TransactionResult> SmtpClient::send(std::string_view mail_from,
                                              const std::vector<std::string>& rcpt_to,
                                              std::string_view message) {
  return impl_->send(mail_from, rcpt_to, message);
}

awaitable<void> SmtpClient::close() { return impl_->close(); }

bool SmtpClient::usable() const { return impl_->usable; }
const Capabilities& SmtpClient::capabilities() const { return impl_->caps; }
int SmtpClient::transactions() const { return impl_->transactions; }

void dot_stuff(std::string_view message, std::string& out) {
  out.reserve(out.size() + message.size() + message.size() / 256 + 8);
  size_t pos = 0;
  while (pos < message.size()) {
    // pos is at a line start here.
    if (message[pos] == '.') out += '.';
    size_t eol = message.find('\n', pos);
    size_t end = eol == std::string_view::npos ? message.size() : eol + 1;
    out.append(message.data() + pos, end - pos);
    pos = end;
  }
  bool ends_with_crlf = message.size() >= 2 && message[message.size() - 2] == '\r' &&
                        message[message.size() - 1] == '\n';
  if (!ends_with_crlf) out += "\r\n";
  out += ".\r\n";
}

const Reply& deciding_reply(const TransactionResult& r) {
  if (!r.mail.positive()) return r.mail;
  if (r.rcpts.empty() || !r.rcpts[0].positive()) return r.rcpts.empty() ? r.mail : r.rcpts[0];
  if (r.data.code != 354) return r.data;
  return r.dot;
}

}  // namespace magnetic::smtp
