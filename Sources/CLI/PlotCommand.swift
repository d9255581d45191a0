import Foundation
import SafeTensors
import Training

/// `gpt2-ddp plot RUN_DIR`: draws loss.svg from a run's metrics.jsonl.
enum PlotCommand: Command {
    static let spec = CommandSpec(
        name: "plot",
        summary: "Draw a run's train and eval loss and its learning rate (its metrics.jsonl) as an SVG file.",
        positionals: [("RUN_DIR", "a train --output-dir")],
        flags: [.option("--output", "FILE", "where to write the picture (default: RUN_DIR/loss.svg)"),
                .option("--title", "TEXT", "the chart's title (default: RUN_DIR's name, as train draws it)")])

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let directory = URL(fileURLWithPath: try arguments.positional(0, "RUN_DIR"))
        let records = try MetricsLog.read(path: directory.appendingPathComponent(MetricsLog.fileName).path)
        let output = arguments.string("--output") ?? directory.appendingPathComponent(LossChart.fileName).path
        let title = arguments.string("--title") ?? directory.absoluteURL.standardized.lastPathComponent
        // Only the run's own chart is drawn again in place; any other existing file is the user's.
        let runsOwnChart = arguments.string("--output") == nil && RunDirectory.lists(LossChart.fileName, in: directory.path)
        if FileManager.default.fileExists(atPath: output) && !runsOwnChart {
            throw CLIError.refusal("\(output): exists and is not a chart this run wrote; give another --output")
        }
        try AtomicFile.write(Data(LossChart.svg(records, title: title).utf8), to: output)
        console.print("wrote \(output) from \(records.count) records")
    }
}
