#include "api/api_server.h"

#include <algorithm>
#include <cctype>

#include "api/http_server.h"
#include "api/ses_api.h"

namespace magnetic::api {

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
  auto api = std::make_shared<SesApi>(store, submitter, std::move(options));
  auto server =
      HttpServer::start(io, http, [api](HttpRequest& request) { return api->handle(request); });
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
