// The shipped logsource and field mappings. Changing an entry changes what loaded rules
// match, so entries are added, not edited, unless they were wrong.

extension SigmaMappingConfiguration {
    /// The mappings Vigil ships: Windows, Linux, macOS and network sources.
    public static let `default` = SigmaMappingConfiguration(
        logsources: windowsLogsources + linuxLogsources + macOSLogsources + networkLogsources
    )

    // MARK: - Windows

    static let sysmonChannel = "Microsoft-Windows-Sysmon/Operational"

    /// Sigma Windows field → ECS, tried after `winlog.event_data.<Field>`.
    static let windowsFields: [String: [String]] = [
        "EventID": ["winlog.event_id", "event.code"],
        "Channel": ["winlog.channel"],
        "Provider_Name": ["winlog.provider_name"],
        "Computer": ["winlog.computer_name", "host.name"],
        "Image": ["process.executable", "winlog.event_data.NewProcessName"],
        "CommandLine": ["process.command_line"],
        "ParentImage": ["process.parent.executable", "winlog.event_data.ParentProcessName"],
        "ParentCommandLine": ["process.parent.command_line"],
        "OriginalFileName": ["process.pe.original_file_name"],
        "Product": ["process.pe.product"],
        "Company": ["process.pe.company"],
        "Description": ["process.pe.description"],
        "FileVersion": ["process.pe.file_version"],
        "ProcessId": ["process.pid"],
        "ParentProcessId": ["process.parent.pid"],
        "CurrentDirectory": ["process.working_directory"],
        "User": ["user.name"],
        "TargetFilename": ["file.path"],
        "ImageLoaded": ["dll.path"],
        "QueryName": ["dns.question.name"],
        "DestinationIp": ["destination.ip"],
        "DestinationPort": ["destination.port"],
        "DestinationHostname": ["destination.domain"],
        "SourceIp": ["source.ip"],
        "SourcePort": ["source.port"],
        "Protocol": ["network.transport"],
        "TargetObject": ["registry.path"],
        "Details": ["registry.data.strings"],
        "SourceImage": ["process.executable"],
    ]

    static func windows(category: String? = nil, service: String? = nil, _ predicate: LogsourcePredicate) -> LogsourceMapping {
        LogsourceMapping(
            product: "windows", category: category, service: service, predicate: predicate,
            rawFieldPrefixes: ["winlog.event_data."], fields: windowsFields
        )
    }

    static func channel(_ names: String...) -> LogsourcePredicate {
        LogsourcePredicate([[FieldCondition("winlog.channel", .equalsAny(names))]])
    }

    static func events(_ channel: String, _ ids: Int...) -> LogsourcePredicate {
        LogsourcePredicate([[
            FieldCondition("winlog.channel", .equalsAny([channel])),
            FieldCondition("winlog.event_id", .equalsAny(ids.map(String.init))),
        ]])
    }

    static func sysmon(_ ids: Int...) -> LogsourcePredicate {
        LogsourcePredicate([[
            FieldCondition("winlog.channel", .equalsAny([sysmonChannel])),
            FieldCondition("winlog.event_id", .equalsAny(ids.map(String.init))),
        ]])
    }

    static let powershellOperational = ["Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational"]

    static let windowsLogsources: [LogsourceMapping] = [
        windows(LogsourcePredicate([[FieldCondition("winlog.channel", .exists)]])),
        // Sysmon event ids (and their Security audit equivalents where Sigma defines one).
        windows(category: "process_creation", .anyOf(sysmon(1), events("Security", 4688))),
        windows(category: "process_termination", .anyOf(sysmon(5), events("Security", 4689))),
        windows(category: "file_change", sysmon(2)),
        windows(category: "network_connection", sysmon(3)),
        windows(category: "sysmon_status", sysmon(4, 16)),
        windows(category: "driver_load", sysmon(6)),
        windows(category: "image_load", sysmon(7)),
        windows(category: "create_remote_thread", sysmon(8)),
        windows(category: "raw_access_thread", sysmon(9)),
        windows(category: "process_access", sysmon(10)),
        windows(category: "file_event", sysmon(11)),
        windows(category: "registry_add", sysmon(12)),
        windows(category: "registry_delete", sysmon(12)),
        windows(category: "registry_set", sysmon(13)),
        windows(category: "registry_rename", sysmon(14)),
        windows(category: "registry_event", sysmon(12, 13, 14)),
        windows(category: "create_stream_hash", sysmon(15)),
        windows(category: "pipe_created", sysmon(17, 18)),
        windows(category: "wmi_event", sysmon(19, 20, 21)),
        windows(category: "dns_query", sysmon(22)),
        windows(category: "file_delete", sysmon(23, 26)),
        windows(category: "clipboard_capture", sysmon(24)),
        windows(category: "process_tampering", sysmon(25)),
        windows(category: "file_block_executable", sysmon(27)),
        windows(category: "file_block_shredding", sysmon(28)),
        windows(category: "file_executable_detected", sysmon(29)),
        windows(category: "sysmon_error", sysmon(255)),
        // PowerShell.
        windows(category: "ps_module", LogsourcePredicate(powershellOperational.map { [FieldCondition("winlog.channel", .equalsAny([$0])), .equals("winlog.event_id", "4103")] })),
        windows(category: "ps_script", LogsourcePredicate(powershellOperational.map { [FieldCondition("winlog.channel", .equalsAny([$0])), .equals("winlog.event_id", "4104")] })),
        windows(category: "ps_classic_start", events("Windows PowerShell", 400)),
        windows(category: "ps_classic_provider_start", events("Windows PowerShell", 600)),
        windows(category: "ps_classic_script", events("Windows PowerShell", 800)),
    ] + windowsServiceChannels.map { service, channels in
        windows(service: service, LogsourcePredicate([[FieldCondition("winlog.channel", .equalsAny(channels))]]))
    }

