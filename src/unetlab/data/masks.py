"""Turning the values stored in mask files into class indices (and instance ids)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

ENCODINGS = ("classes", "binary", "instances")


class MaskEncoding:
    """How mask files encode classes.

    - ``classes``: every pixel holds its class index ``0..num_classes-1``; with ``mapping``,
      every value is looked up there instead (``{0: 1, 255: 0}``).
    - ``binary``: 0 is class 0, anything else is class 1 (e.g. 0/255 masks).
    - ``instances``: an instance-label image (0 = background, 1..N objects, usually uint16);
      objects become class 1 and their ids are kept for the weight map.

    Args:
        num_classes: Number of classes of the model.
        encoding: One of ``classes``, ``binary``, ``instances``.
        mapping: Stored value -> class index, for ``classes`` masks.
        ignore_value: Stored value of unlabelled pixels (they get ``ignore_index``).
        ignore_index: Class value of ignored pixels; the loss and the metrics skip it.
    """

    def __init__(
        self,
        num_classes: int,
        encoding: str = "classes",
        mapping: Mapping[int, int] | None = None,
        ignore_value: int | None = None,
        ignore_index: int = -100,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(
                f"data.mask_encoding={encoding!r} is not known; use one of {', '.join(ENCODINGS)}"
            )
        if mapping and encoding != "classes":
            raise ValueError(
                f"data.mask_mapping only applies to data.mask_encoding=classes, not {encoding}; "
                "drop one of them"
            )
        if encoding in ("binary", "instances") and num_classes != 2:
            raise ValueError(
                f"data.mask_encoding={encoding} gives 2 classes but model.num_classes="
                f"{num_classes}; set model.num_classes=2 or use data.mask_mapping"
            )
        self.num_classes = num_classes
        self.encoding = encoding
        self.mapping = {int(k): int(v) for k, v in (mapping or {}).items()}
        bad = sorted(v for v in self.mapping.values() if not 0 <= v < num_classes)
        if bad:
            raise ValueError(
                f"data.mask_mapping maps to {bad}, outside the classes 0..{num_classes - 1} "
                f"(model.num_classes={num_classes}); fix the mapping or model.num_classes"
            )
        self.ignore_value = ignore_value
        self.ignore_index = ignore_index

    def __call__(self, stored: np.ndarray, origin: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Class indices (int16, ``ignore_index`` where unlabelled) and instance ids (or None).

        Args:
            stored: The mask as read from its file, (H, W).
            origin: The file, as named in error messages.

        Raises:
            ValueError: The mask holds values that are not classes, naming file, values and fix.
        """
        if stored.dtype.kind not in "iub":
            raise ValueError(
                f"{origin}: mask has dtype {stored.dtype}; expected integer labels, "
                "save masks as 8- or 16-bit PNG/TIFF"
            )
        ignored = stored == self.ignore_value if self.ignore_value is not None else None
        instances = None
        if self.encoding == "binary":
            classes = (stored != 0).astype(np.int16)
        elif self.encoding == "instances":
            instances = np.where(ignored, 0, stored) if ignored is not None else stored
            instances = instances.astype(np.int32)
            classes = (instances > 0).astype(np.int16)
        elif self.mapping:
            classes = self._map(stored, ignored, origin)
        else:
            classes = stored.astype(np.int16)
            valid = (stored >= 0) & (stored < self.num_classes)
            if ignored is not None:
                valid |= ignored
            if not valid.all():
                self._raise_bad_values(origin, np.unique(stored[~valid]), stored)
        if ignored is not None:
            classes[ignored] = self.ignore_index
        return classes, instances

    def _map(self, stored: np.ndarray, ignored: np.ndarray | None, origin: str) -> np.ndarray:
        values, inverse = np.unique(stored, return_inverse=True)
        known = np.array([v in self.mapping or v == self.ignore_value for v in values.tolist()])
        if not known.all():
            unknown = values[~known]
            raise ValueError(
                f"{origin}: mask has values {_short(unknown)} that data.mask_mapping "
                f"{self.mapping} does not map; add them to data.mask_mapping"
                + (" or set data.ignore_value" if self.ignore_value is None else "")
            )
        lookup = np.array([self.mapping.get(v, 0) for v in values.tolist()], np.int16)
        return lookup[inverse.reshape(stored.shape)]

    def _raise_bad_values(self, origin: str, bad: np.ndarray, stored: np.ndarray) -> None:
        values = np.unique(stored)
        if values.size <= 2 and values.min() == 0:
            top = int(values.max())
            fix = (
                f"for {values.tolist()} masks set data.mask_encoding=binary "
                f"(or 'data.mask_mapping={{0:0,{top}:1}}')"
            )
        elif (
            values.min() == 0
            and values.size > self.num_classes
            and (stored.dtype.itemsize >= 2 or values.max() + 1 == values.size)
        ):
            fix = "for instance labels (0 = background, 1..N objects) set data.mask_encoding=instances"
        else:
            fix = "map them to classes with data.mask_mapping={value: class, ...} or set model.num_classes"
        raise ValueError(
            f"{origin}: mask has values {_short(bad)}; expected class indices "
            f"0..{self.num_classes - 1} (model.num_classes={self.num_classes}); {fix}"
        )


def _short(values: np.ndarray, limit: int = 8) -> str:
    items = values[:limit].tolist()
    return str(items)[:-1] + (", ...]" if values.size > limit else "]")
