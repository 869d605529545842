// Capture sink: strategy.
//
// One coroutine per connection, each on its own strand. The session reads whatever the kernel
// has into one buffer, answers every complete command in it, and writes the replies of the
// whole group at once before it reads again (RFC 2920: a server may hold replies until it
// would block), so a pipelined transaction costs the sink two reads and two writes. The message
// body is found in place in the read buffer (no copy per line); with a Maildir each message is
// one open + write + close in tmp/ and one rename to new/, and nothing is fsynced.
//
// Faults are played as SinkFaults says; the per-recipient attempt counts live in the server so
// that a retry on a new connection sees the earlier failures.
//
// Written by hand rather than run as smtp-sink or Python's aiosmtpd: tests need it in-process,
// with a Maildir, per-address faults and exact counters; smtp-sink refuses whole commands only
// and keeps no Maildir.
#include "smtp/sink.h"

#include "smtp/stream.h"  // first: it fixes an include order problem of Boost 1.74

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <unordered_map>

#include "base/log.h"
#include "smtp/server_tls.h"

namespace magnetic::smtp {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;

namespace {

constexpr size_t kMaxCommandLine = 4096;
constexpr size_t kReadChunk = 64 * 1024;

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// The address of "FROM:<a@b> PARAMS" and its parameters.
void split_path(std::string_view arg, std::string_view& address, std::string_view& params) {
  while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
  size_t end;
  if (!arg.empty() && arg.front() == '<') {
    end = arg.find('>');
    address = arg.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1);
    end = end == std::string_view::npos ? arg.size() : end + 1;
  } else {
    end = std::min(arg.find(' '), arg.size());
    address = arg.substr(0, end);
  }
  params = arg.substr(end);
}

// The value of SIZE=n among MAIL parameters, 0 when absent.
uint64_t size_param(std::string_view params) {
  while (!params.empty()) {
    while (!params.empty() && params.front() == ' ') params.remove_prefix(1);
    size_t end = std::min(params.find(' '), params.size());
    std::string_view param = params.substr(0, end);
    params.remove_prefix(end);
    if (starts_with_nocase(param, "SIZE=")) {
      uint64_t n = 0;
      for (char c : param.substr(5)) {
        if (c < '0' || c > '9') break;
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      return n;
    }
  }
  return 0;
}

std::string default_rcpt_text(int code) {
  return code / 100 == 4 ? "4.7.1 try again later" : "5.1.1 user unknown";
}

class Session;

// What the acceptor and every session share.
struct SinkState {
  SinkState(asio::io_context& io_context, SinkOptions opts)
      : io(io_context), options(std::move(opts)), acceptor(asio::make_strand(io_context)) {}

  asio::io_context& io;
  SinkOptions options;
  SinkStats stats;
  tcp::acceptor acceptor;
  uint16_t port = 0;
  std::shared_ptr<asio::ssl::context> tls;
  std::string tmp_dir;  // maildir/tmp/, maildir/new/ (with the slash)
  std::string new_dir;
  std::atomic<uint64_t> file_sequence{0};
  std::atomic<uint64_t> data_commands{0};
  std::atomic<uint64_t> final_dots{0};
  const pid_t pid = ::getpid();  // for file names

  std::mutex mu;  // guards what follows
  bool stopped = false;
  std::unordered_map<std::string, int> rcpt_attempts;
  uint64_t next_session = 0;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions;
};

class Session {
 public:
  Session(std::shared_ptr<SinkState> state, tcp::socket socket, uint64_t id)
      : state_(std::move(state)),
        options_(state_->options),
        id_(id),
        executor_(socket.get_executor()),
        stream_(std::move(socket)),
        delay_(executor_),
        in_(kReadChunk) {}

  asio::any_io_executor executor() const { return executor_; }

  // Closes the connection from outside (stop()); runs on the session's strand.
  void close_soon(std::shared_ptr<Session> self) {
    asio::post(executor_, [self] {
      self->delay_.cancel();
      self->stream_.close();
    });
  }

  awaitable<void> run(std::shared_ptr<Session> self) {
    (void)self;  // keeps the session alive while the coroutine runs
    state_->stats.connections.fetch_add(1, std::memory_order_relaxed);
    reply("220 " + options_.hostname + " ESMTP magnetic sink");

    for (;;) {
      Action action = process();
      if (action == Action::kCloseNow) break;
      if (!out_.empty() && !co_await flush()) break;
      if (action == Action::kFlushAndClose) {
        co_await linger(self);
        break;
      }
      if (action == Action::kStartTls) {
        boost::system::error_code ec;
        co_await stream_.handshake(*state_->tls, asio::ssl::stream_base::server, "", false, ec);
        if (ec) break;
        in_.clear();  // RFC 3207: nothing sent before the handshake counts after it
        reset_transaction();
        helo_seen_ = false;
        continue;
      }

      boost::system::error_code ec;
      asio::mutable_buffer space = in_.prepare(kReadChunk / 4);
      size_t n = co_await stream_.read_some(space, ec);
      if (ec) break;
      in_.commit(n);
    }

    stream_.close();
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->sessions.erase(id_);
  }

 private:
  enum class Action { kContinue, kFlushAndClose, kCloseNow, kStartTls };

  // Ends a connection gently: FIN after the last reply, then input is read and dropped until
  // the client closes (at most 2 s). Closing with unread input would send a RST, which can
  // destroy the last reply before the client reads it.
  awaitable<void> linger(std::shared_ptr<Session> self) {
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    delay_.expires_after(std::chrono::seconds(2));
    delay_.async_wait([self](boost::system::error_code wait_ec) {
      if (!wait_ec) self->stream_.close();
    });
    while (!ec) {
      in_.clear();
      co_await stream_.read_some(in_.prepare(kReadChunk / 4), ec);
    }
    delay_.cancel();
  }

  void reply(std::string_view line) {
    out_.append(line);
    out_ += "\r\n";
  }

  awaitable<bool> flush() {
    if (options_.faults.reply_delay.count() > 0) {
      boost::system::error_code ec;
      delay_.expires_after(options_.faults.reply_delay);
      co_await delay_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!stream_.is_open()) co_return false;
    }
    boost::system::error_code ec;
    co_await stream_.write(asio::buffer(out_), ec);
    out_.clear();
    co_return !ec;
  }

  void reset_transaction() {
    in_transaction_ = false;
    mail_from_.clear();
    rcpts_.clear();
  }

  // Handles every complete command (and message) in the buffer.
  Action process() {
    for (;;) {
      std::string_view view = in_.view();
      if (in_data_) {
        size_t body_end = 0;
        size_t consumed = 0;
        if (!find_end_of_data(view, body_end, consumed)) return Action::kContinue;
        Action action = handle_message(view.substr(0, body_end));
        in_.consume(consumed);
        in_data_ = false;
        if (action != Action::kContinue) return action;
        continue;
      }

      size_t eol = view.find('\n');
      if (eol == std::string_view::npos) {
        if (view.size() <= kMaxCommandLine) return Action::kContinue;
        reply("500 5.5.2 line too long");
        return Action::kFlushAndClose;
      }
      std::string_view line = view.substr(0, eol);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      Action action = handle_command(line);
      in_.consume(eol + 1);
      if (action != Action::kContinue) return action;
    }
  }

  // Finds the terminating CRLF.CRLF of the data in view (which starts right after the DATA line).
  // On success body_end is where the message ends (after its last CRLF) and consumed includes
  // the dot line. A message over the size limit is consumed as it comes, keeping the last 4
  // bytes so a terminator split between reads is still found.
  bool find_end_of_data(std::string_view view, size_t& body_end, size_t& consumed) {
    if (data_at_start_ && view.size() >= 3 && view.substr(0, 3) == ".\r\n") {
      body_end = 0;
      consumed = 3;
      return true;
    }
    if (data_at_start_ && view.size() < 3) return false;
    size_t found = view.find("\r\n.\r\n", scan_from_);
    if (found != std::string_view::npos) {
      body_end = found + 2;
      consumed = found + 5;
      return true;
    }
    scan_from_ = view.size() >= 4 ? view.size() - 4 : 0;
    if (view.size() > options_.size_limit + 4) {
      oversize_ = true;
      data_at_start_ = false;
      in_.consume(view.size() - 4);
      scan_from_ = 0;
    }
    return false;
  }

  Action handle_command(std::string_view line) {
    if (options_.faults.disconnect_after > 0 &&
        messages_here_ >= options_.faults.disconnect_after && !starts_with_nocase(line, "QUIT")) {
      reply("421 4.7.0 " + options_.hostname + " too many messages on this connection");
      return Action::kFlushAndClose;
    }

    if (starts_with_nocase(line, "EHLO")) {
      reset_transaction();
      helo_seen_ = true;
      std::string_view client = line.substr(4);
      while (!client.empty() && client.front() == ' ') client.remove_prefix(1);
      std::string r = "250-" + options_.hostname + " greets " + std::string(client) +
                      "\r\n250-PIPELINING\r\n250-SIZE " + std::to_string(options_.size_limit) +
                      "\r\n250-8BITMIME\r\n";
      if (state_->tls && !stream_.tls()) r += "250-STARTTLS\r\n";
      r += "250 ENHANCEDSTATUSCODES";
      reply(r);
    } else if (starts_with_nocase(line, "HELO")) {
      reset_transaction();
      helo_seen_ = true;
      reply("250 " + options_.hostname);
    } else if (starts_with_nocase(line, "MAIL FROM:")) {
      if (in_transaction_) {
        reply("503 5.5.1 nested MAIL command");
        return Action::kContinue;
      }
      std::string_view address, params;
      split_path(line.substr(10), address, params);
      if (size_param(params) > options_.size_limit) {
        reply("552 5.3.4 message size exceeds fixed limit");
        return Action::kContinue;
      }
      in_transaction_ = true;
      mail_from_.assign(address);
      reply("250 2.1.0 Ok");
    } else if (starts_with_nocase(line, "RCPT TO:")) {
      if (!in_transaction_) {
        reply("503 5.5.1 need MAIL command");
        return Action::kContinue;
      }
      std::string_view address, params;
      split_path(line.substr(8), address, params);
      if (rcpt_fault(address)) return Action::kContinue;
      rcpts_.emplace_back(address);
      reply("250 2.1.5 Ok");
    } else if (starts_with_nocase(line, "DATA")) {
      if (!in_transaction_) {
        reply("503 5.5.1 need MAIL command");
        return Action::kContinue;
      }
      if (rcpts_.empty()) {
        reply("554 5.5.1 no valid recipients");
        return Action::kContinue;
      }
      int every = options_.faults.drop_mid_data_every;
      if (every > 0 && (state_->data_commands.fetch_add(1) + 1) % every == 0) {
        return Action::kFlushAndClose;  // the replies before DATA go out, then the drop
      }
      reply("354 End data with <CR><LF>.<CR><LF>");
      in_data_ = true;
      data_at_start_ = true;
      oversize_ = false;
      scan_from_ = 0;
    } else if (starts_with_nocase(line, "RSET")) {
      reset_transaction();
      reply("250 2.0.0 Ok");
    } else if (starts_with_nocase(line, "NOOP")) {
      reply("250 2.0.0 Ok");
    } else if (starts_with_nocase(line, "QUIT")) {
      reply("221 2.0.0 Bye");
      return Action::kFlushAndClose;
    } else if (starts_with_nocase(line, "STARTTLS") && state_->tls && !stream_.tls()) {
      reply("220 2.0.0 Ready to start TLS");
      return Action::kStartTls;
    } else if (starts_with_nocase(line, "VRFY")) {
      reply("252 2.5.0 Cannot VRFY user");
    } else {
      reply("502 5.5.2 command not recognized");
    }
    return Action::kContinue;
  }

  // True when the RCPT fault applies to this attempt (the reply is then written).
  bool rcpt_fault(std::string_view address) {
    const SinkFaults& faults = options_.faults;
    if (faults.rcpt_code == 0) return false;
    int attempt;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      attempt = ++state_->rcpt_attempts[std::string(address)];
    }
    if (faults.rcpt_fail_times > 0 && attempt > faults.rcpt_fail_times) return false;
    state_->stats.rejected.fetch_add(1, std::memory_order_relaxed);
    reply(std::to_string(faults.rcpt_code) + " " +
          (faults.rcpt_text.empty() ? default_rcpt_text(faults.rcpt_code) : faults.rcpt_text));
    return true;
  }

