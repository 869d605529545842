// The server as a whole: authentication before routing, unknown routes and methods, bodies that
// are not JSON, HTTP limits, keep-alive, 100-continue and garbage on the wire.
#include <gtest/gtest.h>

#include <thread>

#include "test_server.h"

namespace magnetic::api::testing {
namespace {

using nlohmann::json;

void expect_error(const Response& r, int status, const std::string& type) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.error_type(), type);
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.json()["__type"], type);
  EXPECT_TRUE(r.json()["message"].is_string());
}

TEST(Server, UnsignedRequestsAreRefusedBeforeRouting) {
  TestServer server;
  RequestOptions unsigned_request;
  unsigned_request.sign = false;
  Response r = server.call("GET", "/v2/email/account", "", unsigned_request);
  expect_error(r, 403, "MissingAuthenticationTokenException");
  r = server.call("GET", "/no/such/route", "", unsigned_request);
  expect_error(r, 403, "MissingAuthenticationTokenException");
}

TEST(Server, AuthenticationFailures) {
  TestServer server;
  RequestOptions o;
  o.secret = "wrong";
  expect_error(server.call("GET", "/v2/email/account", "", o), 403, "SignatureDoesNotMatch");

  o = {};
  o.key_id = "AKIAUNKNOWNKEY000000";
  o.secret = "whatever";
  expect_error(server.call("GET", "/v2/email/account", "", o), 403, "UnrecognizedClientException");

  ASSERT_TRUE(server.store().revoke_key(server.key_id()).is_ok());
  expect_error(server.get("/v2/email/account"), 403, "UnrecognizedClientException");
}

TEST(Server, ClockSkew) {
  TestServer server;
  RequestOptions o;
  o.when = kNow - 16min;
  Response r = server.call("GET", "/v2/email/account", "", o);
  expect_error(r, 403, "InvalidSignatureException");
  EXPECT_EQ(r.message(),
            "Signature expired: 20260314T145326Z is more than 15 min from the "
            "server's time 20260314T150926Z.");
  o.when = kNow + 14min;
  EXPECT_EQ(server.call("GET", "/v2/email/account", "", o).status, 200);
}

TEST(Server, SkewLimitIsAnOption) {
  TestServer server([](ApiOptions& o) { o.max_clock_skew = 60s; });
  RequestOptions o;
  o.when = kNow - 61s;
  expect_error(server.call("GET", "/v2/email/account", "", o), 403, "InvalidSignatureException");
}

TEST(Server, UnknownRouteAndWrongMethod) {
  TestServer server;
  Response r = server.get("/v2/email/contact-lists");
  expect_error(r, 404, "UnknownOperationException");
  EXPECT_EQ(r.message(),
            "GET /v2/email/contact-lists is not an SES v2 operation that this service implements.");
  expect_error(server.get("/"), 404, "UnknownOperationException");
  expect_error(server.get("/v2/email/templates/a/b/c"), 404, "UnknownOperationException");

  r = server.call("PATCH", "/v2/email/templates/welcome");
  expect_error(r, 405, "MethodNotAllowedException");
  EXPECT_EQ(r.headers["allow"], "GET, PUT, DELETE");
  EXPECT_EQ(r.message(),
            "Method PATCH is not allowed on /v2/email/templates/welcome; use GET, PUT, DELETE.");
}

TEST(Server, BodiesThatAreNotJsonObjects) {
  TestServer server;
  Response r = server.call("POST", "/v2/email/templates", "{not json");
  expect_error(r, 400, "BadRequestException");
  EXPECT_EQ(r.message(), "The request body is not valid JSON.");
  r = server.call("POST", "/v2/email/templates", "[1, 2]");
  EXPECT_EQ(r.message(), "The request body must be a JSON object.");
  r = server.call("POST", "/v2/email/templates", std::string(100, '[') + std::string(100, ']'));
  EXPECT_EQ(r.message(), "The request body nests deeper than 64 levels.");
  r = server.call("POST", "/v2/email/templates", "{\"TemplateName\": \"\xff\"}");
  EXPECT_EQ(r.message(), "The request body is not valid JSON.");
  // No body at all for an operation with required members: named as missing.
  r = server.call("POST", "/v2/email/templates", "");
  EXPECT_EQ(r.message(), "Missing required field TemplateName.");
}