    /// Sigma Windows services and the event log channels they read.
    static let windowsServiceChannels: [(String, [String])] = [
        ("security", ["Security"]),
        ("system", ["System"]),
        ("application", ["Application"]),
        ("sysmon", [sysmonChannel]),
        ("powershell", powershellOperational),
        ("powershell-classic", ["Windows PowerShell"]),
        ("taskscheduler", ["Microsoft-Windows-TaskScheduler/Operational"]),
        ("wmi", ["Microsoft-Windows-WMI-Activity/Operational"]),
        ("dns-server", ["DNS Server"]),
        ("dns-server-analytic", ["Microsoft-Windows-DNS-Server/Analytical"]),
        ("dns-client", ["Microsoft-Windows-DNS Client Events/Operational"]),
        ("driver-framework", ["Microsoft-Windows-DriverFrameworks-UserMode/Operational"]),
        ("ntlm", ["Microsoft-Windows-NTLM/Operational"]),
        ("windefend", ["Microsoft-Windows-Windows Defender/Operational"]),
        ("applocker", [
            "Microsoft-Windows-AppLocker/MSI and Script", "Microsoft-Windows-AppLocker/EXE and DLL",
            "Microsoft-Windows-AppLocker/Packaged app-Deployment", "Microsoft-Windows-AppLocker/Packaged app-Execution",
        ]),
        ("msexchange-management", ["MSExchange Management"]),
        ("printservice-admin", ["Microsoft-Windows-PrintService/Admin"]),
        ("printservice-operational", ["Microsoft-Windows-PrintService/Operational"]),
        ("smbclient-security", ["Microsoft-Windows-SmbClient/Security"]),
        ("smbclient-connectivity", ["Microsoft-Windows-SmbClient/Connectivity"]),
        ("smbserver-connectivity", ["Microsoft-Windows-SMBServer/Connectivity"]),
        ("codeintegrity-operational", ["Microsoft-Windows-CodeIntegrity/Operational"]),
        ("firewall-as", ["Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"]),
        ("bits-client", ["Microsoft-Windows-Bits-Client/Operational"]),
        ("appxdeployment-server", ["Microsoft-Windows-AppXDeploymentServer/Operational"]),
        ("appxpackaging-om", ["Microsoft-Windows-AppxPackaging/Operational"]),
        ("appmodel-runtime", ["Microsoft-Windows-AppModel-Runtime/Admin"]),
        ("security-mitigations", ["Microsoft-Windows-Security-Mitigations/Kernel Mode", "Microsoft-Windows-Security-Mitigations/User Mode"]),
        ("terminalservices-localsessionmanager", ["Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"]),
        ("shell-core", ["Microsoft-Windows-Shell-Core/Operational"]),
        ("openssh", ["OpenSSH/Operational"]),
        ("ldap", ["Microsoft-Windows-LDAP-Client/Debug"]),
        ("lsa-server", ["Microsoft-Windows-LSA/Operational"]),
        ("capi2", ["Microsoft-Windows-CAPI2/Operational"]),
        ("certificateservicesclient-lifecycle-system", ["Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational"]),
        ("diagnosis-scripted", ["Microsoft-Windows-Diagnosis-Scripted/Operational"]),
        ("iis-configuration", ["Microsoft-IIS-Configuration/Operational"]),
        ("microsoft-servicebus-client", ["Microsoft-ServiceBus-Client"]),
        ("hyper-v-worker", ["Microsoft-Windows-Hyper-V-Worker-Admin"]),
        ("kernel-shimengine", ["Microsoft-Windows-Kernel-ShimEngine/Operational"]),
        ("vhdmp", ["Microsoft-Windows-VHDMP/Operational"]),
        ("bitlocker", ["Microsoft-Windows-BitLocker/BitLocker Management"]),
        ("sense", ["Microsoft-Windows-SENSE/Operational"]),
        ("ntfs", ["Microsoft-Windows-Ntfs/Operational"]),
        ("wmi-activity", ["Microsoft-Windows-WMI-Activity/Operational"]),
    ]

