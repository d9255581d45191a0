import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import GPT2
import Testing
import Training

/// loss.svg parsed as XML: each element with its attributes and text, in document order.
struct ParsedSVG {
    struct Element {
        let name: String
        let attributes: [String: String]
        var text = ""
        /// The classes of the groups it sits in, innermost last.
        let groups: [String]
    }
    var elements: [Element] = []

    init(_ svg: String) throws {
        final class Collector: NSObject, XMLParserDelegate {
            var elements: [Element] = []
            var open: [Int] = []
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String] = [:]) {
                let groups = open.map { elements[$0] }.filter { $0.name == "g" }.compactMap { $0.attributes["class"] }
                elements.append(Element(name: name, attributes: attributes, groups: groups))
                open.append(elements.count - 1)
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) {
                if let last = open.last { elements[last].text += string }
            }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { open.removeLast() }
        }
        let collector = Collector()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = collector
        guard parser.parse() else { throw parser.parserError ?? CocoaError(.coderReadCorrupt) }
        elements = collector.elements
    }

    func elements(_ name: String, class kind: String) -> [Element] {
        elements.filter { $0.name == name && $0.attributes["class"] == kind }
    }

    func labels(_ kind: String) throws -> [Double] {
        try elements("text", class: kind).map { try #require(Double($0.text), "tick label '\($0.text)' is a number") }
    }
}

/// 1, 2 or 5 × 10^k.
func isRound(_ value: Double) -> Bool {
    let exponent = floor(log10(value) + 1e-9), mantissa = value / pow(10, exponent)
    return [1.0, 2, 5].contains { abs(mantissa - $0) < 1e-6 }
}

