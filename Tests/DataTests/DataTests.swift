import Data
import Foundation
import GPT2
import Testing
import TestSupport
import Tokenizer

func writeData(_ content: String, _ name: String) throws -> String {
    let path = try TestPaths.temporaryDirectory("data").appendingPathComponent(name).path
    try content.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Test func textFilesGiveOneExamplePerNonBlankLine() throws {
    let path = try writeData("first idea\r\n\n   \nsecond idea\nthird\n", "ideas.txt")
    #expect(try DataFile.read(path: path) == .texts(["first idea", "second idea", "third"]))
}

@Test func csvFollowsRFC4180Quoting() throws {
    let csv = "id,one_liner,tags\r\n1,\"Rockets, but \"\"cheaper\"\"\",a;b\n2,\"Two\nlines\",c\n3,,d\n"
    #expect(try DataFile.read(path: try writeData(csv, "t.csv"), textColumn: "one_liner") == .texts(["Rockets, but \"cheaper\"", "Two\nlines"]))
    let ragged = try writeData("a,b\n1,2\n3\n", "r.csv")
    #expect(throws: DataError(path: ragged, line: 3, problem: "has 1 fields, the header has 2")) { try DataFile.read(path: ragged, textColumn: "a") }
    let open = try writeData("a\n\"never closed\n", "o.csv")
    #expect(throws: DataError(path: open, line: 2, problem: "quoted field is not closed")) { try DataFile.read(path: open, textColumn: "a") }
}

@Test func jsonLinesHoldTextsOrTokens() throws {
    let texts = try writeData("{\"text\": \"one\\ntwo\"}\n{\"text\": \"three\", \"other\": 1}\n", "t.jsonl")
    #expect(try DataFile.read(path: texts) == .texts(["one\ntwo", "three"]))
    let custom = try writeData("{\"body\": \"x\"}\n", "c.jsonl")
    #expect(throws: DataError(path: custom, line: 1, problem: "has no string field 'text' (set --text-field)")) { try DataFile.read(path: custom) }
    #expect(try DataFile.read(path: custom, textField: "body") == .texts(["x"]))
    let tokens = try writeData("{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [4], \"labels\": [-100]}\n", "ids.jsonl")
    #expect(try DataFile.read(path: tokens) == .tokenized([TokenizedExample(inputIDs: [1, 2, 3]), TokenizedExample(inputIDs: [4], labels: [-100])]))
    let textsThenIDs = try writeData("{\"text\": \"a\"}\n{\"input_ids\": [1]}\n", "mixed1.jsonl")
    #expect(throws: DataError(path: textsThenIDs, line: 2, problem: "mixes input_ids records with text records")) { try DataFile.read(path: textsThenIDs) }
    let idsThenTexts = try writeData("{\"input_ids\": [1]}\n\n{\"text\": \"a\"}\n", "mixed2.jsonl")
    #expect(throws: DataError(path: idsThenTexts, line: 3, problem: "mixes text records with input_ids records")) { try DataFile.read(path: idsThenTexts) }
    let badLabels = try writeData("{\"input_ids\": [1, 2], \"labels\": [1]}\n", "bad.jsonl")
    #expect(throws: DataError.self) { try DataFile.read(path: badLabels) }
}

@Test func filesAreReadAcrossBlockEdgesAndLongLines() throws {
    // The reader takes 1 MiB at a time: a line longer than that, and line breaks near its edges.
    let lines = [String(repeating: "word ", count: 300_000), "short"] + (0..<50_000).map { "line \($0)" }
    #expect(try DataFile.read(path: try writeData(lines.joined(separator: "\r\n") + "\r\n", "long.txt")) == .texts(lines))
    #expect(try DataFile.lines(path: try writeData("a\n\n  \r\nb", "last.txt")) == ["a", "", "  ", "b"])
    // A quoted CSV field that spans lines (its CR LF kept) and the edge of the first block.
    let padding = String(repeating: "x", count: (1 << 20) - 20)
    let csv = "text,n\r\n\(padding),1\r\n\"two\r\nlines, \"\"quoted\"\"\",2\r\nlast,3"
    #expect(try DataFile.read(path: try writeData(csv, "edge.csv")) == .texts([padding, "two\r\nlines, \"quoted\"", "last"]))
}

@Test func unknownFormatsAndEmptyFilesAreRefused() throws {
    let parquet = try writeData("x", "data.parquet")
    #expect(throws: DataError(path: parquet, problem: "unknown data format (use .txt, .csv or .jsonl)")) { try DataFile.read(path: parquet) }
    let empty = try writeData("", "empty.jsonl")
    #expect(throws: DataError(path: empty, problem: "holds no examples")) { try DataFile.read(path: empty) }
}

@Test func truncationCutsAndCounts() {
    let dataset = Dataset(examples: [TokenizedExample(inputIDs: [60, 97, 98, 62]), TokenizedExample(inputIDs: [60, 97, 98, 99, 100, 101, 62])])
        .truncated(to: 5)
    #expect(dataset.map(\.inputIDs) == [[60, 97, 98, 62], [60, 97, 98, 99, 100]])
    #expect(dataset.truncatedCount == 1 && dataset.tokenCount == 9)
}

@Test func packingMakesFullBlocksAndDropsTheTail() {
    let dataset = Dataset(examples: [TokenizedExample(inputIDs: [1, 2, 3]), TokenizedExample(inputIDs: [4, 5, 6, 7]), TokenizedExample(inputIDs: [8])])
    #expect(dataset.packed(blockSize: 3).map(\.inputIDs) == [[1, 2, 3], [4, 5, 6]])
}

@Test func collatorPadsOnTheRightWithIgnoredLabels() throws {
    let batch = try #require(Collator(padTokenID: 9).batch([TokenizedExample(inputIDs: [1, 2, 3]), TokenizedExample(inputIDs: [4], labels: [-100])]))
    #expect(batch.batchSize == 2 && batch.sequenceLength == 3)
    #expect(batch.inputIDs == [1, 2, 3, 4, 9, 9])
    #expect(batch.labels == [1, 2, 3, -100, -100, -100])
    #expect(batch.attentionMask == [1, 1, 1, 1, 0, 0])
    #expect(Collator(padTokenID: 0).batch([TokenizedExample(inputIDs: [5, 6])])?.attentionMask == nil)
    #expect(Collator(padTokenID: 0).batch([]) == nil)
}

@Test func shardsCoverTheGlobalBatchExactlyOnce() {
    let global = Array(100..<123)  // 23 items: a short final step of a global batch of 24
    var seen: [Int] = []
    for rank in 0..<3 {
        let micro = DataLoader.shard(global, rank: rank, worldSize: 3, perDeviceBatchSize: 4, gradientAccumulationSteps: 2)
        #expect(micro.count == 2, "every rank runs every micro-batch")
        seen += micro.flatMap { $0 }
    }
    #expect(seen.sorted() == global)
    #expect(DataLoader.shard(global, rank: 2, worldSize: 3, perDeviceBatchSize: 4, gradientAccumulationSteps: 2)[1] == [120, 121, 122])
}

@Test func epochOrderIsSeededAndIndependentOfTheRankCount() {
    let dataset = Dataset(examples: (0..<50).map { TokenizedExample(inputIDs: [Int32($0), 1]) })
    func loader(world: Int, batch: Int, seed: UInt64 = 7) -> DataLoader {
        DataLoader(dataset: dataset, perDeviceBatchSize: batch, gradientAccumulationSteps: 1, worldSize: world, seed: seed, collator: Collator(padTokenID: 0))
    }
    let one = loader(world: 1, batch: 8), two = loader(world: 2, batch: 4)
    #expect(one.order(epoch: 0) == loader(world: 1, batch: 8).order(epoch: 0))
    #expect(one.order(epoch: 0) != one.order(epoch: 1))
    #expect(one.order(epoch: 0) != loader(world: 1, batch: 8, seed: 8).order(epoch: 0))
    #expect(one.order(epoch: 0).sorted() == Array(0..<50))
    #expect(one.stepsPerEpoch == 7)
    for step in [0, 6, 7, 13] {
        let whole = one.microBatches(step: step, rank: 0).compactMap { $0 }.flatMap { batch in stride(from: 0, to: batch.inputIDs.count, by: batch.sequenceLength).map { batch.inputIDs[$0] } }
        let split = (0..<2).flatMap { rank in two.microBatches(step: step, rank: rank).compactMap { $0 }.flatMap { batch in stride(from: 0, to: batch.inputIDs.count, by: batch.sequenceLength).map { batch.inputIDs[$0] } } }
        #expect(whole.sorted() == split.sorted(), "step \(step): the same examples whatever the rank count")
    }
}

@Test func validationSplitIsSeededAndDisjoint() {
    let dataset = Dataset(examples: (0..<100).map { TokenizedExample(inputIDs: [Int32($0)]) })
    let (train, validation) = dataset.split(validationFraction: 0.2, seed: 1)
    #expect(train.count == 80 && validation.count == 20)
    #expect(Set(train.map(\.inputIDs[0])).isDisjoint(with: validation.map(\.inputIDs[0])))
    #expect(Array(dataset.split(validationFraction: 0.2, seed: 1).validation) == Array(validation))
    #expect(Array(dataset.split(validationFraction: 0.2, seed: 2).validation) != Array(validation))
}

/// Writes `examples` as a token cache at `path` and maps it back.
func cached(_ examples: [TokenizedExample], at path: String) throws -> TokenStorage? {
    try TokenCache.write(to: path) { cache in
        for example in examples { try cache.append(example.inputIDs) }
    }
    return TokenCache.load(path: path)
}

@Test func tokenCacheRoundTripsAndRejectsDamagedFiles() throws {
    let directory = try TestPaths.temporaryDirectory("cache")
    let data = try writeData("one\ntwo\n", "ideas.txt")
    let name = try TokenCache.fileName(dataPath: data, settings: "tokenizer A")
    #expect(name != (try TokenCache.fileName(dataPath: data, settings: "tokenizer B")), "another tokenizer, another cache")
    let path = directory.appendingPathComponent(name).path
    let examples = [TokenizedExample(inputIDs: [1, 2, 3]), TokenizedExample(inputIDs: [50258]), TokenizedExample(inputIDs: []),
                    TokenizedExample(inputIDs: [7])]
    let storage = try #require(try cached(examples, at: path))
    #expect(Array(Dataset(storage: storage)) == examples)
    #expect(storage.mapping?.path == path)
    let good = try Data(contentsOf: URL(fileURLWithPath: path))
    func damaged(_ change: (inout Data) -> Void) throws -> TokenStorage? {
        var bytes = good
        change(&bytes)
        try bytes.write(to: URL(fileURLWithPath: path))
        return TokenCache.load(path: path)
    }
    #expect(try damaged { _ in } != nil, "the untouched bytes still load")
    #expect(try damaged { $0.removeLast(2) } == nil, "a truncated cache is not used")
    #expect(try damaged { $0.append(0) } == nil, "nor one with bytes after its end")
    #expect(try damaged { $0[10] ^= 1 } == nil, "nor one with a changed token")
    let secondOffset = good.count - 24 - 5 * 8 + 8
    #expect(try damaged { $0[secondOffset] ^= 1 } == nil, "nor one with an offset changed (3 to 2, still in order)")
    #expect(try damaged { $0[7] = UInt8(ascii: "1") } == nil, "nor the earlier format")
    #expect(TokenCache.load(path: directory.appendingPathComponent("missing.bin").path) == nil)
    #expect(try cached([], at: path).map { Dataset(storage: $0).count } == 0, "an empty cache is a cache")
}

@Test func mappedAndInMemoryStorageGiveTheSameExamples() throws {
    let examples = try ideaExamples(labelled: false)
    let path = try TestPaths.temporaryDirectory("cache").appendingPathComponent("ideas.bin").path
    let mapped = Dataset(storage: try #require(try cached(examples, at: path)))
    let inMemory = Dataset(examples: examples)
    // The tokens are read where the file is mapped, not copied.
    let file = try #require(mapped.storage.mapping)
    let tokens = UnsafeRawBufferPointer(mapped.storage.tokens)
    #expect(file.bytes.baseAddress! < tokens.baseAddress! && tokens.baseAddress! + tokens.count <= file.bytes.baseAddress! + file.bytes.count)
    #expect(inMemory.storage.mapping == nil)
    for (a, b) in [(mapped, inMemory), (mapped.truncated(to: 10), inMemory.truncated(to: 10))] {
        let (trainA, validationA) = a.split(validationFraction: 0.1, seed: 3), (trainB, validationB) = b.split(validationFraction: 0.1, seed: 3)
        let same = Array(a) == Array(b) && Array(validationA) == Array(validationB)
            && Array(trainA.packed(blockSize: 9)) == Array(trainB.packed(blockSize: 9))
        #expect(same && a.tokenCount == b.tokenCount && a.truncatedCount == b.truncatedCount)
    }
    var bad: [Int32] = []
    mapped.storage.forEachTokenChunk { bad += $0.filter { $0 < 0 || $0 >= 50257 } }
    #expect(bad.isEmpty && Array(mapped.storage.tokens) == examples.flatMap(\.inputIDs))
}

@Test func firstEpochPaddingCountsWhatTheBatchesPad() {
    let dataset = Dataset(examples: [1, 5, 2, 7, 3, 3, 9].map { TokenizedExample(inputIDs: Array(repeating: 1, count: $0)) })
    let loader = DataLoader(dataset: dataset, perDeviceBatchSize: 2, gradientAccumulationSteps: 1, worldSize: 2, seed: 4, collator: Collator(padTokenID: 0))
    var padding = 0, total = 0
    for step in 0..<loader.stepsPerEpoch {
        for rank in 0..<2 {
            for batch in loader.microBatches(step: step, rank: rank).compactMap({ $0 }) {
                total += batch.inputIDs.count
                padding += batch.inputIDs.count - batch.realTokenCount
            }
        }
    }
    #expect(loader.firstEpochPadding() == (padding, total))
    #expect(total > 30 && padding > 0)
}

/// What the views must give: the examples as arrays, cut, split and packed by copying, as the
/// dataset did before its tokens lay in one buffer.
enum CopiedExamples {
    static func truncated(_ examples: [TokenizedExample], to blockSize: Int) -> [TokenizedExample] {
        examples.map { TokenizedExample(inputIDs: Array($0.inputIDs.prefix(blockSize)), labels: $0.labels.map { Array($0.prefix(blockSize)) }) }
    }

    static func split(_ examples: [TokenizedExample], fraction: Double, seed: UInt64) -> (train: [TokenizedExample], validation: [TokenizedExample]) {
        let order = seededPermutation(count: examples.count, seed: seed)
        let validation = Set(order.prefix(min(examples.count - 1, max(1, Int((Double(examples.count) * fraction).rounded())))))
        return (examples.indices.filter { !validation.contains($0) }.map { examples[$0] }, examples.indices.filter(validation.contains).map { examples[$0] })
    }

    static func packed(_ examples: [TokenizedExample], blockSize: Int) -> [TokenizedExample] {
        let stream = examples.flatMap(\.inputIDs), labelStream = examples.flatMap { $0.labels ?? $0.inputIDs }
        return (0..<(stream.count / blockSize)).map { block in
            let range = (block * blockSize)..<((block + 1) * blockSize)
            return TokenizedExample(inputIDs: Array(stream[range]), labels: Array(labelStream[range]))
        }
    }
}

/// An example as a batch sees it: missing labels are the input ids.
func withLabels(_ examples: some Sequence<TokenizedExample>) -> [TokenizedExample] {
    examples.map { TokenizedExample(inputIDs: $0.inputIDs, labels: $0.labels ?? $0.inputIDs) }
}

/// ideas.txt through GPT-2's tokenizer; with `labelled`, every third example has labels of its own.
func ideaExamples(labelled: Bool) throws -> [TokenizedExample] {
    let tokenizer = try GPT2Tokenizer.load(directory: TestPaths.sharedData.appendingPathComponent("gpt2-tokenizer"))
    guard case let .texts(texts) = try DataFile.read(path: TestPaths.sharedData.appendingPathComponent("ideas.txt").path) else { return [] }
    return texts.enumerated().map { index, text in
        let ids = tokenizer.encode(text).map { Int32($0) }
        return TokenizedExample(inputIDs: ids, labels: labelled && index % 3 == 0 ? ids.map { $0 % 2 == 0 ? Batch.ignoredLabel : $0 } : nil)
    }
}

@Test(arguments: [false, true])
func viewsGiveWhatCopyingGaveOnRealData(labelled: Bool) throws {
    let examples = try ideaExamples(labelled: labelled)
    try #require(examples.count == 4928)
    for blockSize in [12, 1024] {
        let dataset = Dataset(examples: examples).truncated(to: blockSize)
        let cut = CopiedExamples.truncated(examples, to: blockSize)
        // (Compared as Bools: a difference would print thousands of examples.)
        let sameExamples = withLabels(dataset) == withLabels(cut)
        #expect(sameExamples)
        #expect(dataset.truncatedCount == examples.count { $0.inputIDs.count > blockSize })
        #expect(dataset.tokenCount == cut.reduce(0) { $0 + $1.inputIDs.count })
        let (train, validation) = dataset.split(validationFraction: 0.2, seed: 42)
        let copied = CopiedExamples.split(cut, fraction: 0.2, seed: 42)
        let sameSplit = withLabels(train) == withLabels(copied.train) && withLabels(validation) == withLabels(copied.validation)
        #expect(sameSplit)
        #expect(train.truncatedCount == dataset.truncatedCount && validation.truncatedCount == 0)
        for (view, copies, size) in [(dataset, cut, 7), (train, copied.train, blockSize), (validation, copied.validation, 64)] {
            let packed = view.packed(blockSize: size), reference = CopiedExamples.packed(copies, blockSize: size)
            let sameBlocks = withLabels(packed) == reference
            #expect(sameBlocks, "blocks of \(size)")
            #expect(packed.tokenCount == reference.count * size && packed.truncatedCount == view.truncatedCount)
        }
    }
}
