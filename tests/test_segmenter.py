"""Router segmenter: weight resolution, the Segmenter contract, the registry and the DeepLab port.

Tests needing the pretrained TFLite file skip when the shared directory is absent.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from segcolor.errors import CheckpointError, ConfigError, SegcolorError, WeightsNotFoundError
from segcolor.router import Segmenter, create_segmenter, list_segmenters, resolve_weights
from segcolor.router import weights as weights_mod
from segcolor.router.segmenters import registry
from segcolor.router.segmenters.deeplab_mnv2 import VARIANTS, TfSameConv2d, odd_size

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGCOLOR_SHARED_DIR", REPO.parent / "shared"))
WEIGHTS = SHARED / "weights"
TFLITE = WEIGHTS / VARIANTS["deeplabv3_mnv2_voc"].tflite
# Photos of coco128 with people, birds, animals and furniture: varied, fixed for reproducibility.
AGREEMENT_IMAGES = ["000000000036", "000000000049", "000000000072", "000000000110"]


# --------------------------------------------------------------------------- weight resolution


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user weights dir, an empty cache dir under tmp_path, an empty package folder."""
    monkeypatch.delenv("SEGCOLOR_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("SEGCOLOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(weights_mod, "PACKAGED_DIR", tmp_path / "package")
    return tmp_path


def _weights_file(folder: Path, name: str = "w.bin", content: bytes = b"weights") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return hashlib.sha256(content).hexdigest()


def test_cache_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEGCOLOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights_mod.cache_dir() == tmp_path / "xdg" / "segcolor"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert weights_mod.cache_dir() == Path.home() / ".cache" / "segcolor"
    monkeypatch.setenv("SEGCOLOR_CACHE_DIR", str(tmp_path / "c"))
    assert weights_mod.cache_dir() == tmp_path / "c"


def test_resolution_order(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sha = _weights_file(clean_env / "package")
    assert resolve_weights("w.bin", sha) == clean_env / "package" / "w.bin"
    _weights_file(clean_env / "cache")
    assert resolve_weights("w.bin", sha) == clean_env / "cache" / "w.bin"
    _weights_file(clean_env / "env")
    monkeypatch.setenv("SEGCOLOR_WEIGHTS_DIR", str(clean_env / "env"))
    assert resolve_weights("w.bin", sha) == clean_env / "env" / "w.bin"
    _weights_file(clean_env / "mine", "other-name.bin")
    explicit = clean_env / "mine" / "other-name.bin"
    assert resolve_weights("w.bin", sha, explicit=explicit) == explicit
    _weights_file(clean_env / "dir")
    assert resolve_weights("w.bin", sha, explicit=clean_env / "dir") == clean_env / "dir" / "w.bin"


def test_missing_weights_message(clean_env: Path) -> None:
    source = "https://github.com/google-coral/test_data (Apache-2.0)"
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_weights("deeplabv3_mnv2_pascal_quant.tflite", "0" * 64, source=source)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("deeplabv3_mnv2_pascal_quant.tflite not found")
    assert source in msg and "$SEGCOLOR_WEIGHTS_DIR" in msg and str(clean_env / "cache") in msg
    with pytest.raises(WeightsNotFoundError, match="not found"):
        resolve_weights("w.bin", "0" * 64, explicit=clean_env / "nope.bin")


def test_sha256_mismatch_message(clean_env: Path) -> None:
    _weights_file(clean_env / "cache")
    with pytest.raises(SegcolorError) as err:
        resolve_weights("w.bin", "0" * 64)
    assert isinstance(err.value, CheckpointError | WeightsNotFoundError)
    assert "sha256 mismatch" in str(err.value) and "\n" not in str(err.value)
    assert "w.bin" in str(err.value)


def test_hash_is_memoised_until_file_changes(clean_env: Path) -> None:
    path = clean_env / "cache" / "w.bin"
    sha = _weights_file(clean_env / "cache")
    assert weights_mod.sha256_file(path) == sha
    assert any(key[0] == str(path.resolve()) for key in weights_mod._HASH_CACHE)
    path.write_bytes(b"changed content")
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse-clock filesystems
    assert weights_mod.sha256_file(path) == hashlib.sha256(b"changed content").hexdigest()


# --------------------------------------------------------------------------- contract, registry


class _Stripes(Segmenter):
    """Tiny backend: 3 classes from brightness, enough to exercise the contract and TTA."""

    def __init__(self) -> None:
        super().__init__(["background", "dark", "bright"])
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_registry_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_segmenter("stripes_test")(_Stripes)
    assert "stripes_test" in list_segmenters()
    assert "deeplabv3_mnv2_voc" in list_segmenters()
    model = create_segmenter("stripes_test", device="cpu")
    assert isinstance(model, _Stripes) and not model.training
    with pytest.raises(ValueError, match="already registered"):
        registry.register_segmenter("stripes_test")(lambda weights=None: _Stripes())
    with pytest.raises(ConfigError, match="unknown segmenter 'nope'"):
        create_segmenter("nope")


@pytest.mark.parametrize("tta", [False, True, {"scales": (0.5, 1.0), "flip": False}])
def test_predict_proba_generic(tta: bool | dict) -> None:
    probs = _Stripes().eval().predict_proba(torch.rand(2, 3, 31, 40), tta=tta)
    assert probs.shape == (2, 3, 31, 40)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 31, 40))


