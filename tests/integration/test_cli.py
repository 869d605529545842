"""The smaller commands as a user runs them: dkim keygen, render, demo, and the sink's faults.
"""
import json
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def main():
    work = h.tempdir()
    with h.test_run():
        # keygen: key file owner-only, never overwritten, TXT record printed.
        for algorithm, k in (("ed25519", "ed25519"), ("rsa", "rsa")):
            path = os.path.join(work, f"{algorithm}.pem")
            rc, out, err = h.magnetic("dkim", "keygen", "--domain", "example.com", "--selector", "sel",
                                      "--algorithm", algorithm, "--out", path, check_rc=0)
            h.check_eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, f"{algorithm} key mode")
            h.check(out.startswith(f'sel._domainkey.example.com. IN TXT "v=DKIM1; k={k}; p='), f"TXT line {out!r}")
            h.check(open(path).read().startswith("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM")
            rc, out, err = h.magnetic("dkim", "keygen", "--domain", "example.com", "--selector", "sel",
                                      "--algorithm", algorithm, "--out", path)
            h.check_eq(rc, 1, "keygen over an existing file")
            h.check("exists" in err.lower(), f"keygen error says the file exists: {err!r}")
        print("keygen: rsa and ed25519 keys, mode 0600, TXT records, no overwrite")

        # render: one part exactly, and the whole message.
        tpl = os.path.join(work, "t.json")
        with open(tpl, "w") as f:
            json.dump({"TemplateName": "x", "TemplateContent": {
                "Subject": "Hi {{name}}", "Text": "{{#each items}}{{@index}}:{{this}} {{/each}}",
                "Html": "<p>{{name}}</p>"}}, f)
        data = os.path.join(work, "d.json")
        with open(data, "w") as f:
            json.dump({"email": "r@example.com", "name": "A & <B>", "items": ["x", "y"]}, f)
        rc, out, err = h.magnetic("render", "--template", tpl, "--data", data, "--part", "html", check_rc=0)
        h.check_eq(out, "<p>A &amp; &lt;B&gt;</p>", "rendered html part")
        rc, out, err = h.magnetic("render", "--template", tpl, "--data", data, "--part", "subject", check_rc=0)
        h.check_eq(out, "Hi A & <B>", "rendered subject")
        rc, out, err = h.magnetic("render", "--template", tpl, "--data", data, "--part", "text", check_rc=0)
        h.check_eq(out, "0:x 1:y ", "rendered text")
        rc, out, err = h.magnetic("render", "--template", tpl, "--data", data, check_rc=0)
        msg = h.parse(out.encode())
        h.check_eq(msg["To"].addresses[0].addr_spec, "r@example.com", "render To from data.email")
        h.check_eq(msg.get_body(("plain",)).get_content().replace("\r\n", "\n"), "0:x 1:y ", "text part")
        print("render: parts exact, whole message parses")

        # Regression (feedback_input_failure_exit_code): a failure in the input of a feedback
        # command exits 1, a usage error 2.
        rc, out, err = h.magnetic("feedback", "parse", os.path.join(work, "no-such-file.eml"))
        h.check_eq(rc, 1, "feedback parse of a missing file")
        rc, out, err = h.magnetic("feedback", "classify", "not an smtp reply")
        h.check_eq(rc, 1, "feedback classify of text that is no reply")
        rc, out, err = h.magnetic("feedback", "parse", "--no-such-option")
        h.check_eq(rc, 2, "feedback parse with an unknown option")
        print("feedback: input failures exit 1, usage errors 2")

        # demo: a small one, end to end.
        demo = os.path.join(work, "demo")
        rc, out, err = h.magnetic("demo", "--dir", demo, "--recipients", "300", "--domains", "3", check_rc=0)
        rep = json.load(open(os.path.join(demo, "report.json")))
        h.check_eq((rep["recipients"], rep["delivered"]), (300, 300), "demo delivered")
        h.check_eq(len(os.listdir(os.path.join(demo, "maildir", "new"))), 300, "demo messages in the maildir")
        h.check("the sink accepted 300 messages" in out, f"demo says where the messages are: {out[-300:]!r}")
        print("demo: 300 recipients delivered into the sink")

        # The sink dropping the connection in DATA: the recipient is retried, nothing lost.
        md = os.path.join(work, "md-drop")
        sink, port = h.start_sink(md, ["--drop-mid-data-every", "4"])
        lst = os.path.join(work, "l.csv")
        with open(lst, "w") as f:
            f.write("email,name\n" + "".join(f"d{i}@drop.example,N{i}\n" for i in range(20)))
        h.write_template(tpl, "Hi {{name}}", "Hello {{name}}\n")
        report = os.path.join(work, "drop.json")
        h.magnetic("send", "--template", tpl, "--recipients", lst, "--from", "a@example.com",
                   "--relay", f"127.0.0.1:{port}", "--spool", os.path.join(work, "drop.db"), "--report", report,
                   "--retry-initial", "100ms", "--no-progress", check_rc=0)
        rep = json.load(open(report))
        got = sorted(m[1][0] for m in h.maildir_messages(md))
        h.check_eq(rep["delivered"], 20, "delivered despite drops")
        h.check_eq(got, sorted(f"d{i}@drop.example" for i in range(20)), "each recipient once at the sink")
        print("drop mid-DATA: 20 delivered once each")
        sink.terminate()
    print("4 passed, 0 failed")


main()
