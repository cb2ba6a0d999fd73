"""Fit several recipes at once on a lent GPU machine, and bring them back to export here.

A lent GPU machine runs Keras on JAX fast, but it has neither the data sets beside the checkout nor
MediaPipe, cannot reach the internet, takes at most 64 MiB per call and gives back at most 8 files.
So a sweep has three steps, each a subcommand of ``emolens sweep``:

1. ``pack DATA RECIPES.json --out .gpu`` (here): each recipe is a name and ``emolens train`` flags,
   checked as ``emolens train`` checks them. The train and val faces (FER's 48 px, whatever
   ``--input-size`` a recipe asks for), their votes, their pipeline views (the detector runs here)
   and the weights of a ``--backbone`` (fetched here) go into lzma-compressed parts, each small
   enough to carry in one call; test never leaves this machine. ``--wheels`` adds the packages the
   GPU machine lacks.
2. ``run .gpu --out $OUT --minutes 8`` (there): every recipe fits at once, each in its own process
   through ``train.fit``, the code ``emolens train`` fits with, on the faces resized to its
   ``--input-size`` as ``load_dataset`` resizes them. At the deadline each process is
   asked to stop after its current batch (its run ends as if stopped early, best weights kept),
   and each run folder comes back as one file, ``NAME.tar``.
3. ``unpack $OUT/*.tar --runs runs`` (here): run folders that ``emolens train DATA --out runs/NAME
   --resume`` evaluates and exports with TensorFlow, with every check of a run fitted here.

Example::

    emolens sweep pack ../shared/datasets/ferplus training/sweeps/ferplus-gpu.json --out .gpu
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import lzma
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import keras
import numpy as np

from emolens.card import ModelCard
from emolens.errors import EmolensError
from emolens.training.backbones import faceres_weights
from emolens.training.cli import parse_args
from emolens.training.data import Dataset, model_pixels
from emolens.training.train import TrainConfig, fit, load_data, pipeline_views, write_config

MANIFEST = "manifest.json"
# Options that decide the arrays a pack holds: every recipe of one pack must agree on them.
DATA_OPTIONS = ("data", "channels", "classes", "label_map", "drop_single_votes", "limit_per_class")
# FER2013's and FER+'s faces are 48 px: packed at that side, each recipe's --input-size is made from them where it runs.
FER_SIDE = 48
MAX_RECIPES = 8  # the GPU machine gives back at most 8 files: one per run
RUN_FILES = ("config.json", "state.json", "history.csv", "best.weights.h5", "fit.log")
# Packages the GPU machine lacks (its image has JAX, NumPy, onnx, onnxruntime and OpenCV).
WHEELS = ("keras", "namex", "optree", "pydantic", "pydantic-core", "annotated-types", "typing-inspection")


def read_recipes(path: Path, data: str) -> dict[str, tuple[str, TrainConfig]]:
    """``{name: "emolens train flags"}`` from a JSON file, each checked as ``emolens train`` checks its flags."""
    try:
        recipes = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise EmolensError(f"cannot read the recipes {path}: {error}") from None
    if not isinstance(recipes, dict) or not recipes or not all(isinstance(v, str) for v in recipes.values()):
        raise EmolensError(f"{path} must map each recipe's name to its emolens train flags, as one string")
    if len(recipes) > MAX_RECIPES:
        raise EmolensError(f"{path} holds {len(recipes)} recipes; a GPU call gives back at most {MAX_RECIPES} runs")
    configs = {}
    for name, flags in recipes.items():
        if not name.replace("-", "").replace("_", "").isalnum():
            raise EmolensError(f"recipe name {name!r}: use letters, digits, '-' and '_' only (it names a file)")
        if {"--out", "--resume"} & set(shlex.split(flags)):
            raise EmolensError(f"recipe {name}: the sweep sets --out and --resume itself")
        errors = io.StringIO()
        try:
            with contextlib.redirect_stderr(errors):
                configs[name] = flags, parse_args([data, *shlex.split(flags)])[0]
        except SystemExit:
            raise EmolensError(f"recipe {name}: {errors.getvalue().strip().splitlines()[-1]}") from None
        except EmolensError as error:
            raise EmolensError(f"recipe {name}: {error}") from None
    if len({tuple(repr(getattr(config, option)) for option in DATA_OPTIONS) for _, config in configs.values()}) > 1:
        raise EmolensError(f"the recipes of one pack must agree on {', '.join(DATA_OPTIONS[1:])}: "
                           "they share one copy of the data")
    return configs


def load_shared_split(configs: list[TrainConfig]) -> Dataset:
    """The recipes' data set, once: recipes may differ in seed only where the split does not depend on it."""
    datasets = [load_data(config) for config in {config.seed: config for config in configs}.values()]
    digests = {_digest(dataset) for dataset in datasets}
    if len(digests) > 1:
        raise EmolensError(f"{configs[0].data} is split by --seed (ROOT/<emotion>/* or --limit-per-class): "
                           "the recipes of one pack must share a seed")
    if "val" not in datasets[0].splits:
        raise EmolensError(f"{configs[0].data} has no validation split: a sweep chooses on val")
    return datasets[0]


