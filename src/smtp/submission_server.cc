// SMTP submission server: strategy.
//
// One coroutine per connection, each on its own strand, reading whatever the kernel has into
// one buffer and answering every complete command in it before writing the replies of the group
// at once (RFC 2920), like the capture sink. Unlike the sink, a command may wait for a callback
// (authenticate, check_sender, deliver): the callback runs on the server's thread pool and the
// coroutine is resumed on its strand when it returns, so a slow spool never holds an io thread.
// Commands are handled strictly in order, so replies stay in order under pipelining.
//
// The state machine, in the order a client meets it:
//   greeting -> EHLO -> STARTTLS -> (handshake; everything read before it is thrown away and
//   the session starts over: RFC 3207 section 4.2) -> EHLO -> AUTH -> MAIL -> RCPT... -> DATA.
// AUTH is refused before TLS (538) and MAIL before AUTH (530), so no unauthenticated client can
// name a recipient: the server is never an open relay.
//
// Inbound mode is the same session with the AUTH step taken out: EHLO offers STARTTLS but no
// AUTH, MAIL is taken from any client, and check_recipient stands where AUTH stood, judging
// every RCPT before it joins the transaction. It is one code path with a mode test at those
// three places rather than a second session class, so the parsing, limits, pipelining and the
// anti-smuggling rule below cannot drift apart between the two listeners.
//
// Line ends: commands and message lines may end in CRLF or a bare LF; a bare LF in the message
// becomes CRLF. Only CRLF "." CRLF ends the data, the way Postfix's "normalize" setting reads
// it: a "." line next to a bare LF is content. A server that also ended the data there would
// let a client hide a second message inside the first (SMTP smuggling).
//
// Limits: command lines 512 octets (RFC 5321 4.5.3.1.4), AUTH lines 12288 (RFC 4954 4); a
// longer line is answered 500 and skipped up to its end without being buffered. Message lines
// are unlimited (read in pieces); the message size is counted as it arrives, after the
// dot-stuffing is removed, and once over the limit the rest is read and dropped. 3 failed AUTH
// and 20 errors of syntax end the connection with 421, as does the idle timeout.
#include "smtp/submission_server.h"

#include "smtp/stream.h"  // first: it fixes an include order problem of Boost 1.74

#include <openssl/crypto.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "base/log.h"
#include "smtp/server_tls.h"

