"""The data step: a training file -> checked, deduplicated, decontaminated conversations ->
token ids with a loss mask -> batches, with a report of every record dropped and why.

Each step is its own module (reading, records, checks, dedup, decontamination, render,
prepare, batching; tensors for the local backend); import from them. This file imports
nothing, so that a light part (the settings the config holds, rendering for the Tinker
backend) costs only itself.
"""
