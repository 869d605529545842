#!/usr/bin/env python3
"""The API driven by botocore, the library under the AWS CLI: every operation this service
implements, called the way `aws sesv2` calls it, against api_test_server on 127.0.0.1.

  python3 botocore_client_test.py <path to api_test_server>

botocore signs the requests, encodes paths and query strings, serializes blobs and timestamps
and parses the responses with the SES v2 model, so a shape that differs from the model shows up
here as a parse error or a missing member.
"""
import base64
import datetime
import email
import email.policy
import json
import os
import subprocess
import sys
import tempfile
import unittest

# No configuration or credentials of this machine, and no metadata service lookups.
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import botocore.config  # noqa: E402
import botocore.session  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

SERVER = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get("API_TEST_SERVER", "")


class ApiWithBotocore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.messages = os.path.join(cls.tmp.name, "messages.jsonl")
        cls.proc = subprocess.Popen([SERVER, os.path.join(cls.tmp.name, "data"), cls.messages],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        words = cls.proc.stdout.readline().split()
        assert words[0] == "PORT", words
        cls.port, cls.key, cls.secret = int(words[1]), words[3], words[5]
        cls.client = cls.make_client(cls.key, cls.secret)

    @classmethod
    def make_client(cls, key, secret):
        session = botocore.session.Session()
        return session.create_client(
            "sesv2", region_name="eu-west-1", endpoint_url=f"http://127.0.0.1:{cls.port}",
            aws_access_key_id=key, aws_secret_access_key=secret,
            config=botocore.config.Config(retries={"max_attempts": 1}))

    @classmethod
    def tearDownClass(cls):
        cls.proc.stdin.close()
        cls.proc.wait(timeout=30)
        cls.tmp.cleanup()

    def sent(self):
        with open(self.messages, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def error_of(self, call, **kwargs):
        with self.assertRaises(ClientError) as cm:
            call(**kwargs)
        e = cm.exception.response
        return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]

    # Identities.

    def test_identities(self):
        c = self.client
        r = c.create_email_identity(EmailIdentity="ids.example")
        self.assertEqual(r["IdentityType"], "DOMAIN")
        self.assertTrue(r["VerifiedForSendingStatus"])
        self.assertEqual(r["DkimAttributes"]["SigningAttributesOrigin"], "AWS_SES")
        self.assertEqual(r["DkimAttributes"]["CurrentSigningKeyLength"], "RSA_2048_BIT")
        self.assertEqual(len(r["DkimAttributes"]["Tokens"]), 1)
        self.assertIsInstance(r["DkimAttributes"]["LastKeyGenerationTimestamp"], datetime.datetime)

        c.create_email_identity(EmailIdentity="someone@ids.example")
        g = c.get_email_identity(EmailIdentity="someone@ids.example")
        self.assertEqual(g["IdentityType"], "EMAIL_ADDRESS")
        self.assertEqual(g["VerificationStatus"], "SUCCESS")

        c.create_email_identity(EmailIdentity="b\u00fccher.example")
        g = c.get_email_identity(EmailIdentity="b\u00fccher.example")
        self.assertEqual(g["IdentityType"], "DOMAIN")

        names, token = [], None
        while True:
            kwargs = {"PageSize": 1}
            if token:
                kwargs["NextToken"] = token
            page = c.list_email_identities(**kwargs)
            names += [i["IdentityName"] for i in page["EmailIdentities"]]
            token = page.get("NextToken")
            if not token:
                break
        for n in ("ids.example", "someone@ids.example", "xn--bcher-kva.example"):
            self.assertIn(n, names)

        c.delete_email_identity(EmailIdentity="someone@ids.example")
        code, status, _ = self.error_of(c.get_email_identity, EmailIdentity="someone@ids.example")
        self.assertEqual((code, status), ("NotFoundException", 404))

    # Templates.

    def test_templates(self):
        c = self.client
        c.create_email_template(TemplateName="bt-welcome", TemplateContent={
            "Subject": "Hi {{name}}", "Text": "Hello {{name}}", "Html": "<p>{{name}}</p>"})
        g = c.get_email_template(TemplateName="bt-welcome")
        self.assertEqual(g["TemplateContent"]["Html"], "<p>{{name}}</p>")
        c.update_email_template(TemplateName="bt-welcome",
                                TemplateContent={"Subject": "Hey {{name}}", "Text": "T"})
        self.assertEqual(c.get_email_template(TemplateName="bt-welcome")["TemplateContent"],
                         {"Subject": "Hey {{name}}", "Text": "T"})
        listed = c.list_email_templates(PageSize=100)["TemplatesMetadata"]
        self.assertIn("bt-welcome", [t["TemplateName"] for t in listed])
        self.assertIsInstance(listed[0]["CreatedTimestamp"], datetime.datetime)
        rendered = c.test_render_email_template(TemplateName="bt-welcome",
                                                TemplateData='{"name": "Ann"}')
        self.assertIn("Subject: Hey Ann\r\n", rendered["RenderedTemplate"])
        code, status, _ = self.error_of(c.create_email_template, TemplateName="bt-welcome",
                                        TemplateContent={"Text": "x"})
        self.assertEqual((code, status), ("AlreadyExistsException", 400))
        c.delete_email_template(TemplateName="bt-welcome")
        code, status, message = self.error_of(c.get_email_template, TemplateName="bt-welcome")
        self.assertEqual((code, status, message),
                         ("NotFoundException", 404, "Template bt-welcome does not exist."))

    # Sending.

    def test_send_simple_with_attachment(self):
        c = self.client
        payload = bytes(range(256)) * 3
        r = c.send_email(
            FromEmailAddress="Sender <sender@send.example>",
            Destination={"ToAddresses": ["to@example.net"], "BccAddresses": ["bcc@example.net"]},
            Content={"Simple": {
                "Subject": {"Data": "Files \u00e9t\u00e9"},
                "Body": {"Text": {"Data": "text"}, "Html": {"Data": "<p>html</p>"}},
                "Attachments": [{"FileName": "data.bin", "RawContent": payload}],
                "Headers": [{"Name": "X-Test", "Value": "yes"}]}},
            EmailTags=[{"Name": "kind", "Value": "test"}])
        sent = [m for m in self.sent() if m["message_id"] == r["MessageId"]]
        self.assertEqual(len(sent), 1)
        m = sent[0]
        self.assertEqual(m["recipients"], ["to@example.net", "bcc@example.net"])
        self.assertEqual(m["tags"], [["kind", "test"]])
        msg = email.message_from_bytes(m["data"].encode(), policy=email.policy.default)
        self.assertEqual(msg["Subject"], "Files \u00e9t\u00e9")
        self.assertEqual(msg["Message-ID"], f"<{r['MessageId']}@send.example>")
        self.assertIsNone(msg["Bcc"])
        parts = [p for p in msg.walk() if not p.is_multipart()]
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "text/html", "application/octet-stream"])
        self.assertEqual(parts[2].get_payload(decode=True), payload)

    def test_send_raw_and_template(self):
        c = self.client
        raw = (b"From: raw@send.example\r\nTo: a@example.net\r\nSubject: raw\r\n\r\nbody\r\n")
        r = c.send_email(Content={"Raw": {"Data": raw}})
        m = [m for m in self.sent() if m["message_id"] == r["MessageId"]][0]
        self.assertTrue(m["data"].endswith("Subject: raw\r\n\r\nbody\r\n"))
        self.assertEqual(m["recipients"], ["a@example.net"])

        r = c.send_email(FromEmailAddress="t@send.example",
                         Destination={"ToAddresses": ["b@example.net"]},
                         Content={"Template": {
                             "TemplateContent": {"Subject": "S {{v}}", "Text": "T {{v}}"},
                             "TemplateData": '{"v": "1"}'}})
        m = [m for m in self.sent() if m["message_id"] == r["MessageId"]][0]
        self.assertIn("Subject: S 1\r\n", m["data"])

    def test_bulk(self):
        c = self.client
        c.create_email_template(TemplateName="bt-bulk",
                                TemplateContent={"Subject": "Hi {{n}}", "Text": "x"})
        entries = [{"Destination": {"ToAddresses": [f"r{i}@example.net"]},
                    "ReplacementEmailContent": {"ReplacementTemplate": {
                        "ReplacementTemplateData": json.dumps({"n": i})}}} for i in range(2)]
        r = c.send_bulk_email(FromEmailAddress="bulk@send.example",
                              DefaultContent={"Template": {"TemplateName": "bt-bulk",
                                                           "TemplateData": '{"n": 0}'}},
                              BulkEmailEntries=entries)
        self.assertEqual([e["Status"] for e in r["BulkEmailEntryResults"]],
                         ["SUCCESS", "SUCCESS"])
        many = [{"Destination": {"ToAddresses": [f"m{i}@example.net"]}} for i in range(51)]
        code, status, message = self.error_of(
            c.send_bulk_email, FromEmailAddress="bulk@send.example",
            DefaultContent={"Template": {"TemplateName": "bt-bulk", "TemplateData": "{}"}},
            BulkEmailEntries=many)
        self.assertEqual((code, status, message), (
            "BadRequestException", 400, "BulkEmailEntries must have at most 50 items; got 51."))

    def test_send_errors(self):
        c = self.client
        code, status, message = self.error_of(
            c.send_email, FromEmailAddress="x@send.example",
            Destination={"ToAddresses": ["bad address"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}})
        self.assertEqual((code, status), ("BadRequestException", 400))
        self.assertTrue(message.startswith(
            "Destination.ToAddresses[0] is not a valid email address ('bad address')"), message)

    # Account, suppression, configuration sets.

    def test_account(self):
        c = self.client
        a = c.get_account()
        self.assertEqual(a["SendQuota"]["Max24HourSend"], 50000.0)
        self.assertEqual(a["EnforcementStatus"], "HEALTHY")
        self.assertTrue(a["ProductionAccessEnabled"])
        c.put_account_suppression_attributes(SuppressedReasons=["BOUNCE"])
        self.assertEqual(c.get_account()["SuppressionAttributes"]["SuppressedReasons"],
                         ["BOUNCE"])
        c.put_account_suppression_attributes(SuppressedReasons=["BOUNCE", "COMPLAINT"])
        c.put_account_sending_attributes(SendingEnabled=False)
        self.assertFalse(c.get_account()["SendingEnabled"])
        c.put_account_sending_attributes(SendingEnabled=True)

    def test_suppression(self):
        c = self.client
        c.put_suppressed_destination(EmailAddress="gone@example.net", Reason="BOUNCE")
        g = c.get_suppressed_destination(EmailAddress="gone@example.net")["SuppressedDestination"]
        self.assertEqual(g["Reason"], "BOUNCE")
        self.assertIsInstance(g["LastUpdateTime"], datetime.datetime)
        now = datetime.datetime.now(datetime.timezone.utc)
        listed = c.list_suppressed_destinations(
            Reasons=["BOUNCE"], StartDate=now - datetime.timedelta(hours=1),
            EndDate=now + datetime.timedelta(hours=1))["SuppressedDestinationSummaries"]
        self.assertIn("gone@example.net", [s["EmailAddress"] for s in listed])
        listed = c.list_suppressed_destinations(
            StartDate=now + datetime.timedelta(hours=1))["SuppressedDestinationSummaries"]
        self.assertEqual(listed, [])
        c.delete_suppressed_destination(EmailAddress="gone@example.net")
        code, status, _ = self.error_of(c.get_suppressed_destination,
                                        EmailAddress="gone@example.net")
        self.assertEqual((code, status), ("NotFoundException", 404))

    def test_configuration_sets(self):
        c = self.client
        c.create_configuration_set(ConfigurationSetName="bt-cs",
                                   DeliveryOptions={"TlsPolicy": "REQUIRE"},
                                   TrackingOptions={"CustomRedirectDomain": "t.example.com"},
                                   Tags=[{"Key": "k", "Value": "v"}])
        g = c.get_configuration_set(ConfigurationSetName="bt-cs")
        self.assertEqual(g["DeliveryOptions"]["TlsPolicy"], "REQUIRE")
        self.assertTrue(g["SendingOptions"]["SendingEnabled"])
        self.assertEqual(g["Tags"], [{"Key": "k", "Value": "v"}])
        c.put_configuration_set_sending_options(ConfigurationSetName="bt-cs", SendingEnabled=False)
        c.put_configuration_set_reputation_options(ConfigurationSetName="bt-cs",
                                                   ReputationMetricsEnabled=True)
        c.put_configuration_set_suppression_options(ConfigurationSetName="bt-cs",
                                                    SuppressedReasons=["COMPLAINT"])
        c.put_configuration_set_tracking_options(ConfigurationSetName="bt-cs",
                                                 CustomRedirectDomain="u.example.com")
        c.put_configuration_set_delivery_options(ConfigurationSetName="bt-cs",
                                                 TlsPolicy="OPTIONAL", MaxDeliverySeconds=900)
        g = c.get_configuration_set(ConfigurationSetName="bt-cs")
        self.assertFalse(g["SendingOptions"]["SendingEnabled"])
        self.assertEqual(g["DeliveryOptions"], {"TlsPolicy": "OPTIONAL",
                                                "MaxDeliverySeconds": 900})
        self.assertIn("bt-cs", c.list_configuration_sets()["ConfigurationSets"])
        c.delete_configuration_set(ConfigurationSetName="bt-cs")
        code, status, _ = self.error_of(c.get_configuration_set, ConfigurationSetName="bt-cs")
        self.assertEqual((code, status), ("NotFoundException", 404))

    def test_event_destinations(self):
        c = self.client
        c.create_configuration_set(ConfigurationSetName="bt-ed")
        hook = {"Enabled": True, "MatchingEventTypes": ["BOUNCE", "COMPLAINT"],
                "SnsDestination": {"TopicArn": "https://hooks.example.com/ses?k=1"}}
        c.create_configuration_set_event_destination(
            ConfigurationSetName="bt-ed", EventDestinationName="hook", EventDestination=hook)
        to_file = {"Enabled": False, "MatchingEventTypes": ["SEND"],
                   "KinesisFirehoseDestination": {"IamRoleArn": "role", "DeliveryStreamArn": "file:bt"}}
        c.create_configuration_set_event_destination(
            ConfigurationSetName="bt-ed", EventDestinationName="file", EventDestination=to_file)
        got = c.get_configuration_set_event_destinations(ConfigurationSetName="bt-ed")
        self.assertEqual(got["EventDestinations"],
                         [{"Name": "file", **to_file}, {"Name": "hook", **hook}])
        code, status, _ = self.error_of(
            c.create_configuration_set_event_destination, ConfigurationSetName="bt-ed",
            EventDestinationName="hook", EventDestination=hook)
        self.assertEqual((code, status), ("AlreadyExistsException", 400))
        code, status, message = self.error_of(
            c.create_configuration_set_event_destination, ConfigurationSetName="bt-ed",
            EventDestinationName="sns", EventDestination={
                "MatchingEventTypes": ["BOUNCE"],
                "SnsDestination": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t"}})
        self.assertEqual((code, status), ("BadRequestException", 400))
        self.assertIn("must be an http:// or https:// URL", message)
        c.update_configuration_set_event_destination(
            ConfigurationSetName="bt-ed", EventDestinationName="hook",
            EventDestination={**hook, "Enabled": False})
        got = c.get_configuration_set_event_destinations(ConfigurationSetName="bt-ed")
        self.assertFalse(got["EventDestinations"][1]["Enabled"])
        c.delete_configuration_set_event_destination(ConfigurationSetName="bt-ed",
                                                     EventDestinationName="hook")
        code, status, _ = self.error_of(
            c.delete_configuration_set_event_destination, ConfigurationSetName="bt-ed",
            EventDestinationName="hook")
        self.assertEqual((code, status), ("NotFoundException", 404))
        # Resuming a set's sending is a fresh start of its reputation.
        c.put_configuration_set_sending_options(ConfigurationSetName="bt-ed", SendingEnabled=True)
        g = c.get_configuration_set(ConfigurationSetName="bt-ed")
        self.assertIn("LastFreshStart", g["ReputationOptions"])
        c.delete_configuration_set(ConfigurationSetName="bt-ed")
        code, status, _ = self.error_of(c.get_configuration_set_event_destinations,
                                        ConfigurationSetName="bt-ed")
        self.assertEqual((code, status), ("NotFoundException", 404))

    # Signatures.

    def test_wrong_secret_and_unknown_key(self):
        code, status, _ = self.error_of(self.make_client(self.key, "x" * 40).get_account)
        self.assertEqual((code, status), ("SignatureDoesNotMatch", 403))
        code, status, _ = self.error_of(
            self.make_client("AKIAUNKNOWN000000000", self.secret).get_account)
        self.assertEqual((code, status), ("UnrecognizedClientException", 403))


if __name__ == "__main__":
    if not SERVER:
        sys.exit("usage: botocore_client_test.py <api_test_server>")
    unittest.main()
