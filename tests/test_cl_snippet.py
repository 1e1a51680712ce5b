"""The documented drop-in example (our storage policy in a user's Avalanche strategy) runs as written.

The snippet lives in ``docs/snippets/cl_plugin.py``; docs/continual.md shows the
same text between ``<!-- cl-snippet -->`` and ``<!-- /cl-snippet -->`` (in a
python fence), and :func:`test_the_docs_show_the_tested_snippet` keeps the two
equal.  (tests/test_docs.py runs every other python block of the docs.)
"""
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = ROOT / "docs" / "snippets" / "cl_plugin.py"
PAGE = ROOT / "docs" / "continual.md"  # the page that shows it
OPEN, CLOSE = "<!-- cl-snippet -->", "<!-- /cl-snippet -->"


def marked_block(text: str) -> str | None:
    """The code between the markers, without its fence lines; None when the page has no block."""
    if OPEN not in text:
        return None
    body = text.split(OPEN, 1)[1].split(CLOSE, 1)[0].strip("\n")
    lines = body.splitlines()
    if lines and lines[0].startswith("```"):
        lines = lines[1:]
    if lines and lines[-1].startswith("```"):
        lines = lines[:-1]
    return "\n".join(lines) + "\n"


def test_the_docs_show_the_tested_snippet():
    block = marked_block(PAGE.read_text())
    assert block is not None, f"{PAGE.name} has no cl-snippet block (docs/snippets/cl_plugin.py goes between the markers)"
    assert block == SNIPPET.read_text()


def test_the_snippet_runs_in_a_users_avalanche_setup(digits, tmp_path, monkeypatch):
    from fyi_apps.networks import create_model
    from fyi_apps.synset import SyntheticSet, save_synset
    from fyi_apps.tasks.continual import make_benchmark

    info = digits.info
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat_interleave(10)
    images = torch.randn(100, 1, 8, 8, generator=g)
    save_synset(tmp_path / "my_set.safetensors",
                SyntheticSet(images=images, labels=labels, dataset=info.name, class_names=list(info.class_names),
                             mean=list(info.mean), std=list(info.std), method="dm", ipc=10))
    monkeypatch.chdir(tmp_path)
    model = create_model("ConvNetW32", channels=1, num_classes=10, image_size=8, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    user = {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=0.01),
            "benchmark": make_benchmark(digits, 5, seed=0)}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        exec(compile(SNIPPET.read_text(), str(SNIPPET), "exec"), user)
    memory = user["memory"]
    assert memory.class_counts() == {c: 10 for c in range(10)}
    for c in range(10):  # the memory holds the file's images, as the policy's Avalanche buffer
        assert torch.equal(memory.images[memory.labels == c], images[labels == c])
    assert len(memory.buffer) == 100 and user["replay"].storage_policy is memory
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    from fyi_apps.tasks.continual import KEY_STREAM_ACC

    acc = user["results"][KEY_STREAM_ACC]  # Avalanche's default evaluator
    assert 0.0 <= acc <= 1.0


def test_the_online_variant_in_the_snippets_comment_builds():
    import fyi_apps.data
    from fyi_apps.tasks.continual import make_memory

    assert "make_memory(\"dm+fyi\", ..., info=fyi_apps.data.dataset_info(\"cifar10\"))" in SNIPPET.read_text()
    memory = make_memory("dm+fyi", ipc=10, num_classes=10, info=fyi_apps.data.dataset_info("cifar10"))
    assert memory.max_size == 100 and memory.source.method == "dm" and memory.source.fyi == "flip"
