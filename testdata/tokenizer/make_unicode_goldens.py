"""Measures the Unicode normalizers of the Python `tokenizers` library (the
release pinned in export/requirements.txt) over the whole code point range,
for tokenizer/unicode_test.go and the table tokenizer/unicode9_table.go.

tokenizers normalizes with the Rust crate unicode-normalization-alignments
0.1.12, whose tables are Unicode 9.0.0; Go's golang.org/x/text has newer
ones. This script records what tokenizers does, so the Go side can be made
to do the same and tested against it without Python.

For every form (NFC, NFD, NFKC, NFKD) it normalizes, as strings of their
own:
  - every code point alone (U+0000..U+10FFFF without the surrogates);
  - every code point next to a combining mark of a known class, which shows
    the code point's canonical combining class by whether the two are
    reordered: cp + U+0334 (class 1), cp + U+0316 (220), cp + U+0301 (230),
    U+0301 + cp, and U+0334 + cp;
  - every canonical composition pair that Python's own unicodedata (a newer
    Unicode than tokenizers') knows: the two characters the composite
    decomposes to, which NFC and NFKC compose only where tokenizers'
    tables have the composition; and the Hangul pairs L+V and LV+T; and,
    for each pair, the pairs of characters of every plane with the same
    low 16 bits (Go's x/text looks compositions up by those bits alone).
It writes one line per string whose result is not the trivial one (the
string itself for a single code point; the concatenation of the parts'
own results for a probe or a pair):
    FORM <TAB> input code points <TAB> output code points    (hex, space separated)
to unicode-normalization.txt.gz. Inputs are normalized many at a time,
joined by U+0000 (a starter that neither decomposes nor composes), and the
results split on it (the strings that hold U+0000 are normalized alone).

    .venv/bin/python testdata/tokenizer/make_unicode_goldens.py
"""

import gzip
import os
import unicodedata

import tokenizers
from tokenizers import normalizers

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "unicode-normalization.txt.gz")
FORMS = {"NFC": normalizers.NFC(), "NFD": normalizers.NFD(), "NFKC": normalizers.NFKC(), "NFKD": normalizers.NFKD()}
# Marks whose class has not changed since Unicode 1.1.
PROBES = [("", "\u0334"), ("", "\u0316"), ("", "\u0301"), ("\u0301", ""), ("\u0334", "")]
CHUNK = 50000


def code_points():
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        yield chr(cp)


def normalize_many(norm, texts):
    """Normalizes each text on its own, many per call."""
    out = []
    for i in range(0, len(texts), CHUNK):
        part = texts[i:i + CHUNK]
        alone = {j: norm.normalize_str(t) for j, t in enumerate(part) if "\x00" in t}
        res = norm.normalize_str("\x00".join(t for t in part if "\x00" not in t)).split("\x00")
        res.reverse()
        part_out = [alone[j] if j in alone else res.pop() for j in range(len(part))]
        assert not res and not any("\x00" in r for j, r in enumerate(part_out) if j not in alone), "a result held U+0000"
        out.extend(part_out)
    return out


def hexs(s):
    return " ".join("%X" % ord(c) for c in s)


def pairs():
    """The canonical composition pairs of Python's unicodedata, and the
    Hangul ones (composed by algorithm, absent from unicodedata)."""
    out = [(chr(l), chr(v)) for l in range(0x1100, 0x1113) for v in range(0x1161, 0x1176)]
    out += [("\uac00", chr(t)) for t in range(0x11A8, 0x11C3)]
    for cp in range(0x110000):
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = d.split()
        if len(parts) == 2:
            out.append((chr(int(parts[0], 16)), chr(int(parts[1], 16))))
    return out


def collisions(ps):
    """The pairs and, for each, the pairs of characters of any plane with
    the same low 16 bits: Go's x/text looks compositions up by the low 16
    bits of both, so those are where it can go wrong."""
    out, seen = [], set()
    for a, b in ps:
        for pa in range(17):
            for pb in range(17):
                a2, b2 = pa << 16 | ord(a) & 0xFFFF, pb << 16 | ord(b) & 0xFFFF
                if 0xD800 <= a2 <= 0xDFFF or 0xD800 <= b2 <= 0xDFFF:
                    continue
                q = (chr(a2), chr(b2))
                if q not in seen:
                    seen.add(q)
                    out.append(q)
    return out


def main():
    singles = list(code_points())
    lines = []
    for name, norm in FORMS.items():
        alone = normalize_many(norm, singles)
        own = dict(zip(singles, alone))
        for s, r in zip(singles, alone):
            if r != s:
                lines.append((name, s, r))

        def trivial(*parts):
            return "".join(own.get(p, p) for p in parts)

        for before, after in PROBES:
            texts = [before + s + after for s in singles]
            for s, t, r in zip(singles, texts, normalize_many(norm, texts)):
                if r != trivial(before, s, after):
                    lines.append((name, t, r))
        ps = collisions(pairs())
        texts = [a + b for a, b in ps]
        for (a, b), t, r in zip(ps, texts, normalize_many(norm, texts)):
            if r != trivial(a, b):
                lines.append((name, t, r))
    # A probe can equal a pair (a base with U+0301): keep one line each.
    seen = set()
    body = ["# tokenizers %s, unicodedata %s; made by make_unicode_goldens.py\n"
            % (tokenizers.__version__, unicodedata.unidata_version)]
    for name, t, r in lines:
        if (name, t) in seen:
            continue
        seen.add((name, t))
        body.append("%s\t%s\t%s\n" % (name, hexs(t), hexs(r)))
    # mtime 0: the same measurement gives the same bytes.
    with open(OUT, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
        f.write("".join(body).encode("ascii"))
    print("wrote %d lines to %s" % (len(seen), OUT))


if __name__ == "__main__":
    main()
