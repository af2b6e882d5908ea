"""ONNX Runtime's side of the inference bench: loads the fixture's ONNX export at
batch 1, makes a batch-8 copy of it (the `onnx` package: the input, the output and
the batch dimension of the Reshape shapes set to 8) in the folder given, then
answers timing requests on stdin, one JSON line each:

    b1 N   -> N timed runs at batch 1
    b8 N   -> N timed runs at batch 8
    quit

Each answer: {"ms": [...], "cpu_s": process CPU seconds over those runs}.
"""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

path, threads, input_path, work = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def session(p):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])


def batch8_export(src, dst):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(src)
    g = m.graph
    for v in list(g.input) + list(g.output):
        v.type.tensor_type.shape.dim[0].dim_value = 8
    reshape_shapes = {n.input[1] for n in g.node if n.op_type == "Reshape"}
    for n in g.node:
        if n.op_type == "Constant" and n.output[0] in reshape_shapes:
            a = numpy_helper.to_array(n.attribute[0].t).copy()
            if a.ndim == 1 and a.size > 1 and a[0] == 1:
                a[0] = 8
                n.attribute[0].t.CopyFrom(numpy_helper.from_array(a))
    del g.value_info[:]
    onnx.save(m, dst)


s1 = session(path)
name = s1.get_inputs()[0].name
x1 = np.fromfile(input_path, dtype="<f4").reshape(1, 3, 640, 640)
x8 = np.ascontiguousarray(np.repeat(x1, 8, axis=0))
try:
    p8 = os.path.join(work, "yolov8n_random_b8.onnx")
    batch8_export(path, p8)
    s8 = session(p8)
    y8 = s8.run(None, {name: x8})[0]
    y1 = s1.run(None, {name: x1})[0]
    assert y8.shape[0] == 8 and float(np.abs(y8[7] - y1[0]).max()) < 1e-3
    run8 = lambda: s8.run(None, {name: x8})  # noqa: E731
    how8 = "batch-8 export"
except Exception as e:  # noqa: BLE001
    print(f"no batch-8 export ({e!r}): batch 8 as eight runs", file=sys.stderr)
    run8 = lambda: [s1.run(None, {name: x1}) for _ in range(8)]  # noqa: E731
    how8 = "eight batch-1 runs"
run1 = lambda: s1.run(None, {name: x1})  # noqa: E731
for _ in range(2):
    run1()
    run8()
print(json.dumps({"version": ort.__version__, "threads": threads, "batch8": how8}), flush=True)
for line in sys.stdin:
    parts = line.split()
    if not parts or parts[0] == "quit":
        break
    f, n = (run1 if parts[0] == "b1" else run8), int(parts[1])
    ms = []
    c0 = time.process_time()
    for _ in range(n):
        a = time.perf_counter()
        f()
        ms.append((time.perf_counter() - a) * 1e3)
    print(json.dumps({"ms": ms, "cpu_s": time.process_time() - c0}), flush=True)
