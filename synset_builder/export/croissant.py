"""``croissant.json``: the export described in MLCommons Croissant 1.0, with its RAI fields.

Dataset hubs (Hugging Face, Kaggle, OpenML) index and load datasets by this
file, so every export carries one: the files (``distribution``: each file that
is not an image with its sha256, the images as one file set per split), record
sets a loader can iterate (``classes``; ``manifest``, every row with its
licence, creator and source URL; one per split yielding each image with its
label), and the responsible-AI fields hubs show (collection, annotation, biases,
personal information, takedown). The text of those fields comes from what the
datasheet says, so the two never disagree.

Images of a split are read from the first image layout present: the
``imagefolder`` files (label and provenance joined from the manifest by path) or
the ``parquet`` files (columns as they are). WebDataset shards are listed, not
described record by record: Croissant 1.0 has no way to pair a shard's members.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from synset_builder.export.atomic import atomic_write
from synset_builder.export.folder import sha_file
from synset_builder.export.select import licence_family

NAME = "croissant.json"
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
# The @context every Croissant 1.0 file carries, as mlcroissant writes it (a
# different one is a warning to every consumer).
CONTEXT: dict[str, object] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
ENCODING = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".md": "text/markdown",
    ".parquet": "application/x-parquet",
    ".tar": "application/x-tar",
}
LICENCE_URLS = {
    "cc0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "pdm": "https://creativecommons.org/publicdomain/mark/1.0/",
    **{
        f: f"https://creativecommons.org/licenses/{f}/"
        for f in ("by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd")
    },
}
PROVENANCE = ("wnid", "sha256", "license", "creator", "url", "source")


@dataclass(frozen=True)
class Description:
    """What the file says beyond the files: counts and the datasheet's RAI text."""

    name: str
    summary: str
    created: str  # ISO date
    version: str
    contact: str
    licences: Mapping[str, int]  # licence as exported -> images
    rai: Mapping[str, object]


def licence_list(licences: Mapping[str, int]) -> list[str]:
    """The dataset's licences, commonest first: a Creative Commons URL where the family is
    one, else the text as the source gave it."""
    out: dict[str, None] = {}
    for text, _ in sorted(licences.items(), key=lambda kv: (-kv[1], kv[0])):
        if text:
            out[LICENCE_URLS.get(licence_family(text), text)] = None
    # An empty list reads as "no licence" (and mlcroissant warns): say what is known.
    if unknown := licences.get("", 0):
        out[f"{unknown} images have no recorded licence (see manifest.csv)"] = None
    return list(out)


def _field(rs: str, name: str, dtype: str, source: dict[str, object], **more: object) -> dict:
    return {"@type": "cr:Field", "@id": f"{rs}/{name}", "name": name, "dataType": dtype,
            "source": source, **more}  # fmt: skip


def _column(kind: str, ident: str, column: str) -> dict[str, object]:
    return {kind: {"@id": ident}, "extract": {"column": column}}


def _classes() -> dict[str, object]:
    def from_json(key: str) -> dict[str, object]:
        return {"fileObject": {"@id": "classes.json"}, "extract": {"jsonPath": f"$[*].{key}"}}

    return {
        "@type": "cr:RecordSet", "@id": "classes", "name": "classes",
        "description": "The classes; an image's label is its class's index.",
        "key": {"@id": "classes/index"},
        "field": [
            _field("classes", "index", "sc:Integer", from_json("index")),
            _field("classes", "wnid", "sc:Text", from_json("wnid")),
            _field("classes", "label", "sc:Text", from_json("label")),
            _field("classes", "gloss", "sc:Text", from_json("gloss")),
        ],
    }  # fmt: skip


def _manifest(keyed: bool) -> dict[str, object]:
    cols = [("path", "sc:Text"), ("split", "sc:Text"), ("class_index", "sc:Integer")]
    cols += [(c, "sc:Text") for c in PROVENANCE]
    rs: dict[str, object] = {
        "@type": "cr:RecordSet", "@id": "manifest", "name": "manifest",
        "description": "One row per exported file and label, with its provenance and licence.",
        "field": [_field("manifest", c, t, _column("fileObject", "manifest.csv", c))
                  for c, t in cols],
    }  # fmt: skip
    if keyed:  # imagefolder paths are unique, so the split record sets join on them
        rs["key"] = {"@id": "manifest/path"}
    return rs


def _folder_split(split: str) -> dict[str, object]:
    files = {"fileSet": {"@id": f"{split}-images"}}
    fields = [
        _field(split, "image", "sc:ImageObject", {**files, "extract": {"fileProperty": "content"}}),
        # The regex states the layout, and gives mlcroissant the path as text: without a
        # transform it joins a path object against the manifest's strings and finds none.
        _field(split, "path", "sc:Text",
               {**files, "extract": {"fileProperty": "fullpath"},
                "transform": {"regex": f"^({split}/[^/]+/[^/]+\\.jpg)$"}},
               references={"field": {"@id": "manifest/path"}}),
        _field(split, "label", "sc:Integer", {"field": {"@id": "manifest/class_index"}}),
        *(_field(split, c, "sc:Text", {"field": {"@id": f"manifest/{c}"}}) for c in PROVENANCE),
    ]  # fmt: skip
    return {"@type": "cr:RecordSet", "@id": split, "name": split,
            "description": f"The {split} images with their labels.", "field": fields}  # fmt: skip


