"""Deferral, retry and bounce against a sink that plays a faulty receiver.

- 451 for the first two attempts of every recipient, then 250: all delivered on the third
  attempt, each attempt in the disposition log.
- 550 5.1.1 always: all bounced as userunknown, nothing captured.
- 421 after 5 messages per connection: all delivered over several connections, the domain slowed.
- A relay nobody listens on: recipients deferred, then expired past --max-age, with the
  connection error in the report.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def write_list(path, n, domain="retry.example"):
    with open(path, "w") as f:
        f.write("email,name\n")
        for i in range(n):
            f.write(f"r{i}@{domain},N{i}\n")


def send(work, tag, port, n, *extra):
    lst = os.path.join(work, f"{tag}.csv")
    write_list(lst, n)
    tpl = os.path.join(work, "t.json")
    h.write_template(tpl, "Hi {{name}}", "Body for {{name}}\n")
    report = os.path.join(work, f"{tag}.json")
    log = os.path.join(work, f"{tag}.jsonl")
    rc, out, err = h.magnetic("send", "--template", tpl, "--recipients", lst, "--from", "a@example.com",
                              "--relay", f"127.0.0.1:{port}", "--spool", os.path.join(work, f"{tag}.db"),
                              "--report", report, "--disposition-log", log, "--no-progress", *extra)
    lines = [json.loads(l) for l in open(log)] if os.path.exists(log) else []
    return rc, json.load(open(report)) if os.path.exists(report) else None, lines, out, err


def main():
    work = h.tempdir()
    with h.test_run():
        # 451 twice, then 250.
        md = os.path.join(work, "md-defer")
        sink, port = h.start_sink(md, ["--rcpt-code", "451", "--rcpt-fail-times", "2"])
        rc, rep, log, out, err = send(work, "defer", port, 50, "--retry-initial", "200ms")
        h.check_eq(rc, 0, f"exit code (stderr: {err})")
        h.check_eq(rep["delivered"], 50, "delivered after retries")
        h.check_eq(rep["deferred"], 0, "still deferred")
        h.check_eq(len(h.maildir_messages(md)), 50, "messages at the sink")
        by_status = {}
        for l in log:
            by_status[l["status"]] = by_status.get(l["status"], 0) + 1
        h.check_eq(by_status, {"deferred": 100, "delivered": 50}, "attempts by status")
        h.check_eq(sorted({l["attempt"] for l in log if l["status"] == "delivered"}), [3], "attempt of delivery")
        first = [l for l in log if l["status"] == "deferred"][0]
        h.check(first["reply"].startswith("451"), f"deferred reply {first['reply']!r}")
        sink.terminate()
        print("defer: 50 recipients, 100 deferrals, 50 delivered on attempt 3")

        # 550 always.
        md = os.path.join(work, "md-bounce")
        sink, port = h.start_sink(md, ["--rcpt-code", "550", "--rcpt-text", "5.1.1 <x>: Recipient address rejected: User unknown"])
        rc, rep, log, out, err = send(work, "bounce", port, 30)
        h.check_eq(rc, 0, "exit code")
        h.check_eq(rep["bounced"], 30, "bounced")
        h.check_eq(rep["delivered"], 0, "delivered")
        h.check_eq(rep["bounced_by_reason"], {"userunknown": 30}, "bounce reasons")
        h.check_eq(len(h.maildir_messages(md)), 0, "messages at the sink")
        h.check_eq({l["reply"] for l in log}, {"550 5.1.1 <x>: Recipient address rejected: User unknown"}, "bounce reply")
        h.check("userunknown" in out, "report table names the bounce reason")
        sink.terminate()
        print("bounce: 30 recipients bounced as userunknown")

        # 421 after 5 messages on a connection.
        md = os.path.join(work, "md-421")
        sink, port = h.start_sink(md, ["--disconnect-after", "5"])
        rc, rep, log, out, err = send(work, "421", port, 40, "--retry-initial", "100ms", "--domain-connections", "4",
                                     "--slow-backoff", "200ms")
        h.check_eq(rc, 0, f"exit code (stderr: {err})")
        h.check_eq(rep["delivered"], 40, "delivered despite 421s")
        h.check_eq(len({m[1][0] for m in h.maildir_messages(md)}), 40, "distinct recipients at the sink")
        h.check_eq(len(h.maildir_messages(md)), 40, "messages at the sink")
        deferred_421 = [l for l in log if l["status"] == "deferred"]
        h.check(all(l["reply"].startswith("421") for l in deferred_421), "421 deferrals")
        sink.terminate()
        print(f"421: 40 delivered, {len(deferred_421)} deferrals after 421")

        # Nobody listens: deferred, then expired.
        # The port is held, never listening, for the whole run: every connection is refused, as
        # the test wants, and none can be given the port as its own (connecting to itself), nor
        # another server take it.
        held = h.HeldPort(reuse=False)
        dead = held.port
        rc, rep, log, out, err = send(work, "dead", dead, 5, "--retry-initial", "100ms", "--max-age", "1s",
                                     "--slow-backoff", "300ms")
        held.release()
        h.check_eq(rc, 0, "exit code once all expired")
        h.check_eq(rep["expired"], 5, "expired")
        # expired_is_not_counted_as_bounced
        h.check_eq((rep["bounced"], rep["bounced_by_reason"]), (0, {}), "expired counted as bounced")
        h.check_eq(rep["expired_by_reason"], {"networkerror": 5}, "expired by reason")
        h.check_eq(rep["by_domain"]["retry.example"]["expired"], 5, "expired per domain")
        h.check_eq(rep["delivered"], 0, "delivered")
        h.check(f"cannot deliver through 127.0.0.1:{dead}" in err, f"warning names the relay: {err}")
        h.check(all(l["reason"] == "networkerror" for l in log), "reason networkerror")
        h.check("refused" in log[0]["reply"].lower(), f"reply says why: {log[0]['reply']!r}")
        print(f"unreachable relay: 5 expired after {len(log)} attempts, warning: {[l for l in err.splitlines() if 'cannot deliver' in l][0]}")

        # Regression (one_shot_send_has_no_suspension): a refusal of our egress source rests the
        # destination. One session: the first recipient's refusal suspends retry.example for 2 s;
        # it is deferred to its age limit (--max-age 1 s, before the rest ends), the others wait
        # unattempted for theirs, and all expire there. Without the suspension all five would be
        # attempted.
        md = os.path.join(work, "md-blocked")
        sink, port = h.start_sink(md, ["--rcpt-code", "554", "--rcpt-text",
                                       "5.7.1 Service unavailable; client host [127.0.0.1] blocked using a block list"])
        rc, rep, log, out, err = send(work, "blocked", port, 5, "--suspend-for", "2s", "--max-age", "1s",
                                     "--domain-connections", "1")
        h.check_eq(rc, 0, f"exit code (stderr: {err})")
        h.check_eq((rep["expired"], rep["bounced"], rep["delivered"]), (5, 0, 0), "expired, bounced, delivered")
        got = sorted((l["status"], l["reason"], l["attempt"]) for l in log)
        h.check_eq(got, [("deferred", "blocked", 1)] + [("expired", "suspended", 0)] * 4 +
                   [("expired", "suspended", 1)], "dispositions: one attempt, four never attempted")
        h.check("refuses our egress source" in err, f"the suspension in the log: {err}")
        h.check_eq(len(h.maildir_messages(md)), 0, "messages at the sink")
        sink.terminate()
        print("blocked: one attempt, the destination suspended, four expired unattempted")
        rc, _, err = h.magnetic("send", "--template", os.path.join(work, "t.json"), "--recipients",
                                os.path.join(work, "blocked.csv"), "--from", "a@example.com",
                                "--relay", f"127.0.0.1:{port}", "--suspend-for", "500ms",
                                "--spool", os.path.join(work, "x.db"))
        h.check_eq((rc, err.strip().splitlines()[-1]), (2, "error: --suspend-for must be at least 1s"),
                   "--suspend-for below 1s")
    print("5 passed, 0 failed")


main()
