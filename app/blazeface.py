"""MediaPipe's BlazeFace face detectors, run by LiteRT, with what MediaPipe's FaceDetector graph does around them.

MediaPipe's Tasks ``FaceDetector`` runs a BlazeFace network inside a graph that cost about 2.5 ms of CPU per
call on a 640x480 frame here, 1 ms of it outside the network. ``BlazeFace`` runs the same ``.tflite`` file on
LiteRT (Google's TensorFlow Lite runtime, the one inside MediaPipe, with its XNNPACK kernels) and does in numpy
and OpenCV what the graph's source does (``mediapipe/tasks/cc/vision/face_detector``; Apache-2.0), in image
mode:

1. the image is letterboxed about its centre into the network's square input (128 or 192 px), sampled
   bilinearly at 1/32-pixel steps, bands black, values in [-1, 1] (``ImageToTensorCalculator``:
   ``keep_aspect_ratio``, ``BORDER_ZERO``);
2. each anchor's score is a sigmoid of its logit (clipped to ±100) and must reach the threshold; its box
   and six keypoints are offsets from the anchor's centre in input pixels (``TensorsToDetectionsCalculator``
   with the anchors of ``SsdAnchorsCalculator``);
3. weighted non-maximum suppression: the best box and every box overlapping it by an IoU over 0.3 are
   averaged, weighted by score, under the best one's score (``NonMaxSuppressionCalculator``, ``WEIGHTED``);
4. the boxes are mapped back to the image and given in whole pixels, as the Tasks API gives them (a box
   reaching past the image's left or top edge is moved inside it, its size kept; none is larger than the
   image).

``tests/test_blazeface.py`` holds it to MediaPipe's own FaceDetector on real faces. The landmarker's detector
(``emolens.behaviour.face_mesh``) is the same network and decodes with the same functions.

Example::

    detector = BlazeFace(detector_model_path("short"), min_score=0.5)
    xyxy, scores, keypoints = detector.detect(rgb_image)
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from emolens.track import box_iou

# The anchor grids of MediaPipe's BlazeFace graphs, by the number of anchors a network outputs: (cells per
# side, anchors per cell). Short range (128 px): 16x16 at stride 8 with two anchors, then its three stride-16
# layers as six per cell of 8x8. Full range (192 px): 48x48 at stride 4, one anchor each.
_ANCHOR_GRIDS = {896: ((16, 2), (8, 6)), 2304: ((48, 1),)}
_NMS_IOU = 0.3  # the Tasks FaceDetector's default min_suppression_threshold
_N_KEYPOINTS = 6


class LiteNetwork:
    """One TensorFlow Lite network on LiteRT, one thread; ``run`` releases the GIL while it computes."""

    def __init__(self, model: bytes):
        self._interpreter = Interpreter(model_content=model, num_threads=1)
        self._interpreter.allocate_tensors()
        details = self._interpreter.get_input_details()[0]
        self.input_shape = tuple(int(side) for side in details["shape"])
        self._input = details["index"]
        self._outputs = {d["name"]: d["index"] for d in self._interpreter.get_output_details()}
        self.output_shapes = {d["name"]: tuple(d["shape"]) for d in self._interpreter.get_output_details()}
        self.run(np.zeros(details["shape"], np.float32))  # the first call prepares XNNPACK's kernels: not a reading's

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        return {name: self._interpreter.get_tensor(index) for name, index in self._outputs.items()}


def anchor_centres(count: int) -> np.ndarray:
    """``float32 (count, 2)`` anchor centres, as fractions of the input, of a BlazeFace network with ``count``
    anchors (the order of its outputs: grid by grid, row by row, the anchors of a cell together)."""
    centres = []
    for cells, per_cell in _ANCHOR_GRIDS[count]:
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


def decode(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, input_px: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The anchors scoring at least ``min_score``: boxes ``(n, 4)`` x0, y0, x1, y1 and keypoints ``(n, 6, 2)``
    as fractions of the input, and scores ``(n,)``, from one image's ``regressors (A, 16)`` and ``logits (A,)``."""
    with np.errstate(over="ignore"):  # exp(100) is inf in float32: the score is then 0, as in the graph
        scores = np.float32(1) / (np.float32(1) + np.exp(-np.clip(logits.astype(np.float32), -100, 100)))
    keep = scores >= min_score  # float32, as the graph compares them
    regression, anchors = regressors[keep] / input_px, anchors[keep]
    centres, sizes = regression[:, :2] + anchors, regression[:, 2:4]
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    keypoints = regression[:, 4:4 + 2 * _N_KEYPOINTS].reshape(-1, _N_KEYPOINTS, 2) + anchors[:, None]
    return boxes, scores[keep], keypoints


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray,
                 min_iou: float = _NMS_IOU) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One detection per group of overlapping ones, best first: the best box of the group and those overlapping
    it by an IoU over ``min_iou``, boxes and keypoints averaged by score, under the best one's score."""
    remaining = np.argsort(-scores, kind="stable")
    merged: list[tuple[np.ndarray, float, np.ndarray]] = []
    while len(remaining):
        together = box_iou(boxes[remaining[:1]], boxes[remaining])[0] > min_iou
        if not together[0]:  # a best box of no area overlaps nothing, itself included: the graph keeps it, stops
            merged.append((boxes[remaining[0]], float(scores[remaining[0]]), keypoints[remaining[0]]))
            break
        group = remaining[together]
        weights = scores[group] / scores[group].sum()
        merged.append(((boxes[group] * weights[:, None]).sum(axis=0), float(scores[remaining[0]]),
                       (keypoints[group] * weights[:, None, None]).sum(axis=0)))
        remaining = remaining[~together]
    if not merged:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, _N_KEYPOINTS, 2))
    merged_boxes, merged_scores, merged_keypoints = zip(*merged)
    return np.array(merged_boxes), np.array(merged_scores), np.array(merged_keypoints)


