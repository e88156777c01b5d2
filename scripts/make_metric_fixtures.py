#!/usr/bin/env python3
"""Reference values for the caption metrics (Tests/Fixtures/metrics/*.json).

The oracles are the real implementations: pycocoevalcap (its Stanford PTBTokenizer, run on java, and
its Bleu / Rouge / Cider scorers, exactly as COCOEvalCap.evaluate calls them) and nltk's corpus_bleu
(the sgrvinod tutorial's BLEU-4). Nothing is installed here; run with a Python that has both:

    /tmp/venv/bin/pip install pycocoevalcap nltk     # once, outside the repository
    /tmp/venv/bin/python scripts/make_metric_fixtures.py

Everything is drawn from a fixed-seed random.Random, so rerunning rewrites the same files.

Files written:
  coco_parity.json   ~50 images × 5 raw references + 1 raw hypothesis, their PTB-tokenised forms,
                     overall and per-image BLEU-1..4 / ROUGE-L / CIDEr-D.
  edge_cases.json    small pre-tokenised sets that hit the scorers' corner cases (empty hypothesis,
                     one-word sentences, one image, no overlap), scored without the tokenizer.
  ptb_cases.json     plain captions and what PTBTokenizer + pycocoevalcap's punctuation filter give.
  ptb_batch.json     captions tokenised as one batch, where the lexer looks across line ends.
  nltk_bleu.json     token-list corpora and nltk corpus_bleu (default weights, no smoothing).
  captions_val.json, results.json, expected_cli.json
                     a COCO annotation file and results file for `caption metrics`, and its output.
"""
import contextlib
import io
import json
import os
import random
import tempfile
import warnings

from nltk.translate.bleu_score import corpus_bleu
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from pycocotools.coco import COCO

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "metrics")

COLOURS = ["red", "green", "blue", "yellow", "white", "black", "brown", "orange"]
SUBJECTS = ["man", "woman", "dog", "cat", "child", "bird", "horse", "train", "bus", "giraffe"]
VERBS = ["sitting on", "standing next to", "riding", "walking along", "looking at", "playing with",
         "lying in", "running across", "parked near", "eating from"]
PLACES = ["table", "beach", "street", "field", "grass", "bench", "bed", "road", "kitchen", "snow"]
EXTRAS = ["in the sun", "at night", "with a frisbee", "near the water", "on a cloudy day",
          "in front of a building", "next to a fence", "under a tree"]


def sentence(rng, scene):
    """One reference-like sentence about a scene (subject, colour, verb, place, extra)."""
    subj, col, verb, place, extra = scene
    det = rng.choice(["a", "the", "one"])
    words = [det]
    if rng.random() < 0.6:
        words.append(col)
    words.append(subj)
    if rng.random() < 0.3:
        words += ["that", "is"]
    words += verb.split()
    words += [rng.choice(["a", "the"])]
    if rng.random() < 0.3:
        words.append(rng.choice(COLOURS))
    words.append(place)
    if rng.random() < 0.5:
        words += extra.split()
    return words


def decorate(rng, words):
    """Raw-caption surface forms the PTB tokenizer must undo: capitals, punctuation, contractions."""
    words = list(words)
    r = rng.random()
    if r < 0.15 and len(words) > 3:
        words[1] = words[1] + ","
    elif r < 0.25:
        words = ["there's"] + words
    elif r < 0.32 and len(words) > 2:
        words[1] = words[1] + "'s"
    text = " ".join(words)
    if rng.random() < 0.08:
        # Ends in a one-letter abbreviation: PTB splits its period only before a sentence-like next line.
        text += " with the letter " + rng.choice("abcxyzABM")
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    end = rng.random()
    if end < 0.4:
        text += "."
    elif end < 0.5:
        text += " ."
    elif end < 0.55:
        text += "!"
    if rng.random() < 0.1:
        text = "  " + text + "  "
    return text


def hypothesis(rng, refs_words, kind, scene):
    base = list(rng.choice(refs_words))
    if kind == "copy":
        return base
    if kind == "drop":
        keep = [w for w in base if rng.random() < 0.7]
        return keep or base[:1]
    if kind == "substitute":
        return [rng.choice(SUBJECTS + PLACES + COLOURS) if rng.random() < 0.3 else w for w in base]
    if kind == "repeat":
        return base[:2] + [base[1]] * rng.randint(2, 5) + base[2:4]
    if kind == "shuffle":
        rng.shuffle(base)
        return base
    if kind == "short":
        return base[: rng.randint(1, 3)]
    if kind == "long":
        return base + sentence(rng, scene)[1:]
    if kind == "unrelated":
        return ["zebra", "umbrella", "skateboard", "pizza", "laptop"][: rng.randint(2, 5)]
    raise ValueError(kind)


KINDS = ["copy", "drop", "substitute", "repeat", "shuffle", "short", "long", "unrelated"]


