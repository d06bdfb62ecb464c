"""Composing EBMs: because a model is just f = log_density, models combine by arithmetic on f.

Every combinator here is itself an ``nn.Module`` with the model API (``log_density``, ``energy``,
``log_ratio``, ``score``, ``inside``, ``bounds``), so samplers, losses and metrics take it
wherever they take an ``EnergyModel``. Components may be models, objects with ``.log_density``,
or plain callables ``f: [B, *event] -> [B]`` (see ``ebmlab.models.energy.as_log_density``).

=============  ==========================  ========================================  ==============
class          op                          log density                               support (box)
=============  ==========================  ========================================  ==============
Product        AND, product of experts     Σ w_i f_i          (p ∝ Π p_i^{w_i})      intersection
Temperature    temperature                 f / T              (p ∝ p^{1/T})          same
Mixture        OR                          log Σ w_i exp(f_i − log Z_i)              union box
Contrast       AND NOT                     w_a f_a − α f_b    (p ∝ p_a^{w_a}/p_b^α)  intersection
Condition      fix part of x               f(x_fixed ⊕ x_free), over x_free only     free dims
=============  ==========================  ========================================  ==============

Class views: ``class_view(model, y)`` is class y of a conditional model (``for_class(y)``,
f(x) = logits[y]), so the classes of one conditional/JEM run compose like runs.

Only Mixture cares about the normalising constants: the others change Z but not the *shape*
they are meant to have, while a mixture of unnormalised models silently weights each one by its
Z_i (see ``Mixture``). The JSON recipe of a composite (what ``ebmlab compose`` writes) is
``ebmlab.models.spec``; ``OPS`` here is the one table from the and / or / not names to the classes.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ebmlab.box import Box, inside_bounds, intersect
from ebmlab.density import DensityMethods, as_log_density
from ebmlab.errors import EBMError


class _Callable(nn.Module):
    """Holds a plain callable f so that every component can live in one ``nn.ModuleList``."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _as_module(model: Any) -> nn.Module:
    as_log_density(model)  # raises EBMError for things that are not models
    return model if isinstance(model, nn.Module) else _Callable(model)


def _buffer(box: Box | None, models: Sequence[Any]) -> torch.Tensor | None:
    """A composite's ``bounds`` tensor: float32 [d, 2] like every model's (``box.register_bounds``), on the
    device of the components' own bounds (a ``Box`` keeps its rows on the CPU)."""
    if box is None:
        return None
    device = next((b.device for m in models if isinstance(b := getattr(m, "bounds", None), torch.Tensor)), None)
    return box.rows.to(device=device, dtype=torch.float32)


def _check_weights(weights: Sequence[float] | None, n: int, what: str, positive: bool) -> list[float]:
    if weights is None:
        return [1.0] * n
    w = [float(v) for v in weights]
    if len(w) != n:
        raise EBMError(f"{what}: got {len(w)} weights for {n} models; give exactly one weight per model")
    for v in w:
        if not math.isfinite(v) or (positive and v <= 0):
            need = "positive finite numbers" if positive else "finite numbers"
            raise EBMError(f"{what}: weight {v} is not allowed; weights must be {need}")
    return w


