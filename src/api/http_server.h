// A small HTTP/1.1 server for the API: keep-alive, limits on header and body size, timeouts on
// every read and write, and a pool of threads for the handler so that blocking work (the store,
// the spool's group commit) never holds an I/O thread.
//
// The server knows nothing of AWS: it hands each complete request to one handler function and
// writes what it returns. Malformed requests are answered by the server itself (400, 413, 431)
// and the connection is closed; nothing a client sends can end the process.
//
// Thread-safety: start, port and stop may be called from any thread; the io_context may run on
// any number of threads (each connection is on its own strand). The handler is called on the
// pool's threads, concurrently for different connections.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace magnetic::api {

struct HttpRequest {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // the request-target as sent: path and query, percent-encoding kept
  std::string path;    // target before '?'
  std::string query;   // target after '?', without it; empty when there is none
  // Header fields in the order received, names in lower case, values without surrounding
  // whitespace. Repeated fields stay separate entries.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote;  // peer address and port, for logs

  // The value of the first field of this name (lower case), or nullptr.
  const std::string* header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Date, Content-Length
  std::string body;
};

struct HttpServerOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;  // 0: an ephemeral port
  size_t max_body = 40 * 1024 * 1024;
  size_t max_header = 64 * 1024;            // request line and all fields together
  std::chrono::seconds header_timeout{30};  // to receive the request line and fields
  std::chrono::seconds body_timeout{300};   // to receive the body once the fields are in
  std::chrono::seconds idle_timeout{60};    // between requests on a kept-alive connection
  std::chrono::seconds write_timeout{60};
  size_t max_connections = 1000;  // beyond this, new connections are closed at once
  int handler_threads = 2;
};

// Called on a pool thread for each request; may block.
using HttpHandler = std::function<HttpResponse(HttpRequest& request)>;

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> start(boost::asio::io_context& io,
                                                   HttpServerOptions options, HttpHandler handler);
  // Stops accepting, closes every connection and waits for running handlers to return.
  ~HttpServer();
  uint16_t port() const;
  // As the destructor; may be called more than once. Must not be called from a handler.
  void stop();
  // A graceful stop: stops accepting, closes idle connections, lets each request being handled
  // finish and its response go out (with "Connection: close"), then stop(). Waits at most
  // `grace` for those requests. A client whose request was accepted gets its answer, so it
  // does not send again what was already committed. Blocks; call it off the io threads.
  void drain(std::chrono::milliseconds grace);

  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// The RFC 7231 date for the Date header: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::chrono::system_clock::time_point when);

}  // namespace magnetic::api
