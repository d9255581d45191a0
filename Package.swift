// swift-tools-version:6.0
import PackageDescription

// Release builds get optimisation without bounds checks in the numeric modules; debug builds stay
// checked so tests catch indexing mistakes.
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "gpt2-ddp",
    products: [
        .executable(name: "gpt2-ddp", targets: ["gpt2-ddp"]),
    ],
    targets: [
        .target(name: "SafeTensors"),
        .target(name: "GPT2", dependencies: ["SafeTensors"], swiftSettings: numericSettings),
        // Its tests check internals (the merge algorithms, the character tables) with @testable,
        // which a release build allows only for modules compiled for testing.
        .target(name: "Tokenizer", swiftSettings: [.unsafeFlags(["-enable-testing"], .when(configuration: .release))]),
        .target(name: "Data", dependencies: ["GPT2", "SafeTensors"]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "Distributed", dependencies: ["CMPI"]),
        .target(name: "Training", dependencies: ["GPT2", "Data", "Distributed", "SafeTensors", "Tokenizer"], swiftSettings: numericSettings),
        .target(name: "CLI", dependencies: ["GPT2", "SafeTensors", "Tokenizer", "Data", "Distributed", "Training"]),
        .executableTarget(name: "gpt2-ddp", dependencies: ["CLI"]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "TestSupport"]),
        .testTarget(name: "GPT2Tests", dependencies: ["GPT2", "SafeTensors", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DataTests", dependencies: ["Data", "GPT2", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "GPT2", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "CLITests", dependencies: ["CLI", "GPT2", "SafeTensors", "Training", "TestSupport"]),
    ]
)
