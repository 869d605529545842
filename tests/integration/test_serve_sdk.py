"""`magnetic serve` through the AWS SDK for JavaScript (@aws-sdk/client-sesv2).

tests/node/ses_sdk_flow.js makes the calls (a template, simple, templated and bulk sends, the
account, and three refusals) and prints what the SDK returned; this script starts the service and
a sink, hands the script the endpoint and keys, and checks the summary exactly: the SDK's own
error classes for a missing template (NotFoundException) and a bulk send over 50 entries
(BadRequestException), the error name for a wrong secret, and every delivered message.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

FROM = "SDK <sdk@news.example>"
BULK = 10


def main():
    node_dir = os.path.join(h.SOURCE, "tests", "node")
    if not os.path.exists(os.path.join(node_dir, "node_modules", "@aws-sdk", "client-sesv2", "package.json")):
        print("SKIP: @aws-sdk/client-sesv2 is not installed: run scripts/install-deps.sh (npm install in tests/node)")
        print("0 passed, 0 failed, 1 skipped")
        return
    node = shutil.which("node")
    if node is None:
        print("SKIP: node not found on PATH")
        print("0 passed, 0 failed, 1 skipped")
        return
    h.skip_without_serve("the JavaScript SDK against magnetic serve")
    work = h.tempdir()
    with h.test_run():
        dump = os.path.join(work, "dump")
        os.makedirs(dump)
        _, sink_port = h.start_smtp_sink(dump)
        data = os.path.join(work, "data")
        key = h.keys_create(data, "sdk")
        serve, api_port, _ = h.start_serve(data, routes=[("a.example", sink_port)])
        api = h.SesClient(api_port, key["AccessKeyId"], key["SecretAccessKey"])
        txt = h.byodkim_identity(api, "news.example", "sdk1", work)

        # The SDK reads config files for some settings even with explicit credentials: give it
        # empty ones, and no instance metadata.
        cfg = os.path.join(work, "aws-config")
        open(cfg, "w").close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"HOME": work, "AWS_CONFIG_FILE": cfg, "AWS_SHARED_CREDENTIALS_FILE": cfg,
                    "AWS_EC2_METADATA_DISABLED": "true", "NODE_NO_WARNINGS": "1",
                    "MAGNETIC_API_URL": f"http://127.0.0.1:{api_port}",
                    "MAGNETIC_ACCESS_KEY_ID": key["AccessKeyId"],
                    "MAGNETIC_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                    "MAGNETIC_FROM": FROM, "MAGNETIC_RCPT_DOMAIN": "a.example"})
        p = subprocess.run([node, os.path.join(node_dir, "ses_sdk_flow.js")], capture_output=True, text=True,
                           env=env, cwd=node_dir, timeout=300)
        h.check(p.returncode == 0, f"ses_sdk_flow.js exited {p.returncode}:\n{p.stderr}\n{p.stdout}")
        try:
            out = json.loads(p.stdout)
        except ValueError:
            h.fail(f"ses_sdk_flow.js printed no JSON: {p.stdout!r}\n{p.stderr}")
        passed = 0

        # What the SDK got back from the calls that succeed.
        ids = {"simple@a.example": out["simple"], "templated@a.example": out["templated"]}
        h.check_eq(len(out["bulk"]), BULK, "bulk entry results")
        for i, r in enumerate(out["bulk"]):
            h.check_eq(r["Status"], "SUCCESS", f"bulk entry {i} status")
            ids[f"bulk{i}@a.example"] = r["MessageId"]
        h.check(all(isinstance(v, str) and v for v in ids.values()), f"every MessageId is a string: {ids}")
        h.check_eq(len(set(ids.values())), len(ids), "distinct MessageIds")
        h.check_eq(out["account"], {"SendQuota": {"Max24HourSend": 50000, "MaxSendRate": 1000,
                                                  "SentLast24Hours": 2 + BULK}, "SendingEnabled": True},
                   "GetAccount through the SDK")
        passed += 1

        # The refusals, as the SDK reports them.
        bad = out["badSignature"]
        h.check_eq((bad["resolved"], bad["name"], bad["status"], bad["fault"], bad["serviceException"]),
                   (False, h.BAD_SIGNATURE, 403, "client", True), f"wrong secret: {bad}")
        missing = out["missingTemplate"]
        h.check_eq((missing["resolved"], missing["name"], missing["status"], missing["instanceOf"]),
                   (False, "NotFoundException", 404, True), f"missing template: {missing}")
        h.check("no-such-template" in missing["message"], f"the NotFoundException names the template: {missing}")
        over = out["bulk51"]
        h.check_eq((over["resolved"], over["name"], over["status"], over["instanceOf"]),
                   (False, "BadRequestException", 400, True), f"51 bulk entries: {over}")
        h.check_eq(out["sentAfterRefusals"], 2 + BULK, "SentLast24Hours after the refusals")
        passed += 1

        # Delivered: the accepted messages, and nothing of the refused calls.
        want = sorted(ids)
        h.wait_count(lambda: h.smtp_sink_count(dump), len(want), 180, "messages at smtp-sink")
        messages = h.smtp_sink_messages(dump)
        h.check_eq(sorted(r for _, rcpts, _ in messages for r in rcpts), want, "recipients delivered")
        for _, rcpts, raw in messages:
            rcpt = rcpts[0]
            h.check(h.dkim_verify(raw, txt), f"dkimpy does not verify the message to {rcpt}")
            msg = h.parse(raw)
            h.check_eq(str(msg["From"]), FROM, f"From of the message to {rcpt}")
            h.check_eq([a.addr_spec for a in msg["To"].addresses], [rcpt], "To")
            h.check_eq(msg["Message-ID"], f"<{ids[rcpt]}@news.example>", f"Message-ID of the message to {rcpt}")
            text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
            html = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
            if rcpt == "simple@a.example":
                want_parts = ("SDK simple", "Plain body\n", "<p>Html body</p>")
            else:
                name = "Tess" if rcpt == "templated@a.example" else f"Bulk {int(rcpt[4:].split('@')[0])}"
                want_parts = (f"SDK hello {name}", f"Hi {name},\nfrom the SDK.\n", f"<p>Hi <b>{name}</b></p>")
            h.check_eq((str(msg["Subject"]), text, html), want_parts, f"Subject, text and html to {rcpt}")
        passed += 1

        h.stop_serve(serve, data)
        print(f"{len(messages)} messages sent through the SDK, delivered and verified by dkimpy")
    print(f"{passed} passed, 0 failed")


main()
