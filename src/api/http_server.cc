// HTTP server: strategy.
//
// One coroutine per connection on its own strand, reading with Beast's parser in two steps: the
// header first (so that "Expect: 100-continue" is answered and an oversized Content-Length is
// refused before the body is sent), then the body. Every read and write has a deadline through
// beast::tcp_stream, so a client that stalls only holds its own connection until the deadline.
// The handler runs on a thread pool; the connection coroutine waits for it without holding an
// I/O thread, then writes the response. Requests on one connection are served in order (HTTP/1.1
// pipelining is allowed but not run concurrently).
//
// Beast rather than a hand-written parser: it is the packaged HTTP implementation of the Asio
// stack used everywhere else, and it handles chunked bodies, obs-fold and limits.
#include "api/http_server.h"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/log.h"

namespace magnetic::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

class Connection;

struct ServerState {
  ServerState(asio::io_context& io_context, HttpServerOptions opts, HttpHandler h)
      : io(io_context),
        options(std::move(opts)),
        handler(std::move(h)),
        acceptor(asio::make_strand(io_context)),
        pool(static_cast<size_t>(std::max(1, options.handler_threads))) {}

  asio::io_context& io;
  HttpServerOptions options;
  HttpHandler handler;
  tcp::acceptor acceptor;
  uint16_t port = 0;
  asio::thread_pool pool;

  std::atomic<bool> draining{false};
  std::mutex mu;  // guards what follows
  bool stopped = false;
  uint64_t next_connection = 0;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections;
};

// Runs fn() on the pool and resumes the awaiting coroutine on its own executor with the result.
template <typename F>
awaitable<HttpResponse> run_on_pool(asio::thread_pool& pool, F fn) {
  return asio::async_initiate<decltype(use_awaitable), void(HttpResponse)>(
      [&pool, fn = std::move(fn)](auto handler) mutable {
        auto work = asio::make_work_guard(asio::get_associated_executor(handler));
        asio::post(pool, [fn = std::move(fn), handler = std::move(handler),
                          work = std::move(work)]() mutable {
          HttpResponse response = fn();
          auto executor = work.get_executor();
          asio::post(executor,
                     [handler = std::move(handler), response = std::move(response)]() mutable {
                       handler(std::move(response));
                     });
        });
      },
      use_awaitable);
}

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

HttpResponse plain_error(int status, std::string_view text) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.body = std::string(text) + "\n";
  return r;
}

class Connection {
 public:
  Connection(std::shared_ptr<ServerState> state, tcp::socket socket, uint64_t id)
      : state_(std::move(state)), id_(id), stream_(std::move(socket)) {
    boost::system::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  asio::any_io_executor executor() { return stream_.get_executor(); }

  bool busy() const { return busy_.load(); }

  void close_soon(std::shared_ptr<Connection> self) {
    asio::post(stream_.get_executor(), [self] {
      boost::system::error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      self->stream_.close();
    });
  }

  awaitable<void> run(std::shared_ptr<Connection> self) {
    const HttpServerOptions& options = state_->options;
    beast::flat_buffer buffer;
    bool first = true;
    // A request the server answers itself before closing (status 0: none).
    std::pair<int, std::string> refusal{0, ""};
    const std::string too_large =
        "request body larger than " + std::to_string(options.max_body) + " bytes";
    for (;;) {
      boost::system::error_code ec;
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<uint32_t>(std::min<size_t>(options.max_header, UINT32_MAX)));
      parser.body_limit(options.max_body);

      // The header. A quiet client on a kept-alive connection is closed without a response.
      stream_.expires_after(first ? options.header_timeout : options.idle_timeout);
      first = false;
      if (state_->draining.load()) break;
      co_await http::async_read_header(stream_, buffer, parser, redirect_error(use_awaitable, ec));
      busy_.store(!ec);
      if (ec) {
        if (ec == http::error::header_limit) {
          refusal = {431, "request header fields too large"};
        } else if (ec == http::error::body_limit) {  // Content-Length over the limit
          refusal = {413, too_large};
        } else if (is_protocol_error(ec)) {
          refusal = {400, "malformed HTTP request: " + ec.message()};
        }
        break;
      }
      auto content_length = parser.content_length();
      if (content_length && *content_length > options.max_body) {
        refusal = {413, too_large};
        break;
      }
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> go_on{http::status::continue_, 11};
        stream_.expires_after(options.write_timeout);
        co_await http::async_write(stream_, go_on, redirect_error(use_awaitable, ec));
        if (ec) break;
      }

      // The body.
      if (!parser.is_done()) {
        stream_.expires_after(options.body_timeout);
        co_await http::async_read(stream_, buffer, parser, redirect_error(use_awaitable, ec));
        if (ec) {
          if (ec == http::error::body_limit) {
            refusal = {413, too_large};
          } else if (is_protocol_error(ec)) {
            refusal = {400, "malformed HTTP request: " + ec.message()};
          }
          break;
        }
      }

      http::request<http::string_body> message = parser.release();
      bool keep_alive = message.keep_alive();
      auto request = std::make_shared<HttpRequest>(to_request(std::move(message)));
      std::shared_ptr<ServerState> state = state_;
      auto job = [state, request] {
        {
          std::lock_guard<std::mutex> lock(state->mu);
          if (state->stopped) return plain_error(503, "server stopping");
        }
        // A handler that throws is a bug; the client gets a 500 and the process stays up.
        try {
          return state->handler(*request);
        } catch (const std::exception& e) {
          logger("api")->error("handler failed on {} {}: {}", request->method, request->path,
                               e.what());
        } catch (...) {
          logger("api")->error("handler failed on {} {}", request->method, request->path);
        }
        return plain_error(500, "internal error");
      };
      // Named awaitables: GCC 12 destroys some temporaries of a co_await expression twice.
      auto pending = run_on_pool(state->pool, std::move(job));
      HttpResponse response = co_await std::move(pending);
      keep_alive = keep_alive && !state_->draining.load();
      auto writing = write(std::move(response), keep_alive);
      bool written = co_await std::move(writing);
      busy_.store(false);
      if (!written || !keep_alive) break;
    }
    if (refusal.first != 0) {
      HttpResponse response = plain_error(refusal.first, refusal.second);
      auto writing = write(std::move(response), false);
      co_await std::move(writing);
    }
    boost::system::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
    forget();
    (void)self;  // kept the connection alive while the coroutine ran
  }

 private:
  std::atomic<bool> busy_{false};  // between a request's header and its response's last byte
  static bool is_protocol_error(const boost::system::error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_target).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
  }

  HttpRequest to_request(http::request<http::string_body> message) {
    HttpRequest r;
    r.method = std::string(view(message.method_string()));
    r.target = std::string(view(message.target()));
    size_t q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (q != std::string::npos) r.query = r.target.substr(q + 1);
    for (const auto& field : message) {
      r.headers.emplace_back(lower(view(field.name_string())), trim(view(field.value())));
    }
    r.body = std::move(message.body());
    r.remote = remote_;
    return r;
  }

  // Writes the response; false when the connection failed.
  awaitable<bool> write(HttpResponse response, bool keep_alive) {
    http::response<http::string_body> out;
    out.version(11);
    out.result(static_cast<unsigned>(response.status));
    out.set(http::field::date, http_date(std::chrono::system_clock::now()));
    for (auto& [name, value] : response.headers) out.insert(name, value);
    out.body() = std::move(response.body);
    out.keep_alive(keep_alive);
    out.prepare_payload();
    boost::system::error_code ec;
    stream_.expires_after(state_->options.write_timeout);
    co_await http::async_write(stream_, out, redirect_error(use_awaitable, ec));
    co_return !ec;
  }

  void forget() {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->connections.erase(id_);
  }

  std::shared_ptr<ServerState> state_;
  uint64_t id_;
  beast::tcp_stream stream_;
  std::string remote_;
};

