#include "api/errors.h"

#include <nlohmann/json.hpp>

#include "base/log.h"

namespace magnetic::api {

ApiError bad_request(std::string m) { return {400, "BadRequestException", std::move(m)}; }
ApiError not_found(std::string m) { return {404, "NotFoundException", std::move(m)}; }
ApiError already_exists(std::string m) { return {400, "AlreadyExistsException", std::move(m)}; }
ApiError limit_exceeded(std::string m) { return {400, "LimitExceededException", std::move(m)}; }
ApiError message_rejected(std::string m) { return {400, "MessageRejected", std::move(m)}; }
ApiError mail_from_not_verified(std::string m) {
  return {400, "MailFromDomainNotVerifiedException", std::move(m)};
}
ApiError sending_paused(std::string m) { return {400, "SendingPausedException", std::move(m)}; }
ApiError too_many_requests(std::string m) {
  return {429, "TooManyRequestsException", std::move(m)};
}
ApiError invalid_next_token(std::string m) {
  return {400, "InvalidNextTokenException", std::move(m)};
}
ApiError internal_error(std::string m) {
  return {500, "InternalServiceErrorException", std::move(m)};
}

ApiError from_status(const Status& status) {
  switch (status.code()) {
    case StatusCode::kNotFound:
      return not_found(status.message());
    case StatusCode::kAlreadyExists:
      return already_exists(status.message());
    case StatusCode::kInvalidArgument:
      return bad_request(status.message());
    default:
      logger("api")->warn("store: {}", status.message());
      return internal_error("The service could not complete the request; try again later.");
  }
}

HttpResponse error_response(const ApiError& error, const std::string& request_id) {
  HttpResponse r;
  r.status = error.status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("x-amzn-RequestId", request_id);
  r.headers.emplace_back("x-amzn-ErrorType", error.type);
  nlohmann::json body = {{"__type", error.type}, {"message", error.message}};
  // Replacement for invalid UTF-8 so a message quoting bad input never fails to serialize.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace magnetic::api
