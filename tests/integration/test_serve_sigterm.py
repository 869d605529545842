"""Regression (sigterm_drops_committed_requests): SIGTERM in the middle of a burst of sends.

Before, the service closed every connection at once: requests whose mail was already committed
got no answer, so a client that retries would send them twice. Now every request the service
committed is answered 200, and what the clients were told matches the spool exactly.
"""
import json
import os
import signal
import sqlite3
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def main():
    work = h.tempdir()
    data = os.path.join(work, "data")
    with h.test_run():
        key = h.keys_create(data, "sigterm")
        conf = os.path.join(work, "s.toml")
        with open(conf, "w") as f:
            f.write("[quota]\nmax_send_rate = 100000\n")
        # Nothing listens on port 9: mail stays in the spool, which is what is counted.
        serve, api_port, _ = h.start_serve(data, routes=[("r.example", 9)], extra=["--config", conf])
        api = h.SesClient(api_port, key["AccessKeyId"], key["SecretAccessKey"])
        api.ok("POST", "/v2/email/identities", {"EmailIdentity": "term.example"})
        answered, unexpected, lock = [], [], threading.Lock()

        def client(k):
            for i in range(400):
                doc = {"FromEmailAddress": "a@term.example",
                       "Destination": {"ToAddresses": [f"c{k}-{i}@r.example"]},
                       "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}}}
                try:
                    r = api.call("POST", "/v2/email/outbound-emails", doc, timeout=30)
                except OSError:
                    return  # the service is gone: no answer, and nothing of this one may be spooled
                if r.status == 200:
                    with lock:
                        answered.append(r.doc["MessageId"])
                elif r.status != 503:
                    # h.fail here would end this thread only; the main thread checks the list.
                    with lock:
                        unexpected.append(r)
                    return

        threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        # The signal comes in the middle of the burst: once some sends are answered (a fixed
        # sleep could end before the first answer on a slow machine, or after the last).
        h.wait_for(lambda: len(answered) >= 100, "100 sends answered before the stop", timeout=120)
        serve.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        rc = serve.wait(60)
        h.check_eq(unexpected, [], "answers other than 200 and 503")
        h.check_eq(rc, 0, "serve exit code after SIGTERM")
        db = sqlite3.connect(os.path.join(data, "spool.db"))
        spooled = {row[0] for row in db.execute("SELECT message_id FROM message")}
        h.check(len(answered) > 0, "some sends were answered before the stop")
        h.check_eq(sorted(spooled), sorted(answered), "messages spooled == messages answered 200")
        print(f"{len(answered)} sends answered 200 before SIGTERM took effect, the same {len(spooled)} in the spool")
    print("1 passed, 0 failed")


main()
