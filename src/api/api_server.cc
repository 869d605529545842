#include "api/api_server.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "base/log.h"

#include "api/http_server.h"
#include "api/ses_api.h"

namespace magnetic::api {
namespace {

HttpResponse json_answer(int status, const std::string& type, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = nlohmann::json{{"__type", type}, {"message", message}}.dump();
  return r;
}

// The feedback endpoint: not SigV4 (the provider posting has no key of ours) but a bearer token,
// compared in constant time.
HttpResponse feedback_endpoint(const ApiOptions& options, const HttpRequest& request) {
  if (request.method != "POST") {
    HttpResponse r = json_answer(405, "MethodNotAllowed", "POST the report");
    r.headers.emplace_back("Allow", "POST");
    return r;
  }
  std::string given;
  for (const auto& [name, value] : request.headers) {
    if (name == "authorization" && value.size() > 7 &&
        std::equal(value.begin(), value.begin() + 7, "Bearer ", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        }))
      given = value.substr(7);
  }
  const std::string& want = options.feedback_token;
  if (given.size() != want.size() || CRYPTO_memcmp(given.data(), want.data(), want.size()) != 0) {
    logger("api")->info("POST {}: 401 (no or wrong bearer token) ({})", kFeedbackPath,
                        request.remote);
    HttpResponse r = json_answer(401, "UnauthorizedException", "a valid bearer token is required");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  auto [status, body] = options.feedback_report(request.body);
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

}  // namespace

struct ApiServer::Impl {
  std::shared_ptr<SesApi> api;
  std::unique_ptr<HttpServer> http;
};

Result<std::unique_ptr<ApiServer>> ApiServer::start(boost::asio::io_context& io, ApiOptions options,
                                                    store::Store& store,
                                                    service::Submitter& submitter) {
  // Selectors are DNS labels: the prefix must leave room for the 8 random characters.
  const std::string& prefix = options.dkim_selector_prefix;
  bool label =
      prefix.size() <= 55 &&
      std::all_of(prefix.begin(), prefix.end(),
                  [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; }) &&
      (prefix.empty() || prefix.front() != '-');
  if (!label) {
    return Status::invalid(
        "dkim_selector_prefix must be at most 55 letters, digits and hyphens, "
        "not starting with a hyphen; got '" +
        prefix + "'");
  }

  HttpServerOptions http;
  http.listen_host = options.listen_host;
  http.listen_port = options.listen_port;
  http.max_body = options.max_body;
  http.max_connections = options.max_connections;
  http.handler_threads = options.handler_threads;
  auto feedback = std::make_shared<ApiOptions>(options);
  bool feedback_on = !options.feedback_token.empty() && options.feedback_report;
  auto api = std::make_shared<SesApi>(store, submitter, std::move(options));
  auto server = HttpServer::start(io, http, [api, feedback, feedback_on](HttpRequest& request) {
    if (feedback_on && request.path == kFeedbackPath) return feedback_endpoint(*feedback, request);
    return api->handle(request);
  });
  if (!server) return server.status();
  auto impl = std::make_unique<Impl>();
  impl->api = std::move(api);
  impl->http = std::move(*server);
  return std::make_unique<ApiServer>(std::move(impl));
}

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ApiServer::~ApiServer() { stop(); }

uint16_t ApiServer::port() const { return impl_->http->port(); }

void ApiServer::stop() { impl_->http->stop(); }
void ApiServer::drain(std::chrono::milliseconds grace) { impl_->http->drain(grace); }

}  // namespace magnetic::api
