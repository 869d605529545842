// The service end to end inside one process: submit() into the spool, delivery into the
// project's capture sink on loopback, with the real metadata store.
#include "service/service.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "dkim/signer.h"
#include "events/outbox.h"
#include "smtp/sink.h"
#include "test_support.h"

namespace magnetic::service {
namespace {

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    maildir_ = dir_.path() / "maildir";
    smtp::SinkOptions so;
    so.maildir = maildir_.string();
    auto sink = smtp::SinkServer::start(sink_io_, so);
    ASSERT_TRUE(sink.is_ok()) << sink.status().message();
    sink_ = std::move(*sink);
    sink_thread_ = std::thread([this] { sink_io_.run(); });

    auto st = store::Store::open((dir_.path() / "data").string());
    ASSERT_TRUE(st.is_ok()) << st.status().message();
    store_ = std::move(*st);
    auto key = dkim::DkimKey::generate(dkim::Algorithm::kEd25519Sha256);
    ASSERT_TRUE(key.is_ok());
    public_txt_ = key->dns_txt_value();
    store::Identity id;
    id.name = "news.example";
    id.dkim_origin = "AWS_SES";
    id.dkim_selector = "sel1";
    id.dkim_private_key_pem = key->private_pem();
    id.dkim_key_length = "ED25519";
    ASSERT_TRUE(store_->create_identity(id).is_ok());
    start_service();
  }
  void TearDown() override {
    if (service_) service_->stop();
    service_.reset();
    sink_->stop();
    sink_io_.stop();
    sink_thread_.join();
  }
  void start_service() {
    ServiceOptions o;
    o.spool_path = (dir_.path() / "data" / "spool.db").string();
    o.outbox_path = (dir_.path() / "data" / "events.db").string();
    o.events_dir = (dir_.path() / "data" / "events").string();
    std::filesystem::create_directories(o.events_dir);
    o.resolver.routes["*"] = dns::Target{"127.0.0.1", sink_->port()};
    o.delivery.retry_initial = std::chrono::milliseconds(100);
    o.delivery.io_threads = 1;
    auto s = Service::start(o, *store_);
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    service_ = std::move(*s);
  }
  OutboundMessage message(const std::string& to, const std::string& from = "a@news.example") {
    OutboundMessage m;
    m.from = from;
    m.recipients = {to};
    m.data = "From: " + from + "\r\nTo: " + to +
             "\r\nSubject: hi\r\nMessage-ID: <x@news.example>\r\n\r\nhello\r\n";
    m.source = "test";
    return m;
  }
  // Waits (bounded) until the spool has no open recipients.
  void wait_final() {
    for (int i = 0; i < 500; ++i) {
      auto c = service_->spool().counts();
      if (c && c->pending + c->in_flight + c->deferred == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "delivery did not finish";
  }
  std::vector<std::string> delivered_files() {
    std::vector<std::string> out;
    if (!std::filesystem::exists(maildir_ / "new")) return out;
    for (const auto& e : std::filesystem::directory_iterator(maildir_ / "new")) {
      std::ifstream f(e.path(), std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      out.push_back(ss.str());
    }
    return out;
  }

  testing::TempDir dir_;
  std::filesystem::path maildir_;
  boost::asio::io_context sink_io_;
  std::unique_ptr<smtp::SinkServer> sink_;
  std::thread sink_thread_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Service> service_;
  std::string public_txt_;
};

TEST_F(ServiceTest, AcceptedMailIsDeliveredSignedWithTheIdentityKey) {
  auto results = service_->submit({message("r1@x.example"), message("r2@y.example")});
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.refusal, Refusal::kNone) << r.message;
    EXPECT_EQ(r.message_id.size(), 26u);
  }
  wait_final();
  auto files = delivered_files();
  ASSERT_EQ(files.size(), 2u);
  for (const auto& f : files) {
    EXPECT_NE(f.find("X-Envelope-From: <a@news.example>"), std::string::npos) << f;
    EXPECT_NE(f.find("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=news.example;\r\n"
                     " s=sel1;"),
              std::string::npos)
        << f;
  }
  auto c = *service_->spool().counts();
  EXPECT_EQ(c.delivered, 2u);
  EXPECT_EQ(*store_->sent_last_24_hours(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count()),
            2u);
}

TEST_F(ServiceTest, FromAnUnknownIdentityIsRejected) {
  auto r = service_->submit({message("r@x.example", "a@other.example")});
  EXPECT_EQ(r[0].refusal, Refusal::kMessageRejected);
  EXPECT_EQ(r[0].message,
            "Email address is not verified. The following identities failed the check: "
            "a@other.example");
  EXPECT_TRUE(r[0].message_id.empty());
}

TEST_F(ServiceTest, SuppressedRecipientIsAcceptedButNotDelivered) {
  ASSERT_TRUE(store_->put_suppressed({"Gone@X.example", "BOUNCE", 1, "", ""}).is_ok());
  auto r = service_->submit({message("gone@x.example"), message("here@x.example")});
  ASSERT_EQ(r[0].refusal, Refusal::kNone);
  EXPECT_EQ(r[0].suppressed, (std::vector<std::string>{"gone@x.example"}));
  wait_final();
  EXPECT_EQ(delivered_files().size(), 1u);
  auto states = *service_->spool().recipients_of(r[0].message_id);
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].state, spool::RecipientState::kSuppressed);
}