namespace magnetic::smtp {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;

namespace {

constexpr size_t kCommandLineLimit = 512;  // CRLF included
constexpr size_t kAuthLineLimit = 12288;
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kDataPiece = 32 * 1024;  // a longer message line is taken in pieces
constexpr size_t kMaxAddress = 254;       // RFC 5321 4.5.3.1.3: 256 with the angle brackets
constexpr int kMaxAuthFailures = 3;
constexpr int kMaxErrors = 20;
// How long the last reply (421 on a timeout) and the wait for the client's close may take.
constexpr std::chrono::seconds kLastWords{10};

// The base64 of the LOGIN prompts "Username:" and "Password:".
constexpr const char* kLoginUsernamePrompt = "334 VXNlcm5hbWU6";
constexpr const char* kLoginPasswordPrompt = "334 UGFzc3dvcmQ6";

bool starts_with_nocase(std::string_view s, std::string_view upper_prefix) {
  if (s.size() < upper_prefix.size()) return false;
  for (size_t i = 0; i < upper_prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(s[i])) != upper_prefix[i]) return false;
  }
  return true;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Text from the client made safe for a log line: controls and 8-bit bytes as \xNN, cut short.
std::string printable(std::string_view s, size_t max = 200) {
  std::string out;
  for (unsigned char c : s.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

// The address between the angle brackets of "<address> PARAMS" (quoted local parts may hold a
// '>'), with a source route ("@a,@b:") dropped as RFC 5321 4.1.2 allows, and the parameters
// after it. False when there are no brackets, the address is too long or holds a control, a
// space outside quotes or an 8-bit byte (SMTPUTF8 is not offered).
bool parse_path(std::string_view arg, std::string& address, std::string_view& params) {
  while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);  // "FROM: <a>" is common
  if (arg.empty() || arg.front() != '<') return false;
  size_t i = 1;
  bool quoted = false;
  for (; i < arg.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(arg[i]);
    if (c < 0x20 || c >= 0x7f) return false;
    if (quoted) {
      if (c == '\\' && i + 1 < arg.size()) {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
    } else if (c == ' ') {
      return false;
    } else if (c == '>') {
      break;
    }
  }
  if (i >= arg.size()) return false;
  std::string_view inner = arg.substr(1, i - 1);
  params = arg.substr(i + 1);
  if (!params.empty() && params.front() != ' ') return false;
  if (!inner.empty() && inner.front() == '@') {
    size_t colon = inner.find(':');
    if (colon == std::string_view::npos) return false;
    inner.remove_prefix(colon + 1);
  }
  if (inner.size() > kMaxAddress) return false;
  address.assign(inner);
  return true;
}

// local@domain with both parts present and a domain without quotes or brackets out of place.
bool plausible_mailbox(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return false;
  std::string_view domain = address.substr(at + 1);
  if (domain.front() == '[') return domain.back() == ']';
  for (char c : domain) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
  }
  return true;
}

struct Param {
  std::string keyword;  // upper case
  std::string_view value;
  bool has_value = false;
};

// "KEY=VALUE KEY2" into its parameters; false on an empty keyword ("=x").
bool split_params(std::string_view params, std::vector<Param>& out) {
  out.clear();
  for (;;) {
    while (!params.empty() && params.front() == ' ') params.remove_prefix(1);
    if (params.empty()) return true;
    size_t end = std::min(params.find(' '), params.size());
    std::string_view item = params.substr(0, end);
    params.remove_prefix(end);
    size_t eq = item.find('=');
    Param p;
    p.keyword = upper(item.substr(0, eq));
    if (p.keyword.empty()) return false;
    if (eq != std::string_view::npos) {
      p.value = item.substr(eq + 1);
      p.has_value = true;
    }
    out.push_back(std::move(p));
  }
}

bool parse_decimal(std::string_view s, uint64_t& value) {
  if (s.empty() || s.size() > 19) return false;  // 19 digits always fit in 64 bits
  value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

// A callback's reply in wire form (CRLF after every line). Text lines are split at "\n" and
// cleaned of controls, so a callback cannot end the reply early or inject a line.
std::string wire_reply(const Reply& reply) {
  Reply r = reply;
  int cls = r.code / 100;
  if (r.code < 200 || r.code > 599 || cls == 3) {
    r = Reply{451, "4.3.0", "Local error in processing"};
    cls = 4;
  }
  std::string code = std::to_string(r.code);
  std::string enhanced = valid_enhanced_code(r.enhanced, r.code) ? r.enhanced + " " : "";

  std::vector<std::string> lines;
  std::string_view text = r.text;
  for (;;) {
    size_t nl = text.find('\n');
    std::string line;
    for (char c : text.substr(0, nl)) {
      unsigned char u = static_cast<unsigned char>(c);
      if (u == '\r') continue;
      line.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
    }
    if (line.size() > 500) line.resize(500);
    lines.push_back(std::move(line));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  if (lines.size() == 1 && lines[0].empty()) lines[0] = cls == 2 ? "Ok" : "Failed";

  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    out += code;
    out += i + 1 < lines.size() ? "-" : " ";
    out += enhanced;
    out += lines[i];
    out += "\r\n";
  }
  return out;
}

class Session;

// What the acceptor and every session share.
struct ServerState {
  ServerState(asio::io_context& io_context, SubmissionOptions opts, SubmissionCallbacks cbs)
      : io(io_context),
        options(std::move(opts)),
        callbacks(std::make_shared<const SubmissionCallbacks>(std::move(cbs))),
        acceptor(asio::make_strand(io_context)),
        retry_timer(acceptor.get_executor()) {}

  asio::io_context& io;
  const SubmissionOptions options;
  // Shared with the work on the pool, which must not keep the whole state alive.
  std::shared_ptr<const SubmissionCallbacks> callbacks;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;  // pause after a failed accept (out of descriptors)
  uint16_t port = 0;
  std::shared_ptr<asio::ssl::context> tls;

  std::mutex mu;  // guards what follows
  bool stopped = false;
  asio::thread_pool* pool = nullptr;  // owned by the server; not used once stopped
  uint64_t next_session = 0;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions;
  bool refusing = false;  // at max_connections: warned once until a connection is taken again
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<ServerState> state, tcp::socket socket, uint64_t id)
      : state_(std::move(state)),
        options_(state_->options),
        id_(id),
        executor_(socket.get_executor()),
        stream_(std::move(socket)),
        timer_(executor_),
        in_(kReadChunk * 4) {
    boost::system::error_code ec;
    auto remote = stream_.socket().remote_endpoint(ec);
    remote_ = ec ? "unknown" : remote.address().to_string();
  }

  asio::any_io_executor executor() const { return executor_; }

  // Closes the connection from outside (stop()); runs on the session's strand.
  void close_soon() {
    asio::post(executor_, [self = shared_from_this()] {
      self->timer_.cancel();
      self->stream_.close();
    });
  }

  // self keeps the session alive while the coroutine runs.
  awaitable<void> run(std::shared_ptr<Session> self) {
    (void)self;
    log()->debug("session {}: connection from {}", id_, remote_);
    reply("220 " + options_.hostname + " ESMTP");

    for (;;) {
      Action action = co_await process();
      if (action == Action::kCloseNow) break;
      if (!out_.empty() && !co_await flush()) break;
      if (action == Action::kFlushAndClose) {
        co_await linger();
        break;
      }
      if (action == Action::kStartTls) {
        // RFC 3207 4.2: whatever came with or after the STARTTLS line was sent in the clear and
        // may have been put there by someone in the middle, so it is not read as commands.
        in_.clear();
        discarding_ = false;
        boost::system::error_code ec;
        arm(options_.idle_timeout);
        const std::string no_sni;  // named: see the note on GCC 12 in check_credentials
        co_await stream_.handshake(*state_->tls, asio::ssl::stream_base::server, no_sni, false, ec);
        disarm();
        if (ec) {
          log()->debug("session {}: TLS handshake failed: {}", id_, ec.message());
          break;
        }
        reset_transaction();
        helo_seen_ = false;
        continue;
      }

      boost::system::error_code ec;
      arm(options_.idle_timeout);
      size_t n = co_await stream_.read_some(in_.prepare(kReadChunk), ec);
      disarm();
      if (ec) {
        if (timed_out_ && stream_.is_open()) {
          log()->debug("session {}: idle timeout", id_);
          out_ = "421 4.4.2 " + options_.hostname + " Error: timeout exceeded\r\n";
          last_words_ = true;
          arm(kLastWords);
          co_await stream_.write(asio::buffer(out_), ec);
          disarm();
        }
        break;
      }
      in_.commit(n);
    }

    timer_.cancel();
    stream_.close();
    log()->debug("session {}: closed", id_);
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->sessions.erase(id_);
  }

 private:
  enum class Action { kContinue, kFlushAndClose, kCloseNow, kStartTls };
  enum class AuthStep { kNone, kPlain, kLoginUsername, kLoginPassword };

  bool inbound() const { return options_.mode == ServerMode::kInbound; }

  static std::shared_ptr<spdlog::logger> log() {
    static const std::shared_ptr<spdlog::logger> logger = magnetic::logger("smtp-in");
    return logger;
  }

  // The timer guards every wait on the client. On expiry it cancels the wait, so the session
  // can still say 421; when that last reply (or the linger) runs out too, it closes.
  void arm(std::chrono::steady_clock::duration after) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->timer_.expiry() > std::chrono::steady_clock::now()) return;
      if (self->last_words_) {
        self->stream_.close();
      } else {
        self->timed_out_ = true;
        self->stream_.cancel();
      }
    });
  }
  void disarm() { timer_.expires_at(std::chrono::steady_clock::time_point::max()); }

  // Ends a connection gently: FIN after the last reply, then input is read and dropped until
  // the client closes (bounded by kLastWords). Closing with unread input would send a RST,
  // which can destroy the last reply before the client reads it.
  awaitable<void> linger() {
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    last_words_ = true;
    arm(kLastWords);
    while (!ec) {
      in_.clear();
      co_await stream_.read_some(in_.prepare(kReadChunk), ec);
    }
    disarm();
  }

  void reply(std::string_view line) {
    out_.append(line);
    out_ += "\r\n";
  }

  awaitable<bool> flush() {
    boost::system::error_code ec;
    arm(options_.idle_timeout);
    co_await stream_.write(asio::buffer(out_), ec);
    disarm();
    out_.clear();
    co_return !ec;
  }

  // Runs work() (a blocking callback) on the server's thread pool and resumes on the session's
  // strand with its result; nothing when the server has stopped, as the pool may be gone.
  template <typename F>
  awaitable<std::optional<std::invoke_result_t<F&>>> off_io(F work) {
    using T = std::invoke_result_t<F&>;
    auto initiate = [state = state_, executor = executor_,
                     work = std::move(work)](auto handler) mutable {
      std::unique_lock<std::mutex> lock(state->mu);
      if (state->stopped) {
        lock.unlock();
        asio::post(executor, [h = std::move(handler)]() mutable { h(std::optional<T>()); });
        return;
      }
      asio::post(
          *state->pool, [h = std::move(handler), executor, work = std::move(work)]() mutable {
            std::optional<T> result(work());
            asio::post(executor,
                       [h = std::move(h), r = std::move(result)]() mutable { h(std::move(r)); });
          });
    };
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::optional<T>)>(
        std::move(initiate), asio::use_awaitable);
  }

  void reset_transaction() {
    in_transaction_ = false;
    mail_from_.clear();
    rcpts_.clear();
    data_.clear();
  }

  // Answers a syntax error; after kMaxErrors of them the connection is closed.
  Action error(std::string_view line) {
    reply(line);
    if (++errors_ < kMaxErrors) return Action::kContinue;
    log()->info("session {}: too many errors from {}, closing", id_, remote_);
    reply("421 4.7.0 " + options_.hostname + " Error: too many errors");
    return Action::kFlushAndClose;
  }

  Action line_too_long() {
    auth_step_ = AuthStep::kNone;
    return error("500 5.5.6 Line too long");
  }

  // Handles every complete command (and message) in the buffer.
  awaitable<Action> process() {
    for (;;) {
      if (in_data_) {
        if (!scan_data()) co_return Action::kContinue;
        Action action = co_await end_of_data();
        if (action != Action::kContinue) co_return action;
        continue;
      }

      std::string_view view = in_.view();
      if (view.empty()) co_return Action::kContinue;
      size_t eol = view.find('\n');
      if (discarding_) {  // the rest of a line that was too long
        if (eol == std::string_view::npos) {
          in_.clear();
          co_return Action::kContinue;
        }
        in_.consume(eol + 1);
        discarding_ = false;
        continue;
      }

      size_t limit =
          auth_step_ != AuthStep::kNone || (!inbound() && starts_with_nocase(view, "AUTH "))
              ? kAuthLineLimit
              : kCommandLineLimit;
      if (eol == std::string_view::npos) {
        if (view.size() < limit) co_return Action::kContinue;
        in_.clear();
        discarding_ = true;
        Action action = line_too_long();
        if (action != Action::kContinue) co_return action;
        continue;
      }
      if (eol + 1 > limit) {
        in_.consume(eol + 1);
        Action action = line_too_long();
        if (action != Action::kContinue) co_return action;
        continue;
      }

      std::string line(view.substr(0, eol));
      in_.consume(eol + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      Action action =
          auth_step_ != AuthStep::kNone ? co_await auth_response(line) : co_await command(line);
      if (!line.empty()) OPENSSL_cleanse(line.data(), line.size());  // it may hold a password
      if (action != Action::kContinue) co_return action;
    }
  }

  awaitable<Action> command(std::string_view line) {
    size_t space = std::min(line.find(' '), line.size());
    std::string verb = upper(line.substr(0, space));
    std::string_view arg = space < line.size() ? line.substr(space + 1) : std::string_view();

    if (verb == "EHLO" || verb == "HELO") co_return hello(verb == "EHLO", trim(arg));
    if (verb == "STARTTLS") co_return starttls(arg);
    if (verb == "AUTH") {
      // Not offered in EHLO, so a client that sends it anyway is in error (RFC 5321 4.2.4).
      if (inbound()) co_return error("502 5.5.1 Command not implemented");
      co_return co_await auth(arg);
    }
    if (verb == "MAIL") co_return co_await mail(arg);
    if (verb == "RCPT") co_return co_await rcpt(arg);
    if (verb == "DATA") co_return data(arg);
    if (verb == "RSET") {
      reset_transaction();
      reply("250 2.0.0 Ok");
    } else if (verb == "NOOP") {
      reply("250 2.0.0 Ok");
    } else if (verb == "QUIT") {
      reply("221 2.0.0 Bye");
      co_return Action::kFlushAndClose;
    } else if (verb == "VRFY") {
      reply("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
    } else if (verb == "HELP") {
      reply(inbound()
                ? "214 2.0.0 Commands: EHLO HELO STARTTLS MAIL RCPT DATA RSET NOOP VRFY QUIT"
                : "214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY QUIT");
    } else {
      co_return error("500 5.5.2 Command not recognized");
    }
    co_return Action::kContinue;
  }

  Action hello(bool extended, std::string_view name) {
    if (name.empty()) {
      return error(extended ? "501 5.5.4 Syntax: EHLO hostname"
                            : "501 5.5.4 Syntax: HELO hostname");
    }
    reset_transaction();
    helo_seen_ = true;
    helo_name_ = printable(name, 100);
    if (!extended) {
      reply("250 " + options_.hostname);
      return Action::kContinue;
    }
    std::vector<std::string> keywords = {options_.hostname, "PIPELINING",
                                         "SIZE " + std::to_string(options_.size_limit), "8BITMIME",
                                         "ENHANCEDSTATUSCODES"};
    if (!stream_.tls()) {
      keywords.push_back("STARTTLS");
    } else if (!inbound()) {
      keywords.push_back("AUTH PLAIN LOGIN");
    }
    std::string r;
    for (size_t i = 0; i < keywords.size(); ++i) {
      r += i + 1 < keywords.size() ? "250-" : "250 ";
      r += keywords[i];
      if (i + 1 < keywords.size()) r += "\r\n";
    }
    reply(r);
    return Action::kContinue;
  }

  Action starttls(std::string_view arg) {
    if (stream_.tls()) return error("503 5.5.1 TLS already active");
    if (!trim(arg).empty()) return error("501 5.5.4 Syntax: STARTTLS");
    reply("220 2.0.0 Ready to start TLS");
    return Action::kStartTls;
  }

  awaitable<Action> auth(std::string_view arg) {
    if (!stream_.tls()) {
      reply("538 5.7.11 Encryption required for requested authentication mechanism");
      co_return Action::kContinue;
    }
    if (!username_.empty()) {
      reply("503 5.5.1 Already authenticated");
      co_return Action::kContinue;
    }
    if (!helo_seen_) {
      reply("503 5.5.1 Send EHLO first");
      co_return Action::kContinue;
    }
    arg = trim(arg);
    size_t space = std::min(arg.find(' '), arg.size());
    std::string mechanism = upper(arg.substr(0, space));
    std::string_view initial = space < arg.size() ? trim(arg.substr(space + 1)) : "";

    if (mechanism == "PLAIN") {
      if (initial.empty()) {
        auth_step_ = AuthStep::kPlain;
        reply("334 ");
        co_return Action::kContinue;
      }
      co_return co_await plain(initial);
    }
    if (mechanism == "LOGIN") {
      if (initial.empty()) {
        auth_step_ = AuthStep::kLoginUsername;
        reply(kLoginUsernamePrompt);
        co_return Action::kContinue;
      }
      co_return login_username(initial);  // RFC 4954 lets LOGIN's username come along
    }
    if (mechanism.empty()) co_return error("501 5.5.4 Syntax: AUTH mechanism");
    reply("504 5.5.4 Unrecognized authentication type");
    co_return Action::kContinue;
  }

  // The client's answer to a 334 prompt.
  awaitable<Action> auth_response(std::string_view line) {
    AuthStep step = auth_step_;
    auth_step_ = AuthStep::kNone;
    line = trim(line);
    if (line == "*") {
      login_username_.clear();
      reply("501 5.0.0 Authentication cancelled");
      co_return Action::kContinue;
    }
    switch (step) {
      case AuthStep::kPlain:
        co_return co_await plain(line);
      case AuthStep::kLoginUsername:
        co_return login_username(line);
      case AuthStep::kLoginPassword: {
        std::string password;
        if (!decode(line, password)) co_return error("501 5.5.2 Invalid base64 data");
        std::string username = std::move(login_username_);
        login_username_.clear();
        Action action = co_await check_credentials(username, password);
        OPENSSL_cleanse(password.data(), password.size());
        co_return action;
      }
      case AuthStep::kNone:
        break;
    }
    co_return Action::kContinue;
  }

  // "=" is an empty response (RFC 4954 4).
  static bool decode(std::string_view text, std::string& out) {
    if (text == "=") {
      out.clear();
      return true;
    }
    return internal::base64_decode(text, out);
  }

  Action login_username(std::string_view encoded) {
    if (!decode(encoded, login_username_)) return error("501 5.5.2 Invalid base64 data");
    auth_step_ = AuthStep::kLoginPassword;
    reply(kLoginPasswordPrompt);
    return Action::kContinue;
  }

  // RFC 4616: authzid NUL authcid NUL passwd. Acting for another user (an authzid that is not
  // the authcid) is not supported and fails like a wrong password.
  awaitable<Action> plain(std::string_view encoded) {
    std::string message;
    if (!decode(encoded, message)) co_return error("501 5.5.2 Invalid base64 data");
    size_t first = message.find('\0');
    size_t second = first == std::string::npos ? first : message.find('\0', first + 1);
    std::string username, password;
    bool well_formed =
        second != std::string::npos && message.find('\0', second + 1) == std::string::npos;
    if (well_formed) {
      std::string_view authzid(message.data(), first);
      username = message.substr(first + 1, second - first - 1);
      password = message.substr(second + 1);
      if (!authzid.empty() && authzid != username) username.clear();
    }
    OPENSSL_cleanse(message.data(), message.size());
    Action action = co_await check_credentials(username, password);
    OPENSSL_cleanse(password.data(), password.size());
    co_return action;
  }

  awaitable<Action> check_credentials(const std::string& username, const std::string& password) {
    enum class Verdict { kGood, kBad, kBroken };
    Verdict verdict = Verdict::kBad;
    if (!username.empty() && username.find('\0') == std::string::npos &&
        password.find('\0') == std::string::npos) {
      // The work is named before the co_await: GCC 12 mishandles lambda temporaries with
      // captures inside a co_await expression (it frees them twice).
      auto work = [callbacks = state_->callbacks, username, password] {
        try {
          return callbacks->authenticate(username, password) ? Verdict::kGood : Verdict::kBad;
        } catch (...) {
          return Verdict::kBroken;
        }
      };
      auto result = co_await off_io(std::move(work));
      if (!result) co_return Action::kCloseNow;
      verdict = *result;
    }

    if (verdict == Verdict::kGood) {
      username_ = username;
      log()->debug("session {}: {} (EHLO {}) authenticated as {}", id_, remote_, helo_name_,
                   printable(username_));
      reply("235 2.7.0 Authentication successful");
      co_return Action::kContinue;
    }
    if (verdict == Verdict::kBroken) {
      log()->warn("session {}: the authenticate callback failed", id_);
      reply("454 4.7.0 Temporary authentication failure");
      co_return Action::kContinue;
    }
    log()->info("session {}: authentication failed from {}", id_, remote_);
    reply("535 5.7.8 Authentication credentials invalid");
    if (++auth_failures_ < kMaxAuthFailures) co_return Action::kContinue;
    reply("421 4.7.0 " + options_.hostname + " Error: too many failed authentications");
    co_return Action::kFlushAndClose;
  }

  awaitable<Action> mail(std::string_view arg) {
    if (!inbound() && username_.empty()) {
      reply("530 5.7.0 Authentication required");
      co_return Action::kContinue;
    }
    if (in_transaction_) {
      reply("503 5.5.1 Nested MAIL command");
      co_return Action::kContinue;
    }
    if (!starts_with_nocase(arg, "FROM:")) co_return error("501 5.5.4 Syntax: MAIL FROM:<address>");
    std::string address;
    std::string_view params;
    if (!parse_path(arg.substr(5), address, params) ||
        (!address.empty() && !plausible_mailbox(address))) {
      co_return error("501 5.1.7 Bad sender address syntax");
    }

    std::vector<Param> list;
    if (!split_params(params, list)) co_return error("501 5.5.4 Syntax error in parameters");
    for (const Param& p : list) {
      if (p.keyword == "SIZE") {
        uint64_t size = 0;
        if (!p.has_value || !parse_decimal(p.value, size)) {
          co_return error("501 5.5.4 Syntax error in SIZE parameter");
        }
        if (size > options_.size_limit) {
          reply("552 5.3.4 Message size exceeds fixed maximum message size");
          co_return Action::kContinue;
        }
      } else if (p.keyword == "BODY") {
        std::string body = upper(p.value);
        if (body != "7BIT" && body != "8BITMIME") {
          co_return error("501 5.5.4 Syntax error in BODY parameter");
        }
      } else if (p.keyword == "AUTH" && p.has_value) {
        // RFC 4954 5: the identity a relay vouches for; a server may ignore it, and this one
        // judges the sender by the authenticated user alone.
      } else {
        reply("555 5.5.4 MAIL FROM parameters not recognized or not implemented");
        co_return Action::kContinue;
      }
    }

    auto work = [callbacks = state_->callbacks, user = username_, address] {
      if (!callbacks->check_sender) return Reply{250, "2.1.0", "Ok"};  // inbound mode only
      try {
        return callbacks->check_sender(user, address);
      } catch (...) {
        return Reply{451, "4.3.0", "Local error in processing"};
      }
    };
    auto result = co_await off_io(std::move(work));
    if (!result) co_return Action::kCloseNow;
    std::string line = wire_reply(*result);
    if (line[0] == '2') {
      in_transaction_ = true;
      mail_from_ = std::move(address);
    }
    out_ += line;
    co_return Action::kContinue;
  }

  awaitable<Action> rcpt(std::string_view arg) {
    if (!in_transaction_) {
      reply("503 5.5.1 Need MAIL command");
      co_return Action::kContinue;
    }
    if (!starts_with_nocase(arg, "TO:")) co_return error("501 5.5.4 Syntax: RCPT TO:<address>");
    std::string address;
    std::string_view params;
    // RFC 5321 4.5.1: a receiving MTA takes "<Postmaster>" without a domain; it goes to
    // check_recipient like any other recipient.
    if (!parse_path(arg.substr(3), address, params) ||
        !(plausible_mailbox(address) || (inbound() && upper(address) == "POSTMASTER"))) {
      co_return error("501 5.1.3 Bad recipient address syntax");
    }
    std::vector<Param> list;
    if (!split_params(params, list)) co_return error("501 5.5.4 Syntax error in parameters");
    if (!list.empty()) {
      reply("555 5.5.4 RCPT TO parameters not recognized or not implemented");
      co_return Action::kContinue;
    }
    if (rcpts_.size() >= options_.max_recipients) {
      reply("452 4.5.3 Too many recipients");
      co_return Action::kContinue;
    }
    if (!state_->callbacks->check_recipient) {
      rcpts_.push_back(std::move(address));
      reply("250 2.1.5 Ok");
      co_return Action::kContinue;
    }

    auto work = [callbacks = state_->callbacks, from = mail_from_, address] {
      try {
        return callbacks->check_recipient(from, address);
      } catch (...) {
        return Reply{451, "4.3.0", "Local error in processing"};
      }
    };
    auto result = co_await off_io(std::move(work));
    if (!result) co_return Action::kCloseNow;
    std::string line = wire_reply(*result);
    if (line[0] == '2') {
      rcpts_.push_back(std::move(address));
    } else {
      log()->debug("session {}: recipient <{}> refused: {}", id_, printable(address),
                   printable(line.substr(0, line.size() - 2)));
    }
    out_ += line;
    co_return Action::kContinue;
  }

  Action data(std::string_view arg) {
    if (!in_transaction_) {
      reply("503 5.5.1 Need MAIL command");
      return Action::kContinue;
    }
    if (rcpts_.empty()) {
      reply("554 5.5.1 No valid recipients");
      return Action::kContinue;
    }
    if (!trim(arg).empty()) return error("501 5.5.4 Syntax: DATA");
    reply("354 End data with <CR><LF>.<CR><LF>");
    in_data_ = true;
    line_start_ = true;
    prev_crlf_ = true;
    oversize_ = false;
    data_size_ = 0;
    data_.clear();
    return Action::kContinue;
  }

  // Moves complete message lines from the buffer into data_ (dot-stuffing removed, CRLF line
  // ends); true once the line that ends the data has been read.
  bool scan_data() {
    for (;;) {
      std::string_view view = in_.view();
      size_t eol = view.find('\n');
      if (eol == std::string_view::npos) {
        // A long line is taken in pieces. The last byte stays behind: it may be the CR of a
        // CRLF whose LF is still on the way.
        if (view.size() > kDataPiece) {
          append_data(view.substr(0, view.size() - 1), false);
          in_.consume(view.size() - 1);
        }
        return false;
      }
      std::string_view line = view.substr(0, eol);
      bool crlf = !line.empty() && line.back() == '\r';
      if (crlf) line.remove_suffix(1);
      if (line_start_ && crlf && prev_crlf_ && line == ".") {
        in_.consume(eol + 1);
        return true;
      }
      append_data(line, true);
      prev_crlf_ = crlf;
      in_.consume(eol + 1);
    }
  }

  void append_data(std::string_view piece, bool line_end) {
    // RFC 5321 4.5.2: a period that starts a line with more after it was added by the client.
    if (line_start_ && piece.size() > 1 && piece.front() == '.') piece.remove_prefix(1);
    line_start_ = line_end;
    data_size_ += piece.size() + (line_end ? 2 : 0);
    if (data_size_ > options_.size_limit) {
      if (!oversize_) std::string().swap(data_);
      oversize_ = true;
      return;
    }
    data_.append(piece);
    if (line_end) data_ += "\r\n";
  }

  awaitable<Action> end_of_data() {
    in_data_ = false;
    if (oversize_) {
      reset_transaction();
      reply("552 5.3.4 Message size exceeds fixed maximum message size");
      co_return Action::kContinue;
    }

    SubmissionEnvelope envelope{username_, std::move(mail_from_), std::move(rcpts_),
                                std::move(data_)};
    reset_transaction();
    std::string from = envelope.mail_from;
    size_t recipients = envelope.rcpt_to.size();
    size_t size = envelope.data.size();
    auto work = [callbacks = state_->callbacks, envelope = std::move(envelope)]() mutable {
      try {
        return callbacks->deliver(std::move(envelope));
      } catch (...) {
        return Reply{451, "4.3.0", "Local error in processing"};
      }
    };
    auto result = co_await off_io(std::move(work));
    if (!result) co_return Action::kCloseNow;
    std::string line = wire_reply(*result);
    if (line[0] == '2') {
      if (inbound()) {
        log()->info(
            "session {}: accepted a message from {} (EHLO {}) from=<{}> recipients={} "
            "size={}",
            id_, remote_, helo_name_, printable(from), recipients, size);
      } else {
        log()->info("session {}: accepted a message user={} from=<{}> recipients={} size={}", id_,
                    printable(username_), printable(from), recipients, size);
      }
    } else {
      log()->debug("session {}: message refused: {}", id_,
                   printable(line.substr(0, line.size() - 2)));
    }
    out_ += line;
    co_return Action::kContinue;
  }

  std::shared_ptr<ServerState> state_;
  const SubmissionOptions& options_;
  const uint64_t id_;
  asio::any_io_executor executor_;
  internal::Stream stream_;
  asio::steady_timer timer_;
  internal::InBuffer in_;
  std::string out_;  // replies not yet written
  std::string remote_;

  bool timed_out_ = false;
  bool last_words_ = false;
  bool discarding_ = false;  // skipping the rest of a line that was too long
  int errors_ = 0;

  bool helo_seen_ = false;
  std::string helo_name_;
  AuthStep auth_step_ = AuthStep::kNone;
  std::string login_username_;
  std::string username_;  // empty until AUTH succeeds
  int auth_failures_ = 0;

  bool in_transaction_ = false;
  std::string mail_from_;
  std::vector<std::string> rcpts_;

  bool in_data_ = false;
  bool line_start_ = true;  // the next message byte starts a line
  bool prev_crlf_ = true;   // the line before ended in CRLF (the DATA line counts)
  bool oversize_ = false;
  uint64_t data_size_ = 0;
  std::string data_;
};

// Over max_connections: a 421 is written without waiting (a fresh socket takes it whole) and
// the connection is closed; nothing was read yet, so the close sends no RST over it.
void refuse(tcp::socket& socket, const std::string& hostname) {
  boost::system::error_code ec;
  std::string line = "421 4.7.0 " + hostname + " Error: too many connections, try again later\r\n";
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(line), ec);
  socket.shutdown(tcp::socket::shutdown_send, ec);
  socket.close(ec);
}

