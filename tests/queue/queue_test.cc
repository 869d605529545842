#include <gtest/gtest.h>

#include "queue/retry_schedule.h"
#include "queue/scheduler.h"
#include "queue/throttle.h"

namespace magnetic::queue {
namespace {

using namespace std::chrono_literals;

TEST(Throttle, SpacesEventsByTheEmissionInterval) {
  Throttle t(*parse_rate("10/s"));
  auto now = Throttle::Clock::time_point{} + 100s;
  EXPECT_EQ(t.reserve(now), 0ms);
  EXPECT_EQ(t.reserve(now), 100ms);
  EXPECT_EQ(t.reserve(now), 200ms);
  EXPECT_FALSE(t.would_allow(now));
  // After an idle second the schedule starts afresh.
  EXPECT_EQ(t.reserve(now + 1s), 0ms);
}

TEST(Throttle, BurstAllowsBackToBack) {
  Throttle t(*parse_rate("10/s"), 3);
  auto now = Throttle::Clock::time_point{} + 100s;
  EXPECT_EQ(t.reserve(now), 0ms);
  EXPECT_EQ(t.reserve(now), 0ms);
  EXPECT_EQ(t.reserve(now), 0ms);
  EXPECT_EQ(t.reserve(now), 100ms);
}

TEST(Throttle, HourlyRate) {
  Throttle t(*parse_rate("3600/h"));
  auto now = Throttle::Clock::time_point{} + 100s;
  EXPECT_EQ(t.reserve(now), 0ms);
  EXPECT_EQ(t.reserve(now), 1s);
}

TEST(RetrySchedule, ExponentialCappedAndExpiring) {
  RetrySchedule r;
  r.initial = 60s;
  r.max_delay = 240s;
  r.jitter = 0;
  EXPECT_EQ(r.delay_after(1), 60s);
  EXPECT_EQ(r.delay_after(2), 120s);
  EXPECT_EQ(r.delay_after(3), 240s);
  EXPECT_EQ(r.delay_after(9), 240s);
  r.jitter = 0.1;
  EXPECT_EQ(r.delay_after(1, 0.0), 54s);
  EXPECT_EQ(r.delay_after(1, 1.0), 66s);
  r.max_age = 10s;
  EXPECT_FALSE(r.expired(1000, 10999));
  EXPECT_TRUE(r.expired(1000, 11000));
  // Regression (expired_before_max_age): no retry is put past the limit; the last comes at it.
  EXPECT_EQ(r.next_try(1000, 5000), 5000);
  EXPECT_EQ(r.next_try(1000, 60000), 11000);
}

TEST(RetrySchedule, AgeOriginAndPostponement) {
  RetrySchedule r;
  r.max_age = 10s;
  spool::Claimed c;
  c.id = 7;
  // The age counts from acceptance, else from the first attempt, else from now.
  c.accepted_ms = 1000;
  c.first_attempt_ms = 4000;
  EXPECT_EQ(RetrySchedule::age_origin(c, 9000), 1000);
  c.accepted_ms = 0;
  EXPECT_EQ(RetrySchedule::age_origin(c, 9000), 4000);
  c.first_attempt_ms = 0;
  EXPECT_EQ(RetrySchedule::age_origin(c, 9000), 9000);

  // Held back to the end of the rest, or to the age limit if that comes first.
  c.accepted_ms = 1000;
  c.attempts = 2;
  spool::Outcome o = r.postponed(c, 2000, 5000);
  EXPECT_EQ(o.state, spool::RecipientState::kDeferred);
  EXPECT_EQ(o.next_attempt_ms, 5000);
  EXPECT_EQ(o.attempts, 2);  // no attempt made
  EXPECT_EQ(o.reason, "suspended");
  o = r.postponed(c, 2000, 60000);
  EXPECT_EQ(o.next_attempt_ms, 11000);
  // At the limit: expired, with the reason and why.
  o = r.postponed(c, 11000, 60000);
  EXPECT_EQ(o.state, spool::RecipientState::kExpired);
  EXPECT_EQ(o.reply, "expired while its destination rests: it refuses our egress source");
  // Never attempted and no acceptance known: the postponement starts its age.
  c.accepted_ms = 0;
  o = r.postponed(c, 2000, 60000);
  EXPECT_EQ(o.first_attempt_ms, 2000);
  EXPECT_EQ(o.next_attempt_ms, 12000);
}

spool::Claimed rcpt(int64_t id, const std::string& domain) {
  spool::Claimed c;
  c.id = id;
  c.domain = domain;
  c.email = "u" + std::to_string(id) + "@" + domain;
  return c;
}

TEST(Scheduler, OpensSessionsUpToTheDomainLimitRoundRobin) {
  Scheduler s({.domain_connections = 2, .total_connections = 3});
  s.add({rcpt(1, "a.example"), rcpt(2, "a.example"), rcpt(3, "a.example"), rcpt(4, "b.example")});
  auto opened = s.sessions_to_open();
  EXPECT_EQ(opened, (std::vector<std::string>{"a.example", "b.example", "a.example"}));
  EXPECT_EQ(s.active_sessions(), 3);
  EXPECT_TRUE(s.sessions_to_open().empty());
  EXPECT_EQ(s.next("a.example")->id, 1);
  EXPECT_EQ(s.next("b.example")->id, 4);
  EXPECT_FALSE(s.next("b.example").has_value());
  EXPECT_EQ(s.ready(), 2u);
}

TEST(Scheduler, SlowDownHalvesTheLimitPausesAndRecovers) {
  Scheduler s({.domain_connections = 4,
               .total_connections = 100,
               .initial_backoff = 1000ms,
               .max_backoff = 4000ms,
               .recover_after = 2});
  auto t0 = Scheduler::Clock::time_point{} + 100s;
  for (int i = 0; i < 10; ++i) s.add({rcpt(i, "a.example")});
  EXPECT_EQ(s.sessions_to_open(t0).size(), 4u);
  s.slow_down("a.example", t0);
  EXPECT_EQ(s.session_limit("a.example"), 2);
  EXPECT_FALSE(s.next("a.example", t0 + 999ms).has_value());  // paused
  for (int i = 0; i < 4; ++i) s.session_closed("a.example");
  EXPECT_TRUE(s.sessions_to_open(t0 + 999ms).empty());
  EXPECT_EQ(s.sessions_to_open(t0 + 1000ms).size(), 2u);
  s.slow_down("a.example", t0 + 1s);  // backoff doubles: paused until t0 + 3s
  EXPECT_EQ(s.session_limit("a.example"), 1);
  EXPECT_FALSE(s.next("a.example", t0 + 2999ms).has_value());
  s.delivered("a.example");
  s.delivered("a.example");
  EXPECT_EQ(s.session_limit("a.example"), 2);
}

TEST(Scheduler, ConnectionFailureReturnsTheWaitingRecipients) {
  Scheduler s({.domain_connections = 1});
  s.add({rcpt(1, "a.example"), rcpt(2, "a.example"), rcpt(3, "b.example")});
  auto back = s.connection_failed("a.example");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].id, 2);
  EXPECT_EQ(s.ready(), 1u);
  EXPECT_EQ(s.drain().size(), 1u);
  EXPECT_EQ(s.ready(), 0u);
}

}  // namespace
}  // namespace magnetic::queue