TEST_F(ServiceTest, UnknownAndPausedConfigurationSetsRefuse) {
  auto r = service_->submit({[&] {
    auto m = message("r@x.example");
    m.configuration_set = "nope";
    return m;
  }()});
  EXPECT_EQ(r[0].refusal, Refusal::kConfigurationSetNotFound);
  EXPECT_EQ(r[0].message, "Configuration set <nope> does not exist.");
  store::ConfigurationSet set;
  set.name = "paused";
  set.sending_options = R"({"SendingEnabled":false})";
  ASSERT_TRUE(store_->create_configuration_set(set).is_ok());
  auto m = message("r@x.example");
  m.configuration_set = "paused";
  r = service_->submit({m});
  EXPECT_EQ(r[0].refusal, Refusal::kConfigurationSetPaused);
}

TEST_F(ServiceTest, DailyQuotaCountsRecipientsAndRefusesBeyondIt) {
  auto account = *store_->account();
  account.max_24_hour_send = 3;
  ASSERT_TRUE(store_->put_account(account).is_ok());
  auto r = service_->submit({message("a@x.example"), message("b@x.example")});
  EXPECT_EQ(r[0].refusal, Refusal::kNone);
  EXPECT_EQ(r[1].refusal, Refusal::kNone);
  auto two = message("c@x.example");
  two.recipients.push_back("d@x.example");
  r = service_->submit({two, message("e@x.example")});
  EXPECT_EQ(r[0].refusal, Refusal::kDailyQuotaExceeded);
  EXPECT_EQ(r[0].message, "Daily message quota exceeded.");
  EXPECT_EQ(r[1].refusal, Refusal::kNone);  // the third fits
}

TEST_F(ServiceTest, SendRateIsEnforcedPerRecipient) {
  auto account = *store_->account();
  account.max_send_rate = 2;
  ASSERT_TRUE(store_->put_account(account).is_ok());
  auto r =
      service_->submit({message("a@x.example"), message("b@x.example"), message("c@x.example")});
  EXPECT_EQ(r[0].refusal, Refusal::kNone);
  EXPECT_EQ(r[1].refusal, Refusal::kNone);
  EXPECT_EQ(r[2].refusal, Refusal::kThrottled);
  EXPECT_EQ(r[2].message, "Maximum sending rate exceeded.");
}

TEST_F(ServiceTest, AcceptedMailSurvivesARestartWithNothingLost) {
  sink_->stop();  // nothing can be delivered: connections are refused
  std::vector<OutboundMessage> batch;
  for (int i = 0; i < 20; ++i) batch.push_back(message("r" + std::to_string(i) + "@x.example"));
  auto r = service_->submit(batch);
  for (const auto& x : r) ASSERT_EQ(x.refusal, Refusal::kNone);
  service_->stop();
  service_.reset();
  auto c = [&] {
    auto s = spool::MessageSpool::open((dir_.path() / "data" / "spool.db").string());
    return *(*s)->counts();
  }();
  EXPECT_EQ(c.delivered, 0u);
  EXPECT_EQ(c.pending + c.deferred + c.in_flight, 20u);
}

// An entry counts only for the reasons in force: the account's, or the configuration set's.
TEST_F(ServiceTest, SuppressionFollowsTheReasonsInForce) {
  ASSERT_TRUE(store_->put_suppressed({"c@x.example", "COMPLAINT", 1, "", ""}).is_ok());
  auto account = *store_->account();
  account.suppressed_reasons = {"BOUNCE"};
  ASSERT_TRUE(store_->put_account(account).is_ok());
  auto r = service_->submit({message("c@x.example")});
  ASSERT_EQ(r[0].refusal, Refusal::kNone);
  EXPECT_TRUE(r[0].suppressed.empty());
  store::ConfigurationSet set;
  set.name = "strict";
  set.suppression_options = R"({"SuppressedReasons":["BOUNCE","COMPLAINT"]})";
  ASSERT_TRUE(store_->create_configuration_set(set).is_ok());
  auto m = message("c@x.example");
  m.configuration_set = "strict";
  r = service_->submit({m});
  ASSERT_EQ(r[0].refusal, Refusal::kNone);
  EXPECT_EQ(r[0].suppressed, (std::vector<std::string>{"c@x.example"}));
}

// SES: a verified domain lets its subdomains send; the parent's key signs.
TEST_F(ServiceTest, SubdomainsOfAnIdentitySendSignedByIt) {
  auto r = service_->submit({message("r@x.example", "a@mail.news.example")});
  ASSERT_EQ(r[0].refusal, Refusal::kNone) << r[0].message;
  EXPECT_TRUE(service_->may_send_as("b@deep.mail.news.example"));
  EXPECT_FALSE(service_->may_send_as("b@example"));  // the parent of news.example is not covered
  EXPECT_FALSE(service_->may_send_as("b@othernews.example"));
  wait_final();
  auto files = delivered_files();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_NE(files[0].find("d=news.example;"), std::string::npos);
}

