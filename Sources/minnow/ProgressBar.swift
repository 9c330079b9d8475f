import Foundation

/// A one-line progress bar on stderr, drawn only when stderr is a terminal (quiet in CI logs).
final class ProgressBar: @unchecked Sendable {
    private let enabled = isatty(2) != 0
    private var lastDrawn = -1
    private var stage = ""
    private let lock = NSLock()

    func update(_ stage: String, _ fraction: Double) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let percent = Int((min(max(fraction, 0), 1) * 100).rounded(.down))
        guard percent != lastDrawn || stage != self.stage else { return }
        lastDrawn = percent
        self.stage = stage
        let filled = percent * 30 / 100
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: 30 - filled)
        FileHandle.standardError.write(Data("\r\(stage) [\(bar)] \(percent)%".utf8))
    }

    /// Clears the line so the next output starts clean.
    func finish() {
        guard enabled, lastDrawn >= 0 else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
        lastDrawn = -1
    }
}
