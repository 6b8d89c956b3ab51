"""BLEU (Papineni et al., 2002): how many of a translation's n-grams appear in the reference, for
n = 1..4, combined by a geometric mean and a penalty for translations shorter than the reference.

Corpus BLEU adds up the n-gram matches of all sentences before dividing (as sacrebleu and nltk's
``corpus_bleu`` do); the sentence-level score of the d2l book, with weights 1/2^n, is here too,
because it is not the same number.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence


def ngrams(tokens: Sequence[str], n: int) -> collections.Counter:
    return collections.Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def clipped_matches(hypothesis: Sequence[str], reference: Sequence[str], n: int) -> tuple[int, int]:
    """(n-grams of the hypothesis that the reference has, each counted at most as often as there; all of them)."""
    hyp, ref = ngrams(hypothesis, n), ngrams(reference, n)
    return sum(min(count, ref[gram]) for gram, count in hyp.items()), max(len(hypothesis) - n + 1, 0)


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]], *,
                max_n: int = 4) -> float:
    """BLEU of tokenised hypotheses against one reference each, in [0, 1]; 0 when some n-gram order has
    no match at all (no smoothing)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    matches, totals = [0] * max_n, [0] * max_n
    for hyp, ref in zip(hypotheses, references):
        for n in range(1, max_n + 1):
            m, t = clipped_matches(hyp, ref, n)
            matches[n - 1] += m
            totals[n - 1] += t
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    hyp_len, ref_len = sum(len(h) for h in hypotheses), sum(len(r) for r in references)
    brevity = min(0.0, 1 - ref_len / hyp_len)  # log of the brevity penalty
    return math.exp(brevity + log_precision)


def d2l_bleu(hypothesis: Sequence[str], reference: Sequence[str], *, k: int = 2) -> float:
    """The d2l book's sentence score: exp(min(0, 1 - len_ref / len_hyp)) · Π_{n ≤ k} p_n^(1 / 2^n)."""
    if not hypothesis:
        return 0.0
    score = math.exp(min(0.0, 1 - len(reference) / len(hypothesis)))
    for n in range(1, k + 1):
        m, t = clipped_matches(hypothesis, reference, n)
        if t == 0:
            break  # shorter than n: d2l's loop stops here too
        score *= (m / t) ** (0.5 ** n)
    return score
