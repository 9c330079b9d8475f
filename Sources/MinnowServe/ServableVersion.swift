import Foundation
import MinnowFormat
import MinnowRuntime
import MinnowSigning

/// One loaded, verified and warmed version of a model, with its workers. Immutable; shared by
/// the requests that use it. Retiring it closes its queue: requests already queued finish.
public final class ServableVersion: Sendable {
    public let name: String
    public let version: Int
    public let model: Model
    public let fingerprint: ModelRepository.Fingerprint
    let queue: InferenceQueue

    /// Loads `file`: verification, decompression and operator checks (Model), the bundled golden
    /// samples if the converter stored any, then one warm-up run per session.
    /// With `requiredSigner` (a raw Ed25519 public key), the signature is checked before anything
    /// else in the file is parsed.
    static func load(name: String, file: ModelRepository.VersionFile, options: ExecutionOptions,
                     requiredSigner: Data? = nil, observer: QueueObserver) throws(ServeError) -> ServableVersion {
        let bytes: AlignedBytes
        do { bytes = try AlignedBytes.read(path: file.path) } catch { throw ServeError(.unavailable, "\(file.path): \(error)") }
        if let key = requiredSigner {
            do { try ModelSigning.verify(bytes.buffer, publicKey: key) } catch {
                throw ServeError(.unavailable, "\(file.path): \(error)")
            }
        }
        let model: Model
        do { model = try Model(bytes: bytes) } catch {
            throw ServeError(.unavailable, "\(file.path): \(error)")
        }
        let selfTest: SelfTestResult?
        do { selfTest = try model.selfTest() } catch {
            throw ServeError(.unavailable, "\(file.path): golden-sample check failed: \(error)")
        }
        if let result = selfTest, !result.passed {
            let worst = result.maxDifference.map { "\($0.output) \($0.value)" }.joined(separator: ", ")
            throw ServeError(.unavailable, "\(file.path): golden samples differ beyond \(result.tolerance) (\(worst))")
        }
        let queue = try InferenceQueue(model: model, options: options, observer: observer)
        return ServableVersion(name: name, version: file.version, model: model, fingerprint: file.fingerprint, queue: queue)
    }

    init(name: String, version: Int, model: Model, fingerprint: ModelRepository.Fingerprint, queue: InferenceQueue) {
        self.name = name
        self.version = version
        self.model = model
        self.fingerprint = fingerprint
        self.queue = queue
    }

    /// Runs `request` on one of this version's workers.
    /// `.closed` means the version was retired after the caller looked it up: retry the lookup.
    func infer(_ request: InferenceRequest) async -> Result<InferenceResult, SubmitFailure> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<InferenceResult, SubmitFailure>, Never>) in
            let outcome = queue.submit(request) { result in
                continuation.resume(returning: result.mapError { .failed($0) })
            }
            switch outcome {
            case .accepted: break
            case .full:
                continuation.resume(returning: .failure(.failed(ServeError(.overloaded,
                    "model '\(name)' version \(version) is overloaded: \(options.queueCapacity) requests already queued"))))
            case .closed: continuation.resume(returning: .failure(.retired))
            }
        }
    }

    var options: ExecutionOptions { queue.options }

    enum SubmitFailure: Error {
        case retired
        case failed(ServeError)
    }
}
