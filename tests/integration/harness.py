"""Shared pieces of the integration tests: the binary, temp folders, free ports, sinks.

Everything listens on 127.0.0.1 and every child process is ended when the test ends.
"""
import contextlib
import email
import email.policy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("MAGNETIC_BIN", "build/magnetic")
SOURCE = os.environ.get("MAGNETIC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SMTP_SINK = "/usr/sbin/smtp-sink"
_smtp_sink_pids = {}  # real path of a dump folder -> pid of the smtp-sink writing into it

_children = []
_tempdirs = []


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def check_eq(got, want, what):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")


def corpora():
    env = os.environ.get("MAGNETIC_CORPORA")
    path = env if env else os.path.join(SOURCE, "..", "shared", "corpora")
    return path if os.path.isdir(path) else None


def tempdir():
    """A new folder for this test; cleanup() removes it when the test passed (kept for a look at
    what went wrong otherwise)."""
    d = tempfile.mkdtemp(prefix="magnetic-it-")
    _tempdirs.append(d)
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HeldPort:
    """A port of 127.0.0.1 that this test keeps bound, never listening, until release().

    A port from free_port() is free for anyone until its server binds it: a test running beside
    this one can get it from bind(0), and a connection of ours to it while nothing listens can
    even be given it as its own local port and connect to itself. While a port is held, nothing
    listens there (a connection is refused at once), bind(0) never returns it and no connection
    takes it as its local port. With reuse (SO_REUSEADDR), a server that sets SO_REUSEADDR too
    (smtp-sink, Postfix, `magnetic sink`, the webhook receiver) can bind and listen on it while it
    is held: start the server, wait until it listens, then release. Without reuse nobody can.
    """

    def __init__(self, port=0, reuse=True):
        self.sock = socket.socket()
        if reuse:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]

    def release(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def wait_port(port, timeout=60, process=None):
    """Waits (bounded) until something listens on 127.0.0.1:port; with process, fails as soon as
    that process has exited (its server did not start, whatever else listens there)."""
    end = time.time() + timeout
    while time.time() < end:
        if process is not None and process.poll() is not None:
            fail(f"{process.args[0]} exited {process.returncode} before listening on 127.0.0.1:{port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    fail(f"nothing listens on 127.0.0.1:{port}")


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    _children.append(p)
    return p


def cleanup():
    """Stops every process the test started; removes its folders unless it is failing (called from
    a `finally`, where sys.exc_info() names the exception on its way out)."""
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()
    if sys.exc_info()[0] is None:
        for d in _tempdirs:
            shutil.rmtree(d, ignore_errors=True)
        _tempdirs.clear()


def magnetic(*args, check_rc=None, timeout=300, env=None):
    """Runs the binary; returns (rc, stdout, stderr)."""
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check_rc is not None and p.returncode != check_rc:
        fail(f"magnetic {' '.join(args)} exited {p.returncode}, want {check_rc}\n"
             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p.returncode, p.stdout, p.stderr


def start_sink(maildir=None, extra=(), port=0):
    """Our own capture sink on an ephemeral port (or the one given); returns (process, port)."""
    args = [BIN, "sink", "--listen", f"127.0.0.1:{port}", *extra]
    if maildir:
        args += ["--maildir", maildir]
    p = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    check(line.startswith("listening on "), f"sink did not start: {line!r} {p.stderr.read() if p.poll() is not None else ''}")
    port = int(line.strip().rsplit(":", 1)[1])
    return p, port


def start_smtp_sink(dump_dir):
    """Postfix's smtp-sink, run directly (no Postfix daemon), dumping each message to a file."""
    check(os.path.exists(SMTP_SINK), "smtp-sink is missing (Debian package postfix)")
    # smtp-sink drops root for "nobody", who must be able to write the dumps.
    os.chmod(dump_dir, 0o777)
    parent = os.path.dirname(dump_dir)
    os.chmod(parent, os.stat(parent).st_mode | 0o711)
    # The port is held until smtp-sink listens on it, so that what answers is this smtp-sink.
    held = HeldPort()
    port = held.port
    args = [SMTP_SINK, "-c", "-u", "nobody", "-d", os.path.join(dump_dir, "%H/%M."), f"127.0.0.1:{port}", "256"]
    p = spawn(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, process=p)
    finally:
        held.release()
    _smtp_sink_pids[os.path.realpath(dump_dir)] = p.pid
    return p, port


def maildir_messages(maildir):
    """[(envelope_from, [envelope_to], message bytes)] of every message in a Maildir's new/."""
    out = []
    new = os.path.join(maildir, "new")
    for name in sorted(os.listdir(new)):
        with open(os.path.join(new, name), "rb") as f:
            raw = f.read()
        head, _, _ = raw.partition(b"\r\n\r\n")
        env_from, env_to, body_start = None, [], 0
        lines = raw.split(b"\r\n")
        i = 0
        while i < len(lines) and (lines[i].startswith(b"X-Envelope-From:") or lines[i].startswith(b"X-Envelope-To:")):
            value = lines[i].split(b":", 1)[1].strip().strip(b"<>").decode()
            if lines[i].startswith(b"X-Envelope-From:"):
                env_from = value
            else:
                env_to.append(value)
            body_start += len(lines[i]) + 2
            i += 1
        out.append((env_from, env_to, raw[body_start:]))
    return out


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def write_template(path, subject, text=None, html=None):
    doc = {"Subject": subject}
    if text is not None:
        doc["Text"] = text
    if html is not None:
        doc["Html"] = html
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)


def dkim_verify(raw, txt_records):
    """dkimpy's verdict on a message, with DNS answered from txt_records {name: value}."""
    import dkim

    def dnsfunc(name, timeout=5):
        key = name.decode() if isinstance(name, bytes) else name
        value = txt_records.get(key.rstrip("."))
        return value.encode() if value else None

    return dkim.verify(raw, dnsfunc=dnsfunc)


def keygen(dir, algorithm, selector="s1", domain="example.com"):
    path = os.path.join(dir, f"{algorithm}.pem")
    rc, out, err = magnetic("dkim", "keygen", "--domain", domain, "--selector", selector,
                            "--algorithm", algorithm, "--out", path, check_rc=0)
    # out: 's1._domainkey.example.com. IN TXT "v=DKIM1; ..." ["..."]'
    record = "".join(part for i, part in enumerate(out.split('"')) if i % 2 == 1)
    return path, {f"{selector}._domainkey.{domain}": record}


@contextlib.contextmanager
def test_run():
    try:
        yield
    finally:
        cleanup()


# --- magnetic serve and its clients ---------------------------------------------------------------
#
# The SES v2 API is signed with AWS Signature Version 4. The signer below is written here (and
# checked against the AWS CLI's own in test_serve_sigv4.py) rather than imported, so that the
# tests need no AWS library of their own and can sign requests a library would refuse to make.

AWS_CLI = "/usr/bin/aws"  # Debian's awscli; never another `aws` found on PATH
REGION = "us-east-1"
# The error code for a request whose signature does not match, with HTTP 403: what SES answers
# (x-amzn-ErrorType), what the AWS CLI prints as "An error occurred (SignatureDoesNotMatch) ..."
# and the name of the error the JavaScript SDK throws.
BAD_SIGNATURE = "SignatureDoesNotMatch"


def has_serve():
    """True when the binary has the `serve` and `keys` subcommands (CLI11 lists them in --help)."""
    rc, out, _ = magnetic("--help")
    names = {line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()}
    return rc == 0 and "serve" in names and "keys" in names


def skip_without_serve(what):
    if not has_serve():
        print(f"SKIP: {what}: {BIN} has no `serve`/`keys` subcommand yet")
        print("0 passed, 0 failed, 1 skipped")
        sys.exit(0)


def _serve_log(data):
    return data.rstrip("/") + ".serve.log"


def start_serve(data, routes=(), relay=None, extra=(), timeout=30):
    """`magnetic serve` on ephemeral ports; returns (process, api_port, smtp_port).
    See start_serve_ports for the listeners a configuration adds.
    """
    p, ports = start_serve_ports(data, routes, relay, extra, timeout)
    return p, ports["api"], ports["smtp"]


def start_serve_ports(data, routes=(), relay=None, extra=(), timeout=30, listeners=("api", "smtp")):
    """`magnetic serve` on ephemeral ports; returns (process, {listener: port}).

    routes: [(domain, port)], all on 127.0.0.1. Waits (bounded) for DATA/listen.json, which serve
    writes once both listeners are bound; a listen.json left by an earlier run (one killed with
    SIGKILL cannot remove it) is removed first so that its ports are never read. The output goes to
    DATA.serve.log, appended across restarts and printed when the service dies early.
    """
    os.makedirs(data, exist_ok=True)
    listen = os.path.join(data, "listen.json")
    if os.path.exists(listen):
        os.remove(listen)
    args = [BIN, "serve", "--data", data, "--api-listen", "127.0.0.1:0", "--smtp-listen", "127.0.0.1:0"]
    for domain, port in routes:
        args += ["--route", f"{domain}=127.0.0.1:{port}"]
    if relay is not None:
        args += ["--relay", f"127.0.0.1:{relay}"]
    args += list(extra)
    log = open(_serve_log(data), "ab")
    log.write(("\n$ " + " ".join(args) + "\n").encode())
    log.flush()
    p = spawn(args, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    end = time.time() + timeout
    doc = None
    while time.time() < end:
        if p.poll() is not None:
            fail(f"magnetic serve exited {p.returncode} before writing listen.json:\n{serve_log(data)}")
        try:
            with open(listen) as f:
                doc = json.load(f)
            if all(name in doc for name in listeners):
                break
        except (OSError, ValueError):
            pass  # not written yet, or written in part
        doc = None
        time.sleep(0.02)
    check(doc is not None, f"magnetic serve wrote no listen.json in {timeout} s:\n{serve_log(data)}")
    check_eq(sorted(doc), sorted(listeners), "keys of listen.json")
    ports = {}
    for name in listeners:
        host, _, port = doc[name].rpartition(":")
        check_eq(host, "127.0.0.1", f"listen.json {name} host")
        ports[name] = int(port)
        wait_port(ports[name])
    return p, ports


def serve_log(data):
    try:
        with open(_serve_log(data), "rb") as f:
            return f.read()[-4000:].decode(errors="replace")
    except OSError:
        return "(no log)"


def stop_serve(p, data, timeout=30):
    """SIGTERM, then a bounded wait; a clean stop exits 0."""
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        fail(f"magnetic serve still running {timeout} s after SIGTERM:\n{serve_log(data)}")
    check_eq(rc, 0, f"magnetic serve exit code after SIGTERM\n{serve_log(data)}")


def kill9(p):
    os.kill(p.pid, signal.SIGKILL)
    p.wait()


KEY_FIELDS = ["AccessKeyId", "CreatedAt", "Name", "SecretAccessKey", "SmtpPassword", "SmtpUsername"]


def keys_create(data, name, region=None):
    args = ["keys", "create", "--data", data, "--name", name]
    if region:
        args += ["--region", region]
    _, out, _ = magnetic(*args, check_rc=0)
    try:
        key = json.loads(out)
    except ValueError:
        fail(f"keys create printed no JSON: {out!r}")
    check_eq(sorted(key), KEY_FIELDS, "fields printed by keys create")
    check_eq(key["Name"], name, "Name printed by keys create")
    return key


def ses_smtp_password(secret, region):
    """The SES SMTP password of a secret access key, derived the way AWS documents it: an HMAC-SHA256
    chain over a fixed date, the region, "ses", "aws4_request" and "SendRawEmail", behind version
    byte 4, in base64. Written from the description so that the product's derivation is checked
    against an independent one."""
    import base64
    import hashlib
    import hmac

    sig = ("AWS4" + secret).encode()
    for part in ("11111111", region, "ses", "aws4_request", "SendRawEmail"):
        sig = hmac.new(sig, part.encode(), hashlib.sha256).digest()
    return base64.b64encode(b"\x04" + sig).decode()


def _uri_encode(s, safe):
    import urllib.parse
    return urllib.parse.quote(s, safe=safe)


def encode_path(*segments):
    """A request path from raw segments: /v2/email/templates/a%20b for ("v2", ..., "a b")."""
    return "/" + "/".join(_uri_encode(s, "") for s in segments)


def sigv4_headers(method, host, path, query, body, access_key, secret, region=REGION, service="ses",
                  headers=None, amz_date=None):
    """Headers that sign one request with AWS Signature Version 4 (HMAC-SHA256).

    path: the path as sent, already percent-encoded (see encode_path). query: [(name, value)] as
    raw strings. body: bytes. headers: more headers to send and sign (e.g. Content-Type). Returns
    the full header dict to send, Host, X-Amz-Date and Authorization included. For services other
    than S3 the canonical URI is the sent path encoded once more, as AWS specifies.
    """
    import hashlib
    import hmac

    if amz_date is None:
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    day = amz_date[:8]
    out = {"Host": host, "X-Amz-Date": amz_date}
    out.update(headers or {})
    canon = {}
    for name, value in out.items():
        canon[name.lower()] = " ".join(str(value).split())
    signed = ";".join(sorted(canon))
    canonical_headers = "".join(f"{n}:{canon[n]}\n" for n in sorted(canon))
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(
        (_uri_encode(k, "~"), _uri_encode(v, "~")) for k, v in query))
    canonical_uri = _uri_encode(path, "/~")
    canonical_request = "\n".join([method, canonical_uri, canonical_query, canonical_headers, signed,
                                   hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical_request.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                            f"SignedHeaders={signed}, Signature={signature}")
    return out


class SesResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body
        try:
            self.doc = json.loads(body) if body else {}
        except ValueError:
            self.doc = None

    def error_type(self):
        """The error code as the SDKs read it: x-amzn-ErrorType up to a colon, else the body's."""
        t = self.headers.get("x-amzn-errortype")
        if t:
            return t.split(":", 1)[0]
        if isinstance(self.doc, dict):
            t = self.doc.get("__type") or self.doc.get("code") or ""
            return t.rsplit("#", 1)[-1]
        return ""

    def __repr__(self):
        return f"HTTP {self.status} {self.error_type()} {self.body[:500]!r}"


class SesClient:
    """A minimal SES v2 client over http.client: one request per connection, signed with the key's
    secret (or any secret given, to test refusals)."""

    def __init__(self, port, access_key, secret, region=REGION):
        self.port, self.access_key, self.secret, self.region = port, access_key, secret, region

    def call(self, method, path, doc=None, query=(), timeout=60):
        import http.client
        import urllib.parse

        body = json.dumps(doc).encode() if doc is not None else b""
        host = f"127.0.0.1:{self.port}"
        extra = {"Content-Type": "application/json"} if doc is not None else {}
        headers = sigv4_headers(method, host, path, query, body, self.access_key, self.secret,
                                self.region, headers=extra)
        target = path
        if query:
            target += "?" + "&".join(f"{_uri_encode(k, '~')}={_uri_encode(v, '~')}" for k, v in query)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            r = conn.getresponse()
            return SesResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def ok(self, method, path, doc=None, query=(), what=None):
        """The call, which must answer 200; returns the parsed body."""
        r = self.call(method, path, doc, query)
        check(r.status == 200 and r.doc is not None, f"{what or method + ' ' + path}: {r!r}")
        return r.doc

    def webhook(self, set_name, name, url, types):
        """An enabled webhook event destination `name` of configuration set `set_name`."""
        return self.ok("POST", f"/v2/email/configuration-sets/{set_name}/event-destinations", {
            "EventDestinationName": name,
            "EventDestination": {"Enabled": True, "MatchingEventTypes": types,
                                 "SnsDestination": {"TopicArn": url}}})


def rsa_key(dir, name="dkim"):
    """A fresh RSA 2048 key made with openssl; returns (pem_path, der_base64_of_private_key,
    public_key_base64) — the second is what SES takes as DomainSigningPrivateKey (the PEM body
    without its armor lines), the third the p= of the DKIM TXT record."""
    import base64

    pem = os.path.join(dir, f"{name}.pem")
    subprocess.run(["openssl", "genrsa", "-out", pem, "2048"], check=True, capture_output=True)
    with open(pem) as f:
        body = "".join(line.strip() for line in f if not line.startswith("-----"))
    pub = subprocess.run(["openssl", "rsa", "-in", pem, "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return pem, body, base64.b64encode(pub).decode()


def byodkim_identity(client, domain, selector, dir):
    """Creates a domain identity with a key of our own (BYODKIM); returns the TXT records dkimpy
    needs, {selector._domainkey.domain: "v=DKIM1; k=rsa; p=..."}."""
    _, private_b64, public_b64 = rsa_key(dir, f"{domain}-{selector}")
    doc = client.ok("POST", "/v2/email/identities", {
        "EmailIdentity": domain,
        "DkimSigningAttributes": {"DomainSigningSelector": selector,
                                  "DomainSigningPrivateKey": private_b64}},
        what=f"CreateEmailIdentity {domain}")
    check_eq(doc.get("IdentityType"), "DOMAIN", "CreateEmailIdentity IdentityType")
    return {f"{selector}._domainkey.{domain}": f"v=DKIM1; k=rsa; p={public_b64}"}


_SMTP_SINK_FIELDS = (b"X-Client-Addr:", b"X-Client-Proto:", b"X-Helo-Args:", b"X-Mail-Args:",
                     b"X-Rcpt-Args:")


def smtp_sink_messages(dump_dir):
    """[(envelope_from, [envelope_to], message bytes)] of every transaction smtp-sink has
    finished (see smtp_sink_dumps: a dump still being written is left out).

    smtp-sink writes its own fields (X-Client-Addr ... X-Rcpt-Args) and a Received field of its
    own on top of each message, with LF line ends, and one more LF at the end; all of these are
    removed, so the bytes are the message as sent, with LF for CRLF.
    """
    out = []
    for path in smtp_sink_dumps(dump_dir):
        with open(path, "rb") as f:
            raw = f.read()
        lines = raw.split(b"\n")
        env_from, env_to, i = None, [], 0
        while i < len(lines) and lines[i].startswith(_SMTP_SINK_FIELDS):
            value = lines[i].split(b":", 1)[1].strip()
            value = value.split(b">", 1)[0].lstrip(b"<").decode()
            if lines[i].startswith(b"X-Mail-Args:"):
                env_from = value
            elif lines[i].startswith(b"X-Rcpt-Args:"):
                env_to.append(value)
            i += 1
        if i < len(lines) and lines[i].startswith(b"Received: "):
            i += 1
            while i < len(lines) and lines[i][:1] in (b"\t", b" "):
                i += 1
        msg = b"\n".join(lines[i:])
        if msg.endswith(b"\n\n"):
            msg = msg[:-1]
        out.append((env_from, env_to, msg))
    return out


def smtp_sink_dumps(dump_dir):
    """Paths of the dumps smtp-sink has finished, in folder order.

    smtp-sink creates a transaction's dump at MAIL FROM, writes the message into it as DATA
    arrives and closes it at the final dot, before it replies: a dump it still holds open is a
    transaction in progress (empty or cut short), and is left out. The folder is listed before
    the open files are read, so a dump closed in between is complete and one opened in between is
    not listed. (Needs to read /proc/PID/fd of smtp-sink, which runs as nobody: root can.)
    """
    paths = []
    for root, _, names in os.walk(dump_dir):
        paths += [os.path.join(root, name) for name in sorted(names)]
    pid = _smtp_sink_pids.get(os.path.realpath(dump_dir))
    if pid is None:
        return paths
    busy = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except FileNotFoundError:
        fds = []  # smtp-sink has exited: every dump is closed
    for fd in fds:
        try:
            busy.add(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            pass  # closed meanwhile
    return [p for p in paths if os.path.realpath(p) not in busy]


def smtp_sink_count(dump_dir):
    """How many transactions smtp-sink has finished into dump_dir (see smtp_sink_dumps)."""
    return len(smtp_sink_dumps(dump_dir))


def count_files(dir):
    return sum(len(names) for _, _, names in os.walk(dir)) if os.path.isdir(dir) else 0


def wait_for(fn, what, timeout=60):
    """Calls fn every 0.1 s until it returns something true, and returns that; fails the test
    with `what` after `timeout` seconds (bounded)."""
    end = time.time() + timeout
    while time.time() < end:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    fail(f"timed out waiting for {what}")


def wait_eq(fn, what, timeout=60):
    """fn() returns (got, want): calls it every 0.1 s until got == want, for at most `timeout`
    seconds, then checks the last pair with check_eq (so a mismatch shows both sides)."""
    end = time.time() + timeout
    got, want = fn()
    while got != want and time.time() < end:
        time.sleep(0.1)
        got, want = fn()
    check_eq(got, want, what)
    return got


def wait_count(count_fn, want, timeout, what, settle=1.0):
    """Waits (bounded) until count_fn() reaches want, then `settle` seconds more so that a message
    beyond the expected ones would show; returns the final count (the caller checks it)."""
    end = time.time() + timeout
    n = count_fn()
    while n < want and time.time() < end:
        time.sleep(0.05)
        n = count_fn()
    if n < want:
        fail(f"{what}: {n} of {want} after {timeout} s")
    time.sleep(settle)
    return count_fn()


def jsonl_records(path):
    """The records of a JSON-lines file that another process appends to: [] while it does not
    exist, and a last line not yet ended by its newline is left for the next read."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split(b"\n")[:-1] if line.strip()]


def socket_fds(pid):
    """How many sockets process pid holds open (a server's listener and its connections)."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass  # closed meanwhile
    return n


def connections_to(port):
    """How many TCP connections of this machine to 127.0.0.1:port are established, counted at
    their client end (from /proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            addr, remote_port = fields[2].split(":")
            if int(remote_port, 16) == port and addr == "0100007F" and fields[3] == "01":
                n += 1
    return n


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that takes event POSTs: it keeps every request (headers, body)
    in arrival order, answers 200, and can be started and stopped on the same port (to be "down"
    for a while). Bounded: it serves until stopped, one thread."""

    def __init__(self, port=None, tls=None):
        import threading

        # The port stays this receiver's while it is down (see HeldPort): a connection to it is
        # refused, as to a receiver that is down, and no other server can take it meanwhile.
        self.held = HeldPort(port or 0)
        self.port = self.held.port
        self.tls = tls  # (cert_file, key_file): https
        self.requests = []
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    def start(self):
        import http.server
        import threading

        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.held.release()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
            self.held = HeldPort(self.port)

    def events(self):
        """[(headers, parsed record)] so far."""
        with self.lock:
            return [(hd, json.loads(body)) for hd, body in self.requests]

    def url(self, path="/hook"):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"


def self_signed_cert(dir, name="hook"):
    """A certificate for 127.0.0.1 (subjectAltName IP) and its key, made with openssl: the CA file
    an https client must be given."""
    cert, key = os.path.join(dir, f"{name}-cert.pem"), os.path.join(dir, f"{name}-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                    cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def webhook_signature_ok(headers, body, secret):
    """Whether X-Magnetic-Signature is v1=hex(HMAC-SHA256(secret, timestamp + "." + body))."""
    import hashlib
    import hmac

    ts = headers.get("x-magnetic-timestamp", "")
    want = "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("x-magnetic-signature", ""), want)
