#!/usr/bin/env python3
"""Replace the DENSIFY ops of a TFLite model with dense constant tensors.

MediaPipe's pose_detection.tflite stores 38 of its fp16 weights block-sparse,
each followed by a DENSIFY op that expands it at run time. tf2onnx cannot read
sparse tensors, so this step bakes the expanded weights into the model:

1. Run the model once in the TF Lite interpreter with
   experimental_preserve_all_tensors=True and
   OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES. The no-delegate setting
   matters: XNNPACK would swallow the DENSIFY ops and their outputs would be
   garbage.
2. Read the output of every DENSIFY op and store it as a dense constant
   buffer (tensorflow.lite.tools.flatbuffer_utils).
3. Remove the DENSIFY ops. Their consumers are rewired to the dense tensor
   (the former DENSIFY output keeps its index, so it simply becomes a
   constant); the old sparse input tensors are dropped from use and their
   buffers emptied.
4. Check that the rewritten model gives the same outputs as the original on
   random input.

Usage: densify_tflite.py IN.tflite OUT.tflite
"""

import sys

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema_fb
from tensorflow.lite.tools import flatbuffer_utils


def make_interpreter(path):
    return tf.lite.Interpreter(
        model_path=path,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=(
            tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        ),
        num_threads=1,
    )


def run(interp, inputs):
    for det, x in zip(interp.get_input_details(), inputs):
        interp.set_tensor(det["index"], x)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def random_inputs(interp, seed):
    rng = np.random.default_rng(seed)
    out = []
    for det in interp.get_input_details():
        assert det["dtype"] == np.float32, det
        out.append(rng.uniform(-1.0, 1.0, size=det["shape"]).astype(np.float32))
    return out


def tensor_np_dtype(tensor_type):
    return {
        schema_fb.TensorType.FLOAT16: np.float16,
        schema_fb.TensorType.FLOAT32: np.float32,
        schema_fb.TensorType.INT8: np.int8,
        schema_fb.TensorType.UINT8: np.uint8,
        schema_fb.TensorType.INT32: np.int32,
    }[tensor_type]


def main(src, dst):
    model = flatbuffer_utils.read_model(src)
    densify_codes = {
        i
        for i, oc in enumerate(model.operatorCodes)
        if max(oc.builtinCode, oc.deprecatedBuiltinCode)
        == schema_fb.BuiltinOperator.DENSIFY
    }
    if not densify_codes:
        print(f"{src}: no DENSIFY ops; copying unchanged")
        flatbuffer_utils.write_model(model, dst)
        return

    # Buffer reference counts, to be sure a sparse buffer is not shared.
    buf_refs = {}
    for sg in model.subgraphs:
        for t in sg.tensors:
            buf_refs[t.buffer] = buf_refs.get(t.buffer, 0) + 1

    interp = make_interpreter(src)
    interp.allocate_tensors()
    run(interp, random_inputs(interp, 0))

    count = 0
    for sg_index, sg in enumerate(model.subgraphs):
        kept_ops = []
        for op in sg.operators:
            if op.opcodeIndex not in densify_codes:
                kept_ops.append(op)
                continue
            if sg_index != 0:
                raise SystemExit("DENSIFY outside the main subgraph is not handled")
            (in_idx,) = list(op.inputs)
            (out_idx,) = list(op.outputs)
            t_in, t_out = sg.tensors[in_idx], sg.tensors[out_idx]
            if t_in.sparsity is None:
                raise SystemExit(f"DENSIFY input {in_idx} is not sparse")
            if buf_refs.get(t_in.buffer, 0) != 1:
                raise SystemExit(f"sparse buffer {t_in.buffer} is shared")
            dtype = tensor_np_dtype(t_out.type)
            dense = interp.get_tensor(out_idx)
            if dense.dtype != dtype or list(dense.shape) != list(t_out.shape):
                raise SystemExit(
                    f"tensor {out_idx}: got {dense.dtype}{dense.shape}, "
                    f"expected {dtype}{list(t_out.shape)}"
                )
            # Sanity check: the stored sparse values (blocks, including their
            # explicit zeros) must hold exactly the non-zeros of the dense one.
            sparse_vals = np.frombuffer(
                bytes(bytearray(model.buffers[t_in.buffer].data)), dtype=dtype
            )
            nz_sparse = np.sort(sparse_vals[sparse_vals != 0].astype(np.float64))
            nz_dense = np.sort(dense[dense != 0].astype(np.float64).ravel())
            if not np.array_equal(nz_sparse, nz_dense):
                raise SystemExit(f"tensor {out_idx}: densified values do not match")

            new_buf = schema_fb.BufferT()
            new_buf.data = np.frombuffer(
                np.ascontiguousarray(dense).tobytes(), dtype=np.uint8
            )
            model.buffers.append(new_buf)
            t_out.buffer = len(model.buffers) - 1
            # Drop the now unused sparse input: empty its buffer.
            model.buffers[t_in.buffer].data = None
            t_in.sparsity = None
            count += 1
        sg.operators = kept_ops

    # The DENSIFY outputs kept their tensor indices, so every consumer now
    # reads a constant. Make sure nothing still refers to a removed op output
    # as a graph input/output.
    for sg in model.subgraphs:
        produced = {o for op in sg.operators for o in op.outputs}
        for op in sg.operators:
            for i in op.inputs:
                if i < 0:
                    continue
                t = sg.tensors[i]
                has_data = (
                    t.buffer > 0
                    and model.buffers[t.buffer].data is not None
                    and len(model.buffers[t.buffer].data) > 0
                )
                if not (has_data or i in produced or i in sg.inputs or t.isVariable):
                    raise SystemExit(f"op input tensor {i} has no producer")

    flatbuffer_utils.write_model(model, dst)
    print(f"{src}: densified {count} tensors -> {dst}")

    # Verify: same outputs as the original on random inputs.
    a = make_interpreter(src)
    b = make_interpreter(dst)
    a.allocate_tensors()
    b.allocate_tensors()
    worst = 0.0
    for seed in (1, 2, 3):
        xs = random_inputs(a, seed)
        for ya, yb in zip(run(a, xs), run(b, xs)):
            worst = max(worst, float(np.max(np.abs(ya - yb))))
    print(f"{dst}: max abs output diff vs original = {worst}")
    if worst != 0.0:
        raise SystemExit("densified model output differs from the original")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
