"""The approach users have today, for the serving comparison: Flask + onnxruntime answering TF
Serving's row-format predict (`POST /v1/models/<name>:predict` with {"instances": [...]}).

python3 tools/compare/flask_ort_server.py MODEL.onnx --port 8601 [--threads 1]
"""
import argparse
import logging

import numpy as np
import onnxruntime as ort
from flask import Flask, jsonify, request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--port", type=int, default=8601)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = ap.parse_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    app = Flask(__name__)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    @app.post("/v1/models/<name>:predict")
    def predict(name):
        body = request.get_json(force=True)
        x = np.asarray(body["instances"], dtype=np.float32)
        y = session.run(None, {input_name: x})[0]
        return jsonify({"predictions": y.tolist()})

    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