namespace magnetic::queue {
namespace {

// A receiver that closes with 421 after every few messages still takes mail: its pause must
// not double each time, or a campaign to it crawls.
TEST(Scheduler, per_connection_message_cap_does_not_double_the_pause) {
  Scheduler s({.domain_connections = 4,
               .initial_backoff = std::chrono::milliseconds(200),
               .max_backoff = std::chrono::seconds(60),
               .recover_after = 50});
  auto t0 = Scheduler::Clock::time_point{} + std::chrono::seconds(100);
  for (int i = 0; i < 10; ++i) s.add({rcpt(i, "a.example")});
  s.slow_down("a.example", t0);
  s.delivered("a.example");
  s.slow_down("a.example", t0 + std::chrono::seconds(1));
  EXPECT_FALSE(s.next("a.example", t0 + std::chrono::milliseconds(1199)).has_value());
  EXPECT_TRUE(s.next("a.example", t0 + std::chrono::milliseconds(1200)).has_value());
}

}  // namespace
}  // namespace magnetic::queue

namespace magnetic::queue {
namespace {

// Three sessions to a dead host fail at the same moment; that is one failure, not three.
TEST(Scheduler, simultaneous_connection_failures_pause_once) {
  Scheduler s({.domain_connections = 3,
               .initial_backoff = std::chrono::milliseconds(100),
               .max_backoff = std::chrono::seconds(60),
               .recover_after = 50});
  auto t0 = Scheduler::Clock::time_point{} + std::chrono::seconds(100);
  s.add({rcpt(1, "a.example"), rcpt(2, "a.example"), rcpt(3, "a.example")});
  ASSERT_EQ(s.sessions_to_open(t0).size(), 3u);
  s.connection_failed("a.example", t0);
  s.connection_failed("a.example", t0);
  s.connection_failed("a.example", t0);
  s.add({rcpt(4, "a.example")});
  EXPECT_FALSE(s.next("a.example", t0 + std::chrono::milliseconds(99)).has_value());
  EXPECT_TRUE(s.next("a.example", t0 + std::chrono::milliseconds(100)).has_value());
}

}  // namespace
}  // namespace magnetic::queue

namespace magnetic::queue {
namespace {

// A destination that refuses our egress source rests until the given time: its waiting
// recipients are handed back, nothing opens or is taken before the end, a later suspension
// extends it, and at the end one session probes.
TEST(Scheduler, SuspendRestsTheDomainUntilTheEnd) {
  Scheduler s({.domain_connections = 4});
  auto t0 = Scheduler::Clock::time_point{} + std::chrono::seconds(100);
  auto until = t0 + std::chrono::seconds(60);
  s.add({rcpt(1, "a.example"), rcpt(2, "a.example"), rcpt(3, "b.example")});
  auto back = s.suspend("a.example", until);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(s.ready(), 1u);
  EXPECT_EQ(s.suspended_until("a.example", t0), until);
  EXPECT_FALSE(s.suspended_until("b.example", t0).has_value());
  EXPECT_FALSE(s.suspended_until("a.example", until).has_value());

  // An earlier end does not shorten it.
  s.suspend("a.example", t0 + std::chrono::seconds(1));
  EXPECT_EQ(s.suspended_until("a.example", t0), until);

  s.add({rcpt(4, "a.example"), rcpt(5, "a.example")});
  EXPECT_EQ(s.sessions_to_open(until - std::chrono::milliseconds(1)),
            std::vector<std::string>{"b.example"});
  EXPECT_FALSE(s.next("a.example", until - std::chrono::milliseconds(1)).has_value());
  EXPECT_EQ(s.sessions_to_open(until), std::vector<std::string>{"a.example"});
  EXPECT_EQ(s.session_limit("a.example"), 1);
  EXPECT_TRUE(s.next("a.example", until).has_value());
}

}  // namespace
}  // namespace magnetic::queue
