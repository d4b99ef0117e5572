"""Evaluation of synthetic sets and real-subset baselines: in-domain, cross-architecture, out-of-domain.

`evaluate_set` is the train-from-scratch protocol (N seeded runs of `training.train_and_test`);
`SUITES` plans which architectures and test sets a suite measures; `run_evaluation(EvalRequest)` validates
a request, runs what is missing and appends tidy records (see `satm_cl.records`).
"""

from __future__ import annotations

from satm_cl.evaluate.protocol import arch_refusal, evaluate_run, evaluate_set, set_eval_defaults
from satm_cl.evaluate.runner import EvalRequest, baseline_dir, expand_suites, run_evaluation
from satm_cl.evaluate.suites import ALL, OOD_PARTNERS, SUITES, list_suites, resample

__all__ = [
    "ALL",
    "OOD_PARTNERS",
    "SUITES",
    "EvalRequest",
    "arch_refusal",
    "baseline_dir",
    "evaluate_run",
    "evaluate_set",
    "expand_suites",
    "list_suites",
    "resample",
    "run_evaluation",
    "set_eval_defaults",
]
