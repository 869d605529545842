"""The feedback loop of `magnetic serve` against real peers, all on loopback.

1. A real Postfix instance is the receiving MTA for rcpt.test: it accepts mail for an unknown user,
   fails it after accepting, and sends its own DSN to our VERP envelope sender, through its
   transport map, to our feedback listener. The address must end up suppressed (BOUNCE), with a
   Permanent Bounce event at the webhook, after the message's Send and Delivery events.
2. swaks injects ARF reports (RFC 5965) to the feedback-loop address: one matched by the VERP
   envelope sender it names, one by the returned message's Message-ID alone. Complaint events and
   COMPLAINT suppressions appear. Relaying and forged VERP tokens are refused.
3. The webhook receiver is down while mail is delivered, the service is killed with SIGKILL and
   started again, and the receiver comes back: every event arrives exactly once, in order per
   message, each with a valid HMAC signature. The JSON-lines destination holds the same records.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h
import postfix_peer

DOMAIN = "example.com"
FROM = "News <news@example.com>"
SET = "fb"
BOUNCE_DOMAIN = "bounces.test"
FBL = "fbl@bounces.test"
TOKEN = "feedback-token-0123456789"


def config(work, data, ca_file):
    path = os.path.join(work, "magnetic.toml")
    with open(path, "w") as f:
        f.write(f'''
[feedback]
listen = "127.0.0.1:0"
hostname = "feedback.test"
bounce_domain = "{BOUNCE_DOMAIN}"
complaint_addresses = ["{FBL}"]
http_token = "{TOKEN}"

[reputation]
min_sent = 1000000

[events]
retry_initial = "100ms"
retry_max = "500ms"
ca_file = "{ca_file}"
''')
    return path


def serve(cfg, data, routes):
    return h.start_serve_ports(data, routes=routes, extra=["--config", cfg],
                               listeners=("api", "smtp", "feedback"))



def events_of(receiver, message_id):
    return [e for _, e in receiver.events() if e["mail"]["messageId"] == message_id]


def swaks(port, to, data_file, sender="fbl-reports@isp.test"):
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--from", sender,
                        "--to", to, "--data", "@" + data_file, "--helo", "isp.test",
                        "--timeout", "20"], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def arf_report(path, original, rcpt, mail_from=None, feedback_type="abuse"):
    """An RFC 5965 report about `original` (bytes of the message as the receiver got it)."""
    fields = [f"Feedback-Type: {feedback_type}", "User-Agent: ExampleFBL/1.0", "Version: 1",
              f"Original-Rcpt-To: <{rcpt}>", "Arrival-Date: Thu, 03 Dec 2026 10:00:00 +0000",
              "Source-IP: 127.0.0.1"]
    if mail_from:
        fields.insert(3, f"Original-Mail-From: <{mail_from}>")
    original = original.replace(b"\r\n", b"\n")
    if mail_from is None:
        # Matched by Message-ID alone: drop what names the envelope sender.
        original = b"\n".join(l for l in original.split(b"\n") if not l.lower().startswith(b"return-path:"))
    body = (
        "From: fbl-reports@isp.test\n"
        f"To: {FBL}\n"
        "Subject: Abuse report\n"
        "Message-ID: <report-" + str(time.time_ns()) + "@isp.test>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b1"\n'
        "\n--b1\nContent-Type: text/plain\n\nThis is an abuse report.\n"
        "\n--b1\nContent-Type: message/feedback-report\n\n" + "\n".join(fields) + "\n"
        "\n--b1\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n").encode() + original + b"\n--b1--\n"
    with open(path, "wb") as f:
        f.write(body)


def main():
    if not os.path.exists(postfix_peer.POSTFIX):
        print("SKIP: no Postfix at " + postfix_peer.POSTFIX)
        return
    work = h.tempdir()
    data = os.path.join(work, "data")
    tls = h.self_signed_cert(work)
    cfg = config(work, data, tls[0])
    sink_dir = os.path.join(work, "sink")
    os.makedirs(sink_dir)
    sink, sink_port = h.start_smtp_sink(sink_dir)
    # Postfix's port is routed to before Postfix runs: it is held (h.HeldPort) until Postfix
    # listens there, so that no other server can take it meanwhile.
    postfix_held = h.HeldPort()
    postfix_port = postfix_held.port
    receiver = h.WebhookReceiver().start()

    key = h.keys_create(data, "feedback")
    p, ports = serve(cfg, data, [("rcpt.test", postfix_port), ("good.test", sink_port)])
    peer = postfix_peer.PostfixPeer(os.path.join(work, "postfix"))
    try:
        peer.start(feedback_port=ports["feedback"], smtp_port=postfix_port)
        postfix_held.release()
        api = h.SesClient(ports["api"], key["AccessKeyId"], key["SecretAccessKey"])
        api.ok("POST", "/v2/email/identities", {"EmailIdentity": DOMAIN})
        api.ok("POST", "/v2/email/configuration-sets", {"ConfigurationSetName": SET})
        api.webhook(SET, "hook", receiver.url(), ["SEND", "DELIVERY", "BOUNCE", "COMPLAINT"])
        api.ok("POST", f"/v2/email/configuration-sets/{SET}/event-destinations", {
            "EventDestinationName": "file",
            "EventDestination": {"Enabled": True,
                                 "MatchingEventTypes": ["SEND", "DELIVERY", "BOUNCE", "COMPLAINT"],
                                 "KinesisFirehoseDestination": {
                                     "IamRoleArn": "arn:aws:iam::000000000000:role/none",
                                     "DeliveryStreamArn": "file:feedback"}}})

        def send(to, subject):
            doc = api.ok("POST", "/v2/email/outbound-emails", {
                "FromEmailAddress": FROM, "Destination": {"ToAddresses": [to]},
                "ConfigurationSetName": SET,
                "Content": {"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": "hi\n"}}}}})
            return doc["MessageId"]

        # 1. Postfix round trip.
        bounced = send("unknown@rcpt.test", "to nobody")
        sup = h.wait_for(lambda: (lambda r: r.doc if r.status == 200 else None)(
            api.call("GET", h.encode_path("v2", "email", "suppression", "addresses", "unknown@rcpt.test"))),
            "unknown@rcpt.test on the suppression list (Postfix's DSN)\n" + peer.log()[-3000:], timeout=90)
        entry = sup["SuppressedDestination"]
        h.check_eq(entry["Reason"], "BOUNCE", "suppression reason after Postfix's DSN")
        h.check_eq(entry["Attributes"]["MessageId"], bounced, "suppression's MessageId")
        evs = h.wait_for(lambda: (lambda e: e if [x["eventType"] for x in e][-1:] == ["Bounce"] else None)(
            events_of(receiver, bounced)), "the Bounce event of the Postfix DSN")
        h.check_eq([e["eventType"] for e in evs], ["Send", "Delivery", "Bounce"], "events of the bounced message")
        b = evs[2]["bounce"]
        h.check_eq(b["bounceType"], "Permanent", "bounceType")
        h.check_eq([r["emailAddress"] for r in b["bouncedRecipients"]], ["unknown@rcpt.test"], "bouncedRecipients")
        h.check_eq(b["bouncedRecipients"][0]["status"], "5.1.1", "bounced status")
        h.check_eq(b["bouncedRecipients"][0]["action"], "failed", "bounced action")
        h.check_eq(b["bouncedRecipients"][0]["diagnosticCode"], 'x-postfix; unknown user: "unknown"',
                   "diagnosticCode of Postfix's DSN")
        h.check_eq(b["bounceSubType"], "NoEmail", "bounceSubType of an unknown user")
        h.check_eq(b["reportingMTA"], "dns; " + postfix_peer.HOSTNAME, "reportingMTA")
        h.check_eq(evs[1]["delivery"]["recipients"], ["unknown@rcpt.test"], "Delivery recipients")
        h.check(evs[1]["delivery"]["smtpResponse"].startswith("250"), f"Delivery smtpResponse {evs[1]}")
        h.check_eq(evs[0]["mail"]["commonHeaders"]["subject"], "to nobody", "commonHeaders.subject")
        h.check_eq(evs[0]["mail"]["destination"], ["unknown@rcpt.test"], "mail.destination")
        h.check_eq(evs[0]["mail"]["tags"]["ses:configuration-set"], [SET], "ses:configuration-set tag")
        print(f"postfix round trip: {bounced} suppressed, events {[e['eventType'] for e in evs]}")

        # Suppressed now: accepted, never attempted again.
        again = send("unknown@rcpt.test", "again")
        states = h.wait_for(lambda: [l for l in h.jsonl_records(os.path.join(data, "dispositions.jsonl"))
                                   if l["message_id"] == again], "the disposition of the suppressed send")
        h.check_eq(states[0]["status"], "suppressed", "second send to a bounced address")

        # 2. ARF reports through swaks.
        ok1 = send("reader1@good.test", "read me")
        ok2 = send("reader2@good.test", "read me too")
        got = h.wait_for(lambda: (lambda m: m if len(m) >= 2 else None)(h.smtp_sink_messages(sink_dir)),
                       "two messages at smtp-sink")
        by_rcpt = {tuple(to): (frm, raw) for frm, to, raw in got}
        frm1, raw1 = by_rcpt[("reader1@good.test",)]
        h.check(frm1.startswith("bounce+") and frm1.endswith("@" + BOUNCE_DOMAIN), f"VERP sender {frm1}")
        raw1 = b"Return-Path: <" + frm1.encode() + b">\n" + raw1
        _, raw2 = by_rcpt[("reader2@good.test",)]
        report1 = os.path.join(work, "arf1.eml")
        arf_report(report1, raw1, "reader1@good.test", mail_from=frm1)
        rc, out = swaks(ports["feedback"], FBL, report1)
        h.check(rc == 0 and "250 2.0.0 Feedback recorded: 1 matched, 0 unmatched" in out, f"swaks ARF 1:\n{out}")
        report2 = os.path.join(work, "arf2.eml")
        arf_report(report2, raw2, "reader2@good.test")
        rc, out = swaks(ports["feedback"], FBL, report2)
        h.check(rc == 0 and "250 2.0.0 Feedback recorded: 1 matched, 0 unmatched" in out, f"swaks ARF 2:\n{out}")
        for mid, rcpt in ((ok1, "reader1@good.test"), (ok2, "reader2@good.test")):
            r = api.call("GET", h.encode_path("v2", "email", "suppression", "addresses", rcpt))
            h.check_eq(r.status, 200, f"{rcpt} suppressed after the ARF report")
            h.check_eq(r.doc["SuppressedDestination"]["Reason"], "COMPLAINT", f"{rcpt} suppression reason")
            evs = h.wait_for(lambda: (lambda e: e if e and e[-1]["eventType"] == "Complaint" else None)(
                events_of(receiver, mid)), f"the Complaint event of {rcpt}")
            c = evs[-1]["complaint"]
            h.check_eq(c["complaintFeedbackType"], "abuse", "complaintFeedbackType")
            h.check_eq(c["complainedRecipients"], [{"emailAddress": rcpt}], "complainedRecipients")
            h.check_eq(c["userAgent"], "ExampleFBL/1.0", "complaint userAgent")
        print("ARF: two complaints (VERP and Message-ID) suppressed with Complaint events")

        # The same report posted over HTTP, for providers that deliver them that way.
        ok3 = send("reader3@good.test", "read me by http")
        got = h.wait_for(lambda: [m for m in h.smtp_sink_messages(sink_dir) if m[1] == ["reader3@good.test"]],
                       "the third message at smtp-sink")
        frm3, _, raw3 = got[0]
        report3 = os.path.join(work, "arf3.eml")
        arf_report(report3, b"Return-Path: <" + frm3.encode() + b">\n" + raw3, "reader3@good.test", mail_from=frm3)
        import http.client
        body3 = open(report3, "rb").read()
        for token, want in (("wrong-token-0123456789000", 401), (TOKEN, 200)):
            conn = http.client.HTTPConnection("127.0.0.1", ports["api"], timeout=30)
            conn.request("POST", "/feedback/v1/reports", body=body3,
                         headers={"Authorization": "Bearer " + token, "Content-Type": "message/rfc822"})
            resp = conn.getresponse()
            answer = resp.read()
            conn.close()
            h.check_eq(resp.status, want, f"POST /feedback/v1/reports with token {token}: {answer!r}")
        h.check_eq(json.loads(answer), {"Kind": "complaint", "Matched": 1, "Unmatched": 0, "Suppressed": 1},
                   "the answer of the feedback endpoint")
        # Regression (json_body_taken_as_report): what is not a report is refused.
        conn = http.client.HTTPConnection("127.0.0.1", ports["api"], timeout=30)
        conn.request("POST", "/feedback/v1/reports", body=b'{"a":1}',
                     headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
        resp = conn.getresponse()
        refusal = json.loads(resp.read())
        conn.close()
        h.check_eq((resp.status, refusal["__type"]), (400, "BadRequestException"),
                   "a JSON body posted as a report")
        h.wait_for(lambda: (lambda e: e and e[-1]["eventType"] == "Complaint")(events_of(receiver, ok3)),
                 "the Complaint event of the HTTP report")

        # Not a relay, not a mailbox; forged tokens refused.
        rc, out = swaks(ports["feedback"], "someone@example.com", report1)
        h.check(rc != 0 and "550 5.7.1" in out, f"relay attempt through the feedback listener:\n{out}")
        forged = frm1.replace("bounce+", "bounce+1").replace("@", "x@")
        rc, out = swaks(ports["feedback"], forged, report1)
        h.check(rc != 0 and "550 5.1.1" in out, f"forged VERP address:\n{out}")

        # An https webhook, verified against the CA file of the configuration.
        secure = h.WebhookReceiver(tls=tls).start()
        api.webhook(SET, "secure", secure.url(), ["SEND"])
        time.sleep(2.5)  # the service reads destinations through a cache of 2 seconds
        over_tls = send("reader4@good.test", "over https")
        h.wait_for(lambda: [e for _, e in secure.events() if e["mail"]["messageId"] == over_tls],
                 "the Send event at the https webhook")
        secure.stop()
        api.ok("DELETE", f"/v2/email/configuration-sets/{SET}/event-destinations/secure")
        # A certificate the CA file does not vouch for is refused.
        untrusted = h.WebhookReceiver(tls=h.self_signed_cert(work, "other")).start()
        api.webhook(SET, "untrusted", untrusted.url(), ["SEND"])
        time.sleep(2.5)
        send("reader5@good.test", "not over untrusted https")
        h.wait_for(lambda: "untrusted" in h.serve_log(data) and "certificate verify failed" in h.serve_log(data),
                 "the refusal of the untrusted certificate in the log")
        h.check_eq(untrusted.requests, [], "requests that reached the untrusted https webhook")
        untrusted.stop()
        api.ok("DELETE", f"/v2/email/configuration-sets/{SET}/event-destinations/untrusted")
        time.sleep(2.5)
        print("https webhook: Send event received over TLS; an untrusted certificate refused")

        # 3. Webhook outage and kill -9.
        before = len(receiver.requests)
        receiver.stop()
        ids = [send(f"user{i}@good.test", f"outage {i}") for i in range(10)]
        h.wait_for(lambda: len(h.smtp_sink_messages(sink_dir)) >= 15, "10 more messages at smtp-sink")
        # The kill comes once delivery has recorded the outcomes in the spool (the events and the
        # disposition lines are written before that commit): a message killed before it would be
        # sent again after the restart, with a second Delivery event.
        spool = os.path.join(data, "spool.db")

        def delivered_in_spool():
            import sqlite3
            db = sqlite3.connect(spool, timeout=30)
            try:
                rows = db.execute("SELECT m.message_id FROM message m JOIN message_recipient r "
                                  "ON r.message = m.id WHERE r.state = 2").fetchall()
            finally:
                db.close()
            return set(ids) <= {row[0] for row in rows}

        h.wait_for(delivered_in_spool, "the 10 deliveries committed to the spool")
        h.kill9(p)
        p, ports = serve(cfg, data, [("rcpt.test", postfix_port), ("good.test", sink_port)])
        receiver.start()
        want = {(m, t) for m in ids for t in ("Send", "Delivery")}
        h.wait_for(lambda: want <= {(e["mail"]["messageId"], e["eventType"]) for _, e in receiver.events()},
                 "every event after the outage and the restart", timeout=90)
        time.sleep(1)  # anything sent twice would arrive now
        secret = open(os.path.join(data, "webhook.secret")).read().strip()
        seen_ids = [hd.get("x-magnetic-event-id") for hd, _ in receiver.requests]
        h.check_eq(len(seen_ids), len(set(seen_ids)), "event ids delivered more than once")
        for hd, body in receiver.requests:
            h.check(h.webhook_signature_ok(hd, body, secret), f"signature of event {hd.get('x-magnetic-event-id')}")
        after = [e for _, e in receiver.events()[before:]]
        for m in ids:
            h.check_eq([e["eventType"] for e in after if e["mail"]["messageId"] == m], ["Send", "Delivery"],
                       f"events of {m} after the outage")
        # The file destination and the webhook are delivered to independently: wait (bounded)
        # until the file holds what the webhook got.
        def file_and_hook():
            lines = h.jsonl_records(os.path.join(data, "events", "feedback.jsonl"))
            return (sorted((e["mail"]["messageId"], e["eventType"]) for e in lines),
                    sorted((e["mail"]["messageId"], e["eventType"]) for _, e in receiver.events()))

        h.wait_eq(file_and_hook, "the JSON-lines destination against the webhook", timeout=30)
        print(f"outage: {len(after)} events after kill -9, each once, in order, signed")

        _, out, _ = h.magnetic("events", "tail", "--data", data, "--type", "BOUNCE", check_rc=0)
        tailed = [json.loads(l) for l in out.splitlines() if l.strip()]
        h.check_eq([e["mail"]["messageId"] for e in tailed], [bounced, again], "events tail --type BOUNCE")
        # As SES does, the send to a suppressed address is a Permanent OnAccountSuppressionList
        # bounce (not counted in the bounce rate).
        h.check_eq([(e["bounce"]["bounceType"], e["bounce"]["bounceSubType"]) for e in tailed],
                   [("Permanent", "NoEmail"), ("Permanent", "OnAccountSuppressionList")],
                   "bounce types in events tail")
        h.check_eq(tailed[1]["bounce"]["bouncedRecipients"][0]["emailAddress"], "unknown@rcpt.test",
                   "the suppressed recipient's bounce event")
        h.stop_serve(p, data)
    finally:
        peer.stop()
        receiver.stop()
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    finally:
        h.cleanup()
