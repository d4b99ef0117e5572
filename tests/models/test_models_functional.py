"""ParamLayout and functional_forward: flat parameter vectors that behave exactly like the module."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from satm_cl.errors import SatmError
from satm_cl.models import ParamLayout, create_model, functional_forward, list_models

BN_MODELS = {"resnet18_bn", "resnet18_ap"}


def test_layout_records_parameters_in_order() -> None:
    model = create_model("convnet", 3, 10, 32, seed=0, width=16)
    layout = ParamLayout.from_module(model)
    named = list(model.named_parameters())
    assert layout.names == tuple(n for n, _ in named)
    assert layout.shapes == tuple(tuple(p.shape) for _, p in named)
    assert layout.numels == tuple(p.numel() for _, p in named)
    assert layout.numel == sum(p.numel() for p in model.parameters())


def test_flatten_unflatten_round_trip_and_views() -> None:
    model = create_model("convnet", 3, 10, 32, seed=0, width=16)
    layout = ParamLayout.from_module(model)
    flat = layout.flatten(model)
    assert flat.dim() == 1 and flat.dtype == torch.float32 and flat.numel() == layout.numel
    views = layout.unflatten(flat)
    for name, param in model.named_parameters():
        assert torch.equal(views[name], param)
    flat.add_(1.0)  # views share storage with flat; the model's parameters are not touched (flatten copies)
    for name, param in model.named_parameters():
        assert torch.equal(views[name], param + 1.0)


def test_load_into_copies_values() -> None:
    src = create_model("mlp", 1, 3, 8, seed=1)
    dst = create_model("mlp", 1, 3, 8, seed=2)
    layout = ParamLayout.from_module(src)
    layout.load_into(dst, layout.flatten(src).requires_grad_())
    assert torch.equal(layout.flatten(dst), layout.flatten(src))
    assert all(p.grad_fn is None and p.requires_grad for p in dst.parameters())


def test_dict_round_trip_is_json_able() -> None:
    layout = ParamLayout.from_module(create_model("lenet", 1, 10, 28, seed=0))
    again = ParamLayout.from_dict(json.loads(json.dumps(layout.to_dict())))
    assert again == layout
    with pytest.raises(SatmError, match="malformed parameter layout"):
        ParamLayout.from_dict({"names": ["a"]})


def test_mismatches_are_clear_errors() -> None:
    layout = ParamLayout.from_module(create_model("mlp", 1, 3, 8))
    with pytest.raises(SatmError, match="do not match the layout"):
        layout.flatten(create_model("mlp", 1, 4, 8))
    with pytest.raises(SatmError, match=f"length {layout.numel}"):
        layout.unflatten(torch.zeros(layout.numel + 1))


def test_gradient_through_functional_forward_matches_module_gradient() -> None:
    model = create_model("convnet", 3, 10, 32, seed=0, width=32)
    layout = ParamLayout.from_module(model)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    flat = layout.flatten(model).requires_grad_(True)
    (grad_flat,) = torch.autograd.grad(F.cross_entropy(functional_forward(model, layout, flat, x), y), flat)
    module_grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
    expected = torch.cat([g.reshape(-1) for g in module_grads])
    assert expected.numel() == layout.numel
    torch.testing.assert_close(grad_flat, expected, rtol=1e-4, atol=1e-6)


def test_second_order_gradient_flows_to_flat() -> None:
    """An unrolled SGD step on `flat` stays differentiable with respect to the synthetic images."""
    model = create_model("convnet", 1, 10, 8, seed=0, width=8)
    layout = ParamLayout.from_module(model)
    x_syn = torch.randn(4, 1, 8, 8, requires_grad=True)
    y = torch.arange(4)
    flat = layout.flatten(model).requires_grad_(True)
    (g,) = torch.autograd.grad(
        F.cross_entropy(functional_forward(model, layout, flat, x_syn), y), flat, create_graph=True
    )
    stepped = flat - 0.1 * g
    loss = (stepped - layout.flatten(model)).pow(2).sum()
    (gx,) = torch.autograd.grad(loss, x_syn)
    assert gx.abs().sum() > 0


@pytest.mark.parametrize("name", list_models())
def test_functional_forward_equals_module(name: str) -> None:
    model = create_model(name, 3, 10, 16, seed=0)
    layout = ParamLayout.from_module(model)
    x = torch.randn(3, 3, 16, 16)
    flat = layout.flatten(model)
    if name in BN_MODELS:
        model.train()
        model(torch.randn(8, 3, 16, 16))  # give the running statistics non-trivial values
        model.eval()
        buffers = {n: b.clone() for n, b in model.named_buffers()}
        torch.testing.assert_close(functional_forward(model, layout, flat, x, buffers), model(x))
    else:
        assert not list(model.buffers())
        torch.testing.assert_close(functional_forward(model, layout, flat, x), model(x))
