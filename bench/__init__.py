"""arsync benchmarks: `./dev bench` (or `python -m bench`). Figures go into the README."""