  Action handle_message(std::string_view stuffed) {
    if (oversize_) {
      reset_transaction();
      reply("552 5.3.4 message size exceeds fixed limit");
      return Action::kContinue;
    }
    int every = options_.faults.drop_after_dot_every;
    if (every > 0 && (state_->final_dots.fetch_add(1) + 1) % every == 0) {
      return Action::kCloseNow;
    }
    if (!state_->new_dir.empty()) {
      if (Status s = store(stuffed); !s) {
        logger("sink")->warn("session {}: {}", id_, s.message());
        reset_transaction();
        reply("451 4.3.0 cannot store the message");
        return Action::kContinue;
      }
    }
    state_->stats.messages.fetch_add(1, std::memory_order_relaxed);
    state_->stats.recipients.fetch_add(rcpts_.size(), std::memory_order_relaxed);
    ++messages_here_;
    reset_transaction();
    reply("250 2.0.0 Ok");
    return Action::kContinue;
  }

  // Writes the message to tmp/, then renames it into new/.
  Status store(std::string_view stuffed) {
    file_.clear();
    file_ += "X-Envelope-From: <" + mail_from_ + ">\r\n";
    for (const auto& r : rcpts_) file_ += "X-Envelope-To: <" + r + ">\r\n";

    // Undo the dot-stuffing: a '.' that starts a line was added by the client.
    size_t pos = 0;
    while (pos < stuffed.size()) {
      if (stuffed[pos] == '.') ++pos;
      size_t eol = stuffed.find('\n', pos);
      size_t end = eol == std::string_view::npos ? stuffed.size() : eol + 1;
      file_.append(stuffed.data() + pos, end - pos);
      pos = end;
    }

    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    std::string name = std::to_string(now.tv_sec) + ".M" + std::to_string(now.tv_nsec / 1000) +
                       "P" + std::to_string(state_->pid) + "Q" +
                       std::to_string(state_->file_sequence.fetch_add(1) + 1) + "." +
                       options_.hostname;
    std::string tmp = state_->tmp_dir + name;
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return Status::io_error("cannot create " + tmp + ": " + std::strerror(errno));
    size_t written = 0;
    while (written < file_.size()) {
      ssize_t n = ::write(fd, file_.data() + written, file_.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return Status::io_error("cannot write " + tmp + ": " + std::strerror(err));
      }
      written += static_cast<size_t>(n);
    }
    ::close(fd);
    std::string dest = state_->new_dir + name;
    if (::rename(tmp.c_str(), dest.c_str()) != 0) {
      return Status::io_error("cannot rename " + tmp + ": " + std::strerror(errno));
    }
    return Status::ok();
  }

