import Foundation
import GPT2
import Testing
import TestSupport
import Training

/// The usage error `--lr-scheduler-kwargs json` gives with `schedule`, or nil when it is accepted.
func kwargsProblem(_ schedule: LearningRateSchedule.Kind, _ json: String, peak: Double = 1e-3) -> String? {
    do { _ = try LearningRateSchedule.Options(json: json, for: schedule, peak: peak); return nil } catch { return "\(error)" }
}

@Test func everyScheduleGivesTransformersRateAtEveryStep() throws {
    let fixture = try ScheduleFixture.load()
    // Every type the flag takes has cases, with and without warmup.
    for kind in LearningRateSchedule.Kind.allCases {
        let cases = fixture.cases.filter { $0.lr_scheduler_type == kind.rawValue }
        #expect(cases.contains { $0.warmup_steps == 0 } && cases.contains { $0.warmup_steps > 0 }, "\(kind.rawValue) in the fixture")
    }
    for reference in fixture.cases {
        let kind = try #require(LearningRateSchedule.Kind(rawValue: reference.lr_scheduler_type), "\(reference.label)")
        // Through the parser the flag uses, so that the keys mean what transformers' names mean.
        let json = String(decoding: try JSONEncoder().encode(reference.lr_scheduler_kwargs), as: UTF8.self)
        let options = try LearningRateSchedule.Options(json: json, for: kind, peak: fixture.learning_rate)
        let schedule = LearningRateSchedule(kind: kind, peak: fixture.learning_rate, warmupSteps: reference.warmup_steps,
                                            totalSteps: reference.total_steps, options: options)
        #expect(reference.learning_rates.count == reference.total_steps)
        for (step, expected) in reference.learning_rates.enumerated() {
            let rate = schedule.learningRate(at: step)
            #expect(abs(rate - expected) <= 1e-12 * abs(expected), "\(reference.label) step \(step): \(rate) vs transformers \(expected)")
        }
    }
}

@Test func scheduleKwargsAreCheckedAsTransformersTakesThem() {
    #expect(kwargsProblem(.cosine, #"{"num_cycles": 2}"#) == nil)
    #expect(kwargsProblem(.inverseSqrt, #"{"timescale": null}"#) == nil, "None is timescale's default")
    #expect(kwargsProblem(.cosine, #"{"num_cycle": 2}"#) == "--lr-scheduler-kwargs: cosine has no setting 'num_cycle' (it takes num_cycles)")
    #expect(kwargsProblem(.linear, #"{"last_epoch": 3}"#) == "--lr-scheduler-kwargs: linear has no setting 'last_epoch' (it takes none)")
    #expect(kwargsProblem(.constant, #"{"num_cycles": 2}"#) == "--lr-scheduler-kwargs: constant has no setting 'num_cycles' (it takes none)")
    #expect(kwargsProblem(.cosine, #"{"num_cycles": "2"}"#) == #"--lr-scheduler-kwargs: num_cycles must be a number of 0 or more, got "2""#)
    #expect(kwargsProblem(.cosineWithRestarts, #"{"num_cycles": -1}"#) == "--lr-scheduler-kwargs: num_cycles must be a number of 0 or more, got -1")
    #expect(kwargsProblem(.polynomial, #"{"lr_end": 1e-3}"#) == "--lr-scheduler-kwargs: lr_end (0.001) must be smaller than --learning-rate (0.001)")
    #expect(kwargsProblem(.polynomial, "{}", peak: 1e-8) == "--lr-scheduler-kwargs: lr_end (1e-07) must be smaller than --learning-rate (1e-08)")
    #expect(kwargsProblem(.inverseSqrt, #"{"timescale": 2.5}"#) == "--lr-scheduler-kwargs: timescale must be a whole number of at least 1, got 2.5")
    #expect(kwargsProblem(.cosineWithMinLR, "{}") == #"--lr-scheduler-kwargs: cosine_with_min_lr needs exactly one of min_lr and min_lr_rate, e.g. {"min_lr_rate": 0.1}"#)
    #expect(kwargsProblem(.cosineWithMinLR, #"{"min_lr": 1e-5, "min_lr_rate": 0.1}"#)?.contains("exactly one of min_lr and min_lr_rate") == true)
    #expect(kwargsProblem(.cosineWithMinLR, #"{"min_lr_rate": 1.5}"#) == "--lr-scheduler-kwargs: min_lr_rate must be a number from 0 to 1, got 1.5")
    #expect(kwargsProblem(.warmupStableDecay, #"{"decay_type": "linear"}"#) == #"--lr-scheduler-kwargs: warmup_stable_decay needs num_decay_steps, e.g. {"num_decay_steps": 100}"#)
    #expect(kwargsProblem(.warmupStableDecay, #"{"num_decay_steps": 5, "decay_type": "exp"}"#)
        == #"--lr-scheduler-kwargs: decay_type must be one of linear, cosine, 1-sqrt, got "exp""#)
    #expect(kwargsProblem(.warmupStableDecay, #"{"num_decay_steps": true}"#) == "--lr-scheduler-kwargs: num_decay_steps must be a whole number of at least 0, got true")
    #expect(kwargsProblem(.cosine, "num_cycles=2") == #"--lr-scheduler-kwargs: expects a JSON object such as {"num_cycles": 2}, got 'num_cycles=2'"#)
    #expect(kwargsProblem(.cosine, "[\n2]") == #"--lr-scheduler-kwargs: expects a JSON object such as {"num_cycles": 2}, got '[ 2]'"#, "one line")
}
