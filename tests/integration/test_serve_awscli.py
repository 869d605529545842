"""`magnetic serve` driven by the AWS CLI (Debian's awscli, /usr/bin/aws), delivering to smtp-sink.

The CLI signs and shapes every request itself, so this is the API as an SES user meets it: a domain
identity with a key of our own (BYODKIM), templates, simple, raw (with an attachment), templated
and bulk sends, the sending quota, the suppression list, configuration sets with their event
destinations, and paging. Every delivered message is then parsed with Python's email package and
verified with dkimpy against the public half of the key we made. A request signed with a wrong
secret must fail and send nothing.
"""
import base64
import email.message
import email.policy
import email.utils
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

DOMAIN = "news.example"
SELECTOR = "sel1"
FROM = "News <news@news.example>"
# The CLI's exit code for an error answered by the service (252: bad parameters, 255: other).
CLI_SERVICE_ERROR = 254

TEMPLATE = {"Subject": "Welcome {{name}}", "Text": "Hello {{name}},\nyour plan is {{plan}}.\n",
            "Html": "<p>Hello <b>{{name}}</b>, plan {{plan}}</p>"}
ATTACHMENT = bytes(range(256)) * 12 + b"\r\n.\r\nend\n"  # every byte value, a lone dot line, no EOL
BULK = 50


class Aws:
    """The AWS CLI against the service, with keys from the environment and nothing else read: no
    config or credentials file, no instance metadata, no pager, one attempt per call."""

    def __init__(self, work, api_port, key_id, secret):
        self.url = f"http://127.0.0.1:{api_port}"
        cfg, creds = os.path.join(work, "aws-config"), os.path.join(work, "aws-credentials")
        for path in (cfg, creds):
            open(path, "w").close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"HOME": work, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
                    "AWS_DEFAULT_REGION": h.REGION, "AWS_CONFIG_FILE": cfg,
                    "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_MAX_ATTEMPTS": "1", "AWS_PAGER": ""})
        self.env = env

    def run(self, *args, secret=None):
        env = dict(self.env)
        if secret is not None:
            env["AWS_SECRET_ACCESS_KEY"] = secret
        p = subprocess.run([h.AWS_CLI, "--endpoint-url", self.url, "--no-cli-pager", "--output", "json",
                            "sesv2", *args], capture_output=True, text=True, env=env, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args):
        rc, out, err = self.run(*args)
        h.check(rc == 0, f"aws sesv2 {' '.join(args)[:300]} exited {rc}:\n{err}\n{out}")
        try:
            return json.loads(out) if out.strip() else {}
        except ValueError:
            h.fail(f"aws sesv2 {args[0]} printed no JSON: {out!r}")

    def error(self, code, operation, *args, secret=None):
        """The call must fail with this SES error code, as the CLI reports one from the service."""
        rc, out, err = self.run(*args, secret=secret)
        h.check_eq(rc, CLI_SERVICE_ERROR, f"exit code of aws sesv2 {args[0]} ({err.strip()})")
        want = f"An error occurred ({code}) when calling the {operation} operation"
        h.check(want in err, f"aws sesv2 {args[0]}: stderr lacks {want!r}: {err!r}")
        return err


