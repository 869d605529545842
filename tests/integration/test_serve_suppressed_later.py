"""Regression (suppressed_while_deferred_is_mailed): an address put on the suppression list after
its message was accepted, while the message waits for a retry, is not mailed.

The receiver (our capture sink) answers RCPT with 451 for the first two attempts of each
recipient, then takes the mail. late@slow.test is deferred once, put on the suppression list
through the API (PutSuppressedDestination), and then never attempted again: its disposition is
`suppressed`, nothing reaches the sink, and the set's webhook gets a Permanent
OnAccountSuppressionList bounce. A recipient of the same destination that is not suppressed is
delivered on its third attempt.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h



def main():
    work = h.tempdir()
    data = os.path.join(work, "data")
    cfg = os.path.join(work, "magnetic.toml")
    with open(cfg, "w") as f:
        f.write('[delivery]\nretry_initial = "2s"\n')
    maildir = os.path.join(work, "maildir")
    _, port = h.start_sink(maildir, extra=["--rcpt-code", "451", "--rcpt-text", "4.7.1 try later",
                                           "--rcpt-fail-times", "2"])
    key = h.keys_create(data, "late")
    p, ports = h.start_serve_ports(data, routes=[("slow.test", port)], extra=["--config", cfg])
    api = h.SesClient(ports["api"], key["AccessKeyId"], key["SecretAccessKey"])
    api.ok("POST", "/v2/email/identities", {"EmailIdentity": "example.com"})
    api.ok("POST", "/v2/email/configuration-sets", {"ConfigurationSetName": "news"})
    receiver = h.WebhookReceiver().start()
    api.webhook("news", "hook", receiver.url(), ["BOUNCE"])

    def send(to):
        return api.ok("POST", "/v2/email/outbound-emails", {
            "FromEmailAddress": "news@example.com", "Destination": {"ToAddresses": [to]},
            "ConfigurationSetName": "news",
            "Content": {"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "hi\n"}}}}})["MessageId"]

    def states(message_id):
        # Read while the service appends: a line not yet ended is left for the next read.
        return [l["status"] for l in h.jsonl_records(os.path.join(data, "dispositions.jsonl"))
                if l["message_id"] == message_id]

    late = send("late@slow.test")
    kept = send("kept@slow.test")
    h.wait_for(lambda: states(late), "the first attempt of late@slow.test")
    api.ok("PUT", "/v2/email/suppression/addresses",
           {"EmailAddress": "late@slow.test", "Reason": "COMPLAINT"})
    h.wait_for(lambda: states(late)[-1:] == ["suppressed"], "late@slow.test suppressed before its retry")
    h.wait_for(lambda: "delivered" in states(kept), "kept@slow.test delivered")
    h.check_eq(states(late), ["deferred", "suppressed"], "dispositions of late@slow.test")
    h.check_eq(states(kept), ["deferred", "deferred", "delivered"], "dispositions of kept@slow.test")
    got = [to for _, to, _ in h.maildir_messages(maildir)]
    h.check_eq(got, [["kept@slow.test"]], "recipients at the sink")
    ev = h.wait_for(lambda: [e for _, e in receiver.events() if e["mail"]["messageId"] == late],
                  "the bounce event of late@slow.test")[0]["bounce"]
    h.check_eq((ev["bounceType"], ev["bounceSubType"], ev["bouncedRecipients"][0]["emailAddress"]),
               ("Permanent", "OnAccountSuppressionList", "late@slow.test"), "the suppressed recipient's event")
    print("suppressed while deferred: not mailed; dispositions", states(late))
    h.stop_serve(p, data)
    receiver.stop()
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    finally:
        h.cleanup()
