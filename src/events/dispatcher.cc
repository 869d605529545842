// Dispatcher: strategy.
//
// One loop coroutine claims the due head of every destination that is not already being
// delivered and spawns a delivery coroutine for it; then it sleeps until the earliest next
// attempt, a wake() or the end of a delivery. A delivery coroutine works through its batch in
// order and stops at the first failure, which it records on that event (now the head) with the
// next attempt time. Everything runs on one thread, so the loop, the deliveries and the outbox
// calls never race; the outbox's SQLite calls block that thread briefly (one small transaction
// per mark), which is far below the cost of the HTTP round trip they follow.
//
// A keep-alive connection that the receiver closed while idle fails on reuse; that is not the
// receiver's fault, so the attempt is made once more on a fresh connection before it counts.
#include "events/dispatcher.h"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <fcntl.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "base/http_url.h"
#include "base/log.h"

namespace magnetic::events {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The destination's URL, parsed by the grammar the API checked it with.
Result<HttpUrl> parse_url(std::string_view url) {
  auto u = parse_http_url(url);
  if (!u) {
    return Status::invalid("webhook URL '" + std::string(url) +
                           "' is not usable: " + u.status().message());
  }
  return u;
}

std::string hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

// One destination's connection, kept between requests while the receiver allows keep-alive.
struct Connection {
  std::string key;  // scheme, host and port it was opened to
  std::unique_ptr<beast::tcp_stream> tcp;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;

  bool open() const { return tcp || tls; }
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }
  void close() {
    if (open()) {
      boost::system::error_code ec;
      lowest().socket().close(ec);
    }
    tls.reset();
    tcp.reset();
    buffer.clear();
  }
};

// Writes all of `data` to fd; false with errno set on failure.
bool write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

struct Dispatcher::Impl {
  Impl(Outbox& o, DispatcherOptions opts)
      : outbox(o),
        options(std::move(opts)),
        ssl_ctx(ssl::context::tls_client),
        timer(io),
        log(logger("events")),
        rng(std::random_device{}()) {}

  Outbox& outbox;
  DispatcherOptions options;
  asio::io_context io;
  ssl::context ssl_ctx;
  asio::steady_timer timer;
  std::shared_ptr<spdlog::logger> log;
  std::thread thread;
  std::atomic<bool> started{false};
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> delivered{0}, failed_attempts{0}, dropped{0};

  // Owned by the io thread.
  std::set<std::string> busy;
  std::map<std::string, std::shared_ptr<Connection>> connections;
  std::set<std::string> failing;  // destinations whose last attempt failed (log once)
  std::mt19937_64 rng;
  bool db_failing = false;
  int64_t last_prune_ms = 0;

  void wake_loop() { timer.cancel(); }

  // --- the loop

  awaitable<void> run() {
    while (!stopping) {
      int64_t now = wall_ms();
      if (now - last_prune_ms >= options.prune_interval.count()) {
        last_prune_ms = now;
        auto pruned = outbox.prune(now, options.retention_ms);
        if (!pruned) {
          log->warn("prune failed: {}", pruned.status().message());
        } else if (pruned->events || pruned->deliveries) {
          log->debug("pruned {} log entries, {} finished deliveries", pruned->events,
                     pruned->deliveries);
        }
      }

      std::vector<std::string> busy_ids(busy.begin(), busy.end());
      auto due = outbox.claim_due(now, options.batch_size, busy_ids);
      int64_t wait_ms = 3600 * 1000;
      if (!due) {
        if (!db_failing) log->warn("cannot read the outbox: {}", due.status().message());
        db_failing = true;
        wait_ms = 1000;
      } else {
        if (db_failing) log->info("the outbox is readable again");
        db_failing = false;
        for (auto& batch : *due) {
          busy.insert(batch.destination.id);
          busy_ids.push_back(batch.destination.id);
          asio::co_spawn(io, deliver(std::move(batch)), asio::detached);
        }
        auto next = outbox.next_due_ms(busy_ids);
        if (next && *next >= 0) wait_ms = std::max<int64_t>(0, *next - wall_ms());
      }
      if (stopping) break;
      if (wait_ms == 0) continue;
      timer.expires_after(std::chrono::milliseconds(wait_ms));
      boost::system::error_code ec;
      co_await timer.async_wait(redirect_error(use_awaitable, ec));
    }
  }

