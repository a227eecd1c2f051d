"""`dlx sample`: next-token probabilities, the generation loop, and the command end to end."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from conftest import assert_one_error_line, need

from dlx.nn.generate import generate, next_token_probs


def test_temperature_and_top_k():
    z = np.array([2.0, 1.0, 0.5, -1.0])
    for t in (0.5, 1.0, 3.0):
        e = np.exp(z / t)
        np.testing.assert_allclose(next_token_probs(z, t), e / e.sum(), rtol=1e-12)
    p = next_token_probs(z, 1.0, top_k=2)
    assert (p[2:] == 0).all() and p[:2].sum() == pytest.approx(1.0)
    assert p[0] / p[1] == pytest.approx(np.e)  # renormalized, ratios kept
    assert next_token_probs(z, 1e-3)[0] == pytest.approx(1.0)  # cold: the argmax
    flat = next_token_probs(z, 1e3)
    assert flat.max() - flat.min() < 1e-2  # hot: nearly uniform
    assert (next_token_probs(np.array([1.0, 1.0, 0.0]), 1.0, top_k=1)[:2] > 0).all()  # ties kept
    with pytest.raises(ValueError, match="temperature"):
        next_token_probs(z, 0.0)


class Counting:
    """A 'model' whose next token is always (last + 1) mod V, with the contexts it was shown."""

    def __init__(self, vocab: int):
        self.vocab, self.lengths = vocab, []

    def forward(self, idx):
        self.lengths.append(idx.shape[1])
        logits = np.full((*idx.shape, self.vocab), -10.0)
        logits[0, np.arange(idx.shape[1]), (idx[0] + 1) % self.vocab] = 10.0
        return logits


def test_generate_follows_the_model_within_its_block_size():
    model = Counting(5)
    out = generate(model, np.array([3]), 8, block_size=4, top_k=1)
    assert out.tolist() == [3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert max(model.lengths) == 4 and model.lengths[:4] == [1, 2, 3, 4]


def test_generate_draws_from_the_distribution_reproducibly():
    class Fixed:
        def forward(self, idx):
            return np.broadcast_to(np.log([0.5, 0.3, 0.2]), (*idx.shape, 3))

    draws = generate(Fixed(), np.array([0]), 3000, block_size=8, rng=np.random.default_rng(1))
    freq = np.bincount(draws[1:], minlength=3) / 3000
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.2], atol=0.03)  # ~3.5 sd of a binomial
    again = generate(Fixed(), np.array([0]), 3000, block_size=8, rng=np.random.default_rng(1))
    assert (draws == again).all()


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    """A tiny character-level transformer, trained long enough to learn letter frequencies."""
    from conftest import CLI

    need("tinyshakespeare")
    cli = CLI(tmp_path_factory.mktemp("lm"))
    result = cli("run", "model=transformer", "dataset=tinyshakespeare", "model.n_layers=1",
                 "model.d_model=32", "dataset.block_size=16", "dataset.val_tokens=2000",
                 "dataset.n_train_tokens=20000",
                 "optimizer=adam", "optimizer.lr=0.01", "batch_size=32", "max_steps=150",
                 "progress=none")
    assert result.returncode == 0, result.stderr
    return cli, cli.run_dir(result)


@pytest.mark.science
@pytest.mark.slow
def test_sample_continues_the_prompt_with_shakespeare_like_letters(lm_run):
    from dlx.data import text

    cli, run = lm_run
    result = cli("sample", str(run), "--prompt", "ROMEO:", "--length", "400", "--seed", "3")
    assert result.returncode == 0, result.stderr
    sample = result.stdout[:-1]  # echo's newline
    assert sample.startswith("ROMEO:") and len(sample) == 406
    again = cli("sample", str(run), "--prompt", "ROMEO:", "--length", "400", "--seed", "3")
    assert again.stdout == result.stdout  # the seed fixes the draws

    # the trained model knows the letter frequencies: its text is far closer to Shakespeare's
    # unigram distribution than uniform draws over the 65 characters are
    corpus = Counter(text.load_text("tinyshakespeare"))
    vocab = sorted(corpus)
    p = np.array([corpus[c] for c in vocab], float) / sum(corpus.values())

    def tv(s):  # total variation distance to the corpus' unigram distribution
        q = np.array([s.count(c) for c in vocab], float) / len(s)
        return 0.5 * np.abs(q - p).sum()

    uniform = "".join(np.random.default_rng(0).choice(vocab, 400))
    assert tv(sample[6:]) < 0.5 * tv(uniform), (tv(sample[6:]), tv(uniform))

    def entropy(s):
        q = np.array(list(Counter(s).values()), float) / len(s)
        return -(q * np.log(q)).sum()

    cold = cli("sample", str(run), "--temperature", "0.2", "--length", "400").stdout
    hot = cli("sample", str(run), "--temperature", "2.0", "--length", "400").stdout
    assert entropy(cold) < entropy(hot)  # temperature sharpens or flattens the draws


@pytest.mark.slow
def test_sample_bad_input(lm_run, default_run):
    cli, run = lm_run
    assert_one_error_line(cli("sample", str(run), "--prompt", "ROMEO€"), "never saw", "'€'")
    assert_one_error_line(cli("sample", str(run), "--temperature", "0"), "--temperature")
    assert_one_error_line(cli("sample", str(run), "--top-k", "999"), "--top-k", "65")
    assert_one_error_line(cli("sample", str(run), "--prompt", ""), "--prompt")
    assert_one_error_line(cli("sample", str(default_run)), "not a text data set")
    assert_one_error_line(cli("sample", str(run.parent / "nope")), "no such directory")
    no_model = run.parent / "copy"
    no_model.mkdir()
    for f in ("config.yaml", "summary.json", "metrics.csv"):
        (no_model / f).write_bytes((run / f).read_bytes())
    assert_one_error_line(cli("sample", str(no_model)), "no model.npz")
    for t in ("nan", "inf", "-inf"):
        assert_one_error_line(cli("sample", str(run), "--temperature", t), "finite number > 0")


@pytest.mark.slow
def test_sample_of_a_record_whose_model_or_config_was_tampered_with(lm_run, tmp_path):
    """A zero-byte model.npz is a bad file, not "interrupted" (exit 130, as click calls every
    EOFError); a pickle is never loaded; a config.yaml edited after the run does not fit its
    weights. Each is one line naming the file, exit 2."""
    import shutil

    import yaml

    cli, run = lm_run
    cases = {"zero-byte": (b"", "not a model dlx saved", "EOFError"),
             "garbage": (b"\x93NUMPY garbage" * 9, "not a model dlx saved"),
             "pickle": (None, "pickled Python objects, which dlx never loads"),
             "edited": (None, "do not fit the model its config.yaml builds", "tok.W")}
    for name, (content, *said) in cases.items():
        copy = tmp_path / name
        shutil.copytree(run, copy)
        if content is not None:
            (copy / "model.npz").write_bytes(content)
        elif name == "pickle":
            np.save(copy / "model.npz", np.array([{"W": 1}], dtype=object), allow_pickle=True)
            (copy / "model.npz.npy").rename(copy / "model.npz")
        else:
            cfg = yaml.safe_load((copy / "config.yaml").read_text())
            cfg["model"]["d_model"] *= 2
            (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
        result = cli("sample", str(copy), "--length", "5")
        assert_one_error_line(result, f"{copy / 'model.npz'}:", *said)
