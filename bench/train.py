"""Does the data pipeline keep the model fed? One training epoch on real exported
images against the same model on synthetic tensors already on the device.

    .venv/bin/python bench/train.py [--quick] [--export DIR] [--arch resnet50] ...

Real: the trainer's own path (uint8 cache -> batch gather -> normalise -> random
resized crop + flip on the device -> step). Synthetic: the same steps on one
pre-made batch that never leaves the device, so only the model runs. The ratio
real/synthetic shows how much the input pipeline costs; 1.0 means none. Also
printed: how fast the cache is built (JPEG decode, once per export) and the
single-core decode rate, i.e. the ceiling a per-epoch decoding pipeline would have.
Without --export, an export is built from the real test photos (tests/train_export.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from synset_builder.train import augment  # noqa: E402
from synset_builder.train.cache import decode_square, load_split  # noqa: E402
from synset_builder.train.config import TrainConfig  # noqa: E402
from synset_builder.train.export_reader import open_export  # noqa: E402
from synset_builder.train.loop import device_name, make_optimizer, pick_device, train_step  # noqa: E402
from synset_builder.train.resnet import build_model  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small CPU-sized run")
    ap.add_argument("--export", type=Path, help="an existing export (default: built from photos)")
    ap.add_argument("--classes", type=int, default=None, help="classes of the built export")
    ap.add_argument(
        "--photos",
        type=Path,
        default=ROOT.parent / "shared" / "testdata" / "photos",
        help="photos to build the export from (default: ../shared/testdata/photos)",
    )
    ap.add_argument("--arch", default=None)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--min-steps", type=int, default=None, help="steps per timed epoch")
    ap.add_argument("--rounds", type=int, default=None, help="synthetic/real epoch pairs")
    args = ap.parse_args()

    device = pick_device(args.device)
    gpu = device.type == "cuda"
    arch = args.arch or ("resnet50" if gpu else "resnet18")
    size = args.image_size or (224 if gpu else 64)
    batch = args.batch_size or (256 if gpu else 32)
    classes = args.classes or (20 if args.quick else 143)
    args.rounds = args.rounds or (3 if args.quick else 5)
    if gpu:
        torch.backends.cudnn.benchmark = True

    tmp = tempfile.TemporaryDirectory(prefix="bench-train-")
    export_dir = args.export
    if export_dir is None:
        from tests.train_export import build_export

        photos = sorted(args.photos.glob("*.JPEG"))
        # Real photos at a realistic size: most exports keep sides around 400-500 px.
        export_dir = build_export(photos, Path(tmp.name) / "export", classes, side=400).root
    export = open_export(export_dir)
    cfg = TrainConfig(arch=arch, image_size=size, batch_size=batch, width=args.width,
                      device=device.type, workers=args.workers, progress=False)  # fmt: skip

    t0 = time.perf_counter()
    cache = load_split(export, "train", size, Path(tmp.name) / "cache", workers=args.workers,
                       progress=False)  # fmt: skip
    build_s = time.perf_counter() - t0
    raw = [
        data
        for _, data in zip(
            range(64), (d for _, d in export.format.read(export.root, "train")), strict=False
        )
    ]
    t0 = time.perf_counter()
    for data in raw:
        decode_square(data, round(size / 0.875))
    decode_rate = len(raw) / (time.perf_counter() - t0)

    torch.manual_seed(0)
    model = build_model(arch, len(export.classes), args.width).to(
        device, memory_format=torch.channels_last
    )
    step_model = torch.compile(model) if args.compile else model
    optimizer = make_optimizer(model, cfg)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    feeder = augment.Feeder(cache.images, cache.labels, device)
    gen = torch.Generator().manual_seed(0)
    # Enough steps to time (a small export is passed over several times per "epoch").
    min_steps = args.min_steps or (50 if gpu else 6)
    batches: list = []
    while len(batches) < min_steps:
        batches += augment.epoch_batches(len(cache), batch, gen)
    n_img = sum(len(b) for b in batches)
    n = min(batch, len(cache))
    x_syn = torch.randn(n, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    y_syn = torch.randint(0, len(export.classes), (n,), device=device)

    def synthetic() -> float:
        sync(device)
        t = time.perf_counter()
        for _ in batches:
            train_step(step_model, optimizer, criterion, x_syn, y_syn, device)
        sync(device)
        return n_img / (time.perf_counter() - t)

    def real() -> float:
        sync(device)
        t = time.perf_counter()
        for x, y in feeder.batches(batches):
            xb = augment.train_view(augment.normalize(x), augment.crop_params(len(y), gen), size)
            train_step(step_model, optimizer, criterion, xb, y, device)
        sync(device)
        return n_img / (time.perf_counter() - t)

    def pipeline_only() -> float:
        t = time.perf_counter()
        for x, y in feeder.batches(batches):
            augment.train_view(augment.normalize(x), augment.crop_params(len(y), gen), size)
        sync(device)
        return n_img / (time.perf_counter() - t)

    model.train()
    for _ in range(3):  # warm-up: allocator, cudnn autotune, compile
        train_step(step_model, optimizer, criterion, x_syn, y_syn, device)
    # Shared, noisy machines: alternate the two and keep the best epoch of each.
    syn_rates, real_rates = [], []
    for _ in range(args.rounds):
        syn_rates.append(synthetic())
        real_rates.append(real())
    syn_rate, real_rate = max(syn_rates), max(real_rates)
    per_round = [r / y for r, y in zip(real_rates, syn_rates, strict=True)]
    feed_rate = max(pipeline_only() for _ in range(3))
    result = {
        "device": device_name(device), "arch": arch, "width": args.width, "image_size": size,
        "batch_size": batch, "train_images": len(cache), "steps": len(batches),
        "real_images_per_s": round(real_rate, 1), "synthetic_images_per_s": round(syn_rate, 1),
        "ratio": round(real_rate / syn_rate, 3),
        "ratio_per_round": [round(r, 3) for r in per_round],
        "ratio_median": round(statistics.median(per_round), 3),
        "input_pipeline_only_images_per_s": round(feed_rate, 1),
        # What the ratio would be if the input work ran on the model's own cores (CPU case).
        "ratio_from_components": round(1 / (1 + syn_rate / feed_rate), 3),
        "cache_build_images_per_s": round(len(cache) / build_s, 1),
        "jpeg_decode_images_per_s_one_core": round(decode_rate, 1),
    }  # fmt: skip
    print(f"{arch} (width {args.width}) at {size} px, batch {batch}, on {result['device']}")
    print(f"  real data epoch      {real_rate:9.1f} images/s")
    print(f"  synthetic on device  {syn_rate:9.1f} images/s")
    print(f"  ratio real/synthetic {result['ratio']:9.3f}")
    print(f"  median round ratio   {result['ratio_median']:9.3f}")
    print(f"  input pipeline alone {feed_rate:9.1f} images/s")
    print(f"  cache build (once)   {result['cache_build_images_per_s']:9.1f} images/s")
    print(f"  JPEG decode, 1 core  {decode_rate:9.1f} images/s")
    print(json.dumps(result))
    tmp.cleanup()


if __name__ == "__main__":
    main()
