"""berth's serving protocols driven by clients no one here wrote.

- tritonclient (Triton's own HTTP client, default settings: binary tensors both ways) on the
  fixture models, outputs equal to the reference runtime's within 1e-5;
- the TF Serving / KServe V1 `:predict` and MLflow `/invocations` bodies sent with `requests`.

Each test starts the real `berth serve FILE` binary (BERTH_BIN, default target/debug/berth) on
a free port of 127.0.0.1 and stops it with SIGTERM. Run by scripts/test.sh after the Rust tests.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "fixtures" / "models"
BERTH = Path(os.environ.get("BERTH_BIN", ROOT / "target" / "debug" / "berth"))


def eval_rows() -> tuple[list[str], np.ndarray]:
    path = ROOT / "fixtures" / "data" / "eval_features.csv"
    names = path.read_text().splitlines()[0].split(",")[1:]
    x = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float32, filling_values=np.nan)
    return names, np.ascontiguousarray(x[:, 1:])


def expected(file: str) -> tuple[list[str], np.ndarray]:
    path = MODELS / f"{file}.expected.csv"
    header = path.read_text().splitlines()[0].split(",")
    return header, np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64).reshape(-1, len(header))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def berth_serve(file: str):
    port = free_port()
    name = Path(file).stem
    process = subprocess.Popen(
        [str(BERTH), "serve", str(MODELS / file), "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://{url}/v2/models/{name}/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"berth serve {file} did not start: {process.stderr.read()}")
            time.sleep(0.05)
        yield url, name
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, "berth exits 0 on SIGTERM"


CLASSIFIERS = [
    "xgb_classifier.json",
    "xgb_multiclass.json",
    "lgbm_classifier.txt",
    "lgbm_multiclass.txt",
    "xgb_classifier.onnx",
    "rf_classifier.onnx",
    "logreg_pipeline_zipmap.onnx",
]
REGRESSORS = ["xgb_regressor.json", "lgbm_regressor.txt", "rf_regressor.onnx", "mlp_regressor.onnx"]


@pytest.mark.parametrize("file", CLASSIFIERS)
def test_tritonclient_classifiers_match_the_reference(file):
    _, x = eval_rows()
    header, want = expected(file)
    with berth_serve(file) as (url, name):
        client = httpclient.InferenceServerClient(url)
        assert client.is_server_live() and client.is_model_ready(name)
        metadata = client.get_model_metadata(name)
        assert metadata["inputs"][0]["shape"] == [-1, 23]
        data = httpclient.InferInput("input", list(x.shape), "FP32")
        data.set_data_from_numpy(x)  # binary by default
        result = client.infer(name, [data])  # every output, in binary
        response = result.get_response()
        label_name = next(o["name"] for o in response["outputs"] if "label" in o["name"])
        prob_name = next(o["name"] for o in response["outputs"] if "prob" in o["name"])
        labels = result.as_numpy(label_name)
        probabilities = result.as_numpy(prob_name).astype(np.float64)
        classes = len(header) - 1
        assert probabilities.shape == (len(x), classes)
        np.testing.assert_allclose(probabilities, want[:, 1:], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(labels.astype(np.int64), want[:, 0].astype(np.int64))


@pytest.mark.parametrize("file", REGRESSORS)
def test_tritonclient_regressors_match_the_reference(file):
    _, x = eval_rows()
    _, want = expected(file)
    with berth_serve(file) as (url, name):
        client = httpclient.InferenceServerClient(url)
        data = httpclient.InferInput("input", list(x.shape), "FP32")
        data.set_data_from_numpy(x)
        result = client.infer(name, [data])
        output = result.get_response()["outputs"][0]["name"]
        values = result.as_numpy(output).astype(np.float64).reshape(-1)
        np.testing.assert_allclose(values, want[:, 0], atol=1e-5, rtol=1e-6)


def test_tritonclient_json_tensors_and_a_chosen_output():
    _, x = eval_rows()
    _, want = expected("lgbm_classifier.txt")
    with berth_serve("lgbm_classifier.txt") as (url, name):
        client = httpclient.InferenceServerClient(url)
        data = httpclient.InferInput("input", [50, 23], "FP32")
        data.set_data_from_numpy(x[:50], binary_data=False)
        wanted = httpclient.InferRequestedOutput("probabilities", binary_data=False)
        result = client.infer(name, [data], outputs=[wanted])
        assert [o["name"] for o in result.get_response()["outputs"]] == ["probabilities"]
        np.testing.assert_allclose(result.as_numpy("probabilities"), want[:50, 1:], atol=1e-5, rtol=0)


def test_tritonclient_sees_clear_errors():
    with berth_serve("xgb_classifier.json") as (url, name):
        client = httpclient.InferenceServerClient(url)
        data = httpclient.InferInput("input", [1, 22], "FP32")
        data.set_data_from_numpy(np.zeros((1, 22), dtype=np.float32))
        with pytest.raises(Exception, match="feature columns|inputs|fields"):
            client.infer(name, [data])
        with pytest.raises(Exception, match="not served"):
            client.infer("nope", [data])


def records(names, x, n):
    return [{k: (None if np.isnan(v) else float(v)) for k, v in zip(names, row)} for row in x[:n]]


def test_v1_and_mlflow_bodies_through_requests():
    names, x = eval_rows()
    _, want = expected("xgb_regressor.json")
    n = 25
    rows = [[None if np.isnan(v) else float(v) for v in row] for row in x[:n]]
    with berth_serve("xgb_regressor.json") as (url, name):
        base = f"http://{url}"
        for body in ({"instances": records(names, x, n)}, {"instances": rows}):
            r = requests.post(f"{base}/v1/models/{name}:predict", json=body, timeout=10)
            assert r.status_code == 200, r.text
            assert r.headers["x-berth-version"] == f"{name}/1"
            got = [p["value"] for p in r.json()["predictions"]]
            np.testing.assert_allclose(got, want[:n, 0], atol=1e-5, rtol=1e-6)
        mlflow_bodies = [
            {"dataframe_split": {"columns": names, "data": rows}},
            {"dataframe_records": records(names, x, n)},
            {"instances": rows},
            {"inputs": records(names, x, n)},
        ]
        for body in mlflow_bodies:
            r = requests.post(f"{base}/invocations", json=body, timeout=10)
            assert r.status_code == 200, r.text
            got = [p["value"] for p in r.json()["predictions"]]
            np.testing.assert_allclose(got, want[:n, 0], atol=1e-5, rtol=1e-6)
        csv = ",".join(names) + "\n" + "\n".join(",".join("" if v is None else repr(v) for v in row) for row in rows)
        r = requests.post(f"{base}/invocations", data=csv, headers={"content-type": "text/csv"}, timeout=10)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose([p["value"] for p in r.json()["predictions"]], want[:n, 0], atol=1e-5, rtol=1e-6)
        r = requests.post(f"{base}/invocations", json={"instances": [{"tenure_months": "x"}]}, timeout=10)
        assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST", r.text
        assert "tenure_months" in r.json()["message"]
        assert requests.get(f"{base}/ping", timeout=10).status_code == 200