awaitable<void> accept_loop(std::shared_ptr<ServerState> state) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await state->acceptor.async_accept(
        asio::any_io_executor(asio::make_strand(state->io)), redirect_error(use_awaitable, ec));
    if (ec) {
      if (!state->acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      logger("api")->warn("accept: {}", ec.message());
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);

    std::shared_ptr<Connection> connection;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      if (state->stopped) co_return;
      if (state->connections.size() >= state->options.max_connections) {
        socket.close(ignored);  // over the limit: the client sees a reset and may retry
        continue;
      }
      uint64_t id = ++state->next_connection;
      connection = std::make_shared<Connection>(state, std::move(socket), id);
      state->connections[id] = connection;
    }
    asio::co_spawn(connection->executor(), connection->run(connection), asio::detached);
  }
}

}  // namespace

const std::string* HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

struct HttpServer::Impl {
  std::shared_ptr<ServerState> state;
  bool joined = false;
};

Result<std::unique_ptr<HttpServer>> HttpServer::start(asio::io_context& io,
                                                      HttpServerOptions options,
                                                      HttpHandler handler) {
  auto state = std::make_shared<ServerState>(io, std::move(options), std::move(handler));
  const HttpServerOptions& opts = state->options;

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
  return std::make_unique<HttpServer>(std::make_unique<Impl>(Impl{state}));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::port() const { return impl_->state->port; }

void HttpServer::stop() {
  std::shared_ptr<ServerState> state = impl_->state;
  std::vector<std::shared_ptr<Connection>> connections;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    if (!state->stopped) {
      state->stopped = true;
      for (auto& [id, weak] : state->connections) {
        if (auto c = weak.lock()) connections.push_back(std::move(c));
      }
    }
  }
  asio::post(state->acceptor.get_executor(), [state] {
    boost::system::error_code ec;
    state->acceptor.close(ec);
  });
  for (auto& c : connections) c->close_soon(c);
  if (!impl_->joined) {
    impl_->joined = true;
    state->pool.join();
  }
}

void HttpServer::drain(std::chrono::milliseconds grace) {
  std::shared_ptr<ServerState> state = impl_->state;
  state->draining.store(true);
  asio::post(state->acceptor.get_executor(), [state] {
    boost::system::error_code ec;
    state->acceptor.close(ec);
  });
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<std::shared_ptr<Connection>> idle;
    size_t open = 0;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      for (auto& [id, weak] : state->connections) {
        if (auto c = weak.lock()) {
          ++open;
          if (!c->busy()) idle.push_back(std::move(c));
        }
      }
    }
    if (open == 0) break;
    for (auto& c : idle) c->close_soon(c);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop();
}

std::string http_date(std::chrono::system_clock::time_point when) {
  using namespace std::chrono;
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto secs = floor<seconds>(when);
  auto day = floor<days>(secs);
  year_month_day ymd{day};
  weekday wd{day};
  hh_mm_ss hms{secs - day};
  char out[64];
  std::snprintf(out, sizeof(out), "%s, %02u %s %04d %02d:%02d:%02d GMT", kDays[wd.c_encoding()],
                static_cast<unsigned>(ymd.day()), kMonths[static_cast<unsigned>(ymd.month()) - 1],
                static_cast<int>(ymd.year()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return out;
}

}  // namespace magnetic::api
