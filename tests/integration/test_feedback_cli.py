"""`magnetic feedback parse` as a user runs it on files that are not what it expects: its
messages must name the file and the reason, and never echo raw bytes.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

# A DSN written for this test with reserved names; RECIPIENT is replaced per case.
DSN = """From: MAILER-DAEMON@mx.example.net
To: bounce@sender.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

I could not deliver your message.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; RECIPIENT
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown
--B--
"""


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def main():
    work = h.tempdir()
    with h.test_run():
        # Regression (feedback_parse_directory_message): a directory is named as one.
        adir = os.path.join(work, "adir")
        os.mkdir(adir)
        rc, out, err = h.magnetic("feedback", "parse", adir)
        h.check_eq(rc, 1, "feedback parse of a directory")
        h.check_eq(err, f"magnetic feedback parse: cannot read '{adir}': it is a directory\n",
                   "directory message")

        # Regression (feedback_parse_missing_file_reason): the system's reason is given.
        missing = os.path.join(work, "nonexist.eml")
        rc, out, err = h.magnetic("feedback", "parse", missing)
        h.check_eq(rc, 1, "feedback parse of a missing file")
        h.check_eq(err, f"magnetic feedback parse: cannot read '{missing}': No such file or directory\n",
                   "missing file message")

        # Regression (feedback_rules_directory_accepted): --rules DIR fails, for both commands.
        one = write(os.path.join(work, "one.eml"), DSN.replace("RECIPIENT", "gone@example.com").encode())
        for cmd, arg in (("parse", one), ("classify", "550 5.1.1 user unknown")):
            rc, out, err = h.magnetic("feedback", cmd, "--rules", adir, arg)
            h.check_eq(rc, 1, f"feedback {cmd} --rules DIR")
            h.check_eq(out, "", f"feedback {cmd} --rules DIR prints nothing on stdout")
            h.check_eq(err, f"magnetic feedback {cmd}: cannot read bounce rules {adir}: it is a directory\n",
                       f"feedback {cmd} --rules DIR message")
        rc, out, err = h.magnetic("feedback", "parse", "--rules", os.path.join(work, "none.tsv"), one)
        h.check_eq(rc, 1, "feedback parse --rules of a missing file")
        h.check(err.endswith(": No such file or directory\n"), f"missing rules file reason: {err!r}")

        # Regression (feedback_rules_binary_echoed): a binary rules file's bytes are escaped.
        binary = write(os.path.join(work, "r.tsv"), b"\xc6\xc2\x1b[2J\tx\ty\n")
        p = subprocess.run([h.BIN, "feedback", "parse", "--rules", binary, one], capture_output=True)
        h.check_eq(p.returncode, 1, "feedback parse --rules BINARY")
        h.check_eq(p.stderr, f"magnetic feedback parse: {binary}:1: unknown kind "
                             f"'\\xc6\\xc2\\x1b[2J'\n".encode(), "binary rules message")

        # Regression (feedback_parse_cr_line_ends): a file with CR line ends only is read.
        cr = write(os.path.join(work, "cr.eml"),
                   DSN.replace("RECIPIENT", "gone@example.com").replace("\n", "\r").encode())
        rc, out, err = h.magnetic("feedback", "parse", cr, check_rc=0)
        line = json.loads(out)
        h.check_eq((line["recipient"], line["reason"], line["hard"]), ("gone@example.com", "userunknown", True),
                   "CR-only DSN")

        # Regression (feedback_parse_silent_no_recipient): a line without a recipient says why.
        bad = write(os.path.join(work, "badutf8.eml"),
                    DSN.replace("RECIPIENT", "@@@").encode().replace(b"@@@", b"\xff\xfe@example.com"))
        rc, out, err = h.magnetic("feedback", "parse", bad, check_rc=0)
        line = json.loads(out)
        h.check_eq(line, {"file": bad, "kind": "bounce", "notes": [
            "Final-Recipient 'rfc822; \\xff\\xfe@example.com' is not one address "
            "(local part is not valid UTF-8): recipient left out"]}, "invalid UTF-8 recipient")
        print("feedback parse: directories, missing files, bad rules files, CR line ends, "
              "refused recipients all say why")


if __name__ == "__main__":
    main()
