"""The tests' own SigV4 signer (harness.sigv4_headers) against the AWS CLI's signer.

The serve tests sign their requests with the harness's signer; this pins it to the one the AWS CLI
uses (the botocore bundled in Debian's awscli), byte for byte, over paths that need encoding,
queries with reserved characters, bodies and extra signed headers. Needs no server.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

CASES = [
    # method, path segments, query pairs, body, extra headers
    ("GET", ("v2", "email", "account"), [], b"", {}),
    ("POST", ("v2", "email", "outbound-emails"), [], b'{"Content": {"Simple": {}}}',
     {"Content-Type": "application/json"}),
    ("GET", ("v2", "email", "templates"), [("PageSize", "1"), ("NextToken", "a+b/c=d e~")], b"", {}),
    ("GET", ("v2", "email", "suppression", "addresses"),
     [("Reason", "BOUNCE"), ("Reason", "COMPLAINT"), ("PageSize", "10")], b"", {}),
    ("DELETE", ("v2", "email", "templates", "a b/ü~x%"), [], b"", {}),
    ("PUT", ("v2", "email", "suppression", "addresses"), [], "{\"EmailAddress\": \"ü@example.com\"}".encode(),
     {"Content-Type": "application/json", "X-Amz-User-Agent": "test  two   spaces"}),
]


def main():
    try:
        import awscli  # noqa: F401  (makes its bundled botocore importable as `botocore`)
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
    except ImportError as e:
        print(f"SKIP: the AWS CLI's botocore is not importable ({e}); install Debian's awscli")
        print("0 passed, 0 failed, 1 skipped")
        return
    import urllib.parse

    passed = 0
    for region in ("us-east-1", "eu-west-1"):
        for method, segments, query, body, extra in CASES:
            path = h.encode_path(*segments)
            qs = urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="~")
            url = f"http://127.0.0.1:8080{path}" + (f"?{qs}" if qs else "")
            req = AWSRequest(method=method, url=url, data=body, headers=dict(extra))
            SigV4Auth(Credentials("AKIAEXAMPLE000000000", "wJalr/K7MDENG+bPxRfiCYEXAMPLEKEY"), "ses",
                      region).add_auth(req)
            ours = h.sigv4_headers(method, "127.0.0.1:8080", path, query, body, "AKIAEXAMPLE000000000",
                                   "wJalr/K7MDENG+bPxRfiCYEXAMPLEKEY", region, headers=extra,
                                   amz_date=req.headers["X-Amz-Date"])
            h.check_eq(ours["Authorization"], req.headers["Authorization"], f"{method} {url} in {region}")
            passed += 1
    print(f"{passed} passed, 0 failed")


main()
