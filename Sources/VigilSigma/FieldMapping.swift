import VigilCore

/// A field value prepared for matching: its text and its lower-cased UTF-8 bytes.
struct Text {
    let string: String
    let lower: [UInt8]

    init(_ string: String) {
        self.string = string
        // Most values are ASCII: lower-cased by byte, without a lower-cased String, over the
        // contiguous bytes (stepping the UTF-8 view costs several times more per byte).
        // Copied from the buffer, then lowered in place: `Array(unsafeUninitializedCapacity:)`
        // looks its storage type up in the runtime's metadata cache on every call.
        var contiguous = string
        var bytes = contiguous.withUTF8 { Array($0) }
        let ascii = bytes.withUnsafeMutableBufferPointer { buffer in
            var ascii = true
            for i in 0..<buffer.count {
                if buffer[i] >= 0x80 { ascii = false }
                buffer[i] = ValueMatcher.asciiLowercased(buffer[i])
            }
            return ascii
        }
        lower = ascii ? bytes : Array(string.lowercased().utf8)
    }

    /// The bytes as they are, for the few case-sensitive patterns (`|cased`).
    var raw: [UInt8] { Array(string.utf8) }

    /// A field value's texts: every scalar of an array, or the scalar.
    static func of(_ value: JSONValue?) -> [Text] {
        switch value {
        case .array(let items)?: return items.compactMap { $0.scalarText.map(Text.init) }
        case let value?: return value.scalarText.map { [Text($0)] } ?? []
        case nil: return []
        }
    }
}

/// An event being matched against many rules: resolved fields, their prepared texts and
/// logsource verdicts are computed once per event, not once per rule.
///
/// Windows events keep every EventData item under `winlog.event_data.<Name>`, which is what
/// Sigma's Windows field names are; other sources go through the mapping's ECS names, then the
/// field name as a dotted path.
public final class SigmaEvent {
    /// The event as a document: given, or made from `flat` when a field needs it.
    lazy var event: JSONValue = .object(flat?.object(setting: appended) ?? appended)
    /// Flat fields the event was prepared from (nil: a document), and the members added at
    /// their top level.
    let flat: FlatFields?
    let appended: JSONObject
    let mapping: FieldMapping
    let isWindows: Bool
    let eventData: JSONObject?
    @exclusivity(unchecked) var values: [String: JSONValue?] = [:]
    @exclusivity(unchecked) var texts: [String: [Text]] = [:]
    @exclusivity(unchecked) var logsources: [Int: Bool] = [:]
    /// Set by `SigmaRuleSet.event`: the set's fields by number, resolved into `slots`.
    let plan: FieldPlan?
    /// With a plan: per field number, its place in `slots` (-1: not resolved yet), followed by
    /// one entry per top-level key of the plan, 1 when the document has that key. Only
    /// the fields an event resolves get a slot: a rule set names hundreds, an event reads a few
    /// dozen, and a slot costs a copy to make and a release to free. The table is raw memory
    /// (freed in `deinit`): an `Array(repeating:count:)` of it looked its storage type up in
    /// the runtime's metadata cache on every event.
    let table: UnsafeMutableBufferPointer<Int32>
    @exclusivity(unchecked) var slots: [FieldPlan.Slot] = []
    lazy var allTexts: [Text] = {
        var out: [Text] = []
        func walk(_ value: JSONValue) {
            switch value {
            case .string(let s): out.append(Text(s))
            case .array(let items): items.forEach(walk)
            case .object(let object): object.members.forEach { walk($0.value) }
            default: break
            }
        }
        if let flat {
            // The document's values in its order: the fields' in schema order, then the added members'.
            for path in flat.schema.paths.indices {
                if let value = flat.value(path) { walk(value) }
            }
            walk(.object(appended))
        } else {
            walk(event)
        }
        return out
    }()

    public convenience init(_ fields: JSONObject, mapping: FieldMapping = .standard) {
        self.init(fields, mapping: mapping, plan: nil)
    }

