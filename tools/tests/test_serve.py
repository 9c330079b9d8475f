"""`minnow serve` over real HTTP, driven as a client would: TF Serving and KServe v2 requests,
answers checked against `minnow run` on the same inputs; errors; hot swaps under wrk; SIGTERM."""
import os
import shutil
import threading
import time

import numpy as np
import pytest

from serving import Server, wrk

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")


@pytest.fixture(scope="module")
def ctr_model(minnow, tmp_path_factory):
    out = tmp_path_factory.mktemp("ctr") / "model.minnow"
    minnow("convert", f"{FIXTURES}/ctr_mlp/model.onnx", "-o", out, "--calibration", f"{FIXTURES}/ctr_mlp/calibration.npz")
    return str(out)


def make_repo(root, model_file, versions=(1,)):
    for v in versions:
        os.makedirs(f"{root}/ctr/{v}", exist_ok=True)
        shutil.copy(model_file, f"{root}/ctr/{v}/model.minnow")
    return str(root)


@pytest.fixture(scope="module")
def server(ctr_model, tmp_path_factory):
    s = Server(make_repo(tmp_path_factory.mktemp("repo"), ctr_model), "--threads", "2", "--max-body-bytes", "200000")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def reference(minnow, ctr_model, tmp_path_factory):
    """Inputs from the fixture's reference set and what `minnow run` answers for them."""
    x = np.load(f"{FIXTURES}/ctr_mlp/reference.npz")["inputs/x"][:40].astype(np.float32)
    d = tmp_path_factory.mktemp("run")
    np.savez(d / "in.npz", x=x)
    minnow("run", ctr_model, "--input", d / "in.npz", "-o", d / "out.npz")
    return x, np.load(d / "out.npz")["outputs/ctr"]