  std::shared_ptr<SinkState> state_;
  const SinkOptions& options_;
  uint64_t id_;
  asio::any_io_executor executor_;
  internal::Stream stream_;
  asio::steady_timer delay_;
  internal::InBuffer in_;
  std::string out_;   // replies not yet written
  std::string file_;  // the file being stored

  bool helo_seen_ = false;
  bool in_transaction_ = false;
  std::string mail_from_;
  std::vector<std::string> rcpts_;
  int messages_here_ = 0;

  bool in_data_ = false;
  bool data_at_start_ = false;  // nothing of the data read yet
  bool oversize_ = false;
  size_t scan_from_ = 0;  // where the search for the terminator resumes
};

awaitable<void> accept_loop(std::shared_ptr<SinkState> state) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await state->acceptor.async_accept(asio::any_io_executor(asio::make_strand(state->io)),
                                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!state->acceptor.is_open()) co_return;
      logger("sink")->warn("accept: {}", ec.message());
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);

    std::shared_ptr<Session> session;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      if (state->stopped) co_return;
      uint64_t id = ++state->next_session;
      session = std::make_shared<Session>(state, std::move(socket), id);
      state->sessions[id] = session;
    }
    asio::co_spawn(session->executor(), session->run(session), asio::detached);
  }
}

}  // namespace