    // MARK: - Linux and macOS (ECS from auditd-style agents)

    static let processFields: [String: [String]] = [
        "Image": ["process.executable"],
        "CommandLine": ["process.command_line"],
        "ParentImage": ["process.parent.executable"],
        "ParentCommandLine": ["process.parent.command_line"],
        "ProcessId": ["process.pid"],
        "ParentProcessId": ["process.parent.pid"],
        "CurrentDirectory": ["process.working_directory"],
        "User": ["user.name"],
        "LogonId": ["process.user.id"],
        "TargetFilename": ["file.path"],
        "DestinationIp": ["destination.ip"],
        "DestinationPort": ["destination.port"],
        "DestinationHostname": ["destination.domain"],
        "SourceIp": ["source.ip"],
        "SourcePort": ["source.port"],
        "Initiated": ["network.direction"],
    ]

    static func ecs(os: String, category: String) -> LogsourcePredicate {
        LogsourcePredicate([[.equals("event.category", category), .equals("host.os.type", os)]])
    }

    static let linuxLogsources: [LogsourceMapping] = [
        LogsourceMapping(product: "linux", predicate: LogsourcePredicate([
            [FieldCondition("event.dataset", .hasPrefix("linux."))], [.equals("host.os.type", "linux")],
        ])),
        LogsourceMapping(product: "linux", category: "process_creation", predicate: .anyOf(
            ecs(os: "linux", category: "process"), LogsourcePredicate([[.equals("event.dataset", "linux.process")]])
        ), fields: processFields),
        LogsourceMapping(product: "linux", category: "file_event", predicate: .anyOf(
            ecs(os: "linux", category: "file"), LogsourcePredicate([[.equals("event.dataset", "linux.file")]])
        ), fields: processFields),
        LogsourceMapping(product: "linux", category: "network_connection", predicate: .anyOf(
            ecs(os: "linux", category: "network"), LogsourcePredicate([[.equals("event.dataset", "linux.network")]])
        ), fields: processFields),
        LogsourceMapping(product: "linux", service: "auditd", predicate: LogsourcePredicate([[.equals("event.dataset", "linux.auditd", "auditd.log")]]), rawFieldPrefixes: ["auditd."]),
        LogsourceMapping(product: "linux", service: "auth", predicate: LogsourcePredicate([[.equals("event.dataset", "linux.auth")]])),
        LogsourceMapping(product: "linux", service: "sshd", predicate: LogsourcePredicate([[.equals("event.dataset", "linux.auth")]])),
        LogsourceMapping(product: "linux", service: "sudo", predicate: LogsourcePredicate([[.equals("event.dataset", "linux.auth")]])),
        LogsourceMapping(product: "linux", service: "syslog", predicate: LogsourcePredicate([[.equals("event.dataset", "linux.syslog")]])),
        LogsourceMapping(product: "linux", service: "cron", predicate: LogsourcePredicate([[.equals("event.dataset", "linux.cron")], [.equals("event.dataset", "linux.syslog"), .equals("process.name", "cron", "CRON", "crond")]])),
    ]

    static let macOSLogsources: [LogsourceMapping] = [
        LogsourceMapping(product: "macos", category: "process_creation", predicate: ecs(os: "macos", category: "process"), fields: processFields),
        LogsourceMapping(product: "macos", category: "file_event", predicate: ecs(os: "macos", category: "file"), fields: processFields),
    ]

    // MARK: - Network

    static let firewallFields: [String: [String]] = [
        "src_ip": ["source.ip"], "dst_ip": ["destination.ip"],
        "src_port": ["source.port"], "dst_port": ["destination.port"],
        "action": ["event.action"], "protocol": ["network.transport"],
        "username": ["user.name"],
    ]

    static let httpFields: [String: [String]] = [
        "c-uri": ["url.original"], "c-uri-query": ["url.query"], "c-uri-stem": ["url.path"],
        "c-uri-extension": ["url.extension"], "cs-uri": ["url.original"], "cs-uri-query": ["url.query"],
        "cs-uri-stem": ["url.path"], "c-useragent": ["user_agent.original"], "cs-user-agent": ["user_agent.original"],
        "cs-method": ["http.request.method"], "cs-host": ["url.domain"], "cs-referrer": ["http.request.referrer"],
        "cs-referer": ["http.request.referrer"], "sc-status": ["http.response.status_code"], "c-ip": ["source.ip"],
        "s-ip": ["destination.ip"], "r-dns": ["destination.domain", "url.domain"], "cs-cookie": ["http.request.cookie"],
        "cs-version": ["http.version"], "dst_ip": ["destination.ip"], "src_ip": ["source.ip"],
        "cs-username": ["user.name"], "cs-bytes": ["http.request.bytes"], "sc-bytes": ["http.response.bytes"],
    ]

