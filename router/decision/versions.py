"""Dotted versions and the ranges rules write about them.

A range is one or more comparisons joined by commas, all of which must hold:
">=8.0.30", ">=7.0.5,<8", "==8.0.*", "!=8.0.1". Versions compare as integer
tuples with missing parts read as zero, so "8" == "8.0" == "8.0.0". An unknown
version (empty tuple) satisfies no range: a rule about WeChat 8.0.30+ must not
match a client whose version we could not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from router.decision.types import Version

_VERSION_PREFIX = re.compile(r"\s*(\d+(?:\.\d+)*)")
RANGE_PART_PATTERN = r"\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)(\.\*)?\s*"
"""One comparison of a range; a range is one or more of them joined by commas (the JSON Schema uses it too)."""
_COMPARISON = re.compile(f"^{RANGE_PART_PATTERN}$")
_MAX_PARTS = 6


def parse_version(text: str) -> Version:
    """The leading dotted number of `text` as integers: "8.0.7(0x18000722)" -> (8, 0, 7); garbage -> ()."""
    if not isinstance(text, str):
        return ()
    # A version is never this long; the cap keeps int() far from its 4300-digit limit on UA text.
    match = _VERSION_PREFIX.match(text[:64])
    if match is None:
        return ()
    return tuple(int(part) for part in match.group(1).split(".")[:_MAX_PARTS])


def format_version(version: Version) -> str:
    return ".".join(str(part) for part in version) if version else "unknown"


def _padded(version: Version, width: int) -> Version:
    return version + (0,) * (width - len(version))


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str
    version: Version
    wildcard: bool  # "==8.0.*": compare only the given prefix

    def holds(self, actual: Version) -> bool:
        if self.wildcard:
            prefix_equal = _padded(actual, len(self.version))[: len(self.version)] == self.version
            return prefix_equal if self.op == "==" else not prefix_equal
        width = max(len(actual), len(self.version))
        left, right = _padded(actual, width), _padded(self.version, width)
        if self.op == ">=":
            return left >= right
        if self.op == ">":
            return left > right
        if self.op == "<=":
            return left <= right
        if self.op == "<":
            return left < right
        if self.op == "==":
            return left == right
        return left != right

    def __str__(self) -> str:
        return f"{self.op}{format_version(self.version)}{'.*' if self.wildcard else ''}"


@dataclass(frozen=True, slots=True)
class VersionRange:
    comparisons: tuple[Comparison, ...]

    def contains(self, actual: Version) -> bool:
        if not actual:
            return False
        return all(comparison.holds(actual) for comparison in self.comparisons)

    def __str__(self) -> str:
        return ",".join(str(comparison) for comparison in self.comparisons)


class VersionRangeError(ValueError):
    pass


def parse_range(text: str) -> VersionRange:
    """'>=7.0.5,<8' -> VersionRange, or VersionRangeError naming the part that is wrong."""
    comparisons = []
    for part in text.split(","):
        match = _COMPARISON.match(part)
        if match is None:
            raise VersionRangeError(
                f"bad version range {text!r}: {part.strip()!r} is not a comparison such as '>=8.0.30' "
                "(operators: >= > <= < == !=, parts joined by commas)"
            )
        op, number, wildcard = match.groups()
        if wildcard and op not in ("==", "!="):
            raise VersionRangeError(f"bad version range {text!r}: '.*' works only with == and !=")
        comparisons.append(Comparison(op, parse_version(number), bool(wildcard)))
    return VersionRange(tuple(comparisons))
