"""``emolens ensemble``: several exported models as one, their scores averaged in one ONNX graph.

Two models that make different mistakes average to a better one: v3 (48 px, trained from scratch) and the
face-identity backbone (80 px, fine-tuned) are each right on faces the other gets wrong, and their mean reads
FER+ val 1.2 points higher than v3 alone (docs/model.md). The app runs one model per card, so the members
become one graph behind one contract: the first member's input (size, channels, crop geometry). Every other
member gets those pixels resized to its own size inside the graph, as ``to_model_pixels`` sizes FER+ faces for
the trainer (linear, rounded back to uint8), and the output is the mean of the members' probabilities, each
already calibrated by its own temperature. The app changes no code to run it.

With ``--data`` (a FER+ root), the card carries the figures the trainer's cards carry: val and test read as
``emolens evaluate`` reads them, val in camera-like scenes, and the cost per face.

Example::

    emolens ensemble models/emotion.onnx runs/faceres80/emotion.onnx --data ../shared/datasets/ferplus \\
        --out models/emotion-accurate.onnx
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

from emolens.card import ModelCard, packaged_model_dir
from emolens.errors import EmolensError
from emolens.training.export import INPUT_NAME, OUTPUT_NAME, add_metrics, time_per_face, write_card

ENSEMBLE_NAME = "emolens-emotion-ensemble"


def merged_graph(cards: list[ModelCard]) -> onnx.ModelProto:
    """One model: the first card's input fed to every member (resized where a member reads another size), the
    mean of their probabilities out."""
    height, width = cards[0].input_hw
    nodes, initializers, value_info, ir_versions = [], [], [], []
    opsets: dict[str, int] = {}
    for index, card in enumerate(cards):
        prefix = f"m{index}/"
        member = compose.add_prefix(onnx.load(card.model_path), prefix)
        ir_versions.append(member.ir_version)
        nodes += _fed(prefix, prefix + card.input_name, card.input_hw, (height, width), card.channels, initializers)
        nodes += member.graph.node
        initializers += member.graph.initializer
        value_info += member.graph.value_info
        for opset in member.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    nodes.append(helper.make_node("Mean", [f"m{index}/{card.output_name}" for index, card in enumerate(cards)],
                                  [OUTPUT_NAME]))
    graph = helper.make_graph(
        nodes, "emolens-ensemble",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", height, width, cards[0].channels])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", len(cards[0].labels)])],
        initializer=initializers, value_info=value_info)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, version)
                                                    for domain, version in opsets.items()])
    model.ir_version = min(ir_versions)
    onnx.checker.check_model(model)
    return model


def _fed(prefix: str, member_input: str, member_hw: tuple[int, int], given_hw: tuple[int, int], channels: int,
         initializers: list) -> list:
    """Nodes that hand the ensemble's pixels to one member: as they are, or resized to its size."""
    if member_hw == given_hw:
        return [helper.make_node("Identity", [INPUT_NAME], [member_input])]
    constants = {"zero": np.array([0], np.int64), "one": np.array([1], np.int64),
                 "hwc": np.array([*member_hw, channels], np.int64),
                 "low": np.array(0, np.float32), "high": np.array(255, np.float32)}
    initializers += [numpy_helper.from_array(value, prefix + key) for key, value in constants.items()]

    def name(key: str) -> str:
        return prefix + key

    return [
        helper.make_node("Cast", [INPUT_NAME], [name("float")], to=TensorProto.FLOAT),
        helper.make_node("Shape", [INPUT_NAME], [name("shape")]),
        helper.make_node("Slice", [name("shape"), name("zero"), name("one")], [name("batch")]),
        helper.make_node("Concat", [name("batch"), name("hwc")], [name("sizes")], axis=0),
        # OpenCV's INTER_LINEAR: pixel centres aligned (half_pixel), as the trainer sized this member's faces.
        helper.make_node("Resize", [name("float"), "", "", name("sizes")], [name("resized")], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Round", [name("resized")], [name("rounded")]),
        helper.make_node("Clip", [name("rounded"), name("low"), name("high")], [name("clipped")]),
        helper.make_node("Cast", [name("clipped")], [member_input], to=TensorProto.UINT8),
    ]


def checked_members(paths: list[Path]) -> list[ModelCard]:
    """The members' cards, or one line naming what stops them from averaging."""
    if len(paths) < 2:
        raise EmolensError("emolens ensemble needs two or more models")
    cards = [ModelCard.load(path) for path in paths]
    first = cards[0]
    for path, card in zip(paths[1:], cards[1:]):
        if card.labels != first.labels:
            raise EmolensError(f"{path} scores {', '.join(card.labels)}; {paths[0]} scores {', '.join(first.labels)} "
                               f"(members need the same labels in the same order)")
        if card.channels != first.channels:
            raise EmolensError(f"{path} reads {card.channels}-channel faces, {paths[0]} {first.channels}-channel ones "
                               f"(members need the same channels)")
    return cards


def member_entry(card: ModelCard) -> dict:
    """What the ensemble's card records of one member: its file, size and the provenance its card holds."""
    training = card.info.get("training", {})
    entry = {"file": card.model_path.name, "sha256": card.sha256, "name": card.info.get("name"),
             "input": f"{card.input_hw[0]}x{card.input_hw[1]}x{card.channels}",
             "temperature": card.info["output"].get("temperature"), "flip_tta": card.info["output"].get("flip_tta"),
             "dtype": card.info.get("quantization", {}).get("dtype"),
             "val_accuracy": card.info.get("metrics", {}).get("val", {}).get("accuracy"),
             "command": training.get("command")}
    if "backbone" in training:
        entry["backbone"] = training["backbone"]
    return entry


def figures(card: ModelCard, data: Path) -> dict:
    """Val and test as ``emolens evaluate`` reads them, and val in scenes through the whole pipeline."""
    from emolens.evaluation.evaluate import evaluate_folder
    from emolens.options import AnalyzerOptions
    from emolens.training.data import load_dataset
    from emolens.training.train import TrainConfig, onnx_metrics

    dataset = load_dataset(data, card.input_hw[0], card.channels, cache_dir=Path(TrainConfig.cache_dir).expanduser())
    metrics = {split: onnx_metrics(card.model_path, *dataset.splits[split], dataset.labels,
                                   dataset.distributions.get(split))
               for split in ("val", "test") if split in dataset.splits}
    if (data / "FER2013Valid" / "label.csv").is_file():
        scenes = evaluate_folder(data / "FER2013Valid", mode="scenes",
                                 options=AnalyzerOptions(model=str(card.card_path), device="cpu"))
        scenes.pop("model", None)
        metrics["val_scenes"] = scenes
    return metrics


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="emolens ensemble", description=__doc__.split("\n\n")[0])
    parser.add_argument("members", nargs="+", type=Path, metavar="MODEL.onnx",
                        help="exported models (each with its card beside it); the first one's input is the ensemble's")
    parser.add_argument("--out", type=Path, required=True, metavar="OUT.onnx", help="the ensemble; its card beside it")
    parser.add_argument("--data", type=Path, help="a FER+ root: put val, test and scene figures in the card")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT.onnx and its card")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out, card_path = args.out.with_suffix(".onnx"), args.out.with_suffix(".json")
    existing = [path for path in (out, card_path) if path.exists()]
    if existing and not args.overwrite:
        raise EmolensError(f"{existing[0]} exists; pass --overwrite to replace it")
    if args.data and not args.data.is_dir():
        raise EmolensError(f"--data {args.data}: not a folder (a FER+ root such as ../shared/datasets/ferplus)")
    cards = checked_members(args.members)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Built and measured beside the target, then moved into place: a failure or Ctrl+C leaves no half-made pair.
    with tempfile.TemporaryDirectory(prefix=f".{out.stem}-", dir=out.parent) as folder:
        built = build(cards, Path(folder) / out.name, args)
        os.replace(built, out)
        os.replace(built.with_suffix(".json"), card_path)
    written = ModelCard.load(card_path)
    print(f"emolens ensemble: wrote {out} and {card_path} (sha256 {written.sha256[:12]})"
          + (f"; val accuracy {written.info['metrics']['val']['accuracy']:.4f}" if args.data else ""))
    return 0


