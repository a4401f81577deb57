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

The two children take turns ``--repeat`` times; the JSON line gives the best throughput of each, the
range over the rounds, the ratio and both peak RSS figures, plus how long generating the input took.
Usage: python benchmarks/out_of_core.py [--rows N] [--batch-size N] [--in-memory-rows N] [--repeat N]
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

import numpy as np

from _common import model_arguments, prepare_environment, report, xgboost_model

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
home, src, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = es_infer_nb.Engine(home)
fh = pq.ParquetFile(src)
frame = next(fh.iter_batches(batch_size=rows)).to_pandas()
frame.head(1000).infer.pipeline("bench-ooc", engine=engine)  # the model loads outside the timing
start = time.perf_counter()
out = frame.infer.pipeline("bench-ooc", engine=engine)
print(json.dumps({"rows": len(out), "seconds": time.perf_counter() - start}))
"""


def generate(path: Path, rows: int, features: int, chunk: int = 500_000) -> float:
    """The input Parquet file, written ``chunk`` rows at a time; returns the seconds it took."""
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
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    removed = prepare_environment()
    import es_infer_nb

    with tempfile.TemporaryDirectory(prefix="es-infer-ooc-") as tmp:
        folder = Path(tmp)
        model, names, _ = xgboost_model(args)
        engine = es_infer_nb.Engine(folder / "home")
        engine.import_model("bench-ooc-xgb", model, names)
        engine.request("PUT", "_ingest/pipeline/bench-ooc", PIPELINE).raise_for_status()
        del engine
        src = folder / "input.parquet"
        gen_s = generate(src, args.rows, args.features)
        print(f"# generated {args.rows:,} rows x {args.features} features in {gen_s:.1f} s "
              f"({src.stat().st_size / 2**20:.0f} MiB)", file=sys.stderr)
        mem_rows = min(args.in_memory_rows, args.rows)
        ooc_rates, mem_rates = [], []
        ooc_rss = mem_rss = 0.0
        home = str(folder / "home")
        for round_ in range(args.repeat):
            # the in-memory child first: RUSAGE_CHILDREN keeps the max, so the out-of-core figure is read
            # from a fresh measurement process below
            got, _ = child(CHILD_MEM, home, str(src), str(mem_rows))
            mem_rates.append(got["rows"] / got["seconds"])
            out, rss = _measured(CHILD_OOC, home, str(src), str(folder / "output.parquet"), str(args.batch_size))
            ooc_rates.append(out["rows"] / out["seconds"])
            ooc_rss = max(ooc_rss, rss)
            print(f"# round {round_ + 1}: out-of-core {ooc_rates[-1]:,.0f} rows/s ({out['seconds']:.1f} s, "
                  f"{out['batches']} batches, peak RSS {rss:.0f} MB); in-memory {mem_rates[-1]:,.0f} rows/s "
                  f"({got['seconds']:.1f} s over {mem_rows:,} rows)", file=sys.stderr)
        _, mem_rss = _measured(CHILD_MEM, home, str(src), str(mem_rows))
        import pyarrow.parquet as pq

        written = pq.ParquetFile(folder / "output.parquet").metadata.num_rows
    report("out_of_core", {
        "rows": args.rows, "features": args.features, "trees": args.trees, "depth": args.depth,
        "batch_size": args.batch_size, "generate_s": round(gen_s, 1), "rows_written": written,
        "ours_rows_per_s": round(max(ooc_rates)), "ours_range": [round(min(ooc_rates)), round(max(ooc_rates))],
        "ours_peak_rss_mb": round(ooc_rss), "rss_bound_mb": 1536,
        "anchor": "df.infer.pipeline in memory", "anchor_rows": mem_rows,
        "anchor_rows_per_s": round(max(mem_rates)), "anchor_range": [round(min(mem_rates)), round(max(mem_rates))],
        "anchor_peak_rss_mb": round(mem_rss),
        "ratio": round(max(ooc_rates) / max(mem_rates), 3), "unset_env": removed,
    })


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
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
