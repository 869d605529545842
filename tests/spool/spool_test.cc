#include "spool/spool.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace magnetic::spool {
namespace {

NewRecipient recipient(uint64_t row, const std::string& email) {
  return {row,
          email,
          email.substr(email.find('@') + 1),
          "{}",
          "tok" + std::to_string(row),
          "<m" + std::to_string(row) + "@example.com>"};
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Spool::open((dir_.path() / "spool.db").string());
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    spool_ = std::move(s).value();
    ASSERT_TRUE(spool_->create_campaign({"c1", "", "{}", 0, false}).is_ok());
  }
  testing::TempDir dir_;
  std::unique_ptr<Spool> spool_;
};

TEST_F(SpoolTest, AcceptedBatchIsClaimedInRowOrderOnce) {
  auto added =
      spool_->accept_batch("c1", {recipient(1, "a@x.example"), recipient(2, "b@y.example")},
                           {{3, "row 3: empty email"}}, 3, true);
  ASSERT_TRUE(added.is_ok());
  EXPECT_EQ(*added, 2u);
  auto claimed = spool_->claim_due("c1", 0, 10);
  ASSERT_TRUE(claimed.is_ok());
  ASSERT_EQ(claimed->size(), 2u);
  EXPECT_EQ((*claimed)[0].email, "a@x.example");
  EXPECT_EQ((*claimed)[1].message_id, "<m2@example.com>");
  EXPECT_EQ(spool_->claim_due("c1", 0, 10)->size(), 0u);  // in flight now
  auto c = spool_->campaign("c1");
  EXPECT_EQ(c->rows_read, 3u);
  EXPECT_TRUE(c->ingest_done);
  auto invalid = spool_->invalid_rows("c1", 10);
  ASSERT_EQ(invalid->size(), 1u);
  EXPECT_EQ((*invalid)[0].error, "row 3: empty email");
}

TEST_F(SpoolTest, DuplicateAddressIsAnInvalidRowNamingTheFirst) {
  auto added = spool_->accept_batch(
      "c1", {recipient(1, "a@x.example"), recipient(2, "a@x.example")}, {}, 2, true);
  EXPECT_EQ(*added, 1u);
  auto invalid = spool_->invalid_rows("c1", 10);
  ASSERT_EQ(invalid->size(), 1u);
  EXPECT_EQ((*invalid)[0].error, "row 2: duplicate address 'a@x.example' (first listed at row 1)");
}

TEST_F(SpoolTest, duplicate_address_differing_only_in_case_is_mailed_once) {
  auto added = spool_->accept_batch(
      "c1", {recipient(1, "Ann@x.example"), recipient(2, "ann@x.example")}, {}, 2, true);
  EXPECT_EQ(*added, 1u);
  auto invalid = spool_->invalid_rows("c1", 10);
  ASSERT_EQ(invalid->size(), 1u);
  EXPECT_EQ((*invalid)[0].error,
            "row 2: duplicate address 'ann@x.example' (first listed at row 1)");
}

TEST_F(SpoolTest, CrashLeavesInFlightWhichRecoverMakesDueAndCounts) {
  ASSERT_TRUE(spool_
                  ->accept_batch("c1",
                                 {recipient(1, "a@x.example"), recipient(2, "b@x.example"),
                                  recipient(3, "c@x.example")},
                                 {}, 3, true)
                  .is_ok());
  auto claimed = spool_->claim_due("c1", 0, 3);
  ASSERT_EQ(claimed->size(), 3u);
  // a delivered and recorded; b and c in flight when the process dies.
  ASSERT_TRUE(spool_
                  ->commit_outcomes({{(*claimed)[0].id, RecipientState::kDelivered, 1, 0, 5,
                                      "250 ok", "delivered"}})
                  .is_ok());
  spool_.reset();

  auto reopened = Spool::open((dir_.path() / "spool.db").string());
  ASSERT_TRUE(reopened.is_ok());
  auto r = (*reopened)->recover("c1");
  EXPECT_EQ(r->in_flight_reset, 2u);
  auto again = (*reopened)->claim_due("c1", 0, 10);
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0].email, "b@x.example");
  EXPECT_EQ((*again)[1].email, "c@x.example");
  EXPECT_EQ(*(*reopened)->unfinished("c1"), 2u);
}

TEST_F(SpoolTest, DeferredComeBackWhenDueAndCountByReason) {
  ASSERT_TRUE(spool_
                  ->accept_batch("c1", {recipient(1, "a@x.example"), recipient(2, "b@y.example")},
                                 {}, 2, true)
                  .is_ok());
  auto claimed = spool_->claim_due("c1", 0, 10);
  ASSERT_TRUE(spool_
                  ->commit_outcomes({{(*claimed)[0].id, RecipientState::kDeferred, 1, 1000, 1,
                                      "451 later", "undefined"},
                                     {(*claimed)[1].id, RecipientState::kBounced, 1, 0, 1,
                                      "550 5.1.1 no", "userunknown"}})
                  .is_ok());
  EXPECT_EQ(spool_->claim_due("c1", 999, 10)->size(), 0u);
  EXPECT_EQ(*spool_->next_deferred_time("c1"), 1000);
  auto due = spool_->claim_due("c1", 1000, 10);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].attempts, 1);
  auto counts = spool_->counts("c1");
  EXPECT_EQ(counts->total.recipients, 2u);
  EXPECT_EQ(counts->total.bounced, 1u);
  EXPECT_EQ(counts->bounced_by_reason.at("userunknown"), 1u);
  EXPECT_EQ(counts->by_domain.at("y.example").bounced, 1u);
  EXPECT_EQ(*spool_->next_deferred_time("c1"), -1);
}

TEST_F(SpoolTest, CountersAddUp) {
  ASSERT_TRUE(spool_->add_counter("c1", "possible_duplicates", 2).is_ok());
  ASSERT_TRUE(spool_->add_counter("c1", "possible_duplicates", 3).is_ok());
  EXPECT_EQ(*spool_->counter("c1", "possible_duplicates"), 5);
  EXPECT_EQ(*spool_->counter("c1", "other"), 0);
}

TEST(SpoolOpen, UnwritablePathIsAClearError) {
  auto s = Spool::open("/nonexistent-dir/spool.db");
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().message(),
            "cannot open spool '/nonexistent-dir/spool.db': unable to open database file");
}

}  // namespace
}  // namespace magnetic::spool
