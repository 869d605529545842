"""A private Postfix instance on loopback, for the tests that need a real MTA as the peer.

It is the receiving MTA that fails a recipient after accepting it, the way a real one does:
smtpd takes any recipient of its domain (rcpt.test) at RCPT time, local(8) then finds no such
user and bounces, and Postfix's own bounce daemon writes the DSN to the envelope sender. Mail for
the bounce domain (bounces.test) goes to smtp:[127.0.0.1]:<feedback port>, so that DSN arrives
at the feedback listener under test.

Everything belongs to the instance: config_directory, queue_directory, data_directory and the
log (maillog_file through postlogd) are in one temp folder, master.cf is written here, and
`postfix -c DIR` is the only way it is started or stopped, so the system instance (/etc/postfix,
/var/spool/postfix) is never read for mail, started or touched.

Why it cannot reach anything but loopback:
- smtpd listens on 127.0.0.1:<free port> only, and its client restrictions reject any client
  outside 127.0.0.0/8; relaying is refused for every client (reject_unauth_destination with no
  permit before it), so only rcpt.test is accepted.
- Delivery: the one smtp route is the transport_maps entry to [127.0.0.1]:<feedback port>,
  bound to 127.0.0.1. Every other destination goes to default_transport/relay_transport, set to
  error(8), so it is bounced without a connection. DNS is off (smtp_dns_support_level), the
  client names of peers are not looked up, and biff, .forward, aliases, commands and files are
  off in local(8).
- Local mailboxes: a recipient that is a real system user (root@rcpt.test) is delivered to
  the instance's own mail_spool_directory, so nothing is written to the system's mail spool.

Usage:
    with PostfixPeer() as peer:
        port = peer.start(feedback_port)   # Postfix's smtpd port on 127.0.0.1
        ... send with smtplib to 127.0.0.1:port ...
        peer.flush()                        # postqueue -f: try the deferred mail now
        print(peer.log())
The context manager stops the instance and removes its folder even when the test fails.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
POSTCONF = "/usr/sbin/postconf"

RCPT_DOMAIN = "rcpt.test"        # Postfix is the final destination; unknown users bounce
BOUNCE_DOMAIN = "bounces.test"   # routed to the feedback port given to start()
HOSTNAME = "mta.rcpt.test"       # myhostname: the Reporting-MTA of the DSNs


def available():
    """True when Postfix is installed (the tests skip otherwise)."""
    return os.access(POSTFIX, os.X_OK)


def _held_port():
    """A socket bound to a free port of 127.0.0.1 with SO_REUSEADDR, never listening: while it is
    open no other server gets the port from bind(0) and no connection takes it as its own port,
    and Postfix (which sets SO_REUSEADDR too) can still listen there. Closed once it does."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


# One line per service, as postfix's master.cf reads them: no chroot anywhere (the instance
# has no chroot jail set up) and smtpd on one loopback address.
_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
local     unix  - n n -    - local
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix  - - n 1000? 1 tlsmgr
"""


@contextlib.contextmanager
def _signals_deferred():
    """SIGTERM and SIGINT wait until the block is done, then take their course: one that cut
    the cleanup short would leave a master running on a folder half removed. (A signal mask
    would not do: Python runs its handlers in the main thread whichever thread took the
    signal.) Handlers can only be changed in the main thread; elsewhere nothing is deferred."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    saved = {n: signal.getsignal(n) for n in (signal.SIGTERM, signal.SIGINT)}
    for n in saved:
        signal.signal(n, lambda number, _frame: pending.append(number))
    try:
        yield
    finally:
        for n, handler in saved.items():
            signal.signal(n, handler)
        for n in pending:
            signal.raise_signal(n)


