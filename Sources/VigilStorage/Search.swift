import Synchronization
import VigilCore
import VigilQuery

/// A time-bounded, tenant-scoped search. Built only by the server from an authenticated
/// request: the tenant and the bounds are never taken from query text.
public struct SearchRequest: Sendable {
    public var tenant: TenantName
    public var query: Query
    /// Inclusive lower bound on `@timestamp`.
    public var from: EpochMillis
    /// Exclusive upper bound on `@timestamp`.
    public var to: EpochMillis
    /// Events per page (aggregations are bounded by `limits.maxGroups` instead).
    public var limit: Int
    /// Continue after this event (newest-first order only).
    public var cursor: SearchCursor?
    public var limits: SearchLimits
    public var budget: QueryBudget
    /// Mark free-text matches in `message`.
    public var highlight: Bool

    public init(tenant: TenantName, query: Query, from: EpochMillis, to: EpochMillis, limit: Int, cursor: SearchCursor? = nil,
                limits: SearchLimits = SearchLimits(), budget: QueryBudget = QueryBudget(timeoutMillis: 10_000), highlight: Bool = true) {
        self.tenant = tenant
        self.query = query
        self.from = from
        self.to = to
        self.limit = limit
        self.cursor = cursor
        self.limits = limits
        self.budget = budget
        self.highlight = highlight
    }
}

/// Where a page ended: the last event's timestamp and its position in its partition.
public struct SearchCursor: Sendable, Equatable {
    public var timestamp: EpochMillis
    public var position: Int64

    public init(timestamp: EpochMillis, position: Int64) {
        self.timestamp = timestamp
        self.position = position
    }
}

/// Where a live tail stands: events received since `since` (less a safety lag, because
/// events are stored shortly after they are received and not always in order), minus those
/// already sent.
public struct TailCursor: Sendable, Equatable {
    public var since: EpochMillis
    /// Keys already sent, with their receive time, inside the lag window.
    public var sent: [EventKey: EpochMillis]

    public init(since: EpochMillis, sent: [EventKey: EpochMillis] = [:]) {
        self.since = since
        self.sent = sent
    }
}

public struct SearchHit: Sendable {
    public var event: Event
    /// The event's position in its partition (for cursors).
    public var position: Int64
    /// Free-text matches by field (only `message` today).
    public var highlights: [String: Highlight]

    public init(event: Event, position: Int64, highlights: [String: Highlight] = [:]) {
        self.event = event
        self.position = position
        self.highlights = highlights
    }
}

public enum SearchResult: Sendable {
    case events(EventPage)
    case table(AggregateTable)
}

public struct EventPage: Sendable {
    /// Newest first (or in the query's `sort` order).
    public var hits: [SearchHit]
    /// Matching events in the range, counted up to `limits.maxTotalCount`.
    public var total: Int
    /// False when counting stopped at the limit: `total` is then a lower bound.
    public var totalIsExact: Bool
    /// Set when more events follow this page.
    public var nextCursor: SearchCursor?

    public init(hits: [SearchHit], total: Int, totalIsExact: Bool, nextCursor: SearchCursor?) {
        self.hits = hits
        self.total = total
        self.totalIsExact = totalIsExact
        self.nextCursor = nextCursor
    }
}

public struct AggregateTable: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[JSONValue]]

    public init(columns: [String], rows: [[JSONValue]]) {
        self.columns = columns
        self.rows = rows
    }
}

/// How long a query may run, and whether its client went away. Stores check it while they
/// execute (SQLite through its progress handler) and stop with `StoreError.interrupted` or
/// `.cancelled`. The time limit reads `clock` (monotonic by default); tests give it a clock
/// that moves only when they say, so a search on a loaded machine is never cut by time.
public final class QueryBudget: Sendable {
    public let timeoutMillis: Int
    private let clock: any VigilClock
    private let deadline: EpochMillis
    private let cancelled = Atomic<Bool>(false)

    private let parent: QueryBudget?
    /// A work limit in progress-handler calls (each about 1,000 SQLite VM steps): unlike a
    /// time limit it gives the same answer on an idle and on a loaded machine.
    private let stepLimit: Int?
    private let steps = Atomic<Int>(0)

