"""Out-of-core: ``es_infer_nb.run_files`` over a 10,000,000-row Parquet file vs ``df.infer.pipeline`` in memory.

The input (``--rows`` rows x ``--features`` float features; float32 as XGBoost compares) is generated
in a temporary folder in chunks (never whole in memory). A stored pipeline with one ``inference``
processor (an XGBoost regressor of 100 trees of depth 6, imported as eland does it) scores it:

* ours: ``run_files(input.parquet, output.parquet, pipeline="bench-ooc", batch_size=...)`` in a child
  process: read batch, pipeline, write batch (one Parquet row group each). Its peak RSS is the child's
  ``ru_maxrss`` (the bound asked for: 1.5 GB).
* anchor: the in-memory path, ``df.infer.pipeline("bench-ooc")`` on a frame already in memory, in
  another child process, timed without any I/O. By default it runs over the first
  ``--in-memory-rows`` rows (2,000,000: a frame of all 10M rows plus its results would need several
  GB on this shared machine); throughput is compared per row.

The two children take turns in interleaved rounds (``--rounds``, each a fresh process timing its own
work); the JSON line gives the median and best rows/s of each, the ratio of medians, both peak RSS
figures and how long generating the input took. Checked (fatal past the printed bound): every row
written, ours' peak RSS within 1.5 GB, and the written predictions of the first rows equal to the
in-memory path's.
Usage: python benchmarks/out_of_core.py [--rows N] [--batch-size N] [--in-memory-rows N] [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
from _common import model_arguments, quick_sizes, xgboost_model

RSS_BOUND_MB = 1536
CHECKED_ROWS = 10_000
PIPELINE = {"description": "benchmarks/out_of_core.py",
            "processors": [{"inference": {"model_id": "bench-ooc-xgb", "target_field": "ml.price"}}]}

CHILD_OOC = """
import json, sys, time
import es_infer_nb
home, src, dst, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
engine = es_infer_nb.Engine(home)
doc = {"docs": [{"_source": {"f0": 0.5}}]}
engine.request("POST", "_ingest/pipeline/bench-ooc/_simulate", doc).raise_for_status()  # model loads untimed
start = time.perf_counter()
summary = es_infer_nb.run_files(src, dst, pipeline="bench-ooc", engine=engine, batch_size=batch, progress=False)
print(json.dumps({"rows": summary.rows, "seconds": time.perf_counter() - start, "batches": summary.batches}))
"""

CHILD_MEM = """
import json, sys, time
import pyarrow.parquet as pq
import es_infer_nb
import numpy as np
home, src, rows, check = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
engine = es_infer_nb.Engine(home)
fh = pq.ParquetFile(src)
frame = next(fh.iter_batches(batch_size=rows)).to_pandas()
frame.head(1000).infer.pipeline("bench-ooc", engine=engine)  # the model loads outside the timing
start = time.perf_counter()
out = frame.infer.pipeline("bench-ooc", engine=engine)
seconds = time.perf_counter() - start
np.save(check, out["ml.price.predicted_value"].to_numpy()[:10000])
print(json.dumps({"rows": len(out), "seconds": seconds}))
"""


def generate(path: Path, rows: int, features: int, chunk: int = 500_000) -> float:
    """The input Parquet file, written ``chunk`` rows at a time; returns the seconds it took."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = time.perf_counter()
    rng = np.random.default_rng(123)
    names = [f"f{i}" for i in range(features)]
    schema = pa.schema([(n, pa.float32()) for n in names])
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        for begin in range(0, rows, chunk):
            n = min(chunk, rows - begin)
            x = rng.standard_normal(size=(n, features), dtype=np.float32)
            writer.write_table(pa.table([pa.array(x[:, j]) for j in range(features)], schema=schema),
                               row_group_size=n)
    return time.perf_counter() - start


