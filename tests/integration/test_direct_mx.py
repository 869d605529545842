"""Delivery by MX lookup, with a DNS responder of the test's own on loopback.

- a domain whose MX (preference order) points at the sink: delivered to it;
- a domain with no MX but an A record: delivered to the domain's own address (implicit MX);
- a null MX (RFC 7505): bounced at once, 556 5.1.10, never connected;
- a domain that does not exist: bounced as hostunknown.
No real DNS server is asked: the responder is given with --dns-server.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h
from dns_responder import Responder


def main():
    work = h.tempdir()
    with h.test_run():
        md = os.path.join(work, "md")
        sink, port = h.start_sink(md)
        dns = Responder({
            "mx.example": {"MX": [(20, "backup.mx.example"), (10, "primary.mx.example")]},
            "primary.mx.example": {"A": ["127.0.0.1"]},
            "backup.mx.example": {"A": ["127.0.0.2"]},
            "aonly.example": {"A": ["127.0.0.1"]},
            "nullmx.example": {"MX": [(0, ".")]},
        })
        lst = os.path.join(work, "l.csv")
        with open(lst, "w") as f:
            f.write("email\na@mx.example\nb@mx.example\nc@aonly.example\nd@nullmx.example\ne@missing.example\n")
        tpl = os.path.join(work, "t.json")
        h.write_template(tpl, "Hi", "Hello\n")
        report = os.path.join(work, "r.json")
        log = os.path.join(work, "d.jsonl")
        rc, out, err = h.magnetic("send", "--template", tpl, "--recipients", lst, "--from", "s@example.com",
                                  "--dns-server", f"127.0.0.1:{dns.port}", "--smtp-port", str(port),
                                  "--spool", os.path.join(work, "s.db"), "--report", report,
                                  "--disposition-log", log, "--no-progress", "--max-age", "5s",
                                  "--retry-initial", "200ms")
        h.check_eq(rc, 0, f"exit code\n{out}\n{err}")
        rep = json.load(open(report))
        h.check_eq((rep["delivered"], rep["bounced"]), (3, 2), f"delivered, bounced: {rep}")
        h.check_eq(sorted(m[1][0] for m in h.maildir_messages(md)),
                   ["a@mx.example", "b@mx.example", "c@aonly.example"], "delivered through MX and A")
        lines = {l["recipient"]: l for l in map(json.loads, open(log))}
        h.check_eq(lines["a@mx.example"]["mx"], f"127.0.0.1:{port}", "the preferred MX was used")
        h.check(lines["d@nullmx.example"]["reply"].startswith("556 5.1.10"), f"null MX reply {lines['d@nullmx.example']}")
        h.check_eq(lines["d@nullmx.example"]["reason"], "notaccept", "null MX reason")
        h.check_eq(lines["e@missing.example"]["reason"], "hostunknown", "missing domain reason")
        h.check(("nullmx.example", 1) not in dns.queries, "the null MX domain's address was asked")
        asked = {n for n, _ in dns.queries}
        h.check(asked <= {"mx.example", "primary.mx.example", "backup.mx.example", "aonly.example",
                          "nullmx.example", "missing.example"}, f"unexpected questions {asked}")
        print(f"direct MX: 3 delivered, null MX and missing domain bounced; {len(dns.queries)} DNS questions")
        dns.stop()
        sink.terminate()
    print("1 passed, 0 failed")


main()
