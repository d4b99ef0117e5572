"""Every registered model builds and runs forward/backward at the supported sizes, or refuses clearly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from satm_cl.errors import SatmError
from satm_cl.models import MODELS, create_model, list_models, model_options

ALL = ["alexnet", "convnet", "lenet", "mlp", "resnet18", "resnet18_ap", "resnet18_bn", "vgg11"]
SIZES = [4, 8, 28, 32, 64]
# (model, side) pairs that must refuse with default options; everything else in the matrix must work.
REFUSES = {("lenet", 4): "lenet needs images of at least 8×8, got 4×4", ("convnet", 4): "maximum depth"}


def test_registry_lists_every_model() -> None:
    assert list_models() == ALL
    assert MODELS.names() == ALL


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("side", SIZES)
@pytest.mark.parametrize("name", ALL)
def test_forward_backward_or_clear_refusal(name: str, side: int, channels: int) -> None:
    if (name, side) in REFUSES:
        with pytest.raises(SatmError, match=REFUSES[(name, side)]) as info:
            create_model(name, channels, 10, side, seed=0)
        assert "\n" not in str(info.value)
        return
    model = create_model(name, channels, 10, side, seed=0)
    x = torch.randn(2, channels, side, side)
    logits = model(x)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    logits.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_non_square_images() -> None:
    for name in ALL:
        model = create_model(name, 3, 5, (32, 16), seed=0)
        assert model(torch.randn(2, 3, 32, 16)).shape == (2, 5)


@pytest.mark.parametrize(("depth", "side"), [(3, 128), (5, 128), (4, 28), (1, 8)])
def test_convnet_depths(depth: int, side: int) -> None:
    model = create_model("convnet", 3, 10, side, seed=0, depth=depth, width=16)
    assert model(torch.randn(2, 3, side, side)).shape == (2, 10)


def test_convnet_too_deep_names_maximum_depth() -> None:
    with pytest.raises(SatmError, match=r"8×8.*maximum depth for that size is 3"):
        create_model("convnet", 3, 10, 8, depth=4)
    # Without pooling the map never shrinks, so any depth works.
    create_model("convnet", 3, 10, 8, depth=5, width=8, pooling="none")


@pytest.mark.parametrize("norm", ["instance", "batch", "layer", "none"])
@pytest.mark.parametrize("pooling", ["avg", "max", "none"])
def test_convnet_options(norm: str, pooling: str) -> None:
    model = create_model("convnet", 3, 10, 16, seed=0, width=8, depth=2, norm=norm, pooling=pooling)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("norm", ["instance", "batch", "layer", "none"])
@pytest.mark.parametrize("name", ["vgg11", "resnet18", "resnet18_ap"])
def test_norm_options(name: str, norm: str) -> None:
    model = create_model(name, 3, 10, 8, seed=0, norm=norm)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("name", ["vgg11", "resnet18", "resnet18_ap"])
@pytest.mark.parametrize("side", [8, 28])
def test_instance_norm_never_sees_a_single_pixel(name: str, side: int) -> None:
    """Instance norm on a 1×1 map outputs only its bias; downsampling must stop at 2×2 instead."""
    model = create_model(name, 3, 10, side, seed=0, norm="instance")
    seen: list[int] = []
    for module in model.modules():
        if isinstance(module, nn.GroupNorm):
            module.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0][0, 0].numel()))
    model(torch.randn(2, 3, side, side))
    assert seen and min(seen) >= 4
    out = model(torch.randn(2, 3, side, side))
    assert not torch.allclose(out[0], out[1])


def test_mlp_hidden_option() -> None:
    model = create_model("mlp", 1, 3, 8, seed=0, hidden=[16])
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 3)
    assert create_model("mlp", 1, 3, 8, hidden=())(torch.randn(4, 1, 8, 8)).shape == (4, 3)


def test_seed_is_reproducible_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = create_model("convnet", 3, 10, 32, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    b = create_model("convnet", 3, 10, 32, seed=7)
    c = create_model("convnet", 3, 10, 32, seed=8)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True))
    assert torch.equal(torch.get_rng_state(), state)


def test_unseeded_construction_uses_global_rng() -> None:
    torch.manual_seed(5)
    a = create_model("mlp", 1, 2, 8)
    torch.manual_seed(5)
    b = create_model("mlp", 1, 2, 8)
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters(), strict=True))


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(SatmError, match="unknown model 'convnett'; valid: alexnet, convnet, lenet"):
        create_model("convnett", 3, 10, 32)


@pytest.mark.parametrize(
    ("name", "size", "kw", "pattern"),
    [
        ("convnet", 32, {"norm": "foo"}, "norm must be one of instance, batch, layer, none; got 'foo'"),
        ("convnet", 32, {"depth": 0}, "depth must be an integer >= 1, got 0"),
        ("convnet", 32, {"width": "wide"}, "width must be an integer"),
        ("convnet", 32, {"width": True}, "width must be an integer"),
        ("convnet", 32, {"pooling": "sum"}, "pooling must be one of avg, max, none"),
        (
            "convnet",
            32,
            {"dropout": 0.1},
            "unknown option.*dropout.*convnet.*valid: width, depth, norm, pooling",
        ),
        ("lenet", 32, {"norm": "batch"}, r"unknown option.*norm.*'lenet'; valid: \(none\)"),
        ("vgg11", 32, {"norm": "group"}, "vgg11: norm must be one of"),
        ("resnet18", 32, {"norm": 3}, "resnet18: norm must be one of"),
        ("mlp", 32, {"hidden": [0]}, "hidden width must be an integer >= 1"),
        ("mlp", 32, {"hidden": "128"}, "hidden must be a list"),
        ("mlp", 0, {}, "image_size must be a positive int"),
        ("mlp", (8, 8, 8), {}, "image_size must be a positive int"),
    ],
)
def test_bad_options_are_one_line_errors(
    name: str, size: object, kw: dict[str, object], pattern: str
) -> None:
    with pytest.raises(SatmError, match=pattern) as info:
        create_model(name, 3, 10, size, **kw)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_bad_channels_classes_and_seed() -> None:
    with pytest.raises(SatmError, match="in_channels"):
        create_model("mlp", 0, 10, 8)
    with pytest.raises(SatmError, match="num_classes"):
        create_model("mlp", 1, 0, 8)
    with pytest.raises(SatmError, match="seed"):
        create_model("mlp", 1, 2, 8, seed=-1)


def test_model_options_reports_defaults() -> None:
    assert model_options("convnet") == {"width": 128, "depth": 3, "norm": "instance", "pooling": "avg"}
    assert model_options("vgg11") == {"norm": "instance"}
    assert model_options("resnet18_ap") == {"norm": "batch"}
    assert model_options("lenet") == {}


def test_lenet_keeps_mtt_geometry_at_28_and_32() -> None:
    """28×28 (padded first conv) and 32×32 both reach the classic 16×5×5 feature map."""
    for side in (28, 32):
        model = create_model("lenet", 1, 10, side)
        first_linear = next(m for m in model.modules() if isinstance(m, nn.Linear))
        assert first_linear.in_features == 16 * 5 * 5