def check_compatible(models: Sequence[Any], probe: torch.Tensor | None = None) -> tuple[int, ...] | None:
    """Raise ``EBMError`` when models clearly cannot share one input space; return the event shape if known.

    Checks, each only where the information exists: ``event_shape`` attributes agree; ``bounds``
    have the same number of dimensions; and, given ``probe`` (a small batch ``[B, *event]`` in the
    data's scale), every model accepts it and returns ``[B]``. Scale (how the data were
    normalised) is not visible on a bare model; compare the run directories' data configs for that.
    """
    if len(models) == 0:
        raise EBMError("nothing to compose: give at least one model")
    shapes = {tuple(s) for m in models if (s := getattr(m, "event_shape", None)) is not None}
    if len(shapes) > 1:
        raise EBMError(f"the models expect different data shapes {sorted(shapes)}; "
                       "compose models trained on the same kind of data")
    dims = {b.dim for m in models if (b := Box.of(m)) is not None}
    if len(dims) > 1:
        raise EBMError(f"the models' bounds have different dimensions {sorted(dims)}; "
                       "compose models trained on the same kind of data")
    event = next(iter(shapes)) if shapes else None
    if probe is not None:
        if event is not None and tuple(probe.shape[1:]) != event:
            raise EBMError(f"probe has event shape {tuple(probe.shape[1:])} but the models expect {event}")
        for i, m in enumerate(models):
            try:
                with torch.no_grad():
                    out = as_log_density(m)(probe)
            except EBMError:
                raise
            except Exception as e:  # a shape error deep inside someone's network
                raise EBMError(f"model {i} cannot take data of shape {tuple(probe.shape[1:])} "
                               f"({type(e).__name__}); compose models trained on the same kind of data") from None
            if tuple(out.shape) != (probe.shape[0],):
                raise EBMError(f"model {i} returned shape {tuple(out.shape)} for a batch of "
                               f"{probe.shape[0]}; expected [B]")
        event = tuple(probe.shape[1:])
    return event