def _parquet_split(split: str) -> dict[str, object]:
    ident = f"{split}-parquet"
    image = {**_column("fileSet", ident, "image"), "transform": {"jsonPath": "bytes"}}
    fields = [
        _field(split, "image", "sc:ImageObject", image),
        _field(split, "label", "sc:Integer", _column("fileSet", ident, "label")),
        *(_field(split, c, "sc:Text", _column("fileSet", ident, c)) for c in PROVENANCE),
    ]
    return {"@type": "cr:RecordSet", "@id": split, "name": split,
            "description": f"The {split} images with their labels.", "field": fields}  # fmt: skip


def _file_object(rel: str, sha256: str) -> dict[str, object]:
    return {"@type": "cr:FileObject", "@id": rel, "name": rel, "contentUrl": rel,
            "encodingFormat": ENCODING.get(Path(rel).suffix, "application/octet-stream"),
            "sha256": sha256}  # fmt: skip


def _file_set(ident: str, includes: str, encoding: str) -> dict[str, object]:
    return {"@type": "cr:FileSet", "@id": ident, "name": ident, "includes": includes,
            "encodingFormat": encoding}  # fmt: skip


def described_file(rel: str) -> bool:
    """Whether croissant.json lists this file of the export by itself (with its checksum):
    every file but the images of the imagefolder layout and the datasheet's figures."""
    top, _, rest = rel.partition("/")
    if not rest:
        return rel not in (NAME, "checksums.sha256", "export.json")
    if top in ("webdataset", "parquet"):
        return True
    return rest == "metadata.parquet"


def build(
    formats: Iterable[str], splits: Iterable[str], files: Iterable[tuple[str, str]],
    about: Description,
) -> dict[str, object]:  # fmt: skip
    """The Croissant document; ``files``: (path, sha256) of the files it lists itself."""
    formats, splits = list(formats), list(splits)
    distribution: list[dict[str, object]] = [_file_object(r, d) for r, d in files]
    record_sets = [_classes(), _manifest(keyed="imagefolder" in formats)]
    for split in splits:
        if "imagefolder" in formats:
            distribution.append(_file_set(f"{split}-images", f"{split}/*/*.jpg", "image/jpeg"))
            record_sets.append(_folder_split(split))
        elif "parquet" in formats:
            include = f"parquet/{split}-*.parquet"
            distribution.append(_file_set(f"{split}-parquet", include, ENCODING[".parquet"]))
            record_sets.append(_parquet_split(split))
    doc: dict[str, object] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": about.name,
        "description": about.summary,
        "url": about.contact,
        "creator": {"@type": "sc:Organization", "name": "synset-builder", "url": about.contact},
        "datePublished": about.created,
        "version": about.version,
        "isLiveDataset": False,
        "citeAs": f"{about.name}, built with synset-builder {about.version} ({about.created}).",
        "license": licence_list(about.licences),
        **{f"rai:{k}": v for k, v in about.rai.items()},
        "distribution": distribution,
        "recordSet": record_sets,
    }
    return doc


def write_croissant(out: Path, doc: Mapping[str, object]) -> None:
    atomic_write(out / NAME, json.dumps(doc, indent=1, ensure_ascii=False).encode())


def check_croissant(out: Path, listed: Mapping[str, str]) -> list[str]:
    """Problems of ``out/croissant.json`` against the files, for ``synset verify``.

    ``listed``: the export's checksum list, whose digests verify compares with the
    files themselves; a file's digest in croissant.json is compared with that,
    so no shard is hashed twice. The file is from outside: a path leaving the
    folder is a problem, never opened.
    """
    try:
        doc = json.loads((out / NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{NAME} is missing"]
    except (OSError, UnicodeDecodeError, ValueError):
        return [f"{NAME} is unreadable"]
    if not isinstance(doc, dict) or not isinstance(doc.get("distribution"), list):
        return [f"{NAME} has no distribution"]
    problems = []
    if doc.get("conformsTo") != CONFORMS_TO:
        problems.append(f"{NAME} does not conform to Croissant 1.0")
    root = out.resolve()
    described: set[str] = set()
    for item in doc["distribution"]:
        kind = item.get("@type") if isinstance(item, dict) else None
        try:
            if kind == "cr:FileObject":
                problems.extend(_check_file(out, root, str(item.get("contentUrl", "")),
                                            item.get("sha256"), listed, described))  # fmt: skip
            elif kind == "cr:FileSet" and not _matches(out, str(item.get("includes", ""))):
                problems.append(f"{NAME}: file set {item.get('@id')!r} matches no file")
        except (OSError, ValueError, NotImplementedError):  # a NUL byte, a bad glob
            problems.append(f"{NAME} names a path that cannot be checked: {item!r:.200}")
    for rel in sorted(r for r in listed if described_file(r) and r not in described):
        problems.append(f"{NAME} does not describe {rel}")
    return problems


def _check_file(
    out: Path, root: Path, rel: str, digest: object, listed: Mapping[str, str],
    described: set[str],
) -> list[str]:  # fmt: skip
    path = (out / rel).resolve()
    if not rel or not path.is_relative_to(root) or path == root:
        return [f"{NAME} names a file outside the export: {rel!r}"]
    described.add(path.relative_to(root).as_posix())
    if not path.is_file():
        return [f"{NAME} lists a missing file: {rel}"]
    if digest != (listed.get(rel) or sha_file(path)):
        return [f"{NAME}: the checksum of {rel} does not match"]
    return []


def _matches(out: Path, pattern: str) -> bool:
    """Whether a file set's pattern, kept inside the folder, matches at least one file."""
    if not pattern or pattern.startswith("/") or ".." in pattern.split("/"):
        return False
    return next(out.glob(pattern), None) is not None
