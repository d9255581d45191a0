import Distributed
import Foundation
import Training

/// `gpt2-ddp evaluate`: the validation loss and perplexity `train` reports, for any model directory.
enum EvaluateCommand: Command {
    static let spec = CommandSpec(
        name: "evaluate",
        summary: "Print the token-weighted validation loss and perplexity of a model on a data file.",
        flags: TrainCommand.modelAndDataFlags + [
            .option("--validation-file", "FILE", "data to evaluate on: .txt, .csv or .jsonl"),
        ])

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let file = try arguments.required("--validation-file")
        var settings = try TrainCommand.commonArguments(arguments, outputDir: "", dataFile: file)
        settings.validationFile = file
        try TrainCommand.runOnEveryRank(command: spec.name, console: console) { communicator in
            try settings.checkAgreement(across: communicator)
            let run = try PreparedRun.prepare(settings, dataFile: file, validationRequired: true, communicator: communicator,
                                              log: { if communicator.isMain { console.warn($0) } })
            let loss = try evaluate(model: run.model, dataset: run.validation ?? run.train, batchSize: settings.perDeviceEvalBatchSize,
                                    collator: run.collator, communicator: communicator)
            guard communicator.isMain else { return }
            console.print("eval_loss: \(Float(loss.mean))")
            console.print("eval_perplexity: \(Float(exp(loss.mean)))")
            console.print("eval_tokens: \(loss.count)")
        }
    }
}