@functools.lru_cache(maxsize=64)
def _letterbox_maps(height: int, width: int, input_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel of the network's input samples an image of this size, letterboxed about its centre, in
    OpenCV's fixed-point form (1/32 pixel), as MediaPipe's OpenCV samples its warp. (The OpenCV installed with
    Emolens computes ``warpAffine`` more finely, which moved scores by up to 0.01 and boxes by up to 12 px on
    crowded benchmark frames wherever the image's long side is not a multiple of the input's. A sample exactly
    half-way between two steps, as with a long side of 777 or 853 px at 128, may still round the other way than
    in MediaPipe's graph.)"""
    side = max(height, width)
    steps = np.arange(input_px, dtype=np.float64) * side / input_px
    xs = (steps + (width - side) / 2).astype(np.float32)
    ys = (steps + (height - side) / 2).astype(np.float32)
    return cv2.convertMaps(*np.meshgrid(xs, ys), cv2.CV_16SC2)


class BlazeFace:
    """A BlazeFace ``.tflite`` (``models/face_detection_*.tflite``) as MediaPipe's FaceDetector runs it; one
    thread at a time.

    Args:
        path: the network.
        min_score: the faces scoring at least this.
    """

    def __init__(self, path: Path, min_score: float):
        self._network = LiteNetwork(Path(path).read_bytes())
        self.input_px = self._network.input_shape[1]
        self._regressors, self._logits = sorted(self._network.output_shapes,
                                                key=lambda name: -self._network.output_shapes[name][-1])
        self._anchors = anchor_centres(self._network.output_shapes[self._logits][1])
        self.min_score = min_score

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces in an RGB image (a view of a larger one is fine): boxes ``float32 (n, 4)`` x0, y0, x1, y1 in
        whole pixels, scores ``float32 (n,)`` and six keypoints each ``float32 (n, 6, 2)`` in pixels, best first."""
        height, width = rgb.shape[:2]
        side = max(height, width)
        origin = np.array([width - side, height - side]) / 2  # the letterbox's top-left corner, in the image
        image = cv2.remap(rgb, *_letterbox_maps(height, width, self.input_px), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
        outputs = self._network.run((image.astype(np.float32) * np.float32(2 / 255) - 1)[None])
        boxes, scores, keypoints = weighted_nms(*decode(outputs[self._regressors][0], outputs[self._logits][0, :, 0],
                                                        self._anchors, self.input_px, self.min_score))
        # As the Tasks API reports them: the box relative to the image, then x, y, width and height each
        # truncated to whole pixels; a corner left of or above the image moves onto its edge, the size kept,
        # and a box wider or higher than the image is cut to its width or height.
        relative = (boxes * side + np.tile(origin, 2)) / [width, height, width, height]
        corner = np.maximum(np.trunc(relative[:, :2] * [width, height]), 0)
        size = np.minimum(np.trunc((relative[:, 2:] - relative[:, :2]) * [width, height]), [width, height])
        xyxy = np.concatenate([corner, corner + size], axis=1).astype(np.float32)
        return xyxy, scores.astype(np.float32), (keypoints * side + origin).astype(np.float32)
