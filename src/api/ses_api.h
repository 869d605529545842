// Internal to api/: one request in, one response out, with no sockets involved: SigV4 check,
// routing to the operation, body parsing, and the SES error or JSON answer. ApiServer runs it on
// its handler threads; tests may call it directly.
//
// Operations served (SES v2 model names), all under /v2/email:
//   SendEmail, SendBulkEmail;
//   CreateEmailTemplate, GetEmailTemplate, UpdateEmailTemplate, DeleteEmailTemplate,
//   ListEmailTemplates, TestRenderEmailTemplate;
//   GetAccount, PutAccountSendingAttributes, PutAccountSuppressionAttributes;
//   CreateEmailIdentity, GetEmailIdentity, ListEmailIdentities, DeleteEmailIdentity;
//   CreateConfigurationSet, GetConfigurationSet, ListConfigurationSets, DeleteConfigurationSet,
//   PutConfigurationSet{Delivery,Reputation,Sending,Suppression,Tracking}Options;
//   CreateConfigurationSetEventDestination, GetConfigurationSetEventDestinations,
//   UpdateConfigurationSetEventDestination, DeleteConfigurationSetEventDestination;
//   PutSuppressedDestination, GetSuppressedDestination, DeleteSuppressedDestination,
//   ListSuppressedDestinations.
// ListEmailIdentities and ListConfigurationSets answer both at their GET paths (the model of the
// reference, botocore) and as POST /v2/email/list-identities and /list-configuration-sets with
// a Filter in the body (newer models; @aws-sdk/client-sesv2 3.1178 uses them).
// Any other path answers 404 UnknownOperationException; a known path with another method 405
// MethodNotAllowedException (with an Allow header). Authentication comes before routing, so
// without a valid signature nothing about the routes is revealed.
//
// Thread-safe: handle() may run on many threads at once.
#pragma once

#include <chrono>
#include <functional>

#include "api/api_server.h"
#include "api/http_server.h"

namespace magnetic::api {

class SesApi {
 public:
  SesApi(store::Store& store, service::Submitter& submitter, ApiOptions options);
  HttpResponse handle(const HttpRequest& request) const;

 private:
  std::chrono::system_clock::time_point now() const;

  store::Store& store_;
  service::Submitter& submitter_;
  ApiOptions options_;
};

}  // namespace magnetic::api
