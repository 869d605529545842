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

bool base64_decode(std::string_view text, std::string& out) {
  // Written out rather than with EVP_DecodeBlock, which skips white space and counts padding as
  // zero bytes: AUTH responses must be refused when they are not exactly base64.
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.clear();
  if (text.size() % 4 != 0) return false;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    uint32_t group = 0;
    for (size_t j = 0; j < 4; ++j) {
      int v = j >= 4 - static_cast<size_t>(pad) ? 0 : value(text[i + j]);
      if (v < 0) return false;
      group = group << 6 | static_cast<uint32_t>(v);
    }
    out.push_back(static_cast<char>(group >> 16));
    if (pad < 2) out.push_back(static_cast<char>(group >> 8 & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(group & 0xff));
  }
  return true;
}

}  // namespace magnetic::smtp::internal
