"""`dlx sample RUN`: text from a trained character-level language model.

Rebuilds the run's final model (model.npz) and its vocabulary from the record, checks the
request against them (a text data set, a prompt made of known characters) and draws with
:func:`dlx.nn.generate.generate`."""

from __future__ import annotations

from pathlib import Path

from dlx.errors import UsageError


def sample_text(path: str | Path, prompt: str = "\n", length: int = 500,
                temperature: float = 0.8, top_k: int | None = None, seed: int = 0) -> str:
    """The prompt followed by ``length`` sampled characters. UsageError for a path that is not
    a finished run of a character-level model, or a prompt with characters it never saw."""
    import numpy as np

    from dlx.assemble import trained_model
    from dlx.data.text import TEXT_DATASETS
    from dlx.nn.generate import generate
    from dlx.records.files import MODEL
    from dlx.records.store import load_run

    if not 0 < temperature < float("inf"):
        raise UsageError(f"--temperature must be a finite number > 0, got {temperature}")
    run = load_run(path)
    dataset = (run.config.get("dataset") or {}).get("name")
    if dataset not in TEXT_DATASETS:
        raise UsageError(f"{run.path}: trained on {dataset!r}, not a text data set; dlx sample "
                         f"needs a character-level language model (dataset: "
                         f"{', '.join(TEXT_DATASETS)})")
    if not (run.path / MODEL).is_file():
        status = run.summary.get("status", "unknown")
        raise UsageError(f"{run.path}: no {MODEL} (the run's status is {status}; only a run "
                         f"that finished saves its model)")
    if not prompt:
        raise UsageError("--prompt must have at least one character")
    model, data = trained_model(run)
    vocab = {c: i for i, c in enumerate(data.classes)}
    unknown = sorted(set(prompt) - set(vocab))
    if unknown:
        raise UsageError(f"--prompt has characters the model never saw: {''.join(unknown)!r} "
                         f"(its {len(vocab)} characters: {''.join(sorted(vocab))!r})")
    if top_k is not None and not 1 <= top_k <= len(vocab):
        raise UsageError(f"--top-k must be in [1, {len(vocab)}] (the vocabulary), got {top_k}")
    ids = generate(model, np.array([vocab[c] for c in prompt]), length,
                   block_size=data.spec.seq_len, temperature=temperature, top_k=top_k,
                   rng=np.random.default_rng(seed))
    return "".join(data.classes[i] for i in ids)
