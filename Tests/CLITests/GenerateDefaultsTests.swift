import Foundation
import GPT2
import Testing
import TestSupport

/// `generate`'s defaults come from the model's generation_config.json (then config.json), as
/// `transformers`' `generate()` takes them; flags override them.
@Suite struct GenerateDefaultsTests {
    /// transformers' greedy ids for the tiny model (Tests/GPT2Tests/Fixtures/greedy.json).
    struct GreedyCase: Decodable {
        let prompt: [Int]
        let settings: [String: Double]
        let new_ids: [Int]
    }

    let greedy = try! JSONDecoder().decode([GreedyCase].self, from: Data(contentsOf: fixtures.appendingPathComponent("greedy.json")))

    /// A copy of the tiny model whose generation_config.json is `generationConfig` (none if nil),
    /// with `configChanges` merged into its config.json.
    func model(generationConfig: String?, configChanges: [String: JSONValue] = [:]) throws -> String {
        let directory = try TestPaths.temporaryDirectory("generate-defaults")
        let source = URL(fileURLWithPath: tinyModel)
        try FileManager.default.copyItem(at: source.appendingPathComponent("model.safetensors"), to: directory.appendingPathComponent("model.safetensors"))
        var config = try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: source.appendingPathComponent("config.json")))
        config.merge(configChanges) { $1 }
        try JSONEncoder().encode(config).write(to: directory.appendingPathComponent("config.json"))
        if let generationConfig { try Data(generationConfig.utf8).write(to: directory.appendingPathComponent("generation_config.json")) }
        return directory.path
    }

    /// The ids of each sequence `generate --json` prints.
    func ids(_ arguments: [String]) throws -> [[Int]] {
        let result = runCLI(["generate", "--json"] + arguments)
        try #require(result.status == 0, "\(arguments): \(result.error)")
        return try result.output.split(separator: "\n").map { line in
            struct Line: Decodable { let ids: [Int] }
            return try JSONDecoder().decode(Line.self, from: Data(line.utf8)).ids
        }
    }

    func prompt(_ ids: [Int]) -> [String] { ["--prompt-ids", ids.map(String.init).joined(separator: ",")] }

    @Test func withoutDoSampleGenerationIsGreedyAndMatchesTransformers() throws {
        let directory = try model(generationConfig: #"{"do_sample": false, "bos_token_id": 300, "eos_token_id": 300}"#)
        for (index, testCase) in greedy.enumerated() {
            // The recipe's generate(input_ids, min_length=L) as --min-length: L counts the prompt.
            let minimum = testCase.settings["min_new_tokens"].map { ["--min-length", String(testCase.prompt.count + Int($0))] } ?? []
            let processors = [("repetition_penalty", "--repetition-penalty"), ("no_repeat_ngram_size", "--no-repeat-ngram-size")].flatMap { key, flag in
                testCase.settings[key].map { [flag, $0 == $0.rounded() ? String(Int($0)) : String($0)] } ?? []
            }
            let arguments = ["--model-name-or-path", directory] + prompt(testCase.prompt)
                + ["--max-new-tokens", String(Int(testCase.settings["max_new_tokens"]!))] + minimum + processors
            #expect(try ids(arguments) == [testCase.new_ids], "case \(index)")
        }
        // The committed model's own generation_config.json (saved by transformers) has no
        // do_sample: greedy too, and with no length at all 20 new tokens, as 5.x generates.
        #expect(try ids(["--model-name-or-path", tinyModel] + prompt(greedy[0].prompt)) == [Array(greedy[0].new_ids.prefix(20))])
    }

    @Test func lengthsAndProcessorsComeFromTheFile() throws {
        let testCase = greedy[3]
        #expect(testCase.settings["repetition_penalty"] == 1.3 && testCase.settings["no_repeat_ngram_size"] == 2)
        let directory = try model(generationConfig: #"{"max_new_tokens": 27, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2, "eos_token_id": 300}"#)
        #expect(try ids(["--model-name-or-path", directory] + prompt(testCase.prompt)) == [testCase.new_ids])
        // The recipe's min_length: eos (300 here) is suppressed until prompt plus new tokens reach it.
        let minimum = try model(generationConfig: #"{"max_length": 31, "min_length": 31, "eos_token_id": 300}"#)
        #expect(try ids(["--model-name-or-path", minimum] + prompt(greedy[1].prompt)) == [greedy[1].new_ids])
    }

    @Test func doSampleInTheFileSamplesWithItsSettings() throws {
        let sampling = #""do_sample": true, "top_k": 5, "temperature": 0.7, "max_new_tokens": 12, "num_return_sequences": 3, "eos_token_id": 300"#
        let fromFile = try ids(["--model-name-or-path", try model(generationConfig: "{\(sampling)}")] + prompt([5, 6]))
        let plain = try model(generationConfig: #"{"eos_token_id": 300}"#)
        let fromFlags = try ids(["--model-name-or-path", plain, "--do-sample", "--top-k", "5", "--temperature", "0.7", "--max-new-tokens", "12",
                                 "--num-return-sequences", "3"] + prompt([5, 6]))
        #expect(fromFile.count == 3 && fromFile == fromFlags, "the file's settings are the flags' settings")
        let greedyIDs = try ids(["--model-name-or-path", plain, "--max-new-tokens", "12"] + prompt([5, 6]))[0]
        #expect(fromFile.contains { $0 != greedyIDs }, "sampled, not greedy")
        let otherTopK = try ids(["--model-name-or-path", plain, "--do-sample", "--temperature", "0.7", "--max-new-tokens", "12",
                                 "--num-return-sequences", "3"] + prompt([5, 6]))
        #expect(otherTopK != fromFile, "top_k 5, not the default 50")
        // top_k 1 leaves the most likely token alone: sampling with the file's top_k is greedy.
        let topOne = try model(generationConfig: #"{"do_sample": true, "top_k": 1, "max_new_tokens": 12, "eos_token_id": 300}"#)
        #expect(try ids(["--model-name-or-path", topOne] + prompt([5, 6])) == [greedyIDs])
    }

    @Test func flagsOverrideTheFile() throws {
        let directory = try model(generationConfig: #"{"do_sample": true, "top_k": 1, "max_new_tokens": 12, "num_return_sequences": 3, "eos_token_id": 300}"#)
        let testCase = greedy[0]
        // --greedy beats do_sample, --max-length replaces max_new_tokens, --num-return-sequences the count.
        #expect(try ids(["--model-name-or-path", directory, "--greedy", "--max-length", "10", "--num-return-sequences", "1"] + prompt(testCase.prompt))
                == [Array(testCase.new_ids.prefix(9))])
        // --top-k 0 beats top_k 1: all tokens, so the texts are no longer the greedy one.
        let sampled = try ids(["--model-name-or-path", directory, "--top-k", "0"] + prompt(testCase.prompt))
        #expect(sampled.count == 3 && sampled.contains { $0 != Array(testCase.new_ids.prefix(12)) })
        #expect(try ids(["--model-name-or-path", directory] + prompt(testCase.prompt)) == Array(repeating: Array(testCase.new_ids.prefix(12)), count: 3))
    }

    @Test func withoutAGenerationConfigTheDefaultsComeFromConfigJSON() throws {
        // config.json's eos (300) ends the sequence: 30 greedy tokens of case 1 hold no 300, so
        // suppressing nothing gives the fixture's ids; a legacy do_sample there turns sampling on.
        let directory = try model(generationConfig: nil)
        #expect(try ids(["--model-name-or-path", directory, "--max-new-tokens", "30"] + prompt(greedy[0].prompt)) == [greedy[0].new_ids])
        let legacy = try model(generationConfig: nil, configChanges: ["do_sample": .bool(true), "top_k": .number(1), "max_length": .number(13)])
        #expect(try ids(["--model-name-or-path", legacy] + prompt(greedy[0].prompt)) == [Array(greedy[0].new_ids.prefix(12))])
        let sampling = try model(generationConfig: nil, configChanges: ["do_sample": .bool(true)])
        #expect(try ids(["--model-name-or-path", sampling, "--max-new-tokens", "30"] + prompt(greedy[0].prompt)) != [greedy[0].new_ids])
    }

    @Test(arguments: [("not json", "not a JSON object of generation settings"),
                      (#"{"top_k": "many"}"#, "top_k is not an integer"),
                      (#"{"do_sample": "yes"}"#, "do_sample is not true or false"),
                      (#"{"eos_token_id": [300, "x"]}"#, "eos_token_id is not a token id or a list of them"),
                      (#"{"num_beams": 4}"#, "num_beams 4 is not supported"),
                      (#"{"do_sample": true, "temperature": 0}"#, "temperature must be positive, got 0.0"),
                      (#"{"max_new_tokens": 0}"#, "max_new_tokens must be positive, got 0")])
    func aBadGenerationConfigIsAOneLineErrorNamingTheFile(json: String, message: String) throws {
        let directory = try model(generationConfig: json)
        let result = runCLI(["generate", "--model-name-or-path", directory, "--prompt-ids", "5", "--json"])
        let path = URL(fileURLWithPath: directory).appendingPathComponent("generation_config.json").path
        #expect(result.status == 1)
        #expect(result.error.contains("\(path): \(message)"), "\(result.error)")
        #expect(!result.error.contains("\n"), "one line: \(result.error)")
    }

    @Test func aGreedyFileIgnoresSamplingSettingsItDoesNotUse() throws {
        // transformers only warns about temperature without do_sample; so does nothing here.
        let directory = try model(generationConfig: #"{"temperature": 0, "max_new_tokens": 5, "eos_token_id": 300}"#)
        #expect(try ids(["--model-name-or-path", directory] + prompt(greedy[0].prompt)) == [Array(greedy[0].new_ids.prefix(5))])
    }

    @Test func fromModelConfigWritesWhatSavePretrainedWrites() throws {
        let modelConfig = try GPT2Config.load(path: tinyModel + "/config.json")
        let written = try GenerationConfig(modelConfig: modelConfig)
        // transformers 5.24's save_pretrained wrote the fixture's file for this config.
        let reference = try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: URL(fileURLWithPath: tinyModel + "/generation_config.json")))
        #expect(try JSONDecoder().decode([String: JSONValue].self, from: written.jsonData()) == reference)

        // The recipe's ids after Trainer aligned them: eos listed twice, pad set; read back as written.
        var aligned = modelConfig
        (aligned.eosTokenID, aligned.padTokenID) = (50257, 50258)
        var config = try GenerationConfig(modelConfig: aligned)
        config.eosTokenIDs = [50257, 50256]
        let directory = try TestPaths.temporaryDirectory("generation-config")
        try config.write(directory: directory.path)
        let fields = try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: directory.appendingPathComponent("generation_config.json")))
        #expect(fields["eos_token_id"] == .array([.number(50257), .number(50256)]) && fields["pad_token_id"] == .number(50258))
        #expect(fields["transformers_version"] == .string(GenerationConfig.transformersVersion) && fields["_from_model_config"] == .bool(true))
        var read = try GenerationConfig.load(directory: directory.path, modelConfig: modelConfig)
        #expect(read.source == directory.appendingPathComponent("generation_config.json").path && read.isGenerationConfigFile)
        read.source = config.source
        #expect(read == config)
    }
}
