#include "spool/message_spool.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace magnetic::spool {
namespace {

NewMessage message(const std::string& id, std::vector<std::string> to,
                   std::vector<bool> suppressed = {}) {
  NewMessage m;
  m.message_id = id;
  m.identity = "example.com";
  m.configuration_set = "set1";
  m.envelope_from = "news@example.com";
  m.data = "From: news@example.com\r\nSubject: " + id + "\r\n\r\nbody\r\n";
  for (size_t i = 0; i < to.size(); ++i) {
    m.recipients.push_back(
        {to[i], to[i].substr(to[i].find('@') + 1), i < suppressed.size() && suppressed[i]});
  }
  return m;
}

class MessageSpoolTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    spool_.reset();
    auto s = MessageSpool::open((dir_.path() / "spool.db").string());
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    spool_ = std::move(s).value();
  }
  Outcome delivered(const Claimed& c) {
    return {c.id, RecipientState::kDelivered, 1, 0, 1000, "250 ok", ""};
  }
  testing::TempDir dir_;
  std::unique_ptr<MessageSpool> spool_;
};

TEST_F(MessageSpoolTest, AcceptedMessagesAreClaimedOnceWithTheirBytes) {
  ASSERT_TRUE(
      spool_
          ->accept({message("m1", {"a@x.example", "b@y.example"}), message("m2", {"c@x.example"})},
                   1000)
          .is_ok());
  auto claimed = spool_->claim_due(2000, 10);
  ASSERT_TRUE(claimed.is_ok());
  ASSERT_EQ(claimed->size(), 3u);
  EXPECT_EQ((*claimed)[0].email, "a@x.example");
  EXPECT_EQ((*claimed)[0].message_id, "m1");
  EXPECT_EQ((*claimed)[1].domain, "y.example");
  EXPECT_EQ((*claimed)[2].message_id, "m2");
  // A claim carries its message's acceptance: delivery's max_age counts from it.
  EXPECT_EQ((*claimed)[0].accepted_ms, 1000);
  EXPECT_EQ((*claimed)[2].accepted_ms, 1000);
  auto stored = spool_->message((*claimed)[0].message);
  ASSERT_TRUE(stored.is_ok());
  EXPECT_EQ(stored->data, "From: news@example.com\r\nSubject: m1\r\n\r\nbody\r\n");
  EXPECT_EQ(stored->envelope_from, "news@example.com");
  EXPECT_EQ(stored->identity, "example.com");
  EXPECT_EQ(stored->configuration_set, "set1");
  // Claimed ones are in flight: not claimed again.
  EXPECT_TRUE(spool_->claim_due(2000, 10)->empty());
}

TEST_F(MessageSpoolTest, SuppressedRecipientsAreFinalAndNeverClaimed) {
  ASSERT_TRUE(
      spool_->accept({message("m1", {"a@x.example", "b@x.example"}, {true, false})}, 1000).is_ok());
  auto claimed = spool_->claim_due(2000, 10);
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].email, "b@x.example");
  auto states = spool_->recipients_of("m1");
  ASSERT_TRUE(states.is_ok());
  ASSERT_EQ(states->size(), 2u);
  EXPECT_EQ((*states)[0].state, RecipientState::kSuppressed);
  EXPECT_EQ((*states)[0].reason, "suppressed");
  EXPECT_EQ((*states)[1].state, RecipientState::kInFlight);
}

TEST_F(MessageSpoolTest, BodyIsDroppedWhenTheLastRecipientIsFinal) {
  ASSERT_TRUE(spool_->accept({message("m1", {"a@x.example", "b@x.example"})}, 1000).is_ok());
  auto claimed = *spool_->claim_due(2000, 10);
  ASSERT_TRUE(spool_->commit_outcomes({delivered(claimed[0])}, 3000).is_ok());
  EXPECT_FALSE(spool_->message(claimed[0].message)->data.empty());
  ASSERT_TRUE(spool_->commit_outcomes({delivered(claimed[1])}, 3000).is_ok());
  EXPECT_EQ(spool_->message(claimed[0].message)->data, "");
  auto c = *spool_->counts();
  EXPECT_EQ(c.delivered, 2u);
  EXPECT_EQ(c.messages, 0u);
}

TEST_F(MessageSpoolTest, DeferredRecipientsComeBackWhenDue) {
  ASSERT_TRUE(spool_->accept({message("m1", {"a@x.example"})}, 1000).is_ok());
  auto claimed = *spool_->claim_due(2000, 10);
  ASSERT_TRUE(spool_
                  ->commit_outcomes({{claimed[0].id, RecipientState::kDeferred, 1, 60000, 2000,
                                      "451 later", "throttled"}},
                                    2000)
                  .is_ok());
  EXPECT_TRUE(spool_->claim_due(59999, 10)->empty());
  EXPECT_EQ(*spool_->next_deferred_time(), 60000);
  auto again = *spool_->claim_due(60000, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempts, 1);
  EXPECT_EQ(again[0].first_attempt_ms, 2000);
}

// A crash (the spool closed with recipients in flight) loses nothing: reopened, they are due.
TEST_F(MessageSpoolTest, InFlightRecipientsAreDueAgainAfterACrash) {
  ASSERT_TRUE(
      spool_->accept({message("m1", {"a@x.example"}), message("m2", {"b@x.example"})}, 1).is_ok());
  auto claimed = *spool_->claim_due(2, 10);
  ASSERT_EQ(claimed.size(), 2u);
  ASSERT_TRUE(spool_->commit_outcomes({delivered(claimed[0])}, 3).is_ok());
  reopen();
  auto r = spool_->recover();
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->in_flight_reset, 1u);
  auto again = *spool_->claim_due(4, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].message_id, "m2");
}

TEST_F(MessageSpoolTest, ADuplicateMessageIdFailsTheWholeGroup) {
  ASSERT_TRUE(spool_->accept({message("m1", {"a@x.example"})}, 1).is_ok());
  EXPECT_FALSE(
      spool_->accept({message("m2", {"b@x.example"}), message("m1", {"c@x.example"})}, 2).is_ok());
  EXPECT_TRUE(spool_->recipients_of("m2")->empty());
}

TEST_F(MessageSpoolTest, BinaryBodiesSurviveByteForByte) {
  NewMessage m = message("m1", {"a@x.example"});
  m.data = std::string("Subject: x\r\n\r\n\0\x01\xff", 17);
  ASSERT_TRUE(spool_->accept({m}, 1).is_ok());
  auto claimed = *spool_->claim_due(2, 10);
  EXPECT_EQ(spool_->message(claimed[0].message)->data, m.data);
}

}  // namespace
}  // namespace magnetic::spool
