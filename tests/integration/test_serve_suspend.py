"""`magnetic serve` suspends a destination that refuses our egress source.

The receiver (our capture sink) answers every RCPT with a block-list refusal (554 5.7.1 ... blocked
using a block list). The first recipient's attempt gets it: the recipient is deferred, not bounced,
nothing is suppressed, and the destination is suspended for delivery.suspend_for (3 s here). A
second message for the same destination, sent while it is suspended, is not attempted before the
suspension ends; then it is attempted (and refused again). `magnetic feedback classify` names the
action as delivery takes it.
"""
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

REFUSAL = "5.7.1 Service unavailable; client host [127.0.0.1] blocked using a block list"
SUSPEND_S = 3



def when(line):
    return datetime.datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def main():
    _, out, _ = h.magnetic("feedback", "classify", "554 " + REFUSAL, check_rc=0)
    verdict = json.loads(out)
    h.check_eq((verdict["action"], verdict["reason"], verdict["hard"]),
               ("suspend the egress source", "blocked", False), "classify of a block-list refusal")

    work = h.tempdir()
    data = os.path.join(work, "data")
    cfg = os.path.join(work, "magnetic.toml")
    with open(cfg, "w") as f:
        f.write(f'[delivery]\nsuspend_for = "{SUSPEND_S}s"\nretry_initial = "1s"\n')
    _, port = h.start_sink(extra=["--rcpt-code", "554", "--rcpt-text", REFUSAL])
    key = h.keys_create(data, "suspend")
    p, ports = h.start_serve_ports(data, routes=[("blocked.test", port)], extra=["--config", cfg])
    api = h.SesClient(ports["api"], key["AccessKeyId"], key["SecretAccessKey"])
    api.ok("POST", "/v2/email/identities", {"EmailIdentity": "example.com"})
    set_name = None

    def send(to):
        body = {
            "FromEmailAddress": "news@example.com", "Destination": {"ToAddresses": [to]},
            "Content": {"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "hi\n"}}}}}
        if set_name:
            body["ConfigurationSetName"] = set_name
        return api.ok("POST", "/v2/email/outbound-emails", body)["MessageId"]

    def lines(message_id):
        # Read while the service appends: a line not yet ended is left for the next read.
        return [l for l in h.jsonl_records(os.path.join(data, "dispositions.jsonl"))
                if l["message_id"] == message_id]

    first = send("a@blocked.test")
    got = h.wait_for(lambda: lines(first), "the first attempt")
    h.check_eq((got[0]["status"], got[0]["reason"]), ("deferred", "blocked"), "the refused recipient")
    second = send("b@blocked.test")
    later = h.wait_for(lambda: lines(second), "the second message's attempt after the suspension", timeout=30)
    waited = when(later[0]) - when(got[0])
    h.check(waited >= SUSPEND_S - 0.05,
            f"the second message was attempted {waited:.2f} s after the refusal, inside the {SUSPEND_S} s suspension")
    h.check_eq((later[0]["status"], later[0]["reason"]), ("deferred", "blocked"), "the second attempt")
    h.check("refuses our egress source" in h.serve_log(data), "the suspension in the log:\n" + h.serve_log(data))
    r = api.call("GET", h.encode_path("v2", "email", "suppression", "addresses", "a@blocked.test"))
    h.check_eq(r.status, 404, "a recipient refused for our source is not suppressed")
    print(f"suspended: the second message waited {waited:.2f} s (suspend_for {SUSPEND_S} s)")
    h.stop_serve(p, data)

    # Regression (max_age_ignored_while_suspended): with suspend_for longer than max_age, a
    # recipient claimed during the suspension expires at once rather than go out after its age.
    data2 = os.path.join(work, "data2")
    cfg2 = os.path.join(work, "short.toml")
    with open(cfg2, "w") as f:
        f.write('[delivery]\nsuspend_for = "30s"\nmax_age = "2s"\n')
    key = h.keys_create(data2, "suspend")
    p, ports = h.start_serve_ports(data2, routes=[("blocked.test", port)], extra=["--config", cfg2])
    data = data2
    api = h.SesClient(ports["api"], key["AccessKeyId"], key["SecretAccessKey"])
    api.ok("POST", "/v2/email/identities", {"EmailIdentity": "example.com"})
    api.ok("POST", "/v2/email/configuration-sets", {"ConfigurationSetName": "news"})
    receiver = h.WebhookReceiver().start()
    api.ok("POST", "/v2/email/configuration-sets/news/event-destinations", {
        "EventDestinationName": "hook",
        "EventDestination": {"Enabled": True, "MatchingEventTypes": ["BOUNCE"],
                             "SnsDestination": {"TopicArn": receiver.url()}}})
    set_name = "news"
    first = send("c@blocked.test")
    got = h.wait_for(lambda: lines(first), "the attempt of c@blocked.test")
    h.check_eq((got[0]["status"], got[0]["reason"]), ("expired", "blocked"),
               "a refused recipient whose next chance is past max_age")
    second = send("d@blocked.test")
    got = h.wait_for(lambda: lines(second), "the outcome of d@blocked.test", timeout=10)
    h.check_eq((got[0]["status"], got[0]["reason"], got[0]["attempt"]), ("expired", "suspended", 0),
               "a recipient claimed while suspended, past max_age before the end")

    # Regression (expired_while_suspended_no_event): both expiries publish a Transient bounce;
    # the one never attempted says so, with RFC 3463's "delivery time expired".
    def bounce_of(message_id):
        return [e["bounce"] for _, e in receiver.events() if e["mail"]["messageId"] == message_id]

    attempted = h.wait_for(lambda: bounce_of(first), "the bounce event of c@blocked.test")[0]
    h.check_eq((attempted["bounceType"], attempted["bounceSubType"],
                attempted["bouncedRecipients"][0]["status"]),
               ("Transient", "General", "5.7.1"), "the expired, attempted recipient's event")
    unattempted = h.wait_for(lambda: bounce_of(second), "the bounce event of d@blocked.test")[0]
    h.check_eq((unattempted["bounceType"], unattempted["bounceSubType"],
                unattempted["bouncedRecipients"][0]["emailAddress"],
                unattempted["bouncedRecipients"][0]["status"],
                unattempted["bouncedRecipients"][0]["diagnosticCode"]),
               ("Transient", "General", "d@blocked.test", "4.4.7",
                "not attempted: the destination refuses our egress source"),
               "the expired, unattempted recipient's event")
    h.stop_serve(p, data2)
    receiver.stop()

    # Regression (max_age_counted_from_first_attempt): the age counts from acceptance. d is
    # accepted while the destination rests (3 s); whether it gets the probe at 3 s (refused: next
    # chance 6 s) or waits behind c's probe (until 6 s), 6 s is past max_age (4 s) from its
    # acceptance, but not from its first attempt: it expires, never deferred to 6 s.
    data3 = os.path.join(work, "data3")
    cfg3 = os.path.join(work, "age.toml")
    with open(cfg3, "w") as f:
        f.write('[delivery]\nsuspend_for = "3s"\nmax_age = "4s"\nretry_initial = "2s"\n')
    key = h.keys_create(data3, "suspend")
    p, ports = h.start_serve_ports(data3, routes=[("blocked.test", port)], extra=["--config", cfg3])
    data = data3
    set_name = None
    api = h.SesClient(ports["api"], key["AccessKeyId"], key["SecretAccessKey"])
    api.ok("POST", "/v2/email/identities", {"EmailIdentity": "example.com"})
    first = send("c@blocked.test")
    got = h.wait_for(lambda: lines(first), "the attempt of c@blocked.test")
    h.check_eq((got[0]["status"], got[0]["reason"]), ("deferred", "blocked"), "c's first attempt")
    second = send("d@blocked.test")
    got = h.wait_for(lambda: lines(second), "the outcome of d@blocked.test", timeout=20)
    h.check_eq(got[0]["status"], "expired", "d's outcome, past max_age from its acceptance")
    h.stop_serve(p, data3)
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    finally:
        h.cleanup()
