"""Syslog listeners driven by real senders: util-linux `logger` over UDP, TCP and TCP with
octet counting, and Debian's rsyslogd forwarding RFC 5424 with octet-counted framing over TCP
and over TLS. Everything is checked through search, as a user would see it."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

from test_live_server import Server, VIGIL


def port(address):
    return int(address.rsplit(":", 1)[1])


def admin_search(server, query, tenant="default"):
    body = {"query": query, "from": "-2h", "to": "now", "limit": 1000, "tenant": tenant}
    r = requests.post(server.url + "/api/v1/search", json=body, headers={"Authorization": "Bearer " + server.admin})
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(server, query, total, tenant="default"):
    deadline = time.monotonic() + 30
    result = None
    while time.monotonic() < deadline:  # polling until stored, not a timed wait
        result = admin_search(server, query, tenant)
        if result["total"] >= total:
            return result
        time.sleep(0.05)
    raise AssertionError(f"expected {total} events for {query!r} in {tenant}, got {result and result['total']}")


def metric(server, name):
    text = requests.get(server.url + "/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as data_dir:
        s = Server(data_dir, extra=("--syslog-max-frame-bytes", "2048", "--syslog-idle-timeout-secs", "1"))
        yield s
        assert s.stop() == 0


def logger_send(args, message):
    subprocess.run(["logger", *args, message], check=True, timeout=30)


def test_logger_udp_tcp_and_octet_counting_are_searchable(server):
    nonce = uuid.uuid4().hex[:12]
    udp, tcp = port(server.addresses["syslog_udp"]), port(server.addresses["syslog_tcp"])
    logger_send(["-n", "127.0.0.1", "-P", str(udp), "-d", "-t", "sshd"], f"udp{nonce} Failed password for root")
    logger_send(["-n", "127.0.0.1", "-P", str(tcp), "-T", "-t", "sshd"], f"tcp{nonce} Failed password for root")
    logger_send(["-n", "127.0.0.1", "-P", str(tcp), "-T", "--octet-count", "-t", "sshd"], f"oct{nonce} Failed password for root")
    logger_send(["-n", "127.0.0.1", "-P", str(tcp), "-T", "--rfc3164", "-t", "sshd"], f"bsd{nonce} Failed password for root")
    for prefix in ("udp", "tcp", "oct", "bsd"):
        events = wait_for(server, f"{prefix}{nonce}", 1)["events"]
        assert len(events) == 1, prefix
        assert f"{prefix}{nonce}" in events[0]["message"]
        assert events[0]["vigil"]["tenant"] == "default"


def test_many_frames_in_one_connection_arrive_once_each(server):
    nonce = uuid.uuid4().hex[:12]
    stamp = time.strftime("%b %d %H:%M:%S", time.gmtime())
    lines = [f"<13>{stamp} host app: bulk{nonce} n{i}" for i in range(2000)]
    payload = "".join(f"{len(l.encode())} {l}" if i % 2 else l + "\n" for i, l in enumerate(lines)).encode()
    with socket.create_connection(("127.0.0.1", port(server.addresses["syslog_tcp"]))) as s:
        s.sendall(payload)
    result = wait_for(server, f"bulk{nonce}", 2000)
    assert result["total"] == 2000


def test_oversize_frame_is_dropped_and_counted_and_the_next_frame_arrives(server):
    nonce = uuid.uuid4().hex[:12]
    before = metric(server, 'vigil_syslog_dropped_total{reason="oversize"}')
    with socket.create_connection(("127.0.0.1", port(server.addresses["syslog_tcp"]))) as s:
        s.sendall(b"<13>" + b"x" * 5000 + b"\n" + f"<13>after{nonce}\n".encode())
    wait_for(server, f"after{nonce}", 1)
    assert metric(server, 'vigil_syslog_dropped_total{reason="oversize"}') == before + 1


def test_silent_connection_is_closed_after_the_idle_timeout(server):
    with socket.create_connection(("127.0.0.1", port(server.addresses["syslog_tcp"]))) as s:
        s.settimeout(30)
        assert s.recv(1) == b""  # the server closed it
    assert metric(server, 'vigil_syslog_connections_closed_total{reason="idle_timeout"}') >= 1


def test_sender_map_routes_a_sender_to_its_tenant():
    with tempfile.TemporaryDirectory() as data_dir:
        first = Server(data_dir)
        name, key = first.named_tenant()
        assert first.stop() == 0
        server = Server(data_dir, admin=first.admin, extra=("--syslog-sender-tenants", f"127.0.0.0/8={name}"))
        try:
            nonce = uuid.uuid4().hex[:12]
            logger_send(["-n", "127.0.0.1", "-P", str(port(server.addresses["syslog_tcp"])), "-T"], f"mapped{nonce}")
            assert wait_for(server, f"mapped{nonce}", 1, tenant=name)["total"] == 1
            assert server.search(key, f"mapped{nonce}")["total"] == 1
            assert admin_search(server, f"mapped{nonce}")["total"] == 0
        finally:
            assert server.stop() == 0


def test_unknown_tenant_in_the_sender_map_refuses_to_start():
    with tempfile.TemporaryDirectory() as data_dir:
        proc = subprocess.run([VIGIL, "serve", "--data-dir", data_dir, "--http-address", "127.0.0.1:0",
                               "--syslog-tcp-address", "127.0.0.1:0", "--syslog-udp-address", "127.0.0.1:0",
                               "--syslog-sender-tenants", "10.0.0.0/8=nosuch"], capture_output=True, timeout=60)
        assert proc.returncode == 2
        assert b"syslog tenant 'nosuch' does not exist" in proc.stderr


RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"


class Rsyslog:
    """rsyslogd in the foreground with its own config: an imtcp input on a free port, and one
    omfwd action forwarding RFC 5424 with octet-counted framing to Vigil."""

    def __init__(self, workdir, forward):
        self.workdir = workdir
        os.makedirs(os.path.join(workdir, "spool"), exist_ok=True)
        self.port_file = os.path.join(workdir, "port")
        conf = os.path.join(workdir, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write(f'''global(workDirectory="{workdir}/spool" {forward.get("global", "")})
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{self.port_file}")
action(type="omfwd" target="127.0.0.1" port="{forward["port"]}" protocol="tcp" TCP_Framing="octet-counted"
       template="RSYSLOG_SyslogProtocol23Format" {forward.get("action", "")})
''')
        check = subprocess.run([RSYSLOGD, "-N1", "-f", conf], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr + check.stdout
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", conf, "-i", os.path.join(workdir, "pid")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # readiness polling
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            if os.path.exists(self.port_file) and open(self.port_file).read().strip():
                self.port = int(open(self.port_file).read().strip())
                return
            time.sleep(0.05)
        raise AssertionError("rsyslogd did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.mark.skipif(not os.path.exists(RSYSLOGD), reason="rsyslogd is not installed (scripts/install-deps.sh --test installs it)")
def test_rsyslog_forwards_octet_counted_rfc5424_over_tcp(server):
    with tempfile.TemporaryDirectory() as workdir:
        relay = Rsyslog(workdir, {"port": port(server.addresses["syslog_tcp"])})
        try:
            nonce = uuid.uuid4().hex[:12]
            for i in range(20):
                logger_send(["-n", "127.0.0.1", "-P", str(relay.port), "-T", "-t", "relay"], f"rsyslog{nonce} line {i}")
            result = wait_for(server, f"rsyslog{nonce}", 20)
            assert result["total"] == 20
            assert all(e["message"].startswith("<13>1 ") for e in result["events"]), result["events"][0]["message"]
        finally:
            relay.stop()


def make_certificate(directory):
    key, cert = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.skipif(not os.path.exists(RSYSLOGD), reason="rsyslogd is not installed")
def test_rsyslog_forwards_over_tls():
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as workdir:
        cert, key = make_certificate(workdir)
        server = Server(data_dir, extra=("--syslog-tls-address", "127.0.0.1:0", "--syslog-tls-cert", cert, "--syslog-tls-key", key))
        relay = None
        try:
            tls = port(server.addresses["syslog_tls"])
            relay = Rsyslog(workdir, {
                "port": tls,
                "global": f'DefaultNetstreamDriverCAFile="{cert}"',
                "action": 'StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"',
            })
            nonce = uuid.uuid4().hex[:12]
            for i in range(5):
                logger_send(["-n", "127.0.0.1", "-P", str(relay.port), "-T", "-t", "relay"], f"tls{nonce} line {i}")
            assert wait_for(server, f"tls{nonce}", 5)["total"] == 5
            # Plain text on the TLS port fails the handshake: the server closes the connection.
            with socket.create_connection(("127.0.0.1", tls)) as s:
                s.settimeout(30)
                s.sendall(f"<13>plaintext{nonce}\n".encode())
                try:
                    closed = s.recv(4096) == b"" or s.recv(4096) == b""
                except ConnectionResetError:
                    closed = True
                assert closed
        finally:
            if relay:
                relay.stop()
            assert server.stop() == 0


def test_udp_datagrams_the_kernel_drops_are_counted_and_every_one_read_is_stored(server):
    """A UDP sender faster than the server loses datagrams in the kernel, before Vigil reads
    them; the listener counts them from the kernel's own count for its socket, so sent =
    read + dropped, and everything read is stored."""
    nonce = uuid.uuid4().hex[:8]
    udp = port(server.addresses["syslog_udp"])
    names = ["vigil_syslog_frames_total{transport=\"udp\"}", "vigil_syslog_dropped_total{reason=\"receive_buffer\"}",
             "vigil_syslog_dropped_total{reason=\"queue_full\"}"]
    before = [metric(server, name) for name in names]
    sent = 100_000
    padding = "p" * 900  # 100 MB in about a second: more than any receive buffer the kernel grants here
    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(sent):
            s.sendto(f"<13>{stamp} host-{i % 7} app[1]: udpflood{nonce} {i} {padding}".encode(), ("127.0.0.1", udp))
    deadline = time.monotonic() + 60
    while True:  # the drop count is read once a second: poll until the books balance
        read, dropped, queue_full = (metric(server, name) - b for name, b in zip(names, before))
        if read + dropped + queue_full == sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert read + dropped + queue_full == sent, (read, dropped, queue_full)
    assert dropped > 0
    deadline = time.monotonic() + 60
    while True:  # stored asynchronously
        stored = admin_search(server, f"udpflood{nonce} | stats count()")["rows"][0][0]
        if stored >= read or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stored == read