    init(_ fields: JSONObject, mapping: FieldMapping, plan: FieldPlan?) {
        flat = nil
        appended = JSONObject()
        self.mapping = mapping
        self.plan = plan
        if case .object(let winlog)? = fields["winlog"] {
            isWindows = true
            eventData = winlog["event_data"]?.objectValue
        } else {
            isWindows = false
            eventData = nil
        }
        guard let plan else {
            table = UnsafeMutableBufferPointer(start: nil, count: 0)
            event = .object(fields)
            return
        }
        table = .allocate(capacity: plan.paths.count + plan.topLevelKeys.count)
        table[..<plan.paths.count].initialize(repeating: -1)
        table[plan.paths.count...].initialize(repeating: 0)
        event = .object(fields)
        slots.reserveCapacity(16)
        // One pass over the document's top level and its EventData, a lookup per key; every
        // other field is resolved when asked for, and only when a top-level key allows it.
        for index in fields.members.indices {
            if let key = plan.topLevelKeys[fields.members[index].key] { table[plan.paths.count + key] = 1 }
        }
        if let eventData {
            for index in eventData.members.indices {
                // The first item of a name, as `JSONObject`'s subscript finds it.
                guard let id = plan.ids[eventData.members[index].key], table[id] < 0 else { continue }
                table[id] = Int32(slots.count)
                slots.append(FieldPlan.Slot(value: eventData.members[index].value))
            }
        }
    }

    /// The event of flat fields without `winlog` (`SigmaRuleSet.event(flat:appending:)`).
    init(flat: FlatFields, appending: JSONObject, mapping: FieldMapping, plan: FieldPlan?) {
        self.flat = flat
        appended = appending
        self.mapping = mapping
        self.plan = plan
        isWindows = false
        eventData = nil
        guard let plan else {
            table = UnsafeMutableBufferPointer(start: nil, count: 0)
            return
        }
        table = .allocate(capacity: plan.paths.count + plan.topLevelKeys.count)
        table[..<plan.paths.count].initialize(repeating: -1)
        table[plan.paths.count...].initialize(repeating: 0)
        slots.reserveCapacity(16)
        // Keys of the schema the event may leave empty are marked too: a lookup more, which
        // then finds nothing.
        for key in flat.schema.topLevelKeys {
            if let number = plan.topLevelKeys[key] { table[plan.paths.count + number] = 1 }
        }
        for index in appending.members.indices {
            if let number = plan.topLevelKeys[appending.members[index].key] { table[plan.paths.count + number] = 1 }
        }
    }

    /// `event.value(atPath: path)`, from the flat fields where they can tell.
    func lookup(_ path: String) -> JSONValue? {
        if let flat, let known = flat.documentValue(atPath: path, setting: appended) { return known }
        return event.value(atPath: path)
    }

    /// Whether the event belongs to a logsource, decided once per event and predicate.
    func belongs(to logsource: LogsourcePredicate, key: Int) -> Bool {
        if let cached = logsources[key] { return cached }
        let verdict = logsource.matches(self)
        logsources[key] = verdict
        return verdict
    }

    func value(_ field: String) -> JSONValue? {
        if let id = plan?.ids[field] { return value(id: id) }
        if let cached = values[field] { return cached }
        let found = resolve(field)
        values[field] = .some(found)
        return found
    }

    /// `event.value(atPath: path)`, given the path's dot-separated `parts` when none is empty.
    /// A path that does not resolve part by part is searched for literal dotted keys
    /// (`{"host.name": ...}`), which costs a scan of each object on the way for each prefix;
    /// objects without a dotted key (events are stored nested) are passed through by their
    /// member named by the next part, which is all that search could find in them.
    func value(atPath path: String, parts: [String]?) -> JSONValue? {
        if let flat, let known = flat.documentValue(atPath: path, setting: appended) { return known }
        guard let parts else { return event.value(atPath: path) }
        if let found = event.value(atKeys: parts) { return found }
        var current = event
        var start = path.startIndex  // of what is left of the path, after a dot
        for (number, part) in parts.enumerated() {
            guard case .object(let object) = current else { return nil }
            if Self.hasDottedKey(object) { return current.value(atPath: String(path[start...])) }
            guard let next = object[part] else { return nil }
            current = next
            if number + 1 < parts.count { start = path.utf8.index(start, offsetBy: part.utf8.count + 1) }
        }
        return current
    }

