"""Regression tests for faults found by trying the command as a user would.

Each case is named after the fault it pins. A bad option is refused before anything is sent
(exit 1, a message naming the option), and the sink stays empty.
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
        lst = os.path.join(work, "l.csv")
        with open(lst, "w") as f:
            f.write("email,name\na@x.example,A\n")
        n = [0]

        def send(*extra, template=tpl, recipients=lst, sender="S <s@example.com>"):
            n[0] += 1
            return h.magnetic("send", "--template", template, "--recipients", recipients,
                              "--from", sender, "--relay", f"127.0.0.1:{port}",
                              "--spool", os.path.join(work, f"s{n[0]}.db"), "--no-progress", *extra)

        def sent():
            return len(h.maildir_messages(md)) if os.path.isdir(os.path.join(md, "new")) else 0

        def refused(name, words, *extra, **kw):
            before = sent()
            rc, out, err = send(*extra, **kw)
            h.check_eq(rc, 1, f"{name}: exit code (stderr {err!r})")
            h.check(words in err, f"{name}: message {err!r} lacks {words!r}")
            h.check("terminate called" not in err, f"{name}: crashed")
            h.check_eq(sent(), before, f"{name}: something was sent")
            print(f"{name}: refused ({err.strip().splitlines()[-1][:100]})")

        refused("unwritable_disposition_log_is_refused_before_sending", "cannot open disposition log",
                "--disposition-log", os.path.join(work, "no-such-dir", "d.jsonl"))
        refused("unwritable_report_is_refused_before_sending", "--report",
                "--report", os.path.join(work, "no-such-dir", "r.json"))
        refused("crlf_in_ehlo_cannot_inject_a_command", "--ehlo", "--ehlo", "x\r\nRSET")
        refused("unsubscribe_url_must_be_https", "--unsubscribe-url", "--unsubscribe-url", "javascript:alert(1)")
        refused("crlf_in_unsubscribe_url_is_refused", "--unsubscribe-url",
                "--unsubscribe-url", "https://e.example/u\r\nBcc: x@y.example")
        refused("from_with_two_mailboxes_is_refused", "one mailbox",
                sender="A <a@example.com>, B <b@example.com>")
        missing = os.path.join(work, "partial.json")
        h.write_template(missing, "s", "{{> nothere}}")
        refused("missing_partial_stops_the_run_before_sending", "nothere", template=missing)
        recursive = os.path.join(work, "recursive.json")
        with open(recursive, "w") as f:
            json.dump({"Subject": "s", "Text": "{{#*inline \"x\"}}{{> x}}{{/inline}}{{> x}}"}, f)
        refused("recursive_partial_stops_the_run_before_sending", "nothing was sent", template=recursive)

        rc, out, err = send("--io-threads", "100000")
        h.check(rc != 0 and "terminate called" not in err and "io-threads" in err,
                f"too_many_io_threads_is_a_usage_error: rc {rc}, {err!r}")
        print("too_many_io_threads_is_a_usage_error: refused")

        # A single-line template of 40,000 tags (minified HTML) compiles in linear time; here it
        # simply has to finish and render right.
        big = os.path.join(work, "big.json")
        h.write_template(big, "s", "t", "<td>{{name}}</td>" * 40000)
        data = os.path.join(work, "d.json")
        with open(data, "w") as f:
            json.dump({"name": "N&"}, f)
        rc, out, err = h.magnetic("render", "--template", big, "--data", data, "--part", "html",
                                  check_rc=0, timeout=60)
        h.check_eq(out, "<td>N&amp;</td>" * 40000, "long_single_line_template_renders")
        print("long_single_line_template_renders: ok")

        # Domains differ only in case: one recipient.
        dup = os.path.join(work, "dup.csv")
        with open(dup, "w") as f:
            f.write("email,name\nann@X.example,A\nann@x.example,B\nAnn@x.EXAMPLE,C\n")
        report = os.path.join(work, "dup.json")
        rc, out, err = send("--report", report, recipients=dup)
        h.check_eq(rc, 0, f"exit code {err}")
        rep = json.load(open(report))
        h.check_eq((rep["delivered"], rep["invalid"]), (1, 2), "address_case_variants_are_mailed_once")
        h.check_eq([m[1][0] for m in h.maildir_messages(md)], ["ann@x.example"], "the domain is written in lower case")
        h.check_eq(list(rep["by_domain"]), ["x.example"], "one domain in the report")
        print("address_case_variants_are_mailed_once: 1 delivered, 2 duplicates")
        # A row nested 100,000 deep: an invalid row, not a crash; the others go.
        deep = os.path.join(work, "deep.jsonl")
        with open(deep, "w") as f:
            f.write(json.dumps({"email": "ok1@y.example", "name": "A"}) + "\n")
            f.write('{"email":"bad@y.example","name":"x","x":' + "[" * 100000 + "]" * 100000 + "}\n")
            f.write(json.dumps({"email": "ok2@y.example", "name": "B"}) + "\n")
        report = os.path.join(work, "deep.json")
        rc, out, err = send("--report", report, recipients=deep)
        h.check_eq(rc, 0, f"deeply_nested_json_row_is_an_invalid_row: exit code {err[-300:]}")
        rep = json.load(open(report))
        h.check_eq((rep["delivered"], [r["row"] for r in rep["invalid_rows"]]), (2, [2]),
                   "deeply_nested_json_row_is_an_invalid_row")
        h.check("nested deeper than 64 levels" in rep["invalid_rows"][0]["error"], rep["invalid_rows"][0]["error"])
        print("deeply_nested_json_row_is_an_invalid_row: " + rep["invalid_rows"][0]["error"])

        refused("report_over_the_recipient_list_is_refused", "same file", "--report", lst)
        sink.terminate()

        # A stop does not wait for ever on a receiver that never answers; then --resume must be
        # given the same campaign.
        slow, slow_port = h.start_sink(None, ["--reply-delay", "60000"])
        spool = os.path.join(work, "slow.db")
        args = [h.BIN, "send", "--template", tpl, "--recipients", lst, "--from", "S <s@example.com>",
                "--relay", f"127.0.0.1:{slow_port}", "--spool", spool, "--no-progress"]
        import subprocess, signal
        p = h.spawn(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # The stop must come while a session waits on the receiver: once the command has
        # connected to it. (A signal before the campaign is accepted ends the command at once,
        # exit 130: that is what a fixed sleep gave on a slow start.)
        h.wait_for(lambda: p.poll() is not None or h.connections_to(slow_port) > 0,
                   "the campaign's connection to the slow receiver")
        h.check(p.poll() is None, f"stop_does_not_wait_on_a_slow_receiver: the command ended by itself ({p.returncode})")
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            h.fail("stop_does_not_wait_on_a_slow_receiver: still running 30 s after SIGTERM")
        h.check_eq(rc, 3, "stop_does_not_wait_on_a_slow_receiver: exit code")
        print("stop_does_not_wait_on_a_slow_receiver: exit 3")
        other = os.path.join(work, "other.json")
        h.write_template(other, "DIFFERENT {{name}}", "other\n")
        rc, out, err = h.magnetic(*args[1:3], other, *args[4:], "--resume")
        h.check_eq(rc, 1, f"resume_with_another_template_is_refused: {err}")
        h.check("the template differs" in err, f"resume_with_another_template_is_refused: {err!r}")
        print("resume_with_another_template_is_refused: refused")
        slow.terminate()
    print("16 passed, 0 failed")


main()
