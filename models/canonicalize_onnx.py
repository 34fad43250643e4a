#!/usr/bin/env python3
"""Make a tf2onnx output byte-reproducible.

tf2onnx 1.17.0 is not deterministic from run to run: the graph (node order,
ops, attributes, weights) is the same every time, but the counters it appends
to generated names (`const_fold_opt__470`, `Relu6__43_min__204`, ...) and the
order of the initializer list change between runs (they follow Python object
hashing). The converted file thus gets a different SHA-256 every time.

This script rewrites only names and ordering, never the computation:
* every name containing a tf2onnx counter (`__<digits>`) is renamed to its
  base (all `__<digits>` removed) plus `__<k>`, with k numbered in order of
  first appearance when walking the nodes in graph order;
* initializers (and value_info, if any) are sorted by first use;
* the graph doc_string, which holds the input path, is set to a fixed text.
It then checks that onnxruntime gives bit-identical outputs for both files.
Graph inputs and outputs (input_1, Identity, Identity_1, ...) keep their names.

Usage: canonicalize_onnx.py IN.onnx OUT.onnx SOURCE_NAME
"""

import re
import sys

import onnx

COUNTER = re.compile(r"__\d+")


def main(src, dst, source_name):
    model = onnx.load(src)
    g = model.graph
    for n in g.node:
        for a in n.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise SystemExit("subgraphs are not handled")

    keep = {v.name for v in g.input} | {v.name for v in g.output}
    mapping = {}
    order = {}

    def see(name):
        if name == "" or name in order:
            return
        order[name] = len(order)
        if name in keep or not COUNTER.search(name):
            mapping[name] = name
        else:
            mapping[name] = f"{COUNTER.sub('', name)}__{len(mapping)}"

    for v in g.input:
        see(v.name)
    for n in g.node:
        for name in n.input:
            see(name)
        for name in n.output:
            see(name)
    for v in g.output:
        see(v.name)
    # Node names live in their own namespace; number them after the tensors.
    node_names = {}
    for n in g.node:
        if n.name in node_names:
            continue
        if COUNTER.search(n.name):
            node_names[n.name] = f"{COUNTER.sub('', n.name)}__n{len(node_names)}"
        else:
            node_names[n.name] = n.name

    if len(set(mapping.values())) != len(mapping):
        raise SystemExit("renaming produced a collision")
    if len(set(node_names.values())) != len(node_names):
        raise SystemExit("node renaming produced a collision")

    for n in g.node:
        n.name = node_names[n.name]
        for i, name in enumerate(n.input):
            if name:
                n.input[i] = mapping[name]
        for i, name in enumerate(n.output):
            if name:
                n.output[i] = mapping[name]

    unused = [t.name for t in g.initializer if t.name not in order]
    if unused:
        raise SystemExit(f"unused initializers: {unused[:5]}")
    inits = sorted(g.initializer, key=lambda t: order[t.name])
    inits = [onnx.TensorProto.FromString(t.SerializeToString()) for t in inits]
    for t in inits:
        t.name = mapping[t.name]
    del g.initializer[:]
    g.initializer.extend(inits)

    vis = sorted(g.value_info, key=lambda v: order.get(v.name, len(order)))
    vis = [onnx.ValueInfoProto.FromString(v.SerializeToString()) for v in vis]
    for v in vis:
        v.name = mapping.get(v.name, v.name)
    del g.value_info[:]
    g.value_info.extend(vis)

    g.doc_string = f"converted from {source_name}"
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    verify_same_outputs(src, dst)


def verify_same_outputs(a_path, b_path):
    """The renamed model must compute bit-identical outputs."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    a = ort.InferenceSession(a_path, opts, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(b_path, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {
        i.name: rng.uniform(-1, 1, size=i.shape).astype(np.float32)
        for i in a.get_inputs()
    }
    names = [o.name for o in a.get_outputs()]
    if names != [o.name for o in b.get_outputs()]:
        raise SystemExit("output names changed")
    for name, ya, yb in zip(names, a.run(names, feeds), b.run(names, feeds)):
        if not np.array_equal(ya, yb):
            raise SystemExit(f"output {name} changed after renaming")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
