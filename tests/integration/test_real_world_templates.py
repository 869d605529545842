"""Real-world HTML email templates go through a whole campaign and arrive byte-identical.

Each template from the corpus gets a few tags added (a greeting after <body>, a footer line
before </body>); the HTML part decoded at the sink must equal the template with those tags
replaced by the recipients' HTML-escaped data, to the byte.
"""
import csv
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def esc(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
             .replace('"', "&quot;").replace("'", "&#x27;").replace("`", "&#x60;").replace("=", "&#x3D;"))


def main():
    corp = h.corpora()
    if not corp:
        print("SKIP: corpora not found (../shared/corpora or MAGNETIC_CORPORA)")
        return
    files = sorted(glob.glob(os.path.join(corp, "templates", "real-world", "*", "*.html")))
    h.check(len(files) >= 5, f"real-world templates found: {len(files)}")
    work = h.tempdir()
    with h.test_run():
        md = os.path.join(work, "md")
        sink, port = h.start_sink(md)
        people = [("Zoë O'Neil", "Zürich & Co"), ("<b>Bob</b>", "a=b \"quoted\""), ("Ann", "Oslo")]
        total = 0
        for n, path in enumerate(files):
            html = open(path, encoding="utf-8").read()
            tagged = re.sub(r"(<body[^>]*>)", r"\1<p>Hello {{name}}</p>", html, count=1)
            tagged = tagged.replace("</body>", "<p>{{city}}</p></body>", 1)
            h.check(tagged != html, f"no <body> in {path}")
            tpl = os.path.join(work, f"t{n}.json")
            h.write_template(tpl, "News for {{name}}", "Hello {{name}}\n", tagged)
            lst = os.path.join(work, f"l{n}.csv")
            with open(lst, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["email", "name", "city"])
                for i, (name, city) in enumerate(people):
                    w.writerow([f"rw{n}-{i}@rw.example", name, city])
            h.magnetic("send", "--template", tpl, "--recipients", lst, "--from", "n@example.com",
                       "--relay", f"127.0.0.1:{port}", "--spool", os.path.join(work, f"s{n}.db"),
                       "--no-progress", check_rc=0)
            expected = {}
            for i, (name, city) in enumerate(people):
                expected[f"rw{n}-{i}@rw.example"] = tagged.replace("{{name}}", esc(name)).replace("{{city}}", esc(city))
            got = {m[1][0]: m[2] for m in h.maildir_messages(md) if m[1][0].startswith(f"rw{n}-")}
            h.check_eq(sorted(got), sorted(expected), f"recipients of {os.path.basename(path)}")
            for rcpt, raw in got.items():
                for line in raw.split(b"\r\n"):
                    h.check(len(line) <= 998, f"line over 998 octets to {rcpt}")
                    h.check(b"\n" not in line and b"\r" not in line, f"bare CR or LF in the message to {rcpt}")
                msg = h.parse(raw)
                part = msg.get_body(("html",))
                body = part.get_payload(decode=True).decode("utf-8")
                want = expected[rcpt].replace("\r\n", "\n").replace("\n", "\r\n")
                if body != want:
                    i = next(k for k in range(min(len(body), len(want))) if body[k] != want[k]) if body[:len(want)] != want[:len(body)] else min(len(body), len(want))
                    h.fail(f"{os.path.basename(path)} to {rcpt}: differs at {i}: {body[i-40:i+40]!r} vs {want[i-40:i+40]!r}")
                total += 1
        sink.terminate()
        print(f"{len(files)} real-world templates, {total} messages byte-identical after decoding")
    print("1 passed, 0 failed")


main()
