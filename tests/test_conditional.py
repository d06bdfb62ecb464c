"""Class-conditional EBMs and JEM: f(x, y) = logits[y], f(x) = logsumexp, p(y|x) = softmax, the hybrid loss."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from ebmlab import EBMError
from ebmlab.models.conditional import ClassConditional, ConditionalEnergyModel
from ebmlab.nets.digits import DigitsLogitsNet
from ebmlab.training.losses import jem_loss
from ebmlab.training.presets import JEM_PRESET
from ebmlab.density import as_log_density, score_of


def jem_model(n_classes: int = 10, width: int = 32) -> ConditionalEnergyModel:
    """A JEM for digits: ``ConditionalEnergyModel(DigitsLogitsNet(n_classes, width))``."""
    return ConditionalEnergyModel(DigitsLogitsNet(n_classes, width), n_classes=n_classes)


def small_model(k: int = 4, **kw) -> ConditionalEnergyModel:
    torch.manual_seed(0)
    return ConditionalEnergyModel(nn.Sequential(nn.Linear(3, 8), nn.SiLU(), nn.Linear(8, k)), **kw)


def test_for_class_log_density_is_that_logit():
    m = small_model(n_classes=4)
    x = torch.randn(6, 3)
    logits = m.logits(x)
    for y in range(4):
        view = m.for_class(y)
        assert isinstance(view, ClassConditional)
        torch.testing.assert_close(view.log_density(x), logits[:, y])
        torch.testing.assert_close(as_log_density(view)(x), logits[:, y])  # what samplers call
        torch.testing.assert_close(m.log_density(x, y), logits[:, y])
        torch.testing.assert_close(view.score(x), score_of(lambda z: m.logits(z)[:, y], x))
    labels = torch.tensor([0, 3, 1, 2, 2, 0])
    torch.testing.assert_close(m.log_density(x, labels), logits[torch.arange(6), labels])


def test_marginal_is_logsumexp_and_classify_is_softmax():
    m = small_model(n_classes=4)
    x = torch.randn(6, 3)
    logits = m.logits(x)
    torch.testing.assert_close(m.log_density(x), torch.logsumexp(logits, 1))
    torch.testing.assert_close(m(x), torch.logsumexp(logits, 1))
    torch.testing.assert_close(m.energy(x), -torch.logsumexp(logits, 1))
    p = m.classify(x)
    assert p.shape == (6, 4) and bool((p >= 0).all())
    torch.testing.assert_close(p.sum(1), torch.ones(6))
    # p(y|x) = exp(f(x, y) - f(x)): Bayes' rule with the shared Z cancelling
    torch.testing.assert_close(p[:, 2], torch.exp(m.log_density(x, 2) - m.log_density(x)))
    assert torch.equal(m.predict(x), logits.argmax(1))


def test_n_classes_inferred_from_first_pass():
    m = small_model(k=5)
    assert m.n_classes is None
    m.log_density(torch.randn(2, 3))
    assert m.n_classes == 5
    with pytest.raises(EBMError):
        m.for_class(5)


def test_late_out_of_range_view_raises_on_use():
    m = small_model(k=3)
    view = m.for_class(7)  # K unknown yet: caught on first use
    with pytest.raises(EBMError):
        view.log_density(torch.randn(2, 3))


@pytest.mark.parametrize("y", [4, -1, 2.5, True])
def test_out_of_range_or_non_integer_class_raises(y):
    m = small_model(n_classes=4)
    with pytest.raises(EBMError) as e:
        m.for_class(y)
    assert "\n" not in str(e.value)


def test_bad_label_tensors_raise():
    m = small_model(n_classes=4)
    x = torch.randn(3, 3)
    for labels in (torch.tensor([0, 4, 1]), torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0, 1])):
        with pytest.raises(EBMError):
            m.log_density(x, labels)


def test_bounds_mask_to_minus_inf_with_finite_score():
    m = small_model(n_classes=4, bounds=[(-1, 1)] * 3)
    x = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    f = m.log_density(x)
    assert torch.isfinite(f[0]) and torch.isneginf(f[1])
    assert torch.isfinite(m.score(x)).all()
    assert torch.isneginf(m.for_class(1).log_density(x)[1]) and m.for_class(1).bounds is m.bounds


def test_jem_f_is_logsumexp_of_digits_logits():
    torch.manual_seed(0)
    model = jem_model()
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    logits = model.logits(x)
    assert logits.shape == (5, 10)
    torch.testing.assert_close(model.log_density(x), torch.logsumexp(logits, 1))
    torch.testing.assert_close(model.logits(x.reshape(5, 64)), logits)  # flat input works too
    assert isinstance(model.net, DigitsLogitsNet) and model.n_classes == 10


def test_jem_loss_value_and_gradient_signs():
    torch.manual_seed(1)
    logits = torch.randn(8, 10, requires_grad=True)
    labels = torch.randint(10, (8,))
    f_pos = torch.randn(8, requires_grad=True)
    f_neg = torch.randn(8, requires_grad=True)
    loss, stats = jem_loss(logits, labels, f_pos, f_neg, alpha_cd=0.5)
    ce = F.cross_entropy(logits, labels)
    torch.testing.assert_close(loss, ce + 0.5 * (f_neg.mean() - f_pos.mean()))
    loss.backward()
    # raising f on data lowers the loss; raising f on negatives raises it
    assert bool((f_pos.grad < 0).all()) and bool((f_neg.grad > 0).all())
    torch.testing.assert_close(f_pos.grad, torch.full((8,), -0.5 / 8))
    assert set(stats) == {"ce", "cd", "f_pos", "f_neg", "acc"}
    assert not any(v.requires_grad for v in stats.values())


def test_jem_loss_trains_a_tiny_step():
    """One optimiser step on the hybrid loss lowers it (sanity: the signs are wired end to end)."""
    torch.manual_seed(2)
    model = jem_model(width=8)
    x_pos = torch.rand(16, 1, 8, 8) * 2 - 1
    x_neg = torch.rand(16, 1, 8, 8) * 2 - 1
    labels = torch.randint(10, (16,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def loss_now():
        lp = model.logits(x_pos)
        return jem_loss(lp, labels, lp.logsumexp(1), model.log_density(x_neg))[0]

    before = loss_now()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        assert float(loss_now()) < float(before)


def test_jem_loss_rejects_bad_labels():
    logits = torch.randn(4, 10)
    f = torch.zeros(4)
    with pytest.raises(EBMError):
        jem_loss(logits, torch.tensor([0, 1, 2, 10]), f, f)
    with pytest.raises(EBMError):
        jem_loss(logits, torch.tensor([0, 1, 2]), f, f)


def test_jem_preset_has_the_papers_sampler_numbers():
    p = JEM_PRESET
    got = (p["n_steps"], p["step_size"], p["noise_scale"], p["buffer_size"], p["reinit_prob"])
    assert got == (20, 1.0, 0.01, 10000, 0.05)
    assert "Grathwohl" in p["source"]


def test_samplers_accept_a_class_view():
    from ebmlab import sample

    m = small_model(n_classes=4, bounds=[(-1, 1)] * 3)
    x0 = torch.zeros(5, 3)
    x = sample(m.for_class(3), x0, method="langevin", n_steps=3, step_size=0.01,
               generator=torch.Generator().manual_seed(0))
    assert x.shape == x0.shape and bool((x.abs() <= 1).all())
    assert all(p.grad is None for p in m.parameters())
