"""`magnetic keys` as an operator runs it: create, list, revoke, and the data directory it keeps.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import stat
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def smtp_password(secret, region):
    # Our own derivation, to compare with the binary's: HMAC-SHA256 chained from "AWS4" + secret.
    key = ("AWS4" + secret).encode()
    for step in ("11111111", region, "ses", "aws4_request", "SendRawEmail"):
        key = hmac.new(key, step.encode(), hashlib.sha256).digest()
    return base64.b64encode(b"\x04" + key).decode()


def main():
    work = h.tempdir()
    data = os.path.join(work, "data")
    with h.test_run():
        try:
            run(work, data)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def run(work, data):
    # create: one JSON object, with the fields in this order.
    rc, out, err = h.magnetic("keys", "create", "--data", data, "--name", "ci", check_rc=0)
    first = json.loads(out)
    h.check_eq(list(first), ["AccessKeyId", "SecretAccessKey", "SmtpUsername", "SmtpPassword",
                             "Name", "CreatedAt"], "create fields")
    h.check(re.fullmatch(r"AKIA[A-Z2-7]{16}", first["AccessKeyId"]), f"id {first['AccessKeyId']!r}")
    h.check(re.fullmatch(r"[A-Za-z0-9/+]{40}", first["SecretAccessKey"]), "secret shape")
    h.check_eq(first["SmtpUsername"], first["AccessKeyId"], "SMTP user name")
    h.check_eq(first["SmtpPassword"], smtp_password(first["SecretAccessKey"], "us-east-1"),
               "SMTP password for us-east-1")
    h.check_eq(first["Name"], "ci", "name")
    h.check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["CreatedAt"]), "CreatedAt")
    h.check_eq(stat.S_IMODE(os.stat(data).st_mode), 0o700, "data directory mode")
    h.check_eq(stat.S_IMODE(os.stat(os.path.join(data, "master.key")).st_mode), 0o600, "key mode")
    h.check_eq(os.path.getsize(os.path.join(data, "master.key")), 32, "key size")

    rc, out, err = h.magnetic("keys", "create", "--data", data, "--region", "eu-west-1", check_rc=0)
    second = json.loads(out)
    h.check_eq(second["SmtpPassword"], smtp_password(second["SecretAccessKey"], "eu-west-1"),
               "SMTP password for eu-west-1")
    h.check_eq(second["Name"], "", "no name")
    print("create: AWS-shaped id and secret, SMTP password per region, owner-only files")

    # The secrets are sealed: neither is in the database file.
    raw = open(os.path.join(data, "metadata.db"), "rb").read()
    h.check(first["AccessKeyId"].encode() in raw, "the id is in the database")
    for k in (first, second):
        h.check(k["SecretAccessKey"].encode() not in raw, "a secret in the clear in the database")

    # list: no secrets, creation order, active flags.
    rc, out, err = h.magnetic("keys", "list", "--data", data, check_rc=0)
    listed = json.loads(out)
    h.check_eq([list(k) for k in listed], [["AccessKeyId", "Name", "CreatedAt", "Active"]] * 2,
               "list fields")
    h.check_eq([k["AccessKeyId"] for k in listed], [first["AccessKeyId"], second["AccessKeyId"]],
               "list order")
    h.check_eq([k["Active"] for k in listed], [True, True], "active before revoke")
    h.check(first["SecretAccessKey"] not in out, "list prints no secret")

    # revoke, then list again; an unknown key exits 1 and says so.
    h.magnetic("keys", "revoke", "--data", data, first["AccessKeyId"], check_rc=0)
    rc, out, err = h.magnetic("keys", "list", "--data", data, check_rc=0)
    h.check_eq([k["Active"] for k in json.loads(out)], [False, True], "active after revoke")
    rc, out, err = h.magnetic("keys", "revoke", "--data", data, "AKIAUNKNOWNUNKNOWN22")
    h.check_eq(rc, 1, "revoke of an unknown key")
    h.check_eq(err, "magnetic keys revoke: Access key 'AKIAUNKNOWNUNKNOWN22' does not exist\n",
               "revoke error")
    print("list and revoke: no secrets listed, revoked key inactive, unknown key exits 1")

    # --data defaults to ./magnetic-data.
    cwd = os.path.join(work, "cwd")
    os.mkdir(cwd)
    p = h.subprocess.run([os.path.abspath(h.BIN), "keys", "list"], cwd=cwd, capture_output=True,
                         text=True, timeout=60)
    h.check_eq((p.returncode, json.loads(p.stdout)), (0, []), "list in a new default directory")
    h.check(os.path.isfile(os.path.join(cwd, "magnetic-data", "metadata.db")), "default --data")

    # Usage errors exit 2.
    for args in (("keys",), ("keys", "revoke", "--data", data),
                 ("keys", "create", "--data", data, "--region", "US-East-1")):
        rc, out, err = h.magnetic(*args)
        h.check_eq(rc, 2, f"usage error {args}")

    # A master key others can read is refused, naming the file and its mode.
    key = os.path.join(data, "master.key")
    os.chmod(key, 0o644)
    rc, out, err = h.magnetic("keys", "list", "--data", data)
    h.check_eq(rc, 1, "list with a readable master key")
    h.check_eq(err, f"magnetic keys list: master key '{data}/master.key' is accessible by group "
                    "or others (mode 0644); make it owner-only with chmod 600\n", "refusal")
    print("defaults, usage errors exit 2, a readable master key is refused")


if __name__ == "__main__":
    main()
