#include "events/outbox.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.h"

namespace magnetic::events {
namespace {

const Destination kHook{"marketing/hook", Destination::kWebhook, "http://127.0.0.1:9/events"};
const Destination kFile{"marketing/file", Destination::kFile, "/nonexistent/events.jsonl"};

NewEvent event(const std::string& message_id, EventType type, std::vector<Destination> dests) {
  NewEvent e;
  e.configuration_set = "marketing";
  e.message_id = message_id;
  e.type = type;
  e.json = R"({"eventType":")" + std::string(event_type_record_name(type)) +
           R"(","mail":{"messageId":")" + message_id + R"("}})";
  e.destinations = std::move(dests);
  return e;
}

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto o = Outbox::open((dir_.path() / kOutboxFileName).string());
    ASSERT_TRUE(o) << o.status().message();
    outbox_ = std::move(*o);
  }

  std::vector<int64_t> seqs(const DueBatch& b) {
    std::vector<int64_t> out;
    for (const auto& e : b.events) out.push_back(e.seq);
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<Outbox> outbox_;
};

TEST_F(OutboxTest, AppendLogsEveryEventAndQueuesOnePerDestination) {
  ASSERT_TRUE(outbox_->append(
      {event("m1", EventType::kSend, {kHook, kFile}), event("m1", EventType::kDelivery, {kHook}),
       event("m2", EventType::kBounce, {})},
      1000));
  auto c = outbox_->counts();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->events, 3u);
  EXPECT_EQ(c->pending, 3u);
  EXPECT_EQ(*outbox_->pending(kHook.id), 2u);
  EXPECT_EQ(*outbox_->pending(kFile.id), 1u);
  EXPECT_EQ(*outbox_->pending("other/none"), 0u);

  auto log = outbox_->read_log(0, 100);
  ASSERT_TRUE(log);
  ASSERT_EQ(log->size(), 3u);
  EXPECT_EQ((*log)[0].seq, 1);
  EXPECT_EQ((*log)[0].time_ms, 1000);
  EXPECT_EQ((*log)[0].configuration_set, "marketing");
  EXPECT_EQ((*log)[0].message_id, "m1");
  EXPECT_EQ((*log)[0].type, EventType::kSend);
  EXPECT_EQ((*log)[0].json, R"({"eventType":"Send","mail":{"messageId":"m1"}})");
  EXPECT_EQ((*log)[1].type, EventType::kDelivery);
  EXPECT_EQ((*log)[2].seq, 3);
  EXPECT_EQ((*log)[2].type, EventType::kBounce);
}

TEST_F(OutboxTest, ReadLogFiltersAndPages) {
  NewEvent other = event("m3", EventType::kBounce, {});
  other.configuration_set = "receipts";
  ASSERT_TRUE(
      outbox_->append({event("m1", EventType::kSend, {}), event("m1", EventType::kBounce, {}),
                       event("m2", EventType::kBounce, {}), other},
                      1000));
  LogFilter bounces;
  bounces.type = EventType::kBounce;
  auto b = outbox_->read_log(0, 100, bounces);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->size(), 3u);
  EXPECT_EQ((*b)[0].seq, 2);
  EXPECT_EQ((*b)[2].seq, 4);

  bounces.configuration_set = "marketing";
  b = outbox_->read_log(0, 100, bounces);
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ((*b)[1].message_id, "m2");

  LogFilter by_message;
  by_message.message_id = "m1";
  auto m = outbox_->read_log(1, 100, by_message);
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].seq, 2);

  auto page = outbox_->read_log(1, 2);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].seq, 2);
  EXPECT_EQ((*page)[1].seq, 3);
}

