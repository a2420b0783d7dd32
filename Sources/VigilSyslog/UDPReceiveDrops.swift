import Foundation

/// Datagrams the kernel dropped for the UDP listener because its receive buffer was full.
///
/// They never reach Vigil, so nothing else counts them: a sender faster than the server, for
/// as long as the buffer cannot absorb it, loses lines that `vigil_syslog_frames_total` does
/// not see. Linux keeps a count per socket (the `drops` column of `/proc/net/udp` and
/// `udp6`), which the listener turns into `vigil_syslog_dropped_total{reason="receive_buffer"}`.
public enum UDPReceiveDrops {
    /// The drops of the sockets bound to `port`, summed; nil when no such socket is listed.
    public static func count(port: Int, tables: [String] = ["/proc/self/net/udp", "/proc/self/net/udp6"]) -> UInt64? {
        var total: UInt64?
        for path in tables {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8), let drops = parse(text, port: port) else { continue }
            total = (total ?? 0) + drops
        }
        return total
    }

    /// The summed `drops` column of the table's sockets whose local port is `port`.
    /// A line: `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
    /// timeout inode ref pointer drops`, addresses as `HEXADDR:HEXPORT`.
    public static func parse(_ table: String, port: Int) -> UInt64? {
        var total: UInt64?
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 13, let colon = fields[1].lastIndex(of: ":"),
                  let local = Int(fields[1][fields[1].index(after: colon)...], radix: 16), local == port,
                  let drops = UInt64(fields[fields.count - 1]) else { continue }
            total = (total ?? 0) + drops
        }
        return total
    }
}
