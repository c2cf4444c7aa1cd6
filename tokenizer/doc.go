// Package tokenizer turns source text into model ids and generated ids back
// into text, giving the same ids and text as the Hugging Face tokenizers
// library (what transformers' fast tokenizers run) for the tokenizer.json
// files s2s models ship: T5 and Marian (Unigram, SentencePiece
// normalization, Metaspace) and BART (byte-level BPE).
//
//	tok, err := tokenizer.Load("model/tokenizer.json", "")          // one vocabulary
//	tok, err := tokenizer.Load("src/tokenizer.json", "tgt/tokenizer.json") // Marian
//	ids, err := tok.Encode("Hello world")      // special tokens added: T5 "... </s>"
//	text := tok.Decode(generated, true)         // special tokens dropped
//
// A Tokenizer is immutable after Load and safe for concurrent use.
// NewStreamDecoder gives text as ids arrive, never splitting a character.
//
// # Parity
//
// tokenizer/parity_test.go checks Encode and Decode against goldens written
// by testdata/tokenizer/make_goldens.py with the Python tokenizers library,
// on 401 strings (testdata/tokenizer/corpus.jsonl: accents in NFC and NFD,
// CJK, emoji sequences, combining marks, right-to-left text, control and
// zero-width characters, white space runs, long words, special-token
// look-alikes, and 100 fortunes), for the T5, BART and Marian test
// tokenizers and four edge tokenizers that use the components those three
// do not. Refresh the goldens with
//
//	go test ./tokenizer -run Parity -update
//
// # Supported components
//
// Models: BPE, Unigram. Normalizers: Sequence, Precompiled, Strip, Replace,
// Prepend, Lowercase, NFC, NFD, NFKC, NFKD. Pre-tokenizers: Sequence,
// ByteLevel, Metaspace, WhitespaceSplit. Post-processors:
// TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel,
// Sequence. Decoders: Sequence, ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip. Any other type fails Load with ErrUnsupported.
// Truncation and padding settings are ignored: Encode never truncates or
// pads. VocabSize, TokenID and SpecialIDs describe the target tokenizer.
//
// # Why not sugarme's pipeline
//
// This package is the only importer of github.com/sugarme/tokenizer. It
// does not run sugarme's pretrained loader or encoder, which differ from
// tokenizers on our corpus (T5: 293 of 401 id sequences equal, 22 decodes
// equal, 20 panics; BART: 382 of 401; Marian: the process exits through
// log.Fatalf on the input "\t"). It parses tokenizer.json itself and runs
// its own pipeline, keeping sugarme's SentencePiece charsmap trie
// (spm.DoubleArray) and GPT-2 byte table (pretokenizer.BytesChar). The
// differences found, and what this package does instead:
//
//   - Loading: sugarme type-asserts JSON fields and panics on a missing or
//     mistyped one, and requires a pre-tokenizer. Here fields are decoded
//     into typed structs and errors name the component; none is required
//     but the model.
//   - Added tokens: sugarme drops special tokens written in the input
//     ("</s> x" loses its </s>, "<mask>" vanishes) and ignores lstrip,
//     rstrip, single_word and the normalized flag. Here they are matched
//     leftmost-longest, before normalization ("normalized": false) or after
//     it against their own normalized form, with tokenizers' lstrip,
//     rstrip and single_word rules, and get their ids whole.
//   - Replace with a Regex pattern (normalizer and decoder): sugarme's
//     loader looks for "Regex" in the wrong map and builds an empty string
//     pattern, so T5's " {2,}" -> "▁" is never applied. Here the regex is
//     compiled with Go's regexp; Oniguruma-only syntax is refused.
//   - Precompiled: sugarme's normalizer rewrites non-spacing marks into
//     "U+0301"-style text in its per-character path, cannot apply a rule
//     that deletes characters (it treats "" as no rule; nmt_nfkc deletes
//     control characters), and its NormalizeString stops after the first
//     grapheme. Here graphemes are walked as spm_precompiled does (whole
//     lookup below 6 bytes, shortest rule first, else per character), with
//     bounds checks on the trie.
//   - NFC, NFKC, NFKD: sugarme's NFC and NFKC leave decomposed text
//     ("e\u0301") uncomposed and its NFKD returns nil for text already in
//     NFKD. Here golang.org/x/text/unicode/norm is used, taking out the
//     x/text follows the Stream-Safe Text Format and cuts runs of more than
//     30 combining marks with U+034F, which Rust's unicode-normalization
//     does not; such text is normalized here step by step (decompose, order
//     marks, compose), composing pairs with x/text.
//   - Lowercase: Go's simple mapping turns U+0130 into "i"; Rust's full
//     mapping, which tokenizers uses, gives "i\u0307". Done as Rust does.
//   - Metaspace pre-tokenizer: sugarme replaces every \s (tab, newline...)
//     where tokenizers replaces only U+0020, ignores "split": false, and
//     applies "first" to the first split rather than to a split whose first
//     character comes from offset 0 of the input. Here as tokenizers: for
//     tokenizers that use "first", each normalizer and pre-tokenizer keeps
//     per-byte source offsets by tokenizers' alignment rules (so "¨" that
//     NFKC or nmt_nfkc turns into " \u0308" still starts the input once a
//     Strip takes the space, but two backquotes replaced by one quote mark
//     do not).
//   - Metaspace decoder: sugarme reads only the old add_prefix_space field,
//     so with prepend_scheme it keeps the leading space. Here prepend_scheme
//     is read (add_prefix_space false still means never).
//   - ByteLevel pre-tokenizer: Go's regexp has no look-ahead, so sugarme
//     drops the \s+(?!\S)|\s+ alternatives of GPT-2's pattern and splits
//     white space runs differently. Here the pattern is matched by hand,
//     with Unicode White_Space as \s as in Oniguruma.
//   - ByteLevel decoder: sugarme turns characters outside the byte table
//     (added tokens such as "<mask>") into NUL bytes and leaves invalid
//     UTF-8 in the string. Here such tokens keep their bytes and invalid
//     UTF-8 becomes U+FFFD per maximal invalid subsequence, as Rust's
//     from_utf8_lossy.
//   - Unigram: sugarme adds a 0.1-per-byte length bonus to every piece,
//     caps pieces at 20 bytes, and with byte_fallback spells the whole
//     input in bytes. Here the
//     Viterbi search is tokenizers' encode_optimized: unknown characters
//     scored min - 10 and fused, ties to the first (shortest) piece, byte
//     fallback only for unknown pieces.
//   - BPE: sugarme's merge queue does not break ties between equal-rank
//     merges leftmost first (it compares a timestamp it never sets;
//     tokenizers takes the leftmost, so "aaa" is aa+a), puts
//     continuing_subword_prefix on the first character instead of the
//     others, never adds end_of_word_suffix, panics on an unknown character
//     without unk_token, and ignores fuse_unk, byte_fallback and
//     ignore_merges. Here as tokenizers; dropout other than 0 is refused.
//
// # Unicode
//
// The NFC, NFD, NFKC and NFKD normalizers follow tokenizers' tables
// (Unicode 9.0.0, from the Rust crate unicode-normalization-alignments),
// not x/text's newer ones: characters assigned after 9.0 are left alone
// (unicode9.go). tokenizer/unicode_test.go checks every code point against
// goldens measured from tokenizers (testdata/tokenizer/make_unicode_goldens.py).
//
// Known limits: the other Unicode tables are Go's and uniseg's (Unicode
// 15.0; graphemes without 15.1's Indic conjunct rule: the Precompiled
// normalizer walks graphemes) and Go's lowercase mapping, where tokenizers
// uses Rust's and Oniguruma's, which may be newer. A StreamDecoder decodes
// a window of a few ids per step (linear in the length of the stream); a
// Strip decoder with "stop" > 0, and ByteFallback runs that turn invalid
// after spelling valid UTF-8, rewrite text already streamed, which the
// stream cannot take back.
//
// # Limits
//
// Load reads a tokenizer.json only when it is a regular file of at most
// MaxFileBytes. Encode's time is linear in the text (about 1 to 2 µs a byte
// on the test tokenizers, pathological inputs included: long runs of one
// character, of combining marks, of spaces); callers bound the text's
// size (s2s.Limits.MaxInputBytes).
package tokenizer
