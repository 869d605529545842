"""The private Postfix peer on its own: it bounces an unknown user after accepting it and sends
its own DSN, from the null sender, to the bounce domain's listener.

The listener here is a minimal SMTP receiver written for this test (socket and threading:
Debian's python3 has neither smtpd nor aiosmtpd), standing where the feedback listener of
`magnetic serve` will stand. Nothing is mocked on the Postfix side: smtpd, cleanup, qmgr,
local, bounce and smtp are Postfix's own.
"""
import email
import email.policy
import os
import queue
import signal
import smtplib
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h
import postfix_peer

SENDER = "bounce+abc123@bounces.test"
UNKNOWN = "unknown@rcpt.test"
MESSAGE_ID = "<peer-test-1@sender.example>"
# How long Postfix may take to accept, bounce and deliver the DSN; a bound, not an assertion.
DSN_WAIT = 60


class Receiver:
    """One-connection-at-a-time SMTP receiver on 127.0.0.1: records each transaction as
    (mail_from, [rcpt], data) in self.messages (a queue.Queue), data unstuffed with CRLF ends."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.messages = queue.Queue()
        self.commands = []  # every command line, in order, for the failure messages
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self):
        self._stop = True
        self._thread.join(10)
        self.sock.close()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                try:
                    self._session(conn.makefile("rb"), conn)
                except (OSError, ValueError):
                    pass

    def _session(self, rfile, conn):
        def say(line):
            conn.sendall(line.encode() + b"\r\n")

        say("220 feedback.test ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = rfile.readline(1000)
            if not line:
                return
            cmd = line.decode("ascii", "replace").rstrip("\r\n")
            self.commands.append(cmd)
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                say("250 feedback.test")
            elif cmd.upper().startswith("MAIL FROM:"):
                mail_from = cmd[10:].split(">")[0].lstrip(" <")
                rcpts = []
                say("250 2.1.0 Ok")
            elif cmd.upper().startswith("RCPT TO:"):
                rcpts.append(cmd[8:].split(">")[0].lstrip(" <"))
                say("250 2.1.5 Ok")
            elif verb == "DATA":
                say("354 go ahead")
                data = b""
                while True:
                    dl = rfile.readline()
                    if not dl or dl == b".\r\n":
                        break
                    data += dl[1:] if dl.startswith(b".") else dl
                self.messages.put((mail_from, rcpts, data))
                say("250 2.0.0 Ok: queued")
            elif verb == "RSET" or verb == "NOOP":
                say("250 2.0.0 Ok")
            elif verb == "QUIT":
                say("221 2.0.0 Bye")
                return
            else:
                say("502 5.5.2 Command not implemented")


def listening_addresses(port):
    """The local addresses with a TCP socket listening on port, from /proc/net/tcp{,6}."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:  # 0A: LISTEN
                if len(addr) == 8:
                    out.append(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
                else:
                    out.append("ipv6:" + addr)
    return sorted(out)


def wait_for_message(receiver, peer):
    """The first transaction the receiver gets; flushes Postfix's queue while it waits."""
    end = time.time() + DSN_WAIT
    while time.time() < end:
        try:
            return receiver.messages.get(timeout=2)
        except queue.Empty:
            peer.flush()
    h.fail(f"no DSN within {DSN_WAIT}s; receiver saw {receiver.commands!r}; queue:\n"
           f"{peer.queue()}\nPostfix log:\n{peer.log()}")


def part_fields(part):
    """The field blocks of a message/delivery-status part as lists of (name, value)."""
    return [list(block.items()) for block in part.get_payload()]


def main():
    if not postfix_peer.available():
        print(f"SKIP: {postfix_peer.POSTFIX} is missing (Debian package postfix)")
        print("0 passed, 0 failed, 1 skipped")
        return
    # A SIGTERM (a test runner giving up) unwinds like a failure, so the instance is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: terminated"))
    passed = 0
    receiver = Receiver()
    try:
        with postfix_peer.PostfixPeer() as peer:
            try:
                port = peer.start(receiver.port)
                passed += run(peer, port, receiver)
            except BaseException:
                print("Postfix log:\n" + peer.log())
                raise
        # The context has stopped the instance: nothing listens on its port any more. stop()
        # waits for the master only; an idle smtpd it had started holds the listening socket
        # until it has exited too, a moment later, so that is waited for (bounded).
        h.wait_eq(lambda: (listening_addresses(port), []), "listeners on the peer's port after stop",
                  timeout=30)
        passed += 1
    finally:
        receiver.close()
    print(f"{passed} passed, 0 failed")


def run(peer, port, receiver):
    passed = 0

    # Only 127.0.0.1 listens on the smtpd port.
    h.check_eq(listening_addresses(port), ["127.0.0.1"], "listeners on the peer's port")
    passed += 1

    raw = ("From: Sender <sender@sender.example>\r\n"
           f"To: {UNKNOWN}\r\n"
           "Subject: to a user who does not exist\r\n"
           f"Message-ID: {MESSAGE_ID}\r\n"
           "\r\n"
           "This goes to a mailbox that is not there.\r\n")
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30) as s:
        code, _ = s.ehlo()
        h.check_eq(code, 250, "EHLO")
        h.check_eq(s.mail(SENDER), (250, b"2.1.0 Ok"), "MAIL FROM")
        # Relaying is refused even from loopback: only rcpt.test is accepted.
        h.check_eq(s.rcpt("someone@elsewhere.example"),
                   (554, b"5.7.1 <someone@elsewhere.example>: Relay access denied"),
                   "RCPT to another domain")
        # The unknown user is accepted at RCPT time: local(8) decides after the queue.
        h.check_eq(s.rcpt(UNKNOWN), (250, b"2.1.5 Ok"), "RCPT to an unknown user")
        code, reply = s.data(raw)
        h.check_eq(code, 250, "reply to the final dot")
        h.check(reply.startswith(b"2.0.0 Ok: queued as "), f"queued reply: {reply!r}")
    passed += 1

    mail_from, rcpts, data = wait_for_message(receiver, peer)
    h.check_eq(mail_from, "", "DSN envelope sender")
    h.check_eq(rcpts, [SENDER], "DSN envelope recipients")
    passed += 1

    dsn = email.message_from_bytes(data, policy=email.policy.default)
    h.check_eq(dsn.get_content_type(), "multipart/report", "DSN content type")
    h.check_eq(dsn.get_param("report-type"), "delivery-status", "report-type")
    h.check_eq(str(dsn["From"]), "Mail Delivery System <MAILER-DAEMON@mta.rcpt.test>", "From")
    h.check_eq(str(dsn["To"]), SENDER, "To")
    h.check_eq(str(dsn["Subject"]), "Undelivered Mail Returned to Sender", "Subject")
    h.check_eq(str(dsn["Auto-Submitted"]), "auto-replied", "Auto-Submitted")
    parts = dsn.get_payload()
    h.check_eq([p.get_content_type() for p in parts],
               ["text/plain", "message/delivery-status", "message/rfc822"], "DSN parts")
    passed += 1

    fields = part_fields(parts[1])
    h.check_eq(len(fields), 2, "field blocks in message/delivery-status")
    per_message = dict(fields[0])
    h.check_eq(per_message.get("Reporting-MTA"), "dns; mta.rcpt.test", "Reporting-MTA")
    h.check_eq(per_message.get("X-Postfix-Sender"), "rfc822; " + SENDER, "X-Postfix-Sender")
    per_recipient = dict(fields[1])
    h.check_eq(per_recipient.get("Final-Recipient"), "rfc822; " + UNKNOWN, "Final-Recipient")
    h.check_eq(per_recipient.get("Original-Recipient"), "rfc822;" + UNKNOWN,
               "Original-Recipient")
    h.check_eq(per_recipient.get("Action"), "failed", "Action")
    h.check_eq(per_recipient.get("Status"), "5.1.1", "Status")
    h.check_eq(per_recipient.get("Diagnostic-Code"), 'X-Postfix; unknown user: "unknown"',
               "Diagnostic-Code")
    passed += 1

    returned = parts[2].get_payload()[0]
    h.check_eq(str(returned["Message-ID"]), MESSAGE_ID, "Message-ID of the returned message")
    h.check_eq(str(returned["Subject"]), "to a user who does not exist", "returned Subject")
    passed += 1

    # Postfix's log names the bounce with local(8)'s reason, and the DSN delivered to us. smtp(8)
    # writes its "status=sent" line after our receiver has replied, so the line is waited for.
    bounced = f'to=<{UNKNOWN}>, relay=local'
    delivered = f"to=<{SENDER}>, relay=127.0.0.1[127.0.0.1]:{receiver.port}"

    def log_with_delivery():
        text = peer.log()
        return text if delivered in text and "status=sent" in text else ""

    log = h.wait_for(log_with_delivery, "the DSN delivery line in Postfix's log", timeout=30)
    h.check(bounced in log and 'status=bounced (unknown user: "unknown")' in log,
            "local(8) bounce in the log")
    h.check(delivered in log and "status=sent (250 2.0.0 Ok: queued)" in log,
            "DSN delivery in the log")
    passed += 1
    return passed


if __name__ == "__main__":
    main()