def test_tf_same_padding() -> None:
    """Stride-2 convs pad like TF SAME: (1,1) at odd sizes, (0,1) at even ones."""
    conv = TfSameConv2d(2, 4, 3, stride=2, padding=0)
    ref = torch.nn.Conv2d(2, 4, 3, stride=2, padding=1)
    ref.load_state_dict(conv.state_dict())
    odd, even = torch.rand(1, 2, 33, 17), torch.rand(1, 2, 32, 16)
    torch.testing.assert_close(conv(odd), ref(odd))
    expected = F.conv2d(F.pad(even, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2)
    torch.testing.assert_close(conv(even), expected)
    assert [odd_size(s) for s in (513, 512, 385, 384.75, 641)] == [513, 513, 385, 385, 641]


# --------------------------------------------------------------------------- DeepLab port


@pytest.fixture(scope="module")
def tflite_path() -> Path:
    """The shared copy where there is one, else the copy the package ships (the same file)."""
    return TFLITE if TFLITE.is_file() else weights_mod.PACKAGED_DIR / TFLITE.name


@pytest.fixture(scope="module")
def deeplab(tflite_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Segmenter:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGCOLOR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return create_segmenter(weights=tflite_path.parent)


def _gray_photo(stem: str, size: int | None = 513) -> np.ndarray:
    """A COCO eval photo as grayscale uint8, replicated to RGB (H, W, 3)."""
    path = SHARED / "data" / "eval_masks" / "coco128" / f"{stem}.jpg"
    if not path.is_file():
        pytest.skip(f"eval photo {path} is absent")
    img = Image.open(path).convert("L")
    if size is not None:
        img = img.resize((size, size), Image.BILINEAR)
    return np.repeat(np.asarray(img)[:, :, None], 3, -1)


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("size", [(101, 77), (128, 96), (513, 513)])
def test_deeplab_output_shape(deeplab: Segmenter, size: tuple[int, int]) -> None:
    with torch.no_grad():
        logits = deeplab(torch.rand(2, 3, *size))
    assert logits.shape == (2, 21, *size)
    assert deeplab.classes[15] == "person" and len(deeplab.classes) == 21


def test_deeplab_keep_aspect(deeplab: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Aspect-preserving working size: long side 513, short side the nearest 16k+1."""
    monkeypatch.setattr(deeplab, "keep_aspect", True)
    assert deeplab.working_hw(170, 256, 1.0) == (337, 513)
    with torch.no_grad():
        assert deeplab(torch.rand(1, 3, 170, 256)).shape == (1, 21, 170, 256)


def test_deeplab_softmax(deeplab: Segmenter) -> None:
    x = torch.rand(1, 3, 90, 120)
    for tta in (False, {"scales": (0.75,), "flip": True}):
        probs = deeplab.predict_proba(x, tta=tta)
        assert probs.shape == (1, 21, 90, 120) and probs.min() >= 0
        torch.testing.assert_close(probs.sum(1), torch.ones(1, 90, 120))


def test_conversion_cache_round_trip(
    tflite_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors import safe_open

    monkeypatch.setenv("SEGCOLOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEGCOLOR_WEIGHTS_DIR", str(tflite_path.parent))
    monkeypatch.setattr(weights_mod, "PACKAGED_DIR", tmp_path / "package")  # no shipped copy
    first = create_segmenter()
    cached = tmp_path / "cache" / "deeplabv3_mnv2_voc.safetensors"
    with safe_open(str(cached), framework="pt") as fh:
        assert fh.metadata()["source_sha256"] == VARIANTS["deeplabv3_mnv2_voc"].sha256
    assert not list(cached.parent.glob("*.tmp"))
    # The TFLite file is no longer reachable: the second create must read the safetensors.
    monkeypatch.setenv("SEGCOLOR_WEIGHTS_DIR", str(tmp_path / "empty"))
    second = create_segmenter()
    x = torch.rand(1, 3, 65, 65)
    with torch.no_grad():
        torch.testing.assert_close(first(x), second(x), rtol=0, atol=0)
    cached.write_bytes(b"garbage")  # a corrupt cache is rebuilt from the TFLite file
    with pytest.raises(WeightsNotFoundError):
        create_segmenter()
    monkeypatch.setenv("SEGCOLOR_WEIGHTS_DIR", str(tflite_path.parent))
    with torch.no_grad():
        torch.testing.assert_close(create_segmenter()(x), first(x), rtol=0, atol=0)


def test_agreement_with_tflite(deeplab: Segmenter, tflite_path: Path) -> None:
    """≥ 97 % argmax agreement with the TFLite interpreter at 513×513 on grayscale photos
    (TFLite's own two kernel sets agree about 98.7 % with each other)."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interp = litert.Interpreter(str(tflite_path), num_threads=2)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    agreement = []
    for stem in AGREEMENT_IMAGES:
        rgb = _gray_photo(stem)
        interp.set_tensor(inp["index"], rgb[None])
        interp.invoke()
        reference = interp.get_tensor(out["index"])[0]
        with torch.no_grad():
            ours = deeplab(_to_tensor(rgb)).argmax(1)[0].numpy()
        agreement.append((ours == reference).mean())
    assert np.mean(agreement) >= 0.97, agreement
    assert min(agreement) >= 0.9, agreement


def test_known_answer_person(deeplab: Segmenter) -> None:
    """The scikit-image astronaut photo, in grayscale at its own 512×512 (even) size, is mostly
    'person' outside the background."""
    from skimage import data

    gray = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    x = _to_tensor(np.repeat(gray[:, :, None], 3, -1))
    labels = deeplab.predict_proba(x).argmax(1)[0]
    person = (labels == deeplab.classes.index("person")).float().mean().item()
    assert person > 0.2
    counts = torch.bincount(labels.flatten(), minlength=21)
    counts[0] = 0
    assert deeplab.classes[int(counts.argmax())] == "person"


@pytest.mark.slow
def test_dm05_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The depth-multiplier-0.5 file converts onto the same code with other channel counts."""
    path = WEIGHTS / VARIANTS["deeplabv3_mnv2_dm05_voc"].tflite
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    from skimage import data

    monkeypatch.setenv("SEGCOLOR_CACHE_DIR", str(tmp_path))
    model = create_segmenter("deeplabv3_mnv2_dm05_voc", weights=path)
    gray = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    with torch.no_grad():
        labels = model(_to_tensor(np.repeat(gray[:, :, None], 3, -1))).argmax(1)[0]
    assert (labels == 15).float().mean() > 0.2


def test_the_segmenter_ships_with_the_package(
    tflite_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh install routes: with no weights folder and an empty cache the packaged file (the
    original, byte for byte, with its licence and notice) is found, and it gives the same model
    as the shared copy."""
    variant = VARIANTS["deeplabv3_mnv2_voc"]
    packaged = weights_mod.PACKAGED_DIR / variant.tflite
    assert weights_mod.sha256_file(packaged) == variant.sha256
    notice = (weights_mod.PACKAGED_DIR / "NOTICE.deeplabv3_mnv2_pascal_quant.txt").read_text()
    assert variant.sha256 in notice and "github.com/google-coral/test_data" in notice
    licence = (weights_mod.PACKAGED_DIR / "LICENSE.deeplabv3_mnv2_pascal_quant.txt").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence
    monkeypatch.delenv("SEGCOLOR_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("SEGCOLOR_CACHE_DIR", str(tmp_path / "cache"))
    assert resolve_weights(variant.tflite, variant.sha256) == packaged
    x = torch.rand(1, 3, 65, 65)
    with torch.no_grad():
        shipped = create_segmenter()(x)
        shared = create_segmenter(weights=tflite_path)(x)
    torch.testing.assert_close(shipped, shared, rtol=0, atol=0)  # same file, same conversion
