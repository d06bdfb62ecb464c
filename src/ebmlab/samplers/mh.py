"""Random-walk Metropolis–Hastings (Metropolis et al. 1953); needs f only, never its gradient."""
from __future__ import annotations

import torch

from ebmlab.errors import EBMError
from ebmlab.models.energy import EnergyModel
from ebmlab.samplers.accept import mh_select, where_accepted
from ebmlab.samplers.base import ChainState, LogDensity, Sampler, StepInfo, log_density
from ebmlab.samplers.proposals import GaussianRandomWalk, Proposal, UniformJumpProposal


class MetropolisHastings(Sampler):
    """Metropolis–Hastings with a pluggable proposal; calibrated (leaves p ∝ exp(f) invariant).

    Update rule, per chain:
        x' ~ q(· | x)                                   (e.g. x' = x + scale * z)
        log_alpha = f(x') - f(x) [+ log q(x|x') - log q(x'|x) if q is not symmetric]
        x <- x'  if log_alpha >= 0, else with probability exp(log_alpha); otherwise x stays.
    A proposal whose f is not finite, or that lies outside the proposal's box, is rejected.

    Args:
        f: log unnormalised density [B, *event] -> [B] (a model, or any callable).
        proposal: a ``Proposal``; default ``GaussianRandomWalk(0.1)``. Use ``BitFlip`` for {0, 1}
            states and ``UniformJumpProposal`` for bounded, multi-modal targets.

    States x: [B, *event]; works on float, int or bool states (the dtype is kept).
    """

    is_calibrated = True
    needs_score = False

    def __init__(self, f: LogDensity | torch.nn.Module, proposal: Proposal | None = None) -> None:
        super().__init__(f)
        if proposal is None:
            proposal = GaussianRandomWalk(0.1)
        if not callable(getattr(proposal, "propose", None)):
            raise EBMError(f"proposal must be a Proposal (with a propose(x, generator) method), "
                           f"got {type(proposal).__name__}")
        self.proposal = proposal
        self._same_box: tuple[int, int, bool] | None = None    # (id, version of the model's bounds, verdict)

    def _f_masks_proposal_box(self) -> bool:
        """Whether f is a plain ``EnergyModel``'s own ``log_density`` with the proposal's very box as its
        ``bounds``: it then already gives -inf outside that box (the same comparisons in x's dtype: the box's
        float64 rows are the float32 bounds exactly), and ``_restrict`` would change nothing. Checked again
        whenever the bounds tensor is replaced or written to (its version counter)."""
        m = self.module
        if (type(m) is not EnergyModel or getattr(self.f, "__func__", None) is not EnergyModel.log_density
                or not isinstance(self.proposal, UniformJumpProposal) or m.bounds is None):
            return False
        try:
            key = (id(m.bounds), m.bounds._version)
        except RuntimeError:         # an inference-mode tensor keeps no version counter: restrict as before
            return False
        if self._same_box is None or self._same_box[:2] != key:
            rows = self.proposal.bounds
            same = m.bounds.shape == rows.shape and torch.equal(m.bounds.detach().cpu().double(), rows)
            self._same_box = (*key, same)
        return self._same_box[2]

    def init(self, x: torch.Tensor) -> ChainState:
        state = super().init(x)
        validate = getattr(self.proposal, "validate", None)
        if validate is not None:
            validate(state.x)
        return state._replace(log_density=self._restrict(state.x, state.log_density))

    def _restrict(self, x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        """f, with -inf outside the proposal's support box (if it has one)."""
        inside_fn = getattr(self.proposal, "inside", None)
        if inside_fn is None or self._f_masks_proposal_box():     # the 2-D recipe's chains: 20 steps a batch
            return fx
        inside = inside_fn(x)
        if inside is None:
            return fx
        return torch.where(inside, fx, torch.full_like(fx, float("-inf")))

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        x, fx = state.x, state.log_density
        x_new = self.proposal.propose(x, generator)
        f_new = self._restrict(x_new, log_density(self.f, x_new))
        log_alpha = f_new - fx
        correction = getattr(self.proposal, "log_q_ratio", lambda a, b: None)(x, x_new)
        if correction is not None:
            log_alpha = log_alpha + correction
        accepted, prob = mh_select(log_alpha, f_new, generator)
        new_state = ChainState(where_accepted(accepted, x_new, x), torch.where(accepted, f_new, fx), None)
        return new_state, StepInfo(prob, accepted, None)
