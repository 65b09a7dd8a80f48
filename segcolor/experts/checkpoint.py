"""Expert checkpoints: safetensors weights with a card in the file's metadata.

The card (name, category, profile, arch and its config, training data summary, training config,
metrics) travels inside the ``.safetensors`` file, so one file is enough to rebuild the expert;
a ``.card.json`` copy is written beside it for people to read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from segcolor.errors import CheckpointError
from segcolor.experts.base import Expert
from segcolor.experts.registry import create_expert
from segcolor.io.atomic import atomic_write
from segcolor.nets import assign_weights, build_empty
from segcolor.nets.loading import CARD_KEY, read_metadata
from segcolor.paths import BEST, EXPERT, portable_path, shared_dir

FORMAT = "segcolor-expert/1"


def save_expert(
    expert: Expert, path: str | Path, card: dict[str, Any] | None = None, half: bool = False
) -> Path:
    """Write ``expert`` and its card to ``path`` atomically; ``half`` stores fp16 weights."""
    path = Path(path)
    full_card = {
        "format": FORMAT,
        **(card or {}),
        "arch": expert.arch,
        "arch_config": expert.arch_config,
    }
    state = {k: v.detach().to("cpu").contiguous() for k, v in expert.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    metadata = {CARD_KEY: json.dumps(full_card, sort_keys=True, default=str)}
    with atomic_write(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    with atomic_write(path.with_suffix(".card.json")) as tmp:
        tmp.write_text(json.dumps(full_card, indent=2, sort_keys=True, default=str) + "\n")
    return path


def read_card(path: str | Path) -> dict[str, Any]:
    """The card stored in a checkpoint, without loading its weights."""
    metadata = read_metadata(path, "expert checkpoint")
    if CARD_KEY not in metadata:
        raise CheckpointError("safetensors file has no segcolor card (not an expert)", path)
    card = json.loads(metadata[CARD_KEY])
    if card.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint format {card.get('format')!r} is not supported (expected {FORMAT})", path
        )
    return card


def load_expert(path: str | Path, device: torch.device | str = "cpu") -> Expert:
    """Rebuild an expert from its checkpoint alone (weights loaded safely, in float32). It is
    built empty, so start-up spends nothing on a random init the weights replace."""
    card = read_card(path)
    expert = build_empty(create_expert, card["arch"], **card.get("arch_config", {}))
    try:
        assign_weights(expert, load_file(str(path)))
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise CheckpointError(
            f"weights do not match arch {card['arch']!r} ({first})", path
        ) from None
    expert.card = card
    return expert.to(device).eval()


def portable_card(card: dict[str, Any], shared: Path | None) -> dict[str, Any]:
    """The card with machine paths removed: paths under the shared directory become
    ``$SEGCOLOR_SHARED_DIR/...``, other absolute paths keep their file name only."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str) and value.startswith("/"):
            if shared is not None and Path(value).is_relative_to(shared):
                return portable_path(value, shared)
            return Path(value).name
        return value

    return clean(card)


def export_expert(
    source: str | Path, destination: str | Path, half: bool = True, best: bool = False
) -> Path:
    """A trained expert (a run folder or a checkpoint) as a file to ship or share.

    fp16 halves the size with no visible change in color (ab errors well under 0.1 Lab units),
    and the card loses machine paths so the file can be committed or published.
    """
    source = Path(source)
    if source.is_dir():
        source = source / (BEST if best else EXPERT)
    destination = Path(destination)
    if destination.resolve() == source.resolve():
        raise CheckpointError("the export would overwrite its source; choose another -o", source)
    expert = load_expert(source)
    shared = shared_dir()
    card = portable_card(dict(expert.card), shared.resolve() if shared else None)
    card["exported"] = {"from": source.name, "dtype": "float16" if half else "float32"}
    return save_expert(expert, destination, card, half=half)
