extension FlatFields {
    /// Random fields over `schema`, for randomized tests and benchmarks (replayable from the
    /// generator's seed): each path is set, with probability `density`, to one of the kinds of
    /// value a field holds, equally often: a text of `texts` as a range of the line, the same
    /// copied after it, an integer of `integers`, a literal of the schema, a list of up to three
    /// texts, or an object of up to three members (distinct texts as keys).
    ///
    /// - Parameters:
    ///   - texts: the texts, written one after the other (a space between) as the line.
    ///   - integers: the integers to pick from; not empty.
    public static func random(_ schema: FlatSchema, texts: [String], integers: [Int64], density: Double,
                              using generator: inout some RandomNumberGenerator) -> FlatFields {
        var line: [UInt8] = []
        var ranges: [Range<Int>] = []
        for text in texts {
            let start = line.count
            line += Array(text.utf8)
            ranges.append(start..<line.count)
            line.append(UInt8(ascii: " "))
        }
        var fields = FlatFields(schema: schema, bytes: line)
        for path in schema.paths.indices where Double.random(in: 0..<1, using: &generator) < density {
            switch Int.random(in: 0..<6, using: &generator) {
            case 0: fields.set(path, text: ranges.randomElement(using: &generator)!)
            case 1: fields.set(path, copying: Array(texts.randomElement(using: &generator)!.utf8))
            case 2: fields.set(path, int: integers.randomElement(using: &generator)!)
            case 3 where !schema.literalValues.isEmpty:
                fields.set(path, literal: Int.random(in: 0..<schema.literalValues.count, using: &generator))
            case 4: fields.set(path, texts: (0..<Int.random(in: 0...3, using: &generator)).map { _ in ranges.randomElement(using: &generator)! })
            case 5:
                let keys = ranges.shuffled(using: &generator).prefix(Int.random(in: 0...3, using: &generator))
                fields.set(path, members: keys.map { ($0, ranges.randomElement(using: &generator)!) })
            default: fields.set(path, text: ranges.randomElement(using: &generator)!)
            }
        }
        return fields
    }
}
