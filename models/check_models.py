#!/usr/bin/env python3
"""Check converted ONNX models against their TFLite originals.

For each model: run the ONNX file in onnxruntime and the original .tflite in
the TF Lite interpreter (built-in reference kernels, no default delegates, so
no XNNPACK) on the same inputs (2 white-noise images and 2 smooth random
images in the model's input range), and require

    max |onnx - tflite| <= RTOL * max(1, max |tflite|)

for every output. The differences are float rounding: for context the script
also prints how far TF Lite with its default XNNPACK delegate is from the same
reference, which is of the same size (and often larger). The largest relative
differences (up to about 5e-4 of the magnitude) are on the segmentation logits of pose_landmark_*,
whose magnitude reaches ~1500 on such inputs. Also checks the input/output names and shapes against the
expected interface, opset 17, and prints them.

Usage: check_models.py TFLITE_DIR ONNX_DIR [MODEL ...]
(TFLITE_DIR holds the original, un-densified .tflite files.)
"""

import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf

RTOL = 2e-3
SEEDS = (0, 1, 2, 3)

POSE_LM = (
    [1, 256, 256, 3],
    (0.0, 1.0),
    [
        ("Identity", [1, 195]),
        ("Identity_1", [1, 1]),
        ("Identity_2", [1, 256, 256, 1]),
        ("Identity_3", [1, 64, 64, 39]),
        ("Identity_4", [1, 117]),
    ],
)
HAND_LM = (
    [1, 224, 224, 3],
    (0.0, 1.0),
    [
        ("Identity", [1, 63]),
        ("Identity_1", [1, 1]),
        ("Identity_2", [1, 1]),
        ("Identity_3", [1, 63]),
    ],
)
# name -> (input shape, input value range, [(output name, shape)])
EXPECTED = {
    "pose_detection": (
        [1, 224, 224, 3],
        (-1.0, 1.0),
        [("Identity", [1, 2254, 12]), ("Identity_1", [1, 2254, 1])],
    ),
    "pose_landmark_lite": POSE_LM,
    "pose_landmark_full": POSE_LM,
    "pose_landmark_heavy": POSE_LM,
    "palm_detection_full": (
        [1, 192, 192, 3],
        (0.0, 1.0),
        [("Identity", [1, 2016, 18]), ("Identity_1", [1, 2016, 1])],
    ),
    "hand_landmark_lite": HAND_LM,
    "hand_landmark_full": HAND_LM,
}


def check(name, tflite_path, onnx_path):
    in_shape, (lo, hi), outs = EXPECTED[name]

    model = onnx.load(onnx_path)
    opset = {o.domain: o.version for o in model.opset_import}.get("", None)
    assert opset == 17, f"{name}: opset {opset}"

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "input_1" and list(inp.shape) == in_shape, (
        f"{name}: input {inp.name} {inp.shape}"
    )
    assert inp.type == "tensor(float)", inp.type
    got = [(o.name, list(o.shape)) for o in sess.get_outputs()]
    assert got == outs, f"{name}: outputs {got} != {outs}"

    interp = make_interpreter(tflite_path, delegates=False)
    xnn = make_interpreter(tflite_path, delegates=True)
    (tin,) = interp.get_input_details()
    assert list(tin["shape"]) == in_shape
    tout = {d["name"] for d in interp.get_output_details()}
    assert tout == {n for n, _ in outs}, f"{name}: tflite outputs {tout}"

    print(f"{name}  ({os.path.getsize(onnx_path)} bytes, opset {opset})")
    print(f"  input  {inp.name} {in_shape} float32, values in [{lo:g}, {hi:g}]")
    worst = {n: [0.0, 0.0, 0.0] for n, _ in outs}
    for seed in SEEDS:
        x = make_input(seed, in_shape, lo, hi)
        ref = run_tflite(interp, x)
        alt = run_tflite(xnn, x)
        ys = sess.run([n for n, _ in outs], {inp.name: x})
        for (n, _), y in zip(outs, ys):
            r = ref[n].astype(np.float64)
            assert r.shape == y.shape, (n, r.shape, y.shape)
            w = worst[n]
            w[0] = max(w[0], float(np.max(np.abs(y - r))))
            w[1] = max(w[1], float(np.max(np.abs(r))))
            w[2] = max(w[2], float(np.max(np.abs(alt[n] - r))))
    ok = True
    for n, shape in outs:
        d, m, dx = worst[n]
        tol = RTOL * max(1.0, m)
        flag = "ok" if d <= tol else "FAIL"
        ok &= d <= tol
        print(
            f"  output {n:<10} {str(shape):<18} max|ref| {m:9.4g}  "
            f"max abs diff {d:9.3g} (tol {tol:.3g}, xnnpack {dx:.3g}) {flag}"
        )
    return ok


def make_interpreter(path, delegates):
    R = tf.lite.experimental.OpResolverType
    interp = tf.lite.Interpreter(
        model_path=path,
        experimental_op_resolver_type=(
            R.AUTO if delegates else R.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        ),
        num_threads=1,
    )
    interp.allocate_tensors()
    return interp


def run_tflite(interp, x):
    (tin,) = interp.get_input_details()
    interp.set_tensor(tin["index"], x)
    interp.invoke()
    return {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}


def make_input(seed, shape, lo, hi):
    """Even seeds: white noise; odd seeds: smooth random image (sum of
    random 2-D sinusoids per channel plus a little noise)."""
    rng = np.random.default_rng(seed)
    if seed % 2 == 0:
        u = rng.uniform(0.0, 1.0, size=shape)
    else:
        _, h, w, c = shape
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        u = np.zeros(shape)
        for ch in range(c):
            for _ in range(6):
                fy, fx = rng.uniform(-6, 6, size=2)
                ph = rng.uniform(0, 2 * np.pi)
                u[0, :, :, ch] += np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
        u = (u - u.min()) / (u.max() - u.min())
        u = np.clip(u + rng.normal(0, 0.02, size=shape), 0.0, 1.0)
    return (lo + (hi - lo) * u).astype(np.float32)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    tflite_dir, onnx_dir = argv[0], argv[1]
    names = argv[2:] or list(EXPECTED)
    ok = True
    for name in names:
        ok &= check(
            name,
            os.path.join(tflite_dir, name + ".tflite"),
            os.path.join(onnx_dir, name + ".onnx"),
        )
    if not ok:
        raise SystemExit("check FAILED")
    print(f"all {len(names)} models match their TFLite originals")


if __name__ == "__main__":
    main(sys.argv[1:])