awaitable<void> accept_loop(std::shared_ptr<ServerState> state) {
  auto log = logger("smtp-in");
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await state->acceptor.async_accept(asio::any_io_executor(asio::make_strand(state->io)),
                                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!state->acceptor.is_open()) co_return;
      log->warn("accept: {}", ec.message());
      // Out of descriptors, most likely: accepting again at once would spin.
      state->retry_timer.expires_after(std::chrono::milliseconds(100));
      co_await state->retry_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);

    std::shared_ptr<Session> session;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      if (state->stopped) co_return;
      if (state->sessions.size() >= state->options.max_connections) {
        refuse(socket, state->options.hostname);
        if (!state->refusing) {
          log->warn("refusing connections: {} are open (max_connections)", state->sessions.size());
        }
        state->refusing = true;
        continue;
      }
      state->refusing = false;
      uint64_t id = ++state->next_session;
      session = std::make_shared<Session>(state, std::move(socket), id);
      state->sessions[id] = session;
    }
    asio::co_spawn(session->executor(), session->run(session), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        logger("smtp-in")->error("session ended by an exception: {}", ex.what());
      } catch (...) {
        logger("smtp-in")->error("session ended by an exception");
      }
    });
  }
}

Status check_options(const SubmissionOptions& o, const SubmissionCallbacks& c) {
  if (o.mode == ServerMode::kInbound) {
    if (!c.check_recipient) {
      return Status::invalid("callbacks.check_recipient is not set (required in inbound mode)");
    }
  } else if (o.mode == ServerMode::kSubmission) {
    if (!c.authenticate) return Status::invalid("callbacks.authenticate is not set");
    if (!c.check_sender) return Status::invalid("callbacks.check_sender is not set");
  } else {
    return Status::invalid("mode is not kSubmission or kInbound");
  }
  if (!c.deliver) return Status::invalid("callbacks.deliver is not set");
  if (o.hostname.empty()) return Status::invalid("hostname is empty");
  for (char ch : o.hostname) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.')) {
      return Status::invalid("hostname \"" + printable(o.hostname) +
                             "\" is not a host name (letters, digits, '-' and '.')");
    }
  }
  if (o.size_limit == 0) return Status::invalid("size_limit must be at least 1");
  if (o.max_recipients == 0) return Status::invalid("max_recipients must be at least 1");
  if (o.max_connections == 0) return Status::invalid("max_connections must be at least 1");
  if (o.worker_threads < 1) return Status::invalid("worker_threads must be at least 1");
  if (o.idle_timeout.count() <= 0) return Status::invalid("idle_timeout must be positive");
  return Status::ok();
}

}  // namespace

