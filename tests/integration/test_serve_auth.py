"""Request signing at the SES v2 API of `magnetic serve`, from requests made by hand.

The harness's signer (checked against the AWS CLI's in test_serve_sigv4.py) makes each request;
the refusals are AWS's, all HTTP 403 with the error type in x-amzn-ErrorType and in the body's
__type: no Authorization (MissingAuthenticationTokenException), a malformed one
(IncompleteSignatureException), a clock far off (InvalidSignatureException), an unknown access
key id or one revoked while the service runs (UnrecognizedClientException), a wrong secret or a
body changed after signing (SignatureDoesNotMatch). A refused SendEmail sends nothing.
"""
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def raw_call(port, method, path, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return h.SesResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def refused(r, want_type, what):
    h.check_eq((r.status, r.headers.get("x-amzn-errortype")), (403, want_type), f"{what}: {r!r}")
    h.check(isinstance(r.doc, dict) and r.doc.get("__type") == want_type and r.doc.get("message"),
            f"{what}: body {r.body!r}")


def main():
    h.skip_without_serve("request signing at magnetic serve")
    work = h.tempdir()
    with h.test_run():
        dump = os.path.join(work, "dump")
        os.makedirs(dump)
        _, sink_port = h.start_smtp_sink(dump)
        data = os.path.join(work, "data")
        key = h.keys_create(data, "auth")
        serve, port, _ = h.start_serve(data, routes=[("a.example", sink_port)])
        kid, secret = key["AccessKeyId"], key["SecretAccessKey"]
        api = h.SesClient(port, kid, secret)
        h.byodkim_identity(api, "auth.example", "a1", work)
        host = f"127.0.0.1:{port}"
        path = "/v2/email/outbound-emails"

        def send_body(to):
            return json.dumps({"FromEmailAddress": "a@auth.example", "Destination": {"ToAddresses": [to]},
                               "Content": {"Simple": {"Subject": {"Data": "auth"},
                                                      "Body": {"Text": {"Data": "x\n"}}}}}).encode()

        def signed(body, secret=secret, kid=kid, amz_date=None, service="ses"):
            return h.sigv4_headers("POST", host, path, [], body, kid, secret, service=service,
                                   headers={"Content-Type": "application/json"}, amz_date=amz_date)

        passed = 0
        body = send_body("nobody@a.example")
        r = raw_call(port, "POST", path, body, {"Host": host, "Content-Type": "application/json"})
        refused(r, "MissingAuthenticationTokenException", "no Authorization")
        headers = signed(body)
        headers["Authorization"] = headers["Authorization"].split(", Signature=")[0]
        refused(raw_call(port, "POST", path, body, headers), "IncompleteSignatureException", "no Signature=")
        stale = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 7200))
        refused(raw_call(port, "POST", path, body, signed(body, amz_date=stale)), "InvalidSignatureException",
                "X-Amz-Date two hours ago")
        refused(raw_call(port, "POST", path, body, signed(body, kid="AKIA0000000000000000")),
                "UnrecognizedClientException", "unknown access key id")
        refused(raw_call(port, "POST", path, body, signed(body, secret=secret[::-1])), h.BAD_SIGNATURE,
                "wrong secret")
        refused(raw_call(port, "POST", path, send_body("other@a.example"), signed(body)), h.BAD_SIGNATURE,
                "body changed after signing")
        passed += 1

        # Signed right, with either signing name of the SES v2 model ("ses", or "email" as the
        # endpoint prefix): accepted.
        for service, to in (("ses", "ok-ses@a.example"), ("email", "ok-email@a.example")):
            b = send_body(to)
            r = raw_call(port, "POST", path, b, signed(b, service=service))
            h.check(r.status == 200 and isinstance(r.doc.get("MessageId"), str), f"signed for {service}: {r!r}")
        passed += 1

        doc = api.ok("GET", "/v2/email/account")
        h.check_eq(doc["SendQuota"]["SentLast24Hours"], 2.0, "SentLast24Hours: only the accepted sends")

        # A key revoked while the service runs is refused from then on; another key still works.
        spare = h.keys_create(data, "spare")
        h.magnetic("keys", "revoke", "--data", data, kid, check_rc=0)
        b = send_body("revoked@a.example")
        refused(raw_call(port, "POST", path, b, signed(b)), "UnrecognizedClientException", "revoked key")
        other = h.SesClient(port, spare["AccessKeyId"], spare["SecretAccessKey"])
        h.check_eq(other.ok("GET", "/v2/email/account")["SendQuota"]["SentLast24Hours"], 2.0,
                   "SentLast24Hours read with the other key")
        h.wait_count(lambda: h.smtp_sink_count(dump), 2, 120, "messages at smtp-sink")
        got = sorted(r for _, rcpts, _ in h.smtp_sink_messages(dump) for r in rcpts)
        h.check_eq(got, ["ok-email@a.example", "ok-ses@a.example"], "recipients delivered")
        passed += 1
        h.stop_serve(serve, data)
    print(f"{passed} passed, 0 failed")


main()
