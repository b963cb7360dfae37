"""Downloading a file once: checked by SHA-256, written atomically, retried."""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

from unetlab.atomic_file import atomic_file

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ChecksumError(ValueError):
    """The downloaded bytes do not have the expected SHA-256."""


def download_file(
    url: str,
    destination: str | Path,
    sha256: str,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> Path:
    """Fetch ``url`` to ``destination`` unless a file with the right SHA-256 is already there.

    The bytes go to a temporary file beside ``destination`` that is renamed into place only
    after its checksum matched, so an interrupted or corrupted download never leaves a
    file behind. Network errors, server errors (5xx) and checksum mismatches are retried
    ``retries`` times with growing pauses; client errors (4xx) fail at once.

    Args:
        url: Where to fetch from.
        destination: The file to write.
        sha256: Expected hex SHA-256 of the file.
        retries: Attempts in all.
        timeout: Seconds to wait for the server per request.
        backoff: Pause after the first failed attempt in seconds (doubled each time).

    Raises:
        RuntimeError: One line naming the URL, the file and the last error.
    """
    destination = Path(destination)
    expected = sha256.lower()
    if destination.exists():
        if sha256_of(destination) == expected:
            return destination
        log.warning("%s: SHA-256 differs from %s; downloading it again", destination, expected)
    destination.parent.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            _fetch(url, destination, expected, timeout)
            return destination
        except urllib.error.HTTPError as error:
            last_error = error
            if error.code < 500:
                break
        except (urllib.error.URLError, HTTPException, OSError, ChecksumError) as error:
            last_error = error
        log.warning("download of %s failed (attempt %d/%d): %s", url, attempt, retries, last_error)
        if attempt < retries:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise RuntimeError(
        f"{url}: download to {destination} failed ({last_error}); check the URL and the "
        f"network, or put the file at {destination} yourself"
    )


def _fetch(url: str, destination: Path, expected: str, timeout: float) -> None:
    digest = hashlib.sha256()
    with atomic_file(destination) as temp:
        with open(temp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            raise ChecksumError(f"SHA-256 is {digest.hexdigest()}, expected {expected}")