    /// Whether a key of the object has a dot in it.
    static func hasDottedKey(_ object: JSONObject) -> Bool {
        object.members.withUnsafeBufferPointer { members in
            for m in 0..<members.count {
                if members[m].key.firstIndex(ofByte: UInt8(ascii: ".")) != nil { return true }
            }
            return false
        }
    }

    /// A path's dot-separated parts, nil when one is empty (`a..b`, `.a`, `a.`): those take
    /// `value(atPath:)`'s own reading.
    static func parts(_ path: String) -> [String]? {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        return parts.contains(where: \.isEmpty) ? nil : parts.map(String.init)
    }

    func resolve(_ field: String) -> JSONValue? {
        if let v = eventData?[field] { return v }
        for path in mapping.fields[field] ?? [] {
            if let v = lookup(path) { return v }
        }
        return lookup(field)
    }

    /// The field's scalar values (every element of an array) as prepared texts.
    func texts(_ field: String) -> [Text] {
        if let id = plan?.ids[field] { return texts(id: id) }
        if let cached = texts[field] { return cached }
        let out = Text.of(value(field))
        texts[field] = out
        return out
    }

    /// `value(_:)` of the plan's field `id` (the event was made with a plan).
    func value(id: Int) -> JSONValue? {
        if table[id] >= 0 { return slots[Int(table[id])].value }
        let plan = plan!
        var found: JSONValue?
        for planned in plan.paths[id] where planned.keys.isEmpty || planned.keys.contains(where: { table[plan.paths.count + $0] != 0 }) {
            if let value = self.value(atPath: planned.path, parts: planned.parts) {
                found = value
                break
            }
        }
        table[id] = Int32(slots.count)
        slots.append(FieldPlan.Slot(value: found))
        return found
    }

    /// `texts(_:)` of the plan's field `id`.
    func texts(id: Int) -> [Text] {
        if table[id] >= 0, let cached = slots[Int(table[id])].texts { return cached }
        let out = Text.of(value(id: id))
        slots[Int(table[id])].texts = out
        return out
    }

    deinit { table.deallocate() }
}

/// Which events a rule's `logsource` selects: any of the clauses, each a conjunction of field
/// tests (a field equal to one of the values).
public struct LogsourcePredicate: Sendable, Equatable {
    public var clauses: [[Test]]

    public struct Test: Sendable, Equatable {
        public var path: String
        public var values: Set<String>
        /// `SigmaEvent.parts(path)`.
        let parts: [String]?
        public init(_ path: String, _ values: Set<String>) {
            self.path = path
            self.values = values
            parts = SigmaEvent.parts(path)
        }
    }

    public init(_ clauses: [[Test]]) { self.clauses = clauses }

    func matches(_ event: SigmaEvent) -> Bool {
        clauses.contains { clause in
            clause.allSatisfy { test in
                guard let text = event.value(atPath: test.path, parts: test.parts)?.scalarText else { return false }
                return test.values.contains(text) || test.values.contains(text.lowercased())
            }
        }
    }
}

/// Sigma → Vigil: logsources to event predicates, field names to ECS paths, and values for
/// `expand` placeholders. `standard` ships Windows/Sysmon, Linux and the network packs.
public struct FieldMapping: Sendable {
    public var fields: [String: [String]]
    public var placeholders: [String: [String]]
    /// `product/category` or `product/service` (product may be empty) → predicate.
    public var logsources: [String: LogsourcePredicate]

    public init(fields: [String: [String]], placeholders: [String: [String]] = [:], logsources: [String: LogsourcePredicate]) {
        self.fields = fields
        self.placeholders = placeholders
        self.logsources = logsources
    }

    func logsource(product: String?, category: String?, service: String?) throws(SigmaError) -> LogsourcePredicate {
        let p = product?.lowercased() ?? ""
        if let category, let found = logsources["\(p)/\(category.lowercased())"] {
            if let service, let narrowed = logsources["\(p)/\(service.lowercased())"] {
                // Both: an event must satisfy both (e.g. windows process_creation + sysmon).
                return LogsourcePredicate(found.clauses.flatMap { a in narrowed.clauses.map { a + $0 } })
            }
            return found
        }
        if category == nil, let service, let found = logsources["\(p)/\(service.lowercased())"] { return found }
        if category == nil, service == nil, let found = logsources["\(p)/"] { return found }
        throw SigmaError("unknown_logsource", "product=\(product ?? "-") category=\(category ?? "-") service=\(service ?? "-")")
    }