struct SinkServer::Impl {
  std::shared_ptr<SinkState> state;
};

Result<std::unique_ptr<SinkServer>> SinkServer::start(asio::io_context& io, SinkOptions options) {
  auto state = std::make_shared<SinkState>(io, std::move(options));
  const SinkOptions& opts = state->options;

  if (!opts.maildir.empty()) {
    std::error_code ec;
    for (const char* sub : {"tmp", "new", "cur"}) {
      std::filesystem::create_directories(std::filesystem::path(opts.maildir) / sub, ec);
      if (ec)
        return Status::io_error("cannot create maildir " + opts.maildir + ": " + ec.message());
    }
    state->tmp_dir = (std::filesystem::path(opts.maildir) / "tmp").string() + "/";
    state->new_dir = (std::filesystem::path(opts.maildir) / "new").string() + "/";
  }
  if (opts.starttls) {
    // Made in memory at every start: the sink is for tests and demos.
    auto tls = internal::self_signed_tls_context(opts.hostname, 30);
    if (!tls) return tls.status();
    state->tls = *tls;
  }

  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(opts.listen_host, ec);
  if (ec) return Status::invalid("listen address is not an IP address: " + opts.listen_host);
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

  asio::co_spawn(acceptor.get_executor(), accept_loop(state), asio::detached);
  return std::make_unique<SinkServer>(std::make_unique<Impl>(Impl{state}));
}

SinkServer::SinkServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SinkServer::~SinkServer() { stop(); }

uint16_t SinkServer::port() const { return impl_->state->port; }

const SinkStats& SinkServer::stats() const { return impl_->state->stats; }

void SinkServer::stop() {
  std::shared_ptr<SinkState> state = impl_->state;
  asio::post(state->acceptor.get_executor(), [state] {
    std::vector<std::shared_ptr<Session>> sessions;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      if (state->stopped) return;
      state->stopped = true;
      for (auto& [id, weak] : state->sessions) {
        if (auto s = weak.lock()) sessions.push_back(std::move(s));
      }
    }
    boost::system::error_code ec;
    state->acceptor.close(ec);
    for (auto& s : sessions) s->close_soon(s);
  });
}

}  // namespace magnetic::smtp
