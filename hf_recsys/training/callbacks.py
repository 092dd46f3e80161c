"""Trainer callbacks of the training recipe: a wall-clock budget with a decaying learning rate, epoch timing for
results.json, and one readable progress line per epoch."""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from safetensors.torch import load_model
from transformers import EarlyStoppingCallback, TrainerCallback
from transformers.utils import SAFE_WEIGHTS_NAME, logging

logger = logging.get_logger(__name__)


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

        With `plateau_patience` > 0 the decay may begin earlier: once that many validations in a row have not
        improved on the best one while the rate is still at its peak, the model goes back to the best validated
        checkpoint's weights and the decay starts from there, with early stopping's patience (`early_stopping`, the
    run's `EarlyStoppingCallback`) counted afresh. It lasts as long, in proportion, as the budget's own
        (`decay_fraction / (1 - decay_fraction)` of the time used so far, at most the rest of the budget), and the
        run ends when it reaches 0. Sparse data (few interactions per item) peaks in validation early and then
        memorises at the peak rate: early stopping there ends the run before any decay (LastFM: best epoch ~20 at
        minute 1-2 of 10), and a decay fixed to the budget's end starts long after the peak. Decaying from the
        weights of the plateau instead of the best ones gained nothing (benchmarks/recipe.md).

        Under data parallelism the main process's clock decides and is broadcast: processes that stop after
        different steps would wait forever for each other, and different learning rates would split the replicas.
    """

    EVAL_SHARE_HIGH_RATE = 0.05
    EVAL_SHARE_LOW_RATE = 0.25

    def __init__(
        self,
        minutes: float,
        decay_fraction: float = 0.0,
        eval_interval: int | None = 1,
        plateau_patience: int = 0,
        early_stopping: EarlyStoppingCallback | None = None,
    ):
        if not 0.0 <= decay_fraction <= 1.0:
            raise ValueError(f"decay_fraction must be in [0, 1], got {decay_fraction}")
        if eval_interval is not None and eval_interval < 1:
            raise ValueError(f"eval_interval must be >= 1 or None (measured), got {eval_interval}")
        if plateau_patience < 0:
            raise ValueError(f"plateau_patience must be >= 0 (0: off), got {plateau_patience}")
        self.seconds = minutes * 60
        self.decay_fraction = decay_fraction
        self.plateau_patience = plateau_patience
        self.early_stopping = early_stopping
        # the decay phase, in seconds since the start: the budget's last share until a plateau moves it earlier
        self.decay_start = self.seconds * (1.0 - decay_fraction)
        self.decay_end = self.seconds
        self._best: float | None = None
        self._evaluations_without_gain = 0
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
        if self.plateau_patience and self.decay_fraction > 0:
            self._track_plateau(args, state, metrics or {}, kwargs.get("model"))

    def _track_plateau(self, args, state, metrics: dict, model: torch.nn.Module | None) -> None:
        """Counts validations without a new best (of the metric `metric_for_best_model` names) and, at
        `plateau_patience` of them before the decay has begun, restores the best checkpoint's weights and
        moves the decay phase to start now."""
        name = args.metric_for_best_model or "loss"
        value = metrics.get(name if name.startswith("eval_") else f"eval_{name}")
        if value is None:
            return
        better = self._best is None or (value > self._best if args.greater_is_better else value < self._best)
        if better:
            self._best, self._evaluations_without_gain = value, 0
            return
        self._evaluations_without_gain += 1
        elapsed = self._elapsed(args)
        if self._evaluations_without_gain >= self.plateau_patience and elapsed < self.decay_start:
            length = (
                self.seconds if self.decay_fraction >= 1 else elapsed * self.decay_fraction / (1 - self.decay_fraction)
            )
            self.decay_start, self.decay_end = elapsed, min(self.seconds, elapsed + length)
            best = state.best_model_checkpoint
            weights = os.path.join(best, SAFE_WEIGHTS_NAME) if best else None
            restored = model is not None and weights is not None and os.path.isfile(weights)
            if restored:
                load_model(model, weights)
            if self.early_stopping is not None:  # the decay is a fresh start: it gets the whole patience
                self.early_stopping.early_stopping_patience_counter = 0
            logger.info(
                "validation has not improved for %d validations at the peak learning rate: decaying it from %s "
                "over the next %.0f s",
                self._evaluations_without_gain,
                f"the weights of {best}" if restored else "here",
                self.decay_end - self.decay_start,
            )

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
        high_rate = self._elapsed(args) < (self.decay_start + self.decay_end) / 2
        if self.eval_interval is None:
            skip = self._measured_skip(high_rate)
        else:
            skip = high_rate and round(state.epoch) % self.eval_interval != 0
        if skip:
            control.should_evaluate = False
        return control

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        elapsed = self._elapsed(args)
        over = elapsed > self.decay_end
        if self.decay_fraction > 0 and optimizer is not None and elapsed > self.decay_start:
            factor = max(self.decay_end - elapsed, 0.0) / max(self.decay_end - self.decay_start, 1e-9)
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
