"""The download registry: every file the book fetches from the internet, with its checksum.

``fetch(name)`` returns the path of a verified local copy. It looks, in order, in the cache
directory, in a mirror directory (``DLNOTES_MIRROR``: a folder of copies, e.g. for offline
machines and CI), and finally on the internet. A download is streamed to a temporary file,
retried on network errors, checked against its length and checksum, and only then renamed into
place, so the cache never holds a partial or corrupt file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dlnotes import config

_D2L = "http://d2l-data.s3-accelerate.amazonaws.com/"
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_D2L_IMG = "https://raw.githubusercontent.com/d2l-ai/d2l-en/master/img/"
# the chinese-poetry project (MIT); its folder 全唐诗, percent-encoded
_POETRY = "https://raw.githubusercontent.com/chinese-poetry/chinese-poetry/master/%E5%85%A8%E5%94%90%E8%AF%97/"
_TANG_SHARDS = {0: "4f88f429938082523cdc72a1612bd7a7c3e3f7a33f8192c61ae51340efc3c92d",
                1000: "6e703b8d8dcedbd6110f6d48d043665ca2131db2035a5bfcef5e59a19aeb6d75",
                2000: "ec28efa7e2ae9cdbbba09f0ed186e32ccae47a325ad1e5816b7ad56071c1665a",
                3000: "9e4ba2323752b6b9fbdba875cdbc6a26636fe0cabc85fd066370d4915952001f",
                4000: "b8a7946c879b9658a6c667a4c55f776fae7e5e00a17789ab06b274c1429afc66"}


class DownloadError(RuntimeError):
    """A file could not be obtained (network, permissions); the message says what to do."""


class ChecksumError(DownloadError):
    """A file's content does not match the registry's checksum."""


class CacheError(DownloadError):
    """The cache directory cannot be written."""


@dataclass(frozen=True)
class Remote:
    """One file on the internet that the book may use."""

    url: str
    checksums: tuple[str, ...]  # "algorithm:hexdigest" or "algorithm-prefix:first digits"; any one match is enough
    filename: str  # path inside the cache directory (and, ideally, inside a mirror)
    description: str = ""


REGISTRY: dict[str, Remote] = {
    "fashion-mnist-train-images": Remote(
        _FASHION + "train-images-idx3-ubyte.gz", ("md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",),
        "fashion-mnist/train-images-idx3-ubyte.gz", "Fashion-MNIST, 60,000 training images"),
    "fashion-mnist-train-labels": Remote(
        _FASHION + "train-labels-idx1-ubyte.gz", ("md5:25c81989df183df01b3e8a0aad5dffbe",),
        "fashion-mnist/train-labels-idx1-ubyte.gz", "Fashion-MNIST, training labels"),
    "fashion-mnist-test-images": Remote(
        _FASHION + "t10k-images-idx3-ubyte.gz", ("md5:bef4ecab320f06d8554ea6380940ec79",),
        "fashion-mnist/t10k-images-idx3-ubyte.gz", "Fashion-MNIST, 10,000 test images"),
    "fashion-mnist-test-labels": Remote(
        _FASHION + "t10k-labels-idx1-ubyte.gz", ("md5:bb300cfdad3c16e7a12a480ee83cd310",),
        "fashion-mnist/t10k-labels-idx1-ubyte.gz", "Fashion-MNIST, test labels"),
    "timemachine": Remote(
        _D2L + "timemachine.txt",
        ("sha256:8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516",),
        "timemachine.txt", "H. G. Wells, The Time Machine"),
    "kaggle-house-train": Remote(
        _D2L + "kaggle_house_pred_train.csv",
        ("sha256:1e18addf81e5e4d347cc17ee6075bbe4a42b7fa26b9e5b063e8f692a5f929d41",
         "sha1:585e9cc93e70b39160e7921475f9bcd7d31219ce"),  # d2l's published SHA-1
        "kaggle_house_pred_train.csv", "Kaggle house prices, training set"),
    "kaggle-house-test": Remote(
        _D2L + "kaggle_house_pred_test.csv",
        ("sha256:8fdd3d829d4d986b58f845c9553b225e67dd8383624d90fb6ca1d4bed5798c1e",
         "sha1:fa19780a7b011d9b009e8bff8e99922a8ee2eb90"),  # d2l's published SHA-1
        "kaggle_house_pred_test.csv", "Kaggle house prices, test set"),
    "airfoil": Remote(
        _D2L + "airfoil_self_noise.dat",
        ("sha256:74c75fd71783f1e6b71f8a622b993dc592897a97cd689c5090a07147a1b097b3",),
        "airfoil_self_noise.dat", "NASA airfoil self-noise"),
    "fra-eng": Remote(
        # d2l's zip, or the same sentence pairs re-zipped (as in the CI mirror)
        _D2L + "fra-eng.zip",
        ("sha1:94646ad1522d915e7b0f9296181140edcf86a4f5",
         "sha256:161c93f18da3a7e6df611ed961426613260de8af06ccf8c79c977afe5135ac44"),
        "fra-eng.zip", "English-French sentence pairs (Tatoeba)"),
    "catdog": Remote(
        _D2L_IMG + "catdog.jpg",
        ("sha256:7580ea4555a01bc18c3e1a21ae6b8099026634034a8a08b4fe443fbc9f849dd2",),
        "catdog.jpg", "d2l's bounding-box photo"),
    "cat1": Remote(
        _D2L_IMG + "cat1.jpg",
        ("sha256:be3040de58a5c818a725f03b5acc281423a6ed7fa1e58b2f94f60034656e600b",),
        "cat1.jpg", "d2l's augmentation photo"),
    "banana": Remote(
        _D2L_IMG + "banana.jpg",
        ("sha256:2e1f327573bde0fc18c1fafe6f314a192904e33dc4302a8b7a72ea89a97c20ec",),
        "banana.jpg", "d2l's detection photo"),
    "tang300": Remote(
        _POETRY + "%E5%94%90%E8%AF%97%E4%B8%89%E7%99%BE%E9%A6%96.json",  # 唐诗三百首.json
        ("sha256:d77a145f7470da2ed2f79515944563c062ffc43fceda07f195a36ead66b7e5c7",),
        "tang-poems/tang300.json", "唐诗三百首.json: 366 poems (traditional script), saved as tang300.json"),
    "vgg19-imagenet": Remote(
        # torchvision's file name carries the first hex digits of its SHA-256, all that is published
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", ("sha256-prefix:dcbb9e9d",),
        "torchvision/vgg19-dcbb9e9d.pth", "torchvision's VGG-19 ImageNet weights (548 MB), for style transfer"),
    **{f"tang-{start}": Remote(
        _POETRY + f"poet.tang.{start}.json", (f"sha256:{digest}",), f"tang-poems/poet.tang.{start}.json",
        f"全唐诗, poems {start} to {start + 999} (traditional script)") for start, digest in _TANG_SHARDS.items()},
}


PREFIX = "-prefix"  # a checksum algorithm with this suffix gives only the digest's first digits


def file_checksum(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(path: Path, checksums: tuple[str, ...]) -> tuple[bool, str]:
    """(does the file match any checksum, the file's digest under the first algorithm)."""
    actual = ""
    for i, expected in enumerate(checksums):
        algorithm, _, hexdigest = expected.partition(":")
        prefix = algorithm.endswith(PREFIX)  # "sha256-prefix:dcbb9e9d": the digest starts with these digits
        algorithm = algorithm.removesuffix(PREFIX)
        digest = file_checksum(path, algorithm)
        if i == 0:
            actual = f"{algorithm}:{digest}"
        if digest == hexdigest.lower() or (prefix and digest.startswith(hexdigest.lower())):
            return True, f"{algorithm}:{digest}"
    return False, actual


def _find_in_mirror(mirror: Path, remote: Remote) -> Path | None:
    """The mirror's copy: at the same relative path, else any file of the same name below it."""
    direct = mirror / remote.filename
    if direct.is_file():
        return direct
    return next((p for p in sorted(mirror.rglob(Path(remote.filename).name)) if p.is_file()), None)


def _install(target: Path, *, write) -> None:
    """Write a file next to ``target`` under a temporary name, then rename it into place.

    ``write(f)`` fills the open temporary file; on any error the temporary file is removed.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as e:
        raise CacheError(
            f"cannot write to the cache directory {target.parent} ({e}); "
            f"set DLNOTES_CACHE to a writable folder"
        ) from e
    try:
        os.close(fd)
        with open(tmp, "wb") as f:  # opened by path, so that f.name is the file's path, not an fd
            write(f)
        os.replace(tmp, target)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download_once(remote: Remote, target: Path, *, timeout: float) -> None:
    def write(f) -> None:
        with urllib.request.urlopen(remote.url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            received = 0
            for chunk in iter(lambda: response.read(1 << 16), b""):
                f.write(chunk)
                received += len(chunk)
            if expected is not None and received != int(expected):
                raise DownloadError(f"truncated transfer of {remote.url}: got {received} of {expected} bytes")
        f.flush()
        ok, actual = _matches(Path(f.name), remote.checksums)
        if not ok:
            raise ChecksumError(
                f"checksum mismatch for {target.name} from {remote.url}: "
                f"expected {' or '.join(remote.checksums)}, got {actual}; the file was not kept"
            )

    _install(target, write=write)


def fetch(
    name: str,
    *,
    cache: Path | None = None,
    mirror: Path | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
    quiet: bool = False,
) -> Path:
    """Return the path of a verified local copy of the registry entry ``name``.

    ``cache`` and ``mirror`` default to ``DLNOTES_CACHE`` and ``DLNOTES_MIRROR``
    (see :mod:`dlnotes.config`). Network errors and truncated transfers are retried
    ``retries`` times with exponential ``backoff`` (seconds); a checksum mismatch is not.
    """
    if name not in REGISTRY:
        raise LookupError(f"unknown data set {name!r}; the registry knows: {', '.join(sorted(REGISTRY))}")
    remote = REGISTRY[name]
    cache = Path(cache) if cache is not None else config.cache_dir()
    mirror = Path(mirror) if mirror is not None else config.mirror_dir()
    target = cache / remote.filename

    if target.is_file():
        if _matches(target, remote.checksums)[0]:
            return target
        target.unlink()  # a corrupt or outdated cached copy: fetch it again

    if mirror is not None:
        copy = _find_in_mirror(mirror, remote)
        if copy is not None:
            ok, actual = _matches(copy, remote.checksums)
            if not ok:
                raise ChecksumError(
                    f"checksum mismatch for the mirror's copy {copy}: "
                    f"expected {' or '.join(remote.checksums)}, got {actual}"
                )
            def write(f) -> None:
                with open(copy, "rb") as source:
                    shutil.copyfileobj(source, f)

            _install(target, write=write)
            return target

    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            if not quiet:
                print(f"downloading {name} from {remote.url} ...", file=sys.stderr, flush=True)
            _download_once(remote, target, timeout=timeout)
            return target
        except (ChecksumError, CacheError):
            raise
        except (urllib.error.URLError, OSError, DownloadError) as e:  # timeouts are OSErrors
            last_error = e
    where = f"the mirror {mirror} has no {Path(remote.filename).name}" if mirror else "no mirror is set"
    raise DownloadError(
        f"could not download {name!r} from {remote.url} after {retries + 1} attempts "
        f"({last_error}); {where}. On a machine without internet, put a copy of "
        f"{Path(remote.filename).name} in a folder and set DLNOTES_MIRROR to that folder, "
        f"or place it at {target}."
    ) from last_error
