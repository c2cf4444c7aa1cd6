// Package beamsearch is the search side of s2s: greedy search, beam search
// and sampling over a step-wise Decoder, with Hugging Face's logits
// processors, written in plain Go (standard library only).
//
// The aim is parity: for the same logits and the same Options, Generate
// returns what transformers' generate() (4.57) returns for an
// encoder-decoder model, token for token, with beam scores equal to its
// sequences_scores. The details that parity rests on:
//
//   - Processors see the row's history with the decoder start token first,
//     as generate() does (repetition penalty and n-gram bans count it).
//   - Processors run in generate()'s order: repetition penalty,
//     no_repeat_ngram_size, bad_words_ids, min_new_tokens,
//     forced_bos_token_id, forced_eos_token_id, suppress_tokens, then, when
//     sampling, temperature, top-k and top-p.
//   - Greedy search and sampling process the raw logits; beam search takes
//     log_softmax first and processes the log-probabilities.
//   - Beam search keeps max(2, 1+len(EOS ids)) * num_beams candidates per
//     input and step, only the best num_beams of them may finish, and a
//     hypothesis scores sum(log-probs) / generated_len ** length_penalty,
//     where generated_len counts the EOS and not the decoder start token.
//   - Early stopping follows generate()'s heuristic for true, false and
//     "never"; beam arithmetic is float32 with the same -1e9 sentinels.
//
// Where transformers' own result is not specified, ours may differ: among
// exactly equal scores torch.topk picks in no stated order, while we keep
// the lower beam, then the lower token id. That only shows when fewer than
// num_beams hypotheses score above -1e9 (for example forced_bos_token_id
// with max_new_tokens 1): the filler hypotheses after the best may differ.
//
// Unlike generate(), finished inputs (and, in greedy search, finished rows)
// are dropped from the decoder with Reorder, so compute shrinks as inputs
// finish; outputs are the same.
package beamsearch
