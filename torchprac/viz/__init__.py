"""Pictures: figures (matplotlib, Agg, imported lazily), the VizCallback that logs them to
TensorBoard during training, the end-of-run figures/ folder, and run names for sweeps.
Beside diagnose/: it reads train/ and diagnose/, never the reverse."""
