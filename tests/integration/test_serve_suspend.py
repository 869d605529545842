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



def add_hook(api, types):
    """Configuration set "news" with a webhook destination for `types`; returns the receiver."""
    api.ok("POST", "/v2/email/configuration-sets", {"ConfigurationSetName": "news"})
    receiver = h.WebhookReceiver().start()
    api.webhook("news", "hook", receiver.url(), types)
    return receiver


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
        f.write(f'[delivery]\nsuspend_for = "{SUSPEND_S}s"\nretry_initial = "1s"\n'
                '[feedback]\nbounce_domain = "bounces.test"\n')
    _, port = h.start_sink(extra=["--rcpt-code", "554", "--rcpt-text", REFUSAL])
    key = h.keys_create(data, "suspend")
    p, ports = h.start_serve_ports(data, routes=[("blocked.test", port)], extra=["--config", cfg])
    api = h.SesClient(ports["api"], key["AccessKeyId"], key["SecretAccessKey"])
    api.ok("POST", "/v2/email/identities", {"EmailIdentity": "example.com"})
    receiver = add_hook(api, ["DELIVERY_DELAY"])
    set_name = "news"

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
    # Regression (bounce_domain_without_listener_silent): VERP senders nothing here receives.
    h.check("feedback.bounce_domain is bounces.test but feedback.listen is not set" in h.serve_log(data),
            "the warning about a bounce domain without a listener:\n" + h.serve_log(data))
    r = api.call("GET", h.encode_path("v2", "email", "suppression", "addresses", "a@blocked.test"))
    h.check_eq(r.status, 404, "a recipient refused for our source is not suppressed")
    print(f"suspended: the second message waited {waited:.2f} s (suspend_for {SUSPEND_S} s)")
    # The second message, held back unattempted, is published as delayed for our IP, quoting the
    # refusal that suspended its destination (SES's IPFailure).
    delays = h.wait_for(lambda: [e["deliveryDelay"] for _, e in receiver.events()
                                 if e["mail"]["messageId"] == second], "the second message's DeliveryDelay")
    h.check_eq((delays[0]["delayType"], delays[0]["delayedRecipients"]),
               ("IPFailure", [{"emailAddress": "b@blocked.test", "status": "5.7.1",
                               "diagnosticCode": "smtp; 554 " + REFUSAL}]),
               "the DeliveryDelay of a recipient held back by the suspension")
    h.stop_serve(p, data)
    receiver.stop()

    # Regression (max_age_ignored_while_suspended): with suspend_for (30 s) longer than max_age
    # (2 s), a recipient waits no longer than its age allows. c is refused and deferred to its
    # limit (not to the end of the rest), then expires there unattempted; d, claimed during the
    # rest, waits for its own limit and expires never attempted.
    data2 = os.path.join(work, "data2")
    cfg2 = os.path.join(work, "short.toml")
    with open(cfg2, "w") as f:
        f.write('[delivery]\nsuspend_for = "30s"\nmax_age = "2s"\n')
    key = h.keys_create(data2, "suspend")
    p, ports = h.start_serve_ports(data2, routes=[("blocked.test", port)], extra=["--config", cfg2])
    data = data2
    api = h.SesClient(ports["api"], key["AccessKeyId"], key["SecretAccessKey"])
    api.ok("POST", "/v2/email/identities", {"EmailIdentity": "example.com"})
    receiver = add_hook(api, ["BOUNCE", "DELIVERY_DELAY"])
    first = send("c@blocked.test")
    h.wait_for(lambda: lines(first), "the attempt of c@blocked.test")
    second = send("d@blocked.test")
    got = h.wait_for(lambda: lines(first) if len(lines(first)) >= 2 else [], "c@blocked.test's expiry",
                     timeout=15)
    h.check_eq([(l["status"], l["reason"], l["attempt"]) for l in got],
               [("deferred", "blocked", 1), ("expired", "suspended", 1)], "dispositions of c@blocked.test")
    got = h.wait_for(lambda: lines(second), "the outcome of d@blocked.test", timeout=15)
    h.check_eq([(l["status"], l["reason"], l["attempt"]) for l in got], [("expired", "suspended", 0)],
               "dispositions of d@blocked.test")

    # Regression (expired_while_suspended_no_event, expired_before_max_age): each expiry
    # publishes a Transient bounce with RFC 3463's "delivery time expired", no earlier than
    # acceptance + max_age, the expirationTime its DeliveryDelay announced.
    def of(message_id, kind):
        return [e for _, e in receiver.events() if e["mail"]["messageId"] == message_id and kind in e]

    def ms(stamp):
        return int(datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
                   .replace(tzinfo=datetime.timezone.utc).timestamp() * 1000 + 0.5)

    for message_id, to in ((first, "c@blocked.test"), (second, "d@blocked.test")):
        event = h.wait_for(lambda: of(message_id, "bounce"), f"the bounce event of {to}")[0]
        bounce = event["bounce"]
        h.check_eq((bounce["bounceType"], bounce["bounceSubType"], bounce["bouncedRecipients"]),
                   ("Transient", "General",
                    [{"emailAddress": to, "action": "failed", "status": "4.4.7",
                      "diagnosticCode": "expired while its destination rests: it refuses our egress source"}]),
                   f"the bounce event of {to}")
        delay = of(message_id, "deliveryDelay")[0]["deliveryDelay"]
        h.check_eq(ms(delay["expirationTime"]) - ms(event["mail"]["timestamp"]), 2000,
                   f"{to}: expirationTime minus acceptance")
        h.check(ms(bounce["timestamp"]) >= ms(delay["expirationTime"]),
                f"{to} expired at {bounce['timestamp']}, before its expirationTime {delay['expirationTime']}")
    h.stop_serve(p, data2)
    receiver.stop()
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    finally:
        h.cleanup()
