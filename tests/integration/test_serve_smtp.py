"""SMTP submission of `magnetic serve` with swaks and Python's smtplib, as SES's SMTP interface is used.

Both clients submit over STARTTLS with AUTH PLAIN and AUTH LOGIN, with the SMTP credentials that
`keys create` prints (checked against the SES derivation written independently in the harness);
the messages reach our capture sink DKIM-signed with the domain identity's key. An
X-SES-CONFIGURATION-SET field picks a configuration set (a set that does not exist is refused);
it, X-SES-MESSAGE-TAGS and Bcc never leave the service; a suppressed recipient is accepted and not
delivered. Refused: MAIL without AUTH (530), AUTH before STARTTLS (538), a relay
attempt without AUTH, a wrong password (535), and a From that is no identity.
"""
import base64
import email.message
import email.policy
import email.utils
import os
import smtplib
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

DOMAIN = "news.example"
FROM_ADDR = "news@news.example"
FROM = f"News <{FROM_ADDR}>"


def tls_context():
    # The service's certificate is self-signed for "localhost"; what is tested here is that the
    # session is encrypted before credentials go over it, not the certificate chain.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(port, starttls=True):
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
    s.ehlo()
    if starttls:
        s.starttls(context=tls_context())
        s.ehlo()
    return s


def message(to, subject, body, extra=()):
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m["From"] = FROM
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(usegmt=True)
    m["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
    for name, value in extra:
        m[name] = value
    m.set_content(body)
    return m.as_bytes()


def swaks(work, port, mechanism, user, password, to, subject, body):
    # No CRLF after the last line: swaks puts one before its closing dot itself.
    path = os.path.join(work, f"swaks-{mechanism}.eml")
    with open(path, "wb") as f:
        f.write(f"From: {FROM}\r\nTo: {to}\r\nSubject: {subject}\r\n"
                f"Date: {email.utils.formatdate(usegmt=True)}\r\n\r\n{body}".encode())
    return subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--ehlo", "client.test",
                           "--tls", "--auth", mechanism, "--auth-user", user, "--auth-password", password,
                           "--from", FROM_ADDR, "--to", to, "--data", "@" + path],
                          capture_output=True, text=True, timeout=60)


