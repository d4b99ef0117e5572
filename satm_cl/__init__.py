"""satm-cl: Sharpness-Aware Trajectory Matching for dataset condensation, and its benchmarks."""

__version__ = "0.1.0"
