import Foundation
import GPT2
import Testing
import TestSupport
import Training

#if canImport(Glibc)
import Glibc
#endif

@Test func crc32cMatchesItsPublishedCheckValueAndTensorBoardsMask() {
    let check = Array("123456789".utf8)
    #expect(CRC32C.checksum(check) == 0xE306_9283)
    #expect(TensorBoardEventFile.crc32c(check) == 0xE306_9283)
    #expect(CRC32C.checksum([]) == 0)
    // tensorboard's masked_crc32c(b"123456789"), computed with tensorboard 2.21.0.
    #expect(CRC32C.masked(CRC32C.checksum(check)) == 0xC78A_B0E5)
    // The table-driven and the bit-at-a-time CRC agree on every byte value and on longer data.
    let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }
    #expect(CRC32C.checksum(bytes) == TensorBoardEventFile.crc32c(bytes))
}

@Test func tagsAreRewrittenAsTrainersRewriteLogs() {
    let cases = ["loss": "train/loss", "learning_rate": "train/learning_rate", "grad_norm": "train/grad_norm", "epoch": "train/epoch",
                 "eval_loss": "eval/loss", "eval_perplexity": "eval/perplexity", "test_loss": "test/loss",
                 "train_loss": "train/train_loss", "train_runtime": "train/train_runtime", "evaluation": "train/evaluation"]
    for (key, tag) in cases { #expect(TensorBoardWriter.tag(for: key) == tag, "\(key)") }
}

@Test func anEventFileHoldsTheFileVersionThenOneScalarEventPerMetric() throws {
    let directory = try TestPaths.temporaryDirectory("tensorboard").appendingPathComponent("logs/run")
    let name = TensorBoardWriter.nextFileName()
    var host = [CChar](repeating: 0, count: 256)
    gethostname(&host, host.count - 1)
    let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    #expect(name.wholeMatch(of: try Regex("events\\.out\\.tfevents\\.[0-9]{10}\\.\(NSRegularExpression.escapedPattern(for: hostName))\\.\(getpid())\\.[0-9]+")) != nil, "\(name)")
    #expect(TensorBoardWriter.nextFileName() != TensorBoardWriter.nextFileName(), "files opened in the same second get different names")
    let opened = (0..<25).map { _ in TensorBoardWriter.nextFileName() }
    #expect(opened.sorted() == opened, "name order is the order they were opened in, as TensorBoard reads them: \(opened)")

    let before = Date().timeIntervalSince1970
    let writer = try TensorBoardWriter(directory: directory.path, fileName: name)
    let records: [(MetricsRecord, Int)] = [
        (["step": .number(5), "epoch": .number(0.5), "loss": .number(3.25), "learning_rate": .number(4e-4), "grad_norm": .number(1.5),
          "tokens_per_second": .number(1234)], 5),
        // A non-finite value is kept as TensorBoard's writer keeps it; texts and lists are not scalars.
        (["step": .number(10), "eval_loss": .number(2.5), "eval_perplexity": .number(.infinity), "eval_tokens": .number(80),
          "note": .string("text"), "samples": .array([.string("an idea")])], 10),
        (["step": .number(10), "eval_loss": .number(.nan), "early_stopping": .bool(true)], 10),
    ]
    for (record, step) in records { try writer.append(record, step: step) }
    try writer.resume(after: 8)

    let file = try TensorBoardEventFile(path: directory.appendingPathComponent(name).path)
    let first = try #require(file.events.first)
    #expect(first.fileVersion == "brain.Event:2" && first.writer == "gpt2-ddp" && first.step == 0 && first.scalars.isEmpty)
    #expect(first.wallTime >= before - 1 && first.wallTime <= Date().timeIntervalSince1970 + 1)
    let scalarEvents = file.events.dropFirst().filter { !$0.scalars.isEmpty }
    #expect(scalarEvents.allSatisfy { $0.scalars.count == 1 }, "one value per event, as add_scalar writes it")
    let written = scalarEvents.map { ($0.step, $0.scalars[0].tag, $0.scalars[0].value) }
    let expected: [(Int, String, Float)] = [
        (5, "train/epoch", 0.5), (5, "train/grad_norm", 1.5), (5, "train/learning_rate", 4e-4), (5, "train/loss", 3.25), (5, "train/tokens_per_second", 1234),
        (10, "eval/loss", 2.5), (10, "eval/perplexity", .infinity), (10, "eval/tokens", 80),
        (10, "eval/loss", .nan), (10, "train/early_stopping", 1),
    ]
    try #require(written.count == expected.count, "\(written)")
    for (ours, theirs) in zip(written, expected) {
        #expect(ours.0 == theirs.0 && ours.1 == theirs.1 && (ours.2 == theirs.2 || (ours.2.isNaN && theirs.2.isNaN)), "\(ours) vs \(theirs)")
    }
    // The resume marker: a SessionLog START at the first step the run logs again.
    let last = try #require(file.events.last)
    #expect(last.sessionStatus == 1 && last.step == 9 && last.scalars.isEmpty)

    // An existing file is never written over.
    #expect(throws: TrainingError.self) { try TensorBoardWriter(directory: directory.path, fileName: name) }
}

@Test func theReaderRejectsADamagedRecord() throws {
    let directory = try TestPaths.temporaryDirectory("tensorboard-damaged")
    let writer = try TensorBoardWriter(directory: directory.path)
    try writer.append(["loss": .number(1)], step: 1)
    let data = try Data(contentsOf: URL(fileURLWithPath: writer.path))
    _ = try TensorBoardEventFile(path: writer.path)
    // One bit of the first record's length, then one of its data: each CRC catches its part.
    for (byte, message) in [(0, "length CRC"), (12, "data CRC")] {
        var damaged = data
        damaged[byte] ^= byte == 0 ? 0x80 : 1
        try damaged.write(to: URL(fileURLWithPath: writer.path))
        let error = #expect(throws: TensorBoardEventFile.Corrupt.self) { try TensorBoardEventFile(path: writer.path) }
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
    }
}
