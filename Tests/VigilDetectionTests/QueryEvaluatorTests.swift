import Testing
import VigilCore
import VigilQuery
@testable import VigilDetection

struct QueryEvaluatorTests {
    static let event = SigmaFixture.event("""
        {"message":"Failed password for Root from 10.0.0.5 port 22 ssh2","host":{"name":"web-1"},
         "source":{"ip":"10.0.0.5","port":51234},"event":{"category":["authentication"],"outcome":"failure"},
         "@timestamp":"2026-01-01T00:00:00Z","user":{"name":"root"}}
        """)

    func check(_ query: String) throws -> Bool {
        QueryEvaluator.evaluate(try QueryParser().parse(query).filter, on: Self.event)
    }

    @Test func freeTextWorksOnMessageTokens() throws {
        #expect(try check("failed"))
        #expect(try check("ROOT"))
        #expect(try check("\"password for root\""))
        #expect(try !check("\"root for password\""))
        #expect(try check("pass*"))
        #expect(try !check("pass"))
        #expect(try !check("web"))  // host.name is not free text
    }

    @Test func fieldPredicates() throws {
        #expect(try check("host.name:web-1"))
        #expect(try !check("host.name:WEB-1"))
        #expect(try check("host.name:web*"))
        #expect(try check("source.port:51234"))
        #expect(try check("source.port>=50000"))
        #expect(try !check("source.port<1024"))
        #expect(try check("source.ip:10.0.0.0/8"))
        #expect(try !check("source.ip:192.168.0.0/16"))
        #expect(try check("event.category:authentication"))
        #expect(try check("_exists_:user.name"))
        #expect(try !check("_exists_:process.pid"))
        #expect(try check("@timestamp>=\"2025-12-31T00:00:00Z\""))
    }

    @Test func booleanOperators() throws {
        #expect(try check("failed AND host.name:web-1"))
        #expect(try check("accepted OR host.name:web-1"))
        #expect(try !check("failed AND NOT user.name:root"))
        #expect(try check("*"))
    }
}