TEST(Server, BodyLimit) {
  TestServer server([](ApiOptions& o) { o.max_body = 1000; });
  std::string big = "{\"TemplateName\":\"" + std::string(2000, 'x') + "\"}";
  std::string out = server.raw(server.signed_text("POST", "/v2/email/templates", big));
  EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 413");
  EXPECT_NE(out.find("request body larger than 1000 bytes\n"), std::string::npos) << out;
  // Chunked, without a Content-Length: refused while reading.
  std::string chunked =
      "POST /v2/email/templates HTTP/1.1\r\nHost: x\r\n"
      "Transfer-Encoding: chunked\r\n\r\n7d0\r\n" +
      std::string(2000, 'x') + "\r\n0\r\n\r\n";
  out = server.raw(chunked);
  EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 413");
}

TEST(Server, HeaderLimit) {
  TestServer server;
  std::string request =
      "GET /v2/email/account HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70 * 1024, 'a') +
      "\r\n\r\n";
  std::string out = server.raw(request);
  EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 431");
}

TEST(Server, GarbageGetsA400AndTheServerGoesOn) {
  TestServer server;
  for (const std::string& garbage :
       {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),
        std::string("HELLO\r\n\r\n"), std::string("GET  HTTP/1.1\r\n\r\n"),
        std::string("GET /v2/email/account HTTP/1.1\r\nBad Header Line\r\n\r\n"),
        std::string("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
        std::string("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde")}) {
    std::string out = server.raw(garbage);
    EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 400") << garbage << "\n" << out;
  }
  EXPECT_EQ(server.raw("GET / HTTP/9.9\r\n\r\n").substr(0, 12), "HTTP/1.1 400");
  // A client that goes away in the middle of a body costs nothing either.
  server.send_and_close(
      "POST /v2/email/templates HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\"");
  EXPECT_EQ(server.get("/v2/email/account").status, 200);
}

TEST(Server, KeepAliveServesRequestsInOrder) {
  TestServer server;
  std::string first = server.signed_text("GET", "/v2/email/account", "");
  std::string second =
      server.signed_text("GET", "/v2/email/templates/none", "", {{"connection", "close"}});
  std::string out = server.raw(first + second);
  size_t ok = out.find("HTTP/1.1 200 OK\r\n");
  size_t missing = out.find("HTTP/1.1 404 Not Found\r\n");
  ASSERT_NE(ok, std::string::npos) << out;
  ASSERT_NE(missing, std::string::npos) << out;
  EXPECT_LT(ok, missing);
  EXPECT_NE(out.find("x-amzn-ErrorType: NotFoundException\r\n"), std::string::npos) << out;
}

TEST(Server, ExpectContinue) {
  TestServer server;
  std::string body = json({{"TemplateName", "t"}, {"TemplateContent", {{"Text", "x"}}}}).dump();
  std::string text = server.signed_text("POST", "/v2/email/templates", body,
                                        {{"expect", "100-continue"}, {"connection", "close"}});
  size_t split = text.find("\r\n\r\n") + 4;
  // Headers first; the interim response must come before the body is sent.
  namespace beast = boost::beast;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
  boost::asio::write(socket, boost::asio::buffer(text.substr(0, split)));
  char buffer[4096];
  std::string got;
  while (got.find("\r\n\r\n") == std::string::npos) {
    got.append(buffer, socket.read_some(boost::asio::buffer(buffer)));
  }
  EXPECT_EQ(got, "HTTP/1.1 100 Continue\r\n\r\n");
  boost::asio::write(socket, boost::asio::buffer(text.substr(split)));
  got.clear();
  for (;;) {
    beast::error_code ec;
    size_t n = socket.read_some(boost::asio::buffer(buffer), ec);
    got.append(buffer, n);
    if (ec) break;
  }
  EXPECT_EQ(got.substr(0, 15), "HTTP/1.1 200 OK") << got;
  EXPECT_TRUE(server.store().get_template("t").is_ok());
}

TEST(Server, ConcurrentClients) {
  TestServer server;
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        json body = {{"TemplateName", "t" + std::to_string(t) + "-" + std::to_string(i)},
                     {"TemplateContent", {{"Text", "x"}}}};
        if (server.post("/v2/email/templates", body).status == 200) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ(server.get("/v2/email/templates?PageSize=100").json()["TemplatesMetadata"].size(),
            100u);
}

TEST(Server, RequestIdAndDateOnEveryResponse) {
  TestServer server;
  Response a = server.get("/v2/email/account");
  Response b = server.get("/v2/email/nothing");
  EXPECT_EQ(a.headers["x-amzn-requestid"].size(), 26u);
  EXPECT_EQ(b.headers["x-amzn-requestid"].size(), 26u);
  EXPECT_NE(a.headers["x-amzn-requestid"], b.headers["x-amzn-requestid"]);
  EXPECT_EQ(a.headers["date"].substr(a.headers["date"].size() - 4), " GMT");
}

}  // namespace
}  // namespace magnetic::api::testing