    static let dnsFields: [String: [String]] = [
        "query": ["dns.question.name"], "answer": ["dns.answers.data"], "record_type": ["dns.question.type"],
        "src_ip": ["source.ip"], "dst_ip": ["destination.ip"], "response_code": ["dns.response_code"],
    ]

    static let zeekFields: [String: [String]] = [
        "id.orig_h": ["source.ip"], "id.orig_p": ["source.port"],
        "id.resp_h": ["destination.ip"], "id.resp_p": ["destination.port"],
        "query": ["dns.question.name"], "uri": ["url.original"], "host": ["url.domain"],
        "user_agent": ["user_agent.original"], "method": ["http.request.method"],
    ]

    static let zeekServices = ["conn", "dns", "http", "ssl", "x509", "files", "smb_files", "smb_mapping", "dce_rpc", "rdp", "kerberos", "ntlm", "notice", "ssh", "smtp"]

    static let networkLogsources: [LogsourceMapping] = [
        LogsourceMapping(category: "firewall", predicate: LogsourcePredicate([[.equals(
            "event.dataset", "panos.traffic", "fortinet.firewall", "fortinet.traffic", "cisco.asa", "cisco.ftd",
            "pfsense.filterlog", "iptables.log", "zeek.conn"
        )]]), fields: firewallFields),
        LogsourceMapping(category: "dns", predicate: LogsourcePredicate([
            [.equals("event.dataset", "zeek.dns", "dns.query", "bind.query", "infoblox.dns", "panos.dns")],
        ]), fields: dnsFields),
        LogsourceMapping(category: "proxy", predicate: LogsourcePredicate([
            [.equals("event.dataset", "squid.access", "zscaler.web", "bluecoat.proxy", "panos.url", "fortinet.webfilter", "zeek.http")],
        ]), fields: httpFields),
        LogsourceMapping(category: "webserver", predicate: LogsourcePredicate([
            [.equals("event.dataset", "nginx.access", "apache.access", "iis.access", "web.access")],
        ]), fields: httpFields),
        LogsourceMapping(service: "apache", predicate: LogsourcePredicate([[.equals("event.dataset", "apache.access", "apache.error")]]), fields: httpFields),
        LogsourceMapping(service: "nginx", predicate: LogsourcePredicate([[.equals("event.dataset", "nginx.access", "nginx.error")]]), fields: httpFields),
        // Network appliances: keyword rules over their syslog lines, plus vendor key-values.
        LogsourceMapping(product: "fortigate", service: "event", predicate: LogsourcePredicate([[.equals("event.dataset", "fortinet.event")]]),
                         rawFieldPrefixes: ["fortinet.event.", "fortinet."], fields: ["action": ["event.action"]]),
        LogsourceMapping(product: "fortios", service: "sslvpnd", predicate: LogsourcePredicate([[.equals("event.dataset", "fortinet.event", "fortinet.vpn")]])),
        LogsourceMapping(product: "paloalto", category: "appliance", service: "globalprotect", predicate: LogsourcePredicate([[.equals("event.dataset", "panos.globalprotect")]])),
        LogsourceMapping(product: "juniper", service: "bgp", predicate: LogsourcePredicate([[.equals("event.dataset", "juniper.junos")]])),
        LogsourceMapping(product: "huawei", service: "bgp", predicate: LogsourcePredicate([[.equals("event.dataset", "huawei.vrp")]])),
        // Antivirus detections in ECS (`event.category: malware`).
        LogsourceMapping(category: "antivirus", predicate: LogsourcePredicate([[.equals("event.category", "malware")]]),
                         fields: ["Signature": ["rule.name", "threat.indicator.name"], "Filename": ["file.path"], "FileName": ["file.path"]]),
    ] + ["aaa", "syslog", "bgp", "ldp"].map { service in
        LogsourceMapping(product: "cisco", service: service, predicate: LogsourcePredicate([[.equals("event.dataset", "cisco.ios", "cisco.asa", "cisco.nxos")]]))
    } + zeekServices.map { service in
        LogsourceMapping(product: "zeek", service: service, predicate: LogsourcePredicate([[.equals("event.dataset", "zeek.\(service)")]]), rawFieldPrefixes: ["zeek.\(service)."], fields: zeekFields)
    }
}
