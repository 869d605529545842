// The api tests' harness: the real ApiServer on 127.0.0.1 with a FakeStore (or any Store), a
// recording Submitter, a fixed clock, and a blocking client that signs its requests with SigV4
// the way the AWS SDKs do.
#pragma once

#include <utility>  // before Asio (Boost 1.74)

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "api/api_server.h"
#include "api/sigv4.h"
#include "base/log.h"
#include "fake_store.h"
#include "test_support.h"

namespace magnetic::api::testing {

using namespace std::chrono;

// 2026-03-14 15:09:26 UTC, a Saturday.
inline const system_clock::time_point kNow = sys_days(year(2026) / 3 / 14) + 15h + 9min + 26s;
constexpr const char* kKeyId = "AKIAEXAMPLE000000001";
constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

// Tests read responses, not logs: only the service's own failures are printed.
inline const bool kQuietLogs = [] {
  set_log_level("warn");
  return true;
}();

class FakeSubmitter : public service::Submitter {
 public:
  std::vector<service::SubmitResult> submit(
      std::vector<service::OutboundMessage> messages) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<service::SubmitResult> out;
    for (auto& m : messages) {
      service::SubmitResult r = judge ? judge(m) : service::SubmitResult{};
      if (r.refusal == service::Refusal::kNone) r.message_id = m.message_id;
      out.push_back(r);
      received.push_back(std::move(m));
    }
    ++calls;
    return out;
  }
  std::function<service::SubmitResult(const service::OutboundMessage&)> judge;
  std::vector<service::OutboundMessage> received;
  int calls = 0;

 private:
  std::mutex mu_;
};

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  std::string error_type() const {
    auto it = headers.find("x-amzn-errortype");
    return it == headers.end() ? "" : it->second;
  }
  std::string message() const {
    nlohmann::json j = json();
    return j.is_object() && j.contains("message") ? j["message"].get<std::string>() : "";
  }
};

struct RequestOptions {
  std::vector<std::pair<std::string, std::string>> headers;  // more headers, signed
  bool sign = true;
  std::string key_id;  // empty: the server's test key
  std::string secret;
  system_clock::time_point when = kNow;
  std::string region = "us-east-1";
};

// With MAGNETIC_API_TEST_REAL_STORE defined (the api_store_test binary) the server runs on the
// real SQLite store in a temporary folder; otherwise on the FakeStore.
class TestServer {
 public:
  explicit TestServer(const std::function<void(ApiOptions&)>& configure = {}) {
#ifdef MAGNETIC_API_TEST_REAL_STORE
    auto opened = store::Store::open((dir_.path() / "data").string());
    EXPECT_TRUE(opened.is_ok()) << opened.status().message();
    real_ = std::move(*opened);
    store_ = real_.get();
    auto key = store_->create_key("test");
    EXPECT_TRUE(key.is_ok());
    key_id_ = key->access_key_id;
    secret_ = key->secret;
#else
    store_ = &fake_;
    (void)fake_.add_key(kKeyId, kSecret);
    key_id_ = kKeyId;
    secret_ = kSecret;
#endif
    ApiOptions options;
    options.clock = [] { return kNow; };
    options.dkim_selector_prefix = "test";
    if (configure) configure(options);
    auto server = ApiServer::start(io_, options, *store_, submitter);
    EXPECT_TRUE(server.is_ok()) << server.status().message();
    server_ = std::move(*server);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    server_->stop();
    server_.reset();
    io_.stop();
    thread_.join();
  }

  store::Store& store() { return *store_; }
  const std::string& key_id() const { return key_id_; }
  uint16_t port() const { return server_->port(); }

