import Foundation
import MinnowFormat
import MinnowRuntime
@testable import MinnowServe
import XCTest

/// The protocols end to end through `ServingAPI.handle` (no sockets): answers are compared with
/// a session run directly on the same inputs.
final class ServingAPITests: XCTestCase {
    var repo: TempRepository!
    var manager: ModelManager!
    var api: ServingAPI!
    var model: Model!

    override func setUp() {
        repo = TempRepository()
        repo.write("ctr", 1, Models.ctr)
        repo.write("digits", 5, Models.digits)
        manager = makeManager(repo, workers: 2)
        manager.poll(initial: true)
        api = ServingAPI(manager: manager, metrics: manager.metrics, logger: quietLogger())
        model = try! Model(bytes: AlignedBytes(Models.ctr))
    }

    override func tearDown() async throws {
        await manager.shutdown()
    }

    /// Deterministic pseudo-random rows for the ctr model.
    func rows(_ n: Int, seed: Int = 1) -> [[Float]] {
        (0..<n).map { r in (0..<30).map { c in Float(((r * 31 + c * 17 + seed * 7) % 23) - 11) / 7 } }
    }

    func expected(_ rows: [[Float]]) throws -> [Float] {
        let session = try Session(model: model)
        return try session.predict(inputs: [rows.flatMap { $0 }], samples: rows.count)[0]
    }

    func post(_ path: String, _ json: String) async -> HTTPReply { await api.handle(method: "POST", path: path, body: Array(json.utf8)) }
    func get(_ path: String) async -> HTTPReply { await api.handle(method: "GET", path: path, body: []) }

    func floats(_ v: JSONValue?) -> [Float] {
        guard case .tensor(_, let values)? = v else { return [] }
        return values.map { Float($0) }
    }

    func json(_ rows: [[Float]]) -> String { "[" + rows.map { "[" + $0.map { "\($0)" }.joined(separator: ",") + "]" }.joined(separator: ",") + "]" }

