#!/usr/bin/env python3
"""Fixtures for the Swift safetensors reader/writer (Tests/TensorCoreTests/SafeTensorsTests.swift).

The Python `safetensors` package (the reference implementation, Rust underneath) is the oracle:

  python scripts/make_safetensors_fixtures.py            # (re)writes Tests/Fixtures/safetensors/
  python scripts/make_safetensors_fixtures.py --check FILE
      # loads FILE (written by our Swift writer) with python safetensors and checks that it holds
      # exactly the tensors of `swift_written_contents()`, byte-identical to python's own output.

Written files:
  all_dtypes.safetensors + all_dtypes.json   every dtype the reader supports, a 0-dim scalar, empty
                                             tensors, metadata; expected values as JSON
  unaligned.safetensors + unaligned.json     header length not a multiple of 8, so tensor data is
                                             misaligned in memory (exercises unaligned loads)
  python_reference.safetensors               python's serialization of swift_written_contents();
                                             the Swift writer must reproduce it byte for byte
  malformed/*.safetensors + malformed.json   one file per validation failure, with the Swift error
                                             case expected and whether python safetensors rejects it
Everything is deterministic and tiny. Needs torch, numpy, safetensors (see README).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "Fixtures", "safetensors")


def jsonable(t):
    """Values of a tensor as a flat JSON list (floats as exact doubles; inf/nan as strings)."""
    flat = t.reshape(-1)
    if t.dtype in (torch.int64, torch.int32, torch.uint8):
        return [int(v) for v in flat.tolist()]
    if t.dtype == torch.bool:
        return [1 if v else 0 for v in flat.tolist()]
    out = []
    # Every value below is exactly representable in float32, so Swift can compare with ==.
    for v in flat.to(torch.float64).tolist():
        if math.isnan(v):
            out.append("nan")
        elif math.isinf(v):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(v)
    return out


DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL",
}


def expected_json(tensors, metadata, order):
    return {
        "metadata": metadata,
        "order": order,
        "tensors": {
            name: {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "values": jsonable(t)}
            for name, t in tensors.items()
        },
    }


def all_dtypes():
    g = torch.Generator().manual_seed(0)
    tensors = {
        "f32.matrix": (torch.randn(2, 3, generator=g) * 3).float(),
        "f32.special": torch.tensor([0.0, -0.0, 1e-45, -3.4028235e38, float("inf"), float("-inf"), float("nan")],
                                    dtype=torch.float32),
        "f32.scalar": torch.tensor(2.5, dtype=torch.float32),          # 0-dim
        "f32.empty": torch.zeros(0, dtype=torch.float32),              # no elements
        "f16.values": torch.tensor([1.0, -2.5, 65504.0, 6.1035156e-05, 5.9604645e-08, -0.0,
                                    float("inf"), float("nan"), 0.333251953125], dtype=torch.float16),
        "bf16.values": torch.tensor([[1.0, -3.140625], [1e30, 9.183549615799121e-41]], dtype=torch.bfloat16),
        "f64.values": torch.tensor([0.1, -1e300, 12345.678], dtype=torch.float64).to(torch.float32).to(torch.float64),
        "i64.values": torch.tensor([0, -1, 2**40, -(2**62), 7], dtype=torch.int64),
        "i64.empty": torch.zeros(2, 0, dtype=torch.int64),
        "i32.values": torch.tensor([[1, -2], [2**31 - 1, -(2**31)]], dtype=torch.int32),
        "u8.image": torch.arange(2 * 2 * 3, dtype=torch.uint8).reshape(2, 2, 3) * 21,
        "bool.mask": torch.tensor([True, False, True]),
    }
    metadata = {"format": "pt", "note": "caption safetensors fixture"}
    path = os.path.join(OUT, "all_dtypes.safetensors")
    save_file(tensors, path, metadata=metadata)
    with safe_open(path, "pt") as f:
        order = list(f.offset_keys()) if hasattr(f, "offset_keys") else None
    if order is None:
        order = file_order(path)
    with open(os.path.join(OUT, "all_dtypes.json"), "w") as fp:
        json.dump(expected_json(tensors, metadata, order), fp, indent=1, sort_keys=True)


def file_order(path):
    """Tensor names in data-offset order, read straight from the header."""
    with open(path, "rb") as fp:
        (n,) = struct.unpack("<Q", fp.read(8))
        header = json.loads(fp.read(n))
    header.pop("__metadata__", None)
    return sorted(header, key=lambda k: tuple(header[k]["data_offsets"]))


def raw_file(header_text, data=b""):
    """A file with exactly this header text (no padding) and data section."""
    h = header_text.encode("utf-8") if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(h)) + h + data


def unaligned():
    tensors = {
        "a": np.array([1.5, -2.25, 3.0], dtype=np.float32),
        "b": np.array([-5, 6], dtype=np.int64),
        "c": np.array([0.5, -0.125], dtype=np.float16),
        "d": np.array([1, 2, 3], dtype=np.int32),
    }
    # Odd-length tensors first and no header padding, so every later tensor sits at an odd address.
    order = ["c", "a", "b", "d"]
    header, data, offset = {}, b"", 0
    for name in order:
        raw = tensors[name].tobytes()
        header[name] = {"dtype": {"float32": "F32", "int64": "I64", "float16": "F16", "int32": "I32"}[str(tensors[name].dtype)],
                        "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    if (len(text) + 8) % 2 == 0:
        text += " "  # make the data section start at an odd offset
    blob = raw_file(text, data)
    with open(os.path.join(OUT, "unaligned.safetensors"), "wb") as fp:
        fp.write(blob)
    with safe_open(os.path.join(OUT, "unaligned.safetensors"), "np") as f:  # the reference accepts it
        for name in order:
            assert np.array_equal(f.get_tensor(name), tensors[name]), name
    expected = {"order": order, "metadata": {},
                "tensors": {k: {"dtype": header[k]["dtype"], "shape": header[k]["shape"],
                                "values": [float(x) if v.dtype.kind == "f" else int(x) for x in v.reshape(-1)]}
                            for k, v in tensors.items()}}
    with open(os.path.join(OUT, "unaligned.json"), "w") as fp:
        json.dump(expected, fp, indent=1, sort_keys=True)


def swift_written_contents():
    """What SafeTensorsTests.testWriterOutputMatchesPythonByteForByte writes (keep the two in sync)."""
    tensors = {
        "encoder.conv1.weight": (torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2) * 0.5 - 3),
        "encoder.bn1.num_batches_tracked": torch.tensor(1234567890123, dtype=torch.int64),
        "decoder.fc.bias": torch.tensor([0.1, -0.2, 1e-8], dtype=torch.float32),
        "image": (torch.arange(2 * 3 * 3, dtype=torch.int64) * 13 % 256).to(torch.uint8).reshape(2, 3, 3),
        "tokens": torch.tensor([[1, 5, 2], [-7, 0, 2**33]], dtype=torch.int64),
        "lengths": torch.tensor([3, -3], dtype=torch.int32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
        "scalar": torch.tensor(-0.75, dtype=torch.float32),
        "name with \"quotes\", / and é": torch.tensor([42], dtype=torch.uint8),
    }
    # One metadata key only: the reference writes __metadata__ in hash order, so with several keys
    # its bytes are not reproducible.
    metadata = {"producer": "caption"}
    return tensors, metadata


def python_reference():
    tensors, metadata = swift_written_contents()
    with open(os.path.join(OUT, "python_reference.safetensors"), "wb") as fp:
        fp.write(save(tensors, metadata=metadata))


# --- malformed files -------------------------------------------------------------------------

def entry(dtype="F32", shape=(1,), offsets=(0, 4)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def hdr(obj):
    return json.dumps(obj, separators=(",", ":"))


F4 = b"\x00\x00\x80\x3f"  # 1.0f


def malformed_cases():
    """name -> (file bytes, expected Swift error case, does the reference reject it?)"""
    c = {}
    c["too_short"] = (b"\x10\x00\x00\x00\x00", "fileTooSmall", True)
    c["header_length_zero"] = (struct.pack("<Q", 0) + b"{}      ", "emptyHeader", True)
    c["header_too_large"] = (struct.pack("<Q", 200_000_000) + b"{}", "headerTooLarge", True)
    c["header_beyond_end"] = (struct.pack("<Q", 64) + b'{"a":1}', "headerBeyondEnd", True)
    c["header_not_utf8"] = (raw_file(b'{"a\xff\xfe":{}}'), "headerNotUTF8", True)
    c["header_not_json"] = (raw_file('{"a":{"dtype":"F32",'), "headerNotJSON", True)
    c["header_trailing_garbage"] = (raw_file(hdr({"a": entry()}) + "x", F4), "headerNotJSON", True)
    c["header_not_object"] = (raw_file("[1,2,3]"), "headerNotObject", True)
    c["entry_not_object"] = (raw_file(hdr({"a": 5})), "invalidEntry", True)
    c["entry_missing_dtype"] = (raw_file(hdr({"a": {"shape": [1], "data_offsets": [0, 4]}}), F4), "invalidEntry", True)
    c["entry_missing_offsets"] = (raw_file(hdr({"a": {"dtype": "F32", "shape": [1]}}), F4), "invalidEntry", True)
    c["entry_dtype_not_string"] = (raw_file(hdr({"a": entry(dtype=3)}), F4), "invalidEntry", True)
    c["entry_shape_not_array"] = (raw_file(hdr({"a": entry(shape=(1,)) | {"shape": 1}}), F4), "invalidEntry", True)
    c["entry_shape_negative"] = (raw_file(hdr({"a": entry(shape=(-1,))}), F4), "invalidEntry", True)
    c["entry_shape_fraction"] = (raw_file(hdr({"a": entry(shape=(1.5,))}), F4), "invalidEntry", True)
    c["entry_shape_float_literal"] = (raw_file(hdr({"a": entry(shape=(1.0,))}), F4), "invalidEntry", True)
    c["entry_shape_bool"] = (raw_file(hdr({"a": entry(shape=(True,))}), F4), "invalidEntry", True)
    c["entry_shape_string"] = (raw_file(hdr({"a": entry(shape=("1",))}), F4), "invalidEntry", True)
    c["entry_offsets_three"] = (raw_file(hdr({"a": entry(offsets=(0, 4, 8))}), F4), "invalidEntry", True)
    c["entry_offsets_negative"] = (raw_file(hdr({"a": entry(offsets=(-4, 0))}), F4), "invalidEntry", True)
    c["entry_duplicate_field"] = (raw_file('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', F4),
                                  "invalidEntry", True)
    c["dtype_unknown"] = (raw_file(hdr({"a": entry(dtype="F33")}), F4), "unknownDType", True)
    # A real safetensors dtype this reader does not support: the reference accepts the file.
    c["dtype_unsupported"] = (raw_file(hdr({"a": entry(dtype="F8_E4M3", offsets=(0, 1))}), b"\x01"),
                              "unknownDType", False)
    c["size_mismatch"] = (raw_file(hdr({"a": entry(shape=(2,), offsets=(0, 12))}), F4 * 3), "sizeMismatch", True)
    c["shape_overflow"] = (raw_file(hdr({"a": entry(shape=(2**62, 2**62), offsets=(0, 4))}), F4), "shapeOverflow", True)
    c["offsets_reversed"] = (raw_file(hdr({"a": entry(offsets=(4, 0))}), F4), "offsetsReversed", True)
    c["offsets_out_of_bounds"] = (raw_file(hdr({"a": entry(shape=(4,), offsets=(0, 16))}), F4 * 2), "offsetsOutOfBounds", True)
    c["offsets_overlap"] = (raw_file(hdr({"a": entry(shape=(2,), offsets=(0, 8)), "b": entry(shape=(2,), offsets=(4, 12))}), F4 * 3),
                            "overlappingTensors", True)
    c["offsets_gap_between"] = (raw_file(hdr({"a": entry(offsets=(0, 4)), "b": entry(offsets=(8, 12))}), F4 * 3),
                                "gapBeforeTensor", True)
    c["offsets_gap_at_start"] = (raw_file(hdr({"a": entry(offsets=(4, 8))}), F4 * 2), "gapBeforeTensor", True)
    c["trailing_bytes"] = (raw_file(hdr({"a": entry(offsets=(0, 4))}), F4 * 2), "trailingBytes", True)
    c["no_tensors_trailing_bytes"] = (raw_file("{}", F4), "trailingBytes", True)
    # The reference keeps the last entry of a duplicated name and accepts this file; we reject it.
    c["duplicate_name"] = (raw_file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                    '"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', F4), "duplicateName", False)
    c["duplicate_name_escaped"] = (raw_file('{"ab":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                            '"\\u0061b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', F4),
                                   "duplicateName", False)
    c["metadata_not_object"] = (raw_file(hdr({"__metadata__": ["x"], "a": entry()}), F4), "invalidMetadata", True)
    c["metadata_not_strings"] = (raw_file(hdr({"__metadata__": {"epoch": 3}, "a": entry()}), F4), "invalidMetadata", True)
    return c


def reference_rejects(path):
    try:
        with safe_open(path, "pt") as f:
            for k in f.keys():
                f.get_tensor(k)
        return False
    except Exception:
        return True


def malformed():
    d = os.path.join(OUT, "malformed")
    os.makedirs(d, exist_ok=True)
    manifest = {}
    for name, (blob, error, rejects) in sorted(malformed_cases().items()):
        path = os.path.join(d, name + ".safetensors")
        with open(path, "wb") as fp:
            fp.write(blob)
        got = reference_rejects(path)
        if got != rejects:
            sys.exit(f"{name}: python safetensors {'rejects' if got else 'accepts'} it, expected the opposite")
        manifest[name + ".safetensors"] = {"error": error, "reference_rejects": rejects}
    with open(os.path.join(OUT, "malformed.json"), "w") as fp:
        json.dump(manifest, fp, indent=1, sort_keys=True)


def check(path):
    tensors, metadata = swift_written_contents()
    with safe_open(path, "pt") as f:
        got_meta = f.metadata()
        names = set(f.keys())
        if names != set(tensors):
            sys.exit(f"{path}: tensor names {sorted(names)} != expected {sorted(tensors)}")
        for name, want in tensors.items():
            got = f.get_tensor(name)
            if got.dtype != want.dtype or got.shape != want.shape or not torch.equal(got, want):
                sys.exit(f"{path}: tensor {name!r}: got {got.dtype} {tuple(got.shape)} {got}, expected "
                         f"{want.dtype} {tuple(want.shape)} {want}")
    if got_meta != metadata:
        sys.exit(f"{path}: metadata {got_meta} != {metadata}")
    with open(path, "rb") as fp:
        ours = fp.read()
    if ours != save(tensors, metadata=metadata):
        sys.exit(f"{path}: contents are right but bytes differ from python safetensors' serialization")
    print(f"{path}: OK ({len(tensors)} tensors and metadata match python safetensors, byte-identical)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="FILE", help="verify a file written by the Swift writer")
    args = ap.parse_args()
    if args.check:
        check(args.check)
        return
    os.makedirs(OUT, exist_ok=True)
    all_dtypes()
    unaligned()
    python_reference()
    malformed()
    print(f"wrote fixtures to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
