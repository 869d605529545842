"""Bad input gets a clear error, and nothing valid is lost or sent twice.

Broken CSV rows, invalid and over-long addresses, bytes that are not UTF-8, CR/LF in data used
in the Subject, an unknown template variable, a template syntax error, missing files, and a JSON
lines list whose rows lack a variable.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def main():
    work = h.tempdir()
    with h.test_run():
        md = os.path.join(work, "md")
        sink, port = h.start_sink(md)
        tpl = os.path.join(work, "t.json")
        h.write_template(tpl, "Hi {{name}}", "Hello {{name}}\n")
        common = ["--from", "Sender <s@example.com>", "--relay", f"127.0.0.1:{port}", "--no-progress"]

        # A list with broken rows among good ones. Row numbers count data rows from 1.
        lst = os.path.join(work, "broken.csv")
        with open(lst, "wb") as f:
            f.write(b"email,name\r\n")
            f.write(b"good1@a.example,One\r\n")                        # row 1
            f.write(b"not-an-address,Two\r\n")                          # row 2: invalid
            f.write(b"good3@a.example,Three,extra\r\n")                 # row 3: too many fields
            f.write(b"" + b"x" * 65 + b"@a.example,Four\r\n")           # row 4: local part > 64
            f.write(b"good5@" + b"d" * 250 + b".example,Five\r\n")      # row 5: domain too long
            f.write(b"good6@a.example,Bad \xff byte\r\n")               # row 6: not UTF-8
            f.write(b"good7@a.example,\"Quoted, with comma\"\r\n")      # row 7: fine
            f.write(b"good1@a.example,Again\r\n")                       # row 8: duplicate of row 1
            f.write(b"inject@a.example,\"Evil\r\nBcc: victim@b.example\"\r\n")  # row 9: CR/LF in data
            f.write(b"good10@xn--mnchen-3ya.example,Ten\r\n")           # row 10: IDN, A-label
            f.write("good10@münchen.example,Eleven\r\n".encode())       # row 11: IDN, U-label
            f.write(b"good12@a.example,\"unterminated\r\n")             # row 12: quote never closed
        report = os.path.join(work, "broken.json")
        rc, out, err = h.magnetic("send", "--template", tpl, "--recipients", lst, *common,
                                  "--spool", os.path.join(work, "b.db"), "--report", report)
        h.check_eq(rc, 0, f"exit code\n{out}\n{err}")
        rep = json.load(open(report))
        bad = {r["row"]: r["error"] for r in rep["invalid_rows"]}
        h.check_eq(sorted(bad), [2, 3, 4, 5, 6, 8, 11, 12], "invalid rows")
        for row, words in {2: "not-an-address", 3: "field", 4: "64", 5: "255", 6: "UTF-8", 8: "duplicate", 12: "quote"}.items():
            h.check(row in bad, f"row {row} is not reported invalid: {bad}")
            h.check(words.lower() in bad[row].lower(), f"row {row} error {bad[row]!r} does not say {words!r}")
            h.check(bad[row].startswith(f"row {row}"), f"row {row} error does not name its row: {bad[row]!r}")
        valid = {"good1@a.example", "good7@a.example", "inject@a.example", "good10@xn--mnchen-3ya.example",
                 "good11@xn--mnchen-3ya.example"}
        # good10 and good11 are the same address once the domain is an A-label: one is a duplicate.
        h.check(11 in bad and "duplicate" in bad[11], f"row 11 is the A-label twin of row 10: {bad.get(11)}")
        valid.discard("good11@xn--mnchen-3ya.example")
        msgs = h.maildir_messages(md)
        got = sorted(m[1][0] for m in msgs)
        h.check_eq(got, sorted(valid), "recipients delivered exactly once")
        h.check_eq(rep["delivered"], len(valid), "delivered")
        h.check_eq(rep["invalid"], len(bad), "invalid count")
        for _, to, raw in msgs:
            if to[0] == "inject@a.example":
                m = h.parse(raw)
                h.check(m["Bcc"] is None, "CR/LF in data added a Bcc header")
                subj = str(m["Subject"])
                h.check("\r" not in subj and "\n" not in subj, f"line break in Subject {subj!r}")
                h.check(subj.startswith("Hi Evil") and subj.endswith("Bcc: victim@b.example"), f"Subject {subj!r}")
                h.check(b"\r\nBcc:" not in raw.split(b"\r\n\r\n")[0], "a Bcc line in the header")
        print(f"broken list: {len(valid)} delivered once, invalid rows {sorted(bad)}")

        # An unknown variable stops the run before anything is sent.
        before = len(h.maildir_messages(md))
        typo = os.path.join(work, "typo.json")
        h.write_template(typo, "Hi {{name}}", "Hello {{frist_name}}\n")
        good = os.path.join(work, "good.csv")
        with open(good, "w") as f:
            f.write("email,name\nz@a.example,Z\n")
        rc, out, err = h.magnetic("send", "--template", typo, "--recipients", good, *common,
                                  "--spool", os.path.join(work, "typo.db"))
        h.check_eq(rc, 1, "exit code for an unknown variable")
        h.check("text, line 1, column" in err and "'frist_name'" in err, f"error names part, line, variable: {err}")
        h.check_eq(len(h.maildir_messages(md)), before, "messages sent despite the unknown variable")

        # A syntax error names the part, line and column.
        broken = os.path.join(work, "syntax.json")
        h.write_template(broken, "Hi", "ok", "<p>\n{{#if name}}unclosed\n</p>")
        rc, out, err = h.magnetic("send", "--template", broken, "--recipients", good, *common,
                                  "--spool", os.path.join(work, "syn.db"))
        h.check_eq(rc, 1, "exit code for a syntax error")
        h.check("html: line" in err and "column" in err, f"syntax error names part and position: {err}")
        h.check_eq(len(h.maildir_messages(md)), before, "messages sent despite the syntax error")

        # Missing files.
        rc, out, err = h.magnetic("send", "--template", os.path.join(work, "nope.json"), "--recipients", good, *common)
        h.check_eq(rc, 1, "exit code for a missing template")
        h.check("nope.json" in err, f"error names the missing template: {err}")
        rc, out, err = h.magnetic("send", "--template", tpl, "--recipients", os.path.join(work, "nope.csv"), *common,
                                  "--spool", os.path.join(work, "nf.db"))
        h.check_eq(rc, 1, "exit code for a missing list")
        h.check("nope.csv" in err, f"error names the missing list: {err}")

        # JSON lines: a row without the variable fails alone (strict rendering), the rest go.
        jl = os.path.join(work, "list.jsonl")
        with open(jl, "w") as f:
            f.write(json.dumps({"email": "j1@a.example", "name": "J1"}) + "\n")
            f.write(json.dumps({"email": "j2@a.example"}) + "\n")
            f.write("{not json}\n")
            f.write(json.dumps({"email": "j4@a.example", "name": "J4"}) + "\n")
        report = os.path.join(work, "jl.json")
        rc, out, err = h.magnetic("send", "--template", tpl, "--recipients", jl, *common,
                                  "--spool", os.path.join(work, "jl.db"), "--report", report)
        h.check_eq(rc, 0, f"exit code\n{err}")
        rep = json.load(open(report))
        h.check_eq((rep["delivered"], rep["failed"], rep["invalid"]), (2, 1, 1), "delivered, failed, invalid")
        h.check_eq([r["row"] for r in rep["invalid_rows"]], [3], "invalid JSON row")
        print("unknown variable, syntax error, missing files, JSON lines: all clear errors")
        sink.terminate()
    print("5 passed, 0 failed")


main()