def child(code: str, *args: str) -> tuple[dict, float]:
    """Run ``code`` in a fresh Python; (its JSON answer, its peak RSS in MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN is the largest of all children so far: a child that peaked lower reads as the max
    return json.loads(proc.stdout.strip().splitlines()[-1]), max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_arguments(parser)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--batch-size", type=int, default=250_000)
    parser.add_argument("--in-memory-rows", type=int, default=2_000_000)
    harness.add_arguments(parser)
    args = parser.parse_args()
    quick_sizes(args, rows=60_000, batch_size=20_000, in_memory_rows=20_000)
    mem_rows = min(args.in_memory_rows, args.rows)
    bench = harness.Bench("out_of_core", args, {
        "rows": args.rows, "features": args.features, "trees": args.trees, "depth": args.depth,
        "batch_size": args.batch_size, "anchor": "df.infer.pipeline in memory", "anchor_rows": mem_rows})

    import numpy as np
    import pyarrow.parquet as pq

    import es_infer_nb

    with tempfile.TemporaryDirectory(prefix="es-infer-ooc-") as tmp:
        folder = Path(tmp)
        model, names, _ = xgboost_model(args)
        engine = es_infer_nb.Engine(folder / "home")
        engine.import_model("bench-ooc-xgb", model, names)
        engine.request("PUT", "_ingest/pipeline/bench-ooc", PIPELINE).raise_for_status()
        del engine
        src, dst, check = folder / "input.parquet", folder / "output.parquet", folder / "in_memory.npy"
        gen_s = generate(src, args.rows, args.features)
        print(f"# generated {args.rows:,} rows x {args.features} features in {gen_s:.1f} s "
              f"({src.stat().st_size / 2**20:.0f} MiB)", file=sys.stderr)
        home = str(folder / "home")
        rss: dict[str, list[float]] = {"ours": [], "in_memory": []}

        def measured(name: str, code: str, *argv: str) -> harness.Timed:
            # each child inside a fresh measuring process, so that its own ru_maxrss is read alone
            out, peak = _measured(code, *argv)
            rss[name].append(peak)
            return harness.Timed(out["seconds"], out)

        t = bench.rounds({
            "ours": harness.Contender(
                lambda: measured("ours", CHILD_OOC, home, str(src), str(dst), str(args.batch_size)), args.rows),
            "in_memory": harness.Contender(
                lambda: measured("in_memory", CHILD_MEM, home, str(src), str(mem_rows), str(check)), mem_rows),
        })
        written = pq.ParquetFile(dst).metadata.num_rows
        first = pq.ParquetFile(dst).read_row_group(0)
        while any(str(f.type).startswith("struct") for f in first.schema):
            first = first.flatten()
        column = next(n for n in first.column_names if n.endswith("predicted_value"))
        ours_values = first.column(column).to_numpy()[:CHECKED_ROWS]
        theirs = np.load(check)
    n = min(len(ours_values), len(theirs))
    bench.check("rows written", written == args.rows == t.last["ours"]["rows"])
    bench.check("ours peak RSS MB", round(max(rss["ours"])), RSS_BOUND_MB)
    bench.check(f"max_abs_diff ours vs in_memory (first {n:,} rows)",
                float(np.max(np.abs(ours_values[:n] - theirs[:n]))), 1e-9)
    bench.compare("ours", "in_memory", note="per row; the anchor runs over anchor_rows in memory, no I/O")
    bench.report({"generate_s": round(gen_s, 1), "rows_written": written,
                  "ours_peak_rss_mb": round(max(rss["ours"])), "anchor_peak_rss_mb": round(max(rss["in_memory"])),
                  "rss_bound_mb": RSS_BOUND_MB})


def _measured(code: str, *args: str) -> tuple[dict, float]:
    """Run a child inside a fresh measuring process so that its own ``ru_maxrss`` is read alone."""
    wrapper = ("import json, resource, subprocess, sys\n"
               "p = subprocess.run([sys.executable, '-c', sys.argv[1], *sys.argv[2:]], capture_output=True, text=True)\n"
               "if p.returncode: sys.stderr.write(p.stderr[-2000:]); sys.exit(p.returncode)\n"
               "print(json.dumps({'out': json.loads(p.stdout.strip().splitlines()[-1]),\n"
               "                  'rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n")
    answer, _ = child(wrapper, code, *args)
    return answer["out"], answer["rss_mb"]


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
