import Foundation
import GPT2
import Kernels
import SafeTensors
import TestSupport
import Testing

let tinyModelDirectory = TestPaths.modelFixtures.appendingPathComponent("tiny-gpt2")

@Test func configReadsHuggingFaceJSONAndWritesItBack() throws {
    let config = try GPT2Config.load(path: tinyModelDirectory.appendingPathComponent("config.json").path)
    #expect(config.nEmbd == 32 && config.nLayer == 2 && config.nHead == 4 && config.nPositions == 32 && config.vocabSize == 301)
    #expect(config.bosTokenID == 300 && config.eosTokenID == 300 && config.padTokenID == nil)
    #expect(config.activationFunction == "gelu_new" && config.layerNormEpsilon == 1e-5 && config.tieWordEmbeddings)
    #expect(config.extraFields["summary_type"] == .string("cls_index"), "fields this program does not use are kept")
    let again = try JSONDecoder().decode(GPT2Config.self, from: try config.jsonData())
    #expect(again == config)
    let written = try JSONSerialization.jsonObject(with: try config.jsonData()) as? [String: Any]
    #expect(written?["model_type"] as? String == "gpt2")
    #expect(written?["n_embd"] as? Int == 32)
}

@Test func configFallsBackToNCtxAndRejectsWhatItCannotCompute() throws {
    let old = try JSONDecoder().decode(GPT2Config.self, from: Data(#"{"n_ctx": 64, "n_embd": 16, "n_head": 2, "n_layer": 1}"#.utf8))
    #expect(old.nPositions == 64 && old.vocabSize == 50257 && old.eosTokenID == 50256)
    let directory = try TestPaths.temporaryDirectory("config")
    for (json, problem) in [(#"{"n_embd": 10, "n_head": 3}"#, "not divisible"),
                            (#"{"activation_function": "relu"}"#, "not supported"),
                            (#"{"tie_word_embeddings": false}"#, "untied"),
                            (#"{"n_layer": "two"}"#, "n_layer is not an integer"),
                            (#"[1, 2]"#, "not a JSON object")] {
        let path = directory.appendingPathComponent("config.json").path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try GPT2Config.load(path: path)
            Issue.record("accepted \(json)")
        } catch let error as ModelError {
            #expect(error.description.hasPrefix(path) && error.description.contains(problem), "\(error)")
        }
    }
}

@Test func presetsHaveGPT2Sizes() throws {
    #expect(ParameterLayout(config: try GPT2Config.preset("gpt2")).totalCount == 124_439_808)
    #expect(ParameterLayout(config: try GPT2Config.preset("gpt2-medium")).totalCount == 354_823_168)
    #expect(ParameterLayout(config: try GPT2Config.preset("gpt2-large")).totalCount == 774_030_080)
    #expect(ParameterLayout(config: try GPT2Config.preset("gpt2-xl")).totalCount == 1_557_611_200)
    #expect(try GPT2Config.preset("tiny").vocabSize == 50257)
    #expect(throws: ModelError.self) { try GPT2Config.preset("gpt5") }
}

@Test func layoutUsesHuggingFaceNamesInOneContiguousBuffer() throws {
    let layout = ParameterLayout(config: try GPT2Config.preset("gpt2"))
    #expect(layout.tensors.first?.name == "transformer.wte.weight")
    #expect(layout.tensor(named: "transformer.h.3.attn.c_attn.weight")?.shape == [768, 2304])
    #expect(layout.tensor(named: "h.11.mlp.c_proj.weight")?.shape == [3072, 768], "found without the prefix too")
    #expect(layout.tensors.last?.name == "transformer.ln_f.bias")
    var next = 0
    for tensor in layout.tensors {
        #expect(tensor.offset == next)
        next += tensor.count
    }
    #expect(next == layout.totalCount)
}

@Test func initialisationIsSeededAndScaledAsGPT2Does() throws {
    let config = GPT2Config(vocabSize: 500, nPositions: 64, nEmbd: 64, nLayer: 4, nHead: 4)
    let a = try GPT2Model.randomlyInitialized(config: config, seed: 42)
    let b = try GPT2Model.randomlyInitialized(config: config, seed: 42)
    let c = try GPT2Model.randomlyInitialized(config: config, seed: 43)
    #expect(a.parameters.array == b.parameters.array)
    #expect(a.parameters.array != c.parameters.array)
    func values(_ name: String) -> [Float] { Array(a.parameters.buffer[a.layout.tensor(named: name)!.range]) }
    func standardDeviation(_ x: [Float]) -> Double {
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(x.count)
        return (x.reduce(0.0) { $0 + pow(Double($1) - mean, 2) } / Double(x.count)).squareRoot()
    }
    #expect(abs(standardDeviation(values("wte.weight")) - 0.02) < 0.001)
    #expect(abs(standardDeviation(values("h.0.mlp.c_fc.weight")) - 0.02) < 0.001)
    #expect(abs(standardDeviation(values("h.1.attn.c_proj.weight")) - 0.02 / 8.0.squareRoot()) < 0.0005)
    #expect(abs(standardDeviation(values("h.2.mlp.c_proj.weight")) - 0.02 / 8.0.squareRoot()) < 0.0005)
    #expect(values("h.0.ln_1.weight").allSatisfy { $0 == 1 } && values("ln_f.bias").allSatisfy { $0 == 0 })
    #expect(values("h.3.attn.c_attn.bias").allSatisfy { $0 == 0 })
}

@Test func resizingAddsRowsAtTheMeanAndKeepsEverythingElse() throws {
    let (model, _) = try GPT2Model.load(directory: tinyModelDirectory.path)
    let before = model.parameters.array
    let oldLayout = model.layout
    model.resizeTokenEmbeddings(to: 303)
    #expect(model.config.vocabSize == 303 && model.parameterCount == oldLayout.totalCount + 2 * 32)
    let wte = Array(model.parameters.buffer[model.layout.tensor(named: "wte.weight")!.range])
    #expect(Array(wte.prefix(301 * 32)) == Array(before.prefix(301 * 32)))
    for c in 0..<32 {
        let mean = (0..<301).reduce(0.0) { $0 + Double(before[$1 * 32 + c]) } / 301
        #expect(abs(Double(wte[301 * 32 + c]) - mean) < 1e-6 && wte[302 * 32 + c] == wte[301 * 32 + c])
    }
    #expect(Array(model.parameters.buffer[model.layout.positionEmbedding...]) == Array(before[oldLayout.positionEmbedding...]))
    #expect(model.gradients.count == model.parameterCount)
    let loss = try model.forward(try Batch(inputIDs: [[302, 301, 5, 7]]))
    #expect(loss.count == 3 && loss.mean.isFinite)
}

@Test func batchesAreCheckedAgainstTheModel() throws {
    let (model, _) = try GPT2Model.load(directory: tinyModelDirectory.path)
    #expect(throws: ModelError.invalidBatch(problem: "input id 301 is outside the vocabulary (size 301)")) {
        try model.forward(try Batch(inputIDs: [[1, 301]]))
    }
    #expect(throws: ModelError.self) { try model.forward(try Batch(inputIDs: [Array(repeating: 1, count: 33)])) }
    #expect(throws: ModelError.self) { try model.forward(try Batch(inputIDs: [[1, 2]], labels: [[1, -5]])) }
    #expect(throws: ModelError.self) { try Batch(inputIDs: [[1, 2], [3]]) }
    #expect(throws: ModelError.self) { try Batch(inputIDs: [[1, 2]], attentionMask: [[1, 2]]) }
    #expect(throws: ModelError.self) { try Batch(inputIDs: []) }
    let batch = try Batch(inputIDs: [[4, 5, 6]], attentionMask: [[1, 1, 0]])
    #expect(batch.labels == [4, 5, -100] && batch.targets == [5, -100, -100] && batch.targetCount == 1)
}

/// Rewrites the fixture's weights under other names, to check what the loader accepts.
func rewrittenModel(_ transform: (String) -> String?, extra: [String: [Float]] = [:], shapeOverride: [String: [Int]] = [:]) throws -> URL {
    let source = try SafeTensorsFile(path: tinyModelDirectory.appendingPathComponent("model.safetensors").path)
    let directory = try TestPaths.temporaryDirectory("model")
    try FileManager.default.copyItem(at: tinyModelDirectory.appendingPathComponent("config.json"), to: directory.appendingPathComponent("config.json"))
    var storage: [(String, [Int], [Float])] = []
    for tensor in source.tensors {
        guard let name = transform(tensor.name) else { continue }
        let values = try source.floats(tensor.name)
        let shape = shapeOverride[name] ?? tensor.shape
        storage.append((name, shape, shapeOverride[name] == nil ? values : Array(repeating: 0, count: shape.reduce(1, *))))
    }
    for (name, values) in extra { storage.append((name, [values.count], values)) }
    try writeTensors(storage, to: directory.appendingPathComponent("model.safetensors").path)
    return directory
}

func writeTensors(_ storage: [(String, [Int], [Float])], to path: String) throws {
    func withPointers(_ index: Int, _ built: [FloatTensor]) throws {
        guard index < storage.count else { return try SafeTensorsWriter.write(built, to: path) }
        try storage[index].2.withUnsafeBufferPointer { try withPointers(index + 1, built + [FloatTensor(name: storage[index].0, shape: storage[index].1, values: $0)]) }
    }
    try withPointers(0, [])
}

@Test func loaderAcceptsNamesWithoutPrefixAndSkipsBuffersAsTransformersDoes() throws {
    let (reference, _) = try GPT2Model.load(directory: tinyModelDirectory.path)
    let directory = try rewrittenModel({ String($0.dropFirst("transformer.".count)) },
                                       extra: ["h.0.attn.bias": [1], "h.1.attn.masked_bias": [0], "lm_head.weight": [0], "score.weight": [0]])
    let (model, report) = try GPT2Model.load(directory: directory.path)
    #expect(model.parameters.array == reference.parameters.array)
    #expect(Set(report.ignored) == ["h.0.attn.bias", "h.1.attn.masked_bias", "lm_head.weight"])
    #expect(report.unexpected == ["score.weight"])
}

@Test func loaderReportsMissingAndMisshapenTensors() throws {
    let missing = try rewrittenModel { $0.contains("h.1.ln_2") ? nil : $0 }
    #expect(throws: ModelError.self) { try GPT2Model.load(directory: missing.path) }
    do { _ = try GPT2Model.load(directory: missing.path) } catch {
        #expect("\(error)".contains("missing tensors: transformer.h.1.ln_2.weight, transformer.h.1.ln_2.bias"))
    }
    let misshapen = try rewrittenModel({ $0 }, shapeOverride: ["transformer.wpe.weight": [16, 32]])
    do {
        _ = try GPT2Model.load(directory: misshapen.path)
        Issue.record("a wrong shape was accepted")
    } catch {
        #expect("\(error)".contains("'transformer.wpe.weight' has shape [16, 32], expected [32, 32]"))
    }
    #expect(throws: ModelError.missingFile(path: "/no/such/model")) { try GPT2Model.load(directory: "/no/such/model") }
}

@Test func savedDirectoryLoadsBackIdentically() throws {
    let (model, _) = try GPT2Model.load(directory: tinyModelDirectory.path)
    let directory = try TestPaths.temporaryDirectory("saved").appendingPathComponent("out")
    try model.save(directory: directory.path)
    let (again, report) = try GPT2Model.load(directory: directory.path)
    #expect(again.config == model.config && again.parameters.array == model.parameters.array)
    #expect(report.ignored.isEmpty && report.unexpected.isEmpty)
    let file = try SafeTensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
    #expect(file.metadata["format"] == "pt")
    #expect(file.tensors.allSatisfy { $0.name.hasPrefix("transformer.") && $0.dtype == .f32 })
}

@Suite struct ThreadCountTests {
    /// Work is split so that each output is computed the same way whatever the thread count. The
    /// model is large enough that its matrix products are split too; the batch has padding.
    @Test func modelResultsDoNotDependOnTheThreadCount() throws {
        let config = GPT2Config(vocabSize: 500, nPositions: 64, nEmbd: 64, nLayer: 1, nHead: 4)
        let model = try GPT2Model.randomlyInitialized(config: config, seed: 3)
        var generator = SeededGenerator(seed: 4)
        let tokens = (0..<4).map { _ in (0..<64).map { _ in Int(generator.next() % 500) } }
        let mask = (0..<4).map { row in (0..<64).map { $0 < 64 - 9 * row ? 1 : 0 } }
        let batch = try Batch(inputIDs: tokens, attentionMask: mask)
        let saved = Kernels.threadCount
        defer { Kernels.threadCount = saved }
        var results: [(loss: Double, logits: [Float], gradients: [Float])] = []
        for threads in [1, 2] {
            Kernels.threadCount = threads
            let loss = try model.forward(batch)
            model.zeroGradients()
            model.backward(lossScale: 1 / Float(loss.count))
            results.append((loss.sum, Array(model.logits), model.gradients.array))
        }
        #expect(results[0].loss == results[1].loss)
        #expect(results[0].logits == results[1].logits)
        #expect(results[0].gradients == results[1].gradients)
    }
}
