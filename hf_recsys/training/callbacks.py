"""Trainer callbacks of the training recipe: a wall-clock budget with a decaying learning rate, epoch timing for
results.json, and one readable progress line per epoch."""

from __future__ import annotations

import time

import numpy as np
import torch
from transformers import TrainerCallback


def eval_runtime(metrics: dict | None) -> float | None:
    """The seconds an evaluation took, from the Trainer's metrics (``eval_runtime``, whatever the prefix)."""
    runtime = next((v for k, v in (metrics or {}).items() if k.endswith("_runtime")), None)
    return None if runtime is None else float(runtime)


class TimeBudgetCallback(TrainerCallback):
    """Trains for a wall-clock budget: stops once `minutes` have passed (checked after every step; the best
    epoch is still kept) and, with `decay_fraction` > 0, decays the learning rate linearly to 0 over the last
    `decay_fraction` of the budget. Ending a budgeted run on a decayed learning rate is worth more than any
    fixed schedule that does not know where training will stop (Li et al., "Budgeted Training", ICLR 2020).

    With a decay phase, `eval_interval` > 1 skips the per-epoch evaluation of the epochs that end before the
    learning rate has decayed to half its peak (the first half of the decay phase), except every
    `eval_interval`-th: while the learning rate is high the model is still far from its best, and each skipped
    full-ranking validation is training time won. In every 30-minute ML-1M run logged so far the best epoch
    came later than that (benchmarks/tuning.md). Every later epoch, and the last epoch or step, is evaluated
    as usual. Checkpoints are still written every epoch (a resumed run loses at most one epoch); an
    unvalidated one is never taken for the best.

    With `eval_interval` None the interval is measured: the first epoch is validated, and after each validation
    the next one waits until the epochs since it have cost `1 / EVAL_SHARE_HIGH_RATE` times the validation's time
    while the learning rate is high (validations take ~5% of that phase) and `1 / EVAL_SHARE_LOW_RATE` times
    after (~25%, where the best epoch is picked). ML-1M (epochs of ~25 s, validations of ~7 s) gets every 6th
    epoch, then every epoch; a catalogue that is dear to rank against short epochs validates less often.

    Under data parallelism the main process's clock decides and is broadcast: processes that stop after
    different steps would wait forever for each other, and different learning rates would split the replicas.
    """

    EVAL_SHARE_HIGH_RATE = 0.05
    EVAL_SHARE_LOW_RATE = 0.25

    def __init__(self, minutes: float, decay_fraction: float = 0.0, eval_interval: int | None = 1):
        if not 0.0 <= decay_fraction <= 1.0:
            raise ValueError(f"decay_fraction must be in [0, 1], got {decay_fraction}")
        if eval_interval is not None and eval_interval < 1:
            raise ValueError(f"eval_interval must be >= 1 or None (measured), got {eval_interval}")
        self.seconds = minutes * 60
        self.decay_fraction = decay_fraction
        self.eval_interval = eval_interval
        self.start = time.monotonic()
        self._train_seconds = 0.0  # training time since the last validation (measured interval)
        self._eval_seconds: float | None = None  # the last validation's time
        self._epoch_start = self.start

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._epoch_start = time.monotonic()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        runtime = eval_runtime(metrics)
        if runtime is not None:
            self._eval_seconds, self._train_seconds = runtime, 0.0

    def _measured_skip(self, high_rate: bool) -> bool:
        """With a measured interval: whether this epoch's validation waits (training since the last one is still
        under its cost over the phase's share)."""
        if self._eval_seconds is None:
            return False  # nothing measured yet: validate
        share = self.EVAL_SHARE_HIGH_RATE if high_rate else self.EVAL_SHARE_LOW_RATE
        return self._train_seconds * share < self._eval_seconds * (1.0 - share)

    def _elapsed(self, args) -> float:
        elapsed = time.monotonic() - self.start
        if args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            shared = torch.tensor([elapsed], dtype=torch.float64, device=args.device)
            torch.distributed.broadcast(shared, src=0)
            elapsed = float(shared.item())
        return elapsed

    def on_epoch_end(self, args, state, control, **kwargs):
        self._train_seconds += time.monotonic() - self._epoch_start
        last = control.should_training_stop or state.global_step >= state.max_steps
        if self.eval_interval == 1 or self.decay_fraction == 0 or last:
            return control
        high_rate = self._elapsed(args) < self.seconds * (1.0 - self.decay_fraction / 2)
        if self.eval_interval is None:
            skip = self._measured_skip(high_rate)
        else:
            skip = high_rate and round(state.epoch) % self.eval_interval != 0
        if skip:
            control.should_evaluate = False
        return control

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        elapsed = self._elapsed(args)
        over = elapsed > self.seconds
        left = 1.0 - elapsed / self.seconds
        if self.decay_fraction > 0 and optimizer is not None and left < self.decay_fraction:
            factor = max(left, 0.0) / self.decay_fraction
            for group in optimizer.param_groups:  # applies to the next step; the scheduler's value is the base
                group["lr"] = group["lr"] * factor
        if over:
            control.should_training_stop = True
            control.should_evaluate = args.eval_strategy != "no"
            control.should_save = True
        return control


