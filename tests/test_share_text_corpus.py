"""Share texts and links as people pasted them in public repositories (tests/data/share_texts.yaml, each
with its source and the labelling rule in its header): the router reads at least 97 % of them as the
labels say, and never names a different item than the one a text shows.

Scoring, per text: with neither a Taobao link nor a code labelled, there is nothing to open, so the
right answer is a refusal. Otherwise the router must accept the text, reach the labelled link's item, shop
or page (the same identity the router gives that link alone), and read the labelled code and title (or
none where none is labelled).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from router.decision.links import LinkError, parse_link
from router.decision.types import Link

CORPUS = Path(__file__).parent / "data" / "share_texts.yaml"
ENTRIES: list[dict[str, object]] = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["texts"]
GOAL = 0.97


def identity(link: Link) -> tuple[object, ...]:
    page = link.web_url.partition("?")[0] if link.web_url else None
    return (link.kind, link.item_id, link.shop_id, None if link.item_id or link.shop_id else page)


def misread(entry: dict[str, object]) -> str | None:
    """What the router got wrong about one text, in a few words; None when it read it as labelled."""
    expect: dict[str, str] = entry["expect"]  # type: ignore[assignment]
    try:
        link = parse_link(str(entry["text"]))
    except LinkError as err:
        return None if "link" not in expect and "token" not in expect else f"refused: {err}"
    if "link" not in expect and "token" not in expect:
        return f"accepted a text with nothing to open: {link}"
    wrong = []
    if "link" in expect:
        wanted = parse_link(expect["link"])
        if link.web_url is None or identity(link) != identity(wanted):
            wrong.append(f"link {link.web_url} is not {wanted.web_url}")
    if link.token != expect.get("token"):
        wrong.append(f"code {link.token!r}, labelled {expect.get('token')!r}")
    if link.title != expect.get("title"):
        wrong.append(f"title {link.title!r}, labelled {expect.get('title')!r}")
    return "; ".join(wrong) or None


def test_the_corpus_is_real_and_sourced() -> None:
    """At least 150 texts from at least 15 repositories, every one naming repository, commit and path."""
    assert len(ENTRIES) >= 150
    repositories = {entry["source"]["repository"] for entry in ENTRIES}  # type: ignore[index]
    assert len(repositories) >= 15
    for entry in ENTRIES:
        source: dict[str, str] = entry["source"]  # type: ignore[assignment]
        assert set(source) >= {"repository", "commit", "path"} and len(source["commit"]) == 40


def test_share_texts_are_read_as_labelled() -> None:
    """Accuracy over the whole corpus reaches the goal; the misses are printed by style."""
    misses = [(entry, problem) for entry in ENTRIES if (problem := misread(entry)) is not None]
    accuracy = 1 - len(misses) / len(ENTRIES)
    by_style = Counter(str(entry.get("style")) for entry, _ in misses)
    report = "\n".join(f"  [{entry.get('style')}] {str(entry['text'])[:60]!r}: {problem}" for entry, problem in misses)
    print(f"share texts read as labelled: {accuracy:.1%} of {len(ENTRIES)}; misses: {dict(by_style)}\n{report}")
    assert accuracy >= GOAL, report


@pytest.mark.parametrize("entry", [e for e in ENTRIES if "item_id" in e["expect"]],  # type: ignore[operator]
                         ids=lambda e: str(e["text"])[:40])
def test_never_a_different_item(entry: dict[str, object]) -> None:
    """Where a text shows an item id, the router opens that item or refuses — never another item."""
    try:
        link = parse_link(str(entry["text"]))
    except LinkError:
        return
    assert link.item_id in (None, str(entry["expect"]["item_id"])), entry  # type: ignore[index]
