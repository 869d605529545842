"""2,000 personalized, DKIM-signed messages through Postfix's smtp-sink.

Every captured message is parsed with Python's email package and its signature verified with
dkimpy; the content must be exactly the template rendered for that recipient. A second, smaller
campaign does the same with rsa-sha256.
"""
import csv
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

SUBJECT = "Hello {{first_name}} from {{address.city}}"
TEXT = "Dear {{first_name}},\nyour code is {{code}}.\n.\n..leading dots stay\nBye\n"
HTML = "<p>Dear {{first_name}} &amp; co</p><p>code: <b>{{code}}</b></p>"


def html_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
             .replace('"', "&quot;").replace("'", "&#x27;").replace("`", "&#x60;").replace("=", "&#x3D;"))


def run(work, algorithm, count, domains):
    dump = os.path.join(work, f"dump-{algorithm}")
    os.makedirs(dump)
    sink, port = h.start_smtp_sink(dump)
    key, txt = h.keygen(work, algorithm)
    tpl = os.path.join(work, "t.json")
    h.write_template(tpl, SUBJECT, TEXT, HTML)
    rows = {}
    lst = os.path.join(work, f"r-{algorithm}.csv")
    with open(lst, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["email", "first_name", "address.city", "code"])
        for i in range(count):
            addr = f"user{i}@d{i % domains}.example"
            name = ["Zoë", "O'Brien", "Ann <admin>", "Bob"][i % 4] + str(i)
            row = [addr, name, ["Zürich", "Oslo", "São Paulo"][i % 3], f"C{i:05d}=x"]
            w.writerow(row)
            rows[addr] = row
    report = os.path.join(work, f"report-{algorithm}.json")
    routes = []
    for d in range(domains):
        routes += ["--route", f"d{d}.example=127.0.0.1:{port}"]
    h.magnetic("send", "--template", tpl, "--recipients", lst, "--from", "News <news@example.com>",
               *routes, "--dkim-domain", "example.com", "--dkim-selector", "s1", "--dkim-key", key,
               "--unsubscribe-url", "https://example.com/u/{token}", "--spool", os.path.join(work, f"{algorithm}.db"),
               "--report", report, "--no-progress", "--max-age", "60s", check_rc=0)
    import json
    rep = json.load(open(report))
    h.check_eq(rep["delivered"], count, "delivered in report")
    h.check_eq(rep["recipients"], count, "recipients in report")
    h.check_eq(rep["bounced"], 0, "bounced in report")

    # smtp-sink writes one file per transaction once the session is done; wait for all of them.
    import time
    files = []
    for _ in range(200):
        files = [os.path.join(r, n) for r, _, ns in os.walk(dump) for n in ns]
        if len(files) >= count:
            break
        time.sleep(0.05)
    h.check_eq(len(files), count, "messages captured by smtp-sink")

    seen = set()
    verified = 0
    for path in files:
        raw = open(path, "rb").read()
        # smtp-sink puts its own X- fields and a Received line on top; the envelope is in them.
        m = re.search(rb"^X-Mail-Args: <([^>]*)>", raw, re.M)
        env_from = m.group(1).decode() if m else ""
        rcpt = re.search(rb"^X-Rcpt-Args: <([^>]*)>", raw, re.M).group(1).decode()
        h.check(re.fullmatch(r"bounce\+[0-9a-z]{16}@example\.com", env_from) is not None, f"VERP sender {env_from!r}")
        h.check(rcpt in rows and rcpt not in seen, f"recipient {rcpt} unknown or repeated")
        # What we sent starts at our first field; smtp-sink's own lines (LF-terminated) precede it.
        start = raw.find(b"DKIM-Signature:")
        h.check(start > 0, f"no DKIM-Signature as the first field of the message to {rcpt}")
        raw = raw[start:]
        seen.add(rcpt)
        h.check(h.dkim_verify(raw, txt), f"dkimpy does not verify the message to {rcpt}")
        verified += 1
        msg = h.parse(raw)
        h.check_eq(len(msg.defects), 0, f"defects in message to {rcpt}")
        _, name, city, code = rows[rcpt]
        h.check_eq(str(msg["Subject"]), f"Hello {name} from {city}", "Subject")
        h.check_eq(msg["To"].addresses[0].addr_spec, rcpt, "To")
        h.check_eq(str(msg["From"]), "News <news@example.com>", "From")
        token = env_from[len("bounce+"):].split("@")[0]
        h.check_eq(str(msg["List-Unsubscribe"]),
                   f"<https://example.com/u/{token}>, <mailto:unsubscribe+{token}@example.com?subject=unsubscribe>",
                   "List-Unsubscribe")
        h.check_eq(str(msg["List-Unsubscribe-Post"]), "List-Unsubscribe=One-Click", "List-Unsubscribe-Post")
        h.check(msg.get_content_type() == "multipart/alternative", "multipart/alternative")
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        want_text = TEXT.replace("{{first_name}}", name).replace("{{code}}", code)
        want_html = HTML.replace("{{first_name}}", html_escape(name)).replace("{{code}}", html_escape(code))
        h.check_eq(text.replace("\r\n", "\n"), want_text, "text part")
        h.check_eq(html.replace("\r\n", "\n"), want_html, "html part")
        # smtp-sink writes its dumps with LF line ends; CRLF on the wire is checked against our
        # own sink, which stores the bytes as received (test_real_world_templates).
        for line in raw.split(b"\n"):
            h.check(len(line.rstrip(b"\r")) <= 998, f"line over 998 octets: {line[:100]!r}... ({len(line)})")
    h.check_eq(verified, count, "verified by dkimpy")
    sink.terminate()
    print(f"{algorithm}: {count} messages captured by smtp-sink, {verified} verified by dkimpy, "
          f"{rep['messages_per_second']} msg/s")


def main():
    work = h.tempdir()
    with h.test_run():
        run(work, "ed25519", 2000, 20)
        run(work, "rsa", 300, 3)
    print("2 passed, 0 failed")


main()
