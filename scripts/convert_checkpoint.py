#!/usr/bin/env python3
"""Convert PyTorch checkpoints into a `caption` model folder.

    python3 scripts/convert_checkpoint.py CHECKPOINT [--word-map WORDMAP.json]
                                          [--arch resnet101|resnet50|...|vgg19] [--dtype f32|f16] --out DIR

Accepted inputs
  * a sgrvinod-tutorial checkpoint (`BEST_checkpoint_*.pth.tar`): a dict whose 'encoder' and
    'decoder' entries are pickled `models.Encoder` / `models.DecoderWithAttention` objects. The
    tutorial's code is NOT needed: its classes are unpickled into stand-in modules that only carry
    the parameters.
  * the same dict holding state_dicts instead of objects ('encoder' / 'decoder', or
    'encoder_state_dict' / 'decoder_state_dict').
  * a torchvision ResNet-18/34/50/101/152 or VGG-16/19(_bn) state_dict (`.pth`): an encoder-only
    folder, usable by `caption features`.

The model folder (see README, "Model file format")
  config.json           architecture and preprocessing
  encoder.safetensors   the CNN's tensors, names exactly as in the PyTorch state_dict
                        (torchvision `layer1.0.conv1.weight` or the tutorial's `resnet.4.0.conv1.weight`)
  decoder.safetensors   the tutorial decoder's tensors, names as in `DecoderWithAttention`
  vocab.json            the WORDMAP (word -> index), when a decoder is present
"""
import argparse
import json
import os
import pickle
import re
import sys
import tempfile

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
RESNET_BLOCKS = {  # blocks per stage, bottleneck? -> name
    ((2, 2, 2, 2), False): "resnet18",
    ((3, 4, 6, 3), False): "resnet34",
    ((3, 4, 6, 3), True): "resnet50",
    ((3, 4, 23, 3), True): "resnet101",
    ((3, 8, 36, 3), True): "resnet152",
}


class ConversionError(Exception):
    pass


def load_checkpoint(path):
    """torch.load that tolerates pickled tutorial objects without the tutorial's `models` module."""
    import torch
    from torch import nn

    class StandIn(nn.Module):
        """Receives a pickled nn.Module's __dict__ (its _parameters, _buffers, _modules)."""

        def forward(self, *args):  # pragma: no cover - never called
            raise RuntimeError("stand-in module")

    stand_ins = {}

    class StandInUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                # The tutorial's models.Encoder / models.Attention / models.DecoderWithAttention,
                # or any other project class: a fresh nn.Module subclass with the same name.
                key = (module, name)
                if key not in stand_ins:
                    stand_ins[key] = type(name, (StandIn,), {"__module__": "caption_standin." + module})
                return stand_ins[key]

    class PickleModule:
        __name__ = "caption_pickle"
        Unpickler = StandInUnpickler
        load = pickle.load

    try:
        return torch.load(path, map_location="cpu", pickle_module=PickleModule, weights_only=False)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file")
    except Exception as e:  # corrupt archive, not a torch file, ...
        raise ConversionError(f"{path}: cannot load as a PyTorch checkpoint ({type(e).__name__}: {e})")


def as_state_dict(obj, what, path):
    import torch
    from torch import nn
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    raise ConversionError(f"{path}: '{what}' is neither a module nor a state_dict ({type(obj).__name__})")