struct SubmissionServer::Impl {
  std::shared_ptr<ServerState> state;
  std::unique_ptr<asio::thread_pool> pool;
};

Result<std::unique_ptr<SubmissionServer>> SubmissionServer::start(asio::io_context& io,
                                                                  SubmissionOptions options,
                                                                  SubmissionCallbacks callbacks) {
  if (Status s = check_options(options, callbacks); !s) return s;
  auto state = std::make_shared<ServerState>(io, std::move(options), std::move(callbacks));
  const SubmissionOptions& opts = state->options;

  auto tls = internal::server_tls_context(opts.hostname, opts.tls_cert_file, opts.tls_key_file);
  if (!tls) return tls.status();
  state->tls = *tls;

  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(opts.listen_host, ec);
  if (ec) return Status::invalid("listen_host is not an IP address: " + opts.listen_host);
  tcp::endpoint endpoint(address, opts.listen_port);
  tcp::acceptor& acceptor = state->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::unavailable("cannot listen on " + opts.listen_host + ":" +
                               std::to_string(opts.listen_port) + ": " + ec.message());
  }
  state->port = acceptor.local_endpoint(ec).port();

  auto impl = std::make_unique<Impl>();
  impl->state = state;
  impl->pool = std::make_unique<asio::thread_pool>(static_cast<size_t>(opts.worker_threads));
  state->pool = impl->pool.get();
  logger("smtp-in")->info("listening on {}:{} as {} ({})", opts.listen_host, state->port,
                          opts.hostname,
                          opts.mode == ServerMode::kInbound ? "inbound" : "submission");
  asio::co_spawn(acceptor.get_executor(), accept_loop(state), asio::detached);
  return std::make_unique<SubmissionServer>(std::move(impl));
}

SubmissionServer::SubmissionServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SubmissionServer::~SubmissionServer() {
  stop();
  // Callbacks already on the pool finish; stop() made sure no new ones are posted.
  impl_->pool->join();
}

uint16_t SubmissionServer::port() const { return impl_->state->port; }

void SubmissionServer::stop() {
  std::shared_ptr<ServerState> state = impl_->state;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    if (state->stopped) return;
    state->stopped = true;
  }
  asio::post(state->acceptor.get_executor(), [state] {
    boost::system::error_code ec;
    state->acceptor.close(ec);
    state->retry_timer.cancel();
    std::vector<std::shared_ptr<Session>> sessions;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      for (auto& [id, weak] : state->sessions) {
        if (auto s = weak.lock()) sessions.push_back(std::move(s));
      }
    }
    for (auto& s : sessions) s->close_soon();
  });
}

}  // namespace magnetic::smtp