    public init(timeoutMillis: Int, clock: any VigilClock = MonotonicClock()) {
        self.timeoutMillis = timeoutMillis
        self.clock = clock
        deadline = clock.now() &+ Int64(max(0, timeoutMillis))
        parent = nil
        stepLimit = nil
    }

    /// A part of `parent` that ends after `millis` at the latest (or with the parent), on
    /// the parent's clock.
    public init(within parent: QueryBudget, millis: Int) {
        timeoutMillis = millis
        clock = parent.clock
        deadline = min(parent.deadline, parent.clock.now() &+ Int64(max(0, millis)))
        self.parent = parent
        stepLimit = nil
    }

    /// A part of `parent` limited by work rather than time: it stops after `progressCalls`
    /// calls of the store's progress handler (or with the parent).
    public init(within parent: QueryBudget, progressCalls: Int) {
        timeoutMillis = parent.timeoutMillis
        clock = parent.clock
        deadline = parent.deadline
        self.parent = parent
        stepLimit = progressCalls
    }

    /// Called by the store's progress handler; true when the query must stop.
    public func progress() -> Bool {
        if let stepLimit, steps.wrappingAdd(1, ordering: .relaxed).newValue > stepLimit { return true }
        return shouldStop
    }

    /// True once a work limit was used up.
    public var isExhausted: Bool { stepLimit.map { steps.load(ordering: .relaxed) > $0 } ?? false }

    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) || (parent?.isCancelled ?? false) }
    public var isExpired: Bool { clock.now() >= deadline }
    public var shouldStop: Bool { isCancelled || isExpired }

    /// Throws the reason to stop, if there is one.
    public func check() throws {
        if isCancelled { throw StoreError(.cancelled, "the search was cancelled") }
        if isExpired { throw StoreError(.interrupted, "the search ran longer than \(timeoutMillis) ms and was interrupted") }
    }
}

/// Matched spans of a field: offsets in Unicode code points (as Python indexes strings),
/// and an HTML-escaped snippet with each match in `<mark>`.
public struct Highlight: Sendable, Equatable {
    public var spans: [Range<Int>]
    public var snippet: String

    public init(spans: [Range<Int>], snippet: String) {
        self.spans = spans
        self.snippet = snippet
    }

    /// Marker characters a store puts around matches in a field's text.
    public static let open: Unicode.Scalar = "\u{1}"
    public static let close: Unicode.Scalar = "\u{2}"

    /// Reads text with matches wrapped in `open`/`close` markers. The snippet keeps the text
    /// around the matches (`context` code points on each side, `…` where it is cut).
    public init?(marked: String, context: Int = 120) {
        var plain: [Unicode.Scalar] = []
        var spans: [Range<Int>] = []
        var start: Int?
        for scalar in marked.unicodeScalars {
            if scalar == Self.open {
                start = plain.count
            } else if scalar == Self.close {
                if let s = start, plain.count > s { spans.append(s..<plain.count) }
                start = nil
            } else {
                plain.append(scalar)
            }
        }
        guard let first = spans.first, let last = spans.last else { return nil }
        let from = max(0, first.lowerBound - context)
        let to = min(plain.count, last.upperBound + context)
        var snippet = from > 0 ? "…" : ""
        var position = from
        for span in spans where span.lowerBound >= from && span.upperBound <= to {
            snippet += Self.escape(plain[position..<span.lowerBound])
            snippet += "<mark>" + Self.escape(plain[span]) + "</mark>"
            position = span.upperBound
        }
        snippet += Self.escape(plain[position..<to])
        if to < plain.count { snippet += "…" }
        self.init(spans: spans, snippet: snippet)
    }

    static func escape(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var out = String.UnicodeScalarView()
        for scalar in scalars {
            switch scalar {
            case "&": out.append(contentsOf: "&amp;".unicodeScalars)
            case "<": out.append(contentsOf: "&lt;".unicodeScalars)
            case ">": out.append(contentsOf: "&gt;".unicodeScalars)
            case "\"": out.append(contentsOf: "&quot;".unicodeScalars)
            case "'": out.append(contentsOf: "&#39;".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }
}
