// The SES v2 HTTP API: what `magnetic serve` offers to the AWS CLI (`aws sesv2 --endpoint-url`)
// and the AWS SDKs (@aws-sdk/client-sesv2, boto3).
//
// Requests are REST-JSON under /v2/email/..., signed with AWS Signature Version 4 with an access
// key of the store (api/sigv4.h); the operations served are listed in api/ses_api.h. Messages are
// built here (MIME, templates rendered) and handed whole to the Submitter, which decides whether
// they may be sent and spools them; a 200 answer to SendEmail means the message is durable.
//
// Lifetime: start() binds and begins accepting on `io`, which the caller runs (on any number of
// threads). store and submitter must outlive the server. stop() (or the destructor) closes every
// connection and waits for handlers still running; destroy the server before the io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "service/submit.h"
#include "store/store.h"

namespace magnetic::api {

struct ApiOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;  // 0: an ephemeral port
  // How far X-Amz-Date may be from the server's clock (AWS allows 15 minutes).
  std::chrono::seconds max_clock_skew{900};
  size_t max_body = 40 * 1024 * 1024;  // SES: 40 MB for a whole request with base64 content
  // DKIM selectors made for new domain identities are this prefix and 8 random characters
  // ("mm" when empty), e.g. "mm4k2x9qzp".
  std::string dkim_selector_prefix;
  // Threads that run the operations, which block on the store and on the Submitter. They mostly
  // wait (a submit waits for the spool's group commit), and callers waiting together are
  // committed together, so there are more of them than cores.
  int handler_threads = 8;
  size_t max_connections = 1000;
  // The clock for signatures, Date fields and timestamps; the system clock when empty (tests
  // set it so that outputs are exact).
  std::function<std::chrono::system_clock::time_point()> clock;

  // Feedback reports by HTTP, for providers that post complaints (ARF) or bounces instead of
  // mailing them: POST /feedback/v1/reports with the raw message as the body and
  // "Authorization: Bearer <feedback_token>". Off when the token is empty. The callback answers
  // with an HTTP status and a JSON body.
  std::string feedback_token;
  std::function<std::pair<int, std::string>(std::string_view raw)> feedback_report;
};

// The path of the feedback endpoint.
inline constexpr std::string_view kFeedbackPath = "/feedback/v1/reports";

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> start(boost::asio::io_context& io, ApiOptions options,
                                                  store::Store& store,
                                                  service::Submitter& submitter);
  ~ApiServer();
  uint16_t port() const;
  void stop();
  // Graceful: requests being handled get their answers first (see HttpServer::drain).
  void drain(std::chrono::milliseconds grace);

  struct Impl;
  explicit ApiServer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace magnetic::api
