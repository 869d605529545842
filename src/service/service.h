// The running service behind `magnetic serve`: the message spool, the delivery engine, and the
// submission policy (service::Submitter) that the HTTP API and SMTP submission share.
//
// submit() checks every message against the store (From identity, configuration set, account
// sending and quota), marks suppressed recipients, and hands the accepted ones to a committer
// thread that writes everything that arrived meanwhile in one spool transaction: concurrent
// API and SMTP clients share each fsync (group commit), and each caller returns once its own
// messages are durable.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "dns/resolver.h"
#include "events/dispatcher.h"
#include "service/delivery.h"
#include "service/feedback_loop.h"
#include "service/submit.h"
#include "store/store.h"

namespace magnetic::service {

struct ServiceOptions {
  std::string spool_path;  // the message spool file
  DeliveryOptions delivery;
  dns::ResolverOptions resolver;
  // Events: the outbox file, the folder of JSON-lines destinations, and the webhook delivery.
  std::string outbox_path;
  std::string events_dir;
  events::DispatcherOptions dispatcher;
  // Bounces, complaints, suppression and the reputation guard. Its bounce_domain and verp_key
  // are also given to delivery (VERP).
  FeedbackOptions feedback;
  std::string region = "us-east-1";  // for identity ARNs in event records
};

class Service : public Submitter {
 public:
  static Result<std::unique_ptr<Service>> start(ServiceOptions options, store::Store& store);
  ~Service() override;

  std::vector<SubmitResult> submit(std::vector<OutboundMessage> messages) override;
  void rendering_failed(const RenderingFailure& failure) override;

  // Whether a created identity covers this address (the address, its domain or a parent
  // domain). SMTP submission asks this of MAIL FROM.
  bool may_send_as(const std::string& address);

  // Stops accepting, lets delivery finish what is in flight (up to the grace time), and joins.
  void stop();

  const DeliveryStats& delivery_stats() const;
  spool::MessageSpool& spool();
  // Inbound bounces and complaints (the feedback listener and the HTTP endpoint).
  FeedbackLoop& feedback();

  struct Impl;

 private:
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace magnetic::service
