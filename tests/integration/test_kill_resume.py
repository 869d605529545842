"""kill -9 in the middle of a campaign, then --resume with the same spool.

Every recipient must reach the sink; a recipient the first run had recorded as delivered (state
delivered in the spool at the kill) must not be sent again; any duplicate must be within the count the report gives as possible.
The kill comes once early and once in the middle of delivery. Every outcome the spool had
recorded must also have its line in the disposition log.
"""
import collections
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

N = 4000


def run_case(work, tag, kill_when):
    md = os.path.join(work, f"md-{tag}")
    sink, port = h.start_sink(md, ["--reply-delay", "1"])
    lst = os.path.join(work, f"{tag}.csv")
    with open(lst, "w") as f:
        f.write("email,name\n")
        for i in range(N):
            f.write(f"k{i}@d{i % 7}.example,Name {i}\n")
    tpl = os.path.join(work, "t.json")
    h.write_template(tpl, "Hi {{name}}", "Hello {{name}}\n", "<p>{{name}}</p>")
    spool = os.path.join(work, f"{tag}.db")
    log = os.path.join(work, f"{tag}.jsonl")
    report = os.path.join(work, f"{tag}.json")
    args = [h.BIN, "send", "--template", tpl, "--recipients", lst, "--from", "a@example.com",
            "--relay", f"127.0.0.1:{port}", "--spool", spool, "--disposition-log", log,
            "--report", report, "--no-progress", "--batch-size", "200"]
    p = h.spawn(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    new = os.path.join(md, "new")
    end = time.time() + 60
    while time.time() < end:
        if kill_when(new, log):
            break
        time.sleep(0.005)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    at_kill = len(os.listdir(new)) if os.path.isdir(new) else 0
    h.check(at_kill < N, f"{tag}: the campaign finished before the kill ({at_kill})")
    # What the spool had recorded as delivered when the process died (state 2).
    import sqlite3
    db = sqlite3.connect(spool)
    delivered_before = {r[0] for r in db.execute("SELECT email FROM recipient WHERE state = 2")}
    db.close()
    # Every outcome the spool recorded has its line in the disposition log, which is written first.
    logged = set()
    if os.path.exists(log):
        for line in open(log):
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by the kill
            if rec["status"] == "delivered":
                logged.add(rec["recipient"])
    h.check_eq(sorted(delivered_before - logged), [], f"{tag}: delivered in the spool without a log line")

    # The same command without --resume must not start mailing everyone again.
    rc, out, err = h.magnetic(*args[1:])
    h.check_eq(rc, 1, f"{tag}: a new run over an unfinished spool")
    h.check("add --resume to finish it" in err, f"{tag}: the refusal says what to do: {err!r}")

    rc, out, err = h.magnetic(*args[1:], "--resume")
    h.check_eq(rc, 0, f"{tag}: resume exit code\n{out}\n{err}")
    rep = json.load(open(report))
    counts = collections.Counter(m[1][0] for m in h.maildir_messages(md))
    h.check_eq(len(counts), N, f"{tag}: distinct recipients at the sink")
    h.check_eq(rep["delivered"], N, f"{tag}: delivered in the report")
    dups = {r: c for r, c in counts.items() if c > 1}
    resent_after_record = [r for r in dups if r in delivered_before]
    h.check_eq(resent_after_record, [], f"{tag}: recorded-delivered recipients sent again")
    extra = sum(c - 1 for c in dups.values())
    h.check(extra <= rep["possible_duplicates"], f"{tag}: {extra} duplicates > possible {rep['possible_duplicates']}")
    sink.terminate()
    print(f"{tag}: killed at {at_kill} captured ({len(delivered_before)} recorded delivered); after resume "
          f"{len(counts)} distinct, {extra} duplicates, report says at most {rep['possible_duplicates']}")


def main():
    work = h.tempdir()
    with h.test_run():
        run_case(work, "during-delivery",
                 lambda new, log: os.path.isdir(new) and len(os.listdir(new)) >= N // 3)
        run_case(work, "early", lambda new, log: os.path.isdir(new) and len(os.listdir(new)) >= 50)
    print("2 passed, 0 failed")


main()