def write_json(work, name, doc):
    path = os.path.join(work, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    return "file://" + path


def raw_message():
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = FROM
    msg["To"] = "bob@a.example"
    msg["Subject"] = "Report for Bob"
    msg["Date"] = email.utils.formatdate(usegmt=True)
    msg["Message-ID"] = "<raw-1@news.example>"
    msg.set_content("See the attachment.\n")
    msg.add_attachment(ATTACHMENT, maintype="application", subtype="octet-stream", filename="report.bin")
    return msg.as_bytes()


def dkim_tags(raw):
    head = raw.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n")
    field = b""
    for line in head.split(b"\n"):
        if field and line[:1] in (b" ", b"\t"):
            field += line
        elif field:
            break
        elif line.lower().startswith(b"dkim-signature:"):
            field = line.split(b":", 1)[1]
    tags = {}
    for part in b"".join(field.split()).split(b";"):
        if b"=" in part:
            k, v = part.split(b"=", 1)
            tags[k.decode()] = v.decode()
    return tags


def check_template_listing(aws):
    # The CLI has no paginator for this SES v2 call: --page-size is the request's PageSize and
    # the NextToken of each page is passed back by hand. Three pages of one, the last without a
    # NextToken.
    names, token, pages = [], None, 0
    while True:
        args = ["list-email-templates", "--page-size", "1"]
        if token:
            args += ["--next-token", token]
        doc = aws.ok(*args)
        pages += 1
        h.check_eq(len(doc["TemplatesMetadata"]), 1, f"templates on page {pages}")
        names.append(doc["TemplatesMetadata"][0]["TemplateName"])
        token = doc.get("NextToken")
        if not token or pages == 5:
            break
    h.check_eq(pages, 3, "pages of one template")
    h.check_eq(sorted(names), ["t-b", "t-c", "welcome"], "templates paged by hand")


def main():
    if not os.path.exists(h.AWS_CLI):
        print(f"SKIP: {h.AWS_CLI} is missing (Debian package awscli; scripts/install-deps.sh installs it)")
        print("0 passed, 0 failed, 1 skipped")
        return
    h.skip_without_serve("AWS CLI against magnetic serve")
    work = h.tempdir()
    with h.test_run():
        dump = os.path.join(work, "dump")
        os.makedirs(dump)
        _, sink_port = h.start_smtp_sink(dump)
        data = os.path.join(work, "data")
        key = h.keys_create(data, "cli")
        serve, api_port, _ = h.start_serve(data, routes=[("a.example", sink_port), ("b.example", sink_port)])
        aws = Aws(work, api_port, key["AccessKeyId"], key["SecretAccessKey"])
        passed = 0

        # A domain identity signed with our own key.
        _, private_b64, public_b64 = h.rsa_key(work)
        txt = {f"{SELECTOR}._domainkey.{DOMAIN}": f"v=DKIM1; k=rsa; p={public_b64}"}
        doc = aws.ok("create-email-identity", "--email-identity", DOMAIN, "--dkim-signing-attributes",
                     json.dumps({"DomainSigningSelector": SELECTOR, "DomainSigningPrivateKey": private_b64}))
        h.check_eq(doc.get("IdentityType"), "DOMAIN", "create-email-identity IdentityType")
        h.check_eq(doc["DkimAttributes"]["SigningAttributesOrigin"], "EXTERNAL", "create-email-identity origin")
        doc = aws.ok("get-email-identity", "--email-identity", DOMAIN)
        h.check_eq(doc["IdentityType"], "DOMAIN", "get-email-identity IdentityType")
        h.check_eq(doc["DkimAttributes"]["Tokens"], [SELECTOR], "get-email-identity DKIM tokens")
        h.check_eq(doc["DkimAttributes"]["SigningAttributesOrigin"], "EXTERNAL", "get-email-identity origin")
        h.check_eq(doc["DkimAttributes"]["SigningEnabled"], True, "get-email-identity SigningEnabled")
        passed += 1

        for name in ("welcome", "t-b", "t-c"):
            aws.ok("create-email-template", "--template-name", name, "--template-content", json.dumps(TEMPLATE))
        doc = aws.ok("get-email-template", "--template-name", "welcome")
        h.check_eq(doc["TemplateContent"], TEMPLATE, "get-email-template content")
        aws.error("AlreadyExistsException", "CreateEmailTemplate", "create-email-template", "--template-name",
                  "welcome", "--template-content", json.dumps(TEMPLATE))
        check_template_listing(aws)
        passed += 1

        # Sends: simple, raw with an attachment, templated, bulk.
        ids = {}
        simple = {"Simple": {"Subject": {"Data": "Grüße, Alice", "Charset": "UTF-8"},
                             "Body": {"Text": {"Data": "Hello Alice\nLine two\n"},
                                      "Html": {"Data": "<p>Hello <i>Alice</i></p>"}}}}
        doc = aws.ok("send-email", "--from-email-address", FROM, "--destination",
                     json.dumps({"ToAddresses": ["alice@a.example"]}), "--content", json.dumps(simple))
        ids["alice@a.example"] = doc["MessageId"]
        raw = raw_message()
        doc = aws.ok("send-email", "--content",
                     write_json(work, "raw.json", {"Raw": {"Data": base64.b64encode(raw).decode()}}))
        ids["bob@a.example"] = doc["MessageId"]
        templated = {"Template": {"TemplateName": "welcome",
                                  "TemplateData": json.dumps({"name": "Carol", "plan": "basic"})}}
        doc = aws.ok("send-email", "--from-email-address", FROM, "--destination",
                     json.dumps({"ToAddresses": ["carol@a.example"]}), "--content", json.dumps(templated))
        ids["carol@a.example"] = doc["MessageId"]
        entries = [{"Destination": {"ToAddresses": [f"bulk{i}@b.example"]},
                    "ReplacementEmailContent": {"ReplacementTemplate": {
                        "ReplacementTemplateData": json.dumps({"name": f"Bulk {i}", "plan": f"plan-{i}"})}}}
                   for i in range(BULK)]
        default = {"Template": {"TemplateName": "welcome",
                                "TemplateData": json.dumps({"name": "friend", "plan": "none"})}}
        doc = aws.ok("send-bulk-email", "--from-email-address", FROM, "--default-content", json.dumps(default),
                     "--bulk-email-entries", write_json(work, "bulk.json", entries))
        results = doc["BulkEmailEntryResults"]
        h.check_eq(len(results), BULK, "bulk entry results")
        for i, r in enumerate(results):
            h.check_eq(r["Status"], "SUCCESS", f"bulk entry {i} status")
            ids[f"bulk{i}@b.example"] = r["MessageId"]
        h.check(all(isinstance(v, str) and v for v in ids.values()), f"every MessageId is a string: {ids}")
        h.check_eq(len(set(ids.values())), len(ids), "distinct MessageIds")
        sent = 3 + BULK

        doc = aws.ok("get-account")
        quota = doc["SendQuota"]
        # The store's documented defaults (src/store/store.h, Account).
        h.check_eq(quota["Max24HourSend"], 50000.0, "SendQuota.Max24HourSend")
        h.check_eq(quota["MaxSendRate"], 1000.0, "SendQuota.MaxSendRate")
        h.check_eq(quota["SentLast24Hours"], float(sent), "SendQuota.SentLast24Hours after the sends")
        h.check_eq(doc["SendingEnabled"], True, "SendingEnabled")
        passed += 1

        # A wrong secret: refused, nothing sent, nothing counted.
        wrong = key["SecretAccessKey"][:-1] + ("A" if key["SecretAccessKey"][-1] != "A" else "B")
        aws.error(h.BAD_SIGNATURE, "GetAccount", "get-account", secret=wrong)
        aws.error(h.BAD_SIGNATURE, "SendEmail", "send-email", "--from-email-address", FROM, "--destination",
                  json.dumps({"ToAddresses": ["eve@a.example"]}), "--content", json.dumps(simple), secret=wrong)
        h.check_eq(aws.ok("get-account")["SendQuota"]["SentLast24Hours"], float(sent),
                   "SentLast24Hours after the refused send")
        passed += 1

        # Bcc: delivered, and never written into the message (the copies go to two domains, so
        # each is its own SMTP transaction).
        doc = aws.ok("send-email", "--from-email-address", FROM, "--destination",
                     json.dumps({"ToAddresses": ["erin@a.example"], "BccAddresses": ["hidden@b.example"]}),
                     "--content", json.dumps({"Simple": {"Subject": {"Data": "For Erin"},
                                                         "Body": {"Text": {"Data": "Erin, and a blind copy\n"}}}}))
        ids["erin@a.example"] = ids["hidden@b.example"] = doc["MessageId"]
        sent += 2
        passed += 1

        # The suppression list; a send to a suppressed address is accepted and not delivered.
        aws.ok("put-suppressed-destination", "--email-address", "supp@a.example", "--reason", "BOUNCE")
        doc = aws.ok("get-suppressed-destination", "--email-address", "supp@a.example")
        h.check_eq(doc["SuppressedDestination"]["EmailAddress"], "supp@a.example", "suppressed EmailAddress")
        h.check_eq(doc["SuppressedDestination"]["Reason"], "BOUNCE", "suppressed Reason")
        h.check("LastUpdateTime" in doc["SuppressedDestination"], f"suppressed LastUpdateTime: {doc}")
        doc = aws.ok("list-suppressed-destinations")
        h.check_eq([(s["EmailAddress"], s["Reason"]) for s in doc["SuppressedDestinationSummaries"]],
                   [("supp@a.example", "BOUNCE")], "list-suppressed-destinations")
        doc = aws.ok("send-email", "--from-email-address", FROM, "--destination",
                     json.dumps({"ToAddresses": ["supp@a.example"]}), "--content", json.dumps(simple))
        h.check(isinstance(doc.get("MessageId"), str) and doc["MessageId"], f"send to a suppressed address: {doc}")
        # SES counts a message to a suppressed address against the quota: it was accepted.
        sent += 1
        aws.ok("delete-suppressed-destination", "--email-address", "supp@a.example")
        aws.error("NotFoundException", "GetSuppressedDestination", "get-suppressed-destination",
                  "--email-address", "supp@a.example")
        doc = aws.ok("list-suppressed-destinations")
        h.check_eq(doc.get("SuppressedDestinationSummaries", []), [], "suppression list after delete")
        passed += 1

        # Configuration sets.
        aws.ok("create-configuration-set", "--configuration-set-name", "cs1")
        doc = aws.ok("get-configuration-set", "--configuration-set-name", "cs1")
        h.check_eq(doc["ConfigurationSetName"], "cs1", "get-configuration-set name")
        doc = aws.ok("list-configuration-sets")
        h.check_eq(doc["ConfigurationSets"], ["cs1"], "list-configuration-sets")

        # Event destinations of cs1: an SNS topic given as a URL is a webhook, a Firehose stream
        # "file:NAME" a JSON-lines file; both are gone again before anything is sent with cs1.
        cs = ("--configuration-set-name", "cs1")
        hook = {"Enabled": True, "MatchingEventTypes": ["BOUNCE"],
                "SnsDestination": {"TopicArn": "http://127.0.0.1:9/hook"}}
        aws.ok("create-configuration-set-event-destination", *cs, "--event-destination-name", "hook",
               "--event-destination", json.dumps(hook))
        doc = aws.ok("get-configuration-set-event-destinations", *cs)
        h.check_eq(doc, {"EventDestinations": [{"Name": "hook", **hook}]},
                   "get-configuration-set-event-destinations after create")
        aws.error("AlreadyExistsException", "CreateConfigurationSetEventDestination",
                  "create-configuration-set-event-destination", *cs, "--event-destination-name", "hook",
                  "--event-destination", json.dumps(hook))
        err = aws.error("BadRequestException", "CreateConfigurationSetEventDestination",
                        "create-configuration-set-event-destination", *cs, "--event-destination-name", "cw",
                        "--event-destination", json.dumps({"MatchingEventTypes": ["SEND"], "CloudWatchDestination": {
                            "DimensionConfigurations": []}}))
        h.check("CloudWatchDestination is not supported by this service" in err, f"CloudWatch refusal: {err!r}")
        to_file = {"Enabled": False, "MatchingEventTypes": ["DELIVERY", "COMPLAINT"],
                   "KinesisFirehoseDestination": {"IamRoleArn": "arn:aws:iam::123456789012:role/ses",
                                                  "DeliveryStreamArn": "file:cs1-events"}}
        aws.ok("update-configuration-set-event-destination", *cs, "--event-destination-name", "hook",
               "--event-destination", json.dumps(to_file))
        doc = aws.ok("get-configuration-set-event-destinations", *cs)
        h.check_eq(doc, {"EventDestinations": [{"Name": "hook", **to_file}]},
                   "get-configuration-set-event-destinations after update")
        aws.ok("delete-configuration-set-event-destination", *cs, "--event-destination-name", "hook")
        aws.error("NotFoundException", "DeleteConfigurationSetEventDestination",
                  "delete-configuration-set-event-destination", *cs, "--event-destination-name", "hook")
        doc = aws.ok("get-configuration-set-event-destinations", *cs)
        h.check_eq(doc.get("EventDestinations"), [], "event destinations after delete")
        aws.error("NotFoundException", "GetConfigurationSetEventDestinations",
                  "get-configuration-set-event-destinations", "--configuration-set-name", "no-such-set")
        passed += 1

        doc = aws.ok("send-email", "--from-email-address", FROM, "--configuration-set-name", "cs1", "--destination",
                     json.dumps({"ToAddresses": ["dave@a.example"]}), "--content", json.dumps(templated))
        ids["dave@a.example"] = doc["MessageId"]
        sent += 1
        aws.error("NotFoundException", "SendEmail", "send-email", "--from-email-address", FROM,
                  "--configuration-set-name", "no-such-set", "--destination",
                  json.dumps({"ToAddresses": ["frank@a.example"]}), "--content", json.dumps(simple))
        h.check_eq(aws.ok("get-account")["SendQuota"]["SentLast24Hours"], float(sent), "SentLast24Hours at the end")
        passed += 1

        # Delivery: everything accepted and not suppressed, exactly once.
        want = sorted(ids)
        h.wait_count(lambda: h.smtp_sink_count(dump), len(want), 180, "messages at smtp-sink")
        messages = h.smtp_sink_messages(dump)
        h.check_eq(sorted(r for _, rcpts, _ in messages for r in rcpts), want, "recipients delivered")
        for _, rcpts, raw in messages:
            rcpt = rcpts[0]
            h.check_eq(len(rcpts), 1, f"envelope recipients of the message to {rcpt}")
            head = raw.split(b"\n\n", 1)[0].lower()
            h.check(b"\nx-ses-configuration-set:" not in b"\n" + head, f"X-SES-CONFIGURATION-SET in message to {rcpt}")
            h.check(b"\nbcc:" not in b"\n" + head, f"a Bcc field in the message to {rcpt}")
            tags = dkim_tags(raw)
            h.check_eq((tags.get("d"), tags.get("s"), tags.get("a")), (DOMAIN, SELECTOR, "rsa-sha256"),
                       f"DKIM d=, s=, a= of the message to {rcpt}")
            h.check(h.dkim_verify(raw, txt), f"dkimpy does not verify the message to {rcpt}")
            msg = h.parse(raw)
            h.check_eq(str(msg["From"]), FROM, f"From of the message to {rcpt}")
            to = "erin@a.example" if rcpt == "hidden@b.example" else rcpt
            h.check_eq([a.addr_spec for a in msg["To"].addresses], [to], f"To of the message to {rcpt}")
            # The service writes <MessageId@From domain>; a raw message keeps its own.
            want_id = "<raw-1@news.example>" if rcpt == "bob@a.example" else f"<{ids[rcpt]}@{DOMAIN}>"
            h.check_eq(msg["Message-ID"], want_id, f"Message-ID of the message to {rcpt}")
            text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
            if rcpt == "alice@a.example":
                h.check_eq(str(msg["Subject"]), "Grüße, Alice", "Subject of the simple send")
                h.check_eq(text, "Hello Alice\nLine two\n", "text of the simple send")
                h.check_eq(msg.get_body(("html",)).get_content().replace("\r\n", "\n"), "<p>Hello <i>Alice</i></p>",
                           "html of the simple send")
            elif to == "erin@a.example":
                h.check_eq(str(msg["Subject"]), "For Erin", f"Subject of the message to {rcpt}")
                h.check_eq(text, "Erin, and a blind copy\n", f"text of the message to {rcpt}")
            elif rcpt == "bob@a.example":
                h.check_eq(str(msg["Subject"]), "Report for Bob", "Subject of the raw send")
                h.check_eq(text, "See the attachment.\n", "text of the raw send")
                parts = list(msg.iter_attachments())
                h.check_eq([p.get_filename() for p in parts], ["report.bin"], "attachments of the raw send")
                h.check_eq(parts[0].get_content(), ATTACHMENT, "attachment bytes")
            else:
                if rcpt.startswith("bulk"):
                    i = int(rcpt[len("bulk"):].split("@")[0])
                    name, plan = f"Bulk {i}", f"plan-{i}"
                else:  # carol, dave: the templated send
                    name, plan = "Carol", "basic"
                h.check_eq(str(msg["Subject"]), f"Welcome {name}", f"Subject of the message to {rcpt}")
                h.check_eq(text, f"Hello {name},\nyour plan is {plan}.\n", f"text of the message to {rcpt}")
                h.check_eq(msg.get_body(("html",)).get_content().replace("\r\n", "\n"),
                           f"<p>Hello <b>{name}</b>, plan {plan}</p>", f"html of the message to {rcpt}")
        passed += 1

        # The suppressed recipient has its disposition, and no other outcome. smtp-sink has a
        # message before its reply and the service logs the outcome after it: the last lines may
        # come after the last message, so they are waited for.
        def outcomes_now():
            outcomes = {}
            for rec in h.jsonl_records(os.path.join(data, "dispositions.jsonl")):
                outcomes.setdefault(rec["recipient"], []).append(rec["status"])
            return outcomes

        def logged(o):
            return "supp@a.example" in o and all("delivered" in o.get(r, []) for r in want)

        outcomes = h.wait_for(lambda: (lambda o: o if logged(o) else None)(outcomes_now()),
                              "the disposition lines of every recipient")
        h.check_eq(outcomes.get("supp@a.example"), ["suppressed"], "dispositions of the suppressed recipient")
        h.check_eq(sorted(r for r, st in outcomes.items() if st == ["delivered"]), want, "recipients logged delivered")
        passed += 1

        aws.ok("delete-configuration-set", "--configuration-set-name", "cs1")
        aws.error("NotFoundException", "GetConfigurationSet", "get-configuration-set", "--configuration-set-name", "cs1")
        h.stop_serve(serve, data)
        passed += 1
        print(f"{len(messages)} messages delivered and verified by dkimpy; SentLast24Hours {sent}")
    print(f"{passed} passed, 0 failed")


main()