def strip_prefix(sd):
    """Remove DataParallel's `module.` prefix."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def infer_encoder(sd):
    """(arch, naming) from the tensor names; naming is 'torchvision' or 'tutorial'."""
    keys = set(sd)
    if any(k.startswith("resnet.") for k in keys):
        prefix, naming = "resnet.{}.", "tutorial"
        stages = [4, 5, 6, 7]
    elif "conv1.weight" in keys and any(k.startswith("layer1.") for k in keys):
        prefix, naming = "layer{}.", "torchvision"
        stages = [1, 2, 3, 4]
    elif any(k.startswith("features.") for k in keys):
        convs = sorted({int(m.group(1)) for k in keys for m in [re.match(r"features\.(\d+)\.weight$", k)]
                        if m and sd[k].dim() == 4})
        bn = any(re.match(r"features\.\d+\.running_mean$", k) for k in keys)
        arch = {13: "vgg16", 16: "vgg19"}.get(len(convs))
        if arch is None:
            raise ConversionError(f"a VGG with {len(convs)} conv layers is not supported (need 13 or 16)")
        return arch + ("_bn" if bn else ""), "torchvision"
    else:
        raise ConversionError("cannot recognise the encoder: no ResNet (conv1/layerN or resnet.N) or VGG (features.N) tensors")
    blocks, bottleneck = [], False
    for s in stages:
        p = prefix.format(s)
        idx = {int(k[len(p):].split(".")[0]) for k in keys if k.startswith(p)}
        blocks.append(len(idx))
        bottleneck = bottleneck or any(k.startswith(p) and ".conv3." in k for k in keys)
    arch = RESNET_BLOCKS.get((tuple(blocks), bottleneck))
    if arch is None:
        raise ConversionError(f"unknown ResNet layout: blocks {blocks}, bottleneck={bottleneck}")
    return arch, naming


def infer_decoder(sd, word_map):
    need = ["attention.encoder_att.weight", "attention.decoder_att.weight", "attention.full_att.weight",
            "embedding.weight", "decode_step.weight_ih", "decode_step.weight_hh", "init_h.weight",
            "init_c.weight", "f_beta.weight", "fc.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise ConversionError(f"decoder is missing tensors: {', '.join(missing)}")
    attention_dim, encoder_dim = sd["attention.encoder_att.weight"].shape
    vocab_size, embed_dim = sd["embedding.weight"].shape
    decoder_dim = sd["init_h.weight"].shape[0]
    if word_map is not None and len(word_map) != vocab_size:
        raise ConversionError(f"word map has {len(word_map)} entries but the decoder's vocabulary is {vocab_size}")
    return {
        "type": "attention-lstm",
        "weights": "decoder.safetensors",
        "encoder_dim": int(encoder_dim),
        "attention_dim": int(attention_dim),
        "embed_dim": int(embed_dim),
        "decoder_dim": int(decoder_dim),
        "vocab_size": int(vocab_size),
        "dropout": 0.5,
        "attention": "relu",
        "gate": "vector",
    }


def save_safetensors(sd, path, metadata=None, dtype="f32"):
    """Floating-point tensors as float32, or as float16 (`dtype` "f16": half the file, and a decoder stored in F16
    decodes from its half weights, see HalfStepWeights); integer buffers (num_batches_tracked) unchanged."""
    from safetensors.torch import save_file
    import torch
    target = torch.float16 if dtype == "f16" else torch.float32
    tensors = {k: (v.detach().to(target) if v.is_floating_point() else v.detach()).contiguous().clone()
               for k, v in sd.items()}
    save_file(tensors, path, metadata=metadata)


def convert(checkpoint, word_map_path, arch, out, dtype="f32"):
    obj = load_checkpoint(checkpoint)
    encoder_sd = decoder_sd = None
    if isinstance(obj, dict) and ("encoder" in obj or "encoder_state_dict" in obj):
        enc = obj.get("encoder", obj.get("encoder_state_dict"))
        dec = obj.get("decoder", obj.get("decoder_state_dict"))
        encoder_sd = strip_prefix(as_state_dict(enc, "encoder", checkpoint))
        if dec is not None:
            decoder_sd = strip_prefix(as_state_dict(dec, "decoder", checkpoint))
    else:
        if isinstance(obj, dict) and "state_dict" in obj:
            obj = obj["state_dict"]
        encoder_sd = strip_prefix(as_state_dict(obj, "state_dict", checkpoint))

    # A classifier head (fc / classifier) is not part of the feature extractor.
    encoder_sd = {k: v for k, v in encoder_sd.items()
                  if not k.startswith(("fc.", "classifier.", "adaptive_pool."))}
    try:
        inferred, naming = infer_encoder(encoder_sd)
    except ConversionError as e:
        raise ConversionError(f"{checkpoint}: {e}")
    if arch and arch != inferred:
        raise ConversionError(f"{checkpoint}: --arch {arch} given but the tensors are a {inferred}")
    arch = inferred

    word_map = None
    if decoder_sd is not None:
        if not word_map_path:
            raise ConversionError(f"{checkpoint}: has a decoder; pass its WORDMAP json with --word-map")
        try:
            with open(word_map_path) as f:
                word_map = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ConversionError(f"{word_map_path}: {e}")
        for tok in ("<pad>", "<unk>", "<start>", "<end>"):
            if tok not in word_map:
                raise ConversionError(f"{word_map_path}: word map has no {tok}")

    is_vgg = arch.startswith("vgg")
    tutorial = decoder_sd is not None
    config = {
        "format": "caption-model",
        "version": 1,
        "encoder": {
            "arch": arch,
            "weights": "encoder.safetensors",
            "naming": naming,
            # The tutorial pools ResNet's last map to 14×14; torchvision VGG's conv5_4 at 224 is 14×14 already.
            "pool": [14, 14] if (tutorial or not is_vgg) else None,
            "output": "conv5_4" if is_vgg else "layer4",
        },
        "preprocess": {
            "size": 256 if tutorial else 224,
            "resize": "bilinear",
            "center_crop": None,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
        },
        "source": os.path.basename(checkpoint),
    }
    files = {"encoder.safetensors": encoder_sd}
    if decoder_sd is not None:
        dec_cfg = infer_decoder(decoder_sd, word_map)
        enc_channels = 512 if is_vgg else (512 if arch in ("resnet18", "resnet34") else 2048)
        if dec_cfg["encoder_dim"] != enc_channels:
            raise ConversionError(f"{checkpoint}: decoder expects {dec_cfg['encoder_dim']}-d features but {arch} gives {enc_channels}")
        config["decoder"] = dec_cfg
        config["vocab"] = "vocab.json"
        config["max_length"] = 50
        files["decoder.safetensors"] = decoder_sd

    # Write into a temporary folder beside the target, then rename: never a half-written model.
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".convert-", dir=os.path.dirname(os.path.abspath(out)))
    os.chmod(tmp, 0o755)
    try:
        for name, sd in files.items():
            save_safetensors(sd, os.path.join(tmp, name), metadata={"source": os.path.basename(checkpoint)}, dtype=dtype)
            os.chmod(os.path.join(tmp, name), 0o644)
        if word_map is not None:
            with open(os.path.join(tmp, "vocab.json"), "w") as f:
                json.dump(word_map, f)
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        if os.path.isdir(out):
            for name in os.listdir(tmp):
                os.replace(os.path.join(tmp, name), os.path.join(out, name))
            os.rmdir(tmp)
        else:
            os.rename(tmp, out)
    except BaseException:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return config


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--word-map", help="the tutorial's WORDMAP_*.json (needed when the checkpoint has a decoder)")
    ap.add_argument("--arch", help="expected encoder architecture (inferred from the tensors; checked if given)")
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32",
                    help="storage of the weights (f16: half the size; decoding reads the halves directly)")
    ap.add_argument("--out", required=True, help="model folder to write")
    args = ap.parse_args(argv)
    try:
        config = convert(args.checkpoint, args.word_map, args.arch, args.out, args.dtype)
    except ConversionError as e:
        print(f"convert_checkpoint: error: {e}", file=sys.stderr)
        return 1
    parts = "encoder + decoder" if "decoder" in config else "encoder only"
    print(f"wrote {args.out}: {config['encoder']['arch']} ({parts})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