/// Linear ticks: evenly spaced at a round step, every value a multiple of it.
func expectRoundLinearTicks(_ ticks: [Double], _ axis: String) {
    #expect(ticks.count >= 3, "\(axis): \(ticks)")
    let step = ticks[1] - ticks[0]
    #expect(isRound(step), "\(axis) step \(step)")
    for (a, b) in zip(ticks, ticks.dropFirst()) { #expect(abs((b - a) - step) < step * 1e-6, "\(axis): \(ticks)") }
    for tick in ticks { #expect(abs(tick / step - (tick / step).rounded()) < 1e-6, "\(axis): \(tick) is a multiple of \(step)") }
}

/// A run's records as Trainer writes them: a window every 5 steps (loss, learning rate with a
/// warmup), an evaluation every 20 that is best at step 120 and rises after it.
func runRecords(loss: (Double) -> Double) -> [MetricsRecord] {
    var records: [MetricsRecord] = []
    for step in stride(from: 5, through: 200, by: 5) {
        let s = Double(step)
        records.append(["step": .number(s), "epoch": .number(s / 100), "loss": .number(loss(s)),
                        "learning_rate": .number(s < 20 ? 3e-3 * s / 20 : 3e-3 * (200 - s) / 180), "grad_norm": .number(1)])
        if step % 20 == 0 {
            records.append(["step": .number(s), "eval_loss": .number(loss(s) + 0.3 + 0.001 * pow(s - 120, 2)), "eval_perplexity": .number(1)])
        }
    }
    records.append(["step": .number(200), "train_loss": .number(3)])
    return records
}

@Test func lossChartIsWellFormedSVGWithEverySeries() throws {
    let records = runRecords { 2.2 + 8.7 * exp(-$0 / 40) }
    let svg = try ParsedSVG(LossChart.svg(records, title: "ideas & <friends>"))
    #expect(svg.elements.first?.name == "svg")
    #expect(svg.elements.first { $0.name == "title" }?.text == "ideas & <friends>")
    #expect(svg.elements("text", class: "title").map(\.text) == ["ideas & <friends>"])

    let train = svg.elements("polyline", class: "train-loss")
    #expect(train.count == 1 && train[0].attributes["points"]?.split(separator: " ").count == 40, "one point per logged window")
    #expect(svg.elements("circle", class: "eval-loss").count == 10, "one point per evaluation")
    let rate = svg.elements("polyline", class: "learning-rate")
    #expect(rate.count == 1 && rate[0].groups == ["lr-panel"] && rate[0].attributes["points"]?.split(separator: " ").count == 40)

    let best = svg.elements.filter { $0.name == "g" && $0.attributes["class"] == "best-eval" }
    #expect(best.count == 1 && best[0].attributes["data-step"] == "120")
    #expect(svg.elements.contains { $0.groups.last == "best-eval" && $0.name == "text" && $0.text.hasPrefix("best eval") && $0.text.hasSuffix("at step 120") })

    let axisLabels = svg.elements("text", class: "axis-label").map(\.text)
    #expect(axisLabels.contains("step") && axisLabels.contains("loss") && axisLabels.contains("learning rate"), "\(axisLabels)")
    let values = records.compactMap { ($0["loss"] ?? $0["eval_loss"])?.doubleValue }
    let (lowest, highest) = (values.min()!, values.max()!)
    #expect(highest / lowest < 10)
    #expect(svg.elements.first { $0.attributes["class"] == "tick-loss-axis" }?.attributes["data-scale"] == "linear", "\(lowest) to \(highest) is within a decade")

    for axis in ["tick-step", "tick-loss", "tick-lr"] { expectRoundLinearTicks(try svg.labels(axis), axis) }
    let steps = try svg.labels("tick-step")
    #expect(steps.first == 0 && steps.last == 200, "\(steps)")
    // The loss axis runs from a tick at or below the lowest value to one at or above the highest.
    let losses = try svg.labels("tick-loss")
    #expect(losses.first! <= lowest && losses.last! >= highest && losses.last! - losses.first! <= 2 * (highest - lowest), "\(losses)")
    #expect(try svg.labels("tick-lr").first == 0)
}

@Test func lossChartSwitchesToALogAxisPastADecade() throws {
    let svg = try ParsedSVG(LossChart.svg(runRecords { 0.3 + 60 * exp(-$0 / 20) }, title: "steep"))
    #expect(svg.elements.first { $0.attributes["class"] == "tick-loss-axis" }?.attributes["data-scale"] == "log")
    #expect(svg.elements("text", class: "axis-label").map(\.text).contains("loss (log scale)"))
    let ticks = try svg.labels("tick-loss")
    #expect(ticks.allSatisfy(isRound), "\(ticks)")
    #expect(ticks.contains(1) && ticks.contains(10), "powers of ten: \(ticks)")
    #expect(ticks == ticks.sorted() && ticks.first! <= 0.3 && ticks.last! >= 37, "\(ticks)")
    // Ticks evenly spread on the page: y falls by the same amount per decade.
    let positions = Dictionary(uniqueKeysWithValues: svg.elements("text", class: "tick-loss").map { (Double($0.text)!, Double($0.attributes["y"]!)!) })
    let decade = positions[1]! - positions[10]!
    #expect(decade > 0 && abs((positions[0.5]! - positions[5]!) - decade) < 0.2, "\(positions)")
}

@Test func lossChartWithoutRecordsOrLearningRateIsStillWellFormed() throws {
    let empty = try ParsedSVG(LossChart.svg([], title: "new run"))
    #expect(empty.elements.first?.name == "svg" && empty.elements("text", class: "title").map(\.text) == ["new run"])
    // An evaluation-only history (evaluate's, or eval on start): no train curve, no lr panel.
    let evalOnly = try ParsedSVG(LossChart.svg([["step": .number(0), "eval_loss": .number(4)]]))
    #expect(evalOnly.elements("circle", class: "eval-loss").count == 1 && evalOnly.elements("polyline", class: "learning-rate").isEmpty)
    #expect(evalOnly.elements("text", class: "title").map(\.text) == ["loss"])
    expectRoundLinearTicks(try evalOnly.labels("tick-loss"), "tick-loss")
}
