"""Support code for the Snakemake pipeline: config validation and the run report."""
