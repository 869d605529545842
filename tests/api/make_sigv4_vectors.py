#!/usr/bin/env python3
"""Prints the SigV4 vectors of sigv4_test.cc, computed by botocore (an independent implementation).

Run with a Python that has botocore: python3 tests/api/make_sigv4_vectors.py
"""
import datetime
from unittest import mock

import botocore.auth
import botocore.credentials
from botocore.awsrequest import AWSRequest

ACCESS_KEY = "AKIAEXAMPLE000000001"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = datetime.datetime(2026, 3, 14, 15, 9, 26, tzinfo=datetime.timezone.utc)

CASES = [
    ("get_identity", "GET", "http://127.0.0.1:8443/v2/email/identities/user%40example.com", {}, b""),
    ("list_suppressed", "GET",
     "http://127.0.0.1:8443/v2/email/suppression/addresses?Reason=COMPLAINT&Reason=BOUNCE&PageSize=10"
     "&NextToken=a%2Bb%3D%3D&StartDate=2026-01-01T00%3A00%3A00Z", {}, b""),
    ("send_email", "POST", "http://localhost:8443/v2/email/outbound-emails",
     {"Content-Type": "application/json", "X-Custom": "  two   spaces  "},
     b'{"Content":{"Simple":{"Subject":{"Data":"Hi"},"Body":{"Text":{"Data":"Hello"}}}},'
     b'"Destination":{"ToAddresses":["to@example.com"]},"FromEmailAddress":"from@example.com"}'),
    ("template_space", "PUT", "http://127.0.0.1:8443/v2/email/templates/my%20template%21",
     {"Content-Type": "application/json"}, b'{"TemplateContent":{"Subject":"x"}}'),
]

with mock.patch.object(botocore.auth, "get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
    for name, method, url, headers, body in CASES:
        req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        signer = botocore.auth.SigV4Auth(
            botocore.credentials.Credentials(ACCESS_KEY, SECRET), "ses", "eu-west-1")
        signer.add_auth(req)
        authorization = req.headers["Authorization"]
        del req.headers["Authorization"]
        print(name)
        print("  canonical:", repr(signer.canonical_request(req)))
        req.headers["Authorization"] = authorization
        print("  x-amz-date:", req.headers["X-Amz-Date"])
        print("  authorization:", req.headers["Authorization"])
