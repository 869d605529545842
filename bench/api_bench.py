#!/usr/bin/env python3
"""Load generator for bench/api_bench.sh: concurrent signed SendBulkEmail calls against the SES v2
API of `magnetic serve`, from asyncio clients on persistent HTTP/1.1 connections.

  api_bench.py setup --api PORT --key-id ID --secret S          identity + template for a run
  api_bench.py load --api PORT --key-id ID --secret S [--clients 32] [--requests 2000]
               [--entries 50] [--max-seconds 120] [--sink-counter FILE --sink-timeout 300]
  api_bench.py stub --port-file FILE [--max-seconds 60]           a stand-in API that only answers
  api_bench.py selftest [--clients 32] [--requests 4000]         the generator against the stub

Requests are signed with the SigV4 signer of tests/integration/harness.py. Every run is bounded by
its request count and by --max-seconds; the stub stops by itself too. `load` prints one JSON
object: requests, errors by kind, entries accepted, requests/s, entries accepted/s, latency p50
and p99, and with --sink-counter (the stdout of `smtp-sink -c`) the time until the sink had every
accepted message and the end-to-end delivery rate.
"""
import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import harness as h  # noqa: E402  (the signer)

FROM = "Bench <bench@bench.example>"
TEMPLATE = {
    "Subject": "Your {{plan}} summary, {{first_name}}",
    "Text": "Hello {{first_name}} {{last_name}},\n\nHere is your summary for {{month}}. You are on the "
            "{{plan}} plan.\nThis paragraph pads the message to the size of a short newsletter: lorem "
            "ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n",
    "Html": "<html><body><h1>Hello {{first_name}}</h1><p>Your summary for {{month}}: plan <b>{{plan}}</b>."
            "</p><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p></body></html>",
}
DOMAINS = 20


def bulk_body(req, entries):
    return json.dumps({
        "FromEmailAddress": FROM,
        "DefaultContent": {"Template": {"TemplateName": "bench", "TemplateData": "{}"}},
        "BulkEmailEntries": [{
            "Destination": {"ToAddresses": [f"r{req}x{j}@d{(req * entries + j) % DOMAINS}.example"]},
            "ReplacementEmailContent": {"ReplacementTemplate": {"ReplacementTemplateData": json.dumps(
                {"first_name": f"First{j}", "last_name": f"Last{req}", "month": "December", "plan": "pro"})}},
        } for j in range(entries)],
    }).encode()


class Connection:
    """One persistent HTTP/1.1 connection; reopened when the server closes it."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def request(self, method, path, body, headers):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed before the reply")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.lower() == "close":
                close = True
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                data += await self.reader.readexactly(size)
                await self.reader.readline()
        else:
            data = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, data

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def sink_count(path):
    """The last counter smtp-sink -c wrote ("sess=N quit=N mesg=N", each ended by CR)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200))
            tail = f.read()
    except OSError:
        return 0
    found = re.findall(rb"mesg=(\d+)", tail)
    return int(found[-1]) if found else 0


async def load(args):
    path = "/v2/email/outbound-bulk-emails"
    host = f"127.0.0.1:{args.api}"
    next_req = 0
    latencies, errors = [], {}
    accepted = 0
    start = time.monotonic()
    deadline = start + args.max_seconds

    async def client():
        nonlocal next_req, accepted
        conn = Connection(args.api)
        while next_req < args.requests and time.monotonic() < deadline:
            req = next_req
            next_req += 1
            due = None
            if args.rate:
                # Open loop: request req is due at a fixed time whatever the answers before it
                # took, and its latency counts from then (no coordinated omission).
                due = start + req * args.entries / args.rate
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            body = bulk_body(req, args.entries)
            headers = h.sigv4_headers("POST", host, path, [], body, args.key_id, args.secret,
                                      headers={"Content-Type": "application/json"})
            t0 = time.monotonic()
            try:
                status, data = await conn.request("POST", path, body, headers)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                conn.close()
                continue
            latencies.append(time.monotonic() - (t0 if due is None or due > t0 else due))
            if status != 200:
                errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
                continue
            for r in json.loads(data)["BulkEmailEntryResults"]:
                if r.get("Status") == "SUCCESS":
                    accepted += 1
                else:
                    errors[r.get("Status", "?")] = errors.get(r.get("Status", "?"), 0) + 1
        conn.close()

    await asyncio.gather(*(client() for _ in range(args.clients)))
    elapsed = time.monotonic() - start
    delivered_when_sent = sink_count(args.sink_counter) if args.sink_counter else None
    lat = sorted(latencies)
    out = {
        "clients": args.clients, "requests": len(latencies), "entries_per_request": args.entries,
        "errors": errors, "entries_accepted": accepted, "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "entries_accepted_per_s": round(accepted / elapsed, 1),
        "latency_p50_ms": round(1000 * statistics.median(lat), 2) if lat else None,
        "latency_p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2) if lat else None,
        "offered_entries_per_s": args.rate,
    }
    if delivered_when_sent is not None:
        # Accepted and not yet delivered when the clients stopped: what the spool held.
        out["backlog_when_sent"] = accepted - delivered_when_sent
    if args.sink_counter:
        end = time.monotonic() + args.sink_timeout
        n = sink_count(args.sink_counter)
        while n < accepted and time.monotonic() < end:
            await asyncio.sleep(0.05)
            n = sink_count(args.sink_counter)
        total = time.monotonic() - start
        out.update({"delivered": n, "delivered_all": n >= accepted, "end_to_end_seconds": round(total, 3),
                    "delivered_per_s": round(n / total, 1)})
    print(json.dumps(out))