class PostfixPeer:
    """One private Postfix instance. Not thread-safe; start() once, stop() as often as liked."""

    def __init__(self, root=None, keep=False, smtp_tls="none"):
        """root: the instance's folder (a new temp folder by default, removed by the context
        manager unless keep). smtp_tls: smtp_tls_security_level of the delivery to the feedback
        port; "may" makes Postfix use STARTTLS when the listener offers it (unverified)."""
        if smtp_tls not in ("none", "may", "encrypt"):
            raise ValueError(f"smtp_tls must be none, may or encrypt, not {smtp_tls!r}")
        self.root = root or tempfile.mkdtemp(prefix="magnetic-postfix-")
        self.keep = keep  # leave the folder behind (to read the log after a failure)
        self.smtp_tls = smtp_tls
        self.config_dir = os.path.join(self.root, "etc")
        self.queue_dir = os.path.join(self.root, "queue")
        self.data_dir = os.path.join(self.root, "data")
        self.spool_dir = os.path.join(self.root, "mail")
        self.log_file = os.path.join(self.root, "maillog")
        self.smtp_port = None
        self.feedback_port = None
        self._started = False  # start() got as far as "postfix start"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with _signals_deferred():
            self.stop()
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)
        return False

    # --- configuration -------------------------------------------------------------------------

    def main_cf(self):
        """The parameters of main.cf, in the order they are written."""
        return [
            ("compatibility_level", "3.6"),
            ("config_directory", self.config_dir),
            ("queue_directory", self.queue_dir),
            ("data_directory", self.data_dir),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            ("maillog_file", self.log_file),
            ("maillog_file_prefixes", self.root),  # the default allows /var and /dev/stdout
            ("multi_instance_enable", "no"),

            # Identity and the one domain it is final destination for.
            ("myhostname", HOSTNAME),
            ("mydomain", RCPT_DOMAIN),
            ("myorigin", "$myhostname"),
            ("mydestination", RCPT_DOMAIN),
            ("relay_domains", ""),
            ("append_dot_mydomain", "no"),

            # Loopback only, IPv4 only, no DNS.
            ("inet_interfaces", "loopback-only"),
            ("inet_protocols", "ipv4"),
            ("mynetworks", "127.0.0.0/8"),
            ("smtp_bind_address", "127.0.0.1"),
            ("smtp_dns_support_level", "disabled"),
            ("smtp_host_lookup", "native"),
            ("smtpd_peername_lookup", "no"),
            ("smtputf8_enable", "no"),
            ("smtp_tls_security_level", self.smtp_tls),
            ("smtp_tls_loglevel", "1"),  # one line per TLS session, so tests can see it
            ("smtpd_tls_security_level", "none"),

            # Who may connect and what it may send: loopback clients, rcpt.test recipients.
            ("smtpd_client_restrictions", "permit_mynetworks, reject"),
            ("smtpd_relay_restrictions", "reject_unauth_destination"),
            ("smtpd_recipient_restrictions", ""),
            # Any local part is accepted at RCPT time; local(8) decides after the queue.
            ("local_recipient_maps", ""),

            # Routing: the bounce domain to the feedback listener, everything else nowhere.
            ("transport_maps", "texthash:" + os.path.join(self.config_dir, "transport")),
            ("default_transport", "error:5.7.1 outbound delivery is disabled in this test MTA"),
            ("relay_transport", "error:5.7.1 outbound delivery is disabled in this test MTA"),

            # local(8): unknown users bounce with its own "unknown user" path. A recipient that
            # is a real system user gets a mailbox in this folder (mail_spool_directory), never
            # in the system's spool or home; no .forward, no aliases, no commands or files.
            # (mailbox_transport cannot do it: local(8) hands every recipient to it, known or
            # not, so the unknown user path would be lost.)
            ("alias_maps", ""),
            ("alias_database", ""),
            ("forward_path", ""),
            ("allow_mail_to_commands", ""),
            ("allow_mail_to_files", ""),
            ("mail_spool_directory", self.spool_dir),
            ("home_mailbox", ""),
            ("mailbox_command", ""),
            ("biff", "no"),
            ("notify_classes", ""),

            # Short timers: nothing waits for the defaults of minutes and days.
            ("queue_run_delay", "1s"),
            ("minimal_backoff_time", "1s"),
            ("maximal_backoff_time", "2s"),
            ("maximal_queue_lifetime", "10m"),
            ("bounce_queue_lifetime", "10m"),
            ("delay_warning_time", "0h"),
            ("in_flow_delay", "0s"),
            ("smtp_connect_timeout", "5s"),
            ("smtp_helo_timeout", "10s"),
            ("smtp_connection_cache_on_demand", "no"),
        ]

    def _write_config(self):
        for d in (self.config_dir, self.queue_dir, self.data_dir):
            os.makedirs(d, exist_ok=True)
        # The daemons run as the postfix user and must walk into the queue and data folders.
        os.chmod(self.root, 0o755)
        os.chmod(self.config_dir, 0o755)
        shutil.chown(self.data_dir, "postfix", "postfix")
        os.makedirs(self.spool_dir, exist_ok=True)
        os.chmod(self.spool_dir, 0o1777)  # local(8) writes a mailbox as its recipient
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            for name, value in self.main_cf():
                f.write(f"{name} = {value}\n")
        with open(os.path.join(self.config_dir, "master.cf"), "w") as f:
            f.write(_MASTER_CF.format(port=self.smtp_port))
        with open(os.path.join(self.config_dir, "transport"), "w") as f:
            f.write(f"{BOUNCE_DOMAIN} smtp:[127.0.0.1]:{self.feedback_port}\n")

    def _postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", self.config_dir, *args], capture_output=True,
                              text=True, timeout=timeout)

    # --- life cycle ----------------------------------------------------------------------------

    def start(self, feedback_port, smtp_port=None, timeout=30):
        """Starts the instance; returns the port its smtpd listens on (127.0.0.1): smtp_port when
        given (a caller that routes to it before Postfix runs), else a free one.

        Raises RuntimeError with Postfix's own words when the instance does not come up."""
        if self._started:
            raise RuntimeError("the Postfix peer is already started")
        self.feedback_port = int(feedback_port)
        held = None
        if smtp_port:
            self.smtp_port = int(smtp_port)
        else:
            held = _held_port()  # until Postfix listens on it
            self.smtp_port = held.getsockname()[1]
        try:
            return self._start(timeout)
        finally:
            if held is not None:
                held.close()

    def _start(self, timeout):
        self._write_config()

        # "postfix check" creates the missing queue folders with their owners and modes (its
        # post-install create-missing step) and checks the instance. "postfix set-permissions"
        # is not used: it also resets the modes of the system's Postfix programs and of the
        # files in meta_directory (/etc/postfix), which belong to the system instance.
        r = self._postfix("check")
        if r.returncode != 0:
            raise RuntimeError("postfix check failed: " + r.stdout + r.stderr)
        self._started = True
        r = self._postfix("start")
        if r.returncode != 0:
            raise RuntimeError("postfix start failed: " + r.stdout + r.stderr + self.log())

        end = time.time() + timeout
        while time.time() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.smtp_port)) == 0:
                    return self.smtp_port
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Postfix does not listen on 127.0.0.1:{self.smtp_port}: " +
                           self.log())

    def _read_master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def _masters(self):
        """Process ids of this instance's master: the pid file, and any master process whose
        MAIL_CONFIG is this config_directory (one started by an interrupted start(), before its
        pid file was read). Never a process of another instance."""
        pids = set()
        pid = self._read_master_pid()
        if pid is not None and os.path.exists(f"/proc/{pid}"):
            pids.add(pid)
        mine = b"MAIL_CONFIG=" + self.config_dir.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() != "master":
                        continue
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if mine in f.read().split(b"\0"):
                        pids.add(int(entry))
            except OSError:
                continue
        return pids

    def stop(self, timeout=30):
        """Stops the instance: postfix stop; postfix abort, then SIGKILL of its master (by its
        pid) if it does not go. Does nothing when it was not started; may be called again."""
        if not self._started:
            return
        self._started = False
        pids = self._masters()
        if not pids:
            return
        for command in ("stop", "abort"):
            try:
                self._postfix(command, timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            if self._wait_gone(pids, timeout if command == "stop" else 5):
                return
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        self._wait_gone(pids, 5)

    @staticmethod
    def _wait_gone(pids, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if not any(os.path.exists(f"/proc/{pid}") for pid in pids):
                return True
            time.sleep(0.05)
        return False

    # --- while it runs -------------------------------------------------------------------------

    def flush(self):
        """postqueue -f: deliver everything queued now, deferred mail included."""
        return subprocess.run([POSTQUEUE, "-c", self.config_dir, "-f"], capture_output=True,
                              text=True, timeout=60)

    def queue(self):
        """postqueue -p: the queue listing as text."""
        return subprocess.run([POSTQUEUE, "-c", self.config_dir, "-p"], capture_output=True,
                              text=True, timeout=60).stdout

    def log(self):
        """The instance's log so far ("" before anything was logged)."""
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except OSError:
            return ""
