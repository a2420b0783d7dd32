import Foundation

/// `parsers`: one line per protocol pack goes in through the live syslog TCP listener (the
/// Windows document through the ingest API), and at least three normalized fields per pack come
/// back through search.
enum ParsersGate {
    struct Sample {
        var dataset: String
        var line: String
        var expect: [String: String]
    }

    /// `SRC` is replaced by an address unique to the run, so the gate finds its own events;
    /// `BSD`, `PAN`, `FDATE`/`FTIME` and `EPOCH` by the current time in each device's format.
    static let samples: [Sample] = [
        Sample(dataset: "panos.traffic", line: "<14>BSD PA-1 1,PAN,0123,TRAFFIC,end,2049,PAN,SRC,8.8.8.8,1.2.3.4,8.8.8.8,allow-out,alice,,dns,vsys1,trust,untrust,e1/1,e1/2,fwd,,123,1,5353,53,40000,53,0x0,udp,allow,300,100,200,2,PAN,5,any,,77,0x0,10.0.0.0-10.255.255.255,US,,1,1,aged-out",
               expect: ["destination.port": "53", "network.transport": "udp", "user.name": "alice", "observer.vendor": "Palo Alto Networks"]),
        Sample(dataset: "fortinet.firewall", line: "<189>date=FDATE time=FTIME devname=\"FG1\" devid=\"FG100\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" srcip=SRC srcport=5555 dstip=1.1.1.1 dstport=443 proto=6 action=\"deny\" policyid=3",
               expect: ["source.port": "5555", "destination.port": "443", "network.transport": "tcp", "event.outcome": "failure"]),
        Sample(dataset: "cisco.asa", line: "<166>BSD asa1 : %ASA-6-302013: Built inbound TCP connection 77 for outside:SRC/51000 (SRC/51000) to inside:10.0.0.9/22 (203.0.113.1/22)",
               expect: ["destination.port": "22", "event.action": "flow-creation", "network.transport": "tcp", "source.port": "51000"]),
        Sample(dataset: "f5.bigip.asm", line: "<134>BSD bigip1 ASM:unit_hostname=\"bigip1\",management_ip_address=\"192.0.2.5\",ip_client=\"SRC\",src_port=\"4444\",dest_ip=\"10.0.0.20\",dest_port=\"443\",method=\"GET\",uri=\"/login\",request_status=\"blocked\",violations=\"SQL-Injection\"",
               expect: ["event.outcome": "failure", "url.path": "/login", "destination.ip": "10.0.0.20"]),
        Sample(dataset: "linux.auth", line: "<38>BSD web-1 sshd[4242]: Failed password for invalid user admin from SRC port 4242 ssh2",
               expect: ["event.action": "ssh_login", "event.outcome": "failure", "user.name": "admin", "source.port": "4242"]),
        Sample(dataset: "cef", line: "<134>BSD host CEF:0|Acme|Sensor|1.0|100|Port scan|5|src=SRC dst=10.0.0.1 spt=1234 dpt=22 proto=TCP act=blocked suser=mallory",
               expect: ["destination.ip": "10.0.0.1", "destination.port": "22", "user.name": "mallory"]),
        Sample(dataset: "zeek.dns", line: "{\"_path\":\"dns\",\"ts\":EPOCH,\"uid\":\"CgateDNS1\",\"id.orig_h\":\"SRC\",\"id.orig_p\":38339,\"id.resp_h\":\"192.168.86.1\",\"id.resp_p\":53,\"proto\":\"udp\",\"query\":\"gate.example.org\",\"qtype_name\":\"A\"}",
               expect: ["destination.port": "53", "dns.question.name": "gate.example.org", "network.transport": "udp"]),
    ]

    static func run(_ context: GateContext) async throws {
        let client = context.client
        // The syslog listener's address comes from the server that owns the data directory;
        // against --url the gate uses VIGIL_SYSLOG_TCP (host:port).
        guard let address = ProcessInfo.processInfo.environment["VIGIL_SYSLOG_TCP"] ?? context.syslogTCP?(), let tcp = SocketAddress(address) else {
            throw GateFailure("no syslog TCP address (set VIGIL_SYSLOG_TCP=host:port with --url)")
        }
        var random = SystemRandomNumberGenerator()
        let source = "10.\(UInt8.random(in: 1...254, using: &random)).\(UInt8.random(in: 1...254, using: &random)).\(UInt8.random(in: 1...254, using: &random))"
        let sender = try TCPSender(host: tcp.host, port: tcp.port)
        let now = Date()
        let stamps = SyslogTrafficGenerator.Stamps(now)
        let replacements = [("SRC", source), ("BSD", stamps.bsd), ("PAN", stamps.panos),
                            ("FDATE", stamps.fortiDate), ("FTIME", stamps.fortiTime), ("EPOCH", String(format: "%.3f", now.timeIntervalSince1970))]
        for sample in samples {
            var line = sample.line
            for (placeholder, value) in replacements { line = line.replacingOccurrences(of: placeholder, with: value) }
            let bytes = Array(line.utf8)
            try sender.send(Array("\(bytes.count) ".utf8) + bytes)
        }
        sender.close()

        // The Windows pack, through the ingest API.
        let (_, key) = try await context.createTenant(prefix: "gate-parsers")
        let doc = #"{"winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":"1","computer_name":"ws-gate","event_data":{"Image":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd.exe /c whoami","ProcessId":"4242","User":"CORP\\gate"}}}"#
        let reply = try await client.send("POST", "/api/v1/ingest", headers: ["Authorization": "Bearer \(key)"], body: Data((doc + "\n").utf8))
        try gateExpect(reply.status == 200, "ingest answered HTTP \(reply.status)")

        func find(_ query: String, tenant: String?, token: String) async throws -> [String: Any]? {
            let deadline = Date().addingTimeInterval(30)
            var body: [String: Any] = ["query": query, "from": "-1d", "to": ISO8601DateFormatter().string(from: Date().addingTimeInterval(86_400)), "limit": 1]
            if let tenant { body["tenant"] = tenant }
            while Date() < deadline {
                let reply = try await client.json("POST", "/api/v1/search", token: token, body)
                if let events = (reply.json as? [String: Any])?["events"] as? [[String: Any]], let first = events.first { return first }
                if reply.status != 200 { throw GateFailure("search answered HTTP \(reply.status): \(reply.text)") }
                try await Task.sleep(for: .milliseconds(100))  // polling until stored
            }
            return nil
        }
        func check(_ event: [String: Any], _ expect: [String: String], _ name: String) throws {
            for (field, value) in expect {
                var actual = lookup(event, field)
                if let list = actual as? [Any], list.count == 1 { actual = list[0] }
                try gateExpect(actual.map { "\($0)" } == value, "\(name): \(field) is \(actual.map { "\($0)" } ?? "missing"), expected \(value)")
            }
        }
        for sample in samples {
            let query = "event.dataset:\(sample.dataset) AND source.ip:\(source)"
            guard let event = try await find(query, tenant: "default", token: context.adminToken) else {
                throw GateFailure("\(sample.dataset): the sample line did not come back through search")
            }
            try check(event, sample.expect, sample.dataset)
        }
        guard let windows = try await find("event.dataset:windows.sysmon_operational", tenant: nil, token: key) else {
            throw GateFailure("windows.sysmon_operational: the document did not come back through search")
        }
        try check(windows, ["process.executable": "C:\\Windows\\System32\\cmd.exe", "process.pid": "4242", "host.name": "ws-gate", "user.name": "gate"], "windows.sysmon_operational")
    }
}
