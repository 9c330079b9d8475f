import Foundation
import MinnowFormat
import MinnowRuntime
@testable import MinnowServe
import XCTest

/// Holds values written from worker threads.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    init(_ v: T) { _value = v }
    var value: T { lock.withLock { _value } }
    func update(_ f: (inout T) -> Void) { lock.withLock { f(&_value) } }
}

final class InferenceQueueTests: XCTestCase {
    let model = try! Model(bytes: AlignedBytes(Models.ctr))

    func request(_ row: Int) -> InferenceRequest {
        try! InferenceRequest(model: model, rows: 1, inputs: [(0..<30).map { Double(($0 * 13 + row * 7) % 19 - 9) / 5 }])
    }

    func single(_ row: Int) throws -> [Float] {
        let s = try Session(model: model)
        return try s.predict(inputs: [request(row).inputs[0].map { Float($0) }], samples: 1)[0]
    }

    /// A worker is held by a completion that blocks, so what happens to queued requests is certain.
    func testQueuedRequestsMergeIntoOneRunWithTheSameResults() throws {
        let batches = Box<[(Int, Int)]>([])
        var observer = QueueObserver()
        observer.batchRan = { rows, n in batches.update { $0.append((rows, n)) } }
        let q = try InferenceQueue(model: model, options: ExecutionOptions(workers: 1, maxBatchRows: 8, batchTimeoutMicroseconds: 0),
                                   observer: observer)
        let gate = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        let results = Box<[Int: [Float]]>([:])
        let started = DispatchSemaphore(value: 0)
        done.enter()
        XCTAssertEqual(q.submit(request(0)) { r in
            results.update { $0[0] = try! r.get().outputs[0].floats }
            started.signal()
            gate.wait()  // hold the only worker
            done.leave()
        }, .accepted)
        started.wait()
        for i in 1...8 {
            done.enter()
            XCTAssertEqual(q.submit(request(i)) { r in results.update { $0[i] = try! r.get().outputs[0].floats }; done.leave() }, .accepted)
        }
        gate.signal()
        done.wait()
        // The observer hears of a batch after its completions ran: give it a moment.
        let deadline = Date().addingTimeInterval(5)
        while batches.value.count < 2 && Date() < deadline { usleep(1000) }
        XCTAssertEqual(batches.value.map { $0.1 }, [1, 8], "the eight queued requests ran as one batch")
        for i in 0...8 { XCTAssertEqual(results.value[i], try single(i), "row \(i)") }
        q.close()
        q.waitUntilDrained()
        XCTAssertEqual(q.submit(request(0)) { _ in }, .closed)
    }

    func testAFullQueueRefusesAndClosingDrainsWhatIsQueued() throws {
        let q = try InferenceQueue(model: model, options: ExecutionOptions(workers: 1, queueCapacity: 2), observer: QueueObserver())
        let gate = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let completed = Box(0)
        _ = q.submit(request(0)) { _ in started.signal(); gate.wait(); completed.update { $0 += 1 } }
        started.wait()
        XCTAssertEqual(q.submit(request(1)) { _ in completed.update { $0 += 1 } }, .accepted)
        XCTAssertEqual(q.submit(request(2)) { _ in completed.update { $0 += 1 } }, .accepted)
        XCTAssertEqual(q.submit(request(3)) { _ in }, .full)
        q.close()
        XCTAssertEqual(q.submit(request(4)) { _ in }, .closed)
        gate.signal()
        q.waitUntilDrained()
        XCTAssertEqual(completed.value, 3, "requests queued before close still ran")
    }

    func testTheBatchTimeoutWaitsForMoreRequests() throws {
        let batches = Box<[Int]>([])
        var observer = QueueObserver()
        observer.batchRan = { rows, _ in batches.update { $0.append(rows) } }
        let q = try InferenceQueue(model: model, options: ExecutionOptions(workers: 1, maxBatchRows: 4, batchTimeoutMicroseconds: 5_000_000),
                                   observer: observer)
        let done = DispatchGroup()
        for i in 0..<4 {
            done.enter()
            _ = q.submit(request(i)) { _ in done.leave() }
            usleep(20_000)
        }
        done.wait()
        XCTAssertEqual(batches.value, [4], "one run once the batch was full, well before the timeout")
        q.close()
        q.waitUntilDrained()
    }
}

extension TensorValues {
    var floats: [Float] { if case .float32(let v) = self { v } else { [] } }
}
