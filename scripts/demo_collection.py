"""Lay out the demo's local image collection for `make run` (not part of the product).

The machines this project is developed on have no internet, so the demo cannot
crawl Openverse. Instead it imports the real photos of ../shared/testdata with
the `dir:` source: each photo is linked into the folder of the demo category
that is its WordNet ancestor (a whippet goes under "dog"), so every task page
shows a grid of real candidates for one category.
"""

from __future__ import annotations

import sys
from pathlib import Path

from synset_builder.config import load_settings
from synset_builder.hierarchy.targets import closure_up, resolve, wnid_of
from synset_builder.hierarchy.wordnet import load_wordnet


def main(photos: Path, out: Path, targets: list[str]) -> int:
    cfg = load_settings()
    wn = load_wordnet(cfg.nltk_data, cfg.data_dir, cfg.wordnet_dir)
    linked = 0
    for photo in sorted(photos.glob("*.JPEG")):
        node = resolve(wn, photo.name.split("_", 1)[0])
        lineage = {wnid_of(node)} | {wnid_of(a) for a in closure_up([node])}
        for target in targets:
            if target in lineage:
                folder = out / target
                folder.mkdir(parents=True, exist_ok=True)
                link = folder / photo.name
                if not link.exists():
                    link.symlink_to(photo.resolve())
                linked += 1
                break
    print(f"Demo collection: {linked} photos under {len(targets)} categories in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]))
