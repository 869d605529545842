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

_children = []


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
    d = tempfile.mkdtemp(prefix="magnetic-it-")
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
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
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()


def magnetic(*args, check_rc=None, timeout=300, env=None):
    """Runs the binary; returns (rc, stdout, stderr)."""
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check_rc is not None and p.returncode != check_rc:
        fail(f"magnetic {' '.join(args)} exited {p.returncode}, want {check_rc}\n"
             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p.returncode, p.stdout, p.stderr


def start_sink(maildir=None, extra=()):
    """Our own capture sink on an ephemeral port; returns (process, port)."""
    args = [BIN, "sink", "--listen", "127.0.0.1:0", *extra]
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
    port = free_port()
    args = [SMTP_SINK, "-c", "-u", "nobody", "-d", os.path.join(dump_dir, "%H/%M."), f"127.0.0.1:{port}", "256"]
    p = spawn(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port(port)
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