  awaitable<void> deliver(DueBatch batch) {
    std::string id = batch.destination.id;
    if (options.destination_exists && !options.destination_exists(id)) {
      log->info("{}: the destination was deleted or disabled; {} waiting event(s) dropped", id,
                batch.events.size());
      for (const auto& ev : batch.events) {
        ++dropped;
        if (Status s = outbox.mark_dropped(id, ev.seq, "the destination no longer exists"); !s)
          log->warn("{}: cannot record the drop of event {}: {}", id, ev.seq, s.message());
      }
    } else if (batch.destination.kind == Destination::kFile) {
      deliver_file(batch);
    } else {
      co_await deliver_webhook(batch);
    }
    busy.erase(id);
    if (!stopping) wake_loop();
  }

  // --- outcomes

  void delivered_ok(const Destination& d, const std::vector<int64_t>& seqs) {
    if (Status s = outbox.mark_delivered(d.id, seqs); !s) {
      // The receiver has it; it will get it again once the outbox is writable (at-least-once).
      log->warn("{}: delivered but not recorded: {}", d.id, s.message());
      return;
    }
    delivered += seqs.size();
    if (failing.erase(d.id)) log->info("{}: delivering again", d.id);
  }

  void failed(const Destination& d, const PendingDelivery& ev, const std::string& error) {
    ++failed_attempts;
    int64_t now = wall_ms();
    if (now - ev.time_ms >= options.max_age.count()) {
      ++dropped;
      log->warn("{}: event {} dropped after {} attempts, older than the max age: {}", d.id, ev.seq,
                ev.attempts + 1, error);
      if (Status s = outbox.mark_dropped(d.id, ev.seq, error); !s) {
        log->warn("{}: cannot record the drop of event {}: {}", d.id, ev.seq, s.message());
      }
      return;
    }
    int64_t delay = retry_delay(options, ev.attempts).count();
    if (options.jitter > 0 && delay > 0) {
      auto extra = static_cast<int64_t>(static_cast<double>(delay) * options.jitter);
      if (extra > 0) delay += std::uniform_int_distribution<int64_t>(0, extra)(rng);
    }
    if (failing.insert(d.id).second) {
      log->warn("{}: event {} failed, retrying in {} ms: {}", d.id, ev.seq, delay, error);
    } else {
      log->debug("{}: event {} failed (attempt {}), retrying in {} ms: {}", d.id, ev.seq,
                 ev.attempts + 1, delay, error);
    }
    if (Status s = outbox.mark_failed(d.id, ev.seq, now + delay, error); !s) {
      log->warn("{}: cannot record a failed attempt: {}", d.id, s.message());
    }
  }

  // --- file destinations

