"""``synset hierarchy ...``: build and inspect the category hierarchy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from synset_builder.cli.common import open_session, print_json, settings
from synset_builder.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset, WordNetCorpusReader

    from synset_builder.config import Settings
    from synset_builder.hierarchy.targets import AddReport

hierarchy_app = typer.Typer(help="Build the category hierarchy from WordNet or your own synsets.")


def wordnet(cfg: Settings) -> WordNetCorpusReader:
    # NLTK takes over a second to import: only the commands that need it pay for it.
    from synset_builder.hierarchy.wordnet import load_wordnet

    return load_wordnet(cfg.nltk_data, cfg.data_dir, cfg.wordnet_dir)


@hierarchy_app.command("add")
def add(
    names: list[str] = typer.Argument(None, help="wnids (n02084071), names (dog.n.01) or lemmas."),
    depth: int | None = typer.Option(
        None, "--depth", min=0, help="Levels of hyponyms to add (default: all; 0: only itself)."
    ),
    leaves: bool = typer.Option(False, "--leaves", help="Keep only the leaves as targets."),
    file: Path | None = typer.Option(None, "--file", help="A list of wnids, one per line."),
    ilsvrc2012: bool = typer.Option(False, "--ilsvrc2012", help="The 1000 ILSVRC-2012 classes."),
    exclude: list[str] = typer.Option([], "--exclude", help="Drop this subtree (repeatable)."),
) -> None:
    """Add synsets (with their descendants) as targets, and their ancestors up to entity."""
    from tqdm import tqdm

    from synset_builder.hierarchy import targets as h

    cfg = settings()
    listed = list(h.read_wnid_file(file)) if file else []
    if ilsvrc2012:
        listed += h.ilsvrc2012_wnids()
    if not names and not listed:
        raise InvalidInput("Name at least one synset, or give --file or --ilsvrc2012.")
    with open_session(cfg) as session:
        wn = wordnet(cfg)
        roots = [h.resolve(wn, n) for n in names or []]
        items = tqdm(listed, desc="resolving", unit="synset", disable=len(listed) < 200)
        listed_roots = [h.resolve(wn, w) for w in items]
        excluded = [h.resolve(wn, e) for e in exclude]
        named = h.select_synsets(roots, depth=depth, leaves=leaves, exclude=excluded)
        # Lists add exactly what they list, unless --depth says otherwise.
        lists = h.select_synsets(listed_roots, depth=depth or 0, leaves=leaves, exclude=excluded)
        selection = h.Selection(
            named.targets | lists.targets,
            (named.others | lists.others) - named.targets - lists.targets,
        )
        report = h.store(session, selection)
        # Descendants come by default; say so, and how to undo and narrow it.
        brought = (
            [(r, len(h.descendants(r, depth, set()) & named.targets) - 1) for r in roots]
            if depth != 0
            else []
        )
    _say_added(report, brought)


def _say_added(report: AddReport, brought: list[tuple[Synset, int]]) -> None:
    """What was stored; per named root the descendants it brought and how to undo
    that; a warning for abstract targets, which photograph badly."""
    from synset_builder.hierarchy import targets as h

    typer.echo(
        f"Added {report.targets_new} target synsets ({report.targets_total} in all), "
        f"{report.ancestors_new} ancestors, {report.edges_new} edges, "
        f"{report.queries_new} queries."
    )
    for root, n in brought:
        if n > 0:
            wnid = h.wnid_of(root)
            typer.echo(
                f"{root.lemma_names()[0].replace('_', ' ')} ({wnid}) brought {n} descendant "
                f"target(s). For the synset alone: 'synset hierarchy remove {wnid} "
                f"--with-descendants', then 'synset hierarchy add {wnid} --depth 0'."
            )
    if report.not_imageable:
        shown = ", ".join(report.not_imageable[:5])
        typer.echo(
            f"warning: {len(report.not_imageable)} targets are abstract (ideas, acts, "
            f"attributes: nothing physical, no object or sign) and hard to photograph: {shown}"
            + (" ..." if len(report.not_imageable) > 5 else ""),
            err=True,
        )


@hierarchy_app.command("remove")
def remove(
    wnid: str = typer.Argument(..., help="The stored synset to stop collecting for."),
    with_descendants: bool = typer.Option(
        False, "--with-descendants", help="Also every stored synset below it."
    ),
) -> None:
    """Un-target synsets: nothing is deleted, and adding them again brings their images back."""
    from synset_builder.hierarchy import targets as h

    with open_session(settings()) as session:
        report = h.remove_targets(session, wnid, with_descendants=with_descendants)
    shown = ", ".join(report.untargeted[:10]) + (" ..." if len(report.untargeted) > 10 else "")
    typer.echo(
        f"Removed {len(report.untargeted)} target(s) ({report.targets_total} left)"
        + (f": {shown}" if shown else f"; {wnid} was not a target")
        + ". Their candidates and votes are kept."
    )


@hierarchy_app.command("add-custom")
def add_custom(
    name: str = typer.Argument(..., help="The category's name."),
    parent: str = typer.Option(..., "--parent", help="wnid (or name) of its parent."),
    gloss: str = typer.Option(..., "--gloss", help="One sentence saying what it is."),
    query: list[str] = typer.Option([], "--query", help="An extra search query (repeatable)."),
) -> None:
    """Add a category that is not in WordNet, with a stable generated id."""
    from synset_builder.hierarchy import targets as h

    cfg = settings()
    with open_session(cfg) as session:
        row, created = h.add_custom(
            session, wordnet(cfg), name, parent=parent, gloss=gloss, queries=query
        )
        typer.echo(f"{'Added' if created else 'Already there:'} {row.name} ({row.wnid})")


@hierarchy_app.command("queries")
def queries(
    wnid: str = typer.Argument(..., help="The synset."),
    add: list[str] = typer.Option([], "--add", help="Add a query (repeatable)."),
    remove: list[str] = typer.Option([], "--remove", help="Remove a query (repeatable)."),
) -> None:
    """Show, add or remove a synset's search queries (removed ones are kept, inactive)."""
    from sqlalchemy import select

    from synset_builder.db.models import Synset
    from synset_builder.hierarchy.queries import edit_queries

    with open_session(settings()) as session:
        row = session.scalar(select(Synset).where(Synset.wnid == wnid))
        if row is None:
            raise NotFound(f"{wnid} is not in the hierarchy.")
        for q in edit_queries(session, row, add=add, remove=remove):
            typer.echo(f"{'  ' if q.active else '- '}{q.text}  ({q.kind})")


