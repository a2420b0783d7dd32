"""Detection on a live server: rules through the API, alerts exactly once, status changes,
coverage, refusals with reasons, and a webhook receiver that is down for a while and then
gets every alert once with a valid HMAC-SHA256 signature."""

import hashlib
import hmac
import json
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from test_live_server import Server

SECRET = "webhook-secret-" + uuid.uuid4().hex[:8]


class Receiver:
    """A webhook receiver on port 0 that answers 503 while `down` is set."""

    def __init__(self):
        self.down = True
        self.received = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.down:
                    receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append((self.headers.get("X-Vigil-Signature"), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def server(receiver):
    with tempfile.TemporaryDirectory() as data_dir:
        s = Server(data_dir, extra=("--detection-lag-secs", "1", "--detection-interval-secs", "1",
                                    "--webhook-url", receiver.url, "--webhook-secret", SECRET))
        yield s
        assert s.stop() == 0


def auth(key):
    return {"Authorization": "Bearer " + key}


def ingest(server, key, lines):
    r = requests.post(server.url + "/api/v1/ingest", data="\n".join(json.dumps(l) for l in lines) + "\n", headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json()


def wait_alerts(server, key, rule_id, count):
    deadline = time.monotonic() + 60
    alerts = []
    while time.monotonic() < deadline:  # polling until the scheduler has evaluated
        r = requests.get(server.url + f"/api/v1/alerts?rule_id={rule_id}", headers=auth(key))
        assert r.status_code == 200, r.text
        alerts = r.json()["alerts"]
        if len(alerts) >= count:
            return alerts
        time.sleep(0.1)
    raise AssertionError(f"expected {count} alerts for {rule_id}, got {len(alerts)}")


def list_alerts(server, key, rule_id):
    r = requests.get(server.url + f"/api/v1/alerts?rule_id={rule_id}", headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json()["alerts"]


def alert_from_the_pipeline(server, key, rule_id, doc):
    """Ingests one matching event per request until the rule alerts (it is adopted on a
    scheduler tick): long before its first window can close with the default 120 s lag.
    Returns how many alerts there are and how many events were sent."""
    started = time.monotonic()
    n = 0
    while not list_alerts(server, key, rule_id):
        assert time.monotonic() - started < 60, "no alert from the pipeline after 60 s"
        ingest(server, key, [doc(n)])
        n += 1
        time.sleep(0.2)  # polling: the rule is adopted on a tick, the pipeline stores the batch
    assert time.monotonic() - started < 100, "alerted before any window of the rule could close"
    found = len(list_alerts(server, key, rule_id))
    assert 1 <= found <= n
    return found, n


def one_more_alert_from_the_pipeline(server, key, rule_id, found):
    """After one more matching event (and some that do not match): exactly one more alert,
    each for its own event, and no scheduled window closed yet (they came from the pipeline)."""
    deadline = time.monotonic() + 30
    while len(list_alerts(server, key, rule_id)) < found + 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    listed = list_alerts(server, key, rule_id)
    assert len(listed) == found + 1
    assert len({a["event_ids"][0] for a in listed}) == len(listed)
    cov = requests.get(server.url + f"/api/v1/rules/{rule_id}/coverage", headers=auth(key)).json()
    assert cov["covered"] == [], cov
    return listed


def test_threshold_rule_alerts_once_per_group_and_status_changes(server):
    name, key = server.named_tenant()
    nonce = uuid.uuid4().hex[:10]
    rule = f"""
id: brute-{nonce}
query: 'event.outcome:failure AND {nonce}'
severity: high
threshold: {{count: 3, window: 10s, group_by: [source.ip]}}
"""
    r = requests.post(server.url + "/api/v1/rules", data=rule, headers=auth(key))
    assert r.status_code == 201, r.text
    assert r.json()["id"] == f"brute-{nonce}"
    ingest(server, key, [{"message": f"{nonce} failed {i}", "event.outcome": "failure", "source.ip": ip}
                         for i, ip in enumerate(["10.0.0.1"] * 4 + ["10.0.0.2"] * 2)])
    alerts = wait_alerts(server, key, f"brute-{nonce}", 1)
    # Let a few more windows pass: the count stays exact.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        cov = requests.get(server.url + f"/api/v1/rules/brute-{nonce}/coverage", headers=auth(key)).json()
        if cov["covered"] and cov["covered"][0]["to"] > alerts[0]["created"]:
            break
        time.sleep(0.2)
    alerts = wait_alerts(server, key, f"brute-{nonce}", 1)
    assert len(alerts) == 1, alerts
    assert alerts[0]["group"] == {"source.ip": "10.0.0.1"}
    assert len(alerts[0]["event_ids"]) == 4
    assert alerts[0]["status"] == "open"
    r = requests.patch(server.url + f"/api/v1/alerts/{alerts[0]['id']}", json={"status": "acknowledged"}, headers=auth(key))
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    r = requests.get(server.url + "/api/v1/alerts?status=acknowledged", headers=auth(key))
    assert [a["id"] for a in r.json()["alerts"]] == [alerts[0]["id"]]
    cov = requests.get(server.url + f"/api/v1/rules/brute-{nonce}/coverage", headers=auth(key)).json()
    assert cov["gaps"] == [] and len(cov["covered"]) == 1
    assert cov["lag_ms"] >= 1000


def test_rules_are_refused_with_the_reason_and_stay_per_tenant(server):
    _, key = server.named_tenant()
    _, other = server.named_tenant()
    cases = [
        ("id: Bad_Id\nquery: '*'\n", "invalid_id"),
        ("id: ok-rule\n", "missing_query"),
        ("id: ok-rule\nquery: 'a AND ('\n", "query_syntax"),
        ("id: ok-rule\nquery: '* | stats count()'\n", "query_stages"),
        ("id: ok-rule\nquery: '*'\nseverity: urgent\n", "invalid_severity"),
        ("id: ok-rule\nquery: '*'\nthreshold: {count: 0, window: 5m}\n", "invalid_threshold"),
        ("id: [unterminated\n", "yaml_syntax"),
    ]
    for body, code in cases:
        r = requests.post(server.url + "/api/v1/rules", data=body, headers=auth(key))
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert r.json()["error"]["code"] == code, (body, r.text)
    r = requests.post(server.url + "/api/v1/rules", data="id: mine\nquery: 'x'\n", headers=auth(key))
    assert r.status_code == 201
    assert [x["id"] for x in requests.get(server.url + "/api/v1/rules", headers=auth(key)).json()["rules"]] == ["mine"]
    assert requests.get(server.url + "/api/v1/rules", headers=auth(other)).json()["rules"] == []
    assert requests.get(server.url + "/api/v1/rules/mine/coverage", headers=auth(other)).status_code == 404
    assert requests.get(server.url + "/api/v1/rules?tenant=someone-else", headers=auth(key)).status_code == 403
    assert requests.get(server.url + "/api/v1/rules", headers=auth("wrong")).status_code == 401


def test_webhook_gets_each_alert_once_with_a_valid_signature_after_being_down(server, receiver):
    _, key = server.named_tenant()
    nonce = uuid.uuid4().hex[:10]
    r = requests.post(server.url + "/api/v1/rules", data=f"id: hook-{nonce}\nquery: '{nonce}'\nseverity: low\n", headers=auth(key))
    assert r.status_code == 201
    ingest(server, key, [{"message": f"{nonce} event {i}"} for i in range(3)])
    alerts = wait_alerts(server, key, f"hook-{nonce}", 3)
    deadline = time.monotonic() + 30
    while receiver.refused < 2 and time.monotonic() < deadline:  # the receiver is down and refuses retries
        time.sleep(0.1)
    assert receiver.refused >= 2
    receiver.down = False
    deadline = time.monotonic() + 60
    mine = []
    while time.monotonic() < deadline:  # polling for delivery after the backoff
        mine = [json.loads(body) for _, body in receiver.received if json.loads(body)["rule_id"] == f"hook-{nonce}"]
        if len(mine) >= 3:
            break
        time.sleep(0.2)
    assert sorted(a["id"] for a in mine) == sorted(a["id"] for a in alerts)
    for signature, body in receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, expected)
    # Delivered once: nothing more arrives for them.
    count = len(receiver.received)
    ingest(server, key, [{"message": f"{nonce} one more"}])
    wait_alerts(server, key, f"hook-{nonce}", 4)
    deadline = time.monotonic() + 30
    while len(receiver.received) < count + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    ids = [json.loads(body)["id"] for _, body in receiver.received]
    assert len(ids) == len(set(ids))


def test_sshd_failures_over_syslog_raise_the_brute_force_alert(server):
    """logger → syslog TCP → Linux auth pack → native threshold rule → alert, end to end."""
    import subprocess
    ip = "203.0.113.%d" % (uuid.uuid4().int % 250 + 1)
    nonce = uuid.uuid4().hex[:8]
    rule = f"""
id: ssh-brute-{nonce}
query: 'event.dataset:linux.auth AND event.action:ssh_login AND event.outcome:failure AND source.ip:{ip}'
severity: high
threshold: {{count: 3, window: 10s, group_by: [source.ip]}}
"""
    r = requests.post(server.url + "/api/v1/rules?tenant=default", data=rule, headers=auth(server.admin))
    assert r.status_code == 201, r.text
    port = server.addresses["syslog_tcp"].rsplit(":", 1)[1]
    lines = "".join(f"Failed password for invalid user u{i} from {ip} port {40000 + i} ssh2\n" for i in range(6))
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", port, "-T", "-t", "sshd", "-i"], input=lines.encode(), check=True, timeout=30)
    deadline = time.monotonic() + 60
    alerts = []
    while time.monotonic() < deadline:  # polling until the scheduler has evaluated
        r = requests.get(server.url + f"/api/v1/alerts?tenant=default&rule_id=ssh-brute-{nonce}", headers=auth(server.admin))
        assert r.status_code == 200, r.text
        alerts = r.json()["alerts"]
        if alerts:
            break
        time.sleep(0.1)
    assert alerts, "no alert"
    assert all(a["group"] == {"source.ip": ip} for a in alerts)
    assert sum(len(a["event_ids"]) for a in alerts) <= 6
    r = requests.post(server.url + "/api/v1/search", headers=auth(server.admin),
                      json={"query": f"source.ip:{ip} AND user.name:u3", "from": "-1h", "tenant": "default"})
    event = r.json()["events"][0]
    assert event["event"]["dataset"] == "linux.auth" and event["process"]["name"] == "sshd"


def test_sigma_correlation_over_winlogbeat_documents(server):
    """A Sigma event_count correlation with its base rule in one file, fed Winlogbeat-shaped
    Security 4625 events through the ingest API."""
    _, key = server.named_tenant()
    rule = """title: Failed logon
name: failed_logon
id: 2b8e9d1c-1f1e-4c57-9d7e-0a6b7c4f0001
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
---
title: Many failed logons for one user
id: 2b8e9d1c-1f1e-4c57-9d7e-0a6b7c4f0002
correlation:
    type: event_count
    rules:
        - failed_logon
    group-by:
        - TargetUserName
    timespan: 10s
    condition:
        gte: 4
level: high
"""
    r = requests.post(server.url + "/api/v1/rules", data=rule, headers=auth(key))
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "2b8e9d1c-1f1e-4c57-9d7e-0a6b7c4f0002"
    docs = [{"message": "An account failed to log on.", "winlog": {"channel": "Security", "event_id": 4625, "computer_name": "dc-1",
             "event_data": {"TargetUserName": user, "IpAddress": "10.0.0.5"}}} for user in ["alice"] * 5 + ["bob"] * 2]
    ingest(server, key, docs)
    alerts = wait_alerts(server, key, "2b8e9d1c-1f1e-4c57-9d7e-0a6b7c4f0002", 1)
    assert len(alerts) == 1
    assert alerts[0]["group"] == {"TargetUserName": "alice"} and len(alerts[0]["event_ids"]) == 5
    found = requests.post(server.url + "/api/v1/search", headers=auth(key), json={"query": "event.dataset:windows.security AND winlog.event_id:4625", "from": "-1h"}).json()
    assert found["total"] == 7 and found["events"][0]["host"]["name"] == "dc-1"


def test_per_event_sigma_rule_alerts_from_the_pipeline_long_before_its_window_closes():
    """With the default 120 s lag, a per-event Sigma rule alerts as its events are stored:
    admission matches them and the pipeline inserts the alerts. Events received before the
    rule was adopted are left to the rule's scheduled window; a resent request alerts nothing
    twice."""
    with tempfile.TemporaryDirectory() as data_dir:
        s = Server(data_dir, extra=("--detection-interval-secs", "1"))
        try:
            _, key = s.named_tenant()
            rule = """title: whoami
id: inline-whoami
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\\whoami.exe'
    condition: sel
level: medium
"""
            r = requests.post(s.url + "/api/v1/rules", data=rule, headers=auth(key))
            assert r.status_code == 201, r.text

            def doc(n):
                return {"event_id": f"inline-{n}", "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": "1",
                                   "event_data": {"Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": f"whoami /all {n}"}}}

            found, n = alert_from_the_pipeline(s, key, "inline-whoami", doc)
            # A resent request is a duplicate: no second alert for its event.
            assert ingest(s, key, [doc(n - 1)])["duplicates"] == 1
            # A new matching event alerts exactly once, and a non-matching one not at all.
            ingest(s, key, [doc(n), {"message": "unrelated", "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": "1",
                                                                       "event_data": {"Image": "C:\\x.exe"}}}])
            one_more_alert_from_the_pipeline(s, key, "inline-whoami", found)
        finally:
            assert s.stop() == 0


def test_native_rule_without_threshold_alerts_from_the_pipeline_long_before_its_window_closes():
    """A native rule without a threshold matches at admission too (the store's predicate for
    its query), with the default 120 s lag: each matching event alerts once, the others not at
    all. (That the scheduler's later read of its windows finds these alerts and adds none is
    SchedulerTests' `nativePerEventRules...`.)"""
    with tempfile.TemporaryDirectory() as data_dir:
        s = Server(data_dir, extra=("--detection-interval-secs", "1"))
        try:
            _, key = s.named_tenant()
            rule = "id: inline-failed\nquery: 'failed AND event.outcome:failure AND NOT user.name:svc-backup'\nseverity: high\n"
            r = requests.post(s.url + "/api/v1/rules", data=rule, headers=auth(key))
            assert r.status_code == 201, r.text

            def doc(n, user="root", outcome="failure"):
                return {"event_id": f"native-{n}", "message": f"Failed password for {user} from 198.51.100.{n % 250} port 22",
                        "event": {"outcome": outcome}, "user": {"name": user}}

            found, n = alert_from_the_pipeline(s, key, "inline-failed", doc)
            assert all(a["severity"] == "high" for a in list_alerts(s, key, "inline-failed"))
            ingest(s, key, [doc(n), doc(n + 1, user="svc-backup"), doc(n + 2, outcome="success")])
            one_more_alert_from_the_pipeline(s, key, "inline-failed", found)
        finally:
            assert s.stop() == 0


def test_per_event_rules_alert_on_syslog_lines_from_the_pipeline():
    """Syslog lines the packs normalize into flat fields keep that path when the tenant has
    per-event rules: a Sigma rule for sshd and a native rule without a threshold match them at
    admission, and each matching line sent with `logger` over TCP alerts once per rule, before
    any window of the rules could close."""
    import subprocess
    with tempfile.TemporaryDirectory() as data_dir:
        s = Server(data_dir, extra=("--detection-interval-secs", "1"))
        try:
            ip = "198.51.100.%d" % (uuid.uuid4().int % 250 + 1)
            rule = f"""title: sshd failures from one address
id: inline-sshd
logsource: {{product: linux, service: sshd}}
detection:
    sel:
        message|contains: 'Failed password'
        source.ip: '{ip}'
    condition: sel
level: high
"""
            native = f"id: inline-sshd-native\nquery: 'event.outcome:failure AND source.ip:{ip} AND process.name:sshd'\nseverity: high\n"
            admin = auth(s.admin)
            for source in (rule, native):
                r = requests.post(s.url + "/api/v1/rules?tenant=default", data=source, headers=admin)
                assert r.status_code == 201, r.text
            port = s.addresses["syslog_tcp"].rsplit(":", 1)[1]

            def send(*lines):
                subprocess.run(["logger", "-n", "127.0.0.1", "-P", port, "-T", "-t", "sshd", "-i"],
                               input="".join(line + "\n" for line in lines).encode(), check=True, timeout=30)

            def alerts(rule_id="inline-sshd"):
                r = requests.get(s.url + f"/api/v1/alerts?tenant=default&rule_id={rule_id}", headers=admin)
                assert r.status_code == 200, r.text
                return r.json()["alerts"]

            started = time.monotonic()
            n = 0
            # Polling: the rules are adopted on a tick, the pipeline stores the line.
            while not alerts() or not alerts("inline-sshd-native"):
                assert time.monotonic() - started < 60, "no alert from the pipeline after 60 s"
                send(f"Failed password for invalid user u{n} from {ip} port {40000 + n} ssh2")
                n += 1
                time.sleep(0.2)
            found, found_native = len(alerts()), len(alerts("inline-sshd-native"))
            assert 1 <= found <= n and 1 <= found_native <= n
            # One more failure alerts once; a success, and a failure from elsewhere, not at all.
            send(f"Accepted password for u{n} from {ip} port 41000 ssh2",
                 f"Failed password for invalid user u{n} from 192.0.2.1 port 41001 ssh2",
                 f"Failed password for invalid user u{n} from {ip} port 41002 ssh2")
            deadline = time.monotonic() + 30
            while len(alerts()) < found + 1 or len(alerts("inline-sshd-native")) < found_native + 1:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            for rule_id, before in (("inline-sshd", found), ("inline-sshd-native", found_native)):
                listed = alerts(rule_id)
                assert len(listed) == before + 1, rule_id
                assert len({a["event_ids"][0] for a in listed}) == len(listed)
                cov = requests.get(s.url + f"/api/v1/rules/{rule_id}/coverage?tenant=default", headers=admin).json()
                assert cov["covered"] == [], cov
            r = requests.post(s.url + "/api/v1/search", headers=admin,
                              json={"query": f"source.ip:{ip} AND user.name:u{n}", "from": "-1h", "tenant": "default"})
            assert r.status_code == 200, r.text
            assert len(r.json()["events"]) == 2
        finally:
            assert s.stop() == 0