  void deliver_file(const DueBatch& batch) {
    const Destination& d = batch.destination;
    std::string data;
    std::vector<int64_t> seqs;
    for (const auto& ev : batch.events) {
      data += ev.json;
      data += '\n';
      seqs.push_back(ev.seq);
    }
    std::error_code exists_ec;
    bool existed = std::filesystem::exists(d.target, exists_ec);
    int fd = ::open(d.target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      failed(d, batch.events.front(), "cannot open '" + d.target + "': " + std::strerror(errno));
      return;
    }
    bool ok = write_all(fd, data) && ::fsync(fd) == 0;
    int err = errno;
    ::close(fd);
    if (!ok) {
      failed(d, batch.events.front(), "cannot write '" + d.target + "': " + std::strerror(err));
      return;
    }
    if (!existed) {
      // The new file's name must be durable too before its lines count as delivered.
      std::string dir = std::filesystem::path(d.target).parent_path().string();
      int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
      }
    }
    delivered_ok(d, seqs);
  }

  // --- webhook destinations

  awaitable<void> deliver_webhook(const DueBatch& batch) {
    const Destination& d = batch.destination;
    auto url = parse_url(d.target);
    if (!url) {
      failed(d, batch.events.front(), url.status().message());
      co_return;
    }
    std::string key = (url->tls ? "https://" : "http://") + url->host + ":" + url->port;
    auto& slot = connections[d.id];
    if (!slot || slot->key != key) {
      if (slot) slot->close();
      slot = std::make_shared<Connection>();
      slot->key = key;
    }
    std::shared_ptr<Connection> conn = slot;

    for (const auto& ev : batch.events) {
      bool reused = conn->open();
      Status s = co_await post(*conn, *url, ev);
      if (stopping) co_return;
      if (!s && reused && s.code() != StatusCode::kPermanent) {
        conn->close();
        s = co_await post(*conn, *url, ev);
        if (stopping) co_return;
      }
      if (!s) {
        conn->close();
        failed(d, ev, s.message());
        co_return;
      }
      delivered_ok(d, {ev.seq});
    }
  }

  // The stream goes into `conn` before each step, so that stop() closing the connection also
  // ends a connect or handshake under way.
  awaitable<Status> connect(Connection& conn, const HttpUrl& url) {
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    auto endpoints =
        co_await resolver.async_resolve(url.host, url.port, redirect_error(use_awaitable, ec));
    if (ec) co_return Status::unavailable("cannot resolve " + url.host + ": " + ec.message());
    if (stopping) co_return Status::unavailable("stopping");
    conn.tcp = std::make_unique<beast::tcp_stream>(io);
    conn.tcp->expires_after(options.timeout);
    co_await conn.tcp->async_connect(endpoints, redirect_error(use_awaitable, ec));
    if (ec) {
      conn.close();
      co_return Status::unavailable("cannot connect to " + url.host + ":" + url.port + ": " +
                                    ec.message());
    }
    if (!url.tls) co_return Status::ok();

    conn.tls =
        std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*conn.tcp), ssl_ctx);
    conn.tcp.reset();
    if (!SSL_set_tlsext_host_name(conn.tls->native_handle(), url.host.c_str())) {
      conn.close();
      co_return Status::unavailable("cannot set the TLS server name " + url.host);
    }
    conn.tls->set_verify_callback(ssl::host_name_verification(url.host));
    conn.lowest().expires_after(options.timeout);
    co_await conn.tls->async_handshake(ssl::stream_base::client, redirect_error(use_awaitable, ec));
    if (ec) {
      conn.close();
      co_return Status::unavailable("TLS handshake with " + url.host + ":" + url.port +
                                    " failed: " + ec.message());
    }
    co_return Status::ok();
  }

  template <typename Stream>
  awaitable<Status> exchange(Stream& stream, Connection& conn,
                             http::request<http::string_body>& req) {
    boost::system::error_code ec;
    conn.lowest().expires_after(options.timeout);
    co_await http::async_write(stream, req, redirect_error(use_awaitable, ec));
    if (ec) co_return Status::unavailable("cannot send the request: " + ec.message());
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    conn.lowest().expires_after(options.timeout);
    co_await http::async_read(stream, conn.buffer, parser, redirect_error(use_awaitable, ec));
    if (ec == beast::error::timeout) co_return Status::timeout("no response in time");
    if (ec) co_return Status::unavailable("cannot read the response: " + ec.message());
    auto& res = parser.get();
    if (!res.keep_alive()) conn.close();
    unsigned code = res.result_int();
    if (code >= 200 && code < 300) co_return Status::ok();
    std::string text = "HTTP " + std::to_string(code);
    // A receiver's 4xx is still retried (SES retries failed webhooks too); it is marked
    // permanent only so that a fresh connection is not tried at once.
    co_return Status::permanent(text);
  }

  awaitable<Status> post(Connection& conn, const HttpUrl& url, const PendingDelivery& ev) {
    if (!conn.open()) {
      Status s = co_await connect(conn, url);
      if (!s) co_return s;
    }
    std::string ts = std::to_string(wall_ms() / 1000);
    http::request<http::string_body> req{http::verb::post, url.target, 11};
    req.set(http::field::host, url.host_header);
    req.set(http::field::user_agent, options.user_agent);
    req.set(http::field::content_type, "application/json");
    req.set("X-Magnetic-Event-Id", std::to_string(ev.seq));
    req.set("X-Magnetic-Timestamp", ts);
    if (!options.signing_secret.empty()) {
      req.set("X-Magnetic-Signature", webhook_signature(options.signing_secret, ts, ev.json));
    }
    req.keep_alive(true);
    req.body() = ev.json;
    req.prepare_payload();
    if (conn.tls) co_return co_await exchange(*conn.tls, conn, req);
    co_return co_await exchange(*conn.tcp, conn, req);
  }
};

