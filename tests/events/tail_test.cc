#include "events/tail.h"

#include <gtest/gtest.h>

#include <thread>

#include "test_support.h"

namespace magnetic::events {
namespace {

using namespace std::chrono_literals;

NewEvent event(const std::string& set, EventType type, int n) {
  NewEvent e;
  e.configuration_set = set;
  e.message_id = "m" + std::to_string(n);
  e.type = type;
  e.json = "{\"n\":" + std::to_string(n) + "}";
  return e;
}

class TailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto o = Outbox::open((dir_.path() / kOutboxFileName).string());
    ASSERT_TRUE(o);
    outbox_ = std::move(*o);
    ASSERT_TRUE(outbox_->append({event("a", EventType::kSend, 1), event("a", EventType::kBounce, 2),
                                 event("b", EventType::kBounce, 3)},
                                1000));
  }

  std::string run(const TailOptions& options) {
    std::string path = (dir_.path() / "out.txt").string();
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::atomic<bool> stop{false};
    Status s = tail(*outbox_, options, f, stop);
    std::fclose(f);
    EXPECT_TRUE(s) << s.message();
    return testing::read_file(path);
  }

  testing::TempDir dir_;
  std::unique_ptr<Outbox> outbox_;
};

TEST_F(TailTest, PrintsTheLogAsJsonLines) {
  EXPECT_EQ(run({}), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
}

TEST_F(TailTest, FiltersByTypeSetAndSequence) {
  TailOptions o;
  o.filter.type = EventType::kBounce;
  EXPECT_EQ(run(o), "{\"n\":2}\n{\"n\":3}\n");
  o.filter.configuration_set = "b";
  EXPECT_EQ(run(o), "{\"n\":3}\n");
  TailOptions after;
  after.after_seq = 1;
  EXPECT_EQ(run(after), "{\"n\":2}\n{\"n\":3}\n");
  after.after_seq = 3;
  EXPECT_EQ(run(after), "");
}

TEST_F(TailTest, FollowPrintsNewEventsUntilStopped) {
  std::string path = (dir_.path() / "follow.txt").string();
  std::FILE* f = std::fopen(path.c_str(), "w");
  std::atomic<bool> stop{false};
  TailOptions o;
  o.follow = true;
  o.poll = 10ms;
  o.after_seq = 2;
  Status result;
  std::thread t([&] { result = tail(*outbox_, o, f, stop); });

  auto wait_for = [&](const std::string& want) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline && testing::read_file(path) != want) {
      std::this_thread::sleep_for(5ms);
    }
    return testing::read_file(path);
  };
  EXPECT_EQ(wait_for("{\"n\":3}\n"), "{\"n\":3}\n");
  ASSERT_TRUE(outbox_->append({event("a", EventType::kDelivery, 4)}, 2000));
  EXPECT_EQ(wait_for("{\"n\":3}\n{\"n\":4}\n"), "{\"n\":3}\n{\"n\":4}\n");
  stop = true;
  t.join();
  std::fclose(f);
  EXPECT_TRUE(result);
}

}  // namespace
}  // namespace magnetic::events