class SpeedCallback(TrainerCallback):
    """Wall time of each training epoch (evaluation excluded) and of each evaluation, for results.json."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.eval_seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.monotonic()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.epoch_seconds.append(time.monotonic() - self._start)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        runtime = eval_runtime(metrics)
        if runtime is not None:
            self.eval_seconds.append(runtime)

    def summary(self, train_rows: int, train_positions: int) -> dict[str, float]:
        """Median epoch/evaluation time and training throughput (the first epoch, with compilation, excluded
        when there are others)."""
        epochs = self.epoch_seconds[1:] or self.epoch_seconds
        if not epochs:
            return {}
        epoch = float(np.median(epochs))
        out = {
            "epoch_seconds": round(epoch, 2),
            "first_epoch_seconds": round(self.epoch_seconds[0], 2),
            "sequences_per_second": round(train_rows / epoch, 1),
            "positions_per_second": round(train_positions / epoch, 1),
        }
        if self.eval_seconds:
            out["eval_seconds"] = round(float(np.median(self.eval_seconds)), 2)
        return out


class EpochReportCallback(TrainerCallback):
    """One readable progress line per epoch: epoch, training loss, validation NDCG@10/HR@10 (when the epoch is
    validated), time used."""

    def __init__(self, budget_minutes: float | None = None) -> None:
        self.budget = f" of {budget_minutes:.0f}:00" if budget_minutes else ""
        self.start = time.monotonic()
        self.loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def _clock(self) -> str:
        minutes, seconds = divmod(int(time.monotonic() - self.start), 60)
        return f"[{minutes}:{seconds:02d}{self.budget}]"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
            if not control.should_evaluate and args.eval_strategy != "no":  # an epoch the time budget does not validate
                print(f"epoch {state.epoch:5.1f}  loss {self.loss:.3f}  (not validated)  {self._clock()}", flush=True)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        if "eval_ndcg@10" not in metrics:
            return
        loss = f"loss {self.loss:.3f}  " if self.loss is not None else ""
        print(
            f"epoch {state.epoch:5.1f}  {loss}valid NDCG@10 {metrics['eval_ndcg@10']:.4f}  "
            f"HR@10 {metrics.get('eval_hr@10', float('nan')):.4f}  {self._clock()}",
            flush=True,
        )


class WeightAverageCallback(TrainerCallback):
    """Validates and saves an exponential moving average of the weights instead of the weights themselves.

    At a constant learning rate the weights wander around a minimum by an amount the rate sets; their running
    average sits closer to it, as a decayed rate would (Polyak averaging; Izmailov et al., "Averaging Weights
    Leads to Wider Optima", 2018). The sparse logs reach their best validation at the peak rate, before a time
    budget's decay begins, so there the average is the only decay they get. The average spans about `epochs`
    epochs: its decay per step is ``1 - 1 / (epochs x steps per epoch)``, shorter at the start
    (``(1 + t) / (10 + t)`` at step t) so that the first validations do not read the initial weights.

    The average is swapped into the model just before each validation or checkpoint, so both see it, and
    swapped back before the next training step; the optimizer only ever updates the trained weights. After
    training the model keeps the selected (averaged) weights. A run resumed from a checkpoint trains on from the
    averaged weights saved there, with a new average.
    """

    def __init__(self, epochs: float):
        if epochs <= 0:
            raise ValueError(f"weight average: epochs must be > 0, got {epochs}")
        self.epochs = epochs
        self._params: list[torch.Tensor] = []
        self._average: list[torch.Tensor] = []
        self._decay = 0.0
        self._swapped = False

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        self._params = [p for p in model.parameters() if p.requires_grad]
        self._average = [p.detach().clone() for p in self._params]
        try:
            steps_per_epoch = len(train_dataloader) // max(1, args.gradient_accumulation_steps)
        except TypeError:  # an iterable dataset: the optimizer steps per epoch the Trainer planned
            steps_per_epoch = int(state.max_steps / max(1.0, args.num_train_epochs))
        self._decay = 1.0 - 1.0 / (self.epochs * max(1, steps_per_epoch))
        self._swapped = False

    def _swap(self) -> None:
        with torch.no_grad():
            for param, average in zip(self._params, self._average):
                trained = param.detach().clone()
                param.copy_(average)
                average.copy_(trained)
        self._swapped = not self._swapped

    def on_step_begin(self, args, state, control, **kwargs):
        if self._swapped:
            self._swap()

    def on_step_end(self, args, state, control, **kwargs):
        t = state.global_step
        decay = min(self._decay, (1.0 + t) / (10.0 + t))
        with torch.no_grad():
            torch._foreach_lerp_(self._average, [p.detach() for p in self._params], 1.0 - decay)
        if control.should_evaluate or control.should_save:
            self._swap()

    def on_epoch_end(self, args, state, control, **kwargs):
        if not self._swapped and (control.should_evaluate or control.should_save):
            self._swap()

    def on_train_end(self, args, state, control, **kwargs):
        self._params, self._average, self._swapped = [], [], False
