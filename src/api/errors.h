// SES-shaped errors: what a handler returns when a request fails, and the HTTP response that
// carries it the way AWS's REST-JSON services do, so that the AWS CLI (botocore) and the JS SDK
// turn it into the named exception of the SES v2 model.
//
// Wire form: the status code of the model's error shape, an `x-amzn-ErrorType: <Type>` header
// (which both SDKs read first), and a JSON body {"__type": "<Type>", "message": "<why>"}.
#pragma once

#include <string>

#include "api/http_server.h"
#include "base/status.h"

namespace magnetic::api {

struct ApiError {
  int status = 400;
  std::string type;     // e.g. "BadRequestException"
  std::string message;  // says what is wrong and, for a bad field, which one
};

// The error shapes of the SES v2 model, with their HTTP status codes.
ApiError bad_request(std::string message);             // 400 BadRequestException
ApiError not_found(std::string message);               // 404 NotFoundException
ApiError already_exists(std::string message);          // 400 AlreadyExistsException
ApiError limit_exceeded(std::string message);          // 400 LimitExceededException
ApiError message_rejected(std::string message);        // 400 MessageRejected
ApiError mail_from_not_verified(std::string message);  // 400 MailFromDomainNotVerifiedException
ApiError sending_paused(std::string message);          // 400 SendingPausedException
ApiError too_many_requests(std::string message);       // 429 TooManyRequestsException
ApiError invalid_next_token(std::string message);      // 400 InvalidNextTokenException
ApiError internal_error(std::string message);          // 500 InternalServiceErrorException

// A store failure as the SES error a client expects: kNotFound -> NotFoundException,
// kAlreadyExists -> AlreadyExistsException, kInvalidArgument -> BadRequestException, anything
// else -> InternalServiceErrorException (logged, since it is ours and not the client's).
ApiError from_status(const Status& status);

// The response carrying the error; request_id goes into x-amzn-RequestId.
HttpResponse error_response(const ApiError& error, const std::string& request_id);

}  // namespace magnetic::api
