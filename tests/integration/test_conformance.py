"""Conformance through the public interfaces: every raw line of
../shared/testdata/vendors/*/elastic-integrations/ goes into a live server through its syslog TCP
socket (Sysmon documents through POST /api/v1/ingest), comes back through search, and is
compared field by field with Elastic's expected document. Prints an agreement table per
vendor; every vendor must agree on at least 95 % of the compared fields."""

import glob
import json
import os
import socket
import tempfile
import time

import pytest
import requests

from test_live_server import Server

ROOT = os.environ.get("VIGIL_TESTDATA") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "testdata")
VENDORS = os.path.join(ROOT, "vendors")

# Fields compared where the expected document has them (timestamps are compared at the parser
# level, `swift test --filter Conformance`, where the fixtures' time zones are known).
FIELDS = ["source.ip", "source.port", "destination.ip", "destination.port", "network.transport", "event.action",
          "event.outcome", "event.category", "event.type", "user.name", "observer.vendor", "observer.product",
          "observer.type", "url.original", "url.domain", "url.path", "dns.question.name", "dns.question.type",
          "process.name", "process.pid", "process.executable", "process.command_line", "host.name"]


def get(doc, path):
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def canon(value):
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, list):
        return json.dumps(sorted(str(v) for v in value))
    return str(value)


def inputs():
    """(vendor, kind, raw, expected) for every fixture line."""
    out = []
    for log in sorted(glob.glob(os.path.join(VENDORS, "*", "elastic-integrations", "test-*"))):
        if log.endswith("-expected.json"):
            continue
        vendor = log.split(os.sep)[-3]
        expected = json.load(open(log + "-expected.json", encoding="utf-8"))["expected"]
        if log.endswith(".json"):
            docs = json.load(open(log, encoding="utf-8"))["events"]
            out += [(vendor, "doc", d, e) for d, e in zip(docs, expected)]
            continue
        lines = [l for l in open(log, encoding="utf-8").read().split("\n") if l.strip()]
        for i, (line, exp) in enumerate(zip(lines, expected)):
            # README caveat: zeek test-dns line 6 and expected[5] come from different versions.
            if vendor == "zeek" and i == 5 and "original" in exp.get("event", {}):
                line = exp["event"]["original"]
            out.append((vendor, "line", line, exp))
    return out


@pytest.mark.skipif(not os.path.isdir(VENDORS), reason="../shared/testdata is absent (bare clone)")
def test_every_fixture_line_normalizes_like_elastic_through_syslog_and_search():
    cases = inputs()
    assert cases
    with tempfile.TemporaryDirectory() as data_dir:
        # The fixtures are years old: accept and search ten years back.
        server = Server(data_dir, extra=("--max-event-age-secs", str(10 * 365 * 86400)))
        try:
            admin = {"Authorization": "Bearer " + server.admin}
            assert requests.put(server.url + "/api/v1/tenants/default/retention", json={"days": 3650}, headers=admin).status_code == 200
            r = requests.put(server.url + "/api/v1/tenants/default/search-limits", json={"max_range_days": 3650}, headers=admin)
            assert r.status_code == 200, r.text
            # Lines over one TCP connection, octet-counted (some lines hold characters LF framing would split on).
            port = int(server.addresses["syslog_tcp"].rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port)) as s:
                for _, kind, raw, _ in cases:
                    if kind == "line":
                        data = raw.encode()
                        s.sendall(str(len(data)).encode() + b" " + data)
            key_reply = requests.post(server.url + "/api/v1/tenants", json={"name": "conformance"}, headers=admin)
            assert key_reply.status_code == 201
            assert requests.put(server.url + "/api/v1/tenants/conformance/retention", json={"days": 3650}, headers=admin).status_code == 200
            assert requests.put(server.url + "/api/v1/tenants/conformance/search-limits", json={"max_range_days": 3650}, headers=admin).status_code == 200
            for _, kind, raw, _ in cases:
                if kind == "doc":
                    r = requests.post(server.url + "/api/v1/ingest", data=json.dumps(raw) + "\n",
                                      headers={"Authorization": "Bearer " + key_reply.json()["api_key"]})
                    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text

            def stored(tenant, count):
                body = {"query": "*", "from": "-3650d", "to": "now", "limit": 1000, "tenant": tenant}
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # polling until stored
                    events = requests.post(server.url + "/api/v1/search", json=body, headers=admin).json().get("events", [])
                    if len(events) >= count:
                        return events
                    time.sleep(0.1)
                raise AssertionError(f"{tenant}: expected {count} events")

            lines = [c for c in cases if c[1] == "line"]
            docs = [c for c in cases if c[1] == "doc"]
            by_message = {e["message"]: e for e in stored("default", len(lines))}
            doc_events = stored("conformance", len(docs)) if docs else []

            table = {}
            differences = []
            for vendor, kind, raw, expected in cases:
                actual = by_message.get(raw) if kind == "line" else (doc_events[0] if doc_events else None)
                assert actual is not None, f"{vendor}: not found: {str(raw)[:80]}"
                compared, agreeing = table.get(vendor, (0, 0))
                for field in FIELDS:
                    want = get(expected, field)
                    if want is None:
                        continue
                    got = get(actual, field)
                    compared += 1
                    if canon(want) == canon(got):
                        agreeing += 1
                    else:
                        differences.append(f"{vendor} {field}: expected {canon(want)}, got {canon(got)}")
                table[vendor] = (compared, agreeing)
            print("\n| vendor | fields compared | agreeing | % |\n|---|---|---|---|")
            for vendor, (compared, agreeing) in sorted(table.items()):
                print(f"| {vendor} | {compared} | {agreeing} | {100.0 * agreeing / max(compared, 1):.1f} |")
            for d in differences:
                print("  DIFF", d)
            for vendor, (compared, agreeing) in table.items():
                assert compared > 0 and agreeing / compared >= 0.95, (vendor, compared, agreeing)
        finally:
            assert server.stop() == 0
