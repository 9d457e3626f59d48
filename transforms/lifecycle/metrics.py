"""Evaluation metrics: top-1/top-5 for classifiers; precision, recall and AP@0.5 for detectors (objects, faces);
agreement of a candidate with the active version; all pure functions of labels.

Predictions are the model's unthresholded labels (what the cache holds); detection precision and recall count
the labels at or above the model's default threshold, AP@0.5 ranks all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import correlation, fmean, pstdev

from transforms.handlers.base import Label

IOU_MATCH = 0.5


@dataclass(frozen=True)
class Box:
    """An expected object: its label and [x_min, y_min, x_max, y_max] in original pixels."""

    label: str
    box: tuple[float, float, float, float]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x_min, y_min, x_max, y_max] boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --- classifiers -------------------------------------------------------------------------------------------------


def classification_quality(predictions: Sequence[Sequence[Label]], expected: Sequence[Sequence[str]]) -> dict:
    """top1: share of images whose best label is an accepted one; top5: one of the best five is."""
    top1 = [bool(p) and p[0].label in set(e) for p, e in zip(predictions, expected, strict=True)]
    top5 = [any(lbl.label in set(e) for lbl in p[:5]) for p, e in zip(predictions, expected, strict=True)]
    return {"top1": _share(top1), "top5": _share(top5)}


def classification_agreement(candidate: Sequence[Sequence[Label]], active: Sequence[Sequence[Label]]) -> dict:
    """top1_agreement: same best label; top5_overlap: mean Jaccard of the top-5 sets; score_delta: mean absolute
    difference of the score both give the active version's best label."""
    same, overlap, deltas = [], [], []
    for cand, act in zip(candidate, active, strict=True):
        same.append(bool(cand) and bool(act) and cand[0].label == act[0].label)
        a, b = {x.label for x in cand[:5]}, {x.label for x in act[:5]}
        overlap.append(len(a & b) / len(a | b) if a | b else 1.0)
        if act:
            scores = {x.label: x.score for x in cand}
            deltas.append(abs(scores.get(act[0].label, 0.0) - act[0].score))
    out = {"top1_agreement": _share(same), "top5_overlap": _mean(overlap), "score_delta": _mean(deltas)}
    moves = score_correlation(candidate, active)
    return out if moves is None else {**out, "score_correlation": moves}


def score_correlation(candidate: Sequence[Sequence[Label]], active: Sequence[Sequence[Label]]) -> float | None:
    """Whether the candidate's scores move with the active version's from image to image: for each label in the
    active version's top five of some image, the Pearson correlation across images of the score each version gives
    it (0 where a version does not list it), averaged over those labels.

    The same network scores 1. A collapsed model (the same answer whatever the image) scores 0, and its best label
    can still agree with the active one's on every image of a set with one dominant class (an NSFW set without
    positives). Labels whose active scores never vary are left out; None when none vary.
    """
    labels = sorted({x.label for act in active for x in act[:5]})
    found = []
    for label in labels:
        act_scores = [next((x.score for x in act if x.label == label), 0.0) for act in active]
        cand_scores = [next((x.score for x in cand if x.label == label), 0.0) for cand in candidate]
        if pstdev(act_scores) < 1e-9:
            continue
        found.append(0.0 if pstdev(cand_scores) < 1e-9 else correlation(cand_scores, act_scores))
    return fmean(found) if found else None


# --- detectors ---------------------------------------------------------------------------------------------------


def _match(dets: Sequence[Label], truth: Sequence[Box]) -> list[bool]:
    """Greedy matching by score: each detection is a hit when an unmatched object of its label overlaps it."""
    used: set[int] = set()
    hits = []
    for det in sorted(dets, key=lambda d: -d.score):
        best, best_iou = None, IOU_MATCH
        for i, obj in enumerate(truth):
            if i in used or obj.label != det.label or det.bounding_box is None:
                continue
            overlap = iou(det.bounding_box, obj.box)
            if overlap >= best_iou:
                best, best_iou = i, overlap
        if best is not None:
            used.add(best)
        hits.append(best is not None)
    return hits


def detection_quality(
    predictions: Sequence[Sequence[Label]], expected: Sequence[Sequence[Box]], threshold: float
) -> dict:
    """precision and recall of the labels at or above `threshold`; ap50: mean over the expected classes of the
    all-point interpolated average precision at IoU 0.5 (every label ranked by score)."""
    tp = fp = 0
    for dets, truth in zip(predictions, expected, strict=True):
        hits = _match([d for d in dets if d.score >= threshold], truth)
        tp += sum(hits)
        fp += len(hits) - sum(hits)
    n_truth = sum(len(t) for t in expected)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / n_truth if n_truth else 1.0
    classes = sorted({obj.label for truth in expected for obj in truth})
    aps = [_average_precision(predictions, expected, cls) for cls in classes]
    return {"precision": precision, "recall": recall, "ap50": _mean(aps) if aps else 1.0}


def _average_precision(predictions: Sequence[Sequence[Label]], expected: Sequence[Sequence[Box]], cls: str) -> float:
    ranked: list[tuple[float, bool]] = []
    for dets, truth in zip(predictions, expected, strict=True):
        mine = [d for d in dets if d.label == cls]
        ordered = sorted(mine, key=lambda d: -d.score)
        ranked.extend(zip((d.score for d in ordered), _match(ordered, truth), strict=True))
    ranked.sort(key=lambda r: -r[0])
    n_truth = sum(1 for truth in expected for obj in truth if obj.label == cls)
    tp, points = 0, []
    for rank, (_, hit) in enumerate(ranked, start=1):
        tp += hit
        points.append((tp / n_truth, tp / rank))
    ap, prev_recall = 0.0, 0.0
    for i, (recall, _) in enumerate(points):
        if recall > prev_recall:
            ap += (recall - prev_recall) * max(p for _, p in points[i:])  # precision envelope
            prev_recall = recall
    return ap


def detection_agreement(
    candidate: Sequence[Sequence[Label]], active: Sequence[Sequence[Label]], threshold: float
) -> dict:
    """label_overlap: mean Jaccard of the label multisets at the threshold; box_iou: mean IoU of the active
    version's boxes with the candidate's best same-label box; score_delta: mean score difference of those pairs."""
    overlaps, ious, deltas = [], [], []
    for cand, act in zip(candidate, active, strict=True):
        a = sorted(x.label for x in cand if x.score >= threshold)
        b = sorted(x.label for x in act if x.score >= threshold)
        common = sum(min(a.count(label), b.count(label)) for label in set(a) | set(b))
        union = len(a) + len(b) - common
        overlaps.append(common / union if union else 1.0)
        for ref in (x for x in act if x.score >= threshold and x.bounding_box is not None):
            same = [c for c in cand if c.label == ref.label and c.bounding_box is not None]
            best = max(same, key=lambda c: iou(c.bounding_box or [], ref.bounding_box or []), default=None)
            ious.append(iou(best.bounding_box or [], ref.bounding_box or []) if best else 0.0)
            deltas.append(abs(best.score - ref.score) if best else ref.score)
    return {"label_overlap": _mean(overlaps), "box_iou": _mean(ious) if ious else 1.0, "score_delta": _mean(deltas)}


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _mean(values: Sequence[float]) -> float:
    return fmean(values) if values else 0.0
