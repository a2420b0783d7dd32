"""Search through a live server as an analyst drives it: every limit refused (or cut) as
docs/search.md says, an expensive query interrupted at its timeout on a large store, the
per-tenant concurrency limit, export, live tail, cursor pagination and the CLI."""

import json
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

from test_live_server import VIGIL, Server, iso


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as data_dir:
        s = Server(data_dir)
        yield s
        assert s.stop() == 0


def auth(key):
    return {"Authorization": "Bearer " + key}


def ingest(server, key, events):
    for start in range(0, len(events), 5000):
        body = "".join(json.dumps(e) + "\n" for e in events[start:start + 5000])
        r = requests.post(server.url + "/api/v1/ingest", data=body, headers=auth(key))
        assert r.status_code == 200 and r.json()["accepted"] == len(events[start:start + 5000]), r.text


def search(server, key, query="*", **extra):
    body = {"query": query, "from": "-2h", "to": iso(600)}
    body.update(extra)
    return requests.post(server.url + "/api/v1/search", json=body, headers=auth(key))


def wait_count(server, key, count, query="*"):
    deadline = time.monotonic() + 120
    last = None
    while time.monotonic() < deadline:  # stored asynchronously after the ack
        r = search(server, key, query + " | stats count()")
        assert r.status_code == 200, r.text
        last = r.json()["rows"][0][0]
        if last == count:
            return
        time.sleep(0.1)
    raise AssertionError(f"expected {count} events, last count {last}")


def refused(r, limit, status=400):
    assert r.status_code == status, r.text
    assert r.json()["error"]["limit"] == limit, r.text
    assert r.json()["error"]["message"]


def set_limits(server, tenant, **limits):
    r = requests.put(f"{server.url}/api/v1/tenants/{tenant}/search-limits", json=limits, headers=auth(server.admin))
    assert r.status_code == 200, r.text
    return r.json()


def events(n, marker, **fields):
    return [{"@timestamp": iso(-(i % 3600)), "message": f"{marker} event {i} failed password for user{i % 7}",
             "host.name": f"web-{i % 3}", "user.name": f"user{i % 7}", "bytes": i, "event_id": f"{marker}-{i}", **fields}
            for i in range(n)]


def test_each_limit_is_refused_naming_it(server):
    tenant, key = server.named_tenant()
    ingest(server, key, events(40, "lim"))
    wait_count(server, key, 40)
    assert search(server, key).json()["total"] == 40
    refused(search(server, key, **{"from": "-40d"}), "max_range_days")
    refused(search(server, key, limit=10_001), "max_limit")
    refused(search(server, key, "x" * 5000), "max_query_bytes")
    refused(search(server, key, " ".join(f"t{i}" for i in range(65))), "max_terms")
    nested = "root"
    for i in range(11):
        nested = f"(t{i} {'OR' if i % 2 else 'AND'} {nested})"
    refused(search(server, key, nested), "max_depth")
    refused(search(server, key, "l*"), "min_wildcard_prefix")
    r = requests.post(server.url + "/api/v1/search", json={"query": "*"}, headers=auth(key))
    assert r.status_code == 400 and r.json()["error"]["code"] == "time_range_required"

    # Per-tenant overrides: only an admin sets them; they are validated; they apply at once.
    r = requests.put(f"{server.url}/api/v1/tenants/{tenant}/search-limits", json={"max_limit": 5}, headers=auth(key))
    assert r.status_code == 403
    r = requests.put(f"{server.url}/api/v1/tenants/{tenant}/search-limits", json={"max_limit": 0, "bogus": 1}, headers=auth(server.admin))
    assert r.status_code == 400 and "bogus" in r.json()["error"]["message"] and "max_limit" in r.json()["error"]["message"]
    answer = set_limits(server, tenant, max_limit=5, max_groups=2, max_total_count=10, max_range_days=1)
    assert answer["overrides"] == {"max_range_days": 1, "max_limit": 5, "max_groups": 2, "max_total_count": 10}
    assert answer["limits"]["timeout_ms"] == 10_000
    refused(search(server, key, limit=6), "max_limit")
    assert len(search(server, key).json()["events"]) == 5  # the default limit is cut to the tenant's maximum
    refused(search(server, key, "* | stats count() by host.name"), "max_groups")
    counted = search(server, key, limit=5).json()
    assert counted["total"] == 10 and counted["total_exact"] is False
    refused(search(server, key, **{"from": "-2d"}), "max_range_days")
    assert requests.get(f"{server.url}/api/v1/tenants/{tenant}/search-limits", headers=auth(key)).json()["overrides"]["max_limit"] == 5
    set_limits(server, tenant, max_limit=None, max_groups=None, max_total_count=None, max_range_days=None)
    assert search(server, key, "* | stats count() by host.name").json()["rows"] == [["web-0", 14], ["web-1", 13], ["web-2", 13]]


