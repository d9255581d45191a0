import Distributed
import Foundation

extension TrainingArguments {
    /// Every rank must be started with the same settings: a rank with another --max-steps would
    /// wait forever in a collective, one with another seed or batch size would train on the wrong
    /// shard. Compares the whole resolved settings with rank 0's; rank 0 reports the first
    /// difference (the others wait for the abort that follows).
    public func checkAgreement(across communicator: Communicator) throws {
        guard communicator.size > 1 else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys  // the same bytes for the same settings in every process
        let all = try communicator.allGather(encoder.encode(self))
        guard communicator.isMain else {
            if all.contains(where: { $0 != all[0] }) { try communicator.barrier() }
            return
        }
        for (rank, data) in all.enumerated() where data != all[0] {
            let other = try JSONDecoder().decode(TrainingArguments.self, from: data)
            let differences = try other.differences(from: self)
            let listed = differences.prefix(3).map { "\($0.flag) is \($0.theirs) on rank 0 but \($0.ours) on rank \(rank)" }
            throw TrainingError.invalidSetting("the ranks were started with different settings: " + listed.joined(separator: "; ")
                + (differences.count > 3 ? " (and \(differences.count - 3) more)" : "") + "; start every rank with the same flags")
        }
    }
}
