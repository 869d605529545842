#include "smtp/stream.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

namespace magnetic::smtp::internal {

namespace asio = boost::asio;
using asio::redirect_error;
using asio::use_awaitable;

asio::awaitable<size_t> Stream::read_some(asio::mutable_buffer buffer,
                                          boost::system::error_code& ec) {
  if (tls_) co_return co_await tls_->async_read_some(buffer, redirect_error(use_awaitable, ec));
  co_return co_await plain_.async_read_some(buffer, redirect_error(use_awaitable, ec));
}

asio::awaitable<void> Stream::write(asio::const_buffer buffer, boost::system::error_code& ec) {
  if (tls_) {
    co_await asio::async_write(*tls_, buffer, redirect_error(use_awaitable, ec));
  } else {
    co_await asio::async_write(plain_, buffer, redirect_error(use_awaitable, ec));
  }
}

asio::awaitable<void> Stream::handshake(asio::ssl::context& context,
                                        asio::ssl::stream_base::handshake_type type,
                                        const std::string& sni, bool verify_peer,
                                        boost::system::error_code& ec) {
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket>>(std::move(plain_), context);
  if (type == asio::ssl::stream_base::client) {
    if (!sni.empty()) SSL_set_tlsext_host_name(tls_->native_handle(), sni.c_str());
    if (verify_peer) {
      tls_->set_verify_mode(asio::ssl::verify_peer);
      tls_->set_verify_callback(asio::ssl::host_name_verification(sni));
    } else {
      tls_->set_verify_mode(asio::ssl::verify_none);
    }
  }
  co_await tls_->async_handshake(type, redirect_error(use_awaitable, ec));
}

void Stream::cancel() {
  boost::system::error_code ec;
  socket().cancel(ec);
}

void Stream::close() {
  boost::system::error_code ec;
  socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket().close(ec);
}

asio::mutable_buffer InBuffer::prepare(size_t min_free) {
  if (data_.size() - end_ < min_free) {
    if (begin_ > 0) {
      std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (data_.size() - end_ < min_free) data_.resize(std::max(data_.size() * 2, end_ + min_free));
  }
  return asio::buffer(data_.data() + end_, data_.size() - end_);
}

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace magnetic::smtp::internal