def coco_score(gts, res):
    """Exactly COCOEvalCap.evaluate's scorer calls on tokenised {id: [str]} dicts (minus METEOR/SPICE)."""
    overall, per_image = {}, {i: {} for i in gts}
    bleu, bleus = Bleu(4).compute_score(gts, res, verbose=0)
    for k in range(4):
        overall[f"BLEU-{k + 1}"] = bleu[k]
        for i, s in zip(gts.keys(), bleus[k]):
            per_image[i][f"BLEU-{k + 1}"] = s
    for name, scorer in [("ROUGE-L", Rouge()), ("CIDEr-D", Cider())]:
        score, scores = scorer.compute_score(gts, res)
        overall[name] = float(score)
        for i, s in zip(gts.keys(), scores):
            per_image[i][name] = float(s)
    return overall, per_image


def tokenize(captions_by_id):
    """pycocoevalcap's PTBTokenizer on {id: [raw str]}; returns {id: [tokenised str]}."""
    wrapped = {i: [{"caption": c} for c in caps] for i, caps in captions_by_id.items()}
    return PTBTokenizer().tokenize(wrapped)


def make_coco_parity(rng):
    images = []
    ids = sorted(rng.sample(range(1, 600000), 50))
    for n, image_id in enumerate(ids):
        scene = (rng.choice(SUBJECTS), rng.choice(COLOURS), rng.choice(VERBS), rng.choice(PLACES),
                 rng.choice(EXTRAS))
        refs_words = [sentence(rng, scene) for _ in range(5)]
        kind = KINDS[n % len(KINDS)]
        hyp_words = hypothesis(rng, refs_words, kind, scene)
        images.append({
            "image_id": image_id,
            "kind": kind,
            "refs_raw": [decorate(rng, w) for w in refs_words],
            "hyp_raw": decorate(rng, hyp_words),
        })
    gts = tokenize({im["image_id"]: im["refs_raw"] for im in images})
    res = tokenize({im["image_id"]: [im["hyp_raw"]] for im in images})
    for im in images:
        im["refs"] = gts[im["image_id"]]
        im["hyp"] = res[im["image_id"]][0]
    overall, per_image = coco_score(gts, res)
    for im in images:
        im["scores"] = per_image[im["image_id"]]
    return {"images": images, "overall": overall}


def make_edge_cases():
    """Pre-tokenised sets (no tokenizer), each scored as one evaluation."""
    sets = {
        "empty_hypothesis": {
            1: (["a red circle above a blue square", "a red circle", "two shapes"], ""),
            2: (["a green star", "a star that is green"], "a green star"),
        },
        "one_word_sentences": {
            1: (["circle", "a circle", "red"], "circle"),
            2: (["square", "blue square"], "square"),
            3: (["star", "a star"], "triangle"),
        },
        "single_image": {
            7: (["a man riding a horse", "a person on a horse", "horse riding"], "a man on a horse"),
        },
        "no_overlap": {
            1: (["a cat on a mat", "the cat sits on the mat"], "zebra umbrella laptop"),
            2: (["a dog in the park", "the dog runs"], "pizza"),
        },
        "repeated_words": {
            1: (["the the the cat", "a cat on the mat"], "the the the the the the the"),
            2: (["a dog a dog a dog", "dogs"], "a dog a dog a dog a dog"),
            3: (["two red circles", "a pair of red circles"], "red red circles circles"),
        },
        "long_hypothesis": {
            1: (["a bus", "a red bus on the street"],
                "a big red bus driving down a busy city street next to some tall buildings at night"),
            2: (["a train at a station", "the train"], "a train"),
        },
        "ties_in_closest_length": {
            1: (["one two three", "one two three four five"], "one two three four"),
            2: (["a b", "a b c d e f"], "a b c d"),
        },
    }
    out = {}
    for name, data in sets.items():
        gts = {i: refs for i, (refs, _) in data.items()}
        res = {i: [hyp] for i, (_, hyp) in data.items()}
        overall, per_image = coco_score(gts, res)
        out[name] = {
            "images": [{"image_id": i, "refs": gts[i], "hyp": res[i][0], "scores": per_image[i]} for i in gts],
            "overall": overall,
        }
    return out


PTB_INPUTS = [
    "A man riding a horse on a beach.",
    "A man's hat, on the table.",
    "Two dogs don't play outside!",
    "There's a cat on the bed .",
    "It's a black-and-white photo of a 3.5 inch cat; really?",
    "a  double  space   caption",
    "She said 'hello' to the kids' toys.",
    "A bus parked near a street: red, white and blue.",
    "I'm here, you're there, we've seen, they'll go, he'd know",
    "Can't won't cannot",
    "A dog at 10 pm with 1,000 balloons",
    "People's umbrellas -- on a rainy day...",
    "the   end",
    "Is that a bird?",
    "A train; a bus: a car, and a plane.",
    "\"Quoted\" words and 'single quoted' words",
    "An old-fashioned clock tower",
    "Two zebras grazing - in a field",
    "A CAT ON A MAT",
    "a red circle to the left of a blue square",
    "A cat (on a mat) and a [dog]",
    "Dr. Smith and Mr. Jones near the U.S. flag",
    "A dog?! In the snow",
    "a cat on a bench etc.",
    "A 3d-printed toy and a 4x4 truck",
    "The 1990's car and the rock'n'roll band",
    "A cat/dog hybrid & a $5 bill at 50%",
]