def test_an_expensive_query_on_a_large_store_is_interrupted_at_the_timeout(server):
    tenant, key = server.named_tenant()
    n = 60_000
    ingest(server, key, events(n, "big", payload="x" * 64))
    wait_count(server, key, n)
    expensive = "NOT nothing | stats dc(message), dc(payload), sum(bytes) by user.name, host.name"
    set_limits(server, tenant, timeout_ms=25)
    r = search(server, key, expensive)
    refused(r, "timeout_ms", status=422)
    assert r.json()["error"]["code"] == "query_timeout"
    # The same query completes under the default timeout: it was the limit that stopped it.
    set_limits(server, tenant, timeout_ms=None)
    r = search(server, key, expensive)
    assert r.status_code == 200, r.text
    assert sum(row[2] for row in r.json()["rows"]) == n  # dc(message): every message is distinct
    metrics = requests.get(server.url + "/metrics").text
    assert "vigil_search_timeouts_total" in metrics


def test_concurrent_queries_per_tenant_are_limited_and_a_tail_streams_new_events(server):
    tenant, key = server.named_tenant()
    set_limits(server, tenant, max_concurrent=1)
    with requests.get(server.url + "/api/v1/tail", params={"query": "tailme"}, headers=auth(key), stream=True, timeout=60) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        assert next(lines) == "event: ready"
        r = search(server, key)
        refused(r, "max_concurrent", status=429)
        assert r.headers["retry-after"] == "1"
        ingest(server, key, [{"message": "tailme one"}, {"message": "not this"}, {"message": "tailme two"}])
        received = []
        for line in lines:  # the server pushes events as they are stored
            if line.startswith("data: ") and "tailme" in line:
                received.append(json.loads(line[6:])["message"])
            if len(received) == 2:
                break
        assert sorted(received) == ["tailme one", "tailme two"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the slot is given back once the server notices the client left
        if search(server, key).status_code == 200:
            break
        time.sleep(0.2)
    assert search(server, key).status_code == 200
    r = requests.get(server.url + "/api/v1/tail", params={"query": "x | stats count()"}, headers=auth(key))
    assert r.status_code == 400


def test_export_streams_ndjson_across_pages_and_pagination_is_stable(server):
    tenant, key = server.named_tenant()
    ingest(server, key, events(2500, "exp"))
    wait_count(server, key, 2500)
    r = requests.get(server.url + "/api/v1/search/export", params={"query": "exp", "from": "-2h", "limit": 2200}, headers=auth(key))
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert len(rows) == 2200 and len({row["message"] for row in rows}) == 2200
    assert [row["@timestamp"] for row in rows] == sorted((row["@timestamp"] for row in rows), reverse=True)
    r = requests.get(server.url + "/api/v1/search/export", params={"query": "* | stats count() by host.name", "from": "-2h"}, headers=auth(key))
    assert [json.loads(line) for line in r.text.splitlines()] == [
        {"host.name": "web-0", "count()": 834}, {"host.name": "web-1", "count()": 833}, {"host.name": "web-2", "count()": 833}]
    set_limits(server, tenant, max_export_rows=100)
    r = requests.get(server.url + "/api/v1/search/export", params={"query": "*", "from": "-2h", "limit": 101}, headers=auth(key))
    refused(r, "max_export_rows")
    assert len(requests.get(server.url + "/api/v1/search/export", params={"query": "*", "from": "-2h"}, headers=auth(key)).text.splitlines()) == 100

    # Cursor pages: newest first, no event twice or missed, even while newer events arrive.
    seen, cursor, pages = [], None, 0
    window = {"from": iso(-7200), "to": iso(600)}
    while True:
        r = search(server, key, "exp", limit=1000, cursor=cursor, **window)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [e["message"] for e in page["events"]]
        pages += 1
        if pages == 1:
            ingest(server, key, events(10, "exp-late"))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 2500 and len(set(seen)) == 2500


def test_cli_prints_tables_and_errors(server):
    tenant, key = server.named_tenant()
    ingest(server, key, events(6, "cli"))
    wait_count(server, key, 6)
    out = subprocess.run([VIGIL, "search", "cli", "--from", "-2h", "--url", server.url, "--token", key], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["@TIMESTAMP", "HOST.NAME", "MESSAGE"]
    assert len([l for l in lines if "cli event" in l]) == 6 and lines[-1] == "6 of 6 events"
    out = subprocess.run([VIGIL, "search", "cli | stats count() by host.name", "--from", "-2h", "--url", server.url, "--token", key],
                         capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[:2] == ["host.name  count()", "web-0      2"]
    out = subprocess.run([VIGIL, "search", "cli | fields user.name", "--from", "-2h", "--limit", "2", "--url", server.url, "--token", key],
                         capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0].split() == ["@TIMESTAMP", "USER.NAME"] and "next page: --cursor" in out.stdout
    out = subprocess.run([VIGIL, "search", "(cli", "--from", "-2h", "--url", server.url, "--token", key], capture_output=True, text=True)
    assert out.returncode == 1 and "expected ')' to close the '(' at offset 0" in out.stderr
    out = subprocess.run([VIGIL, "search", "cli", "--from", "-2h", "--url", server.url, "--token", server.admin, "--tenant", tenant, "--json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["total"] == 6
