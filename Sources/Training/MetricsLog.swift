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

    /// A record as its line of the file. JSON has no NaN or infinity: such a value (a perplexity
    /// that overflowed) is written as null.
    static func line(_ record: MetricsRecord) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(record.mapValues { $0.doubleValue.map { $0.isFinite } == false ? JSONValue.null : $0 }) + Data("\n".utf8)
    }

    public func append(_ record: MetricsRecord) throws {
        let line = try Self.line(record)
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
        var data = Data()
        for record in kept { data += try Self.line(record) }
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

/// Draws a run's metrics as an SVG chart: train loss and evaluations against step (on a log axis
/// when the loss spans more than a decade), the best evaluation marked, and the learning rate in a
/// panel below. Elements carry classes (`train-loss`, `eval-loss`, `best-eval`, `lr-panel`,
/// `tick-step`, `tick-loss`, `tick-lr`) so that tests and scripts can find the series.
public enum LossChart {
    public static let fileName = "loss.svg"

    /// `title` names the run (its output directory's name); without one the chart is called "loss".
    public static func svg(_ records: [MetricsRecord], title: String? = nil) -> String {
        func series(_ key: String) -> [(step: Double, value: Double)] {
            records.compactMap { record in
                guard let step = record["step"]?.doubleValue, let value = record[key]?.doubleValue, value.isFinite else { return nil }
                return (step, value)
            }.sorted { $0.step < $1.step }
        }
        let train = series("loss"), eval = series("eval_loss"), rates = series("learning_rate")
        let heading = escape(title ?? "loss")
        let (grid, ink, muted) = ("#e4e4e4", "#333", "#999")
        let losses = train + eval
        let (width, left, right, top) = (800.0, 84.0, 24.0, 52.0)
        guard let minLoss = losses.map(\.value).min(), let maxLoss = losses.map(\.value).max() else {
            return [#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="80" font-family="sans-serif" font-size="13">"#,
                    "<title>\(heading)</title>", #"<rect width="100%" height="100%" fill="white"/>"#,
                    #"<text class="title" x="\#(left)" y="30" font-size="16" font-weight="bold">\#(heading)</text>"#,
                    #"<text x="\#(left)" y="58" fill="\#(muted)">no loss recorded yet</text>"#, "</svg>"].joined(separator: "\n")
        }
        let steps = (losses + rates).map(\.step)
        let stepAxis = Axis.steps(steps.min()!, steps.max()!)
        // Loss falls fastest at the start: past a decade a linear axis flattens everything after it.
        let lossAxis = minLoss > 0 && maxLoss / minLoss > 10 ? Axis.logarithmic(minLoss, maxLoss) : Axis.linear(minLoss, maxLoss)
        let lossPanel = (top: top, bottom: top + 300)
        let ratePanel = rates.isEmpty ? nil : (top: lossPanel.bottom + 28, bottom: lossPanel.bottom + 128)
        let rateAxis = Axis.linear(0, rates.map(\.value).max() ?? 0)
        let plotBottom = ratePanel?.bottom ?? lossPanel.bottom
        let height = plotBottom + 62

        func x(_ step: Double) -> Double { left + stepAxis.fraction(step) * (width - left - right) }
        func y(_ value: Double, _ axis: Axis, _ panel: (top: Double, bottom: Double)) -> Double {
            panel.bottom - axis.fraction(value) * (panel.bottom - panel.top)
        }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }
        func polyline(_ points: [(step: Double, value: Double)], _ axis: Axis, _ panel: (top: Double, bottom: Double),
                      colour: String, kind: String, dashed: Bool = false) -> String {
            let coordinates = points.map { "\(f(x($0.step))),\(f(y($0.value, axis, panel)))" }.joined(separator: " ")
            return #"<polyline class="\#(kind)" fill="none" stroke="\#(colour)" stroke-width="\#(dashed ? 1.2 : 1.8)""#
                + (dashed ? #" stroke-dasharray="4 3""# : "") + #" stroke-linejoin="round" points="\#(coordinates)"/>"#
        }
        /// Frame, grid lines and value ticks of one panel; `label` is the rotated axis title.
        func frame(_ axis: Axis, _ panel: (top: Double, bottom: Double), tickClass: String, label: String) -> [String] {
            var parts = [#"<g class="\#(tickClass)-axis" data-scale="\#(axis.isLogarithmic ? "log" : "linear")">"#]
            for tick in axis.ticks {
                let position = f(y(tick, axis, panel))
                parts.append(#"<line x1="\#(left)" y1="\#(position)" x2="\#(width - right)" y2="\#(position)" stroke="\#(grid)"/>"#)
                parts.append(#"<text class="\#(tickClass)" x="\#(left - 6)" y="\#(f(y(tick, axis, panel) + 4))" text-anchor="end">\#(axis.label(tick))</text>"#)
            }
            for tick in stepAxis.ticks {
                parts.append(#"<line x1="\#(f(x(tick)))" y1="\#(panel.top)" x2="\#(f(x(tick)))" y2="\#(panel.bottom)" stroke="\#(grid)"/>"#)
            }
            let middle = f((panel.top + panel.bottom) / 2)
            parts.append(#"<text class="axis-label" transform="translate(18 \#(middle)) rotate(-90)" text-anchor="middle">\#(label)</text>"#)
            parts.append(#"<rect x="\#(left)" y="\#(panel.top)" width="\#(width - left - right)" height="\#(panel.bottom - panel.top)" fill="none" stroke="\#(ink)"/>"#)
            parts.append("</g>")
            return parts
        }

        let (trainColour, evalColour, rateColour) = ("#1f77b4", "#d62728", "#2ca02c")
        var parts = [
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" font-family="sans-serif" font-size="12">"#,
            "<title>\(heading)</title>",
            #"<rect width="100%" height="100%" fill="white"/>"#,
            #"<text class="title" x="\#(left)" y="30" font-size="16" font-weight="bold">\#(heading)</text>"#,
        ]
        parts += frame(lossAxis, lossPanel, tickClass: "tick-loss", label: lossAxis.isLogarithmic ? "loss (log scale)" : "loss")
        for tick in stepAxis.ticks {
            parts.append(#"<text class="tick-step" x="\#(f(x(tick)))" y="\#(f(plotBottom + 17))" text-anchor="middle">\#(stepAxis.label(tick))</text>"#)
        }
        parts.append(#"<text class="axis-label" x="\#(f(left + (width - left - right) / 2))" y="\#(f(plotBottom + 42))" text-anchor="middle">step</text>"#)

        let best = eval.min { $0.value < $1.value }
        if let best {
            // A guide through both panels: the learning rate at which the best evaluation came.
            parts.append(#"<line class="best-eval-guide" x1="\#(f(x(best.step)))" y1="\#(lossPanel.top)" x2="\#(f(x(best.step)))" y2="\#(plotBottom)" stroke="\#(evalColour)" stroke-opacity="0.35" stroke-dasharray="2 3"/>"#)
        }
        if train.count == 1 {
            parts.append(#"<circle class="train-loss" cx="\#(f(x(train[0].step)))" cy="\#(f(y(train[0].value, lossAxis, lossPanel)))" r="2.5" fill="\#(trainColour)"/>"#)
        } else if !train.isEmpty {
            parts.append(polyline(train, lossAxis, lossPanel, colour: trainColour, kind: "train-loss"))
        }
        if !eval.isEmpty {
            parts.append(polyline(eval, lossAxis, lossPanel, colour: evalColour, kind: "eval-loss-line", dashed: true))
            for point in eval {
                parts.append(#"<circle class="eval-loss" cx="\#(f(x(point.step)))" cy="\#(f(y(point.value, lossAxis, lossPanel)))" r="3" fill="\#(evalColour)"/>"#)
            }
        }
        if let best {
            let (cx, cy) = (x(best.step), y(best.value, lossAxis, lossPanel))
            // The label goes above the point, on the side with room, on a white ground: the train
            // curve often runs through it.
            let text = "best eval \(String(format: "%.4f", best.value)) at step \(Int(best.step))"
            let labelWidth = 7.4 * Double(text.count) + 10
            let labelLeft = cx + 12 + labelWidth > width - right ? cx - 12 - labelWidth : cx + 12
            let labelTop = max(cy - 30, lossPanel.top + 4)
            parts.append(#"<g class="best-eval" data-step="\#(Int(best.step))" data-loss="\#(best.value)">"#)
            parts.append(#"<circle cx="\#(f(cx))" cy="\#(f(cy))" r="7" fill="none" stroke="\#(evalColour)" stroke-width="2"/>"#)
            parts.append(#"<rect x="\#(f(labelLeft))" y="\#(f(labelTop))" width="\#(f(labelWidth))" height="18" rx="3" fill="white" fill-opacity="0.9" stroke="\#(evalColour)" stroke-opacity="0.5"/>"#)
            parts.append(#"<text x="\#(f(labelLeft + 5))" y="\#(f(labelTop + 13))" fill="\#(evalColour)" font-weight="bold">\#(text)</text>"#)
            parts.append("</g>")
        }
        // Legend in the top right corner, where a falling loss leaves room: each entry's symbol
        // drawn around (0, 0), then its text.
        var legend: [(symbol: String, text: String)] = []
        if !train.isEmpty { legend.append((#"<line x1="-10" y1="0" x2="10" y2="0" stroke="\#(trainColour)" stroke-width="2"/>"#, "train loss")) }
        if !eval.isEmpty {
            legend.append((#"<circle r="3" fill="\#(evalColour)"/>"#, "eval loss"))
            legend.append((#"<circle r="6" fill="none" stroke="\#(evalColour)" stroke-width="2"/>"#, "best eval"))
        }
        let legendLeft = width - right - 110
        parts.append(#"<g class="legend"><rect x="\#(legendLeft)" y="\#(lossPanel.top + 8)" width="100" height="\#(8 + 18 * legend.count)" fill="white" fill-opacity="0.85" stroke="\#(muted)"/>"#)
        for (index, entry) in legend.enumerated() {
            let row = lossPanel.top + 22 + 18 * Double(index)
            parts.append(#"<g transform="translate(\#(legendLeft + 18) \#(row - 4))">\#(entry.symbol)</g>"#)
            parts.append(#"<text x="\#(legendLeft + 34)" y="\#(row)">\#(entry.text)</text>"#)
        }
        parts.append("</g>")

        if let ratePanel {
            parts.append(#"<g class="lr-panel">"#)
            parts += frame(rateAxis, ratePanel, tickClass: "tick-lr", label: "learning rate")
            parts.append(polyline(rates, rateAxis, ratePanel, colour: rateColour, kind: "learning-rate"))
            parts.append("</g>")
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    /// One axis: its domain, where its ticks go and how their values are written.
    struct Axis {
        let low: Double, high: Double
        let isLogarithmic: Bool
        let ticks: [Double]
        /// The spacing of linear ticks, which sets how many decimals their labels need.
        let resolution: Double?

        func fraction(_ value: Double) -> Double {
            isLogarithmic ? (log10(value) - log10(low)) / (log10(high) - log10(low)) : (value - low) / (high - low)
        }

        /// 1, 2 or 5 × 10^k: the spacing of about `count` intervals over `span`.
        static func roundStep(_ span: Double, count: Double) -> Double {
            let raw = span / count, magnitude = pow(10, floor(log10(raw)))
            return [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw * (1 - 1e-9) }!
        }

        /// From the round value at or below `low` to the one at or above `high`, ticked at a round step.
        static func linear(_ low: Double, _ high: Double) -> Axis {
            let (low, high) = high > low ? (low, high) : (low - max(abs(low) * 0.1, 1e-9), high + max(abs(high) * 0.1, 1e-9))
            let step = roundStep(high - low, count: 5)
            let first = Int(floor(low / step + 1e-9)), last = Int(ceil(high / step - 1e-9))
            return Axis(low: Double(first) * step, high: Double(last) * step, isLogarithmic: false,
                        ticks: (first...last).map { Double($0) * step }, resolution: step)
        }

        /// Steps: from a round step at or below the first to the last step itself (a run's length).
        static func steps(_ first: Double, _ last: Double) -> Axis {
            let last = max(last, first + 1)
            let step = max(roundStep(last - first, count: 6), 1)
            let start = floor(first / step) * step
            let count = Int(floor((last - start) / step + 1e-9))
            return Axis(low: start, high: last, isLogarithmic: false, ticks: (0...count).map { start + Double($0) * step }, resolution: step)
        }

        /// From the largest 1, 2 or 5 × 10^k at or below `low` to the smallest at or above `high`;
        /// ticks at each of them, or at the powers of ten alone when they span more than three decades.
        static func logarithmic(_ low: Double, _ high: Double) -> Axis {
            let decades = Int(floor(log10(low)))...Int(ceil(log10(high)))
            let candidates = decades.flatMap { exponent in [1.0, 2, 5].map { $0 * pow(10, Double(exponent)) } }
            let bottom = candidates.last { $0 <= low * (1 + 1e-9) }!, top = candidates.first { $0 >= high * (1 - 1e-9) }!
            let inRange = candidates.filter { $0 >= bottom && $0 <= top }
            let powers = inRange.filter { log10($0).rounded() == log10($0) }
            let ticks = log10(top / bottom) > 3 && powers.count >= 2 ? powers : inRange
            return Axis(low: bottom, high: top, isLogarithmic: true, ticks: ticks, resolution: nil)
        }

        /// Decimals while the step is 0.001 or more, then 1e-4 style, so that every label is exact.
        func label(_ value: Double) -> String {
            guard value != 0 else { return "0" }
            let resolution = self.resolution ?? value
            let stepExponent = Int(floor(log10(resolution) + 1e-9))
            if resolution >= 1e-3 { return String(format: "%.\(max(0, -stepExponent))f", value) }
            let exponent = Int(floor(log10(abs(value)) + 1e-9))
            return String(format: "%.\(max(0, exponent - stepExponent))fe%d", value / pow(10, Double(exponent)), exponent)
        }
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
