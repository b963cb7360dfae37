"""Reader of W&B offline run files (``run-*.wandb``) for tests.

The file is a 7-byte header (``:W&B``, magic, version) followed by 32 KiB blocks of LevelDB
log records (CRC32, length, type; types FULL/FIRST/MIDDLE/LAST), each payload a serialised
``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

HEADER_SIZE = 7
BLOCK_SIZE = 32 * 1024
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, chunks, offset = [], [], HEADER_SIZE
    while offset + RECORD_HEADER <= len(data):
        left_in_block = BLOCK_SIZE - offset % BLOCK_SIZE
        if left_in_block < RECORD_HEADER:
            offset += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + RECORD_HEADER])
        payload = data[offset + RECORD_HEADER : offset + RECORD_HEADER + length]
        offset += RECORD_HEADER + length
        if kind == 0 and length == 0:
            continue
        chunks.append(payload)
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            records.append(record)
            chunks = []
    return records


def offline_run_contents(run_dir: Path) -> tuple[dict, dict, list[Path]]:
    """``(history, config, media files)`` of the single offline run under ``run_dir``."""
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    history, config = {}, {}
    for record in read_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            for item in record.history.item:
                history.setdefault(_key(item), []).append(json.loads(item.value_json))
        elif kind == "config":
            for item in record.config.update:
                config[_key(item)] = json.loads(item.value_json)
    media = sorted(run_file.parent.glob("files/media/**/*.png"))
    return history, config, media


def _key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def offline_segments(run_dir: Path) -> list[dict]:
    """Every offline run file under ``run_dir``, oldest first, each as a dict.

    Keys: ``run_id``, ``history`` (key -> values), ``summary`` (key -> last value),
    ``config`` (nested keys joined by ``/``), ``metrics`` (``define_metric`` records) and
    ``artifacts`` (name, type, aliases, metadata and ``files``: path -> staged local file).
    """
    segments = []
    for run_file in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        segment = {"dir": run_file.parent, "history": {}, "summary": {}, "config": {}}
        segment.update(metrics=[], artifacts=[])
        for record in read_records(run_file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                segment["run_id"] = record.run.run_id
            elif kind == "history":
                for item in record.history.item:
                    value = json.loads(item.value_json)
                    segment["history"].setdefault(_key(item), []).append(value)
            elif kind == "summary":
                for item in record.summary.update:
                    segment["summary"][_key(item)] = json.loads(item.value_json)
            elif kind == "config":
                for item in record.config.update:
                    segment["config"][_key(item)] = json.loads(item.value_json)
            elif kind == "metric":
                segment["metrics"].append(record.metric)
            elif kind == "artifact":
                artifact = record.artifact
                files = {entry.path: Path(entry.local_path) for entry in artifact.manifest.contents}
                segment["artifacts"].append(
                    {
                        "name": artifact.name,
                        "type": artifact.type,
                        "aliases": list(artifact.aliases),
                        "metadata": json.loads(artifact.metadata or "{}"),
                        "files": files,
                    }
                )
        segments.append(segment)
    return segments


def finish_run(trainer) -> None:
    """End the trainer's W&B run and wait until its offline files are complete.

    ``finish()`` returns before W&B has written every record (e.g. a logged table's
    artifact); ``wandb.teardown()`` waits for them.
    """
    import wandb

    trainer.loggers[0].experiment.finish()
    wandb.teardown()
