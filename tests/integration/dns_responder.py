"""A tiny authoritative DNS responder for tests, on a UDP port of 127.0.0.1.

It answers MX, A and AAAA questions from a table and NXDOMAIN for names it does not know, so
that `magnetic send` can look up MX records without asking any real DNS server. Written by hand
because no DNS server library is packaged for /usr/bin/python3 here; it speaks only the part of
RFC 1035 that c-ares needs for these questions.
"""
import socket
import struct
import threading

TYPE_A, TYPE_MX, TYPE_AAAA, TYPE_SOA = 1, 15, 28, 6


def _name(n):
    out = b""
    for label in n.rstrip(".").split(".") if n not in (".", "") else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _read_name(data, off):
    labels = []
    while data[off]:
        ln = data[off]
        labels.append(data[off + 1:off + 1 + ln].decode())
        off += 1 + ln
    return ".".join(labels).lower(), off + 1


class Responder:
    """records: {name: {"MX": [(pref, host)], "A": ["127.0.0.1"], "AAAA": [...]}}"""

    def __init__(self, records):
        self.records = {k.lower(): v for k, v in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            try:
                self.sock.sendto(self._answer(data), peer)
            except Exception:  # a malformed question gets no answer
                pass

    def _answer(self, q):
        qid, flags, qd = struct.unpack(">HHH", q[:6])
        name, off = _read_name(q, 12)
        qtype, qclass = struct.unpack(">HH", q[off:off + 4])
        question = q[12:off + 4]
        self.queries.append((name, qtype))
        entry = self.records.get(name)
        answers = []
        if entry is not None:
            if qtype == TYPE_MX:
                for pref, host in entry.get("MX", []):
                    answers.append((TYPE_MX, struct.pack(">H", pref) + _name(host)))
            elif qtype == TYPE_A:
                for a in entry.get("A", []):
                    answers.append((TYPE_A, socket.inet_pton(socket.AF_INET, a)))
            elif qtype == TYPE_AAAA:
                for a in entry.get("AAAA", []):
                    answers.append((TYPE_AAAA, socket.inet_pton(socket.AF_INET6, a)))
        rcode = 0 if entry is not None else 3
        header = struct.pack(">HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
        out = header + question
        for rtype, rdata in answers:
            out += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 300, len(rdata)) + rdata
        return out

    def stop(self):
        self._stop = True
        self.thread.join()
        self.sock.close()
