"""`satm-cl bench`: every hot path (expert training, evaluation runs, condensation's outer iteration)
measured beside a ceiling in the same run, each job in a fresh process with a timeout.

Suites and measurements are registries (`satm_cl.bench.registry`): a new measurement is a function
registered with `@measurement`, in a module listed in `MEASUREMENT_MODULES`, plus a `@suite` planner.
"""

from satm_cl.bench.registry import SUITES, BenchOptions, Job, load_measurements, measurement, suite
from satm_cl.bench.runner import run_bench, run_job

__all__ = [
    "SUITES",
    "BenchOptions",
    "Job",
    "load_measurements",
    "measurement",
    "run_bench",
    "run_job",
    "suite",
]