@hierarchy_app.command("show")
def show(
    wnid: str | None = typer.Argument(None, help="Show only this synset's subtree."),
    as_json_flag: bool = typer.Option(False, "--json", help="A JSON list for scripts."),
    depth: int | None = typer.Option(None, "--depth", min=0, help="Levels to print."),
) -> None:
    """The tree: * marks targets; [candidates/clean/accepted] per synset."""
    from synset_builder.hierarchy.view import as_json, as_tree

    with open_session(settings()) as session:
        try:
            if as_json_flag:
                print_json(as_json(session, wnid))
                return
            lines = as_tree(session, wnid, depth)
        except NotFound as exc:
            _no_such_synset(wnid or "", exc)
            raise
    if not lines:
        typer.echo("The hierarchy is empty; add synsets with 'synset hierarchy add'.")
    for line in lines:
        typer.echo(line)


def _no_such_synset(wnid: str, exc: NotFound) -> None:
    """Suggest adding only what WordNet has: a mistyped wnid is named as such."""
    from synset_builder.errors import ConfigError
    from synset_builder.hierarchy import targets as h

    if not h.WNID_RE.match(wnid) and not re.fullmatch(r"c\d{8}", wnid):
        raise NotFound(
            f"{wnid} is not a wnid, so WordNet has no such synset "
            "(a wnid is 'n' and 8 digits, like n02084071)."
        ) from exc
    if h.WNID_RE.match(wnid):
        try:
            h.resolve(wordnet(settings()), wnid)
        except (NotFound, InvalidInput) as missing:
            raise NotFound(
                f"{wnid} is not in the hierarchy, and WordNet has no such noun synset."
            ) from missing
        except ConfigError:
            return  # no WordNet here to ask: the plain message stands


def register(app: typer.Typer) -> None:
    app.add_typer(hierarchy_app, name="hierarchy")
