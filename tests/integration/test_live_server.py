"""End-to-end checks of a live `vigil serve` (port 0, its own data directory) driven by real
clients: curl for the native API, `requests` as a Splunk HEC client and as an Elasticsearch
bulk client. Everything is checked through search, the way a user would see it."""

import gzip
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

VIGIL = os.environ.get("VIGIL_BIN", ".build/debug/vigil")


class Server:
    def __init__(self, data_dir, admin="vgl_admin_" + uuid.uuid4().hex, extra=(), preexec_fn=None):
        self.data_dir = data_dir
        self.admin = admin
        env = dict(os.environ, VIGIL_ADMIN_TOKEN=admin)
        self.proc = subprocess.Popen(
            [VIGIL, "serve", "--data-dir", data_dir, "--http-address", "127.0.0.1:0", "--syslog-tcp-address", "127.0.0.1:0",
             "--syslog-udp-address", "127.0.0.1:0", "--log-level", "warning", *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec_fn)
        addresses = os.path.join(data_dir, "run", "addresses.json")
        deadline = time.monotonic() + 60
        self.url = None
        while time.monotonic() < deadline:  # readiness polling
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            if os.path.exists(addresses):
                self.addresses = json.load(open(addresses))
                url = "http://" + self.addresses["http"]
                try:
                    if requests.get(url + "/readyz", timeout=2).status_code == 200:
                        self.url = url
                        break
                except requests.ConnectionError:
                    pass
            time.sleep(0.05)
        assert self.url, "server did not become ready"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def named_tenant(self):
        name = "t-" + uuid.uuid4().hex[:10]
        r = requests.post(self.url + "/api/v1/tenants", json={"name": name}, headers={"Authorization": "Bearer " + self.admin})
        assert r.status_code == 201, r.text
        assert r.json()["tenant"] == name
        return name, r.json()["api_key"]

    def tenant(self):
        return self.named_tenant()[1]

    def search(self, key, query="*", minutes=120, limit=1000):
        now = datetime.now(timezone.utc)
        body = {"query": query, "from": (now - timedelta(minutes=minutes)).isoformat(),
                "to": (now + timedelta(minutes=10)).isoformat(), "limit": limit}
        r = requests.post(self.url + "/api/v1/search", json=body, headers={"Authorization": "Bearer " + key})
        assert r.status_code == 200, r.text
        return r.json()

    def wait_total(self, key, total, query="*"):
        deadline = time.monotonic() + 30
        result = None
        while time.monotonic() < deadline:  # stored right after the ack, asynchronously
            result = self.search(key, query)
            if result["total"] == total:
                return result
            time.sleep(0.05)
        raise AssertionError(f"expected {total} events for {query!r}, last answer {result and result['total']}")


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as data_dir:
        s = Server(data_dir)
        yield s
        assert s.stop() == 0


def iso(delta_seconds=0):
    return (datetime.now(timezone.utc) + timedelta(seconds=delta_seconds)).isoformat().replace("+00:00", "Z")


def test_curl_ndjson_with_gzip_is_searchable_with_fields(server):
    key = server.tenant()
    lines = [json.dumps({"@timestamp": iso(-i), "message": f"Failed password for root from 203.0.113.{i} port 22 ssh2",
                         "host.name": f"web-{i}", "source": {"ip": f"203.0.113.{i}"}, "event_id": f"e{i}"}) for i in range(5)]
    body = gzip.compress(("\n".join(lines) + "\n").encode())
    out = subprocess.run(["curl", "-sS", "-X", "POST", server.url + "/api/v1/ingest", "-H", "Authorization: Bearer " + key,
                          "-H", "Content-Type: application/x-ndjson", "-H", "Content-Encoding: gzip", "--data-binary", "@-"],
                         input=body, capture_output=True, check=True)
    assert json.loads(out.stdout) == {"accepted": 5, "duplicates": 0, "quarantined": 0}
    result = server.wait_total(key, 5)
    assert result["events"][0]["@timestamp"] >= result["events"][-1]["@timestamp"]  # newest first
    assert server.search(key, "host.name:web-3")["total"] == 1
    assert server.search(key, "source.ip:203.0.113.2")["events"][0]["host"]["name"] == "web-2"
    assert server.search(key, '"failed password"')["total"] == 5
    assert server.search(key, "nomatchtoken")["total"] == 0
    # the same batch again: all duplicates
    out = subprocess.run(["curl", "-sS", server.url + "/api/v1/ingest", "-H", "Authorization: Bearer " + key,
                          "-H", "Content-Encoding: gzip", "--data-binary", "@-"], input=body, capture_output=True, check=True)
    assert json.loads(out.stdout)["duplicates"] == 5


def test_hec_client_events_and_errors(server):
    key = server.tenant()
    s = requests.Session()
    s.headers["Authorization"] = "Splunk " + key
    events = "".join(json.dumps({"time": time.time() - i, "host": "fw-1", "sourcetype": "pan:traffic", "event": f"hec line {i}",
                                 "fields": {"zone": "dmz"}}) for i in range(3))
    r = s.post(server.url + "/services/collector/event", data=events)
    assert r.status_code == 200 and r.json() == {"text": "Success", "code": 0}
    r = s.post(server.url + "/services/collector/event", data='{"event":"ok"}{"event":')
    assert r.status_code == 400 and r.json()["code"] == 6 and r.json()["invalid-event-number"] == 1
    r = requests.post(server.url + "/services/collector/event", data='{"event":"x"}')
    assert r.status_code == 401 and r.json()["code"] == 2
    r = requests.post(server.url + "/services/collector/event", data='{"event":"x"}', headers={"Authorization": "Splunk nope"})
    assert r.status_code == 403 and r.json()["code"] == 4
    assert requests.get(server.url + "/services/collector/health").json()["code"] == 17
    result = server.wait_total(key, 3)
    assert {e["splunk"]["sourcetype"] for e in result["events"]} == {"pan:traffic"}
    assert all(e["zone"] == "dmz" and e["host"]["name"] == "fw-1" for e in result["events"])


def test_elasticsearch_bulk_client(server):
    key = server.tenant()
    r = requests.get(server.url + "/")
    assert r.headers["X-Elastic-Product"] == "Elasticsearch" and r.json()["version"]["number"].startswith("8.")
    auth = ("vigil", key)  # Beats/Fluent Bit: basic auth with the key as password
    assert requests.put(server.url + "/_index_template/vigil", json={}, auth=auth).json() == {"acknowledged": True}
    docs = []
    for i in range(4):
        docs.append(json.dumps({"create": {"_index": "logs-test", "_id": f"doc-{i}"}}))
        docs.append(json.dumps({"@timestamp": iso(-i), "message": f"bulk doc {i}", "event": {"dataset": "test.bulk"}}))
    docs.append(json.dumps({"delete": {"_id": "doc-1"}}))
    body = "\n".join(docs) + "\n"
    r = requests.post(server.url + "/_bulk", data=body, auth=auth, headers={"Content-Type": "application/x-ndjson"})
    answer = r.json()
    assert r.status_code == 200 and answer["errors"] is True
    assert [list(i.values())[0]["status"] for i in answer["items"]] == [201, 201, 201, 201, 400]
    r = requests.post(server.url + "/_bulk", data=body, auth=auth)
    assert [list(i.values())[0]["status"] for i in r.json()["items"]][:4] == [409] * 4
    result = server.wait_total(key, 4)
    assert sorted(e["vigil"]["event_id"] for e in result["events"]) == [f"doc-{i}" for i in range(4)]
    r = requests.post(server.url + "/_bulk", data="not an action\n", auth=auth)
    assert r.status_code == 400 and r.json()["error"]["type"] == "illegal_argument_exception"


def test_bad_input_gets_clear_errors_never_5xx(server):
    key = server.tenant()
    h = {"Authorization": "Bearer " + key}
    r = requests.post(server.url + "/api/v1/ingest", data="{}")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = requests.post(server.url + "/api/v1/ingest", data=b"\x1f\x8b garbage", headers=dict(h, **{"Content-Encoding": "gzip"}))
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_compression"
    r = requests.post(server.url + "/api/v1/ingest", data="<a/>", headers=dict(h, **{"Content-Type": "application/xml"}))
    assert r.status_code == 415
    body = '{"message":"ok"}\nnot json\n{"message":42}\n{"@timestamp":"1999-01-01T00:00:00Z","message":"old"}\n'
    r = requests.post(server.url + "/api/v1/ingest", data=body, headers=h)
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("accepted", "duplicates", "quarantined")} == {"accepted": 1, "duplicates": 0, "quarantined": 3}
    reasons = sorted(e["reason"] for e in r.json()["errors"])
    assert reasons == ["invalid_field", "malformed_json", "timestamp_out_of_range"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        q = requests.get(server.url + "/api/v1/quarantine", headers=h).json()
        if q["total"] == 3:
            break
        time.sleep(0.05)
    assert sorted(i["reason"] for i in q["items"]) == reasons
    assert any(i["raw"] == "not json" for i in q["items"])
    garbage = [b"\x00" * 100, b"[" * 100000, b'{"a":' * 5000, b"\xff\xfe\xfd\n", b'{"message":"\xff"}', b"1e999999",
               b'{"@timestamp":99999999999999999999999}', b"\n\n\n"]
    for g in garbage:
        for path in ("/api/v1/ingest", "/services/collector/event", "/_bulk", "/api/v1/search"):
            auth = "Splunk " + key if "collector" in path else "Bearer " + key
            r = requests.post(server.url + path, data=g, headers={"Authorization": auth})
            assert r.status_code < 500, (path, g[:20], r.status_code, r.text)
    assert requests.get(server.url + "/healthz").status_code == 200
    metrics = requests.get(server.url + "/metrics").text
    assert 'vigil_events_quarantined_total{reason="malformed_json"}' in metrics
    assert "vigil_http_requests_total" in metrics and "vigil_events_stored_total" in metrics
    # The accepted event's write transaction is counted in the writer's CPU.
    deadline = time.monotonic() + 30
    writer_cpu = 0.0
    while time.monotonic() < deadline:  # polling until the event is stored, not a timed wait
        for line in requests.get(server.url + "/metrics").text.splitlines():
            if line.startswith("vigil_store_writer_cpu_seconds_total "):
                writer_cpu = float(line.split()[1])
        if writer_cpu > 0:
            break
        time.sleep(0.05)
    assert writer_cpu > 0


def test_tenants_are_isolated_and_admin_must_name_one(server):
    a, b = server.tenant(), server.tenant()
    requests.post(server.url + "/api/v1/ingest", data='{"message":"secret of a"}', headers={"Authorization": "Bearer " + a})
    server.wait_total(a, 1)
    assert server.search(b, "secret")["total"] == 0
    r = requests.post(server.url + "/api/v1/search", json={"query": "*", "from": "-1h", "tenant": "default"},
                      headers={"Authorization": "Bearer " + a})
    assert r.status_code == 403
    r = requests.post(server.url + "/api/v1/search", json={"query": "*"}, headers={"Authorization": "Bearer " + a})
    assert r.status_code == 400 and r.json()["error"]["code"] == "time_range_required"


def test_restart_keeps_events_and_deduplicates_and_cli_works():
    with tempfile.TemporaryDirectory() as data_dir:
        out = subprocess.run([VIGIL, "tenants", "create", "acme", "--data-dir", data_dir], capture_output=True, text=True, check=True)
        key = json.loads(out.stdout)["api_key"]
        s = Server(data_dir)
        batch = "".join(json.dumps({"message": f"restart {i}", "event_id": f"r{i}"}) + "\n" for i in range(50))
        assert requests.post(s.url + "/api/v1/ingest", data=batch, headers={"Authorization": "Bearer " + key}).json()["accepted"] == 50
        assert s.stop() == 0  # SIGTERM drains and exits cleanly
        s = Server(data_dir, admin="ignored-after-first-start")
        try:
            assert s.search(key, "restart")["total"] == 50
            r = requests.post(s.url + "/api/v1/ingest", data=batch, headers={"Authorization": "Bearer " + key})
            assert r.json()["duplicates"] == 50
            out = subprocess.run([VIGIL, "search", "restart", "--from", "-1h", "--url", s.url, "--token", key, "--json"],
                                 capture_output=True, text=True, check=True)
            assert json.loads(out.stdout)["total"] == 50
            out = subprocess.run([VIGIL, "gates", "--only", "storage", "--url", s.url, "--token", s.admin],
                                 capture_output=True, text=True)
            # the first start's admin key stays the admin key: a later VIGIL_ADMIN_TOKEN is ignored
            assert "storage:FAIL" in out.stdout and out.returncode == 1
        finally:
            assert s.stop() == 0


def test_gates_start_their_own_server():
    out = subprocess.run([VIGIL, "gates", "--only", "storage"], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "storage:PASS", out.stdout + out.stderr


def quarantine(server, key, **params):
    r = requests.get(server.url + "/api/v1/quarantine", params=params, headers={"Authorization": "Bearer " + key})
    assert r.status_code == 200, r.text
    return r.json()


def wait_quarantine(server, key, total):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        q = quarantine(server, key)
        if q["total"] == total:
            return q
        time.sleep(0.05)
    raise AssertionError(f"quarantine never held {total} items")


def test_quarantine_replay_after_a_config_change_moves_items_into_the_store():
    with tempfile.TemporaryDirectory() as data_dir:
        s = Server(data_dir, extra=("--max-line-bytes", "100"))
        try:
            key = s.tenant()
            long_line = json.dumps({"message": "x" * 150, "event_id": "long-1"})
            body = long_line + "\nnot json at all\n"
            r = requests.post(s.url + "/api/v1/ingest", data=body, headers={"Authorization": "Bearer " + key})
            assert r.json()["quarantined"] == 2
            items = wait_quarantine(s, key, 2)["items"]
            assert sorted(i["reason"] for i in items) == ["malformed_json", "oversize"]
            # Replaying under the same limits changes nothing.
            r = requests.post(s.url + "/api/v1/quarantine/replay", json={"reason": "oversize"}, headers={"Authorization": "Bearer " + key})
            assert r.json()["still_quarantined"] == 1 and quarantine(s, key)["total"] == 2
        finally:
            assert s.stop() == 0
        admin = s.admin
        s = Server(data_dir, admin=admin)  # default limits now
        try:
            r = requests.post(s.url + "/api/v1/quarantine/replay", json={"reason": "oversize"}, headers={"Authorization": "Bearer " + key})
            assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
            assert [i["reason"] for i in quarantine(s, key)["items"]] == ["malformed_json"]
            event = s.wait_total(key, 1)["events"][0]
            assert event["vigil"]["event_id"] == "long-1" and len(event["message"]) == 150
            ids = [i["id"] for i in quarantine(s, key)["items"]]
            r = requests.post(s.url + "/api/v1/quarantine/replay", json={"ids": ids}, headers={"Authorization": "Bearer " + key})
            assert r.json()["items"][0]["status"] == "quarantined" and r.json()["items"][0]["reason"] == "malformed_json"
            r = requests.post(s.url + "/api/v1/quarantine/replay", json={"ids": ["x"]}, headers={"Authorization": "Bearer " + key})
            assert r.status_code == 400
        finally:
            assert s.stop() == 0


def test_retention_drops_expired_partitions_and_keeps_recent_ones(server):
    me, key = server.named_tenant()
    old = {"@timestamp": iso(-3 * 86400), "message": "three days old", "event_id": "old"}
    new = {"@timestamp": iso(-60), "message": "fresh", "event_id": "new"}
    body = json.dumps(old) + "\n" + json.dumps(new) + "\n"
    assert requests.post(server.url + "/api/v1/ingest", data=body, headers={"Authorization": "Bearer " + key}).json()["accepted"] == 2
    deadline = time.monotonic() + 30
    while server.search(key, "*", minutes=5 * 1440)["total"] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert me in requests.get(server.url + "/api/v1/tenants", headers={"Authorization": "Bearer " + server.admin}).json()["tenants"]
    assert requests.get(server.url + f"/api/v1/tenants/{me}", headers={"Authorization": "Bearer " + key}).json()["retention_days"] == 30
    r = requests.put(server.url + f"/api/v1/tenants/{me}/retention", json={"days": 1}, headers={"Authorization": "Bearer " + key})
    assert r.status_code == 403
    r = requests.put(server.url + f"/api/v1/tenants/{me}/retention", json={"days": 1}, headers={"Authorization": "Bearer " + server.admin})
    assert r.json()["retention_days"] == 1
    r = requests.post(server.url + "/api/v1/retention/run", headers={"Authorization": "Bearer " + server.admin})
    assert r.status_code == 200
    assert any(d["tenant"] == me for d in r.json()["dropped_partitions"])
    result = server.search(key, "*", minutes=5 * 1440)
    assert [e["message"] for e in result["events"]] == ["fresh"]
    # an event older than the policy is now refused with a reason
    r = requests.post(server.url + "/api/v1/ingest", data=json.dumps(old), headers={"Authorization": "Bearer " + key})
    assert r.json()["errors"][0]["reason"] == "timestamp_out_of_range"
    assert "vigil_retention_partitions_dropped_total" in requests.get(server.url + "/metrics").text