// Regression (unverified_envelope_sender): MAIL FROM / FeedbackForwardingEmailAddress of an
// unverified domain was accepted, so bounces went to a domain nobody verified.
TEST_F(ServiceTest, AnUnverifiedEnvelopeSenderIsRejected) {
  auto m = message("r@x.example");
  m.envelope_from = "x@evil.example";
  auto r = service_->submit({m});
  EXPECT_EQ(r[0].refusal, Refusal::kMessageRejected);
  EXPECT_EQ(r[0].message,
            "Email address is not verified. The following identities failed the check: "
            "x@evil.example");
}

// Regression (deleted_identity_sent_unsigned): mail accepted for an identity deleted before
// delivery went out without a DKIM signature; now it fails instead.
TEST_F(ServiceTest, MailOfADeletedIdentityIsNotSentUnsigned) {
  sink_->stop();
  service_->stop();
  service_.reset();
  start_service();
  // Nothing can connect while the sink is stopped; accept, then delete the identity.
  auto r = service_->submit({message("r@x.example")});
  ASSERT_EQ(r[0].refusal, Refusal::kNone);
  service_->stop();
  service_.reset();
  ASSERT_TRUE(store_->delete_identity("news.example").is_ok());
  // A new sink for the restarted service.
  smtp::SinkOptions so;
  so.maildir = maildir_.string();
  sink_->stop();
  sink_io_.stop();
  sink_thread_.join();
  sink_io_.restart();
  auto sink = smtp::SinkServer::start(sink_io_, so);
  ASSERT_TRUE(sink.is_ok());
  sink_ = std::move(*sink);
  sink_thread_ = std::thread([this] { sink_io_.run(); });
  {
    // Make the deferred recipient due now.
    auto sp = spool::MessageSpool::open((dir_.path() / "data" / "spool.db").string());
    ASSERT_TRUE(sp.is_ok());
  }
  start_service();
  for (int i = 0; i < 500; ++i) {
    auto states = *service_->spool().recipients_of(r[0].message_id);
    if (!states.empty() && states[0].state == spool::RecipientState::kFailed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto states = *service_->spool().recipients_of(r[0].message_id);
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].state, spool::RecipientState::kFailed);
  EXPECT_EQ(states[0].reply,
            "the identity news.example was deleted after the message was accepted; not sent "
            "unsigned");
  EXPECT_TRUE(delivered_files().empty());
}

// A template the API could not render is published as a Rendering Failure event of the request's
// set, or else of the sending identity's default set, with the identity's ARN and from-domain.
TEST_F(ServiceTest, RenderingFailurePublishesTheEvent) {
  store::ConfigurationSet set;
  set.name = "news";
  ASSERT_TRUE(store_->create_configuration_set(set).is_ok());
  store::EventDestination d;
  d.configuration_set = "news";
  d.name = "failures";
  d.enabled = true;
  d.matching_event_types = {"RENDERING_FAILURE"};
  d.kind = store::EventDestination::Kind::kFile;
  d.target = "failures";
  d.definition_json = "{}";
  ASSERT_TRUE(store_->create_event_destination(d).is_ok());
  auto identity = store_->get_identity("news.example");
  ASSERT_TRUE(identity.is_ok());
  identity->configuration_set = "news";
  ASSERT_TRUE(store_->update_identity(*identity).is_ok());

  RenderingFailure f;
  f.from = "a@news.example";  // no set named: the identity's default
  f.recipients = {"r@x.example"};
  f.tags = {{"campaign", "spring"}};
  f.template_name = "welcome";
  f.error = "Attribute 'name' is missing";
  service_->rendering_failed(f);
  f.from = "a@other.example";  // no identity, no set: nobody asked for it
  service_->rendering_failed(f);

  auto outbox = events::Outbox::open((dir_.path() / "data" / "events.db").string());
  ASSERT_TRUE(outbox.is_ok()) << outbox.status().message();
  auto log = (*outbox)->read_log(0, 100);
  ASSERT_TRUE(log.is_ok());
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0].configuration_set, "news");
  auto e = nlohmann::json::parse((*log)[0].json);
  EXPECT_EQ(e["eventType"], "Rendering Failure");
  EXPECT_EQ(e["failure"], nlohmann::json::parse(R"({"errorMessage":"Attribute 'name' is missing",)"
                                                R"("templateName":"welcome"})"));
  EXPECT_EQ(e["mail"]["destination"], nlohmann::json::array({"r@x.example"}));
  EXPECT_EQ(e["mail"]["sourceArn"], "arn:aws:ses:us-east-1:000000000000:identity/news.example");
  EXPECT_EQ(e["mail"]["tags"]["ses:configuration-set"], nlohmann::json::array({"news"}));
  EXPECT_EQ(e["mail"]["tags"]["ses:from-domain"], nlohmann::json::array({"news.example"}));
  EXPECT_EQ(e["mail"]["tags"]["campaign"], nlohmann::json::array({"spring"}));
}

}  // namespace
}  // namespace magnetic::service
