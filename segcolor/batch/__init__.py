"""Archive-scale batches: the manifest, the per-process colorizer, local and Ray engines."""