def make_ptb_cases():
    tokenised = tokenize({i: [c] for i, c in enumerate(PTB_INPUTS)})
    return [{"input": c, "tokens": tokenised[i][0]} for i, c in enumerate(PTB_INPUTS)]


def make_nltk_cases(rng):
    """corpus_bleu over token lists; the tutorial feeds word ids, the score only needs equality."""
    words = "a the red blue circle square star above below left of right two three small large".split()
    cases = []

    def rand_sentence(lo, hi):
        return [rng.choice(words) for _ in range(rng.randint(lo, hi))]

    corpora = {
        "random": [([rand_sentence(4, 12) for _ in range(5)], rand_sentence(3, 12)) for _ in range(40)],
        "short_hypotheses": [([rand_sentence(4, 9) for _ in range(3)], rand_sentence(1, 3)) for _ in range(10)],
        "no_unigram_match": [([["a", "b", "c"]], ["x", "y", "z"])],
        "no_fourgram_match": [([["a", "red", "circle", "above", "a", "blue", "square"]],
                               ["a", "red", "circle", "below", "a", "blue", "square"])],
        "perfect": [([["a", "red", "circle", "above", "a", "blue", "square"], ["a", "red", "circle"]],
                     ["a", "red", "circle", "above", "a", "blue", "square"])],
    }
    copy_refs = [([rand_sentence(5, 10) for _ in range(4)], None) for _ in range(20)]
    corpora["mostly_copies"] = [(refs, list(refs[0]) if i % 3 else rand_sentence(5, 10))
                                for i, (refs, _) in enumerate(copy_refs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # method0's "0 counts of n-gram overlaps" warning
        for name, pairs in corpora.items():
            refs = [r for r, _ in pairs]
            hyps = [h for _, h in pairs]
            cases.append({"name": name, "references": refs, "hypotheses": hyps,
                          "bleu4": float(corpus_bleu(refs, hyps))})
    return cases


PTB_BATCH = [
    "A sign with the letter b.", "The dog runs.", "a plate labelled a.", "two cats",
    "Letter Z.", "THE END", "x B. However it rains", "the letter c.", "  There's a dog",
    "the letter d.", "Many birds", "the letter e.", "An apple", "a word x.", "",
    "Another one", "final letter q.",
]


def make_ptb_batch():
    """Captions tokenised together (one per line), where the lexer's look-ahead crosses lines."""
    tokenised = tokenize({0: PTB_BATCH})
    return {"captions": PTB_BATCH, "tokens": tokenised[0]}


def make_cli_case(parity):
    """A COCO annotation file and a results file (a subset of its images) for `caption metrics`,
    scored as the coco-caption example does: COCO(annotations), loadRes(results), the results'
    image ids in the annotation file's order, then COCOEvalCap's tokenizer and scorers."""
    images = parity["images"][:20]
    annotations = {
        "info": {"description": "metrics fixture"},
        "images": [{"id": im["image_id"], "file_name": f"{im['image_id']:012d}.jpg", "width": 64, "height": 64}
                   for im in parity["images"][:25]],
        "annotations": [],
    }
    ann_id = 1
    for im in parity["images"][:25]:
        for r in im["refs_raw"]:
            annotations["annotations"].append({"id": ann_id, "image_id": im["image_id"], "caption": r})
            ann_id += 1
    # The annotation file lists images in a shuffled order, so the batch order is not ascending ids.
    order = list(annotations["images"])
    random.Random(7).shuffle(order)
    annotations["images"] = order
    results = [{"image_id": im["image_id"], "caption": im["hyp_raw"]} for im in reversed(images)]
    with tempfile.TemporaryDirectory() as tmp:
        ann_path, res_path = os.path.join(tmp, "ann.json"), os.path.join(tmp, "res.json")
        json.dump(annotations, open(ann_path, "w"))
        json.dump(results, open(res_path, "w"))
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(ann_path)
            coco_res = coco.loadRes(res_path)
    image_ids = coco_res.getImgIds()
    gts = PTBTokenizer().tokenize({i: coco.imgToAnns[i] for i in image_ids})
    res = PTBTokenizer().tokenize({i: coco_res.imgToAnns[i] for i in image_ids})
    overall, _ = coco_score(gts, res)
    overall["images"] = len(images)
    return annotations, results, overall


def write(name, value):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(value, f, indent=1, sort_keys=False)
        f.write("\n")
    print("wrote", os.path.relpath(path))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(20240605)
    parity = make_coco_parity(rng)
    write("coco_parity.json", parity)
    write("edge_cases.json", make_edge_cases())
    write("ptb_cases.json", make_ptb_cases())
    write("ptb_batch.json", make_ptb_batch())
    write("nltk_bleu.json", make_nltk_cases(rng))
    annotations, results, expected = make_cli_case(parity)
    write("captions_val.json", annotations)
    write("results.json", results)
    write("expected_cli.json", expected)
    print("overall:", json.dumps(parity["overall"]))


if __name__ == "__main__":
    main()
