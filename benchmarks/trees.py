"""Tree ensemble inference: es_infer_nb vs xgboost, tl2cgen, LightGBM and lleaves, same run, same data.

1,000,000 rows x 20 features (float32-representable); an XGBoost regressor of 100 trees of depth 6
imported into es_infer_nb the way eland does it, timed with ``df.infer.run``, against:

* ``xgboost``: ``Booster.inplace_predict`` (the anchor: the headline ratio);
* ``tl2cgen``: the same XGBoost model through treelite, compiled by tl2cgen with ``gcc -O3`` into a
  temporary folder (compile time not timed);
* a LightGBM twin (same size, same training data), imported into es_infer_nb the same way
  (``ours_lightgbm``), against ``lightgbm`` (``Booster.predict``) and ``lleaves`` (compiled with LLVM;
  with llvmlite >= 0.45 through a small port of its two removed llvmlite calls, noted in ``notes``).

All take turns in interleaved rounds (``--rounds``); the JSON line has each one's median and best
rows/s, the ratios of medians, and the checks: ours vs each peer, max abs difference, fatal past
the printed bound, and that ours' later rounds are as fast as its first ones (the median of the last
half of the rounds over the first half's, against the peers' same drift). Peers that are not installed
(``pip install -e '.[bench]'``) are skipped.
Usage: python benchmarks/trees.py [--rows N] [--rounds N] [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import harness
from _common import (
    float32_rows,
    lightgbm_twin,
    model_arguments,
    quick_sizes,
    xgboost_model,
)

if TYPE_CHECKING:
    import numpy as np

# XGBoost sums leaf values in float32, Elasticsearch (and we) in float64; LightGBM and lleaves in float64
BOUND_VS_XGBOOST = 1e-4
BOUND_VS_LIGHTGBM = 1e-9
BOUND_PEERS = 1e-4
#: ours' later rounds may be this much slower than its first ones (times the peers' own drift) before the
#: run fails; quick runs time milliseconds, where one scheduler hiccup doubles a round
STEADY_TOLERANCE = 1.25
STEADY_TOLERANCE_QUICK = 3.0


def compile_tl2cgen(bench: harness.Bench, booster: Any, folder: Path) -> Any | None:
    """A tl2cgen predictor of ``booster`` compiled with gcc -O3 in ``folder``, or None (skipped, noted)."""
    treelite = bench.peer("tl2cgen", "treelite")
    tl2cgen = bench.peer("tl2cgen", "tl2cgen") if treelite is not None else None
    if tl2cgen is None:
        return None
    threads = os.cpu_count() or 1
    try:
        model = treelite.frontend.from_xgboost(booster)
        lib = folder / "xgb_tl2cgen.so"
        tl2cgen.export_lib(model, toolchain="gcc", libpath=str(lib), params={"parallel_comp": threads},
                           nthread=threads, options=["-O3"])
        predictor = tl2cgen.Predictor(str(lib), nthread=threads)
    except (subprocess.CalledProcessError, OSError, RuntimeError, ValueError) as exc:
        bench.skip("tl2cgen", f"compile failed: {type(exc).__name__}: {exc}")
        return None

    import numpy as np

    def predict(x32: np.ndarray) -> np.ndarray:
        return np.asarray(predictor.predict(tl2cgen.DMatrix(x32))).reshape(len(x32))

    return predict


LLEAVES_SHIM_NOTE = ("lleaves 1.3 calls llvmlite's legacy pass manager and llvm.initialize(), both gone in "
                     "llvmlite >= 0.45: run with its O3 module pass done by llvmlite's new pass builder "
                     "(speed level 3, inlining threshold 1, as lleaves asks) and without llvm.initialize()")


def lleaves_shim() -> bool:
    """Port lleaves' two llvmlite calls that newer llvmlite removed; True when the shim was needed."""
    import llvmlite.binding as llvm

    if hasattr(llvm, "PassManagerBuilder"):
        return False
    import llvmlite.ir
    from lleaves import compiler, llvm_binding
    from lleaves.compiler import tree_compiler

    def initialize() -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()

    def compile_to_module(file_path: Any, fblocksize: int = 34, finline: bool = True, raw_score: bool = False,
                          froot_func_name: str = "forest_root", use_fp64: bool = True) -> Any:
        forest = tree_compiler.parse_to_ast(file_path)
        forest.raw_score = raw_score
        ir = llvmlite.ir.Module(name="forest")
        tree_compiler.gen_forest(forest, ir, fblocksize, froot_func_name, use_fp64)
        ir.triple = llvm.get_process_triple()
        module = llvm.parse_assembly(str(ir))
        module.name = str(file_path)
        module.verify()
        initialize()
        tuning = llvm.create_pipeline_tuning_options(speed_level=3)
        if finline:
            tuning.inlining_threshold = 1
        builder = llvm.create_pass_builder(llvm_binding._get_target_machine(), tuning)
        builder.getModulePassManager().run(module, builder)
        return module

    tree_compiler.compile_to_module = compile_to_module
    compiler.compile_to_module = compile_to_module
    llvm_binding._initialize_llvm = initialize
    return True


