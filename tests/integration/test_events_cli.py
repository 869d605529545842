"""`magnetic events tail` as an operator runs it: the log of a data directory's event outbox,
filters, exit codes, and --follow until SIGINT.

The outbox is written here with Python's sqlite3, into the log table the binary keeps (the
columns the binary's schema creates), standing in for a running service.
"""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

SCHEMA = """
CREATE TABLE IF NOT EXISTS event (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  configuration_set TEXT NOT NULL,
  message_id TEXT NOT NULL,
  type TEXT NOT NULL,
  json TEXT NOT NULL
);
"""


def add(db, cs, type_, record):
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO event (time_ms, configuration_set, message_id, type, json) "
                  "VALUES (1000, ?, 'm', ?, ?)", (cs, type_, record))


def main():
    work = h.tempdir()
    with h.test_run():
        try:
            run(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def run(work):
    data = os.path.join(work, "data")
    rc, out, err = h.magnetic("events", "tail", "--data", data, check_rc=1)
    h.check_eq(err, f"magnetic events tail: no event outbox at '{data}/events.db'\n", "missing outbox")

    os.makedirs(data)
    db = os.path.join(data, "events.db")
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA journal_mode=WAL")
        c.executescript(SCHEMA)
    add(db, "marketing", "SEND", '{"eventType":"Send","n":1}')
    add(db, "marketing", "BOUNCE", '{"eventType":"Bounce","n":2}')
    add(db, "receipts", "BOUNCE", '{"eventType":"Bounce","n":3}')

    rc, out, err = h.magnetic("events", "tail", "--data", data, check_rc=0)
    h.check_eq(out, '{"eventType":"Send","n":1}\n{"eventType":"Bounce","n":2}\n'
                    '{"eventType":"Bounce","n":3}\n', "whole log")
    rc, out, err = h.magnetic("events", "tail", "--data", data, "--type", "BOUNCE",
                              "--configuration-set", "marketing", check_rc=0)
    h.check_eq(out, '{"eventType":"Bounce","n":2}\n', "type and configuration set")
    rc, out, err = h.magnetic("events", "tail", "--data", data, "--after", "2", check_rc=0)
    h.check_eq(out, '{"eventType":"Bounce","n":3}\n', "after")

    rc, out, err = h.magnetic("events", "tail", "--data", data, "--type", "Bounce")
    h.check_eq(rc, 2, "bad --type exit code")
    h.check("unknown event type 'Bounce'" in err, f"bad --type message: {err!r}")
    # Regression (after_range_message): a bad --after says what a sequence number is.
    for bad in ("-1", "abc", "18446744073709551616", "1.5"):
        rc, out, err = h.magnetic("events", "tail", "--data", data, "--after", bad)
        h.check_eq(rc, 2, f"--after {bad} exit code")
        h.check(f"a sequence number is a whole number from 0 to 9223372036854775807; got '{bad}'" in err,
                f"--after {bad} message: {err!r}")
    print("tail: the log, filtered by type, configuration set and sequence")

    p = h.spawn([h.BIN, "events", "tail", "--data", data, "--follow", "--after", "3"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    add(db, "marketing", "DELIVERY", '{"eventType":"Delivery","n":4}')
    line = p.stdout.readline()
    h.check_eq(line, '{"eventType":"Delivery","n":4}\n', "followed event")
    add(db, "marketing", "DELIVERY", '{"eventType":"Delivery","n":5}')
    line = p.stdout.readline()
    h.check_eq(line, '{"eventType":"Delivery","n":5}\n', "second followed event")
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=30)
    h.check_eq(rc, 0, "exit code after SIGINT")
    h.check_eq(p.stdout.read(), "", "nothing more after SIGINT")
    print("tail --follow: new events as they are logged, exit 0 on SIGINT")


if __name__ == "__main__":
    main()