  // Sends one request on a new connection; target is the path with its query, as sent.
  Response call(const std::string& method, const std::string& target, const std::string& body = "",
                const RequestOptions& o = {}) {
    namespace beast = boost::beast;
    namespace http = beast::http;
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port()));
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    std::string host = "127.0.0.1:" + std::to_string(port());
    std::vector<std::pair<std::string, std::string>> headers = {{"host", host}};
    if (!body.empty()) headers.emplace_back("content-type", "application/json");
    for (const auto& h : o.headers) headers.push_back(h);
    if (o.sign) sign(method, target, body, with_key(o), headers);
    for (const auto& [n, v] : headers) req.set(n, v);
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(100 * 1024 * 1024);
    http::read(stream, buffer, parser);
    auto res = parser.release();
    Response out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = res.body();
    beast::error_code ec;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    return out;
  }

  Response post(const std::string& target, const nlohmann::json& body) {
    return call("POST", target, body.dump());
  }
  Response put(const std::string& target, const nlohmann::json& body) {
    return call("PUT", target, body.dump());
  }
  Response get(const std::string& target) { return call("GET", target); }
  Response del(const std::string& target) { return call("DELETE", target); }

  // A NextToken as a query value.
  static std::string encode(const std::string& value) { return sigv4_uri_encode(value, false); }

  // Sends bytes as they are on a new connection and returns everything the server writes until
  // it closes the connection (or `wait_for` appears in what was read, when given).
  std::string raw(const std::string& bytes, const std::string& wait_for = "") {
    namespace beast = boost::beast;
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port()));
    boost::asio::write(socket, boost::asio::buffer(bytes));
    std::string out;
    char buffer[65536];
    for (;;) {
      beast::error_code ec;
      size_t n = socket.read_some(boost::asio::buffer(buffer), ec);
      out.append(buffer, n);
      if (ec) break;
      if (!wait_for.empty() && out.find(wait_for) != std::string::npos) break;
    }
    return out;
  }

  // Sends bytes and goes away at once.
  void send_and_close(const std::string& bytes) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port()));
    boost::asio::write(socket, boost::asio::buffer(bytes));
  }

  // A signed request as raw HTTP/1.1 text (for tests that speak HTTP by hand).
  std::string signed_text(const std::string& method, const std::string& target,
                          const std::string& body,
                          std::vector<std::pair<std::string, std::string>> extra = {}) {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"host", "127.0.0.1:" + std::to_string(port())}};
    for (auto& h : extra) headers.push_back(h);
    sign(method, target, body, with_key(RequestOptions{}), headers);
    std::string text = method + " " + target + " HTTP/1.1\r\n";
    for (const auto& [n, v] : headers) text += n + ": " + v + "\r\n";
    text += "content-length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return text;
  }

  // Signs as the SDKs do: every header given is signed, with the body's hash.
  static void sign(const std::string& method, const std::string& target, const std::string& body,
                   const RequestOptions& o,
                   std::vector<std::pair<std::string, std::string>>& headers) {
    auto t = floor<seconds>(o.when);
    auto d = floor<days>(t);
    year_month_day ymd{d};
    hh_mm_ss hms{t - d};
    char amz[32];
    std::snprintf(amz, sizeof(amz), "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    std::string date(amz, 8);
    headers.emplace_back("x-amz-date", amz);
    std::vector<std::string> names;
    for (const auto& [n, v] : headers) names.push_back(n);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    size_t q = target.find('?');
    std::string path = target.substr(0, q);
    std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    std::string canonical =
        sigv4_canonical_request(method, path, query, headers, names, sha256_hex(body));
    std::string scope = date + "/" + o.region + "/ses/aws4_request";
    std::string sts = sigv4_string_to_sign(amz, scope, canonical);
    std::string signed_names;
    for (const auto& n : names) signed_names += (signed_names.empty() ? "" : ";") + n;
    headers.emplace_back("authorization",
                         "AWS4-HMAC-SHA256 Credential=" + o.key_id + "/" + scope +
                             ", SignedHeaders=" + signed_names + ", Signature=" +
                             sigv4_signature(o.secret, date, o.region, "ses", sts));
  }

  FakeSubmitter submitter;

 private:
  RequestOptions with_key(RequestOptions o) const {
    if (o.key_id.empty()) o.key_id = key_id_;
    if (o.secret.empty()) o.secret = secret_;
    return o;
  }

  magnetic::testing::TempDir dir_;
  FakeStore fake_;
  std::unique_ptr<store::Store> real_;
  store::Store* store_ = nullptr;
  std::string key_id_, secret_;
  boost::asio::io_context io_;
  std::unique_ptr<ApiServer> server_;
  std::thread thread_;
};

}  // namespace magnetic::api::testing
