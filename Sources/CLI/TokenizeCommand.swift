import Data
import Foundation
import Tokenizer

/// `gpt2-ddp tokenize`: GPT-2's tokenizer on the command line, and its throughput.
enum TokenizeCommand: Command {
    static let spec = CommandSpec(
        name: "tokenize",
        summary: "Print the token ids of a text or of each example of a file as JSON arrays (or decode ids back to text).",
        flags: [
            .option("--tokenizer", "DIR", "tokenizer directory (vocab.json and merges.txt, or tokenizer.json)"),
            .option("--text", "TEXT", "one text (with --decode: a JSON array of ids)"),
            .option("--file", "FILE", "a .txt (an example per line), .csv (per row) or .jsonl file (per record), one output line per example, blank ones too; with --decode, a JSON array per line"),
            .option("--text-column", "NAME", "text column of a .csv file", default: "text"),
            .option("--text-field", "NAME", "text field of a .jsonl file", default: "text"),
            .option("--add-token", "TOKEN", "add a special token after the vocabulary, in the order given", repeatable: true),
            .toggle("--decode", "turn arrays of ids into text"),
            .toggle("--skip-special-tokens", "with --decode, leave special tokens out"),
            .toggle("--benchmark", "report single-thread encoding throughput on --file instead of printing ids"),
            .option("--runs", "N", "with --benchmark, timed runs (the median is reported)", default: "5"),
        ])

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let tokenizer = try GPT2Tokenizer.load(directory: URL(fileURLWithPath: try arguments.required("--tokenizer")))
        let added = arguments.strings("--add-token")
        if !added.isEmpty { tokenizer.addTokens(added, special: true) }
        let text = arguments.string("--text"), file = arguments.string("--file")
        guard (text == nil) != (file == nil) else { throw CLIError.usage(command: spec.name, message: "give exactly one of --text and --file") }
        if arguments.isSet("--benchmark") {
            guard let file else { throw CLIError.usage(command: spec.name, message: "--benchmark needs --file") }
            return try benchmark(tokenizer, file: file, runs: try TrainCommand.positiveInt(arguments, "--runs"), console: console)
        }
        if arguments.isSet("--decode") {
            let lines = try text.map { [$0] } ?? DataFile.lines(path: file!)
            for (index, line) in lines.enumerated() {
                guard let ids = try? JSONDecoder().decode([Int].self, from: Data(line.utf8)) else {
                    throw CLIError.failure("\(file.map { "\($0):\(index + 1)" } ?? "--text"): expected a JSON array of token ids")
                }
                console.print(try tokenizer.decode(ids, skipSpecialTokens: arguments.isSet("--skip-special-tokens")))
            }
            return
        }
        guard let file else {
            console.print(idList(tokenizer.encode(text!)))
            return
        }
        // Every record, blank ones too, so that output line k belongs to record k.
        guard case let .texts(records) = try DataFile.open(path: file, textColumn: try arguments.required("--text-column"),
                                                          textField: try arguments.required("--text-field")) else {
            throw CLIError.failure("\(file): holds input_ids already")
        }
        while let text = try records.nextRecord() { console.print(idList(tokenizer.encode(text))) }
    }

    private static func idList(_ ids: [Int]) -> String { "[" + ids.map(String.init).joined(separator: ", ") + "]" }

    /// MB/s of one thread encoding the file as one text and line by line, each run with a fresh
    /// tokenizer so that its cache starts cold, as in one real pass over a corpus.
    static func benchmark(_ tokenizer: GPT2Tokenizer, file: String, runs: Int, console: Console) throws {
        // Read as `tokenize --file` reads a .txt, so a bad file gets the same one-line error.
        let lines = try DataFile.lines(path: file)
        let text = lines.map { $0 + "\n" }.joined()
        let megabytes = Double(text.utf8.count) / 1e6
        for mode in ["whole", "lines"] {
            var times: [Double] = []
            var tokens = 0
            for _ in 0..<runs {
                let fresh = tokenizer.copy()
                let start = DispatchTime.now().uptimeNanoseconds
                tokens = mode == "whole" ? fresh.encode(text).count : lines.reduce(0) { $0 + fresh.encode($1).count }
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            let median = times.sorted()[times.count / 2]
            console.print(#"{"what":"tokenize","file":"\#(URL(fileURLWithPath: file).lastPathComponent)","mode":"\#(mode)","tokens":\#(tokens),"#
                + #""runs":\#(runs),"seconds":\#(String(format: "%.4f", median)),"mb_per_s":\#(String(format: "%.2f", megabytes / median))}"#)
        }
    }
}
