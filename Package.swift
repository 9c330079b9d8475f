// swift-tools-version:6.1
import Foundation
import PackageDescription

// Module map (DESIGN §2): Format <- Runtime <- Convert <- Parity; the CLI knows them all.
let package = Package(
    name: "Minnow",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "MinnowRuntime", targets: ["MinnowRuntime"]),
        .library(name: "MinnowConvert", targets: ["MinnowConvert"]),
        .executable(name: "minnow", targets: ["minnow"]),
        // libMinnowC.so: the C interface (Sources/CMinnowAPI/include/minnow.h) for other hosts.
        .library(name: "MinnowC", type: .dynamic, targets: ["MinnowC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        // `minnow serve`: HTTP (without the swift-configuration trait), logs and Prometheus metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // Ed25519 model signatures.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // System zstd (libzstd-dev).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // flatc-generated C++ verifier behind a C interface, plus XXH64 for segment checksums.
        .target(name: "CMinnowFormat"),
        // Inner loops only: portable reference kernels (SIMD paths go beside them).
        // -ffp-contract=off: no implicit FMA, so SIMD epilogues round exactly like the reference.
        .target(name: "MinnowKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),
        .target(name: "MinnowFormat", dependencies: ["CZstd", "CMinnowFormat"], swiftSettings: [
            // The crafted-file tests patch single FlatBuffer fields through the internal reader.
            .unsafeFlags(["-enable-testing"]),
        ]),
        .target(name: "MinnowRuntime", dependencies: ["MinnowFormat", "MinnowKernels"]),
        .target(name: "CMinnowAPI"),
        .target(name: "MinnowC", dependencies: ["CMinnowAPI", "MinnowRuntime", "MinnowFormat"]),
        .target(name: "MinnowNumpy", dependencies: [.product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .target(name: "MinnowConvert", dependencies: [
            "MinnowFormat", "MinnowRuntime", "MinnowNumpy",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .target(name: "MinnowParity", dependencies: ["MinnowRuntime", "MinnowConvert", "MinnowNumpy"]),
        // Ed25519 signatures over whole .minnow files (a trailer after the segments).
        .target(name: "MinnowSigning", dependencies: ["MinnowFormat", .product(name: "Crypto", package: "swift-crypto")]),
        // Serving (DESIGN §7): model repository, versions, protocols, batching, metrics. Runtime only.
        .target(name: "MinnowServe", dependencies: [
            "MinnowRuntime", "MinnowFormat", "MinnowSigning",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "DequeModule", package: "swift-collections"),
        ], swiftSettings: [
            // The tests drive internals (routes, protocol decoders, the queue) in release builds.
            .unsafeFlags(["-enable-testing"]),
        ]),
        .executableTarget(name: "minnow", dependencies: [
            "MinnowFormat", "MinnowRuntime", "MinnowConvert", "MinnowParity", "MinnowNumpy", "MinnowServe", "MinnowSigning",
            "CAllocCounter",  // `minnow bench` reports heap allocations per run
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // One entry per untrusted-input surface, shared by the fuzzers and the corpus replay test.
        .target(name: "MinnowFuzzing", dependencies: [
            "MinnowFormat", "MinnowRuntime", "MinnowConvert", "MinnowNumpy", "MinnowServe",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // malloc counter (interposes malloc & co. and counts per thread): tests and `minnow bench`.
        .target(name: "CAllocCounter"),
        .testTarget(name: "MinnowFormatTests", dependencies: ["MinnowFormat"]),
        .testTarget(name: "MinnowRuntimeTests", dependencies: ["MinnowRuntime", "MinnowFormat", "MinnowKernels", "CAllocCounter"]),
        .testTarget(name: "MinnowConvertTests", dependencies: ["MinnowConvert", "MinnowRuntime", "MinnowNumpy", "MinnowFormat"]),
        .testTarget(name: "MinnowParityTests", dependencies: ["MinnowParity", "MinnowConvert", "MinnowRuntime", "MinnowFormat"]),
        .testTarget(name: "MinnowSigningTests", dependencies: ["MinnowSigning", "MinnowFormat"]),
        .testTarget(name: "MinnowServeTests", dependencies: ["MinnowServe", "MinnowRuntime", "MinnowConvert", "MinnowFormat"]),
        .testTarget(name: "MinnowFuzzingTests", dependencies: ["MinnowFuzzing"]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "minnow", "MinnowConvert", "MinnowRuntime", "MinnowNumpy", "MinnowParity", "CAllocCounter",
        ], exclude: ["Snapshots"]),
    ],
    cxxLanguageStandard: .cxx17
)

// libFuzzer executables (fuzz/<target>): only in the AddressSanitizer build with coverage
// instrumentation that scripts/sanitizers.sh makes, which sets MINNOW_FUZZ to the path of
// libclang_rt.fuzzer_no_main (libFuzzer without its main: ours calls its driver, so the tests and
// the CLI build in the same tree).
if let libFuzzer = ProcessInfo.processInfo.environment["MINNOW_FUZZ"], !libFuzzer.isEmpty {
    package.targets.append(.target(name: "CFuzzerDriver"))
    for t in ["model", "npz", "onnx", "http"] {
        package.targets.append(.executableTarget(name: "fuzz-\(t)", dependencies: ["MinnowFuzzing", "CFuzzerDriver"],
                                                 path: "fuzz/\(t)", linkerSettings: [.unsafeFlags([libFuzzer])]))
        package.products.append(.executable(name: "fuzz-\(t)", targets: ["fuzz-\(t)"]))
    }
}
