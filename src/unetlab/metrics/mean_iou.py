"""Dataset-level mean intersection over union from one accumulated confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from unetlab.labels import default_class_names


class MeanIoU(Metric):
    """Mean IoU, per-class IoU and Dice, and pixel accuracy over a whole split.

    Every ``update`` adds the batch to a ``(C, C)`` confusion matrix (rows = truth,
    columns = prediction) with a single ``torch.bincount`` on the tensors' device. Across
    processes the matrices are summed, so the scores are computed once from the pooled
    pixel counts of the whole split, not averaged per image or per batch.

    Absent classes: a class with no pixel in the truth *and* none in the prediction has
    an undefined IoU. Its ``iou`` and ``dice`` entries are NaN and it is left out of
    ``miou``; it is never counted as 1.0 or 0.0. A class that is predicted but absent from
    the truth has IoU 0 and does count. If no class is present at all (nothing was
    accumulated, or every pixel was ignored), ``miou`` and ``pixel_accuracy`` are NaN.

    Args:
        num_classes: Number of classes ``C`` (2 for binary segmentation).
        ignore_index: Target value whose pixels are skipped (e.g. 255 for "unlabelled").
            If it is a valid class index, that class is also left out of ``miou`` and its
            ``iou``/``dice`` entries are NaN.
        include_background: If False, class 0 is left out of ``miou`` (its IoU is still
            reported).
        class_names: One name per class, used for per-class logging keys.
        **kwargs: Passed to ``torchmetrics.Metric`` (e.g. ``sync_on_compute``).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    confmat: Tensor

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        include_background: bool = True,
        class_names: Sequence[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(
                f"num_classes={num_classes} is not valid; use at least 2 "
                "(binary segmentation is background + foreground)."
            )
        if class_names is None:
            class_names = default_class_names(num_classes)
        if len(class_names) != num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} entries ({list(class_names)}) but "
                f"num_classes={num_classes}; give one name per class."
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.include_background = include_background
        self.class_names = [str(name) for name in class_names]
        self.add_state(
            "confmat",
            default=torch.zeros(num_classes, num_classes, dtype=torch.long),
            dist_reduce_fx="sum",
        )

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add one batch to the confusion matrix.

        Args:
            preds: Logits or probabilities ``(N, C, *spatial)`` (argmax over dim 1) or an
                integer label map ``(N, *spatial)``.
            target: Integer label map ``(N, *spatial)``.
        """
        pred_labels = self._to_labels(preds, target)
        target = target.long()
        if target.numel() == 0:
            return
        c = self.num_classes
        # One min/max pass checks the values; the per-pixel check runs only when one is
        # out of range (which ignored pixels such as 255 may be).
        low, high = (int(v) for v in torch.aminmax(target))
        ignore = self.ignore_index
        valid = target != ignore if ignore is not None and low <= ignore <= high else None
        if low < 0 or high >= c:
            self._check_range(target, valid, "mask")
        if preds.ndim == target.ndim:  # label maps; an argmax is always in range
            low, high = (int(v) for v in torch.aminmax(pred_labels))
            if low < 0 or high >= c:
                self._check_range(pred_labels, valid, "preds")
        index = pred_labels.add(target, alpha=c)
        if valid is not None:
            # Ignored pixels go to an extra bin that is dropped, which avoids a
            # data-dependent boolean gather.
            index.masked_fill_(~valid, c * c)
        counts = torch.bincount(index.flatten(), minlength=c * c + 1)
        self.confmat += counts[: c * c].reshape(c, c)

    def compute(self) -> dict[str, Tensor]:
        """Scores from the accumulated (and synced) confusion matrix.

        Returns:
            ``miou`` (scalar), ``iou`` and ``dice`` (``(C,)``, NaN for absent or ignored
            classes), ``pixel_accuracy`` (scalar) and ``confusion_matrix`` (``(C, C)``
            int64, rows = truth, columns = prediction).
        """
        confmat = self.confmat
        tp = confmat.diagonal().float()
        truth = confmat.sum(1).float()
        predicted = confmat.sum(0).float()
        union = truth + predicted - tp
        present = union > 0
        if self.ignore_index is not None and 0 <= self.ignore_index < self.num_classes:
            present[self.ignore_index] = False
        nan = torch.full_like(tp, float("nan"))
        iou = torch.where(present, tp / union.clamp_min(1), nan)
        dice = torch.where(present, 2 * tp / (truth + predicted).clamp_min(1), nan)
        averaged = present.clone()
        if not self.include_background:
            averaged[0] = False
        miou = iou[averaged].mean() if bool(averaged.any()) else nan[0]
        total = truth.sum()
        pixel_accuracy = tp.sum() / total if bool(total > 0) else nan[0]
        return {
            "miou": miou,
            "iou": iou,
            "dice": dice,
            "pixel_accuracy": pixel_accuracy,
            "confusion_matrix": confmat.clone(),
        }

    def named(self, values: Tensor) -> dict[str, Tensor]:
        """Map a per-class tensor (e.g. ``compute()["iou"]``) to ``{class name: value}``."""
        if values.shape != (self.num_classes,):
            raise ValueError(
                f"expected a per-class tensor of shape ({self.num_classes},), "
                f"got {tuple(values.shape)}"
            )
        return dict(zip(self.class_names, values.unbind(), strict=True))

    def _to_labels(self, preds: Tensor, target: Tensor) -> Tensor:
        if preds.ndim == target.ndim + 1:
            if preds.shape[1] != self.num_classes:
                raise ValueError(
                    f"preds has {preds.shape[1]} channels but num_classes={self.num_classes}; "
                    "pass logits/probabilities shaped (N, C, *spatial) or a label map "
                    "shaped like the target."
                )
            # The first maximum, as argmax gives, but several times faster on CPU over dim 1.
            labels = preds.max(dim=1).indices
        elif preds.ndim == target.ndim:
            if preds.is_floating_point():
                raise ValueError(
                    f"preds has the target's shape {tuple(preds.shape)} but is floating point; "
                    "pass an integer label map, or scores shaped (N, C, *spatial)."
                )
            labels = preds.long()
        else:
            raise ValueError(
                f"preds shape {tuple(preds.shape)} does not match target shape "
                f"{tuple(target.shape)}; expected (N, C, *spatial) scores or an (N, *spatial) "
                "label map."
            )
        if labels.shape != target.shape:
            raise ValueError(
                f"preds gives labels of shape {tuple(labels.shape)} but target has shape "
                f"{tuple(target.shape)}."
            )
        if target.is_floating_point():
            raise ValueError(
                f"target must be an integer label map, got dtype {target.dtype}; "
                "convert the mask with .long()."
            )
        return labels

    def _check_range(self, labels: Tensor, valid: Tensor | None, name: str) -> None:
        out_of_range = (labels < 0) | (labels >= self.num_classes)
        if valid is not None:
            out_of_range &= valid
        if bool(out_of_range.any()):
            bad = sorted(labels[out_of_range].unique().tolist())
            allowed = f"0..{self.num_classes - 1}"
            if self.ignore_index is not None:
                allowed += f" or ignore_index={self.ignore_index}"
            hint = (
                " Set data.mask_mapping to map mask values to class indices, or set "
                "ignore_index for unlabelled pixels."
                if name == "mask"
                else ""
            )
            raise ValueError(f"{name} has values {set(bad)}; expected {allowed}.{hint}")