def build(cards: list[ModelCard], out: Path, args: argparse.Namespace) -> Path:
    """The merged model at ``out`` and its card beside it, with its cost and (given ``--data``) its figures."""
    onnx.save(merged_graph(cards), out)
    first, members = cards[0], [member_entry(card) for card in cards]
    median, p95, cpu = time_per_face(out)
    fast = time_per_face(packaged_model_dir() / "emotion.onnx")[0]
    print(f"emolens ensemble: {out.name} takes {median:.2f} ms per face (p95 {p95:.2f}) at batch 1 on one CPU thread; "
          f"the shipped fast model {fast:.2f} ms in the same loop", flush=True)
    card_path = write_card(
        out.with_suffix(".json"), out, first.labels, (*first.input_hw, first.channels),
        output={"ensemble": "mean of the members' probabilities"},
        quantization={"dtype": "per member", "members": [member["dtype"] for member in members]},
        crop=first.info["crop"], metrics={}, data={"source": args.data.name if args.data else None},
        training={"command": shlex.join(["emolens", "ensemble", *map(str, args.members),
                                         "--out", str(args.out.with_suffix(".onnx")),
                                         *(["--data", str(args.data)] if args.data else [])]),
                  "members": members,
                  "cost": {"ms_per_face_median": round(median, 3), "ms_per_face_p95": round(p95, 3),
                           "cpu_ms_median": round(cpu, 3), "shipped_model_ms_per_face_median": round(fast, 3),
                           "measured": "batch 1, one CPU thread, 500 calls after 20 to warm up"}},
        name=ENSEMBLE_NAME)
    if args.data:
        add_metrics(card_path, figures(ModelCard.load(card_path), args.data))
    return out


if __name__ == "__main__":
    sys.exit(main())
