import VigilCore

/// The next detection window of a rule: ingest time `[watermark, end)`.
///
/// `end` is the earliest of: now minus the safety lag; the receive time of the oldest event
/// acknowledged but not yet stored (events received from then on may not be visible yet);
/// the watermark plus the maximum window (catch-up after downtime goes window by window, never
/// skipping); and for bucketed rules the last bucket boundary (a bucket is evaluated once,
/// whole). Windows therefore tile ingest time: they never overlap and never leave a gap.
public struct WindowPlanner: Sendable, Equatable {
    /// Safety lag behind now (default 120 s).
    public var lagMillis: Int64
    /// Largest window evaluated at once (default 1 h).
    public var maxWindowMillis: Int64

    public init(lagMillis: Int64 = 120_000, maxWindowMillis: Int64 = 3_600_000) {
        self.lagMillis = max(0, lagMillis)
        self.maxWindowMillis = max(1, maxWindowMillis)
    }

    public func nextWindow(watermark: EpochMillis, now: EpochMillis, oldestUnstored: EpochMillis?, bucketMillis: Int64?) -> Range<EpochMillis>? {
        var end = now - lagMillis
        if let oldestUnstored { end = min(end, oldestUnstored) }
        if let bucket = bucketMillis, bucket > 0 {
            // Whole buckets only; a bucket longer than the max window is still taken whole.
            let limit = max(watermark + maxWindowMillis, Self.floor(watermark, bucket) + bucket)
            end = Self.floor(min(end, limit), bucket)
        } else {
            end = min(end, watermark + maxWindowMillis)
        }
        guard end > watermark else { return nil }
        return watermark..<end
    }

    /// Whether the oldest unstored event is what keeps a rule at `watermark` from a further
    /// window: the pipeline is behind, and the rule has more to evaluate once it catches up.
    public func isHeldBack(watermark: EpochMillis, now: EpochMillis, oldestUnstored: EpochMillis?, bucketMillis: Int64?) -> Bool {
        guard oldestUnstored != nil else { return false }
        let held = nextWindow(watermark: watermark, now: now, oldestUnstored: oldestUnstored, bucketMillis: bucketMillis)?.upperBound ?? watermark
        let free = nextWindow(watermark: watermark, now: now, oldestUnstored: nil, bucketMillis: bucketMillis)?.upperBound ?? watermark
        return held < free
    }

    public static func floor(_ value: Int64, _ step: Int64) -> Int64 {
        let q = value / step
        return (value % step != 0 && value < 0 ? q - 1 : q) * step
    }
}

/// Covered intervals of a rule, the gaps between them, and how far behind now it is.
public struct CoverageReport: Sendable, Equatable {
    public var intervals: [Range<EpochMillis>]
    public var gaps: [Range<EpochMillis>]
    /// Now minus the watermark: the safety lag plus any backlog.
    public var lagMillis: Int64

    public init(intervals: [Range<EpochMillis>], watermark: EpochMillis, now: EpochMillis, lagMillis: Int64) {
        let sorted = intervals.sorted { $0.lowerBound < $1.lowerBound }
        var merged: [Range<EpochMillis>] = []
        for interval in sorted {
            if let last = merged.last, interval.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, interval.upperBound)
            } else {
                merged.append(interval)
            }
        }
        var gaps: [Range<EpochMillis>] = []
        for (a, b) in zip(merged, merged.dropFirst()) where a.upperBound < b.lowerBound { gaps.append(a.upperBound..<b.lowerBound) }
        self.intervals = merged
        self.gaps = gaps
        self.lagMillis = max(0, now - watermark)
    }
}
