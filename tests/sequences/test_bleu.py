"""dlnotes.sequences.bleu: corpus BLEU equal to sacrebleu's and nltk's, and d2l's sentence score."""

from __future__ import annotations

import math

import pytest
import torch

from dlnotes.sequences import bleu


def test_corpus_bleu_equals_sacrebleu_and_nltk():
    import sacrebleu
    from nltk.translate.bleu_score import corpus_bleu as nltk_bleu

    g = torch.Generator().manual_seed(0)
    words = "the a cat dog sat on mat ran".split()
    refs = [[words[i] for i in torch.randint(0, 8, (int(n),), generator=g)] for n in torch.randint(6, 12, (40,), generator=g)]
    hyps = [[w if torch.rand(1, generator=g) < 0.7 else words[0] for w in r[:len(r) - int(torch.randint(0, 3, (1,), generator=g))]]
            for r in refs]
    mine = bleu.corpus_bleu(hyps, refs)
    theirs = sacrebleu.corpus_bleu([" ".join(h) for h in hyps], [[" ".join(r) for r in refs]], tokenize="none",
                                   smooth_method="none", force=True).score / 100
    assert 0.1 < mine < 0.9 and mine == pytest.approx(theirs, rel=1e-9)
    assert mine == pytest.approx(nltk_bleu([[r] for r in refs], hyps), rel=1e-9)  # every hypothesis has 4+ tokens
    # a hypothesis shorter than n has no n-grams: nltk counts 1 of them in the denominator, sacrebleu 0
    short_hyps, short_refs = hyps + [["the", "cat"]], refs + [["the", "cat", "sat"]]
    with_short = bleu.corpus_bleu(short_hyps, short_refs)
    assert with_short == pytest.approx(sacrebleu.corpus_bleu(
        [" ".join(h) for h in short_hyps], [[" ".join(r) for r in short_refs]], tokenize="none",
        smooth_method="none", force=True).score / 100, rel=1e-9)
    assert with_short > nltk_bleu([[r] for r in short_refs], short_hyps)
    assert bleu.corpus_bleu([["a", "b", "c", "d"]], [["a", "b", "c", "d"]]) == pytest.approx(1.0)
    assert bleu.corpus_bleu([["a", "b"]], [["a", "b", "c", "d"]]) == 0.0  # no 3-gram at all
    with pytest.raises(ValueError, match="references"):
        bleu.corpus_bleu([["a"]], [])


def test_the_d2l_sentence_score_is_another_number():
    hyp, ref = "he is calm .".split(), "il est calme .".split()
    assert bleu.d2l_bleu(hyp, hyp) == 1.0 and bleu.d2l_bleu(hyp, ref) == pytest.approx(0.0 ** 0.5 * 1 + 0.0)
    hyp, ref = "a cat sat on mat".split(), "a cat sat on the mat".split()
    p1, p2 = 5 / 5, 3 / 4
    assert bleu.d2l_bleu(hyp, ref) == pytest.approx(math.exp(1 - 6 / 5) * p1 ** 0.5 * p2 ** 0.25)
    assert bleu.d2l_bleu(hyp, ref) != pytest.approx(bleu.corpus_bleu([hyp], [ref]))