    static let sysmonChannel = "Microsoft-Windows-Sysmon/Operational"

    static func sysmon(_ ids: [Int]) -> LogsourcePredicate {
        LogsourcePredicate([[.init("winlog.channel", [sysmonChannel]), .init("winlog.event_id", Set(ids.map(String.init)))]])
    }

    static func channel(_ name: String, ids: [Int]? = nil) -> LogsourcePredicate {
        var clause: [LogsourcePredicate.Test] = [.init("winlog.channel", [name])]
        if let ids { clause.append(.init("winlog.event_id", Set(ids.map(String.init)))) }
        return LogsourcePredicate([clause])
    }

    static func datasets(_ names: [String]) -> LogsourcePredicate {
        LogsourcePredicate([[.init("event.dataset", Set(names))]])
    }

    /// The shipped mapping.
    public static let standard: FieldMapping = {
        var logsources: [String: LogsourcePredicate] = [
            "windows/process_creation": LogsourcePredicate(sysmon([1]).clauses + channel("Security", ids: [4688]).clauses),
            "windows/network_connection": sysmon([3]),
            "windows/sysmon_status": sysmon([4, 16]),
            "windows/process_termination": sysmon([5]),
            "windows/driver_load": sysmon([6]),
            "windows/image_load": sysmon([7]),
            "windows/create_remote_thread": sysmon([8]),
            "windows/raw_access_thread": sysmon([9]),
            "windows/process_access": sysmon([10]),
            "windows/file_event": sysmon([11]),
            "windows/registry_add": sysmon([12]),
            "windows/registry_delete": sysmon([12]),
            "windows/registry_set": sysmon([13]),
            "windows/registry_rename": sysmon([14]),
            "windows/registry_event": sysmon([12, 13, 14]),
            "windows/create_stream_hash": sysmon([15]),
            "windows/pipe_created": sysmon([17, 18]),
            "windows/wmi_event": sysmon([19, 20, 21]),
            "windows/dns_query": sysmon([22]),
            "windows/file_delete": sysmon([23, 26]),
            "windows/clipboard_capture": sysmon([24]),
            "windows/process_tampering": sysmon([25]),
            "windows/file_block_executable": sysmon([27]),
            "windows/file_block_shredding": sysmon([28]),
            "windows/file_executable_detected": sysmon([29]),
            "windows/sysmon_error": sysmon([255]),
            "windows/file_access": channel("Microsoft-Windows-Kernel-File/Analytic"),
            "windows/file_change": sysmon([2]),
            "windows/ps_script": channel("Microsoft-Windows-PowerShell/Operational", ids: [4104]),
            "windows/ps_module": channel("Microsoft-Windows-PowerShell/Operational", ids: [4103]),
            "windows/ps_classic_start": channel("Windows PowerShell", ids: [400]),
            "windows/ps_classic_provider_start": channel("Windows PowerShell", ids: [600]),
            "windows/ps_classic_script": channel("Windows PowerShell", ids: [800]),
            "windows/sysmon": channel(sysmonChannel),
            "windows/security": channel("Security"),
            "windows/system": channel("System"),
            "windows/application": channel("Application"),
            "windows/powershell": channel("Microsoft-Windows-PowerShell/Operational"),
            "windows/windefend": channel("Microsoft-Windows-Windows Defender/Operational"),
            "windows/taskscheduler": channel("Microsoft-Windows-TaskScheduler/Operational"),
            "windows/wmi": channel("Microsoft-Windows-WMI-Activity/Operational"),
            "windows/dns-server": channel("DNS Server"),
            "windows/driver-framework": channel("Microsoft-Windows-DriverFrameworks-UserMode/Operational"),
            "windows/firewall-as": channel("Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"),
            "windows/bits-client": channel("Microsoft-Windows-Bits-Client/Operational"),
            "windows/codeintegrity-operational": channel("Microsoft-Windows-CodeIntegrity/Operational"),
            "windows/appxdeployment-server": channel("Microsoft-Windows-AppXDeploymentServer/Operational"),
            "windows/dns-client": channel("Microsoft-Windows-DNS Client Events/Operational"),
            "windows/msexchange-management": channel("MSExchange Management"),
            "windows/applocker": LogsourcePredicate(["Microsoft-Windows-AppLocker/EXE and DLL", "Microsoft-Windows-AppLocker/MSI and Script",
                                                     "Microsoft-Windows-AppLocker/Packaged app-Deployment", "Microsoft-Windows-AppLocker/Packaged app-Execution"]
                                                    .map { [LogsourcePredicate.Test("winlog.channel", [$0])] }),
            "windows/ntlm": channel("Microsoft-Windows-NTLM/Operational"),
            "windows/printservice-admin": channel("Microsoft-Windows-PrintService/Admin"),
            "windows/printservice-operational": channel("Microsoft-Windows-PrintService/Operational"),
            "windows/smbclient-security": channel("Microsoft-Windows-SmbClient/Security"),
            "windows/terminalservices-localsessionmanager": channel("Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"),
            "windows/openssh": channel("OpenSSH/Operational"),
            "windows/shell-core": channel("Microsoft-Windows-Shell-Core/Operational"),
            "windows/capi2": channel("Microsoft-Windows-CAPI2/Operational"),
            "windows/certificateservicesclient-lifecycle-system": channel("Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational"),
            "windows/diagnosis-scripted": channel("Microsoft-Windows-Diagnosis-Scripted/Operational"),
            "windows/ldap_debug": channel("Microsoft-Windows-LDAP-Client/Debug"),
            "windows/lsa-server": channel("Microsoft-Windows-LSA/Operational"),
            "windows/security-mitigations": channel("Microsoft-Windows-Security-Mitigations/Kernel Mode"),
            "windows/sysmon/operational": channel(sysmonChannel),
            "windows/vhdmp": channel("Microsoft-Windows-VHDMP/Operational"),
            "windows/iis-configuration": channel("Microsoft-IIS-Configuration/Operational"),
            // Linux: the auth pack, and syslog lines in general.
            "linux/": datasets(["linux.auth", "syslog"]),
            "linux/auth": datasets(["linux.auth"]),
            "linux/sshd": LogsourcePredicate([[.init("event.dataset", ["linux.auth"]), .init("process.name", ["sshd"])]]),
            "linux/sudo": LogsourcePredicate([[.init("event.dataset", ["linux.auth"]), .init("process.name", ["sudo"])]]),
            "linux/syslog": datasets(["syslog", "linux.auth"]),
            // Network devices.
            "/firewall": datasets(["panos.traffic", "fortinet.firewall", "cisco.asa", "cisco.ftd", "f5.bigip.afm"]),
            "/dns": datasets(["zeek.dns", "fortinet.firewall"]),
            "/proxy": datasets(["panos.threat", "fortinet.firewall"]),
            "/webserver": datasets(["nginx.access", "apache.access", "f5.bigip.ltm"]),
            "fortigate/event": datasets(["fortinet.firewall"]),
            "cisco/asa": datasets(["cisco.asa"]),
        ]
        for service in ["conn", "dns", "http", "ssl", "files", "notice", "weird", "ssh", "x509", "smb_files", "smb_mapping", "dce_rpc", "kerberos", "rdp"] {
            logsources["zeek/\(service)"] = datasets(["zeek.\(service)"])
        }
        let fields: [String: [String]] = [
            // Windows fields for Security 4688 and ECS, after winlog.event_data.
            "Image": ["winlog.event_data.NewProcessName", "process.executable"],
            "ParentImage": ["winlog.event_data.ParentProcessName", "process.parent.executable"],
            "CommandLine": ["process.command_line"],
            "ParentCommandLine": ["process.parent.command_line"],
            "User": ["user.name"],
            "ProcessId": ["process.pid"],
            "TargetFilename": ["file.path"],
            "TargetObject": ["registry.path"],
            "QueryName": ["dns.question.name"],
            "DestinationIp": ["destination.ip"],
            "DestinationPort": ["destination.port"],
            "SourceIp": ["source.ip"],
            "SourcePort": ["source.port"],
            "EventID": ["winlog.event_id", "event.code"],
            "Channel": ["winlog.channel"],
            "Computer": ["winlog.computer_name", "host.name"],
            "Provider_Name": ["winlog.provider_name"],
            // Network and Linux.
            "src_ip": ["source.ip"], "dst_ip": ["destination.ip"], "src_port": ["source.port"], "dst_port": ["destination.port"],
            "c-ip": ["source.ip"], "cs-uri-query": ["url.query"], "cs-uri-stem": ["url.path"], "c-uri": ["url.original"],
            "cs-method": ["http.request.method"], "sc-status": ["http.response.status_code"], "c-useragent": ["user_agent.original"],
            "cs-host": ["url.domain"], "r-dns": ["url.domain"], "query": ["dns.question.name"], "answer": ["dns.answers.data"],
            "user": ["user.name"], "USER": ["user.effective.name"], "COMMAND": ["system.auth.sudo.command"],
            "id.orig_h": ["source.ip"], "id.resp_h": ["destination.ip"], "id.orig_p": ["source.port"], "id.resp_p": ["destination.port"],
        ]
        return FieldMapping(fields: fields, logsources: logsources)
    }()
}