def test_tf_serving_and_kserve_answers_equal_minnow_run(server, reference):
    x, want = reference
    status, body = server.request("POST", "/v1/models/ctr:predict", {"instances": x.tolist()})
    assert status == 200, body
    # JSON floats are written in shortest form: they read back to the same float32 exactly.
    np.testing.assert_array_equal(np.array(body["predictions"], dtype=np.float32), want)

    status, body = server.request("POST", "/v1/models/ctr/versions/1:predict", {"inputs": {"x": x[:7].tolist()}})
    assert status == 200, body
    np.testing.assert_array_equal(np.array(body["outputs"], dtype=np.float32), want[:7])

    status, body = server.request("POST", "/v2/models/ctr/infer", {
        "id": "q1", "inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]})
    assert status == 200, body
    assert body["model_name"] == "ctr" and body["model_version"] == "1" and body["id"] == "q1"
    out = body["outputs"][0]
    assert out["name"] == "ctr" and out["datatype"] == "FP32" and out["shape"] == [40, 1]
    np.testing.assert_array_equal(np.array(out["data"], dtype=np.float32).reshape(40, 1), want)


def test_status_metadata_health_and_metrics(server):
    assert server.request("GET", "/v1/models/ctr") == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    status, meta = server.request("GET", "/v1/models/ctr/metadata")
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["x"]["tensor_shape"]["dim"][1]["size"] == "30"
    assert server.request("GET", "/v2/health/live")[0] == 200
    assert server.request("GET", "/v2/health/ready")[0] == 200
    assert server.request("GET", "/v2/models/ctr/ready")[0] == 200
    status, v2 = server.request("GET", "/v2/models/ctr")
    assert v2["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 30]}]
    status, text = server.request("GET", "/metrics")
    assert status == 200 and "minnow_requests_total{" in text and "minnow_model_versions_available{model=\"ctr\"} 1" in text


@pytest.mark.parametrize("method,path,body,code,fragment", [
    ("POST", "/v1/models/nope:predict", {"instances": [[0] * 30]}, 404, "model 'nope' not found"),
    ("POST", "/v1/models/ctr/versions/3:predict", {"instances": [[0] * 30]}, 404, "version 3 is not served"),
    ("POST", "/v1/models/ctr:predict", b"{not json", 400, "invalid JSON"),
    ("POST", "/v1/models/ctr:predict", {"instances": [[0] * 29]}, 400, "takes shape [-1, 30]"),
    ("POST", "/v1/models/ctr:predict", {"instances": [[0] * 29 + ["x"]]}, 400, "expected a number, found a string"),
    ("POST", "/v1/models/ctr:predict", {"inputs": {"y": [[0] * 30]}}, 400, "unknown input 'y'"),
    ("POST", "/v2/models/ctr/infer", {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "INT64", "data": [0] * 30}]}, 400, "datatype FP32"),
    ("GET", "/v1/models/ctr:predict", None, 405, "use POST"),
    ("POST", "/v1/models/ctr:predict", {"instances": [[0.123456] * 30] * 1000}, 413, "exceeds 200000 bytes"),
])
def test_bad_requests_get_a_status_and_a_message(server, method, path, body, code, fragment):
    status, reply = server.request(method, path, body)
    assert status == code, reply
    assert fragment in reply["error"]


def test_new_versions_swap_in_under_load_with_zero_failed_requests(ctr_model, tmp_path):
    """Twenty versions dropped into the repository while wrk loads the server: five corrupted,
    two written in two halves. No request fails; bad ones are reported; the newest good one serves."""
    root = make_repo(tmp_path / "repo", ctr_model)
    good = open(ctr_model, "rb").read()
    s = Server(root, "--poll-seconds", "0.2", "--settle-seconds", "0.5", "--threads", "2")
    corrupt = {4: "flip", 8: "truncate", 11: "garbage", 15: "splice", 18: "flip-header"}
    half = {6, 13}

    def drop(v):
        d = f"{root}/ctr/{v}"
        os.makedirs(d)
        data = good
        kind = corrupt.get(v)
        if kind == "flip":
            data = bytearray(good); data[-200] ^= 0x40; data = bytes(data)
        elif kind == "truncate":
            data = good[: len(good) * 2 // 3]
        elif kind == "garbage":
            data = os.urandom(len(good))
        elif kind == "splice":
            data = good[: len(good) // 2] + good[len(good) // 4:]
        elif kind == "flip-header":
            data = bytearray(good); data[4] ^= 0xFF; data = bytes(data)
        path = f"{d}/model.minnow"
        if v in half:
            with open(path, "wb") as f:  # a writer that pauses half-way
                f.write(data[: len(data) // 2]); f.flush()
                time.sleep(0.3)
                f.write(data[len(data) // 2:])
        else:
            with open(path, "wb") as f:
                f.write(data)

    def dropper():
        time.sleep(1)
        for v in range(2, 22):
            drop(v)
            time.sleep(0.45)

    t = threading.Thread(target=dropper)
    t.start()
    try:
        requests, non2xx, socket_errors, summary = wrk(s.url + "/v1/models/ctr:predict",
                                                       {"instances": [[0.5] * 30] * 4}, seconds=13)
        t.join()
        time.sleep(1.5)  # the last version settles and loads
        status, st = s.request("GET", "/v1/models/ctr")
        _, metrics = s.request("GET", "/metrics")
    finally:
        t.join()
        code, err = s.stop()
    assert requests > 500, summary
    assert non2xx == 0 and socket_errors == 0, summary
    by_version = {int(x["version"]): x for x in st["model_version_status"]}
    assert by_version[21]["state"] == "AVAILABLE", st
    for v in corrupt:  # reported, never served
        assert f'minnow_model_load_total{{model="ctr",version="{v}",result="failure"}} 1' in metrics, v
        assert f'minnow_model_load_total{{model="ctr",version="{v}",result="success"}}' not in metrics, v
        assert "failed to load" in err and f"version={v} " in err
    for v in set(range(2, 22)) - set(corrupt):  # good and half-written: loaded once, never failed
        assert f'minnow_model_load_total{{model="ctr",version="{v}",result="failure"}}' not in metrics, v
    assert code == 0, err[-2000:]


def test_sigterm_drains_in_flight_requests_and_exits_0(ctr_model, tmp_path):
    s = Server(make_repo(tmp_path / "repo", ctr_model), "--threads", "1")
    results = []

    def client():
        for _ in range(200):
            try:
                results.append(s.request("POST", "/v1/models/ctr:predict", {"instances": [[0.1] * 30] * 64})[0])
            except OSError:
                break  # the server stopped accepting: expected after SIGTERM
    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    code, err = s.stop()
    for t in threads:
        t.join()
    assert code == 0, err
    assert results and all(r == 200 for r in results), results
    assert "all versions drained" in err


def test_signed_models_only_and_a_tampered_one_never_replaces_the_version_in_service(minnow, ctr_model, tmp_path):
    minnow("keygen", "--private", tmp_path / "k.priv", "--public", tmp_path / "k.pub")
    signed = tmp_path / "signed.minnow"
    shutil.copy(ctr_model, signed)
    minnow("sign", signed, "--key", tmp_path / "k.priv")
    assert "signature valid" in minnow("verify", signed, "--public-key", tmp_path / "k.pub").stdout
    unsigned_run = minnow("run", ctr_model, "--require-signature", tmp_path / "k.pub", "--input",
                          f"{FIXTURES}/ctr_mlp/reference.npz", "-o", tmp_path / "o.npz", check=False)
    assert unsigned_run.returncode == 1 and "not signed" in unsigned_run.stderr
    assert minnow("bench", signed, "--require-signature", tmp_path / "k.pub", "--seconds", "0.1").returncode == 0
    unsigned_bench = minnow("bench", ctr_model, "--require-signature", tmp_path / "k.pub", "--seconds", "0.1", check=False)
    assert unsigned_bench.returncode == 1 and "not signed" in unsigned_bench.stderr

    root = make_repo(tmp_path / "repo", str(signed))
    s = Server(root, "--poll-seconds", "0.2", "--settle-seconds", "0.2", "--require-signature", tmp_path / "k.pub")
    try:
        assert s.request("POST", "/v1/models/ctr:predict", {"instances": [[0.1] * 30]})[0] == 200
        tampered = bytearray(open(signed, "rb").read())
        tampered[200] ^= 1  # inside the graph: still a loadable model, but not the signed one
        os.makedirs(f"{root}/ctr/2")
        open(f"{root}/ctr/2/model.minnow", "wb").write(tampered)
        os.makedirs(f"{root}/ctr/3")
        shutil.copy(ctr_model, f"{root}/ctr/3/model.minnow")  # unsigned
        time.sleep(2)
        _, st = s.request("GET", "/v1/models/ctr")
        by_version = {int(x["version"]): x for x in st["model_version_status"]}
        assert by_version[1]["state"] == "AVAILABLE", st
        assert "does not match the file's contents" in by_version[2]["status"]["error_message"], st
        assert "not signed" in by_version[3]["status"]["error_message"], st
        status, body = s.request("POST", "/v2/models/ctr/infer", {"inputs": [
            {"name": "x", "shape": [1, 30], "datatype": "FP32", "data": [0.1] * 30}]})
        assert status == 200 and body["model_version"] == "1"
    finally:
        assert s.stop()[0] == 0
