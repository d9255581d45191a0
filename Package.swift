// swift-tools-version:6.0
import PackageDescription

// Release builds get optimisation without bounds checks in the numeric module. Debug builds
// optimise it with checks kept (-O keeps bounds and overflow checks, so tests still catch indexing
// mistakes): unoptimised, its SIMD code runs lane by lane through generic calls, tens of times slower.
var releaseFlags = ["-Ounchecked"]
#if arch(x86_64)
// x86-64-v3 (AVX2, FMA, BMI2: Haswell, Zen 1 and later). Without it the kernels' fused
// multiply-adds become calls to the software fmaf and vectors are 128 bits wide. Passed to Clang,
// whose target options Swift's code generator takes (swiftc's own -target-cpu knows only CPU names).
releaseFlags += ["-Xcc", "-march=x86-64-v3"]
#endif
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(releaseFlags, .when(configuration: .release)),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

let package = Package(
    name: "gpt2-ddp",
    products: [
        .executable(name: "gpt2-ddp", targets: ["gpt2-ddp"]),
    ],
    targets: [
        .target(name: "SafeTensors"),
        // The micro-kernels Swift cannot emit (AVX-512, AVX512-BF16) and the cpuid query that
        // decides whether they may run; each kernel carries its own target attribute, so the
        // target itself is built for plain x86-64. Optimised in debug builds too.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // The numeric kernels the model is built from (products and their packing, element-wise
        // layers, attention, cross-entropy, AdamW, dropout's generator, the thread pool, the CPU
        // query and the run-time choice of path). Its tests reach internals (the packed matmul,
        // exp16) through @testable import.
        .target(name: "Kernels", dependencies: ["CKernels"], swiftSettings: numericSettings + [.unsafeFlags(["-enable-testing"], .when(configuration: .release))]),
        // The model: config, layout, forward/backward, Hugging Face I/O, generation.
        .target(name: "GPT2", dependencies: ["Kernels", "SafeTensors"], swiftSettings: numericSettings + [.unsafeFlags(["-enable-testing"], .when(configuration: .release))]),
        // Its tests check internals (the merge algorithms, the character tables) with @testable,
        // which a release build allows only for modules compiled for testing.
        .target(name: "Tokenizer", swiftSettings: [.unsafeFlags(["-enable-testing"], .when(configuration: .release))]),
        .target(name: "Data", dependencies: ["GPT2", "SafeTensors"]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "Distributed", dependencies: ["CMPI"]),
        .target(name: "Training", dependencies: ["GPT2", "Kernels", "Data", "Distributed", "SafeTensors", "Tokenizer"], swiftSettings: numericSettings),
        .target(name: "CLI", dependencies: ["GPT2", "Kernels", "SafeTensors", "Tokenizer", "Data", "Distributed", "Training"]),
        .executableTarget(name: "gpt2-ddp", dependencies: ["CLI", "CKernels"]),
        // GPT2 for the JSON values of the fixtures the test targets share.
        .target(name: "TestSupport", dependencies: ["GPT2"], path: "Tests/TestSupport"),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "GPT2", "TestSupport"]),
        .testTarget(name: "GPT2Tests", dependencies: ["GPT2", "Kernels", "SafeTensors", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DataTests", dependencies: ["Data", "GPT2", "Tokenizer", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "GPT2", "Kernels", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "CLITests", dependencies: ["CLI", "GPT2", "Kernels", "SafeTensors", "Training", "TestSupport"]),
    ]
)