Dispatcher::Dispatcher(Outbox& outbox, DispatcherOptions options)
    : impl_(std::make_unique<Impl>(outbox, std::move(options))) {}

Dispatcher::~Dispatcher() { stop(); }

Status Dispatcher::start() {
  Impl& d = *impl_;
  if (d.started.exchange(true)) return Status::internal("events: the dispatcher was started twice");
  boost::system::error_code ec;
  d.ssl_ctx.set_verify_mode(ssl::verify_peer, ec);
  if (!ec) {
    if (d.options.ca_file.empty()) {
      d.ssl_ctx.set_default_verify_paths(ec);
    } else {
      // OpenSSL's error for a file it cannot open says nothing of the file: say it here.
      if (FILE* f = std::fopen(d.options.ca_file.c_str(), "r")) {
        std::fclose(f);
      } else {
        d.started = false;
        return Status::invalid("events: cannot read the CA file '" + d.options.ca_file +
                               "': " + std::strerror(errno));
      }
      d.ssl_ctx.load_verify_file(d.options.ca_file, ec);
    }
  }
  if (ec) {
    d.started = false;
    return Status::invalid(
        "events: cannot load the CA certificates" +
        (d.options.ca_file.empty() ? std::string() : " from '" + d.options.ca_file + "'") + ": " +
        ec.message());
  }
  asio::co_spawn(d.io, d.run(), asio::detached);
  d.thread = std::thread([&d] { d.io.run(); });
  return Status::ok();
}

void Dispatcher::stop() {
  Impl& d = *impl_;
  if (!d.thread.joinable()) return;
  // Everything under way is abandoned unmarked; the outbox still has it.
  asio::post(d.io, [&d] {
    d.stopping = true;
    d.timer.cancel();
    for (auto& [id, conn] : d.connections) conn->close();
  });
  d.thread.join();
}

void Dispatcher::wake() {
  Impl& d = *impl_;
  asio::post(d.io, [&d] { d.wake_loop(); });
}

DispatcherStats Dispatcher::stats() const {
  DispatcherStats s;
  s.delivered = impl_->delivered;
  s.failed_attempts = impl_->failed_attempts;
  s.dropped = impl_->dropped;
  return s;
}

std::string webhook_signature(std::string_view secret, std::string_view timestamp,
                              std::string_view body) {
  std::string message;
  message.reserve(timestamp.size() + 1 + body.size());
  message.append(timestamp).append(".").append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  return "v1=" + hex(mac, len);
}

std::chrono::milliseconds retry_delay(const DispatcherOptions& options, int failed_attempts) {
  int64_t delay = std::max<int64_t>(options.retry_initial.count(), 0);
  int64_t cap = std::max<int64_t>(options.retry_max.count(), delay);
  for (int i = 0; i < failed_attempts && delay < cap; ++i) delay *= 2;
  return std::chrono::milliseconds(std::min(delay, cap));
}

}  // namespace magnetic::events
