#!/usr/bin/env python3
"""Tiny dataset folders for the Captioning data tests (Tests/Fixtures/data/), standard library only.

    python3 scripts/make_data_fixtures.py

coco/      annotations/captions_{train,val}.json with images found in each accepted place:
           images/<file_name>, <split>/<file_name>, and a file_name that is a path from the folder.
           One image carries a synthetic-style `objects` list.
karpathy/  dataset_coco.json (splits train, restval, val, test; images under <filepath>/) and
           wordmap_min1.json: the word map the sgrvinod tutorial's create_input_files builds from it
           with min_word_freq=1 (the oracle for Vocabulary.build: first-seen order, count > min).
missing/   a COCO folder whose annotation file names an image that is not there.

Image files are 2×2 PNGs written with zlib (the loaders only check that they exist).
"""
import json
import os
import struct
import zlib
from collections import Counter

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "data")


def png_2x2(rgb):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(rgb) * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def write_png(path, rgb=(200, 30, 30)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(png_2x2(rgb))


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(path))


def coco_folder():
    base = os.path.join(ROOT, "coco")
    train = {
        "info": {"description": "data loader fixture"},
        "images": [
            {"id": 11, "file_name": "a.png", "width": 2, "height": 2,
             "objects": [{"shape": "circle", "color": "red", "size": "small", "bbox": [0, 0, 1, 1]},
                         {"shape": "square", "color": "blue", "size": "large", "bbox": [1, 0, 1, 2]}]},
            {"id": 12, "file_name": "b.png", "width": 2, "height": 2},
            {"id": 13, "file_name": "images/nested/c.png", "width": 2, "height": 2},
        ],
        "annotations": [
            {"id": 1, "image_id": 11, "caption": "A small red circle left of a blue square."},
            {"id": 2, "image_id": 12, "caption": "Two green stars"},
            {"id": 3, "image_id": 11, "caption": "a red circle and a large blue square"},
            {"id": 4, "image_id": 13, "caption": "A man's hat, on the TABLE!"},
            {"id": 5, "image_id": 12, "caption": "there are two green stars"},
        ],
    }
    val = {
        "images": [{"id": 21, "file_name": "d.png", "width": 2, "height": 2}],
        "annotations": [{"id": 6, "image_id": 21, "caption": "a yellow triangle"},
                        {"id": 7, "image_id": 21, "caption": "one yellow triangle above nothing"}],
    }
    write_json(os.path.join(base, "annotations", "captions_train.json"), train)
    write_json(os.path.join(base, "annotations", "captions_val.json"), val)
    write_png(os.path.join(base, "images", "a.png"))
    write_png(os.path.join(base, "train", "b.png"))
    write_png(os.path.join(base, "images", "nested", "c.png"))
    write_png(os.path.join(base, "val", "d.png"))


def karpathy_folder():
    base = os.path.join(ROOT, "karpathy")
    sentences = {
        "train": [["a", "red", "circle", "above", "a", "blue", "square"], ["a", "red", "circle"],
                  ["two", "blue", "squares"]],
        "restval": [["a", "green", "star"], ["a", "star", "that", "is", "green"]],
        "val": [["a", "red", "square"], ["the", "square", "is", "red"]],
        "test": [["a", "blue", "circle", "below", "a", "red", "star"], ["blue", "circle"]],
    }
    images = []
    for n, (split, sents) in enumerate(sentences.items()):
        folder = "val2014" if split in ("val", "test") else "train2014"
        name = f"COCO_{folder}_{n:012d}.jpg"
        images.append({
            "filepath": folder, "filename": name, "imgid": n, "cocoid": 100 + n, "split": split,
            "sentids": list(range(10 * n, 10 * n + len(sents))),
            "sentences": [{"tokens": t, "raw": " ".join(t).capitalize() + ".", "imgid": n, "sentid": 10 * n + i}
                          for i, t in enumerate(sents)],
        })
        write_png(os.path.join(base, folder, name))
    write_json(os.path.join(base, "dataset_coco.json"), {"dataset": "coco", "images": images})

    # The tutorial's create_input_files word map, verbatim in logic.
    word_freq = Counter()
    for img in images:
        for c in img["sentences"]:
            word_freq.update(c["tokens"])
    min_word_freq = 1
    words = [w for w in word_freq.keys() if word_freq[w] > min_word_freq]
    word_map = {k: v + 1 for v, k in enumerate(words)}
    word_map["<unk>"] = len(word_map) + 1
    word_map["<start>"] = len(word_map) + 1
    word_map["<end>"] = len(word_map) + 1
    word_map["<pad>"] = 0
    write_json(os.path.join(base, "wordmap_min1.json"), word_map)


def missing_folder():
    base = os.path.join(ROOT, "missing")
    write_json(os.path.join(base, "annotations", "captions_train.json"), {
        "images": [{"id": 1, "file_name": "present.png"}, {"id": 2, "file_name": "absent.png"},
                   {"id": 3, "file_name": "also_absent.png"}],
        "annotations": [{"id": 1, "image_id": 1, "caption": "a red circle"},
                        {"id": 2, "image_id": 2, "caption": "a blue square"},
                        {"id": 3, "image_id": 3, "caption": "a green star"}],
    })
    write_png(os.path.join(base, "images", "present.png"))


if __name__ == "__main__":
    coco_folder()
    karpathy_folder()
    missing_folder()
