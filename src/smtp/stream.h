// Internal to smtp/: the byte stream under one SMTP session (a TCP socket that STARTTLS
// upgrades in place to TLS) and the input buffer both the client and the sink parse from.
//
// Both sides read into one buffer with as much as the kernel has and parse every complete line
// from it, so a pipelined group costs one read, never one system call per line.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace magnetic::smtp::internal {

class Stream {
 public:
  explicit Stream(boost::asio::ip::tcp::socket socket) : plain_(std::move(socket)) {}

  // The TCP socket, under TLS once it is active.
  boost::asio::ip::tcp::socket& socket() { return tls_ ? tls_->next_layer() : plain_; }
  bool tls() const { return tls_ != nullptr; }
  bool is_open() { return socket().is_open(); }

  // Reads what is available (at least one byte). ec is set on failure; never throws.
  boost::asio::awaitable<size_t> read_some(boost::asio::mutable_buffer buffer,
                                           boost::system::error_code& ec);
  // Writes all of buffer (one system call when the kernel takes it all).
  boost::asio::awaitable<void> write(boost::asio::const_buffer buffer,
                                     boost::system::error_code& ec);
  // Starts TLS on the connection. sni is sent as server name when not empty (client side).
  boost::asio::awaitable<void> handshake(boost::asio::ssl::context& context,
                                         boost::asio::ssl::stream_base::handshake_type type,
                                         const std::string& sni, bool verify_peer,
                                         boost::system::error_code& ec);

  // Aborts pending reads and writes (they finish with operation_aborted).
  void cancel();
  void close();

 private:
  boost::asio::ip::tcp::socket plain_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls_;
};

// A byte buffer read into at the end and consumed at the front.
class InBuffer {
 public:
  explicit InBuffer(size_t capacity = 16 * 1024) : data_(capacity) {}

  std::string_view view() const { return {data_.data() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void clear() { begin_ = end_ = 0; }
  // Free space of at least min_free bytes at the end (moves or grows the data as needed).
  boost::asio::mutable_buffer prepare(size_t min_free);
  void commit(size_t n) { end_ += n; }

 private:
  std::vector<char> data_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

// Base64 (RFC 4648, with padding), for AUTH.
std::string base64_encode(std::string_view data);
// Strict: the standard alphabet, padded to a multiple of 4, no spaces or line breaks. False on
// anything else (out is then unspecified).
bool base64_decode(std::string_view text, std::string& out);

}  // namespace magnetic::smtp::internal
