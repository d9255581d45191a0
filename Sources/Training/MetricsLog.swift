import Foundation
import GPT2
import SafeTensors

#if canImport(Glibc)
import Glibc
#endif

/// One line of `metrics.jsonl`: a training step window (`loss`), an evaluation (`eval_loss`) or
/// the closing summary (`train_loss`).
public typealias MetricsRecord = [String: JSONValue]

/// Appends records to `metrics.jsonl`, one JSON object per line, each line with a single `write`
/// so that a crash leaves at most a torn last line, which the next start cuts off.
public struct MetricsLog {
    public static let fileName = "metrics.jsonl"
    public let path: String

    public init(directory: String) {
        path = URL(fileURLWithPath: directory).appendingPathComponent(Self.fileName).path
    }

    public func append(_ record: MetricsRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // JSON has no NaN or infinity: such a value (a perplexity that overflowed) is written as null.
        var line = try encoder.encode(record.mapValues { $0.doubleValue.map { $0.isFinite } == false ? JSONValue.null : $0 })
        line.append(UInt8(ascii: "\n"))
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw TrainingError.io(path: path, problem: "cannot be opened for appending: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let written = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == line.count else {
            let problem = written < 0 ? String(cString: strerror(errno)) : "only \(written) of \(line.count) bytes were written"
            throw TrainingError.io(path: path, problem: "cannot append a record: \(problem)")
        }
    }

    /// Cuts the file back to its last complete line; returns what was cut, for the log.
    public func cutTornLastLine() throws -> String? {
        guard let data = FileManager.default.contents(atPath: path), let last = data.last, last != UInt8(ascii: "\n") else { return nil }
        let kept = data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        guard truncate(path, off_t(kept)) == 0 else { throw TrainingError.io(path: path, problem: "cannot cut its torn last line: \(String(cString: strerror(errno)))") }
        return "\(path): cut a torn last line of \(data.count - kept) bytes (an interrupted write): \(String(decoding: data[kept...].prefix(80), as: UTF8.self))"
    }

    /// On resume from `step`: drops the records of the steps after it and the closing summary,
    /// which the run logs again.
    public func keepRecords(throughStep step: Int) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let records = try Self.read(path: path)
        let kept = records.filter { ($0["step"]?.doubleValue ?? 0) <= Double(step) && $0["train_loss"] == nil }
        guard kept.count < records.count else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for record in kept { data += try encoder.encode(record) + Data("\n".utf8) }
        try AtomicFile.write(data, to: path)
        return "\(path): dropped \(records.count - kept.count) records of the steps after \(step), which this run logs again"
    }

    public static func read(path: String) throws -> [MetricsRecord] {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError.io(path: path, problem: "no such file") }
        return try String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated().map { index, line in
            do {
                return try JSONDecoder().decode(MetricsRecord.self, from: Data(line.utf8))
            } catch {
                throw TrainingError.io(path: "\(path):\(index + 1)", problem: "not a JSON object")
            }
        }
    }
}

extension JSONValue {
    /// A Float metric: its shortest decimal form reads back as the same Float.
    public static func float(_ value: Double) -> JSONValue { .number(Double(Float(value))) }

    public var doubleValue: Double? {
        if case let .number(value) = self { return value }
        return nil
    }
}

/// Draws train and eval loss against step as an SVG line chart.
public enum LossChart {
    public static let fileName = "loss.svg"

    public static func svg(_ records: [MetricsRecord]) -> String {
        func series(_ key: String) -> [(Double, Double)] {
            records.compactMap { record in
                guard let step = record["step"]?.doubleValue, let value = record[key]?.doubleValue, value.isFinite else { return nil }
                return (step, value)
            }
        }
        let train = series("loss"), eval = series("eval_loss")
        let all = train + eval
        let (width, height, margin) = (720.0, 420.0, 56.0)
        guard let minStep = all.map(\.0).min(), let maxStep = all.map(\.0).max(),
              let minLoss = all.map(\.1).min(), let maxLoss = all.map(\.1).max() else {
            return #"<svg xmlns="http://www.w3.org/2000/svg" width="720" height="60"><text x="10" y="30" font-family="sans-serif">no loss recorded yet</text></svg>"#
        }
        let stepSpan = max(maxStep - minStep, 1), lossSpan = max(maxLoss - minLoss, 1e-6)
        func x(_ step: Double) -> Double { margin + (step - minStep) / stepSpan * (width - 2 * margin) }
        func y(_ loss: Double) -> Double { height - margin - (loss - minLoss) / lossSpan * (height - 2 * margin) }
        func polyline(_ points: [(Double, Double)], colour: String) -> String {
            let coordinates = points.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
            return #"<polyline fill="none" stroke="\#(colour)" stroke-width="2" points="\#(coordinates)"/>"#
        }
        var parts = [
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" font-family="sans-serif" font-size="12">"#,
            #"<rect width="100%" height="100%" fill="white"/>"#,
            #"<line x1="\#(margin)" y1="\#(height - margin)" x2="\#(width - margin)" y2="\#(height - margin)" stroke="black"/>"#,
            #"<line x1="\#(margin)" y1="\#(margin)" x2="\#(margin)" y2="\#(height - margin)" stroke="black"/>"#,
        ]
        for tick in 0...4 {
            let loss = minLoss + lossSpan * Double(tick) / 4, step = minStep + stepSpan * Double(tick) / 4
            parts.append(#"<text x="4" y="\#(String(format: "%.1f", y(loss) + 4))">\#(String(format: "%.3f", loss))</text>"#)
            parts.append(#"<text x="\#(String(format: "%.1f", x(step) - 10))" y="\#(height - margin + 18)">\#(Int(step))</text>"#)
        }
        parts.append(#"<text x="\#(width / 2 - 15)" y="\#(height - 8)">step</text>"#)
        let (trainColour, evalColour) = ("#1f77b4", "#d62728")
        if !train.isEmpty { parts.append(polyline(train, colour: trainColour)) }
        if !eval.isEmpty {
            parts.append(polyline(eval, colour: evalColour))
            for point in eval {
                parts.append(#"<circle cx="\#(String(format: "%.1f", x(point.0)))" cy="\#(String(format: "%.1f", y(point.1)))" r="3" fill="\#(evalColour)"/>"#)
            }
        }
        parts.append(#"<text x="\#(width - margin - 120)" y="\#(margin - 20)" fill="\#(trainColour)">train loss</text>"#)
        parts.append(#"<text x="\#(width - margin - 50)" y="\#(margin - 20)" fill="\#(evalColour)">eval loss</text>"#)
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }
}