extension FieldMapping {
    /// This mapping with the entries of a JSON mapping document laid over it (an entry with
    /// the same key replaces the shipped one):
    ///
    /// ```json
    /// {"fields": {"Image": ["process.executable"]},
    ///  "logsources": {"windows/process_creation": [[{"field": "winlog.channel", "values": ["Microsoft-Windows-Sysmon/Operational"]},
    ///                                               {"field": "winlog.event_id", "values": ["1"]}]]},
    ///  "placeholders": {"admins": ["CORP\\Domain Admins"]}}
    /// ```
    public func merging(json: JSONValue) throws(SigmaError) -> FieldMapping {
        guard case .object(let root) = json else { throw SigmaError("invalid_mapping", "a mapping document is a JSON object") }
        var merged = self
        for (key, _) in root.members where !["fields", "logsources", "placeholders"].contains(key) {
            throw SigmaError("invalid_mapping", "unknown key \(key) (fields, logsources, placeholders)")
        }
        func strings(_ value: JSONValue, _ path: String) throws(SigmaError) -> [String] {
            guard case .array(let items) = value else { throw SigmaError("invalid_mapping", "\(path) must be a list of strings") }
            var out: [String] = []
            for item in items {
                guard let text = item.scalarText else { throw SigmaError("invalid_mapping", "\(path) must be a list of strings") }
                out.append(text)
            }
            return out
        }
        if case .object(let fields)? = root["fields"] {
            for (name, value) in fields.members { merged.fields[name] = try strings(value, "fields.\(name)") }
        }
        if case .object(let placeholders)? = root["placeholders"] {
            for (name, value) in placeholders.members { merged.placeholders[name] = try strings(value, "placeholders.\(name)") }
        }
        if case .object(let logsources)? = root["logsources"] {
            for (name, value) in logsources.members {
                guard name.contains("/"), case .array(let clauses) = value else {
                    throw SigmaError("invalid_mapping", "logsources.\(name): the key is product/category (or product/service) and the value a list of clauses")
                }
                var parsed: [[LogsourcePredicate.Test]] = []
                for clause in clauses {
                    guard case .array(let tests) = clause else { throw SigmaError("invalid_mapping", "logsources.\(name): each clause is a list of tests") }
                    var out: [LogsourcePredicate.Test] = []
                    for test in tests {
                        guard case .object(let object) = test, let field = object["field"]?.stringValue, let values = object["values"] else {
                            throw SigmaError("invalid_mapping", "logsources.\(name): a test is {\"field\", \"values\"}")
                        }
                        out.append(LogsourcePredicate.Test(field, Set(try strings(values, "logsources.\(name).values"))))
                    }
                    parsed.append(out)
                }
                merged.logsources[name.lowercased()] = LogsourcePredicate(parsed)
            }
        }
        return merged
    }
}