def load_packed_data(configs: list[TrainConfig]) -> Dataset:
    """The recipes' data set at the side its faces are packed at.

    Recipes of one size up to 48 px: at that size, as ``emolens train`` loads them. Otherwise at FER's 48 px,
    where ``model_pixels`` then gives exactly the faces ``load_dataset`` gives at each recipe's size (checked here,
    so a recipe fitted there sees the pixels ``emolens train`` sees here); faces of another side are packed at
    the recipes' one size.
    """
    sizes = sorted({config.image_size for config in configs})
    if len(sizes) == 1 and sizes[0] <= FER_SIDE:
        return load_shared_split(configs)
    packed = load_shared_split([replace(config, image_size=FER_SIDE) for config in configs])
    for size in (size for size in sizes if size != FER_SIDE):
        loaded = load_shared_split([config for config in configs if config.image_size == size])
        if all(np.array_equal(faces_at(packed.splits[split][0], configs[0].channels, size), loaded.splits[split][0])
               for split in ("train", "val")):
            continue
        if len(sizes) == 1:
            return loaded
        raise EmolensError(f"{configs[0].data}'s faces are not {FER_SIDE} px, so recipes of different --input-size "
                           f"cannot share one pack of them: give every recipe one --input-size")
    return packed


def faces_at(faces: np.ndarray, channels: int, size: int) -> np.ndarray:
    """Packed faces at a recipe's ``--input-size``, resized as ``load_dataset`` resizes them."""
    return faces if faces.shape[1] == size else model_pixels(faces, size, channels)


def _digest(dataset: Dataset) -> str:
    digest = hashlib.sha256()
    for x, y in dataset.splits.values():
        digest.update(x.tobytes())
        digest.update(y.tobytes())
    return digest.hexdigest()


def pack(data: str, recipes_path: Path, out: Path, wheels: bool) -> dict:
    """Write the parts a sweep needs into ``out`` and return the manifest."""
    recipes = read_recipes(recipes_path, data)
    if (out / MANIFEST).exists():
        raise EmolensError(f"{out} already holds a pack; choose another --out or remove it")
    configs = [config for _, config in recipes.values()]
    dataset = load_packed_data(configs)
    # Parts, each one file of a size one call can carry: the faces, the rest, and each set of views.
    groups = {"faces": {"train_x": dataset.splits["train"][0]},
              "targets": {"train_y": dataset.splits["train"][1], "val_x": dataset.splits["val"][0],
                          "val_y": dataset.splits["val"][1],
                          **{f"{split}_votes": dataset.distributions[split] for split in ("train", "val")
                             if split in dataset.distributions}}}
    entries = {}
    views_of: dict[tuple, str] = {}
    for name, (flags, config) in recipes.items():
        views = None
        if config.scene_views > 0:
            # The views depend on the seed, the faces' size and the crop geometry of the card they are cut with.
            key = (config.seed, config.image_size, repr(ModelCard.load(config.init_from).crop))
            if key not in views_of:
                views_of[key] = f"views{len(views_of)}"
                pair = pipeline_views(config, faces_at(dataset.splits["train"][0], config.channels,
                                                       config.image_size))
                groups[views_of[key]] = dict(zip(("views", "found"), pair))
            views = views_of[key]
        entries[name] = {"flags": flags, "views": views}
    if any(config.backbone == "faceres" for config in configs):
        groups["faceres"] = faceres_weights()  # fetched and checked here: the GPU machine has no registry
    out.mkdir(parents=True, exist_ok=True)
    parts = {name: _write_part(out / f"{name}.npz.xz", arrays) for name, arrays in groups.items()}
    manifest = {"data": data, "labels": list(dataset.labels), "source": dataset.source, "parts": parts,
                "recipes": entries, "packed_with": {"keras": version("keras")}}
    if wheels:
        manifest["wheels"] = _download_wheels(out / "wheels")
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write_part(path: Path, arrays: dict[str, np.ndarray]) -> dict:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    path.write_bytes(lzma.compress(buffer.getvalue(), preset=6))
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _download_wheels(folder: Path) -> list[str]:
    """Emolens itself (built from this checkout) and the versions of the packages the GPU machine lacks
    installed here, as wheels for its Python (3.12, x86-64 Linux): it can neither download nor build."""
    if not Path("pyproject.toml").is_file():
        raise EmolensError("pack --wheels builds emolens from this checkout: run it in the checkout's root")
    platforms = [arg for tag in ("manylinux_2_28", "manylinux_2_17", "manylinux2014")
                 for arg in ("--platform", f"{tag}_x86_64")]
    pins = [f"{name}=={version(name)}" for name in WHEELS]
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                    "--implementation", "cp", *platforms, "-d", str(folder), *pins], check=True)
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(folder), "."], check=True)
    return sorted(path.name for path in folder.glob("*.whl"))