class ComposedModel(DensityMethods, nn.Module):
    """Base class: the model API on top of an abstract ``log_density``.

    Attributes:
        models: the components (``nn.ModuleList``), so ``.to(device)`` / ``state_dict`` reach them.
        bounds: ``[d, 2]`` float32 box of the support, or None (unbounded).
        event_shape: the input event shape when the components or the probe revealed it, else None.
    """

    op: str = ""

    def __init__(self, models: Sequence[Any], probe: torch.Tensor | None = None) -> None:
        super().__init__()
        models = list(models)
        self.event_shape = check_compatible(models, probe)
        self.models = nn.ModuleList(_as_module(m) for m in models)
        self.bounds: torch.Tensor | None = None

    def _set_bounds(self, b: torch.Tensor | None) -> None:
        if b is None:
            self.bounds = None
        else:
            del self.bounds
            self.register_buffer("bounds", b, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density(x)

    def _component_f(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """f_i(x), shape [B], for component i (looked up each call so .to()/copies stay consistent)."""
        return as_log_density(self.models[i])(x)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """f(x), shape [B]."""
        raise NotImplementedError

    def inside(self, x: torch.Tensor) -> torch.Tensor:
        """Bool [B]: whether each point lies in the composite's support box (all True without bounds)."""
        return inside_bounds(x, self.bounds)

    def spec_params(self) -> dict:  # pragma: no cover - abstract
        """The op's own arguments as JSON-able values (what ``ebmlab.models.spec.to_spec`` records)."""
        raise NotImplementedError


class _WeightedSum(ComposedModel):
    """Σ w_i f_i restricted to the intersection of the components' boxes.

    Why mask: a component with bounds returns f = -inf outside its box, and a negative or zero
    weight would turn that into +inf or nan. Inside the intersection every f_i is finite, so we
    evaluate the sum there and put -inf outside.
    """

    def __init__(self, models: Sequence[Any], weights: list[float], probe: torch.Tensor | None) -> None:
        super().__init__(models, probe)
        self.weights = weights
        self._set_bounds(_buffer(intersect(Box.of(m) for m in self.models), self.models))

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        fs = [self._component_f(i, x) for i in range(len(self.models))]
        if self.bounds is None:
            return sum(w * f for w, f in zip(self.weights, fs))
        ok = self.inside(x)
        total = sum(w * torch.where(ok, f, torch.zeros_like(f)) for w, f in zip(self.weights, fs))
        return torch.where(ok, total, torch.full_like(total, float("-inf")))


class Product(_WeightedSum):
    """AND / product of experts: f = Σ_i w_i f_i, i.e. p ∝ Π_i p_i^{w_i}.

    Args:
        models: the experts (at least one).
        weights: one positive weight per model (default all 1). A weight is an inverse
            temperature on that expert: 2 sharpens it, 0.5 flattens it.
        probe: optional batch ``[B, *event]`` to check every model accepts the same data.
    Support: the intersection of the components' bounds (EBMError if empty).
    """

    op = "and"

    def __init__(self, models: Sequence[Any], weights: Sequence[float] | None = None,
                 probe: torch.Tensor | None = None) -> None:
        models = list(models)
        if not models:
            raise EBMError("nothing to compose: give at least one model")
        super().__init__(models, _check_weights(weights, len(models), "and", positive=True), probe)

    def spec_params(self) -> dict:
        return {"weights": list(self.weights)}


class Contrast(_WeightedSum):
    """AND NOT: f = w_a f_a − α f_b, i.e. p ∝ p_a^{w_a} / p_b^α (favour a, avoid what b likes).

    Args:
        model_a: the model to keep.
        model_b: the model to steer away from.
        alpha: strength of the negation, ≥ 0 (0 gives model_a back).
        weight_a: weight on model_a (default 1), so the CLI's ``--weights w_a,alpha`` maps directly.
    Support: the intersection of both boxes — outside b's box p_b = 0 and the ratio is undefined.
    Note: with α ≥ w_a the result need not be normalisable on an unbounded space (p_b's tails
    may fall faster than p_a's); give the components bounds or keep α small.
    """

    op = "not"

    def __init__(self, model_a: Any, model_b: Any, alpha: float = 1.0, weight_a: float = 1.0,
                 probe: torch.Tensor | None = None) -> None:
        alpha, weight_a = float(alpha), float(weight_a)
        if not math.isfinite(alpha) or alpha < 0:
            raise EBMError(f"not: alpha must be a finite number >= 0, got {alpha}")
        _check_weights([weight_a], 1, "not", positive=True)
        super().__init__([model_a, model_b], [weight_a, -alpha], probe)
        self.alpha, self.weight_a = alpha, weight_a

    def spec_params(self) -> dict:
        return {"weights": [self.weight_a, self.alpha]}


class Temperature(ComposedModel):
    """f / T, i.e. p ∝ p^{1/T}: T > 1 flattens (more diverse samples), T < 1 sharpens.

    Args:
        model: the model to temper.
        T: temperature, a finite number > 0.
    """

    op = "temperature"

    def __init__(self, model: Any, T: float) -> None:
        T = float(T)
        if not math.isfinite(T) or T <= 0:
            raise EBMError(f"temperature must be a finite number > 0, got {T}")
        super().__init__([model])
        self.T = T
        self._set_bounds(_buffer(Box.of(self.models[0]), self.models))

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        return self._component_f(0, x) / self.T  # -inf / T stays -inf, so no mask is needed

    def spec_params(self) -> dict:
        return {"T": self.T}


class Mixture(ComposedModel):
    """OR: f = log Σ_i π_i exp(f_i − log Z_i), with π = weights / Σ weights.

    The subtlety: each f_i is only known up to its own constant log Z_i, and
    ``exp(f_i) = Z_i p_i``. Mixing unnormalised models therefore mixes the *normalised* densities
    with effective weights π_i Z_i — a model whose f happens to be larger by 10 takes e^10 times
    more mass, whatever ``weights`` say. Pass ``log_z`` (exact by quadrature in low dimension,
    else an AIS estimate from ``ebmlab.log_z``) to get the mixture you asked for; then, for
    weights summing to 1, the result is itself normalised (log Z = 0). Without ``log_z`` the
    mixture is of the unnormalised ``exp(f_i)`` — fine only when the models' constants are
    comparable, e.g. when they were trained with a shared normaliser.

    Args:
        models: the components (at least one).
        weights: positive mixing weights (default equal), renormalised to sum to 1.
        log_z: optional log normalising constant of each model.
        probe: optional batch ``[B, *event]`` to check every model accepts the same data.
    Support: the bounding box of the union of the components' boxes (unbounded if any
    component is unbounded); inside it, points outside every component's own box get -inf.
    """

    op = "or"

    def __init__(self, models: Sequence[Any], weights: Sequence[float] | None = None,
                 log_z: Sequence[float] | None = None, probe: torch.Tensor | None = None) -> None:
        models = list(models)
        if not models:
            raise EBMError("nothing to compose: give at least one model")
        w = _check_weights(weights, len(models), "or", positive=True)
        super().__init__(models, probe)
        total = sum(w)
        self.weights = [v / total for v in w]
        if log_z is not None:
            log_z = [float(v) for v in log_z]
            if len(log_z) != len(models) or not all(math.isfinite(v) for v in log_z):
                raise EBMError(f"or: log_z needs one finite number per model ({len(models)}), got {log_z}")
        self.log_z = log_z
        # constant offsets log π_i − log Z_i, one per component
        self._offsets = [math.log(v) - (log_z[i] if log_z else 0.0) for i, v in enumerate(self.weights)]
        boxes = [Box.of(m) for m in self.models]
        if all(b is not None for b in boxes):
            union = Box(torch.stack([torch.stack([b.low for b in boxes]).amin(0),
                                     torch.stack([b.high for b in boxes]).amax(0)], dim=1))
            self._set_bounds(_buffer(union, self.models))

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        terms = torch.stack([self._component_f(i, x) + c for i, c in enumerate(self._offsets)], dim=1)  # [B, K]
        # Where every term is -inf (outside all components), logsumexp's gradient is nan; compute
        # those rows on zeros and put -inf back, so scores stay finite (zero) there.
        dead = torch.isneginf(terms).all(dim=1)
        safe = torch.where(dead[:, None], torch.zeros_like(terms), terms)
        out = torch.logsumexp(safe, dim=1)
        return torch.where(dead, torch.full_like(out, float("-inf")), out)

    def spec_params(self) -> dict:
        return {"weights": list(self.weights), "log_z": self.log_z}


class Condition(ComposedModel):
    """Fix part of the input: the density of the free part, p(x_free | x_fixed) ∝ exp f(x_fixed ⊕ x_free).

    The event of this model is the *free* part only, flattened to ``[B, n_free]`` — so its
    normalised density is the true conditional, and any sampler can run on it. ``embed`` puts a
    free part back into full inputs (e.g. to write an inpainted image).

    Args:
        model: the model of the full input, event shape ``E``.
        fixed_values: tensor of shape ``E`` (one condition for all chains) or ``[B, *E]``
            (one per chain; then batches must have that B). Entries where the mask is False are ignored.
        fixed_mask: bool tensor of shape ``E``; True marks fixed entries. At least one entry must be free.
    Support: the model's bounds restricted to the free entries; the fixed values must lie
    inside the model's bounds.
    """

    op = "condition"

    def __init__(self, model: Any, fixed_values: torch.Tensor, fixed_mask: torch.Tensor) -> None:
        mask = torch.as_tensor(fixed_mask, dtype=torch.bool)
        values = torch.as_tensor(fixed_values)
        if not values.dtype.is_floating_point:
            values = values.float()
        event = tuple(mask.shape)
        if tuple(values.shape) != event and tuple(values.shape[1:]) != event:
            raise EBMError(f"condition: fixed_values shape {tuple(values.shape)} does not match the mask "
                           f"shape {event} (give shape E or [B, *E])")
        if bool(mask.all()):
            raise EBMError("condition: every entry is fixed; leave at least one entry free")
        shape_attr = getattr(model, "event_shape", None)
        if shape_attr is not None and tuple(shape_attr) != event:
            raise EBMError(f"condition: the mask has shape {event} but the model expects {tuple(shape_attr)}")
        super().__init__([model])
        self.event_shape_full = event
        self.register_buffer("fixed_mask", mask, persistent=False)
        self.register_buffer("fixed_values", values, persistent=False)
        # positions of the free entries in the flattened event
        self.register_buffer("free_index", (~mask.reshape(-1)).nonzero().squeeze(1), persistent=False)
        self.event_shape = (int(self.free_index.numel()),)
        b = _buffer(Box.of(self.models[0]), self.models)
        if b is not None:
            if b.shape[0] != mask.numel():
                raise EBMError(f"condition: the model's bounds have {b.shape[0]} dimensions "
                               f"but the mask has {mask.numel()}")
            flat_vals = values.reshape(-1, mask.numel())[:, mask.reshape(-1)]
            fixed_b = b[mask.reshape(-1)]
            if not bool(((flat_vals >= fixed_b[:, 0]) & (flat_vals <= fixed_b[:, 1])).all()):
                raise EBMError("condition: a fixed value lies outside the model's bounds, "
                               "so the conditional is zero everywhere")
            self._set_bounds(b[self.free_index])

    def embed(self, x_free: torch.Tensor) -> torch.Tensor:
        """[B, n_free] -> [B, *E]: full inputs with the fixed entries filled in."""
        B = x_free.shape[0]
        n = self.fixed_mask.numel()
        vals = self.fixed_values.to(device=x_free.device, dtype=x_free.dtype)
        if vals.ndim == len(self.event_shape_full):
            full = vals.reshape(1, n).expand(B, n).clone()
        else:
            if vals.shape[0] != B:
                raise EBMError(f"condition: {vals.shape[0]} fixed values were given but the batch has {B} chains")
            full = vals.reshape(B, n).clone()
        full[:, self.free_index] = x_free.reshape(B, -1)
        return full.reshape(B, *self.event_shape_full)

    def free_part(self, x_full: torch.Tensor) -> torch.Tensor:
        """[B, *E] -> [B, n_free]: the free entries of full inputs (e.g. a starting point for sampling)."""
        return x_full.reshape(x_full.shape[0], -1)[:, self.free_index]

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """f(x_fixed ⊕ x), x: [B, n_free] -> [B]."""
        return self._component_f(0, self.embed(x))

    def spec_params(self) -> dict:
        return {"fixed_values": self.fixed_values.tolist(), "fixed_mask": self.fixed_mask.tolist()}


def _contrast(models: Sequence[Any], weights: Sequence[float] | None = None,
              probe: torch.Tensor | None = None) -> Contrast:
    """"not" with the command line's weights: exactly two models, weights ``[alpha]`` or ``[w_a, alpha]``."""
    if len(models) != 2:
        raise EBMError(f"not: give exactly two models (A and the one to avoid), got {len(models)}")
    w = [1.0] if weights is None else [float(v) for v in weights]
    if len(w) not in (1, 2):
        raise EBMError(f"not: give weights as 'alpha' or 'w_a,alpha', got {len(w)} numbers")
    w_a, alpha = (1.0, w[0]) if len(w) == 1 else (w[0], w[1])
    return Contrast(models[0], models[1], alpha=alpha, weight_a=w_a, probe=probe)


# The and / or / not switch, one table for ``compose`` (the CLI) and ``ebmlab.models.spec.from_spec``
# (run directories): each entry takes (models, weights, probe=...) with weights as the CLI gives them.
OPS: dict[str, Callable[..., ComposedModel]] = {"and": Product, "or": Mixture, "not": _contrast}
OP_ALIASES = {"product": "and", "mixture": "or", "contrast": "not"}


def compose(op: str, models: Sequence[Any], weights: Sequence[float] | None = None,
            probe: torch.Tensor | None = None, **kwargs: Any) -> ComposedModel:
    """The CLI's entry point: ``op`` in {"and", "or", "not"} (also "product", "mixture", "contrast").

    ``weights`` as on the command line: for "and"/"or" one per model; for "not" (exactly two
    models, A AND NOT B) either ``[alpha]`` or ``[w_a, alpha]``. Extra keyword arguments go to
    the class (e.g. ``log_z`` for "or").
    """
    build = OPS.get(OP_ALIASES.get(op, op))
    if build is None:
        raise EBMError(f"unknown composition op {op!r}; choose one of and, or, not")
    return build(models, weights, probe=probe, **kwargs)


def class_view(model: Any, klass: int, name: str = "the model") -> nn.Module:
    """``model.for_class(klass)`` with one-line errors for an unconditional model (``name`` names it)."""
    for_class = getattr(model, "for_class", None)
    if for_class is None:
        what = "a composite" if isinstance(model, ComposedModel) else "unconditional"
        raise EBMError(f"class {klass} of {name}: a class needs a conditional model (trained with --preset "
                       f"conditional or jem), and {name} is {what}")
    try:
        return for_class(int(klass))
    except EBMError as e:
        raise EBMError(f"{name}: {e}") from None