    func testTFServingRowAndColumnarPredictMatchADirectRun() async throws {
        let x = rows(5)
        let want = try expected(x)
        let row = await post("/v1/models/ctr:predict", #"{"signature_name": "serving_default", "instances": \#(json(x))}"#)
        XCTAssertEqual(row.status, 200, row.body.string)
        XCTAssertEqual(floats(try JSONValue.parse(row.body)["predictions"]), want, "shortest float text reads back exactly")

        let named = "[" + x.map { #"{"x": \#(json([$0]).dropFirst().dropLast())}"# }.joined(separator: ",") + "]"
        let objects = await post("/v1/models/ctr/versions/1:predict", #"{"instances": \#(named)}"#)
        XCTAssertEqual(floats(try JSONValue.parse(objects.body)["predictions"]), want, objects.body.string)

        let columnar = await post("/v1/models/ctr:predict", #"{"inputs": {"x": \#(json(x))}}"#)
        XCTAssertEqual(floats(try JSONValue.parse(columnar.body)["outputs"]), want, columnar.body.string)
        let bare = await post("/v1/models/ctr:predict", #"{"inputs": \#(json(x))}"#)
        XCTAssertEqual(floats(try JSONValue.parse(bare.body)["outputs"]), want)
    }

    func testKServeInferMatchesADirectRunAndEchoesTheId() async throws {
        let x = rows(3, seed: 4)
        let flat = x.flatMap { $0 }.map { "\($0)" }.joined(separator: ",")
        let reply = await post("/v2/models/ctr/infer",
                               #"{"id": "req-7", "inputs": [{"name": "x", "shape": [3, 30], "datatype": "FP32", "data": [\#(flat)]}], "outputs": [{"name": "ctr"}]}"#)
        XCTAssertEqual(reply.status, 200, reply.body.string)
        let v = try JSONValue.parse(reply.body)
        XCTAssertEqual(v["model_name"], .string("ctr"))
        XCTAssertEqual(v["model_version"], .string("1"))
        XCTAssertEqual(v["id"], .string("req-7"))
        guard case .array(let outs)? = v["outputs"], let out = outs.first else { return XCTFail(reply.body.string) }
        XCTAssertEqual(out["name"], .string("ctr"))
        XCTAssertEqual(out["datatype"], .string("FP32"))
        XCTAssertEqual(out["shape"], .tensor(shape: [2], values: [3, 1]))
        XCTAssertEqual(floats(out["data"]), try expected(x))
        // Nested data is accepted too.
        let nested = await post("/v2/models/ctr/infer", #"{"inputs": [{"name": "x", "shape": [3, 30], "datatype": "FP32", "data": \#(json(x))}]}"#)
        XCTAssertEqual(nested.status, 200, nested.body.string)
    }

    func testABatchLargerThanTheSessionRunsInChunks() async throws {
        let x = rows(150, seed: 9)  // sessions hold 64 rows
        let reply = await post("/v1/models/ctr:predict", #"{"instances": \#(json(x))}"#)
        XCTAssertEqual(floats(try JSONValue.parse(reply.body)["predictions"]), try expected(x))
    }

    func testBadRequestsGetTheRightStatusAndAMessageThatNamesTheProblem() async {
        let one = json(rows(1))
        let cases: [(String, String, Int, String)] = [
            ("/v1/models/nope:predict", #"{"instances": \#(one)}"#, 404, "model 'nope' not found"),
            ("/v1/models/ctr/versions/9:predict", #"{"instances": \#(one)}"#, 404, "version 9 is not served"),
            ("/v1/models/ctr:predict", "{", 400, "invalid JSON"),
            ("/v1/models/ctr:predict", "[1]", 400, "must be a JSON object"),
            ("/v1/models/ctr:predict", "{}", 400, "needs \"instances\""),
            ("/v1/models/ctr:predict", #"{"instances": [[1, 2]]}"#, 400, "takes shape [-1, 30]"),
            ("/v1/models/ctr:predict", #"{"instances": [{"y": 1}]}"#, 400, "unknown input 'y'"),
            ("/v1/models/ctr:predict", #"{"instances": [{}]}"#, 400, "missing input 'x'"),
            ("/v1/models/ctr:predict", #"{"instances": [[1, "a"]]}"#, 400, "instances[0][1]: expected a number, found a string"),
            ("/v1/models/ctr:predict", #"{"instances": []}"#, 400, "instances is empty"),
            ("/v1/models/ctr:predict", #"{"instances": \#(one), "signature_name": "other"}"#, 400, "signature_name"),
            ("/v1/models/ctr:predict", #"{"inputs": {"x": [1, 2]}}"#, 400, "takes shape [-1, 30]"),
            ("/v2/models/ctr/infer", #"{"inputs": []}"#, 400, "non-empty list"),
            ("/v2/models/ctr/infer", #"{"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": \#(one)}]}"#, 400, "datatype FP32, request says FP64"),
            ("/v2/models/ctr/infer", #"{"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP32", "data": \#(one)}]}"#, 400, "needs 60 values, data has 30"),
            ("/v2/models/ctr/infer", #"{"inputs": [{"name": "x", "shape": [1, 29], "datatype": "FP32", "data": \#(one)}]}"#, 400, "takes shape [-1, 30]"),
            ("/v2/models/ctr/infer", #"{"inputs": [{"name": "x", "shape": [1, -30], "datatype": "FP32", "data": \#(one)}]}"#, 400, "non-negative integers"),
            ("/v2/models/ctr/infer", #"{"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP32", "data": \#(one)}], "outputs": [{"name": "p"}]}"#, 400, "unknown output 'p'"),
            ("/v2/models/ctr/infer", #"{"inputs": [{"shape": [1, 30], "datatype": "FP32", "data": \#(one)}]}"#, 400, "\"name\" (a string) is required"),
        ]
        for (path, body, status, fragment) in cases {
            let reply = await post(path, body)
            XCTAssertEqual(reply.status, status, "\(path) \(body): \(reply.body.string)")
            let message: String
            if case .string(let s)? = try? JSONValue.parse(reply.body)["error"] { message = s } else { message = "" }
            XCTAssertTrue(message.contains(fragment), "\(body): \(message)")
        }
    }

    func testStatusMetadataHealthAndMetrics() async throws {
        let status = try JSONValue.parse(await get("/v1/models/ctr").body)
        XCTAssertEqual(status, try JSONValue.parse(Array(#"{"model_version_status":[{"version":"1","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}"#.utf8)))
        let meta = try JSONValue.parse(await get("/v1/models/ctr/metadata").body)
        XCTAssertEqual(meta["model_spec"]?["version"], .string("1"))
        XCTAssertEqual(meta["metadata"]?["signature_def"]?["signature_def"]?["serving_default"]?["inputs"]?["x"]?["dtype"], .string("DT_FLOAT"))
        let v2 = try JSONValue.parse(await get("/v2/models/digits").body)
        XCTAssertEqual(v2["versions"], .array([.string("5")]))
        guard case .array(let inputs)? = v2["inputs"] else { return XCTFail() }
        XCTAssertEqual(inputs[0]["shape"], .tensor(shape: [2], values: [-1, 64]))
        let live = await get("/v2/health/live"), ready = await get("/v2/health/ready"), modelReady = await get("/v2/models/ctr/versions/1/ready")
        XCTAssertEqual([live.status, ready.status, modelReady.status], [200, 200, 200])
        let notReady = await get("/v2/models/ctr/versions/2/ready"), unknown = await get("/v1/models/zzz")
        XCTAssertEqual(notReady.status, 503)
        XCTAssertEqual(unknown.status, 404)

        _ = await post("/v1/models/ctr:predict", #"{"instances": \#(json(rows(2)))}"#)
        _ = await post("/v1/models/ctr:predict", "{")
        let metrics = await get("/metrics")
        XCTAssertTrue(metrics.contentType.hasPrefix("text/plain"))
        let text = metrics.body.string
        XCTAssertTrue(text.contains(#"minnow_requests_total{protocol="tfserving",model="ctr",version="1",code="200"} 2"#), text)  // metadata + predict
        XCTAssertTrue(text.contains(#"minnow_request_errors_total{protocol="tfserving",model="ctr",code="400"} 1"#), text)
        XCTAssertTrue(text.contains(#"minnow_request_duration_seconds_count{model="ctr",version="1"} 1"#), text)
        XCTAssertTrue(text.contains(#"minnow_model_load_total{model="digits",version="5",result="success"} 1"#), text)
    }

    func testRequestsDuringSwapsAllSucceed() async throws {
        let x = rows(2)
        let want = try expected(x)
        let body = #"{"instances": \#(json(x))}"#
        let api = self.api!
        let results = await withTaskGroup(of: (Int, [Float]).self) { group in
            for _ in 0..<200 {
                group.addTask {
                    let r = await api.handle(method: "POST", path: "/v1/models/ctr:predict", body: Array(body.utf8))
                    let out: [Float]
                    if case .tensor(_, let v)? = try? JSONValue.parse(r.body)["predictions"] { out = v.map { Float($0) } } else { out = [] }
                    return (r.status, out)
                }
            }
            // Swap versions while the requests run.
            for v in 2...4 {
                repo.write("ctr", v, Models.ctr)
                manager.poll(); manager.poll()
            }
            var all: [(Int, [Float])] = []
            for await r in group { all.append(r) }
            return all
        }
        XCTAssertEqual(results.count, 200)
        for (status, out) in results {
            XCTAssertEqual(status, 200)
            XCTAssertEqual(out, want)
        }
        XCTAssertEqual(try manager.lookup("ctr", version: nil).version, 4)
    }
}