def read_part(pack_dir: Path, part: dict) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(lzma.decompress((pack_dir / part["file"]).read_bytes())), allow_pickle=False) as arrays:
        return dict(arrays)


def missing_parts(pack_dir: Path, manifest: dict) -> list[str]:
    """Parts absent or not as packed (a call that carried them may have gone to another machine)."""
    return [part["file"] for part in manifest["parts"].values()
            if not (pack_dir / part["file"]).is_file()
            or hashlib.sha256((pack_dir / part["file"]).read_bytes()).hexdigest() != part["sha256"]]


def read_manifest(pack_dir: Path) -> dict:
    try:
        return json.loads((pack_dir / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise EmolensError(f"{pack_dir} holds no pack ({error}); make one with: emolens sweep pack "
                           "DATA RECIPES.json --out DIR") from None


def run(pack_dir: Path, out: Path, runs: Path, minutes: float) -> dict[str, str]:
    """Fit every recipe at once, stop them at the deadline, and bundle each run folder into ``out``."""
    manifest = read_manifest(pack_dir)
    missing = missing_parts(pack_dir, manifest)
    if missing:
        raise EmolensError(f"this machine lacks {len(missing)} part(s) of the pack: {', '.join(missing)} "
                           "(carry them, or carry them again if the machine was new)")
    runs.mkdir(parents=True, exist_ok=True)
    # Each process takes GPU memory as it needs it, so several share one card.
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1"}
    processes = {}
    for name in manifest["recipes"]:
        (runs / name).mkdir(exist_ok=True)
        with (runs / name / "fit.log").open("w") as log:  # the child keeps its own copy of the handle
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "emolens", "sweep", "fit", str(pack_dir), name, "--runs", str(runs)],
                stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline and any(process.poll() is None for process in processes.values()):
        time.sleep(1)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    outcome = {}
    for name, process in processes.items():
        try:
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        outcome[name] = _bundle(runs / name, out / f"{name}.tar", code)
    return outcome


def _bundle(run_dir: Path, tar_path: Path, code: int) -> str:
    """One file per run (the GPU machine gives back few): what ``--resume`` needs to export it."""
    state = json.loads((run_dir / "state.json").read_text()) if (run_dir / "state.json").exists() else {}
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w") as bundle:
        for name in RUN_FILES:
            if (run_dir / name).exists():
                bundle.add(run_dir / name, arcname=f"{run_dir.name}/{name}")
    if code != 0 or "best_val_accuracy" not in state:
        return f"failed (exit {code}; its fit.log is in {tar_path.name})"
    return (f"{state['epoch']} epochs{' (stopped at the deadline)' if state.get('stopped_early') else ''}, "
            f"best val accuracy {state['best_val_accuracy']:.4f} at epoch {state['best_epoch']}")


class _StopWhenAsked(keras.callbacks.Callback):
    """On SIGTERM, end the fit after the current batch: validation, best weights and state are written as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = False
        signal.signal(signal.SIGTERM, self._ask)

    def _ask(self, signum, frame) -> None:
        self.asked = True

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self.asked:
            self.model.stop_training = True


def fit_recipe(pack_dir: Path, name: str, runs: Path) -> dict:
    """One recipe of a pack, fitted into ``runs/name`` as ``emolens train`` would fit it."""
    manifest = read_manifest(pack_dir)
    recipe = manifest["recipes"][name]
    config, _ = parse_args([manifest["data"], *shlex.split(recipe["flags"]), "--out", str(runs / name)])
    arrays = {**read_part(pack_dir, manifest["parts"]["faces"]), **read_part(pack_dir, manifest["parts"]["targets"])}
    splits = {split: (faces_at(arrays[f"{split}_x"], config.channels, config.image_size), arrays[f"{split}_y"])
              for split in ("train", "val")}
    distributions = {split: arrays[f"{split}_votes"] for split in ("train", "val") if f"{split}_votes" in arrays}
    dataset = Dataset(labels=tuple(manifest["labels"]), splits=splits, skipped=0, source=manifest["source"],
                      distributions=distributions)
    views = None  # no views packed: the recipe shows none, and fit() computes none
    if recipe["views"]:
        own = read_part(pack_dir, manifest["parts"][recipe["views"]])
        views = own["views"], own["found"]
    backbone = read_part(pack_dir, manifest["parts"]["faceres"]) if config.backbone == "faceres" else None
    write_config(config)
    _, state = fit(config, dataset, resume=False, views=views, extra_callbacks=(_StopWhenAsked(),),
                   backbone_weights=backbone)
    return state


def unpack(bundles: list[Path], runs: Path) -> list[Path]:
    """Each ``NAME.tar`` into ``runs/NAME``; an existing run folder is never replaced."""
    folders = []
    for bundle in bundles:
        target = runs / bundle.stem
        if target.exists():
            raise EmolensError(f"{target} already exists; unpack into another --runs")
        try:
            with tarfile.open(bundle) as archive:
                members = archive.getmembers()
                if any(Path(member.name).parts[0] != bundle.stem for member in members):
                    raise EmolensError(f"{bundle} is not a run bundle of the sweep (its files are not under "
                                       f"{bundle.stem}/)")
                archive.extractall(runs, filter="data")
        except (OSError, tarfile.TarError) as error:
            raise EmolensError(f"cannot unpack {bundle}: {error}") from None
        folders.append(target)
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emolens sweep", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="here: the data and recipes a GPU machine needs")
    packing.add_argument("data")
    packing.add_argument("recipes", type=Path, help='JSON: {"name": "emolens train flags", ...}')
    packing.add_argument("--out", type=Path, default=Path(".gpu"))
    packing.add_argument("--wheels", action="store_true", help="also download the wheels the GPU machine lacks")
    running = commands.add_parser("run", help="there: fit every recipe at once and bundle the runs")
    running.add_argument("pack", type=Path)
    running.add_argument("--out", type=Path, required=True, help="where the NAME.tar bundles go ($OUT)")
    running.add_argument("--runs", type=Path, default=Path("runs"))
    running.add_argument("--minutes", type=float, required=True, help="stop every fit after this long")
    fitting = commands.add_parser("fit", help="one recipe (what run starts for each)")
    fitting.add_argument("pack", type=Path)
    fitting.add_argument("name")
    fitting.add_argument("--runs", type=Path, default=Path("runs"))
    unpacking = commands.add_parser("unpack", help="here: bundles into run folders that --resume exports")
    unpacking.add_argument("bundles", type=Path, nargs="+")
    unpacking.add_argument("--runs", type=Path, default=Path("runs"))
    args = parser.parse_args(argv)
    if args.command == "pack":
        manifest = pack(args.data, args.recipes, args.out, args.wheels)
        sizes = ", ".join(f"{part['file']} {part['bytes'] / 2**20:.1f} MiB" for part in manifest["parts"].values())
        print(f"packed {len(manifest['recipes'])} recipe(s) into {args.out}: {sizes}")
    elif args.command == "run":
        for name, outcome in run(args.pack, args.out, args.runs, args.minutes).items():
            print(f"{name}: {outcome}", flush=True)
    elif args.command == "fit":
        fit_recipe(args.pack, args.name, args.runs)
    else:
        for folder in unpack(args.bundles, args.runs):
            print(f"{folder}: export it with emolens train DATA --out {folder} --resume")
    return 0
