import Foundation
import Testing
@testable import VigilSyslog

struct UDPReceiveDropsTests {
    // As Linux 6.x prints them (trailing spaces included), with a socket on 53122 (0xCF82).
    let ipv4 = """
       sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
      226: 00000000:C168 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 646027 2 00000000750a7b17 0        
     3836: 0100007F:CF82 00000000:0000 07 00000000:00001D40 00:00000000 00000000     0        0 646026 2 00000000af2c2eba 191      
    """
    let ipv6 = """
      sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
      512: 00000000000000000000000001000000:CF82 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 7001 2 0000000000000000 9
    """

    @Test func theDropsOfTheSocketsOnAPortAreSummed() {
        #expect(UDPReceiveDrops.parse(ipv4, port: 53122) == 191)
        #expect(UDPReceiveDrops.parse(ipv4, port: 49512) == 0)
        #expect(UDPReceiveDrops.parse(ipv4, port: 514) == nil)
        #expect(UDPReceiveDrops.parse(ipv6, port: 53122) == 9)
        #expect(UDPReceiveDrops.parse("", port: 53122) == nil)
        #expect(UDPReceiveDrops.parse("header\nnot a socket line at all\n", port: 53122) == nil)
    }

    @Test func aLiveSocketIsFoundInTheKernelsTable() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        #expect(UDPReceiveDrops.count(port: Int(UInt16(bigEndian: address.sin_port))) == 0)
    }
}
