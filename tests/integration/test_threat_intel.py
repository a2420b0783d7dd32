"""Threat-intel feeds on a live server: events whose normalized fields match an indicator are
tagged `ioc_match` with `threat.indicator.*`, syslog lines included, and a changed feed file is
picked up without a restart."""

import os
import subprocess
import tempfile
import time
import uuid

import requests

from test_live_server import Server


def test_feed_matches_tag_events_and_reload_on_change():
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as feeds:
        feed = os.path.join(feeds, "abuse.csv")
        with open(feed, "w") as f:
            f.write("type,value,source,confidence\nip,203.0.113.99,abuse.ch,80\ndomain,evil-c2.example,osint,60\n")
        server = Server(data_dir, extra=("--intel-feeds", feed, "--intel-reload-secs", "1"))
        try:
            name, key = server.named_tenant()
            auth = {"Authorization": "Bearer " + key}
            nonce = uuid.uuid4().hex[:10]
            lines = [{"message": f"{nonce} conn", "source.ip": "10.0.0.1", "destination.ip": "203.0.113.99"},
                     {"message": f"{nonce} dns", "dns.question.name": "beacon.evil-c2.example"},
                     {"message": f"{nonce} clean", "destination.ip": "198.51.100.1"}]
            body = "".join(__import__("json").dumps(l) + "\n" for l in lines)
            assert requests.post(server.url + "/api/v1/ingest", data=body, headers=auth).status_code == 200
            hits = server.wait_total(key, 2, query=f"{nonce} AND tags:ioc_match")["events"]
            by_message = {e["message"]: e for e in hits}
            assert by_message[f"{nonce} conn"]["threat"]["indicator"]["ip"] == "203.0.113.99"
            assert by_message[f"{nonce} conn"]["threat"]["indicator"]["provider"] == "abuse.ch"
            assert by_message[f"{nonce} dns"]["threat"]["indicator"]["domain"] == "evil-c2.example"
            # A syslog line through the packs: the sshd source address is an indicator.
            port = server.addresses["syslog_tcp"].rsplit(":", 1)[1]
            subprocess.run(["logger", "-n", "127.0.0.1", "-P", port, "-T", "-t", "sshd"],
                           input=b"Failed password for root from 203.0.113.99 port 4242 ssh2\n", check=True, timeout=30)
            admin = {"Authorization": "Bearer " + server.admin}
            deadline = time.monotonic() + 30
            found = []
            while time.monotonic() < deadline and not found:  # polling until stored
                found = requests.post(server.url + "/api/v1/search", headers=admin, json={
                    "query": "tags:ioc_match AND source.ip:203.0.113.99 AND event.dataset:linux.auth", "from": "-1h", "tenant": "default"}).json()["events"]
                time.sleep(0.1)
            assert found and found[0]["threat"]["indicator"]["matched"]["field"] == "source.ip"
            # The feed changes: the new indicator applies to new events, without a restart.
            with open(feed, "w") as f:
                f.write("ip,198.51.100.1,new-feed,90\n")
            os.utime(feed, (time.time() + 5, time.time() + 5))
            deadline = time.monotonic() + 30
            tagged = False
            n = 0
            while time.monotonic() < deadline and not tagged:  # polling until the reload is seen
                n += 1
                line = {"message": f"{nonce} after {n}", "destination.ip": "198.51.100.1"}
                requests.post(server.url + "/api/v1/ingest", data=__import__("json").dumps(line) + "\n", headers=auth)
                time.sleep(0.2)
                tagged = server.search(key, f"{nonce} AND after AND tags:ioc_match")["total"] > 0
            assert tagged, "the changed feed was not picked up"
        finally:
            assert server.stop() == 0


def test_a_feed_that_cannot_be_read_refuses_to_start():
    with tempfile.TemporaryDirectory() as data_dir:
        from test_live_server import VIGIL
        proc = subprocess.run([VIGIL, "serve", "--data-dir", data_dir, "--http-address", "127.0.0.1:0", "--syslog-tcp-address", "127.0.0.1:0",
                               "--syslog-udp-address", "127.0.0.1:0", "--intel-feeds", "/nonexistent/feed.csv"], capture_output=True, timeout=60)
        assert proc.returncode == 2
        assert b"intel_feeds: cannot read /nonexistent/feed.csv" in proc.stderr