def setup(args):
    api = h.SesClient(args.api, args.key_id, args.secret)
    if args.dkim == "ed25519":
        # BYODKIM with an Ed25519 key (RFC 8463), which the service signs with too.
        pem = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519"], check=True,
                             capture_output=True, text=True).stdout
        api.ok("POST", "/v2/email/identities", {
            "EmailIdentity": "bench.example",
            "DkimSigningAttributes": {"DomainSigningSelector": "bench", "DomainSigningPrivateKey": pem}})
    else:
        # A domain identity with a key the service makes (RSA 2048, the SES default).
        api.ok("POST", "/v2/email/identities", {"EmailIdentity": "bench.example"})
    api.ok("POST", "/v2/email/templates", {"TemplateName": "bench", "TemplateContent": TEMPLATE})
    dkim = api.ok("GET", "/v2/email/identities/bench.example")["DkimAttributes"]
    print(f"identity bench.example: DKIM {dkim.get('SigningAttributesOrigin')} "
          f"{dkim.get('CurrentSigningKeyLength')}, signing {dkim.get('SigningEnabled')}")


async def stub(args):
    """Answers every request with a 200 and 50 SUCCESS entries, as fast as asyncio can."""
    reply = json.dumps({"BulkEmailEntryResults": [{"Status": "SUCCESS", "MessageId": f"m{i}"}
                                                  for i in range(50)]}).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(reply)}\r\n\r\n".encode()

    async def serve(reader, writer):
        try:
            while True:
                length = 0
                line = await reader.readline()
                if not line:
                    break
                while line not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    line = await reader.readline()
                await reader.readexactly(length)
                writer.write(head + reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(args.port_file + ".tmp", args.port_file)
    await asyncio.sleep(args.max_seconds)
    server.close()


def selftest(args):
    import tempfile
    port_file = os.path.join(tempfile.mkdtemp(prefix="magnetic-bench-"), "port")
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "stub", "--port-file", port_file,
                          "--max-seconds", str(args.max_seconds + 5)])
    try:
        end = time.time() + 10
        while not os.path.exists(port_file) and time.time() < end:
            time.sleep(0.02)
        args.api = int(open(port_file).read())
        args.key_id, args.secret, args.sink_counter = "AKIABENCHSTUB0000000", "stub-secret", None
        asyncio.run(load(args))
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("setup", "load", "stub", "selftest"):
        s = sub.add_parser(name)
        if name == "setup":
            s.add_argument("--dkim", choices=("rsa", "ed25519"), default="rsa")
        if name in ("setup", "load"):
            s.add_argument("--api", type=int, required=True)
            s.add_argument("--key-id", required=True)
            s.add_argument("--secret", required=True)
        if name in ("load", "selftest"):
            s.add_argument("--clients", type=int, default=32)
            s.add_argument("--requests", type=int, default=2000 if name == "load" else 4000)
            s.add_argument("--entries", type=int, default=50)
            s.add_argument("--rate", type=float, default=0,
                           help="offered entries/s, open loop (0: each client sends as fast as it can)")
        if name in ("load", "selftest", "stub"):
            s.add_argument("--max-seconds", type=float, default=120 if name != "stub" else 60)
        if name == "load":
            s.add_argument("--sink-counter")
            s.add_argument("--sink-timeout", type=float, default=300)
        if name == "stub":
            s.add_argument("--port-file", required=True)
    args = ap.parse_args()
    if args.cmd == "setup":
        setup(args)
    elif args.cmd == "load":
        asyncio.run(load(args))
    elif args.cmd == "stub":
        asyncio.run(stub(args))
    else:
        selftest(args)


main()