TEST_F(OutboxTest, ClaimReturnsEachDestinationsHeadInOrder) {
  std::vector<NewEvent> batch;
  for (int i = 0; i < 5; ++i)
    batch.push_back(event("m" + std::to_string(i), EventType::kSend, {kHook}));
  batch.push_back(event("f", EventType::kSend, {kFile}));
  ASSERT_TRUE(outbox_->append(batch, 1000));

  auto due = outbox_->claim_due(1000, 3);
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 2u);
  // Destinations come in id order: marketing/file, marketing/hook.
  EXPECT_EQ((*due)[0].destination.id, kFile.id);
  EXPECT_EQ((*due)[0].destination.kind, Destination::kFile);
  EXPECT_EQ((*due)[0].destination.target, kFile.target);
  EXPECT_EQ(seqs((*due)[0]), (std::vector<int64_t>{6}));
  EXPECT_EQ((*due)[1].destination.id, kHook.id);
  EXPECT_EQ(seqs((*due)[1]), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ((*due)[1].events[0].json, R"({"eventType":"Send","mail":{"messageId":"m0"}})");
  EXPECT_EQ((*due)[1].events[0].time_ms, 1000);
  EXPECT_EQ((*due)[1].events[0].attempts, 0);

  // A busy destination is skipped; a claim changes nothing in the file.
  due = outbox_->claim_due(1000, 3, {kFile.id});
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(seqs((*due)[0]), (std::vector<int64_t>{1, 2, 3}));

  ASSERT_TRUE(outbox_->mark_delivered(kHook.id, {1, 2}));
  due = outbox_->claim_due(1000, 10, {kFile.id});
  EXPECT_EQ(seqs((*due)[0]), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(*outbox_->pending(kHook.id), 3u);
}

TEST_F(OutboxTest, FailedHeadWaitsAndHoldsOnlyItsOwnDestination) {
  ASSERT_TRUE(outbox_->append(
      {event("a", EventType::kSend, {kHook, kFile}), event("b", EventType::kSend, {kHook, kFile})},
      1000));
  ASSERT_TRUE(outbox_->mark_failed(kHook.id, 1, 5000, "HTTP 500"));
  EXPECT_EQ(*outbox_->attempts(kHook.id, 1), 1);
  EXPECT_EQ(*outbox_->attempts(kHook.id, 2), 0);
  EXPECT_EQ(*outbox_->attempts("nope", 1), -1);

  // Before 5000 the hook's head (and so everything behind it) waits; the file does not.
  auto due = outbox_->claim_due(4999, 10);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].destination.id, kFile.id);
  EXPECT_EQ(seqs((*due)[0]), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(*outbox_->next_due_ms(), 0);
  EXPECT_EQ(*outbox_->next_due_ms({kFile.id}), 5000);

  due = outbox_->claim_due(5000, 10, {kFile.id});
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(seqs((*due)[0]), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ((*due)[0].events[0].attempts, 1);

  ASSERT_TRUE(outbox_->mark_failed(kHook.id, 1, 9000, "timeout"));
  EXPECT_EQ(*outbox_->attempts(kHook.id, 1), 2);
  ASSERT_TRUE(outbox_->mark_dropped(kHook.id, 1, "too old"));
  // The next event is due at once.
  due = outbox_->claim_due(5000, 10, {kFile.id});
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(seqs((*due)[0]), (std::vector<int64_t>{2}));

  ASSERT_TRUE(outbox_->mark_delivered(kHook.id, {2}));
  ASSERT_TRUE(outbox_->mark_delivered(kFile.id, {1, 2}));
  EXPECT_EQ(*outbox_->next_due_ms(), -1);
  auto c = outbox_->counts();
  EXPECT_EQ(c->pending, 0u);
  EXPECT_EQ(c->delivered, 3u);
  EXPECT_EQ(c->dropped, 1u);
  EXPECT_TRUE(outbox_->claim_due(100000, 10)->empty());
}

TEST_F(OutboxTest, NewTargetOfADestinationAppliesToWhatIsQueued) {
  ASSERT_TRUE(outbox_->append({event("a", EventType::kSend, {kHook})}, 1000));
  Destination moved = kHook;
  moved.target = "http://127.0.0.1:10/new";
  ASSERT_TRUE(outbox_->append({event("b", EventType::kSend, {moved})}, 1001));
  auto due = outbox_->claim_due(2000, 10);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].destination.target, "http://127.0.0.1:10/new");
  EXPECT_EQ(seqs((*due)[0]), (std::vector<int64_t>{1, 2}));
}

TEST_F(OutboxTest, PruneRemovesFinishedRowsAndOldEventsNobodyWaitsFor) {
  const int64_t day = 24 * 3600 * 1000;
  ASSERT_TRUE(outbox_->append({event("old-done", EventType::kSend, {kHook}),
                               event("old-waiting", EventType::kSend, {kFile})},
                              1000));
  ASSERT_TRUE(outbox_->append({event("new", EventType::kSend, {kHook})}, 1000 + 7 * day));
  ASSERT_TRUE(outbox_->mark_delivered(kHook.id, {1, 3}));

  auto r = outbox_->prune(1001 + 7 * day);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deliveries, 2u);
  EXPECT_EQ(r->events, 1u);  // old-done; old-waiting is still pending at the file
  auto log = outbox_->read_log(0, 10);
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ((*log)[0].message_id, "old-waiting");
  EXPECT_EQ((*log)[1].message_id, "new");
  EXPECT_EQ(*outbox_->pending(kFile.id), 1u);

  // Sequence numbers are never reused, even once every event is gone.
  ASSERT_TRUE(outbox_->mark_dropped(kFile.id, 2, "old"));
  r = outbox_->prune(1000 + 30 * day, day);
  EXPECT_EQ(r->events, 2u);
  EXPECT_EQ(outbox_->counts()->events, 0u);
  ASSERT_TRUE(outbox_->append({event("after", EventType::kSend, {})}, 2000 + 30 * day));
  EXPECT_EQ((*outbox_->read_log(0, 10))[0].seq, 4);
}

TEST_F(OutboxTest, EmptyDestinationIdIsRefusedAndNothingIsKept) {
  Status s =
      outbox_->append({event("a", EventType::kSend, {}),
                       event("b", EventType::kSend, {Destination{"", Destination::kFile, "x"}})},
                      1000);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "events: a destination has an empty id");
  EXPECT_EQ(outbox_->counts()->events, 0u);
}

TEST_F(OutboxTest, UnusableFileIsAnErrorNamingIt) {
  std::string path = (dir_.path() / "no-such-dir" / "events.db").string();
  auto o = Outbox::open(path);
  ASSERT_FALSE(o);
  EXPECT_EQ(o.status().code(), StatusCode::kIoError);
  EXPECT_EQ(o.status().message(),
            "cannot open event outbox '" + path + "': unable to open database file");
}

// A process killed right after append: the events are there when the file is opened again.
TEST_F(OutboxTest, AppendSurvivesKill9) {
  std::string path = (dir_.path() / "crash.db").string();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto o = Outbox::open(path);
    if (!o) _exit(2);
    if (!(*o)->append(
            {event("k1", EventType::kSend, {kHook}), event("k2", EventType::kSend, {kHook})},
            1000)) {
      _exit(3);
    }
    kill(getpid(), SIGKILL);
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  auto o = Outbox::open(path);
  ASSERT_TRUE(o);
  EXPECT_EQ(*(*o)->pending(kHook.id), 2u);
  auto due = (*o)->claim_due(1000, 10);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(seqs((*due)[0]), (std::vector<int64_t>{1, 2}));
}

}  // namespace
}  // namespace magnetic::events