def compile_lleaves(bench: harness.Bench, lgb_model: Any, folder: Path) -> Any | None:
    lleaves = bench.peer("lleaves", "lleaves")
    if lleaves is None:
        return None
    path = folder / "lgb_model.txt"
    lgb_model.booster_.save_model(str(path))
    try:
        if lleaves_shim():
            bench.notes["lleaves"] = LLEAVES_SHIM_NOTE
            print(f"# lleaves: {LLEAVES_SHIM_NOTE}", file=sys.stderr)
        compiled = lleaves.Model(model_file=str(path))
        compiled.compile(cache=str(folder / "lleaves.o"))
    except (AttributeError, ImportError, OSError, RuntimeError, ValueError) as exc:
        bench.skip("lleaves", f"compile failed: {type(exc).__name__}: {exc}")
        return None
    threads = os.cpu_count() or 1
    return lambda x: compiled.predict(x, n_jobs=threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    model_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=None)
    harness.add_arguments(parser)
    args = parser.parse_args()
    quick_sizes(args, rows=20_000)
    bench = harness.Bench("trees", args, {
        "rows": args.rows, "features": args.features, "trees": args.trees, "depth": args.depth,
        "train_rows": args.train_rows, "device": args.device})

    import numpy as np
    import pandas as pd

    import es_infer_nb

    model, names, rng = xgboost_model(args)
    booster = model.get_booster()
    x = float32_rows(rng, args.rows, args.features)
    x32 = x.astype(np.float32)
    frame = pd.DataFrame(x, columns=names)
    engine = es_infer_nb.Engine()
    engine.import_model("bench-xgb", model, names)

    def run(model_id: str) -> np.ndarray:
        out = frame.infer.run(model_id, engine=engine, device=args.device, batch_size=args.batch_size,
                              progress=False)
        return out["ml.inference.predicted_value"].to_numpy()

    contenders = {
        "ours": harness.Contender(lambda: run("bench-xgb"), args.rows),
        "xgboost": harness.Contender(lambda: booster.inplace_predict(x32), args.rows),
    }
    with tempfile.TemporaryDirectory(prefix="bench-trees-") as tmp:
        folder = Path(tmp)
        tl2cgen_predict = compile_tl2cgen(bench, booster, folder)
        if tl2cgen_predict is not None:
            contenders["tl2cgen"] = harness.Contender(lambda: tl2cgen_predict(x32), args.rows)
        lgb = bench.peer("lightgbm (twin model)", "lightgbm")
        if lgb is not None:
            lgb_model = lightgbm_twin(args)
            engine.import_model("bench-lgb", lgb_model, names)
            lgb_booster = lgb_model.booster_
            contenders["ours_lightgbm"] = harness.Contender(lambda: run("bench-lgb"), args.rows)
            contenders["lightgbm"] = harness.Contender(lambda: lgb_booster.predict(x), args.rows)
            lleaves_predict = compile_lleaves(bench, lgb_model, folder)
            if lleaves_predict is not None:
                contenders["lleaves"] = harness.Contender(lambda: lleaves_predict(x), args.rows)
        for c in contenders.values():  # warm-up: model loads, tree walks compile, thread pools start
            c.run()
        t = bench.rounds(contenders)

    ours = t.last["ours"]
    bench.check("max_abs_diff ours vs xgboost", float(np.max(np.abs(ours - t.last["xgboost"]))), BOUND_VS_XGBOOST)
    bench.compare("ours", "xgboost")
    if "tl2cgen" in t.last:
        bench.check("max_abs_diff ours vs tl2cgen", float(np.max(np.abs(ours - t.last["tl2cgen"]))), BOUND_PEERS)
        bench.compare("ours", "tl2cgen")
    if "lightgbm" in t.last:
        ours_lgb = t.last["ours_lightgbm"]
        bench.check("max_abs_diff ours_lightgbm vs lightgbm", float(np.max(np.abs(ours_lgb - t.last["lightgbm"]))),
                    BOUND_VS_LIGHTGBM)
        bench.compare("ours_lightgbm", "lightgbm", note="the LightGBM twin model, through our importer")
        if "lleaves" in t.last:
            bench.check("max_abs_diff ours_lightgbm vs lleaves", float(np.max(np.abs(ours_lgb - t.last["lleaves"]))),
                        BOUND_PEERS)
            bench.compare("ours_lightgbm", "lleaves", note="the LightGBM twin model, through our importer")
    # later rounds as fast as the first: no growth or recompilation from one call to the next
    tolerance = STEADY_TOLERANCE_QUICK if args.quick else STEADY_TOLERANCE
    bench.check_steady("ours", [n for n in ("xgboost", "tl2cgen") if n in t.last], tolerance)
    if "ours_lightgbm" in t.last:
        bench.check_steady("ours_lightgbm", [n for n in ("lightgbm", "lleaves") if n in t.last], tolerance)
    import torch

    bench.report({"cuda_available": torch.cuda.is_available(), "batch_size": args.batch_size})
    sys.stdout.flush()


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    main()
