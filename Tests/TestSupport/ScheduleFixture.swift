import Foundation
import GPT2

/// scripts/make_schedule_fixture.py's output: `transformers.get_scheduler`'s rate at every step.
public struct ScheduleFixture: Decodable {
    public struct Case: Decodable {
        public let lr_scheduler_type: String
        public let lr_scheduler_kwargs: [String: JSONValue]
        public let warmup_steps: Int
        public let total_steps: Int
        public let learning_rates: [Double]

        public var label: String {
            let settings = (try? JSONEncoder().encode(lr_scheduler_kwargs)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
            return "\(lr_scheduler_type) \(settings) warmup \(warmup_steps) total \(total_steps)"
        }
    }
    public let transformers: String
    public let learning_rate: Double
    public let cases: [Case]

    public static func load() throws -> ScheduleFixture {
        let path = TestPaths.packageRoot.appendingPathComponent("Tests/TrainingTests/Fixtures/schedules.json")
        return try JSONDecoder().decode(ScheduleFixture.self, from: Data(contentsOf: path))
    }
}

