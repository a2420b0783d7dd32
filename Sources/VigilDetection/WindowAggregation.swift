import VigilCore

/// The stateful part of threshold and correlation rules: group, window, count, compare.
struct WindowAggregation: Sendable {
    enum Metric: Sendable {
        /// Number of matching events (Sigma `event_count`, native `threshold`).
        case eventCount
        /// Number of distinct values of a field (Sigma `value_count`); one accessor per member rule.
        case valueCount([FieldAccessor])
        /// Number of distinct member rules matched (`temporal`), in order for `temporal_ordered`.
        case temporal(ordered: Bool)
    }

    struct Member: Sendable {
        let predicate: EventPredicate
        /// Accessors for the group-by fields, in group-by order.
        let groupAccessors: [FieldAccessor]
    }

    let members: [Member]
    let groupBy: [String]
    let timespanMillis: Int64
    let metric: Metric
    /// All must hold (Sigma allows e.g. `gte: 5` together with `lte: 10`).
    let conditions: [(ComparisonOperator, Double)]

    func holds(_ value: Int) -> Bool {
        conditions.allSatisfy { $0.0.holds(Double(value), $0.1) }
    }

    struct Hit {
        let event: WindowEvent
        /// Indices of the member rules this event matches.
        let members: [Int]
    }

    func evaluate(ruleID: String, events: [WindowEvent]) -> [RuleAlert] {
        var groups: [[String]: [Hit]] = [:]
        var groupOrder: [[String]] = []
        for event in events.sorted(by: WindowEvent.order) {
            let document = JSONValue.object(event.fields)
            let matched = members.indices.filter { members[$0].predicate.evaluate(document) }
            guard let first = matched.first else { continue }
            let key = members[first].groupAccessors.map { $0.texts(in: document).first ?? "" }
            if groups[key] == nil { groupOrder.append(key) }
            groups[key, default: []].append(Hit(event: event, members: matched))
        }
        var alerts: [RuleAlert] = []
        for key in groupOrder {
            let hits = groups[key]!
            var start = 0
            while start < hits.count {
                var end = start
                while end + 1 < hits.count, hits[end + 1].event.timestamp - hits[start].event.timestamp <= timespanMillis {
                    end += 1
                }
                let slice = hits[start...end]
                if let used = satisfied(slice) {
                    alerts.append(RuleAlert(
                        ruleID: ruleID,
                        group: zip(groupBy, key).map { RuleAlert.GroupValue(field: $0, value: $1) },
                        eventIDs: used.map(\.event.id),
                        firstSeen: used.first!.event.timestamp,
                        lastSeen: used.last!.event.timestamp
                    ))
                    start = end + 1
                } else {
                    start += 1
                }
            }
        }
        return alerts
    }

    /// The hits that make up an alert when the window meets the condition.
    func satisfied(_ hits: ArraySlice<Hit>) -> [Hit]? {
        switch metric {
        case .eventCount:
            return holds(hits.count) ? Array(hits) : nil
        case .valueCount(let accessors):
            var values = Set<String>()
            for hit in hits {
                let accessor = accessors[hit.members[0]]
                for text in accessor.texts(in: .object(hit.event.fields)) { values.insert(text) }
            }
            return holds(values.count) ? Array(hits) : nil
        case .temporal(ordered: false):
            let distinct = Set(hits.flatMap(\.members))
            return holds(distinct.count) ? Array(hits) : nil
        case .temporal(ordered: true):
            // Greedy subsequence: the earliest event for each step in order.
            var step = 0
            var used: [Hit] = []
            for hit in hits where step < members.count && hit.members.contains(step) {
                used.append(hit)
                step += 1
            }
            return holds(step) && step == members.count ? used : nil
        }
    }
}