def main():
    h.skip_without_serve("SMTP submission of magnetic serve")
    work = h.tempdir()
    with h.test_run():
        md = os.path.join(work, "md")
        _, sink_port = h.start_sink(md)
        data = os.path.join(work, "data")
        key = h.keys_create(data, "smtp")
        passed = 0

        # The SES way: the username is the access key id, the password derived from the secret
        # for the region (us-east-1 unless --region says otherwise).
        h.check_eq(key["SmtpUsername"], key["AccessKeyId"], "SmtpUsername")
        h.check_eq(key["SmtpPassword"], h.ses_smtp_password(key["SecretAccessKey"], "us-east-1"),
                   "SmtpPassword for us-east-1")
        other = h.keys_create(data, "smtp-eu", region="eu-west-1")
        h.check_eq(other["SmtpPassword"], h.ses_smtp_password(other["SecretAccessKey"], "eu-west-1"),
                   "SmtpPassword for eu-west-1")
        passed += 1

        # foreign.invalid is routed to the sink too, so that a relay wrongly accepted would show
        # there instead of being looked up anywhere.
        serve, api_port, smtp_port = h.start_serve(
            data, routes=[("a.example", sink_port), ("foreign.invalid", sink_port)])
        api = h.SesClient(api_port, key["AccessKeyId"], key["SecretAccessKey"])
        txt = h.byodkim_identity(api, DOMAIN, "smtp1", work)
        api.ok("POST", "/v2/email/configuration-sets", {"ConfigurationSetName": "cs-smtp"})
        user, password = key["SmtpUsername"], key["SmtpPassword"]
        want = {}  # recipient -> (subject, text)

        # swaks, AUTH PLAIN and AUTH LOGIN over STARTTLS.
        for mech in ("PLAIN", "LOGIN"):
            to = f"swaks-{mech.lower()}@a.example"
            p = swaks(work, smtp_port, mech, user, password, to, f"swaks {mech}", f"Body via swaks {mech}")
            h.check(p.returncode == 0, f"swaks AUTH {mech} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr}")
            want[to] = (f"swaks {mech}", f"Body via swaks {mech}\n")
        passed += 1

        # smtplib: AUTH is offered only after STARTTLS, with both mechanisms.
        s = connect(smtp_port, starttls=False)
        h.check(s.has_extn("starttls"), "STARTTLS offered before TLS")
        h.check(not s.has_extn("auth"), f"AUTH offered before TLS: {s.esmtp_features}")
        s.close()
        for mech in ("PLAIN", "LOGIN"):
            s = connect(smtp_port)
            h.check_eq(sorted(s.esmtp_features.get("auth", "").split()), ["LOGIN", "PLAIN"], "AUTH after STARTTLS")
            s.user, s.password = user, password
            authobject = s.auth_plain if mech == "PLAIN" else s.auth_login
            code, _ = s.auth(mech, authobject, initial_response_ok=(mech == "PLAIN"))
            h.check_eq(code, 235, f"smtplib AUTH {mech}")
            to = f"smtplib-{mech.lower()}@a.example"
            body = f"Body via smtplib {mech}\n.\n..two dots\n"
            refused = s.sendmail(FROM_ADDR, [to], message(to, f"smtplib {mech}", body))
            h.check_eq(refused, {}, f"smtplib {mech} refused recipients")
            want[to] = (f"smtplib {mech}", body)
            s.quit()
        passed += 1

        # X-SES-CONFIGURATION-SET: an existing set is used and the field removed; an unknown one
        # refuses the message, as SES does ("554 Transaction failed: Configuration set ... does
        # not exist").
        s = connect(smtp_port)
        s.login(user, password)
        to = "cs@a.example"
        s.sendmail(FROM_ADDR, [to], message(to, "with a set", "Configuration set chosen by a field\n",
                                            [("X-SES-CONFIGURATION-SET", "cs-smtp")]))
        want[to] = ("with a set", "Configuration set chosen by a field\n")
        try:
            s.sendmail(FROM_ADDR, ["nocs@a.example"], message("nocs@a.example", "unknown set", "x\n",
                                                              [("X-SES-CONFIGURATION-SET", "no-such-set")]))
            h.fail("a message naming an unknown configuration set was accepted")
        except smtplib.SMTPDataError as e:
            h.check_eq(e.smtp_code, 554, f"reply to an unknown configuration set ({e.smtp_error!r})")
            h.check(b"no-such-set" in e.smtp_error, f"the reply names the set: {e.smtp_error!r}")
        # Bcc and X-SES-MESSAGE-TAGS: read, and neither leaves the service; the Bcc recipient
        # (on the envelope) gets its copy. A suppressed recipient is accepted and not delivered.
        api.ok("PUT", "/v2/email/suppression/addresses", {"EmailAddress": "supp@a.example", "Reason": "COMPLAINT"})
        to = "tagged@a.example"
        refused = s.sendmail(FROM_ADDR, [to, "blind@a.example", "supp@a.example"],
                             message(to, "tagged", "With tags and a blind copy\n",
                                     [("Bcc", "blind@a.example"), ("X-SES-MESSAGE-TAGS", "campaign=spring, kind=test")]))
        h.check_eq(refused, {}, "recipients refused of the tagged message")
        want[to] = want["blind@a.example"] = ("tagged", "With tags and a blind copy\n")
        s.quit()
        passed += 1

        # Refusals. MAIL without AUTH, before and after STARTTLS.
        for starttls in (False, True):
            s = connect(smtp_port, starttls=starttls)
            code, text = s.mail(FROM_ADDR)
            h.check_eq(code, 530, f"MAIL without AUTH ({'after' if starttls else 'before'} STARTTLS): {text!r}")
            s.close()
        # AUTH before STARTTLS, both mechanisms.
        s = connect(smtp_port, starttls=False)
        plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        code, text = s.docmd("AUTH", "PLAIN " + plain)
        h.check_eq(code, 538, f"AUTH PLAIN before STARTTLS: {text!r}")
        code, text = s.docmd("AUTH", "LOGIN")
        h.check_eq(code, 538, f"AUTH LOGIN before STARTTLS: {text!r}")
        s.close()
        # A relay attempt without AUTH: a foreign sender to a foreign domain. MAIL is refused for
        # want of AUTH; RCPT then is refused either for the same reason (530) or as out of
        # sequence (503); either way nothing is taken.
        s = connect(smtp_port)
        code, text = s.mail("someone@foreign.invalid")
        h.check_eq(code, 530, f"MAIL of a relay attempt: {text!r}")
        code, text = s.rcpt("victim@foreign.invalid")
        h.check(code in (503, 530), f"RCPT of a relay attempt: {code} {text!r}")
        code, text = s.docmd("DATA")
        h.check(code in (503, 530, 554), f"DATA of a relay attempt: {code} {text!r}")
        s.close()
        # A wrong password, both mechanisms.
        for mech in ("PLAIN", "LOGIN"):
            s = connect(smtp_port)
            s.user, s.password = user, password[:-2] + ("AA" if not password.endswith("AA") else "BB")
            try:
                s.auth(mech, s.auth_plain if mech == "PLAIN" else s.auth_login,
                       initial_response_ok=(mech == "PLAIN"))
                h.fail(f"a wrong password was accepted with AUTH {mech}")
            except smtplib.SMTPAuthenticationError as e:
                h.check_eq(e.smtp_code, 535, f"AUTH {mech} with a wrong password ({e.smtp_error!r})")
            code, text = s.mail(FROM_ADDR)
            h.check_eq(code, 530, f"MAIL after a failed AUTH {mech}: {text!r}")
            s.close()
        # The password of another region is a wrong password here (the service runs for us-east-1).
        s = connect(smtp_port)
        try:
            s.login(other["SmtpUsername"], other["SmtpPassword"])
            h.fail("the eu-west-1 SMTP password was accepted by a us-east-1 service")
        except smtplib.SMTPAuthenticationError as e:
            h.check_eq(e.smtp_code, 535, f"AUTH with another region's password ({e.smtp_error!r})")
        s.close()
        # Authenticated, but From an address that is no identity: refused as SES refuses it
        # ("554 Message rejected: Email address is not verified ...").
        s = connect(smtp_port)
        s.login(user, password)
        stranger = "someone@unknown.example"
        msg = message("stranger@a.example", "not ours", "x\n").replace(FROM.encode(), stranger.encode())
        try:
            s.sendmail(stranger, ["stranger@a.example"], msg)
            h.fail("a message From an unknown identity was accepted")
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
            h.check_eq(e.smtp_code, 554, f"reply to a From that is no identity ({e.smtp_error!r})")
            h.check(b"not verified" in e.smtp_error, f"the reply says why: {e.smtp_error!r}")
        s.close()
        # Regression (unverified_envelope_sender): MAIL FROM of an unverified domain, with a
        # verified From field, is refused at MAIL; so is the null sender.
        s = connect(smtp_port)
        s.login(user, password)
        code, text = s.mail("bounces@evil.invalid")
        h.check_eq(code, 554, f"MAIL FROM an unverified domain: {text!r}")
        h.check(b"not verified" in text, f"the reply says why: {text!r}")
        s.rset()
        code, text = s.mail("")
        h.check_eq(code, 553, f"MAIL FROM:<> on submission: {text!r}")
        s.close()
        # Regression (raw_duplicate_from_spoofing): a second From field and an unverified Sender.
        s = connect(smtp_port)
        s.login(user, password)
        for extra, what in ((b"From: x@evil.invalid", b"2 From fields"),
                            (b"Sender: x@evil.invalid", b"not verified")):
            msg = extra + b"\r\n" + message("spoof@a.example", "spoof", "x\n")
            try:
                s.sendmail(FROM_ADDR, ["spoof@a.example"], msg)
                h.fail(f"a message with {extra} was accepted")
            except smtplib.SMTPDataError as e:
                h.check_eq(e.smtp_code, 554, f"reply to {extra} ({e.smtp_error!r})")
                h.check(what in e.smtp_error, f"the reply says why: {e.smtp_error!r}")
            s.rset()
        s.close()
        # A second service on the same data directory refuses to start.
        rc, out, err = h.magnetic("serve", "--data", data, "--api-listen", "127.0.0.1:0",
                                  "--smtp-listen", "127.0.0.1:0", "--relay", "127.0.0.1:9", timeout=30)
        h.check_eq(rc, 1, "a second serve on the same data directory")
        h.check("in use by another magnetic serve" in err, f"it says why: {err!r}")
        h.check(os.path.exists(os.path.join(data, "listen.json")), "the first service's listen.json stays")
        passed += 1

        # The accepted recipients count against the quota (the suppressed one too, as SES counts
        # it), the refused ones do not.
        doc = api.ok("GET", "/v2/email/account")
        h.check_eq(doc["SendQuota"]["SentLast24Hours"], float(len(want) + 1), "SentLast24Hours after SMTP")

        # Delivered, signed, intact, each exactly once, and nothing of the refused ones.
        h.wait_count(lambda: h.count_files(os.path.join(md, "new")), len(want), 180, "messages at the sink")
        messages = h.maildir_messages(md)
        h.check_eq(sorted(r for _, rcpts, _ in messages for r in rcpts), sorted(want), "recipients delivered")
        for env_from, rcpts, raw in messages:
            rcpt = rcpts[0]
            head = b"\r\n" + raw.split(b"\r\n\r\n", 1)[0].lower()
            for field in (b"x-ses-configuration-set:", b"x-ses-message-tags:", b"bcc:"):
                h.check(b"\r\n" + field not in head, f"{field.decode()} left in the message to {rcpts}")
            h.check(h.dkim_verify(raw, txt), f"dkimpy does not verify the message to {rcpt}")
            msg = h.parse(raw)
            h.check_eq(str(msg["From"]), FROM, f"From of the message to {rcpt}")
            to = "tagged@a.example" if rcpt == "blind@a.example" else rcpt
            h.check_eq([a.addr_spec for a in msg["To"].addresses], [to], f"To of the message to {rcpts}")
            subject, text = want[rcpt]
            h.check_eq(str(msg["Subject"]), subject, f"Subject of the message to {rcpt}")
            h.check_eq(msg.get_body(("plain",)).get_content().replace("\r\n", "\n"), text, f"text to {rcpt}")
        passed += 1

        h.stop_serve(serve, data)
        print(f"{len(messages)} messages submitted over SMTP, delivered and verified by dkimpy")
    print(f"{passed} passed, 0 failed")


main()
