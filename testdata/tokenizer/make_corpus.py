"""Writes corpus.jsonl: hard strings for tokenizer parity, plus real
sentences from Debian's fortunes package (apt-get install fortunes).

Run from anywhere:
    .venv/bin/python testdata/tokenizer/make_corpus.py

The output is deterministic for a given fortunes package.
"""

import argparse
import json
import os
import random
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
FORTUNES = "/usr/share/games/fortunes"
FORTUNE_FILES = ["fortunes", "literature", "wisdom", "people", "science", "computers",
                 "humorists", "linux", "law", "pets", "platitudes", "tao", "pratchett", "songs-poems"]
N_FORTUNES = 100


def nfd(s):
    return unicodedata.normalize("NFD", s)


def hard_strings():
    s = []
    # Empty and white space only.
    s += ["", " ", "  ", "\t", "\n", " \n ", "\r\n", "\t \t", "          ", "\n\n\n\n", " \u3000 ",
          "\u00a0", "\u2028", "\u2029", "\x85", "\x0b\x0c"]
    # Leading, trailing and inner white space.
    s += ["  leading", "trailing  ", "  both  ", "a    b", "\t\ttabs\tand\ttabs", "line1\nline2",
          "a \t b", "word\r\nnext", " x ", "a  b   c    d", "end with newline\n", "\tindented code",
          "mixed \u00a0nbsp\u202fnarrow\u2009thin\u2003em spaces", "ideographic\u3000space"]
    # Accents, precomposed (NFC) and decomposed (NFD).
    accented = ["Café", "naïve", "résumé", "Ångström", "Zürich", "façade", "São Paulo",
                "Dvořák", "Łódź", "Øresund", "Tiếng Việt", "Ελληνικά", "Привет, мир", "crème brûlée",
                "piñata", "Ærøskøbing", "İstanbul", "Ђорђе"]
    s += accented
    s += [nfd(x) for x in accented if nfd(x) != x]
    s += ["e\u0301", "\u00e9", "A\u030a", "\u00c5", "\u212b", "n\u0303", "e\u0323\u0302", "\u1ec7",
          "\u1100\u1161\u11a8", "\uac01", "한국어", nfd("한국어"), "ｅ\u0301", "Ｃａｆé"]
    # Combining marks.
    s += ["a\u0300\u0301\u0302\u0303\u0304", "\u0301 leading combining mark", "Z\u0324\u0354\u0367\u0311a\u0356\u0308l\u036e\u0312g\u030co",
          "ก่", "नमस्ते दुनिया", "مَرْحَبًا", "x\u20dd", "1\u20e3", "\u0915\u094d\u0937",
          # More than 30 marks in a row: canonical order and composition across the 30th.
          "e" + "\u0323" * 31 + "\u0302", "e" + "\u0301\u0323" * 20, "\u00a8" * 35]
    # CJK and other scripts.
    s += ["日本語のテキスト", "中文分词测试，句号。", "東京 Tokyo 2024年", "ＡＢＣ１２３", "ｶﾀｶﾅ ﾃｽﾄ",
          "漢字かなカナ混じり文", "スーパーーーー", "㈱ ㍻ ㎏ ㎞", "สวัสดีครับ", "தமிழ் மொழி", "ქართული ენა",
          "Հայերեն", "ሰላም ዓለም", "བོད་ཡིག", "ភាសាខ្មែរ", "ᠮᠣᠩᠭᠣᠯ", "ꦗꦮ", "Ⲙⲉⲧⲣⲉⲙ"]
    # Right to left.
    s += ["שלום עולם", "مرحبا بالعالم", "Hello שלום 123 world", "\u200fabc\u200e", "\u202eevil\u202c text",
          "العربية: ١٢٣", "עִבְרִית"]
    # Emoji: plain, skin tones, ZWJ sequences, flags, keycaps, variation selectors.
    s += ["😀", "😀😃😄", "👍🏽", "👍🏿 thumbs", "👨‍👩‍👧‍👦", "👩🏾‍💻 codes", "🏳️‍🌈", "🇫🇷🇩🇪🇯🇵",
          "1️⃣2️⃣", "❤️", "❤\ufe0e", "🧑‍🚀 in space", "I ❤️ NY 🗽", "🤷‍♀️🤷🏻‍♂️", "☺", "🫠🫶"]
    # Zero-width, format and control characters.
    s += ["a\u200bb", "zero\u200cwidth\u200djoiners", "\ufeffbyte order mark", "co\u00adop", "tab\x07bell",
          "\x1b[31mred\x1b[0m", "line\u2028separator", "para\u2029graph", "mongolian\u180evowel", "nel\x85here", "a\u0000b", "\u2060word\u2060", "\ue000 private use", "\U0010fffd",
          "replacement \ufffd char", "tag\U000e0041\U000e0042", "\u180e", "\x7f delete"]
    # Punctuation clusters.
    s += ["!!!", "?!?!", "...", "…", "—–-", "«quotes»", "„Anführungszeichen“", "'single' \"double\"",
          "it's", "I'M", "we'll've", "rock'n'roll", "don't can't won't", "'s 't 're 've 'm 'll 'd",
          "(((nested)))", "a,b;c:d", "#hashtag @mention", "$100.00", "50%", "C++ & C#", "e.g., i.e.,",
          "<html><body>", "{\"json\": [1, 2, 3]}", "x**2 + y^2 = z", "~/.bashrc", "C:\\Windows\\system32",
          "¿Qué? ¡Sí!", "“smart quotes” ‘too’", "§ 42 ¶ 3", "→ ← ↑ ↓", "•bullet ·middle dot", "''quoted''",
          "\"\"", "```code```", "/* comment */", "a--b", "#!/bin/sh", ":-) ;-) :P"]
    # Digits and numbers.
    s += ["1234567890", "3.14159265358979", "1,000,000", "0x1F600", "٣٤٥", "१२३", "Ⅻ", "½ ¾", "x² y³",
          "①②③", "2024-01-01T12:00:00Z", "+1 (555) 123-4567", "007", "1e-9", "-42", "10:30pm", "v1.2.3-rc.4"]
    # URLs, addresses, paths, code.
    s += ["https://www.example.com/path?query=1&b=2#frag", "http://例子.测试/路径", "mailto:someone@example.org",
          "ftp://ftp.debian.org/debian/", "www.google.com", "user@host:~$ ls -la", "git@github.com:owner/repo.git",
          "func main() { fmt.Println(\"hi\") }", "if (a && b || !c) return;", "SELECT * FROM t WHERE x='y';",
          "snake_case_name", "camelCaseName", "kebab-case-name", "SCREAMING_SNAKE"]
    # Very long words (> 100 characters) and long runs.
    s += ["a" * 150, "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
          "supercalifragilisticexpialidocious" * 4,
          "Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherungsanstaltsdirektionsgebäudeverwaltungsangestellter",
          "https://example.com/" + "very/long/path/" * 10 + "index.html", "1234567890" * 15, "😀" * 40,
          "漢" * 120, "ab" * 80, "x" + "\u0301" * 60, "-" * 120, "_" * 110 + "word"]
    # Repeated characters.
    s += ["aaaaaaaaaa", "ababababab", "!!!!!!!!!!!!", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "ーーーー", "......", "____",
          "----", "haha" * 10, "lol " * 10, "ééééé", "   \n   \n   ", "🙂🙂🙂🙂🙂", "no no no no no"]
    # Strings that look like special tokens or tokenizer internals.
    s += ["</s>", "<s>", "<pad>", "<unk>", "<mask>", "</s></s>", "hello</s>", "</s>hello", "a </s> b",
          "<s>text</s>", "< /s>", "</ s>", "<extra_id_0>", "<extra_id_0> fill <extra_id_1> in", "<extra_id_999>",
          "<|endoftext|>", "[CLS] [SEP] [MASK]", "<pad><pad>", "<unk>word", "▁", "▁▁hello", "Ġhello Ċ",
          "<0x41>", " <mask> ", "x<mask>y", "<MASK>", "</S>", "<s> </s> <pad> <unk>", "hello <mask>world",
          "\t<mask>\t", "</s>\n</s>",
          # Added tokens of the edge-* test tokenizers (single_word, lstrip/rstrip, normalized forms).
          "[NL]", "a[NL]b", "a [NL] b", "[NL][NL]", "foo bar", "xfoo ｆｏｏ", "<sep>", "a <sep> b", "a<sep>b",
          "  <sep>  x", "<sep><sep>", "quick quiz queue", "Qu q"]
    # Case and compatibility forms.
    s += ["HELLO WORLD", "hElLo WoRlD", "ß STRASSE straße", "ǅungla", "ﬁnancial ﬂow", "ℌ ℍ ℕ", "™ © ®", "ſ long s",
          "ΣΊΣΥΦΟΣ σίσυφος", "Ⅸ century", "µ vs μ", "Å vs Å"]
    # Mathematics.
    s += ["∀x∈ℝ: x²≥0", "∑∫∂√∞", "α β γ δ ε", "E = mc²", "a ≤ b ≠ c", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙"]
    return s


def fortunes(n, seed=7):
    texts = []
    for name in FORTUNE_FILES:
        path = os.path.join(FORTUNES, name)
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            raw = f.read()
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        for entry in data.split("\n%\n"):
            entry = entry.strip("\n")
            if 15 <= len(entry) <= 400:
                texts.append(entry)
    if len(texts) < n:
        raise SystemExit("found %d fortunes in %s; install them: apt-get install -y fortunes" % (len(texts), FORTUNES))
    texts.sort()
    return random.Random(seed).sample(texts, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "corpus.jsonl"))
    args = ap.parse_args()
    lines = hard_strings()
    hard = len(lines)
    lines += fortunes(N_FORTUNES)
    seen, unique = set(), []
    for x in lines:
        if x not in seen:
            seen.add(x)
            unique.append(x)
    with open(args.out, "w", encoding="utf-8") as f:
        for x in unique:
            f.write(json.dumps(x, ensure_ascii=False) + "\n")
    print("wrote %d strings (%d hard, %d fortunes) to %s" % (len(unique), hard, N_FORTUNES, args.out))


if __name__ == "__main__":
    main()
